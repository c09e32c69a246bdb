"""Fake a Linux kernel whose random number generator is not ready yet.

The tests of os.urandom(), random.SystemRandom and secrets need to see what
happens before the kernel's random number generator is initialized, which
never happens on a running test machine.  A seccomp filter makes getrandom()
answer as an early-boot kernel would, for the whole process tree it is
installed on (threads, fork() and exec() inherit it):

* ``'never-ready'``: getrandom() with GRND_NONBLOCK fails with EAGAIN,
  GRND_INSECURE goes to the kernel, and a blocking call is held for as long
  as the process lives, as by a kernel whose RNG never gets ready.
* ``'ready-on-wait'`` (``'ready-on-wait=SECONDS'``, 0.1 by default): not
  ready until SECONDS after the first blocking getrandom(), as a kernel
  that gets ready once someone waits for it; the blocking calls are held
  until then.
* ``'ready-after=SECONDS'``: not ready until SECONDS after the start.
* ``'enosys'`` and ``'eperm'``: every getrandom() fails with ENOSYS (kernels
  before 3.17) or EPERM (old container profiles).
* ``'ready'``: no filter at all.

The first three need a supervisor: the filter hands the calls that depend on
readiness to user space (SECCOMP_RET_USER_NOTIF), and a thread of the test
process answers them (Supervisor).  Readiness is global to the supervised
process tree, as the kernel's is.

Example::

    from test.support import seccomp_helper

    @seccomp_helper.requires_seccomp
    def test_urandom_not_ready(self):
        proc = seccomp_helper.run_python(
            'never-ready', '-c', 'import os; os.urandom(1)')
        self.assertIn('BlockingIOError', proc.stderr)

run_python() installs the filter in the child between fork() and exec()
(installer() gives that function to other subprocess calls of the static
modes; start_python() returns the Popen and the Supervisor of any mode), so
that no other interpreter runs between the test and the command: one started
as a wrapper would itself warn on stderr while the RNG of the test run is
not ready.  From the command line, ``python -m test.support.seccomp_helper
MODE -- ARGV`` installs the filter of a static mode and executes ARGV.

The tests may themselves run under a filter (a test run under a fake
not-ready kernel), which a filter installed later cannot lift.  For a system
call that two filters fail with SECCOMP_RET_ERRNO, the kernel returns the
errno of the newer one, so a filter here wins where it refuses a call; but a
call it allows is still answered by the older one: under an 'enosys' test
run, the 'never-ready' filter makes GRND_NONBLOCK fail with EAGAIN, and
blocking calls still fail with ENOSYS.  rng_state() says what getrandom()
answers in this process, for the tests that depend on it.

getrandom() answered by the vDSO (glibc 2.41 and newer on Linux 6.11 and
newer) never reaches a filter.  glibc only uses the vDSO once it could map
its per-thread state with MAP_DROPPABLE, so the filters of the not-ready
modes also make such mmap() calls fail with EINVAL, as on kernels before
6.11; glibc then falls back to the system call.  Whoever relies on a filter
should still check that the C library's getrandom(GRND_NONBLOCK) fails under
it (the harness's launcher does).
"""

import collections
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import os
import platform
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest


__all__ = [
    'MODES', 'STATIC_MODES', 'Mode', 'parse_mode',
    'seccomp_available', 'requires_seccomp', 'build_filter',
    'install_filter', 'installer', 'Supervisor', 'start', 'start_python',
    'blocks', 'run_python', 'rng_state',
]


# getrandom() flags (linux/random.h).
GRND_NONBLOCK = 0x0001
GRND_RANDOM = 0x0002
GRND_INSECURE = 0x0004

# seccomp() operations and filter flags (linux/seccomp.h).
SECCOMP_SET_MODE_STRICT = 0
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3

SECCOMP_FILTER_FLAG_TSYNC = 1 << 0
SECCOMP_FILTER_FLAG_LOG = 1 << 1
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 1 << 2
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 1 << 4
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5

# Filter return values.
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7fc00000
SECCOMP_RET_TRACE = 0x7ff00000
SECCOMP_RET_LOG = 0x7ffc0000
SECCOMP_RET_ALLOW = 0x7fff0000
SECCOMP_RET_DATA = 0x0000ffff

# prctl() options (linux/prctl.h).
PR_GET_SECCOMP = 21
PR_SET_NO_NEW_PRIVS = 38

