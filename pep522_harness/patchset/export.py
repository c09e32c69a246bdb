"""The patch set in the forms packagers take: a quilt series, ``git am`` mail,
or one combined diff.

    python -m pep522_harness export [--cpython V] --format quilt|mbox|diff [--out DIR]

quilt  ``series`` and the patches of ``patches/series`` for that release (the
       per-release variants resolved), byte for byte, plus a generated patch
       that adds the files under ``Lib/``, ``Modules/`` and ``Python/``, so
       the series stands on its own (``debian/patches``, an RPM spec).
mbox   one mail per patch of that same series, ``git am``-able onto a git
       repository of the pristine tree: From/Date/Subject/body come from the
       DEP-3 header (Author, Last-Update, Description and its why-lines), as
       ``git format-patch --zero-commit --no-signature`` would write them.
diff   one ``-p1`` diff: the net change from the pristine tree to the tree
       ``apply`` makes, one section per file.

Every export is byte-for-byte reproducible: no dates but the headers' own
Last-Update, no commit ids, no index lines, files in a fixed order. All three
give exactly the tree ``apply`` gives (the tests compare the trees).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.header
import email.utils
import filecmp
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from pep522_harness.core import apply, fetch, paths
from pep522_harness.core.versions import DEFAULT_VERSION, UnknownVersion, release

FORMATS = ("quilt", "mbox", "diff")
ADDED_NAME = "pep522-added-files.patch"
REQUIRED = ("Description", "Author", "Origin", "Forwarded", "Last-Update")
ALIASES = {"subject": "Description", "from": "Author"}
ZERO_FROM = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
PROJECT_WHY = (
    "PEP 522 (rejected upstream in favour of PEP 524, so not forwarded) makes",
    "os.urandom() and random.SystemRandom raise BlockingIOError while the",
    "kernel's random number generator is not ready, instead of blocking;",
    "secrets waits, and start-up neither blocks nor reads /dev/urandom.",
)
# Text files only: bytes that are not UTF-8 pass through unchanged.
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


class ExportError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# DEP-3 headers


@dataclass(frozen=True)
class Dep3:
    """The fields of a DEP-3 header, in order, with canonical names."""
    fields: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    @property
    def summary(self) -> str:
        return (self.get("Description") or "").split("\n", 1)[0].strip()

    @property
    def why(self) -> list[str]:
        """The lines after the summary, unindented (`` .`` is a blank line)."""
        lines = (self.get("Description") or "").split("\n")[1:]
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def render(self) -> str:
        out = []
        for key, value in self.fields:
            first, *rest = value.split("\n")
            out.append(f"{key}: {first}".rstrip())
            out += [f" {line}" if line.strip() else " ." for line in rest]
        return "\n".join(out) + "\n"


_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):(?:[ \t]+(.*)|)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MBOX_FROM = re.compile(r"^From [0-9a-f]{40} ")
_PATCH_PREFIX = re.compile(r"^\[PATCH[^\]]*\]\s*")
_AUTHOR = re.compile(r"^[^<>]*\S[^<>]*<[^<>@\s]+@[^<>\s]+>$")


def parse_dep3(header: str) -> Dep3:
    """Fields of a DEP-3 header (the text before the diff).

    Continuation lines start with white space; `` .`` is an empty line; a
    continuation after blank lines still belongs to the field before. A
    header in git's mail form (``From <commit> ...`` first) also reads: its
    folded Subject: is the summary (without ``[PATCH]``), its body the why.
    """
    fields: list[list[str]] = []
    freeform: list[str] = []
    blank = 0
    lines = header.split("\n")
    mail = any(_MBOX_FROM.match(line) for line in lines[:1])
    subject = False
    for line in lines:
        if not line.strip():
            blank += 1
            continue
        m = _FIELD.match(line)
        if _MBOX_FROM.match(line):
            pass
        elif m and not line[0].isspace():
            key = ALIASES.get(m.group(1).lower(), m.group(1))
            key = next((r for r in REQUIRED if r.lower() == key.lower()), key)
            value = (m.group(2) or "").rstrip()
            subject = mail and m.group(1).lower() == "subject"
            fields.append([key, _PATCH_PREFIX.sub("", value) if subject else value])
        elif line[0].isspace() and fields and not (subject and blank):
            if subject:
                fields[-1][1] += " " + line.strip()
            else:
                text = line[1:].rstrip()
                fields[-1][1] += "\n" * blank + "\n" + ("" if text == "." else text)
        else:
            freeform += [""] if freeform and blank else []
            freeform.append(line.rstrip())
        blank = 0
    for f in fields:
        if f[0] == "Description" and freeform:
            f[1] += ("\n\n" if "\n" in f[1] else "\n") + "\n".join(freeform)
            break
    return Dep3(tuple((k, v) for k, v in fields))


def check_dep3(name: str, dep3: Dep3) -> list[str]:
    """What a packager would miss in this header (empty: complete)."""
    problems = []
    for key in REQUIRED:
        if not (dep3.get(key) or "").strip():
            problems.append(f"{name}: no {key}: field")
    if dep3.summary and not any(line.strip() for line in dep3.why):
        problems.append(f"{name}: Description has no why (the indented lines "
                        "after the summary)")
    author = dep3.get("Author")
    if author and not _AUTHOR.match(author.strip()):
        problems.append(f"{name}: Author: {author!r} is not 'Name <email>' "
                        "(git am needs the address)")
    date = dep3.get("Last-Update")
    if date and not _DATE.match(date.strip()):
        problems.append(f"{name}: Last-Update: {date!r} is not YYYY-MM-DD")
    forwarded = (dep3.get("Forwarded") or "").strip().lower()
    if forwarded and not forwarded.startswith(("no", "not-needed", "yes", "http")):
        problems.append(f"{name}: Forwarded: must start with no, not-needed, "
                        "yes or a URL")
    return problems


# --------------------------------------------------------------------------
# Unified diffs


@dataclass(frozen=True)
class FileDiff:
    """One file's section of a -p1 diff. ``old``/``new`` are tree paths,
    None for /dev/null (a created or deleted file)."""
    old: str | None
    new: str | None
    hunks: tuple[str, ...] = ()
    mode: str = "100644"

    @property
    def path(self) -> str:
        return self.new or self.old or ""

    def counts(self) -> tuple[int, int]:
        added = removed = 0
        body = (h for h in self.hunks if not h.startswith("@@"))
        for line in body:
            if line.startswith("+"):
                added += 1
            elif line.startswith("-"):
                removed += 1
        return added, removed

    def render(self) -> str:
        """Git style, without index lines: GNU patch, quilt and git apply
        all read it, and a new file's mode is explicit."""
        a, b = self.old or self.new, self.new or self.old
        out = [f"diff --git a/{a} b/{b}"]
        if self.old is None:
            out.append(f"new file mode {self.mode}")
        elif self.new is None:
            out.append(f"deleted file mode {self.mode}")
        if self.hunks:
            out.append(f"--- a/{self.old}" if self.old else "--- /dev/null")
            out.append(f"+++ b/{self.new}" if self.new else "+++ /dev/null")
            out += self.hunks
        return "\n".join(out) + "\n"


