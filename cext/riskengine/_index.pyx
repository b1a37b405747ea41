"""The liquidation index: finds the accounts a mark price crosses without scanning them all.

Per side (:c:type:`SideIndex`), each ACTIVE account is keyed by the price
at which it falls below maintenance margin (its liquidation price, which does not depend on
the mark for a one-instrument account): the keys of the last build sit in an array ordered highest
first and consumed through a cursor, and accounts re-keyed since sit in a 4-ary heap; the
next candidate is the better of the two fronts. A large build costs O(m): the array is laid
out in key buckets and a bucket is laid out and sorted only when the cursor reaches it
(:c:func:`side_build`), so a run where few accounts cross never sorts the side. The backstop region (equity below a fraction of
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
from libc.math cimport INFINITY, fabs
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memset

from riskengine._typedefs cimport float64_t, i64

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


cdef HeapEntry* _grow(HeapEntry* items, Py_ssize_t* cap, Py_ssize_t n) except NULL nogil:
    """``items`` with room for ``n`` entries (its contents are not kept when it grows)."""
    if n <= cap[0] and items != NULL:
        return items
    free(items)
    cap[0] = 0
    items = <HeapEntry*>malloc((n if n > 16 else 16) * sizeof(HeapEntry))
    if items == NULL:
        with gil:
            raise MemoryError("liquidation index: out of memory")
    cap[0] = n if n > 16 else 16
    return items


cdef HeapEntry* side_fill(SideIndex* side, Py_ssize_t n) except NULL nogil:
    """Room for the ``n`` entries of the side's next build (:c:func:`side_build`), to be
    written in account-id order; the side's contents stay as they are until then."""
    side.fill = _grow(side.fill, &side.cap_fill, n)
    return side.fill


cdef int _radix_desc(HeapEntry* a, HeapEntry* b, Py_ssize_t n) except -1 nogil:
    """Sort ``a[:n]`` by key, highest first, stably (equal keys keep their order): an LSD radix
    sort on 16-bit digits through the scratch ``b`` (n entries). A digit all keys share (the
    sign and exponent of prices in one range) costs one counting pass only."""
    cdef Py_ssize_t* count = <Py_ssize_t*>malloc(65536 * sizeof(Py_ssize_t))
    cdef HeapEntry* src = a
    cdef HeapEntry* dst = b
    cdef HeapEntry* t
    cdef Py_ssize_t i, total, c
    cdef int shift
    if count == NULL:
        with gil:
            raise MemoryError("liquidation index: out of memory")
    for shift in range(0, 64, 16):
        for c in range(65536):
            count[c] = 0
        for i in range(n):
            count[(_desc_bits(src[i].key) >> shift) & 0xFFFF] += 1
        if count[(_desc_bits(src[0].key) >> shift) & 0xFFFF] == n:
            continue  # every key has this digit: the order stays as it is
        total = 0
        for c in range(65536):
            total += count[c]
            count[c] = total - count[c]
        for i in range(n):
            c = (_desc_bits(src[i].key) >> shift) & 0xFFFF
            dst[count[c]] = src[i]
            count[c] += 1
        t = src
        src = dst
        dst = t
    free(count)
    if src != a:
        memcpy(a, src, n * sizeof(HeapEntry))
    return 0


cdef void _insertion_desc(HeapEntry* a, Py_ssize_t n) noexcept nogil:
    """Sort a few entries by key, highest first, stably (the radix sort's order)."""
    cdef Py_ssize_t i, j
    cdef HeapEntry item
    for i in range(1, n):
        item = a[i]
        j = i - 1
        while j >= 0 and a[j].key < item.key:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = item


cdef void _merge_desc(HeapEntry* a, HeapEntry* b, Py_ssize_t n) noexcept nogil:
    """Sort ``a[:n]`` by key, highest first, stably, through the scratch ``b``: insertion-sorted
    runs of 32, merged bottom-up."""
    cdef Py_ssize_t width, lo, mid, hi, i, j, k
    cdef HeapEntry* src = a
    cdef HeapEntry* dst = b
    cdef HeapEntry* t
    for lo in range(0, n, 32):
        _insertion_desc(&a[lo], 32 if lo + 32 <= n else n - lo)
    width = 32
    while width < n:
        lo = 0
        while lo < n:
            mid = lo + width if lo + width < n else n
            hi = lo + 2 * width if lo + 2 * width < n else n
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if src[j].key > src[i].key:  # the left run first on equal keys
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
            lo = hi
        t = src
        src = dst
        dst = t
        width *= 2
    if src != a:
        memcpy(a, src, n * sizeof(HeapEntry))


