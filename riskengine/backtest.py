"""Run a validated config: build each scenario's tape, stream, population and liquidity, replay
it through every venue design, and write the outputs atomically.

>>> from riskengine import backtest, config
>>> loaded = config.parse({"scenario": {"name": "demo", "synthetic": {"ticks": 2_000}},
...                        "population": {"accounts": 500}, "venues": [{"preset": "hyperliquid"}]})
>>> result = backtest.run_config(loaded)
>>> list(result.table["design"])
['hyperliquid']
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from riskengine import (metrics, observed as observations, population as populations, progress as live, synthetic,
                        venues)
from riskengine.config import (GENERATOR_KEYS, CatalogTape, DepthFile, FileTape, InstrumentSpec, LiquiditySpec,
                               LoadedConfig, PopulationSpec, ScenarioSpec, TapeSpec, Window, canonical_json)
from riskengine.engine import Resolved, Result, event_budget, resolve, run
from riskengine.funding import FundingStream, read_funding
from riskengine.errors import format_validation_error
from riskengine.files import check_output_folder
from riskengine.liquidity import ConstantDepth, DepthCurve, ObservedFlow, window_snapshots
from riskengine.portfolio import Instrument, Portfolio, PortfolioScenario
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import VenueDesign
from riskengine.venues import underlying_of

NS = 1_000_000_000
#: the files ``riskengine run`` writes into its output folder
OUTPUT_FILES = ("results.parquet", "results.csv", "results.md", "results_by_instrument.parquet", "events.parquet",
                "series.parquet", "report.html")
Progress = Callable[[str], None]
#: ``memo(kind, key, load)``: what ``load()`` builds, or the value an earlier call with the same
#: kind and key built (a sweep worker keeps tapes across runs; ``key`` says all they depend on)
Memo = Callable[[str, str, Callable[[], Any]], Any]


def _quiet(_: str) -> None:
    pass


def _no_memo(kind: str, key: str, load: Callable[[], Any]) -> Any:
    return load()


# ---------------------------------------------------------------------------- market data
#: schema metadata of the tables :func:`read_source` returns: the catalog partition they came from
PARTITION_METADATA = (b"riskengine.source", b"riskengine.symbol")


def _from_partition(table: pa.Table, source: str, symbol: str) -> pa.Table:
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          **dict(zip(PARTITION_METADATA, (source.encode(), symbol.encode())))})


def quote_of(table: pa.Table) -> str | None:
    """The quote currency of the prices of a table :func:`read_source` returned (None: unknown)."""
    from riskengine.data.schema import quote_currency

    meta = table.schema.metadata or {}
    source, symbol = (meta[k].decode() if k in meta else None for k in PARTITION_METADATA)
    return quote_currency(symbol, source)


def read_source(loaded: LoadedConfig, spec: FileTape | CatalogTape, where: str) -> pa.Table:
    """The rows a tape or stream table names: a market-data file (validated by its importer,
    through a throw-away catalog) or a catalog partition; the partition's source and symbol
    are in the schema metadata (:func:`quote_of`)."""
    from riskengine.data import Catalog
    from riskengine.data.catalog import STORED_AS

    if isinstance(spec, CatalogTape):
        root = loaded.resolve(spec.catalog)
        if not root.is_dir():
            raise ValueError(f"{where}.catalog: no catalog folder {root}")
        try:
            return _from_partition(Catalog(root).read(spec.kind, spec.source, spec.symbol), spec.source, spec.symbol)
        except ValueError as exc:  # name the config file and the key, e.g. "c.toml: scenarios[2].tape"
            raise ValueError(f"{where}: {exc}") from None
    path = loaded.resolve(spec.path)
    if not path.is_file():
        raise ValueError(f"{where}.path: no such file {path}")
    with tempfile.TemporaryDirectory(prefix="riskengine-") as tmp:
        catalog = Catalog(tmp)
        report = catalog.import_file(path, source=spec.source, kind=spec.kind, sort=spec.sort, dedupe=spec.dedupe)
        kind = STORED_AS.get(report.kind, report.kind)
        symbols = sorted({row["symbol"] for row in catalog.list()})
        if spec.symbol is not None:
            symbol = spec.symbol
            if symbol not in symbols:
                raise ValueError(f"{where}.symbol: {path} holds no {symbol!r} "
                                 f"(it holds {', '.join(symbols[:20])}{' ...' if len(symbols) > 20 else ''})")
        elif len(symbols) == 1:
            symbol = symbols[0]
        else:
            raise ValueError(f"{where}: {path} holds {len(symbols)} symbols; choose one with symbol = "
                             f"(e.g. {', '.join(symbols[:5])})")
        return _from_partition(catalog.read(kind, report.source, symbol), report.source, symbol)


def _within(table: pa.Table, window: Window) -> pa.Table:
    start, end = window.bounds_ns()
    ts = table.column("ts").cast(pa.int64())
    mask = None
    if start is not None:
        mask = pc.greater_equal(ts, start)
    if end is not None:
        upper = pc.less(ts, end)
        mask = upper if mask is None else pc.and_(mask, upper)
    return table if mask is None else table.filter(mask)


def _span(table: pa.Table) -> str:
    ts = table.column("ts")
    return f"{pc.min(ts).as_py().isoformat()} .. {pc.max(ts).as_py().isoformat()}"


def build_tape(loaded: LoadedConfig, spec: ScenarioSpec, where: str, full: pa.Table | None = None) -> Tape:
    """The scenario's tape, cut to its window, with its stream aligned as of each trade;
    ``full``: the tape source's rows when already read."""
    if spec.synthetic is not None:
        s = spec.synthetic
        tape = synthetic.crash_tape(s.ticks, start_price=s.start_price, duration_s=s.duration_s, drop=s.drop,
                                    wick=s.wick, rebound=s.rebound, noise=s.noise, seed=s.seed)
        start, end = spec.window.bounds_ns()
        if start is None and end is None:
            return tape
        keep = np.ones(len(tape), dtype=bool)
        if start is not None:
            keep &= tape.ts >= start
        if end is not None:
            keep &= tape.ts < end
        if keep.sum() < 2:
            raise ValueError(f"{where}.window: holds fewer than 2 ticks of the synthetic tape")
        return Tape.from_arrays(tape.ts[keep], tape.price[keep], tape.qty[keep],
                                None if tape.stream is None else tape.stream[keep])
    if full is None:
        full = read_source(loaded, spec.tape, f"{where}.tape")
    table = _within(full, spec.window)
    if table.num_rows < 2:
        raise ValueError(f"{where}.window: holds {table.num_rows} trade(s) of the tape; the tape spans "
                         f"{_span(full)}")
    table = table.combine_chunks()
    tape = Tape.from_arrays(table.column("ts").cast(pa.int64()).to_numpy(), table.column("price").to_numpy(),
                            table.column("qty").to_numpy(), quote=quote_of(full))
    if spec.stream is None:
        return tape
    stream = read_source(loaded, spec.stream, f"{where}.stream").combine_chunks()
    column = "price" if "price" in stream.column_names else spec.stream.field
    if column not in stream.column_names:
        raise ValueError(f"{where}.stream.field: expected one of mark, index, last for a ticker stream "
                         f"(got {spec.stream.field!r})")
    stream = stream.filter(pc.is_valid(stream.column(column)))
    if stream.num_rows == 0:
        raise ValueError(f"{where}.stream: no {column} values in the stream")
    return tape.with_stream(stream.column("ts").cast(pa.int64()).to_numpy(), stream.column(column).to_numpy())


