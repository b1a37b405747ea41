"""What ``run`` refuses, ``validate`` and a sweep refuse before anything runs; a sweep folder
holds one sweep.

- ``riskengine validate`` makes every check ``riskengine run`` makes before its engine starts
  (one code path, :func:`riskengine.backtest.preflight`): the same one line for a population
  the generator cannot build, a window outside the tape, a mark method without its stream ...
- ``riskengine run a.toml b.toml`` checks both before it runs or writes anything.
- a sweep checks every run of its grid so up front; a sweep whose runs fail in their engine
  exits 1 with a summary line.
- ``--resume`` continues only the sweep of the same config and grid (``OUT/sweep.json``).

Real configs, real subprocess runs of the command line; the tapes are synthetic crashes or the
2025-10-10 Gemini BTC tape of ../shared/data.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _cli import one_error_line, run_cli, write

from riskengine import backtest, config, sweep

ROOT = Path(__file__).resolve().parents[1]
GEMINI_BTC = "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"

SMALL = """
[scenario]
name = "syn"
synthetic = { ticks = 3_000, seed = 3 }

[population]
accounts = 400
open_interest_usd = 2e7

[liquidity]
depth_per_pct = 2e6

[[venues]]
preset = "binance-usdm"

[[venues]]
preset = "hyperliquid"
"""


def _replay(shared_data: Path, window: str, extra: str = "", mark: str = "") -> str:
    return f"""
[scenario]
name = "btc"
tape = {{ source = "tardis", path = "{shared_data / GEMINI_BTC}" }}
window = {window}

[population]
accounts = 300
{extra}

