"""Funding streams (validation) and funding rates computed from the premium: the venues'
documented example (Hyperliquid), hand-worked examples (Binance's time weighting, caps, N-hour
intervals) and the 12 COIN-M alt perps of 2025-10-10 against their spot tapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskengine.data import Catalog
from riskengine.funding import (
    HOUR_NS,
    SECOND_NS,
    FundingStream,
    binance_cap,
    binance_funding,
    hyperliquid_funding,
    premium_index,
    rate_from_premium,
)

T0 = int(pd.Timestamp("2025-10-01T00:00:00Z").value)  # a UTC midnight: on every funding grid
H8 = 8 * HOUR_NS


# ------------------------------------------------------------------------------ the stream
def test_a_valid_stream_is_read_only_and_keeps_its_rows():
    ts = T0 + H8 * np.arange(4) + np.array([0, 1_000_000, 0, 2_000_000])  # ms of jitter, as Binance's calc_time
    s = FundingStream.from_arrays(ts, [0.0001, -0.0002, 0.0003, 0.0], H8, symbol="BTCUSDT")
    assert len(s) == 4 and s.symbol == "BTCUSDT"
    assert s.interval.tolist() == [H8] * 4
    with pytest.raises(ValueError):
        s.rate[0] = 1.0
    # pays rate x size x mark: a long of 2 at 100 pays 0.02 at the first time, receives 0.04 at the second
    assert s.payments(2.0, 100.0)[:2].tolist() == pytest.approx([0.02, -0.04])


def test_an_interval_switch_is_not_a_gap():
    # Binance moves a symbol from 8 h to 4 h funding: 00:00, 08:00 (8 h), then 12:00, 16:00 (4 h)
    ts = T0 + HOUR_NS * np.array([0, 8, 12, 16])
    s = FundingStream.from_arrays(ts, [0.0001] * 4, [H8, H8, 4 * HOUR_NS, 4 * HOUR_NS])
    assert np.diff(s.ts).tolist() == [H8, 4 * HOUR_NS, 4 * HOUR_NS]


@pytest.mark.parametrize("ts, rate, message", [
    ([T0, T0 + 2 * H8, T0 + H8], [0.0] * 3,
     r"^funding\.ts\[2\] = 2025-10-01T08:00:00.000Z is earlier than funding\.ts\[1\] = 2025-10-01T16:00:00.000Z: "
     r"expected increasing funding times"),
    ([T0, T0 + H8, T0 + H8], [0.0] * 3,
     r"^funding\.ts\[2\] = 2025-10-01T08:00:00.000Z repeats funding\.ts\[1\]: expected one rate per funding time$"),
    ([T0, T0 + H8, T0 + 3 * H8], [0.0] * 3,
     r"^funding\.ts\[2\] = 2025-10-02T00:00:00.000Z comes 16h after funding\.ts\[1\] = 2025-10-01T08:00:00.000Z: "
     r"expected the next funding time 8h later \(a missing funding time\)$"),
    ([T0, T0 + H8, T0 + H8 + HOUR_NS], [0.0] * 3,
     r"comes 1h after .*: expected the next funding time 8h later \(a funding time off the schedule\)$"),
    ([T0, T0 + H8], [0.0001, float("nan")],
     r"^funding\.rate\[1\] = nan at 2025-10-01T08:00:00.000Z: expected a finite rate$"),
    ([T0, T0 + H8], [0.0001, float("-inf")], r"^funding\.rate\[1\] = -inf .*expected a finite rate$"),
    ([T0, T0 + H8], [0.0001, 0.75], r"^funding\.rate\[1\] = 0\.75 at 2025-10-01T08:00:00.000Z: beyond the sanity "
                                    r"bound \|rate\| <= 0\.05 per interval"),
])
def test_bad_streams_are_refused_in_one_line(ts, rate, message):
    with pytest.raises(ValueError, match=message) as err:
        FundingStream.from_arrays(ts, rate, H8)
    assert "\n" not in str(err.value)


def test_the_sanity_bound_and_tolerance_are_settings():
    # 0.75 (75%, someone's percent) passes only under a looser bound; a 2-minute late time only
    # under a wider tolerance
    assert FundingStream.from_arrays([T0], [0.75], H8, max_abs_rate=1.0).rate[0] == 0.75
    late = [T0, T0 + H8 + 120 * SECOND_NS]
    with pytest.raises(ValueError, match="off the schedule|missing funding time"):
        FundingStream.from_arrays(late, [0.0, 0.0], H8)
    assert len(FundingStream.from_arrays(late, [0.0, 0.0], H8, tolerance_ns=180 * SECOND_NS)) == 2


# ------------------------------------------------------------------------------ the formulas
def test_premium_index_formula():
    # [max(0, bid - index) - max(0, index - ask)] / index: 0 inside the impact spread
    assert premium_index([10_100, 9_990, 9_900], [10_120, 10_010, 9_950], 10_000).tolist() == pytest.approx(
        [0.01, 0.0, -0.005])


def test_hyperliquid_documented_example_to_the_cent():
    """Hyperliquid Docs, Funding, "Numerical Example": interest 0.01%, impact bid 10,100, spot
    10,000, 10 BTC long -> premium 1%, clamp(0.01% - 1%) = -0.05%, funding rate 0.95% (the
    8-hour formula), paid one eighth each hour."""
    premium = premium_index(10_100, 10_120, 10_000)
    assert premium == pytest.approx(0.01)
    assert rate_from_premium(premium, 8) == pytest.approx(0.0095, abs=1e-15)  # the docs' 0.95%
    hourly = rate_from_premium(premium, 1)
    assert hourly == pytest.approx(0.0095 / 8, abs=1e-15)  # 0.11875% per hour
    # paid on position size x oracle price: 10 x 10,000 x 0.0011875 = 118.75 USDC per hour
    assert round(10 * 10_000 * hourly, 2) == 118.75

    # the same from price series: perp trading at 10,100 against an oracle at 10,000 for 3 hours
    perp = (T0 + SECOND_NS * np.arange(0, 3 * 3600 + 1), np.full(3 * 3600 + 1, 10_100.0))
    index = (np.array([T0]), np.array([10_000.0]))
    s = hyperliquid_funding(perp, index, symbol="BTC")
    assert s.ts.tolist() == [T0 + HOUR_NS, T0 + 2 * HOUR_NS, T0 + 3 * HOUR_NS]
    assert s.interval.tolist() == [HOUR_NS] * 3
    assert s.premium == pytest.approx([0.01] * 3)
    assert [round(10 * 10_000 * r, 2) for r in s.rate] == [118.75] * 3


def test_a_published_hyperliquid_record_follows_the_hourly_rule():
    # a fundingHistory record as a public client quotes it: HYPE, "fundingRate": "0.0000125",
    # "premium": "-0.0002319741". I - P = 0.0001 + 0.000232 = 0.000332 is inside the ±0.05% clamp,
    # so the 8-hour rate is the interest, 0.0001, and the hour pays an eighth: 0.0000125
    assert rate_from_premium(-0.0002319741, 1) == pytest.approx(0.0000125, abs=1e-15)


def test_hyperliquid_cap_is_4_percent_an_hour():
    # a perp 50% below its oracle all hour: premium -0.5, 8-hour rate -0.5 + 0.0005 = -0.4995, an
    # hour's eighth -0.0624375, beyond the 4%/hour cap -> -0.04
    perp = (T0 + SECOND_NS * np.arange(0, 3601), np.full(3601, 5_000.0))
    s = hyperliquid_funding(perp, (np.array([T0]), np.array([10_000.0])))
    assert s.premium[0] == pytest.approx(-0.5) and s.rate.tolist() == [-0.04]


def _two_level_perp(first: float, second: float, start: int = T0):
    """A perp at ``first`` for the first 4 hours of the 8-hour interval after ``start`` (until 1 s
    after its middle), then at ``second``: the 5-second samples k = 1..2880 (at 5 s .. 4 h) see
    ``first`` and k = 2881..5760 see ``second``."""
    return (np.array([start, start + 4 * HOUR_NS + SECOND_NS, start + H8]), np.array([first, second, second]))


def test_binance_time_weighted_average_hand_worked():
    """Index 10,000; perp 10,010 (premium 0.1%) for the first 4 h, 10,030 (0.3%) for the last 4 h.

    Weights k = 1..5760: the first 2880 samples weigh 2880 x 2881 / 2 = 4,148,640, all of them
    5760 x 5761 / 2 = 16,591,680, the last 2880 the rest, 12,443,040.
    P = (4,148,640 x 0.001 + 12,443,040 x 0.003) / 16,591,680 = 41,477.76 / 16,591,680 = 0.0024999132
    (a plain mean would be 0.002). I - P = 0.0001 - 0.0024999 = -0.0024 -> clamped to -0.0005;
    F = 0.0024999132 - 0.0005 = 0.0019999132 per 8 h, under BTCUSDT's cap 0.75 x 0.4% = 0.3%.
    A 1 BTC long at mark 10,000 pays 10,000 x 0.0019999132 = 19.999 -> $20.00 (the plain mean
    would give $15.00).
    """
    index = (np.array([T0]), np.array([10_000.0]))
    s = binance_funding(_two_level_perp(10_010.0, 10_030.0), index, cap=binance_cap(0.004), symbol="BTCUSDT")
    assert s.ts.tolist() == [T0 + H8]
    assert s.premium[0] == pytest.approx(41_477.76 / 16_591_680, rel=1e-9)
    assert s.rate[0] == pytest.approx(41_477.76 / 16_591_680 - 0.0005, rel=1e-9)
    assert round(1 * 10_000 * s.rate[0], 2) == 20.00


def test_binance_cap_binds_and_quiet_premium_pays_the_interest():
    index = (np.array([T0]), np.array([10_000.0]))
    # premiums 1% then 3%: P = 0.024999, F = 0.024499 -> capped at 0.75 x 0.4% = 0.3%: $30.00 on 1 BTC at 10,000
    s = binance_funding(_two_level_perp(10_100.0, 10_300.0), index, cap=binance_cap(0.004))
    assert s.rate.tolist() == [pytest.approx(0.003)] and round(10_000 * s.rate[0], 2) == 30.00
    # the same perp below the index: premiums -1%, -3% -> floor -0.3%
    s = binance_funding(_two_level_perp(9_900.0, 9_700.0), index, cap=binance_cap(0.004))
    assert s.rate.tolist() == [pytest.approx(-0.003)]
    # "as long as the premium index is between -0.04% and 0.06%, the funding rate will equal 0.01%":
    # premiums +0.05% then -0.03% (P = 0.25 x 0.0005 + 0.75 x -0.0003 = -0.0001) -> exactly 0.0001
    s = binance_funding(_two_level_perp(10_005.0, 9_997.0), index, cap=binance_cap())
    assert -0.0004 < s.premium[0] < 0.0006 and s.rate[0] == pytest.approx(0.0001, abs=1e-15)
    # a 4-hour symbol pays (P + clamp(I - P)) x 4/8: the quiet rate is 0.005%
    perp = (np.array([T0, T0 + 4 * HOUR_NS]), np.array([10_002.0, 10_002.0]))
    s = binance_funding(perp, index, cap=binance_cap(), interval_hours=4)
    assert s.ts.tolist() == [T0 + 4 * HOUR_NS] and s.rate[0] == pytest.approx(0.00005, abs=1e-15)


def test_binance_cap_rule():
    assert binance_cap(0.004) == pytest.approx(0.003)  # BTCUSDT: 0.75 x 0.4%
    assert binance_cap() == 0.02  # other USDⓈ-M perpetuals
    with pytest.raises(ValueError, match="maintenance_margin_ratio: expected a fraction"):
        binance_cap(4.0)


def test_only_whole_intervals_are_computed():
    index = (np.array([T0]), np.array([10_000.0]))
    # the perp starts 2 s after 00:00, before the first 5-second sample: 00:00-08:00 counts; it
    # ends at 15:59:55, one 5-second step before 16:00: 08:00-16:00 counts too
    perp = (np.array([T0 + 2 * SECOND_NS, T0 + 2 * H8 - 5 * SECOND_NS]), np.array([10_000.0, 10_000.0]))
    assert binance_funding(perp, index, cap=0.02).ts.tolist() == [T0 + H8, T0 + 2 * H8]
    # ending at 15:59:54 it does not
    perp = (np.array([T0 + 2 * SECOND_NS, T0 + 2 * H8 - 6 * SECOND_NS]), np.array([10_000.0, 10_000.0]))
    assert binance_funding(perp, index, cap=0.02).ts.tolist() == [T0 + H8]
    # starting 6 s after 00:00 misses the first sample: only 08:00-16:00
    perp = (np.array([T0 + 6 * SECOND_NS, T0 + 2 * H8]), np.array([10_000.0, 10_000.0]))
    assert binance_funding(perp, index, cap=0.02).ts.tolist() == [T0 + 2 * H8]
    with pytest.raises(ValueError, match=r"^binance funding X: the perp .* cover no whole 8h funding interval$"):
        binance_funding((np.array([T0, T0 + HOUR_NS]), np.array([1.0, 1.0])), index, cap=0.02, symbol="X")


@pytest.mark.parametrize("perp, kwargs, message", [
    ((np.array([T0, T0 - 1]), np.array([1.0, 1.0])), {}, r"^perp\.ts\[1\] is earlier than perp\.ts\[0\]"),
    ((np.array([T0]), np.array([0.0])), {}, r"^perp\.price\[0\] = 0\.0: expected a finite price > 0$"),
    ((np.array([T0]),), {}, r"^perp: expected a \(ts, price\) pair of arrays$"),
    ((np.array([T0]), np.array([1.0])), {"cap": -0.01}, r"^cap: expected a rate > 0"),
])
def test_bad_price_series_are_refused(perp, kwargs, message):
    with pytest.raises(ValueError, match=message):
        binance_funding(perp, (np.array([T0]), np.array([1.0])), **{"cap": 0.02, **kwargs})


# ------------------------------------------------------------------------------ 2025-10-10
ALTS = ("AAVE", "ATOM", "AVAX", "BCH", "DOT", "ETC", "FIL", "TRX", "UNI", "WIF", "WLD", "XLM")
DAY = "2025-10-10"
CRASH_HOUR_END = int(pd.Timestamp(f"{DAY}T22:00:00Z").value)  # 21:00-22:00, the peak minute 21:15 in it
CRASH_8H_END = int(pd.Timestamp("2025-10-11T00:00:00Z").value)  # 16:00-24:00


def _index_file(alt: str) -> str:
    # TRX has no Coinbase tape: Binance spot TRXUSDT stands in (../shared/data/README.md)
    if alt == "TRX":
        return f"{DAY}/spot-trades/binance_trades_{DAY}_TRXUSDT.csv.gz"
    return f"{DAY}/spot-trades/coinbase_trades_{DAY}_{alt}-USD.csv.gz"


@pytest.fixture(scope="module")
def tapes(shared_data, tmp_path_factory):
    """Each alt's COIN-M perp tape and its spot tape (the index stand-in), imported as the data
    tests import them (Tardis CSV through the catalog)."""
    catalog = Catalog(tmp_path_factory.mktemp("funding") / "catalog")
    out = {}
    for alt in ALTS:
        perp_file = f"{DAY}/binance-coinm-perp-trades/binance-delivery_trades_{DAY}_{alt}USD_PERP.csv.gz"
        catalog.import_file(shared_data / perp_file)
        report = catalog.import_file(shared_data / _index_file(alt))
        perp = catalog.arrays("binance-delivery", f"{alt}USD_PERP")[:2]
        out[alt] = (perp, catalog.arrays(report.source, report.symbol)[:2])
    return out


def _premium_by_pandas(perp, index, end: int, hours: int, weights: str) -> float:
    """The average premium of the interval ending at ``end``, recomputed independently: a 5 s
    grid, the last perp trade and last index trade at or before each point (merge_asof), the
    premium (last - index) / index, then a plain or 1..n-weighted mean."""
    grid = pd.DataFrame({"t": pd.date_range(pd.Timestamp(end - hours * HOUR_NS + 5 * SECOND_NS, tz="UTC"),
                                            pd.Timestamp(end, tz="UTC"), freq="5s")})
    frames = [pd.DataFrame({"t": pd.to_datetime(ts, utc=True), name: px}) for (ts, px), name in
              ((perp, "perp"), (index, "index"))]
    for frame in frames:
        grid = pd.merge_asof(grid, frame, on="t", direction="backward")
    premium = ((grid["perp"] - grid["index"]) / grid["index"]).to_numpy()
    w = np.arange(1, len(premium) + 1) if weights == "time" else np.ones(len(premium))
    return float((premium * w).sum() / w.sum())


@pytest.mark.parametrize("alt", ALTS)
def test_crash_hour_rates_follow_the_premium(tapes, alt):
    """Hyperliquid's rule on the real premium of each COIN-M alt perp against its spot tape: in
    the crash hour (21:00-22:00) the hour's premium, recomputed here, says where the clamp and
    the 4%/hour cap must bind, and the computed rate does exactly that; quiet hours pay the
    interest alone."""
    perp, index = tapes[alt]
    s = hyperliquid_funding(perp, index, symbol=alt)
    assert CRASH_HOUR_END in s.ts
    k = int(np.flatnonzero(s.ts == CRASH_HOUR_END)[0])
    premium = _premium_by_pandas(perp, index, CRASH_HOUR_END, 1, "equal")
    assert s.premium[k] == pytest.approx(premium, rel=1e-9, abs=1e-12)
    # the crash took every alt perp more than 0.04% below its spot: the clamp binds at +0.05%
    assert premium < -0.0004
    uncapped = (premium + 0.0005) / 8
    if uncapped <= -0.04:
        assert s.rate[k] == -0.04  # the cap
    else:
        assert s.rate[k] == pytest.approx(uncapped, rel=1e-9)
    # hours whose premium sits within (-0.04%, +0.06%) pay exactly the interest, 0.01% / 8
    quiet = (s.premium > -0.0004) & (s.premium < 0.0006)
    assert quiet.any() and np.allclose(s.rate[quiet], 0.0001 / 8, rtol=0, atol=1e-15)


def test_crash_hour_hits_hyperliquid_cap_somewhere(tapes):
    # the premium that makes the cap bind, (P + 0.0005) / 8 <= -4%, i.e. P <= -32.05% over the hour:
    # wherever the recomputed premium says so the rate sits on the cap, and the crash produced such an hour
    capped = []
    for alt, (perp, index) in tapes.items():
        s = hyperliquid_funding(perp, index, symbol=alt)
        k = int(np.flatnonzero(s.ts == CRASH_HOUR_END)[0])
        assert (s.rate[k] == -0.04) == (s.premium[k] <= -0.3205)
        capped.append(s.rate[k] == -0.04)
    assert any(capped)


@pytest.mark.parametrize("alt", ALTS)
def test_binance_8h_rates_follow_the_premium(tapes, alt):
    """Binance's rule (time-weighted premium, 8 h) with the USDⓈ-M "others" cap of 2% taken for
    these COIN-M perps (their own cap is not in the sources: an assumption of this test)."""
    perp, index = tapes[alt]
    s = binance_funding(perp, index, cap=0.02, symbol=alt)
    for k, end in enumerate(s.ts):
        premium = _premium_by_pandas(perp, index, int(end), 8, "time")
        assert s.premium[k] == pytest.approx(premium, rel=1e-9, abs=1e-12)
        expected = min(max(premium + min(max(0.0001 - premium, -0.0005), 0.0005), -0.02), 0.02)
        assert s.rate[k] == pytest.approx(expected, rel=1e-9, abs=1e-15)
        if end == CRASH_8H_END and premium <= -0.0205:  # the premium beyond the floor: the rate is the floor
            assert s.rate[k] == -0.02
