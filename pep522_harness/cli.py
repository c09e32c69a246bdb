"""The harness's one command line: ``python -m pep522_harness COMMAND [OPTIONS]``.

Every nox session runs one of these commands.  The table below names, for
each command, the module whose ``main(argv)`` runs it; that module declares
its own options (the shared ones once: ``--cpython`` and ``--variant`` in
``core/options.py``, ``--mode`` in ``fake/modes.py``).  A command's module is
imported only when it runs.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str         # below pep522_harness
    summary: str


COMMANDS: dict[str, Command] = {
    "fetch": Command("core.fetch", "get a supported release's tarball, checked against its pin"),
    "apply": Command("core.apply", "unpack a fresh tree and apply the series with zero fuzz"),
    "build": Command("core.build", "build (or reuse) a stock or patched interpreter"),
    "fakerng": Command("fake.launcher", "run a command with the kernel RNG faked as not ready"),
    "export": Command("patchset.export", "the series for packagers: quilt, git am mail, one diff"),
    "audit": Command("patchset.audit", "every caller of the system RNG in the stdlib, decided"),
    "behaviour": Command("studies.behaviour", "the behaviour table: stock and patched per mode"),
    "demo": Command("studies.demo", "stock beside patched under a faked not-ready RNG"),
    "regrtest": Command("studies.regrtest", "CPython's own tests under a mode, stock vs patched"),
    "boot": Command("studies.boot", "a real kernel whose RNG is not ready, the interpreter as /init"),
    "bench": Command("studies.bench", "pyperf, patched against stock, and the wake-up"),
    "debian": Command("studies.debian", "our series after Debian's own patches, built and checked"),
    "programs": Command("studies.impact.programs", "real programs, stock vs patched, per mode"),
    "impact": Command("studies.impact.projects", "a project's own tests through tox, per mode"),
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
    module = importlib.import_module(f"{__package__}.{COMMANDS[argv[0]].module}")
    code: int = module.main(argv[1:])
    return code
