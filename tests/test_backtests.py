"""Backtests from config files: the shipped 2025-10-10 replays end to end on the real files,
the config checks, and ``riskengine run|validate|schema``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from _cli import one_error_line, run_cli, write

from riskengine import backtest, config
from riskengine.data import Catalog

ROOT = Path(__file__).resolve().parents[1]
BTC = ROOT / "backtests" / "btc-2025-10-10.toml"
ALTS = ROOT / "backtests" / "coinm-alts-2025-10-10.toml"
GEMINI_BTC = "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"
DEPTH = "2025-10-10/binance-usdm-bookdepth/BTCUSDT-bookDepth-2025-10-10.csv"
#: the ten alt perps whose tapes wicked 57-86% (data/README.md); BCH and TRX fell 20% and 11%
WICKED = ("aave", "atom", "avax", "dot", "etc", "fil", "uni", "wif", "wld", "xlm")


def _window_trades(path: Path, start: str, end: str) -> pd.DataFrame:
    raw = pd.read_csv(path)
    t = pd.to_datetime(raw["timestamp"], unit="us", utc=True)
    return raw[(t >= pd.Timestamp(start)) & (t < pd.Timestamp(end))]


def _max_drawdown(price: np.ndarray) -> float:
    return float(np.max(1.0 - price / np.maximum.accumulate(price)))


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd)


def _write(tmp_path: Path, text: str, name: str = "bt.toml") -> Path:
    return write(tmp_path, text, name)


SMALL = """
[scenario]
name = "tiny"
synthetic = { ticks = 3_000, seed = 3 }

[population]
accounts = 800
seed = 4

[liquidity]
depth_per_pct = 2e6

[[venues]]
preset = "binance-usdm"
fund = { initial = 1e5 }

