"""Plain-Python twin of ``cext/riskengine/_engine.pyx``: the replay loop, the loss waterfall,
settlement and ADL orders, over one margin account's state at a time.

The loop follows the specification in :mod:`riskengine.reference` step by step, the obvious way:
every margin account is scanned at every cascade round
(:func:`~riskengine.reference._margin.crossing`, instrument by instrument), nothing is indexed,
and it is slow on purpose. The state of each instrument (its mark, book, open interest, external
market, ADL ranking, drawdowns and counters) is an :class:`_Instrument`; the engine indexes it by
the instrument of the position it is working on. The kernels it calls live beside it, one module
per compiled module (``_adl``, ``_liquidity``, ``_mark``, ``_margin``, ``_events``).

Slots. Margin accounts are slots ``0..M-1``; the backstop vault's inventory in instrument ``k``
is slot ``M + k`` and the insurance fund's is slot ``M + I + k``. ``col`` holds the margin
accounts' collateral, then each vault's cash (``col[M + g]``, ``g = 0..GV-1``) and each fund's
cash (``col[M + GV + g]``), each shared by its ledger's inventories (:meth:`_Reference.wallet`;
instrument ``k``'s ledgers are ``vault_group[k]`` and ``fund_group[k]``). With one vault and one
fund this is the single-instrument layout: vault ``M``, fund ``M + 1``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

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
from riskengine.engine_inputs import check_margin_accounts, design_params, ledger_groups
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
from riskengine.runlog import BY_INSTRUMENT, EVENT_COLUMNS, SERIES_COLUMNS, RawRun
from riskengine.tolerances import ADL_EQUITY_GUARD, ADL_REST_TOL, DUST_NOTIONAL, TIER_STEP_MARGIN

#: times a run reports its progress (``on_tick``) over the tape
PROGRESS_STEPS = 1000


def _sign(x: float) -> float:
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


class _Instrument:
    """The state of instrument ``k`` in a portfolio run (:mod:`riskengine.reference`,
    "Portfolios"): its parameters, mark, book and tape price, open interest, external market,
    ADL ranking snapshots, drawdown trackers and counters."""

    def __init__(self, k: int, params: EngineParams):
        self.k = k
        self.p = params
        self.book = Book(params)
        self.marks = MarkState.of(params)
        self.mark = self.marks.mark
        self.prev_mark = 0.0
        self.tape = 0.0
        self.ticked = False  # no mark before its first tick: its positions are not checked
        self.book_t = 0  # the time its book was last brought to (:meth:`bring`)
        self.mark_t = 0  # the time of its last mark update (its previous tick)
        self.members = np.empty(0, dtype=np.int64)  # margin accounts with a position in it
        self.long_oi = 0.0
        self.short_oi = 0.0
        self.ext_pos = 0.0
        self.ext_cash = 0.0
        self.rank_ids: dict[float, deque[int]] = {}
        self.rank_time: dict[float, int] = {}
        self.tape_peak = 0.0
        self.sim_peak = 0.0
        self.tape_dd = 0.0
        self.sim_dd = 0.0
        self.tape_min = math.inf
        self.sim_min = math.inf
        self.liquidations = 0
        self.liquidated_notional = 0.0
        self.adl_fills = 0
        self.adl_notional = 0.0

    def sim_price(self) -> float:
        return self.tape * self.book.m

    def mm(self, notional: float) -> float:
        return maintenance_margin(notional, self.p.mm_floors, self.p.mm_rates, self.p.mm_cums)

    def bring(self, t: int) -> None:
        """Bring the book to time ``t``: the snapshot in use at ``t``, the impact decayed over the
        time since the book was last brought (lazily: at the instrument's ticks and before an
        order reads it; bringing it to the time it is at changes nothing)."""
        self.book.seek(t)
        self.book.decay(t - self.book_t)
        self.book_t = t

    def tick(self, t: int, tape: float, stream_value: float) -> None:
        """Steps 1 and 2 of a tick of this instrument: its price, then its mark."""
        first = not self.ticked
        if first:
            self.book_t = t
            self.mark_t = t
        self.tape = tape
        self.bring(t)
        dt = t - self.mark_t
        self.mark_t = t
        self.mark = mark_update(self.marks, self.sim_price(), stream_value, dt)
        if first:
            self.prev_mark = self.mark
            self.ticked = True

    def drawdowns(self) -> None:
        """Step 5: the tape's and the simulated price's peaks, drawdowns and minima."""
        s = self.sim_price()
        if self.tape > self.tape_peak:
            self.tape_peak = self.tape
        if s > self.sim_peak:
            self.sim_peak = s
        if 1.0 - self.tape / self.tape_peak > self.tape_dd:
            self.tape_dd = 1.0 - self.tape / self.tape_peak
        if 1.0 - s / self.sim_peak > self.sim_dd:
            self.sim_dd = 1.0 - s / self.sim_peak
        if self.tape < self.tape_min:
            self.tape_min = self.tape
        if s < self.sim_min:
            self.sim_min = s


class _Reference:
    def __init__(self, ts, inst, price, stream, owner, col, start, instrument, size, entry,
                 params: Sequence[EngineParams], max_events: int = 0):
        self.p = design_params(params)
        n_inst = len(params)
        check_margin_accounts(ts, inst, price, stream, owner, col, start, instrument, size, entry, n_inst)
        self.ts = ts
        self.tick_inst = inst
        self.stream = stream if len(stream) == len(ts) else np.full(len(ts), np.nan)
        self.max_events = max_events
        self.instruments = [_Instrument(k, params[k]) for k in range(n_inst)]
        n = len(col)
        self.n = n
        self.n_inst = n_inst
        self.owner = np.asarray(owner, dtype=np.int64)
        start = np.asarray(start, dtype=np.int64)
        held = start[1:] > start[:-1]  # step 1: at most one position each (checked above)
        first = start[:-1][held]
        acc_pos = np.zeros(n, dtype=np.float64)
        acc_ep = np.zeros(n, dtype=np.float64)
        acc_inst = np.zeros(n, dtype=np.int32)
        acc_pos[held] = np.asarray(size, dtype=np.float64)[first]
        acc_ep[held] = np.asarray(entry, dtype=np.float64)[first]
        acc_inst[held] = np.asarray(instrument, dtype=np.int32)[first]
        p = self.p
        fund_group, vault_group = ledger_groups(params)
        self.fund_group = [int(g) for g in fund_group]
        self.vault_group = [int(g) for g in vault_group]
        self.n_funds = max(self.fund_group) + 1
        self.n_vaults = max(self.vault_group) + 1
        # each ledger's instruments, in instrument order
        self.fund_members = [[k for k in range(n_inst) if self.fund_group[k] == g] for g in range(self.n_funds)]
        self.vault_members = [[k for k in range(n_inst) if self.vault_group[k] == g] for g in range(self.n_vaults)]
        self.col = np.concatenate([np.array(col, dtype=np.float64), [p.vault_initial] * self.n_vaults,
                                   [p.fund_initial] * self.n_funds])
        ledgers = np.zeros(2 * n_inst, dtype=np.float64)
        self.pos = np.concatenate([acc_pos, ledgers])
        self.ep = np.concatenate([acc_ep, ledgers])
        own = np.arange(n_inst, dtype=np.int32)
        self.inst = np.concatenate([acc_inst, own, own])  # the instrument of every slot
        self.status = np.where(self.pos[:n] != 0.0, Status.ACTIVE, Status.FLAT).astype(np.int8)
        self.partial_tick = np.full(n, -1, dtype=np.int64)
        self.socialized = np.zeros(n, dtype=np.float64)
        self.cooldown_until = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self.fund_min = self.fund_total()
        self.vault_min = self.vault_cash_total()  # no inventory yet
        self.bad_debt = 0.0
        for a in np.flatnonzero(held):
            ins = self.instruments[int(acc_inst[a])]
            ins.ext_pos -= float(self.pos[a])
            ins.ext_cash += float(self.pos[a]) * float(self.ep[a])
        for a in np.flatnonzero(held):
            ins = self.instruments[int(acc_inst[a])]
            q = float(self.pos[a])
            if q > 0:
                ins.long_oi += q
            elif q < 0:
                ins.short_oi -= q
        for ins in self.instruments:
            ins.members = np.flatnonzero(held & (acc_inst == ins.k))
        self.px = self.counterfactual(params, price)
        self.events = log_init(EVENT_COLUMNS)
        self.series = log_init(SERIES_COLUMNS)
        self.pending: deque[tuple[int, int]] = deque()
        self.vault_next_unwind = [0] * self.n_vaults
        self.fund_next_unwind = [0] * self.n_funds
        self.fund_peaks: list[deque[tuple[int, float]]] = [deque() for _ in range(self.n_funds)]
        self.cum_liq = 0
        self.cum_liq_notional = 0.0
        self.cum_adl = 0
        self.cum_adl_notional = 0.0
        self.adl_overshoot = 0.0
        self.order_haircut = 0.0
        self.merge_fills = AdlPolicy(p.adl_policy).merges_fills
        self.fill_row: dict[int, tuple[int, int]] = {}  # winner -> (interval, row) of its latest row
        self.adl_bucket = 0  # series interval of the ADL order being filled (from 1)

    def counterfactual(self, params: Sequence[EngineParams], price: np.ndarray) -> np.ndarray:
        """The merged tape's prices with each instrument's observed flow taken out of its own
        ticks (:func:`counterfactual_tape`; the prices themselves when there is none)."""
        px = price
        for k, pk in enumerate(params):
            if len(pk.observed_ts) == 0:
                continue
            if px is price:
                px = np.array(price, dtype=np.float64)
            ticks = np.flatnonzero(self.tick_inst == k)
            px[ticks] = counterfactual_tape(pk, self.ts[ticks], price[ticks])
        return px

    # ---------------------------------------------------------------- helpers
    def fund_cash(self, g: int) -> int:
        """The index in ``col`` of fund ``g``'s cash."""
        return self.n + self.n_vaults + g

    def vault_cash(self, g: int) -> int:
        """The index in ``col`` of vault ``g``'s cash."""
        return self.n + g

    def fund(self, k: int) -> float:
        """The cash of the fund instrument ``k`` draws on."""
        return float(self.col[self.fund_cash(self.fund_group[k])])

    def fund_total(self) -> float:
        """Every fund's cash, summed in ledger order (the scalars ``fund_final`` and ``fund_min``)."""
        total = float(self.col[self.fund_cash(0)])
        for g in range(1, self.n_funds):
            total += float(self.col[self.fund_cash(g)])
        return total

    def vault_total(self) -> float:
        """Every vault's equity, summed in ledger order (the scalar ``vault_min``)."""
        total = self.vault_equity(0)
        for g in range(1, self.n_vaults):
            total += self.vault_equity(g)
        return total

    def instrument(self, a: int) -> _Instrument:
        """The instrument of slot ``a`` (a margin account's position, or an inventory)."""
        return self.instruments[int(self.inst[a])]

    def is_vault(self, a: int) -> bool:
        return self.n <= a < self.n + self.n_inst

    def is_fund(self, a: int) -> bool:
        return a >= self.n + self.n_inst

    def wallet(self, a: int) -> int:
        """Where slot ``a``'s cash is: its own collateral, or its ledger's cash (the vault's or the
        fund's of its instrument)."""
        if a < self.n:
            return a
        k = int(self.inst[a])
        return self.vault_cash(self.vault_group[k]) if self.is_vault(a) else self.fund_cash(self.fund_group[k])

    def vault_slot(self, k: int) -> int:
        return self.n + k

    def fund_slot(self, k: int) -> int:
        return self.n + self.n_inst + k

    def vault_holds(self, g: int) -> bool:
        """Whether vault ``g`` holds inventory in any of its instruments."""
        return any(float(self.pos[self.vault_slot(k)]) != 0.0 for k in self.vault_members[g])

    def fund_holds(self, g: int) -> bool:
        """Whether fund ``g`` holds inventory in any of its instruments."""
        return any(float(self.pos[self.fund_slot(k)]) != 0.0 for k in self.fund_members[g])

    def ledger_equity(self, first: int, cash: int, members: list[int]) -> float:
        """A ledger's cash (``col[cash]``) plus its inventory (slots ``first + k``) in each of its
        instruments at that instrument's mark, in instrument order."""
        equity = float(self.col[cash])
        for k in members:
            h = first + k
            equity += float(self.pos[h]) * (self.instruments[k].mark - float(self.ep[h]))
        return equity

    def fund_equity(self, g: int) -> float:
        return self.ledger_equity(self.n + self.n_inst, self.fund_cash(g), self.fund_members[g])

    def equity(self, a: int) -> float:
        """A margin account's equity at its instrument's mark; a ledger's whole equity."""
        if a < self.n:
            return float(self.col[a]) + float(self.pos[a]) * (self.instrument(a).mark - float(self.ep[a]))
        k = int(self.inst[a])
        return self.vault_equity(self.vault_group[k]) if self.is_vault(a) else self.fund_equity(self.fund_group[k])

    def public_id(self, a: int) -> int:
        if a < self.n:
            return int(self.owner[a])
        return VAULT_ID if self.is_vault(a) else FUND_ID

    def emit(self, kind: int, account: int, counterparty: int, size: float, price: float, fee: float,
             amount: float, equity_after: float) -> None:
        """Log an event of this tick and round (slots as public ids, the slot's instrument; the
        balance after it of the fund that instrument draws on)."""
        if self.max_events and len(self.events["ts"]) >= self.max_events:
            raise MemoryError(f"the event log passed its budget of {self.max_events:,} rows")
        events_push(self.events, self.t, self.i, self.round, kind, self.public_id(account),
                    int(self.inst[account]),
                    self.public_id(counterparty) if counterparty >= 0 else counterparty,
                    size, price, fee, amount, equity_after, self.fund(int(self.inst[account])))

    def note_fund(self) -> None:
        """Note the funds' lowest total cash."""
        total = self.fund_total()
        if total < self.fund_min:
            self.fund_min = total

    def note_vault(self, equity: float) -> None:
        """Note the vaults' lowest total equity (``equity``: that of the vault just checked, the
        total when there is one vault)."""
        total = equity if self.n_vaults == 1 else self.vault_total()
        if total < self.vault_min:
            self.vault_min = total

    def vault_equity(self, g: int) -> float:
        return self.ledger_equity(self.n, self.vault_cash(g), self.vault_members[g])

    def vault_beyond(self, g: int) -> bool:
        """Whether vault ``g``'s loss at the marks passes its threshold."""
        return self.vault_equity(g) < self.p.vault_initial - self.p.vault_loss_limit

    def vault_takes(self, g: int) -> bool:
        """Whether the venue has a backstop vault ``g`` that may take an account over now."""
        return self.p.backstop_ratio > 0.0 and not self.vault_beyond(g)

    def vault_check(self, g: int) -> None:
        """After every change of vault ``g``'s equity (a takeover, an unwind, a re-mark): note
        the vaults' lowest total equity; once its loss passes the threshold, deleverage its whole
        inventory, instrument by instrument."""
        equity = self.vault_equity(g)
        self.note_vault(equity)
        closes = self.p.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)
        if (self.vault_holds(g) and closes
                and equity < self.p.vault_initial - self.p.vault_loss_limit):
            for k in self.vault_members[g]:
                v = self.vault_slot(k)
                if float(self.pos[v]) != 0.0:
                    self.adl_close(v, float(self.pos[v]), True)
            self.note_vault(self.vault_equity(g))

    def reduce(self, a: int, closed: float, price: float) -> float:
        """Close ``closed`` (same sign as the position) of slot ``a`` at ``price``."""
        realized = closed * (price - float(self.ep[a]))
        self.col[self.wallet(a)] += realized
        self.pos[a] -= closed
        if a < self.n:
            ins = self.instrument(a)
            if closed > 0:
                ins.long_oi -= closed
            else:
                ins.short_oi += closed
        return realized

    def take(self, h: int, dq: float, price: float) -> None:
        """Inventory slot ``h`` (the vault's or the fund's in one instrument) changes by ``dq``
        at ``price``."""
        q = float(self.pos[h])
        if q == 0.0 or _sign(q) == _sign(dq):
            self.ep[h] = (q * float(self.ep[h]) + dq * price) / (q + dq)
            self.pos[h] = q + dq
        elif abs(dq) <= abs(q):
            self.reduce(h, -dq, price)
        else:
            self.col[self.wallet(h)] += q * (price - float(self.ep[h]))
            self.pos[h] = q + dq
            self.ep[h] = price

    def cover_deficit(self, a: int) -> None:
        """Margin account ``a``'s negative collateral: paid by the fund its instrument draws on,
        then socialized or bad debt."""
        deficit = -float(self.col[a])
        fund = self.fund_cash(self.fund_group[int(self.inst[a])])
        cash = float(self.col[fund]) if float(self.col[fund]) > 0.0 else 0.0  # inventory losses can leave it negative
        pay = deficit if deficit < cash else cash
        if pay > 0.0:
            self.col[fund] -= pay
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
        """Charge ``loss`` to every open ACTIVE position in ``a``'s instrument by size, never
        below zero equity; one event records the total, ``socialized`` each account's share."""
        members = self.instrument(a).members
        open_ = (self.status[members] == Status.ACTIVE) & (self.pos[members] != 0.0)
        holders = [int(i) for i in members[open_]]
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

    def count_liquidation(self, ins: _Instrument, notional: float) -> None:
        self.cum_liq += 1
        self.cum_liq_notional += notional
        ins.liquidations += 1
        ins.liquidated_notional += notional

    # ------------------------------------------------------------ execution
    def book_close(self, a: int, size: float, kind: int, fee_rate: float, settle: bool = True) -> float:
        """Send a market order closing ``size`` of slot ``a`` to its instrument's book; return
        the fill.

        ``settle=False`` leaves a negative balance for the caller to settle (the order is the
        first part of a liquidation whose rest goes elsewhere)."""
        ins = self.instrument(a)
        ins.bring(self.t)
        fill, move = ins.book.walk(-_sign(size), abs(size), ins.sim_price(), ins.tape)
        return self.book_fill(a, size, kind, fee_rate, settle, fill, move)

    def book_fill(self, a: int, size: float, kind: int, fee_rate: float, settle: bool,
                  fill: float, move: float) -> float:
        """Settle a market order already walked through the book (``fill``, ``move``)."""
        ins = self.instrument(a)
        side = -_sign(size)
        ins.book.commit(side, move, abs(size) * fill)
        ins.ext_pos += size
        ins.ext_cash -= size * fill
        realized = self.reduce(a, size, fill)
        fee = 0.0
        if a < self.n:
            fee = self.charge_fee(a, fee_rate * abs(size) * fill)
            self.count_liquidation(ins, abs(size) * fill)
        self.emit(kind, a, BOOK_ID, size, fill, fee, realized, self.equity(a))
        if settle and a < self.n and float(self.col[a]) < 0.0:
            self.cover_deficit(a)
        return fill

    def charge_fee(self, a: int, fee: float) -> float:
        """Move the liquidation fee into the fund of ``a``'s instrument, capped at the collateral left; with
        ``liq_surplus_to_fund`` a closed-out account hands over all that is left."""
        room = float(self.col[a])
        if self.p.liq_surplus_to_fund and float(self.pos[a]) == 0.0 and room > fee:
            fee = room
        if fee > room:
            fee = room if room > 0.0 else 0.0
        self.col[a] -= fee
        self.col[self.fund_cash(self.fund_group[int(self.inst[a])])] += fee
        return fee

    def adl_candidates(self, ins: _Instrument, side: float) -> list[int]:
        """Opposite-side ACTIVE margin accounts in ``ins`` in profit at its mark with positive
        equity, by margin-account index (queue: in queue order)."""
        m = ins.members
        found = adl_gather(ins.p, side, ins.mark, self.col[m], self.pos[m], self.ep[m], self.status[m])
        return [int(m[j]) for j in found]

    def adl_queue(self, ins: _Instrument, side: float) -> deque[int]:
        """The ranked queue in ``ins`` against a liquidated position of ``side``, re-ranked when
        stale.

        The queue is a snapshot taken at most once per ``adl_rank_interval`` of tape time and
        consumed from the front in between; accounts no longer eligible are skipped.
        """
        built = ins.rank_time.get(side)
        if built is None or self.t - built >= self.p.adl_rank_interval_ns:
            ins.rank_ids[side] = deque(self.adl_candidates(ins, side))
            ins.rank_time[side] = self.t
        return ins.rank_ids[side]

    def adl_eligible(self, i: int, side: float) -> bool:
        q = float(self.pos[i])
        upnl = q * (self.instrument(i).mark - float(self.ep[i]))
        return (self.status[i] == Status.ACTIVE and q * side < 0 and upnl > 0
                and float(self.col[i]) + upnl > 0)

    def adl_available(self, i: int, price: float) -> float:
        """Largest size of winner ``i`` that can close at ``price`` keeping its equity >= 0."""
        q = float(self.pos[i])
        worse = _sign(q) * (price - self.instrument(i).mark)
        if worse < 0.0:
            cap = self.equity(i) / (-worse) * (1.0 - ADL_EQUITY_GUARD)
            return cap if cap < abs(q) else abs(q)
        return abs(q)

    def adl_fill(self, i: int, a: int, take: float, price: float) -> float:
        """Close ``take`` of winner ``i`` at ``price`` against slot ``a``'s order; log it
        (a row of its own, or added to the winner's row of this interval: see "Logging ADL fills" in
        :mod:`riskengine.reference`)."""
        ins = self.instrument(i)
        closed = _sign(float(self.pos[i])) * take
        self.reduce(i, closed, price)
        if float(self.pos[i]) == 0.0:
            self.status[i] = Status.CLOSED
        haircut = -closed * (price - ins.mark)
        if not haircut > 0.0:
            haircut = 0.0
        self.cum_adl += 1
        self.cum_adl_notional += take * price
        ins.adl_fills += 1
        ins.adl_notional += take * price
        self.order_haircut += haircut
        if self.merge_fills:
            bucket, row = self.fill_row.get(i, (0, -1))
            if bucket == self.adl_bucket:
                events_merge(self.events, row, self.public_id(a), ADL_ORDERS_ID, closed, take * price,
                             haircut, self.equity(i), self.fund(ins.k))
                return haircut
            self.fill_row[i] = (self.adl_bucket, len(self.events["ts"]))
        self.emit(EventKind.ADL_FILL, i, a, closed, price, 0.0, haircut, self.equity(i))
        return haircut

    def adl_price(self, a: int) -> float:
        ins = self.instrument(a)
        p = self.p.adl_price
        if p == AdlPrice.BANKRUPTCY:
            price = bankruptcy_price(float(self.col[self.wallet(a)]), float(self.pos[a]), float(self.ep[a]))
            return price if price > 0.0 else ins.mark
        if p == AdlPrice.PREVIOUS_MARK:
            return ins.prev_mark
        return ins.mark

    def adl_close(self, a: int, size: float, full: bool) -> None:
        """Auto-deleverage ``size`` of slot ``a`` (a margin account or an inventory) against the
        other side in the same instrument."""
        ins = self.instrument(a)
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
            queue = self.adl_queue(ins, side)
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
            ids = self.adl_candidates(ins, side)
            caps = [self.adl_available(i, price) for i in ids]
            if policy == AdlPolicy.WATER_FILLING:
                notional = [abs(float(self.pos[i])) * ins.mark for i in ids]
                equity = [self.equity(i) for i in ids]
                takes = water_filling(notional, equity, caps, ins.mark, wanted)
            else:
                weights = [adl_weight(policy, float(self.pos[i]), float(self.col[i]), float(self.ep[i]),
                                      ins.mark, self.p.adl_risk_power) for i in ids]
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
            shortfall = -(float(self.col[self.wallet(a)]) * abs(closed_a) / abs(q_a)
                          + closed_a * (ins.mark - float(self.ep[a])))
            if not shortfall > 0.0:
                shortfall = 0.0
            if self.order_haircut > shortfall:
                self.adl_overshoot += self.order_haircut - shortfall
            self.reduce(a, closed_a, price)
            if a < self.n:
                self.count_liquidation(ins, abs(closed_a) * price)
            self.emit(EventKind.ADL_LIQUIDATION, a, BOOK_ID, closed_a, price, 0.0, shortfall, self.equity(a))
        if rest > 0.0:
            kind, fee_rate = self.unwind_kind(a)
            self.book_close(a, float(self.pos[a]) if full else side * rest, kind, fee_rate)
        elif a < self.n and float(self.col[a]) < 0.0:
            self.cover_deficit(a)

    def unwind_kind(self, a: int) -> tuple[int, float]:
        if self.is_vault(a):
            return EventKind.VAULT_UNWIND, 0.0
        if self.is_fund(a):
            return EventKind.FUND_UNWIND, 0.0
        return EventKind.LIQUIDATION, self.p.liq_fee_rate

    def backstop(self, a: int, equity: float) -> None:
        """The vault of ``a``'s instrument takes its position over at mark, with its equity."""
        ins = self.instrument(a)
        g = self.vault_group[ins.k]
        q = float(self.pos[a])
        v = self.vault_slot(ins.k)
        if not self.vault_holds(g):
            self.vault_next_unwind[g] = self.t + self.p.vault_unwind_interval_ns
        self.take(v, q, ins.mark)
        self.col[self.vault_cash(g)] += equity
        self.reduce(a, q, ins.mark)
        self.col[a] = 0.0
        self.count_liquidation(ins, abs(q) * ins.mark)
        self.emit(EventKind.BACKSTOP, a, v, q, ins.mark, 0.0, equity, 0.0)
        self.vault_check(g)

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
        ins = self.instrument(a)
        floors = ins.p.mm_floors
        for j in range(tier_index(floors, notional), 0, -1):
            target = float(floors[j]) * (1.0 - TIER_STEP_MARGIN)
            if equity >= ins.mm(target):
                return q * (1.0 - target / notional), False
        return q, True

    def limit_price(self, a: int, side: float) -> float:
        """Worst price the liquidation order may fill at (NaN: no limit)."""
        ins = self.instrument(a)
        limit = math.nan
        if self.p.liq_limit_bankruptcy:
            limit = bankruptcy_price(float(self.col[a]), float(self.pos[a]), float(self.ep[a]))
        if ins.p.liq_price_band != math.inf:
            band = ins.mark * (1.0 + side * ins.p.liq_price_band)
            if limit != limit or side * (band - limit) < 0.0:
                limit = band
        return limit

    def fund_can_take(self, k: int, dq: float, price: float, deficit: float) -> bool:
        """Whether the fund of instrument ``k`` can take ``dq`` of ``k`` at ``price`` within its
        capacity (its inventory in each of its instruments at the marks within ``fund_capacity`` x
        its equity, that equity not negative), after paying ``deficit`` (what the takeover may
        leave the account owing)."""
        members = self.fund_members[self.fund_group[k]]
        value = float(self.col[self.fund_cash(self.fund_group[k])])
        for j in members:
            f = self.fund_slot(j)
            value += float(self.pos[f]) * (self.instruments[j].mark - float(self.ep[f]))
        value = value + dq * (self.instruments[k].mark - price) - deficit
        exposure = 0.0
        for j in members:
            ins = self.instruments[j]
            q = float(self.pos[self.fund_slot(j)])
            if j == k:
                q = q + dq
            exposure += abs(q) * ins.mark
        return value >= 0.0 and exposure <= self.p.fund_capacity * value

    def market_liquidation(self, a: int, size: float, kind: int, full: bool) -> None:
        p = self.p
        ins = self.instrument(a)
        ins.bring(self.t)
        closes = p.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)
        side = -_sign(size)
        limit = self.limit_price(a, side)
        if limit != limit:
            fill, move = ins.book.walk(side, abs(size), ins.sim_price(), ins.tape)
            after = float(self.col[a]) + size * (fill - float(self.ep[a]))
            deficit = -after if after < 0.0 else 0.0
            fund = self.fund(ins.k)
            if deficit > fund and self.vault_takes(self.vault_group[ins.k]):
                self.backstop(a, self.equity(a))  # the book cannot close it: not successful
            elif deficit > fund and closes:
                self.adl_close(a, size, full)
            else:
                self.book_fill(a, size, kind, p.liq_fee_rate, True, fill, move)  # walked once
            return
        filled = ins.book.fillable(side, abs(size), ins.sim_price(), ins.tape, limit)
        if filled >= abs(size):
            self.book_close(a, size, kind, p.liq_fee_rate)
            return
        # the rest's route is decided before anything fills
        bankruptcy = bankruptcy_price(float(self.col[a]), float(self.pos[a]), float(self.ep[a]))
        rest = -side * (abs(size) - filled)
        # at the bankruptcy price a whole close leaves the account >= 0; a partial one keeps its
        # share of negative collateral (fills better than the limit only reduce it)
        owed = 0.0 if full else -float(self.col[a]) * (1.0 - size / float(self.pos[a]))
        to_fund = p.takeover == Takeover.FUND and self.fund_can_take(ins.k, rest, bankruptcy,
                                                                     owed if owed > 0.0 else 0.0)
        filled_notional = 0.0
        if filled > 0.0:
            fill = self.book_close(a, -side * filled, kind, 0.0 if to_fund else p.liq_fee_rate,
                                   settle=False)
            filled_notional = filled * fill
        part = float(self.pos[a]) if full else rest
        if to_fund:
            f = self.fund_slot(ins.k)
            g = self.fund_group[ins.k]
            if not self.fund_holds(g):
                self.fund_next_unwind[g] = self.t + p.fund_unwind_interval_ns
            self.take(f, part, bankruptcy)
            realized = self.reduce(a, part, bankruptcy)
            fee = self.charge_fee(a, p.liq_fee_rate * (filled_notional + abs(part) * bankruptcy))
            self.count_liquidation(ins, abs(part) * bankruptcy)
            self.emit(EventKind.FUND_TAKEOVER, a, FUND_ID, part, bankruptcy, fee, realized, self.equity(a))
            if float(self.col[a]) < 0.0:
                self.cover_deficit(a)
        elif closes:
            self.adl_close(a, part, full)
        else:
            self.book_close(a, part, kind, p.liq_fee_rate)

    def liquidate(self, a: int) -> None:
        p = self.p
        ins = self.instrument(a)
        q = float(self.pos[a])
        equity = self.equity(a)
        notional = abs(q) * ins.mark
        mm = ins.mm(notional)
        closes = p.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)
        if equity < 0.0 and p.adl_on_negative_equity and closes:
            self.adl_close(a, q, True)
        elif (p.backstop_ratio > 0.0 and equity < p.backstop_ratio * mm
              and not self.vault_beyond(self.vault_group[ins.k])):
            self.backstop(a, equity)
        elif closes and self.fund_drawdown_active(self.fund_group[ins.k]):
            self.adl_close(a, q, True)
        else:
            size, full = self.order_size(a, q, equity, notional)
            partial = not full
            if abs(size) * ins.mark > ins.p.liq_max_order_notional:
                size = _sign(size) * ins.p.liq_max_order_notional / ins.mark
                full = False
            kind = EventKind.LIQUIDATION if full else EventKind.PARTIAL_LIQUIDATION
            self.market_liquidation(a, size, kind, full)
            if partial:
                self.cooldown_until[a] = self.t + p.partial_cooldown_ns
            if not full:
                self.partial_tick[a] = self.i
        self.status[a] = Status.ACTIVE if float(self.pos[a]) != 0.0 else Status.CLOSED

    def fund_drawdown_active(self, g: int) -> bool:
        """Whether fund ``g`` (that of the liquidated position's instrument) is below ``1 -
        adl_fund_drawdown`` of its rolling peak."""
        if self.p.adl_fund_drawdown == math.inf or not self.fund_peaks[g]:
            return False
        return float(self.col[self.fund_cash(g)]) < (1.0 - self.p.adl_fund_drawdown) * self.fund_peaks[g][0][1]

    def sample_fund_peak(self) -> None:
        """Rolling maximum of each fund's balance over ``adl_fund_window`` (sampled per tick, in
        ledger order)."""
        for g in range(self.n_funds):
            value = float(self.col[self.fund_cash(g)])
            peaks = self.fund_peaks[g]
            while peaks and peaks[-1][1] <= value:
                peaks.pop()
            peaks.append((self.t, value))
            while peaks[0][0] < self.t - self.p.adl_fund_window_ns:
                peaks.popleft()

    # ------------------------------------------------------------- the loop
    def record(self) -> None:
        """A series sample: one row per instrument, in instrument order (prices, mark and open
        interest the instrument's, as of its last tick or order; NaN prices before its first
        tick); the cash of the fund and the equity of the vault the instrument draws on; the
        cumulative counters shared."""
        vault = [self.vault_equity(g) for g in range(self.n_vaults)]
        for ins in self.instruments:
            tape, sim, mark = (ins.tape, ins.sim_price(), ins.mark) if ins.ticked else (math.nan,) * 3
            series_push(self.series, self.t, ins.k, tape, sim, mark, self.fund(ins.k),
                        vault[self.vault_group[ins.k]], ins.long_oi,
                        ins.short_oi, self.cum_liq, self.cum_liq_notional, self.cum_adl,
                        self.cum_adl_notional)

    def inventories(self) -> None:
        """Step 4: each vault's unwinding in each of its instruments (its loss checked after
        each), then each fund's offloading; ledgers in ledger order, instruments in instrument order."""
        p = self.p
        for g in range(self.n_vaults):
            if self.vault_holds(g) and self.t >= self.vault_next_unwind[g]:
                for k in self.vault_members[g]:
                    v = self.vault_slot(k)
                    if float(self.pos[v]) != 0.0:
                        self.unwind(v, p.vault_unwind_fraction, EventKind.VAULT_UNWIND)
                        self.vault_check(g)
                self.vault_next_unwind[g] = self.t + p.vault_unwind_interval_ns
        for g in range(self.n_funds):
            if self.fund_holds(g) and self.t >= self.fund_next_unwind[g]:
                for k in self.fund_members[g]:
                    f = self.fund_slot(k)
                    if float(self.pos[f]) != 0.0:
                        self.unwind(f, p.fund_unwind_fraction, EventKind.FUND_UNWIND)
                        self.note_fund()
                self.fund_next_unwind[g] = self.t + p.fund_unwind_interval_ns

    def unwind(self, h: int, fraction: float, kind: int) -> None:
        ins = self.instrument(h)
        ins.bring(self.t)
        q = float(self.pos[h])
        size = q * fraction
        if abs(q - size) * ins.sim_price() < DUST_NOTIONAL:
            size = q
        self.book_close(h, size, kind, 0.0)

    def crossing_now(self) -> np.ndarray:
        """Step 3's scan: the ACTIVE margin accounts not partially liquidated at this tick that
        cross at their instrument's mark (instruments that have not ticked yet: none)."""
        n = self.n
        newly = np.zeros(n, dtype=bool)
        for ins in self.instruments:
            if not ins.ticked:
                continue
            m = ins.members
            newly[m] = ((self.status[m] == Status.ACTIVE) & (self.partial_tick[m] != self.i)
                        & crossing(ins.p, self.col[m], self.pos[m], self.ep[m], ins.mark))
        return newly

    def run(self, on_tick: Callable[[int], None] | None = None) -> RawRun:
        p = self.p
        n = self.n
        cap = p.max_liqs_per_step
        max_rounds = 0
        next_sample = int(self.ts[0]) if len(self.ts) else 0
        recorded_last = False
        track_peak = p.adl_fund_drawdown != math.inf
        every = max(len(self.ts) // PROGRESS_STEPS, 1)
        for i in range(len(self.ts)):
            if on_tick is not None and i % every == 0:  # reads nothing of the run: its result is the same
                on_tick(i)
            t = int(self.ts[i])
            ticked = self.instruments[int(self.tick_inst[i])]
            self.i = i
            self.t = t
            self.round = 0
            ticked.tick(t, float(self.px[i]), float(self.stream[i]))
            if track_peak:
                self.sample_fund_peak()
            executed = 0
            while True:
                # every mark follows its simulated price, moved by orders since it was computed
                # (the same mark, to the bit, where nothing moved: the ticked instrument at round 0)
                for ins in self.instruments:
                    if ins.ticked:
                        ins.mark = mark_refresh(ins.marks, ins.sim_price())
                for g in range(self.n_vaults):
                    if self.vault_holds(g):
                        self.vault_check(g)  # the inventory re-marked
                for a in np.flatnonzero(self.crossing_now()):
                    a = int(a)
                    self.status[a] = Status.PENDING
                    self.pending.append((a, t + p.latency_ns))
                done = 0
                while self.pending and self.pending[0][1] <= t and (cap == 0 or executed < cap):
                    a, _ = self.pending.popleft()
                    ins = self.instrument(a)
                    if crosses(ins.p, float(self.col[a]), float(self.pos[a]), float(self.ep[a]), ins.mark):
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
            for ins in self.instruments:
                ins.prev_mark = ins.mark
            ticked.drawdowns()
            recorded_last = False
            if t >= next_sample:
                self.record()
                next_sample = t + p.series_interval_ns
                recorded_last = True
        if len(self.ts) and not recorded_last:
            self.record()
        return self.result(max_rounds)

    def vault_cash_total(self) -> float:
        """Every vault's cash, summed in ledger order (the scalar ``vault_col``)."""
        total = float(self.col[self.vault_cash(0)])
        for g in range(1, self.n_vaults):
            total += float(self.col[self.vault_cash(g)])
        return total

    def result(self, max_rounds: int) -> RawRun:
        n = self.n
        first = self.instruments[0]
        v0, f0 = self.vault_slot(0), self.fund_slot(0)
        scalars = {
            "fund_final": self.fund_total(),
            "fund_min": self.fund_min,
            "fund_pos": float(self.pos[f0]),
            "fund_entry": float(self.ep[f0]),
            "vault_col": self.vault_cash_total(),
            "vault_pos": float(self.pos[v0]),
            "vault_entry": float(self.ep[v0]),
            "vault_min": self.vault_min,
            "bad_debt": self.bad_debt,
            "ext_cash": first.ext_cash,
            "ext_pos": first.ext_pos,
            "tape_max_drawdown": first.tape_dd,
            "sim_max_drawdown": first.sim_dd,
            "tape_min": first.tape_min,
            "sim_min": first.sim_min,
            "final_mark": first.mark,
            "final_sim_price": first.sim_price() if first.ticked else math.nan,
            "max_rounds": max_rounds,
            "ticks": len(self.ts),
            "adl_fills": self.cum_adl,
            "adl_overshoot": self.adl_overshoot,
        }
        ledgers = {
            "fund_pos": self.pos[n + self.n_inst:], "fund_entry": self.ep[n + self.n_inst:],
            "vault_pos": self.pos[n:n + self.n_inst], "vault_entry": self.ep[n:n + self.n_inst],
            "fund_group": np.array(self.fund_group), "vault_group": np.array(self.vault_group),
        }
        per = {
            "final_mark": lambda s: s.mark,
            "final_sim_price": lambda s: s.sim_price() if s.ticked else math.nan,
            "tape_max_drawdown": lambda s: s.tape_dd,
            "sim_max_drawdown": lambda s: s.sim_dd,
            "tape_min": lambda s: s.tape_min,
            "sim_min": lambda s: s.sim_min,
            "ext_pos": lambda s: s.ext_pos,
            "ext_cash": lambda s: s.ext_cash,
            "liquidations": lambda s: s.liquidations,
            "liquidated_notional": lambda s: s.liquidated_notional,
            "adl_fills": lambda s: s.adl_fills,
            "adl_notional": lambda s: s.adl_notional,
        }
        by_instrument = {
            name: (ledgers[name].copy().astype(dtype) if name in ledgers
                   else np.array([per[name](s) for s in self.instruments], dtype=dtype))
            for name, dtype, _ in BY_INSTRUMENT
        }
        return RawRun(log_to_numpy(self.events, EVENT_COLUMNS),
                      log_to_numpy(self.series, SERIES_COLUMNS),
                      self.col[:n].copy(), self.pos[:n].copy(), self.ep[:n].copy(), self.status.copy(),
                      scalars, self.socialized.copy(), by_instrument)


def run_portfolio(ts: np.ndarray, inst: np.ndarray, price: np.ndarray, stream: np.ndarray,
                  owner: np.ndarray, collateral: np.ndarray, start: np.ndarray, instrument: np.ndarray,
                  size: np.ndarray, entry: np.ndarray, params: Sequence[EngineParams], max_events: int = 0,
                  on_tick: Callable[[int], None] | None = None) -> RawRun:
    """Run the reference engine on a portfolio: instruments' tapes merged in time, margin
    accounts in CSR form (see "Portfolios" in :mod:`riskengine.reference`).

    Parameters
    ----------
    ts : ndarray of int64, shape (T,)
        Tick times of the merged tape, ns, non-decreasing (equal times in instrument order).
    inst : ndarray of int32, shape (T,)
        The instrument each tick moves, ``0..I-1``.
    price : ndarray of float64, shape (T,)
        Tick prices (of the tick's instrument), > 0.
    stream : ndarray of float64, shape (T,) or (0,)
        The tick's instrument's mark/index stream as of the tick (NaN where none yet; empty:
        no stream).
    owner : ndarray of int64, shape (M,)
        The user account of each margin account (its id in events).
    collateral : ndarray of float64, shape (M,)
        Each margin account's collateral (a cross wallet or an isolated position's margin).
    start : ndarray of int64, shape (M+1,)
        Margin account ``m``'s positions are ``start[m]:start[m+1]`` (step 1: at most one).
    instrument, size, entry : ndarray, shape (P,)
        Each position's instrument (int32), signed size and entry price (float64).
    params : sequence of EngineParams, one per instrument
        Fields of :data:`riskengine.engine_inputs.PER_INSTRUMENT_FIELDS` may differ; every other
        field must be equal (the venue design's).
    max_events : int
        Budget of event-log rows (0: none); one more raises ``MemoryError``.
    on_tick : callable, optional
        Progress: called with the ticks done, :data:`PROGRESS_STEPS` times over the tape.

    Returns
    -------
    RawRun
        Events and series with an ``instrument`` column; final state per margin account;
        ``by_instrument`` per instrument.

    Raises
    ------
    ValueError
        A design-level field that differs between instruments, arrays of the wrong shape, a
        margin account with more than one position, or two positions of one user account in
        one instrument (:mod:`riskengine.engine_inputs`).
    """
    ref = _Reference(ts, inst, price, stream, owner, collateral, start, instrument, size, entry, params, max_events)
    return ref.run(on_tick)


def run_reference(tape_ts: np.ndarray, tape_price: np.ndarray, stream: np.ndarray,
                  collateral: np.ndarray, size: np.ndarray, entry: np.ndarray,
                  params: EngineParams, on_tick: Callable[[int], None] | None = None) -> RawRun:
    """Run the reference engine on one instrument (see :func:`riskengine.engine.run`): a
    portfolio run where margin account ``a`` is account ``a`` with its one position.

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
        As :func:`run_portfolio`: ``instrument`` columns all 0, ``by_instrument`` of length 1.
    """
    n = len(collateral)
    return run_portfolio(tape_ts, np.zeros(len(tape_ts), dtype=np.int32), tape_price, stream,
                         np.arange(n, dtype=np.int64), collateral, np.arange(n + 1, dtype=np.int64),
                         np.zeros(n, dtype=np.int32), size, entry, [params], on_tick=on_tick)
