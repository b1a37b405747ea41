"""Backtest config files (TOML), validated with typed models before anything runs.

Shape (``../shared/DESIGN.md`` "Config files"; every key is documented on its model and in
``riskengine schema``)::

    [scenario]                       # or [[scenarios]], one table per tape
    name = "btc-2025-10-10"
    tape = { source = "tardis", path = "../data/gemini_trades_2025-10-10_BTCUSD.csv.gz" }
    stream = { source = "binance-vision", path = "../data/BTCUSD_PERP-1m-2025-10-10.zip" }
    window = { start = "2025-10-10T20:00:00Z", end = "2025-10-10T22:00:00Z" }

    [population]
    accounts = 200_000
    open_interest_usd = 3e9

    [liquidity]
    mode = "endogenous"              # or "replay", "counterfactual" (with observed = {...})
    depth = { source = "binance-bookdepth", path = "../data/BTCUSDT-bookDepth-2025-10-10.csv" }

    [[venues]]
    preset = "binance-usdm"

    [sweep]                          # optional: `riskengine sweep` runs the cartesian product
    grid = { "population.seed" = [1, 2, 3], "venues[0].adl.policy" = ["queue", "pro-rata"] }

Relative paths are resolved against the folder of the config file. Problems are reported as
one line: the file, the key path and what was expected, with the nearest valid key for a
misspelt one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator,
                      model_validator)

from riskengine.errors import format_validation_error, nearest, suggest
from riskengine.liquidity import TAIL_FLOOR_SHARE
from riskengine.ranges import (Alpha, Factor, number, Leverage as LeverageValue, LogMove, Multiple, Percent, PositiveCount,
                               PositiveMoney, PositiveSeconds, Seconds, Seed, Share, ShareBelowOne, ShareInside, Sigma,
                               TickCount)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileTape(_Model):
    """Trades (or a stream) read straight from a market-data file."""

    source: Literal["tardis", "binance-vision", "hyperliquid"] = Field(
        description="File format (as in `riskengine data import --source`)")
    path: str = Field(min_length=1, description="The file; relative to the config file's folder")
    kind: str | None = Field(None, description="What the file holds (default: from its folder or name)")
    symbol: str | None = Field(None, description="Symbol to take from a file holding several (Hyperliquid)")
    sort: bool = Field(False, description="Sort rows that are out of time order (and report how many)")
    dedupe: bool = Field(False, description="Drop rows equal to the row before them (and report how many)")


class CatalogTape(_Model):
    """Trades (or a stream) read from a local Parquet tick catalog (`riskengine data import`)."""

    catalog: str = Field(min_length=1, description="Catalog folder; relative to the config file's folder")
    source: str = Field(min_length=1, description="Source partition, e.g. `binance-delivery`, `gemini`")
    symbol: str = Field(min_length=1, description="Symbol partition, e.g. `BTCUSD`, `BTCUSD_PERP`")
    kind: str = Field("trades", description="Catalog kind: trades, klines, mark, index, premium, ticker")


class StreamField(_Model):
    """Which column of a ticker stream is the price (ignored for trades and kline streams)."""

    field: Literal["price", "mark", "index", "last"] = Field(
        "price", description="Column of a ticker stream taken as the price (ignored for trades and klines)")


class FileStream(FileTape, StreamField):
    """A mark/index stream read from a file: trades (e.g. a spot tape as index), klines or a ticker."""


class CatalogStream(CatalogTape, StreamField):
    """A mark/index stream read from the catalog."""


class Window(_Model):
    """The replayed span ``[start, end)``, UTC (TOML datetimes or ISO text)."""

    start: dt.datetime | None = Field(None, description="First instant replayed, inclusive (default: the tape's start; "
                                                        "no time zone: UTC)")
    end: dt.datetime | None = Field(None, description="End of the replay, exclusive (default: the tape's end; "
                                                      "no time zone: UTC)")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value

    @model_validator(mode="after")
    def _order(self) -> "Window":
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise ValueError(f"expected start before end (got {self.start.isoformat()} .. {self.end.isoformat()})")
        return self

    def bounds_ns(self) -> tuple[int | None, int | None]:
        """``(start, end)`` in ns since epoch (None where open)."""
        return (None if self.start is None else utc_ns(self.start), None if self.end is None else utc_ns(self.end))


def utc_ns(stamp: dt.datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (naive: UTC), exactly (no float)."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    delta = stamp - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


class SyntheticTape(_Model):
    """A seeded synthetic crash shaped like 2025-10-10 BTC (:func:`riskengine.synthetic.crash_tape`)."""

    ticks: TickCount = Field(200_000, description="Number of trades")
    start_price: PositiveMoney = Field(121_700.0, description="First price")
    duration_s: PositiveSeconds = Field(7_200.0, description="Span of the tape in seconds (from 2025-10-10 20:00 UTC)")
    drop: LogMove = Field(0.12, description="Log fall of the smooth path in the crash")
    wick: LogMove = Field(0.035, description="Extra log depth of the wick at the bottom")
    rebound: LogMove = Field(0.06, description="Log recovery over the last 40 minutes")
    noise: LogMove = Field(0.0004, description="Per-tick log noise")
    seed: Seed = Field(7, description="Random seed")


class Leverage(_Model):
    """Leverage distribution of the population: ``values`` drawn with ``weights``."""

    values: tuple[LeverageValue, ...] = Field(
        (2, 5, 10, 20, 40), description="Leverage of a positioned account (notional / position margin)")
    weights: tuple[Share, ...] = Field(
        (0.2, 0.3, 0.3, 0.15, 0.05), description="Probability of each value; as many as values, summing to 1")

    @model_validator(mode="after")
    def _weights(self) -> "Leverage":
        if len(self.values) != len(self.weights) or not self.values:
            raise ValueError(f"expected as many weights as values, at least one "
                             f"(got {len(self.values)} values, {len(self.weights)} weights)")
        if abs(sum(self.weights) - 1.0) > 1e-9:
            raise ValueError(f"weights: expected weights summing to 1 (got {sum(self.weights)!r})")
        return self


class SizeDistribution(_Model):
    """How position sizes are spread over accounts (heavy-tailed; scaled afterwards so the sides
    hold exactly their share of open interest). ``lognormal``: log sizes normal with ``sigma``
    (default 1.5); ``pareto``: Pareto tail index ``alpha`` (default 1.5; smaller is heavier,
    at or below 1 the mean is infinite and a few accounts hold most of the notional). The
    defaults are illustrative (``riskengine.population``)."""

    distribution: Literal["lognormal", "pareto"] = Field("lognormal", description="Shape of the size distribution")
    sigma: Sigma | None = Field(None, description="lognormal: standard deviation of log size (default 1.5)")
    alpha: Alpha | None = Field(None, description="pareto: tail index (default 1.5)")

    @model_validator(mode="after")
    def _tail(self) -> "SizeDistribution":
        if self.distribution == "lognormal" and self.alpha is not None:
            raise ValueError("alpha is the pareto tail index: give sigma for a lognormal distribution")
        if self.distribution == "pareto" and self.sigma is not None:
            raise ValueError("sigma is the lognormal spread: give alpha for a pareto distribution")
        return self

    @property
    def tail(self) -> float:
        """The tail parameter in use: ``sigma`` (lognormal) or ``alpha`` (pareto)."""
        if self.distribution == "pareto":
            return 1.5 if self.alpha is None else self.alpha
        return 1.5 if self.sigma is None else self.sigma


#: the keys of [population] that parameterise the generator (meaningless with ``file``)
GENERATOR_KEYS = ("accounts", "open_interest_usd", "long_share", "leverage", "sizes", "cross_share",
                  "cross_excess", "flat_share", "entry_lookback_s", "entry_spread", "seed")


class PopulationSpec(_Model):
    """The trader population: generated (:func:`riskengine.population.generate`, seeded, priced
    at the first trade of the replay window, entries drawn from the tape before the window) or
    read from a file (:func:`riskengine.population.load_population`). Give ``file`` or
    generator keys, not both. Where each default comes from: ``riskengine.population``."""

    file: str | None = Field(None, min_length=1, description=(
        "CSV or Parquet with columns account, side, size, entry_price, collateral, margin_mode; "
        "relative to the config file's folder (instead of the generator keys)"))
    accounts: PositiveCount = Field(100_000, description="Number of accounts (flat ones included)")
    open_interest_usd: PositiveMoney = Field(1e9, description=(
        "Notional of the population's positions at the start price, long + short (the external "
        "market holds the difference between the sides)"))
    long_share: Share = Field(0.7, description="Share of open interest (and of positioned accounts) held long")
    leverage: Leverage = Field(Leverage(), description="Leverage distribution")
    sizes: SizeDistribution = Field(SizeDistribution(), description="Position size distribution")
    cross_share: Share = Field(0.5, description="Share of cross-margin accounts")
    cross_excess: tuple[Multiple, Multiple] = Field(
        (1.0, 3.0), description="Range of a cross account's equity as a multiple of its position margin (uniform)")
    flat_share: ShareBelowOne = Field(0.02, description="Share of accounts with collateral and no position")
    entry_lookback_s: Seconds = Field(21_600.0, description=(
        "Entries are trades drawn by volume from this span of the tape before the window; 0: use entry_spread"))
    entry_spread: LogMove = Field(0.02, description=(
        "Log spread of entry prices around the start price, when there is no tape before the window"))
    seed: Seed = Field(7, description="Random seed of the generator")

    @model_validator(mode="after")
    def _file_or_generator(self) -> "PopulationSpec":
        if self.cross_excess[0] > self.cross_excess[1]:
            raise ValueError(f"cross_excess: expected [low, high] with low <= high (got {list(self.cross_excess)})")
        if self.file is not None:
            given = [k for k in GENERATOR_KEYS if k in self.model_fields_set]
            if given:
                raise ValueError(f"give file or generator keys, not both (got file and {', '.join(given)})")
        return self


class DepthFile(_Model):
    """Book depth from a depth-snapshot file: a time-varying depth curve (default), or one
    constant depth measured over the replay window (``time_varying = false``)."""

    source: Literal["binance-bookdepth"] = Field(
        "binance-bookdepth", description="File format: a Binance Vision `bookDepth` CSV (or its zip)")
    path: str = Field(min_length=1, description="The file; relative to the config file's folder")
    time_varying: bool = Field(
        True, description="Walk each snapshot's bands as of the tick time (false: one constant depth per 1%)")
    band_pct: Percent | None = Field(
        None, description="time_varying = false: the band whose notional is the depth per 1% (default 1)")
    statistic: Literal["median", "mean", "min"] | None = Field(
        None, description="time_varying = false: how snapshots inside the window are combined (default median)")
    tail_floor: Share = Field(
        TAIL_FLOOR_SHARE, description=(
            "time_varying: past the last band each side's depth grows at least this share of its typical "
            "slope over the whole file, out to 10% (0 = extrapolate the bands only; see riskengine.liquidity)"))

    @model_validator(mode="after")
    def _constant_only(self) -> "DepthFile":
        if self.time_varying and (self.band_pct is not None or self.statistic is not None):
            raise ValueError("band_pct and statistic measure one constant depth: set time_varying = false "
                             "to use them (a time-varying curve uses every band of every snapshot)")
        if not self.time_varying and "tail_floor" in self.model_fields_set:
            raise ValueError("tail_floor shapes a time-varying curve past its last band: drop it, or set "
                             "time_varying = true")
        return self


class LiquiditySpec(_Model):
    """Liquidity: a constant depth, or depth from a depth-snapshot file. Neither: plain replay
    (infinite depth, no slippage, no impact). See :mod:`riskengine.liquidity` for the model, the
    modes and the calibration of the defaults."""

    mode: Literal["replay", "endogenous", "counterfactual"] = Field(
        "endogenous", description="replay: the tape as is (no feedback); endogenous: simulated flow moves "
                                  "the price; counterfactual: the observed flow's impact is taken out first")
    depth_per_pct: PositiveMoney | None = Field(None, description="Quote notional within 1% of the price, each side")
    depth: DepthFile | None = Field(None, description="Depth measured from a depth-snapshot file")
    max_move: ShareInside = Field(0.5, description="Wall distance from the tape price")
    resilience_half_life_s: PositiveSeconds = Field(30.0, description="Half-life of transient impact and of the "
                                                                  "stress flow")
    feedback: Share = Field(1.0, description="Share of each order's move that persists")
    stress_k: Factor = Field(0.0, description="Stress thinning: depth x 1 / (1 + stress_k x recent flow / "
                                                   "depth at 1%); 0 = off")
    observed: FileTape | None = Field(
        None, description="counterfactual: observed liquidations (an events file: Tardis liquidations, "
                          "Hyperliquid fills) whose impact is taken out of the tape")

    @model_validator(mode="after")
    def _one(self) -> "LiquiditySpec":
        if self.depth_per_pct is not None and self.depth is not None:
            raise ValueError("give depth_per_pct or depth, not both")
        if self.observed is not None and self.mode != "counterfactual":
            raise ValueError(f"observed: the observed flow is used only with mode = \"counterfactual\" "
                             f"(mode is {self.mode!r})")
        return self


def _where(value: Any) -> str:
    """Union tag of a tape or stream table: ``in-catalog`` if it names a catalog, else ``in-file``."""
    if isinstance(value, dict):
        return "in-catalog" if "catalog" in value else "in-file"
    return "in-catalog" if isinstance(value, CatalogTape) else "in-file"


TapeSpec = Annotated[Annotated[FileTape, Tag("in-file")] | Annotated[CatalogTape, Tag("in-catalog")], Discriminator(_where)]
StreamSpec = Annotated[Annotated[FileStream, Tag("in-file")] | Annotated[CatalogStream, Tag("in-catalog")],
                       Discriminator(_where)]


#: what a scenario's (or an instrument's) ``funding`` table is
FUNDING_DESCRIPTION = ("Funding rates paid at their times (read by riskengine.funding.read_funding): a Binance Vision "
                       "fundingRate file or a saved Hyperliquid fundingHistory answer, or the catalog's kind "
                       "\"funding\"; paid by the designs whose funding.rule is data (the default)")


class ObservedSpec(_Model):
    """What really happened, put next to the simulated figures (:mod:`riskengine.observed`)."""

    source: Literal["hyperliquid-observed"] = Field(
        description="hyperliquid-observed: the 2025-10-10 aggregates folder (../shared/data)")
    path: str = Field(min_length=1, description="The folder; relative to the config file's folder")
    ticker: str = Field(min_length=1, description="The asset whose figures this scenario replays")


#: a constructed path's noise: a share of its price, below 20% (riskengine.collateral.DepegPath.check)
_PathNoise = number("share", ge=0, lt=0.2)


class ConstructedDepeg(_Model):
    """A constructed price path of a collateral asset that loses its peg and recovers
    (:class:`riskengine.collateral.DepegPath`, seeded): CONSTRUCTED, not data, and labelled so
    in its stream's label, warnings and the design's notes. Times are UTC; the defaults are
    DepegPath's (USDe on Binance on 2025-10-10 as reported: 21:36 fall, 0.65 at 21:43, back at
    22:16; ``docs/collateral.md`` says where each comes from)."""

    start: dt.datetime = Field(dt.datetime(2025, 10, 10, 21, 0, tzinfo=dt.timezone.utc),
                               description="first price of the path")
    end: dt.datetime = Field(dt.datetime(2025, 10, 10, 23, 0, tzinfo=dt.timezone.utc), description="last price")
    step_s: PositiveSeconds = Field(1.0, description="seconds between prices")
    peg: PositiveMoney = Field(1.0, description="level before and after the depeg")
    depeg_start: dt.datetime = Field(dt.datetime(2025, 10, 10, 21, 36, tzinfo=dt.timezone.utc),
                                     description="the fall starts (Binance's compensation window opens, as reported)")
    trough_at: dt.datetime = Field(dt.datetime(2025, 10, 10, 21, 43, tzinfo=dt.timezone.utc),
                                   description="the fall reaches the trough (an assumption: 7 minutes)")
    trough: PositiveMoney = Field(0.65, description="the low (USDe near 0.65 on Binance, as reported)")
    recovery_start: dt.datetime = Field(dt.datetime(2025, 10, 10, 21, 50, tzinfo=dt.timezone.utc),
                                        description="the price leaves the trough (an assumption)")
    recovered_at: dt.datetime = Field(dt.datetime(2025, 10, 10, 22, 16, tzinfo=dt.timezone.utc),
                                      description="back at the peg (the compensation window closes, as reported)")
    noise: _PathNoise = Field(0.01, description="multiplicative noise during the depeg (share of price)")
    calm_noise: _PathNoise = Field(0.0002, description="multiplicative noise outside it")
    seed: Seed = Field(7, description="random seed of the noise")

    @field_validator("start", "end", "depeg_start", "trough_at", "recovery_start", "recovered_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value

    def path(self, asset: str):
        """The :class:`riskengine.collateral.DepegPath` these parameters give (without the seed)."""
        from riskengine.collateral import DepegPath

        return DepegPath(asset=asset, **self.model_dump(exclude={"seed"}))


class CollateralAssetSpec(_Model):
    """A collateral asset of a scenario with instruments (``[[scenarios.collateral]]`` or
    ``[[scenario.collateral]]``; issue 13, :mod:`riskengine.collateral`): its symbol and its
    prices, from which each design builds the index it values the asset at
    (``venues[i].collateral.index``). Holdings come from the positions file (rows whose
    instrument is the asset) or the generator (``portfolio.collateral``)."""

    asset: str = Field(min_length=1, pattern=r"^[A-Za-z0-9]+$",
                       description="The asset's symbol, e.g. USDE: a positions file's instrument column names it "
                                   "and the design's collateral-ratio table lists it")
    own_book: StreamSpec | None = Field(None, description=(
        "The venue's own spot book of the asset (index own-book), read as a mark/index stream"))
    external: list[StreamSpec] = Field(default_factory=list, description=(
        "External books of the asset (index external-median), each read as a mark/index stream"))
    redemption: PositiveMoney | None = Field(None, description=(
        "The redemption price (index redemption-floor), e.g. 1.0 for USDe (Ethena redeems 1 USDe for $1)"))
    constructed: ConstructedDepeg | None = Field(None, description=(
        "A constructed depeg path standing for the own book (instead of own_book; labelled constructed)"))

    @model_validator(mode="after")
    def _prices(self) -> "CollateralAssetSpec":
        if self.own_book is not None and self.constructed is not None:
            raise ValueError("give own_book or constructed (a constructed path stands for the own book), not both")
        if self.own_book is None and self.constructed is None and not self.external and self.redemption is None:
            raise ValueError(f"asset {self.asset}: no price: expected own_book, constructed, external or redemption")
        return self


class HoldingSpec(_Model):
    """Generated holdings of one collateral asset (:func:`riskengine.portfolio.add_holdings`):
    a share of the users with a cross wallet hold a fraction of that wallet's value in the asset
    instead of the quote currency (an assumption: no venue publishes who holds which margin
    asset)."""

    share: Share = Field(description="Share of the users with a cross wallet who hold the asset")
    fraction: Share = Field(description="Fraction of such a user's wallet value (at the asset's index at the start) "
                                        "held in the asset")


class InstrumentSpec(_Model):
    """One instrument of a multi-instrument scenario (``[[scenario.instruments]]``, or
    ``[[scenarios.instruments]]`` in each ``[[scenarios]]`` table): its symbol, its tape (from a file, the catalog, or synthetic), an optional mark/index stream and
    changes of [liquidity] for its own book. Every instrument is cut to the scenario's window;
    the tapes are replayed merged in time order."""

    symbol: str = Field(
        min_length=1, pattern=r"^\S+$",
        description="The instrument's symbol, e.g. BTCUSDT: the positions file's instrument column names it, and "
                    "each venue preset takes its own symbol's margin table for the symbol's underlying (BTCUSDT -> "
                    "BTC: binance-usdm BTCUSDT, hyperliquid BTC); unique within the scenario")
    tape: TapeSpec | None = Field(None, description="Trades read from a file or the catalog (or give synthetic)")
    synthetic: SyntheticTape | None = Field(None, description="A synthetic crash tape (or give tape)")
    stream: StreamSpec | None = Field(None, description="Mark/index price stream, aligned as of each of its trades")
    funding: TapeSpec | None = Field(None, description=FUNDING_DESCRIPTION)
    liquidity: dict[str, Any] = Field(default_factory=dict,
                                      description="Keys of [liquidity] changed for this instrument's book")

    @model_validator(mode="after")
    def _one_tape(self) -> "InstrumentSpec":
        if (self.tape is None) == (self.synthetic is None):
            raise ValueError("expected exactly one of tape or synthetic")
        return self


#: the keys of a scenario's ``portfolio`` table that parameterise the generator (meaningless with ``file``)
PORTFOLIO_GENERATOR_KEYS = ("accounts", "open_interest_usd", "long_share", "max_leverage", "holdings", "hedged_share",
                            "cross_share", "cross_excess", "flat_share", "leverage", "sizes", "entry_spread", "seed",
                            "collateral")
#: the generator keys given per instrument: one number for every instrument, or one each
PER_INSTRUMENT_KEYS = ("open_interest_usd", "long_share", "max_leverage")
#: how many instruments an account holds when ``holdings`` is not given: the generator's own
#: default (``riskengine.portfolio``), cut to the scenario's instruments and rescaled
DEFAULT_HOLDINGS = (0.7, 0.2, 0.1)


class PortfolioAccounts(_Model):
    """The accounts of a multi-instrument scenario: user accounts with a wallet and positions in
    several instruments, each cross or isolated. Generated
    (:func:`riskengine.portfolio.generate_portfolio`, seeded, priced at each instrument's first
    trade in the window) or read from a positions file
    (:func:`riskengine.portfolio.load_portfolio`). Give ``file`` or generator keys, not both.
    Where each default comes from: ``riskengine.portfolio``. A user's cross positions share one
    cross account (issue 12, step 2), liquidated one position at a time
    (``liquidation.cross_order``); each isolated position is an account of its own."""

    file: str | None = Field(None, min_length=1, description=(
        "CSV or Parquet positions file, one row per position, with columns account, instrument (a symbol of "
        "the scenario), size, entry_price, margin_mode, isolated_margin, wallet; relative to the config "
        "file's folder (instead of the generator keys)"))
    accounts: PositiveCount = Field(100_000, description="Number of user accounts (those with a wallet only "
                                                         "included)")
    open_interest_usd: PositiveMoney | tuple[PositiveMoney, ...] = Field(1e9, description=(
        "Each instrument's open interest held by the accounts (long + short notional at its start price): one "
        "number for every instrument, or one per instrument in the order of instruments"))
    long_share: Share | tuple[Share, ...] = Field(0.7, description=(
        "Each instrument's share of open interest held long (one number, or one per instrument)"))
    max_leverage: LeverageValue | tuple[LeverageValue, ...] | None = Field(None, description=(
        "Each instrument's leverage cap: a position's drawn leverage is capped at it (one number, or one per "
        "instrument; unset: no cap beyond leverage.values)"))
    holdings: tuple[Share, ...] | None = Field(None, description=(
        "Probabilities of holding 1, 2, ... K instruments (K at most the number of instruments), summing to 1 "
        "(default: 0.7, 0.2, 0.1 cut to the number of instruments and rescaled)"))
    hedged_share: Share = Field(0.18, description=(
        "Share of the accounts holding two instruments or more whose book is hedged (a long and a short)"))
    cross_share: Share = Field(0.5, description="Probability that a position is cross (else isolated)")
    cross_excess: tuple[Multiple, Multiple] = Field(
        (1.0, 3.0), description="Range of a cross account's equity as a multiple of its cross positions' margin "
                                "(uniform)")
    flat_share: ShareBelowOne = Field(0.02, description="Share of accounts with a wallet and no position")
    leverage: Leverage = Field(Leverage(), description="Leverage distribution of a position (before its "
                                                       "instrument's cap)")
    sizes: SizeDistribution = Field(SizeDistribution(), description="Position size distribution")
    entry_spread: LogMove = Field(0.02, description="Log spread of entry prices around each instrument's start price")
    seed: Seed = Field(7, description="Random seed of the generator")
    collateral: dict[str, HoldingSpec] = Field(default_factory=dict, description=(
        "Holdings of the scenario's collateral assets, e.g. { USDE = { share = 0.25, fraction = 0.5 } }: that share "
        "of the users with a cross wallet hold that fraction of its value in the asset (an assumption; "
        "riskengine.portfolio.add_holdings); fractions sum to at most 1"))

    @model_validator(mode="after")
    def _file_or_generator(self) -> "PortfolioAccounts":
        if sum(h.fraction for h in self.collateral.values()) > 1.0 + 1e-12:
            raise ValueError("collateral: fractions sum above 1: expected at most a user's whole wallet")
        if self.cross_excess[0] > self.cross_excess[1]:
            raise ValueError(f"cross_excess: expected [low, high] with low <= high (got {list(self.cross_excess)})")
        if self.holdings is not None and (not self.holdings or abs(sum(self.holdings) - 1.0) > 1e-9):
            raise ValueError(f"holdings: expected probabilities summing to 1 (got {list(self.holdings)})")
        if self.file is not None:
            given = [k for k in PORTFOLIO_GENERATOR_KEYS if k in self.model_fields_set]
            if given:
                raise ValueError(f"give file or generator keys, not both (got file and {', '.join(given)})")
        return self

    def per_instrument(self, name: str, count: int) -> tuple[float, ...] | None:
        """The value of generator key ``name`` (:data:`PER_INSTRUMENT_KEYS`) for each of
        ``count`` instruments (None: unset)."""
        value = getattr(self, name)
        if value is None or isinstance(value, tuple):
            return value
        return (value,) * count

    def holdings_for(self, count: int) -> tuple[float, ...]:
        """``holdings``, or :data:`DEFAULT_HOLDINGS` cut to ``count`` instruments and rescaled."""
        if self.holdings is not None:
            return self.holdings
        cut = DEFAULT_HOLDINGS[:count]
        return tuple(w / sum(cut) for w in cut)


class ScenarioSpec(_Model):
    """One market scenario: a tape (from a file, the catalog, or synthetic), an optional
    mark/index stream, a window, and population changes for this tape; or several instruments,
    each with its own tape, stream and book, and the portfolio of accounts holding them."""

    name: str = Field(min_length=1, description="Label in result tables; unique within the config")
    tape: TapeSpec | None = Field(None, description="Trades read from a file or the catalog (or give synthetic, or "
                                                    "instruments)")
    synthetic: SyntheticTape | None = Field(None, description="A synthetic crash tape (or give tape, or instruments)")
    instruments: list[InstrumentSpec] | None = Field(
        None, description="Several instruments replayed together (instead of tape or synthetic): "
                          "[[scenarios.instruments]] tables, each with its symbol, tape, stream and liquidity; the "
                          "accounts come from portfolio")
    stream: StreamSpec | None = Field(
        None, description="Mark/index price stream, aligned as of each trade")
    funding: TapeSpec | None = Field(None, description=FUNDING_DESCRIPTION)
    window: Window = Field(Window(), description="The replayed span (default: the whole tape)")
    population: dict[str, Any] = Field(default_factory=dict,
                                       description="Keys of [population] changed for this scenario")
    portfolio: PortfolioAccounts | None = Field(
        None, description="The accounts of a scenario with instruments (instead of [population])")
    liquidity: dict[str, Any] = Field(default_factory=dict,
                                      description="Keys of [liquidity] changed for this scenario (with instruments: "
                                                  "for every instrument's book, before its own changes)")
    observed: ObservedSpec | None = Field(None, description="Observed outcomes to show next to the simulated ones")
    collateral: list[CollateralAssetSpec] | None = Field(
        None, description="Collateral assets of a scenario with instruments (issue 13): [[scenarios.collateral]] "
                          "tables, each an asset with its prices (own_book, external, redemption or constructed); "
                          "holdings from the positions file or portfolio.collateral")
    underlying: str | None = Field(
        None, min_length=1, pattern=r"^[A-Za-z0-9]+$",
        description="The asset the tape prices, e.g. AAVE: each venue preset without a symbol uses its own "
                    "symbol for it (binance-usdm AAVEUSDT, hyperliquid AAVE, okx AAVE-USDT-SWAP, ...) and that "
                    "symbol's margin table. Default: from the tape's symbol key (BTCUSD_PERP -> BTC); BTC for a "
                    "synthetic tape; otherwise each preset's default symbol, marked assumed. With instruments: "
                    "each instrument's symbol says its own")

    @model_validator(mode="after")
    def _one_tape(self) -> "ScenarioSpec":
        if self.instruments is None:
            if (self.tape is None) == (self.synthetic is None):
                raise ValueError("expected exactly one of tape or synthetic (or instruments: several, each with "
                                 "its own tape)")
            if self.portfolio is not None:
                raise ValueError("portfolio: the accounts of a scenario with instruments (a single tape's accounts "
                                 "are [population])")
            if self.collateral is not None:
                raise ValueError("collateral: collateral assets back the cross accounts of a scenario with "
                                 "instruments (give [[scenarios.instruments]] and a portfolio)")
            return self
        if self.tape is not None or self.synthetic is not None:
            raise ValueError("give instruments, or one tape or synthetic, not both (each instrument has its own)")
        if not self.instruments:
            raise ValueError("instruments: expected at least one [[scenarios.instruments]] table")
        if self.stream is not None:
            raise ValueError("stream: with instruments, each instrument has its own (instruments[i].stream)")
        if self.funding is not None:
            raise ValueError("funding: with instruments, each instrument has its own (instruments[i].funding)")
        if self.underlying is not None:
            raise ValueError("underlying: with instruments, each instrument's symbol says its underlying")
        if self.population:
            raise ValueError("population: with instruments, the accounts are the portfolio table")
        if self.portfolio is None:
            raise ValueError("portfolio: expected the accounts of the instruments (a positions file, or generator "
                             "keys)")
        seen: dict[str, int] = {}
        for k, instrument in enumerate(self.instruments):
            if instrument.symbol in seen:
                raise ValueError(f"instruments[{k}].symbol: {instrument.symbol!r} repeats "
                                 f"instruments[{seen[instrument.symbol]}].symbol: expected one instrument per symbol")
            seen[instrument.symbol] = k
        count = len(self.instruments)
        for name in PER_INSTRUMENT_KEYS:
            value = getattr(self.portfolio, name)
            if isinstance(value, tuple) and len(value) != count:
                raise ValueError(f"portfolio.{name}: {len(value)} values: expected one number, or one per instrument "
                                 f"({count})")
        assets = [a.asset for a in self.collateral or ()]
        for k, name in enumerate(assets):
            if name in seen:
                raise ValueError(f"collateral[{k}].asset: {name!r} is also instruments[{seen[name]}].symbol: expected "
                                 "an asset apart from the instruments")
            if assets.index(name) != k:
                raise ValueError(f"collateral[{k}].asset: {name!r} repeats collateral[{assets.index(name)}]: "
                                 "expected one table per asset")
        for name in self.portfolio.collateral:
            if name not in assets:
                raise ValueError(f"portfolio.collateral: {name!r} is not a collateral asset of the scenario"
                                 f"{suggest(name, assets)} (assets: {', '.join(assets) or 'none'})")
        holdings = self.portfolio.holdings
        if holdings is not None and len(holdings) > count:
            raise ValueError(f"portfolio.holdings: {len(holdings)} values: expected the probabilities of holding "
                             f"1..K instruments, K at most the instruments' count ({count})")
        return self

    @property
    def symbols(self) -> tuple[str, ...]:
        """The instruments' symbols (empty for a single-tape scenario)."""
        return tuple(i.symbol for i in self.instruments or ())


