"""The Binance Vision downloader against a real HTTP server on 127.0.0.1 that serves files laid
out like the public archive, built here from the real files in ../shared/data."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from riskengine.data import Catalog
from riskengine.data.fetch import Fetcher, archive_path, dates
from riskengine.funding import FundingStream

KLINES = "2025-10-10/binance-price-klines"
DEPTH_CSV = "2025-10-10/binance-usdm-bookdepth/BTCUSDT-bookDepth-2025-10-10.csv"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with byte-range support; ``fail`` maps a path to how many 503s to send first."""

    fail: dict[str, int] = {}
    requests: list[tuple[str, str | None]] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self.requests.append((self.path, self.headers.get("Range")))
        if self.fail.get(self.path, 0) > 0:
            self.fail[self.path] -= 1
            self.send_error(503, "busy")
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _publish(root: Path, rel: str, data: bytes, checksum_of: bytes | None = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest = hashlib.sha256(checksum_of if checksum_of is not None else data).hexdigest()
    (root / (rel + ".CHECKSUM")).write_text(f"{digest}  {path.name}\n")


@pytest.fixture()
def archive(shared_data, tmp_path):
    root = tmp_path / "archive"
    for day in ("2025-10-09", "2025-10-10"):
        data = (shared_data / KLINES / f"BTCUSD_PERP-1m-{day}.zip").read_bytes()
        _publish(root, archive_path("binance-cm", "klines", "BTCUSD_PERP", dates(day)[0]), data)
    # bookDepth is published zipped; the shared copy is the CSV
    buf = tmp_path / "depth.zip"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(shared_data / DEPTH_CSV, "BTCUSDT-bookDepth-2025-10-10.csv")
    _publish(root, archive_path("binance-um", "bookDepth", "BTCUSDT", dates("2025-10-10")[0]), buf.read_bytes())
    # a file whose checksum does not match (published bytes differ from what was checksummed)
    good = (shared_data / KLINES / "BTCUSD_PERP-1m-2025-10-10.zip").read_bytes()
    corrupted = good[:-100] + bytes(100)
    _publish(root, archive_path("binance-cm", "markPriceKlines", "BTCUSD_PERP", dates("2025-10-10")[0]),
             corrupted, checksum_of=good)
    handler = type("Handler", (_Handler,), {"fail": {}, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(root), **k))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler, root
    finally:
        server.shutdown()
        server.server_close()


def fetcher(tmp_path, url, **kw):
    lines = []
    f = Fetcher(Catalog(tmp_path / "catalog"), tmp_path / "cache", url, backoff_s=0.01,
                progress=lines.append, **kw)
    return f, lines


def test_fetch_imports_and_then_skips(archive, tmp_path):
    url, _, _ = archive
    f, lines = fetcher(tmp_path, url)
    report = f.fetch("binance-cm", "klines", "BTCUSD_PERP", "2025-10-09..2025-10-10")
    assert report.downloaded == ["BTCUSD_PERP-1m-2025-10-09.zip", "BTCUSD_PERP-1m-2025-10-10.zip"]
    assert report.imported_rows == 2 * 1440
    assert any("bytes of" in line for line in lines)  # progress with sizes
    again = f.fetch("binance-cm", "klines", "BTCUSD_PERP", "2025-10-09..2025-10-10")
    assert again.downloaded == [] and len(again.skipped) == 2


def test_fetch_book_depth(archive, tmp_path):
    url, _, _ = archive
    f, _ = fetcher(tmp_path, url)
    report = f.fetch("binance-um", "bookDepth", "BTCUSDT", "2025-10-10")
    assert report.imported_rows == 28_790
    assert f.catalog.read("depth", "binance", "BTCUSDT").num_rows == 28_790


def test_checksum_mismatch_is_refused(archive, tmp_path):
    url, _, _ = archive
    f, _ = fetcher(tmp_path, url)
    with pytest.raises(ValueError, match=r"markPriceKlines/BTCUSD_PERP/1m/BTCUSD_PERP-1m-2025-10-10.zip: "
                                         r"checksum mismatch .* the download was deleted"):
        f.fetch("binance-cm", "markPriceKlines", "BTCUSD_PERP", "2025-10-10")
    assert not list((tmp_path / "cache").rglob("*.zip")) and f.catalog.files() == []


def test_resume_with_a_range_request(archive, tmp_path):
    url, handler, root = archive
    rel = archive_path("binance-cm", "klines", "BTCUSD_PERP", dates("2025-10-10")[0])
    data = (root / rel).read_bytes()
    part = tmp_path / "cache" / (rel + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: len(data) // 2])
    f, lines = fetcher(tmp_path, url)
    report = f.fetch("binance-cm", "klines", "BTCUSD_PERP", "2025-10-10")
    assert report.imported_rows == 1440
    assert ("/" + rel, f"bytes={len(data) // 2}-") in handler.requests
    assert any("(resumed)" in line for line in lines)


def test_retries_transient_failures(archive, tmp_path):
    url, handler, _ = archive
    rel = archive_path("binance-cm", "klines", "BTCUSD_PERP", dates("2025-10-10")[0])
    handler.fail["/" + rel] = 2
    f, _ = fetcher(tmp_path, url, retries=3)
    assert f.fetch("binance-cm", "klines", "BTCUSD_PERP", "2025-10-10").imported_rows == 1440
    handler.fail["/" + rel.replace("2025-10-10", "2025-10-09")] = 10
    f2, _ = fetcher(tmp_path / "second", url, retries=2)
    with pytest.raises(ValueError, match=r"failed after 3 attempts \(HTTP 503"):
        f2.fetch("binance-cm", "klines", "BTCUSD_PERP", "2025-10-09")


def test_missing_file_and_bad_arguments(archive, tmp_path):
    url, _, _ = archive
    f, _ = fetcher(tmp_path, url)
    with pytest.raises(ValueError, match=r"not in the archive \(HTTP 404\)"):
        f.fetch("binance-cm", "klines", "ETHUSD_PERP", "2025-10-10")
    with pytest.raises(ValueError, match=r"dates: expected YYYY-MM-DD"):
        f.fetch("binance-cm", "klines", "BTCUSD_PERP", "10/10/2025")
    with pytest.raises(ValueError, match=r"kind: expected one of"):
        f.fetch("binance-cm", "candles", "BTCUSD_PERP", "2025-10-10")


def test_cli_fetch(archive, tmp_path):
    url, _, _ = archive
    args = [sys.executable, "-m", "riskengine.cli", "data", "fetch", "binance-cm", "klines", "BTCUSD_PERP",
            "2025-10-10", "--base-url", url, "--catalog", str(tmp_path / "cat")]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "downloaded 1 file(s), skipped 0 already in the catalog, imported 1,440 rows" in done.stdout
    bad = subprocess.run(args[:-5] + ["2025-13-01"] + args[-4:], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("riskengine: error: dates:")
    assert "Traceback" not in bad.stderr


# ------------------------------------------------------------------------------ fundingRate (monthly)
FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"


def _funding_zip(symbol: str, month: str, first_ms: int, n: int) -> bytes:
    """A monthly fundingRate zip as the archive ships it: one CSV named like the zip, the header,
    a row every 8 hours (calc_time with a millisecond of jitter)."""
    rows = [f"{first_ms + k * 28_800_000 + k % 2},8,{0.0001 - 0.00002 * (k % 4):.8f}" for k in range(n)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{symbol}-fundingRate-{month}.csv", "\n".join([FUNDING_HEADER, *rows]) + "\n")
    return buf.getvalue()


@pytest.fixture()
def funding_archive(tmp_path):
    """September and October 2025 BTCUSDT fundingRate files (90 and 93 rows), written here in the
    published format (no such files are in ../shared/data), served on 127.0.0.1."""
    root = tmp_path / "archive"
    for month, first_ms, n in (("2025-09", 1_756_684_800_000, 90), ("2025-10", 1_759_276_800_000, 93)):
        rel = archive_path("binance-um", "fundingRate", "BTCUSDT", dt.date.fromisoformat(f"{month}-01"))
        _publish(root, rel, _funding_zip("BTCUSDT", month, first_ms, n))
    handler = type("Handler", (_Handler,), {"fail": {}, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(root), **k))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler, root
    finally:
        server.shutdown()
        server.server_close()


def test_funding_rate_archive_path_is_monthly():
    assert archive_path("binance-um", "fundingRate", "BTCUSDT", dt.date(2025, 10, 10)) == (
        "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2025-10.zip")


def test_fetch_funding_rate_months(funding_archive, tmp_path):
    url, handler, _ = funding_archive
    f, _ = fetcher(tmp_path, url)
    # the dates touch two months: one file each, once, however many days
    report = f.fetch("binance-um", "fundingRate", "BTCUSDT", "2025-09-28..2025-10-10")
    assert report.downloaded == ["BTCUSDT-fundingRate-2025-09.zip", "BTCUSDT-fundingRate-2025-10.zip"]
    assert report.imported_rows == 90 + 93
    gets = [p for p, _ in handler.requests if p.endswith(".zip")]
    assert gets == ["/data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2025-09.zip",
                    "/data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2025-10.zip"]
    stream = FundingStream.from_catalog(f.catalog, "binance", "BTCUSDT")
    # 8 hours apart throughout, across the month boundary too
    assert len(stream) == 183 and np.round(np.diff(stream.ts) / 3_600_000_000_000).tolist() == [8] * 182
    again = f.fetch("binance-um", "fundingRate", "BTCUSDT", "2025-10-01")
    assert again.downloaded == [] and again.skipped == ["BTCUSDT-fundingRate-2025-10.zip"]


def test_fetch_funding_rate_missing_month(funding_archive, tmp_path):
    url, _, _ = funding_archive
    f, _ = fetcher(tmp_path, url)
    with pytest.raises(ValueError, match=r"fundingRate/BTCUSDT/BTCUSDT-fundingRate-2025-11.zip.CHECKSUM: "
                                         r"not in the archive \(HTTP 404\)"):
        f.fetch("binance-um", "fundingRate", "BTCUSDT", "2025-11-01")


def test_cli_fetch_funding_rate(funding_archive, tmp_path):
    url, _, _ = funding_archive
    args = [sys.executable, "-m", "riskengine.cli", "data", "fetch", "binance-um", "fundingRate", "BTCUSDT",
            "2025-10-05..2025-10-06", "--base-url", url, "--catalog", str(tmp_path / "cat")]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "downloaded 1 file(s), skipped 0 already in the catalog, imported 93 rows" in done.stdout
