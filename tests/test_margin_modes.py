"""A venue design's ``margin_mode`` (as-held, cross, isolated): the conversion of a portfolio
(:meth:`riskengine.portfolio.Portfolio.in_margin_mode`), its money, its bad input, the sweep
hash of a design that keeps the default, and hand-worked runs on both engines.

Hand-worked numbers use maintenance margin 5% of notional (one tier), mark = the last trade,
no fee, no ADL and infinite depth (a liquidation fills at the tape's price).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import riskengine
from riskengine import config, sweep
from riskengine.codes import EventKind, MarginMode
from riskengine.portfolio import Instrument, Portfolio, PortfolioScenario, PortfolioSpec, generate_portfolio
from riskengine.scenario import Tape
from riskengine.venue import MARGIN_MODES, VenueDesign

from _cli import raised_line

S = 1_000_000_000
T0 = 1_700_000_000 * S
CROSS, ISOLATED = int(MarginMode.CROSS), int(MarginMode.ISOLATED)


def design(name: str, mode: str) -> VenueDesign:
    """Maintenance margin 5% of notional, mark = last, no fee, no ADL; ``margin_mode`` = mode."""
    return VenueDesign.from_dict({"name": name, "margin": {"floors": [0.0], "rates": [0.05]},
                                  "adl": {"policy": "none"}, "margin_mode": mode})


def tape(seconds, prices) -> Tape:
    return Tape.from_arrays(T0 + np.asarray(seconds, dtype=np.int64) * S, np.asarray(prices, dtype=np.float64),
                            np.ones(len(prices)))


# ----------------------------------------------------------------------------- the conversion
def mixed_book() -> Portfolio:
    """User 0: wallet 200, cross long 10 A @ 100 (entry notional 1000), cross short 30 B @ 100
    (3000), isolated long 1 C @ 50 with margin 20. User 1: wallet 70, no position. User 2:
    wallet 5, isolated short 2 A @ 110 with margin 40, and a flat cross position in B."""
    return Portfolio.from_arrays(
        [200.0, 70.0, 5.0], [0, 3, 3, 5], [0, 1, 2, 0, 1], [10.0, -30.0, 1.0, -2.0, 0.0],
        [100.0, 100.0, 50.0, 110.0, np.nan], [CROSS, CROSS, ISOLATED, ISOLATED, CROSS],
        [0.0, 0.0, 20.0, 40.0, 0.0], n_instruments=3)


def test_as_held_is_the_portfolio_itself():
    book = mixed_book()
    assert book.in_margin_mode("as-held") is book


def test_cross_adds_each_isolated_margin_to_its_users_wallet():
    book = mixed_book().in_margin_mode("cross")
    # user 0: 200 + 20 (C's margin); user 1: 70; user 2: 5 + 40 (A's margin)
    assert book.wallet.tolist() == [220.0, 70.0, 45.0]
    assert book.mode.tolist() == [CROSS] * 5
    assert book.margin.tolist() == [0.0] * 5
    accounts = book.margin_accounts()
    # one cross account per user holding every position: user 0 three, user 1 none, user 2 two
    assert accounts.owner.tolist() == [0, 1, 2]
    assert np.diff(accounts.start).tolist() == [3, 0, 2]
    assert accounts.collateral.tolist() == [220.0, 70.0, 45.0]


def test_isolated_splits_the_wallet_among_the_cross_positions_by_entry_notional():
    book = mixed_book().in_margin_mode("isolated")
    # user 0: 200 split 1000 : 3000 -> 50 on A and 150 on B; C keeps its 20; wallet 0.
    # user 1: no position, keeps its 70 (a flat cross account). user 2: no cross position with a
    # size, keeps its 5 with the flat position in B; A keeps its 40.
    assert book.margin.tolist() == [50.0, 150.0, 20.0, 40.0, 0.0]
    assert book.wallet.tolist() == [0.0, 70.0, 5.0]
    assert book.mode.tolist() == [ISOLATED, ISOLATED, ISOLATED, ISOLATED, CROSS]
    accounts = book.margin_accounts()
    # margin accounts: user 0's three isolated positions, user 1's wallet, user 2's cross account
    # (wallet 5, the flat B position) then its isolated A
    assert accounts.owner.tolist() == [0, 0, 0, 1, 2, 2]
    assert accounts.collateral.tolist() == [50.0, 150.0, 20.0, 70.0, 5.0, 40.0]
    assert np.diff(accounts.start).max() == 1  # one position per margin account: today's engines take it


@pytest.mark.parametrize("mode", MARGIN_MODES)
def test_the_conversion_conserves_each_users_money_and_keeps_the_positions(mode):
    spec = PortfolioSpec(symbols=("BTC", "ETH", "SOL", "AVAX"), open_interest_usd=(3e8, 2e8, 1e8, 5e7),
                         max_leverage=(40.0, 25.0, 20.0, 10.0), long_share=(0.6, 0.6, 0.6, 0.6), accounts=5_000,
                         holdings=(0.4, 0.3, 0.2, 0.1), seed=3)
    book = generate_portfolio(spec, [121_700.0, 4_300.0, 220.0, 30.0]).portfolio
    out = book.in_margin_mode(mode)
    user = book.owners()

    def money(p: Portfolio) -> np.ndarray:  # wallet + isolated margins, per user
        return p.wallet + np.bincount(user, p.margin, minlength=len(p))

    np.testing.assert_allclose(money(out), money(book), rtol=1e-12, atol=0.0)
    for name in ("start", "instrument", "size", "entry"):
        np.testing.assert_array_equal(getattr(out, name), getattr(book, name))
    held = book.size != 0
    if mode == "cross":
        assert (out.mode == CROSS).all() and (out.margin == 0).all()
    elif mode == "isolated":
        assert (out.mode[held] == ISOLATED).all()
        was_cross = held & (book.mode == CROSS)
        # the wallet of every user with a cross position went into those positions
        assert (out.wallet[np.unique(user[was_cross])] == 0).all()
        # ... in proportion to entry notional: margin / notional is one number per user
        ratio = out.margin[was_cross] / (np.abs(book.size) * book.entry)[was_cross]
        per_user = book.wallet[user[was_cross]] / np.bincount(
            user[was_cross], (np.abs(book.size) * book.entry)[was_cross], minlength=len(book))[user[was_cross]]
        np.testing.assert_allclose(ratio, per_user, rtol=1e-12)
        # positions isolated before keep their margin
        np.testing.assert_array_equal(out.margin[~was_cross & held], book.margin[~was_cross & held])


def test_an_unknown_margin_mode_is_one_line():
    assert raised_line(mixed_book().in_margin_mode, "portfolio") == (
        "margin_mode: expected one of as-held, cross, isolated (got 'portfolio')")
    line = raised_line(VenueDesign.from_dict, {"name": "x", "margin_mode": "crossed"})
    assert "margin_mode" in line and "'as-held', 'cross' or 'isolated'" in line


def test_a_config_with_an_unknown_margin_mode_names_the_file_and_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[scenario]\nname = "s"\nsynthetic = { ticks = 100 }\n[population]\naccounts = 10\n'
                    '[[venues]]\npreset = "hyperliquid"\nmargin_mode = "crossed"\n')
    line = raised_line(lambda: riskengine.backtest.build_designs(config.load(path)))
    assert str(path) in line and "margin_mode" in line and "'as-held', 'cross' or 'isolated'" in line


# ----------------------------------------------------------------------------- the sweep hash
def _config(tmp_path, venue: str):
    path = tmp_path / "c.toml"
    path.write_text('[scenario]\nname = "s"\nsynthetic = { ticks = 100 }\n[population]\naccounts = 10\n'
                    f'[[venues]]\npreset = "hyperliquid"\n{venue}')
    return config.load(path)


def test_a_design_keeping_the_default_margin_mode_hashes_as_before(tmp_path):
    # the run hash leaves margin_mode out while it is "as-held", so it is the hash a design had
    # before the field existed (tests/test_sweep.py pins such hashes); another mode is another run
    default = sweep.run_hash(_config(tmp_path, ""))
    assert sweep.run_hash(_config(tmp_path, 'margin_mode = "as-held"\n')) == default
    cross = sweep.run_hash(_config(tmp_path, 'margin_mode = "cross"\n'))
    isolated = sweep.run_hash(_config(tmp_path, 'margin_mode = "isolated"\n'))
    assert len({default, cross, isolated}) == 3
    # a sweep grid may vary it: one run per mode, each with that mode's hash
    loaded = _config(tmp_path, '[sweep]\ngrid = { "venues[0].margin_mode" = ["cross", "isolated"] }\n')
    assert [r.hash for r in sweep.expand(loaded)] == [cross, isolated]


def test_a_design_keeping_the_default_cross_order_hashes_as_before(tmp_path):
    # liquidation.cross_order likewise (sweep.PORTFOLIO_DESIGN_DEFAULTS)
    default = sweep.run_hash(_config(tmp_path, ""))
    assert sweep.run_hash(_config(tmp_path, '[venues.liquidation]\ncross_order = "notional"\n')) == default
    assert sweep.run_hash(_config(tmp_path, '[venues.liquidation]\ncross_order = "loss"\n')) != default


# ----------------------------------------------------------------------------- runs
def hedged_user() -> PortfolioScenario:
    """One user, wallet 200, cross: long 10 A @ 100 and short 10 B @ 100 (a hedged book). A falls
    to 92 at t=1, B to 92 at t=2."""
    book = Portfolio.from_arrays([200.0], [0, 2], [0, 1], [10.0, -10.0], [100.0, 100.0], [CROSS, CROSS],
                                 n_instruments=2)
    return PortfolioScenario("hedged", (Instrument("A", tape([0, 1, 3], [100.0, 92.0, 92.0])),
                                        Instrument("B", tape([0, 2, 3], [100.0, 92.0, 92.0]))), book)


@pytest.mark.parametrize("engine", ["reference", "cython"])
def test_isolated_liquidates_the_losing_position_alone(engine):
    # isolated: the wallet of 200 is split 1000 : 1000 by entry notional, margin 100 on each.
    # A at 92: equity 100 + 10 x (92 - 100) = 20 < MM 0.05 x 920 = 46: liquidated at 92 (realized
    # -80, 20 left, no deficit). B at 92: equity 100 - 10 x (92 - 100) = 180 > MM 46: kept, and
    # it never sees A's loss.
    result = riskengine.run(hedged_user(), [design("isolated", "isolated")], engine=engine, check_invariants=True)
    row = result.table.iloc[0]
    assert (row["margin_mode"], row["liquidations"], row["bad_debt"]) == ("isolated", 1, 0.0)
    ev = result.events.to_pandas()
    liq = ev[ev["kind"] == int(EventKind.LIQUIDATION)]
    assert liq[["account", "instrument", "size", "price", "amount"]].values.tolist() == [[0, 0, 10.0, 92.0, -80.0]]
    by = result.by_instrument.set_index("symbol")
    assert (by.loc["A", "liquidations"], by.loc["B", "liquidations"]) == (1, 0)


@pytest.mark.parametrize("engine", ["reference", "cython"])
def test_cross_survives_the_same_fall_thanks_to_the_other_positions_profit(engine):
    # cross: one account, wallet 200, both positions. A at 92, B still at 100 (t=1): equity
    # 200 + 10 x (92 - 100) - 10 x (100 - 100) = 120 >= MM 0.05 x (920 + 1000) = 96. B at 92
    # (t=2): equity 200 - 80 + 80 = 200 >= MM 0.05 x (920 + 920) = 92. Nothing is liquidated:
    # the short's profit pays for the long's loss, which isolated margin (above) did not allow.
    result = riskengine.run(hedged_user(), [design("cross", "cross"), design("isolated", "isolated")],
                            engine=engine, check_invariants=True)
    table = result.table.set_index("design")
    assert table.loc["cross", "margin_mode"] == "cross"
    assert (table.loc["cross", "liquidations"], table.loc["isolated", "liquidations"]) == (0, 1)
    assert table.loc["cross", "bad_debt"] == 0.0
    ev = result.events.to_pandas()
    assert not ((ev["design"] == "cross") & (ev["kind"] == int(EventKind.LIQUIDATION))).any()


def test_a_single_instrument_run_is_the_same_in_every_margin_mode():
    # each account of a population holds one position: its cross wallet or its isolated margin is
    # the same money behind the same position, so the three modes replay the same events
    from riskengine import synthetic
    from riskengine.scenario import Scenario

    scenario = Scenario("one", synthetic.crash_tape(3_000, seed=4), synthetic.population(500, seed=5))
    result = riskengine.run(scenario, [design(mode, mode) for mode in MARGIN_MODES])
    assert list(result.table["margin_mode"]) == list(MARGIN_MODES)
    events = result.events.to_pandas()
    logs = [events[events["design"] == mode].drop(columns=["design"]).reset_index(drop=True) for mode in MARGIN_MODES]
    assert len(logs[0]) > 0
    for other in logs[1:]:
        pd.testing.assert_frame_equal(other, logs[0])
