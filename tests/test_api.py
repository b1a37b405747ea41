"""The Python API (``riskengine.run``) and the ``riskengine run`` command line."""

from __future__ import annotations

import re
import subprocess
import sys
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import riskengine.engine as engine_mod
from riskengine import ConstantDepth, Result, VenueDesign, run, synthetic, venues
from riskengine.codes import FUND_ID, VAULT_ID, EventKind
from riskengine.metrics import COLUMNS, TIMING_COLUMNS
from riskengine.runlog import EVENT_COLUMNS, SERIES_COLUMNS


# a limited order's unfilled remainder taken over by the insurance fund (binance-usdm) is a
# liquidation event too
LIQ_KINDS = [int(k) for k in (EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION,
                              EventKind.BACKSTOP, EventKind.ADL_LIQUIDATION, EventKind.FUND_TAKEOVER)]
#: the fund's and the vault's own trades are not liquidations of the population
HOUSE = [VAULT_ID, FUND_ID]
DEPTH = ConstantDepth(5e6)
#: synthetic.binance_style() / hyperliquid_style() are the presets scaled to the synthetic book
NAMES = ["binance-usdm", "hyperliquid"]


def _designs() -> list[VenueDesign]:
    return [synthetic.binance_style(), synthetic.hyperliquid_style()]


def _names() -> list[str]:
    return [d.name for d in _designs()]


def test_synthetic_designs_are_the_scaled_presets():
    binance, hyperliquid = _designs()
    assert _names() == NAMES
    assert binance == venues.preset("binance-usdm").with_overrides({"fund": {"initial": 2_000_000.0}})
    assert hyperliquid == venues.preset("hyperliquid").with_overrides({"backstop": {"vault_balance": 5_000_000.0}})
    assert binance.preset == "binance-usdm" and hyperliquid.preset == "hyperliquid"


@pytest.fixture(scope="module")
def scenario():
    return synthetic.crash_scenario(ticks=20_000, accounts=5_000, seed=3)


@pytest.fixture(scope="module")
def result(scenario) -> Result:
    return run(scenario, _designs(), DEPTH)


@pytest.fixture(scope="module")
def small_scenario():
    return synthetic.crash_scenario(ticks=2_000, accounts=300, seed=3)


def _per_design(table: pa.Table, design: str) -> pd.DataFrame:
    df = table.to_pandas()
    return df[df["design"] == design].reset_index(drop=True)


# ----------------------------------------------------------------------------- result shape


class TestResultShape:
    def test_table_rows_and_columns(self, result, scenario):
        table = result.table
        assert isinstance(result, Result)
        assert isinstance(table, pd.DataFrame)
        assert list(table.columns) == [c.name for c in COLUMNS]
        assert len(table) == 2
        assert table["design"].tolist() == _names()
        assert (table["scenario"] == scenario.name).all()
        assert (table["engine"] == "cython").all()
        assert (table["accounts"] == len(scenario.population)).all()
        assert (table["positions"] == np.count_nonzero(scenario.population.size)).all()
        assert (table["ticks"] == len(scenario.tape)).all()
        assert len(result.raw) == 2

    def test_events_schema(self, result):
        events = result.events
        assert isinstance(events, pa.Table)
        assert events.column_names == ["scenario", "design"] + [name for name, _, _ in EVENT_COLUMNS]
        assert events.schema.field("scenario").type == pa.string()
        assert events.schema.field("design").type == pa.string()
        for name, dtype, _ in EVENT_COLUMNS:
            assert events.schema.field(name).type == pa.from_numpy_dtype(np.dtype(dtype)), name

    def test_series_schema(self, result):
        series = result.series
        assert isinstance(series, pa.Table)
        assert series.column_names == ["scenario", "design"] + [name for name, _, _ in SERIES_COLUMNS]
        assert series.schema.field("scenario").type == pa.string()
        assert series.schema.field("design").type == pa.string()
        for name, dtype, _ in SERIES_COLUMNS:
            assert series.schema.field(name).type == pa.from_numpy_dtype(np.dtype(dtype)), name

    def test_every_design_is_labelled(self, result, scenario):
        for table in (result.events, result.series):
            assert set(table["design"].to_pylist()) == set(_names())
            assert set(table["scenario"].to_pylist()) == {scenario.name}

    def test_single_design_is_accepted(self, small_scenario):
        res = run(small_scenario, synthetic.binance_style(), DEPTH)
        assert res.table["design"].tolist() == ["binance-usdm"]
        assert set(res.events["design"].to_pylist()) == {"binance-usdm"}


