"""Exposes the engine's integer codes to Python for the consistency test."""

CODES = {
    "EventKind": {
        "LIQUIDATION": EV_LIQUIDATION,
        "PARTIAL_LIQUIDATION": EV_PARTIAL_LIQUIDATION,
        "BACKSTOP": EV_BACKSTOP,
        "FUND_PAYMENT": EV_FUND_PAYMENT,
        "ADL_FILL": EV_ADL_FILL,
        "ADL_LIQUIDATION": EV_ADL_LIQUIDATION,
        "VAULT_UNWIND": EV_VAULT_UNWIND,
        "BAD_DEBT": EV_BAD_DEBT,
    },
    "Status": {"FLAT": ST_FLAT, "ACTIVE": ST_ACTIVE, "PENDING": ST_PENDING, "CLOSED": ST_CLOSED},
    "MarkMethod": {
        "LAST": MARK_LAST,
        "EMA": MARK_EMA,
        "STREAM": MARK_STREAM,
        "INDEX_EMA_BASIS": MARK_INDEX_EMA_BASIS,
    },
    "AdlPolicy": {"NONE": ADL_NONE, "QUEUE": ADL_QUEUE, "PRO_RATA": ADL_PRO_RATA},
    "AdlRanking": {
        "PNL_LEVERAGE": RANK_PNL_LEVERAGE,
        "HL_INDEX": RANK_HL_INDEX,
        "BINANCE_LEVERAGE_PNL": RANK_BINANCE_LEVERAGE_PNL,
    },
    "AdlPrice": {"BANKRUPTCY": ADL_AT_BANKRUPTCY, "MARK": ADL_AT_MARK},
    "ids": {"VAULT_ID": VAULT_ID, "BOOK_ID": BOOK_ID},
}
