from libc.math cimport fabs

from riskengine._typedefs cimport float64_t, i64

cdef struct HeapEntry:
    float64_t key
    i64 id
    i64 version

cdef struct KeyHeap:
    # 4-ary max-heap of (key, id, version) entries, highest key first, ties by lower id.
    # Entries are stored together (not as parallel arrays): a sift touches one or two cache
    # lines per level instead of three.
    HeapEntry* items
    Py_ssize_t size
    Py_ssize_t cap

cdef struct SideIndex:
    # One side of the liquidation index: the entries of a (re)build in an array ordered by key,
    # highest first, consumed through a cursor, plus a heap for the entries pushed since (an
    # account re-keyed after its margin or position changed). The top is the better of the
    # two fronts, so a pop is O(1) for the array and O(log k) for the k re-keyed entries.
    # A large build is laid out in buckets of keys (by a monotone function of the key, in
    # O(m)), each sorted only when the cursor reaches it: [cursor, ready) is sorted, and the
    # buckets after ready (ends[bucket ..]) are not yet; a run where few accounts cross sorts
    # a few buckets, not the side. Only the first buckets (about m / 64 entries) are laid out
    # at the build; the others when the cursor reaches them.
    HeapEntry* sorted
    Py_ssize_t n_sorted
    Py_ssize_t cursor
    Py_ssize_t ready          # end of the sorted stretch (n_sorted: all sorted)
    Py_ssize_t* ends          # end of each bucket in sorted, n_buckets of them
    Py_ssize_t n_buckets
    Py_ssize_t bucket         # the next bucket to sort
    Py_ssize_t laid           # buckets before it are laid out in sorted, the others not yet
    float64_t lo              # the bucket function's range and scale (side_build)
    float64_t hi
    float64_t scale
    HeapEntry* fill           # a build's entries as given (side_fill), kept for the next build
    Py_ssize_t cap_sorted
    Py_ssize_t cap_fill
    Py_ssize_t cap_ends
    KeyHeap heap

cdef struct LiqIndex:
    # Liquidation index: longs keyed by their liquidation price (highest first: the highest
    # trigger is liquidated first as the mark falls); shorts by minus theirs.
    SideIndex longs
    SideIndex shorts

cdef int heap_init(KeyHeap* h, Py_ssize_t cap) except -1 nogil
cdef void heap_free(KeyHeap* h) noexcept nogil
cdef int heap_push(KeyHeap* h, float64_t key, i64 id, i64 version) except -1 nogil
cdef void heap_pop(KeyHeap* h, float64_t* key, i64* id, i64* version) noexcept nogil
cdef int heapify_from(KeyHeap* h, const float64_t* keys, const i64* ids,
                      const i64* versions, Py_ssize_t n) except -1 nogil

cdef HeapEntry* side_fill(SideIndex* side, Py_ssize_t n) except NULL nogil
cdef int side_build(SideIndex* side, Py_ssize_t n) except -1 nogil
cdef int side_push(SideIndex* side, float64_t key, i64 id, i64 version) except -1 nogil
cdef int side_pop(SideIndex* side, float64_t* key, i64* id, i64* version) except -1 nogil


cdef inline bint side_array_first(const SideIndex* side) noexcept nogil:
    # whether the array's front comes before the heap's top (both non-empty)
    cdef const HeapEntry* x = &side.sorted[side.cursor]
    cdef const HeapEntry* y = &side.heap.items[0]
    if x.key != y.key:
        return x.key > y.key
    return x.id < y.id


cdef inline bint side_top(const SideIndex* side, float64_t* key) noexcept nogil:
    """The highest key on this side; False when the side is empty (inline: once per tick)."""
    cdef bint has_array = side.cursor < side.n_sorted
    if side.heap.size == 0:
        if not has_array:
            return False
        key[0] = side.sorted[side.cursor].key
    elif not has_array or not side_array_first(side):
        key[0] = side.heap.items[0].key
    else:
        key[0] = side.sorted[side.cursor].key
    return True
cdef int index_init(LiqIndex* ix, Py_ssize_t cap) except -1 nogil
cdef void index_free(LiqIndex* ix) noexcept nogil


cdef inline float64_t trigger_key(float64_t liq_price, float64_t pos, float64_t entry) noexcept nogil:
    """Heap key of an account: its liquidation price padded outward by 1e-9 of the liquidation
    price plus the entry (shorts negated). Inline: the index build keys every account."""
    cdef float64_t pad = 1e-9 * (fabs(liq_price) + fabs(entry))
    if pos > 0.0:
        return liq_price + pad
    return -(liq_price - pad)
