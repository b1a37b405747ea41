"""The shared generators (riskengine.generators): seeded determinism, tapes whose depth, gaps,
wick and timing follow their parameters, populations whose open interest, leverage, sides and
flat accounts follow theirs, and the synthetic scenario and the benchmark workloads built by
them (the same parameters give the same arrays, bit for bit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _cli import raised_line
from riskengine import bench, generators, synthetic
from riskengine.codes import MarginMode
from riskengine.generators import (ASPECTS, FLAT_COLLATERAL_USD, DiscreteLeverage, Gap, LeverageRange, Noise, Ramp,
                                   Wick, crash_tape, leveraged_population)
from riskengine.scenario import Population, Tape

NS = 1_000_000_000
START_NS = 1_760_126_400 * NS
#: two-sided normal quantile at a false-alarm rate of 1e-6 per check (the draws are seeded, so
#: these are fixed outcomes; the bound says how far a correct generator may stray)
Z = 4.89


def _same_tape(a: Tape, b: Tape) -> None:
    for name in ("ts", "price", "qty", "stream"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


def _same_population(a: Population, b: Population) -> None:
    for name in ("collateral", "size", "entry", "mode"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= Z * math.sqrt(n * p * (1.0 - p)) + 1


def _smoothstep(z: np.ndarray) -> np.ndarray:
    z = np.clip(z, 0.0, 1.0)
    return 3.0 * z ** 2 - 2.0 * z ** 3


# ------------------------------------------------------------------------------ crash tapes
#: a crash on a regular 1,000-tick grid: a slide from 20% to 40% of the tape with two gaps, a
#: 10% rebound after it (the benchmark's shape)
TICKS = 1_000
DROP, FALL, REBOUND = 0.40, (0.2, 0.4), 0.10
GAPS = (Gap(0.25, 0.05), Gap(0.3, 0.1))


def _bench_shape(gaps=GAPS, noise: Noise | None = None, rebound: float = REBOUND, seed: int = 1) -> Tape:
    a, b = FALL
    return crash_tape(TICKS, seed, start_price=100.0, start_ns=START_NS, tick_ns=NS,
                      ramps=(Ramp(a, b - a, generators.slide_log_move(DROP, gaps)), Ramp(b, 1.0 - b, math.log1p(rebound))),
                      gaps=gaps, noise=noise)


def test_short_synthetic_tapes_work():
    """Fewer ticks than the noise's 501-tick detrending window: the window shrinks to the tape
    (a 100-tick synthetic scenario used to fail on a shape mismatch)."""
    for ticks in (2, 100, 500):
        tape = synthetic.crash_tape(ticks, seed=1)
        assert len(tape) == ticks and len(tape.stream) == ticks
        assert np.all(np.isfinite(tape.price)) and np.all(tape.price > 0)
    # the noise still reverts to the path: well within 1% of it
    tape = synthetic.crash_tape(300, seed=2)
    assert np.max(np.abs(np.log(tape.price / tape.stream))) < 0.01 + 0.035  # noise + the wick's depth


def test_same_seed_same_tape_and_population():
    """Seeded: the same seed gives the same arrays, another seed other ones."""
    kw = dict(start_price=121_700.0, start_ns=START_NS, duration_s=600.0, time_unit_s=60.0,
              ramps=(Ramp(2.0, 3.0, -0.1),), wicks=(Wick(5.0, 0.1, 0.02),), noise=Noise(1e-4, detrend_ticks=51),
              index_stream=True, trade_sizes=(-3.0, 1.5))
    _same_tape(crash_tape(2_000, 5, **kw), crash_tape(2_000, np.random.default_rng(5), **kw))
    other = crash_tape(2_000, 6, **kw)
    assert not np.array_equal(other.price, crash_tape(2_000, 5, **kw).price)
    assert not np.array_equal(other.ts, crash_tape(2_000, 5, **kw).ts)
    pkw = dict(price=100.0, long_share=0.6, leverage=LeverageRange(long=(3.0, 50.0), short=(2.0, 20.0)))
    _same_population(leveraged_population(1_000, 5, **pkw), leveraged_population(1_000, 5, **pkw))
    assert not np.array_equal(leveraged_population(1_000, 6, **pkw).size, leveraged_population(1_000, 5, **pkw).size)


def test_crash_depth_and_timing_follow_the_parameters():
    """Without noise the tape is start x exp(ramps + gaps) exactly: flat before the slide, exactly
    DROP lower where the slide ends (slide and gaps together), up REBOUND from there at the end."""
    tape = _bench_shape()
    a, b = FALL
    x = np.arange(TICKS) / TICKS
    slide = math.log1p(-DROP) - sum(math.log1p(-g.fall) for g in GAPS)
    logp = slide * _smoothstep((x - a) / (b - a)) + math.log1p(REBOUND) * _smoothstep((x - b) / (1.0 - b))
    for g in GAPS:
        logp[int(g.tick_share * TICKS):] += math.log1p(-g.fall)
    np.testing.assert_allclose(tape.price, 100.0 * np.exp(logp), rtol=1e-12)
    assert np.all(tape.price[:int(a * TICKS) + 1] == 100.0)
    bottom = int(b * TICKS)  # x = 0.4 exactly: the slide is complete, the rebound not begun
    assert tape.price[bottom] == pytest.approx(100.0 * (1.0 - DROP), rel=1e-12)
    assert int(np.argmin(tape.price)) == bottom
    assert tape.price[-1] == pytest.approx(100.0 * (1.0 - DROP) * (1.0 + REBOUND), rel=1e-4)  # z = 1 - 1/600
    # a regular grid of tick_ns from start_ns; no sizes, no stream
    assert np.array_equal(tape.ts, START_NS + NS * np.arange(TICKS))
    assert np.all(tape.qty == 0.0) and tape.stream is None


def test_each_gap_drops_every_tick_from_its_share_of_the_ticks():
    """Against the same slide without the jumps, the ticks from int(share x ticks) on are lower by
    the gap's size, and none before."""
    with_gaps = _bench_shape()
    slide = generators.slide_log_move(DROP, GAPS)
    a, b = FALL
    without = crash_tape(TICKS, 1, start_price=100.0, start_ns=START_NS, tick_ns=NS,
                         ramps=(Ramp(a, b - a, slide), Ramp(b, 1.0 - b, math.log1p(REBOUND))))
    expected = np.ones(TICKS)
    for g in GAPS:
        expected[int(g.tick_share * TICKS):] *= 1.0 - g.fall
    np.testing.assert_allclose(with_gaps.price / without.price, expected, rtol=1e-12)
    assert int(GAPS[0].tick_share * TICKS) == 250 and expected[249] == 1.0 and expected[250] == 0.95


