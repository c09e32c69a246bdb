"""debian: our series after Debian's own patches applies with zero fuzz,
conflicts are named by patch and hunk, and the built interpreter behaves."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pep522_harness.core import apply, build, fetch, quilt, versions
from pep522_harness.patchset import export
from pep522_harness.studies import debian

SUPPORTED = list(versions.releases())

DSC = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Format: 3.0 (quilt)
Source: python3.13
Version: 3.13.5-2+deb13u5
Checksums-Sha256:
 93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640 22856016 python3.13_3.13.5.orig.tar.xz
 a51f456e654ce2c9b40cc1db8005e5041cdb0b2c3aa96ab0871c49fe95280366 299640 python3.13_3.13.5-2+deb13u5.debian.tar.xz

-----BEGIN PGP SIGNATURE-----

iQIzBAEBCgAdFiEE
-----END PGP SIGNATURE-----
"""


def _source(tmp_path: Path) -> debian.SourcePackage:
    (tmp_path / "p.dsc").write_text(DSC)
    return debian._load(tmp_path / "p.dsc", versions.release("3.13.5"))


def _patch(unified_diff, tree: Path, rel: str, old: str, new: str, work: Path,
           header: str = "") -> str:
    text = (tree / rel).read_text()
    assert old in text
    return header + unified_diff(rel, text, text.replace(old, new, 1), work)


def test_dsc_is_read_through_its_signature(tmp_path):
    src = _source(tmp_path)
    assert (src.package, src.version) == ("python3.13", "3.13.5-2+deb13u5")
    assert src.tarball("orig").name == "python3.13_3.13.5.orig.tar.xz"
    assert src.tarball("debian").name == "python3.13_3.13.5-2+deb13u5.debian.tar.xz"
    assert src.files["python3.13_3.13.5.orig.tar.xz"] == versions.release("3.13.5").sha256


def test_our_series_goes_after_debians_in_its_own_folder(tmp_path):
    tree = tmp_path / "tree"
    (tree / "debian" / "patches").mkdir(parents=True)
    (tree / "debian" / "patches" / "series").write_text("deb-one.diff\n#off.diff\ndeb-two.diff")
    files = {"series": b"a.patch\nb.patch\n", "a.patch": b"A", "b.patch": b"B"}
    ours = debian.append_ours(tree, files, "3.13.5")
    assert [e.name for e in ours] == ["pep522/a.patch", "pep522/b.patch"]
    lines = (tree / "debian" / "patches" / "series").read_text().splitlines()
    assert lines[:3] == ["deb-one.diff", "#off.diff", "deb-two.diff"]
    assert lines[-2:] == ["pep522/a.patch", "pep522/b.patch"]
    assert [e.name for e in quilt.series(tree / "debian" / "patches")] == \
        ["deb-one.diff", "deb-two.diff", "pep522/a.patch", "pep522/b.patch"]
    assert (tree / "debian" / "patches" / "pep522" / "b.patch").read_bytes() == b"B"


