"""Hand-made scenarios with numbers worked out by hand, run through both engines.

Each test states the venue rule it exercises; the expected figures follow from the formulas in
riskengine/reference/__init__.py's docstring and ../shared/reference/venue-mechanisms.md.
"""

import math

import pytest

from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, EventKind, MarkMethod, Status
from riskengine.invariants import violations
from riskengine.params import EngineParams

from _scenarios import S, events, run_both, scenario

ONE_TIER = dict(mm_floors=[0.0], mm_rates=[0.005])


def kinds(raw):
    return [EventKind(k).name for k in raw.events["kind"]]


def check(raw, sc, params):
    assert violations(raw, sc.population, params) == []


def test_book_liquidation_fee_capped_at_margin_left():
    # long 1 @ 100 with 10 margin: liquidation price (100 - 10) / 0.995 = 90.4523
    sc = scenario([100, 95, 90.5, 90.4], [(10, 1, 100), (50, -1, 100)])
    p = EngineParams(**ONE_TIER, liq_fee_rate=0.01, adl_policy=AdlPolicy.NONE)
    raw = run_both(sc, p)
    (ev,) = events(raw)
    assert ev["kind"] == EventKind.LIQUIDATION and ev["tick"] == 3 and ev["account"] == 0
    assert ev["price"] == 90.4 and ev["size"] == 1.0
    assert ev["amount"] == pytest.approx(-9.6)  # realized PnL
    assert ev["fee"] == pytest.approx(0.4)  # 1% of 90.4 = 0.904, capped at the 0.4 left
    assert raw.scalars["fund_final"] == pytest.approx(0.4)
    assert raw.collateral[0] == pytest.approx(0.0)
    assert raw.status.tolist() == [Status.CLOSED, Status.ACTIVE]
    check(raw, sc, p)


def test_fund_pays_deficit_beyond_bankruptcy():
    sc = scenario([100, 85], [(10, 1, 100), (50, -1, 100)])
    p = EngineParams(**ONE_TIER, fund_initial=100.0)
    raw = run_both(sc, p)
    assert kinds(raw) == ["LIQUIDATION", "FUND_PAYMENT"]
    pay = events(raw)[1]
    assert pay["amount"] == pytest.approx(5.0) and pay["fund_after"] == pytest.approx(95.0)
    assert raw.scalars["bad_debt"] == 0.0
    check(raw, sc, p)


def test_adl_at_bankruptcy_price_when_fund_cannot_cover():
    # deficit 5 > fund 2: the long is closed against the profitable short at its bankruptcy
    # price 100 - 10/1 = 90; the short gives up 90 - 85 = 5 against the mark
    sc = scenario([100, 85], [(10, 1, 100), (50, -1, 100)])
    p = EngineParams(**ONE_TIER, fund_initial=2.0, adl_policy=AdlPolicy.QUEUE, adl_price=AdlPrice.BANKRUPTCY)
    raw = run_both(sc, p)
    fill, liq = events(raw)
    assert fill["kind"] == EventKind.ADL_FILL and fill["account"] == 1 and fill["counterparty"] == 0
    assert fill["size"] == -1.0 and fill["price"] == pytest.approx(90.0)
    assert fill["amount"] == pytest.approx(5.0)  # haircut against the mark
    assert fill["equity_after"] == pytest.approx(60.0)
    assert liq["kind"] == EventKind.ADL_LIQUIDATION and liq["size"] == 1.0
    assert liq["equity_after"] == pytest.approx(0.0)
    assert raw.scalars["fund_final"] == 2.0 and raw.scalars["bad_debt"] == 0.0
    check(raw, sc, p)


