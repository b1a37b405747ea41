"""Multi-instrument scenarios from the user's side: the Python API (``PortfolioScenario`` through
``riskengine.run``), per-instrument designs, the per-instrument result table, and (below) configs
run end to end through the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskengine import backtest, config, metrics, synthetic, venues
from riskengine.engine import run
from riskengine.liquidity import ConstantDepth
from riskengine.metrics import INSTRUMENT_COLUMNS, TIMING_COLUMNS
from riskengine.portfolio import Instrument, Portfolio, PortfolioScenario, PortfolioSpec, generate_portfolio
from tests._cli import one_error_line, raised_line, run_cli, write

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
#: what a per-instrument table sums to the run's row: counts and money of its events
ADDITIVE = ("ticks", "liquidations", "liquidated_notional", "partial_liquidations", "backstop_liquidations",
            "fund_takeovers", "fund_paid_out", "fees_collected", "vault_adl_notional", "adl_fills", "adl_notional",
            "adl_haircut", "adl_deficit_covered", "socialized_loss", "bad_debt", "cascade_rounds")


def _instruments() -> tuple[Instrument, ...]:
    """Three synthetic crashes of different depth, lengths and prices; ETH with its own book."""
    return (Instrument("BTCUSDT", synthetic.crash_tape(3_000, seed=1)),
            Instrument("ETHUSDT", synthetic.crash_tape(2_000, start_price=4_300.0, drop=0.2, seed=2),
                       ConstantDepth(2e6)),
            Instrument("SOLUSDT", synthetic.crash_tape(1_500, start_price=220.0, drop=0.25, seed=3)))


@pytest.fixture(scope="module")
def scenario() -> PortfolioScenario:
    instruments = _instruments()
    spec = PortfolioSpec(symbols=SYMBOLS, open_interest_usd=(3e8, 1.7e8, 1e8), accounts=600,
                         holdings=(0.6, 0.3, 0.1), cross_share=0.0, seed=5)
    generated = generate_portfolio(spec, [ins.tape.price[0] for ins in instruments])
    return PortfolioScenario("three-coins", instruments, generated.portfolio)


@pytest.fixture(scope="module")
def result(scenario):
    designs = [venues.preset("binance-usdm", date="2025-10-10"), venues.preset("hyperliquid", date="2025-10-10")]
    return run(scenario, designs, ConstantDepth(5e6), engine="reference", check_invariants=True)


def test_a_portfolio_run_has_one_row_per_design_and_one_per_instrument(scenario, result):
    assert list(result.table["design"]) == ["binance-usdm", "hyperliquid"]
    assert list(result.table["instruments"]) == [3, 3]
    assert list(result.table["ticks"]) == [6_500, 6_500]
    by = result.by_instrument
    assert list(by.columns) == [c.name for c in INSTRUMENT_COLUMNS]
    assert list(zip(by["design"], by["instrument"], by["symbol"])) == [
        (d, k, s) for d in ("binance-usdm", "hyperliquid") for k, s in enumerate(SYMBOLS)]
    assert list(by["ticks"]) == [3_000, 2_000, 1_500] * 2
    # every instrument's crash liquidated accounts under both designs
    assert (by["liquidations"] > 0).all()
    # positions: the accounts holding each instrument; the run's: those holding any
    pf = scenario.portfolio
    held = [int(np.count_nonzero((pf.instrument == k) & (pf.size != 0))) for k in range(3)]
    assert list(by["positions"][:3]) == held
    users = np.repeat(np.arange(len(pf)), np.diff(pf.start))
    assert result.table["positions"].iloc[0] == len(np.unique(users[pf.size != 0]))


@pytest.mark.parametrize("column", ADDITIVE)
def test_per_instrument_figures_sum_to_the_runs(result, column):
    sums = result.by_instrument.groupby("design", sort=False)[column].sum()
    totals = result.table.set_index("design")[column]
    assert np.allclose(sums.to_numpy(dtype=float), totals.loc[sums.index].to_numpy(dtype=float), rtol=1e-12,
                       atol=1e-6), (column, sums, totals)


def test_per_instrument_figures_are_the_instruments_events(result):
    events = result.events.to_pandas()
    for (design, k), row in result.by_instrument.set_index(["design", "instrument"]).iterrows():
        mine = events[(events["design"] == design) & (events["instrument"] == k)]
        assert row["fees_collected"] == pytest.approx(mine["fee"].sum(), rel=1e-12, abs=1e-9)
        assert row["accounts_liquidated"] <= row["liquidations"]
    # the run's drawdown is the largest instrument's; marks end near each instrument's own tape
    for design, group in result.by_instrument.groupby("design"):
        row = result.table.set_index("design").loc[design]
        assert row["tape_drawdown"] == group["tape_drawdown"].max()
        assert row["sim_drawdown"] == group["sim_drawdown"].max()
    finals = result.by_instrument["final_mark"].to_numpy()[:3]
    tapes = [ins.tape.price[-1] for ins in _instruments()]
    assert np.allclose(finals, tapes, rtol=0.05)


def test_each_instrument_runs_on_its_symbols_margin_table(result):
    sources = result.by_instrument["margin_source"].tolist()
    assert [s.split()[:2] for s in sources[:3]] == [["binance-usdm", s] for s in SYMBOLS]
    assert [s.split()[:2] for s in sources[3:]] == [["hyperliquid", s] for s in ("BTC", "ETH", "SOL")]
    assert result.table["margin_source"].iloc[0] == " | ".join(sources[:3])


def test_for_symbol_keeps_what_the_design_changed_and_takes_the_instruments_table():
    design = venues.build({"preset": "hyperliquid", "name": "hl-pro-rata", "adl": {"policy": "pro-rata"}},
                          underlying="BTC", date="2025-10-10")
    sol = venues.for_symbol(design, "SOLUSDT", "2025-10-10")
    assert (sol.name, sol.adl.policy) == ("hl-pro-rata", "pro-rata")
    assert sol.margin == venues.preset("hyperliquid", symbol="SOL", date="2025-10-10").margin
    # the largest market order follows the table's leverage (20x SOL: $5M; 40x BTC: $30M) [DOC S32]
    assert (design.liquidation.max_order, sol.liquidation.max_order) == (30e6, 5e6)
    assert venues.for_symbol(design, "BTC", "2025-10-10") == design
    given = design.with_overrides({"margin": {"floors": [0.0], "rates": [0.01]}})
    assert venues.for_symbol(given, "SOLUSDT", "2025-10-10") is given  # its own table serves every instrument


@pytest.mark.parametrize("preset", venues.names())
def test_every_preset_runs_on_every_symbol_it_has_a_table_for(preset):
    """A preset's design-level parameters do not depend on the symbol: one design can serve every
    instrument (the per-instrument ones: riskengine.engine_inputs.PER_INSTRUMENT_FIELDS)."""
    from riskengine.engine_inputs import design_params
    from riskengine.venues import _tables

    design = venues.preset(preset, date="2025-10-10")
    symbols = _tables.symbols(preset)
    per = [venues.for_symbol(design, s, "2025-10-10") for s in symbols]
    assert [d.margin.label.split()[1] for d in per] == symbols
    params = [d.engine_params() for d in per]
    assert design_params(params) is params[0]  # raises on a design-level field that differs


def test_a_symbol_without_a_table_is_refused_in_one_line(scenario):
    doge = Instrument("DOGEUSDT", synthetic.crash_tape(500, start_price=0.25, seed=4))
    two = PortfolioScenario("doge", (scenario.instruments[0], doge),
                            Portfolio.from_arrays([0.0], [0, 1], [1], [1000.0], [0.25], [0], [100.0],
                                                  n_instruments=2))
    line = raised_line(run, two, venues.preset("binance-usdm", date="2025-10-10"), engine="reference")
    assert line.startswith("venue design 'binance-usdm': instrument DOGEUSDT: binance-usdm: no margin table "
                           "for symbol 'DOGEUSDT'"), line


def test_cross_accounts_with_several_positions_run_on_either_engine(scenario):
    instruments = scenario.instruments[:2]
    book = Portfolio.from_arrays([50_000.0], [0, 2], [0, 1], [1.0, -5.0], [121_700.0, 4_300.0], [1, 1],
                                 n_instruments=2)
    hedged = PortfolioScenario("hedged", instruments, book)
    design = venues.preset("binance-usdm", date="2025-10-10")
    out = run(hedged, design, engine="reference", check_invariants=True)
    (raw,) = out.raw
    assert len(raw.positions_size) == 2 and list(raw.collateral) != [] and len(raw.status) == 1
    compiled = run(hedged, design, check_invariants=True)
    (cy,) = compiled.raw
    assert cy.positions_size.tobytes() == raw.positions_size.tobytes()
    assert cy.collateral.tobytes() == raw.collateral.tobytes()
    pd.testing.assert_frame_equal(compiled.by_instrument.drop(columns=[*TIMING_COLUMNS, "engine"], errors="ignore"),
                                  out.by_instrument.drop(columns=[*TIMING_COLUMNS, "engine"], errors="ignore"))


def test_the_compiled_engine_runs_the_same_portfolio(scenario, result):
    designs = [venues.preset("binance-usdm", date="2025-10-10"), venues.preset("hyperliquid", date="2025-10-10")]
    compiled = run(scenario, designs, ConstantDepth(5e6), check_invariants=True)
    pd.testing.assert_frame_equal(compiled.table.drop(columns=[*TIMING_COLUMNS, "engine"]),
                                  result.table.drop(columns=[*TIMING_COLUMNS, "engine"]))
    pd.testing.assert_frame_equal(compiled.by_instrument.drop(columns="engine"),
                                  result.by_instrument.drop(columns="engine"))


def test_a_single_instrument_scenario_has_one_instrument_row_with_its_figures():
    scenario = synthetic.crash_scenario(ticks=2_000, accounts=500, seed=1)
    designs = [synthetic.binance_style(), venues.preset("hyperliquid", date="2025-10-10")]
    for engine in ("cython", "reference"):
        out = run(scenario, designs, engine=engine)
        assert list(out.table["instruments"]) == [1, 1]
        by = out.by_instrument
        assert list(zip(by["design"], by["instrument"], by["symbol"])) == [(d.name, 0, "") for d in designs]
        shared = [c for c in by.columns if c in out.table.columns and c not in TIMING_COLUMNS]
        pd.testing.assert_frame_equal(by[shared], out.table[shared])
        assert list(by["final_mark"]) == [raw.scalars["final_mark"] for raw in out.raw]


# ------------------------------------------------------------------------------ configs, through the CLI
THREE_COINS = """\
[scenario]
name = "three-coins"