def population_spec(loaded: LoadedConfig, spec: ScenarioSpec, where: str) -> PopulationSpec:
    """The config's population with this scenario's changes, its ``file`` (if any) resolved
    against the config's folder and checked to exist.

    A scenario that names a ``file`` replaces a generated population wholly (the base's
    generator keys are dropped); one that sets generator keys drops the base's ``file``.
    """
    base = loaded.config.population
    pop = base
    if spec.population:
        changes = spec.population
        data = base.model_dump(exclude_unset=True)
        if "file" in changes:
            data = {k: v for k, v in data.items() if k not in GENERATOR_KEYS}
        elif any(k in GENERATOR_KEYS for k in changes):
            data.pop("file", None)
        try:
            pop = PopulationSpec.model_validate({**data, **changes})
        except ValidationError as exc:
            raise ValueError(format_validation_error(exc, PopulationSpec, f"{where}.population.")) from None
    if pop.file is not None:
        path = loaded.resolve(pop.file)
        if not path.is_file():
            key = (f"{where}.population.file" if "file" in spec.population
                   else f"{where.rsplit(': ', 1)[0]}: population.file")
            raise ValueError(f"{key}: no such file {path}")
        pop = pop.model_copy(update={"file": str(path)})
    return pop


def population_history(loaded: LoadedConfig, spec: ScenarioSpec, pop: PopulationSpec,
                       where: str, full: pa.Table | None = None) -> tuple[Tape | None, int | None]:
    """The tape entries are drawn from and the window start, or ``(None, None)`` when there is
    none: a synthetic tape, a window without a start, ``entry_lookback_s = 0`` or a population
    file. It is the whole tape source (``full`` when already read), since the replayed tape is
    cut to the window."""
    start, _ = spec.window.bounds_ns()
    if pop.file is not None or spec.tape is None or start is None or pop.entry_lookback_s <= 0:
        return None, None
    if full is None:
        full = read_source(loaded, spec.tape, f"{where}.tape")
    table = full.combine_chunks()
    if table.num_rows == 0:
        return None, None
    tape = Tape.from_arrays(table.column("ts").cast(pa.int64()).to_numpy(), table.column("price").to_numpy(),
                            table.column("qty").to_numpy())
    return tape, start


def build_population(pop: PopulationSpec, price: float, tape: Tape | None = None,
                     window_start_ns: int | None = None, where: str = "population") -> Population:
    """The population: read from ``pop.file`` (resolved by :func:`population_spec`), or generated
    and priced at ``price``, with entries drawn from ``tape`` before ``window_start_ns`` when given
    (:func:`riskengine.population.generate`); ``where`` names the table its keys came from."""
    if pop.file is not None:
        return populations.load_population(pop.file)
    try:
        return populations.generate(pop, price, tape, window_start_ns).population
    except ValueError as exc:
        raise ValueError(f"{where}.entry_lookback_s: {exc}"
                         if str(exc).startswith("the entry window") else f"{where}: {exc}") from None


def measured_depth(loaded: LoadedConfig, spec: DepthFile, window: Window, where: str) -> float:
    """Quote notional within ``band_pct`` of mid, per 1%, from Binance ``bookDepth`` snapshots in
    the window: each snapshot's bid and ask band notional averaged, then the statistic over
    snapshots, divided by ``band_pct`` (the constant depth model is linear in the distance)."""
    band_pct = 1.0 if spec.band_pct is None else spec.band_pct
    statistic = spec.statistic or "median"
    table = read_source(loaded, FileTape(source="binance-vision", path=spec.path, kind="depth"), where)
    inside = _within(table, window)
    if inside.num_rows == 0:
        raise ValueError(f"{where}: no depth snapshots inside the window; the file spans {_span(table)}")
    frame = inside.select(["ts", "pct", "notional"]).to_pandas()
    band = frame[np.isclose(frame["pct"].abs(), band_pct)]
    if band.empty:
        bands = sorted(frame["pct"].abs().unique())
        raise ValueError(f"{where}.band_pct: no {band_pct}% band in the file (bands: "
                         f"{', '.join(f'{b:g}' for b in bands)})")
    per_snapshot = band.groupby("ts")["notional"].mean()
    value = float(getattr(per_snapshot, statistic)())
    return value / band_pct


