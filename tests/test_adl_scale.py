"""Weighted ADL policies at scale: bounded fill logging, exact state, a memory budget.

Pro-rata (by size, equity or PnL), levered and risk-aware pro-rata and water-filling fill every
winner on every ADL order, so k orders against m winners are k x m fills. The state changes
fill by fill; the log holds one ADL_FILL row per winner per series interval of tape time, later
fills of the interval added to it (``riskengine.reference``, "Logging ADL fills"); the engine
counts the fills and the per-order overshoot. Checked here: the merged rows by hand, the Cython
engine against the reference on random cascades with several orders per interval, the
invariants, the memory of a 100k-account crash in a child process, and the one-line failure
when a log passes its budget.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import config as configs
from riskengine.cli import main
from riskengine.codes import ADL_ORDERS_ID, AdlPolicy, AdlPrice, EventKind
from riskengine.engine import EVENT_ROW_BYTES, MAX_EVENTS_ENV, RunTooLarge, event_budget, run, run_raw
from riskengine.invariants import violations
from riskengine.metrics import RunContext, summarize
from riskengine.params import EngineParams
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import Adl, Margin, Mark, VenueDesign

from _scenarios import assert_same_run, events, run_both, scenario

S = 1_000_000_000
WEIGHTED = [p for p in AdlPolicy if AdlPolicy.PRO_RATA <= p <= AdlPolicy.WATER_FILLING]
#: policies that fill every winner on every order (water-filling fills the most levered only)
EVERY_WINNER = [p for p in WEIGHTED if p != AdlPolicy.WATER_FILLING]


# ------------------------------------------------------------------------------ by hand
def two_bankrupt_longs():
    """Mark 100 -> 90. Longs 0 (1 @ 100, collateral 5: bankruptcy price 95, deficit 5) and
    1 (2 @ 100, collateral 6: bankruptcy 97, deficit 14) go bankrupt at tick 1; shorts 2
    (3 @ 100, collateral 100) and 3 (1 @ 100, collateral 100) are the winners."""
    return scenario([100.0, 90.0], [(5.0, 1.0, 100.0), (6.0, 2.0, 100.0),
                                     (100.0, -3.0, 100.0), (100.0, -1.0, 100.0)])


def pro_rata_params(policy=AdlPolicy.PRO_RATA):
    return EngineParams(mm_floors=[0.0], mm_rates=[0.005], adl_policy=policy,
                        adl_price=AdlPrice.BANKRUPTCY)


def test_one_row_per_winner_per_interval_by_hand():
    sc = two_bankrupt_longs()
    raw = run_both(sc, pro_rata_params())
    # Order of account 0 (size 1 at 95) by size 3 : 1 -> 0.75 and 0.25, haircut 5 a unit.
    # Order of account 1 (size 2 at 97) by the sizes left, 2.25 : 0.75 -> 1.5 and 0.5, 7 a unit.
    # Each winner's two fills share the row of its first: sizes, notionals and haircuts summed.
    notional2, notional3 = 0.75 * 95 + 1.5 * 97, 0.25 * 95 + 0.5 * 97
    rows = [(e["kind"], e["account"], e["counterparty"]) for e in events(raw)]
    assert rows == [(EventKind.ADL_FILL, 2, ADL_ORDERS_ID), (EventKind.ADL_FILL, 3, ADL_ORDERS_ID),
                    (EventKind.ADL_LIQUIDATION, 0, -2), (EventKind.ADL_LIQUIDATION, 1, -2)]
    fill2, fill3, order0, order1 = events(raw)
    assert fill2["size"] == pytest.approx(-2.25) and fill3["size"] == pytest.approx(-0.75)
    assert fill2["notional"] == pytest.approx(notional2) and fill3["notional"] == pytest.approx(notional3)
    assert fill2["price"] == pytest.approx(notional2 / 2.25) and fill3["price"] == pytest.approx(notional3 / 0.75)
    assert fill2["amount"] == pytest.approx(0.75 * 5 + 1.5 * 7) and fill3["amount"] == pytest.approx(0.25 * 5 + 0.5 * 7)
    # equity after the winner's last fill: 130 and 110 at mark 90, less the haircuts
    assert fill2["equity_after"] == pytest.approx(130 - 14.25) and fill3["equity_after"] == pytest.approx(110 - 4.75)
    assert (fill2["tick"], fill2["round"]) == (1, 0)
    assert [order0["amount"], order1["amount"]] == [pytest.approx(5.0), pytest.approx(14.0)]
    # the state is the fill-by-fill state: positions and collateral of the winners
    np.testing.assert_allclose(raw.size, [0.0, 0.0, -0.75, -0.25], atol=1e-12)
    np.testing.assert_allclose(raw.collateral[2:], [100 + 0.75 * 5 + 1.5 * 3, 100 + 0.25 * 5 + 0.5 * 3])
    assert raw.scalars["adl_fills"] == 4
    row = summarize(RunContext(raw, "s", "d", "cython", 4, 4, int(sc.tape.ts[0]), 0.0, 0.0, 1.0))
    assert row["adl_fills"] == 4 and row["adl_accounts"] == 2
    assert row["adl_haircut"] == pytest.approx(19.0) and row["adl_deficit_covered"] == pytest.approx(19.0)
    assert row["adl_notional"] == pytest.approx(notional2 + notional3)
    assert row["adl_overshoot"] == pytest.approx(0.0, abs=1e-9)
    assert violations(raw, sc.population, pro_rata_params()) == []


def test_one_order_keeps_its_own_rows():
    """An interval with one ADL order logs exactly what per-fill logging did: nothing to merge."""
    sc = scenario([100.0, 90.0], [(5.0, 1.0, 100.0), (100.0, -3.0, 100.0), (100.0, -1.0, 100.0)])
    raw = run_both(sc, pro_rata_params())
    fills = [e for e in events(raw) if e["kind"] == EventKind.ADL_FILL]
    assert [(f["account"], f["counterparty"]) for f in fills] == [(1, 0), (2, 0)]
    assert [f["price"] for f in fills] == [95.0, 95.0]
    assert [f["notional"] for f in fills] == [0.75 * 95.0, 0.25 * 95.0]
    assert raw.scalars["adl_fills"] == 2


def test_queue_logs_every_fill():
    """The queue keeps one row per fill: a winner hit by two orders in an interval has two rows."""
    sc = two_bankrupt_longs()
    p = EngineParams(mm_floors=[0.0], mm_rates=[0.005], adl_policy=AdlPolicy.QUEUE,
                     adl_price=AdlPrice.BANKRUPTCY)
    raw = run_both(sc, p)
    fills = [e["account"] for e in events(raw) if e["kind"] == EventKind.ADL_FILL]
    assert len(fills) == raw.scalars["adl_fills"] == 2 and len(set(fills)) == 1


def test_overshoot_is_per_order():
    """Previous-mark ADL after a fall: each of two orders overshoots its own deficit; the
    scalar sums the per-order overshoots, which the merged rows alone could not give."""
    sc = two_bankrupt_longs()
    p = dataclasses.replace(pro_rata_params(), adl_price=AdlPrice.PREVIOUS_MARK)
    raw = run_both(sc, p)
    # closed at 100: every unit costs the winners 10 against mark 90; deficits 5 and 14
    assert raw.scalars["adl_overshoot"] == pytest.approx((10 - 5) + (20 - 14))


def test_fills_of_later_ticks_join_the_interval_row():
    """Long 0 goes bankrupt at tick 1 (mark 90), long 1 (2 @ 100, collateral 25: bankruptcy
    87.5) only at tick 2 (mark 80). One-second intervals log each winner at both ticks; a 10 s
    interval holds both ticks, so each winner keeps one row with both orders' fills."""
    sc = scenario([100.0, 90.0, 80.0], [(5.0, 1.0, 100.0), (25.0, 2.0, 100.0),
                                        (100.0, -3.0, 100.0), (100.0, -1.0, 100.0)])
    per_tick = run_both(sc, pro_rata_params())
    p = dataclasses.replace(pro_rata_params(), series_interval_ns=10 * S)
    merged = run_both(sc, p)
    rows = {}
    for name, raw in (("per_tick", per_tick), ("merged", merged)):
        ev = raw.events
        fills = ev["kind"] == EventKind.ADL_FILL
        rows[name] = list(zip(ev["tick"][fills].tolist(), ev["account"][fills].tolist(),
                              ev["counterparty"][fills].tolist()))
        assert raw.scalars["adl_fills"] == 4
        assert violations(raw, sc.population, p if name == "merged" else pro_rata_params()) == []
    assert rows["per_tick"] == [(1, 2, 0), (1, 3, 0), (2, 2, 1), (2, 3, 1)]
    assert rows["merged"] == [(1, 2, ADL_ORDERS_ID), (1, 3, ADL_ORDERS_ID)]
    for column in ("size", "notional", "amount"):  # the same fills, summed per winner
        a, b = per_tick.events, merged.events
        fa, fb = a["kind"] == EventKind.ADL_FILL, b["kind"] == EventKind.ADL_FILL
        for account in (2, 3):
            assert b[column][fb & (b["account"] == account)].sum() == pytest.approx(
                a[column][fa & (a["account"] == account)].sum(), rel=1e-12)
    np.testing.assert_array_equal(merged.size, per_tick.size)  # the state is unchanged
    np.testing.assert_array_equal(merged.collateral, per_tick.collateral)


