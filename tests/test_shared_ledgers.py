"""Shared insurance funds and backstop vaults across instruments (issue 12, step 3).

A design says which instruments draw on one fund (``fund.shared``) and one vault
(``backstop.shared``): ``"all"`` (one ledger for every instrument, the default), ``"none"`` (one
each) or groups of symbols, the instruments in no group sharing one more. Each ledger starts with
the design's balance, has its own loss threshold (a vault), capacity (a fund) and unwind clock;
ADL stays in the instrument of the order. Hand-worked scenarios carry their arithmetic in
comments (maintenance margin 5% of notional, infinite depth: a market order fills at the mark);
each runs on the reference engine and the compiled one gives the same run to the bit
(``tests/test_parity_portfolio.py`` checks random groupings).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import backtest, config, sweep, venues
from riskengine._engine import run_portfolio as compiled
from riskengine.codes import VAULT_ID, AdlPolicy, AdlPrice, EventKind
from riskengine.engine import resolve, run
from riskengine.engine_inputs import ledger_groups
from riskengine.invariants import portfolio_violations
from riskengine.liquidity import ConstantDepth
from riskengine.metrics import TIMING_COLUMNS
from riskengine.reference import run_portfolio
from riskengine.runlog import RawRun
from riskengine.venue import Adl, Fund, Liquidation, Margin, VenueDesign
from riskengine.venues.binance_usdm import SHARED_FUND_SYMBOLS

from test_sweep import BASE
from test_reference_portfolio import S, T0, Accounts, merge, params, portfolio_cases, rows
from test_portfolio_runs import THREE_COINS
from test_portfolio_runs import scenario as _scenario  # noqa: F401  (the three-coins fixture)
from tests._cli import one_error_line, run_cli, write

K = EventKind


def _run(tapes, accounts: Accounts, plist):
    """The reference engine on a hand-made portfolio, its invariants checked; the compiled
    engine's run must be the same to the bit."""
    ts, inst, price = merge(tapes)
    args = (ts, inst, price, np.full(len(ts), np.nan), *accounts.arrays())
    raw = run_portfolio(*args, plist)
    owner, collateral = args[4], args[5]
    a_inst, a_size, a_entry = accounts.per_account()
    assert portfolio_violations(raw, owner, collateral, a_inst, a_size, a_entry, plist[0]) == []
    cy = RawRun(**compiled(*args, plist))
    for log in ("events", "series", "by_instrument"):
        for name, values in getattr(raw, log).items():
            assert np.array_equal(getattr(cy, log)[name], values, equal_nan=True), (log, name)
    assert set(cy.scalars) == set(raw.scalars)
    for name, value in cy.scalars.items():
        assert np.array_equal(np.float64(value), np.float64(raw.scalars[name]), equal_nan=True), name
    return raw


def _grouped(p, groups: list[int], field: str):
    return [dataclasses.replace(p, **{field: g}) for g in groups]


# ------------------------------------------------------------------ one vault for three instruments


