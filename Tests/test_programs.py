"""Real programs, stock against patched, on a ready RNG and under
never-ready and ready-on-wait.

One session-scoped run fills the program rows of the impact table for the
default release (and the stdlib-import row for every supported release); it
is written to build/out/impact-test.md/.json, and each test below asserts
one expected difference or sameness.  Expected, from PEP 522 and the audit:

* ready: stock and patched do the same, program by program;
* stock never raises: it blocks (on a kernel that never gets ready it hangs);
* patched never raises either, except where the program calls os.urandom,
  SystemRandom or uuid4 itself: no import raises or blocks, and what needs a
  secret (multiprocessing's authkey and challenges, secrets) waits when it
  needs it; with PYTHONURANDOM=wait, those callers wait too.
"""

from __future__ import annotations

import ast
import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from pep522_harness.core import paths, versions
from pep522_harness.core.tables import Cell
from pep522_harness.fake import modes
from pep522_harness.studies.impact import programs, projects
from pep522_harness.studies.impact import table as impact_table

REPO = paths.REPO
SUPPORTED = list(versions.releases())

VERSION = versions.DEFAULT_VERSION
MODES = modes.NOT_READY
PEP_AS_PRINTED = "PEP fallback snippet (as printed)"
# The programs that draw from os.urandom() (or SystemRandom) themselves:
# they raise on patched (PEP 522's public contract) unless the process waits.
CONTRACT = ("uuid.uuid4()", "cloud-init password", "multipart body")
WAITING = {f"{name}, PYTHONURANDOM=wait": name for name in CONTRACT}


@pytest.fixture(scope="session")
def table(tmp_path_factory) -> dict[str, dict[str, Cell]]:
    out = paths.OUT / "impact-test.json"
    out.unlink(missing_ok=True)
    data = programs.run([VERSION], list(modes.STUDIED),
                        work=tmp_path_factory.mktemp("programs"))
    others = [v for v in SUPPORTED if v != VERSION]
    if others:
        data["stdlib imports"].update(programs.run(
            others, ["never-ready"], ["stdlib imports"],
            work=tmp_path_factory.mktemp("programs-other"))["stdlib imports"])
    md = programs.publish(data, "pytest Tests/test_programs.py", out)
    print(f"\nprogram rows: {md}")
    return data


def cell(table, name: str, variant: str, mode: str, version: str = VERSION) -> Cell:
    return table[name][programs.column(version, variant, mode)]


def describe(c: Cell) -> str:
    return f"{c.text}\n{c.detail[-1500:]}"


PROGRAM_NAMES = [p.name for p in programs.PROGRAMS]


# -- what stock and patched do ----------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_stock_never_raises(table, name, mode):
    c = cell(table, name, "stock", mode)
    assert c.kind != "raises", describe(c)


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_ready_means_unchanged(table, name):
    # On an ordinary machine the patch set changes nothing: a difference
    # here is a bug, never intended.  The systemd recipe calls what only
    # the patch set has.
    stock, patched = (cell(table, name, v, "ready") for v in versions.VARIANTS)
    if programs.program(name).new_api:
        assert patched.kind == "works", describe(patched)
        return
    assert stock.kind == patched.kind, (describe(stock), describe(patched))
    if name != PEP_AS_PRINTED:
        assert patched.kind == "works", describe(patched)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [n for n in PROGRAM_NAMES
                                  if n not in (PEP_AS_PRINTED, *CONTRACT)])
def test_patched_programs_do_their_job(table, name, mode):
    c = cell(table, name, "pep522", mode)
    assert c.kind in ("works", "waits", "blocks"), describe(c)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CONTRACT)
def test_contract_raises_at_once_instead_of_waiting(table, name, mode):
    stock = cell(table, name, "stock", mode)
    assert stock.kind == ("blocks" if mode == "never-ready" else "waits"), describe(stock)
    patched = cell(table, name, "pep522", mode)
    assert patched.kind == "raises", describe(patched)
    assert patched.where.startswith(("uuid.py:", "random.py:", "program_multipart")), \
        describe(patched)
    assert patched.waited == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", WAITING)
