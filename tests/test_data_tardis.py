"""Tardis liquidations, derivative_ticker and book_snapshot imports into the Parquet catalog.

../shared/data has no Tardis files of these types, so each test writes one in the documented
format (https://docs.tardis.dev/downloadable-csv-files/data-types) from real 2025-10-10 data:
liquidations from a real COIN-M perp tape, tickers from the real BTCUSD_PERP 1m klines, book
snapshots from the real BTCUSDT bookDepth bands.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from riskengine.cli import main
from riskengine.data import Catalog
from riskengine.data.tardis import kind_of

DAY = "2025-10-10"
AAVE = f"{DAY}/binance-coinm-perp-trades/binance-delivery_trades_{DAY}_AAVEUSD_PERP.csv.gz"
ATOM = f"{DAY}/binance-coinm-perp-trades/binance-delivery_trades_{DAY}_ATOMUSD_PERP.csv.gz"
KLINES = f"{DAY}/binance-price-klines/BTCUSD_PERP-1m-{DAY}.zip"
BOOK_DEPTH = f"{DAY}/binance-usdm-bookdepth/BTCUSDT-bookDepth-{DAY}.csv"
TICKER_HEADER = ("exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
                 "predicted_funding_rate,open_interest,last_price,index_price,mark_price")


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def write(path: Path, lines: list[str]) -> Path:
    """``lines`` (each ending in a newline) as a plain or gzip file, by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(lines).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def assert_unchanged(catalog, before):
    assert catalog.list() == before
    assert not (catalog.root / ".tmp").exists() or not list((catalog.root / ".tmp").iterdir())


def nulls(column) -> np.ndarray:
    return np.asarray(column.is_null())


# ----------------------------------------------------------------------------- liquidations
def tape(shared_data, rel=AAVE, n=3000) -> list[str]:
    with gzip.open(shared_data / rel, "rt") as f:
        return [next(f) for _ in range(n + 1)]


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv"])
def test_liquidations_from_a_real_coinm_tape(shared_data, catalog, tmp_path, suffix):
    rows = tape(shared_data)
    cells = rows[100].split(",")
    cells[5] = "unknown"
    rows[100] = ",".join(cells)
    path = write(tmp_path / f"binance-delivery_liquidations_{DAY}_AAVEUSD_PERP{suffix}", rows)
    report = catalog.import_file(path, source="tardis")  # kind from the name
    assert (report.kind, report.source, report.symbol, report.rows) == ("events", "binance-delivery",
                                                                        "AAVEUSD_PERP", 3000)
    raw = pacsv.read_csv(io.BytesIO("".join(rows).encode()))
    out = catalog.read("events", "binance-delivery", "AAVEUSD_PERP")
    price = raw.column("price").to_numpy()
    size = 10.0 * raw.column("amount").to_numpy() / price  # 10 USD contracts -> base units
    np.testing.assert_array_equal(out.column("ts").cast("int64").to_numpy(), raw.column("timestamp").to_numpy() * 1000)
    np.testing.assert_array_equal(out.column("price").to_numpy(), price)
    np.testing.assert_array_equal(out.column("size").to_numpy(), size)
    np.testing.assert_array_equal(out.column("notional").to_numpy(), price * size)
    assert set(out.column("kind").to_pylist()) == {"liquidation"}
    for name in ("method", "user", "mark"):
        assert out.column(name).null_count == 3000
    assert out.column("trade_id").to_pylist() == [str(v) for v in raw.column("id").to_pylist()]
    side = out.column("side").to_pylist()
    raw_side = raw.column("side").to_pylist()
    assert side[99] is None and raw_side[99] == "unknown"
    assert [s for i, s in enumerate(side) if i != 99] == [1 if v == "buy" else -1 for i, v in enumerate(raw_side)
                                                          if i != 99]
    assert 0 < side.count(1) < 2999  # both sides occur in the real tape


