"""Integer codes shared by the Cython engine and the reference engine.

The Cython side declares the same values in ``cext/riskengine/_typedefs.pxd``;
``tests/test_codes.py`` checks that the two agree.
"""

from enum import IntEnum


class EventKind(IntEnum):
    """Kinds of rows in the event log."""

    LIQUIDATION = 1  #: full market liquidation on the book
    PARTIAL_LIQUIDATION = 2  #: a fraction of the position sent to the book
    BACKSTOP = 3  #: the backstop vault takes over position and margin
    FUND_PAYMENT = 4  #: insurance fund pays a deficit beyond the bankruptcy price
    ADL_FILL = 5  #: an opposite-side account closed by auto-deleveraging (weighted policies: its fills of one series interval)
    ADL_LIQUIDATION = 6  #: the liquidated side of an ADL match
    VAULT_UNWIND = 7  #: the backstop vault sells inventory into the book
    BAD_DEBT = 8  #: a deficit nobody covered
    FUND_TAKEOVER = 9  #: the insurance fund takes over an unfilled remainder at the bankruptcy price
    FUND_UNWIND = 10  #: the insurance fund sells inventory into the book
    SOCIALIZED_LOSS = 11  #: a deficit charged to all open positions (one row per deficit)
    FUNDING = 12  #: a funding payment of every open position of an instrument (one row per instrument and funding time)
    COLLATERAL_EXCHANGE = 13  #: a collateral holding sold at market for the account's debts (auto-exchange at liquidation)


class Status(IntEnum):
    """Account status."""

    FLAT = 0  #: no position
    ACTIVE = 1  #: holds a position, watched by the liquidation index
    PENDING = 2  #: triggered, waiting out the processing latency
    CLOSED = 3  #: position closed by liquidation, backstop or ADL


class MarginMode(IntEnum):
    """Margin mode of an account."""

    ISOLATED = 0
    CROSS = 1


class MarkMethod(IntEnum):
    """How the mark price is formed from the tape and the supplied streams."""

    LAST = 0  #: last (simulated) trade price
    EMA = 1  #: time-weighted EMA of simulated trade prices
    STREAM = 2  #: a supplied mark/index stream (last trade until it starts)
    INDEX_EMA_BASIS = 3  #: index + EMA of (simulated trade price - index)
    BINANCE_MEDIAN = 4  #: median(index, index + EMA basis, last) (Binance; funding term not modelled)
    HL_MEDIAN = 5  #: median(oracle + EMA basis, last, EMA of last) (Hyperliquid's 2-of-3 fallback)


class AdlPolicy(IntEnum):
    """How the opposite side is selected for auto-deleveraging (see ``cext/riskengine/_adl.pyx``)."""

    NONE = 0  #: no ADL: uncovered deficits become bad debt
    QUEUE = 1  #: ranked queue by a score, highest first
    PRO_RATA = 2  #: pro rata by position size
    PRO_RATA_EQUITY = 3  #: pro rata by positive equity (Chitra's pro-rata)
    PRO_RATA_PNL = 4  #: pro rata by positive unrealized PnL (Chitra v3: principal protected)
    LEVERED_PRO_RATA = 5  #: weights leverage x equity (= notional) (Chitra's LPR)
    RISK_AWARE = 6  #: weights leverage^(1+p) x equity, capped (Chitra's RAP, power risk model)
    WATER_FILLING = 7  #: drain the highest leverage first, equalizing it (Campbell et al. 2026)
    SOCIALIZE = 8  #: no position closed: the deficit is charged to every open position by size (Drift)

    @property
    def merges_fills(self) -> bool:
        """The weighted policies and water-filling fill every winner on every order, so their
        fills are logged one row per winner per series interval (``_engine.pyx``: the same
        range test, ``ADL_PRO_RATA <= policy <= ADL_WATER_FILLING``)."""
        return AdlPolicy.PRO_RATA <= self <= AdlPolicy.WATER_FILLING


class AdlRanking(IntEnum):
    """Ranking score of the ADL queue."""

    PNL_LEVERAGE = 0  #: BitMEX/Bybit: PnL% x effective leverage
    HL_INDEX = 1  #: Hyperliquid: (mark/entry) x (notional/account value)
    BINANCE_LEVERAGE_PNL = 2  #: Binance: PnlPercent x MarginRatio


class AdlPrice(IntEnum):
    """Price at which ADL closes positions."""

    BANKRUPTCY = 0  #: bankruptcy price of the liquidated account
    MARK = 1  #: the current mark price
    PREVIOUS_MARK = 2  #: the mark before this tick's update (Hyperliquid)


class PartialMode(IntEnum):
    """How large a partial liquidation order is."""

    FRACTION = 0  #: a fixed fraction of the position above a notional threshold (Hyperliquid, Drift)
    TIER_STEP = 1  #: just enough to step the notional down into a lower margin tier that is healthy (Bybit, BitMEX, OKX)


class Takeover(IntEnum):
    """Who takes the part of a limited liquidation order the book did not fill."""

    NONE = 0  #: auto-deleveraged (or, without ADL, sent to the book unlimited)
    FUND = 1  #: the insurance fund, at the bankruptcy price, within its capacity


class CrossOrder(IntEnum):
    """Which position of a crossing cross margin account with several positions is liquidated
    first (venues do not document an order: a named design setting, ``liquidation.cross_order``)."""

    NOTIONAL = 0  #: the largest notional ``|q| M`` first
    LOSS = 1  #: the most negative unrealized PnL ``q (M - e)`` first


class FundingPrice(IntEnum):
    """The price a funding payment values a position at (``funding.price``)."""

    #: the mark: Binance "Funding Amount = Nominal Value of Positions x Funding Rate", the nominal
    #: value at the mark price [DOC S2]
    MARK = 0
    #: the instrument's index/oracle stream as of its last tick (the mark where it has none yet):
    #: Hyperliquid "position size x oracle price x funding rate" (docs, "Funding")
    INDEX = 1


VAULT_ID = -1  #: account id used in the event log for the backstop vault
BOOK_ID = -2  #: counterparty id of a trade against the order book (the external market)
FUND_ID = -3  #: account id used in the event log for the insurance fund's own trades
MARKET_ID = -4  #: counterparty of a socialized loss: every open position of the market
#: counterparty of an ADL fill row that sums one account's fills from several ADL orders in one
#: series interval (weighted ADL policies log one row per account per interval, see
#: ``riskengine.reference``)
ADL_ORDERS_ID = -5
