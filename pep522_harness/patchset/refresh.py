"""Carry the series to a new upstream release: the packager's job when
upstream moves.

    python -m pep522_harness refresh --cpython NEW [--from BASE]
        [--tarball PATH] [--sha256 HEX] [--debian-suite SUITE] [--dry-run]

The series of BASE (the shared patches with BASE's variants, then BASE's own
``patches/BASE/series``) is applied in order to NEW's pristine tree. A patch
whose hunks all apply with zero fuzz is kept byte for byte. A hunk that does
not is merged three-way (merge.py): BASE's file before the patch, the same
with this hunk, and NEW's file as the patches before it left it. Such a
patch is written anew from NEW's tree, as ``git diff`` writes (function
context, no index lines), under its own DEP-3 header with a paragraph that
says what was merged and Last-Update the date of the run (a patch whose
diff NEW already has keeps its date: a refresh gives the same bytes when
nothing changed).

Where NEW's patch goes: a shared patch (``patches/N``) that applies stays
shared, unchanged; a patch of BASE's own series that applies unchanged
becomes shared, listed by both releases' series; anything else is NEW's
variant, ``patches/NEW/N``. NEW's own series is BASE's, plus the patches
NEW's series listed that BASE's does not (applied last, as they are).

A hunk that conflicts stops the refresh: every hunk is reported, each
conflict with its lines, and nothing is written. A conflict resolved by
hand in NEW's variant ``patches/NEW/N`` is kept on the next run, when that
variant applies with zero fuzz. Otherwise the files are written into a
staging folder, the staged series is applied to a fresh NEW tree and must
give the refreshed tree, and only then are they moved into place.

A NEW without a row in versions.toml is refused unless ``--tarball`` and
``--sha256`` pin it: the tarball is checked against the SHA-256 and its
Include/patchlevel.h, and the row is written with the patches (in release
order, newest first; Debian source ``pythonX.Y``, suite ``--debian-suite``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import tempfile
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path

from pep522_harness.core import apply, fetch, paths, quilt
from pep522_harness.core.errors import HarnessError
from pep522_harness.core.progress import Log
from pep522_harness.core.fetch import Fetched
from pep522_harness.core.quilt import ENCODING, Dep3, FileDiff, SeriesEntry
from pep522_harness.core.versions import (TABLE, Release, UnknownVersion, order, release,
                                          releases, with_row)
from pep522_harness.patchset import merge
from pep522_harness.patchset.export import tree_differences

APPLIED, MERGED, CONFLICT = "applied", "merged", "conflict"
NOTE = "Refreshed for CPython "      # the paragraph a refresh adds to a Description


class RefreshError(HarnessError):
    pass


@dataclass(frozen=True)
class HunkOutcome:
    patch: str
    file: str
    number: int                 # of the hunk in its file, from 1
    header: str
    status: str
    offset: int = 0
    conflicts: tuple[merge.Conflict, ...] = ()

    def line(self) -> str:
        at = f" (offset {self.offset:+d})" if self.offset else ""
        return f"    {self.status:8} {self.file} #{self.number} {self.header}{at}"


@dataclass(frozen=True)
class PatchOutcome:
    name: str
    raw: bytes                  # NEW's patch
    kept: bool = False          # NEW's own variant, kept as the resolution


@dataclass
class Result:
    base: str
    new: str
    hunks: list[HunkOutcome] = field(default_factory=list)
    patches: list[PatchOutcome] = field(default_factory=list)
    writes: dict[Path, bytes | None] = field(default_factory=dict)   # None: remove

    @property
    def conflicts(self) -> list[HunkOutcome]:
        return [h for h in self.hunks if h.status == CONFLICT]


# --------------------------------------------------------------------------
# One patch carried onto NEW's tree


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _hunks(fd: FileDiff) -> list[tuple[str, ...]]:
    """A file section's hunks, each its @@ line and body."""
    out: list[list[str]] = []
    for line in fd.hunks:
        if line.startswith("@@"):
            out.append([])
        out[-1].append(line)
    return [tuple(h) for h in out]


def _apply_text(text: str, tree: Path, name: str, work: Path) -> None:
    fd, path = tempfile.mkstemp(dir=work, suffix=".patch")
    os.close(fd)
    Path(path).write_text(text, **ENCODING)
    apply.apply_patch(SeriesEntry(name, Path(path)), tree)


