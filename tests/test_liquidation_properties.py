"""Properties of liquidation orders over random scenarios (the parity test's generator)."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.codes import EventKind, PartialMode
from riskengine.engine import run_raw

from test_parity import cases

#: event kinds that change the position of their ``account`` by ``size``
POSITION_KINDS = (EventKind.LIQUIDATION, EventKind.PARTIAL_LIQUIDATION, EventKind.BACKSTOP,
                  EventKind.ADL_FILL, EventKind.ADL_LIQUIDATION, EventKind.FUND_TAKEOVER)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), mode=st.sampled_from(list(PartialMode)))
def test_partial_liquidation_never_increases_risk(case, mode):
    scenario, params = case
    params = dataclasses.replace(params, partial_mode=mode, partial_fraction=0.3, partial_threshold=0.0)
    raw, _ = run_raw(scenario, params, "cython")
    pos = scenario.population.size.copy()
    ev = raw.events
    for j in range(len(ev["kind"])):
        a = int(ev["account"][j])
        if a < 0 or ev["kind"][j] not in POSITION_KINDS:
            continue
        before = pos[a]
        after = before - ev["size"][j]
        if ev["kind"][j] == EventKind.PARTIAL_LIQUIDATION:
            # a partial order reduces the position (so its notional and maintenance margin at
            # any price) without closing or flipping it
            assert np.sign(after) == np.sign(before) and 0 < abs(after) < abs(before), (j, before, after)
        else:
            # no order ever flips a position or grows it ("after" is rebuilt here by subtracting
            # event sizes, so a closed position can come out a rounding error past zero)
            assert abs(after) <= abs(before) * (1 + 1e-12) and after * before >= -1e-12 * before * before, (
                j, before, after)
        pos[a] = after
    # the event log accounts for every change of position
    np.testing.assert_allclose(pos, raw.size, rtol=1e-9, atol=1e-9)
