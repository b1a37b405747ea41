"""Seeded benchmark workloads, built with vectorised NumPy (no Python loop per tick or account).

Each builder returns a :class:`Workload`: a validated :class:`riskengine.Scenario` and the
resolved :class:`riskengine.EngineParams`. Arrays are generated in place where it matters
(the 10M-tick tapes), so building a workload does not itself dominate peak memory.

* :func:`quiet` — a reflected random walk confined to 100 x (1 +/- 0.05%), accounts at 2-5x
  leverage, mark = last trade: no account ever crosses, so the run is the bare per-tick loop.
* :func:`crash` — a 40% fall (smooth slide plus a few gap-down jumps) through a book of finite
  depth with full impact feedback, 60% of the accounts long at 3-50x (all liquidated), a small
  insurance fund topped up by liquidation fees, and an ADL queue: each gap drains the fund
  and starts an ADL wave.
* the parity workload is :func:`crash` scaled down (10,000 accounts x 100,000 ticks).

Run as a script, ``python workloads.py peak-rss quiet [ticks accounts]`` builds and runs one
workload in this process and prints a JSON line with ``ru_maxrss`` before and after (the
memory benchmark runs it in a clean child process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from riskengine.codes import EventKind, MarginMode
from riskengine.liquidity import ConstantDepth
from riskengine.params import EngineParams
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import Adl, Fund, Liquidation, Margin, Mark, VenueDesign

NS = 1_000_000_000
#: 2025-10-10 20:00 UTC, as in riskengine.synthetic
START_NS = 1_760_126_400 * NS

#: event kinds counted as one liquidation (the engine's ``cum_liquidations``)
LIQUIDATION_KINDS = (
    EventKind.LIQUIDATION,
    EventKind.PARTIAL_LIQUIDATION,
    EventKind.BACKSTOP,
    EventKind.ADL_LIQUIDATION,
)


@dataclass
class Workload:
    """A scenario, its engine parameters and what went into them."""

    name: str
    scenario: Scenario
    params: EngineParams
    info: dict = field(default_factory=dict)

    @property
    def ticks(self) -> int:
        return len(self.scenario.tape)

    @property
    def accounts(self) -> int:
        return len(self.scenario.population)

    def input_bytes(self) -> dict[str, int]:
        """Bytes of every array the scenario holds (tape and population)."""
        t, p = self.scenario.tape, self.scenario.population
        arrays = {
            "tape.ts": t.ts, "tape.price": t.price, "tape.qty": t.qty,
            "population.collateral": p.collateral, "population.size": p.size,
            "population.entry": p.entry, "population.mode": p.mode,
        }
        if t.stream is not None:
            arrays["tape.stream"] = t.stream
        return {k: int(v.nbytes) for k, v in arrays.items()}


# --------------------------------------------------------------------------- building blocks
def tick_times(ticks: int, tick_ns: int) -> np.ndarray:
    """``START_NS + k * tick_ns`` for k = 0..ticks-1 (int64, built in place)."""
    ts = np.arange(ticks, dtype=np.int64)
    ts *= tick_ns
    ts += START_NS
    return ts


def reflected_walk(rng: np.random.Generator, n: int, step: float, band: float,
                   out: np.ndarray | None = None) -> np.ndarray:
    """A Gaussian random walk of per-step sd ``step`` reflected into ``[-band, band]``.

    The cumulative sum is folded with a triangle wave of period ``4 band`` (continuous, slope
    +/-1), entirely in place: one float64 array of length ``n`` and no temporaries.
    """
    if out is None:
        out = np.empty(n, dtype=np.float64)
    rng.standard_normal(n, dtype=np.float64, out=out)
    out *= step
    np.cumsum(out, out=out)
    out += band
    np.mod(out, 4.0 * band, out=out)  # [0, 4b)
    out -= 2.0 * band                 # [-2b, 2b)
    np.abs(out, out=out)              # [0, 2b]
    out -= band                       # [-b, b]; 0 maps to -b ...
    np.negative(out, out=out)         # ... so flip: b - |y|, 0 maps to 0
    return out


def _smoothstep_inplace(z: np.ndarray) -> np.ndarray:
    np.clip(z, 0.0, 1.0, out=z)
    s = np.multiply(z, -2.0)
    s += 3.0
    s *= z
    s *= z
    return s


def leveraged_population(rng: np.random.Generator, accounts: int, *, price: float,
                         long_share: float, long_leverage: tuple[float, float],
                         short_leverage: tuple[float, float], notional_median: float = 10_000.0,
                         notional_sigma: float = 1.0, entry_spread: float = 0.02,
                         flat_share: float = 0.01) -> Population:
    """Accounts with one position each, equity at ``price`` = notional / leverage.

    The margin fraction 1 / leverage is uniform over the side's leverage range (so liquidation
    prices spread evenly between the extremes), entries uniform within ``+/- entry_spread`` of
    ``price``, notionals lognormal; a ``flat_share`` of the accounts hold collateral only.
    """
    is_long = rng.random(accounts) < long_share
    side = np.where(is_long, 1.0, -1.0)
    notional = rng.lognormal(math.log(notional_median), notional_sigma, accounts)
    entry = price * (1.0 + rng.uniform(-entry_spread, entry_spread, accounts))
    size = side * notional / entry
    lo = np.where(is_long, 1.0 / long_leverage[1], 1.0 / short_leverage[1])
    hi = np.where(is_long, 1.0 / long_leverage[0], 1.0 / short_leverage[0])
    margin_fraction = lo + (hi - lo) * rng.random(accounts)
    equity = np.abs(size) * price * margin_fraction
    collateral = np.maximum(equity - size * (price - entry), 0.0)
    flat = rng.random(accounts) < flat_share
    size[flat] = 0.0
    collateral[flat] = rng.uniform(100.0, 10_000.0, int(flat.sum()))
    mode = np.where(rng.random(accounts) < 0.5, MarginMode.CROSS, MarginMode.ISOLATED).astype(np.int8)
    return Population.from_arrays(collateral, size, entry, mode)


# --------------------------------------------------------------------------- workloads
def quiet(ticks: int = 10_000_000, accounts: int = 1_000_000, seed: int = 11,
          tick_ns: int = 1_000_000, band: float = 0.0005) -> Workload:
    """No account ever crosses: the bare per-tick cost of the engine.

    Price: 100 x (1 + w), w a random walk (sd 0.001% per tick) reflected into +/- ``band``
    (0.05%). Accounts: half long, half short, 2-5x leverage, entries within +/- 1% of 100,
    1% flat; maintenance margin 0.5%; mark = last trade; infinite depth.
    """
    rng = np.random.default_rng(seed)
    ts = tick_times(ticks, tick_ns)
    price = reflected_walk(rng, ticks, 1e-5, band)
    price += 1.0
    price *= 100.0
    tape = Tape.from_arrays(ts, price)
    pop = leveraged_population(rng, accounts, price=100.0, long_share=0.5,
                               long_leverage=(2.0, 5.0), short_leverage=(2.0, 5.0),
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
               gaps=CRASH_GAPS, rebound: float = 0.10, noise: float = 0.001) -> Tape:
    """``start`` falls by ``drop`` over the ``fall`` share of the tape, then rebounds.

    The fall is a smooth slide plus gap-down jumps (``gaps``: position, relative size), with the
    slide scaled so slide and gaps together end exactly ``drop`` lower; after the bottom the
    price recovers ``rebound`` (relative to the low) over the rest of the tape. A reflected
    random walk of +/- ``noise`` rides on top. Built in place (a few tape-sized arrays).
    """
    u = np.arange(ticks, dtype=np.float64)
    u /= ticks
    gap_log = sum(math.log1p(-g) for _, g in gaps)
    slide_log = math.log1p(-drop) - gap_log
    a, b = fall
    z = u - a
    z /= (b - a)
    logp = _smoothstep_inplace(z)
    logp *= slide_log
    z = u - b
    z /= (1.0 - b)
    up = _smoothstep_inplace(z)
    up *= math.log1p(rebound)
    logp += up
    del up, z
    for pos, g in gaps:
        logp[int(pos * ticks):] += math.log1p(-g)
    noise_walk = reflected_walk(rng, ticks, noise / 20.0, noise, out=u)  # reuses u's memory
    logp += noise_walk
    np.exp(logp, out=logp)
    logp *= start
    return Tape.from_arrays(tick_times(ticks, tick_ns), logp)


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
                               long_leverage=(3.0, 50.0), short_leverage=(2.0, 20.0),
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


# --------------------------------------------------------------------------- summaries
def liquidation_stats(raw) -> dict:
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
    counts = np.bincount(kind.astype(np.int64), minlength=9)
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


# --------------------------------------------------------------------------- memory child
def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _vm_hwm_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def peak_rss_child(workload: str, ticks: int | None, accounts: int | None) -> dict:
    """Import, build ``workload``, run the Cython engine once; report ``ru_maxrss`` stages."""
    import time

    import pandas  # noqa: F401 - part of the measured import baseline
    import pyarrow  # noqa: F401

    import riskengine  # noqa: F401
    from riskengine.engine import run_raw

    out = {"baseline_mb": _maxrss_mb(), "baseline_hwm_mb": _vm_hwm_mb()}
    if workload == "imports":
        return out
    kw = {}
    if ticks is not None:
        kw["ticks"] = ticks
    if accounts is not None:
        kw["accounts"] = accounts
    w = {"quiet": quiet, "crash": crash}[workload](**kw)
    out["built_mb"] = _maxrss_mb()
    raw, elapsed = run_raw(w.scenario, w.params, "cython")
    out["peak_mb"] = _maxrss_mb()
    out["peak_hwm_mb"] = _vm_hwm_mb()
    out["elapsed_s"] = elapsed
    out["events"] = int(len(raw.events["kind"]))
    out["ticks"] = w.ticks
    out["accounts"] = w.accounts
    out["input_bytes"] = w.input_bytes()
    out["time"] = time.time()
    return out


if __name__ == "__main__":
    import json
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "peak-rss":
        raise SystemExit("usage: workloads.py peak-rss {imports,quiet,crash} [ticks accounts]")
    args = [int(a) for a in sys.argv[3:5]] + [None, None]
    print(json.dumps(peak_rss_child(sys.argv[2], args[0], args[1])))
