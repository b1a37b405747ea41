# Shared C types and codes for the engine modules. The codes mirror riskengine/codes.py
# (tests/test_codes.py checks they agree).
from libc.stdint cimport int8_t, int32_t, int64_t

ctypedef double float64_t
ctypedef int64_t i64
ctypedef int32_t i32
ctypedef int8_t i8

cdef enum:
    EV_LIQUIDATION = 1
    EV_PARTIAL_LIQUIDATION = 2
    EV_BACKSTOP = 3
    EV_FUND_PAYMENT = 4
    EV_ADL_FILL = 5
    EV_ADL_LIQUIDATION = 6
    EV_VAULT_UNWIND = 7
    EV_BAD_DEBT = 8
    EV_FUND_TAKEOVER = 9
    EV_FUND_UNWIND = 10
    EV_SOCIALIZED_LOSS = 11
    EV_FUNDING = 12
    EV_COLLATERAL_EXCHANGE = 13

cdef enum:
    ST_FLAT = 0
    ST_ACTIVE = 1
    ST_PENDING = 2
    ST_CLOSED = 3

cdef enum:
    MARK_LAST = 0
    MARK_EMA = 1
    MARK_STREAM = 2
    MARK_INDEX_EMA_BASIS = 3
    MARK_BINANCE_MEDIAN = 4
    MARK_HL_MEDIAN = 5

cdef enum:
    ADL_NONE = 0
    ADL_QUEUE = 1
    ADL_PRO_RATA = 2
    ADL_PRO_RATA_EQUITY = 3
    ADL_PRO_RATA_PNL = 4
    ADL_LEVERED_PRO_RATA = 5
    ADL_RISK_AWARE = 6
    ADL_WATER_FILLING = 7
    ADL_SOCIALIZE = 8

cdef enum:
    RANK_PNL_LEVERAGE = 0
    RANK_HL_INDEX = 1
    RANK_BINANCE_LEVERAGE_PNL = 2

cdef enum:
    ADL_AT_BANKRUPTCY = 0
    ADL_AT_MARK = 1
    ADL_AT_PREVIOUS_MARK = 2

cdef enum:
    PARTIAL_FRACTION = 0
    PARTIAL_TIER_STEP = 1

cdef enum:
    TAKEOVER_NONE = 0
    TAKEOVER_FUND = 1

cdef enum:
    CROSS_NOTIONAL = 0
    CROSS_LOSS = 1

cdef enum:
    FUNDING_AT_MARK = 0
    FUNDING_AT_INDEX = 1

cdef enum:
    VAULT_ID = -1
    BOOK_ID = -2
    FUND_ID = -3
    MARKET_ID = -4
    ADL_ORDERS_ID = -5
