"""The standard throughput workloads and ``riskengine bench``: one definition for the CLI and
the benchmark suite (``tests/benchmarks``).

Workloads are seeded and built by the shared generators (:mod:`riskengine.generators`: vectorised
NumPy, no Python loop per tick or account); this module states their parameters. Each
builder returns a :class:`Workload`: a validated :class:`riskengine.Scenario` and the resolved
:class:`riskengine.EngineParams`. Arrays are generated in place where it matters (the 10M-tick
tapes), so building a workload does not itself dominate peak memory.

* :func:`quiet` — a reflected random walk confined to 100 x (1 +/- 0.05%), accounts at 2-5x
  leverage, mark = last trade: no account ever crosses, so the run is the bare per-tick loop.
* :func:`crash` — a 40% fall (smooth slide plus a few gap-down jumps) through a book of finite
  depth with full impact feedback, 60% of the accounts long at 3-50x (all liquidated), a small
  insurance fund topped up by liquidation fees, and an ADL queue: each gap drains the fund
  and starts an ADL wave.
* :func:`parity` — :func:`crash` scaled down (10,000 accounts x 100,000 ticks) for the
  reference engine.
* :func:`portfolio` — 15 instruments with their own tapes interleaved in time, 5 of them
  crashing by 25-45% (the crash's shape), 10 quiet; accounts holding 1-5 of them, half of the
  positions cross (several in one cross account), 20% of the multi-instrument books hedged
  (:func:`riskengine.portfolio.generate_portfolio`).
* :func:`oct10_portfolio` — :func:`portfolio` at the scale of Hyperliquid's 2025-10-10 hour:
  3.24M ticks in an hour over 150 instruments, all crashing, 438k accounts holding 3 on average.
* ``adl-<policy>`` (:func:`adl_workload`, one per weighted policy of :data:`ADL_POLICIES`) —
  :func:`crash` at 1M ticks x 100k accounts with that ADL policy, timed side by side with the
  queue in one process (:func:`measure_adl`); run only when named (:func:`select`).

Sizes: :data:`FULL` (the benchmark's 10M ticks x 1M accounts; the reference engine on
100,000 ticks x 10,000 accounts) and :data:`QUICK` (a tenth of that, the reference on 20,000 x
2,000); ``oct10-portfolio`` and the ``adl-*`` workloads (:data:`ADL_FULL`, :data:`ADL_QUICK`)
have sizes of their own. :func:`run` measures each workload in a fresh child process
(:func:`measure`), so the peak memory of one workload (the child's ``VmHWM``, which starts
afresh at ``exec``) is not inflated by another's; :func:`format_report` prints the figures and :func:`write_json` writes
them atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riskengine import generators
from riskengine.codes import EventKind
from riskengine.files import check_writable_dir, write_atomic
from riskengine.liquidity import ConstantDepth
from riskengine.metrics import LIQUIDATION_KINDS
from riskengine.params import EngineParams
from riskengine.collateral import AssetPrices, DepegPath
from riskengine.funding import HOUR_NS, FundingStream
from riskengine.portfolio import Instrument, PortfolioScenario, PortfolioSpec, add_holdings, generate_portfolio
from riskengine.runlog import EVENT_COLUMNS, SCALARS, RawRun
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import Adl, Collateral, Fund, Liquidation, Margin, Mark, VenueDesign

NS = 1_000_000_000
#: 2025-10-10 20:00 UTC, as in riskengine.synthetic
START_NS = 1_760_126_400 * NS
MB = 1024.0 * 1024.0  # MiB
#: relative tolerance of float columns when the two engines' event logs are compared
PARITY_RTOL = 1e-9

Progress = Callable[[str], None]


@dataclass
class Workload:
    """A scenario, its engine parameters and what went into them: a single-instrument
    :class:`Scenario` with one :class:`EngineParams`, or a :class:`PortfolioScenario` with one
    per instrument."""

    name: str
    scenario: Scenario | PortfolioScenario
    params: EngineParams | list[EngineParams]
    info: dict = field(default_factory=dict)
    funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """Funding payments the run makes (:func:`riskengine.engine.funding_payments`; None: none)."""

    @property
    def is_portfolio(self) -> bool:
        return isinstance(self.scenario, PortfolioScenario)

    @property
    def ticks(self) -> int:
        return len(self.scenario.tape)

    @property
    def accounts(self) -> int:
        return len(self.scenario.portfolio if self.is_portfolio else self.scenario.population)

    def input_bytes(self) -> dict[str, int]:
        """Bytes of every array the scenario holds (tapes and accounts; a portfolio's own tape per
        instrument, its merged tape, its positions and margin accounts)."""
        t = self.scenario.tape
        arrays = {"tape.ts": t.ts, "tape.price": t.price, "tape.qty": t.qty}
        if self.is_portfolio:
            for ins in self.scenario.instruments:
                arrays.update({f"{ins.symbol}.{f}": getattr(ins.tape, f) for f in ("ts", "price", "qty")})
            b = self.scenario.portfolio
            arrays.update({f"portfolio.{f}": getattr(b, f)
                           for f in ("wallet", "start", "instrument", "size", "entry", "mode", "margin")})
            m = self.scenario.margin_accounts
            arrays.update({"tape.inst": t.inst, "accounts.owner": m.owner, "accounts.collateral": m.collateral,
                           "accounts.start": m.start, "positions.instrument": m.instrument,
                           "positions.size": m.size, "positions.entry": m.entry})
        else:
            p = self.scenario.population
            arrays.update({"population.collateral": p.collateral, "population.size": p.size,
                           "population.entry": p.entry, "population.mode": p.mode})
        if t.stream is not None:
            arrays["tape.stream"] = t.stream
        return {k: int(v.nbytes) for k, v in arrays.items()}

    def engine_input_mb(self) -> float:
        """MiB of the arrays the engine reads (:data:`ENGINE_INPUTS`)."""
        return sum(v for k, v in self.input_bytes().items() if k in ENGINE_INPUTS) / MB

    def input_mb(self) -> float:
        """MiB of every array the scenario holds (:meth:`input_bytes`)."""
        return sum(self.input_bytes().values()) / MB

    def run(self, engine: str, max_events: int | None = None) -> tuple[RawRun, float]:
        """Run ``engine`` (``"cython"`` or ``"reference"``) on the workload: (RawRun, seconds)."""
        from riskengine.engine import run_portfolio_raw, run_raw

        if self.is_portfolio:
            return run_portfolio_raw(self.scenario, self.params, engine, max_events=max_events, funding=self.funding)
        return run_raw(self.scenario, self.params, engine, max_events=max_events, funding=self.funding)


#: the arrays the engine reads (plus the mark/index stream when the mark method uses one); a
#: portfolio run reads the merged tape and the margin accounts in CSR form
ENGINE_INPUTS = ("tape.ts", "tape.price", "tape.stream", "population.collateral",
                 "population.size", "population.entry", "tape.inst", "accounts.owner",
                 "accounts.collateral", "accounts.start", "positions.instrument", "positions.size",
                 "positions.entry")


# --------------------------------------------------------------------------- workloads
def quiet(ticks: int = 10_000_000, accounts: int = 1_000_000, seed: int = 11,
          tick_ns: int = 1_000_000, band: float = 0.0005) -> Workload:
    """No account ever crosses: the bare per-tick cost of the engine.

    Price: 100 x (1 + w), w a random walk (sd 0.001% per tick) reflected into +/- ``band``
    (0.05%). Accounts: half long, half short, 2-5x leverage, entries within +/- 1% of 100,
    1% flat; maintenance margin 0.5%; mark = last trade; infinite depth.
    """
    rng = np.random.default_rng(seed)
    tape = generators.quiet_tape(ticks, rng, start_price=100.0, start_ns=START_NS, tick_ns=tick_ns,
                                 step=1e-5, band=band)
    pop = leveraged_population(rng, accounts, price=100.0, long_share=0.5,
                               leverage=generators.LeverageRange(long=(2.0, 5.0), short=(2.0, 5.0)),
                               entry_spread=0.01)
    design = VenueDesign(name="bench-quiet", margin=Margin(floors=(0.0,), rates=(0.005,)),
                         mark=Mark(method="last"), fund=Fund(initial=1_000_000.0), adl=Adl(policy="queue"))
    params = design.engine_params(ConstantDepth(), series_interval_s=1.0)
    return Workload("quiet", Scenario("bench-quiet", tape, pop), params,
                    {"tick_ns": tick_ns, "band": band, "seed": seed})


#: (position along the tape in [0, 1], relative gap size) of the gap-down jumps of the crash
CRASH_GAPS = ((0.23, 0.03), (0.26, 0.035), (0.29, 0.03), (0.32, 0.04))


def crash_tape(ticks: int, tick_ns: int, rng: np.random.Generator, *, start: float = 100.0,
               drop: float = 0.40, fall: tuple[float, float] = (0.2, 0.4),
               gaps=CRASH_GAPS, rebound: float = 0.10, noise: float = 0.001,
               start_ns: int = START_NS) -> Tape:
    """``start`` falls by ``drop`` over the ``fall`` share of the tape, then rebounds.

    The fall is a smooth slide plus gap-down jumps (``gaps``: position, relative size), with the
    slide scaled so slide and gaps together end exactly ``drop`` lower; after the bottom the
    price recovers ``rebound`` (relative to the low) over the rest of the tape. A reflected
    random walk of +/- ``noise`` rides on top. Built in place by
    :func:`riskengine.generators.crash_tape` (a few tape-sized arrays).
    """
    a, b = fall
    jumps = tuple(generators.Gap(pos, g) for pos, g in gaps)
    return generators.crash_tape(
        ticks, rng, start_price=start, start_ns=start_ns, tick_ns=tick_ns,
        ramps=(generators.Ramp(a, b - a, generators.slide_log_move(drop, jumps)),
               generators.Ramp(b, 1.0 - b, math.log1p(rebound))),
        gaps=jumps, noise=generators.Noise(noise / 20.0, band=noise), smoothstep_order="slope-first")


#: the order the workloads' populations draw their aspects in (see riskengine.generators)
POPULATION_DRAW_ORDER = ("side", "size", "entry", "leverage", "flat", "flat_collateral", "mode")


def leveraged_population(rng: np.random.Generator, accounts: int, *, price: float, long_share: float,
                         leverage: generators.LeverageRange, entry_spread: float) -> Population:
    """The workloads' accounts: one position each, lognormal notionals (median 10,000, sd of log 1),
    entries uniform within ``+/- entry_spread`` of ``price``, margin fraction uniform over the
    side's leverage range (liquidation prices spread evenly), half cross, 1% flat
    (:func:`riskengine.generators.leveraged_population`)."""
    return generators.leveraged_population(
        accounts, rng, price=price, long_share=long_share, leverage=leverage,
        notional_median=10_000.0, notional_sigma=1.0, entry_spread=entry_spread, entry_scatter="uniform",
        cross_share=0.5, cross_excess=None, flat_share=0.01, draw_order=POPULATION_DRAW_ORDER)


def crash(ticks: int = 10_000_000, accounts: int = 1_000_000, seed: int = 23, *,
          span_s: float = 10_000.0, depth_per_account: float = 300.0,
          fund_per_account: float = 0.1, liquidation_fee: float = 0.0005,
          feedback: float = 1.0, adl: str = "queue", adl_rank_interval_s: float = 1.0) -> Workload:
    """A 40% crash with impact feedback, fund exhaustion and ADL waves.

    Tape: 100 -> 60 between 20% and 40% of a ``span_s`` tape (4 gap-down jumps of 3-4%), then a
    10% rebound. Accounts: 60% long at 3-50x (every long is liquidated by a 40% fall), 40% short
    at 2-20x (in profit: the ADL side), entries within +/- 2% of 100, lognormal notionals
    (median 10,000). Venue: 0.5% maintenance margin, 0.5% liquidation fee into an insurance fund
    of ``fund_per_account x accounts``, ADL queue (PnL x leverage, bankruptcy price, re-ranked
    every ``adl_rank_interval_s``). Liquidity: ``depth_per_account x accounts`` per 1%, 30 s
    half-life, ``feedback`` of each move kept as impact. Depth and fund scale with the account
    count so a scaled-down copy (the parity workload) behaves alike.
    """
    rng = np.random.default_rng(seed)
    tick_ns = max(1, int(round(span_s * NS / ticks)))
    tape = crash_tape(ticks, tick_ns, rng)
    pop = leveraged_population(rng, accounts, price=float(tape.price[0]), long_share=0.6,
                               leverage=generators.LeverageRange(long=(3.0, 50.0), short=(2.0, 20.0)),
                               entry_spread=0.02)
    design = VenueDesign(name="bench-crash", margin=Margin(floors=(0.0,), rates=(0.005,)),
                         mark=Mark(method="last"), liquidation=Liquidation(fee=liquidation_fee),
                         fund=Fund(initial=fund_per_account * accounts),
                         adl=Adl(policy=adl, ranking="pnl-leverage", price="bankruptcy",
                                 rank_interval_s=adl_rank_interval_s))
    liquidity = ConstantDepth(depth_per_pct=depth_per_account * accounts, max_move=0.5,
                              half_life_s=30.0, feedback=feedback)
    params = design.engine_params(liquidity, series_interval_s=1.0)
    info = {"tick_ns": tick_ns, "span_s": span_s, "seed": seed,
            "depth_per_pct": liquidity.depth_per_pct, "fund_initial": params.fund_initial,
            "gaps": len(CRASH_GAPS), "drop": 0.40}
    return Workload("crash", Scenario("bench-crash", tape, pop), params, info)


def parity(ticks: int = 100_000, accounts: int = 10_000, seed: int = 29) -> Workload:
    """The crash workload scaled down for a run of the reference engine."""
    w = crash(ticks, accounts, seed)
    w.name = "parity"
    return w


#: the portfolio workload's instruments, and how far each of the first five falls (the others are quiet)
PORTFOLIO_INSTRUMENTS = 15
PORTFOLIO_DROPS = (0.25, 0.30, 0.35, 0.40, 0.45)
#: probabilities that a portfolio account holds 1, 2, ... 5 instruments (2.33 on average)
PORTFOLIO_HOLDINGS = (0.35, 0.25, 0.2, 0.12, 0.08)
#: ``portfolio-cf`` (issue 13): a share of the users with a cross wallet and the share of that
#: wallet they hold in USDe (:func:`riskengine.portfolio.add_holdings`), USDe's collateral ratio
#: (assumed: Binance publishes none, ``docs/collateral.md``), and the hourly funding rate of the
#: crashing instruments (shorts pay: the perp under its index) and of the quiet ones
PORTFOLIO_CF_HOLDINGS = (0.25, 0.5)
PORTFOLIO_CF_USDE_RATIO = 0.9
PORTFOLIO_CF_RATES = (-0.001, 0.0001)


def portfolio(ticks: int = 10_000_000, accounts: int = 1_000_000, seed: int = 31, *,
              span_s: float = 10_000.0, depth_per_account: float = 300.0, fund_per_account: float = 0.1,
              liquidation_fee: float = 0.0005, adl: str = "queue", collateral: bool = False,
              funding: bool = False, instruments: int = PORTFOLIO_INSTRUMENTS,
              drops: Sequence[float] = PORTFOLIO_DROPS,
              holdings: Sequence[float] = PORTFOLIO_HOLDINGS) -> Workload:
    """A crash on several of ``instruments`` (15) instruments held by accounts with 1-5 positions each.

    Tapes: ``ticks`` split evenly over ``instruments`` instruments on interleaved regular grids
    (instrument ``k`` of ``n`` trades at ``start + (n j + k) x tick``), so the merged tape has one
    tick per ``span_s / ticks``. Instrument ``k < len(drops)`` takes the crash's shape
    (:func:`crash_tape`) and falls by ``drops[k]`` (default :data:`PORTFOLIO_DROPS`: instruments
    0-4); the others are quiet (a reflected walk within +/- 0.05%). Start prices 10, 20, ... 10 n.
    Accounts (:func:`riskengine.portfolio.generate_portfolio`): every account holds 1, 2, ...
    instruments with the probabilities ``holdings`` (default :data:`PORTFOLIO_HOLDINGS`: 1-5
    held with 0.35, 0.25, 0.2, 0.12, 0.08, 2.33 on average), picked with weights proportional to
    open interest (``10,000 x accounts x mean holding / n`` USD each: a median notional of
    10,000), 60% long on crashing instruments and 50% on quiet ones; each position cross with
    probability 0.5 (a user's cross positions share one cross account), else isolated; 20% of
    the books holding two instruments or more are hedged (a long and a short); leverage 2-50x
    (capped at 50x). Venue: as :func:`crash` (0.5% maintenance margin, last-trade mark, a fund
    of ``fund_per_account x accounts`` topped up by a 0.05% fee, ADL queue), one fund and one
    vault for all instruments; each instrument's book ``depth_per_account x accounts / n`` per
    1%, 30 s half-life, full feedback.

    ``collateral`` (issue 13): a 16th instrument, USDe, a collateral asset on the constructed
    depeg path (:class:`riskengine.collateral.DepegPath`, the tape's own seed: to 0.65 between
    21:36 and 22:16 UTC, one price a second), valued at its own book x 0.9
    (:data:`PORTFOLIO_CF_USDE_RATIO`); :data:`PORTFOLIO_CF_HOLDINGS` of the cross users hold
    half their wallet in it. ``funding``: hourly payments in every perpetual at the rates of
    :data:`PORTFOLIO_CF_RATES`, at the mark.
    """
    n_inst = instruments
    if not 0 <= len(drops) <= n_inst:
        raise ValueError(f"drops: {len(drops)} crashing instruments, expected at most {n_inst}")
    symbols = tuple(f"P{k:0{max(2, len(str(n_inst - 1)))}d}" for k in range(n_inst))
    starts = [10.0 * (k + 1) for k in range(n_inst)]
    holdings = tuple(holdings)
    mean_held = sum((i + 1) * p for i, p in enumerate(holdings))
    oi = 10_000.0 * accounts * mean_held / n_inst
    spec = PortfolioSpec(
        symbols=symbols, open_interest_usd=(oi,) * n_inst, max_leverage=(50.0,) * n_inst,
        long_share=tuple(0.6 if k < len(drops) else 0.5 for k in range(n_inst)),
        accounts=accounts, holdings=holdings, hedged_share=0.2, cross_share=0.5, flat_share=0.0,
        leverage=generators.DiscreteLeverage((2.0, 3.0, 5.0, 10.0, 20.0, 50.0), (0.15, 0.2, 0.25, 0.2, 0.15, 0.05)),
        entry_spread=0.01, seed=seed)
    # the accounts first: the generator's temporaries are freed before the tapes exist
    book = generate_portfolio(spec, starts)
    held = add_holdings(book.portfolio, [PORTFOLIO_CF_HOLDINGS], [1.0], seed) if collateral else book.portfolio
    rng = np.random.default_rng(seed)
    tick_ns = max(1, int(round(span_s * NS / ticks)))
    instruments = []
    # with collateral, USDe's own ticks (a thousandth of the tape) are part of ``ticks``
    n_asset = max(2, ticks // 1000) if collateral else 0
    perp_ticks = ticks - n_asset
    for k in range(n_inst):
        n = max(1, perp_ticks // n_inst + (1 if k < perp_ticks % n_inst else 0))
        t0 = START_NS + k * tick_ns
        if k < len(drops):
            tape = crash_tape(n, n_inst * tick_ns, rng, start=starts[k], drop=drops[k], start_ns=t0)
        else:
            tape = generators.quiet_tape(n, rng, start_price=starts[k], start_ns=t0, tick_ns=n_inst * tick_ns,
                                         step=1e-5, band=0.0005)
        rates = None
        if funding:  # every whole hour of the span
            hours = np.arange(START_NS // HOUR_NS + 1, (START_NS + int(span_s * NS)) // HOUR_NS + 1) * HOUR_NS
            rate = PORTFOLIO_CF_RATES[0] if k < len(drops) else PORTFOLIO_CF_RATES[1]
            rates = FundingStream.from_arrays(hours, np.full(len(hours), rate), HOUR_NS, symbols[k])
        instruments.append(Instrument(symbols[k], tape, funding=rates))
    assets = ()
    if collateral:  # n_asset prices evenly from the perpetuals' first tick to their last
        last_us = max(int(ins.tape.ts[-1]) for ins in instruments) // 1000
        step_ns = (last_us * 1000 - START_NS) // (n_asset - 1)
        start = dt.datetime.fromtimestamp(START_NS / NS, dt.timezone.utc)
        end = start + dt.timedelta(microseconds=last_us - START_NS // 1000)
        path = DepegPath(start=start, end=end, step_s=step_ns / NS).generate(seed)
        assets = (AssetPrices("USDE", own=path),)
        instruments.append(Instrument("USDE", Tape.from_arrays(path.ts, path.price)))
    design = VenueDesign(name="bench-portfolio", margin=Margin(floors=(0.0,), rates=(0.005,)),
                         mark=Mark(method="last"), liquidation=Liquidation(fee=liquidation_fee),
                         fund=Fund(initial=fund_per_account * accounts),
                         adl=Adl(policy=adl, ranking="pnl-leverage", price="bankruptcy", rank_interval_s=1.0),
                         collateral=Collateral(ratios="binance-usdm", assumed={"USDE": PORTFOLIO_CF_USDE_RATIO}))
    liquidity = ConstantDepth(depth_per_pct=depth_per_account * accounts / n_inst, max_move=0.5,
                              half_life_s=30.0, feedback=1.0)
    params = design.engine_params(liquidity, series_interval_s=1.0)
    scenario = PortfolioScenario("bench-portfolio", tuple(instruments), held, assets=assets)
    name, plist, pays = "portfolio", [params] * n_inst, None
    if collateral or funding:  # each asset's tape as the design values it, the funding payments
        from riskengine.engine import resolve

        (item,) = resolve(scenario, design, liquidity, series_interval_s=1.0)
        name, scenario, plist, pays = "portfolio-cf", item.scenario, list(item.params), item.funding
    info = {"tick_ns": tick_ns, "span_s": span_s, "seed": seed, "instruments": len(instruments),
            "crashing": len(drops), "positions": int(len(held.size)),
            "margin_accounts": int(len(scenario.margin_accounts.owner)),
            "hedged_accounts": int(book.hedged.sum()), "fund_initial": params.fund_initial,
            "holdings": int(held.holdings.sum()), "funding_payments": 0 if pays is None else len(pays[0])}
    return Workload(name, scenario, plist, info, pays)


def portfolio_cf(ticks: int = 10_000_000, accounts: int = 1_000_000, seed: int = 31) -> Workload:
    """:func:`portfolio` with collateral and funding on (issue 13)."""
    return portfolio(ticks, accounts, seed, collateral=True, funding=True)


#: ``oct10-portfolio``: the scale of Hyperliquid's 2025-10-10 hour (3.24M ticks in an hour over
#: 150 instruments, 438k accounts): every instrument falls, the first by 10% (a major) and the
#: last by 60% (a thin alt), evenly spread between; 1-7 holdings, 3.0 on average
OCT10_INSTRUMENTS = 150
OCT10_DROPS = tuple(round(0.10 + 0.50 * k / (OCT10_INSTRUMENTS - 1), 4) for k in range(OCT10_INSTRUMENTS))
OCT10_HOLDINGS = (0.25, 0.2, 0.2, 0.15, 0.1, 0.05, 0.05)
OCT10_SPAN_S = 3_600.0


def oct10_portfolio(ticks: int = 3_240_000, accounts: int = 438_000, seed: int = 37) -> Workload:
    """The scale of Hyperliquid's 2025-10-10 hour: :func:`portfolio` over
    :data:`OCT10_INSTRUMENTS` (150) instruments, ``ticks`` (3.24M) in one hour, ``accounts``
    (438,000) holding 1-7 instruments (:data:`OCT10_HOLDINGS`: 3.0 on average, about 1.3M
    positions at full size), every instrument crashing (:data:`OCT10_DROPS`: 10% to 60%).

    The sizes are the venue's that hour (trades, listed perpetuals, accounts with positions);
    prices, holdings and leverage are the portfolio workload's synthetic ones, not the venue's
    own data. Its bar (< 1 s an engine run) is per design: one run of a sweep over designs.
    """
    w = portfolio(ticks, accounts, seed, span_s=OCT10_SPAN_S, instruments=OCT10_INSTRUMENTS,
                  drops=OCT10_DROPS, holdings=OCT10_HOLDINGS)
    w.name = "oct10-portfolio"
    return w


#: the weighted ADL policies (:class:`riskengine.venue.Adl` ``policy``), each timed against the
#: queue on the same crash by its ``adl-<policy>`` workload; ``--only adl`` names all of them
ADL_POLICIES = ("pro-rata", "pro-rata-equity", "pro-rata-pnl", "levered-pro-rata", "socialize",
                "risk-aware", "water-filling")
ADL_GROUP = "adl"
ADL_PREFIX = "adl-"
#: a policy's rounds stop after the first round that takes longer than this (seconds)
ADL_SLOW_ROUND_S = 10.0


def adl_workload(policy: str) -> Callable[..., Workload]:
    """The builder of workload ``adl-<policy>``: :func:`crash` with ADL by ``policy``."""

    def build(ticks: int = 1_000_000, accounts: int = 100_000, seed: int = 23) -> Workload:
        w = crash(ticks, accounts, seed, adl=policy)
        w.name = ADL_PREFIX + policy
        w.info["adl"] = policy
        return w

    build.__doc__ = f":func:`crash` with ADL policy ``{policy}`` (the ``{ADL_PREFIX}{policy}`` workload)."
    return build


def adl_policy(name: str) -> str | None:
    """The ADL policy an ``adl-<policy>`` workload times (None: not an ADL workload)."""
    return name[len(ADL_PREFIX):] if name.startswith(ADL_PREFIX) and name[len(ADL_PREFIX):] in ADL_POLICIES else None


#: the standard workloads by name
BUILDERS: dict[str, Callable[..., Workload]] = {"quiet": quiet, "crash": crash, "portfolio": portfolio,
                                                "portfolio-cf": portfolio_cf, "oct10-portfolio": oct10_portfolio,
                                                **{ADL_PREFIX + p: adl_workload(p) for p in ADL_POLICIES}}
#: fewest accounts a scaled-down workload keeps (the crash needs both sides and an ADL queue; the
#: portfolio a long and a short in each of its 15 instruments, oct10-portfolio in each of its 150)
MIN_ACCOUNTS = {"quiet": 2, "crash": 30, "portfolio": 300, "portfolio-cf": 300, "oct10-portfolio": 3_000,
                **{ADL_PREFIX + p: 30 for p in ADL_POLICIES}}
#: fewest ticks a scaled-down workload keeps where 2 are too few (oct10-portfolio: one per
#: instrument, else its tape has more ticks than asked for)
MIN_TICKS = {"oct10-portfolio": OCT10_INSTRUMENTS}


# --------------------------------------------------------------------------- sizes and bars
@dataclass(frozen=True)
class Spec:
    """One workload of a bench run: its size and the reduced size both engines run for the
    speed-up over the reference engine."""

    name: str
    ticks: int
    accounts: int
    reference_ticks: int
    reference_accounts: int

    def scaled(self, scale: float) -> "Spec":
        """Every size times ``scale`` (at least 2 ticks or :data:`MIN_TICKS`, and
        :data:`MIN_ACCOUNTS` accounts)."""
        a, t = MIN_ACCOUNTS[self.name], MIN_TICKS.get(self.name, 2)
        return Spec(self.name, scaled(self.ticks, scale, t), scaled(self.accounts, scale, a),
                    scaled(self.reference_ticks, scale, t), scaled(self.reference_accounts, scale, a))


def scaled(n: int, scale: float, minimum: int = 2) -> int:
    """``n x scale`` rounded, at least ``minimum``."""
    return max(minimum, int(round(n * scale)))


#: the benchmark's sizes; the reference engine runs the parity size (10k accounts x 100k ticks)
FULL = (Spec("quiet", 10_000_000, 1_000_000, 100_000, 10_000),
        Spec("crash", 10_000_000, 1_000_000, 100_000, 10_000),
        Spec("portfolio", 10_000_000, 1_000_000, 10_000, 1_000),
        Spec("portfolio-cf", 10_000_000, 1_000_000, 10_000, 1_000),
        Spec("oct10-portfolio", 3_240_000, 438_000, 6_000, 3_000))
#: ``--quick``: a tenth of the ticks and accounts, the reference on a fifth of the parity size
QUICK = (Spec("quiet", 1_000_000, 100_000, 20_000, 2_000),
         Spec("crash", 1_000_000, 100_000, 20_000, 2_000),
         Spec("portfolio", 1_000_000, 100_000, 4_000, 400),
         Spec("portfolio-cf", 1_000_000, 100_000, 4_000, 400),
         Spec("oct10-portfolio", 324_000, 43_800, 3_000, 3_000))
#: the ``adl-*`` workloads (run only when named by ``--only``): the crash at 1M ticks x 100k
#: accounts (quick: a tenth), the reference comparison at 20,000 x 2,000 (quick: 10,000 x 1,000)
ADL_FULL = tuple(Spec(ADL_PREFIX + p, 1_000_000, 100_000, 20_000, 2_000) for p in ADL_POLICIES)
ADL_QUICK = tuple(Spec(ADL_PREFIX + p, 100_000, 10_000, 10_000, 1_000) for p in ADL_POLICIES)


def select(only: str | None, quick: bool = False) -> list[Spec]:
    """The workloads a bench run measures, in the standard order: the default ones
    (:data:`FULL`), or those ``only`` names (comma-separated workload names; ``adl``: every
    ``adl-*`` workload).

    Raises
    ------
    ValueError
        One line naming an unknown name and listing the valid ones.
    """
    default, adl = (QUICK, ADL_QUICK) if quick else (FULL, ADL_FULL)
    if only is None:
        return list(default)
    known = {s.name: s for s in (*default, *adl)}
    wanted: set[str] = set()
    for name in (x.strip() for x in only.split(",")):
        if name == ADL_GROUP:
            wanted |= {s.name for s in adl}
        elif name in known:
            wanted.add(name)
        else:
            raise ValueError(f"--only {only}: unknown workload {name!r}; expected names among "
                             f"{', '.join(known)}, or {ADL_GROUP} (every {ADL_PREFIX}* workload)")
    return [s for s in known.values() if s.name in wanted]
#: timed rounds of the compiled engine per workload (the best one counts)
ROUNDS = {"full": 5, "quick": 3}

#: the benchmark's bars (the targets the engine must meet), at the full sizes
BAR_QUIET_TICKS_PER_S = 50e6
BAR_CRASH_LIQ_PER_S = 1e6
BAR_CRASH_WALL_S = 10.0
BAR_PARITY_SPEEDUP = 100.0
#: issue 12: the portfolio workload on one core; issue 13: with collateral and funding on
BAR_PORTFOLIO_TICKS_PER_S = 30e6
BAR_PORTFOLIO_CF_TICKS_PER_S = 25e6
#: issue 14 (performance to the limit): quiet (setup included) within this multiple of a NumPy
#: minimum scan over the same prices; crash liquidations/s; oct10-portfolio under this wall time;
#: a weighted ADL policy within this multiple of the queue's time on the same crash (the policies
#: of :data:`BAR_ADL_EXACT_RATIO`: within that)
BAR_QUIET_SCAN_RATIO = 2.5
BAR_CRASH_LIQ_PER_S_LIMIT = 2e6
BAR_OCT10_WALL_S = 1.0
BAR_ADL_RATIO = 3.0
BAR_ADL_EXACT_RATIO = {"risk-aware": 10.0, "water-filling": 10.0}
#: rounds of the NumPy scan the quiet workload is compared with (the best counts)
SCAN_ROUNDS = 5


def memory_bar_mb(input_mb: float) -> float:
    """Peak-memory bar: 2 x the input arrays + 200 MB (quiet: the arrays the engine reads;
    portfolio: every array the scenario holds)."""
    return 2.0 * input_mb + 200.0


def bars(report: dict) -> list[dict]:
    """The benchmark's bars checked against a full-size report (empty for other sizes)."""
    if report["mode"] != "full" or report["scale"] != 1.0:
        return []
    w = {x["name"]: x for x in report["workloads"]}
    out = []

    def bar(name: str, text: str, value: float, met: bool) -> None:
        out.append({"name": name, "bar": text, "value": value, "met": bool(met)})

    def throughput(name: str, ticks_bar: float, input_key: str, inputs: str) -> None:
        x = w[name]
        bar(f"{name} ticks/s", f">= {ticks_bar:,.0f}", x["ticks_per_s"], x["ticks_per_s"] >= ticks_bar)
        limit = memory_bar_mb(x[input_key])
        bar(f"{name} peak memory MB", f"< 2 x {inputs} + 200 = {limit:,.0f}", x["peak_memory_mb"],
            x["peak_memory_mb"] < limit)

    if "quiet" in w:
        throughput("quiet", BAR_QUIET_TICKS_PER_S, "engine_input_mb", "engine inputs")
    if "crash" in w:
        c = w["crash"]
        bar("crash liquidations/s", f">= {BAR_CRASH_LIQ_PER_S:,.0f}", c["liquidations_per_s"],
            c["liquidations_per_s"] >= BAR_CRASH_LIQ_PER_S)
        bar("crash wall s (slowest round)", f"< {BAR_CRASH_WALL_S:g}", max(c["wall_s_rounds"]),
            max(c["wall_s_rounds"]) < BAR_CRASH_WALL_S)
        bar("crash speed-up over the reference", f">= {BAR_PARITY_SPEEDUP:g}x", c["reference"]["speedup"],
            c["reference"]["speedup"] >= BAR_PARITY_SPEEDUP)
    if "portfolio" in w:
        # a portfolio's inputs are its instruments' own tapes, the merged tape and the accounts
        throughput("portfolio", BAR_PORTFOLIO_TICKS_PER_S, "input_mb", "inputs")
    if "portfolio-cf" in w:
        throughput("portfolio-cf", BAR_PORTFOLIO_CF_TICKS_PER_S, "input_mb", "inputs")
    # the bars of the performance work (issue 14); "(limit)" where a name would repeat one above
    if "quiet" in w:
        q = w["quiet"]
        bar("quiet wall s / NumPy minimum scan", f"<= {BAR_QUIET_SCAN_RATIO:g}x", q["numpy_scan_ratio"],
            q["numpy_scan_ratio"] <= BAR_QUIET_SCAN_RATIO)
    if "crash" in w:
        c = w["crash"]
        bar("crash liquidations/s (limit)", f">= {BAR_CRASH_LIQ_PER_S_LIMIT:,.0f}", c["liquidations_per_s"],
            c["liquidations_per_s"] >= BAR_CRASH_LIQ_PER_S_LIMIT)
    if "oct10-portfolio" in w:
        o = w["oct10-portfolio"]
        bar("oct10-portfolio wall s", f"< {BAR_OCT10_WALL_S:g}", o["wall_s"], o["wall_s"] < BAR_OCT10_WALL_S)
    for a in report.get("adl", []):
        limit = BAR_ADL_EXACT_RATIO.get(a["policy"], BAR_ADL_RATIO)
        bar(f"{a['name']} time / queue's", f"<= {limit:g}x", a["ratio"], a["ratio"] <= limit)
    return out


# --------------------------------------------------------------------------- summaries
def engine_liquidations(raw: RawRun) -> int:
    """The engine's own liquidation counter (the last series sample is taken at the last tick)."""
    cum = raw.series["cum_liquidations"]
    return int(cum[-1]) if len(cum) else 0


def liquidation_stats(raw: RawRun) -> dict:
    """Counts of the event log: events, liquidations, accounts liquidated, ADL fills and waves."""
    ev = raw.events
    kind = ev["kind"]
    liq = np.isin(kind, np.array(LIQUIDATION_KINDS, dtype=kind.dtype))
    adl = kind == EventKind.ADL_FILL
    acc = ev["account"][liq]
    adl_ticks = np.unique(ev["tick"][adl])
    adl_ts = np.unique(ev["ts"][adl])
    # a wave: ADL ticks separated from the previous ADL tick by more than 10 s of tape time
    waves = int(np.count_nonzero(np.diff(adl_ts) > 10 * NS) + 1) if len(adl_ts) else 0
    counts = np.bincount(kind.astype(np.int64), minlength=max(EventKind) + 1)
    return {
        "events": int(len(kind)),
        "liquidations": int(liq.sum()),
        "accounts_liquidated": int(len(np.unique(acc[acc >= 0]))),
        "adl_fills": int(adl.sum()),
        "adl_ticks": int(len(adl_ticks)),
        "adl_waves": waves,
        "fund_payments": int(counts[EventKind.FUND_PAYMENT]),
        "bad_debt_events": int(counts[EventKind.BAD_DEBT]),
        "book_liquidations": int(counts[EventKind.LIQUIDATION]),
        "adl_liquidations": int(counts[EventKind.ADL_LIQUIDATION]),
        "max_rounds": int(raw.scalars["max_rounds"]),
        "sim_min": float(raw.scalars["sim_min"]),
        "tape_min": float(raw.scalars["tape_min"]),
        "fund_final": float(raw.scalars["fund_final"]),
        "bad_debt": float(raw.scalars["bad_debt"]),
    }


def event_log_differences(a: dict, b: dict, rtol: float = PARITY_RTOL) -> list[str]:
    """How two event logs differ: lengths, integer columns exactly, floats within ``rtol``."""
    na, nb = len(a["kind"]), len(b["kind"])
    if na != nb:
        return [f"event count: {na} vs {nb}"]
    out = []
    for name, _, _ in EVENT_COLUMNS:
        out += _column_differences(f"events.{name}", a[name], b[name], rtol)
    return out


def _column_differences(name: str, x: np.ndarray, y: np.ndarray, rtol: float) -> list[str]:
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        return [f"{name}: shape {x.shape} vs {y.shape}"]
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        xf, yf = x.astype(np.float64), y.astype(np.float64)
        with np.errstate(invalid="ignore"):
            close = np.abs(xf - yf) <= rtol * np.maximum(np.abs(xf), np.abs(yf))
        bad = ~(close | (xf == yf) | (np.isnan(xf) & np.isnan(yf)))
    else:
        bad = x != y
    if not bad.any():
        return []
    i = int(np.flatnonzero(bad)[0])
    return [f"{name}: {int(bad.sum())} rows differ (first row {i}: {x[i]!r} vs {y[i]!r})"]


def run_differences(a: RawRun, b: RawRun, rtol: float = PARITY_RTOL) -> list[str]:
    """How two runs differ: the event log first, then final account state and scalars."""
    out = event_log_differences(a.events, b.events, rtol)
    for name in ("collateral", "size", "entry", "status"):
        out += _column_differences(name, getattr(a, name), getattr(b, name), rtol)
    for key in SCALARS:
        out += _column_differences(f"scalars.{key}", np.array([a.scalars[key]]),
                                   np.array([b.scalars[key]]), rtol)
    return out


# --------------------------------------------------------------------------- machine facts
def machine() -> dict:
    """Where the figures were measured: CPU, cores, load, Python, NumPy and riskengine."""
    import riskengine

    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu_model": model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "riskengine": riskengine.__version__,
        "loadavg": load,
    }


