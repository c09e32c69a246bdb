"""The behaviour table: stock and patched differ exactly where PEP 522 says.

One session-scoped run fills the table for every supported release, mode and
variant (and CPython's own focus tests under the not-ready modes); it is
written to build/out/behaviour.md/.json, and each test below asserts one
expected difference or sameness on it.
"""

from __future__ import annotations

import pytest

from pep522_harness.core import build, versions
from pep522_harness.fake import modes, probes
from pep522_harness.studies import behaviour, regrtest

SUPPORTED = list(versions.releases())

# ready first: the in-tree tests stage their own fake kernel there (a test run
# already under a supervised fake cannot install a second listener).
REGRTEST_MODES = ("ready", "never-ready", "enosys", "ready-on-wait")


@pytest.fixture(scope="session")
def table():
    data = behaviour.collect(list(SUPPORTED), list(modes.EVERY))
    outcomes = [regrtest.run(v, variant, mode, regrtest.default_tests(), jobs=2,
                             timeout=600, rerun=False)
                for v in SUPPORTED for mode in REGRTEST_MODES
                for variant in versions.VARIANTS]
    behaviour.add_regrtest(data, outcomes)
    path = behaviour.write(data)
    print(f"\nbehaviour table: {path}")
    return data


def text(table, version, mode, variant, row):
    return behaviour.cell(table, version, mode, variant, row)["text"]


@pytest.mark.parametrize("version", SUPPORTED)
def test_ready_rng_changes_nothing_but_the_new_function(table, version):
    for row in probes.ROWS:
        stock = text(table, version, "ready", "stock", row)
        patched = text(table, version, "ready", "pep522", row)
        if row == "wait_for_system_rng":
            assert (stock, patched) == ("absent", "ok")
        else:
            assert stock == patched, row
    assert text(table, version, "ready", "pep522", "start-up warning") == "silent"


@pytest.mark.parametrize("version", SUPPORTED)
def test_never_ready_urandom_raises_instead_of_blocking(table, version):
    for row in ("os.urandom", "SystemRandom"):
        assert text(table, version, "never-ready", "stock", row) == "blocks"
        assert text(table, version, "never-ready", "pep522", row) == "raises EAGAIN"


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("mode", ["never-ready", "ready-on-wait"])
def test_secrets_never_raises(table, version, mode):
    # It waits: until the RNG is ready, or for ever (never-ready).
    want = "blocks" if mode == "never-ready" else "ok"
    for variant in versions.VARIANTS:
        assert text(table, version, mode, variant, "secrets").startswith(want)
    assert text(table, version, mode, "pep522", "wait_for_system_rng").startswith(want)


@pytest.mark.parametrize("version", SUPPORTED)
def test_start_up_warns_and_never_reads_dev_urandom(table, version):
    assert text(table, version, "never-ready", "stock", "start-up warning") == "silent"
    patched = behaviour.cell(table, version, "never-ready", "pep522", "start-up warning")
    assert patched["text"] == "warns" and patched["extra"]["lines"] == 1
    stock_opens = behaviour.cell(table, version, "never-ready", "stock", "/dev/urandom opens")
    patched_opens = behaviour.cell(table, version, "never-ready", "pep522", "/dev/urandom opens")
    assert stock_opens["extra"]["count"] >= 1
    assert patched_opens["extra"]["count"] == 0


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("mode", ["never-ready", "ready-on-wait", "enosys", "eperm"])
def test_random_seeds_silently(table, version, mode):
    for variant in versions.VARIANTS:
        assert text(table, version, mode, variant, "random seeding") == "ok"


@pytest.mark.parametrize("version", SUPPORTED)
def test_ready_on_wait_stock_blocks_patched_raises_then_waits(table, version):
    stock = behaviour.cell(table, version, "ready-on-wait", "stock", "os.urandom")
    assert stock["kind"] == "ok" and stock["waited"] >= 0.05      # held until ready
    patched = behaviour.cell(table, version, "ready-on-wait", "pep522", "os.urandom")
    assert patched["text"] == "raises EAGAIN" and patched["waited"] < 0.05
    waited = behaviour.cell(table, version, "ready-on-wait", "pep522", "wait_for_system_rng")
    assert waited["kind"] == "ok" and waited["waited"] >= 0.05


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("mode", ["enosys", "eperm"])
def test_without_getrandom_both_fall_back_to_dev_urandom(table, version, mode):
    for row in ("os.urandom", "SystemRandom", "secrets", "start-up warning"):
        assert text(table, version, mode, "stock", row) == \
            text(table, version, mode, "pep522", row), row
    assert text(table, version, mode, "pep522", "os.urandom") == "ok"
    assert text(table, version, mode, "pep522", "start-up warning") == "silent"
    for variant in versions.VARIANTS:
        assert behaviour.cell(table, version, mode, variant, "/dev/urandom opens")["extra"]["count"] >= 1


def test_a_build_without_getrandom_behaves_as_stock(table):
    # The path of every system without getrandom(): configured so, the
    # patched interpreter does what stock does where getrandom() fails with
    # ENOSYS, whatever the fake kernel says (it never asks it).
    version = versions.DEFAULT_VERSION
    python = build.build(version, "pep522", sanitizer=build.NO_GETRANDOM, quiet=True)
    for mode in ("never-ready", "ready"):
        cells = probes.probe(python, mode)
        for row in probes.ROWS:
            want = text(table, version, "enosys", "stock", row)
            got = cells[row].text
            if row == "wait_for_system_rng":
                assert got == "ok", (mode, got)
            elif row.endswith("opens"):
                assert int(got) >= 1, (mode, got)
            else:
                assert got == want, (mode, row)


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("mode", REGRTEST_MODES)
def test_no_new_regrtest_failures(table, version, mode):
    stock = set(behaviour.cell(table, version, mode, "stock", "regrtest failures")["extra"]["failed"])
    patched = set(behaviour.cell(table, version, mode, "pep522", "regrtest failures")["extra"]["failed"])
    assert patched <= stock, f"new failures with the patch set: {sorted(patched - stock)}"
    ours = set(regrtest.added_test_modules())
    assert ours and not ours & patched, f"our own tests fail under {mode}"
    assert ours <= stock, "our tests pass on stock: they would not prove the change"


# A thread ticks every millisecond while the main thread waits in a blocking
# os.getrandom(16) for the faked RNG (secrets.wait_for_system_rng() waits in
# that call); prints the ticks seen during the wait and the wait's length.
TICKS = """\
import os, threading, time
ticks, stop = [], threading.Event()
def tick():
    while not stop.is_set():
        ticks.append(time.monotonic())
        time.sleep(0.001)
thread = threading.Thread(target=tick)
thread.start()
while not ticks:
    time.sleep(0.001)
start = time.monotonic()
os.getrandom(16)
end = time.monotonic()
stop.set()
thread.join()
print(sum(start < t < end for t in ticks), end - start)
"""


@pytest.mark.parametrize("version", SUPPORTED)
def test_waiting_for_the_rng_lets_other_threads_run(version):
    ticks = {}
    for variant in versions.VARIANTS:
        proc = modes.run("ready-on-wait=0.3",
                         [str(build.build(version, variant, quiet=True)), "-I", "-c", TICKS],
                         timeout=120)
        assert proc.returncode == 0, proc.stderr
        count, waited = proc.stdout.split()
        assert float(waited) >= 0.25, (variant, waited)
        ticks[variant] = int(count)
    # Stock holds the GIL in the system call: the ticker stops for 0.3 s.
    assert ticks["stock"] <= 2, ticks
    assert ticks["pep522"] >= 50, ticks
