"""Multi-instrument scenarios from the user's side: the Python API (``PortfolioScenario`` through
``riskengine.run``), per-instrument designs, the per-instrument result table, and (below) configs
run end to end through the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskengine import synthetic, venues
from riskengine.engine import run
from riskengine.liquidity import ConstantDepth
from riskengine.metrics import INSTRUMENT_COLUMNS, TIMING_COLUMNS
from riskengine.portfolio import Instrument, Portfolio, PortfolioScenario, PortfolioSpec, generate_portfolio
from tests._cli import raised_line

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


def test_a_symbol_without_a_table_is_refused_in_one_line(scenario):
    doge = Instrument("DOGEUSDT", synthetic.crash_tape(500, start_price=0.25, seed=4))
    two = PortfolioScenario("doge", (scenario.instruments[0], doge),
                            Portfolio.from_arrays([0.0], [0, 1], [1], [1000.0], [0.25], [0], [100.0],
                                                  n_instruments=2))
    line = raised_line(run, two, venues.preset("binance-usdm", date="2025-10-10"), engine="reference")
    assert line.startswith("venue design 'binance-usdm': instrument DOGEUSDT: binance-usdm: no margin table "
                           "for symbol 'DOGEUSDT'"), line


def test_cross_accounts_with_several_positions_are_refused_before_running(scenario):
    instruments = scenario.instruments[:2]
    book = Portfolio.from_arrays([50_000.0], [0, 2], [0, 1], [1.0, -5.0], [121_700.0, 4_300.0], [1, 1],
                                 n_instruments=2)
    line = raised_line(run, PortfolioScenario("hedged", instruments, book),
                       venues.preset("binance-usdm", date="2025-10-10"), engine="reference")
    assert "holds 2 positions" in line and "step 2" in line, line


def test_the_compiled_engine_runs_the_same_portfolio_or_says_it_cannot_yet(scenario, result):
    from riskengine import _engine

    designs = [venues.preset("binance-usdm", date="2025-10-10"), venues.preset("hyperliquid", date="2025-10-10")]
    if not hasattr(_engine, "run_portfolio"):  # TEMPORARY (issue 12 step 1): until the compiled engine has it
        line = raised_line(run, scenario, designs, ConstantDepth(5e6))
        assert line == ("engine cython: the compiled portfolio engine is not built yet: a multi-instrument "
                        "scenario runs on the reference engine only (riskengine run --engine reference)")
        return
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
