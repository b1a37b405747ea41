"""Canonical event logs: single-instrument runs recorded on the engine as it was before issue 12's
step 1 (portfolios), how to replay them, and how to compare a replay with them.

Issue 12 turns the engine into a portfolio engine in steps; after each one, single-instrument
scenarios must give exactly what they gave before: the same event log, series, final account
state and scalars, compared with ``np.array_equal`` (NaN equal to NaN) and equal dtypes
(``tests/test_canonical_logs.py``). The recorded files under ``tests/canonical/`` are that
contract. Two groups, one folder each:

``small``
    Small scenarios (340-3,000 ticks, 120-300 accounts) under a spread of designs: every
    preset, every event kind, partial liquidations, fund takeover (with and without a capacity),
    vault takeover and its loss-limit ADL, every ADL policy, ranking and price, limited orders,
    price bands and order caps, every mark method (last, EMA, stream, index + EMA basis, Binance
    median, Hyperliquid median), infinite, constant and snapshot depth with stress thinning, the
    replay, endogenous and counterfactual modes (:func:`small_cases`). Inputs are stored beside
    the outputs (``tapes.parquet``, ``populations.parquet``) and each case's design and
    liquidity model as JSON (``cases.parquet``), so the contract depends on neither the
    generators nor the presets that made it. The reference engine is compared with the same
    files.
``configs``
    Each shipped config (``backtests/*.toml`` and the embedded default of ``riskengine run``)
    built as ``riskengine run`` builds it (:func:`riskengine.backtest.prepare`, the designs of
    :func:`riskengine.backtest.scenario_designs`, the series interval of the whole window), its
    tape then cut to the trades of the first :data:`CONFIG_MINUTES` minutes (population,
    designs, liquidity model and series interval stay those of the whole window). The record
    checks that the cut run's events are the whole run's events before the cut. Most windows
    open an hour or more before their crash, so their first minutes pin the marks, series and
    state of a quiet market; the Hyperliquid config's windows open at 21:00 and liquidate from
    the start. ``cases.parquet`` also holds digests of each case's cut tape, population and
    liquidity model (:func:`config_inputs`) and its design's settings (JSON), so a change in
    how a config is built shows even where the run is quiet.

Each folder holds ``cases.parquet`` (one row per case: scenario x design), ``events.parquet``
and ``series.parquet`` (a ``case`` column, then the run's columns), ``scalars.parquet`` (one row
per case) and ``accounts.parquet`` (the final state of the accounts whose state changed:
``account`` and :data:`ACCOUNT_ARRAYS`; every other account ends as it started,
:func:`start_state`). Parquet with zstd (:func:`write_parquet`); 3.8 MB in all.

Recording refuses to replace files that exist: regenerating them is a deliberate act, said in
the commit message::

    PYTHONPATH=$PWD python tests/_canonical.py record                  # writes missing groups only
    PYTHONPATH=$PWD python tests/_canonical.py record --group small --overwrite
    PYTHONPATH=$PWD python tests/_canonical.py record --group small --overwrite --new-inputs

``--overwrite`` re-records the outputs of a group (the small group from its stored inputs);
``--new-inputs`` also regenerates the small group's inputs from the generators.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import numbers
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from riskengine import backtest, config as configs, run, synthetic, venues
from riskengine.codes import Status
from riskengine.engine import series_interval
from riskengine.liquidity import ConstantDepth, DepthCurve, ObservedFlow
from riskengine.runlog import RawRun
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import VenueDesign

ROOT = Path(__file__).resolve().parents[1]
CANON_DIR = Path(__file__).resolve().parent / "canonical"
GROUPS = ("small", "configs")
NS = 1_000_000_000
#: minutes of each shipped config's tape that are replayed (from its window's first trade)
CONFIG_MINUTES = 20
#: label of the embedded default config of ``riskengine run``
DEFAULT_CONFIG = "default"
#: final account arrays of a run (attributes of :class:`riskengine.runlog.RawRun`)
ACCOUNT_ARRAYS = ("collateral", "size", "entry", "socialized", "status")
#: zstd at its strongest level; float columns byte-stream-split (their bytes grouped by
#: significance compress about a fifth smaller)
PARQUET = dict(compression="zstd", compression_level=19)


# ------------------------------------------------------------------------------ comparing
def _first_difference(name: str, got: np.ndarray, want: np.ndarray, rtol: float,
                      atol: float = 0.0) -> str | None:
    """Why ``got`` is not ``want`` (dtype, length, or the first row that differs), or None.

    Integers compare exactly; floats exactly with NaN equal to NaN, or, with ``rtol`` > 0, to
    that relative tolerance and the absolute one ``atol``."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype:
        return f"{name}: dtype {got.dtype}, canonical {want.dtype}"
    if got.shape != want.shape:
        return f"{name}: {len(got)} rows, canonical {len(want)}"
    if want.dtype.kind == "f":
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        if rtol > 0:
            same |= np.isclose(got, want, rtol=rtol, atol=atol)
    else:
        same = got == want
    if same.all():
        return None
    i = int(np.flatnonzero(~same)[0])
    return f"{name}: {int((~same).sum())} row(s) differ, first row {i}: {got[i]!r}, canonical {want[i]!r}"


