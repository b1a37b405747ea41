from riskengine._typedefs cimport float64_t, i32, i64, i8

cdef enum:
    MAX_COLUMNS = 16

cdef struct Column:
    char* data
    size_t item
    size_t mapped             # bytes mapped for data (mmap, grown by mremap); 0: malloc'ed

cdef struct ColumnLog:
    # Growable struct-of-arrays table: one C buffer per column, item sizes fixed at init.
    # The event log and the sampled series are both ColumnLogs whose column order and dtypes
    # are riskengine.runlog.EVENT_COLUMNS / SERIES_COLUMNS.
    Column cols[MAX_COLUMNS]
    Py_ssize_t ncols
    Py_ssize_t n
    Py_ssize_t cap
    Py_ssize_t max_rows       # budget: pushing row max_rows + 1 raises MemoryError (0: none)

cdef int log_init(ColumnLog* log, const size_t* items, Py_ssize_t ncols,
                  Py_ssize_t cap, Py_ssize_t max_rows) except -1 nogil
cdef void log_free(ColumnLog* log) noexcept nogil
cdef dict log_to_numpy(ColumnLog* log, object columns)
cdef int events_push(ColumnLog* log, i64 ts, i64 tick, i32 round, i8 kind, i64 account,
                     i32 instrument, i64 counterparty, float64_t size, float64_t price, float64_t fee,
                     float64_t amount, float64_t equity_after,
                     float64_t fund_after) except -1 nogil
cdef void events_merge(ColumnLog* log, Py_ssize_t row, i64 counterparty, i64 mixed, float64_t size,
                       float64_t notional, float64_t amount, float64_t equity_after,
                       float64_t fund_after) noexcept nogil
cdef int series_push(ColumnLog* log, i64 ts, i32 instrument, float64_t tape_price, float64_t sim_price,
                     float64_t mark, float64_t fund, float64_t vault_equity,
                     float64_t long_oi, float64_t short_oi, i64 cum_liquidations,
                     float64_t cum_liquidated_notional, i64 cum_adl_fills,
                     float64_t cum_adl_notional) except -1 nogil
