"""The result table: every column defined once, here, with its meaning.

:func:`summarize` turns one run's raw output into one row. Both engines feed it the same
kind of :class:`riskengine.runlog.RawRun`, so equal event logs give equal rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from riskengine.codes import FUND_ID, VAULT_ID, EventKind
from riskengine.runlog import RawRun

NS = 1_000_000_000
#: event kinds counted as one liquidation (the engines' ``cum_liquidations`` counts the same)
LIQUIDATION_KINDS = (EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION, EventKind.BACKSTOP,
                     EventKind.ADL_LIQUIDATION, EventKind.FUND_TAKEOVER)


@dataclass(frozen=True)
class Column:
    """One result-table column."""

    name: str
    description: str
    compute: Callable[["RunContext"], object]


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
    margin_source: str = ""  #: the design's margin table (riskengine.venue.Margin.margin_source)

    def kind_mask(self, *kinds) -> np.ndarray:
        k = self.raw.events["kind"]
        acct = self.raw.events["account"]
        return np.isin(k, [int(x) for x in kinds]) & (acct != VAULT_ID) & (acct != FUND_ID)


def _liq(ctx: RunContext) -> np.ndarray:
    return ctx.kind_mask(*LIQUIDATION_KINDS)


def _first_time(ctx: RunContext, mask: np.ndarray) -> float:
    if not mask.any():
        return float("nan")
    return float(ctx.raw.events["ts"][mask][0] - ctx.tape_start_ns) / NS


def _sum(ctx: RunContext, column: str, mask: np.ndarray) -> float:
    return float(ctx.raw.events[column][mask].sum())


def _vault_pnl(ctx: RunContext) -> float:
    s = ctx.raw.scalars
    equity = s["vault_col"] + s["vault_pos"] * (s["final_mark"] - s["vault_entry"])
    return float(equity - ctx.vault_initial)


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


def margin_caveat(margin_source: str) -> str:
    """The caveat of a ``margin_source`` cell ('' when the table is the venue's on the replay date)."""
    label, _, rest = str(margin_source).partition(" [")
    return rest[:-1] if rest.endswith("]") else ""


COLUMNS: tuple[Column, ...] = (
    Column("scenario", "scenario name", lambda c: c.scenario),
    Column("design", "venue design name", lambda c: c.design),
    Column("engine", "engine that ran (cython or reference)", lambda c: c.engine),
    Column(MARGIN_SOURCE, "the design's maintenance-margin table: venue, symbol and effective date (a preset's "
           "stored table; 'given in the design' for a config's own margin.floors/rates), '(incomplete)' when tiers "
           "are missing, and in [brackets] why it may not be the venue's table on the replay date: 'assumed' "
           "(another symbol's table, named by assumed_table, or the preset's default symbol when the scenario "
           "names no underlying) or 'out of date' (the replay precedes the symbol's earliest table)",
           lambda c: c.margin_source),
    Column("accounts", "accounts in the population", lambda c: c.accounts),
    Column("positions", "accounts holding a position at the start", lambda c: c.positions),
    Column("ticks", "tape ticks replayed", lambda c: int(c.raw.scalars["ticks"])),
    Column("liquidations", "liquidation events: book (full and partial), backstop, fund takeover and ADL'd",
           lambda c: int(_liq(c).sum())),
    Column("liquidated_notional", "notional closed by those liquidations",
           lambda c: _sum(c, "notional", _liq(c))),
    Column("accounts_liquidated", "distinct accounts hit by a liquidation",
           lambda c: int(len(np.unique(c.raw.events["account"][_liq(c)])))),
    Column("partial_liquidations", "partial book liquidations",
           lambda c: int(c.kind_mask(EventKind.PARTIAL_LIQUIDATION).sum())),
    Column("backstop_liquidations", "accounts taken over by the backstop vault",
           lambda c: int(c.kind_mask(EventKind.BACKSTOP).sum())),
    Column("bad_debt", "deficits neither the insurance fund nor ADL covered",
           lambda c: float(c.raw.scalars["bad_debt"])),
    Column("fund_start", "insurance fund at the start", lambda c: c.fund_initial),
    Column("fund_min", "lowest insurance-fund balance", lambda c: float(c.raw.scalars["fund_min"])),
    Column("fund_end", "insurance fund at the end", lambda c: float(c.raw.scalars["fund_final"])),
    Column("fund_paid_out", "insurance-fund payments for deficits",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.FUND_PAYMENT))),
    Column("fees_collected", "liquidation fees paid into the fund",
           lambda c: float(c.raw.events["fee"].sum())),
    Column("vault_pnl", "backstop vault equity at the final mark minus its start balance", _vault_pnl),
    Column("adl_fills", "ADL fills: one per opposite-side account per ADL order (the engine's count; weighted "
           "policies log one ADL_FILL row per account per series interval, see riskengine.runlog)",
           lambda c: int(c.raw.scalars["adl_fills"])),
    Column("adl_notional", "notional closed by ADL fills",
           lambda c: _sum(c, "notional", c.kind_mask(EventKind.ADL_FILL))),
    Column("adl_accounts", "distinct accounts hit by ADL",
           lambda c: int(len(np.unique(c.raw.events["account"][c.kind_mask(EventKind.ADL_FILL)])))),
    Column("adl_haircut", "what ADL'd accounts gave up against the mark (sum of haircuts)",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.ADL_FILL))),
    Column("adl_deficit_covered", "shortfall at mark of the deleveraged orders (what ADL had to cover)",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.ADL_LIQUIDATION))),
    Column("adl_overshoot", "haircut beyond the deficit it covered, summed over ADL orders (the engine's sum: "
           "weighted-policy fill rows span orders)", lambda c: float(c.raw.scalars["adl_overshoot"])),
    Column("adl_max_haircut_share", "largest one account's haircut as a share of all haircuts", _max_share),
    Column("adl_haircut_gini", "Gini coefficient of haircuts across the accounts hit (concentration)",
           lambda c: gini(_haircut_by_account(c))),
    Column("socialized_loss", "deficits charged to all open positions (loss socialization)",
           lambda c: _sum(c, "amount", c.kind_mask(EventKind.SOCIALIZED_LOSS))),
    Column("fund_takeovers", "liquidation remainders the insurance fund took over",
           lambda c: int(c.kind_mask(EventKind.FUND_TAKEOVER).sum())),
    Column("tape_drawdown", "largest peak-to-trough fall of the tape price (counterfactual mode: of the tape "
           "with the observed liquidations' impact taken out, the world the simulated flow is put on)",
           lambda c: float(c.raw.scalars["tape_max_drawdown"])),
    Column("sim_drawdown", "largest peak-to-trough fall of the simulated price",
           lambda c: float(c.raw.scalars["sim_max_drawdown"])),
    Column("amplification", "simulated drawdown / tape drawdown (>1: the design amplified the fall)",
           _amplification),
    Column("first_liquidation_s", "seconds from tape start to the first liquidation",
           lambda c: _first_time(c, _liq(c))),
    Column("first_adl_s", "seconds from tape start to the first ADL fill",
           lambda c: _first_time(c, c.kind_mask(EventKind.ADL_FILL))),
    Column("adl_to_liquidated", "ADL notional / liquidated notional",
           lambda c: _ratio(_sum(c, "notional", c.kind_mask(EventKind.ADL_FILL)), _sum(c, "notional", _liq(c)))),
    Column("first_adl_delay_s", "seconds from the first liquidation to the first ADL fill",
           lambda c: _first_time(c, c.kind_mask(EventKind.ADL_FILL)) - _first_time(c, _liq(c))),
    Column("liquidation_volume_share", "liquidated notional / notional traded on the tape", _volume_share),
    Column("cascade_rounds", "liquidation rounds, summed over ticks: the accounts the tape move crossed, "
           "then each round the previous round's price impact crossed", lambda c: int(_rounds_per_tick(c).sum())),
    Column("max_cascade_rounds", "most liquidation rounds at one tick (0: no liquidation)",
           lambda c: int(_rounds_per_tick(c).max(initial=0))),
    Column("last_liquidation_s", "seconds from tape start to the last liquidation (after it no account "
           "crossed any more)", lambda c: _last_time(c, _liq(c))),
    Column("cascade_duration_s", "seconds from the first to the last liquidation",
           lambda c: _last_time(c, _liq(c)) - _first_time(c, _liq(c))),
    Column("elapsed_s", "wall time of the engine run", lambda c: c.elapsed_s),
    Column("ticks_per_s", "engine throughput, tape ticks per second",
           lambda c: float(c.raw.scalars["ticks"]) / c.elapsed_s if c.elapsed_s > 0 else float("nan")),
)

#: columns that depend on timing and differ between otherwise identical runs
TIMING_COLUMNS = ("elapsed_s", "ticks_per_s")


def summarize(ctx: RunContext) -> dict:
    """One result-table row for one run."""
    return {col.name: col.compute(ctx) for col in COLUMNS}


def describe_columns() -> str:
    """The column reference as Markdown (for docs and ``--help``)."""
    lines = ["| column | meaning |", "|---|---|"]
    lines += [f"| `{c.name}` | {c.description} |" for c in COLUMNS]
    return "\n".join(lines)
