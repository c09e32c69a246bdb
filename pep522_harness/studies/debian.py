"""Our series on top of Debian's own patches, as a Debian packager carries it.

    python -m pep522_harness debian [--cpython V] [--no-build] [--jobs N]

1. Fetch Debian's source package of the release (``versions.toml``: python3.13
   in trixie for 3.13.5, python3.11 in bookworm for 3.11.2) with the private
   apt configuration, check it against the .dsc and the upstream pin.
2. Unpack it by hand (orig tarball, then the debian tarball; no dpkg needed)
   into a fresh tree and append the quilt export of our series, in
   ``debian/patches/pep522/``, after Debian's own in ``debian/patches/series``.
3. Apply the whole stack in order with zero fuzz, as dpkg-source does. A hunk
   of ours that does not apply is reported by patch, file and hunk, with the
   Debian patches that change the same file (near which lines).
4. Configure, compile and install the tree like every other build (no
   dpkg-buildpackage) into ``build/cpython-V-debian-pep522/``, and run the
   behaviour checks under the fake RNG on that interpreter.

The report is printed and written to ``build/out/debian-cpython-V.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pep522_harness.core import apply, build, fetch, options, paths, quilt, tables
from pep522_harness.core.aptsource import AptError, PrivateApt
from pep522_harness.core.errors import HarnessError
from pep522_harness.core.versions import Release, release
from pep522_harness.fake import modes, probes
from pep522_harness.patchset import export

OURS = "pep522"           # our folder in debian/patches/
RECIPE = "1"              # bump when the way of preparing the tree changes


class DebianError(HarnessError):
    pass


# --------------------------------------------------------------------------
# The source package


@dataclass(frozen=True)
class SourcePackage:
    package: str
    version: str            # Debian's version, e.g. 3.13.5-2+deb13u5
    suite: str
    dsc: Path
    files: dict[str, str]   # file name -> SHA-256, from the .dsc

    def path(self, name: str) -> Path:
        return self.dsc.parent / name

    def tarball(self, kind: str) -> Path:
        """The ``orig`` or ``debian`` tarball."""
        for name in self.files:
            if re.search(rf"\.{kind}\.tar\.[a-z0-9]+$", name):
                return self.path(name)
        raise DebianError(f"{self.dsc.name} lists no .{kind}.tar.* file")


def parse_dsc(dsc: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(fields, SHA-256 of each listed file) of a .dsc, signed or not."""
    text = dsc.read_text(errors="replace")
    if "-----BEGIN PGP SIGNED MESSAGE-----" in text:
        text = text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----")[0]
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    sums = {}
    for line in fields.get("Checksums-Sha256", "").splitlines():
        words = line.split()
        if len(words) == 3:
            sums[words[2]] = words[0]
    return fields, sums


def _load(dsc: Path, rel: Release) -> SourcePackage:
    fields, sums = parse_dsc(dsc)
    if fields.get("Format") != "3.0 (quilt)":
        raise DebianError(f"{dsc.name}: format {fields.get('Format')!r}; only "
                          "'3.0 (quilt)' source packages are supported")
    if not sums:
        raise DebianError(f"{dsc.name}: no Checksums-Sha256")
    return SourcePackage(fields.get("Source", rel.debian_source),
                         fields.get("Version", "?"), rel.debian_suite, dsc, sums)


def download(rel: Release, log=print) -> SourcePackage:
    """The suite's current source package, kept in the user's cache (one
    folder per Debian version; files apt already has are not fetched again);
    when apt cannot reach the archive, the newest one kept."""
    store = paths.cache_root() / "debian" / rel.debian_source
    store.mkdir(parents=True, exist_ok=True)
    kept = sorted(store.glob("*/*.dsc"), key=lambda p: p.stat().st_mtime)
    tmp = Path(tempfile.mkdtemp(dir=store, prefix=".download-"))
    try:
        for old in kept[-1:]:
            for f in old.parent.iterdir():
                (tmp / f.name).hardlink_to(f)   # apt checks and keeps them
        try:
            apt = PrivateApt(paths.cache_root() / "apt", [rel.debian_suite])
            got = apt.source(rel.debian_source, tmp, upstream=rel.version)
        except AptError as exc:
            if not kept:
                raise DebianError(f"cannot fetch Debian's {rel.debian_source} "
                                  f"({rel.debian_suite}):\n{exc}") from None
            log(f"debian: apt failed, using the kept {kept[-1].name}")
            return _load(kept[-1], rel)
        dscs = [p for p in got if p.suffix == ".dsc"]
        if len(dscs) != 1:
            raise DebianError(f"apt-get source {rel.debian_source} gave "
                              f"{len(dscs)} .dsc files")
        source = _load(dscs[0], rel)
        target = store / source.version
        if not target.exists():
            for f in tmp.iterdir():
                if f.name not in source.files and f != dscs[0]:
                    f.unlink()
            tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"debian: {rel.debian_source} {source.version} ({rel.debian_suite})")
    return _load(target / dscs[0].name, rel)


