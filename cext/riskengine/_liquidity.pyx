"""Liquidity kernels: a depth curve a market order walks, transient impact, stress thinning.

Depth (reference §5, layer 1 "book walk"): per side, cumulative quote notional ``D(delta)`` at
distances ``delta`` from the price, piecewise linear through ``(0, 0)`` and the knots of the
snapshot in use (the latest at or before the tick time; before the first, the first). Past the
last knot ``D`` is extrapolated along the last segment; if that segment adds nothing (a flat
last band, as on the bid side of the 2025-10-10 Binance ``bookDepth`` file), along the curve's
mean slope ``D_K / delta_K`` instead, so a sweep past the last band still meets some depth. A
wall of unlimited depth stands ``max_move`` from the *tape* price.

A market order of notional ``X`` moves the price to ``delta*`` with ``D(delta*) = X`` (capped at
the wall) and fills on average ``(delta* X - int_0^delta* D) / X`` away, computed segment by
segment as ``W(delta*) / X`` with ``W = int u dD(u)``: in the first segment that is exactly
``delta* / 2`` (the constant-depth book, ``D = D_1 delta / 1%``, is the one-knot curve). What
the book cannot hold before the wall fills at the wall.

Impact: the move, scaled by ``feedback``, multiplies the transient impact ``m`` (simulated
price = tape x ``m``), which decays toward 1 with a half-life (Obizhaeva-Wang style
exponential refill, reference §5 layer 3).

Stress thinning (reference §5 layer 2): depth is multiplied by ``1 / (1 + stress_k L)`` with
``L`` = notional sent to the book in the recent past (decayed with the same half-life) over
the snapshot's ``D(1%)`` (mean of both sides). It is applied by walking ``X (1 + stress_k L)``
on the unthinned curve, which gives the same ``delta*`` and mean distance.

Every function has a plain-Python twin in ``riskengine.reference`` with the same arithmetic in
the same order (the parity tests compare them bit for bit).
"""

import numpy as np
from libc.math cimport INFINITY, exp
from libc.stdint cimport INT64_MAX

from riskengine._typedefs cimport float64_t, i64
from riskengine import tolerances as _tol

cdef float64_t LN2 = 0.6931471805599453
cdef float64_t ONE_PCT = 0.01
# a fillable share of an order below this is rounding (a limit at the price): no fill; shared
# with the reference engine, read once at import
cdef float64_t FILL_TOL = _tol.FILL_TOL


def shared_tolerances():
    """The shared tolerances this module compiled in, by name (``tests/test_tolerances.py``
    checks them against ``riskengine.tolerances.SHARED``)."""
    return {"FILL_TOL": FILL_TOL}


cdef void depth_init(DepthBook* book, const i64* snap_ts, const float64_t* delta,
                     const float64_t* notional, Py_ssize_t n_snap, Py_ssize_t knots,
                     float64_t max_move, float64_t half_life_ns, float64_t feedback,
                     float64_t stress_k) noexcept nogil:
    book.snap_ts = snap_ts
    book.delta = delta
    book.notional = notional
    book.n_snap = n_snap
    book.knots = knots
    book.cursor = 0
    book.next_ts = snap_ts[1] if n_snap > 1 else INT64_MAX
    book.max_move = max_move
    book.half_life_ns = half_life_ns
    book.feedback = feedback
    book.stress_k = stress_k
    book.flow = 0.0
    book.m = 1.0
    book.depth1 = _depth1(book)


cdef inline float64_t _depth1(const DepthBook* book) noexcept nogil:
    cdef Py_ssize_t off = book.cursor * 2 * book.knots
    cdef Py_ssize_t k = book.knots
    return (curve_depth(book.delta + off, book.notional + off, k, ONE_PCT, NULL)
            + curve_depth(book.delta + off + k, book.notional + off + k, k, ONE_PCT, NULL)) / 2.0


cdef void depth_advance(DepthBook* book, i64 t) noexcept nogil:
    while book.cursor + 1 < book.n_snap and book.snap_ts[book.cursor + 1] <= t:
        book.cursor += 1
    book.next_ts = book.snap_ts[book.cursor + 1] if book.cursor + 1 < book.n_snap else INT64_MAX
    book.depth1 = _depth1(book)


