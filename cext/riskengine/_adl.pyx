"""ADL policies: who on the opposite side is deleveraged, in which order.

Candidates are the ACTIVE accounts on the side opposite the liquidated position that are in
profit at mark and have positive equity (Hyperliquid "Auto-deleveraging": "opposite-side users in profit"; Binance,
BitMEX and Bybit rank only profitable positions first). Policies:

* ``QUEUE``: highest score first, ties by lower account id; each account is closed as far as
  needed before the next is touched (Binance, Hyperliquid, BitMEX, Bybit).
* weighted policies: the order is split in proportion to a weight, no account beyond its
  cap (its size, and the size that keeps its equity >= 0), the excess of capped accounts
  spread over the others (:c:func:`capped_allocation`). Closing at one price, each account's
  haircut against the mark is proportional to its size, so these are Chitra's haircut rules
  (Chitra 2025, reference §4.1): ``PRO_RATA`` by size; ``PRO_RATA_EQUITY`` by positive
  equity (his pro-rata: the same fraction of every winner's equity); ``PRO_RATA_PNL`` by
  positive unrealized PnL (v3: principal protected); ``LEVERED_PRO_RATA`` by leverage x
  equity = notional (LPR); ``RISK_AWARE`` by leverage^(1+p) x equity = notional x leverage^p,
  capped at the whole equity (RAP with a power risk model; ``p = 0`` is LPR).
* ``WATER_FILLING``: leverage draining (Campbell, Hey, Moallemi, Nutz 2026, reference §4.2):
  the most levered accounts are reduced first until every reduced account sits at one common
  leverage, the minimum possible maximum leverage (:c:func:`water_filling`).
* ``SOCIALIZE`` closes nobody: the engine charges a deficit left after the fund to every open
  position in proportion to its size (Drift's market-wide socialization, reference §3).

Scores (reference §1.6, §2.5, §3, worked example E16):

* ``PNL_LEVERAGE`` — BitMEX/Bybit: ``PnL% x effective leverage``, ``PnL% = U / (|q| e)``,
  effective leverage ``|q| M / E``;
* ``HL_INDEX`` — Hyperliquid: ``(M / e) x (|q| M / E)``; for shorts the side-adjusted
  ``e / M`` unless ``short_mark_over_entry`` keeps the formula as written (a documented,
  switchable choice: the docs' text vs what the 2025-10-10 fills suggest);
* ``BINANCE_LEVERAGE_PNL`` — Binance: ``max(0, U) / max(1, WB) x MM / (WB + U)``.

The engine applies the allocation (``_engine.pyx``) fill by fill, or for pro-rata by size,
levered pro-rata and pro-rata by equity in lazy bursts (``_lazy_order``: one factor per order, each winner touched
once per cascade round; ``docs/design/weighted-adl.md``), and keeps every ADL'd account's
equity at or above zero; the weighted policies and water-filling log one fill row per
winner per series interval (``riskengine.reference``, "Logging ADL fills"), since their every
order fills every winner. The plain-Python twins are in ``riskengine.reference``.
"""

import numpy as np

from riskengine import tolerances as _tol
from riskengine._margin cimport Tiers, maintenance_margin
from riskengine._typedefs cimport (
    ADL_QUEUE, RANK_HL_INDEX, RANK_PNL_LEVERAGE, ST_ACTIVE, float64_t, i64, i8,
)
from riskengine._index cimport KeyHeap, heap_free, heap_init, heap_pop, heapify_from

from libc.math cimport INFINITY, fabs, pow
from libc.stdlib cimport qsort

from riskengine._typedefs cimport (
    ADL_LEVERED_PRO_RATA, ADL_PRO_RATA, ADL_PRO_RATA_EQUITY, ADL_PRO_RATA_PNL,
)

# bisection steps of the water-filling level; shared with the reference engine, read at import
cdef int WATER_FILLING_STEPS = _tol.WATER_FILLING_STEPS


def shared_tolerances():
    """The shared tolerances this module compiled in, by name (``tests/test_tolerances.py``
    checks them against ``riskengine.tolerances.SHARED``)."""
    return {"WATER_FILLING_STEPS": WATER_FILLING_STEPS}