[[venues]]
preset = "hyperliquid"
backstop = { vault_balance = 1e5 }
"""


# ------------------------------------------------------------------ the shipped real replays
@pytest.fixture(scope="module")
def outcome(shared_data):
    """The BTC replay: config, prepared scenario, result."""
    loaded = config.load(BTC)
    prepared = backtest.prepare(loaded, 0)
    result = backtest.run_config(loaded, check_invariants=True)  # money/position conservation hold
    return loaded, prepared, result


@pytest.fixture(scope="module")
def result(shared_data):
    """The COIN-M alt replays."""
    return backtest.run_config(config.load(ALTS), check_invariants=True)


class TestBtcReplay:
    def test_tape_is_the_gemini_window(self, shared_data, outcome):
        _, prepared, _ = outcome
        raw = _window_trades(shared_data / GEMINI_BTC, "2025-10-10T20:00:00Z", "2025-10-10T22:00:00Z")
        tape = prepared.scenario.tape
        assert len(tape) == len(raw)
        np.testing.assert_array_equal(tape.price, raw["price"].to_numpy())
        np.testing.assert_array_equal(tape.ts, raw["timestamp"].to_numpy() * 1000)

    def test_stream_is_the_perp_klines_as_of_each_trade(self, shared_data, outcome):
        _, prepared, _ = outcome
        import zipfile

        with zipfile.ZipFile(shared_data / "2025-10-10/binance-price-klines/BTCUSD_PERP-1m-2025-10-10.zip") as z:
            name = z.namelist()[0]
            with z.open(name) as f:
                first = f.readline().decode()
            header = 0 if first[0].isalpha() else None
            with z.open(name) as f:
                k = pd.read_csv(f, header=header)
        close_time, close = k.iloc[:, 6].to_numpy(np.int64), k.iloc[:, 4].to_numpy(float)
        valid_from = (close_time + 1) * 1_000_000  # the close is the stream's value from the bar's end
        tape = prepared.scenario.tape
        idx = np.searchsorted(valid_from, tape.ts, side="right") - 1
        np.testing.assert_array_equal(tape.stream, close[idx])
        # a mark/index of the same market: within 6% of the spot tape even in the crash minutes
        assert np.max(np.abs(tape.stream / tape.price - 1.0)) < 0.06

    def test_depth_is_the_window_bookdepth_bands(self, shared_data, outcome):
        _, prepared, _ = outcome
        raw = pd.read_csv(shared_data / DEPTH)
        t = pd.to_datetime(raw["timestamp"].str.strip(), utc=True)
        start, end = pd.Timestamp("2025-10-10T20:00:00Z"), pd.Timestamp("2025-10-10T22:00:00Z")
        first = t[t <= start].max()  # the snapshot in force at the start
        inside = raw[(t >= first) & (t < end)]
        curve = prepared.liquidity
        assert len(curve.ts) == inside["timestamp"].str.strip().nunique()
        for s, (_, snap) in enumerate(inside.groupby(inside["timestamp"].str.strip(), sort=True)):
            bids = snap[snap["percentage"] < 0].sort_values("percentage", ascending=False)
            asks = snap[snap["percentage"] > 0].sort_values("percentage")
            np.testing.assert_array_equal(curve.notional[s, 0, :5], bids["notional"].to_numpy())
            np.testing.assert_array_equal(curve.notional[s, 1, :5], asks["notional"].to_numpy())
        # the tail floor's knot at 10% on every snapshot, never below the bands' own line
        assert (curve.pct[:, :, 5] == 10.0).all()
        assert (curve.notional[:, :, 5] > curve.notional[:, :, 4]).all()

    def test_table(self, outcome):
        loaded, _, result = outcome
        table = result.table
        assert list(table["design"]) == ["binance-usdm", "binance-usdm-last-mark", "hyperliquid"]
        assert (table["scenario"] == "btc-2025-10-10").all()
        assert (table["liquidations"] > 0).all()
        # the same tape for every design
        assert table["tape_drawdown"].nunique() == 1
        assert set(result.events.column("design").to_pylist()) == set(table["design"])


class TestAltReplays:
    def test_every_coin_under_three_marks(self, result):
        table = result.table
        assert len(table) == 12 * 3
        assert sorted(table.groupby("scenario")["design"].apply(tuple).unique()) == [
            ("last-trade-mark", "binance-median-mark", "index-mark")]

    def test_tape_drawdowns_are_the_perp_wicks(self, shared_data, result):
        for scenario, rows in result.table.groupby("scenario"):
            coin = scenario.split("usd-perp")[0].upper()
            raw = _window_trades(shared_data / f"2025-10-10/binance-coinm-perp-trades/"
                                 f"binance-delivery_trades_2025-10-10_{coin}USD_PERP.csv.gz",
                                 "2025-10-10T20:00:00Z", "2025-10-10T23:00:00Z")
            expected = _max_drawdown(raw["price"].to_numpy())
            np.testing.assert_allclose(rows["tape_drawdown"], expected, rtol=1e-12)
            if coin.lower() in WICKED:
                assert expected > 0.5, (coin, expected)

    def test_an_index_mark_damps_the_wick(self, result):
        table = result.table.set_index(["scenario", "design"])["liquidations"]
        accounts = result.table.set_index(["scenario", "design"])["accounts_liquidated"]
        for coin in WICKED:  # as the README says: fewer accounts liquidated on each of the ten
            last = table[(f"{coin}usd-perp-2025-10-10", "last-trade-mark")]
            index = table[(f"{coin}usd-perp-2025-10-10", "index-mark")]
            assert index < last, (coin, index, last)
            assert accounts[(f"{coin}usd-perp-2025-10-10", "index-mark")] < \
                accounts[(f"{coin}usd-perp-2025-10-10", "last-trade-mark")], coin
        total_last = table.xs("last-trade-mark", level="design").sum()
        total_index = table.xs("index-mark", level="design").sum()
        assert total_index < 0.9 * total_last


def test_catalog_tape_equals_file_tape(shared_data, tmp_path):
    catalog = Catalog(tmp_path / "cat")
    catalog.import_file(shared_data / GEMINI_BTC, source="tardis")
    common = """
[population]
accounts = 1000
[[venues]]
preset = "hyperliquid"
"""
    from_file = _write(tmp_path, f"""
[scenario]
name = "s"
tape = {{ source = "tardis", path = "{shared_data / GEMINI_BTC}" }}
underlying = "BTC"  # the catalog tape's symbol key says it; a file tape's is stated
window = {{ start = 2025-10-10T21:00:00Z, end = 2025-10-10T21:30:00Z }}
{common}""", "file.toml")
    from_catalog = _write(tmp_path, f"""