# Classic BPF opcodes (linux/bpf_common.h).
BPF_LD = 0x00
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_RET = 0x06
BPF_W = 0x00
BPF_ABS = 0x20
BPF_AND = 0x50
BPF_JEQ = 0x10
BPF_JSET = 0x40
BPF_K = 0x00

# mmap() flags: MAP_DROPPABLE is a mapping type of its own (Linux 6.11).
MAP_TYPE = 0x0f
MAP_DROPPABLE = 0x08

# x32 system calls run with AUDIT_ARCH_X86_64 and this bit in the number.
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer;
# __u64 args[6].  It is in the kernel's byte order; getrandom()'s flags and
# mmap()'s flags are 32-bit, so the filter reads the low word only.
_NR_OFFSET = 0
_ARCH_OFFSET = 4
_ARGS_OFFSET = 16


def _arg_low_offset(index):
    return (_ARGS_OFFSET + 8 * index
            + (4 if sys.byteorder == 'big' else 0))


class _Arch:
    """System call numbers of one audit architecture."""

    def __init__(self, name, audit_arch, getrandom, mmap, seccomp,
                 x32=False):
        self.name = name
        self.audit_arch = audit_arch
        self.getrandom = getrandom
        # None: no mmap() taking its flags in a register (s390x).
        self.mmap = mmap
        self.seccomp = seccomp
        self.x32 = x32


# Audit architectures the filters check; a process of any other
# architecture is not filtered.  x86_64 covers x32 through X32_SYSCALL_BIT.
_ARCHES = (
    _Arch('x86_64', 0xc000003e, 318, 9, 317, x32=True),
    _Arch('i386', 0x40000003, 355, 192, 354),
    _Arch('aarch64', 0xc00000b7, 278, 222, 277),
    _Arch('arm', 0x40000028, 384, 192, 383),
    _Arch('riscv64', 0xc00000f3, 278, 222, 277),
    _Arch('ppc64le', 0xc0000015, 359, 90, 358),
    _Arch('ppc64', 0x80000015, 359, 90, 358),
    _Arch('s390x', 0x80000016, 349, None, 348),
    _Arch('loongarch64', 0xc0000102, 278, 222, 277),
)

# platform.machine() -> the name of the native architecture in _ARCHES.
_MACHINES = {
    'x86_64': 'x86_64', 'amd64': 'x86_64',
    'i386': 'i386', 'i486': 'i386', 'i586': 'i386', 'i686': 'i386',
    'aarch64': 'aarch64', 'arm64': 'aarch64',
    'armv7l': 'arm', 'armv8l': 'arm', 'armv6l': 'arm',
    'riscv64': 'riscv64',
    'ppc64le': 'ppc64le', 'ppc64': 'ppc64',
    's390x': 's390x',
    'loongarch64': 'loongarch64',
}

MODES = ('ready', 'never-ready', 'ready-on-wait', 'ready-after', 'enosys',
         'eperm')
# The modes a filter answers on its own, without a supervisor.
STATIC_MODES = ('ready', 'enosys', 'eperm')
# Seconds from the first blocking getrandom() to readiness in ready-on-wait.
DEFAULT_WAIT_DELAY = 0.1
# Seconds a test lets never-ready hold a call where it expects none (an
# interpreter that blocks instead of raising fails fast).
HOLD_LIMIT = 5.0


class Mode(collections.namedtuple(
        'Mode', 'text name filter ready_after ready_on_wait')):
    """A fake-RNG mode (see the module documentation).

    filter is the kind of filter build_filter() makes for it (None for
    'ready'); ready_after and ready_on_wait are the seconds of the two
    modes that get ready, else None.
    """

    @property
    def supervised(self):
        """Whether a Supervisor must answer the calls the filter holds."""
        return self.filter in ('never-ready', 'notify')


def _seconds(text, name):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float('inf'):
        raise ValueError('%s wants a finite number of seconds >= 0, not %r'
                         % (name, text))
    return value