def test_pythonurandom_wait_keeps_them_working(table, name, mode):
    # A distribution's switch for a service it cannot patch: os.urandom()
    # waits as secrets does; stock ignores the variable.
    patched = cell(table, name, "pep522", mode)
    assert patched.kind == ("blocks" if mode == "never-ready" else "waits"), describe(patched)
    assert cell(table, name, "stock", mode).kind == \
        cell(table, WAITING[name], "stock", mode).kind


@pytest.mark.parametrize("mode", MODES)
def test_prefork_server_shares_its_key(table, mode):
    for variant in versions.VARIANTS:
        c = cell(table, "pre-fork server", variant, mode)
        assert c.kind == ("blocks" if mode == "never-ready" else "waits"), describe(c)


# The process that blocks is ensurepip's, whose output venv keeps to itself.
WHERE_UNSEEN = ("venv + ensurepip",)


@pytest.mark.parametrize("mode", MODES)
def test_blocks_say_where(table, mode):
    for name in PROGRAM_NAMES:
        for variant in versions.VARIANTS:
            c = cell(table, name, variant, mode)
            if c.kind == "blocks" and name not in WHERE_UNSEEN:
                assert c.where and c.where in c.text, describe(c)


@pytest.mark.parametrize("version", SUPPORTED)
def test_no_stdlib_import_fails_or_blocks_on_patched(table, version):
    c = cell(table, "stdlib imports", "pep522", "never-ready", version)
    assert c.kind == "works", (c.text, c.extra.get("failures"), c.extra.get("blocking"))
    assert not c.extra["failures"] and not c.extra["blocking"]
    assert c.extra["imported"] > 500
    ready = cell(table, "stdlib imports", "pep522", "ready", version) \
        if version == VERSION else None
    if ready is not None:
        assert ready.text == cell(table, "stdlib imports", "stock", "ready", version).text


@pytest.mark.parametrize("version", SUPPORTED)
def test_stock_blocks_at_import_multiprocessing(table, version):
    c = cell(table, "stdlib imports", "stock", "never-ready", version)
    assert c.kind == "blocks", c.text
    assert any(m.startswith(("multiprocessing", "concurrent.futures"))
               for m in c.extra["blocking"]), c.extra["blocking"]
    assert "multiprocessing/process.py" in c.where, c.text


def test_no_import_waits_on_patched(table):
    assert cell(table, "stdlib imports", "pep522", "ready-on-wait").kind == "works"
    assert cell(table, "stdlib imports", "stock", "ready-on-wait").kind == "waits"


@pytest.mark.parametrize("variant", versions.VARIANTS)
def test_pool_map_finishes_when_the_rng_gets_ready(table, variant):
    c = cell(table, "multiprocessing.Pool", variant, "ready-on-wait")
    assert c.kind in ("works", "waits"), describe(c)


@pytest.mark.parametrize("name", ["multiprocessing.Pool", "ProcessPoolExecutor"])
def test_pool_waits_for_its_key_when_workers_start(table, name):
    # Stock draws the authkey when multiprocessing is imported; patched when
    # the first worker starts (its children share the key): both wait for a
    # kernel that is not ready, and neither raises (the import difference is
    # the stdlib-imports row).
    for variant in versions.VARIANTS:
        c = cell(table, name, variant, "never-ready")
        assert c.kind == "blocks", (variant, describe(c))


@pytest.mark.parametrize("name", ["multiprocessing.Manager", "multiprocessing.Pool (spawn)"])
def test_authkey_and_challenges_wait_for_the_rng(table, name):
    assert cell(table, name, "pep522", "ready-on-wait").kind == "waits"
    assert cell(table, name, "pep522", "never-ready").kind == "blocks"


@pytest.mark.parametrize("name", ["tempfile", "email MIME boundary", "logging rotating file",
                                  "http.server", "asyncio echo"])
@pytest.mark.parametrize("mode", MODES)
def test_programs_that_need_no_secret_never_wait(table, name, mode):
    for variant in versions.VARIANTS:
        assert cell(table, name, variant, mode).kind == "works", (variant, describe(
            cell(table, name, variant, mode)))


@pytest.mark.parametrize("name", ["ssl.create_default_context", "venv + ensurepip",
                                  "pip install (local wheel)"])
