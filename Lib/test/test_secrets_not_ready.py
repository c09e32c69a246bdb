"""Tests for the secrets module while the system random number generator is
not ready (PEP 522): secrets.wait_for_system_rng(), and every function and
the SystemRandom class of secrets waiting for the RNG instead of raising
BlockingIOError.

The waiting itself is tested in this process with a stand-in for the RNG
(test.support.rng_helper) and mocks of the system calls, for real on a FIFO
that stands in for /dev/random, and in child interpreters under a fake
not-ready kernel (test.support.seccomp_helper).
"""

import errno
import inspect
import os
import random
import secrets
import signal
import tempfile
import textwrap
import threading
import time
import unittest
from test import support
from test.support import seccomp_helper
from test.support.rng_helper import NotReadyRNG
from unittest import mock


def not_ready():
    return BlockingIOError(errno.EAGAIN, 'not ready')


class SecretsWaitTests(unittest.TestCase):
    """Every function of secrets waits, once, instead of raising."""

    calls = {
        'token_bytes': lambda: secrets.token_bytes(16),
        'token_bytes()': lambda: secrets.token_bytes(),
        'token_hex': lambda: secrets.token_hex(16),
        'token_urlsafe': lambda: secrets.token_urlsafe(16),
        'randbits': lambda: secrets.randbits(20),
        'randbelow': lambda: secrets.randbelow(1000),
        'choice': lambda: secrets.choice('abcdef'),
    }

    def test_functions_wait(self):
        for name, call in self.calls.items():
            with self.subTest(function=name), NotReadyRNG().installed() as rng:
                call()
                self.assertEqual(rng.waits, 1)

    def test_functions_do_not_wait_when_ready(self):
        for name, call in self.calls.items():
            with self.subTest(function=name), NotReadyRNG().installed() as rng:
                rng.ready = True
                call()
                self.assertEqual(rng.waits, 0)

    def test_results_after_wait(self):
        with NotReadyRNG().installed():
            self.assertEqual(secrets.token_bytes(3), b'\x5a\x5a\x5a')
        with NotReadyRNG().installed():
            self.assertEqual(secrets.token_hex(2), '5a5a')
        with NotReadyRNG().installed():
            self.assertEqual(secrets.randbits(12), 0x5a5)

    def test_error_after_wait_propagates(self):
        # Once a wait returned, the kernel's RNG is ready and os.urandom()
        # succeeds.  Should it raise all the same, the error gets through:
        # no other source of bytes, no second wait, no loop.
        for name, call in self.calls.items():
            with self.subTest(function=name), \
                 NotReadyRNG(ready_after_wait=False).installed() as rng:
                with self.assertRaises(BlockingIOError):
                    call()
                self.assertEqual(rng.waits, 1)
                self.assertEqual(rng.calls, 2)

    def test_argument_errors_unchanged(self):
        with NotReadyRNG().installed() as rng:
            self.assertRaises(ValueError, secrets.token_bytes, -1)
            self.assertRaises(ValueError, secrets.randbits, -1)
            self.assertRaises(ValueError, secrets.randbelow, 0)
            self.assertRaises(IndexError, secrets.choice, [])
            self.assertEqual(rng.waits, 0)


