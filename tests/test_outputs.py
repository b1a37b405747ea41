"""Output folders of ``riskengine run`` and ``riskengine sweep``: refused before any work when
they cannot be written or are a file, one writer per folder (a lock that a killed run does not
leave held), a default folder per run, and Ctrl-C at any moment ending in one line.

Every test runs the real command line in child processes (``python -m riskengine.cli``, and
the installed ``riskengine`` script where the test is about how the process starts).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from _cli import one_error_line, run_cli, write

from riskengine import backtest, sweep

#: the embedded default, small: about a second, most of it imports
SMALL = ("--ticks", "2000", "--accounts", "500")
#: the embedded default on the reference engine: several seconds of running
SLOW = ("--ticks", "25000", "--accounts", "2000", "--engine", "reference")
#: a folder under /proc: no one, root included, can create it
PROC_OUT = "/proc/riskengine-no-such-folder/out"

SWEEP = """
[scenario]
name = "syn"
synthetic = { ticks = 20_000, seed = 7 }

[population]
accounts = 200_000  # a run takes about 0.3 s (the population), so a sweep lasts seconds
seed = 8

[[venues]]
preset = "hyperliquid"

[sweep]
grid = { "population.seed" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }
"""


#: what runs a child without the power to write where permission bits forbid: nothing for a
#: user; for root, setpriv without the capabilities that override them (CAP_DAC_OVERRIDE,
#: CAP_DAC_READ_SEARCH), so that a 0o555 folder is read-only for the child as for anyone
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def _cli(prefix: list[str], *args: str, **kw) -> subprocess.CompletedProcess:
    """``run_cli``, with the command run through ``prefix``."""
    return subprocess.run([*prefix, sys.executable, "-m", "riskengine.cli", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def _read_only(folder: Path) -> list[str]:
    """Make ``folder`` read-only (mode 0o555) and return the prefix (:data:`UNPRIVILEGED`) under
    which a child cannot write in it; skips when none can be had (root without setpriv)."""
    folder.chmod(0o555)
    try:
        probe = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", "import os, sys; os.mkdir(sys.argv[1])",
                                str(folder / "probe")], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:  # no setpriv
        probe = None
    if probe is None or "PermissionError" not in probe.stderr:
        with contextlib.suppress(OSError):
            (folder / "probe").rmdir()
        folder.chmod(0o755)
        pytest.skip("a child of this root process writes into a 0o555 folder (no setpriv to drop "
                    "CAP_DAC_OVERRIDE); the /proc variants cover unwritable folders")
    return UNPRIVILEGED


@pytest.fixture(params=["proc", "read-only"])
def unwritable(request, tmp_path) -> tuple[Path, str, list[str]]:
    """A folder that cannot be written, the reason a write there fails, and the prefix to run
    the command with."""
    if request.param == "proc":
        return Path("/proc"), "No such file or directory", []
    folder = tmp_path / "read-only"
    folder.mkdir()
    return folder, "Permission denied", _read_only(folder)


def _sweep_config(tmp_path: Path) -> Path:
    return write(tmp_path, SWEEP, "grid.toml")


# ----------------------------------------------------------------- 1: unwritable locations
def test_run_refuses_an_unwritable_out_before_running(unwritable):
    folder, reason, prefix = unwritable
    out = folder / "sub" / "out"
    proc = _cli(prefix, "run", *SMALL, "--out", str(out))
    assert one_error_line(proc, progress_first=False) == (
        f"riskengine: error: {out}: cannot create files in {folder}: {reason} (choose another with --out)")
    assert proc.stdout == ""  # nothing ran


def test_run_refuses_the_default_folder_in_an_unwritable_working_folder(unwritable):
    folder, reason, prefix = unwritable
    proc = _cli(prefix, "run", *SMALL, cwd=folder)
    line = one_error_line(proc, progress_first=False)
    assert re.fullmatch(rf"riskengine: error: results/default-\d{{8}}-\d{{6}}-\d+: cannot create files in "
                        rf"{re.escape(str(folder))}: {reason} \(choose another with --out\)", line), line
    assert proc.stdout == ""


def test_sweep_refuses_an_unwritable_out_before_running(unwritable, tmp_path):
    folder, reason, prefix = unwritable
    out = folder / "out"
    proc = _cli(prefix, "sweep", str(_sweep_config(tmp_path)), "--out", str(out), "--executor", "serial")
    assert one_error_line(proc, progress_first=False) == (
        f"riskengine: error: {out}: cannot create files in {folder}: {reason} (choose another with --out)")
    assert proc.stdout == ""


def test_sweep_resume_refuses_a_folder_it_cannot_add_to(tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    prefix = _read_only(out)
    proc = _cli(prefix, "sweep", str(_sweep_config(tmp_path)), "--out", str(out), "--resume", "--executor", "serial")
    assert one_error_line(proc, progress_first=False) == (
        f"riskengine: error: {out}: cannot create files in {out}: Permission denied (choose another with --out)")


def test_bench_json_under_proc_is_refused_before_measuring():
    """``os.access`` says root may write in /proc; the check creates a file instead."""
    proc = run_cli("bench", "--quick", "--scale", "0.01", "--json", "/proc/bench.json", timeout=300)
    assert one_error_line(proc, progress_first=False) == (
        "riskengine: error: --json /proc/bench.json: cannot create files in /proc: No such file or directory")
    assert proc.stdout == ""


# ------------------------------------------------------------------ 13: --out is a file
@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_an_out_that_is_a_file_is_called_a_file(command, overwrite, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    args = [*SMALL] if command == "run" else [str(_sweep_config(tmp_path)), "--executor", "serial"]
    proc = run_cli(command, *args, "--out", str(target), *(["--overwrite"] if overwrite else []), timeout=120)
    assert one_error_line(proc, progress_first=False) == (
        f"riskengine: error: {target}: is a file, not a folder (choose another with --out)")
    assert target.read_text() == "mine\n"
    inside = run_cli(command, *args, "--out", str(target / "sub"), timeout=120)
    assert one_error_line(inside, progress_first=False) == (
        f"riskengine: error: {target / 'sub'}: {target} is a file, not a folder (choose another with --out)")


# --------------------------------------------------------------- 3: one writer per folder
def _start(*args: str, cwd: Path | None = None, entry: str = "-m") -> subprocess.Popen:
    """The real command in a child process, its own process group (as a terminal starts it)."""
    if entry == "-m":
        cmd = [sys.executable, "-m", "riskengine.cli", *args]
    else:  # the console script pip installs (riskengine = riskengine.cli:main)
        cmd = [str(_console_script()), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            start_new_session=True)


class _Lines:
    """A child's stderr read line by line on a thread (so that the child never blocks on a
    full pipe), with a wait for the first line matching a pattern."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._new = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()
        proc.stderr.close()
        with self._new:
            self.lines.append(None)  # end of stream
            self._new.notify_all()

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        with self._new:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if line is None:
                        raise AssertionError(f"the child ended before {pattern!r}: {self.text()}")
                    if re.search(pattern, line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                assert left > 0, f"no {pattern!r} within {timeout} s: {self.text()}"
                self._new.wait(left)

    def text(self) -> str:
        self._thread.join(timeout=60)
        return "\n".join(line for line in self.lines if line is not None)


def _wrote(stderr: str) -> Path:
    """The folder a run reported in its ``wrote ... to FOLDER`` line."""
    [line] = [line for line in stderr.splitlines() if line.startswith("wrote ")]
    return Path(line.rsplit(" to ", 1)[1])


def _printed_liquidations(stdout: str) -> list[int]:
    """The liquidations per design of a run's terminal table."""
    [line] = [line for line in stdout.splitlines() if line.split()[:1] == ["liquidations"]]
    cells = line.split()[1:]
    if cells[0] == "(count)":  # the header's unit
        cells = cells[1:]
    return [int(cell.replace(",", "")) for cell in cells]


def _assert_complete(out: Path, stdout: str) -> None:
    """``out`` holds every output file of the run that printed ``stdout``."""
    assert sorted(p.name for p in out.iterdir()) == sorted(backtest.OUTPUT_FILES)
    assert pd.read_csv(out / "results.csv")["liquidations"].tolist() == _printed_liquidations(stdout)


def test_concurrent_default_runs_write_a_folder_each(tmp_path):
    """Two runs started in the same second with the default folder name (two seeds, so that
    their results differ): both finish, each into its own folder holding its own results."""
    time.sleep(1 - time.time() % 1)  # start together at the top of a second
    procs = [_start("run", *SMALL, "--seed", str(seed), cwd=tmp_path) for seed in (1, 2)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    folders = [tmp_path / _wrote(err) for _, err in outputs]
    assert folders[0] != folders[1]
    for folder, (out, _) in zip(folders, outputs):
        _assert_complete(folder, out)
    assert _printed_liquidations(outputs[0][0]) != _printed_liquidations(outputs[1][0])
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == sorted(f.name for f in folders)


def test_a_second_run_into_a_folder_being_written_is_refused(tmp_path):
    out = tmp_path / "shared" / "out"
    first = _start("run", *SLOW, "--out", str(out))
    first_err = _Lines(first)
    first_err.wait_for(r"^default: running$")  # it holds the folder from before this line
    second = run_cli("run", *SMALL, "--out", str(out), timeout=120)
    line = one_error_line(second, progress_first=False)
    assert re.fullmatch(rf"riskengine: error: {re.escape(str(out))}: riskengine pid {first.pid} on \S+, since "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d is writing this folder \(wait for it to end, or choose "
                        r"another with --out\)", line), line
    assert first.poll() is None, "the first run must still be running for this test to mean anything"
    stdout = first.stdout.read()
    first.stdout.close()
    assert first.wait(timeout=300) == 0, first_err.text()
    assert _wrote(first_err.text()) == out
    _assert_complete(out, stdout)
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # the lock file is gone


def test_a_killed_runs_lock_does_not_block_the_next_run(tmp_path):
    out = tmp_path / "out"
    killed = _start("run", *SLOW, "--out", str(out))
    _Lines(killed).wait_for(r"^default: running$")
    lock = tmp_path / ".out.lock"
    assert lock.is_file() and f"pid {killed.pid} " in lock.read_text()
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    killed.stdout.close()
    assert lock.is_file()  # left behind, no longer locked
    again = run_cli("run", *SMALL, "--out", str(out), timeout=300)
    assert again.returncode == 0, again.stderr
    _assert_complete(out, again.stdout)
    assert not lock.exists()


def test_a_second_sweep_into_a_folder_being_written_is_refused_and_resume_works_after_a_kill(tmp_path):
    config = _sweep_config(tmp_path)
    out = tmp_path / "sweep"
    first = _start("sweep", str(config), "--out", str(out), "--executor", "serial")
    first_err = _Lines(first)
    first_err.wait_for(r"^\[1/12\] ")
    second = run_cli("sweep", str(config), "--out", str(out), "--resume", "--executor", "serial", timeout=120)
    line = one_error_line(second, progress_first=False)
    assert line.startswith(f"riskengine: error: {out}: riskengine pid {first.pid} on "), line
    assert line.endswith(" is writing this folder (wait for it to end, or choose another with --out)"), line
    assert first.poll() is None, "the first sweep must still be running for this test to mean anything"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    first.stdout.close()
    done = len(list((out / "runs").glob(f"run=*/{sweep.PART}")))
    assert 1 <= done < 12
    resumed = run_cli("sweep", str(config), "--out", str(out), "--resume", "--executor", "serial", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done} finished earlier, {12 - done} to run" in resumed.stderr
    assert len(pd.read_parquet(out / "results.parquet")) == 12
    again = run_cli("sweep", str(config), "--out", str(out), "--resume", "--executor", "serial", timeout=300)
    assert again.returncode == 0, again.stderr  # nothing left to run
    assert "12 finished earlier, 0 to run" in again.stderr and "Traceback" not in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml", "sweep"]  # no lock file left


# ------------------------------------------------------------------ 8: Ctrl-C at any moment
def _console_script() -> Path:
    script = Path(sys.executable).with_name("riskengine")
    if not script.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the riskengine console script is missing at {script} (pip install -e . makes it)")
        pytest.skip(f"no riskengine console script beside {sys.executable} (pip install -e . makes it)")
    return script


#: when Ctrl-C comes: seconds after :data:`LOADING` (``None``), or a progress line and seconds
#: after it
RUN_MOMENTS = [(None, 0), (None, 0.002), (None, 0.02), (None, 0.1), (None, 0.3),
               (r"^default: running$", 0), (r"^\[1/1\] .*: loading$", 0.05), (r"^report\.html: ", 0)]
SWEEP_MOMENTS = [(None, 0), (None, 0.02), (None, 0.3), (r"^sweep grid: 12 runs ", 0), (r"^\[2/12\] ", 0)]


#: the first import of riskengine.cli after it has taken Ctrl-C over: before it, the
#: interpreter's start-up runs (finding and reading the module: a Ctrl-C there gets Python's own
#: traceback, which no code of riskengine can prevent) and a few microseconds of riskengine
LOADING = r"\|\s+argparse$"


def _interrupt(args: list[str], entry: str, marker: str | None, delay: float) -> tuple[subprocess.Popen, str]:
    """Start the command with ``-X importtime`` (each import writes a line to stderr as it
    completes, which tells how far start-up is), wait for :data:`LOADING`, or else for
    ``marker``, then ``delay`` seconds, and send Ctrl-C to its process group, as a terminal
    does. Returns the process and its stderr without the import lines."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    if entry == "-m":
        cmd = [sys.executable, "-m", "riskengine.cli", *args]
    else:
        cmd = [str(_console_script()), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    lines = _Lines(proc)
    lines.wait_for(marker or LOADING)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    proc.stdout.read()  # stderr is the reader thread's
    proc.stdout.close()
    proc.wait(timeout=120)
    return proc, "\n".join(line for line in lines.text().splitlines() if not line.startswith("import time:"))


@pytest.mark.parametrize("entry", ["-m", "script"])
def test_ctrl_c_at_any_moment_of_a_run_is_one_line(entry, tmp_path):
    for k, (marker, delay) in enumerate(RUN_MOMENTS):
        parent = tmp_path / f"try{k}"
        proc, err = _interrupt(["run", *SMALL, "--out", str(parent / "out")], entry, marker, delay)
        moment = f"Ctrl-C {delay} s after {marker or LOADING}"
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (moment, err)
        assert proc.returncode == 130, (moment, err)
        assert err.splitlines()[-1] == "riskengine: interrupted", (moment, err)
        # nothing written and nothing left, or (Ctrl-C after the last rename) the whole folder
        if parent.exists():
            assert [p.name for p in parent.iterdir()] == ["out"], (moment, list(parent.rglob("*")))
            assert sorted(p.name for p in (parent / "out").iterdir()) == sorted(backtest.OUTPUT_FILES), moment


@pytest.mark.parametrize("entry", ["-m", "script"])
def test_ctrl_c_at_any_moment_of_a_sweep_is_one_line(entry, tmp_path):
    config = _sweep_config(tmp_path)
    for k, (marker, delay) in enumerate(SWEEP_MOMENTS):
        parent = tmp_path / f"try{k}"
        out = parent / "out"
        proc, err = _interrupt(["sweep", str(config), "--out", str(out), "--executor", "serial"], entry, marker,
                               delay)
        moment = f"Ctrl-C {delay} s after {marker or LOADING}"
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (moment, err)
        assert proc.returncode == 130, (moment, err)
        assert err.splitlines()[-1].startswith("riskengine: interrupted"), (moment, err)
        # finished runs stay, each partition whole; nothing else is left (no lock, no temporary file)
        left = sorted(p.relative_to(parent).as_posix() for p in parent.rglob("*") if p.is_file()) \
            if parent.exists() else []
        assert all(re.fullmatch(rf"out/(plan\.parquet|sweep\.json|runs/run=\w+/{sweep.PART})", p) for p in left), (moment, left)
