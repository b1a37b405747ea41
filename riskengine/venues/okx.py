"""OKX perpetual swaps (``okx``).

Sources: ../shared/reference/venue-mechanisms.md §3 (OKX) [DOC S45, 3P S45b].

* Forced partial liquidation for large tiers: the position is reduced by tiers with orders
  priced slightly better than market, re-checked after about a minute and repeated
  (``tier-step`` with a 60 s cooldown); low tiers are fully liquidated at the bankruptcy price
  (IOC limited at bankruptcy, remainder to the insurance fund).
* ADL triggers when the insurance fund is insufficient or drops 30% from its 8-hour peak; OKX
  then stops sending liquidation orders to the market and matches liquidated positions with
  top-ranked counterparties at the current mark price [DOC S45]. Ranking by PnL and leverage
  [INF].
* Historical alternative (OKEx): socialized clawback of uncovered loss across profitable
  users, pro rata [3P S45b] — ``adl.policy = "pro-rata-pnl"``.
* Margin: position tiers in contracts, the tier's MMR on the whole position (``whole-position``
  form: OKX help "Tiered Maintenance Margin Ratio", okx.com/help/tier), per instrument and date in
  ``tables/okx.toml``: BTC/ETH/SOL-USDT-SWAP from a dated API capture of 2025-07-23, SOL from a
  2022-11-08 announcement; contracts converted to USDT at stated prices (each table's source and
  conversion in the file). ``<UNDERLYING>-USDT-SWAP`` for a scenario's underlying.
* Gaps: mark method not specified in the reference — index + EMA basis [INF].
"""

from __future__ import annotations

from riskengine.venue import Adl, Fund, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues._tables import notes, preset_margin

NAME = "okx"


DEFAULT_SYMBOL = "BTC-USDT-SWAP"


def symbol_for(underlying: str) -> str:
    """The USDT-margined swap of ``underlying`` (``AAVE`` -> ``AAVE-USDT-SWAP``)."""
    return f"{underlying}-USDT-SWAP"


def preset(symbol: str = DEFAULT_SYMBOL, date: str | None = None, assumed_table: str | None = None,
           margin: Margin | None = None) -> VenueDesign:
    """The OKX rulebook for ``symbol`` with the margin table in force on ``date`` (``assumed_table``:
    the symbol whose table a symbol without one uses; ``margin``: a table given instead of the
    stored ones)."""
    margin = preset_margin(NAME, symbol, date, assumed_table, margin)
    return VenueDesign(
        name=NAME, preset=NAME, margin=margin,
        mark=Mark(method="index-ema-basis", ema_s=300.0),
        liquidation=Liquidation(partial="tier-step", cooldown_s=60.0, limit="bankruptcy"),
        fund=Fund(takeover=True, unwind_interval_s=60.0, unwind_fraction=0.1),
        adl=Adl(policy="queue", ranking="pnl-leverage", price="mark",
                fund_drawdown=0.30, fund_window_s=8 * 3600.0),
        notes=notes(margin),
    )
