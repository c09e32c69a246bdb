"""The patch set in the forms packagers and builders of images take: a quilt
series, ``git am`` mail, one combined diff, Buildroot's and Yocto's forms.

    python -m pep522_harness export [--cpython V] --format FORMAT [--out DIR]
        [--signoff 'NAME <EMAIL>']

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
buildroot, yocto
       that same series as ``git format-patch -N`` files, ``NNNN-<name>.patch``,
       with the trailers each project asks for (embedded.py), and for yocto
       a ``python3_%.bbappend``.

Every export is byte-for-byte reproducible: no dates but the headers' own
Last-Update, no commit ids, no index lines, files in a fixed order. Every
form gives exactly the tree ``apply`` gives (the tests compare the trees).
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
import subprocess
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

from pep522_harness.core import apply, fetch, options, paths
from pep522_harness.core.errors import HarnessError
from pep522_harness.core.quilt import (AUTHOR, DATE, ENCODING, Dep3, FileDiff, Patch,
                                       check_dep3, diff_files, file_mode, read_patch)
from pep522_harness.core.versions import release

from . import embedded

FORMATS = ("quilt", "mbox", "diff", *embedded.FORMATS)
ADDED_NAME = "pep522-added-files.patch"
ZERO_FROM = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
PROJECT_WHY = (
    "PEP 522 (rejected upstream in favour of PEP 524, so not forwarded) makes",
    "os.urandom() and random.SystemRandom raise BlockingIOError while the",
    "kernel's random number generator is not ready, instead of blocking;",
    "secrets waits, and start-up neither blocks nor reads /dev/urandom.",
)


class ExportError(HarnessError):
    pass


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
        elif file_mode(x) != file_mode(y) or not filecmp.cmp(x, y, shallow=False):
            differ.append(rel)
    return differ


# --------------------------------------------------------------------------
# The stack: the series of a release, plus the generated added-files patch


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
    dates = [p.date for p in patches if DATE.match(p.date)]
    committed = _git(root, "log", "-1", "--format=%cs", "--", *roots) \
        or _git(root, "log", "-1", "--format=%cs")
    dates += [committed] if DATE.match(committed) else []
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


def mail(patch: Patch, number: int, total: int, extra: tuple[str, ...] = ()) -> str:
    """One patch as git format-patch --zero-commit --no-signature writes it.

    The body is the Description's why-lines, then the other DEP-3 fields as
    trailers (so ``gbp pq export`` gives the header back), with the patch's
    name as gbp pq's ``Gbp-Pq: Name``, then the ``extra`` trailer lines."""
    date = dt.datetime.strptime(patch.date, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    prefix = f"[PATCH {number}/{total}]" if total > 1 else "[PATCH]"
    body = [line for line in patch.dep3.why]
    # git reads a trailer's indented lines as its continuation, as DEP-3 does
    trailers = Dep3(tuple((k, v) for k, v in patch.dep3.fields
                          if k not in ("Description", "Author", "Date"))
                    ).render().splitlines()
    trailers.append(f"Gbp-Pq: Name {patch.name}")
    trailers += extra
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
           signoff: str | None = None, log=print) -> dict[str, bytes]:
    """The files of one export: name -> bytes.  ``signoff``: one more
    Signed-off-by of the embedded forms, after the author's."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose from {', '.join(FORMATS)}")
    patches = stack(version, patches_dir=patches_dir, repo=repo)
    base = f"pep522-cpython-{version}"
    if fmt == "quilt":
        return quilt_files(patches)
    if fmt == "mbox":
        return {f"{base}.mbox": mbox_text(patches).encode(**ENCODING)}
    if fmt in embedded.FORMATS:
        named = {}
        for number, p in enumerate(patches, 1):
            extra = embedded.trailers(fmt, p.dep3.get("Author") or "", signoff)
            named[embedded.file_name(number, p.name)] = \
                mail(p, 1, 1, extra).encode(**ENCODING)
        return embedded.layout(fmt, version, named)
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


def export(version: str, fmt: str, out: Path | None = None, log=print,
           signoff: str | None = None) -> list[Path]:
    files = render(version, fmt, signoff=signoff, log=log)
    return write(files, out or default_out(version, fmt), owned=out is None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s export --",
                                description="Export the patch set for packagers.")
    options.cpython(p)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder to write (default build/out/export/cpython-V/FORMAT)")
    p.add_argument("--signoff", metavar="'NAME <EMAIL>'",
                   help="buildroot, yocto: your Signed-off-by, after the author's")
    args = p.parse_args(argv)
    if args.signoff and args.format not in embedded.FORMATS:
        p.error(f"--signoff is for --format {' or '.join(embedded.FORMATS)}")
    if args.signoff and not AUTHOR.match(args.signoff):
        p.error(f"--signoff {args.signoff!r}: give 'Name <email>'")
    written = export(args.cpython, args.format, args.out, signoff=args.signoff)
    for path in written:
        print(path)
    return 0
