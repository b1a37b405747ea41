"""The Python API: run a scenario through venue designs and get results.

>>> from riskengine import run, synthetic
>>> scenario = synthetic.crash_scenario(ticks=2_000, accounts=500, seed=1)
>>> result = run(scenario, synthetic.binance_style())  # the binance-usdm preset
>>> int(result.table["liquidations"].iloc[0]) >= 0
True

A scenario is a :class:`riskengine.scenario.Scenario` (one tape, one population: the
single-instrument path, unchanged) or a :class:`riskengine.portfolio.PortfolioScenario`
(instruments with their own tapes, streams and liquidity models, and a portfolio of accounts
holding them): its tapes are merged in time, its portfolio becomes margin accounts, each design
is resolved per instrument (:func:`riskengine.venues.for_symbol`: the margin table of the
instrument's symbol on the scenario's day) and the engine's ``run_portfolio`` replays it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from riskengine import progress, venues
from riskengine.codes import AdlPolicy, FundingPrice, MarkMethod
from riskengine.engine_inputs import check_margin_accounts, design_params
from riskengine.invariants import ledger_counts, portfolio_violations, violations
from riskengine.liquidity import ConstantDepth, DepthCurve
from riskengine.metrics import COLLATERAL_SOURCE, INSTRUMENT_COLUMNS, MARGIN_SOURCES_SEPARATOR, RunContext, instrument_run, summarize, summarize_instrument
from riskengine.params import EngineParams
from riskengine.portfolio import PortfolioScenario
from riskengine.runlog import EVENT_COLUMNS, RawRun
from riskengine.scenario import Scenario
from riskengine.venue import VenueDesign

ENGINES = ("cython", "reference")

#: bytes of one event-log row of the compiled engine (:data:`riskengine.runlog.EVENT_COLUMNS`)
EVENT_ROW_BYTES = sum(np.dtype(dtype).itemsize for _, dtype, _ in EVENT_COLUMNS)
#: share of the memory available at the start of a run that its event log may fill: after the
#: run the log becomes Arrow tables with two label columns and is summarized, which takes
#: about as much again
EVENT_LOG_MEMORY_SHARE = 1 / 3
#: environment variable that sets the event-log budget in rows (0: no budget)
MAX_EVENTS_ENV = "RISKENGINE_MAX_EVENTS"


class RunTooLarge(MemoryError):
    """A run outgrew its memory (its event log passed :func:`event_budget`, or an allocation
    failed); the message is one line naming the design, its ADL policy, the population and
    what to do instead."""


def _available_memory() -> int | None:
    """Bytes of memory available for a new process (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def event_budget() -> int:
    """Rows the compiled engine's event log may hold in one run (0: no budget).

    ``$RISKENGINE_MAX_EVENTS`` when set, else what fits in :data:`EVENT_LOG_MEMORY_SHARE` of
    the memory available now (no budget where that is unknown). Without a budget a run whose
    log outgrows the machine is killed by the OOM killer, taking the session with it; with one
    it stops with :class:`RunTooLarge`.

    Raises
    ------
    ValueError
        When ``$RISKENGINE_MAX_EVENTS`` is not a whole number >= 0.
    """
    text = os.environ.get(MAX_EVENTS_ENV)
    if text is not None:
        try:
            rows = int(text.replace("_", ""))
        except ValueError:
            rows = -1
        if rows < 0:
            raise ValueError(f"${MAX_EVENTS_ENV}: expected a whole number of rows >= 0 (got {text!r})")
        return rows
    available = _available_memory()
    if available is None:
        return 0
    return max(int(available * EVENT_LOG_MEMORY_SHARE) // EVENT_ROW_BYTES, 1)


@dataclass
class Result:
    """The outcome of one or more runs.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scenario x design (columns: :data:`riskengine.metrics.COLUMNS`).
    by_instrument : pandas.DataFrame
        One row per scenario x design x instrument (columns:
        :data:`riskengine.metrics.INSTRUMENT_COLUMNS`); a single-instrument run has one.
    events : pyarrow.Table
        Event log of every run, with ``scenario`` and ``design`` columns in front.
    series : pyarrow.Table
        Sampled time series of every run, likewise labelled.
    raw : list of RawRun
        The engines' raw outputs, in table order.
    """

    table: pd.DataFrame
    events: pa.Table
    series: pa.Table
    raw: list[RawRun]
    by_instrument: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=[c.name for c in INSTRUMENT_COLUMNS]))


