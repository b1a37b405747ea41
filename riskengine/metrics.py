"""The result table: every column defined once, here, with its meaning and its unit.

:func:`summarize` turns one run's raw output into one row. Both engines feed it the same
kind of :class:`riskengine.runlog.RawRun`, so equal event logs give equal rows.

Money is in the quote currency of the replayed tape (the ``currency`` column: USD, USDT or
USDC; ``quote`` when the tape does not say, e.g. a synthetic one). :func:`heading` and
:func:`format_value` are how every table a person reads (the terminal, ``results.md``, the
report) names a column with its unit and writes a number: fixed-point, thousands separators,
money to the cent (so float noise such as ``2e-09`` reads 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from riskengine.codes import FUND_ID, VAULT_ID, EventKind
from riskengine.runlog import RawRun

NS = 1_000_000_000
#: event kinds counted as one liquidation (the engines' ``cum_liquidations`` counts the same)
LIQUIDATION_KINDS = (EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION, EventKind.BACKSTOP,
                     EventKind.ADL_LIQUIDATION, EventKind.FUND_TAKEOVER)


#: what each unit of :attr:`Column.unit` means (appended to a column's description) and its
#: short form in a heading (None: the heading is the name alone; ``quote``: the currency)
UNITS: dict[str, tuple[str, str | None]] = {
    "text": ("", None),
    "quote": ("in the tape's quote currency: USD, USDT or USDC, as the `currency` column says", "quote"),
    "count": ("a count", "count"),
    "s": ("in seconds", "s"),
    "share": ("a fraction: 0.05 is 5%", "share"),
    "ratio": ("a ratio", "ratio"),
    "index": ("from 0 to 1", "0-1"),
    "rate": ("tape ticks per second of wall time", "ticks/s"),
}
#: the currency heading money columns when a table's rows do not name one
UNKNOWN_CURRENCY = "quote currency"


@dataclass(frozen=True)
class Column:
    """One result-table column: its name, what it means, how it is computed and its unit (a
    key of :data:`UNITS`)."""

    name: str
    description: str
    compute: Callable[["RunContext"], object]
    unit: str = "text"

    @property
    def meaning(self) -> str:
        """The description with its unit, as the docs and the report show it."""
        phrase = UNITS[self.unit][0]
        return f"{self.description}; {phrase}" if phrase else self.description


@dataclass
class RunContext:
    """What a column may look at."""

    raw: RawRun
    scenario: str
    design: str
    engine: str
    accounts: int
    positions: int
    tape_start_ns: int
    fund_initial: float
    vault_initial: float
    elapsed_s: float
    tape_notional: float = float("nan")  #: sum of price x qty over the tape
    vault_loss_limit: float = float("inf")  #: the vault's loss threshold (``Backstop.loss_threshold``)
    currency: str | None = None  #: the tape's quote currency (None: unknown)
    margin_source: str = ""  #: the design's margin table (riskengine.venue.Margin.margin_source)
    margin_mode: str = "as-held"  #: the design's margin mode (riskengine.venue.VenueDesign.margin_mode)
    instruments: int = 1  #: instruments replayed
    instrument: int = 0  #: the instrument a per-instrument row is about (:func:`instrument_run`)
    symbol: str = ""  #: its symbol ('' in a single-instrument scenario, which names none)
    collateral: bool = False  #: a per-instrument row of a collateral asset (issue 13): its sales count, not liquidations

    def kind_mask(self, *kinds) -> np.ndarray:
        k = self.raw.events["kind"]
        acct = self.raw.events["account"]
        return np.isin(k, [int(x) for x in kinds]) & (acct != VAULT_ID) & (acct != FUND_ID)


def _liq(ctx: RunContext) -> np.ndarray:
    """The liquidation rows; in a collateral asset's per-instrument row, its COLLATERAL_EXCHANGE
    rows (holdings sold at market: a collateral asset is never liquidated)."""
    if ctx.collateral:
        return ctx.kind_mask(EventKind.COLLATERAL_EXCHANGE)
    return ctx.kind_mask(*LIQUIDATION_KINDS)


#: how the ``margin_source`` of a collateral asset's per-instrument row starts (it has no margin
#: table; the rest says its index and collateral ratio, :func:`riskengine.engine.collateral_variant`)
COLLATERAL_SOURCE = "collateral asset"
#: what the liquidation columns count in a collateral asset's per-instrument row
_ASSET_ROW = ("; in a collateral asset's per-instrument row (issue 13): its COLLATERAL_EXCHANGE rows (holdings "
              "sold at market), not liquidations")


def _first_time(ctx: RunContext, mask: np.ndarray) -> float:
    if not mask.any():
        return float("nan")
    return float(ctx.raw.events["ts"][mask][0] - ctx.tape_start_ns) / NS


def _sum(ctx: RunContext, column: str, mask: np.ndarray) -> float:
    return float(ctx.raw.events[column][mask].sum())


def _vault_pnl(ctx: RunContext) -> float:
    s, per = ctx.raw.scalars, ctx.raw.by_instrument
    if per is None or len(per["vault_pos"]) == 1:
        equity = s["vault_col"] + s["vault_pos"] * (s["final_mark"] - s["vault_entry"])
    else:  # its inventory in every instrument, each at its own final mark
        equity = s["vault_col"] + float(np.sum(per["vault_pos"] * (per["final_mark"] - per["vault_entry"])))
    return float(equity - ctx.vault_initial)


def _vault_adl_notional(ctx: RunContext) -> float:
    ev = ctx.raw.events
    mask = (ev["kind"] == EventKind.ADL_LIQUIDATION) & (ev["account"] == VAULT_ID)
    return float(ev["notional"][mask].sum())


def _haircut_by_account(ctx: RunContext) -> np.ndarray:
    fills = ctx.kind_mask(EventKind.ADL_FILL)
    accounts = ctx.raw.events["account"][fills]
    if not len(accounts):
        return np.zeros(0)
    _, inverse = np.unique(accounts, return_inverse=True)
    return np.bincount(inverse, weights=ctx.raw.events["amount"][fills])


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: equal, towards 1: concentrated)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n == 0 or v.sum() <= 0:
        return float("nan")
    cum = np.cumsum(v)
    return float((n + 1 - 2 * (cum.sum() / cum[-1])) / n)


def _max_share(ctx: RunContext) -> float:
    per_account = _haircut_by_account(ctx)
    total = per_account.sum()
    return float(per_account.max() / total) if total > 0 else float("nan")


def _last_time(ctx: RunContext, mask: np.ndarray) -> float:
    if not mask.any():
        return float("nan")
    return float(ctx.raw.events["ts"][mask][-1] - ctx.tape_start_ns) / NS


def _rounds_per_tick(ctx: RunContext) -> np.ndarray:
    """For each tick with a liquidation, how many rounds liquidated: round 0 is what the tape
    move crossed, each later round what the previous round's price impact crossed."""
    mask = _liq(ctx)
    if not mask.any():
        return np.zeros(0, dtype=np.int64)
    pairs = np.unique(np.stack([ctx.raw.events["tick"][mask].astype(np.int64),
                                ctx.raw.events["round"][mask].astype(np.int64)]), axis=1)
    _, counts = np.unique(pairs[0], return_counts=True)
    return counts


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _volume_share(ctx: RunContext) -> float:
    return _ratio(_sum(ctx, "notional", _liq(ctx)), ctx.tape_notional)


