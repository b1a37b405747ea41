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
*crossing* when ``E < MM``.

For each tape tick ``i`` at time ``t``:

1. **Price.** The transient impact multiplier ``m`` decays toward 1 with the impact half-life;
   the simulated price is ``S = tape_price * m``.
2. **Mark.** The venue's method gives ``M`` (last = ``S``; EMA = time-weighted EMA of ``S``;
   stream = the supplied stream, ``S`` until it starts; index + EMA of ``S - index``).
3. **Cascade rounds.** Repeat: refresh ``S`` (and ``M`` for the last-trade mark); every
   ACTIVE account that crosses and was not partially liquidated at this tick becomes PENDING,
   due at ``t + latency``, appended in account-id order to one FIFO queue; then due entries
   are taken from the queue front, at most ``max_liqs_per_step`` per tick, re-checked (an
   account that no longer crosses becomes ACTIVE again) and liquidated. Stop when a round
   liquidates nothing or the cap is reached.
4. **Vault.** If the backstop vault's loss passes its limit, its inventory is auto-deleveraged;
   otherwise every ``vault_unwind_interval`` it sells ``vault_unwind_fraction`` of it into the
   book.
5. **Record** drawdowns and, at most once per ``series_interval``, a series sample.

Liquidating an account (the loss waterfall):

* equity below zero and ``adl_on_negative_equity``: the whole position is auto-deleveraged;
* else equity below ``backstop_ratio x MM``: the vault takes the position at mark and the
  account's remaining equity (the maintenance margin is not returned);
* else a market order closes the position — a ``partial_fraction`` of it when the notional is
  above ``partial_threshold`` and the account is not in its cooldown — walking the depth curve
  from ``S``. The liquidation fee (capped at the collateral left) goes to the insurance fund.
  If the fill would leave a deficit larger than the fund, the order is auto-deleveraged
  instead; otherwise the fund pays the deficit.

Auto-deleveraging closes the order against opposite-side accounts in profit at mark, in the
policy's order (a queue by score, ties by account id, ranked at most once per
``adl_rank_interval`` and consumed in between; or pro rata by size), at the bankruptcy
price of the liquidated account or at mark. A fill never takes an ADL'd account's equity below
zero; what the opposite side cannot absorb goes to the book. A deficit that neither the fund
nor ADL covers is bad debt.

All money moves conserve ``sum(c - q e) + fund + vault + external market - bad debt``, and every
closed size has a counterparty: the book (the external market), the vault or an ADL'd account.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from riskengine.codes import (
    BOOK_ID,
    VAULT_ID,
    AdlPolicy,
    AdlPrice,
    AdlRanking,
    EventKind,
    MarkMethod,
    Status,
)
from riskengine.params import EngineParams, maintenance_margin
from riskengine.runlog import EVENT_COLUMNS, SERIES_COLUMNS, RawRun

LN2 = 0.6931471805599453
#: relative size below which an unabsorbed ADL remainder is rounding noise
ADL_REST_TOL = 1e-12
#: an ADL fill stops this far (relative) short of taking the account's equity to exactly zero
ADL_EQUITY_GUARD = 1e-12
#: the vault sells everything once what would remain is worth less than this (quote units)
VAULT_DUST_NOTIONAL = 1.0


def _sign(x: float) -> float:
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


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


def walk_depth(side: float, qty: float, price: float, params: EngineParams) -> tuple[float, float]:
    """Walk a constant-depth book with a market order.

    Cumulative depth is linear in the distance from the price:
    ``D(delta) = depth_per_pct * delta / 1%`` (quote notional), so an order of notional ``X``
    moves the price by ``delta = 1% X / depth_per_pct`` and fills at the average
    ``delta / 2`` away (reference §5, "linear cumulative depth"). Beyond ``max_move`` the book
    is treated as a wall: the rest fills at ``max_move``.

    Parameters
    ----------
    side : float
        +1 for a buy, -1 for a sell.
    qty : float
        Order size in base units, > 0.
    price : float
        Price the walk starts from.

    Returns
    -------
    (fill_price, move)
        Average fill price and the relative price move the order causes.
    """
    notional = qty * price
    full_move = 0.01 * notional / params.depth_per_pct
    if full_move <= params.max_move:
        move = full_move
        avg = full_move / 2.0
    else:
        move = params.max_move
        cap_notional = params.depth_per_pct * params.max_move / 0.01
        avg = (cap_notional * (params.max_move / 2.0) + (notional - cap_notional) * params.max_move) / notional
    return price * (1.0 + side * avg), move


