"""Quilt's stuff, read and written: series files, DEP-3 headers, -p1 diffs.

A series lists patches one a line (``-p1`` only; ``#`` starts a comment);
a patch is a DEP-3 header followed by a unified diff.  apply reads our own
series, export turns it into packagers' forms, debian reads Debian's.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import HarnessError

REQUIRED = ("Description", "Author", "Origin", "Forwarded", "Last-Update")
ALIASES = {"subject": "Description", "from": "Author"}
# Text files only: bytes that are not UTF-8 pass through unchanged.
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


class QuiltError(HarnessError):
    pass


# --------------------------------------------------------------------------
# Series


@dataclass(frozen=True)
class SeriesEntry:
    name: str
    path: Path


def read_series(listing: Path) -> list[tuple[int, str]]:
    """(line number, patch name) of the active lines of a quilt series file."""
    names = []
    for lineno, raw in enumerate(listing.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, *opts = line.split()
        if opts and opts != ["-p1"]:
            raise QuiltError(f"{listing}:{lineno}: {line!r}: only -p1 patches are supported")
        names.append((lineno, name))
    return names


def series(patches_dir: Path) -> list[SeriesEntry]:
    """The active entries of ``patches_dir/series``, each in ``patches_dir``."""
    return [SeriesEntry(name, patches_dir / name)
            for _lineno, name in read_series(patches_dir / "series")]


# --------------------------------------------------------------------------
# DEP-3 headers


@dataclass(frozen=True)
class Dep3:
    """The fields of a DEP-3 header, in order, with canonical names."""
    fields: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    @property
    def summary(self) -> str:
        return (self.get("Description") or "").split("\n", 1)[0].strip()

    @property
    def why(self) -> list[str]:
        """The lines after the summary, unindented (`` .`` is a blank line)."""
        lines = (self.get("Description") or "").split("\n")[1:]
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def render(self) -> str:
        out = []
        for key, value in self.fields:
            first, *rest = value.split("\n")
            out.append(f"{key}: {first}".rstrip())
            out += [f" {line}" if line.strip() else " ." for line in rest]
        return "\n".join(out) + "\n"


_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):(?:[ \t]+(.*)|)$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MBOX_FROM = re.compile(r"^From [0-9a-f]{40} ")
_PATCH_PREFIX = re.compile(r"^\[PATCH[^\]]*\]\s*")
AUTHOR = re.compile(r"^[^<>]*\S[^<>]*<[^<>@\s]+@[^<>\s]+>$")


def parse_dep3(header: str) -> Dep3:
    """Fields of a DEP-3 header (the text before the diff).

    Continuation lines start with white space; `` .`` is an empty line; a
    continuation after blank lines still belongs to the field before. A
    header in git's mail form (``From <commit> ...`` first) also reads: its
    folded Subject: is the summary (without ``[PATCH]``), its body the why.
    """
    fields: list[list[str]] = []
    freeform: list[str] = []
    blank = 0
    lines = header.split("\n")
    mail = any(_MBOX_FROM.match(line) for line in lines[:1])
    subject = False
    for line in lines:
        if not line.strip():
            blank += 1
            continue
        m = _FIELD.match(line)
        if _MBOX_FROM.match(line):
            pass
        elif m and not line[0].isspace():
            key = ALIASES.get(m.group(1).lower(), m.group(1))
            key = next((r for r in REQUIRED if r.lower() == key.lower()), key)
            value = (m.group(2) or "").rstrip()
            subject = mail and m.group(1).lower() == "subject"
            fields.append([key, _PATCH_PREFIX.sub("", value) if subject else value])
        elif line[0].isspace() and fields and not (subject and blank):
            if subject:
                fields[-1][1] += " " + line.strip()
            else:
                text = line[1:].rstrip()
                fields[-1][1] += "\n" * blank + "\n" + ("" if text == "." else text)
        else:
            freeform += [""] if freeform and blank else []
            freeform.append(line.rstrip())
        blank = 0
    for f in fields:
        if f[0] == "Description" and freeform:
            f[1] += ("\n\n" if "\n" in f[1] else "\n") + "\n".join(freeform)
            break
    return Dep3(tuple((k, v) for k, v in fields))


def check_dep3(name: str, dep3: Dep3) -> list[str]:
    """What a packager would miss in this header (empty: complete)."""
    problems = []
    for key in REQUIRED:
        if not (dep3.get(key) or "").strip():
            problems.append(f"{name}: no {key}: field")
    if dep3.summary and not any(line.strip() for line in dep3.why):
        problems.append(f"{name}: Description has no why (the indented lines "
                        "after the summary)")
    author = dep3.get("Author")
    if author and not AUTHOR.match(author.strip()):
        problems.append(f"{name}: Author: {author!r} is not 'Name <email>' "
                        "(git am needs the address)")
    date = dep3.get("Last-Update")
    if date and not DATE.match(date.strip()):
        problems.append(f"{name}: Last-Update: {date!r} is not YYYY-MM-DD")
    forwarded = (dep3.get("Forwarded") or "").strip().lower()
    if forwarded and not forwarded.startswith(("no", "not-needed", "yes", "http")):
        problems.append(f"{name}: Forwarded: must start with no, not-needed, "
                        "yes or a URL")
    return problems


# --------------------------------------------------------------------------
# Unified diffs


@dataclass(frozen=True)
class FileDiff:
    """One file's section of a -p1 diff. ``old``/``new`` are tree paths,
    None for /dev/null (a created or deleted file)."""
    old: str | None
    new: str | None
    hunks: tuple[str, ...] = ()
    mode: str = "100644"

    @property
    def path(self) -> str:
        return self.new or self.old or ""

    def counts(self) -> tuple[int, int]:
        added = removed = 0
        body = (h for h in self.hunks if not h.startswith("@@"))
        for line in body:
            if line.startswith("+"):
                added += 1
            elif line.startswith("-"):
                removed += 1
        return added, removed

    def render(self) -> str:
        """Git style, without index lines: GNU patch, quilt and git apply
        all read it, and a new file's mode is explicit."""
        a, b = self.old or self.new, self.new or self.old
        out = [f"diff --git a/{a} b/{b}"]
        if self.old is None:
            out.append(f"new file mode {self.mode}")
        elif self.new is None:
            out.append(f"deleted file mode {self.mode}")
        if self.hunks:
            out.append(f"--- a/{self.old}" if self.old else "--- /dev/null")
            out.append(f"+++ b/{self.new}" if self.new else "+++ /dev/null")
            out += self.hunks
        return "\n".join(out) + "\n"


