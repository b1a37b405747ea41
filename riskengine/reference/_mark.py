"""Plain-Python twin of ``cext/riskengine/_mark.pyx``: the mark-price methods and their EMAs.

The engine calls :func:`mark_update` at a new tick and :func:`mark_refresh` within a tick, after
the cascade's own impact moved the simulated price; each returns the new mark. The methods, their
sources and the EMA's seeding are documented in ``_mark.pyx``; the arithmetic here is the same,
in the same order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from riskengine.codes import MarkMethod
from riskengine.params import EngineParams
from riskengine.reference._calc import median3


@dataclass(slots=True)
class Ema:
    """Hyperliquid-style time-weighted EMA accumulators (``den == 0``: empty)."""

    tau_ns: float
    num: float = 0.0
    den: float = 0.0


@dataclass(slots=True)
class MarkState:
    """The mark method's state (the ``MarkState`` struct of ``_mark.pxd``)."""

    method: int
    #: EMA of ``sim - index`` (of ``sim`` for the EMA method)
    basis: Ema
    #: 30 s EMA of ``sim`` (Hyperliquid's fallback input)
    last: Ema
    index: float = math.nan
    mark: float = 0.0

    @classmethod
    def of(cls, params: EngineParams) -> "MarkState":
        """The empty state of ``params``' mark method."""
        return cls(params.mark_method, Ema(params.mark_ema_tau_ns), Ema(params.mark_ema2_tau_ns))


def ema_update(st: Ema, sample: float, weight: float) -> float:
    """Add ``sample`` with ``weight`` (time since the previous update); return the EMA."""
    if st.den == 0.0:
        # an empty EMA is seeded by its first sample, weighted by its own interval (1 ns at t0)
        if weight <= 0.0:
            weight = 1.0
        st.num = sample * weight
        st.den = weight
    else:
        decay = math.exp(-weight / st.tau_ns)
        st.num = st.num * decay + sample * weight
        st.den = st.den * decay + weight
    return st.num / st.den


def mark_update(st: MarkState, sim_price: float, stream_value: float, dt: int) -> float:
    """The mark at a new tick, ``dt`` ns after the previous one (``stream_value`` NaN: none yet)."""
    x = stream_value
    w = float(dt)
    st.index = x
    method = st.method
    if method == MarkMethod.LAST:
        st.mark = sim_price
    elif method == MarkMethod.STREAM:
        st.mark = x if x == x else sim_price
    elif method == MarkMethod.EMA:
        st.mark = ema_update(st.basis, sim_price, w)
    elif method == MarkMethod.HL_MEDIAN:
        last_ema = ema_update(st.last, sim_price, w)
        if x != x:
            st.mark = sim_price
        else:
            st.mark = median3(x + ema_update(st.basis, sim_price - x, w), sim_price, last_ema)
    elif x != x:
        st.mark = sim_price
    else:
        basis = ema_update(st.basis, sim_price - x, w)
        st.mark = x + basis if method == MarkMethod.INDEX_EMA_BASIS else median3(x, x + basis, sim_price)
    return st.mark


def mark_refresh(st: MarkState, sim_price: float) -> float:
    """Same tick, after impact moved the simulated price: components that follow it are
    recomputed (an EMA does not move within a tick)."""
    method = st.method
    x = st.index
    if method == MarkMethod.LAST:
        st.mark = sim_price
    elif method in (MarkMethod.BINANCE_MEDIAN, MarkMethod.HL_MEDIAN):
        if x != x:
            st.mark = sim_price
        elif method == MarkMethod.BINANCE_MEDIAN:
            st.mark = median3(x, x + st.basis.num / st.basis.den, sim_price)
        else:
            st.mark = median3(x + st.basis.num / st.basis.den, sim_price, st.last.num / st.last.den)
    return st.mark
