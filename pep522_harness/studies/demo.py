"""The main job's closing demonstration: stock and patched side by side
while the kernel RNG is faked as not ready.

    python -m pep522_harness demo [--cpython VERSION]
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass

from pep522_harness.core import build, options, process
from pep522_harness.core.versions import VARIANTS
from pep522_harness.fake import modes

URANDOM = ("import os\n"
           "try:\n"
           "    print('os.urandom(16) ->', os.urandom(16).hex())\n"
           "except BlockingIOError as exc:\n"
           "    print('os.urandom(16) -> BlockingIOError:', exc)\n")
SECRETS = ("import os, secrets, time\n"
           "t = time.monotonic()\n"
           "secrets.token_bytes(32)\n"
           "print(f'secrets.token_bytes(32) -> 32 bytes after "
           "{time.monotonic() - t:.2f} s')\n"
           "print('then os.urandom(16) ->', os.urandom(16).hex())\n")


@dataclass(frozen=True)
class Scene:
    title: str
    mode: str
    code: str
    env: tuple[tuple[str, str], ...] = ()


SCENES = (
    Scene("RNG never ready: start-up and os.urandom() (stock blocks for ever: "
          f"stopped after {modes.HOLD_LIMIT:g} s)", "never-ready", URANDOM),
    Scene("RNG ready 0.3 s after someone waits: secrets", "ready-on-wait=0.3", SECRETS),
    Scene("The same, os.urandom() in a process started with PYTHONURANDOM=wait "
          "(a distribution's switch)", "ready-on-wait=0.3", URANDOM,
          (("PYTHONURANDOM", "wait"),)),
)


def run_scene(python: str, scene: Scene) -> str:
    run = modes.run(scene.mode, [python, "-c", scene.code], timeout=60,
                    env=process.clean_env(dict(scene.env)))
    out = (run.stderr + run.stdout).strip()
    if run.blocked:
        # faulthandler's stack is for the tables; say it in one line here
        out = out.split("Fatal Python error")[0].strip()
        out += f"\n(blocked in getrandom() at {(run.frame or '?').rsplit('/', 1)[-1]}, stopped after " \
               f"{modes.HOLD_LIMIT:g} s)"
    return out.strip() or f"(exit {run.returncode}, no output)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nox -s demo --")
    options.cpython(p)
    args = p.parse_args(argv)
    pythons = {v: str(build.build(args.cpython, v, quiet=True)) for v in VARIANTS}
    for scene in SCENES:
        print(f"\n== {scene.title}  (fakerng {scene.mode})")
        for variant, python in pythons.items():
            print(f"-- CPython {args.cpython} {variant}:")
            print(textwrap.indent(run_scene(python, scene), "   "))
    return 0
