"""Venue calculators: maintenance margin, bankruptcy and liquidation prices, mark prices.

A typed, validated public API over the Cython kernels the engine uses
(``cext/riskengine/_margin.pyx`` and ``cext/riskengine/_calc.pyx``): every function here checks
its inputs, raising :class:`ValueError` that names the offending argument, then calls exactly one
kernel. Formulas and worked examples are those of ``../shared/reference/venue-mechanisms.md``
("the reference"); source keys ``S#`` are that file's §8.

Conventions
-----------
* Sizes are signed base-currency amounts (``+`` long, ``-`` short); money is quote currency.
* A tier table (``tiers`` / ``brackets``) is ``(floors, rates)``: the lower notional bound of
  each tier (first 0, strictly increasing) and its maintenance margin rate (in ``[0, 1)``, not
  decreasing). The deductions (Binance ``cum``) follow from the continuity recursion
  ``cum_k = cum_{k-1} + floor_k (rate_k - rate_{k-1})`` (reference §0). An object with
  ``mm_floors`` / ``mm_rates`` attributes (:class:`riskengine.EngineParams`) is accepted too,
  and one with ``floors`` / ``rates`` / ``form`` (a stored table,
  ``riskengine.venues._tables.MarginTable``, or a design's :class:`riskengine.venue.Margin`);
  such an object's own form applies unless ``form`` is given.
* A liquidation price of ``-inf`` means no positive price liquidates the account (e.g. a long
  whose margin covers its whole notional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, TypeAlias

import numpy as np

from riskengine import _calc, _margin
from riskengine.params import MARGIN_FORMS, check_tiers

__all__ = [
    "HYPERLIQUID_PERP_WEIGHTS",
    "TierTable",
    "backstop_price",
    "bankruptcy_price",
    "binance_coinm_mark",
    "binance_liquidation_price",
    "CrossMargin",
    "cross_account_margin",
    "dydx_isolated_liquidation_price",
    "hyperliquid_liquidation_price",
    "hyperliquid_mark",
    "hyperliquid_tiers",
    "liquidation_price",
    "maintenance_margin",
    "median3",
    "portfolio_liquidation_price",
    "weighted_median",
]

TierTable: TypeAlias = "tuple[Sequence[float], Sequence[float]] | Any"
"""``(floors, rates)``, or an object with ``mm_floors`` and ``mm_rates`` attributes."""

#: Weights of the external perp mids in Hyperliquid's mark price (reference §2.3, [DOC S34]).
HYPERLIQUID_PERP_WEIGHTS: Mapping[str, float] = {
    "binance": 3.0,
    "okx": 2.0,
    "bybit": 2.0,
    "gate": 1.0,
    "mexc": 1.0,
}

_BINANCE_LEGS = ("BOTH", "LONG", "SHORT")


# --- validation -------------------------------------------------------------------------------


def _number(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number (got {value!r})") from None
    return x


def _finite(name: str, value: Any) -> float:
    x = _number(name, value)
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number (got {value!r})")
    return x


def _positive(name: str, value: Any) -> float:
    x = _finite(name, value)
    if not x > 0.0:
        raise ValueError(f"{name}: expected a finite number > 0 (got {value!r})")
    return x


def _non_negative(name: str, value: Any) -> float:
    x = _finite(name, value)
    if not x >= 0.0:
        raise ValueError(f"{name}: expected a finite number >= 0 (got {value!r})")
    return x


def _size(name: str, value: Any) -> float:
    x = _finite(name, value)
    if x == 0.0:
        raise ValueError(f"{name}: expected a non-zero signed position size (got {value!r})")
    return x


def _optional_price(name: str, value: Any) -> float:
    """A price that may be missing (None or NaN -> NaN); otherwise finite and > 0."""
    if value is None:
        return math.nan
    x = _number(name, value)
    if math.isnan(x):
        return x
    if not (math.isfinite(x) and x > 0.0):
        raise ValueError(f"{name}: expected a finite price > 0, or None/NaN if missing (got {value!r})")
    return x


def _tiers(name: str, tiers: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(tiers, "mm_floors") and hasattr(tiers, "mm_rates"):
        floors, rates = tiers.mm_floors, tiers.mm_rates
    elif hasattr(tiers, "floors") and hasattr(tiers, "rates"):  # a stored MarginTable, a design's Margin
        floors, rates = tiers.floors, tiers.rates
    else:
        try:
            floors, rates = tiers
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected a tier table (floors, rates) (got {tiers!r})") from None
    try:
        f = np.array(floors, dtype=np.float64)
        r = np.array(rates, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: floors and rates must be numeric sequences") from None
    check_tiers(f, r, name, "floors", "rates")
    return f, r


def _deduction_tiers(name: str, tiers: Any) -> tuple[np.ndarray, np.ndarray]:
    """A table for a venue formula written for the deduction form (Binance, Hyperliquid): a
    whole-position table (its own form) is refused rather than read as deductions."""
    f, r = _tiers(name, tiers)
    if _form(None, tiers, name):
        raise ValueError(f"{name}: this formula uses the deduction form (MM = N x rate - cum); "
                         "got a whole-position table (use liquidation_price with form='whole-position')")
    return f, r


def _mode(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))} (got {value!r})")
    return value.lower()


# --- margin -------------------------------------------------------------------------------


def _form(form: Any, tiers: Any, name: str = "tiers") -> bool:
    """Whether the table is in the whole-position form: ``form``, else the table's own (an
    EngineParams' ``mm_whole_position``, a MarginTable's or Margin's ``form``), else deduction."""
    if form is None:
        if hasattr(tiers, "mm_whole_position"):
            return bool(tiers.mm_whole_position)
        own = getattr(tiers, "form", None)
        return own is not None and _mode(f"{name} form", own, MARGIN_FORMS) == "whole-position"
    return _mode("form", form, MARGIN_FORMS) == "whole-position"


