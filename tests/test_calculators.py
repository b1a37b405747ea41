"""riskengine.calculators: worked examples of ../shared/reference/venue-mechanisms.md §6 and
property tests of the liquidation-price formulas against their defining equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from riskengine import calculators as calc
from riskengine._calc import py_hyperliquid_mark, py_median3, py_weighted_median
from riskengine._margin import (
    py_bankruptcy_price,
    py_binance_liquidation_price,
    py_hyperliquid_liquidation_price,
    py_liquidation_price,
)
from riskengine._mark import py_ema

# Binance BTCUSDT brackets announced 2021-03-18 (reference §1.1, [DOC S7])
BINANCE_2021 = (
    [0, 50e3, 250e3, 1e6, 10e6, 20e6, 50e6, 100e6, 200e6, 300e6],
    [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50],
)
# Binance BTCUSDT 2025 brackets 1-4 (reference §1.1, [3P S6, S9])
BINANCE_2025 = ([0, 300e3, 800e3, 3e6], [0.004, 0.005, 0.0065, 0.01])
HL_BTC = calc.hyperliquid_tiers([0, 150e6], [40, 20])
HL_ETH = calc.hyperliquid_tiers([0, 100e6], [25, 15])
E14_MIDS = {"mexc": 9_990, "binance": 10_012, "bybit": 10_014, "okx": 10_018, "gate": 10_040}


def cents(x: float) -> float:
    return round(x, 2)


def mm(notional: float, floors, rates) -> float:
    """Plain-Python tiered maintenance margin (reference §0), independent of the package."""
    cum, k = 0.0, 0
    for j in range(1, len(floors)):
        if floors[j] > notional:
            break
        cum += floors[j] * (rates[j] - rates[j - 1])
        k = j
    return notional * rates[k] - cum


# --- worked examples ------------------------------------------------------------------------


class TestBinanceWorkedExamples:
    def test_e1_cross_one_way_short(self):
        lp = calc.binance_liquidation_price(10.72, (-0.005, 9_451.53), 1.3, 0.47, brackets=BINANCE_2021)
        assert cents(lp) == 11_383.99
        assert lp == pytest.approx(57.14765 / 0.00502, rel=1e-12)

    def test_e1_mapping_form_and_tmm1(self):
        tmm1 = calc.maintenance_margin(200 * 1, ([0], [0.0065]))  # the other contract's MM
        assert tmm1 == pytest.approx(1.3)
        lp = calc.binance_liquidation_price(10.72, {"BOTH": (-0.005, 9_451.53)}, tmm1, 0.47, brackets=([0], [0.004]))
        assert cents(lp) == 11_383.99

    def test_e2_cross_one_way_long(self):
        lp = calc.binance_liquidation_price(10.72, (1, 199.53), 0.19, -0.06, brackets=([0], [0.0065]))
        assert lp == pytest.approx((10.72 - 0.19 - 0.06 - 199.53) / (0.0065 - 1), rel=1e-12)
        assert cents(lp) == 190.30  # Binance printed 190.29, "difference due to rounding"
        assert abs(lp - 190.29) < 0.01

    def test_e7_maintenance_margin(self):
        assert cents(calc.maintenance_margin(264_000, BINANCE_2021)) == 1_340.00
        assert calc.maintenance_margin(250_000, BINANCE_2021) == pytest.approx(1_200.0)

    def test_e8a_isolated_long(self):
        lp = calc.binance_liquidation_price(10_000, (2, 100_000), brackets=BINANCE_2025, margin_type="isolated")
        assert cents(lp) == 95_381.53
        assert 2 * lp < 300_000  # tier 1 at the liquidation price
        assert calc.bankruptcy_price(10_000, 2, 100_000) == 95_000.0

    def test_e8b_isolated_short(self):
        lp = calc.binance_liquidation_price(50_000, (-5, 100_000), brackets=BINANCE_2025, margin_type="isolated")
        assert cents(lp) == 109_512.44
        assert 300_000 <= 5 * lp < 800_000  # tier 2 at the liquidation price

    def test_e8_matches_the_engine_kernel(self):
        for col, q in ((10_000, 2), (50_000, -5)):
            lp = calc.binance_liquidation_price(col, (q, 100_000), brackets=BINANCE_2025, margin_type="isolated")
            assert lp == pytest.approx(py_liquidation_price(col, q, 100_000, *BINANCE_2025), rel=1e-12)

    def test_e9_hedge_mode_cross(self):
        legs = {"LONG": (1, 100_000), "SHORT": (0.5, 102_000)}
        lp = calc.binance_liquidation_price(20_000, legs, brackets=BINANCE_2025)
        assert cents(lp) == 58_704.45
        assert lp == pytest.approx((20_000 - 100_000 + 51_000) / (0.004 + 0.002 - 1 + 0.5), rel=1e-12)
        # one price for both legs: account equity = the sum of both legs' maintenance margins
        equity = 20_000 + (lp - 100_000) - 0.5 * (lp - 102_000)
        assert equity == pytest.approx(mm(lp, *BINANCE_2025) + mm(0.5 * lp, *BINANCE_2025), rel=1e-12)

    def test_e9_short_leg_as_binance_reports_it(self):
        a = calc.binance_liquidation_price(20_000, {"LONG": (1, 100_000), "SHORT": (0.5, 102_000)}, brackets=BINANCE_2025)
        b = calc.binance_liquidation_price(20_000, {"long": (1, 100_000), "short": (-0.5, 102_000)}, brackets=BINANCE_2025)
        assert a == b

    def test_bracket_iteration_moves_down_a_bracket(self):
        # long 4 @ 100,000 starts in bracket 2 (notional 400k); at the price it is in bracket 1
        price, iterations = py_binance_liquidation_price(150_000, 0, 0, 4, 100_000, 0, 0, 0, 0, *BINANCE_2025)
        assert iterations == 2
        assert 4 * price < 300_000
        assert price == pytest.approx((150_000 - 400_000) / (4 * 0.004 - 4), rel=1e-12)
        walked, flag = py_binance_liquidation_price(150_000, 0, 0, 4, 100_000, 0, 0, 0, 0, *BINANCE_2025, max_iter=0)
        assert flag == -1
        assert walked == pytest.approx(price, rel=1e-12)

    def test_bracket_iteration_moves_up_brackets(self):
        # short 20 @ 10,000 (200k, bracket 1) with a wide margin: liquidated in bracket 3
        lp = calc.binance_liquidation_price(1_000_000, (-20, 10_000), brackets=BINANCE_2025, margin_type="isolated")
        assert 800_000 <= 20 * lp < 3e6
        assert lp == pytest.approx((1_000_000 + 1_500 + 200_000) / (20 * 0.0065 + 20), rel=1e-12)


class TestHyperliquidWorkedExamples:
    def test_e10_isolated_long(self):
        lp = calc.hyperliquid_liquidation_price(10_000, 1, 100_000, HL_BTC, mode="isolated")
        assert cents(lp) == 91_139.24
        assert lp - 90_000 == pytest.approx(0.0125 * lp)

    def test_e11_cross_long(self):
        assert cents(calc.hyperliquid_liquidation_price(20_000, 1, 100_000, HL_BTC)) == 81_012.66

    def test_e11_independent_of_leverage_and_of_where_it_is_measured(self):
        # the same account seen at mark 95,000: account value 15,000
        assert calc.hyperliquid_liquidation_price(15_000, 1, 95_000, HL_BTC) == pytest.approx(81_012.658, abs=1e-3)

    def test_e12_backstop(self):
        p = calc.backstop_price(10_000, 1, 100_000, HL_BTC, mode="isolated")
        assert cents(p) == 90_756.30
        assert cents(p - 90_000) == 756.30
        assert cents(calc.maintenance_margin(p, HL_BTC)) == 1_134.45

    def test_e13_tiered_mm(self):
        assert calc.maintenance_margin(200e6, HL_BTC) == pytest.approx(3_125_000)
        assert cents(calc.maintenance_margin(120e6, HL_ETH)) == 2_666_666.67

    def test_tier_at_the_liquidation_price(self):
        # 2,000 BTC long @ 100,000 (200M, tier 2): at the price it is in tier 1 (< 150M)
        margin = 60e6
        lp, iterations = py_hyperliquid_liquidation_price(margin, 2_000, 100_000, *HL_BTC)
        assert iterations == 2
        assert 2_000 * lp < 150e6
        assert lp == pytest.approx(100_000 - margin / 2_000 / (1 - 1 / 80) + 2_000 * 100_000 / 80 / 2_000 / (1 - 1 / 80))
        assert lp == pytest.approx(py_liquidation_price(margin, 2_000, 100_000, *HL_BTC), rel=1e-12)

    def test_e14_weighted_median_and_mark(self):
        assert calc.weighted_median(list(E14_MIDS.values()), [1, 3, 2, 2, 1]) == 10_014
        assert calc.median3(10_010, 10_016, 10_030) == 10_016
        assert calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, 10_030, E14_MIDS) == 10_016

    def test_e14_mark_from_sequences(self):
        mark = calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, 10_030, [9_990, 10_012, 10_014, 10_018, 10_040], [1, 3, 2, 2, 1])
        assert mark == 10_016

    def test_e14_ema_basis_feeds_the_mark(self):
        basis = py_ema([20.0, 30.0], [3.0, 3.0], 150.0)[-1]
        assert cents(basis) == 25.05
        # c1 = 10,025.05 is now the largest input; the mark is still the book's 10,016
        assert calc.hyperliquid_mark(10_000, basis, 10_010, 10_016, 10_030, E14_MIDS) == 10_016

    def test_fallback_two_components_add_the_30s_ema(self):
        # no last trade on HL -> component 2 missing; c1 = 10,020, c3 = 10,014, 30 s EMA 10,017
        assert calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, None, E14_MIDS, fallback_ema=10_017) == 10_017
        # no external perp mids -> component 3 missing; median(10,020, 10,016, 10,012)
        assert calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, 10_030, fallback_ema=10_012) == 10_016
        assert calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, 10_030, fallback_ema=10_050) == 10_020
        # oracle missing -> component 1 missing
        assert calc.hyperliquid_mark(None, 20, 10_010, 10_016, 10_030, E14_MIDS, fallback_ema=10_015) == 10_015

    def test_fallback_ignored_when_all_three_exist(self):
        assert calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, 10_030, E14_MIDS, fallback_ema=1.0) == 10_016

    def test_missing_venues_drop_out_of_the_weighted_median(self):
        mids = dict(E14_MIDS, binance=None)  # 9,990(1) 10,014(2) 10,018(2) 10,040(1): half = 3
        assert calc.weighted_median([9_990, math.nan, 10_014, 10_018, 10_040], [1, 3, 2, 2, 1]) == 10_014
        assert calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, 10_030, mids) == 10_016

    def test_inferred_degenerate_cases(self):
        # two components without a fallback EMA: their mean; one: itself; none: the fallback EMA
        assert calc.hyperliquid_mark(10_000, 20, 10_010, 10_016, None, E14_MIDS) == pytest.approx(10_017)
        assert calc.hyperliquid_mark(10_000, 20) == 10_020
        assert math.isnan(calc.hyperliquid_mark(None, None))
        assert calc.hyperliquid_mark(None, None, fallback_ema=10_001) == 10_001


class TestOtherWorkedExamples:
    def test_e18_dydx_isolated(self):
        p = calc.dydx_isolated_liquidation_price(1_000, -3, 3_000, 0.05)
        assert cents(p) == 3_174.60
        assert p == pytest.approx(10_000 / 3.15, rel=1e-14)

    def test_e18_dydx_deleveraging_at_bankruptcy(self):
        # B short 500 @ $1 with $100; A long 500 @ $1 with $100; price -> $2
        b_equity = 100 - 500 * (2 - 1)
        assert b_equity == -400
        p_bk = calc.bankruptcy_price(100, -500, 1.0)
        assert cents(p_bk) == 1.20
        assert 100 - 500 * (p_bk - 1) == pytest.approx(0.0)  # B -> 0
        assert 500 * (p_bk - 1) == pytest.approx(100.0)  # A +$100
        assert py_bankruptcy_price(100, -500, 1.0) == p_bk

    def test_e19_binance_coinm_mark(self):
        assert calc.binance_coinm_mark(10_000, 0.0001, 4 * 3600, 8, 10_020) == 10_008
        p1 = 10_000 * (1 + 0.0001 * 0.5)
        assert cents(p1) == 10_000.50
        # hours as the unit; a last price below P1 makes P1 the median
        assert calc.binance_coinm_mark(10_000, 0.0001, 4, 8, 10_000.2, funding_interval=8) == pytest.approx(10_000.5)

    def test_bankruptcy_is_zero_equity(self):
        assert calc.bankruptcy_price(10_000, 2, 100_000) == 95_000
        assert calc.bankruptcy_price(50_000, -5, 100_000) == 110_000


# --- kernels --------------------------------------------------------------------------------


def test_median3_all_orders():
    for a, b, c in ((1, 2, 3), (1, 3, 2), (2, 1, 3), (2, 3, 1), (3, 1, 2), (3, 2, 1), (2, 2, 1), (1, 1, 1)):
        assert py_median3(a, b, c) == sorted((a, b, c))[1]


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(0.01, 100)), min_size=1, max_size=40))
def test_weighted_median_convention(pairs):
    values = [v for v, _ in pairs]
    weights = [w for _, w in pairs]
    got = py_weighted_median(values, weights)
    order = sorted(range(len(values)), key=lambda i: values[i])
    cum, half = 0.0, 0.5 * sum(weights)
    # the smallest value whose cumulative weight (through all equal values) reaches half
    expected = None
    for i in order:
        cum += weights[i]
        if cum >= half:
            expected = values[i]
            break
    assert expected is not None
    assert got == expected or math.isclose(
        sum(w for v, w in pairs if v <= got), half, rel_tol=1e-9
    )  # only cumulative-sum rounding may move it


def test_weighted_median_large_input_uses_the_heap():
    rng = np.random.default_rng(3)
    v = rng.normal(size=1_001)
    assert py_weighted_median(v, np.ones_like(v)) == np.median(v)


def test_hyperliquid_mark_kernel_without_perps():
    assert py_hyperliquid_mark(100, 1, 99, 103, 102, [], [], 50) == 101


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: calc.maintenance_margin(-1, BINANCE_2025), "notional"),
        (lambda: calc.maintenance_margin(1, ([1, 2], [0.1, 0.2])), "tiers"),
        (lambda: calc.maintenance_margin(1, ([0, 2], [0.2, 0.1])), "tiers"),
        (lambda: calc.maintenance_margin(1, ([0, 0], [0.1, 0.2])), "tiers"),
        (lambda: calc.maintenance_margin(1, ([0], [1.0])), "tiers"),
        (lambda: calc.maintenance_margin(1, [0, 0.1]), "tiers"),
        (lambda: calc.bankruptcy_price(1, 0, 1), "size"),
        (lambda: calc.bankruptcy_price(math.nan, 1, 1), "collateral"),
        (lambda: calc.liquidation_price(1, 1, -5, BINANCE_2025), "entry"),
        (lambda: calc.liquidation_price(1, 1, 5, BINANCE_2025, ratio=0), "ratio"),
        (lambda: calc.liquidation_price(1, 1, 5, BINANCE_2025, other_maintenance=-1), "other_maintenance"),
        (lambda: calc.binance_liquidation_price(1, (0, 1), brackets=BINANCE_2025), "positions"),
        (lambda: calc.binance_liquidation_price(1, {"BOTH": (1, 1), "LONG": (1, 1)}, brackets=BINANCE_2025), "positions"),
        (lambda: calc.binance_liquidation_price(1, {"LONG": (-1, 1)}, brackets=BINANCE_2025), "positions['LONG'] size"),
        (lambda: calc.binance_liquidation_price(1, {"UP": (1, 1)}, brackets=BINANCE_2025), "positions"),
        (lambda: calc.binance_liquidation_price(1, {"BOTH": (1, 0)}, brackets=BINANCE_2025), "positions['BOTH'] entry"),
        (lambda: calc.binance_liquidation_price(1, "BTC", brackets=BINANCE_2025), "positions"),
        (lambda: calc.binance_liquidation_price(1, (1, 1), brackets=([0], [0.1]), margin_type="portfolio"), "margin_type"),
        (lambda: calc.binance_liquidation_price(1, (1, 1), 0.0, 1.0, brackets=BINANCE_2025, margin_type="isolated"), "other_upnl"),
        (
            lambda: calc.binance_liquidation_price(
                1, {"LONG": (1, 1), "SHORT": (1, 1)}, brackets=BINANCE_2025, margin_type="isolated"
            ),
            "positions",
        ),
        (lambda: calc.binance_liquidation_price(math.inf, (1, 1), brackets=BINANCE_2025), "wallet_balance"),
        (lambda: calc.hyperliquid_liquidation_price(1, 1, 1, HL_BTC, mode="portfolio"), "mode"),
        (lambda: calc.hyperliquid_liquidation_price(1, 1, 1, HL_BTC, mode="isolated", other_maintenance=1), "other_maintenance"),
        (lambda: calc.hyperliquid_liquidation_price(1, 1, 0, HL_BTC), "price"),
        (lambda: calc.hyperliquid_tiers([0, 1], [10, 0]), "max_leverages"),
        (lambda: calc.backstop_price(1, 1, 1, HL_BTC, ratio=1.5), "ratio"),
        (lambda: calc.dydx_isolated_liquidation_price(1, 1, 1, 1.0), "mmf"),
        (lambda: calc.dydx_isolated_liquidation_price(1, 0, 1, 0.05), "size"),
        (lambda: calc.weighted_median([1, 2], [1, -1]), "weights"),
        (lambda: calc.weighted_median([1, 2], [1]), "values, weights"),
        (lambda: calc.weighted_median([1, 2], [0, 0]), "weights"),
        (lambda: calc.hyperliquid_mark(-1, 0), "oracle"),
        (lambda: calc.hyperliquid_mark(1, 0, perp_mids={"dydx": 1.0}), "perp_mids"),
        (lambda: calc.hyperliquid_mark(1, 0, perp_mids=[1.0, 2.0]), "perp_weights"),
        (lambda: calc.hyperliquid_mark(1, 0, perp_mids=[1.0], perp_weights=[-1.0]), "perp_weights[0]"),
        (lambda: calc.binance_coinm_mark(0, 0, 0, 0, 1), "index"),
        (lambda: calc.binance_coinm_mark(1, 0, -1, 0, 1), "time_to_funding"),
        (lambda: calc.binance_coinm_mark(1, 0, 0, 0, 1, funding_interval=0), "funding_interval"),
    ],
)
def test_invalid_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match="^" + name.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_engine_params_as_a_tier_table():
    from riskengine import EngineParams

    p = EngineParams(mm_floors=BINANCE_2025[0], mm_rates=BINANCE_2025[1])
    assert calc.maintenance_margin(400_000, p) == calc.maintenance_margin(400_000, BINANCE_2025)


def test_unlevered_long_is_never_liquidated():
    assert calc.liquidation_price(1_000, 1, 100, BINANCE_2025) == -math.inf
    assert calc.binance_liquidation_price(1_000, (1, 100), brackets=BINANCE_2025) == -math.inf
    assert calc.hyperliquid_liquidation_price(1_000, 1, 100, HL_BTC) == -math.inf
    assert calc.dydx_isolated_liquidation_price(1_000, 1, 100, 0.05) == -math.inf


# --- properties -----------------------------------------------------------------------------


@st.composite
def tier_tables(draw, max_rate=0.5):
    n = draw(st.integers(1, 6))
    bounds = sorted(set(draw(st.lists(st.floats(1e3, 5e7), min_size=n - 1, max_size=n - 1))))
    floors = [0.0, *bounds]
    rates = sorted(draw(st.lists(st.floats(0.001, max_rate), min_size=len(floors), max_size=len(floors))))
    return floors, rates


prices = st.floats(10.0, 200_000.0)
sizes = st.floats(0.01, 500.0)


def binance_f(price, wallet, other_mm, other_upnl, legs, tiers):
    """Equity minus maintenance margin of the symbol's account at ``price`` (reference §1.2)."""
    eq = wallet + other_upnl - other_mm
    for side, n, ep in legs:
        eq += side * n * (price - ep) - mm(n * price, *tiers)
    return eq