def depth_curve(loaded: LoadedConfig, spec: DepthFile, window: Window, where: str, **model) -> DepthCurve:
    """The time-varying depth curve of a ``bookDepth`` file: the snapshots inside the window and
    the last one before its start (the one in use at the start), with the tail floor
    (:meth:`DepthCurve.with_tail_floor`) at ``spec.tail_floor`` of the file's typical slopes."""
    table = read_source(loaded, FileTape(source="binance-vision", path=spec.path, kind="depth"), where)
    start, end = window.bounds_ns()
    rows = window_snapshots(table, start, end, where)
    named = f"{where} ({loaded.resolve(spec.path)})"
    curve = DepthCurve.from_snapshots(rows, where=named, **model)
    if spec.tail_floor == 0:
        return curve
    # the floor scales with the whole file's typical book, not the window's (maybe collapsed) one
    typical = DepthCurve.from_snapshots(table, where=named).typical_slopes()
    return curve.with_tail_floor(spec.tail_floor * typical)


def observed_flow(loaded: LoadedConfig, spec: FileTape, window: Window, where: str) -> ObservedFlow:
    """Observed liquidations of an events file (Tardis ``liquidations``, Hyperliquid fills)
    before the window's end (earlier ones still weigh, decayed, at the start)."""
    table = read_source(loaded, spec, where)
    if "side" not in table.column_names or "notional" not in table.column_names:
        raise ValueError(f"{where}: expected observed liquidation events (the events kind: ts, kind, side, "
                         f"notional), got columns {', '.join(table.column_names)}")
    flow = ObservedFlow.from_events(table, where)
    return flow.between(None, window.bounds_ns()[1])


def liquidity_spec(loaded: LoadedConfig, spec: ScenarioSpec, where: str) -> LiquiditySpec:
    """The config's liquidity with this scenario's changes."""
    base = loaded.config.liquidity
    if not spec.liquidity:
        return base
    try:
        return LiquiditySpec.model_validate({**base.model_dump(exclude_unset=True), **spec.liquidity})
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, LiquiditySpec, f"{where}.liquidity.")) from None


def instrument_liquidity_spec(loaded: LoadedConfig, spec: ScenarioSpec, k: int, where: str) -> LiquiditySpec | None:
    """The liquidity of instrument ``k`` of a scenario with instruments: the scenario's
    (:func:`liquidity_spec`) with the instrument's own changes, or None when it has none (it then
    uses the scenario's model)."""
    changes = spec.instruments[k].liquidity
    if not changes:
        return None
    base = liquidity_spec(loaded, spec, where)
    try:
        return LiquiditySpec.model_validate({**base.model_dump(exclude_unset=True), **changes})
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, LiquiditySpec, f"{where}.instruments[{k}].liquidity.")) from None


def build_liquidity(loaded: LoadedConfig, window: Window, where: str = "liquidity",
                    liq: LiquiditySpec | None = None) -> ConstantDepth | DepthCurve:
    """The run's liquidity model (plain replay when the config gives no depth): a constant depth
    (``depth_per_pct``, or a ``depth`` file with ``time_varying = false``) or a time-varying
    depth curve from the ``depth`` file, in the configured mode, with the observed flow of
    ``observed`` for a counterfactual replay."""
    liq = liq or loaded.config.liquidity
    model = dict(max_move=liq.max_move, half_life_s=liq.resilience_half_life_s, feedback=liq.feedback,
                 stress_k=liq.stress_k, mode=liq.mode)
    if liq.observed is not None:
        model["observed"] = observed_flow(loaded, liq.observed, window, f"{where}.observed")
    if liq.depth is not None and liq.depth.time_varying:
        return depth_curve(loaded, liq.depth, window, f"{where}.depth", **model)
    if liq.depth is not None:
        depth = measured_depth(loaded, liq.depth, window, f"{where}.depth")
    elif liq.depth_per_pct is not None:
        depth = liq.depth_per_pct
    else:
        depth = float("inf")
    return ConstantDepth(depth, **model)


def scenario_underlying(spec: ScenarioSpec) -> str | None:
    """The asset a scenario's tape prices: its ``underlying``, else from its tape's ``symbol``
    key, else BTC for a synthetic tape (shaped like BTC); None when the config does not say."""
    if spec.underlying is not None:
        return spec.underlying.upper()
    if spec.instruments:  # the designs resolve for the first; each other takes its own (venues.for_symbol)
        return underlying_of(spec.instruments[0].symbol)
    if spec.tape is not None and spec.tape.symbol:
        return underlying_of(spec.tape.symbol)
    if spec.synthetic is not None:
        return "BTC"
    return None


