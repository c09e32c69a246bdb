"""The combined diff in pyenv's hands: ``pyenv install --patch``, offline.

    pyenv install --patch 3.13.5 < pep522-cpython-3.13.5.diff
    python -m pep522_harness pyenv-cache [--cpython V] [--cache DIR]

python-build, pyenv's builder, reads a release's definition
(``share/python-build/V``): the tarball to download, pinned by SHA-256, a
``.tar.xz`` where tar reads xz and a ``.tgz`` where it does not.  It takes
that tarball from its cache folder (``$PYENV_ROOT/cache``, or
PYTHON_BUILD_CACHE_PATH) when name and checksum match, and downloads
nothing.  ``taken`` reads which tarball the definition takes here;
``fill_cache`` puts our verified tarball into the cache when it is that very
file, and otherwise says why not (pyenv does not know the release, or takes
another compression than the one versions.toml pins).

python-build applies the diff with ``patch -p1 --force``: ``-p1`` only because
the diff has ``diff --git a/`` lines (``-p0`` otherwise), and fuzz passes
silently: apply.fuzzed reads its output for a hunk that needed fuzz.  A diff given with ``--patch`` replaces pyenv's own patches of the
release (``builtin_patches``): give those first, then ours.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pep522_harness.core import fetch, options
from pep522_harness.core.errors import HarnessError
from pep522_harness.core.versions import Release, release

# install_package "Python-3.13.5" "https://.../Python-3.13.5.tar.xz#93e5...d640" ...
_PACKAGE = re.compile(r'^\s*install_package\s+"Python-([^"]+)"\s+"([^"#]+)#([0-9a-f]{64})"',
                      re.M)


class PyenvError(HarnessError):
    pass


@dataclass(frozen=True)
class Tarball:
    name: str
    sha256: str


def home() -> Path | None:
    """Where pyenv is installed (its plugins live there, whatever PYENV_ROOT
    says), found from the ``pyenv`` on PATH; None without one."""
    found = shutil.which("pyenv")
    if found is None:
        return None
    # bin/pyenv -> ../libexec/pyenv
    return Path(found).resolve().parent.parent


def python_build(pyenv: Path) -> Path:
    return pyenv / "plugins" / "python-build" / "bin" / "python-build"


def definition(pyenv: Path, version: str) -> Path:
    return pyenv / "plugins" / "python-build" / "share" / "python-build" / version


def builtin_patches(pyenv: Path, version: str) -> list[Path]:
    """pyenv's own patches of the release, in the order python-build applies them."""
    folder = definition(pyenv, version).parent / "patches" / version / f"Python-{version}"
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def reads_xz() -> bool:
    """python-build's own test: can tar write xz here?"""
    proc = subprocess.run(["tar", "Jcf", "-", "/dev/null"], capture_output=True)
    return proc.returncode == 0


def taken(pyenv: Path, version: str) -> Tarball:
    """The tarball python-build takes for ``version`` on this machine."""
    path = definition(pyenv, version)
    if not path.is_file():
        raise PyenvError(f"pyenv has no definition of CPython {version} "
                         f"({path.name} is not in {path.parent}); a newer pyenv may")
    found = [Tarball(url.rsplit("/", 1)[1], sha) for v, url, sha in
             _PACKAGE.findall(path.read_text()) if v == version]
    xz = [t for t in found if t.name.endswith(".tar.xz")]
    other = [t for t in found if not t.name.endswith(".tar.xz")]
    chosen = xz if xz and reads_xz() else other
    if not chosen:
        raise PyenvError(f"pyenv's definition of {version} names no Python-{version} "
                         "tarball")
    return chosen[0]


def check(pyenv: Path, rel: Release) -> Tarball:
    """The tarball pyenv takes, when it is the one versions.toml pins."""
    wanted = taken(pyenv, rel.version)
    if (wanted.name, wanted.sha256) != (rel.file, rel.sha256):
        raise PyenvError(
            f"pyenv's definition of {rel.version} takes {wanted.name} (SHA-256 "
            f"{wanted.sha256[:12]}...), and versions.toml pins {rel.file} (SHA-256 "
            f"{rel.sha256[:12]}...): another file, which the harness has not verified")
    return wanted


def fill_cache(version: str, cache: Path, *, pyenv: Path | None = None,
               log=print) -> Path:
    """Our verified tarball in pyenv's cache folder, under pyenv's name for it."""
    where = pyenv or home()
    if where is None:
        raise PyenvError("pyenv is not installed (no pyenv on PATH)")
    rel = release(version)
    wanted = check(where, rel)
    got = fetch.fetch(rel, log=log)
    if got.path is None:
        raise PyenvError(f"no verified tarball of {version}")
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / wanted.name
    shutil.copyfile(got.path, target)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pep522_harness pyenv-cache",
        description="Put the verified release tarball where pyenv install takes it.")
    options.cpython(p)
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="pyenv's cache folder (default: $(pyenv root)/cache)")
    args = p.parse_args(argv)
    cache = args.cache
    if cache is None:
        proc = subprocess.run(["pyenv", "root"], capture_output=True, text=True) \
            if shutil.which("pyenv") else None
        if proc is None or proc.returncode:
            raise PyenvError("pyenv is not installed (no pyenv on PATH)")
        cache = Path(proc.stdout.strip()) / "cache"
    print(fill_cache(args.cpython, cache))
    return 0