[scenario]
name = "s"
tape = {{ catalog = "cat", source = "gemini", symbol = "BTCUSD" }}
window = {{ start = 2025-10-10T21:00:00Z, end = 2025-10-10T21:30:00Z }}
{common}""", "catalog.toml")
    a = backtest.prepare(config.load(from_file), 0).scenario.tape
    b = backtest.prepare(config.load(from_catalog), 0).scenario.tape
    np.testing.assert_array_equal(a.ts, b.ts)
    np.testing.assert_array_equal(a.price, b.price)
    np.testing.assert_array_equal(a.qty, b.qty)
    r1 = backtest.run_config(config.load(from_file)).table.drop(columns=["elapsed_s", "ticks_per_s"])
    r2 = backtest.run_config(config.load(from_catalog)).table.drop(columns=["elapsed_s", "ticks_per_s"])
    pd.testing.assert_frame_equal(r1, r2)


def test_shipped_configs_validate(shared_data):
    for path in sorted((ROOT / "backtests").glob("*.toml")):
        assert backtest.check(config.load(path)), path


# ----------------------------------------------------------------------- the default config
def test_embedded_default_is_the_documented_comparison():
    loaded = config.load_default()
    designs = backtest.build_designs(loaded)
    assert len(designs) >= 4
    assert [d.preset for d in designs[:2]] == ["binance-usdm", "hyperliquid"]
    assert loaded.config.population.accounts >= 100_000
    # each variant changes one mechanism of its preset
    for variant in designs[2:]:
        base = next(d for d in designs[:2] if d.preset == variant.preset)
        changed = [k for k in ("margin", "mark", "liquidation", "fund", "backstop", "adl")
                   if getattr(variant, k) != getattr(base, k)]
        assert len(changed) == 1, (variant.name, changed)


# --------------------------------------------------------------------------- config errors
@pytest.mark.parametrize("text, expected", [
    (SMALL.replace("accounts = 800", "acounts = 800"), "population.acounts: unknown key (did you mean 'accounts'?)"),
    (SMALL.replace('preset = "hyperliquid"', 'preset = "hyperliqiud"'), "venues[1]: unknown venue preset 'hyperliqiud' (did you mean 'hyperliquid'?)"),
    (SMALL.replace("backstop = { vault_balance = 1e5 }", "backstop = { vault_balance = 1e5 }\nadl = { polcy = 'queue' }"),
     "venues[1]: venue design 'hyperliquid': adl.polcy: unknown key (did you mean 'policy'?)"),
    (SMALL.replace("depth_per_pct = 2e6", "depth_per_pct = -2e6"), "liquidity.depth_per_pct: Input should be greater than 0"),
    (SMALL + "\n[population.leverage]\nvalues = [2, 4]\nweights = [0.5, 0.6]\n", "weights: expected weights summing to 1"),
    (SMALL.replace('synthetic = { ticks = 3_000, seed = 3 }', ''), "scenario: expected exactly one of tape or synthetic"),
    (SMALL.replace("[scenario]", "[scenario]\nwindow = { start = 2025-10-10T22:00:00Z, end = 2025-10-10T21:00:00Z }"),
     "scenario.window: expected start before end"),
    ("[scenario\nname = 1", "not valid TOML"),
    (SMALL.replace('synthetic = { ticks = 3_000, seed = 3 }', 'tape = { source = "tardis", path = "nowhere.csv.gz" }'),
     "scenario.tape.path: no such file"),
    (SMALL + '\n[[venues]]\npreset = "hyperliquid"\nbackstop = { vault_balance = 1e5 }\n',
     "design names must be unique (repeated: hyperliquid)"),
])
def test_validate_rejects_with_one_line(tmp_path, text, expected):
    path = _write(tmp_path, text)
    line = one_error_line(_cli("validate", str(path)))
    assert str(path) in line, line
    assert expected in line, line


def test_window_outside_the_tape_names_the_tape_span(shared_data, tmp_path):
    path = _write(tmp_path, f"""
