"""The backstop vault's loss threshold and the insurance fund's capacity, audited on random runs.

Hypothesis draws scenarios from the parity test's generator with the mark = the last simulated
price and no price feedback from fills, so the mark at every event is the tick's tape price and
both inventories can be rebuilt from the event log alone (nothing here reads engine internals):

* the vault (``BACKSTOP`` takes a position at the mark with the account's equity;
  ``VAULT_UNWIND`` and the vault's ``ADL_LIQUIDATION`` close part of it): whenever its loss at
  the mark passes the threshold while it holds inventory — after a takeover, an unwind or the
  re-mark at a new tick — the very next thing it does is deleverage its whole inventory; it is
  never deleveraged before; and it takes nothing over while beyond its threshold;
* the fund (``FUND_TAKEOVER`` takes a remainder at the bankruptcy price, ``FUND_UNWIND`` sells):
  right after every takeover (with the deficit payment that may follow it) its inventory
  notional at the mark is at most ``fund_capacity`` x its equity.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from riskengine import synthetic, venues
from riskengine.codes import BOOK_ID, FUND_ID, VAULT_ID, AdlPolicy, AdlPrice, EventKind, MarkMethod, Takeover
from riskengine.engine import run_raw
from riskengine.invariants import violations
from riskengine.liquidity import ConstantDepth
from riskengine.params import EngineParams

from _scenarios import events, run_both, scenario
from test_parity import cases
from test_preset_waterfalls import ADL_FILL, ADL_LIQ, LIQ, PARTIAL, PAYMENT, approx, assert_log, ev

#: relative slack of the audits: the state is rebuilt by replaying the log's numbers
TOL = 1e-9


class Inventory:
    """An inventory holder's cash, position and entry, rebuilt with the engines' rules."""

    def __init__(self, cash: float):
        self.cash, self.pos, self.entry = cash, 0.0, 0.0

    def take(self, dq: float, price: float) -> None:
        q = self.pos
        if q == 0.0 or np.sign(q) == np.sign(dq):
            self.entry = (q * self.entry + dq * price) / (q + dq)
            self.pos = q + dq
        elif abs(dq) <= abs(q):
            self.reduce(-dq, price)
        else:
            self.cash += q * (price - self.entry)
            self.pos, self.entry = q + dq, price

    def reduce(self, closed: float, price: float) -> None:
        self.cash += closed * (price - self.entry)
        self.pos -= closed
        if abs(self.pos) <= 1e-12 * abs(closed):
            self.pos = 0.0

    def equity(self, mark: float) -> float:
        return self.cash + self.pos * (mark - self.entry)


def _closes(params) -> bool:
    return params.adl_policy not in (AdlPolicy.NONE, AdlPolicy.SOCIALIZE)


def audit_vault(raw, params, prices) -> list[str]:
    """Every breach of the vault rules in the event log (empty: none)."""
    ev = raw.events
    vault = Inventory(params.vault_initial)
    floor = params.vault_initial - params.vault_loss_limit  # below this equity: beyond the threshold
    closes = _closes(params)
    out: list[str] = []
    due = False  # the vault is beyond its threshold with inventory: it must deleverage next
    last_tick = -1

    def scale() -> float:
        return TOL * (abs(vault.pos) * mark + abs(vault.cash) + params.vault_initial + 1.0)

    def beyond() -> bool:
        return vault.equity(mark) < floor - scale()

    def within() -> bool:
        return vault.equity(mark) >= floor + scale()

    for j in range(len(ev["kind"])):
        tick, kind, acct = int(ev["tick"][j]), int(ev["kind"][j]), int(ev["account"][j])
        mark = float(prices[tick])
        if tick != last_tick:  # the re-mark at each tick's first round
            for t in range(last_tick + 1, tick + 1):
                mark = float(prices[t])
                if due:
                    out.append(f"tick {t}: the vault was due to deleverage and did not")
                    return out
                due = closes and vault.pos != 0.0 and beyond()
            last_tick = tick
        vault_adl = kind == EventKind.ADL_LIQUIDATION and acct == VAULT_ID
        vault_unwind = kind == EventKind.VAULT_UNWIND
        if kind == EventKind.ADL_FILL:
            continue  # the winners' side; merged rows of weighted policies may sit earlier
        if due and not (vault_adl or vault_unwind):
            out.append(f"row {j} ({EventKind(kind).name}): the vault is beyond its threshold "
                       f"(equity {vault.equity(mark)!r} < {floor!r}) and did not deleverage first")
            return out
        if vault_adl and not (due or beyond()):
            out.append(f"row {j}: the vault was deleveraged within its threshold "
                       f"(equity {vault.equity(mark)!r} >= {floor!r})")
        if kind == EventKind.BACKSTOP:
            if not within() and vault.equity(mark) < floor:
                out.append(f"row {j}: the vault took an account over beyond its threshold")
            vault.take(float(ev["size"][j]), float(ev["price"][j]))
            vault.cash += float(ev["amount"][j])
        elif vault_adl or vault_unwind:
            vault.reduce(float(ev["size"][j]), float(ev["price"][j]))
        else:
            continue
        if due and vault.pos == 0.0:
            due = False  # deleveraged: the whole inventory is closed
        elif not due:
            due = closes and vault.pos != 0.0 and beyond()
    if due:
        out.append("the run ended with the vault due to deleverage")
    return out


def audit_fund(raw, params, prices) -> list[str]:
    """Every takeover after which the fund's inventory notional at the mark exceeds
    ``fund_capacity`` x its equity."""
    ev = raw.events
    fund = Inventory(params.fund_initial)
    kinds = ev["kind"]
    out: list[str] = []
    n = len(kinds)
    for j in range(n):
        kind = int(kinds[j])
        fund.cash = float(ev["fund_after"][j])  # every row carries the fund's cash after it
        if kind == EventKind.FUND_UNWIND:
            fund.reduce(float(ev["size"][j]), float(ev["price"][j]))
            fund.cash = float(ev["fund_after"][j])
        if kind != EventKind.FUND_TAKEOVER:
            continue
        fund.take(float(ev["size"][j]), float(ev["price"][j]))
        fund.cash = float(ev["fund_after"][j])
        k = j + 1  # the deficit payment of the same account, if any, is part of the takeover
        if k < n and kinds[k] == EventKind.FUND_PAYMENT and ev["account"][k] == ev["account"][j]:
            fund.cash = float(ev["fund_after"][k])
        mark = float(prices[int(ev["tick"][j])])
        notional = abs(fund.pos) * mark
        equity = fund.equity(mark)
        if notional > params.fund_capacity * equity + TOL * (notional + abs(equity) + 1.0):
            out.append(f"row {j}: fund inventory {notional!r} at mark > capacity "
                       f"{params.fund_capacity!r} x equity {equity!r}")
    return out


def _audited(case):
    """The case with the mark at the last price and no price feedback (mark = tape price)."""
    scenario, params = case
    params = dataclasses.replace(params, mark_method=MarkMethod.LAST, impact_feedback=0.0,
                                 observed_ts=None, observed_side=None, observed_notional=None)
    return scenario, params


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), ratio=st.sampled_from([2 / 3, 0.9, 1.0]))
def test_vault_deleverages_at_its_threshold_and_not_before(case, ratio):
    scenario, params = _audited(case)
    params = dataclasses.replace(params, backstop_ratio=ratio)
    prices = scenario.tape.price
    for engine in ("cython", "reference"):
        raw, _ = run_raw(scenario, params, engine)
        np.testing.assert_array_equal(raw.series["sim_price"], raw.series["tape_price"])
        assert audit_vault(raw, params, prices) == [], engine
    vault_adl = (raw.events["kind"] == EventKind.ADL_LIQUIDATION) & (raw.events["account"] == VAULT_ID)
    event(f"vault deleveraged: {bool(vault_adl.any())}")
    event(f"backstop: {bool((raw.events['kind'] == EventKind.BACKSTOP).any())}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_fund_inventory_within_capacity_after_every_takeover(case):
    scenario, params = _audited(case)
    params = dataclasses.replace(params, liq_limit_bankruptcy=True, takeover=Takeover.FUND)
    prices = scenario.tape.price
    for engine in ("cython", "reference"):
        raw, _ = run_raw(scenario, params, engine)
        assert audit_fund(raw, params, prices) == [], engine
    event(f"fund takeover: {bool((raw.events['kind'] == EventKind.FUND_TAKEOVER).any())}")
    event(f"fund account: {bool((raw.events['account'] == FUND_ID).any())}")


def check(raw, sc, params):
    assert violations(raw, sc.population, params) == []


def test_fund_takes_over_only_within_capacity_after_the_deficit_it_will_pay():
    """Reference §1.5: the fund may hold net notional up to 100% of its size, beyond that ADL.
    A partial takeover of an account whose cash is negative leaves it owing its share of that
    cash, which the fund pays right after; the capacity check counts that payment, so the fund's
    inventory stays within capacity x its equity after the takeover."""
    sc = scenario([100.0, 91.0], [(2.0, 10.0, 90.0), (5.0, -1.0, 80.0)])
    base = dict(mm_floors=[0.0], mm_rates=[0.01], liq_limit_bankruptcy=True, takeover=Takeover.FUND,
                fund_capacity=1.0, partial_fraction=0.5, partial_threshold=0.0, depth_per_pct=200.0,
                impact_feedback=0.0, adl_policy=AdlPolicy.QUEUE, adl_on_negative_equity=True,
                adl_price=AdlPrice.BANKRUPTCY, mark_method=MarkMethod.LAST)
    params = EngineParams(**base, fund_initial=262.0)
    raw = run_both(sc, params)
    # t=0, M=100. Account 1: E = 5 - 20 = -15: deleveraged at its bankruptcy price 85 against
    # account 0 (long in profit), which closes 1 at 85, below its entry 90: cash 2 - 5 = -3,
    # equity -3 + 9 x 10 = 87.
    # t=1, M=91. Account 0: E = -3 + 9 = 6 < MM 8.19: a partial order of half, 4.5, limited at
    # its bankruptcy price bk = 90 + 3/9. The book (200 per 1%, from 91) holds
    # 200 x ((91 - bk)/91 / 1%) / 91 = 1.6101 units above bk, filled at (91 + bk) / 2.
    bk = 90.0 + 3.0 / 9.0
    filled = 200.0 * ((91.0 - bk) / 91.0 / 0.01) / 91.0
    fill = 91.0 * (1 - 0.01 * filled * 91.0 / 200.0 / 2)
    assert fill == approx((91.0 + bk) / 2)
    rest = 4.5 - filled
    # The fund would take the rest, 2.8899 at bk: notional 2.8899 x 91 = 262.98 against its value
    # 262 + 2.8899 x (91 - bk) = 263.93 — but the takeover leaves the account owing half its -3,
    # 1.5 at most, which the fund pays: 262.43 < 262.98, over capacity. So the rest is
    # deleveraged; no short is in profit, so it goes to the book, from 91 again (no feedback):
    # fill 91 x (1 - 0.01 x rest x 91 / 200 / 2). The account's cash, -3 + both realized, is
    # paid by the fund.
    assert rest * 91.0 > 262.0 + rest * (91.0 - bk) - 1.5 and rest * 91.0 <= 262.0 + rest * (91.0 - bk)
    fill2 = 91.0 * (1 - 0.01 * rest * 91.0 / 200.0 / 2)
    cash = -3.0 + filled * (fill - 90.0) + rest * (fill2 - 90.0)
    assert_log(raw, [
        ev(0, ADL_FILL, 0, 1, 1.0, 85.0, 0.0, 15.0, 87.0, 262.0),
        ev(0, ADL_LIQ, 1, BOOK_ID, -1.0, 85.0, 0.0, 15.0, 0.0, 262.0),
        ev(1, PARTIAL, 0, BOOK_ID, filled, fill, 0.0, filled * (fill - 90.0),
           -3.0 + filled * (fill - 90.0) + (9.0 - filled), 262.0),
        ev(1, LIQ, 0, BOOK_ID, rest, fill2, 0.0, rest * (fill2 - 90.0), cash + 4.5, 262.0),
        ev(1, PAYMENT, 0, BOOK_ID, 0.0, 0.0, 0.0, -cash, 4.5, 262.0 + cash),
    ])
    assert audit_fund(raw, params, sc.tape.price) == []
    check(raw, sc, params)
    # A fund of 270 carries it: 270 + 1.93 - 1.5 >= 262.98; after paying the 0.96 the account
    # owes, it holds 262.98 of inventory against an equity of 270.96.
    bigger = EngineParams(**base, fund_initial=270.0)
    raw = run_both(sc, bigger)
    assert [EventKind(e["kind"]).name for e in events(raw)][2:] == ["PARTIAL_LIQUIDATION", "FUND_TAKEOVER",
                                                                    "FUND_PAYMENT"]
    assert raw.scalars["fund_pos"] == approx(rest)
    assert audit_fund(raw, bigger, sc.tape.price) == []
    check(raw, sc, bigger)


BALANCES = (0.0, 1e5, 5e6)


def _hyperliquid_runs(loaded, balances=BALANCES):
    """The config's scenario under the Hyperliquid preset with each vault balance."""
    from riskengine import backtest, config

    data = loaded.config.model_dump(mode="json", exclude_unset=True)
    data["venues"] = [{"preset": "hyperliquid", "name": f"vault-{b:g}", "backstop": {"vault_balance": b}}
                      for b in balances]
    return backtest.run_config(config.parse(data, base_dir=loaded.base_dir)).table.set_index("design")