[[scenario.instruments]]
symbol = "BTCUSDT"
synthetic = { ticks = 3_000, seed = 1 }

[[scenario.instruments]]
symbol = "ETHUSDT"
synthetic = { ticks = 2_000, start_price = 4_300.0, drop = 0.2, seed = 2 }
liquidity = { depth_per_pct = 2e6 }

[[scenario.instruments]]
symbol = "SOLUSDT"
synthetic = { ticks = 1_500, start_price = 220.0, drop = 0.25, seed = 3 }

[scenario.portfolio]
accounts = 600
open_interest_usd = [3e8, 1.7e8, 1e8]
max_leverage = [40, 25, 20]
holdings = [0.6, 0.3, 0.1]
cross_share = 0
seed = 5

[liquidity]
depth_per_pct = 5e6

[[venues]]
preset = "binance-usdm"

[[venues]]
preset = "hyperliquid"
backstop = { vault_balance = 2e6 }
"""

#: two instruments whose accounts come from a positions file (POSITIONS below)
TWO_FROM_FILE = """\
[[scenarios]]
name = "btc-eth-book"
window = { start = 2025-10-10T20:00:00Z }

[[scenarios.instruments]]
symbol = "BTCUSDT"
synthetic = { ticks = 2_000, drop = 0.2, seed = 11 }

