"""Trader populations: the seeded generator against its parameters, entries drawn from the real
Gemini BTCUSD tape before the window, the file loader and its one-line errors, and the config."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskengine import backtest, config
from riskengine.codes import MarginMode
from riskengine.config import PopulationSpec
from riskengine.data import Catalog
from riskengine.population import (COLUMNS, FLAT_COLLATERAL_USD, MIN_COLLATERAL_SHARE, external_position, generate,
                                   load_population, write_population)
from riskengine.scenario import Population, Tape

GEMINI_BTC = "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"
NS = 1_000_000_000
#: 2025-10-10 20:00 UTC, the start of the shipped BTC replay window
WINDOW_START = 1_760_126_400 * NS
PRICE = 121_700.0
N = 50_000
#: tolerances at a false-alarm rate of 1e-6 per check (the draws are seeded, so these are fixed
#: outcomes; the bounds say how far a correct generator may stray):
#: chi-square critical value with 4 degrees of freedom, two-sided normal quantile
CHI2_4DOF = 33.38
Z = 4.89


def _dkw(n: int, alpha: float = 1e-6) -> float:
    """Dvoretzky-Kiefer-Wolfowitz bound on the sup distance of an empirical CDF of n draws."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


@pytest.fixture(scope="module")
def big():
    spec = PopulationSpec(accounts=N, open_interest_usd=2.5e9, long_share=0.64, cross_share=0.35,
                          flat_share=0.05, cross_excess=(1.5, 2.5), seed=21)
    return spec, generate(spec, PRICE)


@pytest.fixture(scope="module")
def gemini(shared_data, tmp_path_factory) -> Tape:
    catalog = Catalog(tmp_path_factory.mktemp("catalog"))
    catalog.import_file(shared_data / GEMINI_BTC, source="tardis")
    return catalog.tape("gemini", "BTCUSD")