# --------------------------------------------------------------------------- one child process
def peak_memory_mb() -> float:
    """This process's peak resident memory in MiB: ``VmHWM``, which starts afresh at ``exec``
    (``ru_maxrss`` would carry the peak of the process it was exec'd from)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / MB if sys.platform == "darwin" else rss / 1024.0  # bytes on macOS, KiB elsewhere


def measure(job: dict, progress: Progress = lambda line: None) -> dict:
    """Build one workload and time it; meant to run alone in a fresh process.

    ``job``: ``workload`` (a name in :data:`BUILDERS`), ``ticks``, ``accounts``, ``rounds`` and
    ``kind``: ``"throughput"`` (the compiled engine ``rounds`` times, figures of the best round
    and the process's peak memory; the quiet workload first times :data:`SCAN_ROUNDS` NumPy
    minimum scans over its prices), ``"adl"`` (an ``adl-*`` workload against the queue:
    :func:`measure_adl`) or ``"reference"`` (the reference engine once, the compiled engine
    ``rounds`` times on the same workload, their event logs compared).
    """
    if job["kind"] == "adl":
        return measure_adl(job, progress)
    out = {"workload": job["workload"], "kind": job["kind"], "baseline_memory_mb": peak_memory_mb()}
    start = time.perf_counter()
    w = BUILDERS[job["workload"]](job["ticks"], job["accounts"])
    out.update(ticks=w.ticks, accounts=w.accounts, build_s=time.perf_counter() - start,
               built_memory_mb=peak_memory_mb(), input_bytes=w.input_bytes(),
               engine_input_mb=w.engine_input_mb(), input_mb=w.input_mb(), workload_info=w.info)
    progress(f"built in {out['build_s']:.1f} s")
    reference = None
    if job["kind"] == "reference":
        progress("reference engine (slow) ...")
        reference, seconds = w.run("reference")
        out["reference_s"] = seconds
        out["reference_liquidations"] = engine_liquidations(reference)
        progress(f"reference engine {seconds:.2f} s")
    elif job["workload"] == "quiet":  # the issue-14 yardstick, right before the engine's rounds
        out["numpy_scan_s"] = numpy_scan_s(w.scenario.tape.price)
        progress(f"NumPy minimum scan {out['numpy_scan_s']:.3f} s (best of {SCAN_ROUNDS})")
    elapsed: list[float] = []
    first = None
    for k in range(job["rounds"]):
        raw, seconds = w.run("cython")
        elapsed.append(seconds)
        stats = {"events": int(len(raw.events["kind"])), "liquidations": engine_liquidations(raw)}
        if first is None:
            first = stats
            if reference is not None:
                out["differences"] = run_differences(raw, reference)[:5]
                reference = None
        elif stats != first:
            raise RuntimeError(f"{w.name}: round {k + 1} gave {stats}, round 1 {first}: not deterministic")
        del raw  # before the next round, so two event logs are never held at once
        progress(f"round {k + 1}/{job['rounds']}: {seconds:.3f} s")
    out.update(first or {})
    out["elapsed_s"] = elapsed
    out["peak_memory_mb"] = peak_memory_mb()
    return out


def numpy_scan_s(price: np.ndarray, rounds: int = SCAN_ROUNDS) -> float:
    """Seconds of ``np.minimum.accumulate(price)``, the best of ``rounds``: a sequential pass over
    the prices at memory speed, the yardstick of a quiet replay."""
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        np.minimum.accumulate(price)
        best = min(best, time.perf_counter() - start)
    return best


def measure_adl(job: dict, progress: Progress = lambda line: None) -> dict:
    """An ``adl-<policy>`` workload and the same crash under the ADL queue, timed side by side.

    Both are built in this process (the same seed: the same tape and accounts); each of
    ``job["rounds"]`` rounds runs the queue, then the policy. The policy stops after its first
    round that takes longer than :data:`ADL_SLOW_ROUND_S` (the weighted policies can take
    minutes); the queue runs every round. The best round of each counts.
    """
    name = job["workload"]
    policy = adl_policy(name)
    if policy is None:
        raise ValueError(f"{name}: not an {ADL_PREFIX}* workload")
    out = {"workload": name, "kind": "adl", "policy": policy, "baseline_memory_mb": peak_memory_mb()}
    start = time.perf_counter()
    w = BUILDERS[name](job["ticks"], job["accounts"])
    queue = crash(job["ticks"], job["accounts"], adl="queue")
    out.update(ticks=w.ticks, accounts=w.accounts, build_s=time.perf_counter() - start, workload_info=w.info)
    progress(f"built in {out['build_s']:.1f} s")
    runs: dict[str, list[float]] = {"queue": [], "policy": []}
    first: dict[str, dict] = {}
    for k in range(job["rounds"]):
        for which, work in (("queue", queue), ("policy", w)):
            if which == "policy" and runs["policy"] and runs["policy"][-1] > ADL_SLOW_ROUND_S:
                continue
            raw, seconds = work.run("cython")
            runs[which].append(seconds)
            st = liquidation_stats(raw)
            stats = {"events": st["events"], "liquidations": engine_liquidations(raw), "adl_fills": st["adl_fills"]}
            del raw, st  # before the next run, so two event logs are never held at once
            if which not in first:
                first[which] = stats
            elif stats != first[which]:
                raise RuntimeError(f"{name} ({which}): round {k + 1} gave {stats}, round 1 {first[which]}: "
                                   "not deterministic")
            progress(f"round {k + 1}/{job['rounds']}: {which} {seconds:.3f} s")
    out.update(first["policy"], queue_liquidations=first["queue"]["liquidations"],
               queue_adl_fills=first["queue"]["adl_fills"], policy_s_rounds=runs["policy"],
               queue_s_rounds=runs["queue"], peak_memory_mb=peak_memory_mb())
    return out


#: the child's progress lines on stderr start with this (anything else is kept for errors)
_PROGRESS = "riskengine-bench-progress: "
_CHILD = "from riskengine.bench import _child_main; _child_main()"


def _child_main() -> None:
    """``python -c _CHILD JOB_JSON``: :func:`measure` the job, print its figures as JSON."""
    job = json.loads(sys.argv[1])
    try:
        out = measure(job, lambda line: print(_PROGRESS + line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        sys.exit(130)
    print(json.dumps(out))


class BenchError(RuntimeError):
    """A bench child process failed (its last line of output says why)."""


def run_child(job: dict, progress: Progress = lambda line: None) -> dict:
    """:func:`measure` ``job`` in a fresh Python process; its progress goes to ``progress``.

    Raises
    ------
    BenchError
        When the child fails, with its last line of error output.
    """
    env = dict(os.environ)
    # the child imports this very package, wherever it was imported from
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    cmd = [sys.executable, "-c", _CHILD, json.dumps(job)]
    other: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            for line in proc.stderr:  # stdout is one short JSON line: no pipe can fill up meanwhile
                if line.startswith(_PROGRESS):
                    progress(line[len(_PROGRESS):].rstrip())
                elif line.strip():
                    other.append(line.rstrip())
            stdout = proc.stdout.read()
            code = proc.wait()
        except BaseException:  # Ctrl-C: the child must not run on unseen
            proc.kill()
            raise
    if code != 0:
        why = other[-1] if other else f"exit status {code}"
        raise BenchError(f"{job['workload']} ({job['kind']}, {job['ticks']:,} ticks x "
                         f"{job['accounts']:,} accounts) failed: {why}")
    return json.loads(stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- a bench run
def run(specs: tuple[Spec, ...] | list[Spec], rounds: int, *, mode: str = "full", scale: float = 1.0,
        progress: Progress = lambda line: None) -> dict:
    """Measure each workload (and its reduced copy against the reference engine), each in a
    fresh child process.

    Parameters
    ----------
    specs : sequence of Spec
        The workloads and sizes (:data:`FULL`, :data:`QUICK`, or scaled copies).
    rounds : int
        Timed rounds of the compiled engine per workload; the best counts.
    mode, scale : str, float
        How the sizes were chosen (recorded in the report; the bars apply to full, scale 1).
    progress : callable
        Gets one line per step.

    Returns
    -------
    dict
        The report: ``schema``, ``mode``, ``scale``, ``rounds``, ``date``, ``machine``,
        ``load_after``, ``total_s``, ``workloads`` (one dict per workload, see ``docs/cli/bench.md``),
        ``adl`` (one dict per ``adl-*`` workload) and ``bars``.
    """
    start = time.perf_counter()
    report = {"schema": 1, "mode": mode, "scale": float(scale), "rounds": rounds,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine()}
    steps = 2 * len(specs)
    workloads, adl = [], []
    for i, spec in enumerate(specs):
        def stage(step: int, what: str) -> Progress:
            return lambda line: progress(f"[{step}/{steps}] {spec.name} {what}: {line}")

        is_adl = adl_policy(spec.name) is not None
        job = {"workload": spec.name, "ticks": spec.ticks, "accounts": spec.accounts, "rounds": rounds,
               "kind": "adl" if is_adl else "throughput"}
        what = f"{spec.ticks:,} ticks x {spec.accounts:,} accounts" + (", and the queue" if is_adl else "")
        tp = run_child(job, stage(2 * i + 1, what))
        job = {"workload": spec.name, "ticks": spec.reference_ticks, "accounts": spec.reference_accounts,
               "rounds": rounds, "kind": "reference"}
        ref = run_child(job, stage(2 * i + 2, f"vs reference, {spec.reference_ticks:,} ticks x "
                                              f"{spec.reference_accounts:,} accounts"))
        if is_adl:
            adl.append(_adl_figures(tp, ref))
        else:
            workloads.append(_figures(tp, ref))
    report["workloads"] = workloads
    report["adl"] = adl
    report["load_after"] = machine()["loadavg"]
    report["total_s"] = time.perf_counter() - start
    report["bars"] = bars(report)
    return report


def _reference_figures(ref: dict) -> dict:
    """The comparison with the reference engine on the reduced workload."""
    compiled = min(ref["elapsed_s"])
    return {
        "ticks": ref["ticks"], "accounts": ref["accounts"],
        "reference_s": ref["reference_s"], "compiled_s": compiled,
        "reference_ticks_per_s": ref["ticks"] / ref["reference_s"],
        "compiled_ticks_per_s": ref["ticks"] / compiled,
        "speedup": ref["reference_s"] / compiled,
        "liquidations": ref["liquidations"], "reference_liquidations": ref["reference_liquidations"],
        "identical": not ref["differences"], "differences": ref["differences"],
    }


def _adl_figures(tp: dict, ref: dict) -> dict:
    """One ``adl-*`` workload's entry in the report, from its ADL and reference children."""
    policy, queue = min(tp["policy_s_rounds"]), min(tp["queue_s_rounds"])
    return {
        "name": tp["workload"], "policy": tp["policy"], "ticks": tp["ticks"], "accounts": tp["accounts"],
        "policy_s": policy, "policy_rounds": len(tp["policy_s_rounds"]), "policy_s_rounds": tp["policy_s_rounds"],
        "queue_s": queue, "queue_rounds": len(tp["queue_s_rounds"]), "queue_s_rounds": tp["queue_s_rounds"],
        "ratio": policy / queue, "liquidations": tp["liquidations"], "adl_fills": tp["adl_fills"],
        "events": tp["events"], "queue_liquidations": tp["queue_liquidations"],
        "queue_adl_fills": tp["queue_adl_fills"], "build_s": tp["build_s"],
        "peak_memory_mb": tp["peak_memory_mb"], "reference": _reference_figures(ref),
    }


