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

cdef struct LiqIndex:
    # Liquidation index: longs keyed by their liquidation price (max-heap: the highest
    # trigger is liquidated first as the mark falls); shorts by minus theirs.
    KeyHeap longs
    KeyHeap shorts

cdef int heap_init(KeyHeap* h, Py_ssize_t cap) except -1 nogil
cdef void heap_free(KeyHeap* h) noexcept nogil
cdef int heap_push(KeyHeap* h, float64_t key, i64 id, i64 version) except -1 nogil
cdef void heap_pop(KeyHeap* h, float64_t* key, i64* id, i64* version) noexcept nogil
cdef int heapify_from(KeyHeap* h, const float64_t* keys, const i64* ids,
                      const i64* versions, Py_ssize_t n) except -1 nogil

cdef int index_init(LiqIndex* ix, Py_ssize_t cap) except -1 nogil
cdef void index_free(LiqIndex* ix) noexcept nogil
cdef float64_t trigger_key(float64_t liq_price, float64_t pos, float64_t entry) noexcept nogil
