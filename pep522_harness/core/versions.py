"""The table of supported CPython releases (versions.toml beside this file),
and the variants every release is built in: stock, and with the series."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import HarnessError

VARIANTS = ("stock", "pep522")        # the baseline first, then the patched

_TABLE = Path(__file__).with_name("versions.toml")


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
    with _TABLE.open("rb") as f:
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
            f"add a row to {_TABLE.name} to support it") from None