def scenario_date(spec: ScenarioSpec) -> dt.date | None:
    """The replay day whose margin tables apply: the window's start, or the synthetic tape's
    (2025-10-10); None when the config does not say (:func:`run_config` then takes the day of
    the tape's first trade)."""
    if spec.window.start is not None:
        return spec.window.start.astimezone(dt.timezone.utc).date()
    if spec.synthetic is not None or (spec.instruments and all(i.synthetic is not None for i in spec.instruments)):
        return dt.datetime.fromtimestamp(synthetic.CRASH_DAY_START_NS // NS, dt.timezone.utc).date()
    return None


def build_designs(loaded: LoadedConfig, scenario: int | None = None,
                  tape_day: dt.date | None = None) -> list[VenueDesign]:
    """Every venue design of the config, validated; for scenario index ``scenario``, resolved
    for it: each preset without a ``symbol`` takes its venue's symbol for the scenario's
    underlying (:func:`scenario_underlying`) and the tables in force on its date
    (:func:`scenario_date`, else ``tape_day``, the day of the tape's first trade once read;
    neither: the newest tables). When the underlying is unknown the preset's default symbol is
    used, marked assumed (``margin.caveat``)."""
    where = str(loaded.path) if loaded.path is not None else "config"
    underlying = day = None
    context = ""
    if scenario is not None:
        spec = loaded.config.all_scenarios()[scenario]
        underlying, day = scenario_underlying(spec), scenario_date(spec) or tape_day
        context = f" (scenario {spec.name!r}, underlying {underlying or 'not given'})"
    designs = []
    for i, table in enumerate(loaded.config.venues):
        design = venues.build(table, where=f"{where}: venues[{i}]{context}", underlying=underlying, date=day)
        if (scenario is not None and underlying is None and design.preset
                and not {"symbol", "max_leverage", "assumed_table"} & set(table)
                and venues.given_margin(table) is None):
            caveat = "; ".join(x for x in (
                "assumed: the scenario names no underlying, so the preset's default symbol's table is used "
                "(set [scenario] underlying)", design.margin.caveat) if x)
            design = design.with_overrides({"margin": {"caveat": caveat}})
        designs.append(design)
    names = [d.name for d in designs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: venues: design names must be unique (repeated: {', '.join(dupes)}); "
                         f"give each variant a name")
    return designs


def scenario_designs(loaded: LoadedConfig, index: int, tape: Tape) -> list[VenueDesign]:
    """The designs of scenario ``index`` as its run uses them (:func:`build_designs`): with the
    margin tables in force on the scenario's date, or, when it names none, on the day of its
    tape's first trade."""
    if scenario_date(loaded.config.all_scenarios()[index]) is not None:
        return build_designs(loaded, index)
    return build_designs(loaded, index, _tape_day(tape))


def scenario_instrument_designs(loaded: LoadedConfig, index: int, tape) -> list[list[VenueDesign]] | None:
    """:func:`instrument_designs` of scenario ``index`` as its run uses them (the day of its
    tape's first trade when it names no date); None for a single-tape scenario."""
    if not loaded.config.all_scenarios()[index].instruments:
        return None
    return instrument_designs(loaded, index, _tape_day(tape))


def margin_warnings(scenario: str, designs: list[VenueDesign]) -> list[str]:
    """One line per design whose margin table is assumed or out of date (its caveat), or
    incomplete (its gap); a design listed once per instrument gets a line per distinct table."""
    lines = [f"{scenario}: design {d.name!r}: margin table {d.margin.label}: "
             + "; ".join(x for x in (d.margin.caveat, d.margin.gap) if x)
             for d in designs if d.margin.caveat or d.margin.gap]
    return list(dict.fromkeys(lines))  # a design's table shared by several instruments: once


def resolved_warnings(scenario: str, resolved: list[Resolved]) -> list[str]:
    """:func:`margin_warnings` of resolved designs: of each instrument's table (a
    single-instrument scenario: the design's), then each design's collateral caveats (assumed or
    out-of-date collateral ratios, constructed price paths: :func:`riskengine.engine.collateral_variant`)."""
    lines = margin_warnings(scenario, [d for item in resolved for d in item.instruments])
    return lines + list(dict.fromkeys(f"{scenario}: {line}" for item in resolved for line in item.caveats))


def _scenario_where(loaded: LoadedConfig, index: int) -> str:
    where = str(loaded.path) if loaded.path is not None else "config"
    return f"{where}: scenario" if loaded.config.scenario is not None else f"{where}: scenarios[{index}]"


def _check_sources(loaded: LoadedConfig, spec: ScenarioSpec | InstrumentSpec, where: str) -> None:
    """The files and catalog folders of a tape and its stream exist."""
    for part, src in (("tape", spec.tape), ("stream", spec.stream)):
        if isinstance(src, FileTape) and not loaded.resolve(src.path).is_file():
            raise ValueError(f"{where}.{part}.path: no such file {loaded.resolve(src.path)}")
        if isinstance(src, CatalogTape) and not loaded.resolve(src.catalog).is_dir():
            raise ValueError(f"{where}.{part}.catalog: no catalog folder {loaded.resolve(src.catalog)}")


def instrument_designs(loaded: LoadedConfig, index: int, tape_day: dt.date | None = None) -> list[list[VenueDesign]]:
    """Each ``[[venues]]`` table built for each instrument of scenario ``index`` (a scenario
    with instruments), as :func:`build_designs` builds it for a single tape: ``[j][k]`` is
    design ``j`` on instrument ``k``, with its venue's symbol for the underlying of the
    instrument's symbol (:func:`riskengine.venues.underlying_of`) and the tables in force on the
    scenario's date (else ``tape_day``; neither: the newest). A table's own ``symbol``,
    ``max_leverage``, ``date`` or margin table serves every instrument.

    Raises
    ------
    ValueError
        ``FILE: scenarios[i].instruments[k]: venues[j]: ...``: a design whose venue has no margin
        table for the instrument's symbol (or any other problem of the table).
    """
    spec = loaded.config.all_scenarios()[index]
    where, day = _scenario_where(loaded, index), scenario_date(spec) or tape_day
    return [[venues.build(table, where=f"{where}.instruments[{k}]: venues[{j}]", underlying=underlying_of(ins.symbol),
                          date=day) for k, ins in enumerate(spec.instruments)]
            for j, table in enumerate(loaded.config.venues)]


def _tape_day(tape) -> dt.date:
    """The day (UTC) of a tape's first trade."""
    return dt.datetime.fromtimestamp(int(tape.ts[0]) // NS, dt.timezone.utc).date()


def _check_collateral(loaded: LoadedConfig, spec: ScenarioSpec, where: str, designs: list[VenueDesign]) -> None:
    """:func:`check` of a scenario's collateral assets: their stream files exist, and every design
    has a collateral ratio for each (its venue's table, or an assumed one; Hyperliquid: USDC
    only), as :func:`riskengine.engine.collateral_variant` will need."""
    from riskengine import collateral as coll

    items = spec.collateral or ()
    for k, item in enumerate(items):
        streams = [("own_book", item.own_book), *((f"external[{j}]", s) for j, s in enumerate(item.external))]
        for part, src in streams:
            if isinstance(src, FileTape) and not loaded.resolve(src.path).is_file():
                raise ValueError(f"{where}.collateral[{k}].{part}.path: no such file {loaded.resolve(src.path)}")
            if isinstance(src, CatalogTape) and not loaded.resolve(src.catalog).is_dir():
                raise ValueError(f"{where}.collateral[{k}].{part}.catalog: no catalog folder "
                                 f"{loaded.resolve(src.catalog)}")
    if not items:
        return
    assets = [item.asset for item in items]
    for d in designs:
        venue = d.collateral.ratios or d.preset
        try:
            if not venue:
                raise coll.CollateralError("ratios: expected the venue whose collateral ratios apply (the design "
                                           "has no preset)")
            coll.ratios_for(venue, assets, d.collateral.date or scenario_date(spec), d.collateral.assumed)
        except coll.CollateralError as exc:
            raise ValueError(f"{where}: venue design {d.name!r}: collateral: {exc}") from None


def _check_instruments(loaded: LoadedConfig, index: int, spec: ScenarioSpec, where: str,
                       designs: list[VenueDesign]) -> list[str]:
    """:func:`check` of a scenario with instruments: each instrument's margin table in every
    design, its tape, stream and liquidity changes, and the positions file; its description
    line and margin warnings."""
    per = instrument_designs(loaded, index)
    for k, ins in enumerate(spec.instruments):
        here = f"{where}.instruments[{k}]"
        _check_sources(loaded, ins, here)
        instrument_liquidity_spec(loaded, spec, k, where)
    _check_collateral(loaded, spec, where, designs)
    accounts = spec.portfolio
    if accounts.file is not None:
        path = loaded.resolve(accounts.file)
        if not path.is_file():
            raise ValueError(f"{where}.portfolio.file: no such file {path}")
        held = f"the accounts of {path.name}"
    else:
        held = f"{accounts.accounts:,} accounts"
    lines = [f"{spec.name}: {held} in {len(spec.instruments)} instruments ({', '.join(spec.symbols)}) x "
             f"{len(designs)} design(s) ({', '.join(d.name for d in designs)})"]
    return lines + [f"warning: {line}" for line in margin_warnings(spec.name, [d for row in per for d in row])]


def check(loaded: LoadedConfig) -> list[str]:
    """The quick checks of what :func:`run_config` will run, made without reading any tape:
    designs resolve, files exist, populations validate. Returns one description line per
    scenario, each followed by a ``warning:`` line per design whose margin table is assumed or out
    of date. :func:`preflight` makes these and every other check a run makes before its engine
    starts.

    Raises
    ------
    ValueError
        The first problem, as one line.
    """
    build_designs(loaded)
    lines = []
    for i, spec in enumerate(loaded.config.all_scenarios()):
        designs = build_designs(loaded, i)
        for d in designs:
            d.engine_params(ConstantDepth(), 1.0)
        where = _scenario_where(loaded, i)
        if spec.instruments:
            lines += _check_instruments(loaded, i, spec, where, designs)
            continue
        pop = population_spec(loaded, spec, where)
        if spec.observed is not None:  # the folder and the ticker, checked now
            try:
                observations.hyperliquid(loaded.resolve(spec.observed.path), spec.observed.ticker)
            except ValueError as exc:
                raise ValueError(f"{where}.observed: {exc}") from None
        liquidity_spec(loaded, spec, where)
        _check_sources(loaded, spec, where)
        lines.append(f"{spec.name}: {pop.accounts:,} accounts x {len(designs)} design(s) "
                     f"({', '.join(d.name for d in designs)})")
        lines += [f"warning: {line}" for line in margin_warnings(spec.name, designs)]
    depth = loaded.config.liquidity.depth
    if depth is not None and not loaded.resolve(depth.path).is_file():
        raise ValueError(f"liquidity.depth.path: no such file {loaded.resolve(depth.path)}")
    observed = loaded.config.liquidity.observed
    if observed is not None and not loaded.resolve(observed.path).is_file():
        raise ValueError(f"liquidity.observed.path: no such file {loaded.resolve(observed.path)}")
    return lines


def preflight(loaded: LoadedConfig, memo: Memo = _no_memo, engine: str = "cython",
              progress: Progress = _quiet) -> list[str]:
    """Every check :func:`run_config` makes before an engine starts, made without running one:
    :func:`check`, then each scenario built as :func:`prepare` builds it (its tape and stream
    read and cut to the window, its population generated or read, its liquidity model) and every
    design resolved against it (:func:`riskengine.engine.resolve`). ``memo`` keeps what was
    built for the run that follows (:func:`run_config` with the same memo builds nothing again).
    Used by ``riskengine validate``, ``riskengine run`` (every config, before anything runs or
    is written) and a sweep's up-front checks (every run of the grid).

    Returns
    -------
    list of str
        One line per scenario: its trades, accounts, depth and designs.

    Raises
    ------
    ValueError
        The first problem, as one line.
    """
    check(loaded)
    specs = loaded.config.all_scenarios()
    lines = []
    for i, spec in enumerate(specs):
        progress(f"[{i + 1}/{len(specs)}] {spec.name}: loading")
        prepared = prepare(loaded, i, memo)
        designs = scenario_designs(loaded, i, prepared.scenario.tape)
        per = scenario_instrument_designs(loaded, i, prepared.scenario.tape)
        resolved = _resolved(loaded, i, prepared, designs, per, engine)
        lines.append(f"{spec.name}: {_accounts(prepared)} x {len(designs)} design(s) "
                     f"({', '.join(d.name for d in designs)}); {_trades(prepared)}")
        lines += [f"warning: {line}" for line in resolved_warnings(spec.name, resolved)]
    return lines


def _resolved(loaded: LoadedConfig, index: int, prepared: "Prepared", designs: list[VenueDesign],
              per: list[list[VenueDesign]] | None, engine: str) -> list[Resolved]:
    """:func:`riskengine.engine.resolve` of a prepared scenario, a problem named with the config
    file and the scenario (not an environment variable's, which is no part of either)."""
    if engine == "cython":
        event_budget()
    try:
        return resolve(prepared.scenario, designs, prepared.liquidity, engine=engine,
                       series_interval_s=loaded.config.outputs.series_interval_s, instrument_designs=per)
    except ValueError as exc:
        raise ValueError(f"{_scenario_where(loaded, index)}: {exc}") from None


def _accounts(prepared: "Prepared") -> str:
    """A prepared scenario's accounts, for a progress or validate line."""
    scenario = prepared.scenario
    if isinstance(scenario, PortfolioScenario):
        return f"{len(scenario.portfolio):,} accounts, {scenario.portfolio.positions:,} positions"
    return f"{len(scenario.population):,} accounts"


def _trades(prepared: "Prepared") -> str:
    """A prepared scenario's trades (per instrument) and book depth, for a validate line."""
    return (f"{len(prepared.scenario.tape):,} trades, depth {prepared.liquidity.depth_per_pct:,.0f}/1%"
            f"{_each_instrument(prepared)}")


def _each_instrument(prepared: "Prepared") -> str:
    """``; I instruments: SYMBOL trades (depth of its own book), ...`` of a scenario with
    instruments ('' for a single tape)."""
    scenario = prepared.scenario
    if not isinstance(scenario, PortfolioScenario):
        return ""
    each = ", ".join(f"{ins.symbol} {len(ins.tape):,}" + ("" if ins.liquidity is None else
                                                         f" (depth {ins.liquidity.depth_per_pct:,.0f}/1%)")
                     for ins in scenario.instruments)
    return f"; {len(scenario.instruments)} instruments: {each}"


class KeepAll:
    """A :data:`Memo` that keeps everything it built (``riskengine run``: the scenarios its
    checks built are the ones its runs use)."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str], Any] = {}

    def __call__(self, kind: str, key: str, load: Callable[[], Any]) -> Any:
        if (kind, key) not in self._store:
            self._store[kind, key] = load()
        return self._store[kind, key]


@dataclass
class Prepared:
    """One scenario ready to run (``liquidity``: its model; a scenario with instruments: that of
    every instrument without changes of its own)."""

    scenario: Scenario | PortfolioScenario
    liquidity: ConstantDepth | DepthCurve


def tape_key(loaded: LoadedConfig, spec: ScenarioSpec) -> str:
    """What a scenario's tape depends on (source, synthetic shape, stream, window; files as
    absolute paths), as one text: equal keys, equal tapes."""
    return canonical_json(loaded.resolved({"tape": spec.tape, "synthetic": spec.synthetic, "stream": spec.stream,
                                           "window": spec.window}))


def prepare(loaded: LoadedConfig, index: int, memo: Memo = _no_memo) -> Prepared:
    """Build scenario ``index`` of the config (tape, stream, population, liquidity); ``memo``
    may hand back the tape (with the rows of its source), the population or the liquidity
    model built earlier from the same inputs."""
    spec = loaded.config.all_scenarios()[index]
    where = _scenario_where(loaded, index)
    if spec.instruments:
        return _prepare_instruments(loaded, spec, where, memo)
    key = tape_key(loaded, spec)
    full, tape = memo("tape", key, lambda: _load_tape(loaded, spec, where))
    pop_spec = population_spec(loaded, spec, where)

    def load_population() -> Population:
        history, start = population_history(loaded, spec, pop_spec, where, full)
        # the table whose keys made it: the scenario's changes, else the config's [population]
        table = f"{where}.population" if spec.population else f"{where.rsplit(': ', 1)[0]}: population"
        return build_population(pop_spec, float(tape.price[0]), history, start, table)

    pop = memo("population", canonical_json([key, loaded.resolved(pop_spec)]), load_population)
    liq_spec = liquidity_spec(loaded, spec, where)
    liquidity = memo("liquidity", canonical_json(loaded.resolved([liq_spec, spec.window])),
                     lambda: build_liquidity(loaded, spec.window,
                                             f"{where}.liquidity" if spec.liquidity else "liquidity", liq_spec))
    return Prepared(Scenario(spec.name, tape, pop, _funding(loaded, spec.funding, f"{where}.funding", memo)),
                    liquidity)


def _funding(loaded: LoadedConfig, spec: TapeSpec | None, where: str, memo: Memo) -> FundingStream | None:
    """The funding rates a scenario's (or an instrument's) ``funding`` table names (None: none)."""
    if spec is None:
        return None
    return memo("funding", canonical_json(loaded.resolved(spec)), lambda: read_funding(loaded, spec, where))


def _load_tape(loaded: LoadedConfig, spec: ScenarioSpec, where: str) -> tuple[pa.Table | None, Tape]:
    """The rows of a scenario's tape source (None: synthetic) and its tape (:func:`build_tape`)."""
    full = read_source(loaded, spec.tape, f"{where}.tape") if spec.tape is not None else None  # read once
    return full, build_tape(loaded, spec, where, full)