_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_UNSUPPORTED = ("rename from", "rename to", "copy from", "copy to", "old mode",
                "new mode", "GIT binary patch", "Binary files ")


def _strip1(label: str, where: str) -> str | None:
    """The tree path of a ---/+++ label; None for a file that does not exist
    on that side (/dev/null, or diff -N's epoch time stamp, as GNU patch reads it)."""
    name, _, stamp = label.partition("\t")
    name = name.rstrip()
    if name == "/dev/null" or stamp.startswith(("1970-01-01 00:00:00", "1969-12-31")):
        return None
    if "/" not in name:
        raise QuiltError(f"{where}: {name!r} has no leading directory to strip "
                          "(patches are -p1)")
    return name.split("/", 1)[1]


def diff_start(lines: list[str]) -> int:
    """Index of the first line of the diff proper (len(lines) if none)."""
    for i, line in enumerate(lines):
        if line.startswith(("diff --git ", "Index: ")) or line == "---":
            return i
        if line.startswith("--- ") and i + 1 < len(lines) \
                and lines[i + 1].startswith("+++ "):
            return i
    return len(lines)


def parse_diff(text: str, where: str) -> list[FileDiff]:
    """The file sections of a -p1 unified diff; anything between sections
    (Index: lines, diffstat, comments) is dropped."""
    lines = text.split("\n")
    files: list[FileDiff] = []
    git: dict[str, str] = {}
    i = 0

    def flush_git() -> None:
        # a git section with no hunks: an empty file created or deleted
        if git.get("paths") and ("new" in git or "deleted" in git):
            path = git["paths"]
            files.append(FileDiff(None if "new" in git else path,
                                  path if "new" in git else None,
                                  mode=git.get("new") or git.get("deleted") or "100644"))
        git.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            flush_git()
            m = re.match(r"^diff --git a/(\S+) b/(\S+)$", line)
            git["paths"] = m.group(2) if m else ""
            i += 1
            continue
        if git and line.startswith(_UNSUPPORTED):
            raise QuiltError(f"{where}: {line.strip()!r} (renames, mode changes "
                              "and binary patches are not supported)")
        if git and line.startswith("new file mode "):
            git["new"] = line.split()[-1]
        elif git and line.startswith("deleted file mode "):
            git["deleted"] = line.split()[-1]
        if line.startswith("--- ") and i + 1 < len(lines) \
                and lines[i + 1].startswith("+++ "):
            old = _strip1(line[4:], where)
            new = _strip1(lines[i + 1][4:], where)
            mode = git.get("new") or git.get("deleted") or "100644"
            git.clear()
            i += 2
            hunks: list[str] = []
            while i < len(lines) and (m := _HUNK.match(lines[i])):
                hunks.append(lines[i])
                need_old = int(m.group(1) if m.group(1) is not None else 1)
                need_new = int(m.group(2) if m.group(2) is not None else 1)
                i += 1
                while need_old > 0 or need_new > 0:
                    if i >= len(lines):
                        raise QuiltError(f"{where}: {new or old}: hunk "
                                          f"{hunks[-1]!r} is truncated")
                    body = lines[i]
                    kind = body[:1]
                    if kind in (" ", ""):
                        need_old -= 1
                        need_new -= 1
                        body = body or " "
                    elif kind == "-":
                        need_old -= 1
                    elif kind == "+":
                        need_new -= 1
                    elif kind != "\\":
                        raise QuiltError(f"{where}: {new or old}: unexpected "
                                          f"line in hunk {hunks[-1]!r}: {body!r}")
                    hunks.append(body)
                    i += 1
                if i < len(lines) and lines[i].startswith("\\"):
                    hunks.append(lines[i])
                    i += 1
            if not hunks:
                raise QuiltError(f"{where}: {new or old}: no hunks")
            files.append(FileDiff(old, new, tuple(hunks), mode))
            continue
        i += 1
    flush_git()
    return files


