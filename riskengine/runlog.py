"""The raw output of one engine run, the same for the Cython and the reference engine.

Column order of the event log and the series is defined here once; the Cython engine fills
its C buffers in the same order (``cext/riskengine/_events.pxd``).

Both carry an ``instrument`` column (the portfolio engine, issue 12): right after ``account`` in
the event log and right after ``ts`` in the series; a single-instrument run logs 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Event-log columns before the instrument column is added: name, dtype, meaning.
_EVENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ts", "int64", "time of the tape tick being processed, ns since epoch UTC"),
    ("tick", "int64", "index of that tick in the tape"),
    ("round", "int32", "cascade round within the tick (0 = first)"),
    ("kind", "int8", "event kind, see riskengine.codes.EventKind"),
    ("account", "int64", "account id (-1 backstop vault, -3 insurance fund)"),
    ("counterparty", "int64", "account id of the other side (-1 vault, -2 order book, -3 insurance fund, -4 all open positions, -5 several ADL orders: a weighted-policy ADL fill row summing fills from more than one order)"),
    ("size", "float64", "signed size closed on `account` (+ = a long was reduced)"),
    ("price", "float64", "execution price (fill, takeover or ADL close price; volume-weighted over the fills a weighted-policy ADL fill row sums)"),
    ("notional", "float64", "|size| x price (a weighted-policy ADL fill row: the sum over its fills), quote currency"),
    ("fee", "float64", "liquidation fee paid into the insurance fund, quote currency"),
    ("amount", "float64", "kind-specific amount: realized PnL (book trades, fund takeover), equity handed over (backstop), payment (fund payment), haircut against the mark (ADL fill), deficit covered at mark (ADL liquidation), uncovered deficit (bad debt), total charged to open positions (socialized loss), net funding the instrument's modelled positions paid the rest of the market (funding: its size is their net position, its price the mark); quote currency"),
    ("equity_after", "float64", "account (or vault) equity at mark after the event, quote currency"),
    ("fund_after", "float64", "insurance-fund balance after the event (of the fund the row's instrument draws on), quote currency"),
)

#: Time-series columns before the instrument column is added.
_SERIES_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ts", "int64", "sample time, ns since epoch UTC"),
    ("tape_price", "float64", "tape price"),
    ("sim_price", "float64", "tape price moved by the transient impact of simulated flow"),
    ("mark", "float64", "mark price"),
    ("fund", "float64", "insurance-fund balance (of the fund the row's instrument draws on), quote currency"),
    ("vault_equity", "float64", "backstop vault equity at mark (of the vault the row's instrument draws on), quote currency"),
    ("long_oi", "float64", "open long size of the population, base units"),
    ("short_oi", "float64", "open short size of the population, base units"),
    ("cum_liquidations", "int64", "liquidations so far (book, partial, backstop, fund takeover, ADL'd)"),
    ("cum_liquidated_notional", "float64", "notional liquidated so far, quote currency"),
    ("cum_adl_fills", "int64", "ADL fills so far"),
    ("cum_adl_notional", "float64", "ADL notional so far, quote currency"),
)

#: the instrument a row is about (its index in the scenario's instruments; 0 in a
#: single-instrument run)
INSTRUMENT_COLUMN: tuple[str, str, str] = (
    "instrument", "int32", "instrument of the position or inventory the event is about (0..I-1, "
    "the scenario's instrument order; 0 in a single-instrument run)")


def _with_instrument(columns: tuple[tuple[str, str, str], ...], after: str,
                     meaning: str) -> tuple[tuple[str, str, str], ...]:
    at = [name for name, _, _ in columns].index(after) + 1
    return columns[:at] + ((INSTRUMENT_COLUMN[0], INSTRUMENT_COLUMN[1], meaning),) + columns[at:]


#: Event-log columns: name, dtype, meaning (``instrument`` after ``account``).
EVENT_COLUMNS = _with_instrument(_EVENT_COLUMNS, "account", INSTRUMENT_COLUMN[2])
#: Time-series columns, sampled at most once per ``series_interval_ns`` and at the last tick
#: (``instrument`` after ``ts``: a sample is one row per instrument; the fund and the vault are
#: those the row's instrument draws on, the cumulative counters are shared).
SERIES_COLUMNS = _with_instrument(
    _SERIES_COLUMNS, "ts", "instrument the row's prices and open interest are about (one row per instrument "
                          "per sample, in instrument order; 0 in a single-instrument run)")



#: Scalar outcomes of a run.
SCALARS: tuple[str, ...] = (
    "fund_final", "fund_min", "fund_pos", "fund_entry", "vault_col", "vault_pos", "vault_entry", "vault_min",
    "bad_debt",
    "ext_cash", "ext_pos", "tape_max_drawdown", "sim_max_drawdown", "tape_min", "sim_min",
    "final_mark", "final_sim_price", "max_rounds", "ticks", "adl_fills", "adl_overshoot", "funding_paid",
)

#: Per-instrument outcomes of a portfolio run (``RawRun.by_instrument``: one array of length I
#: each, in instrument order). The scalars of the same name hold instrument 0's value.
BY_INSTRUMENT: tuple[tuple[str, str, str], ...] = (
    ("final_mark", "float64", "mark at the end of the run (0 if the instrument never ticked)"),
    ("final_sim_price", "float64", "simulated price at the end of the run (NaN if it never ticked)"),
    ("tape_max_drawdown", "float64", "largest drawdown of the tape price from its running peak"),
    ("sim_max_drawdown", "float64", "largest drawdown of the simulated price from its running peak"),
    ("tape_min", "float64", "lowest tape price (inf if it never ticked)"),
    ("sim_min", "float64", "lowest simulated price (inf if it never ticked)"),
    ("fund_pos", "float64", "insurance fund's inventory at the end, base units"),
    ("fund_entry", "float64", "entry price of that inventory"),
    ("vault_pos", "float64", "backstop vault's inventory at the end, base units"),
    ("vault_entry", "float64", "entry price of that inventory"),
    ("ext_pos", "float64", "external market's position (the book's counterparties), base units"),
    ("ext_cash", "float64", "external market's cash from those trades, quote currency"),
    ("liquidations", "int64", "liquidations of positions in the instrument (as cum_liquidations)"),
    ("liquidated_notional", "float64", "notional liquidated in the instrument, quote currency"),
    ("adl_fills", "int64", "ADL fills in the instrument"),
    ("adl_notional", "float64", "ADL notional in the instrument, quote currency"),
    ("fund_group", "int64", "the insurance fund the instrument's deficits draw on (ledger 0..G-1; fund.shared)"),
    ("vault_group", "int64", "the backstop vault that takes its positions over (ledger 0..G-1; backstop.shared)"),
    ("funding_paid", "float64", "funding that changed hands in the instrument: what its payers paid, the rest of the "
                                "market included (each payment's other side received it), quote currency"),
)


#: Weighted ADL policies (pro-rata by size, equity or PnL, levered and risk-aware pro-rata,
#: water-filling) fill every winner on every order, so their ADL_FILL rows are one per winner per
#: series interval of tape time, each summing that interval's fills (``riskengine.reference``,
#: "Logging ADL fills"). The scalars ``adl_fills`` (fills, one per winner per order) and
#: ``adl_overshoot`` (per order, haircut beyond the deficit covered, summed) keep what those rows
#: cannot show.


@dataclass
class RawRun:
    """Arrays and scalars produced by one engine run.

    Attributes
    ----------
    events : dict of ndarray
        Event log columns (:data:`EVENT_COLUMNS`).
    series : dict of ndarray
        Sampled time series (:data:`SERIES_COLUMNS`).
    collateral, size, entry : ndarray of float64
        Final state of each account (of each margin account in a portfolio run).
    socialized : ndarray of float64
        Loss socialized onto each account over the run (``SOCIALIZE`` policy).
    status : ndarray of int8
        Final status of each account (:class:`riskengine.codes.Status`).
    scalars : dict
        :data:`SCALARS`.
    by_instrument : dict of ndarray, optional
        :data:`BY_INSTRUMENT`, one entry per instrument (the portfolio engine; None from an
        engine that does not report them yet).
    positions_size, positions_entry : ndarray of float64, shape (P,), optional
        Final size and entry of every position of a portfolio run, in the margin accounts'
        CSR order (a cross account may hold several; ``size`` and ``entry`` hold each margin
        account's first position); None from an engine that does not report them yet.
    """

    events: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    collateral: np.ndarray
    size: np.ndarray
    entry: np.ndarray
    status: np.ndarray
    scalars: dict[str, float]
    socialized: np.ndarray | None = None
    by_instrument: dict[str, np.ndarray] | None = None
    positions_size: np.ndarray | None = None
    positions_entry: np.ndarray | None = None

    def events_table(self) -> pa.Table:
        """The event log as one Arrow table (:data:`EVENT_COLUMNS`)."""
        return pa.table({name: self.events[name] for name, _, _ in EVENT_COLUMNS})

    def series_table(self) -> pa.Table:
        """The sampled time series as one Arrow table (:data:`SERIES_COLUMNS`)."""
        return pa.table({name: self.series[name] for name, _, _ in SERIES_COLUMNS})
