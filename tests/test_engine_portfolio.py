"""The compiled engine on portfolios (issue 12): several instruments, each with its own tape,
merged in time; margin accounts in CSR form (a user's isolated positions in several instruments,
step 1; cross accounts with several positions, step 2); one fund and one vault behind every
instrument.

``riskengine._engine.run_portfolio`` is tested here on its own; ``tests/test_parity_portfolio.py``
compares it with the reference engine on random portfolios. Hand-worked numbers use maintenance
margin 5% of notional and infinite depth (a liquidation fills at the mark).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from riskengine import synthetic
from riskengine._engine import run_engine, run_portfolio
from riskengine.codes import AdlPolicy, CrossOrder, EventKind, Status
from riskengine.liquidity import ConstantDepth
from riskengine.params import EngineParams
from riskengine.runlog import BY_INSTRUMENT, EVENT_COLUMNS, SERIES_COLUMNS

from _cli import raised_line

S = 1_000_000_000
T0 = 1_700_000_000 * S
K = EventKind
NO_STREAM = np.empty(0, dtype=np.float64)


def params(**kw) -> EngineParams:
    """A plain design: maintenance margin 5% of notional, mark = last, no fee, no ADL."""
    return EngineParams(**{**dict(mm_floors=[0.0], mm_rates=[0.05], adl_policy=AdlPolicy.NONE,
                                  series_interval_ns=S), **kw})


def merge(tapes):
    """Tapes ``(times in s from T0, prices)`` merged by time, equal times in instrument order."""
    ts = np.concatenate([T0 + np.asarray(t, dtype=np.int64) * S for t, _ in tapes])
    inst = np.concatenate([np.full(len(t), k, dtype=np.int32) for k, (t, _) in enumerate(tapes)])
    price = np.concatenate([np.asarray(p, dtype=np.float64) for _, p in tapes])
    order = np.lexsort((inst, ts))
    return ts[order], inst[order], price[order]


def margin_accounts(rows):
    """Rows ``(user, collateral, instrument or None, size, entry)`` as the engine's CSR arrays."""
    held = [r for r in rows if r[2] is not None]
    return (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float64),
            np.concatenate([[0], np.cumsum([r[2] is not None for r in rows])]).astype(np.int64),
            np.array([r[2] for r in held], dtype=np.int32), np.array([r[3] for r in held], dtype=np.float64),
            np.array([r[4] for r in held], dtype=np.float64))


def events(out) -> list[dict]:
    ev = out["events"]
    return [{name: ev[name][j].item() for name, _, _ in EVENT_COLUMNS} for j in range(len(ev["ts"]))]


def test_an_isolated_crash_in_one_instrument_leaves_the_users_other_positions_whole():
    # user 7: a wallet of 1000 (a margin account without a position), an isolated long of 1 in
    # instrument 0 with margin 10 (entry 100) and one of 2 in instrument 1 with margin 10 (entry
    # 50). Instrument 0 falls to 80 at t=2: equity 10 + 1 x (80 - 100) = -10 < MM 4, liquidated
    # at 80 (realized -20), the fund pays the deficit of 10 (100 -> 90). Instrument 1 at 50.5:
    # equity 10 + 2 x 0.5 = 11 > MM 0.05 x 101 = 5.05, untouched, as is the wallet.
    ts, inst, price = merge([([0, 2], [100.0, 80.0]), ([1, 3], [50.0, 50.5])])
    rows = [(7, 1000.0, None, 0.0, 0.0), (7, 10.0, 0, 1.0, 100.0), (7, 10.0, 1, 2.0, 50.0)]
    p = params(fund_initial=100.0)
    out = run_portfolio(ts, inst, price, NO_STREAM, *margin_accounts(rows), [p, p])
    liq, pay = events(out)
    assert (liq["kind"], liq["account"], liq["instrument"], liq["size"], liq["price"], liq["amount"],
            liq["equity_after"], liq["tick"]) == (K.LIQUIDATION, 7, 0, 1.0, 80.0, -20.0, -10.0, 2)
    assert (pay["kind"], pay["account"], pay["instrument"], pay["amount"], pay["fund_after"]) == (
        K.FUND_PAYMENT, 7, 0, 10.0, 90.0)
    assert out["collateral"].tolist() == [1000.0, 0.0, 10.0]
    assert out["size"].tolist() == [0.0, 0.0, 2.0]
    assert out["status"].tolist() == [Status.FLAT, Status.CLOSED, Status.ACTIVE]
    by = out["by_instrument"]
    assert [(name, by[name].dtype.name, len(by[name])) for name, _, _ in BY_INSTRUMENT] == [
        (name, dtype, 2) for name, dtype, _ in BY_INSTRUMENT]
    assert by["liquidations"].tolist() == [1, 0]
    assert by["final_mark"].tolist() == [80.0, 50.5]
    assert by["ext_pos"].tolist() == [0.0, -2.0]  # instrument 0's long went back to the market
    assert out["scalars"]["final_mark"] == 80.0 and out["scalars"]["fund_final"] == 90.0


