"""Parity on portfolios (issue 12, steps 1 to 3): the compiled engine and the reference engine
agree to the last bit on random multi-instrument scenarios, with their funds and vaults shared by
random groups of instruments, and with cross accounts of several positions drawing on those
groups (a cross account's positions may draw on different funds and vaults).

The scenarios are ``tests/test_reference_portfolio.py``'s (built as in ``tests/test_parity.py``:
random tape segments per instrument, random designs with the venue profiles, the presets): 2-4
instruments merged in time (some ticks at equal times), users holding isolated positions in
several of them (long in one, short in another: hedged books; some a wallet only), each
instrument with its own margin rates, book, order cap and price band. Here some instruments also
get a depth curve with stress thinning and observed flow of their own. Both engines' event logs,
series, final margin accounts, scalars and per-instrument figures must be equal to the last bit,
and both runs keep the portfolio invariants.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from riskengine import reference
from riskengine._engine import run_portfolio
from riskengine.codes import CrossOrder, EventKind, FundingPrice
from riskengine.runlog import RawRun

import test_parity as tp
from riskengine.invariants import portfolio_violations
from test_parity import S, T0
from test_reference_portfolio import portfolio_cases
from test_shared_ledgers import grouped_cases


@st.composite
def liquidity_per_instrument(draw):
    """A portfolio case where some instruments trade on a depth curve of their own, thinned by
    recent flow, with observed flow of their own taken out of their ticks."""
    (ts, inst, price, stream), accounts, plist = draw(portfolio_cases())
    out = []
    for p in plist:
        if draw(st.booleans()):
            liquidity = dict(depth_per_pct=math.inf, **draw(tp.depth_curves()),
                             impact_stress_k=draw(st.sampled_from([0.0, 0.3, 3.0])))
            flow = draw(tp.observed_flows()) if draw(st.booleans()) else dict(
                observed_ts=None, observed_side=None, observed_notional=None)
            p = dataclasses.replace(p, **liquidity, **flow)
        out.append(p)
    return (ts, inst, price, stream), accounts, out


def _exactly(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def assert_same_portfolio_run(cy: RawRun, ref: RawRun) -> None:
    """Every column of the event log and series, the final margin accounts, the scalars and the
    per-instrument figures equal to the last bit (NaN equal to NaN)."""
    assert list(cy.events) == list(ref.events) and list(cy.series) == list(ref.series)
    assert len(cy.events["ts"]) == len(ref.events["ts"]), (len(cy.events["ts"]), len(ref.events["ts"]))
    for name in cy.events:
        assert _exactly(cy.events[name], ref.events[name]), f"event column {name!r} differs first at row " \
            f"{int(np.flatnonzero(cy.events[name] != ref.events[name])[0])}"
    for name in cy.series:
        assert _exactly(cy.series[name], ref.series[name]), f"series column {name!r}"
    for name in ("collateral", "size", "entry", "status", "socialized"):
        assert _exactly(getattr(cy, name), getattr(ref, name)), name
    assert set(cy.scalars) == set(ref.scalars)
    for key, value in cy.scalars.items():
        assert np.array_equal(np.float64(value), np.float64(ref.scalars[key]), equal_nan=True), key
    assert set(cy.by_instrument) == set(ref.by_instrument)
    for name, values in cy.by_instrument.items():
        assert _exactly(values, ref.by_instrument[name]), f"by_instrument {name!r}"


def _both(case) -> tuple[RawRun, RawRun]:
    (ts, inst, price, stream), accounts, plist = case
    arrays = accounts.arrays()
    cy = RawRun(**run_portfolio(ts, inst, price, stream, *arrays, plist))
    ref = reference.run_portfolio(ts, inst, price, stream, *arrays, plist)
    a_inst, a_size, a_entry = accounts.per_account()
    for raw in (cy, ref):
        assert portfolio_violations(raw, arrays[0], arrays[1], a_inst, a_size, a_entry, plist[0]) == []
    return cy, ref


def _statistics(cy: RawRun, plist) -> None:
    """Shown by ``--hypothesis-show-statistics``: which event kinds, and whether orders crossed
    instruments within a tick."""
    for kind in sorted(set(cy.events["kind"].tolist())):
        event(f"has {EventKind(kind).name}")
    event(f"instruments {len(plist)}")
    ticks = cy.events["tick"]
    event(f"a tick with events in several instruments: "
          f"{any(len(set(cy.events['instrument'][ticks == t].tolist())) > 1 for t in np.unique(ticks))}")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolio_cases())
def test_compiled_matches_reference_on_random_portfolios(case):
    cy, ref = _both(case)
    assert_same_portfolio_run(cy, ref)
    _statistics(cy, case[2])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(liquidity_per_instrument())
def test_compiled_matches_reference_with_a_book_per_instrument(case):
    cy, ref = _both(case)
    assert_same_portfolio_run(cy, ref)
    _statistics(cy, case[2])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_cases())
def test_compiled_matches_reference_with_funds_and_vaults_shared_by_random_groups(case):
    """Step 3: each instrument draws on a fund and a vault of a random grouping (one for all,
    one each, or anything between)."""
    cy, ref = _both(case)
    assert_same_portfolio_run(cy, ref)
    _statistics(cy, case[2])
    groups = cy.by_instrument["fund_group"], cy.by_instrument["vault_group"]
    event(f"funds {int(groups[0].max()) + 1}, vaults {int(groups[1].max()) + 1} of {len(case[2])}")


# ------------------------------------------------------------------ step 2: cross accounts with several positions


@st.composite
def cross_cases(draw):
    """A portfolio where users hold cross margin accounts with 2-4 positions (issue 12 step 2):
    most of them hedged (a long in one instrument and a short in another that follows it: some
    instruments' tapes are a noisy copy of instrument 0's), with wallets from a fraction of
    their maintenance margin to several times it, so that hedges fail when the legs part, some
    users also holding isolated positions (the cooldown is the user's) or a wallet only; some
    accounts entered at the first prices with a wallet of exactly their maintenance margin (no
    slack: the compiled index's hot list); either ``cross_order``; funds and vaults shared by
    random groups of instruments (step 3), so that a cross account's positions may draw on
    different ledgers."""
    (_, _, _, _), _, plist = draw(grouped_cases())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    order = draw(st.sampled_from(list(CrossOrder)))
    plist = [dataclasses.replace(p, cross_order=order) for p in plist]
    n_inst = len(plist)
    base = tp.make_tape(rng, draw(st.lists(st.sampled_from(tp.SEGMENTS), min_size=1, max_size=4)),
                        with_stream=bool(rng.random() < 0.7))
    tapes = []
    for k in range(n_inst):
        if k == 0 or rng.random() < 0.6:  # follows instrument 0, with noise of its own
            level = float(rng.uniform(0.2, 5.0))
            noise = np.exp(np.cumsum(rng.normal(0, float(rng.choice([0.0005, 0.004, 0.02])), len(base))))
            price = base.price * level * (noise if k else 1.0)
            ts = base.ts
            stream = base.stream * level if base.stream is not None else np.full(len(base), np.nan)
        else:
            tape = tp.make_tape(rng, draw(st.lists(st.sampled_from(tp.SEGMENTS), min_size=1, max_size=4)),
                                with_stream=bool(rng.random() < 0.7))
            price, ts = tape.price, tape.ts
            stream = tape.stream if tape.stream is not None else np.full(len(tape), np.nan)
        ts = T0 + (ts - ts[0]) // S * S + int(rng.integers(0, 5)) * S
        tapes.append((ts, price, stream))
    ts = np.concatenate([t for t, _, _ in tapes])
    inst = np.concatenate([np.full(len(t), k, dtype=np.int32) for k, (t, _, _) in enumerate(tapes)])
    merge_order = np.lexsort((inst, ts))
    merged = (ts[merge_order], inst[merge_order], np.concatenate([p for _, p, _ in tapes])[merge_order],
              np.concatenate([s for _, _, s in tapes])[merge_order])
    first = [float(p[0]) for _, p, _ in tapes]
    rate = [float(p.mm_rates[0]) + 0.002 for p in plist]
    owner, collateral, start, instrument, size, entry = [], [], [0], [], [], []

    def account(user, wallet, positions):
        owner.append(user)
        collateral.append(wallet)
        for k, q, e in positions:
            instrument.append(k)
            size.append(q)
            entry.append(e)
        start.append(len(size))

    for user in range(draw(st.integers(1, 20))):
        held = rng.permutation(n_inst)[:int(rng.integers(2, n_inst + 1))]
        notional = float(rng.lognormal(4.0, 1.0))
        at_margin = rng.random() < 0.15  # entered at the first prices, wallet = MM: no slack
        positions = []
        for j, k in enumerate(held):
            if j == 0:
                side = float(rng.choice([-1.0, 1.0]))
            else:  # hedged: the opposite side of the first leg, mostly
                side = -positions[0][1] / abs(positions[0][1]) if rng.random() < 0.7 else float(rng.choice([-1.0, 1.0]))
            e = first[k] if at_margin else first[k] * float(np.exp(rng.normal(0, 0.02)))
            positions.append((int(k), side * notional * float(rng.uniform(0.5, 1.5)) / e, e))
        if at_margin:
            account(user, sum(plist[k].maintenance_margin(abs(q) * e) for k, q, e in positions), positions)
        else:
            mm = sum(abs(q) * e * rate[k] for k, q, e in positions)
            account(user, mm * float(rng.choice([0.3, 0.8, 1.2, 2.0, 5.0])) * float(rng.uniform(0.8, 1.2)),
                    positions)
        taken = {int(k) for k in held}
        for k in range(n_inst):  # isolated positions of the same user in the instruments left
            if k not in taken and rng.random() < 0.3:
                e = first[k] * float(np.exp(rng.normal(0, 0.02)))
                q = float(rng.choice([-1.0, 1.0])) * notional / e
                account(user, abs(q) * e * float(rng.uniform(0.01, 0.2)), [(k, q, e)])
        if rng.random() < 0.2:
            account(user, float(rng.uniform(0, 100)), [])
    arrays = (np.array(owner, dtype=np.int64), np.array(collateral), np.array(start, dtype=np.int64),
              np.array(instrument, dtype=np.int32), np.array(size), np.array(entry))
    return merged, arrays, plist


def _both_cross(case) -> tuple[RawRun, RawRun]:
    (ts, inst, price, stream), arrays, plist = case
    out = run_portfolio(ts, inst, price, stream, *arrays, plist, index_stats=True)
    stats = out.pop("index_stats")
    event(f"the index: a trigger passed {stats['fired'] > 0}, the hot list {stats['hot'] > 0}")
    cy = RawRun(**out)
    ref = reference.run_portfolio(ts, inst, price, stream, *arrays, plist)
    owner, collateral, start, instrument, size, entry = arrays
    for raw in (cy, ref):
        assert portfolio_violations(raw, owner, collateral, instrument, size, entry, plist[0], start=start) == []
    return cy, ref


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cross_cases())
def test_compiled_matches_reference_on_cross_accounts_with_several_positions(case):
    cy, ref = _both_cross(case)
    assert_same_portfolio_run(cy, ref)
    assert _exactly(cy.positions_size, ref.positions_size) and _exactly(cy.positions_entry, ref.positions_entry)
    _statistics(cy, case[2])
    event(f"cross_order {CrossOrder(case[2][0].cross_order).name}")
    groups = cy.by_instrument["fund_group"], cy.by_instrument["vault_group"]
    event(f"funds {int(groups[0].max()) + 1}, vaults {int(groups[1].max()) + 1} of {len(case[2])}")
    event(f"a backstop hands one account's positions to several vaults: {_backstop_spans_vaults(cy)}")


def _backstop_spans_vaults(raw: RawRun) -> bool:
    """Whether a backstop's rows (consecutive BACKSTOP rows of one account at one tick and round)
    name instruments of different vaults."""
    ev, vault = raw.events, raw.by_instrument["vault_group"]
    rows = np.flatnonzero(ev["kind"] == EventKind.BACKSTOP)
    for a, b in zip(rows[:-1], rows[1:]):
        same = b == a + 1 and all(ev[c][a] == ev[c][b] for c in ("tick", "round", "account"))
        if same and vault[ev["instrument"][a]] != vault[ev["instrument"][b]]:
            return True
    return False


def test_compiled_matches_reference_on_the_bench_portfolio_workload():
    """The bench's portfolio (15 instruments, a crash on five, accounts holding 1-5 of them,
    cross and isolated, hedged books), small: the same run on both engines, with triggers of
    cross accounts passed and split again."""
    from riskengine import bench

    w = bench.portfolio(ticks=15_000, accounts=1_500)
    tape, m = w.scenario.tape, w.scenario.margin_accounts
    stream = tape.stream if tape.stream is not None else np.empty(0)
    args = (tape.ts, tape.inst, tape.price, stream, m.owner, m.collateral, m.start, m.instrument, m.size,
            m.entry, list(w.params))
    out = run_portfolio(*args, index_stats=True)
    stats = out.pop("index_stats")
    assert stats["fired"] > 0 and stats["splits"] > stats["fired"]
    cy, ref = RawRun(**out), reference.run_portfolio(*args)
    assert_same_portfolio_run(cy, ref)
    assert _exactly(cy.positions_size, ref.positions_size)
    assert len(cy.events["ts"]) > 0


# ------------------------------------------------------------------ issue 13: funding


@st.composite
def funding_payments(draw, ts: np.ndarray, n_inst: int):
    """Random funding payments over a merged tape: 1-8 times (on tick times, between them,
    before the first tick and after the last), at each a random set of instruments with rates
    from tiny to large enough to push accounts over (either sign)."""
    t0, t1 = int(ts[0]), int(ts[-1])
    times = draw(st.lists(st.one_of(st.sampled_from(sorted(set(ts.tolist()))), st.integers(t0 - 5 * S, t1 + 5 * S)),
                          min_size=1, max_size=8, unique=True))
    rates = st.one_of(st.sampled_from([0.0, 1e-4, -1e-4, 0.003, -0.003, 0.04, -0.04]),
                      st.floats(-0.08, 0.08, allow_nan=False))
    f_ts, f_inst, f_rate = [], [], []
    for t in sorted(times):
        for k in sorted(draw(st.sets(st.integers(0, n_inst - 1), min_size=1))):
            f_ts.append(t)
            f_inst.append(k)
            f_rate.append(draw(rates))
    return (np.array(f_ts, dtype=np.int64), np.array(f_inst, dtype=np.int32), np.array(f_rate, dtype=np.float64))


def _both_funded(case, funding, at: FundingPrice) -> tuple[RawRun, RawRun]:
    (ts, inst, price, stream), arrays, plist = case
    plist = [dataclasses.replace(p, funding_price=at) for p in plist]
    event(f"funding at the {at.name}")
    cy = RawRun(**run_portfolio(ts, inst, price, stream, *arrays, plist, funding=funding))
    ref = reference.run_portfolio(ts, inst, price, stream, *arrays, plist, funding=funding)
    owner, collateral, start, instrument, size, entry = arrays
    for raw in (cy, ref):
        assert portfolio_violations(raw, owner, collateral, instrument, size, entry, plist[0], start=start) == []
    return cy, ref


def _funding_statistics(cy: RawRun, funding) -> None:
    rows = cy.events["kind"] == EventKind.FUNDING
    event(f"funding rows: {min(int(rows.sum()), 3)}{'+' if rows.sum() >= 3 else ''}")
    if rows.any():
        first = int(np.flatnonzero(rows)[0])
        later = cy.events["kind"][first + 1:]
        event(f"liquidations after a funding payment: {bool(np.isin(later, [1, 2, 3, 6, 9]).any())}")


def _check_funded_case(data, case) -> None:
    """Draw funding payments and a funding price for ``case``; both engines to the last bit."""
    funding = data.draw(funding_payments(case[0][0], len(case[2])))
    cy, ref = _both_funded(case, funding, data.draw(st.sampled_from(list(FundingPrice))))
    assert_same_portfolio_run(cy, ref)
    assert _exactly(cy.positions_size, ref.positions_size) and _exactly(cy.positions_entry, ref.positions_entry)
    _statistics(cy, case[2])
    _funding_statistics(cy, funding)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_compiled_matches_reference_with_funding_on_cross_accounts(data):
    """Funding payments on portfolios with cross accounts of several positions (the compiled
    engine rebuilds the paying instrument's index and checks its cross accounts again)."""
    case = data.draw(cross_cases())
    _check_funded_case(data, case)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_compiled_matches_reference_with_funding_and_shared_ledgers(data):
    """Funding on isolated books whose funds and vaults are shared by random groups (their
    inventories pay funding too)."""
    (tape, accounts, plist) = data.draw(grouped_cases())
    arrays = accounts.arrays()
    funding = data.draw(funding_payments(tape[0], len(plist)))
    cy, ref = _both_funded((tape, arrays, plist), funding, data.draw(st.sampled_from(list(FundingPrice))))
    assert_same_portfolio_run(cy, ref)
    _statistics(cy, plist)
    _funding_statistics(cy, funding)


# ------------------------------------------------------------------ issue 13: collateral assets (with funding)


@st.composite
def collateral_cases(draw):
    """:func:`cross_cases` where some instruments (never instrument 0) are collateral assets: no
    maintenance margin, their positions holdings (long, entry 0) priced by their tapes (random
    segments: depegs, crashes, recoveries); some wallets start in debt (a negative balance
    covered by holdings); with random funding payments in every instrument (the assets' too:
    a holding pays what any position would) and either funding price."""
    (ts, inst, price, stream), arrays, plist = draw(cross_cases())
    n_inst = len(plist)
    assets = {k for k in range(1, n_inst) if draw(st.booleans())} or {n_inst - 1}
    plist = [dataclasses.replace(p, mm_floors=np.array([0.0]), mm_rates=np.array([0.0]), collateral=True)
             if k in assets else p for k, p in enumerate(plist)]
    owner, collateral, start, instrument, size, entry = (np.array(a) for a in arrays)
    held = np.isin(instrument, list(assets))
    size = np.where(held, np.abs(size), size)
    entry = np.where(held, 0.0, entry)
    holders = np.repeat(np.arange(len(owner)), np.diff(start))
    in_debt = np.zeros(len(owner), dtype=bool)
    in_debt[holders[held]] = draw(st.booleans())
    collateral = np.where(in_debt, -0.3 * np.abs(collateral), collateral)
    event(f"collateral assets {len(assets)} of {n_inst}; wallets in debt {bool(in_debt.any())}")
    return (ts, inst, price, stream), (owner, collateral, start, instrument, size, entry), plist


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_compiled_matches_reference_with_collateral_assets_and_funding(data):
    """Collateral holdings in cross accounts (a fall of an asset liquidates accounts, the
    auto-exchange sells holdings) with funding payments: both engines to the last bit."""
    case = data.draw(collateral_cases())
    _check_funded_case(data, case)
