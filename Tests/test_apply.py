"""apply: zero fuzz, clear errors, added files, incremental sync."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pep522_harness.core import apply, fetch, paths, quilt, versions

SUPPORTED = tuple(versions.releases())


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, pristine_tarball) -> dict[str, Path]:
    trees = {}
    for v in SUPPORTED:
        dest = tmp_path_factory.mktemp(f"pristine-{v}") / "src"
        apply.unpack(fetch.Fetched(versions.release(v), "test", path=pristine_tarball[v]), dest)
        trees[v] = dest
    return trees


def _diff(unified_diff, tree: Path, rel: str, old: str, new: str, work: Path) -> str:
    """A -p1 patch of ``rel`` replacing ``old`` by ``new``."""
    text = (tree / rel).read_text()
    assert old in text
    return unified_diff(rel, text, text.replace(old, new, 1), work)


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_series_applies_with_zero_fuzz(version, pristine, tmp_path):
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-a", str(pristine[version]), str(tree)], check=True)
    entries = apply.series(version)
    for entry in entries:
        apply.apply_patch(entry, tree)   # raises on any reject or fuzz
    apply.add_files(tree)
    for rel in apply.added_files():
        assert (tree / rel).read_bytes() == (paths.REPO / rel).read_bytes()


def test_drifted_context_is_refused_naming_patch_and_hunk(pristine, tmp_path,
                                                          unified_diff):
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-a", str(pristine["3.13.5"]), str(tree)], check=True)
    patch = _diff(unified_diff, pristine["3.13.5"], "Lib/secrets.py",
                  "DEFAULT_ENTROPY = 32", "DEFAULT_ENTROPY = 64", tmp_path)
    # Move one context line of the target, as a new upstream release would.
    target = tree / "Lib/secrets.py"
    target.write_text(target.read_text().replace(
        "def token_bytes", "def token_bytes_renamed", 1).replace(
        "from random import SystemRandom", "from random import SystemRandom  # drift", 1))
    (tmp_path / "drift.patch").write_text(patch)
    entry = quilt.SeriesEntry("drift.patch", tmp_path / "drift.patch")
    with pytest.raises(apply.ApplyError) as info:
        apply.apply_patch(entry, tree)
    msg = str(info.value)
    assert "drift.patch" in msg and "Lib/secrets.py" in msg and "hunk #1" in msg
    assert "fuzz is not allowed" in msg
    # Nothing was half-applied.
    assert "DEFAULT_ENTROPY = 32" in target.read_text()


def test_same_patch_applies_when_context_is_intact(pristine, tmp_path, unified_diff):
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-a", str(pristine["3.13.5"]), str(tree)], check=True)
    patch = _diff(unified_diff, pristine["3.13.5"], "Lib/secrets.py",
                  "DEFAULT_ENTROPY = 32", "DEFAULT_ENTROPY = 64", tmp_path)
    (tmp_path / "ok.patch").write_text(patch)
    apply.apply_patch(quilt.SeriesEntry("ok.patch", tmp_path / "ok.patch"), tree)
    assert "DEFAULT_ENTROPY = 64" in (tree / "Lib/secrets.py").read_text()


def test_series_variant_per_version_and_comments(tmp_path):
    (tmp_path / "3.11.2").mkdir()
    for p in ("a.patch", "b.patch", "3.11.2/b.patch", "off.patch"):
        (tmp_path / p).write_text("")
    (tmp_path / "series").write_text("# comment\na.patch\n\nb.patch -p1\n#off.patch\n")
    assert [e.path.relative_to(tmp_path).as_posix() for e in apply.series("3.13.5", tmp_path)] \
        == ["a.patch", "b.patch"]
    assert [e.path.relative_to(tmp_path).as_posix() for e in apply.series("3.11.2", tmp_path)] \
        == ["a.patch", "3.11.2/b.patch"]
    (tmp_path / "3.11.2" / "only311.patch").write_text("")
    (tmp_path / "series").write_text("a.patch\nb.patch\n")
    (tmp_path / "3.11.2" / "series").write_text("only311.patch\n")
    assert [e.name for e in apply.series("3.13.5", tmp_path)] == ["a.patch", "b.patch"]
    assert [e.path.relative_to(tmp_path).as_posix() for e in apply.series("3.11.2", tmp_path)] \
        == ["a.patch", "3.11.2/b.patch", "3.11.2/only311.patch"]
    # A release-only patch in the shared series is missing for the other
    # releases, as quilt would find it; listed in both, it is listed twice.
    (tmp_path / "series").write_text("a.patch\nonly311.patch\n")
    with pytest.raises(apply.ApplyError, match="only311.patch is listed but missing"):
        apply.series("3.13.5", tmp_path)
    with pytest.raises(apply.ApplyError, match="only311.patch is listed twice"):
        apply.series("3.11.2", tmp_path)
    (tmp_path / "series").write_text("b.patch\n")
    (tmp_path / "3.11.2" / "series").write_text("b.patch\n")
    with pytest.raises(apply.ApplyError, match="listed twice"):
        apply.series("3.11.2", tmp_path)
    (tmp_path / "3.11.2" / "series").unlink()
    (tmp_path / "series").write_text("missing.patch\n")
    with pytest.raises(apply.ApplyError, match="missing"):
        apply.series("3.13.5", tmp_path)


def test_added_file_must_not_exist_upstream(tmp_path):
    repo = tmp_path / "repo"
    (repo / "Lib").mkdir(parents=True)
    (repo / "Lib" / "secrets.py").write_text("# a copy of an upstream file\n")
    tree = tmp_path / "tree"
    (tree / "Lib").mkdir(parents=True)
    (tree / "Lib" / "secrets.py").write_text("upstream\n")
    with pytest.raises(apply.ApplyError, match="exists upstream"):
        apply.add_files(tree, repo)


def test_sync_touches_only_what_changed(tmp_path):
    staging, target = tmp_path / "staging", tmp_path / "target"
    for name, text in (("same.c", "int a;\n"), ("edit.c", "int b;\n"), ("gone.c", "x\n")):
        (staging / "d").mkdir(parents=True, exist_ok=True)
        (staging / "d" / name).write_text(text)
    assert apply.sync_tree(staging, target) == 3
    old = 1_000_000_000
    for f in (target / "d").iterdir():
        os.utime(f, (old, old))
    (staging / "d" / "edit.c").write_text("int b2;\n")
    (staging / "d" / "gone.c").unlink()
    (staging / "d" / "new.c").write_text("int c;\n")
    assert apply.sync_tree(staging, target) == 3
    assert (target / "d" / "same.c").stat().st_mtime == old
    assert (target / "d" / "edit.c").stat().st_mtime > old
    assert (target / "d" / "edit.c").read_text() == "int b2;\n"
    assert not (target / "d" / "gone.c").exists()
    assert apply.sync_tree(staging, target) == 0


def test_fuzzed_hunks_are_found():
    output = ("patching file Lib/secrets.py\n"
              "Hunk #1 succeeded at 4 with fuzz 1.\n"
              "Hunk #2 succeeded at 120 (offset 3 lines).\n"
              "Hunk #3 FAILED at 200.\n"
              "patching file Lib/os.py\n")
    assert apply.fuzzed(output) == {"Lib/secrets.py": [
        "Hunk #1 succeeded at 4 with fuzz 1", "Hunk #3 FAILED at 200"]}
    assert apply.fuzzed("patching file Lib/os.py\n") == {}
