"""refresh: the series carried to a new upstream release, hunk by hunk;
merges written as the committed patches are, conflicts refused with nothing
written, an unchanged release left byte for byte as it is."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from pep522_harness import cli
from pep522_harness.core import fetch, quilt, versions
from pep522_harness.core.fetch import Fetched
from pep522_harness.patchset import merge, refresh

SUPPORTED = tuple(versions.releases())
DAY = dt.date(2031, 1, 2)
HEADER = """\
Description: {summary}
 Why it is needed, in one line.
Author: PEP 522 team <team@pep522.invalid>
Origin: vendor
Forwarded: not-needed
Last-Update: 2030-05-06
---
"""


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _fetched(version: str, tarball: Path) -> Fetched:
    return Fetched(versions.release(version), "test", path=tarball)


def _quiet(_msg: str) -> None:
    pass


# --------------------------------------------------------------------------
# The real releases


@pytest.fixture
def patches_copy(tmp_path) -> Path:
    pdir = tmp_path / "patches"
    shutil.copytree(Path(refresh.paths.PATCHES), pdir)
    return pdir


def test_3_13_5_to_3_13_15_merges_the_two_doc_hunks_into_the_committed_variant(
        patches_copy, pristine_tarball):
    name = "document-rng-not-ready.patch"
    committed = (patches_copy / "3.13.15" / name).read_bytes()
    (patches_copy / "3.13.15" / name).unlink()
    date = dt.date.fromisoformat(quilt.read_patch(name, refresh.paths.PATCHES / "3.13.15"
                                                  / name).date)
    lines: list[str] = []
    result = refresh.refresh(_fetched("3.13.5", pristine_tarball["3.13.5"]),
                             _fetched("3.13.15", pristine_tarball["3.13.15"]),
                             patches_dir=patches_copy, today=date, log=lines.append)
    merged = [(h.patch, h.file) for h in result.hunks if h.status == refresh.MERGED]
    assert merged == [(name, "Doc/library/random.rst"), (name, "Doc/library/secrets.rst")]
    assert {h.status for h in result.hunks} == {refresh.APPLIED, refresh.MERGED}
    assert any(line.startswith("    merged   Doc/library/secrets.rst #3 @@ -66,7")
               for line in lines)
    assert result.writes == {patches_copy / "3.13.15" / name: committed}
    before = _snapshot(patches_copy)
    refresh.write(result.writes, patches_copy.parent)
    assert (patches_copy / "3.13.15" / name).read_bytes() == committed
    assert _snapshot(patches_copy) == before | {f"3.13.15/{name}": committed}
    assert not list(patches_copy.parent.glob(".refresh-*"))


def test_a_second_refresh_on_another_day_changes_nothing(patches_copy, pristine_tarball):
    """The committed variant has the diff the refresh makes: it keeps its date."""
    result = refresh.refresh(_fetched("3.13.5", pristine_tarball["3.13.5"]),
                             _fetched("3.13.15", pristine_tarball["3.13.15"]),
                             patches_dir=patches_copy, today=DAY, log=_quiet)
    assert [h.file for h in result.hunks if h.status == refresh.MERGED] == [
        "Doc/library/random.rst", "Doc/library/secrets.rst"]
    assert result.writes == {}


@pytest.mark.parametrize("version", SUPPORTED)
def test_an_unchanged_release_refreshes_to_the_identical_series(version, patches_copy,
                                                                pristine_tarball):
    before = _snapshot(patches_copy)
    got = _fetched(version, pristine_tarball[version])
    result = refresh.refresh(got, got, patches_dir=patches_copy, today=DAY, log=_quiet)
    assert result.writes == {}
    assert {h.status for h in result.hunks} == {refresh.APPLIED}
    assert all(p.raw == e.path.read_bytes() for p, e in
               zip(result.patches, refresh.apply.series(version, patches_copy)))
    refresh.write(result.writes, patches_copy.parent)
    assert _snapshot(patches_copy) == before


# --------------------------------------------------------------------------
# Small synthetic releases


def _tarball(where: Path, version: str, files: dict[str, str]) -> Fetched:
    top = where / f"Python-{version}"
    for rel, text in {**files, "Include/patchlevel.h":
                      f'#define PY_VERSION "{version}"\n'}.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)
    tarball = where / f"Python-{version}.tgz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(where), top.name], check=True)
    shutil.rmtree(top)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    rel = versions.Release(version, tarball.name, digest, "python9.9", "sid")
    return Fetched(rel, "test", path=tarball)


def _patch(pdir: Path, name: str, rel: str, before: str, after: str,
           summary: str = "Change one thing") -> Path:
    diff = quilt.git_diff(before.encode(), after.encode(), rel)
    assert diff is not None
    path = pdir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER.format(summary=summary) + diff.render())
    return path


CODE = "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(12))
DOC = """\
Random things
=============

