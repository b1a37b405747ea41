from riskengine._typedefs cimport float64_t, i64

cdef struct Ema:
    # Hyperliquid-style time-weighted EMA accumulators; den == 0 means empty.
    float64_t tau_ns
    float64_t num
    float64_t den

cdef struct MarkState:
    int method
    Ema basis      # EMA of (sim - index), or of sim for the EMA method
    Ema last       # 30 s EMA of sim (Hyperliquid's fallback input)
    float64_t index
    float64_t mark

cdef float64_t ema_update(Ema* st, float64_t sample, float64_t weight) noexcept nogil
cdef float64_t mark_update(MarkState* st, float64_t sim_price, float64_t stream_value,
                           i64 dt) noexcept nogil
cdef float64_t mark_refresh(MarkState* st, float64_t sim_price) noexcept nogil
