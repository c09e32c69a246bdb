"""export: quilt, mbox and one diff, each giving exactly the tree apply gives,
byte-for-byte reproducible, with complete DEP-3 headers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pep522_harness.core import apply, fetch, paths, quilt, versions
from pep522_harness.patchset import export

SUPPORTED = tuple(versions.releases())
HEADER = """\
Description: {summary}
 {why}
 .
 A second paragraph of why.
Author: {author}
Origin: vendor, https://example.org/pep522
Forwarded: not-needed, PEP 522 was rejected upstream
Last-Update: {date}
---
"""


def _fetched(version: str, tarball: Path) -> fetch.Fetched:
    return fetch.Fetched(versions.release(version), "test", path=tarball)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, pristine_tarball) -> dict[str, Path]:
    trees = {}
    for v in SUPPORTED:
        dest = tmp_path_factory.mktemp(f"pristine-{v}") / "src"
        apply.unpack(_fetched(v, pristine_tarball[v]), dest)
        trees[v] = dest
    return trees


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, pristine, unified_diff) -> Path:
    """A project with two patches on one file (and one on another) and
    added files under Lib/, Modules/, Python/ (one without a final newline,
    one empty)."""
    repo = tmp_path_factory.mktemp("repo")
    tree = pristine["3.13.5"]
    work = tmp_path_factory.mktemp("work")
    pdir = repo / "patches"
    pdir.mkdir()
    s0 = (tree / "Lib/secrets.py").read_text()
    s1 = s0.replace("DEFAULT_ENTROPY = 32", "DEFAULT_ENTROPY = 64", 1)
    s2 = s1.replace('"""Generate cryptographically', '"""Generate (PEP 522)', 1)
    o0 = (tree / "Lib/os.py").read_text()
    o1 = o0.replace("import abc\n", "import abc  # PEP 522\n", 1)
    assert s0 != s1 != s2 and o0 != o1
    one = HEADER.format(summary="Raise the default entropy of secrets",
                        why="Because a longer token is harder to guess.",
                        author="Zoë Example <zoe@example.org>", date="2025-07-01")
    one += unified_diff("Lib/secrets.py", s0, s1, work)
    one += unified_diff("Lib/os.py", o0, o1, work)
    two = HEADER.format(summary="Say so in the secrets docstring",
                        why="Readers of the module see the change first.",
                        author="Zoë Example <zoe@example.org>", date="2025-07-03")
    two += unified_diff("Lib/secrets.py", s1, s2, work)
    (pdir / "secrets-entropy.patch").write_text(one)
    (pdir / "secrets-docstring.patch").write_text(two)
    (pdir / "series").write_text("# the synthetic series\nsecrets-entropy.patch\n"
                                 "#switched-off.patch\nsecrets-docstring.patch\n")
    for rel, text in (("Lib/test/support/foo_helper.py", "def helper():\n    return 'é'\n"),
                      ("Modules/_foo.c", "/* no final newline */\nint foo;"),
                      ("Python/empty.h", "")):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    return repo


def _apply_tree(version: str, tarball: Path, dest: Path, repo: Path | None = None) -> Path:
    apply.make_tree(_fetched(version, tarball), "pep522", dest,
                    patches_dir=(repo / "patches") if repo else None, repo=repo,
                    log=lambda _m: None)
    return dest


def _copy(tree: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", str(tree), str(dest)], check=True)
    return dest


def _quilt_tree(pristine: Path, quilt_dir: Path, dest: Path) -> Path:
    tree = _copy(pristine, dest)
    names = (quilt_dir / "series").read_text().split()
    for name in names:
        apply.apply_patch(quilt.SeriesEntry(name, quilt_dir / name), tree)
    return tree


def _quilt_push(pristine: Path, quilt_dir: Path, dest: Path) -> Path:
    tree = _copy(pristine, dest)
    env = dict(os.environ, QUILT_PATCHES=str(quilt_dir), QUILTRC="/dev/null")
    proc = subprocess.run(["quilt", "push", "-a", "--fuzz=0"], cwd=tree, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "with fuzz" not in proc.stdout    # offsets are fine, fuzz is not
    return tree


def _diff_tree(pristine: Path, diff: Path, dest: Path) -> Path:
    tree = _copy(pristine, dest)
    apply.apply_patch(quilt.SeriesEntry(diff.name, diff), tree)
    return tree


def _exports(version: str, out: Path, repo: Path | None = None,
             fetched: fetch.Fetched | None = None) -> dict[str, Path]:
    kw = {"patches_dir": repo / "patches", "repo": repo} if repo else {}
    dirs = {}
    for fmt in export.FORMATS:
        files = export.render(version, fmt, fetched=fetched, log=lambda _m: None, **kw)
        dirs[fmt] = out / fmt
        export.write(files, dirs[fmt], owned=True)
    return dirs


def _all_trees_equal(version, pristine, tarball, tmp_path, git_am, repo=None):
    expected = _apply_tree(version, tarball, tmp_path / "apply", repo)
    dirs = _exports(version, tmp_path / "out", repo, _fetched(version, tarball))
    base = f"pep522-cpython-{version}"
    trees = {
        "quilt (patch -F0)": _quilt_tree(pristine, dirs["quilt"], tmp_path / "q"),
        "mbox (git am)": git_am(pristine, [dirs["mbox"] / f"{base}.mbox"], tmp_path / "m"),
        "diff (patch -p1)": _diff_tree(pristine, dirs["diff"] / f"{base}.diff", tmp_path / "d"),
    }
    if shutil.which("quilt"):
        trees["quilt (quilt push)"] = _quilt_push(pristine, dirs["quilt"], tmp_path / "qp")
    for how, tree in trees.items():
        assert export.tree_differences(expected, tree) == [], how
    return dirs


# --- the synthetic series: every format gives apply's tree ------------------


def test_synthetic_series_every_format_gives_the_apply_tree(synthetic, pristine,
                                                             pristine_tarball, tmp_path,
                                                             git_am):
    dirs = _all_trees_equal("3.13.5", pristine["3.13.5"], pristine_tarball["3.13.5"],
                            tmp_path, git_am, synthetic)
    series = (dirs["quilt"] / "series").read_text().split()
    assert series == ["secrets-entropy.patch", "secrets-docstring.patch",
                      export.ADDED_NAME]
    # the series' patches are exported byte for byte
    for name in series[:2]:
        assert (dirs["quilt"] / name).read_bytes() == \
            (synthetic / "patches" / name).read_bytes()
    # the combined diff has one section per file, though two patches edit secrets.py
    diff = (dirs["diff"] / "pep522-cpython-3.13.5.diff").read_text()
    assert diff.count("diff --git a/Lib/secrets.py b/Lib/secrets.py") == 1
    assert "secrets-entropy.patch: Raise the default entropy" in diff


def test_mbox_reads_like_git_format_patch(synthetic, pristine_tarball):
    files = export.render("3.13.5", "mbox", patches_dir=synthetic / "patches",
                          repo=synthetic)
    mbox = files["pep522-cpython-3.13.5.mbox"].decode()
    mails = mbox.split(export.ZERO_FROM + "\n")[1:]
    assert len(mails) == 3
    first = mails[0]
    assert first.startswith("From: =?utf-8?")     # Zoë, RFC 2047-encoded
    assert "Date: Tue, 01 Jul 2025 00:00:00 +0000\n" in first
    assert "Subject: [PATCH 1/3] Raise the default entropy of secrets\n" in first
    body = first.split("\n\n", 1)[1]
    assert body.startswith("Because a longer token is harder to guess.\n\n"
                           "A second paragraph of why.\n\n"
                           "Origin: vendor, https://example.org/pep522\n"
                           "Forwarded: not-needed, PEP 522 was rejected upstream\n"
                           "Last-Update: 2025-07-01\n"
                           "Gbp-Pq: Name secrets-entropy.patch\n---\n")
    assert " 2 files changed, 2 insertions(+), 2 deletions(-)" in body
    assert "index " not in mbox and "\n-- \n" not in mbox
    assert "Subject: [PATCH 3/3] Add the files that are new" in mails[2]
    assert " create mode 100644 Python/empty.h" in mails[2]


def test_exports_are_byte_for_byte_reproducible(synthetic, pristine_tarball, tmp_path):
    fetched = _fetched("3.13.5", pristine_tarball["3.13.5"])
    one = _exports("3.13.5", tmp_path / "one", synthetic, fetched)
    two = _exports("3.13.5", tmp_path / "two", synthetic, fetched)
    for fmt in export.FORMATS:
        names = sorted(p.relative_to(one[fmt]) for p in one[fmt].rglob("*") if p.is_file())
        assert names == sorted(p.relative_to(two[fmt]) for p in two[fmt].rglob("*")
                               if p.is_file())
        for name in names:
            assert (one[fmt] / name).read_bytes() == (two[fmt] / name).read_bytes()


def test_incomplete_headers_are_named(tmp_path, synthetic):
    pdir = tmp_path / "patches"
    shutil.copytree(synthetic / "patches", pdir)
    text = (pdir / "secrets-entropy.patch").read_text()
    text = text.replace("Forwarded: not-needed, PEP 522 was rejected upstream\n", "")
    text = text.replace(" Because a longer token is harder to guess.\n .\n"
                        " A second paragraph of why.\n", "")
    text = text.replace("Zoë Example <zoe@example.org>", "Zoë Example")
    (pdir / "secrets-entropy.patch").write_text(text)
    with pytest.raises(export.ExportError) as info:
        export.stack("3.13.5", patches_dir=pdir, repo=synthetic)
    msg = str(info.value)
    assert "secrets-entropy.patch: no Forwarded: field" in msg
    assert "secrets-entropy.patch: Description has no why" in msg
    assert "secrets-entropy.patch: Author:" in msg
    assert "secrets-docstring.patch" not in msg


def test_per_release_variant_is_exported_for_that_release(tmp_path, synthetic):
    pdir = tmp_path / "patches"
    shutil.copytree(synthetic / "patches", pdir)
    (pdir / "3.11.2").mkdir()
    variant = (pdir / "secrets-entropy.patch").read_bytes().replace(
        b"Raise the default", b"Raise (3.11) the default")
    (pdir / "3.11.2" / "secrets-entropy.patch").write_bytes(variant)
    files = export.render("3.11.2", "quilt", patches_dir=pdir, repo=synthetic)
    assert files["secrets-entropy.patch"] == variant
    files = export.render("3.13.5", "quilt", patches_dir=pdir, repo=synthetic)
    assert files["secrets-entropy.patch"] != variant


def test_out_folder_of_the_user_is_never_wiped(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(export.ExportError, match="notes.txt"):
        export.write({"series": b""}, out, owned=False)
    assert (out / "notes.txt").read_text() == "keep me"
    export.write({"series": b"a\n"}, tmp_path / "fresh", owned=False)
    export.write({"series": b"b\n"}, tmp_path / "fresh", owned=False)   # rerun: fine
    assert (tmp_path / "fresh" / "series").read_bytes() == b"b\n"


# --- the project's own series, for every supported release -----------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_project_series_every_format_gives_the_apply_tree(version, pristine,
                                                          pristine_tarball, tmp_path, git_am):
    _all_trees_equal(version, pristine[version], pristine_tarball[version], tmp_path, git_am)


def test_project_export_default_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "OUT", tmp_path / "out")
    written = export.export("3.13.5", "quilt", log=lambda _m: None)
    folder = tmp_path / "out" / "export" / "cpython-3.13.5" / "quilt"
    assert written[0] == folder / "series"
    names = (folder / "series").read_text().split()
    assert names == [e.name for e in apply.series("3.13.5")] + \
        ([export.ADDED_NAME] if apply.added_files() else [])
