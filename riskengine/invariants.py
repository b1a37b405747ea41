"""The engine invariants of DESIGN.md, checked on a finished run.

``run(..., check_invariants=True)`` (the engine's debug mode) and the test suite call
:func:`violations`; an empty list means every invariant held.
"""

from __future__ import annotations

import numpy as np

from riskengine.codes import AdlPolicy, EventKind
from riskengine.params import EngineParams
from riskengine.runlog import RawRun
from riskengine.scenario import Population

#: relative tolerance of the conservation checks (DESIGN.md: 1e-9 relative)
REL_TOL = 1e-9


def money_total(raw: RawRun) -> float:
    """``sum(c - q e) + fund + vault + external market - bad debt`` after the run.

    With every position's counterparty in the ledger (sum of positions is zero) this is the
    total equity of the system at any common price.
    """
    s = raw.scalars
    accounts = float(np.sum(raw.collateral - raw.size * raw.entry))
    vault = s["vault_col"] - s["vault_pos"] * s["vault_entry"]
    fund = s["fund_final"] - s["fund_pos"] * s["fund_entry"]
    return accounts + fund + vault + s["ext_cash"] - s["bad_debt"]


def violations(raw: RawRun, population: Population, params: EngineParams) -> list[str]:
    """Every invariant a run broke, as readable lines (empty if none).

    * money conservation: :func:`money_total` equals the initial collateral, fund and vault;
    * position conservation: population + vault + fund + external market positions sum to zero, and
      each ADL'd order's fills match the size closed on the liquidated side (weighted policies,
      whose fill rows sum a series interval's fills: each interval's fills match its orders);
    * an account without a position at the start never pays (its collateral is untouched and
      it appears in no event);
    * ADL never leaves an ADL'd account with negative equity;
    * no account without a position ends with negative collateral (an unpaid debt). An open
      position may sit on negative collateral when its unrealized profit covers it, e.g.
      after ADL closed part of it beyond its entry price.
    """
    out: list[str] = []
    s = raw.scalars
    gross = float(np.sum(np.abs(population.size) * population.entry))
    start = float(np.sum(population.collateral)) + params.fund_initial + params.vault_initial
    scale = abs(start) + gross + 1.0
    total = money_total(raw)
    if abs(total - start) > REL_TOL * scale:
        out.append(f"money not conserved: start {start!r}, end {total!r} (diff {total - start:.6g})")
    net = float(np.sum(raw.size)) + s["vault_pos"] + s["fund_pos"] + s["ext_pos"]
    size_scale = float(np.sum(np.abs(population.size))) + 1e-12
    if abs(net) > REL_TOL * size_scale:
        out.append(f"positions not conserved: population + vault + market = {net!r}")
    ev = raw.events
    kind = ev["kind"]
    flat = np.flatnonzero(population.size == 0)
    if len(flat):
        touched = np.isin(ev["account"], flat)
        if touched.any():
            out.append(f"{int(touched.sum())} events touch accounts that had no position (first: account {int(ev['account'][touched][0])})")
        changed = flat[raw.collateral[flat] != population.collateral[flat]]
        if len(changed):
            out.append(f"collateral of {len(changed)} flat accounts changed (first: account {int(changed[0])})")
    adl = kind == EventKind.ADL_FILL
    if adl.any():
        eq = ev["equity_after"][adl]
        floor = -REL_TOL * (ev["notional"][adl] + 1.0)
        bad = np.flatnonzero(eq < floor)
        if len(bad):
            out.append(f"{len(bad)} ADL fills left negative equity (first: {eq[bad[0]]!r})")
        merged = AdlPolicy(params.adl_policy).merges_fills
        t0 = int(raw.series["ts"][0]) if len(raw.series["ts"]) else 0  # the first tick's time
        out += _adl_matches(ev, (ev["ts"] - t0) // params.series_interval_ns if merged else None)
    owing = (raw.collateral < 0) & (raw.size == 0)
    if owing.any():
        out.append(f"{int(owing.sum())} flat accounts end with negative collateral (first: account {int(np.flatnonzero(owing)[0])})")
    return out


def portfolio_violations(raw: RawRun, owner: np.ndarray, collateral: np.ndarray, instrument: np.ndarray,
                         size: np.ndarray, entry: np.ndarray, params: EngineParams) -> list[str]:
    """Every invariant a portfolio run broke (:func:`violations`, across instruments), as
    readable lines (empty if none).

    The arguments are the run's margin accounts at the start, one entry each: the user account
    (``owner``), collateral, the instrument of its position (-1: none) and the position's size
    and entry (0 without one); ``params`` the design's (any instrument's entry).

    * money conservation: the margin accounts' ``c - q e``, the fund's and the vault's cash less
      their inventories at entry in every instrument, the external market's cash in every
      instrument, less bad debt, equal the initial collateral, fund and vault;
    * position conservation per instrument: the margin accounts' positions in it, the vault's,
      the fund's and the external market's sum to zero; ADL fills match the orders they fill;
    * a margin account without a position at the start keeps its collateral, and a user account
      without one appears in no event;
    * ADL never leaves an ADL'd account with negative equity; no margin account without a
      position ends with negative collateral.
    """
    out: list[str] = []
    s, per = raw.scalars, raw.by_instrument
    if per is None:
        return ["the run reports no per-instrument figures (by_instrument)"]
    n_inst = len(per["ext_pos"])
    slot = np.where(instrument >= 0, instrument, 0).astype(np.int64)
    gross = float(np.sum(np.abs(size) * entry))
    start = float(np.sum(collateral)) + params.fund_initial + params.vault_initial
    total = (float(np.sum(raw.collateral - raw.size * raw.entry))
             + s["fund_final"] - float(np.sum(per["fund_pos"] * per["fund_entry"]))
             + s["vault_col"] - float(np.sum(per["vault_pos"] * per["vault_entry"]))
             + float(np.sum(per["ext_cash"])) - s["bad_debt"])
    if abs(total - start) > REL_TOL * (abs(start) + gross + 1.0):
        out.append(f"money not conserved: start {start!r}, end {total!r} (diff {total - start:.6g})")
    net = np.bincount(slot, raw.size, minlength=n_inst) + per["vault_pos"] + per["fund_pos"] + per["ext_pos"]
    size_scale = np.bincount(slot, np.abs(size), minlength=n_inst) + 1e-12
    bad = np.flatnonzero(np.abs(net) > REL_TOL * size_scale)
    if len(bad):
        k = int(bad[0])
        out.append(f"positions in instrument {k} not conserved: accounts + vault + fund + market = {net[k]!r}")
    ev = raw.events
    flat = np.flatnonzero(size == 0)
    changed = flat[raw.collateral[flat] != collateral[flat]]
    if len(changed):
        out.append(f"collateral of {len(changed)} margin accounts without a position changed "
                   f"(first: margin account {int(changed[0])})")
    idle = np.setdiff1d(np.unique(owner), np.unique(owner[size != 0]))
    touched = np.isin(ev["account"], idle)
    if touched.any():
        out.append(f"{int(touched.sum())} events touch accounts that had no position "
                   f"(first: account {int(ev['account'][touched][0])})")
    adl = ev["kind"] == EventKind.ADL_FILL
    if adl.any():
        eq = ev["equity_after"][adl]
        bad = np.flatnonzero(eq < -REL_TOL * (ev["notional"][adl] + 1.0))
        if len(bad):
            out.append(f"{len(bad)} ADL fills left negative equity (first: {eq[bad[0]]!r})")
        t0 = int(raw.series["ts"][0]) if len(raw.series["ts"]) else 0
        out += _adl_matches(ev, (ev["ts"] - t0) // params.series_interval_ns
                            if AdlPolicy(params.adl_policy).merges_fills else None)
    owing = (raw.collateral < 0) & (raw.size == 0)
    if owing.any():
        out.append(f"{int(owing.sum())} margin accounts without a position end with negative collateral "
                   f"(first: margin account {int(np.flatnonzero(owing)[0])})")
    return out


def _adl_matches(ev: dict[str, np.ndarray], interval: np.ndarray | None) -> list[str]:
    """ADL fills against the sizes closed on the liquidated side: the fills of one order come
    just before its ADL_LIQUIDATION row. With merged fill rows (weighted policies) a row sums
    the fills of a series interval, so the fills and orders of each ``interval`` (per event)
    are matched instead."""
    kind = ev["kind"]
    adl = (kind == EventKind.ADL_FILL) | (kind == EventKind.ADL_LIQUIDATION)
    if interval is not None:
        keys, group = np.unique(interval[adl], return_inverse=True)
        is_fill = kind[adl] == EventKind.ADL_FILL
        size = ev["size"][adl]
        fills = np.bincount(group, weights=np.where(is_fill, size, 0.0), minlength=len(keys))
        orders = np.bincount(group, weights=np.where(is_fill, 0.0, size), minlength=len(keys))
        scale = np.bincount(group, weights=np.where(is_fill, 0.0, np.abs(size)), minlength=len(keys))
        bad = np.flatnonzero(np.abs(fills + orders) > 1e-9 * (scale + 1e-12))
        if len(bad):
            k = bad[0]
            return [f"ADL orders in series interval {int(keys[k])} closed {orders[k]!r} against fills of {fills[k]!r}"]
        return []
    fills = 0.0
    for j in np.flatnonzero(adl):
        if kind[j] == EventKind.ADL_FILL:
            fills += ev["size"][j]
        else:
            if abs(fills + ev["size"][j]) > 1e-9 * (abs(ev["size"][j]) + 1e-12):
                return [f"ADL order at event {j} closed {ev['size'][j]!r} against fills of {fills!r}"]
            fills = 0.0
    return []
