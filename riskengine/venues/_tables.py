"""Margin tables stored as data (``riskengine/venues/tables/<venue>.toml``), chosen by symbol and date.

Each top-level key of a file is one of the venue's symbols, holding an array of dated tables::

    [[BTCUSDT]]
    effective = "2025-08-19"   # first day the table is known in force
    source = "..."             # the primary source, with its date
    complete = true            # false: tiers are missing, and `gap` says which
    gap = ""
    form = "deduction"         # or "whole-position" (see riskengine.venue.Margin)
    quote = "USDT"             # currency of the floors
    floors = [0, 300_000]      # notional floor of each tier
    rates = [0.004, 0.005]     # maintenance margin rate of each tier
    max_leverage = [150, 100]  # optional (Hyperliquid: the rates are derived from it)

A table applies from its ``effective`` date until the next one. Every file is checked when it
is first read; a mistake is one line naming the file, the symbol, the table and the field.

The one rule for what cannot be found (:func:`resolve`): a symbol without a table is refused,
listing the symbols the venue has, unless the caller names another symbol's table as assumed;
a date before a symbol's earliest table uses that table, marked out of date. Either mark is
the table's *caveat*, which a run shows (the ``margin_source`` column, a warning line, a note
in the report).
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskengine.errors import suggest
from riskengine.params import MARGIN_FORMS as FORMS

if TYPE_CHECKING:
    from riskengine.venue import Margin

#: venues whose documented maintenance rate is half the initial margin at the tier's maximum
#: leverage, so a table may give ``max_leverage`` without ``rates`` (Hyperliquid "Margin tiers")
RATES_FROM_MAX_LEVERAGE = ("hyperliquid",)
#: keys a table may hold; ``premium`` states a size premium that is not a tier table (Drift)
_KEYS = ("effective", "source", "complete", "gap", "form", "quote", "floors", "rates", "max_leverage",
         "premium")


@dataclass(frozen=True)
class MarginTable:
    """One dated margin table of one symbol."""

    venue: str
    symbol: str
    effective: dt.date
    floors: tuple[float, ...]
    rates: tuple[float, ...]
    max_leverage: tuple[float, ...]
    source: str
    complete: bool
    gap: str = ""
    form: str = "deduction"
    quote: str = ""
    premium: str = ""

    @property
    def label(self) -> str:
        """Short name for result tables: venue, symbol, effective date (and "incomplete")."""
        return f"{self.venue} {self.symbol} {self.effective}" + ("" if self.complete else " (incomplete)")

    def describe(self) -> str:
        text = f"{self.venue} {self.symbol} margin table effective {self.effective}: {self.source}"
        if not self.complete:
            text += f"; gap: {self.gap}"
        if self.premium:
            text += f"; not modelled: {self.premium}"
        return text


#: how the caveat of an assumed table (another symbol's, named by ``assumed_table``) begins
ASSUMED = "assumed: no "


class TableError(ValueError):
    """A malformed table file (one line: file, symbol, table, field)."""


class NoTable(ValueError):
    """A symbol the venue has no table for (one line listing the symbols it has)."""


def _numbers(where: str, name: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise TableError(f"{where}.{name}: expected a non-empty array of numbers (got {value!r})")
    out = []
    for k, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise TableError(f"{where}.{name}[{k}]: expected a finite number (got {x!r})")
        out.append(float(x))
    return tuple(out)


def dated_entry(key: str, where: str, entry: Any, keys: tuple[str, ...], required: tuple[str, ...]) -> dt.date:
    """Check one dated entry of ``key`` (a table of ``keys``, ``required`` among them) and
    return its ``effective`` date (:func:`load_dated`).

    Raises
    ------
    TableError
        ``<where>.<field>: what was expected``.
    """
    if not isinstance(entry, dict):
        raise TableError(f"{where}: expected a table ([[{key}]]) (got {entry!r})")
    unknown = [k for k in entry if k not in keys]
    if unknown:
        raise TableError(f"{where}.{unknown[0]}: unknown key{suggest(unknown[0], keys)}; valid: {', '.join(keys)}")
    for name in required:
        if name not in entry:
            raise TableError(f"{where}.{name}: missing")
    effective = entry["effective"]
    if isinstance(effective, str):
        try:
            effective = dt.date.fromisoformat(effective)
        except ValueError:
            raise TableError(f"{where}.effective: expected a date YYYY-MM-DD (got {effective!r})") from None
    if isinstance(effective, dt.datetime) or not isinstance(effective, dt.date):
        raise TableError(f"{where}.effective: expected a date YYYY-MM-DD (got {effective!r})")
    return effective


def _table(venue: str, symbol: str, where: str, entry: Any) -> MarginTable:
    effective = dated_entry(symbol, where, entry, _KEYS, ("effective", "source", "complete", "floors"))
    texts = {}
    for key in ("source", "gap", "form", "quote", "premium"):
        value = entry.get(key, "")
        if not isinstance(value, str):
            raise TableError(f"{where}.{key}: expected text (got {value!r})")
        texts[key] = value.strip()
    if not texts["source"]:
        raise TableError(f"{where}.source: expected the table's source (got an empty text)")
    form = texts["form"] or "deduction"
    if form not in FORMS:
        raise TableError(f"{where}.form: expected one of {', '.join(FORMS)} (got {form!r})")
    complete = entry["complete"]
    if not isinstance(complete, bool):
        raise TableError(f"{where}.complete: expected true or false (got {complete!r})")
    if not complete and not texts["gap"]:
        raise TableError(f"{where}.gap: expected what is missing, since complete = false")
    floors = _numbers(where, "floors", entry["floors"])
    if floors[0] != 0:
        raise TableError(f"{where}.floors[0]: expected 0 (got {floors[0]:g})")
    for k in range(1, len(floors)):
        if not floors[k] > floors[k - 1]:
            raise TableError(f"{where}.floors[{k}]: expected floors increasing (got {floors[k]:g} after "
                             f"{floors[k - 1]:g})")
    lev = _numbers(where, "max_leverage", entry["max_leverage"]) if "max_leverage" in entry else ()
    for k, x in enumerate(lev):
        if not x >= 1:
            raise TableError(f"{where}.max_leverage[{k}]: expected a leverage >= 1 (got {x:g})")
    if lev and len(lev) != len(floors):
        raise TableError(f"{where}.max_leverage: expected one per tier ({len(floors)} floors, {len(lev)} values)")
    if "rates" in entry:
        rates = _numbers(where, "rates", entry["rates"])
    elif lev and venue in RATES_FROM_MAX_LEVERAGE:
        rates = tuple(1.0 / (2.0 * x) for x in lev)
    else:
        raise TableError(f"{where}.rates: missing (only {', '.join(RATES_FROM_MAX_LEVERAGE)} derive the "
                         f"rates from max_leverage)")
    if len(rates) != len(floors):
        raise TableError(f"{where}.rates: expected one per tier ({len(floors)} floors, {len(rates)} rates)")
    for k, r in enumerate(rates):
        if not 0 < r < 1:
            raise TableError(f"{where}.rates[{k}]: expected a rate in (0, 1) (got {r:g})")
        if k and r < rates[k - 1]:
            raise TableError(f"{where}.rates[{k}]: expected rates not decreasing (got {r:g} after {rates[k - 1]:g})")
    return MarginTable(venue, symbol, effective, floors, rates, lev, texts["source"], complete, texts["gap"],
                       form, texts["quote"], texts["premium"])


def load_dated(path: str | Path, what: str, noun: str, make: Callable[[str, str, Any], Any]) -> dict[str, list]:
    """Read a file of dated entries: a TOML array of tables per key (a symbol's margin tables,
    an asset's collateral ratios), each made by ``make(key, where, entry)`` (``where``:
    ``<file>: <key>[<i>]``, for its error lines) into an object with an ``effective`` date;
    key -> its entries, oldest first. ``what`` names the file's contents in error lines ("margin
    tables"), ``noun`` one key's entries ("tables").

    Raises
    ------
    TableError
        A file that cannot be read or is not valid TOML, a key that is not an array of tables,
        two entries of one key effective on one date, or what ``make`` refuses.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TableError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: cannot read the {what} ({exc})") from None
    out: dict[str, list] = {}
    for key, entries in raw.items():
        if not isinstance(entries, list) or not entries:
            raise TableError(f"{path}: {key}: expected an array of tables ([[{key}]]) (got {entries!r})")
        rows = sorted((make(key, f"{path}: {key}[{i}]", e) for i, e in enumerate(entries)),
                      key=lambda r: r.effective)
        for x, y in zip(rows, rows[1:]):
            if x.effective == y.effective:
                raise TableError(f"{path}: {key}: two {noun} effective {x.effective}")
        out[key] = rows
    return out


