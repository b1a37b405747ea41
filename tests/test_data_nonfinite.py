"""A number cell holding ``nan`` or an infinity is refused as not finite, naming the file, the
row and the column, in every importer; only a cell with nothing in it is "empty". (Arrow's CSV
reader takes ``nan``, ``NaN``, ``N/A`` ... for missing values by default, which once made a
``nan`` price "empty".) The files are the first rows of the real 2025-10-10 files with one cell
changed."""

from __future__ import annotations

import gzip
import json
import zipfile

import pytest

from riskengine.data import Catalog

TARDIS = "2025-10-10/binance-coinm-perp-trades/binance-delivery_trades_2025-10-10_AAVEUSD_PERP.csv.gz"
KLINES = "2025-10-10/binance-price-klines/BTCUSD_PERP-1m-2025-10-10.zip"
DEPTH = "2025-10-10/binance-usdm-bookdepth/BTCUSDT-bookDepth-2025-10-10.csv"


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def _edit(lines: list[str], row: int, column: int, value: str) -> list[str]:
    """A copy of CSV ``lines`` with the cell of file row ``row`` (1 = the first line) replaced."""
    out = list(lines)
    cells = out[row - 1].rstrip("\n").split(",")
    cells[column] = value
    out[row - 1] = ",".join(cells) + "\n"
    return out


def _tardis(shared_data, n: int = 100) -> list[str]:
    with gzip.open(shared_data / TARDIS, "rt") as f:
        return [next(f) for _ in range(n)]


def _refused(catalog, path, message: str, **kw) -> None:
    with pytest.raises(ValueError) as err:
        catalog.import_file(path, **kw)
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)
    assert catalog.list() == []


@pytest.mark.parametrize("column, value, shown", [
    (6, "nan", "'nan'"), (6, "NaN", "'nan'"), (6, "inf", "'inf'"), (6, "-inf", "'-inf'"),
    (7, "nan", "'nan'"), (7, "inf", "'inf'"),
])
def test_tardis_trades(shared_data, catalog, tmp_path, column, value, shown):
    path = tmp_path / "binance-delivery_trades_2025-10-10_AAVEUSD_PERP.csv"
    path.write_text("".join(_edit(_tardis(shared_data), 41, column, value)))
    name = "price" if column == 6 else "amount"
    _refused(catalog, path, f"row 41: column {name!r}: expected a finite number (got {shown})")


def test_tardis_empty_price_is_still_empty(shared_data, catalog, tmp_path):
    path = tmp_path / "binance-delivery_trades_2025-10-10_AAVEUSD_PERP.csv"
    path.write_text("".join(_edit(_tardis(shared_data), 41, 6, "")))
    _refused(catalog, path, "row 41: column 'price' is empty")


def _kline_lines(shared_data) -> list[str]:
    with zipfile.ZipFile(shared_data / KLINES) as z:
        return z.read(z.namelist()[0]).decode().splitlines(keepends=True)[:50]


def _zipped(path, lines: list[str]):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(path.name.replace(".zip", ".csv"), "".join(lines))
    return path


@pytest.mark.parametrize("value, message", [
    ("nan", "row 11: column 'close': expected a finite number (got 'nan')"),
    ("inf", "row 11: column 'close': expected a finite number (got 'inf')"),
    ("", "row 11: column 'close' is empty"),
])
def test_binance_klines(shared_data, catalog, tmp_path, value, message):
    path = _zipped(tmp_path / "BTCUSD_PERP-1m-2025-10-10.zip", _edit(_kline_lines(shared_data), 11, 4, value))
    _refused(catalog, path, message, source="binance-vision")


@pytest.mark.parametrize("column, value, message", [
    (3, "nan", "row 7: column 'notional': expected a finite number (got 'nan')"),
    (1, "nan", "row 7: column 'percentage': expected a finite number (got 'nan')"),
    (2, "-inf", "row 7: column 'depth': expected a finite number (got '-inf')"),
])
def test_binance_book_depth(shared_data, catalog, tmp_path, column, value, message):
    lines = (shared_data / DEPTH).read_text().splitlines(keepends=True)[:40]
    path = tmp_path / "BTCUSDT-bookDepth-2025-10-10.csv"
    path.write_text("".join(_edit(lines, 7, column, value)))
    _refused(catalog, path, message, source="binance-vision")


@pytest.mark.parametrize("column, value, message", [
    (1, "nan", "row 3: column 'price': expected a finite number (got 'nan')"),
    (2, "inf", "row 3: column 'quantity': expected a finite number (got 'inf')"),
])
def test_binance_agg_trades(catalog, tmp_path, column, value, message):
    lines = ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n",
             "1,10.0,2,1,1,1760054400000,true\n", "2,10.5,3,2,2,1760054400001,false\n"]
    path = _zipped(tmp_path / "AAVEUSD_PERP-aggTrades-2025-10-10.zip", _edit(lines, 3, column, value))
    _refused(catalog, path, message, source="binance-vision")


@pytest.mark.parametrize("change, message", [
    ({"px": "NaN"}, "line 1: 'px': expected a finite number (got 'NaN')"),
    ({"sz": "Infinity"}, "line 1: 'sz': expected a finite number (got 'Infinity')"),
])
def test_hyperliquid_fill(catalog, tmp_path, change, message):
    fill = {"coin": "BTC", "px": "112000.0", "sz": "0.5", "side": "A", "time": 1760131200000, "startPosition": "1.0",
            "dir": "Close Long", "closedPnl": "0.0", "hash": "0x" + "0" * 64, "oid": 1, "crossed": True,
            "fee": "0.0", "tid": 7, "feeToken": "USDC"}
    path = tmp_path / "node_fills" / "hourly" / "20251010" / "21"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(["0xabc", {**fill, **change}]) + "\n")
    _refused(catalog, path, message, source="hyperliquid")
