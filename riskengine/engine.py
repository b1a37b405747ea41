"""The Python API: run a scenario through venue designs and get results.

>>> from riskengine import run, synthetic
>>> scenario = synthetic.crash_scenario(ticks=2_000, accounts=500, seed=1)
>>> result = run(scenario, synthetic.binance_style())  # the binance-usdm preset
>>> int(result.table["liquidations"].iloc[0]) >= 0
True
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from riskengine import progress
from riskengine.codes import AdlPolicy, MarkMethod
from riskengine.invariants import violations
from riskengine.liquidity import ConstantDepth, DepthCurve
from riskengine.metrics import RunContext, summarize
from riskengine.params import EngineParams
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


def _labelled(table: pa.Table, scenario: str, design: str) -> pa.Table:
    n = table.num_rows
    table = table.add_column(0, "design", pa.array([design] * n, pa.string()))
    return table.add_column(0, "scenario", pa.array([scenario] * n, pa.string()))


#: mark methods that cannot work without a mark/index stream
NEEDS_STREAM = (MarkMethod.STREAM, MarkMethod.INDEX_EMA_BASIS)
#: mark methods that use a stream when the tape has one and fall back to the last price
USES_STREAM = (MarkMethod.BINANCE_MEDIAN, MarkMethod.HL_MEDIAN)


def _check_stream(scenario: Scenario, design: VenueDesign, params: EngineParams) -> np.ndarray:
    """The stream the design's mark method reads (empty when it reads none)."""
    stream = scenario.tape.stream
    if params.mark_method in NEEDS_STREAM and stream is None:
        raise ValueError(
            f"venue design {design.name!r}: mark.method {design.mark.method!r} needs a mark/index "
            f"stream, but scenario {scenario.name!r} has none (use Tape.with_stream)"
        )
    if params.mark_method in NEEDS_STREAM + USES_STREAM and stream is not None:
        return stream
    return np.empty(0, dtype=np.float64)


def run_raw(scenario: Scenario, params: EngineParams, engine: str = "cython",
            stream: np.ndarray | None = None, max_events: int | None = None,
            on_tick: Callable[[int], None] | None = None) -> tuple[RawRun, float]:
    """Run one engine on a validated scenario and resolved parameters.

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
        out = run_engine(tape.ts, tape.price, stream, pop.collateral, pop.size, pop.entry, params, budget)
        raw = RawRun(**out)
    elif engine == "reference":
        from riskengine.reference import run_reference

        ref_stream = stream if len(stream) else np.full(len(tape), np.nan)
        raw = run_reference(tape.ts, tape.price, ref_stream, pop.collateral, pop.size, pop.entry, params, on_tick)
    else:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)} (got {engine!r})")
    return raw, time.perf_counter() - start


def _too_large(exc: MemoryError, scenario: Scenario, design: VenueDesign) -> RunTooLarge:
    """The one line a user reads when a design's event log outgrew its budget."""
    weighted = AdlPolicy[design.adl.policy.upper().replace("-", "_")].merges_fills
    why = (f" ({design.adl.policy} logs up to one ADL fill row per winner per series interval)"
           if weighted else "")
    return RunTooLarge(
        f"design {design.name!r} (ADL policy {design.adl.policy}, {len(scenario.population):,} accounts, "
        f"{len(scenario.tape):,} ticks): {exc}{why}; run fewer accounts or a shorter window"
        f"{', or the queue policy' if weighted else ''}, or raise ${MAX_EVENTS_ENV} on a machine "
        "with more memory")


