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

from collections.abc import Callable, Mapping
from typing import Any

from riskengine.errors import suggest
from riskengine.venue import VenueDesign
from riskengine.venues import binance_usdm, bitmex, bybit, drift, dydx_v4, hyperliquid, okx

_PRESETS: dict[str, Callable[..., VenueDesign]] = {
    m.NAME: m.preset for m in (binance_usdm, hyperliquid, bybit, okx, bitmex, dydx_v4, drift)
}
#: keys of a design spec that choose the preset rather than override a component
_PRESET_KEYS = ("preset", "symbol", "date", "max_leverage")


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


def build(spec: Mapping[str, Any], where: str = "venue") -> VenueDesign:
    """A design from a config table: an optional ``preset`` (with ``symbol``, ``date``,
    ``max_leverage``) whose components the other keys override.

    >>> build({"preset": "binance-usdm", "name": "bin-small-fund", "fund": {"initial": 1e6}}).fund.initial
    1000000.0
    """
    spec = dict(spec)
    options = {k: spec.pop(k) for k in _PRESET_KEYS if k in spec}
    name = options.pop("preset", None)
    if name is None:
        if options:
            raise ValueError(f"{where}: {', '.join(options)}: only valid with a 'preset'")
        return VenueDesign.from_dict(spec, where=where)
    try:
        base = preset(name, **options)
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
