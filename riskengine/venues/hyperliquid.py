"""Hyperliquid perps (``hyperliquid``).

Sources: ../shared/reference/venue-mechanisms.md §2 and the keys cited there.

* Margin tables (``tables/hyperliquid.toml``, each table's source in the file): BTC 40x to 150M
  then 20x; ETH 25x to 100M then 15x; SOL 20x to 70M then 10x, and the alts' tier lists (docs
  snapshots 2026-01-27 .. 2026-07-03 [DOC S20, S31]); BTC 40x and ETH 25x since the 2025-03-12
  cut (first tier only); a scenario's underlying is the coin;
  tables with id < 50 are single-tier with max leverage = id: ``preset("HYPE", max_leverage=10)``.
  Maintenance margin = half the initial margin at max leverage [DOC S20].
* Mark: median(oracle + 150 s EMA basis, median(bid, ask, last), external perp mids) [DOC S34];
  the tape carries no book or external mids, so the documented two-of-three fallback applies:
  median(oracle + 150 s EMA basis, last, 30 s EMA of last) (``hl-median``). Without an oracle
  stream the mark is the last price.
* Liquidation: market orders for the whole position, or 20% when the position is over
  100,000 USDC, then whole during a 30 s cooldown [DOC S21, S35]; no clearance fee [DOC S21].
* Backstop: below 2/3 of maintenance margin "without successful book liquidation" the
  liquidator vault takes the position and keeps the margin [DOC S21]. A market order whose walk
  of the book would leave the account in deficit is not a successful book liquidation, so the
  vault takes such an account over too (rather than the order going to ADL). Its size: a small share of HLP [DOC S36] — set ``backstop.vault_balance``.
  One liquidator vault serves every asset (reference §2.4; on 2025-10-10 it backstopped 162
  tickers, §2.6): ``backstop.shared = "all"``.
* ADL when an account's value goes negative [DOC S38] or the vault's loss passes a threshold
  [DOC S36]; on 2025-10-10, 95.1% of ADL fills had HLP or the Liquidator vaults on the
  liquidated side (../shared/reference/portfolios-and-stress.md §2): the vault's own inventory
  was deleveraged. The threshold is not published (reference §7.5), so it is an assumption tied
  to the vault's balance: ``backstop.loss_limit_share`` of ``backstop.vault_balance``, by default
  1 — the vault never loses more than it holds, so a smaller vault deleverages sooner (an
  amount in ``backstop.loss_limit`` overrides it). The loss is checked after every takeover,
  unwind and re-mark; at the breach the vault's whole inventory is deleveraged, and while beyond
  its threshold the vault takes nothing over (accounts get the book, then ADL). ADL is
  ranked by (mark/entry) x (notional/account value), side-adjusted for shorts
  (entry/mark) by default — the docs' text (mark/entry) is ``adl.short_mark_over_entry``
  [DOC S38; INF]; closed at the previous mark [DOC S38].
* No insurance fund: deficits the vault and ADL do not cover are bad debt.
* Largest market order (so the largest liquidation order): $30M at max leverage >= 25, $5M in
  [20, 25), $2M in [10, 20), else $500k [DOC S32] (:func:`max_market_order`).
"""

from __future__ import annotations

from riskengine.ranges import check_leverage
from riskengine.venue import Adl, Backstop, Funding, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues._tables import notes, preset_margin

NAME = "hyperliquid"
DEFAULT_SYMBOL = "BTC"
PARTIAL_THRESHOLD_USDC = 100_000.0
PARTIAL_FRACTION = 0.2
COOLDOWN_S = 30.0
BACKSTOP_RATIO = 2.0 / 3.0


def max_market_order(max_leverage: float) -> float:
    """Hyperliquid's maximum market order value for an asset of this max leverage [DOC S32]."""
    if max_leverage >= 25:
        return 30e6
    if max_leverage >= 20:
        return 5e6
    if max_leverage >= 10:
        return 2e6
    return 500e3


def symbol_for(underlying: str) -> str:
    """Hyperliquid names a perp by its coin (``AAVE``)."""
    return underlying


def preset(symbol: str = DEFAULT_SYMBOL, date: str | None = None,
           max_leverage: float | None = None, assumed_table: str | None = None,
           margin: Margin | None = None) -> VenueDesign:
    """The Hyperliquid rulebook for ``symbol`` (or a single-tier table of ``max_leverage``;
    ``assumed_table``: the coin whose table a coin without one uses; ``margin``: a table given
    instead of the stored ones)."""
    if max_leverage is not None:
        max_leverage = check_leverage(max_leverage, f"{NAME}: max_leverage")
        source = f"single-tier table, max leverage {max_leverage:g} (ids < 50, [DOC S20])"
        margin = Margin.from_max_leverage((0.0,), (max_leverage,), source,
                                          label=f"{NAME} single-tier {max_leverage:g}x")
    else:
        margin = preset_margin(NAME, symbol, date, assumed_table, margin)
    top = round(1.0 / (2.0 * margin.rates[0]), 9)  # the first tier's max leverage (rate = 1 / (2 x leverage))
    return VenueDesign(
        name=NAME,
        preset=NAME,
        margin=margin,
        mark=Mark(method="hl-median", ema_s=150.0, ema2_s=30.0),
        liquidation=Liquidation(fee=0.0, partial="fraction", partial_fraction=PARTIAL_FRACTION,
                                partial_threshold=PARTIAL_THRESHOLD_USDC, cooldown_s=COOLDOWN_S,
                                max_order=max_market_order(top)),
        backstop=Backstop(ratio=BACKSTOP_RATIO, shared="all"),
        adl=Adl(policy="queue", ranking="hl-index", price="previous-mark", on_negative_equity=True),
        # "position size x oracle price x funding rate" (docs, "Funding"): the oracle is the stream
        funding=Funding(price="index"),
        notes=notes(margin),
    )
