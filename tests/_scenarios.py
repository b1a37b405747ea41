"""Small helpers to build hand-made scenarios and run both engines on them."""

from __future__ import annotations

import numpy as np

from riskengine.engine import run_raw
from riskengine.params import EngineParams
from riskengine.scenario import Population, Scenario, Tape

S = 1_000_000_000


def scenario(prices, accounts, times_s=None, stream=None) -> Scenario:
    """``accounts`` is a list of (collateral, size, entry)."""
    prices = np.asarray(prices, dtype=float)
    times = np.arange(len(prices)) if times_s is None else np.asarray(times_s, dtype=float)
    tape = Tape.from_arrays((times * S).astype(np.int64), prices, None, stream)
    col, size, entry = (np.array(x, dtype=float) for x in zip(*accounts))
    return Scenario("hand-made", tape, Population.from_arrays(col, size, entry))


def run_both(sc: Scenario, params: EngineParams):
    """Run the Cython and the reference engine; check they agree; return the Cython run."""
    cy, _ = run_raw(sc, params, "cython")
    ref, _ = run_raw(sc, params, "reference")
    assert_same_run(cy, ref)
    return cy


def events(raw) -> list[dict]:
    ev = raw.events
    return [{k: ev[k][j].item() for k in ev} for j in range(len(ev["ts"]))]


def assert_same_run(a, b, rtol: float = 1e-9) -> None:
    """Identical event logs (same events, same order, numbers equal to ``rtol``), series,
    final state and scalars."""
    assert len(a.events["ts"]) == len(b.events["ts"]), (len(a.events["ts"]), len(b.events["ts"]))
    assert list(a.events) == list(b.events) and list(a.series) == list(b.series), "both engines log the same columns"
    for name in a.events:
        arr, other = a.events[name], b.events[name]
        if arr.dtype.kind in "iu":
            mism = np.flatnonzero(arr != other)
        else:
            mism = np.flatnonzero(~np.isclose(arr, other, rtol=rtol, atol=1e-9))
        assert not len(mism), f"event column {name!r} differs first at row {mism[0]}: {arr[mism[0]]!r} vs {other[mism[0]]!r}"
    for name in a.series:
        np.testing.assert_allclose(a.series[name], b.series[name], rtol=rtol, atol=1e-9, err_msg=f"series {name}")
    for name in ("collateral", "size", "entry", "socialized"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=1e-9, err_msg=name)
    np.testing.assert_array_equal(a.status, b.status)
    for key, value in a.scalars.items():
        other = b.scalars[key]
        assert np.isclose(value, other, rtol=rtol, atol=1e-9, equal_nan=True), (key, value, other)
