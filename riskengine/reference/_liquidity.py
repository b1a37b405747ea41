"""Plain-Python twin of ``cext/riskengine/_liquidity.pyx``: the depth curve a market order
walks, transient impact, stress thinning and the counterfactual tape.

The model (the depth curve ``D(delta)``, its extrapolation, the wall, impact and its decay,
stress thinning; reference §5) is documented in ``_liquidity.pyx``. :class:`Book` is the twin of
its ``DepthBook``, and every function has the same arithmetic in the same order as its compiled
twin (``tests/test_liquidity.py`` compares them bit for bit).
"""
from __future__ import annotations

import math

import numpy as np

from riskengine.params import EngineParams
from riskengine.tolerances import FILL_TOL

LN2 = 0.6931471805599453


class Book:
    """The depth book of one run: snapshots of cumulative depth per side, the transient impact
    ``m`` and the stress flow (the plain-Python twin of ``DepthBook`` in
    ``cext/riskengine/_liquidity.pyx``; same arithmetic, same order).

    Knot ``j`` of side ``h`` (0 = bids, walked by sells; 1 = asks, walked by buys) of snapshot
    ``s`` is ``(delta[s][h][j], notional[s][h][j])``: a distance from the price as a fraction and
    the cumulative quote notional resting within it. ``D(delta)`` is piecewise linear through
    ``(0, 0)`` and the knots, extrapolated past the last knot along the last segment (along the
    curve's mean slope ``D_K / delta_K`` if the last segment adds nothing). The snapshot in use is
    the latest at or before the tick time (before the first, the first).
    """

    def __init__(self, params: EngineParams):
        k = int(params.book_knots)
        self.snap_ts = [int(t) for t in params.book_ts]
        d = [float(x) for x in params.book_delta]
        n = [float(x) for x in params.book_notional]
        self.delta = [[d[(s * 2 + h) * k:(s * 2 + h + 1) * k] for h in (0, 1)] for s in range(len(self.snap_ts))]
        self.notional = [[n[(s * 2 + h) * k:(s * 2 + h + 1) * k] for h in (0, 1)] for s in range(len(self.snap_ts))]
        self.max_move = float(params.max_move)
        self.half_life_ns = float(params.impact_half_life_ns)
        self.feedback = float(params.impact_feedback)
        self.stress_k = float(params.impact_stress_k)
        self.cursor = 0
        self.flow = 0.0
        self.m = 1.0
        self.depth1 = self._depth1()

    def _depth1(self) -> float:
        s = self.cursor
        return (curve_depth(self.delta[s][0], self.notional[s][0], 0.01)[0]
                + curve_depth(self.delta[s][1], self.notional[s][1], 0.01)[0]) / 2.0

    def seek(self, t: int) -> None:
        """Use the latest snapshot at or before ``t``."""
        if self.cursor + 1 < len(self.snap_ts) and self.snap_ts[self.cursor + 1] <= t:
            while self.cursor + 1 < len(self.snap_ts) and self.snap_ts[self.cursor + 1] <= t:
                self.cursor += 1
            self.depth1 = self._depth1()

    def side_curve(self, side: float) -> tuple[list[float], list[float]]:
        h = 1 if side > 0.0 else 0
        return self.delta[self.cursor][h], self.notional[self.cursor][h]

    def stressed(self, x: float) -> float:
        """``x (1 + stress_k L)``: walking it on the unthinned curve is walking ``x`` on the curve
        thinned by ``1 / (1 + stress_k L)``, ``L = flow / D(1%)``."""
        if self.stress_k != 0.0 and self.flow > 0.0 and self.depth1 > 0.0:
            return x * (1.0 + self.stress_k * self.flow / self.depth1)
        return x

    def walk(self, side: float, qty: float, price: float, tape: float) -> tuple[float, float]:
        """Walk the book with a market order of ``qty`` from ``price``; the wall stands
        ``max_move`` from ``tape``. Returns ``(fill_price, move)``."""
        notional = qty * price
        room = side * (tape * (1.0 + side * self.max_move) - price) / price
        if room < 0.0:
            room = 0.0
        notional = self.stressed(notional)
        delta, depth = self.side_curve(side)
        avg, move = curve_walk(delta, depth, notional, room)
        return price * (1.0 + side * avg), move

    def fillable(self, side: float, qty: float, price: float, tape: float, limit: float) -> float:
        """How much of a market order of ``qty`` fills before the walk passes ``limit``:
        ``D(dist) / price``."""
        dist = side * (limit - price) / price
        if dist <= 0.0:
            return 0.0
        room = side * (tape * (1.0 + side * self.max_move) - price) / price
        if dist >= room:
            return qty
        delta, depth = self.side_curve(side)
        can = curve_depth(delta, depth, dist)[0]
        if self.stress_k != 0.0 and self.flow > 0.0 and self.depth1 > 0.0:
            can = can / (1.0 + self.stress_k * self.flow / self.depth1)
        can = can / price
        if can <= FILL_TOL * qty:  # a limit at the price itself, off by rounding: no fill
            return 0.0
        return qty if can >= qty else can

    def commit(self, side: float, move: float, notional: float) -> None:
        """An order moved the price by ``move``: ``feedback`` of it persists as impact."""
        self.m = self.m * (1.0 + side * self.feedback * move)
        if self.stress_k != 0.0:
            self.flow = self.flow + notional

    def decay(self, dt: int) -> None:
        if dt > 0 and (self.m != 1.0 or self.flow != 0.0):
            f = math.exp(-float(dt) * LN2 / self.half_life_ns)
            if self.m != 1.0:
                self.m = 1.0 + (self.m - 1.0) * f
            self.flow = self.flow * f


