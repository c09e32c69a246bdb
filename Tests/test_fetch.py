"""fetch: the pin is enforced and the sources are tried in order."""

from __future__ import annotations

import http.server
import shutil
import threading

import pytest

from pep522_harness.core import fetch, paths, versions
from pep522_harness.core.aptsource import PrivateApt

V = versions.DEFAULT_VERSION


def test_pins_match_the_table_format():
    for rel in versions.releases().values():
        assert len(rel.sha256) == 64 and int(rel.sha256, 16) >= 0
        assert rel.file.startswith(f"Python-{rel.version}.")


def test_unknown_version_is_refused():
    with pytest.raises(versions.UnknownVersion, match="supported"):
        versions.release("3.99.0")


def test_tampered_tarball_is_refused_and_not_cached(pristine_tarball, isolated_cache, tmp_path):
    bad = tmp_path / versions.release(V).file
    data = bytearray(pristine_tarball[V].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(fetch.ChecksumError, match="SHA-256 mismatch"):
        fetch.fetch(versions.release(V), tarball=bad, log=lambda _m: None)
    cached = paths.tarball_cache()
    assert not cached.exists() or not any(cached.iterdir())


def test_damaged_cache_entry_is_not_used(pristine_tarball, isolated_cache, tmp_path):
    rel = versions.release(V)
    paths.tarball_cache().mkdir(parents=True)
    (paths.tarball_cache() / rel.file).write_bytes(b"not a tarball")
    assert fetch.cached(rel) is None
    assert not (paths.tarball_cache() / rel.file).exists()


def test_user_tarball_wins(pristine_tarball, isolated_cache, monkeypatch):
    def no_network(*_a, **_k):
        raise AssertionError("a network source was tried")
    monkeypatch.setattr(fetch, "from_python_org", no_network)
    monkeypatch.setattr(fetch, "from_debian", no_network)
    got = fetch.fetch(versions.release(V), tarball=pristine_tarball[V], log=lambda _m: None)
    assert got.origin == "user tarball"
    assert fetch.sha256_of(got.path) == versions.release(V).sha256


@pytest.fixture
def python_org_mirror(tmp_path, pristine_tarball):
    """A local stand-in for python.org's /ftp/python/ tree."""
    root = tmp_path / "ftp"
    rel = versions.release(V)
    (root / V).mkdir(parents=True)
    shutil.copyfile(pristine_tarball[V], root / V / rel.file)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_python_org_is_used_when_reachable(python_org_mirror, isolated_cache, monkeypatch):
    def no_debian(*_a, **_k):
        raise AssertionError("Debian was tried although python.org answered")
    monkeypatch.setattr(fetch, "from_debian", no_debian)
    got = fetch.fetch(versions.release(V), python_org_url=python_org_mirror,
                      log=lambda _m: None)
    assert got.origin == "python.org"
    assert got.path == paths.tarball_cache() / versions.release(V).file


def test_debian_is_used_when_python_org_is_unreachable(isolated_cache):
    messages = []
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    got = fetch.fetch(versions.release(V), python_org_url="http://127.0.0.1:1",
                      log=messages.append)
    assert got.origin.startswith("Debian python3.13")
    assert any("python.org unreachable" in m for m in messages)
    assert fetch.sha256_of(got.path) == versions.release(V).sha256


def test_checkout_of_another_release_is_refused(tmp_path):
    (tmp_path / "Include").mkdir()
    (tmp_path / "Include" / "patchlevel.h").write_text('#define PY_VERSION "3.12.0"\n')
    with pytest.raises(fetch.FetchError, match=f"is CPython 3.12.0, not {V}"):
        fetch.fetch(versions.release(V), source=tmp_path)


def test_private_apt_config_touches_nothing_system_wide(tmp_path):
    apt = PrivateApt(tmp_path / "apt", ["trixie"])
    conf = (tmp_path / "apt" / "apt.conf").read_text()
    sources = (tmp_path / "apt" / "etc" / "sources.list").read_text()
    values = [line.split('"')[1] for line in conf.splitlines()]
    dirs = [v for v in values if v.startswith("/")]
    assert dirs and all(v.startswith(str(tmp_path / "apt")) for v in dirs)
    assert sources.startswith("deb-src ") and " trixie main" in sources
    # The archive is the machine's own, not one the project names.
    assert apt.archive.uri in sources
