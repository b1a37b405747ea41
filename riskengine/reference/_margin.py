"""Plain-Python twin of the engine's part of ``cext/riskengine/_margin.pyx``: tiered maintenance
margin, the trigger test, the tier holding a notional and the bankruptcy price.

Sources: Binance USD-M "Leverage & Margin" (``MM = notional x MMR - maintenance amount``) and
Hyperliquid "Margin tiers" / "Liquidations" (liquidation when equity < maintenance margin at
mark); reference §0, §1.1, §2.1-2.2.

:func:`maintenance_margin` is ``riskengine.params.maintenance_margin``, the one plain-Python copy
(``EngineParams.maintenance_margin`` uses it too). ``_margin.pyx``'s liquidation price has no twin:
it keys the compiled engine's liquidation index, and the reference scans every account instead
(summing a margin account's positions, ``_engine._Reference.all_figures``; :func:`crosses` and
:func:`crossing` are the test for an account with one position). Its venue calculators (Binance, Hyperliquid, dYdX liquidation prices) are
``riskengine.calculators``' kernels, not the engine's.
"""
from __future__ import annotations

import math

import numpy as np

from riskengine.params import EngineParams, maintenance_margin

__all__ = ["bankruptcy_price", "crosses", "crossing", "maintenance_margin", "tier_index"]


def crosses(params: EngineParams, col: float, pos: float, entry: float, mark: float) -> bool:
    """Whether an account's equity at ``mark`` is below its maintenance margin."""
    equity = col + pos * (mark - entry)
    return equity < maintenance_margin(abs(pos) * mark, params.mm_floors, params.mm_rates, params.mm_cums)


def crossing(params: EngineParams, col: np.ndarray, pos: np.ndarray, entry: np.ndarray,
             mark: float) -> np.ndarray:
    """:func:`crosses` for every one-position account at once: a boolean array."""
    equity = col + pos * (mark - entry)
    notional = np.abs(pos) * mark
    tier = np.searchsorted(params.mm_floors, notional, side="right") - 1
    mm = notional * params.mm_rates[tier] - params.mm_cums[tier]
    return equity < mm


def tier_index(floors: np.ndarray, notional: float) -> int:
    """Index of the tier holding ``notional``: the last tier whose floor is <= it."""
    k = 0
    while k + 1 < len(floors) and floors[k + 1] <= notional:
        k += 1
    return k


def bankruptcy_price(col: float, pos: float, entry: float) -> float:
    """Price where the equity ``col + pos (P - entry)`` is zero: ``entry - col / pos`` (NaN for a
    flat position; reference §0)."""
    if pos == 0.0:
        return math.nan
    return entry - col / pos