# ----------------------------------------------------------------------------- consistency


class TestTableMatchesEvents:
    @pytest.mark.parametrize("design", _names())
    def test_liquidations(self, result, design):
        ev = _per_design(result.events, design)
        row = result.table.set_index("design").loc[design]
        liq = ev["kind"].isin(LIQ_KINDS) & ~ev["account"].isin(HOUSE)
        assert row["liquidations"] > 0  # the crash liquidates someone: not a vacuous check
        assert row["liquidations"] == liq.sum()
        assert row["liquidated_notional"] == pytest.approx(ev.loc[liq, "notional"].sum(), rel=1e-9)
        assert row["accounts_liquidated"] == ev.loc[liq, "account"].nunique()
        assert row["partial_liquidations"] == (ev["kind"] == EventKind.PARTIAL_LIQUIDATION).sum()
        assert row["backstop_liquidations"] == ((ev["kind"] == EventKind.BACKSTOP)
                                                & (ev["account"] != VAULT_ID)).sum()
        takeovers = (ev["kind"] == EventKind.FUND_TAKEOVER) & ~ev["account"].isin(HOUSE)
        assert row["fund_takeovers"] == takeovers.sum()
        if design == "binance-usdm":  # the preset's fund takes over what the limited IOC leaves
            assert row["fund_takeovers"] > 0
        else:
            assert row["fund_takeovers"] == 0

    @pytest.mark.parametrize("design", _names())
    def test_adl_fills(self, result, design):
        ev = _per_design(result.events, design)
        row = result.table.set_index("design").loc[design]
        fills = ev["kind"] == EventKind.ADL_FILL
        assert row["adl_fills"] > 0
        assert row["adl_fills"] == fills.sum()
        assert row["adl_notional"] == pytest.approx(ev.loc[fills, "notional"].sum(), rel=1e-9)
        assert row["adl_accounts"] == ev.loc[fills, "account"].nunique()

    @pytest.mark.parametrize("design", _names())
    def test_fund_and_fees(self, result, design):
        ev = _per_design(result.events, design)
        sr = _per_design(result.series, design)
        row = result.table.set_index("design").loc[design]
        assert len(sr) > 0
        assert row["fund_end"] == sr["fund"].iloc[-1]
        assert row["fund_min"] <= sr["fund"].min()
        # the vault's low is taken at every change of its equity, the series is sampled
        assert row["vault_min"] <= sr["vault_equity"].min()
        assert row["fees_collected"] == pytest.approx(ev["fee"].sum(), rel=1e-9)
        paid = ev["kind"] == EventKind.FUND_PAYMENT
        assert row["fund_paid_out"] == pytest.approx(ev.loc[paid, "amount"].sum(), rel=1e-9)
        # fund balance after the last event that touched it is the end balance
        if len(ev):
            assert row["fund_end"] == pytest.approx(ev["fund_after"].iloc[-1], rel=1e-9, abs=1e-6)

    @pytest.mark.parametrize("design", _names())
    def test_series_totals(self, result, scenario, design):
        sr = _per_design(result.series, design)
        row = result.table.set_index("design").loc[design]
        assert sr["ts"].is_monotonic_increasing
        assert sr["ts"].iloc[-1] == scenario.tape.ts[-1]  # sampled at the last tick
        assert sr["cum_liquidations"].iloc[-1] == row["liquidations"]
        assert sr["cum_adl_fills"].iloc[-1] == row["adl_fills"]
        assert sr["cum_liquidated_notional"].iloc[-1] == pytest.approx(row["liquidated_notional"], rel=1e-9)
        assert sr["cum_adl_notional"].iloc[-1] == pytest.approx(row["adl_notional"], rel=1e-9)

    @pytest.mark.parametrize("design", _names())
    def test_events_lie_on_the_tape(self, result, scenario, design):
        ev = _per_design(result.events, design)
        assert ev["ts"].is_monotonic_increasing
        assert ev["tick"].between(0, len(scenario.tape) - 1).all()
        assert np.array_equal(ev["ts"].to_numpy(), scenario.tape.ts[ev["tick"].to_numpy()])
        row = result.table.set_index("design").loc[design]
        first = ev["kind"].isin(LIQ_KINDS) & ~ev["account"].isin(HOUSE)
        expected = (ev.loc[first, "ts"].iloc[0] - scenario.tape.ts[0]) / 1e9
        assert row["first_liquidation_s"] == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- engines


