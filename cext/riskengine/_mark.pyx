"""Mark-price methods. A new method is a new case here; the engine loop only calls
:c:func:`mark_update` (new tick) and :c:func:`mark_refresh` (same tick, after impact moved).

* last trade: the simulated trade price;
* EMA: Hyperliquid's time-weighted EMA (``num <- num e^(-t/tau) + sample t``,
  ``den <- den e^(-t/tau) + t``; "Robust price indices", reference §2.3) of simulated prices;
* stream: a supplied mark/index price (the simulated trade price until the stream starts);
* index + EMA basis: ``index + EMA(sim - index)`` (Binance "Price 2 = index + MA basis",
  Hyperliquid "oracle + 150 s EMA"; reference §1.3, §2.3).

The first sample seeds an empty EMA, weighted by its own interval. Within one tick (time step 0) an EMA
does not move, so only the last-trade mark follows the cascade's own impact.
"""

from libc.math cimport exp

from riskengine._typedefs cimport MARK_EMA, MARK_LAST, MARK_STREAM, float64_t, i64


cdef void ema_update(MarkState* st, float64_t sample, float64_t weight) noexcept nogil:
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


cdef float64_t mark_update(MarkState* st, float64_t sim_price, float64_t stream_value,
                           i64 dt) noexcept nogil:
    if st.method == MARK_LAST:
        st.mark = sim_price
    elif st.method == MARK_STREAM:
        st.mark = stream_value if stream_value == stream_value else sim_price
    elif st.method == MARK_EMA:
        ema_update(st, sim_price, <float64_t>dt)
        st.mark = st.num / st.den
    else:
        if stream_value != stream_value:
            st.mark = sim_price
        else:
            ema_update(st, sim_price - stream_value, <float64_t>dt)
            st.mark = stream_value + st.num / st.den
    return st.mark


cdef float64_t mark_refresh(MarkState* st, float64_t sim_price) noexcept nogil:
    if st.method == MARK_LAST:
        st.mark = sim_price
    return st.mark


def py_ema(samples, weights, double tau):
    """Hyperliquid-style time-weighted EMA over ``samples`` with per-sample ``weights``
    (time since the previous update), starting from an empty state whose first sample is
    weighted by its own weight. Returns the EMA after each sample (used by the E14 test).
    """
    cdef MarkState st
    out = []
    st.tau_ns = tau
    st.num = 0.0
    st.den = 0.0
    for s, w in zip(samples, weights):
        ema_update(&st, s, w)
        out.append(st.num / st.den)
    return out
