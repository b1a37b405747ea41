"""Running the real ``riskengine`` command line from tests, and reading its one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
