"""The local Parquet tick catalog.

Layout: ``ROOT/source=<source>/kind=<kind>/symbol=<symbol>/date=<YYYY-MM-DD>/data.parquet``: one
Parquet file per partition (source, kind, symbol and UTC day) holding its rows in time order;
its metadata names the files imported into it and their format.

The catalog never holds a trade twice, whatever a file is called. Importing a file merges its
rows into each partition it touches (:func:`_merge`):

* rows with a trade id: by id. A held id adds nothing; the same id with other values is refused.
* rows without one (streams, depth, tickers, tapes of venues without ids): as a multiset of rows,
  at each time separately, counting repeats (real tapes hold genuinely identical trades). Where
  the file's rows at a time are a sub-multiset of the held ones, nothing is added; where they
  extend them, only the surplus copies are; rows at times the partition does not hold are
  added. Otherwise the two files disagree and the import is refused.

``replace=True`` instead makes each partition a file touches hold exactly that file's rows.
Mixing two forms of the same data in one partition (Binance ``aggTrades`` and ``trades``,
another importer's file) is refused, as it would count trades twice.

A command's files are imported all or nothing: everything is staged in ``ROOT/.tmp/<id>``, a
commit plan is written, then renamed into place; a crash before the plan leaves the catalog as
it was, a crash after it is finished by the next use of the catalog. Imports take a lock
(``ROOT/.lock``, released by the system when a process dies): a second one is refused.

Partitions written before this layout (one Parquet file per imported file) are merged when
read, by the same rules; one whose files cannot be merged is refused, naming them.

The importer checks the order of times and repeated rows while streaming. Sorting and
de-duplication are explicit options (they need the file in memory) and the report says what
they changed; nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from riskengine.data import binance, hyperliquid, tardis
from riskengine.data.schema import KINDS
from riskengine.files import check_writable_dir, exclusive_lock, write_atomic

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
    ("binance-vision", "funding"): binance.read_funding_rate,
    ("hyperliquid", "trades"): lambda path: hyperliquid.read(path, "trades"),
    ("hyperliquid", "events"): lambda path: hyperliquid.read(path, "events"),
    ("hyperliquid", "node-trades"): hyperliquid.read_node_trades,
    ("hyperliquid", "asset-ctxs"): hyperliquid.read_asset_ctxs,
    ("hyperliquid", "l2book"): hyperliquid.read_l2book,
    ("hyperliquid", "funding-history"): hyperliquid.read_funding_history,
}
#: the catalog kind (schema) a source kind is stored as, where the names differ
STORED_AS = {"agg-trades": "trades", "node-trades": "trades", "asset-ctxs": "ticker", "l2book": "depth",
             "funding-history": "funding", **tardis.STORED_AS}
#: the kind a file holds when none is given (None: cannot tell)
KIND_OF = {"tardis": tardis.kind_of, "binance-vision": binance.kind_of,
           "hyperliquid": hyperliquid.kind_of}
#: file formats and the kinds each can hold
SOURCES = {source: tuple(k for s, k in READERS if s == source) for source, _ in READERS}
#: the one file of a partition
PARTITION_FILE = "data.parquet"
#: Parquet metadata of a partition file: the files imported into it (JSON list) and their format
#: (``source:kind``, e.g. ``binance-vision:agg-trades``)
IMPORTED_KEY, FORMAT_KEY = b"riskengine.imported", b"riskengine.format"
TMP, LOCK, PLAN = ".tmp", ".lock", "commit.json"
#: a time argument: ISO text, a datetime (pandas.Timestamp included; naive = UTC) or numpy.datetime64
TimeLike = str | dt.date | np.datetime64
#: the files each source reads (for ``riskengine data import --help``)
FILE_TYPES = {"tardis": tardis.FILE_TYPES, "binance-vision": binance.FILE_TYPES, "hyperliquid": hyperliquid.FILE_TYPES}


@dataclass
class ImportReport:
    """What one import did."""

    path: str
    source: str
    kind: str
    symbol: str
    rows: int = 0  #: rows read from the file (after ``sort``/``dedupe``)
    files: list[str] = field(default_factory=list)  #: the partition files it went to
    sorted_rows: int = 0  #: rows that were out of time order (with ``sort=True``)
    duplicates_dropped: int = 0  #: rows dropped as repeats (with ``dedupe=True``)
    added: int = 0  #: rows the catalog did not hold before (the rest it held already)

    def describe(self) -> str:
        text = f"{self.path}: {self.rows:,} {self.kind} rows -> {self.source}/{self.symbol} ({len(self.files)} file(s))"
        if self.added != self.rows:
            text += f"; {self.added:,} new ({self.rows - self.added:,} already in the catalog)"
        if self.sorted_rows:
            text += f"; sorted {self.sorted_rows:,} rows that were out of time order"
        if self.duplicates_dropped:
            text += f"; dropped {self.duplicates_dropped:,} repeated rows"
        return text


def _import_name(path: Path, source: str) -> str:
    """The name a partition records for an imported file: its file name; for Hyperliquid's
    hourly archives (``.../20251010/21.lz4``, ``.../20251010/21/l2Book/BTC.lz4``) prefixed with
    the date and hour folders, which alone tell one hour's file from another's."""
    if source == "hyperliquid":
        return "/".join([p for p in path.parent.parts[-3:] if p.isdigit()] + [path.name])
    return path.name


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


class _Conflict(ValueError):
    """Rows that cannot be merged: ``detail`` says what is held (``other rows at T``, ``trade id
    'X' with other values``), ``why`` why that is a refusal; ``within``: two rows of the new
    file itself disagree (replacing the partition would not help)."""

    def __init__(self, detail: str, why: str = "", within: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.why, self.within = detail, why, within


@dataclass
class _Partition:
    """A partition during an import: where its rows are now (``current``: a staged file; None:
    as on disk, or nothing with ``replace``), the files imported into it and their format."""

    folder: Path
    names: list[str]
    format: str | None
    current: Path | None = None
    fresh: bool = False  #: holds nothing (new, or replaced): the disk's rows are not read
    changed: bool = False


class Catalog:
    """A local Parquet tick catalog rooted at ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ import
    def import_file(self, path: str | os.PathLike, source: str = "tardis", kind: str | None = None,
                    sort: bool = False, dedupe: bool = False, replace: bool = False) -> ImportReport:
        """Import one file (see :meth:`import_files`)."""
        return self.import_files([path], source, kind, sort, dedupe, replace)[0]

    def import_files(self, paths: Iterable[str | os.PathLike], source: str = "tardis", kind: str | None = None,
                     sort: bool = False, dedupe: bool = False, replace: bool = False,
                     progress: Callable[[str], None] | None = None) -> list[ImportReport]:
        """Import files, all or nothing, merging their rows into what the catalog holds.

        Parameters
        ----------
        paths : path-likes
            The files (``.csv``, ``.csv.gz``, Binance Vision ``.zip``, Hyperliquid ``.lz4`` or
            JSON lines), imported in this order.
        source : {"tardis", "binance-vision", "hyperliquid"}
            Their format.
        kind : str, optional
            What they hold (see :data:`SOURCES`; by default from the archive folder or file name).
        sort, dedupe : bool
            Sort rows by time / drop rows equal to the row before them, and report how many.
            Without them, such rows are an error naming the first one.
        replace : bool
            Each partition the files touch holds exactly their rows afterwards (what it held
            before is dropped); without it, rows are merged (module docstring).
        progress : callable, optional
            Called with ``[k/n] FILE ...`` as each file starts.

        Raises
        ------
        ValueError
            One line naming the file, the row or partition and what was expected; the catalog
            is unchanged. Also: a catalog folder that cannot be written, another import running.
        """
        paths = [Path(p) for p in paths]
        kinds = [self._kind_of(path, source, kind) for path in paths]
        check_writable_dir(self.root, f"catalog {self.root}")
        with self._import_lock():
            self._recover(abandoned=True)
            txn = self.root / TMP / uuid.uuid4().hex
            txn.mkdir(parents=True)
            try:
                parts: dict[Path, _Partition] = {}
                reports = []
                for k, (path, file_kind) in enumerate(zip(paths, kinds)):
                    if progress is not None:
                        progress(f"[{k + 1}/{len(paths)}] {path} ...")
                    folder = txn / f"file{k}"
                    folder.mkdir()
                    report, staged = self._stage(path, source, file_kind, sort, dedupe, folder)
                    for staged_file, partition in staged:
                        self._merge_into(parts, partition, staged_file, path, report, replace, txn)
                    reports.append(report)
                self._commit(txn, [p for p in parts.values() if p.changed])
            finally:
                if not (txn / PLAN).exists():  # a commit that began (Ctrl-C in it) is finished by _recover
                    shutil.rmtree(txn, ignore_errors=True)
        return reports

    @staticmethod
    def _kind_of(path: Path, source: str, kind: str | None) -> str:
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
        return kind

    def _stage(self, path: Path, source: str, kind: str, sort: bool, dedupe: bool,
               tmp: Path) -> tuple[ImportReport, list[tuple[Path, Path]]]:
        """Read and check a file into ``tmp``, one Parquet file per symbol and day (in the
        partition schema, naming this file); returns the report and (staged file, partition)."""
        reader = READERS[source, kind](path)
        file_format = f"{source}:{kind}"
        kind = STORED_AS.get(kind, kind)
        schema = KINDS[kind].with_metadata({IMPORTED_KEY: json.dumps([_import_name(path, source)]),
                                            FORMAT_KEY: file_format})
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
                    table = pa.Table.from_batches(batches[symbol], schema=KINDS[kind])
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
            staged.append((f, self.root / f"source={_safe(report.source)}" / f"kind={kind}" / f"symbol={symbol}"
                           / f"date={day}"))
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

    def _merge_into(self, parts: dict[Path, _Partition], folder: Path, staged: Path, path: Path,
                    report: ImportReport, replace: bool, txn: Path) -> None:
        """Merge one staged file into its partition's rows as of this import (:func:`_merge`)."""
        part = parts.get(folder)
        if part is None:
            on_disk = sorted(folder.glob("*.parquet"))
            if replace or not on_disk:
                part = _Partition(folder, [], None, fresh=True)
            else:
                names, formats = zip(*(_provenance(f) for f in on_disk))
                known = [f for f in formats if f is not None]
                part = _Partition(folder, [n for group in names for n in group], known[0] if known else None)
            parts[folder] = part
        new_meta = pq.read_schema(staged).metadata
        (name,), new_format = json.loads(new_meta[IMPORTED_KEY]), new_meta[FORMAT_KEY].decode()
        label = self._label(folder)
        if part.format is not None and part.format != new_format:
            raise ValueError(
                f"{path}: partition {label} holds {part.format.replace(':', ' ')} rows (from {', '.join(part.names)}) "
                f"and this file {new_format.replace(':', ' ')} rows: the same trades in two forms would count "
                f"twice; import with --replace to replace the partition's rows with this file's")
        if part.fresh and part.current is None and _unique_ids(staged):  # nothing held: the staged file is it
            report.added += pq.read_metadata(staged).num_rows
            report.files.append(str(folder / PARTITION_FILE))
            part.names, part.format, part.current, part.changed = [name], new_format, staged, True
            return
        new = pq.read_table(staged)
        held = None
        if part.current is not None:
            held = pq.read_table(part.current)
        elif not part.fresh:
            held = self._read_partition(folder, KINDS[folder.parent.parent.name.split("=", 1)[1]])
        try:
            merged, added = _merge(held, new)
        except _Conflict as exc:
            if exc.within:
                raise ValueError(f"{path}: {exc.detail}") from None
            raise ValueError(f"{path}: partition {label} holds {exc.detail} (from {', '.join(part.names)}){exc.why}; "
                             f"import with --replace to replace the partition's rows with this file's") from None
        report.added += added
        report.files.append(str(folder / PARTITION_FILE))
        if added == 0 and name in part.names:
            return
        part.names = part.names + [name] if name not in part.names else part.names
        part.format, part.changed = new_format, True
        if merged is new:  # nothing held, nothing dropped: the staged file is the partition
            part.current = staged
            return
        part.current = txn / f"merged-{uuid.uuid4().hex[:8]}.parquet"
        pq.write_table(merged.replace_schema_metadata({IMPORTED_KEY: json.dumps(part.names), FORMAT_KEY: new_format}),
                       part.current, compression="zstd")

    def _commit(self, txn: Path, parts: list[_Partition]) -> None:
        """Put the changed partitions in place, all or none: the plan is written (synced) before
        the first rename, and :meth:`_recover` finishes it after a crash."""
        moves, removals = [], []
        for part in parts:
            _sync(part.current)
            moves.append([_rel(part.current, self.root), _rel(part.folder / PARTITION_FILE, self.root)])
            removals += [_rel(f, self.root) for f in part.folder.glob("*.parquet") if f.name != PARTITION_FILE]
        if not moves:
            return

        text = json.dumps({"move": moves, "remove": removals})
        write_atomic(txn / PLAN, lambda p: _write_synced(p, text))
        self._apply(txn)

    def _apply(self, txn: Path) -> None:
        """Carry out a commit plan; every step may already be done (a crash, another process)."""
        plan = json.loads((txn / PLAN).read_text())
        for rel in plan["remove"]:
            (self.root / rel).unlink(missing_ok=True)
        for staged, final in plan["move"]:
            (self.root / final).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # moved already
                os.replace(self.root / staged, self.root / final)
        shutil.rmtree(txn, ignore_errors=True)

    def _recover(self, abandoned: bool = False) -> None:
        """Finish the commits a crash interrupted; ``abandoned`` (only under the import lock, so
        that no live import is touched): remove staging that never reached its commit."""
        tmp = self.root / TMP
        if not tmp.is_dir():
            return
        for txn in sorted(tmp.iterdir()):
            if (txn / PLAN).is_file():
                try:
                    self._apply(txn)
                except OSError as exc:
                    raise ValueError(f"catalog {self.root}: an import was interrupted while committing and cannot be "
                                     f"finished here ({exc.strerror or exc}); run `riskengine data list --catalog "
                                     f"{self.root}` where the catalog can be written") from None
            elif abandoned:
                shutil.rmtree(txn, ignore_errors=True)

    @contextlib.contextmanager
    def _import_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.root / LOCK,
                            lambda holder: f"catalog {self.root}: another import into it is running; try again "
                                           f"when it has finished",
                            lambda reason: f"catalog {self.root}: cannot create its lock file: {reason}"):
            yield

    def _label(self, folder: Path) -> str:
        """``source/kind/symbol/date`` of a partition folder."""
        return "/".join(p.split("=", 1)[1] for p in folder.relative_to(self.root).parts)

    def _read_partition(self, folder: Path, schema: pa.Schema) -> pa.Table:
        """A partition's rows. Several files (as written before one file per partition): merged
        in name order by the import rules, or refused."""
        files = sorted(folder.glob("*.parquet"))
        table = pq.read_table(files[0], schema=schema, partitioning=None)
        for f in files[1:]:
            try:
                table, _ = _merge(table, pq.read_table(f, schema=schema, partitioning=None))
            except _Conflict as exc:
                raise ValueError(
                    f"catalog {self.root}: partition {self._label(folder)} was written by an older riskengine as "
                    f"{len(files)} files ({', '.join(f.name for f in files)}) that hold {exc.detail}{exc.why}; "
                    f"re-import the files it came from with `riskengine data import --replace`") from None
        return table

    # ------------------------------------------------------------------- query
    def _require(self) -> None:
        """Refuse a catalog folder that is not there; finish an interrupted commit."""
        if not self.root.exists():
            raise ValueError(f"catalog {self.root}: no such folder")
        if not self.root.is_dir():
            raise ValueError(f"catalog {self.root}: not a folder")
        self._recover()

    def files(self, source: str | None = None, kind: str | None = None,
              symbol: str | None = None) -> list[Path]:
        """The Parquet files of the catalog, optionally filtered by partition."""
        pattern = (f"source={_safe(source) if source else '*'}/kind={kind or '*'}/"
                   f"symbol={_safe(symbol) if symbol else '*'}/date=*/*.parquet")
        return sorted(self.root.glob(pattern))

    def holds_file(self, source: str, symbol: str, name: str) -> bool:
        """Whether a file called ``name`` was imported for this source and symbol."""
        old = f"{_safe(_stem(Path(name)))}.parquet"  # the name a file had before one file per partition
        return any(name in names or old in names for names, _ in map(_provenance, self.files(source, None, symbol)))

    def list(self) -> list[dict]:
        """One row per source, kind, symbol and date (per file where a partition has several,
        as written before one file per partition): rows, time span, bytes on disk, the files
        imported into it.

        Raises
        ------
        ValueError
            The catalog folder is not there.
        """
        self._require()
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
                        "bytes": f.stat().st_size, "imported": _provenance(f)[0]})
        return out

    def read(self, kind: str, source: str, symbol: str, start: TimeLike | None = None,
             end: TimeLike | None = None) -> pa.Table:
        """Rows of one kind, source and symbol, in time order, optionally within ``[start, end)``
        (times as in :meth:`tape`).

        Raises
        ------
        ValueError
            The catalog folder is not there; nothing in it for that kind, source and symbol
            (lists what there is); an old partition whose files cannot be merged.
        """
        self._require()
        files = self.files(source, kind, symbol)
        if not files:
            have = sorted({(r["source"], r["symbol"]) for r in self.list() if r["kind"] == kind})
            raise ValueError(f"catalog {self.root}: no {kind} for source {source!r} symbol {symbol!r}; "
                             f"have: {', '.join(f'{s}/{y}' for s, y in have) or 'nothing'}")
        lo = None if start is None else _ts(start, "start")
        hi = None if end is None else _ts(end, "end")
        folders: dict[Path, list[Path]] = {}
        for f in files:
            folders.setdefault(f.parent, []).append(f)
        single = [fs[0] for fs in folders.values() if len(fs) == 1]
        tables = [pq.read_table(single, schema=KINDS[kind], partitioning=None)] if single else []
        tables += [self._read_partition(folder, KINDS[kind]) for folder, fs in folders.items() if len(fs) > 1]
        table = pa.concat_tables(tables)
        if lo is not None or hi is not None:
            ts = table.column("ts")
            mask = None
            if lo is not None:
                mask = pc.greater_equal(ts, pa.scalar(lo, pa.timestamp("ns", tz="UTC")))
            if hi is not None:
                upper = pc.less(ts, pa.scalar(hi, pa.timestamp("ns", tz="UTC")))
                mask = upper if mask is None else pc.and_(mask, upper)
            table = table.filter(mask)
        if len(folders) > 1:
            table = table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))
        return table

    def read_trades(self, source: str, symbol: str, start: TimeLike | None = None,
                    end: TimeLike | None = None) -> pa.Table:
        """Trades of one source and symbol (see :meth:`read`)."""
        return self.read("trades", source, symbol, start, end)

    def arrays(self, source: str, symbol: str, start: TimeLike | None = None,
               end: TimeLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The engine's arrays of one source and symbol: ts (int64 ns), price, qty."""
        table = self.read_trades(source, symbol, start, end).combine_chunks()
        return (table.column("ts").cast(pa.int64()).to_numpy(), table.column("price").to_numpy(),
                table.column("qty").to_numpy())

    def tape(self, source: str, symbol: str, start: TimeLike | None = None, end: TimeLike | None = None,
             stream: tuple[str, str, str] | None = None):
        """A validated :class:`riskengine.Tape` of one source and symbol; ``stream`` =
        ``(kind, source, symbol)`` attaches a mark/index stream aligned as of each trade.

        ``start`` / ``end`` (the window ``[start, end)``): ISO text (``2025-10-10T20:00:00Z``), a
        ``datetime`` or ``pandas.Timestamp`` (timezone-aware: converted to UTC; naive: taken as
        UTC) or a ``numpy.datetime64`` (UTC, as numpy has no timezones)."""
        from riskengine.scenario import Tape

        tape = Tape.from_arrays(*self.arrays(source, symbol, start, end))
        if stream is not None:
            s = self.read(*stream).combine_chunks()
            tape = tape.with_stream(s.column("ts").cast(pa.int64()).to_numpy(), s.column("price").to_numpy())
        return tape


def _ts(value: TimeLike, what: str) -> int:
    """UTC nanoseconds of a time argument (naive: UTC)."""
    stamp = None
    if isinstance(value, (str, dt.date, np.datetime64)):
        with contextlib.suppress(ValueError, TypeError):
            stamp = pd.Timestamp(value)
    if stamp is None or pd.isna(stamp):
        raise ValueError(f"{what}: expected an ISO time text, datetime, pandas.Timestamp or numpy.datetime64 "
                         f"(got {value!r})")
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).value