class TestReferenceEngine:
    def test_same_table_as_cython(self, small_scenario):
        fast = run(small_scenario, _designs(), DEPTH, engine="cython")
        slow = run(small_scenario, _designs(), DEPTH, engine="reference")
        assert (fast.table["engine"] == "cython").all()
        assert (slow.table["engine"] == "reference").all()
        assert list(fast.table.columns) == list(slow.table.columns)
        assert (fast.table["liquidations"] > 0).all()
        compared = 0
        for col in fast.table.columns:
            if col in TIMING_COLUMNS or col == "engine":
                continue
            a, b = fast.table[col], slow.table[col]
            if pd.api.types.is_numeric_dtype(a):
                np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float),
                                           rtol=1e-9, equal_nan=True, err_msg=col)
            else:
                assert a.tolist() == b.tolist(), col
            compared += 1
        assert compared == len(COLUMNS) - len(TIMING_COLUMNS) - 1

    def test_same_events_as_cython(self, small_scenario):
        fast = run(small_scenario, _designs(), DEPTH, engine="cython").events
        slow = run(small_scenario, _designs(), DEPTH, engine="reference").events
        assert fast.num_rows == slow.num_rows > 0
        fast, slow = ({name: table[name].to_numpy() for name in table.column_names} for table in (fast, slow))
        assert list(fast) == list(slow)
        for name in fast:
            a, b = fast[name], slow[name]
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6, err_msg=name)
            else:
                assert np.array_equal(a, b), name


class TestInvariants:
    @pytest.mark.parametrize("design", _designs(), ids=_names())
    def test_check_invariants_cython(self, scenario, design):
        res = run(scenario, design, DEPTH, check_invariants=True)
        assert res.table["liquidations"].iloc[0] > 0

    @pytest.mark.parametrize("design", _designs(), ids=_names())
    def test_check_invariants_reference(self, small_scenario, design):
        run(small_scenario, design, DEPTH, engine="reference", check_invariants=True)

    def test_check_invariants_reports_violations(self, small_scenario, monkeypatch):
        monkeypatch.setattr(engine_mod, "violations", lambda raw, pop, params: ["money vanished"])
        run(small_scenario, synthetic.binance_style(), DEPTH)  # off by default: not consulted
        with pytest.raises(AssertionError, match=r"^design 'binance-usdm': money vanished$"):
            run(small_scenario, synthetic.binance_style(), DEPTH, check_invariants=True)


class TestIndexStream:
    """The presets' median marks (binance-median, hl-median) use the tape's index stream when
    the tape has one; the last price is only the fallback without it."""

    @pytest.mark.parametrize("design", _designs(), ids=_names())
    def test_run_passes_the_stream_to_median_marks(self, scenario, design):
        assert scenario.tape.stream is not None
        params = design.engine_params(DEPTH, 5.0)
        with_stream, _ = engine_mod.run_raw(scenario, params, "cython", scenario.tape.stream)
        without, _ = engine_mod.run_raw(scenario, params, "cython", np.empty(0))
        assert len(with_stream.events["ts"]) != len(without.events["ts"])  # the stream matters here
        got = run(scenario, design, DEPTH, series_interval_s=5.0).raw[0]
        for name, values in with_stream.events.items():
            assert np.array_equal(got.events[name], values, equal_nan=values.dtype.kind == "f"), name


# ----------------------------------------------------------------------------- determinism


