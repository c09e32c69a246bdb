"""Progress of long work: plain lines where the output is not a terminal, a
live line where it is; make's objects counted from its output, regrtest's
modules from its log."""

from __future__ import annotations

import io
import threading
import time

from pep522_harness.core import build, progress
from pep522_harness.studies import regrtest


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_at_each_tenth_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    with progress.Progress("compiling", 40, "objects", note="log: x.log", stream=out,
                           clock=clock) as bar:
        for _ in range(40):
            clock.now += 3
            bar.advance()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert lines[0] == "compiling: 0/40 objects (0%), 0:00 elapsed; log: x.log"
    assert [line.split()[1] for line in lines] == [f"{n}/40" for n in range(0, 41, 4)]
    assert lines[-1] == "compiling: 40/40 objects (100%), 2:00 elapsed; log: x.log"


def test_plain_line_after_a_minute_without_one():
    out, clock = io.StringIO(), Clock()
    with progress.Progress("regrtest", 1000, "modules", stream=out, clock=clock) as bar:
        bar.advance(current="test_os")
        clock.now += 30
        bar.tick()                       # 30 s: nothing to say yet
        clock.now += 31
        bar.tick()                       # over a minute: where it is
    lines = out.getvalue().splitlines()
    assert lines == ["regrtest: 0/1000 modules (0%), 0:00 elapsed",
                     "regrtest: 1/1000 modules (0%), 1:01 elapsed, test_os"]


def test_live_line_is_redrawn_in_place():
    out, clock = Terminal(), Clock()
    with progress.Progress("impact", 4, "suite runs", stream=out, clock=clock) as bar:
        for run in ("a", "b"):
            clock.now += 1
            bar.advance(current=run)
        bar.note("  a message of its own")
        clock.now += 1
        bar.advance(2, current="d")
    text = out.getvalue()
    assert text.startswith("\rimpact: 0/4 suite runs (0%), 0:00 elapsed\x1b[K")
    assert "\rimpact: 2/4 suite runs (50%), 0:02 elapsed, b\x1b[K" in text
    assert "\r\x1b[K  a message of its own\n\rimpact: 2/4" in text
    assert text.endswith("\rimpact: 4/4 suite runs (100%), 0:03 elapsed, d\x1b[K\n")
    assert text.count("\n") == 2           # the message and the end


def test_more_than_foreseen_drops_the_total():
    out = io.StringIO()
    with progress.Progress("compiling", 2, "objects", stream=out) as bar:
        bar.advance(3)
    assert out.getvalue().splitlines()[-1].startswith("compiling: 3 objects, ")


def test_follow_reads_lines_as_they_are_written(tmp_path):
    log = tmp_path / "log"
    log.write_text("written before\n")
    seen: list[str] = []
    with progress.follow(log, seen.append, every=0.01):
        with log.open("a") as f:
            f.write("one\ntw")
            f.flush()
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                time.sleep(0.01)
            assert seen == ["one"]       # read while it is written; half a line waits
            f.write("o\nthree")
    assert seen == ["one", "two", "three"]


def test_make_shows_objects_compiled_out_of_the_total(tmp_path, capsys):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.c").write_text(f"int {name}(void) {{ return 1; }}\n")
    (tmp_path / "Makefile").write_text(
        "all: a.o b.o c.o\n"
        "%.o: %.c\n"
        "\tsleep 0.3; $(CC) -c $< -o $@\n")
    step = build.Step(tmp_path / "logs" / "cpython-test.log")
    env = build.build_env()
    assert build.objects_to_compile(tmp_path, env) == 3
    build.compile_objects(step, tmp_path, env, jobs=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("compiling: 0/3 objects (0%), 0:00 elapsed; log: ")
    assert out[0].endswith("logs/cpython-test.log")
    assert [line.split()[1] for line in out] == ["0/3", "1/3", "2/3", "3/3"]
    assert build.objects_to_compile(tmp_path, env) is None     # nothing left to do


def test_regrtest_progress_counts_each_module_once(tmp_path, capsys):
    log = tmp_path / "regrtest.log"
    log.write_text("")
    lines = ["0:00:00 load avg: 1.95 Run 3 tests in parallel using 2 worker processes",
             "0:00:01 load avg: 1.95 [1/3] test_secrets passed",
             "0:00:31 load avg: 2.01 running (1): test_os (30.2 sec)",
             "0:00:40 load avg: 2.01 [2/3/1] test_os failed (1 failure)",
             "0:00:41 load avg: 2.01 [  3/3/1] test_random passed",
             "0:00:42 load avg: 2.01 Re-running 1 failed tests in verbose mode",
             "0:00:43 load avg: 2.01 [1/1/1] test_os failed (1 failure)"]

    def write() -> None:
        with log.open("a") as f:
            for line in lines:
                f.write(line + "\n")
                f.flush()
                time.sleep(0.05)

    with regrtest._shown(True, log, 3, "regrtest 3.13.5 pep522 never-ready"):
        writer = threading.Thread(target=write)
        writer.start()
        writer.join()
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[4] for line in out] == ["0/3", "1/3", "2/3", "3/3"]
    assert out[-1].split(", ")[2:] == ["test_random; log: " + str(log)]


def test_no_progress_when_not_asked(tmp_path, capsys):
    log = tmp_path / "regrtest.log"
    log.write_text("")
    with regrtest._shown(False, log, 3, "regrtest"):
        log.write_text("0:00:01 load avg: 1.95 [1/3] test_secrets passed\n")
    assert capsys.readouterr().out == ""
