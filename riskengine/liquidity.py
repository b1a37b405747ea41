"""Liquidity models configured from Python (kernels in ``cext/riskengine/_liquidity.pyx``).

A liquidity model says how a market order the engine sends (a liquidation, a fund or vault
unwind) fills and how it moves later prices:

* :class:`ConstantDepth` — the same linear depth profile on both sides at every moment;
* :class:`DepthCurve` — cumulative depth per side from depth snapshots (Binance ``bookDepth``
  bands, or L2 books converted to cumulative depth), time-varying;
* :class:`ObservedFlow` — liquidation orders that actually happened (for ``counterfactual``).

Every model has a ``mode``:

``"replay"``
    The tape as it is: fills still walk the book (slippage), but later prices never move
    (impact feedback 0): the simulated price equals the tape.
``"endogenous"`` (default)
    Simulated liquidation flow adds impact on top of the tape: each order's move, scaled by
    ``feedback``, persists and decays with the resilience half-life.
``"counterfactual"``
    As endogenous, but first the impact of the *observed* liquidation flow — computed with the
    same curve, stress and decay kernel — is taken out of the tape: ``tape'_i = tape_i /
    m_obs(t_i)``. The tape already contains what the real liquidations did; the counterfactual
    tape is what it would have been without them, and the simulated flow is then put on it.
    Without observed flow it equals endogenous exactly.

The book model (reference §5, "Market impact for replaying historical ticks"):

* **Depth curve** (§5 layer 1): per side, cumulative quote notional ``D(delta)`` at distances
  ``delta`` from the price, piecewise linear through ``(0, 0)`` and the knots. **Past the last
  knot** ``D`` is extrapolated linearly with the last segment's slope (if the last segment is
  flat — a band that adds nothing, as on the bid side of the 2025-10-10 file — with the curve's
  mean slope ``D_K / delta_K`` instead). A **tail floor** (:meth:`DepthCurve.with_tail_floor`,
  on by default for ``bookDepth`` files in configs) adds a knot at 10% so that past the last
  band depth grows at least :data:`TAIL_FLOOR_SHARE` of the side's typical slope. A wall of unlimited depth stands ``max_move`` from the
  tape price and caps every walk. A market order of notional ``X`` moves the price to
  ``delta*`` with ``D(delta*) = X`` and fills on average ``(delta* X - int_0^delta* D) / X``
  away (``delta* / 2`` for a linear curve, so :class:`ConstantDepth` is the one-knot curve at
  1%). Sells walk the bids, buys the asks. A limited order fills ``D(dist)`` before its limit.
* **Time-varying**: at each tick the engine uses the latest snapshot at or before the tick
  time (before the first snapshot, the first).
* **Stress thinning** (§5 layer 2): depth is multiplied by ``1 / (1 + stress_k L)``, ``L`` =
  the notional the engine sent to the book in the recent past (decayed with the resilience
  half-life) divided by the current snapshot's depth at 1% (mean of both sides). ``stress_k =
  0`` (default) disables it. With snapshots taken *during* the crash, the observed thinning is
  already in the data: stress thinning then models only the extra thinning the simulated flow
  causes.
* **Resilience** (§5 layer 3): transient impact ``m`` (simulated price = tape x ``m``) decays
  exponentially toward 1 with ``half_life_s`` (Obizhaeva-Wang style refill); the stress flow
  decays with the same half-life.
* **Venue guards** (§5 layer 4): price bands are part of the venue design
  (``liquidation.price_band``), not of the book.

Calibration (reference §5; the Binance Vision file
``../shared/data/2025-10-10/binance-usdm-bookdepth/BTCUSDT-bookDepth-2025-10-10.csv``, 2,879
snapshots about every 30 s, bands +-1..5%), measured with
``DepthCurve.from_bookdepth(path).depth_at(1.0)`` per snapshot (mean of the sides):

===================================  =====================  ==========  ==========
window (UTC)                          median D(1%), mean       bids        asks
===================================  =====================  ==========  ==========
00:00-20:00 (calm)                    260.6M                   283.2M      244.5M
21:00-21:30 (crash)                   87.9M  (x0.34)           2.14M       173.6M
21:10-21:25 (the cascade minutes)     83.3M  (x0.32)           2.14M       164.4M
21:30-22:00                           78.7M                    2.14M       155.3M
===================================  =====================  ==========  ==========

The book thinned to about a third within 1% (two thirds gone); the bid side's 1%, 2% and 3%
bands collapse to the same 2.14M (the "identical bands" the data README notes at 21:15, in fact
present in 818 bid segments of the file from 15:30 on), so a sell sweep in those minutes meets
the 4-5% bands: Kaiko's "meaningful bids only at the 4%-10% bands" (§5, S62) and FTI's ">90%
depth down" (§5, S63) are the same picture. The smallest mean 1% depth is 29.5M at 21:22:31.
Shape in calm snapshots (median ``D(k%)/D(1%)``): bids 2.29, 3.37, 4.38, 4.86 and asks 1.57,
1.95, 2.44, 2.90 for k = 2..5 — concave, between the linear and the latent-order-book limits.

* :data:`TAIL_FLOOR_SHARE` = 0.05 out to :data:`TAIL_OUT_PCT` = 10%: the bands stop at 5%, and
  when a side's bands all sit on one stale level (bids from 21:25 to 21:45: 2.1M within 5%)
  the mean-slope extrapolation holds 0.43M per % and a sweep runs to the 50% wall. Kaiko saw
  "meaningful bids only at the 4%-10% bands" (§5, S62) and §5 layer 2 puts the stress depth
  multiplier in [0.05, 1]; so past the last band depth grows at least 5% of the side's typical
  slope, the day's median ``D(5%) / 5`` (bids 203.4M, asks 141.6M per %: floors of 10.2M and
  7.1M per %), out to 10%, and along that segment beyond. With it, a $50M sell at 21:27:33
  moves the bids about 9.7% instead of 50%. The BTC replay (``backtests/btc-2025-10-10.toml``)
  walks the time-varying curve with this floor.
* :data:`CALM_DEPTH_1PCT` = 2.6e8 and :data:`CRASH_DEPTH_1PCT` = 8.8e7: the two medians above,
  for a :class:`ConstantDepth` of BTCUSDT perp (CoinDesk's ~20M cross-venue +-1% in §5, S64 is a
  spot-venue figure and much smaller).
* :data:`STRESS_K` = 4.8: the ``stress_k`` at which a calm constant book thins as much as the
  file shows (x0.34, i.e. ``1 + k L = 2.97``) under a cascade of Hyperliquid's observed BTC size:
  1.79B liquidated in 12 minutes (``hyperliquid-observed/combined_impact_by_ticker.csv``), 2.49M/s,
  whose decayed stock at a 30 s half-life is ``2.49M x 30 / ln 2 = 108M``, ``L = 108M / 260.6M
  = 0.41``. An order-of-magnitude figure (one venue's flow against another's book); the default
  stays 0.
* ``half_life_s`` = 30 (default): no public crypto-perp impact half-life was found (§5 layer 3,
  a gap). The file's depth refill is slower — the ask 1% band went 56.8M (21:22:31) -> 104M
  (21:24:31) -> 126M (21:28:30), a half-recovery in about two minutes — so 30 s is on the
  resilient side for price impact; try 60-120 s for a slower book.
* ``max_move`` = 0.5 (default): a safety wall; Binance's own market-order band
  (``marketTakeBound``, BTCUSDT 5%, §5 layer 4) is a venue guard, set with
  ``liquidation.price_band``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from riskengine.params import check_depth_curve, check_observed_flow

NS = 1_000_000_000
#: replay modes of a liquidity model (see the module docstring)
MODES = ("replay", "endogenous", "counterfactual")
#: median notional within 1% of mid, mean of the sides, 00:00-20:00 UTC (module docstring)
CALM_DEPTH_1PCT = 2.6e8
#: the same in the crash, 21:00-21:30 UTC (module docstring)
CRASH_DEPTH_1PCT = 8.8e7
#: stress factor that thins a calm book as much as 2025-10-10 did under a cascade (docstring)
STRESS_K = 4.8
#: past the last band a side's depth grows at least this share of its typical slope (docstring)
TAIL_FLOOR_SHARE = 0.05
#: the band the tail floor reaches out to, as a knot (docstring)
TAIL_OUT_PCT = 10.0


def _iso(ns: int) -> str:
    stamp = np.datetime64(int(ns), "ns").astype("datetime64[s]" if int(ns) % NS == 0 else "datetime64[ns]")
    return f"{stamp}Z"


def _check_model(mode: str, stress_k: float, observed: Any, where: str) -> None:
    if mode not in MODES:
        raise ValueError(f"{where}.mode: expected one of {', '.join(MODES)} (got {mode!r})")
    if not (isinstance(stress_k, numbers.Real) and math.isfinite(stress_k) and stress_k >= 0):
        raise ValueError(f"{where}.stress_k: expected a finite factor >= 0, 0 = no thinning (got {stress_k!r})")
    if observed is not None and not isinstance(observed, ObservedFlow):
        raise ValueError(f"{where}.observed: expected an ObservedFlow (got {type(observed).__name__})")


def _common_fields(model: Any) -> dict:
    fields = {
        "max_move": float(model.max_move),
        "impact_half_life_ns": float(model.half_life_s) * NS,
        "impact_feedback": 0.0 if model.mode == "replay" else float(model.feedback),
        "impact_stress_k": float(model.stress_k),
    }
    if model.mode == "counterfactual" and model.observed is not None and len(model.observed):
        fields.update(observed_ts=model.observed.ts, observed_side=model.observed.side,
                      observed_notional=model.observed.notional)
    return fields


def _columns(data: Any, names: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    """Columns of an Arrow table, a pandas DataFrame or a mapping of arrays; timestamps as int64 ns."""
    out = {}
    for name in names:
        try:
            col = data[name] if not hasattr(data, "column") else data.column(name)
        except (KeyError, IndexError):
            col = None
        if col is None:
            have = list(data.column_names) if hasattr(data, "column_names") else list(data.keys())
            raise ValueError(f"{where}: no {name!r} column (got {', '.join(map(str, have))})")
        if hasattr(col, "combine_chunks"):  # pyarrow
            import pyarrow as pa

            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64())
            col = col.to_numpy(zero_copy_only=False)
        arr = np.asarray(col)
        if arr.dtype.kind == "M":
            arr = arr.astype("datetime64[ns]").astype(np.int64)
        elif name == "ts" and hasattr(col, "dt"):  # tz-aware pandas
            arr = np.asarray(col.dt.tz_convert("UTC").dt.tz_localize(None), dtype="datetime64[ns]").astype(np.int64)
        out[name] = arr
    return out


@dataclass(frozen=True)
class ObservedFlow:
    """Liquidation orders that happened: time (ns), side of the closing order (+1 buy: a short
    was liquidated; -1 sell: a long was) and quote notional. Sorted by time on construction.

    Build it from arrays, or from observed venue events (:meth:`from_events`: the catalog's
    ``events`` kind, e.g. Tardis ``liquidations`` or Hyperliquid liquidation fills).
    """

    ts: np.ndarray
    side: np.ndarray
    notional: np.ndarray

    def __post_init__(self) -> None:
        ts = np.array(self.ts, dtype=np.int64).reshape(-1)
        side = np.array(self.side, dtype=np.float64).reshape(-1)
        notional = np.array(self.notional, dtype=np.float64).reshape(-1)
        if len(ts) == len(side) == len(notional):
            order = np.argsort(ts, kind="stable")
            ts, side, notional = ts[order], side[order], notional[order]
        check_observed_flow(ts, side, notional)
        for name, value in (("ts", ts), ("side", side), ("notional", notional)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_events(cls, data: Any, where: str = "observed flow") -> "ObservedFlow":
        """Liquidations among observed venue events (columns ``ts``, ``kind``, ``side``,
        ``notional``; rows of another kind, or without a side, are left out).

        Raises
        ------
        ValueError
            A missing column, or no liquidation with a known side.
        """
        cols = _columns(data, ("ts", "kind", "side", "notional"), where)
        side = np.asarray(cols["side"], dtype=np.float64)  # nulls -> nan
        keep = (np.asarray(cols["kind"]).astype(str) == "liquidation") & np.isfinite(side)
        if not keep.any():
            raise ValueError(f"{where}: no liquidation with a known side among {len(side)} event(s)")
        return cls(cols["ts"][keep], side[keep], np.asarray(cols["notional"], dtype=np.float64)[keep])

    def between(self, start: int | None = None, end: int | None = None) -> "ObservedFlow":
        """The orders with ``start <= ts < end`` (ns; None = open)."""
        keep = np.ones(len(self), dtype=bool)
        if start is not None:
            keep &= self.ts >= start
        if end is not None:
            keep &= self.ts < end
        return ObservedFlow(self.ts[keep], self.side[keep], self.notional[keep])


@dataclass(frozen=True)
class ConstantDepth:
    """A book with the same depth profile on both sides at every moment.

    Cumulative depth grows linearly with the distance from the price,
    ``D(delta) = depth_per_pct * delta / 1%`` (reference §5, "linear cumulative depth"), so a
    market order of notional ``X`` moves the price by ``1% * X / depth_per_pct`` and fills half
    that far away on average. A wall of unlimited depth stands ``max_move`` from the tape
    price: what reaches it fills there, so simulated prices stay within
    ``tape x (1 +/- max_move)``. It is the one-knot :class:`DepthCurve` at 1%.

    Parameters
    ----------
    depth_per_pct : float
        Quote notional resting within 1% of the price on each side. ``inf`` = no slippage and
        no impact (plain replay). BTCUSDT perp on 2025-10-10: :data:`CALM_DEPTH_1PCT`,
        :data:`CRASH_DEPTH_1PCT`.
    max_move : float
        Relative distance of the wall from the tape price, in (0, 1).
    half_life_s : float
        Half-life of the transient impact (and of the stress flow), seconds.
    feedback : float
        Share of each order's price move that persists as transient impact on later prices
        (0 = fills slip but the tape is never moved; 1 = full cascade feedback).
    stress_k : float
        Stress thinning factor (0 = off; see the module docstring, :data:`STRESS_K`).
    mode : {"replay", "endogenous", "counterfactual"}
        See the module docstring.
    observed : ObservedFlow, optional
        Observed liquidation flow taken out of the tape in ``counterfactual`` mode.
    """

    depth_per_pct: float = math.inf
    max_move: float = 0.5
    half_life_s: float = 30.0
    feedback: float = 1.0
    stress_k: float = 0.0
    mode: str = "endogenous"
    observed: ObservedFlow | None = None

    def __post_init__(self) -> None:
        _check_model(self.mode, self.stress_k, self.observed, "liquidity")

    def engine_fields(self) -> dict:
        """The :class:`riskengine.params.EngineParams` fields this model sets."""
        return {"depth_per_pct": float(self.depth_per_pct), **_common_fields(self)}

    def describe(self) -> str:
        """One line for progress output."""
        return f"depth {self.depth_per_pct:,.0f}/1% ({self.mode})"


@dataclass(frozen=True)
class DepthCurve:
    """Cumulative depth per side from depth snapshots, time-varying.

    Parameters
    ----------
    ts : ndarray of int64, shape (S,)
        Snapshot times, ns, non-decreasing. At each tick the engine uses the latest snapshot at
        or before the tick time (before the first snapshot, the first).
    pct : ndarray of float64, shape (S, 2, K)
        Distances from mid in %, > 0 and strictly increasing along K; ``[:, 0]`` bids,
        ``[:, 1]`` asks.
    notional : ndarray of float64, shape (S, 2, K)
        Cumulative quote notional within each distance, not shrinking along K.
    max_move, half_life_s, feedback, stress_k, mode, observed
        As for :class:`ConstantDepth`.

    Build it with :meth:`from_snapshots` (a table of snapshots, bands of any count) or
    :meth:`from_bookdepth` (a Binance ``bookDepth`` file).
    """

    ts: np.ndarray
    pct: np.ndarray
    notional: np.ndarray
    max_move: float = 0.5
    half_life_s: float = 30.0
    feedback: float = 1.0
    stress_k: float = 0.0
    mode: str = "endogenous"
    observed: ObservedFlow | None = None
    where: str = field(default="depth curve", repr=False, compare=False)

    def __post_init__(self) -> None:
        ts = np.array(self.ts, dtype=np.int64).reshape(-1)
        pct = np.array(self.pct, dtype=np.float64)
        notional = np.array(self.notional, dtype=np.float64)
        check_depth_curve(ts, pct, notional, self.where)
        for name, value in (("ts", ts), ("pct", pct), ("notional", notional)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        _check_model(self.mode, self.stress_k, self.observed, "liquidity")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_snapshots(cls, data: Any, where: str = "depth snapshots", **model: Any) -> "DepthCurve":
        """A depth curve from cumulative depth snapshots.

        Parameters
        ----------
        data : pyarrow.Table, pandas.DataFrame or mapping of arrays
            Columns ``ts`` (timestamps, or int64 ns), ``pct`` (signed distance from mid in %:
            negative = bids, positive = asks) and ``notional`` (cumulative quote notional
            within ``|pct|``), one row per snapshot and band (the catalog's ``depth`` kind;
            a ``depth`` column in base units may be present and is not used).
        where : str
            Names the input in error messages.
        **model
            ``max_move``, ``half_life_s``, ``feedback``, ``stress_k``, ``mode``, ``observed``.

        Snapshots with fewer bands on a side than the most any side has are padded by
        extrapolating their last segment (the same line the walk extrapolates along), so every
        snapshot has K knots per side.

        Raises
        ------
        ValueError
            One line naming the snapshot and bands: a side without bands, a band at 0%, a band
            listed twice, cumulative notional that shrinks as the band widens (equal is
            allowed), a non-finite or negative value.
        """
        cols = _columns(data, ("ts", "pct", "notional"), where)
        ts = np.asarray(cols["ts"], dtype=np.int64)
        pct = np.asarray(cols["pct"], dtype=np.float64)
        notional = np.asarray(cols["notional"], dtype=np.float64)
        if len(ts) == 0:
            raise ValueError(f"{where}: no depth snapshots")
        bad = ~np.isfinite(pct) | (pct == 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"depth snapshot at {_iso(ts[i])}: band {float(pct[i])!r}%: expected a finite distance "
                             f"other than 0 (negative = bids, positive = asks)")
        bad = ~np.isfinite(notional) | (notional < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"depth snapshot at {_iso(ts[i])}: band {pct[i]:g}%: expected a finite notional "
                             f">= 0 (got {float(notional[i])!r})")
        ask = pct > 0
        dist = np.abs(pct)
        order = np.lexsort((dist, ask, ts))
        ts, ask, dist, notional = ts[order], ask[order], dist[order], notional[order]
        # one group per (snapshot, side)
        new_group = np.ones(len(ts), dtype=bool)
        new_group[1:] = (ts[1:] != ts[:-1]) | (ask[1:] != ask[:-1])
        same = ~new_group[1:]
        names = np.array(["bid", "ask"])
        dup = same & (dist[1:] == dist[:-1])
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise ValueError(f"depth snapshot at {_iso(ts[i])}: {names[int(ask[i])]} band {dist[i]:g}% "
                             f"appears twice")
        shrink = same & (notional[1:] < notional[:-1])
        if shrink.any():
            i = int(np.flatnonzero(shrink)[0])
            raise ValueError(f"depth snapshot at {_iso(ts[i])}: {names[int(ask[i])]} notional shrinks from "
                             f"{notional[i]:.4g} at {dist[i]:g}% to {notional[i + 1]:.4g} at {dist[i + 1]:g}%")
        starts = np.flatnonzero(new_group)
        counts = np.diff(np.append(starts, len(ts)))
        g_ts, g_ask = ts[starts], ask[starts]
        snap_ts, snap_first = np.unique(g_ts, return_index=True)
        # every snapshot needs both sides: groups alternate bid, ask within a snapshot
        per_snap = np.diff(np.append(snap_first, len(g_ts)))
        if (per_snap != 2).any():
            s = int(np.flatnonzero(per_snap != 2)[0])
            missing = "ask" if not g_ask[snap_first[s]] else "bid"
            raise ValueError(f"depth snapshot at {_iso(snap_ts[s])}: no {missing} bands (each snapshot needs "
                             f"both sides)")
        k = int(counts.max())
        n_snap = len(snap_ts)
        out_pct = np.empty((n_snap * 2, k))
        out_not = np.empty((n_snap * 2, k))
        if (counts == k).all():
            out_pct[:] = dist.reshape(-1, k)
            out_not[:] = notional.reshape(-1, k)
        else:
            for g, (start, c) in enumerate(zip(starts, counts)):
                d, n = dist[start:start + c], notional[start:start + c]
                out_pct[g, :c], out_not[g, :c] = d, n
                if c < k:
                    out_pct[g, c:], out_not[g, c:] = _pad(d, n, k - c)
        return cls(snap_ts, out_pct.reshape(n_snap, 2, k), out_not.reshape(n_snap, 2, k), where=where, **model)

    @classmethod
    def from_bookdepth(cls, path: str | Path, start: int | None = None, end: int | None = None,
                       **model: Any) -> "DepthCurve":
        """A depth curve from a Binance Vision ``bookDepth`` CSV (bands +-1..5%, a snapshot
        about every 30 s), read by :func:`riskengine.data.binance.read_book_depth`.

        ``start``/``end`` (ns) keep the snapshots of ``[start, end)`` and the last one before
        ``start`` (the one in use at ``start``). ``**model`` as in :meth:`from_snapshots`.
        """
        import pyarrow as pa

        from riskengine.data.binance import read_book_depth

        batches = [batch for _, _, batch, _ in read_book_depth(path)]
        table = pa.Table.from_batches(batches)
        return cls.from_snapshots(window_snapshots(table, start, end, str(path)), where=str(path), **model)

    def typical_slopes(self) -> np.ndarray:
        """Median over snapshots of each side's mean slope ``D_K / delta_K`` (notional per 1%),
        bids then asks: the scale of :meth:`with_tail_floor`."""
        last = self.pct[:, :, -1]
        return np.median(self.notional[:, :, -1] / last, axis=0)

    def with_tail_floor(self, per_pct: Any, out_to_pct: float = TAIL_OUT_PCT) -> "DepthCurve":
        """This curve with one more knot per side, so depth past the last band grows at least
        ``per_pct`` (notional per 1%; a number or one per side, bids then asks).

        The knot sits at ``out_to_pct`` (or twice the last band, if that is wider) and holds
        ``D_K + max(s, per_pct) (out - delta_K)``, ``s`` being the slope the walk extrapolates
        along without it (the last segment's, or the mean slope if that segment is flat); past
        the knot the walk follows its segment. Without a floor, a side whose bands have all
        collapsed onto one stale level (the bids of 2025-10-10, see the module docstring)
        would hold almost nothing out to the wall.
        """
        floor = np.broadcast_to(np.asarray(per_pct, dtype=np.float64), (2,))
        if not (np.isfinite(floor).all() and (floor >= 0).all()):
            raise ValueError(f"{self.where}: tail floor: expected a notional per 1% >= 0 (got {per_pct!r})")
        d_k, n_k = self.pct[:, :, -1], self.notional[:, :, -1]
        slope = np.maximum(_tail_slope(self.pct, self.notional), floor[None, :])
        out = np.maximum(float(out_to_pct), 2.0 * d_k)
        pct = np.concatenate([self.pct, out[:, :, None]], axis=2)
        notional = np.concatenate([self.notional, (n_k + slope * (out - d_k))[:, :, None]], axis=2)
        return replace(self, pct=pct, notional=notional)

    # ------------------------------------------------------------------ use
    def engine_fields(self) -> dict:
        """The :class:`riskengine.params.EngineParams` fields this model sets."""
        return {"depth_ts": self.ts, "depth_pct": self.pct, "depth_notional": self.notional,
                **_common_fields(self)}

    def snapshot(self, t: int | None = None) -> int:
        """Index of the snapshot in use at ``t`` (ns): the latest at or before ``t``, the
        first before the first (None: the first)."""
        if t is None:
            return 0
        return max(0, int(np.searchsorted(self.ts, t, side="right")) - 1)

    def depth_at(self, pct: float, side: int | None = None, t: int | None = None) -> float:
        """``D(pct%)`` of the snapshot in use at ``t``: the bids (``side=-1``), the asks
        (``+1``) or the mean of both (None)."""
        from riskengine._liquidity import py_curve_depth

        s = self.snapshot(t)
        sides = (0, 1) if side is None else ((1,) if side > 0 else (0,))
        values = [py_curve_depth(self.pct[s, h] / 100.0, self.notional[s, h], pct / 100.0)[0] for h in sides]
        return float(sum(values) / len(values))

    def depth_1pct(self) -> np.ndarray:
        """``D(1%)`` of every snapshot, mean of the sides."""
        from riskengine._liquidity import py_curve_depth

        return np.array([(py_curve_depth(self.pct[s, 0] / 100.0, self.notional[s, 0], 0.01)[0]
                          + py_curve_depth(self.pct[s, 1] / 100.0, self.notional[s, 1], 0.01)[0]) / 2.0
                         for s in range(len(self.ts))])

    @property
    def depth_per_pct(self) -> float:
        """Median over snapshots of ``D(1%)`` (mean of the sides): a summary for reports."""
        return float(np.median(self.depth_1pct()))

    def walk(self, side: float, qty: float, price: float, t: int | None = None, tape: float | None = None,
             flow: float = 0.0) -> tuple[float, float]:
        """Fill price and relative move of a market order of ``qty`` (base units) from ``price``
        on the snapshot in use at ``t`` (the compiled kernel the engine uses). ``tape``: where
        the wall is measured from (default ``price``); ``flow``: stress flow so far."""
        from riskengine._liquidity import py_book_walk

        t = int(self.ts[self.snapshot(t)]) if t is None else int(t)
        return py_book_walk(side, qty, price, self.ts, self.pct / 100.0, self.notional, t, self.max_move,
                            tape, self.stress_k, flow)

    def fillable(self, side: float, qty: float, price: float, limit: float, t: int | None = None,
                 tape: float | None = None, flow: float = 0.0) -> float:
        """How much of a market order of ``qty`` fills before the walk passes ``limit``."""
        from riskengine._liquidity import py_book_fillable

        t = int(self.ts[self.snapshot(t)]) if t is None else int(t)
        return py_book_fillable(side, qty, price, limit, self.ts, self.pct / 100.0, self.notional, t,
                                self.max_move, tape, self.stress_k, flow)

    def describe(self) -> str:
        """One line for progress output."""
        return (f"depth curve {len(self.ts):,} snapshot(s) x {self.pct.shape[2]} band(s), median "
                f"{self.depth_per_pct:,.0f} within 1% ({self.mode})")


def _tail_slope(dist: np.ndarray, notional: np.ndarray) -> np.ndarray:
    """The slope a walk extrapolates along past the last knot (knots on the last axis): the
    last segment's, or the mean slope ``D_K / delta_K`` if that segment is flat
    (``_liquidity.curve_depth``)."""
    d1, n1 = dist[..., -1], notional[..., -1]
    if dist.shape[-1] > 1:
        last = (n1 - notional[..., -2]) / (d1 - dist[..., -2])
    else:
        last = n1 / d1
    return np.where(last > 0, last, n1 / d1)


def _pad(dist: np.ndarray, notional: np.ndarray, extra: int) -> tuple[np.ndarray, np.ndarray]:
    """``extra`` knots continuing a side's last segment (the mean slope if it is flat), spaced
    like it."""
    d1, n1 = float(dist[-1]), float(notional[-1])
    slope = float(_tail_slope(dist, notional))
    step = d1 - (float(dist[-2]) if len(dist) > 1 else 0.0)
    i = np.arange(1, extra + 1, dtype=np.float64)
    return d1 + i * step, n1 + slope * i * step


def window_snapshots(table: Any, start: int | None, end: int | None, where: str) -> Any:
    """Rows of a depth table (Arrow, columns ``ts``, ``pct``, ``notional``) whose snapshot is in
    use somewhere in ``[start, end)``: those inside, and the last one at or before ``start``.

    Raises
    ------
    ValueError
        No snapshot at or before ``end``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    ts = table.column("ts")
    if pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts, pa.int64())
    ts = ts.to_numpy() if hasattr(ts, "to_numpy") else np.asarray(ts)
    keep = np.ones(len(ts), dtype=bool)
    if end is not None:
        keep &= ts < end
    if start is not None:
        before = ts[ts <= start]
        first = before.max() if len(before) else None
        keep &= ts >= (first if first is not None else start)
    if not keep.any():
        span = f"{_iso(ts.min())} .. {_iso(ts.max())}" if len(ts) else "nothing"
        raise ValueError(f"{where}: no depth snapshot in use in the window (the file spans {span})")
    return table.filter(pa.array(keep))