def diff_files(old: Path | None, new: Path | None, rel: str) -> FileDiff | None:
    """GNU diff -u of one file (None: /dev/null); None when they are equal."""
    cmd = ["diff", "-u", "--label", f"a/{rel}" if old else "/dev/null",
           "--label", f"b/{rel}" if new else "/dev/null",
           str(old or os.devnull), str(new or os.devnull)]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode > 1:
        raise QuiltError(f"diff {rel}: {proc.stderr.decode(errors='replace').strip()}")
    out = proc.stdout.decode(**ENCODING)
    if out.startswith("Binary files ") or "\nBinary files " in out:
        raise QuiltError(f"{rel}: binary files cannot be exported as a patch")
    if not out:
        if (old is None) == (new is None):
            return None
        # an empty file created or deleted: no hunks, git header only
        return FileDiff(None if old is None else rel, None if new is None else rel,
                        mode=file_mode(new or old))
    parsed = parse_diff(out, rel)
    return replace(parsed[0], mode=file_mode(new or old)) if parsed else None


# git diff, as the series' patches are written: Myers, three lines of
# context, the function context after each @@; no configuration of the user's.
_GIT_DIFF = ["git", "diff", "--no-index", "--no-prefix", "--no-color", "--no-ext-diff",
             "--no-renames", "--diff-algorithm=myers", "-U3", "--inter-hunk-context=0"]


def git_diff(old: bytes | None, new: bytes | None, rel: str) -> FileDiff | None:
    """One file's change (None: /dev/null) as ``git diff`` writes it, in the
    form of the series' own patches (no index line); None when equal."""
    if old == new:
        return None
    if shutil.which("git") is None:
        raise QuiltError("git is not installed: apt-get install git")
    with tempfile.TemporaryDirectory(prefix="pep522-diff-") as tmp:
        work = Path(tmp)
        names = []
        for side, data in (("a", old), ("b", new)):
            if data is None:
                names.append(os.devnull)
                continue
            (work / side / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / side / rel).write_bytes(data)
            names.append(f"{side}/{rel}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
                   GIT_CEILING_DIRECTORIES=str(work.parent), LC_ALL="C")
        proc = subprocess.run(_GIT_DIFF + names, cwd=work, env=env, capture_output=True)
    if proc.returncode > 1:
        raise QuiltError(f"git diff {rel}: {proc.stderr.decode(errors='replace').strip()}")
    parsed = parse_diff(proc.stdout.decode(**ENCODING), rel)
    if len(parsed) != 1:
        raise QuiltError(f"git diff {rel}: binary or unreadable change")
    return parsed[0]


def file_mode(path: Path | None) -> str:
    if path is not None and path.stat().st_mode & stat.S_IXUSR:
        return "100755"
    return "100644"


def hunk_headers(patch: Path) -> dict[str, list[str]]:
    """File -> the @@ lines of its hunks, in order; {} for a file that does
    not read as a diff (only error messages and reports use this)."""
    try:
        files = parse_diff(patch.read_text(errors="replace"), patch.name)
    except QuiltError:
        return {}
    out: dict[str, list[str]] = {}
    for f in files:
        out.setdefault(f.path, []).extend(h for h in f.hunks if h.startswith("@@"))
    return out


# --------------------------------------------------------------------------
# Patches: a DEP-3 header, then the diff


@dataclass(frozen=True)
class Patch:
    name: str
    dep3: Dep3
    files: tuple[FileDiff, ...]
    raw: bytes = field(repr=False)

    @property
    def date(self) -> str:
        return (self.dep3.get("Last-Update") or "").strip()


def read_patch(name: str, path: Path) -> Patch:
    raw = path.read_bytes()
    lines = raw.decode(**ENCODING).split("\n")
    start = diff_start(lines)
    dep3 = parse_dep3("\n".join(lines[:start]))
    files = parse_diff("\n".join(lines[start:]), name)
    if not files:
        raise QuiltError(f"{name}: no diff in the patch")
    return Patch(name, dep3, tuple(files), raw)


