"""Invariants on larger synthetic crashes, for many design variants (the compiled engine).

DESIGN.md: money and position conservation, no loss charged to an account without a position,
ADL never below zero, and the same input gives bit-identical output.
"""

from __future__ import annotations

import numpy as np
import pytest

from riskengine import ConstantDepth, synthetic, venues
from riskengine.codes import EventKind
from riskengine.engine import run_raw
from riskengine.invariants import money_total, violations


@pytest.fixture(scope="module")
def crash():
    return synthetic.crash_scenario(ticks=60_000, accounts=30_000, seed=11)


BIN = synthetic.binance_style()
HL = synthetic.hyperliquid_style()
VARIANTS = {
    "binance": BIN,
    "hyperliquid": HL,
    "binance-no-adl": BIN.with_overrides({"adl": {"policy": "none"}}),
    "binance-small-fund-at-mark": BIN.with_overrides({"fund": {"initial": 1_000.0}, "adl": {"price": "mark"}}),
    "binance-no-band-no-takeover": BIN.with_overrides({"liquidation": {"price_band": None},
                                                       "fund": {"takeover": False}}),
    "hyperliquid-last-mark": HL.with_overrides({"mark": {"method": "last"}}),
    "hyperliquid-exact-ranking": HL.with_overrides({"adl": {"rank_interval_s": 0.0}}),
    "latency-cap-partial": BIN.with_overrides({"liquidation": {
        "latency_s": 2.0, "max_per_step": 5, "partial": "fraction", "partial_fraction": 0.25,
        "partial_threshold": 50_000.0, "cooldown_s": 10.0}}),
    "vault-loss-limit": HL.with_overrides({"backstop": {"loss_limit": 10_000.0, "vault_balance": 50_000.0,
                                                        "ratio": 0.9}}),
    # the default threshold, the vault's whole balance: its inventory is deleveraged on the way down
    "hyperliquid-small-vault": HL.with_overrides({"backstop": {"vault_balance": 20_000.0}}),
    "tier-step-surplus": venues.preset("bybit").with_overrides({
        "margin": {"floors": (0.0, 300_000.0, 800_000.0), "rates": (0.004, 0.005, 0.0065)},
        "fund": {"initial": 1e5}}),
    "okx-drawdown": venues.preset("okx").with_overrides({"fund": {"initial": 2e5}}),
    "dydx-band": venues.preset("dydx-v4").with_overrides({"mark": {"method": "index-ema-basis"},
                                                          "fund": {"initial": 1e5}}),
}


@pytest.mark.parametrize("depth", [2e6, 2e7])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_invariants_hold(crash, variant, depth):
    params = VARIANTS[variant].engine_params(ConstantDepth(depth), 5.0)
    raw, _ = run_raw(crash, params, "cython")
    assert violations(raw, crash.population, params) == []
    liquidated = np.isin(raw.events["kind"], [EventKind.LIQUIDATION, EventKind.BACKSTOP,
                                              EventKind.ADL_LIQUIDATION, EventKind.PARTIAL_LIQUIDATION])
    assert liquidated.sum() > 1_000  # the crash really liquidates: the checks are not vacuous


def test_pro_rata_invariants():
    """Pro-rata ADL fills every profitable opposite account on every ADL'd order, so the work
    grows with accounts x orders (the log, one row per winner per tick, does not): a smaller
    crash keeps it quick."""
    sc = synthetic.crash_scenario(ticks=20_000, accounts=3_000, seed=12)
    for depth in (2e5, 2e6):
        params = BIN.with_overrides({"adl": {"policy": "pro-rata"}, "fund": {"initial": 1e4}}).engine_params(ConstantDepth(depth), 5.0)
        raw, _ = run_raw(sc, params, "cython")
        assert violations(raw, sc.population, params) == []
        assert (raw.events["kind"] == EventKind.ADL_FILL).sum() > 100


def test_socialized_loss_invariants():
    """Socialization charges every open position on every deficit (O(accounts) each), so a
    smaller crash keeps it quick."""
    sc = synthetic.crash_scenario(ticks=20_000, accounts=3_000, seed=13)
    drift = venues.preset("drift").with_overrides({"mark": {"method": "index-ema-basis"}})
    for depth in (2e5, 2e6):
        params = drift.engine_params(ConstantDepth(depth), 5.0)
        raw, _ = run_raw(sc, params, "cython")
        assert violations(raw, sc.population, params) == []
        assert (raw.events["kind"] == EventKind.SOCIALIZED_LOSS).sum() > 10
        assert raw.socialized.sum() > 0


def test_money_total_detects_a_leak(crash):
    """The conservation check can fail: moving money out of the ledger is caught."""
    params = BIN.engine_params(ConstantDepth(2e6), 5.0)
    raw, _ = run_raw(crash, params, "cython")
    assert violations(raw, crash.population, params) == []
    # tolerance is 1e-9 of the gross notional (~$1B here): a $100 leak must be caught
    raw.collateral[np.flatnonzero(raw.size)[0]] += 100.0
    assert any("money not conserved" in v for v in violations(raw, crash.population, params))
    raw.collateral[np.flatnonzero(raw.size)[0]] -= 100.0
    raw.scalars["ext_pos"] += 1e-3
    assert any("positions not conserved" in v for v in violations(raw, crash.population, params))


def test_thin_book_cascade_is_deeper_than_thick(crash):
    last = HL.with_overrides({"mark": {"method": "last"}})
    thin, _ = run_raw(crash, last.engine_params(ConstantDepth(5e5, feedback=1.0), 5.0), "cython")
    thick, _ = run_raw(crash, last.engine_params(ConstantDepth(5e7, feedback=1.0), 5.0), "cython")
    assert thin.scalars["sim_max_drawdown"] > thick.scalars["sim_max_drawdown"]
    assert len(thin.events["ts"]) > len(thick.events["ts"])


def test_bit_identical_reruns(crash):
    params = HL.engine_params(ConstantDepth(2e6), 5.0)
    a, _ = run_raw(crash, params, "cython")
    b, _ = run_raw(crash, params, "cython")
    for name in a.events:
        assert a.events[name].tobytes() == b.events[name].tobytes(), name
    for name in a.series:
        assert a.series[name].tobytes() == b.series[name].tobytes(), name
    assert money_total(a) == money_total(b)