cdef float64_t curve_depth(const float64_t* delta, const float64_t* notional, Py_ssize_t knots,
                           float64_t dist, float64_t* weighted) noexcept nogil:
    """``D(dist)`` of one side's curve; with ``weighted`` also ``W(dist) = int_0^dist u dD(u)``."""
    cdef Py_ssize_t j = 0
    cdef float64_t d0 = 0.0, n0 = 0.0, d1 = delta[0], n1 = notional[0]
    cdef float64_t acc = 0.0, depth
    while j + 1 < knots and dist >= d1:
        acc += (n1 - n0) * ((d0 + d1) / 2.0)
        j += 1
        d0 = d1
        n0 = n1
        d1 = delta[j]
        n1 = notional[j]
    if n1 > n0 or dist < d1:
        depth = n0 + (dist - d0) * (n1 - n0) / (d1 - d0)
    else:
        # past a last segment that adds nothing: the curve's mean slope
        d0 = d1
        n0 = n1
        depth = n0 + (dist - d0) * n0 / d0
    if weighted != NULL:
        weighted[0] = acc + (depth - n0) * ((d0 + dist) / 2.0)
    return depth


cdef float64_t curve_walk(const float64_t* delta, const float64_t* notional, Py_ssize_t knots,
                          float64_t x, float64_t room, float64_t* move) noexcept nogil:
    """Walk one side's curve with notional ``x``, at most ``room`` far (the wall); set ``move``
    and return the mean fill distance."""
    cdef Py_ssize_t j = 0
    cdef float64_t d0 = 0.0, n0 = 0.0, d1 = delta[0], n1 = notional[0]
    cdef float64_t acc = 0.0, dstar, cap, w
    if not x > 0.0:
        move[0] = 0.0
        return 0.0
    while j + 1 < knots and x >= n1:
        acc += (n1 - n0) * ((d0 + d1) / 2.0)
        j += 1
        d0 = d1
        n0 = n1
        d1 = delta[j]
        n1 = notional[j]
    if n1 > n0:
        dstar = d0 + (x - n0) * (d1 - d0) / (n1 - n0)
    else:
        # past a last segment that adds nothing: the curve's mean slope
        j = knots
        d0 = d1
        n0 = n1
        dstar = d0 + (x - n0) * d0 / n0 if n0 > 0.0 else INFINITY
    if dstar <= room:
        move[0] = dstar
        if j == 0:
            return dstar / 2.0
        return (acc + (x - n0) * ((d0 + dstar) / 2.0)) / x
    move[0] = room
    cap = curve_depth(delta, notional, knots, room, &w)
    return (w + (x - cap) * room) / x


cdef inline float64_t _stressed(const DepthBook* book, float64_t x) noexcept nogil:
    if book.stress_k != 0.0 and book.flow > 0.0 and book.depth1 > 0.0:
        return x * (1.0 + book.stress_k * book.flow / book.depth1)
    return x


cdef void depth_walk(const DepthBook* book, float64_t side, float64_t qty,
                     float64_t price, float64_t tape, float64_t* fill,
                     float64_t* move) noexcept nogil:
    cdef float64_t notional = qty * price
    cdef float64_t room = side * (tape * (1.0 + side * book.max_move) - price) / price
    cdef Py_ssize_t off = (book.cursor * 2 + (1 if side > 0.0 else 0)) * book.knots
    cdef float64_t avg
    if room < 0.0:
        room = 0.0
    notional = _stressed(book, notional)
    avg = curve_walk(book.delta + off, book.notional + off, book.knots, notional, room, move)
    fill[0] = price * (1.0 + side * avg)


cdef float64_t depth_fillable(const DepthBook* book, float64_t side, float64_t qty,
                              float64_t price, float64_t tape, float64_t limit) noexcept nogil:
    """How much of a market order of ``qty`` fills before the walk passes ``limit`` (an IOC
    limited at the bankruptcy price, or a price band around the mark): ``D(dist) / price``."""
    cdef float64_t dist = side * (limit - price) / price
    cdef float64_t room, can
    cdef Py_ssize_t off
    if dist <= 0.0:
        return 0.0
    room = side * (tape * (1.0 + side * book.max_move) - price) / price
    if dist >= room:
        return qty
    off = (book.cursor * 2 + (1 if side > 0.0 else 0)) * book.knots
    can = curve_depth(book.delta + off, book.notional + off, book.knots, dist, NULL)
    if book.stress_k != 0.0 and book.flow > 0.0 and book.depth1 > 0.0:
        can = can / (1.0 + book.stress_k * book.flow / book.depth1)
    can = can / price
    if can <= FILL_TOL * qty:  # a limit at the price itself, off by rounding: no fill
        return 0.0
    return qty if can >= qty else can


cdef void impact_commit(DepthBook* book, float64_t side, float64_t move,
                        float64_t notional) noexcept nogil:
    book.m = book.m * (1.0 + side * book.feedback * move)
    if book.stress_k != 0.0:
        book.flow = book.flow + notional


