"""The reference engine on portfolios (issue 12, step 1): several instruments, each with its own
tape, merged in time; margin accounts in CSR form, here at most one position each (a user's
isolated positions in several instruments; cross accounts with several positions, step 2:
``tests/test_cross_accounts.py``); one fund and one vault behind every instrument.

Hand-worked scenarios have their arithmetic in comments (maintenance margin 5% of notional,
infinite depth unless stated: a liquidation fills at the mark). The property test draws random
2-4 instrument scenarios under every preset and random designs, and checks the invariants
(money across instruments, positions per instrument), isolation (a margin account changes only
through events naming it) and determinism.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import synthetic, venues
from riskengine.codes import FUND_ID, VAULT_ID, AdlPolicy, AdlPrice, EventKind, Status, Takeover
from riskengine.engine import run_raw
from riskengine.engine_inputs import PER_INSTRUMENT_FIELDS
from riskengine.invariants import portfolio_violations
from riskengine.liquidity import ConstantDepth
from riskengine.params import EngineParams
from riskengine.reference import run_portfolio
from riskengine.reference._liquidity import Book
from riskengine.runlog import BY_INSTRUMENT, EVENT_COLUMNS, SERIES_COLUMNS

import test_parity as tp

S = 1_000_000_000
T0 = 1_700_000_000 * S
K = EventKind


def params(**kw) -> EngineParams:
    """A plain design: maintenance margin 5% of notional, mark = last, no fee, no ADL."""
    base = dict(mm_floors=[0.0], mm_rates=[0.05], adl_policy=AdlPolicy.NONE, series_interval_ns=S)
    return EngineParams(**{**base, **kw})


def merge(tapes: list[tuple[list[int], list[float]]]):
    """The instruments' tapes merged by time (stable: equal times in instrument order, then each
    tape's own order), as the engine takes them; tape times in seconds from T0."""
    ts = np.concatenate([T0 + np.asarray(t, dtype=np.int64) * S for t, _ in tapes])
    inst = np.concatenate([np.full(len(t), k, dtype=np.int32) for k, (t, _) in enumerate(tapes)])
    price = np.concatenate([np.asarray(p, dtype=np.float64) for _, p in tapes])
    order = np.lexsort((inst, ts))  # a stable sort: ties keep their order
    return ts[order], inst[order], price[order]


@dataclasses.dataclass
class Accounts:
    """Margin accounts: (user, collateral, instrument or None, size, entry) each."""

    rows: list[tuple[int, float, int | None, float, float]]

    def arrays(self):
        owner = np.array([r[0] for r in self.rows], dtype=np.int64)
        collateral = np.array([r[1] for r in self.rows], dtype=np.float64)
        held = [r for r in self.rows if r[2] is not None]
        start = np.concatenate([[0], np.cumsum([r[2] is not None for r in self.rows])]).astype(np.int64)
        instrument = np.array([r[2] for r in held], dtype=np.int32)
        size = np.array([r[3] for r in held], dtype=np.float64)
        entry = np.array([r[4] for r in held], dtype=np.float64)
        return owner, collateral, start, instrument, size, entry

    def per_account(self):
        """Instrument (-1: none), size and entry per margin account, for the invariants."""
        inst = np.array([-1 if r[2] is None else r[2] for r in self.rows], dtype=np.int32)
        size = np.array([0.0 if r[2] is None else r[3] for r in self.rows])
        entry = np.array([0.0 if r[2] is None else r[4] for r in self.rows])
        return inst, size, entry


def run(tapes, accounts: Accounts, plist: list[EngineParams], stream=None):
    ts, inst, price = merge(tapes)
    stream = np.full(len(ts), np.nan) if stream is None else stream
    owner, collateral, start, instrument, size, entry = accounts.arrays()
    raw = run_portfolio(ts, inst, price, stream, owner, collateral, start, instrument, size, entry, plist)
    a_inst, a_size, a_entry = accounts.per_account()
    assert portfolio_violations(raw, owner, collateral, a_inst, a_size, a_entry, plist[0]) == []
    return raw


def rows(raw, kind=None) -> list[dict]:
    ev = raw.events
    out = [{name: ev[name][j].item() for name, _, _ in EVENT_COLUMNS} for j in range(len(ev["ts"]))]
    return [r for r in out if kind is None or r["kind"] == kind]


# ------------------------------------------------------------------ isolation across instruments


