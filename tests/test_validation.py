"""Input validation: bad input raises a clear ``ValueError`` before any run, naming the field
and the offending index or value; the caller's arrays are never modified.
"""

from __future__ import annotations

import math
import re
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import riskengine.engine as engine_mod
from riskengine import (ConstantDepth, EngineParams, Population, Scenario, Tape, VenueDesign,
                        run, synthetic)
from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, MarkMethod
from riskengine.venue import Liquidation

NS = 1_000_000_000
N = 6


# ----------------------------------------------------------------------------- helpers


def _ts(n: int = N) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * NS + 1_700_000_000 * NS


def _price(n: int = N) -> np.ndarray:
    return np.linspace(100.0, 90.0, n)


def _pop_arrays(n: int = 4):
    collateral = np.array([1_000.0, 50.0, 200.0, 10.0][:n])
    size = np.array([1.0, -2.0, 0.0, 0.5][:n])
    entry = np.array([100.0, 101.0, 0.0, 99.0][:n])  # account 2 is flat: entry may be 0
    mode = np.array([0, 1, 0, 1][:n], dtype=np.int8)
    return collateral, size, entry, mode


def _small_scenario(stream: bool = False) -> Scenario:
    ts, px = _ts(), _price()
    tape = Tape.from_arrays(ts, px, stream=px * 1.001 if stream else None)
    return Scenario("small", tape, Population.from_arrays(*_pop_arrays()))


def _raises(pattern: str):
    return pytest.raises(ValueError, match=pattern)


