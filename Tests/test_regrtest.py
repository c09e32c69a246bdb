"""regrtest: regrtest's summary is read into a per-module status."""

from __future__ import annotations

import json
import shutil

import pytest

from pep522_harness.core import paths, versions
from pep522_harness.studies import regrtest

REPO = paths.REPO

SUMMARY_313 = """\
== Tests result: FAILURE then FAILURE ==

2 tests skipped:
    test_devpoll test_kqueue

1 re-run test:
    test_cmd_line

1 test failed:
    test_cmd_line

1 test altered the execution environment (env changed):
    test_tempfile

3 tests OK.

Total duration: 20.1 sec
Result: FAILURE then FAILURE
"""

SUMMARY_311 = """\
== Tests result: FAILURE then SUCCESS ==

4 tests OK.

1 re-run test:
    test_uuid

1 test skipped:
    test_zz_nonexistent
"""


def test_parse_313_style_with_failed_again():
    sel = ["test_os", "test_cmd_line", "test_tempfile", "test_devpoll", "test_secrets"]
    got = regrtest.parse_summary(SUMMARY_313, sel)
    assert got["test_cmd_line"] == "failed"
    assert got["test_tempfile"] == "env_changed"
    assert got["test_devpoll"] == "skipped"
    assert got["test_os"] == got["test_secrets"] == "passed"
    assert got["test_kqueue"] == "skipped"     # seen though not selected


def test_parse_rerun_that_passed_is_flaky():
    got = regrtest.parse_summary(SUMMARY_311, ["test_uuid", "test_os"])
    assert got == {"test_uuid": "flaky", "test_os": "passed",
                   "test_zz_nonexistent": "skipped"}


FULL_LOG_313 = """\
0:00:05 load avg: 0.78 [  4/483/1] test.test_asyncio.test_eager_task_factory failed
== Tests result: FAILURE ==

2 tests failed:
    test.test_asyncio.test_eager_task_factory test_cmd_line

445 tests OK.

0:06:29 load avg: 0.93 Re-running 2 failed tests in verbose mode in subprocesses
0:06:29 load avg: 0.93 [1/2/1] test_cmd_line failed (1 failure)
0:06:29 load avg: 0.93 [2/2/1] test.test_asyncio.test_eager_task_factory passed
1 test failed again:
    test_cmd_line

== Tests result: FAILURE then FAILURE ==

2 re-run tests:
    test.test_asyncio.test_eager_task_factory test_cmd_line

1 test failed:
    test_cmd_line

446 tests OK.
"""


def test_parse_only_the_summary_after_the_re_run():
    got = regrtest.parse_summary(FULL_LOG_313, [])
    assert got == {"test.test_asyncio.test_eager_task_factory": "flaky",
                   "test_cmd_line": "failed"}


def test_compare_lists_only_differences():
    a = regrtest.Outcome("3.13.5", "stock", "ready", [], 1.0, 0,
                         {"test_os": "passed", "test_uuid": "passed"})
    b = regrtest.Outcome("3.13.5", "pep522", "ready", [], 1.0, 1,
                         {"test_os": "failed", "test_uuid": "passed"})
    assert regrtest.compare(a, b) == [
        {"test": "test_os", "stock": "passed", "pep522": "failed"}]


def test_report_is_named_after_the_whole_version(tmp_path):
    def outcome(variant, status):
        return regrtest.Outcome("3.13.5", variant, "never-ready", ["-m", "test"], 1.5, 1,
                                status)
    data = regrtest.report([outcome("stock", {"test_os": "passed", "test_x": "failed"}),
                            outcome("pep522", {"test_os": "failed", "test_x": "failed"})],
                           tmp_path / "regrtest-3.13.5")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "regrtest-3.13.5.json", "regrtest-3.13.5.md"]
    assert data["modes"]["never-ready"]["differ"] == [
        {"test": "test_os", "stock": "passed", "pep522": "failed"}]
    assert data["modes"]["never-ready"]["wall_s"] == 3.0
    assert "| test_os | passed | failed |" in (tmp_path / "regrtest-3.13.5.md").read_text()


