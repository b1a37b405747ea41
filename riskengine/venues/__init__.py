"""Venue presets: each documented rulebook in one file, built on :class:`VenueDesign`.

>>> from riskengine import venues
>>> venues.names()
['binance-usdm', 'bitmex', 'bybit', 'drift', 'dydx-v4', 'hyperliquid', 'okx']
>>> hl = venues.preset("hyperliquid", symbol="ETH")
>>> variant = venues.build({"preset": "hyperliquid", "name": "hl-pro-rata", "adl": {"policy": "pro-rata"}})

GMX v2 is not a preset: there the liquidity pool is the counterparty of every position and
prices come from oracles with pool-imbalance impact, and its ADL reduces profitable positions
when the pool's PnL-to-pool factor passes a cap (pool solvency, not bad debt; reference §3).
The engine's order book + insurance fund + ADL waterfall does not describe that without
contortion, so it is left out rather than imitated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from riskengine.errors import suggest
from riskengine.venue import Margin, VenueDesign
from riskengine.venues import binance_usdm, bitmex, bybit, drift, dydx_v4, hyperliquid, okx
from riskengine.venues._tables import ASSUMED, NoTable, margin_table

_MODULES = {m.NAME: m for m in (binance_usdm, hyperliquid, bybit, okx, bitmex, dydx_v4, drift)}
_PRESETS: dict[str, Callable[..., VenueDesign]] = {name: m.preset for name, m in _MODULES.items()}
#: keys of a design spec that choose the preset rather than override a component
_PRESET_KEYS = ("preset", "symbol", "date", "max_leverage", "assumed_table")


def names() -> list[str]:
    """Names of the presets."""
    return sorted(_PRESETS)


def preset(name: str, **options: Any) -> VenueDesign:
    """The preset ``name``; ``options`` are its own (``symbol``, ``date``, ...).

    Raises
    ------
    ValueError
        Unknown name (lists the valid ones, with the nearest), or a bad option.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown venue preset {name!r}{suggest(name, _PRESETS)}; "
                         f"valid presets: {', '.join(names())}")
    try:
        return _PRESETS[name](**options)
    except TypeError as exc:
        raise ValueError(f"preset {name!r}: {exc}") from None


def symbol_for(name: str, underlying: str) -> str:
    """The symbol of preset ``name``'s venue for ``underlying`` (``binance-usdm``, ``AAVE`` ->
    ``AAVEUSDT``; ``okx`` -> ``AAVE-USDT-SWAP``; ``hyperliquid`` -> ``AAVE``)."""
    return _MODULES[name].symbol_for(underlying)


#: quote currencies and contract suffixes stripped from a tape's symbol to find its underlying
_QUOTES = ("USDT", "USDC", "BUSD", "USD")
_SUFFIXES = ("_PERP", "-PERP", "-SWAP", "PERP")


def underlying_of(symbol: str) -> str:
    """The asset of a market symbol: ``BTCUSD_PERP`` -> ``BTC``, ``AAVE-USDT-SWAP`` -> ``AAVE``,
    ``TRXUSDT`` -> ``TRX``, ``XBTUSD`` -> ``BTC``, ``SOL`` -> ``SOL``."""
    name = symbol.upper()
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    name = name.rstrip("-_/")
    for quote in _QUOTES:
        if name.endswith(quote) and len(name) > len(quote):
            name = name[: -len(quote)].rstrip("-_/")
            break
    return "BTC" if name == "XBT" else name


def _stored_table(design: VenueDesign) -> tuple[str, str] | None:
    """``(symbol, effective date)`` of the stored table of the design's preset venue that the
    design's margin is (its label names it and its tiers are that table's), or None: a table
    the design gives itself, a preset's single-tier table, or no preset."""
    if design.preset not in _MODULES:
        return None
    words = design.margin.label.split()
    if len(words) < 3 or words[0] != design.preset:
        return None
    symbol, effective = words[1], words[2]
    try:
        table, _ = margin_table(design.preset, symbol, effective)
    except ValueError:
        return None
    if (table.label != design.margin.label or table.floors != design.margin.floors
            or table.rates != design.margin.rates or table.form != design.margin.form):
        return None
    return symbol, effective


def _rebased(value: dict, base: dict, target: dict) -> dict:
    """``value`` with every leaf it shares with ``base`` taken from ``target`` instead (what a
    design kept of its preset follows the preset for another symbol; what it changed stays)."""
    out = {}
    for key, item in value.items():
        if isinstance(item, dict) and isinstance(base.get(key), dict) and isinstance(target.get(key), dict):
            out[key] = _rebased(item, base[key], target[key])
        else:
            out[key] = target.get(key, item) if key in base and item == base[key] else item
    return out


