"""Turn a pristine release into a work tree: unpack, apply the series with
zero fuzz, add the files the patch set adds, and sync into the build tree.

The series is ``patches/series`` (quilt format), shared by every release.
A patch for some releases only (its target is new in them, or gone from the
others) is listed in each such release's own ``patches/V/series``, applied
after the shared series. For version V a patch name N resolves to
``patches/V/N`` when that variant exists, else ``patches/N``.
Files under ``Lib/``, ``Modules/`` and ``Python/`` of this repository are
added at the same paths; they must not exist upstream.

    python -m pep522_harness apply [--cpython V] [--variant pep522|stock] [--out DIR]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import fetch, options, paths, quilt
from .errors import HarnessError
from .fetch import Fetched
from .versions import release


class ApplyError(HarnessError):
    pass


def series(version: str, patches_dir: Path | None = None) -> list[quilt.SeriesEntry]:
    """The active patches for ``version``, in order: the shared series (each
    entry replaced by its variant in ``patches/V/`` where there is one), then
    the release's own series ``patches/V/series``."""
    pdir = patches_dir or paths.PATCHES
    entries: list[quilt.SeriesEntry] = []
    for listing in (pdir / "series", pdir / version / "series"):
        if not listing.is_file():
            continue
        for lineno, name in quilt.read_series(listing):
            variant = pdir / version / name
            path = variant if variant.is_file() else pdir / name
            if not path.is_file():
                raise ApplyError(f"{listing}:{lineno}: {name} is listed but missing")
            if any(e.name == name for e in entries):
                raise ApplyError(f"{listing}:{lineno}: {name} is listed twice")
            entries.append(quilt.SeriesEntry(name, path))
    return entries


def added_files(repo: Path | None = None) -> list[Path]:
    """Paths (relative to the repo) of the files the patch set adds."""
    root = repo or paths.REPO
    found = []
    for top in paths.ADDED_ROOTS:
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")) or name == ".gitkeep":
                    continue
                found.append((Path(dirpath) / name).relative_to(root))
    return found


def unpack(fetched: Fetched, dest: Path) -> None:
    dest.mkdir(parents=True)
    if fetched.source_dir is not None:
        shutil.copytree(fetched.source_dir, dest, dirs_exist_ok=True,
                        symlinks=True, ignore=shutil.ignore_patterns(".git"))
        return
    assert fetched.path is not None
    proc = subprocess.run(["tar", "-xf", str(fetched.path), "-C", str(dest),
                           "--strip-components=1", "--no-same-owner"],
                          capture_output=True, text=True)
    if proc.returncode:
        raise ApplyError(f"cannot unpack {fetched.path}: {proc.stderr.strip()}")


_FILE = re.compile(r"^(?:patching|checking) file (.+)$")
_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (\d+)")
_FUZZ = re.compile(r"^Hunk #(\d+) succeeded at \d+ with fuzz")
_OFFSET = re.compile(r"^Hunk #(\d+) succeeded at \d+ \(offset (-?\d+) lines?\)")
_NOT_CLEAN = re.compile(r"^Hunk #\d+ (?:succeeded at \d+ with fuzz \d+|FAILED at \d+"
                        r"|ignored at \d+)")


def fuzzed(output: str) -> dict[str, list[str]]:
    """File -> what GNU patch's output says of the hunks that needed fuzz or
    did not apply; {} when none did (a hunk moved by an offset is fine).  For
    the tools that apply patches their own way, some with fuzz allowed."""
    found: dict[str, list[str]] = {}
    current = "?"
    for line in output.splitlines():
        if m := _FILE.match(line):
            current = m.group(1).strip("'")
        elif m := _NOT_CLEAN.match(line):
            found.setdefault(current, []).append(m.group(0))
    return found


@dataclass(frozen=True)
class Hunk:
    """What GNU patch makes of one hunk: ``number`` counts from 1 in its file."""
    file: str
    number: int
    header: str
    applies: bool
    offset: int = 0


@dataclass(frozen=True)
class DryRun:
    """A patch tried on a tree with zero fuzz, nothing changed: every hunk,
    and what stops it (empty: it applies)."""
    hunks: tuple[Hunk, ...]
    problems: tuple[str, ...]


def _patch_command(path: Path, tree: Path) -> list[str]:
    if shutil.which("patch") is None:
        raise ApplyError("GNU patch is not installed: apt-get install patch")
    return ["patch", "-p1", "-F0", "--forward", "--batch", "--no-backup-if-mismatch",
            "-r", "-", "-d", str(tree), "-i", str(path)]