def test_one_vault_for_three_instruments_runs_out_and_the_third_deficit_goes_to_adl():
    # Each vault starts with 1000 and may lose 60 (it deleverages, and takes nothing over, once its
    # equity is below 940); backstop ratio 1; ADL by queue at the bankruptcy price. In each
    # instrument k a long L_k (10 at 100, margin 100) and a short W_k (-10 at 100, margin 100).
    # t=1: instrument 0 falls to 94: L_0's equity 100 - 60 = 40 < MM 0.05 x 940 = 47, the vault
    #      takes 10 at 94 with the 40. t=2: instrument 1 likewise.
    # t=3, t=4: instruments 0 and 1 fall to 86: each inventory loses 10 x (94 - 86) = 80.
    # t=5: instrument 2 falls to 85: L_2's equity 100 - 150 = -50.
    #
    # One vault ("all"): cash 1000 + 40 + 40 = 1080; at t=4 its equity is 1080 - 80 - 80 = 920 <
    # 940, so it deleverages both inventories at the mark 86 (its bankruptcy price 94 - 1080/10
    # is below 0) against W_0 and W_1: cash 920, and it stays beyond its threshold. At t=5 L_2
    # goes to the book: filled at 85 it would owe 50, the fund is empty and the vault takes
    # nothing over, so L_2 is auto-deleveraged against W_2 at its bankruptcy price
    # 100 - 100/10 = 90: L_2 ends at 0, W_2 gives up 10 x (90 - 85) = 50 against the mark.
    p = params(backstop_ratio=1.0, vault_initial=1000.0, vault_loss_limit=60.0, adl_policy=AdlPolicy.QUEUE,
               adl_price=AdlPrice.BANKRUPTCY, vault_unwind_interval_ns=1000 * S)
    accounts = Accounts([(10 + k, 100.0, k, 10.0, 100.0) for k in range(3)]
                        + [(20 + k, 100.0, k, -10.0, 100.0) for k in range(3)])
    tapes = [([0, 1, 3], [100.0, 94.0, 86.0]), ([0, 2, 4], [100.0, 94.0, 86.0]), ([0, 5], [100.0, 85.0])]
    shared = _run(tapes, accounts, [p, p, p])
    assert [(r["kind"], r["account"], r["instrument"], r["size"], r["price"], r["ts"]) for r in rows(shared)] == [
        (K.BACKSTOP, 10, 0, 10.0, 94.0, T0 + 1 * S), (K.BACKSTOP, 11, 1, 10.0, 94.0, T0 + 2 * S),
        (K.ADL_FILL, 20, 0, -10.0, 86.0, T0 + 4 * S), (K.ADL_LIQUIDATION, VAULT_ID, 0, 10.0, 86.0, T0 + 4 * S),
        (K.ADL_FILL, 21, 1, -10.0, 86.0, T0 + 4 * S), (K.ADL_LIQUIDATION, VAULT_ID, 1, 10.0, 86.0, T0 + 4 * S),
        (K.ADL_FILL, 22, 2, -10.0, 90.0, T0 + 5 * S), (K.ADL_LIQUIDATION, 12, 2, 10.0, 90.0, T0 + 5 * S)]
    l2 = rows(shared, K.ADL_LIQUIDATION)[-1]
    assert l2["amount"] == 50.0  # the deficit ADL covered: -(100 + 10 x (85 - 100))
    assert rows(shared, K.ADL_FILL)[-1]["amount"] == 50.0  # W_2's haircut
    assert shared.scalars["vault_col"] == 920.0 and shared.scalars["vault_min"] == 920.0
    assert shared.scalars["bad_debt"] == 0.0
    assert shared.collateral.tolist() == [0.0, 0.0, 0.0, 240.0, 240.0, 200.0]  # W_0: 100 + 10 x 14
    assert shared.by_instrument["vault_group"].tolist() == [0, 0, 0]

    # One vault each ("none"): each vault's cash is 1040 after its takeover, its equity 1040 - 80
    # = 960 >= 940 at t=3 and t=4: no ADL. At t=5 vault 2 (equity 1000) takes L_2 over at 85 with
    # its equity -50: cash 950 >= 940, so it keeps it. Every ledger starts with 1000: the vaults'
    # cash sums to 1040 + 1040 + 950 = 3030; their equity summed was lowest after the last
    # takeover: 960 + 960 + 950 = 2870.
    apart = _run(tapes, accounts, _grouped(p, [0, 1, 2], "vault_group"))
    assert [(r["kind"], r["account"], r["instrument"], r["size"], r["price"], r["amount"]) for r in rows(apart)] == [
        (K.BACKSTOP, 10, 0, 10.0, 94.0, 40.0), (K.BACKSTOP, 11, 1, 10.0, 94.0, 40.0),
        (K.BACKSTOP, 12, 2, 10.0, 85.0, -50.0)]
    assert apart.scalars["vault_col"] == 3030.0 and apart.scalars["vault_min"] == 2870.0
    assert apart.by_instrument["vault_pos"].tolist() == [10.0, 10.0, 10.0]
    assert apart.by_instrument["vault_entry"].tolist() == [94.0, 94.0, 85.0]
    # each series row shows the equity of its instrument's vault at the last sample (t=5):
    # 1040 - 80, 1040 - 80, 950
    last = apart.series["ts"] == T0 + 5 * S
    assert apart.series["vault_equity"][last].tolist() == [960.0, 960.0, 950.0]
    assert shared.series["vault_equity"][shared.series["ts"] == T0 + 5 * S].tolist() == [920.0] * 3

    # grouping instruments 0 and 2 (vault 0) apart from 1 (vault 1): vault 0 holds 10 of 0 at 94
    # and loses 80 at t=3 (1040 - 80 = 960 >= 940); at t=5 it takes L_2 with -50: cash 990,
    # equity 990 - 80 = 910 < 940, so it deleverages its inventory in 0 (at 86, against W_0) and
    # in 2 (at 85, against W_2), while vault 1 (960) keeps its inventory in 1
    mixed = _run(tapes, accounts, [dataclasses.replace(p, vault_group=g) for g in (0, 1, 0)])
    adl = [(r["account"], r["instrument"], r["price"]) for r in rows(mixed, K.ADL_LIQUIDATION)]
    assert adl == [(VAULT_ID, 0, 86.0), (VAULT_ID, 2, 85.0)]
    assert mixed.by_instrument["vault_pos"].tolist() == [0.0, 10.0, 0.0]
    assert mixed.scalars["vault_col"] == 910.0 + 1040.0


