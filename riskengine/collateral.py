"""Collateral: multi-asset wallets valued at an index price times a dated collateral ratio, the
venue's auto-exchange rule, the index constructions an asset can be valued at, and a
constructed USDe depeg path. Pure functions over arrays; the engines see an asset as an
instrument whose tape is its index x ratio (:func:`riskengine.engine.collateral_variant`).

The venue rules (each cited where it is encoded; the list is in ``docs/collateral.md``):

* **Binance USDⓈ-M Multi-Assets Mode.** Several assets back one cross account. Each asset
  has an index (``GET /fapi/v1/assetIndex``, e.g. ``ADAUSD``) with a bid and an ask buffer:
  ``bidRate = index x (1 - bidBuffer)``, ``askRate = index x (1 + askBuffer)`` (the API's own
  example: ADAUSD index 1.92957370, buffers 0.1 -> bid rate 1.73661633, ask rate 2.12253107)
  [Binance API "Multi-Assets Mode Asset Index",
  https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Multi-Assets-Mode-Asset-Index].
  Account equity is ``sum over assets of min(assetEquity x bidRate, assetEquity x askRate)``
  (a holding counts at the bid rate, a negative balance at the ask rate) [Binance FAQ "How to
  Calculate Margin in Multi-Assets Mode", 2022-07-06,
  https://www.binance.com/en/support/faq/how-to-calculate-margin-in-multi-assets-mode-c983a9268cfa4e70a4916c276bb3b7bc:
  ``200 x 0.9801 + 220 x 1 = 416.02``]. The published *collateral value ratio* is
  ``1 - bidBuffer`` (BTC/ETH/BNB 95%, "a 5% value haircut") [Binance FAQ "What Is Multi-Assets
  Mode", https://www.binance.com/en-NG/support/faq/29b45c485d664028b9ca1cdf90b24f6f]. The
  margin ratio is account maintenance margin / account equity and every position is liquidated
  at 100% (same FAQ of 2022-07-06). Ratios are dated data:
  ``riskengine/venues/collateral/<venue>.toml``.
* **Binance auto-exchange** happens (1) when an asset's wallet balance is below the
  ``autoExchangeThreshold`` of -10,000 USD (fixed, not adjustable), (2) at liquidation when the
  USDT balance cannot cover the deficit, (3) with no position and no open order, when LTV >= 1.
  It sells the other assets in proportion to each one's holding, at the auto-exchange bid rate:
  "-20,000 BUSD ... 20,000 BUSD / 97.5% = 20,513 BUSD of the BTC will be changed" [Binance
  "Multi-Assets Info", https://www.binance.com/en-NG/futures/trading-rules/perpetual/multi-asset-info;
  FAQ on Multi-Assets Mode, 2022-07-06,
  https://www.binance.com/en/support/faq/f80415bea8124f6494566f23c0bf9c38: -9,000 USDT and
  -9,000 BUSD do not trigger it]. Triggers (1) and (2) are modelled (:func:`auto_exchange`);
  (3) is not (:data:`LTV_TRIGGER`), because these pages do not define LTV.
* **Hyperliquid**: USDC is the only collateral of perpetuals ("USDC margining, USDT
  denominated linear contracts ... no conversions with the USDC/USDT exchange rate are
  applied") [Hyperliquid docs "Contract specifications",
  https://hyperliquid.gitbook.io/hyperliquid-docs/trading/contract-specifications]; a wallet
  there holds USDC at ratio 1 (:data:`SINGLE_ASSET`).

The index an asset is valued at is a design choice (:data:`INDEX_CHOICES`): ``own-book`` (the
venue's own spot book; what Binance's USDe index used on 2025-10-10 as reported [S]),
``external-median`` (the median of several external streams), ``redemption-floor`` (the
redemption price, optionally weighted with a market price, with a floor: Binance's announced
change after 2025-10-10, see :func:`redemption_floor`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from riskengine.errors import suggest
from riskengine.scenario import _as_array, _check_length, _first, _require
from riskengine.venues._tables import TableError, _day, dated_entry, load_dated

NS = 1_000_000_000

#: venues whose perpetuals take one collateral asset only, valued at ratio 1 (Hyperliquid
#: "Contract specifications": USDC margining, no USDC/USDT conversion applied)
SINGLE_ASSET = {"hyperliquid": "USDC"}
SINGLE_ASSET_SOURCE = {
    "hyperliquid": "Hyperliquid docs 'Contract specifications' "
                   "(https://hyperliquid.gitbook.io/hyperliquid-docs/trading/contract-specifications): "
                   "USDC margining; no USDC/USDT conversion applied",
}
#: Binance's fixed auto-exchange threshold, USD: an asset wallet balance below it is exchanged
#: (Multi-Assets Info page; FAQ on Multi-Assets Mode: "fixed and cannot be adjusted")
AUTO_EXCHANGE_THRESHOLD_USD = 10_000.0
#: trigger (3) of Binance's auto-exchange ("no positions or open orders ... LTV >= 1") is not
#: modelled: the pages cited above do not define LTV, and an account with no position and no
#: order has no liquidation to decide, which is what the engines replay
LTV_TRIGGER = ("not modelled: Binance's Multi-Assets pages do not define LTV; it applies only to accounts "
               "with no position")
#: the index constructions an asset can be valued at
INDEX_CHOICES = ("own-book", "external-median", "redemption-floor")
#: keys a ratio table may hold
_KEYS = ("effective", "ratio", "source", "ask_buffer", "auto_exchange_buffer")


class CollateralError(ValueError):
    """A collateral input that cannot be used (one line: file, field or row, and what was expected)."""


# ------------------------------------------------------------------------------ ratio tables
@dataclass(frozen=True)
class CollateralRatio:
    """The collateral ratio of one asset from one date.

    Attributes
    ----------
    ratio : float
        Share of a holding's index value counted as margin, in [0, 1] (Binance: 1 - bidBuffer).
    ask_buffer : float
        Premium a negative balance is valued at: ``amount x index x (1 + ask_buffer)``
        (Binance: askBuffer). Default ``1 - ratio``: the API's examples have equal buffers
        (ADAUSD 0.1/0.1, USDTUSD 0.0001/0.0001); the FAQ's USDTUSD 0.01/0.005 shows they may
        differ, so a table may give its own.
    auto_exchange_buffer : float
        Discount at which auto-exchange sells the asset (Binance: autoExchangeBidBuffer).
        Default ``(1 - ratio) / 2`` [INF]: it matches both published examples (ADAUSD bid buffer
        0.10, auto-exchange buffer 0.05; BTC 95% ratio sold at 97.5%).
    """

    venue: str
    asset: str
    effective: dt.date
    ratio: float
    source: str
    ask_buffer: float
    auto_exchange_buffer: float

    @property
    def label(self) -> str:
        return f"{self.venue} {self.asset} collateral ratio {self.ratio:g} effective {self.effective}"


def _fraction(where: str, name: str, value: Any, low: float, high: float, high_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        value = float(value)
        ok = low <= value and (value < high if high_open else value <= high)
    if not ok:
        bound = f"[{low:g}, {high:g}{')' if high_open else ']'}"
        raise TableError(f"{where}.{name}: expected a number in {bound} (got {value!r})")
    return value


def _ratio_entry(venue: str, asset: str, where: str, entry: Any) -> CollateralRatio:
    effective = dated_entry(asset, where, entry, _KEYS, ("effective", "ratio", "source"))
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise TableError(f"{where}.source: expected the ratio's source (got {source!r})")
    ratio = _fraction(where, "ratio", entry["ratio"], 0.0, 1.0)
    ask = _fraction(where, "ask_buffer", entry.get("ask_buffer", 1.0 - ratio), 0.0, 1.0)
    auto = _fraction(where, "auto_exchange_buffer", entry.get("auto_exchange_buffer", (1.0 - ratio) / 2),
                     0.0, 1.0, high_open=True)
    return CollateralRatio(venue, asset, effective, ratio, source.strip(), ask, auto)


def _case_hint(asset: str, known) -> str:
    """`` (did you mean 'USDE'?)`` for a case slip only: USDE is not a misspelt USDT, so the
    nearest-spelling hint of :func:`riskengine.errors.suggest` would mislead here."""
    match = [k for k in known if str(k).upper() == asset.upper() and k != asset]
    return f" (did you mean {match[0]!r}?)" if match else ""


def load_ratio_file(path: str | os.PathLike, venue: str) -> dict[str, list[CollateralRatio]]:
    """Read and check one venue's collateral-ratio file: asset -> its ratios, oldest first.

    Raises
    ------
    TableError
        ``<file>: <ASSET>[<i>].<field>: what was expected`` (e.g. a ratio outside [0, 1]), or a
        file that is not valid TOML.
    """
    return load_dated(path, "collateral ratios", "ratios", lambda asset, where, e: _ratio_entry(venue, asset, where, e))

def ratio_file(venue: str) -> Path:
    """The packaged collateral-ratio file of ``venue``."""
    return Path(str(resources.files("riskengine.venues").joinpath(f"collateral/{venue}.toml")))


@cache
def _load(venue: str) -> dict[str, list[CollateralRatio]]:
    path = ratio_file(venue)
    if not path.is_file():
        raise CollateralError(f"{venue}: no collateral-ratio file (riskengine/venues/collateral/{venue}.toml)")
    return load_ratio_file(path, venue)


def ratio_assets(venue: str) -> list[str]:
    """Assets with a stored collateral ratio (the single asset for :data:`SINGLE_ASSET` venues)."""
    return [SINGLE_ASSET[venue]] if venue in SINGLE_ASSET else sorted(_load(venue))


def select_ratio(history: Sequence[CollateralRatio], day: dt.date) -> tuple[CollateralRatio, str]:
    """The ratio in force on ``day`` among ``history`` (oldest first): the newest effective on or
    before it; a day before every ratio uses the earliest, with an "out of date" caveat."""
    chosen = [r for r in history if r.effective <= day]
    if chosen:
        return chosen[-1], ""
    first = history[0]
    return first, (f"out of date: no {first.venue} {first.asset} collateral ratio known on {day}; using the "
                   f"earliest, effective {first.effective}")


def collateral_ratio(venue: str, asset: str, date: str | dt.date | None = None,
                     assumed: float | None = None) -> tuple[CollateralRatio, str]:
    """The collateral ratio of ``asset`` at ``venue`` on ``date`` (the newest without a date).

    The same rule as margin tables (:func:`riskengine.venues._tables.resolve`): an asset
    without a stored ratio is refused, listing the assets the venue has, unless ``assumed``
    names the ratio to use (marked assumed); a date before the earliest ratio uses that one,
    marked out of date. A :data:`SINGLE_ASSET` venue takes only its asset, at ratio 1.

    Returns
    -------
    (CollateralRatio, caveat)
        ``caveat``: empty, or why the ratio may not be the venue's for ``asset`` on ``date``.

    Raises
    ------
    CollateralError
        An asset the venue does not take (one line listing those it does), or an ``assumed``
        ratio outside [0, 1].
    """
    if venue in SINGLE_ASSET:
        only = SINGLE_ASSET[venue]
        if asset != only:
            raise CollateralError(f"{venue}: collateral asset {asset!r}: the venue takes {only} only "
                                  f"({SINGLE_ASSET_SOURCE[venue]})")
        return CollateralRatio(venue, only, dt.date(1970, 1, 1), 1.0, SINGLE_ASSET_SOURCE[venue], 0.0, 0.0), ""
    table = _load(venue)
    if asset not in table:
        if assumed is None:
            raise CollateralError(f"{venue}: no collateral ratio for asset {asset!r}{_case_hint(asset, table)}; known: "
                                  f"{', '.join(sorted(table))} (or give an assumed ratio)")
        ratio = _fraction(f"{venue}: {asset}", "assumed", assumed, 0.0, 1.0)
        day = _day(venue, date) if date is not None else dt.date(1970, 1, 1)
        row = CollateralRatio(venue, asset, day, ratio, "assumed (no published ratio found)", 1.0 - ratio,
                              (1.0 - ratio) / 2)
        return row, f"assumed: no {venue} collateral ratio for {asset}, {ratio:g} used (assumed)"
    history = table[asset]
    if date is None:
        return history[-1], ""
    return select_ratio(history, _day(venue, date))


def ratios_for(venue: str, assets: Sequence[str], date: str | dt.date | None = None,
               assumed: Mapping[str, float] | None = None) -> tuple[dict[str, CollateralRatio], list[str]]:
    """:func:`collateral_ratio` of each asset of a wallet: the ratios and their caveats (the
    non-empty ones, each naming its asset), e.g. ``assumed={"USDE": 0.9}``."""
    assumed = dict(assumed or {})
    out, caveats = {}, []
    for asset in assets:
        row, caveat = collateral_ratio(venue, asset, date, assumed.get(asset))
        out[asset] = row
        if caveat:
            caveats.append(f"{asset}: {caveat}")
    return out, caveats


# ------------------------------------------------------------------------------ price streams
@dataclass(frozen=True)
class PriceStream:
    """One asset's price (USD per unit) over time.

    Attributes
    ----------
    asset : str
    ts : ndarray of int64
        Times, ns since epoch UTC, non-decreasing.
    price : ndarray of float64
        Finite prices > 0; each holds from its time until the next.
    label : str
        Where it came from (a file, a catalog partition, "constructed: ..."), used in messages.
    constructed : bool
        True for a path built by a generator, not read from data; shown wherever it is used.
    metadata : dict
        The construction's parameters (for a constructed path), or the source's details.
    """

    asset: str
    ts: np.ndarray
    price: np.ndarray
    label: str
    constructed: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arrays(cls, asset: str, ts, price, label: str | None = None, constructed: bool = False,
                    metadata: Mapping[str, Any] | None = None) -> "PriceStream":
        """Build and check a stream (inputs never modified).

        Raises
        ------
        ValueError
            One line naming the stream, the field and the first bad row: an empty stream,
            unsorted times, or a negative, zero or non-finite price.
        """
        where = label or f"{asset} stream"
        ts_a = _as_array(f"{where}: ts", ts, np.int64)
        px = _as_array(f"{where}: price", price, np.float64)
        if len(ts_a) == 0:
            raise CollateralError(f"{where}: expected at least one price (got an empty stream)")
        _check_length(f"{where}: price", px, len(ts_a), "ts")
        i = _first(lambda a, b: b < a, ts_a[:-1], ts_a[1:])
        if i >= 0:
            raise CollateralError(f"{where}: ts[{i + 1}] = {ts_a[i + 1]} is earlier than ts[{i}] = {ts_a[i]}: "
                                  f"expected non-decreasing times (sort the stream first)")
        _require(f"{where}: price", px, lambda a: ~(np.isfinite(a) & (a > 0)), "a finite price > 0")
        return cls(asset, ts_a, px, where, constructed, dict(metadata or {}))

    def asof(self, times) -> np.ndarray:
        """The price at or before each of ``times`` (int64 ns); NaN before the first."""
        t = np.asarray(times, dtype=np.int64)
        idx = np.searchsorted(self.ts, t, side="right") - 1
        return np.where(idx >= 0, self.price[np.clip(idx, 0, None)], np.nan)

    def describe(self) -> str:
        kind = "constructed" if self.constructed else "data"
        return f"{self.asset}: {self.label} ({kind}, {len(self.ts)} prices)"

    def __len__(self) -> int:
        return len(self.ts)


def stream_from_table(table, asset: str, field_name: str = "price", label: str = "") -> PriceStream:
    """A price stream from a table in the catalog's stream or trades layout (``ts`` and
    ``price``, or a ticker's ``mark``/``index``/``last``), as ``riskengine.backtest.build_tape``
    takes a mark/index stream: rows without a value are left out (a ticker's empty cells)."""
    import pyarrow.compute as pc

    label = label or f"{asset} stream"
    column = "price" if "price" in table.column_names else field_name
    if column not in table.column_names or "ts" not in table.column_names:
        raise CollateralError(f"{label}: expected columns ts and {column} (has {', '.join(table.column_names)})")
    table = table.filter(pc.is_valid(table.column(column)))
    return PriceStream.from_arrays(asset, table.column("ts").cast("int64").to_numpy(),
                                   table.column(column).to_numpy(), label,
                                   metadata={"table": label, "field": column})


class _Here:
    """The one method of ``LoadedConfig`` that :func:`riskengine.backtest.read_source` needs."""

    def resolve(self, path: str) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(path)))


