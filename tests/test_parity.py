"""Parity: the Cython engine and the plain-Python reference engine agree on random scenarios.

Hypothesis draws the structure (tape segments: walks, crashes, gaps, flat stretches and
same-timestamp bursts; population size and margin-mode mix; every venue parameter; the
liquidity model: infinite or constant depth, or 1-3 depth snapshots of 1-5 knots per side, stress
thinning, observed flow taken out of the tape) and a seed for the numbers. Both engines must produce the same event log (same events, same order,
numbers equal to 1e-9 relative), series and final state, and every run must satisfy the
invariants (money and position conservation, flat accounts never pay, ADL never below zero).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from riskengine.codes import (
    AdlPolicy, AdlPrice, AdlRanking, EventKind, MarginMode, MarkMethod, PartialMode, Takeover,
)
from riskengine.engine import run_raw
from riskengine.invariants import violations
from riskengine.params import EngineParams
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import Backstop

from _scenarios import assert_same_run

S = 1_000_000_000
SEGMENTS = ("walk", "crash", "gap", "flat", "rally", "burst")


def make_tape(rng: np.random.Generator, segments: list[str], with_stream: bool) -> Tape:
    prices, dts = [], []
    price = 100.0
    for kind in segments:
        n = int(rng.integers(1, 30))
        if kind == "walk":
            steps = rng.normal(0, 0.004, n)
        elif kind == "crash":
            steps = rng.normal(-rng.uniform(0.005, 0.03), 0.004, n)
        elif kind == "rally":
            steps = rng.normal(rng.uniform(0.005, 0.02), 0.004, n)
        elif kind == "gap":
            steps = np.zeros(n)
            steps[0] = rng.choice([-1, 1]) * rng.uniform(0.05, 0.3)
        else:  # flat or burst
            steps = np.zeros(n)
        path = price * np.exp(np.cumsum(steps))
        price = float(path[-1])
        prices.append(path)
        if kind == "burst":
            dt = np.zeros(n, dtype=np.int64)
            dt[0] = int(rng.integers(0, 3 * S))
        elif kind == "gap":
            dt = rng.integers(0, 120 * S, n)
        else:
            dt = np.where(rng.random(n) < 0.15, 0, rng.integers(1, 5 * S, n))
        dts.append(dt)
    prices = np.concatenate(prices)
    ts = 1_700_000_000 * S + np.cumsum(np.concatenate(dts)).astype(np.int64)
    stream = None
    if with_stream:
        # an index that lags the tape by one tick and carries its own noise
        smooth = np.concatenate([prices[:1], prices[:-1]]) * np.exp(rng.normal(0, 0.005, len(prices)))
        smooth[: int(rng.integers(0, max(1, len(prices) // 3)))] = np.nan
        stream = smooth
    return Tape.from_arrays(ts, prices, rng.uniform(0, 3, len(prices)), stream)


def make_population(rng: np.random.Generator, n: int, cross_share: float) -> Population:
    side = rng.choice([-1.0, 1.0], n)
    size = side * rng.lognormal(0, 0.8, n)
    size[rng.random(n) < 0.1] = 0.0
    entry = 100.0 * np.exp(rng.normal(0, 0.03, n))
    lev = rng.uniform(1.0, 60.0, n)
    mode = np.where(rng.random(n) < cross_share, MarginMode.CROSS, MarginMode.ISOLATED)
    collateral = np.abs(size) * entry / lev * np.where(mode == MarginMode.CROSS, rng.uniform(1, 3, n), 1.0)
    collateral[size == 0] = rng.uniform(0, 100, int((size == 0).sum()))
    return Population.from_arrays(collateral, size, entry, mode)


T0 = 1_700_000_000 * S  # the first tick of make_tape


@st.composite
def depth_curves(draw) -> dict:
    """1-3 depth snapshots of 1-5 knots per side (some bands equal: flat segments), the first
    possibly after the first tick, at the scale of the random populations."""
    n_snap = draw(st.integers(1, 3))
    k = draw(st.integers(1, 5))
    scale = draw(st.sampled_from([5.0, 50.0, 500.0]))
    offsets = sorted(draw(st.lists(st.integers(0, 200), min_size=n_snap, max_size=n_snap)))
    pct = np.empty((n_snap, 2, k))
    notional = np.empty((n_snap, 2, k))
    for s in range(n_snap):
        for h in range(2):
            pct[s, h] = sorted(draw(st.lists(st.floats(0.05, 8.0), min_size=k, max_size=k, unique=True)))
            steps = draw(st.lists(st.sampled_from([0.0, 0.2, 1.0, 3.0]), min_size=k, max_size=k))
            notional[s, h] = np.cumsum(steps) * scale
    return dict(depth_ts=T0 + np.array(offsets, dtype=np.int64) * S, depth_pct=pct, depth_notional=notional)


@st.composite
def observed_flows(draw) -> dict:
    """0-8 observed liquidation orders around the tape's start (counterfactual replay)."""
    n = draw(st.integers(0, 8))
    ts = sorted(draw(st.lists(st.integers(-20, 200), min_size=n, max_size=n)))
    side = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n))
    notional = draw(st.lists(st.sampled_from([0.0, 10.0, 200.0, 5_000.0]), min_size=n, max_size=n))
    return dict(observed_ts=T0 + np.array(ts, dtype=np.int64) * S, observed_side=np.array(side),
                observed_notional=np.array(notional))


