"""``riskengine bench``: a tiny scale of the standard workloads through the command's own code
path (real child processes, both engines), the JSON it writes, and its refusals."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from riskengine import bench
from riskengine.cli import main
from riskengine.codes import AdlPolicy, MarginMode

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli" / "bench.md"
#: 20,000 ticks x 2,000 accounts; the reference comparison on 400 x 40
SCALE = 0.02


def documented_keys() -> set[str]:
    """The keys listed in the JSON section of docs/cli/bench.md."""
    section = DOC.read_text(encoding="utf-8").split("\n## JSON\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def key_paths(value, prefix: str = "") -> set[str]:
    """Every key path of a JSON value (``a[].b`` for key ``b`` of the items of list ``a``)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out |= {path} | key_paths(v, path)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                out |= key_paths(item, prefix + "[]")
    return out


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """``riskengine bench --quick --scale 0.02 --json FILE``, run once for the module."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["bench", "--quick", "--scale", str(SCALE), "--json", str(out)])
    return code, out, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def adl_run(tmp_path_factory):
    """``riskengine bench --quick --scale 0.02 --only adl --json FILE``: every ``adl-*`` workload
    (2,000 ticks x 200 accounts against the queue; the reference comparison on 200 x 30)."""
    out = tmp_path_factory.mktemp("bench-adl") / "bench.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["bench", "--quick", "--scale", str(SCALE), "--only", "adl", "--json", str(out)])
    return code, out, stdout.getvalue(), stderr.getvalue()


def test_bench_prints_the_figures_and_shows_progress(bench_run):
    code, out, stdout, stderr = bench_run
    assert code == 0, stderr
    assert re.search(r"^quiet\s+20,000\s+2,000\s+0\s", stdout, flags=re.M), stdout
    assert re.search(r"^crash\s+20,000\s+2,000\s+[1-9][\d,]*\s", stdout, flags=re.M), stdout
    assert "speed-up" in stdout and "same events" in stdout
    assert re.search(r"^portfolio\s+20,000\s+2,000\s+[1-9][\d,]*\s", stdout, flags=re.M), stdout
    assert re.search(r"^portfolio-cf\s+20,000\s+2,000\s+[1-9][\d,]*\s", stdout, flags=re.M), stdout
    # oct10-portfolio: 324,000 x 0.02 ticks, its floor of 3,000 accounts
    assert re.search(r"^oct10-portfolio\s+6,480\s+3,000\s+[1-9][\d,]*\s", stdout, flags=re.M), stdout
    assert re.search(r"^quiet: wall s = [\d.]+ x np\.minimum\.accumulate over the same prices", stdout, flags=re.M)
    assert "[1/10] quiet" in stderr and "[4/10] crash" in stderr and "[6/10] portfolio" in stderr
    assert "[8/10] portfolio-cf" in stderr and "[10/10] oct10-portfolio" in stderr
    assert "NumPy minimum scan" in stderr
    assert "adl-" not in stdout + stderr and "weighted ADL" not in stdout  # only when named
    assert "reference engine" in stderr
    assert f"wrote {out}" in stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["bench.json"]  # no temporary left


def test_bench_json_has_the_documented_keys_and_sane_values(bench_run, adl_run):
    code, out, _, _ = bench_run
    assert code == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and report["scale"] == SCALE and report["rounds"] == 3
    assert report["bars"] == [] and report["adl"] == []  # the bars apply to the full sizes only
    m = report["machine"]
    assert m["cpu_count"] >= 1 and m["python"] == ".".join(map(str, sys.version_info[:3]))
    import numpy
    import riskengine

    assert m["numpy"] == numpy.__version__ and m["riskengine"] == riskengine.__version__
    # bars as a full-size run would list them, to check their keys too
    report["bars"] = bench.bars({**report, "mode": "full", "scale": 1.0})
    assert [b["name"] for b in report["bars"]] == [
        "quiet ticks/s", "quiet peak memory MB", "crash liquidations/s",
        "crash wall s (slowest round)", "crash speed-up over the reference",
        "portfolio ticks/s", "portfolio peak memory MB", "portfolio-cf ticks/s", "portfolio-cf peak memory MB",
        "quiet wall s / NumPy minimum scan", "crash liquidations/s (limit)", "oct10-portfolio wall s"]
    # the adl-* workloads' keys are in the report of a run that names them
    adl = json.loads(adl_run[1].read_text())
    assert adl["workloads"] == [] and len(adl["adl"]) == len(bench.ADL_POLICIES)
    adl["bars"] = bench.bars({**adl, "mode": "full", "scale": 1.0})
    assert key_paths(report) | key_paths(adl) == documented_keys()

    specs = [s.scaled(SCALE) for s in bench.QUICK]
    assert [w["name"] for w in report["workloads"]] == [s.name for s in specs]
    for w, spec in zip(report["workloads"], specs):
        assert (w["ticks"], w["accounts"]) == (spec.ticks, spec.accounts)
        assert len(w["wall_s_rounds"]) == 3 and w["wall_s"] == min(w["wall_s_rounds"]) > 0
        assert w["ticks_per_s"] == pytest.approx(w["ticks"] / w["wall_s"]) and w["ticks_per_s"] > 0
        assert 0 < w["baseline_memory_mb"] <= w["peak_memory_mb"] < 4096
        r = w["reference"]
        assert (r["ticks"], r["accounts"]) == (spec.reference_ticks, spec.reference_accounts)
        assert r["identical"] and r["differences"] == []
        assert r["liquidations"] == r["reference_liquidations"]
        assert r["speedup"] == pytest.approx(r["reference_s"] / r["compiled_s"]) and r["speedup"] > 1

        # the same workload run here: the counts are the engine's own
        work = bench.BUILDERS[w["name"]](w["ticks"], w["accounts"])
        raw, _ = work.run("cython")
        assert w["liquidations"] == bench.engine_liquidations(raw) == bench.liquidation_stats(raw)["liquidations"]
        assert w["events"] == len(raw.events["kind"])
    quiet, crash, book, funded, oct10 = report["workloads"]
    assert book["liquidations"] > 0 and book["input_mb"] > book["engine_input_mb"] > 0
    assert oct10["liquidations"] > 0 and oct10["input_mb"] > oct10["engine_input_mb"] > 0
    assert 0 < quiet["numpy_scan_s"] and quiet["numpy_scan_ratio"] == pytest.approx(quiet["wall_s"] / quiet["numpy_scan_s"])
    assert all("numpy_scan_s" not in w for w in (crash, book, funded, oct10))
    assert funded["liquidations"] > 0 and funded["input_mb"] > book["input_mb"]
    assert quiet["liquidations"] == 0 and quiet["liquidations_per_s"] == 0
    assert crash["liquidations"] > crash["accounts"] / 3  # every long is liquidated
    assert crash["liquidations_per_s"] == pytest.approx(crash["liquidations"] / crash["wall_s"])


def test_the_report_speaks_of_the_benchmarks_bars(bench_run):
    code, out, stdout, _ = bench_run
    assert code == 0
    assert "issue" not in stdout and "the benchmark's bars apply to the full sizes only" in stdout
    full = {**json.loads(out.read_text()), "mode": "full", "scale": 1.0}
    full["bars"] = bench.bars(full)
    text = bench.format_report(full)
    assert "issue" not in text and "the benchmark's bars (targets at the full sizes):" in text
    assert "quiet ticks/s:" in text


def test_bars_follow_the_values():
    figures = {"ticks_per_s": 60e6, "peak_memory_mb": 400.0, "engine_input_mb": 175.0, "input_mb": 90.0,
               "liquidations_per_s": 0.9e6, "wall_s_rounds": [0.5, 12.0], "reference": {"speedup": 150.0},
               "wall_s": 0.5}
    report = {"mode": "full", "scale": 1.0,
              "workloads": [{**figures, "name": "quiet", "numpy_scan_ratio": 2.4}, {**figures, "name": "crash"},
                            {**figures, "name": "portfolio", "ticks_per_s": 20e6},
                            {**figures, "name": "oct10-portfolio", "wall_s": 1.0}],
              "adl": [{"name": "adl-pro-rata", "policy": "pro-rata", "ratio": 3.0},
                      {"name": "adl-socialize", "policy": "socialize", "ratio": 8.0},
                      {"name": "adl-risk-aware", "policy": "risk-aware", "ratio": 8.0},
                      {"name": "adl-water-filling", "policy": "water-filling", "ratio": 10.5}]}
    met = {b["name"]: b["met"] for b in bench.bars(report)}
    # quiet's memory bar is on the engine's inputs (2 x 175 + 200), the portfolio's on all of
    # its inputs (2 x 90 + 200 = 380 < 400); oct10-portfolio's bar is strict (< 1 s); the ADL
    # ratios: <= 3, risk-aware and water-filling <= 10
    assert met == {"quiet ticks/s": True, "quiet peak memory MB": True, "crash liquidations/s": False,
                   "crash wall s (slowest round)": False, "crash speed-up over the reference": True,
                   "portfolio ticks/s": False, "portfolio peak memory MB": False,
                   "quiet wall s / NumPy minimum scan": True, "crash liquidations/s (limit)": False,
                   "oct10-portfolio wall s": False, "adl-pro-rata time / queue's": True,
                   "adl-socialize time / queue's": False, "adl-risk-aware time / queue's": True,
                   "adl-water-filling time / queue's": False}
    faster = {**report, "workloads": [{**figures, "name": "quiet", "numpy_scan_ratio": 2.6},
                                      {**figures, "name": "crash", "liquidations_per_s": 2e6},
                                      {**figures, "name": "oct10-portfolio", "wall_s": 0.99}], "adl": []}
    met = {b["name"]: b["met"] for b in bench.bars(faster)}
    assert (met["quiet wall s / NumPy minimum scan"], met["crash liquidations/s"],
            met["crash liquidations/s (limit)"], met["oct10-portfolio wall s"]) == (False, True, True, True)
    assert bench.bars({**report, "mode": "quick"}) == []
    assert bench.bars({**report, "scale": 0.5}) == []


def test_the_portfolio_workload_is_what_it_says():
    """15 instruments interleaved in time, 5 crashing by 25-45%, accounts holding 1-5 of them
    (cross and isolated mixed, several cross positions in one margin account, hedged books)."""
    w = bench.portfolio(30_000, 3_000)
    s = w.scenario
    assert w.is_portfolio and len(s.instruments) == bench.PORTFOLIO_INSTRUMENTS == 15
    assert w.ticks == 30_000 and w.accounts == 3_000 and len(w.params) == 15
    # interleaved: the merged tape visits the instruments in turn, one tick per span / ticks
    assert list(s.tape.inst[:30]) == list(range(15)) * 2
    assert set(np.diff(s.tape.ts)) == {w.info["tick_ns"]}
    for k, ins in enumerate(s.instruments):
        p = ins.tape.price
        fall = 1.0 - p.min() / p[0]
        if k < 5:
            assert fall == pytest.approx(bench.PORTFOLIO_DROPS[k], abs=0.02)
        else:
            assert fall < 0.002 and p.max() / p[0] - 1.0 < 0.002
    b = s.portfolio
    held = np.diff(b.start)
    assert held.min() == 1 and held.max() == 5
    cross = b.mode == MarginMode.CROSS
    assert 0.45 < cross.mean() < 0.55
    m = s.margin_accounts
    assert np.diff(m.start).max() >= 2  # cross accounts with several positions
    owner_sides = {}
    for u, q in zip(np.repeat(np.arange(len(held)), held), b.size):
        owner_sides.setdefault(int(u), set()).add(bool(q > 0))
    multi = [u for u in range(len(held)) if held[u] >= 2]
    hedged = sum(len(owner_sides[u]) == 2 for u in multi)
    assert hedged / len(multi) == pytest.approx(0.2, abs=0.01)
    bars_limit = bench.memory_bar_mb(w.input_mb())
    assert w.input_mb() > w.engine_input_mb() > 0 and bars_limit > 200


@pytest.mark.parametrize("argv, message", [
    (["--json", "{tmp}/missing/bench.json"], "--json {tmp}/missing/bench.json: folder {tmp}/missing does not exist"),
    (["--json", "{tmp}"], "--json {tmp}: is a folder (expected a file name)"),
    (["--scale", "0"], "argument --scale: expected a number > 0, got 0.0"),
    (["--scale", "tiny"], "argument --scale: expected a number, got 'tiny'"),
    (["--fast"], "unrecognized arguments: --fast"),
])
def test_bench_refuses_bad_arguments_with_one_line(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(["bench", *argv])
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"riskengine: error: {message.replace('{tmp}', str(tmp_path))}\n"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_json_path_from_the_installed_command(tmp_path):
    """The real command line: one line on stderr, exit 2, before any workload runs."""
    target = tmp_path / "nope" / "b.json"
    proc = subprocess.run([sys.executable, "-m", "riskengine.cli", "bench", "--json", str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"riskengine: error: --json {target}: folder {target.parent} does not exist\n"


def test_a_failing_child_is_one_line():
    with pytest.raises(bench.BenchError) as info:
        bench.run_child({"workload": "nope", "ticks": 10, "accounts": 10, "rounds": 1, "kind": "throughput"})
    message = str(info.value)
    assert "\n" not in message
    assert message == "nope (throughput, 10 ticks x 10 accounts) failed: KeyError: 'nope'"


def test_json_is_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "bench.json"
    target.write_text("previous")
    with pytest.raises(TypeError):  # not JSON: fails half way through
        bench.write_json({"schema": 1, "figures": [1.0, object()]}, target)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
    bench.write_json({"schema": 1, "figures": [1.0, 2.0]}, target)
    assert json.loads(target.read_text()) == {"schema": 1, "figures": [1.0, 2.0]}
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_the_portfolio_cf_workload_is_what_it_says():
    """The portfolio workload with collateral and funding on (issue 13): USDe as a 16th
    instrument, a collateral asset on the constructed depeg path valued at 0.9, held by a quarter
    of the cross users for half their wallet; hourly funding in every perpetual; the ticks asked
    for, the asset's included; funding paid and holdings sold in the run."""
    from riskengine.codes import EventKind

    w = bench.portfolio_cf(30_000, 3_000)
    s = w.scenario
    assert w.name == "portfolio-cf" and w.ticks == 30_000 and len(s.instruments) == bench.PORTFOLIO_INSTRUMENTS + 1
    usde = len(s.instruments) - 1
    assert s.instruments[usde].symbol == "USDE" and w.params[usde].collateral and not w.params[0].collateral
    # its tape: the depeg path x 0.9, a thousandth of the ticks, from 1 x 0.9 down near 0.65 x 0.9
    tape = s.instruments[usde].tape
    assert len(tape) == 30 and tape.price[0] == pytest.approx(0.9, rel=0.01) and tape.price.min() < 0.7 * 0.9
    held = s.portfolio.holdings
    assert held.any() and (s.portfolio.instrument[held] == usde).all() and (s.portfolio.entry[held] == 0).all()
    ts, inst, rate = w.funding
    assert len(ts) == 2 * bench.PORTFOLIO_INSTRUMENTS and set(inst.tolist()) == set(range(bench.PORTFOLIO_INSTRUMENTS))
    raw, _ = w.run("cython")
    kinds = set(raw.events["kind"].tolist())
    assert EventKind.FUNDING in kinds and EventKind.COLLATERAL_EXCHANGE in kinds
    assert raw.scalars["funding_paid"] > 0


