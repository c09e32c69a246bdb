"""The table of supported CPython releases (versions.toml beside this file)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DEFAULT_VERSION = "3.13.5"
VARIANTS = ("pep522", "stock")

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


class UnknownVersion(LookupError):
    pass


@cache
def releases() -> dict[str, Release]:
    with _TABLE.open("rb") as f:
        data = tomllib.load(f)
    return {v: Release(version=v, **row) for v, row in data["versions"].items()}


def release(version: str) -> Release:
    try:
        return releases()[version]
    except KeyError:
        known = ", ".join(releases())
        raise UnknownVersion(
            f"CPython {version} is not a supported base (supported: {known}); "
            f"add a row to {_TABLE.name} to support it") from None
