"""Get the pristine upstream tarball of a supported release, verified.

Sources, in order: a tarball or CPython checkout the user names, python.org,
then Debian's source package of the same release (its ``.orig`` tarball is
the upstream tarball byte for byte, so the same SHA-256 pin applies).
A verified tarball is kept in the user's cache; nothing unverified is kept.

    python -m pep522_harness fetch [--cpython V] [--tarball PATH | --source DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import options, paths
from .aptsource import AptError, PrivateApt
from .errors import HarnessError
from .versions import Release, release

PYTHON_ORG_TIMEOUT = float(os.environ.get("PEP522_DOWNLOAD_TIMEOUT", "15"))


class FetchError(HarnessError):
    pass


class ChecksumError(FetchError):
    pass


@dataclass(frozen=True)
class Fetched:
    """A verified tarball (``path``) or a user's checkout (``source_dir``)."""
    release: Release
    origin: str
    path: Path | None = None
    source_dir: Path | None = None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(candidate: Path, release: Release, origin: str) -> None:
    got = sha256_of(candidate)
    if got != release.sha256:
        raise ChecksumError(
            f"SHA-256 mismatch for {release.file} from {origin}:\n"
            f"  expected {release.sha256}\n  got      {got}\n"
            "The file was not cached. Pass the pristine upstream release "
            "tarball, or remove the bad file and fetch again.")


def _store(candidate: Path, release: Release, origin: str, *, move: bool) -> Path:
    """Verify, then place in the cache atomically."""
    _verify(candidate, release, origin)
    cache = paths.tarball_cache()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / release.file
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".part-")
    os.close(fd)
    if move:
        shutil.move(candidate, tmp)
    else:
        shutil.copyfile(candidate, tmp)
    os.replace(tmp, target)
    return target


def cached(release: Release) -> Path | None:
    target = paths.tarball_cache() / release.file
    if target.is_file():
        if sha256_of(target) == release.sha256:
            return target
        target.unlink()  # a damaged cache entry is refetched, never used
    return None


def from_python_org(release: Release, workdir: Path,
                    base_url: str | None = None) -> Path:
    """Download from python.org; raises OSError when it is unreachable."""
    url = release.url
    if base_url or os.environ.get("PEP522_PYTHON_ORG_URL"):
        base = (base_url or os.environ["PEP522_PYTHON_ORG_URL"]).rstrip("/")
        url = f"{base}/{release.version}/{release.file}"
    dest = workdir / release.file
    with urllib.request.urlopen(url, timeout=PYTHON_ORG_TIMEOUT) as resp, \
            dest.open("wb") as out:
        shutil.copyfileobj(resp, out)
    return dest


def from_debian(release: Release, workdir: Path) -> Path:
    """Download Debian's source package and return its .orig tarball."""
    apt = PrivateApt(paths.cache_root() / "apt", [release.debian_suite])
    dest = workdir / "debian"
    apt.source(release.debian_source, dest, upstream=release.version)
    origs = sorted(dest.glob(f"{release.debian_source}_{release.version}.orig.tar.*"))
    origs = [p for p in origs if not p.name.endswith(".asc")]
    if not origs:
        raise FetchError(f"Debian's {release.debian_source} source package in "
                         f"{release.debian_suite} has no {release.version} .orig tarball")
    return origs[0]


def fetch(release: Release, *, tarball: Path | None = None,
          source: Path | None = None, log=print,
          python_org_url: str | None = None) -> Fetched:
    if tarball is not None:
        if not tarball.is_file():
            raise FetchError(f"--tarball {tarball}: no such file")
        log(f"fetching: using {tarball}")
        return Fetched(release, "user tarball",
                       path=_store(tarball, release, str(tarball), move=False))
    if source is not None:
        return Fetched(release, "user checkout", source_dir=_check_checkout(source, release))

    hit = cached(release)
    if hit:
        log(f"fetching: {release.file} (cached, SHA-256 verified)")
        return Fetched(release, "cache", path=hit)

    paths.cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.cache_root(), prefix=".fetch-") as tmp:
        work = Path(tmp)
        log(f"fetching: {release.file} from python.org")
        try:
            got = from_python_org(release, work, python_org_url)
            return Fetched(release, "python.org",
                           path=_store(got, release, "python.org", move=True))
        except (OSError, urllib.error.URLError) as exc:
            log(f"fetching: python.org unreachable ({_reason(exc)}); "
                f"trying Debian's {release.debian_source} source package "
                f"({release.debian_suite})")
        try:
            got = from_debian(release, work)
        except AptError as exc:
            raise FetchError(
                f"cannot fetch {release.file}: python.org is unreachable and "
                f"Debian's source package could not be fetched:\n{exc}\n"
                f"Download {release.url} elsewhere and pass --tarball PATH."
            ) from None
        return Fetched(release, f"Debian {release.debian_source} "
                       f"({release.debian_suite})",
                       path=_store(got, release, got.name, move=True))


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__


def tree_version(tree: Path) -> str | None:
    """The CPython version a source tree says it is (Include/patchlevel.h)."""
    header = tree / "Include" / "patchlevel.h"
    if not header.is_file():
        return None
    for line in header.read_text().splitlines():
        if line.startswith("#define PY_VERSION "):
            return line.split('"')[1]
    return None


def _check_checkout(source: Path, release: Release) -> Path:
    if not (source / "Include" / "patchlevel.h").is_file():
        raise FetchError(f"--source {source}: not a CPython source tree "
                         "(no Include/patchlevel.h)")
    found = tree_version(source)
    if found is None:
        raise FetchError(f"--source {source}: no PY_VERSION in "
                         f"{source / 'Include' / 'patchlevel.h'}")
    if found != release.version:
        raise FetchError(f"--source {source} is CPython {found}, not {release.version}")
    return source.resolve()


def source_options(p: argparse.ArgumentParser) -> None:
    """--cpython, and where its sources come from (fetch, apply, build)."""
    options.cpython(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--tarball", type=Path, metavar="PATH",
                     help="use this release tarball (checked against the pin)")
    src.add_argument("--source", type=Path, metavar="DIR",
                     help="use this CPython checkout of the same release")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s fetch --")
    source_options(p)
    args = p.parse_args(argv)
    got = fetch(release(args.cpython), tarball=args.tarball, source=args.source)
    print(f"{got.path or got.source_dir} ({got.origin})")
    return 0