[[scenarios.instruments]]
symbol = "ETHUSDT"
synthetic = { ticks = 2_000, start_price = 4_300.0, drop = 0.3, seed = 12 }

[scenarios.portfolio]
file = "positions.csv"

[liquidity]
depth_per_pct = 1e6

[[venues]]
preset = "binance-usdm"
"""

#: account a: a cross BTC long and an isolated ETH long; b: isolated on both sides; c: a wallet only
POSITIONS = """\
account,instrument,size,entry_price,margin_mode,isolated_margin,wallet
a,BTCUSDT,2.0,121700,cross,,30000
a,ETHUSDT,40,4300,isolated,9000,30000
b,ETHUSDT,-10,4300,isolated,5000,0
b,BTCUSDT,1.0,121700,isolated,4000,0
c,,0,,,,500
"""


def _config(folder, text: str, name: str = "portfolio.toml", positions: str | None = None):
    if positions is not None:
        (folder / "positions.csv").write_text(positions)
    return write(folder, text, name)


@pytest.fixture(scope="module")
def three_coins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three")
    path = _config(folder, THREE_COINS)
    proc = run_cli("run", str(path), "--out", str(folder / "out"))
    assert proc.returncode == 0, proc.stderr
    return proc, folder / "out"


def test_a_three_instrument_config_runs_end_to_end(three_coins):
    proc, out = three_coins
    assert sorted(p.name for p in out.iterdir()) == sorted(backtest.OUTPUT_FILES)
    results = pd.read_parquet(out / "results.parquet")
    by = pd.read_parquet(out / "results_by_instrument.parquet")
    assert list(results["design"]) == ["binance-usdm", "hyperliquid"]
    assert results["instruments"].tolist() == [3, 3] and results["instruments"].dtype.kind == "i"
    assert list(zip(by["design"], by["symbol"])) == [(d, s) for d in ("binance-usdm", "hyperliquid") for s in SYMBOLS]
    assert by["ticks"].tolist() == [3_000, 2_000, 1_500] * 2
    assert [s.split()[1] for s in by["margin_source"]] == [*SYMBOLS, "BTC", "ETH", "SOL"]
    for column in ADDITIVE:
        sums = by.groupby("design", sort=False)[column].sum().to_numpy(dtype=float)
        assert np.allclose(sums, results[column].to_numpy(dtype=float), rtol=1e-12, atol=1e-6), column
    assert (by["liquidations"] > 0).all()
    # the events name each row's instrument; their fees are each instrument's
    events = pd.read_parquet(out / "events.parquet")
    fees = events.groupby(["design", "instrument"], sort=True)["fee"].sum()
    assert np.allclose(fees.to_numpy(), by.set_index(["design", "instrument"])["fees_collected"].sort_index(),
                       rtol=1e-12, atol=1e-9)
    # the terminal and the progress say what ran
    assert "3 instruments: BTCUSDT 3,000, ETHUSDT 2,000 (depth 2,000,000/1%), SOLUSDT 1,500" in proc.stderr


def test_the_same_config_through_the_python_api_gives_the_same_rows_on_either_engine(three_coins):
    _, out = three_coins  # written by the CLI on the compiled engine
    loaded = config.load(out.parent / "portfolio.toml")
    result = backtest.run_config(loaded, engine="reference")
    written = pd.read_parquet(out / "results_by_instrument.parquet")
    assert set(written["engine"]) == {"cython"} and set(result.by_instrument["engine"]) == {"reference"}
    drop = [*TIMING_COLUMNS, "engine"]
    pd.testing.assert_frame_equal(result.by_instrument.drop(columns=drop, errors="ignore"),
                                  written.drop(columns=drop, errors="ignore"), rtol=1e-9)


def test_a_positions_file_gives_the_accounts(tmp_path):
    path = _config(tmp_path, TWO_FROM_FILE, positions=POSITIONS)
    proc = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    results = pd.read_parquet(tmp_path / "out" / "results.parquet")
    by = pd.read_parquet(tmp_path / "out" / "results_by_instrument.parquet")
    assert (results["accounts"].item(), results["positions"].item(), results["instruments"].item()) == (3, 2, 2)
    assert by["positions"].tolist() == [2, 2]
    # a 20% BTC fall liquidates b's isolated BTC long (121,700 on 4,000 of margin: 30x); a 30% ETH fall
    # a's isolated ETH long (172,000 on 9,000: 19x); b's ETH short gains
    events = pd.read_parquet(tmp_path / "out" / "events.parquet")
    liquidated = events[events["kind"].isin([int(k) for k in metrics.LIQUIDATION_KINDS])]
    assert set(zip(liquidated["account"], liquidated["instrument"])) >= {(1, 0), (0, 1)}
    assert 2 not in set(events["account"])  # c holds a wallet only


def test_validate_reads_every_instrument(tmp_path):
    path = _config(tmp_path, TWO_FROM_FILE, positions=POSITIONS)
    proc = run_cli("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "btc-eth-book: 3 accounts, 4 positions x 1 design(s) (binance-usdm); 4,000 trades" in proc.stdout


BAD_INPUTS = [
    pytest.param(TWO_FROM_FILE, POSITIONS.replace("b,BTCUSDT,", "b,SOLUSDT,"),
                 "positions.csv: row 4: instrument 'SOLUSDT': expected a symbol of the scenario (no tape for this "
                 "one; instruments: BTCUSDT, ETHUSDT)", id="a position in an instrument with no tape"),
    pytest.param(TWO_FROM_FILE.replace('symbol = "ETHUSDT"', 'symbol = "DOGEUSDT"'), POSITIONS.replace("ETHUSDT", "DOGEUSDT"),
                 "scenarios[0].instruments[1]: venues[0]: binance-usdm: no margin table for symbol 'DOGEUSDT'",
                 id="a symbol the design has no table for"),
    pytest.param(TWO_FROM_FILE, POSITIONS.replace("isolated,4000,", "isolated,0,"),
                 "positions.csv: row 4: isolated_margin '0': expected an isolated margin > 0 for an isolated position",
                 id="isolated margin 0"),
    pytest.param(TWO_FROM_FILE, POSITIONS.replace("isolated,4000,", "isolated,-4000,"),
                 "positions.csv: row 4: isolated_margin '-4000': expected an isolated margin > 0", id="negative margin"),
    pytest.param(TWO_FROM_FILE, POSITIONS.replace("b,BTCUSDT,", "b,ETHUSDT,"),
                 "positions.csv: row 4: instrument 'ETHUSDT': repeats row 3 (account 'b'): expected one row per "
                 "account and instrument", id="duplicate account and instrument"),
    pytest.param(TWO_FROM_FILE.replace('symbol = "ETHUSDT"', 'symbol = "BTCUSDT"'), POSITIONS,
                 "scenarios[0]: instruments[1].symbol: 'BTCUSDT' repeats instruments[0].symbol: expected one "
                 "instrument per symbol", id="two instruments with one symbol"),
    pytest.param(THREE_COINS.replace("open_interest_usd = [3e8, 1.7e8, 1e8]", "open_interest_usd = [3e8, 1.7e8]"),
                 None, "scenario: portfolio.open_interest_usd: 2 values: expected one number, or one per instrument (3)",
                 id="per-instrument facts of the wrong length"),
    pytest.param(THREE_COINS.replace('[[scenario.instruments]]\nsymbol = "SOLUSDT"',
                                     '[[scenario.instruments]]\nsymbol = "SOLUSDT"\nstream = { source = "tardis", '
                                     'path = "nowhere.csv" }'), None,
                 "scenario.instruments[2].stream.path: no such file", id="a missing stream file"),
]


@pytest.mark.parametrize("text, positions, expected", BAD_INPUTS)
def test_bad_input_is_one_line_and_nothing_runs(tmp_path, text, positions, expected):
    path = _config(tmp_path, text, positions=positions)
    line = one_error_line(run_cli("validate", str(path)), progress_first=False)
    assert str(path) in line or str(tmp_path / "positions.csv") in line, line
    assert expected in line, line
    proc = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    assert one_error_line(proc) == line
    assert not (tmp_path / "out").exists()


SINGLE = """\
[scenario]
name = "btc-crash"
synthetic = { ticks = 3_000, seed = 3 }

[population]
accounts = 800

[liquidity]
depth_per_pct = 2e6

[[venues]]
preset = "binance-usdm"

[[venues]]
preset = "hyperliquid"
backstop = { vault_balance = 1e5 }
"""


@pytest.mark.parametrize("engine", ["cython", "reference"])
def test_a_single_instrument_config_gets_one_row_per_design(tmp_path, engine):
    path = _config(tmp_path, SINGLE, "single.toml")
    proc = run_cli("run", str(path), "--engine", engine, "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    results = pd.read_parquet(tmp_path / "out" / "results.parquet")
    by = pd.read_parquet(tmp_path / "out" / "results_by_instrument.parquet")
    assert results["instruments"].tolist() == [1, 1]
    assert list(zip(by["design"], by["instrument"], by["symbol"])) == [("binance-usdm", 0, ""), ("hyperliquid", 0, "")]
    shared = [c for c in by.columns if c in results.columns]
    pd.testing.assert_frame_equal(by[shared], results[shared])
