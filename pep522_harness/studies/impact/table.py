"""The impact table: a row per program (programs.py) and per project
(projects.py), columns version x variant x mode, cells works / raises
(where) / waits (how long) / blocks.

Its data is docs/impact.json, committed beside its Markdown twin
docs/impact.md: a run merges its rows into the JSON, so running one release
or one project keeps every other row, and the Markdown is always made from
the JSON.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from pathlib import Path

from pep522_harness.core import paths, tables, versions
from pep522_harness.core.versions import VARIANTS
from pep522_harness.fake import modes

# The table's store, committed beside its Markdown.
JSON = paths.REPO / "docs" / "impact.json"

LEGEND = f"""\
Columns: **ready** is an ordinary machine (no fake): there stock and patched
must do the same, and any difference is a bug; **never-ready** and
**ready-on-wait** fake a kernel RNG that is not ready (see the README).
Cells: **works**: did its job without waiting; **raises at F:L**: failed with
BlockingIOError first raised at F:L; **waits S s**: did its job after S seconds
held in a blocking getrandom() (ready-on-wait: the fake kernel gets ready 0.1 s
after the first blocking call); **blocks at F:L**: under never-ready it made a
blocking getrandom(), which a kernel that never gets ready holds for ever: held
{modes.HOLD_LIMIT:g} s, the program was stopped, and its stack says where it
waited.  For projects: the outcome of the test suite (failed tests, and the frame
where BlockingIOError was first raised)."""


def load(path: Path = JSON) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"rows": {}}


def store(docs: bool) -> Path:
    """Where a run records its rows: docs/impact.json, or with --no-docs a
    scratch copy of it in build/out/ (so docs/ stays as it was)."""
    if docs:
        return JSON
    scratch = paths.OUT / "impact.json"
    if not scratch.exists() and JSON.exists():
        scratch.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_text(JSON.read_text())
    return scratch


def record(name: str, kind: str, what: str, cells: dict[str, dict], command: str,
           details: dict | None = None, why: str | None = None,
           path: Path = JSON) -> None:
    """Merge one row's cells (keyed by 'VERSION VARIANT MODE') into the table."""
    data = load(path)
    row = data["rows"].setdefault(name, {"kind": kind, "cells": {}})
    row.update(kind=kind, what=what)
    made = {"command": command, "date": datetime.date.today().isoformat()}
    for version in {c.split()[0] for c in cells}:
        row.setdefault("made", {})[version] = made
    row["cells"].update(paths.portable(cells))
    if details is not None:
        row.setdefault("details", {}).update(paths.portable(details))
    if why is not None:
        row["why"] = why
    tables.write_json(path, data)


def row_order(data: dict, programs: Sequence[str]) -> list[str]:
    """Programs first, in ``programs``' order, then projects by name."""
    return sorted(data["rows"], key=lambda n: (
        data["rows"][n]["kind"] != "program",
        programs.index(n) if n in programs else 0, n))


def _index(order: Sequence[str], name: str) -> int:
    return order.index(name) if name in order else len(order)


def markdown(data: dict, order: Sequence[str]) -> str:
    """The table, one section per release (the default release first)."""
    lines: list[str] = []
    columns = sorted({c for r in data["rows"].values() for c in r["cells"]},
                     key=lambda c: (c.split()[0] != versions.DEFAULT_VERSION, c.split()[0],
                                    _index(modes.STUDIED, c.split()[2]),
                                    VARIANTS.index(c.split()[1])))
    for version in dict.fromkeys(c.split()[0] for c in columns):
        cols = [c for c in columns if c.split()[0] == version]
        rows = [[name if data["rows"][name]["kind"] == "program" else f"{name} (tests)",
                 *(data["rows"][name]["cells"].get(c, {}).get("text", "") for c in cols)]
                for name in order if any(c in data["rows"][name]["cells"] for c in cols)]
        lines += [f"### CPython {version}", "",
                  *tables.markdown(["program or project",
                                    *(f"{c.split()[2]}<br>{c.split()[1]}" for c in cols)],
                                   rows), ""]
    return "\n".join(lines)


def project_details(data: dict, order: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in order:
        row = data["rows"][name]
        if row["kind"] != "project":
            continue
        out += [f"## {name}", "", row.get("why", ""), ""]
        for key, d in sorted(row.get("details", {}).items()):
            changed = d.get("changed", [])
            # Tests that were not collected because their module failed to
            # import are one line, not one each.
            lost = [t for t in changed if t["pep522"] == "absent"]
            shown = [t for t in changed if t["pep522"] != "absent"]
            out.append(f"- {key}: {len(changed)} tests change outcome"
                       + (":" if changed else "."))
            for t in shown[:15]:
                out.append(f"  - `{t['test']}`: {t['stock']} -> {t['pep522']}"
                           + (f" (BlockingIOError at `{t['where']}`)" if t.get("where") else ""))
            if len(shown) > 15:
                out.append(f"  - ... and {len(shown) - 15} more")
            if lost:
                out.append(f"  - {len(lost)} tests not collected: their module failed "
                           "to import")
            if d.get("first_frame"):
                out.append(f"  - first BlockingIOError raised at `{d['first_frame']}`")
        out.append("")
    return out


def write(path: Path, programs: Sequence[str]) -> Path:
    """Make the Markdown twin of the table (docs/impact.md) from its JSON;
    ``programs``: the program rows in their order."""
    data = load(path)
    order = row_order(data, programs)
    made = [[name, version, f"`{m['command']}`", m["date"]] for name in order
            for version, m in sorted(data["rows"][name].get("made", {}).items(), reverse=True)]
    text = "\n".join([
        "# Impact of PEP 522 on real programs and projects", "",
        "Stock and patched CPython, built identically, under the fake not-ready RNG "
        "(`python -m pep522_harness fakerng MODE -- ...`).", "", LEGEND, "",
        markdown(data, order), "## Rows: what each one runs", "",
        *[f"- **{n}**: {data['rows'][n].get('what', '')}" for n in order], "",
        *project_details(data, order),
        "## Made by", "", *tables.markdown(["row", "CPython", "made by", "date"], made), ""])
    md = path.with_suffix(".md")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text)
    return md
