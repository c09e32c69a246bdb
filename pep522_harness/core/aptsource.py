"""A private apt configuration for fetching Debian packages without root
changes: its own sources list, state and cache directories.

The archive URIs are taken from the machine's own apt sources, so the project
names no mirror: whatever Debian mirror (or proxy) the machine uses serves us
too. Nothing system-wide is read-write: the system's package status is
replaced by an empty file and the lists live in our own state directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import HarnessError

SYSTEM_SOURCES = Path("/etc/apt/sources.list")
SYSTEM_SOURCES_D = Path("/etc/apt/sources.list.d")
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


class AptError(HarnessError):
    pass


@dataclass(frozen=True)
class Archive:
    uri: str
    keyring: str | None


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _entries(sources: Path, sources_d: Path) -> list[tuple[str, list[str], str | None]]:
    """(uri, suites, keyring) of every enabled entry of the machine."""
    found: list[tuple[str, list[str], str | None]] = []
    files = [sources] if sources.is_file() else []
    if sources_d.is_dir():
        files += sorted(p for p in sources_d.iterdir()
                        if p.suffix in (".list", ".sources"))
    for path in files:
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for st in _deb822_stanzas(text):
                if st.get("enabled", "yes").lower() == "no":
                    continue
                for uri in st.get("uris", "").split():
                    found.append((uri, st.get("suites", "").split(),
                                  st.get("signed-by") or None))
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) < 3 or words[0] not in ("deb", "deb-src"):
                continue
            keyring = None
            rest = words[1:]
            if rest[0].startswith("["):
                opts = []
                while rest:
                    opts.append(rest.pop(0))
                    if opts[-1].endswith("]"):
                        break
                for opt in " ".join(opts).strip("[]").split():
                    if opt.startswith("signed-by="):
                        keyring = opt.split("=", 1)[1]
            if len(rest) >= 2:
                found.append((rest[0], [rest[1]], keyring))
    return found


def debian_archive(sources: Path = SYSTEM_SOURCES,
                   sources_d: Path = SYSTEM_SOURCES_D) -> Archive:
    """The machine's Debian archive (not its security archive)."""
    for uri, suites, keyring in _entries(sources, sources_d):
        if not suites or any(s.endswith("-security") for s in suites):
            continue
        if "/debian" not in uri.rstrip("/") + "/":
            continue
        if keyring and "\n" in keyring:  # an inline key block
            keyring = None
        return Archive(uri=uri, keyring=keyring)
    raise AptError(
        "no Debian archive found in the machine's apt sources "
        f"({SYSTEM_SOURCES}, {SYSTEM_SOURCES_D}); add one, or pass --tarball PATH")


class PrivateApt:
    """apt-get with its own sources list and state under ``root``."""

    def __init__(self, root: Path, suites: list[str],
                 archive: Archive | None = None,
                 source: bool = True, binary: bool = False) -> None:
        if shutil.which("apt-get") is None:
            raise AptError("apt-get is not installed: this fallback needs a Debian "
                           "system; pass --tarball PATH instead")
        self.root = root
        self.archive = archive or debian_archive()
        keyring = self.archive.keyring or (
            str(DEFAULT_KEYRING) if DEFAULT_KEYRING.exists() else None)
        opts = f"[signed-by={keyring}] " if keyring else ""
        kinds = (["deb-src"] if source else []) + (["deb"] if binary else [])
        lines = [f"{kind} {opts}{self.archive.uri} {suite} main"
                 for suite in suites for kind in kinds]
        for sub in ("lists/partial", "cache/archives/partial",
                    "etc/sources.list.d", "etc/preferences.d", "etc/apt.conf.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "etc/sources.list").write_text("\n".join(lines) + "\n")
        (root / "status").write_text("")
        conf = {
            "Dir::State": root,
            "Dir::State::Lists": root / "lists",
            "Dir::State::status": root / "status",
            "Dir::Cache": root / "cache",
            "Dir::Etc::SourceList": root / "etc/sources.list",
            "Dir::Etc::SourceParts": root / "etc/sources.list.d",
            "Dir::Etc::Preferences": root / "etc/preferences",
            "Dir::Etc::PreferencesParts": root / "etc/preferences.d",
            "Dir::Etc::Parts": root / "etc/apt.conf.d",
            "APT::Get::List-Cleanup": "false",
            "APT::Sandbox::User": "root",
            "Acquire::Languages": "none",
        }
        (root / "apt.conf").write_text(
            "".join(f'{k} "{v}";\n' for k, v in conf.items()))
        self._updated = False

    def _run(self, *args: str, cwd: Path | None = None, tool: str = "apt-get") -> str:
        env = dict(os.environ, APT_CONFIG=str(self.root / "apt.conf"),
                   LC_ALL="C")
        proc = subprocess.run([tool, "-q", *args], cwd=cwd, env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            raise AptError(f"{tool} {' '.join(args)} failed:\n"
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def update(self) -> None:
        if self._updated:
            return
        try:
            self._run("update")
        except AptError as exc:
            if "is expired" not in str(exc):
                raise
            # A mirror that stopped refreshing a suite serves its last,
            # signed, index after its Valid-Until date.  What is fetched
            # from it is checked against a pin (the tarball's SHA-256) or
            # only read (Debian's own patches), so take it, and say so.
            print("apt: the mirror's index is past its Valid-Until date; "
                  "using it anyway (signatures are still checked)")
            self._run("-o", "Acquire::Check-Valid-Until=false", "update")
        self._updated = True

    def source_versions(self, package: str) -> list[str]:
        """The versions of a source package that the suites serve."""
        self.update()
        out = self._run("showsrc", "--only-source", package, tool="apt-cache")
        return [line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("Version:")]

    def source(self, package: str, dest: Path, upstream: str | None = None) -> list[Path]:
        """Download (not unpack) a source package into ``dest``; with
        ``upstream``, the newest Debian revision of that upstream release."""
        self.update()
        spec = package
        if upstream is not None:
            found = [v for v in self.source_versions(package)
                     if v.split(":")[-1].rsplit("-", 1)[0] == upstream]
            if not found:
                served = ", ".join(self.source_versions(package)) or "none"
                raise AptError(f"no Debian revision of {package} {upstream} in the "
                               f"suites searched (they serve: {served})")
            spec = f"{package}={max(found, key=_debian_version_key)}"
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.iterdir())
        self._run("source", "--download-only", spec, cwd=dest)
        return sorted(set(dest.iterdir()) - before) or sorted(dest.iterdir())

    def depends(self, package: str) -> list[str]:
        """What ``package`` depends on (``apt-cache depends``)."""
        self.update()
        out = self._run("depends", package, tool="apt-cache")
        return [name for kind, _, name in (line.strip().partition(": ")
                                           for line in out.splitlines())
                if kind == "Depends"]

    def download(self, package: str, dest: Path) -> Path:
        """Download a binary package's .deb into ``dest``."""
        self.update()
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        self._run("download", package, cwd=dest)
        new = sorted(set(dest.glob("*.deb")) - before)
        if not new:
            matches = sorted(dest.glob(f"{package}_*.deb"))
            if not matches:
                raise AptError(f"apt-get download {package} produced no .deb")
            return matches[-1]
        return new[0]


def _debian_version_key(version: str) -> list[tuple[int, object]]:
    """A sort key close enough to dpkg's order for the revisions of one
    upstream release (3.13.15-1 < 3.13.15-2 < 3.13.15-2+deb14u1)."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", version) if part]