def _figures(tp: dict, ref: dict) -> dict:
    """One workload's entry in the report, from its throughput and reference children."""
    best = min(tp["elapsed_s"])
    scan = {"numpy_scan_s": tp["numpy_scan_s"], "numpy_scan_ratio": best / tp["numpy_scan_s"]} \
        if "numpy_scan_s" in tp else {}
    return {
        "name": tp["workload"], "ticks": tp["ticks"], "accounts": tp["accounts"],
        "liquidations": tp["liquidations"], "events": tp["events"],
        "rounds": len(tp["elapsed_s"]), "wall_s": best, "wall_s_median": float(np.median(tp["elapsed_s"])),
        "wall_s_rounds": tp["elapsed_s"],
        "ticks_per_s": tp["ticks"] / best, "liquidations_per_s": tp["liquidations"] / best,
        "build_s": tp["build_s"], "peak_memory_mb": tp["peak_memory_mb"],
        "baseline_memory_mb": tp["baseline_memory_mb"], "engine_input_mb": tp["engine_input_mb"],
        "input_mb": tp["input_mb"], **scan, "reference": _reference_figures(ref),
    }


# --------------------------------------------------------------------------- output
def _rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:,.1f}M"
    if x >= 1e3:
        return f"{x / 1e3:,.1f}k"
    return f"{x:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return [line(header), *(line(r) for r in rows)]


