"""Run a command with the Linux kernel RNG faked as not ready (yet).

    python -m pep522_harness fakerng [--count-urandom FILE] [--log FILE] [--hold-limit S]
                                     MODE -- COMMAND [ARGS...]
    python -m pep522_harness fakerng --check [MODE]
    python -m pep522_harness fakerng --bench [--seconds S] [--json FILE]

MODE is one of the mode table's (``modes.py``; ``--help`` lists them).

The filters come from the patch set's own ``Lib/test/support/seccomp_helper.py``
(loaded by path, ``helper.py``), so CPython's in-tree tests and this launcher
fake the same kernel.  enosys and eperm install their filter and exec the
command.  The modes that depend on readiness need a supervisor
(``supervisor.py``): the command runs as its child under the ``never-ready`` or
``notify`` filter and readiness is global to the command's whole process tree,
as in the kernel.  Exit status and signals pass through.

Faithfulness guards:

* glibc 2.41 and newer on Linux 6.11 and newer answer getrandom() from the vDSO
  without a system call, which no filter sees.  The filters deny the
  MAP_DROPPABLE mapping glibc needs for that; in any case, before a not-ready
  mode runs, a probe under the same filter calls the C library's getrandom()
  with GRND_NONBLOCK and must get the mode's error.  If it gets random bytes the
  launcher refuses (exit 2) instead of faking a "ready" kernel.
  ``PEP522_FAKERNG_SIMULATE_VDSO=1`` makes the probe behave as a vDSO answer.
* ``--count-urandom FILE`` runs the command under ``strace -f`` and writes to
  FILE how many times its process tree opened /dev/urandom.
* ``--log FILE`` appends the supervisor's answers, readiness and signals as JSON
  lines (the supervised modes, and any mode with ``--count-urandom``: the
  static modes without it exec the command and leave no supervisor).
* ``--hold-limit S``: under never-ready a blocking call is held for ever; with
  this, a call held S seconds gets SIGABRT (a Python started with
  faulthandler prints its stack) and, 2 s later, SIGKILL; the log says
  "blocked".

Exit status: the command's, or 2 when the launcher refuses (usage, a kernel
without seccomp filters or user notification, the vDSO trap, no strace).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from pep522_harness.core import tables
from pep522_harness.core.errors import HarnessError

from . import modes
from .modes import Mode, Refusal, parse_mode
from .helper import HELPER_PATH, helper
from .supervisor import (FORWARDED_SIGNALS, GRND_INSECURE, GRND_NONBLOCK, SignalFd,
                         Supervisor, exit_like)

SIMULATE_VDSO_ENV = "PEP522_FAKERNG_SIMULATE_VDSO"

PR_SET_PDEATHSIG = 1

USAGE = ("usage: python -m pep522_harness fakerng [--count-urandom FILE] [--log FILE] "
         "[--hold-limit S] MODE -- COMMAND [ARGS...]\n"
         "       python -m pep522_harness fakerng --check [MODE]\n"
         "       python -m pep522_harness fakerng --bench [--seconds S] [--json FILE]\n"
         f"MODE: {modes.syntax()}")


def load_helper() -> ModuleType:
    """The in-tree ``seccomp_helper`` module (``helper.helper``)."""
    try:
        return helper()
    except HarnessError as exc:
        raise Refusal(str(exc)) from None


# -- the vDSO trap -----------------------------------------------------------

PROBE = r"""
import ctypes, json, sys
flags, how = int(sys.argv[1]), sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
if how == "simulate-vdso":
    result, err = 16, 0          # what a vDSO answer looks like: bytes, no syscall
elif not hasattr(libc, "getrandom"):
    result, err = None, 0        # no libc wrapper: callers use syscall()
else:
    buf = ctypes.create_string_buffer(16)
    result = libc.getrandom(buf, 16, flags)
    err = ctypes.get_errno() if result < 0 else 0
print(json.dumps({"result": result, "errno": err}))
"""


@dataclass(frozen=True)
class ProbeResult:
    result: int | None
    errno: int


def libc_version() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or "unknown libc"
    except (ValueError, OSError):
        return "unknown libc"


def vdso_has_getrandom() -> bool | None:
    """Whether this process's vDSO exports getrandom (None: cannot tell)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if line.rstrip().endswith("[vdso]"):
                    start, end = (int(x, 16) for x in line.split()[0].split("-"))
                    image = ctypes.string_at(start, end - start)
                    return (b"__vdso_getrandom\0" in image
                            or b"__kernel_getrandom\0" in image)
    except OSError:
        return None
    return False