def start_state(population: Population) -> dict[str, np.ndarray]:
    """What each final account array holds for an account the run never touched."""
    return {
        "collateral": population.collateral, "size": population.size, "entry": population.entry,
        "socialized": np.zeros(len(population)),
        "status": np.where(population.size != 0, Status.ACTIVE, Status.FLAT).astype(np.int8),
    }


def changed_accounts(raw: RawRun, population: Population) -> dict[str, np.ndarray]:
    """The final state of the accounts whose state differs from :func:`start_state`:
    ``account`` and :data:`ACCOUNT_ARRAYS`."""
    start = start_state(population)
    changed = np.zeros(len(population), dtype=bool)
    for name in ACCOUNT_ARRAYS:
        got, was = getattr(raw, name), start[name]
        changed |= ~((got == was) | (np.isnan(got) & np.isnan(was)) if got.dtype.kind == "f" else got == was)
    rows = np.flatnonzero(changed)
    return {"account": rows.astype(np.int64), **{name: getattr(raw, name)[rows] for name in ACCOUNT_ARRAYS}}


@dataclass
class Expected:
    """One case's canonical outputs."""

    events: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    accounts: dict[str, np.ndarray]
    scalars: dict[str, np.ndarray]


#: scalars that are positions (the rest of the float scalars are money or prices)
POSITION_SCALARS = ("fund_pos", "vault_pos", "ext_pos")


def _largest(values: Any) -> float:
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def differences(raw: RawRun, population: Population, want: Expected, rtol: float = 0.0,
                noise_floor: bool = False) -> list[str]:
    """Every way ``raw`` differs from its canonical outputs (empty: identical). Columns the
    canonical files do not hold (added by a later version) are not compared.

    With ``noise_floor`` (a run whose sums are associated differently from the recording's:
    the lazily split ADL policies), a float also agrees within ``rtol`` times the largest
    value of its kind in the recording: its own column's, or for a scalar the largest open
    interest (positions) or cumulative notional (money), so that what is rounding residue in
    both (an open interest of 1e-13 left after closing 1e6) compares as equal."""
    out = []

    def atol(scale: float) -> float:
        return rtol * scale if noise_floor else 0.0

    for part, got, cols in (("events", raw.events, want.events), ("series", raw.series, want.series)):
        for name, arr in cols.items():
            if name not in got:
                out.append(f"{part}.{name}: missing from the run")
                continue
            out.append(_first_difference(f"{part}.{name}", got[name], arr, rtol, atol(_largest(arr))))
    expected = start_state(population)
    for name in ACCOUNT_ARRAYS:
        full = np.array(expected[name], dtype=want.accounts[name].dtype)
        full[want.accounts["account"]] = want.accounts[name]
        got = getattr(raw, name)
        out.append(_first_difference(f"final {name}", np.asarray(got) if got is not None else np.empty(0), full,
                                     rtol, atol(_largest(full))))
    s = want.series
    positions = max(_largest(s["long_oi"]), _largest(s["short_oi"]))
    money = max(_largest(s["cum_liquidated_notional"]), _largest(s["cum_adl_notional"]))
    for key, arr in want.scalars.items():
        if key not in raw.scalars:
            out.append(f"scalar {key}: missing from the run")
            continue
        out.append(_first_difference(f"scalar {key}", np.array([raw.scalars[key]], dtype=_scalar_dtype(
            raw.scalars[key])), arr, rtol, atol(positions if key in POSITION_SCALARS else max(money, _largest(arr)))))
    return [line for line in out if line]


def _scalar_dtype(value: Any) -> str:
    """Scalars are stored as int64 (counts) or float64 (money, prices, shares)."""
    return "int64" if isinstance(value, numbers.Integral) else "float64"


def digest(value: Any) -> str:
    """SHA-256 (its first 32 hex digits) of an array or a plain value, with its dtype and shape:
    two arrays have the same digest when they are equal as :func:`_first_difference` compares
    them exactly (NaN equal to NaN; -0.0 equal to 0.0, which arithmetic cannot tell apart)."""
    if value is None or isinstance(value, str):
        return hashlib.sha256(repr(value).encode()).hexdigest()[:32]
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        arr = np.where(np.isnan(arr), np.nan, arr + 0.0)
    h = hashlib.sha256(f"{arr.dtype.str} {arr.shape} ".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:32]


