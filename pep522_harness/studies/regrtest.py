"""Run CPython's own regression tests under a faked RNG mode, stock and
patched, and compare the outcome of every test module.

    python -m pep522_harness regrtest --cpython V --mode M [--full]
        [--sanitizer address|undefined] [TEST ...]

With ``--sanitizer`` the runs use the ASan or UBSan builds instead, and every
sanitizer report of the run's whole process tree is written to its own file
(``log_path``) and listed in the outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pep522_harness.core import apply, build, options, paths, progress, tables
from pep522_harness.core.versions import VARIANTS
from pep522_harness.fake import modes

# The modules issue-level runs use: what PEP 522 touches, plus its neighbours.
FOCUS = ("test_os", "test_secrets", "test_random", "test_hash", "test_cmd_line",
         "test_uuid", "test_tempfile")
CATEGORIES = ("failed", "blocked", "skipped", "resource_denied", "flaky", "env_changed",
              "no_tests_run", "interrupted")
_HEADER = re.compile(r"^(\d+) (.+):$")
_KIND = {  # regrtest's section titles -> our categories
    "failed": "failed", "failed again": "failed", "skipped": "skipped",
    "skipped (resource denied)": "resource_denied",
    "altered the execution environment": "env_changed",
    "altered the execution environment (env changed)": "env_changed",
    "re-run": "flaky", "run no tests": "no_tests_run",
    "omitted": "interrupted", "not run": "interrupted",
}


def added_test_modules() -> list[str]:
    """The test modules the patch set adds (Lib/test/test_*.py)."""
    return sorted(p.stem for p in map(Path, map(str, apply.added_files()))
                  if p.parent.as_posix() == "Lib/test" and p.name.startswith("test_")
                  and p.suffix == ".py")


def default_tests() -> list[str]:
    return [*FOCUS, *added_test_modules()]


@dataclass
class Outcome:
    version: str
    variant: str
    mode: str
    command: list[str]
    wall_s: float
    returncode: int
    status: dict[str, str] = field(default_factory=dict)   # module -> status
    sanitizer: str | None = None
    sanitizer_reports: list[str] = field(default_factory=list)   # report files

    def modules(self, status: str) -> list[str]:
        return sorted(m for m, s in self.status.items() if s == status)

    def failures(self) -> list[str]:
        """The modules that failed, those a held call stopped among them."""
        return sorted(m for m, s in self.status.items() if s in ("failed", "blocked"))


def parse_summary(text: str, selected: list[str]) -> dict[str, str]:
    """Module -> passed|failed|skipped|flaky|... from regrtest's summary.

    With -w regrtest prints a summary before it re-runs the failures and
    another after: only the last one ("== Tests result: X then Y ==") counts,
    or a test that passed when re-run would stay failed.
    """
    found: dict[str, str] = {}
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("== Tests result")]
    i = starts[-1] if starts else 0
    while i < len(lines):
        m = _HEADER.match(lines[i].strip())
        if not m:
            i += 1
            continue
        # "1 test failed", "2 re-run tests": drop the first test/tests word.
        words = m.group(2).lower().split()
        for i_word, word in enumerate(words):
            if word in ("test", "tests"):
                del words[i_word]
                break
        kind = _KIND.get(" ".join(words))
        i += 1
        names: list[str] = []
        while i < len(lines) and lines[i].startswith("    "):
            names += lines[i].split()
            i += 1
        if kind is None:
            continue
        for name in names:
            # "failed again" wins over "re-run"; a re-run that passed is flaky.
            if kind == "flaky" and found.get(name) == "failed":
                continue
            found[name] = kind
    statuses = {t: found.get(t, "passed") for t in selected} | {
        t: s for t, s in found.items() if t not in selected}
    # A worker that the fake stopped (SIGABRT after the hold limit: a call
    # that a kernel whose RNG never gets ready holds for ever) blocked there.
    for name in stopped_workers(text):
        if statuses.get(name) == "failed":
            statuses[name] = "blocked"
    return statuses


# 3.13: "[ 5/9/1] test_os worker non-zero exit code (Exit code -6 (SIGABRT))";
# 3.11: "[ 5/9/1] test_os crashed (Exit code -6)".
_STOPPED = re.compile(r"\] (test\S+) (?:worker non-zero exit code|crashed) "
                      r"\(Exit code -6\b")


def stopped_workers(text: str) -> set[str]:
    """Test modules whose worker died of SIGABRT (the fake's hold limit)."""
    return {m.group(1) for m in _STOPPED.finditer(text)}


def list_tests(python: Path, tests: list[str], full: bool) -> list[str]:
    if not full:
        return list(tests)
    out = subprocess.run([str(python), "-m", "test", "--list-tests"],
                         capture_output=True, text=True, check=True).stdout
    return [t for t in out.split() if t.startswith("test_")]


def sanitizer_env(sanitizer: str | None, report_dir: Path) -> dict[str, str]:
    """The environment of a run: the build's sanitizer options (CPython's own),
    plus a report file per process in ``report_dir`` and UBSan's stacks."""
    env = dict(os.environ)
    if sanitizer is None:
        return env
    env |= build.SANITIZER_ENV[sanitizer]
    if sanitizer == "address":
        env["ASAN_OPTIONS"] += f":log_path={report_dir / 'asan'}"
    else:
        env["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={report_dir / 'ubsan'}"
    return env


def command(python: Path, version: str, selected: list[str], *,
            full: bool, jobs: int, timeout: int, rerun: bool) -> list[str]:
    """The run's command line, which runs under the fake RNG: stock and
    pep522 alike (the same release leaves out the same test cases)."""
    cmd = [str(python), "-m", "test", f"-j{jobs}", f"--timeout={timeout}"]
    if rerun:
        cmd.append("-w")
    for pattern in ignored(version):
        cmd += ["--ignore", pattern]
    return cmd + ([] if full else selected)


def log_path(log_dir: Path, version: str, variant: str, mode: str, full: bool,
             sanitizer: str | None) -> Path:
    tag = paths.build_name(version, variant, sanitizer).removeprefix("cpython-")
    return log_dir / f"regrtest-{tag}-{mode}{'-full' if full else ''}.log"


_DURATION = re.compile(r"^Total duration: (.+)$", re.M)
_RESULT = re.compile(r"^Result: (.+)$", re.M)
_UNIT = {"hour": 3600, "hours": 3600, "min": 60, "sec": 1, "ms": 0.001}


def total_duration(text: str) -> float | None:
    """regrtest's own "Total duration: 1 hour 2 min 3 sec" in seconds."""
    found = _DURATION.findall(text)
    if not found:
        return None
    words = found[-1].split()
    return sum(float(n) * _UNIT[u] for n, u in zip(words[::2], words[1::2]))


def from_log(version: str, variant: str, mode: str, tests: list[str], *,
             full: bool = False, jobs: int = 2, timeout: int = 900,
             rerun: bool = True, log_dir: Path | None = None,
             sanitizer: str | None = None) -> Outcome:
    """The outcome of the last run, read again from its log (``--from-logs``:
    after a change to how logs are read, without running the suite again).
    The wall time is regrtest's own total duration."""
    python = paths.python(version, variant, sanitizer)
    log = log_path(log_dir or paths.LOGS, version, variant, mode, full, sanitizer)
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        raise SystemExit(f"regrtest: no log of that run ({paths.relative(str(log))}); "
                         f"run it first, without --from-logs") from None
    wall = total_duration(text)
    if wall is None:
        raise SystemExit(f"regrtest: {paths.relative(str(log))} has no summary: the run did "
                         f"not finish; run it again, without --from-logs")
    selected = list_tests(python, tests, full)
    args = modes.arguments(modes.parse_mode(mode), command(
        python, version, selected, full=full, jobs=jobs, timeout=timeout, rerun=rerun))
    # regrtest exits 0 when its last word is SUCCESS ("FAILURE then SUCCESS" too)
    results = _RESULT.findall(text)
    returncode = 0 if results and results[-1].split()[-1] == "SUCCESS" else 2
    return Outcome(version, variant, mode, [paths.relative(a) for a in args],
                   round(wall, 1), returncode, parse_summary(text, selected), sanitizer, [])


# regrtest's line for a test module it has finished: "0:01:02 load avg: 1.9 [ 12/489] test_os passed"
_FINISHED = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\]\s+(test_[\w.]+)")


@contextlib.contextmanager
def _shown(show: bool, log: Path, total: int, what: str) -> Iterator[None]:
    """The modules done out of the total, read from the run's log as it grows."""
    if not show:
        yield
        return
    seen: set[str] = set()

    def finished(line: str) -> None:
        m = _FINISHED.search(line)
        if m and m.group(1) not in seen:      # a re-run is not one more done
            seen.add(m.group(1))
            bar.advance(current=m.group(1))

    with progress.Progress(what, total, "modules",
                           note=f"log: {paths.relative(str(log))}") as bar, \
            progress.follow(log, finished):
        yield


def run(version: str, variant: str, mode: str, tests: list[str], *,
        full: bool = False, jobs: int = 2, timeout: int = 900,
        rerun: bool = True, log_dir: Path | None = None,
        sanitizer: str | None = None, show_progress: bool = False) -> Outcome:
    python = build.build(version, variant, sanitizer=sanitizer, quiet=True)
    selected = list_tests(python, tests, full)
    cmd = command(python, version, selected, full=full, jobs=jobs, timeout=timeout,
                  rerun=rerun)
    log_dir = log_dir or paths.LOGS
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_path(log_dir, version, variant, mode, full, sanitizer)
    report_dir = log.with_suffix(".reports")
    shutil.rmtree(report_dir, ignore_errors=True)
    if sanitizer:
        report_dir.mkdir()
    with log.open("w") as f, _shown(show_progress, log, len(selected),
                                    f"regrtest {version} {variant} {mode}"):
        done = modes.run(mode, cmd, output=f, env=sanitizer_env(sanitizer, report_dir))
    status = parse_summary(log.read_text(errors="replace"), selected)
    reports = sorted(paths.relative(str(p)) for p in report_dir.glob("*")) if sanitizer else []
    return Outcome(version, variant, mode, [paths.relative(a) for a in done.args],
                   round(done.seconds, 1), done.returncode, status, sanitizer, reports)


def compare(stock: Outcome, patched: Outcome) -> list[dict[str, str]]:
    names = sorted(set(stock.status) | set(patched.status))
    return [{"test": n, "stock": stock.status.get(n, "absent"),
             "pep522": patched.status.get(n, "absent")}
            for n in names if stock.status.get(n) != patched.status.get(n)]


def report(outcomes: list[Outcome], out: Path) -> dict:
    by = {(o.variant, o.mode): o for o in outcomes}
    modes = sorted({o.mode for o in outcomes})
    data: dict = {"version": outcomes[0].version, "modes": {}}
    san = outcomes[0].sanitizer
    data["sanitizer"] = san
    title = f"# CPython {data['version']}: regression tests, stock vs pep522"
    lines = [title + (f" ({san} sanitizer)" if san else ""), ""]
    for mode in modes:
        s, p = by.get(("stock", mode)), by.get(("pep522", mode))
        entry: dict = {}
        for o in (s, p):
            if o:
                entry[o.variant] = {"wall_s": o.wall_s, "returncode": o.returncode,
                                    "failed": o.failures(),
                                    "flaky": o.modules("flaky"),
                                    "command": " ".join(o.command),
                                    "sanitizer_reports": o.sanitizer_reports}
        entry["differ"] = compare(s, p) if s and p else []
        entry["flaky"] = sorted(set((s.modules("flaky") if s else []) +
                                    (p.modules("flaky") if p else [])))
        entry["wall_s"] = round(sum(o.wall_s for o in (s, p) if o), 1)
        data["modes"][mode] = entry
        lines += [f"## mode `{mode}`", "",
                  *tables.markdown(["test", "stock", "pep522"],
                                   [[d["test"], d["stock"], d["pep522"]]
                                    for d in entry["differ"]], empty="(no difference)")]
        for o in (s, p):
            if o:
                lines.append(f"\n{o.variant}: {len(o.status)} modules, failed "
                             f"{', '.join(o.modules('failed')) or 'none'}; "
                             f"wall {o.wall_s} s" + (
                                 f"; sanitizer reports: "
                                 f"{', '.join(o.sanitizer_reports) or 'none'}"
                                 if o.sanitizer else ""))
        lines.append("")
    # out is named after a version ("regrtest-3.13.5"): add, never replace, a suffix
    tables.write_json(out.with_name(out.name + ".json"),
                      data | {"runs": [asdict(o) for o in outcomes]})
    out.with_name(out.name + ".md").write_text("\n".join(lines) + "\n")
    return data


# Why a test's outcome differs between stock and pep522, per mode ("*": any).
EXPLAINED = Path(__file__).with_name("regrtest_explained.toml")


def explanation(test: str, mode: str, table: dict | None = None,
                stock: str = "", pep522: str = "") -> str | None:
    """Why ``test`` differs under ``mode``: its own entry, or else the one
    its statuses have (``[statuses]``, "STOCK PEP522")."""
    table = table if table is not None else tomllib.loads(EXPLAINED.read_text())
    for key in (mode, "*"):
        why = table.get(key, {}).get(test)
        if why:
            break
    else:
        why = table.get("statuses", {}).get(f"{stock} {pep522}")
    if not why:
        return None
    # a name from [reasons] stands for the reason's text
    return str(table.get("reasons", {}).get(why, why))


def ignored(version: str, table: dict | None = None) -> dict[str, str]:
    """Test cases this release's runs leave out, stock and pep522 alike
    (regrtest ``--ignore PATTERN``), each with why: ``[ignore."VERSION"]``."""
    table = table if table is not None else tomllib.loads(EXPLAINED.read_text())
    return {str(k): str(v) for k, v in table.get("ignore", {}).get(version, {}).items()}


def _regrtest_args(entry: dict) -> str:
    """The arguments regrtest ran with (the same on both variants)."""
    command = entry.get("pep522", entry.get("stock", {})).get("command", "")
    return command.partition(" -m test ")[2]


def publish(data: dict, docs: Path | None = None, *,
            reread: bool = False) -> Path:
    """Merge a full run's modes into docs/regrtest-VERSION.json and render its
    Markdown twin: per mode the tests that differ, each with why.

    ``reread``: the outcomes were read again from the logs of runs already
    published, so a mode keeps the date and wall time measured when it ran.
    """
    docs = docs or paths.REPO / "docs"
    version = data["version"]
    json_path = docs / f"regrtest-{version}.json"
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, ValueError):
        doc = {"version": version, "modes": {}}
    table = tomllib.loads(EXPLAINED.read_text())
    ours = set(added_test_modules())
    for mode, entry in data["modes"].items():
        # The patch set's own modules exist only in pep522: not a difference.
        new = {d["test"]: d["pep522"] for d in entry["differ"]
               if d["test"] in ours and d["stock"] == "absent"}
        ran = doc["modes"].get(mode, {}) if reread else {}
        doc["modes"][mode] = {
            "date": ran.get("date", time.strftime("%Y-%m-%d")),
            "command": f"--cpython {version} --full --mode {mode}",
            "wall_s": ran.get("wall_s", entry["wall_s"]),
            "differ": [d | {"why": explanation(d["test"], mode, table,
                                               d["stock"], d["pep522"])}
                       for d in entry["differ"] if d["test"] not in new],
            "added_modules": new,
            "flaky": entry["flaky"],
            "failed": {v: entry[v]["failed"] for v in ("stock", "pep522") if v in entry},
            "ignored": ignored(version, table),
            "cores": ran.get("cores", os.cpu_count()),
            "regrtest": _regrtest_args(entry),
        }
    tables.write_json(json_path, doc, sort_keys=True)
    lines = [f"# CPython {version}: the whole regression suite, stock against pep522", "",
             "Both builds are made the same way (`nox -s build`); each mode runs "
             "CPython's whole suite under the fake RNG on both. A difference is "
             "a test module whose outcome is not the same on both; every one is "
             f"explained (`{EXPLAINED.relative_to(paths.REPO).as_posix()}`).", ""]
    for mode in sorted(doc["modes"]):
        e = doc["modes"][mode]
        lines += [f"## `{mode}`", "",
                  f"Run {e['date']}, {e['wall_s'] / 60:.1f} min for both variants on "
                  f"{e.get('cores', '?')} cores: `nox -s regrtest -- {e['command']}`, "
                  f"that is `python -m test {e.get('regrtest', '')}`", ""]
        whys = list(dict.fromkeys(d["why"] for d in e["differ"] if d["why"]))
        lines += tables.markdown(
            ["test", "stock", "pep522", "why"],
            [[d["test"], d["stock"], d["pep522"],
              f"[{whys.index(d['why']) + 1}]" if d["why"] else "**not explained**"]
             for d in e["differ"]], empty="(none)")
        lines += ["", *(f"[{i}] {why}  " for i, why in enumerate(whys, 1))]
        lines += ["", "- the patch set's own test modules (only in pep522): " + (
                      ", ".join(f"{t} {o}" for t, o in sorted(e["added_modules"].items()))
                      or "none"),
                  *(f"- failed on {v}: {', '.join(e['failed'][v]) or 'nothing'}"
                    for v in ("stock", "pep522") if v in e["failed"]),
                  f"- flaky (failed, then passed when re-run): "
                  f"{', '.join(e['flaky']) or 'none'}",
                  *(f"- left out of both runs (`--ignore {pattern}`): {why}"
                    for pattern, why in e.get("ignored", {}).items()), ""]
    md = json_path.with_name(f"regrtest-{version}.md")
    md.write_text("\n".join(lines))
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s regrtest --")
    options.cpython(p)
    modes.option(p, default=["never-ready"])
    options.variant(p, many=True)
    p.add_argument("--full", action="store_true", help="the whole suite")
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--timeout", type=int, default=900, help="per test, seconds")
    p.add_argument("--sanitizer", choices=sorted(build.SANITIZERS),
                   help="run the ASan or UBSan builds (nox -s build -- --sanitizer)")
    p.add_argument("--from-logs", action="store_true",
                   help="read the last run's logs again instead of running")
    p.add_argument("tests", nargs="*", help=f"default: {' '.join(FOCUS)} + ours")
    args = p.parse_args(argv)
    tests = args.tests or default_tests()
    outcomes = []
    for mode in args.mode:
        for variant in args.variant:
            print(f"regrtest: CPython {args.cpython} {variant}"
                  f"{f' ({args.sanitizer})' if args.sanitizer else ''} under {mode} ...",
                  flush=True)
            how = dict(full=args.full, jobs=args.jobs, timeout=args.timeout,
                       sanitizer=args.sanitizer)
            o = (from_log(args.cpython, variant, mode, tests, **how) if args.from_logs
                 else run(args.cpython, variant, mode, tests, **how, show_progress=True))
            print(f"  {len(o.status)} modules, failed: "
                  f"{' '.join(o.modules('failed')) or 'none'}; {o.wall_s} s"
                  + (f"; {len(o.sanitizer_reports)} sanitizer report files"
                     if args.sanitizer else ""))
            outcomes.append(o)
    name = (f"regrtest-{args.cpython}{f'-{args.sanitizer}' if args.sanitizer else ''}"
            f"{'-full' if args.full else ''}")
    data = report(outcomes, paths.OUT / name)
    for mode, entry in data["modes"].items():
        print(f"{mode}: {len(entry['differ'])} tests differ between stock and pep522")
    print(f"report: {paths.OUT / name}.md (and .json)")
    if args.full and set(args.variant) == set(VARIANTS) and not args.sanitizer:
        print(f"published: {publish(data, reread=args.from_logs)} (and .json)")
    return 0