def binance_scale(wallet, other_mm, other_upnl, legs, price):
    return abs(wallet) + other_mm + abs(other_upnl) + sum(n * (ep + abs(price)) for _, n, ep in legs)


def check_binance_root(lp, wallet, other_mm, other_upnl, legs, tiers):
    f = lambda p: binance_f(p, wallet, other_mm, other_upnl, legs, tiers)  # noqa: E731
    below = f(1e-9) < 0  # liquidated as the price tends to zero
    if lp == -math.inf:
        assert not below and all(f(p) >= 0 for p in np.geomspace(1e-3, 1e9, 200))
        return
    if math.isnan(lp):
        assert below and all(f(p) < 0 for p in np.geomspace(1e-3, 1e9, 200))
        return
    if lp == 0.0:  # f(0) = 0 exactly and falling: every positive price liquidates
        assert all(f(p) < 0 for p in np.geomspace(1e-3, 1e9, 200))
        return
    assert lp > 0 and math.isfinite(lp)
    scale = binance_scale(wallet, other_mm, other_upnl, legs, lp)
    # the residual, with each leg's bracket taken at its notional at lp
    assert abs(f(lp)) <= 1e-9 * scale
    # slope of equity - MM on the segment at lp; skip near-tangent roots the bumps cannot resolve
    k_rates = [rates_at(n * lp, tiers) for _, n, _ in legs]
    slope = sum(side * n - n * r for (side, n, _), r in zip(legs, k_rates))
    assume(abs(slope) * lp * 1e-6 > 1e-7 * scale)
    beyond, inside = (lp * (1 - 1e-6), lp * (1 + 1e-6)) if below else (lp * (1 + 1e-6), lp * (1 - 1e-6))
    assert f(beyond) < 0  # crosses: equity < maintenance margin
    assert f(inside) >= 0  # does not
    for frac in (0.1, 0.5, 0.9):  # the first crossing when walking up from zero
        assert (f(frac * lp) < 0) == below