def changed_digests(current: dict[str, str], canonical: dict[str, str]) -> list[str]:
    """The inputs whose digest is not the canonical one (inputs added since are not compared)."""
    return [f"input {key}: {'missing' if key not in current else 'differs'}"
            for key, value in canonical.items() if current.get(key) != value]


def changed_settings(current: Any, canonical: Any, path: str = "design") -> list[str]:
    """The settings of a design (its JSON) that differ from the canonical one; settings added
    since, absent from the canonical JSON, are not compared."""
    if isinstance(canonical, dict):
        if not isinstance(current, dict):
            return [f"{path}: {current!r}, canonical a table"]
        return [line for key, value in canonical.items()
                for line in (changed_settings(current[key], value, f"{path}.{key}") if key in current
                             else [f"{path}.{key}: missing"])]
    return [] if current == canonical else [f"{path}: {current!r}, canonical {canonical!r}"]


# ------------------------------------------------------------------------------ storing
def _labelled(case: str, columns: dict[str, np.ndarray]) -> pa.Table:
    n = len(next(iter(columns.values()))) if columns else 0
    return pa.table({"case": pa.array([case] * n, pa.string()), **{k: np.asarray(v) for k, v in columns.items()}})


def run_tables(case: str, raw: RawRun, population: Population) -> dict[str, pa.Table]:
    """One case's outputs as the rows of its group's tables."""
    scalars = {k: np.array([v], dtype=_scalar_dtype(v)) for k, v in raw.scalars.items()}
    return {"events": raw.events_table().add_column(0, "case", pa.array([case] * len(raw.events["ts"]), pa.string())),
            "series": raw.series_table().add_column(0, "case", pa.array([case] * len(raw.series["ts"]), pa.string())),
            "accounts": _labelled(case, changed_accounts(raw, population)),
            "scalars": _labelled(case, scalars)}


def write_parquet(table: pa.Table, path: Path) -> None:
    """One canonical table, compressed as :data:`PARQUET` says."""
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    pq.write_table(table, path, use_byte_stream_split=floats,
                   use_dictionary=[f.name for f in table.schema if f.name not in floats], **PARQUET)


def write_group(folder: Path, tables: dict[str, pa.Table]) -> None:
    """Write a group's tables into ``folder`` whole: into a hidden sibling first, renamed into
    place when every file is complete (an existing folder is replaced only then)."""
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        for name, table in tables.items():
            write_parquet(table, tmp / f"{name}.parquet")
        old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Group:
    """A recorded group read back: its cases and, per case, its canonical outputs."""

    def __init__(self, name: str, folder: Path = CANON_DIR) -> None:
        self.folder = folder / name
        self.cases = pq.read_table(self.folder / "cases.parquet").to_pylist()
        self._tables = {part: pq.read_table(self.folder / f"{part}.parquet")
                        for part in ("events", "series", "accounts", "scalars")}
        self._rows = {part: _rows_by_case(table) for part, table in self._tables.items()}

    def expected(self, case: str) -> Expected:
        """The canonical outputs of ``case``."""
        parts = {}
        for part, table in self._tables.items():
            rows = self._rows[part].get(case, np.empty(0, dtype=np.int64))
            taken = table.take(pa.array(rows, pa.int64()))
            parts[part] = {name: taken.column(name).to_numpy() for name in table.column_names if name != "case"}
        return Expected(**parts)

    def table(self, part: str) -> pa.Table:
        """One of the group's tables (``events``, ``tapes``, ...), whole."""
        return self._tables[part] if part in self._tables else pq.read_table(self.folder / f"{part}.parquet")


def _rows_by_case(table: pa.Table) -> dict[str, np.ndarray]:
    cases = np.asarray(table.column("case").to_pylist(), dtype=object)
    return {case: np.flatnonzero(cases == case) for case in dict.fromkeys(cases.tolist())}


# ------------------------------------------------------------------------------ the small group
@dataclass
class SmallCase:
    """A small scenario under one design."""

    scenario: str
    design: VenueDesign
    liquidity: dict | None = None
    series_interval_s: float = 20.0

    @property
    def name(self) -> str:
        return f"{self.scenario}/{self.design.name}"


