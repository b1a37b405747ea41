"""Plain-Python twin of ``cext/riskengine/_calc.pyx``: the median of three the mark methods use.

``_calc.pyx``'s other kernels (the weighted median, Hyperliquid's mark from its components,
Binance's COIN-M mark) combine components the engine does not model; they are calculators
(``riskengine.calculators`` wraps the compiled ones) and have no twin here.
"""
from __future__ import annotations


def median3(a: float, b: float, c: float) -> float:
    """Median of three finite numbers.

    The median is one of the inputs, so this expression and ``_calc.median3``'s comparisons
    return the same bits.
    """
    return max(min(a, b), min(max(a, b), c))