# ------------------------------------------------------------------------------ the generator
class TestMatchesParameters:
    def test_open_interest_and_long_share_exact_by_notional(self, big):
        spec, g = big
        assert g.long_notional + g.short_notional == pytest.approx(spec.open_interest_usd, rel=1e-12)
        assert g.long_notional == pytest.approx(spec.open_interest_usd * spec.long_share, rel=1e-12)
        assert g.short_notional == pytest.approx(spec.open_interest_usd * (1 - spec.long_share), rel=1e-12)
        notional = np.abs(g.population.size) * PRICE
        assert notional.sum() == pytest.approx(spec.open_interest_usd, rel=1e-12)

    def test_flat_accounts_and_sides_by_count(self, big):
        spec, g = big
        size = g.population.size
        flat = size == 0
        assert len(g.population) == N
        assert flat.sum() == round(N * spec.flat_share)
        positioned = N - flat.sum()
        assert (size > 0).sum() == round(positioned * spec.long_share)
        # flat accounts hold collateral in the documented range and nothing else
        lo, hi = FLAT_COLLATERAL_USD
        assert ((g.population.collateral[flat] >= lo) & (g.population.collateral[flat] <= hi)).all()
        assert np.isnan(g.leverage[flat]).all()
        assert (g.leverage[~flat] >= 1).all()

    def test_leverage_histogram_matches_weights(self, big):
        spec, g = big
        lev = g.leverage[~np.isnan(g.leverage)]
        values, weights = np.array(spec.leverage.values), np.array(spec.leverage.weights)
        counts = np.array([(lev == v).sum() for v in values])
        assert counts.sum() == len(lev)  # nothing outside the configured values
        expected = weights * len(lev)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < CHI2_4DOF, (counts, expected)

    def test_cross_share_within_binomial_error(self, big):
        spec, g = big
        k = int((g.population.mode == MarginMode.CROSS).sum())
        p = spec.cross_share
        assert abs(k - N * p) < Z * math.sqrt(N * p * (1 - p)), k

    def test_margin_is_notional_over_leverage_at_the_start_price(self, big):
        spec, g = big
        pop = g.population
        pos = pop.size != 0
        margin = (np.abs(pop.size) * PRICE / g.leverage)[pos]  # notional / leverage
        equity = (pop.collateral + pop.size * (PRICE - pop.entry))[pos]
        ratio = equity / margin  # 1 for isolated, the cross excess for cross
        cross = pop.mode[pos] == MarginMode.CROSS
        lo, hi = spec.cross_excess
        # an entry so far in the money that its profit exceeds the target equity keeps a minimal
        # collateral instead (so it runs below its drawn leverage): rare
        clamped = pop.collateral[pos] <= MIN_COLLATERAL_SHARE * margin * np.where(cross, hi, 1.0) * (1 + 1e-9)
        assert clamped.mean() < 0.01
        assert (pop.collateral[pos] > 0).all()
        np.testing.assert_allclose(ratio[~cross & ~clamped], 1.0, rtol=1e-9)
        assert (ratio[~cross & clamped] > 1.0).all()
        excess = ratio[cross & ~clamped]
        assert (excess >= lo * (1 - 1e-9)).all() and (excess <= hi * (1 + 1e-9)).all()
        # uniform in [1.5, 2.5]: mean 2, sd 1/sqrt(12)
        assert abs(excess.mean() - 2.0) < Z / math.sqrt(12 * len(excess))
        assert abs(excess.std() - 1 / math.sqrt(12)) < 0.01

    def test_lognormal_sizes_have_the_configured_spread(self, big):
        spec, g = big
        size = g.population.size
        log_long = np.log(size[size > 0])
        sigma = spec.sizes.tail
        # sd of a sample sd of n normal draws: sigma / sqrt(2 (n - 1))
        assert abs(log_long.std(ddof=1) - sigma) < Z * sigma / math.sqrt(2 * (len(log_long) - 1))

    @pytest.mark.parametrize("alpha", [1.1, 2.5])
    def test_pareto_tail_index(self, alpha):
        spec = PopulationSpec(accounts=N, sizes={"distribution": "pareto", "alpha": alpha}, flat_share=0, seed=5)
        g = generate(spec, PRICE)
        size = g.population.size
        x = np.sort(size[size > 0])[::-1]
        # per side the sizes are Pareto(alpha) times one constant; Hill's estimator over the top k
        k = 2_000
        hill = k / np.log(x[:k] / x[k]).sum()
        assert abs(hill - alpha) < Z * alpha / math.sqrt(k), hill
        # the share of the largest 1% of the longs: p^(1 - 1/alpha) in the limit (0.66 for
        # alpha 1.1, whose finite samples fall well short of it; 0.063 for alpha 2.5)
        top = x[: len(x) // 100].sum() / x.sum()
        if alpha < 2:
            assert top > 0.3, top
        else:
            assert 0.04 < top < 0.09, top

    def test_entry_spread_without_a_tape(self, big):
        spec, g = big
        assert g.entries_from == "spread"
        pos = g.population.size != 0
        log_entry = np.log(g.population.entry[pos] / PRICE)
        n = pos.sum()
        assert abs(log_entry.mean()) < Z * spec.entry_spread / math.sqrt(n)
        assert abs(log_entry.std(ddof=1) - spec.entry_spread) < Z * spec.entry_spread / math.sqrt(2 * (n - 1))


def test_sides_balance_with_the_external_market(big):
    spec, g = big
    pop = g.population
    assert pop.size.sum() + g.external_size == 0.0
    assert external_position(pop) == g.external_size
    # the external market holds the population's excess long notional, short
    expected = -spec.open_interest_usd * (2 * spec.long_share - 1) / PRICE
    assert g.external_size == pytest.approx(expected, rel=1e-9)
    assert g.external_size < 0
    even = generate(PopulationSpec(accounts=1_000, long_share=0.5, seed=3), PRICE)
    assert abs(even.external_size) < 1e-9 * np.abs(even.population.size).sum()
    all_long = generate(PopulationSpec(accounts=1_000, long_share=1.0, seed=3), PRICE)
    assert (all_long.population.size >= 0).all()
    assert all_long.external_size == pytest.approx(-1e9 / PRICE, rel=1e-12)


def _arrays(g):
    p = g.population
    return (p.collateral, p.size, p.entry, p.mode, g.leverage)


def test_same_seed_same_population_other_seed_differs():
    spec = PopulationSpec(accounts=5_000, seed=9)
    a, b = generate(spec, PRICE), generate(spec, PRICE)
    for x, y in zip(_arrays(a), _arrays(b)):
        np.testing.assert_array_equal(x, y)
    c = generate(spec.model_copy(update={"seed": 10}), PRICE)
    for x, y in zip(_arrays(a), _arrays(c)):
        assert not np.array_equal(x, y)


def test_each_parameter_moves_only_its_own_draws():
    base = PopulationSpec(accounts=5_000, seed=9)
    a = generate(base, PRICE)
    b = generate(base.model_copy(update={"cross_share": 0.9}), PRICE)
    np.testing.assert_array_equal(a.population.size, b.population.size)
    np.testing.assert_array_equal(a.population.entry, b.population.entry)
    np.testing.assert_array_equal(a.leverage, b.leverage)
    assert (b.population.mode == MarginMode.CROSS).sum() > (a.population.mode == MarginMode.CROSS).sum()


def test_generates_a_million_accounts():
    g = generate(PopulationSpec(accounts=1_000_000, seed=1), PRICE)
    assert len(g.population) == 1_000_000
    assert g.long_notional + g.short_notional == pytest.approx(1e9, rel=1e-12)


@pytest.mark.parametrize("spec, message", [
    ({"accounts": 1, "long_share": 0.5, "flat_share": 0.0}, "cannot hold both sides"),
    ({"accounts": 2, "flat_share": 0.9}, "leave no position"),
])
def test_too_few_accounts(spec, message):
    with pytest.raises(ValueError, match=message):
        generate(PopulationSpec(**spec), PRICE)


# ---------------------------------------------------------------- entries from the real tape
class TestEntriesFromTheGeminiTape:
    LOOKBACK_S = 6 * 3600

    @pytest.fixture(scope="class")
    @classmethod
    def drawn(cls, gemini):
        spec = PopulationSpec(accounts=N, flat_share=0.0, entry_lookback_s=cls.LOOKBACK_S, seed=13)
        price = float(gemini.price[np.searchsorted(gemini.ts, WINDOW_START)])
        inside = (gemini.ts >= WINDOW_START - cls.LOOKBACK_S * NS) & (gemini.ts < WINDOW_START)
        return generate(spec, price, gemini, WINDOW_START), gemini.price[inside], gemini.qty[inside]

    def test_entries_are_trades_before_the_window(self, drawn, gemini):
        g, px, _ = drawn
        entry = g.population.entry
        assert g.entries_from == "tape"
        assert len(px) > 5_000  # the Gemini tape holds ~9k trades in 14:00-20:00
        assert np.isin(entry, px).all()
        assert entry.min() >= px.min() and entry.max() <= px.max()
        # the window itself and the crash below it are not sampled: the window reaches lower
        after = gemini.price[gemini.ts >= WINDOW_START]
        assert after.min() < px.min() * 0.95
        assert entry.min() >= px.min()

    def test_entries_are_volume_weighted(self, drawn):
        g, px, qty = drawn
        entry = np.sort(g.population.entry)
        order = np.argsort(px, kind="stable")
        xs = np.unique(px)
        upto = np.searchsorted(px[order], xs, side="right") - 1
        by_volume = np.cumsum(qty[order])[upto] / qty.sum()
        by_count = (upto + 1) / len(px)
        empirical = np.searchsorted(entry, xs, side="right") / len(entry)
        bound = _dkw(len(entry))
        assert np.abs(empirical - by_volume).max() < bound
        # and not trade-weighted: on this tape the two weightings are far apart
        assert np.abs(empirical - by_count).max() > 5 * bound

    def test_same_seed_same_entries(self, drawn, gemini):
        g, _, _ = drawn
        again = generate(PopulationSpec(accounts=N, flat_share=0.0, entry_lookback_s=self.LOOKBACK_S, seed=13),
                         g.price, gemini, WINDOW_START)
        np.testing.assert_array_equal(g.population.entry, again.population.entry)
        np.testing.assert_array_equal(g.population.collateral, again.population.collateral)

    def test_entry_window_outside_the_tape(self, gemini):
        # 21 h before 20:00 is the day before; the tape starts at 00:00
        with pytest.raises(ValueError, match=r"^the entry window 2025-10-09T23:00:00Z .. 2025-10-10T20:00:00Z "
                                             r"begins before the tape \(the tape spans 2025-10-10T00:00:06"):
            generate(PopulationSpec(accounts=100, entry_lookback_s=21 * 3600), PRICE, gemini, WINDOW_START)
        later = WINDOW_START + 30 * 3600 * NS  # after the tape's end
        with pytest.raises(ValueError, match="holds no trades of the tape"):
            generate(PopulationSpec(accounts=100, entry_lookback_s=3600), PRICE, gemini, later)
        with pytest.raises(ValueError, match="window_start_ns"):
            generate(PopulationSpec(accounts=100), PRICE, gemini)

    def test_lookback_zero_uses_the_spread(self, gemini):
        g = generate(PopulationSpec(accounts=100, entry_lookback_s=0), PRICE, gemini, WINDOW_START)
        assert g.entries_from == "spread"
        ref = generate(PopulationSpec(accounts=100, entry_lookback_s=0), PRICE)
        np.testing.assert_array_equal(g.population.entry, ref.population.entry)


def test_trades_without_sizes_are_drawn_equally():
    ts = np.arange(4) * NS
    tape = Tape.from_arrays(ts, [100.0, 200.0, 300.0, 400.0])  # qty all zero
    g = generate(PopulationSpec(accounts=40_000, flat_share=0, entry_lookback_s=4, seed=2), 250.0, tape, 4 * NS)
    counts = np.array([(g.population.entry == p).sum() for p in (100.0, 200.0, 300.0, 400.0)])
    assert counts.sum() == 40_000
    expected = 10_000
    assert (((counts - expected) ** 2) / expected).sum() < 30.0  # chi-square, 3 dof, p ~ 1e-6


def test_zero_size_trades_are_never_entries():
    ts = np.arange(4) * NS
    tape = Tape.from_arrays(ts, [100.0, 200.0, 300.0, 400.0], [1.0, 0.0, 3.0, 0.0])
    g = generate(PopulationSpec(accounts=20_000, flat_share=0, entry_lookback_s=4, seed=2), 250.0, tape, 4 * NS)
    share = (g.population.entry == 100.0).mean()
    assert set(np.unique(g.population.entry)) == {100.0, 300.0}
    assert abs(share - 0.25) < Z * math.sqrt(0.25 * 0.75 / 20_000)


# --------------------------------------------------------------------------------- the loader
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_file_round_trip(tmp_path, suffix):
    g = generate(PopulationSpec(accounts=3_000, flat_share=0, seed=4), PRICE)
    ids = np.array([f"0x{i:040x}" for i in range(3_000)])
    path = write_population(g.population, tmp_path / f"pop{suffix}", ids=ids)
    back, back_ids = load_population(path, return_ids=True)
    for name in ("collateral", "size", "entry", "mode"):
        np.testing.assert_array_equal(getattr(back, name), getattr(g.population, name), err_msg=name)
    assert list(back_ids) == list(ids)


def test_loader_reads_the_documented_spellings(tmp_path):
    path = tmp_path / "pop.csv"
    path.write_text("account,side,size,entry_price,collateral,margin_mode,note\n"
                    "a, Long ,2,100,50,Isolated,x\n"
                    "b,short,1.5,110,20,CROSS,\n"
                    "7,+1,1,90,10,cross,\n"
                    "8,-1,3,95,30,isolated,\n")
    pop, ids = load_population(path, return_ids=True)
    np.testing.assert_array_equal(pop.size, [2.0, -1.5, 1.0, -3.0])
    np.testing.assert_array_equal(pop.entry, [100.0, 110.0, 90.0, 95.0])
    np.testing.assert_array_equal(pop.collateral, [50.0, 20.0, 10.0, 30.0])
    np.testing.assert_array_equal(pop.mode, [0, 1, 1, 0])
    assert list(ids) == ["a", "b", "7", "8"]
    assert external_position(pop) == pytest.approx(1.5)
    # Parquet with numeric sides and ids
    table = pa.table({"account": [1, 2], "side": [1, -1], "size": [1.0, 2.0], "entry_price": [10.0, 11.0],
                      "collateral": [1.0, 2.0], "margin_mode": ["cross", "isolated"]})
    pq.write_table(table, tmp_path / "pop.parquet")
    pop = load_population(tmp_path / "pop.parquet")
    np.testing.assert_array_equal(pop.size, [1.0, -2.0])


GOOD = ["a,long,1,100,10,isolated", "b,short,2,101,20,cross", "c,long,3,102,30,cross"]
HEADER = ",".join(COLUMNS)


def _csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "pop.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _bad(row: int, text: str) -> list[str]:
    rows = list(GOOD)
    rows[row - 1] = text
    return rows


@pytest.mark.parametrize("rows, header, expected", [
    (GOOD, "account,side,size,entry,collateral", ("missing columns entry_price, margin_mode (expected columns: "
                                                  "account, side, size, entry_price, collateral, margin_mode)")),
    (_bad(2, "b,short,2,101,0,cross"), HEADER, "row 2: collateral '0': expected collateral > 0 behind a position"),
    (_bad(3, "c,long,3,102,-5,cross"), HEADER, "row 3: collateral '-5': expected collateral > 0"),
    (_bad(1, "a,long,0,100,10,isolated"), HEADER, "row 1: size '0': expected a size > 0"),
    (_bad(2, "b,short,-2,101,20,cross"), HEADER, "row 2: size '-2': expected a size > 0"),
    (_bad(3, "c,long,3,0,30,cross"), HEADER, "row 3: entry_price '0': expected an entry price > 0"),
    (_bad(1, "a,long,1,-100,10,isolated"), HEADER, "row 1: entry_price '-100': expected an entry price > 0"),
    (_bad(2, "b,short,two,101,20,cross"), HEADER, "row 2: size 'two': expected a finite number"),
    (_bad(3, "c,long,3,102,,cross"), HEADER, "row 3: collateral '': expected a finite number"),
    (_bad(2, "b,sideways,2,101,20,cross"), HEADER, "row 2: side 'sideways': expected long, short, +1 or -1"),
    (_bad(1, "a,2,1,100,10,isolated"), HEADER, "row 1: side '2': expected long, short, +1 or -1"),
    (_bad(3, "c,long,3,102,30,portfolio"), HEADER, "row 3: margin_mode 'portfolio': expected isolated or cross"),
    (_bad(3, "a,long,3,102,30,cross"), HEADER, "row 3: account 'a': repeats row 1: expected unique account ids"),
    (_bad(2, ",short,2,101,20,cross"), HEADER, "row 2: account is empty: expected an account id"),
    ([], HEADER, "no rows: expected at least one account"),
])
def test_loader_rejects_with_one_line(tmp_path, rows, header, expected):
    path = _csv(tmp_path, rows, header)
    with pytest.raises(ValueError) as info:
        load_population(path)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: "), line
    assert expected in line, line


def test_loader_rejects_bad_parquet_and_paths(tmp_path):
    table = pa.table({"account": [5, 6, 5], "side": [1, -1, 1], "size": [1.0, 2.0, 3.0],
                      "entry_price": [10.0, 11.0, 12.0], "collateral": [1.0, 2.0, 3.0],
                      "margin_mode": ["cross", "isolated", "cross"]})
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match=r"dup.parquet: row 3: account 5: repeats row 1"):
        load_population(tmp_path / "dup.parquet")
    pq.write_table(table.drop(["collateral"]), tmp_path / "short.parquet")
    with pytest.raises(ValueError, match=r"short.parquet: missing column collateral \(expected columns: account, "):
        load_population(tmp_path / "short.parquet")
    with pytest.raises(ValueError, match="no such population file"):
        load_population(tmp_path / "nope.csv")
    (tmp_path / "pop.json").write_text("{}")
    with pytest.raises(ValueError, match=r"pop.json: expected a .csv, .csv.gz or .parquet population file"):
        load_population(tmp_path / "pop.json")


