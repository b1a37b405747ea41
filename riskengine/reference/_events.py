"""Plain-Python twin of ``cext/riskengine/_events.pyx``: the event log and the sampled series.

A log is one Python list per column (the compiled engine grows one C buffer per column); column
order and dtypes are ``riskengine.runlog``'s ``PORTFOLIO_EVENT_COLUMNS`` and
``PORTFOLIO_SERIES_COLUMNS`` (``EVENT_COLUMNS`` and ``SERIES_COLUMNS`` with an ``instrument``
column), and
:func:`log_to_numpy` turns the lists into arrays of those dtypes at the end of a run.
:func:`events_merge` adds a later fill into a row already written (the weighted ADL policies' one
row per winner per series interval; see "Logging ADL fills" in :mod:`riskengine.reference`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: one list per column, by column name
ColumnLog = dict[str, list]


def log_init(columns: Sequence[tuple[str, str, str]]) -> ColumnLog:
    """An empty log of ``(name, dtype, description)`` columns."""
    return {name: [] for name, _, _ in columns}


def log_to_numpy(log: ColumnLog, columns: Sequence[tuple[str, str, str]]) -> dict[str, np.ndarray]:
    """Each column as a NumPy array of its dtype."""
    return {name: np.array(log[name], dtype=dtype) for name, dtype, _ in columns}


def events_push(log: ColumnLog, ts: int, tick: int, round: int, kind: int, account: int,
                instrument: int, counterparty: int, size: float, price: float, fee: float,
                amount: float, equity_after: float, fund_after: float) -> None:
    """Append one event row; its notional is ``|size| x price``."""
    log["ts"].append(ts)
    log["tick"].append(tick)
    log["round"].append(round)
    log["kind"].append(int(kind))
    log["account"].append(account)
    log["instrument"].append(instrument)
    log["counterparty"].append(counterparty)
    log["size"].append(size)
    log["price"].append(price)
    log["notional"].append(abs(size) * price)
    log["fee"].append(fee)
    log["amount"].append(amount)
    log["equity_after"].append(equity_after)
    log["fund_after"].append(fund_after)


def events_merge(log: ColumnLog, row: int, counterparty: int, mixed: int, size: float,
                 notional: float, amount: float, equity_after: float, fund_after: float) -> None:
    """Add a fill of ``size`` (same sign as the row's) worth ``notional`` to row ``row``: size,
    notional and amount are summed, the price becomes the volume-weighted price
    ``notional / |size|``, the state columns take the values after this fill, and the
    counterparty becomes ``mixed`` unless it is the row's."""
    if log["counterparty"][row] != counterparty:
        log["counterparty"][row] = mixed
    log["size"][row] += size
    log["notional"][row] += notional
    log["price"][row] = log["notional"][row] / abs(log["size"][row])
    log["amount"][row] += amount
    log["equity_after"][row] = equity_after
    log["fund_after"][row] = fund_after


def series_push(log: ColumnLog, ts: int, instrument: int, tape_price: float, sim_price: float,
                mark: float, fund: float, vault_equity: float, long_oi: float, short_oi: float,
                cum_liquidations: int, cum_liquidated_notional: float, cum_adl_fills: int,
                cum_adl_notional: float) -> None:
    """Append one series row (a sample writes one row per instrument)."""
    log["ts"].append(ts)
    log["instrument"].append(instrument)
    log["tape_price"].append(tape_price)
    log["sim_price"].append(sim_price)
    log["mark"].append(mark)
    log["fund"].append(fund)
    log["vault_equity"].append(vault_equity)
    log["long_oi"].append(long_oi)
    log["short_oi"].append(short_oi)
    log["cum_liquidations"].append(cum_liquidations)
    log["cum_liquidated_notional"].append(cum_liquidated_notional)
    log["cum_adl_fills"].append(cum_adl_fills)
    log["cum_adl_notional"].append(cum_adl_notional)
