"""Tests for the secrets module while the system random number generator is
not ready (PEP 522): secrets.wait_for_system_rng(), and every function of
secrets waiting for the RNG instead of raising BlockingIOError.

A kernel RNG that becomes ready while a test waits cannot be staged without
a supervisor, so the waiting itself is tested with mocks, and the ways of
waiting that can run for real (the poll on a device, Ctrl-C) run on a FIFO.
"""

import contextlib
import errno
import os
import random
import secrets
import signal
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from test import support
from test.support import seccomp_helper
from unittest import mock


NOT_READY = ('system random number generator is not ready; '
             'see secrets.token_bytes()')


class NotReadyRNG:
    """A system RNG that is not ready until wait_for_system_rng() runs.

    It replaces os.urandom() (and the references to it that secrets and
    random hold) and secrets.wait_for_system_rng().
    """

    def __init__(self, ready_after_wait=True):
        self.ready = False
        self.ready_after_wait = ready_after_wait
        self.waits = 0

    def urandom(self, size):
        if size < 0:
            raise ValueError('negative argument not allowed')
        if not self.ready:
            raise BlockingIOError(errno.EAGAIN, NOT_READY)
        return b'\x5a' * size

    def wait(self):
        self.waits += 1
        self.ready = self.ready_after_wait

    @contextlib.contextmanager
    def installed(self):
        with contextlib.ExitStack() as stack:
            for target in ('os.urandom', 'random._urandom',
                           'secrets._urandom'):
                stack.enter_context(
                    mock.patch(target, self.urandom, create=True))
            stack.enter_context(
                mock.patch('secrets.wait_for_system_rng', self.wait,
                           create=True))
            yield self


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

    @unittest.skipUnless(hasattr(os, 'getrandom'), 'need os.getrandom()')
    def test_only_nonblocking_requests_refused(self):
        # A policy that refuses GRND_NONBLOCK even once the kernel answered
        # a blocking request: the bytes come from blocking getrandom()
        # calls, and nothing raises or spins.
        for name, call in self.calls.items():
            with self.subTest(function=name), \
                 NotReadyRNG(ready_after_wait=False).installed():
                getrandom = FakeGetrandom()
                with mock.patch('secrets._getrandom', getrandom):
                    call()
                self.assertIn(0, getrandom.calls)

    @unittest.skipUnless(hasattr(os, 'getrandom'), 'need os.getrandom()')
    def test_short_blocking_reads_are_completed(self):
        reads = iter([b'\x01' * 5, b'\x02' * 3, b'\x03' * 2])
        with NotReadyRNG(ready_after_wait=False).installed():
            with mock.patch('secrets._getrandom',
                            lambda size, flags=0: next(reads)):
                self.assertEqual(secrets.token_bytes(10),
                                 b'\x01' * 5 + b'\x02' * 3 + b'\x03' * 2)

    def test_argument_errors_unchanged(self):
        with NotReadyRNG().installed() as rng:
            self.assertRaises(ValueError, secrets.token_bytes, -1)
            self.assertRaises(ValueError, secrets.randbits, -1)
            self.assertRaises(ValueError, secrets.randbelow, 0)
            self.assertRaises(IndexError, secrets.choice, [])
            self.assertEqual(rng.waits, 0)

    def test_systemrandom_still_raises(self):
        # secrets.SystemRandom is random.SystemRandom: PEP 522 keeps it
        # raising, for code that wants to decide what to do itself.
        self.assertIs(secrets.SystemRandom, random.SystemRandom)
        with NotReadyRNG().installed() as rng:
            with self.assertRaises(BlockingIOError):
                secrets.SystemRandom().getrandbits(8)
            self.assertEqual(rng.waits, 0)

    def test_no_extra_python_calls(self):
        # Waiting costs nothing while the RNG is ready: token_bytes()
        # calls os.urandom() itself, and randbits(), randbelow() and
        # choice() go through as deep a stack of Python functions as
        # those of SystemRandom.  bytes() stands in for os.urandom(), so
        # that the RNG is ready whatever the test run runs under: as
        # os.urandom(), it adds no Python frame.
        def depth(func, *args):
            base = sys._getframe()
            deepest = 0

            def profile(frame, event, arg):
                nonlocal deepest
                if event == 'call':
                    n = 0
                    while frame is not None and frame is not base:
                        n += 1
                        frame = frame.f_back
                    deepest = max(deepest, n)

            sys.setprofile(profile)
            try:
                func(*args)
            finally:
                sys.setprofile(None)
            return deepest

        sysrand = random.SystemRandom()
        with mock.patch('random._urandom', bytes), \
             mock.patch('secrets._urandom', bytes, create=True):
            self.assertEqual(depth(secrets.token_bytes, 16), 1)
            self.assertEqual(depth(secrets.randbits, 16),
                             depth(sysrand.getrandbits, 16))
            self.assertEqual(depth(secrets.choice, 'abc'),
                             depth(sysrand.choice, 'abc'))
            self.assertEqual(depth(secrets.randbelow, 10),
                             depth(sysrand._randbelow, 10) + 1)


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
        secrets.wait_for_system_rng()   # the RNG of the test machine
        getrandom = FakeGetrandom()
        self.assertEqual(self.wait(getrandom), [])
        self.assertEqual(getrandom.calls, [os.GRND_NONBLOCK])

    def test_not_ready_blocks_in_getrandom(self):
        getrandom = FakeGetrandom(
            nonblocking_error=BlockingIOError(errno.EAGAIN, 'not ready'))
        self.assertEqual(self.wait(getrandom), [])
        self.assertEqual(getrandom.calls, [os.GRND_NONBLOCK, 0])

    def test_getrandom_unusable_polls_dev_random(self):
        for err in (errno.ENOSYS, errno.EPERM):
            with self.subTest(errno=errno.errorcode[err]):
                getrandom = FakeGetrandom(
                    nonblocking_error=OSError(err, os.strerror(err)))
                self.assertEqual(self.wait(getrandom), ['/dev/random'])
        # Refused only once the RNG is not ready (a seccomp profile that
        # forbids blocking calls).
        getrandom = FakeGetrandom(
            nonblocking_error=BlockingIOError(errno.EAGAIN, 'not ready'),
            blocking_error=OSError(errno.EPERM, 'refused'))
        self.assertEqual(self.wait(getrandom), ['/dev/random'])

    def test_other_errors_propagate(self):
        getrandom = FakeGetrandom(
            nonblocking_error=OSError(errno.EINVAL, 'invalid'))
        with self.assertRaises(OSError) as cm:
            self.wait(getrandom)
        self.assertEqual(cm.exception.errno, errno.EINVAL)

    def test_keyboard_interrupt_while_blocked(self):
        # os.getrandom() runs the signal handlers when a signal interrupts
        # it; the exception they raise must get through.
        getrandom = FakeGetrandom(
            nonblocking_error=BlockingIOError(errno.EAGAIN, 'not ready'),
            blocking_error=KeyboardInterrupt())
        with self.assertRaises(KeyboardInterrupt):
            self.wait(getrandom)
        urandom = mock.Mock(
            side_effect=BlockingIOError(errno.EAGAIN, 'not ready'))
        with mock.patch('secrets._getrandom', getrandom), \
             mock.patch('secrets._urandom', urandom):
            with self.assertRaises(KeyboardInterrupt):
                secrets.token_bytes(8)

    def test_sleep_loop_last_resort(self):
        # Neither getrandom() nor /dev/random: retry os.urandom(), sleeping
        # longer and longer in between.
        answers = [BlockingIOError(errno.EAGAIN, 'not ready')] * 8 + [b'x']
        urandom = mock.Mock(side_effect=answers)
        sleep = mock.Mock()
        with mock.patch('secrets._getrandom', None), \
             mock.patch('secrets._wait_readable', return_value=False), \
             mock.patch('secrets._urandom', urandom), \
             mock.patch('time.sleep', sleep):
            secrets.wait_for_system_rng()
        self.assertEqual(urandom.call_count, 9)
        delays = [c.args[0] for c in sleep.call_args_list]
        self.assertEqual(len(delays), 8)
        self.assertEqual(delays, sorted(delays))
        self.assertLessEqual(delays[0], 0.001)
        self.assertLessEqual(delays[-1], 0.1)

    def test_sleep_loop_keyboard_interrupt(self):
        urandom = mock.Mock(
            side_effect=BlockingIOError(errno.EAGAIN, 'not ready'))
        with mock.patch('secrets._getrandom', None), \
             mock.patch('secrets._wait_readable', return_value=False), \
             mock.patch('secrets._urandom', urandom), \
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

    code = textwrap.dedent("""
        import sys
        opened = []
        def hook(event, args):
            if event == 'open':
                opened.append(args[0])
        sys.addaudithook(hook)
        import secrets
        secrets.wait_for_system_rng()
        print('/dev/random' in opened)
    """)

    def test_ready_kernel_without_getrandom(self):
        # ENOSYS, EPERM: wait on /dev/random (here readable at once).
        if not os.path.exists('/dev/random'):
            self.skipTest('no /dev/random')
        for mode in ('enosys', 'eperm'):
            with self.subTest(mode=mode):
                proc = seccomp_helper.run_python(mode, '-c', self.code)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout, 'True\n')

    def skip_unless_getrandom_works(self):
        # A filter here cannot make blocking calls succeed where the test
        # run itself gets ENOSYS or EPERM for them (seccomp_helper).
        state = seccomp_helper.rng_state()
        if state in ('enosys', 'eperm'):
            self.skipTest('cannot stage a not-ready kernel where getrandom() '
                          f'fails with {state.upper()}')

    def test_functions_return_under_never_ready_filter(self):
        # The filter refuses every GRND_NONBLOCK request: os.urandom()
        # raises, secrets still answers.
        self.skip_unless_getrandom_works()
        code = textwrap.dedent("""
            import os, secrets
            try:
                os.urandom(1)
            except BlockingIOError:
                pass
            else:
                raise SystemExit('os.urandom() did not raise')
            print(len(secrets.token_bytes(32)), len(secrets.token_hex(8)),
                  0 <= secrets.randbelow(10) < 10, secrets.choice('ab'),
                  secrets.randbits(3) < 8)
        """)
        proc = seccomp_helper.run_python('never-ready', '-c', code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        words = proc.stdout.split()
        self.assertEqual(words[:3], ['32', '16', 'True'])
        self.assertIn(words[3], ('a', 'b'))
        self.assertEqual(words[4], 'True')

    def test_not_ready_kernel(self):
        # Blocking getrandom() answers at once under this filter: the wait
        # happens in the kernel, no device is opened.
        self.skip_unless_getrandom_works()
        proc = seccomp_helper.run_python('never-ready', '-c', self.code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, 'False\n')


if __name__ == '__main__':
    unittest.main()
