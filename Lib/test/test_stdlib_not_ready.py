"""Tests for the standard library's callers of the system random number
generator while it is not ready (PEP 522).

No import needs the RNG, and while it is ready nothing changes.  Where the bytes protect something (the
authentication key and challenges of multiprocessing, the cnonce of HTTP
digest authentication), the standard library waits for the RNG like secrets
does, at the moment it needs them.  The public APIs that PEP 522 makes raise
BlockingIOError (os.urandom(), random.SystemRandom, uuid.uuid4()) keep
raising.
"""

import errno
import textwrap
import threading
import unittest
import urllib.request
import uuid
from test import support
from test.support import os_helper, script_helper, seccomp_helper
from test.support.rng_helper import PREFORK_SERVER, NotReadyRNG


# Modules that programs started early at boot import; the first two lines
# once needed the RNG at import (multiprocessing made its key there).
IMPORTS = """
    multiprocessing multiprocessing.connection multiprocessing.managers
    multiprocessing.pool multiprocessing.shared_memory concurrent.futures
    concurrent.futures.process secrets random uuid tempfile urllib.request
    email.generator email.utils http.server http.client logging.handlers
    asyncio socketserver ssl hmac hashlib smtplib imaplib xmlrpc.server
    xml.etree.ElementTree zipfile tarfile shutil subprocess venv unittest
""".split()


@support.requires_subprocess()
class ImportTests(unittest.TestCase):

    code = textwrap.dedent("""
        import importlib, os, sys
        from unittest import mock
        called = []
        def urandom(size):
            called.append(size)
            raise BlockingIOError(11, 'system random number generator is '
                                      'not ready; see secrets.token_bytes()')
        failed = []
        with mock.patch('os.urandom', urandom):
            for name in sys.argv[1:]:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass    # not built here
                except Exception as exc:
                    failed.append(f'{name}: {exc!r}')
        print(failed, called)
    """)

    def test_imports_do_not_need_urandom(self):
        # multiprocessing tries once to make its key at import, as it
        # always did, and makes it later if os.urandom() raises; no other
        # import asks.
        _, out, _ = script_helper.assert_python_ok('-c', self.code, *IMPORTS)
        self.assertEqual(out.decode().strip(), '[] [32]')

    @seccomp_helper.requires_seccomp
    def test_imports_under_not_ready_kernel(self):
        code = textwrap.dedent("""
            import importlib, sys
            failed = []
            for name in sys.argv[1:]:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass
                except Exception as exc:
                    failed.append(f'{name}: {exc!r}')
            print(failed)
        """)
        proc = seccomp_helper.run_python('never-ready', '-c', code, *IMPORTS,
                                         timeout=support.LONG_TIMEOUT,
                                         hold_limit=seccomp_helper.HOLD_LIMIT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, '[]\n')
        # Nothing waited for the RNG either.
        self.assertEqual(proc.held, 0)


def requires_ready_rng(test):
    """Skip a test whose children need the RNG of the test run to be ready
    (a test run under a fake kernel whose RNG never gets ready would hold
    them for ever)."""
    state = seccomp_helper.rng_state()
    return unittest.skipUnless(
        state in ('ready', 'enosys', 'eperm', None),
        f'needs a ready system random number generator (here: {state})')(test)


