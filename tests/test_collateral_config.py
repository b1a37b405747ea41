"""Collateral assets from a config (issue 13): ``[[scenario.collateral]]`` tables, holdings from a
positions file or ``portfolio.collateral``, ``venues[i].collateral`` (the index a design values an
asset at and its collateral ratio), resolved per design into the asset instrument's tape
(index x ratio) the engines take; the shipped ``backtests/collateral-depeg.toml``; bad input in
one line; run hashes of configs without collateral unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from _cli import write

from riskengine import backtest, config, sweep
from riskengine.codes import EventKind
from riskengine.metrics import LIQUIDATION_KINDS

ROOT = Path(__file__).resolve().parents[1]
DEPEG = ROOT / "backtests" / "collateral-depeg.toml"
#: a flat tape: the synthetic crash with no drop, no wick, no rebound and 1e-7 log noise a tick, from
#: 2025-10-10 20:00 UTC for three hours; it keeps its calm hour's 2% drift (20:00-21:00), so the
#: window opens at 21:00, where the price is 121,700 x exp(-0.02) = 119,290.4 and stays: the only
#: thing that moves margin is the asset's price
FLAT = ('synthetic = { ticks = 10_800, start_price = 121_700.0, duration_s = 10_800.0, drop = 0.0, wick = 0.0, '
        'rebound = 0.0, noise = 1e-7, seed = 1 }')
WINDOW = 'window = { start = 2025-10-10T21:00:00Z }'
START_PRICE = 121_700.0 * float(np.exp(-0.02))


def _config(tmp_path: Path, positions: str, *, collateral: str | None = None, venues: str | None = None,
            portfolio: str | None = None) -> Path:
    """A one-instrument portfolio scenario on the flat tape with a USDE asset (a constructed
    depeg, DepegPath's defaults: 0.65 at 21:43-21:50, seed 5; $1 redemption) and two binance-usdm
    designs that differ only in the collateral index."""
    write(tmp_path, positions, "positions.csv")
    collateral = collateral if collateral is not None else (
        '[[scenario.collateral]]\nasset = "USDE"\nredemption = 1.0\n'
        'constructed = { seed = 5 }\n')
    venues = venues if venues is not None else (
        '[[venues]]\npreset = "binance-usdm"\nname = "own-book"\n'
        'collateral = { index = "own-book", assumed = { USDE = 0.9 } }\n\n'
        '[[venues]]\npreset = "binance-usdm"\nname = "floor"\n'
        'collateral = { index = "redemption-floor", floor = 0.97, assumed = { USDE = 0.9 } }\n')
    portfolio = portfolio if portfolio is not None else 'file = "positions.csv"'
    return write(tmp_path, f"""
[scenario]
name = "usde"
{WINDOW}

[scenario.portfolio]
{portfolio}

[[scenario.instruments]]
symbol = "BTCUSDT"
{FLAT}

{collateral}
{venues}
""", "c.toml")


#: account 0: a short of 1 BTC entered 0.1% above the start price (so never losing on the flat
#: tape: upnl = 119.3 USDT), wallet 0 USDT, 500 USDe. binance-usdm BTCUSDT on 2025-10-10, first
#: bracket: MM = 0.4% x 119,290 = 477.2.
#:   own-book: equity = 500 x index x 0.9 + 119.3: 569.3 at the peg (>= 477.2); below 477.2 once
#:             450 x index < 357.9, i.e. index < 0.795: the depeg to ~0.65 liquidates it.
#:   floor:    index = max(0.97, 1.0) = 1 always: equity 569.3, never liquidated.
#: account 1: the same short with 500 USDT instead of USDe: equity 500 + 119.3 = 619.3 in both.
#: account 2: 1,000 USDe and no position (no margin to keep): never liquidated.
POSITIONS = f"""account,instrument,size,entry_price,margin_mode,isolated_margin,wallet
0,BTCUSDT,-1,{START_PRICE * 1.001},cross,,0
0,USDE,500,,,,0
1,BTCUSDT,-1,{START_PRICE * 1.001},cross,,500
2,USDE,1000,0,cross,,0
"""


def _liquidated_users(result, design: str, scenario) -> set[int]:
    ev = result.events.to_pandas()
    rows = ev[(ev.design == design) & ev.kind.isin([int(k) for k in LIQUIDATION_KINDS])]
    return {int(scenario.margin_accounts.owner[a]) for a in rows.account}


def test_a_depeg_liquidates_under_own_book_and_the_floor_saves_it(tmp_path):
    loaded = config.load(_config(tmp_path, POSITIONS))
    result = backtest.run_config(loaded, check_invariants=True)
    scenario = backtest.prepare(loaded, 0).scenario
    assert scenario.symbols == ("BTCUSDT", "USDE") and scenario.portfolio.assets == (1,)
    assert _liquidated_users(result, "own-book", scenario) == {0}
    assert _liquidated_users(result, "floor", scenario) == set()
    ev = result.events.to_pandas()
    (liq,) = ev[(ev.design == "own-book") & (ev.kind == int(EventKind.LIQUIDATION))].itertuples()
    assert liq.instrument == 0 and liq.size == pytest.approx(-1.0)  # the short, closed whole
    assert liq.amount > 0  # closed below its entry: not a losing position
    # the depeg was the trigger: at the liquidation the index was below 0.795 (see POSITIONS)
    own = backtest._resolved(loaded, 0, backtest.prepare(loaded, 0), backtest.build_designs(loaded, 0), None,
                             "cython")[0].scenario.instruments[1].tape
    index = own.price[np.searchsorted(own.ts, liq.ts, side="right") - 1] / 0.9
    assert index < 0.795
    assert liq.ts >= int(dt.datetime(2025, 10, 10, 21, 36, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    table = result.table.set_index("design")
    assert table.loc["own-book", "accounts_liquidated"] == 1 and table.loc["floor", "accounts_liquidated"] == 0
    # per-instrument rows exist for the asset; its counts are COLLATERAL_EXCHANGE rows
    by = result.by_instrument.set_index(["design", "symbol"])
    sold = ev[(ev.design == "own-book") & (ev.kind == int(EventKind.COLLATERAL_EXCHANGE))]
    assert by.loc[("own-book", "USDE"), "liquidations"] == len(sold)
    assert by.loc[("floor", "USDE"), "liquidations"] == 0


def test_each_design_prices_the_asset_at_its_index_times_its_ratio(tmp_path):
    loaded = config.load(_config(tmp_path, POSITIONS))
    prepared = backtest.prepare(loaded, 0)
    designs = backtest.build_designs(loaded, 0)
    own, floor = backtest._resolved(loaded, 0, prepared, designs, None, "cython")
    asset = prepared.scenario.assets[0]
    start = int(prepared.scenario.instruments[0].tape.ts[0])
    path = asset.own  # the constructed path (seed 5), standing for the own book
    assert path.constructed and "constructed" in path.label
    tape = own.scenario.instruments[1].tape
    # own-book: the path x 0.9 at each of its prints from the replay's start (the first as of then)
    inside = (path.ts > start) & (path.ts <= int(prepared.scenario.instruments[0].tape.ts[-1]))
    np.testing.assert_allclose(tape.price[1:], path.price[inside] * 0.9)
    assert tape.ts[0] == start
    # redemption-floor, weight 1: max(0.97, 1.0) x 0.9 = 0.9, one print at the start
    np.testing.assert_allclose(floor.scenario.instruments[1].tape.price, [0.9])
    assert own.params[1].collateral and not own.params[0].collateral
    assert list(own.params[1].mm_rates) == [0.0]
    assert own.funding is None  # no funding rates given; an asset never gets any
    lines = backtest.resolved_warnings("usde", [own, floor])
    assert any("own-book" in line and "constructed" in line for line in lines)
    assert sum("assumed" in line and "USDE" in line for line in lines) == 2


def test_generated_holdings_follow_share_and_fraction(tmp_path):
    portfolio = ("accounts = 2_000\nopen_interest_usd = 1e7\ncross_share = 1.0\nseed = 3\n"
                 "collateral = { USDE = { share = 0.5, fraction = 0.25 } }")
    loaded = config.load(_config(tmp_path, "", portfolio=portfolio))
    pf = backtest.prepare(loaded, 0).scenario.portfolio
    held = pf.holdings
    users = pf.owners()[held]
    # the index at the start is ~1 (calm noise 2 bp): amount = wallet_before x 0.25 / price, and
    # the wallet kept is 0.75 of it: amount ~= wallet_after / 3
    np.testing.assert_allclose(pf.size[held], pf.wallet[users] / 3, rtol=1e-3)
    with_wallet = int(np.count_nonzero(pf.wallet > 0))
    assert 0.45 < len(users) / with_wallet < 0.55  # half of them, drawn
    assert np.all(pf.entry[held] == 0) and np.all(pf.mode[held] == 1)


def test_shipped_depeg_config(shared_data):
    """backtests/collateral-depeg.toml: the own-book index liquidates accounts whose BTC position
    was not losing; the redemption floor liquidates fewer accounts, and saves some of those."""
    loaded = config.load(DEPEG)
    result = backtest.run_config(loaded, check_invariants=True)
    prepared = backtest.prepare(loaded, 0)
    scenario = prepared.scenario
    accounts = scenario.margin_accounts
    btc = scenario.instruments[0].tape
    ev = result.events.to_pandas()
    liq = ev[ev.kind.isin([int(k) for k in LIQUIDATION_KINDS])]
    users_with_usde = set(scenario.portfolio.owners()[scenario.portfolio.holdings & (scenario.portfolio.size > 0)])
    hit, not_losing = {}, {}
    for design, rows in liq.groupby("design"):
        first = rows.groupby("account").ts.min()
        price = btc.price[np.searchsorted(btc.ts, first.to_numpy(), side="right") - 1]  # BTC as of then
        calm = set()
        for account, p in zip(first.index, price):
            span = slice(accounts.start[account], accounts.start[account + 1])
            perp = accounts.instrument[span] == 0
            if np.all(accounts.size[span][perp] * (p - accounts.entry[span][perp]) >= 0):
                calm.add(int(account))
        hit[design], not_losing[design] = set(map(int, first.index)), calm
    own, floor = "binance-own-book", "binance-redemption-floor"
    assert len(hit[own]) > len(hit[floor])
    assert len(not_losing[own]) > len(not_losing[floor])
    saved = not_losing[own] - hit[floor]  # not losing, liquidated under own-book only
    # some held USDe; others did not: the USDe holders' liquidation orders moved BTC's simulated
    # price (endogenous liquidity) and took them down too
    assert {int(accounts.owner[a]) for a in saved} & users_with_usde
    table = result.table.set_index("design")
    assert table.loc[own, "accounts_liquidated"] > table.loc[floor, "accounts_liquidated"]
    assert (result.by_instrument.symbol == "USDE").sum() == 2


# ----------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("change, expected", [
    (dict(positions=POSITIONS.replace("0,USDE,500,,,,0", "0,USDE,500,,isolated,100,0")),
     "positions.csv: row 2: margin_mode 'isolated': expected cross or empty on a holding of a collateral asset"),
    (dict(positions=POSITIONS.replace("0,USDE,500,,,,0", "0,USDE,500,1.0,,,0")),
     "positions.csv: row 2: entry_price '1.0': expected empty or 0 on a holding of a collateral asset"),
    (dict(positions=POSITIONS.replace("0,USDE,500,,,,0", "0,USDE,-500,,,,0")),
     "positions.csv: row 2: size '-500': expected an amount >= 0 of the collateral asset"),
    (dict(collateral='[[scenario.collateral]]\nasset = "USDE"\n'),
     "c.toml: scenario.collateral[0]: asset USDE: no price: expected own_book, constructed, external or "
     "redemption"),
    (dict(venues='[[venues]]\npreset = "binance-usdm"\ncollateral = { assumed = { USDE = 1.5 } }\n'),
     "venues[0]: venue design 'binance-usdm': collateral.assumed.USDE:"),
    (dict(venues='[[venues]]\npreset = "binance-usdm"\n'),
     "scenario: venue design 'binance-usdm': collateral: binance-usdm: no collateral ratio for asset 'USDE'"),
    (dict(venues='[[venues]]\npreset = "hyperliquid"\n'),
     "scenario: venue design 'hyperliquid': collateral: hyperliquid: collateral asset 'USDE': the venue takes "
     "USDC only"),
    (dict(venues='[[venues]]\npreset = "binance-usdm"\ncollateral = { index = "external-median", '
                 'assumed = { USDE = 0.9 } }\n'),
     "collateral asset USDE: index external-median: the scenario gives no external stream of USDE"),
    (dict(venues='[[venues]]\npreset = "binance-usdm"\ncollateral = { index = "redemption-floor" }\n'),
     "venues[0]: venue design 'binance-usdm': collateral: index redemption-floor: expected a floor"),
    (dict(portfolio='accounts = 100\ncollateral = { USDC = { share = 0.5, fraction = 0.5 } }'),
     "portfolio.collateral: 'USDC' is not a collateral asset of the scenario"),
])
def test_bad_input_is_one_line(tmp_path, change, expected):
    positions = change.pop("positions", POSITIONS)
    path = _config(tmp_path, positions, **change)
    with pytest.raises(ValueError) as info:
        loaded = config.load(path)
        backtest.preflight(loaded)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message, message


def test_collateral_in_a_single_tape_scenario_is_refused(tmp_path):
    path = write(tmp_path, f"""
[scenario]
name = "one"
{FLAT}

[[scenario.collateral]]
asset = "USDE"
redemption = 1.0

[[venues]]
preset = "binance-usdm"
""", "c.toml")
    with pytest.raises(ValueError, match="collateral: collateral assets back the cross accounts of a scenario "
                                         "with instruments"):
        config.load(path)


# ----------------------------------------------------------------------------------- run hashes
def test_the_collateral_design_is_hashed_only_where_a_scenario_has_collateral(tmp_path):
    with_assets = config.load(_config(tmp_path, POSITIONS))
    a, b = (sweep.run_hash(config.parse({**_raw(with_assets), "venues": [v]}, base_dir=tmp_path))
            for v in _raw(with_assets)["venues"])
    assert a != b  # own-book and redemption-floor are different runs
    without = {**_raw(with_assets)}
    without["scenario"] = {k: v for k, v in without["scenario"].items() if k != "collateral"}
    without["scenario"]["portfolio"] = {"accounts": 100, "seed": 3}
    c, d = (sweep.run_hash(config.parse({**without, "venues": [v]}, base_dir=tmp_path)) for v in without["venues"])
    base = sweep.run_hash(config.parse({**without, "venues": [{"preset": "binance-usdm", "name": "own-book"}]},
                                       base_dir=tmp_path))
    # without collateral the component values nothing: the designs are the same run, hashed as before
    assert c == base
    assert d == sweep.run_hash(config.parse({**without, "venues": [{"preset": "binance-usdm", "name": "floor"}]},
                                            base_dir=tmp_path))


def _raw(loaded) -> dict:
    import tomllib

    return tomllib.loads(loaded.path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------- report
def test_the_report_draws_collateral_value_and_cumulative_funding(tmp_path, shared_data):
    from riskengine import report
    from test_funding_config import T21_MS, HOUR_MS, write_config, write_rates

    loaded = config.load(_config(tmp_path, POSITIONS))
    result = backtest.run_config(loaded)
    held = report._collateral_frames(result, "usde", result.by_instrument)
    assert list(held) == ["USDE"]
    floor = held["USDE"][held["USDE"].design == "floor"]["value"].to_numpy()
    # redemption-floor: (500 + 1,000) USDe held throughout at max(0.97, 1) x 0.9 = 1,350
    np.testing.assert_allclose(floor, 1_500 * 0.9)
    own = held["USDE"][held["USDE"].design == "own-book"]["value"].to_numpy()
    assert own.min() < 1_500 * 0.9 * 0.7  # the depeg to ~0.65 shows
    page = report.render(result)
    assert 'data-plot="collateral:usde"' in page and 'data-plot="funding:' not in page

    folder = tmp_path / "funding"
    folder.mkdir()
    rates = write_rates(folder, [(T21_MS, 0.001), (T21_MS + HOUR_MS, -0.002)])
    funded = backtest.run_config(write_config(folder, f'funding = {{ source = "binance-vision", path = "{rates}" }}',
                                              '[[venues]]\npreset = "binance-usdm"\n'))
    paid = report._funding_frame(funded, "avax")
    ev = funded.events.to_pandas()
    rows = ev[ev.kind == int(EventKind.FUNDING)]
    assert len(paid) == len(rows) == 2
    assert paid["paid"].iloc[-1] == pytest.approx(rows["amount"].sum())
    # (funding_paid is the gross that changed hands; the plot is what the population paid net)
    assert abs(paid["paid"].iloc[-1]) <= funded.table["funding_paid"].iloc[0]
    page = report.render(funded)
    assert 'data-plot="funding:avax"' in page and 'data-plot="collateral:' not in page


def test_shipped_depeg_config_runs_alike_on_both_engines(shared_data):
    """The reference engine on six minutes of the depeg (21:40-21:46 UTC, the fall to the
    trough) and 2,000 accounts: the same result and per-instrument rows as the compiled engine,
    money and positions conserved."""
    import tomllib

    import pandas as pd

    data = tomllib.loads(DEPEG.read_text(encoding="utf-8"))
    data["scenario"]["window"] = {"start": "2025-10-10T21:40:00Z", "end": "2025-10-10T21:46:00Z"}
    data["scenario"]["portfolio"]["accounts"] = 2_000
    loaded = config.parse(data, where=str(DEPEG), base_dir=DEPEG.parent)
    fast = backtest.run_config(loaded, check_invariants=True)
    slow = backtest.run_config(loaded, engine="reference", check_invariants=True)
    timed = ["elapsed_s", "ticks_per_s", "engine"]
    pd.testing.assert_frame_equal(fast.table.drop(columns=timed), slow.table.drop(columns=timed))
    pd.testing.assert_frame_equal(fast.by_instrument.drop(columns=["engine"]),
                                  slow.by_instrument.drop(columns=["engine"]))
    by = fast.by_instrument.set_index(["design", "symbol"])["liquidations"]
    assert by[("binance-own-book", "USDE")] > 0  # holdings were sold in the cut


# ------------------------------------------------------------------------- files and sweeps
def test_a_portfolio_with_holdings_round_trips_through_a_positions_file(tmp_path):
    from riskengine.portfolio import load_portfolio, write_portfolio

    loaded = config.load(_config(tmp_path, POSITIONS))
    pf = backtest.prepare(loaded, 0).scenario.portfolio
    for name in ("back.csv", "back.parquet"):
        write_portfolio(pf, tmp_path / name, ("BTCUSDT", "USDE"))
        again = load_portfolio(tmp_path / name, ("BTCUSDT", "USDE"), assets=("USDE",))
        assert again.assets == pf.assets == (1,)
        for field in ("wallet", "start", "instrument", "size", "entry", "mode", "margin"):
            np.testing.assert_array_equal(getattr(again, field), getattr(pf, field))
    with pytest.raises(ValueError, match=r"back.csv: row 2: instrument 'USDE': expected a symbol of the scenario"):
        load_portfolio(tmp_path / "back.csv", ("BTCUSDT",))  # without the asset, its rows are no instrument


def test_a_sweep_varies_the_depeg_and_the_floor(tmp_path):
    import tomllib

    path = _config(tmp_path, POSITIONS)
    data = tomllib.loads(path.read_text())
    data["sweep"] = {"grid": {"scenario.collateral[0].constructed.trough": [0.65, 0.8],
                              "venues[1].collateral.floor": [0.9, 0.97]}}
    runs = sweep.expand(config.parse(data, base_dir=tmp_path, path=path))
    assert len({r.hash for r in runs}) == 4