def rates_at(notional, tiers):
    floors, rates = tiers
    k = 0
    while k + 1 < len(floors) and floors[k + 1] <= notional:
        k += 1
    return rates[k]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    tiers=tier_tables(),
    size=sizes,
    side=st.sampled_from([-1.0, 1.0]),
    entry=prices,
    leverage=st.floats(1.05, 150.0),
    other_mm=st.floats(0.0, 1e5),
    other_upnl=st.floats(-1e5, 1e5),
    extra=st.floats(0.0, 1e6),
)
def test_binance_one_way_solves_equity_equals_mm(tiers, size, side, entry, leverage, other_mm, other_upnl, extra):
    wallet = size * entry / leverage + other_mm - other_upnl + extra
    q = side * size
    lp = calc.binance_liquidation_price(wallet, (q, entry), other_mm, other_upnl, brackets=tiers)
    check_binance_root(lp, wallet, other_mm, other_upnl, [(side, size, entry)], tiers)
    # the Binance formula and the engine's single-position kernel agree
    assert lp == pytest.approx(
        calc.liquidation_price(wallet, q, entry, tiers, other_maintenance=other_mm, other_upnl=other_upnl), rel=1e-9
    )
    # bracket iteration and the segment walk agree
    walked, flag = py_binance_liquidation_price(wallet, other_mm, other_upnl, q, entry, 0, 0, 0, 0, *tiers, max_iter=0)
    assert flag == -1
    assert walked == pytest.approx(lp, rel=1e-9) or (math.isinf(walked) and walked == lp)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    tiers=tier_tables(),
    n_long=sizes,
    n_short=sizes,
    ep_long=prices,
    ep_short=prices,
    wallet=st.floats(-1e5, 5e7),
    other_mm=st.floats(0.0, 1e5),
    other_upnl=st.floats(-1e5, 1e5),
)
def test_binance_hedge_mode_shared_price(tiers, n_long, n_short, ep_long, ep_short, wallet, other_mm, other_upnl):
    legs = {"LONG": (n_long, ep_long), "SHORT": (n_short, ep_short)}
    lp = calc.binance_liquidation_price(wallet, legs, other_mm, other_upnl, brackets=tiers)
    # one price at which the account (both legs together) reaches equity = MM_long + MM_short
    check_binance_root(lp, wallet, other_mm, other_upnl, [(1.0, n_long, ep_long), (-1.0, n_short, ep_short)], tiers)
    walked, _ = py_binance_liquidation_price(wallet, other_mm, other_upnl, 0, 0, n_long, ep_long, n_short, ep_short, *tiers, max_iter=0)
    if math.isfinite(lp):
        assert walked == pytest.approx(lp, rel=1e-9)
    else:
        assert walked == lp or (math.isnan(walked) and math.isnan(lp))


