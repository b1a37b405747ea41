"""Stubs for riskengine._margin (cext/riskengine/_margin.pyx)."""

from collections.abc import Sequence

def py_maintenance_margin(
    notional: float,
    floors: Sequence[float],  # const float64_t[::1]
    rates: Sequence[float],  # const float64_t[::1]
) -> float: ...
def py_liquidation_price(
    collateral: float,
    size: float,
    entry: float,
    floors: Sequence[float],  # const float64_t[::1]
    rates: Sequence[float],  # const float64_t[::1]
    ratio: float = ...,
) -> float: ...