_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_UNSUPPORTED = ("rename from", "rename to", "copy from", "copy to", "old mode",
                "new mode", "GIT binary patch", "Binary files ")


def _strip1(label: str, where: str) -> str | None:
    """The tree path of a ---/+++ label; None for a file that does not exist
    on that side (/dev/null, or diff -N's epoch time stamp, as GNU patch reads it)."""
    name, _, stamp = label.partition("\t")
    name = name.rstrip()
    if name == "/dev/null" or stamp.startswith(("1970-01-01 00:00:00", "1969-12-31")):
        return None
    if "/" not in name:
        raise ExportError(f"{where}: {name!r} has no leading directory to strip "
                          "(patches are -p1)")
    return name.split("/", 1)[1]


def diff_start(lines: list[str]) -> int:
    """Index of the first line of the diff proper (len(lines) if none)."""
    for i, line in enumerate(lines):
        if line.startswith(("diff --git ", "Index: ")) or line == "---":
            return i
        if line.startswith("--- ") and i + 1 < len(lines) \
                and lines[i + 1].startswith("+++ "):
            return i
    return len(lines)


def parse_diff(text: str, where: str) -> list[FileDiff]:
    """The file sections of a -p1 unified diff; anything between sections
    (Index: lines, diffstat, comments) is dropped."""
    lines = text.split("\n")
    files: list[FileDiff] = []
    git: dict[str, str] = {}
    i = 0

    def flush_git() -> None:
        # a git section with no hunks: an empty file created or deleted
        if git.get("paths") and ("new" in git or "deleted" in git):
            path = git["paths"]
            files.append(FileDiff(None if "new" in git else path,
                                  path if "new" in git else None,
                                  mode=git.get("new") or git.get("deleted") or "100644"))
        git.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            flush_git()
            m = re.match(r"^diff --git a/(\S+) b/(\S+)$", line)
            git["paths"] = m.group(2) if m else ""
            i += 1
            continue
        if git and line.startswith(_UNSUPPORTED):
            raise ExportError(f"{where}: {line.strip()!r} (renames, mode changes "
                              "and binary patches are not supported)")
        if git and line.startswith("new file mode "):
            git["new"] = line.split()[-1]
        elif git and line.startswith("deleted file mode "):
            git["deleted"] = line.split()[-1]
        if line.startswith("--- ") and i + 1 < len(lines) \
                and lines[i + 1].startswith("+++ "):
            old = _strip1(line[4:], where)
            new = _strip1(lines[i + 1][4:], where)
            mode = git.get("new") or git.get("deleted") or "100644"
            git.clear()
            i += 2
            hunks: list[str] = []
            while i < len(lines) and (m := _HUNK.match(lines[i])):
                hunks.append(lines[i])
                need_old = int(m.group(1) if m.group(1) is not None else 1)
                need_new = int(m.group(2) if m.group(2) is not None else 1)
                i += 1
                while need_old > 0 or need_new > 0:
                    if i >= len(lines):
                        raise ExportError(f"{where}: {new or old}: hunk "
                                          f"{hunks[-1]!r} is truncated")
                    body = lines[i]
                    kind = body[:1]
                    if kind in (" ", ""):
                        need_old -= 1
                        need_new -= 1
                        body = body or " "
                    elif kind == "-":
                        need_old -= 1
                    elif kind == "+":
                        need_new -= 1
                    elif kind != "\\":
                        raise ExportError(f"{where}: {new or old}: unexpected "
                                          f"line in hunk {hunks[-1]!r}: {body!r}")
                    hunks.append(body)
                    i += 1
                if i < len(lines) and lines[i].startswith("\\"):
                    hunks.append(lines[i])
                    i += 1
            if not hunks:
                raise ExportError(f"{where}: {new or old}: no hunks")
            files.append(FileDiff(old, new, tuple(hunks), mode))
            continue
        i += 1
    flush_git()
    return files


