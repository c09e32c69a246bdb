"""Shared fixtures: verified release tarballs, a private cache, diffs as authors make them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pep522_harness.core import fetch, versions


@pytest.fixture(scope="session")
def pristine_tarball() -> dict[str, Path]:
    """Verified tarballs of every supported release (fetched once)."""
    return {v: fetch.fetch(versions.release(v), log=lambda _m: None).path
            for v in versions.releases()}


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty user cache for tests that must not see the real one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PEP522_CACHE_DIR", str(cache))
    return cache


def _unified_diff(rel: str, before: str, after: str, work: Path) -> str:
    for side, content in (("a", before), ("b", after)):
        (work / side / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / side / rel).write_text(content)
    out = subprocess.run(["diff", "-u", f"a/{rel}", f"b/{rel}"], cwd=work,
                         capture_output=True, text=True).stdout
    shutil.rmtree(work / "a")
    shutil.rmtree(work / "b")
    return out


@pytest.fixture(scope="session")
def unified_diff() -> Callable[[str, str, str, Path], str]:
    """``unified_diff(rel, before, after, work)``: a -p1 unified diff of
    ``rel`` from ``before`` to ``after``, made with diff(1) in ``work`` as a
    patch author would."""
    return _unified_diff
