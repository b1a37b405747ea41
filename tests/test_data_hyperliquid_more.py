"""Hyperliquid node_trades, asset_ctxs and l2Book import.

../shared/data holds no file of these archives, so the tests write them in the documented layouts
from real data: node_trades from the real node_fills_by_block sample (one line per fill pair,
which must import as the same trades as the fills file itself), l2Book snapshots around the real
BTC trade prices of that sample (synthetic sizes), asset_ctxs from real BTC and AAVE prices of
2025-10-10.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from riskengine.cli import main
from riskengine.data import Catalog
from riskengine.data.hyperliquid import kind_of

lz4 = pytest.importorskip("lz4.frame")

SAMPLE = "formats/hyperliquid-node_fills_by_block-sample-2025-10-27.json"
KLINES = "2025-10-10/binance-price-klines/BTCUSD_PERP-1m-2025-10-10.zip"
AAVE = "2025-10-10/spot-trades/coinbase_trades_2025-10-10_AAVE-USD.csv.gz"
ASSET_CTXS_HEADER = ("time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,mid_px,"
                     "impact_bid_px,impact_ask_px\n")
CRASH = dt.datetime(2025, 10, 10, 20, 0, tzinfo=dt.UTC)  # 20:00-22:59 UTC


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def write(tmp_path: Path, rel: str, lines: list[str], compress: bool = False) -> Path:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line if line.endswith("\n") else line + "\n" for line in lines).encode()
    path.write_bytes(lz4.compress(data) if compress else data)
    return path


def iso_ms(ms: int) -> str:
    """Naive UTC ISO text to the millisecond, as node_trades writes it."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def trade_rows(table: pa.Table) -> list[tuple]:
    return sorted(zip(table.column("ts").cast("int64").to_pylist(), table.column("price").to_pylist(),
                      table.column("qty").to_pylist(), table.column("side").to_pylist()))


# ------------------------------------------------------------------------------------ node_trades
def fill_pairs(shared_data) -> list[tuple[tuple[str, dict], tuple[str, dict]]]:
    """The fills of the real sample paired by trade (``tid``), in the order each pair completes."""
    pending, pairs = {}, []
    with open(shared_data / SAMPLE) as f:
        for line in f:
            for user, fill in json.loads(line)["events"]:
                other = pending.pop(fill["tid"], None)
                if other is None:
                    pending[fill["tid"]] = (user, fill)
                else:
                    pairs.append((other, (user, fill)))
    assert not pending
    return pairs


def node_trade(pair) -> dict:
    """One node_trades record for a pair of fills: the taker's side, buyer first in side_info."""
    (taker,) = [f for _, f in pair if f["crossed"]]
    buyer, seller = sorted(pair, key=lambda uf: uf[1]["side"] != "B")
    return {"coin": taker["coin"], "side": taker["side"], "time": iso_ms(taker["time"]), "px": taker["px"],
            "sz": taker["sz"], "hash": taker["hash"], "trade_dir_override": "Na",
            "side_info": [{"user": u, "start_pos": f["startPosition"], "oid": f["oid"], "twap_id": f["twapId"],
                           "cloid": f.get("cloid")} for u, f in (buyer, seller)]}


def node_trades_lines(shared_data) -> list[str]:
    return [json.dumps(node_trade(pair)) for pair in fill_pairs(shared_data)]


def test_node_trades_are_the_trades_of_the_fills(shared_data, tmp_path):
    """The strong cross-check: the same trades (time, price, size, taker side), coin by coin, as
    the fills importer keeps from the fills they were written from."""
    path = write(tmp_path, "node_trades/hourly/20251027/16", node_trades_lines(shared_data))
    trades, fills = Catalog(tmp_path / "a"), Catalog(tmp_path / "b")
    report = trades.import_file(path, source="hyperliquid")  # kind from the node_trades folder
    assert (report.kind, report.source, report.rows) == ("trades", "hyperliquid", 3_641)
    assert fills.import_file(shared_data / SAMPLE, source="hyperliquid").rows == 3_641
    coins = {r["symbol"] for r in trades.list()}
    assert len(coins) == 187 and coins == {r["symbol"] for r in fills.list()}
    for coin in coins:
        assert trade_rows(trades.read_trades("hyperliquid", coin)) == trade_rows(fills.read_trades("hyperliquid", coin))
    btc = trades.read_trades("hyperliquid", "BTC")
    assert btc.num_rows == 345 and set(btc.column("side").to_pylist()) == {1, -1}


