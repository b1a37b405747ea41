"""The liquidation index: finds the accounts a mark price crosses without scanning them all.

Per side, a binary max-heap (struct of arrays) holds each ACTIVE account keyed by the price
at which it falls below maintenance margin (its liquidation price, which does not depend on
the mark for a one-instrument account). A long crosses when the mark is at or below its key,
a short when the mark is at or above it, so a tick where nothing crosses costs one compare
per side. Keys are padded outward by ~1e-9 relative so that floating-point error in the root
can only produce a false candidate, never a missed one; the engine re-checks every candidate
with the exact test (``_margin.crosses``). Entries carry the account's version: an account
whose collateral or position changes is re-keyed by pushing a new entry, and stale entries
are dropped lazily when they reach the top (see reference §2.3 of peers-and-style: Liquity's
sorted troves, dexextra's cached bounds).
"""

import numpy as np
from libc.math cimport fabs
from libc.stdlib cimport free, malloc, realloc

from riskengine._typedefs cimport float64_t, i64

cdef float64_t KEY_PAD = 1e-9


cdef inline bint _above(const KeyHeap* h, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # strict priority of entry a over b: higher key, then lower id
    if h.keys[a] != h.keys[b]:
        return h.keys[a] > h.keys[b]
    return h.ids[a] < h.ids[b]


cdef inline void _swap(KeyHeap* h, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef float64_t k = h.keys[a]
    cdef i64 i = h.ids[a]
    cdef i64 v = h.versions[a]
    h.keys[a] = h.keys[b]
    h.ids[a] = h.ids[b]
    h.versions[a] = h.versions[b]
    h.keys[b] = k
    h.ids[b] = i
    h.versions[b] = v


cdef inline void _sift_down(KeyHeap* h, Py_ssize_t pos) noexcept nogil:
    cdef Py_ssize_t child, best
    while True:
        child = 2 * pos + 1
        if child >= h.size:
            return
        best = child
        if child + 1 < h.size and _above(h, child + 1, child):
            best = child + 1
        if not _above(h, best, pos):
            return
        _swap(h, best, pos)
        pos = best


cdef int _reserve(KeyHeap* h, Py_ssize_t cap) except -1 nogil:
    cdef float64_t* keys
    cdef i64* ids
    cdef i64* versions
    if cap <= h.cap:
        return 0
    keys = <float64_t*>realloc(h.keys, cap * sizeof(float64_t))
    if keys == NULL:
        with gil:
            raise MemoryError("liquidation index: out of memory")
    h.keys = keys
    ids = <i64*>realloc(h.ids, cap * sizeof(i64))
    if ids == NULL:
        with gil:
            raise MemoryError("liquidation index: out of memory")
    h.ids = ids
    versions = <i64*>realloc(h.versions, cap * sizeof(i64))
    if versions == NULL:
        with gil:
            raise MemoryError("liquidation index: out of memory")
    h.versions = versions
    h.cap = cap
    return 0


cdef int heap_init(KeyHeap* h, Py_ssize_t cap) except -1 nogil:
    h.keys = NULL
    h.ids = NULL
    h.versions = NULL
    h.size = 0
    h.cap = 0
    return _reserve(h, cap if cap > 16 else 16)


cdef void heap_free(KeyHeap* h) noexcept nogil:
    free(h.keys)
    free(h.ids)
    free(h.versions)
    h.keys = NULL
    h.ids = NULL
    h.versions = NULL
    h.size = 0
    h.cap = 0


cdef int heap_push(KeyHeap* h, float64_t key, i64 id, i64 version) except -1 nogil:
    cdef Py_ssize_t pos, parent
    if h.size == h.cap:
        _reserve(h, 2 * h.cap)
    pos = h.size
    h.keys[pos] = key
    h.ids[pos] = id
    h.versions[pos] = version
    h.size += 1
    while pos > 0:
        parent = (pos - 1) // 2
        if not _above(h, pos, parent):
            break
        _swap(h, pos, parent)
        pos = parent
    return 0


cdef void heap_pop(KeyHeap* h, float64_t* key, i64* id, i64* version) noexcept nogil:
    key[0] = h.keys[0]
    id[0] = h.ids[0]
    version[0] = h.versions[0]
    h.size -= 1
    if h.size > 0:
        h.keys[0] = h.keys[h.size]
        h.ids[0] = h.ids[h.size]
        h.versions[0] = h.versions[h.size]
        _sift_down(h, 0)


cdef int heapify_from(KeyHeap* h, const float64_t* keys, const i64* ids,
                      const i64* versions, Py_ssize_t n) except -1 nogil:
    """Bulk-load n entries in O(n) (Floyd's heap construction)."""
    cdef Py_ssize_t i
    _reserve(h, n + n // 4 + 16)
    for i in range(n):
        h.keys[i] = keys[i]
        h.ids[i] = ids[i]
        h.versions[i] = versions[i]
    h.size = n
    i = n // 2
    while i > 0:
        i -= 1
        _sift_down(h, i)
    return 0


cdef int index_init(LiqIndex* ix, Py_ssize_t cap) except -1 nogil:
    heap_init(&ix.longs, cap)
    heap_init(&ix.shorts, cap)
    return 0


cdef void index_free(LiqIndex* ix) noexcept nogil:
    heap_free(&ix.longs)
    heap_free(&ix.shorts)


cdef float64_t trigger_key(float64_t liq_price, float64_t pos, float64_t entry) noexcept nogil:
    """Heap key of an account: its liquidation price padded outward (shorts negated)."""
    cdef float64_t pad = KEY_PAD * (fabs(liq_price) + fabs(entry))
    if pos > 0.0:
        return liq_price + pad
    return -(liq_price - pad)


def py_heap_order(keys):
    """Push ``keys`` (ids 0..n-1) one by one and pop them all: the ids in priority order.

    A test wrapper for the heap kernel (highest key first, ties by lower id).
    """
    cdef KeyHeap h
    cdef float64_t k
    cdef i64 i, v
    cdef Py_ssize_t n = len(keys)
    out = np.empty(n, dtype=np.int64)
    heap_init(&h, 16)
    try:
        for j in range(n):
            heap_push(&h, keys[j], j, 0)
        for j in range(n):
            heap_pop(&h, &k, &i, &v)
            out[j] = i
    finally:
        heap_free(&h)
    return out