.. function:: token(n=None)

   Return a token of *n* bytes.
   If *n* is ``None`` or not supplied, a reasonable default is
   used.

   More text that stays as it is.
"""


@pytest.fixture
def synthetic(tmp_path):
    """9.9.0 and 9.9.1: upstream changed f3's line and reworded the doc."""
    where = tmp_path / "tarballs"
    where.mkdir()
    base = _tarball(where, "9.9.0", {"Lib/a.py": CODE, "Doc/a.rst": DOC})
    code = CODE.replace("    return 3\n", "    return 3  # upstream\n")
    doc = DOC.replace("""\
   If *n* is ``None`` or not supplied, a reasonable default is
   used.""", """\

   If *n* is not specified or ``None``, :const:`DEFAULT_ENTROPY`
   is used instead.""")
    new = _tarball(where, "9.9.1", {"Lib/a.py": code, "Doc/a.rst": doc})
    pdir = tmp_path / "repo" / "patches"
    pdir.mkdir(parents=True)
    return base, new, pdir


def _series(pdir: Path, *names: str, version: str = "") -> None:
    (pdir / version).mkdir(exist_ok=True)
    (pdir / version / "series").write_text("".join(f"{n}\n" for n in names))


def test_a_conflict_is_refused_with_its_lines_and_nothing_is_written(synthetic):
    base, new, pdir = synthetic
    _patch(pdir, "first.patch", "Lib/a.py", CODE, CODE.replace("return 1\n", "return -1\n"))
    _patch(pdir, "clash.patch", "Lib/a.py", CODE.replace("return 1\n", "return -1\n"),
           CODE.replace("return 1\n", "return -1\n").replace("return 3\n", "return 33\n"))
    _series(pdir, "first.patch", "clash.patch")
    before = _snapshot(pdir.parent)
    lines: list[str] = []
    with pytest.raises(refresh.RefreshError) as info:
        refresh.refresh(base, new, patches_dir=pdir, today=DAY, log=lines.append)
    msg = str(info.value)
    assert "1 hunk of the 9.9.0 series conflicts with CPython 9.9.1" in msg
    assert "nothing was written" in msg
    assert "clash.patch: Lib/a.py hunk #1 @@" in msg
    # the three versions of the line, each under its label
    upstream, rest = msg.split("<<<<<<< CPython 9.9.1\n", 1)[1].split(
        "||||||| CPython 9.9.0\n", 1)
    old, patched = rest.split("  =======\n", 1)
    assert "    return 3  # upstream" in upstream
    assert "    return 3\n" in old and "return 3  #" not in old
    assert "    return 33" in patched.split(">>>>>>> clash.patch")[0]
    assert "    conflict Lib/a.py #1 @@" in "\n".join(lines)
    assert "    applied  Lib/a.py #1 @@" in "\n".join(lines)     # first.patch
    assert _snapshot(pdir.parent) == before


def test_a_merged_code_hunk_becomes_the_new_releases_variant(synthetic):
    base, new, pdir = synthetic
    # two lines below upstream's change: the hunk's context drifted, the lines not
    changed = CODE.replace("    return 3\n\n\ndef f4", "    return 3\n\n# f4 follows\ndef f4")
    shared = _patch(pdir, "near.patch", "Lib/a.py", CODE, changed)
    _series(pdir, "near.patch")
    lines: list[str] = []
    result = refresh.refresh(base, new, patches_dir=pdir, today=DAY, log=lines.append)
    assert [h.status for h in result.hunks] == [refresh.MERGED]
    variant = pdir / "9.9.1" / "near.patch"
    assert set(result.writes) == {variant}
    text = result.writes[variant].decode()
    # the header kept, what was merged said, the date of the run
    assert text.startswith("Description: Change one thing\n Why it is needed, in one line.\n"
                           " .\n Refreshed for CPython 9.9.1 from the patch for 9.9.0:")
    assert "Lib/a.py, which were merged three-way." in text
    assert f"Last-Update: {DAY.isoformat()}\n---\ndiff --git a/Lib/a.py b/Lib/a.py\n" in text
    assert "return 3  # upstream" in text and "index " not in text
    assert "@@ -13,7 +13,7 @@ def f2():" in text     # git's function context
    refresh.write(result.writes, pdir.parent)
    assert shared.read_text().count("Last-Update: 2030-05-06") == 1   # untouched
    again = refresh.refresh(base, new, patches_dir=pdir, today=DAY + dt.timedelta(9),
                            log=_quiet)
    assert again.writes == {}           # same diff: same bytes, same date


