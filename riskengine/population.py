"""Trader populations: a seeded generator and a file loader.

A population is the set of accounts a replay starts with, one position each on the scenario's
instrument (:class:`riskengine.Population`). It is either generated from a few parameters
(:func:`generate`, configured by :class:`riskengine.config.PopulationSpec`) or read from a CSV or
Parquet file (:func:`load_population`). The fixed-shape populations of the synthetic scenario and
the benchmarks come from :func:`riskengine.generators.leveraged_population`; why :func:`generate`
is a design of its own is said there.

The external market (the order book and everyone outside the population) is the counterparty of
whatever the population does not hold itself: its position is ``-sum(size)``
(:func:`external_position`), so the population plus the external market always nets to zero.

Where the generator's defaults come from
----------------------------------------
The reference is ``../shared/reference/venue-mechanisms.md``. It gives no pre-crash account-level
distribution (leverage, size, margin mode) for any venue, so every default below is
**illustrative**; the public figures it does give bound them:

================================  ==========================  =====================================
Parameter                         Default                     Source
================================  ==========================  =====================================
``accounts``                      100,000                     illustrative
``open_interest_usd``             1e9                         illustrative; reference §5: BTC perp
                                                              open interest was about $8B on Binance,
                                                              $5.5B on Bybit, $3B on Hyperliquid
                                                              (June 2025, [3P S67])
``long_share``                    0.7                         illustrative (a long-heavy market);
                                                              reference §5: 83.9% of the liquidated
                                                              notional on 2025-10-10 was long
                                                              (Amberdata [3P S66]) - an outcome, not
                                                              the pre-crash split
``leverage``                      2/5/10/20/40x with          illustrative; reference §2.1: 40x is
                                  weights .2/.3/.3/.15/.05    Hyperliquid's BTC maximum, §1.1:
                                                              Binance allows up to 125-150x on small
                                                              BTCUSDT notional
``sizes``                         lognormal, sigma 1.5        illustrative
``cross_share``                   0.5                         illustrative (no public split)
``cross_excess``                  1-3x                        illustrative
``flat_share``                    0.02                        illustrative
``entry_lookback_s``              21,600 (6 h)                illustrative
``entry_spread``                  0.02                        illustrative
flat accounts' collateral         100-10,000 USD, uniform     illustrative (:data:`FLAT_COLLATERAL_USD`)
================================  ==========================  =====================================
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskengine.codes import MarginMode
from riskengine.config import PopulationSpec, SizeDistribution
# FLAT_COLLATERAL_USD: collateral of an account without a position (illustrative), shared with
# the synthetic and benchmark populations
from riskengine.generators import FLAT_COLLATERAL_USD, collateral_for_equity
from riskengine.scenario import Population, Tape

#: an account whose unrealised profit alone exceeds its target equity keeps this share of the
#: target as collateral (it then runs below its drawn leverage); see :func:`generate`
MIN_COLLATERAL_SHARE = 0.01
#: columns of a population file, in order
COLUMNS = ("account", "side", "size", "entry_price", "collateral", "margin_mode")

# independent random streams, one per aspect: changing one parameter (say cross_share) leaves
# every other aspect of the population as it was
_SIDES, _SIZES, _LEVERAGE, _MODES, _EXCESS, _ENTRIES, _FLAT = range(7)


@dataclass(frozen=True)
class GeneratedPopulation:
    """A generated population and how it was made.

    Attributes
    ----------
    population : Population
        The accounts.
    leverage : ndarray of float64
        Leverage drawn for each account (NaN for flat accounts): a position's margin at the start
        price is ``notional / leverage``; a cross account's equity is that times its excess.
    price : float
        The start price the notional is measured at.
    external_size : float
        The external market's position, ``-sum(population.size)`` (base units).
    entries_from : str
        ``"tape"`` (trades before the window) or ``"spread"`` (around the start price).
    """

    population: Population
    leverage: np.ndarray
    price: float
    external_size: float
    entries_from: str

    @property
    def long_notional(self) -> float:
        """Long notional at the start price."""
        size = self.population.size
        return float(size[size > 0].sum() * self.price)

    @property
    def short_notional(self) -> float:
        """Short notional at the start price."""
        size = self.population.size
        return float(-size[size < 0].sum() * self.price)


def external_position(population: Population) -> float:
    """The external market's position: the opposite of the population's net position.

    Every position in the population has a counterparty, either another account or the external
    market (the book), so ``population.size.sum() + external_position(population) == 0``.
    """
    return -float(np.sum(population.size))


def raw_sizes(sizes: SizeDistribution, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` heavy-tailed raw sizes (scaled to open interest by the caller): lognormal with median
    1 and sd of log size ``sizes.sigma``, or Pareto I with scale 1 and tail index ``sizes.alpha``
    (``P(X > x) = x^-alpha``)."""
    if sizes.distribution == "pareto":
        return rng.pareto(sizes.tail, n) + 1.0
    return rng.lognormal(0.0, sizes.tail, n)