[[venues]]
preset = "binance-usdm"
{mark}
"""


# -------------------------------------------------------------------- validate = run's checks
def _cases(shared_data: Path | None) -> dict[str, tuple[str, str]]:
    cases = {
        "one account, both sides": (SMALL.replace("accounts = 400", "accounts = 1\nlong_share = 0.7"),
                                    "population: accounts: 1 positioned account(s) cannot hold both sides of "
                                    "long_share 0.7; expected at least 2"),
        "window after the synthetic tape": (
            SMALL.replace("seed = 3 }", "seed = 3 }\nwindow = { start = 2025-10-11T06:00:00Z }"),
            "scenario.window: holds fewer than 2 ticks of the synthetic tape"),
    }
    if shared_data is not None:
        cases["window outside the tape"] = (
            _replay(shared_data, "{ start = 2025-10-12T00:00:00Z, end = 2025-10-12T01:00:00Z }"),
            "scenario.window: holds 0 trade(s) of the tape; the tape spans 2025-10-10T")
        cases["entries before the tape"] = (
            _replay(shared_data, "{ start = 2025-10-10T02:00:00Z, end = 2025-10-10T03:00:00Z }"),
            "population.entry_lookback_s: the entry window 2025-10-09T20:00:00Z")
        cases["a mark method without its stream"] = (
            _replay(shared_data, "{ start = 2025-10-10T20:00:00Z, end = 2025-10-10T21:00:00Z }",
                    "entry_lookback_s = 0", 'mark = { method = "stream" }'),
            "venue design 'binance-usdm': mark.method 'stream' needs a mark/index stream, but scenario 'btc' "
            "has none")
    return cases


@pytest.mark.parametrize("case", ["one account, both sides", "window after the synthetic tape",
                                  "window outside the tape", "entries before the tape",
                                  "a mark method without its stream"])
def test_validate_refuses_what_run_refuses(request, tmp_path, case):
    needs_data = case not in ("one account, both sides", "window after the synthetic tape")
    shared = request.getfixturevalue("shared_data") if needs_data else None
    text, expected = _cases(shared)[case]
    path = write(tmp_path, text, "bad.toml")
    ran = one_error_line(run_cli("run", str(path), "--out", str(tmp_path / "out")))
    checked = one_error_line(run_cli("validate", str(path)))
    assert expected in ran, ran
    assert checked == ran  # one code path: the same line
    assert not (tmp_path / "out").exists()


def test_validate_prints_what_it_built(tmp_path):
    proc = run_cli("validate", str(write(tmp_path, SMALL, "ok.toml")))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"{tmp_path / 'ok.toml'}: ok",
                         "  syn: 400 accounts x 2 design(s) (binance-usdm, hyperliquid); 3,000 trades, depth 2,000,000/1%"]
    # the synthetic tape is BTC on 2025-10-10: Hyperliquid's BTC table of that day lacks its upper tier
    assert len(lines) == 3 and lines[2].startswith(
        "  warning: syn: design 'hyperliquid': margin table hyperliquid BTC 2025-03-12 (incomplete): first tier only")


def test_run_checks_every_config_before_it_runs_or_writes(tmp_path):
    good = write(tmp_path, SMALL, "a.toml")
    bad = write(tmp_path, SMALL.replace("accounts = 400", "accounts = 1\nlong_share = 0.7"), "b.toml")
    out = tmp_path / "out"
    proc = run_cli("run", str(good), str(bad), "--out", str(out))
    line = one_error_line(proc)
    assert line.startswith(f"riskengine: error: {bad}: "), line
    assert not out.exists()  # a's folder is not written when b fails its checks
    assert "running" not in proc.stderr and "design" not in proc.stdout  # nothing ran
    other = Path(shutil.copy(good, tmp_path / "c.toml"))
    both = run_cli("run", str(good), str(other), "--out", str(out))
    assert both.returncode == 0, both.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a", "c"]


def test_the_run_uses_what_its_checks_built(tmp_path):
    # riskengine run's memo: each tape, population and liquidity model is built once, by the checks
    loaded = config.load(write(tmp_path, SMALL, "a.toml"))
    keep, built = backtest.KeepAll(), Counter()

    def memo(kind, key, load):
        def counted():
            built[kind] += 1
            return load()
        return keep(kind, key, counted)

    backtest.preflight(loaded, memo)
    assert built == {"tape": 1, "population": 1, "liquidity": 1}
    table = backtest.run_config(loaded, memo=memo).table
    assert built == {"tape": 1, "population": 1, "liquidity": 1}
    pd.testing.assert_frame_equal(table.drop(columns=["elapsed_s", "ticks_per_s"]),
                                  backtest.run_config(loaded).table.drop(columns=["elapsed_s", "ticks_per_s"]))


# -------------------------------------------------------------------- a sweep's checks and exit codes
SWEEP = SMALL + """
[sweep]
grid = { "population.seed" = [1, 2], "population.accounts" = [200, 3000] }
"""


def test_sweep_refuses_a_run_its_engine_would_never_start(tmp_path):
    path = write(tmp_path, SMALL.replace("accounts = 400", "accounts = 400\nlong_share = 0.7")
                 + '\n[sweep]\ngrid = { "population.accounts" = [500, 1] }\n', "s.toml")
    out = tmp_path / "out"
    for proc in (run_cli("sweep", str(path), "--out", str(out), "--executor", "serial"),
                 run_cli("validate", str(path))):
        line = one_error_line(proc, progress_first=False)
        assert line == (f"riskengine: error: {path}: sweep.grid population.accounts=1: population: accounts: 1 "
                        f"positioned account(s) cannot hold both sides of long_share 0.7; expected at least 2")
    assert not out.exists()


def test_sweep_with_failed_runs_exits_1_with_a_summary_line(tmp_path):
    # the runs of 3,000 accounts outgrow an event-log budget of 600 rows in their engine
    path = write(tmp_path, SWEEP, "s.toml")
    out = tmp_path / "out"
    env = {**os.environ, "RISKENGINE_MAX_EVENTS": "600"}
    proc = run_cli("sweep", str(path), "--out", str(out), "--executor", "serial", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"riskengine: 2 of 4 runs failed; see {out / 'failures.parquet'}"
    assert len(pq.read_table(out / "failures.parquet")) == 2 and len(pq.read_table(out / "results.parquet")) == 4
    # the failed runs run again on --resume; with a budget they fit in, the sweep is complete: exit 0
    again = run_cli("sweep", str(path), "--out", str(out), "--executor", "serial", "--resume")
    assert again.returncode == 0, again.stderr
    assert "2 finished earlier, 2 to run" in again.stderr
    assert len(pq.read_table(out / "failures.parquet")) == 0 and len(pq.read_table(out / "results.parquet")) == 8


# -------------------------------------------------------------------- one sweep per folder
def _partitions(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in out.rglob(sweep.PART)}


@pytest.fixture()
def swept(tmp_path) -> tuple[Path, Path]:
    path = write(tmp_path, SWEEP, "a.toml")
    out = tmp_path / "out"
    proc = run_cli("sweep", str(path), "--out", str(out), "--executor", "serial")
    assert proc.returncode == 0, proc.stderr
    return path, out


def test_resume_with_another_config_is_refused_naming_both(swept, tmp_path):
    path, out = swept
    other = write(tmp_path, SWEEP.replace('"population.seed" = [1, 2]', '"population.seed" = [3, 4, 5]'), "b.toml")
    before, results = _partitions(out), (out / "results.parquet").read_bytes()
    line = one_error_line(run_cli("sweep", str(other), "--out", str(out), "--resume", "--executor", "serial"),
                          progress_first=False)
    held = sweep.Manifest.read(out)
    assert held.config == str(path.resolve()) and held.runs == 4
    assert line.startswith(f"riskengine: error: {out}: holds the sweep of {path.resolve()} (identity "
                           f"{held.identity}, 4 runs), not of {other.resolve()} (identity "), line
    assert line.endswith(", 6 runs); resume it with its own config, start afresh with --overwrite, or choose "
                         "another --out"), line
    assert _partitions(out) == before and (out / "results.parquet").read_bytes() == results


def test_resume_after_the_config_changed_is_refused(swept):
    path, out = swept
    path.write_text(SWEEP.replace("depth_per_pct = 2e6", "depth_per_pct = 3e6"))
    line = one_error_line(run_cli("sweep", str(path), "--out", str(out), "--resume"), progress_first=False)
    assert f"holds the sweep of {path.resolve()} (identity " in line
    assert "(the config or its grid changed since)" in line, line


def test_resume_with_the_same_runs_written_differently_continues(swept, tmp_path):
    path, out = swept
    # the grid in another order, another rank_by, the default written out: the same four runs
    same = write(tmp_path, SMALL.replace("[liquidity]", "[liquidity]\nmax_move = 0.5") + """
