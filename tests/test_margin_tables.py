"""Issue 11 §B, honest presets: every preset runs on its venue's stored, dated margin tables
(``riskengine/venues/tables/*.toml``), chosen by the scenario's underlying and date; a symbol
without a table is refused unless the config gives a table or names one as assumed; an assumed
or out-of-date table shows in the ``margin_source`` column, on stderr and in the report; the
whole-position margin form (BitMEX risk-limit steps, OKX position tiers) is solved in both
engines.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

from _cli import one_error_line, raised_line as _error, run_cli, write
from riskengine import Population, Scenario, Tape, backtest, calculators, config, metrics, run, venues
from riskengine.codes import EventKind
from riskengine.venue import Margin, VenueDesign
from riskengine.venues import _tables

NS = 1_000_000_000
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "backtests").glob("*.toml"))
PRESETS = venues.names()


def _shipped_configs():
    return [(p.name, config.load(p)) for p in SHIPPED] + [("default.toml", config.load_default())]


# ------------------------------------------------------------------------------ table files


class TestTableFiles:
    @pytest.mark.parametrize("name", PRESETS)
    def test_every_venue_has_a_checked_table_file(self, name):
        tables = _tables.load_file(_tables.table_file(name), name)
        assert tables, f"{name}: no symbol in {_tables.table_file(name)}"
        for symbol, history in tables.items():
            for table in history:
                assert table.source and table.effective.year >= 2019
                assert table.complete or table.gap
                assert table.form in ("deduction", "whole-position")

    @pytest.mark.parametrize("body, expected", [
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0, 10]\n'
         'rates = [0.01]\n',
         "BTCUSDT[0].rates: expected one per tier (2 floors, 1 rates)"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0, 10]\n'
         'rates = [0.02, 0.01]\n',
         "BTCUSDT[0].rates[1]: expected rates not decreasing (got 0.01 after 0.02)"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [5, 10]\n'
         'rates = [0.01, 0.02]\n',
         "BTCUSDT[0].floors[0]: expected 0 (got 5)"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0, 10, 10]\n'
         'rates = [0.01, 0.02, 0.03]\n',
         "BTCUSDT[0].floors[2]: expected floors increasing (got 10 after 10)"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0]\nrates = [1.5]\n',
         "BTCUSDT[0].rates[0]: expected a rate in (0, 1) (got 1.5)"),
        ('[[BTCUSDT]]\neffective = "01/02/2025"\nsource = "s"\ncomplete = true\nfloors = [0]\nrates = [0.01]\n',
         "BTCUSDT[0].effective: expected a date YYYY-MM-DD (got '01/02/2025')"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = false\nfloors = [0]\nrates = [0.01]\n',
         "BTCUSDT[0].gap: expected what is missing, since complete = false"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nform = "stepped"\n'
         'floors = [0]\nrates = [0.01]\n',
         "BTCUSDT[0].form: expected one of deduction, whole-position (got 'stepped')"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0]\nrate = [0.01]\n',
         "BTCUSDT[0].rate: unknown key (did you mean 'rates'?); valid: effective, source, complete, gap, form, "
         "quote, floors, rates, max_leverage, premium"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\ncomplete = true\nfloors = [0]\nrates = [0.01]\n',
         "BTCUSDT[0].source: missing"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0]\n'
         'max_leverage = [50]\n',
         "BTCUSDT[0].rates: missing (only hyperliquid derive the rates from max_leverage)"),
        ('[[ETHUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0]\nrates = [0.01]\n'
         '[[ETHUSDT]]\neffective = "2025-01-01"\nsource = "t"\ncomplete = true\nfloors = [0]\nrates = [0.02]\n',
         "ETHUSDT: two tables effective 2025-01-01"),
        ('[[BTCUSDT]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\nfloors = [0, "1e6"]\n'
         'rates = [0.01, 0.02]\n',
         "BTCUSDT[0].floors[1]: expected a finite number (got '1e6')"),
    ])
    def test_a_mistake_names_the_file_symbol_and_field(self, tmp_path, body, expected):
        path = write(tmp_path, body, "bybit.toml")
        assert _error(_tables.load_file, path, "bybit") == f"{path}: {expected}"

    def test_invalid_toml_names_the_file(self, tmp_path):
        path = write(tmp_path, "[[BTCUSDT]\n", "okx.toml")
        assert _error(_tables.load_file, path, "okx").startswith(f"{path}: not valid TOML: ")

    def test_hyperliquid_rates_are_half_the_initial_margin(self, tmp_path):
        path = write(tmp_path, '[[BTC]]\neffective = "2025-01-01"\nsource = "s"\ncomplete = true\n'
                               'floors = [0, 1e6]\nmax_leverage = [40, 20]\n', "hyperliquid.toml")
        (table,) = _tables.load_file(path, "hyperliquid")["BTC"]
        assert table.rates == (1 / 80, 1 / 40)


# ------------------------------------------------------------------- symbols of shipped configs


def _underlyings() -> list[tuple[str, str, str]]:
    """(config, scenario, underlying) of every scenario of every shipped config."""
    out = []
    for name, loaded in _shipped_configs():
        for spec in loaded.config.all_scenarios():
            out.append((name, spec.name, backtest.scenario_underlying(spec)))
    return out


class TestShippedSymbols:
    def test_every_shipped_scenario_names_its_underlying(self):
        found = {(c, s): u for c, s, u in _underlyings()}
        assert None not in found.values(), found
        alts = {s.split("usd-perp")[0].upper() for c, s in found if c == "coinm-alts-2025-10-10.toml"}
        assert {found["coinm-alts-2025-10-10.toml", f"{a.lower()}usd-perp-2025-10-10"] for a in alts} == alts
        assert len(alts) == 12
        assert found["hyperliquid-2025-10-10.toml", "hl-eth-2025-10-10"] == "ETH"
        assert found["hyperliquid-2025-10-10.toml", "hl-sol-2025-10-10"] == "SOL"

    @pytest.mark.parametrize("name", PRESETS)
    def test_every_preset_resolves_or_refuses_every_shipped_underlying(self, name):
        """Each preset x each underlying a shipped config replays: a real dated table of that
        symbol (its label names it), possibly marked out of date; or one refusal line."""
        for config_name, scenario, underlying in _underlyings():
            symbol = venues.symbol_for(name, underlying)
            try:
                design = venues.build({"preset": name}, underlying=underlying, date="2025-10-10")
            except ValueError as exc:
                msg = str(exc)
                assert "\n" not in msg
                assert msg.startswith(f"venue: {name}: no margin table for symbol {symbol!r}")
                assert f"known: {', '.join(_tables.symbols(name))}" in msg
                assert symbol not in _tables.symbols(name)
                continue
            assert symbol in _tables.symbols(name)
            assert design.margin.label.startswith(f"{name} {symbol} 20"), (config_name, scenario)
            assert "placeholder" not in design.notes.lower()
            assert design.margin.caveat in ("",) or design.margin.caveat.startswith("out of date: ")

    def test_shipped_designs_use_their_scenarios_own_tables(self):
        """backtests/coinm-alts ran the 12 alts on BTCUSDT's brackets and hyperliquid ETH and SOL
        on BTC's table; each now runs on its own underlying's table."""
        loaded = config.load(ROOT / "backtests" / "coinm-alts-2025-10-10.toml")
        for i, spec in enumerate(loaded.config.all_scenarios()):
            coin = spec.name.split("usd-perp")[0].upper()
            for design in backtest.build_designs(loaded, i):
                assert design.margin.margin_source.startswith(f"binance-usdm {coin}USDT 20"), design.name
                assert design.margin.caveat == ""
                table, _ = _tables.margin_table("binance-usdm", f"{coin}USDT", "2025-10-10")
                assert design.margin.floors == table.floors and design.margin.rates == table.rates
        loaded = config.load(ROOT / "backtests" / "hyperliquid-2025-10-10.toml")
        for i, coin in enumerate(("BTC", "ETH", "SOL")):
            (design,) = backtest.build_designs(loaded, i)
            assert design.margin.label.startswith(f"hyperliquid {coin} 20")
            table, caveat = _tables.margin_table("hyperliquid", coin, "2025-10-10")
            assert design.margin.floors == table.floors and design.margin.caveat == caveat


# ------------------------------------------------------------------------ the one rule


def _synthetic_config(tmp_path: Path, venue: str, underlying: str | None = "ZZZQ",
                      window: str = "") -> Path:
    scenario = f'underlying = "{underlying}"\n' if underlying else ""
    return write(tmp_path, f"""