def parse_mode(text):
    """Return the Mode of text, such as 'never-ready' or 'ready-on-wait=0.3';
    raise ValueError with a message if it names no mode."""
    if isinstance(text, Mode):
        return text
    name, eq, arg = text.partition('=')
    if name in ('ready', 'enosys', 'eperm', 'never-ready') and not eq:
        kind = None if name == 'ready' else name
        return Mode(text, name, kind, None, None)
    if name == 'ready-after' and eq:
        return Mode(text, name, 'notify', _seconds(arg, name), None)
    if name == 'ready-on-wait':
        delay = _seconds(arg, name) if eq else DEFAULT_WAIT_DELAY
        return Mode(text, name, 'notify', None, delay)
    raise ValueError('unknown mode %r (expected one of: ready, never-ready, '
                     'ready-on-wait[=SECONDS], ready-after=SECONDS, enosys, '
                     'eperm)' % (text,))


def _native_arch():
    name = _MACHINES.get(platform.machine().lower())
    if name is None:
        return None
    # A 32-bit userland on a 64-bit kernel reports the kernel's machine.
    if name == 'x86_64' and struct.calcsize('P') == 4:
        return None     # i386 or x32: the seccomp number is ambiguous
    if name == 'aarch64' and struct.calcsize('P') == 4:
        name = 'arm'
    for arch in _ARCHES:
        if arch.name == name:
            return arch
    return None


class _SockFilter(ctypes.Structure):
    _fields_ = [('code', ctypes.c_ushort), ('jt', ctypes.c_ubyte),
                ('jf', ctypes.c_ubyte), ('k', ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    # The filter field keeps a reference to the array assigned to it.
    _fields_ = [('len', ctypes.c_ushort),
                ('filter', ctypes.POINTER(_SockFilter))]


@functools.lru_cache(maxsize=None)
def _libc():
    name = ctypes.util.find_library('c') or None
    return ctypes.CDLL(name, use_errno=True)


def _seccomp(operation, flags, pointer):
    """The seccomp() system call; raise OSError on failure."""
    arch = _native_arch()
    if arch is None:
        raise OSError(errno.ENOSYS, 'unknown architecture %r'
                      % platform.machine())
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(arch.seccomp),
                          ctypes.c_long(operation),
                          ctypes.c_long(flags),
                          ctypes.c_void_p(pointer))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    libc = _libc()
    libc.prctl.restype = ctypes.c_int
    ctypes.set_errno(0)
    result = libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2),
                        ctypes.c_ulong(arg3), ctypes.c_ulong(arg4),
                        ctypes.c_ulong(arg5))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


@functools.lru_cache(maxsize=None)
def _availability(need_notify):
    if not sys.platform.startswith('linux'):
        return False, 'seccomp filters need Linux'
    arch = _native_arch()
    if arch is None:
        return False, ('no seccomp system call numbers for architecture %r'
                       % platform.machine())
    try:
        _libc()
    except OSError as exc:
        return False, 'cannot load the C library with ctypes: %s' % exc
    try:
        _prctl(PR_GET_SECCOMP)
    except OSError as exc:
        return False, 'kernel without seccomp (PR_GET_SECCOMP: %s)' % exc
    # With a NULL program the kernel answers EFAULT when it has filter mode
    # and EINVAL when it does not.
    try:
        _seccomp(SECCOMP_SET_MODE_FILTER, 0, 0)
    except OSError as exc:
        if exc.errno != errno.EFAULT:
            return False, ('kernel without seccomp filter mode '
                           '(seccomp(SECCOMP_SET_MODE_FILTER): %s)' % exc)
    actions = [SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW]
    if need_notify:
        # struct seccomp_notif_sizes: three __u16.
        sizes = (ctypes.c_uint16 * 3)()
        try:
            _seccomp(SECCOMP_GET_NOTIF_SIZES, 0, ctypes.addressof(sizes))
        except OSError as exc:
            return False, ('kernel without seccomp user notification '
                           '(SECCOMP_GET_NOTIF_SIZES: %s)' % exc)
        actions.append(SECCOMP_RET_USER_NOTIF)
    for action in actions:
        value = ctypes.c_uint32(action)
        try:
            _seccomp(SECCOMP_GET_ACTION_AVAIL, 0, ctypes.addressof(value))
        except OSError as exc:
            what = {SECCOMP_RET_USER_NOTIF: 'SECCOMP_RET_USER_NOTIF '
                                            '(seccomp user notification)',
                    SECCOMP_RET_ERRNO: 'SECCOMP_RET_ERRNO',
                    SECCOMP_RET_ALLOW: 'SECCOMP_RET_ALLOW'}[action]
            return False, 'kernel without the %s action: %s' % (what, exc)
    if need_notify:
        return _listener_allowed()
    return True, ''