def test_the_vault_balance_changes_the_default_scenario():
    """The embedded default scenario under the Hyperliquid preset with a vault of 0, 1e5 and 5e6
    (each vault's threshold its balance): the smaller the vault, the sooner its inventory is
    deleveraged, the fewer accounts it takes over and the more ADL. (Before the threshold was
    tied to the balance all three runs were the same: 24,173 takeovers, -8.7M of vault PnL.)"""
    from riskengine import config

    table = _hyperliquid_runs(config.load_default())
    rows = [table.loc[f"vault-{b:g}"] for b in BALANCES]
    assert [r["vault_loss_limit"] for r in rows] == list(BALANCES)
    for a, b in zip(rows, rows[1:]):  # a: the smaller vault
        assert a["backstop_liquidations"] < b["backstop_liquidations"]
        assert a["first_adl_s"] < b["first_adl_s"]
        assert a["adl_notional"] > b["adl_notional"]
        assert a["vault_pnl"] > b["vault_pnl"]  # a smaller loss
    for balance, row in zip(BALANCES, rows):
        assert row["vault_adl_notional"] > 0  # each vault reached its threshold ...
        assert -row["vault_pnl"] > balance
        # ... and passed it by a few thousand at most (a one-tick re-mark of its inventory);
        # without a threshold the vault lost 8.7M whatever its balance
        assert -row["vault_pnl"] - balance < 5_000.0