def read_stream_file(path: str | os.PathLike, asset: str, source: str, kind: str | None = None,
                     symbol: str | None = None, field_name: str = "price", sort: bool = False,
                     dedupe: bool = False) -> PriceStream:
    """An asset's price stream from a market-data file, in any format a mark/index stream can be
    read from (``riskengine data import --source``: tardis, binance-vision, hyperliquid; trades,
    klines, ticker), validated by the same importer.

    Raises
    ------
    ValueError
        The importer's one line (file, row, column), or one naming the stream.
    """
    from riskengine.backtest import read_source
    from riskengine.config import FileStream

    spec = FileStream(source=source, path=str(path), kind=kind, symbol=symbol, sort=sort, dedupe=dedupe,
                      field=field_name)
    table = read_source(_Here(), spec, f"{asset} stream").combine_chunks()  # type: ignore[arg-type]
    return stream_from_table(table, asset, field_name, f"{path}")


def read_stream_catalog(root: str | os.PathLike, asset: str, source: str, symbol: str, kind: str = "trades",
                        field_name: str = "price") -> PriceStream:
    """An asset's price stream from a Parquet tick catalog partition (``riskengine data import``)."""
    from riskengine.data import Catalog

    if not Path(root).is_dir():
        raise CollateralError(f"{asset} stream: no catalog folder {root}")
    table = Catalog(root).read(kind, source, symbol).combine_chunks()
    return stream_from_table(table, asset, field_name, f"{root}: {kind}/{source}/{symbol}")