@support.requires_subprocess()
class MultiprocessingAuthkeyTests(unittest.TestCase):

    def test_authkey_made_at_import_when_ready(self):
        # With a ready RNG nothing changes: the key is drawn from
        # os.urandom() when multiprocessing is imported.
        code = textwrap.dedent("""
            from unittest import mock
            import os
            with mock.patch('os.urandom', return_value=b'k' * 32) as urandom:
                import multiprocessing
            main = multiprocessing.current_process()
            print(urandom.call_args_list, main._config['authkey'] == b'k' * 32)
        """)
        _, out, _ = script_helper.assert_python_ok('-c', code)
        self.assertEqual(out.decode().strip(), '[call(32)] True')

    def test_authkey_made_on_first_use_when_not_ready(self):
        code = textwrap.dedent("""
            from test.support.rng_helper import NotReadyRNG
            with NotReadyRNG().installed() as rng:
                import multiprocessing
                main = multiprocessing.current_process()
                print('authkey' in main._config, rng.waits)
                key = main.authkey
            print(rng.waits, type(key).__name__, key == b'\x5a' * 32,
                  main.authkey is key)
        """)
        _, out, _ = script_helper.assert_python_ok('-c', code)
        self.assertEqual(out.decode().splitlines(),
                         ['False 0', '1 AuthenticationString True True'])

    def test_authkey_set_before_use(self):
        code = textwrap.dedent("""
            from test.support.rng_helper import NotReadyRNG
            with NotReadyRNG().installed() as rng:
                import multiprocessing
                main = multiprocessing.current_process()
                main.authkey = b'secret'
                print(main.authkey == b'secret', rng.waits)
        """)
        _, out, _ = script_helper.assert_python_ok('-c', code)
        self.assertEqual(out.decode().strip(), 'True 0')

    @requires_ready_rng
    @support.requires_fork()
    def test_prefork_server(self):
        # The same as without the patch set, whatever the RNG does.
        _, out, _ = script_helper.assert_python_ok('-c', PREFORK_SERVER)
        self.assertEqual(out.decode().strip(), 'prefork hello')

    @support.requires_fork()
    @seccomp_helper.requires_seccomp
    def test_prefork_server_while_not_ready(self):
        # The RNG is not ready at import: the key is made before the fork,
        # once the RNG is ready, so that the worker shares it.
        if seccomp_helper.rng_state() in ('enosys', 'eperm'):
            self.skipTest('cannot stage a kernel that gets ready here')
        proc = seccomp_helper.run_python('ready-on-wait', '-c',
                                         PREFORK_SERVER,
                                         timeout=support.SHORT_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), 'prefork hello')
        self.assertEqual(proc.held, 1)

    @support.requires_fork()
    def test_fork_does_not_wait_once_key_exists(self):
        code = textwrap.dedent("""
            import os
            from test.support.rng_helper import NotReadyRNG
            with NotReadyRNG().installed() as rng:
                import multiprocessing
                key = multiprocessing.current_process().authkey
                pid = os.fork()
                if pid == 0:
                    same = multiprocessing.current_process().authkey == key
                    os._exit(0 if same else 1)
                _, status = os.waitpid(pid, 0)
                print(os.waitstatus_to_exitcode(status), rng.waits)
        """)
        _, out, _ = script_helper.assert_python_ok('-c', code)
        self.assertEqual(out.decode().strip(), '0 1')

    @requires_ready_rng
    def test_children_share_the_key(self):
        # A Process made before the key exists, and one made after, get
        # the key of their parent, whatever the start method.
        script = textwrap.dedent("""
            import multiprocessing, sys

            def report(queue):
                queue.put(bytes(multiprocessing.current_process().authkey))

            if __name__ == '__main__':
                ctx = multiprocessing.get_context(sys.argv[1])
                queue = ctx.Queue()
                early = ctx.Process(target=report, args=(queue,))
                early.start()
                early_key = queue.get()
                early.join()
                key = bytes(multiprocessing.current_process().authkey)
                late = ctx.Process(target=report, args=(queue,))
                late.start()
                late_key = queue.get()
                late.join()
                print(early_key == key, late_key == key)
        """)
        import multiprocessing
        with os_helper.temp_dir() as tmp:
            path = script_helper.make_script(tmp, 'share_key', script)
            for method in multiprocessing.get_all_start_methods():
                with self.subTest(start_method=method):
                    _, out, _ = script_helper.assert_python_ok(path, method)
                    self.assertEqual(out.decode().strip(), 'True True')