def test_a_crash_in_one_instrument_leaves_the_users_other_position_and_wallet_whole():
    # user 7: a wallet of 1000 (its cross margin account, no position), an isolated long of 1 in
    # instrument 0 with margin 10 (entry 100) and an isolated long of 2 in instrument 1 with
    # margin 10 (entry 50). Instrument 0 crashes to 80 at t=2: equity 10 + 1 x (80 - 100) = -10
    # < MM 0.05 x 80 = 4, so it is liquidated at 80 (realized -20) and the fund pays the
    # deficit of 10 (100 -> 90). Instrument 1 ticks at 50 and 50.5: equity 10 + 2 x 0.5 = 11 >
    # MM 0.05 x 101 = 5.05: untouched, as is the wallet.
    accounts = Accounts([(7, 1000.0, None, 0.0, 0.0), (7, 10.0, 0, 1.0, 100.0), (7, 10.0, 1, 2.0, 50.0)])
    p = params(fund_initial=100.0)
    raw = run([([0, 2], [100.0, 80.0]), ([1, 3], [50.0, 50.5])], accounts, [p, p])
    liq, pay = rows(raw)
    assert (liq["kind"], liq["account"], liq["instrument"], liq["size"], liq["price"], liq["amount"],
            liq["equity_after"], liq["tick"]) == (K.LIQUIDATION, 7, 0, 1.0, 80.0, -20.0, -10.0, 2)
    assert (pay["kind"], pay["account"], pay["instrument"], pay["amount"], pay["fund_after"]) == (
        K.FUND_PAYMENT, 7, 0, 10.0, 90.0)
    assert raw.collateral.tolist() == [1000.0, 0.0, 10.0]  # the wallet and the other margin whole
    assert raw.size.tolist() == [0.0, 0.0, 2.0]
    assert raw.status.tolist() == [Status.FLAT, Status.CLOSED, Status.ACTIVE]
    assert raw.by_instrument["liquidations"].tolist() == [1, 0]
    assert raw.by_instrument["final_mark"].tolist() == [80.0, 50.5]
    assert raw.scalars["fund_final"] == 90.0


def test_a_cross_account_with_two_positions_runs_and_reports_each_position():
    # step 2 takes several positions per cross margin account (tests/test_cross_accounts.py
    # liquidates them): user 7's wallet 100 backs a long of 1 in instrument 0 (entry 100) and a
    # short of 1 in instrument 1 (entry 50). At the marks 100 and 50: E = 100, MM = 0.05 x 100
    # + 0.05 x 50 = 7.5: nothing happens, and both positions are reported as they were.
    ts, inst, price = merge([([0], [100.0]), ([0], [50.0])])
    raw = run_portfolio(ts, inst, price, np.full(2, np.nan), np.array([7]), np.array([100.0]),
                        np.array([0, 2]), np.array([0, 1], dtype=np.int32), np.array([1.0, -1.0]),
                        np.array([100.0, 50.0]), [params(), params()])
    assert len(raw.events["ts"]) == 0
    assert raw.positions_size.tolist() == [1.0, -1.0]
    assert raw.positions_entry.tolist() == [100.0, 50.0]
    assert raw.collateral.tolist() == [100.0]
    assert raw.status.tolist() == [Status.ACTIVE]


def test_bad_portfolio_inputs_are_one_line_errors():
    ts, inst, price = merge([([0], [100.0]), ([0], [50.0])])
    nan = np.full(2, np.nan)
    one = (np.array([7, 7]), np.array([10.0, 10.0]), np.array([0, 1, 2]))
    same_instrument = (np.array([0, 0], dtype=np.int32), np.array([1.0, 1.0]), np.array([100.0, 100.0]))
    cases = [
        # a design-level field that differs between instruments
        ((ts, inst, price, nan, *one, np.array([0, 1], dtype=np.int32), np.ones(2), np.full(2, 100.0)),
         [params(), params(fund_initial=5.0)], r"^params\[1\]\.fund_initial: a venue-design field must be equal"),
        # one user holding one instrument in two margin accounts
        ((ts, inst, price, nan, *one, *same_instrument), [params(), params()],
         r"^positions 0 and 1: account 7 holds instrument 0 twice"),
        # a tick of an instrument without parameters
        ((ts, inst, price, nan, *one, np.array([0, 1], dtype=np.int32), np.ones(2), np.full(2, 100.0)),
         [params()], r"^inst\[1\]: expected an instrument in 0\.\.0"),
    ]
    for args, plist, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            run_portfolio(*args, plist)
        assert "\n" not in str(err.value)


