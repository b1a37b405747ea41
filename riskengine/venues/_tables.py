"""Margin tables stored as data (``riskengine/venues/tables/*.toml``), chosen by symbol and date.

A table applies from its ``effective`` date until the next one. Asking for a date before the
first table returns the first one and says so in the notes; an unknown symbol lists the known
ones.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from riskengine.errors import suggest


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

    def describe(self) -> str:
        text = f"{self.venue} {self.symbol} margin table effective {self.effective}: {self.source}"
        if not self.complete:
            text += f"; gap: {self.gap}"
        return text


@cache
def _load(venue: str) -> dict[str, list[MarginTable]]:
    raw = tomllib.loads(resources.files("riskengine.venues").joinpath(f"tables/{venue}.toml").read_text())
    out: dict[str, list[MarginTable]] = {}
    for symbol, entries in raw.items():
        tables = []
        for e in entries:
            lev = tuple(float(x) for x in e["max_leverage"])
            rates = tuple(float(x) for x in e["rates"]) if "rates" in e else tuple(1.0 / (2.0 * x) for x in lev)
            tables.append(MarginTable(venue, symbol, dt.date.fromisoformat(e["effective"]),
                                      tuple(float(x) for x in e["floors"]), rates, lev,
                                      e["source"], bool(e["complete"]), e.get("gap", "")))
        out[symbol] = sorted(tables, key=lambda t: t.effective)
    return out


def symbols(venue: str) -> list[str]:
    """Symbols with a stored table."""
    return sorted(_load(venue))


def margin_table(venue: str, symbol: str, date: str | dt.date | None = None) -> tuple[MarginTable, str]:
    """The table of ``symbol`` in force on ``date`` (the newest when no date is given).

    Returns
    -------
    (MarginTable, note)
        ``note`` is non-empty when the date precedes every stored table.

    Raises
    ------
    ValueError
        Unknown symbol (lists the known ones) or a malformed date.
    """
    tables = _load(venue)
    if symbol not in tables:
        raise ValueError(f"{venue}: no margin table for symbol {symbol!r}{suggest(symbol, tables)}; "
                         f"known: {', '.join(sorted(tables))}")
    history = tables[symbol]
    if date is None:
        return history[-1], ""
    if isinstance(date, str):
        try:
            day = dt.date.fromisoformat(date[:10])
        except ValueError:
            raise ValueError(f"{venue}: date {date!r} is not an ISO date (YYYY-MM-DD)") from None
    else:
        day = date
    chosen = [t for t in history if t.effective <= day]
    if not chosen:
        first = history[0]
        return first, (f"no {venue} {symbol} table known on {day}; using the earliest, effective "
                       f"{first.effective}")
    return chosen[-1], ""