def verify(source: SourcePackage, rel: Release) -> None:
    for name, want in source.files.items():
        got = fetch.sha256_of(source.path(name))
        if got != want:
            raise DebianError(f"{name}: SHA-256 {got} does not match the .dsc")
    orig = source.tarball("orig")
    if source.files[orig.name] != rel.sha256:
        raise DebianError(f"Debian's {orig.name} is not the pinned upstream "
                          f"{rel.file} (SHA-256 {source.files[orig.name]}, pin "
                          f"{rel.sha256}): the stacks would not be comparable")


def unpack(source: SourcePackage, dest: Path) -> None:
    """What ``dpkg-source -x --skip-patches`` does for 3.0 (quilt)."""
    dest.mkdir(parents=True)
    for tarball, strip in ((source.tarball("orig"), ["--strip-components=1"]),
                           (source.tarball("debian"), [])):
        proc = subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest),
                               "--no-same-owner", *strip],
                              capture_output=True, text=True)
        if proc.returncode:
            raise DebianError(f"cannot unpack {tarball.name}: {proc.stderr.strip()}")


# --------------------------------------------------------------------------
# The stack


def append_ours(tree: Path, files: dict[str, bytes],
                version: str) -> list[quilt.SeriesEntry]:
    """Put the quilt export in debian/patches/pep522/ and list it after
    Debian's own patches; returns our entries."""
    pdir = tree / "debian" / "patches"
    ours = pdir / OURS
    if ours.exists():
        raise DebianError(f"debian/patches/{OURS}/ exists in Debian's package")
    names = files["series"].decode().split()
    for name in names:
        (ours / name).parent.mkdir(parents=True, exist_ok=True)
        (ours / name).write_bytes(files[name])
    series = pdir / "series"
    text = series.read_text()
    text += ("" if text.endswith("\n") else "\n") + \
        f"# PEP 522 for CPython {version}, after Debian's own patches\n" + \
        "".join(f"{OURS}/{n}\n" for n in names)
    series.write_text(text)
    return [quilt.SeriesEntry(f"{OURS}/{n}", ours / n) for n in names]


@dataclass(frozen=True)
class Conflict:
    patch: str
    detail: str                 # the zero-fuzz refusal: file, hunk, @@ line
    nearby: tuple[str, ...]     # Debian patches that change the same files


@dataclass
class Stack:
    source: SourcePackage
    debian: list[str] = field(default_factory=list)
    ours: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    configure_ac: list[str] = field(default_factory=list)   # Debian's, see report


_REFUSED = re.compile(r"^\s+(\S+): hunk #(\d+)(?: (@@ -(\d+)(?:,(\d+))? .*?@@))?")


def _touches(patch: Path) -> dict[str, list[tuple[int, int]]]:
    """file -> (first, last) line ranges a patch's hunks cover."""
    out: dict[str, list[tuple[int, int]]] = {}
    for path, heads in quilt.hunk_headers(patch).items():
        spans = out.setdefault(path, [])
        for head in heads:
            if m := re.match(r"^@@ -(\d+)(?:,(\d+))? ", head):
                start, length = int(m.group(1)), int(m.group(2) or 1)
                spans.append((start, start + max(length, 1) - 1))
    return out


def _nearby(detail: str, debian: list[quilt.SeriesEntry]) -> tuple[str, ...]:
    """Debian patches that change a file our refused hunks are in, with the
    lines they change near each refused hunk."""
    found: list[str] = []
    touched = {e.name: _touches(e.path) for e in debian}
    for line in detail.splitlines():
        m = _REFUSED.match(line)
        if not m:
            continue
        path = m.group(1)
        ours = (int(m.group(4)), int(m.group(4)) + int(m.group(5) or 1) - 1) \
            if m.group(4) else None
        for name, files in touched.items():
            spans = files.get(path)
            if not spans:
                continue
            near = [s for s in spans if ours and s[0] <= ours[1] + 10 and s[1] >= ours[0] - 10]
            where = ", ".join(f"lines {a}-{b}" for a, b in near)
            entry = f"{name} changes {path}" + (f" at {where}" if where else "")
            if entry not in found:
                found.append(entry)
    return tuple(found)


