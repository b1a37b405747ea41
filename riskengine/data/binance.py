"""Binance Vision importers (data.binance.vision daily files; ../shared/data/README.md).

* ``klines``, ``markPriceKlines``, ``indexPriceKlines``, ``premiumIndexKlines``: 12 columns
  ``open_time,open,high,low,close,volume,close_time,...``, with or without a header (headers
  from 2022-08), times in ms (µs recognised by magnitude), zip or CSV. Imported as a price
  stream: the ``close`` as of the bar's end (``close_time`` + 1 ms), the value a mark/index
  stream has from then on.
* ``bookDepth``: ``timestamp,percentage,depth,notional`` (text UTC seconds, bands ±1..±5 %),
  imported as depth snapshots; each side's cumulative depth must not shrink as the band widens.
* ``aggTrades`` / ``trades``: canonical trades (COIN-M contract counts in base units).
* ``metrics``: ``create_time,symbol,sum_open_interest,sum_open_interest_value,
  count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,count_long_short_ratio,
  sum_taker_long_short_vol_ratio``, a row every 5 minutes, ``create_time`` as text UTC seconds;
  the ratio cells are often empty (``""``) on COIN-M files, imported as null. Units differ by
  market, as Binance's open-interest statistics endpoints document them: on USD-M
  ``sum_open_interest`` is in base units and ``sum_open_interest_value`` in quote (USDT); on COIN-M
  ``sum_open_interest`` is in contracts ("unit: cont") and ``sum_open_interest_value`` in the base
  asset ("unit: base asset"), so a COIN-M row's open interest in base units is
  ``sum_open_interest_value`` and its USD value is contracts x the contract's USD face.
  Published COIN-M rows bear this out (BTCUSD_PERP, 2023-06-25 00:00: 5,578,700 contracts and
  18,265.0 BTC, i.e. $557.9M at $30.5k per BTC, that day's price).

* ``fundingRate`` (monthly only: ``data/futures/um/monthly/fundingRate/SYMBOL/SYMBOL-fundingRate-
  YYYY-MM.zip``): the header ``calc_time,funding_interval_hours,last_funding_rate`` (required;
  another header is refused naming the file and the expected one), ``calc_time`` the funding
  time in ms (with milliseconds of jitter, e.g. ``1780272000001``), the interval in hours (8, 4
  or 1: Binance switches symbols between them), the rate per interval as a fraction. Imported as
  kind ``funding`` (:data:`riskengine.data.schema.FUNDING`).

Kinds come from the archive folder in the path (``markPriceKlines`` ...) or the file name
(``-bookDepth-``, ``-metrics-``), or are given.

Sources: https://github.com/binance/binance-public-data (archive layout);
https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/Open-Interest-Statistics
and .../usds-margined-futures/market-data/rest-api/Open-Interest-Statistics (units of the
open-interest columns); metrics headers and COIN-M sample rows as quoted in public notes on
data.binance.vision files found with code search.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from riskengine.data.schema import DEPTH, FUNDING, METRICS, NOT_FINITE, STREAM, coinm_face, shown

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                 "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
DEPTH_COLUMNS = ("timestamp", "percentage", "depth", "notional")
AGG_TRADES_COLUMNS = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
                      "transact_time", "is_buyer_maker")
TRADES_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker")
#: the files this module reads
FILE_TYPES = "the daily .zip (one CSV inside), or that .csv"
#: the header of a ``fundingRate`` file, required as is (a file with another is refused)
FUNDING_RATE_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
METRICS_COLUMNS = ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
                   "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio", "count_long_short_ratio",
                   "sum_taker_long_short_vol_ratio")
#: metrics column -> METRICS field, for the ratios (open interest depends on the market)
METRICS_RATIOS = {"count_toptrader_long_short_ratio": "top_trader_long_short_accounts",
                  "sum_toptrader_long_short_ratio": "top_trader_long_short_positions",
                  "count_long_short_ratio": "long_short_accounts",
                  "sum_taker_long_short_vol_ratio": "taker_long_short_volume"}
FOLDER_KINDS = {"klines": "klines", "markPriceKlines": "mark", "indexPriceKlines": "index",
                "premiumIndexKlines": "premium", "bookDepth": "depth", "aggTrades": "agg-trades",
                "trades": "trades", "metrics": "metrics", "fundingRate": "funding"}
BLOCK_BYTES = 8 << 20
#: a daily (``-YYYY-MM-DD``) or monthly (``-YYYY-MM``: ``fundingRate`` is published monthly only) file
NAME = re.compile(r"^(?P<symbol>[A-Z0-9_]+)-(?P<what>[A-Za-z0-9]+)-(?P<date>\d{4}-\d{2}(-\d{2})?)\.(csv|zip)$")


def kind_of(path: Path) -> str | None:
    """The kind a Binance Vision path holds, from its folder or name (None if unknown)."""
    for part in reversed(path.parts[:-1]):
        if part in FOLDER_KINDS:
            return FOLDER_KINDS[part]
    m = NAME.match(path.name)
    if m and m.group("what") == "bookDepth":
        return "depth"
    if m and m.group("what") == "aggTrades":
        return "agg-trades"
    if m and m.group("what") == "trades":
        return "trades"
    if m and m.group("what") == "metrics":
        return "metrics"
    if m and m.group("what") == "fundingRate":
        return "funding"
    if m and re.fullmatch(r"\d+[smhdwM]", m.group("what")):
        return "klines"
    return None


def symbol_of(path: Path) -> str:
    m = NAME.match(path.name)
    if not m:
        raise ValueError(f"{path}: not a Binance Vision file name (expected SYMBOL-INTERVAL-YYYY-MM-DD.zip, "
                         f"SYMBOL-bookDepth-YYYY-MM-DD.zip or SYMBOL-fundingRate-YYYY-MM.zip)")
    return m.group("symbol")


def _text(path: Path) -> bytes:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith(".csv")]
                if len(names) != 1:
                    raise ValueError(f"{path}: expected one CSV inside the zip (found {len(names)})")
                return z.read(names[0])
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ValueError(f"{path}: truncated or corrupt zip file ({exc})") from None
    return path.read_bytes()


def _has_header(first: list[str]) -> bool:
    """Whether a CSV's first line is a header: a data row starts with a number or a date."""
    return not re.match(r"\s*-?\.?\d", first[0])