def probe_getrandom(mode: Mode, *, simulate_vdso: bool = False) -> ProbeResult:
    """The C library's getrandom(GRND_NONBLOCK) under the mode's filter."""
    helper_filter = mode.probe_filter or "ready"
    cmd = [sys.executable, str(HELPER_PATH), helper_filter, "--",
           sys.executable, "-I", "-c", PROBE, str(GRND_NONBLOCK),
           "simulate-vdso" if simulate_vdso else "libc"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise Refusal("the getrandom() probe under the "
                      f"{helper_filter} filter failed (exit {proc.returncode}): "
                      f"{proc.stderr.strip()[-500:]}") from None
    return ProbeResult(data["result"], data["errno"])


def check_vdso(mode: Mode, *, simulate_vdso: bool | None = None) -> ProbeResult | None:
    """Refuse if getrandom() would bypass the mode's filter; None for 'ready'."""
    if mode.filter is None:
        return None
    if simulate_vdso is None:
        simulate_vdso = os.environ.get(SIMULATE_VDSO_ENV, "") not in ("", "0")
    probe = probe_getrandom(mode, simulate_vdso=simulate_vdso)
    if probe.result is None or (probe.result == -1 and probe.errno == mode.probe_errno):
        return probe
    vdso = {True: "exports getrandom", False: "has no getrandom",
            None: "could not be read"}[vdso_has_getrandom()]
    if probe.result is not None and probe.result > 0:
        what = (f"got {probe.result} random bytes without a system call "
                f"(the vDSO answered{' - simulated' if simulate_vdso else ''})")
    else:
        what = f"got result {probe.result}, errno {errno.errorcode.get(probe.errno, probe.errno)}"
    raise Refusal(
        f"mode {mode.text}: the C library's getrandom(GRND_NONBLOCK) under the "
        f"{mode.probe_filter} filter {what}, expected "
        f"{errno.errorcode[mode.probe_errno]}.\n"
        f"  {libc_version()}, Linux {os.uname().release}; the kernel's vDSO {vdso}.\n"
        "  glibc >= 2.41 on Linux >= 6.11 answers getrandom() from the vDSO, which "
        "no seccomp filter sees,\n  so the command would find a ready RNG.  Refusing "
        "rather than reporting a wrong 'ready':\n  run the command with a glibc "
        "older than 2.41 (e.g. a Debian 12 container) or on a kernel older than 6.11.")


# -- counting /dev/urandom opens ------------------------------------------------

_URANDOM_OPEN = re.compile(r'\bopen(?:at2?)?\((?:[^",]*,\s*)?"/dev/urandom"')


def strace_argv(trace: Path, command: list[str]) -> list[str]:
    strace = shutil.which("strace")
    if strace is None:
        raise Refusal("--count-urandom needs strace, which is not installed: "
                      "apt-get install strace")
    return [strace, "-f", "-qq", "-e", "trace=open,openat,openat2",
            "-e", "signal=none", "-o", str(trace), "--", *command]


def count_urandom_opens(trace_text: str) -> int:
    """open()/openat()/openat2() calls of /dev/urandom in strace -f output."""
    return sum(1 for line in trace_text.splitlines() if _URANDOM_OPEN.search(line))


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(x) for x in text.split()]
    except OSError:
        pass
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


# -- launching -----------------------------------------------------------------