def maintenance_margin(notional: float, tiers: TierTable, *, form: str | None = None) -> float:
    """Tiered maintenance margin of one position: ``MM(N) = N * rate_k - cum_k`` (the
    ``deduction`` form) or ``N * rate_k`` (``whole-position``).

    ``k`` is the tier holding ``N`` (the last tier whose floor is <= ``N``). Binance USD-M
    brackets ("Leverage & Margin", [DOC S1, S2]) and Hyperliquid margin tiers ([DOC S20]) use the
    deduction form; reference §0, §1.1, §2.1, examples E7 and E13. In the whole-position form
    the tier's rate applies to the whole position (:class:`riskengine.venue.Margin`).

    Parameters
    ----------
    notional : float
        Position notional ``|q| x mark``, >= 0.
    tiers : TierTable
        ``(floors, rates)``.
    form : {"deduction", "whole-position"}, optional
        Default: deduction (an EngineParams' own form).

    Returns
    -------
    float

    Examples
    --------
    >>> maintenance_margin(264_000, ([0, 50e3, 250e3, 1e6], [0.004, 0.005, 0.01, 0.025]))  # E7
    1340.0
    >>> maintenance_margin(264_000, ([0, 50e3, 250e3, 1e6], [0.004, 0.005, 0.01, 0.025]), form="whole-position")
    2640.0
    """
    n = _non_negative("notional", notional)
    f, r = _tiers("tiers", tiers)
    return _margin.py_maintenance_margin(n, f, r, _form(form, tiers))


def bankruptcy_price(collateral: float, size: float, entry: float) -> float:
    """Price at which the equity ``collateral + size (P - entry)`` is zero.

    ``P_bk = entry - collateral / size`` (reference §0, without fees or funding). Binance and
    Bybit/BitMEX close ADL counterparties at the liquidated position's bankruptcy price; dYdX v4
    deleverages at it ("Contract loss mechanisms", [DOC S48]; reference §3, E8, E18).

    Parameters
    ----------
    collateral : float
        Margin backing the position: isolated margin, or cross wallet balance plus the uPnL of
        the account's other positions.
    size : float
        Signed position size, non-zero.
    entry : float
        Entry price, > 0.

    Returns
    -------
    float

    Examples
    --------
    >>> bankruptcy_price(100, -500, 1.0)  # E18: B short 500 @ $1 with $100
    1.2
    """
    col = _finite("collateral", collateral)
    q = _size("size", size)
    ep = _positive("entry", entry)
    return _margin.py_bankruptcy_price(col, q, ep)


def liquidation_price(
    collateral: float,
    size: float,
    entry: float,
    tiers: TierTable,
    *,
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
    ratio: float = 1.0,
    form: str | None = None,
) -> float:
    """Liquidation price of a single position under a tiered maintenance margin.

    The root of ``E(P) = ratio x MM_total(P)`` with ``E(P) = collateral + other_upnl +
    size (P - entry)`` and ``MM_total(P) = other_maintenance + MM(|size| P)``, the tier of
    ``MM`` being the one holding the notional at the root (reference §0, §1.2, §2.2). This is
    the engine's own kernel (``_margin.liquidation_price``). Liquidation triggers when equity
    falls below maintenance margin at the mark price (Binance [DOC S3], Hyperliquid
    [DOC S21]).

    Parameters
    ----------
    collateral : float
        Isolated margin, or the cross wallet balance.
    size : float
        Signed position size, non-zero.
    entry : float
        Entry price, > 0.
    tiers : TierTable
        ``(floors, rates)``.
    other_maintenance : float
        Maintenance margin of the account's other (cross) positions, held fixed; 0 isolated.
    other_upnl : float
        Unrealized PnL of the account's other (cross) positions, held fixed; 0 isolated.
    ratio : float
        Share of maintenance margin the equity is compared with, in ``(0, 1]``: 1 is
        liquidation, 2/3 Hyperliquid's backstop.
    form : {"deduction", "whole-position"}, optional
        Default: deduction (an EngineParams' own form). In the whole-position form the
        schedule steps up at each floor, so a long can also be liquidated by a rise that lifts
        its notional into a tier of a higher rate: the price returned is then the highest that
        liquidates a long (the lowest for a short), the engine's trigger key.

    Returns
    -------
    float
        The price; ``-inf`` for a long that no positive price liquidates.

    Examples
    --------
    >>> round(liquidation_price(10_000, 2, 100_000, ([0, 300e3], [0.004, 0.005])), 2)  # E8(a)
    95381.53
    >>> round(liquidation_price(10_000, 2, 100_000, ([0, 300e3], [0.004, 0.005]), form="whole-position"), 2)
    95381.53
    """
    col = _finite("collateral", collateral)
    q = _size("size", size)
    ep = _positive("entry", entry)
    f, r = _tiers("tiers", tiers)
    omm = _non_negative("other_maintenance", other_maintenance)
    oup = _finite("other_upnl", other_upnl)
    rat = _finite("ratio", ratio)
    if not 0.0 < rat <= 1.0:
        raise ValueError(f"ratio: expected a share of maintenance margin in (0, 1] (got {ratio!r})")
    return _margin.py_liquidation_price(col + oup - rat * omm, q, ep, f, r, rat, _form(form, tiers))