def test_node_trades_lz4_and_reimport(shared_data, catalog, tmp_path):
    lines = node_trades_lines(shared_data)
    plain = write(tmp_path, "plain/node_trades/16", lines)
    packed = write(tmp_path, "node_trades/hourly/20251027/16.lz4", lines, compress=True)
    other = Catalog(tmp_path / "other")
    other.import_file(plain, source="hyperliquid", kind="node-trades")
    first = catalog.import_file(packed, source="hyperliquid")
    again = catalog.import_file(packed, source="hyperliquid")
    assert first.files == again.files and len(catalog.files()) == 187
    for coin in ("BTC", "ETH", "HYPE"):
        assert catalog.read_trades("hyperliquid", coin).equals(other.read_trades("hyperliquid", coin))


def test_nanosecond_times_and_trade_ids(shared_data, catalog, tmp_path):
    record = node_trade(fill_pairs(shared_data)[0])
    lines = []
    for k, time in enumerate(["2025-03-22T23:00:00.000984711", "2025-03-22T23:00:00.000984712Z",
                              "2025-03-22T23:00:01", "2025-03-22T23:00:01.5"]):
        lines.append(json.dumps(dict(record, time=time, hash="0x" + "0" * 64, px=str(0.12928 + k / 1e5))))
    lines.append(json.dumps(dict(record, time="2025-03-22T23:00:02.25", tid=42, hash="0xab", px="0.13")))
    path = write(tmp_path, "node_trades/hourly/20250322/23", lines)
    catalog.import_file(path, source="hyperliquid")
    table = catalog.read_trades("hyperliquid", record["coin"])
    base = 1742684400 * 10**9  # 2025-03-22 23:00:00 UTC
    assert table.column("ts").cast("int64").to_pylist() == [base + 984_711, base + 984_712, base + 10**9,
                                                            base + 1_500_000_000, base + 2_250_000_000]
    zero = "0x" + "0" * 64  # a hash shared by several trades: the line tells them apart
    assert table.column("trade_id").to_pylist() == [f"{zero}:1", f"{zero}:2", f"{zero}:3", f"{zero}:4", "0xab:42"]
    assert table.column("side").to_pylist() == [1 if record["side"] == "B" else -1] * 5


@pytest.mark.parametrize("change, message", [
    ({"px": "abc"}, r"line 3: 'px' must be a number \(got 'abc'\)"),
    ({"px": "0.0"}, r"line 3: expected a price > 0 \(got '0.0'\)"),
    ({"px": "-5"}, r"line 3: expected a price > 0 \(got '-5'\)"),
    ({"sz": "-1.0"}, r"line 3: expected a size >= 0 \(got '-1.0'\)"),
    ({"side": "S"}, r"line 3: 'side' must be 'B' or 'A' \(got 'S'\)"),
    ({"time": "2025-10-27 16:59:59.797.1"}, r"line 3: 'time' must be UTC ISO text"),
    ({"time": 1761584399797}, r"line 3: 'time' must be UTC ISO text .*\(got 1761584399797\)"),
    ({"px": None}, r"line 3: 'px' must be a number \(got None\)"),
])
def test_bad_node_trade_names_the_line(shared_data, catalog, tmp_path, change, message):
    lines = node_trades_lines(shared_data)[:10]
    lines[2] = json.dumps(dict(json.loads(lines[2]), **change))
    path = write(tmp_path, "node_trades/hourly/20251027/16", lines)
    with pytest.raises(ValueError, match=message) as err:
        catalog.import_file(path, source="hyperliquid")
    assert str(err.value).startswith(f"{path}: line 3:")
    assert catalog.list() == []


def test_missing_field_names_the_line(shared_data, catalog, tmp_path):
    lines = node_trades_lines(shared_data)[:10]
    record = json.loads(lines[4])
    del record["sz"]
    lines[4] = json.dumps(record)
    path = write(tmp_path, "16", lines)
    with pytest.raises(ValueError, match=rf"{path}: line 5: no 'sz' in the record"):
        catalog.import_file(path, source="hyperliquid", kind="node-trades")
    assert catalog.list() == []