def _amplification(ctx: RunContext) -> float:
    tape = ctx.raw.scalars["tape_max_drawdown"]
    return float(ctx.raw.scalars["sim_max_drawdown"] / tape) if tape > 0 else float("nan")


#: the column naming each run's margin table; a caveat is the text in [brackets] after the label
MARGIN_SOURCE = "margin_source"
#: between the tables of a multi-instrument run's ``margin_source`` cell (one per instrument)
MARGIN_SOURCES_SEPARATOR = " | "


def margin_caveat(margin_source: str) -> str:
    """The caveat of a ``margin_source`` cell ('' when the table is the venue's on the replay
    date; a multi-instrument run's cell: its tables' caveats, joined by ``; ``)."""
    caveats = []
    for source in str(margin_source).split(MARGIN_SOURCES_SEPARATOR):
        label, _, rest = source.partition(" [")
        if rest.endswith("]"):
            caveats.append(rest[:-1])
    return "; ".join(caveats)


def margin_source_warnings(table: pd.DataFrame) -> list[str]:
    """One line per distinct design and margin table of a result table whose table is assumed,
    out of date or incomplete (``margin_source``), with how many rows used it."""
    if MARGIN_SOURCE not in table.columns or table.empty:
        return []
    flagged = table[[bool(margin_caveat(m)) or "(incomplete)" in str(m) for m in table[MARGIN_SOURCE]]]
    counts = flagged.groupby(["design", MARGIN_SOURCE], sort=True).size()
    return [f"design {design!r}: {n} row(s) on margin table {source}" for (design, source), n in counts.items()]


