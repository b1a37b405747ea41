"""The event log and the sampled series: growable C buffers filled inside the nogil loop and
copied out once into NumPy arrays (then one Arrow table, ``riskengine.runlog``)."""

import numpy as np
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

from riskengine._typedefs cimport float64_t, i32, i64, i8


cdef int _grow(void** buf, Py_ssize_t cap, size_t item) except -1 nogil:
    cdef void* p = realloc(buf[0], cap * item)
    if p == NULL:
        with gil:
            raise MemoryError("event log: out of memory")
    buf[0] = p
    return 0


cdef int _events_reserve(EventLog* log, Py_ssize_t cap) except -1 nogil:
    _grow(<void**>&log.ts, cap, sizeof(i64))
    _grow(<void**>&log.tick, cap, sizeof(i64))
    _grow(<void**>&log.round, cap, sizeof(i32))
    _grow(<void**>&log.kind, cap, sizeof(i8))
    _grow(<void**>&log.account, cap, sizeof(i64))
    _grow(<void**>&log.counterparty, cap, sizeof(i64))
    _grow(<void**>&log.size, cap, sizeof(float64_t))
    _grow(<void**>&log.price, cap, sizeof(float64_t))
    _grow(<void**>&log.notional, cap, sizeof(float64_t))
    _grow(<void**>&log.fee, cap, sizeof(float64_t))
    _grow(<void**>&log.amount, cap, sizeof(float64_t))
    _grow(<void**>&log.equity_after, cap, sizeof(float64_t))
    _grow(<void**>&log.fund_after, cap, sizeof(float64_t))
    log.cap = cap
    return 0


cdef int events_init(EventLog* log, Py_ssize_t cap) except -1 nogil:
    log.ts = NULL
    log.tick = NULL
    log.round = NULL
    log.kind = NULL
    log.account = NULL
    log.counterparty = NULL
    log.size = NULL
    log.price = NULL
    log.notional = NULL
    log.fee = NULL
    log.amount = NULL
    log.equity_after = NULL
    log.fund_after = NULL
    log.n = 0
    log.cap = 0
    return _events_reserve(log, cap if cap > 64 else 64)


cdef void events_free(EventLog* log) noexcept nogil:
    free(log.ts)
    free(log.tick)
    free(log.round)
    free(log.kind)
    free(log.account)
    free(log.counterparty)
    free(log.size)
    free(log.price)
    free(log.notional)
    free(log.fee)
    free(log.amount)
    free(log.equity_after)
    free(log.fund_after)
    log.n = 0
    log.cap = 0


cdef int events_push(EventLog* log, i64 ts, i64 tick, i32 round, i8 kind, i64 account,
                     i64 counterparty, float64_t size, float64_t price, float64_t fee,
                     float64_t amount, float64_t equity_after,
                     float64_t fund_after) except -1 nogil:
    cdef Py_ssize_t j = log.n
    if j == log.cap:
        _events_reserve(log, 2 * log.cap)
    log.ts[j] = ts
    log.tick[j] = tick
    log.round[j] = round
    log.kind[j] = kind
    log.account[j] = account
    log.counterparty[j] = counterparty
    log.size[j] = size
    log.price[j] = price
    log.notional[j] = (size if size >= 0.0 else -size) * price
    log.fee[j] = fee
    log.amount[j] = amount
    log.equity_after[j] = equity_after
    log.fund_after[j] = fund_after
    log.n = j + 1
    return 0


cdef object _copy(void* src, Py_ssize_t n, object dtype):
    out = np.empty(n, dtype=dtype)
    if n:
        memcpy(<void*><size_t>out.ctypes.data, src, n * out.itemsize)
    return out


cdef dict events_to_numpy(EventLog* log):
    cdef Py_ssize_t n = log.n
    return {
        "ts": _copy(log.ts, n, np.int64),
        "tick": _copy(log.tick, n, np.int64),
        "round": _copy(log.round, n, np.int32),
        "kind": _copy(log.kind, n, np.int8),
        "account": _copy(log.account, n, np.int64),
        "counterparty": _copy(log.counterparty, n, np.int64),
        "size": _copy(log.size, n, np.float64),
        "price": _copy(log.price, n, np.float64),
        "notional": _copy(log.notional, n, np.float64),
        "fee": _copy(log.fee, n, np.float64),
        "amount": _copy(log.amount, n, np.float64),
        "equity_after": _copy(log.equity_after, n, np.float64),
        "fund_after": _copy(log.fund_after, n, np.float64),
    }