[scenario]
name = "late"
tape = {{ source = "tardis", path = "{shared_data / GEMINI_BTC}" }}
window = {{ start = 2025-10-12T00:00:00Z, end = 2025-10-12T01:00:00Z }}
[[venues]]
preset = "hyperliquid"
""")
    line = one_error_line(_cli("run", str(path), "--no-output"))
    assert "scenario.window: holds 0 trade(s) of the tape; the tape spans 2025-10-10T" in line, line


def test_missing_config_file(tmp_path):
    line = one_error_line(_cli("run", str(tmp_path / "nope.toml")))
    assert "nope.toml: no such config file" in line


def test_default_only_options_refused_with_a_config(tmp_path):
    line = one_error_line(_cli("run", str(_write(tmp_path, SMALL)), "--accounts", "10"))
    assert "--accounts" in line


# ------------------------------------------------------------------------------ outputs, CLI
def test_run_writes_outputs_atomically_and_refuses_to_overwrite(tmp_path):
    cfg = _write(tmp_path, SMALL)
    out = tmp_path / "out"
    proc = _cli("run", str(cfg), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(backtest.OUTPUT_FILES)
    results = pq.read_table(out / "results.parquet").to_pandas()
    assert list(results["design"]) == ["binance-usdm", "hyperliquid"]
    csv = pd.read_csv(out / "results.csv")
    np.testing.assert_allclose(csv["liquidated_notional"], results["liquidated_notional"], rtol=1e-12)
    md = (out / "results.md").read_text().splitlines()
    assert md[0].startswith("| scenario | design |") and len(md) == 2 + len(results)
    events = pq.read_table(out / "events.parquet")
    expected = backtest.run_config(config.load(cfg))
    assert events.num_rows == expected.events.num_rows
    assert pq.read_table(out / "series.parquet").num_rows == expected.series.num_rows
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = _cli("run", str(cfg), "--out", str(out))
    assert "output folder exists" in one_error_line(again)
    assert again.stderr.count("\n") == 1  # refused before running anything
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert _cli("run", str(cfg), "--out", str(out), "--overwrite").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(backtest.OUTPUT_FILES)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_run_default_output_folder(tmp_path):
    cfg = _write(tmp_path, SMALL)
    proc = _cli("run", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folders = list((tmp_path / "results").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("bt-")


def test_validate_ok_and_schema(tmp_path):
    proc = _cli("validate", str(_write(tmp_path, SMALL)))
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "tiny: 800 accounts x 2 design(s)" in proc.stdout
    schema = json.loads(_cli("schema").stdout)
    assert {"scenario", "scenarios", "population", "liquidity", "venues", "outputs"} <= set(schema["properties"])


# ------------------------------------------------------------------ observed vs simulated
HL = ROOT / "backtests" / "hyperliquid-2025-10-10.toml"


def test_hyperliquid_replay_puts_observed_beside_simulated(shared_data):
    import csv as _csv

    loaded = config.load(HL)
    result = backtest.run_config(loaded, check_invariants=True)
    table = result.table
    assert list(table["scenario"]) == ["hl-btc-2025-10-10", "hl-eth-2025-10-10", "hl-sol-2025-10-10"]
    with open(shared_data / "2025-10-10/hyperliquid-observed/combined_impact_by_ticker.csv") as f:
        observed = {r["ticker"]: r for r in _csv.DictReader(f)}
    for (_, row), ticker in zip(table.iterrows(), ("BTC", "ETH", "SOL")):
        assert row["observed_liquidated_notional"] == float(observed[ticker]["liq_notional"])
        assert row["observed_adl_notional"] == float(observed[ticker]["adl_notional"])
        assert row["observed_adl_fills"] == float(observed[ticker]["adl_events"])
        assert row["observed_adl_to_liquidated"] == pytest.approx(
            float(observed[ticker]["adl_notional"]) / float(observed[ticker]["liq_notional"]))
        assert row["observed_first_adl_delay_s"] == pytest.approx(61.704502)
    columns = list(table.columns)
    for name in ("liquidations", "liquidated_notional", "adl_fills", "adl_notional", "adl_to_liquidated",
                 "first_adl_delay_s"):
        assert columns[columns.index(name) + 1] == f"observed_{name}"
    # per-scenario liquidity: ETH and SOL books scaled like their open interest
    assert [backtest.prepare(loaded, i).liquidity.depth_per_pct for i in range(3)] == [1.4e8, 1.17e8, 3.9e7]


def test_observed_ticker_is_checked_before_running(shared_data, tmp_path):
    text = HL.read_text().replace('ticker = "SOL"', 'ticker = "SOLL"').replace("../../shared", str(shared_data.parent))
    line = one_error_line(_cli("validate", str(_write(tmp_path, text))))
    assert "scenarios[2].observed:" in line and "no ticker 'SOLL' (did you mean 'SOL'?)" in line, line


# ------------------------------------------------------------------ the portfolio replay
PORTFOLIO = ROOT / "backtests" / "portfolio-2025-10-10.toml"
#: columns that depend on the machine or the engine, not on the run
_TIMED = ["elapsed_s", "ticks_per_s", "engine"]


def _portfolio_cut(start: str, end: str, accounts: int) -> config.LoadedConfig:
    """The shipped portfolio config on a shorter window and fewer accounts (nothing else changed)."""
    import tomllib

    data = tomllib.loads(PORTFOLIO.read_text(encoding="utf-8"))
    data["scenario"]["window"] = {"start": start, "end": end}
    data["scenario"]["portfolio"]["accounts"] = accounts
    return config.parse(data, where=str(PORTFOLIO), base_dir=PORTFOLIO.parent)


def test_portfolio_config_pairs_designs_that_differ_only_in_margin_mode(shared_data):
    loaded = config.load(PORTFOLIO)
    spec = loaded.config.all_scenarios()[0]
    assert len(spec.instruments) >= 10
    for ins in spec.instruments:  # every tape and stream is a real file of ../shared/data
        for source in (ins.tape, ins.stream):
            if source is not None:
                path = loaded.resolve(source.path)
                assert path.is_file() and path.resolve().is_relative_to(shared_data.resolve()), path
    designs = backtest.build_designs(loaded, 0)
    assert len(designs) == 4
    for preset in ("binance-usdm", "hyperliquid"):
        pair = [d for d in designs if d.preset == preset]
        assert sorted(d.margin_mode for d in pair) == ["cross", "isolated"]
        cross, isolated = (d.model_dump(exclude={"name", "margin_mode"}) for d in pair)
        assert cross == isolated
    # the accounts hold several instruments, cross and isolated mixed ("as-held", used by no design)
    portfolio = backtest.prepare(loaded, 0).scenario.portfolio
    held = np.diff(portfolio.start)
    assert len(portfolio) == 100_000 and held.max() == 4 and (held >= 2).mean() > 0.4


def test_portfolio_config_runs_alike_on_both_engines(shared_data):
    """The reference engine on two minutes of the crash (21:19-21:21 UTC) and 1,000 accounts
    (fewer leave some instrument's side without a position the generator must give it): the same
    result rows and per-instrument rows as the compiled engine, money and positions conserved
    (check_invariants), and each instrument's rows summing to the run's."""
    loaded = _portfolio_cut("2025-10-10T21:19:00Z", "2025-10-10T21:21:00Z", 1_000)
    fast = backtest.run_config(loaded, check_invariants=True)
    slow = backtest.run_config(loaded, engine="reference", check_invariants=True)
    assert list(fast.table["margin_mode"]) == ["cross", "isolated", "cross", "isolated"]
    assert (fast.table["instruments"] == 15).all() and fast.table["liquidations"].gt(0).all()
    pd.testing.assert_frame_equal(fast.table.drop(columns=_TIMED), slow.table.drop(columns=_TIMED))
    pd.testing.assert_frame_equal(fast.by_instrument.drop(columns=["engine"]),
                                  slow.by_instrument.drop(columns=["engine"]))
    summed = fast.by_instrument.groupby("design", sort=False)[["liquidations", "liquidated_notional"]].sum()
    table = fast.table.set_index("design")
    assert (summed["liquidations"] == table["liquidations"]).all()
    np.testing.assert_allclose(summed["liquidated_notional"], table["liquidated_notional"], rtol=1e-12)