def test_writer_refuses_flat_accounts(tmp_path):
    pop = Population.from_arrays([10.0, 5.0], [1.0, 0.0], [100.0, 100.0])
    with pytest.raises(ValueError, match="1 flat account"):
        write_population(pop, tmp_path / "p.csv")


# --------------------------------------------------------------------------------- the config
def _config(tmp_path: Path, shared_data: Path, population: dict, window_start: str = "2025-10-10T20:00:00Z",
            scenario_population: dict | None = None) -> config.LoadedConfig:
    scenario = {"name": "btc", "tape": {"source": "tardis", "path": str(shared_data / GEMINI_BTC)},
                "window": {"start": window_start, "end": "2025-10-10T22:00:00Z"}}
    if scenario_population:
        scenario["population"] = scenario_population
    return config.parse({"scenario": scenario, "population": population, "venues": [{"preset": "hyperliquid"}]},
                        where="bt.toml", base_dir=tmp_path, path=tmp_path / "bt.toml")


def test_config_generates_entries_from_the_pre_window_tape(shared_data, tmp_path, gemini):
    loaded = _config(tmp_path, shared_data, {"accounts": 4_000, "open_interest_usd": 5e8, "long_share": 0.6,
                                             "entry_lookback_s": 3_600, "flat_share": 0.0, "seed": 3})
    prepared = backtest.prepare(loaded, 0)
    pop = prepared.scenario.population
    tape = prepared.scenario.tape
    price = float(tape.price[0])
    assert len(pop) == 4_000
    assert np.abs(pop.size).sum() * price == pytest.approx(5e8, rel=1e-12)
    assert pop.size[pop.size > 0].sum() * price == pytest.approx(3e8, rel=1e-12)
    before = gemini.price[(gemini.ts >= WINDOW_START - 3_600 * NS) & (gemini.ts < WINDOW_START)]
    assert np.isin(pop.entry, before).all()
    # the same as calling the generator on the whole tape
    direct = generate(loaded.config.population, price, gemini, WINDOW_START).population
    np.testing.assert_array_equal(pop.entry, direct.entry)
    np.testing.assert_array_equal(pop.collateral, direct.collateral)
    again = backtest.prepare(loaded, 0).scenario.population
    np.testing.assert_array_equal(pop.size, again.size)


