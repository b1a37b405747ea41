"""Downloader for the Binance Vision public archive (``data.binance.vision``).

Daily files live at ``{base}/data/futures/{um|cm}/daily/{kind}/{SYMBOL}/{SYMBOL}-{kind}-{date}.zip``
(``aggTrades``, ``trades``, ``bookDepth``, ``metrics``) and, for the klines families, at
``.../{kind}/{SYMBOL}/1m/{SYMBOL}-1m-{date}.zip``; each has a ``.CHECKSUM`` file
(``sha256  filename``; ../shared/data/README.md). Funding rates are published monthly only, at
``{base}/data/futures/{um|cm}/monthly/fundingRate/{SYMBOL}/{SYMBOL}-fundingRate-{YYYY-MM}.zip``
(layout as public readers of the archive use it, found with code search): for ``fundingRate`` the
dates select the months that hold them, one file per month. For every date the downloader skips a file
the catalog already holds, downloads to ``<cache>/...part`` resuming with an HTTP Range request,
retries transient failures with back-off, refuses a file whose SHA-256 does not match its
checksum, and imports what it got.

The Hyperliquid archive is a requester-pays S3 bucket: download it with your own AWS
credentials (``aws s3 cp --request-payer requester s3://hl-mainnet-node-data/...``), then
``riskengine data import --source hyperliquid FILE...``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from riskengine.data.catalog import Catalog

DEFAULT_BASE_URL = "https://data.binance.vision"
MARKETS = {"binance-um": "um", "binance-cm": "cm"}
KLINE_KINDS = ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")
FILE_KINDS = ("aggTrades", "trades", "bookDepth", "metrics")
#: kinds the archive publishes monthly only
MONTHLY_KINDS = ("fundingRate",)
IMPORTABLE = {*FILE_KINDS, *KLINE_KINDS, *MONTHLY_KINDS}
CHUNK = 1 << 20


@dataclass
class FetchReport:
    """What a fetch did, per file."""

    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    imported_rows: int = 0


def dates(spec: str) -> list[dt.date]:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD..YYYY-MM-DD`` (inclusive)."""
    try:
        if ".." in spec:
            a, b = spec.split("..", 1)
            start, end = dt.date.fromisoformat(a), dt.date.fromisoformat(b)
        else:
            start = end = dt.date.fromisoformat(spec)
    except ValueError:
        raise ValueError(f"dates: expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD (got {spec!r})") from None
    if end < start:
        raise ValueError(f"dates: the range ends before it starts ({spec!r})")
    if (end - start).days > 366:
        raise ValueError(f"dates: at most a year at a time (got {(end - start).days + 1} days)")
    return [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]


def archive_path(market: str, kind: str, symbol: str, day: dt.date) -> str:
    """Path inside the archive of the daily file of ``day`` (of the monthly file holding it, for
    :data:`MONTHLY_KINDS`)."""
    if market not in MARKETS:
        raise ValueError(f"market: expected one of {', '.join(MARKETS)} (got {market!r})")
    kinds = KLINE_KINDS + FILE_KINDS + MONTHLY_KINDS
    if kind not in kinds:
        raise ValueError(f"kind: expected one of {', '.join(kinds)} (got {kind!r})")
    if kind in MONTHLY_KINDS:
        return (f"data/futures/{MARKETS[market]}/monthly/{kind}/{symbol}/"
                f"{symbol}-{kind}-{day.year:04d}-{day.month:02d}.zip")
    folder = f"data/futures/{MARKETS[market]}/daily/{kind}/{symbol}"
    if kind in KLINE_KINDS:
        return f"{folder}/1m/{symbol}-1m-{day.isoformat()}.zip"
    return f"{folder}/{symbol}-{kind}-{day.isoformat()}.zip"


class Fetcher:
    """Downloads daily files into a cache and imports them into a catalog."""

    def __init__(self, catalog: Catalog, cache: str | Path, base_url: str = DEFAULT_BASE_URL,
                 retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 30.0,
                 progress: Callable[[str], None] | None = None) -> None:
        self.catalog = catalog
        self.cache = Path(cache)
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.progress = progress or (lambda text: print(text, file=sys.stderr, flush=True))

    def fetch(self, market: str, kind: str, symbol: str, spec: str) -> FetchReport:
        """Fetch ``kind`` of ``symbol`` for the dates in ``spec`` (for ``fundingRate``, the months
        holding them) and import them.

        Raises
        ------
        ValueError
            Bad arguments, a file the archive does not have, a checksum mismatch (the file is
            deleted), or a server still failing after the retries — one line naming the URL.
        """
        from riskengine.files import check_writable_dir

        report = FetchReport()
        days = dates(spec)
        if kind in MONTHLY_KINDS:  # one file per month the dates touch
            days = sorted({day.replace(day=1) for day in days})
        check_writable_dir(self.catalog.root, f"catalog {self.catalog.root}")  # before any download
        check_writable_dir(self.cache, f"cache {self.cache}")
        for k, day in enumerate(days, 1):
            rel = archive_path(market, kind, symbol, day)
            name = rel.rsplit("/", 1)[1]
            if self._in_catalog(symbol, name):
                report.skipped.append(name)
                self.progress(f"[{k}/{len(days)}] {name}: already in the catalog")
                continue
            local = self.cache / rel
            expected = self._checksum(rel)
            self._download(rel, local, f"[{k}/{len(days)}] {name}")
            digest = _sha256(local)
            if digest != expected:
                local.unlink()
                raise ValueError(f"{self.base_url}/{rel}: checksum mismatch (sha256 {digest}, the .CHECKSUM "
                                 f"file says {expected}); the download was deleted")
            report.downloaded.append(name)
            if kind in IMPORTABLE:
                imported = self.catalog.import_file(local, source="binance-vision")
                report.imported_rows += imported.rows
                self.progress(f"[{k}/{len(days)}] {imported.describe()}")
        return report

    def _in_catalog(self, symbol: str, name: str) -> bool:
        return self.catalog.holds_file("binance", symbol, name)

    def _open(self, url: str, headers: dict | None = None):
        last = None
        for attempt in range(self.retries + 1):
            try:
                return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                              timeout=self.timeout_s)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise ValueError(f"{url}: not in the archive (HTTP 404)") from None
                if exc.code < 500 and exc.code != 429:
                    raise ValueError(f"{url}: HTTP {exc.code} {exc.reason}") from None
                last = f"HTTP {exc.code} {exc.reason}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = str(getattr(exc, "reason", exc))
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise ValueError(f"{url}: failed after {self.retries + 1} attempts ({last})")

    def _checksum(self, rel: str) -> str:
        url = f"{self.base_url}/{rel}.CHECKSUM"
        with self._open(url) as response:
            text = response.read().decode(errors="replace").split()
        if not text or len(text[0]) != 64:
            raise ValueError(f"{url}: expected 'sha256  filename' (got {' '.join(text)[:80]!r})")
        return text[0].lower()

    def _download(self, rel: str, local: Path, label: str) -> None:
        url = f"{self.base_url}/{rel}"
        part = local.with_name(local.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self._open(url, headers) as response:
            resumed = have and response.status == 206
            mode = "ab" if resumed else "wb"
            total = response.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            done = have if resumed else 0
            with open(part, mode) as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
            size = f"{done:,} bytes" + (f" of {total:,}" if total else "")
            self.progress(f"{label}: {size}{' (resumed)' if resumed else ''}")
        part.replace(local)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
