from riskengine._typedefs cimport float64_t, i32, i64, i8

cdef struct EventLog:
    # Growable struct-of-arrays buffers, one per column of riskengine.runlog.EVENT_COLUMNS.
    i64* ts
    i64* tick
    i32* round
    i8* kind
    i64* account
    i64* counterparty
    float64_t* size
    float64_t* price
    float64_t* notional
    float64_t* fee
    float64_t* amount
    float64_t* equity_after
    float64_t* fund_after
    Py_ssize_t n
    Py_ssize_t cap

cdef struct SeriesLog:
    # Growable buffers for riskengine.runlog.SERIES_COLUMNS.
    i64* ts
    float64_t* tape_price
    float64_t* sim_price
    float64_t* mark
    float64_t* fund
    float64_t* vault_equity
    float64_t* long_oi
    float64_t* short_oi
    i64* cum_liquidations
    float64_t* cum_liquidated_notional
    i64* cum_adl_fills
    float64_t* cum_adl_notional
    Py_ssize_t n
    Py_ssize_t cap

cdef int events_init(EventLog* log, Py_ssize_t cap) except -1 nogil
cdef void events_free(EventLog* log) noexcept nogil
cdef int events_push(EventLog* log, i64 ts, i64 tick, i32 round, i8 kind, i64 account,
                     i64 counterparty, float64_t size, float64_t price, float64_t fee,
                     float64_t amount, float64_t equity_after,
                     float64_t fund_after) except -1 nogil
cdef dict events_to_numpy(EventLog* log)

cdef int series_init(SeriesLog* s, Py_ssize_t cap) except -1 nogil
cdef void series_free(SeriesLog* s) noexcept nogil
cdef int series_push(SeriesLog* s, i64 ts, float64_t tape_price, float64_t sim_price,
                     float64_t mark, float64_t fund, float64_t vault_equity,
                     float64_t long_oi, float64_t short_oi, i64 cum_liquidations,
                     float64_t cum_liquidated_notional, i64 cum_adl_fills,
                     float64_t cum_adl_notional) except -1 nogil
cdef dict series_to_numpy(SeriesLog* s)