def test_fills_file_given_as_node_trades(shared_data, catalog):
    with pytest.raises(ValueError, match=r"hyperliquid-node_fills_by_block-sample-2025-10-27.json: line 1: expected a "
                                         r"node_trades record .*; this is a node_fills_by_block line \(kind trades"):
        catalog.import_file(shared_data / SAMPLE, source="hyperliquid", kind="node-trades")
    assert catalog.list() == []


def test_node_trades_given_as_fills(shared_data, catalog, tmp_path):
    path = write(tmp_path, "trades.json", node_trades_lines(shared_data)[:5])
    assert kind_of(path) == "trades"
    with pytest.raises(ValueError, match=rf"{path}: line 1: expected a node_fills_by_block block .*; this is a "
                                         r"node_trades line \(kind node-trades\)"):
        catalog.import_file(path, source="hyperliquid")
    assert catalog.list() == []


def test_binance_csv_given_as_node_trades(shared_data, catalog, tmp_path):
    with zipfile.ZipFile(shared_data / KLINES) as z:
        text = z.read(z.namelist()[0]).decode()
    path = write(tmp_path, "node_trades/hourly/20251010/21", text.splitlines()[:50])
    with pytest.raises(ValueError, match=rf"{path}: line 1: not JSON \(.*\); expected a node_trades record"):
        catalog.import_file(path, source="hyperliquid")
    gz = shared_data / "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"
    with pytest.raises(ValueError, match=r"gemini_trades_2025-10-10_BTCUSD.csv.gz: line 1: not JSON"):
        catalog.import_file(gz, source="hyperliquid", kind="node-trades")
    assert catalog.list() == []