@support.requires_subprocess()
@seccomp_helper.requires_seccomp
class UniqueNamesTests(unittest.TestCase):
    """Names that must be unique, not secret, never wait for the RNG."""

    def test_listener_address(self):
        code = textwrap.dedent("""
            from multiprocessing.connection import Listener
            with Listener(family='AF_UNIX', authkey=b'k' * 32) as listener:
                print(listener.address.rpartition('/')[0] != '')
        """)
        proc = seccomp_helper.run_python('never-ready', '-c', code,
                                         timeout=support.SHORT_TIMEOUT,
                                         hold_limit=seccomp_helper.HOLD_LIMIT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, 'True\n')
        self.assertEqual(proc.held, 0)

    def test_random_node(self):
        # The random node of uuid1() is not guessable: made from the random
        # module (3.11, 3.13.5) or, where upstream takes it from
        # os.urandom(), after waiting for the RNG; never an error.
        if seccomp_helper.rng_state() in ('enosys', 'eperm'):
            self.skipTest('cannot stage a kernel that gets ready here')
        code = 'import uuid; print(uuid._random_getnode() >> 40 & 1)'
        proc = seccomp_helper.run_python('ready-on-wait', '-c', code,
                                         timeout=support.SHORT_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, '1\n')


class MultiprocessingChallengeTests(unittest.TestCase):

    def test_deliver_challenge_waits(self):
        from multiprocessing import Pipe, connection
        key = b'key' * 8
        ours, theirs = Pipe()
        self.addCleanup(theirs.close)
        answer = threading.Thread(target=connection.answer_challenge,
                                  args=(theirs, key))
        with NotReadyRNG().installed() as rng:
            answer.start()
            try:
                connection.deliver_challenge(ours, key)
            finally:
                # If the challenge was not sent, the answer sees EOF.
                ours.close()
                answer.join()
        self.assertEqual(rng.waits, 1)


class UrllibDigestTests(unittest.TestCase):

    def test_cnonce_waits(self):
        handler = urllib.request.AbstractDigestAuthHandler()
        with NotReadyRNG().installed() as rng:
            cnonce = handler.get_cnonce('nonce')
        self.assertEqual(rng.waits, 1)
        self.assertRegex(cnonce, '^[0-9a-f]{16}$')


@support.requires_subprocess()
@seccomp_helper.requires_seccomp
class KeepRaisingTests(unittest.TestCase):

    def test_uuid4_raises(self):
        code = textwrap.dedent("""
            import uuid
            try:
                uuid.uuid4()
            except BlockingIOError as exc:
                print(exc.errno)
        """)
        proc = seccomp_helper.run_python('never-ready', '-c', code,
                                         timeout=support.SHORT_TIMEOUT,
                                         hold_limit=seccomp_helper.HOLD_LIMIT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, f'{errno.EAGAIN}\n')

    @unittest.skipUnless(hasattr(uuid, 'main'), 'needs the uuid command')
    def test_uuid_command_says_what_to_do(self):
        proc = seccomp_helper.run_python('never-ready', '-m', 'uuid',
                                         timeout=support.SHORT_TIMEOUT,
                                         hold_limit=seccomp_helper.HOLD_LIMIT)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, '')
        lines = [line for line in proc.stderr.splitlines()
                 if not line.startswith('Python: warning: ')]
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn('random number generator is not ready', lines[0])
        self.assertIn('secrets.wait_for_system_rng()', lines[0])
        self.assertNotIn('Traceback', proc.stderr)

    @unittest.skipUnless(hasattr(uuid, 'main'), 'needs the uuid command')
    def test_uuid_command_other_functions_unchanged(self):
        proc = seccomp_helper.run_python('never-ready', '-m', 'uuid',
                                         '-u', 'uuid1',
                                         timeout=support.SHORT_TIMEOUT,
                                         hold_limit=seccomp_helper.HOLD_LIMIT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        uuid.UUID(proc.stdout.strip())


if __name__ == '__main__':
    unittest.main()