def _with_hunk(before: bytes, fd: FileDiff, hunk: tuple[str, ...], name: str,
               work: Path) -> bytes:
    """BASE's file before the patch, with this one hunk applied."""
    tree = Path(tempfile.mkdtemp(dir=work))
    (tree / fd.path).parent.mkdir(parents=True, exist_ok=True)
    (tree / fd.path).write_bytes(before)
    _apply_text(replace(fd, hunks=hunk).render(), tree, name, work)
    return (tree / fd.path).read_bytes()


def _text(data: bytes) -> list[str]:
    return merge.lines(data.decode(**ENCODING))


def _carry(entry: SeriesEntry, tree: Path, base_before: dict[str, bytes | None],
           work: Path) -> tuple[list[HunkOutcome], list[str]]:
    """Apply ``entry`` to NEW's tree, merging the hunks that do not apply:
    (every hunk's outcome, the files merged)."""
    dry = apply.dry_run(entry.path, tree)
    outcomes = {(h.file, h.number): HunkOutcome(entry.name, h.file, h.number, h.header,
                                                APPLIED, h.offset) for h in dry.hunks}
    failing = [(h.file, h.number) for h in dry.hunks if not h.applies]
    if not dry.problems:
        apply.apply_patch(entry, tree)
        return list(outcomes.values()), []
    if not failing:
        raise RefreshError(f"{entry.name} on CPython's new tree:\n" + "\n".join(dry.problems))
    patch = quilt.read_patch(entry.name, entry.path)
    # first the hunks that apply, as they are
    passing = [replace(fd, hunks=tuple(line for n, h in enumerate(_hunks(fd), 1)
                                       if (fd.path, n) not in failing for line in h))
               for fd in patch.files]
    text = "".join(fd.render() for fd in passing if fd.hunks)
    if text:
        _apply_text(text, tree, entry.name, work)
    merged = []
    for fd in patch.files:
        for n, hunk in enumerate(_hunks(fd), 1):
            if (fd.path, n) not in failing:
                continue
            before, target = base_before.get(fd.path), tree / fd.path
            if before is None or fd.old is None or fd.new is None or not target.is_file():
                # a file created or deleted: nothing to merge with
                outcomes[fd.path, n] = replace(outcomes[fd.path, n], status=CONFLICT)
                continue
            patched = _with_hunk(before, fd, hunk, entry.name, work)
            result = merge.merge3(_text(before), _text(target.read_bytes()),
                                  _text(patched), prose=merge.is_prose(fd.path))
            if result.clean:
                target.write_bytes(result.text.encode(**ENCODING))
                merged.append(fd.path)
                outcomes[fd.path, n] = replace(outcomes[fd.path, n], status=MERGED)
            else:
                outcomes[fd.path, n] = replace(outcomes[fd.path, n], status=CONFLICT,
                                               conflicts=result.conflicts)
    return list(outcomes.values()), list(dict.fromkeys(merged))


def _header_and_rest(raw: bytes) -> tuple[Dep3, str]:
    """A patch's DEP-3 header, and what stands between it and the diff."""
    lines = raw.decode(**ENCODING).split("\n")
    start = quilt.diff_start(lines)
    first = next((i for i in range(start, len(lines))
                  if lines[i].startswith("diff --git ")), start)
    between = "".join(f"{line}\n" for line in lines[start:first])
    return quilt.parse_dep3("\n".join(lines[:start])), between


def note(new: str, base: str, files: list[str]) -> str:
    """The paragraph a refresh adds to the Description of a patch it merged."""
    where = " and ".join([", ".join(files[:-1]), files[-1]] if len(files) > 1 else files)
    return "\n".join(textwrap.wrap(
        f"{NOTE}{new} from the patch for {base}: upstream changed the lines "
        f"around its hunks in {where}, which were merged three-way.",
        width=72, break_long_words=False, break_on_hyphens=False))