[scenario]
name = "probe"
synthetic = {{ ticks = 3_000, seed = 3 }}
{scenario}{window}
[population]
accounts = 300
seed = 4

[[venues]]
{venue}
""", "probe.toml")


class TestOneRule:
    def test_a_symbol_without_a_table_is_refused_with_the_symbols_the_preset_has(self, tmp_path):
        path = _synthetic_config(tmp_path, 'preset = "binance-usdm"')
        line = one_error_line(run_cli("validate", str(path)), progress_first=False)
        known = ", ".join(_tables.symbols("binance-usdm"))
        assert line == (f"riskengine: error: {path}: venues[0] (scenario 'probe', underlying ZZZQ): binance-usdm: "
                        f"no margin table for symbol 'ZZZQUSDT'; known: {known}; give the table (margin.floors "
                        f"and margin.rates) or name one as assumed (assumed_table = \"BTCUSDT\")")
        proc = run_cli("run", str(path), "--no-output")
        assert one_error_line(proc, progress_first=False) == line
        assert proc.stdout == ""

    def test_the_config_may_give_the_table(self, tmp_path):
        path = _synthetic_config(tmp_path, 'preset = "binance-usdm"\nmargin = { floors = [0, 1e6], '
                                           'rates = [0.01, 0.02] }')
        loaded = config.load(path)
        (design,) = backtest.build_designs(loaded, 0)
        assert design.margin.floors == (0.0, 1e6) and design.margin.rates == (0.01, 0.02)
        assert design.margin.margin_source == "given in the design"
        proc = run_cli("run", str(path), "--no-output")
        assert proc.returncode == 0, proc.stderr
        assert "riskengine: warning" not in proc.stderr

    def test_an_assumed_table_warns_on_stderr_and_shows_in_results_and_report(self, tmp_path):
        path = _synthetic_config(tmp_path, 'preset = "binance-usdm"\nassumed_table = "BTCUSDT"')
        out = tmp_path / "out"
        proc = run_cli("run", str(path), "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        table, _ = _tables.margin_table("binance-usdm", "BTCUSDT", "2025-10-10")
        expected = (f"{table.label} [assumed: no binance-usdm table for ZZZQUSDT, BTCUSDT's used "
                    f"(assumed_table)]")
        warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
        assert warnings == [f"riskengine: warning: probe: design 'binance-usdm': margin table {table.label}: "
                            f"assumed: no binance-usdm table for ZZZQUSDT, BTCUSDT's used (assumed_table)"]
        with open(out / "results.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [r["margin_source"] for r in rows] == [expected]
        # validate says so too
        checked = run_cli("validate", str(path))
        assert checked.returncode == 0 and f"  warning: {warnings[0].removeprefix('riskengine: warning: ')}" in (
            checked.stdout.splitlines())
        assert metrics.margin_caveat(rows[0]["margin_source"]).startswith("assumed: ")
        page = (out / "report.html").read_text()
        assert 'id="margin-caveats"' in page and "assumed: no binance-usdm table for ZZZQUSDT" in page

    def test_no_warning_for_a_table_in_force(self, tmp_path):
        path = _synthetic_config(tmp_path, 'preset = "binance-usdm"', underlying="ETH")
        out = tmp_path / "out"
        proc = run_cli("run", str(path), "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        assert "riskengine: warning" not in proc.stderr
        table, _ = _tables.margin_table("binance-usdm", "ETHUSDT", "2025-10-10")
        with open(out / "results.csv", newline="") as fh:
            assert [r["margin_source"] for r in csv.DictReader(fh)] == [table.label]
        assert 'id="margin-caveats"' not in (out / "report.html").read_text()

    def test_a_date_before_the_earliest_table_uses_it_and_warns(self, tmp_path):
        window = "window = { start = 2019-06-01T00:00:00Z }\n"
        path = _synthetic_config(tmp_path, 'preset = "binance-usdm"', underlying="BTC", window=window)
        loaded = config.load(path)
        (design,) = backtest.build_designs(loaded, 0)
        first = _tables._load("binance-usdm")["BTCUSDT"][0]
        assert design.margin.floors == first.floors and design.margin.rates == first.rates
        caveat = (f"out of date: no binance-usdm BTCUSDT table known on 2019-06-01; using the earliest, effective "
                  f"{first.effective}")
        assert design.margin.caveat == caveat
        assert backtest.margin_warnings("probe", [design]) == [
            f"probe: design 'binance-usdm': margin table {first.label}: {caveat}"]

    def test_without_a_window_the_tables_are_those_of_the_tapes_first_day(self, tmp_path):
        """A file tape without ``window.start``: the day of its first trade picks the table (here
        2019-06-01, before ETHUSDT's earliest: out of date, and the run says so)."""
        start_us = 1_559_347_200_000_000  # 2019-06-01 00:00 UTC
        rows = [f"binance,ETHUSDT,{start_us + k * 1_000_000},{start_us + k * 1_000_000},{k},sell,"
                f"{250 - k},1" for k in range(60)]
        write(tmp_path, "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n" + "\n".join(rows) + "\n",
              "trades.csv")
        path = write(tmp_path, """
[scenario]
name = "old-eth"
tape = { source = "tardis", path = "trades.csv" }
underlying = "ETH"

[population]
accounts = 200
entry_lookback_s = 0

[[venues]]
preset = "binance-usdm"
mark = { method = "last" }
""", "old.toml")
        first = _tables._load("binance-usdm")["ETHUSDT"][0]
        proc = run_cli("run", str(path), "--no-output")
        assert proc.returncode == 0, proc.stderr
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("riskengine: warning:")]
        assert warnings == [f"riskengine: warning: old-eth: design 'binance-usdm': margin table {first.label}: out of "
                            f"date: no binance-usdm ETHUSDT table known on 2019-06-01; using the earliest, effective "
                            f"{first.effective}"]

    def test_a_scenario_without_underlying_uses_the_default_symbol_marked_assumed(self, tmp_path):
        path = write(tmp_path, """
[scenario]
name = "file-tape"
tape = { source = "tardis", path = "trades.csv" }

[[venues]]
preset = "binance-usdm"
""", "c.toml")
        (design,) = backtest.build_designs(config.load(path), 0)
        assert design.margin.label.startswith("binance-usdm BTCUSDT 20")
        assert design.margin.caveat.startswith("assumed: the scenario names no underlying")

    def test_the_underlying_follows_the_tape_symbol(self):
        assert [backtest.underlying_of(s) for s in ("BTCUSD_PERP", "AAVE-USDT-SWAP", "TRXUSDT", "XBTUSD", "SOL",
                                                     "ETH-USD", "BTC-PERP")] == [
            "BTC", "AAVE", "TRX", "BTC", "SOL", "ETH", "BTC"]

    def test_presets_map_the_underlying_to_their_symbol(self):
        assert {n: venues.symbol_for(n, "AAVE") for n in PRESETS} == {
            "binance-usdm": "AAVEUSDT", "bitmex": "AAVEUSDT", "bybit": "AAVEUSDT", "drift": "AAVE-PERP",
            "dydx-v4": "AAVE-USD", "hyperliquid": "AAVE", "okx": "AAVE-USDT-SWAP"}
        assert venues.symbol_for("bitmex", "BTC") == "XBTUSDT"

    def test_a_venue_symbol_wins_over_the_underlying(self):
        design = venues.build({"preset": "binance-usdm", "symbol": "BTCUSDT"}, underlying="ETH", date="2025-10-10")
        assert design.margin.label.startswith("binance-usdm BTCUSDT")


