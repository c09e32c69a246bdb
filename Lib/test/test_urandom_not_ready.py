"""Tests for os.urandom(), os.getrandom() and interpreter start-up while the
system random number generator is not ready (PEP 522).

Early at boot, getrandom(GRND_NONBLOCK) fails with EAGAIN until the kernel
has collected enough entropy.  That cannot be waited for on a test machine,
so the subprocess tests run the interpreter under a seccomp filter that
makes getrandom() answer as such a kernel does (test.support.seccomp_helper).
"""

import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from test import support
from test.support import seccomp_helper


NOT_READY = ('system random number generator is not ready; '
             'see secrets.token_bytes()')
WARNING_RE = re.compile(r'\Athe system random number generator is not ready;'
                        r'.*untrusted data')


def clean_env(**changes):
    """os.environ without PYTHONHASHSEED (it skips the seeding under
    test), updated with changes."""
    env = dict(os.environ)
    env.pop('PYTHONHASHSEED', None)
    env.update(changes)
    return env


def run_python(mode, code, **changes):
    return seccomp_helper.run_python(mode, '-c', code,
                                     env=clean_env(**changes),
                                     timeout=support.SHORT_TIMEOUT,
                                     hold_limit=seccomp_helper.HOLD_LIMIT)


def warning_lines(stderr):
    """The start-up warnings in stderr, without their "Python: warning: "
    prefix."""
    prefix = 'Python: warning: '
    return [line[len(prefix):] for line in stderr.splitlines()
            if line.startswith(prefix)]


@support.requires_subprocess()
@seccomp_helper.requires_seccomp
class URandomNotReadyTests(unittest.TestCase):
    """os.urandom() and random.SystemRandom raise instead of blocking."""

    def test_urandom_raises_blocking_io_error(self):
        code = textwrap.dedent("""
            import os
            try:
                os.urandom(16)
            except BlockingIOError as exc:
                print(exc.errno, exc.strerror, sep='\\n')
            else:
                print('no error')
        """)
        proc = run_python('never-ready', code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.splitlines(),
                         [str(errno.EAGAIN), NOT_READY])

    def test_urandom_zero_bytes(self):
        # Nothing to read, nothing to refuse.
        proc = run_python('never-ready', 'import os; print(os.urandom(0))')
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "b''\n")

    def test_systemrandom_raises(self):
        code = textwrap.dedent("""
            import random
            rng = random.SystemRandom()
            calls = {
                'random': rng.random,
                'getrandbits': lambda: rng.getrandbits(8),
                'randbytes': lambda: rng.randbytes(8),
                'randrange': lambda: rng.randrange(10),
                'choice': lambda: rng.choice('abc'),
                'shuffle': lambda: rng.shuffle([1, 2, 3]),
                'sample': lambda: rng.sample(range(10), 3),
                'uniform': lambda: rng.uniform(0, 1),
            }
            for name, call in calls.items():
                try:
                    call()
                except BlockingIOError as exc:
                    print(name, exc.errno)
                else:
                    print(name, 'no error')
        """)
        proc = run_python('never-ready', code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 8)
        for line in lines:
            name, _, result = line.partition(' ')
            with self.subTest(method=name):
                self.assertEqual(result, str(errno.EAGAIN))

    def skip_unless_getrandom_works(self):
        # The filter of the child hands blocking calls to a supervisor that
        # lets them through once ready: they get what getrandom() answers
        # here.
        state = seccomp_helper.rng_state()
        if state in ('enosys', 'eperm'):
            self.skipTest(f'getrandom() fails here with {state.upper()}')

    def test_urandom_works_once_ready(self):
        # Once the kernel is ready, which this fake gets when someone
        # waits, os.urandom() answers as without the patch set.
        self.skip_unless_getrandom_works()
        code = textwrap.dedent("""
            import os
            for attempt in range(2):
                try:
                    print(len(os.urandom(16)))
                except BlockingIOError:
                    print('not ready')
                    os.getrandom(1)
        """)
        proc = run_python('ready-on-wait', code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.splitlines(), ['not ready', '16'])
        self.assertEqual(proc.held, 1)

    def test_blocking_getrandom_waits_instead_of_raising(self):
        # Without GRND_NONBLOCK, os.getrandom() first asks without blocking
        # (a request of up to 256 bytes) and makes the blocking call only
        # if the RNG is not ready: the EAGAIN of the first call must never
        # reach the caller.
        self.skip_unless_getrandom_works()
        for size in (16, 300):
            with self.subTest(size=size):
                proc = run_python('ready-on-wait',
                                  f'import os; print(len(os.getrandom({size})))')
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout, f'{size}\n')
                self.assertEqual(proc.held, 1)

        proc = run_python('never-ready', textwrap.dedent("""
            import os
            try:
                os.getrandom(16, os.GRND_NONBLOCK)
            except BlockingIOError as exc:
                print(exc.errno)
        """))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, f'{errno.EAGAIN}\n')

    def test_blocking_getrandom_blocks_while_not_ready(self):
        self.skip_unless_getrandom_works()
        held, stdout = seccomp_helper.blocks(
            '-c', 'import os; print(os.getrandom(16))', env=clean_env(),
            timeout=support.SHORT_TIMEOUT)
        self.assertTrue(held)
        self.assertEqual(stdout, b'')

    def test_getrandom_unusable_falls_back_to_dev_urandom(self):
        # Kernels before 3.17 (ENOSYS) and old seccomp profiles (EPERM):
        # the RNG's state is unknown, /dev/urandom is read as before.
        if not os.path.exists('/dev/urandom'):
            self.skipTest('no /dev/urandom')
        for mode in ('enosys', 'eperm'):
            with self.subTest(mode=mode):
                proc = run_python(mode, 'import os; print(len(os.urandom(16)))')
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout, '16\n')
                self.assertEqual(warning_lines(proc.stderr), [])