def constant_stream(asset: str, value: float, start_ns: int, label: str = "") -> PriceStream:
    """A price that holds ``value`` from ``start_ns`` on (e.g. USDe's $1 redemption price)."""
    return PriceStream.from_arrays(asset, [start_ns], [value], label or f"{asset} constant {value:g}",
                                   metadata={"constant": value})


# ------------------------------------------------------------------------------ index choices
def _union_times(streams: Sequence[PriceStream]) -> np.ndarray:
    return np.unique(np.concatenate([s.ts for s in streams]))


def own_book(stream: PriceStream) -> PriceStream:
    """``own-book``: the venue's own spot order-book price taken as the asset's index, as is.

    This is what Binance's USDe collateral index followed on 2025-10-10, as reported: USDe
    printed near 0.65 on Binance's own book while it held near 1 elsewhere, and accounts with
    USDe collateral were liquidated [S: Ethena's founder; reference portfolios-and-stress.md §1;
    Binance's notice of 2025-10-11/12 as reported, e.g. https://holder.io/news/binance-sets-depeg-payouts-283m-already-reimbursed].
    """
    return PriceStream(stream.asset, stream.ts, stream.price, f"own-book({stream.label})", stream.constructed,
                       {**stream.metadata, "index": "own-book"})


def external_median(streams: Sequence[PriceStream], min_sources: int = 1) -> PriceStream:
    """``external-median``: at every time any source prints, the median of each source's latest
    price at or before that time (an as-of join); an even count takes the mean of the middle
    two (``numpy.median``). Times where fewer than ``min_sources`` sources have started are left
    out. Venues' spot indexes are medians or weighted means of external books (Binance index
    price: a weighted average over several spot venues with outlier protection; reference §1.2);
    the equal-weight median here is the named design, not a venue's formula.

    Raises
    ------
    CollateralError
        No streams, streams of different assets, or no time with ``min_sources`` prices.
    """
    if not streams:
        raise CollateralError("external-median: expected at least one price stream (got none)")
    assets = sorted({s.asset for s in streams})
    if len(assets) > 1:
        raise CollateralError(f"external-median: expected streams of one asset (got {', '.join(assets)})")
    if not 1 <= min_sources <= len(streams):
        raise CollateralError(f"external-median: min_sources: expected 1..{len(streams)} (got {min_sources})")
    times = _union_times(streams)
    grid = np.vstack([s.asof(times) for s in streams])
    have = np.sum(~np.isnan(grid), axis=0)
    keep = have >= min_sources
    if not keep.any():
        raise CollateralError(f"external-median: no time with {min_sources} of {len(streams)} {assets[0]} prices")
    med = np.nanmedian(grid[:, keep], axis=0)
    labels = [s.label for s in streams]
    return PriceStream.from_arrays(assets[0], times[keep], med, f"external-median({', '.join(labels)})",
                                   any(s.constructed for s in streams),
                                   {"index": "external-median", "sources": labels, "min_sources": min_sources})