def test_a_series_sample_is_one_row_per_instrument_nan_before_its_first_tick():
    ts, inst, price = merge([([0, 2], [100.0, 80.0]), ([1, 3], [50.0, 50.5])])
    rows = [(7, 10.0, 0, 1.0, 100.0), (7, 10.0, 1, 2.0, 50.0)]
    p = params(fund_initial=100.0)
    se = run_portfolio(ts, inst, price, NO_STREAM, *margin_accounts(rows), [p, p])["series"]
    assert list(se) == [name for name, _, _ in SERIES_COLUMNS]
    assert ((se["ts"] - T0) // S).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert se["instrument"].tolist() == [0, 1] * 4
    np.testing.assert_array_equal(se["tape_price"], [100.0, np.nan, 100.0, 50.0, 80.0, 50.0, 80.0, 50.5])
    assert se["long_oi"].tolist() == [1.0, 2.0, 1.0, 2.0, 0.0, 2.0, 0.0, 2.0]
    assert se["fund"].tolist() == [100.0] * 4 + [90.0] * 4  # shared: the same on both rows


def test_each_instrument_replays_as_it_would_alone():
    """Two crashes on their own tapes, interleaved in time, each instrument with its own book,
    margin rates and accounts: with nothing shared that moves the outcome (no fee, a fund too
    large to run dry, no takeover, no vault, no ADL), each instrument's events are those of a run
    on its tape and accounts alone (ticks renumbered into the merged tape, accounts shifted)."""
    design = synthetic.binance_style().with_overrides({"fund": {"initial": 1e12}, "adl": {"policy": "none"}})
    runs = []
    for k, seed in enumerate((5, 9)):
        sc = synthetic.crash_scenario(ticks=3_000, accounts=400, seed=seed, wick=0.08)
        prm = design.engine_params(ConstantDepth(3e6 * (k + 1), feedback=0.5), 5.0)
        prm = dataclasses.replace(prm, liq_fee_rate=0.0, liq_limit_bankruptcy=False, takeover=0,
                                  mm_rates=prm.mm_rates * (1.0 + 0.5 * k))
        runs.append((sc, prm))
    (a, pa), (b, pb) = runs
    # instrument 1's tape starts 0.3 s after instrument 0's: the ticks interleave
    tapes_ts = [a.tape.ts, b.tape.ts - b.tape.ts[0] + a.tape.ts[0] + 300_000_000]
    inst = np.repeat(np.array([0, 1], dtype=np.int32), [len(a.tape), len(b.tape)])
    order = np.lexsort((inst, np.concatenate(tapes_ts)))
    n0, n1 = len(a.population), len(b.population)
    out = run_portfolio(np.concatenate(tapes_ts)[order], inst[order],
                        np.concatenate([a.tape.price, b.tape.price])[order], NO_STREAM,
                        np.arange(n0 + n1, dtype=np.int64),
                        np.concatenate([a.population.collateral, b.population.collateral]),
                        np.arange(n0 + n1 + 1, dtype=np.int64), np.repeat(np.array([0, 1], dtype=np.int32), [n0, n1]),
                        np.concatenate([a.population.size, b.population.size]),
                        np.concatenate([a.population.entry, b.population.entry]), [pa, pb])
    ev = out["events"]
    for k, (sc, prm) in enumerate(runs):
        alone = run_engine(tapes_ts[k], sc.tape.price, NO_STREAM, sc.population.collateral, sc.population.size,
                           sc.population.entry, prm)
        mine = ev["instrument"] == k
        assert mine.sum() == len(alone["events"]["ts"]) > 100, k
        assert np.array_equal(ev["account"][mine] - k * n0, alone["events"]["account"])
        assert np.array_equal(ev["tick"][mine], np.flatnonzero(inst[order] == k)[alone["events"]["tick"]])
        for name in ("ts", "kind", "round", "size", "price", "amount", "equity_after"):
            assert np.array_equal(ev[name][mine], alone["events"][name]), (k, name)
        for name in ("final_mark", "tape_max_drawdown", "sim_min", "ext_pos", "ext_cash"):
            assert out["by_instrument"][name][k] == alone["scalars"][name], (k, name)


def test_run_engine_is_run_portfolio_with_one_instrument():
    sc = synthetic.crash_scenario(ticks=2_000, accounts=500, seed=2)
    prm = synthetic.hyperliquid_style().engine_params(ConstantDepth(2e6), 5.0)
    tape, pop = sc.tape, sc.population
    n = len(pop)
    one = run_engine(tape.ts, tape.price, tape.stream, pop.collateral, pop.size, pop.entry, prm)
    pf = run_portfolio(tape.ts, np.zeros(len(tape), np.int32), tape.price, tape.stream, np.arange(n, dtype=np.int64),
                       pop.collateral, np.arange(n + 1, dtype=np.int64), np.zeros(n, np.int32), pop.size, pop.entry,
                       [prm])
    assert len(one["events"]["ts"]) > 0
    for part in ("events", "series", "by_instrument"):
        for name, values in one[part].items():
            assert values.tobytes() == pf[part][name].tobytes(), (part, name)
    assert not one["events"]["instrument"].any() and not one["series"]["instrument"].any()
    for name in ("collateral", "size", "entry", "status", "socialized"):
        assert one[name].tobytes() == pf[name].tobytes(), name


@pytest.mark.parametrize("order", [CrossOrder.NOTIONAL, CrossOrder.LOSS])
def test_a_cross_account_with_two_positions_is_liquidated_one_position_per_round(order):
    # user 3's cross wallet 10 backs a long of 1 in instrument 0 (entry 100) and a short of 1
    # in instrument 1 (entry 50); the fund holds 100. At t=1 (both instruments ticked): E = 10,
    # MM = 0.05 x 100 + 0.05 x 50 = 7.5, safe. At t=3 instrument 1 rises to 62: E = 10 + 0 - 12
    # = -2 < MM = 5 + 3.1 = 8.1.
    # notional: the long (notional 100 > 62) goes first, sold at 100: realized 0; the rest of the
    # account W = 10 - 12 = -2 is the deficit, paid by the fund (wallet 12, fund 98); round 1:
    # E = 12 - 12 = 0 < MM 3.1, the short is bought at 62: realized -12, wallet 0.
    # loss: the short (PnL -12 < 0) goes first: realized -12, wallet -2, E = -2; the fund pays 2
    # (wallet 0); round 1: E = 0 < MM 5, the long is sold at 100: realized 0.
    ts, inst, price = merge([([0, 2], [100.0, 100.0]), ([1, 3], [50.0, 62.0])])
    p = params(fund_initial=100.0, cross_order=order)
    out = run_portfolio(ts, inst, price, NO_STREAM, np.array([3], dtype=np.int64), np.array([10.0]),
                        np.array([0, 2], dtype=np.int64), np.array([0, 1], dtype=np.int32),
                        np.array([1.0, -1.0]), np.array([100.0, 50.0]), [p, p])
    got = [(r["kind"], r["account"], r["instrument"], r["size"], r["price"], r["amount"], r["equity_after"],
            r["tick"], r["round"]) for r in events(out)]
    long = (K.LIQUIDATION, 3, 0, 1.0, 100.0, 0.0)
    short = (K.LIQUIDATION, 3, 1, -1.0, 62.0, -12.0)
    if order == CrossOrder.NOTIONAL:
        assert got == [(*long, -2.0, 3, 0), (K.FUND_PAYMENT, 3, 0, 0.0, 0.0, 2.0, 0.0, 3, 0),
                       (*short, 0.0, 3, 1)]
    else:
        assert got == [(*short, -2.0, 3, 0), (K.FUND_PAYMENT, 3, 1, 0.0, 0.0, 2.0, 0.0, 3, 0),
                       (*long, 0.0, 3, 1)]
    assert out["positions_size"].tolist() == [0.0, 0.0]
    assert out["collateral"].tolist() == [0.0] and out["status"].tolist() == [Status.CLOSED]
    assert out["scalars"]["fund_final"] == 98.0


def test_design_fields_must_agree_between_instruments():
    ts, inst, price = merge([([0], [100.0]), ([0], [50.0])])
    rows = margin_accounts([(1, 10.0, 0, 1.0, 100.0), (2, 10.0, 1, 1.0, 50.0)])
    # per-instrument fields may differ ...
    run_portfolio(ts, inst, price, NO_STREAM, *rows, [params(mm_rates=[0.01]), params(liq_price_band=0.05)])
    # ... the design's may not
    line = raised_line(run_portfolio, ts, inst, price, NO_STREAM, *rows,
                       [params(), params(latency_ns=5)])
    assert line.startswith("params[1].latency_ns:"), line
    line = raised_line(run_portfolio, ts, inst, price, NO_STREAM, *rows, [params()])
    assert "inst[" in line and "expected an instrument in 0..0" in line, line


# ------------------------------------------------------------------ the index of cross accounts


def hedged_book(n: int, wallet_over_mm: float):
    """``n`` cross accounts, each long 1 of instrument 0 (entry 100) and short 2 of instrument 1
    (entry 50): notional 100 a leg, MM 0.05 x 100 x 2 = 10, wallet ``wallet_over_mm`` x 10."""
    return (np.arange(n, dtype=np.int64), np.full(n, 10.0 * wallet_over_mm), np.arange(0, 2 * n + 1, 2),
            np.tile(np.array([0, 1], dtype=np.int32), n), np.tile([1.0, -2.0], n), np.tile([100.0, 50.0], n))


def together(path):
    """Instrument 0 on ``path`` and instrument 1 at half of it, one tick each per second."""
    t = np.arange(len(path))
    return merge([(t, path), (t, np.asarray(path) / 2.0)])


def test_a_quiet_tape_checks_each_cross_account_once():
    # wallets 3 x MM: slack 20 split 10 / 10 (equal notionals); the long's trigger is where
    # (p - 100) - 0.05 p has fallen by 10 (p ~ 89.5), the short's where -2 (p - 50) - 0.1 p has
    # (p ~ 54.8): a walk of 0.01% steps over 3,000 ticks (std ~0.5%) reaches neither. Each account
    # is checked once, when instrument 1 first ticks, and never again.
    rng = np.random.default_rng(5)
    path = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-4, 3_000)))
    ts, inst, price = together(path)
    out = run_portfolio(ts, inst, price, NO_STREAM, *hedged_book(2_000, 3.0), [params(), params()],
                        index_stats=True)
    assert len(out["events"]["ts"]) == 0
    assert out["index_stats"] == {"checks": 2_000, "splits": 2_000, "hot": 0, "fired": 0,
                                  "adl_bursts": 0, "adl_burst_orders": 0}


