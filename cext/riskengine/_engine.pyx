"""The replay loop: tape ticks through mark, trigger, liquidation, settlement and ADL.

The semantics are specified in ``riskengine/reference/_engine.py`` (the plain-Python oracle); this
module is the same machine over struct-of-arrays state, with the liquidation index instead
of a scan, growable C buffers for the log, and the whole loop under ``nogil``.
"""

import numpy as np
from libc.math cimport INFINITY, NAN, fabs
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.stdint cimport INT64_MIN
from libc.string cimport memset

from riskengine._adl cimport (
    AdlParams, RatioIndex, adl_gather, adl_weight, capped_allocation, water_filling,
)
from riskengine._events cimport (
    ColumnLog, events_merge, events_push, log_free, log_init, log_to_numpy, series_push,
)
from riskengine._events import column_items
from riskengine.runlog import EVENT_COLUMNS, SERIES_COLUMNS
from riskengine._index cimport (
    KeyHeap, LiqIndex, SideIndex, heap_free, heap_init, heap_pop, heapify_from, index_free,
    index_init, side_build, side_pop, side_push, side_top, trigger_key,
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
cdef float64_t ADL_REST_TOL = _tol.ADL_REST_TOL
cdef float64_t ADL_EQUITY_GUARD = _tol.ADL_EQUITY_GUARD
cdef float64_t DUST_NOTIONAL = _tol.DUST_NOTIONAL
cdef float64_t TIER_STEP_MARGIN = _tol.TIER_STEP_MARGIN
# the liquidation index is rebuilt once its heaps hold more than 2 n + this many entries
cdef Py_ssize_t INDEX_SLACK = 64


def shared_tolerances():
    """The shared tolerances this module compiled in, by name (``tests/test_tolerances.py``
    checks them against ``riskengine.tolerances.SHARED``)."""
    return {"ADL_REST_TOL": ADL_REST_TOL, "ADL_EQUITY_GUARD": ADL_EQUITY_GUARD,
            "DUST_NOTIONAL": DUST_NOTIONAL, "TIER_STEP_MARGIN": TIER_STEP_MARGIN}


cdef inline float64_t _sign(float64_t x) noexcept nogil:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


cdef inline float64_t _sim(Engine* e) noexcept nogil:
    return e.tape * e.book.m


cdef inline float64_t _fund(Engine* e) noexcept nogil:
    return e.col[e.F]


cdef inline float64_t _equity(Engine* e, Py_ssize_t a) noexcept nogil:
    return e.col[a] + e.pos[a] * (e.mark.mark - e.ep[a])


cdef inline bint _closes(Engine* e) noexcept nogil:
    """Whether the ADL policy closes positions (NONE and SOCIALIZE do not)."""
    return e.adl.policy != ADL_NONE and e.adl.policy != ADL_SOCIALIZE


cdef inline i64 _public_id(Engine* e, Py_ssize_t a) noexcept nogil:
    if a == e.V:
        return VAULT_ID
    if a == e.F:
        return FUND_ID
    return a


cdef int _emit(Engine* e, int kind, Py_ssize_t a, i64 counterparty, float64_t size,
               float64_t price, float64_t fee, float64_t amount,
               float64_t equity_after) except -1 nogil:
    return events_push(&e.log, e.t, e.i, e.round, <i8>kind, _public_id(e, a), counterparty,
                       size, price, fee, amount, equity_after, _fund(e))


cdef inline void _note_fund(Engine* e) noexcept nogil:
    if _fund(e) < e.fund_min:
        e.fund_min = _fund(e)


cdef inline float64_t _vault_equity(Engine* e) noexcept nogil:
    return e.col[e.V] + e.pos[e.V] * (e.mark.mark - e.ep[e.V])


cdef inline bint _vault_beyond(Engine* e) noexcept nogil:
    """Whether the vault's loss at the mark passes its threshold."""
    return _vault_equity(e) < e.p.vault_initial - e.p.vault_loss_limit


cdef inline bint _vault_takes(Engine* e) noexcept nogil:
    """Whether the venue has a backstop vault that may take an account over now."""
    return e.p.backstop_ratio > 0.0 and not _vault_beyond(e)


cdef int _rekey(Engine* e, Py_ssize_t a) except -1 nogil:
    """Put an ACTIVE account back in the index under its current liquidation price.

    Re-keying pushes a new entry and leaves the old one stale, so the heaps grow with every
    re-key; once they hold more than ``2 n + INDEX_SLACK`` entries the index is rebuilt from the
    live accounts (O(n) after at least n pushes: O(1) amortized), so it stays O(n) however long
    the cascade. (Re-keying every winner on every weighted ADL order grew the heaps by
    orders x winners entries, 11 GB on 100k accounts; winners are now re-keyed once per scan,
    :c:func:`_rekey_dirty`.)"""
    cdef float64_t lp
    e.version[a] += 1
    if e.status[a] != ST_ACTIVE:
        return 0
    lp = liquidation_price(&e.tiers, e.col[a], e.pos[a], e.ep[a], 1.0)
    if e.pos[a] > 0.0:
        if lp > 0.0:
            side_push(&e.index.longs, trigger_key(lp, e.pos[a], e.ep[a]), a, e.version[a])
    else:
        side_push(&e.index.shorts, trigger_key(lp, e.pos[a], e.ep[a]), a, e.version[a])
    if e.index.longs.heap.size + e.index.shorts.heap.size > 2 * e.n + INDEX_SLACK:
        _build_index(e)
    return 0


cdef int _rekey_dirty(Engine* e) except -1 nogil:
    """Re-key the winners ADL filled since the last scan, once each however many orders
    filled them (a weighted policy fills every winner on every order); when they are many,
    one O(n) rebuild is cheaper than their pushes. Until then their old entries stay live: no
    scan runs in between, and nothing else reads the index."""
    cdef Py_ssize_t j
    if 4 * e.n_dirty > e.n:
        _build_index(e)
        for j in range(e.n_dirty):
            e.is_dirty[e.dirty[j]] = 0
    else:
        for j in range(e.n_dirty):
            e.is_dirty[e.dirty[j]] = 0
            _rekey(e, e.dirty[j])
    e.n_dirty = 0
    return 0


cdef float64_t _reduce(Engine* e, Py_ssize_t a, float64_t closed, float64_t price) noexcept nogil:
    cdef float64_t realized = closed * (price - e.ep[a])
    e.col[a] += realized
    e.pos[a] -= closed
    if a < e.n:
        if closed > 0:
            e.long_oi -= closed
        else:
            e.short_oi += closed
    return realized


cdef void _take(Engine* e, Py_ssize_t h, float64_t dq, float64_t price) noexcept nogil:
    """Inventory holder ``h`` (vault or fund) changes its position by ``dq`` at ``price``."""
    cdef float64_t q = e.pos[h]
    if q == 0.0 or _sign(q) == _sign(dq):
        e.ep[h] = (q * e.ep[h] + dq * price) / (q + dq)
        e.pos[h] = q + dq
    elif fabs(dq) <= fabs(q):
        _reduce(e, h, -dq, price)
    else:
        e.col[h] += q * (price - e.ep[h])
        e.pos[h] = q + dq
        e.ep[h] = price


cdef int _build_index(Engine* e) except -1 nogil:
    """(Re)build the liquidation index of every ACTIVE account in O(n) per side; every
    account's version moves on, so entries left from before are stale."""
    cdef Py_ssize_t a, nl = 0, ns = 0
    cdef float64_t lp
    for a in range(e.n):
        if e.status[a] != ST_ACTIVE:
            continue
        e.version[a] += 1
        lp = liquidation_price(&e.tiers, e.col[a], e.pos[a], e.ep[a], 1.0)
        if e.pos[a] > 0.0:
            if lp > 0.0:
                e.hold_keys[nl] = trigger_key(lp, e.pos[a], e.ep[a])
                e.hold_ids[nl] = a
                e.hold_vers[nl] = e.version[a]
                nl += 1
    side_build(&e.index.longs, e.hold_keys, e.hold_ids, e.hold_vers, nl)
    for a in range(e.n):
        if e.status[a] != ST_ACTIVE or e.pos[a] >= 0.0:
            continue
        lp = liquidation_price(&e.tiers, e.col[a], e.pos[a], e.ep[a], 1.0)
        e.hold_keys[ns] = trigger_key(lp, e.pos[a], e.ep[a])
        e.hold_ids[ns] = a
        e.hold_vers[ns] = e.version[a]
        ns += 1
    side_build(&e.index.shorts, e.hold_keys, e.hold_ids, e.hold_vers, ns)
    return 0


cdef float64_t _socialize(Engine* e, Py_ssize_t a, float64_t loss) except -1 nogil:
    """Charge ``loss`` to every open ACTIVE position by size, never below zero equity; one
    event records the total. Every charged account's liquidation price moves, so the index is
    rebuilt once (O(accounts)) rather than re-keyed account by account."""
    cdef Py_ssize_t i
    cdef float64_t total = 0.0, covered = 0.0, charge, room
    for i in range(e.n):
        if e.status[i] == ST_ACTIVE and e.pos[i] != 0.0:
            total += fabs(e.pos[i])
    if total <= 0.0:
        return covered
    for i in range(e.n):
        if e.status[i] != ST_ACTIVE or e.pos[i] == 0.0:
            continue
        charge = loss * fabs(e.pos[i]) / total
        room = _equity(e, i)
        if charge > room:
            charge = room if room > 0.0 else 0.0
        if charge <= 0.0:
            continue
        e.col[i] -= charge
        e.socialized[i] += charge
        covered += charge
    if covered > 0.0:
        e.col[a] += covered  # the market pays this much of the deficit
        _build_index(e)
        _emit(e, EV_SOCIALIZED_LOSS, a, MARKET_ID, 0.0, 0.0, 0.0, covered, _equity(e, a))
    return covered


cdef int _cover_deficit(Engine* e, Py_ssize_t a) except -1 nogil:
    cdef float64_t deficit = -e.col[a]
    cdef float64_t cash = _fund(e) if _fund(e) > 0.0 else 0.0  # inventory losses can leave it negative
    cdef float64_t pay = deficit if deficit < cash else cash
    cdef float64_t rest
    if pay > 0.0:
        e.col[e.F] -= pay
        e.col[a] += pay
        _emit(e, EV_FUND_PAYMENT, a, BOOK_ID, 0.0, 0.0, 0.0, pay, _equity(e, a))
    rest = deficit - pay
    if rest > 0.0 and e.adl.policy == ADL_SOCIALIZE:
        rest -= _socialize(e, a, rest)  # credits the account with what it covered
        if rest <= ADL_REST_TOL * deficit:
            rest = 0.0
        e.col[a] = -rest
    if rest > 0.0:
        e.bad_debt += rest
        e.col[a] = 0.0
        _emit(e, EV_BAD_DEBT, a, BOOK_ID, 0.0, 0.0, 0.0, rest, _equity(e, a))
    elif e.col[a] < 0.0:
        e.col[a] = 0.0
    _note_fund(e)
    return 0


cdef float64_t _charge_fee(Engine* e, Py_ssize_t a, float64_t fee) noexcept nogil:
    cdef float64_t room = e.col[a]
    if e.p.liq_surplus_to_fund and e.pos[a] == 0.0 and room > fee:
        fee = room
    if fee > room:
        fee = room if room > 0.0 else 0.0
    e.col[a] -= fee
    e.col[e.F] += fee
    return fee


cdef float64_t _book_close(Engine* e, Py_ssize_t a, float64_t size, int kind,
                           float64_t fee_rate, bint settle) except? -1 nogil:
    """Send a market order closing ``size`` of account ``a`` into the depth curve; return the
    fill. ``settle=False`` leaves a negative balance for the caller to settle."""
    cdef float64_t fill, move
    depth_walk(&e.book, -_sign(size), fabs(size), _sim(e), e.tape, &fill, &move)
    return _book_fill(e, a, size, kind, fee_rate, settle, fill, move)


cdef float64_t _book_fill(Engine* e, Py_ssize_t a, float64_t size, int kind, float64_t fee_rate,
                          bint settle, float64_t fill, float64_t move) except? -1 nogil:
    """Settle a market order already walked through the book (``fill``, ``move``)."""
    cdef float64_t side = -_sign(size)
    cdef float64_t realized
    cdef float64_t fee = 0.0
    impact_commit(&e.book, side, move, fabs(size) * fill)
    e.ext_pos += size
    e.ext_cash -= size * fill
    realized = _reduce(e, a, size, fill)
    if a < e.n:
        fee = _charge_fee(e, a, fee_rate * fabs(size) * fill)
        e.cum_liq += 1
        e.cum_liq_notional += fabs(size) * fill
    _emit(e, kind, a, BOOK_ID, size, fill, fee, realized, _equity(e, a))
    if settle and a < e.n and e.col[a] < 0.0:
        _cover_deficit(e, a)
    return fill


cdef float64_t _adl_available(Engine* e, Py_ssize_t i, float64_t price) noexcept nogil:
    cdef float64_t q = e.pos[i]
    cdef float64_t worse = _sign(q) * (price - e.mark.mark)
    cdef float64_t cap
    if worse < 0.0:
        cap = _equity(e, i) / (-worse) * (1.0 - ADL_EQUITY_GUARD)
        return cap if cap < fabs(q) else fabs(q)
    return fabs(q)


cdef int _adl_fill(Engine* e, Py_ssize_t i, Py_ssize_t a, float64_t take,
                   float64_t price) except -1 nogil:
    """Close ``take`` of winner ``i`` at ``price`` against the order of account ``a``, and log it.

    Under the weighted policies (``merge_fills``) a winner already filled in this series
    interval (``adl_bucket``, set per order by :c:func:`_adl_close`) gets no new row: the fill
    is added to the row of its first fill in the interval (``events_merge``). Every weighted
    order fills every winner, so k orders against m winners would log k x m rows (457M rows,
    42 GB, for 100k accounts on the default scenario); merged, an interval logs at most one row
    per winner. The state still changes fill by fill."""
    cdef float64_t closed = _sign(e.pos[i]) * take
    cdef float64_t haircut
    cdef i64 counterparty = _public_id(e, a)
    _reduce(e, i, closed, price)
    if e.pos[i] == 0.0:
        e.status[i] = ST_CLOSED
    if not e.is_dirty[i]:  # re-keyed once, before the next scan (_rekey_dirty)
        e.is_dirty[i] = 1
        e.dirty[e.n_dirty] = i
        e.n_dirty += 1
    haircut = -closed * (price - e.mark.mark)
    if not haircut > 0.0:
        haircut = 0.0
    e.cum_adl += 1
    e.cum_adl_notional += take * price
    e.order_haircut += haircut
    if e.merge_fills:
        if e.fill_bucket[i] == e.adl_bucket:
            events_merge(&e.log, e.fill_row[i], counterparty, ADL_ORDERS_ID, closed, take * price,
                         haircut, _equity(e, i), _fund(e))
            return 0
        e.fill_bucket[i] = e.adl_bucket
        e.fill_row[i] = e.log.n
    _emit(e, EV_ADL_FILL, i, counterparty, closed, price, 0.0, haircut, _equity(e, i))
    return 0


cdef int _adl_rank(Engine* e, float64_t side) except -1 nogil:
    """Re-rank the ADL queue against a liquidated ``side`` when its snapshot is stale."""
    cdef int s = 1 if side > 0.0 else 0
    cdef Py_ssize_t count
    if e.adl_rank_built[s] and e.t - e.adl_rank_time[s] < e.p.adl_rank_interval_ns:
        return 0
    count = adl_gather(&e.adl, side, e.mark.mark, e.col, e.pos, e.ep, e.status, e.n,
                       e.work_ids, e.work_vals)
    heapify_from(&e.adl_rank[s], e.work_vals, e.work_ids, e.work_ids, count)
    e.adl_rank_built[s] = True
    e.adl_rank_time[s] = e.t
    return 0


cdef float64_t _adl_price(Engine* e, Py_ssize_t a) noexcept nogil:
    cdef float64_t price
    if e.p.adl_price == ADL_AT_BANKRUPTCY:
        price = e.ep[a] - e.col[a] / e.pos[a]
        return price if price > 0.0 else e.mark.mark
    if e.p.adl_price == ADL_AT_PREVIOUS_MARK:
        return e.prev_mark
    return e.mark.mark


cdef inline void _unwind_kind(Engine* e, Py_ssize_t a, int* kind, float64_t* fee_rate) noexcept nogil:
    if a == e.V:
        kind[0] = EV_VAULT_UNWIND
        fee_rate[0] = 0.0
    elif a == e.F:
        kind[0] = EV_FUND_UNWIND
        fee_rate[0] = 0.0
    else:
        kind[0] = EV_LIQUIDATION
        fee_rate[0] = e.p.liq_fee_rate


cdef float64_t _adl_allocate(Engine* e, Py_ssize_t a, float64_t side, float64_t wanted,
                             float64_t price) except -1 nogil:
    """The weighted and water-filling policies: fill every candidate's share; return the total."""
    cdef Py_ssize_t count, k, j
    cdef float64_t absorbed = 0.0, mark = e.mark.mark
    count = adl_gather(&e.adl, side, mark, e.col, e.pos, e.ep, e.status, e.n,
                       e.work_ids, e.work_vals)
    for k in range(count):
        j = e.work_ids[k]
        e.work_caps[k] = _adl_available(e, j, price)
    if e.adl.policy == ADL_WATER_FILLING:
        for k in range(count):
            j = e.work_ids[k]
            e.work_a[k] = fabs(e.pos[j]) * mark
            e.work_b[k] = _equity(e, j)
        water_filling(e.work_a, e.work_b, e.work_caps, count, mark, wanted,
                      e.work_out, e.work_vals, e.work_live)
    else:
        for k in range(count):
            j = e.work_ids[k]
            e.work_vals[k] = adl_weight(&e.adl, e.pos[j], e.col[j], e.ep[j], mark)
        capped_allocation(e.work_vals, e.work_caps, count, wanted, e.work_out, e.work_ratio,
                          e.work_a)
    for k in range(count):
        if e.work_out[k] > 0.0:
            _adl_fill(e, e.work_ids[k], a, e.work_out[k], price)
            absorbed += e.work_out[k]
    return absorbed


cdef int _adl_close(Engine* e, Py_ssize_t a, float64_t size, bint full) except -1 nogil:
    """Auto-deleverage ``size`` of account ``a`` (or an inventory) against the other side."""
    cdef float64_t side = _sign(size)
    cdef float64_t price = _adl_price(e, a)
    cdef float64_t wanted = fabs(size)
    cdef float64_t remaining = wanted, absorbed = 0.0, avail, take, rest
    cdef float64_t closed_a, q_a, shortfall, fee_rate, key
    cdef i64 idx, ver
    cdef int kind
    cdef KeyHeap* h
    e.order_haircut = 0.0
    if e.merge_fills:  # the series interval this order's fills are logged in (from 1)
        e.adl_bucket = (e.t - e.ts[0]) // e.p.series_interval_ns + 1
    if e.adl.policy == ADL_QUEUE:
        h = &e.adl_rank[1 if side > 0.0 else 0]
        _adl_rank(e, side)
        while h.size > 0 and remaining > 0.0:
            idx = h.items[0].id
            if (e.status[idx] != ST_ACTIVE or e.pos[idx] * side >= 0.0
                    or e.pos[idx] * (e.mark.mark - e.ep[idx]) <= 0.0
                    or _equity(e, idx) <= 0.0):
                heap_pop(h, &key, &idx, &ver)
                continue
            avail = _adl_available(e, idx, price)
            if avail <= 0.0:
                heap_pop(h, &key, &idx, &ver)
                continue
            if remaining < avail:
                take = remaining
            else:
                take = avail
                heap_pop(h, &key, &idx, &ver)
            _adl_fill(e, idx, a, take, price)
            remaining -= take
            absorbed += take
    else:
        absorbed = _adl_allocate(e, a, side, wanted, price)
    rest = wanted - absorbed
    if rest <= ADL_REST_TOL * wanted:
        rest = 0.0
    if absorbed > 0.0:
        q_a = e.pos[a]
        closed_a = q_a if (full and rest == 0.0) else side * absorbed
        shortfall = -(e.col[a] * fabs(closed_a) / fabs(q_a) + closed_a * (e.mark.mark - e.ep[a]))
        if not shortfall > 0.0:
            shortfall = 0.0
        if e.order_haircut > shortfall:
            e.adl_overshoot += e.order_haircut - shortfall
        _reduce(e, a, closed_a, price)
        if a < e.n:
            e.cum_liq += 1
            e.cum_liq_notional += fabs(closed_a) * price
        _emit(e, EV_ADL_LIQUIDATION, a, BOOK_ID, closed_a, price, 0.0, shortfall, _equity(e, a))
    if rest > 0.0:
        _unwind_kind(e, a, &kind, &fee_rate)
        _book_close(e, a, e.pos[a] if full else side * rest, kind, fee_rate, True)
    elif a < e.n and e.col[a] < 0.0:
        _cover_deficit(e, a)
    return 0


cdef int _vault_check(Engine* e) except -1 nogil:
    """After every change of the vault's equity (a takeover, an unwind, a re-mark): note its
    lowest equity; once its loss passes the threshold, deleverage its whole inventory."""
    cdef float64_t equity = _vault_equity(e)
    if equity < e.vault_min:
        e.vault_min = equity
    if (e.pos[e.V] != 0.0 and _closes(e)
            and equity < e.p.vault_initial - e.p.vault_loss_limit):
        _adl_close(e, e.V, e.pos[e.V], True)
        equity = _vault_equity(e)
        if equity < e.vault_min:
            e.vault_min = equity
    return 0


cdef int _backstop(Engine* e, Py_ssize_t a, float64_t equity) except -1 nogil:
    cdef float64_t q = e.pos[a]
    cdef Py_ssize_t v = e.V
    cdef float64_t mark = e.mark.mark
    if e.pos[v] == 0.0:
        e.vault_next_unwind = e.t + e.p.vault_unwind_interval_ns
    _take(e, v, q, mark)
    e.col[v] += equity
    _reduce(e, a, q, mark)
    e.col[a] = 0.0
    e.cum_liq += 1
    e.cum_liq_notional += fabs(q) * mark
    _emit(e, EV_BACKSTOP, a, VAULT_ID, q, mark, 0.0, equity, 0.0)
    _vault_check(e)
    return 0


cdef float64_t _order_size(Engine* e, Py_ssize_t a, float64_t q, float64_t equity,
                           float64_t notional, bint* full) noexcept nogil:
    """Size of the liquidation order; ``full`` says whether it closes the whole position."""
    cdef Py_ssize_t k = 0, j
    cdef float64_t target
    full[0] = True
    if e.t < e.cooldown_until[a]:
        return q
    if e.p.partial_mode == PARTIAL_FRACTION:
        if (e.p.partial_fraction < 1.0 and notional > e.p.partial_threshold and equity >= 0.0
                and notional * (1.0 - e.p.partial_fraction) >= DUST_NOTIONAL):
            full[0] = False
            return q * e.p.partial_fraction
        return q
    while k + 1 < e.tiers.n and e.tiers.floors[k + 1] <= notional:
        k += 1
    j = k
    while j > 0:
        target = e.tiers.floors[j] * (1.0 - TIER_STEP_MARGIN)
        if equity >= maintenance_margin(&e.tiers, target):
            full[0] = False
            return q * (1.0 - target / notional)
        j -= 1
    return q


cdef float64_t _limit_price(Engine* e, Py_ssize_t a, float64_t side) noexcept nogil:
    """Worst price the liquidation order may fill at (NaN: no limit)."""
    cdef float64_t limit = NAN, band
    if e.p.liq_limit_bankruptcy:
        limit = e.ep[a] - e.col[a] / e.pos[a]
    if e.p.liq_price_band != INFINITY:
        band = e.mark.mark * (1.0 + side * e.p.liq_price_band)
        if limit != limit or side * (band - limit) < 0.0:
            limit = band
    return limit


cdef bint _fund_can_take(Engine* e, float64_t dq, float64_t price, float64_t deficit) noexcept nogil:
    """Whether the fund can take ``dq`` at ``price`` within its capacity, after paying
    ``deficit`` (what the takeover may leave the account owing)."""
    cdef Py_ssize_t f = e.F
    cdef float64_t q = e.pos[f]
    cdef float64_t new_q = q + dq
    cdef float64_t value = (e.col[f] + q * (e.mark.mark - e.ep[f]) + dq * (e.mark.mark - price)
                            - deficit)
    return value >= 0.0 and fabs(new_q) * e.mark.mark <= e.p.fund_capacity * value


cdef int _market_liquidation(Engine* e, Py_ssize_t a, float64_t size, int kind,
                             bint full) except -1 nogil:
    cdef float64_t side = -_sign(size)
    cdef float64_t limit = _limit_price(e, a, side)
    cdef float64_t fill, move, after, deficit, filled, bankruptcy, rest, part, realized, fee, owed
    cdef float64_t filled_notional = 0.0
    cdef bint to_fund
    cdef Py_ssize_t f = e.F
    if limit != limit:
        depth_walk(&e.book, side, fabs(size), _sim(e), e.tape, &fill, &move)
        after = e.col[a] + size * (fill - e.ep[a])
        deficit = -after if after < 0.0 else 0.0
        if deficit > _fund(e) and _vault_takes(e):
            _backstop(e, a, _equity(e, a))  # the book cannot close it: not successful
        elif deficit > _fund(e) and _closes(e):
            _adl_close(e, a, size, full)
        else:
            _book_fill(e, a, size, kind, e.p.liq_fee_rate, True, fill, move)  # walked once
        return 0
    filled = depth_fillable(&e.book, side, fabs(size), _sim(e), e.tape, limit)
    if filled >= fabs(size):
        _book_close(e, a, size, kind, e.p.liq_fee_rate, True)
        return 0
    # the rest's route is decided before anything fills
    bankruptcy = e.ep[a] - e.col[a] / e.pos[a]
    rest = -side * (fabs(size) - filled)
    # at the bankruptcy price a whole close leaves the account >= 0; a partial one keeps its
    # share of negative collateral (fills better than the limit only reduce it)
    owed = 0.0 if full else -e.col[a] * (1.0 - size / e.pos[a])
    to_fund = (e.p.takeover == TAKEOVER_FUND
               and _fund_can_take(e, rest, bankruptcy, owed if owed > 0.0 else 0.0))
    if filled > 0.0:
        fill = _book_close(e, a, -side * filled, kind, 0.0 if to_fund else e.p.liq_fee_rate, False)
        filled_notional = filled * fill
    part = e.pos[a] if full else rest
    if to_fund:
        if e.pos[f] == 0.0:
            e.fund_next_unwind = e.t + e.p.fund_unwind_interval_ns
        _take(e, f, part, bankruptcy)
        realized = _reduce(e, a, part, bankruptcy)
        fee = _charge_fee(e, a, e.p.liq_fee_rate * (filled_notional + fabs(part) * bankruptcy))
        e.cum_liq += 1
        e.cum_liq_notional += fabs(part) * bankruptcy
        _emit(e, EV_FUND_TAKEOVER, a, FUND_ID, part, bankruptcy, fee, realized, _equity(e, a))
        if e.col[a] < 0.0:
            _cover_deficit(e, a)
    elif _closes(e):
        _adl_close(e, a, part, full)
    else:
        _book_close(e, a, part, kind, e.p.liq_fee_rate, True)
    return 0


cdef bint _fund_drawdown_active(Engine* e) noexcept nogil:
    if e.p.adl_fund_drawdown == INFINITY or e.peak_head == e.peak_tail:
        return False
    return _fund(e) < (1.0 - e.p.adl_fund_drawdown) * e.peak_val[e.peak_head]


cdef int _sample_fund_peak(Engine* e) except -1 nogil:
    """Rolling maximum of the fund balance over ``adl_fund_window`` (sampled per tick)."""
    cdef float64_t value = _fund(e)
    cdef Py_ssize_t j, live
    cdef i64* ts
    cdef float64_t* vals
    while e.peak_tail > e.peak_head and e.peak_val[e.peak_tail - 1] <= value:
        e.peak_tail -= 1
    if e.peak_tail == e.peak_cap:
        live = e.peak_tail - e.peak_head
        if e.peak_head > 0:
            for j in range(live):
                e.peak_ts[j] = e.peak_ts[e.peak_head + j]
                e.peak_val[j] = e.peak_val[e.peak_head + j]
        else:
            ts = <i64*>realloc(e.peak_ts, 2 * e.peak_cap * sizeof(i64))
            vals = <float64_t*>realloc(e.peak_val, 2 * e.peak_cap * sizeof(float64_t))
            if ts != NULL:
                e.peak_ts = ts
            if vals != NULL:
                e.peak_val = vals
            if ts == NULL or vals == NULL:
                with gil:
                    raise MemoryError("engine: out of memory for the fund peak window")
            e.peak_cap *= 2
        e.peak_head = 0
        e.peak_tail = live
    e.peak_ts[e.peak_tail] = e.t
    e.peak_val[e.peak_tail] = value
    e.peak_tail += 1
    while e.peak_ts[e.peak_head] < e.t - e.p.adl_fund_window_ns:
        e.peak_head += 1
    return 0


cdef int _liquidate(Engine* e, Py_ssize_t a) except -1 nogil:
    cdef float64_t q = e.pos[a]
    cdef float64_t equity = _equity(e, a)
    cdef float64_t notional = fabs(q) * e.mark.mark
    cdef float64_t mm = maintenance_margin(&e.tiers, notional)
    cdef float64_t size
    cdef bint full, partial
    cdef int kind
    if equity < 0.0 and e.p.adl_on_negative_equity and _closes(e):
        _adl_close(e, a, q, True)
    elif e.p.backstop_ratio > 0.0 and equity < e.p.backstop_ratio * mm and not _vault_beyond(e):
        _backstop(e, a, equity)
    elif _closes(e) and _fund_drawdown_active(e):
        _adl_close(e, a, q, True)
    else:
        size = _order_size(e, a, q, equity, notional, &full)
        partial = not full
        if fabs(size) * e.mark.mark > e.p.liq_max_order_notional:
            # the venue's largest market order; the rest waits for the next tick
            size = _sign(size) * e.p.liq_max_order_notional / e.mark.mark
            full = False
        kind = EV_LIQUIDATION if full else EV_PARTIAL_LIQUIDATION
        _market_liquidation(e, a, size, kind, full)
        if partial:
            e.cooldown_until[a] = e.t + e.p.partial_cooldown_ns
        if not full:
            e.partial_tick[a] = e.i
    if e.pos[a] != 0.0:
        e.status[a] = ST_ACTIVE
        if e.partial_tick[a] == e.i:
            e.deferred[e.n_deferred] = a
            e.n_deferred += 1
        else:
            _rekey(e, a)
    else:
        e.status[a] = ST_CLOSED
        e.version[a] += 1
    return 0


cdef void _sort_ids(Engine* e, i64* ids, Py_ssize_t k) noexcept nogil:
    """Sort k account ids ascending: insertion sort when few, else an LSD radix sort on 16-bit
    digits (ids are below n + 2), using ``hold_ids`` as the scratch buffer."""
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
    while (<i64>1 << (16 * passes)) < e.n + 2:
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


cdef Py_ssize_t _collect_side(Engine* e, SideIndex* side, float64_t bound,
                              Py_ssize_t ncross) except -1 nogil:
    """Pop every entry keyed at or past ``bound``; keep the accounts that really cross."""
    cdef float64_t key, top
    cdef i64 a, ver
    cdef Py_ssize_t nhold = 0, j
    while side_top(side, &top) and top >= bound:
        side_pop(side, &key, &a, &ver)
        if ver != e.version[a] or e.status[a] != ST_ACTIVE:
            continue
        if e.partial_tick[a] != e.i and crosses(&e.tiers, e.col[a], e.pos[a], e.ep[a],
                                                e.mark.mark):
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


cdef int _scan(Engine* e) except -1 nogil:
    """Trigger: crossing ACTIVE accounts become PENDING, queued in account-id order."""
    cdef Py_ssize_t ncross = 0, j
    cdef i64 a
    if e.n_dirty:  # checked here: _scan runs every tick
        _rekey_dirty(e)
    ncross = _collect_side(e, &e.index.longs, e.mark.mark, ncross)
    ncross = _collect_side(e, &e.index.shorts, -e.mark.mark, ncross)
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
    cdef Py_ssize_t v = e.V
    return series_push(&e.series, e.t, e.tape, _sim(e), e.mark.mark, _fund(e),
                       e.col[v] + e.pos[v] * (e.mark.mark - e.ep[v]), e.long_oi, e.short_oi,
                       e.cum_liq, e.cum_liq_notional, e.cum_adl, e.cum_adl_notional)


cdef int _unwind(Engine* e, Py_ssize_t h, float64_t fraction, int kind) except -1 nogil:
    cdef float64_t q = e.pos[h]
    cdef float64_t size = q * fraction
    if fabs(q - size) * _sim(e) < DUST_NOTIONAL:
        size = q
    _book_close(e, h, size, kind, 0.0, True)
    return 0


cdef int _inventories(Engine* e) except -1 nogil:
    """Step 4: the vault's unwinding (its loss checked after), then the fund's offloading."""
    cdef Py_ssize_t v = e.V, f = e.F
    if e.pos[v] != 0.0 and e.t >= e.vault_next_unwind:
        _unwind(e, v, e.p.vault_unwind_fraction, EV_VAULT_UNWIND)
        e.vault_next_unwind = e.t + e.p.vault_unwind_interval_ns
        _vault_check(e)
    if e.pos[f] != 0.0 and e.t >= e.fund_next_unwind:
        _unwind(e, f, e.p.fund_unwind_fraction, EV_FUND_UNWIND)
        e.fund_next_unwind = e.t + e.p.fund_unwind_interval_ns
        _note_fund(e)
    return 0


cdef int _loop(Engine* e, float64_t* stats) except -1 nogil:
    cdef Py_ssize_t i, j, a
    cdef i64 t, dt, last_ts, next_sample, cap = e.p.max_liqs_per_step
    cdef i64 executed, done
    cdef float64_t tape_peak = 0.0, sim_peak = 0.0, tape_dd = 0.0, sim_dd = 0.0
    cdef float64_t tape_min = INFINITY, sim_min = INFINITY, s
    cdef float64_t stream_value
    cdef i64 max_rounds = 0
    cdef bint recorded_last = False
    cdef bint has_stream = e.stream != NULL
    cdef bint track_peak = e.p.adl_fund_drawdown != INFINITY
    if e.n_ticks == 0:
        return 0
    last_ts = e.ts[0]
    next_sample = e.ts[0]
    for i in range(e.n_ticks):
        t = e.ts[i]
        e.i = i
        e.t = t
        e.tape = e.px[i]
        e.round = 0
        dt = t - last_ts
        depth_seek(&e.book, t)
        impact_decay(&e.book, dt)
        last_ts = t
        if e.mark.method == MARK_LAST:
            e.mark.mark = _sim(e)  # the common case, without a call
        else:
            stream_value = e.stream[i] if has_stream else NAN
            mark_update(&e.mark, _sim(e), stream_value, dt)
        if i == 0:
            e.prev_mark = e.mark.mark
        if track_peak:
            _sample_fund_peak(e)
        executed = 0
        while True:
            if e.round > 0:
                mark_refresh(&e.mark, _sim(e))
            if e.pos[e.V] != 0.0:
                _vault_check(e)  # the inventory re-marked
            _scan(e)
            done = 0
            while (not _pending_empty(e) and e.pend_due[e.pend_head] <= t
                   and (cap == 0 or executed < cap)):
                a = e.pend_ids[e.pend_head]
                e.pend_head = (e.pend_head + 1) % e.pend_cap
                if crosses(&e.tiers, e.col[a], e.pos[a], e.ep[a], e.mark.mark):
                    _liquidate(e, a)
                    done += 1
                    executed += 1
                else:
                    e.status[a] = ST_ACTIVE
                    _rekey(e, a)
            if done == 0 or (cap != 0 and executed >= cap):
                break
            e.round += 1
        if e.round + 1 > max_rounds:
            max_rounds = e.round + 1
        e.round += 1
        for j in range(e.n_deferred):
            a = e.deferred[j]
            if e.status[a] == ST_ACTIVE:
                _rekey(e, a)
        e.n_deferred = 0
        if e.pos[e.V] != 0.0 or e.pos[e.F] != 0.0:
            _inventories(e)
        e.prev_mark = e.mark.mark
        s = _sim(e)
        if e.tape > tape_peak:
            tape_peak = e.tape
        if s > sim_peak:
            sim_peak = s
        if 1.0 - e.tape / tape_peak > tape_dd:
            tape_dd = 1.0 - e.tape / tape_peak
        if 1.0 - s / sim_peak > sim_dd:
            sim_dd = 1.0 - s / sim_peak
        if e.tape < tape_min:
            tape_min = e.tape
        if s < sim_min:
            sim_min = s
        recorded_last = False
        if t >= next_sample:
            _record(e)
            next_sample = t + e.p.series_interval_ns
            recorded_last = True
    if not recorded_last:
        _record(e)
    stats[0] = tape_dd
    stats[1] = sim_dd
    stats[2] = tape_min
    stats[3] = sim_min
    stats[4] = <float64_t>max_rounds
    return 0


# --- setting the engine up: one function zeroes and fills the struct, one table lists its arrays ---

cdef enum:
    # how many entries a work array holds (WorkArray.count)
    PER_ACCOUNT = 0        # one per account slot: n + 2 (the accounts, the vault, the fund)
    PER_RADIX_DIGIT = 1    # one per 16-bit digit value: the radix sort's counters
    PER_PEAK = 2           # the fund peak window's first capacity (_sample_fund_peak grows it)

cdef enum:
    MAX_WORK_ARRAYS = 64   # room in the table (_alloc refuses more rows)
    RADIX_DIGITS = 65536
    PEAK_START = 64


cdef struct WorkArray:
    void** field           # address of the Engine's pointer field
    size_t item            # bytes per entry
    int count              # PER_ACCOUNT, PER_RADIX_DIGIT or PER_PEAK
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
    k = _row(t, k, <void**>&e.pend_ids, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.pend_due, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_ids, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_vals, sizeof(float64_t), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_caps, sizeof(float64_t), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_out, sizeof(float64_t), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_a, sizeof(float64_t), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_b, sizeof(float64_t), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_ratio, sizeof(RatioIndex), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.work_live, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.hold_keys, sizeof(float64_t), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.hold_ids, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.hold_vers, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.deferred, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.dirty, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.is_dirty, sizeof(i8), PER_ACCOUNT, True)
    k = _row(t, k, <void**>&e.partial_tick, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.cooldown_until, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.version, sizeof(i64), PER_ACCOUNT, True)
    k = _row(t, k, <void**>&e.fill_row, sizeof(i64), PER_ACCOUNT, False)
    k = _row(t, k, <void**>&e.fill_bucket, sizeof(i64), PER_ACCOUNT, True)  # touched for winners only
    k = _row(t, k, <void**>&e.radix_count, sizeof(Py_ssize_t), PER_RADIX_DIGIT, False)
    k = _row(t, k, <void**>&e.peak_ts, sizeof(i64), PER_PEAK, False)
    k = _row(t, k, <void**>&e.peak_val, sizeof(float64_t), PER_PEAK, False)
    return k


cdef void _free(Engine* e) noexcept nogil:
    """Free everything the engine allocated; safe on a zeroed engine and after a failed
    :c:func:`_alloc` (unallocated pointers are NULL)."""
    cdef WorkArray table[MAX_WORK_ARRAYS]
    cdef Py_ssize_t rows = _work_arrays(e, table), k
    for k in range(rows if rows < MAX_WORK_ARRAYS else MAX_WORK_ARRAYS):
        free(table[k].field[0])
        table[k].field[0] = NULL
    index_free(&e.index)
    heap_free(&e.adl_rank[0])
    heap_free(&e.adl_rank[1])
    log_free(&e.log)
    log_free(&e.series)


cdef int _alloc(Engine* e, Py_ssize_t n) except -1 nogil:
    """Allocate every work array of :c:func:`_work_arrays` for ``n`` accounts."""
    cdef WorkArray table[MAX_WORK_ARRAYS]
    cdef Py_ssize_t rows = _work_arrays(e, table), k, count
    if rows > MAX_WORK_ARRAYS:
        with gil:
            raise RuntimeError(f"engine: {rows} work arrays but room for {MAX_WORK_ARRAYS} "
                               "(raise MAX_WORK_ARRAYS)")
    e.pend_cap = n + 2
    e.peak_cap = PEAK_START
    for k in range(rows):
        if table[k].count == PER_ACCOUNT:
            count = n + 2
        elif table[k].count == PER_RADIX_DIGIT:
            count = RADIX_DIGITS
        else:
            count = PEAK_START
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
    p.liq_price_band = params.liq_price_band
    p.liq_max_order_notional = params.liq_max_order_notional
    p.partial_mode = params.partial_mode
    p.partial_fraction = params.partial_fraction
    p.partial_threshold = params.partial_threshold
    p.partial_cooldown_ns = params.partial_cooldown_ns
    p.max_liqs_per_step = params.max_liqs_per_step
    p.latency_ns = params.latency_ns
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


cdef object _engine_init(Engine* e, params, const i64[::1] tape_ts, const float64_t[::1] tape_price,
                         const float64_t[::1] stream, const float64_t[::1] collateral,
                         const float64_t[::1] size, const float64_t[::1] entry,
                         float64_t[::1] col, float64_t[::1] pos, float64_t[::1] ep, i8[::1] status,
                         float64_t[::1] socialized, Py_ssize_t max_events):
    """Zero the whole engine, then set it up for a run: parameters (:c:func:`_fill_params`),
    margin tiers, ADL, mark and book settings, the tape (with observed flow, the counterfactual
    tape: ``riskengine._liquidity.counterfactual_tape``), the accounts (copied into ``col``,
    ``pos``, ``ep``, ``status``; ``n + 2`` slots: the vault and the fund last), the ledgers, the
    index, the logs and the work arrays (:c:func:`_alloc`).

    Everything not set here starts at zero. :c:func:`_free` is safe from the first line on,
    whether or not this function finished.

    Returns
    -------
    tuple
        The arrays the struct borrows besides the arguments; keep them until ``_free``.
    """
    cdef Py_ssize_t n = collateral.shape[0], a
    memset(e, 0, sizeof(Engine))
    _fill_params(&e.p, params)
    floors = np.ascontiguousarray(params.mm_floors, dtype=np.float64)
    rates = np.ascontiguousarray(params.mm_rates, dtype=np.float64)
    cums = np.ascontiguousarray(params.mm_cums, dtype=np.float64)
    cdef const float64_t[::1] f_view = floors
    cdef const float64_t[::1] r_view = rates
    cdef const float64_t[::1] c_view = cums
    e.tiers.floors = &f_view[0]
    e.tiers.rates = &r_view[0]
    e.tiers.cums = &c_view[0]
    e.tiers.n = f_view.shape[0]
    e.tiers.whole = params.mm_whole_position
    e.adl.policy = params.adl_policy
    e.adl.ranking = params.adl_ranking
    e.adl.short_mark_over_entry = params.adl_short_mark_over_entry
    e.adl.risk_power = params.adl_risk_power
    e.adl.tiers = &e.tiers
    e.mark.method = params.mark_method
    e.mark.basis.tau_ns = params.mark_ema_tau_ns
    e.mark.last.tau_ns = params.mark_ema2_tau_ns
    e.mark.index = NAN
    book_ts = np.ascontiguousarray(params.book_ts, dtype=np.int64)
    book_delta = np.ascontiguousarray(params.book_delta, dtype=np.float64)
    book_notional = np.ascontiguousarray(params.book_notional, dtype=np.float64)
    cdef const i64[::1] bt_v = book_ts
    cdef const float64_t[::1] bd_v = book_delta
    cdef const float64_t[::1] bn_v = book_notional
    depth_init(&e.book, &bt_v[0], &bd_v[0], &bn_v[0], bt_v.shape[0], params.book_knots,
               params.max_move, params.impact_half_life_ns, params.impact_feedback,
               params.impact_stress_k)
    # counterfactual replay: the tape with the observed flow's impact taken out
    obs_ts = np.ascontiguousarray(params.observed_ts, dtype=np.int64)
    obs_side = np.ascontiguousarray(params.observed_side, dtype=np.float64)
    obs_notional = np.ascontiguousarray(params.observed_notional, dtype=np.float64)
    cdef const i64[::1] ot_v = obs_ts
    cdef const float64_t[::1] os_v = obs_side
    cdef const float64_t[::1] on_v = obs_notional
    cdef DepthBook obs_book
    cdef float64_t[::1] cf_v
    cf_tape = None
    if ot_v.shape[0] and tape_ts.shape[0]:
        cf_tape = np.empty(tape_ts.shape[0], dtype=np.float64)
        cf_v = cf_tape
        obs_book = e.book
        with nogil:
            counterfactual_tape(&obs_book, &tape_ts[0], &tape_price[0], tape_ts.shape[0],
                                &ot_v[0], &os_v[0], &on_v[0], ot_v.shape[0], &cf_v[0])
        tape_price = cf_tape
    e.ts = &tape_ts[0] if tape_ts.shape[0] else NULL
    e.px = &tape_price[0] if tape_price.shape[0] else NULL
    e.stream = &stream[0] if stream.shape[0] else NULL
    e.n_ticks = tape_ts.shape[0]
    e.col = &col[0]
    e.pos = &pos[0]
    e.ep = &ep[0]
    e.status = &status[0]
    e.socialized = &socialized[0]
    e.n = n
    e.V = n
    e.F = n + 1
    e.fund_min = e.p.fund_initial
    e.vault_min = e.p.vault_initial
    e.merge_fills = ADL_PRO_RATA <= e.adl.policy <= ADL_WATER_FILLING
    index_init(&e.index, 16)
    heap_init(&e.adl_rank[0], 16)
    heap_init(&e.adl_rank[1], 16)
    cdef size_t[::1] event_items = column_items(EVENT_COLUMNS)
    cdef size_t[::1] series_items = column_items(SERIES_COLUMNS)
    log_init(&e.log, &event_items[0], event_items.shape[0], 1024, max_events)
    log_init(&e.series, &series_items[0], series_items.shape[0], 1024, 0)
    with nogil:
        _alloc(e, n)
        for a in range(n):
            e.col[a] = collateral[a]
            e.pos[a] = size[a]
            e.ep[a] = entry[a]
            e.status[a] = ST_ACTIVE if size[a] != 0.0 else ST_FLAT
            e.partial_tick[a] = -1
            e.cooldown_until[a] = INT64_MIN
            e.ext_pos -= size[a]
            e.ext_cash += size[a] * entry[a]
            if size[a] > 0:
                e.long_oi += size[a]
            elif size[a] < 0:
                e.short_oi -= size[a]
        for a in range(n, n + 2):
            e.pos[a] = 0.0
            e.ep[a] = 0.0
            e.status[a] = ST_FLAT
            e.partial_tick[a] = -1
            e.cooldown_until[a] = INT64_MIN
        e.col[n] = e.p.vault_initial
        e.col[n + 1] = e.p.fund_initial
    return (floors, rates, cums, book_ts, book_delta, book_notional, cf_tape)


cdef object _copy(const float64_t* values, Py_ssize_t count):
    out = np.empty(count, dtype=np.float64)
    cdef float64_t[::1] v = out
    cdef Py_ssize_t k
    for k in range(count):
        v[k] = values[k]
    return out


def params_struct(params):
    """The engine's settings as :c:func:`_engine_init` fills them from ``params``.

    For ``tests/test_engine_struct.py``, which checks them against
    :class:`riskengine.params.EngineParams` field by field.

    Parameters
    ----------
    params : riskengine.params.EngineParams

    Returns
    -------
    dict
        ``p``: the ``Params`` struct, every field under its own name (Cython's struct to dict);
        ``tiers``, ``adl``, ``mark``, ``book``: the fields of those structs that come from
        ``params`` (the rest is run state), arrays copied.
    """
    cdef Engine e
    cdef Py_ssize_t values, k
    cdef const i64[::1] no_ticks = np.empty(0, dtype=np.int64)
    cdef const float64_t[::1] no_values = np.empty(0, dtype=np.float64)
    # no accounts: only the vault's and the fund's slots
    cdef float64_t[::1] col = np.zeros(2, dtype=np.float64)
    cdef float64_t[::1] pos = np.zeros(2, dtype=np.float64)
    cdef float64_t[::1] ep = np.zeros(2, dtype=np.float64)
    cdef float64_t[::1] socialized = np.zeros(2, dtype=np.float64)
    cdef i8[::1] status = np.zeros(2, dtype=np.int8)
    try:
        owners = _engine_init(&e, params, no_ticks, no_values, no_values, no_values, no_values,
                              no_values, col, pos, ep, status, socialized, 0)
        values = e.book.n_snap * 2 * e.book.knots
        return {
            "p": e.p,
            "tiers": {"floors": _copy(e.tiers.floors, e.tiers.n),
                      "rates": _copy(e.tiers.rates, e.tiers.n),
                      "cums": _copy(e.tiers.cums, e.tiers.n),
                      "n": e.tiers.n, "whole": e.tiers.whole},
            "adl": {"policy": e.adl.policy, "ranking": e.adl.ranking,
                    "short_mark_over_entry": e.adl.short_mark_over_entry,
                    "risk_power": e.adl.risk_power},
            "mark": {"method": e.mark.method, "basis.tau_ns": e.mark.basis.tau_ns,
                     "last.tau_ns": e.mark.last.tau_ns},
            "book": {"snap_ts": np.array([e.book.snap_ts[k] for k in range(e.book.n_snap)],
                                         dtype=np.int64),
                     "delta": _copy(e.book.delta, values),
                     "notional": _copy(e.book.notional, values),
                     "knots": e.book.knots, "max_move": e.book.max_move,
                     "half_life_ns": e.book.half_life_ns, "feedback": e.book.feedback,
                     "stress_k": e.book.stress_k},
        }
    finally:
        _free(&e)


def run_engine(const i64[::1] tape_ts, const float64_t[::1] tape_price,
               const float64_t[::1] stream, const float64_t[::1] collateral,
               const float64_t[::1] size, const float64_t[::1] entry, params,
               Py_ssize_t max_events=0):
    """Run the compiled engine on validated arrays.

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

    Returns
    -------
    dict
        ``events``, ``series`` (dicts of arrays), ``collateral``, ``size``, ``entry``,
        ``status`` (final account arrays) and ``scalars``.

    Notes
    -----
    Arguments are assumed valid (``riskengine.engine.run`` checks them). The loop runs
    without the GIL.
    """
    cdef Engine e
    cdef Py_ssize_t n = collateral.shape[0]
    cdef float64_t stats[5]
    col = np.empty(n + 2, dtype=np.float64)
    pos = np.empty(n + 2, dtype=np.float64)
    ep = np.empty(n + 2, dtype=np.float64)
    status = np.empty(n + 2, dtype=np.int8)
    socialized = np.zeros(n + 2, dtype=np.float64)
    # typed before the try: nothing can raise between it and _engine_init's memset
    cdef float64_t[::1] col_v = col
    cdef float64_t[::1] pos_v = pos
    cdef float64_t[::1] ep_v = ep
    cdef i8[::1] st_v = status
    cdef float64_t[::1] soc_v = socialized
    try:
        owners = _engine_init(&e, params, tape_ts, tape_price, stream, collateral, size, entry,
                              col_v, pos_v, ep_v, st_v, soc_v, max_events)
        with nogil:
            _build_index(&e)
            _loop(&e, stats)
        events = log_to_numpy(&e.log, EVENT_COLUMNS)
        series = log_to_numpy(&e.series, SERIES_COLUMNS)
    finally:
        _free(&e)
    scalars = {
        "fund_final": col[n + 1],
        "fund_min": e.fund_min,
        "fund_pos": pos[n + 1],
        "fund_entry": ep[n + 1],
        "vault_col": col[n],
        "vault_pos": pos[n],
        "vault_entry": ep[n],
        "vault_min": e.vault_min,
        "bad_debt": e.bad_debt,
        "ext_cash": e.ext_cash,
        "ext_pos": e.ext_pos,
        "tape_max_drawdown": stats[0] if e.n_ticks else 0.0,
        "sim_max_drawdown": stats[1] if e.n_ticks else 0.0,
        "tape_min": stats[2] if e.n_ticks else INFINITY,
        "sim_min": stats[3] if e.n_ticks else INFINITY,
        "final_mark": e.mark.mark,
        "final_sim_price": e.tape * e.book.m if e.n_ticks else np.nan,
        "max_rounds": int(stats[4]) if e.n_ticks else 0,
        "ticks": int(e.n_ticks),
        "adl_fills": int(e.cum_adl),
        "adl_overshoot": e.adl_overshoot,
    }
    return {
        "events": events,
        "series": series,
        "collateral": col[:n].copy(),
        "size": pos[:n].copy(),
        "entry": ep[:n].copy(),
        "status": status[:n].copy(),
        "scalars": scalars,
        "socialized": socialized[:n].copy(),
    }
