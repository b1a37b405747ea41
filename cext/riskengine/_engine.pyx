"""The replay loop: tape ticks through mark, trigger, liquidation, settlement and ADL.

The semantics are specified in ``riskengine/reference/_engine.py`` (the plain-Python oracle); this
module is the same machine over struct-of-arrays state, with the liquidation index instead
of a scan, growable C buffers for the log, and the whole loop under ``nogil``.

Portfolios (issue 12, step 1). A run replays several instruments: the merged tape's tick ``i``
moves instrument ``tick_inst[i]``, whose state (mark, book, prices, open interest, external
market, liquidation index, ADL ranking, drawdowns, counters) is one :c:type:`Inst`; the pending
queue, the counters and the logs are shared. Funds and vaults (step 3): each instrument draws on
one of each (``EngineParams.fund_group``, ``vault_group``); a ledger's cash and state are kept at
its lead, its first instrument (``Inst.VC``, ``Inst.FC``), so one fund and one vault for every
instrument is instrument 0's, as before. A position draws on the ledgers of its instrument; a
backstop of a cross account hands each position to the vault of its instrument. A margin account
with one position (an isolated one, or a cross wallet holding one instrument) is keyed in that
instrument's index only, at its liquidation price: a tick scans the index of its own instrument,
whose mark moved, plus the instruments whose index took entries since their last scan
(``touched``: accounts re-keyed after a fill, an ADL or a socialized loss) or whose mark a cascade
round moved (a mark follows the orders that moved its book, :c:func:`_refresh_marks`); a tick
where nothing crosses does not loop over the instruments. Another instrument's book is brought
forward to the tick's time only when an order walks it (:c:func:`_bring`). A single-instrument
run is the run it was before, to the last bit.

Cross accounts with several positions (issue 12, step 2). Slots ``0 .. n - 1`` are the margin
accounts, each with its first position; the other positions of the cross accounts that hold
several follow (``xacc``, ``xstart``: :c:type:`Engine`), then the ledgers' inventories. A
position slot's cash is its account's wallet (:c:func:`_cash`); the account's figures are sums
over its positions in position order (:c:func:`_account_figures`, :c:func:`_rest`), exactly the
reference's. Such an account has no liquidation price of its own (its ``E - MM`` moves with
every mark it holds), so the index keys each of its positions in its instrument's index at a
trigger price, and the account is never scanned as a whole on a quiet tick:

* *Split* (:c:func:`_split`). At the current marks the account's slack ``E - MM`` is separable,
  ``c + sum_i f_i(M_i)`` with ``f_i(p) = q_i (p - e_i) - MM_i(|q_i| p)``. Less a margin held
  back against rounding (``SLACK_SPLIT_MARGIN``, :mod:`riskengine.tolerances`, times the wallet
  plus the gross exposure at entry and mark), it is split over the open positions in proportion
  to their notional ``|q_i| M_i``. Position ``i``'s trigger is the price at which ``f_i`` has
  fallen by its share from ``f_i(M_i)``, the others held at their marks: the one-position root
  solver (``liquidation_price``) on the collateral ``share_i - f_i(M_i)`` (tiered MM is convex,
  ``f_i`` monotone; the whole-position form's solver gives the supremum of the unsafe region),
  padded outward like any key (``trigger_key``). While every mark is on the safe side of its
  position's trigger, ``E - MM >= `` the margin held back: the account cannot cross, and a
  quiet tick costs what it costs without such accounts (one compare per side of the ticking
  instrument's index).
* *A trigger passed* (:c:func:`_collect_side`). The account is checked exactly at the end of
  the scan (``recheck``, :c:func:`_check_account`): it becomes PENDING if ``E < MM``, else it
  is split again at the new marks (its earlier entries go stale by its version). A hedged
  account whose legs move together uses up one leg's share and is re-split: re-splits come once
  per move of the size of a share, not per tick.
* *The hot list.* An account whose slack is below ``HOT_SLACK`` of its notional (its triggers
  would be passed, and it split again, at almost every tick), or one of whose triggers is
  already at or past its mark (a long near a tier floor of the whole-position form), gets no
  entries: it is on the hot list, checked exactly at every scan, and split again once its slack
  is twice that (hysteresis). Its length is the number of accounts at their maintenance
  margin, not the number of accounts.
* Every change of such an account (a fill, a fee, a deficit paid, an ADL fill as a winner, a
  socialized loss) re-checks it at the next scan (:c:func:`_rekey`, :c:func:`_recheck`); until
  every instrument it holds has ticked it has no entries, and it is checked at each of those
  instruments' first tick. A rebuilt index keeps the entries of the accounts split into it.

``run_portfolio(..., index_stats=True)`` reports how often this happened.
"""

import numpy as np
from libc.math cimport INFINITY, NAN, fabs, nextafter
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.stdint cimport INT64_MAX, uint64_t
from libc.string cimport memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from riskengine._adl cimport (
    AdlParams, RatioIndex, adl_gather, adl_score_account, adl_weight, adl_weight_account,
    capped_allocation, water_filling,
)
from riskengine._events cimport (
    ColumnLog, events_merge, events_push, log_free, log_init, log_to_numpy, series_push,
)
from riskengine._events import column_items
from riskengine.engine_inputs import check_margin_accounts, design_params, funding_arrays, ledger_groups
from riskengine.runlog import BY_INSTRUMENT, EVENT_COLUMNS, SERIES_COLUMNS
from riskengine._index cimport (
    HeapEntry, KeyHeap, LiqIndex, SideIndex, heap_free, heap_init, heap_pop, heapify_from,
    index_free, index_init, side_build, side_fill, side_pop, side_push, side_top, trigger_key,
)
from riskengine._liquidity cimport (
    DepthBook, counterfactual_tape, depth_fillable, depth_init, depth_seek, depth_walk,
    impact_commit, impact_decay,
)
from riskengine._margin cimport Tiers, crosses, liquidation_price, maintenance_margin
from riskengine._mark cimport MarkState, mark_refresh, mark_update
from riskengine._typedefs cimport *
from riskengine import tolerances as _tol

# the tolerances both engines share, read once at import (riskengine.tolerances says what each is)
cdef extern from *:
    void __builtin_prefetch(const void* address) noexcept nogil

# how many positions ahead _gather_accounts fetches the cache lines it will read
cdef Py_ssize_t PREFETCH_AHEAD = 12

cdef float64_t ADL_REST_TOL = _tol.ADL_REST_TOL
cdef float64_t ADL_EQUITY_GUARD = _tol.ADL_EQUITY_GUARD
cdef float64_t DUST_NOTIONAL = _tol.DUST_NOTIONAL
cdef float64_t TIER_STEP_MARGIN = _tol.TIER_STEP_MARGIN
cdef float64_t SLACK_SPLIT_MARGIN = _tol.SLACK_SPLIT_MARGIN
# an instrument's liquidation index is rebuilt once its heaps hold more than 2 x its accounts +
# this many entries
cdef Py_ssize_t INDEX_SLACK = 64
# a cross account with several positions whose slack is below this share of its notional is
# checked exactly at every scan rather than split (twice this to be split again): the index's
# hysteresis, no tolerance of the results (_split)
cdef float64_t HOT_SLACK = 1e-4
# _sort_ids sorts this many ids or more by radix, fewer by qsort
cdef Py_ssize_t RADIX_FROM = 4096
# the sign bit of an int64 (_cooling)
cdef uint64_t SIGN_BIT = (<uint64_t>1) << 63


def shared_tolerances():
    """The shared tolerances this module compiled in, by name (``tests/test_tolerances.py``
    checks them against ``riskengine.tolerances.SHARED``)."""
    return {"ADL_REST_TOL": ADL_REST_TOL, "ADL_EQUITY_GUARD": ADL_EQUITY_GUARD,
            "DUST_NOTIONAL": DUST_NOTIONAL, "TIER_STEP_MARGIN": TIER_STEP_MARGIN,
            "SLACK_SPLIT_MARGIN": SLACK_SPLIT_MARGIN}


cdef inline float64_t _sign(float64_t x) noexcept nogil:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


cdef inline i32 _inst_id(Engine* e, Py_ssize_t a) noexcept nogil:
    """The instrument of slot ``a`` (an account's position, or an inventory); with one
    instrument without a look-up (a cache miss per account a cascade touches)."""
    return e.slot_inst[a] if e.n_inst > 1 else 0


cdef inline Inst* _inst(Engine* e, Py_ssize_t a) noexcept nogil:
    return &e.insts[_inst_id(e, a)]


cdef inline float64_t _sim(const Inst* x) noexcept nogil:
    return x.tape * x.book.m


cdef inline Py_ssize_t _acct(Engine* e, Py_ssize_t s) noexcept nogil:
    """The margin account of position slot ``s``."""
    return s if s < e.n else e.xacc[s - e.n]


cdef inline bint _multi(Engine* e, Py_ssize_t a) noexcept nogil:
    """Whether margin account ``a`` is a cross account holding several positions."""
    return e.xstart != NULL and e.xstart[a + 1] > e.xstart[a]


cdef inline Py_ssize_t _cash(Engine* e, Py_ssize_t a) noexcept nogil:
    """The slot whose ``col`` is slot ``a``'s cash: its account's wallet for a position; for an
    inventory, its instrument's vault's (``VC``) or fund's (``FC``), one cash for the ledger's
    inventories in each of its instruments."""
    if a < e.n:
        return a
    if a < e.n_pos:
        return e.xacc[a - e.n]
    return _inst(e, a).FC if (a - e.n_pos) & 1 else _inst(e, a).VC


cdef inline Inst* _lead(Engine* e, Py_ssize_t cash) noexcept nogil:
    """The lead of the ledger whose cash is ``col[cash]`` (the instrument whose V or F it is):
    where the ledger's state is kept."""
    return &e.insts[(cash - e.n_pos) >> 1]


cdef inline float64_t _fund(Engine* e, const Inst* x) noexcept nogil:
    """The cash of the fund instrument ``x`` draws on."""
    return e.col[x.FC]


cdef float64_t _ledger_equity(Engine* e, Py_ssize_t cash) noexcept nogil:
    """The equity of the vault (``cash`` a VC) or the fund (an FC) whose cash is ``col[cash]``:
    its cash plus its inventory in each of its instruments at that instrument's mark, in
    instrument order."""
    cdef float64_t equity = e.col[cash]
    cdef bint fund = (cash - e.n_pos) & 1
    cdef Py_ssize_t k, h
    cdef Inst* y
    for k in range(e.n_inst):
        y = &e.insts[k]
        if (y.FC if fund else y.VC) != cash:
            continue
        h = y.F if fund else y.V
        equity += e.pos[h] * (y.mark.mark - e.ep[h])
    return equity


cdef inline Py_ssize_t _n_held(Engine* e, Py_ssize_t a) noexcept nogil:
    """How many position slots margin account ``a`` has (1: slot ``a`` only, which may be flat)."""
    return 1 + (e.xstart[a + 1] - e.xstart[a]) if e.xstart != NULL else 1


cdef inline Py_ssize_t _slot(Engine* e, Py_ssize_t a, Py_ssize_t j) noexcept nogil:
    """The slot of margin account ``a``'s ``j``-th position (position order; 0: slot ``a``)."""
    return a if j == 0 else e.n + e.xstart[a] + j - 1


cdef inline float64_t _mark_of(Engine* e, Py_ssize_t s) noexcept nogil:
    """The price position ``s`` is valued at: its instrument's mark, its entry before the
    instrument's first tick."""
    cdef const Inst* x = _inst(e, s)
    return x.mark.mark if x.ticked else e.ep[s]


cdef inline float64_t _upnl(Engine* e, Py_ssize_t s) noexcept nogil:
    return e.pos[s] * (_mark_of(e, s) - e.ep[s])


cdef float64_t _account_equity(Engine* e, Py_ssize_t a) noexcept nogil:
    """Margin account ``a``'s equity: the wallet, then each position's PnL ``q_j (M_j - e_j)``
    added in position order (reference: ``account_figures``)."""
    cdef float64_t equity = e.col[a]
    cdef Py_ssize_t j
    for j in range(_n_held(e, a)):
        equity += _upnl(e, _slot(e, a, j))
    return equity


cdef float64_t _account_figures(Engine* e, Py_ssize_t a, float64_t* mm) noexcept nogil:
    """Margin account ``a``'s equity (returned) and maintenance margin (``mm``: from 0.0, each
    position's ``MM_j(|q_j| M_j)`` on its instrument's tiers added in position order)."""
    cdef float64_t equity = e.col[a], margin = 0.0, mark
    cdef Py_ssize_t j, s
    for j in range(_n_held(e, a)):
        s = _slot(e, a, j)
        mark = _mark_of(e, s)
        equity += e.pos[s] * (mark - e.ep[s])
        margin += maintenance_margin(&_inst(e, s).tiers, fabs(e.pos[s]) * mark)
    mm[0] = margin
    return equity


cdef bint _account_crosses(Engine* e, Py_ssize_t a) noexcept nogil:
    """The trigger on a cross account with several positions: ``E < MM`` on its sums."""
    cdef float64_t mm
    return _account_figures(e, a, &mm) < mm


cdef bint _all_ticked(Engine* e, Py_ssize_t a) noexcept nogil:
    """Whether every instrument margin account ``a`` holds has ticked (it is scanned only then)."""
    cdef Py_ssize_t j
    for j in range(_n_held(e, a)):
        if not _inst(e, _slot(e, a, j)).ticked:
            return False
    return True


cdef float64_t _rest_of_account(Engine* e, Py_ssize_t s, float64_t* others) noexcept nogil:
    cdef Py_ssize_t a = _acct(e, s), j, i
    cdef float64_t o = 0.0
    if _multi(e, a):
        for j in range(_n_held(e, a)):
            i = _slot(e, a, j)
            if i != s:
                o += _upnl(e, i)
    if others != NULL:
        others[0] = o
    return e.col[a] + o


cdef inline float64_t _rest(Engine* e, Py_ssize_t s, float64_t* others) noexcept nogil:
    """For position slot ``s``: the rest of its account ``W = c + O`` (returned) and ``O``, the
    other positions' PnL from 0.0 in position order (``others``, when not NULL). ``W`` is what
    a one-position account's collateral was: ``c + 0.0`` (``c`` itself in a run where no
    account holds several positions, as before them)."""
    if e.xstart == NULL:
        if others != NULL:
            others[0] = 0.0
        return e.col[s]
    return _rest_of_account(e, s, others)


cdef inline float64_t _cash_of(Engine* e, Py_ssize_t a) noexcept nogil:
    """What stands behind slot ``a`` besides its own PnL: the rest of its margin account (a
    position), or a ledger's whole cash."""
    if a < e.n_pos:
        return _rest(e, a, NULL)
    return e.col[_cash(e, a)]


cdef float64_t _other_mm(Engine* e, Py_ssize_t s) noexcept nogil:
    """The maintenance margin of the positions of ``s``'s account other than ``s`` (from 0.0,
    in position order)."""
    cdef Py_ssize_t a, j, i
    cdef float64_t mm = 0.0
    if e.xstart == NULL:
        return mm
    a = _acct(e, s)
    if not _multi(e, a):
        return mm
    for j in range(_n_held(e, a)):
        i = _slot(e, a, j)
        if i != s:
            mm += maintenance_margin(&_inst(e, i).tiers, fabs(e.pos[i]) * _mark_of(e, i))
    return mm


cdef inline bint _holds_position(Engine* e, Py_ssize_t a) noexcept nogil:
    """Whether margin account ``a`` still holds an open position."""
    cdef Py_ssize_t j
    if e.xstart == NULL:
        return e.pos[a] != 0.0
    for j in range(_n_held(e, a)):
        if e.pos[_slot(e, a, j)] != 0.0:
            return True
    return False


cdef float64_t _ledgers_total(Engine* e, bint fund, bint cash_only) noexcept nogil:
    """Every fund's (``fund``) or every vault's cash (``cash_only``) or equity, summed in ledger
    order (the leads in instrument order): the scalars ``fund_final``, ``vault_col`` and the
    minima ``fund_min``, ``vault_min``."""
    cdef float64_t total = 0.0, value
    cdef bint first = True
    cdef Py_ssize_t k, slot
    for k in range(e.n_inst):
        slot = e.insts[k].F if fund else e.insts[k].V
        if (e.insts[k].FC if fund else e.insts[k].VC) != slot:
            continue  # not a lead
        value = e.col[slot] if cash_only else _ledger_equity(e, slot)
        if first:
            total = value
            first = False
        else:
            total += value
    return total


cdef inline float64_t _equity(Engine* e, Py_ssize_t a) noexcept nogil:
    """Equity at mark of slot ``a``: its margin account's (a position's), or that of the ledger
    an inventory is in."""
    if a < e.n_pos:
        if e.xstart == NULL:  # every account holds one position at most
            return e.col[a] + e.pos[a] * (_inst(e, a).mark.mark - e.ep[a])
        return _account_equity(e, _acct(e, a))
    return _ledger_equity(e, _cash(e, a))


cdef inline bint _closes(Engine* e) noexcept nogil:
    """Whether the ADL policy closes positions (NONE and SOCIALIZE do not)."""
    return e.insts[0].adl.policy != ADL_NONE and e.insts[0].adl.policy != ADL_SOCIALIZE


cdef inline bint _is_vault(Engine* e, Py_ssize_t a) noexcept nogil:
    return a >= e.n_pos and ((a - e.n_pos) & 1) == 0


cdef inline i64 _public_id(Engine* e, Py_ssize_t a) noexcept nogil:
    if a < e.n:
        return e.owner[a] if e.owner != NULL else a
    if a < e.n_pos:
        return e.owner[e.xacc[a - e.n]]
    return VAULT_ID if _is_vault(e, a) else FUND_ID


cdef int _emit(Engine* e, int kind, Py_ssize_t a, i64 counterparty, float64_t size,
               float64_t price, float64_t fee, float64_t amount,
               float64_t equity_after) except -1 nogil:
    """Log an event of slot ``a`` (with the cash of the fund its instrument draws on)."""
    cdef Inst* x = _inst(e, a)
    return events_push(&e.log, e.t, e.i, e.round, <i8>kind, _public_id(e, a), x.id,
                       counterparty, size, price, fee, amount, equity_after, _fund(e, x))


cdef inline void _note_fund(Engine* e) noexcept nogil:
    """Note the lowest sum of the funds' cash."""
    cdef float64_t total = e.col[e.F] if e.n_funds == 1 else _ledgers_total(e, True, True)
    if total < e.fund_min:
        e.fund_min = total


cdef inline void _note_vault(Engine* e, float64_t equity) noexcept nogil:
    """Note the lowest sum of the vaults' equity (``equity``: the vault just checked, which is
    the sum with one vault)."""
    cdef float64_t total = equity if e.n_vaults == 1 else _ledgers_total(e, False, False)
    if total < e.vault_min:
        e.vault_min = total


