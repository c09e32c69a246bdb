"""The fake RNG's modes, and running a program under one: the only place
that knows the modes.

``MODES`` is the table: each mode's filter and what getrandom() answers
under it.  ``parse_mode`` reads a mode's text, ``option`` declares
``--mode`` for every command that takes one, ``command`` builds the launch
(``python -m pep522_harness fakerng [OPTIONS] MODE -- COMMAND``), and ``run``
launches a program and returns what happened as one ``Run``.

What a mode means is the patch set's own test support's
(``seccomp_helper.parse_mode``, through ``helper.py``): CPython's in-tree
tests and the harness fake the same kernel.  What a mode implies for a run
is decided here.  Every mode that depends on readiness is supervised: the
supervisor holds blocking getrandom() calls until readiness, and under
``never-ready`` for ever, as a kernel whose RNG never gets ready.  A run
bounds that: a call held ``HOLD_LIMIT`` seconds where readiness is not to
come stops its program, which reports its stack (faulthandler), and the run
says where it blocked.  A run that watches reads the supervisor's log.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pep522_harness.core import options, paths, process
from pep522_harness.core.errors import HarnessError

from .helper import helper
from .supervisor import GRND_INSECURE, GRND_NONBLOCK

DEFAULT_WAIT_DELAY: float = helper().DEFAULT_WAIT_DELAY
# Seconds a run lets a call be held where readiness is not to come
# (never-ready) before it stops the program and says where it blocked.
HOLD_LIMIT = 2.0


@dataclass(frozen=True)
class Kind:
    """A row of the mode table: what getrandom() answers under the mode."""
    answers: str
    argument: str = ""      # "=SECONDS": required; "[=DELAY]": optional


MODES: dict[str, Kind] = {
    "ready": Kind("no filter: the machine's own, ready RNG"),
    "never-ready": Kind("getrandom(GRND_NONBLOCK) fails with EAGAIN, GRND_INSECURE "
                        "passes, a blocking call is held for ever (as by a kernel "
                        "whose RNG never gets ready; --hold-limit bounds it)"),
    "enosys": Kind("every getrandom() fails with ENOSYS (kernels before 3.17)"),
    "eperm": Kind("every getrandom() fails with EPERM (old container profiles)"),
    "ready-after": Kind("not ready until SECONDS after launch, then ready", "=SECONDS"),
    "ready-on-wait": Kind(f"not ready until DELAY seconds (default "
                          f"{DEFAULT_WAIT_DELAY:g}) after the first blocking getrandom(), "
                          "as a kernel that seeds itself once someone waits", "[=DELAY]"),
}
# Every mode that needs no argument: the behaviour table's columns.
EVERY = tuple(name for name, kind in MODES.items() if not kind.argument.startswith("="))
# The two ways a not-ready RNG ends for a program: never, or once someone waits.
NOT_READY = ("never-ready", "ready-on-wait")
# The columns of the studies of real programs: ready first (where stock and
# patched must not differ), then the not-ready ones.
STUDIED = ("ready", *NOT_READY)


class Refusal(HarnessError):
    """The RNG cannot be faked (or watched) faithfully here; the message says why."""


@dataclass(frozen=True)
class Mode:
    """A fake-RNG mode: its filter and, for stateful modes, when it gets ready."""

    text: str
    filter: str | None                # seccomp_helper filter; None: no filter
    ready_after: float | None = None
    ready_on_wait: float | None = None

    @property
    def supervised(self) -> bool:
        """A supervisor answers (and holds) the calls that depend on readiness."""
        return self.filter in ("never-ready", "notify")

    @property
    def stateful(self) -> bool:
        """Readiness can come: the supervisor decides every call."""
        return self.filter == "notify"

    @property
    def holds_forever(self) -> bool:
        """A blocking getrandom() is never answered, as by a kernel that
        never gets ready."""
        return self.filter == "never-ready"

    @property
    def probe_filter(self) -> str | None:
        """The mode the vDSO probe runs under (the same GRND_NONBLOCK path)."""
        return "never-ready" if self.supervised else self.filter

    @property
    def probe_errno(self) -> int:
        return {"enosys": errno.ENOSYS, "eperm": errno.EPERM}.get(
            self.filter or "", errno.EAGAIN)


def seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} wants a number of seconds, not {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{what} wants a finite number of seconds >= 0, not {text!r}")
    return value


def parse_mode(text: str) -> Mode:
    """``'ready-on-wait=0.3'`` -> Mode; ValueError with a message if unknown."""
    name, eq, arg = text.partition("=")
    kind = MODES.get(name)
    if kind is None or (eq and not kind.argument) or (not eq and kind.argument[:1] == "="):
        raise ValueError(f"unknown mode {text!r}")
    if eq:
        seconds(arg, name)          # the harness's own message for a bad number
    ours = helper().parse_mode(text)
    return Mode(text, ours.filter, ready_after=ours.ready_after,
                ready_on_wait=ours.ready_on_wait)


def syntax() -> str:
    """``ready | never-ready | ... | ready-on-wait[=DELAY]``"""
    return " | ".join(name + kind.argument for name, kind in MODES.items())


def describe() -> str:
    """The mode table, one mode a line (the launcher's --help)."""
    width = max(len(name + kind.argument) for name, kind in MODES.items())
    return "\n".join(textwrap.fill(kind.answers, 78,
                                   initial_indent=f"    {name + kind.argument:{width}}  ",
                                   subsequent_indent=" " * (width + 6))
                     for name, kind in MODES.items())


def _checked(text: str) -> str:
    try:
        parse_mode(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; modes: {syntax()}") from None
    return text


def option(p: argparse.ArgumentParser, *, default: Sequence[str]) -> None:
    """--mode, repeatable; its choices are the mode table."""
    p.add_argument("--mode", action=options.Many, default=list(default), type=_checked,
                   metavar="MODE", help=f"fake RNG mode, repeatable (default: "
                   f"{' '.join(default)}); one of: {syntax()}")


# -- the launch --------------------------------------------------------------------

def launcher() -> list[str]:
    """The launcher as a command that works from any folder and leaves the
    command's environment alone (no PYTHONPATH reaches the programs)."""
    return [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
            f"from {__package__}.launcher import main; sys.exit(main())", str(paths.REPO)]


def script(path: Path) -> Path:
    """``launcher()`` as an executable sh script, for a command line that
    another tool splits (tox's)."""
    path.write_text("#!/bin/sh\n# The fake RNG launcher.\n"
                    f"exec {shlex.join(launcher())} \"$@\"\n")
    path.chmod(0o755)
    return path


def arguments(mode: Mode, argv: Sequence[str], *, log: Path | None = None,
              trace: Path | None = None, calls: Sequence[str] = (),
              trace_held: bool = False, count_urandom: Path | None = None,
              hold_limit: float | None = None) -> list[str]:
    """The launcher's arguments for ``argv`` under ``mode``.

    ``log``: where the supervisor writes its answers (the supervised modes:
    the calls it held, readiness, the calls it stopped).  ``trace``: where
    strace writes the getrandom() calls of the command's whole tree, and
    ``calls`` too, with ``trace_held`` under the supervised modes (to tell
    which part of a program waited); under the other modes no getrandom()
    blocks.  strace runs inside the filter, without seccomp-bpf under the
    supervisor's filter, which outranks strace's own.  ``count_urandom``:
    where the launcher writes how often the tree opened /dev/urandom.
    ``hold_limit``: seconds after which a call that is never to be answered
    stops its program (never-ready).
    """
    opts: list[str] = []
    if count_urandom is not None:
        opts += ["--count-urandom", str(count_urandom)]
    if log is not None and mode.supervised:
        opts += ["--log", str(log)]
    if hold_limit is not None and mode.holds_forever:
        opts += ["--hold-limit", f"{hold_limit:g}"]
    strace: list[str] = []
    if trace is not None and trace_held and mode.supervised:
        found = shutil.which("strace")
        if found is None:
            raise Refusal(f"watching getrandom() under {mode.text} needs strace: "
                          "apt-get install strace")
        strace = [found, "-f", "-qq", "-s", "200" if calls else "0",
                  "-e", "trace=" + ",".join(("getrandom", *calls)), "-e", "signal=none",
                  "-o", str(trace), "--"]
    return [*opts, mode.text, "--", *strace, *argv]


def command(mode: Mode, argv: Sequence[str]) -> list[str]:
    """The whole launch of ``argv``, unwatched: ``launcher()`` and its ``arguments``."""
    return [*launcher(), *arguments(mode, argv)]


# -- what a launch did --------------------------------------------------------------

@dataclass
class Run:
    """What one launch under a mode did."""
    mode: str
    args: list[str]            # the launcher's arguments (MODE -- COMMAND ...)
    returncode: int
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0       # wall time of the launch
    timed_out: bool = False
    held: int = 0              # blocking getrandom() calls the supervisor held
    waited: float = 0.0        # from the first held call to readiness
    blocked: bool = False      # a call held past the hold limit stopped the program
    frame: str | None = None   # where it blocked (faulthandler's innermost frame)
    urandom_opens: int | None = None                    # with count_urandom
    trace: str = ""                                     # strace's, when it ran
    events: list[dict] = field(default_factory=list)    # the supervisor's log


def run(mode: str | Mode, argv: Sequence[str], *, cwd: Path | None = None,
        env: dict[str, str] | None = None, timeout: float | None = None,
        output: IO[str] | None = None, watch: bool = False, calls: Sequence[str] = (),
        trace_held: bool = False, count_urandom: bool = False,
        hold_limit: float | None = HOLD_LIMIT) -> Run:
    """Launch ``argv`` under ``mode`` and say what happened.

    ``watch``: read the supervisor's log: the calls held, the time held in
    them (``calls`` and ``trace_held``: see ``arguments``; the trace is
    ``Run.trace``).  ``output``: a file for both output streams instead of
    ``Run.stdout`` and ``stderr``.  ``timeout``: see ``process.run``; a run
    that runs out of time says so (``timed_out``).  ``hold_limit``: under
    never-ready, a call held that long stops the program; Python programs
    then print their stack (faulthandler: ``-X faulthandler`` for a Python
    launched directly, which ``-I`` does not silence, PYTHONFAULTHANDLER for
    the Pythons it starts), and ``Run.frame`` says where.  None: hold for
    ever (until ``timeout``).
    """
    mode = mode if isinstance(mode, Mode) else parse_mode(mode)
    if hold_limit is not None and mode.holds_forever:
        env = {**(os.environ if env is None else env), "PYTHONFAULTHANDLER": "1"}
        if Path(argv[0]).name.startswith("python"):
            argv = [argv[0], "-X", "faulthandler", *argv[1:]]
    with tempfile.TemporaryDirectory(prefix="pep522-fake-") as tmp:
        log, trace, count = Path(tmp) / "log", Path(tmp) / "trace", Path(tmp) / "count"
        args = arguments(mode, argv, log=log if watch or hold_limit else None,
                         trace=trace if watch else None, calls=calls, trace_held=trace_held,
                         count_urandom=count if count_urandom else None,
                         hold_limit=hold_limit)
        start = time.monotonic()
        try:
            proc = process.run([*launcher(), *args], cwd=cwd, env=env, timeout=timeout,
                               output=output)
            done = Run(mode.text, args, proc.returncode, proc.stdout or "",
                       proc.stderr or "")
        except subprocess.TimeoutExpired as exc:
            done = Run(mode.text, args, -signal.SIGKILL, process.text(exc.output),
                       process.text(exc.stderr), timed_out=True)
        done.seconds = time.monotonic() - start
        if trace.exists():
            done.trace = trace.read_text(errors="replace")
        if log.exists():
            text = log.read_text()
            done.events = events(text)
            done.waited, done.held = held_seconds(text)
            done.blocked = any(e.get("event") == "blocked" for e in done.events)
        if done.blocked:
            done.frame = blocked_frame(done.stderr)
        if count_urandom:
            try:
                done.urandom_opens = int(count.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return done


# faulthandler: 'Current thread 0x... (most recent call first):' then
# '  File "/usr/lib/python3.13/secrets.py", line 52 in wait_for_system_rng'.
_CURRENT = re.compile(r"^(?:Current thread|Stack) ")
_FAULT_FRAME = re.compile(r'^\s+File "(.+)", line (\d+) in (\S+)')


def held_stack(stderr: str) -> list[tuple[str, int, str]]:
    """(file, line, function) of the thread that faulthandler dumped as the
    current one (the held one), innermost first; [] if there is none."""
    stack: list[tuple[str, int, str]] = []
    current = False
    for line in stderr.splitlines():
        if _CURRENT.match(line):
            current, stack = True, []
        elif current:
            m = _FAULT_FRAME.match(line)
            if not m:
                if stack:
                    break
                continue
            stack.append((m.group(1), int(m.group(2)), m.group(3)))
    return stack


def blocked_frame(stderr: str) -> str | None:
    """``FILE:LINE (FUNCTION)`` of the innermost frame of ``held_stack``."""
    stack = held_stack(stderr)
    return f"{stack[0][0]}:{stack[0][1]} ({stack[0][2]})" if stack else None


# strace: 'getrandom("..."..., 32, 0) = 32'; a call interrupted by another
# process's line is split in two, its arguments on the first line
# ('getrandom(0x7ffc..., 32, 0 <unfinished ...>') or on the second
# ('<... getrandom resumed>""..., 32, 0) = 32').
_GETRANDOM = re.compile(r"(?:\bgetrandom\(|<\.\.\. getrandom resumed>)(?:.*, )?(\d+), ([\w|]+)"
                        r"(?:\)| <unfinished)")


def blocking_getrandom_calls(trace: str) -> int:
    """getrandom() calls in strace output that may block (no NONBLOCK/INSECURE)."""
    n = 0
    for m in _GETRANDOM.finditer(trace):
        flags = m.group(2)
        numeric = int(flags, 0) if re.fullmatch(r"\d+|0x[0-9a-f]+", flags) else 0
        if "GRND_NONBLOCK" not in flags and "GRND_INSECURE" not in flags \
                and not numeric & (GRND_NONBLOCK | GRND_INSECURE):
            n += 1
    return n


def events(log: str) -> list[dict]:
    """The records of the launcher's JSON-lines log (a torn last line aside)."""
    found = []
    for line in log.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def held_seconds(log: str) -> tuple[float, int]:
    """(seconds from the first held getrandom() to readiness, calls held)
    from the launcher's JSON-lines log."""
    first = ready = None
    held = 0
    for event in events(log):
        if event.get("event") == "hold":
            held += 1
            first = event["t"] if first is None else first
        elif event.get("event") == "ready" and ready is None:
            ready = event["t"]
    if first is None:
        return 0.0, 0
    return round((ready if ready is not None else first) - first, 3), held