def test_the_repeat_check_without_a_sort_finds_exactly_the_users_holding_an_instrument_twice():
    from riskengine.engine_inputs import _may_hold_twice

    def repeated(holder, instrument):  # the sort's answer
        pairs = np.stack([holder, instrument], axis=1)
        return len(np.unique(pairs, axis=0)) < len(pairs)

    # user 0 holds instrument 3 twice and nothing else: 2^3 + 2^3 = 2^4 has one bit for two
    # positions (a carry), where distinct instruments 3 and 4 would have two
    assert _may_hold_twice(np.array([0, 0]), np.array([3, 3]), 15)
    assert not _may_hold_twice(np.array([0, 0]), np.array([3, 4]), 15)
    # 3 + 3 + 4 positions: 2^3 + 2^3 + 2^4 = 2^5 (two carries), 3 bits expected
    assert _may_hold_twice(np.array([5, 5, 5]), np.array([3, 3, 4]), 15)
    rng = np.random.default_rng(3)
    for n_inst in (1, 2, 15, 48):
        for _ in range(50):
            p = int(rng.integers(1, 40))
            holder = rng.integers(0, 12, p)
            instrument = rng.integers(0, n_inst, p)
            assert _may_hold_twice(holder, instrument, n_inst) == repeated(holder, instrument)
    # past 48 instruments, or with ids the count cannot index, the sort decides
    assert _may_hold_twice(np.array([0]), np.array([0]), 49)
    assert _may_hold_twice(np.array([-1]), np.array([0]), 2)


def test_per_instrument_fields_may_differ_and_name_real_fields():
    names = {f.name for f in dataclasses.fields(EngineParams)}
    assert PER_INSTRUMENT_FIELDS <= names
    # instrument 1 has a 10% margin rate: its long of 1 at entry 100 with margin 10 crosses at
    # 95 (10 - 5 = 5 < 9.5), while the same position in instrument 0 (5%: MM 4.75) does not
    accounts = Accounts([(1, 10.0, 0, 1.0, 100.0), (2, 10.0, 1, 1.0, 100.0)])
    raw = run([([0, 1], [100.0, 95.0]), ([0, 1], [100.0, 95.0])], accounts,
              [params(), params(mm_rates=[0.10])])
    assert [(r["account"], r["instrument"]) for r in rows(raw, K.LIQUIDATION)] == [(2, 1)]


# ------------------------------------------------------------------ books decay lazily


def test_lazy_decay_of_another_instruments_impact_equals_eager_decay():
    # Instrument 0 has a book of 10,000 per 1% (both sides) and a 10 s impact half-life;
    # latency 3 s. A (long 10 at 100, margin 100) crosses at 94 (40 < MM 47) at t=1, due at
    # t=4, and is sold at instrument 0's own tick at t=4: notional 940 moves the price
    # 0.01 x 940 / 10,000 = 0.094% and fills half that away, at 94 x (1 - 0.00047); the
    # impact m = 1 - 0.00094 stays. At t=5 (tape 89) m has decayed by 1 s: B (long 10 at 100,
    # margin 150) crosses at S = 89 m (150 - 110 = 40 < 44.5), due at t=8 -- a tick of
    # instrument 1, which ticks at t=6, 7, 8, 9. B's sale walks book 0 after bringing it from
    # t=5 to t=8 in one step; decaying it at each of instrument 1's ticks (eagerly) gives the
    # same fill to 1e-12.
    depth = 10_000.0
    p0 = params(depth_per_pct=depth, impact_half_life_ns=10.0 * S, latency_ns=3 * S, fund_initial=1e6)
    p1 = dataclasses.replace(p0, depth_per_pct=math.inf)
    accounts = Accounts([(1, 100.0, 0, 10.0, 100.0), (2, 150.0, 0, 10.0, 100.0)])
    raw = run([([0, 1, 4, 5], [100.0, 94.0, 94.0, 89.0]), ([6, 7, 8, 9], [50.0] * 4)], accounts, [p0, p1])
    a, b = rows(raw, K.LIQUIDATION)
    assert (a["account"], a["ts"], b["account"], b["ts"], b["instrument"]) == (1, T0 + 4 * S, 2, T0 + 8 * S, 0)
    assert a["price"] == pytest.approx(94.0 * (1 - 0.00047), rel=1e-12)
    ts, inst, _ = merge([([0, 1, 4, 5], [0.0] * 4), ([6, 7, 8, 9], [0.0] * 4)])
    assert inst[b["tick"]] == 1  # walked at a tick of the other instrument

    eager = Book(p0)
    fill, move = eager.walk(-1.0, 10.0, 94.0, 94.0)
    eager.commit(-1.0, move, 10.0 * fill)
    assert fill == a["price"]
    for _ in range(4):  # t=5 (its own tick), then instrument 1's ticks at t=6, 7, 8
        eager.decay(S)
    s_eager = 89.0 * eager.m
    expected = s_eager * (1 - 0.01 * 10.0 * s_eager / depth / 2)
    assert b["price"] == pytest.approx(expected, rel=1e-12)
    undecayed_m = 1.0 + (eager.m - 1.0) / math.exp(-3 * math.log(2) / 10)  # m at t=5
    assert abs(b["price"] - 89.0 * undecayed_m * (1 - 0.01 * 10.0 * 89.0 * undecayed_m / depth / 2)) > 1e-3


