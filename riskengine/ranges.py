"""The range of every number in a config file and a venue design.

Each numeric field of :mod:`riskengine.config` and :mod:`riskengine.venue` has one of the kinds
below (a shared ``Annotated`` type made by :func:`number` or :func:`whole`): it must be a finite
number (``nan``, ``inf`` and ``-inf`` are refused whatever the bounds) within the kind's range,
set here once, for the reason :data:`KINDS` states. A field may narrow its kind (a share that
must be below 1, money that must be above 0). ``docs/config.md`` shows the table of kinds and
each key's bounds (``python -m riskengine.docs``); ``tests/test_ranges.py`` checks that every
numeric field has a kind and that every shipped config lies within the ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

#: quote currency (USD, USDT, USDC): at 1e15 a float64 resolves only an eighth of a unit
MAX_MONEY = 1e15
#: leverage (notional / margin)
MAX_LEVERAGE = 1000.0
#: a multiple of a margin or a balance
MAX_MULTIPLE = 1000.0
#: seconds: 365 days
MAX_SECONDS = 31_536_000.0
#: accounts, ticks, orders
MAX_COUNT = 1_000_000_000
#: random seeds: int64
MAX_SEED = 2**63 - 1
#: the log of a price ratio: e^5 = 148x
MAX_LOG_MOVE = 5.0
#: a model's dimensionless weight
MAX_FACTOR = 1000.0
#: an exponent or a distribution's shape
MAX_SHAPE = 100.0

#: JSON-schema key naming a field's kind (``riskengine schema``; read by riskengine.docs)
SCHEMA_KEY = "x-range"


@dataclass(frozen=True)
class Kind:
    """One kind of number: its name, its widest range (as the docs show it), what it is used
    for and why the range is what it is."""

    name: str
    bounds: str
    used_for: str
    why: str


KINDS = (
    Kind("money", "0 .. 1e15", "balances, notional, open interest, depth per 1%, thresholds, prices (quote currency)",
         "at 1e15 a float64 resolves only 0.125 of a unit, and less beyond, so sums of balances, fees and PnL "
         "there lose more than rounding; the world's yearly output is about 1e14 USD, so no real balance or "
         "position comes near"),
    Kind("leverage", "1 .. 1,000", "population.leverage.values, the `max_leverage` of a preset",
         "the highest leverage in the reference is Binance's 125-150x on small BTCUSDT positions (reference "
         "§1.1); 1,000x leaves room for what-ifs. Beyond it a position's margin is under 0.1% of its notional, "
         "less than the price moved in an average 30 seconds of the 2025-10-10 crash (about 16% in an hour)"),
    Kind("multiple", "0 .. 1,000", "a cross account's equity over its position margin, a fund's inventory "
         "over its equity", "the same bound as leverage: a multiple of a margin or a balance"),
    Kind("share", "0 .. 1", "shares of accounts or of open interest, rates of notional, probabilities",
         "a part of a whole"),
    Kind("seconds", "0 .. 31,536,000", "durations, intervals, time constants, latencies",
         "365 days: a replay spans hours to days, so a longer time constant or interval is a slip (e.g. "
         "milliseconds written as seconds)"),
    Kind("count", "0 .. 1,000,000,000", "accounts, ticks, orders per tick",
         "a billion accounts or ticks is past any machine's memory here (tens of bytes per account and "
         "per tick in the engine, several times that while building)"),
    Kind("seed", "0 .. 2^63 - 1", "random seeds",
         "NumPy takes seeds >= 0; a sweep stores grid values in int64 columns"),
    Kind("log move", "0 .. 5", "the synthetic crash's drop, wick, rebound and noise, the entry spread",
         "the log of a price ratio: e^5 = 148x, a fall of 99.3%, past every move on record (the deepest "
         "2025-10-10 wick in the shared data was 86%, FILUSD_PERP)"),
    Kind("percent", "0 .. 100", "a depth band's distance from the mid price, in percent",
         "a book band is within 100% of the mid"),
    Kind("factor", "0 .. 1,000", "a model's dimensionless weight (liquidity.stress_k)",
         "1,000 already thins a book to a thousandth of its depth at one depth's worth of recent flow"),
    Kind("shape", "0 .. 100", "a size distribution's sigma (at most 10) or alpha (at least 0.1), the ADL "
         "risk power (at most 10)",
         "exponents: the bounds keep sizes and weights finite in float64 (a lognormal of sigma 10 reaches "
         "e^60 = 1e26; 1,000x leverage to the 10th power is 1e30)"),
)

_NAMES = {k.name for k in KINDS}


def _extra(kind: str) -> dict[str, Any]:
    if kind not in _NAMES:
        raise ValueError(f"riskengine.ranges: unknown kind {kind!r} (kinds: {', '.join(sorted(_NAMES))})")
    return {SCHEMA_KEY: kind}


def number(kind: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None) -> Any:
    """A finite float of ``kind`` within the bounds (give one lower and one upper bound)."""
    if (ge is None) == (gt is None) or (le is None) == (lt is None):
        raise ValueError("riskengine.ranges.number: give one lower bound (ge or gt) and one upper bound (le or lt)")
    return Annotated[float, Field(ge=ge, gt=gt, le=le, lt=lt, allow_inf_nan=False, json_schema_extra=_extra(kind))]


def whole(kind: str, *, ge: int, le: int) -> Any:
    """A whole number of ``kind`` within ``[ge, le]``."""
    return Annotated[int, Field(ge=ge, le=le, json_schema_extra=_extra(kind))]


# the shared types: each numeric field of the config and venue models is one of these
Money = number("money", ge=0, le=MAX_MONEY)
PositiveMoney = number("money", gt=0, le=MAX_MONEY)
Leverage = number("leverage", ge=1, le=MAX_LEVERAGE)
Multiple = number("multiple", ge=1, le=MAX_MULTIPLE)
PositiveMultiple = number("multiple", gt=0, le=MAX_MULTIPLE)
MultipleOfBalance = number("multiple", ge=0, le=100)  # a threshold as a multiple of a balance
Share = number("share", ge=0, le=1)
Fraction = number("share", gt=0, le=1)
ShareBelowOne = number("share", ge=0, lt=1)
ShareInside = number("share", gt=0, lt=1)
NegativeShare = number("share", ge=-1, lt=0)  # a rate below zero, e.g. a funding floor
Seconds = number("seconds", ge=0, le=MAX_SECONDS)
PositiveSeconds = number("seconds", gt=0, le=MAX_SECONDS)
LogMove = number("log move", ge=0, le=MAX_LOG_MOVE)
Percent = number("percent", gt=0, le=100)
Factor = number("factor", ge=0, le=MAX_FACTOR)
Sigma = number("shape", gt=0, le=10)
Alpha = number("shape", ge=0.1, le=MAX_SHAPE)
Power = number("shape", ge=0, le=10)
Seed = whole("seed", ge=0, le=MAX_SEED)
Count = whole("count", ge=0, le=MAX_COUNT)
PositiveCount = whole("count", ge=1, le=MAX_COUNT)
TickCount = whole("count", ge=2, le=MAX_COUNT)


def check_leverage(value: object, name: str) -> float:
    """``value`` as a leverage of the ``leverage`` kind (for options outside the models, e.g. a
    preset's ``max_leverage``).

    Raises
    ------
    ValueError
        ``name: expected a finite leverage in [1, 1000] (got x)``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= MAX_LEVERAGE:
        raise ValueError(f"{name}: expected a finite leverage in [1, {MAX_LEVERAGE:,.0f}] (got {value!r})")
    return float(value)
