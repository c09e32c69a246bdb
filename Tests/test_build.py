"""build: stock and patched interpreters of one release, built identically."""

from __future__ import annotations

import json
import subprocess

import pytest

from pep522_harness.core import build, fetch, paths, versions

SUPPORTED = list(versions.releases())


def built(version: str, variant: str):
    return build.build(version, variant, quiet=True)


def _query(python, code: str) -> str:
    return subprocess.run([str(python), "-I", "-c", code], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("version", SUPPORTED)
def test_both_variants_report_the_pinned_version(version):
    for variant in ("stock", "pep522"):
        python = built(version, variant)
        assert python == paths.python(version, variant)
        assert _query(python, "import platform; print(platform.python_version())") == version


@pytest.mark.parametrize("version", SUPPORTED)
def test_configure_args_identical_apart_from_prefix(version):
    code = "import sysconfig; print(sysconfig.get_config_var('CONFIG_ARGS'))"
    args = {}
    for variant in ("stock", "pep522"):
        raw = _query(built(version, variant), code)
        prefix = json.loads((paths.install_dir(version, variant) / build.STAMP)
                            .read_text())["prefix"]
        assert prefix in raw
        args[variant] = raw.replace(prefix, "PREFIX")
    assert args["stock"] == args["pep522"]
    assert "--prefix=PREFIX" in args["stock"]


@pytest.mark.parametrize("version", SUPPORTED)
def test_second_build_with_nothing_changed_does_nothing(version, capsys):
    built(version, "pep522")
    stamp = paths.install_dir(version, "pep522") / build.STAMP
    before = stamp.stat().st_mtime_ns
    build.build(version, "pep522")
    out = capsys.readouterr().out
    assert "up to date" in out and "compiling" not in out
    assert stamp.stat().st_mtime_ns == before


def test_stock_differs_from_patched_only_by_the_series():
    """The two builds' keys differ, and stock's key ignores the series."""
    rel = versions.release(versions.DEFAULT_VERSION)
    got = fetch.fetch(rel, log=lambda _m: None)
    stock = build.build_key(rel, "stock", None, got)
    patched = build.build_key(rel, "pep522", None, got)
    assert stock != patched
