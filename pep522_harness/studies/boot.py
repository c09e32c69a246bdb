"""Real early boot: the interpreter as /init on a kernel whose RNG is not ready.

    python -m pep522_harness boot [--cpython V] [--variant pep522|stock]
                                  [--kernel PATH] [--accel auto|kvm|tcg]
                                  [--rng-ready] [--refresh] [--time-limit S]

Boots Debian's stock kernel (``linux-image-amd64`` of the suite versions.toml
names, fetched with ``apt-get download`` through a private apt configuration
and unpacked with ``dpkg-deb``, never installed) under QEMU on a CPU model without
RDRAND/RDSEED, with the kernel told to trust neither the CPU nor the boot
loader for randomness. The initramfs holds the installed interpreter, busybox
(``busybox-static``, fetched the same way), a static C probe and the /init
script of ``bootfiles/``.

/init first proves with the probe that getrandom(GRND_NONBLOCK) answers
EAGAIN before any interpreter ran; a boot where it does not is
*inconclusive*, never a pass. Then it runs the interpreter (start-up and
os.urandom(16), ``secrets.wait_for_system_rng()``, os.urandom(16) again) and
prints one ``@@PEP522`` record per fact on the serial console. The host
parses them into build/out/boot-VERSION-VARIANT.json and judges them against
the variant's expected behaviour (EXPECTED below).

QEMU uses KVM when /dev/kvm is usable and the guest reaches /init within
KVM_LIVENESS seconds, else TCG; a host where KVM stayed silent is remembered
and goes straight to TCG. One QEMU runs at a time, each under a hard limit.

Downloads, the kernel, busybox and the compiled probe are cached in the
user's cache; an initramfs is rebuilt only when one of its inputs changed.

Exit status: 0 every boot passed (with --rng-ready: every boot came out
inconclusive), 3 inconclusive boots and no failure, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pep522_harness.core import build, initramfs, options, paths, tables, versions
from pep522_harness.core.aptsource import PrivateApt
from pep522_harness.core.errors import HarnessError
from pep522_harness.core.progress import Log
from pep522_harness.fake.probes import WARNING_MARK

RECIPE = "1"   # bump when the initramfs layout changes
BOOTFILES = Path(__file__).with_name("bootfiles")

KERNEL_META = "linux-image-amd64"     # metapackage: depends on the real image
KERNEL_PREFIX = "linux-image-"
BUSYBOX_PACKAGE = "busybox-static"

QEMU = "qemu-system-x86_64"
CPU = "qemu64"                        # no RDRAND, no RDSEED
APPEND = ("random.trust_cpu=off", "random.trust_bootloader=off",
          "console=ttyS0", "panic=-1", "quiet")
# --rng-ready: a CPU with RDRAND that the kernel trusts, so the RNG is ready
# before /init runs. Such a boot must come out inconclusive.
READY_CPU = "max"
READY_APPEND = ("random.trust_cpu=on",) + APPEND[1:]
MEMORY = "512M"
TIME_LIMIT = 240.0     # seconds a whole boot may take
KVM_LIVENESS = 30.0    # seconds a KVM boot has to reach /init before TCG takes over

MARK = "@@PEP522"
EAGAIN = 11




class BootError(HarnessError):
    pass


@dataclass(frozen=True)
class AtLeast:
    n: int


# What each variant must show once the RNG was proven not ready at /init.
EXPECTED: dict[str, dict[str, object]] = {
    "pep522": {
        "startup_warning": True,
        "startup_dev_urandom_opens": 0,
        "urandom_before_ready": "BlockingIOError",
        "urandom_before_ready_errno": EAGAIN,
        "rng_after_startup": "not-ready",
        "wait_exit": 0,
        "rng_after_wait": "ready",
        "urandom_after_ready": "ok",
    },
    "stock": {
        "startup_warning": False,
        "startup_dev_urandom_opens": AtLeast(1),
        "urandom_before_ready": "ok",
        "rng_after_startup": "ready",      # the /dev/urandom read seeded it (5.18+)
        "urandom_after_ready": "ok",
    },
}


# -- downloads and tools (user cache) ----------------------------------------

def boot_cache() -> Path:
    return paths.cache_root() / "boot"


class Debian:
    """Binary packages of the boot's Debian suite (versions.toml), fetched
    into the user cache."""

    def __init__(self, log: Log = print) -> None:
        self.log = log
        self._apt: PrivateApt | None = None

    @property
    def apt(self) -> PrivateApt:
        if self._apt is None:
            self._apt = PrivateApt(boot_cache() / "apt", [versions.boot_suite()],
                                   source=False, binary=True)
            self.log(f"apt: updating the package lists of {versions.boot_suite()}")
            self._apt.update()
        return self._apt

    def depends(self, package: str, prefix: str) -> str:
        """The dependency of ``package`` whose name starts with ``prefix``."""
        found = [name for name in self.apt.depends(package) if name.startswith(prefix)]
        if not found:
            raise BootError(f"apt-cache depends {package}: no {prefix}* dependency")
        return found[0]

    def unpacked(self, kind: str, package: str, member: str, refresh: bool) -> Path:
        """One file (glob ``member``) of ``package``, unpacked with dpkg-deb.

        Kept as ``<cache>/boot/KIND/<deb name>/<file>``; ``selected.json``
        remembers the choice, so later runs need no network until --refresh.
        """
        store = boot_cache() / kind
        chosen = store / "selected.json"
        if not refresh:
            try:
                got = store / json.loads(chosen.read_text())["file"]
                if got.is_file():
                    return got
            except (OSError, ValueError, KeyError):
                pass
        if package == KERNEL_META:
            package = self.depends(package, KERNEL_PREFIX)
        debs = store / "debs"
        self.log(f"apt: downloading {package}")
        deb = self.apt.download(package, debs)
        dest = store / deb.stem
        found = sorted(dest.glob(Path(member).name)) if dest.is_dir() else []
        if not found:
            with tempfile.TemporaryDirectory(dir=store) as tmp:
                subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
                matches = sorted(Path(tmp).glob(member))
                if not matches:
                    raise BootError(f"{deb.name} holds no {member}")
                dest.mkdir(parents=True, exist_ok=True)
                for m in matches:
                    shutil.copy2(m, dest / m.name)
            found = sorted(dest.glob(Path(member).name))
        deb.unlink()
        rel = found[-1].relative_to(store)
        chosen.write_text(json.dumps({"package": package, "file": str(rel)}) + "\n")
        return store / rel


def rngprobe() -> Path:
    """The static probe, compiled once per source and compiler."""
    src = BOOTFILES / "rngprobe.c"
    cc = os.environ.get("CC", "gcc").split()
    if shutil.which(cc[0]) is None:
        raise BootError(f"no C compiler ({cc[0]}) for the static probe: "
                        "apt-get install build-essential")
    version = subprocess.run([*cc, "--version"], capture_output=True,
                             text=True).stdout.splitlines()[:1]
    key = hashlib.sha256(src.read_bytes() + "".join(version).encode()).hexdigest()
    out = boot_cache() / "rngprobe" / key[:16] / "rngprobe"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".rngprobe.{os.getpid()}")
    proc = subprocess.run([*cc, "-static", "-O2", "-Wall", "-o", str(tmp), str(src)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise BootError(f"compiling {src.name} failed (static libc: libc6-dev):\n"
                        f"{proc.stderr}")
    os.replace(tmp, out)
    return out


# -- the initramfs (build/, keyed by its inputs) ------------------------------

def initramfs_for(install: Path, busybox: Path, probe: Path, log: Log = print) -> Path:
    """The initramfs of one installed interpreter; rebuilt when an input changed."""
    python = install / "bin" / "python3"
    entries = [
        initramfs.data_entry("init", (BOOTFILES / "init").read_bytes(), 0o755),
        initramfs.file_entry("bin/busybox", busybox, 0o755),
        initramfs.char_device("dev/console", 5, 1),
        initramfs.file_entry("pep522/rngprobe", probe, 0o755),
        initramfs.data_entry("pep522/urandom_check.py",
                             (BOOTFILES / "urandom_check.py").read_bytes()),
        *initramfs.interpreter_entries(install),
    ]
    binaries = [python] + [e.source for e in entries
                           if e.source and e.path.endswith(".so")]
    strace = shutil.which("strace")
    if strace:
        entries.append(initramfs.file_entry("usr/bin/strace", Path(strace), 0o755))
        binaries.append(Path(strace))
    entries += initramfs.shared_libraries(binaries)
    key = initramfs.manifest_key(entries, RECIPE)
    out = paths.BUILD / "boot" / f"initramfs-{install.name}.cpio.gz"
    stamp = out.with_name(out.name + ".key")
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == key:
        log(f"initramfs: up to date: {shown(out)}")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    initramfs.write_cpio(entries, out)
    stamp.write_text(key + "\n")
    log(f"initramfs: {len(entries)} files, {out.stat().st_size / 1e6:.1f} MB, "
        f"written in {time.monotonic() - started:.1f} s: "
        f"{shown(out)}")
    return out


# -- QEMU -------------------------------------------------------------------

def qemu_version() -> str:
    out = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout
    return (out.splitlines() or ["?"])[0]


def _kvm_memo() -> Path:
    return boot_cache() / "kvm-hung.json"


def _host_id() -> str:
    return f"{os.uname().release} {qemu_version()}"


def accelerators(choice: str) -> list[str]:
    """Accelerators to try in order. KVM only where /dev/kvm is usable and it
    has not hung before on this host kernel and QEMU."""
    if choice != "auto":
        return [choice]
    usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    try:
        hung = json.loads(_kvm_memo().read_text()).get("host") == _host_id()
    except (OSError, ValueError):
        hung = False
    return ["kvm", "tcg"] if usable and not hung else ["tcg"]


def qemu_command(kernel: Path, initrd: Path, accel: str, rng_ready: bool) -> list[str]:
    append = READY_APPEND if rng_ready else APPEND
    return [QEMU, "-accel", accel, "-cpu", READY_CPU if rng_ready else CPU,
            "-m", MEMORY, "-smp", "1", "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", " ".join(append)]


def run_qemu(cmd: list[str], console: Path, time_limit: float,
             liveness: float | None) -> tuple[str, str]:
    """Run QEMU, copying its serial console to ``console``.

    Returns (console text, end): "exited", "time limit", or "silent" when
    /init did not speak within ``liveness`` seconds.
    """
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    chunks: list[bytes] = []
    spoke = liveness is None
    end = "exited"
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    with console.open("wb") as log:
        try:
            while True:
                elapsed = time.monotonic() - started
                if not spoke and liveness is not None and elapsed > liveness:
                    end = "silent"
                    break
                if elapsed > time_limit:
                    end = "time limit"
                    break
                if not sel.select(timeout=0.5):
                    continue
                data = os.read(proc.stdout.fileno(), 65536)
                if not data:
                    break
                tail = chunks[-1][-len(MARK):] if chunks else b""
                spoke = spoke or MARK.encode() in tail + data
                chunks.append(data)
                log.write(data)
                log.flush()
        finally:
            sel.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
    return b"".join(chunks).decode(errors="replace"), end


# -- the console, parsed and judged ------------------------------------------

_RECORD = re.compile(re.escape(MARK) + r" (\S+) ?(.*?)\r?$")
_KTIME = re.compile(r"\[\s*(\d+\.\d+)\]")


def parse_console(text: str) -> dict:
    """The ``@@PEP522`` records of a console log, grouped by kind and label."""
    facts: dict = {"begin": None, "end": False, "inconclusive_said": False,
                   "probe": {}, "run": {}, "urandom": {}, "stderr": {},
                   "trace": {}, "klog": []}
    for line in text.splitlines():
        at = line.find(MARK + " ")
        if at < 0:
            continue
        m = _RECORD.match(line[at:].rstrip("\r"))
        if not m:
            continue
        kind, rest = m.groups()
        if kind == "begin":
            facts["begin"] = rest.strip()
        elif kind == "end":
            facts["end"] = True
        elif kind == "inconclusive":
            facts["inconclusive_said"] = True
        elif kind in ("probe", "run", "urandom"):
            try:
                rec = json.loads(rest)
            except ValueError:
                continue
            facts[kind][rec.get("label", "?")] = rec
        elif kind in ("stderr", "trace"):
            label, _, content = rest.partition(" ")
            facts[kind].setdefault(label, []).append(content)
        elif kind == "klog":
            facts["klog"].append(rest.partition(" ")[2])
    return facts


def _urandom_text(rec: dict) -> str:
    if rec.get("outcome") == "ok":
        secs = rec.get("seconds", 0)
        return "ok" if secs < 0.05 else f"ok after {secs:.1f} s"
    if rec.get("outcome") == "BlockingIOError" and rec.get("errno") == EAGAIN:
        return "raises EAGAIN"
    return f"raises {rec.get('outcome')}" if rec else "missing"


def summarize(facts: dict) -> dict:
    """Flat result fields (the JSON's body) from parsed facts."""
    probe, run, urandom = facts["probe"], facts["run"], facts["urandom"]
    first, after = urandom.get("first", {}), urandom.get("after", {})
    stderr = facts["stderr"]
    trace = facts["trace"].get("first")
    wait = run.get("wait", {})
    wait_err = stderr.get("wait", [])
    opens = None if trace is None else sum(
        1 for t in trace if re.search(r'open(at)?\(.*"/dev/urandom"', t))
    warnings = [s for s in stderr.get("first", []) if WARNING_MARK in s.lower()]
    crng = None
    for line in facts["klog"]:
        m = _KTIME.search(line)
        if m and "crng init done" in line:
            crng = float(m.group(1))
    during = None
    if crng is not None:
        for label, rec in run.items():
            if rec.get("start", 1e9) <= crng <= rec.get("end", -1):
                during = {"run": label, "after_start": round(crng - rec["start"], 3)}
    if crng is not None and during is None and "boot" in probe \
            and crng <= probe["boot"].get("t", 0):
        during = {"run": "before /init", "after_start": None}
    absent = any("AttributeError" in s for s in wait_err)
    result = {
        "kernel_release": facts["begin"],
        "reached_init": facts["begin"] is not None,
        "finished": facts["end"],
        "rng_at_init": probe.get("boot", {}).get("state"),
        "init_seconds": probe.get("boot", {}).get("t"),
        "startup_warning": bool(warnings),
        "startup_warning_text": warnings[0] if warnings else None,
        "startup_stderr": stderr.get("first", []),
        "startup_dev_urandom_opens": opens,
        "startup_getrandom": None if trace is None else [t for t in trace if "getrandom" in t],
        "urandom_before_ready": first.get("outcome"),
        "urandom_before_ready_errno": first.get("errno"),
        "urandom_before_ready_message": first.get("message"),
        "urandom_before_ready_seconds": first.get("seconds"),
        "first_process_seconds": run.get("first", {}).get("seconds"),
        "rng_after_startup": probe.get("after-first", {}).get("state"),
        "wait_exit": wait.get("exit"),
        "wait_seconds": wait.get("seconds"),
        "wait_timed_out": wait.get("timed_out"),
        "wait_stderr": wait_err,
        "rng_after_wait": probe.get("after-wait", {}).get("state"),
        "urandom_after_ready": after.get("outcome"),
        "urandom_after_ready_seconds": after.get("seconds"),
        "ready_process_seconds": run.get("after", {}).get("seconds"),
        "crng_init_done": crng,
        "crng_init_done_during": during,
        "kernel_random_log": facts["klog"],
    }
    # the rows of the fake launcher's behaviour table, in its words
    result["behaviour"] = {
        "os.urandom": _urandom_text(first),
        "wait_for_system_rng": "absent" if absent else (
            "missing" if not wait else
            f"ok after {wait['seconds']:.1f} s" if wait.get("exit") == 0
            else f"error: exit {wait.get('exit')}"),
        "start-up warning": "warns" if warnings else "silent",
        "/dev/urandom opens": "unknown" if opens is None else str(opens),
    }
    return result


def _agrees(got: object, want: object) -> bool:
    if isinstance(want, AtLeast):
        return isinstance(got, int) and got >= want.n
    return got == want


def judge(result: dict, variant: str) -> tuple[str, list[str]]:
    """("pass" | "fail" | "inconclusive" | "error", reasons)."""
    if not result["reached_init"]:
        return "error", ["/init never spoke: the boot failed (see the console log)"]
    if result["rng_at_init"] != "not-ready":
        return "inconclusive", [f"the RNG was {result['rng_at_init'] or 'unknown'} "
                                "at /init, before any interpreter ran: nothing "
                                "here tests the not-ready case"]
    failures = []
    for field, want in EXPECTED[variant].items():
        got = result.get(field)
        if field == "startup_dev_urandom_opens" and got is None:
            continue   # no strace on this host: the row is "unknown", not failed
        if not _agrees(got, want):
            shown = f">= {want.n}" if isinstance(want, AtLeast) else repr(want)
            failures.append(f"{field}: got {got!r}, want {shown}")
    if not result["finished"]:
        failures.append("/init did not finish (no end record): killed or crashed")
    return ("fail" if failures else "pass"), failures


def _coarse(row: str, text: str) -> str:
    """A behaviour cell without its timing: what happened, not how fast."""
    if row == "/dev/urandom opens" and text.isdigit():
        return "none" if text == "0" else "some"
    return text.split(" after ")[0]


def compare_with_fake(result: dict, table: dict, mode: str = "ready-on-wait") -> dict:
    """The boot's behaviour rows beside the fake launcher's column for the
    same version and variant (the behaviour table's JSON): {row: {boot, fake,
    agree}}; agree is None where either side could not tell."""
    column = next((c["cells"] for c in table.get("columns", [])
                   if (c.get("version"), c.get("mode"), c.get("variant"))
                   == (result["version"], mode, result["variant"])), None)
    if column is None:
        return {}
    rows = {}
    for row, mine in result["behaviour"].items():
        fake = column.get(row, {}).get("text")
        agree = None
        if fake is not None and "unknown" not in (fake, mine):
            agree = _coarse(row, mine) == _coarse(row, fake)
        rows[row] = {"boot": mine, "fake": fake, "agree": agree}
    return rows


# -- one boot, and the command line -------------------------------------------

@dataclass(frozen=True)
class Inputs:
    kernel: Path
    kernel_package: str | None
    busybox: Path
    probe: Path


def prepare(kernel: Path | None, refresh: bool, log: Log = print) -> Inputs:
    for tool in (QEMU, "dpkg-deb", "apt-get", "ldd"):
        if shutil.which(tool) is None:
            raise BootError(f"{tool} is not installed (Debian: apt-get install "
                            "qemu-system-x86 dpkg apt libc-bin)")
    deb = Debian(log)
    package = None
    if kernel is None:
        kernel = deb.unpacked("kernel", KERNEL_META, "boot/vmlinuz-*", refresh)
        package = kernel.parent.name.split("_")[0]
    elif not kernel.is_file():
        raise BootError(f"--kernel {kernel}: no such file")
    busybox = deb.unpacked("busybox", BUSYBOX_PACKAGE, "bin/busybox", refresh)
    return Inputs(kernel, package, busybox, rngprobe())


def shown(path: Path) -> str:
    """A path as the project names it: relative to the checkout when inside."""
    try:
        return str(path.relative_to(paths.REPO))
    except ValueError:
        return path.name


def out_path(version: str, variant: str, rng_ready: bool, suffix: str) -> Path:
    """build/out/boot-VERSION-VARIANT[-rng-ready]SUFFIX"""
    ready = "-rng-ready" if rng_ready else ""
    return paths.OUT / f"boot-{version}-{variant}{ready}{suffix}"


def boot(version: str, variant: str, inputs: Inputs, *, accel: str = "auto",
         rng_ready: bool = False, time_limit: float = TIME_LIMIT,
         log: Log = print) -> dict:
    """Boot once; returns the result written to build/out/boot-*.json."""
    python = build.build(version, variant, quiet=True)
    initrd = initramfs_for(python.parent.parent, inputs.busybox, inputs.probe, log)
    console = out_path(version, variant, rng_ready, ".console.log")
    console.parent.mkdir(parents=True, exist_ok=True)
    tried = []
    for acc in accelerators(accel):
        cmd = qemu_command(inputs.kernel, initrd, acc, rng_ready)
        log(f"boot: CPython {version} {variant}: {QEMU} -accel {acc} -cpu {cmd[4]}")
        started = time.monotonic()
        text, end = run_qemu(cmd, console, time_limit,
                             KVM_LIVENESS if acc == "kvm" and accel == "auto" else None)
        wall = time.monotonic() - started
        tried.append({"accel": acc, "end": end, "wall_seconds": round(wall, 1)})
        if end == "silent":
            kept = out_path(version, variant, rng_ready, "-kvm-silent.console.log")
            console.replace(kept)
            log(f"boot: KVM reached no /init in {KVM_LIVENESS:.0f} s (console: "
                f"{shown(kept)}): falling back to TCG, and to TCG only from now "
                "on with this host kernel and QEMU (user cache: boot/kvm-hung.json)")
            _kvm_memo().write_text(json.dumps({"host": _host_id()}) + "\n")
            continue
        break
    result = {"version": version, "variant": variant, "rng_ready_requested": rng_ready,
              "kernel": {"file": inputs.kernel.name, "package": inputs.kernel_package},
              "qemu": {"accel": tried[-1]["accel"], "cpu": cmd[4],
                       "append": cmd[-1], "version": qemu_version(), "tried": tried},
              "end": end, "wall_seconds": tried[-1]["wall_seconds"]}
    result.update(summarize(parse_console(text)))
    status, reasons = judge(result, variant)
    if end == "time limit":
        reasons.append(f"hard time limit of {time_limit:.0f} s reached")
        status = "error" if status == "pass" else status
    result["status"], result["failures"] = status, reasons
    table = paths.OUT / "behaviour.json"   # the fake launcher's, when made
    stamp = python.parent.parent / build.STAMP
    if table.is_file() and stamp.is_file() \
            and table.stat().st_mtime >= stamp.stat().st_mtime:
        try:
            result["fake_ready_on_wait"] = compare_with_fake(
                result, json.loads(table.read_text()))
        except (OSError, ValueError, KeyError):
            pass
    result["console"] = shown(console)
    tables.write_json(out_path(version, variant, rng_ready, ".json"), result)
    return result


def _during(r: dict) -> str:
    d = r.get("crng_init_done_during")
    if not d:
        return ""
    if d["after_start"] is None:
        return f" ({d['run']})"
    return f" ({d['after_start']} s into the '{d['run']}' run)"


def describe(r: dict) -> str:
    b = r["behaviour"]
    lines = [f"CPython {r['version']} {r['variant']}: {r['status'].upper()} "
             f"({r['qemu']['accel']}, -cpu {r['qemu']['cpu']}, "
             f"kernel {r['kernel_release']}, wall {r['wall_seconds']} s)",
             f"  RNG at /init ({r['init_seconds']} s): {r['rng_at_init']}",
             f"  start-up: {b['start-up warning']}, /dev/urandom opens "
             f"{b['/dev/urandom opens']}; os.urandom(16): {b['os.urandom']}; "
             f"RNG after: {r['rng_after_startup']}",
             f"  wait_for_system_rng: {b['wait_for_system_rng']}; RNG after: "
             f"{r['rng_after_wait']}; os.urandom(16) then: {r['urandom_after_ready']}",
             f"  kernel 'crng init done' at {r['crng_init_done']} s{_during(r)}"]
    fake = r.get("fake_ready_on_wait") or {}
    if fake:
        lines.append("  fake launcher, ready-on-wait column: " + "; ".join(
            f"{row} {'agrees' if v['agree'] else 'differs' if v['agree'] is False else '?'}"
            f" ({v['fake']})" for row, v in fake.items()))
    lines += [f"  ! {f}" for f in r["failures"]]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nox -s boot --", description=__doc__.split("\n")[0])
    options.cpython(p, many=True)
    options.variant(p, many=True)
    p.add_argument("--kernel", type=Path, metavar="PATH",
                   help=f"boot this vmlinuz instead of Debian {versions.boot_suite()}'s "
                        f"{KERNEL_META}")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="auto: KVM if usable and it reaches /init in time, else TCG")
    p.add_argument("--rng-ready", action="store_true",
                   help=f"-cpu {READY_CPU} and random.trust_cpu=on: the RNG is ready "
                        "at /init, so the result must be inconclusive")
    p.add_argument("--refresh", action="store_true",
                   help="look the kernel and busybox packages up again")
    p.add_argument("--time-limit", type=float, default=TIME_LIMIT, metavar="SECONDS",
                   help=f"hard limit per boot (default {TIME_LIMIT:.0f})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()
    inputs = prepare(args.kernel, args.refresh)
    results = []
    for version in args.cpython:
        for variant in args.variant:
            r = boot(version, variant, inputs, accel=args.accel,
                     rng_ready=args.rng_ready, time_limit=args.time_limit)
            print(describe(r), flush=True)
            results.append(r)
    total = time.monotonic() - started
    print(f"boot: {len(results)} boot(s) in {total:.1f} s wall; results: "
          + ", ".join(out_path(r["version"], r["variant"], args.rng_ready, ".json").name
                      for r in results)
          + f" in {shown(paths.OUT)}/")
    statuses = {r["status"] for r in results}
    if args.rng_ready:   # the guard is what is shown: anything else is wrong
        return 0 if statuses == {"inconclusive"} else 1
    if statuses == {"pass"}:
        return 0
    return 3 if statuses <= {"pass", "inconclusive"} else 1