def test_publish_merges_modes_and_sets_apart_our_own_modules(tmp_path):
    ours = regrtest.added_test_modules()[0]

    def data(mode, differ):
        return {"version": "3.13.5", "modes": {mode: {
            "wall_s": 60.0, "flaky": ["test_x"], "differ": differ,
            "stock": {"failed": ["test_cmd_line"]},
            "pep522": {"failed": [], "command": f"{mode} -- build/p/bin/python3 -m test "
                                                "-j2 --timeout=900 -w"}}}}
    regrtest.publish(data("ready", [{"test": ours, "stock": "absent", "pep522": "passed"}]),
                     tmp_path)
    md = regrtest.publish(data("never-ready", [
        {"test": "test_nothing_explains_this", "stock": "passed", "pep522": "failed"}]),
        tmp_path)
    doc = json.loads((tmp_path / "regrtest-3.13.5.json").read_text())
    assert set(doc["modes"]) == {"ready", "never-ready"}
    assert doc["modes"]["ready"]["differ"] == []
    assert doc["modes"]["ready"]["added_modules"] == {ours: "passed"}
    assert doc["modes"]["never-ready"]["differ"][0]["why"] is None
    assert "**not explained**" in md.read_text()
    assert doc["modes"]["ready"]["command"] == "--cpython 3.13.5 --full --mode ready"
    assert doc["modes"]["ready"]["regrtest"] == "-j2 --timeout=900 -w"
    assert "`python -m test -j2 --timeout=900 -w`" in md.read_text()

    # Read again from the logs: the result may change, the measured time stays.
    again = data("ready", [])
    again["modes"]["ready"]["wall_s"] = 1.0
    regrtest.publish(again, tmp_path, reread=True)
    doc = json.loads((tmp_path / "regrtest-3.13.5.json").read_text())
    assert doc["modes"]["ready"]["wall_s"] == 60.0
    assert doc["modes"]["ready"]["added_modules"] == {}


def test_total_duration_reads_regrtests_own_clock():
    assert regrtest.total_duration("x\nTotal duration: 6 min 39 sec\n") == 399
    assert regrtest.total_duration("Total duration: 1 hour 2 min 3 sec") == 3723
    assert regrtest.total_duration("Total duration: 20.1 sec") == 20.1
    assert regrtest.total_duration("interrupted") is None


def test_from_log_reads_the_last_summary(tmp_path):
    log = regrtest.log_path(tmp_path, "3.13.5", "pep522", "ready-on-wait", False, None)
    log.write_text(FULL_LOG_313.replace("FAILURE then FAILURE", "FAILURE then SUCCESS")
                   + "Total duration: 6 min 39 sec\nResult: FAILURE then SUCCESS\n")
    o = regrtest.from_log("3.13.5", "pep522", "ready-on-wait", ["test_os"], log_dir=tmp_path)
    assert (o.wall_s, o.returncode) == (399, 0)
    assert o.status["test.test_asyncio.test_eager_task_factory"] == "flaky"
    assert o.status["test_os"] == "passed"
    assert str(REPO) not in " ".join(o.command)
    log.write_text("0:00:01 [1/480] test_os passed\n")     # interrupted: no summary
    with pytest.raises(SystemExit, match="did not finish"):
        regrtest.from_log("3.13.5", "pep522", "ready-on-wait", ["test_os"], log_dir=tmp_path)


def test_a_release_leaves_out_the_same_cases_on_both_variants():
    ignored = regrtest.ignored("3.11.2")
    assert ignored, "3.11.2 leaves out the vsock test that hangs on stock"
    cmds = [regrtest.command(REPO / f"build/cpython-3.11.2-{v}/bin/python3", "3.11.2",
                             ["test_os"], full=False, jobs=2, timeout=900, rerun=True)
            for v in ("stock", "pep522")]
    for cmd in cmds:
        for pattern in ignored:
            assert cmd[cmd.index(pattern) - 1] == "--ignore"
        assert cmd[-1] == "test_os"
    assert [a.replace("-stock/", "-VARIANT/") for a in cmds[0]] == [
        a.replace("-pep522/", "-VARIANT/") for a in cmds[1]]
    assert "--ignore" not in regrtest.command(
        REPO / "python3", "3.13.5", [], full=True, jobs=2, timeout=900, rerun=True)


def test_ignored_cases_are_for_supported_releases_and_say_why():
    table = regrtest.tomllib.loads(regrtest.EXPLAINED.read_text())
    for version, cases in table.get("ignore", {}).items():
        assert version in versions.releases(), version
        assert all(len(why) > 40 for why in cases.values()), cases