cdef void impact_decay_apply(DepthBook* book, i64 dt) noexcept nogil:
    """:c:func:`impact_decay` where there is impact or flow to decay (``dt > 0``)."""
    cdef float64_t f = exp(-(<float64_t>dt) * LN2 / book.half_life_ns)
    if book.m != 1.0:
        book.m = 1.0 + (book.m - 1.0) * f
    book.flow = book.flow * f


cdef void counterfactual_tape(DepthBook* book, const i64* ts, const float64_t* px, Py_ssize_t n,
                              const i64* obs_ts, const float64_t* obs_side,
                              const float64_t* obs_notional, Py_ssize_t n_obs,
                              float64_t* out) noexcept nogil:
    """``out[i] = px[i] / m_obs(ts[i])``: the tape with the impact of observed flow taken out.

    ``m_obs`` is the impact the observed orders (time-sorted; side +1 buy / -1 sell, quote
    notional) make on ``book`` (fresh: ``m = 1``, no flow): each walks the curve in use at its
    time from the level ``m_obs`` toward a wall at ``1 +/- max_move``, with the same stress,
    feedback and decay as simulated orders."""
    cdef Py_ssize_t i, j = 0, off
    cdef i64 t, last = obs_ts[0] if n_obs > 0 else 0
    cdef float64_t side, room, x, move
    for i in range(n):
        t = ts[i]
        while j < n_obs and obs_ts[j] <= t:
            impact_decay(book, obs_ts[j] - last)
            last = obs_ts[j]
            depth_seek(book, last)
            side = obs_side[j]
            x = obs_notional[j]
            room = side * ((1.0 + side * book.max_move) - book.m) / book.m
            if room < 0.0:
                room = 0.0
            off = (book.cursor * 2 + (1 if side > 0.0 else 0)) * book.knots
            curve_walk(book.delta + off, book.notional + off, book.knots, _stressed(book, x),
                       room, &move)
            impact_commit(book, side, move, x)
            j += 1
        impact_decay(book, t - last)
        last = t
        out[i] = px[i] / book.m


# ------------------------------------------------------------------------ Python entry points
def _arrays(snap_ts, delta, notional):
    ts = np.ascontiguousarray(snap_ts, dtype=np.int64).reshape(-1)
    d = np.ascontiguousarray(delta, dtype=np.float64).reshape(-1)
    n = np.ascontiguousarray(notional, dtype=np.float64).reshape(-1)
    if len(ts) == 0 or len(d) != len(n) or len(d) % (2 * len(ts)) or len(d) == 0:
        raise ValueError("depth book: expected S snapshot times and S x 2 x K knots "
                         f"(got {len(ts)} times, {len(d)} distances, {len(n)} notionals)")
    return ts, d, n


cdef tuple _test_book(DepthBook* book, snap_ts, delta, notional, i64 t, double max_move,
                      double stress_k, double flow):
    """Set up ``book`` for the Python entry points at time ``t``; returns the arrays it points
    into (the caller keeps them alive while it uses the book)."""
    ts, d, n = _arrays(snap_ts, delta, notional)
    cdef const i64[::1] tv = ts
    cdef const float64_t[::1] dv = d
    cdef const float64_t[::1] nv = n
    depth_init(book, &tv[0], &dv[0], &nv[0], tv.shape[0], dv.shape[0] // (2 * tv.shape[0]),
               max_move, 1.0, 1.0, stress_k)
    depth_seek(book, t)
    book.flow = flow
    return ts, d, n


def py_book_walk(double side, double qty, double price, snap_ts, delta, notional,
                 long long t=0, double max_move=0.5, tape=None, double stress_k=0.0,
                 double flow=0.0):
    """Fill price and relative move of a market order on a depth book.

    Parameters
    ----------
    side : float
        +1 buy (walks the asks), -1 sell (walks the bids).
    qty : float
        Size in base units.
    price : float
        Price the walk starts from.
    snap_ts : array_like of int64, shape (S,)
        Snapshot times, ns, non-decreasing.
    delta, notional : array_like of float64, shape (S, 2, K)
        Knot distances (fractions of the price) and cumulative quote notional; ``[:, 0]`` bids,
        ``[:, 1]`` asks.
    t : int
        Time of the order, ns (picks the snapshot as of ``t``).
    max_move : float
        Relative distance of the wall from the tape price.
    tape : float, optional
        Tape price (default: ``price``, no impact so far).
    stress_k, flow : float
        Stress factor and the decayed notional sent to the book so far.

    Returns
    -------
    (fill, move) : tuple of float
    """
    cdef DepthBook book
    cdef float64_t fill, move
    keep = _test_book(&book, snap_ts, delta, notional, t, max_move, stress_k, flow)  # the book points into these
    depth_walk(&book, side, qty, price, price if tape is None else tape, &fill, &move)
    return fill, move


