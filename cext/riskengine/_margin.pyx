"""Margin kernels: tiered maintenance margin, liquidation price, the trigger test.

Sources: Binance USD-M "Leverage & Margin" (``MM = notional x MMR - maintenance amount``,
brackets with ``cum``) and Hyperliquid "Margin tiers" / "Liquidations" (same form, liquidation
when equity < maintenance margin at mark); see reference §0, §1.1, §2.1-2.2.
"""

import numpy as np
from libc.math cimport INFINITY, NAN, fabs

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


cdef float64_t step_liquidation_price(const Tiers* tiers, float64_t col, float64_t pos,
                                       float64_t entry, float64_t ratio) noexcept nogil:
    """:c:func:`liquidation_price` for the whole-position form ``MM(N) = N rate_k``.

    On tier ``k``'s price segment ``[L_k, U_k)`` (``L_k = floor_k / |q|``) the margin
    ``f_k(P) = E(P) - ratio |q| P rate_k`` is linear, with root ``root_k``; at each floor
    ``f`` steps down by ``ratio floor_k (rate_k - rate_{k-1})`` as the price rises. For a
    short ``f`` only falls as the price rises, so the region ``f < 0`` is ``[key, inf)``: the
    first segment whose start is already below zero gives ``L_k``, else the first whose root
    lies inside it gives ``root_k``. For a long ``f`` rises within a segment and steps down at
    its floor, so a long can also be liquidated by a rise that lifts its notional into a tier
    of a higher rate: the region is a union of ``[L_k, root_k)``; the key is its supremum,
    ``root_k`` of the highest tier whose ``root_k > L_k`` (any mark above it is safe; a key
    above the mark makes the account a candidate that the exact test re-checks).
    """
    cdef float64_t size = fabs(pos)
    cdef float64_t num, root
    cdef Py_ssize_t k
    if pos > 0.0:
        num = pos * entry - col
        if num <= 0.0:
            return -INFINITY
        k = tiers.n - 1
        while k >= 0:
            root = num / (pos * (1.0 - ratio * tiers.rates[k]))
            if root * size > tiers.floors[k]:
                return root
            k -= 1
        return -INFINITY
    num = col + size * entry
    for k in range(tiers.n):
        # f_k at the segment's start, where |q| P = floor_k
        if num - tiers.floors[k] * (1.0 + ratio * tiers.rates[k]) < 0.0:
            return tiers.floors[k] / size
        root = num / (size * (1.0 + ratio * tiers.rates[k]))
        if k + 1 == tiers.n or root * size < tiers.floors[k + 1]:
            return root
    return INFINITY


# --- calculators ----------------------------------------------------------------------------
# Closed forms of the venues' documented liquidation-price formulas, with their bracket
# iteration. riskengine/calculators.py is the validated public API over the wrappers below.

cdef Py_ssize_t tier_index(const Tiers* tiers, float64_t notional) noexcept nogil:
    """Index of the tier holding ``notional``: the last tier whose floor is <= it."""
    cdef Py_ssize_t k = 0
    while k + 1 < tiers.n and tiers.floors[k + 1] <= notional:
        k += 1
    return k


cdef float64_t bankruptcy_price(float64_t col, float64_t pos, float64_t entry) noexcept nogil:
    """Price where the equity ``col + pos (P - entry)`` is zero: ``entry - col / pos``.

    NaN for a flat position (reference §0; dYdX "Contract loss mechanisms", E18).
    """
    if pos == 0.0:
        return NAN
    return entry - col / pos


