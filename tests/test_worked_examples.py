"""Kernels against the worked examples of ../shared/reference/venue-mechanisms.md §5-§6."""

import math

import numpy as np
import pytest

from riskengine._adl import py_adl_queue
from riskengine._index import py_heap_order
from riskengine._liquidity import py_depth_walk, py_impact_after
from riskengine._margin import py_liquidation_price, py_maintenance_margin
from riskengine._mark import py_ema
from riskengine.codes import AdlRanking
from riskengine.params import EngineParams, maintenance_deductions, maintenance_margin
from riskengine.reference import adl_score, walk_depth

# Binance BTCUSDT brackets announced 2021-03-18 (reference §1.1, [DOC S7])
BINANCE_2021_FLOORS = [0, 50e3, 250e3, 1e6, 10e6, 20e6, 50e6, 100e6, 200e6, 300e6]
BINANCE_2021_RATES = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
# Binance BTCUSDT 2025 brackets 1-4 (reference §1.1, [3P S6, S9])
BINANCE_2025_FLOORS = [0, 300e3, 800e3, 3e6]
BINANCE_2025_RATES = [0.004, 0.005, 0.0065, 0.01]
# Hyperliquid margin tables (reference §2.1): MMR = 1 / (2 x max leverage)
HL_BTC = ([0, 150e6], [1 / 80, 1 / 40])
HL_ETH = ([0, 100e6], [1 / 50, 1 / 30])


def cents(x: float) -> float:
    return round(x, 2)


class TestE7BinanceBrackets:
    def test_cum_recursion(self):
        cums = maintenance_deductions(np.array(BINANCE_2021_FLOORS), np.array(BINANCE_2021_RATES))
        expected = [0, 50, 1_300, 16_300, 266_300, 1_266_300, 2_516_300, 5_016_300, 25_016_300, 100_016_300]
        np.testing.assert_allclose(cums, expected, rtol=0, atol=1e-6)

    def test_maintenance_margin_tier3(self):
        assert cents(py_maintenance_margin(264_000, BINANCE_2021_FLOORS, BINANCE_2021_RATES)) == 1_340.00

    def test_continuity_at_tier_boundary(self):
        assert py_maintenance_margin(250_000, BINANCE_2021_FLOORS, BINANCE_2021_RATES) == pytest.approx(1_200.0)
        eps = 1e-6
        lo = py_maintenance_margin(250_000 - eps, BINANCE_2021_FLOORS, BINANCE_2021_RATES)
        assert lo == pytest.approx(1_200.0, abs=1e-6)

    def test_python_twin_agrees(self):
        p = EngineParams(mm_floors=BINANCE_2021_FLOORS, mm_rates=BINANCE_2021_RATES)
        for n in np.linspace(0, 600e6, 97):
            assert p.maintenance_margin(float(n)) == py_maintenance_margin(float(n), BINANCE_2021_FLOORS, BINANCE_2021_RATES)


class TestE8BinanceIsolated:
    def test_long_tier1(self):
        lp = py_liquidation_price(10_000, 2, 100_000, BINANCE_2025_FLOORS, BINANCE_2025_RATES)
        assert cents(lp) == 95_381.53
        assert 2 * lp < 300_000  # notional at the liquidation price is in tier 1

    def test_short_tier2(self):
        lp = py_liquidation_price(50_000, -5, 100_000, BINANCE_2025_FLOORS, BINANCE_2025_RATES)
        assert cents(lp) == 109_512.44
        assert 300_000 <= 5 * lp < 800_000

    def test_bankruptcy_price_and_fee_consequence(self):
        # E8(c): at the liquidation price the margin left (~MM) is below a 1.25% fee
        lp = py_liquidation_price(10_000, 2, 100_000, BINANCE_2025_FLOORS, BINANCE_2025_RATES)
        margin_left = 10_000 + 2 * (lp - 100_000)
        assert margin_left == pytest.approx(0.004 * 2 * lp)
        assert margin_left < 0.0125 * 2 * lp


class TestE10toE13Hyperliquid:
    def test_e10_isolated_long(self):
        assert cents(py_liquidation_price(10_000, 1, 100_000, *HL_BTC)) == 91_139.24

    def test_e11_cross_long(self):
        # account value 20,000, one position at mark 100,000 (its entry here)
        assert cents(py_liquidation_price(20_000, 1, 100_000, *HL_BTC)) == 81_012.66

    def test_e12_backstop_threshold(self):
        p = py_liquidation_price(10_000, 1, 100_000, *HL_BTC, ratio=2 / 3)
        assert cents(p) == 90_756.30
        assert cents(p - 90_000) == 756.30  # equity handed to the vault
        assert cents(0.0125 * p) == 1_134.45

    def test_e13_tiered_mm(self):
        assert py_maintenance_margin(1e6, *HL_BTC) == pytest.approx(12_500)
        assert py_maintenance_margin(150e6, *HL_BTC) == pytest.approx(1_875_000)
        assert py_maintenance_margin(200e6, *HL_BTC) == pytest.approx(3_125_000)
        assert py_maintenance_margin(1e6, *HL_ETH) == pytest.approx(20_000)
        assert py_maintenance_margin(100e6, *HL_ETH) == pytest.approx(2_000_000)
        assert cents(py_maintenance_margin(120e6, *HL_ETH)) == 2_666_666.67


@pytest.mark.parametrize("seed", range(40))
def test_liquidation_price_is_the_trigger_boundary(seed):
    """Just inside the liquidation price the position crosses; just outside it does not."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 5))
    floors = np.concatenate([[0.0], np.sort(rng.uniform(1e3, 1e6, k - 1))])
    rates = np.sort(rng.uniform(0.001, 0.2, k))
    cums = maintenance_deductions(floors, rates)
    size = float(rng.choice([-1, 1]) * rng.uniform(0.01, 20))
    entry = float(rng.uniform(50, 200))
    col = float(abs(size) * entry / rng.uniform(1.5, 60))
    lp = py_liquidation_price(col, size, entry, floors, rates)
    assert math.isfinite(lp) and lp > 0

    def crosses(mark):
        e = col + size * (mark - entry)
        return e < maintenance_margin(abs(size) * mark, floors, rates, cums)

    inside, outside = (lp * (1 - 1e-7), lp * (1 + 1e-7)) if size > 0 else (lp * (1 + 1e-7), lp * (1 - 1e-7))
    assert crosses(inside)
    assert not crosses(outside)


def test_unlevered_long_never_liquidates():
    assert py_liquidation_price(1_000, 1, 100, [0], [0.01]) == -math.inf


class TestDepthAndImpact:
    def test_market_sell_to_the_cent(self):
        fill, move = py_depth_walk(-1, 10, 100_000, 20e6)  # $1M into $20M per 1%
        assert move == pytest.approx(0.0005)
        assert cents(fill) == 99_975.00

    def test_reference_section5_linear_example(self):
        # "$50M market sell into D1 = $20M moves price 2.5%" (reference §5)
        _, move = py_depth_walk(-1, 500, 100_000, 20e6)
        assert move == pytest.approx(0.025)
        _, move = py_depth_walk(-1, 500, 100_000, 14e6)
        assert move == pytest.approx(0.0357, abs=1e-4)

    def test_buy_walks_up(self):
        fill, _ = py_depth_walk(+1, 10, 100_000, 20e6)
        assert cents(fill) == 100_025.00

    def test_wall_beyond_max_move(self):
        # $200M into $2M per 1% would move 100%; the wall at 50% caps it
        fill, move = py_depth_walk(-1, 2_000, 100_000, 2e6, 0.5)
        assert move == 0.5
        cap_notional = 2e6 * 50  # notional resting up to the wall
        avg = (cap_notional * 0.25 + (200e6 - cap_notional) * 0.5) / 200e6
        assert fill == pytest.approx(100_000 * (1 - avg))

    def test_python_twin_agrees(self):
        p = EngineParams(mm_floors=[0], mm_rates=[0.01], depth_per_pct=3e6, max_move=0.3)
        for qty in (0.01, 1.0, 37.0, 5_000.0):
            for side in (-1.0, 1.0):
                assert walk_depth(side, qty, 123.45, 123.45, p) == py_depth_walk(side, qty, 123.45, 3e6, 0.3)
                # after impact: the simulated price is 10% below the tape
                assert (walk_depth(side, qty, 111.105, 123.45, p)
                        == py_depth_walk(side, qty, 111.105, 3e6, 0.3, tape=123.45))

    def test_wall_is_measured_from_the_tape(self):
        # the simulated price already sits 40% below a tape of 100 with the wall at 50%: a sell
        # can only walk the 10 left to the wall (1/6 of 60) and fills the rest there
        fill, move = py_depth_walk(-1, 1e6, 60.0, 1e3, 0.5, tape=100.0)
        assert move == pytest.approx(1 / 6)
        assert fill > 50.0 and fill == pytest.approx(50.0, rel=1e-3)
        # at the wall nothing moves any more
        fill, move = py_depth_walk(-1, 10.0, 50.0, 1e3, 0.5, tape=100.0)
        assert move == 0.0 and fill == 50.0

    def test_impact_decays_by_half_each_half_life(self):
        hl = 30e9
        assert py_impact_after(0.9, int(hl), hl) == pytest.approx(0.95)
        assert py_impact_after(0.9, int(2 * hl), hl) == pytest.approx(0.975)
        assert py_impact_after(1.1, 0, hl) == 1.1


def test_e14_hyperliquid_ema():
    out = py_ema([20.0, 30.0], [3.0, 3.0], 150.0)
    assert cents(out[0]) == 20.00
    assert cents(out[1]) == 25.05


class TestE16AdlOrderings:
    """Three profitable longs against a bankrupt short, mark 60,000 (reference E16)."""

    sizes = [10.0, 2.0, 30.0]
    entries = [50_000.0, 30_000.0, 58_000.0]
    wallets = [60_000.0, 20_000.0, 200_000.0]

    def order(self, ranking):
        ids, scores = py_adl_queue(-1.0, 60_000.0, self.sizes, self.entries, self.wallets, ranking,
                                   BINANCE_2025_FLOORS, BINANCE_2025_RATES)
        return list(ids), dict(zip(ids.tolist(), scores.tolist()))

    def test_hyperliquid(self):
        ids, s = self.order(AdlRanking.HL_INDEX)
        assert ids == [2, 0, 1]
        assert s[0] == pytest.approx(4.50)
        assert s[1] == pytest.approx(3.00)
        assert s[2] == pytest.approx(7.162, abs=5e-4)

    def test_binance(self):
        ids, s = self.order(AdlRanking.BINANCE_LEVERAGE_PNL)
        assert ids == [0, 1, 2]
        assert s[0] == pytest.approx(0.028125)
        assert s[1] == pytest.approx(0.018)
        assert s[2] == pytest.approx(0.011769, abs=5e-7)

    def test_bitmex_bybit(self):
        ids, s = self.order(AdlRanking.PNL_LEVERAGE)
        assert ids == [1, 0, 2]
        assert s[0] == pytest.approx(0.75)
        assert s[1] == pytest.approx(1.50)
        assert s[2] == pytest.approx(0.2387, abs=5e-5)

    def test_python_twin_agrees(self):
        p = EngineParams(mm_floors=BINANCE_2025_FLOORS, mm_rates=BINANCE_2025_RATES)
        for ranking in AdlRanking:
            _, s = self.order(ranking)
            for i in range(3):
                # one-position accounts: account value WB + U, the account's MM the position's
                q, wb, e = self.sizes[i], self.wallets[i], self.entries[i]
                equity, mm = wb + q * (60_000.0 - e), p.maintenance_margin(abs(q) * 60_000.0)
                assert adl_score(ranking, q, e, 60_000.0, equity, wb, mm, p) == s[i]

    def test_short_convention_switch(self):
        # profitable short: entry 100, mark 80; side-adjusted ratio e/M = 1.25, as written M/e = 0.8
        common = (+1.0, 80.0, [-1.0], [100.0], [10.0], AdlRanking.HL_INDEX)
        _, adjusted = py_adl_queue(*common)
        _, written = py_adl_queue(*common, short_mark_over_entry=True)
        assert adjusted[0] / written[0] == pytest.approx(1.25 / 0.8)


def test_heap_pops_highest_key_then_lowest_id():
    keys = [3.0, 1.0, 3.0, 7.0, -2.0, 7.0, 0.0]
    assert list(py_heap_order(keys)) == [3, 5, 0, 2, 1, 6, 4]
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 50, 2_000).astype(float)
    expected = sorted(range(len(keys)), key=lambda i: (-keys[i], i))
    assert list(py_heap_order(keys)) == expected


@pytest.mark.parametrize("built", [3_000, 20_000], ids=["qsort", "buckets"])
def test_index_side_pops_array_and_heap_in_priority_order(built):
    """The index side: a sorted array of built keys (qsort below 8,192, key buckets above) plus a heap
    of pushed ones, popped together highest key first, ties by lower id (the same order a single
    heap gives)."""
    from riskengine._index import py_side_order

    rng = np.random.default_rng(1)
    keys = np.concatenate([rng.normal(0, 1e3, built), [-0.0, 0.0, 1e-300, -1e-300, 5.0, 5.0, np.inf]])
    keys[17] = keys[40]  # a tie inside the array
    pushes = [(float(rng.normal(0, 1e3)), int(len(keys) + j)) for j in range(500)]
    pushes += [(float(keys[5]), 2), (float(keys[5]), 100_000)]  # ties across array and heap
    all_keys = list(keys) + [k for k, _ in pushes]
    all_ids = list(range(len(keys))) + [i for _, i in pushes]
    expected = [i for _, i in sorted(zip(all_keys, all_ids), key=lambda t: (-t[0], t[1]))]
    assert py_side_order(keys, pushes) == expected
    assert py_side_order([]) == []


@pytest.mark.parametrize("shape", ["spread", "ties", "one-key", "clustered", "infinite"])
def test_index_side_sorts_its_buckets_as_the_cursor_reaches_them(shape):
    """A large build is laid out in key buckets, each sorted when the cursor reaches it: popped
    partly before re-keyed entries are pushed, it gives the order of a whole sort (highest key
    first, ties by lower id), whatever the keys' spread."""
    from riskengine._index import py_side_order

    rng = np.random.default_rng(2)
    n = 30_000
    keys = {"spread": rng.normal(100.0, 10.0, n), "ties": rng.integers(0, 40, n).astype(float),
            "one-key": np.full(n, 3.5),
            "clustered": np.concatenate([np.full(n // 2, 1.0), rng.normal(0.0, 1e-12, n - n // 2)]),
            "infinite": np.concatenate([rng.normal(0.0, 1.0, n - 4), [np.inf, -np.inf, -0.0, 0.0]])}[shape]
    order = [i for _, i in sorted(zip(keys, range(n)), key=lambda t: (-t[0], t[1]))]
    pops = 5_000
    pushes = [(float(keys[order[pops + j]]), n + j) for j in range(300)]  # ties with unpopped entries
    pushes += [(float(rng.normal(100.0, 10.0)), 2 * n + j) for j in range(300)]
    rest = [(float(keys[i]), i) for i in order[pops:]] + [(k, i) for k, i in pushes]
    expected = order[:pops] + [i for _, i in sorted(rest, key=lambda t: (-t[0], t[1]))]
    assert py_side_order(keys, pushes, pops) == expected
