"""Mark-price methods. A new method is a new case here; the engine loop only calls
:c:func:`mark_update` (new tick) and :c:func:`mark_refresh` (same tick, after impact moved).

* last trade: the simulated trade price;
* EMA: Hyperliquid's time-weighted EMA (``num <- num e^(-t/tau) + sample t``,
  ``den <- den e^(-t/tau) + t``; "Robust price indices", reference §2.3) of simulated prices;
* stream: a supplied mark/index price (the simulated trade price until the stream starts);
* index + EMA basis: ``index + EMA(sim - index)`` (Binance "Price 2 = index + MA basis",
  Hyperliquid "oracle + 150 s EMA"; reference §1.3, §2.3);
* Binance median: ``median(index, index + EMA basis, last)`` — Binance's
  ``median(P1, P2, last)`` with ``P1 = index x (1 + funding x time to funding / 8h)``; no funding
  stream is modelled, so ``P1`` is the index, and the moving-average basis is an EMA
  (reference §1.3, [DOC S16], [INF]);
* Hyperliquid median: ``median(oracle + 150 s EMA basis, median(bid, ask, last), external
  perp mids)``; the tape has no book and no external perp mids, so per the documented
  fallback for two of three inputs the 30 s EMA of the second joins them:
  ``median(oracle + EMA basis, last, 30 s EMA of last)`` (reference §2.3, [DOC S34]).

Without the stream (before it starts, or never) every stream-based method marks at the last
trade. The first sample seeds an empty EMA, weighted by its own interval. Within one tick
(time step 0) an EMA does not move, so only components that are the trade price itself
follow the cascade's own impact.
"""

from libc.math cimport exp

from riskengine._calc cimport median3

from riskengine._typedefs cimport (
    MARK_BINANCE_MEDIAN, MARK_EMA, MARK_HL_MEDIAN, MARK_INDEX_EMA_BASIS, MARK_LAST, MARK_STREAM,
    float64_t, i64,
)


cdef float64_t ema_update(Ema* st, float64_t sample, float64_t weight) noexcept nogil:
    cdef float64_t decay
    if st.den == 0.0:
        # an empty EMA is seeded by its first sample, weighted by its own interval (1 ns at t0)
        if weight <= 0.0:
            weight = 1.0
        st.num = sample * weight
        st.den = weight
    else:
        decay = exp(-weight / st.tau_ns)
        st.num = st.num * decay + sample * weight
        st.den = st.den * decay + weight
    return st.num / st.den


cdef float64_t mark_update(MarkState* st, float64_t sim_price, float64_t stream_value,
                           i64 dt) noexcept nogil:
    cdef float64_t x = stream_value
    cdef float64_t w = <float64_t>dt
    cdef float64_t basis, last_ema
    st.index = x
    if st.method == MARK_LAST:
        st.mark = sim_price
    elif st.method == MARK_STREAM:
        st.mark = x if x == x else sim_price
    elif st.method == MARK_EMA:
        st.mark = ema_update(&st.basis, sim_price, w)
    elif st.method == MARK_HL_MEDIAN:
        last_ema = ema_update(&st.last, sim_price, w)
        if x != x:
            st.mark = sim_price
        else:
            st.mark = median3(x + ema_update(&st.basis, sim_price - x, w), sim_price, last_ema)
    elif x != x:
        st.mark = sim_price
    else:
        basis = ema_update(&st.basis, sim_price - x, w)
        if st.method == MARK_INDEX_EMA_BASIS:
            st.mark = x + basis
        else:
            st.mark = median3(x, x + basis, sim_price)
    return st.mark


cdef float64_t mark_refresh(MarkState* st, float64_t sim_price) noexcept nogil:
    cdef float64_t x = st.index
    if st.method == MARK_LAST:
        st.mark = sim_price
    elif st.method == MARK_BINANCE_MEDIAN or st.method == MARK_HL_MEDIAN:
        if x != x:
            st.mark = sim_price
        elif st.method == MARK_BINANCE_MEDIAN:
            st.mark = median3(x, x + st.basis.num / st.basis.den, sim_price)
        else:
            st.mark = median3(x + st.basis.num / st.basis.den, sim_price,
                              st.last.num / st.last.den)
    return st.mark


def py_ema(samples, weights, double tau):
    """Hyperliquid-style time-weighted EMA over ``samples`` with per-sample ``weights``
    (time since the previous update), starting from an empty state whose first sample is
    weighted by its own weight. Returns the EMA after each sample (used by the E14 test).
    """
    cdef Ema st
    st.tau_ns = tau
    st.num = 0.0
    st.den = 0.0
    return [ema_update(&st, s, w) for s, w in zip(samples, weights)]


