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
    assert CODES["ids"] == {"VAULT_ID": codes.VAULT_ID, "BOOK_ID": codes.BOOK_ID}
