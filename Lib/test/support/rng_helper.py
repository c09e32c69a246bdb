"""An in-process stand-in for a system random number generator that is not
ready yet (PEP 522), for the tests of the code that draws from it.

seccomp_helper fakes the kernel for a child interpreter; NotReadyRNG fakes
os.urandom() in this process, where a test can see each call::

    from test.support.rng_helper import NotReadyRNG

    def test_token_waits(self):
        with NotReadyRNG().installed() as rng:
            secrets.token_bytes(16)
        self.assertEqual(rng.waits, 1)
"""

import contextlib
import errno
from unittest import mock


__all__ = ['NOT_READY', 'NotReadyRNG']


# The message of the BlockingIOError that os.urandom() raises.
NOT_READY = ('system random number generator is not ready; '
             'see secrets.token_bytes()')


class NotReadyRNG:
    """A system RNG that is not ready until secrets.wait_for_system_rng()
    runs.

    installed() replaces os.urandom(), the reference to it that
    random.SystemRandom (and so secrets) draws through, and
    secrets.wait_for_system_rng().  Once ready, it returns bytes of 0x5a.
    With ready_after_wait=False it stays not ready after a wait, which no
    kernel does, to see that a caller does not spin or fall back then.
    """

    def __init__(self, ready_after_wait=True):
        self.ready = False
        self.ready_after_wait = ready_after_wait
        self.waits = 0
        self.calls = 0

    def urandom(self, size):
        self.calls += 1
        if size < 0:
            raise ValueError('negative argument not allowed')
        if not self.ready:
            raise BlockingIOError(errno.EAGAIN, NOT_READY)
        return b'\x5a' * size

    def wait(self):
        self.waits += 1
        self.ready = self.ready or self.ready_after_wait

    @contextlib.contextmanager
    def installed(self):
        with contextlib.ExitStack() as stack:
            for target in ('os.urandom', 'random._urandom'):
                stack.enter_context(mock.patch(target, self.urandom))
            stack.enter_context(
                mock.patch('secrets.wait_for_system_rng', self.wait))
            yield self
