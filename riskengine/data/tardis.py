"""Tardis CSV importers: ``trades``, ``liquidations``, ``derivative_ticker`` and
``book_snapshot_25`` / ``book_snapshot_5``.

Format: Tardis "Downloadable CSV files", https://docs.tardis.dev/downloadable-csv-files/data-types
(summarised in ../shared/data/README.md "Public formats"): one file per exchange, data type, day
and symbol (``{exchange}/{type}/{YYYY}/{MM}/{DD}/{SYMBOL}.csv.gz`` on the datasets API, or
``{exchange}_{type}_{YYYY-MM-DD}_{SYMBOL}.csv.gz`` as the Tardis clients name downloads), gzip or
plain, comma separated, a header row, times in microseconds since the epoch (UTC).

* ``trades`` -> catalog kind ``trades``; ``liquidations`` (the same columns; ``side`` is the side
  of the liquidation order, ``sell`` = a long was liquidated) -> ``events``.
* ``derivative_ticker`` -> ``ticker`` (empty cells stay null).
* ``book_snapshot_25`` / ``book_snapshot_5`` (``asks[i].price,asks[i].amount,bids[i].price,
  bids[i].amount`` for each level ``i`` from the best outward; empty where the book is thinner)
  -> ``depth``: per snapshot, one row per level with its distance from mid in percent and the
  cumulative size and notional from the best level out to it.

Binance COIN-M perps (``binance-delivery``, ``*USD_PERP``) count sizes in contracts of a fixed
USD face: they are converted to base units (face / price) everywhere.

Files are read in blocks with Arrow's streaming CSV reader, so memory stays flat as the file
grows. Every problem is reported with the file, the row (1-based, counting the header as row 1)
and what was expected. Grouped files with several symbols (Tardis ``PERPETUALS`` ...) are split
by symbol.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from riskengine.data.schema import DEPTH, EVENTS, NOT_FINITE, TICKER, TRADES, coinm_face, shown

TRADES_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
TICKER_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp", "funding_rate",
                  "predicted_funding_rate", "open_interest", "last_price", "index_price", "mark_price")
BOOK_PREFIX = ("exchange", "symbol", "timestamp", "local_timestamp")
#: Tardis data type -> levels per side of its book snapshots
BOOK_LEVELS = {"book_snapshot_25": 25, "book_snapshot_5": 5}
#: the Tardis data types this module reads, and the catalog kind each is stored as
STORED_AS = {"trades": "trades", "liquidations": "events", "derivative_ticker": "ticker",
             "book_snapshot_25": "depth", "book_snapshot_5": "depth"}
BLOCK_BYTES = 8 << 20
#: the files this module reads
FILE_TYPES = ".csv, or gzipped .csv.gz"
_NAME_KIND = re.compile(r"_(" + "|".join(sorted(STORED_AS, key=len, reverse=True)) + r")_")
_DAY = re.compile(r"\d{4}/\d{2}/\d{2}")

Reader = Iterator[tuple[str, str, pa.RecordBatch, int]]


class ImportError_(ValueError):
    """A file that cannot be imported; the message names the file, row and expectation."""


def kind_of(path: str | Path) -> str:
    """The Tardis data type a path holds.

    From the datasets layout ``{exchange}/{type}/{YYYY}/{MM}/{DD}/{SYMBOL}.csv.gz``, else from a
    download name ``{exchange}_{type}_{date}_{SYMBOL}.csv.gz``, else from the nearest parent folder
    named after a data type; ``trades`` otherwise (trades and liquidations files have the same
    header, so the name is all there is to tell them apart).
    """
    parts = Path(path).parts
    if len(parts) >= 5 and _DAY.fullmatch("/".join(parts[-4:-1])) and parts[-5] in STORED_AS:
        return parts[-5]
    m = _NAME_KIND.search(Path(path).name)
    if m:
        return m.group(1)
    for part in reversed(parts[:-1]):
        if part in STORED_AS:
            return part
    return "trades"


def contract_face(exchange: str, symbol: str) -> float | None:
    """USD face of one contract when ``amount`` counts COIN-M contracts, else None."""
    return coinm_face(symbol) if exchange == "binance-delivery" else None


# ------------------------------------------------------------------------------ readers
def read_trades(path: str | Path, block_bytes: int = BLOCK_BYTES) -> Reader:
    """Stream a Tardis ``trades`` file as canonical record batches.

    Yields
    ------
    (exchange, symbol, batch, first_row)
        ``batch`` has the :data:`TRADES` schema; ``first_row`` is the file row of its first
        trade (the header is row 1).

    Raises
    ------
    ValueError
        Missing columns, a non-numeric or non-positive price, a negative size, an unknown side,
        a truncated gzip — naming the file and the first row affected.
    """
    return _read(Path(path), _FILLS, _trades, block_bytes)


def read_liquidations(path: str | Path, block_bytes: int = BLOCK_BYTES) -> Reader:
    """Stream a Tardis ``liquidations`` file as observed venue events.

    Same columns and checks as :func:`read_trades`. Each row becomes an :data:`EVENTS` row with
    ``kind="liquidation"``, the price, the size in base units (COIN-M contracts converted),
    ``notional = price * size``, ``trade_id = id`` and ``side`` = the side of the liquidation
    order (+1 buy: a short was liquidated, -1 sell: a long was; null for ``unknown``).
    ``method``, ``user`` and ``mark`` are null: Tardis does not give them.

    Yields
    ------
    (exchange, symbol, batch, first_row)
    """
    return _read(Path(path), _FILLS, _liquidations, block_bytes)


def read_derivative_ticker(path: str | Path, block_bytes: int = BLOCK_BYTES) -> Reader:
    """Stream a Tardis ``derivative_ticker`` file as :data:`TICKER` rows.

    Empty cells stay null. Prices that are present must be finite and > 0, funding rates
    finite, open interest finite and >= 0. ``funding_timestamp`` and ``local_timestamp`` are
    not kept.

    Open interest is stored in base units. For Binance COIN-M perps Tardis reports it in
    contracts, converted as ``contracts * face / price`` with the mark price of the row; a row
    without one uses the last mark price earlier in the file, else the row's index, else its
    last price, and the open interest stays null when none is known yet.

    Yields
    ------
    (exchange, symbol, batch, first_row)
    """
    return _read(Path(path), _TICKER, _ticker, block_bytes)


def read_book_snapshot(path: str | Path, levels: int | None = None, block_bytes: int = BLOCK_BYTES) -> Reader:
    """Stream a Tardis ``book_snapshot_25`` / ``book_snapshot_5`` file as :data:`DEPTH` rows.

    For each snapshot, ``mid = (best bid + best ask) / 2`` and one row per level present, in
    ascending ``pct`` (bids widest first, then asks): ``pct = (level price / mid - 1) * 100``
    (negative for bids), ``depth`` = cumulative size in base units from the best level out to
    this one (COIN-M contracts converted at the level's price), ``notional`` = cumulative
    price * size. Empty levels (a book thinner than the file's depth) are skipped.

    Parameters
    ----------
    levels : int, optional
        Levels per side to read; by default as many as the header has.

    Raises
    ------
    ValueError
        Bids not strictly descending, asks not strictly ascending, a crossed book (best bid >=
        best ask), a side without levels, a gap between levels, a price without a size (or the
        reverse), a price <= 0 or a size <= 0, naming the file and row.
    """
    path = Path(path)
    if levels is None:
        header = _header(path)
        levels = 1
        while f"asks[{levels}].price" in header:
            levels += 1
    return _read(path, _book_layout(levels), _depth, block_bytes)


# ------------------------------------------------------------------------------ layouts
@dataclass(frozen=True)
class _Layout:
    """What a data type's header must hold: ``kind`` and its documented ``header`` for messages,
    ``types`` = the columns read (all required) and their Arrow types."""

    kind: str
    header: tuple[str, ...]
    types: dict[str, pa.DataType]


_KEYS = {"exchange": pa.string(), "symbol": pa.string(), "timestamp": pa.int64()}
_FILLS = _Layout("trades", TRADES_COLUMNS, {**_KEYS, "id": pa.string(), "side": pa.string(),
                                            "price": pa.float64(), "amount": pa.float64()})
_TICKER = _Layout("derivative_ticker", TICKER_COLUMNS,
                  {**_KEYS, **{c: pa.float64() for c in TICKER_COLUMNS[5:]}})


def _book_columns(levels: int) -> list[str]:
    # the documented order: for each level from the best outward, ask price, ask size, bid price, bid size
    return [f"{side}[{i}].{what}" for i in range(levels) for side in ("asks", "bids") for what in ("price", "amount")]


def _book_layout(levels: int) -> _Layout:
    columns = _book_columns(levels)
    return _Layout(f"book_snapshot_{levels}", (*BOOK_PREFIX, *columns),
                   {**_KEYS, **{c: pa.float64() for c in columns}})


def _looks_like(header: list[str]) -> str:
    """What a header that misses columns seems to be instead (a hint for the message)."""
    have = set(header)
    if set(_FILLS.types) <= have:
        return "; the header is that of a Tardis trades or liquidations file"
    if set(_TICKER.types) <= have:
        return "; the header is that of a Tardis derivative_ticker file"
    if set(_book_layout(1).types) <= have:
        return "; the header is that of a Tardis book_snapshot file"
    if have & {"is_buyer_maker", "open_time", "percentage"}:
        return "; the header is that of a Binance Vision file (use source binance-vision)"
    if header and re.fullmatch(r"-?[\d.]+", header[0].strip()):
        return "; row 1 is not a header (Binance Vision files before 2022-08 have none)"
    return ""


def _expected(layout: _Layout) -> str:
    cols = layout.header
    return ",".join(cols) if len(cols) <= 16 else ",".join(cols[:8]) + ",...," + cols[-1]


# ------------------------------------------------------------------------------ streaming
def _open(path: Path):
    if path.suffix == ".gz":
        return pa.input_stream(str(path), compression="gzip")
    return pa.input_stream(str(path))


def _header(path: Path) -> list[str]:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="") as f:
            return next(csv.reader([f.readline().strip()]), [])  # quoted names too (CSV writers quote)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error):
        return []


def _locate(path: Path, column: str, value: str) -> int | None:
    """Row (1-based, header = 1) of the first cell of ``column`` equal to ``value`` (error path
    only: Arrow's conversion errors do not carry the row)."""
    header = _header(path)
    if column not in header:
        return None
    j = header.index(column)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        next(f, None)
        for row, line in enumerate(f, start=2):
            cells = line.rstrip("\r\n").split(",")
            if j < len(cells) and cells[j] == value:
                return row
    return None


def _arrow_problem(path: Path, exc: Exception) -> ImportError_:
    text = str(exc)
    m = re.search(r"column #(\d+).*?conversion error to (\w+): invalid value '([^']*)'", text, re.DOTALL)
    if m:
        header = _header(path)
        j = int(m.group(1))
        col = header[j] if j < len(header) else m.group(1)
        row = _locate(path, col, m.group(3))
        where = f"row {row}: " if row else ""
        return ImportError_(f"{path}: {where}column {col!r}: expected a number (got {m.group(3)!r})")
    if "gzip" in text.lower() or "compressed" in text.lower() or "truncated" in text.lower() or "inflate" in text.lower():
        return ImportError_(f"{path}: truncated or corrupt gzip file ({text.splitlines()[0]})")
    return ImportError_(f"{path}: not a readable Tardis CSV ({text.splitlines()[0]})")


def _missing(path: Path, layout: _Layout, header: list[str]) -> ImportError_ | None:
    missing = [c for c in layout.types if c not in header]
    if not (header and missing):
        return None
    named = ", ".join(missing) if len(missing) <= 8 else ", ".join(missing[:8]) + f", ... ({len(missing)} in all)"
    return ImportError_(f"{path}: missing column(s) {named}; a Tardis {layout.kind} file has "
                        f"{_expected(layout)}{_looks_like(header)}")


def _blocks(path: Path, layout: _Layout, block_bytes: int) -> Iterator[tuple[pa.RecordBatch, int]]:
    """The file's blocks with the layout's columns, each with the file row of its first row."""
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    # the header first: a file of another kind or venue gets one line naming what is missing
    problem = _missing(path, layout, _header(path))
    if problem:
        raise problem
    # only an empty cell is missing: a "nan" or "inf" cell is a number, refused as not finite
    convert = pacsv.ConvertOptions(column_types=layout.types, include_columns=list(layout.types), null_values=[""])
    try:
        # one parsing thread: on 2 cores it is faster than several and keeps memory flat
        reader = pacsv.open_csv(_open(path), read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
                                convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowKeyError, OSError, EOFError) as exc:
        raise _arrow_problem(path, exc) from None
    row = 2
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise _arrow_problem(path, exc) from None
        if batch.num_rows:
            yield batch, row
            row += batch.num_rows


#: convert(path, part, rows, face, carry) -> canonical batch; ``rows`` = file row of each row,
#: ``carry`` = per-symbol state kept from one block to the next
Convert = Callable[[Path, pa.RecordBatch, np.ndarray, "float | None", dict], pa.RecordBatch]


def _read(path: Path, layout: _Layout, convert: Convert, block_bytes: int) -> Reader:
    carry: dict[str, dict] = {}
    first_exchange: str | None = None
    for batch, row in _blocks(path, layout, block_bytes):
        rows = np.arange(row, row + batch.num_rows)
        _require(path, batch, rows, ("exchange", "symbol", "timestamp"))
        exchanges = pc.unique(batch.column("exchange"))
        first_exchange = first_exchange or exchanges[0].as_py()
        other = pc.not_equal(batch.column("exchange"), first_exchange)
        _first_bad(path, other, rows, f"expected exchange {first_exchange!r} (one exchange per file)",
                   batch.column("exchange"))
        for symbol, part, part_rows in _by_symbol(batch, rows):
            yield (first_exchange, symbol,
                   convert(path, part, part_rows, contract_face(first_exchange, symbol), carry.setdefault(symbol, {})),
                   int(part_rows[0]))


def _by_symbol(batch: pa.RecordBatch, rows: np.ndarray) -> Iterator[tuple[str, pa.RecordBatch, np.ndarray]]:
    """The block split by symbol (one piece in a single-symbol file), in order of first appearance."""
    symbols = pc.unique(batch.column("symbol"))
    if len(symbols) == 1:
        yield symbols[0].as_py(), batch, rows
        return
    for symbol in symbols.to_pylist():
        mask = np.asarray(pc.equal(batch.column("symbol"), symbol))
        yield symbol, batch.filter(pa.array(mask)), rows[mask]


# ------------------------------------------------------------------------------ checks
def _first_bad(path: Path, mask: pa.ChunkedArray | pa.Array | np.ndarray, rows: np.ndarray, what: str,
               values: pa.Array) -> None:
    if not isinstance(mask, np.ndarray):
        mask = np.asarray(pc.fill_null(mask, False), dtype=bool)  # a null cell is checked elsewhere
    bad = np.flatnonzero(mask)
    if len(bad):
        i = int(bad[0])
        raise ImportError_(f"{path}: row {rows[i]}: {what} (got {shown(values[i].as_py())}); "
                           f"{len(bad)} such row(s) in this block")


def _require(path: Path, batch: pa.RecordBatch, rows: np.ndarray, names: tuple[str, ...]) -> None:
    """The named columns have a value in every row."""
    for name in names:
        col = batch.column(name)
        empty = col.is_null() if col.type != pa.string() else pc.equal(col, "")
        if col.null_count or pc.any(empty).as_py():
            i = int(np.flatnonzero(np.asarray(pc.fill_null(empty, True)))[0])
            raise ImportError_(f"{path}: row {rows[i]}: column {name!r} is empty")


def _check_price(path: Path, price: pa.Array, rows: np.ndarray, column: str | None = None) -> None:
    """Prices present are finite and > 0 (``column`` names a ticker's price column)."""
    label = f"column {column!r}: " if column else ""
    _first_bad(path, pc.invert(pc.is_finite(price)), rows, f"column {column or 'price'!r}: {NOT_FINITE}", price)
    _first_bad(path, pc.invert(pc.greater(price, 0.0)), rows, f"{label}expected a price > 0", price)


def _ts(batch: pa.RecordBatch) -> pa.Array:
    """Microseconds since the epoch -> UTC nanoseconds."""
    return pc.multiply(batch.column("timestamp"), 1000).cast(pa.timestamp("ns", tz="UTC"))


# ------------------------------------------------------------------------------ conversions
def _fills(path: Path, batch: pa.RecordBatch, rows: np.ndarray, face: float | None) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Checked price, size in base units and side text of trades / liquidations rows."""
    price = batch.column("price")
    amount = batch.column("amount")
    _require(path, batch, rows, ("price", "amount"))
    _check_price(path, price, rows)
    _first_bad(path, pc.invert(pc.is_finite(amount)), rows, f"column 'amount': {NOT_FINITE}", amount)
    _first_bad(path, pc.less(amount, 0.0), rows, "expected a size >= 0", amount)
    side = batch.column("side")
    unknown = pc.invert(pc.is_in(side, pa.array(["buy", "sell", "unknown"])))
    _first_bad(path, unknown, rows, "expected side buy, sell or unknown", side)
    qty = pc.divide(pc.multiply(amount, face), price) if face is not None else amount
    return price, qty, side


def _side(side: pa.Array, unknown: int | None) -> pa.Array:
    return pc.if_else(pc.equal(side, "buy"), 1, pc.if_else(pc.equal(side, "sell"), -1, unknown)).cast(pa.int8())


def _trades(path: Path, batch: pa.RecordBatch, rows: np.ndarray, face: float | None, carry: dict) -> pa.RecordBatch:
    price, qty, side = _fills(path, batch, rows, face)
    return pa.RecordBatch.from_arrays([_ts(batch), price, qty, _side(side, 0), batch.column("id")], schema=TRADES)


def _liquidations(path: Path, batch: pa.RecordBatch, rows: np.ndarray, face: float | None,
                  carry: dict) -> pa.RecordBatch:
    price, size, side = _fills(path, batch, rows, face)
    n = batch.num_rows
    none_str = pa.nulls(n, pa.string())
    return pa.RecordBatch.from_arrays(
        [_ts(batch), pa.array(["liquidation"] * n, pa.string()), none_str, price, size, pc.multiply(price, size),
         none_str, pa.nulls(n, pa.float64()), batch.column("id"), _side(side, None)], schema=EVENTS)


def _ticker(path: Path, batch: pa.RecordBatch, rows: np.ndarray, face: float | None, carry: dict) -> pa.RecordBatch:
    col = batch.column
    for name in ("mark_price", "index_price", "last_price"):
        _check_price(path, col(name), rows, name)
    for name in ("funding_rate", "predicted_funding_rate", "open_interest"):
        _first_bad(path, pc.invert(pc.is_finite(col(name))), rows, f"column {name!r}: {NOT_FINITE}",
                   col(name))
    oi = col("open_interest")
    _first_bad(path, pc.less(oi, 0.0), rows, "column 'open_interest': expected a value >= 0", oi)
    if face is not None:
        # contracts -> base units at the mark price, carried forward from earlier rows (and blocks)
        mark = col("mark_price")
        if carry.get("mark") is not None:
            mark = pc.coalesce(pc.fill_null_forward(mark), pa.scalar(carry["mark"], pa.float64()))
        else:
            mark = pc.fill_null_forward(mark)
        price = pc.coalesce(mark, col("index_price"), col("last_price"))
        oi = pc.divide(pc.multiply(oi, face), price)
        last = pc.drop_null(mark)
        if len(last):
            carry["mark"] = last[-1].as_py()
    return pa.RecordBatch.from_arrays(
        [_ts(batch), col("mark_price"), col("index_price"), col("last_price"), col("funding_rate"),
         col("predicted_funding_rate"), oi], schema=TICKER)


def _cells(batch: pa.RecordBatch, side: str, what: str, levels: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(rows x levels) values of one side's prices or sizes (NaN where empty), which cells are
    empty, and their column names."""
    names = [f"{side}[{i}].{what}" for i in range(levels)]
    return (np.column_stack([batch.column(c).to_numpy(zero_copy_only=False) for c in names]),
            np.column_stack([np.asarray(batch.column(c).is_null(), dtype=bool) for c in names]), names)


def _first_bad_cell(path: Path, bad: np.ndarray, rows: np.ndarray, names: list[str], values: np.ndarray,
                    what: str) -> None:
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ImportError_(f"{path}: row {rows[i]}: column {names[j]!r}: {what} (got {shown(float(values[i, j]))})")


def _depth(path: Path, batch: pa.RecordBatch, rows: np.ndarray, face: float | None, carry: dict) -> pa.RecordBatch:
    levels = (batch.num_columns - len(_KEYS)) // 4
    book = {}
    for side in ("bids", "asks"):
        price, no_price, price_names = _cells(batch, side, "price", levels)
        size, no_size, size_names = _cells(batch, side, "amount", levels)
        has = ~no_price  # an empty cell: no level there (a "nan" cell is a value, refused below)
        half = np.argwhere(has != ~no_size)
        if len(half):
            i, j = half[0]
            empty = size_names[j] if has[i, j] else price_names[j]
            raise ImportError_(f"{path}: row {rows[i]}: column {empty!r} is empty but the other half of "
                               f"its level is not (a level needs a price and a size)")
        _first_bad_cell(path, has & ~np.isfinite(price), rows, price_names, price, NOT_FINITE)
        _first_bad_cell(path, has & ~np.isfinite(size), rows, size_names, size, NOT_FINITE)
        _first_bad_cell(path, has & ~(price > 0), rows, price_names, price, "expected a price > 0")
        _first_bad_cell(path, has & ~(size > 0), rows, size_names, size, "expected a size > 0")
        _first_bad_cell(path, has[:, 1:] & ~has[:, :-1], rows, price_names[1:], price[:, 1:],
                        f"a level after an empty one (levels fill from the best {side[:-1]} outward)")
        if not has[:, 0].all():
            i = int(np.flatnonzero(~has[:, 0])[0])
            raise ImportError_(f"{path}: row {rows[i]}: no {side}: a snapshot needs both sides to take the mid")
        step = price[:, 1:] - price[:, :-1]
        worse = step < 0 if side == "bids" else step > 0  # away from the best, strictly
        order = "strictly descending" if side == "bids" else "strictly ascending"
        _first_bad_cell(path, has[:, 1:] & ~worse, rows, price_names[1:], price[:, 1:],
                        f"{side} must be {order} from the best level outward")
        book[side] = (price, size, has)
    bid0, ask0 = book["bids"][0][:, 0], book["asks"][0][:, 0]
    crossed = np.flatnonzero(bid0 >= ask0)
    if len(crossed):
        i = int(crossed[0])
        raise ImportError_(f"{path}: row {rows[i]}: crossed book: best bid {float(bid0[i])!r} >= best ask {float(ask0[i])!r}")
    mid = (bid0 + ask0) / 2
    pct, depth, notional, present = [], [], [], []
    for side in ("bids", "asks"):
        price, size, has = book[side]
        base = size * face / price if face is not None else size
        base = np.where(has, base, 0.0)
        cols = [(price / mid[:, None] - 1) * 100, np.cumsum(base, axis=1),
                np.cumsum(np.where(has, price, 0.0) * base, axis=1), has]
        if side == "bids":
            cols = [c[:, ::-1] for c in cols]  # ascending pct within a snapshot: widest bid first
        for out, c in zip((pct, depth, notional, present), cols, strict=True):
            out.append(c)
    keep = np.concatenate(present, axis=1)
    ts = np.repeat(_ts(batch).cast(pa.int64()).to_numpy(), keep.sum(axis=1))
    return pa.RecordBatch.from_arrays(
        [pa.array(ts).cast(pa.timestamp("ns", tz="UTC"))]
        + [pa.array(np.concatenate(v, axis=1)[keep]) for v in (pct, depth, notional)], schema=DEPTH)