def for_symbol(design: VenueDesign, symbol: str, date: str | dt.date | None = None,
               where: str = "venue") -> VenueDesign:
    """The design as it applies to the instrument ``symbol`` of a multi-instrument scenario on
    ``date`` (None: the newest tables).

    A preset design whose margin table is one of its venue's stored tables (chosen by a symbol
    and a date) takes the table of its venue's symbol for ``symbol``'s underlying
    (:func:`underlying_of`, :func:`symbol_for`) in force on ``date``, with everything its preset
    derives from the table (Hyperliquid's largest market order, dYdX's price band); every other
    key the design changed from its preset stays as the design has it. A design whose table
    was assumed (``assumed_table``) keeps that assumed table for a symbol without one of its own.
    Any other design (a table it gives itself, a single-tier table, no preset) is the same for
    every instrument and is returned as is.

    Raises
    ------
    ValueError
        ``where: ...``: the venue has no table for the instrument's symbol (listing the ones it
        has).

    >>> d = preset("binance-usdm", symbol="BTCUSDT", date="2025-10-10")
    >>> for_symbol(d, "ETHUSDT", "2025-10-10").margin.label.split()[:2]
    ['binance-usdm', 'ETHUSDT']
    """
    stored = _stored_table(design)
    if stored is None:
        return design
    venue, (table_symbol, effective) = design.preset, stored
    target_symbol = symbol_for(venue, underlying_of(symbol))
    assumed = table_symbol if design.margin.caveat.startswith(ASSUMED) else None
    try:
        base = preset(venue, symbol=table_symbol, date=effective)
        target = preset(venue, symbol=target_symbol, date=date, assumed_table=assumed)
    except ValueError as exc:
        raise ValueError(f"{where}: instrument {symbol}: {exc}; give the design its own table (margin.floors "
                         "and margin.rates) or name one as assumed (assumed_table)") from None
    data = _rebased(design.model_dump(), base.model_dump(), target.model_dump())
    data["margin"] = target.margin.model_dump()  # one table: never a mix of two
    if design.notes.startswith(design.margin.source):  # the preset's notes on its table
        data["notes"] = target.notes
    return VenueDesign.from_dict(data, where=where)


def given_margin(spec: Mapping[str, Any]) -> Margin | None:
    """The table a design spec gives itself (``margin.floors`` and ``margin.rates``), if any.
    An invalid one gives the stand-in ``Margin()``: applying the overrides then reports it."""
    margin = spec.get("margin")
    if isinstance(margin, Margin):
        return margin
    if not isinstance(margin, Mapping) or not {"floors", "rates"} <= set(margin):
        return None
    try:
        return Margin.model_validate({k: margin[k] for k in ("floors", "rates", "form") if k in margin})
    except ValidationError:
        return Margin()


def build(spec: Mapping[str, Any], where: str = "venue", underlying: str | None = None,
          date: str | dt.date | None = None) -> VenueDesign:
    """A design from a config table: an optional ``preset`` (with ``symbol``, ``date``,
    ``max_leverage``, ``assumed_table``) whose components the other keys override.

    ``underlying`` and ``date`` are the scenario's: without a ``symbol`` the preset takes its
    venue's symbol for the underlying (:func:`symbol_for`), without a ``date`` the table in force
    on the scenario's date. A symbol without a stored table is refused, unless the table gives
    its own margin table (``margin.floors`` and ``margin.rates``) or names one as assumed
    (``assumed_table``).

    >>> build({"preset": "binance-usdm", "name": "bin-small-fund", "fund": {"initial": 1e6}}).fund.initial
    1000000.0
    >>> build({"preset": "binance-usdm"}, underlying="ETH", date="2025-10-10").margin.label.split()[:2]
    ['binance-usdm', 'ETHUSDT']
    """
    spec = dict(spec)
    options = {k: spec.pop(k) for k in _PRESET_KEYS if k in spec}
    name = options.pop("preset", None)
    if name is None:
        if options:
            raise ValueError(f"{where}: {', '.join(options)}: only valid with a 'preset'")
        return VenueDesign.from_dict(spec, where=where)
    if name in _MODULES:
        if "symbol" not in options and underlying is not None and "max_leverage" not in options:
            options["symbol"] = symbol_for(name, underlying)
        if "date" not in options and date is not None:
            options["date"] = date
        given = given_margin(spec)
        if given is not None:
            options["margin"] = given
    try:
        base = preset(name, **options)
    except NoTable as exc:
        raise ValueError(f"{where}: {exc}; give the table (margin.floors and margin.rates) or name one as "
                         f"assumed (assumed_table = \"{_MODULES[name].DEFAULT_SYMBOL}\")") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not spec:
        return base
    try:
        return base.with_overrides(spec)
    except ValueError as exc:
        if where == "venue":  # the design's own message already names it
            raise
        raise ValueError(f"{where}: {exc}") from None
