"""Real programs on stock and patched interpreters under a not-ready RNG.

    python -m pep522_harness programs [--cpython V ...] [--mode M ...] [--only NAME ...]

Each program runs, in a fresh launch, under ``python -m pep522_harness fakerng
MODE`` with the built interpreter of each variant.  A cell says what happened:

* ``works``: the program did its job and drew nothing that waits;
* ``raises at FILE:LINE``: it failed with BlockingIOError, first raised there;
* ``waits S s``: (ready-on-wait) it did its job after S seconds held in a
  blocking getrandom();
* ``blocks at FILE:LINE``: (never-ready) it made a blocking getrandom(),
  which a kernel that never gets ready holds for ever: held for the run's
  hold limit, it was stopped, and its stack says where it waited;
* ``fails: ...``: anything else, with the last line of its error.

The launcher's log says which calls were held, for how long, and which
stopped the program.  The cells are rows of the impact table (``table.py``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pep522_harness.core import build, options, paths, process
from pep522_harness.core.tables import Cell
from pep522_harness.core.versions import VARIANTS
from pep522_harness.fake import helper, modes

from . import table

DEFAULT_TIMEOUT = 180.0

# The PEP's fallback snippet as printed ("Affected security sensitive
# applications"), indentation restored: it imports modules that do not exist.
PEP_FALLBACK_SNIPPET = """\
try:
    import secrets.token_bytes as _get_random_bytes
except ImportError:
    import os.urandom as _get_random_bytes
"""

# The one our docs show: secrets.token_bytes where it exists (it waits for
# the RNG), os.urandom on Pythons without secrets.
FALLBACK_SNIPPET = """\
try:
    from secrets import token_bytes as _get_random_bytes
except ImportError:  # Python < 3.6
    from os import urandom as _get_random_bytes
