"""Both engines on cross accounts with several positions (issue 12, step 2; the reference
package docstring, "Portfolios, step 2"): every hand-worked scenario runs on the reference and on
the compiled engine (the ``engine`` fixture); the property test on the reference.

A cross margin account's equity and maintenance margin are its sums over its positions at their
marks; a crossing account is liquidated one position per liquidation (``cross_order``); the vault
takes all of it; the partial-liquidation cooldown is the user's; ADL and socialized losses use the
account's figures. Hand-worked scenarios carry their arithmetic in comments: maintenance margin 5%
of notional unless stated, mark = last price, infinite depth (an order fills at the tape price),
no fee, no ADL unless stated. The property test draws random portfolios whose users put their
positions in one cross account or keep them isolated, and checks the invariants, isolation and
determinism.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from riskengine.engine import portfolio_engine
from riskengine.runlog import RawRun
from riskengine.codes import (
    FUND_ID, MARKET_ID, VAULT_ID, AdlPolicy, AdlRanking, CrossOrder, EventKind, Status,
)
from riskengine.invariants import portfolio_violations
from riskengine.params import EngineParams
from riskengine.runlog import EVENT_COLUMNS
from riskengine.venue import VenueDesign

from test_reference_portfolio import T0, merge, portfolio_cases

S = 1_000_000_000
K = EventKind

#: a margin account: (user, collateral, [(instrument, size, entry), ...])
Margin = tuple[int, float, list[tuple[int, float, float]]]


#: the engine the hand-worked scenarios run on (set by the ``engine`` fixture)
ENGINE = {"name": "reference"}


def pytest_generate_tests(metafunc):
    # every hand-worked test on both engines; the hypothesis test (random cases) on the reference
    if "engine" in metafunc.fixturenames and not hasattr(metafunc.function, "hypothesis"):
        metafunc.parametrize("engine", ["reference", "cython"], indirect=True)


@pytest.fixture(autouse=True)
def engine(request):
    ENGINE["name"] = getattr(request, "param", "reference")
    yield ENGINE["name"]
    ENGINE["name"] = "reference"


def run_portfolio(*args) -> RawRun:
    """The ``run_portfolio`` of the engine under test, as a RawRun."""
    out = portfolio_engine(ENGINE["name"])(*args)
    return out if isinstance(out, RawRun) else RawRun(**out)


def params(**kw) -> EngineParams:
    """A plain design: maintenance margin 5% of notional, mark = last, no fee, no ADL."""
    base = dict(mm_floors=[0.0], mm_rates=[0.05], adl_policy=AdlPolicy.NONE, series_interval_ns=S)
    return EngineParams(**{**base, **kw})


def csr(accounts: list[Margin]):
    """The engine's arrays: owner, collateral, start, and the positions' instrument, size, entry."""
    owner = np.array([a[0] for a in accounts], dtype=np.int64)
    collateral = np.array([a[1] for a in accounts], dtype=np.float64)
    start = np.concatenate([[0], np.cumsum([len(a[2]) for a in accounts])]).astype(np.int64)
    held = [p for a in accounts for p in a[2]]
    instrument = np.array([p[0] for p in held], dtype=np.int32)
    size = np.array([p[1] for p in held], dtype=np.float64)
    entry = np.array([p[2] for p in held], dtype=np.float64)
    return owner, collateral, start, instrument, size, entry


def run(tapes, accounts: list[Margin], p: EngineParams, n_inst: int | None = None):
    """Run the engine under test (the same design for every instrument) and check the invariants."""
    ts, inst, price = merge(tapes)
    plist = [p] * (n_inst or len(tapes))
    owner, collateral, start, instrument, size, entry = csr(accounts)
    raw = run_portfolio(ts, inst, price, np.full(len(ts), np.nan), owner, collateral, start, instrument,
                        size, entry, plist)
    assert portfolio_violations(raw, owner, collateral, instrument, size, entry, p, start=start) == []
    return raw


def rows(raw, kind=None) -> list[dict]:
    ev = raw.events
    out = [{name: ev[name][j].item() for name, _, _ in EVENT_COLUMNS} for j in range(len(ev["ts"]))]
    return [r for r in out if kind is None or r["kind"] == kind]


def brief(r: dict) -> tuple:
    """An event's kind, user account, instrument, size, price and amount."""
    return r["kind"], r["account"], r["instrument"], r["size"], r["price"], r["amount"]


# ------------------------------------------------------------------ the account's figures