cdef int _series_reserve(SeriesLog* s, Py_ssize_t cap) except -1 nogil:
    _grow(<void**>&s.ts, cap, sizeof(i64))
    _grow(<void**>&s.tape_price, cap, sizeof(float64_t))
    _grow(<void**>&s.sim_price, cap, sizeof(float64_t))
    _grow(<void**>&s.mark, cap, sizeof(float64_t))
    _grow(<void**>&s.fund, cap, sizeof(float64_t))
    _grow(<void**>&s.vault_equity, cap, sizeof(float64_t))
    _grow(<void**>&s.long_oi, cap, sizeof(float64_t))
    _grow(<void**>&s.short_oi, cap, sizeof(float64_t))
    _grow(<void**>&s.cum_liquidations, cap, sizeof(i64))
    _grow(<void**>&s.cum_liquidated_notional, cap, sizeof(float64_t))
    _grow(<void**>&s.cum_adl_fills, cap, sizeof(i64))
    _grow(<void**>&s.cum_adl_notional, cap, sizeof(float64_t))
    s.cap = cap
    return 0


cdef int series_init(SeriesLog* s, Py_ssize_t cap) except -1 nogil:
    s.ts = NULL
    s.tape_price = NULL
    s.sim_price = NULL
    s.mark = NULL
    s.fund = NULL
    s.vault_equity = NULL
    s.long_oi = NULL
    s.short_oi = NULL
    s.cum_liquidations = NULL
    s.cum_liquidated_notional = NULL
    s.cum_adl_fills = NULL
    s.cum_adl_notional = NULL
    s.n = 0
    s.cap = 0
    return _series_reserve(s, cap if cap > 64 else 64)


cdef void series_free(SeriesLog* s) noexcept nogil:
    free(s.ts)
    free(s.tape_price)
    free(s.sim_price)
    free(s.mark)
    free(s.fund)
    free(s.vault_equity)
    free(s.long_oi)
    free(s.short_oi)
    free(s.cum_liquidations)
    free(s.cum_liquidated_notional)
    free(s.cum_adl_fills)
    free(s.cum_adl_notional)
    s.n = 0
    s.cap = 0


cdef int series_push(SeriesLog* s, i64 ts, float64_t tape_price, float64_t sim_price,
                     float64_t mark, float64_t fund, float64_t vault_equity,
                     float64_t long_oi, float64_t short_oi, i64 cum_liquidations,
                     float64_t cum_liquidated_notional, i64 cum_adl_fills,
                     float64_t cum_adl_notional) except -1 nogil:
    cdef Py_ssize_t j = s.n
    if j == s.cap:
        _series_reserve(s, 2 * s.cap)
    s.ts[j] = ts
    s.tape_price[j] = tape_price
    s.sim_price[j] = sim_price
    s.mark[j] = mark
    s.fund[j] = fund
    s.vault_equity[j] = vault_equity
    s.long_oi[j] = long_oi
    s.short_oi[j] = short_oi
    s.cum_liquidations[j] = cum_liquidations
    s.cum_liquidated_notional[j] = cum_liquidated_notional
    s.cum_adl_fills[j] = cum_adl_fills
    s.cum_adl_notional[j] = cum_adl_notional
    s.n = j + 1
    return 0


cdef dict series_to_numpy(SeriesLog* s):
    cdef Py_ssize_t n = s.n
    return {
        "ts": _copy(s.ts, n, np.int64),
        "tape_price": _copy(s.tape_price, n, np.float64),
        "sim_price": _copy(s.sim_price, n, np.float64),
        "mark": _copy(s.mark, n, np.float64),
        "fund": _copy(s.fund, n, np.float64),
        "vault_equity": _copy(s.vault_equity, n, np.float64),
        "long_oi": _copy(s.long_oi, n, np.float64),
        "short_oi": _copy(s.short_oi, n, np.float64),
        "cum_liquidations": _copy(s.cum_liquidations, n, np.int64),
        "cum_liquidated_notional": _copy(s.cum_liquidated_notional, n, np.float64),
        "cum_adl_fills": _copy(s.cum_adl_fills, n, np.int64),
        "cum_adl_notional": _copy(s.cum_adl_notional, n, np.float64),
    }
