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
    ADL_FILL = 5  #: an opposite-side account closed by auto-deleveraging
    ADL_LIQUIDATION = 6  #: the liquidated side of an ADL match
    VAULT_UNWIND = 7  #: the backstop vault sells inventory into the book
    BAD_DEBT = 8  #: a deficit nobody covered


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


class AdlPolicy(IntEnum):
    """How the opposite side is selected for auto-deleveraging."""

    NONE = 0  #: no ADL: uncovered deficits become bad debt
    QUEUE = 1  #: ranked queue by a score, highest first
    PRO_RATA = 2  #: pro rata by position size


class AdlRanking(IntEnum):
    """Ranking score of the ADL queue."""

    PNL_LEVERAGE = 0  #: BitMEX/Bybit: PnL% x effective leverage
    HL_INDEX = 1  #: Hyperliquid: (mark/entry) x (notional/account value)
    BINANCE_LEVERAGE_PNL = 2  #: Binance: PnlPercent x MarginRatio


class AdlPrice(IntEnum):
    """Price at which ADL closes positions."""

    BANKRUPTCY = 0  #: bankruptcy price of the liquidated account
    MARK = 1  #: the current mark price


VAULT_ID = -1  #: account id used in the event log for the backstop vault
BOOK_ID = -2  #: counterparty id of a trade against the order book (the external market)