def test_a_hedge_whose_legs_move_together_is_split_again_not_checked_every_tick():
    # both legs rise 30% together: the long gains what the short loses (E stays 30), MM grows
    # to 13, nobody crosses. The short uses up its share every few % and is split again at the
    # new marks: a handful of exact checks per account, not one per tick (6,000 ticks).
    path = np.linspace(100.0, 130.0, 3_000)
    ts, inst, price = together(path)
    out = run_portfolio(ts, inst, price, NO_STREAM, *hedged_book(500, 3.0), [params(), params()],
                        index_stats=True)
    stats = out["index_stats"]
    assert len(out["events"]["ts"]) == 0
    assert stats["hot"] == 0 and stats["fired"] > 500
    assert stats["checks"] == 500 + stats["fired"] and stats["checks"] < 20 * 500


def test_a_cross_account_without_slack_is_on_the_hot_list():
    # wallets exactly at MM (10): no slack to split; checked at every scan until a leg moves in
    # its favour (the long up, the short with it down: instrument 1 stays at 50), then split.
    ts, inst, price = merge([([0, 1, 2, 3], [100.0, 100.0, 101.0, 102.0]), ([0, 1, 2, 3], [50.0] * 4)])
    out = run_portfolio(ts, inst, price, NO_STREAM, *hedged_book(3, 1.0), [params(), params()],
                        index_stats=True)
    stats = out["index_stats"]
    # t=0 (instrument 1's first tick): E = 10 = MM, split fails: hot. t=1: both ticks check
    # the three (still no slack). t=2, instrument 0 at 101: E = 11 > MM 10.05, split.
    assert len(out["events"]["ts"]) == 0
    assert stats["hot"] == 3 * 3 and stats["splits"] == 3 * 4 and stats["fired"] == 0


