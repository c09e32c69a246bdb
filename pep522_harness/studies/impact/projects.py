"""Other people's code on a patched interpreter: its own test suite, stock against patched.

    nox -s impact -- --project PATH|NAME [--cpython V] [--mode M] [--tests ARGS]

Runs a project's own test suite through tox, with a tox environment whose
interpreter is our built one, stock and patched, each under a fake RNG mode
(``python -m pep522_harness fakerng MODE -- tox ...``; readiness is global to
the whole process tree, so the tests, the subprocesses they start and pip
inside tox all see the same kernel).  It reports which tests change outcome
between stock and patched and the first frame where BlockingIOError was
raised.

A project is a folder with a tox.ini (or a pyproject.toml/setup.cfg tox
section), or a NAME from ``PROJECTS`` below whose sdist is fetched with
``pip download --no-binary :all: --no-deps``.  When the project has no tox
configuration of its own, a minimal one is written beside it (pytest over its
test folder).  tox's environments install the project's test dependencies
once, with a ready RNG (``tox --notest``), then only the test command runs under
the fake.

Each project is a row of the impact table (``table.py``), beside the programs.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pep522_harness.core import build, options, paths, process, progress
from pep522_harness.core.errors import HarnessError
from pep522_harness.core.tables import Cell
from pep522_harness.core.versions import VARIANTS
from pep522_harness.fake import modes

from . import programs, table


@dataclass(frozen=True)
class Project:
    """A real project from the package index, pinned, and why it was chosen."""
    name: str
    version: str
    why: str
    deps: tuple[str, ...] = ("pytest",)   # test dependencies for its tox env
    tests: tuple[str, ...] = ("tests",)   # pytest arguments: files or folders
    pythonpath: str = "."                 # where its import package lives


PROJECTS: dict[str, Project] = {p.name: p for p in (
    Project("shortuuid", "1.0.13",
            "short ids from uuid.uuid4() (raises under PEP 522) and from secrets.choice "
            "(waits): both halves of the PEP in one small library; pytest suite of "
            "seconds", tests=("shortuuid/test_shortuuid.py",)),
    Project("pyotp", "2.12.0",
            "one-time-password secrets from `secrets.SystemRandom()`: code that "
            "trusts the secrets module but gets the raising SystemRandom class "
            "it re-exports", tests=("test.py",), pythonpath="src"),
    Project("passlib", "1.7.4",
            "password hashing; seeds its own generator with os.urandom(32) when "
            "passlib.utils is imported: an import-time caller, like multiprocessing "
            "was", deps=("pytest", "setuptools<70"),
            tests=("passlib/tests/test_utils.py", "passlib/tests/test_pwd.py")),
    Project("oauthlib", "3.2.2",
            "OAuth tokens and nonces from secrets.SystemRandom and secrets.randbits; "
            "a large unittest suite",
            deps=("pytest", "blinker", "pyjwt", "cryptography"), tests=("tests",)),
)}


# -- getting a project ----------------------------------------------------------

WORK = paths.BUILD / "impact"
TOX_INI = "tox-pep522.ini"


class ImpactError(HarnessError):
    pass


def _unpack(archive: Path, dest: Path) -> Path:
    """Unpack an sdist; returns its single top folder."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, filter="data")
    tops = list(tmp.iterdir())
    top = tops[0] if len(tops) == 1 and tops[0].is_dir() else tmp
    shutil.rmtree(dest, ignore_errors=True)
    top.rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _sdists(downloads: Path, project: Project) -> list[Path]:
    stem = f"{project.name}-{project.version}".lower().replace("-", "_")
    return [p for p in downloads.iterdir()
            if p.name.lower().replace("-", "_").startswith(stem)
            and p.name.endswith((".tar.gz", ".zip"))]