@st.composite
def params_strategy(draw, with_stream: bool) -> EngineParams:
    k = draw(st.integers(1, 3))
    floors = [0.0] + sorted(draw(st.lists(st.floats(10, 500), min_size=k - 1, max_size=k - 1, unique=True)))
    rates = sorted(draw(st.lists(st.floats(0.001, 0.1), min_size=k, max_size=k)))
    methods = list(MarkMethod) if with_stream else [MarkMethod.LAST, MarkMethod.EMA]
    depth = draw(st.sampled_from(["infinite", "constant", "curve", "curve"]))
    liquidity = dict(depth_per_pct=draw(st.sampled_from([5.0, 50.0, 500.0])) if depth == "constant" else math.inf)
    if depth == "curve":
        liquidity.update(draw(depth_curves()))
    if depth != "infinite" and draw(st.booleans()):
        liquidity.update(draw(observed_flows()))
    # the vault's loss threshold: a share of its balance, or an amount that overrides the share
    vault = Backstop(vault_balance=draw(st.sampled_from([0.0, 100.0, 1_000.0])),
                     loss_limit_share=draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])),
                     loss_limit=draw(st.sampled_from([None, None, 0.0, 20.0])))
    return EngineParams(
        mm_floors=floors,
        mm_rates=rates,
        mm_whole_position=draw(st.booleans()),
        mark_method=draw(st.sampled_from(methods)),
        mark_ema_tau_ns=draw(st.floats(1, 300)) * S,
        mark_ema2_tau_ns=draw(st.floats(1, 60)) * S,
        liq_fee_rate=draw(st.sampled_from([0.0, 0.005, 0.0125, 0.05])),
        liq_limit_bankruptcy=draw(st.booleans()),
        liq_surplus_to_fund=draw(st.booleans()),
        liq_price_band=draw(st.sampled_from([math.inf, math.inf, 0.05, 0.01])),
        liq_max_order_notional=draw(st.sampled_from([math.inf, math.inf, 100.0, 1_000.0])),
        partial_mode=draw(st.sampled_from(list(PartialMode))),
        partial_fraction=draw(st.sampled_from([1.0, 0.2, 0.5])),
        partial_threshold=draw(st.sampled_from([0.0, 50.0, 150.0, math.inf])),
        partial_cooldown_ns=draw(st.integers(0, 60)) * S,
        max_liqs_per_step=draw(st.sampled_from([0, 0, 1, 3])),
        latency_ns=draw(st.sampled_from([0, 0, S, 7 * S])),
        takeover=draw(st.sampled_from(list(Takeover))),
        fund_initial=draw(st.sampled_from([0.0, 5.0, 50.0, 1e6])),
        fund_capacity=draw(st.sampled_from([math.inf, 1.0, 0.2])),
        fund_unwind_interval_ns=draw(st.integers(1, 30)) * S,
        fund_unwind_fraction=draw(st.sampled_from([0.25, 1.0])),
        adl_fund_drawdown=draw(st.sampled_from([math.inf, math.inf, 0.3, 0.05])),
        adl_fund_window_ns=draw(st.sampled_from([10 * S, 8 * 3600 * S])),
        backstop_ratio=draw(st.sampled_from([0.0, 0.0, 2 / 3, 0.9])),
        vault_initial=vault.vault_balance,
        vault_unwind_interval_ns=draw(st.integers(1, 30)) * S,
        vault_unwind_fraction=draw(st.sampled_from([0.25, 1.0])),
        vault_loss_limit=vault.loss_threshold if draw(st.integers(0, 5)) else math.inf,  # inf: no threshold
        adl_policy=draw(st.sampled_from(list(AdlPolicy))),
        adl_ranking=draw(st.sampled_from(list(AdlRanking))),
        adl_price=draw(st.sampled_from(list(AdlPrice))),
        adl_on_negative_equity=draw(st.booleans()),
        adl_short_mark_over_entry=draw(st.booleans()),
        adl_rank_interval_ns=draw(st.sampled_from([0, S, 30 * S])),
        adl_risk_power=draw(st.sampled_from([0.0, 1.0, 2.5])),
        max_move=draw(st.sampled_from([0.05, 0.5])),
        impact_half_life_ns=draw(st.floats(0.5, 120)) * S,
        impact_feedback=draw(st.sampled_from([0.0, 0.5, 1.0])),
        impact_stress_k=draw(st.sampled_from([0.0, 0.0, 0.5, 5.0])),
        **liquidity,
        series_interval_ns=draw(st.sampled_from([S, 10 * S])),
    )


