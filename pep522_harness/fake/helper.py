"""The patch set's own test support, ``Lib/test/support/seccomp_helper.py``
and ``rng_helper.py``, loaded by path.

Its filters, its mode table, the seccomp user-notification protocol and the
readiness of a fake kernel serve CPython's in-tree tests and this harness
alike, so both fake the same kernel.  The harness adds what a launcher of
whole programs needs: signals, logs and bounds (``launcher.py``,
``supervisor.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from types import ModuleType

from pep522_harness.core.errors import HarnessError
from pep522_harness.core.paths import REPO

SUPPORT = REPO / "Lib" / "test" / "support"
HELPER_PATH = SUPPORT / "seccomp_helper.py"


def _load(name: str) -> ModuleType:
    """A module of the patch set's test support, imported from its file."""
    path = SUPPORT / f"{name}.py"
    qualified = f"pep522_harness._{name}"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise HarnessError(f"cannot load {path.relative_to(REPO)}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


@cache
def helper() -> ModuleType:
    """The in-tree ``seccomp_helper`` module: the fake kernel."""
    return _load("seccomp_helper")


@cache
def rng_helper() -> ModuleType:
    """The in-tree ``rng_helper`` module: the in-process stand-in, and the
    programs the in-tree tests run (a pre-fork server)."""
    return _load("rng_helper")
