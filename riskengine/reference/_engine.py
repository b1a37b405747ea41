"""Plain-Python twin of ``cext/riskengine/_engine.pyx``: the replay loop, the loss waterfall,
settlement and ADL orders, over one account's state at a time.

The loop follows the specification in :mod:`riskengine.reference` step by step, the obvious way:
every account is scanned at every cascade round (:func:`~riskengine.reference._margin.crossing`),
nothing is indexed, and it is slow on purpose. The kernels it calls live beside it, one module per
compiled module (``_adl``, ``_liquidity``, ``_mark``, ``_margin``, ``_events``).
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
    EventKind,
    PartialMode,
    Status,
    Takeover,
)
from riskengine.params import EngineParams
from riskengine.reference._adl import adl_gather, adl_weight, capped_allocation, water_filling
from riskengine.reference._events import (
    events_merge, events_push, log_init, log_to_numpy, series_push,
)
from riskengine.reference._liquidity import Book, counterfactual_tape
from riskengine.reference._margin import (
    bankruptcy_price, crosses, crossing, maintenance_margin, tier_index,
)
from riskengine.reference._mark import MarkState, mark_refresh, mark_update
from riskengine.runlog import EVENT_COLUMNS, SERIES_COLUMNS, RawRun
from riskengine.tolerances import ADL_EQUITY_GUARD, ADL_REST_TOL, DUST_NOTIONAL, TIER_STEP_MARGIN

#: times a run reports its progress (``on_tick``) over the tape
PROGRESS_STEPS = 1000


def _sign(x: float) -> float:
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


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
        self.events = log_init(EVENT_COLUMNS)
        self.series = log_init(SERIES_COLUMNS)
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

    def sim_price(self) -> float:
        return self.tape * self.book.m

    def public_id(self, a: int) -> int:
        if a == self.V:
            return VAULT_ID
        if a == self.F:
            return FUND_ID
        return a

    def emit(self, kind: int, account: int, counterparty: int, size: float, price: float, fee: float,
             amount: float, equity_after: float) -> None:
        """Log an event of this tick and round (slots as public ids; the fund balance after it)."""
        events_push(self.events, self.t, self.i, self.round, kind, self.public_id(account),
                    self.public_id(counterparty) if counterparty >= 0 else counterparty,
                    size, price, fee, amount, equity_after, self.fund)

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
        n = self.n
        return adl_gather(self.p, side, self.mark, self.col[:n], self.pos[:n], self.ep[:n], self.status)

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
        (a row of its own, or added to the winner's row of this interval: see "Logging ADL fills" in
        :mod:`riskengine.reference`)."""
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
                events_merge(self.events, row, self.public_id(a), ADL_ORDERS_ID, closed, take * price,
                             haircut, self.equity(i), self.fund)
                return haircut
            self.fill_row[i] = (self.adl_bucket, len(self.events["ts"]))
        self.emit(EventKind.ADL_FILL, i, a, closed, price, 0.0, haircut, self.equity(i))
        return haircut

    def adl_price(self, a: int) -> float:
        p = self.p.adl_price
        if p == AdlPrice.BANKRUPTCY:
            price = bankruptcy_price(float(self.col[a]), float(self.pos[a]), float(self.ep[a]))
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
        for j in range(tier_index(floors, notional), 0, -1):
            target = float(floors[j]) * (1.0 - TIER_STEP_MARGIN)
            if equity >= self.mm(target):
                return q * (1.0 - target / notional), False
        return q, True

    def limit_price(self, a: int, side: float) -> float:
        """Worst price the liquidation order may fill at (NaN: no limit)."""
        p = self.p
        limit = math.nan
        if p.liq_limit_bankruptcy:
            limit = bankruptcy_price(float(self.col[a]), float(self.pos[a]), float(self.ep[a]))
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
        bankruptcy = bankruptcy_price(float(self.col[a]), float(self.pos[a]), float(self.ep[a]))
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
    def record(self) -> None:
        series_push(self.series, self.t, self.tape, self.sim_price(), self.mark, self.fund,
                    self.vault_equity(), self.long_oi, self.short_oi, self.cum_liq,
                    self.cum_liq_notional, self.cum_adl, self.cum_adl_notional)

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
        marks = MarkState.of(p)
        self.mark = marks.mark
        self.prev_mark = 0.0
        tape_peak = sim_peak = 0.0
        tape_dd = sim_dd = 0.0
        tape_min = sim_min = math.inf
        max_rounds = 0
        next_sample = int(self.ts[0]) if len(self.ts) else 0
        last_ts = int(self.ts[0]) if len(self.ts) else 0
        recorded_last = False
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
            self.mark = mark_update(marks, self.sim_price(), float(self.stream[i]), dt)
            self.prev_mark = self.mark if i == 0 else self.prev_mark
            if track_peak:
                self.sample_fund_peak()
            executed = 0
            while True:
                if self.round > 0:
                    self.mark = mark_refresh(marks, self.sim_price())
                if float(self.pos[self.V]) != 0.0:
                    self.vault_check()  # the inventory re-marked
                newly = ((self.status == Status.ACTIVE) & (self.partial_tick != i)
                         & crossing(p, self.col[:n], self.pos[:n], self.ep[:n], self.mark))
                for a in np.flatnonzero(newly):
                    a = int(a)
                    self.status[a] = Status.PENDING
                    self.pending.append((a, t + p.latency_ns))
                done = 0
                while self.pending and self.pending[0][1] <= t and (cap == 0 or executed < cap):
                    a, _ = self.pending.popleft()
                    if crosses(p, float(self.col[a]), float(self.pos[a]), float(self.ep[a]), self.mark):
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
        events = log_to_numpy(self.events, EVENT_COLUMNS)
        series = log_to_numpy(self.series, SERIES_COLUMNS)
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
