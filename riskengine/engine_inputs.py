"""The inputs both engines' ``run_portfolio`` take, and the checks they make before running.

A portfolio run (issue 12; ``riskengine.reference``, "Portfolios") takes a merged tape
(``ts``, ``inst``, ``price``, ``stream``), margin accounts in CSR form (``owner``,
``collateral``, ``start``; positions ``instrument``, ``size``, ``entry``) and one
:class:`~riskengine.params.EngineParams` per instrument. Some of those parameters belong to an
instrument (:data:`PER_INSTRUMENT_FIELDS`: its margin table, its liquidity model and observed
flow, its order limits); every other field is the venue design's and must be the same in every
instrument's entry (:func:`design_params`). :func:`check_margin_accounts` checks the arrays'
shapes and what an engine takes (a cross margin account may hold several positions since step 2;
an isolated one holds one); :func:`ledger_groups` the insurance fund and backstop vault each
instrument draws on (step 3). Each failure is one ``ValueError`` line naming the field or row and
what was expected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from riskengine.codes import MarginMode
from riskengine.params import EngineParams

#: EngineParams fields that may differ between instruments: the margin tiers, the liquidity
#: model (and the book derived from it), the observed flow of a counterfactual replay (applied
#: to that instrument's ticks only), the order limits, the insurance fund and backstop vault
#: its deficits draw on (:func:`ledger_groups`) and whether it is a collateral asset
PER_INSTRUMENT_FIELDS: frozenset[str] = frozenset({
    "mm_floors", "mm_rates", "mm_whole_position", "mm_cums",
    "depth_per_pct", "depth_ts", "depth_pct", "depth_notional", "max_move",
    "impact_half_life_ns", "impact_feedback", "impact_stress_k",
    "book_ts", "book_delta", "book_notional", "book_knots",
    "observed_ts", "observed_side", "observed_notional",
    "liq_max_order_notional", "liq_price_band", "fund_group", "vault_group", "collateral",
})

def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if a is None or b is None:
            return False
        x, y = np.asarray(a), np.asarray(b)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
    return a == b


def design_params(params: Sequence[EngineParams]) -> EngineParams:
    """The venue design's parameters of a portfolio run: ``params[0]``, after checking that
    every field not in :data:`PER_INSTRUMENT_FIELDS` is equal in every entry.

    Raises
    ------
    ValueError
        No parameters, or a design-level field that differs (the line names the entry and the
        field).
    """
    params = list(params)
    if not params:
        raise ValueError("params: expected one EngineParams per instrument (got none)")
    first = params[0]
    for j, other in enumerate(params):
        if not isinstance(other, EngineParams):
            raise ValueError(f"params[{j}]: expected EngineParams (got {type(other).__name__})")
        for f in dataclasses.fields(EngineParams):
            if f.name in PER_INSTRUMENT_FIELDS:
                continue
            a, b = getattr(first, f.name), getattr(other, f.name)
            if not _same(a, b):
                raise ValueError(f"params[{j}].{f.name}: a venue-design field must be equal for every "
                                 f"instrument (params[0] has {a!r}, params[{j}] has {b!r})")
    return first


def ledger_groups(params: Sequence[EngineParams]) -> tuple[np.ndarray, np.ndarray]:
    """The insurance fund and the backstop vault of each instrument: ``fund_group[k]`` and
    ``vault_group[k]`` (int64, one per instrument), ledger indices ``0..G-1`` numbered in the order
    of each ledger's first instrument (so instrument 0's are 0, and every ledger serves at least one
    instrument; :func:`riskengine.venue.ledger_groups` numbers a design's ``shared`` so).

    Raises
    ------
    ValueError
        A ledger index that skips one (the line names the entry, the field and the index expected).
    """
    out = []
    for name in ("fund_group", "vault_group"):
        groups = np.array([getattr(p, name) for p in params], dtype=np.int64)
        seen = -1
        for k, g in enumerate(groups.tolist()):
            if g > seen + 1:
                raise ValueError(f"params[{k}].{name}: expected a ledger index in 0..{seen + 1} (ledgers are "
                                 f"numbered in the order of their first instrument), got {g}")
            seen = max(seen, g)
        out.append(groups)
    return out[0], out[1]


def check_margin_accounts(ts: np.ndarray, inst: np.ndarray, price: np.ndarray, stream: np.ndarray,
                          owner: np.ndarray, collateral: np.ndarray, start: np.ndarray,
                          instrument: np.ndarray, size: np.ndarray, entry: np.ndarray,
                          n_instruments: int, *, mode: np.ndarray | None = None) -> None:
    """Check the shapes of a portfolio run's arrays and what the engine takes.

    The merged tape's arrays have one length T (``stream`` may also be empty: no stream) and
    ``inst`` is in ``0..I-1``; ``owner`` and ``collateral`` have one entry per margin account M;
    ``start`` (M+1) starts at 0, never decreases and ends at the number of positions P, the
    length of ``instrument`` (in ``0..I-1``), ``size`` and ``entry``. No user account
    (``owner``) holds two positions in one instrument (events name the user account and the
    instrument). A cross margin account may hold several positions (step 2 of issue 12); with ``mode``
    (:class:`riskengine.codes.MarginMode` per margin account) an isolated margin account holds
    exactly one position.

    Raises
    ------
    ValueError
        One line naming the array, the row and what was expected.
    """
    t = len(ts)
    for name, arr in (("inst", inst), ("price", price)):
        if len(arr) != t:
            raise ValueError(f"{name}: expected one entry per tick ({t}), got {len(arr)}")
    if len(stream) not in (0, t):
        raise ValueError(f"stream: expected one entry per tick ({t}) or none, got {len(stream)}")
    _check_instrument_ids("inst", inst, n_instruments, " (one EngineParams each)")
    m = len(owner)
    if len(collateral) != m:
        raise ValueError(f"collateral: expected one entry per margin account ({m}), got {len(collateral)}")
    if len(start) != m + 1:
        raise ValueError(f"start: expected one entry per margin account plus one ({m + 1}), got {len(start)}")
    p = len(instrument)
    for name, arr in (("size", size), ("entry", entry)):
        if len(arr) != p:
            raise ValueError(f"{name}: expected one entry per position ({p}), got {len(arr)}")
    if start[0] != 0 or start[-1] != p:
        raise ValueError(f"start: expected to run from 0 to the number of positions {p} "
                         f"(got {int(start[0])} .. {int(start[-1])})")
    held = np.diff(start)
    bad = np.flatnonzero(held < 0)
    if len(bad):
        raise ValueError(f"start[{int(bad[0]) + 1}]: must not decrease "
                         f"({int(start[bad[0] + 1])} after {int(start[bad[0]])})")
    if mode is not None:
        bad = np.flatnonzero((np.asarray(mode) == MarginMode.ISOLATED) & (held != 1))
        if len(bad):
            raise ValueError(f"margin account {int(bad[0])} (account {int(owner[bad[0]])}): an isolated margin "
                             f"account holds exactly one position (got {int(held[bad[0]])})")
    _check_instrument_ids("instrument", instrument, n_instruments)
    holder = np.repeat(np.asarray(owner, dtype=np.int64), held)
    if not _may_hold_twice(holder, np.asarray(instrument), n_instruments):
        return
    key = np.stack([holder, np.asarray(instrument, dtype=np.int64)])
    order = np.lexsort(key[::-1])
    twice = np.flatnonzero((np.diff(key[0][order]) == 0) & (np.diff(key[1][order]) == 0))
    if len(twice):
        a, b = sorted((int(order[twice[0]]), int(order[twice[0] + 1])))
        raise ValueError(f"positions {a} and {b}: account {int(holder[a])} holds instrument "
                         f"{int(instrument[a])} twice (one position per account and instrument)")


def _check_instrument_ids(name: str, ids: np.ndarray, n_instruments: int, note: str = "") -> None:
    """Every entry of ``ids`` an instrument in ``0..I-1``; else one line naming the first row."""
    bad = np.flatnonzero((ids < 0) | (ids >= n_instruments))
    if len(bad):
        raise ValueError(f"{name}[{int(bad[0])}]: expected an instrument in 0..{n_instruments - 1}{note}, "
                         f"got {int(ids[bad[0]])}")


def check_funding(funding_ts: np.ndarray, funding_inst: np.ndarray, funding_rate: np.ndarray,
                  n_instruments: int) -> None:
    """Check a run's funding payments (issue 13): one row per funding time of an instrument,
    ``funding_ts`` (int64 ns) non-decreasing and, at one time, ``funding_inst`` (in
    ``0..I-1``) increasing (each instrument once per time); ``funding_rate`` finite.

    Raises
    ------
    ValueError
        One line naming the array, the row and what was expected.
    """
    f = len(funding_ts)
    for name, arr in (("funding_inst", funding_inst), ("funding_rate", funding_rate)):
        if len(arr) != f:
            raise ValueError(f"{name}: expected one entry per funding payment ({f}), got {len(arr)}")
    if f == 0:
        return
    _check_instrument_ids("funding_inst", funding_inst, n_instruments)
    bad = np.flatnonzero(~np.isfinite(funding_rate))
    if len(bad):
        raise ValueError(f"funding_rate[{int(bad[0])}]: expected a finite rate, got {funding_rate[bad[0]]}")
    dt = np.diff(np.asarray(funding_ts, dtype=np.int64))
    di = np.diff(np.asarray(funding_inst, dtype=np.int64))
    bad = np.flatnonzero((dt < 0) | ((dt == 0) & (di <= 0)))
    if len(bad):
        r = int(bad[0]) + 1
        raise ValueError(f"funding_ts[{r}]: expected payments sorted by time, then instrument, each instrument "
                         f"once per time (got instrument {int(funding_inst[r])} at {int(funding_ts[r])} after "
                         f"instrument {int(funding_inst[r - 1])} at {int(funding_ts[r - 1])})")


def _may_hold_twice(holder: np.ndarray, instrument: np.ndarray, n_instruments: int) -> bool:
    """Whether some user (``holder``, one per position) may hold an instrument twice: False only
    when none does, found in O(P) without a sort where the users' ids are small non-negative
    integers and there are at most 48 instruments (a 1M-account run's lexsort took 0.16 s).

    Each position adds ``2^instrument`` to its user's sum (``bincount``; exact in float64: at
    most 48 distinct powers below ``2^48`` unless a user holds more than 48 positions, which is a
    repeat). A user's positions are in distinct instruments exactly when adding their powers
    carries nowhere, that is when the sum has as many bits set as the user has positions."""
    if len(holder) == 0:
        return False
    if n_instruments > 48 or holder.min() < 0 or holder.max() >= 4 * len(holder) + 1024:
        return True  # the caller's sort decides
    count = np.bincount(holder)
    if count.max() > n_instruments:
        return True
    total = np.bincount(holder, weights=np.ldexp(1.0, instrument.astype(np.int32)))
    return bool((np.bitwise_count(total.astype(np.uint64)) != count).any())


def funding_arrays(funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                   n_instruments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A run's funding payments as the engines take them: contiguous ``funding_ts`` (int64),
    ``funding_inst`` (int32), ``funding_rate`` (float64), checked (:func:`check_funding`);
    None: no funding."""
    if funding is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
    ts, inst, rate = (np.ascontiguousarray(a, dtype=d) for a, d in zip(funding, (np.int64, np.int32, np.float64)))
    check_funding(ts, inst, rate, n_instruments)
    return ts, inst, rate
