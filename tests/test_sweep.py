"""``riskengine sweep``: grid expansion and run hashes, serial vs process-pool vs a real Dask
cluster on 127.0.0.1 (identical rows), one tape build per worker, failed runs recorded,
``--resume``, Ctrl-C, and the command line's one-line errors.

The scenario is small (a 20k-tick synthetic crash, 5k accounts, two designs) so that every
run takes a fraction of a second; comparisons leave out the wall-clock columns
(:data:`riskengine.metrics.TIMING_COLUMNS`: engine time and throughput), which differ between
any two runs of the same config.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _cli import one_error_line, run_cli, write

from riskengine import backtest, cli, config, metrics, sweep

BASE = """
[scenario]
name = "syn"
synthetic = { ticks = 20_000, seed = 7 }

[population]
accounts = 5_000
open_interest_usd = 1e8
seed = 8

[liquidity]
depth_per_pct = 5e5

[[venues]]
preset = "binance-usdm"
fund = { initial = 2e5 }

[[venues]]
preset = "hyperliquid"
backstop = { vault_balance = 5e5 }
"""
GRID = """
[sweep]
grid = { "population.seed" = [1, 2, 3], "venues[1].adl.policy" = ["queue", "pro-rata"], "liquidity.resilience_half_life_s" = [10, 30] }
rank_by = "liquidations"
"""


def _write(folder: Path, text: str, name: str = "sweep.toml") -> Path:
    return write(folder, text, name)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweep")


@pytest.fixture(scope="module")
def loaded(folder) -> config.LoadedConfig:
    return config.load(_write(folder, BASE + GRID))


@pytest.fixture(scope="module")
def serial(loaded, folder) -> sweep.SweepResult:
    return sweep.run_sweep(loaded, folder / "serial")


# ------------------------------------------------------------------ grid and hashes
def test_grid_expands_to_the_cartesian_product(loaded):
    runs = sweep.expand(loaded)
    assert len(runs) == 3 * 2 * 2
    assert [tuple(r.values.values()) for r in runs[:3]] == [(1, "queue", 10), (1, "queue", 30), (1, "pro-rata", 10)]
    for run in runs:  # each run is the base config with its values set, validated
        cfg = run.loaded.config
        assert cfg.sweep is None
        assert cfg.population.seed == run.values["population.seed"]
        assert cfg.population.accounts == 5_000
        assert cfg.liquidity.resilience_half_life_s == run.values["liquidity.resilience_half_life_s"]
        designs = backtest.build_designs(run.loaded)
        assert designs[1].adl.policy == run.values["venues[1].adl.policy"]
        assert designs[0].fund.initial == 2e5 and designs[1].backstop.vault_balance == 5e5
    assert len({r.hash for r in runs}) == len(runs)


def test_run_hash_is_the_resolved_config(loaded, folder):
    runs = sweep.expand(loaded)
    assert [r.hash for r in sweep.expand(config.load(_write(folder, BASE + GRID, "again.toml")))] == \
        [r.hash for r in runs]
    # the grid's order and the [sweep] table do not change a run's identity
    reordered = config.load(_write(folder, BASE + """