def test_an_order_on_another_instruments_tick_sees_that_books_snapshot_at_the_tick():
    # Instrument 0's book holds 1e6 per 1% until t=6 and 1e3 per 1% from t=6 on; it never ticks
    # after t=1, so only the catch-up before B's order (at instrument 1's tick at t=8, latency
    # 7 s) switches it: the fill of 10 at 94 moves 0.01 x 940 / 1,000 = 0.94% (half on average).
    curve = dict(depth_ts=np.array([0, T0 + 6 * S]), depth_pct=np.ones((2, 2, 1)),
                 depth_notional=np.array([[[1e6], [1e6]], [[1e3], [1e3]]]))
    p0 = params(latency_ns=7 * S, fund_initial=1e6, **curve)
    p1 = params(latency_ns=7 * S, fund_initial=1e6)
    raw = run([([0, 1], [100.0, 94.0]), ([5, 8], [50.0, 50.0])], Accounts([(1, 100.0, 0, 10.0, 100.0)]), [p0, p1])
    (liq,) = rows(raw, K.LIQUIDATION)
    assert liq["ts"] == T0 + 8 * S
    assert liq["price"] == pytest.approx(94.0 * (1 - 0.0047), rel=1e-12)


def test_a_mark_follows_its_book_at_the_next_round_of_any_instrument():
    # One liquidation per tick (max_liqs_per_step 1). At t=1 A (long 10 at 100, margin 100) is
    # sold at instrument 0's tick at 94 into a book of 10,000 per 1%: S_0 = 94 x (1 - 0.00094),
    # and the tick ends at the cap, before a round that would refresh the mark (sample at t=1:
    # mark 94). At t=2 instrument 1 ticks: its first round refreshes every mark, so instrument
    # 0's mark is S_0, whose book was not read since t=1 (no decay yet: lazy).
    p0 = params(depth_per_pct=10_000.0, max_liqs_per_step=1, fund_initial=1e6)
    p1 = dataclasses.replace(p0, depth_per_pct=math.inf)
    raw = run([([0, 1], [100.0, 94.0]), ([2], [50.0])], Accounts([(1, 100.0, 0, 10.0, 100.0)]), [p0, p1])
    se = raw.series
    first = (se["instrument"] == 0) & (se["ts"] == T0 + S)
    later = (se["instrument"] == 0) & (se["ts"] == T0 + 2 * S)
    s_0 = 94.0 * (1 - 0.00094)
    assert se["mark"][first].tolist() == [94.0] and se["sim_price"][first] == pytest.approx(s_0, rel=1e-12)
    assert se["mark"][later] == pytest.approx(s_0, rel=1e-12) and se["sim_price"][later] == se["mark"][later]


# ------------------------------------------------------------------ one vault, one fund


def test_one_vault_holding_three_instruments_deleverages_all_three_at_its_loss_threshold():
    # Vault 1000, loss limit 30 (it deleverages once its equity is below 970), backstop ratio 1:
    # every account that crosses goes to it. In each instrument k a long L_k (10 at 100,
    # margin 100) and a short W_k (-10 at 100, margin 100). At t=1, 2, 3 instrument 0, 1, 2
    # falls to 94: L_k has equity 100 - 60 = 40 < MM 47 and the vault takes 10 at 94 with the
    # 40: cash 1040, 1080, 1120. At t=4 instrument 0 falls to 85: equity 1120 - 90 = 1030. At
    # t=5 instrument 1 falls to 85: 1120 - 90 - 90 = 940 < 970, so all three inventories are
    # auto-deleveraged against W_k at each instrument's mark (85, 85, 94), in instrument order:
    # the vault realizes -90, -90, 0 and ends with cash 940 and no inventory.
    p = params(backstop_ratio=1.0, vault_initial=1000.0, vault_loss_limit=30.0, adl_policy=AdlPolicy.QUEUE,
               adl_price=AdlPrice.MARK, vault_unwind_interval_ns=1000 * S)
    accounts = Accounts([(10 + k, 100.0, k, 10.0, 100.0) for k in range(3)]
                        + [(20 + k, 100.0, k, -10.0, 100.0) for k in range(3)])
    raw = run([([0, 1, 4], [100.0, 94.0, 85.0]), ([0, 2, 5], [100.0, 94.0, 85.0]), ([0, 3], [100.0, 94.0])],
              accounts, [p, p, p])
    backstops = rows(raw, K.BACKSTOP)
    assert [(r["account"], r["instrument"], r["counterparty"], r["amount"]) for r in backstops] == [
        (10, 0, VAULT_ID, 40.0), (11, 1, VAULT_ID, 40.0), (12, 2, VAULT_ID, 40.0)]
    adl = [r for r in rows(raw) if r["kind"] in (K.ADL_FILL, K.ADL_LIQUIDATION)]
    assert [(r["kind"], r["account"], r["instrument"], r["size"], r["price"], r["ts"]) for r in adl] == [
        (K.ADL_FILL, 20, 0, -10.0, 85.0, T0 + 5 * S), (K.ADL_LIQUIDATION, VAULT_ID, 0, 10.0, 85.0, T0 + 5 * S),
        (K.ADL_FILL, 21, 1, -10.0, 85.0, T0 + 5 * S), (K.ADL_LIQUIDATION, VAULT_ID, 1, 10.0, 85.0, T0 + 5 * S),
        (K.ADL_FILL, 22, 2, -10.0, 94.0, T0 + 5 * S), (K.ADL_LIQUIDATION, VAULT_ID, 2, 10.0, 94.0, T0 + 5 * S)]
    assert [r["equity_after"] for r in adl if r["kind"] == K.ADL_LIQUIDATION] == [940.0, 940.0, 940.0]
    assert raw.scalars["vault_col"] == 940.0 and raw.scalars["vault_min"] == 940.0
    assert raw.by_instrument["vault_pos"].tolist() == [0.0, 0.0, 0.0]
    # the winners bought back at the mark: W_0 realizes -10 x (85 - 100) = 150
    assert raw.collateral[3:].tolist() == [250.0, 250.0, 160.0]