def test_openssl_waits_on_both(table, name):
    # SSL_CTX_new seeds OpenSSL's generator with a blocking getrandom():
    # neither stock nor the patch set can make it raise (audit.toml).
    for variant in versions.VARIANTS:
        assert cell(table, name, variant, "ready-on-wait").kind == "waits", variant
        assert cell(table, name, variant, "never-ready").kind == "blocks", variant


def test_systemd_recipe(table):
    for mode in MODES:
        stock = cell(table, "systemd recipe", "stock", mode)
        assert stock.kind == "fails" and "wait_for_system_rng" in stock.text
    waited = cell(table, "systemd recipe", "pep522", "ready-on-wait")
    assert waited.kind == "waits" and waited.waited >= 0.05
    assert cell(table, "systemd recipe", "pep522", "never-ready").kind == "blocks"


def test_fallback_snippets(table):
    for variant in versions.VARIANTS:
        for mode in MODES:
            printed = cell(table, PEP_AS_PRINTED, variant, mode)
            assert printed.kind == "fails" and "ModuleNotFoundError" in printed.text
            working = cell(table, "fallback snippet (working)", variant, mode)
            assert working.kind in ("waits", "blocks"), describe(working)


# -- the snippet our docs show -----------------------------------------------------

def test_docs_show_the_working_fallback_snippet():
    readme = (REPO / "README.md").read_text()
    assert programs.FALLBACK_SNIPPET in readme
    ast.parse(programs.FALLBACK_SNIPPET)
    # The PEP's own parses too, but names modules that cannot exist.
    tree = ast.parse(programs.PEP_FALLBACK_SNIPPET)
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert names == ["secrets.token_bytes", "os.urandom"]


def test_fallback_snippet_runs_here():
    namespace: dict = {}
    exec(programs.FALLBACK_SNIPPET, namespace)
    assert len(namespace["_get_random_bytes"](8)) == 8


# -- the parsers the cells rest on ------------------------------------------------

TRACEBACK = '''\
Traceback (most recent call last):
  File "/x/bin/drv.py", line 2, in <module>
    import multiprocessing
  File "/x/lib/python3.13/multiprocessing/process.py", line 402, in __init__
    self._config = {'authkey': AuthenticationString(os.urandom(32)),
                                                    ~~~~~~~~~~^^^^
BlockingIOError: [Errno 11] system random number generator is not ready
'''


def test_blocking_frame_is_the_innermost_frame():
    assert programs.blocking_frame(TRACEBACK) == "multiprocessing/process.py:402 (__init__)"
    assert programs.blocking_frame(TRACEBACK.replace("BlockingIOError", "ValueError")) is None
    site = TRACEBACK.replace("lib/python3.13/multiprocessing",
                             "lib/python3.13/site-packages/passlib")
    assert programs.blocking_frame(site) == "passlib/process.py:402 (__init__)"
    chained = TRACEBACK.replace("process.py", "first.py") + (
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        + TRACEBACK.replace("line 402", "line 433"))
    assert programs.blocking_frame(chained) == "multiprocessing/process.py:433 (__init__)"
    via = programs.blocking_frame(TRACEBACK.replace("/x/bin/drv.py", "/p/src/app.py"),
                                  root=Path("/p/src"))
    assert via == "multiprocessing/process.py:402 (__init__) via app.py:2 (<module>)"


def test_import_markers_attribute_blocking_calls():
    trace = "\n".join([
        '5 write(3, "IMPORT json\\n", 12) = 12',
        '5 write(3, "IMPORT multiprocessing\\n", 23) = 23',
        '5 getrandom("\\x00"..., 32, 0) = 32',
        '5 write(3, "IMPORT ssl\\n", 11) = 11'])
    assert programs.attribute_blocking(trace) == {"multiprocessing": 1}


def test_tiny_wheel_is_a_wheel(tmp_path):
    wheel = programs.make_wheel(tmp_path)
    assert wheel.name == "pep522_tiny-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        record = zf.read("pep522_tiny-1.0.dist-info/RECORD").decode()
    assert {"pep522_tiny/__init__.py", "pep522_tiny-1.0.dist-info/WHEEL"} <= names
    assert all(n in record for n in names)


