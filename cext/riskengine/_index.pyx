"""The liquidation index: finds the accounts a mark price crosses without scanning them all.

Per side, a 4-ary max-heap holds each ACTIVE account keyed by the price
at which it falls below maintenance margin (its liquidation price, which does not depend on
the mark for a one-instrument account). The backstop region (equity below a fraction of
maintenance margin) lies inside the liquidation region, so this one key also finds every
account a backstop could take; the waterfall decides which applies when it is processed. A long crosses when the mark is at or below its key,
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


cdef inline bint _above(const HeapEntry* a, const HeapEntry* b) noexcept nogil:
    # strict priority of entry a over b: higher key, then lower id
    if a.key != b.key:
        return a.key > b.key
    return a.id < b.id


cdef inline void _sift_down(KeyHeap* h, Py_ssize_t pos) noexcept nogil:
    cdef HeapEntry item = h.items[pos]
    cdef Py_ssize_t first, last, best, c
    while True:
        first = 4 * pos + 1
        if first >= h.size:
            break
        last = first + 4 if first + 4 < h.size else h.size
        best = first
        for c in range(first + 1, last):
            if _above(&h.items[c], &h.items[best]):
                best = c
        if not _above(&h.items[best], &item):
            break
        h.items[pos] = h.items[best]
        pos = best
    h.items[pos] = item


cdef inline void _sift_up(KeyHeap* h, Py_ssize_t pos) noexcept nogil:
    cdef HeapEntry item = h.items[pos]
    cdef Py_ssize_t parent
    while pos > 0:
        parent = (pos - 1) // 4
        if not _above(&item, &h.items[parent]):
            break
        h.items[pos] = h.items[parent]
        pos = parent
    h.items[pos] = item


cdef int _reserve(KeyHeap* h, Py_ssize_t cap) except -1 nogil:
    cdef HeapEntry* items
    if cap <= h.cap:
        return 0
    items = <HeapEntry*>realloc(h.items, cap * sizeof(HeapEntry))
    if items == NULL:
        with gil:
            raise MemoryError("liquidation index: out of memory")
    h.items = items
    h.cap = cap
    return 0


cdef int heap_init(KeyHeap* h, Py_ssize_t cap) except -1 nogil:
    h.items = NULL
    h.size = 0
    h.cap = 0
    return _reserve(h, cap if cap > 16 else 16)


cdef void heap_free(KeyHeap* h) noexcept nogil:
    free(h.items)
    h.items = NULL
    h.size = 0
    h.cap = 0


cdef int heap_push(KeyHeap* h, float64_t key, i64 id, i64 version) except -1 nogil:
    if h.size == h.cap:
        _reserve(h, 2 * h.cap)
    h.items[h.size].key = key
    h.items[h.size].id = id
    h.items[h.size].version = version
    h.size += 1
    _sift_up(h, h.size - 1)
    return 0


cdef void heap_pop(KeyHeap* h, float64_t* key, i64* id, i64* version) noexcept nogil:
    key[0] = h.items[0].key
    id[0] = h.items[0].id
    version[0] = h.items[0].version
    h.size -= 1
    if h.size > 0:
        h.items[0] = h.items[h.size]
        _sift_down(h, 0)


cdef int heapify_from(KeyHeap* h, const float64_t* keys, const i64* ids,
                      const i64* versions, Py_ssize_t n) except -1 nogil:
    """Bulk-load n entries in O(n) (Floyd's heap construction)."""
    cdef Py_ssize_t i
    _reserve(h, n + n // 4 + 16)
    for i in range(n):
        h.items[i].key = keys[i]
        h.items[i].id = ids[i]
        h.items[i].version = versions[i]
    h.size = n
    i = (n - 2) // 4 + 1 if n > 1 else 0
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