def redemption_floor(redemption: PriceStream, floor: float, market: PriceStream | None = None,
                     weight: float = 1.0) -> PriceStream:
    """``redemption-floor``: ``max(floor, weight x redemption + (1 - weight) x market)`` at every
    time either stream prints (as-of join; before the market stream starts, the redemption
    price alone).

    What Binance announced after 2025-10-10 (as reported; the announcement text itself was not
    found in the corpus): "index adjustments apply: redemption-based weights for BNSOL, WBETH and
    USDE, plus a minimum price floor for USDE" (e.g.
    https://crptonews.com/binance-sets-depeg-payouts-283m-already-reimbursed/22890,
    https://coinafrica.co/binance-pays-283m-in-compensation-after-token-depregs: "including
    redemption prices in index weights; a soft price floor for USDe in the reference index"),
    and, from 2025-10-14 08:00 UTC, BNSOL and WBETH priced 100% on their staking conversion rate
    (https://www.binance.bh/en/square/post/30886289453337). Neither the weight nor the floor
    value was published in what was found, so both are settings here (``weight`` 1 = the
    redemption price alone, as announced for BNSOL/WBETH). USDe's redemption price is $1 (Ethena
    mints and redeems 1 USDe against $1 of collateral): :func:`constant_stream`.

    Raises
    ------
    CollateralError
        A floor that is not a finite price >= 0, a weight outside [0, 1], a weight below 1
        without a market stream, or streams of different assets.
    """
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not (math.isfinite(floor) and floor >= 0):
        raise CollateralError(f"redemption-floor: floor: expected a finite price >= 0 (got {floor!r})")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise CollateralError(f"redemption-floor: weight: expected a number in [0, 1] (got {weight!r})")
    if market is None and weight < 1.0:
        raise CollateralError(f"redemption-floor: weight {weight:g} < 1 needs a market stream")
    if market is not None and market.asset != redemption.asset:
        raise CollateralError(f"redemption-floor: market stream is {market.asset}, redemption stream is "
                              f"{redemption.asset}: expected one asset")
    if market is None:
        times, price = redemption.ts, redemption.price.copy()
    else:
        times = _union_times([redemption, market])
        red, mkt = redemption.asof(times), market.asof(times)
        keep = ~np.isnan(red)
        times, red, mkt = times[keep], red[keep], mkt[keep]
        price = np.where(np.isnan(mkt), red, weight * red + (1.0 - weight) * np.nan_to_num(mkt))
    price = np.maximum(price, float(floor))
    label = f"redemption-floor({redemption.label}, floor {floor:g}" + (
        f", weight {weight:g} with {market.label})" if market is not None else ")")
    return PriceStream.from_arrays(redemption.asset, times, price, label,
                                   redemption.constructed or bool(market and market.constructed),
                                   {"index": "redemption-floor", "floor": float(floor), "weight": float(weight)})


