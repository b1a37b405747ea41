"""Funding-rate imports: Binance Vision ``fundingRate`` monthly files and Hyperliquid's
``fundingHistory`` answers, into the catalog as kind ``funding`` and read back as validated
streams.

../shared/data has no files of either kind, so each test writes one in the published format:
Binance's CSV header ``calc_time,funding_interval_hours,last_funding_rate`` zipped as the archive
ships it (one CSV named like the zip inside), Hyperliquid's JSON records ``{coin, fundingRate,
premium, time}`` with decimal text and ms times, as the info endpoint answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskengine.data import Catalog
from riskengine.data.binance import kind_of as binance_kind
from riskengine.data.hyperliquid import kind_of as hyperliquid_kind
from riskengine.funding import HOUR_NS, FundingStream

HEADER = "calc_time,funding_interval_hours,last_funding_rate"
OCT_MS = 1_759_276_800_000  # 2025-10-01T00:00:00Z
H8_MS = 8 * 3_600_000


def binance_rows(n: int, start_ms: int = OCT_MS, hours: int = 8, jitter: bool = True) -> list[str]:
    # calc_time carries a millisecond or two of jitter in the published files
    return [f"{start_ms + k * hours * 3_600_000 + (k % 3 if jitter else 0)},{hours},{(k % 5 - 2) * 0.00005:.8f}"
            for k in range(n)]


def write_binance(folder: Path, rows: list[str], header: str = HEADER, name: str = "BTCUSDT-fundingRate-2025-10",
                  zipped: bool = True) -> Path:
    text = "\n".join([header, *rows]) + "\n" if header else "\n".join(rows) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    if not zipped:
        path = folder / f"{name}.csv"
        path.write_text(text)
        return path
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}.csv", text)
    return path


def hl_records(coin: str, n: int, start_ms: int = OCT_MS) -> list[dict]:
    # times a few ms past the hour, rates and premiums as decimal text, as the info endpoint sends them
    return [{"coin": coin, "fundingRate": f"{0.0000125 + k * 1e-6:.10f}", "premium": f"{-0.0001 * k:.10f}",
             "time": start_ms + k * 3_600_000 + 17} for k in range(n)]


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


# ------------------------------------------------------------------------------ Binance
def test_binance_funding_rate_zip(tmp_path, catalog):
    path = write_binance(tmp_path / "data/futures/um/monthly/fundingRate/BTCUSDT", binance_rows(93))
    assert binance_kind(path) == "funding"
    report = catalog.import_file(path, source="binance-vision")
    assert (report.kind, report.source, report.symbol, report.rows) == ("funding", "binance", "BTCUSDT", 93)
    table = catalog.read("funding", "binance", "BTCUSDT")
    assert table.num_rows == 93
    ts = table.column("ts").cast("int64").to_numpy()
    assert ts[1] == (OCT_MS + H8_MS + 1) * 1_000_000  # ms -> ns, the jitter kept
    assert table.column("rate").to_pylist()[:5] == pytest.approx(
        [-0.0001, -0.00005, 0.0, 0.00005, 0.0001])
    assert set(table.column("interval_hours").to_pylist()) == {8.0}
    assert table.column("premium").null_count == 93
    s = FundingStream.from_catalog(catalog, "binance", "BTCUSDT")
    assert len(s) == 93 and s.interval[0] == 8 * HOUR_NS and s.premium is None
    # a re-import adds nothing (the catalog merges rows without ids as a multiset)
    assert catalog.import_file(path, source="binance-vision").added == 0


def test_binance_funding_rate_csv_and_interval_switch(tmp_path):
    # BTCUSDT at 8 h, then switched to 4 h at 08:00 on the 2nd: 00:00, 08:00, 16:00, 00:00, 08:00, 12:00, 16:00
    rows = binance_rows(5, jitter=False) + binance_rows(2, OCT_MS + 5 * H8_MS - H8_MS + 4 * 3_600_000, hours=4,
                                                        jitter=False)
    path = write_binance(tmp_path, rows, zipped=False)
    s = FundingStream.from_file(path, "binance-vision")
    assert s.symbol == "BTCUSDT" and len(s) == 7
    assert (np.diff(s.ts) // HOUR_NS).tolist() == [8, 8, 8, 8, 4, 4]


@pytest.mark.parametrize("header", ["calc_time,funding_interval_hours,funding_rate",
                                    "fundingTime,fundingRate,markPrice", None])
def test_binance_wrong_header_names_the_file_and_the_expected_header(tmp_path, catalog, header):
    rows = binance_rows(3)
    path = write_binance(tmp_path, rows, header=header or "")
    with pytest.raises(ValueError) as err:
        catalog.import_file(path, source="binance-vision")
    message = str(err.value)
    assert message.startswith(f"{path}: expected the header {HEADER} (got ")
    assert "\n" not in message
    assert catalog.files() == []


@pytest.mark.parametrize("row, message", [
    (f"{OCT_MS + H8_MS},8,nan", r"row 3: column 'last_funding_rate': expected a finite number \(got 'nan'\)"),
    (f"{OCT_MS + H8_MS},8,", r"row 3: column 'last_funding_rate' is empty"),
    (f"{OCT_MS + H8_MS},0,0.0001", r"row 3: column 'funding_interval_hours': expected a finite value > 0"),
    (f"{OCT_MS + H8_MS},8,n/a", r"row 3: column 'last_funding_rate': expected a number \(got 'n/a'\)"),
    (f"2025-10-01 08:00:00,8,0.0001", r"row 3: column 'calc_time': expected an integer"),
])
def test_binance_bad_rows_name_the_row(tmp_path, catalog, row, message):
    path = write_binance(tmp_path, [binance_rows(1)[0], row])
    with pytest.raises(ValueError, match=rf"^{path}: " + message):
        catalog.import_file(path, source="binance-vision")


def test_binance_gap_in_a_file_is_refused_when_read_as_a_stream(tmp_path):
    rows = binance_rows(6)
    del rows[3]  # the 2025-10-02 00:00 funding time is missing
    path = write_binance(tmp_path, rows)
    with pytest.raises(ValueError, match=rf"^{path}: BTCUSDT\.ts\[3\] = 2025-10-02T08:00:00\.001Z comes 16h after "
                                         r"BTCUSDT\.ts\[2\] = 2025-10-01T16:00:00\.002Z: expected the next funding "
                                         r"time 8h later \(a missing funding time\)$"):
        FundingStream.from_file(path, "binance-vision")


def test_binance_unsorted_rows_are_refused(tmp_path, catalog):
    rows = binance_rows(4)
    rows[1], rows[2] = rows[2], rows[1]
    path = write_binance(tmp_path, rows)
    # rows 3 and 4 (the header is row 1) swapped: row 4 goes back in time
    with pytest.raises(ValueError, match=rf"^{path}: row 4: time goes backwards"):
        catalog.import_file(path, source="binance-vision")


# ------------------------------------------------------------------------------ Hyperliquid
def test_hyperliquid_funding_history_array(tmp_path, catalog):
    path = tmp_path / "fundingHistory-2025-10.json"
    path.write_text(json.dumps(hl_records("BTC", 48) + hl_records("ETH", 24)))
    assert hyperliquid_kind(path) == "funding-history"
    reports = catalog.import_file(path, source="hyperliquid")
    assert (reports.kind, reports.rows) == ("funding", 72)
    s = FundingStream.from_catalog(catalog, "hyperliquid", "BTC")
    assert len(s) == 48 and s.interval.tolist() == [HOUR_NS] * 48
    assert s.ts[0] == (OCT_MS + 17) * 1_000_000
    assert s.rate[:2].tolist() == pytest.approx([0.0000125, 0.0000135])
    assert s.premium[:3].tolist() == pytest.approx([0.0, -0.0001, -0.0002])
    assert len(FundingStream.from_catalog(catalog, "hyperliquid", "ETH")) == 24


def test_hyperliquid_funding_history_pages_as_json_lines(tmp_path):
    # two API pages saved a line each, the second starting after the first's last time
    records = hl_records("SOL", 30)
    path = tmp_path / "SOL_funding_history.jsonl"
    path.write_text(json.dumps(records[:20]) + "\n" + json.dumps(records[20:]) + "\n")
    s = FundingStream.from_file(path, "hyperliquid")
    assert s.symbol == "SOL" and len(s) == 30
    with pytest.raises(ValueError, match="holds 1 symbols|holds no 'BTC'"):
        FundingStream.from_file(path, "hyperliquid", symbol="BTC")


@pytest.mark.parametrize("change, message", [
    ({"fundingRate": "nan"}, r"record 2: 'fundingRate': expected a finite number \(got 'nan'\)"),
    ({"premium": "x"}, r"record 2: 'premium': expected a number \(got 'x'\)"),
    ({"time": "1759280400017"}, r"record 2: 'time': expected a time in ms, an integer > 0"),
    ({"coin": ""}, r"record 2: 'coin': expected a coin name"),
])
def test_hyperliquid_bad_records_name_the_record(tmp_path, catalog, change, message):
    records = hl_records("BTC", 3)
    records[1].update(change)
    path = tmp_path / "BTC-fundingHistory.json"
    path.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=rf"^{path}: " + message):
        catalog.import_file(path, source="hyperliquid")


def test_hyperliquid_record_without_its_fields(tmp_path, catalog):
    path = tmp_path / "BTC-fundingHistory.jsonl"
    path.write_text(json.dumps(hl_records("BTC", 1)[0]) + "\n" + json.dumps({"coin": "BTC", "rate": 0.1}) + "\n")
    with pytest.raises(ValueError, match=rf"^{path}: line 2: expected a fundingHistory record "
                                         r"\{coin, fundingRate, premium, time\} \(keys: coin, rate\)$"):
        catalog.import_file(path, source="hyperliquid")


def test_hyperliquid_missing_hour_is_a_gap(tmp_path):
    records = hl_records("BTC", 5)
    del records[2]
    path = tmp_path / "BTC-fundingHistory.json"
    path.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"BTC\.ts\[2\] = 2025-10-01T03:00:00\.017Z comes 2h after .*expected the "
                                         r"next funding time 1h later \(a missing funding time\)$"):
        FundingStream.from_file(path, "hyperliquid")


def test_cli_imports_funding(tmp_path):
    path = write_binance(tmp_path / "in", binance_rows(10))
    done = subprocess.run([sys.executable, "-m", "riskengine.cli", "data", "import", "--source", "binance-vision",
                           str(path), "--catalog", str(tmp_path / "cat")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "10 funding rows -> binance/BTCUSDT" in done.stdout + done.stderr
    table = Catalog(tmp_path / "cat").read("funding", "binance", "BTCUSDT")
    assert pd.Series(table.column("rate").to_pylist()).between(-0.0001, 0.0001).all()


def test_read_funding_as_a_config_names_it(tmp_path):
    """The way a config names a tape or stream: a file read by its importer, or a catalog
    partition (kind ``funding``); relative paths from the config's folder."""
    from riskengine import config
    from riskengine.funding import read_funding

    loaded = config.load_default().model_copy(update={"base_dir": tmp_path})
    path = write_binance(tmp_path / "in", binance_rows(12))
    s = read_funding(loaded, config.FileTape(source="binance-vision", path="in/" + path.name), "c.toml: funding")
    assert s.symbol == "BTCUSDT" and len(s) == 12
    Catalog(tmp_path / "cat").import_file(path, source="binance-vision")
    s = read_funding(loaded, config.CatalogTape(catalog="cat", source="binance", symbol="BTCUSDT", kind="funding"),
                     "c.toml: funding")
    assert len(s) == 12 and s.rate[:3].tolist() == pytest.approx([-0.0001, -0.00005, 0.0])
    # a trades partition is not funding: one line naming the key
    spot = tmp_path / "trades.csv"
    spot.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                    "gemini,BTCUSD,1759276800000000,1759276800000000,1,buy,100.0,1\n")
    with pytest.raises(ValueError, match=r"^c\.toml: funding: holds ts, price, qty, side, trade_id, not funding rates"):
        read_funding(loaded, config.FileTape(source="tardis", path="trades.csv"), "c.toml: funding")
    # a gap names the config key
    rows = binance_rows(6)
    del rows[4]
    gapped = write_binance(tmp_path / "gap", rows)
    with pytest.raises(ValueError, match=r"^c\.toml: funding\.ts\[4\] = .* \(a missing funding time\)$"):
        read_funding(loaded, config.FileTape(source="binance-vision", path=str(gapped)), "c.toml: funding")
