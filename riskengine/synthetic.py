"""Seeded synthetic scenarios: a crash tape shaped like 2025-10-10 BTC and a simple population.

Used by ``riskengine run`` (the built-in default), the tests and the benchmarks. The calibrated
population generator and real tapes come with the data and cascade-realism work; the numbers
here are illustrative and say where they come from. The designs are the documented presets
(``riskengine.venues``), with fund and vault sizes scaled to the synthetic book.
"""

from __future__ import annotations

import numpy as np

from riskengine.codes import MarginMode
from riskengine.scenario import Population, Scenario, Tape
from riskengine import venues
from riskengine.venue import VenueDesign

NS = 1_000_000_000
#: 2025-10-10 20:00 UTC, the start of the default window
CRASH_DAY_START_NS = 1_760_126_400 * NS


def crash_tape(ticks: int = 200_000, *, start_price: float = 121_700.0, duration_s: float = 7_200.0,
               drop: float = 0.12, wick: float = 0.035, rebound: float = 0.06, noise: float = 0.0004, seed: int = 7,
               start_ns: int = CRASH_DAY_START_NS) -> Tape:
    """A crash tape: a calm hour, a ~16% fall in the next 20 minutes ending in a wick, a rebound.

    The shape follows BTC on 2025-10-10 (about 121.7k to a low near 102.5k around 21:20 UTC,
    data/README.md). The index stream is the same path without the wick and the tick noise, as
    an index built from other venues would be.

    Parameters
    ----------
    ticks : int
        Number of trades.
    start_price : float
        First price.
    duration_s : float
        Span of the tape.
    drop : float
        Log fall of the smooth path during the crash (after a 2% drift in the first hour).
    wick : float
        Extra log depth of the ~2-minute wick at the bottom.
    rebound : float
        Log recovery over the last 40 minutes.
    noise : float
        Per-tick log-price noise (random walk, mean-reverting to the path).
    seed : int
        Random seed.
    start_ns : int
        Time of the first tick.

    Returns
    -------
    Tape
        With ``stream`` set to the index path.
    """
    if ticks < 2:
        raise ValueError(f"ticks: expected at least 2 (got {ticks})")
    rng = np.random.default_rng(seed)
    u = np.sort(rng.random(ticks))
    u[0] = 0.0
    ts = start_ns + (u * duration_s * NS).astype(np.int64)
    x = u * duration_s / 3600.0  # hours since start
    def smoothstep(z):
        z = np.clip(z, 0.0, 1.0)
        return z * z * (3.0 - 2.0 * z)

    smooth = (-0.02 * np.clip(x, 0.0, 1.0) - drop * smoothstep((x - 1.0) / 0.35)
              + rebound * smoothstep((x - 1.35) / 0.65))
    wick_center, wick_width = 1.34, 0.02
    spike = -wick * np.exp(-0.5 * ((x - wick_center) / wick_width) ** 2)
    walk = np.cumsum(rng.normal(0.0, noise, ticks))
    walk -= np.convolve(walk, np.ones(501) / 501, mode="same")
    index = start_price * np.exp(smooth)
    price = start_price * np.exp(smooth + spike + walk)
    qty = rng.lognormal(-3.0, 1.5, ticks)
    return Tape.from_arrays(ts, price, qty, index)


def population(accounts: int = 100_000, *, price: float = 121_700.0, open_interest: float = 1e9,
               long_share: float = 0.7, leverage=(2, 5, 10, 20, 40),
               leverage_weights=(0.2, 0.3, 0.3, 0.15, 0.05), cross_share: float = 0.5,
               flat_share: float = 0.02, entry_spread: float = 0.02, seed: int = 7) -> Population:
    """A simple seeded population of leveraged traders.

    Sizes are lognormal (heavy-tailed), scaled so long notional at ``price`` is
    ``open_interest x long_share`` and short notional ``open_interest x (1 - long_share)``;
    the external market holds the difference. Entries scatter around ``price``; collateral is
    set so equity at ``price`` is notional / leverage (cross accounts hold 1-3x that: their
    wallet). A ``flat_share`` of
    accounts hold collateral and no position.
    """
    if accounts < 1:
        raise ValueError(f"accounts: expected at least 1 (got {accounts})")
    w = np.asarray(leverage_weights, dtype=np.float64)
    if abs(w.sum() - 1.0) > 1e-9:
        raise ValueError(f"leverage_weights: expected weights summing to 1 (got {w.sum()!r})")
    rng = np.random.default_rng(seed)
    side = np.where(rng.random(accounts) < long_share, 1.0, -1.0)
    flat = rng.random(accounts) < flat_share
    raw = rng.lognormal(0.0, 1.5, accounts)
    raw[flat] = 0.0
    notional = np.zeros(accounts)
    for s, share in ((1.0, long_share), (-1.0, 1.0 - long_share)):
        mask = side == s
        total = raw[mask].sum()
        if total > 0:
            notional[mask] = raw[mask] / total * open_interest * share
    lev = rng.choice(np.asarray(leverage, dtype=np.float64), size=accounts, p=w)
    entry = price * np.exp(rng.normal(0.0, entry_spread, accounts))
    size = side * notional / entry
    mode = np.where(rng.random(accounts) < cross_share, MarginMode.CROSS, MarginMode.ISOLATED).astype(np.int8)
    # leverage is what the account runs at the window's start: equity = notional / leverage
    upnl = size * (price - entry)
    equity = np.abs(size) * price / lev * np.where(mode == MarginMode.CROSS, rng.uniform(1.0, 3.0, accounts), 1.0)
    collateral = np.maximum(equity - upnl, 0.0)
    collateral[flat] = rng.uniform(100.0, 10_000.0, flat.sum())
    return Population.from_arrays(collateral, size, entry, mode)


def crash_scenario(ticks: int = 200_000, accounts: int = 100_000, seed: int = 7, **tape_kw) -> Scenario:
    """The built-in synthetic crash: :func:`crash_tape` and :func:`population`."""
    tape = crash_tape(ticks, seed=seed, **tape_kw)
    pop = population(accounts, price=float(tape.price[0]), seed=seed + 1)
    return Scenario("synthetic-btc-crash", tape, pop)


def binance_style() -> VenueDesign:
    """The ``binance-usdm`` preset scaled to the synthetic book: a 2M USDT insurance fund
    (the preset's default is Binance's whole shared BTC/ETH/BNB fund, ~1.23B)."""
    return venues.preset("binance-usdm").with_overrides({"fund": {"initial": 2_000_000.0}})


def hyperliquid_style() -> VenueDesign:
    """The ``hyperliquid`` preset with a 5M USDC liquidator vault for the synthetic book."""
    return venues.preset("hyperliquid").with_overrides({"backstop": {"vault_balance": 5_000_000.0}})
