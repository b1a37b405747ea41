from riskengine._adl cimport AdlParams
from riskengine._events cimport ColumnLog
from riskengine._index cimport KeyHeap, LiqIndex
from riskengine._liquidity cimport ConstantDepth
from riskengine._margin cimport Tiers
from riskengine._mark cimport MarkState
from riskengine._typedefs cimport float64_t, i32, i64, i8

cdef struct Params:
    # Mirrors riskengine.params.EngineParams (times in ns, money in quote currency).
    float64_t liq_fee_rate
    float64_t partial_fraction
    float64_t partial_threshold
    i64 partial_cooldown_ns
    i64 max_liqs_per_step
    i64 latency_ns
    float64_t fund_initial
    float64_t backstop_ratio
    float64_t vault_initial
    i64 vault_unwind_interval_ns
    float64_t vault_unwind_fraction
    float64_t vault_loss_limit
    int adl_price
    bint adl_on_negative_equity
    i64 series_interval_ns
    i64 adl_rank_interval_ns

cdef struct Engine:
    Params p
    Tiers tiers
    AdlParams adl
    ConstantDepth book
    MarkState mark
    # tape (borrowed, read-only)
    const i64* ts
    const float64_t* px
    const float64_t* stream
    Py_ssize_t n_ticks
    # accounts: struct of arrays, n + 1 entries (the backstop vault is entry n)
    float64_t* col
    float64_t* pos
    float64_t* ep
    i8* status
    i64* partial_tick
    i64* cooldown_until
    i64* version
    Py_ssize_t n
    # ledgers
    float64_t fund
    float64_t fund_min
    float64_t bad_debt
    float64_t ext_pos
    float64_t ext_cash
    float64_t long_oi
    float64_t short_oi
    i64 cum_liq
    float64_t cum_liq_notional
    i64 cum_adl
    float64_t cum_adl_notional
    i64 vault_next_unwind
    # current step
    i64 t
    i64 i
    i32 round
    float64_t tape
    # liquidation index and work queues
    LiqIndex index
    i64* pend_ids
    i64* pend_due
    Py_ssize_t pend_head
    Py_ssize_t pend_tail
    Py_ssize_t pend_cap
    i64* work_ids
    float64_t* work_vals
    float64_t* hold_keys
    i64* hold_ids
    i64* hold_vers
    i64* deferred
    Py_ssize_t n_deferred
    KeyHeap adl_rank[2]       # ranked ADL queue snapshots: [0] longs, [1] shorts
    i64 adl_rank_time[2]
    bint adl_rank_built[2]
    ColumnLog log
    ColumnLog series