def test_adl_never_takes_winner_below_zero_and_rest_goes_to_book():
    # bankrupt long (E = -15 at 75) closes at its bankruptcy price 90, 15 above mark; the only
    # short has equity 2 + 25 = 27 at mark, so at most 27 / 15 of... its whole size 1 costs it 15
    sc = scenario([100, 75], [(10, 2, 100), (2, -1, 100)])
    p = EngineParams(**ONE_TIER, adl_policy=AdlPolicy.QUEUE, adl_price=AdlPrice.BANKRUPTCY)
    raw = run_both(sc, p)
    evs = events(raw)
    assert [EventKind(e["kind"]).name for e in evs][:3] == ["ADL_FILL", "ADL_LIQUIDATION", "LIQUIDATION"]
    assert evs[0]["size"] == -1.0 and evs[0]["equity_after"] >= 0.0
    assert evs[2]["size"] == pytest.approx(1.0)  # the rest is sold into the book
    assert raw.scalars["bad_debt"] > 0.0  # nobody covers the rest of the deficit
    check(raw, sc, p)


def test_no_adl_means_bad_debt():
    sc = scenario([100, 85], [(10, 1, 100), (50, -1, 100)])
    p = EngineParams(**ONE_TIER, fund_initial=2.0, adl_policy=AdlPolicy.NONE)
    raw = run_both(sc, p)
    assert kinds(raw) == ["LIQUIDATION", "FUND_PAYMENT", "BAD_DEBT"]
    assert raw.scalars["bad_debt"] == pytest.approx(3.0)
    check(raw, sc, p)


def test_backstop_takes_position_and_equity_e12():
    # Hyperliquid E10/E12: 1 BTC long @ 100,000, margin 10,000, MMR 1.25%; at 90,700 equity 700
    # is below 2/3 x MM = 755.83, so the vault takes the position and the 700
    sc = scenario([100_000, 90_700], [(10_000, 1, 100_000), (100_000, -1, 100_000)])
    p = EngineParams(mm_floors=[0, 150e6], mm_rates=[0.0125, 0.025], backstop_ratio=2 / 3,
                     vault_initial=1_000.0, vault_unwind_interval_ns=10 * S)
    raw = run_both(sc, p)
    (ev,) = events(raw)
    assert ev["kind"] == EventKind.BACKSTOP and ev["counterparty"] == -1
    assert ev["price"] == 90_700 and ev["amount"] == pytest.approx(700.0)
    assert raw.scalars["vault_pos"] == 1.0 and raw.scalars["vault_col"] == pytest.approx(1_700.0)
    check(raw, sc, p)


def test_between_liquidation_and_backstop_price_goes_to_book():
    sc = scenario([100_000, 91_000], [(10_000, 1, 100_000)])
    p = EngineParams(mm_floors=[0, 150e6], mm_rates=[0.0125, 0.025], backstop_ratio=2 / 3)
    raw = run_both(sc, p)
    assert kinds(raw) == ["LIQUIDATION"]