class TestDeterminism:
    def test_same_seed_same_output(self):
        a = run(synthetic.crash_scenario(ticks=20_000, accounts=5_000, seed=3), _designs(), DEPTH)
        b = run(synthetic.crash_scenario(ticks=20_000, accounts=5_000, seed=3), _designs(), DEPTH)
        assert a.events.num_rows > 0
        assert a.events.equals(b.events)
        assert a.series.equals(b.series)
        cols = [c for c in a.table.columns if c not in TIMING_COLUMNS]
        pd.testing.assert_frame_equal(a.table[cols], b.table[cols], check_exact=True)

    def test_different_seed_different_output(self):
        a = run(synthetic.crash_scenario(ticks=20_000, accounts=5_000, seed=3), _designs(), DEPTH)
        b = run(synthetic.crash_scenario(ticks=20_000, accounts=5_000, seed=4), _designs(), DEPTH)
        assert not a.events.equals(b.events)

    def test_rerun_of_one_scenario_is_identical(self, scenario, result):
        again = run(scenario, _designs(), DEPTH)
        assert again.events.equals(result.events)
        assert again.series.equals(result.series)

    def test_design_order_does_not_change_a_run(self, scenario, result):
        reversed_run = run(scenario, list(reversed(_designs())), DEPTH)
        for name in _names():
            ours = result.events.filter(pa.compute.equal(result.events["design"], name))
            theirs = reversed_run.events.filter(pa.compute.equal(reversed_run.events["design"], name))
            assert ours.equals(theirs), name


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "riskengine.cli", *args],
                          capture_output=True, text=True, timeout=timeout)


def _cli_rows(stdout: str) -> dict[str, list[str]]:
    """The terminal table's rows by column name (a heading is ``name (unit)``)."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"(\S+)(?: \([^)]*\))?\s+(.*)", line)
        if m:
            rows[m.group(1)] = m.group(2).split()
    return rows


class TestCli:
    @pytest.fixture(scope="class")
    @classmethod
    def proc(cls):
        return _cli("run", "--accounts", "2000", "--ticks", "5000", "--no-output")

    @staticmethod
    def _default_designs() -> list[VenueDesign]:
        from riskengine import backtest, config

        return backtest.build_designs(config.load_default())

    def test_exit_code_and_output(self, proc):
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        rows = _cli_rows(proc.stdout)
        names = [d.name for d in self._default_designs()]
        assert rows["design"] == names
        assert len(names) >= 4 and names[:2] == NAMES
        for name in ("liquidations", "adl_fills"):
            assert name in rows and len(rows[name]) == len(names), proc.stdout

    def test_default_designs_scale_the_presets_like_the_api(self):
        # the embedded default's first two designs are synthetic.binance_style() / hyperliquid_style()
        assert self._default_designs()[:2] == _designs()

    def test_progress_on_stderr(self, proc):
        err = proc.stderr
        assert "5,000 trades" in err and "2,000 accounts" in err
        assert "[1/1] synthetic-btc-crash" in err
        assert "done in" in err
        # progress is on stderr only: stdout is the table
        assert "[1/1]" not in proc.stdout and "done in" not in proc.stdout

    def test_numbers_match_the_api(self, proc):
        # the embedded default with 5,000 ticks and 2,000 accounts, through the Python API;
        # the terminal shows 4 significant digits
        import argparse

        from riskengine import backtest
        from riskengine.cli import _default_config

        args = argparse.Namespace(ticks=5_000, accounts=2_000, seed=None, depth=None)
        table = backtest.run_config(_default_config(args)).table
        rows = _cli_rows(proc.stdout)
        for name in ("liquidations", "adl_fills", "liquidated_notional", "fund_end"):
            shown = [float(v.replace(",", "")) for v in rows[name]]
            np.testing.assert_allclose(shown, table[name].to_numpy(dtype=float), rtol=1e-3, atol=1e-9,
                                       err_msg=name)

    @pytest.mark.parametrize("args, mentions", [
        (["--accounts", "0"], "--accounts"),
        (["--accounts", "abc"], "--accounts"),
        (["--engine", "nope"], "--engine"),
        (["--depth", "-1"], "--depth"),
        (["--depth", "nan"], "--depth"),
        (["--ticks", "-5"], "--ticks"),
        (["--seed", "x"], "--seed"),
    ])
    def test_bad_arguments(self, args, mentions):
        proc = _cli("run", *args)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("riskengine: error:"), lines[0]
        assert mentions in lines[0]
        assert proc.stdout == ""

    def test_one_tick_is_rejected_while_parsing(self):
        proc = _cli("run", "--accounts", "1000", "--ticks", "1")
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("riskengine: error:")

    def test_missing_command(self):
        proc = _cli()
        assert proc.returncode != 0
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("riskengine: error:")
        assert "Traceback" not in proc.stderr
