"""Plain-Python twin of ``cext/riskengine/_engine.pyx``: the replay loop, the loss waterfall,
settlement and ADL orders, over one margin account's state at a time.

The loop follows the specification in :mod:`riskengine.reference` step by step, the obvious way:
every margin account is scanned at every cascade round (its equity and maintenance margin
summed over its positions, :meth:`_Reference.all_figures`), nothing is indexed,
and it is slow on purpose. The state of each instrument (its mark, book, open interest, external
market, ADL ranking, drawdowns and counters) is an :class:`_Instrument`; the engine indexes it by
the instrument of the position it is working on. The kernels it calls live beside it, one module
per compiled module (``_adl``, ``_liquidity``, ``_mark``, ``_margin``, ``_events``).

Slots. The margin accounts' positions are slots ``0..P-1`` (CSR order: margin account ``m``
holds ``start[m]:start[m+1]``, ``acct[s]`` is slot ``s``'s margin account); the backstop vault's
inventory in instrument ``k`` is slot ``P + k`` and the insurance fund's is slot ``P + I + k``.
``col`` holds the margin accounts' collateral (indexed by margin account), then each vault's cash
(``col[M + g]``, ``g = 0..GV-1``) and each fund's cash (``col[M + GV + g]``), each shared by its
ledger's inventories (:meth:`_Reference.wallet`; instrument ``k``'s ledgers are
``vault_group[k]`` and ``fund_group[k]``, so a position draws on the ledgers of its instrument).
Status, the partial-liquidation tick and the socialized loss are per margin account, the
partial-liquidation cooldown per user (``owner``). With one instrument (one position per account,
``P = M``) and one vault and one fund this is the single-instrument layout: vault ``M``, fund
``M + 1``.

Account figures (:mod:`riskengine.reference`, "Portfolios, step 2"), with ``U_i = q_i (M_i -
e_i)`` the PnL of position ``i`` at its instrument's mark (at its entry before the instrument's
first tick: ``M_i = e_i``):

* the account's equity ``E``: ``c``, then each ``U_i`` added in position order
  (:meth:`_Reference.account_figures`); its maintenance margin ``MM``: from 0.0, each
  ``MM_i(|q_i| M_i)`` added in position order;
* for position ``j``, the *rest of the account* ``W_j = c + O_j`` with ``O_j`` the other positions'
  PnL, summed from 0.0 in position order skipping ``j`` (:meth:`_Reference.rest`). ``W_j`` is
  what step 1 used the collateral for, so a one-position account computes exactly what it did:
  ``j``'s bankruptcy price ``e_j - W_j / q_j`` (= ``M_j - E / q_j``), the deficit after an order
  on ``j`` (``max(0, -W_j)``: the account equity at marks after a whole close; after a partial
  order ``j``'s rest is not counted, as in step 1 where the deficit was the negative collateral),
  the fee cap ``max(0, W_j)``, the share of negative collateral a partial fund takeover leaves
  (``-W_j`` times the share of ``j`` left), an ADL order's shortfall. Settling a deficit sets the
  wallet to ``-rest - O_j`` (``0.0 - O_j`` once it is paid or written off), so ``W_j`` is
  ``-rest`` (0) as the collateral was in step 1;
* the partial rules' "healthy" test of a tier step of ``j`` to notional ``N'``:
  ``E >= MMo_j + MM_j(N')``, ``MMo_j`` the other positions' MM from 0.0 in position order.
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
    CrossOrder,
    EventKind,
    FundingPrice,
    MarkMethod,
    PartialMode,
    Status,
    Takeover,
)
from riskengine.engine_inputs import check_margin_accounts, design_params, funding_arrays, ledger_groups
from riskengine.params import EngineParams
from riskengine.reference._adl import adl_gather, adl_weight, capped_allocation, water_filling
from riskengine.reference._events import (
    events_merge, events_push, log_init, log_to_numpy, series_push,
)
from riskengine.reference._liquidity import Book, counterfactual_tape
from riskengine.reference._margin import bankruptcy_price, maintenance_margin, tier_index
from riskengine.reference._mark import MarkState, mark_refresh, mark_update
from riskengine.runlog import BY_INSTRUMENT, EVENT_COLUMNS, SERIES_COLUMNS, RawRun
from riskengine.tolerances import ADL_EQUITY_GUARD, ADL_REST_TOL, DUST_NOTIONAL, TIER_STEP_MARGIN

#: times a run reports its progress (``on_tick``) over the tape
PROGRESS_STEPS = 1000
#: weighted ADL orders split pro rata by size or by equity run in lazy bursts (:meth:`_Reference.lazy_order`);
#: ``False`` splits every order at once, winner by winner (the tests compare the two)
LAZY_BURSTS = True


class _Burst:
    """An open lazy pro-rata burst: the winners of one side of one instrument at one mark
    (ascending slots), their weights at its start (sizes, or ``by_equity`` equities), the bound
    :meth:`_Reference.lazy_uncapped` reads, and the per-unit sums of its orders."""

    def __init__(self, ins: "_Instrument", side: float, mark: float, ids: list[int], by_equity: bool,
                 units: list[float], s0: float, bound: float):
        self.ins, self.side, self.mark, self.ids = ins, side, mark, ids
        self.by_equity, self.units, self.s0, self.bound = by_equity, units, s0, bound
        self.f = 1.0  # a winner's weight now per unit of its weight at the start
        self.closed = 0.0  # per unit: size closed, its notional, its haircut, the equity change
        self.notional = 0.0
        self.haircut = 0.0
        self.equity = 0.0
        self.fund = 0.0  # the fund's cash at the latest order
        self.counterparty = 0  # the first order's liquidated account (public id)
        self.mixed = False  # not every order's




def _sign(x: float) -> float:
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


class _Instrument:
    """The state of instrument ``k`` in a portfolio run (:mod:`riskengine.reference`,
    "Portfolios"): its parameters, mark, book and tape price, open interest, external market,
    ADL ranking snapshots, drawdown trackers and counters."""

    def __init__(self, k: int, params: EngineParams):
        self.k = k
        self.p = params
        self.collateral = bool(params.collateral)  # a collateral asset: marked at its price
        self.book = Book(params)
        self.marks = MarkState.of(params)
        if self.collateral:
            self.marks.method = MarkMethod.LAST
        self.mark = self.marks.mark
        self.prev_mark = 0.0
        self.tape = 0.0
        self.index = math.nan  # its stream (index/oracle) as of its last tick
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
        self.funding_paid = 0.0

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
        self.index = stream_value
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
                 params: Sequence[EngineParams], max_events: int = 0, funding=None):
        self.p = design_params(params)
        n_inst = len(params)
        check_margin_accounts(ts, inst, price, stream, owner, col, start, instrument, size, entry, n_inst)
        self.funding_ts, self.funding_inst, self.funding_rate = funding_arrays(funding, n_inst)
        self.funding_next = 0
        self.ts = ts
        self.tick_inst = inst
        self.stream = stream if len(stream) == len(ts) else np.full(len(ts), np.nan)
        self.max_events = max_events
        self.instruments = [_Instrument(k, params[k]) for k in range(n_inst)]
        n = len(col)
        self.n = n
        self.n_inst = n_inst
        self.owner = np.asarray(owner, dtype=np.int64)
        self.start = np.asarray(start, dtype=np.int64)
        held = np.diff(self.start)
        self.held = held
        self.P = P = int(self.start[-1])
        self.acct = np.repeat(np.arange(n, dtype=np.int64), held)  # each position's margin account
        # rank r of every account's positions: the accounts holding more than r and their r-th slot
        self.ranks = [(np.flatnonzero(held > r), self.start[:-1][held > r] + r)
                      for r in range(int(held.max()) if n else 0)]
        # one instrument, margin account a = position a (run_reference): all_figures' sums are
        # then the plain vectorised ones, without gathering by instrument and rank
        self.one_each = n_inst == 1 and P == n and bool(np.all(held == 1))
        _, self.user = np.unique(self.owner, return_inverse=True)  # the cooldown is the user's
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
        self.pos = np.concatenate([np.asarray(size, dtype=np.float64), ledgers])
        self.ep = np.concatenate([np.asarray(entry, dtype=np.float64), ledgers])
        own = np.arange(n_inst, dtype=np.int32)
        self.inst = np.concatenate([np.asarray(instrument, dtype=np.int32), own, own])  # every slot's instrument
        has_open = np.zeros(n, dtype=bool)
        has_open[self.acct[self.pos[:P] != 0.0]] = True
        self.status = np.where(has_open, Status.ACTIVE, Status.FLAT).astype(np.int8)
        self.partial_tick = np.full(n, -1, dtype=np.int64)
        self.socialized = np.zeros(n, dtype=np.float64)
        self.cooldown_until = np.full(int(self.user.max()) + 1 if n else 0, np.iinfo(np.int64).min, dtype=np.int64)
        self.fund_min = self.fund_total()
        self.vault_min = self.vault_cash_total()  # no inventory yet
        self.bad_debt = 0.0
        for s in range(P):
            ins = self.instrument(s)
            ins.ext_pos -= float(self.pos[s])
            ins.ext_cash += float(self.pos[s]) * float(self.ep[s])
        for s in range(P):
            ins = self.instrument(s)
            q = float(self.pos[s])
            if q > 0:
                ins.long_oi += q
            elif q < 0:
                ins.short_oi -= q
        for ins in self.instruments:
            ins.members = np.flatnonzero(self.inst[:P] == ins.k)  # its positions' slots
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
        # lazy pro-rata bursts (see :meth:`lazy_order`): allowed by the policy when no margin
        # account holds several positions
        self.lazy_adl = (LAZY_BURSTS and p.adl_policy in (AdlPolicy.PRO_RATA, AdlPolicy.LEVERED_PRO_RATA,
                                                          AdlPolicy.PRO_RATA_EQUITY)
                         and not bool(np.any(held > 1)))
        self.lz: _Burst | None = None  # the open burst
        self.lz_skip = False  # a cap bound in this round: its orders are split at once

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
        return self.P <= a < self.P + self.n_inst

    def is_fund(self, a: int) -> bool:
        return a >= self.P + self.n_inst

    def wallet(self, a: int) -> int:
        """Where slot ``a``'s cash is: its margin account's collateral, or its ledger's cash (the
        vault's or the fund's of its instrument)."""
        if a < self.P:
            return int(self.acct[a])
        k = int(self.inst[a])
        return self.vault_cash(self.vault_group[k]) if self.is_vault(a) else self.fund_cash(self.fund_group[k])

    def vault_slot(self, k: int) -> int:
        return self.P + k

    def fund_slot(self, k: int) -> int:
        return self.P + self.n_inst + k

    def positions(self, m: int) -> range:
        """Margin account ``m``'s position slots, in position order."""
        return range(int(self.start[m]), int(self.start[m + 1]))

    def mark_of(self, s: int) -> float:
        """The price position ``s`` is valued at: its instrument's mark, its entry before the
        instrument's first tick."""
        ins = self.instrument(s)
        return ins.mark if ins.ticked else float(self.ep[s])

    def upnl(self, s: int) -> float:
        """Position ``s``'s unrealized PnL ``q (M - e)``."""
        return float(self.pos[s]) * (self.mark_of(s) - float(self.ep[s]))

    def account_figures(self, m: int) -> tuple[float, float]:
        """Margin account ``m``'s equity ``E`` (the wallet, then each position's PnL added in
        position order) and maintenance margin ``MM`` (from 0.0, each position's MM with its
        instrument's tiers added in position order)."""
        equity = float(self.col[m])
        mm = 0.0
        for s in self.positions(m):
            equity += self.upnl(s)
            mm += self.instrument(s).mm(abs(float(self.pos[s])) * self.mark_of(s))
        return equity, mm

    def all_figures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`account_figures` of every margin account at once (the same sums in the same
        order), and whether every instrument it holds has ticked."""
        P = self.P
        if self.one_each and self.instruments[0].ticked:
            ins = self.instruments[0]
            # the same element-wise operations as below, on the instrument's one mark
            notional = np.abs(self.pos[:P]) * ins.mark
            tier = np.searchsorted(ins.p.mm_floors, notional, side="right") - 1
            return (self.col[:P] + self.pos[:P] * (ins.mark - self.ep[:P]),
                    notional * ins.p.mm_rates[tier] - ins.p.mm_cums[tier], np.ones(P, dtype=bool))
        mark = self.ep[:P].copy()
        ticked = np.zeros(P, dtype=bool)
        mm = np.zeros(P, dtype=np.float64)
        for ins in self.instruments:
            if ins.ticked:
                mark[ins.members] = ins.mark
                ticked[ins.members] = True
        upnl = self.pos[:P] * (mark - self.ep[:P])
        notional = np.abs(self.pos[:P]) * mark
        for ins in self.instruments:
            m = ins.members
            tier = np.searchsorted(ins.p.mm_floors, notional[m], side="right") - 1
            mm[m] = notional[m] * ins.p.mm_rates[tier] - ins.p.mm_cums[tier]
        equity = self.col[:self.n].copy()
        margin = np.zeros(self.n, dtype=np.float64)
        scannable = np.ones(self.n, dtype=bool)
        for accounts, slots in self.ranks:
            equity[accounts] += upnl[slots]
            margin[accounts] += mm[slots]
            scannable[accounts] &= ticked[slots]
        return equity, margin, scannable

    def rest(self, s: int) -> tuple[float, float]:
        """For position slot ``s``: ``O`` (the other positions' PnL, from 0.0 in position order)
        and ``W = c + O`` (the rest of the account; see the module docstring)."""
        m = int(self.acct[s])
        others = 0.0
        for i in self.positions(m):
            if i != s:
                others += self.upnl(i)
        return others, float(self.col[m]) + others

    def other_mm(self, s: int) -> float:
        """The maintenance margin of the account's positions other than ``s`` (from 0.0, in
        position order)."""
        mm = 0.0
        for i in self.positions(int(self.acct[s])):
            if i != s:
                mm += self.instrument(i).mm(abs(float(self.pos[i])) * self.mark_of(i))
        return mm

    def holds_position(self, m: int) -> bool:
        return any(float(self.pos[s]) != 0.0 for s in self.positions(m))

    def exchange_collateral(self, m: int) -> None:
        """Auto-exchange at liquidation (Binance Multi-Assets: the assets are sold to cover a
        negative balance; ``riskengine.collateral``): margin account ``m``, left without any
        position but collateral holdings and with a negative wallet, sells the same share
        ``min(1, -wallet / value)`` of every holding (``value``: their sum at their prices) at
        market, in position order, COLLATERAL_EXCHANGE rows; the last sale settles what is
        still owed (:meth:`cover_deficit`)."""
        held = [s for s in self.positions(m) if float(self.pos[s]) != 0.0]
        if not held or any(not self.instrument(s).collateral for s in held):
            return
        value = 0.0
        for s in held:
            value += float(self.pos[s]) * self.mark_of(s)
        if not value > 0.0:
            return
        share = -float(self.col[m]) / value
        for j, s in enumerate(held):
            q = float(self.pos[s])
            self.book_close(s, q if share >= 1.0 else q * share, EventKind.COLLATERAL_EXCHANGE, 0.0,
                            settle=j == len(held) - 1)

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
        return self.ledger_equity(self.fund_slot(0), self.fund_cash(g), self.fund_members[g])

    def equity(self, a: int) -> float:
        """The equity of position slot ``a``'s margin account (:meth:`account_figures`); the whole
        equity of the ledger a ledger slot belongs to."""
        if a < self.P:
            return self.account_figures(int(self.acct[a]))[0]
        k = int(self.inst[a])
        return self.vault_equity(self.vault_group[k]) if self.is_vault(a) else self.fund_equity(self.fund_group[k])

    def public_id(self, a: int) -> int:
        if a < self.P:
            return int(self.owner[self.acct[a]])
        return VAULT_ID if self.is_vault(a) else FUND_ID

    def emit(self, kind: int, account: int, counterparty: int, size: float, price: float, fee: float,
             amount: float, equity_after: float) -> None:
        """Log an event of this tick and round (slots as public ids, the slot's instrument; the
        balance after it of the fund that instrument draws on)."""
        self.log(kind, self.public_id(account), int(self.inst[account]),
                 self.public_id(counterparty) if counterparty >= 0 else counterparty,
                 size, price, fee, amount, equity_after)

    def log(self, kind: int, account_id: int, k: int, counterparty_id: int, size: float, price: float,
            fee: float, amount: float, equity_after: float) -> None:
        """Log an event of this tick and round about instrument ``k`` (public ids)."""
        if self.max_events and len(self.events["ts"]) >= self.max_events:
            raise MemoryError(f"the event log passed its budget of {self.max_events:,} rows")
        events_push(self.events, self.t, self.i, self.round, kind, account_id, k, counterparty_id,
                    size, price, fee, amount, equity_after, self.fund(k))

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
        return self.ledger_equity(self.vault_slot(0), self.vault_cash(g), self.vault_members[g])

    def vault_beyond(self, g: int) -> bool:
        """Whether vault ``g``'s loss at the marks passes its threshold."""
        return self.vault_equity(g) < self.p.vault_initial - self.p.vault_loss_limit

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
        if a < self.P:
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
        """Settle the deficit ``-W`` an order on position slot ``a`` left (``W`` the rest of
        its account, :meth:`rest`): the fund ``a``'s instrument draws on pays what it can into the
        wallet, ``SOCIALIZE`` charges the rest to the instrument's open positions, what is left is
        bad debt."""
        m = int(self.acct[a])
        others, rest_of_account = self.rest(a)
        deficit = -rest_of_account
        fund = self.fund_cash(self.fund_group[int(self.inst[a])])
        cash = float(self.col[fund]) if float(self.col[fund]) > 0.0 else 0.0  # inventory losses can leave it negative
        pay = deficit if deficit < cash else cash
        if pay > 0.0:
            self.col[fund] -= pay
            self.col[m] += pay
            self.emit(EventKind.FUND_PAYMENT, a, BOOK_ID, 0.0, 0.0, 0.0, pay, self.equity(a))
        rest = deficit - pay
        if rest > 0.0 and self.p.adl_policy == AdlPolicy.SOCIALIZE:
            rest -= self.socialize(a, rest)  # credits the account with what it covered
            if rest <= ADL_REST_TOL * deficit:
                rest = 0.0
            self.col[m] = -rest - others
        if rest > 0.0:
            self.bad_debt += rest
            self.col[m] = 0.0 - others
            self.emit(EventKind.BAD_DEBT, a, BOOK_ID, 0.0, 0.0, 0.0, rest, self.equity(a))
        elif float(self.col[m]) + others < 0.0:
            self.col[m] = 0.0 - others
        self.note_fund()

    def socialize(self, a: int, loss: float) -> float:
        """Charge ``loss`` to every open position in ``a``'s instrument of an ACTIVE margin
        account by size, never below zero account equity, taken from the account's wallet;
        one event records the total, ``socialized`` each margin account's share."""
        members = self.instrument(a).members
        open_ = (self.status[self.acct[members]] == Status.ACTIVE) & (self.pos[members] != 0.0)
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
            self.col[self.acct[i]] -= charge
            self.socialized[self.acct[i]] += charge
            covered += charge
        if covered > 0.0:
            self.col[self.acct[a]] += covered  # the market pays this much of the deficit
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
        if a < self.P and not ins.collateral:  # an exchange of collateral is no liquidation
            fee = self.charge_fee(a, fee_rate * abs(size) * fill)
            self.count_liquidation(ins, abs(size) * fill)
        self.emit(kind, a, BOOK_ID, size, fill, fee, realized, self.equity(a))
        if settle and a < self.P and self.rest(a)[1] < 0.0:
            self.cover_deficit(a)
        return fill

    def charge_fee(self, a: int, fee: float) -> float:
        """Move the liquidation fee of an order on position slot ``a`` into the fund of ``a``'s
        instrument, capped at the rest of the account ``W`` (:meth:`rest`; the collateral left, for
        one position); with ``liq_surplus_to_fund`` an account left without any position hands
        over all that is left."""
        m = int(self.acct[a])
        room = self.rest(a)[1]
        if self.p.liq_surplus_to_fund and not self.holds_position(m) and room > fee:
            fee = room
        if fee > room:
            fee = room if room > 0.0 else 0.0
        self.col[m] -= fee
        self.col[self.fund_cash(self.fund_group[int(self.inst[a])])] += fee
        return fee

    def adl_candidates(self, ins: _Instrument, side: float) -> list[int]:
        """Opposite-side positions in ``ins`` in profit at its mark whose margin account is
        ACTIVE with positive equity, by position slot (queue: in queue order). The account's
        figures (equity, wallet, maintenance margin) are the margin account's
        (:meth:`all_figures`)."""
        m = ins.members
        equity, mm, _ = self.all_figures()
        acct = self.acct[m]
        found = adl_gather(ins.p, side, ins.mark, self.pos[m], self.ep[m], equity[acct], self.col[acct],
                           mm[acct], self.status[acct])
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
        """Whether position ``i`` can still be deleveraged against ``side``: its margin account
        ACTIVE with positive equity, the position on the other side in profit at mark."""
        q = float(self.pos[i])
        upnl = q * (self.instrument(i).mark - float(self.ep[i]))
        return (self.status[self.acct[i]] == Status.ACTIVE and q * side < 0 and upnl > 0
                and self.equity(i) > 0)

    def adl_available(self, i: int, price: float) -> float:
        """Largest size of winner ``i`` that can close at ``price`` keeping its account's equity
        >= 0."""
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
        if not self.holds_position(int(self.acct[i])):
            self.status[self.acct[i]] = Status.CLOSED
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

    # ------------------------------------------------------------ lazy pro-rata bursts
    def lazy_flush(self) -> None:
        """Close the open burst, if any: each winner's position, wallet and fill row take the
        sums of the burst's orders at once (issue 14, ``docs/design/weighted-adl.md``)."""
        b = self.lz
        if b is None:
            return
        self.lz = None
        sgn = -b.side
        counterparty = ADL_ORDERS_ID if b.mixed else b.counterparty
        for j, u in zip(b.ids, b.units):
            closed = sgn * u * b.closed
            self.col[self.wallet(j)] += sgn * u * (b.notional - b.closed * float(self.ep[j]))  # closed x (price - entry)
            if b.by_equity:
                self.pos[j] = sgn * (abs(float(self.pos[j])) - u * b.closed)
            else:
                self.pos[j] = sgn * u * b.f
            if float(self.pos[j]) == 0.0:
                self.status[self.acct[j]] = Status.CLOSED
            _, row = self.fill_row[j]
            events_merge(self.events, row, counterparty, ADL_ORDERS_ID, closed, u * b.notional,
                         u * b.haircut, self.equity(j), b.fund)

    @staticmethod
    def lazy_uncapped(b: _Burst, wanted: float, price: float) -> bool:
        """Whether splitting ``wanted`` over the burst's winners caps none of them
        (``capped_allocation``'s plain level ``tau = wanted / W`` below every cap; the caps: the
        size, and closing at a price worse than the mark by ``d``, the size that keeps equity
        >= 0). By size: ``tau < 1`` and ``g (1 - guard) / d > tau`` for the least equity per
        unit of size ``g``, which an order maps to ``(g - tau d) / (1 - tau)`` (one increasing
        map: the least stays the least). By equity: ``tau d < 1 - guard`` and ``tau E < |q|``
        for the least ``|q| / E``, which an order maps to ``(|q| / E - tau) / (1 - tau d)``."""
        tau = wanted / (b.s0 * b.f)
        worse = -b.side * (price - b.mark)
        if b.by_equity:
            if worse < 0.0 and not tau * (-worse) < 1.0 - ADL_EQUITY_GUARD:
                return False
            return tau * b.f < b.bound - b.closed
        if not tau < 1.0:
            return False
        if worse < 0.0:
            return (b.bound + b.equity) / b.f * (1.0 - ADL_EQUITY_GUARD) / (-worse) > tau
        return True

    def lazy_order(self, ins: _Instrument, a: int, side: float, wanted: float, price: float) -> float:
        """Split an ADL order of ``wanted`` against slot ``a`` pro rata by size (or by equity) over
        the winners as part of a burst; the size absorbed, or -1 when it must be split at once (a cap binds,
        or no winner).

        Pro-rata by size scales every winner by one factor ``1 - tau`` (by equity, every winner's
        equity by ``1 - tau d``), so a burst keeps that factor and per-unit sums (closed, notional, haircut, equity change) and applies them to
        each winner once, at :meth:`lazy_flush`: before the next scan, at the end of the round,
        or before a winner-side account of the instrument is processed. Within a round the mark
        stands still, so the burst's winners are the same at each of its orders. The split is
        :func:`capped_allocation`'s when nothing caps; its floating-point sums are associated
        differently. Each winner's row opens at the first order, where its first fill logs it."""
        mark = ins.mark
        counterparty = self.public_id(a)
        b = self.lz
        if b is not None and (b.ins is not ins or b.side != side or b.mark != mark):
            self.lazy_flush()
            b = None
        if self.lz_skip:
            return -1.0
        if b is not None:
            if not self.lazy_uncapped(b, wanted, price):
                self.lazy_flush()
                self.lz_skip = True
                return -1.0
        else:
            ids = self.adl_candidates(ins, side)
            if not ids:
                return -1.0
            by_equity = self.p.adl_policy == AdlPolicy.PRO_RATA_EQUITY
            units, s0, bound = [], 0.0, math.inf
            for j in ids:
                q0 = abs(float(self.pos[j]))
                equity = float(self.col[self.wallet(j)]) + float(self.pos[j]) * (mark - float(self.ep[j]))
                units.append(equity if by_equity else q0)
                s0 += units[-1]
                bound = min(bound, q0 / equity if by_equity else equity / q0)
            b = _Burst(ins, side, mark, ids, by_equity, units, s0, bound)
            if not self.lazy_uncapped(b, wanted, price):
                self.lz_skip = True
                return -1.0
            for j in ids:
                if self.fill_row.get(j, (0, -1))[0] != self.adl_bucket:
                    self.fill_row[j] = (self.adl_bucket, len(self.events["ts"]))
                    self.log(EventKind.ADL_FILL, self.public_id(j), ins.k, counterparty, 0.0, price, 0.0, 0.0,
                             self.equity(j))
            b.counterparty = counterparty
            self.lz = b
        t = wanted / b.s0  # closed per unit of the starting weight (tau x f); in all, wanted
        worse = -side * (price - mark)  # per unit closed: the winner's equity change
        haircut = -worse if worse < 0.0 else 0.0
        b.closed += t
        b.notional += t * price
        b.haircut += t * haircut
        b.equity += t * worse
        if b.by_equity:
            b.f += t * worse
        else:
            b.f -= t
        b.fund = self.fund(ins.k)
        if counterparty != b.counterparty:
            b.mixed = True
        n = len(b.ids)
        self.cum_adl += n
        ins.adl_fills += n
        self.cum_adl_notional += wanted * price
        ins.adl_notional += wanted * price
        self.order_haircut += wanted * haircut
        if side < 0.0:  # the winners are long
            ins.long_oi -= wanted
        else:
            ins.short_oi -= wanted
        return wanted

    def adl_price(self, a: int) -> float:
        ins = self.instrument(a)
        p = self.p.adl_price
        if p == AdlPrice.BANKRUPTCY:
            price = bankruptcy_price(self.cash_of(a), float(self.pos[a]), float(self.ep[a]))
            return price if price > 0.0 else ins.mark
        if p == AdlPrice.PREVIOUS_MARK:
            return ins.prev_mark
        return ins.mark

    def cash_of(self, a: int) -> float:
        """What stands behind slot ``a`` besides its own PnL: the rest of its margin account
        ``W`` (:meth:`rest`), or a ledger's whole cash."""
        return self.rest(a)[1] if a < self.P else float(self.col[self.wallet(a)])

    def adl_close(self, a: int, size: float, full: bool) -> None:
        """Auto-deleverage ``size`` of slot ``a`` (a margin account's position or an inventory)
        against the other side in the same instrument."""
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
        elif self.lazy_adl and (lazily := self.lazy_order(ins, a, side, wanted, price)) >= 0.0:
            absorbed = lazily
        else:
            ids = self.adl_candidates(ins, side)
            caps = [self.adl_available(i, price) for i in ids]
            if policy == AdlPolicy.WATER_FILLING:
                notional = [abs(float(self.pos[i])) * ins.mark for i in ids]
                equity = [self.equity(i) for i in ids]
                takes = water_filling(notional, equity, caps, ins.mark, wanted)
            else:
                weights = [adl_weight(policy, float(self.pos[i]), float(self.ep[i]), ins.mark, self.equity(i),
                                      self.p.adl_risk_power) for i in ids]
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
            shortfall = -(self.cash_of(a) * abs(closed_a) / abs(q_a)
                          + closed_a * (ins.mark - float(self.ep[a])))
            if not shortfall > 0.0:
                shortfall = 0.0
            if self.order_haircut > shortfall:
                self.adl_overshoot += self.order_haircut - shortfall
            self.reduce(a, closed_a, price)
            if a < self.P:
                self.count_liquidation(ins, abs(closed_a) * price)
            self.emit(EventKind.ADL_LIQUIDATION, a, BOOK_ID, closed_a, price, 0.0, shortfall, self.equity(a))
        if rest > 0.0:
            kind, fee_rate = self.unwind_kind(a)
            self.book_close(a, float(self.pos[a]) if full else side * rest, kind, fee_rate)
        elif a < self.P and self.rest(a)[1] < 0.0:
            self.cover_deficit(a)

    def unwind_kind(self, a: int) -> tuple[int, float]:
        if self.is_vault(a):
            return EventKind.VAULT_UNWIND, 0.0
        if self.is_fund(a):
            return EventKind.FUND_UNWIND, 0.0
        return EventKind.LIQUIDATION, self.p.liq_fee_rate

    def account_vaults(self, m: int) -> list[int]:
        """The vaults margin account ``m``'s open positions draw on (those of their instruments),
        in ledger order."""
        return sorted({self.vault_group[int(self.inst[s])] for s in self.positions(m) if float(self.pos[s]) != 0.0})

    def vault_takes(self, m: int) -> bool:
        """Whether the venue has backstop vaults that may take margin account ``m`` over now: every
        vault its open positions draw on within its loss threshold (a vault beyond it takes
        nothing over)."""
        if not self.p.backstop_ratio > 0.0:
            return False
        for g in self.account_vaults(m):
            if self.vault_beyond(g):
                return False
        return True

    def backstop(self, m: int, a: int, equity: float) -> None:
        """The vaults take over margin account ``m``: all its positions at their marks and its
        remaining ``equity`` (the maintenance margin is not returned; Hyperliquid [DOC S21],
        reference §2.4: "cross -> all cross positions and cross margin transferred").

        Each position goes into the inventory of its instrument's vault; ``equity`` goes to the
        vault of position ``a``'s instrument (the position the liquidation chose). Order: each
        vault's first unwind time is set if it holds no inventory; each vault takes its open
        positions (position order); then the cash of ``a``'s vault gains ``equity``; then each
        position is closed in the account at its mark (realized PnL into the wallet), one BACKSTOP
        event each (amount: ``equity`` on the first, 0 on the others; equity after: 0); then the
        wallet is set to 0 and the loss of each vault that took a position is checked, in ledger
        order."""
        slots = [s for s in self.positions(m) if float(self.pos[s]) != 0.0]
        vaults = self.account_vaults(m)
        for g in vaults:
            if not self.vault_holds(g):
                self.vault_next_unwind[g] = self.t + self.p.vault_unwind_interval_ns
        for s in slots:
            ins = self.instrument(s)
            self.take(self.vault_slot(ins.k), float(self.pos[s]), ins.mark)
        self.col[self.vault_cash(self.vault_group[int(self.inst[a])])] += equity
        amount = equity
        for s in slots:
            ins = self.instrument(s)
            q = float(self.pos[s])
            self.reduce(s, q, ins.mark)
            self.count_liquidation(ins, abs(q) * ins.mark)
            self.emit(EventKind.BACKSTOP, s, self.vault_slot(ins.k), q, ins.mark, 0.0, amount, 0.0)
            amount = 0.0
        self.col[m] = 0.0
        for g in vaults:
            self.vault_check(g)

    def order_size(self, a: int, q: float, equity: float, notional: float) -> tuple[float, bool]:
        """Size of the liquidation order on position slot ``a`` (size ``q``, ``notional`` at
        mark; ``equity`` its account's) and whether it closes the whole position. The cooldown
        is the user's (Hyperliquid [DOC S21, S35]: after a partial liquidation of any of the
        user's positions, all orders for that user are for the entire position); a tier step
        must leave the account healthy: ``equity >= MMo + MM(target)`` with ``MMo`` the other
        positions' maintenance margin."""
        p = self.p
        if self.t < self.cooldown_until[self.user[self.acct[a]]]:
            return q, True
        if p.partial_mode == PartialMode.FRACTION:
            if (p.partial_fraction < 1.0 and notional > p.partial_threshold and equity >= 0.0
                    and notional * (1.0 - p.partial_fraction) >= DUST_NOTIONAL):
                return q * p.partial_fraction, False
            return q, True
        ins = self.instrument(a)
        floors = ins.p.mm_floors
        others = self.other_mm(a)
        for j in range(tier_index(floors, notional), 0, -1):
            target = float(floors[j]) * (1.0 - TIER_STEP_MARGIN)
            if equity >= others + ins.mm(target):
                return q * (1.0 - target / notional), False
        return q, True

    def limit_price(self, a: int, side: float) -> float:
        """Worst price the liquidation order may fill at (NaN: no limit)."""
        ins = self.instrument(a)
        limit = math.nan
        if self.p.liq_limit_bankruptcy:
            limit = bankruptcy_price(self.rest(a)[1], float(self.pos[a]), float(self.ep[a]))
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
            after = self.rest(a)[1] + size * (fill - float(self.ep[a]))
            deficit = -after if after < 0.0 else 0.0
            m = int(self.acct[a])
            fund = self.fund(ins.k)
            if deficit > fund and self.vault_takes(m):
                # the book cannot close it: not successful; the vaults take the whole account
                self.backstop(m, a, self.equity(a))
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
        behind = self.rest(a)[1]
        bankruptcy = bankruptcy_price(behind, float(self.pos[a]), float(self.ep[a]))
        rest = -side * (abs(size) - filled)
        # at the bankruptcy price a whole close leaves the account >= 0; a partial one keeps its
        # share of negative collateral (fills better than the limit only reduce it)
        owed = 0.0 if full else -behind * (1.0 - size / float(self.pos[a]))
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
            self.note_fund()  # taking against its own opposite inventory realizes the fund's PnL
            realized = self.reduce(a, part, bankruptcy)
            fee = self.charge_fee(a, p.liq_fee_rate * (filled_notional + abs(part) * bankruptcy))
            self.count_liquidation(ins, abs(part) * bankruptcy)
            self.emit(EventKind.FUND_TAKEOVER, a, FUND_ID, part, bankruptcy, fee, realized, self.equity(a))
            if self.rest(a)[1] < 0.0:
                self.cover_deficit(a)
        elif closes:
            self.adl_close(a, part, full)
        else:
            self.book_close(a, part, kind, p.liq_fee_rate)

    def choose(self, m: int) -> int:
        """The position of margin account ``m`` a liquidation closes (``cross_order``: the
        largest notional ``|q| M``, or the most negative PnL ``q (M - e)``; ties: the lowest
        position index). Venues do not document an order, hence the named setting. Collateral
        holdings only once no other position is open (Binance closes positions, then
        auto-exchanges assets to cover a negative balance)."""
        best, key = -1, 0.0
        loss = self.p.cross_order == CrossOrder.LOSS
        for holdings in (False, True):
            for s in self.positions(m):
                q = float(self.pos[s])
                if q == 0.0 or self.instrument(s).collateral != holdings:
                    continue
                value = q * (self.mark_of(s) - float(self.ep[s])) if loss else abs(q) * self.mark_of(s)
                if best < 0 or (value < key if loss else value > key):
                    best, key = s, value
            if best >= 0:
                return best
        return best

    def liquidate(self, m: int) -> None:
        """Liquidate crossing margin account ``m``: one position (:meth:`choose`), routed with the
        account's equity and maintenance margin (the waterfall in :mod:`riskengine.reference`)."""
        p = self.p
        equity, mm = self.account_figures(m)
        a = self.choose(m)
        ins = self.instrument(a)
        q = float(self.pos[a])
        notional = abs(q) * ins.mark
        closes = p.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)
        if ins.collateral:  # only holdings left: sold at market, what they miss is a deficit
            self.book_close(a, q, EventKind.COLLATERAL_EXCHANGE, 0.0)
        elif equity < 0.0 and p.adl_on_negative_equity and closes:
            self.adl_close(a, q, True)
        elif p.backstop_ratio > 0.0 and equity < p.backstop_ratio * mm and self.vault_takes(m):
            self.backstop(m, a, equity)
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
                self.cooldown_until[self.user[m]] = self.t + p.partial_cooldown_ns
            if not full:
                self.partial_tick[m] = self.i
        if float(self.col[m]) < 0.0 and not ins.collateral:
            self.exchange_collateral(m)
        self.status[m] = Status.ACTIVE if self.holds_position(m) else Status.CLOSED

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

    def pay_funding(self, ins: _Instrument, rate: float) -> None:
        """Funding (issue 13): every open position in ``ins`` pays ``q M r`` at its mark ``M``
        (``funding_price`` INDEX: its index, the mark while it has none; a long pays a positive
        rate, a short receives it), from its margin account's
        collateral, or from its ledger's cash (the vault's and the fund's inventories), in
        position order; the rest of the market (the external book, holding the opposite of
        every modelled position) pays or receives what the modelled positions do not, so funding
        is zero-sum over every position. One FUNDING row; ``funding_paid`` counts what the payers
        paid, the rest of the market included. An instrument without a mark yet pays nothing."""
        if not ins.ticked:
            return
        mark = ins.mark
        if self.p.funding_price == FundingPrice.INDEX and not math.isnan(ins.index):
            mark = ins.index
        net = gross = size = 0.0
        fund_paid = False
        slots = list(ins.members) + [self.vault_slot(ins.k), self.fund_slot(ins.k)]
        for s in slots:
            q = float(self.pos[s])
            if q == 0.0:
                continue
            pay = q * mark * rate
            self.col[self.wallet(s)] -= pay
            net += pay
            gross += abs(pay)
            size += q
            fund_paid = fund_paid or self.is_fund(s)
        ins.ext_cash += net
        ins.funding_paid += 0.5 * (gross + abs(net))
        if fund_paid:
            self.note_fund()
        self.log(EventKind.FUNDING, MARKET_ID, ins.k, BOOK_ID, size, mark, 0.0, net, 0.0)

    def crossing_now(self) -> np.ndarray:
        """Step 3's scan: the ACTIVE margin accounts not partially liquidated at this tick, every
        instrument they hold ticked, whose equity is below their maintenance margin at the marks
        (:meth:`all_figures`)."""
        equity, mm, scannable = self.all_figures()
        return ((self.status == Status.ACTIVE) & (self.partial_tick != self.i) & scannable
                & (equity < mm))

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
            # funding due before this tick: at the marks of the ticks at or before its time
            while self.funding_next < len(self.funding_ts) and self.funding_ts[self.funding_next] < t:
                j = self.funding_next
                self.pay_funding(self.instruments[int(self.funding_inst[j])], float(self.funding_rate[j]))
                self.funding_next += 1
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
                self.lazy_flush()  # a burst the vaults' orders opened
                for a in np.flatnonzero(self.crossing_now()):
                    a = int(a)
                    self.status[a] = Status.PENDING
                    self.pending.append((a, t + p.latency_ns))
                done = 0
                while self.pending and self.pending[0][1] <= t and (cap == 0 or executed < cap):
                    a, _ = self.pending.popleft()
                    b = self.lz
                    if b is not None and self.held[a] == 1:  # (bursts run where each account holds one at most)
                        s = int(self.start[a])
                        if b.ins.k == int(self.inst[s]) and float(self.pos[s]) * b.side < 0.0:
                            self.lazy_flush()  # a winner-side account changes: the burst's winners as they are
                    equity, mm = self.account_figures(a)
                    if equity < mm:
                        self.liquidate(a)
                        done += 1
                        executed += 1
                    else:
                        self.status[a] = Status.ACTIVE
                self.lazy_flush()
                self.lz_skip = False
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

    def funding_total(self) -> float:
        """Funding paid in every instrument, summed in instrument order (the scalar ``funding_paid``)."""
        total = 0.0
        for ins in self.instruments:
            total += ins.funding_paid
        return total

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
            "funding_paid": self.funding_total(),
        }
        ledgers = {
            "fund_pos": self.pos[f0:], "fund_entry": self.ep[f0:],
            "vault_pos": self.pos[v0:f0], "vault_entry": self.ep[v0:f0],
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
            "funding_paid": lambda s: s.funding_paid,
        }
        by_instrument = {
            name: (ledgers[name].copy().astype(dtype) if name in ledgers
                   else np.array([per[name](s) for s in self.instruments], dtype=dtype))
            for name, dtype, _ in BY_INSTRUMENT
        }
        # per margin account: its first position (its only one, but for a cross account with
        # several); every position in positions_size / positions_entry
        first = self.start[:-1][self.held > 0]
        size, entry = np.zeros(n), np.zeros(n)
        size[self.held > 0], entry[self.held > 0] = self.pos[first], self.ep[first]
        return RawRun(log_to_numpy(self.events, EVENT_COLUMNS),
                      log_to_numpy(self.series, SERIES_COLUMNS),
                      self.col[:n].copy(), size, entry, self.status.copy(),
                      scalars, self.socialized.copy(), by_instrument,
                      self.pos[:self.P].copy(), self.ep[:self.P].copy())