COLUMNS: tuple[Column, ...] = (
    Column("scenario", "scenario name", lambda c: c.scenario),
    Column("design", "venue design name", lambda c: c.design),
    Column("engine", "engine that ran (cython or reference)", lambda c: c.engine),
    Column("currency", "the unit of every money column: the quote currency of the replayed tape (USD, USDT or "
           f"USDC; {UNKNOWN_CURRENCY!r} when the tape does not name one, e.g. a synthetic tape)",
           lambda c: c.currency or UNKNOWN_CURRENCY),
    Column(MARGIN_SOURCE, "the design's maintenance-margin table: venue, symbol and effective date (a preset's "
           "stored table; 'given in the design' for a config's own margin.floors/rates), '(incomplete)' when tiers "
           "are missing, and in [brackets] why it may not be the venue's table on the replay date: 'assumed' "
           "(another symbol's table, named by assumed_table, or the preset's default symbol when the scenario "
           "names no underlying) or 'out of date' (the replay precedes the symbol's earliest table); a "
           f"multi-instrument run lists each instrument's table, separated by '{MARGIN_SOURCES_SEPARATOR.strip()}'; "
           f"a collateral asset's per-instrument row: '{COLLATERAL_SOURCE}: ' and its index and collateral ratio "
           "(a constructed path and an assumed ratio said so)",
           lambda c: c.margin_source),
    Column("margin_mode", "how the design margined the positions: as-held (each position's own mode, as the "
           "population has it), cross (every position in its user's cross account) or isolated (every position "
           "on its own margin); the design's margin_mode", lambda c: c.margin_mode),
    Column("accounts", "accounts in the population", lambda c: c.accounts, unit="count"),
    Column("positions", "accounts holding a position at the start", lambda c: c.positions, unit="count"),
    Column("instruments", "instruments replayed (1: a single-instrument scenario); results_by_instrument "
           "has a row for each", lambda c: c.instruments, unit="count"),
    Column("ticks", "tape ticks replayed", lambda c: int(c.raw.scalars["ticks"]), unit="count"),
    Column("liquidations", "liquidation events: book (full and partial), backstop, fund takeover and ADL'd"
           + _ASSET_ROW, lambda c: int(_liq(c).sum()), unit="count"),
    Column("liquidated_notional", "notional closed by those liquidations" + _ASSET_ROW,
           lambda c: _sum(c, "notional", _liq(c)), unit="quote"),
    Column("accounts_liquidated", "distinct accounts hit by a liquidation" + _ASSET_ROW,
           lambda c: int(len(np.unique(c.raw.events["account"][_liq(c)]))), unit="count"),
    Column("partial_liquidations", "partial book liquidations",
           lambda c: int(c.kind_mask(EventKind.PARTIAL_LIQUIDATION).sum()), unit="count"),
    Column("backstop_liquidations", "accounts taken over by the backstop vault",
           lambda c: int(c.kind_mask(EventKind.BACKSTOP).sum()), unit="count"),
    Column("bad_debt", "deficits neither the insurance fund nor ADL covered",
           lambda c: float(c.raw.scalars["bad_debt"]), unit="quote"),
    Column("fund_start", "insurance fund at the start (every fund's, summed, where instruments have several: "
           "fund.shared)", lambda c: c.fund_initial, unit="quote"),
    Column("fund_min", "lowest insurance-fund balance (of every fund's summed)",
           lambda c: float(c.raw.scalars["fund_min"]), unit="quote"),
    Column("fund_end", "insurance fund at the end (every fund's, summed)",
           lambda c: float(c.raw.scalars["fund_final"]), unit="quote"),
    Column("fund_paid_out", "insurance-fund payments for deficits",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.FUND_PAYMENT)), unit="quote"),
    Column("fees_collected", "liquidation fees paid into the fund",
           lambda c: float(c.raw.events["fee"].sum()), unit="quote"),
    Column("vault_start", "backstop vault balance at the start (every vault's, summed, where instruments have "
           "several: backstop.shared)", lambda c: c.vault_initial, unit="quote"),
    Column("vault_pnl", "backstop vault equity at the final mark minus its start balance", _vault_pnl,
           unit="quote"),
    Column("vault_loss_limit", "the backstop vault's loss threshold (each vault's): past it its inventory is "
           "auto-deleveraged and it takes nothing over (backstop.loss_limit, else loss_limit_share x vault_balance; "
           "inf: none)",
           lambda c: float(c.vault_loss_limit), unit="quote"),
    Column("vault_min", "lowest backstop-vault equity at mark (of every vault's summed; checked after every "
           "takeover, unwind and re-mark); below 0: its inventory lost more than it held", lambda c: float(c.raw.scalars["vault_min"]), unit="quote"),
    Column("vault_adl_notional", "notional of the backstop vault's inventory closed by ADL once its loss passed "
           "the threshold", _vault_adl_notional, unit="quote"),
    Column("adl_fills", "ADL fills: one per opposite-side account per ADL order (the engine's count; weighted "
           "policies log one ADL_FILL row per account per series interval, see riskengine.runlog)",
           lambda c: int(c.raw.scalars["adl_fills"]), unit="count"),
    Column("adl_notional", "notional closed by ADL fills",
           lambda c: _sum(c, "notional", c.kind_mask(EventKind.ADL_FILL)), unit="quote"),
    Column("adl_accounts", "distinct accounts hit by ADL",
           lambda c: int(len(np.unique(c.raw.events["account"][c.kind_mask(EventKind.ADL_FILL)]))),
           unit="count"),
    Column("adl_haircut", "what ADL'd accounts gave up against the mark (sum of haircuts)",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.ADL_FILL)), unit="quote"),
    Column("adl_deficit_covered", "shortfall at mark of the deleveraged orders (what ADL had to cover)",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.ADL_LIQUIDATION)), unit="quote"),
    Column("adl_overshoot", "haircut beyond the deficit it covered, summed over ADL orders (the engine's sum: "
           "weighted-policy fill rows span orders)", lambda c: float(c.raw.scalars["adl_overshoot"]), unit="quote"),
    Column("adl_max_haircut_share", "largest one account's haircut as a share of all haircuts", _max_share,
           unit="share"),
    Column("adl_haircut_gini", "Gini coefficient of haircuts across the accounts hit (concentration)",
           lambda c: gini(_haircut_by_account(c)), unit="index"),
    Column("socialized_loss", "deficits charged to all open positions (loss socialization)",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.SOCIALIZED_LOSS)), unit="quote"),
    Column("funding_paid", "funding that changed hands: what the payers paid at each funding time, the rest of the "
           "market included (each payment's other side received it; riskengine.reference, \"Funding\")",
           lambda c: float(c.raw.scalars.get("funding_paid", 0.0)), unit="quote"),
    Column("fund_takeovers", "liquidation remainders the insurance fund took over",
           lambda c: int(c.kind_mask(EventKind.FUND_TAKEOVER).sum()), unit="count"),
    Column("tape_drawdown", "largest peak-to-trough fall of the tape price (counterfactual mode: of the tape "
           "with the observed liquidations' impact taken out, the world the simulated flow is put on; several "
           "instruments: the largest of theirs)",
           lambda c: float(c.raw.scalars["tape_max_drawdown"]), unit="share"),
    Column("sim_drawdown", "largest peak-to-trough fall of the simulated price (several instruments: the "
           "largest of theirs)",
           lambda c: float(c.raw.scalars["sim_max_drawdown"]), unit="share"),
    Column("amplification", "simulated drawdown / tape drawdown (>1: the design amplified the fall)",
           _amplification, unit="ratio"),
    Column("first_liquidation_s", "time from tape start to the first liquidation",
           lambda c: _first_time(c, _liq(c)), unit="s"),
    Column("first_adl_s", "time from tape start to the first ADL fill",
           lambda c: _first_time(c, c.kind_mask(EventKind.ADL_FILL)), unit="s"),
    Column("adl_to_liquidated", "ADL notional / liquidated notional",
           lambda c: _ratio(_sum(c, "notional", c.kind_mask(EventKind.ADL_FILL)), _sum(c, "notional", _liq(c))),
           unit="ratio"),
    Column("first_adl_delay_s", "time from the first liquidation to the first ADL fill",
           lambda c: _first_time(c, c.kind_mask(EventKind.ADL_FILL)) - _first_time(c, _liq(c)), unit="s"),
    Column("liquidation_volume_share", "liquidated notional / notional traded on the tape", _volume_share,
           unit="share"),
    Column("cascade_rounds", "liquidation rounds, summed over ticks: the accounts the tape move crossed, "
           "then each round the previous round's price impact crossed", lambda c: int(_rounds_per_tick(c).sum()),
           unit="count"),
    Column("max_cascade_rounds", "most liquidation rounds at one tick (0: no liquidation)",
           lambda c: int(_rounds_per_tick(c).max(initial=0)), unit="count"),
    Column("last_liquidation_s", "time from tape start to the last liquidation (after it no account "
           "crossed any more)", lambda c: _last_time(c, _liq(c)), unit="s"),
    Column("cascade_duration_s", "time from the first to the last liquidation",
           lambda c: _last_time(c, _liq(c)) - _first_time(c, _liq(c)), unit="s"),
    Column("elapsed_s", "wall time of the engine run", lambda c: c.elapsed_s, unit="s"),
    Column("ticks_per_s", "engine throughput",
           lambda c: float(c.raw.scalars["ticks"]) / c.elapsed_s if c.elapsed_s > 0 else float("nan"),
           unit="rate"),
)

