"""Collateral assets in both engines (issue 13; the reference package docstring, "Collateral"):
every hand-worked scenario runs on the reference and on the compiled engine.

A collateral asset is an instrument whose positions are holdings: its tape is the asset's price
as the design values it (its index x its collateral ratio: Binance Multi-Assets counts a holding
at ``index x (1 - bidBuffer)``, ``riskengine.collateral``), with no maintenance margin. A cross
account's equity counts its holdings at that price, so a fall of the asset's index can liquidate
an account none of whose positions lost. A liquidation closes positions first; an account left
with holdings only and a negative wallet sells the same share of each holding at market
(auto-exchange, COLLATERAL_EXCHANGE rows, no fee, not counted as liquidations); an account whose
holdings are all that is left and whose equity is below zero sells them all, the fund paying what
they miss.

Hand-worked scenarios: perpetual maintenance margin 5% of notional, mark = last price, infinite
depth, no fee, no ADL; instrument 0 the perpetual, instrument 1 the collateral asset USDe with a
collateral ratio of 0.9 (its tape is the index x 0.9). Arithmetic in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from riskengine.codes import AdlPolicy, EventKind, Status
from riskengine.engine import portfolio_engine
from riskengine.invariants import portfolio_violations
from riskengine.params import EngineParams
from riskengine.runlog import RawRun

import test_cross_accounts as tc
from test_cross_accounts import S, csr, rows
from test_reference_portfolio import merge

K = EventKind
RATIO = 0.9


@pytest.fixture(params=["reference", "cython"])
def engine(request):
    tc.ENGINE["name"] = request.param
    yield request.param
    tc.ENGINE["name"] = "reference"


def perp(**kw) -> EngineParams:
    return EngineParams(**{**dict(mm_floors=[0.0], mm_rates=[0.05], adl_policy=AdlPolicy.NONE, series_interval_ns=S),
                           **kw})


def asset(p: EngineParams) -> EngineParams:
    """The collateral asset's parameters: the design's, no maintenance margin."""
    import dataclasses

    return dataclasses.replace(p, mm_floors=np.array([0.0]), mm_rates=np.array([0.0]), collateral=True)


def run(tapes, accounts, p=None):
    p = p or perp()
    ts, inst, price = merge(tapes)
    owner, collateral, start, instrument, size, entry = csr(accounts)
    out = portfolio_engine(tc.ENGINE["name"])(ts, inst, price, np.full(len(ts), np.nan), owner, collateral, start,
                                              instrument, size, entry, [p, asset(p)])
    raw = out if isinstance(out, RawRun) else RawRun(**out)
    assert portfolio_violations(raw, owner, collateral, instrument, size, entry, p, start=start) == []
    return raw


def usde(index: list[float]) -> list[float]:
    """The asset's tape: its index x its collateral ratio."""
    return [x * RATIO for x in index]


def test_a_depeg_liquidates_an_account_none_of_whose_positions_lost(engine):
    # Cross account: wallet 0 USDT, 700 USDe, long 100 perp @ 100; the perp stays at 100 (no loss).
    # MM = 0.05 x 100 x 100 = 500. Equity = 0 + 700 x index x 0.9 + 0:
    #   own book, USDe at 1.00: 630 >= 500; at 0.65 (t=2): 700 x 0.585 = 409.5 < 500: liquidated.
    # The perp is closed at 100 (realized 0); the wallet is 0 (not negative): the account keeps its USDe.
    accounts = [(0, 0.0, [(0, 100.0, 100.0), (1, 700.0, 0.0)])]
    own_book = run([([0, 1, 2, 3], [100.0] * 4), ([0, 1, 2, 3], usde([1.0, 0.9, 0.65, 0.65]))], accounts)
    (liq,) = rows(own_book, K.LIQUIDATION)
    assert (liq["tick"], liq["instrument"], liq["size"], liq["price"], liq["amount"]) == (5, 0, 100.0, 100.0, 0.0)
    assert not rows(own_book, K.COLLATERAL_EXCHANGE)
    assert list(own_book.positions_size) == [0.0, 700.0] and own_book.collateral[0] == 0.0
    assert own_book.status[0] == Status.ACTIVE  # it still holds its USDe
    # the same account under a redemption-price index with a floor of 0.97: 700 x 0.97 x 0.9 = 611.1 >= 500
    floor = run([([0, 1, 2, 3], [100.0] * 4), ([0, 1, 2, 3], usde([1.0, 0.97, 0.97, 0.97]))], accounts)
    assert not rows(floor, K.LIQUIDATION) and list(floor.positions_size) == [100.0, 700.0]


