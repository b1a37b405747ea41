"""riskengine.calculators for a cross margin account holding several instruments:
``cross_account_margin`` (equity, maintenance, slack) and ``portfolio_liquidation_price`` (one
instrument's liquidation price, the others held at their marks), against Binance's and
Hyperliquid's worked examples (../shared/reference/venue-mechanisms.md §6), the single-symbol
calculators and the defining equation ``equity = ratio x maintenance``."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine import calculators as calc
from riskengine.venues import _tables
from tests._cli import raised_line

# The contracts of Binance's example c.2020 [DOC S2]: BTCUSDT bracket 1 (0.4%, reference §1.1
# and E1) and the 0.65% rate its other contract (E1) and ETHUSDT (E2) use.
BTC_2020 = ([0], [0.004])
ETH_2020 = ([0], [0.0065])
HL_BTC = calc.hyperliquid_tiers([0, 150e6], [40, 20])  # reference §2.1 [DOC S20]
HL_ETH = calc.hyperliquid_tiers([0, 100e6], [25, 15])


def cents(x: float) -> float:
    return round(x, 2)


# --- Binance's own cross examples as two-position accounts ------------------------------------


def test_e1_binance_cross_short_btc_with_an_eth_long():
    # E1: WB 10.72; short 0.005 BTCUSDT @ 9,451.53 (MMR 0.4%, cum 0); the other contract has
    # TMM1 = 200 x 0.65% = 1.3 and UPNL1 = 0.47. Build it: long 1 ETHUSDT @ 199.53 marked at 200
    #   notional 1 x 200 = 200 -> MM 200 x 0.0065 = 1.3;  uPnL 1 x (200 - 199.53) = 0.47.
    # LP = (10.72 - 1.3 + 0.47 + 0.005 x 9,451.53) / (0.005 x 0.004 + 0.005)
    #    = 57.14765 / 0.00502 = 11,383.99 (Binance prints 11,383.99)
    positions = [("BTCUSDT", -0.005, 9_451.53), ("ETHUSDT", 1.0, 199.53)]
    marks = {"BTCUSDT": 9_500.0, "ETHUSDT": 200.0}
    tables = {"BTCUSDT": BTC_2020, "ETHUSDT": ETH_2020}
    lp = calc.portfolio_liquidation_price(10.72, positions, marks, tables, "BTCUSDT")
    assert cents(lp) == 11_383.99
    assert lp == pytest.approx(57.14765 / 0.00502, rel=1e-12)
    # the same account through Binance's one-symbol formula with TMM1 and UPNL1 given
    assert lp == pytest.approx(
        calc.binance_liquidation_price(10.72, (-0.005, 9_451.53), 1.3, 0.47, brackets=BTC_2020), rel=1e-12
    )


def test_e2_binance_cross_long_eth_with_a_btc_short():
    # E2: WB 10.72; long 1 ETHUSDT @ 199.53 (MMR 0.65%, cum 0); TMM1 = 0.19, UPNL1 = -0.06.
    # Build the other contract: short 0.005 BTCUSDT @ 9,488 marked at 9,500
    #   notional 0.005 x 9,500 = 47.5 -> MM 47.5 x 0.004 = 0.19;  uPnL -0.005 x (9,500 - 9,488) = -0.06.
    # LP = (10.72 - 0.19 - 0.06 - 199.53) / (0.0065 - 1) = -189.06 / -0.9935 = 190.2969...
    #    = 190.30 to the cent (Binance prints 190.29, "difference due to rounding")
    positions = {"ETHUSDT": (1.0, 199.53), "BTCUSDT": (-0.005, 9_488.0)}
    marks = {"ETHUSDT": 200.0, "BTCUSDT": 9_500.0}
    tables = {"BTCUSDT": BTC_2020, "ETHUSDT": ETH_2020}
    lp = calc.portfolio_liquidation_price(10.72, positions, marks, tables, "ETHUSDT")
    assert cents(lp) == 190.30
    assert lp == pytest.approx(-189.06 / -0.9935, rel=1e-12)
    assert lp == pytest.approx(
        calc.binance_liquidation_price(10.72, (1, 199.53), 0.19, -0.06, brackets=ETH_2020), rel=1e-12
    )


def test_e1_account_margin_at_the_marks_and_at_the_liquidation_price():
    # E1's account at BTC 9,500 / ETH 200:
    #   equity = 10.72 + (-0.005)(9,500 - 9,451.53) + 1 x 0.47 = 10.72 - 0.24235 + 0.47 = 10.94765
    #   MM     = 0.005 x 9,500 x 0.004 + 1.3 = 0.19 + 1.3 = 1.49;  slack = 9.45765
    positions = [("BTCUSDT", -0.005, 9_451.53), ("ETHUSDT", 1.0, 199.53)]
    tables = {"BTCUSDT": BTC_2020, "ETHUSDT": ETH_2020}
    acct = calc.cross_account_margin(10.72, positions, {"BTCUSDT": 9_500.0, "ETHUSDT": 200.0}, tables)
    assert acct.equity == pytest.approx(10.94765, rel=1e-12)
    assert acct.maintenance == pytest.approx(1.49, rel=1e-12)
    assert acct.slack == acct.equity - acct.maintenance
    assert acct.slack == pytest.approx(9.45765, rel=1e-12)
    # at BTC = LP the slack is zero (equity = MM = 0.005 x LP x 0.004 + 1.3)
    lp = calc.portfolio_liquidation_price(10.72, positions, {"ETHUSDT": 200.0}, tables, "BTCUSDT")
    at_lp = calc.cross_account_margin(10.72, positions, {"BTCUSDT": lp, "ETHUSDT": 200.0}, tables)
    assert at_lp.maintenance == pytest.approx(0.005 * lp * 0.004 + 1.3, rel=1e-12)
    assert abs(at_lp.slack) <= 1e-12 * 57.14765


# --- Hyperliquid E11 with a second position flat at its mark -----------------------------------


def test_e11_hyperliquid_cross_long_alone():
    # E11: account value 20,000, only position 1 BTC long @ mark 100,000 (entry = mark: wallet
    # 20,000, uPnL 0); l = 1/80 = 0.0125 -> liq = 100,000 - (20,000 - 1,250) / 0.9875 = 81,012.66
    lp = calc.portfolio_liquidation_price(20_000, [("BTC", 1.0, 100_000.0)], {"BTC": 100_000.0}, {"BTC": HL_BTC}, "BTC")
    assert cents(lp) == 81_012.66
    assert lp == pytest.approx(100_000 - 18_750 / 0.9875, rel=1e-12)


def test_e11_a_flat_second_position_moves_the_price_by_its_maintenance_margin():
    # Add 10 ETH long @ 4,000 marked at 4,000: uPnL 0, MM = 40,000 x 2% (25x tier) = 800.
    # Cross: margin_available = 20,000 - 800 - 1,250 = 17,950 -> liq = 100,000 - 17,950 / 0.9875
    #   = 81,822.78; i.e. the BTC price rises by 800 / (1 x (1 - 0.0125)) = 810.13: each dollar the
    #   price falls costs 1 of equity and saves 0.0125 of BTC's MM, so the extra 800 of MM is
    #   absorbed by exactly 800 / 0.9875 of price.
    marks = {"BTC": 100_000.0, "ETH": 4_000.0}
    tables = {"BTC": HL_BTC, "ETH": HL_ETH}
    alone = calc.portfolio_liquidation_price(20_000, [("BTC", 1.0, 100_000.0)], marks, tables, "BTC")
    pair = [("BTC", 1.0, 100_000.0), ("ETH", 10.0, 4_000.0)]
    both = calc.portfolio_liquidation_price(20_000, pair, marks, tables, "BTC")
    assert calc.maintenance_margin(40_000, HL_ETH) == pytest.approx(800.0, rel=1e-15)
    assert both - alone == pytest.approx(800 / 0.9875, rel=1e-9)
    assert cents(both) == 81_822.78
    # Hyperliquid's documented formula [DOC S21] with the ETH MM as the other positions' MM
    documented = calc.hyperliquid_liquidation_price(20_000, 1, 100_000, HL_BTC, other_maintenance=800)
    assert both == pytest.approx(documented, rel=1e-12)
    # the slack at the marks shrinks by exactly that MM
    one = calc.cross_account_margin(20_000, [("BTC", 1.0, 100_000.0)], marks, tables)
    two = calc.cross_account_margin(20_000, pair, marks, tables)
    assert (one.equity, one.maintenance, one.slack) == (20_000.0, 1_250.0, 18_750.0)
    assert (two.equity, two.maintenance, two.slack) == (20_000.0, 2_050.0, 17_950.0)


def test_e12_backstop_ratio_for_a_cross_account():
    # Hyperliquid's backstop level (equity < 2/3 MM, reference §2.4) for E11's account:
    # P - 80,000 = (2/3)(0.0125 P) -> P = 80,000 / (1 - 0.0125 x 2/3) = 80,672.27
    lp = calc.portfolio_liquidation_price(
        20_000, {"BTC": (1.0, 100_000.0)}, {"BTC": 100_000.0}, {"BTC": HL_BTC}, "BTC", ratio=2 / 3
    )
    assert lp == pytest.approx(80_000 / (1 - 0.0125 * 2 / 3), rel=1e-12)
    assert cents(lp) == 80_672.27


def test_the_solved_instruments_own_mark_is_not_needed_nor_used():
    positions = [("BTCUSDT", -0.005, 9_451.53), ("ETHUSDT", 1.0, 199.53)]
    tables = {"BTCUSDT": BTC_2020, "ETHUSDT": ETH_2020}
    without = calc.portfolio_liquidation_price(10.72, positions, {"ETHUSDT": 200.0}, tables, "BTCUSDT")
    marks = {"ETHUSDT": 200.0, "BTCUSDT": 1.0}
    with_mark = calc.portfolio_liquidation_price(10.72, positions, marks, tables, "BTCUSDT")
    assert without == with_mark


def test_tables_as_stored_margin_tables_and_their_form():
    # A stored MarginTable (and a design's Margin) is a tier table with its own form: BitMEX's
    # whole-position steps give a different price from the same tiers read in the deduction form.
    table, _ = _tables.margin_table("bitmex", "XBTUSDT")
    assert table.form == "whole-position" and len(table.floors) > 1
    size = 1.5 * table.floors[1] / 100_000  # a notional in tier 2 at 100,000
    args = (0.2 * size * 100_000, [("XBTUSDT", size, 100_000.0)], {}, {"XBTUSDT": table}, "XBTUSDT")
    own = calc.portfolio_liquidation_price(*args)
    assert own == calc.liquidation_price(args[0], size, 100_000.0, (table.floors, table.rates), form="whole-position")
    assert own != calc.portfolio_liquidation_price(*args, form="deduction")
    design_margin = _tables.preset_margin("bitmex", "XBTUSDT")  # a design's Margin of that table
    assert calc.portfolio_liquidation_price(*args[:3], {"XBTUSDT": design_margin}, "XBTUSDT") == own
    # formulas written for the deduction form refuse it rather than misread it
    assert raised_line(calc.binance_liquidation_price, 1e6, (size, 1e5), brackets=table).startswith(
        "brackets: this formula uses the deduction form")
    assert raised_line(calc.hyperliquid_liquidation_price, 1e6, size, 1e5, design_margin).startswith(
        "tiers: this formula uses the deduction form")


# --- agreement and the defining equation on random accounts ------------------------------------

DEDUCTION_VENUES = ("binance-usdm", "hyperliquid", "bybit")
ALL_VENUES = DEDUCTION_VENUES + ("bitmex", "okx", "dydx-v4", "drift")


def stored_tables(venue: str) -> dict[str, list[_tables.MarginTable]]:
    return _tables._load(venue)


@st.composite
def accounts(draw, venues=DEDUCTION_VENUES):
    """A cross account of 1-5 positions in distinct symbols of one venue, each symbol with one of
    its shipped dated tables, a mark within +-40% of its entry and a wallet from a leverage."""
    venue = draw(st.sampled_from(venues))
    stored = stored_tables(venue)
    symbols = draw(st.lists(st.sampled_from(sorted(stored)), min_size=1, max_size=5, unique=True))
    positions, marks, tables, notional = [], {}, {}, 0.0
    for sym in symbols:
        tables[sym] = draw(st.sampled_from(stored[sym]))
        entry = draw(st.floats(0.01, 200_000.0))
        value = draw(st.floats(10.0, 5e8))  # entry notional, up to the deep tiers
        side = draw(st.sampled_from([-1.0, 1.0]))
        positions.append((sym, side * value / entry, entry))
        marks[sym] = entry * draw(st.floats(0.6, 1.4))
        notional += value
    wallet = notional / draw(st.floats(1.05, 100.0))
    instrument = draw(st.sampled_from(symbols))
    return wallet, positions, marks, tables, instrument


def others(positions, marks, tables, instrument, form=None):
    """Other maintenance and other uPnL summed by hand, in the positions' order."""
    omm = oup = 0.0
    for sym, size, entry in positions:
        if sym != instrument:
            omm += calc.maintenance_margin(abs(size) * marks[sym], tables[sym], form=form)
            oup += size * (marks[sym] - entry)
    return omm, oup


