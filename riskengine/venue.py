"""Venue designs: the rulebook of a venue as data, one component per mechanism.

A :class:`VenueDesign` is made of typed, validated components — :class:`Margin`,
:class:`Mark`, :class:`Liquidation`, :class:`Fund`, :class:`Backstop`, :class:`Adl` — in user
units (seconds, rates, quote currency). Presets (``riskengine.venues``) build documented
rulebooks; :meth:`VenueDesign.with_overrides` changes any component to make a variant, e.g.
Hyperliquid with pro-rata ADL::

    hyperliquid().with_overrides({"name": "hl-pro-rata", "adl": {"policy": "pro-rata"}})

:meth:`VenueDesign.engine_params` resolves a design and a liquidity model into the numbers
the engines consume (:class:`riskengine.params.EngineParams`); that mapping lives only here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, CrossOrder, FundingPrice, MarkMethod, PartialMode, Takeover
from riskengine.errors import format_validation_error
from riskengine.liquidity import ConstantDepth, DepthCurve
from riskengine.params import MARGIN_FORMS, EngineParams
from riskengine.ranges import (Count, PositiveCount, Fraction, Money, MultipleOfBalance, NegativeShare, Power, PositiveMoney, PositiveMultiple, PositiveSeconds, Seconds,
                               Share, ShareBelowOne, ShareInside, check_leverage, whole)

NS = 1_000_000_000
#: values of :attr:`VenueDesign.margin_mode` (:meth:`riskengine.portfolio.Portfolio.in_margin_mode`)
MARGIN_MODES = ("as-held", "cross", "isolated")


class Component(BaseModel):
    """Base of the design components: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Margin(Component):
    """Tiered maintenance margin of a position of notional ``N`` in tier ``k`` (the last tier whose
    floor is <= ``N``), in one of two forms:

    * ``deduction``: ``MM(N) = N x rate_k - cum_k``, the deductions derived so the schedule is
      continuous (Binance brackets' maintenance amount, Hyperliquid margin tables, Bybit's
      ``mmDeduction``; reference §0);
    * ``whole-position``: ``MM(N) = N x rate_k``, the tier's rate applied to the whole position
      (a step schedule: crossing a floor re-rates the whole position, as a risk limit does where
      the venue documents it so).
    """

    floors: tuple[Money, ...] = Field((0.0,), description="notional floor of each tier; the first is 0")
    rates: tuple[ShareInside, ...] = Field((0.005,), description="maintenance margin rate of each tier, in (0, 1)")
    form: Literal[MARGIN_FORMS] = Field(
        "deduction", description="deduction: MM = N x rate_k - cum_k, continuous; whole-position: MM = N x rate_k "
                                 "of the tier holding N (a step schedule)")
    source: str = Field("", description="where the table comes from, with its date")
    label: str = Field("", description="short name of the table in the result column margin_source (default: "
                                       "'default one-tier 0.5%' or 'given in the design')")
    caveat: str = Field("", description="why the table may not be the venue's on the replay date (assumed, out of "
                                        "date); a run shows it as a warning")
    gap: str = Field("", description="what a stored table lacks (tiers or dates the sources do not give; its label "
                                     "says '(incomplete)'); a run shows it as a warning")

    @field_validator("floors")
    @classmethod
    def _floors(cls, floors: tuple[float, ...]) -> tuple[float, ...]:
        if not floors:
            raise ValueError("expected at least one tier")
        if floors[0] != 0:
            raise ValueError(f"the first floor must be 0 (got {floors[0]!r})")
        for k in range(1, len(floors)):
            if not floors[k] > floors[k - 1]:
                raise ValueError(f"tier floors must increase (floors[{k}] = {floors[k]!r} <= floors[{k - 1}] = {floors[k - 1]!r})")
        return floors

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: tuple[float, ...]) -> tuple[float, ...]:
        for k, r in enumerate(rates):
            if k and r < rates[k - 1]:
                raise ValueError(f"rates must not decrease (rates[{k}] = {r!r} < rates[{k - 1}] = {rates[k - 1]!r})")
        return rates

    @model_validator(mode="after")
    def _same_length(self) -> "Margin":
        if len(self.floors) != len(self.rates):
            raise ValueError(f"floors and rates must have the same length ({len(self.floors)} vs {len(self.rates)})")
        if not self.label:
            default = self.floors == (0.0,) and self.rates == (0.005,)
            object.__setattr__(self, "label", "default one-tier 0.5%" if default else "given in the design")
        return self

    @property
    def margin_source(self) -> str:
        """The ``margin_source`` cell of a run: the label, and the caveat in brackets."""
        return f"{self.label} [{self.caveat}]" if self.caveat else self.label

    @classmethod
    def from_max_leverage(cls, floors, max_leverage, source: str = "", label: str = "") -> "Margin":
        """Hyperliquid form: each tier's rate is half the initial margin at its maximum
        leverage, ``1 / (2 x max_leverage)`` ("Margin tiers", reference §2.1)."""
        for k, lev in enumerate(max_leverage):
            check_leverage(lev, f"max_leverage[{k}]")
        return cls(floors=tuple(floors), rates=tuple(1.0 / (2.0 * lev) for lev in max_leverage),
                   source=source, label=label)