def _listener_allowed():
    # A process has one filter with a listener at the most: under one
    # already (a test run under a supervised fake kernel), installing
    # another fails with EBUSY.  Try it in a child.
    prog = _sock_fprog(build_filter('never-ready'))

    def install():
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                 ctypes.addressof(prog))

    try:
        subprocess.run([sys.executable, '-I', '-S', '-c', ''], preexec_fn=install,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, ('cannot install a filter with a listener here (this '
                       'process may run under one already): %s' % exc)
    return True, ''


def seccomp_available(need_notify=False):
    """Return (True, '') if the filters of this module can be installed.

    Otherwise return (False, reason), reason saying what is missing: Linux,
    ctypes, seccomp filter mode, a known architecture or, if need_notify is
    true, seccomp user notification (Linux 5.0).
    """
    return _availability(bool(need_notify))


def requires_seccomp(test):
    """Skip the decorated test (or class) unless seccomp filters work."""
    ok, reason = seccomp_available()
    return unittest.skipUnless(ok, reason or 'requires seccomp')(test)


class _Assembler:
    """A classic BPF program with forward jumps to named labels."""

    def __init__(self):
        self._code = []     # (code, jt, jf, k); jt/jf are label names
        self._labels = {}

    def label(self, name):
        self._labels[name] = len(self._code)

    def load(self, offset):
        self._code.append((BPF_LD | BPF_W | BPF_ABS, 0, 0, offset))

    def and_(self, k):
        self._code.append((BPF_ALU | BPF_AND | BPF_K, 0, 0, k))

    def jump(self, op, k, jt=None, jf=None):
        self._code.append((BPF_JMP | op | BPF_K, jt, jf, k))

    def ret(self, k):
        self._code.append((BPF_RET | BPF_K, 0, 0, k))

    def _offset(self, index, target):
        if target is None:
            return 0
        offset = self._labels[target] - index - 1
        if not 0 <= offset <= 255:
            # Classic BPF jumps forward only, by at most 255.
            raise ValueError('BPF jump to %r out of range' % target)
        return offset

    def assemble(self):
        out = []
        for index, (code, jt, jf, k) in enumerate(self._code):
            if code & 0x07 == BPF_JMP:
                jt = self._offset(index, jt)
                jf = self._offset(index, jf)
            out.append(struct.pack('=HBBI', code, jt, jf, k))
        return b''.join(out)


def _errno_action(err):
    return SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)


def build_filter(kind):
    """Return the sock_filter program (bytes) of a kind of filter.

    kind is the filter of a Mode: 'never-ready' (GRND_NONBLOCK fails with
    EAGAIN, GRND_INSECURE passes, blocking calls go to the supervisor),
    'notify' (every getrandom() goes to the supervisor), 'enosys' or
    'eperm'; anything else raises ValueError.  The program checks
    seccomp_data.arch first; system calls of unknown architectures and all
    other system calls are allowed.
    """
    if kind == 'never-ready':
        def getrandom(asm):
            asm.load(_arg_low_offset(2))
            # GRND_INSECURE never blocks, even with GRND_NONBLOCK.
            asm.jump(BPF_JSET, GRND_INSECURE, jt='pass')
            asm.jump(BPF_JSET, GRND_NONBLOCK, jt='eagain')
            asm.ret(SECCOMP_RET_USER_NOTIF)
            asm.label('pass')
            asm.ret(SECCOMP_RET_ALLOW)
            asm.label('eagain')
            asm.ret(_errno_action(errno.EAGAIN))
    elif kind == 'enosys':
        def getrandom(asm):
            asm.ret(_errno_action(errno.ENOSYS))
    elif kind == 'eperm':
        def getrandom(asm):
            asm.ret(_errno_action(errno.EPERM))
    elif kind == 'notify':
        def getrandom(asm):
            asm.ret(SECCOMP_RET_USER_NOTIF)
    else:
        raise ValueError('no filter of kind %r (expected never-ready, '
                         'notify, enosys or eperm)' % (kind,))

    asm = _Assembler()
    asm.load(_ARCH_OFFSET)
    for arch in _ARCHES:
        asm.jump(BPF_JEQ, arch.audit_arch, jt='arch-' + arch.name)
    asm.label('allow')
    asm.ret(SECCOMP_RET_ALLOW)
    for arch in _ARCHES:
        asm.label('arch-' + arch.name)
        asm.load(_NR_OFFSET)
        numbers = [(arch.getrandom, 'getrandom'), (arch.mmap, 'mmap')]
        if arch.x32:
            numbers += [(X32_SYSCALL_BIT | arch.getrandom, 'getrandom'),
                        (X32_SYSCALL_BIT | arch.mmap, 'mmap')]
        for number, target in numbers:
            if number is not None:
                asm.jump(BPF_JEQ, number, jt=target)
        asm.ret(SECCOMP_RET_ALLOW)
    # mmap(..., flags, ...) with MAP_DROPPABLE: EINVAL, as before Linux 6.11,
    # so that glibc cannot set up its vDSO getrandom().
    asm.label('mmap')
    asm.load(_arg_low_offset(3))
    asm.and_(MAP_TYPE)
    asm.jump(BPF_JEQ, MAP_DROPPABLE, jt='einval')
    asm.ret(SECCOMP_RET_ALLOW)
    asm.label('einval')
    asm.ret(_errno_action(errno.EINVAL))
    asm.label('getrandom')
    getrandom(asm)
    return asm.assemble()