# ------------------------------------------------------------------ Binance's shared fund


BINANCE_LIKE = VenueDesign(
    name="binance-like", margin=Margin(rates=(0.05,)), liquidation=Liquidation(fee=0.01),
    fund=Fund(shared=(SHARED_FUND_SYMBOLS,)), adl=Adl(policy="none"))


def test_binances_shared_btc_eth_bnb_fund_pays_an_eth_deficit_from_btc_fees():
    # Four instruments: BTCUSDT, ETHUSDT, SOLUSDT, BNBUSDT; fund.shared = [BTC, ETH, BNB] gives
    # BTC, ETH and BNB fund 0 and SOL (in no group) fund 1; each starts with 0; fee 1%.
    # t=1 BTC: P (long 10 at 100, margin 100) is liquidated at 94: realized -60, fee 0.01 x 940 =
    #     9.4 into fund 0.
    # t=2 SOL: R (long 1 at 100, margin 10) is liquidated at 85: realized -15, no fee, a deficit of
    #     5 that fund 1 (empty) cannot pay: bad debt 5, although fund 0 holds 9.4.
    # t=3 ETH: Q (the same as R) owes 5, which fund 0 pays from BTC's fees: 9.4 - 5 = 4.4 left.
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
    funds, vaults = BINANCE_LIKE.ledgers(symbols)
    assert (funds, vaults) == ([0, 0, 1, 0], [0, 0, 0, 0])
    plist = [BINANCE_LIKE.engine_params(ConstantDepth(), 1.0, f, v) for f, v in zip(funds, vaults)]
    accounts = Accounts([(1, 100.0, 0, 10.0, 100.0), (2, 10.0, 1, 1.0, 100.0), (3, 10.0, 2, 1.0, 100.0)])
    tapes = [([0, 1], [100.0, 94.0]), ([0, 3], [100.0, 85.0]), ([0, 2], [100.0, 85.0]), ([0], [100.0])]
    raw = _run(tapes, accounts, plist)
    (fee,) = [r for r in rows(raw, K.LIQUIDATION) if r["account"] == 1]
    assert fee["fee"] == pytest.approx(9.4, rel=1e-12) and fee["fund_after"] == pytest.approx(9.4, rel=1e-12)
    (debt,) = rows(raw, K.BAD_DEBT)
    assert (debt["account"], debt["instrument"], debt["amount"], debt["fund_after"]) == (3, 2, 5.0, 0.0)
    (pay,) = rows(raw, K.FUND_PAYMENT)
    assert (pay["account"], pay["instrument"]) == (2, 1)
    assert pay["amount"] == 5.0 and pay["fund_after"] == pytest.approx(4.4, rel=1e-12)
    # the scalars sum the funds: 4.4 + 0; the lowest sum was 0 (at the start and after R)
    assert raw.scalars["fund_final"] == pytest.approx(4.4, rel=1e-12) and raw.scalars["fund_min"] == 0.0
    assert raw.by_instrument["fund_group"].tolist() == [0, 0, 1, 0]

    # one fund for all ("all", the preset's): R's deficit is paid from BTC's fees (9.4 - 5 = 4.4),
    # and Q's 5 finds 4.4: 0.6 is bad debt
    together = _run(tapes, accounts, [BINANCE_LIKE.with_overrides({"fund": {"shared": "all"}})
                                      .engine_params(ConstantDepth(), 1.0)] * 4)
    assert [(r["account"], r["amount"]) for r in rows(together, K.FUND_PAYMENT)] == [
        (3, 5.0), (2, pytest.approx(4.4, rel=1e-12))]
    assert [r["amount"] for r in rows(together, K.BAD_DEBT)] == [pytest.approx(0.6, rel=1e-9)]


