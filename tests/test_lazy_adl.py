"""Lazy pro-rata bursts (issue 14, ``docs/design/weighted-adl.md``).

Pro-rata by size (and by notional, the same split) scales every winner by one factor per ADL
order, so the engines split a round's orders in bursts: one factor and per-unit sums per order,
applied to each winner once. Both engines do it the same way (the parity suites compare them to
the last bit); here the bursts are shown to run, and to give the order-by-order split's results
to rounding, on the crash workload where every liquidation of the ADL waves fills thousands of
winners.
"""

from __future__ import annotations

import numpy as np
import pytest

from riskengine import bench
from riskengine._engine import run_portfolio
from riskengine.engine import run_raw
from riskengine.runlog import RawRun

from _canonical import order_by_order
from _scenarios import assert_same_run


def _as_portfolio(w: bench.Workload):
    """The single-instrument workload in the portfolio engine's arguments (one position each)."""
    tape, pop = w.scenario.tape, w.scenario.population
    n = len(pop.size)
    stream = tape.stream if tape.stream is not None else np.empty(0)
    return (tape.ts, np.zeros(len(tape.ts), dtype=np.int32), tape.price, stream, np.arange(n, dtype=np.int64),
            pop.collateral, np.arange(n + 1, dtype=np.int64), np.zeros(n, dtype=np.int32), pop.size, pop.entry,
            [w.params])


@pytest.mark.parametrize("policy", ["pro-rata", "levered-pro-rata", "pro-rata-equity"])
def test_bursts_run_and_give_the_order_by_order_split(policy):
    w = bench.crash(ticks=20_000, accounts=2_000, adl=policy)
    out = run_portfolio(*_as_portfolio(w), index_stats=True)
    stats = out.pop("index_stats")
    assert stats["adl_bursts"] > 0
    assert stats["adl_burst_orders"] > 2 * stats["adl_bursts"], stats  # several orders per burst
    lazy, _ = run_raw(w.scenario, w.params, "cython")
    assert lazy.scalars["adl_fills"] > 100 * stats["adl_burst_orders"]  # each order fills many winners
    with order_by_order():
        spec, _ = run_raw(w.scenario, w.params, "reference")
    assert lazy.scalars["adl_fills"] == spec.scalars["adl_fills"]
    assert_same_run(lazy, spec)
    # the sums are associated differently: the bursts did change bits
    assert not np.array_equal(lazy.size, spec.size)


def test_the_queue_and_the_other_weighted_policies_run_no_burst():
    for policy in ("queue", "pro-rata-pnl"):
        w = bench.crash(ticks=20_000, accounts=2_000, adl=policy)
        stats = run_portfolio(*_as_portfolio(w), index_stats=True)["index_stats"]
        assert stats["adl_bursts"] == 0 == stats["adl_burst_orders"], policy


def test_the_portfolio_form_runs_the_same_as_the_single_instrument_engine():
    """The test above reads its counts from the portfolio entry point: the same run."""
    w = bench.crash(ticks=20_000, accounts=2_000, adl="pro-rata")
    out = run_portfolio(*_as_portfolio(w))
    single, _ = run_raw(w.scenario, w.params, "cython")
    portfolio = RawRun(**{k: v for k, v in out.items() if k in RawRun.__dataclass_fields__})
    for name in single.events:
        assert np.array_equal(single.events[name], portfolio.events[name], equal_nan=True), name
