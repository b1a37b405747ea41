"""ADL policies (cext/riskengine/_adl.pyx) through both engines.

E17 (Chitra 2025, reference §6): equities of the winners (10, 5, 1), queue order (2, 1, 3),
budget 7.5 — the queue wipes winner 2 and cuts winner 1 by 2.5; pro-rata takes 15/32 of
everyone's equity. Reproduced here with a bankrupt long closed at its bankruptcy price one
unit above the mark, so every unit a winner absorbs costs it exactly 1 of equity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine._adl import py_capped_allocation, py_water_filling
from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, EventKind
from riskengine.metrics import COLUMNS, RunContext, gini, summarize
from riskengine.params import EngineParams

from _scenarios import events, run_both, scenario

CLOSING_POLICIES = [p for p in AdlPolicy if p not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)]


def e17_book():
    """Mark 100. Bankrupt long: 7.5 @ 110 with 67.5 margin (bankruptcy price 101, equity -7.5).
    Shorts of size 20 with equity 10, 5 and 1 at mark, ranked 2 > 1 > 3 by PnL x leverage."""
    return scenario([100.0], [
        (67.5, 7.5, 110.0),    # 0: the bankrupt long
        (5.0, -20.0, 100.25),  # 1: E = 5 + 5 = 10, score 0.499
        (1.0, -20.0, 100.2),   # 2: E = 1 + 4 = 5,  score 0.798
        (0.8, -20.0, 100.01),  # 3: E = 0.8 + 0.2 = 1, score 0.200
    ])


def e17_params(policy):
    return EngineParams(mm_floors=[0.0], mm_rates=[0.0001], adl_policy=policy,
                        adl_ranking=AdlRanking.PNL_LEVERAGE, adl_price=AdlPrice.BANKRUPTCY)


def equities_after(raw, mark=100.0):
    return raw.collateral + raw.size * (mark - raw.entry)


def test_e17_queue_wipes_in_order():
    raw = run_both(e17_book(), e17_params(AdlPolicy.QUEUE))
    fills = [e for e in events(raw) if e["kind"] == EventKind.ADL_FILL]
    assert [f["account"] for f in fills] == [2, 1]
    assert [f["price"] for f in fills] == [pytest.approx(101.0)] * 2
    assert [f["amount"] for f in fills] == [pytest.approx(5.0), pytest.approx(2.5)]
    np.testing.assert_allclose(equities_after(raw)[1:], [7.5, 0.0, 1.0], atol=1e-9)


def test_e17_pro_rata_by_equity():
    raw = run_both(e17_book(), e17_params(AdlPolicy.PRO_RATA_EQUITY))
    np.testing.assert_allclose(equities_after(raw)[1:], [5.3125, 2.65625, 0.53125], atol=1e-9)
    fills = [e for e in events(raw) if e["kind"] == EventKind.ADL_FILL]
    np.testing.assert_allclose([f["amount"] / eq for f, eq in zip(fills, (10, 5, 1))], [15 / 32] * 3)


def test_e17_pro_rata_kernel():
    np.testing.assert_allclose(py_capped_allocation([10, 5, 1], [10, 5, 1], 7.5),
                               [4.6875, 2.34375, 0.46875])


def test_e17_metrics():
    sc = e17_book()
    raw = run_both(sc, e17_params(AdlPolicy.QUEUE))
    ctx = RunContext(raw, "e17", "queue", "cython", 4, 4, int(sc.tape.ts[0]), 0.0, 0.0, 1.0)
    row = summarize(ctx)
    assert row["adl_deficit_covered"] == pytest.approx(7.5)
    assert row["adl_haircut"] == pytest.approx(7.5)
    assert row["adl_overshoot"] == pytest.approx(0.0, abs=1e-9)
    assert row["adl_accounts"] == 2
    assert row["adl_max_haircut_share"] == pytest.approx(5.0 / 7.5)
    assert row["adl_haircut_gini"] == pytest.approx((2 * 2.5) / (2 * 2**2 * 3.75))  # sum|xi-xj| / (2 n^2 mean)


def test_gini():
    assert gini(np.array([3.0, 3.0, 3.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 8.0])) == pytest.approx(0.75)
    assert math.isnan(gini(np.array([])))


def test_previous_mark_overshoots_when_the_price_moved():
    # Hyperliquid closes at the previous mark: after a fall from 100 to 85, the winner (a short)
    # buys back at 100, giving up 15 per unit against the mark while the deficit is 5
    sc = scenario([100.0, 85.0], [(10.0, 1.0, 100.0), (50.0, -1.0, 100.0)])
    p = EngineParams(mm_floors=[0.0], mm_rates=[0.005], adl_price=AdlPrice.PREVIOUS_MARK,
                     adl_on_negative_equity=True)
    raw = run_both(sc, p)
    fill, order = events(raw)[:2]
    assert fill["price"] == 100.0 and fill["amount"] == pytest.approx(15.0)
    assert order["amount"] == pytest.approx(5.0)
    ctx = RunContext(raw, "s", "d", "cython", 2, 2, int(sc.tape.ts[0]), 0.0, 0.0, 1.0)
    assert summarize(ctx)["adl_overshoot"] == pytest.approx(10.0)


@st.composite
def adl_books(draw):
    """One bankrupt long against profitable shorts (plus bystanders that must not be touched)."""
    n_win = draw(st.integers(1, 8))
    mark = 100.0
    size, entry = draw(st.floats(0.5, 3)), draw(st.floats(105, 130))
    # bankrupt at the mark: collateral below the loss
    accounts = [(draw(st.floats(0.0, 0.9)) * size * (entry - mark), size, entry)]
    for _ in range(n_win):  # shorts in profit (entry above the mark) with ample equity
        accounts.append((draw(st.floats(2_000, 5_000)), -draw(st.floats(3, 50)), draw(st.floats(100.5, 140))))
    for _ in range(draw(st.integers(0, 4))):  # shorts in loss: entry below the mark
        accounts.append((draw(st.floats(50, 500)), -draw(st.floats(0.1, 2)), draw(st.floats(80, 99))))
    for _ in range(draw(st.integers(0, 3))):  # longs in profit: same side as the bankrupt
        accounts.append((draw(st.floats(50, 500)), draw(st.floats(0.1, 2)), draw(st.floats(80, 99))))
    return scenario([mark], accounts), mark


@settings(max_examples=60, deadline=None)
@given(book=adl_books(), policy=st.sampled_from(CLOSING_POLICIES), power=st.sampled_from([0.0, 1.0, 2.0]))
def test_every_policy_covers_exactly_the_deficit_and_only_touches_winners(book, policy, power):
    sc, mark = book
    p = EngineParams(mm_floors=[0.0], mm_rates=[0.0001], adl_policy=policy, adl_risk_power=power,
                     adl_price=AdlPrice.BANKRUPTCY, adl_rank_interval_ns=0)
    raw = run_both(sc, p)
    ev = raw.events
    kinds = ev["kind"]
    pop = sc.population
    fills = np.flatnonzero(kinds == EventKind.ADL_FILL)
    orders = np.flatnonzero(kinds == EventKind.ADL_LIQUIDATION)
    assert len(orders) == 1 and orders[0] == len(fills) and ev["account"][orders[0]] == 0
    winners = ev["account"][fills]
    # only opposite-side accounts in profit at the mark
    assert np.all(pop.size[winners] < 0) and np.all(pop.entry[winners] > mark)
    # the whole order was absorbed (capacity is ample) and the haircuts equal the deficit
    assert not np.any(kinds == EventKind.LIQUIDATION)
    assert ev["amount"][fills].sum() == pytest.approx(ev["amount"][orders[0]], rel=1e-9)
    # no ADL'd account ends below zero equity
    assert np.all(equities_after(raw)[winners] >= -1e-9)


def test_water_filling_equalizes_leverage():
    notional = np.array([1000.0, 800.0, 300.0, 100.0])
    equity = np.array([50.0, 80.0, 100.0, 100.0])  # leverage 20, 10, 3, 1
    caps = notional / 100.0  # whole positions at mark 100
    x = py_water_filling(notional, equity, caps, 100.0, 6.0)
    assert x.sum() == pytest.approx(6.0)
    after = (notional - x * 100.0) / equity
    hit = x > 0
    assert after[hit] == pytest.approx(np.full(hit.sum(), after[hit][0]))
    assert np.all(after[~hit] <= after[hit][0] + 1e-9)
    assert list(hit) == [True, True, False, False]


def test_risk_aware_power_zero_is_levered_pro_rata():
    book = scenario([100.0], [(5.0, 3.0, 110.0), (50.0, -10.0, 120.0), (30.0, -4.0, 101.0), (200.0, -1.0, 130.0)])
    lpr = run_both(book, EngineParams(mm_floors=[0.0], mm_rates=[0.0001], adl_policy=AdlPolicy.LEVERED_PRO_RATA))
    rap = run_both(book, EngineParams(mm_floors=[0.0], mm_rates=[0.0001], adl_policy=AdlPolicy.RISK_AWARE,
                                      adl_risk_power=0.0))
    np.testing.assert_allclose(lpr.events["size"], rap.events["size"], rtol=1e-12)


def test_result_table_has_the_adl_columns():
    names = [c.name for c in COLUMNS]
    for col in ("adl_overshoot", "adl_deficit_covered", "adl_max_haircut_share", "adl_haircut_gini",
                "adl_accounts", "socialized_loss", "fund_takeovers"):
        assert col in names