def test_the_oct10_portfolio_workload_is_what_it_says():
    """150 instruments interleaved over one hour, every one crashing (10% to 60%), accounts
    holding 1-7 of them, 3 on average."""
    w = bench.oct10_portfolio(30_000, 3_000)
    s = w.scenario
    assert w.name == "oct10-portfolio" and w.is_portfolio and w.ticks == 30_000 and w.accounts == 3_000
    assert len(s.instruments) == len(w.params) == bench.OCT10_INSTRUMENTS == 150
    assert list(s.tape.inst[:300]) == list(range(150)) * 2
    span = (int(s.tape.ts[-1]) - int(s.tape.ts[0])) / bench.NS
    assert span == pytest.approx(bench.OCT10_SPAN_S, rel=0.001)
    falls = [1.0 - ins.tape.price.min() / ins.tape.price[0] for ins in s.instruments]
    assert falls == pytest.approx(list(bench.OCT10_DROPS), abs=0.02)
    assert min(falls) < 0.12 and max(falls) > 0.58
    held = np.diff(s.portfolio.start)
    assert held.min() == 1 and held.max() == len(bench.OCT10_HOLDINGS) == 7
    assert held.mean() == pytest.approx(3.0, abs=0.02) and len(s.portfolio.size) == held.sum()
    assert w.info["instruments"] == 150 and w.info["crashing"] == 150


