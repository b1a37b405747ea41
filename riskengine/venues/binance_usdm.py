"""Binance USD-M futures (``binance-usdm``).

Sources: ../shared/reference/venue-mechanisms.md §1 and the keys cited there.

* Margin: notional brackets with maintenance amount (``deduction`` form); tables per symbol
  and date in ``tables/binance-usdm.toml`` (BTCUSDT 2021-03-18 [DOC S7]; BTC/ETH/SOL and the
  12 COIN-M alts' USDⓈ-M tables from dated weekly captures of ``GET /fapi/v1/leverageBracket``,
  each table's source in the file). Tier changes can apply to existing positions (2025-09-15
  announcement [DOC S68]). A scenario's underlying picks ``<UNDERLYING>USDT``: the engine
  simulates a linear USDⓈ-margined perp, so a COIN-M price path runs on the same underlying's
  USDⓈ-M table.
* Mark: median of the funding-adjusted index, index + moving-average basis and the last price
  [DOC S15, S16]; modelled as ``binance-median`` with a 5-minute basis EMA (USD-M text uses a
  5-minute MA basis [3P S17]; no funding stream, so the first input is the index [INF]). With
  only trades (no index stream) the mark is the last price (documented fallback).
* Liquidation: one IOC order limited at the bankruptcy price; the unfilled rest is taken over
  by the insurance fund at the bankruptcy price [DOC S2, S14, S18]; liquidation fee on the
  liquidated notional into the fund, capped at what margin is left [DOC S2; INF];
  BTCUSDT ``liquidationFee`` 1.25% (captures 2025-03-10, 2026-09-02 [3P S11]).
* Price band: ``marketTakeBound`` 5% for BTCUSDT [3P S11, DOC S10] applied to the liquidation
  order. Whether it applies to liquidation IOCs is not documented (gap, reference §7.4): set
  ``liquidation.price_band`` to ``None`` to drop it.
* Insurance fund: may hold net notional up to 100% of its size by default, beyond that ADL
  [DOC S23]; it offloads "slowly" by an unpublished algorithm (gap): modelled as 10% of the
  inventory every 60 s. Default balance ≈ 1.23B USDT, the shared BTC/ETH/BNB USD-M fund before
  2025-10-10 [3P S26] — scale it to the scenario. Binance runs "several Futures Insurance Funds"
  [DOC S23, S24] and does not publish which contracts each covers; BTC, ETH and BNB USDⓈ-M
  shared one on 2025-10-10 [3P S26]. The preset keeps one fund for every instrument
  (``fund.shared = "all"``); :data:`SHARED_FUND_SYMBOLS` is that fund's group, for a portfolio
  whose other instruments each draw on their own fund::

      preset().with_overrides({"fund": {"shared": [list(SHARED_FUND_SYMBOLS)]}})

  (the instruments outside the group then share one more fund; each fund starts with
  ``fund.initial``).
* ADL when the fund cannot take the position, ranked by LeveragePnl
  (``max(0,U)/max(1,WB) x MM/(WB+U)``), closed at the bankruptcy price of the liquidated order
  [DOC S2, S27]. The public ADL quantile updates every 30 s [DOC S28]; the queue is re-ranked
  every second here.
"""

from __future__ import annotations

from riskengine.venue import Adl, Fund, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues._tables import notes, preset_margin

NAME = "binance-usdm"
DEFAULT_SYMBOL = "BTCUSDT"
LIQUIDATION_FEE = {"BTCUSDT": 0.0125}
MARKET_TAKE_BOUND = {"BTCUSDT": 0.05}
SHARED_FUND_2025_10_10 = 1.23e9
#: the USDⓈ-M contracts of Binance's shared BTC/ETH/BNB insurance fund (2025-10-10 [3P S26];
#: "several Futures Insurance Funds" [DOC S23, S24]), a ``fund.shared`` group; a scenario that
#: names its instruments by coin writes ``["BTC", "ETH", "BNB"]``
SHARED_FUND_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def symbol_for(underlying: str) -> str:
    """The USDⓈ-M perpetual of ``underlying`` (``AAVE`` -> ``AAVEUSDT``)."""
    return f"{underlying}USDT"


def preset(symbol: str = DEFAULT_SYMBOL, date: str | None = None, assumed_table: str | None = None,
           margin: Margin | None = None) -> VenueDesign:
    """The Binance USD-M rulebook for ``symbol`` with the margin table in force on ``date``
    (``assumed_table``: the symbol whose table a symbol without one uses; ``margin``: a table
    given instead of the stored ones)."""
    margin = preset_margin(NAME, symbol, date, assumed_table, margin)
    more = []
    fee = LIQUIDATION_FEE.get(symbol)
    if fee is None:
        fee = LIQUIDATION_FEE[DEFAULT_SYMBOL]
        more.append(f"no liquidationFee capture for {symbol}: using BTCUSDT's {fee:.2%}")
    band = MARKET_TAKE_BOUND.get(symbol, MARKET_TAKE_BOUND[DEFAULT_SYMBOL])
    return VenueDesign(
        name=NAME,
        preset=NAME,
        margin=margin,
        mark=Mark(method="binance-median", ema_s=300.0),
        liquidation=Liquidation(fee=fee, limit="bankruptcy", price_band=band),
        fund=Fund(initial=SHARED_FUND_2025_10_10, takeover=True, capacity=1.0,
                  unwind_interval_s=60.0, unwind_fraction=0.1),
        adl=Adl(policy="queue", ranking="binance-leverage-pnl", price="bankruptcy"),
        notes=notes(margin, *more),
    )