def format_report(report: dict) -> str:
    """The report as the terminal shows it."""
    m = report["machine"]
    load = lambda xs: " ".join(f"{x:.2f}" for x in xs) or "n/a"
    out = [f"riskengine {m['riskengine']} bench ({report['mode']}"
           + (f", scale {report['scale']:g}" if report["scale"] != 1.0 else "") + f"), {report['date']}",
           f"{m['cpu_model']}, {m['cpu_count']} cores ({m['cpus_usable']} usable), Python {m['python']}, "
           f"NumPy {m['numpy']}; load average {load(m['loadavg'])} before, {load(report['load_after'])} after",
           ""]
    ws, adl = report["workloads"], report.get("adl", [])
    if ws:
        rows = [[w["name"], f"{w['ticks']:,}", f"{w['accounts']:,}", f"{w['liquidations']:,}", f"{w['wall_s']:.3g}",
                 _rate(w["ticks_per_s"]), _rate(w["liquidations_per_s"]), f"{w['peak_memory_mb']:,.0f}",
                 f"{w['reference']['speedup']:,.0f}x"] for w in ws]
        out += _table(["workload", "ticks", "accounts", "liquidations", "wall s", "ticks/s", "liquidations/s",
                       "peak MB", "speed-up"], rows)
        out += ["", f"wall s: one engine run, the best of {report['rounds']} (building the workload not included)",
                "peak MB: peak resident memory (VmHWM) of a fresh process that imports riskengine, builds the",
                "  workload and runs it; each workload has its own process"]
        out += [f"{w['name']}: wall s = {w['numpy_scan_ratio']:.2f} x np.minimum.accumulate over the same prices "
                f"({w['numpy_scan_s']:.3g} s, best of {SCAN_ROUNDS})" for w in ws if "numpy_scan_s" in w]
    if adl:
        a0 = adl[0]
        out += [""] * bool(ws) + [f"weighted ADL against the queue on the same crash ({a0['ticks']:,} ticks x "
                                  f"{a0['accounts']:,} accounts), side by side in one process:", ""]
        rows = [[a["policy"], f"{a['policy_s']:.3g}", str(a["policy_rounds"]), f"{a['queue_s']:.3g}",
                 f"{a['ratio']:,.1f}x", f"<= {BAR_ADL_EXACT_RATIO.get(a['policy'], BAR_ADL_RATIO):g}x",
                 f"{a['liquidations']:,}", f"{a['adl_fills']:,}"] for a in adl]
        out += _table(["policy", "policy s", "rounds", "queue s", "ratio", "bar", "liquidations", "ADL fills"], rows)
        out += ["", f"policy s, queue s: one engine run, the best of the rounds (the queue: {report['rounds']}; a "
                    f"policy stops after", f"  a round over {ADL_SLOW_ROUND_S:g} s); ratio: policy s / queue s; "
                    "ADL fills: rows of the event log (weighted", "  policies log one row per winner per series "
                    "interval; socialization closes no position)"]
    out += ["", "speed-up: the reference engine (1 run) against the compiled engine (best of "
                f"{report['rounds']}) on the same", "  workload reduced in size (the reference engine is slow):", ""]
    rows = [[w["name"], f"{r['ticks']:,}", f"{r['accounts']:,}", f"{r['liquidations']:,}",
             f"{r['reference_s']:.3g}", f"{r['compiled_s']:.3g}", _rate(r["reference_ticks_per_s"]),
             _rate(r["compiled_ticks_per_s"]), f"{r['speedup']:,.0f}x",
             "yes" if r["identical"] else "NO: " + r["differences"][0]]
            for w in [*ws, *adl] for r in [w["reference"]]]
    out += _table(["workload", "ticks", "accounts", "liquidations", "reference s", "compiled s",
                   "ref ticks/s", "ticks/s", "speed-up", "same events"], rows)
    if report["bars"]:
        out += ["", "the benchmark's bars (targets at the full sizes):"]
        for b in report["bars"]:
            v = b["value"]
            value = _rate(v) if v >= 1e6 else f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
            out.append(f"  {b['name']}: {value} (bar {b['bar']}) {'MET' if b['met'] else 'MISSED'}")
    elif report["mode"] != "full" or report["scale"] != 1.0:
        out += ["", "the benchmark's bars apply to the full sizes only (riskengine bench without --quick "
                    "or --scale)"]
    if m["loadavg"] and m["loadavg"][0] >= 1.0:  # before the start, so not our own load
        out += ["", f"note: other processes were running (load average {m['loadavg'][0]:.2f} at the start, "
                    f"{m['cpu_count']} cores); the figures may be lower than on an idle machine"]
    out += ["", f"total {report['total_s']:.1f} s"]
    return "\n".join(out)


def check_json_path(path: str | os.PathLike) -> Path:
    """Refuse, before anything runs, a ``--json`` path that cannot be written.

    Raises
    ------
    ValueError
        One line naming the path and what is wrong.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ValueError(f"--json {path}: is a folder (expected a file name)")
    if not parent.is_dir():
        raise ValueError(f"--json {path}: folder {parent} does not exist")
    check_writable_dir(parent, f"--json {path}")
    return p


def write_json(report: dict, path: str | os.PathLike) -> Path:
    """Write ``report`` to ``path`` atomically: a temporary sibling, then a rename.

    Raises
    ------
    ValueError
        One line naming the path, when it cannot be written.
    """
    p = check_json_path(path)
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    try:
        return write_atomic(p, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--json {path}: cannot write ({exc.strerror or exc})") from None