def load_file(path: str | Path, venue: str) -> dict[str, list[MarginTable]]:
    """Read and check one venue's table file: symbol -> its tables, oldest first.

    Raises
    ------
    TableError
        ``<file>: <symbol>[<i>].<field>: what was expected``, or a file that is not valid TOML.
    """
    return load_dated(path, "margin tables", "tables", lambda symbol, where, e: _table(venue, symbol, where, e))

def table_file(venue: str) -> Path:
    """The packaged table file of ``venue``."""
    return Path(str(resources.files("riskengine.venues").joinpath(f"tables/{venue}.toml")))


@cache
def _load(venue: str) -> dict[str, list[MarginTable]]:
    return load_file(table_file(venue), venue)


def symbols(venue: str) -> list[str]:
    """Symbols with a stored table."""
    return sorted(_load(venue))


def _day(venue: str, date: str | dt.date) -> dt.date:
    if isinstance(date, dt.datetime):
        return date.date()
    if isinstance(date, dt.date):
        return date
    try:
        return dt.date.fromisoformat(str(date)[:10])
    except ValueError:
        raise ValueError(f"{venue}: date {date!r} is not an ISO date (YYYY-MM-DD)") from None


def margin_table(venue: str, symbol: str, date: str | dt.date | None = None) -> tuple[MarginTable, str]:
    """The table of ``symbol`` in force on ``date`` (the newest when no date is given).

    Returns
    -------
    (MarginTable, caveat)
        ``caveat`` is non-empty when the date precedes every stored table (the earliest is used).

    Raises
    ------
    NoTable
        Unknown symbol (lists the known ones).
    ValueError
        A malformed date.
    """
    tables = _load(venue)
    if symbol not in tables:
        raise NoTable(f"{venue}: no margin table for symbol {symbol!r}{suggest(symbol, tables)}; "
                      f"known: {', '.join(sorted(tables))}")
    history = tables[symbol]
    if date is None:
        return history[-1], ""
    day = _day(venue, date)
    chosen = [t for t in history if t.effective <= day]
    if not chosen:
        first = history[0]
        return first, (f"out of date: no {venue} {symbol} table known on {day}; using the earliest, effective "
                       f"{first.effective}")
    return chosen[-1], ""


