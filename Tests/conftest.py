"""Shared fixtures: built interpreters (built on demand, cached by inputs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pep522_harness import build, fetch, versions  # noqa: E402

SUPPORTED = tuple(versions.releases())


def built(version: str, variant: str) -> Path:
    """The interpreter, built now if its inputs changed (a no-op otherwise)."""
    return build.build(version, variant, quiet=True)


@pytest.fixture(scope="session")
def pristine_tarball() -> dict[str, Path]:
    """Verified tarballs of every supported release (fetched once)."""
    return {v: fetch.fetch(versions.release(v), log=lambda _m: None).path
            for v in SUPPORTED}


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty user cache for tests that must not see the real one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PEP522_CACHE_DIR", str(cache))
    return cache


def unified_diff(rel: str, before: str, after: str, work: Path) -> str:
    """A -p1 unified diff of ``rel`` from ``before`` to ``after``, made with
    diff(1) in ``work`` as a patch author would."""
    for side, content in (("a", before), ("b", after)):
        (work / side / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / side / rel).write_text(content)
    out = subprocess.run(["diff", "-u", f"a/{rel}", f"b/{rel}"], cwd=work,
                         capture_output=True, text=True).stdout
    shutil.rmtree(work / "a")
    shutil.rmtree(work / "b")
    return out
