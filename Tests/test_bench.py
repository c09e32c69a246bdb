"""The benchmark session keeps working: ``--fast`` end to end, outputs well formed.

Timings are never asserted (CI machines are shared and noisy); only that every
benchmark ran on both variants and every output says what it should.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pep522_harness.core import paths
from pep522_harness.core.versions import DEFAULT_VERSION, VARIANTS
from pep522_harness.studies import bench

NAMES = {b.name for b in bench.BENCHES}


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "pep522_harness", "bench", "--fast",
                           "--cpython", DEFAULT_VERSION, "--out", str(out)],
                          cwd=paths.REPO, capture_output=True, text=True, timeout=1800,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / DEFAULT_VERSION, proc.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_pyperf_suite_per_variant_holds_every_benchmark(fast_run, variant):
    data = json.loads((fast_run[0] / f"{variant}.json").read_text())
    by_name = {b["metadata"]["name"]: b for b in data["benchmarks"]}
    assert set(by_name) == NAMES
    for name, entry in by_name.items():
        values = [v for run in entry["runs"] for v in run.get("values", [])]
        assert values and all(isinstance(v, float) and v > 0 for v in values), name


def test_compare_to_gives_a_verdict_for_every_benchmark(fast_run):
    text = (fast_run[0] / "compare.txt").read_text()
    verdicts = bench.parse_verdicts(text)
    assert set(verdicts) == NAMES
    for words, _significant in verdicts.values():
        assert ("significant" in words) and ("x faster" in words or "x slower" in words
                                              or "no change" in words), words


def test_wake_launches_measured_the_wait(fast_run):
    wake = json.loads((fast_run[0] / "wake.json").read_text())
    assert set(wake) == set(VARIANTS)
    for variant, launches in wake.items():
        assert launches, variant
        for launch in launches:
            assert "error" not in launch, launch
            assert launch["method"] in ("exact", "upper bound")
            assert launch["call"] in ("secrets.wait_for_system_rng()", "os.getrandom(1)")
            assert launch["t_return"] > launch["t_call"]


def test_ratio_table_has_a_row_with_goal_and_verdict_per_benchmark(fast_run):
    out, stdout = fast_run
    md = (out / "ratios.md").read_text()
    assert md in stdout                      # the session prints what it writes
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0][2:] for r in rows] == [b.label for b in bench.BENCHES]
    for b, row in zip(bench.BENCHES, rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 8, row
        for ratio in cells[3:5]:
            float(ratio.rstrip("×"))
        assert cells[5] == bench.goal_text(b)
        assert cells[6] in ("met", "missed", "unclear (noise)", "—"), row
        assert "significant" in cells[7], row
    assert "load average" in md


def test_parse_verdicts_reads_pyperf_words():
    text = ("urandom-16\n==========\n\nMean +- std dev: [stock] 392 ns +- 56 ns -> "
            "[pep522] 361 ns +- 32 ns: 1.09x faster\nSignificant (t=2.19)\n\n"
            "urandom-32\n==========\n\nMean +- std dev: [stock] 352 ns +- 34 ns -> "
            "[pep522] 345 ns +- 8 ns: 1.02x faster\nNot significant!\n")
    assert bench.parse_verdicts(text) == {
        "urandom-16": ("1.09x faster, significant (t=2.19)", True),
        "urandom-32": ("1.02x faster, not significant", False)}


@pytest.mark.parametrize("ratio, significant, expected", [
    (1.005, False, "met"), (1.05, True, "missed"), (1.05, False, "unclear (noise)"),
])
def test_judge_a_no_slowdown_goal(ratio, significant, expected):
    token = next(b for b in bench.BENCHES if b.name == "token_bytes-32")
    assert token.goal is not None and token.goal >= 1
    assert bench.judge(token, ratio * token.goal / 1.01, 0.0, significant) == expected


@pytest.mark.parametrize("ratio, significant, expected", [
    (0.90, True, "met"), (0.90, False, "unclear (noise)"), (0.99, False, "missed"),
])
def test_judge_a_speed_up_goal(ratio, significant, expected):
    urandom = next(b for b in bench.BENCHES if b.name == "urandom-32")
    assert urandom.goal == 0.95
    assert bench.judge(urandom, ratio, 0.0, significant) == expected


def test_instruction_table_counts_both_variants(tmp_path):
    md = bench.instruction_table(DEFAULT_VERSION, tmp_path)
    assert (tmp_path / "instructions.md").read_text() == md
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(bench.IR_CALLS) + 1
    for row in rows:
        stock, patched, ratio = (c.strip() for c in row.strip("|").split("|")[1:])
        assert int(stock.replace(",", "")) > 0 and int(patched.replace(",", "")) > 0
        # instruction counts are stable: an order of magnitude off is a bug
        assert 0.5 < float(ratio.rstrip("×")) < 2, row
