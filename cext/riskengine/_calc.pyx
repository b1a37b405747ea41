"""Mark-price calculators: median of three, weighted median, Hyperliquid's mark price from its
components and Binance's COIN-M mark price.

Sources: Hyperliquid "Robust price indices" (mark = median of oracle + 150 s EMA basis, the
book's median(bid, ask, last) and a weighted median of external perp mids; reference §2.3,
[DOC S34]) and Binance "Mark Price in COIN-Margined Futures" (``median(P1, P2, last)``;
reference §1.3, [DOC S16]). The engine's own mark state (EMAs over the simulated tape) stays in
``_mark.pyx``; these kernels combine already computed components.

Missing inputs are NaN.
"""

import numpy as np
from libc.math cimport NAN, isfinite
from libc.stdlib cimport free, malloc, qsort

from riskengine._typedefs cimport float64_t


cdef struct ValueWeight:
    float64_t value
    float64_t weight


cdef int _by_value(const void* a, const void* b) noexcept nogil:
    cdef float64_t x = (<const ValueWeight*>a).value
    cdef float64_t y = (<const ValueWeight*>b).value
    return (x > y) - (x < y)


cdef float64_t median3(float64_t a, float64_t b, float64_t c) noexcept nogil:
    """Median of three finite numbers."""
    if a > b:
        a, b = b, a
    # a <= b
    if c <= a:
        return a
    if c >= b:
        return b
    return c


cdef float64_t weighted_median(const float64_t* values, const float64_t* weights,
                               Py_ssize_t n) noexcept nogil:
    """Weighted median: sort by value, return the first value whose cumulative weight is
    >= half of the total weight (the convention of reference E14, [INF]).

    Entries with a non-finite value or a weight that is not > 0 are skipped (a venue without a
    quote). NaN when nothing is left. Small inputs (<= 16 entries) sort on the stack.
    """
    cdef ValueWeight stack_buf[16]
    cdef ValueWeight* buf = stack_buf
    cdef Py_ssize_t i, m = 0
    cdef float64_t total = 0.0, half, cum = 0.0, out = NAN
    if n > 16:
        buf = <ValueWeight*>malloc(n * sizeof(ValueWeight))
        if buf == NULL:
            return NAN
    for i in range(n):
        if isfinite(values[i]) and weights[i] > 0.0 and isfinite(weights[i]):
            buf[m].value = values[i]
            buf[m].weight = weights[i]
            total += weights[i]
            m += 1
    if m > 0:
        qsort(buf, m, sizeof(ValueWeight), _by_value)
        half = 0.5 * total
        for i in range(m):
            cum += buf[i].weight
            if cum >= half:
                out = buf[i].value
                break
        else:
            out = buf[m - 1].value  # rounding: the cumulative sum fell short of its own half
    if buf != stack_buf:
        free(buf)
    return out


cdef float64_t hyperliquid_mark(float64_t oracle, float64_t basis_ema, float64_t bid,
                                float64_t ask, float64_t last, const float64_t* perp_mids,
                                const float64_t* perp_weights, Py_ssize_t n_perps,
                                float64_t fallback_ema) noexcept nogil:
    """Hyperliquid mark price from its components (reference §2.3, [DOC S34]).

    Inputs of the median:

    1. ``oracle + basis_ema`` (150 s EMA of HL mid - oracle); exists if both are finite;
    2. ``median(bid, ask, last)`` of the HL book; exists if all three are finite [INF];
    3. weighted median of the external perp mids (Binance, OKX, Bybit, Gate, MEXC with weights
       3, 2, 2, 1, 1); exists if at least one mid is finite with a positive weight.

    All three: their median. Exactly two: ``fallback_ema`` (30 s EMA of median(bid, ask, last))
    is added as a third input, as documented; if it is NaN too, the mean of the two (the median of
    two numbers) [INF]. One: that component [INF]. None: ``fallback_ema`` (may be NaN) [INF].
    """
    cdef float64_t comp[3]
    cdef Py_ssize_t m = 0
    cdef float64_t c
    if isfinite(oracle) and isfinite(basis_ema):
        comp[m] = oracle + basis_ema
        m += 1
    if isfinite(bid) and isfinite(ask) and isfinite(last):
        comp[m] = median3(bid, ask, last)
        m += 1
    if n_perps > 0:
        c = weighted_median(perp_mids, perp_weights, n_perps)
        if isfinite(c):
            comp[m] = c
            m += 1
    if m == 3:
        return median3(comp[0], comp[1], comp[2])
    if m == 2:
        if isfinite(fallback_ema):
            return median3(comp[0], comp[1], fallback_ema)
        return 0.5 * (comp[0] + comp[1])
    if m == 1:
        return comp[0]
    return fallback_ema


