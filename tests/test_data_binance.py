"""Binance Vision klines and bookDepth import, on the real files in ../shared/data."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from riskengine.data import Catalog

KLINES = "2025-10-10/binance-price-klines/BTCUSD_PERP-1m-2025-10-10.zip"
DEPTH = "2025-10-10/binance-usdm-bookdepth/BTCUSDT-bookDepth-2025-10-10.csv"


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def kline_rows(shared_data) -> list[str]:
    with zipfile.ZipFile(shared_data / KLINES) as z:
        return z.read(z.namelist()[0]).decode().splitlines(keepends=True)


def zipped(tmp_path, name, text):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name.replace(".zip", ".csv"), text)
    return path


def test_klines_become_a_stream_at_the_bar_end(shared_data, catalog):
    report = catalog.import_file(shared_data / KLINES, source="binance-vision")
    assert (report.kind, report.source, report.symbol, report.rows) == ("klines", "binance", "BTCUSD_PERP", 1440)
    table = catalog.read("klines", "binance", "BTCUSD_PERP")
    rows = kline_rows(shared_data)
    first = rows[1].split(",")
    assert table.column("ts").cast("int64").to_numpy()[0] == (int(first[6]) + 1) * 10**6  # close_time + 1 ms
    assert table.column("price").to_numpy()[0] == float(first[4])
    assert np.all(np.diff(table.column("ts").cast("int64").to_numpy()) == 60 * 10**9)


def test_klines_without_header_and_in_microseconds(shared_data, catalog, tmp_path):
    rows = kline_rows(shared_data)[1:]
    micro = []
    for r in rows:
        c = r.split(",")
        c[0], c[6] = str(int(c[0]) * 1000), str(int(c[6]) * 1000 + 999)
        micro.append(",".join(c))
    path = zipped(tmp_path, "BTCUSD_PERP-1m-2025-10-10.zip", "".join(micro))
    catalog.import_file(path, source="binance-vision", kind="index")
    ts = catalog.read("index", "binance", "BTCUSD_PERP").column("ts").cast("int64").to_numpy()
    assert ts[0] == (int(rows[0].split(",")[6]) + 1) * 10**6


def test_kline_bad_close_names_the_row(shared_data, catalog, tmp_path):
    rows = kline_rows(shared_data)
    c = rows[10].split(",")
    c[4] = "0"
    rows[10] = ",".join(c)
    path = zipped(tmp_path, "BTCUSD_PERP-1m-2025-10-10.zip", "".join(rows))
    with pytest.raises(ValueError, match=r"row 11: column 'close': expected a finite value > 0 \(got 0.0\)"):
        catalog.import_file(path, source="binance-vision")
    assert catalog.list() == []


def test_corrupt_zip(shared_data, catalog, tmp_path):
    data = (shared_data / KLINES).read_bytes()
    bad = tmp_path / "BTCUSD_PERP-1m-2025-10-10.zip"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"truncated or corrupt zip"):
        catalog.import_file(bad, source="binance-vision")


def test_missing_kline_column(shared_data, catalog, tmp_path):
    rows = kline_rows(shared_data)
    rows[0] = rows[0].replace("close,", "shut,", 1)
    path = zipped(tmp_path, "BTCUSD_PERP-1m-2025-10-10.zip", "".join(rows))
    with pytest.raises(ValueError, match=r"missing column\(s\) close; expected open_time,open"):
        catalog.import_file(path, source="binance-vision")


def test_unknown_kind_asks_for_it(shared_data, catalog, tmp_path):
    odd = tmp_path / "prices.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"cannot tell what this binance-vision file holds; give the kind"):
        catalog.import_file(odd, source="binance-vision")


def test_book_depth(shared_data, catalog):
    report = catalog.import_file(shared_data / DEPTH, source="binance-vision")
    assert (report.kind, report.symbol, report.rows) == ("depth", "BTCUSDT", 28_790)
    table = catalog.read("depth", "binance", "BTCUSDT")
    assert sorted(set(table.column("pct").to_pylist())) == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]
    assert table.column("notional").to_numpy()[0] == pytest.approx(979_983_314.2056)


def test_book_depth_must_not_shrink(shared_data, catalog, tmp_path):
    lines = (shared_data / DEPTH).read_text().splitlines(keepends=True)[:21]
    c = lines[3].split(",")  # -3% band of the first snapshot
    c[3] = "1000"
    lines[3] = ",".join(c)
    bad = tmp_path / "BTCUSDT-bookDepth-2025-10-10.csv"
    bad.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"rows 4-5: cumulative depth is not monotone in the band \(-3%: 1000, -2%: 4.6"):
        catalog.import_file(bad, source="binance-vision")


def test_tape_with_index_stream(shared_data, catalog):
    catalog.import_file(shared_data / KLINES, source="binance-vision")
    catalog.import_file(shared_data / "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz")
    tape = catalog.tape("gemini", "BTCUSD", "2025-10-10T20:00:00Z", "2025-10-10T22:00:00Z",
                        stream=("klines", "binance", "BTCUSD_PERP"))
    assert len(tape) > 1000 and not np.isnan(tape.stream).any()
    # the perp's mark/index stream tracks the Gemini spot tape through the crash hour: closely
    # most of the time, apart by 5% at worst in the crash minutes
    gap = np.abs(tape.stream / tape.price - 1)
    assert np.median(gap) < 0.005 and gap.max() < 0.10


TARDIS_PERP = "2025-10-10/binance-coinm-perp-trades/binance-delivery_trades_2025-10-10_AAVEUSD_PERP.csv.gz"


def archive_from_tardis(shared_data, tmp_path, kind: str, header: bool):
    """The real AAVEUSD_PERP trades of 2025-10-10 written in Binance Vision's layout."""
    import gzip

    rows = []
    with gzip.open(shared_data / TARDIS_PERP, "rt") as f:
        next(f)
        for line in f:
            _, _, ts, _, i, side, price, amount = line.rstrip("\n").split(",")
            maker_bought = "true" if side == "sell" else "false"
            if kind == "aggTrades":
                rows.append(f"{i},{price},{amount},{i},{i},{int(ts) // 1000},{maker_bought}\n")
            else:
                rows.append(f"{i},{price},{amount},0,{int(ts) // 1000},{maker_bought}\n")
    head = {"aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n",
            "trades": "id,price,qty,quote_qty,time,is_buyer_maker\n"}[kind]
    folder = tmp_path / kind
    folder.mkdir()
    return zipped(folder, f"AAVEUSD_PERP-{kind}-2025-10-10.zip", (head if header else "") + "".join(rows))


