"""Margin kernels: tiered maintenance margin, liquidation price, the trigger test.

Sources: Binance USD-M "Leverage & Margin" (``MM = notional x MMR - maintenance amount``,
brackets with ``cum``) and Hyperliquid "Margin tiers" / "Liquidations" (same form, liquidation
when equity < maintenance margin at mark); see reference §0, §1.1, §2.1-2.2.
"""

import numpy as np
from libc.math cimport INFINITY, fabs

from riskengine._typedefs cimport float64_t


cdef float64_t maintenance_margin(const Tiers* tiers, float64_t notional) noexcept nogil:
    cdef Py_ssize_t k = 0
    while k + 1 < tiers.n and tiers.floors[k + 1] <= notional:
        k += 1
    return notional * tiers.rates[k] - tiers.cums[k]


cdef bint crosses(const Tiers* tiers, float64_t col, float64_t pos, float64_t entry,
                  float64_t mark) noexcept nogil:
    cdef float64_t equity = col + pos * (mark - entry)
    return equity < maintenance_margin(tiers, fabs(pos) * mark)


cdef float64_t liquidation_price(const Tiers* tiers, float64_t col, float64_t pos,
                                 float64_t entry, float64_t ratio) noexcept nogil:
    """Price at which equity equals ``ratio`` x the tiered maintenance margin.

    ``ratio = 1`` gives the liquidation price (Binance's bracket iteration: the MMR and
    maintenance amount are those of the tier holding the notional *at* that price; Hyperliquid's
    ``l`` is "of the tier at the liquidation price"), ``ratio = 2/3`` Hyperliquid's backstop
    price. ``E(P) - ratio MM(|q| P)`` is continuous and monotone in ``P`` (increasing for a long,
    decreasing for a short, since every rate is < 1), so the root lies in the first tier
    whose upper price boundary is past it. Returns -inf for a long that no positive price
    liquidates and +inf for a flat position.
    """
    cdef float64_t size = fabs(pos)
    cdef float64_t upper, f
    cdef Py_ssize_t k
    if pos == 0.0:
        return INFINITY
    if pos > 0.0:
        if col - pos * entry + ratio * tiers.cums[0] >= 0.0:
            return -INFINITY
        for k in range(tiers.n):
            if k + 1 < tiers.n:
                upper = tiers.floors[k + 1] / size
                f = col + pos * (upper - entry) - ratio * (size * upper * tiers.rates[k] - tiers.cums[k])
                if f < 0.0:
                    continue
            return (pos * entry - col - ratio * tiers.cums[k]) / (pos * (1.0 - ratio * tiers.rates[k]))
    for k in range(tiers.n):
        if k + 1 < tiers.n:
            upper = tiers.floors[k + 1] / size
            f = col + pos * (upper - entry) - ratio * (size * upper * tiers.rates[k] - tiers.cums[k])
            if f > 0.0:
                continue
        return (col + size * entry + ratio * tiers.cums[k]) / (size * (1.0 + ratio * tiers.rates[k]))
    return INFINITY


cdef Tiers _tiers(const float64_t[::1] floors, const float64_t[::1] rates,
                  const float64_t[::1] cums):
    cdef Tiers t
    t.floors = &floors[0]
    t.rates = &rates[0]
    t.cums = &cums[0]
    t.n = floors.shape[0]
    return t


def _deductions(floors, rates):
    from riskengine.params import maintenance_deductions

    floors = np.ascontiguousarray(floors, dtype=np.float64)
    rates = np.ascontiguousarray(rates, dtype=np.float64)
    return floors, rates, maintenance_deductions(floors, rates)


def py_maintenance_margin(double notional, floors, rates):
    """Tiered maintenance margin of one position (Python wrapper of the kernel).

    Parameters
    ----------
    notional : float
        Position notional ``|q| x mark``.
    floors, rates : array_like
        Tier floors (first 0) and maintenance rates.

    Returns
    -------
    float
    """
    f, r, c = _deductions(floors, rates)
    cdef Tiers t = _tiers(f, r, c)
    return maintenance_margin(&t, notional)


def py_liquidation_price(double collateral, double size, double entry, floors, rates,
                         double ratio=1.0):
    """Liquidation price of one position: the root of ``E(P) = ratio x MM(|q| P)``.

    Parameters
    ----------
    collateral : float
        Margin backing the position (isolated margin, or cross wallet balance).
    size : float
        Signed position size.
    entry : float
        Entry price.
    floors, rates : array_like
        Tier floors (first 0) and maintenance rates.
    ratio : float
        Share of maintenance margin the equity is compared with (1: liquidation; Hyperliquid's
        backstop: 2/3).

    Returns
    -------
    float
        The price; ``-inf`` when no positive price liquidates a long.
    """
    f, r, c = _deductions(floors, rates)
    cdef Tiers t = _tiers(f, r, c)
    return liquidation_price(&t, collateral, size, entry, ratio)