def get_sdist(project: Project, downloads: Path) -> Path:
    """The project's sdist from the package index, with pip (cached)."""
    downloads.mkdir(parents=True, exist_ok=True)
    found = _sdists(downloads, project)
    if not found:
        spec = f"{project.name}=={project.version}"
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--no-binary", ":all:", "-q",
                               "--disable-pip-version-check", "-d", str(downloads), spec],
                              capture_output=True, text=True)
        found = _sdists(downloads, project)
        if not found:
            raise ImpactError(f"pip download {spec} failed:\n{proc.stderr[-2000:]}")
    return found[0]


def project_source(name_or_path: str) -> tuple[Project, Path]:
    """(project, fresh copy of its sources under build/impact/)."""
    path = Path(name_or_path)
    if path.is_dir():
        project = Project(path.resolve().name, "local", f"local project {path}",
                          tests=("tests",) if (path / "tests").is_dir() else (".",),
                          pythonpath="src" if (path / "src").is_dir() else ".")
        dest = WORK / project.name / "src"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(path, dest, ignore=shutil.ignore_patterns(
            ".tox", ".git", ".nox", "__pycache__", "*.pyc"))
        return project, dest
    if name_or_path not in PROJECTS:
        raise ImpactError(f"unknown project {name_or_path!r}: give a folder or one of "
                          f"{', '.join(PROJECTS)}")
    project = PROJECTS[name_or_path]
    sdist = get_sdist(project, WORK / "downloads")
    return project, _unpack(sdist, WORK / f"{project.name}-{project.version}" / "src")


# -- running its tests through tox ---------------------------------------------

def tox_ini(project: Project, pythons: dict[str, Path]) -> str:
    """Our tox configuration for the project: one env per built interpreter.

    The test command is prefixed by {env:PEP522_LAUNCH:}: empty for the
    set-up run, the fake RNG launcher (and strace) for the measured runs, so
    tox itself runs on a ready RNG and only the tests see the fake kernel.
    """
    envs = "\n".join(f"[testenv:{variant}]\nbase_python = {python}\n"
                     for variant, python in pythons.items())
    return f"""\
[tox]
env_list = {', '.join(pythons)}
skip_missing_interpreters = false

[testenv]
skip_install = true
deps =
    {chr(10).join('    ' + d for d in project.deps).strip()}
set_env =
    PYTHONPATH = {{tox_root}}{"" if project.pythonpath == "." else os.sep + project.pythonpath}
    PYTHONDONTWRITEBYTECODE = 1
pass_env = PEP522_JUNIT, PYTHONFAULTHANDLER
allowlist_externals = *
commands =
    {{env:PEP522_LAUNCH:}} python -m pytest -p no:cacheprovider --tb=native -q -rN \\
        --continue-on-collection-errors \\
        --junitxml={{env:PEP522_JUNIT:junit.xml}} {' '.join(project.tests)} {{posargs}}

{envs}"""


def tox_cmd(ini: Path, workdir: Path, env: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tox", "-c", str(ini), "--workdir", str(workdir),
            "-e", env, *extra]


@dataclass
class TestRun:
    """One run of a project's suite under one variant and mode."""
    variant: str
    mode: str
    returncode: int
    seconds: float
    outcomes: dict[str, str] = field(default_factory=dict)   # test id -> outcome
    frames: dict[str, str] = field(default_factory=dict)     # test id -> BlockingIOError frame
    waited: float = 0.0
    held: int = 0
    blocked_at: str | None = None      # where a call held for ever stopped the suite
    tail: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)

    def failing(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o in ("failed", "error")}

    def cell(self, baseline: TestRun | None = None) -> dict:
        """The table cell; failures that also happen with a ready RNG
        (``baseline``: the same interpreter, no fake) are not the RNG's."""
        passed = self.count("passed")
        failing = self.failing()
        anyway = failing & baseline.failing() if baseline else set()
        new = failing - anyway
        summary = f"{passed} passed" + (f", {len(new)} failed" if new else "") + (
            f", {len(anyway)} fail with a ready RNG too" if anyway else "")
        if self.blocked_at is not None:
            cell = Cell("blocks", f"blocks at {self.blocked_at}", where=self.blocked_at)
        elif not self.outcomes:
            last = (self.tail.strip().splitlines() or ["no result"])[-1][:100]
            cell = Cell("fails", f"fails: {last}")
        elif self.frames:
            where = first_frame(self)
            cell = Cell("raises", f"raises at {where} ({summary})", where=where)
        elif new:
            cell = Cell("fails", f"fails ({summary})")
        elif self.held:
            cell = Cell("waits", f"waits {self.waited:.2f} s ({summary})")
        else:
            cell = Cell("works", f"works ({summary})")
        cell.seconds, cell.waited = self.seconds, self.waited
        cell.blocking_calls, cell.returncode = self.held, self.returncode
        cell.extra = {"passed": passed, "failed": len(new), "failed_anyway": len(anyway),
                      "skipped": self.count("skipped")}
        return asdict(cell)