def build_index(choice: str, *, own: PriceStream | None = None, external: Sequence[PriceStream] = (),
                redemption: PriceStream | None = None, floor: float | None = None,
                market: PriceStream | None = None, weight: float = 1.0, min_sources: int = 1) -> PriceStream:
    """The asset index of :data:`INDEX_CHOICES` ``choice`` from the streams it needs.

    Raises
    ------
    CollateralError
        An unknown choice (with the nearest), or a stream the choice needs that is missing.
    """
    if choice not in INDEX_CHOICES:
        raise CollateralError(f"index: unknown choice {choice!r}{suggest(choice, INDEX_CHOICES)}; "
                              f"expected one of {', '.join(INDEX_CHOICES)}")
    if choice == "own-book":
        if own is None:
            raise CollateralError("own-book: expected the venue's own book price stream (own)")
        return own_book(own)
    if choice == "external-median":
        return external_median(external, min_sources)
    if redemption is None or floor is None:
        raise CollateralError("redemption-floor: expected a redemption stream and a floor")
    return redemption_floor(redemption, floor, market, weight)


# ------------------------------------------------------------------------------ a scenario's asset prices
@dataclass(frozen=True)
class AssetPrices:
    """The prices a scenario gives for one collateral asset, from which each design builds the
    index it values the asset at (:meth:`index`; the choice is the design's
    ``collateral.index``, :class:`riskengine.venue.Collateral`).

    Attributes
    ----------
    asset : str
        The asset's symbol (``USDE``): a positions file's instrument column names it.
    own : PriceStream, optional
        The venue's own spot book (``own-book``; a constructed path stands for it).
    external : tuple of PriceStream
        External books (``external-median``).
    redemption : float, optional
        The redemption price (USDe: 1.0; ``redemption-floor``).
    """

    asset: str
    own: PriceStream | None = None
    external: tuple[PriceStream, ...] = ()
    redemption: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "external", tuple(self.external))
        if self.own is None and not self.external and self.redemption is None:
            raise CollateralError(f"collateral asset {self.asset}: no price: expected an own-book stream, external "
                                  f"streams or a redemption price")
        if self.redemption is not None and not (math.isfinite(self.redemption) and self.redemption > 0):
            raise CollateralError(f"collateral asset {self.asset}: redemption: expected a finite price > 0 "
                                  f"(got {self.redemption!r})")

    @property
    def constructed(self) -> bool:
        """True when any of its streams is a constructed path (not data)."""
        return any(s.constructed for s in (self.own, *self.external) if s is not None)

    def streams(self) -> list[PriceStream]:
        """Its streams (own book first)."""
        return [s for s in (self.own, *self.external) if s is not None]

    def index(self, choice: str, start_ns: int, floor: float | None = None, weight: float = 1.0,
              min_sources: int = 1) -> PriceStream:
        """The index of :data:`INDEX_CHOICES` ``choice`` (:func:`build_index`) from these prices;
        the redemption price holds from ``start_ns`` (the replay's start) on.

        Raises
        ------
        CollateralError
            One line naming the asset and the price the choice needs that the scenario lacks.
        """
        where = f"collateral asset {self.asset}: index {choice}"
        if choice == "own-book" and self.own is None:
            raise CollateralError(f"{where}: the scenario gives no own-book stream of {self.asset} (own_book or "
                                  f"constructed)")
        if choice == "external-median" and not self.external:
            raise CollateralError(f"{where}: the scenario gives no external stream of {self.asset} (external)")
        if choice == "redemption-floor":
            if self.redemption is None:
                raise CollateralError(f"{where}: the scenario gives no redemption price of {self.asset} (redemption)")
            if weight < 1.0 and self.own is None:
                raise CollateralError(f"{where}: weight {weight:g} < 1 weighs in the own-book stream, which the "
                                      f"scenario does not give")
        redemption = (None if self.redemption is None else
                      constant_stream(self.asset, self.redemption, min(start_ns, *(int(s.ts[0]) for s in self.streams())),
                                      f"{self.asset} redemption {self.redemption:g}"))
        try:
            return build_index(choice, own=self.own, external=self.external, redemption=redemption, floor=floor,
                               market=self.own if weight < 1.0 else None, weight=weight, min_sources=min_sources)
        except CollateralError as exc:
            raise CollateralError(f"collateral asset {self.asset}: {exc}") from None

    def reference(self, start_ns: int) -> PriceStream:
        """The index a scenario shows before a design chooses one: the own book, else the
        external median, else the redemption price."""
        if self.own is not None:
            return self.index("own-book", start_ns)
        if self.external:
            return self.index("external-median", start_ns)
        return self.index("redemption-floor", start_ns, floor=0.0)


