"""A gzip'd newc cpio initramfs holding an installed interpreter.

The archive is written here, in Python (no cpio tool needed), from a manifest:
every entry's archive path, mode and source. The manifest of an installed
interpreter holds ``bin/python3``, the standard library minus what a boot
check never imports (tests, GUI, bundled wheels, the static libpython), the
shared libraries that ``ldd`` names for the interpreter and its extension
modules, and whatever else the caller adds (busybox, /init, probes). ELF
files go in without their debug sections (``strip --strip-debug`` on a copy,
when binutils is there).

Archives are deterministic: entries sorted, owner root, file times kept
(the .pyc files check them), gzip header without a time stamp.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from .errors import HarnessError

GUEST_PREFIX = PurePosixPath("opt/python")   # the interpreter's prefix in the guest

# Parts of lib/pythonX.Y left out: names of top-level entries.
STDLIB_SKIP = ("test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip",
               "lib2to3", "distutils", "pydoc_data", "site-packages", "__phello__", "venv",
               "config-*")
# Extension modules left out (lib-dynload): test helpers and the GUI.
DYNLOAD_SKIP = ("_test*", "_ctypes_test*", "_xxtestfuzz*", "xx*", "_tkinter*")


class InitramfsError(HarnessError):
    pass


@dataclass(frozen=True)
class Entry:
    """One archive member: a file (from ``source`` or ``data``), a directory,
    a symlink (``target``) or a character device (``rdev``)."""
    path: str
    mode: int
    source: Path | None = None
    data: bytes | None = None
    target: str | None = None
    rdev: tuple[int, int] = (0, 0)
    mtime: int = 0
    strip: bool = False   # an ELF file: archived without its debug sections

    def payload(self) -> bytes:
        if self.target is not None:
            return self.target.encode()
        if self.data is not None:
            return self.data
        if self.source is None:
            return b""
        if self.strip and shutil.which("strip"):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "stripped"
                proc = subprocess.run(["strip", "--strip-debug", "-o", str(out),
                                       str(self.source)], capture_output=True)
                if proc.returncode == 0:
                    return out.read_bytes()
        return self.source.read_bytes()

    def fingerprint(self) -> str:
        """What the cache key sees: own data by content, host files by
        size and time (a reinstall changes them)."""
        if self.source is not None:
            st = self.source.stat()
            what = f"{self.source}:{st.st_size}:{st.st_mtime_ns}"
        elif self.data is not None:
            what = hashlib.sha256(self.data).hexdigest()
        else:
            what = self.target or f"{self.rdev}"
        return f"{self.path} {self.mode:o} {self.mtime} {self.strip} {what}"


def file_entry(path: str, source: Path, mode: int | None = None,
               strip: bool = False) -> Entry:
    st = source.stat()   # follows symlinks: the archive gets the file itself
    return Entry(path=path, mode=stat.S_IFREG | (mode if mode is not None
                                                 else stat.S_IMODE(st.st_mode)),
                 source=source, mtime=int(st.st_mtime), strip=strip)


def data_entry(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path=path, mode=stat.S_IFREG | mode, data=data)


def char_device(path: str, major: int, minor: int, mode: int = 0o600) -> Entry:
    return Entry(path=path, mode=stat.S_IFCHR | mode, rdev=(major, minor))


def _skipped(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch(name, p) for p in patterns)


def interpreter_entries(install: Path) -> list[Entry]:
    """``bin/python3`` and the standard library it needs, under GUEST_PREFIX."""
    python = install / "bin" / "python3"
    libs = sorted((install / "lib").glob("python3.*"))
    libs = [p for p in libs if (p / "os.py").is_file()]
    if not python.exists() or len(libs) != 1:
        raise InitramfsError(f"no installed interpreter in {install}")
    stdlib = libs[0]
    entries = [file_entry(str(GUEST_PREFIX / "bin/python3"), python, strip=True)]
    for top in sorted(stdlib.iterdir()):
        if _skipped(top.name, STDLIB_SKIP):
            continue
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for f in files:
            rel = f.relative_to(stdlib)
            if top.name == "lib-dynload" and _skipped(f.name, DYNLOAD_SKIP):
                continue
            # one optimisation level of byte code: the one a plain run uses
            if f.suffix == ".pyc" and ".opt-" in f.name:
                continue
            entries.append(file_entry(
                str(GUEST_PREFIX / "lib" / stdlib.name / rel.as_posix()), f,
                strip=f.suffix == ".so"))
    return entries


def shared_libraries(binaries: list[Path]) -> list[Entry]:
    """The libraries (and the dynamic loader) ``ldd`` names for ``binaries``,
    at the paths the loader looks for them."""
    if not binaries:
        return []
    proc = subprocess.run(["ldd", *map(str, binaries)], capture_output=True,
                          text=True, env=dict(os.environ, LC_ALL="C"))
    found: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.endswith(":"):   # "FILE:" heading the answer for one of several
            continue
        if "=>" in line:
            where = line.split("=>", 1)[1].split("(")[0].strip()
            if where == "not found":
                raise InitramfsError(f"ldd: a library is missing: {line}")
        else:
            where = line.split("(")[0].strip()
        if where.startswith("/"):
            found[where.lstrip("/")] = Path(where)
    return [file_entry(path, src, strip=True) for path, src in sorted(found.items())]


def with_parents(entries: list[Entry]) -> list[Entry]:
    """Entries plus a directory entry for every parent folder, sorted."""
    by_path = {e.path: e for e in entries}
    for e in entries:
        for parent in PurePosixPath(e.path).parents:
            p = str(parent)
            if p != "." and p not in by_path:
                by_path[p] = Entry(path=p, mode=stat.S_IFDIR | 0o755)
    return [by_path[p] for p in sorted(by_path)]


def manifest_key(entries: list[Entry], *extra: str) -> str:
    h = hashlib.sha256()
    for part in (*extra, *(e.fingerprint() for e in sorted(entries, key=lambda e: e.path))):
        h.update(part.encode() + b"\n")
    return h.hexdigest()


def _header(ino: int, e: Entry, size: int, name: bytes) -> bytes:
    fields = (ino, e.mode, 0, 0, 2 if stat.S_ISDIR(e.mode) else 1, e.mtime, size,
              0, 0, e.rdev[0], e.rdev[1], len(name) + 1, 0)
    return b"070701" + b"".join(b"%08X" % v for v in fields)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def write_cpio(entries: list[Entry], out: Path) -> None:
    """Write ``entries`` (parents added) as a gzip'd newc archive at ``out``."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                               compresslevel=6) as gz:
        ino = 0
        for e in with_parents(entries) + [Entry(path="TRAILER!!!", mode=0)]:
            ino += 1
            name = e.path.encode()
            data = e.payload() if not stat.S_ISDIR(e.mode) else b""
            head = _header(ino if e.mode else 0, e, len(data), name) + name + b"\0"
            gz.write(head + _pad(len(head)) + data + _pad(len(data)))
    os.replace(tmp, out)


def read_cpio(archive: Path) -> dict[str, tuple[int, bytes]]:
    """{path: (mode, data)} of a gzip'd newc archive (for checks and tests)."""
    blob = gzip.decompress(archive.read_bytes())
    members: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while True:
        if blob[pos:pos + 6] != b"070701":
            raise InitramfsError(f"not a newc header at offset {pos}")
        fields = [int(blob[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = blob[pos:pos + namesize - 1].decode()
        pos += namesize
        pos += -pos % 4
        data = blob[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return members
        members[name] = (mode, data)
