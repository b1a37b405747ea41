"""Hyperliquid node fills (``node_fills_by_block``, ``node_fills``; JSON lines, LZ4 or plain;
../shared/data/README.md "Public formats").

Every trade appears twice, once per side, sharing a ``tid``: one trade is kept per pair — the
taker's fill (``crossed``), whose ``side`` is the taker side — so volume is not counted twice.
Liquidation fills (those with a ``liquidation`` record: liquidated user, mark price, method
market or backstop) and auto-deleveraging fills (``dir`` "Auto-Deleveraging") are also kept as
observed events. Files hold many coins: batches come per coin.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from riskengine.data.schema import EVENTS, TRADES

BLOCK_LINES = 20_000


def _open(path: Path):
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".lz4":
        try:
            import lz4.frame
        except ImportError:
            raise ValueError(f"{path}: reading LZ4 archives needs the lz4 package "
                             f"(pip install 'riskengine[hyperliquid]')") from None
        return io.TextIOWrapper(lz4.frame.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _fills(path: Path) -> Iterator[tuple[int, str, dict]]:
    """(line, user, fill) for every fill of the file, in file order."""
    line_no = 0
    try:
        with _open(path) as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {line_no}: not JSON ({exc.msg})") from None
                if isinstance(record, dict) and "events" in record:  # node_fills_by_block
                    for user, fill in record["events"]:
                        yield line_no, user, fill
                elif isinstance(record, list) and len(record) == 2:  # node_fills: [user, fill]
                    yield line_no, record[0], record[1]
                else:
                    raise ValueError(f"{path}: line {line_no}: expected a block with 'events' or a "
                                     f"[user, fill] pair (is this a Hyperliquid fills file?)")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: line {line_no + 1}: not JSON (not UTF-8 text; is this a Hyperliquid "
                         f"fills file?)") from None
    except (EOFError, OSError, RuntimeError) as exc:
        raise ValueError(f"{path}: truncated or corrupt file ({exc})") from None


def _number(path: Path, line: int, fill: dict, key: str) -> float:
    try:
        value = float(fill[key])
    except KeyError:
        raise ValueError(f"{path}: line {line}: fill without {key!r}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{path}: line {line}: {key!r} must be a number (got {fill[key]!r})") from None
    return value


def read(path: str | Path, kind: str) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """Trades (``kind="trades"``) or observed liquidation/ADL events (``kind="events"``) of a
    fills file, as canonical batches per coin. Fills wait, keyed by ``tid``, only until the
    other side of their trade arrives, so memory stays flat."""
    path = Path(path)
    rows: dict[str, list] = defaultdict(list)
    pending: dict = {}
    count = 0
    first_line = 1
    for line, user, fill in _fills(path):
        price = _number(path, line, fill, "px")
        size = _number(path, line, fill, "sz")
        if not price > 0:
            raise ValueError(f"{path}: line {line}: expected a price > 0 (got {fill['px']!r})")
        if size < 0:
            raise ValueError(f"{path}: line {line}: expected a size >= 0 (got {fill['sz']!r})")
        coin = str(fill.get("coin", ""))
        ts = int(fill["time"]) * 1_000_000
        if kind == "trades":
            tid = fill.get("tid")
            mine = (ts, price, size, fill.get("side"), bool(fill.get("crossed", False)), coin)
            other = pending.pop(tid, None) if tid is not None else None
            if other is None and tid is not None:
                pending[tid] = mine
                continue
            pair = [x for x in (other, mine) if x is not None]
            taker = next((x for x in pair if x[4]), pair[0])
            side = (1 if taker[3] == "B" else -1) if taker[4] else 0
            rows[taker[5]].append((taker[0], taker[1], taker[2], side, str(tid)))
        else:
            liq = fill.get("liquidation")
            if liq and user == liq.get("liquidatedUser"):
                mark = float(liq["markPx"]) if liq.get("markPx") is not None else None
                rows[coin].append((ts, "liquidation", liq.get("method"), price, size, price * size, user, mark,
                                   str(fill.get("tid")), 1 if fill.get("side") == "B" else -1))
            elif fill.get("dir") == "Auto-Deleveraging":
                rows[coin].append((ts, "adl", None, price, size, price * size, user, None, str(fill.get("tid")),
                                   1 if fill.get("side") == "B" else -1))
        count += 1
        if count % BLOCK_LINES == 0:
            yield from _flush(rows, kind, first_line)
            first_line = line
    for tid, (ts, price, size, side_code, crossed, coin) in pending.items():  # a pair's other side never came
        rows[coin].append((ts, price, size, (1 if side_code == "B" else -1) if crossed else 0, str(tid)))
    yield from _flush(rows, kind, first_line)


def _flush(rows: dict[str, list], kind: str, line: int) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    for coin in sorted(rows):
        data = rows.pop(coin)
        if not data:
            continue
        data.sort(key=lambda r: r[0])  # stable: file order within a millisecond
        cols = list(zip(*data))
        if kind == "trades":
            arrays = [pa.array(cols[0], pa.int64()).cast(pa.timestamp("ns", tz="UTC")), pa.array(cols[1], pa.float64()),
                      pa.array(cols[2], pa.float64()), pa.array(cols[3], pa.int8()), pa.array(cols[4], pa.string())]
            yield "hyperliquid", coin, pa.RecordBatch.from_arrays(arrays, schema=TRADES), line
        else:
            arrays = [pa.array(cols[0], pa.int64()).cast(pa.timestamp("ns", tz="UTC")), pa.array(cols[1], pa.string()),
                      pa.array(cols[2], pa.string()), pa.array(cols[3], pa.float64()), pa.array(cols[4], pa.float64()),
                      pa.array(cols[5], pa.float64()), pa.array(cols[6], pa.string()), pa.array(cols[7], pa.float64()),
                      pa.array(cols[8], pa.string()), pa.array(cols[9], pa.int8())]
            yield "hyperliquid", coin, pa.RecordBatch.from_arrays(arrays, schema=EVENTS), line
