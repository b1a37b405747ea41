from riskengine._typedefs cimport float64_t, i64

cdef struct DepthBook:
    # Cumulative depth per side from snapshots (struct of arrays, borrowed and read-only):
    # snapshot s, side h (0 = bids, walked by sells; 1 = asks, walked by buys), knot j at
    # delta[(s * 2 + h) * knots + j] (a fraction of the price, strictly increasing in j) holds
    # notional[...] (cumulative quote notional, not decreasing in j). D(delta) is piecewise
    # linear through (0, 0) and the knots and extrapolated past the last knot (see
    # ``curve_depth``); a wall of unlimited depth stands at tape x (1 +/- max_move).
    const i64* snap_ts
    const float64_t* delta
    const float64_t* notional
    Py_ssize_t n_snap
    Py_ssize_t knots
    Py_ssize_t cursor         # the snapshot in use: the latest at or before the tick time
    i64 next_ts               # when the next snapshot takes over (INT64_MAX: never)
    float64_t depth1          # the snapshot's D(1%), mean of both sides (stress scale)
    float64_t max_move
    float64_t half_life_ns
    float64_t feedback
    float64_t stress_k
    float64_t flow            # notional sent to the book, decayed with half_life_ns
    float64_t m               # transient impact multiplier: simulated price = tape x m

cdef void depth_init(DepthBook* book, const i64* snap_ts, const float64_t* delta,
                     const float64_t* notional, Py_ssize_t n_snap, Py_ssize_t knots,
                     float64_t max_move, float64_t half_life_ns, float64_t feedback,
                     float64_t stress_k) noexcept nogil
cdef void depth_advance(DepthBook* book, i64 t) noexcept nogil

cdef inline void depth_seek(DepthBook* book, i64 t) noexcept nogil:
    """Use the latest snapshot at or before ``t`` (times only move forward)."""
    if t >= book.next_ts:
        depth_advance(book, t)

cdef float64_t curve_depth(const float64_t* delta, const float64_t* notional, Py_ssize_t knots,
                           float64_t dist, float64_t* weighted) noexcept nogil
cdef float64_t curve_walk(const float64_t* delta, const float64_t* notional, Py_ssize_t knots,
                          float64_t x, float64_t room, float64_t* move) noexcept nogil
cdef void depth_walk(const DepthBook* book, float64_t side, float64_t qty,
                     float64_t price, float64_t tape, float64_t* fill,
                     float64_t* move) noexcept nogil
cdef void impact_commit(DepthBook* book, float64_t side, float64_t move,
                        float64_t notional) noexcept nogil
cdef void impact_decay_apply(DepthBook* book, i64 dt) noexcept nogil

cdef inline void impact_decay(DepthBook* book, i64 dt) noexcept nogil:
    """Decay the transient impact and the flow over ``dt`` ns; inline: a book without impact
    (every tick of a replay at infinite depth) costs a compare, not a call."""
    if dt > 0 and (book.m != 1.0 or book.flow != 0.0):
        impact_decay_apply(book, dt)
cdef float64_t depth_fillable(const DepthBook* book, float64_t side, float64_t qty,
                              float64_t price, float64_t tape, float64_t limit) noexcept nogil
cdef void counterfactual_tape(DepthBook* book, const i64* ts, const float64_t* px, Py_ssize_t n,
                              const i64* obs_ts, const float64_t* obs_side,
                              const float64_t* obs_notional, Py_ssize_t n_obs,
                              float64_t* out) noexcept nogil