cdef float64_t binance_coinm_mark(float64_t index, float64_t funding_rate,
                                  float64_t time_to_funding, float64_t funding_interval,
                                  float64_t ma_basis, float64_t last) noexcept nogil:
    """Binance COIN-M mark price ``median(P1, P2, last)`` with
    ``P1 = index (1 + funding_rate x time_to_funding / funding_interval)`` and
    ``P2 = index + ma_basis`` (reference §1.3, [DOC S16]). Times in one unit.
    """
    cdef float64_t p1 = index * (1.0 + funding_rate * (time_to_funding / funding_interval))
    cdef float64_t p2 = index + ma_basis
    return median3(p1, p2, last)


def py_median3(double a, double b, double c):
    """Median of three numbers (wrapper of the kernel).

    Parameters
    ----------
    a, b, c : float

    Returns
    -------
    float
    """
    return median3(a, b, c)


def py_weighted_median(values, weights):
    """Weighted median, first value whose cumulative weight is >= half the total (wrapper).

    Parameters
    ----------
    values, weights : array_like
        Equal-length 1-D arrays; non-finite values and non-positive weights are skipped.

    Returns
    -------
    float
        NaN when no entry is left.
    """
    cdef const float64_t[::1] v = np.ascontiguousarray(values, dtype=np.float64)
    cdef const float64_t[::1] w = np.ascontiguousarray(weights, dtype=np.float64)
    if v.shape[0] != w.shape[0]:
        raise ValueError(f"values and weights differ in length ({v.shape[0]} != {w.shape[0]})")
    if v.shape[0] == 0:
        return NAN
    return weighted_median(&v[0], &w[0], v.shape[0])


def py_hyperliquid_mark(double oracle, double basis_ema, double bid, double ask, double last,
                        perp_mids, perp_weights, double fallback_ema=NAN):
    """Hyperliquid mark price from its components (wrapper; NaN marks a missing input).

    Parameters
    ----------
    oracle, basis_ema : float
        Oracle price and the 150 s EMA of (HL mid - oracle).
    bid, ask, last : float
        Best bid, best ask and last trade on Hyperliquid.
    perp_mids, perp_weights : array_like
        External perp mid prices and their weights.
    fallback_ema : float
        30 s EMA of median(bid, ask, last), used when exactly two components exist.

    Returns
    -------
    float
    """
    cdef const float64_t[::1] v = np.ascontiguousarray(perp_mids, dtype=np.float64)
    cdef const float64_t[::1] w = np.ascontiguousarray(perp_weights, dtype=np.float64)
    if v.shape[0] != w.shape[0]:
        raise ValueError(f"perp_mids and perp_weights differ in length ({v.shape[0]} != {w.shape[0]})")
    if v.shape[0] == 0:
        return hyperliquid_mark(oracle, basis_ema, bid, ask, last, NULL, NULL, 0, fallback_ema)
    return hyperliquid_mark(oracle, basis_ema, bid, ask, last, &v[0], &w[0], v.shape[0],
                            fallback_ema)


def py_binance_coinm_mark(double index, double funding_rate, double time_to_funding,
                          double funding_interval, double ma_basis, double last):
    """Binance COIN-M mark price ``median(P1, P2, last)`` (wrapper of the kernel).

    Parameters
    ----------
    index : float
        Price index.
    funding_rate : float
        Last funding rate.
    time_to_funding, funding_interval : float
        Time until the next funding and the funding interval, in one unit.
    ma_basis : float
        Moving average of ((bid1 + ask1) / 2 - index).
    last : float
        Last traded price.

    Returns
    -------
    float
    """
    return binance_coinm_mark(index, funding_rate, time_to_funding, funding_interval, ma_basis,
                              last)