def ratio_tape_prices(index: PriceStream, ratio: float, start_ns: int, end_ns: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The tape of a collateral asset instrument (times, prices): ``index x ratio`` at each index
    print in ``[start_ns, end_ns)``, and a first print at ``start_ns`` with the index as of then
    (so holdings have a price from the replay's first tick).

    Raises
    ------
    CollateralError
        An index with no price at ``start_ns`` (it starts later), or a ratio outside [0, 1].
    """
    ratio = _fraction(index.asset, "ratio", ratio, 0.0, 1.0)
    first = float(index.asof([start_ns])[0])
    if math.isnan(first):
        raise CollateralError(f"collateral asset {index.asset}: {index.label} starts at {int(index.ts[0])} ns, after "
                              f"the replay's start ({start_ns} ns): expected a price from the start")
    keep = (index.ts > start_ns) & (True if end_ns is None else index.ts < end_ns)
    ts = np.concatenate([[start_ns], index.ts[keep]]).astype(np.int64)
    price = np.concatenate([[first], index.price[keep]]) * ratio
    return ts, price


# ------------------------------------------------------------------------------ wallet
@dataclass(frozen=True)
class Wallet:
    """Amounts of each collateral asset one account holds (a negative amount is a debt, as a
    Binance Multi-Assets wallet shows a negative USDT balance after losses)."""

    amounts: Mapping[str, float]

    def __post_init__(self) -> None:
        for asset, amount in self.amounts.items():
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
                raise CollateralError(f"wallet.{asset}: expected a finite amount (got {amount!r})")

    @property
    def assets(self) -> list[str]:
        return list(self.amounts)


def asset_value(amount: float | np.ndarray, index: float | np.ndarray, ratio: float,
                ask_buffer: float) -> float | np.ndarray:
    """Margin value of one asset balance, Binance Multi-Assets Mode:
    ``min(amount x index x (1 - bidBuffer), amount x index x (1 + askBuffer))``, that is
    ``amount x index x ratio`` for a holding and ``amount x index x (1 + ask_buffer)`` for a debt
    (FAQ "How to Calculate Margin in Multi-Assets Mode"; ratio = 1 - bidBuffer)."""
    a = np.asarray(amount, dtype=np.float64)
    out = np.where(a >= 0, a * index * ratio, a * index * (1.0 + ask_buffer))
    return float(out) if out.ndim == 0 else out


def check_inputs(wallet: Wallet, prices: Mapping[str, Any], ratios: Mapping[str, CollateralRatio],
                 where: str = "collateral") -> None:
    """Refuse, in one line, an asset of the wallet without a price or without a ratio.

    Raises
    ------
    CollateralError
        ``<where>: asset 'X' has no price stream (streams for: ...)`` or ``... no collateral ratio``.
    """
    for asset in wallet.assets:
        if asset not in prices:
            raise CollateralError(f"{where}: asset {asset!r} has no price stream{_case_hint(asset, prices)} "
                                  f"(streams for: {', '.join(sorted(prices)) or 'none'})")
        if asset not in ratios:
            raise CollateralError(f"{where}: asset {asset!r} has no collateral ratio{_case_hint(asset, ratios)} "
                                  f"(ratios for: {', '.join(sorted(ratios)) or 'none'})")


def wallet_value(wallet: Wallet, prices: Mapping[str, float], ratios: Mapping[str, CollateralRatio]) -> float:
    """The wallet's margin value at one set of index prices: the sum of :func:`asset_value`.

    Raises
    ------
    CollateralError
        An asset without a price or a ratio (:func:`check_inputs`), or a price that is not a
        finite number > 0.
    """
    check_inputs(wallet, prices, ratios)
    total = 0.0
    for asset, amount in wallet.amounts.items():
        p = prices[asset]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (math.isfinite(p) and p > 0):
            raise CollateralError(f"collateral: price of {asset}: expected a finite price > 0 (got {p!r})")
        r = ratios[asset]
        total += asset_value(amount, float(p), r.ratio, r.ask_buffer)
    return total


def account_equity(wallet: Wallet, prices: Mapping[str, float], ratios: Mapping[str, CollateralRatio],
                   unrealized: Mapping[str, float] | None = None) -> float:
    """Binance Multi-Assets account equity: :func:`wallet_value` of each asset's equity, that is
    its wallet balance plus the unrealized PnL of the contracts margined in it (USDT-margined
    PnL is USDT, USDC-margined PnL is USDC) [FAQ "How to Calculate Margin in Multi-Assets
    Mode": ``Account Equity = sum of min(assetEquity x bidRate, assetEquity x askRate)``].

    Raises
    ------
    CollateralError
        As :func:`wallet_value`; also an unrealized PnL in an asset without a price or ratio.
    """
    equity = dict(wallet.amounts)
    for asset, pnl in (unrealized or {}).items():
        equity[asset] = equity.get(asset, 0.0) + pnl
    return wallet_value(Wallet(equity), prices, ratios)


def margin_ratio(maintenance: float, equity: float) -> float:
    """Binance Multi-Assets margin ratio, account maintenance margin / account equity; every
    position is liquidated when it reaches 1 (100%) (FAQ "How to Calculate Margin in
    Multi-Assets Mode"). An equity at or below 0 gives ``inf`` (liquidated)."""
    if equity <= 0:
        return math.inf
    return maintenance / equity


def wallet_value_series(wallet: Wallet, streams: Mapping[str, PriceStream], ratios: Mapping[str, CollateralRatio],
                        times) -> np.ndarray:
    """The wallet's margin value at each of ``times`` (int64 ns), each asset at its stream's
    price as of that time; NaN where an asset's stream has not started.

    Raises
    ------
    CollateralError
        An asset without a stream or a ratio (:func:`check_inputs`).
    """
    check_inputs(wallet, streams, ratios)
    t = np.asarray(times, dtype=np.int64)
    total = np.zeros(len(t))
    for asset, amount in wallet.amounts.items():
        r = ratios[asset]
        total += asset_value(np.full(len(t), float(amount)), streams[asset].asof(t), r.ratio, r.ask_buffer)
    return total


def collateral_trigger(amount: float, index: float, ratio: CollateralRatio, slack: float) -> tuple[float, int]:
    """The index price at which one holding has lost ``slack`` of margin value, the others
    held still: the trigger of a collateral holding in the liquidation index (DESIGN.md
    "Portfolios": each holding is keyed like a position, with its share of the account's slack).

    The value is linear in the price (:func:`asset_value`), so the trigger is exact: a holding
    (``amount > 0``) loses ``slack`` when the index falls to ``index - slack / (amount x ratio)``;
    a debt (``amount < 0``) when it rises to ``index + slack / (-amount x (1 + ask_buffer))``.

    Returns
    -------
    (price, side)
        ``side`` -1: the trigger is passed when the index is at or below ``price``; +1: at or
        above; 0: never (no amount, a ratio of 0, or a fall below a zero price).
    """
    if not (math.isfinite(slack) and slack >= 0):
        raise CollateralError(f"collateral trigger: slack: expected a finite amount >= 0 (got {slack!r})")
    if amount > 0 and ratio.ratio > 0:
        price = index - slack / (amount * ratio.ratio)
        return (price, -1) if price > 0 else (0.0, 0)
    if amount < 0:
        return index + slack / (-amount * (1.0 + ratio.ask_buffer)), 1
    return 0.0, 0


# ------------------------------------------------------------------------------ auto-exchange
@dataclass(frozen=True)
class Exchange:
    """One conversion auto-exchange made: ``sold`` units of ``asset`` for ``usd`` of ``to``."""

    asset: str
    sold: float
    to: str
    usd: float
    reason: str


def auto_exchange(wallet: Wallet, prices: Mapping[str, float], ratios: Mapping[str, CollateralRatio],
                  threshold_usd: float = AUTO_EXCHANGE_THRESHOLD_USD, liquidation: bool = False,
                  ) -> tuple[Wallet, list[Exchange]]:
    """Binance Multi-Assets auto-exchange, triggers (1) and (2) (see the module docstring).

    A negative asset is exchanged when its wallet value at the index (``amount x index``) is
    below ``-threshold_usd`` (strictly; each asset on its own: -9,000 USDT and -9,000 USDC do
    not trigger it), or, with ``liquidation=True``, whenever it is negative (the deficit a
    liquidation leaves). Its whole debt ``D = -amount x index`` is repaid from the positive
    assets in proportion to each one's index value ``v_i``: asset ``i`` sells
    ``D x v_i / sum(v) / (index_i x (1 - auto_exchange_buffer_i))`` units (Binance: "20,000 BUSD /
    97.5% = 20,513 BUSD of the BTC"), and the debt is set to 0. A holding smaller than its share
    is sold out and the others cover the rest of its share. Pass a wallet balance without
    unrealized PnL: Binance compares the wallet balance (transfers + realized PnL + funding -
    commission). Trigger (3), LTV >= 1 with no position, is :data:`LTV_TRIGGER`.

    If the positive assets cannot cover a debt, all of them are sold and the rest of the debt
    stays (the engine's bankruptcy path takes it).

    Returns
    -------
    (Wallet, list of Exchange)
        The wallet after the exchanges (the input is not modified) and what was sold.

    Raises
    ------
    CollateralError
        An asset without a price or a ratio, or a threshold that is not a finite number >= 0.
    """
    if isinstance(threshold_usd, bool) or not isinstance(threshold_usd, (int, float)) or not (
            math.isfinite(threshold_usd) and threshold_usd >= 0):
        raise CollateralError(f"auto-exchange: threshold_usd: expected a finite amount >= 0 (got {threshold_usd!r})")
    check_inputs(wallet, prices, ratios)
    amounts = dict(wallet.amounts)
    done: list[Exchange] = []
    for debtor in list(amounts):
        owed = -amounts[debtor] * prices[debtor]
        if owed <= 0 or not (liquidation or owed > threshold_usd):
            continue
        reason = f"below -{threshold_usd:g} USD" if owed > threshold_usd else "liquidation deficit"
        left = owed
        # a holding whose share is more than it has is sold out; the rest of its share goes to
        # the others in the next pass (at most one pass per asset)
        for _ in range(len(amounts)):
            holders = {a: amounts[a] * prices[a] for a in amounts if a != debtor and amounts[a] > 0}
            total = sum(holders.values())
            if total <= 0 or left <= 1e-12 * owed:
                break
            repaid = 0.0
            for asset, value in holders.items():
                rate = prices[asset] * (1.0 - ratios[asset].auto_exchange_buffer)
                sold = min(left * value / total / rate, amounts[asset])
                amounts[asset] -= sold
                usd = sold * rate
                repaid += usd
                done.append(Exchange(asset, sold, debtor, usd, reason))
            left -= repaid
        amounts[debtor] = -left / prices[debtor] if left > 1e-12 * owed else 0.0
    return Wallet(amounts), done


# ------------------------------------------------------------------------------ constructed USDe path
@dataclass(frozen=True)
class DepegPath:
    """A constructed price path of a collateral asset that loses its peg on one venue and recovers.

    CONSTRUCTED, not data: no USDe order-book record of 2025-10-10 is in the shared data. The
    defaults follow what was reported for Binance's USDe book that evening: near 0.65 at the
    low [S: reference portfolios-and-stress.md §1; CoinDesk 2025-10-12 reported wBETH's low
    "around 21:40 UTC"], inside Binance's compensation window 21:36-22:16 UTC [S: Binance notice
    as reported]. The shape (linear fall, hold, linear recovery) and the noise are assumptions.

    Attributes
    ----------
    asset : str
    start, end : datetime (UTC)
        The span generated.
    step_s : float
        Seconds between prices.
    peg : float
        Level before and after the depeg.
    depeg_start : datetime
        The fall starts (default 21:36 UTC, the window's start).
    trough_at : datetime
        The fall reaches ``trough`` (default 21:43, 7 minutes later).
    trough : float
        The low (default 0.65).
    recovery_start : datetime
        The price leaves the trough (default 21:50).
    recovered_at : datetime
        Back at ``peg`` (default 22:16, the window's end).
    noise : float
        Standard deviation of the multiplicative noise, as a share of the price, during the
        depeg (default 0.01).
    calm_noise : float
        The same outside the depeg (default 0.0002, 2 bp).
    """

    asset: str = "USDE"
    start: dt.datetime = dt.datetime(2025, 10, 10, 21, 0, tzinfo=dt.timezone.utc)
    end: dt.datetime = dt.datetime(2025, 10, 10, 23, 0, tzinfo=dt.timezone.utc)
    step_s: float = 1.0
    peg: float = 1.0
    depeg_start: dt.datetime = dt.datetime(2025, 10, 10, 21, 36, tzinfo=dt.timezone.utc)
    trough_at: dt.datetime = dt.datetime(2025, 10, 10, 21, 43, tzinfo=dt.timezone.utc)
    trough: float = 0.65
    recovery_start: dt.datetime = dt.datetime(2025, 10, 10, 21, 50, tzinfo=dt.timezone.utc)
    recovered_at: dt.datetime = dt.datetime(2025, 10, 10, 22, 16, tzinfo=dt.timezone.utc)
    noise: float = 0.01
    calm_noise: float = 0.0002

    def check(self) -> None:
        """Refuse parameters that do not make a path, in one line naming the parameter."""
        order = ("start", "depeg_start", "trough_at", "recovery_start", "recovered_at", "end")
        for name in order:
            value = getattr(self, name)
            if not isinstance(value, dt.datetime) or value.tzinfo is None:
                raise CollateralError(f"depeg path: {name}: expected a UTC datetime (got {value!r})")
        for a, b in zip(order, order[1:]):
            if getattr(self, b) < getattr(self, a):
                raise CollateralError(f"depeg path: {b} ({getattr(self, b).isoformat()}) is before {a} "
                                      f"({getattr(self, a).isoformat()}): expected {' <= '.join(order)}")
        for name in ("step_s", "peg", "trough"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise CollateralError(f"depeg path: {name}: expected a finite number > 0 (got {value!r})")
        for name in ("noise", "calm_noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 0.2):
                raise CollateralError(f"depeg path: {name}: expected a share in [0, 0.2) (got {value!r})")

    def shape(self, ts: np.ndarray) -> np.ndarray:
        """The noiseless level at each time (ns): peg, linear fall, trough, linear recovery, peg."""
        def ns(x: dt.datetime) -> float:
            return x.timestamp() * NS
        knots_t = [ns(self.depeg_start), ns(self.trough_at), ns(self.recovery_start), ns(self.recovered_at)]
        knots_p = [self.peg, self.trough, self.trough, self.peg]
        return np.interp(ts.astype(np.float64), knots_t, knots_p)

    def generate(self, seed: int) -> PriceStream:
        """The path with noise from ``numpy.random.default_rng(seed)``, labelled constructed.

        The same seed gives the same path. Noise is multiplicative, ``exp(N(0, s))``, with ``s``
        = ``noise`` between ``depeg_start`` and ``recovered_at`` and ``calm_noise`` outside."""
        self.check()
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise CollateralError(f"depeg path: seed: expected an integer >= 0 (got {seed!r})")
        t0, t1 = int(self.start.timestamp() * NS), int(self.end.timestamp() * NS)
        step = int(round(self.step_s * NS))
        ts = np.arange(t0, t1 + 1, step, dtype=np.int64)
        level = self.shape(ts)
        inside = (ts >= self.depeg_start.timestamp() * NS) & (ts <= self.recovered_at.timestamp() * NS)
        sd = np.where(inside, self.noise, self.calm_noise)
        rng = np.random.default_rng(seed)
        price = level * np.exp(rng.standard_normal(len(ts)) * sd)
        meta = {"constructed": True, "generator": "riskengine.collateral.DepegPath", "seed": seed,
                **{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items()}}
        label = (f"constructed: {self.asset} depeg to {self.trough:g} at {self.trough_at:%H:%M}, back to "
                 f"{self.peg:g} by {self.recovered_at:%H:%M} UTC (seed {seed})")
        return PriceStream.from_arrays(self.asset, ts, price, label, constructed=True, metadata=meta)