def test_the_other_positions_loss_liquidates_a_healthy_position_of_a_cross_account():
    # user 1, one cross account: wallet 30, long 1 @ 100 in instrument 0 and long 1 @ 100 in 1.
    # user 2, the same positions isolated: margin 10 behind the one in 0, 20 behind the one in 1.
    # Instrument 1 falls to 78 at t=1 (instrument 0 stays at 100):
    #   cross:      E = 30 + 0 + 1 x (78 - 100) = 8 < MM = 0.05 x 100 + 0.05 x 78 = 8.9: it crosses;
    #               the largest notional (100 in instrument 0 > 78) is closed at 100, realized 0;
    #               then E = 30 - 22 = 8 >= MM = 3.9: it keeps its position in 1.
    #   isolated 0: E = 10 >= MM 5: never liquidated (its instrument did not move);
    #   isolated 1: E = 20 - 22 = -2 < 3.9: closed at 78, realized -22; the fund pays 2 (100 -> 98).
    accounts = [(1, 30.0, [(0, 1.0, 100.0), (1, 1.0, 100.0)]),
                (2, 10.0, [(0, 1.0, 100.0)]), (2, 20.0, [(1, 1.0, 100.0)])]
    raw = run([([0, 2], [100.0, 100.0]), ([0, 1], [100.0, 78.0])], accounts, params(fund_initial=100.0))
    cross, isolated, pay = rows(raw)
    assert brief(cross) == (K.LIQUIDATION, 1, 0, 1.0, 100.0, 0.0) and cross["equity_after"] == 8.0
    assert brief(isolated) == (K.LIQUIDATION, 2, 1, 1.0, 78.0, -22.0)
    assert brief(pay) == (K.FUND_PAYMENT, 2, 1, 0.0, 0.0, 2.0) and pay["fund_after"] == 98.0
    assert raw.positions_size.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert raw.status.tolist() == [Status.ACTIVE, Status.ACTIVE, Status.CLOSED]
    assert raw.collateral.tolist() == [30.0, 10.0, 0.0]


def test_a_hedged_account_survives_the_crash_that_liquidates_the_unhedged_one():
    # instruments 0 and 1 both fall from 100 to 80 at t=1 (0 first: equal times in instrument
    # order). User 1: wallet 12, short 1 @ 100 in 0 and long 1 @ 100 in 1 (E = 12 >= MM 10 at
    # the start). User 2: wallet 10, long 1 @ 100 in 1 only.
    #   after 0 falls: user 1's E = 12 + 20 + 0 = 32 >= MM = 4 + 5 = 9;
    #   after 1 falls: user 1's E = 12 + 20 - 20 = 12 >= MM = 4 + 4 = 8: hedged, it survives;
    #                  user 2's E = 10 - 20 = -10 < MM 4: closed at 80, realized -20, the fund
    #                  pays the deficit of 10 (50 -> 40).
    accounts = [(1, 12.0, [(0, -1.0, 100.0), (1, 1.0, 100.0)]), (2, 10.0, [(1, 1.0, 100.0)])]
    raw = run([([0, 1], [100.0, 80.0]), ([0, 1], [100.0, 80.0])], accounts, params(fund_initial=50.0))
    liq, pay = rows(raw)
    assert brief(liq) == (K.LIQUIDATION, 2, 1, 1.0, 80.0, -20.0) and liq["equity_after"] == -10.0
    assert brief(pay) == (K.FUND_PAYMENT, 2, 1, 0.0, 0.0, 10.0) and pay["fund_after"] == 40.0
    assert raw.positions_size.tolist() == [-1.0, 1.0, 0.0]
    assert raw.status.tolist() == [Status.ACTIVE, Status.CLOSED]
    assert raw.collateral.tolist() == [12.0, 0.0]


