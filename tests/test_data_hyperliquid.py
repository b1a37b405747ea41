"""Hyperliquid fills import, on the real node_fills_by_block sample in ../shared/data/formats."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from riskengine.data import Catalog

SAMPLE = "formats/hyperliquid-node_fills_by_block-sample-2025-10-27.json"


@pytest.fixture()
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def fills(shared_data):
    with open(shared_data / SAMPLE) as f:
        for line in f:
            for user, fill in json.loads(line)["events"]:
                yield user, fill


def test_one_trade_per_fill_pair(shared_data, catalog):
    report = catalog.import_file(shared_data / SAMPLE, source="hyperliquid")
    all_fills = [f for _, f in fills(shared_data)]
    tids = Counter(f["tid"] for f in all_fills)
    assert report.rows == len(tids) == len(all_fills) // 2
    # per coin, the kept volume is half the volume of all fills, and the side is the taker's
    for coin in ("ETH", "BTC"):
        table = catalog.read_trades("hyperliquid", coin)
        coin_fills = [f for f in all_fills if f["coin"] == coin]
        assert table.column("qty").to_numpy().sum() == pytest.approx(sum(float(f["sz"]) for f in coin_fills) / 2)
        takers = {str(f["tid"]): (1 if f["side"] == "B" else -1) for f in coin_fills if f["crossed"]}
        got = dict(zip(table.column("trade_id").to_pylist(), table.column("side").to_pylist()))
        assert got == takers
        assert np.all(np.diff(table.column("ts").cast("int64").to_numpy()) >= 0)


def test_liquidation_fills_are_observed_events(shared_data, catalog):
    catalog.import_file(shared_data / SAMPLE, source="hyperliquid", kind="events")
    liquidated = [(u, f) for u, f in fills(shared_data) if f.get("liquidation") and u == f["liquidation"]["liquidatedUser"]]
    assert len(liquidated) == 1
    user, fill = liquidated[0]
    (event,) = catalog.read("events", "hyperliquid", fill["coin"]).to_pylist()
    assert (event["kind"], event["method"], event["user"]) == ("liquidation", "market", user)
    assert event["price"] == float(fill["px"]) and event["size"] == float(fill["sz"])
    assert event["mark"] == float(fill["liquidation"]["markPx"])


def test_adl_fills_are_observed_events(shared_data, catalog, tmp_path):
    line = (shared_data / SAMPLE).read_text().splitlines()[0]
    block = json.loads(line)
    user, fill = block["events"][0]
    fill = dict(fill, dir="Auto-Deleveraging")
    block["events"] = [[user, fill]]
    path = tmp_path / "adl.json"
    path.write_text(json.dumps(block) + "\n")
    catalog.import_file(path, source="hyperliquid", kind="events")
    (event,) = catalog.read("events", "hyperliquid", fill["coin"]).to_pylist()
    assert event["kind"] == "adl" and event["user"] == user


def test_lz4_archive(shared_data, catalog, tmp_path):
    lz4 = pytest.importorskip("lz4.frame")
    path = tmp_path / "node_fills_by_block.lz4"
    path.write_bytes(lz4.compress((shared_data / SAMPLE).read_bytes()))
    report = catalog.import_file(path, source="hyperliquid")
    assert report.rows == 3_641


def test_wrong_venue_file(shared_data, catalog):
    tardis = shared_data / "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"
    with pytest.raises(ValueError, match=r"line 1: not JSON"):
        catalog.import_file(tardis, source="hyperliquid")
    assert catalog.list() == []


@pytest.mark.parametrize("change, message", [
    ({"sz": "-1.0"}, r"line 2: expected a size >= 0 \(got '-1.0'\)"),
    ({"px": "abc"}, r"line 2: 'px' must be a number \(got 'abc'\)"),
])
def test_bad_fill_names_the_line(shared_data, catalog, tmp_path, change, message):
    lines = (shared_data / SAMPLE).read_text().splitlines()
    k = next(i for i in range(1, len(lines)) if json.loads(lines[i])["events"])
    lines = lines[: k + 2]
    block = json.loads(lines[k])
    block["events"][0][1].update(change)
    lines[k] = json.dumps(block)
    message = message.replace("line 2", f"line {k + 1}")
    path = tmp_path / "bad.json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        catalog.import_file(path, source="hyperliquid")
    assert catalog.list() == []