def diff_files(old: Path | None, new: Path | None, rel: str) -> FileDiff | None:
    """GNU diff -u of one file (None: /dev/null); None when they are equal."""
    cmd = ["diff", "-u", "--label", f"a/{rel}" if old else "/dev/null",
           "--label", f"b/{rel}" if new else "/dev/null",
           str(old or os.devnull), str(new or os.devnull)]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode > 1:
        raise ExportError(f"diff {rel}: {proc.stderr.decode(errors='replace').strip()}")
    out = proc.stdout.decode(**ENCODING)
    if out.startswith("Binary files ") or "\nBinary files " in out:
        raise ExportError(f"{rel}: binary files cannot be exported as a patch")
    if not out:
        if (old is None) == (new is None):
            return None
        # an empty file created or deleted: no hunks, git header only
        return FileDiff(None if old is None else rel, None if new is None else rel,
                        mode=_mode(new or old))
    parsed = parse_diff(out, rel)
    return replace(parsed[0], mode=_mode(new or old)) if parsed else None


def _mode(path: Path | None) -> str:
    if path is not None and path.stat().st_mode & stat.S_IXUSR:
        return "100755"
    return "100644"


def tree_differences(a: Path, b: Path, ignore: tuple[str, ...] = (".git", ".pc")) -> list[str]:
    """Relative paths that differ between two trees (content, file type,
    executable bit, presence), sorted. Top-level ``ignore`` names are skipped."""
    def walk(root: Path) -> dict[str, Path]:
        found = {}
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = Path(dirpath).relative_to(root)
            if rel_dir == Path("."):
                dirnames[:] = [d for d in dirnames if d not in ignore]
                filenames = [f for f in filenames if f not in ignore]
            for name in filenames + [d for d in dirnames
                                     if (Path(dirpath) / d).is_symlink()]:
                found[(rel_dir / name).as_posix()] = Path(dirpath) / name
        return found

    left, right = walk(a), walk(b)
    differ = []
    for rel in sorted(set(left) | set(right)):
        x, y = left.get(rel), right.get(rel)
        if x is None or y is None:
            differ.append(rel)
        elif x.is_symlink() or y.is_symlink():
            if not (x.is_symlink() and y.is_symlink()
                    and os.readlink(x) == os.readlink(y)):
                differ.append(rel)
        elif _mode(x) != _mode(y) or not filecmp.cmp(x, y, shallow=False):
            differ.append(rel)
    return differ


