"""Configure, compile and install stock and patched interpreters the same way.

A finished build is keyed by its inputs (tarball, series, added files,
configure arguments and configure's variables in the environment, compiler,
the optional modules' headers the compiler finds, recipe). Unchanged
inputs: nothing runs.
Changed inputs: the tree is re-synced, so make recompiles only what changed
(with ccache underneath). Finished builds are also kept in the user's cache,
so a fresh clone with the same inputs only copies them into place.

    python -m pep522_harness build [--cpython V] [--variant pep522|stock]
        [--sanitizer address|undefined] [--jobs N]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import apply, fetch, options, paths, progress
from .errors import HarnessError
from .versions import VARIANTS, Release, release

RECIPE = "3"   # bump when the way of building changes
STAMP = ".pep522-build.json"
# CPython's own configure options, as its ASan buildbots pass them
# (pymalloc would hide heap errors from ASan; configure turns it off anyway).
SANITIZERS = {"address": ["--with-address-sanitizer", "--without-pymalloc"],
              "undefined": ["--with-undefined-behavior-sanitizer"]}
# The other build flavour: as if the C library and the kernel had neither
# getrandom() nor getentropy(), so that os.urandom() reads /dev/urandom (the
# path every system without getrandom() takes, which the patch set leaves as
# upstream has it).  The flavours share the ``sanitizer`` argument below.
NO_GETRANDOM = "no-getrandom"
FLAVOURS = {**SANITIZERS, NO_GETRANDOM: ["ac_cv_func_getrandom=no",
                                         "ac_cv_getrandom_syscall=no",
                                         "ac_cv_func_getentropy=no"]}
# Environment of the build's own runs of the new interpreter (and of test
# runs), as CPython's ASan buildbots set it: LeakSanitizer would fail the
# build on the interpreter's deliberate leaks at exit, and Python's own
# SIGSEGV handling (faulthandler, tests) must keep the signal.
SANITIZER_ENV = {"address": {"ASAN_OPTIONS": "detect_leaks=0:"
                             "allocator_may_return_null=1:handle_segv=0"},
                 "undefined": {}}
KEEP_CACHED = 2   # finished builds kept per name in the user's cache
# The headers configure looks for before it builds an optional module (or a
# feature of one), with what they give: which of them the compiler finds is
# an input of every build, so a build made before a -dev package was
# installed (or after one was removed) is never taken for one made now.
OPTIONAL_HEADERS = {
    "bluetooth/bluetooth.h": "socket's AF_BLUETOOTH", "blake2.h": "_blake2",
    "bzlib.h": "_bz2", "crypt.h": "_crypt", "curses.h": "_curses",
    "db.h": "_dbm", "editline/readline.h": "readline", "ffi.h": "_ctypes",
    "gdbm-ndbm.h": "_dbm", "gdbm.h": "_gdbm", "gdbm/ndbm.h": "_dbm",
    "lzma.h": "_lzma", "mpdecimal.h": "_decimal (system libmpdec)",
    "ncursesw/curses.h": "_curses", "ncursesw/panel.h": "_curses_panel",
    "ndbm.h": "_dbm", "openssl/ssl.h": "_ssl, _hashlib", "panel.h": "_curses_panel",
    "readline/readline.h": "readline", "rpc/rpc.h": "nis", "sqlite3.h": "_sqlite3",
    "tcl.h": "_tkinter", "tcl8.6/tcl.h": "_tkinter", "tcl8.6/tk.h": "_tkinter",
    "tirpc/rpc/rpc.h": "nis", "tk.h": "_tkinter", "uuid.h": "_uuid",
    "uuid/uuid.h": "_uuid", "X11/Xlib.h": "_tkinter", "zlib.h": "zlib",
}
# configure's precious variables, read from the environment of the build
CONFIGURE_ENV = ("CC", "CPP", "CFLAGS", "CPPFLAGS", "LDFLAGS", "LIBS",
                 "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR")


class BuildError(HarnessError):
    pass


@dataclass
class Step:
    """Prints one step line per phase; the full output goes to a log file."""
    log_path: Path
    quiet: bool = False
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.started:6.1f}s] {msg}", flush=True)
        with self.log_path.open("a") as f:
            f.write(f"### {msg}\n")

    def run(self, what: str, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
        with self.log_path.open("a") as f:
            f.write(f"$ {' '.join(cmd)}\n")
            f.flush()
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=f,
                                  stderr=subprocess.STDOUT)
        if proc.returncode:
            tail = self.log_path.read_text(errors="replace").splitlines()[-25:]
            raise BuildError(f"{what} failed (exit {proc.returncode}); "
                             f"full log: {self.log_path}\n" + "\n".join(tail))


def check_prerequisites() -> None:
    missing = [tool for tool in ("make", "tar", "patch") if shutil.which(tool) is None]
    cc = os.environ.get("CC", "gcc").split()[0]
    if shutil.which(cc) is None:
        missing.insert(0, f"a C compiler ({cc})")
    if missing:
        raise BuildError("missing build prerequisites: " + ", ".join(missing) +
                         "\nOn Debian: apt-get install build-essential patch "
                         "(and CPython's build dependencies: libssl-dev "
                         "zlib1g-dev libffi-dev libbz2-dev liblzma-dev "
                         "libsqlite3-dev libreadline-dev uuid-dev)")


def configure_args(prefix: Path, sanitizer: str | None) -> list[str]:
    """Identical for stock and pep522 apart from the prefix."""
    return [f"--prefix={prefix}", "--with-ensurepip=no",
            *FLAVOURS.get(sanitizer or "", [])]


def optional_headers() -> list[str]:
    """Which of OPTIONAL_HEADERS the compiler finds, with $CPPFLAGS as
    configure looks for them: one run of the preprocessor."""
    probe = "".join(f"#if __has_include(<{h}>)\nfound {h}\n#endif\n"
                    for h in sorted(OPTIONAL_HEADERS))
    cmd = [*os.environ.get("CC", "gcc").split(), *os.environ.get("CPPFLAGS", "").split(),
           "-E", "-P", "-x", "c", "-"]
    try:
        out = subprocess.run(cmd, input=probe, capture_output=True, text=True).stdout
    except OSError:
        return []
    return sorted(line.split(" ", 1)[1] for line in out.splitlines()
                  if line.startswith("found "))


def headers_changed(stamp: dict, found: list[str]) -> str | None:
    """What a build with ``stamp`` lacks or has that a build here would
    not, by the optional headers (None: the same, or the stamp does not say)."""
    if "optional_headers" not in stamp:
        return None
    was, now = set(stamp["optional_headers"]), set(found)
    changes = [f"{h} ({OPTIONAL_HEADERS.get(h, '?')}) is found now" for h in sorted(now - was)]
    changes += [f"{h} ({OPTIONAL_HEADERS.get(h, '?')}) is not found any more"
                for h in sorted(was - now)]
    return "; ".join(changes) or None


def _tool_id() -> str:
    """What of this machine makes a build: the compiler, the C library,
    configure's variables in the environment, and the optional modules'
    headers the compiler finds."""
    cc = os.environ.get("CC", "gcc")
    try:
        out = subprocess.run(cc.split() + ["--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        out = cc
    given = " ".join(f"{k}={os.environ[k]}" for k in CONFIGURE_ENV if k in os.environ)
    return (f"{out}; {os.confstr('CS_GNU_LIBC_VERSION') or ''}; {given}; "
            f"{' '.join(optional_headers())}")


def build_key(release: Release, variant: str, sanitizer: str | None,
              fetched: fetch.Fetched) -> str | None:
    """Hash of every input of a build, or None when it cannot be known
    (a user's checkout may change under us: always rebuild incrementally)."""
    if fetched.source_dir is not None:
        return None
    h = hashlib.sha256()
    for part in (RECIPE, release.version, release.sha256, variant,
                 sanitizer or "", " ".join(configure_args(Path("PREFIX"), sanitizer)),
                 _tool_id()):
        h.update(part.encode() + b"\0")
    if variant != "stock":
        for entry in apply.series(release.version):
            h.update(entry.name.encode() + b"\0" + entry.path.read_bytes() + b"\0")
        for rel in apply.added_files():
            h.update(str(rel).encode() + b"\0" + (paths.REPO / rel).read_bytes() + b"\0")
    return h.hexdigest()


def read_stamp(install: Path) -> dict:
    try:
        return json.loads((install / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def build_env(sanitizer: str | None = None) -> dict[str, str]:
    env = dict(os.environ, LC_ALL="C", **SANITIZER_ENV.get(sanitizer or "", {}))
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONPATH", None)
    ccache_bin = Path("/usr/lib/ccache")
    if shutil.which("ccache") and ccache_bin.is_dir():
        env["PATH"] = f"{ccache_bin}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("CCACHE_DIR", str(paths.ccache_dir()))
        env.setdefault("CCACHE_BASEDIR", str(paths.BUILD / "tree"))
        env.setdefault("CCACHE_NOHASHDIR", "1")
        env.setdefault("CCACHE_COMPILERCHECK", "content")
        env.setdefault("CCACHE_MAXSIZE", "4G")
    return env


def _configure_id(src: Path, args: list[str]) -> str:
    h = hashlib.sha256(" ".join(args).encode() + b"\0" + _tool_id().encode())
    for name in ("configure", "Makefile.pre.in", "pyconfig.h.in",
                 "Modules/Setup", "Modules/Setup.stdlib.in", "Modules/Setup.bootstrap.in"):
        f = src / name
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


def _config_site(version: str, sanitizer: str | None) -> Path:
    """A site file that points configure at a cache shared by the stock and
    patched trees of one release (the series does not touch configure).
    Set this way, the cache file stays out of CONFIG_ARGS."""
    ident = hashlib.sha256(_tool_id().encode()).hexdigest()[:12]
    base = paths.BUILD / "tree" / f"config-{version}-{sanitizer or 'plain'}-{ident}"
    site = base.with_suffix(".site")
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(f'test "$cache_file" = /dev/null && cache_file="{base}.cache"\n')
    return site


def _relocate(install: Path, old_prefix: str) -> None:
    """Fix script shebangs of a finished build copied to a new prefix
    (the interpreter itself finds its prefix from its own location)."""
    new = str(install)
    for script in (install / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as f:
            head = f.read(2)
        if head != b"#!":
            continue
        text = script.read_bytes()
        first, _, rest = text.partition(b"\n")
        if old_prefix.encode() in first:
            script.write_bytes(first.replace(old_prefix.encode(), new.encode())
                               + b"\n" + rest)


def _cache_store(name: str, key: str, install: Path) -> None:
    store = paths.install_cache()
    store.mkdir(parents=True, exist_ok=True)
    target = store / f"{name}-{key[:20]}"
    if target.exists():
        return
    tmp = store / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(install, tmp, symlinks=True)
    os.replace(tmp, target)
    older = sorted((p for p in store.glob(f"{name}-*") if p != target),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in older[KEEP_CACHED - 1:]:
        shutil.rmtree(old, ignore_errors=True)


def _cached(name: str) -> list[Path]:
    """The finished builds of ``name`` in the user's cache, newest first."""
    return sorted(paths.install_cache().glob(f"{name}-*"),
                  key=lambda p: p.stat().st_mtime, reverse=True)


def _cache_restore(name: str, key: str, install: Path) -> bool:
    cached = paths.install_cache() / f"{name}-{key[:20]}"
    stamp = read_stamp(cached)
    if stamp.get("key") != key:
        return False
    tmp = install.with_name(f".restore-{install.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(cached, tmp, symlinks=True)
    shutil.rmtree(install, ignore_errors=True)
    os.replace(tmp, install)
    _relocate(install, stamp["prefix"])
    os.utime(cached)
    return True


def _compile_and_install(src: Path, obj: Path, install: Path, step: Step,
                         args: list[str], *, stamp: dict, jobs: int | None,
                         config_site: Path | None = None,
                         sanitizer: str | None = None) -> Path:
    """configure (only when its inputs changed), make, make install, stamp."""
    env = build_env(sanitizer)
    if config_site is not None:
        env["CONFIG_SITE"] = str(config_site)
    conf_id = _configure_id(src, args)
    conf_stamp = obj / ".pep522-configure"
    obj.mkdir(parents=True, exist_ok=True)
    if not (obj / "Makefile").exists() or not conf_stamp.exists() \
            or conf_stamp.read_text() != conf_id:
        step("configuring")
        step.run("configure", [str(src / "configure"), *args], obj, env)
        conf_stamp.write_text(conf_id)
    else:
        step("configuring: unchanged, skipped")

    jobs = jobs or os.cpu_count() or 1
    step(f"compiling (make -j{jobs})")
    compile_objects(step, obj, env, jobs)

    step(f"installing into {install}")
    shutil.rmtree(install, ignore_errors=True)
    step.run("make install", ["make", f"-j{jobs}", "install"], obj, env)
    python = install / "bin" / "python3"
    if not python.exists():
        raise BuildError(f"make install produced no {python}; log: {step.log_path}")
    stamp = stamp | {"prefix": str(install), "configure": args[1:]}
    (install / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    return python


# A line of make's output that compiles one object file.
COMPILES = re.compile(r"^(?=.*\s-c\s)(?=.*\s-o\s+\S+\.o(?:\s|$))")


def objects_to_compile(obj: Path, env: dict[str, str]) -> int | None:
    """How many object files ``make`` would compile now (``make -n``);
    None when make cannot tell.  What a release's setup.py compiles (3.11)
    is not foreseen: the count then goes on without a total."""
    proc = subprocess.run(["make", "-n"], cwd=obj, env=env, capture_output=True,
                          text=True)
    if proc.returncode:
        return None
    return sum(1 for line in proc.stdout.splitlines() if COMPILES.match(line)) or None


def compile_objects(step: Step, obj: Path, env: dict[str, str], jobs: int) -> None:
    """make, showing the objects compiled out of the total, the time it has
    taken and the log that holds make's output."""
    if step.quiet:
        step.run("make", ["make", f"-j{jobs}"], obj, env)
        return
    log = paths.relative(str(step.log_path))
    with progress.Progress("compiling", objects_to_compile(obj, env), "objects",
                           note=f"log: {log}") as bar, \
            progress.follow(step.log_path,
                            lambda line: bar.advance() if COMPILES.match(line) else None):
        step.run("make", ["make", f"-j{jobs}"], obj, env)


@contextlib.contextmanager
def _locked(name: str):
    """One build of a given name at a time, across processes: a second
    caller waits, then finds the build up to date."""
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    with (paths.LOGS / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(version: str, variant: str = "pep522", *, sanitizer: str | None = None,
          tarball: Path | None = None, source: Path | None = None,
          jobs: int | None = None, quiet: bool = False) -> Path:
    """Build (or reuse) one interpreter; returns its ``bin/python3``."""
    with _locked(paths.build_name(version, variant, sanitizer)):
        return _build(version, variant, sanitizer=sanitizer, tarball=tarball,
                      source=source, jobs=jobs, quiet=quiet)


def _build(version: str, variant: str, *, sanitizer: str | None,
           tarball: Path | None, source: Path | None,
           jobs: int | None, quiet: bool) -> Path:
    if variant not in VARIANTS:
        raise BuildError(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}")
    if sanitizer not in (None, *FLAVOURS):
        raise BuildError(f"unknown sanitizer {sanitizer!r}: choose from "
                         f"{', '.join(SANITIZERS)}")
    rel = release(version)
    name = paths.build_name(version, variant, sanitizer)
    install = paths.install_dir(version, variant, sanitizer)
    step = Step(paths.LOGS / f"{name}.log", quiet=quiet)

    fetched = fetch.fetch(rel, tarball=tarball, source=source, log=step)
    key = build_key(rel, variant, sanitizer, fetched)
    python = install / "bin" / "python3"
    headers = optional_headers()
    if key and read_stamp(install).get("key") == key and python.exists():
        step(f"up to date: {python}")
        return python
    if key and _cache_restore(name, key, install):
        step(f"restored from the build cache: {python}")
        return python
    for old in [install, *_cached(name)]:
        if why := headers_changed(read_stamp(old), headers):
            step(f"not reused: {paths.relative(str(old))} would differ from a build "
                 f"made now: {why}")
            break

    check_prerequisites()
    tree = paths.tree_dir(version, variant, sanitizer)
    src, obj = tree / "src", tree / "obj"
    step(f"applying: {variant} tree of CPython {version}")
    try:
        changed = apply.prepare(fetched, variant, src, log=step)
    except apply.ApplyError as exc:
        raise BuildError(str(exc)) from None
    step(f"applying: {changed} files changed in {src}")

    _compile_and_install(src, obj, install, step, configure_args(install, sanitizer),
                         config_site=_config_site(version, sanitizer), jobs=jobs,
                         sanitizer=sanitizer,
                         stamp={"key": key, "version": version, "variant": variant,
                                "sanitizer": sanitizer, "optional_headers": headers})
    if key:
        _cache_store(name, key, install)
    step(f"done: {python}")
    return python


def build_tree(prepared: Path, name: str, *, key: str, jobs: int | None = None,
               quiet: bool = False) -> Path:
    """Build a source tree prepared elsewhere (a distribution's patched tree,
    say) into ``build/NAME/``, with the same configure arguments as
    ``build()``. ``key`` names the tree's inputs: same key (and compiler),
    nothing runs; otherwise the tree is synced into ``build/tree/NAME/src``
    (only what differs is touched) and built there. One build of a name at
    a time. Returns its ``bin/python3``."""
    with _locked(name):
        install = paths.BUILD / name
        python = install / "bin" / "python3"
        step = Step(paths.LOGS / f"{name}.log", quiet=quiet)
        key = hashlib.sha256("\0".join([RECIPE, key, " ".join(configure_args(
            Path("PREFIX"), None)), _tool_id()]).encode()).hexdigest()
        if read_stamp(install).get("key") == key and python.exists():
            step(f"up to date: {python}")
            return python
        check_prerequisites()
        tree = paths.BUILD / "tree" / name
        changed = apply.sync_tree(prepared, tree / "src")
        step(f"applying: {changed} files changed in {tree / 'src'}")
        _compile_and_install(tree / "src", tree / "obj", install, step,
                             configure_args(install, None),
                             stamp={"key": key, "name": name}, jobs=jobs)
        step(f"done: {python}")
        return python


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s build --")
    fetch.source_options(p)
    options.variant(p)
    flavour = p.add_mutually_exclusive_group()
    flavour.add_argument("--sanitizer", choices=sorted(SANITIZERS))
    flavour.add_argument("--without-getrandom", action="store_const", dest="sanitizer",
                         const=NO_GETRANDOM, help="configure as if there were no "
                         "getrandom() nor getentropy(): os.urandom() reads /dev/urandom")
    p.add_argument("--jobs", type=int, help="make -j (default: all cores)")
    args = p.parse_args(argv)
    python = build(args.cpython, args.variant, sanitizer=args.sanitizer,
                   tarball=args.tarball, source=args.source, jobs=args.jobs)
    print(python)
    return 0