def liquidity_model(spec: dict | None) -> ConstantDepth | DepthCurve | None:
    """The liquidity model a case's JSON spec describes: None (infinite depth), ``{"kind":
    "constant", ...}`` (:class:`ConstantDepth` keywords) or ``{"kind": "curve", "ts", "pct",
    "notional", ...}`` (:class:`DepthCurve`); ``observed``: ``{"ts", "side", "notional"}``."""
    if spec is None:
        return None
    spec = dict(spec)
    kind = spec.pop("kind")
    if spec.get("observed") is not None:
        flow = spec["observed"]
        spec["observed"] = ObservedFlow(np.array(flow["ts"], dtype=np.int64), np.array(flow["side"]),
                                        np.array(flow["notional"]))
    if kind == "constant":
        return ConstantDepth(**spec)
    if kind == "curve":
        return DepthCurve(np.array(spec.pop("ts"), dtype=np.int64), np.array(spec.pop("pct")),
                          np.array(spec.pop("notional")), **spec)
    raise ValueError(f"liquidity kind: expected constant or curve (got {kind!r})")


def small_inputs() -> dict[str, Scenario]:
    """The small group's scenarios, from the generators (recorded once; the test reads the
    stored copies)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_parity import make_population, make_tape  # the parity suite's bursts, gaps and flats

    crash = synthetic.crash_scenario(ticks=2_000, accounts=200, seed=3)
    deep_tape = synthetic.crash_tape(3_000, drop=0.30, wick=0.10, rebound=0.02, seed=11)
    deep_pop = synthetic.population(300, price=float(deep_tape.price[0]), open_interest=2e8,
                                    leverage=(10, 20, 50, 100), leverage_weights=(0.3, 0.3, 0.3, 0.1), seed=12)
    rally_tape = synthetic.crash_tape(1_500, drop=-0.15, wick=-0.05, rebound=-0.02, seed=5)
    rally_pop = synthetic.population(150, price=float(rally_tape.price[0]), open_interest=5e7, long_share=0.3,
                                     seed=6)
    rng = np.random.default_rng(2025)
    segments = ["walk", "burst", "crash", "gap", "flat", "rally", "burst", "crash"]
    bursts_tape = make_tape(rng, segments * 3, True)
    bursts_pop = make_population(rng, 120, 0.5)
    return {"crash": crash,
            "deep-crash": Scenario("deep-crash", deep_tape, deep_pop),
            "rally": Scenario("rally", rally_tape, rally_pop),
            "bursts": Scenario("bursts", bursts_tape, bursts_pop)}


def _design(preset: str, name: str, **overrides: Any) -> VenueDesign:
    """A preset on its BTC table of 2025-10-10 (dates pinned: later tables change nothing here)."""
    return venues.build({"preset": preset, "name": name, **overrides}, underlying="BTC", date="2025-10-10")


def _depth_curve(t0: int, scale: float, **model: Any) -> dict:
    """Three snapshots of five bands per side: calm, crash (bids collapsed onto one level, a flat
    stretch), recovering; ``scale`` is the calm depth within 1%."""
    pct = [1.0, 2.0, 3.0, 4.0, 5.0]
    calm = [[1.0, 2.3, 3.4, 4.4, 4.9], [1.0, 1.6, 2.0, 2.4, 2.9]]
    crash = [[0.05, 0.05, 0.05, 0.6, 1.0], [0.4, 0.7, 0.9, 1.1, 1.3]]
    recovering = [[0.3, 0.8, 1.4, 2.0, 2.5], [0.7, 1.2, 1.6, 2.0, 2.4]]
    snaps = (calm, crash, recovering)
    return {"kind": "curve", "ts": [t0, t0 + 3_900 * NS, t0 + 5_400 * NS],
            "pct": [[pct, pct] for _ in snaps],
            "notional": [[[x * scale for x in side] for side in snap] for snap in snaps], **model}


def small_cases(inputs: dict[str, Scenario]) -> list[SmallCase]:
    """The small group's cases: each scenario of :func:`small_inputs` under its designs."""
    t0 = int(inputs["crash"].tape.ts[0])
    deep_t0 = int(inputs["deep-crash"].tape.ts[0])
    const = {"kind": "constant", "depth_per_pct": 5e6, "half_life_s": 30.0}
    thin = {"kind": "constant", "depth_per_pct": 5e5, "half_life_s": 30.0}
    fund_vault = {"fund": {"initial": 2e6}, "backstop": {"vault_balance": 5e6}}
    small_fund_vault = {"fund": {"initial": 2e4}, "backstop": {"vault_balance": 5e4}}
    cases = []
    # every preset, on a crash with moderate funds, a deep crash that exhausts small ones, a rally
    # that squeezes the shorts, and the parity suite's bursts and gaps
    for preset in venues.names():
        cases.append(SmallCase("crash", _design(preset, preset, **fund_vault), const))
        cases.append(SmallCase("deep-crash", _design(preset, preset, **small_fund_vault), thin, 10.0))
        cases.append(SmallCase("rally", _design(preset, preset, **fund_vault), None, 20.0))
        cases.append(SmallCase("bursts", _design(preset, preset, fund={"initial": 50.0},
                                                 backstop={"vault_balance": 200.0}),
                               {"kind": "constant", "depth_per_pct": 200.0}, 5.0))
    # every ADL policy behind Hyperliquid's vault, which runs out in the deep crash
    for policy in ("none", "queue", "pro-rata", "pro-rata-equity", "pro-rata-pnl", "levered-pro-rata",
                   "risk-aware", "water-filling", "socialize"):
        cases.append(SmallCase("deep-crash", _design("hyperliquid", f"hl-adl-{policy}", adl={"policy": policy},
                                                     **small_fund_vault), thin, 10.0))
    # the queue's other rankings and prices, ranked before every order, the risk power
    cases += [
        SmallCase("deep-crash", _design("binance-usdm", "bin-rank-hl-index-mark",
                                        adl={"ranking": "hl-index", "price": "mark", "rank_interval_s": 0.0},
                                        **small_fund_vault), thin, 10.0),
        SmallCase("deep-crash", _design("hyperliquid", "hl-risk-aware-p2",
                                        adl={"policy": "risk-aware", "risk_power": 2.0}, **small_fund_vault),
                  thin, 10.0),
        SmallCase("rally", _design("hyperliquid", "hl-short-mark-over-entry",
                                   adl={"short_mark_over_entry": True}, backstop={"vault_balance": 1e4}),
                  thin, 20.0),
        SmallCase("deep-crash", _design("okx", "okx-fund-drawdown-5pct", fund={"initial": 5e5},
                                        adl={"fund_drawdown": 0.05, "fund_window_s": 600.0}), thin, 10.0),
    ]
    # the vault: its loss limit as a share and as an amount, and without ADL behind it
    cases += [
        SmallCase("deep-crash", _design("hyperliquid", "hl-vault-loss-share-0.05",
                                        backstop={"vault_balance": 2e6, "loss_limit_share": 0.05}), thin, 10.0),
        SmallCase("deep-crash", _design("hyperliquid", "hl-vault-loss-limit-1e4",
                                        backstop={"vault_balance": 2e6, "loss_limit": 1e4}), thin, 10.0),
        SmallCase("deep-crash", _design("hyperliquid", "hl-vault-no-adl",
                                        backstop={"vault_balance": 1e5}, adl={"policy": "none"}), thin, 10.0),
    ]
    # the fund: takeover within a capacity, surplus to the fund, fees
    cases += [
        SmallCase("deep-crash", _design("binance-usdm", "bin-fund-capacity-0.2",
                                        fund={"initial": 1e6, "capacity": 0.2}), thin, 10.0),
        SmallCase("crash", _design("bybit", "bybit-big-fund-fast-unwind",
                                   fund={"initial": 1e8, "unwind_interval_s": 5.0, "unwind_fraction": 1.0}),
                  const),
        SmallCase("deep-crash", _design("bitmex", "bitmex-fee-surplus", liquidation={"fee": 0.005},
                                        fund={"initial": 1e5}), thin, 10.0),
    ]
    # the liquidation order: price band, order cap, throughput, latency, partial fractions
    cases += [
        SmallCase("deep-crash", _design("binance-usdm", "bin-band-0.5pct", liquidation={"price_band": 0.005},
                                        fund={"initial": 1e6}), thin, 10.0),
        SmallCase("deep-crash", _design("hyperliquid", "hl-max-order-2e5", liquidation={"max_order": 2e5},
                                        backstop={"vault_balance": 1e6}), thin, 10.0),
        SmallCase("crash", _design("dydx-v4", "dydx-max-per-step-2-latency-3s",
                                   liquidation={"max_per_step": 2, "latency_s": 3.0}, fund={"initial": 2e6}),
                  const),
        SmallCase("crash", _design("hyperliquid", "hl-partial-from-1e4-no-cooldown",
                                   liquidation={"partial_threshold": 1e4, "partial_fraction": 0.5,
                                                "cooldown_s": 0.0}, **fund_vault), const),
        SmallCase("crash", _design("drift", "drift-whole-table",
                                   margin={"floors": [0.0, 1e5, 1e6], "rates": [0.01, 0.02, 0.05],
                                           "form": "whole-position"}, fund={"initial": 1e6}), const),
    ]
    # every mark method on the crash (its tape carries the index stream), and on the parity tape,
    # whose stream starts late (NaN first)
    for method in ("last", "ema", "stream", "index-ema-basis", "binance-median", "hl-median"):
        cases.append(SmallCase("crash", _design("binance-usdm", f"bin-mark-{method}", mark={"method": method},
                                                fund={"initial": 2e6}), const))
        cases.append(SmallCase("bursts", _design("hyperliquid", f"hl-mark-{method}", mark={"method": method},
                                                 backstop={"vault_balance": 200.0}),
                               {"kind": "constant", "depth_per_pct": 200.0}, 5.0))
    # liquidity: replay, infinite depth, a depth curve with and without stress, a low wall,
    # counterfactual with observed flow (and equal to endogenous without it)
    observed = {"ts": [t0 + s * NS for s in (3_700, 4_200, 4_400, 4_500, 4_600, 5_000)],
                "side": [-1.0, -1.0, -1.0, 1.0, -1.0, 1.0],
                "notional": [2e6, 5e6, 8e6, 1e6, 3e6, 2e6]}
    hl = _design("hyperliquid", "hyperliquid", **fund_vault)
    binance = _design("binance-usdm", "binance-usdm", **fund_vault)
    for label, spec in (
            ("replay", {**const, "mode": "replay"}),
            ("infinite", None),
            ("curve", _depth_curve(t0, 5e6)),
            ("curve-stress", _depth_curve(t0, 5e6, stress_k=4.8, half_life_s=60.0)),
            ("wall-2pct-feedback-0.5", {**thin, "max_move": 0.02, "feedback": 0.5}),
            ("counterfactual", {**const, "mode": "counterfactual", "observed": observed}),
            ("curve-counterfactual", _depth_curve(t0, 5e6, mode="counterfactual", stress_k=1.0,
                                                  observed=observed)),
            ("counterfactual-no-flow", {**const, "mode": "counterfactual"})):
        for base in (hl, binance):
            cases.append(SmallCase("crash", base.with_overrides({"name": f"{base.name}-liq-{label}"}), spec))
    cases.append(SmallCase("deep-crash", _design("hyperliquid", "hl-deep-curve-stress", **small_fund_vault),
                           _depth_curve(deep_t0, 5e5, stress_k=4.8), 10.0))
    return cases


