"""The harness's one command line: ``python -m pep522_harness COMMAND [OPTIONS]``.

Every nox session runs one of these commands.  The table below names, for
each command, the ``main(argv)`` of the module that runs it; that module
declares its own options (the shared ones once: ``--cpython`` and
``--variant`` in core/options.py, ``--mode`` in fake/modes.py).  A failure
the harness explains (a HarnessError) is printed without a traceback, exit
status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from .core import apply, build, fetch
from .core.errors import HarnessError
from .fake import launcher
from .patchset import audit, export, pyenv, refresh
from .studies import behaviour, bench, boot, debian, demo, regrtest
from .studies.impact import programs, projects


@dataclass(frozen=True)
class Command:
    main: Callable[[list[str]], int]
    summary: str


COMMANDS: dict[str, Command] = {
    "fetch": Command(fetch.main, "get a release's tarball, checked against its pin"),
    "apply": Command(apply.main, "a fresh tree with the series applied, zero fuzz"),
    "build": Command(build.main, "build (or reuse) a stock or patched interpreter"),
    "fakerng": Command(launcher.main, "run a command with the kernel RNG not ready"),
    "export": Command(export.main, "the series for packagers: quilt, mail, one diff, "
                      "Buildroot, Yocto"),
    "pyenv-cache": Command(pyenv.main, "the verified tarball where pyenv install takes it"),
    "refresh": Command(refresh.main, "carry the series to a new upstream release"),
    "audit": Command(audit.main, "every caller of the system RNG in the stdlib, decided"),
    "behaviour": Command(behaviour.main, "the behaviour table: stock and patched per mode"),
    "demo": Command(demo.main, "stock beside patched under a not-ready RNG"),
    "regrtest": Command(regrtest.main, "CPython's own tests under a mode, stock vs patched"),
    "boot": Command(boot.main, "a real kernel whose RNG is not ready, Python as /init"),
    "bench": Command(bench.main, "pyperf, patched against stock, and the wake-up"),
    "debian": Command(debian.main, "our series after Debian's patches, built and checked"),
    "programs": Command(programs.main, "real programs, stock vs patched, per mode"),
    "impact": Command(projects.main, "a project's own tests through tox, per mode"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    return "\n".join(["usage: python -m pep522_harness COMMAND [OPTIONS]", "",
                      *(f"  {name:{width}}  {c.summary}" for name, c in COMMANDS.items())])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]].main(argv[1:])
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
