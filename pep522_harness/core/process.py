"""Running a command the way the harness runs programs: the environment it
gets, and what happens when its time is up."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import IO


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a program under study: nothing of the user's
    Python, pip or virtual environment settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(extra or {})
    return env


def text(output: str | bytes | None) -> str:
    """Output as text, whatever subprocess handed over."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _defaults() -> None:
    for signo in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(signo, signal.SIG_DFL)


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float | None = None,
        output: IO[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with stdin from /dev/null; its output is captured as text,
    or both streams go to ``output``.

    Without a timeout it stays in the caller's session (a long run that the
    terminal's ^C reaches).  With one it runs in a session of its own, with
    ^C and the like at their defaults, and when the time is up the whole
    process group is killed (strace would otherwise leave its tracees
    running) and TimeoutExpired raised with what it printed.
    """
    streams = ({"stdout": output, "stderr": subprocess.STDOUT} if output is not None
               else {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE})
    if timeout is None:
        return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, text=True,
                              **streams)
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, text=True,
                          start_new_session=True, preexec_fn=_defaults,
                          **streams) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
