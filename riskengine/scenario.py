"""Scenarios: a market tape and a trader population, validated before any run.

Every check raises ``ValueError`` naming the field, the offending index and value, and what
was expected. Inputs are never modified: arrays are converted (or viewed, when already
contiguous with the right dtype, to avoid copying long tapes) and marked read-only inside the
scenario. The caller's own array stays writeable: do not change it after building a scenario
from it, or pass a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from riskengine.funding import FundingStream


#: rows checked at a time, so validating a long tape needs no tape-sized temporaries
_CHUNK = 1 << 20


def _one_d(name: str, values, dtype) -> np.ndarray:
    """``values`` as a 1-D array (an empty one of ``dtype``), refused in one line otherwise."""
    try:
        arr = np.asarray(values)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a user error here
        raise ValueError(f"{name}: could not read as an array ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array (got shape {arr.shape})")
    return np.empty(0, dtype=dtype) if arr.size == 0 else arr


def _as_array(name: str, values, dtype) -> np.ndarray:
    arr = _one_d(name, values, dtype)
    if dtype is np.int64 and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "M":
            arr = arr.astype("datetime64[ns]")
            i = _first(np.isnat, arr)
            if i >= 0:
                raise ValueError(f"{name}[{i}] is NaT: expected a time")
            arr = arr.view(np.int64)
        else:
            raise ValueError(f"{name}: expected integer nanoseconds or datetime64 (got dtype {arr.dtype})")
    if dtype is np.int64 and arr.dtype.kind == "u":
        i = _first(lambda a: a > np.iinfo(np.int64).max, arr)
        if i >= 0:
            raise ValueError(f"{name}[{i}] = {arr[i]}: expected nanoseconds that fit in int64")
    if dtype is np.float64 and arr.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected numbers (got dtype {arr.dtype})")
    if dtype is np.int8:
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{name}: expected integer codes (got dtype {arr.dtype})")
        arr_f = arr.astype(np.float64)
        i = _first(lambda a: ~np.isin(a, (0.0, 1.0)), arr_f)
        if i >= 0:
            raise ValueError(f"{name}[{i}] = {arr[i].item()!r}: expected 0 (isolated) or 1 (cross)")
    out = np.ascontiguousarray(arr, dtype=dtype)
    if out is arr or np.shares_memory(out, arr):
        out = out.view()
    out.flags.writeable = False
    return out


def _first(mask_fn, arr: np.ndarray, *extra: np.ndarray) -> int:
    """Index of the first element for which ``mask_fn`` is true, scanning in chunks; -1 if none."""
    for start in range(0, len(arr), _CHUNK):
        stop = min(start + _CHUNK, len(arr))
        hits = np.flatnonzero(mask_fn(arr[start:stop], *(x[start:stop] for x in extra)))
        if len(hits):
            return start + int(hits[0])
    return -1


def _require(name: str, arr: np.ndarray, bad, expected: str) -> None:
    i = _first(bad, arr)
    if i >= 0:
        raise ValueError(f"{name}[{i}] = {arr[i].item()!r}: expected {expected}")


def _check_length(name: str, arr: np.ndarray, n: int, ref: str) -> None:
    if len(arr) != n:
        raise ValueError(f"{name}: length {len(arr)} does not match {ref} (length {n})")


@dataclass(frozen=True)
class Tape:
    """A time-ordered market tape.

    Attributes
    ----------
    ts : ndarray of int64
        Tick times, ns since epoch UTC, non-decreasing.
    price : ndarray of float64
        Trade prices, finite and > 0.
    qty : ndarray of float64
        Trade sizes in base units, >= 0 (volume metrics only).
    stream : ndarray of float64 or None
        A supplied mark/index price as of each tick (NaN before the stream starts).
    quote : str or None
        The currency prices are quoted in (``USD``, ``USDT``, ``USDC``), hence the unit of every
        money figure of a run; None: not known (:func:`riskengine.data.schema.quote_currency`).
    """

    ts: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    stream: np.ndarray | None = None
    quote: str | None = None

    @classmethod
    def from_arrays(cls, ts, price, qty=None, stream=None, quote: str | None = None) -> "Tape":
        """Build and validate a tape from arrays (never modified).

        Parameters
        ----------
        ts : array_like of int64 ns or datetime64
        price : array_like of float
        qty : array_like of float, optional
            Defaults to zeros.
        stream : array_like of float, optional
            Mark/index price per tick, NaN where not yet known.
        quote : str, optional
            The quote currency of the prices (see the class attributes).

        Raises
        ------
        ValueError
            On an empty tape, mismatched lengths, unsorted times, or a non-finite or
            non-positive price, naming the field and the first offending index.
        """
        ts_a = _as_array("tape.ts", ts, np.int64)
        price_a = _as_array("tape.price", price, np.float64)
        n = len(ts_a)
        if n == 0:
            raise ValueError("tape: expected at least one tick (got an empty tape)")
        _check_length("tape.price", price_a, n, "tape.ts")
        i = _first(lambda a, b: b < a, ts_a[:-1], ts_a[1:])
        if i >= 0:
            raise ValueError(
                f"tape.ts[{i + 1}] = {ts_a[i + 1]} is earlier than tape.ts[{i}] = {ts_a[i]}: "
                "expected non-decreasing times (sort the tape first)"
            )
        _require("tape.price", price_a, lambda a: ~(np.isfinite(a) & (a > 0)), "a finite price > 0")
        if qty is None:
            qty_a = np.zeros(n, dtype=np.float64)
            qty_a.flags.writeable = False
        else:
            qty_a = _as_array("tape.qty", qty, np.float64)
            _check_length("tape.qty", qty_a, n, "tape.ts")
            _require("tape.qty", qty_a, lambda a: ~(np.isfinite(a) & (a >= 0)), "a finite size >= 0")
        stream_a = None
        if stream is not None:
            stream_a = _as_array("tape.stream", stream, np.float64)
            _check_length("tape.stream", stream_a, n, "tape.ts")
            _require("tape.stream", stream_a, lambda a: ~np.isnan(a) & ~(np.isfinite(a) & (a > 0)),
                     "NaN (no value yet) or a finite price > 0")
        return cls(ts_a, price_a, qty_a, stream_a, quote)

    @classmethod
    def from_table(cls, table, ts: str = "ts", price: str = "price", qty: str | None = "qty",
                   stream: str | None = None) -> "Tape":
        """Build a tape from a pandas DataFrame or Arrow table with the named columns."""
        cols = list(table.column_names) if hasattr(table, "column_names") else list(table.columns)

        def col(name):
            if name not in cols:
                raise ValueError(f"tape table: missing column {name!r} (has {', '.join(map(str, cols))})")
            c = table[name]
            if getattr(getattr(c, "dt", None), "tz", None) is not None:  # tz-aware pandas times
                return c.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")
            return c.to_numpy() if hasattr(c, "to_numpy") else np.asarray(c)

        return cls.from_arrays(
            col(ts), col(price),
            col(qty) if qty is not None and qty in cols else None,
            col(stream) if stream is not None else None,
        )

    def with_stream(self, ts, price) -> "Tape":
        """Attach a mark/index stream given at its own times, aligned as-of each tick.

        Each tick gets the latest stream value at or before its time (NaN before the first).
        """
        s_ts = _as_array("stream.ts", ts, np.int64)
        s_px = _as_array("stream.price", price, np.float64)
        _check_length("stream.price", s_px, len(s_ts), "stream.ts")
        if len(s_ts) > 1:
            i = _first(lambda a, b: b < a, s_ts[:-1], s_ts[1:])
            if i >= 0:
                raise ValueError(f"stream.ts[{i + 1}] is earlier than stream.ts[{i}]: expected non-decreasing times")
        _require("stream.price", s_px, lambda a: ~(np.isfinite(a) & (a > 0)), "a finite price > 0")
        idx = np.searchsorted(s_ts, self.ts, side="right") - 1
        aligned = np.where(idx >= 0, s_px[np.clip(idx, 0, None)] if len(s_px) else np.nan, np.nan)
        return Tape.from_arrays(self.ts, self.price, self.qty, aligned, self.quote)

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class Population:
    """Trader accounts, one position each on the scenario's instrument.

    Attributes
    ----------
    collateral : ndarray of float64
        Margin backing the position (isolated margin, or the cross wallet), finite and >= 0.
    size : ndarray of float64
        Signed position in base units (+ long, - short, 0 flat).
    entry : ndarray of float64
        Entry price, finite and > 0 for every account with a position.
    mode : ndarray of int8
        :class:`riskengine.codes.MarginMode` (0 isolated, 1 cross).
    """

    collateral: np.ndarray
    size: np.ndarray
    entry: np.ndarray
    mode: np.ndarray

    @classmethod
    def from_arrays(cls, collateral, size, entry, mode=None) -> "Population":
        """Build and validate a population from arrays (never modified).

        Raises
        ------
        ValueError
            On mismatched lengths, a negative or non-finite collateral, a non-finite size, a
            position without a positive entry price, or an unknown margin mode.
        """
        col = _as_array("population.collateral", collateral, np.float64)
        n = len(col)
        size_a = _as_array("population.size", size, np.float64)
        entry_a = _as_array("population.entry", entry, np.float64)
        _check_length("population.size", size_a, n, "population.collateral")
        _check_length("population.entry", entry_a, n, "population.collateral")
        _require("population.collateral", col, lambda a: ~(np.isfinite(a) & (a >= 0)), "a finite collateral >= 0")
        _require("population.size", size_a, lambda a: ~np.isfinite(a), "a finite signed size")
        i = _first(lambda e, q: (q != 0) & ~(np.isfinite(e) & (e > 0)), entry_a, size_a)
        if i >= 0:
            raise ValueError(f"population.entry[{i}] = {entry_a[i].item()!r}: expected a finite entry price > 0 "
                             "for a position")
        if mode is None:
            mode_a = np.zeros(n, dtype=np.int8)
            mode_a.flags.writeable = False
        else:
            mode_a = _as_array("population.mode", mode, np.int8)  # checks the codes
            _check_length("population.mode", mode_a, n, "population.collateral")
        return cls(col, size_a, entry_a, mode_a)

    @classmethod
    def from_table(cls, table) -> "Population":
        """Build from a DataFrame/Arrow table with ``collateral, size, entry[, mode]`` columns."""
        cols = list(table.column_names) if hasattr(table, "column_names") else list(table.columns)
        for need in ("collateral", "size", "entry"):
            if need not in cols:
                raise ValueError(f"population table: missing column {need!r} (has {', '.join(map(str, cols))})")

        def col(name):
            c = table[name]
            return c.to_numpy() if hasattr(c, "to_numpy") else np.asarray(c)

        return cls.from_arrays(col("collateral"), col("size"), col("entry"),
                               col("mode") if "mode" in cols else None)

    def __len__(self) -> int:
        return len(self.collateral)


@dataclass(frozen=True)
class Scenario:
    """A named tape and population; ``funding``: the funding rates paid over the tape, if any
    (a :class:`riskengine.funding.FundingStream`, paid by the designs whose ``funding.rule`` is
    ``data``)."""

    name: str
    tape: Tape
    population: Population
    funding: FundingStream | None = None