def _stamp(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _entry_trades(tape: Tape, window_start_ns: int, lookback_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Prices and sizes of the trades in ``[window_start - lookback, window_start)``."""
    lo = window_start_ns - round(lookback_s * 1e9)
    span = f"the tape spans {_stamp(int(tape.ts[0]))} .. {_stamp(int(tape.ts[-1]))}"
    if lo < tape.ts[0]:
        raise ValueError(f"the entry window {_stamp(lo)} .. {_stamp(window_start_ns)} begins before the tape "
                         f"({span}): shorten entry_lookback_s, start the window later, or set "
                         f"entry_lookback_s = 0 to scatter entries by entry_spread")
    i, j = np.searchsorted(tape.ts, [lo, window_start_ns], side="left")
    if j <= i:
        raise ValueError(f"the entry window {_stamp(lo)} .. {_stamp(window_start_ns)} holds no trades of the "
                         f"tape ({span})")
    return tape.price[i:j], tape.qty[i:j]


def generate(spec: PopulationSpec, price: float, tape: Tape | None = None,
             window_start_ns: int | None = None) -> GeneratedPopulation:
    """A seeded population of leveraged traders, priced at ``price``.

    Parameters
    ----------
    spec : PopulationSpec
        The parameters (defaults and their sources: the module docstring). ``spec.file`` is
        ignored here (see :func:`load_population`).
    price : float
        The start price: the first trade of the replay window. Notional is measured at it.
    tape : Tape, optional
        A tape holding at least ``spec.entry_lookback_s`` of trades before ``window_start_ns``.
        Without one (a synthetic scenario, or a replay from the tape's first trade), or with
        ``entry_lookback_s = 0``, entries scatter around ``price``.
    window_start_ns : int, optional
        Start of the replay window (ns since epoch); required with ``tape``.

    Returns
    -------
    GeneratedPopulation
        With the population, the drawn leverage and the external market's position.

    Raises
    ------
    ValueError
        Too few accounts for the requested split, or (with a tape) an entry window
        ``[window_start - entry_lookback_s, window_start)`` that begins before the tape or holds
        no trade: one line, naming the window and the tape's span.

    Notes
    -----
    Identical output for the same spec, price and tape; each aspect draws from its own random
    stream (spawned from ``seed``), so changing one parameter leaves the others' draws alone.

    * Flat accounts: ``round(accounts x flat_share)``; they hold collateral drawn from
      :data:`FLAT_COLLATERAL_USD` and no position.
    * Sides: ``round(positioned x long_share)`` accounts are long (at least one per side when
      ``0 < long_share < 1``), the rest short, shuffled.
    * Sizes: heavy-tailed raw sizes (``spec.sizes``: lognormal ``sigma`` or Pareto ``alpha``),
      scaled per side so that long notional at ``price`` is exactly
      ``open_interest_usd x long_share`` and short notional ``open_interest_usd x (1 - long_share)``
      (up to float rounding). The external market holds the difference.
    * Leverage: drawn from ``spec.leverage`` values with its weights. It is the leverage at the
      window's start: a position's margin (equity at ``price``) is ``notional / leverage``.
    * Margin mode: cross with probability ``cross_share``; a cross account's wallet is larger
      than its position's margin by a factor uniform in ``cross_excess``.
    * Entries: volume-weighted draws from the tape's trades in the entry window (each trade with
      probability proportional to its size; equally if no trade has a size), else
      ``price x exp(N(0, entry_spread))``.
    * Collateral: equity at ``price`` minus the unrealised PnL ``size x (price - entry)``. If the
      profit alone exceeds the target equity, the collateral is
      :data:`MIN_COLLATERAL_SHARE` of the target (every position keeps positive collateral).
    """
    if not (np.isfinite(price) and price > 0):
        raise ValueError(f"price: expected a finite start price > 0 (got {price!r})")
    n = spec.accounts
    long_share = spec.long_share
    n_flat = round(n * spec.flat_share)
    n_pos = n - n_flat
    if n_pos < 1:
        raise ValueError(f"accounts: {n} account(s) with flat_share {spec.flat_share} leave no position; "
                         "expected more accounts or a smaller flat_share")
    n_long = round(n_pos * long_share)
    if 0.0 < long_share < 1.0:
        if n_pos < 2:
            raise ValueError(f"accounts: {n_pos} positioned account(s) cannot hold both sides of "
                             f"long_share {long_share}; expected at least 2")
        n_long = min(max(n_long, 1), n_pos - 1)
    entries_from = "spread"
    if tape is not None and spec.entry_lookback_s > 0:
        if window_start_ns is None:
            raise ValueError("window_start_ns: expected the replay window's start with a tape")
        hist_price, hist_qty = _entry_trades(tape, int(window_start_ns), spec.entry_lookback_s)
        entries_from = "tape"

    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(7)]

    side = np.repeat(np.array([1.0, -1.0, 0.0]), [n_long, n_pos - n_long, n_flat])
    side = rngs[_SIDES].permutation(side)
    is_long, is_short, flat = side > 0, side < 0, side == 0

    raw = raw_sizes(spec.sizes, rngs[_SIZES], n)
    raw[flat] = 0.0
    long_total, short_total = raw[is_long].sum(), raw[is_short].sum()
    scale = np.where(is_long, spec.open_interest_usd * long_share / long_total if long_total > 0 else 0.0,
                     spec.open_interest_usd * (1.0 - long_share) / short_total if short_total > 0 else 0.0)
    notional = raw * scale
    size = side * (notional / price)

    values = np.asarray(spec.leverage.values, dtype=np.float64)
    weights = np.asarray(spec.leverage.weights, dtype=np.float64)
    leverage = values[rngs[_LEVERAGE].choice(len(values), size=n, p=weights / weights.sum())]
    leverage[flat] = np.nan

    cross = rngs[_MODES].random(n) < spec.cross_share
    mode = np.where(cross, MarginMode.CROSS, MarginMode.ISOLATED).astype(np.int8)
    lo, hi = spec.cross_excess
    excess = np.where(cross, rngs[_EXCESS].uniform(lo, hi, n), 1.0)

    if entries_from == "tape":
        weight = np.cumsum(hist_qty) if hist_qty.sum() > 0 else np.arange(1.0, len(hist_price) + 1.0)
        pick = np.searchsorted(weight, rngs[_ENTRIES].random(n) * weight[-1], side="right")
        entry = hist_price[np.minimum(pick, len(hist_price) - 1)]
    else:
        entry = price * np.exp(rngs[_ENTRIES].normal(0.0, spec.entry_spread, n))
    entry[flat] = price

    with np.errstate(invalid="ignore"):
        equity = notional / leverage * excess
    collateral = collateral_for_equity(equity, size, entry, price, MIN_COLLATERAL_SHARE)
    collateral[flat] = rngs[_FLAT].uniform(*FLAT_COLLATERAL_USD, n)[flat]

    population = Population.from_arrays(collateral, size, entry, mode)
    leverage.flags.writeable = False
    return GeneratedPopulation(population, leverage, float(price), external_position(population), entries_from)


# ------------------------------------------------------------------------------ population files
_SIDE_CODES = {"long": 1.0, "short": -1.0, "+1": 1.0, "1": 1.0, "-1": -1.0, "1.0": 1.0, "+1.0": 1.0, "-1.0": -1.0}
_MODE_CODES = {"isolated": int(MarginMode.ISOLATED), "cross": int(MarginMode.CROSS)}


def _read_frame(path: Path, kind: str = "population", columns: Sequence[str] = (), empty: str = "an account"):
    """The rows of a CSV or Parquet ``kind`` file, refused in one line when the file is missing,
    unreadable, lacks one of ``columns`` or has no rows (``empty``: what a row should hold)."""
    if not path.is_file():
        raise ValueError(f"{path}: no such {kind} file")
    frame = _read_any(path, kind)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"(expected columns: {', '.join(columns)})")
    if len(frame) == 0:
        raise ValueError(f"{path}: no rows: expected at least {empty}")
    return frame


def _read_any(path: Path, kind: str):
    import pandas as pd

    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pandas()
        except Exception as exc:  # noqa: BLE001 - a damaged file is a user error here
            raise ValueError(f"{path}: cannot read as Parquet ({exc})") from None
    if name.endswith((".csv", ".csv.gz")):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{path}: cannot read as CSV ({exc})") from None
    raise ValueError(f"{path}: expected a .csv, .csv.gz or .parquet {kind} file")


def _first_bad(mask: np.ndarray) -> int:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else -1


def load_population(path: str | os.PathLike, *, return_ids: bool = False):
    """Read a population from a CSV or Parquet file.

    Parameters
    ----------
    path : str or PathLike
        ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` with the columns :data:`COLUMNS`, one row per
        account (other columns are ignored):

        * ``account``: a unique id (text or number);
        * ``side``: ``long``/``short`` or ``+1``/``-1``;
        * ``size``: position in base units, > 0;
        * ``entry_price``: > 0;
        * ``collateral``: the isolated margin or the cross wallet, > 0;
        * ``margin_mode``: ``isolated`` or ``cross``.

        Text values are matched case-insensitively.
    return_ids : bool
        Also return the account ids (account ``k`` of the population is row ``k`` of the file).

    Returns
    -------
    Population, or (Population, ndarray of ids) with ``return_ids``

    Raises
    ------
    ValueError
        One line naming the file, the row (numbered from 1, the header not counted) and what was
        expected: a missing column, a value that is not a number, a non-positive size, entry or
        collateral, an unknown side or margin mode, a missing or repeated account id.
    """
    import pandas as pd

    path = Path(path)
    frame = _read_frame(path, "population", COLUMNS, "one account")

    def where(i: int, column: str, value) -> str:
        if isinstance(value, np.generic):
            value = value.item()
        return f"{path}: row {i + 1}: {column} {value!r}"

    def text(column: str) -> pd.Series:
        col = frame[column]
        return col.astype(str).str.strip().str.lower().where(col.notna(), "")

    def number(column: str) -> np.ndarray:
        col = frame[column]
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        i = _first_bad(~np.isfinite(values))
        if i >= 0:
            raise ValueError(f"{where(i, column, col.iloc[i])}: expected a finite number")
        i = _first_bad(values <= 0)
        if i >= 0:
            what = {"size": "a size > 0 (base units; the side gives the sign)",
                    "entry_price": "an entry price > 0",
                    "collateral": "collateral > 0 behind a position"}[column]
            raise ValueError(f"{where(i, column, col.iloc[i])}: expected {what}")
        return values

    ids = frame["account"]
    id_text = ids.astype(str).str.strip()
    i = _first_bad((ids.isna() | (id_text == "")).to_numpy())
    if i >= 0:
        raise ValueError(f"{path}: row {i + 1}: account is empty: expected an account id")
    repeated = id_text.duplicated(keep="first").to_numpy()
    i = _first_bad(repeated)
    if i >= 0:
        first = int(np.flatnonzero((id_text == id_text.iloc[i]).to_numpy())[0])
        raise ValueError(f"{where(i, 'account', ids.iloc[i])}: repeats row {first + 1}: expected unique account ids")

    side_text = text("side")
    side = side_text.map(_SIDE_CODES).to_numpy(dtype=np.float64, na_value=np.nan)
    i = _first_bad(np.isnan(side))
    if i >= 0:
        raise ValueError(f"{where(i, 'side', frame['side'].iloc[i])}: expected long, short, +1 or -1")
    mode = text("margin_mode").map(_MODE_CODES).to_numpy(dtype=np.float64, na_value=np.nan)
    i = _first_bad(np.isnan(mode))
    if i >= 0:
        raise ValueError(f"{where(i, 'margin_mode', frame['margin_mode'].iloc[i])}: expected isolated or cross")
    size = number("size")
    entry = number("entry_price")
    collateral = number("collateral")
    population = Population.from_arrays(collateral, side * size, entry, mode.astype(np.int8))
    if return_ids:
        out = ids.to_numpy()
        out.flags.writeable = False
        return population, out
    return population


def write_population(population: Population, path: str | os.PathLike, ids=None) -> Path:
    """Write a population to CSV or Parquet (by the file's suffix) in the :func:`load_population` format.

    Parameters
    ----------
    population : Population
        Accounts with a position each (the format holds positions only).
    path : str or PathLike
        ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``.
    ids : array_like, optional
        Account ids; default ``0 .. n-1``.

    Raises
    ------
    ValueError
        A flat account (no position) or one without collateral, or ids of the wrong length.
    """
    import pandas as pd

    path = Path(path)
    n = len(population)
    flat = np.flatnonzero(population.size == 0)
    if len(flat):
        raise ValueError(f"population: {len(flat)} flat account(s) (first: {int(flat[0])}): a population file "
                         "holds positions only")
    bare = np.flatnonzero(population.collateral <= 0)
    if len(bare):
        raise ValueError(f"population.collateral[{int(bare[0])}] = 0: a population file expects collateral > 0 "
                         "behind every position")
    ids = np.arange(n) if ids is None else np.asarray(ids)
    if len(ids) != n:
        raise ValueError(f"ids: length {len(ids)} does not match the population (length {n})")
    frame = pd.DataFrame({
        "account": ids,
        "side": np.where(population.size > 0, "long", "short"),
        "size": np.abs(population.size),
        "entry_price": population.entry,
        "collateral": population.collateral,
        "margin_mode": np.where(population.mode == MarginMode.CROSS, "cross", "isolated"),
    })
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        frame.to_parquet(path, index=False)
    elif name.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False, float_format="%.17g")
    else:
        raise ValueError(f"{path}: expected a .csv, .csv.gz or .parquet {kind} file")
    return path