cdef inline bint _vault_beyond(Engine* e, Py_ssize_t cash) noexcept nogil:
    """Whether the loss of the vault whose cash is ``col[cash]`` passes its threshold at the
    marks."""
    return _ledger_equity(e, cash) < e.p.vault_initial - e.p.vault_loss_limit


cdef inline void _held(Engine* e, Py_ssize_t h, float64_t before) noexcept nogil:
    """Count the instruments where a vault or a fund holds inventory (all of them, and each
    ledger's at its lead), after inventory slot ``h`` changed from ``before`` (a tick asks
    whether any is held without a loop)."""
    cdef int side = (h - e.n_pos) & 1
    cdef Py_ssize_t change = (e.pos[h] != 0.0) - (before != 0.0)
    cdef Inst* x = &e.insts[(h - e.n_pos) >> 1]
    e.held[side] += change
    _lead(e, x.FC if side else x.VC).ledger_held[side] += change


cdef inline void _touch(Engine* e, Inst* x) noexcept nogil:
    """Instrument ``x``'s index took entries: scan it in the next round whatever instrument
    ticks (its mark has not moved, but a re-keyed account may cross it)."""
    if not x.touched:
        x.touched = True
        e.touched[e.n_touched] = x.id
        e.n_touched += 1


cdef inline void _moved(Engine* e, Inst* x) noexcept nogil:
    """``x``'s simulated price may have moved (an order walked its book, or its book caught up
    with the time): its mark follows it at the next cascade round (:c:func:`_refresh_marks`)."""
    if not x.moved:
        x.moved = True
        e.moved[e.n_moved] = x.id
        e.n_moved += 1


cdef inline Py_ssize_t _member(const Inst* x, Py_ssize_t j) noexcept nogil:
    """The ``j``-th account (ascending) with a position in ``x``."""
    return x.members[j] if x.members != NULL else j


cdef inline i64 _user(Engine* e, Py_ssize_t a) noexcept nogil:
    """Margin account ``a``'s user: the key of the partial-liquidation cooldown."""
    return e.user[a] if e.user != NULL else a


cdef inline bint _partial_now(Engine* e, Py_ssize_t a) noexcept nogil:
    """Whether account ``a`` was partially liquidated at this tick (``partial_tick`` holds the
    tick + 1: the zeroed array means none yet, so no page is written at set-up)."""
    return e.partial_tick[a] == e.i + 1


cdef inline bint _cooling(Engine* e, i64 u) noexcept nogil:
    """Whether user ``u`` is in its partial-liquidation cooldown at this time: ``t`` before its
    end. ``cooldown_until`` holds the end with its sign bit flipped (unsigned order is then the
    signed order), so the zeroed array means "none", the old INT64_MIN."""
    return ((<uint64_t>e.t) ^ SIGN_BIT) < <uint64_t>e.cooldown_until[u]


cdef inline void _cool_until(Engine* e, i64 u, i64 end) noexcept nogil:
    e.cooldown_until[u] = <i64>((<uint64_t>end) ^ SIGN_BIT)


cdef inline void _recheck(Engine* e, Py_ssize_t a) noexcept nogil:
    """Cross account ``a`` with several positions changed (its wallet or positions): check it
    exactly at the next scan (it has no entries in the liquidation indexes)."""
    if not e.in_recheck[a]:
        e.in_recheck[a] = 1
        e.recheck[e.n_recheck] = a
        e.n_recheck += 1


cdef int _rekey(Engine* e, Py_ssize_t a) except -1 nogil:
    """Put an ACTIVE account back in its instrument's index under its current liquidation price
    (slot ``a`` a position of a cross account with several: :c:func:`_recheck` the account).

    Re-keying pushes a new entry and leaves the old one stale, so the heaps grow with every
    re-key; once an instrument's heaps hold more than ``2 m + INDEX_SLACK`` entries (``m`` its
    accounts) its index is rebuilt from its live accounts (O(m) after at least m pushes: O(1)
    amortized), so it stays O(m) however long the cascade. (Re-keying every winner on every
    weighted ADL order grew the heaps by orders x winners entries, 11 GB on 100k accounts;
    winners are now re-keyed once per scan, :c:func:`_rekey_dirty`.)"""
    cdef float64_t lp
    cdef Inst* x
    if a >= e.n or _multi(e, a):
        _recheck(e, _acct(e, a))
        return 0
    e.version[a] += 1
    if e.status[a] != ST_ACTIVE:
        return 0
    x = _inst(e, a)
    lp = liquidation_price(&x.tiers, e.col[a], e.pos[a], e.ep[a], 1.0)
    if e.pos[a] > 0.0:
        if lp > 0.0:
            side_push(&x.index.longs, trigger_key(lp, e.pos[a], e.ep[a]), a, e.version[a])
    else:
        side_push(&x.index.shorts, trigger_key(lp, e.pos[a], e.ep[a]), a, e.version[a])
    _touch(e, x)
    if x.index.longs.heap.size + x.index.shorts.heap.size > 2 * x.n_members + INDEX_SLACK:
        _build_index(e, x)
    return 0


cdef int _rekey_dirty(Engine* e) except -1 nogil:
    """Re-key the winners ADL filled since the last scan, once each however many orders
    filled them (a weighted policy fills every winner on every order); in an instrument where
    they are many, one O(m) rebuild is cheaper than their pushes. Until then their old entries
    stay live: no scan runs in between, and nothing else reads the index."""
    cdef Py_ssize_t j
    cdef i64 a
    cdef Inst* x
    for j in range(e.n_dirty):
        x = _inst(e, e.dirty[j])
        if x.n_dirty > 0 and 4 * x.n_dirty > x.n_members:
            _build_index(e, x)
            x.n_dirty = 0  # rebuilt: its winners need no push
    for j in range(e.n_dirty):
        a = e.dirty[j]
        e.is_dirty[a] = 0
        if _inst(e, a).n_dirty > 0 or a >= e.n or _multi(e, a):
            _rekey(e, a)
    for j in range(e.n_dirty):
        _inst(e, e.dirty[j]).n_dirty = 0
    e.n_dirty = 0
    return 0


cdef inline float64_t _reduce(Engine* e, Py_ssize_t a, float64_t closed, float64_t price) noexcept nogil:
    cdef float64_t realized = closed * (price - e.ep[a])
    cdef float64_t before = e.pos[a]
    cdef Inst* x
    e.col[_cash(e, a)] += realized
    e.pos[a] = before - closed
    if a < e.n_pos:
        x = _inst(e, a)
        if closed > 0:
            x.long_oi -= closed
        else:
            x.short_oi += closed
    else:
        _held(e, a, before)
    return realized


cdef void _take(Engine* e, Py_ssize_t h, float64_t dq, float64_t price) noexcept nogil:
    """Inventory slot ``h`` (the vault's or the fund's in one instrument) changes its position
    by ``dq`` at ``price``."""
    cdef float64_t q = e.pos[h]
    if q == 0.0 or _sign(q) == _sign(dq):
        e.ep[h] = (q * e.ep[h] + dq * price) / (q + dq)
        e.pos[h] = q + dq
        _held(e, h, q)
    elif fabs(dq) <= fabs(q):
        _reduce(e, h, -dq, price)
    else:
        e.col[_cash(e, h)] += q * (price - e.ep[h])
        e.pos[h] = q + dq
        e.ep[h] = price
        _held(e, h, q)


cdef inline void _entry(HeapEntry* entries, Py_ssize_t* count, float64_t key, i64 a,
                        i64 version) noexcept nogil:
    entries[count[0]].key = key
    entries[count[0]].id = a
    entries[count[0]].version = version
    count[0] += 1


cdef int _build_index(Engine* e, Inst* x, bint first=False) except -1 nogil:
    """(Re)build instrument ``x``'s liquidation index from its ACTIVE accounts in O(m) per
    side (:c:func:`riskengine._index.side_build`), in one pass over its members; each one's
    version moves on, so entries left from before are stale (the positions of cross accounts
    with several keep their keys and versions: :c:func:`_split`). The ``first`` build has no
    entries from before: the versions stay as they are (0)."""
    cdef Py_ssize_t j, a, m, nl = 0, ns = 0
    cdef float64_t lp, q
    cdef bint cross = e.xstart != NULL  # (read once: stores below may alias it for the compiler)
    cdef HeapEntry* longs = side_fill(&x.index.longs, x.n_members)
    cdef HeapEntry* shorts = side_fill(&x.index.shorts, x.n_members)
    for j in range(x.n_members):
        a = _member(x, j)
        if cross and (a >= e.n or _multi(e, a)):
            # a position of a cross account with several: its entry as split (_split)
            m = _acct(e, a)
            if e.status[m] == ST_ACTIVE and e.keyed[m] and e.trig[a] != -INFINITY:
                if e.pos[a] > 0.0:
                    _entry(longs, &nl, e.trig[a], a, e.version[m])
                elif e.pos[a] < 0.0:
                    _entry(shorts, &ns, e.trig[a], a, e.version[m])
            continue
        if e.status[a] != ST_ACTIVE:
            continue
        if not first:
            e.version[a] += 1
        q = e.pos[a]
        if q > 0.0:
            lp = liquidation_price(&x.tiers, e.col[a], q, e.ep[a], 1.0)
            if lp > 0.0:
                _entry(longs, &nl, trigger_key(lp, q, e.ep[a]), a, e.version[a])
        elif q < 0.0:
            lp = liquidation_price(&x.tiers, e.col[a], q, e.ep[a], 1.0)
            _entry(shorts, &ns, trigger_key(lp, q, e.ep[a]), a, e.version[a])
    side_build(&x.index.longs, nl)
    side_build(&x.index.shorts, ns)
    _touch(e, x)
    return 0


cdef int _build_indexes(Engine* e) except -1 nogil:
    """The first build of every instrument's index (:c:func:`_build_index` on each, with one
    pass over the accounts instead of one per instrument): before the first tick no cross
    account with several positions is keyed, so the entries are those of the ACTIVE accounts
    with one position, in account order, and no account has entries from before (the versions
    stay 0)."""
    cdef Py_ssize_t a, k
    cdef float64_t lp, q
    cdef Inst* x
    cdef Py_ssize_t* nl
    cdef Py_ssize_t* ns
    cdef HeapEntry** fills
    if e.n_inst == 1:
        return _build_index(e, &e.insts[0], True)
    nl = <Py_ssize_t*>malloc(2 * e.n_inst * sizeof(Py_ssize_t))
    fills = <HeapEntry**>malloc(2 * e.n_inst * sizeof(HeapEntry*))
    if nl == NULL or fills == NULL:
        free(nl)
        free(fills)
        with gil:
            raise MemoryError("engine: out of memory for the index build")
    ns = nl + e.n_inst
    try:
        for k in range(e.n_inst):
            nl[k] = 0
            ns[k] = 0
            fills[2 * k] = side_fill(&e.insts[k].index.longs, e.insts[k].n_members)
            fills[2 * k + 1] = side_fill(&e.insts[k].index.shorts, e.insts[k].n_members)
        for a in range(e.n):
            if e.status[a] != ST_ACTIVE or _multi(e, a):
                continue
            k = e.slot_inst[a]
            x = &e.insts[k]
            q = e.pos[a]
            if q > 0.0:
                lp = liquidation_price(&x.tiers, e.col[a], q, e.ep[a], 1.0)
                if lp > 0.0:
                    _entry(fills[2 * k], &nl[k], trigger_key(lp, q, e.ep[a]), a, e.version[a])
            elif q < 0.0:
                lp = liquidation_price(&x.tiers, e.col[a], q, e.ep[a], 1.0)
                _entry(fills[2 * k + 1], &ns[k], trigger_key(lp, q, e.ep[a]), a, e.version[a])
        for k in range(e.n_inst):
            x = &e.insts[k]
            side_build(&x.index.longs, nl[k])
            side_build(&x.index.shorts, ns[k])
            _touch(e, x)
    finally:
        free(nl)
        free(fills)
    return 0


cdef float64_t _socialize(Engine* e, Py_ssize_t a, float64_t loss) except -1 nogil:
    """Charge ``loss`` to every open ACTIVE position in account ``a``'s instrument by size,
    never below zero equity; one event records the total. Every charged account's liquidation
    price moves, so the instrument's index is rebuilt once (O(its accounts)) rather than
    re-keyed account by account."""
    cdef Inst* x = _inst(e, a)
    cdef Py_ssize_t j, i, m
    cdef float64_t total = 0.0, covered = 0.0, charge, room
    for j in range(x.n_members):
        i = _member(x, j)
        if e.status[_acct(e, i)] == ST_ACTIVE and e.pos[i] != 0.0:
            total += fabs(e.pos[i])
    if total <= 0.0:
        return covered
    for j in range(x.n_members):
        i = _member(x, j)
        m = _acct(e, i)
        if e.status[m] != ST_ACTIVE or e.pos[i] == 0.0:
            continue
        charge = loss * fabs(e.pos[i]) / total
        room = _equity(e, i)  # the account's: never below zero account equity
        if charge > room:
            charge = room if room > 0.0 else 0.0
        if charge <= 0.0:
            continue
        e.col[m] -= charge
        e.socialized[m] += charge
        covered += charge
        if i >= e.n or _multi(e, m):
            _recheck(e, m)
    if covered > 0.0:
        e.col[_acct(e, a)] += covered  # the market pays this much of the deficit
        _build_index(e, x)
        _emit(e, EV_SOCIALIZED_LOSS, a, MARKET_ID, 0.0, 0.0, 0.0, covered, _equity(e, a))
    return covered


cdef int _cover_deficit(Engine* e, Py_ssize_t a) except -1 nogil:
    """Settle the deficit ``-W`` an order on position slot ``a`` left (``W`` the rest of its
    account, :c:func:`_rest`): the fund of ``a``'s instrument pays what it can into the wallet,
    ``SOCIALIZE`` charges the rest to the instrument's open positions, what is left is bad debt.
    The wallet ends at ``-rest - O`` (``0.0 - O`` once paid or written off), so ``W`` is what the
    collateral was with one position."""
    cdef Py_ssize_t m = _acct(e, a)
    cdef Py_ssize_t fund = _inst(e, a).FC
    cdef float64_t others
    cdef float64_t deficit = -_rest(e, a, &others)
    cdef float64_t cash = e.col[fund] if e.col[fund] > 0.0 else 0.0  # inventory losses can leave it negative
    cdef float64_t pay = deficit if deficit < cash else cash
    cdef float64_t rest
    if pay > 0.0:
        e.col[fund] -= pay
        e.col[m] += pay
        _emit(e, EV_FUND_PAYMENT, a, BOOK_ID, 0.0, 0.0, 0.0, pay, _equity(e, a))
    rest = deficit - pay
    if rest > 0.0 and e.insts[0].adl.policy == ADL_SOCIALIZE:
        rest -= _socialize(e, a, rest)  # credits the account with what it covered
        if rest <= ADL_REST_TOL * deficit:
            rest = 0.0
        e.col[m] = -rest - others
    if rest > 0.0:
        e.bad_debt += rest
        e.col[m] = 0.0 - others
        _emit(e, EV_BAD_DEBT, a, BOOK_ID, 0.0, 0.0, 0.0, rest, _equity(e, a))
    elif e.col[m] + others < 0.0:
        e.col[m] = 0.0 - others
    _note_fund(e)
    return 0


cdef float64_t _charge_fee(Engine* e, Py_ssize_t a, float64_t fee) noexcept nogil:
    """Move the liquidation fee of an order on position slot ``a`` into the fund, capped at the
    rest of its account ``W`` (the collateral left, with one position); with
    ``liq_surplus_to_fund`` an account left without any position hands over all that is left."""
    cdef Py_ssize_t m = _acct(e, a)
    cdef float64_t room = _rest(e, a, NULL)
    if e.p.liq_surplus_to_fund and room > fee and not _holds_position(e, m):
        fee = room
    if fee > room:
        fee = room if room > 0.0 else 0.0
    e.col[m] -= fee
    e.col[_inst(e, a).FC] += fee  # the fund of its instrument
    return fee


cdef inline void _bring(Engine* e, Inst* x) noexcept nogil:
    """Bring ``x``'s book forward to now before an order walks it: its snapshot and its impact
    decay since it was last brought forward. The ticking instrument's book already is; another
    instrument's catches up here, lazily, not on every tick."""
    if x.book_ts != e.t:
        depth_seek(&x.book, e.t)
        impact_decay(&x.book, e.t - x.book_ts)
        x.book_ts = e.t
        _moved(e, x)


cdef inline void _count_liquidation(Engine* e, Inst* x, float64_t notional) noexcept nogil:
    e.cum_liq += 1
    e.cum_liq_notional += notional
    x.liquidations += 1
    x.liquidated_notional += notional


cdef float64_t _book_close(Engine* e, Py_ssize_t a, float64_t size, int kind,
                           float64_t fee_rate, bint settle) except? -1 nogil:
    """Send a market order closing ``size`` of slot ``a`` into its instrument's depth curve;
    return the fill. ``settle=False`` leaves a negative balance for the caller to settle."""
    cdef float64_t fill, move
    cdef Inst* x = _inst(e, a)
    _bring(e, x)
    depth_walk(&x.book, -_sign(size), fabs(size), _sim(x), x.tape, &fill, &move)
    return _book_fill(e, a, size, kind, fee_rate, settle, fill, move)


cdef float64_t _book_fill(Engine* e, Py_ssize_t a, float64_t size, int kind, float64_t fee_rate,
                          bint settle, float64_t fill, float64_t move) except? -1 nogil:
    """Settle a market order already walked through the book (``fill``, ``move``)."""
    cdef float64_t side = -_sign(size)
    cdef float64_t realized
    cdef float64_t fee = 0.0
    cdef Inst* x = _inst(e, a)
    impact_commit(&x.book, side, move, fabs(size) * fill)
    _moved(e, x)
    x.ext_pos += size
    x.ext_cash -= size * fill
    realized = _reduce(e, a, size, fill)
    if a < e.n_pos and not x.collateral:  # an exchange of collateral is no liquidation
        fee = _charge_fee(e, a, fee_rate * fabs(size) * fill)
        _count_liquidation(e, x, fabs(size) * fill)
    _emit(e, kind, a, BOOK_ID, size, fill, fee, realized, _equity(e, a))
    if settle and a < e.n_pos and _rest(e, a, NULL) < 0.0:
        _cover_deficit(e, a)
    return fill


cdef inline float64_t _adl_available(Engine* e, Py_ssize_t i, float64_t price,
                                     float64_t mark) noexcept nogil:
    """How much of winner ``i`` (an account at ``mark``, its instrument's) ADL can close at
    ``price`` keeping its equity at or above zero."""
    cdef float64_t q = e.pos[i]
    cdef float64_t worse = _sign(q) * (price - mark)
    cdef float64_t cap
    if worse < 0.0:
        cap = _equity(e, i) / (-worse) * (1.0 - ADL_EQUITY_GUARD)  # its account's equity
        return cap if cap < fabs(q) else fabs(q)
    return fabs(q)


