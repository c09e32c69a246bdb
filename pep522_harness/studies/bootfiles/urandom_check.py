"""Boot check: one ``os.urandom(16)`` call, reported as a console record.

Run inside the guest as ``python3 urandom_check.py LABEL``; prints
``@@PEP522 urandom {json}`` with what the call did and how long it took
(CLOCK_MONOTONIC seconds, the clock of the kernel log).
"""

import json
import os
import sys
import time

label = sys.argv[1] if len(sys.argv) > 1 else "urandom"
start = time.monotonic()
try:
    data = os.urandom(16)
except OSError as exc:
    record = {"outcome": type(exc).__name__, "errno": exc.errno, "message": str(exc)}
else:
    record = {"outcome": "ok", "length": len(data)}
end = time.monotonic()
record.update(label=label, start=round(start, 3), seconds=round(end - start, 3))
print("@@PEP522 urandom", json.dumps(record), flush=True)
