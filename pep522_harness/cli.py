"""Command line of the harness: ``python -m pep522_harness COMMAND``.

The nox sessions call these same entry points; the noxfile holds no logic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import apply, build, fetch, paths
from .versions import DEFAULT_VERSION, VARIANTS, UnknownVersion, release


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpython", default=DEFAULT_VERSION, metavar="VERSION",
                   help=f"CPython release (default {DEFAULT_VERSION})")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--tarball", type=Path, metavar="PATH",
                     help="use this release tarball (checked against the pin)")
    src.add_argument("--source", type=Path, metavar="DIR",
                     help="use this CPython checkout of the same release")


def fetch_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nox -s fetch --")
    _common(p)
    return p


def apply_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nox -s apply --")
    _common(p)
    p.add_argument("--variant", default="pep522", choices=VARIANTS)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="fresh tree to create (default build/tree/.../src)")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nox -s build --")
    _common(p)
    p.add_argument("--variant", default="pep522", choices=VARIANTS)
    p.add_argument("--sanitizer", choices=sorted(build.SANITIZERS))
    p.add_argument("--jobs", type=int, help="make -j (default: all cores)")
    return p


def cmd_fetch(argv: list[str]) -> int:
    args = fetch_parser().parse_args(argv)
    got = fetch.fetch(release(args.cpython), tarball=args.tarball, source=args.source)
    print(f"{got.path or got.source_dir} ({got.origin})")
    return 0


def cmd_apply(argv: list[str]) -> int:
    args = apply_parser().parse_args(argv)
    rel = release(args.cpython)
    got = fetch.fetch(rel, tarball=args.tarball, source=args.source)
    if args.out:
        if args.out.exists():
            raise apply.ApplyError(f"--out {args.out} exists; give a new folder")
        apply.make_tree(got, args.variant, args.out)
        print(args.out)
        return 0
    src = paths.tree_dir(rel.version, args.variant) / "src"
    changed = apply.prepare(got, args.variant, src)
    print(f"{src} ({changed} files changed)")
    return 0


def cmd_build(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    python = build.build(args.cpython, args.variant, sanitizer=args.sanitizer,
                         tarball=args.tarball, source=args.source, jobs=args.jobs)
    print(python)
    return 0


COMMANDS = {"fetch": cmd_fetch, "apply": cmd_apply, "build": cmd_build}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m pep522_harness {{{','.join(COMMANDS)}}} [options]",
              file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (fetch.FetchError, apply.ApplyError, build.BuildError, UnknownVersion) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