# --------------------------------------------------------------------------
# The stack: the series of a release, plus the generated added-files patch


@dataclass(frozen=True)
class Patch:
    name: str
    dep3: Dep3
    files: tuple[FileDiff, ...]
    raw: bytes = field(repr=False)

    @property
    def date(self) -> str:
        return (self.dep3.get("Last-Update") or "").strip()


def read_patch(name: str, path: Path) -> Patch:
    raw = path.read_bytes()
    lines = raw.decode(**ENCODING).split("\n")
    start = diff_start(lines)
    dep3 = parse_dep3("\n".join(lines[:start]))
    files = parse_diff("\n".join(lines[start:]), name)
    if not files:
        raise ExportError(f"{name}: no diff in the patch")
    return Patch(name, dep3, tuple(files), raw)


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args],
                              capture_output=True, text=True)
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _most_common(values: list[str]) -> str | None:
    values = [v for v in values if v]
    return Counter(values).most_common(1)[0][0] if values else None


def added_files_patch(patches: list[Patch], repo: Path | None = None) -> Patch | None:
    """One patch that creates the files the patch set adds (None: none).

    Author, Origin and Forwarded are the ones the series' patches share;
    Last-Update is the newest of theirs and of the files' last commit."""
    root = repo or paths.REPO
    files = apply.added_files(root)
    if not files:
        return None
    # apply copies the files without their mode bits: so does this patch
    added = tuple(replace(d, mode="100644") for rel in files
                  if (d := diff_files(None, root / rel, rel.as_posix())) is not None)
    roots = [str(top) for top in paths.ADDED_ROOTS]
    author = _most_common([p.dep3.get("Author") or "" for p in patches]) \
        or _git(root, "log", "-1", "--format=%an <%ae>", "--", *roots) \
        or _git(root, "log", "-1", "--format=%an <%ae>")
    if not author:
        raise ExportError("cannot tell who wrote the added files: the series has "
                          "no patch with an Author: and nothing is committed")
    dates = [p.date for p in patches if _DATE.match(p.date)]
    committed = _git(root, "log", "-1", "--format=%cs", "--", *roots) \
        or _git(root, "log", "-1", "--format=%cs")
    dates += [committed] if _DATE.match(committed) else []
    if not dates:
        raise ExportError("cannot date the added files: no Last-Update in the "
                          "series and no commit of them")
    listing = [f"  {rel.as_posix()}" for rel in files]
    description = "\n".join([
        "Add the files that are new in the PEP 522 patch set",
        "The patch set keeps the files it adds to CPython at their tree paths;",
        "this patch creates them, so that the series applies on its own:", *listing])
    dep3 = Dep3((
        ("Description", description),
        ("Author", author),
        ("Origin", _most_common([p.dep3.get("Origin") or "" for p in patches])
         or "vendor"),
        ("Forwarded", _most_common([p.dep3.get("Forwarded") or "" for p in patches])
         or "not-needed"),
        ("Last-Update", max(dates)),
    ))
    text = dep3.render() + "\n" + "".join(d.render() for d in added)
    return Patch(ADDED_NAME, dep3, added, text.encode(**ENCODING))