[sweep]
grid = { "liquidity.resilience_half_life_s" = [30, 10], "venues[1].adl.policy" = ["pro-rata", "queue"], "population.seed" = [3, 2, 1] }
rank_by = "bad_debt"
""", "reordered.toml"))
    assert {r.hash for r in sweep.expand(reordered)} == {r.hash for r in runs}
    # a value equal to the default resolves to the config without it (30 s is the default half-life,
    # queue Hyperliquid's ADL)
    explicit = next(r for r in runs if r.values == {"population.seed": 2, "venues[1].adl.policy": "queue",
                                                    "liquidity.resilience_half_life_s": 30})
    plain = config.load(_write(folder, BASE.replace("seed = 8", "seed = 2"), "plain.toml"))
    assert sweep.run_hash(plain) == explicit.hash
    # where outputs go is no part of a run; the series interval is (it groups weighted ADL fill rows)
    moved = config.load(_write(folder, BASE.replace("seed = 8", "seed = 2") + '[outputs]\ndir = "elsewhere"\n',
                               "moved.toml"))
    assert sweep.run_hash(moved) == explicit.hash
    sampled = config.load(_write(folder, BASE.replace("seed = 8", "seed = 2") + "[outputs]\nseries_interval_s = 0.5\n",
                                 "sampled.toml"))
    assert sweep.run_hash(sampled) != explicit.hash
    # any other value is another run
    other = config.load(_write(folder, BASE.replace("seed = 8", "seed = 2").replace(
        "depth_per_pct = 5e5", "depth_per_pct = 5.0001e5"), "other.toml"))
    assert sweep.run_hash(other) != explicit.hash
    # files are resolved: the same file written relative or absolute is the same run
    assert plain.resolved({"population": {"file": "pop.csv"}}) == \
        {"population": {"file": str((folder / "pop.csv").resolve())}}


@pytest.mark.parametrize("key, expected", [
    ("venues[1].adl.polcy", "sweep.grid: 'venues[1].adl.polcy': unknown key 'polcy' "
                            "(did you mean 'venues[1].adl.policy'?)"),
    ("poplation.seed", "unknown key 'poplation' (did you mean 'population.seed'?)"),
    ("venues[5].adl.policy", "'venues[5].adl.policy': venues has 2 entries in the config (indexes 0..1)"),
    ("venues.adl.policy", "venues is a list: give an index, e.g. 'venues[0].adl.policy'"),
    ("scenario.synthetic.tiks", "(did you mean 'scenario.synthetic.ticks'?)"),
])
def test_bad_grid_key_is_one_line_with_the_nearest_key(folder, key, expected):
    path = _write(folder, BASE + f'[sweep]\ngrid = {{ "{key}" = [1, 2] }}\n', "bad.toml")
    with pytest.raises(ValueError) as err:
        config.load(path)
    assert expected in str(err.value)
    assert str(err.value).startswith(f"{path}: sweep.grid: ")


def test_validate_checks_the_grid(folder, capsys):
    bad_key = _write(folder, BASE + '[sweep]\ngrid = { "venues[1].adl.polcy" = ["queue"] }\n', "badkey.toml")
    line = one_error_line(run_cli("validate", str(bad_key)), progress_first=False)  # a real process: one line, no traceback
    assert line == (f"riskengine: error: {bad_key}: sweep.grid: 'venues[1].adl.polcy': unknown key 'polcy' "
                    f"(did you mean 'venues[1].adl.policy'?)")
    bad_value = _write(folder, BASE + '[sweep]\ngrid = { "population.seed" = [1, 2], "venues[1].adl.policy" = '
                                      '["queue", "pro-rota"] }\n', "badvalue.toml")
    assert cli.main(["validate", str(bad_value)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"riskengine: error: {bad_value}: sweep.grid "
                                                   f"venues[1].adl.policy=pro-rota: ")
    assert "adl.policy" in err and "'pro-rata'" in err  # what was expected
    assert cli.main(["validate", str(_write(folder, BASE + GRID, "good.toml"))]) == 0
    assert "sweep: 12 runs over population.seed, venues[1].adl.policy, liquidity.resilience_half_life_s" in \
        capsys.readouterr().out


# ------------------------------------------------------------------ executors
@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=sweep.LOCAL_HTTP_ADDRESS, silence_logs=logging.ERROR)
    yield cluster
    cluster.close()


def test_a_local_dask_cluster_starts_cleanly_beside_another():
    """Another cluster on the machine holds Dask's default HTTP port 8787: the sweep's local
    cluster takes a free port instead, without a warning (which would fail this test)."""
    pytest.importorskip("dask.distributed")
    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # already held by another process: the same case
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        client, cluster = sweep.dask_client(None, 1)
        try:
            assert len(client.scheduler_info()["workers"]) <= 1
        finally:
            client.close()
            cluster.close()


def test_serial_rows(serial, loaded):
    runs = sweep.expand(loaded)
    table = serial.results
    assert len(table) == len(runs) * 2 and serial.failures.empty
    assert set(table["run"]) == {r.hash for r in runs}
    row = table[(table["run"] == runs[2].hash) & (table["design"] == "hyperliquid")].iloc[0]
    assert (row["population.seed"], row["venues[1].adl.policy"], row["liquidity.resilience_half_life_s"]) == \
        (1, "pro-rata", 10)
    assert row["variant"] == "hyperliquid (adl.policy=pro-rata)"
    # a sweep row is the plain backtest of its run config (no cache, fresh process state)
    alone = backtest.run_config(runs[2].loaded).table
    mine = table[table["run"] == runs[2].hash].drop(
        columns=["run", "variant", *loaded.config.sweep.grid]).reset_index(drop=True)
    pd.testing.assert_frame_equal(mine.drop(columns=list(metrics.TIMING_COLUMNS)),
                                  alone.drop(columns=list(metrics.TIMING_COLUMNS)))
    # one partition per run, and the combined files
    for run in runs:
        assert pq.read_table(sweep.partition(serial.out, run)).num_rows == 2
    pd.testing.assert_frame_equal(pq.read_table(serial.out / "results.parquet").to_pandas(), table)
    # the ranking: variants by mean liquidations, lowest first
    means = table.groupby("variant")["liquidations"].mean()
    ranking = serial.ranking
    assert list(ranking["variant"]) == list(means.sort_values(kind="stable").index)
    assert list(ranking["liquidations_mean"]) == list(means.sort_values(kind="stable"))
    assert list(ranking["runs"]) == [12 if v == "binance-usdm" else 6 for v in ranking["variant"]]


@pytest.mark.parametrize("order, expected", [
    # ascending: lower is better; the tie (a and c at 2.0) goes by variant name
    ("ascending", [(1, "a", 2, 2.0, 1.0, 3.0), (2, "c", 1, 2.0, 2.0, 2.0), (3, "b", 2, 6.0, 5.0, 7.0)]),
    ("descending", [(1, "b", 2, 6.0, 7.0, 5.0), (2, "a", 2, 2.0, 3.0, 1.0), (3, "c", 1, 2.0, 2.0, 2.0)]),
])
def test_rank_by_hand(order, expected):
    results = pd.DataFrame({"run": ["r1", "r2", "r1", "r2", "r1"], "variant": ["a", "a", "b", "b", "c"],
                            "design": ["a", "a", "b", "b", "c"], "bad_debt": [1.0, 3.0, 5.0, 7.0, 2.0]})
    spec = config.SweepSpec(grid={"population.seed": [1, 2]}, rank_by="bad_debt", rank_order=order)
    table = sweep.rank(results, spec)
    assert list(table.columns) == ["rank", "variant", "design", "runs", "bad_debt_mean", "bad_debt_best",
                                   "bad_debt_worst"]
    got = [(r.rank, r.variant, r.runs, r.bad_debt_mean, r.bad_debt_best, r.bad_debt_worst)
           for r in table.itertuples()]
    assert got == expected


def test_a_run_with_rows_is_not_also_a_failure(serial, tmp_path):
    # rows written, old failure not yet removed (Ctrl-C between the two): the run counts as finished
    out = tmp_path / "copy"
    shutil.copytree(serial.out, out)
    run = serial.runs[0]
    sweep.record(out, sweep.Outcome(run, None, "ValueError: an earlier failure", "host:1"))
    sweep.record(out, sweep.Outcome(run, pq.read_table(sweep.partition(serial.out, run)).to_pandas(), None, "host:1"))
    sweep.record(out, sweep.Outcome(run, None, "ValueError: an earlier failure", "host:1"))  # as if left over
    results, failures = sweep.collect(out, serial.runs)
    assert failures.empty and len(results) == len(serial.results)


def _tape_built_once_per_worker(result: sweep.SweepResult) -> set[str]:
    per_worker: dict[str, int] = {}
    for outcome in result.outcomes:
        per_worker[outcome.worker] = per_worker.get(outcome.worker, 0) + outcome.tape_loads
    # every run shares one tape; each worker process built it once, whatever number of runs it ran
    assert set(per_worker.values()) == {1}, per_worker
    assert len(result.outcomes) > len(per_worker)
    return set(per_worker)


def test_runs_on_more_tapes_than_a_worker_keeps_build_each_tape_once(folder):
    # 5 tapes x 3 populations: in grid order the tape would change on every run, and a worker
    # keeps only WorkerCache.LIMITS["tape"] tapes; runs are handed out grouped by tape
    text = (BASE.replace("ticks = 20_000", "ticks = 3_000").replace("accounts = 5_000", "accounts = 500")
            + '[sweep]\ngrid = { "population.seed" = [1, 2, 3], "scenario.synthetic.seed" = [1, 2, 3, 4, 5] }\n')
    assert sweep.WorkerCache.LIMITS["tape"] < 5
    result = sweep.run_sweep(config.load(_write(folder, text, "tapes.toml")), folder / "tapes")
    assert len(result.outcomes) == 15
    assert sum(o.tape_loads for o in result.outcomes) == 5


def test_variants_follow_the_parsed_design_index(folder):
    # "venues[01]" is design 1: its variants are told apart by the grid value
    text = (BASE.replace("ticks = 20_000", "ticks = 3_000").replace("accounts = 5_000", "accounts = 500")
            + '[sweep]\ngrid = { "venues[01].adl.policy" = ["queue", "pro-rata"] }\n')
    result = sweep.run_sweep(config.load(_write(folder, text, "padded.toml")), folder / "padded")
    assert sorted(result.results["variant"].unique()) == [
        "binance-usdm", "hyperliquid (adl.policy=pro-rata)", "hyperliquid (adl.policy=queue)"]


def test_processes_equal_serial_and_build_the_tape_once_per_worker(serial, loaded, folder):
    result = sweep.run_sweep(loaded, folder / "processes", executor="processes", workers=2)
    pd.testing.assert_frame_equal(sweep.comparable(result.results), sweep.comparable(serial.results))
    workers = _tape_built_once_per_worker(result)
    assert len(workers) <= 2 and str(os.getpid()) not in {w.split(":")[1] for w in workers}


def test_dask_cluster_equals_serial_and_builds_the_tape_once_per_worker(serial, loaded, folder, dask_cluster):
    from dask.distributed import Client

    with Client(dask_cluster, set_as_default=False) as client:
        pids = set(client.run(os.getpid).values())
    result = sweep.run_sweep(loaded, folder / "dask", executor="dask", scheduler=dask_cluster.scheduler_address)
    pd.testing.assert_frame_equal(sweep.comparable(result.results), sweep.comparable(serial.results))
    workers = _tape_built_once_per_worker(result)
    assert {int(w.split(":")[1]) for w in workers} <= pids  # it ran on the cluster's worker processes


# ------------------------------------------------------------------ failures, resume
def test_a_failing_run_is_recorded_and_the_sweep_goes_on(folder, monkeypatch):
    # every check before the engine passes (validate accepts the grid: tapes, populations and
    # designs are built); in their engine the runs of 5,000 accounts outgrow an event-log budget
    # of 1,000 rows (about 3,300 events), the runs of 200 accounts (under 250) do not
    monkeypatch.setenv("RISKENGINE_MAX_EVENTS", "1000")
    path = _write(folder, BASE + """