def small_case_rows(cases: list[SmallCase]) -> pa.Table:
    """``cases.parquet`` of the small group: each case's scenario, design and liquidity (JSON)
    and series interval."""
    return pa.table({
        "case": [c.name for c in cases],
        "scenario": [c.scenario for c in cases],
        "design": [json.dumps(c.design.model_dump(mode="json")) for c in cases],
        "liquidity": [json.dumps(c.liquidity) if c.liquidity is not None else None for c in cases],
        "series_interval_s": pa.array([c.series_interval_s for c in cases], pa.float64()),
    })


def input_tables(inputs: dict[str, Scenario]) -> dict[str, pa.Table]:
    """``tapes.parquet`` and ``populations.parquet``: every scenario's arrays, labelled."""
    tapes, pops = [], []
    for name, sc in inputs.items():
        t, p = sc.tape, sc.population
        stream = t.stream if t.stream is not None else np.full(len(t), np.nan)
        tapes.append(_labelled(name, {"ts": t.ts, "price": t.price, "qty": t.qty, "stream": stream,
                                      "has_stream": np.full(len(t), t.stream is not None)}))
        pops.append(_labelled(name, {"collateral": p.collateral, "size": p.size, "entry": p.entry, "mode": p.mode}))
    return {"tapes": pa.concat_tables(tapes), "populations": pa.concat_tables(pops)}


