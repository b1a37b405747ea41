"""Stubs for riskengine._calc (cext/riskengine/_calc.pyx)."""

from collections.abc import Sequence

def py_median3(a: float, b: float, c: float) -> float:
    """Median of three numbers."""

def py_weighted_median(
    values: Sequence[float],  # const float64_t[::1]
    weights: Sequence[float],  # const float64_t[::1]
) -> float:
    """First value (by value) whose cumulative weight is >= half the total; NaN if none.

    Non-finite values and non-positive weights are skipped.
    """

def py_hyperliquid_mark(
    oracle: float,
    basis_ema: float,
    bid: float,
    ask: float,
    last: float,
    perp_mids: Sequence[float],  # const float64_t[::1]
    perp_weights: Sequence[float],  # const float64_t[::1]
    fallback_ema: float = ...,
) -> float:
    """Hyperliquid mark price from its components; NaN marks a missing input."""

def py_binance_coinm_mark(
    index: float,
    funding_rate: float,
    time_to_funding: float,
    funding_interval: float,
    ma_basis: float,
    last: float,
) -> float:
    """Binance COIN-M mark price ``median(index (1 + r t / T), index + ma_basis, last)``."""