def _provenance(f: Path) -> tuple[list[str], str | None]:
    """The files imported into a partition file, and their format; a file written before one
    file per partition stands for one imported file, of unknown format."""
    meta = pq.read_schema(f).metadata or {}
    if IMPORTED_KEY in meta:
        return json.loads(meta[IMPORTED_KEY]), meta[FORMAT_KEY].decode()
    return [f.name], None


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


# ------------------------------------------------------------------------------- merging
def _has_id(table: pa.Table) -> np.ndarray:
    """Rows with a trade id (an empty id, as Tardis gives for venues without ids, is none)."""
    if "trade_id" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    ids = table.column("trade_id")
    return pc.fill_null(pc.not_equal(ids, ""), False).to_numpy(zero_copy_only=False)


def _frame(table: pa.Table) -> pd.DataFrame:
    """Rows as a DataFrame with ``ts`` as int64 nanoseconds (nulls as NaN/None)."""
    return table.set_column(0, "ts", table.column("ts").cast(pa.int64())).to_pandas()


def _unique_ids(path: Path) -> bool:
    """Whether a file of rows has no trade id twice (reading only the ids)."""
    if "trade_id" not in pq.read_schema(path).names:
        return True
    _, ids = _sorted(pq.read_table(path, columns=["trade_id"]).column("trade_id").combine_chunks())
    return len(ids) < 2 or not pc.any(pc.equal(ids[1:], ids[:-1])).as_py()