# --- portfolio: one cross margin account holding several instruments ------------------------


class CrossMargin(NamedTuple):
    """A cross margin account at given marks (see :func:`cross_account_margin`)."""

    equity: float
    """``E = wallet + sum_i size_i (mark_i - entry_i)``."""
    maintenance: float
    """``MM = sum_i MM_i(|size_i| mark_i)``, each position on its own instrument's table."""
    slack: float
    """``E - MM``: the account is liquidated when it is < 0."""


class _Held(NamedTuple):
    symbol: str
    size: float
    entry: float
    where: str  # the row as the caller wrote it: positions[1] or positions['BTCUSDT']


def _cross_positions(positions: Any) -> list[_Held]:
    """The positions of one cross account: distinct symbols, finite sizes, entries > 0 where the
    size is not 0."""
    rows: list[tuple[str, Any, Any, Any]] = []
    if isinstance(positions, Mapping):
        for symbol, value in positions.items():
            where = f"positions[{symbol!r}]"
            try:
                size, entry = value
            except (TypeError, ValueError):
                raise ValueError(f"{where}: expected (size, entry) (got {value!r})") from None
            rows.append((where, symbol, size, entry))
    elif isinstance(positions, Sequence) and not isinstance(positions, (str, bytes)):
        for i, row in enumerate(positions):
            where = f"positions[{i}]"
            try:
                symbol, size, entry = row
            except (TypeError, ValueError):
                raise ValueError(f"{where}: expected a row (symbol, size, entry) (got {row!r})") from None
            rows.append((where, symbol, size, entry))
    else:
        raise ValueError(
            f"positions: expected rows (symbol, size, entry) or a mapping symbol -> (size, entry) (got {positions!r})"
        )
    held: list[_Held] = []
    first: dict[str, str] = {}
    for where, symbol, size, entry in rows:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"{where}: expected an instrument symbol, a non-empty string (got {symbol!r})")
        if symbol in first:
            raise ValueError(f"{where}: {symbol!r} is held twice ({first[symbol]} and {where}); "
                             "a cross account holds one position per instrument")
        first[symbol] = where
        q = _finite(f"{where} size", size)
        ep = _positive(f"{where} entry", entry) if q != 0.0 else _finite(f"{where} entry", entry)
        held.append(_Held(symbol, q, ep, where))
    return held


def _check_market(marks: Any, tables: Any, form: Any) -> None:
    if not isinstance(marks, Mapping):
        raise ValueError(f"marks: expected a mapping symbol -> mark price (got {marks!r})")
    if not isinstance(tables, Mapping):
        raise ValueError(f"tables: expected a mapping symbol -> tier table (got {tables!r})")
    if form is not None:
        _mode("form", form, MARGIN_FORMS)


def _mark(held: _Held, marks: Mapping[str, Any]) -> float:
    if held.symbol not in marks:
        raise ValueError(f"marks: no mark price for {held.symbol!r} ({held.where})")
    return _positive(f"marks[{held.symbol!r}]", marks[held.symbol])