class SystemRandomTests(unittest.TestCase):
    """secrets.SystemRandom waits; random.SystemRandom keeps raising."""

    methods = {
        'random': lambda r: r.random(),
        'getrandbits': lambda r: r.getrandbits(8),
        'randbytes': lambda r: r.randbytes(8),
        'randrange': lambda r: r.randrange(10),
        'randint': lambda r: r.randint(1, 6),
        'choice': lambda r: r.choice('abc'),
        'choices': lambda r: r.choices('abc', k=2),
        'shuffle': lambda r: r.shuffle([1, 2, 3]),
        'sample': lambda r: r.sample(range(10), 3),
        'uniform': lambda r: r.uniform(0, 1),
        'gauss': lambda r: r.gauss(),
        'binomialvariate': lambda r: r.binomialvariate(5, 0.5),
    }

    def available(self, rng):
        return {name: call for name, call in self.methods.items()
                if hasattr(rng, name)}

    def test_is_a_random_systemrandom(self):
        rng = secrets.SystemRandom()
        self.assertIsInstance(rng, random.SystemRandom)
        self.assertIsNot(secrets.SystemRandom, random.SystemRandom)
        self.assertIn('SystemRandom', secrets.__all__)

    def test_methods_wait(self):
        rng = secrets.SystemRandom()
        for name, call in self.available(rng).items():
            with self.subTest(method=name), NotReadyRNG().installed() as fake:
                call(rng)
                self.assertEqual(fake.waits, 1)

    def test_methods_do_not_wait_when_ready(self):
        rng = secrets.SystemRandom()
        for name, call in self.available(rng).items():
            with self.subTest(method=name), NotReadyRNG().installed() as fake:
                fake.ready = True
                call(rng)
                self.assertEqual(fake.waits, 0)

    def test_random_systemrandom_still_raises(self):
        # PEP 522 keeps random.SystemRandom raising, for code that wants
        # to decide what to do itself.
        rng = random.SystemRandom()
        for name, call in self.available(rng).items():
            with self.subTest(method=name), NotReadyRNG().installed() as fake:
                with self.assertRaises(BlockingIOError):
                    call(rng)
                self.assertEqual(fake.waits, 0)

    def test_unsupported_methods_unchanged(self):
        rng = secrets.SystemRandom()
        self.assertIsNone(rng.seed(42))
        self.assertRaises(NotImplementedError, rng.getstate)
        self.assertRaises(NotImplementedError, rng.setstate, None)

    def test_methods_keep_random_signatures_and_docs(self):
        for name in ('random', 'getrandbits', 'randbytes'):
            with self.subTest(method=name):
                ours = getattr(secrets.SystemRandom, name)
                theirs = getattr(random.SystemRandom, name)
                self.assertEqual(ours.__name__, name)
                self.assertEqual(inspect.signature(ours),
                                 inspect.signature(theirs))
                self.assertEqual(inspect.getdoc(ours), inspect.getdoc(theirs))
        # Keyword arguments work as with random.SystemRandom.  The
        # stand-in RNG keeps this test independent of the machine's.
        with NotReadyRNG().installed() as fake:
            self.assertEqual(secrets.SystemRandom().getrandbits(k=8), 0x5a)
            self.assertEqual(secrets.SystemRandom().randbytes(n=3),
                             b'\x5a\x5a\x5a')
            self.assertEqual(fake.waits, 1)


class FakeGetrandom:
    """os.getrandom() of a kernel whose RNG is in a given state."""

    def __init__(self, nonblocking_error=None, blocking_error=None):
        self.nonblocking_error = nonblocking_error
        self.blocking_error = blocking_error
        self.calls = []

    def __call__(self, size, flags=0):
        self.calls.append(flags)
        if flags & os.GRND_NONBLOCK:
            error = self.nonblocking_error
        else:
            error = self.blocking_error
        if error is not None:
            raise error
        return b'\x5a' * size