cdef int _sort_stretch(SideIndex* side, Py_ssize_t lo, Py_ssize_t hi) except -1 nogil:
    """Sort ``sorted[lo:hi]`` by key, highest first, stably. The scratch: the fill buffer once
    every bucket is laid out, else the part of ``sorted`` the buckets not yet laid out will
    take (at least half the side: longer than any laid-out bucket)."""
    cdef Py_ssize_t n = hi - lo
    cdef HeapEntry* scratch = (side.fill if side.laid == side.n_buckets
                               else &side.sorted[side.ends[side.laid]])
    if n <= 32:
        _insertion_desc(&side.sorted[lo], n)
    elif n < QSORT_BELOW:
        _merge_desc(&side.sorted[lo], scratch, n)
    else:
        _radix_desc(&side.sorted[lo], scratch, n)
    return 0


cdef void _lay_out(SideIndex* side, Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    """Move the entries of buckets ``first .. last - 1`` from the fill buffer to their places
    in ``sorted`` (``ends[b]``: bucket b's start before, its end after), in fill order."""
    cdef Py_ssize_t i, b
    for i in range(side.n_sorted):
        b = _bucket(side.fill[i].key, side.lo, side.hi, side.scale, side.n_buckets)
        if first <= b < last:
            side.sorted[side.ends[b]] = side.fill[i]
            side.ends[b] += 1
    side.laid = last


cdef int _sort_next(SideIndex* side) except -1 nogil:
    """Sort the next non-empty bucket, from ``ready`` on (laying out the buckets not yet laid
    out when it is one of them)."""
    while True:
        if side.bucket == side.laid and side.laid < side.n_buckets:
            _lay_out(side, side.laid, side.n_buckets)
        if side.bucket == side.n_buckets:
            return 0
        if side.ends[side.bucket] != side.ready:
            break
        side.bucket += 1
    _sort_stretch(side, side.ready, side.ends[side.bucket])
    side.ready = side.ends[side.bucket]
    side.bucket += 1
    return 0


cdef int side_build(SideIndex* side, Py_ssize_t n) except -1 nogil:
    """Replace the side's contents with the ``n`` entries written to :c:func:`side_fill` (in
    account-id order), ordered by key, highest first, ties by lower id.

    Fewer than ``QSORT_BELOW`` entries are sorted at once by ``qsort``. More are laid out in
    about n / 4 buckets by ``floor((hi - key) x scale)`` over the range ``[lo, hi]`` of the
    finite keys (keys at or past an end in its end bucket), a function that never increases
    with the key, so bucket order is key order; each bucket is sorted stably by key when the
    cursor reaches it (:c:func:`side_pop`), equal keys keeping their account-id order. That is
    the order a stable sort of the whole side gives (a NaN key, which no bucket function
    orders, sorts the whole side by the radix sort at once)."""
    cdef HeapEntry* t
    cdef Py_ssize_t i, b, nb, total, c
    cdef float64_t lo = INFINITY, hi = -INFINITY, key, scale
    cdef bint nan = False
    side.cursor = 0
    side.heap.size = 0
    side.n_sorted = 0
    side.ready = 0
    side.n_buckets = 0
    side.bucket = 0
    side.laid = 0
    if n == 0:
        return 0
    side.sorted = _grow(side.sorted, &side.cap_sorted, n)
    if n < QSORT_BELOW:
        qsort(side.fill, n, sizeof(HeapEntry), _cmp_entry)
        t = side.sorted
        side.sorted = side.fill
        side.fill = t
        side.cap_sorted, side.cap_fill = side.cap_fill, side.cap_sorted
        side.n_sorted = n
        side.ready = n
        return 0
    for i in range(n):
        key = side.fill[i].key
        if key != key:
            nan = True
        elif key - key == 0.0:  # finite
            if key < lo:
                lo = key
            if key > hi:
                hi = key
    scale = (n // 4) / (hi - lo) if not nan and hi > lo else 0.0
    # (a range too wide or too narrow for a finite, positive scale: one bucket)
    nb = n // 4 if scale > 0.0 and scale - scale == 0.0 and (hi - lo) - (hi - lo) == 0.0 else 1
    if nb > side.cap_ends or side.ends == NULL:
        free(side.ends)
        side.cap_ends = 0
        side.ends = <Py_ssize_t*>malloc(nb * sizeof(Py_ssize_t))
        if side.ends == NULL:
            with gil:
                raise MemoryError("liquidation index: out of memory")
        side.cap_ends = nb
    side.n_sorted = n
    side.n_buckets = nb
    side.lo = lo
    side.hi = hi
    side.scale = scale
    if nb == 1:
        memcpy(side.sorted, side.fill, n * sizeof(HeapEntry))
        side.ends[0] = n
        side.laid = 1
    else:
        for b in range(nb):
            side.ends[b] = 0
        for i in range(n):
            side.ends[_bucket(side.fill[i].key, lo, hi, scale, nb)] += 1
        total = 0
        for b in range(nb):  # each bucket's start
            c = side.ends[b]
            side.ends[b] = total
            total += c
        # the first buckets, up to about n / 64 entries, now (a quiet run reads no further);
        # all of them if those are more than half the side (the rest is the sorts' scratch)
        b = 1
        while b < nb and side.ends[b] < n // 64:
            b += 1
        if b < nb and 2 * side.ends[b] > n:
            b = nb
        _lay_out(side, 0, b)
    _sort_next(side)
    return 0


cdef inline Py_ssize_t _bucket(float64_t key, float64_t lo, float64_t hi, float64_t scale,
                               Py_ssize_t nb) noexcept nogil:
    """The bucket of ``key``: 0 for the highest keys, ``nb - 1`` for the lowest; never
    decreasing as the key falls (rounding is monotone)."""
    cdef float64_t f
    cdef Py_ssize_t b
    if not key < hi:
        return 0
    if not key > lo:
        return nb - 1
    f = (hi - key) * scale
    b = <Py_ssize_t>f
    return b if b < nb else nb - 1


cdef int side_push(SideIndex* side, float64_t key, i64 id, i64 version) except -1 nogil:
    return heap_push(&side.heap, key, id, version)


cdef int side_pop(SideIndex* side, float64_t* key, i64* id, i64* version) except -1 nogil:
    cdef const HeapEntry* x
    if side.cursor < side.n_sorted and (side.heap.size == 0 or side_array_first(side)):
        x = &side.sorted[side.cursor]
        key[0] = x.key
        id[0] = x.id
        version[0] = x.version
        side.cursor += 1
        if side.cursor == side.ready and side.ready < side.n_sorted:
            _sort_next(side)
    else:
        heap_pop(&side.heap, key, id, version)
    return 0


cdef int index_init(LiqIndex* ix, Py_ssize_t cap) except -1 nogil:
    memset(ix, 0, sizeof(LiqIndex))
    heap_init(&ix.longs.heap, cap)
    heap_init(&ix.shorts.heap, cap)
    return 0


cdef void _side_free(SideIndex* side) noexcept nogil:
    free(side.sorted)
    free(side.fill)
    free(side.ends)
    heap_free(&side.heap)
    memset(side, 0, sizeof(SideIndex))


cdef void index_free(LiqIndex* ix) noexcept nogil:
    _side_free(&ix.longs)
    _side_free(&ix.shorts)


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


def py_side_order(keys, pushes=(), pops=None):
    """Build a side from ``keys`` (ids 0..n-1), pop ``pops`` entries (None: none), push
    ``pushes`` (key, id) pairs, pop all: the ids in priority order. A test wrapper for the
    index kernel."""
    cdef SideIndex side
    cdef float64_t k
    cdef i64 i, v
    cdef Py_ssize_t n = len(keys), j
    cdef HeapEntry* entries
    kv = np.ascontiguousarray(keys, dtype=np.float64)
    cdef const float64_t[::1] kk = kv
    out = []
    memset(&side, 0, sizeof(SideIndex))
    heap_init(&side.heap, 16)
    try:
        entries = side_fill(&side, n)
        for j in range(n):
            entries[j].key = kk[j]
            entries[j].id = j
            entries[j].version = 0
        side_build(&side, n)
        for j in range(pops or 0):
            if not side_top(&side, &k):
                break
            side_pop(&side, &k, &i, &v)
            out.append(i)
        for key, idx in pushes:
            side_push(&side, key, idx, 0)
        while side_top(&side, &k):
            side_pop(&side, &k, &i, &v)
            out.append(i)
    finally:
        _side_free(&side)
    return out