def resolve(venue: str, symbol: str, date: str | dt.date | None = None,
            assumed_table: str | None = None) -> tuple[MarginTable, str]:
    """The table of ``symbol`` on ``date`` by the one rule for what cannot be found.

    A symbol without a table uses ``assumed_table``'s (a symbol of the same venue), marked
    assumed; without ``assumed_table`` it is refused. A date before the earliest table uses
    that table, marked out of date.

    Returns
    -------
    (MarginTable, caveat)
        ``caveat``: empty, or why the table may not be the venue's for ``symbol`` on ``date``.

    Raises
    ------
    NoTable
        ``symbol`` (or ``assumed_table``) has no table: lists the symbols the venue has.
    """
    if assumed_table is not None and symbol not in _load(venue):
        try:
            table, caveat = margin_table(venue, assumed_table, date)
        except NoTable as exc:
            raise NoTable(f"assumed_table: {exc}") from None
        assumed = f"{ASSUMED}{venue} table for {symbol}, {assumed_table}'s used (assumed_table)"
        return table, assumed + (f"; {caveat}" if caveat else "")
    return margin_table(venue, symbol, date)


def preset_margin(venue: str, symbol: str, date: str | dt.date | None = None,
                  assumed_table: str | None = None, margin: "Margin | None" = None) -> "Margin":
    """The margin component of a preset: ``margin`` when the caller gives a table, else the
    stored table by :func:`resolve`, with its label and caveat."""
    from riskengine.venue import Margin

    if margin is not None:
        return margin
    table, caveat = resolve(venue, symbol, date, assumed_table)
    return Margin(floors=table.floors, rates=table.rates, form=table.form, source=table.describe(),
                  label=table.label, caveat=caveat, gap="" if table.complete else table.gap)


def notes(margin: "Margin", *more: str) -> str:
    """A preset's notes: the margin table's source, its caveat, and ``more``."""
    return "; ".join(x for x in (margin.source, margin.caveat, *more) if x)
