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
import textwrap
from unittest import mock


__all__ = ['NOT_READY', 'NotReadyRNG', 'PREFORK_SERVER']


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


# A pre-fork server, as real servers are: a worker is forked before anything
# reads the authentication key, then connects to its parent's Listener with
# the key both have; prints "prefork hello" when the handshake passed.
PREFORK_SERVER = textwrap.dedent("""
    import os
    from multiprocessing import current_process
    from multiprocessing.connection import Client, Listener

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        host, port = os.read(r, 100).decode().split()
        try:
            with Client((host, int(port)),
                        authkey=current_process().authkey) as conn:
                conn.send('hello')
        finally:
            os._exit(0)
    os.close(r)
    with Listener(('127.0.0.1', 0),
                  authkey=current_process().authkey) as listener:
        os.write(w, ('%s %d' % listener.address).encode())
        try:
            with listener.accept() as conn:
                print('prefork', conn.recv())
        except Exception as exc:
            print(type(exc).__name__)
    os.waitpid(pid, 0)
""")