def _sock_fprog(prog):
    """The sock_filter program prog as a struct sock_fprog."""
    if not prog or len(prog) % 8:
        raise ValueError('a sock_filter program is a non-empty multiple '
                         'of 8 bytes')
    count = len(prog) // 8
    if count > 4096:
        raise ValueError('BPF program too long: %d instructions' % count)
    instructions = (_SockFilter * count).from_buffer_copy(prog)
    return _SockFprog(count, instructions)


def install_filter(prog, flags=0):
    """Install the sock_filter program prog on the calling thread.

    Set PR_SET_NO_NEW_PRIVS first, as an unprivileged process must.  Return
    the listener file descriptor if flags has
    SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0.  Raise OSError on failure.
    """
    fprog = _sock_fprog(prog)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    return _seccomp(SECCOMP_SET_MODE_FILTER, flags, ctypes.addressof(fprog))


def installer(mode):
    """Return a function that installs the filter of a static mode ('ready',
    'enosys', 'eperm') on the calling thread, for subprocess's preexec_fn;
    None for 'ready'.

    The program is built and the C library loaded now, before fork(): the
    function only makes the two system calls.  Raise unittest.SkipTest if
    seccomp filters cannot be installed here, ValueError if mode needs a
    supervisor (start_python() runs those) or is unknown.
    """
    mode = parse_mode(mode)
    if mode.supervised:
        raise ValueError('mode %r needs a supervisor: use start_python()'
                         % mode.text)
    if mode.filter is None:
        return None
    ok, reason = seccomp_available()
    if not ok:
        raise unittest.SkipTest(reason)
    fprog = _sock_fprog(build_filter(mode.filter))
    _libc()

    def install():
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _seccomp(SECCOMP_SET_MODE_FILTER, 0, ctypes.addressof(fprog))

    return install


# -- the supervisor of the modes that hold calls -----------------------------

# struct seccomp_notif {u64 id; u32 pid; u32 flags; struct seccomp_data}
# with seccomp_data {s32 nr; u32 arch; u64 ip; u64 args[6]}, and
# struct seccomp_notif_resp {u64 id; s64 val; s32 error; u32 flags}.
_NOTIF = struct.Struct('=QIIiIQ6Q')
_NOTIF_RESP = struct.Struct('=QqiI')
_NOTIF_ID = struct.Struct('=Q')
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1


def _ioc(direction, nr, size):
    """_IOC(direction, '!', nr, size) of linux/ioctl.h."""
    if platform.machine().lower().startswith(('ppc', 'powerpc', 'mips',
                                              'sparc')):
        dirs, shift = {'w': 4, 'r': 2, 'rw': 6}, 29
    else:
        dirs, shift = {'w': 1, 'r': 2, 'rw': 3}, 30
    return (dirs[direction] << shift) | (size << 16) | (ord('!') << 8) | nr


