"""The seccomp user-notification supervisor of the stateful fake-RNG modes.

The command runs under the ``notify`` filter of ``seccomp_helper``: every
getrandom() of its whole process tree (threads, fork, exec) stops in the
kernel until this supervisor answers it.  The answer follows one global
readiness state, as the kernel's own RNG does:

* not ready: GRND_NONBLOCK gets EAGAIN, GRND_INSECURE continues to the
  kernel, a blocking call is held (the caller sleeps in the kernel);
* at readiness every held call continues (SECCOMP_USER_NOTIF_FLAG_CONTINUE);
* ready: every call continues.

The supervisor is the command's parent.  It forwards the signals a user sends
it to the command, and returns as soon as the command exits, with its wait
status; the command side sets PR_SET_PDEATHSIG so that it does not outlive a
killed supervisor either.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import fcntl
import json
import math
import os
import platform
import resource
import select
import signal
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO

GRND_NONBLOCK = 0x0001
GRND_INSECURE = 0x0004

SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1

# struct seccomp_notif {u64 id; u32 pid; u32 flags; struct seccomp_data}
# with seccomp_data {s32 nr; u32 arch; u64 ip; u64 args[6]}, and
# struct seccomp_notif_resp {u64 id; s64 val; s32 error; u32 flags}.
_NOTIF = struct.Struct("=QIIiIQ6Q")
_RESP = struct.Struct("=QqiI")
_ID = struct.Struct("=Q")


def _ioc(direction: str, nr: int, size: int) -> int:
    """_IOC('!', nr, size) of linux/ioctl.h, per architecture family."""
    if platform.machine().lower().startswith(("ppc", "powerpc", "mips", "sparc")):
        dirs, dir_shift = {"w": 4, "r": 2, "rw": 6}, 29
    else:
        dirs, dir_shift = {"w": 1, "r": 2, "rw": 3}, 30
    return (dirs[direction] << dir_shift) | (size << 16) | (ord("!") << 8) | nr


SECCOMP_IOCTL_NOTIF_RECV = _ioc("rw", 0, _NOTIF.size)
SECCOMP_IOCTL_NOTIF_SEND = _ioc("rw", 1, _RESP.size)
SECCOMP_IOCTL_NOTIF_ID_VALID = _ioc("w", 2, _ID.size)

# Sent by a user (kill(2), sigqueue(3)) rather than by the kernel or a tty.
_SI_USER = 0
_SI_QUEUE = -1
_SI_TKILL = -6

FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT,
                     signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


@dataclass(frozen=True)
class Notification:
    """One getrandom() call waiting in the kernel for an answer."""

    id: int
    pid: int
    nr: int
    arch: int
    args: tuple[int, ...]

    @property
    def grnd_flags(self) -> int:
        # getrandom(void *buf, size_t buflen, unsigned int flags)
        return self.args[2] & 0xFFFFFFFF


class Listener:
    """The listener file descriptor of a seccomp filter."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def receive(self) -> Notification | None:
        """The next notification; None if its caller is already gone."""
        buf = bytearray(_NOTIF.size)   # the kernel wants it zeroed
        try:
            fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EINTR):
                return None
            raise
        nid, pid, _flags, nr, arch, _ip, *args = _NOTIF.unpack(buf)
        return Notification(nid, pid, nr, arch, tuple(args))

    def _ioctl(self, request: int, buf: bytearray) -> bool:
        """One ioctl on the listener; False when it names a call that is
        gone (ENOENT: the caller died, or a signal interrupted its call,
        which it makes again if the call is restarted)."""
        try:
            fcntl.ioctl(self.fd, request, buf, True)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def _send(self, nid: int, error: int, flags: int) -> bool:
        return self._ioctl(SECCOMP_IOCTL_NOTIF_SEND,
                           bytearray(_RESP.pack(nid, 0, error, flags)))

    def reply_continue(self, nid: int) -> bool:
        """Let the kernel run the call; False if the caller is gone."""
        return self._send(nid, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)

    def reply_error(self, nid: int, err: int) -> bool:
        """Fail the call with errno err; False if the caller is gone."""
        return self._send(nid, -err, 0)

    def is_valid(self, nid: int) -> bool:
        """Whether the call is still waiting for an answer."""
        return self._ioctl(SECCOMP_IOCTL_NOTIF_ID_VALID, bytearray(_ID.pack(nid)))