def test_the_vault_takes_every_position_of_a_cross_account_over():
    # user 4's cross wallet 10 backs a long of 1 in instrument 0 (entry 100) and a short of 1 in
    # instrument 1 (entry 50); a vault of 1,000 takes accounts below 2/3 of their MM. At t=3
    # instrument 1 is at 58: E = 10 - 8 = 2 < MM = 5 + 2.9 = 7.9, and 2 < 2/3 x 7.9: the vault
    # takes both positions at their marks (100 and 58) and the equity 2, one BACKSTOP row per
    # position (the amount on the first); the wallet (10 - 8 realized = 2) is then 0.
    ts, inst, price = merge([([0, 2], [100.0, 100.0]), ([1, 3], [50.0, 58.0])])
    p = params(backstop_ratio=2 / 3, vault_initial=1_000.0)
    out = run_portfolio(ts, inst, price, NO_STREAM, np.array([4], dtype=np.int64), np.array([10.0]),
                        np.array([0, 2], dtype=np.int64), np.array([0, 1], dtype=np.int32),
                        np.array([1.0, -1.0]), np.array([100.0, 50.0]), [p, p])
    got = [(r["kind"], r["account"], r["instrument"], r["counterparty"], r["size"], r["price"], r["amount"],
            r["equity_after"], r["tick"]) for r in events(out)]
    assert got == [(K.BACKSTOP, 4, 0, -1, 1.0, 100.0, 2.0, 0.0, 3), (K.BACKSTOP, 4, 1, -1, -1.0, 58.0, 0.0, 0.0, 3)]
    assert out["collateral"].tolist() == [0.0] and out["status"].tolist() == [Status.CLOSED]
    assert out["positions_size"].tolist() == [0.0, 0.0]
    by = out["by_instrument"]
    assert by["vault_pos"].tolist() == [1.0, -1.0] and by["vault_entry"].tolist() == [100.0, 58.0]
    assert out["scalars"]["vault_col"] == 1_002.0


