"""Where the harness keeps its trees, builds, logs and caches.

Everything lives in ignored folders: ``build/`` in the checkout for trees,
installs, logs and reports, and the user's cache directory (XDG_CACHE_HOME)
for what a fresh clone can reuse: verified tarballs, ccache, finished builds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PATCHES = REPO / "patches"
ADDED_ROOTS = ("Lib", "Modules", "Python")
BUILD = Path(os.environ.get("PEP522_BUILD_DIR", REPO / "build")).resolve()
OUT = BUILD / "out"
LOGS = BUILD / "logs"


def relative(text: str) -> str:
    """``text`` with the checkout's own location taken out: paths inside it
    become relative, so that reports and docs name no path of the machine."""
    return text.replace(f"{REPO}{os.sep}", "").replace(str(REPO), ".")


def portable(value: Any) -> Any:
    """``value`` with the checkout's own location taken out of every string
    in it (dicts and lists followed), for data that is committed."""
    if isinstance(value, str):
        return relative(value)
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    return value


def cache_root() -> Path:
    """The user-level cache shared by every clone of the project."""
    override = os.environ.get("PEP522_CACHE_DIR")
    if override:
        return Path(override).resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).resolve() / "pep522-cpython"


def tarball_cache() -> Path:
    return cache_root() / "tarballs"


def install_cache() -> Path:
    return cache_root() / "installs"


def ccache_dir() -> Path:
    return cache_root() / "ccache"


def build_name(version: str, variant: str, sanitizer: str | None = None) -> str:
    suffix = {None: "", "address": "-asan", "undefined": "-ubsan",
              "no-getrandom": "-nogetrandom"}[sanitizer]
    return f"cpython-{version}-{variant}{suffix}"


def install_dir(version: str, variant: str, sanitizer: str | None = None) -> Path:
    """The installed interpreter: ``<this>/bin/python3``."""
    return BUILD / build_name(version, variant, sanitizer)


def tree_dir(version: str, variant: str, sanitizer: str | None = None) -> Path:
    """Source tree (``src``) and out-of-tree object folder (``obj``)."""
    return BUILD / "tree" / build_name(version, variant, sanitizer)


def python(version: str, variant: str, sanitizer: str | None = None) -> Path:
    return install_dir(version, variant, sanitizer) / "bin" / "python3"
