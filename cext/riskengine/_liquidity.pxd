from riskengine._typedefs cimport float64_t, i64

cdef struct ConstantDepth:
    # Linear cumulative depth D(delta) = depth_per_pct * delta / 1% on each side, a wall of
    # unlimited depth at tape x (1 +/- max_move), and a transient impact multiplier m
    # (simulated price = tape price x m) that decays toward 1 with half_life_ns.
    float64_t depth_per_pct
    float64_t max_move
    float64_t half_life_ns
    float64_t feedback
    float64_t m

cdef void depth_walk(const ConstantDepth* book, float64_t side, float64_t qty,
                     float64_t price, float64_t tape, float64_t* fill,
                     float64_t* move) noexcept nogil
cdef void impact_commit(ConstantDepth* book, float64_t side, float64_t move) noexcept nogil
cdef void impact_decay(ConstantDepth* book, i64 dt) noexcept nogil
cdef float64_t depth_fillable(const ConstantDepth* book, float64_t side, float64_t qty,
                              float64_t price, float64_t tape, float64_t limit) noexcept nogil