#: columns that depend on timing and differ between otherwise identical runs
TIMING_COLUMNS = ("elapsed_s", "ticks_per_s")


def summarize(ctx: RunContext) -> dict:
    """One result-table row for one run."""
    return {col.name: col.compute(ctx) for col in COLUMNS}


# ------------------------------------------------------------------ per instrument
def instrument_run(raw: RawRun, k: int, ticks: int) -> RawRun:
    """The part of a portfolio run about instrument ``k``: its event and series rows (the
    ``instrument`` column), and its own figures (``raw.by_instrument``: final mark, drawdowns,
    inventories, ADL fills) in place of the scalars of the same name; ``ticks``: its ticks.
    What the instruments share (fund, vault cash, bad debt) stays the run's."""
    def part(log: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "instrument" not in log:  # a single-instrument log
            return log
        mask = log["instrument"] == k
        return {name: column[mask] for name, column in log.items()}

    scalars = {**raw.scalars, "ticks": ticks}
    if raw.by_instrument is not None:
        scalars.update({name: values[k].item() for name, values in raw.by_instrument.items() if name in scalars})
    return RawRun(part(raw.events), part(raw.series), raw.collateral, raw.size, raw.entry, raw.status, scalars,
                  raw.socialized, raw.by_instrument, raw.positions_size, raw.positions_entry)


def _ledger(ctx: RunContext, name: str) -> int:
    """The fund or vault (``name``: ``fund_group``, ``vault_group``) of the row's instrument."""
    by = ctx.raw.by_instrument
    return int(by[name][ctx.instrument]) if by is not None and name in by else 0


#: result columns that describe one instrument too: computed on its part of the run
#: (:func:`instrument_run`), they sum over the instruments to the run's (counts and money)
_PER_INSTRUMENT = (
    "currency", MARGIN_SOURCE, "positions", "ticks", "liquidations", "liquidated_notional", "accounts_liquidated",
    "partial_liquidations", "backstop_liquidations", "fund_takeovers", "fund_paid_out", "fees_collected",
    "vault_adl_notional", "adl_fills", "adl_notional", "adl_accounts", "adl_haircut", "adl_deficit_covered",
    "adl_max_haircut_share", "adl_haircut_gini", "socialized_loss", "funding_paid", "tape_drawdown", "sim_drawdown",
    "amplification", "first_liquidation_s", "first_adl_s", "adl_to_liquidated", "first_adl_delay_s",
    "liquidation_volume_share", "cascade_rounds", "max_cascade_rounds", "last_liquidation_s", "cascade_duration_s",
)
_COLUMN = {c.name: c for c in COLUMNS}

#: Columns of the per-instrument table (``Result.by_instrument``, ``results_by_instrument.parquet``):
#: one row per scenario x design x instrument.
INSTRUMENT_COLUMNS: tuple[Column, ...] = (
    *(_COLUMN[name] for name in ("scenario", "design", "engine")),
    Column("instrument", "the instrument's index in the scenario (0..I-1, the order the scenario lists them; "
           "0 in a single-instrument run)", lambda c: c.instrument),
    Column("symbol", "the instrument's symbol (empty in a single-instrument run, whose scenario names none)",
           lambda c: c.symbol),
    Column("fund", "the insurance fund the instrument draws on (0..G-1, numbered in the order of each fund's "
           "first instrument: fund.shared; 0 with one fund for all)", lambda c: _ledger(c, "fund_group")),
    Column("vault", "the backstop vault the instrument draws on (0..G-1, numbered in the order of each vault's "
           "first instrument: backstop.shared; 0 with one vault for all)", lambda c: _ledger(c, "vault_group")),
    *(_COLUMN[name] for name in _PER_INSTRUMENT),
    Column("bad_debt", "deficits of positions in this instrument that neither the insurance fund nor ADL covered",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.BAD_DEBT)), unit="quote"),
    Column("final_mark", "the instrument's mark at the end of the run", lambda c: float(c.raw.scalars["final_mark"]),
           unit="quote"),
    Column("tape_low", "the instrument's lowest tape price", lambda c: float(c.raw.scalars["tape_min"]),
           unit="quote"),
    Column("sim_low", "the instrument's lowest simulated price", lambda c: float(c.raw.scalars["sim_min"]),
           unit="quote"),
)