@unittest.skipUnless(hasattr(os, 'getrandom'), 'need os.getrandom()')
class WaitForSystemRNGTests(unittest.TestCase):

    def setUp(self):
        # Each test starts from a process that has not seen the RNG ready.
        patcher = mock.patch('secrets._system_rng_ready', False)
        patcher.start()
        self.addCleanup(patcher.stop)

    def wait(self, getrandom, readable=True):
        """Call wait_for_system_rng() with getrandom and the /dev/random
        poll mocked; return the paths it polled."""
        polled = []

        def wait_readable(path):
            polled.append(path)
            return readable

        with mock.patch('secrets._getrandom', getrandom), \
             mock.patch('secrets._wait_readable', wait_readable), \
             mock.patch('time.sleep', side_effect=AssertionError('slept')):
            secrets.wait_for_system_rng()
        return polled

    def test_ready_returns_at_once(self):
        if seccomp_helper.rng_state() == 'ready':
            secrets.wait_for_system_rng()   # the RNG of the test machine
            secrets._system_rng_ready = False
        getrandom = FakeGetrandom()
        self.assertEqual(self.wait(getrandom), [])
        self.assertEqual(getrandom.calls, [os.GRND_NONBLOCK])

    def test_not_ready_blocks_in_getrandom(self):
        getrandom = FakeGetrandom(nonblocking_error=not_ready())
        self.assertEqual(self.wait(getrandom), [])
        self.assertEqual(getrandom.calls, [os.GRND_NONBLOCK, 0])

    def test_getrandom_unusable_polls_dev_random(self):
        for err in (errno.ENOSYS, errno.EPERM):
            with self.subTest(errno=errno.errorcode[err]):
                secrets._system_rng_ready = False
                getrandom = FakeGetrandom(
                    nonblocking_error=OSError(err, os.strerror(err)))
                self.assertEqual(self.wait(getrandom), ['/dev/random'])
        # Refused only once the RNG is not ready (a seccomp profile that
        # forbids blocking calls).
        secrets._system_rng_ready = False
        getrandom = FakeGetrandom(
            nonblocking_error=not_ready(),
            blocking_error=OSError(errno.EPERM, 'refused'))
        self.assertEqual(self.wait(getrandom), ['/dev/random'])

    def test_readiness_is_remembered(self):
        # The RNG never goes back to not ready: once a wait returned, the
        # next ones ask nothing.  Before Linux 5.6, /dev/random follows an
        # entropy estimate that goes down again, so polling it a second
        # time could wait on a machine seeded long ago.
        for nonblocking_error in (None, not_ready(),
                                  OSError(errno.ENOSYS, 'no'),
                                  OSError(errno.EPERM, 'no')):
            with self.subTest(nonblocking_error=nonblocking_error):
                secrets._system_rng_ready = False
                getrandom = FakeGetrandom(nonblocking_error=nonblocking_error)
                self.wait(getrandom)
                calls = len(getrandom.calls)
                self.assertEqual(self.wait(getrandom), [])
                self.assertEqual(len(getrandom.calls), calls)

    def test_failed_wait_is_not_remembered(self):
        getrandom = FakeGetrandom(nonblocking_error=not_ready(),
                                  blocking_error=KeyboardInterrupt())
        with self.assertRaises(KeyboardInterrupt):
            self.wait(getrandom)
        self.assertFalse(secrets._system_rng_ready)

    def test_other_errors_propagate(self):
        getrandom = FakeGetrandom(
            nonblocking_error=OSError(errno.EINVAL, 'invalid'))
        with self.assertRaises(OSError) as cm:
            self.wait(getrandom)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertFalse(secrets._system_rng_ready)

    def test_keyboard_interrupt_while_blocked(self):
        # os.getrandom() runs the signal handlers when a signal interrupts
        # it; the exception they raise must get through.
        getrandom = FakeGetrandom(nonblocking_error=not_ready(),
                                  blocking_error=KeyboardInterrupt())
        with self.assertRaises(KeyboardInterrupt):
            self.wait(getrandom)
        urandom = mock.Mock(side_effect=not_ready())
        with mock.patch('secrets._getrandom', getrandom), \
             mock.patch('random._urandom', urandom):
            with self.assertRaises(KeyboardInterrupt):
                secrets.token_bytes(8)

    def test_sleep_loop_last_resort(self):
        # Neither getrandom() nor /dev/random: retry os.urandom(), sleeping
        # longer and longer in between.
        answers = [not_ready()] * 8 + [b'x']
        urandom = mock.Mock(side_effect=answers)
        sleep = mock.Mock()
        with mock.patch('secrets._getrandom', None), \
             mock.patch('secrets._wait_readable', return_value=False), \
             mock.patch('os.urandom', urandom), \
             mock.patch('time.sleep', sleep):
            secrets.wait_for_system_rng()
        self.assertEqual(urandom.call_count, 9)
        delays = [c.args[0] for c in sleep.call_args_list]
        self.assertEqual(len(delays), 8)
        self.assertEqual(delays, sorted(delays))
        self.assertLessEqual(delays[0], 0.001)
        self.assertLessEqual(delays[-1], 0.1)

    def test_sleep_loop_keyboard_interrupt(self):
        urandom = mock.Mock(side_effect=not_ready())
        with mock.patch('secrets._getrandom', None), \
             mock.patch('secrets._wait_readable', return_value=False), \
             mock.patch('os.urandom', urandom), \
             mock.patch('time.sleep', side_effect=KeyboardInterrupt):
            with self.assertRaises(KeyboardInterrupt):
                secrets.wait_for_system_rng()
        self.assertEqual(urandom.call_count, 1)

    def test_missing_device_is_not_polled(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, 'random')
            self.assertFalse(secrets._wait_readable(missing))