cdef float64_t adl_score(const AdlParams* p, float64_t pos, float64_t col, float64_t entry,
                         float64_t mark) noexcept nogil:
    """The ADL score of a one-position account: :c:func:`adl_score_account` with its equity
    ``col + U``, its wallet ``col`` and (for Binance's LeveragePnl, the one ranking that reads
    it) its maintenance margin."""
    cdef float64_t mm = 0.0
    if p.ranking != RANK_PNL_LEVERAGE and p.ranking != RANK_HL_INDEX:
        mm = maintenance_margin(p.tiers, fabs(pos) * mark)
    return adl_score_account(p, pos, entry, mark, col + pos * (mark - entry), col, mm)


cdef float64_t adl_score_account(const AdlParams* p, float64_t pos, float64_t entry,
                                 float64_t mark, float64_t equity, float64_t wallet,
                                 float64_t mm) noexcept nogil:
    """:c:func:`adl_score` of a position of a cross account with several (issue 12 step 2):
    size, entry, PnL and notional the position's; ``equity`` (account value), ``wallet``
    (``WB``) and ``mm`` its margin account's (Binance LeveragePnl [DOC S2, S27], Hyperliquid
    [DOC S38]). With one position (``equity = wallet + U``, ``mm = MM(|q| M)``) it is
    :c:func:`adl_score`."""
    cdef float64_t upnl = pos * (mark - entry)
    cdef float64_t notional, ratio, wb, pnl
    if equity <= 0.0:
        return 0.0
    notional = fabs(pos) * mark
    if p.ranking == RANK_PNL_LEVERAGE:
        return (upnl / (fabs(pos) * entry)) * (notional / equity)
    if p.ranking == RANK_HL_INDEX:
        if pos > 0 or p.short_mark_over_entry:
            ratio = mark / entry
        else:
            ratio = entry / mark
        return ratio * (notional / equity)
    wb = wallet if wallet > 1.0 else 1.0
    pnl = upnl if upnl > 0.0 else 0.0
    return (pnl / wb) * (mm / equity)


cdef float64_t adl_weight_account(const AdlParams* p, float64_t pos, float64_t entry,
                                  float64_t mark, float64_t equity) noexcept nogil:
    """:c:func:`adl_weight` of a position whose margin account's equity is ``equity`` (size,
    PnL and notional the position's)."""
    cdef float64_t upnl, notional
    if p.policy == ADL_PRO_RATA:
        return fabs(pos)
    upnl = pos * (mark - entry)
    if p.policy == ADL_PRO_RATA_EQUITY:
        return equity
    if p.policy == ADL_PRO_RATA_PNL:
        return upnl
    notional = fabs(pos) * mark
    if p.policy == ADL_LEVERED_PRO_RATA:
        return notional
    return notional * pow(notional / equity, p.risk_power)


cdef Py_ssize_t adl_gather(const AdlParams* p, float64_t side, float64_t mark,
                           const float64_t* col, const float64_t* pos, const float64_t* entry,
                           const i8* status, const i64* members, Py_ssize_t n, i64* ids_out,
                           float64_t* scores_out) noexcept nogil:
    """Write the candidates' ids (ascending) and, for a queue, their scores; return the count.

    The accounts looked at are ``members[0 .. n)`` (ascending ids: the accounts of one
    instrument), or ``0 .. n - 1`` when ``members`` is NULL (every account is in it). The scan
    has no branch per account (every id is written, the count advances by the test): weighted
    policies gather on every ADL order, and which side an account is on is a coin flip the
    branch predictor loses."""
    cdef Py_ssize_t i, j, k = 0
    cdef float64_t upnl
    if members == NULL:
        for i in range(n):
            upnl = pos[i] * (mark - entry[i])
            ids_out[k] = i
            k += ((status[i] == ST_ACTIVE) & (pos[i] * side < 0.0) & (upnl > 0.0)
                  & (col[i] + upnl > 0.0))
    else:
        for j in range(n):
            i = members[j]
            upnl = pos[i] * (mark - entry[i])
            ids_out[k] = i
            k += ((status[i] == ST_ACTIVE) & (pos[i] * side < 0.0) & (upnl > 0.0)
                  & (col[i] + upnl > 0.0))
    if p.policy == ADL_QUEUE:
        for i in range(k):
            j = ids_out[i]
            scores_out[i] = adl_score(p, pos[j], col[j], entry[j], mark)
    return k


