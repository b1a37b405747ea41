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
cdef float64_t liquidation_price(const Tiers* tiers, float64_t col, float64_t pos,
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
