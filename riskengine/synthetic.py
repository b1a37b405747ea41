"""Seeded synthetic scenarios: a crash tape shaped like 2025-10-10 BTC and a simple population.

Used by ``riskengine run`` (the built-in default), the tests and the benchmarks. The calibrated
population generator and real tapes come with the data and cascade-realism work; the numbers
here are illustrative and say where they come from. The designs are the documented presets
(``riskengine.venues``), with fund and vault sizes scaled to the synthetic book. The tape and the
population come from the shared generators (:mod:`riskengine.generators`); this module states
their parameters.
"""

from __future__ import annotations

from riskengine import generators, venues
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import VenueDesign

NS = 1_000_000_000
#: 2025-10-10 20:00 UTC, the start of the default window
CRASH_DAY_START_NS = 1_760_126_400 * NS
#: the unit of the synthetic tape's shape: hours since the first trade
HOUR_S = 3_600.0


def crash_tape(ticks: int = 200_000, *, start_price: float = 121_700.0, duration_s: float = 7_200.0,
               drop: float = 0.12, wick: float = 0.035, rebound: float = 0.06, noise: float = 0.0004, seed: int = 7,
               start_ns: int = CRASH_DAY_START_NS) -> Tape:
    """A crash tape: a calm hour, a ~16% fall in the next 20 minutes ending in a wick, a rebound.

    The shape follows BTC on 2025-10-10 (about 121.7k to a low near 102.5k around 21:20 UTC,
    data/README.md): a 2% drift down over the first hour, a smooth fall of ``drop`` over the
    next 21 minutes, a 1.2-minute wide wick centred at 1 h 20 min 24 s, a rebound over the last
    39 minutes of a 2-hour tape. The index stream is the same path without the wick and the tick
    noise, as an index built from other venues would be. Built by
    :func:`riskengine.generators.crash_tape` (times drawn at random over ``duration_s``).

    Parameters
    ----------
    ticks : int
        Number of trades.
    start_price : float
        First price.
    duration_s : float
        Span of the tape (the shape is placed in hours from the start, whatever the span).
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
    return generators.crash_tape(
        ticks, seed, start_price=start_price, start_ns=start_ns, duration_s=duration_s, time_unit_s=HOUR_S,
        ramps=(generators.Ramp(0.0, 1.0, -0.02, smooth=False),  # the calm hour's drift
               generators.Ramp(1.0, 0.35, -drop),
               generators.Ramp(1.35, 0.65, rebound)),
        wicks=(generators.Wick(1.34, 0.02, wick),),
        noise=generators.Noise(noise, detrend_ticks=501),
        index_stream=True, trade_sizes=(-3.0, 1.5), smoothstep_order="square-first")


def population(accounts: int = 100_000, *, price: float = 121_700.0, open_interest: float = 1e9,
               long_share: float = 0.7, leverage=(2, 5, 10, 20, 40),
               leverage_weights=(0.2, 0.3, 0.3, 0.15, 0.05), cross_share: float = 0.5,
               flat_share: float = 0.02, entry_spread: float = 0.02, seed: int = 7) -> Population:
    """A simple seeded population of leveraged traders (:func:`riskengine.generators.leveraged_population`).

    Sizes are lognormal (sd of log size 1.5, heavy-tailed), scaled so long notional at the entry
    prices is ``open_interest x long_share`` and short notional ``open_interest x (1 - long_share)``;
    the external market holds the difference. Each account is long with probability
    ``long_share``. Entries scatter around ``price`` (``price x exp(N(0, entry_spread))``);
    collateral is set so equity at ``price`` is notional / leverage (cross accounts hold 1-3x
    that: their wallet). A ``flat_share`` of accounts hold collateral and no position.
    """
    return generators.leveraged_population(
        accounts, seed, price=price, long_share=long_share, open_interest=open_interest,
        leverage=generators.DiscreteLeverage(tuple(leverage), tuple(leverage_weights)),
        notional_median=1.0, notional_sigma=1.5, entry_spread=entry_spread, entry_scatter="lognormal",
        cross_share=cross_share, cross_excess=(1.0, 3.0), flat_share=flat_share, draw_order=generators.ASPECTS)


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
