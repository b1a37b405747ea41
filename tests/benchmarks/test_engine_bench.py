"""Benchmarks of the compiled engine (pytest-benchmark; collected only with ``--benchmarks``).

Run::

    python -m pytest tests/benchmarks --benchmarks -q -s --benchmark-json=/tmp/bench.json

Workloads, sizes and bars are defined once in :mod:`riskengine.bench` (which ``riskengine bench``
runs too):

1. ``quiet`` — 10M ticks x 1M accounts, nobody crosses. Bar: >= 50M ticks/s on one core.
2. ``crash`` — 10M ticks x 1M accounts, a 40% fall with impact feedback, fund exhaustion and
   ADL waves. Bars: >= 1M liquidation events/s, whole run < 10 s. ``crash-variant`` runs the
   same workload with one mechanism switched off, to say where the time goes.
3. ``parity`` — 10k accounts x 100k ticks, the Cython engine against the reference engine
   (two designs). Bar: Cython >= 100x faster.
4. ``peak-rss`` — peak resident memory of the quiet workload in a clean child process. Bar:
   peak < 2 x (engine input arrays) + 200 MB.

Benchmarks are not pass/fail timing tests: the bars are recorded in ``extra_info``
(``bar``, ``bar_met``) and printed, never asserted. The correctness gates are asserted, each
on an untimed run before the timed rounds: zero events and the invariants for ``quiet``; at
least N/3 accounts liquidated, ADL fills at several distinct ticks and the invariants for
``crash``; identical event logs for ``parity``.

``RISKENGINE_BENCH_SCALE`` (default 1) scales every workload's ticks and accounts, for a quick
smoke run of the suite (e.g. ``0.01``); figures at another scale are not comparable to the bars.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np
import pytest

import riskengine
import riskengine._engine as _engine
from riskengine import bench as W
from riskengine.bench import (BAR_CRASH_LIQ_PER_S, BAR_CRASH_WALL_S, BAR_PARITY_SPEEDUP,
                              BAR_QUIET_TICKS_PER_S, event_log_differences, run_differences)
from riskengine.codes import AdlPolicy
from riskengine.engine import run_raw
from riskengine.invariants import violations
from riskengine.scenario import Scenario, Tape

SCALE = float(os.environ.get("RISKENGINE_BENCH_SCALE", "1"))

QUIET, CRASH = W.FULL[:2]
QUIET_TICKS, QUIET_ACCOUNTS = QUIET.ticks, QUIET.accounts
CRASH_TICKS, CRASH_ACCOUNTS = CRASH.ticks, CRASH.accounts
#: the parity workload: the crash at the size the reference engine runs
PARITY_TICKS, PARITY_ACCOUNTS = CRASH.reference_ticks, CRASH.reference_accounts

#: figures of every benchmark, printed as one table at the end of the module (``-s``)
REPORT: list[str] = []


def scaled(n: int, minimum: int = 2) -> int:
    return W.scaled(n, SCALE, minimum)


def hardware() -> dict:
    """Where the figures were measured (:func:`riskengine.bench.machine`) and with which build."""
    return {
        **W.machine(),
        "scale": SCALE,
        "engine_module": _engine.__file__,
        "engine_built": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(_engine.__file__))),
    }


def timed_rounds(benchmark, scenario, params, rounds: int, engine: str = "cython"):
    """``benchmark.pedantic`` over ``run_raw``; returns (last RawRun, engine seconds per round)."""
    elapsed: list[float] = []

    def target():
        raw, seconds = run_raw(scenario, params, engine)
        elapsed.append(seconds)
        return raw

    raw = benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=0)
    return raw, elapsed


def timing_info(elapsed: list[float]) -> dict:
    return {
        "elapsed_min_s": min(elapsed),
        "elapsed_median_s": float(np.median(elapsed)),
        "elapsed_rounds_s": [round(e, 6) for e in elapsed],
    }


def report(line: str) -> None:
    REPORT.append(line)
    print("\n[bench] " + line, flush=True)


@pytest.fixture(scope="module", autouse=True)
def _print_report():
    yield
    if REPORT:
        hw = hardware()
        print(f"\n\n=== riskengine benchmarks ({hw['cpu_model']}, "
              f"{hw['cpu_count']} cpus, scale {SCALE}) ===")
        for line in REPORT:
            print("  " + line)


def setup_only(scenario: Scenario) -> Scenario:
    """The same population against a one-tick tape: the per-run setup cost."""
    t = scenario.tape
    return Scenario(scenario.name + "-1tick", Tape.from_arrays(t.ts[:1], t.price[:1]), scenario.population)


# ============================================================================ 1. quiet
@pytest.mark.benchmark(group="quiet", disable_gc=True, warmup=False)
def test_quiet(benchmark):
    """10M ticks x 1M accounts, no account crosses: the bare per-tick loop."""
    start = time.perf_counter()
    w = W.quiet(scaled(QUIET_TICKS), scaled(QUIET_ACCOUNTS))
    build_s = time.perf_counter() - start
    pop, params = w.scenario.population, w.params

    # correctness gate, on an untimed run, before the timing counts
    raw, gate_s = run_raw(w.scenario, params, "cython")
    assert len(raw.events["kind"]) == 0, f"quiet workload produced {len(raw.events['kind'])} events"
    assert violations(raw, pop, params) == []
    del raw
    _, setup_s = run_raw(setup_only(w.scenario), params, "cython")

    raw, elapsed = timed_rounds(benchmark, w.scenario, params, rounds=5)
    assert len(raw.events["kind"]) == 0

    best, median = min(elapsed), float(np.median(elapsed))
    tps = w.ticks / best
    loop_tps = w.ticks / max(best - setup_s, 1e-12)
    benchmark.extra_info.update(hardware())
    benchmark.extra_info.update(timing_info(elapsed))
    benchmark.extra_info.update({
        "workload": "quiet", "ticks": w.ticks, "accounts": w.accounts,
        "ticks_per_s": tps, "ticks_per_s_median": w.ticks / median,
        "setup_s": setup_s, "ticks_per_s_loop_only": loop_tps,
        "build_s": build_s, "gate_run_s": gate_s, "events": 0,
        "bar": f"ticks_per_s >= {BAR_QUIET_TICKS_PER_S:.0f}",
        "bar_met": bool(tps >= BAR_QUIET_TICKS_PER_S),
    })
    report(f"quiet  {w.ticks:,} ticks x {w.accounts:,} accounts: best {best:.3f} s "
           f"(median {median:.3f} s) = {tps / 1e6:.1f}M ticks/s "
           f"[bar >= {BAR_QUIET_TICKS_PER_S / 1e6:.0f}M: {'MET' if tps >= BAR_QUIET_TICKS_PER_S else 'MISSED'}]; "
           f"setup (1-tick run) {setup_s * 1e3:.0f} ms, loop alone {loop_tps / 1e6:.0f}M ticks/s")


# ============================================================================ 2. crash
@pytest.fixture(scope="module")
def crash_workload():
    start = time.perf_counter()
    w = W.crash(scaled(CRASH_TICKS), scaled(CRASH_ACCOUNTS, minimum=30))
    w.info["build_s"] = time.perf_counter() - start
    yield w


@pytest.fixture(scope="module")
def crash_gate(crash_workload):
    """The untimed gate run of the crash workload and its statistics."""
    w = crash_workload
    raw, seconds = run_raw(w.scenario, w.params, "cython")
    stats = W.liquidation_stats(raw)
    start = time.perf_counter()
    broken = violations(raw, w.scenario.population, w.params)
    stats["invariants_s"] = time.perf_counter() - start
    stats["gate_run_s"] = seconds
    stats["violations"] = broken
    return stats


@pytest.mark.benchmark(group="crash", disable_gc=True, warmup=False)
def test_crash(benchmark, crash_workload, crash_gate):
    """10M ticks x 1M accounts through a 40% crash with impact feedback and ADL waves."""
    w, gate = crash_workload, crash_gate
    n = w.accounts
    assert gate["violations"] == []
    assert gate["accounts_liquidated"] >= n / 3, (
        f"only {gate['accounts_liquidated']} of {n} accounts liquidated (need >= N/3)")
    assert gate["adl_fills"] > 0, "no ADL fill: the insurance fund never ran out"
    assert gate["adl_ticks"] >= 2, f"ADL fills at {gate['adl_ticks']} distinct tick(s) (need several)"

    raw, elapsed = timed_rounds(benchmark, w.scenario, w.params, rounds=5)
    stats = W.liquidation_stats(raw)
    assert stats["events"] == gate["events"], "the crash run is not deterministic"
    del raw

    best, median = min(elapsed), float(np.median(elapsed))
    liq_s = stats["liquidations"] / best
    wall_ok = max(elapsed) < BAR_CRASH_WALL_S
    benchmark.extra_info.update(hardware())
    benchmark.extra_info.update(timing_info(elapsed))
    benchmark.extra_info.update({k: v for k, v in stats.items()})
    benchmark.extra_info.update({
        "workload": "crash", "ticks": w.ticks, "accounts": n,
        "ticks_per_s": w.ticks / best,
        "liquidations_per_s": liq_s,
        "liquidations_per_s_median": stats["liquidations"] / median,
        "events_per_s": stats["events"] / best,
        "wall_s": max(elapsed),
        "build_s": w.info["build_s"], "gate_run_s": gate["gate_run_s"],
        "invariants_s": gate["invariants_s"],
        "workload_info": w.info,
        "bar": f"liquidations_per_s >= {BAR_CRASH_LIQ_PER_S:.0f} and wall_s < {BAR_CRASH_WALL_S}",
        "bar_liquidations_met": bool(liq_s >= BAR_CRASH_LIQ_PER_S),
        "bar_wall_met": bool(wall_ok),
        "bar_met": bool(liq_s >= BAR_CRASH_LIQ_PER_S and wall_ok),
    })
    report(f"crash  {w.ticks:,} ticks x {n:,} accounts: best {best:.3f} s (median {median:.3f} s, "
           f"worst {max(elapsed):.3f} s); {stats['liquidations']:,} liquidations "
           f"({stats['accounts_liquidated']:,} accounts), {stats['adl_fills']:,} ADL fills at "
           f"{stats['adl_ticks']} ticks ({stats['adl_waves']} waves), {stats['events']:,} events "
           f"-> {liq_s / 1e6:.3f}M liquidations/s (median {stats['liquidations'] / median / 1e6:.3f}M), "
           f"{stats['events'] / best / 1e6:.2f}M events/s, "
           f"{w.ticks / best / 1e6:.1f}M ticks/s "
           f"[bar >= {BAR_CRASH_LIQ_PER_S / 1e6:.0f}M liq/s: {'MET' if liq_s >= BAR_CRASH_LIQ_PER_S else 'MISSED'}; "
           f"bar < {BAR_CRASH_WALL_S:.0f} s: {'MET' if wall_ok else 'MISSED'}]")


def _variant(w: W.Workload, name: str) -> tuple[Scenario, object]:
    p, s = w.params, w.scenario
    if name == "adl-none":
        return s, dataclasses.replace(p, adl_policy=AdlPolicy.NONE)
    if name == "fund-unlimited":
        return s, dataclasses.replace(p, fund_initial=1e15)
    if name == "impact-feedback-0":
        return s, dataclasses.replace(p, impact_feedback=0.0)
    if name == "depth-infinite":
        return s, dataclasses.replace(p, depth_per_pct=math.inf)
    if name == "setup-only":
        return setup_only(s), p
    if name == "flat-tape":
        t = s.tape
        flat = Tape.from_arrays(t.ts, np.full(len(t), float(t.price[0])))
        return Scenario(s.name + "-flat", flat, s.population), p
    raise ValueError(name)


#: one mechanism off at a time (pro-rata ADL is left out on purpose: at this scale it emits one
#: ADL fill per candidate per ADL'd order, ~1e10 events, and exhausts memory)
CRASH_VARIANTS = ("adl-none", "fund-unlimited", "impact-feedback-0", "depth-infinite",
                  "setup-only", "flat-tape")


@pytest.mark.benchmark(group="crash-variant", disable_gc=True, warmup=False)
@pytest.mark.parametrize("variant", CRASH_VARIANTS)
def test_crash_variant(benchmark, crash_workload, variant):
    """The crash workload with one mechanism switched off: where the crash time goes.

    Diagnostic only (no bar, no gate beyond the run completing): ``setup-only`` is the per-run
    setup (copy-in, index build, copy-out), ``flat-tape`` adds the bare 10M-tick loop,
    ``adl-none``/``fund-unlimited`` remove ADL, ``impact-feedback-0``/``depth-infinite``
    remove the cascade feedback.
    """
    w = crash_workload
    scenario, params = _variant(w, variant)
    raw, elapsed = timed_rounds(benchmark, scenario, params, rounds=2)
    stats = W.liquidation_stats(raw)
    del raw
    best = min(elapsed)
    benchmark.extra_info.update(hardware())
    benchmark.extra_info.update(timing_info(elapsed))
    benchmark.extra_info.update({
        "workload": f"crash/{variant}", "ticks": len(scenario.tape), "accounts": w.accounts,
        "events": stats["events"], "liquidations": stats["liquidations"],
        "adl_fills": stats["adl_fills"], "max_rounds": stats["max_rounds"],
        "liquidations_per_s": stats["liquidations"] / best,
        "ticks_per_s": len(scenario.tape) / best,
    })
    report(f"crash/{variant:18s} best {best:.3f} s: {stats['events']:,} events, "
           f"{stats['liquidations']:,} liquidations, {stats['adl_fills']:,} ADL fills, "
           f"max rounds {stats['max_rounds']}")


# ============================================================================ 3. parity
def parity_workload(design: str) -> W.Workload:
    w = W.parity(scaled(PARITY_TICKS), scaled(PARITY_ACCOUNTS, minimum=30))
    if design == "queue-bankruptcy":
        return w
    if design == "hl-partial-backstop":
        n = w.accounts
        d = riskengine.VenueDesign.from_dict({
            "name": "bench-hl",
            "margin": {"floors": (0.0, 100_000.0), "rates": (0.005, 0.01)},
            "mark": {"method": "ema", "ema_s": 5.0},
            "liquidation": {"fee": 0.0005, "partial": "fraction", "partial_fraction": 0.2,
                            "partial_threshold": 50_000.0, "cooldown_s": 30.0},
            "fund": {"initial": 0.1 * n},
            "backstop": {"ratio": 2.0 / 3.0, "vault_balance": 50.0 * n, "unwind_interval_s": 10.0,
                         "unwind_fraction": 0.25, "loss_limit": 20.0 * n},
            "adl": {"policy": "queue", "ranking": "hl-index", "price": "mark",
                    "on_negative_equity": True, "rank_interval_s": 1.0},
        })
        liquidity = riskengine.ConstantDepth(depth_per_pct=300.0 * n, half_life_s=30.0, feedback=1.0)
        w.params = d.engine_params(liquidity, series_interval_s=1.0)
        w.name = "parity-hl"
        return w
    raise ValueError(design)


#: the crash design (queue ADL at the bankruptcy price), and a Hyperliquid-like one (EMA mark,
#: tiered margin, partial liquidation with cooldown, backstop vault with unwinds and a loss
#: limit, ADL of negative-equity accounts by the HL index at mark)
PARITY_DESIGNS = ("queue-bankruptcy", "hl-partial-backstop")


@pytest.mark.benchmark(group="parity", disable_gc=True, warmup=False)
@pytest.mark.parametrize("design", PARITY_DESIGNS)
def test_parity(benchmark, design):
    """10k accounts x 100k ticks: identical event logs, then the speed-up over the reference."""
    w = parity_workload(design)
    raw_c, cython_gate_s = run_raw(w.scenario, w.params, "cython")
    stats = W.liquidation_stats(raw_c)
    assert stats["liquidations"] > 0 and stats["adl_fills"] > 0, (
        f"parity scenario too tame to compare: {stats}")
    raw_r, reference_s = run_raw(w.scenario, w.params, "reference")
    diffs = run_differences(raw_c, raw_r)
    assert diffs == [], "Cython and reference engines disagree:\n" + "\n".join(diffs[:20])
    assert violations(raw_c, w.scenario.population, w.params) == []
    del raw_r

    raw, elapsed = timed_rounds(benchmark, w.scenario, w.params, rounds=5)
    assert event_log_differences(raw.events, raw_c.events, rtol=0.0) == []
    best = min(elapsed)
    speedup = reference_s / best
    benchmark.extra_info.update(hardware())
    benchmark.extra_info.update(timing_info(elapsed))
    benchmark.extra_info.update({k: v for k, v in stats.items()})
    benchmark.extra_info.update({
        "workload": w.name, "design": design, "ticks": w.ticks, "accounts": w.accounts,
        "reference_s": reference_s, "cython_s": best, "speedup": speedup,
        "ticks_per_s": w.ticks / best,
        "liquidations_per_s": stats["liquidations"] / best,
        "bar": f"speedup >= {BAR_PARITY_SPEEDUP:.0f}",
        "bar_met": bool(speedup >= BAR_PARITY_SPEEDUP),
    })
    report(f"parity/{design}: {w.ticks:,} ticks x {w.accounts:,} accounts, {stats['events']:,} "
           f"identical events ({stats['liquidations']:,} liquidations, {stats['adl_fills']:,} ADL fills); "
           f"reference {reference_s:.2f} s, cython {best * 1e3:.1f} ms -> {speedup:,.0f}x "
           f"[bar >= {BAR_PARITY_SPEEDUP:.0f}x: {'MET' if speedup >= BAR_PARITY_SPEEDUP else 'MISSED'}]")


# ============================================================================ 4. peak RSS
@pytest.mark.benchmark(group="peak-rss", disable_gc=True, warmup=False)
@pytest.mark.parametrize("workload", ["quiet", "crash"])
def test_peak_rss(benchmark, workload):
    """Peak memory of a fresh child that imports riskengine, builds the workload's arrays and
    runs it once (:func:`riskengine.bench.run_child`, the child's ``VmHWM``).

    The bar applies to ``quiet``: peak < 2 x (engine input arrays) + 200 MB, with the peak
    taken as the child's whole peak (the import baseline included, the stricter reading) and
    also reported above the baseline after ``import riskengine``. ``crash`` is reported against
    the same formula for information (its event log is part of the output, not the input).
    """
    ticks, accounts = {
        "quiet": (scaled(QUIET_TICKS), scaled(QUIET_ACCOUNTS)),
        "crash": (scaled(CRASH_TICKS), scaled(CRASH_ACCOUNTS, minimum=30)),
    }[workload]
    job = {"workload": workload, "ticks": ticks, "accounts": accounts, "rounds": 1, "kind": "throughput"}
    out = benchmark.pedantic(W.run_child, args=(job,), rounds=1, iterations=1)
    if workload == "quiet":
        assert out["events"] == 0
    sizes = out["input_bytes"]
    engine_mb = out["engine_input_mb"]
    all_mb = sum(sizes.values()) / W.MB
    bar_mb = W.memory_bar_mb(engine_mb)
    peak, baseline = out["peak_memory_mb"], out["baseline_memory_mb"]
    above = peak - baseline
    benchmark.extra_info.update(hardware())
    benchmark.extra_info.update({
        "workload": workload, "ticks": out["ticks"], "accounts": out["accounts"],
        "peak_rss_mb": peak,
        "baseline_imports_rss_mb": baseline,
        "peak_above_baseline_mb": above,
        "after_build_rss_mb": out["built_memory_mb"],
        "engine_input_mb": engine_mb, "scenario_arrays_mb": all_mb,
        "input_bytes": sizes, "run_s": out["elapsed_s"][0], "events": out["events"],
        "bar_mb": bar_mb,
        "bar": ("peak_rss_mb < 2 x engine_input_mb + 200" if workload == "quiet"
                else "none (information: the quiet workload's formula applied to crash)"),
        "bar_met": bool(peak < bar_mb) if workload == "quiet" else None,
        "formula_met": bool(peak < bar_mb),
        "formula_met_above_baseline": bool(above < bar_mb),
    })
    verdict = ("MET" if peak < bar_mb else "MISSED") if workload == "quiet" else "info only"
    report(f"peak-rss/{workload}: peak {peak:.0f} MB (imports baseline {baseline:.0f} MB, "
           f"above baseline {above:.0f} MB, after building arrays {out['built_memory_mb']:.0f} MB); "
           f"engine inputs {engine_mb:.0f} MB (all scenario arrays {all_mb:.0f} MB) "
           f"-> bar {bar_mb:.0f} MB [{verdict}]")