def stack(version: str, *, patches_dir: Path | None = None,
          repo: Path | None = None) -> list[Patch]:
    """The series of ``version`` in order, then the added-files patch; stops
    with every incomplete DEP-3 header named."""
    entries = apply.series(version, patches_dir)
    patches = [read_patch(e.name, e.path) for e in entries]
    problems = [p for patch in patches for p in check_dep3(patch.name, patch.dep3)]
    if problems:
        raise ExportError("incomplete DEP-3 headers:\n  " + "\n  ".join(problems))
    if any(p.name == ADDED_NAME for p in patches):
        raise ExportError(f"{ADDED_NAME} is the name of the generated patch; "
                          "rename the series' patch")
    extra = added_files_patch(patches, repo)
    return patches + ([extra] if extra else [])


# --------------------------------------------------------------------------
# The three formats


def quilt_files(patches: list[Patch]) -> dict[str, bytes]:
    """``series`` and one file per patch: a series' patch byte for byte."""
    names = [p.name for p in patches]
    out = {"series": ("".join(f"{n}\n" for n in names)).encode()}
    for p in patches:
        out[p.name] = p.raw
    return out


def _mail_header(name: str, value: str) -> str:
    if value.isascii():
        return f"{name}: {value}"
    return f"{name}: " + email.header.Header(value, "utf-8", header_name=name).encode()


def _author_header(author: str) -> str:
    real, addr = email.utils.parseaddr(author)
    if real and not real.isascii():
        real = email.header.Header(real, "utf-8").encode()
    elif real and re.search(r'[()<>\[\]:;@\\,."]', real):
        real = '"' + real.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"From: {real} <{addr}>" if real else f"From: {addr}"


def diffstat(files: tuple[FileDiff, ...]) -> list[str]:
    counts = [(f.path, *f.counts()) for f in files]
    width = max((len(p) for p, _a, _r in counts), default=0)
    digits = max((len(str(a + r)) for _p, a, r in counts), default=1)
    biggest = max((a + r for _p, a, r in counts), default=0)
    scale = min(1.0, 40 / biggest) if biggest else 1.0
    lines = []
    for path, a, r in counts:
        plus, minus = round(a * scale), round(r * scale)
        if a and not plus:
            plus = 1
        if r and not minus:
            minus = 1
        lines.append(f" {path.ljust(width)} | {str(a + r).rjust(digits)} "
                     f"{'+' * plus}{'-' * minus}".rstrip())
    n = len(files)
    total_a, total_r = sum(c[1] for c in counts), sum(c[2] for c in counts)
    summary = f" {n} file{'s' if n != 1 else ''} changed"
    if total_a:
        summary += f", {total_a} insertion{'s' if total_a != 1 else ''}(+)"
    if total_r:
        summary += f", {total_r} deletion{'s' if total_r != 1 else ''}(-)"
    lines.append(summary)
    lines += [f" create mode {f.mode} {f.new}" for f in files if f.old is None]
    lines += [f" delete mode {f.mode} {f.old}" for f in files if f.new is None]
    return lines


def mail(patch: Patch, number: int, total: int) -> str:
    """One patch as git format-patch --zero-commit --no-signature writes it.

    The body is the Description's why-lines, then the other DEP-3 fields as
    trailers (so ``gbp pq export`` gives the header back), with the patch's
    name as gbp pq's ``Gbp-Pq: Name``."""
    date = dt.datetime.strptime(patch.date, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    prefix = f"[PATCH {number}/{total}]" if total > 1 else "[PATCH]"
    body = [line for line in patch.dep3.why]
    # git reads a trailer's indented lines as its continuation, as DEP-3 does
    trailers = Dep3(tuple((k, v) for k, v in patch.dep3.fields
                          if k not in ("Description", "Author", "Date"))
                    ).render().splitlines()
    trailers.append(f"Gbp-Pq: Name {patch.name}")
    text = "\n".join(body + [""] + trailers) + "\n---\n" \
        + "\n".join(diffstat(patch.files)) + "\n\n" \
        + "".join(f.render() for f in patch.files)
    head = [ZERO_FROM, _author_header(patch.dep3.get("Author") or ""),
            f"Date: {email.utils.format_datetime(date)}",
            _mail_header("Subject", f"{prefix} {patch.dep3.summary}")]
    if not text.isascii():
        head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8",
                 "Content-Transfer-Encoding: 8bit"]
    for line in body:
        if line == "---" or line.startswith(("diff -", "Index: ")):
            raise ExportError(f"{patch.name}: the Description line {line!r} would "
                              "end the commit message early in git am")
    return "\n".join(head) + "\n\n" + text