def _utc(ns: int) -> str:
    return pd.Timestamp(int(ns), unit="ns").isoformat()


def _merge(held: pa.Table | None, new: pa.Table) -> tuple[pa.Table, int]:
    """``held`` and the rows of ``new`` it does not hold, in time order, and how many those are.

    Rows with a trade id are merged by id; rows without one as a multiset, at each time
    separately: where the new rows at a time are a sub-multiset of the held ones nothing is
    added, where they extend them only the surplus copies are, and otherwise :class:`_Conflict`.
    ``new`` is returned itself when nothing is held and nothing dropped.
    """
    keep = np.zeros(new.num_rows, dtype=bool)
    new_id = _has_id(new)
    held_id = _has_id(held) if held is not None else np.zeros(0, dtype=bool)
    values = [c for c in new.column_names if c != "trade_id"]
    rows = np.flatnonzero(new_id)
    if len(rows):
        ids = new.column("trade_id").take(rows).combine_chunks()
        first = _first_of_each_id(ids, new, rows, values)
        held_with_id = np.flatnonzero(held_id)
        if len(held_with_id):
            pairs = _equal_pairs(held.column("trade_id").take(held_with_id).combine_chunks(), ids.take(first))
            if len(pairs):
                held_at, new_at = held_with_id[pairs[:, 0]], first[pairs[:, 1]]
                same = _same(new, rows[new_at], held, held_at, values)
                if not same.all():
                    raise _Conflict(f"trade id {ids[int(new_at[~same][0])].as_py()!r} with other values")
                first = np.setdiff1d(first, new_at, assume_unique=True)
        keep[rows[first]] = True
    rows = np.flatnonzero(~new_id)
    if len(rows):
        new_ts = new.column("ts").cast(pa.int64()).to_numpy()[rows]
        if held is not None:
            held_without_id = np.flatnonzero(~held_id)
            held_ts = held.column("ts").cast(pa.int64()).to_numpy()[held_without_id]
            shared = np.isin(new_ts, held_ts)
        else:
            shared = np.zeros(len(rows), dtype=bool)
        keep[rows[~shared]] = True  # times the partition does not hold
        if shared.any():
            keep[_surplus(held, held_without_id[np.isin(held_ts, new_ts[shared])], new, rows[shared])] = True
    if held is None and keep.all():
        return new, new.num_rows
    added = new.filter(pa.array(keep))
    if held is None or added.num_rows == 0:
        return (added if held is None else held), added.num_rows
    merged = pa.concat_tables([held, added.cast(held.schema)])
    return merged.take(pc.sort_indices(merged, sort_keys=[("ts", "ascending")])), added.num_rows  # stable