def _table(held: _Held, tables: Mapping[str, Any], form: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    if held.symbol not in tables:
        raise ValueError(f"tables: no margin table for {held.symbol!r} ({held.where})")
    name = f"tables[{held.symbol!r}]"
    f, r = _tiers(name, tables[held.symbol])
    return f, r, _form(form, tables[held.symbol], name)


def _margin_and_upnl(held: _Held, marks: Mapping[str, Any], tables: Mapping[str, Any],
                     form: Any) -> tuple[float, float]:
    """Tiered maintenance margin (the engine's kernel) and unrealized PnL of one position at its
    mark, computed as the engine's trigger test does (``|q| mark``, ``q (mark - entry)``)."""
    mark = _mark(held, marks)
    f, r, whole = _table(held, tables, form)
    return _margin.py_maintenance_margin(abs(held.size) * mark, f, r, whole), held.size * (mark - held.entry)


def cross_account_margin(
    wallet: float,
    positions: Sequence[tuple[str, float, float]] | Mapping[str, tuple[float, float]],
    marks: Mapping[str, float],
    tables: Mapping[str, TierTable],
    *,
    form: str | None = None,
) -> CrossMargin:
    """Equity, maintenance margin and slack ``E - MM`` of a cross margin account at given marks.

    The definition of a cross account's margin that the engine's multi-position accounts follow
    (reference §0, §1.2, §2.2)::

        E  = wallet + sum_i size_i (mark_i - entry_i)
        MM = sum_i MM_i(|size_i| mark_i)

    each ``MM_i`` the tiered maintenance margin of instrument ``i``'s own table at its own mark
    (:func:`maintenance_margin`); the account is liquidated when ``E < MM`` (``slack < 0``).
    Binance: the cross margin balance is the wallet balance plus the uPnL of every cross
    position, and an account is liquidated when it falls below the sum of their maintenance
    margins — its liquidation-price formula holds the other contracts' ``TMM1`` and ``UPNL1``
    ([DOC S2, S12]). Hyperliquid: cross ``account_value`` against the maintenance margin of all
    cross positions, "Funding and other cross positions move it" ([DOC S21]).

    An isolated position is not part of the account: it is margined by its own allocated margin
    alone (a margin account of its own; its liquidation price is :func:`liquidation_price`).

    Parameters
    ----------
    wallet : float
        Cross wallet balance (quote currency), finite.
    positions : sequence of (symbol, size, entry), or mapping symbol -> (size, entry)
        The account's cross positions, one per instrument: signed size (0 allowed, ignored) and
        entry price (> 0 where the size is not 0).
    marks : mapping symbol -> float
        Mark price of every held instrument (> 0); other symbols are ignored.
    tables : mapping symbol -> TierTable
        Margin table of every held instrument: ``(floors, rates)``, an EngineParams, a stored
        ``MarginTable`` or a design's ``Margin``.
    form : {"deduction", "whole-position"}, optional
        For every table; default: each table's own form (deduction for a plain tuple).

    Returns
    -------
    CrossMargin
        ``(equity, maintenance, slack)``; the sums are taken in the order of ``positions``,
        starting from the wallet (another order can differ in the last bits).

    Examples
    --------
    >>> acct = cross_account_margin(20_000, [("BTC", 1, 100_000), ("ETH", 10, 4_000)],
    ...                             {"BTC": 100_000, "ETH": 4_000},
    ...                             {"BTC": ([0], [0.0125]), "ETH": ([0], [0.02])})
    >>> acct.equity, acct.maintenance, acct.slack
    (20000.0, 2050.0, 17950.0)
    """
    wb = _finite("wallet", wallet)
    held = _cross_positions(positions)
    _check_market(marks, tables, form)
    equity, maintenance = wb, 0.0
    for h in held:
        if h.size != 0.0:
            mm, upnl = _margin_and_upnl(h, marks, tables, form)
            equity += upnl
            maintenance += mm
    return CrossMargin(equity, maintenance, equity - maintenance)


def portfolio_liquidation_price(
    wallet: float,
    positions: Sequence[tuple[str, float, float]] | Mapping[str, tuple[float, float]],
    marks: Mapping[str, float],
    tables: Mapping[str, TierTable],
    instrument: str,
    *,
    ratio: float = 1.0,
    form: str | None = None,
) -> float:
    """Liquidation price of one instrument of a cross margin account, the others held at their marks.

    The price ``P`` of ``instrument`` at which the account's equity equals ``ratio`` x its
    maintenance margin (:func:`cross_account_margin`), every other position held at its mark::

        wallet + U_o + q (P - entry) = ratio (MM_o + MM(|q| P))

    with ``U_o = sum_{j != k} size_j (mark_j - entry_j)`` and ``MM_o = sum_{j != k}
    MM_j(|size_j| mark_j)`` (each on its own table). It generalises Binance's cross formula with
    ``TMM1`` and ``UPNL1`` ([DOC S2, S12]; reference §1.2) and Hyperliquid's cross
    ``margin_available`` ([DOC S21]; reference §2.2) to an account of several instruments,
    each with its own table, and is solved by the engine's own kernel
    (``_margin.liquidation_price``, through :func:`liquidation_price` with ``other_maintenance =
    MM_o`` and ``other_upnl = U_o``): the tier is the one holding the notional *at* ``P``.

    Isolated positions are not part of a cross account: an isolated position's loss is bounded
    by its own margin, so its liquidation price is :func:`liquidation_price` with that margin and
    nothing else. One-way positions only; Binance hedge-mode legs of one symbol:
    :func:`binance_liquidation_price`.

    Parameters
    ----------
    wallet : float
        Cross wallet balance, finite.
    positions : sequence of (symbol, size, entry), or mapping symbol -> (size, entry)
        The account's cross positions, one per instrument (see :func:`cross_account_margin`).
    marks : mapping symbol -> float
        Mark price of every other held instrument; ``instrument``'s own mark is not needed (the
        price does not depend on it) and is only checked if given.
    tables : mapping symbol -> TierTable
        Margin table of every held instrument.
    instrument : str
        The symbol whose liquidation price is wanted; held with a non-zero size.
    ratio : float
        Share of maintenance margin, in ``(0, 1]``: 1 liquidation, 2/3 Hyperliquid's backstop.
    form : {"deduction", "whole-position"}, optional
        For every table; default: each table's own form (see :func:`liquidation_price`).

    Returns
    -------
    float
        The price; ``-inf`` for a long that no positive price liquidates, a value <= 0 for a short
        that every positive price does.

    Examples
    --------
    >>> round(portfolio_liquidation_price(  # E1 as a two-position account
    ...     10.72, [("BTCUSDT", -0.005, 9_451.53), ("ETHUSDT", 1, 199.53)], {"ETHUSDT": 200},
    ...     {"BTCUSDT": ([0], [0.004]), "ETHUSDT": ([0], [0.0065])}, "BTCUSDT"), 2)
    11383.99
    """
    wb = _finite("wallet", wallet)
    held = _cross_positions(positions)
    _check_market(marks, tables, form)
    target = next((h for h in held if h.symbol == instrument), None)
    if target is None:
        symbols = ", ".join(h.symbol for h in held) or "none"
        raise ValueError(f"instrument: {instrument!r} is not held (positions: {symbols})")
    if target.size == 0.0:
        raise ValueError(f"instrument: the position in {instrument!r} is flat (size 0); nothing to liquidate")
    if target.symbol in marks:
        _mark(target, marks)
    other_mm = other_upnl = 0.0
    for h in held:
        if h is not target and h.size != 0.0:
            mm, upnl = _margin_and_upnl(h, marks, tables, form)
            other_mm += mm
            other_upnl += upnl
    f, r, whole = _table(target, tables, form)
    return liquidation_price(wb, target.size, target.entry, (f, r), other_maintenance=other_mm, other_upnl=other_upnl,
                             ratio=ratio, form=MARGIN_FORMS[1] if whole else MARGIN_FORMS[0])


# --- Binance ------------------------------------------------------------------------------


def _binance_positions(positions: Any) -> dict[str, tuple[float, float]]:
    if isinstance(positions, Mapping):
        items = list(positions.items())
    elif isinstance(positions, Sequence) and not isinstance(positions, str) and len(positions) == 2:
        items = [("BOTH", positions)]
    else:
        raise ValueError(
            "positions: expected (size, entry) for a one-way position or a mapping "
            f"{{'BOTH' | 'LONG' | 'SHORT': (size, entry)}} (got {positions!r})"
        )
    legs: dict[str, tuple[float, float]] = {}
    for key, value in items:
        leg = key.upper() if isinstance(key, str) else key
        if leg not in _BINANCE_LEGS:
            raise ValueError(f"positions: unknown position side {key!r} (expected BOTH, LONG or SHORT)")
        if leg in legs:
            raise ValueError(f"positions: position side {leg} given twice")
        try:
            size, entry = value
        except (TypeError, ValueError):
            raise ValueError(f"positions[{key!r}]: expected (size, entry) (got {value!r})") from None
        q = _finite(f"positions[{key!r}] size", size)
        if leg == "LONG" and q < 0.0:
            raise ValueError(f"positions[{key!r}] size: a LONG leg needs a size >= 0 (got {size!r})")
        if leg == "SHORT":
            q = abs(q)  # Binance reports SHORT legs with a negative positionAmt
        ep = _positive(f"positions[{key!r}] entry", entry) if q != 0.0 else 0.0
        legs[leg] = (q, ep)
    if "BOTH" in legs and legs["BOTH"][0] != 0.0 and any(legs.get(s, (0.0,))[0] != 0.0 for s in ("LONG", "SHORT")):
        raise ValueError("positions: a one-way (BOTH) position cannot be combined with hedge-mode LONG/SHORT legs")
    if all(q == 0.0 for q, _ in legs.values()):
        raise ValueError("positions: no open position (every size is 0)")
    return legs


def binance_liquidation_price(
    wallet_balance: float,
    positions: tuple[float, float] | Mapping[str, tuple[float, float]],
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
    *,
    brackets: TierTable,
    margin_type: Literal["cross", "isolated"] = "cross",
) -> float:
    """Binance USD-M liquidation price of one symbol, one-way or hedge mode, cross or isolated.

    Binance's formula (reference §1.2; "How to calculate liquidation price of USDⓈ-M futures"
    [DOC S12] variable table, full hedge-mode expression [DOC S2])::

        LP = (WB - TMM1 + UPNL1 + cumB + cumL + cumS
              - Side1BOTH Pos1BOTH EP1BOTH - Pos1LONG EP1LONG + Pos1SHORT EP1SHORT)
           / (Pos1BOTH MMR_B + Pos1LONG MMR_L + Pos1SHORT MMR_S
              - Side1BOTH Pos1BOTH - Pos1LONG + Pos1SHORT)

    i.e. the price where the account's equity equals its maintenance margin. Each leg's
    ``MMR``/``cum`` must be those of the bracket holding that leg's notional *at* ``LP``: the
    kernel iterates (start at the entry notional, solve, re-bracket, repeat until no bracket
    changes, as Binance describes [DOC S2]); if that does not settle it falls back to an exact
    search over the piecewise-linear segments of ``E - MM`` (see
    ``_margin.binance_liquidation_price``). In cross hedge mode LONG and SHORT share the one
    price ([DOC S2, S14]); isolated legs each have their own: call once per leg with that leg's
    isolated margin.

    Parameters
    ----------
    wallet_balance : float
        ``WB``: the cross wallet balance, or the position's isolated margin.
    positions : (size, entry) or mapping
        A one-way position ``(signed size, entry)``, or ``{"BOTH": (size, entry)}``, or hedge
        legs ``{"LONG": (size, entry), "SHORT": (size, entry)}`` (SHORT size as an absolute
        size or as Binance's negative ``positionAmt``).
    other_maintenance : float
        ``TMM1``: maintenance margin of all other contracts (cross only).
    other_upnl : float
        ``UPNL1``: unrealized PnL of all other contracts (cross only).
    brackets : TierTable
        The symbol's leverage brackets ``(notionalFloor..., maintMarginRatio...)``, snapshot at
        the date of interest (reference §1.1; tables change, [DOC S68]).
    margin_type : {"cross", "isolated"}
        Isolated: ``other_maintenance = other_upnl = 0`` and a single leg.

    Returns
    -------
    float
        The liquidation price; ``-inf`` if no positive price liquidates the account, NaN if
        every positive price does. When a hedge's equity minus margin is negative as the price
        tends to 0, the lower root is returned (see the kernel's notes on a possible upper one).

    Notes
    -----
    Binance's own pages print E2 as 190.29 ("difference due to rounding"); the formula gives
    190.2969..., i.e. 190.30 to the cent.

    Examples
    --------
    >>> round(binance_liquidation_price(10.72, (-0.005, 9_451.53), 1.3, 0.47,
    ...                                 brackets=([0], [0.004])), 2)  # E1
    11383.99
    >>> round(binance_liquidation_price(20_000, {"LONG": (1, 100_000), "SHORT": (0.5, 102_000)},
    ...                                 brackets=([0, 300e3], [0.004, 0.005])), 2)  # E9
    58704.45
    """
    wb = _finite("wallet_balance", wallet_balance)
    legs = _binance_positions(positions)
    tmm = _non_negative("other_maintenance", other_maintenance)
    upnl = _finite("other_upnl", other_upnl)
    f, r = _deduction_tiers("brackets", brackets)
    mode = _mode("margin_type", margin_type, ("cross", "isolated"))
    if mode == "isolated":
        if tmm != 0.0:
            raise ValueError(f"other_maintenance: must be 0 for an isolated position (TMM1 = 0; got {other_maintenance!r})")
        if upnl != 0.0:
            raise ValueError(f"other_upnl: must be 0 for an isolated position (UPNL1 = 0; got {other_upnl!r})")
        if sum(q != 0.0 for q, _ in legs.values()) > 1:
            raise ValueError(
                "positions: isolated hedge-mode legs have separate liquidation prices; "
                "call once per leg with that leg's isolated margin"
            )
    both = legs.get("BOTH", (0.0, 0.0))
    lng = legs.get("LONG", (0.0, 0.0))
    sht = legs.get("SHORT", (0.0, 0.0))
    price, _ = _margin.py_binance_liquidation_price(wb, tmm, upnl, both[0], both[1], lng[0], lng[1], sht[0], sht[1], f, r)
    return price


# --- Hyperliquid ----------------------------------------------------------------------------


def hyperliquid_tiers(floors: Sequence[float], max_leverages: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Tier table ``(floors, rates)`` from Hyperliquid's margin table.

    ``mmr = 1 / (2 x max leverage)`` of each tier ("Margin tiers" [DOC S20]; reference §2.1).

    Parameters
    ----------
    floors : sequence of float
        Lower notional bound of each tier (first 0).
    max_leverages : sequence of float
        Max leverage of each tier (> 0).

    Returns
    -------
    tuple of ndarray
        ``(floors, rates)``.

    Examples
    --------
    >>> hyperliquid_tiers([0, 150e6], [40, 20])[1].tolist()  # BTC
    [0.0125, 0.025]
    """
    lev = np.array(max_leverages, dtype=np.float64)
    if lev.ndim != 1 or not np.all(np.isfinite(lev)) or not np.all(lev > 0.5):
        raise ValueError(f"max_leverages: expected finite max leverages > 0.5 (got {max_leverages!r})")
    f, r = _tiers("floors/max_leverages", (floors, 1.0 / (2.0 * lev)))
    return f, r


def _hyperliquid_args(margin, size, price, tiers, mode, other_maintenance):
    m = _finite("margin", margin)
    q = _size("size", size)
    p = _positive("price", price)
    f, r = _deduction_tiers("tiers", tiers)
    md = _mode("mode", mode, ("cross", "isolated"))
    omm = _non_negative("other_maintenance", other_maintenance)
    if md == "isolated" and omm != 0.0:
        raise ValueError("other_maintenance: must be 0 for an isolated position (its margin is its own)")
    return m, q, p, f, r, omm


def hyperliquid_liquidation_price(
    margin: float,
    size: float,
    price: float,
    tiers: TierTable,
    *,
    mode: Literal["cross", "isolated"] = "cross",
    other_maintenance: float = 0.0,
) -> float:
    """Hyperliquid liquidation price by the documented formula ("Liquidations" [DOC S21]).

    ``liq = price - side * margin_available / |size| / (1 - l * side)``, with
    ``margin_available = account_value - maintenance_margin_required`` (cross) or
    ``isolated_margin - maintenance_margin_required`` (isolated), and
    ``l = 1 / MAINTENANCE_LEVERAGE`` of the margin tier holding the position value *at* the
    liquidation price (reference §2.2). The kernel iterates over tiers until the tier at the
    result is the tier used, and takes ``maintenance_margin_required`` with that same tier (the
    mark price's own tier would make the formula inexact when the two differ), so the result is
    the exact root of ``E(P) = other_maintenance + MM(|size| P)``. Cross liquidation prices do
    not depend on the chosen leverage; isolated ones do through the margin allocated.

    Parameters
    ----------
    margin : float
        Account value (cross: collateral plus all uPnL) or isolated margin (collateral of this
        position plus its uPnL), both at ``price``.
    size : float
        Signed position size, non-zero.
    price : float
        Current mark price, > 0.
    tiers : TierTable
        ``(floors, rates)``; see :func:`hyperliquid_tiers`.
    mode : {"cross", "isolated"}
    other_maintenance : float
        Maintenance margin of the other cross positions (held fixed); 0 isolated.

    Returns
    -------
    float
        The price; ``-inf`` for a long that no positive price liquidates.

    Examples
    --------
    >>> btc = hyperliquid_tiers([0, 150e6], [40, 20])
    >>> round(hyperliquid_liquidation_price(10_000, 1, 100_000, btc, mode="isolated"), 2)  # E10
    91139.24
    >>> round(hyperliquid_liquidation_price(20_000, 1, 100_000, btc), 2)  # E11
    81012.66
    """
    m, q, p, f, r, omm = _hyperliquid_args(margin, size, price, tiers, mode, other_maintenance)
    out, _ = _margin.py_hyperliquid_liquidation_price(m, q, p, f, r, omm, 1.0)
    return out


def backstop_price(
    margin: float,
    size: float,
    price: float,
    tiers: TierTable,
    *,
    mode: Literal["cross", "isolated"] = "cross",
    other_maintenance: float = 0.0,
    ratio: float = 2.0 / 3.0,
) -> float:
    """Hyperliquid backstop-liquidation price: equity = 2/3 of maintenance margin.

    Below 2/3 of maintenance margin the liquidator vault (HLP) may take the position over
    ("Liquidations" [DOC S21]; reference §2.4, E12). Same formula and arguments as
    :func:`hyperliquid_liquidation_price` with ``l`` and the maintenance margin scaled by
    ``ratio``.

    Parameters
    ----------
    margin, size, price, tiers, mode, other_maintenance
        As :func:`hyperliquid_liquidation_price`.
    ratio : float
        Share of maintenance margin, in ``(0, 1]`` (Hyperliquid: 2/3).

    Returns
    -------
    float

    Examples
    --------
    >>> btc = hyperliquid_tiers([0, 150e6], [40, 20])
    >>> round(backstop_price(10_000, 1, 100_000, btc, mode="isolated"), 2)  # E12
    90756.3
    """
    m, q, p, f, r, omm = _hyperliquid_args(margin, size, price, tiers, mode, other_maintenance)
    rat = _finite("ratio", ratio)
    if not 0.0 < rat <= 1.0:
        raise ValueError(f"ratio: expected a share of maintenance margin in (0, 1] (got {ratio!r})")
    out, _ = _margin.py_hyperliquid_liquidation_price(m, q, p, f, r, omm, rat)
    return out


# --- dYdX ---------------------------------------------------------------------------------


def dydx_isolated_liquidation_price(equity: float, size: float, oracle_price: float, mmf: float) -> float:
    """dYdX v4 isolated-position liquidation price ``p' = (e - s p) / (|s| MMF - s)``.

    The root of ``e + s (p' - p) = |s| p' MMF`` (equity at ``p'`` equals maintenance margin),
    "Liquidations on dYdX Chain" [DOC S48]; reference §3, E18. dYdX's maintenance fraction is
    a single number per market (no tiers).

    Parameters
    ----------
    equity : float
        Equity ``e`` of the isolated subaccount at the oracle price.
    size : float
        Signed position size ``s``, non-zero.
    oracle_price : float
        Oracle price ``p``, > 0.
    mmf : float
        Maintenance margin fraction, in ``[0, 1)``.

    Returns
    -------
    float
        The price; ``-inf`` for a long that no positive price liquidates.

    Examples
    --------
    >>> round(dydx_isolated_liquidation_price(1_000, -3, 3_000, 0.05), 2)  # E18
    3174.6
    """
    e = _finite("equity", equity)
    q = _size("size", size)
    p = _positive("oracle_price", oracle_price)
    fr = _finite("mmf", mmf)
    if not 0.0 <= fr < 1.0:
        raise ValueError(f"mmf: expected a maintenance margin fraction in [0, 1) (got {mmf!r})")
    return _margin.py_dydx_isolated_liquidation_price(e, q, p, fr)


# --- mark prices ----------------------------------------------------------------------------


def median3(a: float, b: float, c: float) -> float:
    """Median of three finite numbers.

    Parameters
    ----------
    a, b, c : float

    Returns
    -------
    float
    """
    return _calc.py_median3(_finite("a", a), _finite("b", b), _finite("c", c))


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """Weighted median: the first value, in ascending order, whose cumulative weight is >= half
    of the total weight.

    The convention of reference E14 [INF] (Hyperliquid's oracle and mark price use weighted
    medians of venue prices, [DOC S33, S34]). NaN values (a venue without a quote) and zero
    weights are skipped.

    Parameters
    ----------
    values : sequence of float
        Values; NaN for a missing one.
    weights : sequence of float
        Weights, finite and >= 0, with a positive total over the present values.

    Returns
    -------
    float

    Examples
    --------
    >>> weighted_median([9_990, 10_012, 10_014, 10_018, 10_040], [1, 3, 2, 2, 1])  # E14
    10014.0
    """
    v = np.array(values, dtype=np.float64)
    w = np.array(weights, dtype=np.float64)
    if v.ndim != 1 or w.ndim != 1 or len(v) != len(w):
        raise ValueError(f"values, weights: expected 1-D sequences of equal length (got shapes {v.shape} and {w.shape})")
    if np.any(np.isinf(v)):
        raise ValueError("values: expected finite numbers or NaN for a missing one")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights: expected finite weights >= 0")
    if not np.sum(w[~np.isnan(v)]) > 0:
        raise ValueError("weights: the present values (not NaN) need a positive total weight")
    return _calc.py_weighted_median(v, w)


def _perp_inputs(perp_mids: Any, perp_weights: Any) -> tuple[np.ndarray, np.ndarray]:
    if perp_mids is None:
        if perp_weights is not None:
            raise ValueError("perp_weights: given without perp_mids")
        return np.zeros(0), np.zeros(0)
    if isinstance(perp_mids, Mapping):
        table = HYPERLIQUID_PERP_WEIGHTS if perp_weights is None else perp_weights
        if not isinstance(table, Mapping):
            raise ValueError("perp_weights: expected a mapping venue -> weight when perp_mids is a mapping")
        mids, weights = [], []
        for venue, mid in perp_mids.items():
            key = venue.lower() if isinstance(venue, str) and perp_weights is None else venue
            if key not in table:
                raise ValueError(f"perp_mids: no weight for venue {venue!r} (known: {', '.join(map(str, table))})")
            mids.append(_optional_price(f"perp_mids[{venue!r}]", mid))
            weights.append(_non_negative(f"perp_weights[{key!r}]", table[key]))
        return np.array(mids, dtype=np.float64), np.array(weights, dtype=np.float64)
    if perp_weights is None or isinstance(perp_weights, Mapping):
        raise ValueError("perp_weights: required as a sequence when perp_mids is a sequence")
    if len(perp_mids) != len(perp_weights):
        raise ValueError(f"perp_mids, perp_weights: lengths differ ({len(perp_mids)} != {len(perp_weights)})")
    mids = [_optional_price(f"perp_mids[{i}]", x) for i, x in enumerate(perp_mids)]
    weights = [_non_negative(f"perp_weights[{i}]", x) for i, x in enumerate(perp_weights)]
    return np.array(mids, dtype=np.float64), np.array(weights, dtype=np.float64)


def hyperliquid_mark(
    oracle: float | None,
    basis_ema: float | None,
    bid: float | None = None,
    ask: float | None = None,
    last: float | None = None,
    perp_mids: Mapping[str, float | None] | Sequence[float | None] | None = None,
    perp_weights: Mapping[str, float] | Sequence[float] | None = None,
    fallback_ema: float | None = None,
) -> float:
    """Hyperliquid mark price from its components ("Robust price indices" [DOC S34]).

    The median of

    1. ``oracle + basis_ema``, the oracle plus the 150 s EMA of (HL mid - oracle);
    2. ``median(bid, ask, last)`` of the Hyperliquid book;
    3. the weighted median (:func:`weighted_median`) of Binance, OKX, Bybit, Gate and MEXC perp
       mids, weights 3, 2, 2, 1, 1.

    "If exactly two out of the three inputs above exist, the 30 second EMA of the median of best
    bid, best ask, and last trade on Hyperliquid is also added to the median inputs":
    ``fallback_ema`` is then the third input (reference §2.3, E14). Inferred, not documented
    [INF]: component 2 exists only when bid, ask and last all do; component 3 when at least one
    mid does; with two components and no ``fallback_ema`` the result is their mean; with one
    component, that component; with none, ``fallback_ema``.

    Parameters
    ----------
    oracle : float or None
        Oracle price (None/NaN: missing).
    basis_ema : float or None
        150 s EMA of (HL mid - oracle), e.g. from ``riskengine._mark.py_ema``.
    bid, ask, last : float or None
        Best bid, best ask and last trade on Hyperliquid.
    perp_mids : mapping or sequence, optional
        External perp mids: ``{"binance": mid, ...}`` (weights default to
        :data:`HYPERLIQUID_PERP_WEIGHTS`) or a sequence with ``perp_weights``.
    perp_weights : mapping or sequence, optional
        Weights of ``perp_mids``.
    fallback_ema : float or None
        30 s EMA of median(bid, ask, last).

    Returns
    -------
    float
        NaN if no component and no ``fallback_ema`` exists.

    Examples
    --------
    >>> hyperliquid_mark(10_000, 20, 10_010, 10_016, 10_030,
    ...                  {"mexc": 9_990, "binance": 10_012, "bybit": 10_014, "okx": 10_018, "gate": 10_040})  # E14
    10016.0
    """
    o = _optional_price("oracle", oracle)
    b = math.nan if basis_ema is None else _number("basis_ema", basis_ema)
    if math.isinf(b):
        raise ValueError(f"basis_ema: expected a finite number, or None/NaN if missing (got {basis_ema!r})")
    bd = _optional_price("bid", bid)
    ak = _optional_price("ask", ask)
    ls = _optional_price("last", last)
    fb = _optional_price("fallback_ema", fallback_ema)
    mids, weights = _perp_inputs(perp_mids, perp_weights)
    return _calc.py_hyperliquid_mark(o, b, bd, ak, ls, mids, weights, fb)


def binance_coinm_mark(
    index: float,
    last_funding_rate: float,
    time_to_funding: float,
    ma_basis: float,
    last_price: float,
    *,
    funding_interval: float = 8 * 3600.0,
) -> float:
    """Binance COIN-M mark price ``median(P1, P2, last_price)``.

    ``P1 = index (1 + last_funding_rate x time_to_funding / funding_interval)``,
    ``P2 = index + ma_basis`` with the moving average of ``(bid1 + ask1) / 2 - index``
    (30 samples, one every 5 s) ("Mark Price in COIN-Margined Futures" [DOC S16]; reference
    §1.3, E19). Binance's USD-M text is not public; the same structure is assumed there [INF].

    Parameters
    ----------
    index : float
        Price index, > 0.
    last_funding_rate : float
        Last funding rate (per funding interval).
    time_to_funding : float
        Time until the next funding, >= 0, in the unit of ``funding_interval``.
    ma_basis : float
        Moving-average basis.
    last_price : float
        Last traded price, > 0.
    funding_interval : float
        Funding interval, > 0 (default 8 h in seconds).

    Returns
    -------
    float

    Examples
    --------
    >>> binance_coinm_mark(10_000, 0.0001, 4 * 3600, 8, 10_020)  # E19
    10008.0
    """
    i = _positive("index", index)
    r = _finite("last_funding_rate", last_funding_rate)
    t = _non_negative("time_to_funding", time_to_funding)
    basis = _finite("ma_basis", ma_basis)
    last = _positive("last_price", last_price)
    T = _positive("funding_interval", funding_interval)
    return _calc.py_binance_coinm_mark(i, r, t, T, basis, last)