SECCOMP_IOCTL_NOTIF_RECV = _ioc('rw', 0, _NOTIF.size)
SECCOMP_IOCTL_NOTIF_SEND = _ioc('rw', 1, _NOTIF_RESP.size)
SECCOMP_IOCTL_NOTIF_ID_VALID = _ioc('w', 2, _NOTIF_ID.size)


Notification = collections.namedtuple('Notification', 'id pid flags')


class Listener:
    """The listener file descriptor of a filter that holds calls."""

    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def receive(self):
        """The next held getrandom(); None if its caller is already gone."""
        buf = bytearray(_NOTIF.size)    # the kernel wants it zeroed
        try:
            fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EINTR):
                return None
            raise
        nid, pid, _flags, _nr, _arch, _ip, *args = _NOTIF.unpack(buf)
        # getrandom(void *buf, size_t buflen, unsigned int flags)
        return Notification(nid, pid, args[2] & 0xFFFFFFFF)

    def _send(self, nid, error, flags):
        resp = bytearray(_NOTIF_RESP.pack(nid, 0, error, flags))
        try:
            fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_SEND, resp, True)
        except OSError as exc:
            # ENOENT: the caller died, or a signal interrupted its call (a
            # restarted call comes back as a new notification).
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def reply_continue(self, nid):
        """Let the kernel run the call; False if the caller is gone."""
        return self._send(nid, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)

    def reply_error(self, nid, err):
        """Fail the call with errno err; False if the caller is gone."""
        return self._send(nid, -err, 0)

    def is_valid(self, nid):
        """Whether the call still waits for an answer."""
        try:
            fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_ID_VALID,
                        bytearray(_NOTIF_ID.pack(nid)), True)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True


CONTINUE, EAGAIN, HOLD = 'continue', 'eagain', 'hold'


def decide(flags, ready):
    """What a kernel whose RNG is (not) ready does with getrandom(flags):
    CONTINUE (answer it), EAGAIN or HOLD (block the caller)."""
    if ready or flags & GRND_INSECURE:
        return CONTINUE
    if flags & GRND_NONBLOCK:
        return EAGAIN
    return HOLD


class Readiness:
    """The readiness of a fake kernel RNG, global to its process tree.

    after: ready that many seconds after start.  on_wait: ready that many
    seconds after the first blocking getrandom().  Neither: never ready.
    """

    def __init__(self, after=None, on_wait=None, start=None):
        self.start = time.monotonic() if start is None else start
        self.on_wait = on_wait
        self.deadline = None if after is None else self.start + after
        self.ready = False

    def blocking_call(self, now):
        if self.on_wait is not None and self.deadline is None:
            self.deadline = now + self.on_wait

    def update(self, now):
        """Become ready if the time has come; return True if it just did."""
        if (not self.ready and self.deadline is not None
                and now >= self.deadline):
            self.ready = True
            return True
        return False

    def timeout(self, now):
        """Seconds until readiness; None if not scheduled or ready."""
        if self.ready or self.deadline is None:
            return None
        return max(0.0, self.deadline - now)


