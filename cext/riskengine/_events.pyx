"""The event log and the sampled series: growable C buffers filled inside the nogil loop and
handed over to NumPy arrays without a copy at the end (then Arrow tables, ``riskengine.runlog``).

Column order and dtypes are defined once, in ``riskengine.runlog``; :func:`column_items`
turns them into the item sizes the buffers are built with, and the two ``*_push`` functions
write the columns in that order (``tests/test_codes.py`` checks the dtypes agree).
:c:func:`events_merge` adds a later fill into a row already written (the weighted ADL
policies' one row per account per series interval, ``_engine._adl_fill``).
"""

import numpy as np

cimport numpy as cnp
from cpython.pycapsule cimport (
    PyCapsule_Destructor, PyCapsule_GetContext, PyCapsule_GetPointer, PyCapsule_New,
    PyCapsule_SetContext,
)
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

cnp.import_array()

from riskengine._typedefs cimport float64_t, i32, i64, i8


cdef extern from *:
    """
    #include <sys/mman.h>
    /* Anonymous memory for a large column: mapped, and grown by moving its pages (mremap on
       Linux), not by copying them. NULL when the system refuses. */
    static void* re_map(size_t bytes) {
        void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    static void* re_remap(void* p, size_t old_bytes, size_t bytes) {
    #if defined(__linux__)
        void* q = mremap(p, old_bytes, bytes, MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    #else
        (void)p; (void)old_bytes; (void)bytes;
        return NULL;
    #endif
    }
    static void re_unmap(void* p, size_t bytes) { munmap(p, bytes); }
    """
    void* re_map(size_t bytes) nogil
    void* re_remap(void* p, size_t old_bytes, size_t bytes) nogil
    void re_unmap(void* p, size_t bytes) nogil


# a column of this many bytes or more is mapped: growing it moves no data and faults no page
# again (a realloc'ed one below glibc's mmap threshold, up to 32 MiB, is copied at each
# doubling: a fifth of a 1M-account portfolio crash went to growing its 629k-row log)
cdef size_t MAP_FROM = 1 << 20


cdef struct Mapping:
    size_t bytes


def column_items(columns):
    """Item size in bytes of each ``(name, dtype, description)`` column."""
    return np.array([np.dtype(dtype).itemsize for _, dtype, _ in columns], dtype=np.uintp)


cdef char* _grow(Column* col, Py_ssize_t rows, Py_ssize_t cap) noexcept nogil:
    """Column ``col`` with room for ``cap`` rows, its first ``rows`` kept (NULL: no memory)."""
    cdef size_t bytes = cap * col.item
    cdef char* p
    if bytes < MAP_FROM and not col.mapped:
        return <char*>realloc(col.data, bytes)
    if col.mapped:
        p = <char*>re_remap(col.data, col.mapped, bytes)
        if p != NULL:
            col.mapped = bytes
            return p
    p = <char*>re_map(bytes)
    if p == NULL:
        return NULL
    if rows > 0:
        memcpy(p, col.data, rows * col.item)
    if col.mapped:
        re_unmap(col.data, col.mapped)
    else:
        free(col.data)
    col.mapped = bytes
    return p


cdef void _release(Column* col) noexcept nogil:
    if col.mapped:
        re_unmap(col.data, col.mapped)
    else:
        free(col.data)
    col.data = NULL
    col.mapped = 0


cdef int _reserve(ColumnLog* log, Py_ssize_t cap) except -1 nogil:
    cdef Py_ssize_t c
    cdef char* p
    for c in range(log.ncols):
        p = _grow(&log.cols[c], log.n, cap)
        if p == NULL:
            with gil:
                raise MemoryError(f"event log: out of memory growing to {cap} rows")
        log.cols[c].data = p
    log.cap = cap
    return 0


cdef int log_init(ColumnLog* log, const size_t* items, Py_ssize_t ncols,
                  Py_ssize_t cap, Py_ssize_t max_rows) except -1 nogil:
    """An empty log; ``max_rows`` > 0 is a budget: the push of one row more raises
    ``MemoryError`` (a clear failure instead of the OOM killer, ``riskengine.engine``)."""
    cdef Py_ssize_t c
    if ncols > MAX_COLUMNS:
        with gil:
            raise ValueError(f"event log: at most {MAX_COLUMNS} columns (got {ncols})")
    log.ncols = ncols
    log.n = 0
    log.cap = 0
    log.max_rows = max_rows
    if cap < 64:
        cap = 64
    if max_rows > 0 and cap > max_rows:
        cap = max_rows
    for c in range(ncols):
        log.cols[c].data = NULL
        log.cols[c].item = items[c]
        log.cols[c].mapped = 0
    return _reserve(log, cap)


cdef void log_free(ColumnLog* log) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(log.ncols):
        _release(&log.cols[c])
    log.n = 0
    log.cap = 0


cdef int _over_budget(ColumnLog* log) except -1 nogil:
    cdef size_t row = 0
    cdef Py_ssize_t c
    for c in range(log.ncols):
        row += log.cols[c].item
    with gil:
        raise MemoryError(f"the event log passed its budget of {log.max_rows:,} rows "
                          f"({log.max_rows * row / 1e9:.1f} GB at {row} bytes a row)")


cdef inline Py_ssize_t _next_row(ColumnLog* log) except -1 nogil:
    cdef Py_ssize_t cap
    if log.n == log.cap:
        cap = 2 * log.cap
        if log.max_rows > 0:
            if log.n >= log.max_rows:
                _over_budget(log)
            if cap > log.max_rows:
                cap = log.max_rows
        _reserve(log, cap)
    log.n += 1
    return log.n - 1


