"""The integer codes of the Cython engine and of riskengine.codes agree."""

from riskengine import codes
from riskengine._typedefs import CODES


def test_enum_codes_match():
    for enum_name, values in CODES.items():
        if enum_name == "ids":
            continue
        enum = getattr(codes, enum_name)
        assert {m.name: int(m) for m in enum} == values, enum_name


def test_special_ids_match():
    assert CODES["ids"] == {"VAULT_ID": codes.VAULT_ID, "BOOK_ID": codes.BOOK_ID, "FUND_ID": codes.FUND_ID,
                             "MARKET_ID": codes.MARKET_ID, "ADL_ORDERS_ID": codes.ADL_ORDERS_ID}


def test_event_and_series_buffers_match_runlog_dtypes():
    """The C push functions write columns in a fixed order with fixed C types; the buffers are
    sized from riskengine.runlog. If either side changes, this fails before memory does."""
    from riskengine._events import column_items
    from riskengine.runlog import EVENT_COLUMNS, SERIES_COLUMNS

    # ts, tick, round, kind, account, instrument,
    # counterparty, then 7 float64 columns
    events, series = EVENT_COLUMNS, SERIES_COLUMNS
    assert [name for name, _, _ in events][:7] == ["ts", "tick", "round", "kind", "account", "instrument",
                                                  "counterparty"]
    assert column_items(events).tolist() == [8, 8, 4, 1, 8, 4, 8] + [8] * 7
    assert [d for _, d, _ in events] == ["int64", "int64", "int32", "int8", "int64", "int32", "int64"] + ["float64"] * 7
    # ts, instrument, then the figures in series_push's order
    assert [name for name, _, _ in series][:2] == ["ts", "instrument"]
    assert [d for _, d, _ in series] == ["int64", "int32"] + ["float64"] * 7 + ["int64", "float64", "int64", "float64"]