def run_portfolio(ts: np.ndarray, inst: np.ndarray, price: np.ndarray, stream: np.ndarray,
                  owner: np.ndarray, collateral: np.ndarray, start: np.ndarray, instrument: np.ndarray,
                  size: np.ndarray, entry: np.ndarray, params: Sequence[EngineParams], max_events: int = 0,
                  on_tick: Callable[[int], None] | None = None,
                  funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> RawRun:
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
        Margin account ``m``'s positions are ``start[m]:start[m+1]`` (a cross account may hold
        several, each in a different instrument; an isolated one holds one).
    instrument, size, entry : ndarray, shape (P,)
        Each position's instrument (int32), signed size and entry price (float64).
    params : sequence of EngineParams, one per instrument
        Fields of :data:`riskengine.engine_inputs.PER_INSTRUMENT_FIELDS` may differ; every other
        field must be equal (the venue design's).
    max_events : int
        Budget of event-log rows (0: none); one more raises ``MemoryError``.
    on_tick : callable, optional
        Progress: called with the ticks done, :data:`PROGRESS_STEPS` times over the tape.
    funding : (ndarray of int64, ndarray of int32, ndarray of float64), optional
        Funding payments (issue 13): the time, instrument and rate of each, sorted by time then
        instrument (:func:`riskengine.engine_inputs.check_funding`); None: no funding. A payment
        at time ``T`` is made before the first tick later than ``T``, at the marks then
        (:meth:`_Reference.pay_funding`); one at or after the last tick is not made.

    Returns
    -------
    RawRun
        Events and series with an ``instrument`` column; final collateral, status and
        socialized loss per margin account (``size``, ``entry``: its first position);
        ``positions_size``, ``positions_entry`` per position; ``by_instrument`` per instrument.

    Raises
    ------
    ValueError
        A design-level field that differs between instruments, arrays of the wrong shape, or
        two positions of one user account in one instrument (:mod:`riskengine.engine_inputs`).
    """
    ref = _Reference(ts, inst, price, stream, owner, collateral, start, instrument, size, entry, params, max_events,
                     funding)
    return ref.run(on_tick)


def run_reference(tape_ts: np.ndarray, tape_price: np.ndarray, stream: np.ndarray,
                  collateral: np.ndarray, size: np.ndarray, entry: np.ndarray,
                  params: EngineParams, on_tick: Callable[[int], None] | None = None,
                  funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> RawRun:
    """Run the reference engine on one instrument (see :func:`riskengine.engine.run`): a
    portfolio run where margin account ``a`` is account ``a`` with its one position
    (``funding``: as :func:`run_portfolio`'s, every instrument 0).

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
                         np.zeros(n, dtype=np.int32), size, entry, [params], on_tick=on_tick,
                         funding=funding)
