# Mark-price calculators (riskengine.calculators is the public Python API over these).
from riskengine._typedefs cimport float64_t

cdef float64_t median3(float64_t a, float64_t b, float64_t c) noexcept nogil
cdef float64_t weighted_median(const float64_t* values, const float64_t* weights,
                               Py_ssize_t n) noexcept nogil
cdef float64_t hyperliquid_mark(float64_t oracle, float64_t basis_ema, float64_t bid,
                                float64_t ask, float64_t last, const float64_t* perp_mids,
                                const float64_t* perp_weights, Py_ssize_t n_perps,
                                float64_t fallback_ema) noexcept nogil
cdef float64_t binance_coinm_mark(float64_t index, float64_t funding_rate,
                                  float64_t time_to_funding, float64_t funding_interval,
                                  float64_t ma_basis, float64_t last) noexcept nogil