def test_a_partial_liquidation_starts_the_users_cooldown_for_all_its_accounts():
    # user 9 holds an isolated long of 10 in instrument 0 (margin 60, entry 100) and an isolated
    # long of 10 in instrument 1 (margin 60, entry 100); orders above notional 500 close a fifth
    # of the position outside the cooldown (30 s). At t=1 instrument 0 is at 95: E = 60 - 50 = 10
    # < MM 47.5: a partial order of 2 (notional 950 > 500). At t=2 instrument 1 is at 95 too:
    # the user is in its cooldown, so the whole position (10) goes at once, not a fifth.
    ts, inst, price = merge([([0, 1], [100.0, 95.0]), ([0, 2], [100.0, 95.0])])
    p = params(partial_fraction=0.2, partial_threshold=500.0, partial_cooldown_ns=30 * S, fund_initial=1e6)
    rows = [(9, 60.0, 0, 10.0, 100.0), (9, 60.0, 1, 10.0, 100.0)]
    out = run_portfolio(ts, inst, price, NO_STREAM, *margin_accounts(rows), [p, p])
    orders = [(r["kind"], r["instrument"], r["size"]) for r in events(out)
              if r["kind"] in (K.LIQUIDATION, K.PARTIAL_LIQUIDATION)]
    assert orders[0] == (K.PARTIAL_LIQUIDATION, 0, 2.0)
    assert (K.LIQUIDATION, 1, 10.0) in orders and (K.PARTIAL_LIQUIDATION, 1, 2.0) not in orders


def test_a_cross_account_with_little_slack_stays_on_the_hot_list_instead_of_splitting_every_tick():
    # wallets 10.01: slack 0.01 against notional 200, below HOT_SLACK (1e-4 x 200 = 0.02); a
    # walk of 0.001% steps moves MM = 0.1 p by ~0.0014 over the run: they stay hot, uncrossed.
    # Every tick after the first checks the three accounts exactly; none gets index entries
    # (every split attempt ends on the hot list, none passes a trigger).
    rng = np.random.default_rng(3)
    path = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-5, 200)))
    ts, inst, price = together(path)
    out = run_portfolio(ts, inst, price, NO_STREAM, *hedged_book(3, 1.001), [params(), params()],
                        index_stats=True)
    stats = out["index_stats"]
    assert len(out["events"]["ts"]) == 0
    assert stats["fired"] == 0 and stats["hot"] == stats["splits"] == stats["checks"] == 3 * (2 * 200 - 1)