def test_invariant_matches_fills_and_orders_per_interval():
    sc = two_bankrupt_longs()
    p = pro_rata_params()
    raw = run_both(sc, p)
    assert violations(raw, sc.population, p) == []
    raw.events["size"][0] += 0.1  # a fill row that no longer matches the interval's orders
    assert any("ADL orders in series interval 1" in v for v in violations(raw, sc.population, p))


# ------------------------------------------------------------------------------ parity
@st.composite
def cascades(draw):
    """A gap that takes 2-6 leveraged longs through bankruptcy at the same tick (one ADL order
    each, all in one round), against 3-30 profitable shorts large enough to stay open, with
    bystanders, a second gap, a weighted policy, any close price, and a series interval of one
    tick or of the whole tape."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_long, n_short = draw(st.integers(2, 6)), draw(st.integers(3, 30))
    first, second = draw(st.floats(0.05, 0.2)), draw(st.floats(0.0, 0.1))
    prices = [100.0, 100.0 * (1 - first), 100.0 * (1 - first), 100.0 * (1 - first) * (1 - second), 100.0]
    longs = [(s * 100.0 / lev, s, 100.0) for s, lev in zip(rng.uniform(0.5, 3.0, n_long),
                                                           rng.uniform(25.0, 60.0, n_long))]
    shorts = [(s * e / lev, -s, e) for s, e, lev in zip(rng.uniform(20.0, 80.0, n_short),
                                                         rng.uniform(100.0, 104.0, n_short),
                                                         rng.uniform(1.5, 10.0, n_short))]
    bystanders = [(50.0, 0.0, 100.0), (30.0, 0.5, 80.0), (40.0, -0.2, 70.0)]  # flat, long and short at a loss
    accounts = longs + shorts + bystanders
    order = rng.permutation(len(accounts))  # winners before and after the losers in id order
    sc = scenario(prices, [accounts[k] for k in order])
    p = EngineParams(
        mm_floors=[0.0], mm_rates=[draw(st.sampled_from([0.005, 0.01]))],
        adl_policy=draw(st.sampled_from(WEIGHTED)), adl_price=draw(st.sampled_from(list(AdlPrice))),
        adl_risk_power=draw(st.sampled_from([0.0, 1.0, 2.5])),
        adl_on_negative_equity=draw(st.booleans()), liq_limit_bankruptcy=draw(st.booleans()),
        partial_fraction=draw(st.sampled_from([1.0, 0.5])), partial_threshold=0.0,
        fund_initial=draw(st.sampled_from([0.0, 1.0])),
        depth_per_pct=draw(st.sampled_from([np.inf, 500.0, 5_000.0])), impact_feedback=0.5,
        series_interval_ns=draw(st.sampled_from([S, 10 * S])))
    return sc, p


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=cascades())
def test_merged_rows_match_the_reference(cases):
    sc, p = cases
    cy, _ = run_raw(sc, p, "cython")
    ref, _ = run_raw(sc, p, "reference")
    assert_same_run(cy, ref)
    assert violations(cy, sc.population, p) == []
    ev = cy.events
    fills = ev["kind"] == EventKind.ADL_FILL
    interval = (ev["ts"][fills] - sc.tape.ts[0]) // p.series_interval_ns
    pairs = interval * (len(sc.population) + 1) + ev["account"][fills]
    assert len(np.unique(pairs)) == fills.sum()  # one row per winner per series interval
    orders_at = np.bincount(ev["tick"][ev["kind"] == EventKind.ADL_LIQUIDATION], minlength=len(sc.tape))
    assert orders_at.max() >= 2  # the gap made several orders at one tick ...
    assert cy.scalars["adl_fills"] >= fills.sum()
    if p.adl_policy in EVERY_WINNER:  # ... whose fills of the same winners were merged
        assert cy.scalars["adl_fills"] > fills.sum()
        assert (ev["counterparty"][fills] == ADL_ORDERS_ID).any()


# ------------------------------------------------------------------------------ memory at scale
ACCOUNTS = 100_000
#: stated bound on the peak resident memory of the 100k-account crash (imports included);
#: measured 140-170 MB; per-fill rows would need 0.6 GB (water-filling: it cuts the ~11k most
#: levered winners an order) to 5.5 GB (pro-rata) for the log alone
PEAK_MB = 400.0


def gap_crash(accounts: int = ACCOUNTS, losers: int = 600, seed: int = 5) -> Scenario:
    """Four 4% gap-downs over 400 one-second ticks; ``losers`` longs at 25-60x are taken
    through bankruptcy by them (one ADL order each, ~150 orders a gap), every other account is
    a short in profit at 2-20x (the winners, ~99k)."""
    rng = np.random.default_rng(seed)
    price = np.full(400, 100.0)
    for at in (50, 120, 200, 280):
        price[at:] *= 0.96
    tape = Tape.from_arrays((np.arange(len(price)) * S).astype(np.int64), price)
    n_short = accounts - losers
    size = np.concatenate([rng.uniform(0.5, 5.0, losers), -rng.lognormal(0.0, 0.8, n_short)])
    entry = 100.0 * np.exp(rng.normal(0.0, 0.003, accounts))
    lev = np.concatenate([rng.uniform(25.0, 60.0, losers), rng.uniform(2.0, 20.0, n_short)])
    return Scenario("gap-crash", tape, Population.from_arrays(np.abs(size) * entry / lev, size, entry))


def _child(policy: str) -> None:
    """Run the crash in this (fresh) process and print what the parent checks, as JSON."""
    from riskengine.bench import peak_memory_mb

    sc = gap_crash()
    p = EngineParams(mm_floors=[0.0], mm_rates=[0.005], adl_policy=AdlPolicy[policy],
                     adl_price=AdlPrice.BANKRUPTCY)
    raw, seconds = run_raw(sc, p, "cython", max_events=0)
    kind = raw.events["kind"]
    print(json.dumps({
        "peak_mb": peak_memory_mb(), "seconds": seconds, "rows": int(len(kind)),
        "fill_rows": int((kind == EventKind.ADL_FILL).sum()),
        "orders": int((kind == EventKind.ADL_LIQUIDATION).sum()),
        "fills": int(raw.scalars["adl_fills"]), "violations": violations(raw, sc.population, p),
    }))


@pytest.mark.parametrize("policy", ["PRO_RATA", "WATER_FILLING"])
def test_100k_account_crash_stays_within_memory(policy):
    out = subprocess.run([sys.executable, __file__, policy], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent, timeout=300)
    got = json.loads(out.stdout)
    assert got["violations"] == []
    assert got["orders"] > 500  # ~150 ADL orders at each gap
    assert got["peak_mb"] < PEAK_MB, got
    assert got["fill_rows"] <= 4 * (ACCOUNTS - 600)  # one row per winner per (1 s) interval with ADL
    # the fills are real and many: logged one row each they alone would pass the bound
    assert got["fills"] * EVENT_ROW_BYTES > PEAK_MB * 2**20
    if policy == "PRO_RATA":  # every winner on every order: ~600 orders x 99k winners
        assert got["fills"] > 500 * (ACCOUNTS - 600)


# ------------------------------------------------------------------------------ the budget
def test_a_log_past_its_budget_stops_with_one_line():
    design = VenueDesign(name="pr", margin=Margin(floors=(0.0,), rates=(0.005,)), mark=Mark(method="last"),
                         adl=Adl(policy="pro-rata", price="bankruptcy"))
    sc = gap_crash(accounts=3_000, losers=60)
    with pytest.raises(RunTooLarge) as err:
        run(sc, design, max_events=500)
    message = str(err.value)
    assert "\n" not in message
    for part in ("design 'pr'", "ADL policy pro-rata", "3,000 accounts", "budget of 500 rows",
                 "fewer accounts", MAX_EVENTS_ENV):
        assert part in message
    assert len(run(sc, design, max_events=0).events) > 500  # no budget: the same run completes


def test_cli_reports_the_budget_without_a_traceback(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "prorata.toml"
    cfg.write_text(
        '[scenario]\nname = "small-crash"\nsynthetic = { ticks = 20_000, seed = 7 }\n'
        '[population]\naccounts = 2_000\nseed = 8\n'
        '[liquidity]\ndepth_per_pct = 5e6\n'
        '[[venues]]\npreset = "hyperliquid"\nname = "hl-pro-rata"\nbackstop = { ratio = 0 }\n'
        'adl = { policy = "pro-rata" }\n')
    configs.load(cfg)  # a valid config: the failure is the run's size, not the file
    monkeypatch.setenv(MAX_EVENTS_ENV, "1000")
    assert main(["run", str(cfg), "--no-output"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("riskengine: error: out of memory: design 'hl-pro-rata' (ADL policy pro-rata, "
                          "2,000 accounts, 20,000 ticks): the event log passed its budget of 1,000 rows")
    monkeypatch.setenv(MAX_EVENTS_ENV, "lots")
    assert main(["run", str(cfg), "--no-output"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"riskengine: error: ${MAX_EVENTS_ENV}: expected a whole number of rows >= 0 (got 'lots')")


def test_default_budget_is_a_share_of_available_memory(monkeypatch):
    monkeypatch.delenv(MAX_EVENTS_ENV, raising=False)
    rows = event_budget()
    assert rows * EVENT_ROW_BYTES > 100 * 2**20  # this machine has more than 300 MB free
    monkeypatch.setenv(MAX_EVENTS_ENV, "1_000")
    assert event_budget() == 1000


if __name__ == "__main__":
    _child(sys.argv[1])