def test_wick_stream_and_random_times():
    """Random arrival times over duration_s (sorted, the first at the start); the wick is a dip of
    its depth at its centre (hours here), absent from the index stream, which is the path of
    the ramps; trade sizes lognormal."""
    depth, center, width = 0.05, 1.34, 0.02
    tape = crash_tape(20_000, 3, start_price=121_700.0, start_ns=START_NS, duration_s=7_200.0, time_unit_s=3_600.0,
                      ramps=(Ramp(1.0, 0.35, -0.12),), wicks=(Wick(center, width, depth),), index_stream=True,
                      trade_sizes=(-3.0, 1.5))
    assert tape.ts[0] == START_NS and np.all(np.diff(tape.ts) >= 0) and tape.ts[-1] < START_NS + 7_200 * NS
    hours = (tape.ts - START_NS) / NS / 3_600.0
    dip = np.log(tape.price / tape.stream)
    assert dip.min() == pytest.approx(-depth, rel=1e-3)
    assert abs(hours[np.argmin(dip)] - center) < 0.002
    assert np.all(dip[np.abs(hours - center) > 8 * width] > -1e-12)
    np.testing.assert_allclose(tape.stream, 121_700.0 * np.exp(-0.12 * _smoothstep((hours - 1.0) / 0.35)), rtol=1e-6)
    log_qty = np.log(tape.qty)
    assert abs(log_qty.mean() + 3.0) < Z * 1.5 / math.sqrt(len(tape))


