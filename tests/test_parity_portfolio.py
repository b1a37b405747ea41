"""Parity on portfolios (issue 12, steps 1 and 3): the compiled engine and the reference engine
agree to the last bit on random multi-instrument scenarios, and with their funds and vaults
shared by random groups of instruments.

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
from riskengine.codes import EventKind
from riskengine.runlog import RawRun

import test_parity as tp
from riskengine.invariants import portfolio_violations
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