class Mark(Component):
    """How the mark price is formed (``cext/riskengine/_mark.pyx`` documents each method)."""

    method: Literal["last", "ema", "stream", "index-ema-basis", "binance-median", "hl-median"] = Field(
        "last", description="last: the simulated trade price; ema: its time-weighted EMA; stream: the scenario's "
                            "stream; index-ema-basis: index + EMA(price - index); binance-median: median(index, "
                            "index + EMA basis, last); hl-median: median(index + EMA basis, last, EMA of last)")
    ema_s: PositiveSeconds = Field(150.0, description="time constant of the basis EMA (or of the trade EMA)")
    ema2_s: PositiveSeconds = Field(30.0, description="time constant of the EMA of the last price (hl-median)")


class Liquidation(Component):
    """The liquidation order: size, limits, fee, throughput."""

    fee: ShareBelowOne = Field(0.0, description="fee rate on liquidated notional, paid into the insurance fund")
    surplus_to_fund: bool = Field(False, description="a closed-out account's remaining margin goes to the fund (BitMEX, Bybit)")
    limit: Literal["none", "bankruptcy"] = Field("none", description="IOC limited at the bankruptcy price (Binance) or a plain market order")
    price_band: Fraction | None = Field(None, description="fills no further than this share from the mark (Binance marketTakeBound, dYdX spread)")
    max_order: PositiveMoney | None = Field(None, description="largest liquidation order notional at mark (Hyperliquid's maximum market order value); the rest waits for the next tick (None = no cap)")
    partial: Literal["none", "fraction", "tier-step"] = Field(
        "none", description="none: close the whole position; fraction: partial_fraction of it per order; "
                            "tier-step: down to the next lower margin tier per order")
    partial_fraction: Fraction = Field(1.0, description="share of the position per partial order (partial = fraction)")
    partial_threshold: Money = Field(0.0, description="partial orders only above this notional (partial = fraction)")
    cooldown_s: Seconds = Field(0.0, description="after a partial order, orders are for the whole position for this long")
    max_per_step: Count = Field(0, description="liquidations processed per tape tick (0 = unlimited)")
    latency_s: Seconds = Field(0.0, description="delay between trigger and order")
    cross_order: Literal["notional", "loss"] = Field(
        "notional", description="which position of a crossing cross account with several positions is liquidated "
                                "first (one per liquidation; venues do not document an order): notional: the "
                                "largest notional at mark; loss: the most negative unrealized PnL; ties: the "
                                "first position")


#: what ``fund.shared`` and ``backstop.shared`` hold: "all", "none" or groups of symbols
Shared = Literal["all", "none"] | tuple[tuple[str, ...], ...]

_SHARED_EXAMPLE = '[["BTCUSDT", "ETHUSDT", "BNBUSDT"]]'


def _check_shared(value: Any) -> Any:
    """``all``, ``none`` or groups of symbols (each a non-empty list of symbols, no symbol in two
    groups, compared case-insensitively). Raises ``ValueError`` with one line."""
    expected = f'expected "all", "none" or a list of groups of symbols, e.g. {_SHARED_EXAMPLE}'
    if isinstance(value, str):
        if value not in ("all", "none"):
            raise ValueError(f"{expected} (got {value!r})")
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{expected} (got {type(value).__name__} {value!r})")
    seen: dict[str, int] = {}
    groups = []
    for j, group in enumerate(value):
        if isinstance(group, str) or not isinstance(group, (list, tuple)) or not group:
            raise ValueError(f"group {j}: expected a non-empty list of symbols, e.g. {_SHARED_EXAMPLE} (got {group!r})")
        for symbol in group:
            if not isinstance(symbol, str) or not symbol.strip():
                raise ValueError(f"group {j}: expected symbols (non-empty text), got {symbol!r}")
            key = symbol.strip().upper()
            if key in seen:
                where = "twice in group" if seen[key] == j else f"in groups {seen[key]} and"
                raise ValueError(f"symbol {symbol!r} is listed {where} {j}: an instrument draws on one ledger")
            seen[key] = j
        groups.append(tuple(symbol.strip() for symbol in group))
    return tuple(groups)


