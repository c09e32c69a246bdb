"""modes: the mode table, what each mode implies for a launch, and reading
what a launch saw (strace's getrandom() calls, the supervisor's log)."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import sys
from pathlib import Path

import pytest

from pep522_harness.fake import modes
from pep522_harness.fake.helper import helper


def test_parse_mode():
    m = modes.parse_mode
    assert m("ready").filter is None
    never = m("never-ready")
    assert never.filter == "never-ready" and never.supervised and never.holds_forever
    assert not never.stateful
    after = m("ready-after=2.5")
    assert after.ready_after == 2.5 and after.stateful and not after.holds_forever
    assert not m("enosys").supervised and not m("ready").supervised
    assert m("ready-on-wait").ready_on_wait == 0.1
    assert m("ready-on-wait=0.3").ready_on_wait == 0.3
    assert m("enosys").probe_errno == errno.ENOSYS
    assert m("ready-on-wait").probe_filter == "never-ready"


def test_unknown_modes_and_arguments_are_refused():
    for text in ("sometimes", "ready=1", "never-ready=2", "ready-after"):
        with pytest.raises(ValueError, match="unknown mode"):
            modes.parse_mode(text)
    with pytest.raises(ValueError, match="number of seconds"):
        modes.parse_mode("ready-after=soon")


def test_the_modes_are_those_of_the_in_tree_tests():
    # The harness's table describes the modes; what they do is the patch
    # set's own test support's.
    assert sorted(modes.MODES) == sorted(helper().MODES)
    for text in ("never-ready", "ready-on-wait=0.3", "ready-after=1", "eperm"):
        ours, theirs = modes.parse_mode(text), helper().parse_mode(text)
        assert (ours.filter, ours.ready_after, ours.ready_on_wait) == \
            (theirs.filter, theirs.ready_after, theirs.ready_on_wait)


def test_every_mode_of_the_table_parses():
    assert modes.EVERY == ("ready", "never-ready", "enosys", "eperm", "ready-on-wait")
    for name in modes.EVERY:
        assert modes.parse_mode(name).text == name
    assert set(modes.NOT_READY) <= set(modes.EVERY)
    assert modes.syntax().endswith("ready-after=SECONDS | ready-on-wait[=DELAY]")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_what_a_watched_launch_adds_under_each_mode():
    log, trace = Path("L"), Path("T")

    def args(mode: str, **kw) -> list[str]:
        return modes.arguments(modes.parse_mode(mode), ["prog"], log=log, trace=trace, **kw)

    assert args("never-ready") == ["--log", "L", "never-ready", "--", "prog"]
    assert args("never-ready", hold_limit=2.0) == [
        "--log", "L", "--hold-limit", "2", "never-ready", "--", "prog"]
    assert args("ready-on-wait") == ["--log", "L", "ready-on-wait", "--", "prog"]
    assert args("ready-on-wait", hold_limit=2.0) == args("ready-on-wait")
    for mode in ("ready", "enosys", "eperm"):
        assert args(mode) == [mode, "--", "prog"]
    held = args("ready-on-wait=0.3", calls=("write",), trace_held=True)
    assert held[:3] == ["--log", "L", "ready-on-wait=0.3"]
    assert "trace=getrandom,write" in held and "--seccomp-bpf" not in held
    counted = modes.arguments(modes.parse_mode("ready"), ["prog"], count_urandom=Path("C"))
    assert counted == ["--count-urandom", "C", "ready", "--", "prog"]


def test_the_launch_works_from_any_folder(tmp_path):
    run = modes.run("ready", ["true"], cwd=tmp_path, timeout=60)
    assert (run.returncode, run.timed_out, run.args) == (0, False, ["ready", "--", "true"])
    slow = modes.run("ready", ["sleep", "30"], cwd=tmp_path, timeout=0.5)
    assert slow.timed_out and slow.returncode < 0


FAULTHANDLER = """\
Python: warning: the system random number generator is not ready; ...
Fatal Python error: Aborted

Thread 0x00007f0000000001 (most recent call first):
  File "/x/threading.py", line 359 in wait
  File "/x/other.py", line 3 in run

Current thread 0x00007f5bbe7b5740 (most recent call first):
  File "/usr/lib/python3.13/secrets.py", line 53 in wait_for_system_rng
  File "/usr/lib/python3.13/secrets.py", line 118 in waiting
  File "<string>", line 5 in <module>

Extension modules: ...
"""


def test_where_a_held_program_was_stopped():
    assert modes.held_stack(FAULTHANDLER) == [
        ("/usr/lib/python3.13/secrets.py", 53, "wait_for_system_rng"),
        ("/usr/lib/python3.13/secrets.py", 118, "waiting"),
        ("<string>", 5, "<module>")]
    assert modes.blocked_frame(FAULTHANDLER) == \
        "/usr/lib/python3.13/secrets.py:53 (wait_for_system_rng)"
    assert modes.blocked_frame("Traceback (most recent call last):\n") is None


def test_a_call_held_for_ever_is_stopped_and_located(tmp_path):
    # A kernel that never gets ready holds a blocking call for ever; a run
    # bounds that and says where the program waited.
    code = "import os\ndef wait():\n    os.getrandom(1)\nwait()\n"
    run = modes.run("never-ready", [sys.executable, "-c", code], cwd=tmp_path,
                    timeout=60, hold_limit=0.5)
    assert run.blocked and run.held == 1 and not run.timed_out
    assert run.returncode == -signal.SIGABRT
    assert run.frame == "<string>:3 (wait)"
    assert 0.5 <= run.seconds < 30
    # Nothing is stopped where readiness is to come.
    run = modes.run("ready-on-wait=0.2", [sys.executable, "-c", code], cwd=tmp_path,
                    timeout=60, hold_limit=0.05, watch=True)
    assert (run.returncode, run.blocked, run.held) == (0, False, 1)


def test_blocking_getrandom_calls_from_strace():
    trace = "\n".join([
        '12 getrandom("\\x01"..., 32, 0) = 32',
        '12 getrandom(""..., 16, GRND_NONBLOCK) = -1 EAGAIN (Resource temporarily unavailable)',
        '12 getrandom(""..., 24, GRND_INSECURE) = 24',
        '13 getrandom(0x7ffd1234, 48, 0 <unfinished ...>',
        '13 <... getrandom resumed>) = 48',
        '14 getrandom("a, b", 8, GRND_RANDOM) = 8',
        '15 getrandom( <unfinished ...>',
        '15 <... getrandom resumed>""..., 1, 0) = 1',
    ])
    assert modes.blocking_getrandom_calls(trace) == 4


def test_held_seconds_from_the_launcher_log():
    log = "\n".join(json.dumps(e) for e in [
        {"t": 0.01, "event": "eagain", "pid": 1, "flags": 1},
        {"t": 0.02, "event": "hold", "pid": 1, "flags": 0},
        {"t": 0.03, "event": "hold", "pid": 2, "flags": 0},
        {"t": 0.12, "event": "ready", "held": 2}])
    assert modes.held_seconds(log) == (0.1, 2)
    assert modes.held_seconds("") == (0.0, 0)