@pytest.fixture
def no_engine_runs(monkeypatch):
    """Count engine runs started by ``run()``; a validation error must come before any."""
    calls = []
    original = engine_mod.run_raw

    def spy(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(engine_mod, "run_raw", spy)
    return calls


# ----------------------------------------------------------------------------- Tape


class TestTapeFromArrays:
    def test_valid_tape_is_accepted(self):
        tape = Tape.from_arrays(_ts(), _price(), np.ones(N), np.full(N, np.nan))
        assert len(tape) == N
        assert tape.ts.dtype == np.int64 and tape.price.dtype == np.float64
        assert np.all(np.isnan(tape.stream))  # NaN = "no stream value yet" is allowed

    def test_qty_defaults_to_zeros(self):
        tape = Tape.from_arrays(_ts(), _price())
        assert tape.qty.dtype == np.float64
        assert np.array_equal(tape.qty, np.zeros(N))
        assert tape.stream is None

    @pytest.mark.parametrize("field, kwargs, length", [
        ("price", dict(price=_price(N - 2)), N - 2),
        ("qty", dict(qty=np.ones(N + 1)), N + 1),
        ("stream", dict(stream=np.full(3, 100.0)), 3),
    ])
    def test_mismatched_lengths(self, field, kwargs, length):
        args = dict(ts=_ts(), price=_price())
        args.update(kwargs)
        with _raises(rf"tape\.{field}\b.*\b{length}\b.*tape\.ts.*\b{N}\b"):
            Tape.from_arrays(**args)

    def test_empty_tape(self):
        with _raises(r"tape.*empty"):
            Tape.from_arrays(np.array([], dtype=np.int64), np.array([], dtype=np.float64))

    def test_empty_tape_from_lists(self):
        with _raises(r"tape.*empty"):
            Tape.from_arrays([], [])

    def test_unsorted_timestamps_name_the_index(self):
        ts = _ts()
        ts[3], ts[4] = ts[4], ts[3]  # ts[4] < ts[3]
        with _raises(rf"tape\.ts\[4\] = {ts[4]}\b.*tape\.ts\[3\] = {ts[3]}\b"):
            Tape.from_arrays(ts, _price())

    def test_equal_timestamps_are_allowed(self):
        ts = np.zeros(N, dtype=np.int64)
        assert len(Tape.from_arrays(ts, _price())) == N

    def test_unsorted_timestamps_past_the_first_chunk(self):
        # validation scans in chunks of 2**20 rows: the index must be absolute, not per chunk
        n = (1 << 20) + 300_000
        ts = np.arange(n, dtype=np.int64)
        bad = (1 << 20) + 123_456
        ts[bad] = ts[bad - 1] - 10
        with _raises(rf"tape\.ts\[{bad}\] = {ts[bad]}\b.*tape\.ts\[{bad - 1}\]"):
            Tape.from_arrays(ts, np.ones(n))

    def test_unsorted_at_chunk_boundary(self):
        n = (1 << 20) + 10
        ts = np.arange(n, dtype=np.int64)
        bad = 1 << 20  # first element of the second chunk, compared with the last of the first
        ts[bad] = -1
        with _raises(rf"tape\.ts\[{bad}\] = -1\b"):
            Tape.from_arrays(ts, np.ones(n))

    @pytest.mark.parametrize("index, value, shown", [
        (2, np.nan, "nan"),
        (3, 0.0, "0.0"),
        (1, -5.0, "-5.0"),
        (5, np.inf, "inf"),
        (0, -np.inf, "-inf"),
    ])
    def test_bad_price(self, index, value, shown):
        price = _price()
        price[index] = value
        with _raises(rf"tape\.price\[{index}\].*{re.escape(shown)}.*> ?0"):
            Tape.from_arrays(_ts(), price)

    def test_bad_price_past_the_first_chunk(self):
        n = (1 << 20) + 50
        price = np.ones(n)
        price[n - 7] = np.nan
        with _raises(rf"tape\.price\[{n - 7}\].*nan"):
            Tape.from_arrays(np.arange(n, dtype=np.int64), price)

    @pytest.mark.parametrize("value, shown", [(-2.0, "-2.0"), (np.nan, "nan"), (np.inf, "inf")])
    def test_bad_qty(self, value, shown):
        qty = np.ones(N)
        qty[2] = value
        with _raises(rf"tape\.qty\[2\].*{re.escape(shown)}"):
            Tape.from_arrays(_ts(), _price(), qty)

    def test_zero_qty_is_allowed(self):
        assert len(Tape.from_arrays(_ts(), _price(), np.zeros(N))) == N

    @pytest.mark.parametrize("value, shown", [(0.0, "0.0"), (-1.0, "-1.0"), (np.inf, "inf")])
    def test_stream_with_a_non_positive_value(self, value, shown):
        stream = np.full(N, 100.0)
        stream[:2] = np.nan  # leading NaN is fine ("not yet known")
        stream[4] = value
        with _raises(rf"tape\.stream\[4\].*{re.escape(shown)}"):
            Tape.from_arrays(_ts(), _price(), stream=stream)

    def test_non_numeric_price(self):
        with _raises(r"tape\.price.*expected numbers.*<U"):
            Tape.from_arrays(_ts(), ["a"] * N)

    def test_float_timestamps_are_rejected(self):
        with _raises(r"tape\.ts.*integer nanoseconds.*float64"):
            Tape.from_arrays(_ts().astype(np.float64), _price())

    def test_two_dimensional_input(self):
        with _raises(r"tape\.ts.*1-D.*\(3, 2\)"):
            Tape.from_arrays(_ts().reshape(3, 2), _price())

    def test_datetime64_timestamps_are_converted(self):
        ts = _ts()
        tape = Tape.from_arrays(ts.astype("datetime64[ns]"), _price())
        assert tape.ts.dtype == np.int64
        assert np.array_equal(tape.ts, ts)
        tape_s = Tape.from_arrays((ts // NS).astype("datetime64[s]"), _price())
        assert np.array_equal(tape_s.ts, ts)

    def test_nat_timestamp_is_rejected(self):
        ts = _ts().astype("datetime64[ns]")
        ts[0] = np.datetime64("NaT")
        with _raises(r"tape\.ts\[0\]"):
            Tape.from_arrays(ts, _price())

    def test_uint64_timestamps_out_of_range(self):
        ts = np.array([2**63, 2**63 + 1], dtype=np.uint64)
        with _raises(r"tape\.ts"):
            Tape.from_arrays(ts, [1.0, 2.0])


class TestTapeFromTable:
    @staticmethod
    def _frame(**drop):
        cols = {"ts": _ts(), "price": _price(), "qty": np.ones(N)}
        for k in drop:
            cols.pop(k)
        return cols

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    def test_missing_price_column(self, kind):
        cols = self._frame(price=True)
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        with _raises(r"tape table: missing column 'price'.*has ts, qty"):
            Tape.from_table(table)

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    def test_missing_ts_column(self, kind):
        cols = self._frame(ts=True)
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        with _raises(r"missing column 'ts'"):
            Tape.from_table(table)

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    def test_missing_stream_column(self, kind):
        cols = self._frame()
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        with _raises(r"missing column 'index_price'"):
            Tape.from_table(table, stream="index_price")

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    def test_valid_table_round_trips(self, kind):
        cols = self._frame()
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        tape = Tape.from_table(table)
        assert np.array_equal(tape.ts, cols["ts"])
        assert np.array_equal(tape.price, cols["price"])
        assert np.array_equal(tape.qty, cols["qty"])

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    def test_table_values_are_validated(self, kind):
        cols = self._frame()
        cols["price"][4] = -1.0
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        with _raises(r"tape\.price\[4\].*-1\.0"):
            Tape.from_table(table)


# ----------------------------------------------------------------------------- Population


class TestPopulationFromArrays:
    def test_valid_population_is_accepted(self):
        pop = Population.from_arrays(*_pop_arrays())
        assert len(pop) == 4
        assert pop.mode.dtype == np.int8

    def test_mode_defaults_to_isolated(self):
        c, s, e, _ = _pop_arrays()
        pop = Population.from_arrays(c, s, e)
        assert np.array_equal(pop.mode, np.zeros(4, dtype=np.int8))

    @pytest.mark.parametrize("field, position", [("size", 1), ("entry", 2), ("mode", 3)])
    def test_mismatched_lengths(self, field, position):
        args = list(_pop_arrays())
        args[position] = args[position][:3]
        with _raises(rf"population\.{field}\b.*\b3\b.*population\.collateral.*\b4\b"):
            Population.from_arrays(*args)

    @pytest.mark.parametrize("value, shown", [(-2.0, "-2.0"), (np.nan, "nan"), (np.inf, "inf")])
    def test_bad_collateral(self, value, shown):
        c, s, e, m = _pop_arrays()
        c[1] = value
        with _raises(rf"population\.collateral\[1\].*{re.escape(shown)}"):
            Population.from_arrays(c, s, e, m)

    def test_zero_collateral_is_allowed(self):
        c, s, e, m = _pop_arrays()
        c[:] = 0.0
        assert len(Population.from_arrays(c, s, e, m)) == 4

    @pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (-np.inf, "-inf")])
    def test_bad_size(self, value, shown):
        c, s, e, m = _pop_arrays()
        s[3] = value
        with _raises(rf"population\.size\[3\].*{re.escape(shown)}"):
            Population.from_arrays(c, s, e, m)

    @pytest.mark.parametrize("value, shown", [(0.0, "0.0"), (np.nan, "nan"), (-99.0, "-99.0")])
    def test_position_without_a_positive_entry(self, value, shown):
        c, s, e, m = _pop_arrays()
        e[3] = value
        with _raises(rf"population\.entry\[3\].*{re.escape(shown)}"):
            Population.from_arrays(c, s, e, m)

    def test_flat_account_may_have_any_entry(self):
        c, s, e, m = _pop_arrays()
        assert s[2] == 0
        e[2] = np.nan
        assert len(Population.from_arrays(c, s, e, m)) == 4

    @pytest.mark.parametrize("value", [2, -1, 7])
    def test_bad_margin_mode(self, value):
        c, s, e, m = _pop_arrays()
        m = m.astype(np.int64)
        m[2] = value
        with _raises(rf"population\.mode\[2\].*{value}\b.*0 \(isolated\) or 1 \(cross\)"):
            Population.from_arrays(c, s, e, m)

    def test_margin_mode_256_is_rejected(self):
        c, s, e, _ = _pop_arrays()
        with _raises(r"population\.mode\[1\].*256"):
            Population.from_arrays(c, s, e, np.array([0, 256, 0, 1]))

    def test_margin_mode_message_shows_the_callers_value(self):
        c, s, e, _ = _pop_arrays()
        with _raises(r"population\.mode\[1\].*300"):
            Population.from_arrays(c, s, e, np.array([0, 300, 0, 1]))


class TestPopulationFromTable:
    @staticmethod
    def _cols(drop: str | None = None):
        c, s, e, m = _pop_arrays()
        cols = {"collateral": c, "size": s, "entry": e, "mode": m}
        if drop:
            cols.pop(drop)
        return cols

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    @pytest.mark.parametrize("missing", ["collateral", "size", "entry"])
    def test_missing_column(self, kind, missing):
        cols = self._cols(missing)
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        rest = ", ".join(cols)
        with _raises(rf"population table: missing column '{missing}'.*has {re.escape(rest)}"):
            Population.from_table(table)

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    def test_mode_column_is_optional(self, kind):
        cols = self._cols("mode")
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        pop = Population.from_table(table)
        assert np.array_equal(pop.mode, np.zeros(4, dtype=np.int8))
        assert np.array_equal(pop.size, cols["size"])

    @pytest.mark.parametrize("kind", ["pandas", "arrow"])
    def test_table_values_are_validated(self, kind):
        cols = self._cols()
        cols["collateral"][3] = -7.0
        table = pd.DataFrame(cols) if kind == "pandas" else pa.table(cols)
        with _raises(r"population\.collateral\[3\].*-7\.0"):
            Population.from_table(table)


# ----------------------------------------------------------------------------- parameters

BASE = VenueDesign(name="probe")


def _ep(**kw) -> EngineParams:
    kw.setdefault("mm_floors", (0.0,))
    kw.setdefault("mm_rates", (0.01,))
    return EngineParams(**kw)


def _one_line(info) -> str:
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


class TestEngineParams:
    def test_defaults_are_valid(self):
        p = BASE.engine_params()
        assert p.mm_floors.tolist() == [0.0] and p.mm_cums.tolist() == [0.0]

    @pytest.mark.parametrize("kw, pattern", [
        (dict(liq_fee_rate=-0.01), r"liq_fee_rate.*-0\.01"),
        (dict(liq_fee_rate=1.0), r"liq_fee_rate.*1\.0"),
        (dict(partial_fraction=0.0), r"partial_fraction.*\(0, 1\].*0\.0"),
        (dict(partial_fraction=1.5), r"partial_fraction.*1\.5"),
        (dict(partial_fraction=math.nan), r"partial_fraction.*nan"),
        (dict(fund_initial=-1.0), r"fund_initial.*-1\.0"),
        (dict(fund_initial=math.inf), r"fund_initial.*inf"),
        (dict(latency_ns=-5), r"latency_ns.*-5\b"),
        (dict(vault_initial=-3.0), r"vault_initial.*-3\.0"),
        (dict(backstop_ratio=1.5), r"backstop_ratio.*1\.5"),
        (dict(max_liqs_per_step=-1), r"max_liqs_per_step.*-1\b"),
        (dict(depth_per_pct=0.0), r"depth_per_pct.*0\.0"),
        (dict(max_move=1.0), r"max_move.*1\.0"),
        (dict(mark_method=9), r"mark_method.*LAST, EMA, STREAM, INDEX_EMA_BASIS.*\b9\b"),
        (dict(adl_policy=99), r"adl_policy.*NONE, QUEUE, PRO_RATA.*\b99\b"),
        (dict(adl_ranking=-1), r"adl_ranking.*-1\b"),
        (dict(adl_price=7), r"adl_price.*BANKRUPTCY, MARK.*\b7\b"),
        (dict(series_interval_ns=0), r"series_interval_ns.*\b0\b"),
        # fields added with the venue presets
        (dict(mark_ema2_tau_ns=0.0), r"mark_ema2_tau_ns.*positive.*0\.0"),
        (dict(liq_price_band=0.0), r"liq_price_band.*> 0.*0\.0"),
        (dict(fund_capacity=-1.0), r"fund_capacity.*-1\.0"),
        (dict(fund_unwind_interval_ns=0), r"fund_unwind_interval_ns.*\b0\b"),
        (dict(fund_unwind_fraction=0.0), r"fund_unwind_fraction.*\(0, 1\].*0\.0"),
        (dict(adl_fund_drawdown=0.0), r"adl_fund_drawdown.*0\.0"),
        (dict(adl_fund_window_ns=0), r"adl_fund_window_ns.*\b0\b"),
        (dict(adl_risk_power=math.inf), r"adl_risk_power.*finite.*inf"),
        (dict(adl_risk_power=-1.0), r"adl_risk_power.*-1\.0"),
        (dict(partial_mode=5), r"partial_mode.*FRACTION.*\b5\b"),
        (dict(takeover=4), r"takeover.*NONE.*\b4\b"),
    ])
    def test_impossible_scalar(self, kw, pattern):
        with _raises(pattern):
            _ep(**kw)

    @pytest.mark.parametrize("floors, rates, pattern, design_pattern", [
        ((0.0, 100.0, 100.0), (0.01, 0.02, 0.03),
         r"mm_floors.*increasing.*mm_floors\[2\].*100\.0.*mm_floors\[1\]",
         r"margin\.floors: tier floors must increase \(floors\[2\] = 100\.0 <= floors\[1\] = 100\.0\)"),
        ((0.0, 100.0, 50.0), (0.01, 0.02, 0.03),
         r"mm_floors.*increasing.*mm_floors\[2\].*50\.0",
         r"margin\.floors: tier floors must increase \(floors\[2\] = 50\.0 <= floors\[1\] = 100\.0\)"),
        ((0.0, 100.0, 200.0), (0.01, 0.03, 0.02),
         r"mm_rates.*decrease.*mm_rates\[2\].*0\.02.*mm_rates\[1\].*0\.03",
         r"margin\.rates: rates must not decrease \(rates\[2\] = 0\.02 < rates\[1\] = 0\.03\)"),
        ((10.0, 100.0), (0.01, 0.02),
         r"mm_floors\[0\].*must be 0.*10\.0",
         r"margin\.floors: the first floor must be 0 \(got 10\.0\)"),
        ((0.0, 100.0), (0.01, 1.0),
         r"mm_rates\[1\].*\[0, 1\).*1\.0",
         r"margin\.rates\[1\]: Input should be less than 1 \(got 1\.0\)"),
        ((0.0, 100.0), (0.01, 2.5),
         r"mm_rates\[1\].*2\.5",
         r"margin\.rates\[1\]: Input should be less than 1 \(got 2\.5\)"),
        ((0.0,), (-0.01,),
         r"mm_rates\[0\].*-0\.01",
         r"margin\.rates\[0\]: Input should be greater than 0 \(got -0\.01\)"),
        ((0.0, 100.0), (0.01,),
         r"mm_floors and mm_rates.*\(2,\).*\(1,\)",
         r"margin: floors and rates must have the same length \(2 vs 1\)$"),
        ((), (),
         r"mm_floors and mm_rates.*non-zero",
         r"margin\.floors: expected at least one tier"),
    ])
    def test_impossible_tiers(self, floors, rates, pattern, design_pattern):
        with _raises(pattern):
            _ep(mm_floors=floors, mm_rates=rates)
        # the design path names the design and the key path, and rejects the table when the
        # design is built, before any engine parameters are resolved
        with pytest.raises(ValueError) as info:
            BASE.with_overrides({"margin": {"floors": floors, "rates": rates}})
        assert re.match(r"venue design 'probe': " + design_pattern, _one_line(info)), str(info.value)
        with pytest.raises(ValueError, match=r"^venue design: " + design_pattern):
            VenueDesign.from_dict({"name": "probe", "margin": {"floors": floors, "rates": rates}})

    def test_infinite_floor_is_rejected_on_the_design_path(self):
        with _raises(r"mm_floors\[1\].*finite.*inf"):
            _ep(mm_floors=(0.0, math.inf), mm_rates=(0.01, 0.02))
        # the design path rejects it when the design is built, naming the design's key path
        with _raises(r"venue design 'probe': margin\.floors\[1\]: .*finite.*inf"):
            BASE.with_overrides({"margin": {"floors": (0.0, math.inf), "rates": (0.01, 0.02)}})

    def test_infinite_floor_names_the_key_path_when_built(self):
        with _raises(r"^venue design 'probe': margin\.floors\[1\]: .*finite.*inf"):
            BASE.with_overrides({"margin": {"floors": (0.0, math.inf), "rates": (0.01, 0.02)}})

    def test_valid_tiers_give_continuous_margin(self):
        p = _ep(mm_floors=(0.0, 100.0, 1000.0), mm_rates=(0.01, 0.02, 0.05))
        for floor in (100.0, 1000.0):
            below = p.maintenance_margin(np.nextafter(floor, 0.0))
            assert p.maintenance_margin(floor) == pytest.approx(below, rel=1e-12)

    def test_tier_arrays_are_not_aliased(self):
        floors = np.array([0.0, 100.0])
        rates = np.array([0.01, 0.02])
        p = _ep(mm_floors=floors, mm_rates=rates)
        floors[1] = 50.0
        assert p.mm_floors[1] == 100.0
        assert floors.flags.writeable


class TestVenueDesignParams:
    @pytest.mark.parametrize("change, pattern", [
        ({"liquidation": {"fee": -0.01}}, r"liquidation\.fee: .*greater than or equal to 0 \(got -0\.01\)"),
        ({"liquidation": {"partial_fraction": 0.0}}, r"liquidation\.partial_fraction: .*greater than 0 \(got 0\.0\)"),
        ({"liquidation": {"partial_fraction": 1.01}}, r"liquidation\.partial_fraction: .*less than or equal to 1 \(got 1\.01\)"),
        ({"fund": {"initial": -1.0}}, r"fund\.initial: .*greater than or equal to 0 \(got -1\.0\)"),
        ({"liquidation": {"latency_s": -1.0}}, r"liquidation\.latency_s: .*greater than or equal to 0 \(got -1\.0\)"),
        ({"margin": {"floors": (0.0, 5.0, 5.0), "rates": (0.01, 0.02, 0.03)}}, r"margin\.floors: .*floors\[2\]"),
        ({"margin": {"floors": (0.0, 5.0), "rates": (0.02, 0.01)}}, r"margin\.rates: .*rates\[1\]"),
        ({"margin": {"floors": (1.0,), "rates": (0.02,)}}, r"margin\.floors: .*1\.0"),
        ({"margin": {"rates": (1.0,)}}, r"margin\.rates\[0\]: .*less than 1.*1\.0"),
    ])
    def test_impossible_design(self, change, pattern):
        with pytest.raises(ValueError) as info:
            BASE.with_overrides(change)
        assert re.match(r"venue design 'probe': " + pattern, _one_line(info)), str(info.value)

    @pytest.mark.parametrize("change, path, engine_field", [
        ({"liquidation": {"fee": -0.01}}, "liquidation.fee", "liq_fee_rate"),
        ({"fund": {"initial": -1.0}}, "fund.initial", "fund_initial"),
        ({"liquidation": {"latency_s": -1.0}}, "liquidation.latency_s", "latency_ns"),
    ])
    def test_design_errors_name_the_key_path(self, change, path, engine_field):
        with pytest.raises(ValueError) as info:
            BASE.with_overrides(change)
        msg = _one_line(info)
        assert msg.startswith(f"venue design 'probe': {path}: "), msg
        assert engine_field not in msg  # the user's key, not the engine's field

    @pytest.mark.parametrize("value, shown", [(math.nan, "nan"), (math.inf, "inf")])
    def test_non_finite_latency_names_the_key_path(self, value, shown):
        with _raises(rf"^venue design 'probe': liquidation\.latency_s: .*finite.*\(got {shown}\)$"):
            BASE.with_overrides({"liquidation": {"latency_s": value}})

    @pytest.mark.parametrize("flat", ["mm_floors", "mm_rates", "liquidation_fee", "insurance_fund", "latency_s",
                                      "partial_fraction", "backstop_ratio", "vault_balance", "adl_ranking",
                                      "adl_price", "mark_ema_s"])
    def test_old_flat_fields_are_unknown_keys(self, flat):
        # the flat fields moved into components: passing one is an error, not silently ignored
        with _raises(rf"^venue design 'probe': {flat}: unknown key"):
            BASE.with_overrides({flat: 1})
        with _raises(rf"^venue design: {flat}: unknown key"):
            VenueDesign.from_dict({"name": "probe", flat: 1})

    def test_positional_name_is_gone(self):
        with pytest.raises(TypeError):
            VenueDesign("probe")

    def test_designs_are_immutable(self):
        with pytest.raises(ValueError, match="frozen"):
            BASE.name = "other"
        with pytest.raises(ValueError, match="frozen"):
            BASE.liquidation.latency_s = 1.0
        variant = BASE.with_overrides({"liquidation": {"latency_s": 1.0}})
        assert variant.liquidation.latency_s == 1.0
        assert BASE.liquidation.latency_s == 0.0

    @pytest.mark.parametrize("path, enum, code_of", [
        ("mark.method", MarkMethod, "mark_method"),
        ("adl.policy", AdlPolicy, "adl_policy"),
        ("adl.ranking", AdlRanking, "adl_ranking"),
        ("adl.price", AdlPrice, "adl_price"),
    ])
    def test_unknown_name_lists_the_valid_names(self, path, enum, code_of):
        component, key = path.split(".")
        with pytest.raises(ValueError) as info:
            BASE.with_overrides({component: {key: "nonsense"}})
        msg = _one_line(info)
        m = re.fullmatch(rf"venue design 'probe': {re.escape(path)}: Input should be (.*) \(got 'nonsense'\)", msg)
        assert m, msg
        listed = re.findall(r"'([^']*)'", m.group(1))
        assert len(listed) == len(enum)
        assert sorted(listed) == sorted(x.name.lower().replace("_", "-") for x in enum)
        # every listed name is accepted and resolves to a distinct code
        codes = {getattr(BASE.with_overrides({component: {key: name}}).engine_params(), code_of) for name in listed}
        assert codes == {int(x) for x in enum}

    def test_non_string_mark(self):
        with _raises(r"^venue design 'probe': mark\.method: Input should be 'last', .*\(got 5\)$"):
            BASE.with_overrides({"mark": {"method": 5}})
        with _raises(r"^venue design 'probe': mark: .*valid dictionary or instance of Mark \(got 5\)$"):
            BASE.with_overrides({"mark": 5})

    def test_bad_liquidity(self):
        with _raises(r"venue design 'probe': depth_per_pct.*-1\.0"):
            BASE.engine_params(ConstantDepth(-1.0))
        with _raises(r"venue design 'probe': impact_feedback.*1\.5"):
            BASE.engine_params(ConstantDepth(feedback=1.5))


# ----------------------------------------------------------------------------- run()


class TestRunValidation:
    @pytest.mark.parametrize("mark", ["stream", "index-ema-basis"])
    def test_stream_mark_on_a_tape_without_stream(self, mark, no_engine_runs):
        design = BASE.with_overrides({"name": "needs-stream", "mark": {"method": mark}})
        with _raises(r"^venue design 'needs-stream': mark\b.* needs a mark/index stream, but scenario 'small' has none"):
            run(_small_scenario(stream=False), design)
        assert no_engine_runs == []

    @pytest.mark.parametrize("mark", ["stream", "index-ema-basis"])
    def test_stream_mark_error_names_the_method(self, mark):
        design = BASE.with_overrides({"name": "needs-stream", "mark": {"method": mark}})
        with _raises(rf"^venue design 'needs-stream': mark(\.method)? '{mark}' needs a mark/index stream.*'small'"):
            run(_small_scenario(stream=False), design)

    def test_stream_mark_on_a_tape_with_stream_runs(self):
        res = run(_small_scenario(stream=True), BASE.with_overrides({"mark": {"method": "stream"}}))
        assert len(res.table) == 1

    @pytest.mark.parametrize("mark", ["binance-median", "hl-median"])
    def test_median_marks_fall_back_to_last_without_stream(self, mark):
        # documented fallback (binance-usdm and hyperliquid presets): no index stream, last price
        scenario = _small_scenario(stream=False)
        tight = BASE.with_overrides({"margin": {"rates": (0.2,)}})  # liquidates account 3 on the way down
        median = run(scenario, tight.with_overrides({"mark": {"method": mark}}), series_interval_s=1.0)
        last = run(scenario, tight.with_overrides({"mark": {"method": "last"}}), series_interval_s=1.0)
        assert median.table["liquidations"].iloc[0] > 0
        assert median.events.drop_columns(["design"]).equals(last.events.drop_columns(["design"]))
        assert median.series["mark"].to_pylist() == median.series["tape_price"].to_pylist()

    def test_missing_stream_is_reported_before_any_run(self, no_engine_runs):
        designs = [BASE.with_overrides({"name": "plain"}),
                   BASE.with_overrides({"name": "needs-stream", "mark": {"method": "stream"}})]
        with _raises(r"needs-stream"):
            run(_small_scenario(stream=False), designs)
        assert no_engine_runs == []

    def test_duplicate_design_names(self, no_engine_runs):
        designs = [BASE.with_overrides({"name": "a"}), BASE.with_overrides({"name": "b"}),
                   BASE.with_overrides({"name": "a", "liquidation": {"fee": 0.01}}),
                   BASE.with_overrides({"name": "b"})]
        with _raises(r"designs: names must be unique.*repeated: a, b"):
            run(_small_scenario(), designs)
        assert no_engine_runs == []

    def test_invalid_design_is_rejected_when_built(self):
        with _raises(r"^venue design 'broken': liquidation\.partial_fraction: .*\(got 0\.0\)$"):
            BASE.with_overrides({"name": "broken", "liquidation": {"partial": "fraction", "partial_fraction": 0.0}})

    def test_invalid_later_design_is_reported_before_any_run(self, no_engine_runs):
        # model_copy(update=...) skips validation: run() still resolves every design first
        bad = Liquidation.model_construct(**{**BASE.liquidation.model_dump(), "partial": "fraction",
                                             "partial_fraction": 0.0})
        broken = BASE.model_copy(update={"name": "broken", "liquidation": bad})
        designs = [BASE.with_overrides({"name": "ok"}), broken]
        with _raises(r"venue design 'broken': partial_fraction"):
            run(_small_scenario(), designs)
        assert no_engine_runs == []

    def test_no_designs(self, no_engine_runs):
        with _raises(r"designs: expected at least one"):
            run(_small_scenario(), [])
        assert no_engine_runs == []

    def test_unknown_engine(self):
        with _raises(r"engine: expected one of cython, reference.*'fortran'"):
            run(_small_scenario(), BASE, engine="fortran")

    def test_non_positive_series_interval(self):
        with _raises(r"series_interval"):
            run(_small_scenario(), BASE, series_interval_s=-1.0)


# ----------------------------------------------------------------------------- no mutation


def _assert_untouched(arrays: dict, copies: dict) -> None:
    for name, arr in arrays.items():
        before = copies[name]
        assert arr.dtype == before.dtype, name
        assert arr.shape == before.shape, name
        assert np.array_equal(arr, before, equal_nan=arr.dtype.kind == "f"), name
        assert arr.tobytes() == before.tobytes(), name  # bit-identical (NaN payloads, -0.0)
        assert arr.flags.writeable, f"{name} is no longer writeable by the caller"


def _caller_arrays() -> dict:
    """Fresh, writeable caller arrays shaped like the synthetic crash (stream NaN at first)."""
    sc = synthetic.crash_scenario(ticks=3_000, accounts=400, seed=11)
    stream = np.array(sc.tape.stream)
    stream[:50] = np.nan
    return {
        "ts": np.array(sc.tape.ts), "price": np.array(sc.tape.price),
        "qty": np.array(sc.tape.qty), "stream": stream,
        "collateral": np.array(sc.population.collateral), "size": np.array(sc.population.size),
        "entry": np.array(sc.population.entry), "mode": np.array(sc.population.mode),
    }


class TestCallerArraysUntouched:
    def test_tape_from_arrays(self):
        ts, price = _ts(), _price()
        arrays = {"ts": ts, "price": price}
        copies = {k: v.copy() for k, v in arrays.items()}
        tape = Tape.from_arrays(ts, price)
        _assert_untouched(arrays, copies)
        # the tape's own arrays are read-only
        assert not tape.ts.flags.writeable and not tape.price.flags.writeable
        with pytest.raises(ValueError):
            tape.price[0] = 1.0
        _assert_untouched(arrays, copies)

    def test_tape_from_arrays_that_need_conversion(self):
        arrays = {"ts": np.arange(N, dtype=np.int32),
                  "price": _price().astype(np.float32),
                  "qty": np.ones(2 * N)[::2]}  # non-contiguous
        copies = {k: v.copy() for k, v in arrays.items()}
        tape = Tape.from_arrays(arrays["ts"], arrays["price"], arrays["qty"])
        assert tape.ts.dtype == np.int64 and tape.price.dtype == np.float64
        _assert_untouched(arrays, copies)

    def test_rejected_input_is_untouched(self):
        ts, price = _ts(), _price()
        price[3] = np.nan
        copies = {"ts": ts.copy(), "price": price.copy()}
        with _raises(r"tape\.price\[3\]"):
            Tape.from_arrays(ts, price)
        _assert_untouched({"ts": ts, "price": price}, copies)

    def test_population_from_arrays(self):
        c, s, e, m = _pop_arrays()
        arrays = {"collateral": c, "size": s, "entry": e, "mode": m}
        copies = {k: v.copy() for k, v in arrays.items()}
        pop = Population.from_arrays(c, s, e, m)
        _assert_untouched(arrays, copies)
        assert not any(a.flags.writeable for a in (pop.collateral, pop.size, pop.entry, pop.mode))

    @pytest.mark.parametrize("engine", ["cython", "reference"])
    def test_run(self, engine):
        arrays = _caller_arrays()
        copies = {k: v.copy() for k, v in arrays.items()}
        tape = Tape.from_arrays(arrays["ts"], arrays["price"], arrays["qty"], arrays["stream"])
        pop = Population.from_arrays(arrays["collateral"], arrays["size"], arrays["entry"], arrays["mode"])
        _assert_untouched(arrays, copies)
        scenario = Scenario("caller", tape, pop)
        designs = [synthetic.binance_style(), synthetic.hyperliquid_style(),
                   synthetic.binance_style().with_overrides({"name": "stream-mark", "mark": {"method": "stream"}})]
        res = run(scenario, designs, ConstantDepth(2e6), engine=engine)
        # the run did something, so an untouched population is not vacuous
        assert (res.table["liquidations"] > 0).all()
        _assert_untouched(arrays, copies)
        # and the scenario still holds the caller's values
        assert np.array_equal(scenario.population.size, copies["size"])
        assert np.array_equal(scenario.tape.price, copies["price"])
