from riskengine._typedefs cimport float64_t, i64

cdef struct MarkState:
    int method
    float64_t tau_ns
    float64_t num
    float64_t den
    float64_t mark

cdef void ema_update(MarkState* st, float64_t sample, float64_t weight) noexcept nogil
cdef float64_t mark_update(MarkState* st, float64_t sim_price, float64_t stream_value,
                           i64 dt) noexcept nogil
cdef float64_t mark_refresh(MarkState* st, float64_t sim_price) noexcept nogil
