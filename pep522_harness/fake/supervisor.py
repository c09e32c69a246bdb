"""The seccomp user-notification supervisor of the modes that hold calls.

The command runs under the ``never-ready`` or ``notify`` filter of
``seccomp_helper``: the getrandom() calls of its whole process tree (threads,
fork, exec) that depend on readiness stop in the kernel until this
supervisor answers them.  The answer follows one global readiness state, as
the kernel's own RNG does (``seccomp_helper.decide``, and its ``Listener``
and ``Readiness``):

* not ready: GRND_NONBLOCK gets EAGAIN, GRND_INSECURE continues to the
  kernel, a blocking call is held (the caller sleeps in the kernel);
* at readiness every held call continues (SECCOMP_USER_NOTIF_FLAG_CONTINUE);
* ready: every call continues.  ``never-ready`` never gets there.

A kernel that never gets ready holds a blocking call for ever.  With a hold
limit, a call held that long where readiness is not to come stops its
caller: SIGABRT to the held thread, which a Python process started with
faulthandler answers with its stack, and SIGKILL if it is still there
``STOP_GRACE`` seconds later; the log says "blocked".

The supervisor is the command's parent.  It forwards the signals a user sends
it to the command, and returns as soon as the command exits, with its wait
status; the command side sets PR_SET_PDEATHSIG so that it does not outlive a
killed supervisor either.
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import resource
import select
import signal
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from .helper import helper

_H = helper()
GRND_NONBLOCK: int = _H.GRND_NONBLOCK
GRND_INSECURE: int = _H.GRND_INSECURE

# Sent by a user (kill(2), sigqueue(3)) rather than by the kernel or a tty.
_SI_USER = 0
_SI_QUEUE = -1
_SI_TKILL = -6

FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT,
                     signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)

# After the signal that stops a call held past the hold limit, the time its
# process has to die of it (and print its stack) before it is killed.
STOP_GRACE = 2.0


def _tgid(tid: int) -> int | None:
    """The process of a thread, from /proc; None if it is gone."""
    try:
        with open(f"/proc/{tid}/status") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _signal_thread(tid: int, signo: int) -> None:
    """Signal the thread ``tid`` itself where the C library can (tgkill(),
    glibc 2.30 and newer), else its process."""
    tgid = _tgid(tid)
    if tgid is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "tgkill") and libc.tgkill(tgid, tid, signo) == 0:
        return
    try:
        os.kill(tgid, signo)
    except ProcessLookupError:
        pass


class SignalFd:
    """signalfd(2) for blocked signals, read with the sender's identity."""

    # struct signalfd_siginfo starts {u32 signo; s32 errno; s32 code; u32 pid}
    _INFO = struct.Struct("=IiiI")
    _SIZE = 128

    def __init__(self, signals: Iterable[int]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        mask = ctypes.create_string_buffer(128)   # glibc's sigset_t
        libc.sigemptyset(mask)
        for signo in signals:
            libc.sigaddset(mask, int(signo))
        fd: int = libc.signalfd(-1, mask, os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"signalfd: {os.strerror(err)}")
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[tuple[int, int, int]]:
        """Pending signals as (signo, si_code, si_pid)."""
        out: list[tuple[int, int, int]] = []
        while True:
            try:
                data = os.read(self.fd, self._SIZE * 16)
            except BlockingIOError:
                return out
            for pos in range(0, len(data), self._SIZE):
                signo, _err, code, pid = self._INFO.unpack_from(data, pos)
                out.append((signo, code, pid))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class Stats:
    continued: int = 0
    eagain: int = 0
    held: int = 0
    released: int = 0
    gone: int = 0
    blocked: int = 0


@dataclass
class Held:
    """A blocking call the supervisor holds."""
    pid: int            # the thread that made it
    since: float        # time.monotonic() when it was held
    stopped: float | None = None    # when the hold limit stopped it


@dataclass
class Supervisor:
    """Answer notifications and wait for the command; see the module doc.

    ``child`` is the process whose exit ends the supervision.  Signals in
    ``signals`` (blocked by the caller, SIGCHLD among them) are forwarded to
    the pids returned by ``forward_to``, unless the kernel sent them (a
    terminal's ^C reaches the command's process group by itself).
    ``listener`` and ``readiness`` are seccomp_helper's; ``hold_limit``
    bounds a hold where readiness is not to come.
    """

    child: int
    signals: SignalFd
    listener: Any = None
    readiness: Any = None
    forward_to: Callable[[], list[int]] | None = None
    log: IO[str] | None = None
    hold_limit: float | None = None
    stats: Stats = field(default_factory=Stats)
    held: dict[int, Held] = field(default_factory=dict)

    def _event(self, event: str, **fields: object) -> None:
        if self.log is None:
            return
        start = self.readiness.start if self.readiness else 0.0
        record = {"t": round(time.monotonic() - start, 6), "event": event, **fields}
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()

    def _ready(self) -> bool:
        return self.readiness is None or self.readiness.ready

    def _tick(self, now: float) -> None:
        if self.readiness is not None and self.readiness.update(now):
            # mono: CLOCK_MONOTONIC of the declaration, comparable with the
            # time.monotonic() of the processes it releases (bench's wake-up)
            self._event("ready", held=len(self.held), mono=now)
            self._release()
        self._stop_overdue(now)

    def _release(self) -> None:
        for nid, call in list(self.held.items()):
            del self.held[nid]
            if self.listener.is_valid(nid) and self.listener.reply_continue(nid):
                self.stats.released += 1
                self._event("release", pid=call.pid)
            else:
                self.stats.gone += 1
                self._event("gone", pid=call.pid)

    def _overdue_at(self, call: Held) -> float | None:
        """When a held call is due to be stopped (or killed); None: never."""
        if self.hold_limit is None or (
                self.readiness is not None and self.readiness.deadline is not None):
            return None
        if call.stopped is not None:
            return call.stopped + STOP_GRACE
        return call.since + self.hold_limit

    def _stop_overdue(self, now: float) -> None:
        for nid, call in list(self.held.items()):
            due = self._overdue_at(call)
            if due is None or now < due:
                continue
            if not self.listener.is_valid(nid):
                del self.held[nid]
                continue
            if call.stopped is None:
                call.stopped = now
                self.stats.blocked += 1
                self._event("blocked", pid=call.pid, held=round(now - call.since, 3))
                _signal_thread(call.pid, signal.SIGABRT)
            else:
                del self.held[nid]
                tgid = _tgid(call.pid)
                if tgid is not None:
                    self._event("killed", pid=call.pid)
                    try:
                        os.kill(tgid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def _timeout(self, now: float) -> int | None:
        """Milliseconds until the next readiness or stop; None: no deadline."""
        dues = [due for call in self.held.values()
                if (due := self._overdue_at(call)) is not None]
        if self.readiness is not None:
            left = self.readiness.timeout(now)
            if left is not None:
                dues.append(now + left)
        return None if not dues else math.ceil(max(0.0, min(dues) - now) * 1000)

    def _handle(self) -> None:
        notif = self.listener.receive()
        if notif is None:
            self.stats.gone += 1
            return
        now = time.monotonic()
        flags = notif.flags
        if (self.readiness is not None and not self.readiness.ready
                and not flags & (GRND_NONBLOCK | GRND_INSECURE)):
            self.readiness.blocking_call(now)
        self._tick(now)
        answer = _H.decide(flags, self._ready())
        self._event(answer, pid=notif.pid, flags=flags)
        if answer == _H.HOLD:
            self.held[notif.id] = Held(notif.pid, now)
            self.stats.held += 1
            return
        if answer == _H.EAGAIN:
            sent = self.listener.reply_error(notif.id, errno.EAGAIN)
            self.stats.eagain += sent
        else:
            sent = self.listener.reply_continue(notif.id)
            self.stats.continued += sent
        if not sent:
            self.stats.gone += 1

    def _forward(self, signo: int) -> None:
        targets = self.forward_to() if self.forward_to else [self.child]
        for pid in targets:
            try:
                os.kill(pid, signo)
            except ProcessLookupError:
                pass

    def _reap(self) -> int | None:
        try:
            pid, status = os.waitpid(self.child, os.WNOHANG)
        except ChildProcessError:
            return 0
        return status if pid == self.child else None

    def run(self) -> int:
        """Supervise until the child exits; return its wait status."""
        poller = select.poll()
        poller.register(self.signals.fileno(), select.POLLIN)
        if self.listener is not None:
            poller.register(self.listener.fileno(), select.POLLIN)
        status = self._reap()
        if status is not None:
            return status
        while True:
            for fd, events in poller.poll(self._timeout(time.monotonic())):
                if fd == self.signals.fileno():
                    for signo, code, _pid in self.signals.read():
                        if signo == signal.SIGCHLD:
                            status = self._reap()
                            if status is not None:
                                return status
                        else:
                            # A terminal (SI_KERNEL) signals the command's
                            # process group itself: forward only what a
                            # process sent to the supervisor alone.
                            user = code in (_SI_USER, _SI_QUEUE, _SI_TKILL)
                            self._event("signal", signo=signo, forwarded=user)
                            if user:
                                self._forward(signo)
                elif self.listener is not None and fd == self.listener.fileno():
                    if events & select.POLLIN:
                        self._handle()
                    elif events & (select.POLLHUP | select.POLLERR):
                        # No process is left under the filter.
                        poller.unregister(fd)
            self._tick(time.monotonic())


def exit_like(status: int) -> int:
    """Exit as the command did: its exit code, or die of its signal.

    Returns only if the signal did not kill us (then 128 + signal).
    """
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        signo = os.WTERMSIG(status)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ValueError, OSError):
            pass
        if signo not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signo, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signo})
        os.kill(os.getpid(), signo)
        return 128 + signo
    return 1
