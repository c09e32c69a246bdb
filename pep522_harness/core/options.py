"""The options every command shares, declared once: ``--cpython`` and
``--variant``, their choices read from versions.toml.  (``--mode`` is the
fake RNG's: fake/modes.py.)"""

from __future__ import annotations

import argparse
from typing import Any

from .versions import DEFAULT_VERSION, VARIANTS, releases


class Many(argparse.Action):
    """A repeatable option whose first use replaces the default."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        have = getattr(namespace, self.dest)
        have = [] if have is self.default else have
        new = values if isinstance(values, list) else [values]
        setattr(namespace, self.dest, list(dict.fromkeys([*have, *new])))


def cpython(p: argparse.ArgumentParser, *, many: bool = False, every: bool = False) -> None:
    """--cpython VERSION: a supported release (default: the default one);
    ``many``: repeatable, a list (``every``: default every supported one)."""
    known = list(releases())
    if not many:
        p.add_argument("--cpython", default=DEFAULT_VERSION, choices=known,
                       metavar="VERSION", help=f"CPython release: {', '.join(known)} "
                       f"(default {DEFAULT_VERSION})")
        return
    default = known if every else [DEFAULT_VERSION]
    p.add_argument("--cpython", action=Many, default=default, choices=known,
                   metavar="VERSION", help=f"CPython release, repeatable: "
                   f"{', '.join(known)} (default {' '.join(default)})")


def _variants(text: str) -> list[str]:
    if text == "both":
        return list(VARIANTS)
    if text not in VARIANTS:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from "
                                         f"{', '.join((*VARIANTS, 'both'))})")
    return [text]


def variant(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    """--variant stock|pep522 (default pep522); ``many``: repeatable, a list,
    ``both`` for each (the default)."""
    if not many:
        p.add_argument("--variant", default="pep522", choices=VARIANTS)
        return
    p.add_argument("--variant", action=Many, default=list(VARIANTS), type=_variants,
                   metavar="{" + ",".join((*VARIANTS, "both")) + "}",
                   help="repeatable (default: both, stock first)")
