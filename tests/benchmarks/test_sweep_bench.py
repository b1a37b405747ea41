"""Sweep benchmark (pytest-benchmark; collected only with ``--benchmarks``).

Run::

    python -m pytest tests/benchmarks/test_sweep_bench.py --benchmarks -s

Workload: a 200-run sweep of the embedded default scenario (the synthetic 2025-10-10-shaped
crash, 200,000 ticks, the four default designs) with 50,000 accounts instead of 100,000:
``population.seed`` x 50 and ``liquidity.resilience_half_life_s`` x 4. Each run replays the
tape through four designs (a fraction of a second), so the pool's start-up is a small part of
the whole, as in a real sweep.

Bar (the backtests issue; recorded in ``extra_info`` and printed, never asserted): the whole
sweep on the processes executor with 2 workers takes at most 0.6 x the serial executor's time
(both from the call to the combined tables, pool start-up included). The correctness gate is
asserted: both executors give identical rows (leaving out the wall-clock columns
``elapsed_s`` and ``ticks_per_s``) and no run fails.

The printed line gives each executor's mean run time and its runs' CPU time as a share of their
wall time: well below 100% means the runs waited for a core -- other processes were loading
the machine, and the ratio says little about the executors.

``RISKENGINE_BENCH_SCALE`` (default 1) scales the ticks and accounts (not the number of runs),
for a quick smoke run; figures at another scale are not comparable to the bar.
"""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from riskengine import bench as W
from riskengine import config, sweep

SCALE = float(os.environ.get("RISKENGINE_BENCH_SCALE", "1"))
RUNS_SEEDS = list(range(1, 51))
HALF_LIVES = [10, 20, 30, 60]
ACCOUNTS = 50_000
WORKERS = 2
BAR_RATIO = 0.6


def _loaded(folder) -> config.LoadedConfig:
    base = config.load_default()
    data = base.config.model_dump(exclude_unset=True)
    data["scenario"]["synthetic"]["ticks"] = W.scaled(data["scenario"]["synthetic"].get("ticks", 200_000), SCALE, 1_000)
    data["population"]["accounts"] = W.scaled(ACCOUNTS, SCALE, 1_000)
    data["sweep"] = {"grid": {"population.seed": RUNS_SEEDS, "liquidity.resilience_half_life_s": HALF_LIVES},
                     "rank_by": "bad_debt"}
    return config.parse(data, "sweep benchmark", folder, folder / "sweep-bench.toml")


@pytest.mark.benchmark(group="sweep", disable_gc=False, warmup=False)
def test_sweep_processes_vs_serial(benchmark, tmp_path):
    loaded = _loaded(tmp_path)
    runs = len(sweep.expand(loaded))
    assert runs == 200 or SCALE != 1
    load_before = os.getloadavg()[0]

    start = time.perf_counter()
    serial = sweep.run_sweep(loaded, tmp_path / "serial", executor="serial")
    serial_s = time.perf_counter() - start

    walls: list[float] = []

    def target():
        t = time.perf_counter()
        result = sweep.run_sweep(loaded, tmp_path / "processes", executor="processes", workers=WORKERS,
                                 overwrite=True)
        walls.append(time.perf_counter() - t)
        return result

    pool = benchmark.pedantic(target, rounds=1, iterations=1, warmup_rounds=0)
    processes_s = walls[-1]
    load_after = os.getloadavg()[0]

    # correctness gate: every run finished, and the executors agree row for row
    assert serial.failures.empty and pool.failures.empty
    pd.testing.assert_frame_equal(sweep.comparable(pool.results), sweep.comparable(serial.results))

    ratio = processes_s / serial_s
    per_run_serial = sum(o.seconds for o in serial.outcomes) / len(serial.outcomes)
    per_run_pool = sum(o.seconds for o in pool.outcomes) / len(pool.outcomes)
    # CPU / wall of the runs: below 1 when they waited for a core (other processes on the machine)
    cpu_share_serial = sum(o.cpu_seconds for o in serial.outcomes) / sum(o.seconds for o in serial.outcomes)
    cpu_share_pool = sum(o.cpu_seconds for o in pool.outcomes) / sum(o.seconds for o in pool.outcomes)
    tape_loads = sum(o.tape_loads for o in pool.outcomes)
    benchmark.extra_info.update({
        **W.machine(), "scale": SCALE, "runs": runs, "designs": 4, "accounts": loaded.config.population.accounts,
        "ticks": loaded.config.scenario.synthetic.ticks, "workers": WORKERS,
        "serial_s": serial_s, "processes_s": processes_s, "ratio": ratio,
        "run_s_serial_mean": per_run_serial, "run_s_worker_mean": per_run_pool,
        "cpu_share_serial": cpu_share_serial, "cpu_share_workers": cpu_share_pool,
        "tape_loads_processes": tape_loads, "loadavg_before": load_before, "loadavg_after": load_after,
        "bar": f"processes_s <= {BAR_RATIO} x serial_s", "bar_met": bool(ratio <= BAR_RATIO),
    })
    print(f"\n[bench] sweep {runs} runs x 4 designs ({loaded.config.population.accounts:,} accounts x "
          f"{loaded.config.scenario.synthetic.ticks:,} ticks): serial {serial_s:.1f} s "
          f"({per_run_serial:.3f} s/run, CPU {cpu_share_serial:.0%} of wall), processes x{WORKERS} "
          f"{processes_s:.1f} s ({per_run_pool:.3f} s/run in a worker, CPU {cpu_share_pool:.0%} of wall, tape "
          f"built {tape_loads}x) = {ratio:.2f} x serial "
          f"[bar <= {BAR_RATIO}: {'MET' if ratio <= BAR_RATIO else 'MISSED'}]; load average "
          f"{load_before:.2f} before, {load_after:.2f} after", flush=True)