class Answer(enum.Enum):
    CONTINUE = "continue"
    EAGAIN = "eagain"
    HOLD = "hold"


def decide(flags: int, ready: bool) -> Answer:
    """What a kernel with an RNG that is (not) ready does with getrandom()."""
    if ready or flags & GRND_INSECURE:
        return Answer.CONTINUE
    if flags & GRND_NONBLOCK:
        return Answer.EAGAIN
    return Answer.HOLD


@dataclass
class Readiness:
    """The global readiness of the fake kernel RNG.

    ``after``: ready that many seconds after ``start``.  ``on_wait``: ready
    that many seconds after the first blocking getrandom().
    """

    after: float | None = None
    on_wait: float | None = None
    start: float = field(default_factory=time.monotonic)
    deadline: float | None = None
    ready: bool = False

    def __post_init__(self) -> None:
        if self.after is not None:
            self.deadline = self.start + self.after

    def blocking_call(self, now: float) -> None:
        if self.on_wait is not None and self.deadline is None:
            self.deadline = now + self.on_wait

    def update(self, now: float) -> bool:
        """Become ready if the time has come; True if it just happened."""
        if not self.ready and self.deadline is not None and now >= self.deadline:
            self.ready = True
            return True
        return False

    def timeout(self, now: float) -> float | None:
        """Seconds until readiness, None if not scheduled or already ready."""
        if self.ready or self.deadline is None:
            return None
        return max(0.0, self.deadline - now)


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


@dataclass
class Supervisor:
    """Answer notifications and wait for the command; see the module doc.

    ``child`` is the process whose exit ends the supervision.  Signals in
    ``signals`` (blocked by the caller, SIGCHLD among them) are forwarded to
    the pids returned by ``forward_to``, unless the kernel sent them (a
    terminal's ^C reaches the command's process group by itself).
    """

    child: int
    signals: SignalFd
    listener: Listener | None = None
    readiness: Readiness | None = None
    forward_to: Callable[[], list[int]] | None = None
    log: IO[str] | None = None
    stats: Stats = field(default_factory=Stats)
    held: dict[int, Notification] = field(default_factory=dict)

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

    def _release(self) -> None:
        assert self.listener is not None
        for nid, notif in list(self.held.items()):
            del self.held[nid]
            if self.listener.is_valid(nid) and self.listener.reply_continue(nid):
                self.stats.released += 1
                self._event("release", pid=notif.pid)
            else:
                self.stats.gone += 1
                self._event("gone", pid=notif.pid)

    def _handle(self) -> None:
        assert self.listener is not None
        notif = self.listener.receive()
        if notif is None:
            self.stats.gone += 1
            return
        now = time.monotonic()
        flags = notif.grnd_flags
        if (self.readiness is not None and not self.readiness.ready
                and not flags & (GRND_NONBLOCK | GRND_INSECURE)):
            self.readiness.blocking_call(now)
        self._tick(now)
        answer = decide(flags, self._ready())
        self._event(answer.value, pid=notif.pid, flags=flags)
        if answer is Answer.HOLD:
            self.held[notif.id] = notif
            self.stats.held += 1
            return
        if answer is Answer.EAGAIN:
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
            timeout = None
            if self.readiness is not None:
                left = self.readiness.timeout(time.monotonic())
                if left is not None:
                    timeout = math.ceil(left * 1000)
            for fd, events in poller.poll(timeout):
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