cdef float64_t binance_liquidation_price(const Tiers* tiers, float64_t wallet, float64_t other_mm,
                                         float64_t other_upnl, const SymbolPositions* pos,
                                         int max_iter, int* iterations) noexcept nogil:
    """Binance USD-M liquidation price of one symbol (reference §1.2, [DOC S2, S12]).

    ``LP = (WB - TMM1 + UPNL1 + sum cum_i - sum s_i n_i EP_i) / (sum n_i MMR_i - sum s_i n_i)``
    over the legs ``i`` of the symbol (BOTH, or LONG and SHORT), which is the root of
    ``f(P) = E(P) - MM(P) = WB - TMM1 + UPNL1 + sum s_i n_i (P - EP_i) - sum MM(n_i P)`` with each
    leg's MMR and cum held fixed. The MMR/cum of every leg must be those of the bracket holding
    that leg's notional *at* LP, so:

    1. Binance's bracket iteration: start from each leg's bracket at its entry notional, solve,
       re-bracket every leg at ``n_i LP``, repeat until no bracket changes (at most
       ``max_iter`` solves). A fixed point is an exact root of ``f``. It is accepted if ``f``
       crosses zero there in the expected direction (below).
    2. Otherwise (no fixed point within ``max_iter``, a zero denominator, a non-positive price,
       or a fixed point crossing the wrong way): a robust root search. ``f`` is piecewise
       linear with breakpoints at ``floor_k / n_i``; the segments are walked upward from
       ``P = 0`` and the first segment whose end changes the sign of ``f`` is solved exactly.
       ``*iterations`` is then -1 (else the number of solves of step 1).

    Which root: with non-decreasing rates every ``MM(n_i P)`` is convex, so ``f`` is concave
    and has at most two positive roots. If ``f(0+) < 0`` (the account is liquidated as the
    price falls to zero: a net long, or a hedge whose wallet does not cover it) the price is the
    first upward crossing; otherwise the (only) downward crossing. A single leg has exactly one
    root; a hedge with net long exposure may in theory also be liquidated again far *above*
    (where the legs' MMRs sum past the net exposure); that upper root is not returned.

    Returns +inf for no position, -inf if no positive price liquidates (``f >= 0`` for all
    ``P > 0``), NaN if every positive price liquidates (``f < 0`` for all ``P > 0``).
    """
    cdef float64_t n[3]
    cdef float64_t s[3]
    cdef float64_t ep[3]
    cdef Py_ssize_t k[3]
    cdef Py_ssize_t kk, i, m = 0
    cdef float64_t c, a = 0.0, num, den, lp, f0, hi, b
    cdef bint changed, below
    cdef int it
    if iterations != NULL:
        iterations[0] = 0
    if pos.both_size != 0.0:
        n[m] = fabs(pos.both_size)
        s[m] = 1.0 if pos.both_size > 0.0 else -1.0
        ep[m] = pos.both_entry
        m += 1
    if pos.long_size != 0.0:
        n[m] = fabs(pos.long_size)
        s[m] = 1.0
        ep[m] = pos.long_entry
        m += 1
    if pos.short_size != 0.0:
        n[m] = fabs(pos.short_size)
        s[m] = -1.0
        ep[m] = pos.short_entry
        m += 1
    if m == 0:
        return INFINITY
    c = wallet - other_mm + other_upnl
    for i in range(m):
        c -= s[i] * n[i] * ep[i]
        a += s[i] * n[i]
    f0 = c
    for i in range(m):
        f0 += tiers.cums[0]
    below = f0 < 0.0

    # 1. bracket iteration; on a fixed segment f(P) = num - den * P
    for i in range(m):
        k[i] = tier_index(tiers, n[i] * ep[i])
    for it in range(max_iter):
        num = c
        den = -a
        for i in range(m):
            num += tiers.cums[k[i]]
            den += n[i] * tiers.rates[k[i]]
        if den == 0.0:
            break
        lp = num / den
        if not (0.0 < lp < INFINITY):
            break
        changed = False
        for i in range(m):
            kk = tier_index(tiers, n[i] * lp)
            if kk != k[i]:
                k[i] = kk
                changed = True
        if not changed:
            # slope of f is -den: an upward crossing iff f starts below zero
            if (den < 0.0) == below:
                if iterations != NULL:
                    iterations[0] = it + 1
                return lp
            break

    # 2. segment walk from P = 0
    if iterations != NULL:
        iterations[0] = -1
    for i in range(m):
        k[i] = 0
    while True:
        hi = INFINITY
        for i in range(m):
            if k[i] + 1 < tiers.n:
                b = tiers.floors[k[i] + 1] / n[i]
                if b < hi:
                    hi = b
        num = c
        den = -a
        for i in range(m):
            num += tiers.cums[k[i]]
            den += n[i] * tiers.rates[k[i]]
        if hi == INFINITY:
            if (below and den < 0.0) or (not below and den > 0.0):
                return num / den
            return NAN if below else -INFINITY
        if den != 0.0 and ((below and num - den * hi >= 0.0) or (not below and num - den * hi < 0.0)):
            return num / den
        for i in range(m):
            if k[i] + 1 < tiers.n and tiers.floors[k[i] + 1] / n[i] <= hi:
                k[i] += 1


