"""What really happened, next to what the simulation says: observed outcomes of a real crash.

Hyperliquid, 2025-10-10 21:15-21:27 UTC (``../shared/data/2025-10-10/hyperliquid-observed/``,
aggregates reconstructed from Hyperliquid's public node fills by
ConejoCapital/HyperMultiAssetedADL; see that folder's README):

* ``combined_impact_by_ticker.csv``: per ticker, liquidation and ADL notional and fill counts;
* ``cascade_timing_results.json``: first liquidation and first ADL (epoch fields), venue-wide.

Counts there are *fills*; the simulated ``liquidations`` and ``adl_fills`` count engine events
(one per liquidated account and order, one per ADL'd account and order), so counts compare
loosely and notionals closely. The observed liquidation figures include the liquidated side of
every ADL fill (the data README's trap), as the simulated ``liquidations`` include ADL'd
orders: do not add liquidation and ADL notional together on either side.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ObservedColumn:
    """One observed column and the simulated column it sits next to."""

    name: str
    simulated: str
    description: str


#: observed columns of the result table, each beside its simulated twin (riskengine/metrics.py)
COLUMNS = (
    ObservedColumn("observed_liquidations", "liquidations", "liquidation fills the venue printed for the asset"),
    ObservedColumn("observed_liquidated_notional", "liquidated_notional", "their notional"),
    ObservedColumn("observed_adl_fills", "adl_fills", "ADL fills the venue printed for the asset"),
    ObservedColumn("observed_adl_notional", "adl_notional", "their notional"),
    ObservedColumn("observed_adl_to_liquidated", "adl_to_liquidated", "ADL notional / liquidation notional"),
    ObservedColumn("observed_first_adl_delay_s", "first_adl_delay_s",
                   "seconds from the first liquidation to the first ADL (venue-wide)"),
)


def _number(path: Path, row: int, record: dict, key: str) -> float:
    try:
        return float(record[key])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: row {row}: column {key!r}: expected a number (got {record.get(key)!r})") from None


def hyperliquid(folder: str | Path, ticker: str) -> dict[str, float]:
    """Observed Hyperliquid figures for one ticker (keys: :data:`COLUMNS` names).

    Raises
    ------
    ValueError
        A missing file, a ticker the data does not have (with the nearest), a bad cell.
    """
    folder = Path(folder)
    impact = folder / "combined_impact_by_ticker.csv"
    timing = folder / "cascade_timing_results.json"
    for path in (impact, timing):
        if not path.is_file():
            raise ValueError(f"{path}: no such file (expected the hyperliquid-observed folder)")
    with open(impact, newline="", encoding="utf-8") as f:
        rows = {r.get("ticker"): (i, r) for i, r in enumerate(csv.DictReader(f), start=2)}
    if ticker not in rows:
        from riskengine.errors import suggest

        raise ValueError(f"{impact}: no ticker {ticker!r}{suggest(ticker, [t for t in rows if t])} "
                         f"({len(rows)} tickers)")
    row, record = rows[ticker]
    liq = _number(impact, row, record, "liq_notional")
    adl = _number(impact, row, record, "adl_notional")
    try:
        times = json.loads(timing.read_text(encoding="utf-8"))
        first_liq = dt.datetime.fromisoformat(times["first_liquidation"])
        first_adl = dt.datetime.fromisoformat(times["first_adl"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{timing}: expected first_liquidation and first_adl times ({exc})") from None
    return {
        "observed_liquidations": _number(impact, row, record, "liq_events"),
        "observed_liquidated_notional": liq,
        "observed_adl_fills": _number(impact, row, record, "adl_events"),
        "observed_adl_notional": adl,
        "observed_adl_to_liquidated": adl / liq if liq > 0 else math.nan,
        "observed_first_adl_delay_s": (first_adl - first_liq).total_seconds(),
    }