def test_noise_stays_in_its_band():
    """Reflected noise never leaves +/- band around the path; detrended noise has mean ~0."""
    band = 0.002
    quiet = _bench_shape(noise=Noise(band / 20.0, band=band))
    plain = _bench_shape()
    off = np.log(quiet.price / plain.price)
    assert np.max(np.abs(off)) <= band * (1 + 1e-9) and np.max(np.abs(off)) > band / 10
    q = generators.quiet_tape(5_000, 2, start_price=100.0, start_ns=START_NS, tick_ns=1_000, step=1e-4, band=0.001)
    assert np.all(np.abs(q.price / 100.0 - 1.0) <= 0.001 * (1 + 1e-9)) and np.ptp(q.price) > 0.01


# ------------------------------------------------------------------------------ populations
N = 20_000


def test_open_interest_sides_modes_and_flat_accounts():
    """Long notional at entry is open_interest x long_share exactly, short the rest; each account
    long, cross, flat with its stated probability; flat accounts hold collateral only."""
    oi, long_share, cross_share, flat_share = 5e8, 0.7, 0.3, 0.05
    pop = leveraged_population(N, 9, price=100.0, long_share=long_share, open_interest=oi,
                               leverage=DiscreteLeverage((2.0, 10.0), (0.5, 0.5)), cross_share=cross_share,
                               cross_excess=(1.0, 3.0), flat_share=flat_share)
    notional = np.abs(pop.size) * pop.entry
    long, short, flat = pop.size > 0, pop.size < 0, pop.size == 0
    assert notional[long].sum() == pytest.approx(oi * long_share, rel=1e-12)
    assert notional[short].sum() == pytest.approx(oi * (1.0 - long_share), rel=1e-12)
    positioned = int((~flat).sum())
    assert _binomial_ok(int(flat.sum()), N, flat_share)
    assert _binomial_ok(int(long.sum()), positioned, long_share)
    assert _binomial_ok(int((pop.mode == MarginMode.CROSS).sum()), N, cross_share)
    lo, hi = FLAT_COLLATERAL_USD
    assert np.all((pop.collateral[flat] >= lo) & (pop.collateral[flat] < hi))


def test_leverage_within_its_caps():
    """Equity at the start price over notional at it is the margin fraction: within each side's
    [1 / high, 1 / low] for a range; one of 1 / values for isolated accounts of a discrete
    distribution, and up to cross_excess times that for cross ones."""
    price = 100.0
    caps = LeverageRange(long=(3.0, 50.0), short=(2.0, 20.0))
    pop = leveraged_population(N, 4, price=price, long_share=0.6, leverage=caps, entry_spread=0.02,
                               entry_scatter="uniform")
    held = (pop.size != 0) & (pop.collateral > 0)  # collateral 0: profit alone exceeds the margin
    equity = pop.collateral + pop.size * (price - pop.entry)
    for side, (low, high) in ((pop.size > 0, caps.long), (pop.size < 0, caps.short)):
        k = held & side
        f = equity[k] / (np.abs(pop.size[k]) * price)
        assert f.min() >= 1.0 / high * (1 - 1e-9) and f.max() <= 1.0 / low * (1 + 1e-9)
        assert f.min() < 1.0 / high * 1.05 and f.max() > 1.0 / low * 0.95  # the range is used
    assert np.all(np.abs(pop.entry / price - 1.0) <= 0.02 * (1 + 1e-12))

    values = (2.0, 5.0, 40.0)
    pop = leveraged_population(N, 5, price=price, long_share=0.5, leverage=DiscreteLeverage(values, (0.2, 0.5, 0.3)),
                               cross_excess=(1.0, 3.0))
    held = (pop.size != 0) & (pop.collateral > 0)
    leverage = np.full(N, np.nan)
    leverage[held] = np.abs(pop.size[held]) * price / (pop.collateral + pop.size * (price - pop.entry))[held]
    iso = held & (pop.mode == MarginMode.ISOLATED)
    nearest = np.array(values)[np.argmin(np.abs(leverage[iso, None] - np.array(values)), axis=1)]
    np.testing.assert_allclose(leverage[iso], nearest, rtol=1e-9)
    assert set(np.unique(nearest)) == set(values)
    cross = held & (pop.mode == MarginMode.CROSS)
    assert leverage[cross].min() >= min(values) / 3.0 * (1 - 1e-9) and leverage[cross].max() <= max(values) * (1 + 1e-9)