class Supervisor:
    """A thread that answers the getrandom() calls a filter hands over.

    Calls are answered as a kernel in the state of readiness would: held
    while the RNG is not ready, let through once it is.  The thread ends
    when no process is left under the filter, or at close().  held counts
    the calls held so far; ready says whether readiness has come.  With
    hold_limit, a process whose call has been held that long where
    readiness is not to come (never-ready) is killed; stopped counts them.
    """

    def __init__(self, listener_fd, mode, hold_limit=None):
        mode = parse_mode(mode)
        self.mode = mode
        self.listener = Listener(listener_fd)
        self.readiness = Readiness(after=mode.ready_after,
                                   on_wait=mode.ready_on_wait)
        self.hold_limit = hold_limit
        self.held = 0
        self.stopped = 0
        self._waiting = {}      # notification id -> (Notification, since)
        self._cond = threading.Condition()
        self._wakeup_r, self._wakeup_w = os.pipe()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='seccomp supervisor')
        self._thread.start()

    @property
    def ready(self):
        return self.readiness.ready

    def wait_for_hold(self, count=1, timeout=None):
        """Wait until count calls were held; return whether they were."""
        with self._cond:
            return self._cond.wait_for(lambda: self.held >= count, timeout)

    def close(self):
        """Stop answering; calls still held fail with ENOSYS."""
        if self._wakeup_w >= 0:
            os.write(self._wakeup_w, b'x')
            self._thread.join()
            os.close(self._wakeup_w)
            os.close(self._wakeup_r)
            self._wakeup_w = self._wakeup_r = -1
            self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _overdue(self, since):
        if self.hold_limit is None or self.readiness.deadline is not None:
            return None
        return since + self.hold_limit

    def _tick(self, now):
        if self.readiness.update(now):
            for nid in list(self._waiting):
                del self._waiting[nid]
                if self.listener.is_valid(nid):
                    self.listener.reply_continue(nid)
        for nid, (notif, since) in list(self._waiting.items()):
            due = self._overdue(since)
            if due is not None and now >= due:
                del self._waiting[nid]
                if self.listener.is_valid(nid):
                    self.stopped += 1
                    _kill_thread_group(notif.pid)

    def _timeout(self, now):
        dues = [due for _notif, since in self._waiting.values()
                if (due := self._overdue(since)) is not None]
        left = self.readiness.timeout(now)
        if left is not None:
            dues.append(now + left)
        if not dues:
            return None
        return int(max(0.0, min(dues) - now) * 1000) + 1

    def _handle(self):
        notif = self.listener.receive()
        if notif is None:
            return
        now = time.monotonic()
        if not notif.flags & (GRND_NONBLOCK | GRND_INSECURE):
            self.readiness.blocking_call(now)
        self._tick(now)
        answer = decide(notif.flags, self.readiness.ready)
        if answer == HOLD:
            self._waiting[notif.id] = (notif, now)
            with self._cond:
                self.held += 1
                self._cond.notify_all()
        elif answer == EAGAIN:
            self.listener.reply_error(notif.id, errno.EAGAIN)
        else:
            self.listener.reply_continue(notif.id)

    def _run(self):
        poller = select.poll()
        poller.register(self.listener.fileno(), select.POLLIN)
        poller.register(self._wakeup_r, select.POLLIN)
        while True:
            for fd, events in poller.poll(self._timeout(time.monotonic())):
                if fd == self._wakeup_r:
                    return
                if events & select.POLLIN:
                    self._handle()
                elif events & (select.POLLHUP | select.POLLERR):
                    return      # no process is left under the filter
            self._tick(time.monotonic())


def _kill_thread_group(tid):
    """SIGKILL the process of the thread tid (its Tgid in /proc)."""
    try:
        with open('/proc/%d/status' % tid) as status:
            tgid = next(int(line.split()[1]) for line in status
                        if line.startswith('Tgid:'))
        os.kill(tgid, signal.SIGKILL)
    except (OSError, StopIteration):
        pass


def start_python(mode, *args, env=None, hold_limit=None, **kw):
    """Start sys.executable with args under a fake-RNG mode.

    Return (popen, supervisor); supervisor is None for the static modes.
    Keyword arguments go to subprocess.Popen.  The filter is installed in
    the child before it executes the interpreter; in a supervised mode the
    child hands the filter's listener to a Supervisor of this process.
    Close the supervisor once the process is done with (a context manager).
    """
    return start(mode, [sys.executable, *args], env=env, hold_limit=hold_limit,
                 **kw)


def start(mode, argv, env=None, hold_limit=None, **kw):
    """Start the command argv under a fake-RNG mode, as start_python();
    hold_limit: see Supervisor."""
    mode = parse_mode(mode)
    if not mode.supervised:
        return subprocess.Popen(argv, env=env, preexec_fn=installer(mode),
                                **kw), None
    ok, reason = seccomp_available(need_notify=True)
    if not ok:
        raise unittest.SkipTest(reason)
    fprog = _sock_fprog(build_filter(mode.filter))
    _libc()
    ours, theirs = socket.socketpair()

    def install():
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        fd = _seccomp(SECCOMP_SET_MODE_FILTER,
                      SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      ctypes.addressof(fprog))
        socket.send_fds(theirs, [b'L'], [fd])
        os.close(fd)

    try:
        proc = subprocess.Popen(argv, env=env, preexec_fn=install, **kw)
        theirs.close()
        _msg, fds, _flags, _addr = socket.recv_fds(ours, 1, 1)
    finally:
        theirs.close()
        ours.close()
    return proc, Supervisor(fds[0], mode, hold_limit=hold_limit)


