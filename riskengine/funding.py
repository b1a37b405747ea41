"""Funding rates: a validated per-instrument stream of rates at funding times, read from the
importers' files or the catalog, or computed from a perp price series and its index as each
venue documents it.

A :class:`FundingStream` holds one instrument's funding times (int64 ns UTC, increasing), the
rate paid at each (a fraction of notional per funding interval: positive, longs pay shorts)
and the interval each time closes. Importers (:mod:`riskengine.data.binance`
``read_funding_rate``, :mod:`riskengine.data.hyperliquid` ``read_funding_history``) store rates
as the catalog kind ``funding`` (:data:`riskengine.data.schema.FUNDING`).

Rates from the premium
----------------------
Both venues use the same structure [1]_ [2]_ ::

    premium  = [max(0, impact_bid - index) - max(0, index - impact_ask)] / index
    P        = average of the premium samples taken every 5 s over the interval
    F_8h     = P + clamp(I_8h - P, -0.05%, +0.05%)       I_8h = 0.01% (interest per 8 h)
    F        = F_8h * N / 8                               N = the interval in hours
    rate     = clamp(F, floor, cap)

* Binance USDⓈ-M [1]_: "Funding Rate (F) = [Average Premium Index (P) + clamp(interest rate -
  Premium Index (P), 0.05%, -0.05%)] / (8 / N)"; the interest is "0.03% daily (0.01% per funding
  interval since funding occurs every 8 hours)" (0% for some contracts, e.g. ETHBTC: pass
  ``interest_8h=0``); the premium index is computed every 5 s and P is its *time-weighted* average
  over the interval, sample ``k`` of ``n`` weighing ``k`` (``(1*P1 + 2*P2 + ... + n*Pn) / (1 + 2
  + ... + n)``, 5,760 samples per 8 h). Cap and floor per symbol: ``±0.75 x maintenance margin
  ratio`` for the listed majors (BTCUSDT: 0.75 x 0.4% = 0.3%), ``±2%`` for the other USDⓈ-M
  perpetuals, adjustable by Binance (:func:`binance_cap`). The cap of a COIN-M perpetual is not
  in the sources found here: it is a required setting.
* Hyperliquid [2]_: "The funding rate formula applies to 8 hour funding rate. However, funding
  is paid every hour at one eighth of the computed rate for each hour"; "The premium is sampled
  every 5 seconds and averaged over the hour" (a plain mean); interest "0.01% every 8 hours,
  which is 0.00125% every hour"; "Funding on Hyperliquid is capped at 4%/hour", for every asset.

Impact prices from a trade tape
-------------------------------
The venues sample impact bid/ask prices (the average fill of a fixed notional into the book:
Binance 200 USDT of margin at maximum leverage, Hyperliquid 20,000 USDC for BTC/ETH and 6,000
otherwise). A trade tape has no book, so the computed rates take the **last trade as of each
sample as both the impact bid and the impact ask** (:data:`IMPACT_STAND_IN`): the premium is then
``(last - index) / index``. This misses the spread (a real impact bid sits below the last trade
and an impact ask above it, so the venues' premium is 0 inside the spread and smaller in size
outside it): computed rates overstate small premiums. Pass the impact prices to
:func:`premium_index` when a book is available.

References
----------
.. [1] Binance, "Introduction to Binance Futures Funding Rates",
   https://www.binance.com/en/support/faq/360033525031 (formula, interest, 5-second premium
   index, time weighting, cap and floor), as quoted in public notes on the page found with the
   ``search`` tool; Binance Futures announcements on capped funding rates (e.g. OGNUSDT ±3%,
   2023-10-01) show caps are adjusted per symbol.
.. [2] Hyperliquid Docs, "Funding", https://hyperliquid.gitbook.io/hyperliquid-docs/trading/funding
   (formula, interest, hourly payment of 1/8, 5-second sampling, 4%/hour cap, numerical example).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskengine.scenario import _as_array, _first

HOUR_NS = 3_600 * 1_000_000_000
SECOND_NS = 1_000_000_000
#: interest per 8 hours, both venues (Binance "0.01% per funding interval" of 8 h; Hyperliquid
#: "0.01% every 8 hours") [1, 2]
INTEREST_8H = 0.0001
#: the clamp on (interest - premium), both venues: ±0.05% [1, 2]
PREMIUM_CLAMP = 0.0005
#: both venues sample the premium every 5 seconds [1, 2]
SAMPLE_NS = 5 * SECOND_NS
#: Hyperliquid: "capped at 4%/hour", the same for every asset [2]
HYPERLIQUID_CAP_PER_HOUR = 0.04
#: Binance USDⓈ-M perpetuals outside the listed majors: "± 2%" [1]
BINANCE_USDM_OTHER_CAP = 0.02
#: Binance's cap and floor for the listed majors: ±0.75 x maintenance margin ratio [1]
BINANCE_CAP_MMR_FACTOR = 0.75
#: what the computed rates use for the impact bid and ask without a book (module notes)
IMPACT_STAND_IN = "last trade as of each sample, as both impact bid and impact ask"
#: Sanity bound on |rate| per interval when a stream is read (not a venue rule, a setting:
#: Hyperliquid's cap is 4%/hour, Binance's at most ±1 by its own rule but ±2% or less in
#: practice; a rate beyond 5% of notional in one interval is taken for a unit error, e.g. percent)
MAX_ABS_RATE = 0.05
#: Tolerance on a funding time against the expected schedule (not a venue rule, a setting: the
#: venues' published times carry milliseconds of jitter, e.g. Binance ``calc_time``
#: 1780272000001)
TIME_TOLERANCE_NS = 60 * SECOND_NS


def _utc(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[ms]")) + "Z"


def _hours(ns: int | float) -> str:
    return f"{ns / HOUR_NS:g}h"


@dataclass(frozen=True)
class FundingStream:
    """One instrument's funding rates.

    Attributes
    ----------
    ts : ndarray of int64
        Funding times, ns UTC, increasing.
    rate : ndarray of float64
        Rate paid at each time, a fraction of notional for the interval that time closes
        (positive: longs pay shorts).
    interval : ndarray of int64
        The interval (ns) each funding time closes; constant for Hyperliquid (1 h), per row for
        Binance (8 h, 4 h or 1 h, switched by the venue).
    symbol : str or None
    premium : ndarray of float64 or None
        The average premium of each interval where known (Hyperliquid's history gives it; the
        computed rates return it).
    """

    ts: np.ndarray
    rate: np.ndarray
    interval: np.ndarray
    symbol: str | None = None
    premium: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, ts, rate, interval, symbol: str | None = None, premium=None, *,
                    max_abs_rate: float = MAX_ABS_RATE, tolerance_ns: int = TIME_TOLERANCE_NS,
                    where: str = "funding") -> "FundingStream":
        """Build and validate a stream (arrays are never modified).

        Parameters
        ----------
        ts : array_like of int64 ns or datetime64
            Funding times.
        rate : array_like of float
            Rate per interval at each time.
        interval : int or array_like of int
            Interval in ns: one for all times or one per time.
        symbol : str, optional
        premium : array_like of float, optional
            Average premium per interval (NaN where unknown).
        max_abs_rate : float
            Sanity bound on ``|rate|`` (:data:`MAX_ABS_RATE`).
        tolerance_ns : int
            How far a time may sit from the one its predecessor and interval predict
            (:data:`TIME_TOLERANCE_NS`).
        where : str
            What error lines start with (a file, ``source/symbol``).

        Raises
        ------
        ValueError
            One line naming ``where``, the field, the index and time, and what was expected:
            times out of order or repeated, a missing funding time (a gap longer than the
            interval) or one off the schedule, a non-finite rate or one beyond the bound.
        """
        ts_a = _as_array(f"{where}.ts", ts, np.int64)
        rate_a = _as_array(f"{where}.rate", rate, np.float64)
        n = len(ts_a)
        if n == 0:
            raise ValueError(f"{where}: expected at least one funding time (got none)")
        if len(rate_a) != n:
            raise ValueError(f"{where}.rate: length {len(rate_a)} does not match {where}.ts (length {n})")
        if np.ndim(interval) == 0:
            interval_a = np.full(n, interval, dtype=np.int64)
            interval_a.flags.writeable = False
        else:
            interval_a = _as_array(f"{where}.interval", interval, np.int64)
            if len(interval_a) != n:
                raise ValueError(f"{where}.interval: length {len(interval_a)} does not match {where}.ts "
                                 f"(length {n})")
        i = _first(lambda a: a <= 0, interval_a)
        if i >= 0:
            raise ValueError(f"{where}.interval[{i}] = {interval_a[i]}: expected a funding interval > 0 ns")
        if n > 1:
            other = where.rsplit(": ", 1)[-1]  # the second field named in a line: without a file prefix again
            step = np.diff(ts_a)
            i = _first(lambda d: d < 0, step)
            if i >= 0:
                raise ValueError(f"{where}.ts[{i + 1}] = {_utc(ts_a[i + 1])} is earlier than {other}.ts[{i}] = "
                                 f"{_utc(ts_a[i])}: expected increasing funding times (sort them first)")
            i = _first(lambda d: d == 0, step)
            if i >= 0:
                raise ValueError(f"{where}.ts[{i + 1}] = {_utc(ts_a[i + 1])} repeats {other}.ts[{i}]: expected one "
                                 f"rate per funding time")
            # a time closes the interval it names, or the one before it names (the venue switched
            # intervals at that time, e.g. Binance 8 h -> 4 h)
            now, before = interval_a[1:], interval_a[:-1]
            off = np.minimum(np.abs(step - now), np.abs(step - before))
            i = _first(lambda o: o > tolerance_ns, off)
            if i >= 0:
                expected = now[i] if abs(step[i] - now[i]) <= abs(step[i] - before[i]) else before[i]
                what = ("a missing funding time" if step[i] > expected
                        else "a funding time off the schedule")
                raise ValueError(f"{where}.ts[{i + 1}] = {_utc(ts_a[i + 1])} comes {_hours(step[i])} after "
                                 f"{other}.ts[{i}] = {_utc(ts_a[i])}: expected the next funding time "
                                 f"{_hours(expected)} later ({what})")
        i = _first(lambda a: ~np.isfinite(a), rate_a)
        if i >= 0:
            raise ValueError(f"{where}.rate[{i}] = {rate_a[i].item()!r} at {_utc(ts_a[i])}: expected a finite rate")
        i = _first(lambda a: np.abs(a) > max_abs_rate, rate_a)
        if i >= 0:
            raise ValueError(f"{where}.rate[{i}] = {rate_a[i].item()!r} at {_utc(ts_a[i])}: beyond the sanity bound "
                             f"|rate| <= {max_abs_rate:g} per interval (a fraction, not percent; max_abs_rate)")
        premium_a = None
        if premium is not None:
            premium_a = _as_array(f"{where}.premium", premium, np.float64)
            if len(premium_a) != n:
                raise ValueError(f"{where}.premium: length {len(premium_a)} does not match {where}.ts (length {n})")
            i = _first(lambda a: np.isinf(a), premium_a)
            if i >= 0:
                raise ValueError(f"{where}.premium[{i}] = {premium_a[i].item()!r}: expected a finite premium or NaN")
        return cls(ts_a, rate_a, interval_a, symbol, premium_a)

    @classmethod
    def from_table(cls, table, symbol: str | None = None, where: str = "funding", **limits) -> "FundingStream":
        """A stream from a table in the catalog's ``funding`` schema (``ts``, ``rate``,
        ``interval_hours``, ``premium``): what :meth:`riskengine.data.Catalog.read` returns for
        kind ``funding``. ``limits``: ``max_abs_rate``, ``tolerance_ns`` (:meth:`from_arrays`)."""
        import pyarrow as pa

        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        missing = [c for c in ("ts", "rate", "interval_hours") if c not in table.column_names]
        if missing:
            raise ValueError(f"{where}: missing column(s) {', '.join(missing)} (has {', '.join(table.column_names)})")
        table = table.combine_chunks()
        ts = table.column("ts")
        ts = ts.cast(pa.int64()) if pa.types.is_timestamp(ts.type) else ts
        hours = table.column("interval_hours").to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.flatnonzero(~(np.isfinite(hours) & (hours > 0)))
        if len(bad):
            raise ValueError(f"{where}.interval_hours[{bad[0]}] = {hours[bad[0]].item()!r}: expected an interval "
                             f"> 0 hours")
        premium = None
        if "premium" in table.column_names:
            premium = table.column("premium").to_numpy(zero_copy_only=False).astype(np.float64)
            premium = None if np.isnan(premium).all() else premium
        return cls.from_arrays(ts.to_numpy(zero_copy_only=False), table.column("rate").to_numpy(zero_copy_only=False),
                               np.round(hours * HOUR_NS).astype(np.int64), symbol, premium, where=where, **limits)

    @classmethod
    def from_catalog(cls, catalog, source: str, symbol: str, start=None, end=None, **limits) -> "FundingStream":
        """The ``funding`` rows of one source and symbol of a catalog (optionally within
        ``[start, end)``, as :meth:`riskengine.data.Catalog.read`), validated."""
        table = catalog.read("funding", source, symbol, start, end)
        return cls.from_table(table, symbol, where=f"catalog {catalog.root}: {source}/{symbol} funding", **limits)

    @classmethod
    def from_file(cls, path, source: str, symbol: str | None = None, kind: str | None = None,
                  **limits) -> "FundingStream":
        """A funding file read by its importer (Binance Vision ``fundingRate`` ``.zip``/``.csv``,
        Hyperliquid ``fundingHistory`` JSON), through a throw-away catalog as market-data files
        named in a config are read. ``symbol``: the one to take from a file holding several.

        Raises
        ------
        ValueError
            The importer's error (file, row, what was expected), a file holding several symbols
            without ``symbol``, or a stream error naming the file.
        """
        import tempfile
        from pathlib import Path

        from riskengine.data import Catalog

        path = Path(path)
        with tempfile.TemporaryDirectory(prefix="riskengine-") as tmp:
            catalog = Catalog(tmp)
            report = catalog.import_file(path, source=source, kind=kind)
            if report.kind != "funding":
                raise ValueError(f"{path}: holds {report.kind}, not funding rates")
            symbols = sorted({row["symbol"] for row in catalog.list()})
            if symbol is None:
                if len(symbols) != 1:
                    raise ValueError(f"{path}: holds {len(symbols)} symbols; choose one "
                                     f"(e.g. {', '.join(symbols[:5])})")
                symbol = symbols[0]
            elif symbol not in symbols:
                raise ValueError(f"{path}: holds no {symbol!r} (it holds {', '.join(symbols[:20])})")
            table = catalog.read("funding", report.source, symbol)
        return cls.from_table(table, symbol, where=f"{path}: {symbol}", **limits)

    def __len__(self) -> int:
        return len(self.ts)

    def payments(self, size, mark) -> np.ndarray:
        """What a position pays at each funding time: ``size x mark x rate`` (size signed, in
        base units; mark the price notional is valued at at that time: Binance the mark price,
        Hyperliquid the oracle price [2]_). Positive: paid, negative: received."""
        return np.asarray(size, dtype=np.float64) * np.asarray(mark, dtype=np.float64) * self.rate


# ------------------------------------------------------------------------ rates from the premium
def premium_index(impact_bid, impact_ask, index) -> np.ndarray:
    """The premium index, both venues' formula [1]_ [2]_:
    ``[max(0, impact_bid - index) - max(0, index - impact_ask)] / index``."""
    bid, ask, idx = (np.asarray(x, dtype=np.float64) for x in (impact_bid, impact_ask, index))
    return (np.maximum(0.0, bid - idx) - np.maximum(0.0, idx - ask)) / idx


def rate_from_premium(premium, interval_hours, interest_8h: float = INTEREST_8H,
                      clamp: float = PREMIUM_CLAMP) -> np.ndarray:
    """The uncapped rate per interval from the average premium ``P`` (both venues [1]_ [2]_):
    ``(P + clamp(I_8h - P, -clamp, +clamp)) x N / 8`` with N the interval in hours."""
    p = np.asarray(premium, dtype=np.float64)
    return (p + np.clip(interest_8h - p, -clamp, clamp)) * (np.asarray(interval_hours, dtype=np.float64) / 8.0)


def binance_cap(maintenance_margin_ratio: float | None = None) -> float:
    """Binance's funding cap (the floor is its negative) [1]_: ``0.75 x maintenance margin
    ratio`` for the listed majors (pass that ratio), :data:`BINANCE_USDM_OTHER_CAP` (±2%) for the
    other USDⓈ-M perpetuals (pass None). Binance adjusts caps per symbol by announcement: a
    replay of a given day should take that day's value."""
    if maintenance_margin_ratio is None:
        return BINANCE_USDM_OTHER_CAP
    if not 0 < maintenance_margin_ratio < 1:
        raise ValueError(f"maintenance_margin_ratio: expected a fraction in (0, 1) (got {maintenance_margin_ratio!r})")
    return BINANCE_CAP_MMR_FACTOR * maintenance_margin_ratio