def instrument_tape_spec(spec: ScenarioSpec, k: int) -> ScenarioSpec:
    """Instrument ``k`` of a scenario with instruments as a single-tape scenario: its tape (or
    synthetic) and stream, the scenario's window (what :func:`build_tape` and :func:`tape_key` read)."""
    ins = spec.instruments[k]
    return ScenarioSpec(name=f"{spec.name}/{ins.symbol}", tape=ins.tape, synthetic=ins.synthetic, stream=ins.stream,
                        window=spec.window)


def asset_prices(loaded: LoadedConfig, spec: ScenarioSpec, where: str, memo: Memo = _no_memo) -> list:
    """The prices of a scenario's collateral assets (:class:`riskengine.collateral.AssetPrices`,
    one per ``collateral`` table): own-book and external streams read as mark/index streams are,
    a constructed path generated from its seed (labelled constructed)."""
    from riskengine import collateral as coll

    out = []
    for k, item in enumerate(spec.collateral or ()):
        here = f"{where}.collateral[{k}]"

        def stream(s, name: str):
            def load():
                table = read_source(loaded, s, name).combine_chunks()
                source = s.path if isinstance(s, FileTape) else f"{s.catalog}: {s.kind}/{s.source}/{s.symbol}"
                try:
                    return coll.stream_from_table(table, item.asset, s.field, f"{name} ({source})")
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
            return memo("asset-stream", canonical_json([item.asset, loaded.resolved(s)]), load)

        try:
            if item.constructed is not None:
                c = item.constructed
                own = memo("asset-stream", canonical_json([item.asset, c]), lambda: c.path(item.asset).generate(c.seed))
            else:
                own = None if item.own_book is None else stream(item.own_book, f"{here}.own_book")
            external = [stream(s, f"{here}.external[{j}]") for j, s in enumerate(item.external)]
            out.append(coll.AssetPrices(item.asset, own, tuple(external), item.redemption))
        except coll.CollateralError as exc:
            raise ValueError(f"{here}: {exc}") from None
    return out


