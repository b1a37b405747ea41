"""The liquidation index: finds the accounts a mark price crosses without scanning them all.

Per side (:c:type:`SideIndex`), each ACTIVE account is keyed by the price
at which it falls below maintenance margin (its liquidation price, which does not depend on
the mark for a one-instrument account): the keys of the last build sit in an array sorted highest
first and consumed through a cursor, and accounts re-keyed since sit in a 4-ary heap; the
next candidate is the better of the two fronts. The backstop region (equity below a fraction of
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
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc

from riskengine._typedefs cimport float64_t, i64

cdef float64_t KEY_PAD = 1e-9
# side_build sorts fewer entries than this by qsort, more by radix
cdef Py_ssize_t QSORT_BELOW = 8192


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


cdef inline uint64_t _desc_bits(float64_t key) noexcept nogil:
    """An unsigned integer that sorts ascending as ``key`` sorts descending (-0.0 as 0.0,
    since they compare equal)."""
    cdef uint64_t u
    if key == 0.0:
        key = 0.0
    u = (<uint64_t*>&key)[0]
    if u >> 63:
        u = ~u  # negative: flip all bits
    else:
        u = u | (<uint64_t>1 << 63)  # positive: flip the sign bit
    return ~u


cdef int _cmp_entry(const void* x, const void* y) noexcept nogil:
    # qsort's order of two entries: the one _above the other first
    cdef const HeapEntry* a = <const HeapEntry*>x
    cdef const HeapEntry* b = <const HeapEntry*>y
    return -1 if _above(a, b) else (1 if _above(b, a) else 0)


cdef int side_build(SideIndex* side, const float64_t* keys, const i64* ids,
                    const i64* versions, Py_ssize_t n) except -1 nogil:
    """Replace the side's contents with these n entries (given in account-id order), sorted by
    key, highest first, ties by lower id: a stable LSD radix sort on 16-bit digits. A digit all
    keys share (the sign and exponent of prices in one range) costs one counting pass only.
    Fewer than ``QSORT_BELOW`` entries are sorted by ``qsort`` (a radix pass clears and sums
    65,536 counters: more than sorting a few thousand entries), in the same order."""
    cdef HeapEntry* a
    cdef HeapEntry* b
    cdef HeapEntry* t
    cdef Py_ssize_t* count
    cdef Py_ssize_t i, total, c
    cdef int shift
    free(side.sorted)
    side.sorted = NULL
    side.n_sorted = 0
    side.cursor = 0
    side.heap.size = 0
    if n == 0:
        return 0
    if n < QSORT_BELOW:
        a = <HeapEntry*>malloc(n * sizeof(HeapEntry))
        if a == NULL:
            with gil:
                raise MemoryError("liquidation index: out of memory")
        for i in range(n):
            a[i].key = keys[i]
            a[i].id = ids[i]
            a[i].version = versions[i]
        qsort(a, n, sizeof(HeapEntry), _cmp_entry)
        side.sorted = a
        side.n_sorted = n
        return 0
    a = <HeapEntry*>malloc(n * sizeof(HeapEntry))
    b = <HeapEntry*>malloc(n * sizeof(HeapEntry))
    count = <Py_ssize_t*>malloc(65536 * sizeof(Py_ssize_t))
    if a == NULL or b == NULL or count == NULL:
        free(a)
        free(b)
        free(count)
        with gil:
            raise MemoryError("liquidation index: out of memory")
    for i in range(n):
        a[i].key = keys[i]
        a[i].id = ids[i]
        a[i].version = versions[i]
    for shift in range(0, 64, 16):
        for c in range(65536):
            count[c] = 0
        for i in range(n):
            count[(_desc_bits(a[i].key) >> shift) & 0xFFFF] += 1
        if count[(_desc_bits(a[0].key) >> shift) & 0xFFFF] == n:
            continue  # every key has this digit: the order stays as it is
        total = 0
        for c in range(65536):
            total += count[c]
            count[c] = total - count[c]
        for i in range(n):
            c = (_desc_bits(a[i].key) >> shift) & 0xFFFF
            b[count[c]] = a[i]
            count[c] += 1
        t = a
        a = b
        b = t
    free(b)
    free(count)
    side.sorted = a
    side.n_sorted = n
    return 0


cdef int side_push(SideIndex* side, float64_t key, i64 id, i64 version) except -1 nogil:
    return heap_push(&side.heap, key, id, version)


cdef void side_pop(SideIndex* side, float64_t* key, i64* id, i64* version) noexcept nogil:
    cdef const HeapEntry* x
    if side.cursor < side.n_sorted and (side.heap.size == 0 or side_array_first(side)):
        x = &side.sorted[side.cursor]
        key[0] = x.key
        id[0] = x.id
        version[0] = x.version
        side.cursor += 1
    else:
        heap_pop(&side.heap, key, id, version)


cdef int index_init(LiqIndex* ix, Py_ssize_t cap) except -1 nogil:
    ix.longs.sorted = NULL
    ix.longs.n_sorted = 0
    ix.longs.cursor = 0
    ix.shorts.sorted = NULL
    ix.shorts.n_sorted = 0
    ix.shorts.cursor = 0
    heap_init(&ix.longs.heap, cap)
    heap_init(&ix.shorts.heap, cap)
    return 0


cdef void index_free(LiqIndex* ix) noexcept nogil:
    free(ix.longs.sorted)
    free(ix.shorts.sorted)
    ix.longs.sorted = NULL
    ix.shorts.sorted = NULL
    heap_free(&ix.longs.heap)
    heap_free(&ix.shorts.heap)


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


def py_side_order(keys, pushes=()):
    """Build a side from ``keys`` (ids 0..n-1), push ``pushes`` (key, id) pairs, pop all: the
    ids in priority order. A test wrapper for the index kernel."""
    cdef SideIndex side
    cdef float64_t k
    cdef i64 i, v
    cdef Py_ssize_t n = len(keys)
    kv = np.ascontiguousarray(keys, dtype=np.float64)
    iv = np.arange(n, dtype=np.int64)
    vv = np.zeros(n, dtype=np.int64)
    cdef const float64_t[::1] kk = kv
    cdef const i64[::1] ii = iv
    cdef const i64[::1] vvv = vv
    out = []
    side.sorted = NULL
    side.n_sorted = 0
    side.cursor = 0
    heap_init(&side.heap, 16)
    try:
        side_build(&side, &kk[0] if n else NULL, &ii[0] if n else NULL, &vvv[0] if n else NULL, n)
        for key, idx in pushes:
            side_push(&side, key, idx, 0)
        while side_top(&side, &k):
            side_pop(&side, &k, &i, &v)
            out.append(i)
    finally:
        free(side.sorted)
        heap_free(&side.heap)
    return out
