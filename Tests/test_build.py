"""build: stock and patched interpreters of one release, built identically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from pep522_harness.core import apply, build, fetch, paths, versions
from pep522_harness.fake import modes

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


# --------------------------------------------------------------------------
# The cache does not lie: the optional modules' headers are an input


def _dev_package(tmp_path, monkeypatch, header: str) -> None:
    """As if a -dev package with ``header`` were installed now."""
    include = tmp_path / "include"
    (include / header).parent.mkdir(parents=True, exist_ok=True)
    (include / header).write_text("/* a -dev package's header */\n")
    monkeypatch.setenv("CPPFLAGS", f"-I{include}")


def test_the_key_names_the_optional_headers_the_compiler_finds(tmp_path, monkeypatch):
    monkeypatch.delenv("CPPFLAGS", raising=False)
    rel = versions.release(versions.DEFAULT_VERSION)
    got = fetch.fetch(rel, log=lambda _m: None)
    assert "ndbm.h" not in build.optional_headers()
    before = build.build_key(rel, "stock", None, got)
    _dev_package(tmp_path, monkeypatch, "ndbm.h")
    assert "ndbm.h" in build.optional_headers()
    assert build.build_key(rel, "stock", None, got) != before


def test_the_key_names_configures_variables_in_the_environment(monkeypatch):
    for name in build.CONFIGURE_ENV:
        monkeypatch.delenv(name, raising=False)
    rel = versions.release(versions.DEFAULT_VERSION)
    got = fetch.fetch(rel, log=lambda _m: None)
    before = build.build_key(rel, "stock", None, got)
    monkeypatch.setenv("CFLAGS", "-DPY_URANDOM_DEFAULT_WAIT")
    assert build.build_key(rel, "stock", None, got) != before


def test_a_build_made_before_a_dev_package_was_installed_is_not_reused(
        tmp_path, monkeypatch, isolated_cache, pristine_tarball, capsys):
    """The issue's case, with the compiler's part faked: the build is made,
    reused while nothing changes, refused (saying why) and made again once
    the compiler finds one more optional header; the cache keeps both."""
    monkeypatch.delenv("CPPFLAGS", raising=False)
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    monkeypatch.setattr(paths, "LOGS", tmp_path / "build" / "logs")
    made: list[dict] = []

    def compile_and_install(src, obj, install, step, args, *, stamp, **_kw):
        made.append(stamp)
        shutil.rmtree(install, ignore_errors=True)
        (install / "bin").mkdir(parents=True)
        (install / "bin" / "python3").write_text("")
        (install / build.STAMP).write_text(json.dumps(stamp | {"prefix": str(install)}))
        return install / "bin" / "python3"

    monkeypatch.setattr(build, "_compile_and_install", compile_and_install)
    monkeypatch.setattr(build.apply, "prepare", lambda *_a, **_kw: 0)
    version = versions.DEFAULT_VERSION
    install = paths.install_dir(version, "stock")

    def run() -> str:
        build.build(version, "stock", tarball=pristine_tarball[version])
        return capsys.readouterr().out

    run()
    assert "up to date" in run() and len(made) == 1
    _dev_package(tmp_path, monkeypatch, "ndbm.h")
    out = run()
    assert len(made) == 2 and "up to date" not in out and "restored" not in out
    assert f"not reused: {install} would differ from a build made now: " \
           "ndbm.h (_dbm) is found now" in out
    assert "ndbm.h" in build.read_stamp(install)["optional_headers"]
    shutil.rmtree(install)                               # a fresh clone
    assert "restored from the build cache" in run() and len(made) == 2
    assert "ndbm.h" in build.read_stamp(install)["optional_headers"]
    monkeypatch.delenv("CPPFLAGS")                       # the package removed
    assert "restored from the build cache" in run() and len(made) == 2
    assert "ndbm.h" not in build.read_stamp(install)["optional_headers"]


# -- a packager's build-time default ----------------------------------------------

_CONFIG = ("import json, sysconfig\n"
           "print(json.dumps({k: str(v) for k, v in sysconfig.get_config_vars().items()}))")


def relink_with(version: str, src, define: str, out) -> object:
    """The patched interpreter of ``version`` relinked with bootstrap_hash.c
    compiled with ``-D{define}``, as a distribution's CFLAGS would: only
    that file reads the policy.  Everything else comes from the installed
    interpreter (its static library, python.o, headers and build flags),
    which is all a restored build has; it finds its standard library
    through ``out/lib``, a link to the installed one.  ``src`` is the
    patched tree of the release."""
    python = built(version, "pep522")
    cfg = json.loads(_query(python, _CONFIG))
    include = cfg["INCLUDEPY"]
    cflags = [f"-I{include}", f"-I{include}/internal", f"-I{include}/internal/mimalloc",
              *cfg["PY_CORE_CFLAGS"].split()]
    obj = out / "bootstrap_hash.o"
    subprocess.run([*cfg["CC"].split(), "-c", *cflags, f"-D{define}", "-o", str(obj),
                    str(src / "Python" / "bootstrap_hash.c")], check=True)
    library = out / cfg["LIBRARY"]
    shutil.copy(os.path.join(cfg["LIBPL"], cfg["LIBRARY"]), library)
    subprocess.run(["ar", "r", str(library), str(obj)], check=True)
    (out / "bin").mkdir()
    (out / "lib").symlink_to(paths.install_dir(version, "pep522") / "lib")
    relinked = out / "bin" / "python3"
    subprocess.run([*cfg["LINKCC"].split(), *cfg["PY_CORE_LDFLAGS"].split(),
                    *cfg["LINKFORSHARED"].split(), "-o", str(relinked),
                    os.path.join(cfg["LIBPL"], "python.o"), str(library),
                    *cfg["LIBS"].split(), *cfg["MODLIBS"].split(),
                    *cfg["SYSLIBS"].split()], check=True)
    return relinked


URANDOM = ("import os\ntry:\n    print(len(os.urandom(8)))\n"
           "except BlockingIOError:\n    print('raises')\n")


def test_a_distribution_can_build_wait_as_the_default(tmp_path):
    version = versions.DEFAULT_VERSION
    (tmp_path / "wait").mkdir()
    (tmp_path / "plain").mkdir()
    src = tmp_path / "src"
    apply.make_tree(fetch.fetch(versions.release(version)), "pep522", src, log=lambda _: None)
    python = relink_with(version, src, "PY_URANDOM_DEFAULT_WAIT", tmp_path / "wait")
    plain = relink_with(version, src, "PY_URANDOM_UNRELATED", tmp_path / "plain")

    def run(python, *args, **env):
        done = modes.run("ready-on-wait", [str(python), *args, "-c", URANDOM],
                         env={**os.environ, **env}, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run(python) == "8"                       # waits: the build's default
    assert run(python, PYTHONURANDOM="raise") == "raises"
    assert run(python, "-X", "urandom=raise") == "raises"
    assert run(python, "-E", PYTHONURANDOM="raise") == "8"
    assert run(plain) == "raises"                   # the same relink, PEP 522's default