def test_the_fund_drawdown_trigger_watches_the_fund_of_the_positions_instrument():
    # Funds of 100 each, ADL instead of the book once a fund is below half its rolling peak, ADL
    # by queue at the bankruptcy price. Instrument 0: A (long 1 at 100, margin 10), B (long 1 at
    # 100, margin 75), W_0 (short 1 at 100, margin 100); instrument 1: C (long 1 at 100, margin
    # 10), W_1 (short 1 at 100, margin 100).
    # t=1 instrument 0 at 30: A (10 - 70 = -60 < MM 1.5) is sold on the book at 30; its fund pays
    #     the deficit of 60: 100 -> 40 (the liquidation's row shows the fund before it pays).
    #     B (75 - 70 = 5 >= 1.5) holds.
    # t=2 instrument 0 at 20: B (75 - 80 = -5) crosses; fund 0 is 40 < 0.5 x 100, so B is
    #     auto-deleveraged against W_0 at its bankruptcy price 100 - 75 = 25.
    # t=3 instrument 1 at 85: C (10 - 15 = -5) crosses.
    # One fund each ("none"): fund 1 is at its peak, 100: C is sold on the book at 85 and fund 1
    # pays 5 (95 left); the funds' sum was lowest at the end: 40 + 95 = 135.
    # One fund for all: it is 40, below half its peak, so C is auto-deleveraged against W_1 at
    # its bankruptcy price 100 - 10 = 90.
    p = params(adl_policy=AdlPolicy.QUEUE, adl_price=AdlPrice.BANKRUPTCY, fund_initial=100.0,
               adl_fund_drawdown=0.5, adl_fund_window_ns=3600 * S)
    accounts = Accounts([(10, 10.0, 0, 1.0, 100.0), (11, 75.0, 0, 1.0, 100.0), (12, 10.0, 1, 1.0, 100.0),
                         (20, 100.0, 0, -1.0, 100.0), (21, 100.0, 1, -1.0, 100.0)])
    tapes = [([0, 1, 2], [100.0, 30.0, 20.0]), ([0, 3], [100.0, 85.0])]
    first = [(K.LIQUIDATION, 10, 0, 30.0, 100.0), (K.FUND_PAYMENT, 10, 0, 0.0, 40.0),
             (K.ADL_FILL, 20, 0, 25.0, 40.0), (K.ADL_LIQUIDATION, 11, 0, 25.0, 40.0)]
    apart = _run(tapes, accounts, _grouped(p, [0, 1], "fund_group"))
    assert [(r["kind"], r["account"], r["instrument"], r["price"], r["fund_after"]) for r in rows(apart)] == first + [
        (K.LIQUIDATION, 12, 1, 85.0, 100.0), (K.FUND_PAYMENT, 12, 1, 0.0, 95.0)]
    assert apart.scalars["fund_final"] == 135.0 and apart.scalars["fund_min"] == 135.0
    together = _run(tapes, accounts, [p, p])
    assert [(r["kind"], r["account"], r["instrument"], r["price"], r["fund_after"]) for r in rows(together)] == first + [
        (K.ADL_FILL, 21, 1, 90.0, 40.0), (K.ADL_LIQUIDATION, 12, 1, 90.0, 40.0)]
    assert together.scalars["fund_final"] == 40.0