def test_vault_unwinds_inventory_in_slices():
    prices = [100_000, 90_700] + [90_700] * 8
    times = [0, 1, 2, 5, 12, 13, 22, 33, 44, 55]
    sc = scenario(prices, [(10_000, 1, 100_000)], times_s=times)
    p = EngineParams(mm_floors=[0, 150e6], mm_rates=[0.0125, 0.025], backstop_ratio=2 / 3,
                     vault_unwind_interval_ns=10 * S, vault_unwind_fraction=0.5)
    raw = run_both(sc, p)
    evs = events(raw)
    unwinds = [e for e in evs if e["kind"] == EventKind.VAULT_UNWIND]
    # takeover at t=1 -> first unwind due at t=11 (tick at 12), then every 10 s
    assert [e["ts"] // S for e in unwinds] == [12, 22, 33, 44, 55]
    assert [e["size"] for e in unwinds] == [0.5, 0.25, 0.125, 0.0625, 0.03125]
    check(raw, sc, p)


def test_partial_liquidation_then_full_in_cooldown():
    # Hyperliquid: 20% when notional > threshold; within the 30 s cooldown the rest goes whole
    sc = scenario([100, 90.2, 90.0, 89.9], [(10, 1, 100)], times_s=[0, 1, 2, 3])
    p = EngineParams(**ONE_TIER, partial_fraction=0.2, partial_threshold=50.0,
                     partial_cooldown_ns=30 * S)
    raw = run_both(sc, p)
    evs = events(raw)
    assert [EventKind(e["kind"]).name for e in evs] == ["PARTIAL_LIQUIDATION", "LIQUIDATION"]
    assert evs[0]["size"] == pytest.approx(0.2) and evs[0]["tick"] == 1
    assert evs[1]["size"] == pytest.approx(0.8) and evs[1]["tick"] == 2
    check(raw, sc, p)


def test_partial_again_after_cooldown():
    # partial at t=1, recovery at t=2, crosses again at t=40 after the 30 s cooldown: partial
    # again (20% of the remaining 0.8), not full
    sc = scenario([100, 90.2, 95.0, 90.0], [(10, 1, 100)], times_s=[0, 1, 2, 40])
    p = EngineParams(**ONE_TIER, partial_fraction=0.2, partial_threshold=50.0,
                     partial_cooldown_ns=30 * S, adl_policy=AdlPolicy.NONE)
    raw = run_both(sc, p)
    evs = events(raw)
    assert [(EventKind(e["kind"]).name, e["tick"]) for e in evs] == [
        ("PARTIAL_LIQUIDATION", 1), ("PARTIAL_LIQUIDATION", 3)]
    assert evs[1]["size"] == pytest.approx(0.16)
    assert raw.size[0] == pytest.approx(0.64)


def test_latency_delays_and_recovery_cancels():
    # triggered at t=1 with a 5 s latency: executes at the first tick >= 6 if still crossing
    sc = scenario([100, 90, 90, 89, 89], [(10, 1, 100), (10, 1, 100.0001)], times_s=[0, 1, 3, 6, 7])
    p = EngineParams(**ONE_TIER, latency_ns=5 * S)
    raw = run_both(sc, p)
    liqs = [(e["account"], e["tick"]) for e in events(raw) if e["kind"] == EventKind.LIQUIDATION]
    assert liqs == [(0, 3), (1, 3)]
    sc2 = scenario([100, 90, 99, 99], [(10, 1, 100)], times_s=[0, 1, 3, 6])
    raw2 = run_both(sc2, p)
    assert events(raw2) == [] and raw2.status[0] == Status.ACTIVE


def test_cap_per_step_defers_in_account_order():
    sc = scenario([100, 80, 80, 80], [(10, 1, 100)] * 3)
    p = EngineParams(**ONE_TIER, max_liqs_per_step=1, adl_policy=AdlPolicy.NONE)
    raw = run_both(sc, p)
    liqs = [(e["tick"], e["account"]) for e in events(raw) if e["kind"] == EventKind.LIQUIDATION]
    assert liqs == [(1, 0), (2, 1), (3, 2)]


def test_stream_mark_ignores_a_tape_wick():
    prices = [100, 100, 80, 100]
    stream = [100, 100, 99, 100]
    sc = scenario(prices, [(10, 1, 100)], stream=stream)
    last = run_both(sc, EngineParams(**ONE_TIER, mark_method=MarkMethod.LAST))
    index = run_both(sc, EngineParams(**ONE_TIER, mark_method=MarkMethod.STREAM))
    assert kinds(last)[:1] == ["LIQUIDATION"] and kinds(index) == []


def test_index_ema_basis_damps_a_wick():
    prices = [100] * 200 + [85] + [100] * 5  # 200 s of history: the EMA's weight is ~111 s
    stream = [100.0] * 206
    sc = scenario(prices, [(10, 1, 100)], stream=stream)
    p = EngineParams(**ONE_TIER, mark_method=MarkMethod.INDEX_EMA_BASIS, mark_ema_tau_ns=150 * S)
    raw = run_both(sc, p)
    assert kinds(raw) == []
    marks = raw.series["mark"]
    assert 99.8 < marks.min() < 99.9  # the 1 s, -15 basis sample moves the EMA by ~15/112


def test_impact_feedback_cascades_within_a_tick():
    # A liquidation sells into a thin book; the price impact crosses the next account in the
    # same tick (round 1) under a last-trade mark, but not under a stream mark.
    accounts = [(10, 1, 100), (9.5, 1, 99.0)]
    sc = scenario([100, 90.3], accounts, stream=[100, 90.3])
    thin = dict(depth_per_pct=2.0)
    last = run_both(sc, EngineParams(**ONE_TIER, **thin, adl_policy=AdlPolicy.NONE))
    evs = [e for e in events(last) if e["kind"] == EventKind.LIQUIDATION]
    assert [(e["account"], e["round"]) for e in evs] == [(0, 0), (1, 1)]
    assert last.scalars["sim_max_drawdown"] > last.scalars["tape_max_drawdown"]
    stream = run_both(sc, EngineParams(**ONE_TIER, **thin, mark_method=MarkMethod.STREAM,
                                       adl_policy=AdlPolicy.NONE))
    assert [e["account"] for e in events(stream) if e["kind"] == EventKind.LIQUIDATION] == [0]


def test_pro_rata_splits_by_size():
    # bankrupt long (size 3, bankruptcy price 100 - 10/3); shorts of size 1 and 3 in profit
    sc = scenario([100, 80], [(10, 3, 100), (100, -1, 100), (100, -3, 100)])
    p = EngineParams(**ONE_TIER, adl_policy=AdlPolicy.PRO_RATA)
    raw = run_both(sc, p)
    fills = [e for e in events(raw) if e["kind"] == EventKind.ADL_FILL]
    assert [(f["account"], f["size"]) for f in fills] == [(1, pytest.approx(-0.75)), (2, pytest.approx(-2.25))]
    assert fills[0]["price"] == pytest.approx(100 - 10 / 3)


def test_adl_on_negative_equity_closes_at_mark():
    # Hyperliquid: an account whose equity is already negative is deleveraged at mark;
    # the leftover negative equity is bad debt when there is no fund
    sc = scenario([100, 85], [(10, 1, 100), (50, -1, 100)])
    p = EngineParams(**ONE_TIER, adl_on_negative_equity=True, adl_price=AdlPrice.MARK,
                     adl_ranking=AdlRanking.HL_INDEX)
    raw = run_both(sc, p)
    assert kinds(raw) == ["ADL_FILL", "ADL_LIQUIDATION", "BAD_DEBT"]
    assert events(raw)[0]["price"] == 85 and events(raw)[0]["amount"] == 0.0
    assert raw.scalars["bad_debt"] == pytest.approx(5.0)
    check(raw, sc, p)


def test_vault_loss_limit_triggers_adl_of_inventory():
    sc = scenario([100, 92, 80, 80], [(10, 1, 100), (500, -1, 100)])
    p = EngineParams(**ONE_TIER, backstop_ratio=0.9, vault_initial=100.0, vault_loss_limit=5.0,
                     adl_price=AdlPrice.MARK, vault_unwind_interval_ns=1_000 * S)
    raw = run_both(sc, p)
    ks = kinds(raw)
    assert ks[0] == "BACKSTOP"
    assert "ADL_FILL" in ks and ks[ks.index("ADL_FILL") + 1] == "ADL_LIQUIDATION"
    adl_liq = [e for e in events(raw) if e["kind"] == EventKind.ADL_LIQUIDATION][0]
    assert adl_liq["account"] == -1 and raw.scalars["vault_pos"] == 0.0
    check(raw, sc, p)


def test_flat_accounts_never_pay():
    sc = scenario([100, 60], [(10, 1, 100), (1_000, 0, 0), (5, -0.1, 100)])
    p = EngineParams(**ONE_TIER, adl_policy=AdlPolicy.PRO_RATA)
    raw = run_both(sc, p)
    assert raw.collateral[1] == 1_000 and 1 not in raw.events["account"]
    check(raw, sc, p)


def test_empty_population_and_single_tick():
    sc = scenario([100.0], [(0.0, 0.0, 0.0)])
    raw = run_both(sc, EngineParams(**ONE_TIER))
    assert len(raw.events["ts"]) == 0 and len(raw.series["ts"]) == 1
    assert math.isclose(raw.scalars["final_mark"], 100.0)
