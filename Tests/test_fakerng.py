"""fakerng: the fake not-ready kernel RNG, checked from outside.

Every test runs the launcher as a command (``modes.launcher()``: what
``python -m pep522_harness fakerng`` runs, from any folder) around small probe
programs that call the C library's getrandom() through ctypes and print what
it answered, with CLOCK_MONOTONIC timestamps (system-wide, so they compare
across processes).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pep522_harness.core import paths
from pep522_harness.fake import launcher, modes, supervisor

REPO = paths.REPO
PY = sys.executable

PROBE = r'''
import ctypes, errno, json, os, signal, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
FLAGS = {"nonblock": 1, "block": 0, "insecure": 4, "nonblock-insecure": 5,
         "random-nonblock": 3}

def emit(record):
    record.update(pid=os.getpid(), tid=threading.get_native_id())
    os.write(1, (json.dumps(record) + "\n").encode())   # one write: threads interleave

def getrandom(op):
    buf = ctypes.create_string_buffer(8)
    t0 = time.monotonic()
    result = libc.getrandom(buf, 8, FLAGS[op])
    err = ctypes.get_errno() if result < 0 else 0
    t1 = time.monotonic()
    emit({"op": op, "answer": "ok" if result == 8 else errno.errorcode[err],
          "t0": t0, "t1": t1})

def run(ops):
    for index, op in enumerate(ops):
        name, _, arg = op.partition("=")
        if name in FLAGS:
            getrandom(name)
        elif name == "sleep":
            time.sleep(float(arg))
        elif name == "fork":                  # fork=op/op: in a child, waited for
            pid = os.fork()
            if pid == 0:
                try:
                    run(arg.split("/"))
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
        elif name == "threads":               # threads=N:op, joined
            count, _, sub = arg.partition(":")
            threads = [threading.Thread(target=run, args=([sub],))
                       for _ in range(int(count))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elif name == "exec":                  # exec: the rest in a new program
            os.execv(sys.executable, [sys.executable, __file__, *ops[index + 1:]])
        elif name == "exit":
            sys.exit(int(arg))
        elif name == "term-handler":          # exit 3 on SIGTERM or SIGHUP
            def bye(signo, frame):
                emit({"op": "signal", "signo": signo})
                os._exit(3)
            signal.signal(signal.SIGTERM, bye)
            signal.signal(signal.SIGHUP, bye)
        elif name == "ready":
            emit({"op": "ready"})
        elif name == "pause":
            time.sleep(60)
        else:
            raise SystemExit("probe: unknown op " + op)

run(sys.argv[1:])
'''


@pytest.fixture(scope="module")
def probe_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "probe.py"
    path.write_text(PROBE)
    return path


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(launcher.SIMULATE_VDSO_ENV, None)
    env.update(extra or {})
    return env


def command(*args: str) -> list[str]:
    return [*modes.launcher(), *args]


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), cwd=REPO, env=_env(env),
                          capture_output=True, text=True, timeout=timeout)


def records(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def probe(probe_file: Path, mode: str, *ops: str, options: tuple[str, ...] = (),
          **kw) -> list[dict]:
    return records(run(*options, mode, "--", PY, str(probe_file), *ops, **kw))


def answers(recs: list[dict]) -> list[str]:
    return [r["answer"] for r in recs if "answer" in r]


# -- what each mode answers ----------------------------------------------------

ALL_OPS = ("nonblock", "block", "insecure", "nonblock-insecure", "random-nonblock")


@pytest.mark.parametrize("mode, ops, expected", [
    ("ready", ALL_OPS, ["ok"] * 5),
    # A blocking call would be held for ever: see test_never_ready_holds_for_ever.
    ("never-ready", ("nonblock", "insecure", "nonblock-insecure", "random-nonblock"),
     ["EAGAIN", "ok", "ok", "EAGAIN"]),
    ("enosys", ALL_OPS, ["ENOSYS"] * 5),
    ("eperm", ALL_OPS, ["EPERM"] * 5),
    # Not ready for an hour: a blocking call would be held, so none is made.
    ("ready-after=3600", ("nonblock", "insecure", "nonblock-insecure", "random-nonblock",
                          "sleep=0.3", "nonblock"),
     ["EAGAIN", "ok", "ok", "EAGAIN", "EAGAIN"]),
    ("ready-after=0", ALL_OPS, ["ok"] * 5),
    # Nobody waits: it never gets ready, however long it runs.
    ("ready-on-wait=0", ("nonblock", "insecure", "sleep=0.3", "nonblock", "block", "nonblock"),
     ["EAGAIN", "ok", "EAGAIN", "ok", "ok"]),
    ("ready-on-wait", ("nonblock", "block", "nonblock", "random-nonblock"),
     ["EAGAIN", "ok", "ok", "ok"]),
])
def test_answers(probe_file, mode, ops, expected):
    assert answers(probe(probe_file, mode, *ops)) == expected


def test_never_ready_holds_for_ever(probe_file, tmp_path):
    # As a kernel whose RNG never gets ready: the blocking call is held until
    # the hold limit stops the program (SIGABRT), and the log says so.
    log = tmp_path / "log"
    start = time.monotonic()
    proc = run("--log", str(log), "--hold-limit", "0.5", "never-ready", "--",
               PY, str(probe_file), "nonblock", "block", "nonblock")
    elapsed = time.monotonic() - start
    assert proc.returncode == -signal.SIGABRT, proc.stderr
    assert answers([json.loads(line) for line in proc.stdout.splitlines()]) == ["EAGAIN"]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in events] == ["hold", "blocked"]
    assert events[1]["held"] >= 0.5 and 0.5 <= elapsed < 30


def test_a_stop_that_is_ignored_ends_in_a_kill(tmp_path):
    # SIGABRT ignored: killed STOP_GRACE seconds later.
    log = tmp_path / "log"
    code = ("import os, signal; signal.signal(signal.SIGABRT, signal.SIG_IGN); "
            "os.getrandom(1)")
    proc = run("--log", str(log), "--hold-limit", "0.2", "never-ready", "--",
               PY, "-c", code)
    assert proc.returncode == -signal.SIGKILL
    assert [json.loads(line)["event"] for line in log.read_text().splitlines()] == [
        "hold", "blocked", "killed"]


def test_default_wait_delay_is_a_tenth_of_a_second(probe_file):
    recs = probe(probe_file, "ready-on-wait", "block")
    assert 0.1 <= recs[0]["t1"] - recs[0]["t0"] < 1.5


# -- timing of the stateful modes -------------------------------------------------

def test_ready_on_wait_releases_the_waiter_after_the_delay(probe_file):
    recs = probe(probe_file, "ready-on-wait=0.3", "nonblock", "block", "nonblock")
    assert answers(recs) == ["EAGAIN", "ok", "ok"]
    held = recs[1]["t1"] - recs[1]["t0"]
    assert 0.3 <= held < 1.5


def test_ready_on_wait_log_shows_hold_then_release(probe_file, tmp_path):
    log = tmp_path / "log.jsonl"
    probe(probe_file, "ready-on-wait=0.3", "nonblock", "block", options=("--log", str(log)))
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    hold, ready = kinds.index("hold"), kinds.index("ready")
    assert hold < ready < kinds.index("release")
    assert 0.3 <= events[ready]["t"] - events[hold]["t"] < 1.5


def test_ready_after_counts_from_launch(probe_file):
    launched = time.monotonic()
    recs = probe(probe_file, "ready-after=2", "nonblock", "block", "nonblock")
    assert answers(recs) == ["EAGAIN", "ok", "ok"]
    # Held (the program starts well within 2 s) until the deadline, not longer.
    assert recs[1]["t1"] - recs[1]["t0"] > 0.5
    assert launched + 2 <= recs[1]["t1"] < launched + 5


def test_ready_after_needs_no_waiter(probe_file):
    recs = probe(probe_file, "ready-after=0.5", "nonblock", "sleep=0.8", "nonblock")
    assert answers(recs) == ["EAGAIN", "ok"]


# -- readiness is global to the process tree -----------------------------------------

def test_readiness_shared_with_forked_child(probe_file):
    # The child waits; the parent, which never waited, sees the RNG ready.
    recs = probe(probe_file, "ready-on-wait=0.3", "nonblock", "fork=nonblock/block",
                 "nonblock")
    parent, child = recs[0]["pid"], recs[1]["pid"]
    assert parent != child
    assert [(r["pid"], r["answer"]) for r in recs] == [
        (parent, "EAGAIN"), (child, "EAGAIN"), (child, "ok"), (parent, "ok")]
    assert recs[2]["t1"] - recs[2]["t0"] >= 0.3


def test_readiness_shared_with_threads(probe_file):
    recs = probe(probe_file, "ready-on-wait=0.3", "threads=32:block", "nonblock")
    waits = [r for r in recs if r["op"] == "block"]
    assert len(waits) == 32 and len({r["tid"] for r in waits}) == 32
    assert all(r["answer"] == "ok" for r in recs)
    first_wait = min(r["t0"] for r in waits)
    releases = [r["t1"] for r in waits]
    # All held until ~0.3 s after the first blocking call, then all released.
    assert min(releases) >= first_wait + 0.3
    assert max(releases) < first_wait + 1.5


def test_readiness_survives_exec(probe_file):
    recs = probe(probe_file, "ready-on-wait=0.2", "nonblock", "exec", "nonblock", "block",
                 "exec", "nonblock")
    assert len({r["pid"] for r in recs}) == 1           # exec keeps the pid
    assert answers(recs) == ["EAGAIN", "EAGAIN", "ok", "ok"]


def test_static_filter_inherited_by_fork_threads_exec(probe_file):
    recs = probe(probe_file, "never-ready", "fork=nonblock", "threads=4:nonblock",
                 "exec", "nonblock", "insecure")
    assert answers(recs) == ["EAGAIN"] * 6 + ["ok"]


# -- exit status and signals ---------------------------------------------------------

MODES = ("ready", "never-ready", "enosys", "ready-after=3600", "ready-on-wait")


@pytest.mark.parametrize("mode", MODES)
def test_exit_status_passes_through(mode):
    assert run(mode, "--", "sh", "-c", "exit 7").returncode == 7


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGSEGV])
def test_fatal_signal_passes_through(mode, signo, tmp_path):
    proc = subprocess.run(command(mode, "--", "sh", "-c", f"kill -{int(signo)} $$"),
                          cwd=tmp_path, env=_env(), capture_output=True, timeout=60)
    assert proc.returncode == -signo
    assert not list(tmp_path.glob("core*"))


def _start(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(command(*args), cwd=REPO, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()        # the command is up
    assert line, proc.communicate()[1]
    return proc


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGHUP])
def test_signals_are_forwarded(probe_file, mode, signo, tmp_path):
    log = tmp_path / "log"
    proc = _start("--log", str(log), mode, "--", PY, str(probe_file), "term-handler",
                  "ready", "pause")
    proc.send_signal(signo)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 3, err
    assert json.loads(out)["signo"] == signo
    # Exactly once: the supervisor says so in its log.
    if modes.parse_mode(mode).stateful:
        events = [json.loads(line) for line in log.read_text().splitlines()]
        assert [(e["signo"], e["forwarded"]) for e in events
                if e["event"] == "signal"] == [(signo, True)]


def test_signals_are_forwarded_through_strace(probe_file, tmp_path):
    proc = _start("--count-urandom", str(tmp_path / "n"), "ready-on-wait", "--",
                  PY, str(probe_file), "term-handler", "ready", "pause")
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 3, err
    # The host interpreter's hash secret: getrandom() EAGAIN, then /dev/urandom.
    assert (tmp_path / "n").read_text() == "1\n"


def _held(log: Path, seconds: float = 10) -> bool:
    """Whether the supervisor holds a blocking call (its log says so) in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and '"event": "hold"' in log.read_text():
            return True
        time.sleep(0.01)
    return False