def test_a_position_in_an_instrument_that_has_not_ticked_keeps_the_account_out_of_the_scan():
    # wallet 1, long 1 @ 100 in 0 and long 1 @ 100 in 1; instrument 0 falls to 50 at t=1, and
    # instrument 1 ticks only at t=2. Until then the account is not scanned (E = 1 - 50 = -49
    # would cross). At t=2 (1 at 100): E = -49 < MM = 2.5 + 5:
    #   round 0: the larger notional (1 at 100) is closed at 100 (realized 0); the account's
    #            equity after it is -49 (the rest of the account: wallet 1, instrument 0's -50):
    #            the fund pays that deficit into the wallet (100 -> 51; wallet 50, E = 0);
    #   round 1: E = 0 < MM 2.5: instrument 0 is closed at 50 (realized -50, wallet 0).
    accounts = [(0, 1.0, [(0, 1.0, 100.0), (1, 1.0, 100.0)])]
    raw = run([([0, 1], [100.0, 50.0]), ([2], [100.0])], accounts, params(fund_initial=100.0))
    first, pay, second = rows(raw)
    assert (first["ts"], first["round"], second["round"]) == (T0 + 2 * S, 0, 1)
    assert brief(first) == (K.LIQUIDATION, 0, 1, 1.0, 100.0, 0.0) and first["equity_after"] == -49.0
    assert brief(pay) == (K.FUND_PAYMENT, 0, 1, 0.0, 0.0, 49.0) and pay["fund_after"] == 51.0
    assert pay["equity_after"] == 0.0
    assert brief(second) == (K.LIQUIDATION, 0, 0, 1.0, 50.0, -50.0) and second["equity_after"] == 0.0
    assert raw.status.tolist() == [Status.CLOSED] and raw.collateral.tolist() == [0.0]


# ------------------------------------------------------------------ which position


@pytest.mark.parametrize("order", ["notional", "loss"])
def test_cross_order_chooses_the_largest_notional_or_the_largest_loss(order):
    # wallet 52, long 2 @ 100 in instrument 0 and long 1 @ 100 in 1; 1 falls to 60 at t=1:
    #   E = 52 + 0 - 40 = 12 < MM = 0.05 x 200 + 0.05 x 60 = 13.
    #   notional: 200 > 60 -> close the 2 in instrument 0 at 100 (realized 0); E = 12 >= MM 3.
    #   loss:     -40 < 0   -> close the 1 in instrument 1 at 60 (realized -40, wallet 12);
    #             E = 12 >= MM 10.
    code = VenueDesign(name="x", liquidation={"cross_order": order}).engine_params().cross_order
    assert code == {"notional": CrossOrder.NOTIONAL, "loss": CrossOrder.LOSS}[order]
    p = params(cross_order=code)
    accounts = [(0, 52.0, [(0, 2.0, 100.0), (1, 1.0, 100.0)])]
    raw = run([([0, 2], [100.0, 100.0]), ([0, 1], [100.0, 60.0])], accounts, p)
    (liq,) = rows(raw)
    if order == "notional":
        assert brief(liq) == (K.LIQUIDATION, 0, 0, 2.0, 100.0, 0.0)
        assert raw.positions_size.tolist() == [0.0, 1.0] and raw.collateral.tolist() == [52.0]
    else:
        assert brief(liq) == (K.LIQUIDATION, 0, 1, 1.0, 60.0, -40.0)
        assert raw.positions_size.tolist() == [2.0, 0.0] and raw.collateral.tolist() == [12.0]
    assert liq["equity_after"] == 12.0
    assert raw.status.tolist() == [Status.ACTIVE]


def test_equal_notionals_close_the_first_position():
    # wallet 10.5, long 1 @ 100 in 0 and short 1 @ 100 in 1 (E = 10.5 >= MM 10 at the start).
    # t=1: 0 rises to 110: E = 10.5 + 10 = 20.5 >= MM 10.5. t=2: 1 rises to 110:
    # E = 10.5 + 10 - 10 = 10.5 < MM = 5.5 + 5.5 = 11; the notionals are equal (110): the first
    # position (instrument 0) is closed at 110 (realized +10, wallet 20.5); E = 10.5 >= MM 5.5.
    accounts = [(0, 10.5, [(0, 1.0, 100.0), (1, -1.0, 100.0)])]
    raw = run([([0, 1], [100.0, 110.0]), ([0, 2], [100.0, 110.0])], accounts, params())
    (liq,) = rows(raw)
    assert brief(liq) == (K.LIQUIDATION, 0, 0, 1.0, 110.0, 10.0) and liq["equity_after"] == 10.5
    assert raw.positions_size.tolist() == [0.0, -1.0] and raw.collateral.tolist() == [20.5]


# ------------------------------------------------------------------ the vault takes it all