def test_holdings_cover_a_negative_wallet_left_by_a_liquidation(engine):
    # Cross account: wallet 100 USDT, 1,000 USDe (index 1: 900), long 100 perp @ 100.
    # The perp falls to 91 (t=1): E = 100 + 900 - 900 = 100 < MM = 0.05 x 9,100 = 455: liquidated;
    # the perp is closed at 91: realized -900, wallet 100 - 900 = -800 < 0 with holdings only:
    # auto-exchange sells 800 / 900 of the USDe holding at 0.9: 1,000 x 800/900 = 888.9 units for 800;
    # the wallet is back to 0 and 111.1 USDe are left.
    accounts = [(0, 100.0, [(0, 100.0, 100.0), (1, 1000.0, 0.0)])]
    raw = run([([0, 1, 2], [100.0, 91.0, 91.0]), ([0, 1, 2], usde([1.0, 1.0, 1.0]))], accounts)
    (liq,) = rows(raw, K.LIQUIDATION)
    (sale,) = rows(raw, K.COLLATERAL_EXCHANGE)
    assert liq["amount"] == pytest.approx(-900.0) and sale["instrument"] == 1 and sale["fee"] == 0.0
    assert sale["size"] == pytest.approx(1000.0 * 800.0 / 900.0) and sale["amount"] == pytest.approx(800.0)
    assert raw.collateral[0] == pytest.approx(0.0, abs=1e-9)
    assert raw.positions_size[1] == pytest.approx(1000.0 - 1000.0 * 800.0 / 900.0)
    # an exchange is not a liquidation: one liquidation in the counters
    assert int(raw.by_instrument["liquidations"].sum()) == 1 and raw.by_instrument["liquidations"][1] == 0


def test_holdings_that_do_not_cover_the_debt_are_sold_and_the_fund_pays_the_rest(engine):
    # As above with 500 USDe (450 at index 1) and the perp falling to 88: E = 100 + 450 - 1,200 = -650;
    # closed at 88: wallet 100 - 1,200 = -1,100; the holding (450) is sold whole: wallet -650;
    # the fund (1,000) pays 650: wallet 0, fund 350.
    accounts = [(0, 100.0, [(0, 100.0, 100.0), (1, 500.0, 0.0)])]
    p = perp(fund_initial=1000.0)
    raw = run([([0, 1, 2], [100.0, 88.0, 88.0]), ([0, 1, 2], usde([1.0, 1.0, 1.0]))], accounts, p)
    (sale,) = rows(raw, K.COLLATERAL_EXCHANGE)
    (paid,) = rows(raw, K.FUND_PAYMENT)
    assert sale["size"] == 500.0 and sale["amount"] == pytest.approx(450.0)
    assert paid["amount"] == pytest.approx(650.0) and raw.scalars["fund_final"] == pytest.approx(350.0)
    assert raw.collateral[0] == pytest.approx(0.0, abs=1e-9) and raw.status[0] == Status.CLOSED


def test_an_account_of_holdings_and_debt_is_liquidated_when_the_asset_falls(engine):
    # Wallet -500 USDT (a debt) and 1,000 USDe, no position: E = -500 + 1,000 x index x 0.9, MM 0.
    # The index falls to 0.5 (t=2): E = -500 + 450 = -50 < 0: the holding is sold at 0.45 for 450,
    # the fund (100) pays the 50 left.
    accounts = [(0, -500.0, [(1, 1000.0, 0.0)]), (1, 10.0, [(0, 1.0, 100.0)])]
    raw = run([([0, 1, 2, 3], [100.0] * 4), ([0, 1, 2, 3], usde([1.0, 0.8, 0.5, 0.5]))], accounts,
              perp(fund_initial=100.0))
    (sale,) = rows(raw, K.COLLATERAL_EXCHANGE)
    assert (sale["tick"], sale["size"]) == (5, 1000.0) and sale["amount"] == pytest.approx(450.0)
    assert rows(raw, K.FUND_PAYMENT)[0]["amount"] == pytest.approx(50.0)
    assert not rows(raw, K.LIQUIDATION) and int(raw.by_instrument["liquidations"].sum()) == 0
