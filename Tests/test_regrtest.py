"""regrtest: regrtest's summary is read into a per-module status."""

from __future__ import annotations

from pep522_harness import regrtest

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