def blocks(*args, env=None, timeout=None):
    """Whether sys.executable with args makes a getrandom() call that a
    kernel whose RNG never gets ready holds for ever.

    Start it under 'never-ready', wait up to timeout seconds for a held
    call, then kill it.  Return (held, stdout): whether a call was held
    while the process was still running, and what it wrote by then.
    """
    proc, supervisor = start_python('never-ready', *args, env=env,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
    with supervisor, proc:
        try:
            held = supervisor.wait_for_hold(timeout=timeout)
            held = held and proc.poll() is None
        finally:
            proc.kill()
            stdout, _ = proc.communicate()
    return held, stdout


def run_python(mode, *args, env=None, timeout=None, hold_limit=None, **kw):
    """Run sys.executable with args under a fake-RNG mode.

    Return a subprocess.CompletedProcess whose output is captured as text,
    as test.support.script_helper does, with the number of getrandom()
    calls that the fake kernel held as its held attribute.  Keyword
    arguments go to subprocess.Popen.  A process still running after
    timeout seconds (a call held by 'never-ready', say) is killed and
    subprocess.TimeoutExpired raised.  With hold_limit, a process whose
    call 'never-ready' held that long is killed (returncode -SIGKILL), and
    the result's stopped attribute counts such processes.
    """
    kw.setdefault('stdout', subprocess.PIPE)
    kw.setdefault('stderr', subprocess.PIPE)
    kw.setdefault('text', True)
    proc, supervisor = start_python(mode, *args, env=env, hold_limit=hold_limit,
                                    **kw)
    try:
        with proc:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
    finally:
        held = stopped = 0
        if supervisor is not None:
            supervisor.close()
            held, stopped = supervisor.held, supervisor.stopped
    result = subprocess.CompletedProcess(proc.args, proc.returncode,
                                         stdout, stderr)
    result.held = held
    result.stopped = stopped
    return result


def rng_state():
    """How getrandom(GRND_NONBLOCK) answers in this process.

    Return 'ready', 'not-ready' (EAGAIN), 'enosys', 'eperm' or, for another
    error, its errno name in lower case; None without os.getrandom().  The
    environment of the test run decides: a not-ready kernel, or a filter
    the tests themselves run under.
    """
    getrandom = getattr(os, 'getrandom', None)
    if getrandom is None:
        return None
    try:
        getrandom(1, os.GRND_NONBLOCK)
    except BlockingIOError:
        return 'not-ready'
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno)).lower()
    return 'ready'


_USAGE = ('usage: python -m test.support.seccomp_helper MODE -- ARGV...\n'
          'MODE is one of: ready, never-ready, ready-on-wait[=SECONDS], '
          'ready-after=SECONDS, enosys, eperm')


def main(argv=None):
    """Run ARGV under MODE: a static mode executes ARGV in this process, a
    supervised one runs it as a child and exits with its status."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        if len(argv) < 3 or argv[1] != '--':
            raise ValueError('no MODE -- ARGV')
        mode = parse_mode(argv[0])
    except ValueError as exc:
        print('seccomp_helper: %s\n%s' % (exc, _USAGE), file=sys.stderr)
        return 2
    command = argv[2:]
    if mode.filter is not None:
        ok, reason = seccomp_available(need_notify=mode.supervised)
        if not ok:
            print('seccomp_helper: %s' % reason, file=sys.stderr)
            return 2
    # Python ignores SIGPIPE and SIGXFSZ; the command gets the defaults.
    for name in ('SIGPIPE', 'SIGXFSZ'):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    if mode.supervised:
        try:
            proc, supervisor = start(mode, command)
        except OSError as exc:
            print('seccomp_helper: cannot execute %s: %s' % (command[0], exc),
                  file=sys.stderr)
            return 127
        with supervisor, proc:
            while True:
                try:
                    returncode = proc.wait()
                    break
                except KeyboardInterrupt:
                    pass    # the command got the SIGINT of the terminal too
        return returncode if returncode >= 0 else 128 - returncode
    if mode.filter is not None:
        try:
            install_filter(build_filter(mode.filter))
        except OSError as exc:
            print('seccomp_helper: cannot install the %s filter: %s'
                  % (mode.filter, exc), file=sys.stderr)
            return 2
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print('seccomp_helper: cannot execute %s: %s' % (command[0], exc),
              file=sys.stderr)
        return 127


if __name__ == '__main__':
    sys.exit(main())