@pytest.mark.parametrize("balance", BALANCES)
def test_vault_threshold_rule_on_a_synthetic_crash(balance):
    """The audit above on a 20,000-account synthetic crash under the Hyperliquid preset, with the
    mark at the last price and a book without feedback (so the mark is the tape price): at every
    takeover, unwind and tick the vault deleverages exactly when its loss passes its balance.
    The book is thin (50,000 per 1%), so market orders leave deficits and the vault steps in."""
    sc = synthetic.crash_scenario(ticks=20_000, accounts=20_000, seed=5)
    design = venues.preset("hyperliquid").with_overrides(
        {"backstop": {"vault_balance": balance}, "mark": {"method": "last"}})
    params = design.engine_params(ConstantDepth(depth_per_pct=5e4, feedback=0.0), 10.0)
    raw, _ = run_raw(sc, params, "cython")
    assert violations(raw, sc.population, params) == []  # money and positions conserved
    assert audit_vault(raw, params, sc.tape.price) == []
    ev = raw.events
    assert ((ev["kind"] == EventKind.ADL_LIQUIDATION) & (ev["account"] == VAULT_ID)).any()
    assert (ev["kind"] == EventKind.BACKSTOP).any()


def test_binance_fund_within_capacity_on_a_synthetic_crash():
    """The fund audit on a 20,000-account synthetic crash under the Binance preset (capacity 1x,
    mark at the last price, a book without feedback): after every takeover its inventory at the
    mark is at most its equity; the remainders it cannot carry are deleveraged."""
    sc = synthetic.crash_scenario(ticks=20_000, accounts=20_000, seed=5)
    design = venues.preset("binance-usdm").with_overrides({"fund": {"initial": 1e5}, "mark": {"method": "last"}})
    assert design.fund.capacity == 1.0
    params = design.engine_params(ConstantDepth(depth_per_pct=2e5, feedback=0.0), 10.0)
    raw, _ = run_raw(sc, params, "cython")
    assert violations(raw, sc.population, params) == []
    assert audit_fund(raw, params, sc.tape.price) == []
    kinds = raw.events["kind"]
    assert (kinds == EventKind.FUND_TAKEOVER).sum() > 100 and (kinds == EventKind.ADL_LIQUIDATION).sum() > 100