def test_prose_merges_word_by_word_and_is_refilled(synthetic):
    base, new, pdir = synthetic
    doc = DOC.replace("   used.\n", "   used.  If the system random number generator is not "
                      "ready yet, wait for\n   it, as all functions of this module do.\n")
    _patch(pdir, "doc.patch", "Doc/a.rst", DOC, doc)
    _series(pdir, "doc.patch")
    result = refresh.refresh(base, new, patches_dir=pdir, today=DAY, log=_quiet)
    assert [h.status for h in result.hunks] == [refresh.MERGED]
    text = result.writes[pdir / "9.9.1" / "doc.patch"].decode()
    assert ("-   is used instead.\n"
            "+   is used instead.  If the system random number generator is not ready\n"
            "+   yet, wait for it, as all functions of this module do.\n") in text


def test_a_release_only_patch_that_still_applies_becomes_shared(synthetic):
    base, new, pdir = synthetic
    own = _patch(pdir / "9.9.0", "own.patch", "Lib/a.py", CODE,
                 CODE.replace("return 9\n", "return 99\n"))
    _series(pdir)
    _series(pdir, "own.patch", version="9.9.0")
    result = refresh.refresh(base, new, patches_dir=pdir, today=DAY, log=_quiet)
    raw = own.read_bytes()
    assert result.writes == {pdir / "own.patch": raw, own: None,
                             pdir / "9.9.1" / "series": b"own.patch\n"}
    refresh.write(result.writes, pdir.parent)
    assert not own.exists() and (pdir / "own.patch").read_bytes() == raw
    for version in ("9.9.0", "9.9.1"):
        assert [e.path for e in refresh.apply.series(version, pdir)] == [pdir / "own.patch"]


def test_a_conflict_resolved_in_the_new_releases_variant_is_kept(synthetic):
    base, new, pdir = synthetic
    _patch(pdir, "clash.patch", "Lib/a.py", CODE, CODE.replace("return 3\n", "return 33\n"))
    _series(pdir, "clash.patch")
    upstream = CODE.replace("    return 3\n", "    return 3  # upstream\n")
    mine = _patch(pdir / "9.9.1", "clash.patch", "Lib/a.py", upstream,
                  upstream.replace("return 3  #", "return 33  #"))
    lines: list[str] = []
    result = refresh.refresh(base, new, patches_dir=pdir, today=DAY, log=lines.append)
    assert result.writes == {}
    assert [p.kept for p in result.patches] == [True]
    assert any("resolved by" in line and "9.9.1/clash.patch" in line for line in lines)
    assert mine.is_file()


def test_the_new_releases_own_patches_are_kept_in_its_series(synthetic):
    base, new, pdir = synthetic
    _patch(pdir, "shared.patch", "Lib/a.py", CODE, CODE.replace("return 9\n", "return 99\n"))
    _series(pdir, "shared.patch")
    _patch(pdir / "9.9.1", "mine.patch", "Lib/a.py", CODE.replace(
        "return 3\n", "return 3  # upstream\n").replace("return 9\n", "return 99\n"),
        CODE.replace("return 3\n", "return 3  # upstream\n").replace(
            "return 9\n", "return 99\n").replace("return 11\n", "return 111\n"))
    _series(pdir, "mine.patch", version="9.9.1")
    result = refresh.refresh(base, new, patches_dir=pdir, today=DAY, log=_quiet)
    assert result.writes == {}


def test_a_tarball_that_is_another_release_is_refused(synthetic, tmp_path):
    base, _new, pdir = synthetic
    _series(pdir)
    wrong = Fetched(versions.Release("9.9.2", "Python-9.9.2.tgz", base.release.sha256,
                                     "python9.9", "sid"), "test", path=base.path)
    with pytest.raises(refresh.RefreshError, match="holds CPython 9.9.0"):
        refresh.refresh(base, wrong, patches_dir=pdir, today=DAY, log=_quiet)


# --------------------------------------------------------------------------
# A release without a row