cdef float64_t adl_weight(const AdlParams* p, float64_t pos, float64_t col, float64_t entry,
                          float64_t mark) noexcept nogil:
    cdef float64_t upnl, equity, notional
    if p.policy == ADL_PRO_RATA:
        return fabs(pos)
    upnl = pos * (mark - entry)
    equity = col + upnl
    if p.policy == ADL_PRO_RATA_EQUITY:
        return equity
    if p.policy == ADL_PRO_RATA_PNL:
        return upnl
    notional = fabs(pos) * mark
    if p.policy == ADL_LEVERED_PRO_RATA:
        return notional
    return notional * pow(notional / equity, p.risk_power)


cdef int _cmp_ratio(const void* x, const void* y) noexcept nogil:
    cdef const RatioIndex* a = <const RatioIndex*>x
    cdef const RatioIndex* b = <const RatioIndex*>y
    if a.ratio < b.ratio:
        return -1
    if a.ratio > b.ratio:
        return 1
    return (a.idx > b.idx) - (a.idx < b.idx)


cdef inline bint _caps_fall_short(const float64_t* caps, Py_ssize_t n, float64_t total,
                                  float64_t* out) noexcept nogil:
    """When the caps add up to no more than ``total``, everyone takes its cap."""
    cdef float64_t cap_sum = 0.0
    cdef Py_ssize_t j
    for j in range(n):
        cap_sum += caps[j]
    if cap_sum > total:
        return False
    for j in range(n):
        out[j] = caps[j]
    return True


cdef void capped_allocation(const float64_t* weights, const float64_t* caps, Py_ssize_t n,
                            float64_t total, float64_t* out, RatioIndex* order,
                            float64_t* suffix) noexcept nogil:
    """Split ``total`` by ``weights`` with per-item ``caps``; the water level ``tau`` solves
    ``sum min(cap, tau w) = total``. Everyone gets its cap when the caps sum below ``total``.
    When the plain level ``total / sum w`` caps nobody (an ADL order small against the winners'
    positions: the common case) that is ``tau``, found in O(n). Otherwise items go in order of
    ``cap / weight``; the first that ``tau`` does not cap fixes ``tau`` from directly
    accumulated sums (``suffix`` holds n + 1), so nothing cancels."""
    cdef float64_t capped = 0.0, tau, share, weight_sum = 0.0
    cdef Py_ssize_t j, k, m, jm
    if _caps_fall_short(caps, n, total, out):
        return
    for j in range(n):
        weight_sum += weights[j]
    if weight_sum > 0.0:
        tau = total / weight_sum
        j = 0
        while j < n and caps[j] > tau * weights[j]:
            j += 1
        if j == n:
            for j in range(n):
                out[j] = tau * weights[j]
            return
    for j in range(n):
        out[j] = 0.0
        order[j].ratio = caps[j] / weights[j] if weights[j] > 0.0 else INFINITY
        order[j].idx = j
    qsort(order, n, sizeof(RatioIndex), _cmp_ratio)
    suffix[n] = 0.0
    k = n
    while k > 0:
        k -= 1
        suffix[k] = suffix[k + 1] + weights[order[k].idx]
    for k in range(n):
        j = order[k].idx
        if suffix[k] <= 0.0:
            break
        tau = (total - capped) / suffix[k]
        if caps[j] <= tau * weights[j]:
            out[j] = caps[j]
            capped += caps[j]
            continue
        for m in range(k, n):
            jm = order[m].idx
            share = tau * weights[jm]
            out[jm] = share if share < caps[jm] else caps[jm]
        break