def test_the_vault_takes_all_positions_and_the_wallet_below_two_thirds_of_mm():
    # Hyperliquid's backstop [DOC S21]: equity < 2/3 MM -> the vault takes all cross positions and
    # the cross margin. Wallet 20, long 1 @ 100 in instrument 0, short 2 @ 50 in instrument 1;
    # instrument 0 falls to 85 at t=1:
    #   E = 20 - 15 + 0 = 5;  MM = 0.05 x 85 + 0.05 x 100 = 9.25;  2/3 x 9.25 = 6.17 > 5.
    # The vault takes +1 of 0 at 85 and -2 of 1 at 50 and the equity 5 (cash 1000 -> 1005); one
    # BACKSTOP event per position, in position order, the equity on the first.
    p = params(backstop_ratio=2.0 / 3.0, vault_initial=1_000.0)
    accounts = [(3, 20.0, [(0, 1.0, 100.0), (1, -2.0, 50.0)]), (4, 100.0, [])]
    raw = run([([0, 1], [100.0, 85.0]), ([0], [50.0])], accounts, p)
    first, second = rows(raw)
    assert brief(first) == (K.BACKSTOP, 3, 0, 1.0, 85.0, 5.0) and first["counterparty"] == VAULT_ID
    assert brief(second) == (K.BACKSTOP, 3, 1, -2.0, 50.0, 0.0) and second["counterparty"] == VAULT_ID
    assert first["equity_after"] == second["equity_after"] == 0.0
    by = raw.by_instrument
    assert by["vault_pos"].tolist() == [1.0, -2.0] and by["vault_entry"].tolist() == [85.0, 50.0]
    assert raw.scalars["vault_col"] == 1_005.0
    assert raw.positions_size.tolist() == [0.0, 0.0]
    assert raw.collateral.tolist() == [0.0, 100.0]  # user 4's wallet without positions: untouched
    assert raw.status.tolist() == [Status.CLOSED, Status.FLAT]
    assert by["liquidations"].tolist() == [1, 1]


@pytest.mark.parametrize("fund", [0.0, 10.0])
def test_the_vault_takes_the_whole_account_when_the_book_would_leave_a_deficit_the_fund_cannot_pay(fund):
    # Wallet 80, long 10 @ 100 in instrument 0 (a thin book: 100 of notional per 1%) and long 1
    # @ 100 in instrument 1 (infinite depth). Instrument 0 falls to 96 at t=1:
    #   E = 80 - 40 = 40 < MM = 48 + 5 = 53, but >= 2/3 MM = 35.33: a market order on the larger
    #   notional (960 in instrument 0). Walking the book: 960 of notional moves the price
    #   960 / 100 x 1% = 9.6%, the average fill is 4.8% below 96: 91.392; the account's equity
    #   after it would be 80 + 10 x (91.392 - 100) + 0 = -6.08.
    #   fund 0:  the deficit 6.08 is more than the fund holds: the vault takes the whole account
    #            at the marks (10 of 0 at 96, 1 of 1 at 100) and its equity 40.
    #   fund 10: the order fills (realized -86.08) and the fund pays 6.08 into the wallet; then
    #            E = 0 < 2/3 x MM 5: the next round's liquidation hands the vault the position in
    #            1 at 100 with the equity 0.
    p0 = params(backstop_ratio=2.0 / 3.0, vault_initial=1_000.0, fund_initial=fund, depth_per_pct=100.0)
    p1 = dataclasses.replace(p0, depth_per_pct=float("inf"))
    ts, inst, price = merge([([0, 1], [100.0, 96.0]), ([0], [100.0])])
    owner, collateral, start, instrument, size, entry = csr([(0, 80.0, [(0, 10.0, 100.0), (1, 1.0, 100.0)])])
    raw = run_portfolio(ts, inst, price, np.full(len(ts), np.nan), owner, collateral, start, instrument, size,
                        entry, [p0, p1])
    assert portfolio_violations(raw, owner, collateral, instrument, size, entry, p0, start=start) == []
    if fund == 0.0:
        first, second = rows(raw)
        assert brief(first) == (K.BACKSTOP, 0, 0, 10.0, 96.0, 40.0)
        assert brief(second) == (K.BACKSTOP, 0, 1, 1.0, 100.0, 0.0)
        assert raw.scalars["vault_col"] == 1_040.0 and raw.by_instrument["vault_pos"].tolist() == [10.0, 1.0]
        assert raw.collateral.tolist() == [0.0] and raw.status.tolist() == [Status.CLOSED]
    else:
        liq, pay, rest = rows(raw)
        assert (liq["kind"], liq["instrument"], liq["size"]) == (K.LIQUIDATION, 0, 10.0)
        assert liq["price"] == pytest.approx(91.392, rel=1e-12) and liq["amount"] == pytest.approx(-86.08, rel=1e-12)
        assert pay["kind"] == K.FUND_PAYMENT and pay["amount"] == pytest.approx(6.08, rel=1e-9)
        assert pay["equity_after"] == 0.0
        assert (brief(rest), rest["round"]) == ((K.BACKSTOP, 0, 1, 1.0, 100.0, 0.0), 1)
        assert raw.positions_size.tolist() == [0.0, 0.0] and raw.status.tolist() == [Status.CLOSED]