def test_sigint_interrupts_a_held_wait(tmp_path):
    # The command installs Python's SIGINT handler itself: run as a background
    # job of a non-interactive shell (as CI may be), the test inherits SIGINT
    # ignored, and the supervisor keeps a command's inherited dispositions.
    code = ("import os, signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "print('waiting', flush=True)\n"
            "try:\n    os.getrandom(1)\n"
            "except KeyboardInterrupt:\n    print('interrupted', flush=True); raise\n")
    log = tmp_path / "log"
    proc = _start("--log", str(log), "ready-on-wait=600", "--", PY, "-c", code)
    # Signal only once the call is held in the kernel: a SIGINT that came
    # between print() and the system call would be handled before the call
    # starts, and the call would then wait the whole 600 s.
    assert _held(log), log.read_text() if log.exists() else "no log"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert out == "interrupted\n"
    assert "KeyboardInterrupt" in err
    assert proc.returncode == -signal.SIGINT


# -- the supervisor never outlives the command, nor the command the supervisor -------

def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_supervisor_exits_with_the_command_despite_background_children():
    started = time.monotonic()
    proc = run("ready-on-wait", "--", "sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!",
               timeout=20)
    sleeper = int(proc.stdout)
    try:
        assert proc.returncode == 0
        assert time.monotonic() - started < 10
        assert _alive(sleeper)
    finally:
        os.kill(sleeper, signal.SIGKILL)


