"""The table of supported CPython releases (versions.toml beside this file),
and the variants every release is built in: stock, and with the series."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import HarnessError

VARIANTS = ("stock", "pep522")        # the baseline first, then the patched

TABLE = Path(__file__).with_name("versions.toml")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)(\d+))?$")
_ROW = re.compile(r'^\[versions\."([^"]+)"\]\s*$')


@dataclass(frozen=True)
class Release:
    version: str
    file: str
    sha256: str
    debian_source: str
    debian_suite: str

    @property
    def url(self) -> str:
        return f"https://www.python.org/ftp/python/{self.version}/{self.file}"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


class UnknownVersion(HarnessError, LookupError):
    pass


@cache
def _table() -> dict:
    with TABLE.open("rb") as f:
        return tomllib.load(f)


@cache
def releases() -> dict[str, Release]:
    """The supported releases, in the table's order (the default first)."""
    return {v: Release(version=v, **row) for v, row in _table()["versions"].items()}


# The newest supported release: the first row of the table.
DEFAULT_VERSION = next(iter(releases()))


def boot_suite() -> str:
    """The Debian suite whose stock kernel and busybox boot the interpreters."""
    return str(_table()["boot"]["debian_suite"])


def release(version: str) -> Release:
    try:
        return releases()[version]
    except KeyError:
        known = ", ".join(releases())
        raise UnknownVersion(
            f"CPython {version} is not a supported base (supported: {known}); "
            f"add a row to {TABLE.name} to support it") from None


def order(version: str) -> tuple[int, ...]:
    """Sort key of a CPython version: 3.13.15 after 3.13.5, rc1 before final."""
    m = _VERSION.match(version)
    if not m:
        raise UnknownVersion(f"{version!r} is not a CPython version (like 3.13.15)")
    major, minor, micro, pre, n = m.groups()
    return (int(major), int(minor), int(micro), "abrc".find(pre) if pre else 9, int(n or 0))


def row(rel: Release) -> str:
    """A release's row of versions.toml, as the table writes it."""
    return (f'[versions."{rel.version}"]\nfile = "{rel.file}"\nsha256 = "{rel.sha256}"\n'
            f'debian_source = "{rel.debian_source}"\ndebian_suite = "{rel.debian_suite}"\n')


def with_row(text: str, rel: Release) -> str:
    """The text of versions.toml with a row for ``rel``, in its place: the
    rows run from the newest release to the oldest."""
    lines = text.splitlines(keepends=True)
    rows = [(i, m.group(1)) for i, line in enumerate(lines) if (m := _ROW.match(line))]
    if any(v == rel.version for _i, v in rows):
        raise HarnessError(f"{TABLE.name} has a row for {rel.version} already")
    older = [i for i, v in rows if order(v) < order(rel.version)]
    if older:
        at = older[0]
    else:   # after the last row: before the next table, or at the end
        last = rows[-1][0] if rows else len(lines)
        at = next((i for i in range(last + 1, len(lines))
                   if lines[i].startswith("[")), len(lines))
    return "".join(lines[:at]) + row(rel) + "\n" + "".join(lines[at:])