def rewrite(raw: bytes, diffs: list[FileDiff], paragraph: str, date: str) -> bytes:
    """``raw``'s header with ``paragraph`` (replacing an earlier refresh's) at
    the end of its Description and Last-Update ``date``, then ``diffs``."""
    dep3, between = _header_and_rest(raw)
    fields = []
    for key, value in dep3.fields:
        if key == "Description":
            kept = [p for p in value.split("\n\n") if not p.startswith(NOTE)]
            value = "\n\n".join([*kept, paragraph])
        elif key == "Last-Update":
            value = date
        fields.append((key, value))
    text = Dep3(tuple(fields)).render() + between + "".join(d.render() for d in diffs)
    return text.encode(**ENCODING)


# --------------------------------------------------------------------------
# The whole series


def _series_names(listing: Path) -> list[str]:
    return [name for _lineno, name in quilt.read_series(listing)] if listing.is_file() else []


def _resolve(pdir: Path, version: str, name: str) -> Path:
    variant = pdir / version / name
    return variant if variant.is_file() else pdir / name


def _placement(pdir: Path, base: str, new: str, name: str, raw: bytes,
               shared_series: list[str]) -> dict[Path, bytes | None]:
    shared, variant, base_own = pdir / name, pdir / new / name, pdir / base / name
    if _read(shared) == raw:
        return {variant: None}
    if (name not in shared_series and base != new and not shared.exists()
            and _read(base_own) == raw):
        return {shared: raw, base_own: None, variant: None}
    return {variant: raw}


def _series_file(pdir: Path, base: str, new: str, names: list[str]) -> bytes | None:
    listing = pdir / new / "series"
    if not names:
        return None
    if _series_names(listing) == names:
        return listing.read_bytes()
    if _series_names(pdir / base / "series") == names:
        return (pdir / base / "series").read_bytes()
    return "".join(f"{n}\n" for n in names).encode()


def refresh(base: Fetched, new: Fetched, *, patches_dir: Path | None = None,
            today: dt.date, log: Log = print) -> Result:
    """Carry BASE's series onto NEW: every hunk's outcome and, when no hunk
    conflicts, the files to write (nothing is written here)."""
    pdir = patches_dir or paths.PATCHES
    bv, nv = base.release.version, new.release.version
    result = Result(bv, nv)
    entries = apply.series(bv, pdir)
    shared_series = _series_names(pdir / "series")
    own = _series_names(pdir / bv / "series")
    extra = [n for n in _series_names(pdir / nv / "series") if n not in own]
    log(f"refresh: the series of CPython {bv} onto {nv}, "
        f"{len(entries)} patches" + (f" and {len(extra)} of {nv}'s own" if extra else ""))
    with tempfile.TemporaryDirectory(prefix="pep522-refresh-") as tmp:
        work = Path(tmp)
        btree, ntree = work / "base", work / "new"
        apply.unpack(base, btree)
        apply.unpack(new, ntree)
        _check_version(ntree, nv)
        (work / "patches").mkdir()
        for entry in entries:
            result.patches.append(_one(entry, result, pdir, btree, ntree, work / "patches",
                                       today, log))
        if result.conflicts:
            raise RefreshError(conflict_message(result))
        for name in extra:
            entry = SeriesEntry(name, _resolve(pdir, nv, name))
            log(f"  {name} ({nv}'s own)")
            try:
                apply.apply_patch(entry, ntree)
            except apply.ApplyError as exc:
                raise RefreshError(f"{exc}\nNothing was written.") from None
        for patch in result.patches:
            for path, data in _placement(pdir, bv, nv, patch.name, patch.raw,
                                         shared_series).items():
                result.writes.setdefault(path, data)
        result.writes[pdir / nv / "series"] = _series_file(pdir, bv, nv, own + extra)
        result.writes = {p: d for p, d in result.writes.items() if _read(p) != d}
        _verify(new, pdir, result, ntree, work)
        apply.add_files(ntree)       # the added files must still be new upstream
    return result