def test_the_presets_share_one_fund_and_one_vault():
    for name in venues.names():
        design = venues.preset(name)
        assert (design.fund.shared, design.backstop.shared) == ("all", "all"), name
    assert SHARED_FUND_SYMBOLS == ("BTCUSDT", "ETHUSDT", "BNBUSDT")


# ------------------------------------------------------------------ configuration


def test_shared_groups_number_ledgers_by_their_first_instrument():
    # groups [ETH, btc] and [XRP]: BTC (k=0) and ETH (k=2) share ledger 0, SOL (k=1, in no group)
    # and DOGE (k=4) the ledger of the rest, numbered 1 after BTC's; XRP (k=3) ledger 2
    design = VenueDesign.from_dict({"name": "d", "fund": {"shared": [["ETH", "btc"], ["XRP"]]},
                                    "backstop": {"shared": "none"}})
    funds, vaults = design.ledgers(("BTC", "SOL", "ETH", "XRP", "DOGE"))
    assert funds == [0, 1, 0, 2, 1]
    assert vaults == [0, 1, 2, 3, 4]
    assert VenueDesign(name="d").ledgers(("BTC", "ETH")) == ([0, 0], [0, 0])


@pytest.mark.parametrize("shared, message", [
    (3, r"^venue design: fund\.shared: expected \"all\", \"none\" or a list of groups of symbols, e\.g\. "
        r"\[\[\"BTCUSDT\", \"ETHUSDT\", \"BNBUSDT\"\]\] \(got int 3\)$"),
    ("some", r"^venue design: fund\.shared: expected \"all\", \"none\" or a list of groups .*\(got 'some'\)$"),
    (["BTC", "ETH"], r"^venue design: fund\.shared: group 0: expected a non-empty list of symbols"),
    ([["BTC", "ETH"], ["eth"]], r"^venue design: fund\.shared: symbol 'eth' is listed in groups 0 and 1: "
                                r"an instrument draws on one ledger"),
    ([["BTC", "BTC"]], r"^venue design: fund\.shared: symbol 'BTC' is listed twice in group 0"),
])
def test_a_bad_shared_value_is_one_line(shared, message):
    for component in ("fund", "backstop"):
        with pytest.raises(ValueError, match=message.replace("fund", component)) as err:
            VenueDesign.from_dict({"name": "d", component: {"shared": shared}})
        assert "\n" not in str(err.value)


