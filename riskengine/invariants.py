"""The engine invariants of DESIGN.md, checked on a finished run.

``run(..., check_invariants=True)`` (the engine's debug mode) and the test suite call
:func:`violations`; an empty list means every invariant held. A portfolio run (several
instruments, margin accounts with one or several positions;
:func:`riskengine.reference.run_portfolio`) is checked by :func:`portfolio_violations`: money
conserved across instruments, positions conserved per instrument, and the same account-level
checks per margin account.
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

    With ``raw.by_instrument`` (a portfolio run) the vaults' and the funds' inventories and the
    external market are summed over instruments (the scalars ``fund_final`` and ``vault_col``
    are already every fund's and vault's cash); with one instrument that is the same number.
    With ``raw.positions_size`` (every position of a portfolio run, several per cross account)
    the accounts' part is ``sum(c) - sum(q e)`` over the positions.
    """
    s = raw.scalars
    if raw.positions_size is not None:
        accounts = float(np.sum(raw.collateral)) - float(np.sum(raw.positions_size * raw.positions_entry))
    else:
        accounts = float(np.sum(raw.collateral - raw.size * raw.entry))
    by = raw.by_instrument
    if by is None:
        vault = s["vault_col"] - s["vault_pos"] * s["vault_entry"]
        fund = s["fund_final"] - s["fund_pos"] * s["fund_entry"]
        return accounts + fund + vault + s["ext_cash"] - s["bad_debt"]
    vault = s["vault_col"]
    fund = s["fund_final"]
    external = 0.0
    for k in range(len(by["ext_cash"])):
        vault -= float(by["vault_pos"][k]) * float(by["vault_entry"][k])
        fund -= float(by["fund_pos"][k]) * float(by["fund_entry"][k])
        external += float(by["ext_cash"][k])
    return accounts + fund + vault + external - s["bad_debt"]


def ledger_counts(raw: RawRun) -> tuple[int, int]:
    """How many insurance funds and backstop vaults a run had (each starts with the design's
    balance): from ``by_instrument``'s ``fund_group`` and ``vault_group`` (1 and 1 without them)."""
    by = raw.by_instrument
    if by is None or "fund_group" not in by or not len(by["fund_group"]):
        return 1, 1
    return int(np.max(by["fund_group"])) + 1, int(np.max(by["vault_group"])) + 1


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
    out = _money(raw, population.collateral, population.size, population.entry, params)
    s = raw.scalars
    net = float(np.sum(raw.size)) + s["vault_pos"] + s["fund_pos"] + s["ext_pos"]
    size_scale = float(np.sum(np.abs(population.size))) + 1e-12
    if abs(net) > REL_TOL * size_scale:
        out.append(f"positions not conserved: population + vault + market = {net!r}")
    ev = raw.events
    flat = np.flatnonzero(population.size == 0)
    if len(flat):
        touched = np.isin(ev["account"], flat)
        if touched.any():
            out.append(f"{int(touched.sum())} events touch accounts that had no position (first: account {int(ev['account'][touched][0])})")
        out += _flat_untouched(raw, population.collateral, flat)
    return out + _accounts(raw, params, None, raw.size == 0)


