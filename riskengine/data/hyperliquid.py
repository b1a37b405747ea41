"""Hyperliquid importers: the public node archives (JSON lines, LZ4 or plain) and the market
data archive (../shared/data/README.md "Public formats").

* Fills (``node_fills_by_block``, ``node_fills``), kinds ``trades`` and ``events``. Every trade
  appears twice, once per side, sharing a ``tid``: one trade is kept per pair — the taker's
  fill (``crossed``), whose ``side`` is the taker side — so volume is not counted twice.
  Liquidation fills (those with a ``liquidation`` record: liquidated user, mark price, method
  market or backstop) and auto-deleveraging fills (``dir`` "Auto-Deleveraging") are also kept
  as observed events.
* ``node_trades`` (``node_trades/hourly/{YYYYMMDD}/{hour}``, 2025-03 to 2025-06), kind
  ``node-trades``, stored as ``trades``: one line per trade, ``{coin, side, time, px, sz, hash,
  trade_dir_override, side_info: [buyer, seller]}`` with ``side`` the taker's (``B`` buy, ``A``
  sell) and ``time`` naive UTC ISO text with up to nanosecond digits
  (``2025-03-22T23:00:00.000984711``), parsed exactly. ``hash`` is the transaction's and is not
  unique per trade (it can be all zeros), so the trade id is ``hash:tid`` when a line has a
  ``tid`` and ``hash:line`` otherwise.
* ``asset_ctxs/{YYYYMMDD}.csv.lz4``, kind ``asset-ctxs``, stored as ``ticker``: a CSV with
  header ``time,coin,funding,open_interest,prev_day_px,day_ntl_vlm,premium,oracle_px,mark_px,
  mid_px,impact_bid_px,impact_ask_px``, a row per coin and minute, ``time`` ISO text
  (``2025-01-01T00:00:00Z``; naive text and epoch numbers are also read). Mapped to mark =
  ``mark_px``, index = ``oracle_px``, last = ``mid_px`` (empty, or 0 when a coin has no book:
  null), funding rate = ``funding`` (per hour), open interest = ``open_interest`` (coin units)
  as the venue reports it; one third-party source (Hydromancer) calls Hyperliquid's figure
  two-sided (longs plus shorts), which is not confirmed here.
* ``market_data/{YYYYMMDD}/{hour}/l2Book/{COIN}.lz4``, kind ``l2book``, stored as ``depth``:
  one snapshot per line, ``{time, ver_num, raw: {channel: "l2Book", data: {coin, time (ms),
  levels: [bids best first, asks best first]}}}``, a level ``{px, sz, n}``. Each snapshot becomes
  one depth row per level at the exchange time ``data.time``: ``pct`` = (px / mid - 1) x 100
  with mid the mean of the best bid and ask, ``depth`` and ``notional`` cumulative from the best
  level outward; rows run from the widest bid to the widest ask, as Binance's ``bookDepth``.

* Funding history, kind ``funding-history``, stored as ``funding``: what the info endpoint
  returns for ``{"type": "fundingHistory", "coin": COIN, "startTime": MS[, "endTime": MS]}``, a
  JSON array of records ``{coin, fundingRate, premium, time}`` (rates and premiums as decimal
  text, ``time`` in ms), saved as one array (``.json``) or as JSON lines holding records or
  arrays (one API page per line); the file name contains ``fundingHistory`` (or
  ``funding_history``). Funding is hourly: each record is the rate paid for the hour ending at
  ``time`` (interval 1 h), with the hour's average premium.

Files hold many coins (except l2Book): batches come per coin. A line that is not the record
the kind expects is an error naming the file, the line and what was expected.

Sources: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/nodes/l1-data-schemas
(node_trades; side_info[0] is the buyer), https://www.dwellir.com/docs/hyperliquid/historical-data/trade-data
(nanosecond node_trades times, the archive's periods), the Hyperliquid ``l2Book`` websocket
message (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions)
and public readers of the ``hyperliquid-archive`` bucket found with code search (l2Book wrapper
and asset_ctxs header and time format), the info endpoint's ``fundingHistory`` request
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals) and
public clients of it found with code search (``coin``, ``fundingRate``, ``premium``, ``time``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from riskengine.data.binance import _numbers, _table
from riskengine.data.schema import DEPTH, EVENTS, FUNDING, NOT_FINITE, TICKER, TRADES

BLOCK_LINES = 20_000
#: the files this module reads
FILE_TYPES = ("JSON lines, LZ4-compressed (.lz4) or plain; asset_ctxs as .csv.lz4 or .csv; fundingHistory as a "
              "JSON array (.json) or JSON lines")
ASSET_CTXS_COLUMNS = ("time", "coin", "funding", "open_interest", "prev_day_px", "day_ntl_vlm", "premium",
                      "oracle_px", "mark_px", "mid_px", "impact_bid_px", "impact_ask_px")
#: archive folder (or part of a file name) -> kind; the folder nearest the file wins
FOLDER_KINDS = {"node_trades": "node-trades", "asset_ctxs": "asset-ctxs", "l2Book": "l2book",
                "node_fills_by_block": "trades", "node_fills": "trades", "fundingHistory": "funding-history",
                "funding_history": "funding-history"}
FUNDING_RECORD = "a fundingHistory record {coin, fundingRate, premium, time}"
FILLS = "a node_fills_by_block block {block_time, events: [[user, fill], ...]} or a node_fills [user, fill] pair"
NODE_TRADE = "a node_trades record {coin, side, time, px, sz, hash, side_info}"
L2BOOK = "an l2Book snapshot {time, raw: {channel: 'l2Book', data: {coin, time, levels: [bids, asks]}}}"
ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|\+00:00)?")
EPOCH = dt.date(1970, 1, 1)


def kind_of(path: Path) -> str:
    """The kind a Hyperliquid path holds: from the archive folder nearest the file
    (``node_trades``, ``asset_ctxs``, ``l2Book``, the fills folders) or the file name (which
    names one of them, or is a CSV: ``asset_ctxs``); fills otherwise."""
    name = path.name.lower()
    for folder, kind in FOLDER_KINDS.items():
        if folder.lower() in name:
            return kind
    if name.endswith((".csv", ".csv.lz4")):
        return "asset-ctxs"
    for part in reversed(path.parts[:-1]):
        if part in FOLDER_KINDS:
            return FOLDER_KINDS[part]
    return "trades"


def _open(path: Path, text: bool = True):
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".lz4":
        try:
            import lz4.frame
        except ImportError:
            raise ValueError(f"{path}: reading LZ4 archives needs the lz4 package "
                             f"(pip install 'riskengine[hyperliquid]')") from None
        stream = lz4.frame.open(path, "rb")
    else:
        stream = open(path, "rb")
    return io.TextIOWrapper(stream, encoding="utf-8") if text else stream


def _bytes(path: Path) -> bytes:
    """The whole (decompressed) file; a truncated LZ4 frame names the line it breaks off in."""
    chunks: list[bytes] = []
    try:
        with _open(path, text=False) as f:
            while chunk := f.read(1 << 20):
                chunks.append(chunk)
    except (EOFError, OSError, RuntimeError) as exc:
        line = sum(c.count(b"\n") for c in chunks) + 1
        raise ValueError(f"{path}: line {line}: truncated or corrupt file ({exc})") from None
    return b"".join(chunks)


def _records(path: Path, expected: str) -> Iterator[tuple[int, object]]:
    """(line, parsed JSON) for every non-blank line of a JSON-lines file."""
    line_no = 0
    try:
        with _open(path) as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {line_no}: not JSON ({exc.msg}); expected {expected}") from None
                yield line_no, record
    except UnicodeDecodeError:
        raise ValueError(f"{path}: line {line_no + 1}: not JSON (not UTF-8 text); expected {expected}") from None
    except (EOFError, OSError, RuntimeError) as exc:
        raise ValueError(f"{path}: line {line_no + 1}: truncated or corrupt file ({exc})") from None


def _hint(record: object) -> str:
    """What a line of another Hyperliquid archive is, to say which kind to import it as."""
    if isinstance(record, dict):
        raw = record.get("raw")
        if "events" in record:
            return "; this is a node_fills_by_block line (kind trades or events)"
        if "side_info" in record:
            return "; this is a node_trades line (kind node-trades)"
        if isinstance(raw, dict) and raw.get("channel") == "l2Book":
            return "; this is an l2Book line (kind l2book)"
    if isinstance(record, list) and len(record) == 2 and isinstance(record[1], dict) and "tid" in record[1]:
        return "; this is a node_fills line (kind trades or events)"
    return ""


def _fills(path: Path) -> Iterator[tuple[int, str, dict]]:
    """(line, user, fill) for every fill of the file, in file order."""
    for line_no, record in _records(path, FILLS):
        if isinstance(record, dict) and "events" in record:  # node_fills_by_block
            for user, fill in record["events"]:
                yield line_no, user, fill
        elif isinstance(record, list) and len(record) == 2:  # node_fills: [user, fill]
            yield line_no, record[0], record[1]
        else:
            raise ValueError(f"{path}: line {line_no}: expected {FILLS}{_hint(record)}")


def _number(path: Path, line: int, record: dict, key: str) -> float:
    try:
        value = float(record[key])
    except KeyError:
        raise ValueError(f"{path}: line {line}: no {key!r} in the record") from None
    except (TypeError, ValueError):
        raise ValueError(f"{path}: line {line}: {key!r} must be a number (got {record[key]!r})") from None
    return value


def _price_size(path: Path, line: int, record: dict) -> tuple[float, float]:
    """A fill's or trade's ``px`` (> 0) and ``sz`` (>= 0)."""
    price = _number(path, line, record, "px")
    size = _number(path, line, record, "sz")
    for key, value in (("px", price), ("sz", size)):
        if not np.isfinite(value):
            raise ValueError(f"{path}: line {line}: {key!r}: {NOT_FINITE} (got {record[key]!r})")
    if not price > 0:
        raise ValueError(f"{path}: line {line}: expected a price > 0 (got {record['px']!r})")
    if not size >= 0:
        raise ValueError(f"{path}: line {line}: expected a size >= 0 (got {record['sz']!r})")
    return price, size


def _iso_ns(text: object) -> int | None:
    """UTC ISO text (``T`` or space, up to 9 fraction digits, optional ``Z``) as exact int
    nanoseconds since the epoch, or None when it is not such text."""
    m = ISO.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        days = (dt.date(year, month, day) - EPOCH).days
    except ValueError:
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    return seconds * 1_000_000_000 + int((m.group(7) or "").ljust(9, "0"))


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
        price, size = _price_size(path, line, fill)
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
            rows[taker[5]].append((taker[0], taker[1], taker[2], side, None if tid is None else str(tid)))
        else:
            liq = fill.get("liquidation")
            if liq and user == liq.get("liquidatedUser"):
                mark = float(liq["markPx"]) if liq.get("markPx") is not None else None
                rows[coin].append((ts, "liquidation", liq.get("method"), price, size, price * size, user, mark,
                                   _tid(fill), 1 if fill.get("side") == "B" else -1))
            elif fill.get("dir") == "Auto-Deleveraging":
                rows[coin].append((ts, "adl", None, price, size, price * size, user, None, _tid(fill),
                                   1 if fill.get("side") == "B" else -1))
        count += 1
        if count % BLOCK_LINES == 0:
            yield from _flush(rows, kind, first_line)
            first_line = line
    for tid, (ts, price, size, side_code, crossed, coin) in pending.items():  # a pair's other side never came
        rows[coin].append((ts, price, size, (1 if side_code == "B" else -1) if crossed else 0, str(tid)))
    yield from _flush(rows, kind, first_line)


def _tid(fill: dict) -> str | None:
    """A fill's trade id; none when the fill has no ``tid`` (not the text 'None', which the
    catalog would take for one trade id shared by all such fills)."""
    return None if fill.get("tid") is None else str(fill["tid"])


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


def read_node_trades(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """A ``node_trades`` file as canonical trades, per coin.

    Parameters
    ----------
    path : str or Path
        An hourly ``node_trades`` file, LZ4 (``.lz4``) or plain.

    Yields
    ------
    tuple
        ``("hyperliquid", coin, batch, first_line)``, the batch in the ``TRADES`` schema: one
        row per line (each line is one trade), side = the taker's, exact nanosecond times.

    Raises
    ------
    ValueError
        Naming the file and line: a line that is not a node_trades record (and what it is, when
        it is another Hyperliquid archive's), a price that is not a number > 0, a negative size,
        a side other than ``B``/``A``, a time that is not ISO text, a truncated file.
    """
    path = Path(path)
    rows: dict[str, list] = defaultdict(list)
    first_line = 1
    for count, (line, record) in enumerate(_records(path, NODE_TRADE), start=1):
        if not (isinstance(record, dict) and "side_info" in record and "coin" in record):
            raise ValueError(f"{path}: line {line}: expected {NODE_TRADE}{_hint(record)}")
        price, size = _price_size(path, line, record)
        side = {"B": 1, "A": -1}.get(record["side"]) if isinstance(record.get("side"), str) else None
        if side is None:
            raise ValueError(f"{path}: line {line}: 'side' must be 'B' or 'A' (got {record.get('side')!r})")
        ts = _iso_ns(record.get("time"))
        if ts is None:
            raise ValueError(f"{path}: line {line}: 'time' must be UTC ISO text YYYY-MM-DDTHH:MM:SS[.fraction] "
                             f"(got {record.get('time')!r})")
        # the hash is the transaction's, shared by its trades: the tid or the line makes it unique
        tid = record.get("tid")
        trade_id = f"{record.get('hash')}:{tid if tid is not None else line}"
        rows[str(record["coin"])].append((ts, price, size, side, trade_id))
        if count % BLOCK_LINES == 0:
            yield from _flush(rows, "trades", first_line)
            first_line = line + 1
    yield from _flush(rows, "trades", first_line)


def _times(path: Path, column: pa.ChunkedArray, row: int) -> np.ndarray:
    """A CSV column of UTC times, ISO text or epoch numbers (s, ms, µs or ns by magnitude), as
    int64 nanoseconds."""
    text = pc.utf8_trim_whitespace(column)
    if text.null_count:
        i = int(np.flatnonzero(np.asarray(text.is_null()))[0])
        raise ValueError(f"{path}: row {row + i}: column 'time' is empty")
    if pc.all(pc.match_substring_regex(text, r"^\d+$")).as_py():
        ticks = pc.cast(text, pa.int64()).to_numpy()
        top = int(ticks.max(initial=0))
        scale = 10**9 if top < 10**11 else 10**6 if top < 10**14 else 10**3 if top < 10**17 else 1
        return ticks * scale
    try:  # Arrow parses ISO text to the nanosecond; an explicit UTC designator is dropped first
        return pc.cast(pc.replace_substring_regex(text, r"(Z|\+00:00)$", ""),
                       pa.timestamp("ns")).cast(pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        for i, value in enumerate(column.to_pylist()):
            if _iso_ns(value) is None:
                raise ValueError(f"{path}: row {row + i}: column 'time': expected UTC ISO text "
                                 f"YYYY-MM-DDTHH:MM:SS[.fraction][Z] or epoch milliseconds (got {value!r})") from None
        raise


def read_asset_ctxs(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """An ``asset_ctxs`` file as venue tickers, per coin.

    Parameters
    ----------
    path : str or Path
        ``{YYYYMMDD}.csv.lz4`` or the plain CSV, with or without its header.

    Yields
    ------
    tuple
        ``("hyperliquid", coin, batch, first_row)``, the batch in the ``TICKER`` schema: mark =
        ``mark_px``, index = ``oracle_px``, last = ``mid_px``, funding rate = ``funding``,
        predicted funding null, open interest = ``open_interest`` (coin units), in file order.

    Raises
    ------
    ValueError
        Naming the file and row: a missing column, a cell that is not a number, a mark or oracle
        price that is not > 0, a negative mid price or open interest, a bad time, a truncated file.
    """
    path = Path(path)
    floats = ("funding", "open_interest", "oracle_px", "mark_px", "mid_px")
    table, row = _table(path, _bytes(path), ASSET_CTXS_COLUMNS,
                        {"time": pa.string(), "coin": pa.string(), **{name: pa.float64() for name in floats}})
    ts = _times(path, table.column("time"), row)
    values = {name: _numbers(path, table.column(name), name, row) for name in ("mark_px", "oracle_px")}
    for name in ("mid_px", "open_interest"):
        values[name] = _numbers(path, table.column(name), name, row, minimum=">=", null=True)
    values["mid_px"] = np.where(values["mid_px"] == 0, np.nan, values["mid_px"])  # 0: no book, so no mid
    funding = _numbers(path, table.column("funding"), "funding", row, minimum=None, null=True)
    coins = table.column("coin")
    if coins.null_count:
        i = int(np.flatnonzero(np.asarray(coins.is_null()))[0])
        raise ValueError(f"{path}: row {row + i}: column 'coin' is empty")
    batch = pa.RecordBatch.from_arrays(
        [pa.array(ts).cast(pa.timestamp("ns", tz="UTC")), pa.array(values["mark_px"]),
         pa.array(values["oracle_px"]), pa.array(values["mid_px"], from_pandas=True),
         pa.array(funding, from_pandas=True), pa.nulls(len(ts), pa.float64()),
         pa.array(values["open_interest"], from_pandas=True)], schema=TICKER)
    # a file holds every coin, minute by minute: one batch per coin, rows in file order
    order = pc.array_sort_indices(coins.combine_chunks())  # a stable sort: file order within a coin
    sorted_coins = coins.combine_chunks().take(order).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, sorted_coins[1:] != sorted_coins[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(sorted_coins)]):
        index = order.slice(start, end - start)
        yield "hyperliquid", str(sorted_coins[start]), batch.take(index), row + int(index[0].as_py())


def _levels(path: Path, line: int, side: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The prices and sizes of one side of an l2Book snapshot."""
    if not isinstance(side, list) or not side:
        raise ValueError(f"{path}: line {line}: the {name} side of the book is empty or not a list of levels")
    try:
        px = np.array([float(level["px"]) for level in side])
        sz = np.array([float(level["sz"]) for level in side])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: line {line}: a {name} level is not {{px, sz, n}} with numbers") from None
    for bad, what in ((~(np.isfinite(px) & np.isfinite(sz)), f"{NOT_FINITE} for px and sz"),
                      (~((px > 0) & (sz > 0)), "expected a price and size > 0")):
        bad = np.flatnonzero(bad)
        if len(bad):
            k = int(bad[0])
            raise ValueError(f"{path}: line {line}: {name} level {k + 1}: {what} "
                             f"(got px {side[k]['px']!r}, sz {side[k]['sz']!r})")
    return px, sz


def read_l2book(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """An ``l2Book`` file as depth snapshots.

    Parameters
    ----------
    path : str or Path
        ``market_data/{YYYYMMDD}/{hour}/l2Book/{COIN}.lz4`` or the plain JSON lines.

    Yields
    ------
    tuple
        ``("hyperliquid", coin, batch, first_line)``, the batch in the ``DEPTH`` schema: per
        snapshot one row per level, ``pct`` = (px / mid - 1) x 100, cumulative ``depth`` (coin)
        and ``notional`` (USD) from the best level outward, widest bid first.

    Raises
    ------
    ValueError
        Naming the file and line: a line that is not an l2Book snapshot, an empty side, a level
        price or size not > 0, bids not strictly descending, asks not strictly ascending, a
        crossed book (best bid >= best ask), a truncated file.
    """
    path = Path(path)
    parts: dict[str, list[tuple[np.ndarray, ...]]] = defaultdict(list)
    first_line = 1
    for count, (line, record) in enumerate(_records(path, L2BOOK), start=1):
        raw = record.get("raw") if isinstance(record, dict) else None
        data = raw.get("data") if isinstance(raw, dict) else None
        levels = data.get("levels") if isinstance(data, dict) else None
        if not (isinstance(levels, list) and len(levels) == 2 and "time" in data):
            raise ValueError(f"{path}: line {line}: expected {L2BOOK}{_hint(record)}")
        try:
            ts = int(data["time"]) * 1_000_000  # exchange time, ms
        except (TypeError, ValueError):
            raise ValueError(f"{path}: line {line}: 'time' must be epoch milliseconds (got {data['time']!r})") from None
        bid_px, bid_sz = _levels(path, line, levels[0], "bid")
        ask_px, ask_sz = _levels(path, line, levels[1], "ask")
        for name, px, up in (("bids", bid_px, False), ("asks", ask_px, True)):
            step = np.diff(px) if up else -np.diff(px)
            bad = np.flatnonzero(step <= 0)
            if len(bad):
                k = int(bad[0])
                raise ValueError(f"{path}: line {line}: {name} must be strictly {'ascending' if up else 'descending'} "
                                 f"from the best (level {k + 1}: {px[k]:g}, level {k + 2}: {px[k + 1]:g})")
        if bid_px[0] >= ask_px[0]:
            raise ValueError(f"{path}: line {line}: crossed book: best bid {bid_px[0]:g} >= best ask {ask_px[0]:g}")
        mid = (bid_px[0] + ask_px[0]) / 2
        # bids widest first, then asks narrowest first: pct ascends through the snapshot
        px = np.concatenate([bid_px[::-1], ask_px])
        depth = np.concatenate([np.cumsum(bid_sz)[::-1], np.cumsum(ask_sz)])
        notional = np.concatenate([np.cumsum(bid_px * bid_sz)[::-1], np.cumsum(ask_px * ask_sz)])
        coin = str(data.get("coin") or path.name.split(".")[0])
        parts[coin].append((np.full(len(px), ts, dtype=np.int64), (px / mid - 1) * 100, depth, notional))
        if count % BLOCK_LINES == 0:
            yield from _flush_depth(parts, first_line)
            first_line = line + 1
    yield from _flush_depth(parts, first_line)


def _flush_depth(parts: dict[str, list], line: int) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    for coin in sorted(parts):
        columns = [np.concatenate(c) for c in zip(*parts.pop(coin))]
        arrays = [pa.array(columns[0]).cast(pa.timestamp("ns", tz="UTC"))] + [pa.array(c) for c in columns[1:]]
        yield "hyperliquid", coin, pa.RecordBatch.from_arrays(arrays, schema=DEPTH), line


def _funding_records(path: Path) -> Iterator[tuple[str, object]]:
    """(where, record) for every record of a fundingHistory file: one JSON array, or JSON lines
    holding a record or an array (an API page) each; ``where`` names the line and position."""
    text = _bytes(path).decode("utf-8", errors="replace")
    if text.lstrip().startswith("[") and "\n[" not in text.strip():
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {exc.lineno}: not JSON ({exc.msg}); expected a JSON array of "
                             f"{FUNDING_RECORD}s") from None
        for k, record in enumerate(records):
            yield f"record {k + 1}", record
        return
    for line_no, record in _records(path, FUNDING_RECORD):
        if isinstance(record, list):
            for k, item in enumerate(record):
                yield f"line {line_no} record {k + 1}", item
        else:
            yield f"line {line_no}", record


def read_funding_history(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """A saved ``fundingHistory`` answer as funding rates (kind ``funding``), a batch per coin.

    Each record becomes a row: time (ms -> ns), rate = ``fundingRate`` (per hour), interval 1 h,
    premium = ``premium``.

    Raises
    ------
    ValueError
        Naming the file and the line/record: not JSON, not a record with ``coin``,
        ``fundingRate``, ``premium`` and ``time``, a rate or premium that is not a finite number, a
        time that is not a positive integer of ms.
    """
    path = Path(path)
    rows: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    first_line: dict[str, int] = {}
    for n, (where, record) in enumerate(_funding_records(path), start=1):
        if not isinstance(record, dict) or not all(k in record for k in ("coin", "fundingRate", "premium", "time")):
            have = f" (keys: {', '.join(map(str, record))})" if isinstance(record, dict) else ""
            raise ValueError(f"{path}: {where}: expected {FUNDING_RECORD}{have}")
        coin = record["coin"]
        if not isinstance(coin, str) or not coin:
            raise ValueError(f"{path}: {where}: 'coin': expected a coin name (got {coin!r})")
        values = []
        for key in ("fundingRate", "premium"):
            try:
                value = float(record[key])
            except (TypeError, ValueError):
                raise ValueError(f"{path}: {where}: {key!r}: expected a number (got {record[key]!r})") from None
            if not np.isfinite(value):
                raise ValueError(f"{path}: {where}: {key!r}: {NOT_FINITE} (got {record[key]!r})")
            values.append(value)
        time = record["time"]
        if isinstance(time, bool) or not isinstance(time, int) or time <= 0:
            raise ValueError(f"{path}: {where}: 'time': expected a time in ms, an integer > 0 (got {time!r})")
        rows[coin].append((time * 1_000_000, values[0], values[1]))
        first_line.setdefault(coin, n)
    for coin, items in rows.items():
        ts, rate, premium = (np.array(column) for column in zip(*items))
        yield "hyperliquid", coin, pa.RecordBatch.from_arrays(
            [pa.array(ts.astype(np.int64)).cast(pa.timestamp("ns", tz="UTC")), pa.array(rate, pa.float64()),
             pa.array(np.ones(len(ts))), pa.array(premium, pa.float64())], schema=FUNDING), first_line[coin]
