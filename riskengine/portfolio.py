"""Portfolios: user accounts holding positions in several instruments, each cross or isolated.

The data model of issue 12 (``../shared/DESIGN.md``, "Portfolios"). A
:class:`PortfolioScenario` (instruments and a portfolio) runs through
:func:`riskengine.engine.run` like a single-instrument :class:`riskengine.scenario.Scenario`
(which keeps its own path: a tape and a population); a config builds one from a scenario's
``[[scenarios.instruments]]`` and its ``portfolio`` table (:mod:`riskengine.config`).

Vocabulary
----------
* An :class:`Instrument` is a symbol with its own tape (and stream) and liquidity model;
  instruments are numbered ``0..I-1`` in the order the scenario lists them.
* A **user account** ``u`` owns a wallet (cross collateral, in the quote currency) and positions,
  each ``cross`` or ``isolated`` (an isolated position carries its own allocated margin).
  :class:`Portfolio` holds them in CSR form: ``start[u] .. start[u+1]`` are ``u``'s positions.
* A **margin account** ``m`` is the engine's unit of margining and liquidation
  (:meth:`Portfolio.margin_accounts`): a user's cross positions and wallet form one margin
  account; each isolated position is one of its own (its margin is its "wallet"). So an isolated
  position's loss never reaches the wallet or another position by construction, and a
  single-instrument population is exactly one margin account per account, as today
  (:meth:`Portfolio.from_population`).
* The **merged tape** (:func:`merge_tapes`) interleaves the instruments' tapes by time once;
  each tick carries its instrument and moves that instrument's price alone.

Positions files
---------------
:func:`load_portfolio` and :func:`write_portfolio`: CSV or Parquet, one row per position, the
columns :data:`COLUMNS`. Bad input is one ``ValueError`` line naming the file, the data row
(numbered from 1, the header not counted), the column and what was expected.

Where the generator's defaults come from
----------------------------------------
:func:`generate_portfolio` draws a portfolio from stated facts (:class:`PortfolioSpec`). The
references are ``../shared/reference/venue-mechanisms.md`` (§) and
``../shared/reference/portfolios-and-stress.md``; the data file is
``../shared/data/2025-10-10/hyperliquid-observed/``. No source gives a venue's pre-crash
account-level book (how many instruments an account holds, leverage, margin mode), so what is
not a public figure is **illustrative**:

======================  ========================  ==============================================
Parameter               Default                   Source
======================  ========================  ==============================================
``symbols``             BTC, ETH, SOL             Hyperliquid's three largest books on
                                                  2025-10-10 by liquidated notional
                                                  (``combined_impact_by_ticker.csv``)
``open_interest_usd``   BTC 3.0e9                 §5: Hyperliquid BTC perp open interest about
                                                  $3B (June 2025, [3P S67])
                        ETH 1.77e9, SOL 1.04e9    illustrative: BTC's $3B scaled by each asset's
                                                  liquidated notional on Hyperliquid on
                                                  2025-10-10 relative to BTC's (ETH $1.06B,
                                                  SOL $0.62B, BTC $1.79B;
                                                  ``combined_impact_by_ticker.csv``) - an
                                                  outcome, not a measured open interest
``max_leverage``        40, 25, 20                §2.1: Hyperliquid's maximum leverage of its
                                                  first tier, BTC 40x, ETH 25x, SOL 20x
                                                  [DOC S20]
``long_share``          0.7 each                  illustrative, as the single-instrument
                                                  generator (:mod:`riskengine.population`)
``accounts``            100,000                   illustrative; HyperReplay rebuilt 437,723
                                                  accounts for the crash hour (portfolios §2)
``holdings``            1: 0.7, 2: 0.2, 3: 0.1    illustrative; a floor: 928 of the 12,103
                                                  accounts (7.7%) active in BTC or SOL on
                                                  Hyperliquid in the crash window held both
                                                  (``btc_sol_positions_in_window.csv``; two of
                                                  162 assets)
``hedged_share``        0.18                      163 of those 928 accounts (17.6%) held BTC
                                                  and SOL on opposite sides (same file; the
                                                  window's positions, not the pre-crash book)
``cross_share``         0.5                       illustrative (no public split)
``cross_excess``        1-3x                      illustrative, as the single-instrument
                                                  generator
``flat_share``          0.02                      illustrative, as the single-instrument
                                                  generator
``leverage``            2/5/10/20/40x with        illustrative, as the single-instrument
                        weights .2/.3/.3/.15/.05  generator; capped at each instrument's
                                                  ``max_leverage``
``sizes``               lognormal, sigma 1.5      illustrative, as the single-instrument
                                                  generator
``entry_spread``        0.02                      illustrative
======================  ========================  ==============================================
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from riskengine.codes import MarginMode
from riskengine.config import SizeDistribution
from riskengine.files import write_atomic
from riskengine.generators import FLAT_COLLATERAL_USD, DiscreteLeverage, collateral_for_equity
from riskengine.liquidity import ConstantDepth, DepthCurve
from riskengine.population import MIN_COLLATERAL_SHARE, _first_bad, _read_frame, raw_sizes
from riskengine.scenario import Population, Tape, _as_array, _one_d, _check_length, _first, _require
from riskengine.venue import MARGIN_MODES

if TYPE_CHECKING:
    from riskengine.collateral import AssetPrices
    from riskengine.funding import FundingStream

#: columns of a positions file, in order
COLUMNS = ("account", "instrument", "size", "entry_price", "margin_mode", "isolated_margin", "wallet")
#: how many symbols an error line lists before "..."
_SYMBOLS_SHOWN = 8

_MODE_NAMES = {int(MarginMode.ISOLATED): "isolated", int(MarginMode.CROSS): "cross"}
_MODE_CODES = {name: code for code, name in _MODE_NAMES.items()}


# ------------------------------------------------------------------------------ helpers
def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _plain(value):
    """A NumPy scalar as the Python value it holds (for messages: ``-1.0``, not ``np.float64(-1.0)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _as_integers(name: str, values, dtype, lo: int, hi: int, expected: str) -> np.ndarray:
    """A read-only 1-D integer array of ``dtype`` with values in ``lo..hi`` (checked before the cast)."""
    arr = _one_d(name, values, dtype)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers (got dtype {arr.dtype})")
    _require(name, arr, lambda a: (a < lo) | (a > hi), expected)
    out = np.ascontiguousarray(arr, dtype=dtype)
    if out is arr or np.shares_memory(out, arr):
        out = out.view()
    return _readonly(out)


def _first_repeat(key: np.ndarray) -> tuple[int, int] | None:
    """``(i, j)``, ``i < j``, with ``key[i] == key[j]`` and ``j`` the smallest such index (``i``
    the key's first occurrence); None when the keys are distinct. O(n) when they increase."""
    if len(key) < 2 or bool(np.all(key[1:] > key[:-1])):
        return None
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return None
    later = order[1:][same]
    j = int(later.min())
    i = int(order[np.searchsorted(ordered, key[j], side="left")])
    return i, j


def _check_symbols(symbols: Sequence[str], name: str = "symbols") -> tuple[str, ...]:
    """The symbols as a tuple: at least one, each a non-empty string without surrounding spaces,
    all distinct."""
    if isinstance(symbols, str):
        raise ValueError(f"{name}: expected a sequence of symbols (got the string {symbols!r})")
    out = tuple(symbols)
    if not out:
        raise ValueError(f"{name}: expected at least one instrument")
    seen: dict[str, int] = {}
    for k, s in enumerate(out):
        if not isinstance(s, str) or not s or s != s.strip():
            raise ValueError(f"{name}[{k}] = {s!r}: expected a symbol (non-empty text without surrounding spaces)")
        if s in seen:
            raise ValueError(f"{name}[{k}] = {s!r}: repeats {name}[{seen[s]}]: expected distinct symbols")
        seen[s] = k
    return out


def _listed(symbols: Sequence[str]) -> str:
    shown = ", ".join(symbols[:_SYMBOLS_SHOWN])
    return shown + (f", ... ({len(symbols)} in all)" if len(symbols) > _SYMBOLS_SHOWN else "")


# ------------------------------------------------------------------------------ instruments and the merged tape
@dataclass(frozen=True)
class Instrument:
    """One instrument of a scenario: its symbol, its tape and its liquidity model.

    Attributes
    ----------
    symbol : str
        As the scenario names it (``BTCUSDT``); positions files refer to it.
    tape : Tape
        Its trades; ``tape.stream`` is its mark/index stream, if any.
    liquidity : ConstantDepth or DepthCurve, optional
        Its book; None: the design's default.
    funding : riskengine.funding.FundingStream, optional
        Its funding rates, paid by the designs whose ``funding.rule`` is ``data``.
    """

    symbol: str
    tape: Tape
    liquidity: ConstantDepth | DepthCurve | None = None
    funding: FundingStream | None = None

    def __post_init__(self) -> None:
        _check_symbols((self.symbol,), "instrument.symbol")
        if not isinstance(self.tape, Tape):
            raise ValueError(f"instrument {self.symbol}: tape: expected a Tape (got {type(self.tape).__name__})")
        if self.liquidity is not None and not isinstance(self.liquidity, (ConstantDepth, DepthCurve)):
            raise ValueError(f"instrument {self.symbol}: liquidity: expected ConstantDepth, DepthCurve or None "
                             f"(got {type(self.liquidity).__name__})")


@dataclass(frozen=True)
class MergedTape:
    """The instruments' tapes merged by time (:func:`merge_tapes`); arrays read-only.

    Attributes
    ----------
    ts : ndarray of int64
        Tick times, non-decreasing.
    inst : ndarray of int32
        The instrument each tick belongs to (its index in ``symbols``).
    price, qty : ndarray of float64
        The tick's trade price and size in its instrument.
    stream : ndarray of float64 or None
        The tick's instrument's stream value (NaN where that instrument has none yet, or no
        stream at all); None when no instrument has a stream.
    symbols : tuple of str
        The instruments, in index order.
    """

    ts: np.ndarray
    inst: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    stream: np.ndarray | None
    symbols: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ts)


