"""The behaviour table: what stock and patched interpreters do under each
faked RNG mode, one fresh launch per cell (readiness is per launch).

    python -m pep522_harness behaviour [--cpython V ...] [--mode M ...]

Writes build/out/behaviour.md and behaviour.json and prints their path.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from pep522_harness.core import build, paths, tables, versions
from pep522_harness.core.tables import Cell

MODES = ("ready", "never-ready", "enosys", "eperm", "ready-on-wait")
VARIANTS = ("stock", "pep522")
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


def fakerng(mode: str, argv: list[str], *, count_file: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pep522_harness", "fakerng"]
    if count_file is not None:
        cmd += ["--count-urandom", str(count_file)]
    return subprocess.run(cmd + [mode, "--", *argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _timed_cell(proc: subprocess.CompletedProcess[str]) -> Cell:
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
    cells: dict[str, Cell] = {}
    for row, code in PROBES.items():
        cells[row] = _timed_cell(fakerng(mode, [str(python), "-I", "-c", code]))
    with tempfile.TemporaryDirectory() as tmp:
        count = Path(tmp) / "count"
        proc = fakerng(mode, [str(python), "-I", "-c", "import random"],
                       count_file=count)
        warned = sum(WARNING_MARK in line for line in proc.stderr.splitlines())
        cells["start-up warning"] = Cell("warns" if warned else "silent",
                                         "warns" if warned else "silent",
                                         detail=proc.stderr, extra={"lines": warned})
        try:
            n = int(count.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            cells["/dev/urandom opens"] = Cell("unknown", "unknown")
        else:
            cells["/dev/urandom opens"] = Cell("count", str(n), extra={"count": n})
    return cells


def collect(versions_: list[str], modes: list[str]) -> dict:
    table: dict = {"rows": list(ROWS), "columns": []}
    for version in versions_:
        pythons = {v: build.build(version, v, quiet=True) for v in VARIANTS}
        for mode in modes:
            for variant in VARIANTS:
                cells = probe(pythons[variant], mode)
                table["columns"].append({
                    "version": version, "mode": mode, "variant": variant,
                    "cells": {r: asdict(c) for r, c in cells.items()}})
    return table


def add_regrtest(table: dict, outcomes: list) -> None:
    """Fill the 'regrtest failures' row from regrtest.Outcome objects."""
    if "regrtest failures" not in table["rows"]:
        table["rows"].append("regrtest failures")
    for col in table["columns"]:
        for o in outcomes:
            if (o.version, o.variant, o.mode) == (col["version"], col["variant"], col["mode"]):
                failed = o.modules("failed")
                col["cells"]["regrtest failures"] = asdict(Cell(
                    "failed" if failed else "none", ", ".join(failed) or "none",
                    extra={"failed": failed}))


def cell(table: dict, version: str, mode: str, variant: str, row: str) -> dict:
    for col in table["columns"]:
        if (col["version"], col["mode"], col["variant"]) == (version, mode, variant):
            return col["cells"][row]
    raise KeyError((version, mode, variant))


def write(table: dict, out: Path | None = None) -> Path:
    out = out or paths.OUT / "behaviour"
    tables.write_json(out.with_suffix(".json"), table)
    lines = []
    for version in dict.fromkeys(c["version"] for c in table["columns"]):
        cols = [c for c in table["columns"] if c["version"] == version]
        rows = [[row, *(c["cells"].get(row, {}).get("text", "") for c in cols)]
                for row in table["rows"]]
        lines += [f"## CPython {version}", "",
                  *tables.markdown(["behaviour", *(f"{c['mode']}<br>{c['variant']}"
                                                   for c in cols)], rows), ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    return out.with_suffix(".md")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pep522_harness behaviour")
    p.add_argument("--cpython", action="append", choices=list(versions.releases()))
    p.add_argument("--mode", action="append", choices=MODES)
    args = p.parse_args(argv)
    table = collect(args.cpython or list(versions.releases()), args.mode or list(MODES))
    path = write(table)
    print(path.read_text())
    print(f"behaviour table: {path} (and {path.with_suffix('.json').name})")
    return 0
