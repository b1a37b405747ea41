"""Tardis CSV importers (``{exchange}/{type}/{YYYY}/{MM}/{DD}/{SYMBOL}.csv.gz``, gzip or plain,
header row, microsecond times; ../shared/data/README.md "Public formats").

Files are read in blocks with Arrow's streaming CSV reader, so memory stays flat as the file
grows. Every problem is reported with the file, the row (1-based, counting the header as row 1)
and what was expected.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from riskengine.data.schema import TRADES

TRADES_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
#: USD face value of one Binance COIN-M contract (data/README.md): BTC 100, the alt perps 10
COINM_FACE_USD = {"BTCUSD_PERP": 100.0}
COINM_DEFAULT_FACE_USD = 10.0
BLOCK_BYTES = 8 << 20


class ImportError_(ValueError):
    """A file that cannot be imported; the message names the file, row and expectation."""


def _open(path: Path):
    if path.suffix == ".gz":
        return pa.input_stream(str(path), compression="gzip")
    return pa.input_stream(str(path))


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
    m = re.search(r"column #(\d+).*?conversion error to (\w+): invalid value '([^']*)'", text, re.S)
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


def contract_face(exchange: str, symbol: str) -> float | None:
    """USD face of one contract when ``amount`` counts COIN-M contracts, else None."""
    if exchange == "binance-delivery" and symbol.endswith("USD_PERP"):
        return COINM_FACE_USD.get(symbol, COINM_DEFAULT_FACE_USD)
    return None


def read_trades(path: str | Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
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
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    convert = pacsv.ConvertOptions(
        column_types={"timestamp": pa.int64(), "local_timestamp": pa.int64(), "id": pa.string(),
                      "price": pa.float64(), "amount": pa.float64(), "side": pa.string(),
                      "exchange": pa.string(), "symbol": pa.string()},
        include_columns=["exchange", "symbol", "timestamp", "id", "side", "price", "amount"],
    )
    try:
        # one parsing thread: on 2 cores it is faster than several and keeps memory flat
        reader = pacsv.open_csv(_open(path), read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
                                convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        header = _header(path)
        missing = [c for c in TRADES_COLUMNS if c not in header]
        if header and missing:
            raise ImportError_(f"{path}: missing column(s) {', '.join(missing)}; a Tardis trades file "
                               f"has {','.join(TRADES_COLUMNS)}") from None
        raise _arrow_problem(path, exc) from None
    except (OSError, EOFError) as exc:
        raise _arrow_problem(path, exc) from None
    row = 2
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise _arrow_problem(path, exc) from None
        if batch.num_rows == 0:
            continue
        exchange = batch.column("exchange")[0].as_py()
        symbol = batch.column("symbol")[0].as_py()
        yield exchange, symbol, _canonical(path, batch, row, contract_face(exchange, symbol)), row
        row += batch.num_rows


def _header(path: Path) -> list[str]:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            return f.readline().strip().split(",")
    except (OSError, EOFError):
        return []


def _first_bad(path: Path, mask: pa.ChunkedArray | pa.Array, first_row: int, what: str,
               values: pa.Array) -> None:
    bad = np.flatnonzero(np.asarray(mask, dtype=bool))
    if len(bad):
        i = int(bad[0])
        raise ImportError_(f"{path}: row {first_row + i}: {what} (got {values[i].as_py()!r}); "
                           f"{len(bad)} such row(s) in this block")


def _canonical(path: Path, batch: pa.RecordBatch, first_row: int, face: float | None) -> pa.RecordBatch:
    price = batch.column("price")
    amount = batch.column("amount")
    for name, col in (("price", price), ("amount", amount), ("timestamp", batch.column("timestamp"))):
        if col.null_count:
            i = int(np.flatnonzero(np.asarray(col.is_null()))[0])
            raise ImportError_(f"{path}: row {first_row + i}: column {name!r} is empty")
    _first_bad(path, pc.invert(pc.greater(price, 0.0)), first_row, "expected a price > 0", price)
    _first_bad(path, pc.invert(pc.is_finite(price)), first_row, "expected a finite price", price)
    _first_bad(path, pc.less(amount, 0.0), first_row, "expected a size >= 0", amount)
    side_txt = batch.column("side")
    side = pc.if_else(pc.equal(side_txt, "buy"), 1, pc.if_else(pc.equal(side_txt, "sell"), -1, 0)).cast(pa.int8())
    unknown = pc.invert(pc.is_in(side_txt, pa.array(["buy", "sell", "unknown"])))
    _first_bad(path, unknown, first_row, "expected side buy, sell or unknown", side_txt)
    qty = pc.divide(pc.multiply(amount, face), price) if face is not None else amount
    ts = pc.multiply(batch.column("timestamp"), 1000).cast(pa.timestamp("ns", tz="UTC"))
    return pa.RecordBatch.from_arrays([ts, price, qty, side, batch.column("id")], schema=TRADES)