def test_liquidations_kind_from_the_datasets_layout_or_given(shared_data, catalog, tmp_path):
    rows = tape(shared_data, n=500)
    laid_out = write(tmp_path / "binance-delivery/liquidations/2025/10/10/AAVEUSD_PERP.csv.gz", rows)
    assert catalog.import_file(laid_out, source="tardis").kind == "events"
    plain = write(tmp_path / "aave.csv", rows)
    assert catalog.import_file(plain, source="tardis", kind="liquidations").kind == "events"
    # nothing in the name: the same rows are a trades file by default (the headers are identical)
    assert catalog.import_file(plain, source="tardis").kind == "trades"
    kinds = sorted((r["kind"], r["imported"]) for r in catalog.list())
    assert kinds == [("events", ["AAVEUSD_PERP.csv.gz", "aave.csv"]), ("trades", ["aave.csv"])]


@pytest.mark.parametrize("path, kind", [
    ("binance-delivery_trades_2025-10-10_AAVEUSD_PERP.csv.gz", "trades"),
    ("binance-delivery_liquidations_2025-10-10_AAVEUSD_PERP.csv.gz", "liquidations"),
    ("deribit_derivative_ticker_2025-10-10_BTC-PERPETUAL.csv.gz", "derivative_ticker"),
    ("binance-futures_book_snapshot_25_2025-10-10_BTCUSDT.csv.gz", "book_snapshot_25"),
    ("binance-futures_book_snapshot_5_2025-10-10_BTCUSDT.csv", "book_snapshot_5"),
    ("data/binance-futures/book_snapshot_25/2025/10/10/BTCUSDT.csv.gz", "book_snapshot_25"),
    ("trades/binance-delivery/liquidations/2025/10/10/AAVEUSD_PERP.csv.gz", "liquidations"),
    ("mine/derivative_ticker/btc.csv", "derivative_ticker"),
    ("mine/btc.csv.gz", "trades"),
])
def test_kind_of(path, kind):
    assert kind_of(Path(path)) == kind


def test_grouped_liquidations_file_splits_by_symbol(shared_data, catalog, tmp_path):
    aave, atom = tape(shared_data, AAVE, 400), tape(shared_data, ATOM, 300)
    body = sorted(aave[1:] + atom[1:], key=lambda line: int(line.split(",")[2]))  # one time-ordered file
    path = write(tmp_path / f"binance-delivery_liquidations_{DAY}_PERPETUALS.csv.gz", [aave[0], *body])
    report = catalog.import_file(path, source="tardis")
    assert (report.rows, report.symbol) == (700, "2 symbols")
    for rel, symbol, n in ((AAVE, "AAVEUSD_PERP", 400), (ATOM, "ATOMUSD_PERP", 300)):
        raw = pacsv.read_csv(io.BytesIO("".join(tape(shared_data, rel, n)).encode()))
        out = catalog.read("events", "binance-delivery", symbol)
        assert out.num_rows == n
        np.testing.assert_array_equal(out.column("size").to_numpy(),
                                      10.0 * raw.column("amount").to_numpy() / raw.column("price").to_numpy())


