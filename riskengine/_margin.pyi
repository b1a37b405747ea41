"""Stubs for riskengine._margin (cext/riskengine/_margin.pyx)."""

from collections.abc import Sequence

def py_maintenance_margin(
    notional: float,
    floors: Sequence[float],  # const float64_t[::1]
    rates: Sequence[float],  # const float64_t[::1]
    whole: bool = ...,
) -> float: ...
def py_liquidation_price(
    collateral: float,
    size: float,
    entry: float,
    floors: Sequence[float],  # const float64_t[::1]
    rates: Sequence[float],  # const float64_t[::1]
    ratio: float = ...,
    whole: bool = ...,
) -> float: ...
def py_bankruptcy_price(collateral: float, size: float, entry: float) -> float:
    """Price where ``collateral + size (P - entry)`` is zero; NaN for a flat position."""

def py_binance_liquidation_price(
    wallet: float,
    other_mm: float,
    other_upnl: float,
    both_size: float,
    both_entry: float,
    long_size: float,
    long_entry: float,
    short_size: float,
    short_entry: float,
    floors: Sequence[float],  # const float64_t[::1]
    rates: Sequence[float],  # const float64_t[::1]
    max_iter: int = ...,
) -> tuple[float, int]:
    """Binance USD-M liquidation price of one symbol and the bracket-iteration count.

    Returns
    -------
    tuple of (float, int)
        The price, and the number of solves of the bracket iteration (-1: segment walk).
    """

def py_hyperliquid_liquidation_price(
    margin: float,
    size: float,
    price: float,
    floors: Sequence[float],  # const float64_t[::1]
    rates: Sequence[float],  # const float64_t[::1]
    other_mm: float = ...,
    ratio: float = ...,
) -> tuple[float, int]:
    """Hyperliquid liquidation price and the tier-iteration count (-1: closed-form fallback)."""

def py_dydx_isolated_liquidation_price(equity: float, size: float, oracle: float, mmf: float) -> float:
    """dYdX v4 isolated liquidation price ``(e - s p) / (|s| MMF - s)``."""
