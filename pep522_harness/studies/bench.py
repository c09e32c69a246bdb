"""Patched against stock with pyperf, and how fast secrets wakes up.

    python -m pep522_harness bench [--cpython V ...] [--fast | --rigorous] [--out DIR]

For each release, builds (or reuses) the stock and pep522 interpreters and
runs the same pyperf benchmarks on both, in rounds that alternate the
variants so that a change of machine load falls on both.  Writes, per
release, into build/out/bench/VERSION/:

    stock.json, pep522.json   pyperf suites (every benchmark below)
    compare.txt               ``pyperf compare_to -v`` and its table
    wake.json                 the raw wake-up launches
    ratios.md                 pep522/stock, the goal and pyperf's verdict
    instructions.md           with --instructions: callgrind's instruction
                              counts, which a noisy machine does not change

pyperf is installed with pip into build/bench/ and reaches the built
interpreters and pyperf's workers through PYTHONPATH only: their own
site-packages stay untouched, stock and patched import the very same files,
and the start-up benchmarks (run with -I) see no trace of it.  What runs is a
hard-linked snapshot of each build (build/bench/snapshots/), so that a
rebuild during a run cannot mix two builds into one result.

Wake-up: each launch runs under ``fakerng ready-on-wait=1`` and calls
``secrets.wait_for_system_rng()`` (stock, which has none: a blocking
``os.getrandom(1)``, the kernel's own floor).  The latency is from the
supervisor's readiness to the call's return; CPU is the waiting process's
CPU time per second of waiting.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pep522_harness.core import build, options, paths, process, tables
from pep522_harness.core.errors import HarnessError
from pep522_harness.core.versions import VARIANTS
from pep522_harness.fake import modes

PYPERF = "pyperf==2.10.0"
WAIT_DELAY = 1.0   # seconds the fake RNG stays not ready once someone waits


@dataclass(frozen=True)
class Bench:
    name: str
    label: str
    goal: float | None                  # ratio, or seconds when absolute
    setup: str = ""
    stmt: str = ""                      # timeit statement
    command: tuple[str, ...] = ()       # pyperf command: interpreter arguments
    absolute: bool = False              # goal applies to the pep522 value


MICRO = (
    Bench("urandom-16", "os.urandom(16)", 0.95, "import os", "os.urandom(16)"),
    Bench("urandom-32", "os.urandom(32)", 0.95, "import os", "os.urandom(32)"),
    Bench("urandom-4096", "os.urandom(4096)", 1.01, "import os", "os.urandom(4096)"),
    Bench("getrandom-32", "os.getrandom(32) (floor)", None, "import os",
          "os.getrandom(32)"),
    Bench("token_bytes-32", "secrets.token_bytes(32)", 1.02, "import secrets",
          "secrets.token_bytes(32)"),
    Bench("token_hex-32", "secrets.token_hex(32)", None, "import secrets",
          "secrets.token_hex(32)"),
    Bench("randbelow-2_64", "secrets.randbelow(2**64)", 1.02,
          "import secrets; n = 2**64", "secrets.randbelow(n)"),
    Bench("choice-seq", "secrets.choice(seq)", 1.02,
          "import secrets; seq = list(range(1000))", "secrets.choice(seq)"),
    Bench("systemrandom-random", "random.SystemRandom().random()", None,
          "import random; r = random.SystemRandom()", "r.random()"),
)
STARTUP = (
    Bench("startup-pass", "start-up -I -c pass", 1.01, command=("-I", "-c", "pass")),
    Bench("startup-import", "start-up -I -c \"import random, secrets\"", 1.01,
          command=("-I", "-c", "import random, secrets")),
)
WAKE = (
    Bench("wake-latency", "wake after readiness", 0.002, absolute=True),
    Bench("wait-cpu-per-s", "CPU per 1 s of waiting", 0.010, absolute=True),
)
BENCHES = (*MICRO, *STARTUP, *WAKE)


@dataclass(frozen=True)
class Level:
    """Many short rounds that alternate the variants (ABBA): on a shared
    machine a change of load then falls on stock and pep522 alike."""
    rounds: int                 # pyperf invocations per benchmark and variant
    pyperf_args: tuple[str, ...]
    wake_runs: int              # launches per variant


LEVELS = {   # default and rigorous: pyperf's own 20 and 40 worker processes
    "fast": Level(1, ("-p", "3", "-n", "2", "--min-time", "0.01"), 2),
    "default": Level(10, ("-p", "2"), 10),
    "rigorous": Level(20, ("-p", "2"), 20),
}

# One launch: its timestamps are CLOCK_MONOTONIC, as the supervisor's are.
WAIT_CODE = """\
import json, os, secrets, time
wait = getattr(secrets, "wait_for_system_rng", None)
call = "secrets.wait_for_system_rng()" if wait else "os.getrandom(1)"
wait = wait or (lambda: os.getrandom(1))
c0 = time.process_time(); t0 = time.monotonic()
wait()
t1 = time.monotonic(); c1 = time.process_time()
print(json.dumps({"call": call, "t_call": t0, "t_return": t1, "cpu": c1 - c0}))
"""


class BenchError(HarnessError):
    pass


def deps_dir() -> Path:
    return paths.BUILD / "bench" / PYPERF.replace("==", "-")


def snapshot(version: str, variant: str) -> tuple[Path, str]:
    """Build (or reuse) an interpreter and measure a hard-linked copy of it:
    a rebuild during the run (rmtree, then install) leaves those files alone.
    Returns its python3 and its build key."""
    install = paths.install_dir(version, variant)
    for _attempt in range(3):
        build.build(version, variant, quiet=True)
        key = str(build.read_stamp(install).get("key"))
        snap = paths.BUILD / "bench" / "snapshots" / f"{install.name}-{key[:12]}"
        if build.read_stamp(snap).get("key") == key:
            return snap / "bin" / "python3", key
        tmp = snap.with_name(f".tmp-{snap.name}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(install, tmp, symlinks=True, copy_function=os.link)
        except (OSError, shutil.Error):
            pass                        # rebuilt while linking: again
        if build.read_stamp(tmp).get("key") == key == build.read_stamp(install).get("key"):
            for old in snap.parent.glob(f"{install.name}-*"):
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, snap)
            return snap / "bin" / "python3", key
        shutil.rmtree(tmp, ignore_errors=True)
    raise BenchError(f"{install} keeps being rebuilt: run again later")


def ensure_pyperf() -> Path:
    """pip-install pyperf (pure Python; psutil as an abi3 wheel) once."""
    target = deps_dir()
    if (target / "pyperf" / "__init__.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", "--only-binary=:all:",
                           "--target", str(tmp), PYPERF],
                          capture_output=True, text=True)
    if proc.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BenchError(f"pip install {PYPERF} failed:\n{proc.stderr.strip()}")
    try:
        os.replace(tmp, target)
    except OSError:                     # installed meanwhile by another run
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def pyperf_module() -> Any:
    deps = str(ensure_pyperf())
    if deps not in sys.path:
        sys.path.insert(0, deps)
    return importlib.import_module("pyperf")


def pyperf_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ensure_pyperf())
    return env


def run_pyperf(python: Path, bench: Bench, out: Path, args: tuple[str, ...]) -> None:
    cmd = [str(python), "-m", "pyperf"]
    if bench.command:
        cmd += ["command", "--quiet", "--name", bench.name, "--append", str(out),
                *args, "--", str(python), *bench.command]
    else:
        cmd += ["timeit", "--quiet", "--name", bench.name, "--append", str(out),
                *args, "-s", bench.setup, bench.stmt]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=pyperf_env(),
                          stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise BenchError(f"{bench.name} on {python}: exit {proc.returncode}\n"
                         f"{proc.stderr.strip()[-2000:]}")
    print("   ", proc.stdout.strip(), flush=True)


def wake_once(python: Path) -> dict[str, Any]:
    """One launch under ready-on-wait; latency and CPU, or an error."""
    run = modes.run(f"ready-on-wait={WAIT_DELAY}", [str(python), "-I", "-c", WAIT_CODE],
                    cwd=paths.REPO, timeout=WAIT_DELAY + 60, watch=True)
    if run.timed_out:
        return {"error": "the wait never returned (no blocking getrandom()?)"}
    if run.returncode:
        return {"error": (run.stderr.strip().splitlines() or ["?"])[-1]}
    got = json.loads(run.stdout.strip().splitlines()[-1])
    events = run.events
    hold = next((e for e in events if e["event"] == "hold"), None)
    ready = next((e for e in events if e["event"] == "ready"), None)
    if hold is None or ready is None:
        return {**got, "error": "the supervisor saw no blocking getrandom()"}
    if "mono" in ready:     # the supervisor's own CLOCK_MONOTONIC of readiness
        latency, method = got["t_return"] - ready["mono"], "exact"
    else:
        # From the call, less the supervisor's hold-to-ready interval: an upper
        # bound (it adds the trip of the blocking call to the supervisor).
        latency = (got["t_return"] - got["t_call"]) - (ready["t"] - hold["t"])
        method = "upper bound"
    wall = got["t_return"] - got["t_call"]
    return {**got, "latency": latency, "method": method, "cpu_per_s": got["cpu"] / wall}


def add_values(pyperf: Any, suite_path: Path, name: str, values: list[float],
               extra: dict[str, str]) -> None:
    runs = [pyperf.Run([v], metadata={"name": name, "unit": "second", "loops": 1,
                                      **extra}, collect_metadata=False)
            for v in values]
    bench = pyperf.Benchmark(runs)
    if suite_path.exists():
        suite = pyperf.BenchmarkSuite.load(str(suite_path))
        suite.add_benchmark(bench)
    else:
        suite = pyperf.BenchmarkSuite([bench])
    suite.dump(str(suite_path), replace=True)


def parse_verdicts(text: str) -> dict[str, tuple[str, bool]]:
    """Name -> (pyperf's words, significant?), from ``compare_to -v`` output."""
    lines = text.splitlines()
    verdicts: dict[str, tuple[str, bool]] = {}
    for i in range(len(lines) - 1):
        name, rule = lines[i], lines[i + 1]
        if not name or rule != "=" * len(name):
            continue
        speed, significance = "", ""
        for line in lines[i + 2:i + 6]:
            if line.startswith("Mean +- std dev:"):
                speed = line.rpartition(": ")[2]
            elif line.startswith(("Significant", "Not significant")):
                significance = line.rstrip("!").lower()
        words = ", ".join(filter(None, (speed, significance)))
        verdicts[name] = (words, significance.startswith("significant"))
    return verdicts


def judge(bench: Bench, ratio: float, value: float, significant: bool) -> str:
    if bench.goal is None:
        return ""
    if bench.absolute:
        return "met" if value <= bench.goal else "missed"
    if ratio <= bench.goal:
        return "met" if bench.goal >= 1 or significant else "unclear (noise)"
    return "missed" if significant or bench.goal < 1 else "unclear (noise)"


UNITS = {"wake-latency": "ms", "wait-cpu-per-s": "ms/s"}


def goal_text(bench: Bench) -> str:
    if bench.goal is None:
        return "—"
    if bench.absolute:
        return f"≤ {bench.goal * 1e3:g} {UNITS[bench.name]}"
    return f"≤ {bench.goal:.2f}×"


def value_text(bench: Bench, got: Any, value: float) -> str:
    if bench.absolute:
        return f"{value * 1e3:.3f} {UNITS[bench.name]}"
    return str(got.format_value(value))


def ratio_table(pyperf: Any, version: str, out: Path,
                verdicts: dict[str, tuple[str, bool]],
                header: str) -> str:
    suites = {v: pyperf.BenchmarkSuite.load(str(out / f"{v}.json")) for v in VARIANTS}
    rows = []
    for bench in BENCHES:
        try:
            got = {v: suites[v].get_benchmark(bench.name) for v in VARIANTS}
        except KeyError:
            continue
        means = {v: got[v].mean() for v in VARIANTS}
        medians = {v: got[v].median() for v in VARIANTS}
        ratio = means["pep522"] / means["stock"]
        verdict, significant = verdicts.get(bench.name, ("", False))
        met = judge(bench, ratio, medians["pep522"], significant)
        shown = medians if bench.absolute else means
        rows.append([bench.label, *(value_text(bench, got[v], shown[v]) for v in VARIANTS),
                     f"{ratio:.3f}×", f"{medians['pep522'] / medians['stock']:.3f}×",
                     goal_text(bench), met or "—", verdict])
    lines = [f"## CPython {version}: pep522 / stock", "", header, "",
             *tables.markdown(["benchmark", "stock", "pep522", "pep522/stock",
                               "median ratio", "goal", "goal met", "pyperf"], rows,
                              right=(1, 2, 3, 4))]
    return "\n".join(lines) + "\n"


def measure(version: str, level_name: str, out: Path,
            only: list[str] | None = None) -> str:
    """Run every benchmark on both variants; return the Markdown table."""
    level = LEVELS[level_name]
    pyperf = pyperf_module()
    snaps = {v: snapshot(version, v) for v in VARIANTS}
    pythons = {v: snaps[v][0] for v in VARIANTS}
    out.mkdir(parents=True, exist_ok=True)
    for v in VARIANTS:
        (out / f"{v}.json").unlink(missing_ok=True)
    load_before = os.getloadavg()
    selected = [b for b in BENCHES if not only or b.name in only]
    loops: dict[str, str] = {}      # calibrated once, then the same for both
    for r in range(level.rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for bench in (b for b in selected if b not in WAKE):
            for v in order:
                print(f"[{version} round {r + 1}/{level.rounds}] {bench.name} {v}",
                      flush=True)
                fixed = ("--loops", loops[bench.name]) if bench.name in loops else ()
                run_pyperf(pythons[v], bench, out / f"{v}.json",
                           (*level.pyperf_args, *fixed))
                if not fixed:
                    suite = pyperf.BenchmarkSuite.load(str(out / f"{v}.json"))
                    loops[bench.name] = str(round(
                        suite.get_benchmark(bench.name).get_loops()))
    wake: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    if any(b in WAKE for b in selected):
        for i in range(level.wake_runs):
            for v in VARIANTS if i % 2 == 0 else VARIANTS[::-1]:
                print(f"[{version} wake {i + 1}/{level.wake_runs}] {v}", flush=True)
                wake[v].append(wake_once(pythons[v]))
        tables.write_json(out / "wake.json", wake)
        for v in VARIANTS:
            good = [w for w in wake[v] if "error" not in w]
            if not good:
                continue
            extra = {"wait_call": good[0]["call"], "wake_method": good[0]["method"],
                     "fakerng_mode": f"ready-on-wait={WAIT_DELAY}"}
            add_values(pyperf, out / f"{v}.json", "wake-latency",
                       [w["latency"] for w in good], extra)
            add_values(pyperf, out / f"{v}.json", "wait-cpu-per-s",
                       [w["cpu_per_s"] for w in good], extra)
    load_after = os.getloadavg()
    compare = subprocess.run(
        [sys.executable, "-m", "pyperf", "compare_to", "-v", "stock.json", "pep522.json"],
        capture_output=True, text=True, env=pyperf_env(), cwd=out)
    table = subprocess.run(
        [sys.executable, "-m", "pyperf", "compare_to", "--table", "stock.json",
         "pep522.json"], capture_output=True, text=True, env=pyperf_env(), cwd=out)
    if compare.returncode:
        raise BenchError(f"pyperf compare_to failed: {compare.stderr.strip()}")
    (out / "compare.txt").write_text(compare.stdout + "\n" + table.stdout)
    errors = sorted({f"{v}: {w['error']}" for v in VARIANTS for w in wake[v]
                     if "error" in w})
    calls = {v: next((w["call"] for w in wake[v] if "call" in w), "-") for v in VARIANTS}
    methods = sorted({w["method"] for v in VARIANTS for w in wake[v] if "method" in w})
    header = (f"pyperf {PYPERF.partition('==')[2]}, level `{level_name}` "
              f"({level.rounds} round(s) of `{' '.join(level.pyperf_args)}`, "
              f"{level.wake_runs} wake launches per variant); load average "
              f"{' '.join(f'{x:.2f}' for x in load_before)} before, "
              f"{' '.join(f'{x:.2f}' for x in load_after)} after; build keys "
              f"{', '.join(f'{v} {snaps[v][1][:12]}' for v in VARIANTS)}.  "
              f"Wake: `{calls['pep522']}` (stock: `{calls['stock']}`) under "
              f"`ready-on-wait={WAIT_DELAY:g}`, latency as "
              f"{' / '.join(methods) or '-'}.  Values: pyperf's mean; wake and CPU "
              "rows: the median of the launches, which their goals are judged on.")
    if errors:
        header += "  Wake errors: " + "; ".join(errors)
    md = ratio_table(pyperf, version, out, parse_verdicts(compare.stdout), header)
    (out / "ratios.md").write_text(md)
    return md


# Instruction counts (valgrind's callgrind): per call, the difference between
# two loop lengths divided by the extra calls, so start-up cancels out.  The
# hash seed is fixed for them (PYTHONHASHSEED=0; -s -S -P isolate the run
# as -I would, but -I ignores PYTHONHASHSEED): with a random seed, dict
# layouts move the counts by about 3% from run to run.  Start-up is counted
# with a random seed, -I, as it runs: a fixed seed skips the very RNG read
# the patch set changes; the least of a few runs stands for it.
IR_CALLS = (("os.urandom(32)", "import os", "os.urandom(32)"),
            ("os.urandom(4096)", "import os", "os.urandom(4096)"),
            ("secrets.token_bytes(32)", "import secrets", "secrets.token_bytes(32)"),
            ("os.getrandom(32)", "import os", "os.getrandom(32)"),
            ("secrets.randbelow(2**64)", "import secrets", "secrets.randbelow(1 << 64)"),
            ("secrets.choice(seq)", "import secrets; seq = list(range(1000))",
             "secrets.choice(seq)"))
IR_LOOPS = (1000, 11000)
IR_ISOLATED = ("-s", "-S", "-P")
IR_STARTUP_RUNS = 5


def instructions(python: Path, *args: str, env: dict[str, str] | None = None) -> int:
    if shutil.which("valgrind") is None:
        raise BenchError("--instructions needs valgrind (apt-get install valgrind)")
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           str(python), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=process.clean_env(env))
    for line in proc.stderr.splitlines():
        if "Collected :" in line and proc.returncode == 0:
            return int(line.rpartition(":")[2].replace(",", ""))
    raise BenchError(f"callgrind of {python} {' '.join(args)} failed:\n"
                     f"{proc.stderr.strip()[-2000:]}")


def instruction_table(version: str, out: Path) -> str:
    pythons = {v: snapshot(version, v)[0] for v in VARIANTS}
    rows = []
    for label, setup, stmt in IR_CALLS:
        per_call = {}
        for v in VARIANTS:
            a, b = (instructions(pythons[v], *IR_ISOLATED, "-c",
                                 f"{setup}\nfor _ in range({n}): {stmt}",
                                 env={"PYTHONHASHSEED": "0"})
                    for n in IR_LOOPS)
            per_call[v] = (b - a) / (IR_LOOPS[1] - IR_LOOPS[0])
        rows.append([f"{label}, per call", f"{per_call['stock']:.0f}",
                     f"{per_call['pep522']:.0f}",
                     f"{per_call['pep522'] / per_call['stock']:.3f}×"])
    start = {v: min(instructions(pythons[v], "-I", "-c", "pass")
                    for _ in range(IR_STARTUP_RUNS)) for v in VARIANTS}
    rows.append([f"start-up `-I -c pass` (least of {IR_STARTUP_RUNS})",
                 f"{start['stock']:,}", f"{start['pep522']:,}",
                 f"{start['pep522'] / start['stock']:.4f}×"])
    md = "\n".join([f"## CPython {version}: instructions (callgrind), pep522 / stock", "",
                    *tables.markdown(["what", "stock", "pep522", "pep522/stock"], rows,
                                     right=(1, 2, 3))]) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "instructions.md").write_text(md)
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s bench --")
    options.cpython(p, many=True)
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--fast", dest="level", action="store_const", const="fast",
                       help="a short run that checks the machinery (CI)")
    speed.add_argument("--rigorous", dest="level", action="store_const",
                       const="rigorous", help="twice the default processes")
    p.add_argument("--only", action="append", metavar="NAME",
                   choices=[b.name for b in BENCHES], help="run only these benchmarks")
    p.add_argument("--instructions", action="store_true",
                   help="also count instructions with valgrind (callgrind)")
    p.add_argument("--out", type=Path, default=paths.OUT / "bench",
                   help="output folder (default build/out/bench)")
    args = p.parse_args(argv)
    for version in args.cpython:
        md = measure(version, args.level or "default", args.out / version, args.only)
        print("\n" + md)
        print(f"written: {args.out / version}/"
              "{stock,pep522}.json, compare.txt, wake.json, ratios.md")
        if args.instructions:
            print("\n" + instruction_table(version, args.out / version))
    return 0