cdef void _free_buffer(object capsule) noexcept:
    cdef Mapping* m = <Mapping*>PyCapsule_GetContext(capsule)
    if m != NULL:
        re_unmap(PyCapsule_GetPointer(capsule, NULL), m.bytes)
        free(m)
    else:
        free(PyCapsule_GetPointer(capsule, NULL))


cdef dict log_to_numpy(ColumnLog* log, object columns):
    """Each column becomes a NumPy array that owns the C buffer (no copy); the log keeps
    nothing afterwards."""
    cdef Py_ssize_t c = 0
    cdef cnp.npy_intp dims[1]
    cdef void* data
    cdef Mapping* m
    dims[0] = log.n
    out = {}
    for name, dtype, _ in columns:
        if log.n == 0:
            out[name] = np.empty(0, dtype=dtype)
            c += 1
            continue
        m = NULL
        if log.cols[c].mapped:  # (its spare room was never touched: it holds no memory)
            data = log.cols[c].data
            m = <Mapping*>malloc(sizeof(Mapping))
            if m == NULL:
                raise MemoryError("event log: out of memory")
            m.bytes = log.cols[c].mapped
        else:
            data = realloc(log.cols[c].data, log.n * log.cols[c].item)  # give back the spare room
            if data == NULL:
                data = log.cols[c].data
        arr = cnp.PyArray_SimpleNewFromData(1, dims, np.dtype(dtype).num, data)
        capsule = PyCapsule_New(data, NULL, <PyCapsule_Destructor>_free_buffer)
        if m != NULL:
            PyCapsule_SetContext(capsule, m)
        log.cols[c].data = NULL
        log.cols[c].mapped = 0
        cnp.set_array_base(arr, capsule)
        out[name] = arr
        c += 1
    return out


cdef int events_push(ColumnLog* log, i64 ts, i64 tick, i32 round, i8 kind, i64 account,
                     i32 instrument, i64 counterparty, float64_t size, float64_t price, float64_t fee,
                     float64_t amount, float64_t equity_after,
                     float64_t fund_after) except -1 nogil:
    cdef Py_ssize_t j = _next_row(log)
    (<i64*>log.cols[0].data)[j] = ts
    (<i64*>log.cols[1].data)[j] = tick
    (<i32*>log.cols[2].data)[j] = round
    (<i8*>log.cols[3].data)[j] = kind
    (<i64*>log.cols[4].data)[j] = account
    (<i32*>log.cols[5].data)[j] = instrument
    (<i64*>log.cols[6].data)[j] = counterparty
    (<float64_t*>log.cols[7].data)[j] = size
    (<float64_t*>log.cols[8].data)[j] = price
    (<float64_t*>log.cols[9].data)[j] = (size if size >= 0.0 else -size) * price
    (<float64_t*>log.cols[10].data)[j] = fee
    (<float64_t*>log.cols[11].data)[j] = amount
    (<float64_t*>log.cols[12].data)[j] = equity_after
    (<float64_t*>log.cols[13].data)[j] = fund_after
    return 0


cdef void events_merge(ColumnLog* log, Py_ssize_t row, i64 counterparty, i64 mixed, float64_t size,
                       float64_t notional, float64_t amount, float64_t equity_after,
                       float64_t fund_after) noexcept nogil:
    """Add a fill of ``size`` (same sign as the row's) worth ``notional`` to row ``row``: size,
    notional and amount are summed, the price becomes the volume-weighted price
    ``notional / |size|``, the state columns take the values after this fill, and the
    counterparty becomes ``mixed`` unless it is the row's."""
    cdef float64_t* sizes = <float64_t*>log.cols[7].data
    cdef float64_t* notionals = <float64_t*>log.cols[9].data
    cdef i64* counterparties = <i64*>log.cols[6].data
    cdef float64_t total
    if counterparties[row] != counterparty:
        counterparties[row] = mixed
    sizes[row] += size
    notionals[row] += notional
    total = sizes[row] if sizes[row] >= 0.0 else -sizes[row]
    (<float64_t*>log.cols[8].data)[row] = notionals[row] / total
    (<float64_t*>log.cols[11].data)[row] += amount
    (<float64_t*>log.cols[12].data)[row] = equity_after
    (<float64_t*>log.cols[13].data)[row] = fund_after


cdef int series_push(ColumnLog* log, i64 ts, i32 instrument, float64_t tape_price,
                     float64_t sim_price, float64_t mark, float64_t fund, float64_t vault_equity,
                     float64_t long_oi, float64_t short_oi, i64 cum_liquidations,
                     float64_t cum_liquidated_notional, i64 cum_adl_fills,
                     float64_t cum_adl_notional) except -1 nogil:
    cdef Py_ssize_t j = _next_row(log)
    (<i64*>log.cols[0].data)[j] = ts
    (<i32*>log.cols[1].data)[j] = instrument
    (<float64_t*>log.cols[2].data)[j] = tape_price
    (<float64_t*>log.cols[3].data)[j] = sim_price
    (<float64_t*>log.cols[4].data)[j] = mark
    (<float64_t*>log.cols[5].data)[j] = fund
    (<float64_t*>log.cols[6].data)[j] = vault_equity
    (<float64_t*>log.cols[7].data)[j] = long_oi
    (<float64_t*>log.cols[8].data)[j] = short_oi
    (<i64*>log.cols[9].data)[j] = cum_liquidations
    (<float64_t*>log.cols[10].data)[j] = cum_liquidated_notional
    (<i64*>log.cols[11].data)[j] = cum_adl_fills
    (<float64_t*>log.cols[12].data)[j] = cum_adl_notional
    return 0