@settings(max_examples=300, deadline=None)
@given(account=accounts(venues=("binance-usdm",)))
def test_agrees_with_binance_formula_with_tmm1_and_upnl1(account):
    wallet, positions, marks, tables, instrument = account
    size, entry = next((q, e) for s, q, e in positions if s == instrument)
    omm, oup = others(positions, marks, tables, instrument)
    ours = calc.portfolio_liquidation_price(wallet, positions, marks, tables, instrument)
    binance = calc.binance_liquidation_price(wallet, (size, entry), omm, oup, brackets=tables[instrument])
    if math.isnan(binance):  # a short that every positive price liquidates: the kernel's root is <= 0
        assert ours <= 0.0
    elif math.isinf(binance):
        assert ours == binance
    else:
        assert ours == pytest.approx(binance, rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(account=accounts(venues=ALL_VENUES), ratio=st.sampled_from([1.0, 2 / 3, 0.5]))
def test_is_the_engines_kernel_with_the_others_summed(account, ratio):
    # bit for bit the single-position kernel (liquidation_price) given the others' MM and uPnL,
    # in each table's own form (deduction or whole-position)
    wallet, positions, marks, tables, instrument = account
    size, entry = next((q, e) for s, q, e in positions if s == instrument)
    omm, oup = others(positions, marks, tables, instrument)
    table = tables[instrument]
    expected = calc.liquidation_price(wallet, size, entry, table, other_maintenance=omm, other_upnl=oup,
                                      ratio=ratio, form=table.form)
    assert calc.portfolio_liquidation_price(wallet, positions, marks, tables, instrument, ratio=ratio) == expected


@settings(max_examples=300, deadline=None)
@given(account=accounts(), ratio=st.floats(0.5, 1.0))
def test_equity_equals_ratio_times_maintenance_at_the_price(account, ratio):
    wallet, positions, marks, tables, instrument = account
    lp = calc.portfolio_liquidation_price(wallet, positions, marks, tables, instrument, ratio=ratio)
    if not (math.isfinite(lp) and lp > 0.0):
        return  # a long nothing liquidates (-inf), or a short every positive price does (<= 0)
    at = calc.cross_account_margin(wallet, positions, {**marks, instrument: lp}, tables)
    # relative to the largest terms of the sums: the wallet, each position's entry and mark notional
    scale = abs(wallet) + sum(abs(q) * (e + (lp if s == instrument else marks[s])) for s, q, e in positions)
    assert abs(at.equity - ratio * at.maintenance) <= 1e-9 * scale


# --- bad input: one line each ------------------------------------------------------------------

ACCOUNT = (10.72, [("BTCUSDT", -0.005, 9_451.53), ("ETHUSDT", 1.0, 199.53)])
MARKS = {"BTCUSDT": 9_500.0, "ETHUSDT": 200.0}
TABLES = {"BTCUSDT": BTC_2020, "ETHUSDT": ETH_2020}


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((*ACCOUNT, {"BTCUSDT": 9_500.0}, TABLES, "BTCUSDT"), {}, "marks: no mark price for 'ETHUSDT' (positions[1])"),
        ((*ACCOUNT, MARKS, {"ETHUSDT": ETH_2020}, "BTCUSDT"), {},
         "tables: no margin table for 'BTCUSDT' (positions[0])"),
        ((ACCOUNT[0], [*ACCOUNT[1], ("BTCUSDT", 1.0, 9_000.0)], MARKS, TABLES, "ETHUSDT"), {},
         "positions[2]: 'BTCUSDT' is held twice (positions[0] and positions[2]); "
         "a cross account holds one position per instrument"),
        ((*ACCOUNT, MARKS, TABLES, "SOLUSDT"), {}, "instrument: 'SOLUSDT' is not held (positions: BTCUSDT, ETHUSDT)"),
        ((ACCOUNT[0], [("BTCUSDT", 0.0, 0.0), ("ETHUSDT", 1.0, 199.53)], MARKS, TABLES, "BTCUSDT"), {},
         "instrument: the position in 'BTCUSDT' is flat (size 0); nothing to liquidate"),
        ((math.nan, ACCOUNT[1], MARKS, TABLES, "BTCUSDT"), {}, "wallet: expected a finite number (got nan)"),
        ((ACCOUNT[0], [("BTCUSDT", math.inf, 9_451.53)], MARKS, TABLES, "BTCUSDT"), {},
         "positions[0] size: expected a finite number (got inf)"),
        ((ACCOUNT[0], {"BTCUSDT": (-0.005, math.nan)}, MARKS, TABLES, "BTCUSDT"), {},
         "positions['BTCUSDT'] entry: expected a finite number (got nan)"),
        ((*ACCOUNT, {**MARKS, "ETHUSDT": math.inf}, TABLES, "BTCUSDT"), {},
         "marks['ETHUSDT']: expected a finite number (got inf)"),
        ((*ACCOUNT, MARKS, TABLES, "BTCUSDT"), {"ratio": 1.5},
         "ratio: expected a share of maintenance margin in (0, 1] (got 1.5)"),
        ((ACCOUNT[0], [("BTCUSDT", -0.005, 0.0)], MARKS, TABLES, "BTCUSDT"), {},
         "positions[0] entry: expected a finite number > 0 (got 0.0)"),
        ((ACCOUNT[0], [("BTCUSDT", -0.005)], MARKS, TABLES, "BTCUSDT"), {},
         "positions[0]: expected a row (symbol, size, entry) (got ('BTCUSDT', -0.005))"),
        ((*ACCOUNT, MARKS, {**TABLES, "ETHUSDT": ([0, 10], [0.01])}, "BTCUSDT"), {}, "tables['ETHUSDT']"),
    ],
)
def test_bad_input_is_one_line(args, kwargs, expected):
    assert raised_line(calc.portfolio_liquidation_price, *args, **kwargs).startswith(expected)


def test_bad_input_of_the_account_helper_is_one_line():
    assert raised_line(calc.cross_account_margin, *ACCOUNT, {"ETHUSDT": 200.0}, TABLES) == (
        "marks: no mark price for 'BTCUSDT' (positions[0])"
    )
    assert raised_line(calc.cross_account_margin, *ACCOUNT, MARKS, TABLES, form="steps").startswith("form:")
    assert raised_line(calc.cross_account_margin, ACCOUNT[0], "BTCUSDT", MARKS, TABLES).startswith("positions:")
