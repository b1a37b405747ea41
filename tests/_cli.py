"""Running the real ``riskengine`` command line from tests, and reading its one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """``python -m riskengine.cli ARGS`` in a child process, output captured as text."""
    return subprocess.run([sys.executable, "-m", "riskengine.cli", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def one_error_line(proc: subprocess.CompletedProcess, progress_first: bool = True) -> str:
    """The error line of a refused command: exit status 2, no traceback, one ``riskengine:
    error:`` line, last on stderr (``progress_first``: progress lines may come before it, when
    the problem showed while running; otherwise it is the only line)."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    if progress_first:
        assert [line for line in lines if "error" in line] == lines[-1:], proc.stderr
    else:
        assert len(lines) == 1, proc.stderr
    assert lines[-1].startswith("riskengine: error:"), proc.stderr
    return lines[-1]


def write(folder: Path, text: str, name: str) -> Path:
    """A config file ``name`` with ``text`` in ``folder``."""
    path = folder / name
    path.write_text(text)
    return path


def run_in_terminal(*args: str, timeout: float = 300, command: list[str] | None = None) -> tuple[int, str, str]:
    """``python -m riskengine.cli ARGS`` (or ``command``) with stderr on a pseudo-terminal
    (120 x 40) and stdout on a pipe, as in an interactive shell whose output is redirected:
    (exit status, stdout, everything written to the terminal, escape sequences included)."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    import time

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    child_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    with subprocess.Popen(command or [sys.executable, "-m", "riskengine.cli", *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=follower, env=child_env) as proc:
        os.close(follower)
        chunks, out = [], []
        deadline = time.monotonic() + timeout
        streams = [leader, proc.stdout.fileno()]
        while streams:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"{command or args}: still running after {timeout} s")
            for fd in select.select(streams, [], [], 1.0)[0]:
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:  # the terminal's last writer exited
                    data = b""
                if not data:
                    streams.remove(fd)
                else:
                    (chunks if fd == leader else out).append(data)
        code = proc.wait(timeout)
    os.close(leader)
    return code, b"".join(out).decode(), b"".join(chunks).decode(errors="replace")


def raised_line(call, *args, **kwargs) -> str:
    """The message of the ``ValueError`` that ``call`` raises; it must be one line."""
    with pytest.raises(ValueError) as info:
        call(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg
