"""The liquidity model: depth curves walked to the cent, as-of snapshots, decay, stress thinning,
the three replay modes, thin versus thick books, bad input, and the ``[liquidity]`` config.

Hand-computed curve used throughout (price 100,000; distances in % of the price):

* bids: 10M within 1%, 30M within 2%, 60M within 5%;
* asks: 20M within 1%, 40M within 3%.

A market order of notional X walks to delta* with D(delta*) = X and fills on average
(delta* X - int_0^delta* D) / X away.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from riskengine import backtest, config, synthetic
from riskengine.codes import EventKind
from riskengine.engine import run, run_raw
from riskengine.liquidity import MODES, ConstantDepth, DepthCurve, ObservedFlow
from riskengine.params import EngineParams
from riskengine.reference import Book

from _scenarios import S, assert_same_run, scenario

T0 = 1_700_000_000 * S
BOOKDEPTH = "2025-10-10/binance-usdm-bookdepth/BTCUSDT-bookDepth-2025-10-10.csv"


def cents(x: float) -> float:
    return round(x, 2)


def curve(**model) -> DepthCurve:
    """The hand-computed curve (one snapshot at T0)."""
    return DepthCurve.from_snapshots({
        "ts": np.full(5, T0),
        "pct": [-1.0, -2.0, -5.0, 1.0, 3.0],
        "notional": [10e6, 30e6, 60e6, 20e6, 40e6],
    }, **model)


def ref_walk(c: DepthCurve, side: float, qty: float, price: float, tape: float | None = None,
             flow: float = 0.0) -> tuple[float, float]:
    """The reference engine's walk of the same book (first snapshot)."""
    params = EngineParams(mm_floors=[0], mm_rates=[0.01], **c.engine_fields())
    book = Book(params)
    book.flow = flow
    return book.walk(side, qty, price, price if tape is None else tape)


class TestWalkToTheCent:
    def test_inside_the_first_band(self):
        # $5M sell: delta* = 1% x 5/10 = 0.5%, mean distance 0.25%
        fill, move = curve().walk(-1, 50, 100_000)
        assert move == pytest.approx(0.005, rel=1e-15)
        assert cents(fill) == 99_750.00

    def test_across_bands(self):
        # $20M sell: delta* = 1% + (20-10)/(30-10) x 1% = 1.5%;
        # W = 10M x 0.5% + 10M x 1.25% = 175,000 -> mean 0.875%
        fill, move = curve().walk(-1, 200, 100_000)
        assert move == pytest.approx(0.015, rel=1e-15)
        assert cents(fill) == 99_125.00

    def test_beyond_the_last_band_extrapolates_the_last_segment(self):
        # $75M sell: the last segment (2% -> 5%, 30M -> 60M) has slope 10M per %, so
        # delta* = 5% + 15/10 % = 6.5%; W = 50,000 + 300,000 + 1,050,000 + 15M x 5.75% = 2,262,500
        fill, move = curve().walk(-1, 750, 100_000)
        assert move == pytest.approx(0.065, rel=1e-15)
        assert cents(fill) == cents(100_000 * (1 - 2_262_500 / 75e6)) == 96_983.33

    def test_into_the_wall(self):
        # wall at 4%: the book holds D(4%) = 50M with W(4%) = 950,000; the other 25M fills at 4%
        fill, move = curve(max_move=0.04).walk(-1, 750, 100_000)
        assert move == 0.04
        assert cents(fill) == 97_400.00

    def test_buys_walk_the_asks(self):
        # $30M buy: delta* = 1% + (30-20)/(40-20) x 2% = 2%; W = 20M x 0.5% + 10M x 1.5% = 250,000
        fill, move = curve().walk(+1, 300, 100_000)
        assert move == pytest.approx(0.02, rel=1e-15)
        assert cents(fill) == 100_833.33

    def test_flat_last_band_extrapolates_the_mean_slope(self):
        # bids 2.14M at 1%, 2% and 3% (the 21:15 snapshot's shape): past 3% the mean slope
        # 2.14M / 3% carries the walk; $4.28M moves 6%
        c = DepthCurve.from_snapshots({"ts": [0, 0, 0, 0], "pct": [-1.0, -2.0, -3.0, 1.0],
                                       "notional": [2.14e6, 2.14e6, 2.14e6, 2.14e6]})
        _, move = c.walk(-1, 42.8, 100_000)
        assert move == pytest.approx(0.06, rel=1e-12)

    def test_tail_floor_knot_to_the_cent(self):
        # floor 20M per % on the bids, steeper than the last segment's 10M per %: a knot at 10%
        # holding 60M + 20M x 5 = 160M. $75M sell: delta* = 5% + 15/20 % = 5.75%;
        # W = 50,000 + 300,000 + 1,050,000 + 15M x 5.375% = 2,206,250
        floored = curve().with_tail_floor([20e6, 0.0])
        assert floored.pct[0, 0].tolist() == [1.0, 2.0, 5.0, 10.0]
        assert floored.notional[0, 0, -1] == 160e6
        fill, move = floored.walk(-1, 750, 100_000)
        assert move == pytest.approx(0.0575, rel=1e-14)
        assert cents(fill) == cents(100_000 * (1 - 2_206_250 / 75e6)) == 97_058.33
        # the asks (floor 0) keep their own extrapolation: 40M + 10M x 7 at 10%
        assert floored.notional[0, 1, -1] == 40e6 + 10e6 * 7
        assert floored.walk(+1, 300, 100_000) == curve().walk(+1, 300, 100_000)
        # a floor below the curve's own slope changes nothing a walk sees
        assert curve().with_tail_floor(5e6).walk(-1, 750, 100_000) == curve().walk(-1, 750, 100_000)

    def test_tail_floor_holds_a_collapsed_side(self):
        # bids 2.14M at 1%, 2% and 3%: with a 10M per % floor the knot at 10% holds
        # 2.14M + 70M, so $4.28M moves 3% + 2.14/10 % = 3.214% instead of 6%
        c = DepthCurve.from_snapshots({"ts": [0, 0, 0, 0], "pct": [-1.0, -2.0, -3.0, 1.0],
                                       "notional": [2.14e6, 2.14e6, 2.14e6, 2.14e6]}).with_tail_floor(10e6)
        _, move = c.walk(-1, 42.8, 100_000)
        assert move == pytest.approx(0.03214, rel=1e-12)
        assert c.walk(-1, 42.8, 100_000) == ref_walk(c, -1, 42.8, 100_000)

    @pytest.mark.parametrize("floor", [-1.0, math.nan, [1.0, math.inf]])
    def test_tail_floor_must_be_a_notional(self, floor):
        with pytest.raises(ValueError, match=r"tail floor: expected a notional per 1% >= 0"):
            curve().with_tail_floor(floor)

    def test_fillable_is_the_inverse(self):
        # a sell limited 1.5% below fills D(1.5%) = 20M = 200 BTC
        c = curve()
        assert c.fillable(-1, 1_000, 100_000, 98_500) == pytest.approx(200.0, rel=1e-12)
        assert c.fillable(-1, 150, 100_000, 98_500) == 150  # all of a smaller order
        assert c.fillable(-1, 1_000, 100_000, 100_500) == 0.0  # the limit is on the wrong side
        # walking exactly the fillable size ends at the limit
        _, move = c.walk(-1, 200.0, 100_000)
        assert move == pytest.approx(0.015, rel=1e-12)

    def test_one_knot_curve_is_constant_depth_to_the_bit(self):
        one = DepthCurve.from_snapshots({"ts": [0, 0], "pct": [-1.0, 1.0], "notional": [20e6, 20e6]},
                                        max_move=0.3)
        from riskengine._liquidity import py_depth_walk

        for qty in (0.01, 10.0, 500.0, 5_000.0):
            for side in (-1.0, 1.0):
                assert one.walk(side, qty, 123.45e3) == py_depth_walk(side, qty, 123.45e3, 20e6, 0.3)
                assert one.walk(side, qty, 111e3, tape=123.45e3) == py_depth_walk(side, qty, 111e3, 20e6, 0.3,
                                                                                    tape=123.45e3)

    def test_reference_twin_is_bit_identical(self):
        c = curve(max_move=0.04, stress_k=2.0)
        for qty in (1.0, 50.0, 200.0, 450.0, 750.0, 5_000.0):
            for side in (-1.0, 1.0):
                for flow in (0.0, 7e6):
                    assert c.walk(side, qty, 100_000, flow=flow) == ref_walk(c, side, qty, 100_000, flow=flow)


class TestTimeAndStress:
    def test_snapshots_are_picked_as_of(self):
        # 10s: thick (bids 100M within 1%), 20s: thin (10M)
        c = DepthCurve.from_snapshots({"ts": [10 * S] * 2 + [20 * S] * 2, "pct": [-1.0, 1.0] * 2,
                                       "notional": [100e6, 100e6, 10e6, 10e6]})
        thick, thin = (0.01 * 5e6 / 100e6, 0.01 * 5e6 / 10e6)
        for t, expected in ((0, thick), (10 * S, thick), (19 * S, thick), (20 * S, thin), (99 * S, thin)):
            assert c.walk(-1, 50, 100_000, t=t)[1] == pytest.approx(expected, rel=1e-15), t

    def test_engine_uses_the_snapshot_in_force_at_the_tick(self):
        # a long of 50 BTC at 100,000 with 60,000 collateral (1% maintenance) crosses at 99,700
        c = DepthCurve.from_snapshots({"ts": [T0 + 10 * S] * 2 + [T0 + 20 * S] * 2, "pct": [-1.0, 1.0] * 2,
                                       "notional": [100e6, 100e6, 10e6, 10e6]}, feedback=0.0)
        params = EngineParams(mm_floors=[0], mm_rates=[0.01], **c.engine_fields())
        for when, depth in ((5, 100e6), (15, 100e6), (25, 10e6)):
            sc = scenario([100_000.0, 99_700.0], [(60_000.0, 50.0, 100_000.0)], times_s=[0, when])
            sc = dataclasses.replace(sc, tape=dataclasses.replace(sc.tape, ts=sc.tape.ts + T0))
            cy, _ = run_raw(sc, params, "cython")
            ref, _ = run_raw(sc, params, "reference")
            assert_same_run(cy, ref, rtol=0.0)
            x = 50 * 99_700.0
            assert cy.events["price"][0] == pytest.approx(99_700.0 * (1 - 0.01 * x / depth / 2), rel=1e-14)

    def test_impact_decays_by_half_each_half_life(self):
        # the liquidation at 1s moves the price by delta; one half-life later half of it is left
        c = ConstantDepth(20e6, half_life_s=30.0)
        params = EngineParams(mm_floors=[0], mm_rates=[0.01], **c.engine_fields())
        sc = scenario([100_000.0, 99_700.0, 99_700.0, 99_700.0], [(60_000.0, 50.0, 100_000.0)],
                      times_s=[0, 1, 31, 61])
        raw, _ = run_raw(sc, params, "cython")
        delta = 0.01 * 50 * 99_700.0 / 20e6
        sim = raw.series["sim_price"]
        assert sim[1] == pytest.approx(99_700.0 * (1 - delta), rel=1e-12)
        assert sim[2] == pytest.approx(99_700.0 * (1 - delta / 2), rel=1e-12)
        assert sim[3] == pytest.approx(99_700.0 * (1 - delta / 4), rel=1e-12)

    def test_stress_thins_the_book_by_recent_flow(self):
        # stress_k = 1 and a recent flow equal to the 1% depth (mean of 10M and 20M = 15M):
        # the book is halved, so a $5M sell walks like $10M: to 1%, mean 0.5%
        c = curve(stress_k=1.0)
        fill, move = c.walk(-1, 50, 100_000, flow=15e6)
        assert move == pytest.approx(0.01, rel=1e-15)
        assert cents(fill) == 99_500.00
        assert c.fillable(-1, 1_000, 100_000, 99_000, flow=15e6) == pytest.approx(50.0, rel=1e-12)

    def test_stress_deepens_the_next_move(self):
        # two identical longs cross at the same tick: the second sell walks a book thinned by
        # the first one's notional, 1 / (1 + k x flow / 20M)
        k = 3.0
        params = EngineParams(mm_floors=[0], mm_rates=[0.01],
                              **ConstantDepth(20e6, stress_k=k).engine_fields())
        sc = scenario([100_000.0, 99_700.0], [(60_000.0, 50.0, 100_000.0)] * 2)
        cy, _ = run_raw(sc, params, "cython")
        ref, _ = run_raw(sc, params, "reference")
        assert_same_run(cy, ref, rtol=0.0)
        d1 = 0.01 * 50 * 99_700.0 / 20e6
        fill1 = 99_700.0 * (1 - d1 / 2)
        p2 = 99_700.0 * (1 - d1)
        d2 = 0.01 * 50 * p2 * (1 + k * 50 * fill1 / 20e6) / 20e6
        np.testing.assert_allclose(cy.events["price"][:2], [fill1, p2 * (1 - d2 / 2)], rtol=1e-13)
        assert cy.series["sim_price"][-1] == pytest.approx(p2 * (1 - d2), rel=1e-13)
        calm, _ = run_raw(sc, dataclasses.replace(params, impact_stress_k=0.0), "cython")
        assert cy.events["price"][1] < calm.events["price"][1]

    def test_stress_deepens_a_cascade(self):
        sc = synthetic.crash_scenario(ticks=3_000, accounts=2_000, seed=3)
        design = synthetic.binance_style()
        runs = {k: run(sc, design, ConstantDepth(3e6, stress_k=k)).raw[0] for k in (0.0, 5.0)}
        calm, stressed = runs[0.0].scalars, runs[5.0].scalars
        assert stressed["sim_min"] < calm["sim_min"]
        assert stressed["sim_max_drawdown"] > calm["sim_max_drawdown"]


class TestModes:
    @pytest.fixture(scope="class")
    @classmethod
    def crash(cls):
        return synthetic.crash_scenario(ticks=3_000, accounts=2_000, seed=5)

    def test_replay_leaves_the_price_on_the_tape(self, crash):
        raw = run(crash, synthetic.binance_style(), curve(mode="replay")).raw[0]
        np.testing.assert_array_equal(raw.series["sim_price"], raw.series["tape_price"])
        assert raw.scalars["sim_min"] == raw.scalars["tape_min"]
        # fills still walk the book: long liquidations fill below the tape
        ev = raw.events
        sells = (ev["kind"] == EventKind.LIQUIDATION) & (ev["size"] > 0)
        assert sells.sum() > 10
        tape_at = crash.tape.price[ev["tick"][sells]]
        assert (ev["price"][sells] < tape_at).all()

    def test_counterfactual_without_observed_flow_is_endogenous(self, crash):
        designs = [synthetic.binance_style(), synthetic.hyperliquid_style()]
        for model in (curve(), ConstantDepth(3e6, stress_k=2.0)):
            endo = run(crash, designs, model).raw
            empty = ObservedFlow([], [], [])
            for cf in (dataclasses.replace(model, mode="counterfactual"),
                       dataclasses.replace(model, mode="counterfactual", observed=empty)):
                for a, b in zip(endo, run(crash, designs, cf).raw):
                    assert_same_run(a, b, rtol=0.0)
                    assert len(a.events["ts"]) > 100

    def test_counterfactual_takes_observed_selling_out_of_a_falling_tape(self):
        prices = np.linspace(100_000.0, 90_000.0, 11)
        sc = scenario(prices, [(100.0, 0.0, 100_000.0)], times_s=np.arange(11))
        ts = sc.tape.ts
        observed = ObservedFlow(ts[[3, 4, 5, 6]], [-1.0] * 4, [4e6] * 4)
        c = ConstantDepth(20e6, half_life_s=1e9, mode="counterfactual", observed=observed)
        endo = run(sc, synthetic.binance_style(), dataclasses.replace(c, mode="endogenous"),
                   series_interval_s=1.0).raw[0]
        cf = run(sc, synthetic.binance_style(), c, series_interval_s=1.0).raw[0]
        assert endo.scalars["sim_min"] == 90_000.0
        assert cf.scalars["sim_min"] > endo.scalars["sim_min"]
        # each $4M sell walked 0.2% from where the observed impact had left the price
        m = np.cumprod([1 - 0.002] * 4)
        np.testing.assert_allclose(cf.series["tape_price"][3:7], prices[3:7] / m, rtol=1e-9)
        np.testing.assert_array_equal(cf.series["tape_price"][:3], prices[:3])
        assert cf.scalars["sim_min"] == pytest.approx(90_000.0 / m[-1], rel=1e-9)
        # the reference engine builds the same counterfactual tape
        ref = run(sc, synthetic.binance_style(), c, engine="reference", series_interval_s=1.0).raw[0]
        assert_same_run(cf, ref, rtol=0.0)

    def test_counterfactual_kernel_matches_its_twin(self):
        from riskengine._liquidity import py_counterfactual_tape
        from riskengine.reference import counterfactual_tape

        rng = np.random.default_rng(4)
        ts = T0 + np.cumsum(rng.integers(0, 3 * S, 400))
        px = 100_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 400)))
        obs = ObservedFlow(T0 + rng.integers(-5 * S, 600 * S, 60), rng.choice([-1.0, 1.0], 60),
                           rng.uniform(0, 3e7, 60))
        c = DepthCurve.from_snapshots({"ts": np.repeat(T0 + np.array([0, 200, 400]) * S, 5),
                                       "pct": [-1.0, -2.0, -5.0, 1.0, 3.0] * 3,
                                       "notional": np.tile([10e6, 30e6, 60e6, 20e6, 40e6], 3) * np.repeat([1, 0.3, 2], 5)},
                                      stress_k=2.0, half_life_s=20.0, feedback=0.7, max_move=0.1,
                                      mode="counterfactual", observed=obs)
        params = EngineParams(mm_floors=[0], mm_rates=[0.01], **c.engine_fields())
        cy = py_counterfactual_tape(ts, px, c.ts, c.pct / 100.0, c.notional, obs.ts, obs.side, obs.notional,
                                    0.1, 20.0 * S, 0.7, 2.0)
        ref = counterfactual_tape(params, ts, px)
        assert cy.tobytes() == ref.tobytes()
        assert (cy != px).mean() > 0.9

    def test_replay_ignores_observed_flow(self):
        observed = ObservedFlow([T0], [-1.0], [1e9])
        fields = ConstantDepth(1e6, mode="replay", observed=observed).engine_fields()
        assert fields["impact_feedback"] == 0.0 and "observed_ts" not in fields

    def test_thin_book_cascades_deeper_than_thick(self):
        sc = synthetic.crash_scenario(ticks=3_000, accounts=2_000, seed=9)
        design = synthetic.binance_style()
        thick = run(sc, design, curve()).raw[0]
        base = curve()
        thin = run(sc, design, DepthCurve(base.ts, base.pct, base.notional / 300.0)).raw[0]
        liq = lambda raw: int(np.isin(raw.events["kind"], [EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION,
                                                          EventKind.ADL_LIQUIDATION, EventKind.FUND_TAKEOVER]).sum())
        assert liq(thin) > liq(thick)
        assert thin.scalars["sim_max_drawdown"] > thick.scalars["sim_max_drawdown"] + 0.01


class TestBadInput:
    def test_shrinking_bands_are_named(self):
        with pytest.raises(ValueError, match=r"^depth snapshot at 2025-10-10T21:15:00Z: bid notional shrinks "
                                             r"from 3\.1e\+08 at 2% to 2\.9e\+08 at 3%$"):
            DepthCurve.from_snapshots({"ts": np.full(4, np.datetime64("2025-10-10T21:15:00", "ns")),
                                       "pct": [-1.0, -2.0, -3.0, 1.0], "notional": [1e8, 3.1e8, 2.9e8, 1e8]})

    def test_equal_bands_are_allowed(self):
        c = DepthCurve.from_snapshots({"ts": [0] * 4, "pct": [-3.0, -2.0, -1.0, 1.0],
                                       "notional": [2.14e6, 2.14e6, 2.14e6, 5e6]})
        assert c.pct.shape == (1, 2, 3)  # the asks padded to three knots
        np.testing.assert_allclose(c.pct[0, 1], [1.0, 2.0, 3.0])
        np.testing.assert_allclose(c.notional[0, 1], [5e6, 10e6, 15e6])

    @pytest.mark.parametrize("data, message", [
        ({"ts": [0, 0, 0], "pct": [-1.0, -1.0, 1.0], "notional": [1.0, 2.0, 1.0]},
         r"^depth snapshot at 1970-01-01T00:00:00Z: bid band 1% appears twice$"),
        ({"ts": [0, 0], "pct": [-1.0, -2.0], "notional": [1.0, 2.0]},
         r"^depth snapshot at 1970-01-01T00:00:00Z: no ask bands \(each snapshot needs both sides\)$"),
        ({"ts": [0, 0], "pct": [0.0, 1.0], "notional": [1.0, 2.0]}, r"band 0\.0%: expected a finite distance"),
        ({"ts": [0, 0], "pct": [-1.0, 1.0], "notional": [-1.0, 2.0]}, r"band -1%: expected a finite notional >= 0"),
        ({"ts": [0, 0], "pct": [-1.0, 1.0]}, r"^depth snapshots: no 'notional' column \(got ts, pct\)$"),
    ])
    def test_bad_snapshots(self, data, message):
        with pytest.raises(ValueError, match=message):
            DepthCurve.from_snapshots(data)

    def test_curve_arrays_checked(self):
        with pytest.raises(ValueError, match=r"ask distances must increase strictly \(1% after 2%\)"):
            DepthCurve([0], [[[1.0, 2.0], [2.0, 1.0]]], [[[1.0, 2.0], [1.0, 2.0]]])

    def test_unknown_mode_and_negative_stress(self):
        with pytest.raises(ValueError, match=r"^liquidity\.mode: expected one of replay, endogenous, "
                                             r"counterfactual \(got 'historic'\)$"):
            ConstantDepth(1e6, mode="historic")
        with pytest.raises(ValueError, match=r"^liquidity\.stress_k: expected a finite factor >= 0.*-1\.0\)$"):
            curve(stress_k=-1.0)
        assert MODES == ("replay", "endogenous", "counterfactual")

    def test_observed_flow_checked(self):
        with pytest.raises(ValueError, match=r"^observed flow: row 1: side must be \+1 \(buy\) or -1 \(sell\) "
                                             r"\(got 0\.0\)$"):
            ObservedFlow([1, 2], [1.0, 0.0], [5.0, 5.0])
        flow = ObservedFlow([5, 1], [1.0, -1.0], [5.0, 7.0])  # sorted by time
        assert flow.ts.tolist() == [1, 5] and flow.notional.tolist() == [7.0, 5.0]

    def test_engine_params_reject_both_depths(self):
        with pytest.raises(ValueError, match=r"depth_per_pct: give a constant depth or a depth curve, not both"):
            EngineParams(mm_floors=[0], mm_rates=[0.01], depth_per_pct=5.0, **{
                k: v for k, v in curve().engine_fields().items() if k.startswith("depth_")})