def dry_run(path: Path, tree: Path) -> DryRun:
    """Try the patch at ``path`` on ``tree`` with zero fuzz, changing nothing."""
    dry = subprocess.run(_patch_command(path, tree) + ["--dry-run"],
                         capture_output=True, text=True)
    problems = []
    failed: set[tuple[str, int]] = set()
    offsets: dict[tuple[str, int], int] = {}
    current = "?"
    headers = quilt.hunk_headers(path)
    for line in (dry.stdout + dry.stderr).splitlines():
        if m := _FILE.match(line):
            current = m.group(1).strip("'")
        elif m := _FAILED.match(line):
            hunk = int(m.group(1))
            failed.add((current, hunk))
            heads = headers.get(current, [])
            head = heads[hunk - 1] if hunk <= len(heads) else ""
            problems.append(f"  {current}: hunk #{hunk} {head} does not apply "
                            f"(context drifted; fuzz is not allowed)")
        elif m := _OFFSET.match(line):
            offsets[(current, int(m.group(1)))] = int(m.group(2))
        elif m := _FUZZ.match(line):
            problems.append(f"  {current}: hunk #{m.group(1)} needs fuzz")
        elif "Reversed (or previously applied) patch detected" in line:
            problems.append(f"  {current}: already applied (reversed patch)")
    if dry.returncode and not problems:
        problems.append((dry.stdout + dry.stderr).strip())
    hunks = tuple(Hunk(file, n, head, (file, n) not in failed, offsets.get((file, n), 0))
                  for file, heads in headers.items()
                  for n, head in enumerate(heads, 1))
    return DryRun(hunks, tuple(problems))


def apply_patch(entry: quilt.SeriesEntry, tree: Path) -> None:
    """Apply one patch with zero fuzz; any failure names patch, file, hunk."""
    dry = dry_run(entry.path, tree)
    if dry.problems:
        raise ApplyError(f"patch {entry.name} does not apply with zero fuzz:\n"
                         + "\n".join(dry.problems)
                         + "\nRefresh the patch against the pristine tree.")
    done = subprocess.run(_patch_command(entry.path, tree), capture_output=True, text=True)
    if done.returncode:
        raise ApplyError(f"patch {entry.name} failed:\n{done.stdout}{done.stderr}")


def add_files(tree: Path, repo: Path | None = None) -> list[Path]:
    root = repo or paths.REPO
    files = added_files(root)
    for rel in files:
        target = tree / rel
        if target.exists():
            raise ApplyError(f"{rel} exists upstream: files under Lib/, Modules/ "
                             "and Python/ must be new; change upstream files "
                             "with a patch in patches/ instead")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, target)
    return files


def make_tree(fetched: Fetched, variant: str, dest: Path, *,
              patches_dir: Path | None = None, repo: Path | None = None,
              log=print) -> None:
    """A fresh tree at ``dest``: pristine, plus the series for pep522."""
    unpack(fetched, dest)
    if variant == "stock":
        return
    entries = series(fetched.release.version, patches_dir)
    for entry in entries:
        apply_patch(entry, dest)
    added = add_files(dest, repo)
    log(f"applying: {len(entries)} patches, {len(added)} added files")


def sync_tree(staging: Path, target: Path) -> int:
    """Make ``target`` equal to ``staging``, touching only what differs, so
    that make rebuilds only what a change touches. Returns files changed."""
    changed = 0
    target.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(staging):
        rel = Path(dirpath).relative_to(staging)
        tdir = target / rel
        tdir.mkdir(exist_ok=True)
        wanted = set(dirnames) | set(filenames)
        for name in os.listdir(tdir):
            if name not in wanted:
                gone = tdir / name
                if gone.is_dir() and not gone.is_symlink():
                    shutil.rmtree(gone)
                else:
                    gone.unlink()
                changed += 1
        for name in filenames:
            src, dst = Path(dirpath) / name, tdir / name
            if src.is_symlink():
                if not dst.is_symlink() or os.readlink(src) != os.readlink(dst):
                    if dst.exists() or dst.is_symlink():
                        dst.unlink()
                    os.symlink(os.readlink(src), dst)
                    changed += 1
                continue
            same = (dst.is_file() and not dst.is_symlink()
                    and filecmp.cmp(src, dst, shallow=False)
                    and (src.stat().st_mode & 0o777) == (dst.stat().st_mode & 0o777))
            if not same:
                if dst.is_symlink() or dst.is_dir():
                    shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
                shutil.copyfile(src, dst)   # new mtime: make sees the change
                shutil.copymode(src, dst)
                changed += 1
    return changed


def prepare(fetched: Fetched, variant: str, src: Path, log=print) -> int:
    """Build the tree in a staging folder, then sync it into ``src``."""
    src.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=src.parent, prefix=".staging-") as tmp:
        staging = Path(tmp) / "src"
        make_tree(fetched, variant, staging, log=log)
        return sync_tree(staging, src)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s apply --")
    fetch.source_options(p)
    options.variant(p)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="fresh tree to create (default build/tree/.../src)")
    args = p.parse_args(argv)
    rel = release(args.cpython)
    got = fetch.fetch(rel, tarball=args.tarball, source=args.source)
    if args.out:
        if args.out.exists():
            raise ApplyError(f"--out {args.out} exists; give a new folder")
        make_tree(got, args.variant, args.out)
        print(args.out)
        return 0
    src = paths.tree_dir(rel.version, args.variant) / "src"
    changed = prepare(got, args.variant, src)
    print(f"{src} ({changed} files changed)")
    return 0
