"""Funding payments in both engines (issue 13; the reference package docstring, "Funding"):
every hand-worked scenario runs on the reference and on the compiled engine.

At a funding time ``T`` of instrument ``k`` with rate ``r``, every open position in ``k`` pays
``q M r`` at ``k``'s mark ``M`` (a long pays a positive rate, a short receives it) from its cash:
its margin account's wallet (cross) or margin (isolated), or its ledger's cash (the vault's and
the fund's inventories). The rest of the market, which holds the opposite of every modelled
position, pays or receives the net, so funding is zero-sum over all positions. The payment is
made before the first tick later than ``T``, at the marks of the ticks at or before ``T``; a
funding time at or after the last tick, or before the instrument's first tick, pays nothing.

Hand-worked scenarios: maintenance margin 5% of notional, mark = last price, infinite depth, no
fee, no ADL; arithmetic in the comments.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from riskengine.codes import BOOK_ID, MARKET_ID, EventKind, Status
from riskengine.engine_inputs import check_funding
from riskengine.invariants import money_total, portfolio_violations

import test_cross_accounts as tc
from test_cross_accounts import S, csr, params, rows
from test_reference_portfolio import T0, merge

K = EventKind


@pytest.fixture(params=["reference", "cython"])
def engine(request):
    tc.ENGINE["name"] = request.param
    yield request.param
    tc.ENGINE["name"] = "reference"


def funding(*payments: tuple[int, int, float]):
    """Funding payments (seconds from T0, instrument, rate) as the engines take them."""
    return (np.array([T0 + int(t * S) for t, _, _ in payments], dtype=np.int64),
            np.array([k for _, k, _ in payments], dtype=np.int32),
            np.array([r for _, _, r in payments], dtype=np.float64))


def run(tapes, accounts, pays=None, p=None):
    """Run the engine under test with funding ``pays`` and check the invariants."""
    from riskengine.engine import portfolio_engine
    from riskengine.runlog import RawRun

    p = p or params()
    ts, inst, price = merge(tapes)
    owner, collateral, start, instrument, size, entry = csr(accounts)
    out = portfolio_engine(tc.ENGINE["name"])(ts, inst, price, np.full(len(ts), np.nan), owner, collateral, start,
                                              instrument, size, entry, [p] * len(tapes), 0, funding=pays)
    raw = out if isinstance(out, RawRun) else RawRun(**out)
    assert portfolio_violations(raw, owner, collateral, instrument, size, entry, p, start=start) == []
    return raw


def test_a_funding_payment_pushes_a_marginal_account_over_the_edge(engine):
    # account 0: isolated long 1 @ 100, margin 5.5; MM = 0.05 x 100 = 5: safe while the price holds.
    # account 1: isolated short 1 @ 100, margin 50 (the other side).
    # Funding at t=1.5 s, rate +1% (longs pay): account 0 pays 1 x 100 x 0.01 = 1 -> margin 4.5 < MM 5;
    # account 1 receives 1. The price never moves; at the next tick (t=2) account 0 crosses and is
    # liquidated at 100 (realized 0; it keeps its 4.5).
    tapes = [([0, 1, 2, 3], [100.0, 100.0, 100.0, 100.0])]
    accounts = [(0, 5.5, [(0, 1.0, 100.0)]), (1, 50.0, [(0, -1.0, 100.0)])]
    without = run(tapes, accounts)
    assert not rows(without, K.LIQUIDATION) and list(without.status) == [Status.ACTIVE, Status.ACTIVE]
    raw = run(tapes, accounts, funding((1.5, 0, 0.01)))
    (pay,) = rows(raw, K.FUNDING)
    assert pay["tick"] == 2 and pay["account"] == MARKET_ID and pay["counterparty"] == BOOK_ID
    assert (pay["size"], pay["price"], pay["amount"]) == (0.0, 100.0, 0.0)  # net position 1 - 1 = 0: nothing to the outside
    (liq,) = rows(raw, K.LIQUIDATION)
    assert (liq["tick"], liq["account"], liq["size"], liq["price"]) == (2, 0, 1.0, 100.0)
    assert list(raw.collateral) == [4.5, 51.0]
    assert raw.by_instrument["funding_paid"][0] == 1.0 and raw.scalars["funding_paid"] == 1.0


def test_the_rest_of_the_market_takes_the_net_and_money_is_conserved(engine):
    # Two instruments. In 0: a long 2 @ 50 (cross, user 0, wallet 40) and a short 1 @ 50 (isolated,
    # user 1, margin 20): the modelled positions are net long 1, the outside short 1.
    # In 1: user 0's cross wallet also holds short 3 @ 10.
    # Funding at t=1 (on a tick time: paid after that tick, before t=2), rate -0.2% in 0, +0.5% in 1.
    # Marks at t=1: 0 at 60, 1 at 10.
    #   instrument 0: long pays 2 x 60 x -0.002 = -0.24 (receives 0.24); short pays -1 x 60 x -0.002 = 0.12;
    #                 net paid by the modelled positions -0.12: the outside pays them 0.12;
    #                 paid by the payers: the short 0.12 + the outside 0.12 = 0.24 = (0.36 + 0.12) / 2.
    #   instrument 1: short pays -3 x 10 x 0.005 = -0.15 (receives 0.15); the outside pays 0.15.
    # Wallets: user 0: 40 + 0.24 + 0.15 = 40.39; user 1: 20 - 0.12 = 19.88.
    tapes = [([0, 1, 2], [50.0, 60.0, 60.0]), ([0, 1, 2], [10.0, 10.0, 10.0])]
    accounts = [(0, 40.0, [(0, 2.0, 50.0), (1, -3.0, 10.0)]), (1, 20.0, [(0, -1.0, 50.0)])]
    raw = run(tapes, accounts, funding((1, 0, -0.002), (1, 1, 0.005)))
    f0, f1 = rows(raw, K.FUNDING)
    assert (f0["tick"], f0["instrument"], f0["size"], f0["price"]) == (4, 0, 1.0, 60.0)
    assert f0["amount"] == pytest.approx(-0.12, abs=1e-12) and f1["amount"] == pytest.approx(-0.15, abs=1e-12)
    assert (f1["tick"], f1["instrument"], f1["size"], f1["price"]) == (4, 1, -3.0, 10.0)
    assert raw.collateral == pytest.approx([40.39, 19.88], abs=1e-12)
    assert raw.by_instrument["funding_paid"] == pytest.approx([0.24, 0.15], abs=1e-12)
    # the outside received what the modelled positions paid: its cash moved by the net
    no_funding = run(tapes, accounts)
    assert raw.by_instrument["ext_cash"] - no_funding.by_instrument["ext_cash"] == pytest.approx([-0.12, -0.15], abs=1e-12)
    assert money_total(raw) == pytest.approx(money_total(no_funding), abs=1e-9)


def test_an_isolated_position_pays_from_its_own_margin_not_the_wallet(engine):
    # user 0: a cross wallet of 100 with a long 1 @ 10 in instrument 1, and an isolated long 1 @ 100 in 0
    # with margin 10. Funding in 0 at rate 2%: the isolated margin pays 1 x 100 x 0.02 = 2 -> 8;
    # the wallet is untouched (100); no funding in 1.
    tapes = [([0, 1, 2], [100.0] * 3), ([0, 1, 2], [10.0] * 3)]
    accounts = [(0, 100.0, [(1, 1.0, 10.0)]), (0, 10.0, [(0, 1.0, 100.0)])]
    raw = run(tapes, accounts, funding((1, 0, 0.02)))
    assert list(raw.collateral) == [100.0, 8.0]


def test_payments_outside_the_tape_or_before_a_first_tick_pay_nothing(engine):
    # Instrument 1 first ticks at t=5. Payments: t=-1 (before the tape), t=2 in 1 (no mark yet),
    # t=6 (the last tick: nothing later), t=9 (after it). Only t=2 in instrument 0 pays: 1 x 100 x 1% = 1.
    tapes = [([0, 1, 2, 3, 4, 5, 6], [100.0] * 7), ([5, 6], [10.0, 10.0])]
    accounts = [(0, 50.0, [(0, 1.0, 100.0)]), (1, 50.0, [(1, 1.0, 10.0)])]
    pays = funding((-1, 0, 0.01), (2, 0, 0.01), (2, 1, 0.01), (6, 0, 0.01), (6, 1, 0.01), (9, 0, 0.01))
    raw = run(tapes, accounts, pays)
    (pay,) = rows(raw, K.FUNDING)
    assert (pay["instrument"], pay["ts"]) == (0, T0 + 3 * S)
    assert list(raw.collateral) == [49.0, 50.0]


def test_the_vaults_and_the_funds_inventory_pay_funding_from_their_cash(engine):
    # An isolated long 1 @ 100 with margin 6 at MM 5%: the price falls to 95 at t=1 -> E = 1 < MM 4.75;
    # the backstop (ratio 1: every crossing account goes to the vault) takes it over: the vault holds
    # long 1. Funding at t=2, rate 1%, at mark 95: the vault's cash pays 1 x 95 x 0.01 = 0.95 (against
    # the same run without funding); the short (margin 50) receives 0.95 -> 50.95.
    tapes = [([0, 1, 2, 3], [100.0, 95.0, 95.0, 95.0])]
    accounts = [(0, 6.0, [(0, 1.0, 100.0)]), (1, 50.0, [(0, -1.0, 100.0)])]
    p = params(backstop_ratio=1.0, vault_initial=1000.0)
    raw, plain = run(tapes, accounts, funding((2, 0, 0.01)), p), run(tapes, accounts, None, p)
    assert [r["kind"] for r in rows(raw)][:1] == [K.BACKSTOP] and raw.by_instrument["vault_pos"][0] == 1.0
    assert raw.scalars["vault_col"] - plain.scalars["vault_col"] == pytest.approx(-0.95, abs=1e-12)
    assert raw.collateral[1] == pytest.approx(50.95, abs=1e-12)
    assert raw.by_instrument["funding_paid"][0] == pytest.approx(0.95, abs=1e-12)


@pytest.mark.parametrize("pays, message", [
    (((0, 0), (0, 0), (0.01, 0.01)), "funding_ts[1]: expected payments sorted by time, then instrument"),
    (((5, 1), (0, 0), (0.01, 0.01)), "funding_ts[1]: expected payments sorted by time, then instrument"),
    (((0,), (2,), (0.01,)), "funding_inst[0]: expected an instrument in 0..1, got 2"),
    (((0,), (0,), (float("nan"),)), "funding_rate[0]: expected a finite rate, got nan"),
    (((0, 1), (0,), (0.01, 0.01)), "funding_inst: expected one entry per funding payment (2), got 1"),
])
def test_bad_funding_payments_are_refused_in_one_line(pays, message):
    ts, inst, rate = (np.array(a, dtype=d) for a, d in zip(pays, (np.int64, np.int32, np.float64)))
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        check_funding(ts, inst, rate, 2)


def test_funding_at_the_index_values_positions_at_the_instruments_stream(engine):
    # Hyperliquid values a position at the oracle price: funding_price INDEX. The stream (index) is
    # 98 at t=1 while the last price (the mark) is 100. Rate 1%: the long 1 pays 1 x 98 x 0.01 = 0.98
    # at the index, 1 at the mark. A stream with no value yet (NaN) falls back to the mark.
    from riskengine.codes import FundingPrice
    from riskengine.engine import portfolio_engine
    from riskengine.runlog import RawRun

    ts, inst, price = merge([([0, 1, 2], [100.0, 100.0, 100.0])])
    owner, collateral, start, instrument, size, entry = csr([(0, 50.0, [(0, 1.0, 100.0)])])
    for stream, at, paid in (([99.0, 98.0, 98.0], FundingPrice.INDEX, 0.98), ([99.0, 98.0, 98.0], FundingPrice.MARK, 1.0),
                             ([np.nan] * 3, FundingPrice.INDEX, 1.0)):
        out = portfolio_engine(tc.ENGINE["name"])(ts, inst, price, np.array(stream), owner, collateral, start, instrument,
                                                  size, entry, [params(funding_price=at)], 0, funding=funding((1, 0, 0.01)))
        raw = out if isinstance(out, RawRun) else RawRun(**out)
        assert raw.collateral[0] == pytest.approx(50.0 - paid, abs=1e-12), (stream, at)
        assert rows(raw, K.FUNDING)[0]["price"] == paid * 100.0
