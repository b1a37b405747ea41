"""Resolved numeric parameters of one engine run.

:class:`EngineParams` is what both engines consume: every venue-design component, the
liquidity model and the run options reduced to numbers, checked once. Users build it through
:class:`riskengine.venue.VenueDesign` and a liquidity model (:mod:`riskengine.liquidity`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, CrossOrder, FundingPrice, MarkMethod, PartialMode, Takeover

NS = 1_000_000_000
#: the forms of a tier table: ``N x rate_k - cum_k`` (continuous) or ``N x rate_k`` (a step per
#: tier, the rate applied to the whole position); :class:`riskengine.venue.Margin`
MARGIN_FORMS = ("deduction", "whole-position")


def maintenance_deductions(floors: np.ndarray, rates: np.ndarray, whole: bool = False) -> np.ndarray:
    """Maintenance deductions (Binance ``cum``) that make a tiered schedule continuous.

    ``cum_0 = 0`` and ``cum_k = cum_{k-1} + floor_k * (rate_k - rate_{k-1})``
    (Binance "Leverage & Margin" example and Hyperliquid "Margin tiers"; reference §0). The
    whole-position form (``whole``: ``MM = N x rate_k``, :class:`riskengine.venue.Margin`) has none.

    Parameters
    ----------
    floors : ndarray of float64
        Lower notional bound of each tier, starting at 0, strictly increasing.
    rates : ndarray of float64
        Maintenance margin rate of each tier.
    whole : bool
        The whole-position form: all deductions 0.

    Returns
    -------
    ndarray of float64
        The deduction of each tier.
    """
    cums = np.zeros(len(floors), dtype=np.float64)
    if whole:
        return cums
    for k in range(1, len(floors)):
        cums[k] = cums[k - 1] + floors[k] * (rates[k] - rates[k - 1])
    return cums


def check_tiers(floors: np.ndarray, rates: np.ndarray, where: str = "margin tiers",
                floors_name: str = "mm_floors", rates_name: str = "mm_rates") -> None:
    """Check a tier table: 1-D, equal non-zero lengths, first floor 0, floors finite and strictly
    increasing, rates in [0, 1) and not decreasing. Raises ``ValueError`` naming the entry."""
    f, r = floors_name, rates_name
    if floors.ndim != 1 or rates.ndim != 1 or len(floors) != len(rates) or len(floors) == 0:
        raise ValueError(f"{where}: {f} and {r} must be 1-D and of equal non-zero length "
                         f"(got shapes {floors.shape} and {rates.shape})")
    if floors[0] != 0.0:
        raise ValueError(f"{where}: {f}[0] must be 0 (got {floors[0]!r})")
    for k in range(len(floors)):
        if not math.isfinite(floors[k]):
            raise ValueError(f"{where}: {f}[{k}] must be finite (got {floors[k]!r})")
        if not (0.0 <= rates[k] < 1.0):
            raise ValueError(f"{where}: {r}[{k}] must be in [0, 1) (got {rates[k]!r})")
        if k > 0 and floors[k] <= floors[k - 1]:
            raise ValueError(f"{where}: {f} must be strictly increasing "
                             f"({f}[{k}]={floors[k]!r} <= {f}[{k - 1}]={floors[k - 1]!r})")
        if k > 0 and rates[k] < rates[k - 1]:
            raise ValueError(f"{where}: {r} must not decrease "
                             f"({r}[{k}]={rates[k]!r} < {r}[{k - 1}]={rates[k - 1]!r})")


def _iso(ns: int) -> str:
    """A time in ns since epoch as ISO UTC text (``2025-10-10T21:15:00Z``)."""
    stamp = np.datetime64(int(ns), "ns").astype("datetime64[s]" if ns % NS == 0 else "datetime64[ns]")
    return f"{stamp}Z"


def check_depth_curve(ts: np.ndarray, pct: np.ndarray, notional: np.ndarray, where: str = "depth curve") -> None:
    """Check depth snapshots: ``ts`` of shape (S,) non-decreasing, ``pct`` and ``notional`` of shape
    (S, 2, K) (``[:, 0]`` bids, ``[:, 1]`` asks; K >= 1), distances in % finite, > 0 and strictly
    increasing, cumulative notional finite, >= 0 and not shrinking as the distance widens (equal
    neighbouring bands are allowed). Raises ``ValueError`` naming the snapshot, side and bands,
    e.g. ``depth snapshot at 2025-10-10T21:15:00Z: bid notional shrinks from 3.1e+08 at 2% to
    2.9e+08 at 3%``."""
    if ts.ndim != 1 or len(ts) == 0 or pct.ndim != 3 or pct.shape != notional.shape or pct.shape[0] != len(ts) \
            or pct.shape[1] != 2 or pct.shape[2] == 0:
        raise ValueError(f"{where}: expected S snapshot times and (S, 2, K) distances and notionals, K >= 1 "
                         f"(got shapes {ts.shape}, {pct.shape}, {notional.shape})")
    steps = np.diff(ts)
    if (steps < 0).any():
        i = int(np.flatnonzero(steps < 0)[0])
        raise ValueError(f"{where}: snapshot times must not decrease ({_iso(ts[i + 1])} after {_iso(ts[i])})")
    sides = ("bid", "ask")

    def fail(s: int, h: int, what: str) -> None:
        raise ValueError(f"depth snapshot at {_iso(ts[s])}: {sides[h]} {what}")

    for arr, name in ((pct, "distance"), (notional, "notional")):
        bad = ~np.isfinite(arr) | (arr <= 0 if name == "distance" else arr < 0)
        if bad.any():
            s, h, k = (int(x) for x in np.argwhere(bad)[0])
            expected = "a finite distance > 0 %" if name == "distance" else "a finite notional >= 0"
            fail(s, h, f"band {k}: expected {expected} (got {float(arr[s, h, k])!r})")
    narrower = np.diff(pct, axis=2) <= 0
    if narrower.any():
        s, h, k = (int(x) for x in np.argwhere(narrower)[0])
        fail(s, h, f"distances must increase strictly ({pct[s, h, k + 1]:g}% after {pct[s, h, k]:g}%)")
    shrinks = np.diff(notional, axis=2) < 0
    if shrinks.any():
        s, h, k = (int(x) for x in np.argwhere(shrinks)[0])
        fail(s, h, f"notional shrinks from {notional[s, h, k]:.4g} at {pct[s, h, k]:g}% to "
                   f"{notional[s, h, k + 1]:.4g} at {pct[s, h, k + 1]:g}%")


def check_observed_flow(ts: np.ndarray, side: np.ndarray, notional: np.ndarray,
                        where: str = "observed flow") -> None:
    """Check observed liquidation flow: equal lengths, times non-decreasing, side +1 (buy) or -1
    (sell), notional finite and >= 0. Raises ``ValueError`` naming the first bad row."""
    if not len(ts) == len(side) == len(notional):
        raise ValueError(f"{where}: ts, side and notional must have equal lengths "
                         f"(got {len(ts)}, {len(side)}, {len(notional)})")
    steps = np.diff(ts)
    if (steps < 0).any():
        i = int(np.flatnonzero(steps < 0)[0]) + 1
        raise ValueError(f"{where}: row {i}: times must not decrease ({_iso(ts[i])} after {_iso(ts[i - 1])})")
    bad = (side != 1.0) & (side != -1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: row {i}: side must be +1 (buy) or -1 (sell) (got {float(side[i])!r})")
    bad = ~np.isfinite(notional) | (notional < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: row {i}: expected a finite notional >= 0 (got {float(notional[i])!r})")


def _need(name: str, value: float, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected} (got {value!r})")


@dataclass(frozen=True)
class EngineParams:
    """Every number one engine run needs. Times are nanoseconds, money is quote currency.

    Attributes mirror the C struct ``Params`` in ``cext/riskengine/_engine.pxd`` and the
    instrument's struct ``Inst`` beside it (its tiers, ADL, mark and book structs, price band and
    order cap; ``tests/test_engine_struct.py`` checks them field by field).

    The book is either the constant ``depth_per_pct`` (the one-knot curve at 1%) or a depth
    curve: ``depth_ts`` (S,) snapshot times, ``depth_pct`` and ``depth_notional`` (S, 2, K)
    distances in % and cumulative quote notional, ``[:, 0]`` bids and ``[:, 1]`` asks (checked by
    :func:`check_depth_curve`). Both engines read the derived ``book_*`` arrays (distances as
    fractions, flattened). ``impact_stress_k`` thins depth by recent flow; ``observed_*`` (time
    ns, side +1/-1, quote notional) is observed liquidation flow taken out of the tape
    (counterfactual replay). See :mod:`riskengine.liquidity`. ``mm_whole_position``: the tiers
    apply the tier's rate to the whole position (``mm_cums`` all 0; :class:`riskengine.venue.Margin`).
    ``cross_order`` (a :class:`riskengine.codes.CrossOrder`): which position of a crossing cross
    margin account with several positions is liquidated first (portfolios only).
    ``funding_price`` (a :class:`riskengine.codes.FundingPrice`): the price a funding payment
    values a position at (runs with funding payments only).
    ``collateral``: the instrument is a collateral asset (issue 13): its positions are holdings
    valued at its price (the design's index of the asset times its collateral ratio), with no
    maintenance margin (``mm_rates`` 0), marked at that price, sold at market only when their
    account holds no other position (``riskengine.reference``, "Collateral").
    ``fund_group`` and ``vault_group``: the insurance fund and the backstop vault (ledger indices
    ``0..G-1``) this instrument's deficits draw on in a portfolio run
    (:func:`riskengine.engine_inputs.ledger_groups`; 0 in a single-instrument run).
    """

    mm_floors: np.ndarray
    mm_rates: np.ndarray
    mm_whole_position: bool = False
    mark_method: int = MarkMethod.LAST
    mark_ema_tau_ns: float = 150.0 * NS
    mark_ema2_tau_ns: float = 30.0 * NS
    liq_fee_rate: float = 0.0
    liq_limit_bankruptcy: bool = False
    liq_surplus_to_fund: bool = False
    liq_price_band: float = math.inf
    liq_max_order_notional: float = math.inf
    partial_mode: int = PartialMode.FRACTION
    partial_fraction: float = 1.0
    partial_threshold: float = math.inf
    partial_cooldown_ns: int = 0
    max_liqs_per_step: int = 0
    latency_ns: int = 0
    cross_order: int = CrossOrder.NOTIONAL
    funding_price: int = FundingPrice.MARK
    collateral: bool = False
    takeover: int = Takeover.NONE
    fund_initial: float = 0.0
    fund_capacity: float = math.inf
    fund_unwind_interval_ns: int = 10 * NS
    fund_unwind_fraction: float = 0.25
    adl_fund_drawdown: float = math.inf
    adl_fund_window_ns: int = 8 * 3600 * NS
    backstop_ratio: float = 0.0
    vault_initial: float = 0.0
    vault_unwind_interval_ns: int = 10 * NS
    vault_unwind_fraction: float = 0.25
    vault_loss_limit: float = math.inf
    adl_policy: int = AdlPolicy.QUEUE
    adl_ranking: int = AdlRanking.PNL_LEVERAGE
    adl_price: int = AdlPrice.BANKRUPTCY
    adl_on_negative_equity: bool = False
    adl_short_mark_over_entry: bool = False
    adl_rank_interval_ns: int = NS
    adl_risk_power: float = 1.0
    depth_per_pct: float = math.inf
    depth_ts: np.ndarray | None = None
    depth_pct: np.ndarray | None = None
    depth_notional: np.ndarray | None = None
    max_move: float = 0.5
    impact_half_life_ns: float = 30.0 * NS
    impact_feedback: float = 1.0
    impact_stress_k: float = 0.0
    observed_ts: np.ndarray | None = None
    observed_side: np.ndarray | None = None
    observed_notional: np.ndarray | None = None
    series_interval_ns: int = NS
    fund_group: int = 0
    vault_group: int = 0
    mm_cums: np.ndarray = field(init=False)
    book_ts: np.ndarray = field(init=False, repr=False)
    book_delta: np.ndarray = field(init=False, repr=False)
    book_notional: np.ndarray = field(init=False, repr=False)
    book_knots: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        floors = np.array(self.mm_floors, dtype=np.float64)
        rates = np.array(self.mm_rates, dtype=np.float64)
        check_tiers(floors, rates)
        floors.setflags(write=False)
        rates.setflags(write=False)
        cums = maintenance_deductions(floors, rates, self.mm_whole_position)
        cums.setflags(write=False)
        object.__setattr__(self, "mm_floors", floors)
        object.__setattr__(self, "mm_rates", rates)
        object.__setattr__(self, "mm_cums", cums)
        _need("mark_method", self.mark_method, self.mark_method in set(MarkMethod), "one of " + ", ".join(m.name for m in MarkMethod))
        _need("mark_ema_tau_ns", self.mark_ema_tau_ns, self.mark_ema_tau_ns > 0, "a positive time constant")
        _need("mark_ema2_tau_ns", self.mark_ema2_tau_ns, self.mark_ema2_tau_ns > 0, "a positive time constant")
        _need("liq_fee_rate", self.liq_fee_rate, 0.0 <= self.liq_fee_rate < 1.0, "a rate in [0, 1)")
        _need("liq_price_band", self.liq_price_band, self.liq_price_band > 0, "a band > 0 (inf = none)")
        _need("liq_max_order_notional", self.liq_max_order_notional, self.liq_max_order_notional > 0,
              "a notional > 0 (inf = none)")
        _need("partial_mode", self.partial_mode, self.partial_mode in set(PartialMode), "one of " + ", ".join(m.name for m in PartialMode))
        _need("takeover", self.takeover, self.takeover in set(Takeover), "one of " + ", ".join(m.name for m in Takeover))
        _need("fund_capacity", self.fund_capacity, self.fund_capacity >= 0, "a multiple of the fund >= 0 (inf = unlimited)")
        _need("fund_unwind_interval_ns", self.fund_unwind_interval_ns, self.fund_unwind_interval_ns > 0, "a positive duration")
        _need("fund_unwind_fraction", self.fund_unwind_fraction, 0.0 < self.fund_unwind_fraction <= 1.0, "a fraction in (0, 1]")
        _need("adl_fund_drawdown", self.adl_fund_drawdown, self.adl_fund_drawdown > 0, "a drawdown fraction > 0 (inf = never)")
        _need("adl_fund_window_ns", self.adl_fund_window_ns, self.adl_fund_window_ns > 0, "a positive window")
        _need("adl_risk_power", self.adl_risk_power, math.isfinite(self.adl_risk_power) and self.adl_risk_power >= 0, "a finite power >= 0")
        _need("partial_fraction", self.partial_fraction, 0.0 < self.partial_fraction <= 1.0, "a fraction in (0, 1]")
        _need("partial_threshold", self.partial_threshold, self.partial_threshold >= 0, "a notional >= 0")
        _need("partial_cooldown_ns", self.partial_cooldown_ns, self.partial_cooldown_ns >= 0, "a duration >= 0")
        _need("max_liqs_per_step", self.max_liqs_per_step,
              float(self.max_liqs_per_step).is_integer() and self.max_liqs_per_step >= 0,
              "a whole count >= 0 (0 = unlimited)")
        _need("latency_ns", self.latency_ns, self.latency_ns >= 0, "a duration >= 0")
        _need("cross_order", self.cross_order, self.cross_order in set(CrossOrder), "one of " + ", ".join(m.name for m in CrossOrder))
        _need("funding_price", self.funding_price, self.funding_price in set(FundingPrice),
              "one of " + ", ".join(m.name for m in FundingPrice))
        _need("collateral", self.collateral, not self.collateral or not np.any(np.asarray(self.mm_rates)),
              "a collateral asset has no maintenance margin (mm_rates all 0)")
        _need("fund_initial", self.fund_initial, math.isfinite(self.fund_initial) and self.fund_initial >= 0, "a finite balance >= 0")
        _need("backstop_ratio", self.backstop_ratio, 0.0 <= self.backstop_ratio <= 1.0, "a ratio of maintenance margin in [0, 1] (0 = no backstop)")
        _need("vault_initial", self.vault_initial, math.isfinite(self.vault_initial) and self.vault_initial >= 0, "a finite balance >= 0")
        _need("vault_unwind_interval_ns", self.vault_unwind_interval_ns, self.vault_unwind_interval_ns > 0, "a positive duration")
        _need("vault_unwind_fraction", self.vault_unwind_fraction, 0.0 < self.vault_unwind_fraction <= 1.0, "a fraction in (0, 1]")
        _need("vault_loss_limit", self.vault_loss_limit, self.vault_loss_limit >= 0, "a loss >= 0 (inf = never)")
        _need("adl_policy", self.adl_policy, self.adl_policy in set(AdlPolicy), "one of " + ", ".join(m.name for m in AdlPolicy))
        _need("adl_ranking", self.adl_ranking, self.adl_ranking in set(AdlRanking), "one of " + ", ".join(m.name for m in AdlRanking))
        _need("adl_price", self.adl_price, self.adl_price in set(AdlPrice), "one of " + ", ".join(m.name for m in AdlPrice))
        _need("adl_rank_interval_ns", self.adl_rank_interval_ns, self.adl_rank_interval_ns >= 0, "a duration >= 0 (0 = re-rank before every ADL order)")
        _need("depth_per_pct", self.depth_per_pct, self.depth_per_pct > 0, "a depth > 0 (inf = no slippage)")
        _need("max_move", self.max_move, 0.0 < self.max_move < 1.0, "a fraction in (0, 1)")
        _need("impact_half_life_ns", self.impact_half_life_ns, self.impact_half_life_ns > 0, "a positive half-life")
        _need("impact_feedback", self.impact_feedback, 0.0 <= self.impact_feedback <= 1.0, "a fraction in [0, 1]")
        _need("impact_stress_k", self.impact_stress_k,
              math.isfinite(self.impact_stress_k) and self.impact_stress_k >= 0, "a finite factor >= 0 (0 = no thinning)")
        self._resolve_book()
        _need("series_interval_ns", self.series_interval_ns, self.series_interval_ns > 0, "a positive interval")
        for name in ("fund_group", "vault_group"):
            value = getattr(self, name)
            _need(name, value, isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0,
                  "a ledger index >= 0")
            object.__setattr__(self, name, int(value))

    def _resolve_book(self) -> None:
        """The depth book both engines read: snapshot times and flattened knots (distances as
        fractions of the price), from the depth curve or the constant ``depth_per_pct`` (the
        one-knot curve at 1%); and the observed flow arrays (empty when none)."""
        given = [self.depth_ts is not None, self.depth_pct is not None, self.depth_notional is not None]
        if any(given) and not all(given):
            raise ValueError("depth_ts, depth_pct, depth_notional: give all three or none")
        if all(given):
            if self.depth_per_pct != math.inf:
                raise ValueError(f"depth_per_pct: give a constant depth or a depth curve, not both "
                                 f"(got depth_per_pct={self.depth_per_pct!r} and a curve)")
            ts = np.array(self.depth_ts, dtype=np.int64).reshape(-1)
            pct = np.array(self.depth_pct, dtype=np.float64)
            notional = np.array(self.depth_notional, dtype=np.float64)
            check_depth_curve(ts, pct, notional)
        else:
            ts = np.zeros(1, dtype=np.int64)
            pct = np.ones((1, 2, 1), dtype=np.float64)
            notional = np.full((1, 2, 1), float(self.depth_per_pct), dtype=np.float64)
        delta = np.ascontiguousarray(pct / 100.0).reshape(-1)
        flat = np.ascontiguousarray(notional).reshape(-1)
        for value in (ts, pct, notional, delta, flat):
            value.setflags(write=False)
        if all(given):
            object.__setattr__(self, "depth_ts", ts)
            object.__setattr__(self, "depth_pct", pct)
            object.__setattr__(self, "depth_notional", notional)
        object.__setattr__(self, "book_ts", ts)
        object.__setattr__(self, "book_delta", delta)
        object.__setattr__(self, "book_notional", flat)
        object.__setattr__(self, "book_knots", int(pct.shape[2]))
        obs = [self.observed_ts, self.observed_side, self.observed_notional]
        if any(x is not None for x in obs) and any(x is None for x in obs):
            raise ValueError("observed_ts, observed_side, observed_notional: give all three or none")
        o_ts = np.array(self.observed_ts if self.observed_ts is not None else [], dtype=np.int64).reshape(-1)
        o_side = np.array(self.observed_side if self.observed_side is not None else [], dtype=np.float64).reshape(-1)
        o_not = np.array(self.observed_notional if self.observed_notional is not None else [],
                         dtype=np.float64).reshape(-1)
        check_observed_flow(o_ts, o_side, o_not)
        for name, value in (("observed_ts", o_ts), ("observed_side", o_side), ("observed_notional", o_not)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def maintenance_margin(self, notional: float) -> float:
        """Maintenance margin of one position of ``notional`` (see :func:`maintenance_margin`)."""
        return maintenance_margin(notional, self.mm_floors, self.mm_rates, self.mm_cums)


def maintenance_margin(notional: float, floors: np.ndarray, rates: np.ndarray, cums: np.ndarray) -> float:
    """Tiered maintenance margin ``MM(N) = N * rate_k - cum_k`` for the tier ``k`` holding ``N``.

    The plain-Python twin of ``riskengine._margin.maintenance_margin``; both pick the last tier
    whose floor is <= ``N`` (Binance USD-M brackets, Hyperliquid margin tiers; reference §0, §1.1).
    """
    k = 0
    while k + 1 < len(floors) and floors[k + 1] <= notional:
        k += 1
    return notional * float(rates[k]) - float(cums[k])