def _labelled(table: pa.Table, scenario: str, design: str) -> pa.Table:
    n = table.num_rows
    table = table.add_column(0, "design", pa.array([design] * n, pa.string()))
    return table.add_column(0, "scenario", pa.array([scenario] * n, pa.string()))


#: mark methods that cannot work without a mark/index stream
NEEDS_STREAM = (MarkMethod.STREAM, MarkMethod.INDEX_EMA_BASIS)
#: mark methods that use a stream when the tape has one and fall back to the last price
USES_STREAM = (MarkMethod.BINANCE_MEDIAN, MarkMethod.HL_MEDIAN)


def _check_stream(scenario: Scenario | PortfolioScenario, design: VenueDesign, params: EngineParams,
                  funded: bool = False) -> np.ndarray:
    """The stream the design's mark method reads, or its funding payments at the index
    (``funded``: it makes some); empty when it reads none. In a portfolio scenario every
    instrument needs its own stream for a method that cannot work without one."""
    stream = scenario.tape.stream
    if params.mark_method in NEEDS_STREAM:
        if isinstance(scenario, PortfolioScenario):
            lacking = [scenario.instruments[k].symbol for k in scenario.perpetuals
                       if scenario.instruments[k].tape.stream is None]
            if lacking:
                raise ValueError(
                    f"venue design {design.name!r}: mark.method {design.mark.method!r} needs a mark/index "
                    f"stream for every instrument, but instrument {lacking[0]} of scenario {scenario.name!r} "
                    "has none (give it a stream)")
        elif stream is None:
            raise ValueError(
                f"venue design {design.name!r}: mark.method {design.mark.method!r} needs a mark/index "
                f"stream, but scenario {scenario.name!r} has none (use Tape.with_stream)"
            )
    at_index = funded and params.funding_price == FundingPrice.INDEX
    if (params.mark_method in NEEDS_STREAM + USES_STREAM or at_index) and stream is not None:
        return stream
    return np.empty(0, dtype=np.float64)