[sweep]
grid = { "population.accounts" = [200, 5000], "population.seed" = [1, 2] }
""", "failing.toml")
    assert cli.main(["validate", str(path)]) == 0
    result = sweep.run_sweep(config.load(path), folder / "failing")
    assert len(result.outcomes) == 4
    failures = result.failures
    assert len(failures) == 2
    assert set(failures["population.accounts"]) == {5000}
    assert sorted(failures["population.seed"]) == [1, 2]
    assert all(e.startswith("RunTooLarge: design 'binance-usdm'") and "budget of 1,000 rows" in e
               for e in failures["error"])
    assert set(result.results["population.accounts"]) == {200}
    assert len(result.results) == 2 * 2
    for h in failures["run"]:
        assert sweep.partition(result.out, h, "failures").exists() and not sweep.partition(result.out, h).exists()
    pd.testing.assert_frame_equal(pq.read_table(result.out / "failures.parquet").to_pandas(), failures)


def test_resume_runs_only_the_missing_runs(serial, loaded, folder):
    out = folder / "resume"
    first = sweep.run_sweep(loaded, out)
    gone = first.runs[5]
    kept = sweep.partition(out, first.runs[0])
    stamp = kept.stat().st_mtime_ns
    (sweep.partition(out, gone)).unlink()
    with pytest.raises(ValueError, match="output folder exists .*--resume"):
        sweep.run_sweep(loaded, out)
    again = sweep.run_sweep(loaded, out, resume=True)
    assert [o.run.hash for o in again.outcomes] == [gone.hash]
    assert again.skipped == len(first.runs) - 1
    assert kept.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(sweep.comparable(again.results), sweep.comparable(serial.results))


def test_interrupted_sweep_keeps_finished_rows_and_resumes(folder, capsys):
    path = _write(folder, BASE + """
