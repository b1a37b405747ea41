"""Where the quiet workload's time goes (issue 14): ms per phase of the compiled run, and its
ratio to ``np.minimum.accumulate`` measured as ``../shared/tools/perf_ratios.py`` does.

Run from a worktree (not collected by pytest)::

    PYTHONPATH=$PWD python tests/benchmarks/quiet_breakdown.py [LABEL] [RUNS]

Phases (``run_engine(..., phases=True)``, :data:`riskengine._engine.PHASES`): ``init`` (work
arrays, account copies), ``index`` (the liquidation index build), ``loop`` (the replay),
``results`` (event log, series, scalars), ``free``; ``call`` is the Python side of
``run_engine`` outside them. Each figure is the least over RUNS runs (default 5).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from riskengine._engine import run_engine
from riskengine.bench import quiet
from riskengine.engine import event_budget, run_raw


def _best(f, k: int) -> float:
    best = float("inf")
    for _ in range(k):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "quiet"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    w = quiet()
    tape, pop = w.scenario.tape, w.scenario.population
    stream = np.empty(0, dtype=np.float64)
    rows = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = run_engine(tape.ts, tape.price, stream, pop.collateral, pop.size, pop.entry, w.params,
                         event_budget(), phases=True)
        total = time.perf_counter() - t0
        phases = {k: v / 1e9 for k, v in out["phase_ns"].items()}
        rows.append({**phases, "call": total - sum(phases.values()), "total": total})
    least = {k: min(r[k] for r in rows) for k in rows[0]}
    scan = _best(lambda: np.minimum.accumulate(tape.price), 5)
    eng = _best(lambda: run_raw(w.scenario, w.params, "cython"), 3)
    print(f"{label}: " + "  ".join(f"{k} {v * 1e3:.1f}" for k, v in least.items()) + f" ms (least of {runs})")
    print(f"{label}: quiet {eng / scan:.2f}x a NumPy scan (engine {eng * 1e3:.0f} ms, scan {scan * 1e3:.1f} ms), "
          f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
