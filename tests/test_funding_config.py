"""Funding from a config (issue 13): a scenario's funding rates read from a Binance Vision
``fundingRate`` file and paid by the designs whose ``funding.rule`` is ``data``; rates computed
from the premium of a real COIN-M perp tape over its Coinbase spot index (``rule =
"hyperliquid"``); ``rule = "none"`` pays nothing; ``funding_paid`` in the result table.

The scenario is one of the COIN-M alts of 2025-10-10 from ``../shared/data`` (the perp's own
trades, its spot index as the stream), 20:00-23:00 UTC.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import zipfile

import numpy as np
import pytest

from riskengine import backtest, config, funding
from riskengine.codes import EventKind

from conftest import SHARED_DATA

TAPE = "2025-10-10/binance-coinm-perp-trades/binance-delivery_trades_2025-10-10_AVAXUSD_PERP.csv.gz"
INDEX = "2025-10-10/spot-trades/coinbase_trades_2025-10-10_AVAX-USD.csv.gz"
HOUR_MS = 3_600_000
T21_MS = int(dt.datetime(2025, 10, 10, 21, tzinfo=dt.timezone.utc).timestamp() * 1000)


def write_rates(folder, rows: list[tuple[int, float]]):
    """A Binance Vision fundingRate archive (hourly rows), as Binance ships it."""
    name = "AVAXUSD_PERP-fundingRate-2025-10"
    text = "calc_time,funding_interval_hours,last_funding_rate\n" + "".join(
        f"{ms},1,{rate:.8f}\n" for ms, rate in rows)
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}.csv", text)
    return path


def write_config(tmp_path, funding_line: str, designs: str) -> config.LoadedConfig:
    text = textwrap.dedent(f"""\
        [scenario]
        name = "avax"
        underlying = "AVAX"
        tape = {{ source = "tardis", path = "{SHARED_DATA / TAPE}" }}
        stream = {{ source = "tardis", path = "{SHARED_DATA / INDEX}" }}
        window = {{ start = 2025-10-10T20:00:00Z, end = 2025-10-10T23:00:00Z }}
        {funding_line}

        [population]
        accounts = 2_000
        open_interest_usd = 5e6
        long_share = 0.65
        seed = 3
        """) + textwrap.dedent(designs)
    path = tmp_path / "funding.toml"
    path.write_text(text)
    return config.load(path)


def funding_rows(result):
    ev = result.events.to_pandas()
    return ev[ev["kind"] == EventKind.FUNDING]


@pytest.fixture()
def shared(shared_data):
    return shared_data


def test_rates_from_a_binance_vision_file_are_paid_by_the_data_rule(tmp_path, shared):
    # rates at 21:00 (+0.1%) and 22:00 (-0.2%) UTC; 23:00 is the window's end (no later tick): unpaid
    path = write_rates(tmp_path, [(T21_MS, 0.001), (T21_MS + HOUR_MS, -0.002), (T21_MS + 2 * HOUR_MS, 0.003)])
    loaded = write_config(tmp_path, f'funding = {{ source = "binance-vision", path = "{path}" }}', """
        [[venues]]
        preset = "binance-usdm"
        name = "paid"

        [[venues]]
        preset = "binance-usdm"
        name = "unpaid"
        funding = { rule = "none" }
        """)
    result = backtest.run_config(loaded)
    table = result.table.set_index("design")
    rows = funding_rows(result)
    paid = rows[rows["design"] == "paid"]
    assert len(rows[rows["design"] == "unpaid"]) == 0 and table.loc["unpaid", "funding_paid"] == 0.0
    assert len(paid) == 2
    # each row: amount = net modelled size x mark x rate; its time: the first tick after the funding time
    rate = paid["amount"].to_numpy() / (paid["size"].to_numpy() * paid["price"].to_numpy())
    assert rate == pytest.approx([0.001, -0.002], rel=1e-9)
    first = [int(dt.datetime(2025, 10, 10, h, tzinfo=dt.timezone.utc).timestamp() * 1e9) for h in (21, 22)]
    assert (paid["ts"].to_numpy() > np.array(first)).all()
    assert table.loc["paid", "funding_paid"] > 0.0


def test_hyperliquid_rates_computed_from_the_premium_of_the_perp_over_its_index(tmp_path, shared):
    loaded = write_config(tmp_path, "", """
        [[venues]]
        preset = "hyperliquid"
        name = "computed"
        funding = { rule = "hyperliquid" }

        [[venues]]
        preset = "hyperliquid"
        name = "data-without-data"
        """)
    result = backtest.run_config(loaded)
    rows = funding_rows(result)
    computed = rows[rows["design"] == "computed"]
    assert len(rows[rows["design"] == "data-without-data"]) == 0
    # the rates the engine paid are the venue formula's on the replayed tape and its stream
    prepared = backtest.prepare(loaded, 0)
    tape = prepared.scenario.tape
    known = np.isfinite(tape.stream)
    want = funding.hyperliquid_funding((tape.ts, tape.price), (tape.ts[known], tape.stream[known]))
    due = want.ts < tape.ts[-1]  # paid before a later tick: not 23:00, the window's end
    # the hours whose every 5 s sample the replay covers: 21:00-22:00 (the tape's first trade and
    # index value come after 20:00:05, so the hour closing at 21:00 is not whole)
    t22 = int(dt.datetime(2025, 10, 10, 22, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    assert t22 in want.ts[due] and len(computed) == int(due.sum())
    # Hyperliquid pays at the oracle (the stream): amount = net size x index x rate
    paid = computed["amount"].to_numpy() / (computed["size"].to_numpy() * computed["price"].to_numpy())
    assert paid == pytest.approx(want.rate[due], rel=1e-9)
    # the crash hour's perp sat far below its spot index: shorts pay longs (a negative rate)
    assert want.rate[want.ts == t22][0] < 0


def test_a_computed_rule_needs_the_scenarios_index_stream(tmp_path, shared):
    text = textwrap.dedent(f"""\
        [scenario]
        name = "avax"
        underlying = "AVAX"
        tape = {{ source = "tardis", path = "{SHARED_DATA / TAPE}" }}
        window = {{ start = 2025-10-10T20:00:00Z, end = 2025-10-10T23:00:00Z }}

        [population]
        accounts = 500
        open_interest_usd = 1e6

        [[venues]]
        preset = "binance-usdm"
        mark = {{ method = "last" }}
        funding = {{ rule = "binance", interval_hours = 1 }}
        """)
    path = tmp_path / "no-stream.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"funding\.rule 'binance' computes rates from the premium of the tape "
                                         r"over its index stream, but scenario 'avax' has none"):
        backtest.run_config(config.load(path))