@pytest.mark.parametrize("kind, header", [("aggTrades", True), ("trades", False)])
def test_binance_trades_match_the_tardis_tape(shared_data, catalog, tmp_path, kind, header):
    path = archive_from_tardis(shared_data, tmp_path, kind, header)
    report = catalog.import_file(path, source="binance-vision")
    assert (report.kind, report.source, report.symbol, report.rows) == ("trades", "binance", "AAVEUSD_PERP", 153_481)
    catalog.import_file(shared_data / TARDIS_PERP)
    ours = catalog.read_trades("binance", "AAVEUSD_PERP")
    theirs = catalog.read_trades("binance-delivery", "AAVEUSD_PERP")
    # same trades: COIN-M contracts -> base units, taker side from is_buyer_maker, times to the ms
    np.testing.assert_allclose(ours.column("qty").to_numpy(), theirs.column("qty").to_numpy())
    np.testing.assert_array_equal(ours.column("side").to_numpy(), theirs.column("side").to_numpy())
    np.testing.assert_array_equal(ours.column("ts").cast("int64").to_numpy() // 10**6,
                                  theirs.column("ts").cast("int64").to_numpy() // 10**6)


def test_binance_trades_negative_size(shared_data, catalog, tmp_path):
    rows = ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n",
            "1,10.0,2,1,1,1760054400000,true\n", "2,10.0,-3,2,2,1760054400001,false\n"]
    path = zipped(tmp_path, "AAVEUSD_PERP-aggTrades-2025-10-10.zip", "".join(rows))
    with pytest.raises(ValueError, match=r"row 3: column 'quantity': expected a size >= 0 \(got -3.0\)"):
        catalog.import_file(path, source="binance-vision")