def test_the_fund_pays_a_deficit_in_one_instrument_with_fees_earned_in_another():
    # Fund 0, fee 1%. Instrument 1: P (long 10 at 100, margin 100) is liquidated at 94 at t=1:
    # realized -60, fee 0.01 x 940 = 9.4 into the fund. Instrument 2: Q (long 1 at 100, margin
    # 10) is liquidated at 85 at t=2: realized -15, no fee (nothing left), a deficit of 5 the
    # fund pays from those 9.4 (4.4 left). Instrument 0 only ticks. Without P's liquidation
    # (instrument 1 stays at 100) the fund is empty and Q's deficit is bad debt.
    p = params(liq_fee_rate=0.01)
    accounts = Accounts([(1, 100.0, 1, 10.0, 100.0), (2, 10.0, 2, 1.0, 100.0)])

    def replay(p1_crash: float):
        return run([([0], [100.0]), ([0, 1], [100.0, p1_crash]), ([0, 2], [100.0, 85.0])], accounts, [p, p, p])

    raw = replay(94.0)
    fee = rows(raw, K.LIQUIDATION)[0]
    assert (fee["account"], fee["instrument"]) == (1, 1) and fee["fee"] == pytest.approx(9.4, rel=1e-12)
    (pay,) = rows(raw, K.FUND_PAYMENT)
    assert (pay["account"], pay["instrument"]) == (2, 2)
    assert pay["amount"] == pytest.approx(5.0, rel=1e-12) and pay["fund_after"] == pytest.approx(4.4, rel=1e-12)
    assert rows(raw, K.BAD_DEBT) == []
    alone = replay(100.0)
    (debt,) = rows(alone, K.BAD_DEBT)
    assert (debt["account"], debt["instrument"], debt["amount"]) == (2, 2, 5.0)


def test_the_funds_capacity_counts_its_inventory_in_every_instrument():
    # Takeover by the fund at the bankruptcy price, fund 100, capacity 2 x its equity. At t=1
    # instrument 0 falls to 85: A (long 1 at 100, margin 10, bankrupt at 90) cannot be sold
    # above 90, so the fund takes 1 at 90 (equity 100 - 5 = 95, exposure 85 <= 190). At t=2
    # instrument 0 falls to 50 (the fund's inventory: -40). At t=3 instrument 1 falls to 85
    # and B (the same position there) would be taken at 90: equity 100 - 40 - 5 = 55, exposure
    # 50 + 85 = 135 > 2 x 55 = 110, so the fund refuses and B is sold on the book at 85, the
    # fund paying its deficit of 5. Counting instrument 1 alone (equity 95 or exposure 85) it
    # would have taken B; with no capacity limit it does.
    p = params(liq_limit_bankruptcy=True, takeover=Takeover.FUND, fund_initial=100.0, fund_capacity=2.0,
               fund_unwind_interval_ns=1000 * S)
    accounts = Accounts([(1, 10.0, 0, 1.0, 100.0), (2, 10.0, 1, 1.0, 100.0)])
    tapes = [([0, 1, 2], [100.0, 85.0, 50.0]), ([0, 3], [100.0, 85.0])]
    raw = run(tapes, accounts, [p, p])
    assert [(r["kind"], r["account"], r["instrument"], r["price"]) for r in rows(raw)] == [
        (K.FUND_TAKEOVER, 1, 0, 90.0), (K.LIQUIDATION, 2, 1, 85.0), (K.FUND_PAYMENT, 2, 1, 0.0)]
    assert rows(raw, K.FUND_PAYMENT)[0]["amount"] == 5.0 and raw.scalars["fund_final"] == 95.0
    assert raw.by_instrument["fund_pos"].tolist() == [1.0, 0.0]
    unlimited = run(tapes, accounts, [dataclasses.replace(p, fund_capacity=math.inf)] * 2)
    assert [(r["kind"], r["instrument"]) for r in rows(unlimited)] == [(K.FUND_TAKEOVER, 0), (K.FUND_TAKEOVER, 1)]


