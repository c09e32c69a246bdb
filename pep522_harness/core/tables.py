"""The tables the harness writes: one cell type, one Markdown writer, one JSON writer.

Rows come in the order the caller gives them: a table's order is data (its
own list of rows, or the JSON file it merges into), never the writer's.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Cell:
    """What one program did under one variant and mode: in a word (``kind``),
    in a line (``text``), and the figures behind it."""
    kind: str                        # works | raises | waits | blocks | fails, ok, ...
    text: str
    seconds: float = 0.0             # wall time of the launch
    waited: float = 0.0              # held in a blocking getrandom() until readiness
    blocking_calls: int = 0          # blocking getrandom() seen (never-ready)
    where: str = ""                  # first frame that raised BlockingIOError
    returncode: int | None = None
    detail: str = ""                 # tail of the output when it did not work
    extra: dict = field(default_factory=dict)


def markdown(header: Sequence[str], rows: Iterable[Sequence[object]], *,
             right: Container[int] = (), empty: str = "",
             escape: bool = False) -> list[str]:
    """A Markdown table, one line per row, rows in the order given.

    ``right``: the columns aligned right; ``empty``: the first cell of the one
    row shown when there is none; ``escape``: a ``|`` in a cell is escaped.
    """
    def line(cells: Iterable[object]) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    lines = [line(header),
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    for row in rows:
        lines.append(line(str(c).replace("|", "\\|") if escape else c for c in row))
    if len(lines) == 2 and empty:
        lines.append(f"| {empty} |" + " |" * (len(header) - 1))
    return lines


def write_json(path: Path, data: Any, *, sort_keys: bool = False) -> Path:
    """``data`` as the harness's JSON files hold it (indent 1, a final newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=sort_keys) + "\n")
    return path
