"""What an interpreter does under a fake RNG mode: the questions of the
behaviour table, one fresh launch each (readiness is per launch).

The behaviour and debian studies ask them; boot's console records answer
the same rows on a real kernel.
"""

from __future__ import annotations

from pathlib import Path

from pep522_harness.core.tables import Cell

from . import modes

WARNING_MARK = "random number generator is not ready"

_TIMED = """\
import sys, time
t = time.monotonic()
try:
    {call}
except BlockingIOError as exc:
    print("raises", "EAGAIN" if exc.errno == 11 else exc.errno, round(time.monotonic() - t, 2))
except AttributeError:
    print("absent", 0, 0)
else:
    print("ok", 0, round(time.monotonic() - t, 2))
"""

PROBES = {
    "os.urandom": _TIMED.format(call="import os; os.urandom(16)"),
    "SystemRandom": _TIMED.format(call="import random; random.SystemRandom().random()"),
    "secrets": _TIMED.format(call="import secrets; secrets.token_bytes(32)"),
    "wait_for_system_rng": _TIMED.format(
        call="import secrets; secrets.wait_for_system_rng()"),
    "random seeding": _TIMED.format(call="import random; random.random()"),
}
ROWS = (*PROBES, "start-up warning", "/dev/urandom opens")


def _timed_cell(proc: modes.Run) -> Cell:
    if proc.blocked:
        return Cell("blocks", "blocks", extra={"held": proc.held})
    words = proc.stdout.split()
    if proc.returncode or len(words) != 3:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return Cell("error", f"error: {last[:60]}", returncode=proc.returncode)
    kind, detail, secs = words[0], words[1], float(words[2])
    if kind == "raises":
        return Cell(kind, f"raises {detail}", waited=secs, extra={"errno": detail})
    if kind == "absent":
        return Cell(kind, "absent")
    text = "ok" if secs < 0.05 else f"ok after {secs:.1f} s"
    return Cell(kind, text, waited=secs)


def probe(python: Path, mode: str) -> dict[str, Cell]:
    """Every row, each asked in a launch of its own under ``mode``."""
    cells = {row: _timed_cell(modes.run(mode, [str(python), "-I", "-c", code], timeout=60))
             for row, code in PROBES.items()}
    run = modes.run(mode, [str(python), "-I", "-c", "import random"], timeout=60,
                    count_urandom=True)
    warned = sum(WARNING_MARK in line for line in run.stderr.splitlines())
    cells["start-up warning"] = Cell("warns" if warned else "silent",
                                     "warns" if warned else "silent",
                                     detail=run.stderr, extra={"lines": warned})
    n = run.urandom_opens
    cells["/dev/urandom opens"] = (Cell("unknown", "unknown") if n is None
                                   else Cell("count", str(n), extra={"count": n}))
    return cells
