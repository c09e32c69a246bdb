"""RPM: the README's recipe under a real ``rpmbuild -bp``.

The exported series goes into SOURCES with the README's own command lines
(rpm reads a Patch file by its base name there), the spec gets the Patch
lines the README's awk line writes, ``%autosetup -p1`` and zero fuzz; the
tree %prep makes is exactly the tree apply makes, and a hunk that needs
fuzz stops %prep.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pep522_harness.core import apply, fetch, paths, versions
from pep522_harness.patchset import export

SUPPORTED = tuple(versions.releases())
pytestmark = pytest.mark.skipif(shutil.which("rpmbuild") is None,
                                reason="rpmbuild is not installed (apt-get install rpm)")

SPEC = """\
Name:           python3-pep522
Version:        {version}
Release:        1
Summary:        CPython with the PEP 522 patch set (only %prep)
License:        Python-2.0.1
Source0:        https://www.python.org/ftp/python/%{{version}}/{tarball}
%global _default_patch_fuzz 0
{patches}
%description
CPython %{{version}} with the PEP 522 patch set.

%prep
%autosetup -p1 -n Python-%{{version}}

%files
"""


def readme_recipe() -> list[str]:
    """The command lines of the README's RPM section after the export."""
    text = (paths.REPO / "README.md").read_text()
    section = text.split("### RPM:", 1)[1].split("\n### ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.strip().splitlines()
    assert lines[0].startswith("nox -s export -- ") and "--out ../pep522" in lines[0]
    return lines[1:]


def prep(version: str, tarball: Path, home: Path, *, drift: bool = False
         ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Export, the README's lines, a spec, ``rpmbuild -bp``: (its run, %prep's tree)."""
    work, out = home / "work", home / "pep522"
    work.mkdir(parents=True)
    files = export.render(version, "quilt", log=lambda _m: None)
    export.write(files, out, owned=False)
    sources = home / "rpmbuild" / "SOURCES"
    sources.mkdir(parents=True)
    env = dict(os.environ, HOME=str(home), LC_ALL="C")   # ~ is home: no ~/.rpmmacros
    patch_lines = ""
    for line in readme_recipe():
        proc = subprocess.run(["bash", "-euc", line], cwd=work, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
        patch_lines += proc.stdout
    shutil.copyfile(tarball, sources / tarball.name)
    if drift:
        first = sources / (out / "series").read_text().split()[0]
        text = first.read_text()
        # one context line of the first hunk differs: patch needs fuzz 1
        hunk = re.search(r"^@@ .*\n((?: .*\n)+)", text, re.M)
        assert hunk
        context = hunk.group(1).splitlines()[0]
        first.write_text(text.replace(context + "\n", context + " (drifted)\n", 1))
    spec = home / "rpmbuild" / "SPECS" / "python3-pep522.spec"
    spec.parent.mkdir()
    spec.write_text(SPEC.format(version=version, tarball=tarball.name, patches=patch_lines))
    proc = subprocess.run(["rpmbuild", "-bp", str(spec)], env=env,
                          capture_output=True, text=True)
    # rpm < 4.20: BUILD/Python-V; rpm >= 4.20: BUILD/NAME-VERSION-build/Python-V
    trees = sorted((home / "rpmbuild" / "BUILD").glob(f"**/Python-{version}"))
    return proc, trees[0] if trees else home / "none"


@pytest.mark.parametrize("version", SUPPORTED)
def test_rpmbuild_prep_gives_the_apply_tree(version, pristine_tarball, tmp_path):
    proc, tree = prep(version, pristine_tarball[version], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    series = (tmp_path / "pep522" / "series").read_text().split()
    spec = tmp_path / "rpmbuild" / "SPECS" / "python3-pep522.spec"
    assert re.findall(r"^Patch(\d+): (\S+)$", spec.read_text(), re.M) == \
        [(str(5220 + n), name) for n, name in enumerate(series, 1)]
    # %prep as rpm expands it: each patch of the series, in order, from
    # SOURCES, by patch -p1 with zero fuzz
    parsed = subprocess.run(["rpmspec", "-P", str(spec)], capture_output=True, text=True,
                            env=dict(os.environ, HOME=str(tmp_path)), check=True).stdout
    steps = re.findall(r"/rpmbuild/SOURCES/(\S+) \| *\n\S*/patch (.*)", parsed)
    assert [name for name, _flags in steps] == series
    for name, flags in steps:
        assert "-p1" in flags.split() and "--fuzz=0" in flags.split(), (name, flags)
    expected = tmp_path / "apply"
    apply.make_tree(fetch.Fetched(versions.release(version), "test",
                                  path=pristine_tarball[version]), "pep522", expected,
                    log=lambda _m: None)
    assert export.tree_differences(expected, tree) == []


def test_a_hunk_that_needs_fuzz_stops_prep(pristine_tarball, tmp_path):
    version = versions.DEFAULT_VERSION
    proc, _tree = prep(version, pristine_tarball[version], tmp_path, drift=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "FAILED" in out and "(%prep)" in out
    # where fuzz is allowed (GNU patch's default, 2), the same patch applies
    pristine = tmp_path / "pristine"
    apply.unpack(fetch.Fetched(versions.release(version), "test",
                               path=pristine_tarball[version]), pristine)
    first = (tmp_path / "pep522" / "series").read_text().split()[0]
    fuzzy = subprocess.run(["patch", "-p1", "--dry-run", "-i",
                            str(tmp_path / "rpmbuild" / "SOURCES" / first)],
                           cwd=pristine, capture_output=True, text=True)
    assert fuzzy.returncode == 0 and "with fuzz 1" in fuzzy.stdout