cdef float64_t _sizes_at(const float64_t* notional, const float64_t* equity,
                         const float64_t* caps, const i64* live, Py_ssize_t n_live,
                         float64_t mark, float64_t level, float64_t* out,
                         Py_ssize_t* zeros, Py_ssize_t* capped) noexcept nogil:
    """``x(level)`` of the ``live`` items into ``out``; their sum, in index order, and how many
    are at 0 and how many at a (positive) cap."""
    cdef Py_ssize_t t, z = 0, c = 0
    cdef i64 j
    cdef float64_t x, total = 0.0
    for t in range(n_live):
        j = live[t]
        x = (notional[j] - level * equity[j]) / mark
        if x < 0.0:
            x = 0.0
        elif x > caps[j]:
            x = caps[j]
            if x > 0.0:
                c += 1
        if x == 0.0:
            z += 1
        out[j] = x
        total += x
    zeros[0] = z
    capped[0] = c
    return total


cdef void water_filling(const float64_t* notional, const float64_t* equity,
                        const float64_t* caps, Py_ssize_t n,
                        float64_t mark, float64_t total, float64_t* out,
                        float64_t* scratch, i64* live) noexcept nogil:
    """Sizes that bring every reduced account to one common leverage ``L`` measured at mark on
    its equity before the haircut, ``x(L) = clamp((N - L E) / M, 0, cap)``: bisection on ``L``
    between 0 and the highest leverage, then the bracket ``[lo, hi]`` interpolated so the sizes
    add up to ``total``; ``scratch`` and ``live`` hold n.

    Every ADL order runs this over every winner, so two things keep it short. ``x`` does not
    increase with ``L``, in floating point too, so an item at 0 when ``lo`` moves up stays at 0
    for every later level: it leaves ``live`` (sums skip only exact zeros, which changes no
    bit). And the bisection stops as soon as as many items are at 0, and as many at their cap,
    at ``lo`` as at ``hi``: then no item changes regime inside the bracket, every ``x`` is
    linear or constant on it, and the interpolation is exact (at most ``WATER_FILLING_STEPS``
    steps). ``riskengine.reference.water_filling`` is the same algorithm over every item."""
    cdef float64_t lo = 0.0, hi = 0.0, lev, mid, f, f_lo, f_hi, theta
    cdef Py_ssize_t j, t, kept, n_live = n, dropped = 0
    cdef Py_ssize_t z, c, z_lo, c_lo, z_hi, c_hi
    cdef int step
    if _caps_fall_short(caps, n, total, out):
        return
    for j in range(n):
        live[j] = j
        lev = notional[j] / equity[j]
        if lev > hi:
            hi = lev
    _sizes_at(notional, equity, caps, live, n_live, mark, lo, out, &z_lo, &c_lo)
    _sizes_at(notional, equity, caps, live, n_live, mark, hi, out, &z_hi, &c_hi)
    for step in range(WATER_FILLING_STEPS):
        if z_lo == z_hi and c_lo == c_hi:
            break
        mid = 0.5 * (lo + hi)
        f = _sizes_at(notional, equity, caps, live, n_live, mark, mid, out, &z, &c)
        if f >= total:
            lo = mid
            kept = 0
            for t in range(n_live):
                if out[live[t]] != 0.0:
                    live[kept] = live[t]
                    kept += 1
            dropped += n_live - kept
            n_live = kept
            z_lo = dropped
            c_lo = c
        else:
            hi = mid
            z_hi = dropped + z
            c_hi = c
    for j in range(n):
        out[j] = 0.0
        scratch[j] = 0.0
    f_lo = _sizes_at(notional, equity, caps, live, n_live, mark, lo, scratch, &z, &c)
    f_hi = _sizes_at(notional, equity, caps, live, n_live, mark, hi, out, &z, &c)
    theta = (total - f_hi) / (f_lo - f_hi) if f_lo > f_hi else 1.0
    for j in range(n):
        out[j] = out[j] + theta * (scratch[j] - out[j])


def py_capped_allocation(weights, caps, double total):
    """Capped proportional split (test wrapper of the kernel)."""
    cdef const float64_t[::1] w = np.ascontiguousarray(weights, dtype=np.float64)
    cdef const float64_t[::1] c = np.ascontiguousarray(caps, dtype=np.float64)
    cdef Py_ssize_t n = w.shape[0]
    out = np.zeros(n, dtype=np.float64)
    cdef float64_t[::1] o = out
    scratch = np.zeros(n, dtype=[("ratio", np.float64), ("idx", np.intp)])
    suffix = np.zeros(n + 1, dtype=np.float64)
    cdef RatioIndex[::1] s = scratch
    cdef float64_t[::1] sf = suffix
    if n:
        capped_allocation(&w[0], &c[0], n, total, &o[0], &s[0], &sf[0])
    return out