def py_book_fillable(double side, double qty, double price, double limit, snap_ts, delta,
                     notional, long long t=0, double max_move=0.5, tape=None,
                     double stress_k=0.0, double flow=0.0):
    """Size of a market order that fills before the walk passes ``limit`` (arguments as in
    :func:`py_book_walk`)."""
    cdef DepthBook book
    keep = _test_book(&book, snap_ts, delta, notional, t, max_move, stress_k, flow)  # the book points into these
    return depth_fillable(&book, side, qty, price, price if tape is None else tape, limit)


def py_curve_depth(delta, notional, double dist):
    """``(D(dist), W(dist))`` of one side's curve (knot distances as fractions, ascending)."""
    d = np.ascontiguousarray(delta, dtype=np.float64)
    n = np.ascontiguousarray(notional, dtype=np.float64)
    cdef const float64_t[::1] dv = d
    cdef const float64_t[::1] nv = n
    cdef float64_t w
    cdef float64_t depth = curve_depth(&dv[0], &nv[0], dv.shape[0], dist, &w)
    return depth, w


def py_counterfactual_tape(tape_ts, tape_price, snap_ts, delta, notional, obs_ts, obs_side,
                           obs_notional, double max_move=0.5, double half_life_ns=30e9,
                           double feedback=1.0, double stress_k=0.0):
    """The tape with the impact of observed flow taken out (see ``counterfactual_tape``).

    Returns
    -------
    ndarray of float64
    """
    cdef DepthBook book
    ts, d, n = _arrays(snap_ts, delta, notional)
    cdef const i64[::1] tv = ts
    cdef const float64_t[::1] dv = d
    cdef const float64_t[::1] nv = n
    t_ts = np.ascontiguousarray(tape_ts, dtype=np.int64)
    t_px = np.ascontiguousarray(tape_price, dtype=np.float64)
    o_ts = np.ascontiguousarray(obs_ts, dtype=np.int64)
    o_side = np.ascontiguousarray(obs_side, dtype=np.float64)
    o_n = np.ascontiguousarray(obs_notional, dtype=np.float64)
    out = np.array(t_px, dtype=np.float64)
    cdef const i64[::1] tt = t_ts
    cdef const float64_t[::1] tp = t_px
    cdef const i64[::1] ot = o_ts
    cdef const float64_t[::1] os_ = o_side
    cdef const float64_t[::1] on = o_n
    cdef float64_t[::1] ov = out
    if tt.shape[0] == 0 or ot.shape[0] == 0:
        return out
    depth_init(&book, &tv[0], &dv[0], &nv[0], tv.shape[0], dv.shape[0] // (2 * tv.shape[0]),
               max_move, half_life_ns, feedback, stress_k)
    with nogil:
        counterfactual_tape(&book, &tt[0], &tp[0], tt.shape[0], &ot[0], &os_[0], &on[0],
                            ot.shape[0], &ov[0])
    return out


def py_depth_walk(double side, double qty, double price, double depth_per_pct,
                  double max_move=0.5, tape=None):
    """Fill price and relative move of a market order on a constant-depth book (the one-knot
    curve ``D(1%) = depth_per_pct`` on both sides).

    Parameters
    ----------
    side : float
        +1 buy, -1 sell.
    qty : float
        Size in base units.
    price : float
        Price the walk starts from.
    depth_per_pct : float
        Quote notional resting within 1% of the price on the order's side.
    max_move : float
        Relative distance of the wall from the tape price.
    tape : float, optional
        Tape price (default: ``price``, no impact so far).

    Returns
    -------
    (fill, move) : tuple of float
    """
    return py_book_walk(side, qty, price, [0], [[[ONE_PCT], [ONE_PCT]]],
                        [[[depth_per_pct], [depth_per_pct]]], 0, max_move, tape)


def py_depth_fillable(double side, double qty, double price, double limit,
                      double depth_per_pct, double max_move=0.5, tape=None):
    """Size of a market order that fills before the walk passes ``limit`` (constant depth)."""
    return py_book_fillable(side, qty, price, limit, [0], [[[ONE_PCT], [ONE_PCT]]],
                            [[[depth_per_pct], [depth_per_pct]]], 0, max_move, tape)


def py_impact_after(double m, long long dt_ns, double half_life_ns):
    """Impact multiplier ``m`` after ``dt_ns`` of exponential decay toward 1."""
    cdef DepthBook book
    book.m = m
    book.flow = 0.0
    book.half_life_ns = half_life_ns
    impact_decay(&book, dt_ns)
    return book.m