cdef inline float64_t _hl_liq(const Tiers* tiers, Py_ssize_t k, float64_t margin, float64_t pos,
                              float64_t price, float64_t other_mm, float64_t ratio) noexcept nogil:
    # Hyperliquid's formula with every maintenance quantity taken from tier k
    cdef float64_t size = fabs(pos)
    cdef float64_t side = 1.0 if pos > 0.0 else -1.0
    cdef float64_t l = ratio * tiers.rates[k]
    cdef float64_t avail = margin - ratio * (other_mm + size * price * tiers.rates[k] - tiers.cums[k])
    return price - side * avail / size / (1.0 - l * side)


cdef float64_t hyperliquid_liquidation_price(const Tiers* tiers, float64_t margin, float64_t pos,
                                             float64_t price, float64_t other_mm, float64_t ratio,
                                             int* iterations) noexcept nogil:
    """Hyperliquid liquidation price (reference §2.2, [DOC S21]).

    ``liq = price - side * margin_available / |q| / (1 - l * side)`` with ``margin`` the account
    value (cross) or isolated margin at ``price``, ``margin_available = margin - MM_required``
    and ``l = 1 / MAINTENANCE_LEVERAGE`` "of the unique margin tier corresponding to the position
    value at the liquidation price". ``MM_required`` (``other_mm`` of the other cross positions
    plus this one's ``l |q| price - deduction``) is taken with the *same* tier as ``l``, which
    makes the formula the exact root of ``E(P) = ratio x (other_mm + MM(|q| P))``; ``ratio``
    scales ``l`` and ``MM_required`` (1: liquidation, 2/3: backstop). Bracket iteration from the
    tier at ``price`` until the tier at the result is the tier used (at most ``n + 1`` solves);
    otherwise the exact closed form: with non-decreasing rates ``MM`` is the maximum of its tier
    lines, so the root is the largest per-tier root for a long, the smallest for a short
    (``*iterations`` = -1).

    Returns +inf for a flat position and -inf for a long that no positive price liquidates
    (as :c:func:`liquidation_price`).
    """
    cdef Py_ssize_t k, kk
    cdef float64_t liq, best
    cdef int it
    if iterations != NULL:
        iterations[0] = 0
    if pos == 0.0:
        return INFINITY
    if pos > 0.0 and margin - ratio * other_mm - pos * price + ratio * tiers.cums[0] >= 0.0:
        return -INFINITY
    k = tier_index(tiers, fabs(pos) * price)
    for it in range(tiers.n + 1):
        liq = _hl_liq(tiers, k, margin, pos, price, other_mm, ratio)
        kk = tier_index(tiers, fabs(pos) * liq)
        if kk == k:
            if iterations != NULL:
                iterations[0] = it + 1
            return liq
        k = kk
    if iterations != NULL:
        iterations[0] = -1
    best = -INFINITY if pos > 0.0 else INFINITY
    for k in range(tiers.n):
        liq = _hl_liq(tiers, k, margin, pos, price, other_mm, ratio)
        if (pos > 0.0 and liq > best) or (pos < 0.0 and liq < best):
            best = liq
    return best


cdef float64_t dydx_isolated_liquidation_price(float64_t equity, float64_t pos, float64_t oracle,
                                               float64_t mmf) noexcept nogil:
    """dYdX v4 isolated liquidation price ``p' = (e - s p) / (|s| MMF - s)`` (reference §3,
    [DOC S48]): the root of ``e + s (p' - p) = |s| p' MMF``. +inf for a flat position, -inf for
    a long that no positive price liquidates.
    """
    cdef float64_t num
    if pos == 0.0:
        return INFINITY
    num = equity - pos * oracle
    if pos > 0.0 and num >= 0.0:
        return -INFINITY
    return num / (fabs(pos) * mmf - pos)


cdef Tiers _tiers(const float64_t[::1] floors, const float64_t[::1] rates,
                  const float64_t[::1] cums, bint whole=False):
    cdef Tiers t
    t.floors = &floors[0]
    t.rates = &rates[0]
    t.cums = &cums[0]
    t.n = floors.shape[0]
    t.whole = whole
    return t


def _deductions(floors, rates, bint whole=False):
    from riskengine.params import maintenance_deductions

    floors = np.ascontiguousarray(floors, dtype=np.float64)
    rates = np.ascontiguousarray(rates, dtype=np.float64)
    return floors, rates, maintenance_deductions(floors, rates, whole)


def py_maintenance_margin(double notional, floors, rates, bint whole=False):
    """Tiered maintenance margin of one position (Python wrapper of the kernel).

    Parameters
    ----------
    notional : float
        Position notional ``|q| x mark``.
    floors, rates : array_like
        Tier floors (first 0) and maintenance rates.
    whole : bool
        Whole-position form ``N x rate_k`` (no deductions).

    Returns
    -------
    float
    """
    f, r, c = _deductions(floors, rates, whole)
    cdef Tiers t = _tiers(f, r, c, whole)
    return maintenance_margin(&t, notional)