def test_conflict_names_our_patch_its_hunk_and_debians_patch(tmp_path, pristine_tarball,
                                                              unified_diff):
    pristine = tmp_path / "pristine"
    apply.unpack(fetch.Fetched(versions.release("3.13.5"), "test",
                                      path=pristine_tarball["3.13.5"]), pristine)
    tree = tmp_path / "tree"
    (tree / "Lib").mkdir(parents=True)
    for rel in ("Lib/secrets.py", "Lib/os.py"):
        shutil.copyfile(pristine / rel, tree / rel)
    pdir = tree / "debian" / "patches"
    (pdir / "pep522").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    (pdir / "deb.diff").write_text(_patch(
        unified_diff, pristine, "Lib/secrets.py", "DEFAULT_ENTROPY = 32", "DEFAULT_ENTROPY = 32  # Debian",
        work, "Description: Debian's change\n\n"))
    (pdir / "pep522" / "secrets.patch").write_text(_patch(
        unified_diff, pristine, "Lib/secrets.py", "DEFAULT_ENTROPY = 32", "DEFAULT_ENTROPY = 64", work))
    (pdir / "pep522" / "os.patch").write_text(_patch(
        unified_diff, pristine, "Lib/os.py", "import abc\n", "import abc  # ours\n", work))
    entries = [quilt.SeriesEntry(n, pdir / n)
               for n in ("pep522/secrets.patch", "pep522/os.patch")]
    stack = debian.apply_stack(tree, [quilt.SeriesEntry("deb.diff", pdir / "deb.diff")],
                               entries, _source(tmp_path), log=lambda _m: None)
    assert stack.debian == ["deb.diff"]
    assert stack.ours == ["pep522/os.patch"]          # the other one still applied
    [conflict] = stack.conflicts
    assert conflict.patch == "pep522/secrets.patch"
    assert "Lib/secrets.py: hunk #1 @@ -28,7 +28,7 @@" in conflict.detail
    assert conflict.nearby == ("deb.diff changes Lib/secrets.py at lines 28-34",)
    # nothing of the refused patch is in the tree
    assert "DEFAULT_ENTROPY = 32  # Debian" in (tree / "Lib/secrets.py").read_text()
    text = debian.report("3.13.5", stack, [], None)
    assert "## Conflict: pep522/secrets.patch" in text and "1 refused" in text


def _prepared(version: str, dest: Path) -> debian.Stack:
    try:
        return debian.prepare(version, dest, log=lambda _m: None)
    except debian.DebianError as exc:
        if "cannot fetch" in str(exc):
            pytest.skip(f"Debian's source package is not reachable: {exc}")
        raise


@pytest.mark.parametrize("version", SUPPORTED)
def test_debian_stack_then_ours_applies_with_zero_fuzz(version, tmp_path):
    tree = tmp_path / "src"
    stack = _prepared(version, tree)
    assert stack.conflicts == []
    active = quilt.series(tree / "debian" / "patches")
    files = export.render(version, "quilt")
    ours = [f"{debian.OURS}/{n}" for n in files["series"].decode().split()]
    assert [e.name for e in active] == stack.debian + ours
    assert stack.ours == ours
    if shutil.which("quilt") is None:
        return
    # the packager's own tool agrees: quilt push -a --fuzz=0 gives the same tree
    fresh = tmp_path / "fresh"
    debian.unpack(stack.source, fresh)
    debian.append_ours(fresh, files, version)
    env = dict(os.environ, QUILT_PATCHES="debian/patches", QUILTRC="/dev/null")
    proc = subprocess.run(["quilt", "push", "-a", "--fuzz=0"], cwd=fresh, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert export.tree_differences(tree, fresh) == []


# Built here for the default release (a cold build of Debian's stack costs a
# few minutes); every release's stack is applied above, and built on demand
# with nox -s debian -- --cpython V.
@pytest.fixture(scope="module", params=[versions.DEFAULT_VERSION])
def debian_checks(request) -> list[debian.Check]:
    """The behaviour checks of the Debian-patched build of one release, each
    beside the same check on our own build of it."""
    version = request.param
    try:
        stack, python = debian.build_debian(version, log=lambda _m: None)
    except debian.DebianError as exc:
        if "cannot fetch" in str(exc):
            pytest.skip(f"Debian's source package is not reachable: {exc}")
        raise
    assert stack.conflicts == [] and python is not None
    return debian.behaviour_checks(python, version, build.build(version, "pep522", quiet=True))


def test_debian_patches_change_no_behaviour_of_ours(debian_checks):
    assert [(c.mode, c.row, c.got, c.ours) for c in debian_checks
            if not c.same_as_ours] == []


def test_debian_patched_interpreter_passes_the_behaviour_checks(debian_checks):
    assert any(c.mode == "never-ready" for c in debian_checks), "no fake RNG"
    assert [(c.mode, c.row, c.want, c.got) for c in debian_checks if not c.ok] == []