def test_a_new_release_without_a_row_needs_tarball_and_sha256(tmp_path):
    with pytest.raises(refresh.RefreshError, match="--tarball PATH and --sha256 HEX"):
        refresh.new_release("3.13.99", None, None, "sid")
    with pytest.raises(refresh.RefreshError, match="--tarball PATH and --sha256 HEX"):
        refresh.new_release("3.13.99", tmp_path / "Python-3.13.99.tar.xz", None, "sid")
    with pytest.raises(refresh.RefreshError, match="Python-3.13.99.tar.xz"):
        refresh.new_release("3.13.99", tmp_path / "python.tar.xz", "ab" * 32, "sid")
    with pytest.raises(refresh.RefreshError, match="64 hex digits"):
        refresh.new_release("3.13.99", tmp_path / "Python-3.13.99.tar.xz", "00", "sid")
    with pytest.raises(versions.UnknownVersion):
        refresh.new_release("latest", tmp_path / "Python-latest.tar.xz", "ab" * 32, "sid")
    rel, new = refresh.new_release("3.13.99", tmp_path / "Python-3.13.99.tar.xz",
                                   "AB" * 32, "sid")
    assert new and rel == versions.Release("3.13.99", "Python-3.13.99.tar.xz", "ab" * 32,
                                           "python3.13", "sid")
    known, new = refresh.new_release("3.13.5", None, None, "sid")
    assert not new and known == versions.release("3.13.5")
    with pytest.raises(refresh.RefreshError, match="not the pin"):
        refresh.new_release("3.13.5", None, "ab" * 32, "sid")


def test_the_tarball_of_a_new_release_is_checked_against_the_sha256(tmp_path,
                                                                     isolated_cache):
    tarball = tmp_path / "Python-3.13.99.tar.xz"
    tarball.write_bytes(b"not the release")
    rel, _new = refresh.new_release("3.13.99", tarball, "ab" * 32, "sid")
    with pytest.raises(fetch.ChecksumError):
        fetch.fetch(rel, tarball=tarball, log=_quiet)
    assert not (isolated_cache / "tarballs" / tarball.name).exists()


def test_a_new_row_goes_in_release_order():
    text = versions.TABLE.read_text()
    row = versions.Release("3.13.99", "Python-3.13.99.tar.xz", "ab" * 32, "python3.13", "sid")
    added = versions.with_row(text, row)
    assert added.replace(versions.row(row) + "\n", "", 1) == text
    rows = [line for line in added.splitlines() if line.startswith("[versions.")]
    assert rows[0] == '[versions."3.13.99"]'
    old = versions.Release("3.10.1", "Python-3.10.1.tar.xz", "ab" * 32, "python3.10", "sid")
    rows = [line for line in versions.with_row(text, old).splitlines()
            if line.startswith("[")]
    assert rows[-2:] == ['[versions."3.10.1"]', "[boot]"]
    with pytest.raises(refresh.HarnessError, match="has a row for 3.13.5"):
        versions.with_row(text, versions.release("3.13.5"))


def test_the_default_base_is_the_newest_release_of_the_minor_before():
    assert refresh.default_base("3.13.99") == "3.13.15"
    assert refresh.default_base("3.13.15") == "3.13.5"
    with pytest.raises(refresh.RefreshError, match="--from BASE"):
        refresh.default_base("3.12.9")


def test_the_command_refuses_a_new_release_without_a_row(capsys):
    assert cli.main(["refresh", "--cpython", "3.13.99"]) == 1
    assert "has no row in versions.toml" in capsys.readouterr().err


# --------------------------------------------------------------------------
# The merge itself


def test_merge3_takes_each_sides_change_and_finds_conflicts():
    base = ["a\n", "b\n", "c\n", "d\n", "e\n"]
    up = ["a\n", "B\n", "c\n", "d\n", "e\n"]
    clean = merge.merge3(base, up, ["a\n", "b\n", "c\n", "d\n", "E\n"])
    assert clean.clean and clean.lines == ("a\n", "B\n", "c\n", "d\n", "E\n")
    clash = merge.merge3(base, up, ["a\n", "b2\n", "c\n", "d\n", "e\n"])
    assert clash.conflicts == (merge.Conflict(("b\n",), ("B\n",), ("b2\n",)),)


def test_code_is_not_merged_word_by_word():
    base, up, patched = ["x = f(a, b)\n"], ["x = f(a, b, c)\n"], ["y = f(a, b)\n"]
    assert not merge.merge3(base, up, patched).clean
    assert merge.merge3(base, up, patched, prose=True).lines == ("y = f(a, b, c)\n",)


def test_refill_breaks_only_overlong_lines_and_keeps_blocks():
    lines = ["   one two three four five six\n", "   seven\n", "\n", "   .. note::\n"]
    assert merge.refill(lines, 20) == ["   one two three\n", "   four five six\n",
                                       "   seven\n", "\n", "   .. note::\n"]
    assert merge.refill(["   short\n", "   .. x::\n"], 20) == ["   short\n", "   .. x::\n"]
    assert merge.refill(["   a b c d e f g h\n", "   .. x::\n"], 10) == [
        "   a b c d\n", "   e f g h\n", "   .. x::\n"]


def test_lines_split_at_newlines_only():
    assert merge.lines("a\fb\nc\u2028d\ne") == ["a\fb\n", "c\u2028d\n", "e"]
