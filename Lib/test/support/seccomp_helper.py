"""Seccomp filters that fake a Linux kernel RNG which is not ready yet.

The tests of os.urandom(), random.SystemRandom and secrets need to see what
happens before the kernel's random number generator is initialized, which
never happens on a running test machine.  A seccomp filter can make
getrandom() answer as an early-boot kernel would:

* ``'never-ready'``: getrandom() with GRND_NONBLOCK fails with EAGAIN,
  GRND_INSECURE and blocking calls go to the kernel (which is ready, so a
  blocking call returns at once).
* ``'enosys'`` and ``'eperm'``: every getrandom() fails with ENOSYS (kernels
  before 3.17) or EPERM (old container profiles).
* ``'notify'``: every getrandom() is handed to a user-space supervisor
  (SECCOMP_RET_USER_NOTIF); see the harness for one.
* ``'ready'``: no filter at all.

Every other system call is allowed.  The filter is inherited by threads
created after it is installed, by fork() and by exec(), so a whole process
tree sees the same fake kernel.

Example::

    from test.support import seccomp_helper

    @seccomp_helper.requires_seccomp
    def test_urandom_not_ready(self):
        proc = seccomp_helper.run_python(
            'never-ready', '-c', 'import os; os.urandom(1)')
        self.assertIn('BlockingIOError', proc.stderr)

run_python() installs the filter in the child between fork() and exec()
(installer() gives that function to other subprocess calls), so that no other
interpreter runs between the test and the command: one started as a wrapper
would itself warn on stderr while the RNG of the test run is not ready.  From
the command line, ``python -m test.support.seccomp_helper MODE -- ARGV``
installs the filter and executes ARGV.

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

import ctypes
import ctypes.util
import errno
import functools
import os
import platform
import signal
import struct
import subprocess
import sys
import unittest


__all__ = [
    'MODES', 'STATIC_MODES',
    'seccomp_available', 'requires_seccomp', 'build_filter',
    'install_filter', 'installer', 'run_python', 'rng_state',
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

MODES = ('ready', 'never-ready', 'enosys', 'eperm', 'notify')
# The modes a filter answers on its own, without a supervisor.
STATIC_MODES = ('ready', 'never-ready', 'enosys', 'eperm')


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


def build_filter(mode):
    """Return the sock_filter program (bytes) of a fake-RNG mode.

    mode is 'never-ready', 'enosys', 'eperm' or 'notify' (see the module
    documentation); 'ready' has no filter and raises ValueError like any
    unknown mode.  The program checks seccomp_data.arch first; system calls
    of unknown architectures and all other system calls are allowed.
    """
    if mode == 'never-ready':
        def getrandom(asm):
            asm.load(_arg_low_offset(2))
            # GRND_INSECURE never blocks, even with GRND_NONBLOCK.
            asm.jump(BPF_JSET, GRND_INSECURE, jt='pass')
            asm.jump(BPF_JSET, GRND_NONBLOCK, jt='eagain')
            asm.label('pass')
            asm.ret(SECCOMP_RET_ALLOW)
            asm.label('eagain')
            asm.ret(_errno_action(errno.EAGAIN))
    elif mode == 'enosys':
        def getrandom(asm):
            asm.ret(_errno_action(errno.ENOSYS))
    elif mode == 'eperm':
        def getrandom(asm):
            asm.ret(_errno_action(errno.EPERM))
    elif mode == 'notify':
        def getrandom(asm):
            asm.ret(SECCOMP_RET_USER_NOTIF)
    else:
        raise ValueError('no filter for mode %r (expected one of %s)'
                         % (mode, ', '.join(m for m in MODES
                                            if m != 'ready')))

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
    """Return a function that installs the filter of mode on the calling
    thread, for subprocess's preexec_fn; None for 'ready'.

    The program is built and the C library loaded now, before fork(): the
    function only makes the two system calls.  Raise unittest.SkipTest if
    seccomp filters cannot be installed here, ValueError if mode needs a
    supervisor ('notify') or is unknown.
    """
    if mode not in STATIC_MODES:
        raise ValueError('mode %r is not one of %s'
                         % (mode, ', '.join(STATIC_MODES)))
    if mode == 'ready':
        return None
    ok, reason = seccomp_available()
    if not ok:
        raise unittest.SkipTest(reason)
    fprog = _sock_fprog(build_filter(mode))
    _libc()

    def install():
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _seccomp(SECCOMP_SET_MODE_FILTER, 0, ctypes.addressof(fprog))

    return install


def run_python(mode, *args, env=None, **kw):
    """Run sys.executable with args under a fake-RNG mode.

    Return a subprocess.CompletedProcess whose output is captured as text,
    as test.support.script_helper does; keyword arguments go to
    subprocess.run().  The filter is installed in the child before it
    executes the interpreter (see installer()).
    """
    kw.setdefault('capture_output', True)
    kw.setdefault('text', True)
    return subprocess.run([sys.executable, *args], env=env,
                          preexec_fn=installer(mode), **kw)


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
          'MODE is one of: %s' % ', '.join(STATIC_MODES))


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if len(argv) < 3 or argv[1] != '--' or argv[0] not in STATIC_MODES:
        print(_USAGE, file=sys.stderr)
        return 2
    mode, command = argv[0], argv[2:]
    if mode != 'ready':
        ok, reason = seccomp_available()
        if not ok:
            print('seccomp_helper: %s' % reason, file=sys.stderr)
            return 2
        try:
            install_filter(build_filter(mode))
        except OSError as exc:
            print('seccomp_helper: cannot install the %s filter: %s'
                  % (mode, exc), file=sys.stderr)
            return 2
    # Python ignores SIGPIPE and SIGXFSZ; the command gets the defaults.
    for name in ('SIGPIPE', 'SIGXFSZ'):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print('seccomp_helper: cannot execute %s: %s' % (command[0], exc),
              file=sys.stderr)
        return 127


if __name__ == '__main__':
    sys.exit(main())