[sweep]
grid = { "population.accounts" = [200, 3000], "population.seed" = [1, 2] }
rank_by = "liquidations"
""", "same.toml")
    before = _partitions(out)
    proc = run_cli("sweep", str(same), "--out", str(out), "--resume", "--executor", "serial")
    assert proc.returncode == 0, proc.stderr
    assert "4 finished earlier, 0 to run" in proc.stderr
    assert _partitions(out) == before


def test_a_folder_without_a_manifest(swept, tmp_path):
    path, out = swept
    (out / sweep.MANIFEST).unlink()  # as a sweep folder of an earlier version
    line = one_error_line(run_cli("sweep", str(path), "--out", str(out), "--resume"), progress_first=False)
    assert line == (f"riskengine: error: {out}: holds no sweep.json, so which config and grid its rows belong to is "
                    f"unknown (a sweep folder of an earlier riskengine, or not a sweep folder); start afresh with "
                    f"--overwrite, or choose another --out")
    assert run_cli("sweep", str(path), "--out", str(out), "--overwrite", "--executor", "serial").returncode == 0
    assert sweep.Manifest.read(out).config == str(path.resolve())
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder holds no other sweep: --resume starts it
    assert run_cli("sweep", str(path), "--out", str(empty), "--resume", "--executor", "serial").returncode == 0
    assert len(_partitions(empty)) == 4 and sweep.Manifest.read(empty) == sweep.Manifest.read(out)
