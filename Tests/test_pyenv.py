"""pyenv: the combined diff given to python-build gives the apply tree with no
hunk fuzzed, and ``pyenv install --patch`` builds, offline from our
verified tarball, an interpreter that behaves as our own patched build.

The build runs for each release whose tarball pyenv's definition takes (the
others are skipped, saying why): with ccache (the harness's cache), make -j2,
and without CPython's test modules, which the behaviour table does not use.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pep522_harness.core import apply, build, fetch, quilt, versions
from pep522_harness.fake import modes, probes
from pep522_harness.patchset import export, pyenv

SUPPORTED = tuple(versions.releases())
PYENV = pyenv.home()
needs_pyenv = pytest.mark.skipif(PYENV is None, reason="pyenv is not installed "
                                 "(no pyenv on PATH): nothing to test it with")


def _fetched(version: str, tarball: Path) -> fetch.Fetched:
    return fetch.Fetched(versions.release(version), "test", path=tarball)


def _diff(version: str, tarball: Path) -> str:
    files = export.render(version, "diff", fetched=_fetched(version, tarball),
                          log=lambda _m: None)
    return files[f"pep522-cpython-{version}.diff"].decode(**quilt.ENCODING)


def _offline() -> list[str]:
    """A command prefix that takes the network away, where one works here."""
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix
        except OSError:
            break
    return []


@needs_pyenv
@pytest.mark.parametrize("version", SUPPORTED)
def test_python_builds_patch_step_gives_the_apply_tree(version, pristine_tarball, tmp_path):
    """pyenv's own patches of the release first, then ours (the README's
    recipe), through python-build's own apply_patch function."""
    assert PYENV is not None
    tarball = pristine_tarball[version]
    ours = _diff(version, tarball)
    assert re.search(r"^diff --git a/", ours, re.M), "python-build would take it as -p0"
    builtin = pyenv.builtin_patches(PYENV, version)
    given = tmp_path / "given.diff"
    given.write_text("".join(p.read_text() for p in builtin) + ours, **quilt.ENCODING)

    expected = tmp_path / "expected"
    apply.make_tree(_fetched(version, tarball), "pep522", expected, log=lambda _m: None)
    for patch in builtin:
        apply.apply_patch(quilt.SeriesEntry(patch.name, patch), expected)

    tree = tmp_path / "tree"
    apply.unpack(_fetched(version, tarball), tree)
    source = pyenv.python_build(PYENV).read_text()
    function = re.search(r"^apply_patch\(\) \{\n.*?^\}\n", source, re.M | re.S)
    assert function, "python-build has no apply_patch function any more"
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run(["bash", "-c", function.group(0) + 'apply_patch Python-V "$1"\n',
                           "python-build", str(given)], cwd=tree, capture_output=True,
                          text=True, env=dict(os.environ, TMP=str(tmp_path / "tmp")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "patching file" in proc.stdout
    assert apply.fuzzed(proc.stdout) == {}
    # pyenv's own patches may move by an offset (3.11.2's setup.py one does),
    # and GNU patch then leaves a backup (X.orig) beside the file
    theirs = {f.path for p in builtin for f in quilt.read_patch(p.name, p).files}
    assert [d for d in export.tree_differences(expected, tree)
            if d.removesuffix(".orig") not in theirs] == []


def test_a_tarball_pyenv_does_not_take_is_refused(tmp_path):
    defs = tmp_path / "plugins" / "python-build" / "share" / "python-build"
    defs.mkdir(parents=True)
    rel = versions.release(versions.DEFAULT_VERSION)
    (defs / rel.version).write_text(
        f'install_package "Python-{rel.version}" "https://example.org/{rel.file}#'
        f'{"0" * 64}" standard\n')
    with pytest.raises(pyenv.PyenvError, match="another file"):
        pyenv.fill_cache(rel.version, tmp_path / "cache", pyenv=tmp_path)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(pyenv.PyenvError, match="no definition"):
        pyenv.taken(tmp_path, "3.0.0")


def _pyenv_install(version: str, diff: str, work: Path) -> tuple[Path, str]:
    """``pyenv install -v --patch VERSION < diff`` into a PYENV_ROOT of its own,
    with the network taken away where that works here."""
    root = work / "root"
    pyenv.fill_cache(version, root / "cache", pyenv=PYENV, log=lambda _m: None)
    (work / "tmp").mkdir()
    env = build.build_env()
    env.update(PYENV_ROOT=str(root), TMPDIR=str(work / "tmp"),
               PYTHON_BUILD_BUILD_PATH=str(work / "build"),
               PYTHON_BUILD_SKIP_MIRROR="1", MAKE_OPTS="-j2",
               PYTHON_CONFIGURE_OPTS="--disable-test-modules --with-ensurepip=no",
               # the work folder's own paths hash alike from one run to the next
               CCACHE_BASEDIR=str(work))
    for name in ("PYENV_VERSION", "PYTHON_BUILD_CACHE_PATH", "PYTHON_BUILD_MIRROR_URL",
                 "PYTHON_CONFIGURE_OPTS_ARRAY", "CONFIGURE_OPTS", "MAKEOPTS"):
        env.pop(name, None)
    proc = subprocess.run([*_offline(), "nice", "pyenv", "install", "-v", "--patch", version],
                          input=diff, env=env, capture_output=True, text=True,
                          timeout=1800, **quilt.ENCODING)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return root / "versions" / version / "bin" / "python3", out


@needs_pyenv
@pytest.mark.parametrize("version", SUPPORTED)
def test_pyenv_install_offline_behaves_as_our_build(version, pristine_tarball, tmp_path):
    assert PYENV is not None
    try:
        pyenv.check(PYENV, versions.release(version))
    except pyenv.PyenvError as exc:
        pytest.skip(str(exc))
    python, out = _pyenv_install(version, _diff(version, pristine_tarball[version]), tmp_path)
    try:
        assert f"Installed Python-{version} to " in out
        assert "Downloading" not in out           # the verified tarball, from the cache
        assert out.count("patching file ") >= 10
        assert apply.fuzzed(out) == {}
        ours = build.build(version, "pep522", quiet=True)
        theirs = {mode: probes.probe(python, mode) for mode in modes.EVERY}
        for mode in modes.EVERY:
            mine = probes.probe(ours, mode)
            for row in probes.ROWS:
                same = ("text" if row in ("start-up warning", "/dev/urandom opens")
                        else "kind")
                assert getattr(theirs[mode][row], same) == getattr(mine[row], same), \
                    (mode, row)
        # the patch set is in it: what a stock build would not answer
        assert theirs["never-ready"]["os.urandom"].text == "raises EAGAIN"
        assert theirs["ready"]["wait_for_system_rng"].kind == "ok"
    finally:
        shutil.rmtree(tmp_path / "root", ignore_errors=True)