@unittest.skipUnless(hasattr(os, 'mkfifo'), 'need os.mkfifo()')
@unittest.skipUnless(hasattr(os, 'getrandom'), 'need os.getrandom()')
class WaitReadableTests(unittest.TestCase):
    """The /dev/random poll, run for real on a FIFO that stands in for it."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = os.path.join(tmp.name, 'random')
        try:
            os.mkfifo(self.path)
        except PermissionError as exc:
            self.skipTest(f'cannot make a FIFO: {exc}')
        # Opened for writing (and reading) first, so that opening the FIFO
        # for reading does not block.
        self.writer = os.open(self.path, os.O_RDWR)
        self.addCleanup(os.close, self.writer)
        patcher = mock.patch('secrets._system_rng_ready', False)
        patcher.start()
        self.addCleanup(patcher.stop)

    def write_later(self, delay, data):
        timer = threading.Timer(delay, os.write, (self.writer, data))
        timer.start()
        self.addCleanup(timer.join)
        self.addCleanup(timer.cancel)

    def test_waits_until_readable_without_reading(self):
        self.write_later(0.2, b'!')
        start = time.monotonic()
        self.assertTrue(secrets._wait_readable(self.path))
        self.assertGreaterEqual(time.monotonic() - start, 0.1)
        # The byte is still there: the device was polled, not read.
        os.set_blocking(self.writer, False)
        self.assertEqual(os.read(self.writer, 10), b'!')

    def test_wait_for_system_rng_polls_the_device(self):
        self.write_later(0.2, b'!')
        with mock.patch('secrets._DEV_RANDOM', self.path), \
             mock.patch('secrets._getrandom',
                        FakeGetrandom(OSError(errno.ENOSYS, 'no'))):
            secrets.wait_for_system_rng()
        os.set_blocking(self.writer, False)
        self.assertEqual(os.read(self.writer, 10), b'!')

    @unittest.skipUnless(hasattr(signal, 'pthread_kill'),
                         'need signal.pthread_kill()')
    def test_ctrl_c_interrupts_the_wait(self):
        # Ctrl-C: SIGINT to the waiting main thread.  A late write keeps a
        # broken test from hanging.
        self.write_later(support.SHORT_TIMEOUT, b'!')
        old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.addCleanup(signal.signal, signal.SIGINT, old_handler)
        main = threading.get_ident()
        timer = threading.Timer(0.2, signal.pthread_kill,
                                (main, signal.SIGINT))
        timer.start()
        self.addCleanup(timer.join)
        self.addCleanup(timer.cancel)
        start = time.monotonic()
        with mock.patch('secrets._DEV_RANDOM', self.path), \
             mock.patch('secrets._getrandom',
                        FakeGetrandom(OSError(errno.EPERM, 'no'))):
            with self.assertRaises(KeyboardInterrupt):
                secrets.wait_for_system_rng()
        self.assertLess(time.monotonic() - start, support.SHORT_TIMEOUT)


@support.requires_subprocess()
@seccomp_helper.requires_seccomp
class WaitUnderSeccompTests(unittest.TestCase):
    """secrets in child interpreters under a fake not-ready kernel."""

    # Which files the process opened: /dev/random, when it waited there.
    opens = textwrap.dedent("""
        import sys
        opened = []
        def hook(event, args):
            if event == 'open':
                opened.append(args[0])
        sys.addaudithook(hook)
    """)

    def run_python(self, mode, code):
        proc = seccomp_helper.run_python(mode, '-c', code,
                                         timeout=support.SHORT_TIMEOUT,
                                         hold_limit=seccomp_helper.HOLD_LIMIT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def skip_unless_getrandom_works(self):
        # A filter here cannot make blocking calls succeed where the test
        # run itself gets ENOSYS or EPERM for them (seccomp_helper).
        state = seccomp_helper.rng_state()
        if state in ('enosys', 'eperm'):
            self.skipTest('cannot stage a not-ready kernel where getrandom() '
                          f'fails with {state.upper()}')

    def test_kernel_without_getrandom_waits_once(self):
        # ENOSYS, EPERM: wait on /dev/random (here readable at once), and
        # only once per process.
        if not os.path.exists('/dev/random'):
            self.skipTest('no /dev/random')
        code = self.opens + textwrap.dedent("""
            import secrets
            secrets.wait_for_system_rng()
            secrets.wait_for_system_rng()
            print(opened.count('/dev/random'))
        """)
        for mode in ('enosys', 'eperm'):
            with self.subTest(mode=mode):
                proc = self.run_python(mode, code)
                self.assertEqual(proc.stdout, '1\n')

    def test_functions_wait_for_the_kernel(self):
        # os.urandom() raises until the fake kernel is ready, which it gets
        # once someone waits; then secrets answers, and os.urandom() too.
        self.skip_unless_getrandom_works()
        code = textwrap.dedent("""
            import os, secrets
            try:
                os.urandom(1)
            except BlockingIOError:
                print('raised')
            print(len(secrets.token_bytes(32)), len(secrets.token_hex(8)),
                  0 <= secrets.randbelow(10) < 10, secrets.choice('ab'),
                  secrets.randbits(3) < 8, len(os.urandom(4)))
        """)
        proc = self.run_python('ready-on-wait', code)
        self.assertEqual(proc.held, 1)
        words = proc.stdout.split()
        self.assertEqual(words[:4], ['raised', '32', '16', 'True'])
        self.assertIn(words[4], ('a', 'b'))
        self.assertEqual(words[5:], ['True', '4'])

    def test_systemrandom_waits_for_the_kernel(self):
        self.skip_unless_getrandom_works()
        code = textwrap.dedent("""
            import random, secrets
            try:
                random.SystemRandom().random()
            except BlockingIOError:
                print('random.SystemRandom raised')
            rng = secrets.SystemRandom()
            print(0 <= rng.random() < 1, rng.choice('ab') in 'ab',
                  isinstance(rng, random.SystemRandom))
        """)
        proc = self.run_python('ready-on-wait', code)
        self.assertEqual(proc.stdout.splitlines(),
                         ['random.SystemRandom raised', 'True True True'])

    def test_wait_in_the_kernel(self):
        # The wait happens in a blocking getrandom(), no device is opened.
        self.skip_unless_getrandom_works()
        code = self.opens + textwrap.dedent("""
            import secrets, time
            start = time.monotonic()
            secrets.wait_for_system_rng()
            print('/dev/random' in opened, time.monotonic() - start >= 0.25)
        """)
        proc = self.run_python('ready-on-wait=0.3', code)
        self.assertEqual(proc.stdout, 'False True\n')
        self.assertEqual(proc.held, 1)

    def test_never_ready_kernel_holds_the_wait(self):
        # A kernel whose RNG never gets ready holds the blocking call, for
        # ever: secrets never hands out bytes it did not get.
        self.skip_unless_getrandom_works()
        code = 'import secrets; print(secrets.token_bytes(16))'
        held, stdout = seccomp_helper.blocks('-c', code,
                                             timeout=support.SHORT_TIMEOUT)
        self.assertTrue(held)
        self.assertEqual(stdout, b'')


if __name__ == '__main__':
    unittest.main()