def py_liquidation_price(double collateral, double size, double entry, floors, rates,
                         double ratio=1.0, bint whole=False):
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
    whole : bool
        Whole-position form ``N x rate_k``: the price is then the highest price that
        liquidates a long (which a rise into a tier of a higher rate can do), the lowest that
        liquidates a short.

    Returns
    -------
    float
        The price; ``-inf`` when no positive price liquidates a long.
    """
    f, r, c = _deductions(floors, rates, whole)
    cdef Tiers t = _tiers(f, r, c, whole)
    return liquidation_price(&t, collateral, size, entry, ratio)


def py_bankruptcy_price(double collateral, double size, double entry):
    """Price where the equity ``collateral + size (P - entry)`` is zero (wrapper of the kernel).

    Parameters
    ----------
    collateral : float
        Margin backing the position (isolated margin, or cross wallet plus other uPnL).
    size : float
        Signed position size.
    entry : float
        Entry price.

    Returns
    -------
    float
        ``entry - collateral / size``; NaN for a flat position.
    """
    return bankruptcy_price(collateral, size, entry)


def py_binance_liquidation_price(double wallet, double other_mm, double other_upnl,
                                 double both_size, double both_entry,
                                 double long_size, double long_entry,
                                 double short_size, double short_entry,
                                 floors, rates, int max_iter=64):
    """Binance USD-M liquidation price of one symbol with bracket iteration (wrapper).

    Parameters
    ----------
    wallet : float
        ``WB``: cross wallet balance, or the isolated margin.
    other_mm, other_upnl : float
        ``TMM1``, ``UPNL1``: maintenance margin and uPnL of all other contracts (0 isolated).
    both_size, both_entry : float
        One-way (BOTH) position: signed size and entry price (size 0 if none).
    long_size, long_entry, short_size, short_entry : float
        Hedge-mode LONG and SHORT legs: absolute sizes and entry prices (size 0 if none).
    floors, rates : array_like
        Bracket floors (first 0) and maintenance margin rates.
    max_iter : int
        Solves allowed to the bracket iteration before the segment walk (0: walk only).

    Returns
    -------
    tuple of (float, int)
        The price, and the number of solves of the bracket iteration (-1: segment walk).
    """
    cdef SymbolPositions p
    cdef int iterations = 0
    f, r, c = _deductions(floors, rates)
    cdef Tiers t = _tiers(f, r, c)
    p.both_size = both_size
    p.both_entry = both_entry
    p.long_size = long_size
    p.long_entry = long_entry
    p.short_size = short_size
    p.short_entry = short_entry
    price = binance_liquidation_price(&t, wallet, other_mm, other_upnl, &p, max_iter, &iterations)
    return price, iterations


def py_hyperliquid_liquidation_price(double margin, double size, double price, floors, rates,
                                     double other_mm=0.0, double ratio=1.0):
    """Hyperliquid liquidation price by the documented formula with tier iteration (wrapper).

    Parameters
    ----------
    margin : float
        Account value (cross) or isolated margin, measured at ``price``.
    size : float
        Signed position size.
    price : float
        Mark price at which ``margin`` is measured.
    floors, rates : array_like
        Tier floors (first 0) and maintenance rates (``1 / MAINTENANCE_LEVERAGE``).
    other_mm : float
        Maintenance margin of the other cross positions (0 isolated).
    ratio : float
        Share of maintenance margin (1: liquidation, 2/3: backstop).

    Returns
    -------
    tuple of (float, int)
        The price, and the number of solves of the tier iteration (-1: closed-form fallback).
    """
    cdef int iterations = 0
    f, r, c = _deductions(floors, rates)
    cdef Tiers t = _tiers(f, r, c)
    out = hyperliquid_liquidation_price(&t, margin, size, price, other_mm, ratio, &iterations)
    return out, iterations


def py_dydx_isolated_liquidation_price(double equity, double size, double oracle, double mmf):
    """dYdX v4 isolated liquidation price ``(e - s p) / (|s| MMF - s)`` (wrapper).

    Parameters
    ----------
    equity : float
        Equity ``e`` of the isolated subaccount at ``oracle``.
    size : float
        Signed position size ``s``.
    oracle : float
        Oracle price ``p``.
    mmf : float
        Maintenance margin fraction.

    Returns
    -------
    float
    """
    return dydx_isolated_liquidation_price(equity, size, oracle, mmf)