def _first_of_each_id(ids: pa.Array, table: pa.Table, rows: np.ndarray, values: list[str]) -> np.ndarray:
    """Positions in ``ids`` (the ids of ``table``'s ``rows``) of each id's first row. An id
    twice with the same values is one trade; with other values, :class:`_Conflict`."""
    order, sorted_ids = _sorted(ids)
    new_id = np.ones(len(ids), dtype=bool)
    new_id[1:] = ~pc.equal(sorted_ids[1:], sorted_ids[:-1]).to_numpy(zero_copy_only=False)
    if new_id.all():
        return np.arange(len(ids))
    first_of_id = np.empty(len(ids), dtype=np.int64)
    first_of_id[order] = order[np.flatnonzero(new_id)][np.cumsum(new_id) - 1]  # stable: the earliest row
    repeat = np.flatnonzero(first_of_id != np.arange(len(ids)))
    differ = repeat[~_same(table, rows[repeat], table, rows[first_of_id[repeat]], values)]
    if len(differ):
        raise _Conflict(f"trade id {ids[int(differ[0])].as_py()!r} appears twice with different values", within=True)
    return np.flatnonzero(first_of_id == np.arange(len(ids)))


def _equal_pairs(held_ids: pa.Array, new_ids: pa.Array) -> np.ndarray:
    """(held position, new position) of each id in both (each unique on its side)."""
    order, both = _sorted(pa.concat_arrays([held_ids, new_ids]))
    at = np.flatnonzero(pc.equal(both[1:], both[:-1]).to_numpy(zero_copy_only=False))
    pairs = np.stack([order[at], order[at + 1]], axis=1)  # stable sort: the held one first
    pairs = pairs[(pairs[:, 0] < len(held_ids)) & (pairs[:, 1] >= len(held_ids))]
    pairs[:, 1] -= len(held_ids)
    return pairs