class TestRealBookDepth:
    def test_calibration_figures(self, shared_data):
        c = DepthCurve.from_bookdepth(shared_data / BOOKDEPTH)
        assert c.pct.shape == (2_879, 2, 5)
        d1 = c.depth_1pct()

        def median(a: str, b: str) -> float:
            lo, hi = (np.datetime64(x, "ns").astype(np.int64) for x in (a, b))
            return float(np.median(d1[(c.ts >= lo) & (c.ts < hi)]))

        calm, crash = median("2025-10-10T00:00", "2025-10-10T20:00"), median("2025-10-10T21:00", "2025-10-10T21:30")
        assert calm == pytest.approx(2.6055e8, rel=1e-4)
        assert crash == pytest.approx(8.786e7, rel=1e-3)
        assert crash / calm == pytest.approx(0.337, abs=0.001)
        # the 21:15 snapshot: identical -1, -2, -3% bands are accepted, and a $50M sell walks to
        # the 4-5% bands
        t = np.datetime64("2025-10-10T21:15:00", "ns").astype(np.int64)
        s = c.snapshot(t)
        assert c.notional[s, 0, 0] == c.notional[s, 0, 1] == c.notional[s, 0, 2]
        _, move = c.walk(-1, 500, 100_000, t=t)
        assert 0.04 < move < 0.05

    def test_tail_floor_calibration(self, shared_data):
        c = DepthCurve.from_bookdepth(shared_data / BOOKDEPTH)
        # typical mean slope D(5%) / 5 over the day, per side (module docstring)
        bids, asks = c.typical_slopes()
        assert bids == pytest.approx(2.034e8, rel=1e-3) and asks == pytest.approx(1.416e8, rel=1e-3)
        # 21:27: every bid band within 5% holds only the stale 2.1M level; a $50M sell would run
        # to the wall without a floor, and stops near 10% with 5% of the typical slope
        t = np.datetime64("2025-10-10T21:27:33", "ns").astype(np.int64)
        s = c.snapshot(t)
        assert np.ptp(c.notional[s, 0]) == 0.0
        _, bare = c.walk(-1, 500, 100_000, t=t)
        _, floored = c.with_tail_floor(0.05 * c.typical_slopes()).walk(-1, 500, 100_000, t=t)
        assert bare == 0.5 and 0.05 < floored < 0.12

    def test_time_varying_depth_from_config(self, shared_data, tmp_path):
        loaded = config.parse({
            "scenario": {"name": "s", "synthetic": {"ticks": 2_000},
                         "window": {"start": "2025-10-10T21:00:00Z", "end": "2025-10-10T21:30:00Z"}},
            "liquidity": {"mode": "endogenous", "stress_k": 0.5,
                          "depth": {"source": "binance-bookdepth", "path": str(shared_data / BOOKDEPTH)}},
            "venues": [{"preset": "hyperliquid"}]})
        start, end = loaded.config.scenario.window.bounds_ns()
        model = backtest.build_liquidity(loaded, loaded.config.scenario.window)
        assert isinstance(model, DepthCurve) and model.stress_k == 0.5 and model.mode == "endogenous"
        # the file's five bands per side and the tail floor's knot at 10%: 5% of the whole
        # file's typical slope (not the window's), or the bands' own extrapolation if steeper
        whole = DepthCurve.from_bookdepth(shared_data / BOOKDEPTH)
        bare = DepthCurve.from_bookdepth(shared_data / BOOKDEPTH, start, end)
        np.testing.assert_array_equal(model.pct[:, :, :5], bare.pct)
        np.testing.assert_array_equal(model.notional, bare.with_tail_floor(0.05 * whole.typical_slopes()).notional)
        assert (model.pct[:, :, 5] == 10.0).all()
        no_floor = config.parse({**loaded.config.model_dump(exclude_none=True, mode="json"), "liquidity": {
            "depth": {"path": str(shared_data / BOOKDEPTH), "tail_floor": 0}}})
        assert backtest.build_liquidity(no_floor, no_floor.config.scenario.window).pct.shape[2] == 5
        # the window's snapshots plus the one in force at its start
        assert model.ts[0] <= start < model.ts[1] and model.ts[-1] < end
        assert len(model.ts) == 61
        # time_varying = false keeps the constant measurement
        flat = config.parse({**loaded.config.model_dump(exclude_none=True, mode="json"), "liquidity": {
            "depth": {"path": str(shared_data / BOOKDEPTH), "time_varying": False, "statistic": "median"}}})
        constant = backtest.build_liquidity(flat, flat.config.scenario.window)
        assert isinstance(constant, ConstantDepth)
        assert constant.depth_per_pct == pytest.approx(float(np.median(model.depth_1pct()[1:])), rel=1e-12)