def test_equal_timestamps_are_processed_in_instrument_order():
    # P (fee 9.4, as above) and Q (deficit 5) crash at the same time t=1. Ticks at one time run
    # in instrument order: with P in instrument 0 its fee is in the fund before Q's deficit
    # (paid); with P in instrument 1 Q comes first and its deficit is bad debt.
    p = params(liq_fee_rate=0.01)
    tapes = [([0, 1], [100.0, 94.0]), ([0, 1], [100.0, 85.0])]
    paid = run(tapes, Accounts([(1, 100.0, 0, 10.0, 100.0), (2, 10.0, 1, 1.0, 100.0)]),
               [p, p])
    liq_p, liq_q, pay = rows(paid)
    assert (liq_p["instrument"], liq_q["instrument"], pay["kind"]) == (0, 1, K.FUND_PAYMENT)
    assert liq_p["ts"] == liq_q["ts"] and liq_q["tick"] == liq_p["tick"] + 1
    tapes = [([0, 1], [100.0, 85.0]), ([0, 1], [100.0, 94.0])]
    unpaid = run(tapes, Accounts([(1, 100.0, 1, 10.0, 100.0), (2, 10.0, 0, 1.0, 100.0)]), [p, p])
    assert [r["kind"] for r in rows(unpaid)] == [K.LIQUIDATION, K.BAD_DEBT, K.LIQUIDATION]
    assert [r["instrument"] for r in rows(unpaid)] == [0, 0, 1]


def test_a_socialized_deficit_is_charged_to_open_positions_in_its_own_instrument():
    # SOCIALIZE, fund 0. Q (long 1 at 100, margin 10) in instrument 0 is liquidated at 85: a
    # deficit of 10 - 15 = -5. The open positions in instrument 0 -- R, short 1 at 100 with
    # margin 50 (equity 65 at 85) -- pay it by size: R pays 5. U, long 1 at 50 in instrument 1,
    # pays nothing: sizes in different instruments are not comparable, and ADL (its
    # alternative) stays in the instrument too.
    p = params(adl_policy=AdlPolicy.SOCIALIZE)
    accounts = Accounts([(1, 10.0, 0, 1.0, 100.0), (2, 50.0, 0, -1.0, 100.0), (3, 50.0, 1, 1.0, 50.0)])
    raw = run([([0, 2], [100.0, 85.0]), ([1, 3], [50.0, 50.0])], accounts, [p, p])
    (soc,) = rows(raw, K.SOCIALIZED_LOSS)
    assert (soc["account"], soc["instrument"], soc["amount"]) == (1, 0, 5.0)
    assert raw.socialized.tolist() == [0.0, 5.0, 0.0]
    assert raw.collateral.tolist() == [0.0, 45.0, 50.0]
    assert rows(raw, K.BAD_DEBT) == []


# ------------------------------------------------------------------ series and scalars


