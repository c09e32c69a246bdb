"""The behaviour table: what stock and patched interpreters do under each
faked RNG mode, one fresh launch per cell (readiness is per launch).

    python -m pep522_harness behaviour [--cpython V ...] [--mode M ...]

Writes build/out/behaviour.md and behaviour.json and prints their path.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from pep522_harness.core import build, options, paths, tables
from pep522_harness.core.tables import Cell
from pep522_harness.core.versions import VARIANTS
from pep522_harness.fake import modes, probes


def collect(versions_: list[str], modes_: list[str]) -> dict:
    table: dict = {"rows": list(probes.ROWS), "columns": []}
    for version in versions_:
        pythons = {v: build.build(version, v, quiet=True) for v in VARIANTS}
        for mode in modes_:
            for variant in VARIANTS:
                cells = probes.probe(pythons[variant], mode)
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
                failed = o.failures()
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
    options.cpython(p, many=True, every=True)
    modes.option(p, default=modes.EVERY)
    args = p.parse_args(argv)
    table = collect(args.cpython, args.mode)
    path = write(table)
    print(path.read_text())
    print(f"behaviour table: {path} (and {path.with_suffix('.json').name})")
    return 0
