"""BitMEX perpetual swaps (``bitmex``).

Sources: ../shared/reference/venue-mechanisms.md §3 (BitMEX) [DOC S46, S46b].

* Fair-price marking (index + basis); risk limits raise margin with size.
* Partial liquidation by stepping down risk limits (an order to a lower tier); otherwise a full
  takeover with a limit order at the bankruptcy price; the surplus goes to the insurance fund;
  if the order cannot fill at bankruptcy the fund aggresses the market (it unwinds its
  inventory promptly here: half every 10 s); if that fails, ADL [DOC S46].
* ADL ranking: PnL% x effective leverage (profitable side), effective leverage
  ``|markValue| / (markValue - bankruptValue)``; closed at the bankruptcy price of the initial
  liquidated order [DOC S46].
* Margin: risk-limit steps, each step raising the rate of the whole position by the base
  maintenance margin (``whole-position`` form: BitMEX "Risk Limits Examples"), per symbol and
  date in ``tables/bitmex.toml``: the linear USDT perps (XBTUSDT from a 2022-10-16 API capture,
  ETH/SOL/BCH base rates from 2024-2025 announcements, WLD/WIF ladders of 2025-06-12; each table's
  source and gaps in the file). ``<UNDERLYING>USDT`` (``XBTUSDT`` for BTC) for a scenario's
  underlying.
"""

from __future__ import annotations

from riskengine.venue import Adl, Fund, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues._tables import notes, preset_margin

NAME = "bitmex"


DEFAULT_SYMBOL = "XBTUSDT"


def symbol_for(underlying: str) -> str:
    """The linear USDT perpetual of ``underlying`` (BitMEX names bitcoin XBT: ``BTC`` -> ``XBTUSDT``)."""
    return ("XBT" if underlying == "BTC" else underlying) + "USDT"


def preset(symbol: str = DEFAULT_SYMBOL, date: str | None = None, assumed_table: str | None = None,
           margin: Margin | None = None) -> VenueDesign:
    """The BitMEX rulebook for ``symbol`` with the margin table in force on ``date`` (``assumed_table``:
    the symbol whose table a symbol without one uses; ``margin``: a table given instead of the
    stored ones)."""
    margin = preset_margin(NAME, symbol, date, assumed_table, margin)
    return VenueDesign(
        name=NAME, preset=NAME, margin=margin,
        mark=Mark(method="index-ema-basis", ema_s=300.0),
        liquidation=Liquidation(partial="tier-step", limit="bankruptcy", surplus_to_fund=True),
        fund=Fund(takeover=True, unwind_interval_s=10.0, unwind_fraction=0.5),
        adl=Adl(policy="queue", ranking="pnl-leverage", price="bankruptcy"),
        notes=notes(margin),
    )