def test_binance_e1_and_e2_accounts_are_liquidated_at_their_printed_prices():
    # Binance's cross examples (reference §6, [DOC S2]; tests/test_calculators_portfolio.py):
    # instrument 0 BTCUSDT (MMR 0.4%), instrument 1 ETHUSDT (MMR 0.65%), cum 0.
    # E1: wallet 10.72, short 0.005 BTC @ 9,451.53, long 1 ETH @ 199.53 marked at 200:
    #   LP = (10.72 - 1.3 + 0.47 + 0.005 x 9,451.53) / (0.005 x 0.004 + 0.005) = 11,383.99(4).
    #   BTC at 11,383.99: E = 10.72 + 0.47 - 0.005 x 1,932.46 = 1.5277 >= MM = 0.22768 + 1.3
    #   = 1.52768; at 11,384.00: E = 1.52765 < MM = 1.52768: liquidated. With cross_order loss the
    #   BTC short (PnL -9.66 against ETH's +0.47) is the position closed.
    # E2: wallet 10.72, long 1 ETH @ 199.53, short 0.005 BTC @ 9,488 marked at 9,500:
    #   LP = (10.72 - 0.19 - 0.06 - 199.53) / (0.0065 - 1) = 190.2969 (Binance prints 190.29).
    #   ETH at 190.30: E = 10.66 - 9.23 = 1.43 >= MM = 0.19 + 1.23695 = 1.42695; at 190.29:
    #   E = 1.42 < MM = 1.426885: liquidated; the ETH long has the larger notional (190 > 47.5).
    btc, eth = dict(mm_rates=[0.004]), dict(mm_rates=[0.0065])
    for cross_order, tapes, positions, closed, price in [
        (CrossOrder.LOSS, [([0, 2, 3], [9_500.0, 11_383.99, 11_384.00]), ([1], [200.0])],
         [(0, -0.005, 9_451.53), (1, 1.0, 199.53)], (0, -0.005), 11_384.00),
        (CrossOrder.NOTIONAL, [([1], [9_500.0]), ([0, 2, 3], [200.0, 190.30, 190.29])],
         [(0, -0.005, 9_488.0), (1, 1.0, 199.53)], (1, 1.0), 190.29),
    ]:
        ts, inst, px = merge(tapes)
        plist = [params(cross_order=cross_order, **btc), params(cross_order=cross_order, **eth)]
        owner, collateral, start, instrument, size, entry = csr([(0, 10.72, positions)])
        raw = run_portfolio(ts, inst, px, np.full(len(ts), np.nan), owner, collateral, start, instrument,
                            size, entry, plist)
        assert portfolio_violations(raw, owner, collateral, instrument, size, entry, plist[0], start=start) == []
        (liq,) = rows(raw)  # nothing before the price passes LP, one position closed after
        assert (liq["kind"], liq["ts"], liq["instrument"], liq["size"], liq["price"]) == (
            K.LIQUIDATION, T0 + 3 * S, *closed, price)


# ------------------------------------------------------------------ the cooldown is the user's


def hl_partial(cooldown_s: float = 30.0, **kw) -> EngineParams:
    """Hyperliquid-like partial orders [DOC S21, S35]: 20% of a position above 100 of notional,
    then the user's 30 s cooldown."""
    return params(partial_fraction=0.2, partial_threshold=100.0, partial_cooldown_ns=int(cooldown_s * S), **kw)