SMALL = {"scenario": {"name": "s", "synthetic": {"ticks": 2_000, "seed": 3}}, "population": {"accounts": 500},
         "venues": [{"preset": "binance-usdm", "fund": {"initial": 1e5}}]}


class TestConfig:
    def _parse(self, liquidity: dict, base: Path | None = None):
        return config.parse({**SMALL, "liquidity": liquidity}, "bt.toml", base)

    @pytest.mark.parametrize("liquidity, message", [
        ({"mode": "historic"}, r"liquidity\.mode: Input should be 'replay', 'endogenous' or 'counterfactual'"),
        ({"stress_k": -1}, r"liquidity\.stress_k: Input should be greater than or equal to 0"),
        ({"depth": {"path": "d.csv", "band_pct": 1}}, r"set time_varying = false"),
        ({"depth": {"path": "d.csv", "time_varying": False, "tail_floor": 0.1}}, r"set time_varying = true"),
        ({"depth": {"path": "d.csv", "tail_floor": 2}}, r"liquidity\.depth\.tail_floor: Input should be less"),
        ({"observed": {"source": "tardis", "path": "l.csv"}}, r"only with mode = \"counterfactual\""),
    ])
    def test_bad_liquidity_tables(self, liquidity, message):
        with pytest.raises(ValueError, match=message):
            self._parse(liquidity)

    def test_a_scenario_change_keeps_a_constant_depth_file(self, tmp_path):
        # the base's depth (time_varying = false) carried into a scenario's change stays as
        # written: no default tail_floor is added to it
        depth = tmp_path / "BTCUSDT-bookDepth-2025-10-10.csv"
        depth.write_text("timestamp,percentage,depth,notional\n" + "".join(
            f"2023-11-14 22:13:20,{p},1,{abs(p) * 1e6}\n" for p in (-2, -1, 1, 2)))
        loaded = config.parse({**SMALL, "liquidity": {"depth": {"path": depth.name, "time_varying": False}},
                               "scenario": {**SMALL["scenario"], "liquidity": {"feedback": 0.5}}},
                              "bt.toml", tmp_path)
        spec = backtest.liquidity_spec(loaded, loaded.config.scenario, "scenario")
        assert spec.feedback == 0.5 and spec.depth.time_varying is False
        assert "tail_floor" not in spec.depth.model_fields_set

    def test_counterfactual_with_an_observed_liquidations_file(self, tmp_path):
        tape = synthetic.crash_tape(2_000, seed=3)
        t_us = tape.ts[[100, 900, 1000]] // 1000
        rows = [f"binance-futures,BTCUSDT,{t},{t},{i},sell,{tape.price[j]:.2f},{q}"
                for i, (t, j, q) in enumerate(zip(t_us, (100, 900, 1000), (10.0, 400.0, 300.0)))]
        path = tmp_path / "binance-futures_liquidations_2025-10-10_BTCUSDT.csv"
        path.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n" + "\n".join(rows) + "\n")
        loaded = self._parse({"mode": "counterfactual", "depth_per_pct": 5e6,
                              "observed": {"source": "tardis", "path": path.name}}, tmp_path)
        model = backtest.build_liquidity(loaded, loaded.config.scenario.window)
        assert model.mode == "counterfactual" and len(model.observed) == 3
        assert model.observed.side.tolist() == [-1.0] * 3
        np.testing.assert_allclose(model.observed.notional, [q * round(tape.price[j], 2) for j, q in
                                                             ((100, 10.0), (900, 400.0), (1000, 300.0))])
        cf = backtest.run_config(loaded, check_invariants=True).raw[0]
        endo = backtest.run_config(self._parse({"depth_per_pct": 5e6})).raw[0]
        # the observed selling is taken out: the counterfactual tape sits above the real one
        assert cf.scalars["tape_min"] > endo.scalars["tape_min"]
        assert backtest.check(loaded)
        missing = self._parse({"mode": "counterfactual", "observed": {"source": "tardis", "path": "nope.csv"}},
                              tmp_path)
        with pytest.raises(ValueError, match=r"liquidity\.observed\.path: no such file"):
            backtest.check(missing)