def build_portfolio(loaded: LoadedConfig, spec: ScenarioSpec, instruments: list[Instrument], where: str,
                    assets: list | None = None) -> Portfolio:
    """The accounts of a scenario with instruments: read from its positions file, or generated
    (:func:`riskengine.portfolio.generate_portfolio`) and priced at each instrument's first
    trade in the window; holdings of the collateral assets (``assets``, the instruments after
    ``spec.instruments``) from the file's rows in them or ``portfolio.collateral``
    (:func:`riskengine.portfolio.add_holdings`, at each asset's reference index at the start)."""
    from riskengine.generators import DiscreteLeverage
    from riskengine.portfolio import PortfolioSpec, add_holdings, generate_portfolio, load_portfolio

    accounts, symbols = spec.portfolio, spec.symbols
    assets = assets or []
    names = tuple(a.asset for a in assets)
    if accounts.file is not None:
        return load_portfolio(loaded.resolve(accounts.file), symbols + names, assets=names)
    n = len(symbols)
    caps = accounts.per_instrument("max_leverage", n) or (max(accounts.leverage.values),) * n
    try:
        facts = PortfolioSpec(
            symbols=symbols, open_interest_usd=accounts.per_instrument("open_interest_usd", n), max_leverage=caps,
            long_share=accounts.per_instrument("long_share", n), accounts=accounts.accounts,
            holdings=accounts.holdings_for(n), hedged_share=accounts.hedged_share, cross_share=accounts.cross_share,
            cross_excess=accounts.cross_excess, flat_share=accounts.flat_share,
            leverage=DiscreteLeverage(accounts.leverage.values, accounts.leverage.weights), sizes=accounts.sizes,
            entry_spread=accounts.entry_spread, seed=accounts.seed)
        portfolio = generate_portfolio(facts, [float(ins.tape.price[0]) for ins in instruments[:n]]).portfolio
        if not assets:
            return portfolio
        start = min(int(ins.tape.ts[0]) for ins in instruments[:n])
        held = [accounts.collateral.get(name) for name in names]
        return add_holdings(portfolio, [(0.0, 0.0) if h is None else (h.share, h.fraction) for h in held],
                            [float(a.reference(start).asof([start])[0]) for a in assets], accounts.seed)
    except ValueError as exc:
        raise ValueError(f"{where}.portfolio: {exc}") from None


