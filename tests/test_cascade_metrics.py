"""Cascade metrics in the result table (issue 5): volume share, rounds, time to the last crossing."""

from __future__ import annotations

import numpy as np
import pytest

from riskengine import ConstantDepth, run, venues
from riskengine.codes import EventKind
from riskengine.scenario import Population, Scenario, Tape

S = 1_000_000_000


def _ladder(depth: float):
    """Longs stacked 1% apart in liquidation price under a tape that falls 4% and stays there:
    on a thin book each liquidation's impact crosses the next rung (extra rounds in one tick)."""
    prices = np.array([100.0, 99.0, 96.0, 96.0, 96.0, 96.0])
    tape = Tape.from_arrays((np.arange(len(prices)) * 10 * S).astype(np.int64), prices, np.full(len(prices), 5.0))
    n = 12
    entry = np.full(n, 100.0)
    size = np.full(n, 50.0)
    # equity at 100 = collateral; crosses MM (0.5% of notional here) when price falls ~ (col/5000 - 0.005)
    collateral = 5000.0 * (0.035 + 0.01 * np.arange(n)) + 0.005 * 5000.0
    pop = Population.from_arrays(collateral, size, entry)
    design = venues.build({"name": "simple", "margin": {"floors": [0.0], "rates": [0.005]},
                           "fund": {"initial": 1e9}, "adl": {"policy": "none"}})
    return run(Scenario("ladder", tape, pop), design, ConstantDepth(depth, half_life_s=1e6))


def test_columns_match_the_event_log():
    result = _ladder(2e4)
    row = result.table.iloc[0]
    raw = result.raw[0]
    ev = raw.events
    liq = np.isin(ev["kind"], [EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION, EventKind.BACKSTOP,
                               EventKind.ADL_LIQUIDATION, EventKind.FUND_TAKEOVER])
    assert liq.sum() > 0
    tape_notional = float(np.sum(np.array([100.0, 99.0, 96.0, 96.0, 96.0, 96.0]) * 5.0))
    assert row["liquidation_volume_share"] == pytest.approx(ev["notional"][liq].sum() / tape_notional, rel=1e-12)
    pairs = {(int(t), int(r)) for t, r in zip(ev["tick"][liq], ev["round"][liq])}
    assert row["cascade_rounds"] == len(pairs)
    per_tick = {}
    for t, _ in pairs:
        per_tick[t] = per_tick.get(t, 0) + 1
    assert row["max_cascade_rounds"] == max(per_tick.values())
    assert row["last_liquidation_s"] == pytest.approx((ev["ts"][liq][-1] - ev["ts"][liq][0]) / S
                                                      + row["first_liquidation_s"])
    assert row["cascade_duration_s"] == pytest.approx(row["last_liquidation_s"] - row["first_liquidation_s"])


def test_thin_book_cascades_in_more_rounds_than_a_thick_one():
    thin = _ladder(2e3).table.iloc[0]
    thick = _ladder(1e13).table.iloc[0]
    assert thick["sim_drawdown"] == pytest.approx(thick["tape_drawdown"], rel=1e-6)
    assert thin["liquidations"] > thick["liquidations"]
    assert thin["cascade_rounds"] > thick["cascade_rounds"]
    assert thin["max_cascade_rounds"] > 1 and thick["max_cascade_rounds"] == 1
    assert thin["amplification"] > 1.0


def test_no_liquidation_gives_empty_cascade():
    tape = Tape.from_arrays(np.array([0, S], dtype=np.int64), [100.0, 100.5], [1.0, 1.0])
    pop = Population.from_arrays([1e6], [1.0], [100.0])
    row = run(Scenario("calm", tape, pop), venues.preset("hyperliquid")).table.iloc[0]
    assert row["cascade_rounds"] == 0 and row["max_cascade_rounds"] == 0
    assert row["liquidation_volume_share"] == 0.0
    assert np.isnan(row["last_liquidation_s"]) and np.isnan(row["cascade_duration_s"])


def test_adl_ratio_and_delay_match_the_event_log():
    from riskengine import synthetic

    scen = synthetic.crash_scenario(ticks=20_000, accounts=3_000, seed=5)
    result = run(scen, synthetic.hyperliquid_style(), ConstantDepth(2e5))
    row, ev = result.table.iloc[0], result.raw[0].events
    adl = ev["kind"] == EventKind.ADL_FILL
    liq = np.isin(ev["kind"], [EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION, EventKind.BACKSTOP,
                               EventKind.ADL_LIQUIDATION, EventKind.FUND_TAKEOVER]) & (ev["account"] >= 0)
    assert adl.any()
    assert row["adl_to_liquidated"] == pytest.approx(ev["notional"][adl].sum() / ev["notional"][liq].sum(), rel=1e-12)
    assert row["first_adl_delay_s"] == pytest.approx((ev["ts"][adl][0] - ev["ts"][liq][0]) / S, abs=1e-9)
    assert row["first_adl_delay_s"] >= 0
