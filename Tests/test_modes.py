"""modes: the mode table, what each mode implies for a launch, and reading
what a launch saw (strace's getrandom() calls, the supervisor's log)."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from pep522_harness.fake import modes


def test_parse_mode():
    m = modes.parse_mode
    assert m("ready").filter is None
    assert m("never-ready").filter == "never-ready" and not m("never-ready").stateful
    assert m("ready-after=2.5").ready_after == 2.5 and m("ready-after=2.5").stateful
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

    never = args("never-ready")
    assert never[:2] == ["never-ready", "--"] and never[-1] == "prog"
    assert "--seccomp-bpf" in never and "trace=getrandom" in never and "-o" in never
    assert args("ready-on-wait") == ["--log", "L", "ready-on-wait", "--", "prog"]
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