def funding_payments(scenario: Scenario | PortfolioScenario,
                     design: VenueDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The funding payments ``design`` makes on ``scenario``: the time, instrument and rate of
    each, sorted by time, then instrument, as the engines take them (None: none).

    ``funding.rule`` ``data``: the scenario's rates (``Scenario.funding``, each
    ``Instrument.funding``); ``none``: none; ``binance`` / ``hyperliquid``: the venue's formula
    on the premium of each instrument's tape over its stream (:func:`riskengine.funding.
    binance_funding`, :func:`riskengine.funding.hyperliquid_funding`), at the funding times
    whose whole interval the tape and stream cover (a replay shorter than an interval pays none).

    Raises
    ------
    ValueError
        A computed rule on an instrument without a stream (its index).
    """
    from riskengine import funding as fmod

    f = design.funding
    if f.rule == "none":
        return None
    if isinstance(scenario, PortfolioScenario):  # the perpetuals: a collateral asset pays no funding
        items = [(k, f"instrument {ins.symbol} of scenario {scenario.name!r}", ins.symbol, ins.tape, ins.funding)
                 for k, ins in enumerate(scenario.instruments) if k in scenario.perpetuals]
    else:
        items = [(0, f"scenario {scenario.name!r}", scenario.name, scenario.tape, scenario.funding)]
    parts = []
    for k, where, symbol, tape, data in items:
        if f.rule == "data":
            rates = data
        else:
            if tape.stream is None:
                raise ValueError(f"venue design {design.name!r}: funding.rule {f.rule!r} computes rates from the "
                                 f"premium of the tape over its index stream, but {where} has none (give it a stream)")
            known = np.isfinite(tape.stream)
            perp, index = (tape.ts, tape.price), (tape.ts[known], tape.stream[known])
            hours = f.interval_hours if f.rule == "binance" else 1
            if not known.any() or not len(fmod.funding_times(tape.ts, index[0], int(hours * fmod.HOUR_NS),
                                                             fmod.SAMPLE_NS)):
                continue  # no whole funding interval in the replay
            if f.rule == "binance":
                rates = fmod.binance_funding(perp, index, cap=f.cap or fmod.BINANCE_USDM_OTHER_CAP, floor=f.floor,
                                             interval_hours=f.interval_hours, interest_8h=f.interest_8h,
                                             symbol=symbol)
            else:
                rates = fmod.hyperliquid_funding(perp, index, cap=f.cap or fmod.HYPERLIQUID_CAP_PER_HOUR,
                                                 interest_8h=f.interest_8h, symbol=symbol)
        if rates is not None and len(rates):
            parts.append((np.asarray(rates.ts, dtype=np.int64), np.full(len(rates), k, dtype=np.int32),
                          np.asarray(rates.rate, dtype=np.float64)))
    if not parts:
        return None
    ts, inst, rate = (np.concatenate(a) for a in zip(*parts))
    order = np.lexsort((inst, ts))
    return ts[order], inst[order], rate[order]


def _memo_funding(paid: dict, scenario: Scenario | PortfolioScenario,
                  design: VenueDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`funding_payments`, made once per funding setting in ``paid`` (designs that differ
    elsewhere pay the same: computing rates from the premium reads every tick)."""
    key = design.funding.model_dump_json()
    if key not in paid:
        paid[key] = funding_payments(scenario, design)
    return paid[key]


def run_raw(scenario: Scenario, params: EngineParams, engine: str = "cython",
            stream: np.ndarray | None = None, max_events: int | None = None,
            on_tick: Callable[[int], None] | None = None,
            funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[RawRun, float]:
    """Run one engine on a validated scenario and resolved parameters (``funding``: the
    payments to make, :func:`funding_payments`).

    ``max_events`` is the compiled engine's event-log budget in rows (None: :func:`event_budget`,
    0: none); past it the run stops with ``MemoryError``. ``on_tick``: the reference engine's
    progress, called with the ticks done (:func:`riskengine.reference.run_reference`).

    Returns
    -------
    (RawRun, elapsed seconds)
    """
    tape, pop = scenario.tape, scenario.population
    if stream is None:
        stream = tape.stream if tape.stream is not None else np.empty(0, dtype=np.float64)
    start = time.perf_counter()
    if engine == "cython":
        from riskengine._engine import run_engine

        budget = event_budget() if max_events is None else max_events
        out = run_engine(tape.ts, tape.price, stream, pop.collateral, pop.size, pop.entry, params, budget,
                         funding=funding)
        raw = RawRun(**out)
    elif engine == "reference":
        from riskengine.reference import run_reference

        ref_stream = stream if len(stream) else np.full(len(tape), np.nan)
        raw = run_reference(tape.ts, tape.price, ref_stream, pop.collateral, pop.size, pop.entry, params, on_tick,
                            funding=funding)
    else:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)} (got {engine!r})")
    return raw, time.perf_counter() - start


def portfolio_engine(engine: str) -> Callable[..., RawRun | dict]:
    """The ``run_portfolio`` of ``engine``: the compiled engine's or
    :func:`riskengine.reference.run_portfolio` (the same signature).

    Raises
    ------
    ValueError
        An unknown engine.
    """
    if engine == "reference":
        from riskengine.reference._engine import run_portfolio

        return run_portfolio
    if engine == "cython":
        from riskengine._engine import run_portfolio

        return run_portfolio
    raise ValueError(f"engine: expected one of {', '.join(ENGINES)} (got {engine!r})")


def run_portfolio_raw(scenario: PortfolioScenario, params: list[EngineParams], engine: str = "cython",
                      stream: np.ndarray | None = None, max_events: int | None = None,
                      on_tick: Callable[[int], None] | None = None,
                      funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[RawRun, float]:
    """Run one engine's ``run_portfolio`` on a portfolio scenario: its merged tape, its margin
    accounts and one resolved :class:`EngineParams` per instrument (arguments as for
    :func:`run_raw`; ``stream``: the merged tape's stream the design reads, None: the scenario's).

    Returns
    -------
    (RawRun, elapsed seconds)
    """
    run_portfolio = portfolio_engine(engine)
    tape, accounts = scenario.tape, scenario.margin_accounts
    if stream is None:
        stream = tape.stream if tape.stream is not None else np.empty(0, dtype=np.float64)
    budget = event_budget() if max_events is None else max_events
    start = time.perf_counter()
    args = (tape.ts, tape.inst, tape.price, stream, accounts.owner, accounts.collateral, accounts.start,
            accounts.instrument, accounts.size, accounts.entry, list(params), budget)
    out = (run_portfolio(*args, on_tick=on_tick, funding=funding) if engine == "reference"
           else run_portfolio(*args, funding=funding))
    raw = out if isinstance(out, RawRun) else RawRun(**out)
    return raw, time.perf_counter() - start


def _size_of(scenario: Scenario | PortfolioScenario) -> str:
    if isinstance(scenario, PortfolioScenario):
        return (f"{len(scenario.portfolio):,} accounts, {len(scenario.instruments)} instruments, "
                f"{len(scenario.tape):,} ticks")
    return f"{len(scenario.population):,} accounts, {len(scenario.tape):,} ticks"


def _too_large(exc: MemoryError, scenario: Scenario | PortfolioScenario, design: VenueDesign) -> RunTooLarge:
    """The one line a user reads when a design's event log outgrew its budget."""
    weighted = AdlPolicy[design.adl.policy.upper().replace("-", "_")].merges_fills
    why = (f" ({design.adl.policy} logs up to one ADL fill row per winner per series interval)"
           if weighted else "")
    return RunTooLarge(
        f"design {design.name!r} (ADL policy {design.adl.policy}, {_size_of(scenario)}): {exc}{why}; run fewer "
        f"accounts or a shorter window{', or the queue policy' if weighted else ''}, or raise ${MAX_EVENTS_ENV} "
        "on a machine with more memory")


class Resolved(NamedTuple):
    """A design resolved for a scenario (:func:`resolve`)."""

    design: VenueDesign
    """The design as given (its name labels the results)."""
    instruments: tuple[VenueDesign, ...]
    """The design as it applies to each instrument (:func:`riskengine.venues.for_symbol`; a
    single-instrument scenario: the design itself)."""
    params: tuple[EngineParams, ...]
    """One engine parameter set per instrument."""
    stream: np.ndarray
    """The stream the design's mark method reads (empty when none)."""
    scenario: Scenario | PortfolioScenario | None = None
    """The scenario as the design margins it (a portfolio scenario:
    :meth:`riskengine.portfolio.PortfolioScenario.in_margin_mode` of the design's
    ``margin_mode``; else the scenario itself)."""
    funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """The funding payments the design makes (:func:`funding_payments`; None: none)."""
    caveats: tuple[str, ...] = ()
    """Why the design's valuation of collateral assets may not be the venue's: assumed or out of
    date collateral ratios, constructed price paths (:func:`collateral_variant`)."""
    asset_sources: dict[int, str] = {}
    """How the design values each collateral asset instrument (index and ratio, constructed or
    assumed said so): the ``margin_source`` of its per-instrument row."""


def resolve(scenario: Scenario | PortfolioScenario, designs: VenueDesign | Iterable[VenueDesign],
            liquidity: ConstantDepth | DepthCurve | None = None, *, engine: str = "cython",
            series_interval_s: float | None = None, max_events: int | None = None,
            instrument_designs: Sequence[Sequence[VenueDesign]] | None = None) -> list[Resolved]:
    """Every check :func:`run` makes before an engine starts, and what it resolves: each design
    with its engine parameters (one per instrument) and the stream its mark method reads (the
    arguments as for :func:`run`). ``riskengine validate`` and a sweep's up-front checks call it
    too.

    Raises
    ------
    ValueError
        No design, repeated design names, an unknown engine, a bad series interval or
        ``$RISKENGINE_MAX_EVENTS``, a design the liquidity model cannot resolve, or a mark
        method that needs a stream the tape lacks. A portfolio scenario also: an instrument
        whose symbol the design has no margin table for, a ``fund.shared`` or ``backstop.shared``
        naming a symbol the scenario does not hold, a design whose parameters would differ
        between instruments beyond the per-instrument ones
        (:data:`riskengine.engine_inputs.PER_INSTRUMENT_FIELDS`), margin accounts the engine
        cannot take (:func:`riskengine.engine_inputs.check_margin_accounts`), or the compiled
        engine without ``run_portfolio``; a scenario with collateral assets also: a design that
        cannot value one (:func:`collateral_variant`: no ratio, an asset its venue does not take,
        an index the scenario gives no price for).

    Collateral assets (issue 13): each design's scenario has each asset instrument's tape the
    asset's index x ratio as the design values it (:func:`collateral_variant`, once per margin
    mode and valuation); an asset's parameters are the design's with no maintenance margin,
    infinite depth and ``collateral`` set; it pays no funding.
    """
    if isinstance(designs, VenueDesign):
        designs = [designs]
    designs = list(designs)
    if not designs:
        raise ValueError("designs: expected at least one venue design")
    names = [d.name for d in designs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"designs: names must be unique (repeated: {', '.join(dupes)})")
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)} (got {engine!r})")
    if engine == "cython" and max_events is None:
        event_budget()  # a malformed $RISKENGINE_MAX_EVENTS is refused now, not after the first design ran
    interval = series_interval(scenario, series_interval_s)
    if not isinstance(scenario, PortfolioScenario):
        out = []
        paid: dict[str, tuple | None] = {}  # one set of payments per funding setting the designs use
        for d in designs:
            params = d.engine_params(liquidity, interval)
            pays = _memo_funding(paid, scenario, d)
            out.append(Resolved(d, (d,), (params,), _check_stream(scenario, d, params, pays is not None),
                                scenario, pays))
        return out
    day = scenario.start_day
    perps = scenario.perpetuals
    margined: dict[tuple[str, str], tuple[PortfolioScenario, tuple[str, ...], dict[int, str]]] = {}  # per mode, valuation
    keys = []
    for d in designs:
        key = (d.margin_mode, d.collateral.model_dump_json() if scenario.assets else "")
        keys.append(key)
        if key in margined:
            continue
        valued, caveats, sources = collateral_variant(scenario, d)
        held = valued.in_margin_mode(d.margin_mode)
        margined[key] = held, caveats, sources
        accounts, tape = held.margin_accounts, held.tape
        try:
            check_margin_accounts(tape.ts, tape.inst, tape.price, np.empty(0), accounts.owner, accounts.collateral,
                                  accounts.start, accounts.instrument, accounts.size, accounts.entry,
                                  len(scenario.instruments), mode=accounts.mode)
        except ValueError as exc:
            if held is scenario:
                raise
            raise ValueError(f"venue design {d.name!r} (margin_mode {d.margin_mode}): {exc}") from None
    if instrument_designs is not None and (len(instrument_designs) != len(designs) or any(
            len(row) not in (len(scenario.instruments), len(perps)) for row in instrument_designs)):
        raise ValueError(f"instrument_designs: expected one design per instrument ({len(scenario.instruments)}) "
                         f"for each of the {len(designs)} design(s)")
    out = []
    paid: dict[str, tuple | None] = {}  # the perpetuals' tapes are the same in every variant
    for j, d in enumerate(designs):
        if instrument_designs is not None and len(instrument_designs[j]) == len(scenario.instruments):
            per = tuple(instrument_designs[j])
        else:
            given = iter(instrument_designs[j]) if instrument_designs is not None else None
            # a collateral asset has no margin table: the design itself stands for it
            per = tuple((next(given) if given is not None else
                         venues.for_symbol(d, ins.symbol, day, where=f"venue design {d.name!r}")) if k in perps else d
                        for k, ins in enumerate(scenario.instruments))
        # the ledgers of the perpetuals; an asset's deficit (a crossing account of holdings only)
        # draws on the first perpetual's fund and vault (a stated rule: no venue documents one)
        funds, vaults = d.ledgers(tuple(scenario.symbols[k] for k in perps))
        group = dict(zip(perps, zip(funds, vaults)))
        params = []
        for k, (p, ins) in enumerate(zip(per, scenario.instruments)):
            f, v = group.get(k, (funds[0], vaults[0]))
            if k in perps:
                params.append(p.engine_params(ins.liquidity or liquidity, interval, f, v))
            else:  # a holding: no maintenance margin, infinite depth (sold at its price), marked at its tape
                base = p.engine_params(ConstantDepth(), interval, f, v)
                params.append(dataclasses.replace(base, mm_floors=np.array([0.0]), mm_rates=np.array([0.0]),
                                                  mm_whole_position=False, collateral=True))
        params = tuple(params)
        try:
            design_params(params)
        except ValueError as exc:
            raise ValueError(f"venue design {d.name!r} (instruments {', '.join(scenario.symbols)}): {exc}") from None
        held, caveats, sources = margined[keys[j]]
        pays = _memo_funding(paid, held, d)
        out.append(Resolved(d, per, params, _check_stream(held, d, params[perps[0]], pays is not None),
                            held, pays, caveats, sources))
    portfolio_engine(engine)  # last: every problem of the inputs is reported first
    return out


def collateral_variant(scenario: PortfolioScenario,
                       design: VenueDesign) -> tuple[PortfolioScenario, tuple[str, ...], dict[int, str]]:
    """``scenario`` with each collateral asset instrument's tape the asset's price as ``design``
    values it (issue 13): the index of ``design.collateral.index`` built from the scenario's
    prices (:meth:`riskengine.collateral.AssetPrices.index`), times the collateral ratio of the
    design's venue on the date (:func:`riskengine.collateral.ratios_for`), at each index print
    from the replay's start (:func:`riskengine.collateral.ratio_tape_prices`). A scenario without
    collateral assets is returned as is.

    Returns
    -------
    (PortfolioScenario, caveats, sources)
        ``caveats``: assumed or out-of-date ratios and constructed price paths, one line each;
        ``sources``: per asset instrument, its index and ratio as one line
        (:data:`riskengine.metrics.COLLATERAL_SOURCE`, then how it is valued).

    Raises
    ------
    ValueError
        ``venue design 'name': collateral...``: no venue ratio table, an asset the venue does
        not take (Hyperliquid: USDC only) or has no ratio for (unless ``assumed``), an index the
        scenario gives no price for, an index that starts after the replay.
    """
    from riskengine import collateral as coll
    from riskengine.scenario import Tape

    if not scenario.assets:
        return scenario, (), {}
    c = design.collateral
    where = f"venue design {design.name!r}: collateral"
    venue = c.ratios or design.preset
    if not venue:
        raise ValueError(f"{where}.ratios: expected the venue whose collateral ratios apply (the design has no preset; "
                         f"e.g. ratios = \"binance-usdm\")")
    perps = [scenario.instruments[k].tape for k in scenario.perpetuals]
    start = min(int(t.ts[0]) for t in perps)
    end = max(int(t.ts[-1]) for t in perps) + 1
    quotes = {t.quote for t in perps}
    quote = quotes.pop() if len(quotes) == 1 else None
    try:
        ratios, caveats = coll.ratios_for(venue, [a.asset for a in scenario.assets], c.date or scenario.start_day,
                                          c.assumed)
        tapes, sources = {}, {}
        for k, a in zip(scenario.portfolio.assets, scenario.assets):
            index = a.index(c.index, start, c.floor, c.weight, c.min_sources)
            ratio = ratios[a.asset]
            ts, price = coll.ratio_tape_prices(index, ratio.ratio, start, end)
            tapes[k] = Tape.from_arrays(ts, price, quote=quote)
            sources[k] = (f"{COLLATERAL_SOURCE}: {index.label} x {ratio.label}"
                          + (f" ({ratio.source})" if ratio.source.startswith("assumed") else ""))
            if index.constructed:
                caveats.append(f"{a.asset}: index {c.index} built on a constructed price path, not data "
                               f"({index.label})")
    except coll.CollateralError as exc:
        raise ValueError(f"{where}: {exc}") from None
    lines = tuple(f"design {design.name!r}: collateral {line}" for line in caveats)
    return scenario.with_asset_tapes(tapes), lines, sources


def series_interval(scenario: Scenario | PortfolioScenario, series_interval_s: float | None = None) -> float:
    """The series sampling interval of a run: ``series_interval_s``, or the tape's span / 2,000
    (a portfolio scenario: its merged tape's)."""
    if series_interval_s is None:
        tape = scenario.tape
        return max(float(tape.ts[-1] - tape.ts[0]) / 1e9 / 2000.0, 1e-9)
    if not series_interval_s > 0:
        raise ValueError(f"series_interval_s: expected a positive interval (got {series_interval_s!r})")
    return series_interval_s


def _notional(price: np.ndarray, qty: np.ndarray) -> float:
    # a plain (pairwise) sum, not np.dot: BLAS would wake its threads, which then spin beside the
    # engine loop (and beside every other worker of a sweep)
    return float(np.multiply(price, qty).sum())


def _portfolio_contexts(scenario: PortfolioScenario, raw: RawRun, base: RunContext,
                        resolved: Resolved) -> tuple[RunContext, list[RunContext]]:
    """The run's context (its money and counts over every instrument; the drawdowns the largest
    of the instruments') and one per instrument (:func:`riskengine.metrics.instrument_run`)."""
    tape, pf = scenario.tape, scenario.portfolio
    n_inst = len(scenario.instruments)
    ticks = np.bincount(tape.inst, minlength=n_inst)
    held = pf.size != 0
    holders = np.repeat(np.arange(len(pf), dtype=np.int64), np.diff(pf.start))
    per = []
    for k, ins in enumerate(scenario.instruments):
        per.append(RunContext(
            **{**base.__dict__, "raw": instrument_run(raw, k, int(ticks[k])),
               "positions": int(np.count_nonzero(held & (pf.instrument == k))),
               "tape_notional": _notional(ins.tape.price, ins.tape.qty), "currency": ins.tape.quote,
               "margin_source": (resolved.asset_sources.get(k, COLLATERAL_SOURCE) if k in pf.assets else
                                 resolved.instruments[k].margin.margin_source), "instrument": k,
               "symbol": ins.symbol, "collateral": k in pf.assets}))
    scalars = dict(raw.scalars)
    perps = list(scenario.perpetuals)
    if raw.by_instrument is not None:  # the run's drawdowns: the largest fall of any instrument (not an asset)
        for name in ("tape_max_drawdown", "sim_max_drawdown"):
            scalars[name] = float(np.max(np.asarray(raw.by_instrument[name])[perps]))
    sources = list(dict.fromkeys(resolved.instruments[k].margin.margin_source for k in perps))
    total = RunContext(**{**base.__dict__, "raw": RawRun(**{**raw.__dict__, "scalars": scalars}),
                          "positions": int(len(np.unique(holders[held & ~pf.holdings]))), "instruments": n_inst,
                          "margin_source": MARGIN_SOURCES_SEPARATOR.join(sources)})
    return total, per


def run(scenario: Scenario | PortfolioScenario, designs: VenueDesign | Iterable[VenueDesign],
        liquidity: ConstantDepth | DepthCurve | None = None, *, engine: str = "cython",
        series_interval_s: float | None = None, check_invariants: bool = False,
        max_events: int | None = None, show_progress: bool | None = None,
        instrument_designs: Sequence[Sequence[VenueDesign]] | None = None) -> Result:
    """Replay ``scenario`` through each venue design.

    Parameters
    ----------
    scenario : Scenario or PortfolioScenario
        Tape and population, or instruments and a portfolio (each design is then resolved per
        instrument: :func:`riskengine.venues.for_symbol`).
    designs : VenueDesign or iterable of VenueDesign
        The designs to compare; each gets a fresh copy of the population. A portfolio scenario's
        positions are margined as each design's ``margin_mode`` says
        (:meth:`riskengine.portfolio.PortfolioScenario.in_margin_mode`, once per mode) before the
        engine sees its margin accounts.
    liquidity : ConstantDepth or DepthCurve, optional
        Liquidity model (default: infinite depth, i.e. plain replay); in a portfolio scenario,
        that of every instrument that gives none of its own.
    engine : {"cython", "reference"}
        The compiled engine, or the slow plain-Python oracle.
    series_interval_s : float, optional
        Sampling interval of the time series (default: the tape span / 2,000); the weighted ADL
        policies log one fill row per winner per interval (:mod:`riskengine.reference`).
    check_invariants : bool
        Debug mode: check money and position conservation and the ADL and flat-account
        invariants after each run (:mod:`riskengine.invariants`); raise ``AssertionError``
        on a violation.
    max_events : int, optional
        Event-log budget of each run, in rows (default :func:`event_budget`; 0: none).
    show_progress : bool, optional
        Draw each design's run live on stderr (:mod:`riskengine.progress`: the reference engine
        tick by tick, the compiled one with its elapsed time); default: when stderr is a terminal.
    instrument_designs : sequence of sequences of VenueDesign, optional
        A portfolio scenario: each design as it applies to each instrument (``[j][k]``: design
        ``j`` on instrument ``k``), e.g. built from a config's design table per instrument
        (:func:`riskengine.backtest.instrument_designs`); default: :func:`riskengine.venues.for_symbol`
        of each design and instrument symbol on the scenario's day.

    Returns
    -------
    Result
        ``table``: one row per design (its ``instruments`` column: how many were replayed);
        ``by_instrument``: one row per design and instrument.

    Raises
    ------
    ValueError
        On an invalid design, or a mark method that needs a stream the tape lacks (and the
        portfolio checks of :func:`resolve`).
    RunTooLarge
        When a run's event log passes its budget (or memory runs out).
    """
    # every design is resolved and checked before anything runs
    resolved = resolve(scenario, designs, liquidity, engine=engine, series_interval_s=series_interval_s,
                       max_events=max_events, instrument_designs=instrument_designs)
    portfolio = isinstance(scenario, PortfolioScenario)
    tape = scenario.tape
    rows, by_instrument, events, series, raws = [], [], [], [], []
    tape_notional = _notional(tape.price, tape.qty)
    for k, item in enumerate(resolved, 1):
        design, scenario = item.design, item.scenario  # the scenario as the design margins it
        if scenario.tape is not tape:  # its collateral assets priced as the design values them
            tape = scenario.tape
            tape_notional = _notional(tape.price, tape.qty)
        try:
            with progress.display(show_progress) as shown, shown.task(
                    f"{scenario.name}: [{k}/{len(resolved)}] {design.name} ({engine})",
                    len(tape) if engine == "reference" else None, "ticks") as advance:
                if portfolio:
                    raw, elapsed = run_portfolio_raw(scenario, list(item.params), engine, item.stream,
                                                     max_events, advance, item.funding)
                else:
                    raw, elapsed = run_raw(scenario, item.params[0], engine, item.stream, max_events, advance,
                                           item.funding)
        except MemoryError as exc:
            raise _too_large(exc, scenario, design) from None
        if check_invariants:
            if portfolio:
                accounts = scenario.margin_accounts
                broken = portfolio_violations(raw, accounts.owner, accounts.collateral, accounts.instrument,
                                              accounts.size, accounts.entry, item.params[0], start=accounts.start)
            else:
                broken = violations(raw, scenario.population, item.params[0])
            if broken:
                raise AssertionError(f"design {design.name!r}: " + "; ".join(broken))
        params = item.params[0]
        funds, vaults = ledger_counts(raw)  # each fund and vault starts with the design's balance
        ctx = RunContext(
            raw=raw, scenario=scenario.name, design=design.name, engine=engine,
            accounts=len(scenario.portfolio if portfolio else scenario.population),
            positions=0 if portfolio else int(np.count_nonzero(scenario.population.size)),
            tape_start_ns=int(tape.ts[0]), fund_initial=funds * params.fund_initial,
            vault_initial=vaults * params.vault_initial, elapsed_s=elapsed, tape_notional=tape_notional,
            vault_loss_limit=params.vault_loss_limit,
            currency=scenario.quote if portfolio else tape.quote,
            margin_source=design.margin.margin_source, margin_mode=design.margin_mode,
        )
        per = [ctx]
        if portfolio:
            ctx, per = _portfolio_contexts(scenario, raw, ctx, item)
        rows.append(summarize(ctx))
        by_instrument += [summarize_instrument(c) for c in per]
        events.append(_labelled(raw.events_table(), scenario.name, design.name))
        series.append(_labelled(raw.series_table(), scenario.name, design.name))
        raws.append(raw)
    return Result(pd.DataFrame(rows), pa.concat_tables(events), pa.concat_tables(series), raws,
                  pd.DataFrame(by_instrument, columns=[c.name for c in INSTRUMENT_COLUMNS]))