@pytest.mark.parametrize("cooldown_s", [30.0, 0.0])
def test_a_partial_order_of_one_position_makes_the_next_order_on_another_whole(cooldown_s):
    # wallet 190, long 10 @ 100 in instrument 0 and long 10 @ 100 in 1. Instrument 0 falls to 90
    # at t=1 and to 86 at t=2.
    # t=1: E = 190 - 100 = 90 < MM = 45 + 50 = 95; the larger notional is 1 (1000 > 900): a
    #      partial order of 20% (2 at 100, realized 0); E = 90 >= MM = 45 + 40 = 85.
    # t=2: E = 190 - 140 = 50 < MM = 43 + 40 = 83; the larger notional is 0 (860 > 800).
    #      In the cooldown (t=2 < 1 + 30 s) the order is the whole position: 10 at 86
    #      (realized -140, wallet 50); E = 50 >= MM 40.
    #      Without a cooldown it is 20% of it: 2 at 86 (realized -28).
    accounts = [(5, 190.0, [(0, 10.0, 100.0), (1, 10.0, 100.0)])]
    raw = run([([0, 1, 2], [100.0, 90.0, 86.0]), ([0], [100.0])], accounts, hl_partial(cooldown_s))
    first, second = rows(raw)[:2]
    assert brief(first) == (K.PARTIAL_LIQUIDATION, 5, 1, 2.0, 100.0, 0.0)
    if cooldown_s:
        assert brief(second) == (K.LIQUIDATION, 5, 0, 10.0, 86.0, -140.0)
        assert len(rows(raw)) == 2 and raw.positions_size.tolist() == [0.0, 8.0]
    else:
        assert brief(second) == (K.PARTIAL_LIQUIDATION, 5, 0, 2.0, 86.0, -28.0)


def test_the_cooldown_is_shared_by_a_users_isolated_accounts():
    # user 6: isolated long 10 @ 100 in 0 (margin 140) and isolated long 10 @ 100 in 1 (margin
    # 140); user 7: only the second position (same margin). Instrument 0 falls to 90 at t=1,
    # instrument 1 to 90 at t=2.
    # t=1: user 6's account in 0: E = 140 - 100 = 40 < MM 45: 20% (2 at 90, realized -20);
    #      E = 120 - 80 = 40 >= MM 36. User 6's cooldown runs to t = 31 s.
    # t=2: both accounts in 1: E = 40 < 45. User 6 is in the cooldown: the whole 10 at 90
    #      (realized -100, margin 40). User 7 is not: 2 at 90 (realized -20).
    accounts = [(6, 140.0, [(0, 10.0, 100.0)]), (6, 140.0, [(1, 10.0, 100.0)]), (7, 140.0, [(1, 10.0, 100.0)])]
    raw = run([([0, 1], [100.0, 90.0]), ([0, 2], [100.0, 90.0])], accounts, hl_partial())
    at_t2 = [brief(r) for r in rows(raw) if r["ts"] == T0 + 2 * S]
    assert at_t2 == [(K.LIQUIDATION, 6, 1, 10.0, 90.0, -100.0), (K.PARTIAL_LIQUIDATION, 7, 1, 2.0, 90.0, -20.0)]


# ------------------------------------------------------------------ ADL and socialized losses


@pytest.mark.parametrize("ranking", list(AdlRanking))
@pytest.mark.parametrize("other_loses", [True, False])
def test_adl_ranks_a_winner_by_its_accounts_figures(ranking, other_loses):
    # Loser: user 0, wallet 10, short 1 @ 100 in instrument 0. Winners on the other side, each
    # long 1 @ 100 in 0 with wallet 100: user 1 (margin account 1) and user 2 (margin account
    # 2), who also holds long 1 @ 100 in instrument 1. Instrument 1 falls to 90 at t=1 (or
    # stays at 100), instrument 0 rises to 120 at t=2:
    #   loser: E = 10 - 20 = -10 < 0 -> auto-deleveraged whole at its bankruptcy price
    #          100 - 10 / (-1) = 110 (adl_on_negative_equity).
    #   user 1: U = 20, E = 120, MM 6. user 2: U = 20, E = 100 + 20 - 10 = 110, MM = 6 + 4.5.
    #   HL index (M/e) x notional / E: 1.2 x 120/120 = 1.2 vs 1.2 x 120/110 = 1.309;
    #   PnL% x leverage 0.2 x 120/E: 0.2 vs 0.218; Binance max(0,U)/WB x MM/E:
    #   0.2 x 6/120 = 0.01 vs 0.2 x 10.5/110 = 0.0191: user 2 first under every ranking.
    #   Without the loss in 1 (E = 120, MM 11: Binance 0.2 x 11/120 = 0.0183 > 0.01 still ranks
    #   user 2 first; the other two tie and take user 1, the lower index).
    # The first in the queue closes 1 at 110 (haircut 10 against the mark).
    p = params(adl_policy=AdlPolicy.QUEUE, adl_ranking=ranking, adl_on_negative_equity=True)
    accounts = [(0, 10.0, [(0, -1.0, 100.0)]), (1, 100.0, [(0, 1.0, 100.0)]),
                (2, 100.0, [(0, 1.0, 100.0), (1, 1.0, 100.0)])]
    raw = run([([0, 2], [100.0, 120.0]), ([0, 1], [100.0, 90.0 if other_loses else 100.0])], accounts, p)
    fill, order = rows(raw)
    first = 2 if other_loses or ranking == AdlRanking.BINANCE_LEVERAGE_PNL else 1
    assert brief(fill) == (K.ADL_FILL, first, 0, 1.0, 110.0, 10.0) and fill["counterparty"] == 0
    # the winner's equity after: wallet 100 + 10 realized, plus user 2's -10 in instrument 1
    assert fill["equity_after"] == (100.0 if first == 2 and other_loses else 110.0)
    assert brief(order) == (K.ADL_LIQUIDATION, 0, 0, -1.0, 110.0, 10.0) and order["equity_after"] == 0.0
    winner_status = raw.status[first]
    assert winner_status == (Status.ACTIVE if first == 2 else Status.CLOSED)  # user 2 keeps instrument 1