def test_an_unknown_symbol_is_one_line_naming_the_field_and_the_scenarios_symbols(_scenario):
    design = venues.preset("binance-usdm", date="2025-10-10").with_overrides(
        {"name": "bn-shared", "fund": {"shared": [list(SHARED_FUND_SYMBOLS)]}})
    with pytest.raises(ValueError) as err:
        resolve(_scenario, design, engine="reference")
    assert str(err.value) == ("venue design 'bn-shared': fund.shared: symbol 'BNBUSDT' (group 0) is not an "
                              "instrument of the scenario (it holds BTCUSDT, ETHUSDT, SOLUSDT)")
    vault = design.with_overrides({"fund": {"shared": "all"}, "backstop": {"shared": [["btcusdt"], ["DOGE"]]}})
    with pytest.raises(ValueError, match=r"^venue design 'bn-shared': backstop\.shared: symbol 'DOGE' \(group 1\) "
                                         r"is not an instrument of the scenario \(it holds BTCUSDT, ETHUSDT, "
                                         r"SOLUSDT\)$"):
        resolve(_scenario, vault, engine="reference")


def test_ledger_indices_must_not_skip_one():
    with pytest.raises(ValueError, match=r"^params\[1\]\.vault_group: expected a ledger index in 0\.\.1 "):
        ledger_groups([params(), params(vault_group=2)])
    with pytest.raises(ValueError, match=r"^fund_group: expected a ledger index >= 0 \(got -1\)$"):
        params(fund_group=-1)
    funds, vaults = ledger_groups([params(), params(fund_group=1), params(vault_group=1)])
    assert funds.tolist() == [0, 1, 0] and vaults.tolist() == [0, 0, 1]


def test_a_run_through_the_api_starts_each_ledger_with_the_designs_balance(_scenario):
    # BTC and ETH share a fund, SOL has its own: two funds of 1.23e9 each at the start; one vault
    # per instrument, none (no backstop) — three ledgers of 0
    design = venues.preset("binance-usdm", date="2025-10-10").with_overrides(
        {"name": "bn-two-funds", "fund": {"shared": [["BTCUSDT", "ETHUSDT"]]}, "backstop": {"shared": "none"}})
    result = run(_scenario, [design], ConstantDepth(5e6), engine="reference", check_invariants=True)
    row = result.table.iloc[0]
    assert row["fund_start"] == 2 * design.fund.initial
    assert result.raw[0].by_instrument["fund_group"].tolist() == [0, 0, 1]
    assert result.raw[0].by_instrument["vault_group"].tolist() == [0, 1, 2]
    # the compiled engine's table is the same, bar the engine's name and its timing
    compiled_run = run(_scenario, [design], ConstantDepth(5e6), engine="cython", check_invariants=True)
    same = [c for c in result.table.columns if c not in TIMING_COLUMNS + ("engine",)]
    pd.testing.assert_frame_equal(compiled_run.table[same], result.table[same])


def test_a_config_names_shared_funds_and_vaults_and_validate_checks_their_symbols(tmp_path):
    # the three-coins config (tests/test_portfolio_runs.py) with BTC and ETH on one Binance fund,
    # SOL on another, and one Hyperliquid vault each; then with a symbol the scenario lacks
    shared = THREE_COINS.replace('[[venues]]\npreset = "binance-usdm"\n',
                                 '[[venues]]\npreset = "binance-usdm"\nfund = { shared = [["btcusdt", "ETHUSDT"]] }\n')
    shared = shared.replace("backstop = { vault_balance = 2e6 }", 'backstop = { vault_balance = 2e6, shared = "none" }')
    assert shared.count("shared") == 2
    path = write(tmp_path, shared, "shared.toml")
    proc = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    results = pd.read_parquet(tmp_path / "out" / "results.parquet")
    # two Binance funds of 1.23e9 each; three Hyperliquid vaults of 2e6 each
    assert results["fund_start"].tolist() == [2 * 1.23e9, 0.0]
    assert results["vault_start"].tolist() == [0.0, 3 * 2e6]
    by = pd.read_parquet(tmp_path / "out" / "results_by_instrument.parquet")
    assert by["fund"].tolist() == [0, 0, 1] + [0, 0, 0]  # binance-usdm's BTC and ETH share fund 0
    assert by["vault"].tolist() == [0, 0, 0] + [0, 1, 2]  # hyperliquid: one vault each
    lacking = write(tmp_path, shared.replace('"ETHUSDT"]]', '"BNBUSDT"]]'), "lacking.toml")
    line = one_error_line(run_cli("validate", str(lacking)), progress_first=False)
    assert "venue design 'binance-usdm': fund.shared: symbol 'BNBUSDT' (group 0) is not an instrument of the " \
           "scenario (it holds BTCUSDT, ETHUSDT, SOLUSDT)" in line, line
    twice = write(tmp_path, shared.replace('"ETHUSDT"]]', '"ETHUSDT"], ["ethusdt"]]'), "twice.toml")
    line = one_error_line(run_cli("validate", str(twice)), progress_first=False)
    assert "fund.shared: symbol 'ethusdt' is listed in groups 0 and 1" in line, line


