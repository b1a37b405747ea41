"""Plain-Python twin of ``cext/riskengine/_adl.pyx``: who on the opposite side is
auto-deleveraged, in which order, and how much each absorbs.

The policies, the scores and their sources are documented in ``_adl.pyx``. Here: the ranking
score (:func:`adl_score`), the candidates (:func:`adl_gather`), the weights of the weighted
policies (:func:`adl_weight`), the capped pro-rata split (:func:`capped_allocation`) and
leverage draining (:func:`water_filling`), with the same arithmetic in the same order. The engine
(``_engine.py``) applies an allocation fill by fill.
"""
from __future__ import annotations

import math

import numpy as np

from riskengine.codes import AdlPolicy, AdlRanking, Status
from riskengine.params import EngineParams
from riskengine.tolerances import WATER_FILLING_STEPS


def adl_score(ranking: int, pos: float, entry: float, mark: float, equity: float, wallet: float,
              mm: float, params: EngineParams) -> float:
    """ADL ranking score of a position in profit (higher is deleveraged first).

    ``pos``, ``entry`` (and so the PnL ``U = q (M - e)`` and notional ``|q| M``) are the
    position's; ``equity`` (account value, ``WB + U_account``), ``wallet`` (``WB``) and ``mm``
    are its margin account's (issue 12 step 2: every figure the venue takes from the account;
    for a one-position account ``equity = wallet + U`` and ``mm = MM(|q| M)``).

    * ``PNL_LEVERAGE`` (BitMEX "Auto-Deleveraging", Bybit ADL; reference §3): PnL% x effective
      leverage with ``PnL% = U / (|q| e)`` and effective leverage ``|q| M / E``.
    * ``HL_INDEX`` (Hyperliquid "Auto-deleveraging" [DOC S38]; reference §2.5):
      ``(mark / entry) x (notional / account value)``; for shorts the side-adjusted
      ``entry / mark`` unless ``adl_short_mark_over_entry`` keeps the formula as written.
    * ``BINANCE_LEVERAGE_PNL`` (Binance ADL FAQ [DOC S2, S27]; reference §1.6):
      ``max(0, U) / max(1, WB) x MM / (WB + U_account)``.
    """
    upnl = pos * (mark - entry)
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
    wb = wallet if wallet > 1.0 else 1.0
    pnl = upnl if upnl > 0.0 else 0.0
    return (pnl / wb) * (mm / equity)



def adl_gather(params: EngineParams, side: float, mark: float, pos: np.ndarray, entry: np.ndarray,
               equity: np.ndarray, wallet: np.ndarray, mm: np.ndarray, status: np.ndarray) -> list[int]:
    """The ADL candidates against a liquidated position of ``side``: positions on the other side
    in profit at ``mark`` whose margin account is ACTIVE with positive equity, in index order,
    or for the ``QUEUE`` policy in queue order (highest :func:`adl_score` first, ties by lower
    index). ``pos`` and ``entry`` are the positions'; ``equity``, ``wallet``, ``mm`` and
    ``status`` their margin accounts' (one entry per position)."""
    upnl = pos * (mark - entry)
    mask = (status == Status.ACTIVE) & (pos * side < 0) & (upnl > 0) & (equity > 0)
    ids = [int(i) for i in np.flatnonzero(mask)]
    if params.adl_policy == AdlPolicy.QUEUE:
        scores = {
            i: adl_score(params.adl_ranking, float(pos[i]), float(entry[i]), mark, float(equity[i]),
                         float(wallet[i]), float(mm[i]), params)
            for i in ids
        }
        ids.sort(key=lambda i: (-scores[i], i))
    return ids


def adl_weight(policy: int, pos: float, entry: float, mark: float, equity: float, power: float) -> float:
    """Allocation weight of a winning position under a weighted ADL policy (see ``_adl.pyx``):
    size, PnL and notional the position's, ``equity`` (by equity; the leverage of the
    risk-aware weights) its margin account's."""
    if policy == AdlPolicy.PRO_RATA:
        return abs(pos)
    upnl = pos * (mark - entry)
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