def asset_instruments(instruments: list[Instrument], assets: list, where: str) -> list[Instrument]:
    """One instrument per collateral asset, its tape the asset's reference index at ratio 1 from
    the replay's start (:meth:`riskengine.collateral.AssetPrices.reference`; each design puts its
    own index x ratio there, :func:`riskengine.engine.resolve`), quoted as the instruments are."""
    from riskengine import collateral as coll

    if not assets:
        return []
    start = min(int(ins.tape.ts[0]) for ins in instruments)
    end = max(int(ins.tape.ts[-1]) for ins in instruments) + 1
    quotes = {ins.tape.quote for ins in instruments}
    quote = quotes.pop() if len(quotes) == 1 else None
    out = []
    for k, a in enumerate(assets):
        try:
            ts, price = coll.ratio_tape_prices(a.reference(start), 1.0, start, end)
        except coll.CollateralError as exc:
            raise ValueError(f"{where}.collateral[{k}]: {exc}") from None
        out.append(Instrument(a.asset, Tape.from_arrays(ts, price, quote=quote)))
    return out


def _prepare_instruments(loaded: LoadedConfig, spec: ScenarioSpec, where: str, memo: Memo) -> Prepared:
    """:func:`prepare` of a scenario with instruments: each instrument's tape, stream and book,
    the portfolio, the scenario's liquidity model."""
    liq_spec = liquidity_spec(loaded, spec, where)
    liquidity = memo("liquidity", canonical_json(loaded.resolved([liq_spec, spec.window])),
                     lambda: build_liquidity(loaded, spec.window,
                                             f"{where}.liquidity" if spec.liquidity else "liquidity", liq_spec))
    instruments, keys = [], []
    for k, ins in enumerate(spec.instruments):
        here = f"{where}.instruments[{k}]"
        one = instrument_tape_spec(spec, k)
        key = tape_key(loaded, one)
        _, tape = memo("tape", key, lambda: _load_tape(loaded, one, here))
        own = instrument_liquidity_spec(loaded, spec, k, where)
        book = None if own is None else memo(
            "liquidity", canonical_json(loaded.resolved([own, spec.window])),
            lambda: build_liquidity(loaded, spec.window, f"{here}.liquidity", own))
        instruments.append(Instrument(ins.symbol, tape, book, _funding(loaded, ins.funding, f"{here}.funding", memo)))
        keys.append(key)
    assets = asset_prices(loaded, spec, where, memo)
    instruments += asset_instruments(instruments, assets, where)
    portfolio = memo("portfolio", canonical_json([keys, spec.symbols, loaded.resolved(spec.portfolio),
                                                  loaded.resolved(spec.collateral)]),
                     lambda: build_portfolio(loaded, spec, instruments, where, assets))
    try:
        scenario = PortfolioScenario(spec.name, tuple(instruments), portfolio, scenario_date(spec), tuple(assets))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return Prepared(scenario, liquidity)