#: venue-shaped parameter profiles that force the rarer paths of the waterfall
PROFILES = {
    # IOC limited at the bankruptcy price, remainder taken over by the fund (Binance, Bybit, OKX)
    "takeover": dict(liq_limit_bankruptcy=True, takeover=Takeover.FUND),
    # fund, then the deficit socialized over open positions (Drift)
    "socialize": dict(adl_policy=AdlPolicy.SOCIALIZE, liq_limit_bankruptcy=False),
    # ADL at mark once the fund falls 5% from its peak (OKX's trigger, tightened)
    "drawdown": dict(adl_fund_drawdown=0.05, liq_limit_bankruptcy=True, takeover=Takeover.FUND),
    # partial liquidation by stepping down margin tiers (Bybit, BitMEX, OKX)
    "tier-step": dict(partial_mode=PartialMode.TIER_STEP),
    # a backstop vault that deleverages its inventory at its loss threshold (Hyperliquid)
    "backstop": dict(backstop_ratio=2 / 3, adl_policy=AdlPolicy.QUEUE, adl_price=AdlPrice.PREVIOUS_MARK,
                     adl_on_negative_equity=True),
    # the whole position re-rated at each tier (BitMEX risk-limit steps, OKX position tiers),
    # stepped down by tiers
    "whole-position": dict(mm_whole_position=True, partial_mode=PartialMode.TIER_STEP, liq_limit_bankruptcy=True,
                           takeover=Takeover.FUND),
}


@st.composite
def profiled_cases(draw, profile: str):
    scenario, params = draw(cases())
    return scenario, dataclasses.replace(params, **PROFILES[profile])


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    segments = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=6))
    with_stream = draw(st.booleans())
    n = draw(st.integers(1, 40))
    cross_share = draw(st.sampled_from([0.0, 0.5, 1.0]))
    params = draw(params_strategy(with_stream))
    rng = np.random.default_rng(seed)
    tape = make_tape(rng, segments, with_stream)
    pop = make_population(rng, n, cross_share)
    return Scenario("random", tape, pop), params


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_cython_matches_reference(case):
    scenario, params = case
    cy, _ = run_raw(scenario, params, "cython")
    ref, _ = run_raw(scenario, params, "reference")
    assert_same_run(cy, ref)
    for kind in sorted(set(cy.events["kind"].tolist())):
        event(f"has {EventKind(kind).name}")  # shown by --hypothesis-show-statistics
    event(f"max cascade rounds >= 2: {cy.scalars['max_rounds'] >= 2}")
    assert violations(cy, scenario.population, params) == []
    assert violations(ref, scenario.population, params) == []