def test_supervisor_exits_when_the_command_is_killed():
    proc = _start("ready-on-wait", "--", "sh", "-c", "echo $$; exec sleep 60")
    child = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    os.kill(child, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_command_dies_with_a_killed_supervisor():
    proc = _start("ready-on-wait", "--", "sh", "-c", "echo $$; exec sleep 60")
    child = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    assert _alive(child)
    proc.kill()
    proc.communicate(timeout=10)
    assert _gone_within(child, 5)


# -- the vDSO trap --------------------------------------------------------------

def test_probe_sees_the_filter_on_this_machine():
    for text, err in (("never-ready", errno.EAGAIN), ("enosys", errno.ENOSYS),
                      ("eperm", errno.EPERM), ("ready-on-wait", errno.EAGAIN)):
        probe = launcher.check_vdso(modes.parse_mode(text), simulate_vdso=False)
        assert probe == launcher.ProbeResult(-1, err)
    assert launcher.check_vdso(modes.parse_mode("ready")) is None


@pytest.mark.parametrize("mode", ["never-ready", "enosys", "eperm", "ready-after=1",
                                  "ready-on-wait"])
def test_vdso_answer_is_refused(mode, tmp_path):
    marker = tmp_path / "ran"
    proc = run(mode, "--", "touch", str(marker), env={launcher.SIMULATE_VDSO_ENV: "1"})
    assert proc.returncode == 2
    assert "vDSO" in proc.stderr and "Refusing" in proc.stderr
    assert not marker.exists()


def test_vdso_simulation_does_not_touch_ready_mode(tmp_path):
    marker = tmp_path / "ran"
    proc = run("ready", "--", "touch", str(marker), env={launcher.SIMULATE_VDSO_ENV: "1"})
    assert proc.returncode == 0 and marker.exists()


def test_vdso_refusal_in_process():
    with pytest.raises(modes.Refusal, match="vDSO answered - simulated"):
        launcher.check_vdso(modes.parse_mode("never-ready"), simulate_vdso=True)


MMAP_PROBE = r'''
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
out = {}
for name, flags in (("droppable", 0x08 | 0x20), ("private", 0x02 | 0x20)):
    addr = libc.mmap(None, 4096, 3, flags, -1, 0)
    failed = addr is None or addr == ctypes.c_void_p(-1).value
    out[name] = errno.errorcode[ctypes.get_errno()] if failed else "ok"
print(json.dumps(out))
'''


@pytest.mark.parametrize("mode", ["never-ready", "ready-on-wait"])
def test_map_droppable_denied_so_glibc_cannot_use_vdso_getrandom(mode):
    proc = run(mode, "--", PY, "-c", MMAP_PROBE)
    assert json.loads(proc.stdout) == {"droppable": "EINVAL", "private": "ok"}
    if tuple(int(x) for x in os.uname().release.split(".")[:2]) >= (6, 11):
        proc = run("ready", "--", PY, "-c", MMAP_PROBE)
        assert json.loads(proc.stdout) == {"droppable": "ok", "private": "ok"}


# -- counting /dev/urandom opens ----------------------------------------------------

OPEN_URANDOM = "open('/dev/urandom', 'rb').close()"


# What the host interpreter (stock CPython) does: its hash secret falls back to
# /dev/urandom when getrandom() fails; os.urandom() does when it fails with ENOSYS.
@pytest.mark.parametrize("mode, code, expected", [
    ("ready", "import os; os.urandom(8)", 0),
    ("never-ready", "pass", 1),
    # os.urandom() waits for ever (stock) under never-ready: see below.
    ("ready-on-wait", "import os; os.urandom(8)", 1),
    ("enosys", "pass", 1),
    ("enosys", "import os; os.urandom(8)", 2),
    ("ready", f"import os\n{OPEN_URANDOM}\nif os.fork() == 0:\n    {OPEN_URANDOM}\n"
              "    os.execv('/bin/sh', ['sh', '-c', 'head -c1 /dev/urandom >/dev/null'])\n"
              "os.wait()", 3),
])
def test_count_urandom(tmp_path, mode, code, expected):
    count = tmp_path / "count"
    proc = run("--count-urandom", str(count), mode, "--", PY, "-I", "-S", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert count.read_text() == f"{expected}\n"


def test_count_urandom_of_a_stopped_command(tmp_path):
    # Stock's os.urandom() blocks for ever under never-ready; stopped at the
    # hold limit, the command's opens are counted all the same.
    count = tmp_path / "count"
    proc = run("--count-urandom", str(count), "--hold-limit", "0.3", "never-ready", "--",
               PY, "-I", "-S", "-c", "import os; os.urandom(8)")
    assert proc.returncode == -signal.SIGABRT
    assert count.read_text() == "1\n"


def test_count_urandom_keeps_exit_status(tmp_path):
    count = tmp_path / "count"
    assert run("--count-urandom", str(count), "never-ready", "--", "sh", "-c",
               "exit 5").returncode == 5
    assert count.read_text() == "0\n"


def test_count_urandom_without_strace(tmp_path):
    proc = run("--count-urandom", str(tmp_path / "n"), "never-ready", "--", PY, "-c", "pass",
               env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert "apt-get install strace" in proc.stderr


def test_count_parser():
    trace = "\n".join([
        '101 openat(AT_FDCWD, "/dev/urandom", O_RDONLY|O_CLOEXEC) = 3',
        '102 open("/dev/urandom", O_RDONLY) = -1 ENOENT (No such file or directory)',
        '103 openat(AT_FDCWD, "/dev/urandom", O_RDONLY <unfinished ...>',
        '103 <... openat resumed>) = 4',
        '104 openat2(AT_FDCWD, "/dev/urandom", {flags=O_RDONLY}, 24) = 5',
        '105 openat(AT_FDCWD, "/dev/random", O_RDONLY) = 6',
        '106 openat(AT_FDCWD, "/tmp/dev/urandom", O_RDONLY) = 7',
    ])
    assert launcher.count_urandom_opens(trace) == 4


# -- a kernel without seccomp filters or user notification ---------------------------

def _deny_seccomp_ops(helper, ops: dict[int, int]) -> bytes:
    """A filter failing seccomp(op, ...) with the given errnos, allowing the rest."""
    arch = helper._native_arch()
    ld, jeq, ret = 0x20, 0x15, 0x06
    end = 5 + 2 * len(ops)                  # index of the final "ret ALLOW"
    prog = [(ld, 0, 0, 4), (jeq, 0, end - 2, arch.audit_arch),
            (ld, 0, 0, 0), (jeq, 0, end - 4, arch.seccomp),
            (ld, 0, 0, helper._arg_low_offset(0))]
    for op, err in ops.items():
        prog += [(jeq, 0, 1, op), (ret, 0, 0, helper.SECCOMP_RET_ERRNO | err)]
    prog.append((ret, 0, 0, helper.SECCOMP_RET_ALLOW))
    return b"".join(struct.pack("=HBBI", *insn) for insn in prog)


def run_without(ops: dict[int, int], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the launcher where seccomp(op) fails as on an older kernel."""
    helper = launcher.load_helper()
    prog = _deny_seccomp_ops(helper, ops)
    wrapper = ("import importlib.util, os, sys\n"
               f"spec = importlib.util.spec_from_file_location('h', {str(launcher.HELPER_PATH)!r})\n"
               "h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)\n"
               f"h.install_filter({prog!r})\n"
               "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")
    return subprocess.run([PY, "-c", wrapper, *command(*args)[1:]], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=60)


def test_deny_filter_itself_works():
    proc = run_without({3: errno.EINVAL}, "--check")
    assert "user notification: no" in proc.stdout
    assert "seccomp filters: yes" in proc.stdout


def test_refuses_without_user_notification(probe_file):
    proc = run_without({3: errno.EINVAL}, "ready-on-wait", "--", "true")
    assert proc.returncode == 2
    assert "user notification" in proc.stderr and "SECCOMP_GET_NOTIF_SIZES" in proc.stderr
    # never-ready holds blocking calls: it needs it too.
    assert run_without({3: errno.EINVAL}, "never-ready", "--", "true").returncode == 2
    # The modes a filter answers alone do not.
    proc = run_without({3: errno.EINVAL}, "eperm", "--", PY, str(probe_file), "nonblock")
    assert answers(records(proc)) == ["EPERM"]


@pytest.mark.parametrize("mode", ["never-ready", "eperm", "ready-after=1"])
def test_refuses_without_seccomp_filters(mode):
    proc = run_without({1: errno.EINVAL, 3: errno.EINVAL}, mode, "--", "true")
    assert proc.returncode == 2
    assert "seccomp filter mode" in proc.stderr
    # 'ready' needs nothing.
    assert run_without({1: errno.EINVAL}, "ready", "--", "true").returncode == 0


# -- usage -------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    ([], "no MODE"),
    (["sometimes"], "unknown mode"),
    (["ready-after", "--", "true"], "unknown mode"),
    (["ready-after=soon", "--", "true"], "number of seconds"),
    (["ready-on-wait=-1", "--", "true"], "number of seconds"),
    (["never-ready", "--"], "no COMMAND"),
    (["--frobnicate", "ready", "--", "true"], "unknown option"),
])
def test_usage_errors(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and "usage:" in proc.stderr


def test_missing_command_exits_127():
    proc = run("ready-on-wait", "--", "no-such-command-fakerng")
    assert proc.returncode == 127
    assert "cannot run no-such-command-fakerng" in proc.stderr


def test_the_documented_command_line(probe_file):
    """``python -m pep522_harness fakerng MODE -- COMMAND``, from the checkout."""
    proc = subprocess.run([PY, "-m", "pep522_harness", "fakerng", "never-ready", "--",
                           PY, str(probe_file), "nonblock"], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert answers(records(proc)) == ["EAGAIN"]
    usage = subprocess.run([PY, "-m", "pep522_harness"], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
    assert usage.returncode == 2 and "  fakerng  " in usage.stderr


# -- pure parts ------------------------------------------------------------------

def test_decide():
    h = launcher.load_helper()
    d = h.decide
    assert d(0, ready=False) == h.HOLD
    assert d(1, ready=False) == h.EAGAIN
    assert d(4, ready=False) == h.CONTINUE and d(5, ready=False) == h.CONTINUE
    assert d(0, ready=True) == d(1, ready=True) == h.CONTINUE


def test_readiness_clock():
    Readiness = launcher.load_helper().Readiness
    r = Readiness(on_wait=0.5, start=100.0)
    assert r.timeout(100.0) is None and not r.update(1000.0)
    r.blocking_call(200.0)
    r.blocking_call(200.4)                  # only the first call starts the clock
    assert r.timeout(200.1) == pytest.approx(0.4)
    assert not r.update(200.49) and r.update(200.5) and r.ready
    assert not r.update(201.0) and r.timeout(201.0) is None
    r = Readiness(after=2.0, start=10.0)
    assert not r.update(11.9) and r.update(12.0)


# -- the shared filter, run through a BPF interpreter for every architecture -----------

def _run_bpf(prog: bytes, nr: int, arch: int, args: tuple[int, ...]) -> int:
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args, *[0] * (6 - len(args)))
    insns = [struct.unpack_from("=HBBI", prog, i) for i in range(0, len(prog), 8)]
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:                                        # ld [k]
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x54:                                      # and #k
            acc &= k
        elif code in (0x15, 0x45):                              # jeq / jset #k
            hit = acc == k if code == 0x15 else bool(acc & k)
            pc += jt if hit else jf
        elif code == 0x06:                                      # ret #k
            return k
        else:
            raise AssertionError(f"unexpected BPF opcode {code:#x}")
        pc += 1


ARCHES = {  # audit arch: (getrandom, mmap)
    "x86_64": (0xC000003E, 318, 9),
    "x32": (0xC000003E, 0x40000000 | 318, 0x40000000 | 9),
    "i386": (0x40000003, 355, 192),
    "aarch64": (0xC00000B7, 278, 222),
    "arm": (0x40000028, 384, 192),
}


@pytest.mark.parametrize("arch", ARCHES)
def test_filter_program_per_architecture(arch):
    h = launcher.load_helper()
    audit, getrandom, mmap = ARCHES[arch]
    allow, notify = h.SECCOMP_RET_ALLOW, h.SECCOMP_RET_USER_NOTIF
    eagain = h.SECCOMP_RET_ERRNO | errno.EAGAIN
    einval = h.SECCOMP_RET_ERRNO | errno.EINVAL

    def answer(mode, nr, args, audit=audit):
        return _run_bpf(h.build_filter(mode), nr, audit, args)

    buf = 0x7FFF_0000_1000
    expected = {0: notify, 1: eagain, 4: allow, 5: allow, 3: eagain, 0x1_0000_0001: eagain}
    for flags, want in expected.items():
        assert answer("never-ready", getrandom, (buf, 16, flags)) == want, hex(flags)
        assert answer("notify", getrandom, (buf, 16, flags)) == notify
    for mode, err in (("enosys", errno.ENOSYS), ("eperm", errno.EPERM)):
        assert answer(mode, getrandom, (buf, 16, 0)) == h.SECCOMP_RET_ERRNO | err
    # The flags are the third argument, not the length.
    assert answer("never-ready", getrandom, (buf, 1, 0)) == notify
    assert answer("never-ready", mmap, (0, 4096, 3, 0x08 | 0x20, -1 & 0xFFFFFFFF, 0)) == einval
    assert answer("never-ready", mmap, (0, 4096, 3, 0x02 | 0x20, 0, 0)) == allow
    # Other system calls, and getrandom's number on another architecture, pass.
    assert answer("never-ready", 39, (0, 0, 1)) == allow
    assert answer("never-ready", getrandom, (buf, 16, 1), audit=0x12345678) == allow


def test_unknown_mode_has_no_filter():
    h = launcher.load_helper()
    for mode in ("ready", "ready-on-wait", "sometimes"):
        with pytest.raises(ValueError):
            h.build_filter(mode)


# -- the measurement helper -----------------------------------------------------

def test_measure_counts_calls_and_answers():
    none = launcher.measure(None, supervisor.GRND_NONBLOCK, 0.2)
    faked = launcher.measure("never-ready", supervisor.GRND_NONBLOCK, 0.2)
    supervised = launcher.measure("ready-after=0", supervisor.GRND_NONBLOCK, 0.2)
    assert (none.answer, faked.answer, supervised.answer) == ("ok", "EAGAIN", "ok")
    assert min(none.calls, faked.calls, supervised.calls) > 0
    # A round trip through the supervisor costs far more than a system call.
    assert supervised.per_second < none.per_second / 5
    table = launcher.format_rates([none, faked, supervised])
    assert "| never-ready | GRND_NONBLOCK | EAGAIN |" in table


# -- a terminal's ^C -----------------------------------------------------------------

TTY_PROBE = """\
import signal, time
hits = []
signal.signal(signal.SIGINT, lambda signo, frame: hits.append(signo))
print("ready", flush=True)
deadline = time.monotonic() + 10
while not hits and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.5)
print("hits", len(hits), flush=True)
"""


@pytest.mark.parametrize("count", [False, True])
def test_terminal_interrupt_reaches_the_command_once(count, tmp_path):
    # ^C on a terminal signals the whole foreground process group: the command
    # gets it from the terminal, and the supervisor must not send a second one.
    import pty
    import select
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.chdir(REPO)
            options = ("--count-urandom", os.devnull) if count else ()
            argv = command(*options, "--log", str(tmp_path / "log"), "ready-on-wait",
                            "--", PY, "-c", TTY_PROBE)
            os.execve(argv[0], argv, _env())
        finally:
            os._exit(127)
    output = b""
    deadline = time.monotonic() + 30
    sent = False
    try:
        while time.monotonic() < deadline:
            if not sent and b"ready" in output:
                os.write(master, b"\x03")
                sent = True
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:                 # EIO: the terminal is closed
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        os.close(master)
        _pid, status = os.waitpid(pid, 0)
    assert sent, output
    assert b"hits 1" in output, output
    assert os.waitstatus_to_exitcode(status) == 0
    events = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    assert {"signo": signal.SIGINT, "forwarded": False} in [
        {k: e[k] for k in ("signo", "forwarded")} for e in events if e["event"] == "signal"]