def stored_inputs(folder: Path) -> dict[str, Scenario]:
    """The small group's scenarios, as stored."""
    tapes, pops = pq.read_table(folder / "tapes.parquet"), pq.read_table(folder / "populations.parquet")
    tape_rows, pop_rows = _rows_by_case(tapes), _rows_by_case(pops)
    out = {}
    for name, rows in tape_rows.items():
        t = tapes.take(pa.array(rows, pa.int64()))
        p = pops.take(pa.array(pop_rows[name], pa.int64()))
        col = {k: t.column(k).to_numpy() for k in ("ts", "price", "qty", "stream", "has_stream")}
        tape = Tape.from_arrays(col["ts"], col["price"], col["qty"], col["stream"] if col["has_stream"][0] else None)
        pop = Population.from_arrays(*(p.column(k).to_numpy() for k in ("collateral", "size", "entry", "mode")))
        out[name] = Scenario(name, tape, pop)
    return out


#: the ADL policies whose orders the engines split lazily, in bursts (issue 14): the canonical
#: files hold their order-by-order split (the reference engine without bursts)
LAZILY_SPLIT = ("pro-rata", "levered-pro-rata", "pro-rata-equity")


def lazily_split(row: dict) -> bool:
    """Whether a small case's design splits its ADL orders lazily."""
    return json.loads(row["design"])["adl"]["policy"] in LAZILY_SPLIT