def summarize_instrument(ctx: RunContext) -> dict:
    """One per-instrument row (:data:`INSTRUMENT_COLUMNS`) for one run's instrument: ``ctx``
    holds its part of the run (:func:`instrument_run`); a single-instrument run's whole run."""
    return {col.name: col.compute(ctx) for col in INSTRUMENT_COLUMNS}


def negative_balance_notes(table) -> list[str]:
    """One sentence per run whose insurance fund or backstop vault went below zero, saying why.

    ``table`` is a result table (rows of :data:`COLUMNS`). The fund pays deficits only from a
    positive balance, so a negative one is losses on the inventory it took over; a vault below
    zero lost more than it held: its threshold is above its balance, or the step that crossed
    the threshold (a price move, or inventory ADL could not absorb sold to the book) went past it.
    """
    notes = []
    for _, row in table.iterrows():
        run = f"{row['design']} ({row['scenario']})"
        if row["fund_min"] < 0:
            notes.append(f"{run}: the insurance fund went below zero (lowest {row['fund_min']:,.0f}): the "
                         "inventory it took over lost more than its balance as it was sold off.")
        if row["vault_min"] < 0:
            start, limit = row["vault_start"], row["vault_loss_limit"]
            if math.isinf(limit):
                why = "it has no loss threshold, so it kept taking losses"
            elif limit > start:
                why = f"its loss threshold, {limit:,.0f}, is above its balance"
            else:
                why = ("the step that took its loss past its threshold "
                       f"({limit:,.0f}; a price move, or inventory ADL could not absorb sold to the book) "
                       "went beyond its balance before its inventory was deleveraged")
            notes.append(f"{run}: the backstop vault's equity went below zero (lowest {row['vault_min']:,.0f}, "
                         f"from a start of {start:,.0f}): {why}.")
    return notes


