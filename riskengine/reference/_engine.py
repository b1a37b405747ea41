"""Plain-Python reference engine: the oracle the Cython engine is tested against.

It implements the engine's semantics the obvious way — every account is scanned at every
cascade round, nothing is indexed — and is slow on purpose. The Cython engine
(``cext/riskengine/_engine.pyx``) must produce the same event log on every scenario; the
property-based tests in ``tests/test_parity.py`` check that.

Semantics (this docstring is the specification both engines follow)
--------------------------------------------------------------------
Accounts hold collateral ``c``, one signed position ``q`` with entry price ``e`` on the
scenario's instrument, a margin mode and a status. Equity at mark ``M`` is
``E = c + q (M - e)``; maintenance margin is the tiered ``MM(|q| M)``. An account is
*crossing* when ``E < MM``. Besides the accounts there are three ledgers: the insurance fund
(cash plus any inventory it took over), the backstop vault (cash plus inventory) and the
external market (the order book's counterparties).

For each tape tick ``i`` at time ``t``:

1. **Price.** The depth book switches to the latest snapshot at or before ``t``; the transient
   impact multiplier ``m`` (and the stress flow) decay toward 1 (0) with the impact half-life;
   the simulated price is ``S = tape_price * m``. In a counterfactual replay ``tape_price`` is
   the tape with the observed liquidation flow's impact taken out (:func:`counterfactual_tape`).
2. **Mark.** The venue's method gives ``M`` (last = ``S``; EMA = time-weighted EMA of ``S``;
   stream = the supplied stream, ``S`` until it starts; index + EMA of ``S - index``; Binance's
   median(index, index + EMA basis, last); Hyperliquid's median(oracle + EMA basis, last,
   30 s EMA of last)). The mark before this update is the *previous mark*. If the fund
   drawdown trigger is set, the fund balance is sampled for its rolling peak.
3. **Cascade rounds.** Repeat: refresh ``S`` (and ``M`` where it follows ``S`` directly) and
   check the backstop vault's loss at the new mark (below); every
   ACTIVE account that crosses and was not partially liquidated at this tick becomes PENDING,
   due at ``t + latency``, appended in account-id order to one FIFO queue; then due entries
   are taken from the queue front, at most ``max_liqs_per_step`` per tick, re-checked (an
   account that no longer crosses becomes ACTIVE again) and liquidated. Stop when a round
   liquidates nothing or the cap is reached.
4. **Inventories.** Every ``vault_unwind_interval`` the backstop vault sells
   ``vault_unwind_fraction`` of its inventory into the book. The insurance fund offloads any
   inventory the same way every ``fund_unwind_interval``.
5. **Record** drawdowns and, at most once per ``series_interval``, a series sample.

Liquidating an account (the loss waterfall), first rule that applies:

* equity below zero and ``adl_on_negative_equity``: the whole position is auto-deleveraged;
* equity below ``backstop_ratio x MM`` while the vault is within its loss threshold (below): the
  vault takes the position at mark and the account's remaining equity (the maintenance margin is
  not returned);
* the fund-drawdown trigger is active (fund below ``1 - adl_fund_drawdown`` of its peak over
  ``adl_fund_window``): the whole position is auto-deleveraged instead of going to the book;
* otherwise a market order: the whole position, or a partial order — a fraction above a
  notional threshold outside the cooldown while the account is solvent (and leaving at least
  the dust notional), or just enough to step the notional down into a lower margin tier where
  the account is healthy — capped at ``liq_max_order_notional`` at mark (the venue's largest
  market order; a capped order is partial: the rest waits for the next tick, without the
  partial-liquidation cooldown) — walking the depth curve from ``S`` (:class:`Book`: sells walk the
  bids, buys the asks, thinned by recent flow under stress; a wall at ``tape x (1 +/- max_move)``;
  ``feedback`` of the move persists in ``m``).

  - Unlimited order: if its fill would leave a deficit larger than the fund's cash, the book
    cannot liquidate the account successfully, so the vault takes the whole position over as
    above when the venue has a backstop within its loss threshold (Hyperliquid [DOC S21]: the
    vault steps in "without successful book liquidation"), else the order is auto-deleveraged;
    otherwise it fills, the liquidation fee (capped at the
    collateral left; all of it with ``liq_surplus_to_fund`` once the position is closed) goes
    to the fund, and the fund pays any deficit.
  - Limited order (at the bankruptcy price and/or within a price band around the mark): it
    fills only as far as the limit. The rest is taken over by the insurance fund at the
    bankruptcy price when the venue does that and the fund can carry it (its inventory within
    ``fund_capacity`` x its equity, its equity not negative, both after paying the deficit the
    takeover can leave: a partial order's share of negative collateral); otherwise it is
    auto-deleveraged, or, without ADL, sent to the book unlimited. The fee is charged on the
    whole liquidated notional, capped at the collateral left.

The backstop vault's loss threshold. The vault's loss is its start balance minus its equity at
the mark; ``vault_loss_limit`` is the loss it may carry (the venue layer sets it to a share of the
balance, ``Backstop.loss_limit_share``). The loss is checked whenever the vault's equity
changes: after every takeover, after every unwind, and at every re-mark (each cascade round,
after the mark is refreshed, before the scan). Once the loss passes the threshold (equity below
``vault_initial - vault_loss_limit``) while the vault holds inventory, the whole inventory is
auto-deleveraged at once, so the loss passes the threshold by no more than the takeover, unwind
or price move that crossed it — plus, when the opposite side cannot absorb the whole inventory,
the slippage of selling the rest to the book (as for an account's ADL order). A vault beyond its
threshold takes nothing over: an account that would go to it is liquidated as on a venue without
a backstop (a market order; one the book cannot close without a deficit the fund cannot pay is
auto-deleveraged). Without ADL (``NONE``, ``SOCIALIZE``) the vault keeps its inventory and keeps
unwinding it, and takes over again once its loss is back within the threshold. ``vault_min``
is the lowest vault equity at any of these checks.

Auto-deleveraging closes the order against opposite-side accounts in profit at mark, at the
bankruptcy price of the liquidated account, the mark or the previous mark. The policy decides
how much each absorbs: a queue by score (ties by account id, ranked at most once per
``adl_rank_interval`` and consumed in between), or a capped allocation by weight (size,
positive equity, positive PnL, notional, notional x leverage^p) or water-filling on leverage.
A fill never takes an ADL'd account's equity below zero; what the opposite side cannot absorb
goes to the book. The haircut of a fill is what the account gives up against the mark; the
deficit an ADL order covers is the liquidated side's shortfall at mark on the closed size, and
the order's overshoot is its fills' haircut beyond that deficit (summed over orders in the
``adl_overshoot`` scalar; ``adl_fills`` counts the fills, one per winner per order).

Logging ADL fills. The queue logs every fill as one ADL_FILL row, just before its order's
ADL_LIQUIDATION row. The weighted policies and water-filling fill *every* winner on every
order, so k orders against m winners would log k x m fills (on the default scenario with 100k
accounts and no backstop vault: 457M rows, 42 GB, and the OOM killer). They log at most one row
per winner per series interval of tape time instead — interval ``k`` holds the ticks with
``k = (t - t0) // series_interval_ns``, the resolution of the sampled series (by default a
2,000th of the tape), so rows <= winners x intervals with ADL. A winner's first fill in an
interval writes its row, and each later fill in the same interval is added to that row: size,
notional and haircut summed, price the volume-weighted price (notional / |size|), equity and
fund balance as after the latest fill, counterparty the liquidated account, or
``ADL_ORDERS_ID`` once fills from several orders are in the row; ts, tick and round stay those
of the first fill. (With an interval shorter than the tick spacing this is one row per winner
per tick.) The account state changes fill by fill, exactly as unmerged, and sums over rows (ADL
notional, haircuts per account, distinct accounts, first ADL time) are unchanged; what the rows
no longer show — fills per order — the two scalars keep.

A deficit left after the fund is socialized over every open position in proportion to its
size (never below zero equity) under the ``SOCIALIZE`` policy — one event per deficit, each
account's share in ``RawRun.socialized``; what nobody covers is bad debt.

All money moves conserve ``sum(c - q e) + fund + vault + external market - bad debt``, and every
closed size has a counterparty: the book (the external market), the fund, the vault or an
ADL'd account.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np

from riskengine.codes import (
    ADL_ORDERS_ID,
    BOOK_ID,
    FUND_ID,
    MARKET_ID,
    VAULT_ID,
    AdlPolicy,
    AdlPrice,
    AdlRanking,
    EventKind,
    MarkMethod,
    PartialMode,
    Status,
    Takeover,
)
from riskengine.params import EngineParams, maintenance_margin
from riskengine.runlog import EVENT_COLUMNS, SERIES_COLUMNS, RawRun

LN2 = 0.6931471805599453
#: relative size below which an unabsorbed ADL remainder is rounding noise
ADL_REST_TOL = 1e-12
#: an ADL fill stops this far (relative) short of taking the account's equity to exactly zero
ADL_EQUITY_GUARD = 1e-12
#: times a run reports its progress (``on_tick``) over the tape
PROGRESS_STEPS = 1000
#: inventories are sold whole once what would remain is worth less than this (quote units)
DUST_NOTIONAL = 1.0
#: a fillable share of an order below this is rounding (a limit at the price): no fill
FILL_TOL = 1e-12
#: a tier-step partial liquidation aims this far (relative) inside the lower tier
TIER_STEP_MARGIN = 1e-9
#: bisection steps of the water-filling level
WATER_FILLING_STEPS = 60


def _sign(x: float) -> float:
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


def median3(a: float, b: float, c: float) -> float:
    """Median of three numbers (the same expression as the Cython kernel)."""
    return max(min(a, b), min(max(a, b), c))


def adl_score(ranking: int, pos: float, col: float, entry: float, mark: float,
              params: EngineParams) -> float:
    """ADL ranking score of an account in profit (higher is deleveraged first).

    * ``PNL_LEVERAGE`` (BitMEX "Auto-Deleveraging", Bybit ADL; reference §3): PnL% x effective
      leverage with ``PnL% = U / (|q| e)`` and effective leverage ``|q| M / E``.
    * ``HL_INDEX`` (Hyperliquid "Auto-deleveraging"; reference §2.5):
      ``(mark / entry) x (notional / account value)``; for shorts the side-adjusted
      ``entry / mark`` unless ``adl_short_mark_over_entry`` keeps the formula as written.
    * ``BINANCE_LEVERAGE_PNL`` (Binance ADL FAQ; reference §1.6):
      ``max(0, U) / max(1, WB) x MM / (WB + U)``.
    """
    upnl = pos * (mark - entry)
    equity = col + upnl
    if equity <= 0.0:
        return 0.0
    notional = abs(pos) * mark
    if ranking == AdlRanking.PNL_LEVERAGE:
        return (upnl / (abs(pos) * entry)) * (notional / equity)
    if ranking == AdlRanking.HL_INDEX:
        if pos > 0 or params.adl_short_mark_over_entry:
            ratio = mark / entry
        else:
            ratio = entry / mark
        return ratio * (notional / equity)
    mm = maintenance_margin(notional, params.mm_floors, params.mm_rates, params.mm_cums)
    wallet = col if col > 1.0 else 1.0
    pnl = upnl if upnl > 0.0 else 0.0
    return (pnl / wallet) * (mm / equity)


def adl_weight(policy: int, pos: float, col: float, entry: float, mark: float, power: float) -> float:
    """Allocation weight of a winner under a weighted ADL policy (see ``_adl.pyx``)."""
    if policy == AdlPolicy.PRO_RATA:
        return abs(pos)
    upnl = pos * (mark - entry)
    equity = col + upnl
    if policy == AdlPolicy.PRO_RATA_EQUITY:
        return equity
    if policy == AdlPolicy.PRO_RATA_PNL:
        return upnl
    notional = abs(pos) * mark
    if policy == AdlPolicy.LEVERED_PRO_RATA:
        return notional
    return notional * (notional / equity) ** power


def _caps_fall_short(caps: list[float], total: float) -> bool:
    """When the caps add up to no more than ``total``, everyone takes its cap."""
    cap_sum = 0.0
    for c in caps:
        cap_sum += c
    return cap_sum <= total


def capped_allocation(weights: list[float], caps: list[float], total: float) -> list[float]:
    """Split ``total`` in proportion to ``weights``, no share above its cap, the excess of capped
    shares spread over the others (the water level ``tau`` with ``sum min(cap, tau w) = total``).
    Everyone gets its cap when the caps sum to less than ``total``.

    When the plain level ``total / sum w`` caps nobody, that is ``tau``. Otherwise items are
    taken in order of ``cap / weight``; the first that ``tau`` does not cap fixes
    ``tau = (total - caps before it) / (weights from it on)``, both sums accumulated directly
    (no subtraction, so no cancellation).
    """
    n = len(weights)
    if _caps_fall_short(caps, total):
        return list(caps)
    weight_sum = 0.0
    for w in weights:
        weight_sum += w
    if weight_sum > 0.0:
        tau = total / weight_sum
        if all(caps[j] > tau * weights[j] for j in range(n)):
            return [tau * w for w in weights]
    ratio = [caps[j] / weights[j] if weights[j] > 0.0 else math.inf for j in range(n)]
    order = sorted(range(n), key=lambda j: (ratio[j], j))
    suffix = [0.0] * (n + 1)
    for k in range(n - 1, -1, -1):
        suffix[k] = suffix[k + 1] + weights[order[k]]
    x = [0.0] * n
    capped = 0.0
    for k in range(n):
        j = order[k]
        if suffix[k] <= 0.0:
            break
        tau = (total - capped) / suffix[k]
        if caps[j] <= tau * weights[j]:
            x[j] = caps[j]
            capped += caps[j]
            continue
        for m in range(k, n):
            jm = order[m]
            share = tau * weights[jm]
            x[jm] = share if share < caps[jm] else caps[jm]
        break
    return x


def water_filling(notional: list[float], equity: list[float], caps: list[float],
                  mark: float, total: float) -> list[float]:
    """Leverage-draining allocation (Campbell, Hey, Moallemi, Nutz 2026; reference §4.2).

    Close size from the most levered winners first so that their leverage after the fill,
    measured at mark on the equity before any haircut, ``(N - x M) / E``, comes down to one
    common level ``L``: ``x(L) = clamp((N - L E) / M, 0, cap)``. ``L`` is bracketed by bisection
    until as many items are at 0, and as many at their (positive) cap, at both ends of the
    bracket — then every ``x`` is linear or constant inside it — or for at most
    ``WATER_FILLING_STEPS`` steps; the bracket is interpolated so the sizes add up to ``total``
    exactly.
    """
    n = len(caps)
    if _caps_fall_short(caps, total):
        return list(caps)

    def sizes(level: float) -> tuple[list[float], float, int, int]:
        out = [0.0] * n
        f = 0.0
        zeros = capped = 0
        for j in range(n):
            x = (notional[j] - level * equity[j]) / mark
            if x < 0.0:
                x = 0.0
            elif x > caps[j]:
                x = caps[j]
                if x > 0.0:
                    capped += 1
            if x == 0.0:
                zeros += 1
            out[j] = x
            f += x
        return out, f, zeros, capped

    lo = 0.0
    hi = 0.0
    for j in range(n):
        lev = notional[j] / equity[j]
        if lev > hi:
            hi = lev
    _, _, z_lo, c_lo = sizes(lo)
    _, _, z_hi, c_hi = sizes(hi)
    for _ in range(WATER_FILLING_STEPS):
        if z_lo == z_hi and c_lo == c_hi:
            break
        mid = 0.5 * (lo + hi)
        _, f, z, c = sizes(mid)
        if f >= total:
            lo, z_lo, c_lo = mid, z, c
        else:
            hi, z_hi, c_hi = mid, z, c
    x_lo, f_lo, _, _ = sizes(lo)
    x_hi, f_hi, _, _ = sizes(hi)
    theta = (total - f_hi) / (f_lo - f_hi) if f_lo > f_hi else 1.0
    return [x_hi[j] + theta * (x_lo[j] - x_hi[j]) for j in range(n)]


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


class _Reference:
    def __init__(self, tape_ts, tape_price, stream, col, pos, entry, params: EngineParams):
        self.p = params
        self.ts = tape_ts
        self.px = tape_price
        self.stream = stream
        n = len(col)
        self.n = n
        self.V = n  # the vault's slot
        self.F = n + 1  # the insurance fund's slot: its cash is col[F]
        self.col = np.concatenate([np.array(col, dtype=np.float64), [params.vault_initial, params.fund_initial]])
        self.pos = np.concatenate([np.array(pos, dtype=np.float64), [0.0, 0.0]])
        self.ep = np.concatenate([np.array(entry, dtype=np.float64), [0.0, 0.0]])
        self.status = np.where(self.pos[:n] != 0.0, Status.ACTIVE, Status.FLAT).astype(np.int8)
        self.partial_tick = np.full(n, -1, dtype=np.int64)
        self.socialized = np.zeros(n, dtype=np.float64)
        self.cooldown_until = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self.fund_min = params.fund_initial
        self.vault_min = params.vault_initial
        self.bad_debt = 0.0
        self.ext_pos = 0.0
        self.ext_cash = 0.0
        for i in range(n):
            self.ext_pos -= float(self.pos[i])
            self.ext_cash += float(self.pos[i]) * float(self.ep[i])
        self.long_oi = 0.0
        self.short_oi = 0.0
        for i in range(n):
            q = float(self.pos[i])
            if q > 0:
                self.long_oi += q
            elif q < 0:
                self.short_oi -= q
        self.book = Book(params)
        self.px = counterfactual_tape(params, tape_ts, tape_price)
        self.events = {name: [] for name, _, _ in EVENT_COLUMNS}
        self.series = {name: [] for name, _, _ in SERIES_COLUMNS}
        self.pending: deque[tuple[int, int]] = deque()
        self.vault_next_unwind = 0
        self.fund_next_unwind = 0
        self.rank_ids: dict[float, deque[int]] = {}
        self.rank_time: dict[float, int] = {}
        self.fund_peaks: deque[tuple[int, float]] = deque()
        self.cum_liq = 0
        self.cum_liq_notional = 0.0
        self.cum_adl = 0
        self.cum_adl_notional = 0.0
        self.adl_overshoot = 0.0
        self.order_haircut = 0.0
        self.merge_fills = AdlPolicy(params.adl_policy).merges_fills
        self.fill_row: dict[int, tuple[int, int]] = {}  # winner -> (interval, row) of its latest row
        self.adl_bucket = 0  # series interval of the ADL order being filled (from 1)

    # ---------------------------------------------------------------- helpers
    @property
    def fund(self) -> float:
        return float(self.col[self.F])

    def mm(self, notional: float) -> float:
        return maintenance_margin(notional, self.p.mm_floors, self.p.mm_rates, self.p.mm_cums)

    def equity(self, a: int) -> float:
        return float(self.col[a]) + float(self.pos[a]) * (self.mark - float(self.ep[a]))

    def crosses(self, a: int) -> bool:
        q = float(self.pos[a])
        e = float(self.col[a]) + q * (self.mark - float(self.ep[a]))
        return e < self.mm(abs(q) * self.mark)

    def sim_price(self) -> float:
        return self.tape * self.book.m

    def public_id(self, a: int) -> int:
        if a == self.V:
            return VAULT_ID
        if a == self.F:
            return FUND_ID
        return a

    def emit(self, kind, account, counterparty, size, price, fee, amount, equity_after):
        ev = self.events
        ev["ts"].append(self.t)
        ev["tick"].append(self.i)
        ev["round"].append(self.round)
        ev["kind"].append(int(kind))
        ev["account"].append(self.public_id(account))
        ev["counterparty"].append(self.public_id(counterparty) if counterparty >= 0 else counterparty)
        ev["size"].append(size)
        ev["price"].append(price)
        ev["notional"].append(abs(size) * price)
        ev["fee"].append(fee)
        ev["amount"].append(amount)
        ev["equity_after"].append(equity_after)
        ev["fund_after"].append(self.fund)

    def note_fund(self) -> None:
        if self.fund < self.fund_min:
            self.fund_min = self.fund

    def vault_equity(self) -> float:
        v = self.V
        return float(self.col[v]) + float(self.pos[v]) * (self.mark - float(self.ep[v]))

    def vault_beyond(self) -> bool:
        """Whether the vault's loss at the mark passes its threshold."""
        return self.vault_equity() < self.p.vault_initial - self.p.vault_loss_limit

    def vault_takes(self) -> bool:
        """Whether the venue has a backstop vault that may take an account over now."""
        return self.p.backstop_ratio > 0.0 and not self.vault_beyond()

    def vault_check(self) -> None:
        """After every change of the vault's equity (a takeover, an unwind, a re-mark): note
        its lowest equity; once its loss passes the threshold, deleverage its whole inventory."""
        v = self.V
        equity = self.vault_equity()
        if equity < self.vault_min:
            self.vault_min = equity
        closes = self.p.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)
        if (float(self.pos[v]) != 0.0 and closes
                and equity < self.p.vault_initial - self.p.vault_loss_limit):
            self.adl_close(v, float(self.pos[v]), True)
            equity = self.vault_equity()
            if equity < self.vault_min:
                self.vault_min = equity

    def reduce(self, a: int, closed: float, price: float) -> float:
        """Close ``closed`` (same sign as the position) of account ``a`` at ``price``."""
        realized = closed * (price - float(self.ep[a]))
        self.col[a] += realized
        self.pos[a] -= closed
        if a < self.n:
            if closed > 0:
                self.long_oi -= closed
            else:
                self.short_oi += closed
        return realized

    def take(self, h: int, dq: float, price: float) -> None:
        """Inventory holder ``h`` (vault or fund) changes its position by ``dq`` at ``price``."""
        q = float(self.pos[h])
        if q == 0.0 or _sign(q) == _sign(dq):
            self.ep[h] = (q * float(self.ep[h]) + dq * price) / (q + dq)
            self.pos[h] = q + dq
        elif abs(dq) <= abs(q):
            self.reduce(h, -dq, price)
        else:
            self.col[h] += q * (price - float(self.ep[h]))
            self.pos[h] = q + dq
            self.ep[h] = price

    def cover_deficit(self, a: int) -> None:
        deficit = -float(self.col[a])
        cash = self.fund if self.fund > 0.0 else 0.0  # inventory losses can leave it negative
        pay = deficit if deficit < cash else cash
        if pay > 0.0:
            self.col[self.F] -= pay
            self.col[a] += pay
            self.emit(EventKind.FUND_PAYMENT, a, BOOK_ID, 0.0, 0.0, 0.0, pay, self.equity(a))
        rest = deficit - pay
        if rest > 0.0 and self.p.adl_policy == AdlPolicy.SOCIALIZE:
            rest -= self.socialize(a, rest)  # credits the account with what it covered
            if rest <= ADL_REST_TOL * deficit:
                rest = 0.0
            self.col[a] = -rest
        if rest > 0.0:
            self.bad_debt += rest
            self.col[a] = 0.0
            self.emit(EventKind.BAD_DEBT, a, BOOK_ID, 0.0, 0.0, 0.0, rest, self.equity(a))
        elif self.col[a] < 0.0:
            self.col[a] = 0.0
        self.note_fund()

    def socialize(self, a: int, loss: float) -> float:
        """Charge ``loss`` to every open ACTIVE position by size, never below zero equity; one
        event records the total, ``socialized`` each account's share."""
        n = self.n
        holders = [int(i) for i in np.flatnonzero((self.status == Status.ACTIVE) & (self.pos[:n] != 0.0))]
        total = 0.0
        for i in holders:
            total += abs(float(self.pos[i]))
        covered = 0.0
        if total <= 0.0:
            return covered
        for i in holders:
            charge = loss * abs(float(self.pos[i])) / total
            room = self.equity(i)
            if charge > room:
                charge = room if room > 0.0 else 0.0
            if charge <= 0.0:
                continue
            self.col[i] -= charge
            self.socialized[i] += charge
            covered += charge
        if covered > 0.0:
            self.col[a] += covered  # the market pays this much of the deficit
            self.emit(EventKind.SOCIALIZED_LOSS, a, MARKET_ID, 0.0, 0.0, 0.0, covered, self.equity(a))
        return covered

    # ------------------------------------------------------------ execution
    def book_close(self, a: int, size: float, kind: int, fee_rate: float, settle: bool = True) -> float:
        """Send a market order closing ``size`` of account ``a`` to the book; return the fill.

        ``settle=False`` leaves a negative balance for the caller to settle (the order is the
        first part of a liquidation whose rest goes elsewhere)."""
        fill, move = self.book.walk(-_sign(size), abs(size), self.sim_price(), self.tape)
        return self.book_fill(a, size, kind, fee_rate, settle, fill, move)

    def book_fill(self, a: int, size: float, kind: int, fee_rate: float, settle: bool,
                  fill: float, move: float) -> float:
        """Settle a market order already walked through the book (``fill``, ``move``)."""
        side = -_sign(size)
        self.book.commit(side, move, abs(size) * fill)
        self.ext_pos += size
        self.ext_cash -= size * fill
        realized = self.reduce(a, size, fill)
        fee = 0.0
        if a < self.n:
            fee = self.charge_fee(a, fee_rate * abs(size) * fill)
            self.cum_liq += 1
            self.cum_liq_notional += abs(size) * fill
        self.emit(kind, a, BOOK_ID, size, fill, fee, realized, self.equity(a))
        if settle and a < self.n and float(self.col[a]) < 0.0:
            self.cover_deficit(a)
        return fill

    def charge_fee(self, a: int, fee: float) -> float:
        """Move the liquidation fee into the fund, capped at the collateral left; with
        ``liq_surplus_to_fund`` a closed-out account hands over all that is left."""
        room = float(self.col[a])
        if self.p.liq_surplus_to_fund and float(self.pos[a]) == 0.0 and room > fee:
            fee = room
        if fee > room:
            fee = room if room > 0.0 else 0.0
        self.col[a] -= fee
        self.col[self.F] += fee
        return fee

    def adl_candidates(self, side: float) -> list[int]:
        """Opposite-side ACTIVE accounts in profit at mark with positive equity (queue: in
        queue order)."""
        mark = self.mark
        pos = self.pos[: self.n]
        upnl = pos * (mark - self.ep[: self.n])
        mask = (self.status == Status.ACTIVE) & (pos * side < 0) & (upnl > 0) & (self.col[: self.n] + upnl > 0)
        ids = [int(i) for i in np.flatnonzero(mask)]
        if self.p.adl_policy == AdlPolicy.QUEUE:
            scores = {
                i: adl_score(self.p.adl_ranking, float(self.pos[i]), float(self.col[i]),
                             float(self.ep[i]), mark, self.p)
                for i in ids
            }
            ids.sort(key=lambda i: (-scores[i], i))
        return ids

    def adl_queue(self, side: float) -> deque[int]:
        """The ranked queue against a liquidated position of ``side``, re-ranked when stale.

        The queue is a snapshot taken at most once per ``adl_rank_interval`` of tape time and
        consumed from the front in between; accounts no longer eligible are skipped.
        """
        built = self.rank_time.get(side)
        if built is None or self.t - built >= self.p.adl_rank_interval_ns:
            self.rank_ids[side] = deque(self.adl_candidates(side))
            self.rank_time[side] = self.t
        return self.rank_ids[side]

    def adl_eligible(self, i: int, side: float) -> bool:
        q = float(self.pos[i])
        upnl = q * (self.mark - float(self.ep[i]))
        return (self.status[i] == Status.ACTIVE and q * side < 0 and upnl > 0
                and float(self.col[i]) + upnl > 0)

    def adl_available(self, i: int, price: float) -> float:
        """Largest size of winner ``i`` that can close at ``price`` keeping its equity >= 0."""
        q = float(self.pos[i])
        worse = _sign(q) * (price - self.mark)
        if worse < 0.0:
            cap = self.equity(i) / (-worse) * (1.0 - ADL_EQUITY_GUARD)
            return cap if cap < abs(q) else abs(q)
        return abs(q)

    def adl_fill(self, i: int, a: int, take: float, price: float) -> float:
        """Close ``take`` of winner ``i`` at ``price`` against account ``a``'s order; log it
        (a row of its own, or added to the winner's row of this interval: see the module notes)."""
        closed = _sign(float(self.pos[i])) * take
        self.reduce(i, closed, price)
        if float(self.pos[i]) == 0.0:
            self.status[i] = Status.CLOSED
        haircut = -closed * (price - self.mark)
        if not haircut > 0.0:
            haircut = 0.0
        self.cum_adl += 1
        self.cum_adl_notional += take * price
        self.order_haircut += haircut
        if self.merge_fills:
            bucket, row = self.fill_row.get(i, (0, -1))
            if bucket == self.adl_bucket:
                self.merge_fill(row, a, closed, take * price, haircut, self.equity(i))
                return haircut
            self.fill_row[i] = (self.adl_bucket, len(self.events["ts"]))
        self.emit(EventKind.ADL_FILL, i, a, closed, price, 0.0, haircut, self.equity(i))
        return haircut

    def merge_fill(self, row: int, a: int, closed: float, notional: float, haircut: float,
                   equity_after: float) -> None:
        """Add a fill to ADL_FILL row ``row`` (the Cython twin is ``_events.events_merge``)."""
        ev = self.events
        if ev["counterparty"][row] != self.public_id(a):
            ev["counterparty"][row] = ADL_ORDERS_ID
        ev["size"][row] += closed
        ev["notional"][row] += notional
        ev["price"][row] = ev["notional"][row] / abs(ev["size"][row])
        ev["amount"][row] += haircut
        ev["equity_after"][row] = equity_after
        ev["fund_after"][row] = self.fund

    def adl_price(self, a: int) -> float:
        p = self.p.adl_price
        if p == AdlPrice.BANKRUPTCY:
            price = float(self.ep[a]) - float(self.col[a]) / float(self.pos[a])
            return price if price > 0.0 else self.mark
        if p == AdlPrice.PREVIOUS_MARK:
            return self.prev_mark
        return self.mark

    def adl_close(self, a: int, size: float, full: bool) -> None:
        """Auto-deleverage ``size`` of account ``a`` (or an inventory) against the other side."""
        side = _sign(size)
        price = self.adl_price(a)
        wanted = abs(size)
        remaining = wanted
        absorbed = 0.0
        policy = self.p.adl_policy
        self.order_haircut = 0.0
        if self.merge_fills:
            self.adl_bucket = (self.t - int(self.ts[0])) // self.p.series_interval_ns + 1
        if policy == AdlPolicy.QUEUE:
            queue = self.adl_queue(side)
            while queue and remaining > 0.0:
                i = queue[0]
                if not self.adl_eligible(i, side):
                    queue.popleft()
                    continue
                avail = self.adl_available(i, price)
                if avail <= 0.0:
                    queue.popleft()
                    continue
                if remaining < avail:
                    take = remaining
                else:
                    take = avail
                    queue.popleft()
                self.adl_fill(i, a, take, price)
                remaining -= take
                absorbed += take
        else:
            ids = self.adl_candidates(side)
            caps = [self.adl_available(i, price) for i in ids]
            if policy == AdlPolicy.WATER_FILLING:
                notional = [abs(float(self.pos[i])) * self.mark for i in ids]
                equity = [self.equity(i) for i in ids]
                takes = water_filling(notional, equity, caps, self.mark, wanted)
            else:
                weights = [adl_weight(policy, float(self.pos[i]), float(self.col[i]), float(self.ep[i]),
                                      self.mark, self.p.adl_risk_power) for i in ids]
                takes = capped_allocation(weights, caps, wanted)
            for i, take in zip(ids, takes):
                if take > 0.0:
                    self.adl_fill(i, a, take, price)
                    remaining -= take
                    absorbed += take
        rest = wanted - absorbed
        if rest <= ADL_REST_TOL * wanted:
            rest = 0.0
        if absorbed > 0.0:
            q_a = float(self.pos[a])
            closed_a = q_a if (full and rest == 0.0) else side * absorbed
            shortfall = -(float(self.col[a]) * abs(closed_a) / abs(q_a) + closed_a * (self.mark - float(self.ep[a])))
            if not shortfall > 0.0:
                shortfall = 0.0
            if self.order_haircut > shortfall:
                self.adl_overshoot += self.order_haircut - shortfall
            self.reduce(a, closed_a, price)
            if a < self.n:
                self.cum_liq += 1
                self.cum_liq_notional += abs(closed_a) * price
            self.emit(EventKind.ADL_LIQUIDATION, a, BOOK_ID, closed_a, price, 0.0, shortfall, self.equity(a))
        if rest > 0.0:
            kind, fee_rate = self.unwind_kind(a)
            self.book_close(a, float(self.pos[a]) if full else side * rest, kind, fee_rate)
        elif a < self.n and float(self.col[a]) < 0.0:
            self.cover_deficit(a)

    def unwind_kind(self, a: int) -> tuple[int, float]:
        if a == self.V:
            return EventKind.VAULT_UNWIND, 0.0
        if a == self.F:
            return EventKind.FUND_UNWIND, 0.0
        return EventKind.LIQUIDATION, self.p.liq_fee_rate

    def backstop(self, a: int, equity: float) -> None:
        q = float(self.pos[a])
        v = self.V
        if float(self.pos[v]) == 0.0:
            self.vault_next_unwind = self.t + self.p.vault_unwind_interval_ns
        self.take(v, q, self.mark)
        self.col[v] += equity
        self.reduce(a, q, self.mark)
        self.col[a] = 0.0
        self.cum_liq += 1
        self.cum_liq_notional += abs(q) * self.mark
        self.emit(EventKind.BACKSTOP, a, v, q, self.mark, 0.0, equity, 0.0)
        self.vault_check()

    def order_size(self, a: int, q: float, equity: float, notional: float) -> tuple[float, bool]:
        """Size of the liquidation order and whether it closes the whole position."""
        p = self.p
        if self.t < self.cooldown_until[a]:
            return q, True
        if p.partial_mode == PartialMode.FRACTION:
            if (p.partial_fraction < 1.0 and notional > p.partial_threshold and equity >= 0.0
                    and notional * (1.0 - p.partial_fraction) >= DUST_NOTIONAL):
                return q * p.partial_fraction, False
            return q, True
        floors = p.mm_floors
        k = 0
        while k + 1 < len(floors) and floors[k + 1] <= notional:
            k += 1
        for j in range(k, 0, -1):
            target = float(floors[j]) * (1.0 - TIER_STEP_MARGIN)
            if equity >= self.mm(target):
                return q * (1.0 - target / notional), False
        return q, True

    def limit_price(self, a: int, side: float) -> float:
        """Worst price the liquidation order may fill at (NaN: no limit)."""
        p = self.p
        limit = math.nan
        if p.liq_limit_bankruptcy:
            limit = float(self.ep[a]) - float(self.col[a]) / float(self.pos[a])
        if p.liq_price_band != math.inf:
            band = self.mark * (1.0 + side * p.liq_price_band)
            if limit != limit or side * (band - limit) < 0.0:
                limit = band
        return limit

    def fund_can_take(self, dq: float, price: float, deficit: float) -> bool:
        """Whether the fund can take ``dq`` at ``price`` within its capacity, after paying
        ``deficit`` (what the takeover may leave the account owing)."""
        f = self.F
        q = float(self.pos[f])
        new_q = q + dq
        value = (float(self.col[f]) + q * (self.mark - float(self.ep[f])) + dq * (self.mark - price)
                 - deficit)
        return value >= 0.0 and abs(new_q) * self.mark <= self.p.fund_capacity * value

    def market_liquidation(self, a: int, size: float, kind: int, full: bool) -> None:
        p = self.p
        closes = p.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)
        side = -_sign(size)
        limit = self.limit_price(a, side)
        if limit != limit:
            fill, move = self.book.walk(side, abs(size), self.sim_price(), self.tape)
            after = float(self.col[a]) + size * (fill - float(self.ep[a]))
            deficit = -after if after < 0.0 else 0.0
            if deficit > self.fund and self.vault_takes():
                self.backstop(a, self.equity(a))  # the book cannot close it: not successful
            elif deficit > self.fund and closes:
                self.adl_close(a, size, full)
            else:
                self.book_fill(a, size, kind, p.liq_fee_rate, True, fill, move)  # walked once
            return
        filled = self.book.fillable(side, abs(size), self.sim_price(), self.tape, limit)
        if filled >= abs(size):
            self.book_close(a, size, kind, p.liq_fee_rate)
            return
        # the rest's route is decided before anything fills
        bankruptcy = float(self.ep[a]) - float(self.col[a]) / float(self.pos[a])
        rest = -side * (abs(size) - filled)
        # at the bankruptcy price a whole close leaves the account >= 0; a partial one keeps its
        # share of negative collateral (fills better than the limit only reduce it)
        owed = 0.0 if full else -float(self.col[a]) * (1.0 - size / float(self.pos[a]))
        to_fund = p.takeover == Takeover.FUND and self.fund_can_take(rest, bankruptcy, owed if owed > 0.0 else 0.0)
        filled_notional = 0.0
        if filled > 0.0:
            fill = self.book_close(a, -side * filled, kind, 0.0 if to_fund else p.liq_fee_rate,
                                   settle=False)
            filled_notional = filled * fill
        part = float(self.pos[a]) if full else rest
        if to_fund:
            f = self.F
            if float(self.pos[f]) == 0.0:
                self.fund_next_unwind = self.t + p.fund_unwind_interval_ns
            self.take(f, part, bankruptcy)
            realized = self.reduce(a, part, bankruptcy)
            fee = self.charge_fee(a, p.liq_fee_rate * (filled_notional + abs(part) * bankruptcy))
            self.cum_liq += 1
            self.cum_liq_notional += abs(part) * bankruptcy
            self.emit(EventKind.FUND_TAKEOVER, a, FUND_ID, part, bankruptcy, fee, realized, self.equity(a))
            if float(self.col[a]) < 0.0:
                self.cover_deficit(a)
        elif closes:
            self.adl_close(a, part, full)
        else:
            self.book_close(a, part, kind, p.liq_fee_rate)

    def liquidate(self, a: int) -> None:
        p = self.p
        q = float(self.pos[a])
        equity = self.equity(a)
        notional = abs(q) * self.mark
        mm = self.mm(notional)
        closes = p.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)
        if equity < 0.0 and p.adl_on_negative_equity and closes:
            self.adl_close(a, q, True)
        elif p.backstop_ratio > 0.0 and equity < p.backstop_ratio * mm and not self.vault_beyond():
            self.backstop(a, equity)
        elif closes and self.fund_drawdown_active():
            self.adl_close(a, q, True)
        else:
            size, full = self.order_size(a, q, equity, notional)
            partial = not full
            if abs(size) * self.mark > p.liq_max_order_notional:
                size = _sign(size) * p.liq_max_order_notional / self.mark
                full = False
            kind = EventKind.LIQUIDATION if full else EventKind.PARTIAL_LIQUIDATION
            self.market_liquidation(a, size, kind, full)
            if partial:
                self.cooldown_until[a] = self.t + p.partial_cooldown_ns
            if not full:
                self.partial_tick[a] = self.i
        self.status[a] = Status.ACTIVE if float(self.pos[a]) != 0.0 else Status.CLOSED

    def fund_drawdown_active(self) -> bool:
        if self.p.adl_fund_drawdown == math.inf or not self.fund_peaks:
            return False
        return self.fund < (1.0 - self.p.adl_fund_drawdown) * self.fund_peaks[0][1]

    def sample_fund_peak(self) -> None:
        """Rolling maximum of the fund balance over ``adl_fund_window`` (sampled per tick)."""
        value = self.fund
        peaks = self.fund_peaks
        while peaks and peaks[-1][1] <= value:
            peaks.pop()
        peaks.append((self.t, value))
        while peaks[0][0] < self.t - self.p.adl_fund_window_ns:
            peaks.popleft()

    # ------------------------------------------------------------- the loop
    def ema(self, which: int, sample: float, dt: int, tau: float) -> float:
        w = float(dt)
        num, den = self.ema_num[which], self.ema_den[which]
        if den == 0.0:
            if w <= 0.0:
                w = 1.0
            num = sample * w
            den = w
        else:
            decay = math.exp(-w / tau)
            num = num * decay + sample * w
            den = den * decay + w
        self.ema_num[which], self.ema_den[which] = num, den
        return num / den

    def update_mark(self, dt: int) -> None:
        p = self.p
        method = p.mark_method
        s = self.sim_price()
        x = float(self.stream[self.i])
        self.index = x
        if method == MarkMethod.LAST:
            self.mark = s
        elif method == MarkMethod.STREAM:
            self.mark = x if x == x else s
        elif method == MarkMethod.EMA:
            self.mark = self.ema(0, s, dt, p.mark_ema_tau_ns)
        elif method == MarkMethod.HL_MEDIAN:
            last_ema = self.ema(1, s, dt, p.mark_ema2_tau_ns)
            if x != x:
                self.mark = s
            else:
                self.mark = median3(x + self.ema(0, s - x, dt, p.mark_ema_tau_ns), s, last_ema)
        elif x != x:
            self.mark = s
        else:
            basis = self.ema(0, s - x, dt, p.mark_ema_tau_ns)
            self.mark = x + basis if method == MarkMethod.INDEX_EMA_BASIS else median3(x, x + basis, s)

    def refresh_mark(self) -> None:
        """Same tick, after impact moved ``S``: components that follow ``S`` are recomputed."""
        method = self.p.mark_method
        s = self.sim_price()
        x = self.index
        if method == MarkMethod.LAST:
            self.mark = s
        elif method in (MarkMethod.BINANCE_MEDIAN, MarkMethod.HL_MEDIAN):
            if x != x:
                self.mark = s
            elif method == MarkMethod.BINANCE_MEDIAN:
                self.mark = median3(x, x + self.ema_num[0] / self.ema_den[0], s)
            else:
                self.mark = median3(x + self.ema_num[0] / self.ema_den[0], s,
                                    self.ema_num[1] / self.ema_den[1])

    def record(self) -> None:
        v = self.V
        se = self.series
        se["ts"].append(self.t)
        se["tape_price"].append(self.tape)
        se["sim_price"].append(self.sim_price())
        se["mark"].append(self.mark)
        se["fund"].append(self.fund)
        se["vault_equity"].append(float(self.col[v]) + float(self.pos[v]) * (self.mark - float(self.ep[v])))
        se["long_oi"].append(self.long_oi)
        se["short_oi"].append(self.short_oi)
        se["cum_liquidations"].append(self.cum_liq)
        se["cum_liquidated_notional"].append(self.cum_liq_notional)
        se["cum_adl_fills"].append(self.cum_adl)
        se["cum_adl_notional"].append(self.cum_adl_notional)

    def inventories(self) -> None:
        """Step 4: the vault's unwinding (its loss checked after), then the fund's offloading."""
        p = self.p
        v = self.V
        if float(self.pos[v]) != 0.0 and self.t >= self.vault_next_unwind:
            self.unwind(v, p.vault_unwind_fraction, EventKind.VAULT_UNWIND)
            self.vault_next_unwind = self.t + p.vault_unwind_interval_ns
            self.vault_check()
        f = self.F
        if float(self.pos[f]) != 0.0 and self.t >= self.fund_next_unwind:
            self.unwind(f, p.fund_unwind_fraction, EventKind.FUND_UNWIND)
            self.fund_next_unwind = self.t + p.fund_unwind_interval_ns
            self.note_fund()

    def unwind(self, h: int, fraction: float, kind: int) -> None:
        q = float(self.pos[h])
        size = q * fraction
        if abs(q - size) * self.sim_price() < DUST_NOTIONAL:
            size = q
        self.book_close(h, size, kind, 0.0)

    def run(self, on_tick: Callable[[int], None] | None = None) -> RawRun:
        p = self.p
        n = self.n
        cap = p.max_liqs_per_step
        self.ema_num = [0.0, 0.0]
        self.ema_den = [0.0, 0.0]
        self.mark = 0.0
        self.prev_mark = 0.0
        self.index = math.nan
        tape_peak = sim_peak = 0.0
        tape_dd = sim_dd = 0.0
        tape_min = sim_min = math.inf
        max_rounds = 0
        next_sample = int(self.ts[0]) if len(self.ts) else 0
        last_ts = int(self.ts[0]) if len(self.ts) else 0
        recorded_last = False
        floors, rates, cums = p.mm_floors, p.mm_rates, p.mm_cums
        track_peak = p.adl_fund_drawdown != math.inf
        every = max(len(self.ts) // PROGRESS_STEPS, 1)
        for i in range(len(self.ts)):
            if on_tick is not None and i % every == 0:  # reads nothing of the run: its result is the same
                on_tick(i)
            t = int(self.ts[i])
            self.i = i
            self.t = t
            self.tape = float(self.px[i])
            self.round = 0
            dt = t - last_ts
            self.book.seek(t)
            self.book.decay(dt)
            last_ts = t
            self.update_mark(dt)
            self.prev_mark = self.mark if i == 0 else self.prev_mark
            if track_peak:
                self.sample_fund_peak()
            executed = 0
            while True:
                if self.round > 0:
                    self.refresh_mark()
                if float(self.pos[self.V]) != 0.0:
                    self.vault_check()  # the inventory re-marked
                mark = self.mark
                pos = self.pos[:n]
                equity = self.col[:n] + pos * (mark - self.ep[:n])
                notional = np.abs(pos) * mark
                tier = np.searchsorted(floors, notional, side="right") - 1
                mm = notional * rates[tier] - cums[tier]
                crossing = (self.status == Status.ACTIVE) & (self.partial_tick != i) & (equity < mm)
                for a in np.flatnonzero(crossing):
                    a = int(a)
                    self.status[a] = Status.PENDING
                    self.pending.append((a, t + p.latency_ns))
                done = 0
                while self.pending and self.pending[0][1] <= t and (cap == 0 or executed < cap):
                    a, _ = self.pending.popleft()
                    if self.crosses(a):
                        self.liquidate(a)
                        done += 1
                        executed += 1
                    else:
                        self.status[a] = Status.ACTIVE
                if done == 0 or (cap != 0 and executed >= cap):
                    break
                self.round += 1
            if self.round + 1 > max_rounds:
                max_rounds = self.round + 1
            self.round += 1
            self.inventories()
            self.prev_mark = self.mark
            s = self.sim_price()
            if self.tape > tape_peak:
                tape_peak = self.tape
            if s > sim_peak:
                sim_peak = s
            if 1.0 - self.tape / tape_peak > tape_dd:
                tape_dd = 1.0 - self.tape / tape_peak
            if 1.0 - s / sim_peak > sim_dd:
                sim_dd = 1.0 - s / sim_peak
            if self.tape < tape_min:
                tape_min = self.tape
            if s < sim_min:
                sim_min = s
            recorded_last = False
            if t >= next_sample:
                self.record()
                next_sample = t + p.series_interval_ns
                recorded_last = True
        if len(self.ts) and not recorded_last:
            self.record()
        events = {name: np.array(self.events[name], dtype=dtype) for name, dtype, _ in EVENT_COLUMNS}
        series = {name: np.array(self.series[name], dtype=dtype) for name, dtype, _ in SERIES_COLUMNS}
        v, f = self.V, self.F
        scalars = {
            "fund_final": self.fund,
            "fund_min": self.fund_min,
            "fund_pos": float(self.pos[f]),
            "fund_entry": float(self.ep[f]),
            "vault_col": float(self.col[v]),
            "vault_pos": float(self.pos[v]),
            "vault_entry": float(self.ep[v]),
            "vault_min": self.vault_min,
            "bad_debt": self.bad_debt,
            "ext_cash": self.ext_cash,
            "ext_pos": self.ext_pos,
            "tape_max_drawdown": tape_dd,
            "sim_max_drawdown": sim_dd,
            "tape_min": tape_min,
            "sim_min": sim_min,
            "final_mark": self.mark,
            "final_sim_price": self.sim_price() if len(self.ts) else math.nan,
            "max_rounds": max_rounds,
            "ticks": len(self.ts),
            "adl_fills": self.cum_adl,
            "adl_overshoot": self.adl_overshoot,
        }
        return RawRun(events, series, self.col[:n].copy(), self.pos[:n].copy(),
                      self.ep[:n].copy(), self.status.copy(), scalars, self.socialized.copy())


def run_reference(tape_ts: np.ndarray, tape_price: np.ndarray, stream: np.ndarray,
                  collateral: np.ndarray, size: np.ndarray, entry: np.ndarray,
                  params: EngineParams, on_tick: Callable[[int], None] | None = None) -> RawRun:
    """Run the reference engine on validated arrays (see :func:`riskengine.engine.run`).

    Parameters
    ----------
    tape_ts : ndarray of int64
        Tick times, ns, non-decreasing.
    tape_price : ndarray of float64
        Tick prices, > 0.
    stream : ndarray of float64
        Supplied mark/index price as of each tick (NaN where none yet).
    collateral, size, entry : ndarray of float64
        Account state.
    params : EngineParams
        Venue design and liquidity model, resolved.
    on_tick : callable, optional
        Progress: called with the ticks done, :data:`PROGRESS_STEPS` times over the tape
        (a run takes seconds to minutes).

    Returns
    -------
    RawRun
    """
    return _Reference(tape_ts, tape_price, stream, collateral, size, entry, params).run(on_tick)