def test_junit_outcomes_and_frames(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(f"""<testsuites><testsuite>
 <testcase classname="t.A" name="ok"/>
 <testcase classname="t.A" name="boom"><failure message="x">{escape(TRACEBACK)}</failure></testcase>
 <testcase classname="t.A" name="other"><error message="y">ValueError</error></testcase>
 <testcase classname="t.A" name="skip"><skipped message="z"/></testcase>
</testsuite></testsuites>""")
    outcomes, frames = projects.parse_junit(xml)
    assert outcomes == {"t.A::ok": "passed", "t.A::boom": "failed",
                        "t.A::other": "error", "t.A::skip": "skipped"}
    assert frames == {"t.A::boom": "multiprocessing/process.py:402 (__init__)"}
    stock = projects.TestRun("stock", "never-ready", 0, 1.0,
                           {k: "passed" for k in outcomes})
    patched = projects.TestRun("pep522", "never-ready", 1, 1.0, outcomes, frames)
    changed = projects.compare(stock, patched)
    assert [c["test"] for c in changed] == ["t.A::boom", "t.A::other", "t.A::skip"]
    assert patched.cell()["kind"] == "raises"
    assert stock.cell()["text"] == "works (4 passed)"


def test_tox_config_runs_our_interpreters():
    project = projects.PROJECTS["shortuuid"]
    ini = projects.tox_ini(project, {"stock": Path("/b/stock/bin/python3"),
                                   "pep522": Path("/b/pep522/bin/python3")})
    assert "[testenv:pep522]\nbase_python = /b/pep522/bin/python3" in ini
    assert "{env:PEP522_LAUNCH:} python -m pytest" in ini
    assert "shortuuid/test_shortuuid.py" in ini


def test_impact_projects_say_why():
    assert len(projects.PROJECTS) >= 3
    for p in projects.PROJECTS.values():
        assert p.why and p.version and p.tests


def test_the_published_table_is_made_from_its_json(tmp_path):
    copy = tmp_path / "impact.json"
    copy.write_text((REPO / "docs" / "impact.json").read_text())
    md = impact_table.write(copy, programs.ROWS)
    assert md.read_text() == (REPO / "docs" / "impact.md").read_text()


def test_the_published_table_shows_ready_unchanged():
    # docs/impact.json: every row and release has a ready column, and there
    # stock and patched do the same (a project: no test changes outcome).
    data = impact_table.load()
    for name, row in data["rows"].items():
        new_api = row["kind"] == "program" and programs.program(name).new_api
        for version in versions.releases():
            stock = row["cells"].get(f"{version} stock ready")
            patched = row["cells"].get(f"{version} pep522 ready")
            if row["kind"] == "program" and name != "stdlib imports" and \
                    version != versions.DEFAULT_VERSION and stock is None:
                continue        # the program rows are published for the default release
            assert stock and patched, (name, version)
            if not new_api:
                assert stock["kind"] == patched["kind"], (name, version)
            if row["kind"] == "project":
                assert not row["details"][f"{version} ready"]["changed"], (name, version)


def test_no_docs_records_into_a_scratch_copy(tmp_path, monkeypatch):
    docs = tmp_path / "docs" / "impact.json"
    docs.parent.mkdir()
    docs.write_text(json.dumps({"rows": {"kept": {"kind": "program", "cells": {}}}}))
    monkeypatch.setattr(impact_table, "JSON", docs)
    monkeypatch.setattr(paths, "OUT", tmp_path / "out")
    scratch = impact_table.store(docs=False)
    assert scratch == tmp_path / "out" / "impact.json"
    impact_table.record("new", "program", "a row", {"3.13.5 stock ready-on-wait": {}}, "cmd",
                  path=scratch)
    assert set(impact_table.load(scratch)["rows"]) == {"kept", "new"}
    assert set(impact_table.load(docs)["rows"]) == {"kept"}
    assert impact_table.store(docs=True) == docs


def test_the_committed_table_names_no_path_of_the_machine():
    text = (REPO / "docs" / "impact.json").read_text()
    assert str(REPO) not in text
    assert paths.portable({"d": [f"File \"{REPO}/build/x.py\""]}) == {"d": ['File "build/x.py"']}