def test_config_entry_window_before_the_tape_is_one_line(shared_data, tmp_path):
    loaded = _config(tmp_path, shared_data, {"accounts": 100, "entry_lookback_s": 2 * 3_600},
                     window_start="2025-10-10T01:00:00Z")
    with pytest.raises(ValueError) as info:
        backtest.prepare(loaded, 0)
    line = str(info.value)
    assert line.startswith(f"{tmp_path / 'bt.toml'}: population.entry_lookback_s: the entry window "
                           "2025-10-09T23:00:00Z .. 2025-10-10T01:00:00Z begins before the tape"), line
    assert "\n" not in line


def test_config_population_file(shared_data, tmp_path):
    g = generate(PopulationSpec(accounts=500, flat_share=0, seed=6), PRICE)
    write_population(g.population, tmp_path / "accounts.parquet")
    loaded = _config(tmp_path, shared_data, {"file": "accounts.parquet"})  # relative to the config's folder
    assert backtest.check(loaded)
    pop = backtest.prepare(loaded, 0).scenario.population
    np.testing.assert_array_equal(pop.size, g.population.size)
    np.testing.assert_array_equal(pop.collateral, g.population.collateral)
    # a scenario may switch to a file (the generator keys of [population] then do not apply)
    loaded = _config(tmp_path, shared_data, {"accounts": 100, "seed": 1},
                     scenario_population={"file": "accounts.parquet"})
    np.testing.assert_array_equal(backtest.prepare(loaded, 0).scenario.population.size, g.population.size)
    # and back to the generator
    loaded = _config(tmp_path, shared_data, {"file": "accounts.parquet"}, scenario_population={"accounts": 50})
    assert len(backtest.prepare(loaded, 0).scenario.population) == 50