def test_the_portfolio_builder_takes_instruments_drops_and_holdings():
    w = bench.portfolio(2_400, 1_000, instruments=4, drops=(0.5,), holdings=(0.0, 1.0))
    s = w.scenario
    assert len(s.instruments) == 4 and w.info["crashing"] == 1
    assert set(np.diff(s.portfolio.start).tolist()) == {2}
    falls = [1.0 - ins.tape.price.min() / ins.tape.price[0] for ins in s.instruments]
    assert falls[0] == pytest.approx(0.5, abs=0.02) and max(falls[1:]) < 0.002
    with pytest.raises(ValueError, match="drops: 5 crashing instruments, expected at most 4"):
        bench.portfolio(2_400, 1_000, instruments=4, drops=(0.1,) * 5)


def test_adl_workloads_time_each_policy_against_the_queue(adl_run):
    code, out, stdout, stderr = adl_run
    assert code == 0, stderr
    report = json.loads(out.read_text())
    assert [a["policy"] for a in report["adl"]] == list(bench.ADL_POLICIES)
    assert set(bench.ADL_POLICIES) == {"pro-rata", "pro-rata-equity", "pro-rata-pnl", "levered-pro-rata",
                                       "socialize", "risk-aware", "water-filling"}
    spec = bench.ADL_QUICK[0].scaled(SCALE)
    for a in report["adl"]:
        assert a["name"] == "adl-" + a["policy"] and (a["ticks"], a["accounts"]) == (spec.ticks, spec.accounts)
        # no round near 10 s at this size: every round ran, both sides
        assert a["policy_rounds"] == len(a["policy_s_rounds"]) == 3 == a["queue_rounds"]
        assert a["policy_s"] == min(a["policy_s_rounds"]) > 0 and a["queue_s"] == min(a["queue_s_rounds"]) > 0
        assert a["ratio"] == pytest.approx(a["policy_s"] / a["queue_s"])
        assert a["reference"]["identical"] and a["reference"]["differences"] == []
        assert a["reference"]["liquidations"] == a["reference"]["reference_liquidations"]
        # the child ran this policy: the same counts as the workload run here
        work = bench.BUILDERS[a["name"]](a["ticks"], a["accounts"])
        assert work.params.adl_policy == AdlPolicy[a["policy"].upper().replace("-", "_")]
        raw, _ = work.run("cython")
        stats = bench.liquidation_stats(raw)
        assert (a["liquidations"], a["adl_fills"], a["events"]) == (
            bench.engine_liquidations(raw), stats["adl_fills"], stats["events"])
        queue = bench.crash(a["ticks"], a["accounts"], adl="queue")
        raw, _ = queue.run("cython")
        assert (a["queue_liquidations"], a["queue_adl_fills"]) == (
            bench.engine_liquidations(raw), bench.liquidation_stats(raw)["adl_fills"])
        assert (a["adl_fills"] == 0) == (a["policy"] == "socialize")  # socialization closes no position
        row = re.search(rf"^{re.escape(a['policy'])}\s+[\d.e-]+\s+3\s+[\d.e-]+\s+[\d,.]+x\s+<= (\d+)x\s", stdout,
                        flags=re.M)
        assert row, stdout
        assert float(row.group(1)) == (10.0 if a["policy"] in ("risk-aware", "water-filling") else 3.0)
        assert re.search(rf"^{re.escape(a['name'])}\s+[\d,]+\s+[\d,]+\s.*\byes$", stdout, flags=re.M), stdout
    assert "weighted ADL against the queue" in stdout and "quiet" not in stdout
    assert "[1/14] adl-pro-rata" in stderr and "[14/14] adl-water-filling" in stderr


