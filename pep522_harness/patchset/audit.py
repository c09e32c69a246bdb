"""Audit: every caller of the system RNG in the standard library, decided.

    python -m pep522_harness audit [--cpython V ...] [--tree DIR] [--markdown]

Scans ``Lib/``, ``Modules/``, ``Python/`` and ``Objects/`` (for mimalloc) of
the pristine release tarball
(or of any tree given with ``--tree``) for every use of ``os.urandom`` (and
names bound to it), ``random.SystemRandom``, ``secrets``, ``uuid4``,
``os.getrandom``, and in C of ``_PyOS_URandom``, ``_PyOS_URandomNonblock``,
the internal ``pyurandom()``, ``getrandom()``, ``/dev/urandom`` and OpenSSL's
generator (``RAND_*``, and ``SSL_CTX_new``, which seeds it).  Comments
and string literals are not code and are ignored; test packages and
Argument-Clinic output (generated) are left out.

Each caller found is keyed by (file, enclosing function, API).  The curated
table ``audit.toml`` beside this module says, per key, what the bytes protect,
what stock and patched CPython do when the RNG is not ready, and the decision.
The check fails on a caller the table does not know (a new caller must be
decided) and on a row missing from a release it applies to (a stale row, or
one to pin to the releases that have it with ``versions``).

Exit status: 0 when the table and the code agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import bisect
import io
import re
import sys
import tarfile
import tokenize
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pep522_harness.core import fetch, options, tables, versions

TABLE = Path(__file__).with_name("audit.toml")
ROOTS = ("Lib", "Modules", "Python", "Objects")   # Objects: mimalloc (3.13)
TEST_DIRS = {"test", "tests", "idle_test"}
GENERATED_DIRS = {"clinic"}
C_SUFFIXES = (".c", ".h")

# -- what counts as a caller ----------------------------------------------------

# Python: patterns on code with comments and strings blanked out.
PY_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "os.urandom": (re.compile(r"\bos\.urandom\b"),
                   re.compile(r"\bfrom\s+os\s+import\b[^\n]*\burandom\b")),
    "os.getrandom": (re.compile(r"\bos\.getrandom\b"),
                     re.compile(r"\bfrom\s+os\s+import\b[^\n]*\bgetrandom\b")),
    "SystemRandom": (re.compile(r"\bSystemRandom\b"),),
    "secrets": (re.compile(r"^\s*import\s+secrets\b", re.M),
                re.compile(r"^\s*from\s+secrets\s+import\b", re.M),
                re.compile(r"\bsecrets\.\w+")),
    "uuid4": (re.compile(r"\buuid4\b"),),
}
# Names bound to os.urandom in a module (``_urandom``, ``_randombytes``)
# count as os.urandom wherever that module uses them.
_PY_ALIASES = (re.compile(r"\bfrom\s+os\s+import\s+urandom\s+as\s+(\w+)"),
               re.compile(r"^\s*(\w+)\s*=\s*os\.urandom\s*$", re.M))

_PY_GETATTR: dict[str, tuple[re.Pattern[str], ...]] = {
    api: (re.compile(rf"\bgetattr\(\s*_?os\s*,\s*['\"]{api[3:]}['\"]"),)
    for api in ("os.urandom", "os.getrandom")}

C_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "_PyOS_URandom": (re.compile(r"\b_PyOS_URandom\b"),),
    "_PyOS_URandomNonblock": (re.compile(r"\b_PyOS_URandomNonblock\b"),),
    "pyurandom": (re.compile(r"\bpyurandom\s*\("),),
    "getrandom": (re.compile(r"\bSYS_getrandom\b|\bgetrandom\s*\("),),
    "/dev/urandom": (re.compile(r"\"/dev/urandom\""),),
    # OpenSSL draws from getrandom() itself: RAND_* and, seeding its DRBG,
    # every new SSL_CTX (session-ticket keys).
    "OpenSSL RAND": (re.compile(r"\bRAND_(?:bytes|priv_bytes|pseudo_bytes|add|status)\s*\("),),
    "SSL_CTX_new": (re.compile(r"\bSSL_CTX_new(?:_ex)?\s*\("),),
}
# (/dev/urandom is a string, so C string literals are kept for that one.)

# A function definition in column 0: PEP 7 puts the return type on the line
# before; vendored code (mimalloc, expat) keeps it on the same line.
_C_FUNC = re.compile(r"^(?!\s)(?:[\w*]+(?:\([\w\s*]*\))?[\s*]+)*([A-Za-z_]\w*)\s*\(")
_PY_SCOPE = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+(\w+)")


@dataclass(frozen=True, order=True)
class Caller:
    """One (file, scope, API) and the lines where it occurs."""
    path: str
    scope: str
    api: str
    lines: tuple[int, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.scope, self.api)

    @property
    def where(self) -> str:
        return f"{self.path}:{','.join(map(str, self.lines))}"


def included(path: str) -> bool:
    parts = path.split("/")
    if not parts or parts[0] not in ROOTS:
        return False
    if TEST_DIRS & set(parts[:-1]) or GENERATED_DIRS & set(parts[:-1]):
        return False
    return parts[-1].endswith((".py", *C_SUFFIXES))


# -- blanking what is not code ---------------------------------------------------

def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def python_code(text: str) -> str:
    """The source with comments and string literals blanked (same lines)."""
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    drop = {tokenize.COMMENT, tokenize.STRING}
    drop |= {getattr(tokenize, n) for n in ("FSTRING_MIDDLE",) if hasattr(tokenize, n)}
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in drop:
                (sr, sc), (er, ec) = tok.start, tok.end
                spans.append((offsets[sr - 1] + sc, offsets[er - 1] + ec))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # A newer grammar than the running tokenizer: drop comments only.
        return re.sub(r"#[^\n]*", "", text)
    return _blank(text, spans)


_C_NOISE = re.compile(r"^[ \t]*#[ \t]*(?:error|warning)\b(?:[^\n]*\\\n)*[^\n]*"
                      r"|/\*.*?\*/|//[^\n]*"
                      r"|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S | re.M)


def c_code(text: str, keep: str = "") -> str:
    """C source with comments and string literals blanked, except ``keep``."""
    spans = [m.span() for m in _C_NOISE.finditer(text)
             if not (keep and m.group(0) == keep)]
    return _blank(text, spans)


# -- scopes ------------------------------------------------------------------

def python_scopes(code: str) -> list[str]:
    """For each line (index 0 = line 1): its dotted def/class scope."""
    out: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in code.splitlines():
        if line.strip():
            indent = len(line) - len(line.lstrip())
            while stack and stack[-1][0] >= indent:
                stack.pop()
            m = _PY_SCOPE.match(line)
            if m:
                stack.append((len(m.group(1)), m.group(2)))
        out.append(".".join(name for _, name in stack) or "<module>")
    return out


def c_scopes(code: str) -> list[str]:
    """For each line: the C function it is in (or <file>).

    A function starts at a declarator in column 0 (``_C_FUNC``); its body is
    tracked by brace depth, and a
    ``}`` in column 0 always ends it (resyncing after unbalanced #if blocks).
    """
    out: list[str] = []
    current, depth = "<file>", 0
    for line in code.splitlines():
        m = _C_FUNC.match(line)
        if depth == 0 and m:
            current = m.group(1)
        out.append(current)
        depth = max(0, depth + line.count("{") - line.count("}"))
        if line.startswith("}"):
            depth = 0
        if depth == 0 and ("}" in line or line.rstrip().endswith(";")):
            current = "<file>"
    return out


# -- scanning ----------------------------------------------------------------

def _hits(code: str, patterns: dict[str, tuple[re.Pattern[str], ...]]
          ) -> Iterator[tuple[str, int]]:
    starts = [0]
    for i, ch in enumerate(code):
        if ch == "\n":
            starts.append(i + 1)
    for api, pats in patterns.items():
        for pat in pats:
            for m in pat.finditer(code):
                yield api, bisect.bisect_right(starts, m.start() + (
                    len(m.group(0)) - len(m.group(0).lstrip())))


def scan_file(path: str, text: str) -> list[Caller]:
    found: dict[tuple[str, str], set[int]] = {}
    if path.endswith(".py"):
        code = python_code(text)
        patterns = dict(PY_PATTERNS)
        aliases = {m.group(1) for pat in _PY_ALIASES for m in pat.finditer(code)}
        aliases.discard("urandom")
        if aliases:
            alias_re = re.compile(r"\b(?:" + "|".join(sorted(aliases)) + r")\s*\(")
            patterns["os.urandom"] = (*patterns["os.urandom"], alias_re)
        scopes = python_scopes(code)
        hits = list(_hits(code, patterns))
        # getattr(os, "getrandom", None) names the function in a string.
        hits += _hits(text, _PY_GETATTR)
    else:
        code = c_code(text)
        scopes = c_scopes(code)
        hits = list(_hits(code, {k: v for k, v in C_PATTERNS.items()
                                 if k != "/dev/urandom"}))
        hits += _hits(c_code(text, keep='"/dev/urandom"'),
                      {"/dev/urandom": C_PATTERNS["/dev/urandom"]})
    for api, line in hits:
        if scopes[line - 1].rpartition(".")[2] == api:
            continue        # the definition of the API itself
        found.setdefault((scopes[line - 1], api), set()).add(line)
    return [Caller(path, scope, api, tuple(sorted(lines)))
            for (scope, api), lines in sorted(found.items())]


def _tar_files(tarball: Path) -> Iterator[tuple[str, str]]:
    with tarfile.open(tarball) as tar:
        for member in tar:
            if not member.isfile():
                continue
            path = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if not included(path):
                continue
            f = tar.extractfile(member)
            if f is not None:
                yield path, f.read().decode("utf-8", errors="replace")


def _dir_files(tree: Path) -> Iterator[tuple[str, str]]:
    for root in ROOTS:
        for file in sorted((tree / root).rglob("*")):
            path = file.relative_to(tree).as_posix()
            if file.is_file() and included(path):
                yield path, file.read_text(errors="replace")


def scan(source: Path) -> list[Caller]:
    """Every caller in a tree (directory) or a release tarball."""
    files = _dir_files(source) if source.is_dir() else _tar_files(source)
    callers: list[Caller] = []
    for path, text in files:
        if any(s in text for s in ("urandom", "SystemRandom", "secrets", "uuid4",
                                   "getrandom", "URandom", "RAND_", "SSL_CTX_new")):
            callers += scan_file(path, text)
    return sorted(callers)


def pristine(version: str) -> Path:
    """The verified release tarball (fetched if not cached)."""
    got = fetch.fetch(versions.release(version), log=lambda _m: None)
    if got.path is None:
        raise fetch.FetchError(f"no release tarball of {version}")
    return got.path


# -- the curated table ---------------------------------------------------------

@dataclass(frozen=True)
class Row:
    path: str
    scope: str
    api: str
    protects: str
    stock: str
    patched: str
    decision: str
    versions: tuple[str, ...] = ()    # empty: every supported release
    where: str = ""                   # for the reader: when it runs

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.scope, self.api)

    def applies_to(self, version: str) -> bool:
        return not self.versions or version in self.versions


FIELDS = ("path", "scope", "api", "protects", "stock", "patched", "decision")


def load_table(path: Path = TABLE) -> list[Row]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    rows = []
    for i, entry in enumerate(data.get("caller", []), 1):
        missing = [k for k in FIELDS if not str(entry.get(k, "")).strip()]
        if missing:
            raise ValueError(f"{path.name}: [[caller]] #{i} lacks {', '.join(missing)}")
        rows.append(Row(**{k: entry[k] for k in FIELDS},
                        versions=tuple(entry.get("versions", ())),
                        where=entry.get("where", "")))
    unknown = sorted({v for r in rows for v in r.versions} - set(versions.releases()))
    if unknown:
        raise ValueError(f"{path.name}: versions names unsupported releases {unknown}")
    keys = [r.key for r in rows]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"{path.name}: duplicate rows {dupes}")
    return rows


@dataclass
class Report:
    """Callers found per release, checked against the table."""
    found: dict[str, list[Caller]]
    rows: list[Row]
    new: dict[str, list[Caller]] = field(default_factory=dict)
    absent: dict[str, list[Row]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.new.values()) and not any(self.absent.values())


def check(found: dict[str, list[Caller]], rows: list[Row], *,
          tree: bool = False) -> Report:
    """Compare callers found per release with the rows.

    A caller without a row is new; a row missing from a release it applies to
    (every release, unless pinned with ``versions``) is absent there: the
    row is stale, or must be pinned to the releases that have the caller.
    ``tree``: ``found`` is one arbitrary
    tree, to which every row applies and for which nothing is absent.
    """
    report = Report(found, rows)
    for version, callers in found.items():
        keys = {c.key for c in callers}
        known = {r.key for r in rows if tree or r.applies_to(version)}
        report.new[version] = [c for c in callers if c.key not in known]
        report.absent[version] = [] if tree else [
            r for r in rows if r.applies_to(version) and r.key not in keys]
    return report


def format_problems(report: Report) -> str:
    lines = []
    for version, callers in report.new.items():
        for c in callers:
            lines.append(f"{version}: new caller {c.where} in {c.scope}: {c.api} "
                         f"(add a [[caller]] row to {TABLE.name})")
    for version, rows in report.absent.items():
        for r in rows:
            pinned = ", ".join(r.versions) or "every release"
            lines.append(f"{version}: row {r.path} {r.scope} {r.api} applies to "
                         f"{pinned} but is not found here (pin it with versions)")
    return "\n".join(lines)


def markdown(rows: list[Row], found: dict[str, list[Caller]] | None = None) -> str:
    """The audit table for the README and the patch header (line numbers
    from the first release in ``found`` that has the caller)."""
    cells = []
    for r in rows:
        where = f"`{r.path}` `{r.scope}`"
        for version, callers in (found or {}).items():
            at = [c for c in callers if c.key == r.key]
            if at:
                where = f"`{r.path}:{at[0].lines[0]}` `{r.scope}`"
                break
        if r.versions:
            where += f" ({', '.join(r.versions)} only)"
        cells.append([where, f"`{r.api}`", r.where, r.protects, r.stock, r.patched,
                      r.decision])
    header = ["caller", "API", "when", "what the bytes protect", "stock, RNG not ready",
              "patched, RNG not ready", "decision"]
    return "\n".join(tables.markdown(header, cells, escape=True)) + "\n"


def run(versions_: list[str], tree: Path | None = None) -> Report:
    sources = {f"tree {tree}": tree} if tree else {v: pristine(v) for v in versions_}
    return check({label: scan(src) for label, src in sources.items()}, load_table(),
                 tree=tree is not None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pep522_harness audit")
    options.cpython(p, many=True, every=True)
    p.add_argument("--tree", type=Path, help="scan this source tree instead "
                   "(e.g. a patched tree under build/tree/)")
    p.add_argument("--markdown", action="store_true", help="print the audit table")
    p.add_argument("--list", action="store_true", help="print every caller found")
    args = p.parse_args(argv)
    report = run(args.cpython, args.tree)
    if args.list:
        for version, callers in report.found.items():
            for c in callers:
                print(f"{version}  {c.where}  {c.scope}  {c.api}")
    if args.markdown:
        print(markdown(report.rows, report.found))
    total = sum(map(len, report.found.values()))
    if args.tree:
        # A patched tree may add callers on purpose: list them, do not fail.
        for c in report.new[f"tree {args.tree}"]:
            print(f"not in {TABLE.name}: {c.where} {c.scope} {c.api}")
        return 0
    if not report.ok:
        print(format_problems(report), file=sys.stderr)
        print(f"audit: FAILED ({total} callers scanned)", file=sys.stderr)
        return 1
    print(f"audit: {total} callers in {', '.join(report.found)}: every one is "
          f"decided in {TABLE.name} ({len(report.rows)} rows)")
    return 0