def _one(entry: SeriesEntry, result: Result, pdir: Path, btree: Path, ntree: Path,
         work: Path, today: dt.date, log: Log) -> PatchOutcome:
    """One patch of BASE's series: applied to BASE's tree, carried onto NEW's."""
    patch = quilt.read_patch(entry.name, entry.path)
    files = list(dict.fromkeys(f.path for f in patch.files))
    base_before = {f: _read(btree / f) for f in files}
    try:
        apply.apply_patch(entry, btree)
    except apply.ApplyError as exc:
        raise RefreshError(f"the series of CPython {result.base} does not apply to "
                           f"{result.base} itself:\n{exc}") from None
    new_before = {f: _read(ntree / f) for f in files}
    hunks, merged = _carry(entry, ntree, base_before, work)
    log(f"  {entry.name}")
    for h in hunks:
        log(h.line())
    if any(h.status == CONFLICT for h in hunks):
        own = pdir / result.new / entry.name
        if own.is_file() and own != entry.path and _kept(own, entry.name, ntree,
                                                         new_before):
            log(f"    resolved by {paths.relative(str(own))}, kept as it is")
            result.hunks += [replace(h, status=APPLIED, conflicts=()) for h in hunks]
            return PatchOutcome(entry.name, own.read_bytes(), kept=True)
        result.hunks += hunks
        return PatchOutcome(entry.name, patch.raw)
    result.hunks += hunks
    if not merged:
        return PatchOutcome(entry.name, patch.raw)
    diffs = [d for f in files if (d := quilt.git_diff(new_before[f], _read(ntree / f), f))]
    if not diffs:
        raise RefreshError(f"{entry.name}: CPython {result.new} already makes its "
                           "change; drop it from the series")
    # the date stays when NEW's patch has this diff already
    current = _resolve(pdir, result.new, entry.name)
    now = quilt.read_patch(entry.name, current) if current.is_file() else None
    date = now.date if now and now.files == tuple(diffs) else today.isoformat()
    raw = rewrite(patch.raw, diffs, note(result.new, result.base, merged), date)
    return PatchOutcome(entry.name, raw)


def _kept(own: Path, name: str, tree: Path, before: dict[str, bytes | None]) -> bool:
    """NEW's own variant applied in place of the merge, when it applies with
    zero fuzz to the tree as it was before the patch."""
    for rel, data in before.items():
        if data is None:
            (tree / rel).unlink(missing_ok=True)
        else:
            (tree / rel).write_bytes(data)
    if apply.dry_run(own, tree).problems:
        return False
    apply.apply_patch(SeriesEntry(name, own), tree)
    return True


def _check_version(tree: Path, version: str) -> None:
    found = fetch.tree_version(tree)
    if found != version:
        raise RefreshError(f"the tarball of CPython {version} holds CPython {found}")


def conflict_message(result: Result) -> str:
    n = len(result.conflicts)
    out = [f"refresh stopped: {n} hunk{'s' if n > 1 else ''} of the {result.base} series "
           f"conflict{'' if n > 1 else 's'} with CPython {result.new}; nothing was written."]
    for h in result.conflicts:
        out.append(f"\n{h.patch}: {h.file} hunk #{h.number} {h.header}")
        if not h.conflicts:
            out.append("  the patch creates or deletes the file: nothing to merge with")
        for c in h.conflicts:
            out.append(f"  <<<<<<< CPython {result.new}")
            out += [f"  {line.rstrip(chr(10))}" for line in c.upstream]
            out.append(f"  ||||||| CPython {result.base}")
            out += [f"  {line.rstrip(chr(10))}" for line in c.base]
            out.append("  =======")
            out += [f"  {line.rstrip(chr(10))}" for line in c.patched]
            out.append(f"  >>>>>>> {h.patch}")
    out.append(f"\nResolve each in CPython {result.new}'s own variant, "
               f"patches/{result.new}/PATCH (one that applies to {result.new} with "
               "zero fuzz), and run the refresh again: it keeps that variant.")
    return "\n".join(out)


def _verify(new: Fetched, pdir: Path, result: Result, ntree: Path, work: Path) -> None:
    """The staged series, applied to a fresh tree of NEW, gives ``ntree``."""
    staged = work / "staged"
    shutil.copytree(pdir, staged)
    _stage(result.writes, pdir, staged)
    fresh = work / "fresh"
    apply.unpack(new, fresh)
    for entry in apply.series(result.new, staged):
        apply.apply_patch(entry, fresh)
    differ = tree_differences(fresh, ntree)
    if differ:
        raise RefreshError("the refreshed series does not give the refreshed tree "
                           f"(a bug of refresh): {', '.join(differ[:5])}")