# ----------------------------------------------------------------------------- derivative_ticker
def ticker_rows(shared_data, exchange="binance-delivery", symbol="BTCUSD_PERP", n=300) -> tuple[list[str], dict]:
    """A derivative_ticker file from the real 1m klines: close as mark, open as index, with
    empty cells; returns the lines and the values written (NaN = empty)."""
    with zipfile.ZipFile(shared_data / KLINES) as z:
        k = pacsv.read_csv(io.BytesIO(z.read(z.namelist()[0]))).slice(0, n)
    close, open_ = k.column("close").to_numpy(), k.column("open").to_numpy()
    ts = (k.column("close_time").to_numpy() + 1) * 1000  # ms -> µs
    i = np.arange(n)
    v = {"ts": ts,
         "mark": np.where(i % 7 == 0, np.nan, close),  # row 0 has no mark: OI converts at the index
         "index": np.where(i % 11 == 5, np.nan, open_),
         "last": np.where(i % 3 == 0, np.nan, np.round(close, 1)),
         "funding": np.where(i < 10, np.nan, 1e-4 - i * 1e-7),  # negative late in the window
         "predicted": np.where(i % 2 == 0, np.nan, -2e-5 + i * 1e-8),
         "oi": np.where(i % 13 == 4, np.nan, 1_200_000.0 + 37 * i)}

    def cell(x):
        return "" if np.isnan(x) else repr(float(x))

    lines = [TICKER_HEADER + "\n"]
    for j in range(n):
        funding_ts = (ts[j] // 28_800_000_000 + 1) * 28_800_000_000
        lines.append(",".join([exchange, symbol, str(ts[j]), str(ts[j] + 1234), str(funding_ts),
                               *(cell(v[c][j]) for c in ("funding", "predicted", "oi", "last", "index", "mark"))])
                     + "\n")
    return lines, v


@pytest.mark.parametrize("exchange, symbol, face, suffix", [
    ("binance-delivery", "BTCUSD_PERP", 100.0, ".csv.gz"),
    ("binance-delivery", "BTCUSD_PERP", 100.0, ".csv"),
    ("binance-futures", "BTCUSDT", None, ".csv.gz"),
])
def test_derivative_ticker_from_real_klines(shared_data, catalog, tmp_path, exchange, symbol, face, suffix):
    lines, v = ticker_rows(shared_data, exchange, symbol)
    path = write(tmp_path / f"{exchange}_derivative_ticker_{DAY}_{symbol}{suffix}", lines)
    report = catalog.import_file(path, source="tardis")
    assert (report.kind, report.source, report.symbol, report.rows) == ("ticker", exchange, symbol, 300)
    out = catalog.read("ticker", exchange, symbol)
    np.testing.assert_array_equal(out.column("ts").cast("int64").to_numpy(), v["ts"] * 1000)
    for name, key in (("mark", "mark"), ("index", "index"), ("last", "last"), ("funding_rate", "funding"),
                      ("predicted_funding_rate", "predicted")):
        np.testing.assert_array_equal(nulls(out.column(name)), np.isnan(v[key]), err_msg=name)
        np.testing.assert_array_equal(out.column(name).to_numpy(zero_copy_only=False), v[key], err_msg=name)
    oi = out.column("open_interest").to_numpy(zero_copy_only=False)
    if face is None:
        np.testing.assert_array_equal(oi, v["oi"])
    else:
        # COIN-M: contracts x 100 USD / mark; a row without a mark uses the last one before it
        # (row 0 has none before it: its index price)
        mark = v["mark"].copy()
        mark[0] = v["index"][0]
        for j in range(1, len(mark)):
            if np.isnan(mark[j]):
                mark[j] = mark[j - 1]
        np.testing.assert_array_equal(oi, v["oi"] * face / mark)
        assert 900 < np.nanmin(oi) and np.nanmax(oi) < 1100  # ~1.2M contracts of 100 USD at ~121k: ~1,000 BTC
    assert np.isnan(oi[4]) and out.column("open_interest").null_count == int(np.isnan(v["oi"]).sum())


def test_ticker_mark_carries_across_blocks(shared_data, tmp_path):
    from riskengine.data import tardis

    lines, _ = ticker_rows(shared_data)
    path = write(tmp_path / "t.csv", lines)
    small = [b for *_, b, _ in tardis.read_derivative_ticker(path, block_bytes=1 << 10)]
    assert len(small) > 5  # several blocks, each starting without the previous one's mark
    whole = [b for *_, b, _ in tardis.read_derivative_ticker(path)]
    assert pa.Table.from_batches(small).equals(pa.Table.from_batches(whole))


# ----------------------------------------------------------------------------- book snapshots
def book_levels(shared_data, n=120) -> list[tuple[int, list[tuple[float, float]], list[tuple[float, float]]]]:
    """Five levels a side per real bookDepth snapshot: each ±1 % band's added depth at its
    average price (added notional / added depth); snapshots with an empty band are left out."""
    table = pacsv.read_csv(shared_data / BOOK_DEPTH, convert_options=pacsv.ConvertOptions(
        column_types={"timestamp": pa.string()}))
    stamps = [s.strip() for s in table.column("timestamp").to_pylist()]
    pct = table.column("percentage").to_numpy()
    depth, notional = table.column("depth").to_numpy(), table.column("notional").to_numpy()
    out = []
    start = 0
    while len(out) < n:
        stop = start
        while stop < len(stamps) and stamps[stop] == stamps[start]:
            stop += 1
        snap = {pct[i]: (depth[i], notional[i]) for i in range(start, stop)}
        start = stop
        sides = []
        for sign in (-1, 1):
            bands = [snap.get(sign * k) for k in range(1, 6)]
            if None in bands:
                break
            d = np.diff([0.0] + [b[0] for b in bands])
            q = np.diff([0.0] + [b[1] for b in bands])
            if (d <= 0).any():
                break
            sides.append([(float(qq / dd), float(round(dd, 3))) for dd, qq in zip(d, q, strict=True)])
        if len(sides) == 2:
            us = int(np.datetime64(stamps[stop - 1].replace(" ", "T"), "us").astype(np.int64))
            out.append((us, sides[0], sides[1]))
    return out


def book_lines(snapshots, exchange, symbol, levels, amount=lambda price, size: size) -> list[str]:
    head = ["exchange", "symbol", "timestamp", "local_timestamp"]
    head += [f"{s}[{i}].{w}" for i in range(levels) for s in ("asks", "bids") for w in ("price", "amount")]
    lines = [",".join(head) + "\n"]
    for us, bids, asks in snapshots:
        cells = [exchange, symbol, str(us), str(us + 777)]
        for i in range(levels):
            for side in (asks, bids):
                cells += [repr(side[i][0]), repr(amount(*side[i]))] if i < len(side) else ["", ""]
        lines.append(",".join(cells) + "\n")
    return lines


def expected_depth(snapshots, face=None, amount=lambda price, size: size):
    """The DEPTH rows, computed independently of the importer."""
    ts, pct, depth, notional = [], [], [], []
    for us, bids, asks in snapshots:
        mid = (bids[0][0] + asks[0][0]) / 2
        rows = []
        for side in (bids, asks):
            d = q = 0.0
            for price, size in side:
                a = amount(price, size)
                base = a * face / price if face else a
                d += base
                q += price * base
                rows.append(((price / mid - 1) * 100, d, q))
        rows = rows[:len(bids)][::-1] + rows[len(bids):]  # ascending pct: widest bid first
        for r in rows:
            ts.append(us * 1000)
            pct.append(r[0])
            depth.append(r[1])
            notional.append(r[2])
    return np.array(ts), np.array(pct), np.array(depth), np.array(notional)


def assert_depth(table, expected):
    ts, pct, depth, notional = expected
    np.testing.assert_array_equal(table.column("ts").cast("int64").to_numpy(), ts)
    np.testing.assert_allclose(table.column("pct").to_numpy(), pct, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(table.column("depth").to_numpy(), depth, rtol=1e-12)
    np.testing.assert_allclose(table.column("notional").to_numpy(), notional, rtol=1e-12)


@pytest.fixture(scope="module")
def snapshots(shared_data):
    return book_levels(shared_data)


@pytest.mark.parametrize("levels, suffix", [(25, ".csv.gz"), (25, ".csv"), (5, ".csv.gz")])
def test_book_snapshot_from_real_book_depth(snapshots, catalog, tmp_path, levels, suffix):
    path = write(tmp_path / f"binance-futures_book_snapshot_{levels}_{DAY}_BTCUSDT{suffix}",
                 book_lines(snapshots, "binance-futures", "BTCUSDT", levels))
    report = catalog.import_file(path, source="tardis")
    assert (report.kind, report.source, report.symbol) == ("depth", "binance-futures", "BTCUSDT")
    assert report.rows == 10 * len(snapshots)  # the 20 empty levels of the 25-level file are skipped
    out = catalog.read("depth", "binance-futures", "BTCUSDT")
    assert_depth(out, expected_depth(snapshots))
    first = out.slice(0, 10).to_pydict()
    assert first["pct"][:5] == sorted(first["pct"][:5]) and max(first["pct"][:5]) < 0 < min(first["pct"][5:])
    assert first["depth"][4] < first["depth"][3]  # cumulative from the best bid (the last bid row) outward
    # the rebuilt book holds what the real bands said: 5 % of depth on each side
    _, bids, asks = snapshots[0]
    assert first["depth"][0] == pytest.approx(sum(s for _, s in bids), rel=1e-12)
    assert first["depth"][9] == pytest.approx(sum(s for _, s in asks), rel=1e-12)


def test_book_snapshot_5_levels_read_from_the_header_and_coinm_sizes(snapshots, catalog, tmp_path):
    from riskengine.data import tardis

    # the same book as a COIN-M BTCUSD_PERP book: amounts in 100 USD contracts
    def contracts(price, size):
        return float(round(price * size / 100))

    lines = book_lines(snapshots[:40], "binance-delivery", "BTCUSD_PERP", 5, contracts)
    path = write(tmp_path / "btc-book.csv", lines)
    report = catalog.import_file(path, source="tardis", kind="book_snapshot_5")
    assert report.rows == 400
    expected = expected_depth(snapshots[:40], face=100.0, amount=contracts)
    assert_depth(catalog.read("depth", "binance-delivery", "BTCUSD_PERP"), expected)
    # levels inferred from the header when not given
    batches = [b for *_, b, _ in tardis.read_book_snapshot(path)]
    assert_depth(pa.Table.from_batches(batches), expected)


def test_book_reimport_is_idempotent(snapshots, catalog, tmp_path):
    path = write(tmp_path / f"binance-futures_book_snapshot_25_{DAY}_BTCUSDT.csv.gz",
                 book_lines(snapshots, "binance-futures", "BTCUSDT", 25))
    first = catalog.import_file(path, source="tardis")
    listed = catalog.list()
    second = catalog.import_file(path, source="tardis", kind="book_snapshot_25")
    assert first.files == second.files and catalog.list() == listed and len(catalog.files()) == 1


# ----------------------------------------------------------------------------- bad input
def edit(lines: list[str], row: int, column: str, value: str) -> list[str]:
    """A copy of ``lines`` with one cell (row 1 = header) replaced."""
    out = list(lines)
    j = out[0].rstrip("\n").split(",").index(column)
    cells = out[row - 1].rstrip("\n").split(",")
    cells[j] = value
    out[row - 1] = ",".join(cells) + "\n"
    return out


def swap(lines, row, a, b):
    cells = dict(zip(lines[0].rstrip("\n").split(","), lines[row - 1].rstrip("\n").split(","), strict=True))
    return edit(edit(lines, row, a, cells[b]), row, b, cells[a])


@pytest.fixture()
def book(snapshots):
    return book_lines(snapshots, "binance-futures", "BTCUSDT", 25)


@pytest.mark.parametrize("change, message", [
    (lambda b: swap(b, 17, "bids[1].price", "bids[2].price"),
     r"row 17: column 'bids\[2\].price': bids must be strictly descending"),
    (lambda b: edit(b, 9, "asks[3].price", b[8].split(",")[4 + 4 * 2]),
     r"row 9: column 'asks\[3\].price': asks must be strictly ascending"),
    (lambda b: edit(b, 30, "bids[0].price", "200000.0"), r"row 30: crossed book: best bid 200000.0 >= best ask"),
    (lambda b: edit(b, 41, "asks[0].price", "-3"), r"row 41: column 'asks\[0\].price': expected a price > 0"),
    (lambda b: edit(b, 41, "bids[4].price", "abc"), r"row 41: column 'bids\[4\].price': expected a number"),
    (lambda b: edit(b, 52, "bids[4].amount", "0"), r"row 52: column 'bids\[4\].amount': expected a size > 0"),
    (lambda b: edit(b, 60, "asks[2].amount", ""), r"row 60: column 'asks\[2\].amount' is empty but"),
    (lambda b: edit(b, 60, "asks[2].amount", "nan"),
     r"row 60: column 'asks\[2\].amount': expected a finite number \(got 'nan'\)"),
    (lambda b: edit(edit(b, 61, "asks[3].price", ""), 61, "asks[3].amount", ""),
     r"row 61: column 'asks\[4\].price': a level after an empty one"),
    (lambda b: edit(b, 70, "timestamp", ""), r"row 70: column 'timestamp' is empty"),
])
def test_bad_book_names_file_and_row(book, catalog, tmp_path, change, message):
    path = write(tmp_path / f"binance-futures_book_snapshot_25_{DAY}_BTCUSDT.csv", book)
    catalog.import_file(path, source="tardis")
    before = catalog.list()
    write(path, change(book))
    with pytest.raises(ValueError, match=message) as err:
        catalog.import_file(path, source="tardis")
    assert str(err.value).startswith(f"{path}: ")
    assert_unchanged(catalog, before)


def test_one_sided_book(book, catalog, tmp_path):
    lines = book
    for i in range(5):
        lines = edit(edit(lines, 12, f"bids[{i}].price", ""), 12, f"bids[{i}].amount", "")
    path = write(tmp_path / "b.csv", lines)
    with pytest.raises(ValueError, match=rf"^{path}: row 12: no bids: a snapshot needs both sides"):
        catalog.import_file(path, source="tardis", kind="book_snapshot_25")
    assert catalog.list() == []


@pytest.mark.parametrize("column, value, message", [
    ("mark_price", "abc", r"row 31: column 'mark_price': expected a number \(got 'abc'\)"),
    ("mark_price", "0", r"row 31: column 'mark_price': expected a price > 0 \(got 0.0\)"),
    ("index_price", "-5", r"row 31: column 'index_price': expected a price > 0 \(got -5.0\)"),
    ("last_price", "inf", r"row 31: column 'last_price': expected a finite number \(got 'inf'\)"),
    ("mark_price", "nan", r"row 31: column 'mark_price': expected a finite number \(got 'nan'\)"),
    ("open_interest", "-1", r"row 31: column 'open_interest': expected a value >= 0 \(got -1.0\)"),
    ("funding_rate", "-inf", r"row 31: column 'funding_rate': expected a finite number \(got '-inf'\)"),
])
def test_bad_ticker_names_file_and_row(shared_data, catalog, tmp_path, column, value, message):
    lines, _ = ticker_rows(shared_data)
    path = write(tmp_path / f"binance-delivery_derivative_ticker_{DAY}_BTCUSD_PERP.csv.gz", edit(lines, 31, column,
                                                                                                 value))
    with pytest.raises(ValueError, match=message) as err:
        catalog.import_file(path, source="tardis")
    assert str(err.value).startswith(f"{path}: ")
    assert catalog.list() == []


@pytest.mark.parametrize("value, message", [
    ("abc", r"row 41: column 'price': expected a number \(got 'abc'\)"),
    ("0", r"row 41: expected a price > 0 \(got 0.0\)"),
])
def test_bad_liquidation_price(shared_data, catalog, tmp_path, value, message):
    path = write(tmp_path / f"binance-delivery_liquidations_{DAY}_AAVEUSD_PERP.csv",
                 edit(tape(shared_data, n=200), 41, "price", value))
    with pytest.raises(ValueError, match=f"^{path}: {message}"):
        catalog.import_file(path, source="tardis")
    assert catalog.list() == []


def test_truncated_gzip_leaves_the_catalog_unchanged(shared_data, catalog, tmp_path, snapshots):
    path = write(tmp_path / f"binance-delivery_liquidations_{DAY}_AAVEUSD_PERP.csv.gz", tape(shared_data, n=20_000))
    catalog.import_file(path, source="tardis")
    before = catalog.list()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"^{path}: truncated or corrupt gzip"):
        catalog.import_file(path, source="tardis")
    assert_unchanged(catalog, before)


@pytest.mark.parametrize("kind, make, message", [
    ("liquidations", lambda sd, snaps: [r.rsplit(",", 1)[0] + "\n" for r in tape(sd, n=50)],  # no amount
     (r"missing column\(s\) amount; a Tardis trades file has exchange,symbol,timestamp,local_timestamp,id,side,"
      r"price,amount$")),
    ("trades", lambda sd, snaps: ticker_rows(sd)[0],
     r"missing column\(s\) id, side, price, amount; .*; the header is that of a Tardis derivative_ticker file$"),
    ("derivative_ticker", lambda sd, snaps: tape(sd, n=50),
     (r"missing column\(s\) funding_rate, predicted_funding_rate, open_interest, last_price, index_price, "
      r"mark_price; a Tardis derivative_ticker file has .*; the header is that of a Tardis trades or liquidations "
      r"file$")),
    ("book_snapshot_25", lambda sd, snaps: (sd / BOOK_DEPTH).read_text().splitlines(keepends=True)[:50],
     (r"missing column\(s\) exchange, symbol, asks\[0\].price, .* \(102 in all\); a Tardis "
      r"book_snapshot_25 file has exchange,symbol,timestamp,local_timestamp,asks\[0\].price,.*,bids\[24\].amount; "
      r"the header is that of a Binance Vision file")),
    ("book_snapshot_25", lambda sd, snaps: book_lines(snaps[:5], "binance-futures", "BTCUSDT", 5),
     r"missing column\(s\) asks\[5\].price, asks\[5\].amount, .* \(80 in all\); a Tardis book_snapshot_25 file has"),
    ("trades", lambda sd, snaps: [line.split(",", 1)[1] for line in
                                  (sd / BOOK_DEPTH).read_text().splitlines(keepends=True)[1:50]],
     r"missing column\(s\) exchange, .*; row 1 is not a header"),
])
def test_wrong_kind_or_venue_is_one_line(shared_data, snapshots, catalog, tmp_path, kind, make, message):
    path = write(tmp_path / "file.csv", make(shared_data, snapshots))
    with pytest.raises(ValueError) as err:
        catalog.import_file(path, source="tardis", kind=kind)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    assert re.search(message, text), text
    assert catalog.list() == []


# ----------------------------------------------------------------------------- CLI
def test_cli_imports_each_kind(shared_data, snapshots, tmp_path, capsys):
    root = tmp_path / "cat"
    liq = write(tmp_path / f"binance-delivery_liquidations_{DAY}_AAVEUSD_PERP.csv.gz", tape(shared_data, n=500))
    book = write(tmp_path / f"binance-futures_book_snapshot_25_{DAY}_BTCUSDT.csv.gz",
                 book_lines(snapshots[:10], "binance-futures", "BTCUSDT", 25))
    assert main(["data", "import", str(liq), str(book), "--source", "tardis", "--catalog", str(root)]) == 0
    out = capsys.readouterr().out
    assert "500 events rows -> binance-delivery/AAVEUSD_PERP" in out and "100 depth rows -> binance-futures/BTCUSDT" in out
    ticker = write(tmp_path / "btc.csv", ticker_rows(shared_data)[0])
    assert main(["data", "import", str(ticker), "--source", "tardis", "--kind", "derivative_ticker",
                 "--catalog", str(root)]) == 0
    assert "300 ticker rows -> binance-delivery/BTCUSD_PERP" in capsys.readouterr().out
    assert sorted({r["kind"] for r in Catalog(root).list()}) == ["depth", "events", "ticker"]
    # the same ticker file without --kind is read as trades: one line naming what is missing
    assert main(["data", "import", str(ticker), "--source", "tardis", "--catalog", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"riskengine: error: {ticker}: missing column(s) id, side, price, amount")


def test_quoted_header_written_by_a_csv_library(shared_data, catalog, tmp_path):
    # pandas/Arrow quote column names when they re-save a file; the columns are the same
    table = pacsv.read_csv(shared_data / AAVE)
    path = tmp_path / "binance-delivery_trades_2025-10-10_AAVEUSD_PERP.csv"
    pacsv.write_csv(table, path)
    assert path.read_text().startswith('"exchange","symbol"')
    report = catalog.import_file(path, source="tardis")
    assert report.rows == table.num_rows
    original = Catalog(tmp_path / "orig")
    original.import_file(shared_data / AAVE, source="tardis")
    assert catalog.read_trades("binance-delivery", "AAVEUSD_PERP").equals(
        original.read_trades("binance-delivery", "AAVEUSD_PERP"))