def ledger_groups(shared: str | tuple[tuple[str, ...], ...], symbols: tuple[str, ...], where: str) -> list[int]:
    """The ledger (0..G-1) of each instrument of a scenario with ``symbols`` under ``shared``
    (``fund.shared`` or ``backstop.shared``): ``all`` one ledger for every instrument, ``none``
    one each, or the given groups (symbols matched case-insensitively), the instruments in no
    group sharing one more. Ledgers are numbered in the order of their first instrument
    (:func:`riskengine.engine_inputs.ledger_groups`).

    Raises
    ------
    ValueError
        ``where: ...`` naming a symbol the scenario does not hold and the symbols it holds.
    """
    if shared == "all":
        return [0] * len(symbols)
    if shared == "none":
        return list(range(len(symbols)))
    index = {s.upper(): k for k, s in enumerate(symbols)}
    label = [-1] * len(symbols)  # the group of each instrument, -1: in none
    for j, group in enumerate(shared):
        for symbol in group:
            k = index.get(symbol.upper())
            if k is None:
                raise ValueError(f"{where}: symbol {symbol!r} (group {j}) is not an instrument of the scenario "
                                 f"(it holds {', '.join(symbols)})")
            label[k] = j
    number: dict[int, int] = {}
    return [number.setdefault(g, len(number)) for g in label]


class Fund(Component):
    """The insurance fund.

    ``shared`` says which instruments of a scenario draw on one fund: each fund (ledger) starts
    with ``initial`` and pays deficits, takes fees and takes inventory over only for its own
    instruments, within its own capacity; the fund-drawdown ADL trigger (``adl.fund_drawdown``)
    watches the fund of the liquidated position's instrument. Binance runs "several Futures
    Insurance Funds" [DOC S23, S24], one of them shared by BTC, ETH and BNB USDⓈ-M contracts
    [3P S26] (``riskengine.venues.binance_usdm.SHARED_FUND_SYMBOLS``).
    """

    initial: Money = Field(0.0, description="balance at the start (of each fund when there are several: shared)")
    takeover: bool = Field(False, description="takes over what a limited order leaves unfilled, at the bankruptcy price")
    capacity: PositiveMultiple | None = Field(None, description="largest inventory notional as a multiple of the fund's equity (None = unlimited)")
    unwind_interval_s: PositiveSeconds = Field(10.0, description="taken-over inventory is sold to the book this often")
    unwind_fraction: Fraction = Field(0.25, description="share of the inventory sold at each unwind")
    shared: Shared = Field(
        "all", description='which instruments share a fund: "all" (one fund for every instrument), "none" (one '
                           'each), or groups of symbols, e.g. [["BTCUSDT", "ETHUSDT", "BNBUSDT"]] (matched to the '
                           "scenario's symbols, case-insensitive; the instruments in no group share one more fund); "
                           "each fund starts with initial; one instrument: one fund")

    _shared = field_validator("shared", mode="before")(classmethod(lambda cls, v: _check_shared(v)))