def _sorted(ids: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """A stable sort of ids (lighter in memory than a hash table of millions of strings)."""
    order = pc.sort_indices(ids).to_numpy()
    return order, ids.take(order)


def _same(a: pa.Table, a_rows: np.ndarray, b: pa.Table, b_rows: np.ndarray, columns: list[str]) -> np.ndarray:
    """Whether row ``a_rows[i]`` of ``a`` and ``b_rows[i]`` of ``b`` hold the same values in
    ``columns`` (nulls equal), a column at a time (a re-import compares every row)."""
    same = np.ones(len(a_rows), dtype=bool)
    for c in columns:
        x, y = a.column(c).take(a_rows), b.column(c).take(b_rows)
        equal = pc.or_(pc.fill_null(pc.equal(x, y), False), pc.and_(pc.is_null(x), pc.is_null(y)))
        same &= equal.to_numpy(zero_copy_only=False)
    return same


def _surplus(held: pa.Table, held_rows: np.ndarray, new: pa.Table, new_rows: np.ndarray) -> np.ndarray:
    """The rows of ``new`` (among ``new_rows``) that are copies beyond what ``held`` (at
    ``held_rows``, the same times) holds of each value; :class:`_Conflict` at a time where each
    side has a value more often than the other."""
    values = [c for c in new.column_names if c != "trade_id"]  # (all empty or null here)
    frame = pd.concat([_frame(held.select(values).take(held_rows)), _frame(new.select(values).take(new_rows))],
                      ignore_index=True)
    group = frame.groupby(values, dropna=False, sort=False).ngroup().to_numpy()
    held_group, new_group = group[:len(held_rows)], group[len(held_rows):]
    held_count = np.bincount(held_group, minlength=group.max() + 1)
    new_count = np.bincount(new_group, minlength=group.max() + 1)
    group_ts = np.empty(len(held_count), dtype=np.int64)
    group_ts[group] = frame["ts"].to_numpy()
    both = np.intersect1d(group_ts[new_count > held_count], group_ts[held_count > new_count])
    if len(both):
        raise _Conflict(f"other rows at {_utc(both[0])}", " and neither file's rows there contain the other's "
                                                          "(rows without a trade id cannot be merged)")
    copy = pd.Series(new_group).groupby(new_group).cumcount().to_numpy()  # 0 for a value's first copy
    return new_rows[copy >= held_count[new_group]]


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