@pytest.mark.parametrize("population, expected", [
    ({"file": "p.csv", "accounts": 10, "seed": 2},
     "bt.toml: population: give file or generator keys, not both (got file and accounts, seed)"),
    ({"sizes": {"distribution": "pareto", "sigma": 1.0}},
     "bt.toml: population.sizes: sigma is the lognormal spread: give alpha for a pareto distribution"),
    ({"sizes": {"distribution": "zipf"}}, "bt.toml: population.sizes.distribution: Input should be 'lognormal' or 'pareto'"),
    ({"cross_excess": [3, 2]}, "bt.toml: population: cross_excess: expected [low, high] with low <= high"),
    ({"cross_excess": [0.5, 2]}, "bt.toml: population.cross_excess[0]: Input should be greater than or equal to 1"),
    ({"entry_lookback": 60}, "bt.toml: population.entry_lookback: unknown key (did you mean 'entry_lookback_s'?)"),
    ({"entry_lookback_s": -1}, "bt.toml: population.entry_lookback_s: Input should be greater than or equal to 0"),
])
def test_config_rejects_bad_population_keys(shared_data, tmp_path, population, expected):
    with pytest.raises(ValueError) as info:
        _config(tmp_path, shared_data, population)
    assert str(info.value).startswith(expected), str(info.value)


def test_config_missing_population_file_caught_by_check(shared_data, tmp_path):
    loaded = _config(tmp_path, shared_data, {"file": "missing.csv"})
    with pytest.raises(ValueError) as info:
        backtest.check(loaded)
    assert str(info.value) == f"{tmp_path / 'bt.toml'}: population.file: no such file {tmp_path / 'missing.csv'}"


def test_synthetic_scenario_scatters_entries_by_the_spread():
    loaded = config.parse({"scenario": {"name": "s", "synthetic": {"ticks": 2_000},
                                        "window": {"start": "2025-10-10T20:30:00Z"}},
                           "population": {"accounts": 2_000, "entry_spread": 0.01, "seed": 4},
                           "venues": [{"preset": "hyperliquid"}]})
    prepared = backtest.prepare(loaded, 0)
    price = float(prepared.scenario.tape.price[0])
    expected = generate(loaded.config.population, price).population
    np.testing.assert_array_equal(prepared.scenario.population.entry, expected.entry)
    pop = prepared.scenario.population
    assert not np.isin(pop.entry[pop.size != 0], prepared.scenario.tape.price).any()