class Backstop(Component):
    """A backstop vault that takes over accounts below a share of maintenance margin.

    Its loss (start balance minus equity at the mark) is checked after every takeover, every
    unwind and every re-mark. Once the loss passes the threshold (``loss_limit`` when set, else
    ``loss_limit_share`` x ``vault_balance``) the vault's whole inventory is auto-deleveraged at
    once (what the opposite side cannot absorb is sold to the book), and while the loss stays
    beyond it the vault takes nothing over: accounts are
    liquidated as without a backstop (a market order, auto-deleveraged when the book cannot
    close it without a deficit the fund cannot pay). Without ADL the vault keeps its inventory
    and only stops taking over. Venues do not publish the threshold (Hyperliquid: ADL "if the
    liquidator vault loses above a threshold" [DOC S36]; reference §2.4, §7.5), so it is an
    assumption tied to the balance: by default the vault never loses more than it holds
    (``loss_limit_share = 1``), so a smaller vault deleverages sooner.

    ``shared`` says which instruments of a scenario one vault serves: each vault starts with
    ``vault_balance``, has its own loss threshold (``loss_limit`` or ``loss_limit_share`` of its
    balance), takes over positions only in its own instruments, checks its loss on its own equity
    and deleverages only its own inventory. A cross account the vaults take over hands each
    position to its instrument's vault, and its remaining equity to the vault of the position the
    liquidation chose (assumed: venues have one vault), while every one of those vaults is within
    its threshold. Hyperliquid: one liquidator vault for every asset (``all``; reference §2.4,
    §2.6).
    """

    ratio: Share = Field(0.0, description="take over when equity < ratio x MM, or when a market liquidation order would leave a deficit the fund cannot pay (the book cannot close it); 0 = no backstop")
    vault_balance: Money = Field(0.0, description="the vault's balance at the start (of each vault when there are several: shared)")
    unwind_interval_s: PositiveSeconds = Field(10.0, description="taken-over inventory is sold to the book this often")
    unwind_fraction: Fraction = Field(0.25, description="share of the inventory sold at each unwind")
    loss_limit_share: MultipleOfBalance = Field(
        1.0, description="the vault's loss threshold as a share of vault_balance (each vault's, of its own balance): once its loss at the mark passes "
                         "it, its inventory is auto-deleveraged and it takes nothing over (an assumption: the "
                         "threshold is not published; 1 = it never loses more than it holds; above 1 it may "
                         "lose more, e.g. with a parent vault behind it; 0 = at its first loss)")
    loss_limit: Money | None = Field(None, description="the loss threshold as an amount, in the quote currency; when set it "
                                                       "overrides loss_limit_share (None = loss_limit_share x vault_balance)")
    shared: Shared = Field(
        "all", description='which instruments share a vault: "all" (one vault for every instrument, Hyperliquid), '
                           '"none" (one each), or groups of symbols, e.g. [["BTC", "ETH"]] (matched to the '
                           "scenario's symbols, case-insensitive; the instruments in no group share one more vault); "
                           "each vault starts with vault_balance and has its own loss threshold; one instrument: "
                           "one vault")

    _shared = field_validator("shared", mode="before")(classmethod(lambda cls, v: _check_shared(v)))

    @property
    def loss_threshold(self) -> float:
        """The loss at which the vault deleverages: ``loss_limit`` when set, else
        ``loss_limit_share x vault_balance``."""
        return self.loss_limit if self.loss_limit is not None else self.loss_limit_share * self.vault_balance


class Adl(Component):
    """Auto-deleveraging (``cext/riskengine/_adl.pyx`` documents each policy)."""

    policy: Literal["none", "queue", "pro-rata", "pro-rata-equity", "pro-rata-pnl", "levered-pro-rata",
                    "risk-aware", "water-filling", "socialize"] = Field(
        "queue", description="who is deleveraged: queue: highest ranking score first; pro-rata: by size; "
                             "pro-rata-equity: by equity; pro-rata-pnl: by unrealized profit; levered-pro-rata: "
                             "by notional; risk-aware: by notional x leverage^risk_power; water-filling: the most "
                             "levered first; socialize: nobody, the loss is charged to every open position; none: "
                             "no ADL (the loss is bad debt)")
    ranking: Literal["pnl-leverage", "hl-index", "binance-leverage-pnl"] = Field(
        "pnl-leverage", description="score of the queue: pnl-leverage: PnL% x leverage (BitMEX, Bybit); hl-index: "
                                    "Hyperliquid's mark/entry x leverage; binance-leverage-pnl: Binance's")
    price: Literal["bankruptcy", "mark", "previous-mark"] = Field(
        "bankruptcy", description="price of the ADL fills: the liquidated account's bankruptcy price, the mark, or "
                                  "the mark before the tick")
    on_negative_equity: bool = Field(False, description="deleverage an account already below zero equity instead of sending it to the book")
    short_mark_over_entry: bool = Field(False, description="Hyperliquid index for shorts as written (mark/entry) rather than side-adjusted")
    rank_interval_s: Seconds = Field(1.0, description="the queue is ranked at most this often (0 = before every order)")
    risk_power: Power = Field(1.0, description="p of the risk-aware weights notional x leverage^p")
    fund_drawdown: Fraction | None = Field(None, description="ADL instead of the book once the fund is this far below its rolling peak (OKX: 0.3)")
    fund_window_s: PositiveSeconds = Field(8 * 3600.0, description="window of that rolling peak")