def _prctl(option: int, arg: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _prepare_exec_signals() -> None:
    """Signal dispositions a command expects (what subprocess restores)."""
    for signo in FORWARDED_SIGNALS:
        if callable(signal.getsignal(signo)):
            signal.signal(signo, signal.SIG_DFL)
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def _exec(argv: list[str]) -> int:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"fakerng: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127 if exc.errno == errno.ENOENT else 126


def _child(mode: Mode, argv: list[str], sock: socket.socket,
           old_mask: set[int], parent: int) -> None:
    """After fork: install the filter, hand over its listener, exec."""
    code = 127
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        fds: list[int] = []
        if mode.filter is not None:
            helper = load_helper()
            flags = helper.SECCOMP_FILTER_FLAG_NEW_LISTENER if mode.supervised else 0
            try:
                fd = helper.install_filter(helper.build_filter(mode.filter), flags)
            except OSError as exc:
                sock.sendall(f"Ecannot install the {mode.filter} filter: {exc}".encode())
                os._exit(2)
            if mode.supervised:
                fds.append(fd)
        socket.send_fds(sock, [b"OK"], fds)
        for fd in fds:
            os.close(fd)
        sock.close()
        _prepare_exec_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        code = _exec(argv)
    finally:
        os._exit(code)


def launch(mode: Mode, command: list[str], *, count_file: Path | None = None,
           log_file: Path | None = None, hold_limit: float | None = None,
           simulate_vdso: bool | None = None) -> int:
    """Run command under mode; return the exit code to exit with.

    Static modes without counting exec the command in this process.  Raises
    Refusal when the mode cannot be faked faithfully here.
    """
    if mode.filter is not None:
        ok, reason = load_helper().seccomp_available(need_notify=mode.supervised)
        if not ok:
            needs = ("seccomp filters and user notification (Linux >= 5.5)"
                     if mode.supervised else "seccomp filters (Linux >= 3.17)")
            raise Refusal(f"mode {mode.text} needs {needs}: {reason}.\n"
                          "  Run it on a kernel with CONFIG_SECCOMP_FILTER, outside "
                          "a sandbox that forbids seccomp(2).")
        check_vdso(mode, simulate_vdso=simulate_vdso)
    trace = None
    argv = list(command)
    if count_file is not None:
        strace_argv(Path(os.devnull), argv)     # refuses early without strace
        fd, name = tempfile.mkstemp(prefix="fakerng-", suffix=".strace")
        os.close(fd)
        trace = Path(name)
        argv = strace_argv(trace, argv)
    if not mode.supervised and trace is None:
        if mode.filter is not None:
            helper = load_helper()
            try:
                helper.install_filter(helper.build_filter(mode.filter))
            except OSError as exc:
                raise Refusal(f"cannot install the {mode.filter} filter: {exc}") from None
        _prepare_exec_signals()
        return _exec(argv)
    try:
        status = _supervise(mode, argv, trace, log_file, hold_limit)
        if trace is not None and count_file is not None:
            count = count_urandom_opens(trace.read_text(errors="replace"))
            count_file.write_text(f"{count}\n")
    finally:
        if trace is not None:
            trace.unlink(missing_ok=True)
    return exit_like(status)


def _supervise(mode: Mode, argv: list[str], trace: Path | None,
               log_file: Path | None, hold_limit: float | None = None) -> int:
    """Fork the command and supervise it; return its wait status."""
    watched = [*FORWARDED_SIGNALS, signal.SIGCHLD]
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    signals = SignalFd(watched)
    readiness = (load_helper().Readiness(after=mode.ready_after, on_wait=mode.ready_on_wait)
                 if mode.supervised else None)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        ours.close()
        signals.close()
        _child(mode, argv, theirs, old_mask, parent)
    theirs.close()
    msg, fds, _flags, _addr = socket.recv_fds(ours, 4096, 1)
    ours.close()
    if msg != b"OK":
        _pid, status = os.waitpid(pid, 0)
        if msg.startswith(b"E"):
            raise Refusal(msg[1:].decode(errors="replace"))
        return status
    listener = load_helper().Listener(fds[0]) if fds else None
    log = open(log_file, "a") if log_file is not None else None
    forward_to = (lambda: _children(pid) or [pid]) if trace is not None else None
    supervisor = Supervisor(child=pid, signals=signals, listener=listener,
                            readiness=readiness, forward_to=forward_to, log=log,
                            hold_limit=hold_limit)
    try:
        status = supervisor.run()
    finally:
        if listener is not None:
            listener.close()
        if log is not None:
            log.close()
        signals.close()
    return status


# -- measuring the cost of a mode -------------------------------------------------

BENCH = r"""
import errno, json, os, sys, time
flags, seconds, warm = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "warm"
if warm:
    os.getrandom(1)              # the first blocking call: ready-on-wait gets ready
getrandom = os.getrandom
calls, answer = 0, None
start = time.perf_counter()
end = start + seconds
while True:
    for _ in range(64):
        try:
            getrandom(16, flags)
            answer = "ok"
        except OSError as exc:
            answer = errno.errorcode.get(exc.errno, str(exc.errno))
    calls += 64
    now = time.perf_counter()
    if now >= end:
        break
print(json.dumps({"calls": calls, "seconds": now - start, "answer": answer}))
"""

# (mode or None for no launcher at all, getrandom flags, first do a blocking call)
BENCH_CASES: tuple[tuple[str | None, int, bool], ...] = (
    (None, 0, False), (None, GRND_NONBLOCK, False),
    ("ready", 0, False), ("ready", GRND_NONBLOCK, False),
    ("never-ready", 0, False), ("never-ready", GRND_NONBLOCK, False),
    ("enosys", GRND_NONBLOCK, False), ("eperm", GRND_NONBLOCK, False),
    ("ready-after=3600", GRND_NONBLOCK, False),
    ("ready-after=3600", GRND_INSECURE, False),
    ("ready-after=0", 0, False), ("ready-after=0", GRND_NONBLOCK, False),
    ("ready-on-wait=0", 0, True),
)


@dataclass(frozen=True)
class Rate:
    mode: str
    flags: str
    answer: str
    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def _flag_names(flags: int) -> str:
    names = [n for v, n in ((GRND_NONBLOCK, "GRND_NONBLOCK"),
                            (GRND_INSECURE, "GRND_INSECURE")) if flags & v]
    return "|".join(names) or "0"


def measure(mode: str | None, flags: int, seconds: float = 1.0, warm: bool = False) -> Rate:
    """getrandom() calls per second of one process under mode (None: no launcher)."""
    python = [sys.executable, "-I", "-c", BENCH, str(flags), str(seconds),
              "warm" if warm else "cold"]
    cmd = python if mode is None else modes.command(parse_mode(mode), python)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])}...: exit {proc.returncode}: {proc.stderr}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return Rate(mode or "none", _flag_names(flags), data["answer"],
                data["calls"], data["seconds"])