def portfolio_violations(raw: RawRun, owner: np.ndarray, collateral: np.ndarray, instrument: np.ndarray,
                         size: np.ndarray, entry: np.ndarray, params: EngineParams,
                         start: np.ndarray | None = None) -> list[str]:
    """Every invariant a portfolio run broke, as readable lines (empty if none).

    The arguments are the run's margin accounts at the start: the user account (``owner``) and
    collateral of each, and its positions: with ``start`` (M+1, CSR) ``instrument``, ``size``,
    ``entry`` are the positions (P; a cross account may hold several); without it they are one
    entry per margin account (its position's instrument, -1: none, and size and entry, 0
    without one). ``params`` is the design's (any instrument's entry). As :func:`violations`,
    with money conserved across instruments (:func:`money_total`) and positions conserved in
    every instrument: the positions in ``k`` plus the vault's, the fund's and the external
    market's inventory in ``k`` sum to zero. A margin account without an open position at the
    start never pays: its collateral is untouched; no event names a position of size 0 (its user
    account in its instrument). No margin account without an open position at the end owes
    money. ADL fill rows are matched with their orders per instrument.
    """
    by = raw.by_instrument
    if by is None:
        return ["the run reports no per-instrument figures (by_instrument)"]
    instrument, size, entry = (np.asarray(a) for a in (instrument, size, entry))
    if start is None:  # one entry per margin account: its position, if any
        held = instrument >= 0
        start = np.concatenate([[0], np.cumsum(held)]).astype(np.int64)
        instrument, size, entry = instrument[held], size[held], entry[held]
    start = np.asarray(start, dtype=np.int64)
    count = np.diff(start)
    holder = np.repeat(np.arange(len(count)), count)  # each position's margin account
    if raw.positions_size is not None:
        final = raw.positions_size
    else:  # an engine reporting one position per margin account
        final = raw.size[count > 0]
    out = _money(raw, collateral, size, entry, params)
    for k in range(len(by["ext_pos"])):
        mine = instrument == k
        net = float(np.sum(final[mine])) + float(by["vault_pos"][k]) + float(by["fund_pos"][k]) + float(by["ext_pos"][k])
        size_scale = float(np.sum(np.abs(size[mine]))) + 1e-12
        if abs(net) > REL_TOL * size_scale:
            out.append(f"positions in instrument {k} not conserved: accounts + vault + fund + market = {net!r}")
    ev = raw.events
    zero = np.flatnonzero(size == 0)
    if len(zero):
        pairs = set(zip(np.asarray(owner)[holder[zero]].tolist(), instrument[zero].tolist()))
        touched = [j for j, pair in enumerate(zip(ev["account"].tolist(), ev["instrument"].tolist())) if pair in pairs]
        if touched:
            out.append(f"{len(touched)} events touch margin accounts that had no position (first: account "
                       f"{int(ev['account'][touched[0]])} in instrument {int(ev['instrument'][touched[0]])})")
    open_start = np.bincount(holder, weights=(size != 0), minlength=len(count)) > 0
    flat = np.flatnonzero(~open_start)
    if len(flat):
        out += _flat_untouched(raw, collateral, flat)
    open_end = np.bincount(holder, weights=(final != 0), minlength=len(count)) > 0
    return out + _accounts(raw, params, len(by["ext_pos"]), ~open_end)


def _money(raw: RawRun, collateral: np.ndarray, size: np.ndarray, entry: np.ndarray,
           params: EngineParams) -> list[str]:
    """Money conservation: :func:`money_total` equals the starting collateral, funds and vaults
    (:func:`ledger_counts` of each, at the design's balance)."""
    gross = float(np.sum(np.abs(size) * entry))
    funds, vaults = ledger_counts(raw)
    start = float(np.sum(collateral)) + funds * params.fund_initial + vaults * params.vault_initial
    scale = abs(start) + gross + 1.0
    total = money_total(raw)
    if abs(total - start) > REL_TOL * scale:
        return [f"money not conserved: start {start!r}, end {total!r} (diff {total - start:.6g})"]
    return []


def _flat_untouched(raw: RawRun, collateral: np.ndarray, flat: np.ndarray) -> list[str]:
    changed = flat[raw.collateral[flat] != collateral[flat]]
    if len(changed):
        return [f"collateral of {len(changed)} flat accounts changed (first: account {int(changed[0])})"]
    return []


def _accounts(raw: RawRun, params: EngineParams, instruments: int | None, flat_end: np.ndarray) -> list[str]:
    """ADL never below zero equity, ADL fills matching their orders (per instrument when
    ``instruments`` is given), no account without a position at the end (``flat_end``) left
    owing."""
    out: list[str] = []
    ev = raw.events
    kind = ev["kind"]
    adl = kind == EventKind.ADL_FILL
    if adl.any():
        eq = ev["equity_after"][adl]
        floor = -REL_TOL * (ev["notional"][adl] + 1.0)
        bad = np.flatnonzero(eq < floor)
        if len(bad):
            out.append(f"{len(bad)} ADL fills left negative equity (first: {eq[bad[0]]!r})")
        merged = AdlPolicy(params.adl_policy).merges_fills
        t0 = int(raw.series["ts"][0]) if len(raw.series["ts"]) else 0  # the first tick's time
        interval = (ev["ts"] - t0) // params.series_interval_ns if merged else None
        if interval is not None and instruments is not None:
            interval = interval * instruments + ev["instrument"]  # an order's fills are in its instrument
        out += _adl_matches(ev, interval)
    owing = (raw.collateral < 0) & flat_end
    if owing.any():
        out.append(f"{int(owing.sum())} flat accounts end with negative collateral (first: account {int(np.flatnonzero(owing)[0])})")
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