def _stage(writes: dict[Path, bytes | None], pdir: Path, root: Path) -> None:
    for path, data in writes.items():
        if not path.is_relative_to(pdir):
            continue
        target = root / path.relative_to(pdir)
        if data is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def write(writes: dict[Path, bytes | None], root: Path) -> None:
    """Every file into a staging folder under ``root`` first, then each moved
    into place; then the removals (and a release folder left empty)."""
    if not writes:
        return
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".refresh-"))
    try:
        staged = {}
        for i, (path, data) in enumerate(writes.items()):
            if data is not None:
                staged[path] = staging / str(i)
                staged[path].write_bytes(data)
        for path, tmp in staged.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(tmp, path)
        for path, data in writes.items():
            if data is None:
                path.unlink(missing_ok=True)
                if path.parent != root and not any(path.parent.iterdir()):
                    path.parent.rmdir()
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------
# The command


def new_release(version: str, tarball: Path | None, sha256: str | None,
                debian_suite: str) -> tuple[Release, bool]:
    """NEW's release, and whether its row is new: a release without a row
    needs the tarball and its SHA-256."""
    try:
        known = release(version)
    except UnknownVersion:
        order(version)          # refuses what is not a version
        if tarball is None or sha256 is None:
            raise RefreshError(
                f"CPython {version} has no row in {TABLE.name}: give --tarball PATH "
                "and --sha256 HEX (the SHA-256 upstream publishes) to pin it") from None
        if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
            raise RefreshError(f"--sha256 {sha256!r} is not a SHA-256 (64 hex digits)")
        if tarball.name not in (f"Python-{version}.tar.xz", f"Python-{version}.tgz"):
            raise RefreshError(f"--tarball {tarball.name}: upstream's tarball of "
                               f"{version} is Python-{version}.tar.xz (or .tgz)")
        minor = ".".join(version.split(".")[:2])
        return Release(version, tarball.name, sha256.lower(), f"python{minor}",
                       debian_suite), True
    if sha256 is not None and sha256.lower() != known.sha256:
        raise RefreshError(f"--sha256 {sha256} is not the pin of {version} in "
                           f"{TABLE.name} ({known.sha256})")
    return known, False


def default_base(new: str) -> str:
    """The newest supported release of NEW's minor before NEW."""
    minor = ".".join(new.split(".")[:2])
    older = [v for v, r in releases().items() if r.minor == minor and order(v) < order(new)]
    if not older:
        raise RefreshError(f"no supported {minor} release before {new}: give --from BASE")
    return max(older, key=order)


def run_date() -> dt.date:
    """Today, or the date of SOURCE_DATE_EPOCH (reproducible builds) when set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).date()
    return dt.datetime.now(dt.timezone.utc).date()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s refresh --",
                                description="Carry the series to a new upstream release.")
    p.add_argument("--cpython", required=True, metavar="NEW",
                   help="the new release (a row of versions.toml, or --tarball and --sha256)")
    p.add_argument("--from", dest="base", choices=list(releases()), metavar="BASE",
                   help="the release whose series is carried (default: the newest "
                   "supported one of NEW's minor before NEW)")
    p.add_argument("--tarball", type=Path, metavar="PATH", help="NEW's upstream tarball")
    p.add_argument("--sha256", metavar="HEX", help="its SHA-256 (a NEW without a row)")
    p.add_argument("--debian-suite", default="sid", metavar="SUITE",
                   help="the Debian suite of NEW's row when it is new (default sid)")
    p.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    args = p.parse_args(argv)
    rel, new_row = new_release(args.cpython, args.tarball, args.sha256, args.debian_suite)
    base = args.base or default_base(rel.version)
    got_base = fetch.fetch(release(base), log=lambda _m: None)
    got_new = fetch.fetch(rel, tarball=args.tarball, log=lambda _m: None)
    result = refresh(got_base, got_new, today=run_date())
    if new_row:
        result.writes[TABLE] = with_row(TABLE.read_text(), rel).encode()
    for path, data in result.writes.items():
        what = "remove" if data is None else "write"
        print(f"{what}: {paths.relative(str(path))}")
    if not result.writes:
        print(f"unchanged: the series of {rel.version} is already this one")
    elif args.dry_run:
        print("(--dry-run: nothing was written)")
    else:
        write(result.writes, paths.REPO)
    return 0