[sweep]
grid = { "population.seed" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "venues[1].adl.policy" = ["queue", "pro-rata"] }
""", "long.toml")
    out = folder / "interrupted"
    # a new session, so that Ctrl-C can go to the whole process group, as a terminal sends it
    proc = subprocess.Popen([sys.executable, "-m", "riskengine.cli", "sweep", str(path), "--out", str(out),
                             "--executor", "processes", "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(glob.glob(str(out / "runs" / "*" / sweep.PART))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last = err.strip().splitlines()[-1]
    finished = sorted(glob.glob(str(out / "runs" / "*" / sweep.PART)))
    assert last.startswith(f"riskengine: interrupted: {len(finished)} of 24 runs finished")
    assert f"--resume --out {out}" in last
    assert 3 <= len(finished) < 24
    stamps = {}
    for part in finished:  # every row file left is whole
        assert pq.read_table(part).num_rows == 2
        stamps[part] = os.stat(part).st_mtime_ns
    assert not [p for p in out.rglob("*") if p.is_file() and p.name not in (sweep.PART, "plan.parquet", sweep.MANIFEST)]
    assert cli.main(["sweep", str(path), "--out", str(out), "--resume", "--executor", "serial"]) == 0
    assert f"{len(finished)} finished earlier, {24 - len(finished)} to run" in capsys.readouterr().err
    assert len(glob.glob(str(out / "runs" / "*" / sweep.PART))) == 24
    assert {p: os.stat(p).st_mtime_ns for p in finished} == stamps
    assert len(pq.read_table(out / "results.parquet")) == 24 * 2


# ------------------------------------------------------------------ the command line
def test_unreachable_scheduler_is_one_line(folder, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT_S", 1.0)
    out = folder / "unreachable"
    code = cli.main(["sweep", str(_write(folder, BASE + GRID, "u.toml")), "--out", str(out), "--executor", "dask",
                     "--scheduler", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith(f"riskengine: error: --scheduler tcp://127.0.0.1:{port}: cannot reach the Dask scheduler")
    assert not out.exists()


def test_without_dask_the_dask_executor_says_what_to_install(folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask -> ImportError, as when not installed
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    out = folder / "nodask"
    code = cli.main(["sweep", str(_write(folder, BASE + GRID, "n.toml")), "--out", str(out), "--executor", "dask"])
    assert code == 2
    assert capsys.readouterr().err == "riskengine: error: --executor dask needs Dask: pip install 'riskengine[dask]'\n"
    assert not out.exists()


def test_cli_sweep_on_a_local_dask_cluster(serial, folder, capsys):
    path = _write(folder, BASE + GRID, "cli.toml")
    out = folder / "cli"
    proc = run_cli("sweep", str(path), "--out", str(out), "--executor", "dask", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "[12/12] 0 failed" in proc.stderr and "dask executor, 2 workers" in proc.stderr
    assert "designs ranked by liquidations (lower is better" in proc.stdout
    for variant in serial.ranking["variant"]:
        assert variant in proc.stdout
    for name in ("plan.parquet", "results.parquet", "results.csv", "results.md", "failures.parquet",
                 "ranking.csv", "ranking.md"):
        assert (out / name).is_file(), name
    assert len(list((out / "runs").glob(f"run=*/{sweep.PART}"))) == 12
    table = pq.read_table(out / "results.parquet").to_pandas()
    pd.testing.assert_frame_equal(sweep.comparable(table), sweep.comparable(serial.results))
    assert pd.read_csv(out / "ranking.csv")["variant"].tolist() == serial.ranking["variant"].tolist()
    # a second sweep into the same folder is refused, with one line, and changes nothing
    assert cli.main(["sweep", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"riskengine: error: {out}: output folder exists (continue that sweep with "
                                       f"--resume, start afresh with --overwrite, or choose another with --out)\n")
    assert len(list((out / "runs").glob(f"run=*/{sweep.PART}"))) == 12