def test_a_sweep_run_hash_is_what_it_was_unless_a_design_shares_otherwise(tmp_path):
    # "all" is the default and the only value before fund.shared and backstop.shared existed: a
    # run's hash leaves it out, so finished runs of a sweep stay finished; another value is
    # another run
    def hash_of(text: str, name: str) -> str:
        return sweep.run_hash(config.load(write(tmp_path, text, name)))

    plain = hash_of(BASE, "plain.toml")
    explicit = BASE.replace("fund = { initial = 2e5 }", 'fund = { initial = 2e5, shared = "all" }')
    explicit = explicit.replace("backstop = { vault_balance = 5e5 }", 'backstop = { vault_balance = 5e5, shared = "all" }')
    assert explicit.count('"all"') == 2
    assert hash_of(explicit, "explicit.toml") == plain
    assert hash_of(explicit.replace('initial = 2e5, shared = "all"', 'initial = 2e5, shared = "none"'),
                   "none.toml") != plain
    # the design itself does hold it
    (design, _) = backtest.build_designs(config.load(tmp_path / "plain.toml"))
    assert (design.fund.shared, design.backstop.shared) == ("all", "all")


# ------------------------------------------------------------------ random groupings


@st.composite
def grouped_cases(draw):
    """A random portfolio case (tests/test_reference_portfolio.py) whose instruments draw on
    randomly grouped funds and vaults (ledgers numbered by their first instrument)."""
    (ts, inst, price, stream), accounts, plist = draw(portfolio_cases())
    out = []
    groups = {"fund_group": [], "vault_group": []}
    for k, p in enumerate(plist):
        for field, seen in groups.items():
            seen.append(draw(st.integers(0, max(seen, default=-1) + 1)))
        out.append(dataclasses.replace(p, fund_group=groups["fund_group"][k], vault_group=groups["vault_group"][k]))
    return (ts, inst, price, stream), accounts, out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_cases())
def test_random_groupings_keep_the_invariants_and_each_ledger_to_its_instruments(case):
    (ts, inst, price, stream), accounts, plist = case
    arrays = accounts.arrays()
    raw = run_portfolio(ts, inst, price, stream, *arrays, plist)
    a_inst, a_size, a_entry = accounts.per_account()
    assert portfolio_violations(raw, arrays[0], arrays[1], a_inst, a_size, a_entry, plist[0]) == []
    # a fund's cash changes only with a row of one of its instruments (a fee, a payment, a
    # takeover, an unwind), which shows that fund's balance after it: the last such row of each
    # fund shows its final cash, and the scalar sums those in ledger order
    fund_of = raw.by_instrument["fund_group"]
    n_funds = int(fund_of.max()) + 1
    final = [plist[0].fund_initial] * n_funds
    ev = raw.events
    for j in range(len(ev["ts"])):
        final[int(fund_of[ev["instrument"][j]])] = float(ev["fund_after"][j])
    total = final[0]
    for g in range(1, n_funds):
        total += final[g]
    assert total == raw.scalars["fund_final"]
    assert raw.scalars["fund_min"] <= min(raw.scalars["fund_final"], n_funds * plist[0].fund_initial)
