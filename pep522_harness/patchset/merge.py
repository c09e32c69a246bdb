"""Three-way merge of one file, as a refresh of the series needs it.

``merge3(base, upstream, patched)`` carries the change from ``base`` to
``patched`` (one hunk of a patch, on the old release's file) onto
``upstream`` (the new release's file), line by line as diff3 does: where
only one side changed a run of lines, that side wins; where both changed
the same lines differently, it is a conflict.

Prose is wrapped at arbitrary points, so in prose (reStructuredText, man
pages, text) a conflict is merged once more word by word: a patch that
adds a sentence to a paragraph whose other words upstream reworded merges,
and the lines the merge made longer than both sides' lines are refilled.
Code is not: two changes to one line of code are a conflict for a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

PROSE_SUFFIXES = (".rst", ".txt", ".man", ".md")
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
# a line that continues the paragraph above it (not a list item, a
# directive, a roff request or a literal block)
_CONTINUES = re.compile(r"^\s*(?:[\w(`:\"']|\*\S)")


@dataclass(frozen=True)
class Conflict:
    """Lines both sides changed differently: ``base`` became ``upstream``
    in the new release and ``patched`` in the patch."""
    base: tuple[str, ...]
    upstream: tuple[str, ...]
    patched: tuple[str, ...]


@dataclass(frozen=True)
class Merge:
    """The merged lines (with upstream's side where a conflict is) and the
    conflicts; clean when there are none."""
    lines: tuple[str, ...]
    conflicts: tuple[Conflict, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts

    @property
    def text(self) -> str:
        return "".join(self.lines)


def is_prose(path: str) -> bool:
    return path.endswith(PROSE_SUFFIXES)


def lines(text: str) -> list[str]:
    """``text`` as lines, each with its newline: split at newlines only (a
    form feed in C source is part of its line)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _matches(base: Sequence[str], other: Sequence[str]) -> list[tuple[int, int, int]]:
    return [(m.a, m.b, m.size) for m in SequenceMatcher(None, base, other, autojunk=False)
            .get_matching_blocks()]


def _regions(base: Sequence[str], a: Sequence[str], b: Sequence[str]
             ) -> Iterator[tuple[bool, slice, slice, slice]]:
    """(stable, base slice, a slice, b slice), in order: a stable region is
    unchanged on both sides; between them, what either side changed."""
    syncs = []
    ma, mb = _matches(base, a), _matches(base, b)
    i = j = 0
    while i < len(ma) and j < len(mb):
        (abase, aat, alen), (bbase, bat, blen) = ma[i], mb[j]
        lo, hi = max(abase, bbase), min(abase + alen, bbase + blen)
        if lo < hi:
            syncs.append((lo, hi, aat + lo - abase, bat + lo - bbase))
        if abase + alen < bbase + blen:
            i += 1
        else:
            j += 1
    syncs.append((len(base), len(base), len(a), len(b)))
    zb = za = zo = 0
    for lo, hi, at, bt in syncs:
        if (zb, za, zo) != (lo, at, bt):
            yield False, slice(zb, lo), slice(za, at), slice(zo, bt)
        if hi > lo:
            yield True, slice(lo, hi), slice(at, at + hi - lo), slice(bt, bt + hi - lo)
        zb, za, zo = hi, at + hi - lo, bt + hi - lo


def _merge(base: Sequence[str], upstream: Sequence[str], patched: Sequence[str]
           ) -> Iterator[list[str] | Conflict]:
    for stable, sb, su, sp in _regions(base, upstream, patched):
        b, u, p = list(base[sb]), list(upstream[su]), list(patched[sp])
        if stable or p == b or u == p:
            yield u
        elif u == b:
            yield p
        else:
            yield Conflict(tuple(b), tuple(u), tuple(p))


def _by_words(conflict: Conflict) -> list[str] | None:
    """The conflict merged word by word and refilled, or None."""
    sides = ["".join(lines) for lines in (conflict.base, conflict.upstream,
                                          conflict.patched)]
    base, upstream, patched = (_TOKEN.findall(s) for s in sides)
    merged = []
    for part in _merge(base, upstream, patched):
        if isinstance(part, Conflict):
            return None
        merged += part
    width = max(len(line.rstrip("\n")) for line in conflict.upstream + conflict.patched)
    return refill(lines("".join(merged)), width)


def refill(lines: list[str], width: int) -> list[str]:
    """Lines longer than ``width`` broken at a space, the rest carried into
    the next line of the paragraph (same indentation) or onto a line of its
    own; lines that fit are left as they are."""
    out = list(lines)
    i = 0
    while i < len(out):
        line = out[i].rstrip("\n")
        end = out[i][len(line):]
        cut = line.rfind(" ", 0, width + 1)
        indent = len(line) - len(line.lstrip(" "))
        if len(line) <= width or cut <= indent:
            i += 1
            continue
        head, rest = line[:cut].rstrip(" "), line[cut:].strip(" ")
        out[i] = head + "\n"
        nxt = out[i + 1] if i + 1 < len(out) else ""
        same_indent = len(nxt) - len(nxt.lstrip(" ")) == indent
        if nxt.strip() and same_indent and _CONTINUES.match(nxt):
            out[i + 1] = " " * indent + rest + " " + nxt.lstrip(" ")
        else:
            out.insert(i + 1, " " * indent + rest + end)
        i += 1
    return out


def merge3(base: Sequence[str], upstream: Sequence[str], patched: Sequence[str],
           *, prose: bool = False) -> Merge:
    """Lines (each with its newline) of the three-way merge; ``prose``:
    conflicts are merged again word by word (see the module's docstring)."""
    lines: list[str] = []
    conflicts: list[Conflict] = []
    for part in _merge(base, upstream, patched):
        if isinstance(part, Conflict):
            words = _by_words(part) if prose else None
            if words is None:
                conflicts.append(part)
                lines += part.upstream
                continue
            part = words
        lines += part
    return Merge(tuple(lines), tuple(conflicts))