def test_publish_shows_what_the_release_leaves_out(tmp_path):
    data = {"version": "3.11.2", "modes": {"ready": {
        "wall_s": 60.0, "flaky": [], "differ": [],
        "stock": {"failed": []}, "pep522": {"failed": []}}}}
    md = regrtest.publish(data, tmp_path)
    doc = json.loads((tmp_path / "regrtest-3.11.2.json").read_text())
    assert doc["modes"]["ready"]["ignored"] == regrtest.ignored("3.11.2")
    for pattern in regrtest.ignored("3.11.2"):
        assert f"`--ignore {pattern}`" in md.read_text()


def test_explanation_prefers_the_mode_then_any():
    table = {"*": {"test_a": "always"}, "never-ready": {"test_a": "here"}}
    assert regrtest.explanation("test_a", "never-ready", table) == "here"
    assert regrtest.explanation("test_a", "enosys", table) == "always"
    assert regrtest.explanation("test_b", "enosys", table) is None


def _runs_behind(entry: dict) -> dict:
    """A published mode as its --full runs handed it to publish()."""
    command = f"MODE -- python3 -m test {entry['regrtest']}"
    return {"differ": [{k: d[k] for k in ("test", "stock", "pep522")} for d in entry["differ"]]
            + [{"test": t, "stock": "absent", "pep522": o}
               for t, o in entry["added_modules"].items()],
            "flaky": entry["flaky"], "wall_s": entry["wall_s"],
            **{v: {"failed": f, "command": command} for v, f in entry["failed"].items()}}


@pytest.mark.parametrize("version", sorted(versions.releases()))
def test_the_published_report_is_what_the_code_makes_of_its_runs(version, tmp_path):
    """Publishing the runs behind docs/regrtest-V again gives its JSON and
    Markdown byte for byte: each difference explained by the code (from
    regrtest_explained.toml), nothing written by hand."""
    published = REPO / "docs" / f"regrtest-{version}.json"
    shutil.copy(published, tmp_path)
    doc = json.loads(published.read_text())
    md = regrtest.publish({"version": version, "modes": {
        mode: _runs_behind(entry) for mode, entry in doc["modes"].items()}},
        tmp_path, reread=True)
    assert (tmp_path / published.name).read_text() == published.read_text()
    assert md.read_text() == published.with_suffix(".md").read_text()


@pytest.mark.parametrize("version", sorted(versions.releases()))
def test_every_release_has_its_whole_suite_compared_and_explained(version):
    doc = json.loads((REPO / "docs" / f"regrtest-{version}.json").read_text())
    assert set(doc["modes"]) >= {"ready", "never-ready", "ready-on-wait"}
    assert doc["modes"]["ready"]["differ"] == [], "a ready RNG must change nothing"
    for mode, entry in doc["modes"].items():
        assert entry["wall_s"] > 0, mode
        assert entry["command"] == f"--cpython {version} --full --mode {mode}"
        # the patch set's own modules ran, and passed, in every mode
        assert entry["added_modules"] and set(entry["added_modules"].values()) == {"passed"}
        for d in entry["differ"]:
            assert d["why"], f"{d['test']} differs under {mode}, unexplained"


def test_a_worker_the_fake_stopped_blocked():
    # The hold limit stops a worker with SIGABRT: regrtest's summary says
    # failed, its progress line says why.
    log = "\n".join([
        "0:00:03 load avg: 1.0 [1/3/1] test_os worker non-zero exit code "
        "(Exit code -6 (SIGABRT))",
        "0:00:04 load avg: 1.0 [2/3/2] test_uuid crashed (Exit code -6)",
        "0:00:05 load avg: 1.0 [3/3/3] test_hash worker non-zero exit code "
        "(Exit code -11 (SIGSEGV))",
        "", "== Tests result: FAILURE ==", "",
        "3 tests failed:", "    test_hash test_os test_uuid", ""])
    assert regrtest.stopped_workers(log) == {"test_os", "test_uuid"}
    got = regrtest.parse_summary(log, ["test_os", "test_uuid", "test_hash", "test_re"])
    assert got == {"test_os": "blocked", "test_uuid": "blocked", "test_hash": "failed",
                   "test_re": "passed"}


def test_a_difference_its_statuses_explain():
    table = {"reasons": {"r": "stock blocks"}, "statuses": {"blocked passed": "r"},
             "never-ready": {"test_x": "its own"}}
    assert regrtest.explanation("test_y", "never-ready", table, "blocked", "passed") \
        == "stock blocks"
    assert regrtest.explanation("test_x", "never-ready", table, "blocked", "passed") \
        == "its own"
    assert regrtest.explanation("test_y", "never-ready", table, "failed", "passed") is None