def run_config(loaded: LoadedConfig, progress: Progress = _quiet, engine: str = "cython",
               check_invariants: bool = False, memo: Memo = _no_memo, show_progress: bool | None = None,
               warn: Progress = _quiet) -> Result:
    """Run every scenario of a config through every design, each resolved for the scenario
    (:func:`build_designs`; ``check_invariants``: see :func:`riskengine.run`; ``memo``: see
    :func:`prepare`); ``progress`` gets a line per step, ``show_progress`` draws the loading and
    each run live (:mod:`riskengine.progress`; default: when stderr is a terminal), ``warn`` gets
    one line per design whose margin table is assumed or out of date (:func:`margin_warnings`).

    Returns
    -------
    Result
        One table row per scenario x design, events and series labelled likewise.
    """
    specs = loaded.config.all_scenarios()
    for i in range(len(specs)):  # every scenario's designs resolve before any runs
        build_designs(loaded, i)
    tables, by_instrument, events, series, raws = [], [], [], [], []
    for i, spec in enumerate(specs):
        progress(f"[{i + 1}/{len(specs)}] {spec.name}: loading")
        with live.display(show_progress) as shown, shown.task(f"[{i + 1}/{len(specs)}] {spec.name}: loading"):
            prepared = prepare(loaded, i, memo)
        designs = scenario_designs(loaded, i, prepared.scenario.tape)
        per = scenario_instrument_designs(loaded, i, prepared.scenario.tape)
        resolved = _resolved(loaded, i, prepared, designs, per, engine)
        for line in resolved_warnings(spec.name, resolved):
            warn(line)
        tape = prepared.scenario.tape
        progress(f"[{i + 1}/{len(specs)}] {spec.name}: {len(tape):,} trades, {_accounts(prepared)}, depth "
                 f"{prepared.liquidity.depth_per_pct:,.0f}/1%{_each_instrument(prepared)}; {len(designs)} design(s)")
        result = run(prepared.scenario, designs, prepared.liquidity, engine=engine,
                     series_interval_s=loaded.config.outputs.series_interval_s,
                     check_invariants=check_invariants, show_progress=show_progress, instrument_designs=per)
        if spec.observed is not None:
            where = _scenario_where(loaded, i)
            figures = observations.hyperliquid(loaded.resolve(spec.observed.path), spec.observed.ticker)
            for name, value in figures.items():
                result.table[name] = value
            progress(f"[{i + 1}/{len(specs)}] {spec.name}: observed figures of {spec.observed.ticker} "
                     f"from {where}.observed")
        tables.append(result.table)
        by_instrument.append(result.by_instrument)
        events.append(result.events)
        series.append(result.series)
        raws += result.raw
    # a scenario with instruments logs an instrument column; in a config mixing both kinds the
    # other scenarios' rows leave it null
    return Result(_observed_beside_simulated(pd.concat(tables, ignore_index=True)),
                  pa.concat_tables(events, promote_options="default"),
                  pa.concat_tables(series, promote_options="default"), raws,
                  pd.concat(by_instrument, ignore_index=True))


def _observed_beside_simulated(table: pd.DataFrame) -> pd.DataFrame:
    """Each ``observed_*`` column moved right after its simulated twin."""
    columns = [c for c in table.columns if not c.startswith("observed_")]
    for col in observations.COLUMNS:
        if col.name in table.columns:
            columns.insert(columns.index(col.simulated) + 1, col.name)
    return table[columns]


# --------------------------------------------------------------------------------- output
def markdown(table: pd.DataFrame, currency: str | None = None) -> str:
    """A GitHub-flavoured Markdown table of the result table: each heading with its unit (money
    in ``currency``, default :func:`riskengine.metrics.table_currency`), each number as
    :func:`riskengine.metrics.format_value` writes it (as in the terminal)."""
    currency = currency or metrics.table_currency(table)
    head = "| " + " | ".join(metrics.heading(c, currency) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(metrics.format_value(c, v).replace("|", "\\|") for c, v in zip(table.columns, row))
            + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows]) + "\n"


def check_out(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work starts, an output folder that exists (unless ``overwrite``), is a
    file, or cannot be written (:func:`riskengine.files.check_output_folder`).

    Raises
    ------
    ValueError
        One line naming the folder and what is wrong.
    """
    out = check_output_folder(out_dir)
    if out.exists() and not overwrite:
        raise ValueError(_exists(out))
    return out


def _exists(out: Path) -> str:
    return f"{out}: output folder exists (choose another with --out, or pass --overwrite)"


def write_outputs(result: Result, out_dir: str | os.PathLike, overwrite: bool = False,
                  title: str | None = None, source: str | None = None, progress: Progress = _quiet) -> Path:
    """Write the result files into a fresh folder, atomically: everything goes to a hidden
    sibling folder first, which is renamed into place only when every file is complete.
    ``title`` and ``source`` head ``report.html`` (:func:`riskengine.report.render`, which
    reports each scenario it draws to ``progress``).

    Raises
    ------
    ValueError
        ``out_dir`` is refused by :func:`check_out`, or appeared while writing and ``overwrite``
        is false (it is never replaced then).
    """
    out = check_out(out_dir, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        table = pa.Table.from_pandas(result.table, preserve_index=False)
        pq.write_table(table, tmp / "results.parquet")
        result.table.to_csv(tmp / "results.csv", index=False)
        (tmp / "results.md").write_text(markdown(result.table), encoding="utf-8")
        pq.write_table(pa.Table.from_pandas(result.by_instrument, preserve_index=False),
                       tmp / "results_by_instrument.parquet")
        pq.write_table(result.events, tmp / "events.parquet", compression="zstd")
        pq.write_table(result.series, tmp / "series.parquet", compression="zstd")
        from riskengine import report  # matplotlib loads only when a report is written

        page = report.render(result, title=title or "riskengine report", source=source, progress=progress)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        if out.exists():
            if not overwrite:  # made by someone else meanwhile: theirs stays, ours is not reported
                raise ValueError(_exists(out))
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