@settings(max_examples=200, deadline=None)
@given(tiers=tier_tables(), size=sizes, entry=prices, side=st.sampled_from([-1.0, 1.0]), leverage=st.floats(1.05, 150.0))
def test_binance_single_hedge_leg_equals_one_way(tiers, size, entry, side, leverage):
    wallet = size * entry / leverage
    one_way = calc.binance_liquidation_price(wallet, (side * size, entry), brackets=tiers)
    leg = "LONG" if side > 0 else "SHORT"
    hedge = calc.binance_liquidation_price(wallet, {leg: (size, entry)}, brackets=tiers)
    assert hedge == one_way


@settings(max_examples=400, deadline=None)
@given(
    tiers=tier_tables(max_rate=0.2),
    size=sizes,
    side=st.sampled_from([-1.0, 1.0]),
    entry=prices,
    move=st.floats(-0.3, 0.3),
    leverage=st.floats(1.05, 60.0),
    other_mm=st.floats(0.0, 1e4),
    extra=st.floats(0.0, 1e6),
    ratio=st.sampled_from([1.0, 2.0 / 3.0]),
)
def test_hyperliquid_formula_equals_engine_kernel(tiers, size, side, entry, move, leverage, other_mm, extra, ratio):
    q = side * size
    col = size * entry / leverage + other_mm + extra  # wallet at entry
    mark = entry * (1 + move)
    account_value = col + q * (mark - entry)  # what Hyperliquid's formula is given: margin at the mark
    hl, _ = py_hyperliquid_liquidation_price(account_value, q, mark, *tiers, other_mm, ratio)
    engine = py_liquidation_price(col - ratio * other_mm, q, entry, *tiers, ratio)
    if math.isinf(engine):
        assert hl == engine
    else:
        assert hl == pytest.approx(engine, rel=1e-9, abs=1e-9 * entry)
    # the public functions are the same kernel
    fn = calc.hyperliquid_liquidation_price if ratio == 1.0 else calc.backstop_price
    assert fn(account_value, q, mark, tiers, other_maintenance=other_mm) == hl
    # the closed-form fallback (largest per-tier root for a long, smallest for a short) agrees
    floors, rates = tiers
    cums = [0.0]
    for k in range(1, len(floors)):
        cums.append(cums[-1] + floors[k] * (rates[k] - rates[k - 1]))
    if math.isfinite(hl):
        roots = [
            mark - side * (account_value - ratio * (other_mm + size * mark * r - c)) / size / (1 - ratio * r * side)
            for r, c in zip(rates, cums)
        ]
        closed = max(roots) if side > 0 else min(roots)
        assert closed == pytest.approx(hl, rel=1e-9, abs=1e-9 * entry)


@settings(max_examples=300, deadline=None)
@given(
    equity=st.floats(1.0, 1e7),
    size=sizes,
    side=st.sampled_from([-1.0, 1.0]),
    oracle=prices,
    mmf=st.floats(0.0, 0.5),
)
def test_dydx_formula_solves_its_equation(equity, size, side, oracle, mmf):
    s = side * size
    p = calc.dydx_isolated_liquidation_price(equity, s, oracle, mmf)
    if p == -math.inf:
        assert s > 0 and equity - s * oracle >= 0
        return
    residual = equity + s * (p - oracle) - abs(s) * p * mmf
    assert abs(residual) <= 1e-9 * (equity + size * (oracle + abs(p)))


@settings(max_examples=200, deadline=None)
@given(col=st.floats(-1e6, 1e6), size=sizes, side=st.sampled_from([-1.0, 1.0]), entry=prices)
def test_bankruptcy_price_zeroes_equity(col, size, side, entry):
    q = side * size
    p = calc.bankruptcy_price(col, q, entry)
    assert abs(col + q * (p - entry)) <= 1e-9 * (abs(col) + size * entry)