def merge_tapes(instruments: Sequence[Instrument]) -> MergedTape:
    """Merge the instruments' tapes into one time-ordered tape.

    The merge is stable: ticks at equal times keep the instruments' order, then each tape's own
    order. A single instrument gives exactly its own arrays (the same read-only arrays, not
    copies) with ``inst`` all 0.

    Parameters
    ----------
    instruments : sequence of Instrument
        At least one, with distinct symbols; instrument ``k`` is ``instruments[k]``.

    Returns
    -------
    MergedTape

    Raises
    ------
    ValueError
        No instrument, an item that is not an :class:`Instrument`, or a repeated symbol.
    """
    instruments = tuple(instruments)
    for k, ins in enumerate(instruments):
        if not isinstance(ins, Instrument):
            raise ValueError(f"instruments[{k}]: expected an Instrument (got {type(ins).__name__})")
    symbols = _check_symbols([ins.symbol for ins in instruments], "instruments.symbol")
    tapes = [ins.tape for ins in instruments]
    if len(tapes) == 1:
        t = tapes[0]
        return MergedTape(t.ts, _readonly(np.zeros(len(t), dtype=np.int32)), t.price, t.qty, t.stream, symbols)
    lengths = [len(t) for t in tapes]
    ts = np.concatenate([t.ts for t in tapes])
    # each tape is sorted, so the stable sort (a merge of sorted runs) is a k-way merge
    order = np.argsort(ts, kind="stable")
    inst = np.repeat(np.arange(len(tapes), dtype=np.int32), lengths)[order]
    price = np.concatenate([t.price for t in tapes])[order]
    qty = np.concatenate([t.qty for t in tapes])[order]
    stream = None
    if any(t.stream is not None for t in tapes):
        stream = np.concatenate([t.stream if t.stream is not None else np.full(len(t), np.nan)
                                 for t in tapes])[order]
        _readonly(stream)
    return MergedTape(_readonly(ts[order]), _readonly(inst), _readonly(price), _readonly(qty), stream, symbols)


