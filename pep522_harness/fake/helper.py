"""The patch set's own test support, ``Lib/test/support/seccomp_helper.py``,
loaded by path.

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

HELPER_PATH = REPO / "Lib" / "test" / "support" / "seccomp_helper.py"


@cache
def helper() -> ModuleType:
    """The in-tree ``seccomp_helper`` module, imported from its file."""
    name = "pep522_harness._seccomp_helper"
    spec = importlib.util.spec_from_file_location(name, HELPER_PATH)
    if spec is None or spec.loader is None:
        raise HarnessError(f"cannot load {HELPER_PATH.relative_to(REPO)}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
