"""Sessions of the PEP 522 patch set for CPython.

The noxfile is a table of contents: every session is a few lines that call
the harness package ``pep522_harness``, where the logic lives.

    nox -s build demo            the main job: build the patched interpreter, show it
    nox -s test                  the test suite (what CI runs)
    nox -s fetch|apply|build -- --cpython 3.11.2 [--variant stock] ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

# The harness is imported from this checkout, as pip's noxfile imports its
# own tools: nox puts nothing on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pep522_harness.core.versions import VARIANTS, releases  # noqa: E402

nox.options.sessions = ["build", "demo"]
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = False

SUPPORTED = tuple(releases())          # versions.toml, one row each


def _harness(session: nox.Session, command: str, *args: str) -> None:
    """Run ``python -m pep522_harness COMMAND`` with nox's own interpreter."""
    session.run(sys.executable, "-m", "pep522_harness", command, *args,
                external=True)


@nox.session(venv_backend="none")
def fetch(session: nox.Session) -> None:
    """Fetch and verify the pinned upstream tarball (--cpython V, --tarball, --source)."""
    _harness(session, "fetch", *session.posargs)


@nox.session(venv_backend="none")
def apply(session: nox.Session) -> None:
    """Unpack a fresh tree and apply the series with zero fuzz."""
    _harness(session, "apply", *session.posargs)


@nox.session(venv_backend="none")
def build(session: nox.Session) -> None:
    """Build build/cpython-VERSION-VARIANT/bin/python3 (--cpython, --variant)."""
    _harness(session, "build", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """The harness's test suite, with the interpreters it checks built first."""
    session.install("pytest")
    for version in SUPPORTED:
        for variant in VARIANTS:
            _harness(session, "build", "--cpython", version, "--variant", variant)
    session.run("pytest", "Tests", *session.posargs)


@nox.session(venv_backend="none")
def demo(session: nox.Session) -> None:
    """Stock beside patched under a faked not-ready RNG (--cpython V)."""
    _harness(session, "demo", *session.posargs)


@nox.session(venv_backend="none")
def regrtest(session: nox.Session) -> None:
    """CPython's tests under a fake RNG mode: --cpython V --mode M [--full] [TEST ...]."""
    _harness(session, "regrtest", *session.posargs)


@nox.session(venv_backend="none")
def boot(session: nox.Session) -> None:
    """Boot a real kernel whose RNG is not ready, the interpreter in its initramfs
    (--cpython V, --variant pep522|stock, --kernel PATH, --rng-ready)."""
    _harness(session, "boot", *session.posargs)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """pyperf, patched against stock: [--cpython V ...] [--fast | --rigorous]."""
    _harness(session, "bench", *session.posargs)


@nox.session(venv_backend="none")
def fakerng(session: nox.Session) -> None:
    """Run a command with the kernel RNG faked: -- MODE -- COMMAND [ARGS...]."""
    if not session.posargs:
        session.error("Usage: nox -s fakerng -- MODE -- COMMAND [ARGS...]")
    _harness(session, "fakerng", *session.posargs)


@nox.session(venv_backend="none")
def export(session: nox.Session) -> None:
    """The series for packagers and image builders: [--cpython V]
    --format quilt|mbox|diff|buildroot|yocto [--out DIR] [--signoff 'NAME <EMAIL>']."""
    if not any(a.split("=")[0] == "--format" for a in session.posargs):
        session.error("Usage: nox -s export -- [--cpython V] "
                      "--format quilt|mbox|diff|buildroot|yocto [--out DIR] "
                      "[--signoff 'NAME <EMAIL>']")
    _harness(session, "export", *session.posargs)


@nox.session(venv_backend="none")
def refresh(session: nox.Session) -> None:
    """Carry the series to a new upstream release: --cpython NEW [--from BASE]
    [--tarball PATH --sha256 HEX] [--dry-run]."""
    if not any(a.split("=")[0] == "--cpython" for a in session.posargs):
        session.error("Usage: nox -s refresh -- --cpython NEW [--from BASE] "
                      "[--tarball PATH --sha256 HEX] [--dry-run]")
    _harness(session, "refresh", *session.posargs)


@nox.session(venv_backend="none")
def debian(session: nox.Session) -> None:
    """Our series after Debian's own patches, built and checked: [--cpython V] [--no-build]."""
    _harness(session, "debian", *session.posargs)


@nox.session(venv_backend="none")
def programs(session: nox.Session) -> None:
    """Real programs, stock vs patched, under never-ready and ready-on-wait:
    [--cpython V ...] [--mode M ...] [--only NAME ...]."""
    _harness(session, "programs", *session.posargs)


@nox.session
def impact(session: nox.Session) -> None:
    """A project's own tests through tox on our interpreters under a fake RNG:
    --project PATH|NAME [--cpython V] [--mode M]."""
    if "--project" not in " ".join(session.posargs):
        session.error("Usage: nox -s impact -- --project PATH|NAME [--cpython V] [--mode M]")
    session.install("tox")
    session.run("python", "-m", "pep522_harness", "impact", *session.posargs)