def bench(seconds: float = 1.0) -> list[Rate]:
    return [measure(mode, flags, seconds, warm) for mode, flags, warm in BENCH_CASES]


def format_rates(rates: list[Rate]) -> str:
    base = {r.flags: r.per_second for r in rates if r.mode == "none"}
    rows = []
    for r in rates:
        ref = base.get(r.flags) or base.get("0") or 0.0
        rows.append([r.mode, r.flags, r.answer, f"{r.per_second:,.0f}",
                     f"{r.per_second / ref:.2f}x" if ref else "-"])
    return "\n".join(tables.markdown(["mode", "flags", "answer", "getrandom calls/s",
                                      "vs none"], rows, right=(3, 4)))


# -- command line ---------------------------------------------------------------

def _check(mode_text: str | None) -> int:
    helper = load_helper()
    for label, need in (("seccomp filters", False), ("user notification", True)):
        ok, reason = helper.seccomp_available(need_notify=need)
        print(f"{label}: {'yes' if ok else 'no: ' + reason}")
    print(f"C library: {libc_version()}; kernel: Linux {os.uname().release}")
    print(f"vDSO getrandom: {vdso_has_getrandom()}")
    print(f"strace: {shutil.which('strace') or 'missing (apt-get install strace)'}")
    modes = [mode_text] if mode_text else ["never-ready", "enosys", "eperm"]
    code = 0
    for text in modes:
        try:
            probe = check_vdso(parse_mode(text))
            print(f"probe under {text}: {probe}")
        except (Refusal, ValueError) as exc:
            print(f"probe under {text}: REFUSED: {exc}")
            code = 2
    return code


def _usage(message: str | None = None) -> int:
    if message:
        print(f"fakerng: {message}", file=sys.stderr)
    print(USAGE, file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    count_file = log_file = json_file = None
    hold_limit: float | None = None
    seconds = 1.0
    action = "run"
    while args and args[0].startswith("-") and args[0] != "--":
        opt = args.pop(0)
        if opt in ("-h", "--help"):
            print(__doc__.strip() + "\n\nModes:\n\n" + modes.describe())
            return 0
        if opt in ("--bench", "--check"):
            action = opt[2:]
            continue
        if opt not in ("--count-urandom", "--log", "--seconds", "--json", "--hold-limit"):
            return _usage(f"unknown option {opt}")
        if not args:
            return _usage(f"{opt} needs a value")
        value = args.pop(0)
        if opt == "--count-urandom":
            count_file = Path(value)
        elif opt == "--log":
            log_file = Path(value)
        elif opt == "--json":
            json_file = Path(value)
        elif opt == "--hold-limit":
            try:
                hold_limit = modes.seconds(value, "--hold-limit")
            except ValueError as exc:
                return _usage(str(exc))
        else:
            try:
                seconds = modes.seconds(value, "--seconds")
            except ValueError as exc:
                return _usage(str(exc))
    try:
        if action == "bench":
            rates = bench(seconds)
            print(format_rates(rates))
            if json_file is not None:
                tables.write_json(json_file, [dict(asdict(r), per_second=r.per_second)
                                              for r in rates])
            return 0
        if action == "check":
            return _check(args[0] if args else None)
        if not args:
            return _usage("no MODE given")
        try:
            mode = parse_mode(args.pop(0))
        except ValueError as exc:
            return _usage(str(exc))
        if args and args[0] == "--":
            args.pop(0)
        if not args:
            return _usage("no COMMAND given")
        return launch(mode, args, count_file=count_file, log_file=log_file,
                      hold_limit=hold_limit)
    except Refusal as exc:
        print(f"fakerng: {exc}", file=sys.stderr)
        return 2
