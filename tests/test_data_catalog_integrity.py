"""The catalog never holds a trade twice, imports are all or nothing, and its errors are one line
(issue 11: A.1 catalog half, A.2, A.6, A.10, A.11, A.12).

The doubled tape is the real Gemini BTCUSD file of 2025-10-10 under two names; the id-less cases
are small hand-written files in the importers' own formats (Tardis trades without an ``id``, as
exchanges without trade ids give them; Binance Vision klines, the real ones of 2025-10-09/10).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskengine import backtest, config
from riskengine.data import Catalog
from tests._cli import one_error_line, run_cli

GEMINI_BTC = "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"
KLINES = "2025-10-10/binance-price-klines/BTCUSD_PERP-1m-2025-10-{day}.zip"
WINDOW = ("2025-10-10T20:00:00Z", "2025-10-10T22:00:00Z")
#: trades of the Gemini BTCUSD file in the 20:00-22:00 window (counted with pandas below)
WINDOW_TRADES = 5_372
HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
T0 = 1_760_126_400_000_000  # 2025-10-10 20:00:00 UTC, microseconds (Tardis times)


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


@pytest.fixture()
def two_names(shared_data, tmp_path):
    """The real Gemini file, copied under two names."""
    a = tmp_path / "in" / "gemini_trades_2025-10-10_BTCUSD.csv.gz"
    b = tmp_path / "in" / "btc-copy.csv.gz"
    a.parent.mkdir()
    shutil.copy(shared_data / GEMINI_BTC, a)
    shutil.copy(shared_data / GEMINI_BTC, b)
    return a, b


def tardis_rows(rows: list[tuple[int, str, float, float]], ids: bool = False) -> str:
    """A Tardis trades file: (seconds after 20:00, side, price, amount) per row; ``id`` empty
    unless ``ids`` (then the row's position)."""
    out = [HEADER]
    for k, (sec, side, price, amount) in enumerate(rows):
        ts = T0 + sec * 1_000_000
        out.append(f"bitfinex,BTCUSD,{ts},{ts + 50},{k + 1 if ids else ''},{side},{price},{amount}\n")
    return "".join(out)


def write(folder, name: str, text: str):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def held(catalog: Catalog, symbol: str = "BTCUSD", source: str = "bitfinex") -> list[tuple]:
    """The rows the catalog holds, as (seconds after 20:00, side, price, qty), in order."""
    table = catalog.read_trades(source, symbol)
    ts = (table.column("ts").cast("int64").to_numpy() // 1000 - T0) // 1_000_000
    return list(zip(ts.tolist(), table.column("side").to_pylist(), table.column("price").to_pylist(),
                    table.column("qty").to_pylist()))


def snapshot(catalog: Catalog) -> dict:
    """Every file of the catalog and its bytes (the .tmp folder aside)."""
    return {p.relative_to(catalog.root).as_posix(): p.read_bytes() for p in sorted(catalog.root.rglob("*"))
            if p.is_file() and ".tmp" not in p.relative_to(catalog.root).parts and p.name != ".lock"}


# --------------------------------------------------------------------------- A.2 doubled tape
def test_window_count_of_the_real_file(shared_data):
    raw = pd.read_csv(shared_data / GEMINI_BTC, usecols=["timestamp"])
    lo, hi = (pd.Timestamp(t).value // 1000 for t in WINDOW)
    assert ((raw.timestamp >= lo) & (raw.timestamp < hi)).sum() == WINDOW_TRADES


def test_same_trades_under_two_names_are_held_once(two_names, tmp_path):
    a, b = two_names
    root = tmp_path / "cat"
    first = run_cli("data", "import", str(a), "--catalog", str(root))
    assert first.returncode == 0, first.stderr
    second = run_cli("data", "import", str(b), "--catalog", str(root))
    assert second.returncode == 0, second.stderr
    assert "24,706 trades rows -> gemini/BTCUSD" in second.stdout
    assert "0 new (24,706 already in the catalog)" in second.stdout
    listed = run_cli("data", "list", "--catalog", str(root))
    rows = [line for line in listed.stdout.splitlines() if "BTCUSD" in line]
    assert len(rows) == 1 and " 24706 " in rows[0], listed.stdout
    catalog = Catalog(root)
    assert len(catalog.tape("gemini", "BTCUSD", *WINDOW)) == WINDOW_TRADES
    # a backtest over the catalog reads each trade once
    cfg = write(tmp_path, "c.toml", textwrap.dedent(f"""
        [scenario]
        name = "s"
        tape = {{ catalog = "cat", source = "gemini", symbol = "BTCUSD" }}
        window = {{ start = {WINDOW[0]}, end = {WINDOW[1]} }}
        [population]
        accounts = 100
        [[venues]]
        preset = "hyperliquid"
        """))
    assert len(backtest.prepare(config.load(cfg), 0).scenario.tape) == WINDOW_TRADES


def test_both_names_in_one_command_are_held_once(two_names, catalog):
    reports = catalog.import_files(two_names)
    assert [r.added for r in reports] == [24_706, 0]
    assert sum(r["rows"] for r in catalog.list()) == 24_706
    assert catalog.list()[0]["imported"] == [p.name for p in two_names]


def test_two_files_with_ids_are_merged_by_trade_id(shared_data, catalog, tmp_path):
    with gzip.open(shared_data / GEMINI_BTC, "rt") as f:
        lines = f.readlines()
    header, body = lines[0], lines[1:]
    early = write(tmp_path, "early.csv", header + "".join(body[:15_000]))
    late = write(tmp_path, "late.csv", header + "".join(body[10_000:]))  # 5,000 trades in both
    catalog.import_file(early)
    report = catalog.import_file(late)
    assert (report.rows, report.added) == (len(body) - 10_000, len(body) - 15_000)
    table = catalog.read_trades("gemini", "BTCUSD")
    assert table.num_rows == len(body) == 24_706
    assert table.column("trade_id").to_pylist() == [line.split(",")[4] for line in body]


def test_a_trade_id_held_with_other_values_is_refused_unless_replace(shared_data, catalog, tmp_path):
    with gzip.open(shared_data / GEMINI_BTC, "rt") as f:
        lines = [next(f) for _ in range(101)]
    catalog.import_file(write(tmp_path, "first.csv", "".join(lines)))
    before = snapshot(catalog)
    cells = lines[50].split(",")
    cells[6] = "99999.5"  # the same id, another price
    changed = list(lines)
    changed[50] = ",".join(cells)
    second = write(tmp_path, "second.csv", "".join(changed))
    with pytest.raises(ValueError) as err:
        catalog.import_file(second)
    message = str(err.value)
    assert message.startswith(f"{second}: partition gemini/trades/BTCUSD/2025-10-10 holds trade id "
                              f"'{cells[4]}' with other values (from first.csv)")
    assert "--replace" in message and "\n" not in message
    assert snapshot(catalog) == before
    catalog.import_file(second, replace=True)
    assert catalog.read_trades("gemini", "BTCUSD").column("price").to_pylist()[49] == 99999.5
    assert catalog.list()[0]["imported"] == ["second.csv"]


# Tardis trades without ids: x twice at t=1 (a genuine repeat, not next to each other), y at t=1
X, Y, Z = (1, "buy", 100.0, 1.0), (1, "sell", 100.0, 2.0), (2, "buy", 101.0, 1.0)
BASE = [X, Y, X, Z]


def test_idless_same_rows_under_another_name_add_nothing(catalog, tmp_path):
    catalog.import_file(write(tmp_path, "a.csv", tardis_rows(BASE)))
    report = catalog.import_file(write(tmp_path, "b.csv", tardis_rows(BASE)))
    assert (report.rows, report.added) == (4, 0)
    assert sorted(held(catalog)) == sorted([(s, 1 if d == "buy" else -1, p, q) for s, d, p, q in BASE])


def test_idless_sub_multiset_adds_nothing(catalog, tmp_path):
    catalog.import_file(write(tmp_path, "a.csv", tardis_rows(BASE)))
    report = catalog.import_file(write(tmp_path, "b.csv", tardis_rows([X, Y, Z])))  # one x fewer
    assert report.added == 0 and len(held(catalog)) == 4


def test_idless_extension_adds_only_the_surplus_copies(catalog, tmp_path):
    catalog.import_file(write(tmp_path, "a.csv", tardis_rows(BASE)))
    v, w = (1, "sell", 100.0, 3.0), (3, "sell", 99.0, 0.5)
    report = catalog.import_file(write(tmp_path, "b.csv", tardis_rows([X, Y, X, v, X, Z, w])))
    assert (report.rows, report.added) == (7, 3)  # v and a third x at t=1, and w
    rows = held(catalog)
    assert len(rows) == 7 and rows.count((1, 1, 100.0, 1.0)) == 3 and rows[-1] == (3, -1, 99.0, 0.5)


def test_idless_rows_at_other_times_are_merged(catalog, tmp_path):
    catalog.import_file(write(tmp_path, "a.csv", tardis_rows(BASE)))
    report = catalog.import_file(write(tmp_path, "b.csv", tardis_rows([(5, "buy", 98.0, 1.0), (6, "buy", 97.0, 1.0)])))
    assert report.added == 2 and [r[0] for r in held(catalog)] == [1, 1, 1, 2, 5, 6]


def test_idless_different_files_are_refused_unless_replace(catalog, tmp_path):
    catalog.import_file(write(tmp_path, "a.csv", tardis_rows(BASE)))
    before = snapshot(catalog)
    other = write(tmp_path, "b.csv", tardis_rows([X, Y, X, (2, "buy", 101.5, 1.0)]))  # t=2 differs
    proc = run_cli("data", "import", str(other), "--catalog", str(catalog.root))
    line = one_error_line(proc)
    assert line == (f"riskengine: error: {other}: partition bitfinex/trades/BTCUSD/2025-10-10 holds other rows at "
                    f"2025-10-10T20:00:02 (from a.csv) and neither file's rows there contain the other's (rows "
                    f"without a trade id cannot be merged); import with --replace to replace the partition's rows "
                    f"with this file's")
    assert snapshot(catalog) == before
    proc = run_cli("data", "import", str(other), "--replace", "--catalog", str(catalog.root))
    assert proc.returncode == 0, proc.stderr
    assert held(catalog)[-1] == (2, 1, 101.5, 1.0) and len(held(catalog)) == 4
    assert catalog.list()[0]["imported"] == ["b.csv"]


def test_klines_of_two_days_share_a_partition(shared_data, catalog):
    # the 2025-10-09 file's last bar closes at 2025-10-10 00:00, in the 10-10 partition
    catalog.import_file(shared_data / KLINES.format(day="09"), source="binance-vision")
    catalog.import_file(shared_data / KLINES.format(day="10"), source="binance-vision")
    again = catalog.import_file(shared_data / KLINES.format(day="10"), source="binance-vision")
    assert again.added == 0
    day = {r["date"]: r["rows"] for r in catalog.list()}
    assert day == {"2025-10-09": 1439, "2025-10-10": 1440, "2025-10-11": 1}
    ts = catalog.read("klines", "binance", "BTCUSD_PERP").column("ts").cast("int64").to_numpy()
    assert len(ts) == 2880 and np.all(np.diff(ts) == 60 * 10**9)


def old_catalog(catalog: Catalog, tables: dict[str, pa.Table], partition: str) -> None:
    """A partition as riskengine wrote it before this change: one Parquet file per imported file."""
    folder = catalog.root / partition
    folder.mkdir(parents=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")


def test_an_old_doubled_partition_is_read_once_by_trade_id(two_names, catalog, tmp_path):
    a, b = two_names
    scratch = Catalog(tmp_path / "scratch")
    scratch.import_file(a)
    table = scratch.read_trades("gemini", "BTCUSD")
    old_catalog(catalog, {"gemini_trades_2025-10-10_BTCUSD": table, "btc-copy": table},
                "source=gemini/kind=trades/symbol=BTCUSD/date=2025-10-10")
    assert len(catalog.tape("gemini", "BTCUSD", *WINDOW)) == WINDOW_TRADES
    assert catalog.read_trades("gemini", "BTCUSD").equals(table)
    listed = run_cli("data", "list", "--catalog", str(catalog.root))
    assert listed.returncode == 0 and listed.stdout.count(" 24706 ") == 2
    assert listed.stderr.startswith("note: 1 partition(s) hold several files (written by an older riskengine")
    # importing into it leaves one merged partition
    assert catalog.import_file(b).added == 0
    assert len(catalog.files()) == 1 and catalog.read_trades("gemini", "BTCUSD").equals(table)


def test_an_old_idless_partition_that_cannot_be_merged_is_refused(catalog, tmp_path):
    tables = {}
    for name, rows in (("a", BASE), ("b", [(2, "buy", 101.5, 1.0)])):  # at t=2: z in a, another row in b
        scratch = Catalog(tmp_path / f"scratch-{name}")
        scratch.import_file(write(tmp_path, f"{name}.csv", tardis_rows(rows)))
        tables[name] = scratch.read_trades("bitfinex", "BTCUSD")
    old_catalog(catalog, tables, "source=bitfinex/kind=trades/symbol=BTCUSD/date=2025-10-10")
    with pytest.raises(ValueError, match=r"^catalog .*: partition bitfinex/trades/BTCUSD/2025-10-10 was written by "
                                         r"an older riskengine as 2 files \(a.parquet, b.parquet\) that hold other "
                                         r"rows at 2025-10-10T20:00:02 .*--replace"):
        catalog.read_trades("bitfinex", "BTCUSD")


# --------------------------------------------------------------------------- A.6 all or nothing
def test_a_failing_second_file_leaves_no_partition(two_names, tmp_path):
    a, _ = two_names
    bad = write(tmp_path, "bad.csv", tardis_rows([X]).replace(",100.0,", ",abc,"))
    root = tmp_path / "cat"
    proc = run_cli("data", "import", str(a), str(bad), "--catalog", str(root))
    assert "column 'price': expected a number (got 'abc')" in one_error_line(proc)
    assert Catalog(root).list() == [] and not list(root.rglob("*.parquet"))


CRASH = """
import os, sys
from riskengine.data import Catalog
real, moved = os.replace, []
def crash(src, dst):
    if WHEN:
        if len(moved) == int(sys.argv[2]):
            os._exit(9)  # the process dies here, as with kill -9 or a power cut
        moved.append(dst)
    real(src, dst)
os.replace = crash
Catalog(sys.argv[1]).import_files(sys.argv[3:])
"""
GEMINI_ETH = GEMINI_BTC.replace("BTCUSD", "ETHUSD")


@pytest.mark.parametrize("after", [0, 1])
def test_a_crash_while_committing_leaves_all_or_nothing(shared_data, tmp_path, after):
    # two files, two partitions: the process dies before the first or after the first of the
    # renames that put them in place; the next use of the catalog finishes the commit
    root = tmp_path / "cat"
    script = CRASH.replace("WHEN", '"date=" in str(dst)')
    proc = subprocess.run([sys.executable, "-c", script, str(root), str(after), str(shared_data / GEMINI_BTC),
                           str(shared_data / GEMINI_ETH)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    on_disk = {p.parent.parent.name for p in root.glob("source=*/kind=*/symbol=*/date=*/*.parquet")}
    assert len(on_disk) == after  # what the crash left in place
    listed = {(r["symbol"], r["rows"]) for r in Catalog(root).list()}
    assert listed == {("BTCUSD", 24_706), ("ETHUSD", 22_320)}
    assert not list((root / ".tmp").iterdir())


def test_a_crash_before_the_commit_leaves_nothing(shared_data, tmp_path):
    root = tmp_path / "cat"
    script = CRASH.replace("WHEN", 'str(dst).endswith("commit.json")')
    proc = subprocess.run([sys.executable, "-c", script, str(root), "0", str(shared_data / GEMINI_BTC),
                           str(shared_data / GEMINI_ETH)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert list((root / ".tmp").iterdir())  # the staged import, never committed
    assert Catalog(root).list() == []
    Catalog(root).import_file(shared_data / KLINES.format(day="09"), source="binance-vision")
    assert not list((root / ".tmp").iterdir())  # the next import cleans it up
    assert {r["source"] for r in Catalog(root).list()} == {"binance"}


# --------------------------------------------------------------------------- A.10 missing catalog
def test_listing_a_missing_catalog_is_an_error(tmp_path):
    missing = tmp_path / "nonexistent"
    line = one_error_line(run_cli("data", "list", "--catalog", str(missing)), progress_first=False)
    assert line == f"riskengine: error: catalog {missing}: no such folder"
    (tmp_path / "empty").mkdir()
    proc = run_cli("data", "list", "--catalog", str(tmp_path / "empty"))
    assert proc.returncode == 0 and proc.stdout.strip() == f"catalog {tmp_path / 'empty'} is empty"
    write(tmp_path, "afile", "x")
    line = one_error_line(run_cli("data", "list", "--catalog", str(tmp_path / "afile")), progress_first=False)
    assert line == f"riskengine: error: catalog {tmp_path / 'afile'}: not a folder"


# --------------------------------------------------------------------------- A.11 time arguments
@pytest.mark.parametrize("start, end", [
    (dt.datetime(2025, 10, 10, 20), dt.datetime(2025, 10, 10, 22)),  # naive: UTC
    (dt.datetime(2025, 10, 10, 22, tzinfo=dt.timezone(dt.timedelta(hours=2))),
     dt.datetime(2025, 10, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    (pd.Timestamp("2025-10-10 20:00"), pd.Timestamp("2025-10-10 22:00", tz="UTC")),
    (pd.Timestamp("2025-10-10 16:00", tz="America/New_York"), pd.Timestamp("2025-10-10 22:00")),
    (np.datetime64("2025-10-10T20:00"), np.datetime64("2025-10-10T22:00:00.000000000")),
])
def test_tape_takes_datetimes(shared_data, catalog, start, end):
    catalog.import_file(shared_data / GEMINI_BTC)
    expected = catalog.tape("gemini", "BTCUSD", *WINDOW)
    tape = catalog.tape("gemini", "BTCUSD", start, end)
    assert len(tape) == len(expected) == WINDOW_TRADES
    np.testing.assert_array_equal(tape.ts, expected.ts)


def test_tape_refuses_a_time_it_cannot_read(shared_data, catalog):
    catalog.import_file(shared_data / GEMINI_BTC)
    with pytest.raises(ValueError, match=r"^start: expected an ISO time text, datetime, pandas.Timestamp or "
                                         r"numpy.datetime64 \(got 3.5\)$"):
        catalog.tape("gemini", "BTCUSD", 3.5)


# --------------------------------------------------------------------------- A.12 errors name the config
@pytest.mark.parametrize("many", [False, True])
def test_a_missing_partition_names_the_config_and_key(shared_data, tmp_path, many):
    Catalog(tmp_path / "cat").import_file(shared_data / GEMINI_BTC)
    good = '{ catalog = "cat", source = "gemini", symbol = "BTCUSD" }'
    bad = '{ catalog = "cat", source = "gemini", symbol = "ETHUSD" }'
    if many:
        scenarios = "".join(f'[[scenarios]]\nname = "s{k}"\ntape = {t}\n' for k, t in enumerate([good, good, bad]))
        key = "scenarios[2].tape"
    else:
        scenarios = f'[scenario]\nname = "s"\ntape = {bad}\n'
        key = "scenario.tape"
    cfg = write(tmp_path, "c.toml", scenarios + '[population]\naccounts = 100\n[[venues]]\npreset = "hyperliquid"\n')
    line = one_error_line(run_cli("run", str(cfg), "--no-output"))
    assert line == (f"riskengine: error: {cfg}: {key}: catalog {tmp_path / 'cat'}: no trades for source 'gemini' "
                    f"symbol 'ETHUSD'; have: gemini/BTCUSD")


# --------------------------------------------------------------------------- A.1 unwritable catalog
def test_import_into_proc_is_refused_before_reading(shared_data, tmp_path):
    proc = run_cli("data", "import", str(shared_data / GEMINI_BTC), "--catalog", "/proc/x")
    line = one_error_line(proc, progress_first=False)
    assert line.startswith("riskengine: error: catalog /proc/x: cannot create files in /proc: ")
    proc = run_cli("data", "fetch", "binance-cm", "klines", "BTCUSD_PERP", "2025-10-10", "--catalog", "/proc/x",
                   "--base-url", "http://127.0.0.1:9")
    assert one_error_line(proc, progress_first=False).startswith("riskengine: error: catalog /proc/x: cannot create files in /proc: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only mode bit; /proc/x covers "
                                              "an unwritable path for root")
def test_import_into_a_read_only_folder_is_refused(shared_data, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        proc = run_cli("data", "import", str(shared_data / GEMINI_BTC), "--catalog", str(folder / "cat"))
        line = one_error_line(proc, progress_first=False)
        assert line.startswith(f"riskengine: error: catalog {folder / 'cat'}: cannot create files in ")
    finally:
        folder.chmod(0o755)


def test_zip_name_is_what_fetch_compares(shared_data, catalog, tmp_path):
    # fetch skips a day the catalog holds by the archive's file name
    name = "BTCUSD_PERP-1m-2025-10-10.zip"
    with zipfile.ZipFile(shared_data / KLINES.format(day="10")) as z:
        assert z.namelist() == ["BTCUSD_PERP-1m-2025-10-10.csv"]
    catalog.import_file(shared_data / KLINES.format(day="10"), source="binance-vision")
    assert catalog.holds_file("binance", "BTCUSD_PERP", name)
    assert not catalog.holds_file("binance", "BTCUSD_PERP", "BTCUSD_PERP-1m-2025-10-09.zip")


def test_hyperliquid_fills_without_tid_have_no_trade_id(shared_data, catalog, tmp_path):
    # fills without a tid were all stored with the id 'None': one trade id for different trades
    sample = shared_data / "formats/hyperliquid-node_fills_by_block-sample-2025-10-27.json"
    block = json.loads(sample.read_text().splitlines()[0])
    user, fill = block["events"][0]
    fill = {k: v for k, v in fill.items() if k != "tid"}
    block["events"] = [[user, dict(fill, px=str(float(fill["px"]) * (1 + k / 1000)))] for k in range(3)]
    path = write(tmp_path, "node_fills_by_block/hourly/20251027/16", json.dumps(block) + "\n")
    report = catalog.import_file(path, source="hyperliquid")
    table = catalog.read_trades("hyperliquid", block["events"][0][1]["coin"])
    assert report.added == report.rows == table.num_rows == 3
    assert table.column("trade_id").to_pylist() == [None] * 3
    assert catalog.import_file(path, source="hyperliquid").added == 0


def test_aggtrades_and_trades_are_not_mixed_in_one_partition(catalog, tmp_path):
    # both are stored as binance trades of one symbol and day; together they would count twice
    agg = write(tmp_path, "BTCUSDT-aggTrades-2025-10-10.csv",
                "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
                "7,100.0,3,11,12,1760126400000,true\n")
    raw = write(tmp_path, "BTCUSDT-trades-2025-10-10.csv", "id,price,qty,quote_qty,time,is_buyer_maker\n"
                "11,100.0,1,100,1760126400000,true\n12,100.0,2,200,1760126400000,true\n")
    catalog.import_file(agg, source="binance-vision")
    before = snapshot(catalog)
    with pytest.raises(ValueError) as err:
        catalog.import_file(raw, source="binance-vision")
    assert str(err.value) == (f"{raw}: partition binance/trades/BTCUSDT/2025-10-10 holds binance-vision agg-trades "
                              f"rows (from {agg.name}) and this file binance-vision trades rows: the same trades in "
                              f"two forms would count twice; import with --replace to replace the partition's rows "
                              f"with this file's")
    assert snapshot(catalog) == before


def test_a_trade_id_twice_in_one_file_with_other_values_is_refused(shared_data, catalog, tmp_path):
    with gzip.open(shared_data / GEMINI_BTC, "rt") as f:
        lines = [next(f) for _ in range(101)]
    cells = lines[80].split(",")
    cells[4] = lines[20].split(",")[4]  # row 81 takes row 21's id
    lines[80] = ",".join(cells)
    path = write(tmp_path, "t.csv", "".join(lines))
    with pytest.raises(ValueError, match=rf"^{path}: trade id '{cells[4]}' appears twice with different values$"):
        catalog.import_file(path)
    assert catalog.list() == []


def test_a_second_import_at_the_same_time_is_refused(shared_data, catalog, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    catalog.root.mkdir()
    with open(catalog.root / ".lock", "a") as held_lock:
        fcntl.flock(held_lock, fcntl.LOCK_EX)  # as a running import holds it
        proc = run_cli("data", "import", str(shared_data / GEMINI_BTC), "--catalog", str(catalog.root))
    line = one_error_line(proc)
    assert line == (f"riskengine: error: catalog {catalog.root}: another import into it is running; try again "
                    f"when it has finished")
    assert run_cli("data", "import", str(shared_data / GEMINI_BTC), "--catalog", str(catalog.root)).returncode == 0


def test_a_trade_id_twice_in_one_file_with_the_same_values_is_held_once(catalog, tmp_path):
    text = tardis_rows([X, Y, X, Z], ids=True).splitlines(keepends=True)
    text[3] = text[3].replace(",3,buy,", ",1,buy,")  # the third row is the first one again, id and all
    report = catalog.import_file(write(tmp_path, "t.csv", "".join(text)))
    assert (report.rows, report.added) == (4, 3)
    table = catalog.read_trades("bitfinex", "BTCUSD")
    assert table.column("trade_id").to_pylist() == ["1", "2", "4"]