def test_draw_order_changes_the_draws_not_their_meaning():
    """Another draw order gives other accounts from the same seed, with the same properties."""
    kw = dict(price=100.0, long_share=0.6, leverage=LeverageRange(long=(3.0, 50.0), short=(2.0, 20.0)),
              open_interest=1e7)
    a = leveraged_population(N, 3, **kw)
    b = leveraged_population(N, 3, draw_order=bench.POPULATION_DRAW_ORDER, **kw)
    assert not np.array_equal(a.size, b.size)
    for p in (a, b):
        assert (np.abs(p.size[p.size > 0]) * p.entry[p.size > 0]).sum() == pytest.approx(0.6e7, rel=1e-12)


def test_bad_parameters_one_line_each():
    tape_kw = dict(start_price=100.0, start_ns=0)
    assert "exactly one of tick_ns" in raised_line(crash_tape, 10, 1, **tape_kw)
    assert "exactly one of tick_ns" in raised_line(crash_tape, 10, 1, tick_ns=1, duration_s=1.0, **tape_kw)
    assert raised_line(crash_tape, 10, 1, tick_ns=1, ramps=(Ramp(0.1, 0.0, -1.0),), **tape_kw).startswith(
        "ramps[0].length: expected > 0")
    assert raised_line(crash_tape, 10, 1, tick_ns=1, gaps=(Gap(0.5, 1.0),), **tape_kw).startswith("gaps[0]:")
    assert "smoothstep_order" in raised_line(crash_tape, 10, 1, tick_ns=1, smoothstep_order="cubic", **tape_kw)
    assert "exactly one of band or detrend_ticks" in raised_line(Noise, 0.1)
    assert raised_line(DiscreteLeverage, (2.0, 5.0), (0.5, 0.4)).startswith(
        "leverage weights: expected weights summing to 1")
    assert raised_line(LeverageRange, (5.0, 2.0), (1.0, 2.0)).startswith("leverage.long:")
    pkw = dict(price=100.0, long_share=0.5, leverage=LeverageRange((2.0, 5.0), (2.0, 5.0)))
    assert raised_line(leveraged_population, 0, 1, **pkw) == "accounts: expected at least 1 (got 0)"
    assert raised_line(leveraged_population, 10, 1, draw_order=ASPECTS[:-1], **pkw).startswith("draw_order:")
    swapped = ("side", "flat_collateral", "size", "leverage", "entry", "mode", "flat")
    assert "flat before flat_collateral" in raised_line(leveraged_population, 10, 1, draw_order=swapped, **pkw)