def test_a_cross_position_is_deleveraged_at_the_price_where_the_accounts_equity_is_zero():
    # Loser: user 0, wallet 15, short 1 @ 100 in instrument 0 and long 1 @ 100 in 1; winner:
    # user 1, wallet 100, long 1 @ 100 in 0. Instrument 1 falls to 95 at t=1 (the loser's
    # E = 15 - 5 = 10 >= MM = 5 + 4.75), instrument 0 rises to 112 at t=2:
    #   E = 15 - 12 - 5 = -2 < 0: the larger notional (112 > 95), the short in 0, is
    #   auto-deleveraged whole at p_bk = M - E / q = 112 - (-2) / (-1) = 110
    #   (= e - W / q with W = 15 - 5 = 10: 100 + 10). The winner closes 1 at 110 (haircut
    #   -(110 - 112) = 2); the order's shortfall -(10 x 1 + (-1)(112 - 100)) = 2.
    #   The loser's wallet 15 - 10 = 5, E = 5 - 5 = 0 < MM 4.75: round 1 closes the long in 1 at
    #   95 (realized -5, wallet 0): no deficit.
    p = params(adl_policy=AdlPolicy.QUEUE, adl_on_negative_equity=True)
    accounts = [(0, 15.0, [(0, -1.0, 100.0), (1, 1.0, 100.0)]), (1, 100.0, [(0, 1.0, 100.0)])]
    raw = run([([0, 2], [100.0, 112.0]), ([0, 1], [100.0, 95.0])], accounts, p)
    fill, order, liq = rows(raw)
    assert brief(fill) == (K.ADL_FILL, 1, 0, 1.0, 110.0, 2.0) and fill["counterparty"] == 0
    assert brief(order) == (K.ADL_LIQUIDATION, 0, 0, -1.0, 110.0, 2.0) and order["equity_after"] == 0.0
    assert brief(liq) == (K.LIQUIDATION, 0, 1, 1.0, 95.0, -5.0) and liq["round"] == 1
    assert raw.collateral.tolist() == [0.0, 110.0]
    assert raw.status.tolist() == [Status.CLOSED, Status.CLOSED]


def test_socialized_losses_stop_at_zero_account_equity_and_spare_accounts_without_a_position_there():
    # SOCIALIZE, no fund. Loser: user 0, wallet 100, short 10 @ 100 in instrument 0. Instrument
    # 1 falls to 90 at t=1; instrument 0 rises to 120 at t=2: the loser's E = 100 - 200 = -100
    # < MM 60: closed at 120 (realized -200, wallet -100). The deficit 100 is charged to the open
    # positions in instrument 0 by size: user 1 (long 1 @ 100, wallet 100: E = 120) and user 2
    # (long 1 @ 100 in 0 and long 1 @ 100 in 1, wallet 25: E = 25 + 20 - 10 = 35 >= MM 10.5),
    # 50 each; user 2 is charged its account's equity 35, not 50. Covered 85, bad debt 15.
    # User 3 (a wallet, no position) and user 4 (a position in 1 only) pay nothing.
    # User 2, at E = 0 < MM, is then liquidated a position a round: round 1 closes 0 at 120
    # (the larger notional; realized +20, wallet -10 + 20 = 10, E = 10 - 10 = 0 < MM 4.5),
    # round 2 closes 1 at 90 (realized -10, wallet 0).
    p = params(adl_policy=AdlPolicy.SOCIALIZE)
    accounts = [(0, 100.0, [(0, -10.0, 100.0)]), (1, 100.0, [(0, 1.0, 100.0)]),
                (2, 25.0, [(0, 1.0, 100.0), (1, 1.0, 100.0)]), (3, 70.0, []), (4, 50.0, [(1, 1.0, 100.0)])]
    raw = run([([0, 2], [100.0, 120.0]), ([0, 1], [100.0, 90.0])], accounts, p)
    liq, social, bad, first, second = rows(raw)
    assert brief(liq) == (K.LIQUIDATION, 0, 0, -10.0, 120.0, -200.0)
    assert brief(social) == (K.SOCIALIZED_LOSS, 0, 0, 0.0, 0.0, 85.0) and social["counterparty"] == MARKET_ID
    assert brief(bad) == (K.BAD_DEBT, 0, 0, 0.0, 0.0, 15.0)
    assert (brief(first), first["round"], first["equity_after"]) == ((K.LIQUIDATION, 2, 0, 1.0, 120.0, 20.0), 1, 0.0)
    assert (brief(second), second["round"]) == ((K.LIQUIDATION, 2, 1, 1.0, 90.0, -10.0), 2)
    assert raw.socialized.tolist() == [0.0, 50.0, 35.0, 0.0, 0.0]
    assert raw.collateral.tolist() == [0.0, 50.0, 0.0, 70.0, 50.0]
    assert raw.scalars["bad_debt"] == 15.0


