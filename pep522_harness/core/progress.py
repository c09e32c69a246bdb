"""How far long work has got: one line, live on a terminal, plain elsewhere.

    with Progress("compiling", 801, "objects", note="log: build/logs/x.log") as bar:
        bar.advance()                 # one more done
        bar.note("a line of its own")

On a terminal the line is redrawn in place: at most five times a second,
and every second while nothing advances, so that its clock moves.
Anywhere else (a CI log, a pipe) it is printed as plain lines: when one
more tenth of the total is done, after a minute without a line, and at the
end.  ``follow`` reads a log file as another process writes it, a line at
a time, for work whose progress shows only in its log (make, regrtest).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

LIVE_EVERY = 0.2       # seconds between two redraws of the live line, at least
PLAIN_SILENCE = 60.0   # seconds without a plain line before one is printed anyway

# Where long work reports a line of what it does (print, a Step, a test's list).
Log = Callable[[str], None]


def elapsed(seconds: float) -> str:
    """``4:07``, ``1:02:09``."""
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


class Progress:
    """``what: done/total unit (pct%), m:ss elapsed, current; note``."""

    def __init__(self, what: str, total: int | None, unit: str, *, note: str = "",
                 stream: TextIO | None = None, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.unit, self.note_text = what, total, unit, note
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock
        self.started = self.clock()
        self.done = 0
        self.current = ""
        self._lock = threading.Lock()
        self._drawn_at = float("-inf")
        self._tenth = -1             # the last tenth a plain line was printed for
        self._printed = -1           # and the count it showed
        self._width = 0              # of the live line on the screen
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- the line

    def line(self) -> str:
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        text = f"{self.what}: {count} {self.unit}"
        if self.total:
            text += f" ({100 * self.done // self.total}%)"
        text += f", {elapsed(self.clock() - self.started)} elapsed"
        if self.current:
            text += f", {self.current}"
        return text + (f"; {self.note_text}" if self.note_text else "")

    def _draw(self, *, final: bool = False) -> None:
        now = self.clock()
        if self.live:
            if not final and now - self._drawn_at < LIVE_EVERY:
                return
            text = self.line()
            self.stream.write("\r" + text + "\x1b[K" + ("\n" if final else ""))
            self._width = 0 if final else len(text)
        else:
            tenth = 10 * self.done // self.total if self.total else self._tenth
            if final and self.done == self._printed:
                return                   # the last line said it all
            if not final and tenth == self._tenth and now - self._drawn_at < PLAIN_SILENCE:
                return
            self._tenth, self._printed = tenth, self.done
            self.stream.write(self.line() + "\n")
        self._drawn_at = now
        self.stream.flush()

    # -- what the work tells it

    def advance(self, n: int = 1, current: str | None = None) -> None:
        with self._lock:
            self.done += n
            if self.total and self.done > self.total:
                self.total = None        # more than foreseen: the total is unknown
            if current is not None:
                self.current = current
            self._draw()

    def note(self, message: str) -> None:
        """A line of its own, printed above the live line."""
        with self._lock:
            if self.live and self._width:
                self.stream.write("\r\x1b[K")
            self.stream.write(message + "\n")
            self.stream.flush()
            self._width = 0
            if self.live:
                self._drawn_at = float("-inf")
                self._draw()

    def tick(self) -> None:
        """Redraw if it is time to (the clock moved, nothing advanced)."""
        with self._lock:
            self._draw()

    # -- start and end

    def __enter__(self) -> Progress:
        with self._lock:
            self._draw()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._draw(final=True)

    def _tick(self) -> None:
        while not self._stop.wait(1.0 if self.live else PLAIN_SILENCE / 4):
            self.tick()


@contextlib.contextmanager
def follow(path: Path, on_line: Callable[[str], None],
           every: float = 0.2) -> Iterator[None]:
    """Call ``on_line`` for each line written to ``path`` from now on, until
    the block ends (and then for what is left, the last line too)."""
    start = path.stat().st_size if path.exists() else 0
    pending = b""                  # the start of a line not yet ended
    stop = threading.Event()

    def read(final: bool) -> None:
        nonlocal start, pending
        try:
            with path.open("rb") as f:
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return
        start += len(data)
        pending += data
        *lines, pending = pending.split(b"\n")
        if final and pending:
            lines, pending = [*lines, pending], b""
        for raw in lines:
            on_line(raw.decode(errors="replace"))

    def loop() -> None:
        while not stop.wait(every):
            read(False)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        read(True)
