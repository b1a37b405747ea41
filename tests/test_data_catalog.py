"""Tardis trades import into the Parquet catalog, on the real 2025-10-10 files in ../shared/data."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pyarrow.csv as pacsv
import pytest

from riskengine.data import Catalog

PERP = "2025-10-10/binance-coinm-perp-trades/binance-delivery_trades_2025-10-10_AAVEUSD_PERP.csv.gz"
SPOT = "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def lines(shared_data, rel, n=None):
    with gzip.open(shared_data / rel, "rt") as f:
        out = [next(f) for _ in range(n)] if n else f.readlines()
    return out


def write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(rows))
    return path


def test_import_perp_converts_contracts_to_base_units(shared_data, catalog):
    report = catalog.import_file(shared_data / PERP)
    raw = pacsv.read_csv(shared_data / PERP)
    assert report.rows == raw.num_rows == 153_481
    assert (report.source, report.symbol) == ("binance-delivery", "AAVEUSD_PERP")
    table = catalog.read_trades("binance-delivery", "AAVEUSD_PERP")
    assert table.num_rows == raw.num_rows
    price = raw.column("price").to_numpy()
    # COIN-M: amount counts 10 USD contracts (data/README.md) -> base units = 10 x amount / price
    np.testing.assert_allclose(table.column("qty").to_numpy(), 10.0 * raw.column("amount").to_numpy() / price)
    assert table.column("ts").cast("int64").to_numpy()[0] == raw.column("timestamp").to_numpy()[0] * 1000
    sides = raw.column("side").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(table.column("side").to_numpy(), np.where(sides == "buy", 1, -1))


def test_import_spot_keeps_sizes_and_lists(shared_data, catalog):
    catalog.import_file(shared_data / SPOT)
    (row,) = catalog.list()
    assert (row["source"], row["kind"], row["symbol"], row["date"]) == ("gemini", "trades", "BTCUSD", "2025-10-10")
    raw = pacsv.read_csv(shared_data / SPOT)
    assert row["rows"] == raw.num_rows and row["bytes"] > 0
    assert str(row["first"]).startswith("2025-10-10 00:00:06")
    np.testing.assert_allclose(catalog.read_trades("gemini", "BTCUSD").column("qty").to_numpy(),
                               raw.column("amount").to_numpy())


def test_reimport_is_idempotent(shared_data, catalog):
    first = catalog.import_file(shared_data / SPOT)
    second = catalog.import_file(shared_data / SPOT)
    assert first.files == second.files and len(catalog.files()) == 1
    assert catalog.list()[0]["rows"] == first.rows
    assert not list((catalog.root / ".tmp").iterdir())


def test_tape_window(shared_data, catalog):
    catalog.import_file(shared_data / SPOT)
    tape = catalog.tape("gemini", "BTCUSD", "2025-10-10T21:00:00Z", "2025-10-10T22:00:00Z")
    assert len(tape) > 100
    assert tape.ts[0] >= 1_760_130_000 * 10**9 and tape.ts[-1] < 1_760_133_600 * 10**9
    assert tape.price.min() < 110_000  # the crash is in this hour


def test_unknown_source_symbol_lists_what_there_is(shared_data, catalog):
    catalog.import_file(shared_data / SPOT)
    with pytest.raises(ValueError, match=r"no trades for source 'gemini' symbol 'ETHUSD'; have: gemini/BTCUSD"):
        catalog.read_trades("gemini", "ETHUSD")


# ----------------------------------------------------------------------------- bad input
def assert_unchanged(catalog, before):
    assert catalog.list() == before
    assert not (catalog.root / ".tmp").exists() or not list((catalog.root / ".tmp").iterdir())


@pytest.fixture()
def head(shared_data):
    return lines(shared_data, SPOT, 200)


def test_truncated_gzip(shared_data, catalog, tmp_path):
    catalog.import_file(shared_data / SPOT)
    before = catalog.list()
    data = (shared_data / SPOT).read_bytes()
    bad = tmp_path / "gemini_trades_2025-10-10_BTCUSD.csv.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated or corrupt gzip"):
        catalog.import_file(bad)
    assert_unchanged(catalog, before)


def test_missing_column(head, catalog, tmp_path):
    rows = [",".join(c for i, c in enumerate(r.rstrip("\n").split(",")) if i != 6) + "\n" for r in head]
    with pytest.raises(ValueError, match=r"missing column\(s\) price; a Tardis trades file has exchange,symbol"):
        catalog.import_file(write(tmp_path, "t.csv", rows))
    assert catalog.list() == []


@pytest.mark.parametrize("value, message", [
    ("abc", r"row 51: column 'price': expected a number \(got 'abc'\)"),
    ("0", r"row 51: expected a price > 0 \(got 0.0\)"),
    ("-5", r"row 51: expected a price > 0 \(got -5.0\)"),
])
def test_bad_price_names_the_row(head, catalog, tmp_path, value, message):
    rows = list(head)
    cells = rows[50].split(",")
    cells[6] = value
    rows[50] = ",".join(cells)
    with pytest.raises(ValueError, match=message):
        catalog.import_file(write(tmp_path, "t.csv", rows))
    assert catalog.list() == []


def test_negative_size_names_the_row(head, catalog, tmp_path):
    rows = list(head)
    cells = rows[120].rstrip("\n").split(",")
    cells[7] = "-0.5"
    rows[120] = ",".join(cells) + "\n"
    with pytest.raises(ValueError, match=r"row 121: expected a size >= 0 \(got -0.5\)"):
        catalog.import_file(write(tmp_path, "t.csv", rows))


def test_unsorted_rows_error_then_explicit_sort(head, catalog, tmp_path):
    rows = list(head)
    rows[30], rows[31] = rows[31], rows[30]
    path = write(tmp_path, "t.csv", rows)
    ts = [int(r.split(",")[2]) for r in rows[1:]]
    assert ts[29] > ts[30], "the swap must put times out of order"
    with pytest.raises(ValueError, match=r"row 32: time goes backwards .* --sort"):
        catalog.import_file(path)
    assert catalog.list() == []
    report = catalog.import_file(path, sort=True)
    assert report.sorted_rows == 1 and report.rows == len(rows) - 1
    out = catalog.read_trades("gemini", "BTCUSD").column("ts").cast("int64").to_numpy()
    assert np.all(np.diff(out) >= 0)


def test_duplicated_rows_error_then_explicit_dedupe(head, catalog, tmp_path):
    rows = list(head)
    rows.insert(80, rows[79])
    path = write(tmp_path, "t.csv", rows)
    with pytest.raises(ValueError, match=r"row 81: repeats the row before it; .* --dedupe"):
        catalog.import_file(path)
    report = catalog.import_file(path, dedupe=True)
    assert report.duplicates_dropped == 1 and report.rows == len(rows) - 2
    assert "dropped 1 repeated rows" in report.describe()


def test_failed_reimport_keeps_the_previous_version(head, catalog, tmp_path):
    good = write(tmp_path, "gemini_trades_2025-10-10_BTCUSD.csv", head)
    catalog.import_file(good)
    before = catalog.list()
    rows = list(head)
    rows[150] = rows[150].replace(",sell,", ",sideways,").replace(",buy,", ",sideways,")
    good.write_text("".join(rows))
    with pytest.raises(ValueError, match=r"row 151: expected side buy, sell or unknown \(got 'sideways'\)"):
        catalog.import_file(good)
    assert_unchanged(catalog, before)


def test_cli_import_and_list(shared_data, tmp_path):
    root = tmp_path / "cat"
    done = subprocess.run([sys.executable, "-m", "riskengine.cli", "data", "import", str(shared_data / SPOT),
                           "--catalog", str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "24,706 trades rows -> gemini/BTCUSD" in done.stdout and "[1/1]" in done.stderr
    listed = subprocess.run([sys.executable, "-m", "riskengine.cli", "data", "list", "--catalog", str(root)],
                            capture_output=True, text=True)
    assert listed.returncode == 0 and "BTCUSD" in listed.stdout and "24706" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "riskengine.cli", "data", "import", str(tmp_path / "nope.csv"),
                          "--catalog", str(root)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == f"riskengine: error: {tmp_path / 'nope.csv'}: no such file"
    assert "Traceback" not in bad.stderr