class Outputs(_Model):
    """Where and how results are written."""

    dir: str | None = Field(None, description="Output folder (default: results/<config name>)")
    series_interval_s: PositiveSeconds | None = Field(
        None, description="Series sampling (default: span / 2,000); also how finely the weighted ADL "
                                "policies log fills: one row per winner per interval")


#: result columns that are labels, not figures a sweep can rank by
_LABEL_COLUMNS = ("scenario", "design", "engine")


class SweepSpec(_Model):
    """A parameter sweep (``riskengine sweep``): the cartesian product of ``grid``, each point
    a run of the base config with those values set (:mod:`riskengine.sweep`)."""

    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        min_length=1, description='Key path into the config (e.g. "population.seed", "venues[2].adl.policy", '
                                  '"scenario.synthetic.drop") -> the values it takes')
    rank_by: str = Field("bad_debt", description="Result column the designs are ranked by (its mean over the runs)")
    rank_order: Literal["ascending", "descending"] = Field(
        "ascending", description="ascending: a lower rank_by is better; descending: a higher one is")

    @field_validator("grid")
    @classmethod
    def _distinct(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            seen = [canonical_json(v) for v in values]
            dupes = sorted({v for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"{key!r}: values repeat ({', '.join(dupes)}): each run would run twice")
        return grid

    @field_validator("rank_by")
    @classmethod
    def _column(cls, name: str) -> str:
        from riskengine.metrics import COLUMNS

        figures = [c.name for c in COLUMNS if c.name not in _LABEL_COLUMNS]
        if name not in figures:
            raise ValueError(f"expected a result column{suggest(name, figures)} (see riskengine/metrics.py)")
        return name


class Config(_Model):
    """A backtest: scenarios x venue designs (and an optional sweep over any of its keys)."""

    scenario: ScenarioSpec | None = Field(None, description="The one scenario (or give [[scenarios]])")
    scenarios: list[ScenarioSpec] | None = Field(None, description="Several scenarios, each run against every "
                                                                   "design (or give [scenario])")
    population: PopulationSpec = Field(PopulationSpec(), description="The trader population")
    liquidity: LiquiditySpec = Field(LiquiditySpec(), description="The book the engine's orders walk")
    venues: list[dict[str, Any]] = Field(min_length=1, description="Venue designs: preset + overrides")
    outputs: Outputs = Field(Outputs(), description="Where `riskengine run` writes")
    sweep: SweepSpec | None = Field(None, description="Parameter grid of `riskengine sweep` (ignored by `run`)")

    @model_validator(mode="after")
    def _scenarios(self) -> "Config":
        if (self.scenario is None) == (self.scenarios is None):
            raise ValueError("expected exactly one of [scenario] or [[scenarios]]")
        if self.scenarios is not None and not self.scenarios:
            raise ValueError("scenarios: expected at least one")
        names = [s.name for s in self.all_scenarios()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenario names must be unique (repeated: {', '.join(dupes)})")
        return self

    def all_scenarios(self) -> list[ScenarioSpec]:
        """The scenarios, whichever form the file used."""
        return [self.scenario] if self.scenario is not None else list(self.scenarios or ())


class LoadedConfig(BaseModel):
    """A validated config and where it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    config: Config
    path: Path | None
    base_dir: Path

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else "default"

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expandvars(os.path.expanduser(path)))
        return p if p.is_absolute() else self.base_dir / p

    def resolved(self, value: Any) -> Any:
        """``value`` (a model, or what ``model_dump(mode="json")`` gives) as plain JSON data with
        every file key (:data:`PATH_KEYS`) an absolute path: the same file, however it was
        written, gives the same data (for run hashes and cache keys)."""
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if isinstance(value, dict):
            return {k: str(self.resolve(v).resolve()) if k in PATH_KEYS and isinstance(v, str)
                    else self.resolved(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.resolved(v) for v in value]
        return value


#: keys whose text value names a file or folder, relative to the config file's folder
PATH_KEYS = ("path", "catalog", "file")


def canonical_json(value: Any) -> str:
    """One text for equal JSON data: sorted keys, no spaces (datetimes as ISO text)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON data: {value!r}")


# ------------------------------------------------------------------------------ key paths
_KEY_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")
KeyPath = tuple[str | int, ...]


def parse_key(key: str) -> KeyPath:
    """``"venues[2].adl.policy"`` -> ``("venues", 2, "adl", "policy")``.

    Raises
    ------
    ValueError
        Not a dotted key path with optional ``[index]`` parts.
    """
    parts: list[str | int] = []
    for piece in key.split("."):
        match = _KEY_PART.fullmatch(piece)
        if match is None:
            raise ValueError(f"{key!r}: expected a key path like \"population.seed\" or \"venues[2].adl.policy\"")
        parts.append(match.group(1))
        parts += [int(i) for i in re.findall(r"\d+", match.group(2))]
    return tuple(parts)


def format_key(parts: KeyPath) -> str:
    """The inverse of :func:`parse_key`."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _fields(models: list[type[BaseModel]]) -> dict[str, Any]:
    return {name: f.annotation for m in models for name, f in m.model_fields.items()}


def check_key(config: Config, key: str) -> KeyPath:
    """Check that ``key`` names a key of ``config``'s schema: a model field at each step,
    ``[i]`` within the config's lists (``venues[i]`` is a venue design table: its preset keys
    and :class:`riskengine.venue.VenueDesign`'s components; a scenario's ``instruments[i]`` and ``collateral[i]``; a
    scenario's ``population`` and ``liquidity`` and an instrument's ``liquidity`` hold keys of
    [population] and [liquidity]).

    Returns
    -------
    KeyPath
        The parsed key.

    Raises
    ------
    ValueError
        ``'key': what is wrong``, with the nearest valid key for a misspelt one.
    """
    from riskengine.errors import _models_in
    from riskengine.venue import VenueDesign
    from riskengine.venues import _PRESET_KEYS

    parts = parse_key(key)
    models: list[type[BaseModel]] = [Config]
    value: Any = config  # the config's value at the path so far (None where unset)
    extra: tuple[str, ...] = ()  # names valid beside the models' fields (a venue table's preset keys)
    changes = {(ScenarioSpec, "population"): PopulationSpec, (ScenarioSpec, "liquidity"): LiquiditySpec,
               (InstrumentSpec, "liquidity"): LiquiditySpec}
    for k, part in enumerate(parts):
        here = format_key(parts[:k])
        if isinstance(part, int):
            if here not in ("venues", "scenarios") and not here.endswith((".instruments", ".collateral")):
                raise ValueError(f"{key!r}: {here} is one value: sweep it whole (e.g. [[2, 5], [10, 20]])")
            if not isinstance(value, (list, tuple)) and here != "scenarios":
                raise ValueError(f"{key!r}: the scenario has no {here.rsplit('.', 1)[-1]} (a sweep changes the "
                                 "instruments a config gives)")
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{key!r}: the config has no [[scenarios]] list (it has one [scenario]: "
                                 f"use {format_key(('scenario', *parts[k + 1:]))!r})")
            if part >= len(value):
                raise ValueError(f"{key!r}: {here} has {len(value)} entr{'y' if len(value) == 1 else 'ies'} "
                                 f"in the config (indexes 0..{len(value) - 1})")
            value = value[part]
            if here == "venues":  # a design table: preset keys + the design's components
                models, extra, value = [VenueDesign], tuple(_PRESET_KEYS), None
            continue
        if isinstance(value, (list, tuple)):
            raise ValueError(f"{key!r}: {here} is a list: give an index, e.g. "
                             f"{format_key((*parts[:k], 0, *parts[k:]))!r}")
        if not models and not extra:
            raise ValueError(f"{key!r}: {here} is one value, not a table")
        fields = _fields(models)
        if part not in fields and part not in extra:
            close = nearest(part, (*fields, *extra))
            hint = f" (did you mean {format_key((*parts[:k], close, *parts[k + 1:]))!r}?)" if close else ""
            raise ValueError(f"{key!r}: unknown key {part!r}{hint}")
        if models == [Config] and part == "sweep":
            raise ValueError(f"{key!r}: a sweep cannot change its own [sweep] table")
        if models == [Config] and part == "scenario" and config.scenario is None:
            raise ValueError(f"{key!r}: the config has [[scenarios]], not one [scenario]: "
                             f"use {format_key(('scenarios', 0, *parts[k + 1:]))!r}")
        owner = next((m for m in models if part in m.model_fields), None)
        if isinstance(value, BaseModel):
            value = getattr(value, part, None)
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            value = None
        if (owner, part) in changes:  # a scenario's changes of [population] or [liquidity]
            models, extra, value = [changes[owner, part]], (), None
        else:
            models, extra = (_models_in(fields[part]) if part in fields else []), ()
    return parts


def check_grid(config: Config) -> None:
    """Every key of the config's sweep grid names a key of its schema (:func:`check_key`).

    Raises
    ------
    ValueError
        ``sweep.grid: 'key': what is wrong``.
    """
    if config.sweep is None:
        return
    for key in config.sweep.grid:
        try:
            check_key(config, key)
        except ValueError as exc:
            raise ValueError(f"sweep.grid: {exc}") from None


def parse(data: dict, where: str = "config", base_dir: Path | None = None,
          path: Path | None = None) -> LoadedConfig:
    """Validate a config mapping.

    Raises
    ------
    ValueError
        ``where: key.path: what was expected``.
    """
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, Config, f"{where}: ")) from None
    try:
        check_grid(config)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return LoadedConfig(config=config, path=path, base_dir=base_dir or Path.cwd())


def load(path: str | os.PathLike) -> LoadedConfig:
    """Read and validate a TOML config file.

    Raises
    ------
    ValueError
        A missing or malformed file, an unknown key (with the nearest valid one), a bad value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the config file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path), path.resolve().parent, path)


def json_schema() -> dict:
    """The JSON schema of config files (for editors)."""
    return Config.model_json_schema()


def load_default() -> LoadedConfig:
    """The embedded default config of ``riskengine run`` (``riskengine/defaults/default.toml``)."""
    from importlib.resources import files

    resource = files("riskengine") / "defaults" / "default.toml"
    data = tomllib.loads(resource.read_text(encoding="utf-8"))
    return parse(data, "embedded default config", Path.cwd(), Path("default.toml"))