@contextlib.contextmanager
def order_by_order() -> Iterator[None]:
    """The reference engine splits every weighted ADL order at once, winner by winner (no lazy
    bursts): the split the canonical files recorded."""
    from riskengine.reference import _engine as reference

    before = reference.LAZY_BURSTS
    reference.LAZY_BURSTS = False
    try:
        yield
    finally:
        reference.LAZY_BURSTS = before


def run_small_case(row: dict, inputs: dict[str, Scenario], engine: str = "cython") -> RawRun:
    """Run one row of the small group's ``cases.parquet``."""
    design = VenueDesign.from_dict(json.loads(row["design"]))
    liquidity = liquidity_model(json.loads(row["liquidity"]) if row["liquidity"] is not None else None)
    result = run(inputs[row["scenario"]], design, liquidity, engine=engine,
                 series_interval_s=row["series_interval_s"], show_progress=False)
    return result.raw[0]


def record_small_case(row: dict, inputs: dict[str, Scenario]) -> RawRun:
    """The outputs the small group records for a case: the compiled engine's, or for a lazily
    split design the reference engine's order-by-order split."""
    if lazily_split(row):
        with order_by_order():
            return run_small_case(row, inputs, "reference")
    return run_small_case(row, inputs)


def record_small(folder: Path, new_inputs: bool) -> dict[str, pa.Table]:
    """The small group's tables: inputs (generated, or kept from ``folder``), cases and outputs."""
    inputs = small_inputs() if new_inputs or not (folder / "tapes.parquet").is_file() else stored_inputs(folder)
    tables = input_tables(inputs)
    # the inputs as the test will read them back, so outputs come from exactly those arrays
    inputs = _round_trip(tables)
    cases = small_case_rows(small_cases(inputs))
    parts: dict[str, list[pa.Table]] = {"events": [], "series": [], "accounts": [], "scalars": []}
    for row in cases.to_pylist():
        raw = record_small_case(row, inputs)
        for part, table in run_tables(row["case"], raw, inputs[row["scenario"]].population).items():
            parts[part].append(table)
        print(f"  {row['case']}: {len(raw.events['ts'])} events", file=sys.stderr)
    return {**tables, "cases": cases, **{k: pa.concat_tables(v) for k, v in parts.items()}}


def _round_trip(tables: dict[str, pa.Table]) -> dict[str, Scenario]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, table in tables.items():
            write_parquet(table, Path(tmp) / f"{name}.parquet")
        return stored_inputs(Path(tmp))


# ------------------------------------------------------------------------------ the configs group
def shipped_configs() -> list[str]:
    """Labels of the shipped configs: each ``backtests/*.toml`` by file name, and the default."""
    return sorted(p.name for p in (ROOT / "backtests").glob("*.toml")) + [DEFAULT_CONFIG]


def load_config(label: str) -> configs.LoadedConfig:
    """A shipped config by its label."""
    return configs.load_default() if label == DEFAULT_CONFIG else configs.load(ROOT / "backtests" / label)


def needs_shared_data(loaded: configs.LoadedConfig) -> bool:
    """Whether a config reads market-data files (a tape, a depth or an observed-flow file), which
    the shipped configs keep in ../shared/data."""
    cfg = loaded.config
    return (any(s.tape is not None for s in cfg.all_scenarios())
            or cfg.liquidity.depth is not None or cfg.liquidity.observed is not None)


def first_minutes(scenario: Scenario, minutes: float) -> Scenario:
    """The scenario with its tape cut to the trades of its first ``minutes`` (population kept)."""
    tape = scenario.tape
    keep = int(np.searchsorted(tape.ts, tape.ts[0] + round(minutes * 60 * NS), side="left"))
    cut = Tape.from_arrays(tape.ts[:keep], tape.price[:keep], tape.qty[:keep],
                           None if tape.stream is None else tape.stream[:keep], tape.quote)
    return Scenario(scenario.name, cut, scenario.population)


@dataclass
class ConfigRun:
    """One design of one scenario of a shipped config, run on the first minutes."""

    case: str
    scenario: Scenario
    raw: RawRun
    series_interval_s: float
    whole: Scenario
    design: VenueDesign
    liquidity: Any


def config_inputs(item: ConfigRun) -> dict[str, str]:
    """Digests of what a config case is built from: its cut tape, its population and each
    field of its liquidity model (:func:`digest`)."""
    tape, pop, liquidity = item.scenario.tape, item.scenario.population, item.liquidity
    out = {f"tape.{k}": digest(getattr(tape, k)) for k in ("ts", "price", "qty", "stream")}
    out |= {f"population.{k}": digest(getattr(pop, k)) for k in ("collateral", "size", "entry", "mode")}
    out["liquidity"] = digest(type(liquidity).__name__)
    for field in dataclasses.fields(liquidity):
        value = getattr(liquidity, field.name)
        if not field.compare:  # a label for messages
            continue
        if isinstance(value, ObservedFlow):
            out |= {f"liquidity.observed.{k}": digest(getattr(value, k)) for k in ("ts", "side", "notional")}
        else:
            out[f"liquidity.{field.name}"] = digest(value)
    return out


