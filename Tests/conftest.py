"""Shared fixtures: verified release tarballs, a private cache, diffs as authors make them,
and git am onto a pristine tree."""

from __future__ import annotations

import os
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


# git as a test runs it: no user or system configuration, fixed names and dates
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "pristine", "GIT_AUTHOR_EMAIL": "pristine@example.org",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
           "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
           "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000"}


def _git_am(pristine: Path, mails: list[Path], dest: Path) -> Path:
    shutil.copytree(pristine, dest, symlinks=True)

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(dest), *args], capture_output=True,
                              text=True, env=dict(os.environ, **GIT_ENV))

    git("init", "-q")
    (dest / ".git" / "info").mkdir(exist_ok=True)
    (dest / ".git" / "info" / "attributes").write_text("* -text\n")
    git("add", "-A", "-f")
    assert git("commit", "-q", "-m", "pristine").returncode == 0
    proc = git("am", *map(str, mails))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest


@pytest.fixture(scope="session")
def git_am() -> Callable[[Path, list[Path], Path], Path]:
    """``git_am(pristine, mails, dest)``: a copy of the pristine tree at ``dest``,
    committed to a new git repository, with ``git am`` of the mails (files, in
    order) on top of it; returns ``dest``."""
    return _git_am