def test_a_slow_policy_stops_after_its_first_round(monkeypatch):
    """A policy round over the limit ends the policy's rounds; the queue runs all of them."""
    monkeypatch.setattr(bench, "ADL_SLOW_ROUND_S", 0.0)
    out = bench.measure_adl({"workload": "adl-pro-rata", "ticks": 2_000, "accounts": 200, "rounds": 3})
    assert len(out["policy_s_rounds"]) == 1 and len(out["queue_s_rounds"]) == 3
    fig = bench._adl_figures(out, {"elapsed_s": [1.0], "ticks": 10, "accounts": 10, "reference_s": 2.0,
                                   "liquidations": 0, "reference_liquidations": 0, "differences": []})
    assert fig["policy_rounds"] == 1 and fig["queue_rounds"] == 3
    assert fig["ratio"] == pytest.approx(out["policy_s_rounds"][0] / min(out["queue_s_rounds"]))


def test_only_selects_workloads_in_the_standard_order():
    names = lambda only, quick=False: [s.name for s in bench.select(only, quick)]
    assert names(None) == ["quiet", "crash", "portfolio", "portfolio-cf", "oct10-portfolio"]
    assert bench.select(None, quick=True) == list(bench.QUICK)
    assert names("adl") == [f"adl-{p}" for p in bench.ADL_POLICIES]
    assert names("adl-socialize, quiet,adl-socialize") == ["quiet", "adl-socialize"]
    assert names("oct10-portfolio,adl") == ["oct10-portfolio", *(f"adl-{p}" for p in bench.ADL_POLICIES)]
    assert bench.select("adl-pro-rata", quick=True) == [bench.ADL_QUICK[0]]
    assert bench.select("crash")[0] == bench.FULL[1]


@pytest.mark.parametrize("only, bad", [("quiet,nope", "nope"), ("adl-queue", "adl-queue"), ("", ""),
                                       ("crash,", "")])
def test_only_refuses_an_unknown_name_with_one_line(only, bad, tmp_path, capsys):
    code = main(["bench", "--only", only, "--json", str(tmp_path / "b.json")])
    err = capsys.readouterr().err
    valid = [s.name for s in (*bench.FULL, *bench.ADL_FULL)]
    assert code == 2 and list(tmp_path.iterdir()) == []
    assert err == (f"riskengine: error: --only {only}: unknown workload {bad!r}; expected names among "
                   f"{', '.join(valid)}, or adl (every adl-* workload)\n")


def test_help_names_every_workload(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for spec in (*bench.FULL, *bench.ADL_FULL):
        assert spec.name in text
    assert "(adl: all seven), which run only when named: together they take several minutes" in text