# ------------------------------------------------------------------ random portfolios


@st.composite
def cross_cases(draw):
    """A random portfolio case (tests/test_reference_portfolio.py) whose users put all their
    positions and wallet into one cross account (with a share of the margins, so some cross),
    or keep them isolated; ``cross_order`` either way."""
    merged, accounts, plist = draw(portfolio_cases())
    order = draw(st.sampled_from(list(CrossOrder)))
    plist = [dataclasses.replace(p, cross_order=order) for p in plist]
    out: list[Margin] = []
    for user in sorted({r[0] for r in accounts.rows}):
        mine = [r for r in accounts.rows if r[0] == user]
        if draw(st.booleans()):
            share = draw(st.sampled_from([0.3, 0.7, 1.0]))
            out.append((user, share * sum(r[1] for r in mine), [(r[2], r[3], r[4]) for r in mine if r[2] is not None]))
        else:
            out += [(user, r[1], [] if r[2] is None else [(r[2], r[3], r[4])]) for r in mine]
    return merged, out, plist


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cross_cases())
def test_random_cross_portfolios_keep_the_invariants_isolation_and_determinism(case):
    (ts, inst, price, stream), accounts, plist = case
    arrays = csr(accounts)
    owner, collateral, start, instrument, size, entry = arrays
    raw = run_portfolio(ts, inst, price, stream, *arrays, plist)
    several = np.flatnonzero(np.diff(start) > 1)
    hit = np.isin(raw.events["account"], owner[several]) & (raw.events["kind"] != EventKind.ADL_FILL)
    event(f"a cross account with several positions liquidated: {bool(hit.any())}")
    # money across instruments, positions per instrument, no loss to accounts without a position
    assert portfolio_violations(raw, owner, collateral, instrument, size, entry, plist[0], start=start) == []
    # isolation: a margin account changes only through events naming its user in an instrument
    # it holds (or its share of a socialized loss)
    named = set(zip(raw.events["account"].tolist(), raw.events["instrument"].tolist()))
    holder = np.repeat(np.arange(len(owner)), np.diff(start))
    for m in range(len(owner)):
        mine = np.flatnonzero(holder == m)
        if not any((int(owner[m]), int(instrument[j])) in named for j in mine) and raw.socialized[m] == 0.0:
            assert raw.collateral[m] == collateral[m], m
            assert raw.positions_size[mine].tolist() == size[mine].tolist(), m
    held = set(zip(owner[holder].tolist(), instrument.tolist()))
    ledgers = {(VAULT_ID, k) for k in range(len(plist))} | {(FUND_ID, k) for k in range(len(plist))}
    assert named <= held | ledgers
    # a margin account without positions never appears in an event nor pays
    empty = np.flatnonzero(np.diff(start) == 0)
    assert (raw.collateral[empty] == collateral[empty]).all()
    again = run_portfolio(ts, inst, price, stream, *arrays, plist)
    for name in raw.events:
        assert raw.events[name].tobytes() == again.events[name].tobytes(), name
    for name in raw.series:
        assert raw.series[name].tobytes() == again.series[name].tobytes(), name
    for name in ("collateral", "status", "socialized", "positions_size", "positions_entry"):
        assert getattr(raw, name).tobytes() == getattr(again, name).tobytes(), name
