"""Seeded generators of synthetic inputs: one crash-tape generator and one leveraged-population
generator, used by the built-in synthetic scenario (:mod:`riskengine.synthetic`) and the
benchmark workloads (:mod:`riskengine.bench`), each of which only states its parameters.

Everything is vectorised NumPy (no Python loop per tick or account) and drawn from one
:class:`numpy.random.Generator` (or a seed), so the same parameters and seed give the same
arrays. Tapes are built in place where it matters (the benchmark's 10M-tick tapes): a few
tape-sized float64 arrays at most.

:func:`crash_tape`
    A log-price path made of :class:`Ramp` moves (a drift, a slide, a rebound: linear or
    smoothstep), :class:`Gap` jumps and :class:`Wick` dips, with a bounded random walk
    (:class:`Noise`) on top; trade times on a regular grid (``tick_ns``) or drawn at random over
    ``duration_s``; optionally trade sizes and an index stream (the path without wicks and
    noise, as an index built from other venues would be).
:func:`quiet_tape`
    A price confined to a narrow band (a reflected random walk): nothing ever crosses.
:func:`leveraged_population`
    Accounts with one leveraged position each: sides, lognormal notionals (optionally scaled to
    a stated open interest), a leverage distribution (:class:`DiscreteLeverage` or
    :class:`LeverageRange`), entries scattered around the start price, margin modes, cross
    wallets' excess, and flat accounts holding collateral only.

Reproducing each caller's stream
--------------------------------
The synthetic scenario and the benchmark workloads existed before these generators did, each
with its own code, and their arrays must not change: the benchmark's figures are compared
across commits on these exact workloads and the synthetic scenarios' event logs are recorded.
Two parameters exist only so that one generator reproduces both callers bit for bit:

* ``draw_order`` (:func:`leveraged_population`): the population's aspects (:data:`ASPECTS`) are
  drawn from one generator in this order. The synthetic population draws them in the order of
  :data:`ASPECTS`; the benchmark in :data:`riskengine.bench.POPULATION_DRAW_ORDER`.
* ``smoothstep_order`` (:func:`crash_tape`): ``3z^2 - 2z^3`` evaluated as ``z*z*(3-2z)``
  (``"square-first"``, the synthetic tape) or ``(3-2z)*z*z`` (``"slope-first"``, the
  benchmark's tape). The two differ in the last bit for about 40% of the points.

Two further details keep the old arrays: a :class:`Gap` is placed at tick ``int(share x
ticks)`` (a share of the ticks, whatever the shape's time unit), and a flat account's size is
zeroed before the open-interest scaling when there is one (so a flat short holds ``-0.0``, as
the synthetic population always had) and after everything else when there is none.

The configured population generator
-----------------------------------
:func:`riskengine.population.generate` (``[population]`` in a config) is a different design and
stays in :mod:`riskengine.population`: exact counts of flat and long accounts, one independent
random stream per aspect (changing one parameter leaves the others' draws alone), entries drawn
from the tape before the replay window, Pareto sizes, notional measured at the start price and a
collateral floor. It shares this module's :data:`FLAT_COLLATERAL_USD` and
:func:`collateral_for_equity`; merging its draws into :func:`leveraged_population` would need a
switch for each of those differences and would change no output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from riskengine.codes import MarginMode
from riskengine.scenario import Population, Tape

NS = 1_000_000_000
#: collateral of an account without a position, USD, drawn uniformly (illustrative)
FLAT_COLLATERAL_USD = (100.0, 10_000.0)
#: the ways the smoothstep polynomial is evaluated (module docstring: reproducing each caller)
SMOOTHSTEP_ORDERS = ("square-first", "slope-first")
#: the random aspects of a population, in the synthetic population's draw order
ASPECTS = ("side", "flat", "size", "leverage", "entry", "mode", "excess", "flat_collateral")

Rng = np.random.Generator | int


# ------------------------------------------------------------------------------ building blocks
def tick_times(ticks: int, tick_ns: int, start_ns: int) -> np.ndarray:
    """``start_ns + k x tick_ns`` for k = 0..ticks-1 (int64, built in place)."""
    ts = np.arange(ticks, dtype=np.int64)
    ts *= tick_ns
    ts += start_ns
    return ts


def reflected_walk(rng: np.random.Generator, n: int, step: float, band: float,
                   out: np.ndarray | None = None) -> np.ndarray:
    """A Gaussian random walk of per-step sd ``step`` reflected into ``[-band, band]``.

    The cumulative sum is folded with a triangle wave of period ``4 band`` (continuous, slope
    +/-1), entirely in place: one float64 array of length ``n`` and no temporaries.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws ``n`` standard normals.
    n : int
        Steps.
    step, band : float
        Per-step standard deviation; half-width of the band.
    out : ndarray of float64, optional
        Where to build the walk (length ``n``); a new array if omitted.

    Returns
    -------
    ndarray of float64
        ``out``, starting near 0.
    """
    if out is None:
        out = np.empty(n, dtype=np.float64)
    rng.standard_normal(n, dtype=np.float64, out=out)
    out *= step
    np.cumsum(out, out=out)
    out += band
    np.mod(out, 4.0 * band, out=out)  # [0, 4b)
    out -= 2.0 * band                 # [-2b, 2b)
    np.abs(out, out=out)              # [0, 2b]
    out -= band                       # [-b, b]; 0 maps to -b ...
    np.negative(out, out=out)         # ... so flip: b - |y|, 0 maps to 0
    return out


def _smoothstep(z: np.ndarray, order: str) -> np.ndarray:
    """``3z^2 - 2z^3`` of ``z`` clipped to [0, 1], as a new array; ``z`` is scratch (overwritten)."""
    np.clip(z, 0.0, 1.0, out=z)
    if order == "square-first":  # z*z*(3-2z)
        s = np.multiply(z, z)
        z *= -2.0
        z += 3.0
        s *= z
    else:                        # (3-2z)*z*z
        s = np.multiply(z, -2.0)
        s += 3.0
        s *= z
        s *= z
    return s


# ------------------------------------------------------------------------------ crash tapes
@dataclass(frozen=True)
class Ramp:
    """A log-price move spread over ``[start, start + length]`` of the shape's time axis.

    Attributes
    ----------
    start, length : float
        Where the move begins and how long it takes, in the shape's time unit
        (:func:`crash_tape` ``time_unit_s``); before it the move is 0, after it ``log_move``.
    log_move : float
        The log-price change (negative for a fall).
    smooth : bool
        A smoothstep (flat at both ends) or a straight line.
    """

    start: float
    length: float
    log_move: float
    smooth: bool = True


@dataclass(frozen=True)
class Gap:
    """A jump: every tick from ``int(tick_share x ticks)`` on is ``fall`` lower (relative).

    Attributes
    ----------
    tick_share : float
        Share of the tape's ticks before the gap, in [0, 1] (on a regular tape, its time share).
    fall : float
        Relative size, in [0, 1): 0.03 is a 3% gap down.
    """

    tick_share: float
    fall: float


@dataclass(frozen=True)
class Wick:
    """A Gaussian dip of the log price: ``-depth x exp(-((t - center) / width)^2 / 2)``.

    Attributes
    ----------
    center, width : float
        Where the dip is deepest and its standard deviation, in the shape's time unit.
    depth : float
        Log depth at the centre.
    """

    center: float
    width: float
    depth: float


@dataclass(frozen=True)
class Noise:
    """A random walk on the log price, kept bounded one of two ways (give exactly one).

    Attributes
    ----------
    step : float
        Per-tick standard deviation of the walk.
    band : float, optional
        Reflect the walk into ``[-band, band]`` (:func:`reflected_walk`).
    detrend_ticks : int, optional
        Subtract the walk's centred moving average over this many ticks (all of them on a shorter
        tape): the walk reverts to the path.
    """

    step: float
    band: float | None = None
    detrend_ticks: int | None = None

    def __post_init__(self) -> None:
        if (self.band is None) == (self.detrend_ticks is None):
            raise ValueError("noise: expected exactly one of band or detrend_ticks")
        if not (math.isfinite(self.step) and self.step >= 0):
            raise ValueError(f"noise.step: expected a finite sd >= 0 (got {self.step!r})")
        if self.band is not None and not (math.isfinite(self.band) and self.band > 0):
            raise ValueError(f"noise.band: expected a finite half-width > 0 (got {self.band!r})")
        if self.detrend_ticks is not None and self.detrend_ticks < 1:
            raise ValueError(f"noise.detrend_ticks: expected at least 1 (got {self.detrend_ticks})")

    def walk(self, rng: np.random.Generator, n: int, out: np.ndarray) -> np.ndarray:
        """Draw the walk into ``out`` (length ``n``, float64) and return it."""
        if self.band is not None:
            return reflected_walk(rng, n, self.step, self.band, out=out)
        rng.standard_normal(n, dtype=np.float64, out=out)
        out *= self.step
        np.cumsum(out, out=out)
        window = min(self.detrend_ticks, n)
        out -= np.convolve(out, np.ones(window) / window, mode="same")
        return out


def slide_log_move(drop: float, gaps: Sequence[Gap]) -> float:
    """The log move of a slide that, with ``gaps``, makes a fall of ``drop`` (relative) in all."""
    gap_log = sum(math.log1p(-g.fall) for g in gaps)
    return math.log1p(-drop) - gap_log


def crash_tape(ticks: int, rng: Rng, *, start_price: float, start_ns: int,
               tick_ns: int | None = None, duration_s: float | None = None,
               time_unit_s: float | None = None, ramps: Sequence[Ramp] = (), gaps: Sequence[Gap] = (),
               wicks: Sequence[Wick] = (), noise: Noise | None = None, index_stream: bool = False,
               trade_sizes: tuple[float, float] | None = None,
               smoothstep_order: Literal["square-first", "slope-first"] = "square-first") -> Tape:
    """A seeded tape of a crash (or any shape of ramps, gaps and wicks) with noise on top.

    ``price = start_price x exp(sum of ramps + gaps + wicks + noise)``, each term evaluated at
    every tick's position on the shape's time axis.

    Parameters
    ----------
    ticks : int
        Number of trades (at least 1).
    rng : numpy.random.Generator or int
        The random stream (or its seed). Draws, in order: the trade times (random arrivals only),
        the noise, the trade sizes; nothing else.
    start_price : float
        Price before any move (the first trade's price, but for noise).
    start_ns : int
        Time of the first trade (ns since epoch).
    tick_ns, duration_s : int or float
        Give exactly one. ``tick_ns``: trades on a regular grid ``start_ns + k x tick_ns``.
        ``duration_s``: trade times drawn uniformly over ``duration_s`` seconds and sorted (the
        first at ``start_ns``).
    time_unit_s : float, optional
        The unit of the ramps' and wicks' positions: seconds per unit (3600: hours since the first
        trade). None: shares of the tape's span (0 at the first trade, 1 at its end).
    ramps : sequence of Ramp
        Log moves, summed in order (a drift, a slide, a rebound ...).
    gaps : sequence of Gap
        Jumps, applied after the ramps.
    wicks : sequence of Wick
        Dips applied after the gaps (not part of the index stream).
    noise : Noise, optional
        A bounded random walk added last (none if omitted).
    index_stream : bool
        Set the tape's ``stream`` to the path of ramps and gaps alone.
    trade_sizes : (float, float), optional
        Trade sizes lognormal with this mean and sd of log size; all 0 if omitted.
    smoothstep_order : {"square-first", "slope-first"}
        How smooth ramps evaluate their polynomial (module docstring: the two differ in the last
        bit; each caller keeps its own).

    Returns
    -------
    Tape

    Raises
    ------
    ValueError
        Fewer than 1 tick, not exactly one of ``tick_ns`` / ``duration_s``, a non-positive span,
        length, width or start price, or a gap outside [0, 1): one line naming the parameter.
    """
    if ticks < 1:
        raise ValueError(f"ticks: expected at least 1 (got {ticks})")
    if (tick_ns is None) == (duration_s is None):
        raise ValueError("crash_tape: expected exactly one of tick_ns (a regular grid) or duration_s "
                         "(random arrivals)")
    if not (math.isfinite(start_price) and start_price > 0):
        raise ValueError(f"start_price: expected a finite price > 0 (got {start_price!r})")
    if tick_ns is not None and tick_ns < 1:
        raise ValueError(f"tick_ns: expected at least 1 (got {tick_ns})")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s: expected a finite span > 0 (got {duration_s!r})")
    if time_unit_s is not None and not (math.isfinite(time_unit_s) and time_unit_s > 0):
        raise ValueError(f"time_unit_s: expected seconds > 0 (got {time_unit_s!r})")
    for i, r in enumerate(ramps):
        if not r.length > 0:
            raise ValueError(f"ramps[{i}].length: expected > 0 (got {r.length!r})")
    for i, w in enumerate(wicks):
        if not w.width > 0:
            raise ValueError(f"wicks[{i}].width: expected > 0 (got {w.width!r})")
    for i, g in enumerate(gaps):
        if not (0.0 <= g.tick_share <= 1.0 and 0.0 <= g.fall < 1.0):
            raise ValueError(f"gaps[{i}]: expected tick_share in [0, 1] and fall in [0, 1) (got {g})")
    if smoothstep_order not in SMOOTHSTEP_ORDERS:
        raise ValueError(f"smoothstep_order: expected one of {', '.join(SMOOTHSTEP_ORDERS)} "
                         f"(got {smoothstep_order!r})")
    rng = np.random.default_rng(rng)

    # x: each tick's position on the shape's time axis (a tape-sized array this function owns)
    if tick_ns is not None:
        ts = None  # built last, when the scratch arrays are gone
        x = np.arange(ticks, dtype=np.float64)
        x /= ticks
        span_s = ticks * tick_ns / NS
    else:
        x = np.sort(rng.random(ticks))
        x[0] = 0.0
        ts = start_ns + (x * duration_s * NS).astype(np.int64)
        span_s = duration_s
    if time_unit_s is not None:
        x = x * span_s / time_unit_s

    logp = None
    scratch = None
    for r in ramps:
        if scratch is None:
            scratch = np.empty(ticks, dtype=np.float64)
        np.subtract(x, r.start, out=scratch)
        scratch /= r.length
        if r.smooth:
            term = _smoothstep(scratch, smoothstep_order)
        else:
            term = np.clip(scratch, 0.0, 1.0, out=scratch)
            scratch = None  # the term owns it now
        term *= r.log_move
        if logp is None:
            logp = term
        else:
            logp += term
        del term
    del scratch
    if logp is None:
        logp = np.zeros(ticks, dtype=np.float64)
    for g in gaps:
        logp[int(g.tick_share * ticks):] += math.log1p(-g.fall)
    stream = start_price * np.exp(logp) if index_stream else None
    for w in wicks:
        logp += -w.depth * np.exp(-0.5 * ((x - w.center) / w.width) ** 2)
    if noise is not None:
        logp += noise.walk(rng, ticks, out=x)  # x is not needed any more: its memory holds the walk
    del x
    np.exp(logp, out=logp)
    logp *= start_price
    qty = None if trade_sizes is None else rng.lognormal(trade_sizes[0], trade_sizes[1], ticks)
    if ts is None:
        ts = tick_times(ticks, tick_ns, start_ns)
    return Tape.from_arrays(ts, logp, qty, stream)


def quiet_tape(ticks: int, rng: Rng, *, start_price: float, start_ns: int, tick_ns: int,
               step: float, band: float) -> Tape:
    """A price that never leaves ``start_price x (1 +/- band)``: a reflected random walk.

    ``price = start_price x (1 + w)``, ``w`` a :func:`reflected_walk` of per-tick sd ``step``
    in ``[-band, band]``; trades every ``tick_ns`` from ``start_ns``; sizes 0. Built in place.
    """
    if ticks < 1:
        raise ValueError(f"ticks: expected at least 1 (got {ticks})")
    rng = np.random.default_rng(rng)
    ts = tick_times(ticks, tick_ns, start_ns)
    price = reflected_walk(rng, ticks, step, band)
    price += 1.0
    price *= start_price
    return Tape.from_arrays(ts, price)


# ------------------------------------------------------------------------------ populations
@dataclass(frozen=True)
class DiscreteLeverage:
    """Leverage drawn from ``values`` with ``weights``; a position's margin is notional / leverage.

    Attributes
    ----------
    values : tuple of float
        Leverages (> 0).
    weights : tuple of float
        Their probabilities, summing to 1.
    """

    values: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.values) == 0 or len(self.values) != len(self.weights):
            raise ValueError(f"leverage: expected as many weights as values, at least one "
                             f"(got {len(self.values)} values, {len(self.weights)} weights)")
        if not all(v > 0 for v in self.values):
            raise ValueError(f"leverage values: expected leverages > 0 (got {list(self.values)})")
        total = float(np.sum(np.asarray(self.weights, dtype=np.float64)))
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"leverage weights: expected weights summing to 1 (got {total!r})")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Each account's leverage."""
        return rng.choice(np.asarray(self.values, dtype=np.float64), size=n,
                          p=np.asarray(self.weights, dtype=np.float64))

    def margin(self, notional: np.ndarray, is_long: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        """Margin (equity) of each position: ``notional / leverage``."""
        return notional / drawn


@dataclass(frozen=True)
class LeverageRange:
    """Leverage between a low and a high bound per side, the margin fraction ``1 / leverage``
    uniform between ``1 / high`` and ``1 / low`` (so liquidation prices spread evenly).

    Attributes
    ----------
    long, short : (float, float)
        ``(low, high)`` leverage of long and of short positions, ``0 < low <= high``.
    """

    long: tuple[float, float]
    short: tuple[float, float]

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("long", self.long), ("short", self.short)):
            if not 0 < lo <= hi:
                raise ValueError(f"leverage.{name}: expected (low, high) with 0 < low <= high (got {(lo, hi)})")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Each account's position within its side's range (uniform in [0, 1))."""
        return rng.random(n)

    def margin(self, notional: np.ndarray, is_long: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        """Margin (equity) of each position: ``notional x`` its margin fraction."""
        lo = np.where(is_long, 1.0 / self.long[1], 1.0 / self.short[1])
        hi = np.where(is_long, 1.0 / self.long[0], 1.0 / self.short[0])
        return notional * (lo + (hi - lo) * drawn)


def collateral_for_equity(equity: np.ndarray, size: np.ndarray, entry: np.ndarray, price: float,
                          floor_share: float = 0.0) -> np.ndarray:
    """Collateral that gives each account ``equity`` at ``price``: equity minus the unrealised PnL
    ``size x (price - entry)``, at least ``floor_share x equity`` (an account whose profit alone
    exceeds its target keeps that much)."""
    return np.maximum(equity - size * (price - entry), floor_share * equity)


def leveraged_population(accounts: int, rng: Rng, *, price: float, long_share: float,
                         leverage: DiscreteLeverage | LeverageRange, open_interest: float | None = None,
                         notional_median: float = 1.0, notional_sigma: float = 1.5,
                         entry_spread: float = 0.02, entry_scatter: Literal["lognormal", "uniform"] = "lognormal",
                         cross_share: float = 0.5, cross_excess: tuple[float, float] | None = None,
                         flat_share: float = 0.02,
                         flat_collateral: tuple[float, float] = FLAT_COLLATERAL_USD,
                         draw_order: Sequence[str] = ASPECTS) -> Population:
    """A seeded population of leveraged traders, one position each, priced at ``price``.

    Parameters
    ----------
    accounts : int
        Number of accounts (flat ones included), at least 1.
    rng : numpy.random.Generator or int
        The random stream (or its seed); the aspects are drawn in ``draw_order``.
    price : float
        The start price: margins are measured at it.
    long_share : float
        Probability that an account is long (else short), in [0, 1].
    leverage : DiscreteLeverage or LeverageRange
        Each position's leverage at ``price``: its margin is ``notional at price / leverage``.
    open_interest : float, optional
        Scale the notionals per side so that long notional at the entry prices is
        ``open_interest x long_share`` and short ``open_interest x (1 - long_share)`` (the
        external market holds the difference). Omitted: notionals as drawn.
    notional_median, notional_sigma : float
        Notionals (at entry) are lognormal with this median and sd of log notional.
    entry_spread : float
        Entries scatter around ``price``: ``price x exp(N(0, entry_spread))`` (``"lognormal"``)
        or ``price x (1 + U(-entry_spread, entry_spread))`` (``"uniform"``).
    entry_scatter : {"lognormal", "uniform"}
        Which of the two.
    cross_share : float
        Probability that an account is cross-margined (else isolated).
    cross_excess : (float, float), optional
        A cross account's equity is its margin times a factor uniform in this range (its wallet
        holds more than the position needs); omitted: no excess, and nothing drawn for it.
    flat_share : float
        Probability that an account holds collateral (uniform in ``flat_collateral``) and no
        position.
    flat_collateral : (float, float)
        Range of a flat account's collateral.
    draw_order : sequence of str
        The order the aspects of :data:`ASPECTS` are drawn in, each once (``excess`` is skipped,
        and may be left out, without ``cross_excess``; ``flat`` before ``flat_collateral``). It
        changes which draws each aspect gets, not what they mean (module docstring: reproducing
        each caller).

    Returns
    -------
    Population
        Collateral such that equity at ``price`` is the margin (times the excess for cross
        accounts), at least 0 (:func:`collateral_for_equity`).

    Raises
    ------
    ValueError
        Fewer than 1 account, a share outside [0, 1], a non-positive price, or a draw order that
        is not the aspects once each: one line naming the parameter.
    """
    if accounts < 1:
        raise ValueError(f"accounts: expected at least 1 (got {accounts})")
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"price: expected a finite price > 0 (got {price!r})")
    for name, share in (("long_share", long_share), ("cross_share", cross_share), ("flat_share", flat_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name}: expected a share in [0, 1] (got {share!r})")
    if entry_scatter not in ("lognormal", "uniform"):
        raise ValueError(f"entry_scatter: expected lognormal or uniform (got {entry_scatter!r})")
    order = [a for a in draw_order if a != "excess" or cross_excess is not None]
    needed = [a for a in ASPECTS if a != "excess" or cross_excess is not None]
    if sorted(order) != sorted(needed) or order.index("flat") > order.index("flat_collateral"):
        raise ValueError(f"draw_order: expected each of {', '.join(needed)} once (excess optional without "
                         f"cross_excess), flat before flat_collateral (got {', '.join(draw_order)})")
    rng = np.random.default_rng(rng)
    n = accounts

    drawn: dict[str, np.ndarray] = {}
    for aspect in order:
        if aspect == "side":
            drawn[aspect] = rng.random(n) < long_share
        elif aspect == "flat":
            drawn[aspect] = rng.random(n) < flat_share
        elif aspect == "size":
            drawn[aspect] = rng.lognormal(math.log(notional_median), notional_sigma, n)
        elif aspect == "leverage":
            drawn[aspect] = leverage.draw(rng, n)
        elif aspect == "entry":
            drawn[aspect] = (rng.normal(0.0, entry_spread, n) if entry_scatter == "lognormal"
                             else rng.uniform(-entry_spread, entry_spread, n))
        elif aspect == "mode":
            drawn[aspect] = rng.random(n) < cross_share
        elif aspect == "excess":
            drawn[aspect] = rng.uniform(cross_excess[0], cross_excess[1], n)
        else:  # flat_collateral: one draw per flat account
            drawn[aspect] = rng.uniform(flat_collateral[0], flat_collateral[1], drawn["flat"].sum())

    is_long, flat, cross = drawn["side"], drawn["flat"], drawn["mode"]
    side = np.where(is_long, 1.0, -1.0)
    notional = drawn["size"]
    if open_interest is not None:
        notional[flat] = 0.0  # flat accounts take no share of the open interest
        scaled = np.zeros(n)
        for s, share in ((1.0, long_share), (-1.0, 1.0 - long_share)):
            mask = side == s
            total = notional[mask].sum()
            if total > 0:
                scaled[mask] = notional[mask] / total * open_interest * share
        notional = scaled
    if entry_scatter == "lognormal":
        entry = price * np.exp(drawn["entry"])
    else:
        entry = price * (1.0 + drawn["entry"])
    size = side * notional / entry
    equity = leverage.margin(np.abs(size) * price, is_long, drawn["leverage"])
    if cross_excess is not None:
        equity = equity * np.where(cross, drawn["excess"], 1.0)
    collateral = collateral_for_equity(equity, size, entry, price)
    if open_interest is None:
        size[flat] = 0.0
    collateral[flat] = drawn["flat_collateral"]
    mode = np.where(cross, MarginMode.CROSS, MarginMode.ISOLATED).astype(np.int8)
    return Population.from_arrays(collateral, size, entry, mode)