def first_frame(run: TestRun) -> str:
    """The frame where BlockingIOError was raised, most common first."""
    counts: dict[str, int] = {}
    for frame in run.frames.values():
        counts[frame] = counts.get(frame, 0) + 1
    return max(counts, key=lambda f: counts[f]) if counts else ""


def parse_junit(path: Path, root: Path | None = None
                ) -> tuple[dict[str, str], dict[str, str]]:
    """({test id: passed|failed|error|skipped}, {test id: BlockingIOError frame});
    frames in the project's sources (``root``) are named relative to it."""
    outcomes: dict[str, str] = {}
    frames: dict[str, str] = {}
    try:
        tree = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return outcomes, frames
    for case in tree.iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                text = (node.text or "") + "\n" + (node.get("message") or "")
                frame = programs.blocking_frame(text, root)
                if frame is None and "BlockingIOError" in text:
                    frame = "?"
                if frame and tag != "skipped":
                    frames[test] = frame
                break
        outcomes[test] = outcome
    return outcomes, frames


def run_suite(project: Project, src: Path, variant: str, mode: str,
              workdir: Path, launch: Path, timeout: float = 900) -> TestRun:
    ini = src / TOX_INI
    out = workdir / "runs" / f"{variant}-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    junit, log = out / "junit.xml", out / "fakerng.log"
    # A call held for ever (never-ready) stops the suite after the hold
    # limit; faulthandler (pytest's, and PYTHONFAULTHANDLER) says where.
    prefix = " ".join([str(launch), *modes.arguments(
        modes.parse_mode(mode), [], log=log, hold_limit=modes.HOLD_LIMIT)])
    env = process.clean_env({"PEP522_LAUNCH": prefix, "PEP522_JUNIT": str(junit),
                             "PYTHONFAULTHANDLER": "1"})
    start = time.monotonic()
    cmd = tox_cmd(ini, workdir / "tox", variant, "--skip-pkg-install")
    try:
        proc = process.run(cmd, cwd=src, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess(cmd, -9, "", f"timeout after {timeout:.0f} s")
    (out / "tox.log").write_text(proc.stdout + proc.stderr)
    outcomes, frames = parse_junit(junit, src.resolve())
    run = TestRun(variant, mode, proc.returncode, round(time.monotonic() - start, 1),
                  outcomes, frames, tail=(proc.stdout + proc.stderr)[-3000:])
    if log.exists():
        text = log.read_text()
        run.waited, run.held = modes.held_seconds(text)
        if any(e.get("event") == "blocked" for e in modes.events(text)):
            run.blocked_at = programs.held_where(proc.stdout + proc.stderr,
                                                 src.resolve()) or "?"
    return run


def compare(stock: TestRun, patched: TestRun) -> list[dict[str, str]]:
    tests = sorted(set(stock.outcomes) | set(patched.outcomes))
    return [{"test": t, "stock": stock.outcomes.get(t, "absent"),
             "pep522": patched.outcomes.get(t, "absent"),
             "where": patched.frames.get(t, "")}
            for t in tests if stock.outcomes.get(t) != patched.outcomes.get(t)]


def _baseline(runs: dict[tuple[str, str], TestRun], variant: str,
              mode: str) -> TestRun | None:
    """The ready run a mode's failures are counted against (none for ready)."""
    return None if mode == "ready" else runs[(variant, "ready")]


def run_project(name_or_path: str, version: str, modes_: list[str],
                log=print, bar: progress.Progress | None = None) -> dict:
    """Set up the project's tox envs, run its suite per variant and mode
    (``bar``: one more done per run)."""
    project, src = project_source(name_or_path)
    workdir = src.parent
    pythons = {v: build.build(version, v, quiet=True) for v in VARIANTS}
    (src / TOX_INI).write_text(tox_ini(project, pythons))
    launch = modes.script(workdir / "fakerng-launch")
    tox_dir = workdir / "tox"
    log(f"impact: {project.name} {project.version}: tox envs for CPython {version} "
        "(set-up with a ready RNG)")
    setup = subprocess.run(tox_cmd(src / TOX_INI, tox_dir, ",".join(VARIANTS),
                                   "--notest"),
                           cwd=src, capture_output=True, text=True, timeout=900)
    if setup.returncode != 0:
        raise ImpactError(f"tox set-up failed:\n{(setup.stdout + setup.stderr)[-3000:]}")
    # The ready runs come first: they are the baseline of the other columns
    # (failures that also happen with a ready RNG are not the RNG's), and
    # their own column, where stock and patched must not differ.
    runs: dict[tuple[str, str], TestRun] = {}
    for mode in dict.fromkeys(("ready", *modes_)):
        for variant in VARIANTS:
            run = run_suite(project, src, variant, mode, workdir, launch)
            runs[(variant, mode)] = run
            if bar:
                bar.advance(current=f"{project.name} {mode} {variant}")
            text = run.cell(_baseline(runs, variant, mode))["text"]
            log(f"  {version} {variant:6} {mode:13} {text} ({run.seconds} s)")
    cells = {f"{version} {v} {m}": runs[(v, m)].cell(_baseline(runs, v, m))
             for m in modes_ for v in VARIANTS}
    details = {}
    for mode in modes_:
        stock, patched = runs[("stock", mode)], runs[("pep522", mode)]
        changed = compare(stock, patched)
        details[f"{version} {mode}"] = {
            "changed": changed, "first_frame": first_frame(patched),
            "ready": {v: sorted(runs[(v, "ready")].failing()) for v in VARIANTS},
            "stock": {"passed": stock.count("passed"), "failed": stock.count("failed")},
            "pep522": {"passed": patched.count("passed"),
                       "failed": patched.count("failed") + patched.count("error")}}
        log(f"  {mode}: {len(changed)} tests change outcome"
            + (f"; first BlockingIOError at {first_frame(patched)}"
               if first_frame(patched) else ""))
    return {"project": project, "cells": cells, "details": details}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s impact --")
    p.add_argument("--project", action="append", required=True, metavar="PATH|NAME",
                   help=f"a project folder, or one of: {', '.join(PROJECTS)}")
    options.cpython(p)
    modes.option(p, default=modes.STUDIED)
    p.add_argument("--no-docs", action="store_true", help="record into build/out/impact.json (a copy of docs/impact.json), not docs/")
    args = p.parse_args(argv)
    command = "nox -s impact -- " + shlex.join(sys.argv[1:] if argv is None else argv)
    path = table.store(docs=not args.no_docs)
    # each project runs its suite once a variant under "ready", then under each mode
    runs = len(args.project) * len(dict.fromkeys(("ready", *args.mode))) * len(VARIANTS)
    with progress.Progress("impact", runs, "suite runs") as bar:
        for name in args.project:
            result = run_project(name, args.cpython, args.mode, log=bar.note, bar=bar)
            project = result["project"]
            table.record(project.name, "project", f"{project.name} {project.version}: "
                         f"pytest {' '.join(project.tests)}", result["cells"], command,
                         result["details"], why=project.why, path=path)
    md = table.write(path, programs.ROWS)
    print(f"impact table: {md} (and .json)")
    return 0