def resolve(scenario: Scenario, designs: VenueDesign | Iterable[VenueDesign],
            liquidity: ConstantDepth | DepthCurve | None = None, *, engine: str = "cython",
            series_interval_s: float | None = None,
            max_events: int | None = None) -> list[tuple[VenueDesign, EngineParams, np.ndarray]]:
    """Every check :func:`run` makes before an engine starts, and what it resolves: each design
    with its engine parameters and the stream its mark method reads (the arguments as for
    :func:`run`). ``riskengine validate`` and a sweep's up-front checks call it too.

    Raises
    ------
    ValueError
        No design, repeated design names, an unknown engine, a bad series interval or
        ``$RISKENGINE_MAX_EVENTS``, a design the liquidity model cannot resolve, or a mark
        method that needs a stream the tape lacks.
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
    resolved = [(d, d.engine_params(liquidity, interval)) for d in designs]
    return [(d, p, _check_stream(scenario, d, p)) for d, p in resolved]


def series_interval(scenario: Scenario, series_interval_s: float | None = None) -> float:
    """The series sampling interval of a run: ``series_interval_s``, or the tape's span / 2,000."""
    if series_interval_s is None:
        tape = scenario.tape
        return max(float(tape.ts[-1] - tape.ts[0]) / 1e9 / 2000.0, 1e-9)
    if not series_interval_s > 0:
        raise ValueError(f"series_interval_s: expected a positive interval (got {series_interval_s!r})")
    return series_interval_s


def run(scenario: Scenario, designs: VenueDesign | Iterable[VenueDesign],
        liquidity: ConstantDepth | DepthCurve | None = None, *, engine: str = "cython",
        series_interval_s: float | None = None, check_invariants: bool = False,
        max_events: int | None = None, show_progress: bool | None = None) -> Result:
    """Replay ``scenario`` through each venue design.

    Parameters
    ----------
    scenario : Scenario
        Tape and population.
    designs : VenueDesign or iterable of VenueDesign
        The designs to compare; each gets a fresh copy of the population.
    liquidity : ConstantDepth or DepthCurve, optional
        Liquidity model (default: infinite depth, i.e. plain replay).
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

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        On an invalid design, or a mark method that needs a stream the tape lacks.
    RunTooLarge
        When a run's event log passes its budget (or memory runs out).
    """
    # every design is resolved and checked before anything runs
    resolved = resolve(scenario, designs, liquidity, engine=engine, series_interval_s=series_interval_s,
                       max_events=max_events)
    tape = scenario.tape
    rows, events, series, raws = [], [], [], []
    # a plain (pairwise) sum, not np.dot: BLAS would wake its threads, which then spin beside the
    # engine loop (and beside every other worker of a sweep)
    tape_notional = float(np.multiply(tape.price, tape.qty).sum())
    for k, (design, params, stream) in enumerate(resolved, 1):
        try:
            with progress.display(show_progress) as shown, shown.task(
                    f"{scenario.name}: [{k}/{len(resolved)}] {design.name} ({engine})",
                    len(tape) if engine == "reference" else None, "ticks") as advance:
                raw, elapsed = run_raw(scenario, params, engine, stream, max_events, advance)
        except MemoryError as exc:
            raise _too_large(exc, scenario, design) from None
        if check_invariants:
            broken = violations(raw, scenario.population, params)
            if broken:
                raise AssertionError(f"design {design.name!r}: " + "; ".join(broken))
        ctx = RunContext(
            raw=raw, scenario=scenario.name, design=design.name, engine=engine,
            accounts=len(scenario.population),
            positions=int(np.count_nonzero(scenario.population.size)),
            tape_start_ns=int(tape.ts[0]), fund_initial=params.fund_initial,
            vault_initial=params.vault_initial, elapsed_s=elapsed, tape_notional=tape_notional,
            vault_loss_limit=params.vault_loss_limit,
            currency=tape.quote,
            margin_source=design.margin.margin_source,
        )
        rows.append(summarize(ctx))
        events.append(_labelled(raw.events_table(), scenario.name, design.name))
        series.append(_labelled(raw.series_table(), scenario.name, design.name))
        raws.append(raw)
    return Result(pd.DataFrame(rows), pa.concat_tables(events), pa.concat_tables(series), raws)