def test_series_sample_one_row_per_instrument():
    # the first scenario above, sampled every second: four samples (t=0..3) of two rows each,
    # instrument 1's prices NaN before its first tick at t=1; fund, vault and counters shared
    accounts = Accounts([(7, 1000.0, None, 0.0, 0.0), (7, 10.0, 0, 1.0, 100.0), (7, 10.0, 1, 2.0, 50.0)])
    p = params(fund_initial=100.0)
    raw = run([([0, 2], [100.0, 80.0]), ([1, 3], [50.0, 50.5])], accounts, [p, p])
    se = raw.series
    assert list(se) == [name for name, _, _ in SERIES_COLUMNS]
    assert se["instrument"].dtype == np.int32
    assert ((se["ts"] - T0) // S).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert se["instrument"].tolist() == [0, 1] * 4
    np.testing.assert_array_equal(se["tape_price"], [100.0, np.nan, 100.0, 50.0, 80.0, 50.0, 80.0, 50.5])
    np.testing.assert_array_equal(se["mark"], se["tape_price"])
    assert se["long_oi"].tolist() == [1.0, 2.0, 1.0, 2.0, 0.0, 2.0, 0.0, 2.0]
    assert se["fund"].tolist() == [100.0, 100.0, 100.0, 100.0, 90.0, 90.0, 90.0, 90.0]
    assert se["cum_liquidations"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_by_instrument_has_every_figure_and_instrument_0_keeps_the_scalars():
    accounts = Accounts([(1, 10.0, 0, 1.0, 100.0), (2, 10.0, 1, -1.0, 50.0), (3, 100.0, 1, 1.0, 50.0)])
    p = params(fund_initial=100.0)
    raw = run([([0, 2], [100.0, 80.0]), ([1, 3], [50.0, 70.0])], accounts, [p, p])
    by = raw.by_instrument
    assert [(name, by[name].dtype.name, len(by[name])) for name, _, _ in BY_INSTRUMENT] == [
        (name, dtype, 2) for name, dtype, _ in BY_INSTRUMENT]
    for name in ("final_mark", "tape_min", "tape_max_drawdown", "ext_pos", "ext_cash"):
        assert by[name][0] == raw.scalars[name], name
    # instrument 0: the long of 1 (margin 10) is liquidated at 80; instrument 1: the short of 1
    # at 50 (margin 10) is liquidated at 70 (equity -10), the long of 1 stays. The external
    # market starts with the other side of every position (instrument 0: -1; instrument 1:
    # +1 - 1 = 0) and takes the other side of each liquidation (+1 in 0, -1 in 1).
    assert by["liquidations"].tolist() == [1, 1]
    assert by["ext_pos"].tolist() == [0.0, -1.0]
    assert by["tape_min"].tolist() == [80.0, 50.0]
    assert by["tape_max_drawdown"][0] == pytest.approx(0.2, rel=1e-12) and by["tape_max_drawdown"][1] == 0.0
    assert by["final_mark"].tolist() == [80.0, 70.0]


def test_a_single_instrument_run_has_instrument_0_everywhere():
    sc = synthetic.crash_scenario(ticks=1_500, accounts=300, seed=4)
    prm = synthetic.binance_style().engine_params(ConstantDepth(2e6), 5.0)
    raw, _ = run_raw(sc, prm, "reference")
    assert len(raw.events["ts"]) > 0
    assert raw.events["instrument"].dtype == np.int32 and not raw.events["instrument"].any()
    assert not raw.series["instrument"].any()
    assert raw.events_table().column_names == [name for name, _, _ in EVENT_COLUMNS]
    for name in ("final_mark", "fund_pos", "vault_pos", "ext_cash", "tape_min", "sim_max_drawdown"):
        assert raw.by_instrument[name].tolist() == [raw.scalars[name]], name
    assert raw.by_instrument["liquidations"].tolist() == [raw.series["cum_liquidations"][-1]]


def test_portfolio_invariants_catch_a_position_or_money_leak():
    accounts = Accounts([(1, 10.0, 0, 1.0, 100.0), (2, 10.0, 1, -1.0, 50.0)])
    p = params(fund_initial=100.0)
    raw = run([([0, 2], [100.0, 80.0]), ([1, 3], [50.0, 70.0])], accounts, [p, p])
    owner, collateral, _, _, _, _ = accounts.arrays()
    inst, size, entry = accounts.per_account()
    raw.by_instrument["ext_pos"][1] += 0.5
    assert portfolio_violations(raw, owner, collateral, inst, size, entry, p) == [
        "positions in instrument 1 not conserved: accounts + vault + fund + market = 0.5"]
    raw.by_instrument["ext_pos"][1] -= 0.5
    raw.by_instrument["ext_cash"][1] += 1.0
    (line,) = portfolio_violations(raw, owner, collateral, inst, size, entry, p)
    assert line.startswith("money not conserved")


def test_the_event_budget_stops_a_run():
    accounts = Accounts([(1, 10.0, 0, 1.0, 100.0), (2, 10.0, 1, -1.0, 50.0)])
    ts, inst, price = merge([([0, 2], [100.0, 80.0]), ([1, 3], [50.0, 70.0])])
    with pytest.raises(MemoryError, match="budget of 2 rows"):
        run_portfolio(ts, inst, price, np.empty(0), *accounts.arrays(), [params(fund_initial=1.0)] * 2, max_events=2)


# ------------------------------------------------------------------ random portfolios


def _design(draw) -> EngineParams:
    """A preset resolved on a constant book, or the parity tests' random design."""
    name = draw(st.sampled_from([*venues.names(), "random", "random"]))
    if name != "random":
        return venues.preset(name).engine_params(ConstantDepth(50.0), 1.0)
    base = draw(tp.params_strategy(with_stream=True))
    profile = draw(st.sampled_from([None, *sorted(tp.PROFILES)]))
    return dataclasses.replace(base, **tp.PROFILES[profile]) if profile else base


@st.composite
def portfolio_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n_inst = draw(st.integers(2, 4))
    design = _design(draw)
    rng = np.random.default_rng(seed)
    plist, tapes = [], []
    for k in range(n_inst):
        # each instrument its own margin rates, book and order limits
        rates = np.sort(rng.uniform(0.002, 0.08, len(design.mm_floors)))
        depth = draw(st.sampled_from([math.inf, 5.0, 50.0, 500.0]))
        per = dict(mm_rates=rates, depth_per_pct=depth, depth_ts=None, depth_pct=None, depth_notional=None,
                   impact_half_life_ns=float(rng.uniform(0.5, 60)) * S,
                   liq_max_order_notional=draw(st.sampled_from([math.inf, 100.0, 1_000.0])),
                   liq_price_band=draw(st.sampled_from([math.inf, 0.05])))
        if depth == math.inf:
            per.update(observed_ts=None, observed_side=None, observed_notional=None)
        plist.append(dataclasses.replace(design, **per))
        segments = draw(st.lists(st.sampled_from(tp.SEGMENTS), min_size=1, max_size=4))
        tape = tp.make_tape(rng, segments, with_stream=bool(rng.random() < 0.7))
        # whole seconds from a random start: instruments interleave, some at equal times
        ts = T0 + (tape.ts - tape.ts[0]) // S * S + int(rng.integers(0, 20)) * S
        stream = tape.stream if tape.stream is not None else np.full(len(tape), np.nan)
        tapes.append((ts, tape.price, stream))
    ts = np.concatenate([t for t, _, _ in tapes])
    inst = np.concatenate([np.full(len(t), k, dtype=np.int32) for k, (t, _, _) in enumerate(tapes)])
    order = np.lexsort((inst, ts))
    merged = (ts[order], inst[order], np.concatenate([p for _, p, _ in tapes])[order],
              np.concatenate([s for _, _, s in tapes])[order])
    # users holding isolated positions in a random subset of the instruments, some a wallet too
    users = draw(st.integers(1, 25))
    rows_ = []
    for u in range(users):
        if rng.random() < 0.3:
            rows_.append((u, float(rng.uniform(0, 100)), None, 0.0, 0.0))
        for k in np.flatnonzero(rng.random(n_inst) < 0.6):
            pop = tp.make_population(rng, 1, 0.0)
            rows_.append((u, float(pop.collateral[0]), int(k), float(pop.size[0]), float(pop.entry[0])))
    return merged, Accounts(rows_), plist


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolio_cases())
def test_random_portfolios_keep_the_invariants_isolation_and_determinism(case):
    (ts, inst, price, stream), accounts, plist = case
    arrays = accounts.arrays()
    owner, collateral = arrays[0], arrays[1]
    raw = run_portfolio(ts, inst, price, stream, *arrays, plist)
    a_inst, a_size, a_entry = accounts.per_account()
    assert portfolio_violations(raw, owner, collateral, a_inst, a_size, a_entry, plist[0]) == []
    # isolation: a margin account changes only through events naming its user and instrument
    # (or its share of a socialized loss)
    named = set(zip(raw.events["account"].tolist(), raw.events["instrument"].tolist()))
    for m in range(len(owner)):
        if (int(owner[m]), int(a_inst[m])) not in named and raw.socialized[m] == 0.0:
            assert raw.collateral[m] == collateral[m] and raw.size[m] == a_size[m], m
    # every event is about a position its user holds in that instrument, or a ledger's inventory
    held = set(zip(owner.tolist(), a_inst.tolist()))
    assert set(named) <= held | {(VAULT_ID, k) for k in range(len(plist))} | {(FUND_ID, k) for k in range(len(plist))}
    series = raw.series
    assert len(series["ts"]) % len(plist) == 0
    assert series["instrument"].tolist() == list(range(len(plist))) * (len(series["ts"]) // len(plist))
    again = run_portfolio(ts, inst, price, stream, *arrays, plist)
    for name in raw.events:
        assert raw.events[name].tobytes() == again.events[name].tobytes(), name
    for name in raw.series:
        assert raw.series[name].tobytes() == again.series[name].tobytes(), name
    for name in raw.by_instrument:
        assert raw.by_instrument[name].tobytes() == again.by_instrument[name].tobytes(), name
    assert raw.collateral.tobytes() == again.collateral.tobytes()