@support.requires_subprocess()
@seccomp_helper.requires_seccomp
class URandomPolicyTests(unittest.TestCase):
    """-X urandom=raise|wait and PYTHONURANDOM: what os.urandom() does while
    the system RNG is not ready."""

    code = textwrap.dedent("""
        import os, random, uuid
        for name, call in (('urandom', lambda: os.urandom(8)),
                           ('SystemRandom', random.SystemRandom().random),
                           ('uuid4', uuid.uuid4)):
            try:
                call()
            except BlockingIOError:
                print(name, 'raises')
            else:
                print(name, 'works')
    """)

    RAISES = ['urandom raises', 'SystemRandom raises', 'uuid4 raises']
    WORKS = ['urandom works', 'SystemRandom works', 'uuid4 works']

    def setUp(self):
        if seccomp_helper.rng_state() in ('enosys', 'eperm'):
            self.skipTest('cannot stage a kernel that gets ready here')

    def run_policy(self, *args, mode='ready-on-wait', **env):
        proc = seccomp_helper.run_python(mode, *args, '-c', self.code,
                                         env=clean_env(**env),
                                         timeout=support.SHORT_TIMEOUT,
                                         hold_limit=seccomp_helper.HOLD_LIMIT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def test_default_raises(self):
        proc = self.run_policy()
        self.assertEqual(proc.stdout.splitlines(), self.RAISES)
        self.assertEqual(proc.held, 0)

    def test_ways_to_wait(self):
        for args, env in ((['-X', 'urandom=wait'], {}),
                          ([], {'PYTHONURANDOM': 'wait'}),
                          (['-X', 'urandom=wait'], {'PYTHONURANDOM': 'raise'})):
            with self.subTest(args=args, env=env):
                proc = self.run_policy(*args, **env)
                self.assertEqual(proc.stdout.splitlines(), self.WORKS)
                # The first call waited; the kernel was ready after it.
                self.assertEqual(proc.held, 1)

    def test_ways_to_raise(self):
        for args, env in ((['-X', 'urandom=raise'], {}),
                          ([], {'PYTHONURANDOM': 'raise'}),
                          ([], {'PYTHONURANDOM': ''}),
                          (['-X', 'urandom=raise'], {'PYTHONURANDOM': 'wait'}),
                          (['-E'], {'PYTHONURANDOM': 'wait'}),
                          (['-I'], {'PYTHONURANDOM': 'wait'})):
            with self.subTest(args=args, env=env):
                proc = self.run_policy(*args, **env)
                self.assertEqual(proc.stdout.splitlines(), self.RAISES)
                self.assertEqual(proc.held, 0)

    def test_wait_blocks_on_a_never_ready_kernel(self):
        held, stdout = seccomp_helper.blocks(
            '-X', 'urandom=wait', '-c', 'import os; print(os.urandom(8))',
            env=clean_env(), timeout=support.SHORT_TIMEOUT)
        self.assertTrue(held)
        self.assertEqual(stdout, b'')

    def test_startup_never_blocks(self):
        # Whatever the policy, the hash secret and the seed of random are
        # made without waiting: only os.urandom() waits.
        code = 'import random; print(random.random() < 1, hash("x") != 0)'
        for policy in ('raise', 'wait'):
            with self.subTest(policy=policy):
                proc = run_python('never-ready', code, PYTHONURANDOM=policy)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout, 'True True\n')
                self.assertEqual(proc.held, 0)
                self.assertEqual(len(warning_lines(proc.stderr)), 1)

    def test_bad_values_refused_at_startup(self):
        for args, env, name in ((['-X', 'urandom=maybe'], {}, '-X urandom'),
                                (['-X', 'urandom'], {}, '-X urandom'),
                                ([], {'PYTHONURANDOM': 'Wait'},
                                 'PYTHONURANDOM')):
            with self.subTest(args=args, env=env):
                proc = seccomp_helper.run_python(
                    'ready', *args, '-c', 'print("started")',
                    env=clean_env(**env), timeout=support.SHORT_TIMEOUT)
                self.assertEqual(proc.returncode, 1)
                self.assertEqual(proc.stdout, '')
                self.assertIn('Fatal Python error', proc.stderr)
                self.assertIn(name, proc.stderr)
                self.assertIn('"raise" or "wait"', proc.stderr)

    def test_children_inherit_the_policy(self):
        # The variable as every variable; -X urandom through the interpreter
        # flags that subprocess gives to the children of multiprocessing.
        code = textwrap.dedent("""
            import subprocess, sys
            print(subprocess._args_from_interpreter_flags())
            print(subprocess.run([sys.executable, '-c', 'import os; '
                                  'print(len(os.urandom(4)))'],
                                 capture_output=True, text=True).stdout)
        """)
        proc = seccomp_helper.run_python(
            'ready-on-wait', '-X', 'urandom=wait', '-c', code,
            env=clean_env(), timeout=support.SHORT_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("'-X', 'urandom=wait'", proc.stdout)
        proc = seccomp_helper.run_python(
            'ready-on-wait', '-c', code, env=clean_env(PYTHONURANDOM='wait'),
            timeout=support.SHORT_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.splitlines()[1], '4')
        self.assertEqual(proc.held, 1)

    def test_help_names_the_option(self):
        for option, text in (('--help-xoptions', '-X urandom'),
                             ('--help-env', 'PYTHONURANDOM')):
            proc = subprocess.run([sys.executable, option],
                                  capture_output=True, text=True)
            if proc.returncode:
                # 3.11 has no --help-xoptions: one -X lists everything
                proc = subprocess.run([sys.executable, '-X', 'help'] if
                                      option == '--help-xoptions' else
                                      [sys.executable, '-h', '-h'],
                                      capture_output=True, text=True)
            with self.subTest(option=option):
                self.assertIn(text, proc.stdout + proc.stderr)


@support.requires_subprocess()
@seccomp_helper.requires_seccomp
class StartupNotReadyTests(unittest.TestCase):
    """Start-up and the random module neither block nor fail."""

    code = 'import random; print(hash("abc"), random.random())'

    def test_startup_warns_once(self):
        proc = run_python('never-ready', self.code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        warnings = warning_lines(proc.stderr)
        self.assertEqual(len(warnings), 1, proc.stderr)
        self.assertRegex(warnings[0], WARNING_RE)
        # One line on stderr, nothing else: random seeds silently.
        self.assertEqual(proc.stderr.count('\n'), 1, proc.stderr)

    def test_no_warning_with_pythonhashseed(self):
        outputs = set()
        for _ in range(2):
            proc = run_python('never-ready', self.code,
                              PYTHONHASHSEED='1234')
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stderr, '')
            outputs.add(proc.stdout.split()[0])
        # The seed is the one asked for.
        self.assertEqual(len(outputs), 1)

    def test_seeds_differ_between_runs(self):
        # The weaker seed still differs from one process to the next.
        hashes = set()
        randoms = set()
        for _ in range(3):
            proc = run_python('never-ready', self.code)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            h, r = proc.stdout.split()
            hashes.add(h)
            randoms.add(r)
        self.assertEqual(len(hashes), 3)
        self.assertEqual(len(randoms), 3)

    def test_no_warning_when_rng_state_unknown(self):
        for mode in ('enosys', 'eperm'):
            with self.subTest(mode=mode):
                proc = run_python(mode, self.code)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stderr, '')


