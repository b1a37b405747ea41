"""Portfolios (riskengine.portfolio): validation one rule at a time, margin accounts (today's
accounts from a population; the cross/isolated split and its order), the stable merge of tapes,
positions files on disk (round trip and one-line refusals) and the seeded generator against the
facts it is given."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskengine import synthetic
from riskengine.codes import MarginMode
from riskengine.config import SizeDistribution
from riskengine.population import MIN_COLLATERAL_SHARE
from riskengine.portfolio import (COLUMNS, Instrument, MarginAccounts, Portfolio, PortfolioSpec, generate_portfolio,
                                  load_portfolio, merge_tapes, notional_by_instrument, write_portfolio)
from riskengine.scenario import Population, Tape
from tests._cli import raised_line

ISO, CROSS = int(MarginMode.ISOLATED), int(MarginMode.CROSS)


# ------------------------------------------------------------------------------ validation
def _arrays() -> dict:
    """A valid portfolio of 3 instruments: user 0 cross+isolated, user 1 isolated only, user 2 a
    wallet only, user 3 one flat cross position."""
    return dict(wallet=[100.0, 0.0, 50.0, 10.0], start=[0, 3, 5, 5, 6],
                instrument=[2, 0, 1, 1, 0, 0], size=[1.0, -2.0, 0.5, 3.0, -1.0, 0.0],
                entry=[10.0, 20.0, 30.0, 40.0, 50.0, np.nan], mode=[CROSS, CROSS, ISO, ISO, ISO, CROSS],
                margin=[0.0, 0.0, 5.0, 6.0, 7.0, 0.0])


def _with(**changes) -> dict:
    arrays = _arrays()
    arrays.update(changes)
    return arrays


def test_a_valid_portfolio_is_read_only_and_leaves_the_inputs_alone():
    arrays = {k: np.asarray(v) for k, v in _arrays().items()}
    p = Portfolio.from_arrays(**arrays, n_instruments=3)
    assert (len(p), p.positions, p.n_instruments) == (4, 6, 3)
    assert p.instrument.dtype == np.int32 and p.start.dtype == np.int64 and p.mode.dtype == np.int8
    for name in ("wallet", "start", "instrument", "size", "entry", "mode", "margin"):
        assert not getattr(p, name).flags.writeable, name
        assert arrays[name].flags.writeable, name  # the caller's array keeps its flag
    np.testing.assert_array_equal(p.owners(), [0, 0, 0, 1, 1, 3])
    # margin defaults to zeros: every position cross
    q = Portfolio.from_arrays(**_with(mode=[CROSS] * 6, margin=None), n_instruments=3)
    np.testing.assert_array_equal(q.margin, np.zeros(6))


@pytest.mark.parametrize("changes, n_instruments, expected", [
    ({}, 0, "n_instruments: expected an instrument count >= 1 (got 0)"),
    ({"wallet": [100.0, -1.0, 50.0, 10.0]}, 3, "portfolio.wallet[1] = -1.0: expected a finite wallet >= 0"),
    ({"wallet": [100.0, 0.0, np.inf, 10.0]}, 3, "portfolio.wallet[2] = inf: expected a finite wallet >= 0"),
    ({"start": [0, 3, 5, 6]}, 3, "portfolio.start: length 4: expected one more than portfolio.wallet (length 4), "
                                 "i.e. 5"),
    ({"start": [1, 3, 5, 5, 6]}, 3, "portfolio.start[0] = 1: expected 0"),
    ({"start": [0, 5, 3, 5, 6]}, 3, "portfolio.start[2] = 3 is less than portfolio.start[1] = 5: expected "
                                    "non-decreasing offsets"),
    ({"start": [0, 3, 5, 5, 5]}, 3, "portfolio.start[4] = 5: expected the positions' count 6"),
    ({"start": [0, 3, 5, 5, 7]}, 3, "portfolio.start[4] = 7: expected an offset in 0..6"),
    ({"start": [0.0, 3.0, 5.0, 5.0, 6.0]}, 3, "portfolio.start: expected integers (got dtype float64)"),
    ({"instrument": [2, 0, 1, 3, 0, 0]}, 3, "portfolio.instrument[3] = 3: expected an instrument index in 0..2"),
    ({"instrument": [2, 0, 1, -1, 0, 0]}, 3, "portfolio.instrument[3] = -1: expected an instrument index in 0..2"),
    ({"instrument": [2, 0, 1, 1, 0]}, 3, "portfolio.instrument: length 5 does not match portfolio.size (length 6)"),
    ({"size": [1.0, -2.0, np.nan, 3.0, -1.0, 0.0]}, 3, "portfolio.size[2] = nan: expected a finite signed size"),
    ({"entry": [10.0, 20.0, 30.0, 0.0, 50.0, np.nan]}, 3, "portfolio.entry[3] = 0.0: expected a finite entry price "
                                                          "> 0 for a position"),
    ({"entry": [10.0, np.nan, 30.0, 40.0, 50.0, np.nan]}, 3, "portfolio.entry[1] = nan: expected a finite entry"),
    ({"mode": [CROSS, CROSS, ISO, 2, ISO, CROSS]}, 3, "portfolio.mode[3] = 2: expected 0 (isolated) or 1 (cross)"),
    ({"margin": [0.0, 3.0, 5.0, 6.0, 7.0, 0.0]}, 3, "portfolio.margin[1] = 3.0: expected 0 for a cross position "
                                                    "(its margin is the wallet)"),
    ({"margin": [0.0, 0.0, 5.0, -6.0, 7.0, 0.0]}, 3, "portfolio.margin[3] = -6.0: expected a finite isolated "
                                                     "margin >= 0"),
    ({"margin": [0.0, 0.0, 5.0, 6.0, np.nan, 0.0]}, 3, "portfolio.margin[4] = nan: expected a finite isolated"),
    ({"instrument": [2, 0, 2, 1, 0, 0]}, 3, "portfolio.instrument[2] = 2: user account 0 already holds instrument "
                                            "2 at position 0: expected one position per account and instrument"),
    # the mode does not matter: an isolated and a cross position in one instrument clash too
    ({"instrument": [2, 0, 1, 0, 0, 0]}, 3, "portfolio.instrument[4] = 0: user account 1 already holds instrument "
                                            "0 at position 3"),
])
def test_each_rule_refuses_with_one_line(changes, n_instruments, expected):
    line = raised_line(Portfolio.from_arrays, **_with(**changes), n_instruments=n_instruments)
    assert expected in line, line


def test_flat_positions_need_no_entry_and_isolated_margin_may_be_zero():
    # today's generated populations hold isolated positions whose profit alone backs them
    p = Portfolio.from_arrays(**_with(margin=[0.0, 0.0, 0.0, 6.0, 7.0, 0.0]), n_instruments=3)
    assert p.margin[2] == 0.0
    assert np.isnan(p.entry[5])


# ------------------------------------------------------------------------------ margin accounts
@pytest.mark.parametrize("kw", [dict(accounts=5_000, seed=7), dict(accounts=3_000, cross_share=0.0, seed=3),
                                dict(accounts=3_000, cross_share=1.0, flat_share=0.1, seed=11)])
def test_from_population_gives_todays_accounts(kw):
    pop = synthetic.population(**kw)
    assert (pop.size == 0).any()  # flat accounts: kept as margin accounts with a zero position
    accounts = Portfolio.from_population(pop).margin_accounts()
    n = len(pop)
    assert isinstance(accounts, MarginAccounts) and len(accounts) == n
    np.testing.assert_array_equal(accounts.owner, np.arange(n))
    np.testing.assert_array_equal(accounts.start, np.arange(n + 1))
    np.testing.assert_array_equal(accounts.instrument, np.zeros(n, dtype=np.int32))
    # bit for bit (array_equal on the bytes: -0.0 and NaN included)
    for mine, todays in ((accounts.collateral, pop.collateral), (accounts.size, pop.size), (accounts.entry, pop.entry),
                         (accounts.mode, pop.mode)):
        assert mine.dtype == todays.dtype and mine.tobytes() == todays.tobytes()


def test_from_population_keeps_zero_collateral_isolated_positions():
    pop = synthetic.population(5_000, seed=7)
    zero = (pop.collateral == 0) & (pop.size != 0) & (pop.mode == ISO)
    assert zero.any()  # the case exists in today's populations
    accounts = Portfolio.from_population(pop).margin_accounts()
    np.testing.assert_array_equal(accounts.collateral[zero], 0.0)


def test_margin_accounts_split_cross_and_isolated_in_order():
    # user 0: wallet 100, positions (file order) isolated 3, cross 2, isolated 1, cross 0
    # user 1: isolated 2 and 0, wallet 0 -> no cross account
    # user 2: a wallet only -> a cross account without positions
    # user 3: nothing -> no margin account
    # user 4: cross positions, wallet 0 -> a cross account with collateral 0
    p = Portfolio.from_arrays(
        wallet=[100.0, 0.0, 50.0, 0.0, 0.0], start=[0, 4, 6, 6, 6, 8],
        instrument=[3, 2, 1, 0, 2, 0, 1, 3], size=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        entry=[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0],
        mode=[ISO, CROSS, ISO, CROSS, ISO, ISO, CROSS, CROSS], margin=[3.0, 0.0, 1.0, 0.0, 2.0, 0.5, 0.0, 0.0],
        n_instruments=4)
    a = p.margin_accounts()
    np.testing.assert_array_equal(a.owner, [0, 0, 0, 1, 1, 2, 4])
    np.testing.assert_array_equal(a.mode, [CROSS, ISO, ISO, ISO, ISO, CROSS, CROSS])
    np.testing.assert_array_equal(a.collateral, [100.0, 1.0, 3.0, 0.5, 2.0, 50.0, 0.0])
    np.testing.assert_array_equal(a.start, [0, 2, 3, 4, 5, 6, 6, 8])
    np.testing.assert_array_equal(a.instrument, [0, 2, 1, 3, 0, 2, 1, 3])
    np.testing.assert_array_equal(a.size, [4.0, 2.0, 3.0, 1.0, 6.0, 5.0, 7.0, 8.0])
    np.testing.assert_array_equal(a.entry, [40.0, 20.0, 30.0, 10.0, 60.0, 50.0, 70.0, 80.0])
    for name in ("owner", "collateral", "mode", "start", "instrument", "size", "entry"):
        assert not getattr(a, name).flags.writeable, name


def test_margin_accounts_do_not_depend_on_the_order_of_a_users_positions():
    g = generate_portfolio(PortfolioSpec(accounts=2_000, seed=5), [100.0, 10.0, 1.0])
    p = g.portfolio
    reversed_within = np.lexsort((-np.arange(p.positions), p.owners()))
    q = Portfolio.from_arrays(p.wallet, p.start, *(a[reversed_within] for a in (p.instrument, p.size, p.entry, p.mode,
                                                                                  p.margin)),
                              n_instruments=p.n_instruments)
    assert not np.array_equal(q.instrument, p.instrument)
    a, b = p.margin_accounts(), q.margin_accounts()
    for name in ("owner", "collateral", "mode", "start", "instrument", "size", "entry"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# ------------------------------------------------------------------------------ merged tapes
def _tape(ts, price, stream=None) -> Tape:
    return Tape.from_arrays(np.asarray(ts, dtype=np.int64), price, np.asarray(price) / 100.0, stream)


def test_one_instrument_gives_exactly_its_own_arrays():
    tape = synthetic.crash_tape(5_000, seed=3)
    m = merge_tapes([Instrument("BTCUSDT", tape)])
    assert m.ts is tape.ts and m.price is tape.price and m.qty is tape.qty and m.stream is tape.stream
    assert m.inst.dtype == np.int32 and not m.inst.any() and len(m) == len(tape)
    assert m.symbols == ("BTCUSDT",)
    assert merge_tapes([Instrument("X", _tape([1, 2], [1.0, 2.0]))]).stream is None


def test_merge_is_stable_at_equal_times():
    a = _tape([1, 2, 2, 3], [10.0, 11.0, 12.0, 13.0], stream=[np.nan, 9.0, 9.5, 9.9])
    b = _tape([0, 2, 2, 5], [20.0, 21.0, 22.0, 23.0])
    c = _tape([2], [30.0], stream=[31.0])
    m = merge_tapes([Instrument("A", a), Instrument("B", b), Instrument("C", c)])
    np.testing.assert_array_equal(m.ts, [0, 1, 2, 2, 2, 2, 2, 3, 5])
    # at t = 2: A's two ticks in A's order, then B's two, then C's
    np.testing.assert_array_equal(m.inst, [1, 0, 0, 0, 1, 1, 2, 0, 1])
    np.testing.assert_array_equal(m.price, [20.0, 10.0, 11.0, 12.0, 21.0, 22.0, 30.0, 13.0, 23.0])
    np.testing.assert_array_equal(m.qty, m.price / 100.0)
    # B has no stream: NaN on its ticks
    np.testing.assert_array_equal(m.stream, [np.nan, np.nan, 9.0, 9.5, np.nan, np.nan, 31.0, 9.9, np.nan])
    for name in ("ts", "inst", "price", "qty", "stream"):
        assert not getattr(m, name).flags.writeable, name


def test_merge_matches_a_sort_by_time_instrument_and_tick():
    rng = np.random.default_rng(2)
    tapes = [_tape(np.sort(rng.integers(0, 50, n)), rng.uniform(1, 2, n)) for n in (300, 1, 120, 77)]
    m = merge_tapes([Instrument(f"S{k}", t) for k, t in enumerate(tapes)])
    expected = sorted((int(t.ts[i]), k, i) for k, t in enumerate(tapes) for i in range(len(t)))
    np.testing.assert_array_equal(m.ts, [ts for ts, _, _ in expected])
    np.testing.assert_array_equal(m.inst, [k for _, k, _ in expected])
    np.testing.assert_array_equal(m.price, [tapes[k].price[i] for _, k, i in expected])


def test_instruments_are_checked():
    tape = _tape([1], [1.0])
    assert "instruments.symbol[1] = 'A': repeats instruments.symbol[0]" in raised_line(
        merge_tapes, [Instrument("A", tape), Instrument("A", tape)])
    assert "instruments.symbol: expected at least one instrument" in raised_line(merge_tapes, [])
    assert "instrument.symbol[0] = ' A': expected a symbol" in raised_line(Instrument, " A", tape)
    assert "instrument A: tape: expected a Tape (got list)" in raised_line(Instrument, "A", [1.0])


# ------------------------------------------------------------------------------ positions files
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _fields_equal(a: Portfolio, b: Portfolio) -> None:
    assert a.n_instruments == b.n_instruments
    for name in ("wallet", "start", "instrument", "size", "entry", "mode", "margin"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)  # NaN equal to NaN; exact otherwise


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_file_round_trip(tmp_path, suffix):
    g = generate_portfolio(PortfolioSpec(symbols=SYMBOLS, accounts=3_000, flat_share=0.05, seed=9),
                           [121_700.0, 4_300.0, 220.0])
    p = g.portfolio
    assert (np.diff(p.start) == 0).any() and (np.diff(p.start) > 1).any()  # wallet-only and multi-position users
    # a flat position without entry, positions out of instrument order
    arrays = {name: np.array(getattr(p, name)) for name in ("wallet", "start", "instrument", "size", "entry", "mode",
                                                            "margin")}
    first_multi = int(np.flatnonzero(np.diff(p.start) > 1)[0])
    lo = int(p.start[first_multi])
    for name in ("instrument", "size", "entry", "mode", "margin"):
        arrays[name][[lo, lo + 1]] = arrays[name][[lo + 1, lo]]
    arrays["size"][lo] = 0.0
    arrays["entry"][lo] = np.nan
    p = Portfolio.from_arrays(**arrays, n_instruments=3)
    ids = np.array([f"0x{i:040x}" for i in range(len(p))])
    path = write_portfolio(p, tmp_path / f"book{suffix}", SYMBOLS, ids=ids)
    back, back_ids = load_portfolio(path, SYMBOLS, return_ids=True)
    _fields_equal(back, p)
    assert list(back_ids) == list(ids)
    assert [f.name for f in tmp_path.iterdir()] == [f"book{suffix}"]  # no temporary file left
    if suffix == ".csv.gz":
        assert gzip.open(path, "rt").readline().strip() == ",".join(COLUMNS)


def test_loader_groups_rows_by_account_in_order_of_first_row(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text(",".join(COLUMNS) + "\n"
                    "b, ETHUSDT ,-2,3000,Cross,,500\n"
                    "a,BTCUSDT,0.5,100000,isolated,2000,0\n"
                    "c,,0,,,,75\n"
                    "b,BTCUSDT,1,101000,ISOLATED,1500,500\n"
                    "b,,0,,cross,0,500\n"
                    "a,SOLUSDT,10,200,cross,0,0\n")
    p, ids = load_portfolio(path, SYMBOLS, return_ids=True)
    assert list(ids) == ["b", "a", "c"]
    np.testing.assert_array_equal(p.wallet, [500.0, 0.0, 75.0])
    np.testing.assert_array_equal(p.start, [0, 2, 4, 4])
    np.testing.assert_array_equal(p.instrument, [1, 0, 0, 2])
    np.testing.assert_array_equal(p.size, [-2.0, 1.0, 0.5, 10.0])
    np.testing.assert_array_equal(p.mode, [CROSS, ISO, ISO, CROSS])
    np.testing.assert_array_equal(p.margin, [0.0, 1500.0, 2000.0, 0.0])
    # Parquet: numeric ids, nulls are "not given"
    table = pa.table({"account": [7, 8, 7], "instrument": ["SOLUSDT", None, "BTCUSDT"], "size": [1.0, 0.0, -1.0],
                      "entry_price": [200.0, None, 1e5], "margin_mode": ["isolated", None, "cross"],
                      "isolated_margin": [20.0, None, None], "wallet": [5.0, 9.0, 5.0]})
    pq.write_table(table, tmp_path / "book.parquet")
    p, ids = load_portfolio(tmp_path / "book.parquet", SYMBOLS, return_ids=True)
    assert list(ids) == [7, 8]
    np.testing.assert_array_equal(p.start, [0, 2, 2])
    np.testing.assert_array_equal(p.instrument, [2, 0])
    np.testing.assert_array_equal(p.margin, [20.0, 0.0])


HEADER = ",".join(COLUMNS)
GOOD = ["a,BTCUSDT,1,100000,isolated,2000,10",
        "a,ETHUSDT,-3,4000,cross,,10",
        "b,SOLUSDT,50,200,cross,0,300",
        "c,,0,,,,40"]


def _bad(row: int, text: str) -> list[str]:
    rows = list(GOOD)
    rows[row - 1] = text
    return rows


@pytest.mark.parametrize("rows, header, expected", [
    (GOOD, "account,instrument,size,entry_price,margin_mode,wallet",
     "missing column isolated_margin (expected columns: account, instrument, size, entry_price, margin_mode, "
     "isolated_margin, wallet)"),
    ([], HEADER, "no rows: expected at least one position or wallet"),
    (_bad(2, ",ETHUSDT,-3,4000,cross,,10"), HEADER, "row 2: account '': expected an account id"),
    # an instrument with no tape
    (_bad(3, "b,DOGEUSDT,50,200,cross,0,300"), HEADER,
     "row 3: instrument 'DOGEUSDT': expected a symbol of the scenario (no tape for this one; instruments: "
     "BTCUSDT, ETHUSDT, SOLUSDT)"),
    (_bad(4, "c,,5,100,cross,,40"), HEADER,
     "row 4: instrument '': expected the symbol of the position's instrument (its size is not 0)"),
    # isolated margin <= 0, or missing
    (_bad(1, "a,BTCUSDT,1,100000,isolated,0,10"), HEADER,
     "row 1: isolated_margin '0': expected an isolated margin > 0 for an isolated position"),
    (_bad(1, "a,BTCUSDT,1,100000,isolated,-5,10"), HEADER,
     "row 1: isolated_margin '-5': expected an isolated margin > 0"),
    (_bad(1, "a,BTCUSDT,1,100000,isolated,,10"), HEADER, "row 1: isolated_margin '': expected an isolated margin > 0"),
    (_bad(3, "b,SOLUSDT,50,200,cross,7,300"), HEADER,
     "row 3: isolated_margin '7': expected empty or 0 on a cross or wallet-only row"),
    # a duplicate (account, instrument): both rows named
    (GOOD + ["a,ETHUSDT,2,4100,isolated,100,10"], HEADER,
     "row 5: instrument 'ETHUSDT': repeats row 2 (account 'a'): expected one row per account and instrument"),
    # wallets that differ within an account
    (_bad(2, "a,ETHUSDT,-3,4000,cross,,11"), HEADER,
     "row 2: wallet '11': differs from row 1 ('10') of account 'a': expected the account's one wallet on all its "
     "rows"),
    (_bad(4, "c,,0,,,,-1"), HEADER, "row 4: wallet '-1': expected a finite wallet >= 0"),
    (_bad(4, "c,,0,,,,"), HEADER, "row 4: wallet '': expected a finite wallet >= 0"),
    # non-finite numbers
    (_bad(2, "a,ETHUSDT,inf,4000,cross,,10"), HEADER, "row 2: size 'inf': expected a finite number"),
    (_bad(2, "a,ETHUSDT,-3,nan,cross,,10"), HEADER, "row 2: entry_price 'nan': expected a finite number"),
    (_bad(3, "b,SOLUSDT,50,200,cross,0,1e999"), HEADER, "row 3: wallet '1e999': expected a finite number"),
    (_bad(2, "a,ETHUSDT,three,4000,cross,,10"), HEADER, "row 2: size 'three': expected a finite number"),
    (_bad(2, "a,ETHUSDT,,4000,cross,,10"), HEADER, "row 2: size '': expected a finite signed size"),
    (_bad(2, "a,ETHUSDT,-3,,cross,,10"), HEADER,
     "row 2: entry_price '': expected an entry price > 0 for a position (size is not 0)"),
    (_bad(2, "a,ETHUSDT,-3,-4000,cross,,10"), HEADER, "row 2: entry_price '-4000': expected an entry price > 0"),
    (_bad(2, "a,ETHUSDT,-3,4000,portfolio,,10"), HEADER, "row 2: margin_mode 'portfolio': expected isolated or cross"),
    (_bad(2, "a,ETHUSDT,-3,4000,,,10"), HEADER, "row 2: margin_mode '': expected isolated or cross"),
    (_bad(4, "c,,0,,isolated,,40"), HEADER,
     "row 4: margin_mode 'isolated': expected cross or empty on a wallet-only row"),
])
def test_loader_refuses_with_one_line(tmp_path, rows, header, expected):
    path = tmp_path / "book.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    line = raised_line(load_portfolio, path, SYMBOLS)
    assert line.startswith(f"{path}: "), line
    assert expected in line, line


def test_the_good_rows_load(tmp_path):
    path = tmp_path / "book.csv"
    path.write_text("\n".join([HEADER, *GOOD]) + "\n")
    p = load_portfolio(path, SYMBOLS)
    np.testing.assert_array_equal(p.start, [0, 2, 3, 3])


def test_loader_refuses_bad_parquet_values_and_paths(tmp_path):
    good = {"account": [1, 1], "instrument": ["BTCUSDT", "ETHUSDT"], "size": [1.0, 2.0],
            "entry_price": [1e5, 4e3], "margin_mode": ["cross", "cross"], "isolated_margin": [None, None],
            "wallet": [10.0, 10.0]}
    pq.write_table(pa.table({**good, "size": [1.0, float("-inf")]}), tmp_path / "inf.parquet")
    assert "inf.parquet: row 2: size -inf: expected a finite number" in raised_line(
        load_portfolio, tmp_path / "inf.parquet", SYMBOLS)
    pq.write_table(pa.table({**good, "wallet": [10.0, float("nan")]}), tmp_path / "nan.parquet")
    assert "nan.parquet: row 2: wallet nan: expected a finite wallet >= 0" in raised_line(
        load_portfolio, tmp_path / "nan.parquet", SYMBOLS)
    pq.write_table(pa.table({**good, "instrument": ["BTCUSDT", "BTCUSDT"]}), tmp_path / "dup.parquet")
    assert "dup.parquet: row 2: instrument 'BTCUSDT': repeats row 1 (account 1)" in raised_line(
        load_portfolio, tmp_path / "dup.parquet", SYMBOLS)
    assert "no such positions file" in raised_line(load_portfolio, tmp_path / "nope.parquet", SYMBOLS)
    (tmp_path / "book.json").write_text("{}")
    assert "book.json: expected a .csv, .csv.gz or .parquet" in raised_line(load_portfolio, tmp_path / "book.json",
                                                                            SYMBOLS)


def test_writer_refuses_what_the_loader_would_and_leaves_the_old_file(tmp_path):
    path = write_portfolio(Portfolio.from_arrays(**_arrays(), n_instruments=3), tmp_path / "book.csv", SYMBOLS)
    before = path.read_bytes()
    zero_margin = Portfolio.from_arrays(**_with(margin=[0.0, 0.0, 0.0, 6.0, 7.0, 0.0]), n_instruments=3)
    assert "portfolio.margin[2] = 0.0: a positions file expects an isolated margin > 0" in raised_line(
        write_portfolio, zero_margin, path, SYMBOLS)
    assert "ids[2] = 'x': repeats ids[0]" in raised_line(write_portfolio, zero_margin, path, SYMBOLS,
                                                         ids=["x", "y", "x", "z"])
    assert "symbols: 2 given: expected one per instrument (3)" in raised_line(
        write_portfolio, zero_margin, path, SYMBOLS[:2])
    assert path.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["book.csv"]


# ------------------------------------------------------------------------------ the generator
PRICES = (121_700.0, 4_300.0, 220.0)
N = 40_000


@pytest.fixture(scope="module")
def generated():
    spec = PortfolioSpec(accounts=N, holdings=(0.5, 0.3, 0.2), hedged_share=0.25, long_share=(0.7, 0.4, 0.55),
                         cross_share=0.4, flat_share=0.03, seed=17)
    return spec, generate_portfolio(spec, PRICES)


def test_generator_is_seeded(generated):
    spec, g = generated
    again = generate_portfolio(spec, PRICES)
    _fields_equal(again.portfolio, g.portfolio)
    np.testing.assert_array_equal(again.leverage, g.leverage)
    np.testing.assert_array_equal(again.hedged, g.hedged)
    other = generate_portfolio(PortfolioSpec(accounts=N, holdings=(0.5, 0.3, 0.2), seed=18), PRICES)
    assert not np.array_equal(other.portfolio.wallet, g.portfolio.wallet)


@pytest.mark.parametrize("sizes", [None, SizeDistribution(distribution="pareto", alpha=1.1)])
def test_open_interest_and_long_share_per_instrument(generated, sizes):
    spec, g = generated
    if sizes is not None:
        spec = PortfolioSpec(accounts=N, long_share=(0.7, 0.4, 0.55), sizes=sizes, seed=4)
        g = generate_portfolio(spec, PRICES)
    long, short = g.notional()
    oi, share = np.asarray(spec.open_interest_usd), np.asarray(spec.long_share)
    np.testing.assert_allclose(long + short, oi, rtol=1e-9)
    np.testing.assert_allclose(long, oi * share, rtol=1e-9)
    np.testing.assert_allclose(short, oi * (1 - share), rtol=1e-9)
    # the same figures by hand
    p = g.portfolio
    notional = np.abs(p.size) * np.asarray(PRICES)[p.instrument]
    for k in range(3):
        assert notional[p.instrument == k].sum() == pytest.approx(oi[k], rel=1e-9)


def test_leverage_within_each_instruments_cap(generated):
    spec, g = generated
    p = g.portfolio
    cap = np.asarray(spec.max_leverage)[p.instrument]
    assert (g.leverage <= cap).all() and (g.leverage == cap).any()  # the cap binds (40x drawn on ETH, SOL)
    assert set(np.unique(g.leverage)) <= {2.0, 5.0, 10.0, 20.0, 25.0, 40.0}
    # every margin account's equity at the start prices covers its notional at the cap
    a = p.margin_accounts()
    price = np.asarray(PRICES)[a.instrument]
    account = np.repeat(np.arange(len(a)), np.diff(a.start))
    upnl = np.bincount(account, a.size * (price - a.entry), minlength=len(a))
    floor = np.bincount(account, np.abs(a.size) * price / np.asarray(spec.max_leverage)[a.instrument],
                        minlength=len(a))
    equity = a.collateral + upnl
    assert (equity >= floor * (1 - 1e-12)).all()
    isolated = p.mode == ISO
    assert (p.margin[isolated] > 0).all() and (p.margin[~isolated] == 0).all()
    # an isolated position's equity is its margin at its leverage (or more, past the collateral floor)
    need = np.abs(p.size) * np.asarray(PRICES)[p.instrument] / g.leverage
    iso_equity = p.margin + p.size * (np.asarray(PRICES)[p.instrument] - p.entry)
    np.testing.assert_allclose(np.maximum(iso_equity, MIN_COLLATERAL_SHARE * need)[isolated],
                               np.maximum(need, iso_equity)[isolated], rtol=1e-9)


def test_books_hedged_and_directional(generated):
    spec, g = generated
    p = g.portfolio
    held = np.diff(p.start)
    user = p.owners()
    longs = np.bincount(user, p.size > 0, minlength=len(p))
    shorts = np.bincount(user, p.size < 0, minlength=len(p))
    multi = held >= 2
    assert g.hedged.sum() == round(multi.sum() * spec.hedged_share)
    assert not g.hedged[~multi].any()
    assert ((longs > 0) & (shorts > 0))[g.hedged].all()        # a long in one instrument, a short in another
    directional = ~g.hedged & (held > 0)
    assert ((longs == 0) | (shorts == 0))[directional].all()   # one side only


def test_instruments_per_account_and_modes(generated):
    spec, g = generated
    p = g.portfolio
    held = np.diff(p.start)
    n_flat = round(N * spec.flat_share)
    counts = np.bincount(held, minlength=4)
    assert counts[0] == n_flat
    # exact shares of the positioned accounts (largest remainder)
    np.testing.assert_allclose(counts[1:] / (N - n_flat), spec.holdings, atol=1.0 / (N - n_flat))
    assert counts[1:].sum() == N - n_flat
    # flat accounts hold a wallet; no account holds an instrument twice (validated), positions in instrument order
    assert (p.wallet[held == 0] > 0).all()
    key = p.owners() * 3 + p.instrument
    assert (np.diff(key) > 0).all()
    # both modes, and users mixing them
    cross = np.bincount(p.owners(), p.mode == CROSS, minlength=len(p))
    assert ((cross > 0) & (cross < held)).any()
    assert abs((p.mode == CROSS).mean() - spec.cross_share) < 0.02
    # the biggest book is held most often (instruments drawn with weights ~ open interest)
    per_instrument = np.bincount(p.instrument, minlength=3)
    assert per_instrument[0] > per_instrument[1] > per_instrument[2]


def test_generator_refuses_impossible_facts():
    assert "max_leverage: 2 values: expected one per symbol (3)" in raised_line(PortfolioSpec, max_leverage=(40, 25))
    assert "holdings: 4 values: expected the probabilities of holding 1..K instruments, 1 <= K <= 3" in raised_line(
        PortfolioSpec, holdings=(0.4, 0.3, 0.2, 0.1))
    assert "open_interest_usd[1] = -1.0: expected a finite notional >= 0" in raised_line(
        PortfolioSpec, open_interest_usd=(1.0, -1.0, 1.0))
    assert "prices[2] = 0.0: expected a finite start price > 0 for SOL" in raised_line(
        generate_portfolio, PortfolioSpec(accounts=10), (1.0, 2.0, 0.0))
    # one account holds one instrument on one side: every other (instrument, side) is empty
    line = raised_line(generate_portfolio, PortfolioSpec(accounts=1, flat_share=0.0, holdings=(1.0,)), PRICES)
    assert line.startswith("accounts: 1 account(s) put no ") and line.endswith(
        "whose open interest needs one: expected more accounts"), line


def test_notional_by_instrument_is_checked():
    p = Portfolio.from_arrays(**_arrays(), n_instruments=3)
    long, short = notional_by_instrument(p, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(long, [0.0, 0.5 * 2 + 3.0 * 2, 4.0])
    np.testing.assert_array_equal(short, [2.0 + 1.0, 0.0, 0.0])
    assert "prices: expected one price per instrument" in raised_line(notional_by_instrument, p, [1.0])


def test_population_is_a_one_instrument_portfolio_of_the_file_format(tmp_path):
    pop = Population.from_arrays([10.0, 20.0, 5.0], [1.0, -2.0, 0.0], [100.0, 110.0, 100.0], [ISO, CROSS, CROSS])
    p = Portfolio.from_population(pop)
    path = write_portfolio(p, tmp_path / "one.parquet", ["BTCUSDT"])
    _fields_equal(load_portfolio(path, ["BTCUSDT"]), p)