"""

SYSTEMD_RECIPE = "import secrets; secrets.wait_for_system_rng()"


# -- reading what happened ------------------------------------------------------

_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')
_BLOCKING = re.compile(r"^(?:[\w.]+\.)?BlockingIOError\b")
_LIBDIR = re.compile(r"^.*?/(?:lib/python3\.\d+/(?:site-packages/)?|site-packages/)")


def short_path(path: str, root: Path | None = None) -> str:
    """``.../lib/python3.13/multiprocessing/process.py`` -> ``multiprocessing/process.py``;
    a file under ``root`` (a project's sources) -> its path there."""
    path = os.path.normpath(path)
    if root is not None and path.startswith(f"{root}/"):
        return path[len(str(root)) + 1:]
    shortened = _LIBDIR.sub("", path)
    return shortened if shortened != path else Path(path).name


def blocking_frame(text: str, root: Path | None = None) -> str | None:
    """``file:line (function)`` of the innermost frame of the BlockingIOError
    that got away: the last traceback that ends in one (a chained traceback
    prints the caught exceptions first), or None.  With ``root`` (a
    project's sources), the innermost frame there is added as ``via``."""
    def name(m: re.Match[str]) -> str:
        return f"{short_path(m.group(1), root)}:{m.group(2)} ({m.group(3)})"

    last = ours = None
    found = None
    for line in text.splitlines():
        m = _FRAME.match(line)
        if m:
            last = m
            if root is not None and os.path.normpath(m.group(1)).startswith(f"{root}/"):
                ours = m
        elif _BLOCKING.match(line.strip()) and last is not None:
            found = name(last)
            if ours is not None and ours is not last:
                found += f" via {name(ours)}"   # the project's own call
            last = ours = None
        elif line.lstrip().startswith("Traceback"):
            last = ours = None
    return found


def held_where(stderr: str, root: Path | None = None) -> str | None:
    """``file:line (function)`` where a program was stopped in a held call,
    with the innermost frame under ``root`` (a project's sources) as
    ``via``; None without a stack."""
    stack = modes.held_stack(stderr)
    if not stack:
        return None

    def name(frame: tuple[str, int, str]) -> str:
        return f"{short_path(frame[0], root)}:{frame[1]} ({frame[2]})"

    where = name(stack[0])
    if root is not None:
        ours = next((f for f in stack if os.path.normpath(f[0]).startswith(f"{root}/")),
                    None)
        if ours is not None and ours is not stack[0]:
            where += f" via {name(ours)}"
    return where


def launch(mode: str, argv: list[str], *, cwd: Path, timeout: float = DEFAULT_TIMEOUT,
           env: dict[str, str] | None = None,
           check: Callable[[modes.Run], str | None] | None = None) -> Cell:
    """Run argv under the fake RNG mode and classify what happened.

    ``check`` returns None when the program did its job, else why not.
    """
    run = modes.run(mode, argv, cwd=cwd, env=process.clean_env(env), timeout=timeout,
                    watch=True)
    if run.timed_out:
        return Cell("fails", f"fails: timeout after {timeout:.0f} s",
                    seconds=timeout, detail=run.stderr[-2000:])
    output = run.stdout + run.stderr
    where = blocking_frame(run.stderr) or blocking_frame(run.stdout)
    problem = None
    if run.returncode != 0:
        problem = f"exit {run.returncode}"
    elif check is not None:
        problem = check(run)
    cell = Cell("works", "works", seconds=round(run.seconds, 2), waited=run.waited,
                blocking_calls=run.held, returncode=run.returncode,
                extra={"held_calls": run.held})
    if run.blocked:
        cell.kind, cell.where = "blocks", held_where(run.stderr)
        cell.text = f"blocks at {cell.where}" if cell.where else "blocks"
        cell.detail = run.stderr[-3000:]
        return cell
    if where and (problem or "BlockingIOError" in output):
        cell.kind, cell.where = "raises", where
        cell.text = f"raises at {where}"
        cell.detail = output[-3000:]
        if not problem:
            cell.text += " (caught)"
        return cell
    if problem:
        last = [ln for ln in run.stderr.strip().splitlines() if ln.strip()] or [problem]
        cell.kind, cell.text = "fails", f"fails: {last[-1].strip()[:100]}"
        cell.detail = output[-3000:]
        return cell
    if run.held:
        cell.kind, cell.text = "waits", f"waits {run.waited:.2f} s"
    return cell


# -- the programs ----------------------------------------------------------------

@dataclass
class Context:
    """What a program needs: the interpreter, a scratch folder, shared setup."""
    python: Path
    work: Path
    version: str
    variant: str
    shared: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Program:
    name: str
    what: str
    run: Callable[[Context, str], Cell]
    # Uses what only the patch set has (secrets.wait_for_system_rng()):
    # stock cannot do the same, ready RNG or not.
    new_api: bool = False


def _script(ctx: Context, name: str, code: str) -> Path:
    # A prefix keeps a script from shadowing the module it exercises
    # (the launcher runs from this folder too).
    path = ctx.work / f"program_{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.py"
    path.write_text(code)
    return path


def _expect(text: str) -> Callable[[modes.Run], str | None]:
    def check(run: modes.Run) -> str | None:
        return None if text in run.stdout else f"expected {text!r} in its output"
    return check


def _driver(name: str, code: str, expect: str, what: str,
            env: dict[str, str] | None = None) -> Program:
    """A program that is a small script run by the interpreter (-I; with
    ``env``, -s -P instead, which keep the environment variables)."""
    isolation = ["-s", "-P"] if env else ["-I"]

    def run(ctx: Context, mode: str) -> Cell:
        script = _script(ctx, name, code)
        return launch(mode, [str(ctx.python), *isolation, str(script)], cwd=ctx.work,
                      env=env, check=_expect(expect))
    return Program(name, what, run)


def _command(name: str, argv: list[str], expect: str, what: str,
             new_api: bool = False) -> Program:
    """``python ARGV`` (-I) as a user would type it."""
    def run(ctx: Context, mode: str) -> Cell:
        return launch(mode, [str(ctx.python), "-I", *argv], cwd=ctx.work,
                      check=_expect(expect) if expect else None)
    return Program(name, what, run, new_api)


def _venv(ctx: Context, mode: str) -> Cell:
    target = ctx.work / f"venv-{mode}"
    shutil.rmtree(target, ignore_errors=True)

    def check(_run: modes.Run) -> str | None:
        pips = list((target / "lib").glob("python3*/site-packages/pip/__init__.py"))
        return None if pips else "no pip in the new environment"
    cell = launch(mode, [str(ctx.python), "-I", "-m", "venv", str(target)],
                  cwd=ctx.work, check=check)
    shutil.rmtree(target, ignore_errors=True)
    return cell


def make_wheel(folder: Path, name: str = "pep522_tiny", version: str = "1.0") -> Path:
    """A tiny pure-Python wheel, built by hand (no network, no build backend)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "def hello():\n    return 'hello from a local wheel'\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: pep522_harness\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        record.append(f"{path},sha256={digest.rstrip(b'=').decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            info = zipfile.ZipInfo(path, date_time=(2016, 6, 16, 0, 0, 0))
            zf.writestr(info, text)
    return wheel


def _pip_venv(ctx: Context) -> Path:
    """A venv with pip for this interpreter, made once, with a ready RNG."""
    venv = ctx.shared.get("pip-venv")
    if venv is None:
        venv = ctx.work / "pip-venv"
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(ctx.python), "-I", "-m", "venv", str(venv)], check=True,
                       capture_output=True, env=process.clean_env())
        ctx.shared["pip-venv"] = venv
    return venv


def _pip_install(ctx: Context, mode: str) -> Cell:
    venv = _pip_venv(ctx)
    wheel = make_wheel(ctx.work / "wheels")
    target = ctx.work / f"pip-target-{mode}"
    shutil.rmtree(target, ignore_errors=True)

    def check(_run: modes.Run) -> str | None:
        ok = (target / "pep522_tiny" / "__init__.py").exists()
        return None if ok else "the wheel was not installed"
    cell = launch(mode, [str(venv / "bin" / "python"), "-I", "-m", "pip", "install",
                         "--no-index", "--no-cache-dir", "--disable-pip-version-check",
                         "--no-input", "--target", str(target), str(wheel)],
                  cwd=ctx.work, check=check,
                  env={"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"})
    shutil.rmtree(target, ignore_errors=True)
    return cell


HTTP_SERVER = r"""
import http.client, signal, subprocess, sys
# The server stops on ^C; a shell may have started us with SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
server = subprocess.Popen([sys.executable, "-I", "-u", "-m", "http.server", "0",
                           "--bind", "127.0.0.1", "--directory", sys.argv[1]],
                          stdout=subprocess.PIPE, text=True)
line = server.stdout.readline()
if not line.startswith("Serving HTTP"):
    server.wait()
    sys.exit(f"http.server did not start (exit {server.returncode})")
port = int(line.split(" port ")[1].split()[0])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
conn.request("GET", "/hello.txt")
reply = conn.getresponse()
body = reply.read().decode()
conn.close()
server.send_signal(signal.SIGINT)
try:
    server.communicate(timeout=30)
except subprocess.TimeoutExpired:
    server.kill()
    sys.exit("http.server did not stop on SIGINT")
print(reply.status, body.strip(), "server exit", server.returncode)
"""


def _http_server(ctx: Context, mode: str) -> Cell:
    root = ctx.work / "www"
    root.mkdir(exist_ok=True)
    (root / "hello.txt").write_text("hello over loopback\n")
    script = _script(ctx, "http_server", HTTP_SERVER)
    return launch(mode, [str(ctx.python), "-I", str(script), str(root)], cwd=ctx.work,
                  check=_expect("200 hello over loopback server exit 0"))


ASYNCIO_ECHO = r"""
import asyncio

async def echo(reader, writer):
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping over loopback\n")
        await writer.drain()
        print((await reader.readline()).decode().strip())
        writer.close()
        await writer.wait_closed()

asyncio.run(main())
"""

POOL = r"""
import multiprocessing
if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        print("pool", pool.map(abs, [-1, -2, -3]))
"""

POOL_SPAWN = r"""
import multiprocessing
if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        print("pool", pool.map(abs, [-1, -2, -3]))
"""

MANAGER = r"""
import multiprocessing
if __name__ == "__main__":
    with multiprocessing.Manager() as manager:
        shared = manager.dict()
        shared["answer"] = 42
        print("manager", dict(shared))
"""

PROCESS_POOL = r"""
from concurrent.futures import ProcessPoolExecutor
if __name__ == "__main__":
    with ProcessPoolExecutor(2) as ex:
        print("executor", list(ex.map(abs, [-1, -2, -3])))
"""

TEMPFILE = r"""
import os, tempfile
fd, name = tempfile.mkstemp()
os.close(fd); os.unlink(name)
with tempfile.TemporaryDirectory() as d, tempfile.NamedTemporaryFile(dir=d) as f:
    f.write(b"x")
print("tempfile ok")
"""

# A pre-fork server, the in-tree tests' own (test.support.rng_helper).
PREFORK: str = helper.rng_helper().PREFORK_SERVER


# cloud-init's util.rand_str(), which makes passwords early at boot.
CLOUD_INIT = r"""
import random, string
def rand_str(strlen=32, select_from=None):
    r = random.SystemRandom()
    if not select_from:
        select_from = string.ascii_letters + string.digits
    return "".join([r.choice(select_from) for _x in range(0, strlen)])
print("password", len(rand_str(20)))
"""

# urllib3's choose_boundary() and encode_multipart_formdata() (requests'
# multipart bodies), as they are.
MULTIPART = r"""
import binascii, os
from io import BytesIO
def choose_boundary():
    return binascii.hexlify(os.urandom(16)).decode()
body, boundary = BytesIO(), choose_boundary()
for name, value in (("field", "value"), ("other", "data")):
    body.write(f"--{boundary}\r\n".encode())
    body.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
    body.write(value.encode() + b"\r\n")
body.write(f"--{boundary}--\r\n".encode())
print("multipart", len(boundary), len(body.getvalue()))
"""

UUID4 = "import uuid\nprint('uuid', uuid.uuid4().version)\n"

# What a distribution sets for a service that must not fail (-X urandom=wait
# is the same per command line).
WAIT = {"PYTHONURANDOM": "wait"}

EMAIL = r"""
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
msg = MIMEMultipart()
msg["Subject"] = "PEP 522"
msg.attach(MIMEText("body"))
text = msg.as_string()
assert msg.get_boundary() and msg.get_boundary() in text
print("boundary", len(msg.get_boundary()))
"""

LOGGING = r"""
import logging, logging.handlers, os, tempfile
with tempfile.TemporaryDirectory() as d:
    handler = logging.handlers.RotatingFileHandler(os.path.join(d, "app.log"),
                                                   maxBytes=200, backupCount=2)
    log = logging.getLogger("pep522")
    log.addHandler(handler)
    for i in range(20):
        log.warning("line %d of a rotating log", i)
    handler.close()
    print("rotated", sorted(os.listdir(d)))
"""

SSL = r"""
import ssl
ctx = ssl.create_default_context()
print("ssl", ctx.verify_mode == ssl.CERT_REQUIRED)
"""


def _fallback(snippet: str) -> str:
    return snippet + "print('got', len(_get_random_bytes(16)), 'bytes')\n"


STDLIB_IMPORTS = r"""
import contextlib, io, json, os, sys, time, traceback
SKIP = {"antigravity", "this", "idlelib.idle", "turtledemo"}  # open windows or browsers
TEST_PARTS = {"test", "tests", "idle_test", "__main__"}

def names():
    import importlib.util
    for top in sorted(sys.stdlib_module_names):
        if top in SKIP:
            continue
        yield top
        try:
            spec = importlib.util.find_spec(top)
        except Exception:
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        for base in spec.submodule_search_locations:
            for root, dirs, files in os.walk(base):
                dirs[:] = sorted(d for d in dirs if d not in TEST_PARTS and
                                 os.path.exists(os.path.join(root, d, "__init__.py")))
                rel = os.path.relpath(root, base)
                pkg = top if rel == "." else top + "." + rel.replace(os.sep, ".")
                if pkg != top:
                    yield pkg
                for f in sorted(files):
                    stem = f[:-3]
                    if f.endswith(".py") and stem not in {"__init__"} | TEST_PARTS \
                            and not stem.startswith("test_") and f"{pkg}.{stem}" not in SKIP:
                        yield f"{pkg}.{stem}"

marker = os.open(os.devnull, os.O_WRONLY)
result = {}
for name in names():
    if any(part in TEST_PARTS for part in name.split(".")) or name.split(".")[0] in SKIP:
        continue
    os.write(marker, f"IMPORT {name}\n".encode())
    sink = io.StringIO()
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            __import__(name)
    except BlockingIOError as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        result[name] = ["raises", f"{tb.filename}:{tb.lineno} ({tb.name})"]
    except BaseException as exc:
        result[name] = ["error", f"{type(exc).__name__}: {exc}"[:200]]
    else:
        result[name] = ["ok", round(time.monotonic() - start, 3)]
os.write(marker, b"IMPORT <done>\n")
print(json.dumps(result))
"""

_MARK = re.compile(r'write\(\d+, "IMPORT ([^"\\]+)\\n"')


def attribute_blocking(trace: str) -> dict[str, int]:
    """Blocking getrandom() calls per module being imported (strace markers)."""
    current = "<start-up>"
    out: dict[str, int] = {}
    for line in trace.splitlines():
        m = _MARK.search(line)
        if m:
            current = m.group(1)
        elif modes.blocking_getrandom_calls(line):
            out[current] = out.get(current, 0) + 1
    return out


def stdlib_imports(python: Path, mode: str, work: Path,
                   timeout: float = 600) -> dict:
    """Import every stdlib module in one process under mode.

    Returns {"modules": {name: [status, detail]}, "blocking": {name: calls},
    "waited": s, "held": calls, "blocked": where}.  Status: ok, raises
    (BlockingIOError, where), error.  A blocking call that is never to be
    answered (never-ready) stops the process at the import that made it:
    "blocked" says where, and "modules" holds nothing.
    """
    script = work / "stdlib_imports.py"
    script.write_text(STDLIB_IMPORTS)
    # strace marks each import (a write of "IMPORT name" to /dev/null) beside
    # the getrandom() calls, so a blocking call is pinned on its import.
    run = modes.run(mode, [str(python), "-I", str(script)], cwd=work,
                    env=process.clean_env(), timeout=timeout, watch=True,
                    calls=("write",), trace_held=True)
    blocking = attribute_blocking(run.trace) if run.trace else {}
    if run.blocked:
        return {"modules": {}, "blocking": blocking, "waited": 0.0, "held": run.held,
                "blocked": held_where(run.stderr) or "?"}
    if run.returncode != 0 or not run.stdout.strip():
        raise RuntimeError(f"stdlib import run failed (exit {run.returncode}):\n"
                           f"{run.stderr[-3000:]}")
    modules = json.loads(run.stdout.strip().splitlines()[-1])
    return {"modules": modules, "blocking": blocking, "waited": run.waited, "held": run.held,
            "blocked": None}


def import_failures(run: dict, baseline: dict) -> dict[str, str]:
    """Modules that fail under a mode but import with a ready RNG."""
    out = {}
    for name, (status, detail) in run["modules"].items():
        if status == "ok" or baseline["modules"].get(name, ["ok"])[0] != "ok":
            continue
        if status == "raises":
            path, _, rest = detail.partition(":")
            detail = f"{short_path(path)}:{rest}"
        out[name] = f"{status}: {detail}"
    return out


def stdlib_cell(run: dict, baseline: dict, mode: str) -> Cell:
    failures = import_failures(run, baseline)
    n = sum(1 for s, _d in run["modules"].values() if s == "ok")
    raised = {k: v for k, v in failures.items() if k in run["modules"]
              and run["modules"][k][0] == "raises"}
    extra = {"failures": failures, "imported": n, "blocking": run["blocking"],
             "unavailable_when_ready": sorted(k for k, (s, _d) in baseline["modules"].items()
                                              if s != "ok")}
    if failures:
        first = next(iter(raised.values()), next(iter(failures.values())))
        where = first.split(": ", 1)[1] if raised else ""
        kind = "raises" if raised else "fails"
        names = ", ".join(sorted(failures)[:3]) + (", ..." if len(failures) > 3 else "")
        text = (f"{kind} in {len(failures)} module{'s' if len(failures) > 1 else ''} "
                f"({names})" + (f" at {where}" if where else ""))
        return Cell(kind, text, where=where, extra=extra)
    blocking = {k: v for k, v in run["blocking"].items() if k != "<done>"}
    first = next(iter(blocking), "")
    if run.get("blocked"):
        return Cell("blocks", f"blocks (import {first or '?'}) at {run['blocked']}",
                    where=run["blocked"], blocking_calls=sum(blocking.values()),
                    extra=extra)
    if run["held"]:
        return Cell("waits", f"waits {run['waited']:.2f} s (import {first or '?'})",
                    waited=run["waited"], blocking_calls=sum(blocking.values()),
                    extra=extra)
    return Cell("works", f"works ({n} modules)", extra=extra)


def _stdlib(ctx: Context, mode: str) -> Cell:
    key = "stdlib-baseline"
    if key not in ctx.shared:
        ctx.shared[key] = stdlib_imports(ctx.python, "ready", ctx.work)
    start = time.monotonic()
    run = stdlib_imports(ctx.python, mode, ctx.work)
    cell = stdlib_cell(run, ctx.shared[key], mode)
    cell.seconds = round(time.monotonic() - start, 2)
    return cell


PROGRAMS: tuple[Program, ...] = (
    Program("stdlib imports", "import every stdlib module (tests and demos aside); "
            "failures counted against the same interpreter with a ready RNG", _stdlib),
    Program("venv + ensurepip", "python -m venv DIR (installs pip with ensurepip)", _venv),
    Program("pip install (local wheel)", "pip install --no-index of a tiny local wheel",
            _pip_install),
    Program("http.server", "python -m http.server on loopback answering one GET",
            _http_server),
    _driver("asyncio echo", ASYNCIO_ECHO, "ping over loopback",
            "asyncio TCP echo server and client on loopback"),
    _driver("multiprocessing.Pool", POOL, "pool [1, 2, 3]",
            "multiprocessing.Pool(2).map (default start method)"),
    _driver("multiprocessing.Pool (spawn)", POOL_SPAWN, "pool [1, 2, 3]",
            "multiprocessing spawn Pool(2).map: children get the authkey"),
    _driver("multiprocessing.Manager", MANAGER, "manager {'answer': 42}",
            "a Manager: authkey and HMAC challenges on its connections"),
    _driver("pre-fork server", PREFORK, "prefork hello",
            "os.fork() a worker before the key is read, then a Listener and a Client "
            "with current_process().authkey"),
    _driver("ProcessPoolExecutor", PROCESS_POOL, "executor [1, 2, 3]",
            "concurrent.futures.ProcessPoolExecutor(2).map"),
    _driver("tempfile", TEMPFILE, "tempfile ok", "mkstemp, TemporaryDirectory, "
            "NamedTemporaryFile"),
    _driver("email MIME boundary", EMAIL, "boundary", "a multipart message and its boundary"),
    _driver("logging rotating file", LOGGING, "rotated", "RotatingFileHandler rolling over"),
    _driver("ssl.create_default_context", SSL, "ssl True", "ssl.create_default_context()"),
    _driver("uuid.uuid4()", UUID4, "uuid 4",
            "a random UUID: PEP 522's contract, like os.urandom (raises)"),
    _driver("uuid.uuid4(), PYTHONURANDOM=wait", UUID4, "uuid 4",
            "the same in a process whose os.urandom() waits", env=WAIT),
    _driver("cloud-init password", CLOUD_INIT, "password 20",
            "cloud-init's rand_str(): random.SystemRandom().choice() per character"),
    _driver("cloud-init password, PYTHONURANDOM=wait", CLOUD_INIT, "password 20",
            "the same in a process whose os.urandom() waits", env=WAIT),
    _driver("multipart body", MULTIPART, "multipart 32",
            "urllib3's multipart body (requests' files=): boundary from os.urandom(16)"),
    _driver("multipart body, PYTHONURANDOM=wait", MULTIPART, "multipart 32",
            "the same in a process whose os.urandom() waits", env=WAIT),
    _command("systemd recipe", ["-c", SYSTEMD_RECIPE], "",
             'python3 -c "import secrets; secrets.wait_for_system_rng()"', new_api=True),
    _driver("PEP fallback snippet (as printed)", _fallback(PEP_FALLBACK_SNIPPET), "got 16",
            "the PEP's snippet: imports modules that do not exist"),
    _driver("fallback snippet (working)", _fallback(FALLBACK_SNIPPET), "got 16",
            "from secrets import token_bytes, else os.urandom"),
)


ROWS = tuple(p.name for p in PROGRAMS)     # the table's program rows, in order


def program(name: str) -> Program:
    for p in PROGRAMS:
        if p.name == name:
            return p
    raise KeyError(f"no program {name!r}; known: {', '.join(p.name for p in PROGRAMS)}")


# -- running and reporting -------------------------------------------------------

def column(version: str, variant: str, mode: str) -> str:
    return f"{version} {variant} {mode}"


def run(versions_: list[str], modes: list[str], names: list[str] | None = None,
        variants: tuple[str, ...] = VARIANTS, work: Path | None = None,
        log: Callable[[str], None] = print) -> dict[str, dict[str, Cell]]:
    """{program name: {column: Cell}} for every version x variant x mode."""
    chosen = [program(n) for n in names] if names else list(PROGRAMS)
    table: dict[str, dict[str, Cell]] = {p.name: {} for p in chosen}
    base = work or paths.BUILD / "programs"
    for version in versions_:
        for variant in variants:
            python = build.build(version, variant, quiet=True)
            ctx_work = base / f"{version}-{variant}"
            shutil.rmtree(ctx_work, ignore_errors=True)
            ctx_work.mkdir(parents=True)
            ctx = Context(python, ctx_work, version, variant)
            for p in chosen:
                for mode in modes:
                    cell = p.run(ctx, mode)
                    table[p.name][column(version, variant, mode)] = cell
                    log(f"{version} {variant:6} {mode:13} {p.name}: {cell.text}")
    return table


def publish(cells: dict[str, dict[str, Cell]], command: str, path: Path) -> Path:
    """Merge the program rows into the impact table's JSON at ``path`` and
    write its Markdown twin; returns the Markdown's path."""
    for name, row in cells.items():
        table.record(name, "program", program(name).what,
                     {col: asdict(c) for col, c in row.items()}, command, path=path)
    return table.write(path, ROWS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s programs --")
    options.cpython(p, many=True)
    modes.option(p, default=modes.STUDIED)
    p.add_argument("--only", action="append", metavar="NAME",
                   help="one program (repeatable): " + ", ".join(x.name for x in PROGRAMS))
    p.add_argument("--no-docs", action="store_true", help="record into build/out/impact.json (a copy of docs/impact.json), not docs/")
    args = p.parse_args(argv)
    cells = run(args.cpython, args.mode, args.only)
    given = list(sys.argv[1:] if argv is None else argv)
    command = "nox -s programs" + (" -- " + shlex.join(given) if given else "")
    md = publish(cells, command, table.store(docs=not args.no_docs))
    print(f"impact table: {md} (and .json)")
    return 0