# ------------------------------------------------------------------------------ portfolios
@dataclass(frozen=True)
class MarginAccounts:
    """The engine's margin accounts (:meth:`Portfolio.margin_accounts`); arrays read-only.

    Attributes
    ----------
    owner : ndarray of int64, shape (M,)
        The user account (index in the portfolio) each margin account belongs to.
    collateral : ndarray of float64, shape (M,)
        The cross wallet, or the isolated position's margin.
    mode : ndarray of int8, shape (M,)
        :class:`riskengine.codes.MarginMode` of the margin account.
    start : ndarray of int64, shape (M+1,)
        ``start[m] .. start[m+1]`` are margin account ``m``'s positions.
    instrument : ndarray of int32, shape (P,)
    size : ndarray of float64, shape (P,)
    entry : ndarray of float64, shape (P,)
        The positions, grouped by margin account.
    """

    owner: np.ndarray
    collateral: np.ndarray
    mode: np.ndarray
    start: np.ndarray
    instrument: np.ndarray
    size: np.ndarray
    entry: np.ndarray

    def __len__(self) -> int:
        return len(self.owner)

    def per_account(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each margin account's first position: its instrument (-1: none), size and entry (0:
        none) -- the whole account when each holds at most one (as step 1 of issue 12 had it;
        :func:`riskengine.invariants.portfolio_violations` also takes the positions with
        ``start``)."""
        held = np.diff(self.start) > 0
        first = self.start[:-1][held]
        instrument = np.full(len(self), -1, dtype=np.int64)
        size, entry = np.zeros(len(self)), np.zeros(len(self))
        instrument[held], size[held], entry[held] = self.instrument[first], self.size[first], self.entry[first]
        return instrument, size, entry


@dataclass(frozen=True)
class Portfolio:
    """User accounts with a wallet and positions in several instruments, in CSR form.

    Build with :meth:`from_arrays` (validated, arrays read-only) or :meth:`from_population`.

    Attributes
    ----------
    wallet : ndarray of float64, shape (U,)
        Cross collateral per user account, finite and >= 0 (for a user with only isolated
        positions, what stays outside them).
    start : ndarray of int64, shape (U+1,)
        ``start[u] .. start[u+1]`` are user ``u``'s positions; ``start[0] = 0``, non-decreasing,
        ``start[U] = P``.
    instrument : ndarray of int32, shape (P,)
        Each position's instrument, in ``0 .. n_instruments-1``; at most one position per user
        and instrument.
    size : ndarray of float64, shape (P,)
        Signed size in base units (+ long, - short), finite; 0 is a flat position (kept so that a
        flat account of a population maps to a margin account of its own).
    entry : ndarray of float64, shape (P,)
        Entry price, finite and > 0 where ``size != 0``.
    mode : ndarray of int8, shape (P,)
        :class:`riskengine.codes.MarginMode`: 0 isolated, 1 cross.
    margin : ndarray of float64, shape (P,)
        An isolated position's allocated margin, finite and >= 0; 0 for a cross position. (A
        positions file requires > 0; 0 is allowed here because today's generated populations
        hold isolated positions backed by their unrealised profit alone.)
    n_instruments : int
        The scenario's instrument count ``I``.
    assets : tuple of int
        The instruments that are collateral assets (issue 13; :mod:`riskengine.collateral`):
        a position in one is a holding of the asset, ``size`` its amount (>= 0), ``entry`` 0,
        cross (a holding backs the user's cross account; an isolated account holds none).
    """

    wallet: np.ndarray
    start: np.ndarray
    instrument: np.ndarray
    size: np.ndarray
    entry: np.ndarray
    mode: np.ndarray
    margin: np.ndarray
    n_instruments: int
    assets: tuple[int, ...] = ()

    @classmethod
    def from_arrays(cls, wallet, start, instrument, size, entry, mode, margin=None, *,
                    n_instruments: int, assets: Sequence[int] = ()) -> "Portfolio":
        """Build and validate a portfolio from arrays (never modified).

        Parameters
        ----------
        wallet, start, instrument, size, entry, mode, margin : array_like
            As the class attributes; ``margin`` defaults to zeros (every position cross).
        n_instruments : int
            The number of instruments, at least 1.
        assets : sequence of int
            The instruments that are collateral assets (see the class attributes).

        Raises
        ------
        ValueError
            One line naming the field, the first offending index and what was expected:
            mismatched lengths, offsets that do not delimit the positions, an instrument out of
            range, a non-finite or negative wallet or margin, a non-finite size, a position
            without a positive entry price, an unknown margin mode, margin on a cross position, or
            a user holding two positions in one instrument (naming both).
        """
        if isinstance(n_instruments, bool) or not isinstance(n_instruments, (int, np.integer)) or n_instruments < 1:
            raise ValueError(f"n_instruments: expected an instrument count >= 1 (got {n_instruments!r})")
        n_instruments = int(n_instruments)
        wallet_a = _as_array("portfolio.wallet", wallet, np.float64)
        _require("portfolio.wallet", wallet_a, lambda a: ~(np.isfinite(a) & (a >= 0)), "a finite wallet >= 0")
        users = len(wallet_a)
        size_a = _as_array("portfolio.size", size, np.float64)
        n = len(size_a)
        start_a = _as_integers("portfolio.start", start, np.int64, 0, n,
                               f"an offset in 0..{n} (the positions' count)")
        if len(start_a) != users + 1:
            raise ValueError(f"portfolio.start: length {len(start_a)}: expected one more than portfolio.wallet "
                             f"(length {users}), i.e. {users + 1}")
        if start_a[0] != 0:
            raise ValueError(f"portfolio.start[0] = {start_a[0]}: expected 0")
        i = _first(lambda a, b: b < a, start_a[:-1], start_a[1:])
        if i >= 0:
            raise ValueError(f"portfolio.start[{i + 1}] = {start_a[i + 1]} is less than portfolio.start[{i}] = "
                             f"{start_a[i]}: expected non-decreasing offsets")
        if start_a[-1] != n:
            raise ValueError(f"portfolio.start[{users}] = {start_a[-1]}: expected the positions' count {n}")
        inst_a = _as_integers("portfolio.instrument", instrument, np.int32, 0, n_instruments - 1,
                              f"an instrument index in 0..{n_instruments - 1}")
        _check_length("portfolio.instrument", inst_a, n, "portfolio.size")
        entry_a = _as_array("portfolio.entry", entry, np.float64)
        _check_length("portfolio.entry", entry_a, n, "portfolio.size")
        mode_a = _as_array("portfolio.mode", mode, np.int8)  # checks the codes
        _check_length("portfolio.mode", mode_a, n, "portfolio.size")
        if margin is None:
            margin_a = _readonly(np.zeros(n, dtype=np.float64))
        else:
            margin_a = _as_array("portfolio.margin", margin, np.float64)
            _check_length("portfolio.margin", margin_a, n, "portfolio.size")
        _require("portfolio.size", size_a, lambda a: ~np.isfinite(a), "a finite signed size")
        asset_list = tuple(sorted({int(k) for k in assets}))
        if any(not 0 <= k < n_instruments for k in asset_list):
            raise ValueError(f"portfolio.assets: expected instrument indexes in 0..{n_instruments - 1} "
                             f"(got {list(asset_list)})")
        held = np.isin(inst_a, asset_list) if asset_list else np.zeros(n, dtype=bool)
        if held.any():
            i = _first(lambda h, q, e, m: h & ((q < 0) | (e != 0) | (m != MarginMode.CROSS)), held, size_a, entry_a,
                       mode_a)
            if i >= 0:
                raise ValueError(f"portfolio.size[{i}] = {_plain(size_a[i])!r} (instrument {inst_a[i]}, a collateral "
                                 f"asset): expected a holding: an amount >= 0, entry 0, cross (got entry "
                                 f"{_plain(entry_a[i])!r}, mode {_MODE_NAMES.get(int(mode_a[i]), mode_a[i])})")
        i = _first(lambda e, q, h: (q != 0) & ~h & ~(np.isfinite(e) & (e > 0)), entry_a, size_a, held)
        if i >= 0:
            raise ValueError(f"portfolio.entry[{i}] = {_plain(entry_a[i])!r}: expected a finite entry price > 0 "
                             "for a position")
        i = _first(lambda g, m: (m == MarginMode.CROSS) & (g != 0), margin_a, mode_a)
        if i >= 0:
            raise ValueError(f"portfolio.margin[{i}] = {_plain(margin_a[i])!r}: expected 0 for a cross position "
                             "(its margin is the wallet)")
        _require("portfolio.margin", margin_a, lambda a: ~(np.isfinite(a) & (a >= 0)),
                 "a finite isolated margin >= 0")
        user = np.repeat(np.arange(users, dtype=np.int64), np.diff(start_a))
        pair = _first_repeat(user * n_instruments + inst_a)
        if pair is not None:
            i, j = pair
            raise ValueError(f"portfolio.instrument[{j}] = {inst_a[j]}: user account {user[j]} already holds "
                             f"instrument {inst_a[j]} at position {i}: expected one position per account and "
                             "instrument")
        return cls(wallet_a, start_a, inst_a, size_a, entry_a, mode_a, margin_a, n_instruments, asset_list)

    @classmethod
    def from_population(cls, population: Population) -> "Portfolio":
        """Today's single-instrument population as a portfolio whose margin accounts are exactly
        its accounts.

        Each account holds one position in instrument 0 (flat accounts a position of size 0): a
        cross account's collateral is its wallet; an isolated account's collateral is its
        position's margin and its wallet is 0. :meth:`margin_accounts` then gives
        ``owner = collateral index = 0..n-1``, ``start = 0..n`` and the population's own
        collateral, size and entry arrays.
        """
        n = len(population)
        cross = population.mode == MarginMode.CROSS
        return cls.from_arrays(np.where(cross, population.collateral, 0.0), np.arange(n + 1, dtype=np.int64),
                               np.zeros(n, dtype=np.int32), population.size, population.entry, population.mode,
                               np.where(cross, 0.0, population.collateral), n_instruments=1)

    def __len__(self) -> int:
        """The number of user accounts."""
        return len(self.wallet)

    @property
    def positions(self) -> int:
        """The number of positions."""
        return len(self.size)

    def in_margin_mode(self, mode: str) -> "Portfolio":
        """The same positions margined as a venue design's ``margin_mode`` says
        (:attr:`riskengine.venue.VenueDesign.margin_mode`); the engines then need nothing new.

        * ``"as-held"``: this portfolio, unchanged (each position's own mode).
        * ``"cross"``: every position cross; each isolated position's margin is added to its
          user's wallet (Binance cross: ``WB`` is the wallet shared by every cross position
          [DOC S2, S12], reference §1.2; Hyperliquid: "cross = shared collateral" [DOC S29],
          reference §2.1).
        * ``"isolated"``: every cross position with a size becomes isolated and its user's wallet
          is split among them in proportion to entry notional ``|size| x entry`` (a stated rule:
          no venue allocates a wallet for the user; Binance isolated: ``WB`` = the position's
          isolated margin [DOC S12]; Hyperliquid "isolated = per-asset collateral" [DOC S29]).
          Positions already isolated keep their margin; a user with no cross position of
          non-zero size keeps its wallet (a flat cross account, as in the population), and
          flat positions (size 0) stay cross with it. Holdings of a collateral asset
          (:attr:`assets`) stay in the user's cross account (Binance: "Multi-Assets Mode operates
          exclusively in Cross Margin Mode", FAQ "What Is Multi-Assets Mode",
          https://www.binance.com/es/support/faq/what-is-multi-assets-mode-and-which-assets-are-supported-29b45c485d664028b9ca1cdf90b24f6f).

        Money is conserved per user: the wallet plus the isolated margins are the same sum (to
        float rounding of the split, a few ulps of the wallet).

        Parameters
        ----------
        mode : {"as-held", "cross", "isolated"}

        Returns
        -------
        Portfolio
            ``self`` when nothing changes; else a new validated portfolio with the same users,
            offsets, instruments, sizes and entries.

        Raises
        ------
        ValueError
            ``margin_mode: ...``: a mode not in :data:`riskengine.venue.MARGIN_MODES`.

        >>> book = Portfolio.from_arrays([100.0], [0, 2], [0, 1], [1.0, -3.0], [300.0, 100.0], [1, 0],
        ...                              [0.0, 50.0], n_instruments=2)
        >>> book.in_margin_mode("cross").wallet.tolist()        # 100 + 50
        [150.0]
        >>> book.in_margin_mode("isolated").margin.tolist()     # 100 x 300/300 on the cross one
        [100.0, 50.0]
        """
        if mode not in MARGIN_MODES:
            raise ValueError(f"margin_mode: expected one of {', '.join(MARGIN_MODES)} (got {mode!r})")
        isolated = self.mode == MarginMode.ISOLATED
        users = len(self.wallet)
        if mode == "as-held":
            return self
        if mode == "cross":
            if not isolated.any():
                return self
            wallet = self.wallet + np.bincount(self.owners(), np.where(isolated, self.margin, 0.0), minlength=users)
            mode_a = np.full(self.positions, MarginMode.CROSS, dtype=np.int8)
            return Portfolio.from_arrays(wallet, self.start, self.instrument, self.size, self.entry, mode_a,
                                         n_instruments=self.n_instruments, assets=self.assets)
        # holdings of a collateral asset stay in the cross account they back
        convert = ~isolated & (self.size != 0) & ~self.holdings
        if not convert.any():
            return self
        user = self.owners()
        notional = np.where(convert, np.abs(self.size) * self.entry, 0.0)  # NaN entries of flat positions drop out
        total = np.bincount(user, notional, minlength=users)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(convert, notional / total[user], 0.0)
        margin = np.where(convert, self.wallet[user] * share, self.margin)
        wallet = np.where(total > 0, 0.0, self.wallet)
        mode_a = np.where(convert, MarginMode.ISOLATED, self.mode).astype(np.int8)
        return Portfolio.from_arrays(wallet, self.start, self.instrument, self.size, self.entry, mode_a, margin,
                                     n_instruments=self.n_instruments, assets=self.assets)

    @property
    def holdings(self) -> np.ndarray:
        """Which positions are holdings of a collateral asset (bool, shape (P,))."""
        if not self.assets:
            return np.zeros(self.positions, dtype=bool)
        return np.isin(self.instrument, self.assets)

    def owners(self) -> np.ndarray:
        """The user account of each position (int64, shape (P,))."""
        return np.repeat(np.arange(len(self.wallet), dtype=np.int64), np.diff(self.start))

    def margin_accounts(self) -> MarginAccounts:
        """The engine's margin accounts.

        One margin account per user with cross positions or a positive wallet (the cross
        account: the wallet and every cross position), and one per isolated position (its margin
        and that position). Order: by user; within a user the cross account first, then the
        isolated positions in instrument order; a cross account's positions in instrument order.
        A user with no position and an empty wallet has none.

        Returns
        -------
        MarginAccounts
            When the positions already are in that order (a population's portfolio), its
            position arrays are the portfolio's own.
        """
        users, n_inst = len(self.wallet), self.n_instruments
        user = self.owners()
        isolated = self.mode == MarginMode.ISOLATED
        inst, size, entry, margin = self.instrument, self.size, self.entry, self.margin
        key = (user * 2 + isolated) * n_inst + inst  # distinct: one position per user and instrument
        if len(key) > 1 and not bool(np.all(key[1:] > key[:-1])):
            order = np.argsort(key, kind="stable")  # timsort: fast on nearly ordered keys
            user, isolated = user[order], isolated[order]
            inst, size, entry, margin = (_readonly(a[order]) for a in (inst, size, entry, margin))
        n_cross = np.bincount(user[~isolated], minlength=users)
        n_isolated = np.bincount(user[isolated], minlength=users)
        has_cross = (n_cross > 0) | (self.wallet > 0)
        per_user = has_cross + n_isolated
        first = np.cumsum(per_user) - per_user  # each user's first margin account
        accounts = int(per_user.sum())
        cross_at = first[has_cross]
        is_cross = np.zeros(accounts, dtype=bool)
        is_cross[cross_at] = True
        held = np.ones(accounts, dtype=np.int64)
        held[cross_at] = n_cross[has_cross]
        start = np.zeros(accounts + 1, dtype=np.int64)
        np.cumsum(held, out=start[1:])
        collateral = np.empty(accounts, dtype=np.float64)
        collateral[cross_at] = self.wallet[has_cross]
        collateral[~is_cross] = margin[isolated]
        owner = np.repeat(np.arange(users, dtype=np.int64), per_user)
        mode = np.where(is_cross, MarginMode.CROSS, MarginMode.ISOLATED).astype(np.int8)
        return MarginAccounts(_readonly(owner), _readonly(collateral), _readonly(mode), _readonly(start),
                              inst, size, entry)


def notional_by_instrument(portfolio: Portfolio, prices: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Long and short notional of each instrument at ``prices`` (one per instrument).

    Returns
    -------
    (long, short) : ndarray of float64, shape (I,)
        ``sum(size x price)`` over the instrument's long positions, and ``sum(-size x price)``
        over its short ones; their sum is the instrument's open interest held by the portfolio.
    """
    px = np.asarray(prices, dtype=np.float64)
    if px.shape != (portfolio.n_instruments,):
        raise ValueError(f"prices: expected one price per instrument ({portfolio.n_instruments}, got shape {px.shape})")
    notional = portfolio.size * px[portfolio.instrument]
    long = np.bincount(portfolio.instrument, np.maximum(notional, 0.0), minlength=portfolio.n_instruments)
    short = np.bincount(portfolio.instrument, np.maximum(-notional, 0.0), minlength=portfolio.n_instruments)
    return long, short


@dataclass(frozen=True)
class PortfolioScenario:
    """A named multi-instrument scenario: instruments (each its tape, stream and liquidity model)
    and the portfolio of user accounts holding them (:func:`riskengine.engine.run` replays it;
    a single-instrument :class:`riskengine.scenario.Scenario` keeps its own path).

    >>> from riskengine import synthetic
    >>> btc = Instrument("BTCUSDT", synthetic.crash_tape(500, seed=1))
    >>> eth = Instrument("ETHUSDT", synthetic.crash_tape(500, start_price=4_300.0, seed=2))
    >>> book = Portfolio.from_arrays([0.0, 0.0], [0, 1, 2], [0, 1], [1.0, -10.0], [121_700.0, 4_300.0],
    ...                              [0, 0], [20_000.0, 9_000.0], n_instruments=2)
    >>> scenario = PortfolioScenario("two-coins", (btc, eth), book)
    >>> len(scenario.tape), scenario.symbols
    (1000, ('BTCUSDT', 'ETHUSDT'))

    Attributes
    ----------
    name : str
        Label in result tables.
    instruments : tuple of Instrument
        At least one, distinct symbols; instrument ``k`` is ``instruments[k]``.
    portfolio : Portfolio
        Its ``n_instruments`` is the number of instruments.
    date : datetime.date, optional
        The day whose margin tables apply (:func:`riskengine.venues.for_symbol`); None: the day
        of the first tick.
    assets : tuple of riskengine.collateral.AssetPrices
        The collateral assets (issue 13), one per instrument of ``portfolio.assets`` in that
        order, with the same symbols: their prices, from which each design builds the index its
        asset instrument's tape is (:meth:`with_asset_tapes`, :func:`riskengine.engine.resolve`).
        The instruments' own tapes are the reference index at ratio 1
        (:meth:`riskengine.collateral.AssetPrices.reference`).
    tape : MergedTape
        The instruments' tapes merged in time (:func:`merge_tapes`), made on construction.
    """

    name: str
    instruments: tuple[Instrument, ...]
    portfolio: Portfolio
    date: dt.date | None = None
    assets: tuple[AssetPrices, ...] = ()
    tape: MergedTape = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "instruments", tuple(self.instruments))
        object.__setattr__(self, "assets", tuple(self.assets))
        if not isinstance(self.portfolio, Portfolio):
            raise ValueError(f"scenario {self.name!r}: portfolio: expected a Portfolio "
                             f"(got {type(self.portfolio).__name__})")
        tape = merge_tapes(self.instruments)  # checks the instruments and their symbols
        if self.portfolio.n_instruments != len(self.instruments):
            raise ValueError(f"scenario {self.name!r}: portfolio: holds {self.portfolio.n_instruments} "
                             f"instrument(s): expected one per instrument of the scenario ({len(self.instruments)})")
        held = [self.instruments[k].symbol for k in self.portfolio.assets]
        given = [a.asset for a in self.assets]
        if held != given:
            raise ValueError(f"scenario {self.name!r}: collateral assets {', '.join(given) or 'none'}: expected one "
                             f"price set per collateral instrument of the portfolio ({', '.join(held) or 'none'})")
        object.__setattr__(self, "tape", tape)

    @property
    def perpetuals(self) -> tuple[int, ...]:
        """The instruments that are not collateral assets (their indexes)."""
        return tuple(k for k in range(len(self.instruments)) if k not in self.portfolio.assets)

    def with_asset_tapes(self, tapes: dict[int, Tape]) -> "PortfolioScenario":
        """This scenario with the tapes of collateral asset instruments replaced (``{index:
        tape}``; a design's index x ratio): the instruments merged again."""
        instruments = tuple(Instrument(ins.symbol, tapes[k], ins.liquidity, ins.funding) if k in tapes else ins
                            for k, ins in enumerate(self.instruments))
        return PortfolioScenario(self.name, instruments, self.portfolio, self.date, self.assets)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The instruments' symbols, in index order."""
        return self.tape.symbols

    @property
    def quote(self) -> str | None:
        """The quote currency every instrument's prices are in, or None when they do not all say
        the same one."""
        quotes = {ins.tape.quote for ins in self.instruments}
        return quotes.pop() if len(quotes) == 1 else None

    @property
    def start_day(self) -> dt.date:
        """The day whose margin tables apply: :attr:`date`, else the day (UTC) of the first tick."""
        if self.date is not None:
            return self.date
        return dt.datetime.fromtimestamp(int(self.tape.ts[0]) // 1_000_000_000, dt.timezone.utc).date()

    def in_margin_mode(self, mode: str) -> "PortfolioScenario":
        """This scenario with its portfolio margined as ``mode`` says
        (:meth:`Portfolio.in_margin_mode`); the same instruments and merged tape (not merged
        again). ``self`` when the portfolio does not change."""
        portfolio = self.portfolio.in_margin_mode(mode)
        if portfolio is self.portfolio:
            return self
        out = object.__new__(PortfolioScenario)
        for name in ("name", "instruments", "date", "assets", "tape"):
            object.__setattr__(out, name, getattr(self, name))
        object.__setattr__(out, "portfolio", portfolio)
        return out

    @cached_property
    def margin_accounts(self) -> MarginAccounts:
        """The portfolio's margin accounts (:meth:`Portfolio.margin_accounts`), made once."""
        return self.portfolio.margin_accounts()


# ------------------------------------------------------------------------------ positions files
def load_portfolio(path: str | os.PathLike, symbols: Sequence[str], *, return_ids: bool = False,
                   assets: Sequence[str] = ()):
    """Read a portfolio from a CSV or Parquet positions file.

    Parameters
    ----------
    path : str or PathLike
        ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` with the columns :data:`COLUMNS`, one row
        per position (other columns are ignored):

        * ``account``: the user account's id (text or number); its rows need not be adjacent;
        * ``instrument``: a symbol of the scenario; empty (or null) on a row of size 0 that
          carries an account with only a wallet;
        * ``size``: signed position in base units (+ long, - short);
        * ``entry_price``: > 0; required where size is not 0;
        * ``margin_mode``: ``isolated`` or ``cross`` (case-insensitive); ``cross`` or empty on a
          wallet-only row;
        * ``isolated_margin``: the isolated position's allocated margin, > 0; empty or 0 on
          other rows;
        * ``wallet``: the account's cross wallet, >= 0, equal on all of the account's rows.

        Empty cells and, in Parquet, nulls and NaN are "not given".
    symbols : sequence of str
        The scenario's instruments in index order: ``instrument`` names one of them.
    return_ids : bool
        Also return the account ids (user account ``u`` is the ``u``-th distinct id of the file).
    assets : sequence of str
        The symbols among ``symbols`` that are collateral assets (issue 13): a row in one is a
        holding of the asset: ``size`` its amount (>= 0), ``entry_price`` empty or 0,
        ``margin_mode`` cross or empty (Binance: "Multi-Assets Mode operates exclusively in
        Cross Margin Mode"), ``isolated_margin`` empty.

    Returns
    -------
    Portfolio, or (Portfolio, ndarray of ids) with ``return_ids``
        Accounts in the order of their first row; each account's positions in file order.

    Raises
    ------
    ValueError
        One line naming the file, the row (numbered from 1, the header not counted), the column
        and what was expected: a missing column, a missing account id, an instrument with no
        tape in the scenario, a non-finite or missing number, a non-positive entry price or
        isolated margin, an unknown margin mode, isolated margin on a cross row, a negative
        wallet, wallets that differ within an account, or a repeated (account, instrument) pair
        (naming both rows).
    """
    import pandas as pd

    symbols = _check_symbols(symbols)
    path = Path(path)
    frame = _read_frame(path, "positions", COLUMNS, "one position or wallet")
    rows = len(frame)
    n_inst = len(symbols)

    def value(i: int, column: str):
        return _plain(frame[column].iloc[i])

    def where(i: int, column: str) -> str:
        return f"{path}: row {i + 1}: {column} {value(i, column)!r}"

    def fail(mask: np.ndarray, column: str, expected: str) -> None:
        i = _first_bad(mask)
        if i >= 0:
            raise ValueError(f"{where(i, column)}: expected {expected}")

    def text(column: str) -> pd.Series:
        col = frame[column]
        return col.astype(str).str.strip().where(col.notna(), "")

    def number(column: str) -> tuple[np.ndarray, np.ndarray]:
        """The column's values (NaN where not given) and where they are given; a given value
        must be a finite number."""
        col = frame[column]
        if col.dtype.kind in "iufb":
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            given = ~np.isnan(values)
        else:
            t = text(column)
            given = (t != "").to_numpy()
            values = pd.to_numeric(t, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        fail(given & ~np.isfinite(values), column, "a finite number")
        return values, given

    ids = frame["account"]
    if ids.dtype.kind in "iu":
        id_values = ids
    else:
        id_values = text("account")
        fail((id_values == "").to_numpy(), "account", "an account id")
    codes, uniques = pd.factorize(id_values, sort=False)
    codes = codes.astype(np.int64)
    users = len(uniques)

    inst_text = text("instrument")
    inst = inst_text.map({s: k for k, s in enumerate(symbols)}).to_numpy(dtype=np.float64, na_value=np.nan)
    wallet_row = (inst_text == "").to_numpy()
    fail(~wallet_row & np.isnan(inst), "instrument",
         f"a symbol of the scenario (no tape for this one; instruments: {_listed(symbols)})")
    inst = np.where(wallet_row, n_inst, np.nan_to_num(inst)).astype(np.int64)  # n_inst: no instrument

    size, given = number("size")
    fail(~given, "size", "a finite signed size (base units; 0 on a wallet-only row)")
    fail(wallet_row & (size != 0), "instrument", "the symbol of the position's instrument (its size is not 0)")

    mode_text = text("margin_mode").str.lower()
    mode = mode_text.map(_MODE_CODES).to_numpy(dtype=np.float64, na_value=np.nan)
    asset_codes = [symbols.index(a) for a in assets]
    holding = np.isin(inst, asset_codes) & ~wallet_row
    fail(np.isnan(mode) & ~((wallet_row | holding) & (mode_text == "").to_numpy()), "margin_mode",
         "isolated or cross")
    isolated = mode == MarginMode.ISOLATED
    fail(wallet_row & isolated, "margin_mode", "cross or empty on a wallet-only row (the wallet is cross collateral)")

    fail(holding & isolated, "margin_mode",
         "cross or empty on a holding of a collateral asset (it backs the account's cross wallet; Binance "
         "Multi-Assets Mode is cross only)")
    fail(holding & (size < 0), "size", "an amount >= 0 of the collateral asset")
    mode = np.where(holding, MarginMode.CROSS, mode)
    isolated = mode == MarginMode.ISOLATED

    entry, given = number("entry_price")
    fail(holding & given & (entry != 0), "entry_price", "empty or 0 on a holding of a collateral asset")
    entry = np.where(holding, 0.0, entry)
    given = given | holding
    fail(~holding & given & (entry <= 0), "entry_price", "an entry price > 0")
    fail(~given & (size != 0), "entry_price", "an entry price > 0 for a position (size is not 0)")

    margin, given = number("isolated_margin")
    fail(isolated & ~(given & (margin > 0)), "isolated_margin", "an isolated margin > 0 for an isolated position")
    fail(~isolated & given & (margin != 0), "isolated_margin",
         "empty or 0 on a cross or wallet-only row (a cross position's margin is the wallet)")

    wallet, given = number("wallet")
    fail(~(given & (wallet >= 0)), "wallet", "a finite wallet >= 0 (the account's cross collateral)")

    order = np.argsort(codes, kind="stable")  # rows grouped by account, file order within
    bounds = np.searchsorted(codes[order], np.arange(users + 1))
    first_row = order[bounds[:-1]]
    i = _first_bad(wallet != wallet[first_row[codes]])
    if i >= 0:
        f = int(first_row[codes[i]])
        raise ValueError(f"{where(i, 'wallet')}: differs from row {f + 1} ({value(f, 'wallet')!r}) of account "
                         f"{value(i, 'account')!r}: expected the account's one wallet on all its rows")
    pair = _first_repeat(codes * (n_inst + 1) + inst)
    if pair is not None:
        i, j = pair
        raise ValueError(f"{where(j, 'instrument')}: repeats row {i + 1} (account {value(j, 'account')!r}): "
                         "expected one row per account and instrument")

    positions = order[inst[order] < n_inst]
    start = np.zeros(users + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes[positions], minlength=users), out=start[1:])
    portfolio = Portfolio.from_arrays(
        wallet[first_row], start, inst[positions], size[positions], entry[positions],
        mode[positions].astype(np.int8), np.where(isolated, margin, 0.0)[positions], n_instruments=n_inst,
        assets=asset_codes)
    if return_ids:
        out = np.asarray(uniques)
        return portfolio, _readonly(out)
    return portfolio


def write_portfolio(portfolio: Portfolio, path: str | os.PathLike, symbols: Sequence[str], ids=None) -> Path:
    """Write a portfolio to a CSV or Parquet positions file (by the suffix), atomically, in the
    :func:`load_portfolio` format.

    One row per position, by user and in the portfolio's order; a user with no position gets
    one wallet-only row (no instrument, size 0); a holding of a collateral asset
    (:attr:`Portfolio.assets`) without an entry price. Numbers are written exactly (CSV: 17
    significant digits), so :func:`load_portfolio` gives the same arrays back (with ``assets``
    naming the collateral symbols).

    Parameters
    ----------
    portfolio : Portfolio
    path : str or PathLike
        ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``.
    symbols : sequence of str
        One per instrument, in index order.
    ids : array_like, optional
        Distinct account ids, one per user; default ``0 .. U-1``.

    Raises
    ------
    ValueError
        An unknown suffix, symbols that are not one per instrument, ids of the wrong length or
        repeated, an isolated position with margin 0 (the file format requires > 0), or an entry
        price that is neither > 0 nor NaN.
    """
    import pandas as pd

    path = Path(path)
    name = path.name.lower()
    parquet = name.endswith((".parquet", ".pq"))
    if not parquet and not name.endswith((".csv", ".csv.gz")):
        raise ValueError(f"{path}: expected a .csv, .csv.gz or .parquet positions file")
    symbols = _check_symbols(symbols)
    if len(symbols) != portfolio.n_instruments:
        raise ValueError(f"symbols: {len(symbols)} given: expected one per instrument ({portfolio.n_instruments})")
    users = len(portfolio)
    ids = np.arange(users) if ids is None else np.asarray(ids)
    if ids.shape != (users,):
        raise ValueError(f"ids: length {len(ids)} does not match the portfolio (length {users})")
    if not pd.Index(ids).is_unique:
        i, j = _first_repeat(pd.factorize(ids)[0])
        raise ValueError(f"ids[{j}] = {_plain(ids[j])!r}: repeats ids[{i}]: expected distinct account ids")
    isolated = portfolio.mode == MarginMode.ISOLATED
    i = _first_bad(isolated & ~(portfolio.margin > 0))
    if i >= 0:
        raise ValueError(f"portfolio.margin[{i}] = {_plain(portfolio.margin[i])!r}: a positions file expects an "
                         "isolated margin > 0")
    holding = portfolio.holdings  # a holding of a collateral asset: written without an entry
    i = _first_bad(~holding & ~np.isnan(portfolio.entry) & ~(np.isfinite(portfolio.entry) & (portfolio.entry > 0)))
    if i >= 0:
        raise ValueError(f"portfolio.entry[{i}] = {_plain(portfolio.entry[i])!r}: a positions file expects an "
                         "entry price > 0, or NaN (not given) on a flat position")

    held = np.diff(portfolio.start)
    per_user = np.maximum(held, 1)  # a user without a position gets its wallet-only row
    row_start = np.cumsum(per_user) - per_user
    row_user = np.repeat(np.arange(users), per_user)
    pos_row = np.repeat(row_start, held) + np.arange(portfolio.positions) - np.repeat(portfolio.start[:-1], held)
    n_rows = len(row_user)

    def at_positions(values: np.ndarray, empty) -> np.ndarray:
        out = np.full(n_rows, empty, dtype=values.dtype)
        out[pos_row] = values
        return out

    symbol_of = np.asarray(symbols, dtype=object)
    mode_of = np.array([_MODE_NAMES[int(MarginMode.ISOLATED)], _MODE_NAMES[int(MarginMode.CROSS)]], dtype=object)
    frame = pd.DataFrame({
        "account": ids[row_user],
        "instrument": at_positions(symbol_of[portfolio.instrument], None),
        "size": at_positions(portfolio.size, 0.0),
        "entry_price": at_positions(np.where(holding, np.nan, portfolio.entry), np.nan),
        "margin_mode": at_positions(mode_of[portfolio.mode], None),
        "isolated_margin": at_positions(np.where(isolated, portfolio.margin, np.nan), np.nan),
        "wallet": portfolio.wallet[row_user],
    })

    def write(tmp: Path) -> None:
        if parquet:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, float_format="%.17g",
                         compression="gzip" if name.endswith(".gz") else None)

    return write_atomic(path, write)


# ------------------------------------------------------------------------------ the generator
# independent random streams, one per aspect: changing one parameter leaves the others' draws alone
(_HOLDINGS, _PICKS, _HEDGED, _SIDES, _SIZES, _LEVERAGE, _MODES, _EXCESS, _ENTRIES, _FLAT) = range(10)


@dataclass(frozen=True)
class PortfolioSpec:
    """Facts a generated portfolio follows (:func:`generate_portfolio`); defaults and their
    sources: the module docstring. Per-instrument tuples are in ``symbols`` order.

    Attributes
    ----------
    symbols : tuple of str
        The instruments.
    open_interest_usd : tuple of float
        Each instrument's open interest held by the portfolio (long plus short notional at its
        start price), >= 0.
    max_leverage : tuple of float
        Each instrument's leverage cap (> 0): a position's drawn leverage is capped at it.
    long_share : tuple of float
        Each instrument's long share of its open interest, in [0, 1].
    accounts : int
        User accounts, flat ones (a wallet only) included.
    holdings : tuple of float
        Probabilities of holding 1, 2, ... K instruments (K <= the number of instruments),
        summing to 1; the counts are exact (largest remainder), the accounts shuffled.
    hedged_share : float
        Share of the accounts holding two instruments or more whose book is hedged: at least one
        long and one short position (else every position is on one side: a directional book).
    cross_share : float
        Probability that a position is cross (else isolated).
    cross_excess : (float, float)
        A cross account's equity at the start prices is its cross positions' margin times a
        factor uniform in this range (>= 1).
    flat_share : float
        Share of accounts with a wallet (uniform in :data:`FLAT_COLLATERAL_USD`) and no position.
    leverage : DiscreteLeverage
        Each position's leverage, before its instrument's cap.
    sizes : SizeDistribution
        Heavy-tailed raw sizes (lognormal ``sigma`` or Pareto ``alpha``), scaled to the open
        interest per instrument and side.
    entry_spread : float
        Entries are ``price x exp(N(0, entry_spread))``.
    seed : int
        Random seed.
    """

    symbols: tuple[str, ...] = ("BTC", "ETH", "SOL")
    open_interest_usd: tuple[float, ...] = (3.0e9, 1.77e9, 1.04e9)
    max_leverage: tuple[float, ...] = (40.0, 25.0, 20.0)
    long_share: tuple[float, ...] = (0.7, 0.7, 0.7)
    accounts: int = 100_000
    holdings: tuple[float, ...] = (0.7, 0.2, 0.1)
    hedged_share: float = 0.18
    cross_share: float = 0.5
    cross_excess: tuple[float, float] = (1.0, 3.0)
    flat_share: float = 0.02
    leverage: DiscreteLeverage = field(default_factory=lambda: DiscreteLeverage((2.0, 5.0, 10.0, 20.0, 40.0),
                                                                                (0.2, 0.3, 0.3, 0.15, 0.05)))
    sizes: SizeDistribution = field(default_factory=SizeDistribution)
    entry_spread: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        symbols = _check_symbols(self.symbols)
        n = len(symbols)
        for name in ("open_interest_usd", "max_leverage", "long_share"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: {len(getattr(self, name))} values: expected one per symbol ({n})")
        for k, (oi, cap, share) in enumerate(zip(self.open_interest_usd, self.max_leverage, self.long_share)):
            if not (np.isfinite(oi) and oi >= 0):
                raise ValueError(f"open_interest_usd[{k}] = {oi!r}: expected a finite notional >= 0")
            if not (np.isfinite(cap) and cap > 0):
                raise ValueError(f"max_leverage[{k}] = {cap!r}: expected a finite leverage > 0")
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"long_share[{k}] = {share!r}: expected a share in [0, 1]")
        if self.accounts < 1:
            raise ValueError(f"accounts: expected at least 1 (got {self.accounts})")
        if not 1 <= len(self.holdings) <= n:
            raise ValueError(f"holdings: {len(self.holdings)} values: expected the probabilities of holding 1..K "
                             f"instruments, 1 <= K <= {n}")
        if any(not w >= 0 for w in self.holdings) or abs(sum(self.holdings) - 1.0) > 1e-9:
            raise ValueError(f"holdings: expected probabilities >= 0 summing to 1 (got {list(self.holdings)})")
        for name in ("hedged_share", "cross_share", "flat_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a share in [0, 1] (got {getattr(self, name)!r})")
        lo, hi = self.cross_excess
        if not 1.0 <= lo <= hi < np.inf:
            raise ValueError(f"cross_excess: expected (low, high) with 1 <= low <= high (got {self.cross_excess})")
        if not (np.isfinite(self.entry_spread) and self.entry_spread >= 0):
            raise ValueError(f"entry_spread: expected a finite spread >= 0 (got {self.entry_spread!r})")


@dataclass(frozen=True)
class GeneratedPortfolio:
    """A generated portfolio and how it was made.

    Attributes
    ----------
    portfolio : Portfolio
        The accounts (positions in instrument order within each account).
    leverage : ndarray of float64, shape (P,)
        Each position's leverage at the start prices (drawn, capped at its instrument's
        ``max_leverage``): its margin is ``notional / leverage``; a cross account's equity is the
        sum of its cross positions' margins times its excess.
    hedged : ndarray of bool, shape (U,)
        Accounts with a hedged book (a long and a short position).
    prices : ndarray of float64, shape (I,)
        The start prices notional is measured at.
    symbols : tuple of str
    """

    portfolio: Portfolio
    leverage: np.ndarray
    hedged: np.ndarray
    prices: np.ndarray
    symbols: tuple[str, ...]

    def notional(self) -> tuple[np.ndarray, np.ndarray]:
        """Long and short notional per instrument at the start prices (:func:`notional_by_instrument`)."""
        return notional_by_instrument(self.portfolio, self.prices)


def _exact_counts(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split by ``weights`` into integers (largest remainder; ties to the first)."""
    quota = total * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    rest = total - int(counts.sum())
    counts[np.argsort(-(quota - counts), kind="stable")[:rest]] += 1
    return counts


def generate_portfolio(spec: PortfolioSpec, prices: Sequence[float]) -> GeneratedPortfolio:
    """A seeded multi-instrument portfolio following ``spec``, priced at ``prices``.

    Parameters
    ----------
    spec : PortfolioSpec
        The facts (defaults and their sources: the module docstring).
    prices : sequence of float
        Each instrument's start price (finite, > 0), in ``spec.symbols`` order.

    Returns
    -------
    GeneratedPortfolio

    Raises
    ------
    ValueError
        Prices that are not one finite positive price per instrument, or too few accounts to put
        a position on each side an instrument's open interest needs: one line naming it.

    Notes
    -----
    Vectorised (no loop per account); the same spec and prices give the same arrays. Each aspect
    draws from its own random stream (spawned from ``seed``).

    * Holdings: ``round(accounts x flat_share)`` accounts hold a wallet only; the others hold
      1..K instruments in the exact proportions of ``holdings``, shuffled.
    * Instruments: drawn without replacement with weights proportional to open interest
      (Gumbel top-k: each account ranks the instruments by ``log(weight) + Gumbel noise``).
    * Books: ``round(multi x hedged_share)`` of the ``multi`` accounts holding two instruments or
      more are hedged: their first-ranked instrument is long or short with even odds, the
      second the opposite, any further one long with its instrument's ``long_share``. Every
      other account is directional: all its positions long with its first-ranked instrument's
      ``long_share``, else all short.
    * Sizes: raw heavy-tailed sizes, scaled per instrument and side so that the long notional at
      the start price is ``open_interest_usd x long_share`` and the short notional the rest
      (matched to float rounding).
    * Leverage: drawn from ``leverage`` and capped at the instrument's ``max_leverage``; a
      position's margin at the start price is ``notional / leverage``.
    * Margin mode per position: cross with probability ``cross_share``. An isolated position's
      margin is its margin minus its unrealised PnL at the start price, at least
      :data:`riskengine.population.MIN_COLLATERAL_SHARE` of its margin (so always > 0). A user's
      wallet is likewise its cross positions' margins times its excess, minus their summed
      unrealised PnL, at least that share of it; 0 without cross positions. So every margin
      account's equity at the start prices is at least the sum of ``notional / max_leverage``.
    * Entries: ``price x exp(N(0, entry_spread))``.
    """
    symbols = _check_symbols(spec.symbols)
    n_inst = len(symbols)
    px = np.asarray(prices, dtype=np.float64)
    if px.shape != (n_inst,):
        raise ValueError(f"prices: expected one start price per instrument ({n_inst}, got shape {px.shape})")
    k = _first_bad(~(np.isfinite(px) & (px > 0)))
    if k >= 0:
        raise ValueError(f"prices[{k}] = {_plain(px[k])!r}: expected a finite start price > 0 for {symbols[k]}")
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(10)]
    n = spec.accounts
    oi = np.asarray(spec.open_interest_usd, dtype=np.float64)
    long_share = np.asarray(spec.long_share, dtype=np.float64)
    cap = np.asarray(spec.max_leverage, dtype=np.float64)

    n_flat = round(n * spec.flat_share)
    kinds = _exact_counts(n - n_flat, np.asarray(spec.holdings, dtype=np.float64))
    held = rngs[_HOLDINGS].permutation(np.repeat(np.arange(len(kinds) + 1), [n_flat, *kinds]))
    multi = np.flatnonzero(held >= 2)
    hedged = np.zeros(n, dtype=bool)
    hedged[rngs[_HEDGED].permutation(multi)[:round(len(multi) * spec.hedged_share)]] = True

    # each account ranks the instruments (Gumbel top-k, weights ~ open interest) and holds its
    # first `held`; np.nonzero of the holding mask lists positions by account, then instrument
    with np.errstate(divide="ignore"):
        keys = np.log(oi / oi.sum() if oi.sum() > 0 else np.ones(n_inst)) + rngs[_PICKS].gumbel(size=(n, n_inst))
    ranked = np.argsort(-keys, axis=1, kind="stable")
    rank = np.empty_like(ranked)
    np.put_along_axis(rank, ranked, np.arange(n_inst)[None, :], axis=1)
    user, inst = np.nonzero(rank < held[:, None])
    pos_rank = rank[user, inst]
    inst = inst.astype(np.int32)
    count = len(inst)

    account_draw = rngs[_SIDES].random(n)
    position_draw = rngs[_SIDES].random(count)
    first_long = account_draw < long_share[ranked[:, 0]]
    hedged_first_long = account_draw < 0.5
    side_long = np.where(hedged[user],
                         np.where(pos_rank == 0, hedged_first_long[user],
                                  np.where(pos_rank == 1, ~hedged_first_long[user],
                                           position_draw < long_share[inst])),
                         first_long[user])
    side = np.where(side_long, 1.0, -1.0)

    group = inst.astype(np.int64) * 2 + ~side_long  # (instrument, side): long 2k, short 2k+1
    raw = raw_sizes(spec.sizes, rngs[_SIZES], count)
    total = np.bincount(group, raw, minlength=2 * n_inst)
    target = np.column_stack([oi * long_share, oi * (1.0 - long_share)]).ravel()
    empty = np.flatnonzero((target > 0) & (total == 0))
    if len(empty):
        g = int(empty[0])
        raise ValueError(f"accounts: {n} account(s) put no {('long', 'short')[g % 2]} position on "
                         f"{symbols[g // 2]}, whose open interest needs one: expected more accounts")
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(total > 0, target / total, 0.0)
    notional = raw * scale[group]
    price = px[inst]
    size = side * (notional / price)

    leverage = np.minimum(spec.leverage.draw(rngs[_LEVERAGE], count), cap[inst])
    cross = rngs[_MODES].random(count) < spec.cross_share
    mode = np.where(cross, MarginMode.CROSS, MarginMode.ISOLATED).astype(np.int8)
    entry = price * np.exp(rngs[_ENTRIES].normal(0.0, spec.entry_spread, count))
    need = notional / leverage
    margin = np.where(cross, 0.0, collateral_for_equity(need, size, entry, price, MIN_COLLATERAL_SHARE))

    # the cross wallet: the same rule as collateral_for_equity, on the account's summed margin and uPnL
    excess = rngs[_EXCESS].uniform(spec.cross_excess[0], spec.cross_excess[1], n)
    equity = np.bincount(user, np.where(cross, need, 0.0), minlength=n) * excess
    upnl = np.bincount(user, np.where(cross, size * (price - entry), 0.0), minlength=n)
    wallet = np.maximum(equity - upnl, MIN_COLLATERAL_SHARE * equity)
    flat = held == 0
    wallet[flat] = rngs[_FLAT].uniform(*FLAT_COLLATERAL_USD, n)[flat]

    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(held, out=start[1:])
    portfolio = Portfolio.from_arrays(wallet, start, inst, size, entry, mode, margin, n_instruments=n_inst)
    return GeneratedPortfolio(portfolio, _readonly(leverage), _readonly(hedged), _readonly(px.copy()), symbols)


def add_holdings(portfolio: Portfolio, holdings: Sequence[tuple[float, float]], prices: Sequence[float],
                 seed: int) -> Portfolio:
    """``portfolio`` with collateral asset holdings added (issue 13): asset ``a`` becomes
    instrument ``n_instruments + a``.

    The stated assumption (no venue publishes how many users hold which margin asset): for each
    asset ``(share, fraction)``, a share ``share`` of the users with a cross wallet (> 0),
    drawn with ``seed``, hold ``fraction`` of that wallet's value in the asset instead of the
    quote currency: their wallet keeps ``wallet x (1 - fraction)`` and they hold
    ``wallet x fraction / price`` of the asset, ``price`` its index at the replay's start.
    Fractions are of the original wallet, so a user drawn for several assets keeps
    ``1 - sum of fractions`` (at most 1 in all). Money at the start prices is conserved; the
    design then counts a holding at ``index x ratio``, so a user's margin falls by
    ``wallet x fraction x (1 - ratio)`` (the haircut is the cost of the mode).

    Parameters
    ----------
    portfolio : Portfolio
        Without collateral assets.
    holdings : sequence of (share, fraction)
        One per asset, each in [0, 1]; the fractions sum to at most 1.
    prices : sequence of float
        Each asset's index at the start (finite, > 0).
    seed : int
        Random seed (the draws of each asset are independent of the others).

    Raises
    ------
    ValueError
        A share or fraction outside [0, 1], fractions summing above 1, a price that is not
        finite and > 0, or a portfolio that already holds assets.
    """
    if portfolio.assets:
        raise ValueError("portfolio: already holds collateral assets")
    if len(prices) != len(holdings):
        raise ValueError(f"prices: expected one start price per asset ({len(holdings)}, got {len(prices)})")
    for a, ((share, fraction), price) in enumerate(zip(holdings, prices)):
        if not (0.0 <= share <= 1.0 and 0.0 <= fraction <= 1.0):
            raise ValueError(f"collateral[{a}]: share {share!r}, fraction {fraction!r}: expected numbers in [0, 1]")
        if not (np.isfinite(price) and price > 0):
            raise ValueError(f"collateral[{a}]: start price {price!r}: expected a finite price > 0")
    if sum(f for _, f in holdings) > 1.0 + 1e-12:
        raise ValueError(f"collateral: fractions sum to {sum(f for _, f in holdings):g}: expected at most 1 (a user "
                         "cannot hold more than its wallet)")
    users, n_inst, n_assets = len(portfolio), portfolio.n_instruments, len(holdings)
    eligible = portfolio.wallet > 0
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 13]).spawn(n_assets)]
    amount = np.zeros((users, n_assets))
    for a, ((share, fraction), price) in enumerate(zip(holdings, prices)):
        drawn = eligible & (rngs[a].random(users) < share)
        amount[drawn, a] = portfolio.wallet[drawn] * fraction / price
    px = np.asarray(prices, dtype=np.float64)
    wallet = portfolio.wallet - (amount * px[None, :]).sum(axis=1)
    wallet = np.maximum(wallet, 0.0)  # fractions summing to exactly 1 leave a wallet of rounding noise
    held = amount > 0
    extra = held.sum(axis=1)
    per_user = np.diff(portfolio.start) + extra
    start = np.zeros(users + 1, dtype=np.int64)
    np.cumsum(per_user, out=start[1:])
    total = int(start[-1])
    # each user's own positions first, then its holdings in asset order (instrument order within the account)
    old = portfolio.owners()
    slot = start[old] + (np.arange(portfolio.positions) - portfolio.start[old])
    inst = np.empty(total, dtype=np.int32)
    size, entry = np.empty(total), np.empty(total)
    mode, margin = np.empty(total, dtype=np.int8), np.empty(total)
    inst[slot], size[slot], entry[slot] = portfolio.instrument, portfolio.size, portfolio.entry
    mode[slot], margin[slot] = portfolio.mode, portfolio.margin
    user, asset = np.nonzero(held)
    rank = np.cumsum(held, axis=1)[user, asset] - 1
    at = start[user] + np.diff(portfolio.start)[user] + rank
    inst[at] = n_inst + asset
    size[at], entry[at], mode[at], margin[at] = amount[user, asset], 0.0, MarginMode.CROSS, 0.0
    return Portfolio.from_arrays(wallet, start, inst, size, entry, mode, margin, n_instruments=n_inst + n_assets,
                                 assets=range(n_inst, n_inst + n_assets))
