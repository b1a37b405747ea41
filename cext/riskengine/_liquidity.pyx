"""Liquidity model interface: a depth curve a market order walks, and transient impact.

This is the simple constant-depth model (reference §5, "linear cumulative depth"): an order
of notional ``X`` moves the price by ``delta = 1% x X / depth_per_pct`` and fills on average
``delta / 2`` away; a wall of unlimited depth stands ``max_move`` from the *tape* price and the
rest of an order that reaches it fills there, so simulated prices stay within
``tape x (1 +/- max_move)`` however many orders hit the book. The move,
scaled by ``feedback``, becomes transient impact on every later price and decays with a
half-life (an Obizhaeva-Wang style exponential refill). The plain-Python twin is
``riskengine.reference.walk_depth``.
"""

from libc.math cimport exp

from riskengine._typedefs cimport float64_t, i64

cdef float64_t LN2 = 0.6931471805599453


cdef void depth_walk(const ConstantDepth* book, float64_t side, float64_t qty,
                     float64_t price, float64_t tape, float64_t* fill,
                     float64_t* move) noexcept nogil:
    cdef float64_t notional = qty * price
    cdef float64_t room = side * (tape * (1.0 + side * book.max_move) - price) / price
    cdef float64_t full_move = 0.01 * notional / book.depth_per_pct
    cdef float64_t avg, cap_notional
    if room < 0.0:
        room = 0.0
    if full_move <= room:
        move[0] = full_move
        avg = full_move / 2.0
    else:
        move[0] = room
        cap_notional = book.depth_per_pct * room / 0.01
        avg = (cap_notional * (room / 2.0) + (notional - cap_notional) * room) / notional
    fill[0] = price * (1.0 + side * avg)


cdef float64_t depth_fillable(const ConstantDepth* book, float64_t side, float64_t qty,
                              float64_t price, float64_t tape, float64_t limit) noexcept nogil:
    """How much of a market order of ``qty`` fills before the walk passes ``limit`` (an IOC
    limited at the bankruptcy price, or a price band around the mark)."""
    cdef float64_t dist = side * (limit - price) / price
    cdef float64_t room, can
    if dist <= 0.0:
        return 0.0
    room = side * (tape * (1.0 + side * book.max_move) - price) / price
    if dist >= room:
        return qty
    can = book.depth_per_pct * dist / 0.01 / price
    return qty if can >= qty else can


cdef void impact_commit(ConstantDepth* book, float64_t side, float64_t move) noexcept nogil:
    book.m = book.m * (1.0 + side * book.feedback * move)


cdef void impact_decay(ConstantDepth* book, i64 dt) noexcept nogil:
    if book.m != 1.0 and dt > 0:
        book.m = 1.0 + (book.m - 1.0) * exp(-(<float64_t>dt) * LN2 / book.half_life_ns)


def py_depth_walk(double side, double qty, double price, double depth_per_pct,
                  double max_move=0.5, tape=None):
    """Fill price and relative move of a market order on a constant-depth book.

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
    cdef ConstantDepth book
    cdef float64_t fill, move
    book.depth_per_pct = depth_per_pct
    book.max_move = max_move
    book.half_life_ns = 1.0
    book.feedback = 1.0
    book.m = 1.0
    depth_walk(&book, side, qty, price, price if tape is None else tape, &fill, &move)
    return fill, move


def py_depth_fillable(double side, double qty, double price, double limit,
                      double depth_per_pct, double max_move=0.5, tape=None):
    """Size of a market order that fills before the walk passes ``limit``."""
    cdef ConstantDepth book
    book.depth_per_pct = depth_per_pct
    book.max_move = max_move
    return depth_fillable(&book, side, qty, price, price if tape is None else tape, limit)


def py_impact_after(double m, long long dt_ns, double half_life_ns):
    """Impact multiplier ``m`` after ``dt_ns`` of exponential decay toward 1."""
    cdef ConstantDepth book
    book.m = m
    book.half_life_ns = half_life_ns
    impact_decay(&book, dt_ns)
    return book.m
