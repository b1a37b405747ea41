from libc.math cimport INFINITY, fabs

from riskengine._typedefs cimport float64_t

cdef struct Tiers:
    # Tiered maintenance margin: MM(N) = N * rates[k] - cums[k], k the tier holding N.
    # whole: the whole-position form (cums all 0, a step at each floor), which the
    # liquidation-price solver must know (the schedule is not continuous).
    const float64_t* floors
    const float64_t* rates
    const float64_t* cums
    Py_ssize_t n
    bint whole

cdef float64_t maintenance_margin(const Tiers* tiers, float64_t notional) noexcept nogil
cdef float64_t step_liquidation_price(const Tiers* tiers, float64_t col, float64_t pos,
                                      float64_t entry, float64_t ratio) noexcept nogil
cdef bint crosses(const Tiers* tiers, float64_t col, float64_t pos, float64_t entry,
                  float64_t mark) noexcept nogil

# --- calculators (riskengine.calculators is the public Python API over these) ---

cdef struct SymbolPositions:
    # The positions of one Binance USD-M symbol: one-way (BOTH, signed size) or hedge mode
    # (LONG and SHORT, absolute sizes). Unused legs have size 0.
    float64_t both_size
    float64_t both_entry
    float64_t long_size
    float64_t long_entry
    float64_t short_size
    float64_t short_entry

cdef Py_ssize_t tier_index(const Tiers* tiers, float64_t notional) noexcept nogil
cdef float64_t bankruptcy_price(float64_t col, float64_t pos, float64_t entry) noexcept nogil
cdef float64_t binance_liquidation_price(const Tiers* tiers, float64_t wallet, float64_t other_mm,
                                         float64_t other_upnl, const SymbolPositions* pos,
                                         int max_iter, int* iterations) noexcept nogil
cdef float64_t hyperliquid_liquidation_price(const Tiers* tiers, float64_t margin, float64_t pos,
                                             float64_t price, float64_t other_mm, float64_t ratio,
                                             int* iterations) noexcept nogil
cdef float64_t dydx_isolated_liquidation_price(float64_t equity, float64_t pos, float64_t oracle,
                                               float64_t mmf) noexcept nogil


cdef inline float64_t liquidation_price(const Tiers* tiers, float64_t col, float64_t pos,
                                 float64_t entry, float64_t ratio) noexcept nogil:
    """Price at which equity equals ``ratio`` x the tiered maintenance margin.

    ``ratio = 1`` gives the liquidation price (Binance's bracket iteration: the MMR and
    maintenance amount are those of the tier holding the notional *at* that price; Hyperliquid's
    ``l`` is "of the tier at the liquidation price"), ``ratio = 2/3`` Hyperliquid's backstop
    price. ``E(P) - ratio MM(|q| P)`` is continuous and monotone in ``P`` (increasing for a long,
    decreasing for a short, since every rate is < 1), so the root lies in the first tier
    whose upper price boundary is past it. Returns -inf for a long that no positive price
    liquidates and +inf for a flat position. The whole-position form (``tiers.whole``) is not
    continuous: :c:func:`step_liquidation_price`. Inline: the index build solves it for every
    account.
    """
    cdef float64_t size = fabs(pos)
    cdef float64_t upper, f
    cdef Py_ssize_t k
    if pos == 0.0:
        return INFINITY
    if tiers.whole:
        return step_liquidation_price(tiers, col, pos, entry, ratio)
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