class Funding(Component):
    """Funding payments between longs and shorts (issue 13): where the rates come from and the
    price a payment values a position at.

    ``rule``: ``data``, the scenario's funding rates (``scenarios[i].funding``, or each
    instrument's; none given: no funding); ``none``, no funding even where the scenario gives
    rates; ``binance`` or ``hyperliquid``, the venue's documented formula applied to the premium
    of the scenario's tape over its stream (``riskengine.funding.binance_funding``: time-weighted
    premium over ``interval_hours``, ``P + clamp(interest - P, +/-0.05%)``, capped;
    ``riskengine.funding.hyperliquid_funding``: hourly, plain mean, one eighth of the 8-hour
    rate, capped at 4%/h). Every open position pays ``size x price x rate`` at each funding time
    (``riskengine.reference``, "Funding"); ``price``: ``mark`` (Binance: nominal value at the
    mark price [DOC S2]) or ``index`` (Hyperliquid: "position size x oracle price x funding
    rate", docs "Funding").
    """

    rule: Literal["data", "none", "binance", "hyperliquid"] = Field(
        "data", description="data: the scenario's funding rates (none given: no funding); none: no funding; "
                            "binance / hyperliquid: the venue's formula on the premium of the tape over its stream")
    price: Literal["mark", "index"] = Field(
        "mark", description="the price a payment values a position at: mark (Binance) or the instrument's "
                            "index/oracle stream as of its last tick (Hyperliquid; the mark where it has none yet)")
    cap: Fraction | None = Field(
        None, description="computed rates: largest rate per interval (default: binance 2%, the USDⓈ-M rule "
                          "for symbols outside the listed majors; hyperliquid 4% per hour)")
    floor: NegativeShare | None = Field(None, description="computed rates: lowest rate per interval (default: -cap)")
    interval_hours: whole("count", ge=1, le=8) = Field(  # type: ignore[valid-type]
        8, description="computed binance rates: the funding interval N in hours (1, 4 or 8)")
    @field_validator("interval_hours")
    @classmethod
    def _binance_interval(cls, value: int) -> int:
        if value not in (1, 4, 8):
            raise ValueError(f"expected 1, 4 or 8 hours, Binance's funding intervals (got {value})")
        return value

    interest_8h: Share = Field(0.0001, description="computed rates: the interest rate per 8 hours "
                                                                    "(0.01%; 0 for contracts a venue exempts)")


class Collateral(Component):
    """How the design values a scenario's collateral assets (issue 13; :mod:`riskengine.collateral`,
    ``docs/collateral.md``): the index each asset is priced at and the collateral ratios that
    count a holding as margin. A holding of ``amount`` counts ``amount x index x ratio`` in its
    cross account (Binance Multi-Assets: ``bidRate = index x (1 - bidBuffer)``, API
    "Multi-Assets Mode Asset Index"; FAQ "How to Calculate Margin in Multi-Assets Mode").

    ``index`` is a design choice because it is what failed on 2025-10-10: ``own-book`` (the
    venue's own spot book: what Binance's USDe index followed, as reported), ``external-median``
    (the median of the scenario's external streams of the asset), ``redemption-floor``
    (``max(floor, weight x redemption + (1 - weight) x own book)``: Binance's announced change
    after 2025-10-10, weight and floor unpublished, hence settings). Hyperliquid takes USDC
    only (:data:`riskengine.collateral.SINGLE_ASSET`): a scenario holding another asset is
    refused for a design whose ratio table is ``hyperliquid``.
    """

    index: Literal["own-book", "external-median", "redemption-floor"] = Field(
        "own-book", description="the asset index: own-book (the venue's own spot book), external-median (median "
                                "of the scenario's external streams), redemption-floor (max(floor, weight x "
                                "redemption + (1 - weight) x own book))")
    floor: Money | None = Field(None, description="redemption-floor: the lowest index price (required there; "
                                                  "Binance announced a floor for USDe without publishing it)")
    weight: Share = Field(1.0, description="redemption-floor: the redemption price's weight (1: the redemption "
                                           "price alone; below 1 needs the scenario's own-book stream)")
    min_sources: PositiveCount = Field(1, description="external-median: external streams that must have printed for "
                                                  "an index print")
    ratios: str | None = Field(None, min_length=1, description=(
        "the venue whose collateral-ratio table applies (riskengine/venues/collateral/<venue>.toml, or "
        "hyperliquid: USDC only, ratio 1); default: the design's preset"))
    date: dt.date | None = Field(None, description="the day whose ratios apply, e.g. 2025-10-10 (default: the "
                                                   "scenario's date)")
    assumed: dict[str, Share] = Field(default_factory=dict, description=(
        "ratios for assets the table lacks, e.g. { USDE = 0.9 } (each is a warning, as an assumed margin table)"))

    @model_validator(mode="after")
    def _floor(self) -> "Collateral":
        if self.index == "redemption-floor" and self.floor is None:
            raise ValueError("index redemption-floor: expected a floor (the lowest index price, e.g. 0.97)")
        if self.index != "redemption-floor" and self.floor is not None:
            raise ValueError(f"floor: used by index redemption-floor only (index is {self.index!r})")
        return self


