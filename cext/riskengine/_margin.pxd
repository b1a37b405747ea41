from riskengine._typedefs cimport float64_t

cdef struct Tiers:
    # Tiered maintenance margin: MM(N) = N * rates[k] - cums[k], k the tier holding N.
    const float64_t* floors
    const float64_t* rates
    const float64_t* cums
    Py_ssize_t n

cdef float64_t maintenance_margin(const Tiers* tiers, float64_t notional) noexcept nogil
cdef float64_t liquidation_price(const Tiers* tiers, float64_t col, float64_t pos,
                                 float64_t entry, float64_t ratio) noexcept nogil
cdef bint crosses(const Tiers* tiers, float64_t col, float64_t pos, float64_t entry,
                  float64_t mark) noexcept nogil