def apply_stack(tree: Path, debian: list[quilt.SeriesEntry],
                ours: list[quilt.SeriesEntry], source: SourcePackage,
                log=print) -> Stack:
    """Debian's patches, then ours, each with zero fuzz. A patch of ours
    that is refused is recorded and skipped (the tree stays consistent:
    nothing of it is applied) so every conflict is found in one run."""
    stack = Stack(source)
    for entry in debian:
        try:
            apply.apply_patch(entry, tree)
        except apply.ApplyError as exc:
            raise DebianError(f"Debian's own {entry.name} does not apply to the "
                              f"pristine tree (not our series):\n{exc}") from None
        stack.debian.append(entry.name)
        if "configure.ac" in _touches(entry.path):
            stack.configure_ac.append(entry.name)
    log(f"debian: {len(stack.debian)} Debian patches applied with zero fuzz")
    for entry in ours:
        try:
            apply.apply_patch(entry, tree)
        except apply.ApplyError as exc:
            detail = str(exc)
            stack.conflicts.append(Conflict(entry.name, detail, _nearby(detail, debian)))
            log(f"debian: CONFLICT {entry.name}")
            continue
        stack.ours.append(entry.name)
    log(f"debian: {len(stack.ours)} of our {len(ours)} patches applied with zero fuzz")
    return stack


def prepare(version: str, dest: Path, log=print) -> Stack:
    """A fresh Debian tree at ``dest`` with our series appended and the whole
    stack applied."""
    rel = release(version)
    source = download(rel, log)
    verify(source, rel)
    files = export.render(version, "quilt", log=log)
    unpack(source, dest)
    debian = quilt.series(dest / "debian" / "patches")
    ours = append_ours(dest, files, version)
    return apply_stack(dest, debian, ours, source, log)


# --------------------------------------------------------------------------
# Build and behaviour


def build_name(version: str) -> str:
    return f"cpython-{version}-debian-pep522"


def _key(stack: Stack, tree: Path) -> str:
    h = hashlib.sha256(f"{RECIPE}\0{stack.source.version}\0".encode())
    h.update(stack.source.dsc.read_bytes())
    for name in sorted((tree / "debian" / "patches" / OURS).iterdir()):
        h.update(name.name.encode() + b"\0" + name.read_bytes() + b"\0")
    return h.hexdigest()


def build_debian(version: str, *, jobs: int | None = None, log=print) -> tuple[Stack, Path | None]:
    """Prepare, then (when nothing conflicts) build; returns the stack and
    the interpreter (None when our series conflicts)."""
    paths.BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.BUILD, prefix=".debian-") as tmp:
        staging = Path(tmp) / "src"
        stack = prepare(version, staging, log)
        if stack.conflicts:
            return stack, None
        return stack, build.build_tree(staging, build_name(version),
                                       key=_key(stack, staging), jobs=jobs)


@dataclass(frozen=True)
class Check:
    mode: str
    row: str
    want: str          # what the result must start with ("": anything)
    got: str
    ours: str = ""     # the same check on our own build of the release

    @property
    def same_as_ours(self) -> bool:
        return not self.ours or _kind(self.got) == _kind(self.ours)

    @property
    def ok(self) -> bool:
        return self.got.startswith(self.want) and self.same_as_ours


def _kind(text: str) -> str:
    """A result without its timing: "ok after 0.1 s" is "ok"."""
    return "ok" if text.startswith("ok") else text


# What the patched interpreter does under each faked mode (as our own build).
EXPECTED: dict[str, dict[str, str]] = {
    "ready": {"os.urandom": "ok", "SystemRandom": "ok", "secrets": "ok",
              "wait_for_system_rng": "ok", "random seeding": "ok",
              "start-up warning": "silent"},
    "never-ready": {"os.urandom": "raises EAGAIN", "SystemRandom": "raises EAGAIN",
                    "secrets": "blocks", "wait_for_system_rng": "blocks",
                    "random seeding": "ok", "start-up warning": "warns",
                    "/dev/urandom opens": "0"},
    "ready-on-wait": {"secrets": "ok", "wait_for_system_rng": "ok",
                      "random seeding": "ok"},
    "enosys": {"os.urandom": "ok", "random seeding": "ok"},
    "eperm": {"os.urandom": "ok", "random seeding": "ok"},
}
START_UP = ("import sys, sysconfig, secrets\n"
            "print(sys.version.split()[0])\n"
            "print('deb_system' in sysconfig.get_scheme_names())\n"
            "print(callable(getattr(secrets, 'wait_for_system_rng', None)))\n")


