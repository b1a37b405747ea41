"""Binance Vision ``metrics`` import (open interest and long/short ratios).

There is no metrics file in ../shared/data, so the tests write one in the archive's layout
(``create_time,symbol,sum_open_interest,...``, a row every 5 minutes) with the real BTC prices of
2025-10-10 from the 5-minute and 1-minute klines there: open interest value = open interest x price.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import numpy as np
import pytest

from riskengine.cli import main
from riskengine.data import Catalog, binance

KLINES_5M = "2025-10-10/binance-price-klines/BTCUSDT-5m-2025-10-10.zip"
KLINES_COINM = "2025-10-10/binance-price-klines/BTCUSD_PERP-1m-2025-10-10.zip"
HEADER = ("create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
          "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n")


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def bars(shared_data, name: str, every: int = 1) -> list[tuple[int, float]]:
    """(open time in ms, open price) of every ``every``-th bar of a real klines file."""
    with zipfile.ZipFile(shared_data / name) as z:
        lines = z.read(z.namelist()[0]).decode().splitlines()[1:]
    return [(int(c[0]), float(c[1])) for c in (line.split(",") for line in lines[::every])]


def utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def usdm_rows(shared_data) -> list[str]:
    """A day of BTCUSDT metrics: about 95k BTC open, 8% of it closed out in the 21:00 crash."""
    rows = []
    for k, (ms, price) in enumerate(bars(shared_data, KLINES_5M)):
        oi = round(95_000 + 3.5 * k - (7_600 if ms >= 1760130000000 else 0), 3)  # 21:00 UTC
        rows.append(f"{utc(ms)},BTCUSDT,{oi:.8f},{oi * price:.8f},{1.9 + k / 1000:.8f},{2.1 - k / 2000:.8f},"
                    f"{1.7 + k / 1500:.8f},{0.8 + (k % 7) / 10:.8f}\n")
    return rows


def archive(tmp_path: Path, name: str, rows: list[str], header: bool = True) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name.replace(".zip", ".csv"), (HEADER if header else "") + "".join(rows))
    return path


def test_usdm_metrics_with_header(shared_data, catalog, tmp_path):
    rows = usdm_rows(shared_data)
    path = archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", rows)
    report = catalog.import_file(path, source="binance-vision")  # kind from the -metrics- name
    assert (report.kind, report.source, report.symbol, report.rows) == ("metrics", "binance", "BTCUSDT", 288)
    table = catalog.read("metrics", "binance", "BTCUSDT")
    assert table.num_rows == 288
    first = rows[0].rstrip("\n").split(",")
    got = table.slice(0, 1).to_pylist()[0]
    assert got["ts"] == dt.datetime(2025, 10, 10, tzinfo=dt.UTC)
    assert got["open_interest"] == float(first[2]) and got["open_interest_value"] == float(first[3])
    assert got["top_trader_long_short_accounts"] == float(first[4])
    assert got["top_trader_long_short_positions"] == float(first[5])
    assert got["long_short_accounts"] == float(first[6])
    assert got["taker_long_short_volume"] == float(first[7])
    ts = table.column("ts").cast("int64").to_numpy()
    assert np.all(np.diff(ts) == 300 * 10**9)
    # open interest value / open interest is the real 5-minute price of BTC
    price = table.column("open_interest_value").to_numpy() / table.column("open_interest").to_numpy()
    assert price.max() == pytest.approx(max(p for _, p in bars(shared_data, KLINES_5M)))
    assert price.min() < 110_000


def test_headerless_csv_in_the_metrics_folder(shared_data, catalog, tmp_path):
    rows = usdm_rows(shared_data)
    with_header = archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", rows)
    folder = tmp_path / "data/futures/um/daily/metrics/BTCUSDT"
    folder.mkdir(parents=True)
    plain = folder / "BTCUSDT-metrics-2025-10-10.csv"
    plain.write_text("".join(rows))
    assert binance.kind_of(plain) == "metrics"
    assert binance.kind_of(folder / "anything.csv") == "metrics"  # from the folder alone
    assert binance.kind_of(Path("BTCUSD_PERP-metrics-2025-10-10.zip")) == "metrics"
    headerless = Catalog(tmp_path / "other")
    headerless.import_file(plain, source="binance-vision")
    catalog.import_file(with_header, source="binance-vision")
    assert headerless.read("metrics", "binance", "BTCUSDT").equals(catalog.read("metrics", "binance", "BTCUSDT"))


def test_coinm_contracts_become_base_units(shared_data, catalog, tmp_path):
    """COIN-M rows carry contracts and base units ($100 a BTCUSD_PERP contract); ratio cells are
    empty strings as in the published COIN-M files."""
    rows, expected = [], []
    for ms, price in bars(shared_data, KLINES_COINM, every=5):
        contracts = 4_800_000 if ms < 1760130000000 else 4_350_000
        base = contracts * 100 / price
        rows.append(f'{utc(ms)},BTCUSD_PERP,{contracts:.8f},{base:.8f},"","","",1.05000000\n')
        expected.append((base, contracts * 100.0))
    path = archive(tmp_path, "BTCUSD_PERP-metrics-2025-10-10.zip", rows)
    catalog.import_file(path, source="binance-vision", kind="metrics")
    table = catalog.read("metrics", "binance", "BTCUSD_PERP")
    got = list(zip(table.column("open_interest").to_pylist(), table.column("open_interest_value").to_pylist()))
    assert got == [(float(f"{b:.8f}"), v) for b, v in expected]
    assert table.column("open_interest").to_numpy()[0] == pytest.approx(4_800_000 * 100 / 121_662, rel=1e-12)
    for name in ("top_trader_long_short_accounts", "top_trader_long_short_positions", "long_short_accounts"):
        assert table.column(name).null_count == table.num_rows
    assert table.column("taker_long_short_volume").null_count == 0


def test_empty_cells_are_null(shared_data, catalog, tmp_path):
    rows = usdm_rows(shared_data)[:3]
    c = rows[1].split(",")
    c[2], c[5] = "", ""
    rows[1] = ",".join(c)
    catalog.import_file(archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", rows), source="binance-vision")
    got = catalog.read("metrics", "binance", "BTCUSDT").to_pylist()
    assert got[1]["open_interest"] is None and got[1]["top_trader_long_short_positions"] is None
    assert got[1]["open_interest_value"] == float(c[3]) and got[0]["open_interest"] is not None


def test_reimport_is_idempotent(shared_data, catalog, tmp_path):
    path = archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", usdm_rows(shared_data))
    first = catalog.import_file(path, source="binance-vision")
    second = catalog.import_file(path, source="binance-vision")
    assert first.files == second.files and len(catalog.files(kind="metrics")) == 1
    assert catalog.read("metrics", "binance", "BTCUSDT").num_rows == 288


def test_cli_import(shared_data, tmp_path, capsys):
    path = archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", usdm_rows(shared_data))
    assert main(["data", "import", str(path), "--source", "binance-vision", "--catalog", str(tmp_path / "c")]) == 0
    assert "288 metrics rows -> binance/BTCUSDT" in capsys.readouterr().out


def edited(shared_data, row: int, column: int, value: str) -> list[str]:
    rows = usdm_rows(shared_data)[:20]
    c = rows[row].rstrip("\n").split(",")
    c[column] = value
    rows[row] = ",".join(c) + "\n"
    return rows


@pytest.mark.parametrize("row, column, value, message", [
    (6, 2, "-12.5", r"row 8: column 'sum_open_interest': expected a finite value >= 0 \(got -12.5\)"),
    (9, 4, "n/a", r"row 11: column 'count_toptrader_long_short_ratio': expected a number \(got 'n/a'\)"),
    (2, 0, "2025-10-10T00:10:00", r"row 4: column 'create_time': expected YYYY-MM-DD HH:MM:SS"),
    (4, 1, "ETHUSDT", r"row 6: column 'symbol': expected BTCUSDT as in the file name \(got 'ETHUSDT'\)"),
])
def test_bad_row_is_named_and_catalog_unchanged(shared_data, catalog, tmp_path, row, column, value, message):
    path = archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", edited(shared_data, row, column, value))
    with pytest.raises(ValueError, match=message) as err:
        catalog.import_file(path, source="binance-vision")
    assert str(path) in str(err.value)
    assert catalog.list() == []


def test_extra_column_in_a_row(shared_data, catalog, tmp_path):
    rows = edited(shared_data, 3, 3, "12,34")
    path = archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", rows)
    with pytest.raises(ValueError, match=rf"{path}: .*Row #5: Expected 8 columns, got 9"):
        catalog.import_file(path, source="binance-vision")
    assert catalog.list() == []


def test_missing_column(shared_data, catalog, tmp_path):
    rows = usdm_rows(shared_data)
    path = tmp_path / "BTCUSDT-metrics-2025-10-10.zip"
    with zipfile.ZipFile(path, "w") as z:
        header = HEADER.replace("sum_open_interest,", "open_int,", 1)
        z.writestr("BTCUSDT-metrics-2025-10-10.csv", header + "".join(rows))
    with pytest.raises(ValueError, match=rf"{path}: missing column\(s\) sum_open_interest; expected create_time,"):
        catalog.import_file(path, source="binance-vision")
    assert catalog.list() == []


def test_truncated_zip(shared_data, catalog, tmp_path):
    path = archive(tmp_path, "BTCUSDT-metrics-2025-10-10.zip", usdm_rows(shared_data))
    catalog.import_file(path, source="binance-vision")
    before = catalog.read("metrics", "binance", "BTCUSDT")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{path}: truncated or corrupt zip"):
        catalog.import_file(path, source="binance-vision")
    assert catalog.read("metrics", "binance", "BTCUSDT").equals(before)  # the earlier import is intact


def test_klines_file_given_as_metrics(shared_data, catalog):
    """A file of another kind: the header names the missing metrics columns."""
    with pytest.raises(ValueError, match=r"BTCUSDT-5m-2025-10-10.zip: missing column\(s\) create_time, symbol, "
                                         r"sum_open_interest"):
        catalog.import_file(shared_data / KLINES_5M, source="binance-vision", kind="metrics")
    assert catalog.list() == []


def test_headerless_klines_rows_given_as_metrics(shared_data, catalog, tmp_path):
    with zipfile.ZipFile(shared_data / KLINES_5M) as z:
        lines = z.read(z.namelist()[0]).decode().splitlines(keepends=True)[1:]
    path = tmp_path / "BTCUSDT-metrics-2025-10-10.csv"
    path.write_text("".join(lines))
    with pytest.raises(ValueError, match=rf"{path}: row 1 has 12 columns; expected 8 \(create_time,symbol,"):
        catalog.import_file(path, source="binance-vision")
    assert catalog.list() == []
