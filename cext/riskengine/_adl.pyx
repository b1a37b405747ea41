"""ADL policies: who on the opposite side is deleveraged, in which order.

Candidates are the ACTIVE accounts on the side opposite the liquidated position that are in
profit at mark (Hyperliquid "Auto-deleveraging": "opposite-side users in profit"; Binance,
BitMEX and Bybit rank only profitable positions first). Policies:

* ``QUEUE``: highest score first, ties by lower account id; each account is closed as far as
  needed before the next is touched (Binance, Hyperliquid, BitMEX, Bybit).
* ``PRO_RATA``: every candidate gives the same fraction of its size (Chitra 2025 §"pro-rata";
  reference §4.1).

Scores (reference §1.6, §2.5, §3, worked example E16):

* ``PNL_LEVERAGE`` — BitMEX/Bybit: ``PnL% x effective leverage``, ``PnL% = U / (|q| e)``,
  effective leverage ``|q| M / E``;
* ``HL_INDEX`` — Hyperliquid: ``(M / e) x (|q| M / E)``; for shorts the side-adjusted
  ``e / M`` unless ``short_mark_over_entry`` keeps the formula as written (a documented,
  switchable choice: the docs' text vs what the 2025-10-10 fills suggest);
* ``BINANCE_LEVERAGE_PNL`` — Binance: ``max(0, U) / max(1, WB) x MM / (WB + U)``.

The engine applies the allocation (``_engine.pyx``) and keeps every ADL'd account's equity
at or above zero. The plain-Python twin is ``riskengine.reference.adl_score``.
"""

import numpy as np

from riskengine._margin cimport Tiers, maintenance_margin
from riskengine._typedefs cimport (
    ADL_QUEUE, RANK_HL_INDEX, RANK_PNL_LEVERAGE, ST_ACTIVE, float64_t, i64, i8,
)
from riskengine._index cimport KeyHeap, heap_free, heap_init, heap_pop, heapify_from

from libc.math cimport fabs


cdef float64_t adl_score(const AdlParams* p, float64_t pos, float64_t col, float64_t entry,
                         float64_t mark) noexcept nogil:
    cdef float64_t upnl = pos * (mark - entry)
    cdef float64_t equity = col + upnl
    cdef float64_t notional, ratio, mm, wallet, pnl
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
    mm = maintenance_margin(p.tiers, notional)
    wallet = col if col > 1.0 else 1.0
    pnl = upnl if upnl > 0.0 else 0.0
    return (pnl / wallet) * (mm / equity)


cdef Py_ssize_t adl_gather(const AdlParams* p, float64_t side, float64_t mark,
                           const float64_t* col, const float64_t* pos, const float64_t* entry,
                           const i8* status, Py_ssize_t n, i64* ids_out,
                           float64_t* scores_out) noexcept nogil:
    """Write the candidates' ids (ascending) and, for a queue, their scores; return the count."""
    cdef Py_ssize_t i, k = 0
    for i in range(n):
        if status[i] != ST_ACTIVE or pos[i] * side >= 0.0:
            continue
        if pos[i] * (mark - entry[i]) <= 0.0:
            continue
        ids_out[k] = i
        if p.policy == ADL_QUEUE:
            scores_out[k] = adl_score(p, pos[i], col[i], entry[i], mark)
        k += 1
    return k


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
    p.policy = ADL_QUEUE
    p.ranking = ranking
    p.short_mark_over_entry = short_mark_over_entry
    p.tiers = &tiers
    k = adl_gather(&p, side, mark, &c[0], &q[0], &e[0], &status[0], q.shape[0], &ids[0], &scores[0])
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