# ------------------------------------------------------------------------------ the callers
def test_synthetic_scenario_is_built_by_the_shared_generators():
    """synthetic.crash_tape / population / crash_scenario give exactly the shared generators'
    arrays for the parameters written out here."""
    tape = synthetic.crash_tape(3_000, drop=0.2, wick=0.05, rebound=0.03, noise=0.001, seed=3,
                                start_price=2_000.0, duration_s=5_400.0)
    direct = crash_tape(3_000, np.random.default_rng(3), start_price=2_000.0, start_ns=synthetic.CRASH_DAY_START_NS,
                        duration_s=5_400.0, time_unit_s=3_600.0,
                        ramps=(Ramp(0.0, 1.0, -0.02, smooth=False), Ramp(1.0, 0.35, -0.2), Ramp(1.35, 0.65, 0.03)),
                        wicks=(Wick(1.34, 0.02, 0.05),), noise=Noise(0.001, detrend_ticks=501), index_stream=True,
                        trade_sizes=(-3.0, 1.5), smoothstep_order="square-first")
    _same_tape(tape, direct)
    pop = synthetic.population(2_000, price=50.0, open_interest=3e6, long_share=0.4, leverage=(1, 3, 100),
                               leverage_weights=(0.5, 0.25, 0.25), cross_share=0.9, flat_share=0.1,
                               entry_spread=0.05, seed=8)
    direct_pop = leveraged_population(2_000, np.random.default_rng(8), price=50.0, long_share=0.4, open_interest=3e6,
                                      leverage=DiscreteLeverage((1.0, 3.0, 100.0), (0.5, 0.25, 0.25)),
                                      notional_median=1.0, notional_sigma=1.5, entry_spread=0.05,
                                      entry_scatter="lognormal", cross_share=0.9, cross_excess=(1.0, 3.0),
                                      flat_share=0.1, draw_order=ASPECTS)
    _same_population(pop, direct_pop)
    sc = synthetic.crash_scenario(ticks=2_000, accounts=300, seed=3)
    _same_tape(sc.tape, synthetic.crash_tape(2_000, seed=3))
    _same_population(sc.population, synthetic.population(300, price=float(sc.tape.price[0]), seed=4))


def test_bench_workloads_are_built_by_the_shared_generators():
    """bench.crash and bench.quiet: their tape, then their population, from one seeded stream of
    the shared generators, for the parameters written out here."""
    w = bench.crash(3_000, 40)
    rng = np.random.default_rng(23)
    tick_ns = round(10_000.0 * NS / 3_000)
    gaps = tuple(Gap(p, g) for p, g in ((0.23, 0.03), (0.26, 0.035), (0.29, 0.03), (0.32, 0.04)))
    tape = crash_tape(3_000, rng, start_price=100.0, start_ns=bench.START_NS, tick_ns=tick_ns,
                      ramps=(Ramp(0.2, 0.4 - 0.2, generators.slide_log_move(0.4, gaps)), Ramp(0.4, 0.6, math.log1p(0.1))),
                      gaps=gaps, noise=Noise(0.001 / 20.0, band=0.001), smoothstep_order="slope-first")
    _same_tape(w.scenario.tape, tape)
    pop = leveraged_population(40, rng, price=float(tape.price[0]), long_share=0.6,
                               leverage=LeverageRange(long=(3.0, 50.0), short=(2.0, 20.0)), notional_median=10_000.0,
                               notional_sigma=1.0, entry_spread=0.02, entry_scatter="uniform", cross_share=0.5,
                               flat_share=0.01,
                               draw_order=("side", "size", "entry", "leverage", "flat", "flat_collateral", "mode"))
    _same_population(w.scenario.population, pop)

    w = bench.quiet(2_000, 50)
    rng = np.random.default_rng(11)
    _same_tape(w.scenario.tape, generators.quiet_tape(2_000, rng, start_price=100.0, start_ns=bench.START_NS,
                                                      tick_ns=1_000_000, step=1e-5, band=0.0005))
    pop = leveraged_population(50, rng, price=100.0, long_share=0.5, leverage=LeverageRange((2.0, 5.0), (2.0, 5.0)),
                               notional_median=10_000.0, notional_sigma=1.0, entry_spread=0.01,
                               entry_scatter="uniform", cross_share=0.5, flat_share=0.01,
                               draw_order=bench.POPULATION_DRAW_ORDER)
    _same_population(w.scenario.population, pop)