# --------------------------------------------------------------------- whole-position form

WHOLE = ([0.0, 1_000.0], [0.01, 0.05])


class TestWholePositionForm:
    def test_maintenance_margin_by_hand(self):
        # 1,005 of notional is in tier 1: the whole position at 5% (deduction form: 5% - 40)
        assert calculators.maintenance_margin(1_005, WHOLE, form="whole-position") == pytest.approx(50.25)
        assert calculators.maintenance_margin(1_005, WHOLE) == pytest.approx(10.25)
        assert calculators.maintenance_margin(990, WHOLE, form="whole-position") == pytest.approx(9.9)

    def test_liquidation_price_by_hand(self):
        # long 10 @ 99 with 20: liquidated below 970 / 9.9 = 97.98 (tier 0), and also in
        # [100, 970 / 9.5 = 102.105) where the whole position is re-rated at 5%: the key is the top
        lp = calculators.liquidation_price(20, 10, 99, WHOLE, form="whole-position")
        assert lp == pytest.approx(970 / 9.5)
        assert calculators.liquidation_price(20, 10, 99, WHOLE) == pytest.approx(970 / 9.9)
        # short 10 @ 99.5 with 20: the first price where equity < MM is the floor 100 itself
        # (1,015 - 1,000 x 1.05 < 0), before the tier-0 root 1,015 / 10.1 = 100.5
        assert calculators.liquidation_price(20, -10, 99.5, WHOLE, form="whole-position") == pytest.approx(100.0)
        assert calculators.liquidation_price(20, -10, 99.5, WHOLE) == pytest.approx(1_055 / 10.5)

    @pytest.mark.parametrize("engine", ["cython", "reference"])
    def test_a_long_is_liquidated_by_a_rise_into_the_next_tier(self, engine):
        """Long 10 @ 99 with 20 of margin. At 99.5 (notional 995, tier 0) MM is 9.95 < equity 25;
        at 100.5 (1,005, tier 1) the whole position needs 5%, 50.25 > equity 35: liquidated on
        the rise, at 100.5. With deductions MM is 10.25 there and nothing happens."""
        ts = (1_760_126_400 + np.arange(3)) * NS
        px = np.array([99.0, 99.5, 100.5])
        tape = Tape.from_arrays(ts, px, np.ones(3))
        pop = Population.from_arrays(np.array([20.0]), np.array([10.0]), np.array([99.0]), np.array([0], np.int8))
        whole = VenueDesign(name="whole", margin=Margin(floors=WHOLE[0], rates=WHOLE[1], form="whole-position"))
        deduction = whole.with_overrides({"name": "deduction", "margin": {"form": "deduction"}})
        res = run(Scenario("rise", tape, pop), [whole, deduction], engine=engine)
        ev = res.events.to_pandas()
        liq = ev[(ev["design"] == "whole") & (ev["kind"] == int(EventKind.LIQUIDATION))]
        assert liq["tick"].tolist() == [2] and liq["price"].tolist() == [100.5] and liq["size"].tolist() == [10.0]
        assert res.table.set_index("design").loc["deduction", "liquidations"] == 0
        assert res.table.set_index("design").loc["whole", "margin_source"] == "given in the design"
        assert res.table.set_index("design").loc["whole", "liquidations"] == 1

    def test_presets_that_document_it_use_it(self):
        for name in ("bitmex", "okx"):
            forms = {t.form for history in _tables._load(name).values() for t in history}
            assert forms == {"whole-position"}, name
        symbol = _tables.symbols("bitmex")[0]
        p = venues.preset("bitmex", symbol=symbol).engine_params()
        assert p.mm_whole_position and not p.mm_cums.any()
        assert not venues.preset("binance-usdm").engine_params().mm_whole_position


def test_a_sweep_warns_of_the_incomplete_tables_its_runs_used(tmp_path):
    # a synthetic tape is BTC on 2025-10-10, where Hyperliquid's stored BTC table lacks its upper tier
    # (incomplete); the Binance table of that day is complete and draws no warning
    config_path = write(tmp_path, '[scenario]\nname = "s"\nsynthetic = { ticks = 2_000 }\n\n[population]\n'
                                  'accounts = 300\n\n[[venues]]\npreset = "hyperliquid"\n\n[[venues]]\n'
                                  'preset = "binance-usdm"\n\n[sweep]\ngrid = { "population.seed" = [1, 2] }\n',
                        "grid.toml")
    proc = run_cli("sweep", str(config_path), "--executor", "serial", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if line.startswith("riskengine: warning:")]
    assert warned == ["riskengine: warning: design 'hyperliquid': 2 row(s) on margin table hyperliquid BTC "
                      "2025-03-12 (incomplete)"]