def _code(enum, name: str) -> int:
    return int(enum[name.upper().replace("-", "_")])


class VenueDesign(Component):
    """One venue design.

    Attributes
    ----------
    name : str
        Label in result tables.
    preset : str
        The preset it was built from, if any.
    margin, mark, liquidation, fund, backstop, adl, funding, collateral
        The components.
    margin_mode : {"as-held", "cross", "isolated"}
        How a portfolio's positions are margined before the run
        (:meth:`riskengine.portfolio.Portfolio.in_margin_mode`): the population's own modes, or every
        position cross, or every position isolated. Both venues let a user choose per position:
        Binance "Cross Margin Mode" / "Isolated Margin Mode" [DOC S2, S12] (reference §1.2:
        isolated: ``TMM1 = UPNL1 = 0``, ``WB`` = the position's isolated margin), Hyperliquid
        "cross = shared collateral; isolated = per-asset collateral" [DOC S29] (reference §2.1).
        Which mode users pick is not published, so the engines take it from the population and this
        setting makes the all-cross and all-isolated books of the same positions comparable.
    notes : str
        Sources, snapshot dates and known gaps.
    """

    name: str = Field(min_length=1, description="label in result tables; unique within a config")
    preset: str = Field("", description="the preset it was built from, if any")
    margin: Margin = Field(Margin(), description="maintenance margin tiers")
    mark: Mark = Field(Mark(), description="the mark price")
    liquidation: Liquidation = Field(Liquidation(), description="the liquidation order")
    fund: Fund = Field(Fund(), description="the insurance fund")
    backstop: Backstop = Field(Backstop(), description="the backstop (liquidator) vault")
    adl: Adl = Field(Adl(), description="auto-deleveraging")
    funding: Funding = Field(Funding(), description="funding payments")
    collateral: Collateral = Field(Collateral(), description="how collateral assets are valued (scenarios with "
                                                             "collateral only)")
    margin_mode: Literal[MARGIN_MODES] = Field(
        "as-held", description="how a portfolio's positions are margined: as-held: each position's own mode (the "
                               "population's); cross: every position of a user in the user's cross account, "
                               "isolated margins added to its wallet; isolated: every cross position isolated, the "
                               "user's wallet split among them in proportion to entry notional (a user with no "
                               "cross position keeps its wallet as a flat cross account); see "
                               "riskengine.portfolio.Portfolio.in_margin_mode. A single-instrument scenario's "
                               "accounts hold one position each, so the three give the same run")
    notes: str = Field("", description="sources, snapshot dates and known gaps")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "venue design") -> "VenueDesign":
        """Validate a mapping (e.g. a config table) into a design.

        Raises
        ------
        ValueError
            One line with the key path and what was expected.
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ValueError(format_validation_error(exc, cls, f"{where}: ")) from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> "VenueDesign":
        """A copy with components changed: nested mappings are merged key by key.

        Raises
        ------
        ValueError
            Unknown keys (with the nearest valid one), wrong types, impossible values.
        """
        base = self.model_dump()
        margin = overrides.get("margin")
        if isinstance(margin, Mapping) and {"floors", "rates", "form"} & set(margin):
            # another table: the preset's label and caveat no longer describe it
            base["margin"] = {k: v for k, v in base["margin"].items() if k not in ("label", "caveat")}
        merged = _merge(base, dict(overrides))
        return VenueDesign.from_dict(merged, where=f"venue design {merged.get('name', self.name)!r}")

    def ledgers(self, symbols: tuple[str, ...]) -> tuple[list[int], list[int]]:
        """The fund and the vault (ledger indices) of each instrument of a scenario holding
        ``symbols`` (:func:`ledger_groups` of ``fund.shared`` and ``backstop.shared``).

        Raises
        ------
        ValueError
            ``venue design 'name': fund.shared: ...`` naming a symbol the scenario does not hold.
        """
        where = f"venue design {self.name!r}"
        return (ledger_groups(self.fund.shared, symbols, f"{where}: fund.shared"),
                ledger_groups(self.backstop.shared, symbols, f"{where}: backstop.shared"))

    def engine_params(self, liquidity: ConstantDepth | DepthCurve | None = None,
                      series_interval_s: float = 1.0, fund_group: int = 0, vault_group: int = 0) -> EngineParams:
        """Resolve this design and a liquidity model into :class:`EngineParams` (``fund_group``,
        ``vault_group``: the instrument's ledgers in a portfolio run, :meth:`ledgers`)."""
        liquidity = liquidity or ConstantDepth()
        m, liq, fund, bs, adl = self.mark, self.liquidation, self.fund, self.backstop, self.adl
        partial = liq.partial
        try:
            return EngineParams(
                mm_floors=self.margin.floors,
                mm_rates=self.margin.rates,
                mm_whole_position=self.margin.form == "whole-position",
                mark_method=_code(MarkMethod, m.method),
                mark_ema_tau_ns=m.ema_s * NS,
                mark_ema2_tau_ns=m.ema2_s * NS,
                liq_fee_rate=liq.fee,
                liq_limit_bankruptcy=liq.limit == "bankruptcy",
                liq_surplus_to_fund=liq.surplus_to_fund,
                liq_price_band=math.inf if liq.price_band is None else liq.price_band,
                liq_max_order_notional=math.inf if liq.max_order is None else liq.max_order,
                partial_mode=PartialMode.TIER_STEP if partial == "tier-step" else PartialMode.FRACTION,
                partial_fraction=liq.partial_fraction if partial == "fraction" else 1.0,
                partial_threshold=liq.partial_threshold,
                partial_cooldown_ns=round(liq.cooldown_s * NS),
                max_liqs_per_step=liq.max_per_step,
                latency_ns=round(liq.latency_s * NS),
                cross_order=_code(CrossOrder, liq.cross_order),
                funding_price=_code(FundingPrice, self.funding.price),
                takeover=Takeover.FUND if fund.takeover else Takeover.NONE,
                fund_initial=fund.initial,
                fund_capacity=math.inf if fund.capacity is None else fund.capacity,
                fund_unwind_interval_ns=round(fund.unwind_interval_s * NS),
                fund_unwind_fraction=fund.unwind_fraction,
                backstop_ratio=bs.ratio,
                vault_initial=bs.vault_balance,
                vault_unwind_interval_ns=round(bs.unwind_interval_s * NS),
                vault_unwind_fraction=bs.unwind_fraction,
                vault_loss_limit=bs.loss_threshold,
                adl_policy=_code(AdlPolicy, adl.policy),
                adl_ranking=_code(AdlRanking, adl.ranking),
                adl_price=_code(AdlPrice, adl.price),
                adl_on_negative_equity=adl.on_negative_equity,
                adl_short_mark_over_entry=adl.short_mark_over_entry,
                adl_rank_interval_ns=round(adl.rank_interval_s * NS),
                adl_risk_power=adl.risk_power,
                adl_fund_drawdown=math.inf if adl.fund_drawdown is None else adl.fund_drawdown,
                adl_fund_window_ns=round(adl.fund_window_s * NS),
                series_interval_ns=max(1, round(series_interval_s * NS)),
                fund_group=fund_group,
                vault_group=vault_group,
                **liquidity.engine_fields(),
            )
        except ValueError as exc:
            raise ValueError(f"venue design {self.name!r}: {exc}") from None


def _merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], dict(value))
        else:
            out[key] = value
    return out