def start_up(python: Path, version: str) -> list[Check]:
    """Without the fake RNG: it starts, it is the release, Debian's patches
    are in it (its sysconfig scheme), and ours (the new function)."""
    proc = subprocess.run([str(python), "-I", "-c", START_UP], capture_output=True,
                          text=True, timeout=60)
    got = proc.stdout.split() if proc.returncode == 0 else []
    got += ["error: " + (proc.stderr.strip().splitlines() or ["?"])[-1]] * (3 - len(got))
    return [Check("-", "starts, version", version, got[0]),
            Check("-", "Debian's sysconfig scheme deb_system", "True", got[1]),
            Check("-", "secrets.wait_for_system_rng exists", "True", got[2])]


def behaviour_checks(python: Path, version: str,
                     reference: Path | None = None) -> list[Check]:
    """Start-up, then every row of the behaviour table under every faked
    mode: against EXPECTED, and against ``reference`` (our own build of the
    release) when given, so that what Debian's patches change shows."""
    checks = start_up(python, version)
    for mode in modes.EVERY:
        cells = probes.probe(python, mode)
        ref = probes.probe(reference, mode) if reference else {}
        checks += [Check(mode, row, EXPECTED.get(mode, {}).get(row, ""), cells[row].text,
                         ref[row].text if row in ref else "")
                   for row in probes.ROWS]
    return checks


# --------------------------------------------------------------------------
# Report


def report(version: str, stack: Stack, checks: list[Check], python: Path | None,
           reference: str = "") -> str:
    src = stack.source
    lines = [f"# CPython {version}: our series on top of Debian's {src.package} "
             f"{src.version} ({src.suite})", "",
             f"- Debian's patches: {len(stack.debian)} applied with zero fuzz",
             f"- ours, appended in debian/patches/{OURS}/: {len(stack.ours)} applied "
             f"with zero fuzz, {len(stack.conflicts)} refused", ""]
    if stack.configure_ac:
        lines += ["Debian's rules regenerate `configure` with autoconf; this build "
                  "runs the shipped `configure`, so the configure.ac changes of "
                  + ", ".join(stack.configure_ac) + " are not in effect (build "
                  "flags only, no effect on the random number code).", ""]
    for c in stack.conflicts:
        lines += [f"## Conflict: {c.patch}", "", "```", c.detail, "```", ""]
        lines += [f"- {n}" for n in c.nearby] or ["- no Debian patch changes that file"]
        lines.append("")
    if python is not None:
        differ = [c for c in checks if not c.same_as_ours]
        failed = [c for c in checks if not c.ok]
        lines += [f"## Behaviour of {python.parent.parent.name}", "",
                  f"- {len(checks) - len(failed)} of {len(checks)} checks pass",
                  f"- differences from our own build ({reference or 'not run'}): "
                  + (", ".join(f"{c.mode}/{c.row}" for c in differ) or "none"), "",
                  *tables.markdown(["mode", "check", "expected", "Debian + ours",
                                    "ours alone", ""],
                                   [[c.mode, c.row, c.want, c.got, c.ours,
                                     "ok" if c.ok else "FAIL"] for c in checks]), ""]
    return "\n".join(lines)


def run(version: str, *, jobs: int | None = None, build_it: bool = True,
        log=print) -> int:
    rel = release(version)
    if build_it:
        stack, python = build_debian(rel.version, jobs=jobs, log=log)
    else:
        with tempfile.TemporaryDirectory(prefix="pep522-debian-") as tmp:
            stack, python = prepare(rel.version, Path(tmp) / "src", log), None
    checks: list[Check] = []
    reference = None
    if python is not None:
        reference = build.build(rel.version, "pep522", quiet=True)
        checks = behaviour_checks(python, rel.version, reference)
    text = report(rel.version, stack, checks, python,
                  reference.parent.parent.name if reference else "")
    out = paths.OUT / f"debian-cpython-{rel.version}.md"
    tables.write_json(out.with_suffix(".json"), {
        "version": rel.version, "debian": f"{stack.source.package} {stack.source.version}",
        "suite": stack.source.suite, "debian_patches": stack.debian,
        "our_patches": stack.ours,
        "conflicts": [{"patch": c.patch, "detail": c.detail, "nearby": list(c.nearby)}
                      for c in stack.conflicts],
        "reference": str(reference.parent.parent.name) if reference else None,
        "checks": [{"mode": c.mode, "check": c.row, "expected": c.want,
                    "got": c.got, "ours": c.ours, "ok": c.ok} for c in checks]})
    out.write_text(text)
    print(text)
    print(f"report: {out}")
    return 1 if stack.conflicts or not all(c.ok for c in checks) else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s debian --",
                                description="Our series on top of Debian's patches.")
    options.cpython(p)
    p.add_argument("--no-build", action="store_true",
                   help="only apply the stack and report conflicts")
    p.add_argument("--jobs", type=int, help="make -j (default: all cores)")
    args = p.parse_args(argv)
    return run(args.cpython, jobs=args.jobs, build_it=not args.no_build)