@pytest.mark.parametrize("profile", sorted(PROFILES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cython_matches_reference_on_venue_profiles(profile, data):
    scenario, params = data.draw(profiled_cases(profile))
    cy, _ = run_raw(scenario, params, "cython")
    ref, _ = run_raw(scenario, params, "reference")
    assert_same_run(cy, ref)
    for kind in sorted(set(cy.events["kind"].tolist())):
        event(f"has {EventKind(kind).name}")
    assert violations(cy, scenario.population, params) == []


def _exactly(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to the last bit (NaN equals NaN; -0.0 equals 0.0, which arithmetic cannot tell apart)."""
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def assert_bit_identical(a, b) -> None:
    """Every event and series column, the final state and the scalars exactly equal."""
    assert list(a.events) == list(b.events) and list(a.series) == list(b.series)
    for name in a.events:
        assert _exactly(a.events[name], b.events[name]), f"event column {name!r}"
    for name in a.series:
        assert _exactly(a.series[name], b.series[name]), f"series column {name!r}"
    for name in ("collateral", "size", "entry", "status", "socialized"):
        assert _exactly(getattr(a, name), getattr(b, name)), name
    for key, value in a.scalars.items():
        assert np.array_equal(np.float64(value), np.float64(b.scalars[key]), equal_nan=True), key


@st.composite
def liquidity_cases(draw):
    """Random scenarios whose book is always a depth curve (half of them with stress thinning,
    half with observed flow taken out of the tape)."""
    scenario, params = draw(cases())
    liquidity = dict(depth_per_pct=math.inf, **draw(depth_curves()))
    liquidity["impact_stress_k"] = draw(st.sampled_from([0.0, 0.3, 3.0, 30.0]))
    if draw(st.booleans()):
        liquidity.update(draw(observed_flows()))
    else:
        liquidity.update(observed_ts=None, observed_side=None, observed_notional=None)
    return scenario, dataclasses.replace(params, **liquidity)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(liquidity_cases())
def test_depth_curves_stress_and_counterfactual_bit_identical(case):
    """Depth curves (as-of snapshots, flat bands, extrapolation past the last band, the wall),
    stress thinning and counterfactual tapes: the two engines agree to the last bit."""
    scenario, params = case
    cy, _ = run_raw(scenario, params, "cython")
    ref, _ = run_raw(scenario, params, "reference")
    assert_bit_identical(cy, ref)
    event(f"knots {params.book_knots}, snapshots {len(params.book_ts)}, stress {params.impact_stress_k > 0}, "
          f"observed {len(params.observed_ts) > 0}")
    event(f"liquidations: {int(np.isin(cy.events['kind'], [EventKind.LIQUIDATION]).sum() > 0)}")
    assert violations(cy, scenario.population, params) == []


@settings(max_examples=50, deadline=None)
@given(cases())
def test_same_input_gives_bit_identical_output(case):
    scenario, params = case
    a, _ = run_raw(scenario, params, "cython")
    b, _ = run_raw(scenario, params, "cython")
    for name in a.events:
        assert a.events[name].tobytes() == b.events[name].tobytes(), name
    for name in a.series:
        assert a.series[name].tobytes() == b.series[name].tobytes(), name
    assert a.collateral.tobytes() == b.collateral.tobytes()


def test_parity_when_hundreds_cross_in_one_round():
    """A gap that crosses hundreds of accounts in one cascade round (the compiled engine sorts
    them with a radix sort past 64; the reference scans in id order), through every waterfall
    branch the binance-usdm and hyperliquid presets use."""
    from riskengine import ConstantDepth, synthetic

    sc = synthetic.crash_scenario(ticks=1_500, accounts=2_500, seed=21, wick=0.10)
    for design in (synthetic.binance_style(), synthetic.hyperliquid_style()):
        params = design.engine_params(ConstantDepth(2e6), 5.0)
        cy, _ = run_raw(sc, params, "cython")
        ref, _ = run_raw(sc, params, "reference")
        assert_same_run(cy, ref)
        assert violations(cy, sc.population, params) == []
        liq = np.isin(cy.events["kind"], [EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION,
                                           EventKind.BACKSTOP, EventKind.ADL_LIQUIDATION,
                                           EventKind.FUND_TAKEOVER])
        rounds = cy.events["tick"][liq] * 1000 + cy.events["round"][liq]
        assert np.unique(rounds, return_counts=True)[1].max() >= 64, "must exercise the radix sort"
