"""Bybit USDT perpetuals (``bybit``).

Sources: ../shared/reference/venue-mechanisms.md §3 (Bybit) [DOC S42, S43, S44].

* Liquidation by mark price; partial liquidation by stepping the account down the risk-limit
  tiers: an order for the notional difference to a lower tier (``tier-step``); if that cannot
  fill better than bankruptcy, the whole position is taken over at the bankruptcy price by the
  insurance fund, and the surplus above bankruptcy goes to the fund [DOC S42].
* ADL when a position cannot be closed better than bankruptcy and the fund is insufficient:
  opposite traders ranked by profit and effective leverage, closed at the bankruptcy price of
  the liquidated order [DOC S43]. (Maker/taker fees on ADL are not modelled.) The newer
  grouped-pool trigger (8 h PnL drawdown vs ``insurancePnlRatio``) is available as
  ``adl.fund_drawdown`` [DOC S44]; the classic trigger (pool exhausted) is the default.
* Margin: risk-limit tiers with ``mmDeduction`` (``deduction`` form: Bybit help "Maintenance
  Margin (USDT Contract)", v5 ``GET /v5/market/risk-limit``), per symbol and date in
  ``tables/bybit.toml``: BTCUSDT tiers 1-2 from the help article (in force since the auto risk
  limit of 2024-03-12, incomplete), full BTC/ETH/SOL/BCH/FIL lists from a dated API capture of
  2025-12-29 (each table's source in the file). ``<UNDERLYING>USDT`` for a scenario's underlying.
* Gaps: the mark method is not specified in the reference — index + EMA basis is used [INF].
"""

from __future__ import annotations

from riskengine.venue import Adl, Fund, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues._tables import notes, preset_margin

NAME = "bybit"


DEFAULT_SYMBOL = "BTCUSDT"


def symbol_for(underlying: str) -> str:
    """The USDT perpetual of ``underlying`` (``AAVE`` -> ``AAVEUSDT``)."""
    return f"{underlying}USDT"


def preset(symbol: str = DEFAULT_SYMBOL, date: str | None = None, assumed_table: str | None = None,
           margin: Margin | None = None) -> VenueDesign:
    """The Bybit rulebook for ``symbol`` with the margin table in force on ``date`` (``assumed_table``:
    the symbol whose table a symbol without one uses; ``margin``: a table given instead of the
    stored ones)."""
    margin = preset_margin(NAME, symbol, date, assumed_table, margin)
    return VenueDesign(
        name=NAME, preset=NAME, margin=margin,
        mark=Mark(method="index-ema-basis", ema_s=300.0),
        liquidation=Liquidation(partial="tier-step", limit="bankruptcy", surplus_to_fund=True),
        fund=Fund(takeover=True, unwind_interval_s=60.0, unwind_fraction=0.1),
        adl=Adl(policy="queue", ranking="pnl-leverage", price="bankruptcy"),
        notes=notes(margin),
    )