def mbox_text(patches: list[Patch]) -> str:
    return "\n".join(mail(p, i, len(patches)) for i, p in enumerate(patches, 1))


def combined_diff(pristine: Path, patched: Path, patches: list[Patch], version: str) -> str:
    """The net change between two trees as one -p1 diff, with a DEP-3 header
    that lists the patches it combines."""
    files = [d for rel in tree_differences(pristine, patched, ignore=())
             if (d := diff_files(_present(pristine / rel), _present(patched / rel),
                                 rel)) is not None]
    listing = [f"  {p.name}: {p.dep3.summary}" for p in patches]
    dates = [p.date for p in patches if p.date]
    fields = [("Description", "\n".join([
        f"PEP 522 for CPython {version}: the whole patch set as one diff",
        *PROJECT_WHY, "", "It combines, in this order:", *listing]))]
    for key in ("Author", "Origin", "Forwarded"):
        value = _most_common([p.dep3.get(key) or "" for p in patches])
        if value:
            fields.append((key, value))
    if dates:
        fields.append(("Last-Update", max(dates)))
    return Dep3(tuple(fields)).render() + "\n" + "".join(f.render() for f in files)


def _present(path: Path) -> Path | None:
    if path.is_symlink() or path.is_dir():
        raise ExportError(f"{path.name}: symbolic links and directories that "
                          "change cannot be exported as a patch")
    return path if path.exists() else None


def render(version: str, fmt: str, *, patches_dir: Path | None = None,
           repo: Path | None = None, fetched: fetch.Fetched | None = None,
           log=print) -> dict[str, bytes]:
    """The files of one export: name -> bytes."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose from {', '.join(FORMATS)}")
    patches = stack(version, patches_dir=patches_dir, repo=repo)
    base = f"pep522-cpython-{version}"
    if fmt == "quilt":
        return quilt_files(patches)
    if fmt == "mbox":
        return {f"{base}.mbox": mbox_text(patches).encode(**ENCODING)}
    got = fetched or fetch.fetch(release(version), log=log)
    with tempfile.TemporaryDirectory(prefix="pep522-export-") as tmp:
        pristine, patched = Path(tmp) / "a", Path(tmp) / "b"
        apply.unpack(got, pristine)
        apply.make_tree(got, "pep522", patched, patches_dir=patches_dir, repo=repo,
                        log=lambda _m: None)
        text = combined_diff(pristine, patched, patches, version)
    return {f"{base}.diff": text.encode(**ENCODING)}


def default_out(version: str, fmt: str) -> Path:
    return paths.OUT / "export" / f"cpython-{version}" / fmt


def write(files: dict[str, bytes], out: Path, *, owned: bool) -> list[Path]:
    """Write the export into ``out``. A folder of ours is replaced; a folder
    the user named must be new, empty, or hold only files this export writes."""
    if owned and out.exists():
        shutil.rmtree(out)
    if out.exists():
        ours = {name.split("/", 1)[0] for name in files}
        stray = sorted(p.name for p in out.iterdir() if p.name not in ours)
        if stray:
            raise ExportError(f"--out {out} holds files this export does not "
                              f"write ({', '.join(stray[:5])}); give a new or "
                              "empty folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
        written.append(out / name)
    return written


def export(version: str, fmt: str, out: Path | None = None, log=print) -> list[Path]:
    files = render(version, fmt, log=log)
    return write(files, out or default_out(version, fmt), owned=out is None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s export --",
                                description="Export the patch set for packagers.")
    p.add_argument("--cpython", default=DEFAULT_VERSION, metavar="VERSION",
                   help=f"CPython release (default {DEFAULT_VERSION})")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder to write (default build/out/export/cpython-V/FORMAT)")
    args = p.parse_args(argv)
    try:
        release(args.cpython)
        written = export(args.cpython, args.format, args.out)
    except (ExportError, apply.ApplyError, fetch.FetchError, UnknownVersion) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