class _Reference:
    def __init__(self, tape_ts, tape_price, stream, col, pos, entry, params: EngineParams):
        self.p = params
        self.ts = tape_ts
        self.px = tape_price
        self.stream = stream
        n = len(col)
        self.n = n
        # the vault is account n in the state arrays
        self.col = np.append(np.array(col, dtype=np.float64), params.vault_initial)
        self.pos = np.append(np.array(pos, dtype=np.float64), 0.0)
        self.ep = np.append(np.array(entry, dtype=np.float64), 0.0)
        self.status = np.where(self.pos[:n] != 0.0, Status.ACTIVE, Status.FLAT).astype(np.int8)
        self.partial_tick = np.full(n, -1, dtype=np.int64)
        self.cooldown_until = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self.fund = params.fund_initial
        self.fund_min = self.fund
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
        self.m = 1.0
        self.events = {name: [] for name, _, _ in EVENT_COLUMNS}
        self.series = {name: [] for name, _, _ in SERIES_COLUMNS}
        self.pending: deque[tuple[int, int]] = deque()
        self.vault_next_unwind = 0
        self.rank_ids: dict[float, deque[int]] = {}
        self.rank_time: dict[float, int] = {}
        self.cum_liq = 0
        self.cum_liq_notional = 0.0
        self.cum_adl = 0
        self.cum_adl_notional = 0.0

    # ---------------------------------------------------------------- helpers
    def mm(self, notional: float) -> float:
        return maintenance_margin(notional, self.p.mm_floors, self.p.mm_rates, self.p.mm_cums)

    def equity(self, a: int) -> float:
        return float(self.col[a]) + float(self.pos[a]) * (self.mark - float(self.ep[a]))

    def crosses(self, a: int) -> bool:
        q = float(self.pos[a])
        e = float(self.col[a]) + q * (self.mark - float(self.ep[a]))
        return e < self.mm(abs(q) * self.mark)

    def sim_price(self) -> float:
        return self.tape * self.m

    def emit(self, kind, account, counterparty, size, price, fee, amount, equity_after):
        ev = self.events
        ev["ts"].append(self.t)
        ev["tick"].append(self.i)
        ev["round"].append(self.round)
        ev["kind"].append(int(kind))
        ev["account"].append(VAULT_ID if account == self.n else account)
        ev["counterparty"].append(VAULT_ID if counterparty == self.n else counterparty)
        ev["size"].append(size)
        ev["price"].append(price)
        ev["notional"].append(abs(size) * price)
        ev["fee"].append(fee)
        ev["amount"].append(amount)
        ev["equity_after"].append(equity_after)
        ev["fund_after"].append(self.fund)

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

    def vault_take(self, dq: float, price: float) -> None:
        """The vault's position changes by ``dq`` at ``price`` (average entry on increase)."""
        v = self.n
        q = float(self.pos[v])
        if q == 0.0 or _sign(q) == _sign(dq):
            self.ep[v] = (q * float(self.ep[v]) + dq * price) / (q + dq)
            self.pos[v] = q + dq
        elif abs(dq) <= abs(q):
            self.reduce(v, -dq, price)
        else:
            self.col[v] += q * (price - float(self.ep[v]))
            self.pos[v] = q + dq
            self.ep[v] = price

    def cover_deficit(self, a: int) -> None:
        deficit = -float(self.col[a])
        pay = deficit if deficit < self.fund else self.fund
        if pay > 0.0:
            self.fund -= pay
            self.col[a] += pay
            self.emit(EventKind.FUND_PAYMENT, a, BOOK_ID, 0.0, 0.0, 0.0, pay, self.equity(a))
        rest = deficit - pay
        if rest > 0.0:
            self.bad_debt += rest
            self.col[a] = 0.0
            self.emit(EventKind.BAD_DEBT, a, BOOK_ID, 0.0, 0.0, 0.0, rest, self.equity(a))
        if self.fund < self.fund_min:
            self.fund_min = self.fund

    # ------------------------------------------------------------ execution
    def book_close(self, a: int, size: float, kind: int, fee_rate: float) -> None:
        """Send a market order closing ``size`` of account ``a`` to the book."""
        side = -_sign(size)
        fill, move = walk_depth(side, abs(size), self.sim_price(), self.p)
        self.m = self.m * (1.0 + side * self.p.impact_feedback * move)
        self.ext_pos += size
        self.ext_cash -= size * fill
        realized = self.reduce(a, size, fill)
        fee = 0.0
        if a < self.n:
            room = float(self.col[a])
            fee = fee_rate * abs(size) * fill
            if fee > room:
                fee = room if room > 0.0 else 0.0
            self.col[a] -= fee
            self.fund += fee
            self.cum_liq += 1
            self.cum_liq_notional += abs(size) * fill
        self.emit(kind, a, BOOK_ID, size, fill, fee, realized, self.equity(a))
        if a < self.n and float(self.col[a]) < 0.0:
            self.cover_deficit(a)

    def adl_candidates(self, side: float) -> list[int]:
        """Opposite-side ACTIVE accounts in profit at mark, in the policy's order."""
        mark = self.mark
        pos = self.pos[: self.n]
        upnl = pos * (mark - self.ep[: self.n])
        mask = (self.status == Status.ACTIVE) & (pos * side < 0) & (upnl > 0)
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
        return (self.status[i] == Status.ACTIVE and q * side < 0
                and q * (self.mark - float(self.ep[i])) > 0)

    def adl_available(self, i: int, price: float) -> float:
        """Largest size of winner ``i`` that can close at ``price`` keeping its equity >= 0."""
        q = float(self.pos[i])
        worse = _sign(q) * (price - self.mark)
        if worse < 0.0:
            cap = self.equity(i) / (-worse) * (1.0 - ADL_EQUITY_GUARD)
            return cap if cap < abs(q) else abs(q)
        return abs(q)

    def adl_fill(self, i: int, a: int, take: float, price: float) -> None:
        closed = _sign(float(self.pos[i])) * take
        self.reduce(i, closed, price)
        if float(self.pos[i]) == 0.0:
            self.status[i] = Status.CLOSED
        haircut = -closed * (price - self.mark)
        self.cum_adl += 1
        self.cum_adl_notional += take * price
        self.emit(EventKind.ADL_FILL, i, a, closed, price, 0.0,
                  haircut if haircut > 0.0 else 0.0, self.equity(i))

    def adl_close(self, a: int, size: float, full: bool) -> None:
        """Auto-deleverage ``size`` of account ``a`` (or the vault) against the other side."""
        side = _sign(size)
        q_a = float(self.pos[a])
        if self.p.adl_price == AdlPrice.BANKRUPTCY:
            price = float(self.ep[a]) - float(self.col[a]) / q_a
            if not price > 0.0:
                price = self.mark
        else:
            price = self.mark
        wanted = abs(size)
        remaining = wanted
        absorbed = 0.0
        if self.p.adl_policy == AdlPolicy.PRO_RATA:
            ids = self.adl_candidates(side)
            total = 0.0
            for i in ids:
                total += abs(float(self.pos[i]))
            takes = []
            for i in ids:
                share = wanted * abs(float(self.pos[i])) / total
                avail = self.adl_available(i, price)
                takes.append((i, share if share < avail else avail))
            for i, take in takes:
                if take > 0.0:
                    self.adl_fill(i, a, take, price)
                    remaining -= take
                    absorbed += take
        else:
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
        rest = wanted - absorbed
        if rest <= ADL_REST_TOL * wanted:
            rest = 0.0
        if absorbed > 0.0:
            closed_a = float(self.pos[a]) if (full and rest == 0.0) else side * absorbed
            realized = self.reduce(a, closed_a, price)
            if a < self.n:
                self.cum_liq += 1
                self.cum_liq_notional += abs(closed_a) * price
            self.emit(EventKind.ADL_LIQUIDATION, a, BOOK_ID, closed_a, price, 0.0, realized,
                      self.equity(a))
        kind = EventKind.VAULT_UNWIND if a == self.n else EventKind.LIQUIDATION
        fee_rate = 0.0 if a == self.n else self.p.liq_fee_rate
        if rest > 0.0:
            self.book_close(a, float(self.pos[a]) if full else side * rest, kind, fee_rate)
        elif a < self.n and float(self.col[a]) < 0.0:
            self.cover_deficit(a)

    def backstop(self, a: int, equity: float) -> None:
        q = float(self.pos[a])
        v = self.n
        if float(self.pos[v]) == 0.0:
            self.vault_next_unwind = self.t + self.p.vault_unwind_interval_ns
        self.vault_take(q, self.mark)
        self.col[v] += equity
        self.reduce(a, q, self.mark)
        self.col[a] = 0.0
        self.cum_liq += 1
        self.cum_liq_notional += abs(q) * self.mark
        self.emit(EventKind.BACKSTOP, a, v, q, self.mark, 0.0, equity, 0.0)

    def liquidate(self, a: int) -> None:
        p = self.p
        q = float(self.pos[a])
        equity = self.equity(a)
        notional = abs(q) * self.mark
        mm = self.mm(notional)
        if equity < 0.0 and p.adl_on_negative_equity and p.adl_policy != AdlPolicy.NONE:
            self.adl_close(a, q, True)
        elif p.backstop_ratio > 0.0 and equity < p.backstop_ratio * mm:
            self.backstop(a, equity)
        else:
            full = not (p.partial_fraction < 1.0 and notional > p.partial_threshold
                        and self.t >= self.cooldown_until[a])
            size = q if full else q * p.partial_fraction
            kind = EventKind.LIQUIDATION if full else EventKind.PARTIAL_LIQUIDATION
            fill, _ = walk_depth(-_sign(size), abs(size), self.sim_price(), p)
            after = float(self.col[a]) + size * (fill - float(self.ep[a]))
            deficit = -after if after < 0.0 else 0.0
            if deficit > self.fund and p.adl_policy != AdlPolicy.NONE:
                self.adl_close(a, size, full)
            else:
                self.book_close(a, size, kind, p.liq_fee_rate)
            if not full:
                self.cooldown_until[a] = self.t + p.partial_cooldown_ns
                self.partial_tick[a] = self.i
        self.status[a] = Status.ACTIVE if float(self.pos[a]) != 0.0 else Status.CLOSED

    # ------------------------------------------------------------- the loop
    def update_mark(self, dt: int) -> None:
        p = self.p
        method = p.mark_method
        s = self.sim_price()
        if method == MarkMethod.LAST:
            self.mark = s
            return
        if method == MarkMethod.STREAM:
            x = float(self.stream[self.i])
            self.mark = x if x == x else s
            return
        if method == MarkMethod.EMA:
            sample = s
        else:
            x = float(self.stream[self.i])
            if x != x:
                self.mark = s
                return
            sample = s - x
        w = float(dt)
        if self.ema_den == 0.0:
            if w <= 0.0:
                w = 1.0
            self.ema_num = sample * w
            self.ema_den = w
        else:
            decay = math.exp(-w / p.mark_ema_tau_ns)
            self.ema_num = self.ema_num * decay + sample * w
            self.ema_den = self.ema_den * decay + w
        ema = self.ema_num / self.ema_den
        self.mark = ema if method == MarkMethod.EMA else float(self.stream[self.i]) + ema

    def record(self) -> None:
        v = self.n
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

    def run(self) -> RawRun:
        p = self.p
        n = self.n
        v = n
        cap = p.max_liqs_per_step
        self.ema_num = 0.0
        self.ema_den = 0.0
        self.mark = 0.0
        tape_peak = sim_peak = 0.0
        tape_dd = sim_dd = 0.0
        tape_min = sim_min = math.inf
        max_rounds = 0
        next_sample = int(self.ts[0]) if len(self.ts) else 0
        last_ts = int(self.ts[0]) if len(self.ts) else 0
        recorded_last = False
        floors, rates, cums = p.mm_floors, p.mm_rates, p.mm_cums
        for i in range(len(self.ts)):
            t = int(self.ts[i])
            self.i = i
            self.t = t
            self.tape = float(self.px[i])
            self.round = 0
            dt = t - last_ts
            if self.m != 1.0 and dt > 0:
                self.m = 1.0 + (self.m - 1.0) * math.exp(-float(dt) * LN2 / p.impact_half_life_ns)
            last_ts = t
            self.update_mark(dt)
            executed = 0
            while True:
                if self.round > 0 and p.mark_method == MarkMethod.LAST:
                    self.mark = self.sim_price()
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
            vq = float(self.pos[v])
            if vq != 0.0:
                vault_equity = float(self.col[v]) + vq * (self.mark - float(self.ep[v]))
                if (p.adl_policy != AdlPolicy.NONE
                        and vault_equity < p.vault_initial - p.vault_loss_limit):
                    self.adl_close(v, vq, True)
                elif t >= self.vault_next_unwind:
                    size = vq * p.vault_unwind_fraction
                    if abs(vq - size) * self.sim_price() < VAULT_DUST_NOTIONAL:
                        size = vq
                    self.book_close(v, size, EventKind.VAULT_UNWIND, 0.0)
                    self.vault_next_unwind = t + p.vault_unwind_interval_ns
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
        scalars = {
            "fund_final": self.fund,
            "fund_min": self.fund_min,
            "vault_col": float(self.col[v]),
            "vault_pos": float(self.pos[v]),
            "vault_entry": float(self.ep[v]),
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
        }
        return RawRun(events, series, self.col[:n].copy(), self.pos[:n].copy(),
                      self.ep[:n].copy(), self.status.copy(), scalars)


def run_reference(tape_ts: np.ndarray, tape_price: np.ndarray, stream: np.ndarray,
                  collateral: np.ndarray, size: np.ndarray, entry: np.ndarray,
                  params: EngineParams) -> RawRun:
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

    Returns
    -------
    RawRun
    """
    return _Reference(tape_ts, tape_price, stream, collateral, size, entry, params).run()
