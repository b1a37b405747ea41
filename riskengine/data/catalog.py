"""The local Parquet tick catalog.

Layout: ``ROOT/source=<source>/kind=<kind>/symbol=<symbol>/date=<YYYY-MM-DD>/<file>.parquet``,
one Parquet file per imported source file and UTC day, named after the source file, so
importing the same file again replaces it (idempotent). Everything is written to
``ROOT/.tmp`` first and renamed into place only when the whole import succeeded: a failed
import leaves the catalog as it was.

The importer checks the order of times and repeated rows while streaming. Sorting and
de-duplication are explicit options (they need the file in memory) and the report says what
they changed; nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from riskengine.data import binance, hyperliquid, tardis
from riskengine.data.schema import KINDS

NS_PER_DAY = 86_400 * 1_000_000_000
#: (source, kind) -> reader(path) yielding ``(exchange, symbol, batch, first_row)`` with batches
#: in the schema of the kind it is stored as. Each importer registers its kinds here.
READERS = {
    ("tardis", "trades"): tardis.read_trades,
    ("tardis", "liquidations"): tardis.read_liquidations,
    ("tardis", "derivative_ticker"): tardis.read_derivative_ticker,
    ("tardis", "book_snapshot_25"): lambda path: tardis.read_book_snapshot(path, 25),
    ("tardis", "book_snapshot_5"): lambda path: tardis.read_book_snapshot(path, 5),
    ("binance-vision", "agg-trades"): lambda path: binance.read_trades(path, "agg-trades"),
    ("binance-vision", "trades"): lambda path: binance.read_trades(path, "trades"),
    ("binance-vision", "klines"): binance.read_klines,
    ("binance-vision", "mark"): binance.read_klines,
    ("binance-vision", "index"): binance.read_klines,
    ("binance-vision", "premium"): binance.read_klines,
    ("binance-vision", "depth"): binance.read_book_depth,
    ("binance-vision", "metrics"): binance.read_metrics,
    ("hyperliquid", "trades"): lambda path: hyperliquid.read(path, "trades"),
    ("hyperliquid", "events"): lambda path: hyperliquid.read(path, "events"),
    ("hyperliquid", "node-trades"): hyperliquid.read_node_trades,
    ("hyperliquid", "asset-ctxs"): hyperliquid.read_asset_ctxs,
    ("hyperliquid", "l2book"): hyperliquid.read_l2book,
}
#: the catalog kind (schema) a source kind is stored as, where the names differ
STORED_AS = {"agg-trades": "trades", "node-trades": "trades", "asset-ctxs": "ticker", "l2book": "depth",
             **tardis.STORED_AS}
#: the kind a file holds when none is given (None: cannot tell)
KIND_OF = {"tardis": tardis.kind_of, "binance-vision": binance.kind_of,
           "hyperliquid": hyperliquid.kind_of}
#: file formats and the kinds each can hold
SOURCES = {source: tuple(k for s, k in READERS if s == source) for source, _ in READERS}
#: the files each source reads (for ``riskengine data import --help``)
FILE_TYPES = {"tardis": tardis.FILE_TYPES, "binance-vision": binance.FILE_TYPES, "hyperliquid": hyperliquid.FILE_TYPES}


@dataclass
class ImportReport:
    """What one import did."""

    path: str
    source: str
    kind: str
    symbol: str
    rows: int = 0
    files: list[str] = field(default_factory=list)
    sorted_rows: int = 0  #: rows that were out of time order (with ``sort=True``)
    duplicates_dropped: int = 0  #: rows dropped as repeats (with ``dedupe=True``)

    def describe(self) -> str:
        text = f"{self.path}: {self.rows:,} {self.kind} rows -> {self.source}/{self.symbol} ({len(self.files)} file(s))"
        if self.sorted_rows:
            text += f"; sorted {self.sorted_rows:,} rows that were out of time order"
        if self.duplicates_dropped:
            text += f"; dropped {self.duplicates_dropped:,} repeated rows"
        return text


def _import_name(path: Path, source: str) -> str:
    """The catalog file name of an imported file: its stem; for Hyperliquid's hourly archives
    (``.../20251010/21.lz4``, ``.../20251010/21/l2Book/BTC.lz4``) prefixed with the date and
    hour folders, which alone tell one hour's file from another's."""
    stem = _stem(path)
    if source == "hyperliquid":
        stem = "_".join([p for p in path.parent.parts[-3:] if p.isdigit()] + [stem])
    return _safe(stem)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".lz4", ".gz", ".jsonl", ".json", ".csv", ".zip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


class _OrderCheck:
    """Streaming check of time order and repeated rows (a row equal to the one before it)."""

    def __init__(self) -> None:
        self.last: list | None = None
        self.unsorted = 0
        self.first_unsorted: int | None = None
        self.unsorted_times: tuple[int, int] = (0, 0)  #: (time, the later time before it), ns
        self.repeats = 0
        self.first_repeat: int | None = None

    def update(self, batch: pa.RecordBatch, first_row: int) -> None:
        columns = [batch.column(0).cast(pa.int64())] + [batch.column(j) for j in range(1, batch.num_columns)]
        values = [c.to_numpy(zero_copy_only=False) for c in columns]
        ts = values[0]
        prev_ts = np.empty_like(ts)
        prev_ts[1:] = ts[:-1]
        prev_ts[0] = self.last[0] if self.last is not None else ts[0]
        back = np.flatnonzero(ts < prev_ts)
        if len(back):
            self.unsorted += len(back)
            if self.first_unsorted is None:
                self.first_unsorted = first_row + int(back[0])
                self.unsorted_times = (int(ts[back[0]]), int(prev_ts[back[0]]))
        same = np.ones(len(ts), dtype=bool)
        for j, v in enumerate(values):
            prev = np.empty_like(v)
            prev[1:] = v[:-1]
            prev[0] = self.last[j] if self.last is not None else v[0]
            same &= v == prev
        if self.last is None:
            same[0] = False
        rep = np.flatnonzero(same)
        if len(rep):
            self.repeats += len(rep)
            if self.first_repeat is None:
                self.first_repeat = first_row + int(rep[0])
        self.last = [v[-1] for v in values]

    def describe_unsorted(self) -> str:
        """``T comes after U`` for the first out-of-order time (rows of a file that expands into
        several stored rows, like a book snapshot, are easier to find by time)."""
        t, before = (np.datetime64(x, "ns") for x in self.unsorted_times)
        return f"{t} after {before}"


class Catalog:
    """A local Parquet tick catalog rooted at ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ import
    def import_file(self, path: str | os.PathLike, source: str = "tardis", kind: str | None = None,
                    sort: bool = False, dedupe: bool = False) -> ImportReport:
        """Import one file.

        Parameters
        ----------
        path : path-like
            The file (``.csv`` or ``.csv.gz``).
        source : {"tardis", "binance-vision"}
            Its format.
        kind : str, optional
            What it holds: ``trades`` (Tardis); ``klines``, ``mark``, ``index``, ``premium``
            or ``depth`` (Binance Vision; by default from the archive folder or file name).
        sort, dedupe : bool
            Sort rows by time / drop rows equal to the row before them, and report how many.
            Without them, such rows are an error naming the first one.

        Raises
        ------
        ValueError
            One line naming the file, the row and what was expected; the catalog is unchanged.
        """
        path = Path(path)
        if source not in SOURCES:
            raise ValueError(f"{path}: unknown source {source!r}; known: {', '.join(SOURCES)}")
        if kind is None:
            kind = KIND_OF[source](path)
            if kind is None:
                raise ValueError(f"{path}: cannot tell what this {source} file holds; give the kind "
                                 f"(one of {', '.join(SOURCES[source])})")
        if kind not in SOURCES[source]:
            raise ValueError(f"{path}: unknown kind {kind!r} for source {source!r}; "
                             f"known: {', '.join(SOURCES[source])}")
        tmp = self.root / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            report, staged = self._stage(path, source, kind, sort, dedupe, tmp)
            for staged_file, final in staged:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged_file, final)
                report.files.append(str(final))
            return report
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _stage(self, path: Path, source: str, kind: str, sort: bool, dedupe: bool,
               tmp: Path) -> tuple[ImportReport, list[tuple[Path, Path]]]:
        reader = READERS[source, kind](path)
        kind = STORED_AS.get(kind, kind)
        schema = KINDS[kind]
        checks: dict[str, _OrderCheck] = {}
        batches: dict[str, list[pa.RecordBatch]] = {}
        writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        exchange = ""
        rows = 0
        buffered = sort or dedupe
        try:
            for exchange, symbol, batch, first_row in reader:
                check = checks.setdefault(symbol, _OrderCheck())
                check.update(batch, first_row)
                rows += batch.num_rows
                if buffered:
                    batches.setdefault(symbol, []).append(batch)
                    continue
                if check.unsorted:
                    raise ValueError(
                        f"{path}: row {check.first_unsorted}: time goes backwards ({check.describe_unsorted()}; "
                        f"rows must be in time order); import with --sort to sort the file and report how many "
                        f"rows moved")
                if check.repeats:
                    raise ValueError(
                        f"{path}: row {check.first_repeat}: repeats the row before it; import with "
                        f"--dedupe to drop repeated rows and report how many")
                self._write_by_day(batch, writers, tmp, schema, symbol)
        finally:
            for writer in writers.values():
                writer.close()
        if rows == 0:
            raise ValueError(f"{path}: no rows in the file")
        symbols = sorted(checks)
        label = symbols[0] if len(symbols) == 1 else f"{len(symbols)} symbols"
        report = ImportReport(str(path), exchange or source, kind, label, rows)
        if buffered:
            report.rows = 0
            writers = {}
            try:
                for symbol in symbols:
                    check = checks[symbol]
                    table = pa.Table.from_batches(batches[symbol], schema=schema)
                    if check.unsorted and not sort:
                        raise ValueError(f"{path}: row {check.first_unsorted}: time goes backwards; import with --sort")
                    if check.unsorted:
                        order = pc.sort_indices(table, sort_keys=[("ts", "ascending")])  # stable
                        table = table.take(order)
                        report.sorted_rows += check.unsorted
                    if dedupe:
                        before = table.num_rows
                        table = _drop_repeats(table)
                        report.duplicates_dropped += before - table.num_rows
                    elif _count_repeats(table):
                        raise ValueError(f"{path}: {_count_repeats(table)} row(s) repeat the row before them; "
                                         f"import with --dedupe")
                    report.rows += table.num_rows
                    for batch in table.to_batches(max_chunksize=1 << 20):
                        self._write_by_day(batch, writers, tmp, schema, symbol)
            finally:
                for writer in writers.values():
                    writer.close()
        staged = []
        for f in sorted(tmp.glob("*.parquet")):
            symbol, day = f.stem.rsplit("@", 1)
            final = (self.root / f"source={_safe(report.source)}" / f"kind={kind}" / f"symbol={symbol}"
                     / f"date={day}" / f"{_import_name(path, source)}.parquet")
            staged.append((f, final))
        return report, staged

    @staticmethod
    def _write_by_day(batch: pa.RecordBatch, writers: dict[tuple[str, str], pq.ParquetWriter], tmp: Path,
                      schema: pa.Schema, symbol: str) -> None:
        days = (batch.column("ts").cast(pa.int64()).to_numpy() // NS_PER_DAY)
        unique = np.unique(days)
        for day in unique:
            part = batch.filter(pa.array(days == day)) if len(unique) > 1 else batch
            name = (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()
            key = (symbol, name)
            if key not in writers:
                writers[key] = pq.ParquetWriter(tmp / f"{_safe(symbol)}@{name}.parquet", schema, compression="zstd")
            writers[key].write_batch(part)

    # ------------------------------------------------------------------- query
    def files(self, source: str | None = None, kind: str | None = None,
              symbol: str | None = None) -> list[Path]:
        """The Parquet files of the catalog, optionally filtered by partition."""
        pattern = (f"source={_safe(source) if source else '*'}/kind={kind or '*'}/"
                   f"symbol={_safe(symbol) if symbol else '*'}/date=*/*.parquet")
        return sorted(self.root.glob(pattern))

    def list(self) -> list[dict]:
        """One row per source, kind, symbol and date: rows, time span, bytes on disk."""
        out = []
        for f in self.files():
            parts = dict(p.split("=", 1) for p in f.relative_to(self.root).parts[:-1])
            meta = pq.ParquetFile(f).metadata
            lo = hi = None
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(0).statistics
                if stats is not None and stats.has_min_max:
                    lo = stats.min if lo is None or stats.min < lo else lo
                    hi = stats.max if hi is None or stats.max > hi else hi
            out.append({**parts, "file": f.name, "rows": meta.num_rows, "first": lo, "last": hi,
                        "bytes": f.stat().st_size})
        return out

    def read(self, kind: str, source: str, symbol: str, start: str | None = None,
             end: str | None = None) -> pa.Table:
        """Rows of one kind, source and symbol, in time order, optionally within ``[start, end)``.

        Raises
        ------
        ValueError
            Nothing in the catalog for that kind, source and symbol (lists what there is).
        """
        files = self.files(source, kind, symbol)
        if not files:
            have = sorted({(r["source"], r["symbol"]) for r in self.list() if r["kind"] == kind})
            raise ValueError(f"catalog {self.root}: no {kind} for source {source!r} symbol {symbol!r}; "
                             f"have: {', '.join(f'{s}/{y}' for s, y in have) or 'nothing'}")
        table = pq.read_table(files, schema=KINDS[kind], partitioning=None)
        if start is not None or end is not None:
            ts = table.column("ts")
            mask = None
            if start is not None:
                mask = pc.greater_equal(ts, pa.scalar(_ts(start), pa.timestamp("ns", tz="UTC")))
            if end is not None:
                upper = pc.less(ts, pa.scalar(_ts(end), pa.timestamp("ns", tz="UTC")))
                mask = upper if mask is None else pc.and_(mask, upper)
            table = table.filter(mask)
        if len(files) > 1:
            table = table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))
        return table

    def read_trades(self, source: str, symbol: str, start: str | None = None,
                    end: str | None = None) -> pa.Table:
        """Trades of one source and symbol (see :meth:`read`)."""
        return self.read("trades", source, symbol, start, end)

    def arrays(self, source: str, symbol: str, start: str | None = None,
               end: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The engine's arrays of one source and symbol: ts (int64 ns), price, qty."""
        table = self.read_trades(source, symbol, start, end).combine_chunks()
        return (table.column("ts").cast(pa.int64()).to_numpy(), table.column("price").to_numpy(),
                table.column("qty").to_numpy())

    def tape(self, source: str, symbol: str, start: str | None = None, end: str | None = None,
             stream: tuple[str, str, str] | None = None):
        """A validated :class:`riskengine.Tape` of one source and symbol; ``stream`` =
        ``(kind, source, symbol)`` attaches a mark/index stream aligned as of each trade."""
        from riskengine.scenario import Tape

        tape = Tape.from_arrays(*self.arrays(source, symbol, start, end))
        if stream is not None:
            s = self.read(*stream).combine_chunks()
            tape = tape.with_stream(s.column("ts").cast(pa.int64()).to_numpy(), s.column("price").to_numpy())
        return tape


def _ts(text: str) -> int:
    from riskengine.config import utc_ns

    return utc_ns(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))


def _repeat_mask(table: pa.Table) -> np.ndarray:
    same = np.zeros(table.num_rows, dtype=bool)
    if table.num_rows < 2:
        return same
    same[1:] = True
    for name in table.column_names:
        col = table.column(name)
        values = (col.cast(pa.int64()) if name == "ts" else col).to_numpy(zero_copy_only=False)
        same[1:] &= values[1:] == values[:-1]
    return same


def _count_repeats(table: pa.Table) -> int:
    return int(_repeat_mask(table).sum())


def _drop_repeats(table: pa.Table) -> pa.Table:
    return table.filter(pa.array(~_repeat_mask(table)))