def curve_depth(delta: list[float], notional: list[float], dist: float) -> tuple[float, float]:
    """``(D(dist), W(dist))`` of one side's curve, ``W(dist) = int_0^dist u dD(u)``."""
    k = len(delta)
    j = 0
    d0, n0, d1, n1 = 0.0, 0.0, delta[0], notional[0]
    acc = 0.0
    while j + 1 < k and dist >= d1:
        acc += (n1 - n0) * ((d0 + d1) / 2.0)
        j += 1
        d0, n0 = d1, n1
        d1, n1 = delta[j], notional[j]
    if n1 > n0 or dist < d1:
        depth = n0 + (dist - d0) * (n1 - n0) / (d1 - d0)
    else:
        d0, n0 = d1, n1
        depth = n0 + (dist - d0) * n0 / d0
    return depth, acc + (depth - n0) * ((d0 + dist) / 2.0)


def curve_walk(delta: list[float], notional: list[float], x: float, room: float) -> tuple[float, float]:
    """Walk one side's curve with notional ``x``, at most ``room`` far: ``(mean distance, move)``.

    The price moves to ``delta*`` with ``D(delta*) = x``; the order fills on average
    ``W(delta*) / x`` away (exactly ``delta* / 2`` in the first segment). Past ``room`` (the
    wall) the book holds ``D(room)`` and the rest fills at ``room``.
    """
    if not x > 0.0:
        return 0.0, 0.0
    k = len(delta)
    j = 0
    d0, n0, d1, n1 = 0.0, 0.0, delta[0], notional[0]
    acc = 0.0
    while j + 1 < k and x >= n1:
        acc += (n1 - n0) * ((d0 + d1) / 2.0)
        j += 1
        d0, n0 = d1, n1
        d1, n1 = delta[j], notional[j]
    if n1 > n0:
        dstar = d0 + (x - n0) * (d1 - d0) / (n1 - n0)
    else:
        j = k
        d0, n0 = d1, n1
        dstar = d0 + (x - n0) * d0 / n0 if n0 > 0.0 else math.inf
    if dstar <= room:
        if j == 0:
            return dstar / 2.0, dstar
        return (acc + (x - n0) * ((d0 + dstar) / 2.0)) / x, dstar
    cap, w = curve_depth(delta, notional, room)
    return (w + (x - cap) * room) / x, room


def counterfactual_tape(params: EngineParams, ts: np.ndarray, px: np.ndarray) -> np.ndarray:
    """The tape with the impact of the observed flow taken out: ``px[i] / m_obs(ts[i])``, where
    ``m_obs`` is the impact the observed orders make on a fresh book (each walks the curve in use
    at its time from the level ``m_obs`` toward a wall at ``1 +/- max_move``, with the run's
    stress, feedback and decay). Returns ``px`` itself when there is no observed flow."""
    o_ts, o_side, o_not = params.observed_ts, params.observed_side, params.observed_notional
    if len(o_ts) == 0 or len(ts) == 0:
        return px
    book = Book(params)
    out = np.empty(len(px), dtype=np.float64)
    j = 0
    last = int(o_ts[0])
    for i in range(len(ts)):
        t = int(ts[i])
        while j < len(o_ts) and int(o_ts[j]) <= t:
            book.decay(int(o_ts[j]) - last)
            last = int(o_ts[j])
            book.seek(last)
            side = float(o_side[j])
            x = float(o_not[j])
            room = side * ((1.0 + side * book.max_move) - book.m) / book.m
            if room < 0.0:
                room = 0.0
            delta, depth = book.side_curve(side)
            _, move = curve_walk(delta, depth, book.stressed(x), room)
            book.commit(side, move, x)
            j += 1
        book.decay(t - last)
        last = t
        out[i] = float(px[i]) / book.m
    return out


def walk_depth(side: float, qty: float, price: float, tape: float,
               params: EngineParams) -> tuple[float, float]:
    """Walk a fresh book (its first snapshot, no stress flow) with a market order.

    With a constant depth ``D(delta) = depth_per_pct * delta / 1%`` an order of notional ``X``
    moves the price by ``delta = 1% X / depth_per_pct`` and fills ``delta / 2`` away on average
    (reference §5, "linear cumulative depth"); see :class:`Book` for depth curves and the wall.

    Returns
    -------
    (fill_price, move)
    """
    return Book(params).walk(side, qty, price, tape)


def fillable_depth(side: float, qty: float, price: float, tape: float, limit: float,
                   params: EngineParams) -> float:
    """How much of a market order of ``qty`` fills before the walk passes ``limit`` (fresh book)."""
    return Book(params).fillable(side, qty, price, tape, limit)