def config_runs(label: str, minutes: float = CONFIG_MINUTES, engine: str = "cython") -> Iterator[ConfigRun]:
    """Each scenario x design of a shipped config, built as ``riskengine run`` builds it, run on
    the first ``minutes`` of its tape with the series interval of the whole window."""
    loaded = load_config(label)
    for i, spec in enumerate(loaded.config.all_scenarios()):
        prepared = backtest.prepare(loaded, i)
        designs = backtest.scenario_designs(loaded, i, prepared.scenario.tape)
        interval = series_interval(prepared.scenario, loaded.config.outputs.series_interval_s)
        cut = first_minutes(prepared.scenario, minutes)
        result = run(cut, designs, prepared.liquidity, engine=engine, series_interval_s=interval,
                     show_progress=False)
        for design, raw in zip(designs, result.raw):
            yield ConfigRun(f"{label}/{spec.name}/{design.name}", cut, raw, interval, prepared.scenario, design,
                            prepared.liquidity)


def _check_prefix(item: ConfigRun) -> None:
    """The cut run's events are the whole window's run's events before the cut (the cut changes
    nothing before it: nothing in the engine looks ahead)."""
    whole = run(item.whole, item.design, item.liquidity, series_interval_s=item.series_interval_s,
                show_progress=False).raw[0]
    ticks = len(item.scenario.tape)
    before = whole.events["tick"] < ticks
    for name, arr in item.raw.events.items():
        problem = _first_difference(f"{item.case}: events.{name}", arr, whole.events[name][before], 0.0)
        if problem:
            raise AssertionError(f"the cut run differs from the whole run before the cut: {problem}")


def record_configs() -> dict[str, pa.Table]:
    """The configs group's tables (every shipped config; ../shared/data must be there)."""
    rows = []
    parts: dict[str, list[pa.Table]] = {"events": [], "series": [], "accounts": [], "scalars": []}
    for label in shipped_configs():
        data = needs_shared_data(load_config(label))
        for item in config_runs(label):
            _check_prefix(item)
            rows.append({"case": item.case, "config": label, "scenario": item.scenario.name,
                         "design_name": item.design.name, "minutes": float(CONFIG_MINUTES),
                         "ticks": len(item.scenario.tape), "accounts": len(item.scenario.population),
                         "series_interval_s": item.series_interval_s, "needs_shared_data": data,
                         "design": json.dumps(item.design.model_dump(mode="json")),
                         "inputs": json.dumps(config_inputs(item))})
            for part, table in run_tables(item.case, item.raw, item.scenario.population).items():
                parts[part].append(table)
            print(f"  {item.case}: {len(item.scenario.tape)} ticks, {len(item.raw.events['ts'])} events",
                  file=sys.stderr)
    return {"cases": pa.Table.from_pylist(rows), **{k: pa.concat_tables(v) for k, v in parts.items()}}


# ------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/_canonical.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record the canonical outputs on the engine as it is now")
    rec.add_argument("--group", choices=GROUPS, action="append", help="a group to record (default: all)")
    rec.add_argument("--overwrite", action="store_true",
                     help="replace a group's recorded outputs (a deliberate change of the contract)")
    rec.add_argument("--new-inputs", action="store_true",
                     help="with --overwrite: regenerate the small group's inputs too")
    args = parser.parse_args(argv)
    groups = args.group or list(GROUPS)
    if args.new_inputs and not args.overwrite:
        parser.error("--new-inputs replaces recorded inputs: pass --overwrite too")
    existing = [g for g in groups if (CANON_DIR / g).exists()]
    if existing and not args.overwrite:
        print(f"{parser.prog}: error: {', '.join(str(CANON_DIR / g) for g in existing)} exist(s): the canonical "
              "logs are a contract; pass --overwrite to re-record them (and say why in the commit message)",
              file=sys.stderr)
        return 2
    for group in groups:
        print(f"recording {group} ...", file=sys.stderr)
        try:
            tables = record_small(CANON_DIR / group, args.new_inputs) if group == "small" else record_configs()
        except ValueError as exc:  # e.g. a shipped config's data missing from ../shared/data
            print(f"{parser.prog}: error: {group}: {exc}", file=sys.stderr)
            return 2
        write_group(CANON_DIR / group, tables)
        size = sum(f.stat().st_size for f in (CANON_DIR / group).iterdir())
        print(f"{CANON_DIR / group}: {len(tables['cases'])} cases, {size / 1e6:.2f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