def _series(name: str, series) -> tuple[np.ndarray, np.ndarray]:
    """A ``(ts, price)`` pair as validated arrays: times non-decreasing, prices finite > 0."""
    try:
        ts, price = series
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a (ts, price) pair of arrays") from None
    ts_a = _as_array(f"{name}.ts", ts, np.int64)
    px = _as_array(f"{name}.price", price, np.float64)
    if len(ts_a) == 0:
        raise ValueError(f"{name}: expected at least one price (got none)")
    if len(px) != len(ts_a):
        raise ValueError(f"{name}.price: length {len(px)} does not match {name}.ts (length {len(ts_a)})")
    i = _first(lambda a, b: b < a, ts_a[:-1], ts_a[1:])
    if i >= 0:
        raise ValueError(f"{name}.ts[{i + 1}] is earlier than {name}.ts[{i}]: expected non-decreasing times")
    i = _first(lambda a: ~(np.isfinite(a) & (a > 0)), px)
    if i >= 0:
        raise ValueError(f"{name}.price[{i}] = {px[i].item()!r}: expected a finite price > 0")
    return ts_a, px


def _as_of(ts: np.ndarray, px: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The last value at or before each time of ``at`` (callers ensure one exists)."""
    return px[np.searchsorted(ts, at, side="right") - 1]


def funding_times(perp_ts: np.ndarray, index_ts: np.ndarray, interval_ns: int, sample_ns: int,
                  start: int | None = None, end: int | None = None) -> np.ndarray:
    """Funding times on the UTC grid of ``interval_ns`` (multiples of it since the epoch: Binance
    00:00, 08:00, 16:00; Hyperliquid every hour) whose whole interval the series cover: both
    have a value at or before the interval's first sample, and the perp tape reaches within one
    sample step of the funding time (the index is carried as of each sample, as a stream aligned
    to a tape is: a steady oracle may publish rarely). ``start``/``end`` (ns) narrow them to
    ``start < T <= end``."""
    first = max(int(perp_ts[0]), int(index_ts[0]))
    last = int(perp_ts[-1])
    lo = -(-(first - sample_ns) // interval_ns) * interval_ns + interval_ns  # T - interval + sample >= first
    hi = ((last + sample_ns) // interval_ns) * interval_ns
    if start is not None:
        lo = max(lo, (int(start) // interval_ns + 1) * interval_ns)
    if end is not None:
        hi = min(hi, (int(end) // interval_ns) * interval_ns)
    return np.arange(lo, hi + 1, interval_ns, dtype=np.int64) if hi >= lo else np.empty(0, dtype=np.int64)


def average_premium(perp, index, times: np.ndarray, interval_ns: int, sample_ns: int = SAMPLE_NS,
                    weighting: str = "time") -> np.ndarray:
    """The average premium of the interval closing at each of ``times``: samples at ``T -
    interval + k x sample`` for ``k = 1..n`` (the last at ``T``), each the premium of the last
    perp trade (:data:`IMPACT_STAND_IN`) against the last index value at or before it;
    ``weighting`` ``"time"`` weighs sample ``k`` by ``k`` (Binance [1]_), ``"equal"`` is a plain
    mean (Hyperliquid [2]_)."""
    perp_ts, perp_px = perp
    index_ts, index_px = index
    if interval_ns % sample_ns:
        raise ValueError(f"sample_ns: {sample_ns} does not divide the interval {interval_ns}")
    n = interval_ns // sample_ns
    if weighting == "time":
        weights = np.arange(1, n + 1, dtype=np.float64)
    elif weighting == "equal":
        weights = np.ones(n, dtype=np.float64)
    else:
        raise ValueError(f"weighting: expected 'time' or 'equal' (got {weighting!r})")
    weights /= weights.sum()
    offsets = np.arange(1, n + 1, dtype=np.int64) * sample_ns - interval_ns
    out = np.empty(len(times), dtype=np.float64)
    for j, t in enumerate(times):  # one interval at a time: memory stays at one interval's samples
        at = t + offsets
        last = _as_of(perp_ts, perp_px, at)
        out[j] = premium_index(last, last, _as_of(index_ts, index_px, at)) @ weights
    return out


def _computed(perp, index, interval_hours: float, cap: float, floor: float | None, interest_8h: float,
              weighting: str, sample_ns: int, start, end, symbol: str | None, venue: str) -> FundingStream:
    perp = _series("perp", perp)
    index = _series("index", index)
    if not (np.isfinite(cap) and cap > 0):
        raise ValueError(f"cap: expected a rate > 0 per interval (got {cap!r})")
    floor = -cap if floor is None else floor
    if not (np.isfinite(floor) and floor < 0):
        raise ValueError(f"floor: expected a rate < 0 per interval (got {floor!r})")
    interval_ns = int(round(interval_hours * HOUR_NS))
    times = funding_times(perp[0], index[0], interval_ns, sample_ns, start, end)
    if len(times) == 0:
        raise ValueError(f"{venue} funding{f' {symbol}' if symbol else ''}: the perp "
                         f"({_utc(perp[0][0])} .. {_utc(perp[0][-1])}) and index ({_utc(index[0][0])} .. "
                         f"{_utc(index[0][-1])}) cover no whole {interval_hours:g}h funding interval")
    premium = average_premium(perp, index, times, interval_ns, sample_ns, weighting)
    rate = np.clip(rate_from_premium(premium, interval_hours, interest_8h), floor, cap)
    return FundingStream.from_arrays(times, rate, interval_ns, symbol, premium, max_abs_rate=max(cap, -floor),
                                     where=f"{venue} funding")


def binance_funding(perp, index, *, cap: float, floor: float | None = None, interval_hours: float = 8,
                    interest_8h: float = INTEREST_8H, sample_ns: int = SAMPLE_NS, start=None, end=None,
                    symbol: str | None = None) -> FundingStream:
    """Binance funding rates computed from a perp price series and its index [1]_.

    The premium is sampled every 5 s (last trade as impact bid and ask, :data:`IMPACT_STAND_IN`),
    averaged over each interval with weights 1..n, and ``rate = clamp((P + clamp(0.01% - P,
    ±0.05%)) x N/8, floor, cap)``.

    Parameters
    ----------
    perp, index : (ts, price) pairs of arrays
        Times int64 ns UTC (or datetime64), non-decreasing; prices > 0.
    cap : float
        Cap per interval (:func:`binance_cap`: 0.75 x MMR for the listed majors, 2% for other
        USDⓈ-M perps; COIN-M caps are not documented in the sources found: give the symbol's).
    floor : float, optional
        Default ``-cap``.
    interval_hours : float
        The symbol's funding interval N (8, 4 or 1; Binance switches it per symbol).
    interest_8h : float
        0.01% per 8 h; 0 for contracts Binance exempts (e.g. ETHBTC).
    start, end : int ns, optional
        Keep the funding times ``start < T <= end``.

    Returns
    -------
    FundingStream
        One rate per funding time (UTC multiples of N hours) whose whole interval the series
        cover; ``premium`` holds each interval's average premium P.
    """
    return _computed(perp, index, interval_hours, cap, floor, interest_8h, "time", sample_ns, start, end, symbol,
                     "binance")


def hyperliquid_funding(perp, index, *, cap: float = HYPERLIQUID_CAP_PER_HOUR, interest_8h: float = INTEREST_8H,
                        sample_ns: int = SAMPLE_NS, start=None, end=None,
                        symbol: str | None = None) -> FundingStream:
    """Hyperliquid hourly funding rates computed from a perp price series and its oracle [2]_.

    The premium is sampled every 5 s (last trade as impact bid and ask, :data:`IMPACT_STAND_IN`)
    against the oracle (``index``), averaged over the hour (plain mean), the 8-hour rate ``P +
    clamp(0.01% - P, ±0.05%)`` is paid one eighth per hour, capped at ±4%/hour. Parameters as
    :func:`binance_funding`; ``premium`` of the result holds each hour's average premium P.
    """
    return _computed(perp, index, 1, cap, None, interest_8h, "equal", sample_ns, start, end, symbol,
                     "hyperliquid")


def read_funding(loaded, spec, where: str, **limits) -> FundingStream:
    """A funding stream named in a config the way a tape or stream is (:func:`riskengine.backtest.
    read_source`): ``{ source = "binance-vision", path = "BTCUSDT-fundingRate-2025-10.zip" }``
    (a file read by its importer) or ``{ catalog = DIR, source = "binance", symbol = "BTCUSDT",
    kind = "funding" }``. ``where``: the config key, which error lines start with.

    Raises
    ------
    ValueError
        One line: what :func:`read_source` refuses, a table that holds no funding rates (another
        kind), or a stream error (:meth:`FundingStream.from_arrays`).
    """
    from riskengine.backtest import PARTITION_METADATA, read_source

    table = read_source(loaded, spec, where)
    if "rate" not in table.column_names:
        raise ValueError(f"{where}: holds {', '.join(table.column_names)}, not funding rates "
                         f"(give a funding file, or kind = \"funding\" for the catalog)")
    meta = table.schema.metadata or {}
    symbol = meta[PARTITION_METADATA[1]].decode() if PARTITION_METADATA[1] in meta else None
    return FundingStream.from_table(table, symbol, where=where, **limits)
