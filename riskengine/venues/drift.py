"""Drift protocol perps (``drift``).

Sources: ../shared/reference/venue-mechanisms.md §3 (Drift) [DOC S49, S49b, code S49c, S49d].

* Liquidation is progressive and partial: 25% of the position per step [DOC S49b], throttled
  across slots (here: one step per tick). Liquidators take the positions over rather than a
  public book (modelled as the book walk: liquidators are the external market) [INF].
  Penalties (up to 2.5% of collateral, half to the liquidator) are not modelled.
* Bankruptcies are resolved by the insurance fund, then the loss is socialized across the
  market (``resolve_perp_bankruptcy``, cumulative-funding adjustment => pro rata) [code S49c;
  INF from function names]: ``adl.policy = "socialize"`` charges every open position by size.
* Margining at the oracle price (``stream`` mark).
* Margin: each market's maintenance margin ratio, per market and date in ``tables/drift.toml``
  (docs snapshot 2024-11-20, drift-protocol-v2-docs; each table's source in the file). The size
  premium ``max(base, 0.8 base + imf_factor sqrt(size))`` (protocol-v2 ``perp_market.rs``) is
  not a tier table and is not modelled: it is stated in the table's gap and in the notes.
  ``<UNDERLYING>-PERP`` for a scenario's underlying.
"""

from __future__ import annotations

from riskengine.venue import Adl, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues._tables import notes, preset_margin

NAME = "drift"
STEP_FRACTION = 0.25


DEFAULT_SYMBOL = "BTC-PERP"


def symbol_for(underlying: str) -> str:
    """The Drift perp market of ``underlying`` (``AAVE`` -> ``AAVE-PERP``)."""
    return f"{underlying}-PERP"


def preset(symbol: str = DEFAULT_SYMBOL, date: str | None = None, assumed_table: str | None = None,
           margin: Margin | None = None) -> VenueDesign:
    """The Drift rulebook for ``symbol`` with the margin table in force on ``date`` (``assumed_table``:
    the symbol whose table a symbol without one uses; ``margin``: a table given instead of the
    stored ones)."""
    margin = preset_margin(NAME, symbol, date, assumed_table, margin)
    return VenueDesign(
        name=NAME, preset=NAME, margin=margin,
        mark=Mark(method="stream"),
        liquidation=Liquidation(partial="fraction", partial_fraction=STEP_FRACTION),
        adl=Adl(policy="socialize"),
        notes=notes(margin),
    )
