"""dYdX v4 (dYdX Chain) perpetuals (``dydx-v4``).

Sources: ../shared/reference/venue-mechanisms.md §3 (dYdX) [DOC S48, code S48b, S48c].

* Margining at the oracle price (``stream`` mark; the oracle is the tape's index stream).
* Liquidations are protocol IOC matches against the book at a fillable price bounded by a
  maximum spread from the oracle, by default 1.5 x the maintenance fraction (a price band of
  ``1.5 x MMF``) [DOC S48]; the insurance fund takes the gains and losses; liquidation fee at
  most 1.5% (``max_liquidation_fee_ppm``), all to the fund [DOC S48, S48b].
* If equity is negative, or there is no liquidity within the spread, the account is
  deleveraged immediately against offsetting positions at the bankruptcy price [DOC S48]
  (one help page says by profit and leverage, another says randomly; ranked by PnL x leverage
  here).
* Per-block caps on how much can be liquidated are not modelled as such (see
  ``liquidation.max_per_step``).
* Margin: one maintenance fraction per market (its liquidity tier's base IMF x maintenance
  fraction; dydxprotocol/v4-chain ``x/perpetuals``), per market and date in
  ``tables/dydx-v4.toml``: the mainnet genesis tiers (2023-10-26) and later values where a dated
  source was found (each table's source in the file). The open-interest scaling of the IMF
  does not change the MMF (stated in the file). ``<UNDERLYING>-USD`` for a scenario's underlying.
"""

from __future__ import annotations

from riskengine.venue import Adl, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues._tables import notes, preset_margin

NAME = "dydx-v4"
MAX_LIQUIDATION_FEE = 0.015
SPREAD_TO_MMF = 1.5


DEFAULT_SYMBOL = "BTC-USD"


def symbol_for(underlying: str) -> str:
    """The dYdX v4 market of ``underlying`` (``AAVE`` -> ``AAVE-USD``)."""
    return f"{underlying}-USD"


def preset(symbol: str = DEFAULT_SYMBOL, date: str | None = None, assumed_table: str | None = None,
           margin: Margin | None = None) -> VenueDesign:
    """The dYdX v4 rulebook for ``symbol`` with the margin table in force on ``date`` (``assumed_table``:
    the symbol whose table a symbol without one uses; ``margin``: a table given instead of the
    stored ones)."""
    margin = preset_margin(NAME, symbol, date, assumed_table, margin)
    return VenueDesign(
        name=NAME, preset=NAME, margin=margin,
        mark=Mark(method="stream"),
        liquidation=Liquidation(fee=MAX_LIQUIDATION_FEE, price_band=SPREAD_TO_MMF * margin.rates[0]),
        adl=Adl(policy="queue", ranking="pnl-leverage", price="bankruptcy", on_negative_equity=True),
        notes=notes(margin, f"price band = {SPREAD_TO_MMF} x the first tier's MMF"),
    )