def py_water_filling(notional, equity, caps, double mark, double total):
    """Leverage-draining split (test wrapper of the kernel)."""
    cdef const float64_t[::1] nv = np.ascontiguousarray(notional, dtype=np.float64)
    cdef const float64_t[::1] ev = np.ascontiguousarray(equity, dtype=np.float64)
    cdef const float64_t[::1] cv = np.ascontiguousarray(caps, dtype=np.float64)
    cdef Py_ssize_t n = nv.shape[0]
    out = np.zeros(n, dtype=np.float64)
    scratch = np.zeros(n, dtype=np.float64)
    live = np.zeros(n, dtype=np.int64)
    cdef float64_t[::1] o = out
    cdef float64_t[::1] sc = scratch
    cdef i64[::1] lv = live
    if n:
        water_filling(&nv[0], &ev[0], &cv[0], n, mark, total, &o[0], &sc[0], &lv[0])
    return out


def py_adl_queue(double side, double mark, sizes, entries, collaterals, int ranking,
                 floors=(0.0,), rates=(0.0,), bint short_mark_over_entry=False):
    """Queue order and scores of the ADL candidates against a liquidated position of ``side``.

    Parameters
    ----------
    side : float
        Sign of the liquidated position (+1 long, -1 short).
    mark : float
        Mark price.
    sizes, entries, collaterals : array_like
        The accounts' signed sizes, entry prices and collateral (wallet balance).
    ranking : int
        :class:`riskengine.codes.AdlRanking`.
    floors, rates : array_like
        Margin tiers (used by the Binance score).

    Returns
    -------
    (ids, scores) : ndarray of int64, ndarray of float64
        Candidates in queue order and their scores.
    """
    from riskengine.params import maintenance_deductions

    cdef const float64_t[::1] q = np.ascontiguousarray(sizes, dtype=np.float64)
    cdef const float64_t[::1] e = np.ascontiguousarray(entries, dtype=np.float64)
    cdef const float64_t[::1] c = np.ascontiguousarray(collaterals, dtype=np.float64)
    cdef const float64_t[::1] f = np.ascontiguousarray(floors, dtype=np.float64)
    cdef const float64_t[::1] r = np.ascontiguousarray(rates, dtype=np.float64)
    cdef const float64_t[::1] cums = maintenance_deductions(np.asarray(f), np.asarray(r))
    cdef i8[::1] status = np.full(q.shape[0], ST_ACTIVE, dtype=np.int8)
    cdef i64[::1] ids = np.empty(q.shape[0], dtype=np.int64)
    cdef float64_t[::1] scores = np.empty(q.shape[0], dtype=np.float64)
    cdef Tiers tiers
    cdef AdlParams p
    cdef KeyHeap heap
    cdef Py_ssize_t k, j
    cdef float64_t key
    cdef i64 idx, ver
    tiers.floors = &f[0]
    tiers.rates = &r[0]
    tiers.cums = &cums[0]
    tiers.n = f.shape[0]
    tiers.whole = False
    p.policy = ADL_QUEUE
    p.ranking = ranking
    p.short_mark_over_entry = short_mark_over_entry
    p.tiers = &tiers
    k = adl_gather(&p, side, mark, &c[0], &q[0], &e[0], &status[0], NULL, q.shape[0], &ids[0],
                   &scores[0])
    order = np.empty(k, dtype=np.int64)
    out_scores = np.empty(k, dtype=np.float64)
    heap_init(&heap, k)
    try:
        heapify_from(&heap, &scores[0], &ids[0], &ids[0], k)
        for j in range(k):
            heap_pop(&heap, &key, &idx, &ver)
            order[j] = idx
            out_scores[j] = key
    finally:
        heap_free(&heap)
    return order, out_scores