def _table(path: Path, data: bytes, columns: tuple[str, ...], types: dict) -> tuple[pa.Table, int]:
    """The ``types`` columns of a CSV with the ``columns`` layout, with or without a header, and
    the file row number of its first data row. Empty cells (and ``null``) are null; a cell that
    does not convert is an error naming its row and column."""
    first = data.split(b"\n", 1)[0].decode(errors="replace").strip().split(",")
    has_header = _has_header(first)
    if has_header:
        first = [c.strip().strip('"') for c in first]
        missing = [c for c in columns if c not in first]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}")
        read = pacsv.ReadOptions(use_threads=False)
    else:
        if len(first) != len(columns):
            raise ValueError(f"{path}: row 1 has {len(first)} columns; expected {len(columns)} "
                             f"({','.join(columns)})")
        read = pacsv.ReadOptions(column_names=list(columns), use_threads=False)
    # read as text, then convert column by column: Arrow's CSV conversion error names no row.
    # Only an empty cell (or "null") is missing: "n/a" and the like are errors, not silent nulls
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in types}, include_columns=list(types),
                                   null_values=["", "null"], strings_can_be_null=True)
    try:
        raw = pacsv.read_csv(io.BytesIO(data), read_options=read, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: {str(exc).splitlines()[0]}") from None
    row = 2 if has_header else 1
    return pa.table({name: _convert(path, raw.column(name), name, kind, row) for name, kind in types.items()}), row


def _convert(path: Path, column: pa.ChunkedArray, name: str, kind: pa.DataType, row: int) -> pa.ChunkedArray:
    if kind == pa.string():
        return column
    try:
        return pc.cast(column, kind)
    except pa.ArrowInvalid:
        for i, text in enumerate(column.to_pylist()):
            try:
                pc.cast(pa.array([text]), kind)
            except pa.ArrowInvalid:
                what = "an integer" if pa.types.is_integer(kind) else "a number"
                raise ValueError(f"{path}: row {row + i}: column {name!r}: expected {what} (got {text!r})") from None
        raise


def _utc_seconds(path: Path, table: pa.Table, name: str, row: int) -> np.ndarray:
    """A column of ``YYYY-MM-DD HH:MM:SS`` UTC texts as int64 nanoseconds."""
    # the archive has stray spaces around some times (bookDepth 2025-10-10 row 25,883): trim, then parse
    text = pc.utf8_trim_whitespace(table.column(name))
    try:
        stamps = pc.strptime(text, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: {exc}") from None
    if stamps.null_count:
        i = int(np.flatnonzero(np.asarray(stamps.is_null()))[0])
        raise ValueError(f"{path}: row {i + row}: column {name!r}: expected YYYY-MM-DD HH:MM:SS "
                         f"(got {table.column(name)[i].as_py()!r})")
    return stamps.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy()


def _numbers(path: Path, column: pa.Array | pa.ChunkedArray, name: str, offset: int, minimum: str | None = ">",
             null: bool = False) -> np.ndarray:
    """A number column's values (NaN where a cell is empty), checked: each cell a finite number,
    above 0 (``minimum=">"``), at least 0 (``">="``) or of any sign (None); an empty cell allowed
    only with ``null``. Else an error naming the first bad row: an empty cell, a cell that is not
    finite (``nan``, ``inf``: never taken for an empty one), a value out of range."""
    empty = np.asarray(pc.is_null(column), dtype=bool)
    values = column.to_numpy(zero_copy_only=False) if isinstance(column, pa.Array) else column.to_numpy()
    values = values.astype(np.float64)
    if not null and empty.any():
        raise ValueError(f"{path}: row {int(np.flatnonzero(empty)[0]) + offset}: column {name!r} is empty")
    checks = [(~empty & ~np.isfinite(values), NOT_FINITE)]
    if minimum is not None:
        with np.errstate(invalid="ignore"):
            low = values > 0 if minimum == ">" else values >= 0
        checks.append((~empty & ~low, f"expected a finite value {minimum} 0"))
    for bad, what in checks:
        bad = np.flatnonzero(bad)
        if len(bad):
            raise ValueError(f"{path}: row {int(bad[0]) + offset}: column {name!r}: {what} "
                             f"(got {shown(float(values[bad[0]]))}); {len(bad)} such row(s)")
    return values


def read_klines(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """A klines-family file as a price stream (the close as of the bar's end)."""
    path = Path(path)
    data = _text(path)
    table, offset = _table(path, data, KLINE_COLUMNS, {"close": pa.float64(), "close_time": pa.int64()})
    close = _numbers(path, table.column("close"), "close", offset)
    end = table.column("close_time").to_numpy()
    scale = 1_000 if end.max(initial=0) > 10**14 else 1_000_000  # µs or ms -> ns
    ts = (end + 1) * scale  # the bar's end: close_time is one unit before it
    batch = pa.RecordBatch.from_arrays([pa.array(ts).cast(pa.timestamp("ns", tz="UTC")), pa.array(close)],
                                       schema=STREAM)
    yield "binance", symbol_of(path), batch, offset


def read_book_depth(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """A ``bookDepth`` file as depth snapshots."""
    path = Path(path)
    data = _text(path)
    table, row = _table(path, data, DEPTH_COLUMNS, {"timestamp": pa.string(), "percentage": pa.float64(),
                                                     "depth": pa.float64(), "notional": pa.float64()})
    ts = _utc_seconds(path, table, "timestamp", row)
    pct = _numbers(path, table.column("percentage"), "percentage", row, minimum=None)
    depth = _numbers(path, table.column("depth"), "depth", row)
    notional = _numbers(path, table.column("notional"), "notional", row)
    # within one snapshot and side, cumulative depth must not shrink as the band widens (bids are
    # listed widest first, asks narrowest first: check neighbouring rows either way)
    same = (ts[1:] == ts[:-1]) & (np.sign(pct[1:]) == np.sign(pct[:-1]))
    wider = np.abs(pct[1:]) > np.abs(pct[:-1])
    bad = same & np.where(wider, notional[1:] < notional[:-1], notional[1:] > notional[:-1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: rows {i + row}-{i + row + 1}: cumulative depth is not monotone in the band "
                         f"({pct[i]:g}%: {notional[i]:g}, {pct[i + 1]:g}%: {notional[i + 1]:g}); "
                         f"a wider band must hold at least as much")
    batch = pa.RecordBatch.from_arrays([pa.array(ts).cast(pa.timestamp("ns", tz="UTC")), pa.array(pct),
                                        pa.array(depth), pa.array(notional)], schema=DEPTH)
    yield "binance", symbol_of(path), batch, row


def read_metrics(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """A ``metrics`` file as positioning metrics.

    COIN-M files give open interest in contracts and its value in the base asset: the base-unit
    open interest is then ``sum_open_interest_value`` and the quote (USD) value is contracts x the
    contract's USD face (see the module notes).

    Parameters
    ----------
    path : str or Path
        ``SYMBOL-metrics-YYYY-MM-DD.zip`` or ``.csv``, with or without a header.

    Yields
    ------
    tuple
        ``("binance", symbol, batch, first_row)``, the batch in the ``METRICS`` schema (open
        interest in base units and quote, the four ratios; empty cells null).

    Raises
    ------
    ValueError
        Naming the file and row: negative open interest or ratio, a cell that is not a number, a
        time that is not ``YYYY-MM-DD HH:MM:SS``, a row of another symbol than the file name's.
    """
    path = Path(path)
    symbol = symbol_of(path)
    data = _text(path)
    types = {"create_time": pa.string(), "symbol": pa.string(),
             **{name: pa.float64() for name in METRICS_COLUMNS[2:]}}
    table, row = _table(path, data, METRICS_COLUMNS, types)
    ts = _utc_seconds(path, table, "create_time", row)
    other = np.flatnonzero(np.asarray(pc.fill_null(pc.not_equal(table.column("symbol"), symbol), True)))
    if len(other):
        raise ValueError(f"{path}: row {int(other[0]) + row}: column 'symbol': expected {symbol} as in the file "
                         f"name (got {table.column('symbol')[int(other[0])].as_py()!r})")
    values = {name: _numbers(path, table.column(name), name, row, minimum=">=", null=True)
              for name in METRICS_COLUMNS[2:]}
    face = coinm_face(symbol)
    if face is None:
        oi, oi_value = values["sum_open_interest"], values["sum_open_interest_value"]
    else:  # contracts and base units (see the module notes)
        oi, oi_value = values["sum_open_interest_value"], values["sum_open_interest"] * face
    arrays = [pa.array(ts).cast(pa.timestamp("ns", tz="UTC")), pa.array(oi, from_pandas=True),
              pa.array(oi_value, from_pandas=True)]
    arrays += [pa.array(values[name], from_pandas=True) for name in METRICS_RATIOS]
    yield "binance", symbol, pa.RecordBatch.from_arrays(arrays, schema=METRICS), row


def read_trades(path: str | Path, kind: str = "agg-trades",
                block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """An ``aggTrades`` or ``trades`` file as canonical trades, streamed in blocks (the zip member
    is read through, not unpacked). Taker side from ``is_buyer_maker`` (a buyer-maker trade was
    a taker sell); COIN-M contract counts are converted to base units."""
    from riskengine.data.schema import TRADES

    path = Path(path)
    columns = AGG_TRADES_COLUMNS if kind == "agg-trades" else TRADES_COLUMNS
    id_col, qty_col, time_col = (("agg_trade_id", "quantity", "transact_time") if kind == "agg-trades"
                                 else ("id", "qty", "time"))
    symbol = symbol_of(path)
    face = coinm_face(symbol)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")

    def stream():
        if path.suffix == ".zip":
            z = zipfile.ZipFile(path)
            names = [n for n in z.namelist() if n.endswith(".csv")]
            if len(names) != 1:
                raise ValueError(f"{path}: expected one CSV inside the zip (found {len(names)})")
            return z.open(names[0])
        return open(path, "rb")

    try:
        with stream() as f:
            first = f.readline().decode(errors="replace").strip().split(",")
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path}: truncated or corrupt zip file ({exc})") from None
    has_header = _has_header(first)
    if has_header:
        missing = [c for c in columns if c not in first]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}")
        read = pacsv.ReadOptions(block_size=block_bytes, use_threads=False)
    else:
        if len(first) != len(columns):
            raise ValueError(f"{path}: row 1 has {len(first)} columns; expected {len(columns)} ({','.join(columns)})")
        read = pacsv.ReadOptions(block_size=block_bytes, use_threads=False, column_names=list(columns))
    convert = pacsv.ConvertOptions(
        column_types={id_col: pa.string(), "price": pa.float64(), qty_col: pa.float64(),
                      time_col: pa.int64(), "is_buyer_maker": pa.bool_()},
        include_columns=[id_col, "price", qty_col, time_col, "is_buyer_maker"],
        null_values=["", "null"])  # as in _table: a "nan" cell is a value (and refused), not a missing one
    row = 2 if has_header else 1
    try:
        with stream() as f:
            reader = pacsv.open_csv(f, read_options=read, convert_options=convert)
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                price = _numbers(path, batch.column("price"), "price", row)
                qty = _numbers(path, batch.column(qty_col), qty_col, row, minimum=None)
                neg = np.flatnonzero(~(qty >= 0))
                if len(neg):
                    raise ValueError(f"{path}: row {row + int(neg[0])}: column {qty_col!r}: expected a size >= 0 "
                                     f"(got {float(qty[neg[0]])!r})")
                t = batch.column(time_col).to_numpy()
                scale = 1_000 if t.max(initial=0) > 10**14 else 1_000_000
                base = qty * face / price if face is not None else qty
                side = np.where(batch.column("is_buyer_maker").to_numpy(zero_copy_only=False), -1, 1).astype(np.int8)
                yield "binance", symbol, pa.RecordBatch.from_arrays(
                    [pa.array(t * scale).cast(pa.timestamp("ns", tz="UTC")), pa.array(price), pa.array(base),
                     pa.array(side), batch.column(id_col)], schema=TRADES), row
                row += batch.num_rows
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: truncated or corrupt zip file ({exc})") from None
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: {str(exc).splitlines()[0]}") from None


def read_funding_rate(path: str | Path) -> Iterator[tuple[str, str, pa.RecordBatch, int]]:
    """A ``fundingRate`` file as funding rates (kind ``funding``).

    Parameters
    ----------
    path : str or Path
        ``SYMBOL-fundingRate-YYYY-MM.zip`` (one CSV inside) or that ``.csv``, with the header
        ``calc_time,funding_interval_hours,last_funding_rate``.

    Yields
    ------
    tuple
        ``("binance", symbol, batch, first_row)``, the batch in the ``FUNDING`` schema (time, rate,
        interval in hours; premium null: the file does not give it).

    Raises
    ------
    ValueError
        Naming the file: another header (and the expected one); naming the row: a time that is
        not a positive integer, an interval that is not > 0, a rate that is not a finite number.
    """
    path = Path(path)
    symbol = symbol_of(path)
    data = _text(path)
    first = data.split(b"\n", 1)[0].decode(errors="replace").strip().lstrip("\ufeff")
    if tuple(c.strip().strip('"') for c in first.split(",")) != FUNDING_RATE_COLUMNS:
        raise ValueError(f"{path}: expected the header {','.join(FUNDING_RATE_COLUMNS)} (got {first[:100]!r})")
    types = {"calc_time": pa.int64(), "funding_interval_hours": pa.float64(), "last_funding_rate": pa.float64()}
    table, row = _table(path, data, FUNDING_RATE_COLUMNS, types)
    calc = table.column("calc_time")
    if calc.null_count:
        i = int(np.flatnonzero(np.asarray(calc.is_null()))[0])
        raise ValueError(f"{path}: row {i + row}: column 'calc_time' is empty")
    t = calc.to_numpy()
    bad = np.flatnonzero(t <= 0)
    if len(bad):
        raise ValueError(f"{path}: row {int(bad[0]) + row}: column 'calc_time': expected a time in ms > 0 "
                         f"(got {int(t[bad[0]])})")
    hours = _numbers(path, table.column("funding_interval_hours"), "funding_interval_hours", row)
    rate = _numbers(path, table.column("last_funding_rate"), "last_funding_rate", row, minimum=None)
    scale = 1_000 if t.max(initial=0) > 10**14 else 1_000_000  # µs or ms -> ns
    batch = pa.RecordBatch.from_arrays([pa.array(t * scale).cast(pa.timestamp("ns", tz="UTC")), pa.array(rate),
                                        pa.array(hours), pa.nulls(len(t), pa.float64())], schema=FUNDING)
    yield "binance", symbol, batch, row
