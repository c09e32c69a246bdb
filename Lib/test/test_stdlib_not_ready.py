"""Tests for the standard library's callers of the system random number
generator while it is not ready (PEP 522).

No import needs the RNG.  Where the bytes protect something (the
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
from test import support
from test.support import os_helper, script_helper, seccomp_helper
from test.test_secrets_not_ready import NotReadyRNG


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

    def test_imports_do_not_call_urandom(self):
        _, out, _ = script_helper.assert_python_ok('-c', self.code, *IMPORTS)
        self.assertEqual(out.decode().strip(), '[] []')

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
        proc = seccomp_helper.run_python('never-ready', '-c', code, *IMPORTS)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, '[]\n')


@support.requires_subprocess()
class MultiprocessingAuthkeyTests(unittest.TestCase):

    def test_authkey_made_on_first_use(self):
        code = textwrap.dedent("""
            import multiprocessing
            from multiprocessing import process
            main = multiprocessing.current_process()
            print('authkey' in main._config)
            key = main.authkey
            print(type(key).__name__, len(key), main.authkey is key)
        """)
        _, out, _ = script_helper.assert_python_ok('-c', code)
        self.assertEqual(out.decode().splitlines(),
                         ['False', 'AuthenticationString 32 True'])

    def test_authkey_waits_for_rng(self):
        code = textwrap.dedent("""
            import multiprocessing
            from test.test_secrets_not_ready import NotReadyRNG
            with NotReadyRNG().installed() as rng:
                key = multiprocessing.current_process().authkey
            print(rng.waits, key == b'\\x5a' * 32)
        """)
        _, out, _ = script_helper.assert_python_ok('-c', code)
        self.assertEqual(out.decode().strip(), '1 True')

    def test_authkey_set_before_use(self):
        code = textwrap.dedent("""
            import multiprocessing
            main = multiprocessing.current_process()
            main.authkey = b'secret'
            print(main.authkey == b'secret')
        """)
        _, out, _ = script_helper.assert_python_ok('-c', code)
        self.assertEqual(out.decode().strip(), 'True')

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
        proc = seccomp_helper.run_python('never-ready', '-c', code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, f'{errno.EAGAIN}\n')


if __name__ == '__main__':
    unittest.main()