cdef inline void _mark_dirty(Engine* e, Inst* x, Py_ssize_t i) noexcept nogil:
    """Winner ``i`` (in ``x``) is re-keyed once, before the next scan (:c:func:`_rekey_dirty`),
    however many ADL fills it takes until then."""
    if not e.is_dirty[i]:
        e.is_dirty[i] = 1
        e.dirty[e.n_dirty] = i
        e.n_dirty += 1
        x.n_dirty += 1


cdef int _adl_fill(Engine* e, Py_ssize_t i, Py_ssize_t a, float64_t take,
                   float64_t price) except -1 nogil:
    """Close ``take`` of winner ``i`` at ``price`` against the order of slot ``a`` (same
    instrument), and log it.

    Under the weighted policies (``merge_fills``) a winner already filled in this series
    interval (``adl_bucket``, set per order by :c:func:`_adl_close`) gets no new row: the fill
    is added to the row of its first fill in the interval (``events_merge``). Every weighted
    order fills every winner, so k orders against m winners would log k x m rows (457M rows,
    42 GB, for 100k accounts on the default scenario); merged, an interval logs at most one row
    per winner. The state still changes fill by fill."""
    cdef float64_t closed = _sign(e.pos[i]) * take
    cdef float64_t haircut
    cdef i64 counterparty = _public_id(e, a)
    cdef Inst* x = _inst(e, i)
    _reduce(e, i, closed, price)
    if not _holds_position(e, _acct(e, i)):
        e.status[_acct(e, i)] = ST_CLOSED
    _mark_dirty(e, x, i)
    haircut = -closed * (price - x.mark.mark)
    if not haircut > 0.0:
        haircut = 0.0
    e.cum_adl += 1
    e.cum_adl_notional += take * price
    x.adl_fills += 1
    x.adl_notional += take * price
    e.order_haircut += haircut
    if e.merge_fills:
        if e.fill_bucket[i] == e.adl_bucket:
            events_merge(&e.log, e.fill_row[i], counterparty, ADL_ORDERS_ID, closed, take * price,
                         haircut, _equity(e, i), _fund(e, x))
            return 0
        e.fill_bucket[i] = e.adl_bucket
        e.fill_row[i] = e.log.n
    _emit(e, EV_ADL_FILL, i, counterparty, closed, price, 0.0, haircut, _equity(e, i))
    return 0


cdef inline void _prefetch_account(Engine* e, Py_ssize_t a) noexcept nogil:
    """Start fetching the cache lines an exact check of margin account ``a`` reads first
    (its own slot's; a check is a cache miss per array otherwise)."""
    __builtin_prefetch(&e.xstart[a + 1])
    __builtin_prefetch(&e.status[a])
    __builtin_prefetch(&e.col[a])
    __builtin_prefetch(&e.pos[a])
    __builtin_prefetch(&e.ep[a])
    __builtin_prefetch(&e.slot_inst[a])
    __builtin_prefetch(&e.seen[a])
    __builtin_prefetch(&e.partial_tick[a])
    __builtin_prefetch(&e.version[a])


cdef inline void _prefetch_positions(Engine* e, Py_ssize_t a) noexcept nogil:
    """Then those of its other positions (``xstart[a]`` fetched by now)."""
    cdef Py_ssize_t s = e.n + e.xstart[a]
    if e.xstart[a + 1] > e.xstart[a]:
        __builtin_prefetch(&e.pos[s])
        __builtin_prefetch(&e.ep[s])
        __builtin_prefetch(&e.slot_inst[s])
        __builtin_prefetch(&e.trig[s])