def describe_columns(columns: tuple[Column, ...] = COLUMNS) -> str:
    """The column reference as Markdown (for docs and ``--help``): of the result table, or of
    ``columns`` (e.g. :data:`INSTRUMENT_COLUMNS`)."""
    lines = ["| column | meaning |", "|---|---|"]
    lines += [f"| `{c.name}` | {c.meaning} |" for c in columns]
    return "\n".join(lines)


# ------------------------------------------------------------------ units and numbers, as read
_BY_NAME = {c.name: c for c in COLUMNS}
#: the per-instrument table's own columns (the others are result columns)
_INSTRUMENT_ONLY = {c.name: c for c in INSTRUMENT_COLUMNS if c.name not in _BY_NAME}
#: prefixes and suffixes of columns derived from a result column, with its unit: the observed
#: twins (riskengine.observed) and a sweep ranking's aggregates (riskengine.sweep.rank)
_DERIVED_PREFIXES = ("observed_",)
_DERIVED_SUFFIXES = ("_mean", "_best", "_worst")


def unit_of(column: str) -> str:
    """The unit (a key of :data:`UNITS`) of a result column or of a column derived from one
    (``observed_adl_notional``, ``bad_debt_mean``); ``text`` for any other column."""
    if column in _BY_NAME:
        return _BY_NAME[column].unit
    if column in _INSTRUMENT_ONLY:
        return _INSTRUMENT_ONLY[column].unit
    for prefix in _DERIVED_PREFIXES:
        if column.startswith(prefix) and column[len(prefix):] in _BY_NAME:
            return _BY_NAME[column[len(prefix):]].unit
    for suffix in _DERIVED_SUFFIXES:
        if column.endswith(suffix) and column[:-len(suffix)] in _BY_NAME:
            return _BY_NAME[column[:-len(suffix)]].unit
    return "text"