def test_truncated_lz4_names_the_line(shared_data, catalog, tmp_path):
    path = write(tmp_path, "node_trades/hourly/20251027/16.lz4", node_trades_lines(shared_data), compress=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{path}: line (\d+): truncated or corrupt file") as err:
        catalog.import_file(path, source="hyperliquid")
    line = int(err.value.args[0].split("line ")[1].split(":")[0])
    assert 100 < line < 3_641  # the lines before the break were read; none of them was written
    assert catalog.list() == []


# ------------------------------------------------------------------------------------ asset_ctxs
def minute_closes(shared_data) -> dict[str, dict[int, tuple[float, float]]]:
    """coin -> minute (epoch ms) -> (open, close): BTC from the real 1-minute BTCUSD_PERP klines,
    AAVE from the real Coinbase AAVE-USD trades, over 20:00-22:59 UTC of 2025-10-10."""
    start = int(CRASH.timestamp() * 1000)
    minutes = range(start, start + 180 * 60_000, 60_000)
    out: dict[str, dict[int, tuple[float, float]]] = {"BTC": {}, "AAVE": {}}
    with zipfile.ZipFile(shared_data / KLINES) as z:
        for line in z.read(z.namelist()[0]).decode().splitlines()[1:]:
            c = line.split(",")
            if int(c[0]) in minutes:
                out["BTC"][int(c[0])] = (float(c[1]), float(c[4]))
    with gzip.open(shared_data / AAVE, "rt") as f:
        next(f)
        for line in f:
            c = line.split(",")
            minute = int(c[2]) // 1000 // 60_000 * 60_000
            if minute in minutes:
                first, _ = out["AAVE"].get(minute, (float(c[6]), 0.0))
                out["AAVE"][minute] = (first, float(c[6]))
    assert len(out["BTC"]) == 180 and len(out["AAVE"]) > 170
    return out


def asset_ctxs_lines(shared_data, epoch: bool = False, no_mid: str = "") -> tuple[list[str], list[tuple]]:
    """Rows for every minute, BTC then AAVE then an illiquid coin with no book (mid ``no_mid``, 0
    impact prices); and the expected ticker rows (coin, ts ns, mark, index, last, funding, oi)."""
    rows, expected = [], []
    closes = minute_closes(shared_data)
    for k, minute in enumerate(sorted(closes["BTC"])):
        time = str(minute) if epoch else dt.datetime.fromtimestamp(minute / 1000, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        for coin, oi, funding in (("BTC", 31_000 - 9 * k, 0.0000125), ("AAVE", 610_000 - 700 * k, -0.00002)):
            if minute not in closes[coin]:
                continue
            oracle, mark = closes[coin][minute]
            mid = round((oracle + mark) / 2, 6)
            rows.append(f"{time},{coin},{funding},{oi:.2f},{oracle},123456789.5,0.0001,{oracle},{mark},{mid},"
                        f"{mid * 0.9999:.6f},{mid * 1.0001:.6f}")
            expected.append((coin, minute * 10**6, mark, oracle, mid, funding, float(f"{oi:.2f}")))
        rows.append(f"{time},STALE,0.0,0.0,1.5,0.0,,1.5,1.5,{no_mid},0.0,0.0")
        expected.append(("STALE", minute * 10**6, 1.5, 1.5, None, 0.0, 0.0))
    return rows, expected


def ticker_rows(catalog: Catalog, coin: str) -> list[tuple]:
    t = catalog.read("ticker", "hyperliquid", coin)
    assert t.column("predicted_funding_rate").null_count == t.num_rows
    return list(zip([coin] * t.num_rows, t.column("ts").cast("int64").to_pylist(), t.column("mark").to_pylist(),
                    t.column("index").to_pylist(), t.column("last").to_pylist(), t.column("funding_rate").to_pylist(),
                    t.column("open_interest").to_pylist()))


def test_asset_ctxs_split_per_coin(shared_data, catalog, tmp_path):
    rows, expected = asset_ctxs_lines(shared_data)
    path = write(tmp_path, "asset_ctxs/20251010.csv.lz4", [ASSET_CTXS_HEADER] + rows, compress=True)
    report = catalog.import_file(path, source="hyperliquid")  # kind from the asset_ctxs folder
    assert (report.kind, report.symbol, report.rows) == ("ticker", "3 symbols", len(rows))
    for coin in ("BTC", "AAVE", "STALE"):
        assert ticker_rows(catalog, coin) == [e for e in expected if e[0] == coin]
    # the crash is in the real prices: AAVE's mark fell by more than a third in these three hours
    aave = catalog.read("ticker", "hyperliquid", "AAVE").column("mark").to_numpy()
    assert aave.min() < 0.67 * aave[0]


def test_asset_ctxs_epoch_times_and_plain_csv(shared_data, catalog, tmp_path):
    iso, _ = asset_ctxs_lines(shared_data)
    epoch, expected = asset_ctxs_lines(shared_data, epoch=True, no_mid="0.0")  # 0: no book, as empty
    path = write(tmp_path, "20251010.csv", [ASSET_CTXS_HEADER] + epoch)
    assert kind_of(path) == "asset-ctxs"
    catalog.import_file(path, source="hyperliquid")
    other = Catalog(tmp_path / "other")
    other.import_file(write(tmp_path, "x/asset_ctxs/20251010.csv", iso), source="hyperliquid")  # no header
    for coin in ("BTC", "AAVE", "STALE"):
        assert ticker_rows(catalog, coin) == ticker_rows(other, coin) == [e for e in expected if e[0] == coin]


def test_asset_ctxs_reimport_is_idempotent(shared_data, catalog, tmp_path):
    rows, _ = asset_ctxs_lines(shared_data)
    path = write(tmp_path, "asset_ctxs/20251010.csv.lz4", [ASSET_CTXS_HEADER] + rows, compress=True)
    first = catalog.import_file(path, source="hyperliquid")
    second = catalog.import_file(path, source="hyperliquid", kind="asset-ctxs")
    assert first.files == second.files and len(catalog.files(kind="ticker")) == 3
    assert catalog.read("ticker", "hyperliquid", "BTC").num_rows == 180


@pytest.mark.parametrize("column, value, message", [
    (8, "abc", r"row 6: column 'mark_px': expected a number \(got 'abc'\)"),
    (8, "0", r"row 6: column 'mark_px': expected a finite value > 0 \(got 0.0\)"),
    (7, "-3.2", r"row 6: column 'oracle_px': expected a finite value > 0 \(got -3.2\)"),
    (7, "", r"row 6: column 'oracle_px' is empty"),
    (7, "nan", r"row 6: column 'oracle_px': expected a finite number \(got 'nan'\)"),
    (2, "inf", r"row 6: column 'funding': expected a finite number \(got 'inf'\)"),
    (3, "-10", r"row 6: column 'open_interest': expected a finite value >= 0 \(got -10.0\)"),
    (9, "-1", r"row 6: column 'mid_px': expected a finite value >= 0 \(got -1.0\)"),
    (0, "2025-10-10T20:01:00+02:00", r"row 6: column 'time': expected UTC ISO text"),
    (0, "", r"row 6: column 'time' is empty"),
])
def test_bad_asset_ctxs_row(shared_data, catalog, tmp_path, column, value, message):
    rows, _ = asset_ctxs_lines(shared_data)
    c = rows[4].split(",")
    c[column] = value
    rows[4] = ",".join(c)
    path = write(tmp_path, "asset_ctxs/20251010.csv.lz4", [ASSET_CTXS_HEADER] + rows, compress=True)
    with pytest.raises(ValueError, match=message) as err:
        catalog.import_file(path, source="hyperliquid")
    assert str(err.value).startswith(f"{path}: row 6:")
    assert catalog.list() == []


def test_asset_ctxs_missing_column_and_wrong_file(shared_data, catalog, tmp_path):
    rows, _ = asset_ctxs_lines(shared_data)
    path = write(tmp_path, "asset_ctxs/20251010.csv", [ASSET_CTXS_HEADER.replace("mark_px", "markPx")] + rows)
    with pytest.raises(ValueError, match=rf"{path}: missing column\(s\) mark_px; expected time,coin,funding"):
        catalog.import_file(path, source="hyperliquid")
    with pytest.raises(ValueError, match=r"BTCUSD_PERP-1m-2025-10-10.zip: missing column\(s\) time, coin, funding"):
        catalog.import_file(shared_data / KLINES, source="hyperliquid", kind="asset-ctxs")
    assert catalog.list() == []


def test_asset_ctxs_truncated_lz4(shared_data, catalog, tmp_path):
    rows, _ = asset_ctxs_lines(shared_data)
    path = write(tmp_path, "asset_ctxs/20251010.csv.lz4", [ASSET_CTXS_HEADER] + rows * 40, compress=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{path}: line \d+: truncated or corrupt file"):
        catalog.import_file(path, source="hyperliquid")
    assert catalog.list() == []


# ------------------------------------------------------------------------------------ l2Book
def btc_books(shared_data) -> list[dict]:
    """An l2Book snapshot at each real BTC trade of the sample: 20 levels a side, $1 apart around
    the trade price, synthetic sizes."""
    books = []
    for i, pair in enumerate(p for p in fill_pairs(shared_data) if p[0][1]["coin"] == "BTC"):
        fill = pair[0][1]
        bid0 = math.floor(float(fill["px"]))
        bids = [{"px": str(bid0 - k), "sz": f"{0.5 + 0.37 * k + (i % 5) / 10:.5f}", "n": 1 + k % 4} for k in range(20)]
        asks = [{"px": str(bid0 + 1 + k), "sz": f"{0.4 + 0.41 * k + (i % 3) / 10:.5f}", "n": 2 + k % 3}
                for k in range(20)]
        local = dt.datetime.fromtimestamp(fill["time"] / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        data = {"coin": "BTC", "time": fill["time"], "levels": [bids, asks]}
        books.append({"time": local + "412", "ver_num": 1, "raw": {"channel": "l2Book", "data": data}})
    return books


def test_l2book_depth_rows(shared_data, catalog, tmp_path):
    books = btc_books(shared_data)
    path = write(tmp_path, "market_data/20251027/16/l2Book/BTC.lz4", [json.dumps(b) for b in books], compress=True)
    report = catalog.import_file(path, source="hyperliquid")  # kind from the l2Book folder
    assert (report.kind, report.symbol, report.rows) == ("depth", "BTC", 40 * 345)
    table = catalog.read("depth", "hyperliquid", "BTC")
    ts = table.column("ts").cast("int64").to_numpy()
    pct, depth, notional = (table.column(n).to_numpy() for n in ("pct", "depth", "notional"))
    # the first snapshot, exactly
    data = books[0]["raw"]["data"]
    bids, asks = data["levels"]
    mid = (float(bids[0]["px"]) + float(asks[0]["px"])) / 2
    assert np.all(ts[:40] == data["time"] * 10**6)
    assert pct[19] == (float(bids[0]["px"]) / mid - 1) * 100 < 0 < pct[20] == (float(asks[0]["px"]) / mid - 1) * 100
    assert depth[19] == float(bids[0]["sz"]) and depth[20] == float(asks[0]["sz"])
    assert depth[0] == pytest.approx(sum(float(b["sz"]) for b in bids), rel=1e-12)
    assert depth[39] == pytest.approx(sum(float(a["sz"]) for a in asks), rel=1e-12)
    assert notional[39] == pytest.approx(sum(float(a["px"]) * float(a["sz"]) for a in asks), rel=1e-12)
    assert pct[0] == (float(bids[19]["px"]) / mid - 1) * 100 and pct[39] == (float(asks[19]["px"]) / mid - 1) * 100
    assert notional[0] == pytest.approx(sum(float(b["px"]) * float(b["sz"]) for b in bids), rel=1e-12)
    # every snapshot: pct ascends, depth grows outward on both sides
    snap_pct, snap_depth = pct.reshape(-1, 40), depth.reshape(-1, 40)
    assert np.all(np.diff(snap_pct, axis=1) > 0)
    assert np.all(np.diff(snap_depth[:, :20], axis=1) < 0) and np.all(np.diff(snap_depth[:, 20:], axis=1) > 0)
    assert np.all(np.diff(ts) >= 0)
    # the real BTC prices of the sample are inside each snapshot's best bid and ask
    trade = [float(p[0][1]["px"]) for p in fill_pairs(shared_data) if p[0][1]["coin"] == "BTC"]
    mids = [(float(b["raw"]["data"]["levels"][0][0]["px"]) + float(b["raw"]["data"]["levels"][1][0]["px"])) / 2
            for b in books]
    assert max(abs(m - t) for m, t in zip(mids, trade)) <= 1.0


def test_l2book_plain_reimport(shared_data, catalog, tmp_path):
    lines = [json.dumps(b) for b in btc_books(shared_data)]
    packed = write(tmp_path, "market_data/20251027/16/l2Book/BTC.lz4", lines, compress=True)
    plain = write(tmp_path, "book.json", lines)
    other = Catalog(tmp_path / "other")
    other.import_file(plain, source="hyperliquid", kind="l2book")
    first = catalog.import_file(packed, source="hyperliquid")
    second = catalog.import_file(packed, source="hyperliquid")
    assert first.files == second.files and len(catalog.files()) == 1
    assert catalog.read("depth", "hyperliquid", "BTC").equals(other.read("depth", "hyperliquid", "BTC"))


def broken(books: list[dict], line: int, edit) -> list[str]:
    books = json.loads(json.dumps(books))
    edit(books[line - 1]["raw"]["data"]["levels"])
    return [json.dumps(b) for b in books]


def swap(side: list, i: int, j: int) -> None:
    side[i]["px"], side[j]["px"] = side[j]["px"], side[i]["px"]


@pytest.mark.parametrize("edit, message", [
    (lambda lv: lv[0][0].update(px=str(float(lv[1][0]["px"]) + 2)), r"crossed book: best bid \d+ >= best ask \d+"),
    (lambda lv: lv[0][0].update(px=lv[1][0]["px"]), r"crossed book: best bid (\d+) >= best ask \1"),
    (lambda lv: swap(lv[0], 3, 4), r"bids must be strictly descending from the best \(level 4: \d+, level 5: \d+\)"),
    (lambda lv: swap(lv[1], 7, 8), r"asks must be strictly ascending from the best \(level 8: \d+, level 9: \d+\)"),
    (lambda lv: lv[1][2].update(px=lv[1][1]["px"]), r"asks must be strictly ascending from the best \(level 2"),
    (lambda lv: lv[0][5].update(sz="0.0"), r"bid level 6: expected a price and size > 0 \(got px '\d+', sz '0.0'\)"),
    (lambda lv: lv[1][0].update(px="abc"), r"a ask level is not \{px, sz, n\} with numbers"),
    (lambda lv: lv[1].clear(), r"the ask side of the book is empty"),
])
def test_bad_book_names_the_line(shared_data, catalog, tmp_path, edit, message):
    lines = broken(btc_books(shared_data)[:30], 17, edit)
    path = write(tmp_path, "market_data/20251027/16/l2Book/BTC.lz4", lines, compress=True)
    with pytest.raises(ValueError, match=message) as err:
        catalog.import_file(path, source="hyperliquid")
    assert str(err.value).startswith(f"{path}: line 17:")
    assert catalog.list() == []


def test_wrong_files_given_as_l2book(shared_data, catalog, tmp_path):
    with pytest.raises(ValueError, match=r"sample-2025-10-27.json: line 1: expected an l2Book snapshot .*; this is a "
                                         r"node_fills_by_block line \(kind trades or events\)"):
        catalog.import_file(shared_data / SAMPLE, source="hyperliquid", kind="l2book")
    nt = write(tmp_path, "node_trades/hourly/20251027/16", node_trades_lines(shared_data)[:3])
    with pytest.raises(ValueError, match=rf"{nt}: line 1: expected an l2Book snapshot .*node_trades line"):
        catalog.import_file(nt, source="hyperliquid", kind="l2book")
    book = write(tmp_path, "market_data/20251027/16/l2Book/BTC", [json.dumps(b) for b in btc_books(shared_data)[:3]])
    with pytest.raises(ValueError, match=rf"{book}: line 1: expected a node_trades record .*l2Book line \(kind l2book"):
        catalog.import_file(book, source="hyperliquid", kind="node-trades")
    assert catalog.list() == []


def test_truncated_l2book(shared_data, catalog, tmp_path):
    path = write(tmp_path, "market_data/20251027/16/l2Book/BTC.lz4", [json.dumps(b) for b in btc_books(shared_data)],
                 compress=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match=rf"{path}: line \d+: truncated or corrupt file"):
        catalog.import_file(path, source="hyperliquid")
    assert catalog.list() == []


# ------------------------------------------------------------------------------------ kinds, CLI
@pytest.mark.parametrize("path, kind", [
    ("hl/node_trades/hourly/20250322/23.lz4", "node-trades"),
    ("hl/node_fills_by_block/hourly/20251010/21.lz4", "trades"),
    ("node_fills/hourly/20250601/3", "trades"),
    ("asset_ctxs/20251010.csv.lz4", "asset-ctxs"),
    ("20251010.csv.lz4", "asset-ctxs"),
    ("gemini_trades_2025-10-10_BTCUSD.csv.gz", "trades"),  # not a Hyperliquid layout: read as fills, refused
    ("market_data/20251010/21/l2Book/BTC.lz4", "l2book"),
    ("downloads/hyperliquid_node_trades_sample.json", "node-trades"),
    ("/tmp/test_node_trades0/fills.json", "trades"),  # a folder merely containing the word is not the archive's
])
def test_kind_from_the_path(path, kind):
    assert kind_of(Path(path)) == kind


def test_cli_import(shared_data, tmp_path, capsys):
    path = write(tmp_path, "book.json", [json.dumps(b) for b in btc_books(shared_data)])
    target = tmp_path / "cli-catalog"
    assert main(["data", "import", str(path), "--source", "hyperliquid", "--kind", "l2book",
                 "--catalog", str(target)]) == 0
    assert "13,800 depth rows -> hyperliquid/BTC" in capsys.readouterr().out
    assert Catalog(target).read("depth", "hyperliquid", "BTC").num_rows == 13_800


def test_hourly_archives_of_one_day_do_not_replace_each_other(shared_data, catalog, tmp_path):
    # market_data/{date}/{hour}/l2Book/BTC.lz4: every hour's file is called BTC.lz4
    # (split between two exchange times: a real file has one snapshot per block, so no instant's
    # rows are in two files; these synthetic books have one per trade, several per millisecond)
    books = btc_books(shared_data)
    times = [b["raw"]["data"]["time"] for b in books]
    half = next(k for k in range(len(books) // 2, len(books)) if times[k] != times[k - 1])
    hour16 = write(tmp_path, "market_data/20251027/16/l2Book/BTC.lz4", [json.dumps(b) for b in books[:half]], True)
    hour17 = write(tmp_path, "market_data/20251027/17/l2Book/BTC.lz4", [json.dumps(b) for b in books[half:]], True)
    first = catalog.import_file(hour16, source="hyperliquid")
    second = catalog.import_file(hour17, source="hyperliquid")
    assert (first.added, second.added) == (40 * half, 40 * (len(books) - half))
    assert len(catalog.files()) == 1 and catalog.list()[0]["imported"] == ["20251027/16/BTC.lz4", "20251027/17/BTC.lz4"]
    assert catalog.read("depth", "hyperliquid", "BTC").num_rows == 40 * len(books)
    assert catalog.import_file(hour17, source="hyperliquid").added == 0  # still idempotent
    assert catalog.read("depth", "hyperliquid", "BTC").num_rows == 40 * len(books)