cdef Py_ssize_t _gather_accounts(Engine* e, Inst* x, float64_t side, i64* ids_out,
                                 float64_t* scores_out, i64* order_out) noexcept nogil:
    """``adl_gather`` in an instrument where cross accounts with several positions hold
    positions: the positions (slots, in ``ids_out``; their rank among ``x``'s members, which is
    position order, in ``order_out``) on the other side of ``side`` in profit at ``x``'s mark
    whose margin account is ACTIVE with positive equity; for a queue their scores on their
    accounts' figures (``adl_score_account``)."""
    cdef Py_ssize_t i, j, s, a, k = 0, n_side
    cdef float64_t mark = x.mark.mark, upnl, equity, mm, q
    cdef int w = 1 if side > 0.0 else 0  # the winners' side: shorts against a long
    n_side = x.n_by_side[w]
    for i in range(n_side):
        # each array read here is a cache miss per position: fetch a later one's lines now
        if i + PREFETCH_AHEAD < n_side:
            s = _member(x, x.by_side[w][i + PREFETCH_AHEAD])
            __builtin_prefetch(&e.pos[s])
            __builtin_prefetch(&e.ep[s])
            if s < e.n:
                __builtin_prefetch(&e.status[s])
                __builtin_prefetch(&e.xstart[s + 1])
                __builtin_prefetch(&e.col[s])
            else:
                __builtin_prefetch(&e.xacc[s - e.n])
        if i + PREFETCH_AHEAD // 2 < n_side:  # its account's other lines (xacc, xstart fetched)
            s = _member(x, x.by_side[w][i + PREFETCH_AHEAD // 2])
            a = _acct(e, s)
            if a != s:
                _prefetch_account(e, a)
            _prefetch_positions(e, a)
        # the cheap tests first
        j = x.by_side[w][i]
        s = _member(x, j)
        q = e.pos[s]
        if not q * side < 0.0:
            continue
        upnl = q * (mark - e.ep[s])
        if not upnl > 0.0:
            continue
        a = _acct(e, s)
        if e.status[a] != ST_ACTIVE:
            continue
        if a == s and x.ticked and not _multi(e, a):  # _account_figures of one position, unlooped
            equity = e.col[a] + upnl
            mm = 0.0 + maintenance_margin(&x.tiers, fabs(q) * mark)
        else:
            equity = _account_figures(e, a, &mm)
        if not equity > 0.0:
            continue
        ids_out[k] = s
        order_out[k] = j
        if x.adl.policy == ADL_QUEUE:
            scores_out[k] = adl_score_account(&x.adl, e.pos[s], e.ep[s], mark, equity, e.col[a], mm)
        k += 1
    return k


cdef int _adl_rank(Engine* e, Inst* x, float64_t side) except -1 nogil:
    """Re-rank ``x``'s ADL queue against a liquidated ``side`` when its snapshot is stale. An
    entry's id orders ties (the position's rank in ``x``), its version is the slot."""
    cdef int s = 1 if side > 0.0 else 0
    cdef Py_ssize_t count
    if x.adl_rank_built[s] and e.t - x.adl_rank_time[s] < e.p.adl_rank_interval_ns:
        return 0
    if x.n_multi:
        count = _gather_accounts(e, x, side, e.work_ids, e.work_vals, e.work_live)
        heapify_from(&x.adl_rank[s], e.work_vals, e.work_live, e.work_ids, count)
    else:
        count = adl_gather(&x.adl, side, x.mark.mark, e.col, e.pos, e.ep, e.status, x.members,
                           x.n_members, e.work_ids, e.work_vals)
        heapify_from(&x.adl_rank[s], e.work_vals, e.work_ids, e.work_ids, count)
    x.adl_rank_built[s] = True
    x.adl_rank_time[s] = e.t
    return 0


cdef float64_t _adl_price(Engine* e, Py_ssize_t a) noexcept nogil:
    cdef float64_t price
    cdef Inst* x = _inst(e, a)
    if e.p.adl_price == ADL_AT_BANKRUPTCY:
        price = e.ep[a] - _cash_of(e, a) / e.pos[a]
        return price if price > 0.0 else x.mark.mark
    if e.p.adl_price == ADL_AT_PREVIOUS_MARK:
        return x.prev_mark
    return x.mark.mark


cdef inline void _unwind_kind(Engine* e, Py_ssize_t a, int* kind, float64_t* fee_rate) noexcept nogil:
    if a < e.n_pos:
        kind[0] = EV_LIQUIDATION
        fee_rate[0] = e.p.liq_fee_rate
    elif _is_vault(e, a):
        kind[0] = EV_VAULT_UNWIND
        fee_rate[0] = 0.0
    else:
        kind[0] = EV_FUND_UNWIND
        fee_rate[0] = 0.0


cdef float64_t _adl_allocate(Engine* e, Inst* x, Py_ssize_t a, float64_t side, float64_t wanted,
                             float64_t price) except -1 nogil:
    """The weighted and water-filling policies: fill every candidate's share; return the total."""
    cdef Py_ssize_t count, k, j
    cdef float64_t absorbed = 0.0, mark = x.mark.mark
    if x.n_multi:
        count = _gather_accounts(e, x, side, e.work_ids, e.work_vals, e.work_live)
    else:
        count = adl_gather(&x.adl, side, mark, e.col, e.pos, e.ep, e.status, x.members,
                           x.n_members, e.work_ids, e.work_vals)
    for k in range(count):
        j = e.work_ids[k]
        e.work_caps[k] = _adl_available(e, j, price, mark)
    if x.adl.policy == ADL_WATER_FILLING:
        for k in range(count):
            j = e.work_ids[k]
            e.work_a[k] = fabs(e.pos[j]) * mark
            e.work_b[k] = _equity(e, j)
        water_filling(e.work_a, e.work_b, e.work_caps, count, mark, wanted,
                      e.work_out, e.work_vals, e.work_live)
    elif x.n_multi:
        for k in range(count):
            j = e.work_ids[k]
            e.work_vals[k] = adl_weight_account(&x.adl, e.pos[j], e.ep[j], mark, _equity(e, j))
        capped_allocation(e.work_vals, e.work_caps, count, wanted, e.work_out, e.work_ratio,
                          e.work_a)
    else:
        for k in range(count):
            j = e.work_ids[k]
            e.work_vals[k] = adl_weight(&x.adl, e.pos[j], e.col[j], e.ep[j], mark)
        capped_allocation(e.work_vals, e.work_caps, count, wanted, e.work_out, e.work_ratio,
                          e.work_a)
    for k in range(count):
        if e.work_out[k] > 0.0:
            _adl_fill(e, e.work_ids[k], a, e.work_out[k], price)
            absorbed += e.work_out[k]
    return absorbed


cdef int _lazy_flush(Engine* e) except -1 nogil:
    """Close the open burst, if any: each winner's position, wallet and fill row take the sums
    of its orders at once (per unit of its weight at the burst's start, ``lz_unit``:
    ``lz_closed`` closed, ``lz_notional`` at the orders' prices, ``lz_haircut`` against the
    mark). Its row was opened at the burst's first order, so the log's rows stand where filling
    order by order puts them; the row's equity and fund are those after the last order. Called
    before anything else reads a winner: the next scan, the end of the round, a winner-side
    account's own processing."""
    cdef Py_ssize_t k, j
    cdef float64_t sgn, u, closed
    cdef i64 counterparty
    if not e.lz_on:
        return 0
    e.lz_on = False
    sgn = -e.lz_side
    counterparty = ADL_ORDERS_ID if e.lz_mixed else e.lz_counterparty
    for k in range(e.lz_n):
        j = e.lz_ids[k]
        u = e.lz_unit[k]
        closed = sgn * u * e.lz_closed
        e.col[j] += sgn * u * (e.lz_notional - e.lz_closed * e.ep[j])  # realized: closed x (price - entry)
        if e.lz_by_equity:
            e.pos[j] = sgn * (fabs(e.pos[j]) - u * e.lz_closed)
        else:
            e.pos[j] = sgn * u * e.lz_f
        if e.pos[j] == 0.0:
            e.status[j] = ST_CLOSED
        events_merge(&e.log, e.fill_row[j], counterparty, ADL_ORDERS_ID, closed, u * e.lz_notional,
                     u * e.lz_haircut, _equity(e, j), e.lz_fund)
    return 0


cdef bint _lazy_start(Engine* e, Inst* x, float64_t side, float64_t wanted,
                      float64_t price) except -1 nogil:
    """Gather the winners against a liquidated ``side`` for a burst, each one's unit (its size,
    or by equity its equity) and the bound :c:func:`_lazy_uncapped` reads; whether the burst
    may open (there are winners and this order caps none of them)."""
    cdef Py_ssize_t k, j
    cdef float64_t mark = x.mark.mark, q0, equity, bound
    e.lz_n = adl_gather(&x.adl, side, mark, e.col, e.pos, e.ep, e.status, x.members, x.n_members,
                        e.lz_ids, e.work_vals)
    if e.lz_n == 0:
        return False
    e.lz_by_equity = x.adl.policy == ADL_PRO_RATA_EQUITY
    e.lz_s0 = 0.0
    e.lz_bound = INFINITY
    for k in range(e.lz_n):
        j = e.lz_ids[k]
        q0 = fabs(e.pos[j])
        equity = e.col[j] + e.pos[j] * (mark - e.ep[j])
        if e.lz_by_equity:
            e.lz_unit[k] = equity
            bound = q0 / equity
        else:
            e.lz_unit[k] = q0
            bound = equity / q0
        e.lz_s0 += e.lz_unit[k]
        if bound < e.lz_bound:
            e.lz_bound = bound
    e.lz_x = x
    e.lz_side = side
    e.lz_mark = mark
    e.lz_f = 1.0
    e.lz_closed = 0.0
    e.lz_notional = 0.0
    e.lz_haircut = 0.0
    e.lz_equity = 0.0
    return _lazy_uncapped(e, wanted, price)


cdef inline bint _lazy_uncapped(Engine* e, float64_t wanted, float64_t price) noexcept nogil:
    """Whether the split of ``wanted`` over the burst's winners caps none of them:
    ``capped_allocation``'s plain level ``tau = wanted / W`` (``W`` the weights' sum) when every
    cap exceeds ``tau`` times the winner's weight. The caps are the size and, closing at a
    price worse than the mark by ``d``, the size that keeps equity >= 0 (``_adl_available``).

    By size: ``tau < 1``, and ``g (1 - guard) / d > tau`` for ``g`` the equity per unit of
    size; an order maps every ``g`` to ``(g - tau d) / (1 - tau)``, one increasing map, so the
    least ``g`` at the start (``lz_bound``) stays the least: ``(lz_bound + lz_equity) / lz_f``.
    By equity: ``tau d < 1 - guard``, and ``tau E < |q|``, which binds first for the least
    ``|q| / E``; an order maps every ``|q| / E`` to ``(|q| / E - tau) / (1 - tau d)``, again one
    increasing map, so the least at the start stays the least: ``lz_bound - lz_closed`` per unit
    of starting equity against ``tau lz_f``."""
    cdef float64_t tau = wanted / (e.lz_s0 * e.lz_f)
    cdef float64_t worse = -e.lz_side * (price - e.lz_mark)
    if e.lz_by_equity:
        if worse < 0.0 and not tau * (-worse) < 1.0 - ADL_EQUITY_GUARD:
            return False
        return tau * e.lz_f < e.lz_bound - e.lz_closed
    if not tau < 1.0:
        return False
    if worse < 0.0:
        return (e.lz_bound + e.lz_equity) / e.lz_f * (1.0 - ADL_EQUITY_GUARD) / (-worse) > tau
    return True


cdef float64_t _lazy_order(Engine* e, Inst* x, Py_ssize_t a, float64_t side, float64_t wanted,
                           float64_t price) except? -2.0 nogil:
    """Split an ADL order of ``wanted`` against slot ``a`` pro rata by size or by equity over
    the winners in O(1), as part of a burst; return the size absorbed, or -1 when this order
    must be split at once (:c:func:`_adl_allocate`): a cap binds, or no winner.

    Both weights move by one map per order for every winner: by size each scales by ``1 -
    tau``, by equity each equity by ``1 - tau d`` (closing at ``d`` worse than the mark). So a
    burst keeps one factor (``lz_f``: a winner's weight now per unit of its weight at the
    start) and per-unit sums instead of touching each winner; the winners stay the same within
    a round (the mark does not move, and a winner-side account that changes flushes the burst
    first). The counters, the open interest and the order's haircut move per order as the
    fills would move them. Same split as :c:func:`capped_allocation` when nothing caps; the
    floating-point sums are associated differently (``docs/design/weighted-adl.md``)."""
    cdef float64_t t, worse, haircut, mark = x.mark.mark
    cdef Py_ssize_t k, j
    cdef i64 counterparty = _public_id(e, a)
    if e.lz_on and (e.lz_x != x or e.lz_side != side or e.lz_mark != mark):
        _lazy_flush(e)
    if e.lz_skip:
        return -1.0
    if e.lz_on:
        if not _lazy_uncapped(e, wanted, price):
            _lazy_flush(e)
            e.lz_skip = True
            return -1.0
    else:
        if not _lazy_start(e, x, side, wanted, price):
            e.lz_skip = e.lz_n > 0  # capped (no winners: nothing to skip)
            return -1.0
        # the burst opens: each winner's row, where its first fill would log it, and its re-key
        for k in range(e.lz_n):
            j = e.lz_ids[k]
            if e.fill_bucket[j] != e.adl_bucket:
                e.fill_bucket[j] = e.adl_bucket
                e.fill_row[j] = e.log.n
                _emit(e, EV_ADL_FILL, j, counterparty, 0.0, price, 0.0, 0.0, _equity(e, j))
            _mark_dirty(e, x, j)
        e.lz_on = True
        e.lz_counterparty = counterparty
        e.lz_mixed = False
        e.lz_bursts += 1
    t = wanted / e.lz_s0  # closed per unit of the starting weight (tau x lz_f); in all, wanted
    worse = -side * (price - mark)  # per unit closed: the winner's equity change
    haircut = -worse if worse < 0.0 else 0.0
    e.lz_closed += t
    e.lz_notional += t * price
    e.lz_haircut += t * haircut
    e.lz_equity += t * worse
    if e.lz_by_equity:
        e.lz_f += t * worse
    else:
        e.lz_f -= t
    e.lz_fund = _fund(e, x)
    if counterparty != e.lz_counterparty:
        e.lz_mixed = True
    e.lz_orders += 1
    e.cum_adl += e.lz_n
    x.adl_fills += e.lz_n
    e.cum_adl_notional += wanted * price
    x.adl_notional += wanted * price
    e.order_haircut += wanted * haircut
    if side < 0.0:  # the winners are long
        x.long_oi -= wanted
    else:
        x.short_oi -= wanted
    return wanted


cdef int _adl_close(Engine* e, Py_ssize_t a, float64_t size, bint full) except -1 nogil:
    """Auto-deleverage ``size`` of slot ``a`` (an account or an inventory) against the other
    side of its instrument."""
    cdef Inst* x = _inst(e, a)
    cdef float64_t side = _sign(size)
    cdef float64_t price = _adl_price(e, a)
    cdef float64_t wanted = fabs(size)
    cdef float64_t remaining = wanted, absorbed = 0.0, avail, take, rest
    cdef float64_t closed_a, q_a, shortfall, fee_rate, key, mark = x.mark.mark
    cdef i64 idx, ver
    cdef int kind
    cdef bint eligible, multi
    cdef KeyHeap* h
    e.order_haircut = 0.0
    if e.merge_fills:  # the series interval this order's fills are logged in (from 1)
        e.adl_bucket = (e.t - e.ts[0]) // e.p.series_interval_ns + 1
    if x.adl.policy == ADL_QUEUE:
        h = &x.adl_rank[1 if side > 0.0 else 0]
        _adl_rank(e, x, side)
        multi = x.n_multi != 0
        while h.size > 0 and remaining > 0.0:
            idx = h.items[0].version  # a position in x
            if multi:
                eligible = (e.status[_acct(e, idx)] == ST_ACTIVE and e.pos[idx] * side < 0.0
                            and e.pos[idx] * (mark - e.ep[idx]) > 0.0 and _equity(e, idx) > 0.0)
            else:
                eligible = not (e.status[idx] != ST_ACTIVE or e.pos[idx] * side >= 0.0
                                or e.pos[idx] * (mark - e.ep[idx]) <= 0.0
                                or e.col[idx] + e.pos[idx] * (mark - e.ep[idx]) <= 0.0)
            if not eligible:
                heap_pop(h, &key, &ver, &ver)
                continue
            avail = _adl_available(e, idx, price, mark)
            if avail <= 0.0:
                heap_pop(h, &key, &ver, &ver)
                continue
            if remaining < avail:
                take = remaining
            else:
                take = avail
                heap_pop(h, &key, &ver, &ver)
            _adl_fill(e, idx, a, take, price)
            remaining -= take
            absorbed += take
    else:
        absorbed = _lazy_order(e, x, a, side, wanted, price) if e.lazy_adl and e.xstart == NULL else -1.0
        if absorbed < 0.0:
            absorbed = _adl_allocate(e, x, a, side, wanted, price)
    rest = wanted - absorbed
    if rest <= ADL_REST_TOL * wanted:
        rest = 0.0
    if absorbed > 0.0:
        q_a = e.pos[a]
        closed_a = q_a if (full and rest == 0.0) else side * absorbed
        shortfall = -(_cash_of(e, a) * fabs(closed_a) / fabs(q_a)
                      + closed_a * (x.mark.mark - e.ep[a]))
        if not shortfall > 0.0:
            shortfall = 0.0
        if e.order_haircut > shortfall:
            e.adl_overshoot += e.order_haircut - shortfall
        _reduce(e, a, closed_a, price)
        if a < e.n_pos:
            _count_liquidation(e, x, fabs(closed_a) * price)
        _emit(e, EV_ADL_LIQUIDATION, a, BOOK_ID, closed_a, price, 0.0, shortfall, _equity(e, a))
    if rest > 0.0:
        _unwind_kind(e, a, &kind, &fee_rate)
        _book_close(e, a, e.pos[a] if full else side * rest, kind, fee_rate, True)
    elif a < e.n_pos and _rest(e, a, NULL) < 0.0:
        _cover_deficit(e, a)
    return 0


cdef int _vault_check(Engine* e, Py_ssize_t cash) except -1 nogil:
    """After every change of the equity of the vault whose cash is ``col[cash]`` (a takeover,
    an unwind, a re-mark): note the vaults' lowest equity; once its loss passes the threshold,
    deleverage its whole inventory, in each of its instruments (in instrument order)."""
    cdef float64_t equity = _ledger_equity(e, cash)
    cdef Py_ssize_t k, h
    _note_vault(e, equity)
    if (_lead(e, cash).ledger_held[0] != 0 and _closes(e)
            and equity < e.p.vault_initial - e.p.vault_loss_limit):
        for k in range(e.n_inst):
            h = e.insts[k].V
            if e.insts[k].VC == cash and e.pos[h] != 0.0:
                _adl_close(e, h, e.pos[h], True)
        _note_vault(e, _ledger_equity(e, cash))
    return 0


cdef int _vault_checks(Engine* e) except -1 nogil:
    """Check every vault that holds inventory, in ledger order (a re-mark)."""
    cdef Py_ssize_t k
    cdef Inst* y
    for k in range(e.n_inst):
        y = &e.insts[k]
        if y.VC == y.V and y.ledger_held[0] != 0:  # a lead
            _vault_check(e, y.V)
    return 0


cdef bint _vault_takes(Engine* e, Py_ssize_t m) noexcept nogil:
    """Whether the venue has backstop vaults that may take margin account ``m`` over now: every
    vault its open positions draw on within its loss threshold (a vault beyond it takes nothing
    over)."""
    cdef Py_ssize_t j, s
    if not e.p.backstop_ratio > 0.0:
        return False
    for j in range(_n_held(e, m)):
        s = _slot(e, m, j)
        if e.pos[s] != 0.0 and _vault_beyond(e, _inst(e, s).VC):
            return False
    return True


cdef int _backstop(Engine* e, Py_ssize_t m, Py_ssize_t a, float64_t equity) except -1 nogil:
    """The vaults take over margin account ``m``: all its positions at their marks and its
    remaining ``equity`` (the maintenance margin is not returned; Hyperliquid [DOC S21],
    reference §2.4: "cross -> all cross positions and cross margin transferred"). Each position
    goes into the inventory of its instrument's vault, ``equity`` to the vault of position ``a``'s
    instrument (the one the liquidation chose). Each vault holding no inventory starts its unwind
    clock; the vaults take each open position (position order); the cash of ``a``'s vault gains
    ``equity``; then each position is closed in the account at its mark, one BACKSTOP event each
    (amount: ``equity`` on the first, 0 on the others); the wallet is then 0 and the loss of each
    vault that took a position is checked, in ledger order."""
    cdef Inst* x
    cdef Inst* lead
    cdef float64_t q, mark, amount = equity
    cdef Py_ssize_t j, s, k, held = _n_held(e, m)
    for j in range(held):
        s = _slot(e, m, j)
        if e.pos[s] != 0.0:
            lead = _lead(e, _inst(e, s).VC)
            if lead.ledger_held[0] == 0:  # the vault's unwind clock starts with its first inventory
                lead.next_unwind[0] = e.t + e.p.vault_unwind_interval_ns
            lead.takes_over = True
    for j in range(held):
        s = _slot(e, m, j)
        if e.pos[s] != 0.0:
            x = _inst(e, s)
            _take(e, x.V, e.pos[s], x.mark.mark)
    e.col[_inst(e, a).VC] += equity
    for j in range(held):
        s = _slot(e, m, j)
        q = e.pos[s]
        if q == 0.0:
            continue
        x = _inst(e, s)
        mark = x.mark.mark
        _reduce(e, s, q, mark)
        _count_liquidation(e, x, fabs(q) * mark)
        _emit(e, EV_BACKSTOP, s, VAULT_ID, q, mark, 0.0, amount, 0.0)
        amount = 0.0
    e.col[m] = 0.0
    if e.n_vaults == 1:
        e.insts[0].takes_over = False
        _vault_check(e, e.insts[0].V)
        return 0
    for k in range(e.n_inst):  # the vaults that took a position, in ledger order (their leads)
        x = &e.insts[k]
        if x.takes_over:
            x.takes_over = False
            _vault_check(e, x.V)
    return 0


cdef float64_t _order_size(Engine* e, Py_ssize_t a, float64_t q, float64_t equity,
                           float64_t notional, bint* full) noexcept nogil:
    """Size of the liquidation order; ``full`` says whether it closes the whole position."""
    cdef const Tiers* tiers = &_inst(e, a).tiers
    cdef Py_ssize_t k = 0, j
    cdef float64_t target, others
    full[0] = True
    if _cooling(e, _user(e, _acct(e, a))):  # the user's cooldown
        return q
    if e.p.partial_mode == PARTIAL_FRACTION:
        if (e.p.partial_fraction < 1.0 and notional > e.p.partial_threshold and equity >= 0.0
                and notional * (1.0 - e.p.partial_fraction) >= DUST_NOTIONAL):
            full[0] = False
            return q * e.p.partial_fraction
        return q
    while k + 1 < tiers.n and tiers.floors[k + 1] <= notional:
        k += 1
    j = k
    others = _other_mm(e, a)  # the account stays healthy: E >= MMo + MM(target)
    while j > 0:
        target = tiers.floors[j] * (1.0 - TIER_STEP_MARGIN)
        if equity >= others + maintenance_margin(tiers, target):
            full[0] = False
            return q * (1.0 - target / notional)
        j -= 1
    return q


cdef float64_t _limit_price(Engine* e, Py_ssize_t a, float64_t side) noexcept nogil:
    """Worst price the liquidation order may fill at (NaN: no limit)."""
    cdef Inst* x = _inst(e, a)
    cdef float64_t limit = NAN, band
    if e.p.liq_limit_bankruptcy:
        limit = e.ep[a] - _rest(e, a, NULL) / e.pos[a]
    if x.liq_price_band != INFINITY:
        band = x.mark.mark * (1.0 + side * x.liq_price_band)
        if limit != limit or side * (band - limit) < 0.0:
            limit = band
    return limit


cdef bint _fund_can_take(Engine* e, Inst* x, float64_t dq, float64_t price,
                         float64_t deficit) noexcept nogil:
    """Whether the fund of instrument ``x`` can take ``dq`` of ``x`` at ``price`` within its
    capacity, after paying ``deficit`` (what the takeover may leave the account owing): its
    inventory in each of its instruments at that instrument's mark within ``fund_capacity`` x
    its equity (cash plus inventory at the marks)."""
    cdef float64_t value = _ledger_equity(e, x.FC), exposure = 0.0, q
    cdef Py_ssize_t k, h
    value = value + dq * (x.mark.mark - price) - deficit
    if not value >= 0.0:
        return False
    for k in range(e.n_inst):
        if e.insts[k].FC != x.FC:
            continue
        h = e.insts[k].F
        q = e.pos[h] + dq if k == x.id else e.pos[h]
        exposure += fabs(q) * e.insts[k].mark.mark
    return exposure <= e.p.fund_capacity * value


cdef int _market_liquidation(Engine* e, Py_ssize_t a, float64_t size, int kind,
                             bint full) except -1 nogil:
    cdef Inst* x = _inst(e, a)
    cdef float64_t side = -_sign(size)
    cdef float64_t limit = _limit_price(e, a, side)
    cdef float64_t fill, move, after, deficit, filled, bankruptcy, rest, part, realized, fee, owed
    cdef float64_t behind
    cdef float64_t filled_notional = 0.0
    cdef bint to_fund
    _bring(e, x)
    if limit != limit:
        depth_walk(&x.book, side, fabs(size), _sim(x), x.tape, &fill, &move)
        after = _rest(e, a, NULL) + size * (fill - e.ep[a])
        deficit = -after if after < 0.0 else 0.0
        if deficit > _fund(e, x) and _vault_takes(e, _acct(e, a)):
            # the book cannot close it: not successful; the vaults take the whole account
            _backstop(e, _acct(e, a), a, _equity(e, a))
        elif deficit > _fund(e, x) and _closes(e):
            _adl_close(e, a, size, full)
        else:
            _book_fill(e, a, size, kind, e.p.liq_fee_rate, True, fill, move)  # walked once
        return 0
    filled = depth_fillable(&x.book, side, fabs(size), _sim(x), x.tape, limit)
    if filled >= fabs(size):
        _book_close(e, a, size, kind, e.p.liq_fee_rate, True)
        return 0
    # the rest's route is decided before anything fills
    behind = _rest(e, a, NULL)
    bankruptcy = e.ep[a] - behind / e.pos[a]
    rest = -side * (fabs(size) - filled)
    # at the bankruptcy price a whole close leaves the account >= 0; a partial one keeps its
    # share of negative collateral (fills better than the limit only reduce it)
    owed = 0.0 if full else -behind * (1.0 - size / e.pos[a])
    to_fund = (e.p.takeover == TAKEOVER_FUND
               and _fund_can_take(e, x, rest, bankruptcy, owed if owed > 0.0 else 0.0))
    if filled > 0.0:
        fill = _book_close(e, a, -side * filled, kind, 0.0 if to_fund else e.p.liq_fee_rate, False)
        filled_notional = filled * fill
    part = e.pos[a] if full else rest
    if to_fund:
        if _lead(e, x.FC).ledger_held[1] == 0:  # the fund's unwind clock starts with its first inventory
            _lead(e, x.FC).next_unwind[1] = e.t + e.p.fund_unwind_interval_ns
        _take(e, x.F, part, bankruptcy)
        _note_fund(e)  # taking against its own opposite inventory realizes the fund's PnL
        realized = _reduce(e, a, part, bankruptcy)
        fee = _charge_fee(e, a, e.p.liq_fee_rate * (filled_notional + fabs(part) * bankruptcy))
        _count_liquidation(e, x, fabs(part) * bankruptcy)
        _emit(e, EV_FUND_TAKEOVER, a, FUND_ID, part, bankruptcy, fee, realized, _equity(e, a))
        if _rest(e, a, NULL) < 0.0:
            _cover_deficit(e, a)
    elif _closes(e):
        _adl_close(e, a, part, full)
    else:
        _book_close(e, a, part, kind, e.p.liq_fee_rate, True)
    return 0


cdef bint _fund_drawdown_active(Engine* e, const Inst* x) noexcept nogil:
    """Whether the fund of ``x`` (the liquidated position's instrument) is below ``1 -
    adl_fund_drawdown`` of its rolling peak."""
    cdef Inst* lead = _lead(e, x.FC)
    if e.p.adl_fund_drawdown == INFINITY or lead.peak_head == lead.peak_tail:
        return False
    return _fund(e, x) < (1.0 - e.p.adl_fund_drawdown) * lead.peak_val[lead.peak_head]


cdef int _sample_fund_peak(Engine* e, Inst* lead) except -1 nogil:
    """Rolling maximum of the cash of the fund ``lead`` leads over ``adl_fund_window`` (sampled
    per tick); its window starts with room for PEAK_START samples and doubles when full."""
    cdef float64_t value = e.col[lead.FC]
    cdef Py_ssize_t j, live, cap
    cdef i64* ts
    cdef float64_t* vals
    while lead.peak_tail > lead.peak_head and lead.peak_val[lead.peak_tail - 1] <= value:
        lead.peak_tail -= 1
    if lead.peak_tail == lead.peak_cap:
        live = lead.peak_tail - lead.peak_head
        if lead.peak_head > 0:
            for j in range(live):
                lead.peak_ts[j] = lead.peak_ts[lead.peak_head + j]
                lead.peak_val[j] = lead.peak_val[lead.peak_head + j]
        else:
            cap = 2 * lead.peak_cap if lead.peak_cap else PEAK_START
            ts = <i64*>realloc(lead.peak_ts, cap * sizeof(i64))
            vals = <float64_t*>realloc(lead.peak_val, cap * sizeof(float64_t))
            if ts != NULL:
                lead.peak_ts = ts
            if vals != NULL:
                lead.peak_val = vals
            if ts == NULL or vals == NULL:
                with gil:
                    raise MemoryError("engine: out of memory for the fund peak window")
            lead.peak_cap = cap
        lead.peak_head = 0
        lead.peak_tail = live
    lead.peak_ts[lead.peak_tail] = e.t
    lead.peak_val[lead.peak_tail] = value
    lead.peak_tail += 1
    while lead.peak_ts[lead.peak_head] < e.t - e.p.adl_fund_window_ns:
        lead.peak_head += 1
    return 0


cdef int _sample_fund_peaks(Engine* e) except -1 nogil:
    """Each fund's rolling peak, in ledger order."""
    cdef Py_ssize_t k
    for k in range(e.n_inst):
        if e.insts[k].FC == e.insts[k].F:  # a lead
            _sample_fund_peak(e, &e.insts[k])
    return 0


cdef Py_ssize_t _choose(Engine* e, Py_ssize_t m) noexcept nogil:
    """The position (slot) of cross account ``m`` a liquidation closes (``cross_order``: the
    largest notional ``|q| M``, or the most negative PnL ``q (M - e)``; ties: the first in
    position order). Venues do not document an order, hence the named setting. Collateral
    holdings only once no other position is open (reference: ``choose``)."""
    cdef Py_ssize_t best = -1, j, s
    cdef float64_t key = 0.0, value, q
    cdef bint loss = e.p.cross_order == CROSS_LOSS
    cdef int holdings
    for holdings in range(2):
        for j in range(_n_held(e, m)):
            s = _slot(e, m, j)
            q = e.pos[s]
            if q == 0.0 or _inst(e, s).collateral != holdings:
                continue
            value = q * (_mark_of(e, s) - e.ep[s]) if loss else fabs(q) * _mark_of(e, s)
            if best < 0 or (value < key if loss else value > key):
                best = s
                key = value
        if best >= 0:
            return best
    return best


cdef int _exchange_collateral(Engine* e, Py_ssize_t m) except -1 nogil:
    """Auto-exchange at liquidation (reference: ``exchange_collateral``): cross account ``m``,
    left with collateral holdings only and a negative wallet, sells the same share of each at
    market; the last sale settles what is still owed."""
    cdef Py_ssize_t j, s, last = -1
    cdef float64_t value = 0.0, share, q
    for j in range(_n_held(e, m)):
        s = _slot(e, m, j)
        if e.pos[s] != 0.0:
            if not _inst(e, s).collateral:
                return 0
            value += e.pos[s] * _mark_of(e, s)
            last = s
    if not value > 0.0:
        return 0
    share = -e.col[m] / value
    for j in range(_n_held(e, m)):
        s = _slot(e, m, j)
        q = e.pos[s]
        if q != 0.0:
            _book_close(e, s, q if share >= 1.0 else q * share, EV_COLLATERAL_EXCHANGE, 0.0, s == last)
    return 0


cdef int _liquidate(Engine* e, Py_ssize_t m) except -1 nogil:
    """Liquidate crossing margin account ``m``: its position, or for a cross account with
    several one of them (:c:func:`_choose`), routed with the account's equity and maintenance
    margin."""
    cdef Py_ssize_t a = m
    cdef Inst* x
    cdef float64_t q, equity, notional, mm, size
    cdef bint full, partial
    cdef int kind
    if e.xstart != NULL and _multi(e, m):
        equity = _account_figures(e, m, &mm)
        a = _choose(e, m)
        x = _inst(e, a)
        q = e.pos[a]
        notional = fabs(q) * x.mark.mark
    else:
        x = _inst(e, a)
        q = e.pos[a]
        equity = _equity(e, a)
        notional = fabs(q) * x.mark.mark
        mm = maintenance_margin(&x.tiers, notional)
    if x.collateral:  # only holdings left: sold at market, what they miss is a deficit
        _book_close(e, a, q, EV_COLLATERAL_EXCHANGE, 0.0, True)
    elif equity < 0.0 and e.p.adl_on_negative_equity and _closes(e):
        _adl_close(e, a, q, True)
    elif e.p.backstop_ratio > 0.0 and equity < e.p.backstop_ratio * mm and _vault_takes(e, m):
        _backstop(e, m, a, equity)
    elif _closes(e) and _fund_drawdown_active(e, x):
        _adl_close(e, a, q, True)
    else:
        size = _order_size(e, a, q, equity, notional, &full)
        partial = not full
        if fabs(size) * x.mark.mark > x.liq_max_order_notional:
            # the venue's largest market order; the rest waits for the next tick
            size = _sign(size) * x.liq_max_order_notional / x.mark.mark
            full = False
        kind = EV_LIQUIDATION if full else EV_PARTIAL_LIQUIDATION
        _market_liquidation(e, a, size, kind, full)
        if partial:
            _cool_until(e, _user(e, m), e.t + e.p.partial_cooldown_ns)
        if not full:
            e.partial_tick[m] = e.i + 1  # (_partial_now)
    if e.col[m] < 0.0 and not x.collateral and e.xstart != NULL and _multi(e, m):
        _exchange_collateral(e, m)
    if _holds_position(e, m):
        e.status[m] = ST_ACTIVE
        if _partial_now(e, m):
            e.deferred[e.n_deferred] = m
            e.n_deferred += 1
        else:
            _rekey(e, m)
    else:
        e.status[m] = ST_CLOSED
        e.version[m] += 1
    return 0


cdef int _cmp_id(const void* x, const void* y) noexcept nogil:
    cdef i64 a = (<const i64*>x)[0]
    cdef i64 b = (<const i64*>y)[0]
    return (a > b) - (a < b)


cdef void _sort_ids(Engine* e, i64* ids, Py_ssize_t k) noexcept nogil:
    """Sort k slot ids ascending: insertion sort when few, ``qsort`` up to ``RADIX_FROM`` (a
    radix pass clears and sums 65,536 counters: more than sorting a few thousand ids), else an
    LSD radix sort on 16-bit digits (ids are below ``n_slots``), using ``hold_ids`` as the
    scratch buffer."""
    cdef Py_ssize_t i, j, c, total
    cdef i64 x
    cdef i64* src = ids
    cdef i64* dst = e.hold_ids
    cdef i64* t
    cdef int shift, passes = 0
    if k < 64:
        for i in range(1, k):
            x = ids[i]
            j = i - 1
            while j >= 0 and ids[j] > x:
                ids[j + 1] = ids[j]
                j -= 1
            ids[j + 1] = x
        return
    if k < RADIX_FROM:
        qsort(ids, k, sizeof(i64), _cmp_id)
        return
    while (<i64>1 << (16 * passes)) < e.n_slots:
        passes += 1
    for shift in range(0, 16 * passes, 16):
        for c in range(65536):
            e.radix_count[c] = 0
        for i in range(k):
            e.radix_count[(src[i] >> shift) & 0xFFFF] += 1
        total = 0
        for c in range(65536):
            total += e.radix_count[c]
            e.radix_count[c] = total - e.radix_count[c]
        for i in range(k):
            c = (src[i] >> shift) & 0xFFFF
            dst[e.radix_count[c]] = src[i]
            e.radix_count[c] += 1
        t = src
        src = dst
        dst = t
    if src != ids:
        for i in range(k):
            ids[i] = src[i]


cdef Py_ssize_t _collect_side(Engine* e, const Inst* x, SideIndex* side, float64_t bound,
                              Py_ssize_t ncross) except -1 nogil:
    """Pop every entry of ``x``'s index keyed at or past ``bound``; keep the accounts that
    really cross at ``x``'s mark."""
    cdef float64_t key, top
    cdef i64 a, ver, m
    cdef Py_ssize_t nhold = 0, j
    while side_top(side, &top) and top >= bound:
        side_pop(side, &key, &a, &ver)
        m = a if a < e.n else e.xacc[a - e.n]
        if ver != e.version[m] or e.status[m] != ST_ACTIVE:
            continue
        if e.xstart != NULL and (a >= e.n or _multi(e, m)):
            _recheck(e, m)  # a position's share of its account's slack used up: check it exactly
            e.cross_fired += 1
            continue
        if not _partial_now(e, a) and crosses(&x.tiers, e.col[a], e.pos[a], e.ep[a],
                                                x.mark.mark):
            e.work_ids[ncross] = a
            ncross += 1
        else:
            e.hold_keys[nhold] = key
            e.hold_ids[nhold] = a
            e.hold_vers[nhold] = ver
            nhold += 1
    for j in range(nhold):
        side_push(side, e.hold_keys[j], e.hold_ids[j], e.hold_vers[j])
    return ncross


cdef inline Py_ssize_t _collect(Engine* e, Inst* x, Py_ssize_t ncross) except -1 nogil:
    """Both sides of ``x``'s index; a side with nothing at or past the mark (most ticks) costs
    one compare here, not a call."""
    cdef float64_t top
    if side_top(&x.index.longs, &top) and top >= x.mark.mark:
        ncross = _collect_side(e, x, &x.index.longs, x.mark.mark, ncross)
    if side_top(&x.index.shorts, &top) and top >= -x.mark.mark:
        ncross = _collect_side(e, x, &x.index.shorts, -x.mark.mark, ncross)
    return ncross


cdef inline void _make_hot(Engine* e, Py_ssize_t m) noexcept nogil:
    if not e.hot[m]:
        e.hot[m] = 1
        e.hot_ids[e.n_hot] = m
        e.n_hot += 1


cdef int _split(Engine* e, Py_ssize_t m, float64_t equity, float64_t mm, bint was_hot) except -1 nogil:
    """Key cross account ``m`` (several positions, not crossing: ``equity >= mm``) in its
    instruments' indexes: its slack ``E - MM``, less ``SLACK_SPLIT_MARGIN`` x (wallet + gross
    exposure at entry and mark) held back against rounding, is split over its open positions in
    proportion to their notional ``|q_i| M_i``; position ``i``'s trigger is the price where
    ``f_i(p) = q_i (p - e_i) - MM_i(|q_i| p)`` has fallen by its share from ``f_i(M_i)`` (the
    one-position root solver on the collateral ``share_i - f_i(M_i)``), padded outward
    (``trigger_key``). While every mark is on the safe side of its trigger, ``E - MM = c + sum_i
    f_i(p_i)`` is at least the margin held back: the account cannot cross. An account whose
    slack is below ``HOT_SLACK`` of its notional (twice that to leave the hot list: its triggers
    would pass at almost every tick), or with a trigger at or past its mark already, goes on
    the hot list instead (checked exactly at every scan)."""
    cdef Py_ssize_t j, s, held = _n_held(e, m)
    cdef float64_t scale = fabs(e.col[m]), weight = 0.0, slack, q, mark, share, lp, key
    cdef Inst* x
    e.version[m] += 1  # its entries from before are stale
    e.keyed[m] = 0
    for j in range(held):
        s = _slot(e, m, j)
        q = e.pos[s]
        if q != 0.0:
            mark = _inst(e, s).mark.mark
            scale += fabs(q) * (mark + e.ep[s])
            weight += fabs(q) * mark
    slack = (equity - mm) - SLACK_SPLIT_MARGIN * scale
    e.cross_splits += 1
    if not (slack > 0.0 and weight > 0.0 and slack >= (2.0 if was_hot else 1.0) * HOT_SLACK * weight):
        e.cross_hot += 1
        _make_hot(e, m)
        return 0
    for j in range(held):
        s = _slot(e, m, j)
        q = e.pos[s]
        e.trig[s] = -INFINITY  # no entry
        if q == 0.0:
            continue
        x = _inst(e, s)
        mark = x.mark.mark
        share = slack * (fabs(q) * mark / weight)
        lp = liquidation_price(&x.tiers, share - q * (mark - e.ep[s])
                               + maintenance_margin(&x.tiers, fabs(q) * mark), q, e.ep[s], 1.0)
        if q > 0.0 and not lp > 0.0:
            continue  # no positive price uses up its share
        key = trigger_key(lp, q, e.ep[s])
        if not key < (mark if q > 0.0 else -mark):  # would fire at once: check it exactly instead
            e.cross_hot += 1
            _make_hot(e, m)
            return 0
        e.trig[s] = key
    e.keyed[m] = 1
    e.hot[m] = 0  # (left in the hot list until the list is next compacted)
    for j in range(held):
        s = _slot(e, m, j)
        if e.trig[s] != -INFINITY:
            x = _inst(e, s)
            side_push(&x.index.longs if e.pos[s] > 0.0 else &x.index.shorts, e.trig[s], s,
                      e.version[m])
    for j in range(held):
        x = _inst(e, _slot(e, m, j))
        if x.index.longs.heap.size + x.index.shorts.heap.size > 2 * x.n_members + INDEX_SLACK:
            _build_index(e, x)
    return 0


cdef Py_ssize_t _check_account(Engine* e, Py_ssize_t m, Py_ssize_t ncross,
                               bint was_hot) except -1 nogil:
    """The exact check of cross account ``m`` with several positions (once per scan): ACTIVE,
    not partially liquidated at this tick (it is re-keyed when its tick or liquidation is
    done), every instrument it holds ticked (it is checked again at its last instrument's first
    tick), ``E < MM``; an account that does not cross is split and keyed again
    (:c:func:`_split`)."""
    cdef float64_t equity, mm
    if e.seen[m] == e.scan_no:
        return ncross
    e.seen[m] = e.scan_no
    if e.status[m] != ST_ACTIVE or _partial_now(e, m) or not _all_ticked(e, m):
        return ncross
    e.cross_checks += 1
    equity = _account_figures(e, m, &mm)
    if equity < mm:
        e.work_ids[ncross] = m
        return ncross + 1
    _split(e, m, equity, mm, was_hot)
    return ncross


cdef Py_ssize_t _scan_cross(Engine* e, Py_ssize_t ncross) except -1 nogil:
    """The cross accounts with several positions a scan checks exactly: those on the hot list
    (compacted here) that hold an instrument this scan looked at (``Inst.scanned``: its mark
    moved, or its index took entries), and those whose trigger passed or whose state changed
    since the last scan (``recheck``)."""
    cdef Py_ssize_t j, k, count = e.n_hot
    cdef i64 a
    cdef bint looked
    e.scan_no += 1
    e.n_hot = 0
    for j in range(count):  # an account still hot after its check is appended again
        a = e.hot_ids[j]
        if not e.hot[a]:
            continue  # split since it was listed
        looked = False
        for k in range(_n_held(e, a)):
            if _inst(e, _slot(e, a, k)).scanned == e.scan_no:
                looked = True
                break
        if not looked:  # none of its marks moved: it stays as it was
            e.hot_ids[e.n_hot] = a
            e.n_hot += 1
            continue
        e.hot[a] = 0
        ncross = _check_account(e, a, ncross, True)
    for j in range(e.n_recheck):
        if j + PREFETCH_AHEAD < e.n_recheck:  # (thousands at a time in a crash, or at the start)
            _prefetch_account(e, e.recheck[j + PREFETCH_AHEAD])
        if j + PREFETCH_AHEAD // 2 < e.n_recheck:
            _prefetch_positions(e, e.recheck[j + PREFETCH_AHEAD // 2])
        a = e.recheck[j]
        e.in_recheck[a] = 0
        ncross = _check_account(e, a, ncross, False)
    e.n_recheck = 0
    return ncross


cdef inline int _scan(Engine* e, Inst* x) except -1 nogil:
    """Trigger: crossing ACTIVE accounts become PENDING, queued in account-id order. The
    candidates are in the index of the ticking instrument ``x`` (its mark moved) and in those
    of the instruments whose index took entries since they were last scanned (their marks
    did not move; an account re-keyed there may cross); the cross accounts with several
    positions whose trigger passed there, those on the hot list that hold one of those
    instruments, and those that changed since the last scan are checked exactly
    (:c:func:`_scan_cross`)."""
    cdef Py_ssize_t ncross = 0, j
    cdef i64 a
    cdef Inst* y
    if e.lz_on:  # a burst of the round before (the vaults' orders at this round's start)
        _lazy_flush(e)
    if e.n_dirty:  # checked here: _scan runs every tick
        _rekey_dirty(e)
    x.scanned = e.scan_no + 1  # this scan's number (_scan_cross counts it)
    x.touched = False
    ncross = _collect(e, x, ncross)
    for j in range(e.n_touched):
        y = &e.insts[e.touched[j]]
        if y.touched:  # not x, scanned above
            y.touched = False
            if y.ticked:  # an instrument without a tick has no mark yet (nor re-keyed accounts)
                y.scanned = e.scan_no + 1
                ncross = _collect(e, y, ncross)
    e.n_touched = 0
    if e.xstart != NULL:
        ncross = e.scan_cross(e, ncross)
    if ncross > 1:
        _sort_ids(e, e.work_ids, ncross)
    for j in range(ncross):
        a = e.work_ids[j]
        e.status[a] = ST_PENDING
        e.pend_ids[e.pend_tail] = a
        e.pend_due[e.pend_tail] = e.t + e.p.latency_ns
        e.pend_tail = (e.pend_tail + 1) % e.pend_cap
    return 0


cdef inline bint _pending_empty(Engine* e) noexcept nogil:
    return e.pend_head == e.pend_tail


cdef int _record(Engine* e) except -1 nogil:
    """A series sample: one row per instrument, in instrument order: its prices, mark and open
    interest (as of its latest tick or order; NaN prices before its first tick), the cash of its
    fund and the equity of its vault, and the shared counters."""
    cdef float64_t vault = 0.0, tape, sim, mark
    cdef Py_ssize_t k, vault_of = -1
    cdef Inst* x
    for k in range(e.n_inst):
        x = &e.insts[k]
        if x.VC != vault_of:  # once with one vault
            vault_of = x.VC
            vault = _ledger_equity(e, vault_of)
        if x.ticked:
            tape, sim, mark = x.tape, _sim(x), x.mark.mark
        else:  # no price yet
            tape = sim = mark = NAN
        series_push(&e.series, e.t, <i32>k, tape, sim, mark, _fund(e, x), vault, x.long_oi,
                    x.short_oi, e.cum_liq, e.cum_liq_notional, e.cum_adl, e.cum_adl_notional)
    return 0


cdef int _unwind(Engine* e, Py_ssize_t h, float64_t fraction, int kind) except -1 nogil:
    cdef Inst* x = _inst(e, h)
    cdef float64_t q = e.pos[h]
    cdef float64_t size = q * fraction
    _bring(e, x)
    if fabs(q - size) * _sim(x) < DUST_NOTIONAL:
        size = q
    _book_close(e, h, size, kind, 0.0, True)
    return 0


cdef int _inventories(Engine* e) except -1 nogil:
    """Step 4: each vault's unwinding in each of its instruments (its loss checked after each),
    then each fund's offloading; ledgers in ledger order, instruments in instrument order."""
    cdef Py_ssize_t k, j, h
    cdef Inst* lead
    for k in range(e.n_inst if e.held[0] != 0 else 0):
        lead = &e.insts[k]
        if lead.VC != lead.V or lead.ledger_held[0] == 0 or e.t < lead.next_unwind[0]:
            continue
        for j in range(e.n_inst):
            h = e.insts[j].V
            if e.insts[j].VC == lead.V and e.pos[h] != 0.0:
                _unwind(e, h, e.p.vault_unwind_fraction, EV_VAULT_UNWIND)
                _vault_check(e, lead.V)
        lead.next_unwind[0] = e.t + e.p.vault_unwind_interval_ns
    for k in range(e.n_inst if e.held[1] != 0 else 0):
        lead = &e.insts[k]
        if lead.FC != lead.F or lead.ledger_held[1] == 0 or e.t < lead.next_unwind[1]:
            continue
        for j in range(e.n_inst):
            h = e.insts[j].F
            if e.insts[j].FC == lead.F and e.pos[h] != 0.0:
                _unwind(e, h, e.p.fund_unwind_fraction, EV_FUND_UNWIND)
                _note_fund(e)
        lead.next_unwind[1] = e.t + e.p.fund_unwind_interval_ns
    return 0


cdef float64_t _dd_below(float64_t peak, float64_t dd) noexcept nogil:
    """A price ``p`` at which ``1 - p / peak > dd`` is false (an estimate, stepped up until
    it is): at or above it no price deepens the drawdown ``dd`` from ``peak``, since the rounded
    ``1 - p / peak`` never increases with ``p`` (``peak > 0``; ``p = peak`` always qualifies)."""
    cdef float64_t p = peak * (1.0 - dd)
    if not p < peak:
        return peak
    while 1.0 - p / peak > dd:
        p = nextafter(p, INFINITY)
    return p


cdef inline void _fall(float64_t p, float64_t* peak, float64_t* dd, float64_t* below,
                       float64_t* low) noexcept nogil:
    """One price ``p`` of a series (the tape's or the simulated one) after a tick: its ``peak``,
    largest drawdown ``dd`` from a peak and minimum ``low``. The drawdown is divided out only
    below its bound ``below`` (:c:func:`_dd_below`): a price at or above it leaves it as it is
    (most ticks), and one that deepens it is its new bound, so the figures are those of dividing
    at every tick, to the bit."""
    if p > peak[0]:
        peak[0] = p
        below[0] = _dd_below(p, dd[0])
    if p < below[0] and 1.0 - p / peak[0] > dd[0]:
        dd[0] = 1.0 - p / peak[0]
        below[0] = p
    if p < low[0]:
        low[0] = p


cdef inline void _drawdowns(Inst* x) noexcept nogil:
    _fall(x.tape, &x.tape_peak, &x.tape_dd, &x.tape_dd_below, &x.tape_min)
    _fall(_sim(x), &x.sim_peak, &x.sim_dd, &x.sim_dd_below, &x.sim_min)


cdef bint _refresh_marks(Engine* e, Inst* x) noexcept nogil:
    """Every cascade round: the mark of each instrument whose book moved since its mark was
    computed follows its simulated price again (the reference refreshes every instrument that
    has ticked; a refresh where the price has not moved gives the same mark to the bit). An
    instrument other than the ticking ``x`` whose mark moved is scanned in this round and takes
    its new mark as its previous mark at the end of the tick. Returns whether a mark moved
    where the vault holds inventory."""
    cdef Py_ssize_t j
    cdef float64_t before
    cdef bint vault = False
    cdef Inst* y
    for j in range(e.n_moved):
        y = &e.insts[e.moved[j]]
        y.moved = False
        if not y.ticked:
            continue
        before = y.mark.mark
        mark_refresh(&y.mark, _sim(y))
        if y.mark.mark == before:
            continue
        vault = vault or e.pos[y.V] != 0.0
        if y != x:
            _touch(e, y)
            if not y.remarked:
                y.remarked = True
                e.remarked[e.n_remarked] = y.id
                e.n_remarked += 1
    e.n_moved = 0
    return vault


cdef int _pay_funding(Engine* e, Inst* x, float64_t rate) except -1 nogil:
    """Funding (reference: ``pay_funding``): every open position in ``x`` pays ``q M r`` at
    ``x``'s mark (``funding_price``: or its index) from its cash (its margin account's wallet or margin, or its ledger's cash), in
    position order, the vault's then the fund's inventory last; the rest of the market takes the
    other side of the net. Each account that paid is re-keyed (:c:func:`_rekey`: a cross account
    with several positions is checked at the next scan); one that received keeps its entries,
    whose triggers were set with less collateral: they still fire before it can cross (and an
    exact check then finds it safe)."""
    cdef Py_ssize_t j, s, h
    cdef float64_t mark = x.mark.mark, q, pay, net = 0.0, gross = 0.0, size = 0.0
    cdef bint fund_paid = False
    if not x.ticked:
        return 0
    if e.p.funding_price == FUNDING_AT_INDEX and x.index_px == x.index_px:  # (not NaN)
        mark = x.index_px
    for j in range(x.n_members + 2):
        s = _member(x, j) if j < x.n_members else (x.V if j == x.n_members else x.F)
        q = e.pos[s]
        if q == 0.0:
            continue
        pay = q * mark * rate
        h = _cash(e, s)
        e.col[h] -= pay
        if pay > 0.0 and j < x.n_members:
            _rekey(e, s)
        net += pay
        gross += fabs(pay)
        size += q
        if s == x.V:
            e.funding_vault = True  # checked at this tick's first round, as every round checks it
        elif s == x.F:
            fund_paid = True
    x.ext_cash += net
    x.funding_paid += 0.5 * (gross + fabs(net))
    if fund_paid:
        _note_fund(e)
    events_push(&e.log, e.t, e.i, e.round, <i8>EV_FUNDING, MARKET_ID, x.id, BOOK_ID, size, mark,
                0.0, net, 0.0, _fund(e, x))
    return 0


cdef Py_ssize_t _quiet_ticks(Engine* e, Inst* x, Py_ssize_t i, i64 stop_ns) noexcept nogil:
    """Replay ticks ``i ..`` of a calm one-instrument run (:c:func:`_calm`) at which nothing
    happens: a tick before ``stop_ns`` (the next series sample, funding payment, depth snapshot
    or pending account due) whose mark (the last price: the book has no impact to decay)
    reaches neither side's top key. Such a tick's scan finds no candidate and no round follows:
    what it leaves is the tick's prices and marks, the drawdowns and the scan's number, set here
    as :c:func:`_loop` sets them, with the state in locals (no struct reads per tick). Returns
    the first tick not replayed (at ``n_ticks``, or one :c:func:`_loop` replays in full)."""
    cdef const i64* ts = e.ts
    cdef const float64_t* px = e.px
    cdef Py_ssize_t j = i, n = e.n_ticks
    cdef i64 t = 0
    cdef float64_t m = x.book.m, tape = 0.0, s = 0.0, long_top, short_top
    cdef float64_t tape_peak = x.tape_peak, tape_dd = x.tape_dd, tape_below = x.tape_dd_below
    cdef float64_t tape_min = x.tape_min, sim_peak = x.sim_peak, sim_dd = x.sim_dd
    cdef float64_t sim_below = x.sim_dd_below, sim_min = x.sim_min
    if not side_top(&x.index.longs, &long_top):
        long_top = -INFINITY
    if not side_top(&x.index.shorts, &short_top):
        short_top = -INFINITY
    while j < n:
        t = ts[j]
        if t >= stop_ns:
            break
        tape = px[j]
        s = tape * m  # the mark (_sim)
        if long_top >= s or short_top >= -s:
            break  # a candidate: the tick is replayed in full
        _fall(tape, &tape_peak, &tape_dd, &tape_below, &tape_min)
        _fall(s, &sim_peak, &sim_dd, &sim_below, &sim_min)
        j += 1
    if j == i:
        return i
    t = ts[j - 1]
    tape = px[j - 1]
    x.tape = tape
    x.book_ts = t
    x.mark_ts = t
    x.mark.mark = tape * m
    x.prev_mark = x.mark.mark
    x.scanned = e.scan_no + 1
    x.touched = False
    x.tape_peak, x.tape_dd, x.tape_dd_below, x.tape_min = tape_peak, tape_dd, tape_below, tape_min
    x.sim_peak, x.sim_dd, x.sim_dd_below, x.sim_min = sim_peak, sim_dd, sim_below, sim_min
    e.i = j - 1
    e.t = t
    e.round = 1
    return j


cdef inline bint _calm(Engine* e, Inst* x) noexcept nogil:
    """Whether a tick of ``x`` where no mark reaches an index's top would find nothing to do
    (:c:func:`_quiet_ticks`): ``x`` has ticked, its book has no impact or flow to decay, no order
    moved a book, no ledger holds inventory, no winner or instrument waits to be re-keyed or
    scanned, no vault check is due for funding (one instrument: no cross account holds several
    positions)."""
    return (x.ticked and x.book.m == 1.0 and x.book.flow == 0.0 and e.n_moved == 0
            and e.held[0] == 0 and e.held[1] == 0 and e.n_dirty == 0 and e.n_touched == 0
            and not e.funding_vault)


cdef int _loop(Engine* e, i64* max_rounds) except -1 nogil:
    cdef Py_ssize_t i, j, a
    cdef i64 t, next_sample, cap = e.p.max_liqs_per_step
    cdef i64 executed, done
    cdef float64_t stream_value
    cdef bint recorded_last = False, vault_remarked
    cdef bint has_stream = e.stream != NULL
    cdef bint track_peak = e.p.adl_fund_drawdown != INFINITY
    # the index a funding payment may value positions at, kept only for such payments
    cdef bint track_index = has_stream and e.n_funding > 0 and e.p.funding_price == FUNDING_AT_INDEX
    cdef i64 funding_due = e.funding_ts[0] if e.n_funding else INT64_MAX  # the next payment's time
    cdef Inst* x = &e.insts[0]
    cdef Inst* y
    # one instrument marked at its last price (the common case): runs of ticks where nothing
    # happens are replayed by _quiet_ticks
    cdef bint quiet = (e.n_inst == 1 and e.xstart == NULL and x.mark.method == MARK_LAST
                       and not track_peak and not track_index)
    cdef i64 stop_ns
    max_rounds[0] = 0
    if e.n_ticks == 0:
        return 0
    next_sample = e.ts[0]
    i = 0
    while i < e.n_ticks:
        if quiet and _calm(e, x):
            stop_ns = next_sample if next_sample < x.book.next_ts else x.book.next_ts
            if funding_due < stop_ns:
                stop_ns = funding_due + 1  # a payment due before the tick: replayed in full
            if not _pending_empty(e) and e.pend_due[e.pend_head] < stop_ns:
                stop_ns = e.pend_due[e.pend_head]
            j = _quiet_ticks(e, x, i, stop_ns)
            if j > i:
                if max_rounds[0] < 1:
                    max_rounds[0] = 1
                recorded_last = False
                i = j
                continue
        t = e.ts[i]
        if e.tick_inst != NULL:
            x = &e.insts[e.tick_inst[i]]
        e.i = i
        e.t = t
        e.round = 0
        while funding_due < t:  # due before this tick: at the marks of the ticks at or before its time
            _pay_funding(e, &e.insts[e.funding_inst[e.funding_next] if e.n_inst > 1 else 0],
                         e.funding_rate[e.funding_next])
            e.funding_next += 1
            funding_due = e.funding_ts[e.funding_next] if e.funding_next < e.n_funding else INT64_MAX
        x.tape = e.px[i]
        if not x.ticked:  # its first tick: no time has passed for its book and its EMAs
            x.book_ts = t
            x.mark_ts = t
        depth_seek(&x.book, t)
        impact_decay(&x.book, t - x.book_ts)
        x.book_ts = t
        if track_index:
            x.index_px = e.stream[i]
        if x.mark.method == MARK_LAST:
            x.mark.mark = _sim(x)  # the common case, without a call
        else:
            stream_value = e.stream[i] if has_stream else NAN
            mark_update(&x.mark, _sim(x), stream_value, t - x.mark_ts)
        x.mark_ts = t
        if not x.ticked:
            for j in range(x.n_last):  # they now have every instrument ticked
                _recheck(e, x.multi[j])
            x.prev_mark = x.mark.mark
            x.ticked = True
        if track_peak:
            _sample_fund_peaks(e)
        executed = 0
        while True:
            vault_remarked = _refresh_marks(e, x) if e.n_moved else False
            # the vault is checked after every other change of its equity, so at round 0 it can
            # only have moved with a mark where it holds inventory: the same as checking at every
            # round while it holds any (the reference), without a loop over the instruments
            # (with several vaults, every vault holding inventory is checked then, as the
            # reference does: one whose equity did not move is as its last check left it -- within
            # its threshold, without inventory, or without ADL to close it -- so its check notes
            # the same sum and closes nothing)
            if e.held[0] != 0 and (e.round > 0 or e.pos[x.V] != 0.0 or vault_remarked or e.funding_vault):
                _vault_checks(e)  # the inventory re-marked
            e.funding_vault = False
            _scan(e, x)
            done = 0
            while (not _pending_empty(e) and e.pend_due[e.pend_head] <= t
                   and (cap == 0 or executed < cap)):
                a = e.pend_ids[e.pend_head]
                e.pend_head = (e.pend_head + 1) % e.pend_cap
                y = _inst(e, a)
                if e.lz_on and y == e.lz_x and e.pos[a] * e.lz_side < 0.0:
                    _lazy_flush(e)  # a winner-side account changes: the burst's winners as they are
                if (_account_crosses(e, a) if e.xstart != NULL and _multi(e, a)
                        else crosses(&y.tiers, e.col[a], e.pos[a], e.ep[a], y.mark.mark)):
                    _liquidate(e, a)
                    done += 1
                    executed += 1
                else:
                    e.status[a] = ST_ACTIVE
                    _rekey(e, a)
            if e.lz_on:
                _lazy_flush(e)
            e.lz_skip = False
            if done == 0 or (cap != 0 and executed >= cap):
                break
            e.round += 1
        if e.round + 1 > max_rounds[0]:
            max_rounds[0] = e.round + 1
        e.round += 1
        for j in range(e.n_deferred):
            a = e.deferred[j]
            if e.status[a] == ST_ACTIVE:
                _rekey(e, a)
        e.n_deferred = 0
        if e.held[0] != 0 or e.held[1] != 0:
            _inventories(e)
        x.prev_mark = x.mark.mark
        for j in range(e.n_remarked):  # the other marks that moved at this tick
            y = &e.insts[e.remarked[j]]
            y.prev_mark = y.mark.mark
            y.remarked = False
        e.n_remarked = 0
        _drawdowns(x)
        recorded_last = False
        if t >= next_sample:
            _record(e)
            next_sample = t + e.p.series_interval_ns
            recorded_last = True
        i += 1
    if not recorded_last:
        _record(e)
    return 0


# --- setting the engine up: one function zeroes and fills the struct, one table lists its arrays ---

cdef enum:
    # how many entries a work array holds (WorkArray.count)
    PER_SLOT = 0           # one per slot: n + 2 I (the accounts, the vault's and the fund's inventories)
    PER_SLOT_IF_SEVERAL = 1  # as PER_SLOT with several instruments, none (NULL) with one
    PER_INSTRUMENT = 2     # one per instrument: I
    PER_RADIX_DIGIT = 3    # one per 16-bit digit value: the radix sort's counters
    PER_SLOT_IF_LAZY = 4   # as PER_SLOT when the ADL policy allows lazy bursts, else none (NULL)

cdef enum:
    MAX_WORK_ARRAYS = 64   # room in the table (_alloc refuses more rows)
    RADIX_DIGITS = 65536
    PEAK_START = 64        # a fund peak window's first capacity (_sample_fund_peak grows it)


cdef struct WorkArray:
    void** field           # address of the Engine's pointer field
    size_t item            # bytes per entry
    int count              # PER_SLOT, PER_SLOT_IF_SEVERAL, PER_INSTRUMENT, PER_RADIX_DIGIT
    bint zeroed            # calloc'ed: starts zero, its pages touched only where used


cdef inline Py_ssize_t _row(WorkArray* table, Py_ssize_t k, void** field, size_t item, int count,
                            bint zeroed) noexcept nogil:
    if k < MAX_WORK_ARRAYS:
        table[k].field = field
        table[k].item = item
        table[k].count = count
        table[k].zeroed = zeroed
    return k + 1


cdef Py_ssize_t _work_arrays(Engine* e, WorkArray* t) noexcept nogil:
    """The engine's work arrays, one row each: what :c:func:`_alloc` allocates and
    :c:func:`_free` frees (a new array is one row here). Returns the number of rows."""
    cdef Py_ssize_t k = 0
    k = _row(t, k, <void**>&e.insts, sizeof(Inst), PER_INSTRUMENT, True)
    k = _row(t, k, <void**>&e.touched, sizeof(i32), PER_INSTRUMENT, False)
    k = _row(t, k, <void**>&e.moved, sizeof(i32), PER_INSTRUMENT, False)
    k = _row(t, k, <void**>&e.remarked, sizeof(i32), PER_INSTRUMENT, False)
    k = _row(t, k, <void**>&e.slot_inst, sizeof(i32), PER_SLOT_IF_SEVERAL, False)
    k = _row(t, k, <void**>&e.member_ids, sizeof(i64), PER_SLOT_IF_SEVERAL, False)
    k = _row(t, k, <void**>&e.multi_ids, sizeof(i64), PER_SLOT_IF_SEVERAL, False)
    k = _row(t, k, <void**>&e.side_ids, sizeof(i64), PER_SLOT_IF_SEVERAL, False)
    k = _row(t, k, <void**>&e.recheck, sizeof(i64), PER_SLOT_IF_SEVERAL, False)
    k = _row(t, k, <void**>&e.in_recheck, sizeof(i8), PER_SLOT_IF_SEVERAL, True)
    k = _row(t, k, <void**>&e.seen, sizeof(i64), PER_SLOT_IF_SEVERAL, True)
    k = _row(t, k, <void**>&e.trig, sizeof(float64_t), PER_SLOT_IF_SEVERAL, False)
    k = _row(t, k, <void**>&e.keyed, sizeof(i8), PER_SLOT_IF_SEVERAL, True)
    k = _row(t, k, <void**>&e.hot, sizeof(i8), PER_SLOT_IF_SEVERAL, True)
    k = _row(t, k, <void**>&e.hot_ids, sizeof(i64), PER_SLOT_IF_SEVERAL, False)
    k = _row(t, k, <void**>&e.pend_ids, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.pend_due, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_ids, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_vals, sizeof(float64_t), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_caps, sizeof(float64_t), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_out, sizeof(float64_t), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_a, sizeof(float64_t), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_b, sizeof(float64_t), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_ratio, sizeof(RatioIndex), PER_SLOT, False)
    k = _row(t, k, <void**>&e.work_live, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.hold_keys, sizeof(float64_t), PER_SLOT, False)
    k = _row(t, k, <void**>&e.hold_ids, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.hold_vers, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.deferred, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.dirty, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.is_dirty, sizeof(i8), PER_SLOT, True)
    k = _row(t, k, <void**>&e.partial_tick, sizeof(i64), PER_SLOT, True)  # zero: none (_partial_now)
    k = _row(t, k, <void**>&e.cooldown_until, sizeof(i64), PER_SLOT, True)  # zero: none (_cooling)
    k = _row(t, k, <void**>&e.version, sizeof(i64), PER_SLOT, True)
    k = _row(t, k, <void**>&e.fill_row, sizeof(i64), PER_SLOT, False)
    k = _row(t, k, <void**>&e.fill_bucket, sizeof(i64), PER_SLOT, True)  # touched for winners only
    k = _row(t, k, <void**>&e.lz_ids, sizeof(i64), PER_SLOT_IF_LAZY, False)
    k = _row(t, k, <void**>&e.lz_unit, sizeof(float64_t), PER_SLOT_IF_LAZY, False)
    k = _row(t, k, <void**>&e.radix_count, sizeof(Py_ssize_t), PER_RADIX_DIGIT, False)
    return k


cdef void _free(Engine* e) noexcept nogil:
    """Free everything the engine allocated; safe on a zeroed engine and after a failed
    :c:func:`_alloc` (unallocated pointers are NULL; the instruments are calloc'ed)."""
    cdef WorkArray table[MAX_WORK_ARRAYS]
    cdef Py_ssize_t rows = _work_arrays(e, table), k
    cdef Inst* x
    if e.insts != NULL:
        for k in range(e.n_inst):
            x = &e.insts[k]
            index_free(&x.index)
            heap_free(&x.adl_rank[0])
            heap_free(&x.adl_rank[1])
            free(x.peak_ts)
            free(x.peak_val)
    for k in range(rows if rows < MAX_WORK_ARRAYS else MAX_WORK_ARRAYS):
        free(table[k].field[0])
        table[k].field[0] = NULL
    log_free(&e.log)
    log_free(&e.series)


cdef int _alloc(Engine* e) except -1 nogil:
    """Allocate every work array of :c:func:`_work_arrays` for ``e.n_slots`` slots and
    ``e.n_inst`` instruments."""
    cdef WorkArray table[MAX_WORK_ARRAYS]
    cdef Py_ssize_t rows = _work_arrays(e, table), k, count
    if rows > MAX_WORK_ARRAYS:
        with gil:
            raise RuntimeError(f"engine: {rows} work arrays but room for {MAX_WORK_ARRAYS} "
                               "(raise MAX_WORK_ARRAYS)")
    e.pend_cap = e.n_slots
    for k in range(rows):
        if table[k].count == PER_SLOT:
            count = e.n_slots
        elif table[k].count == PER_SLOT_IF_SEVERAL:
            count = e.n_slots if e.n_inst > 1 else 0
            if count == 0:
                continue
        elif table[k].count == PER_SLOT_IF_LAZY:
            count = e.n_slots if e.lazy_adl else 0
            if count == 0:
                continue
        elif table[k].count == PER_INSTRUMENT:
            count = e.n_inst
        else:
            count = RADIX_DIGITS
        if table[k].zeroed:
            table[k].field[0] = calloc(count, table[k].item)
        else:
            table[k].field[0] = malloc(count * table[k].item)
        if table[k].field[0] == NULL:
            with gil:
                raise MemoryError("engine: out of memory for account work arrays")
    return 0


cdef int _fill_params(Params* p, params) except -1:
    """Fill ``p`` from ``params`` (:class:`riskengine.params.EngineParams`), every field under
    its own name (``tests/test_engine_struct.py`` checks that none is missed)."""
    p.liq_fee_rate = params.liq_fee_rate
    p.liq_limit_bankruptcy = params.liq_limit_bankruptcy
    p.liq_surplus_to_fund = params.liq_surplus_to_fund
    p.partial_mode = params.partial_mode
    p.partial_fraction = params.partial_fraction
    p.partial_threshold = params.partial_threshold
    p.partial_cooldown_ns = params.partial_cooldown_ns
    p.max_liqs_per_step = params.max_liqs_per_step
    p.latency_ns = params.latency_ns
    p.cross_order = params.cross_order
    p.funding_price = params.funding_price
    p.takeover = params.takeover
    p.fund_initial = params.fund_initial
    p.fund_capacity = params.fund_capacity
    p.fund_unwind_interval_ns = params.fund_unwind_interval_ns
    p.fund_unwind_fraction = params.fund_unwind_fraction
    p.adl_fund_drawdown = params.adl_fund_drawdown
    p.adl_fund_window_ns = params.adl_fund_window_ns
    p.backstop_ratio = params.backstop_ratio
    p.vault_initial = params.vault_initial
    p.vault_unwind_interval_ns = params.vault_unwind_interval_ns
    p.vault_unwind_fraction = params.vault_unwind_fraction
    p.vault_loss_limit = params.vault_loss_limit
    p.adl_price = params.adl_price
    p.adl_on_negative_equity = params.adl_on_negative_equity
    p.series_interval_ns = params.series_interval_ns
    p.adl_rank_interval_ns = params.adl_rank_interval_ns
    return 0


cdef object _inst_init(Engine* e, Inst* x, Py_ssize_t k, params):
    """Set instrument ``k`` up from its ``params``: margin tiers, ADL settings on those tiers,
    mark settings, book, price band and order cap, its inventory slots, its index and ranking
    heaps; its drawdown minima start at infinity (the rest of ``x`` is zero).

    Returns
    -------
    tuple
        The arrays ``x`` borrows; keep them until ``_free``.
    """
    floors = np.ascontiguousarray(params.mm_floors, dtype=np.float64)
    rates = np.ascontiguousarray(params.mm_rates, dtype=np.float64)
    cums = np.ascontiguousarray(params.mm_cums, dtype=np.float64)
    book_ts = np.ascontiguousarray(params.book_ts, dtype=np.int64)
    book_delta = np.ascontiguousarray(params.book_delta, dtype=np.float64)
    book_notional = np.ascontiguousarray(params.book_notional, dtype=np.float64)
    cdef const float64_t[::1] f_view = floors
    cdef const float64_t[::1] r_view = rates
    cdef const float64_t[::1] c_view = cums
    cdef const i64[::1] bt_v = book_ts
    cdef const float64_t[::1] bd_v = book_delta
    cdef const float64_t[::1] bn_v = book_notional
    x.id = <i32>k
    x.V = e.n_pos + 2 * k
    x.F = e.n_pos + 2 * k + 1
    x.tiers.floors = &f_view[0]
    x.tiers.rates = &r_view[0]
    x.tiers.cums = &c_view[0]
    x.tiers.n = f_view.shape[0]
    x.tiers.whole = params.mm_whole_position
    x.adl.policy = params.adl_policy
    x.adl.ranking = params.adl_ranking
    x.adl.short_mark_over_entry = params.adl_short_mark_over_entry
    x.adl.risk_power = params.adl_risk_power
    x.adl.tiers = &x.tiers
    x.collateral = params.collateral
    x.mark.method = MARK_LAST if params.collateral else params.mark_method  # a holding is worth its price
    x.mark.basis.tau_ns = params.mark_ema_tau_ns
    x.mark.last.tau_ns = params.mark_ema2_tau_ns
    x.mark.index = NAN
    depth_init(&x.book, &bt_v[0], &bd_v[0], &bn_v[0], bt_v.shape[0], params.book_knots,
               params.max_move, params.impact_half_life_ns, params.impact_feedback,
               params.impact_stress_k)
    x.liq_price_band = params.liq_price_band
    x.liq_max_order_notional = params.liq_max_order_notional
    x.fund_group = params.fund_group
    x.vault_group = params.vault_group
    x.tape_min = INFINITY
    x.index_px = NAN  # no stream value before its first tick
    x.sim_min = INFINITY
    index_init(&x.index, 16)
    heap_init(&x.adl_rank[0], 16)
    heap_init(&x.adl_rank[1], 16)
    return (floors, rates, cums, book_ts, book_delta, book_notional)


cdef object _counterfactual(Engine* e, list plist, tape_ts, tick_inst, tape_price):
    """The merged tape's prices with each instrument's observed flow taken out of its own
    ticks (``riskengine._liquidity.counterfactual_tape`` on a fresh copy of its book), or None
    when no instrument has observed flow."""
    cdef DepthBook obs_book
    cdef const i64[::1] ts_v
    cdef const float64_t[::1] px_v
    cdef const i64[::1] ot_v
    cdef const float64_t[::1] os_v
    cdef const float64_t[::1] on_v
    cdef float64_t[::1] out_v
    cdef Py_ssize_t k, count
    cf_tape = None
    for k in range(e.n_inst):
        params = plist[k]
        ot_v = np.ascontiguousarray(params.observed_ts, dtype=np.int64)
        if ot_v.shape[0] == 0 or len(tape_ts) == 0:
            continue
        os_v = np.ascontiguousarray(params.observed_side, dtype=np.float64)
        on_v = np.ascontiguousarray(params.observed_notional, dtype=np.float64)
        ticks = None if len(tick_inst) == 0 else np.flatnonzero(np.asarray(tick_inst) == k)
        if ticks is None:  # one instrument: the whole tape
            ts_v = tape_ts
            px_v = tape_price
        elif len(ticks) == 0:
            continue
        else:
            ts_v = np.ascontiguousarray(np.asarray(tape_ts)[ticks])
            px_v = np.ascontiguousarray(np.asarray(tape_price)[ticks])
        count = ts_v.shape[0]
        out = np.empty(count, dtype=np.float64)
        out_v = out
        obs_book = e.insts[k].book
        with nogil:
            counterfactual_tape(&obs_book, &ts_v[0], &px_v[0], count, &ot_v[0], &os_v[0],
                                &on_v[0], ot_v.shape[0], &out_v[0])
        if ticks is None:
            cf_tape = out
        else:
            if cf_tape is None:
                cf_tape = np.array(tape_price, dtype=np.float64)
            cf_tape[ticks] = out
    return cf_tape


cdef int _members(Engine* e, const i32* acc_inst, i64* cursor) except -1 nogil:
    """Each instrument's positions (slots) in margin-account order, one list after the other in
    ``member_ids``; an instrument that holds every account's only position gets no list
    (``members`` NULL: 0 .. n - 1). Each instrument's count of cross accounts with several
    positions (``n_multi``) and the list of those among them it is the last of theirs to tick
    (``multi``; ``cursor`` holds each instrument's first tick)."""
    cdef Py_ssize_t a, k, s, j, offset = 0, last
    cdef Inst* x
    for s in range(e.n_pos):
        e.insts[acc_inst[s]].n_members += 1
    for k in range(e.n_inst):
        x = &e.insts[k]
        cursor[k] = offset
        x.members = &e.member_ids[offset] if (x.n_members < e.n or e.n_pos > e.n) else NULL
        offset += x.n_members
    for a in range(e.n):
        for j in range(-1, (e.xstart[a + 1] - e.xstart[a]) if e.xstart != NULL else 0):
            s = a if j < 0 else e.n + e.xstart[a] + j
            k = acc_inst[s]
            if e.insts[k].members != NULL:
                e.member_ids[cursor[k]] = s
                cursor[k] += 1
    if e.xstart == NULL:
        return 0
    # the cross accounts with several positions of each instrument, and the instrument of theirs
    # to tick last (-1: one never ticks), where they go in a list, ascending
    cdef Py_ssize_t* first_tick = <Py_ssize_t*>malloc(e.n_inst * sizeof(Py_ssize_t))
    if first_tick == NULL:
        with gil:
            raise MemoryError("engine: out of memory for the instruments' first ticks")
    for k in range(e.n_inst):
        first_tick[k] = -1
    last = e.n_inst  # instruments yet to tick
    for j in range(e.n_ticks):
        if last == 0:
            break
        k = e.tick_inst[j]
        if first_tick[k] < 0:
            first_tick[k] = j
            last -= 1
    for a in range(e.n):
        if _multi(e, a):
            last = acc_inst[a] if first_tick[acc_inst[a]] >= 0 else -1
            for j in range(_n_held(e, a)):
                k = acc_inst[_slot(e, a, j)]
                e.insts[k].n_multi += 1
                if last >= 0 and (first_tick[k] < 0 or first_tick[k] > first_tick[last]):
                    last = k if first_tick[k] >= 0 else -1
            if last >= 0:
                e.insts[last].n_last += 1
            e.multi_ids[a] = last  # (scratch until the lists are laid out below)
    offset = 0
    for k in range(e.n_inst):
        x = &e.insts[k]
        first_tick[k] = offset
        offset += x.n_last
    for a in range(e.n):
        if _multi(e, a) and e.multi_ids[a] >= 0:
            k = e.multi_ids[a]
            e.multi_ids[e.n + first_tick[k]] = a
            first_tick[k] += 1
    for k in range(e.n_inst):
        e.insts[k].multi = &e.multi_ids[e.n + first_tick[k] - e.insts[k].n_last]
    free(first_tick)
    return 0


cdef int _sides(Engine* e) except -1 nogil:
    """Each instrument's members by side (``Inst.by_side``: ranks in ``members``, ascending),
    from the positions as they start, in one pass over the accounts (:c:func:`_members`'
    order): an instrument's longs fill its part of ``side_ids`` upward, its shorts downward
    (then turned around)."""
    cdef Py_ssize_t k, a, j, s, r, offset = 0
    cdef Py_ssize_t* rank = <Py_ssize_t*>malloc(3 * e.n_inst * sizeof(Py_ssize_t))
    cdef Py_ssize_t* nl
    cdef Py_ssize_t* ns
    cdef i64 t
    cdef Inst* x
    if rank == NULL:
        with gil:
            raise MemoryError("engine: out of memory for the members by side")
    nl = rank + e.n_inst
    ns = nl + e.n_inst
    for k in range(e.n_inst):
        rank[k] = 0
        nl[k] = offset
        offset += e.insts[k].n_members
        ns[k] = offset
    for a in range(e.n):
        for j in range(_n_held(e, a)):
            s = _slot(e, a, j)
            k = e.slot_inst[s]
            r = rank[k]
            rank[k] += 1
            if e.pos[s] > 0.0:
                e.side_ids[nl[k]] = r
                nl[k] += 1
            elif e.pos[s] < 0.0:
                ns[k] -= 1
                e.side_ids[ns[k]] = r
    offset = 0
    for k in range(e.n_inst):
        x = &e.insts[k]
        x.by_side[0] = &e.side_ids[offset]
        x.n_by_side[0] = nl[k] - offset
        offset += x.n_members
        x.by_side[1] = &e.side_ids[ns[k]]
        x.n_by_side[1] = offset - ns[k]
        a = ns[k]
        j = offset - 1
        while a < j:
            t = e.side_ids[a]
            e.side_ids[a] = e.side_ids[j]
            e.side_ids[j] = t
            a += 1
            j -= 1
    free(rank)
    return 0


cdef object _engine_init(Engine* e, list plist, const i64[::1] tape_ts, const i32[::1] tick_inst,
                         const float64_t[::1] tape_price, const float64_t[::1] stream,
                         const i64[::1] owner, const i32[::1] acc_inst,
                         const float64_t[::1] collateral, const float64_t[::1] size,
                         const float64_t[::1] entry, const i64[::1] xacc, const i64[::1] xstart,
                         const i64[::1] user, float64_t[::1] col, float64_t[::1] pos,
                         float64_t[::1] ep, i8[::1] status, float64_t[::1] socialized,
                         Py_ssize_t max_events):
    """Zero the whole engine, then set it up for a run: the design's parameters
    (:c:func:`_fill_params`, from ``plist[0]``; the list's entries agree on them), the work
    arrays (:c:func:`_alloc`), one :c:type:`Inst` per entry of ``plist``
    (:c:func:`_inst_init`), the merged tape (with observed flow, the counterfactual tape:
    :c:func:`_counterfactual`), each instrument's positions (:c:func:`_members`), the margin
    accounts and their positions (copied into ``col``, ``pos``, ``ep``, ``status``; ``n_pos + 2 I``
    slots: ``size``, ``entry`` and ``acc_inst`` give the ``n_pos`` position slots, ``xacc`` and
    ``xstart`` the extra positions' accounts (empty: none), ``user`` each account's user (empty:
    the account); the vault's and the fund's inventory slots last), the ledgers and the logs.

    Everything not set here starts at zero. :c:func:`_free` is safe from the first line on,
    whether or not this function finished.

    Returns
    -------
    list
        The arrays the struct borrows besides the arguments; keep them until ``_free``.
    """
    cdef Py_ssize_t n = collateral.shape[0], n_inst = len(plist), a, k, h, j, s, n_pos = size.shape[0]
    cdef Inst* x
    memset(e, 0, sizeof(Engine))
    e.n = n
    e.n_pos = n_pos
    e.n_inst = n_inst
    e.n_slots = n_pos + 2 * n_inst
    e.V = n_pos
    e.F = n_pos + 1
    _fill_params(&e.p, plist[0])
    # the policies whose weights move by one map per order run in bursts (notional: size x one mark)
    e.lazy_adl = plist[0].adl_policy in (ADL_PRO_RATA, ADL_LEVERED_PRO_RATA, ADL_PRO_RATA_EQUITY)
    with nogil:
        _alloc(e)
    owners = [_inst_init(e, &e.insts[k], k, plist[k]) for k in range(n_inst)]
    cf_tape = _counterfactual(e, plist, tape_ts, tick_inst, tape_price)
    if cf_tape is not None:
        tape_price = cf_tape
        owners.append(cf_tape)
    e.ts = &tape_ts[0] if tape_ts.shape[0] else NULL
    e.tick_inst = &tick_inst[0] if tick_inst.shape[0] else NULL
    e.px = &tape_price[0] if tape_price.shape[0] else NULL
    e.stream = &stream[0] if stream.shape[0] else NULL
    e.n_ticks = tape_ts.shape[0]
    e.col = &col[0]
    e.pos = &pos[0]
    e.ep = &ep[0]
    e.status = &status[0]
    e.socialized = &socialized[0]
    e.owner = &owner[0] if owner.shape[0] else NULL  # none: each account is its own owner
    e.xacc = &xacc[0] if xacc.shape[0] else NULL
    e.scan_cross = _scan_cross
    e.xstart = &xstart[0] if xacc.shape[0] else NULL
    e.user = &user[0] if user.shape[0] else NULL
    e.merge_fills = ADL_PRO_RATA <= e.insts[0].adl.policy <= ADL_WATER_FILLING
    cursor = np.empty(n_inst, dtype=np.int64)
    cdef i64[::1] cursor_v = cursor
    cdef size_t[::1] event_items = column_items(EVENT_COLUMNS)
    cdef size_t[::1] series_items = column_items(SERIES_COLUMNS)
    log_init(&e.log, &event_items[0], event_items.shape[0], 1024, max_events)
    log_init(&e.series, &series_items[0], series_items.shape[0], 1024, 0)
    with nogil:
        if n_inst == 1:  # every account is in instrument 0 (members NULL: all of them)
            e.insts[0].n_members = n
        else:
            _members(e, &acc_inst[0], &cursor_v[0])
        x = &e.insts[0]
        for a in range(n):
            e.col[a] = collateral[a]
            e.status[a] = ST_FLAT
            # the account's positions in position order: slot a, then its extra slots
            for j in range(-1, (e.xstart[a + 1] - e.xstart[a]) if e.xstart != NULL else 0):
                s = a if j < 0 else n + e.xstart[a] + j
                if n_inst > 1:
                    x = &e.insts[acc_inst[s]]
                    e.slot_inst[s] = acc_inst[s]
                e.pos[s] = size[s]
                e.ep[s] = entry[s]
                if size[s] != 0.0:
                    e.status[a] = ST_ACTIVE
                x.ext_pos -= size[s]
                x.ext_cash += size[s] * entry[s]
                if size[s] > 0:
                    x.long_oi += size[s]
                elif size[s] < 0:
                    x.short_oi -= size[s]
        for s in range(n, n_pos):
            e.col[s] = 0.0
            e.status[s] = ST_FLAT
        for h in range(n_pos, e.n_slots):
            if n_inst > 1:
                e.slot_inst[h] = <i32>((h - n_pos) // 2)
            e.col[h] = 0.0
            e.pos[h] = 0.0
            e.ep[h] = 0.0
            e.status[h] = ST_FLAT
        if e.xstart != NULL:
            _sides(e)
    _ledgers_init(e, plist)
    return owners


cdef int _ledgers_init(Engine* e, list plist) except -1:
    """Each instrument's vault and fund: the V and F slots of the first instrument with its
    ``vault_group`` and ``fund_group`` (the ledger's lead) hold their cash, each starting with
    the design's balance; the minima start at their sums."""
    cdef Py_ssize_t k
    cdef Inst* x
    vaults, funds = {}, {}
    for k in range(e.n_inst):
        x = &e.insts[k]
        x.VC = vaults.setdefault(plist[k].vault_group, x.V)
        x.FC = funds.setdefault(plist[k].fund_group, x.F)
        if x.VC == x.V:
            e.col[x.V] = e.p.vault_initial
        if x.FC == x.F:
            e.col[x.F] = e.p.fund_initial
    e.n_vaults = len(vaults)
    e.n_funds = len(funds)
    e.fund_min = _ledgers_total(e, True, True)
    e.vault_min = _ledgers_total(e, False, True)  # no inventory yet
    return 0


cdef object _copy(const float64_t* values, Py_ssize_t count):
    out = np.empty(count, dtype=np.float64)
    cdef float64_t[::1] v = out
    cdef Py_ssize_t k
    for k in range(count):
        v[k] = values[k]
    return out


def params_struct(params):
    """The engine's settings as :c:func:`_engine_init` fills them from ``params`` (one
    instrument).

    For ``tests/test_engine_struct.py``, which checks them against
    :class:`riskengine.params.EngineParams` field by field.

    Parameters
    ----------
    params : riskengine.params.EngineParams

    Returns
    -------
    dict
        ``p``: the ``Params`` struct, every field under its own name (Cython's struct to dict);
        ``tiers``, ``adl``, ``mark``, ``book``, ``inst``: the fields of the instrument's
        structs that come from ``params`` (the rest is run state), arrays copied.
    """
    cdef Engine e
    cdef Py_ssize_t values, k
    cdef Inst* x
    cdef const i64[::1] no_ticks = np.empty(0, dtype=np.int64)
    cdef const i32[::1] no_ids = np.empty(0, dtype=np.int32)
    cdef const i64[::1] no_owners = np.empty(0, dtype=np.int64)
    cdef const float64_t[::1] no_values = np.empty(0, dtype=np.float64)
    # no accounts: only the vault's and the fund's slots
    cdef float64_t[::1] col = np.zeros(2, dtype=np.float64)
    cdef float64_t[::1] pos = np.zeros(2, dtype=np.float64)
    cdef float64_t[::1] ep = np.zeros(2, dtype=np.float64)
    cdef float64_t[::1] socialized = np.zeros(2, dtype=np.float64)
    cdef i8[::1] status = np.zeros(2, dtype=np.int8)
    try:
        owners = _engine_init(&e, [params], no_ticks, no_ids, no_values, no_values, no_owners,
                              no_ids, no_values, no_values, no_values, no_owners, no_owners,
                              no_owners, col, pos, ep, status, socialized, 0)
        x = &e.insts[0]
        values = x.book.n_snap * 2 * x.book.knots
        return {
            "p": e.p,
            "tiers": {"floors": _copy(x.tiers.floors, x.tiers.n),
                      "rates": _copy(x.tiers.rates, x.tiers.n),
                      "cums": _copy(x.tiers.cums, x.tiers.n),
                      "n": x.tiers.n, "whole": x.tiers.whole},
            "adl": {"policy": x.adl.policy, "ranking": x.adl.ranking,
                    "short_mark_over_entry": x.adl.short_mark_over_entry,
                    "risk_power": x.adl.risk_power},
            "mark": {"method": x.mark.method, "basis.tau_ns": x.mark.basis.tau_ns,
                     "last.tau_ns": x.mark.last.tau_ns},
            "book": {"snap_ts": np.array([x.book.snap_ts[k] for k in range(x.book.n_snap)],
                                         dtype=np.int64),
                     "delta": _copy(x.book.delta, values),
                     "notional": _copy(x.book.notional, values),
                     "knots": x.book.knots, "max_move": x.book.max_move,
                     "half_life_ns": x.book.half_life_ns, "feedback": x.book.feedback,
                     "stress_k": x.book.stress_k},
            "inst": {"liq_price_band": x.liq_price_band,
                     "liq_max_order_notional": x.liq_max_order_notional,
                     "fund_group": x.fund_group, "vault_group": x.vault_group,
                     "collateral": x.collateral},
        }
    finally:
        _free(&e)


cdef float64_t _funding_total(Engine* e) noexcept nogil:
    """Funding paid in every instrument, summed in instrument order (reference: ``funding_total``)."""
    cdef float64_t total = 0.0
    cdef Py_ssize_t k
    for k in range(e.n_inst):
        total += e.insts[k].funding_paid
    return total


cdef dict _by_instrument(Engine* e):
    """Each instrument's final figures (``riskengine.runlog.BY_INSTRUMENT``), arrays in
    instrument order."""
    cdef Py_ssize_t k
    cdef Inst* x
    out = {name: np.empty(e.n_inst, dtype=dtype) for name, dtype, _ in BY_INSTRUMENT}
    for k in range(e.n_inst):
        x = &e.insts[k]
        out["final_mark"][k] = x.mark.mark
        out["final_sim_price"][k] = _sim(x) if x.ticked else NAN
        out["tape_max_drawdown"][k] = x.tape_dd
        out["sim_max_drawdown"][k] = x.sim_dd
        out["tape_min"][k] = x.tape_min
        out["sim_min"][k] = x.sim_min
        out["fund_pos"][k] = e.pos[x.F]
        out["fund_entry"][k] = e.ep[x.F]
        out["vault_pos"][k] = e.pos[x.V]
        out["vault_entry"][k] = e.ep[x.V]
        out["ext_pos"][k] = x.ext_pos
        out["ext_cash"][k] = x.ext_cash
        out["liquidations"][k] = x.liquidations
        out["liquidated_notional"][k] = x.liquidated_notional
        out["adl_fills"][k] = x.adl_fills
        out["adl_notional"][k] = x.adl_notional
        out["fund_group"][k] = x.fund_group
        out["vault_group"][k] = x.vault_group
        out["funding_paid"][k] = x.funding_paid
    return out


cdef inline i64 _now_ns() noexcept nogil:
    """Monotonic clock in ns (the phases of a run, :func:`run_engine`'s ``phases``)."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <i64>ts.tv_sec * 1_000_000_000 + ts.tv_nsec


#: the phases of a run ``_run`` times, in order (``phase_ns``)
PHASES = ("init", "index", "loop", "results", "free")


cdef dict _run(list plist, const i64[::1] tape_ts, const i32[::1] tick_inst,
               const float64_t[::1] tape_price, const float64_t[::1] stream,
               const i64[::1] owner, const i32[::1] acc_inst, const float64_t[::1] collateral,
               const float64_t[::1] size, const float64_t[::1] entry, const i64[::1] xacc,
               const i64[::1] xstart, const i64[::1] user, Py_ssize_t max_events,
               const i64[::1] funding_ts, const i32[::1] funding_inst,
               const float64_t[::1] funding_rate):
    """Run the engine on validated arrays: position slots ``size``, ``entry`` in instrument
    ``acc_inst`` (may be empty with one instrument): margin account ``m``'s first position (or
    none: size 0) in slot ``m``, the others after the accounts' slots (``xacc``, ``xstart``:
    :c:type:`Engine`); account ``m`` owned by ``owner[m]`` (empty: by ``m``), its user
    ``user[m]`` (empty: ``m``); the funding payments ``funding_*`` (may be empty); see
    :func:`run_portfolio`."""
    cdef Engine e
    cdef Py_ssize_t n = collateral.shape[0], slots = size.shape[0] + 2 * len(plist), k
    cdef i64 max_rounds = 0
    cdef i64 clock[6]
    cdef Inst* x
    clock[0] = _now_ns()
    col = np.empty(slots, dtype=np.float64)
    pos = np.empty(slots, dtype=np.float64)
    ep = np.empty(slots, dtype=np.float64)
    status = np.empty(slots, dtype=np.int8)
    socialized = np.zeros(slots, dtype=np.float64)
    # typed before the try: nothing can raise between it and _engine_init's memset
    cdef float64_t[::1] col_v = col
    cdef float64_t[::1] pos_v = pos
    cdef float64_t[::1] ep_v = ep
    cdef i8[::1] st_v = status
    cdef float64_t[::1] soc_v = socialized
    try:
        owners = _engine_init(&e, plist, tape_ts, tick_inst, tape_price, stream, owner, acc_inst,
                              collateral, size, entry, xacc, xstart, user, col_v, pos_v, ep_v,
                              st_v, soc_v, max_events)
        # the funding payments, borrowed like the tape (none: n_funding 0 from the memset)
        e.n_funding = funding_ts.shape[0]
        if e.n_funding:
            e.funding_ts = &funding_ts[0]
            e.funding_inst = &funding_inst[0]
            e.funding_rate = &funding_rate[0]
        with nogil:
            clock[1] = _now_ns()
            _build_indexes(&e)
            clock[2] = _now_ns()
            _loop(&e, &max_rounds)
            clock[3] = _now_ns()
        events = log_to_numpy(&e.log, EVENT_COLUMNS)
        series = log_to_numpy(&e.series, SERIES_COLUMNS)
        by_instrument = _by_instrument(&e)
        x = &e.insts[0]
        scalars = {
            "fund_final": _ledgers_total(&e, True, True),
            "fund_min": e.fund_min,
            "fund_pos": pos[e.F],
            "fund_entry": ep[e.F],
            "vault_col": _ledgers_total(&e, False, True),
            "vault_pos": pos[e.V],
            "vault_entry": ep[e.V],
            "vault_min": e.vault_min,
            "bad_debt": e.bad_debt,
            "ext_cash": x.ext_cash,
            "ext_pos": x.ext_pos,
            "tape_max_drawdown": x.tape_dd,
            "sim_max_drawdown": x.sim_dd,
            "tape_min": x.tape_min,
            "sim_min": x.sim_min,
            "final_mark": x.mark.mark,
            "final_sim_price": _sim(x) if x.ticked else np.nan,
            "max_rounds": int(max_rounds),
            "ticks": int(e.n_ticks),
            "adl_fills": int(e.cum_adl),
            "adl_overshoot": e.adl_overshoot,
            "funding_paid": _funding_total(&e),
        }
        index_stats = {"checks": int(e.cross_checks), "splits": int(e.cross_splits),
                       "hot": int(e.cross_hot), "fired": int(e.cross_fired),
                       "adl_bursts": int(e.lz_bursts), "adl_burst_orders": int(e.lz_orders)}
        clock[4] = _now_ns()
    finally:
        _free(&e)
    clock[5] = _now_ns()
    return {
        "events": events,
        "series": series,
        "collateral": col[:n],
        "size": pos[:n],
        "entry": ep[:n],
        "slot_size": pos[:size.shape[0]],
        "slot_entry": ep[:size.shape[0]],
        "status": status[:n],
        "scalars": scalars,
        "socialized": socialized[:n],
        "by_instrument": by_instrument,
        "index_stats": index_stats,
        "phase_ns": {name: int(clock[k + 1] - clock[k]) for k, name in enumerate(PHASES)},
    }


def run_portfolio(const i64[::1] ts, const i32[::1] inst, const float64_t[::1] price,
                  const float64_t[::1] stream, const i64[::1] owner,
                  const float64_t[::1] collateral, const i64[::1] start,
                  const i32[::1] instrument, const float64_t[::1] size,
                  const float64_t[::1] entry, params, Py_ssize_t max_events=0, bint index_stats=False,
                  funding=None, bint phases=False):
    """Run the compiled engine on several instruments: their merged tape and margin accounts
    whose positions are given in CSR form (``riskengine.portfolio``).

    Parameters
    ----------
    ts : ndarray of int64, shape (T,)
        Tick times of the merged tape, ns, non-decreasing.  # const int64_t[::1]
    inst : ndarray of int32, shape (T,)
        The instrument each tick moves, in ``0 .. I - 1``.  # const int32_t[::1]
    price : ndarray of float64, shape (T,)
        Tick prices, > 0 (each in its instrument's quote).  # const float64_t[::1]
    stream : ndarray of float64, shape (T,) or (0,)
        The ticking instrument's supplied mark/index price as of each tick, NaN where it has
        none yet (empty when the mark method uses none).  # const float64_t[::1]
    owner : ndarray of int64, shape (M,)
        Public id of each margin account's user: the events' ``account``.  # const int64_t[::1]
    collateral : ndarray of float64, shape (M,)
        Each margin account's cash (a cross wallet, or an isolated position's margin); copied,
        never modified.  # const float64_t[::1]
    start : ndarray of int64, shape (M + 1,)
        Margin account ``m``'s positions are ``start[m] .. start[m + 1] - 1``.
        # const int64_t[::1]
    instrument, size, entry : ndarrays of int32, float64, float64, shape (P,)
        Each position's instrument (``0 .. I - 1``), signed size and entry price.
        # const int32_t[::1], const float64_t[::1], const float64_t[::1]
    params : list of riskengine.params.EngineParams
        One per instrument: its margin tiers, liquidity model, observed flow (taken out of its
        own ticks, ``riskengine._liquidity.counterfactual_tape``), order cap, price band, fund and
        vault (``riskengine.engine_inputs.PER_INSTRUMENT_FIELDS``); every other field is the
        design's and must be equal in all of them.
    max_events : int
        Budget of event-log rows (0: none); one more raises ``MemoryError``.
    index_stats : bool
        Also return ``index_stats``: what the liquidation index of the cross accounts with
        several positions did (``checks``: exact checks of an account, ``splits``: splits of
        its slack, ``hot``: of those, the ones that put it on the hot list, ``fired``: triggers
        passed; see the module docstring), for tests of its cost; and ``adl_bursts``,
        ``adl_burst_orders``: the lazy pro-rata bursts and the ADL orders they split
        (``_lazy_order``).
    funding : (ndarray of int64, ndarray of int32, ndarray of float64), optional
        Funding payments: time, instrument and rate of each, sorted by time then instrument
        (:func:`riskengine.engine_inputs.check_funding`); None: none. A payment at time ``T`` is
        made before the first tick later than ``T`` (reference: ``run_portfolio``).
    phases : bool
        Also return ``phase_ns``: the wall time of each phase of the compiled run in ns, by
        name (:data:`PHASES`: setting the engine up, building the liquidation indexes, the
        replay loop, assembling the results, freeing the work arrays), for benchmarks.

    Returns
    -------
    dict
        ``events``, ``series`` (dicts of arrays; the series has one row per instrument per
        sample), ``collateral``, ``size``, ``entry``, ``status``, ``socialized`` (final margin
        account arrays, length M; ``size`` and ``entry`` each account's first position, 0
        without one), ``positions_size`` and ``positions_entry`` (every position, length P, CSR
        order), ``scalars`` (instrument 0's where per instrument) and ``by_instrument`` (dict of
        arrays of length I, ``riskengine.runlog.BY_INSTRUMENT``): ``riskengine.runlog.RawRun``'s
        fields.

    Raises
    ------
    ValueError
        The checks both engines make (``riskengine.engine_inputs``): parameters that disagree on
        a design field, arrays of the wrong lengths, an instrument id out of range, a user holding
        one instrument twice, or fund or vault indices that skip one (``ledger_groups``). A cross
        margin account may hold several positions (issue 12 step 2).

    Notes
    -----
    Prices, sizes and times are assumed valid (``riskengine.engine`` and
    ``riskengine.portfolio`` check them). The loop runs without the GIL.
    """
    plist = list(params)
    design_params(plist)
    ledger_groups(plist)
    n_inst = len(plist)
    starts = np.asarray(start)
    check_margin_accounts(np.asarray(ts), np.asarray(inst), np.asarray(price), np.asarray(stream),
                          np.asarray(owner), np.asarray(collateral), starts, np.asarray(instrument),
                          np.asarray(size), np.asarray(entry), n_inst)
    source, xacc, xstart = _position_slots(starts)
    user = _users(np.asarray(owner))
    whole = len(source) == len(size)  # every slot holds a position: source is a permutation
    f_ts, f_inst, f_rate = funding_arrays(funding, n_inst)
    out = _run(plist, ts, inst if n_inst > 1 else _NO_INSTRUMENTS, price, stream, owner,
               _gather(instrument, source, np.int32, whole), collateral,
               _gather(size, source, np.float64, whole), _gather(entry, source, np.float64, whole),
               xacc, xstart, user, max_events, f_ts, f_inst, f_rate)
    slot_of = np.empty(len(size), dtype=np.int64)
    if whole:
        slot_of[source] = np.arange(len(source), dtype=np.int64)
    else:
        placed = np.flatnonzero(source >= 0)
        slot_of[source[placed]] = placed
    out["positions_size"] = out.pop("slot_size")[slot_of]
    out["positions_entry"] = out.pop("slot_entry")[slot_of]
    stats = out.pop("index_stats")
    if index_stats:
        out["index_stats"] = stats
    if not phases:
        del out["phase_ns"]
    return out


def _users(owner):
    """Each margin account's user as an id below the number of accounts (the key of the
    partial-liquidation cooldown): the owner itself when every owner is such an id already (no
    sort), else its rank among the distinct owners."""
    if len(owner) == 0 or (owner.min() >= 0 and owner.max() < len(owner)):
        return np.ascontiguousarray(owner, dtype=np.int64)
    return np.unique(owner, return_inverse=True)[1].astype(np.int64)


def _position_slots(starts):
    """Where a run's positions go (:c:type:`Engine`): the position each slot holds (``-1``:
    none), the extra slots' accounts and each account's offsets into them (both empty when no
    margin account holds several positions).

    Slot ``m`` holds margin account ``m``'s first position (``starts[m]``); the others follow the
    accounts' slots in position (CSR) order."""
    m = len(starts) - 1
    held = np.diff(starts)
    first = np.where(held > 0, starts[:m], -1).astype(np.int64)
    extra = np.maximum(held - 1, 0)
    count = int(extra.sum())
    if count == 0:
        return first, _NO_OWNERS, _NO_OWNERS
    xstart = np.empty(m + 1, dtype=np.int64)
    xstart[0] = 0
    np.cumsum(extra, out=xstart[1:])
    xacc = np.repeat(np.arange(m, dtype=np.int64), extra)
    rest = np.ones(int(starts[m]), dtype=bool)  # the positions after their account's first
    rest[first[first >= 0]] = False
    return np.concatenate([first, np.flatnonzero(rest)]), xacc, xstart


def _gather(values, source, dtype, whole=False):
    """``values`` at the positions ``source`` names (0 where it names none; ``whole``: it names
    one everywhere, gathered without a mask)."""
    if whole:
        return np.take(np.asarray(values), source).astype(dtype, copy=False)
    out = np.zeros(len(source), dtype=dtype)
    held = source >= 0
    out[held] = np.asarray(values)[source[held]]
    return out


# run_engine's defaults: every tick and account in instrument 0, every account its own owner
_NO_INSTRUMENTS = np.empty(0, dtype=np.int32)
_NO_OWNERS = np.empty(0, dtype=np.int64)


def run_engine(const i64[::1] tape_ts, const float64_t[::1] tape_price,
               const float64_t[::1] stream, const float64_t[::1] collateral,
               const float64_t[::1] size, const float64_t[::1] entry, params,
               Py_ssize_t max_events=0, funding=None, bint phases=False):
    """Run the compiled engine on one instrument's validated arrays: :func:`run_portfolio` with
    one instrument and one margin account per account (its id its owner).

    Parameters
    ----------
    tape_ts : ndarray of int64, shape (T,)
        Tick times, ns, non-decreasing.  # const int64_t[::1]
    tape_price : ndarray of float64, shape (T,)
        Tick prices, > 0.  # const float64_t[::1]
    stream : ndarray of float64, shape (T,) or (0,)
        Supplied mark/index price as of each tick, NaN where none (empty when the mark
        method does not use one).  # const float64_t[::1]
    collateral, size, entry : ndarray of float64, shape (N,)
        Account state; copied, never modified.  # const float64_t[::1]
    params : riskengine.params.EngineParams
        The resolved venue design and liquidity model. With observed flow
        (``params.observed_*``, counterfactual replay) the tape is first divided by the
        observed flow's impact (``riskengine._liquidity.counterfactual_tape``).
    max_events : int
        Budget of event-log rows (0: none); one more raises ``MemoryError``.
    funding : (ndarray of int64, ndarray of int32, ndarray of float64), optional
        Funding payments (the instruments all 0), as for :func:`run_portfolio`.
    phases : bool
        Also return ``phase_ns``, as for :func:`run_portfolio`.

    Returns
    -------
    dict
        As :func:`run_portfolio`: ``events``, ``series`` (dicts of arrays), ``collateral``,
        ``size``, ``entry``, ``status`` (final account arrays), ``scalars`` and
        ``by_instrument`` (one instrument).

    Notes
    -----
    Arguments are assumed valid (``riskengine.engine.run`` checks them). The loop runs
    without the GIL.
    """
    f_ts, f_inst, f_rate = funding_arrays(funding, 1)
    out = _run([params], tape_ts, _NO_INSTRUMENTS, tape_price, stream, _NO_OWNERS,
               _NO_INSTRUMENTS, collateral, size, entry, _NO_OWNERS, _NO_OWNERS, _NO_OWNERS,
               max_events, f_ts, f_inst, f_rate)
    del out["slot_size"], out["slot_entry"], out["index_stats"]
    if not phases:
        del out["phase_ns"]
    return out