def table_currency(table) -> str:
    """The currency of a table's money columns: the one its rows' ``currency`` column names,
    or :data:`UNKNOWN_CURRENCY` when they name none or several (each row then says its own)."""
    names = set(table["currency"]) if "currency" in getattr(table, "columns", ()) else set()
    return names.pop() if len(names) == 1 else UNKNOWN_CURRENCY


def unit_label(column: str, currency: str = UNKNOWN_CURRENCY) -> str | None:
    """A column's unit as a heading shows it (``USDT``, ``s``, ``count``), None for text."""
    short = UNITS[unit_of(column)][1]
    return currency if short == "quote" else short


def heading(column: str, currency: str = UNKNOWN_CURRENCY) -> str:
    """A column's name with its unit, as a table heading: ``bad_debt (USDT)``,
    ``first_adl_s (s)``, ``liquidations (count)``; text columns keep their bare name. The
    names themselves never change (sweeps and scripts key on them)."""
    unit = unit_label(column, currency)
    return column if unit is None else f"{column} ({unit})"


#: digits shown for numbers below 1,000: four significant ones, at most this many decimals
_MAX_DECIMALS = 6


def format_value(column: str, value) -> str:
    """A cell of a table a person reads (the terminal, ``results.md``): fixed-point, never
    an exponent; thousands separators; integers whole; money from 1,000 whole, below it to the
    cent (float noise such as ``2.24e-09`` reads ``0``); other numbers to four significant
    digits; ``-`` for a missing value (NaN).

    >>> format_value("liquidated_notional", 242681974.3), format_value("bad_debt", 2.24317e-09)
    ('242,681,974', '0')
    >>> format_value("sim_drawdown", 0.17262), format_value("elapsed_s", 0.042012), format_value("ticks", 5372)
    ('0.1726', '0.04201', '5,372')
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    a = abs(v)
    if a >= 1000 or (v.is_integer() and unit_of(column) != "quote"):
        text = f"{v:,.0f}"
    elif unit_of(column) == "quote":
        text = f"{v:,.2f}"
    else:
        decimals = min(max(3 - math.floor(math.log10(a)), 0), _MAX_DECIMALS) if a > 0 else 0
        text = f"{v:,.{decimals}f}"
    return "0" if text.strip("-0.,") == "" else text