@support.requires_subprocess()
@unittest.skipUnless(sys.platform.startswith('linux'), 'Linux only')
class StartupFilesTests(unittest.TestCase):
    """Which files a not-ready start-up opens, seen with strace."""

    code = 'import random; random.random(); print(hash("abc"))'

    def setUp(self):
        self.strace_path = shutil.which('strace')
        if self.strace_path is None:
            self.skipTest('needs strace to see what the interpreter opens')
        proc = subprocess.run([self.strace_path, '-o', os.devnull, 'true'],
                              capture_output=True, text=True)
        if proc.returncode:
            self.skipTest('strace cannot trace here: %s'
                          % proc.stderr.strip())

    def run_traced(self, *strace_args, mode='ready'):
        """Run self.code under strace, both under the filter of mode;
        return the completed process and the open() calls made after the
        last execve()."""
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, 'strace.log')
            cmd = [self.strace_path, '-f', '-qq', '-o', log,
                   '-e', 'trace=execve,open,openat,openat2,getrandom',
                   *strace_args,
                   sys.executable, '-c', self.code]
            proc, supervisor = seccomp_helper.start(
                mode, cmd, env=clean_env(), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            with proc:
                try:
                    stdout, stderr = proc.communicate(
                        timeout=support.SHORT_TIMEOUT)
                finally:
                    proc.kill()
                    if supervisor is not None:
                        supervisor.close()
            proc = subprocess.CompletedProcess(cmd, proc.returncode, stdout,
                                               stderr)
            with open(log, encoding='utf-8', errors='replace') as f:
                lines = f.readlines()
        execs = [i for i, line in enumerate(lines)
                 if 'execve(' in line and ' = 0' in line]
        self.assertTrue(execs, 'no execve() in the strace log')
        opens = [line for line in lines[execs[-1]:] if 'open' in line]
        return proc, opens

    def dev_urandom_opens(self, opens):
        return [line for line in opens if '"/dev/urandom"' in line]

    @seccomp_helper.requires_seccomp
    def test_no_dev_urandom_at_not_ready_startup(self):
        proc, opens = self.run_traced(mode='never-ready')
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.dev_urandom_opens(opens), [])
        self.assertEqual(len(warning_lines(proc.stderr)), 1, proc.stderr)

    def test_weak_seed_without_grnd_insecure(self):
        # Every getrandom() fails with EAGAIN, GRND_INSECURE included, as
        # with kernels before 5.6 (which answer EINVAL to that flag): the
        # seeds come from AT_RANDOM, clocks, pid and ASLR.
        args = ['-e', 'inject=getrandom:error=EAGAIN']
        proc = subprocess.run([self.strace_path, '-o', os.devnull, *args,
                               'true'], capture_output=True, text=True)
        if proc.returncode:
            self.skipTest('strace cannot inject errors: %s'
                          % proc.stderr.strip())
        hashes = set()
        for _ in range(3):
            proc, opens = self.run_traced(*args)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(self.dev_urandom_opens(opens), [])
            self.assertEqual(len(warning_lines(proc.stderr)), 1,
                             proc.stderr)
            hashes.add(proc.stdout)
        self.assertEqual(len(hashes), 3)


@unittest.skipUnless(hasattr(os, 'getrandom'), 'need os.getrandom()')
class GetrandomGILTests(unittest.TestCase):

    def test_blocking_getrandom_releases_gil(self):
        # While os.getrandom() waits in the kernel for the RNG, other
        # threads must run.  A kernel that is not ready cannot be staged
        # here, but a large request keeps the same blocking call busy in
        # the kernel long enough to see whether they do.
        state = seccomp_helper.rng_state()
        if state != 'ready':
            # Not ready: the test run itself runs under a (fake) kernel whose
            # RNG may never get ready, where a blocking call never returns.
            self.skipTest('needs a ready system random number generator; '
                          f'getrandom(GRND_NONBLOCK) here: {state}')
        os.getrandom(1)
        size = 1 << 20
        while True:
            start = time.perf_counter()
            os.getrandom(size)
            elapsed = time.perf_counter() - start
            if elapsed >= 0.1 or size >= 256 << 20:
                break
            size *= 2
        if elapsed < 0.02:
            self.skipTest('getrandom() returns too fast to measure')

        ticks = []
        stop = threading.Event()

        def ticker():
            while not stop.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0.001)

        thread = threading.Thread(target=ticker)
        thread.start()
        try:
            while not ticks:
                time.sleep(0.001)
            start = time.perf_counter()
            os.getrandom(size)
            end = time.perf_counter()
        finally:
            stop.set()
            thread.join()
        during = [t for t in ticks if start < t < end]
        # Holding the GIL, the call lets the ticker in at most at its very
        # start and end; without it, the ticker runs all along.
        self.assertGreaterEqual(
            len(during), 10,
            f'{len(during)} ticks during a {end - start:.3f} s call')

    def test_nonblocking_getrandom(self):
        state = seccomp_helper.rng_state()
        if state != 'ready':
            self.skipTest('needs a ready system random number generator; '
                          f'getrandom(GRND_NONBLOCK) here: {state}')
        self.assertEqual(len(os.getrandom(16, os.GRND_NONBLOCK)), 16)


if __name__ == '__main__':
    unittest.main()
