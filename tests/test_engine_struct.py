"""The engine's C struct and :class:`EngineParams` agree field by field.

``riskengine._engine.params_struct`` sets an engine up exactly as a run does (``_engine_init``:
the struct zeroed, then filled) and returns what it holds: the ``Params`` struct under its own
field names (Cython's struct-to-dict conversion, so a field added to the struct shows up here
unasked) and the instrument's tiers, ADL, mark, book and order settings (``Inst``). Every field is
compared with the ``EngineParams`` field it comes from, for parameter sets where every field is away from zero
and its default, each number different from the others (a field the set-up forgets stays 0; two
fields swapped differ). Every ``EngineParams`` field must reach the struct or be listed in
:data:`NOT_IN_STRUCT` with the reason.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from riskengine._engine import params_struct
from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, CrossOrder, FundingPrice, MarkMethod, PartialMode, Takeover
from riskengine.params import NS, EngineParams

#: fields of the structs beside ``Params`` that come from ``EngineParams``: (struct, field) -> name
OTHER_STRUCTS = {
    ("tiers", "floors"): "mm_floors",
    ("tiers", "rates"): "mm_rates",
    ("tiers", "cums"): "mm_cums",
    ("tiers", "whole"): "mm_whole_position",
    ("adl", "policy"): "adl_policy",
    ("adl", "ranking"): "adl_ranking",
    ("adl", "short_mark_over_entry"): "adl_short_mark_over_entry",
    ("adl", "risk_power"): "adl_risk_power",
    ("mark", "method"): "mark_method",
    ("mark", "basis.tau_ns"): "mark_ema_tau_ns",
    ("mark", "last.tau_ns"): "mark_ema2_tau_ns",
    ("book", "snap_ts"): "book_ts",
    ("book", "delta"): "book_delta",
    ("book", "notional"): "book_notional",
    ("book", "knots"): "book_knots",
    ("book", "max_move"): "max_move",
    ("book", "half_life_ns"): "impact_half_life_ns",
    ("book", "feedback"): "impact_feedback",
    ("book", "stress_k"): "impact_stress_k",
    ("inst", "liq_price_band"): "liq_price_band",
    ("inst", "liq_max_order_notional"): "liq_max_order_notional",
    ("inst", "fund_group"): "fund_group",
    ("inst", "vault_group"): "vault_group",
    ("inst", "collateral"): "collateral",
}
#: struct fields derived from an EngineParams field rather than copied: (struct, field) -> value
DERIVED = {
    ("tiers", "n"): lambda p: len(p.mm_floors),
}
_BOOK = ("resolved by EngineParams into book_ts, book_delta, book_notional and book_knots, "
         "which reach the book")
_OBSERVED = ("used before the run, not during it: the tape is divided by the observed flow's "
             "impact (riskengine._liquidity.counterfactual_tape, tested in test_liquidity.py); "
             "the struct holds the resulting tape")
#: EngineParams fields that deliberately do not reach the struct, and why
NOT_IN_STRUCT = {
    "depth_per_pct": _BOOK,
    "depth_ts": _BOOK,
    "depth_pct": _BOOK,
    "depth_notional": _BOOK,
    "observed_ts": _OBSERVED,
    "observed_side": _OBSERVED,
    "observed_notional": _OBSERVED,
}

#: two designs far from the defaults: every code and flag is non-zero in at least one of them
#: (a forgotten field stays at the zero of the memset), every number differs from the others
AWAY_FROM_DEFAULTS = [
    dict(mm_floors=[0.0, 1.1e5, 2.3e6], mm_rates=[0.011, 0.023, 0.047], mm_whole_position=False,
         mark_method=MarkMethod.HL_MEDIAN, mark_ema_tau_ns=151.5 * NS, mark_ema2_tau_ns=31.5 * NS,
         liq_fee_rate=0.0031, liq_limit_bankruptcy=True, liq_surplus_to_fund=True,
         liq_price_band=0.037, liq_max_order_notional=3.3e7, partial_mode=PartialMode.TIER_STEP,
         partial_fraction=0.21, partial_threshold=1.07e5, partial_cooldown_ns=29 * NS + 1,
         max_liqs_per_step=7, latency_ns=3_000_001, cross_order=CrossOrder.LOSS, funding_price=FundingPrice.INDEX, takeover=Takeover.FUND,
         fund_initial=1.23e6,
         fund_capacity=4.5, fund_unwind_interval_ns=11 * NS + 3, fund_unwind_fraction=0.27,
         adl_fund_drawdown=0.33, adl_fund_window_ns=7 * 3600 * NS + 5, backstop_ratio=0.61,
         vault_initial=5.1e6, vault_unwind_interval_ns=13 * NS + 7, vault_unwind_fraction=0.29,
         vault_loss_limit=4.4e6, adl_policy=AdlPolicy.WATER_FILLING, adl_ranking=AdlRanking.HL_INDEX,
         adl_price=AdlPrice.PREVIOUS_MARK, adl_on_negative_equity=True,
         adl_short_mark_over_entry=True, adl_rank_interval_ns=2 * NS + 9, adl_risk_power=1.7,
         depth_per_pct=2.5e6, max_move=0.43, impact_half_life_ns=17.5 * NS, impact_feedback=0.64,
         impact_stress_k=0.19, observed_ts=[5 * NS, 9 * NS], observed_side=[-1.0, 1.0],
         observed_notional=[4.1e6, 6.2e5], series_interval_ns=5 * NS + 11, fund_group=4, vault_group=6),
    dict(mm_floors=[0.0, 5.5e4], mm_rates=[0.0045, 0.0095], mm_whole_position=True,
         mark_method=MarkMethod.BINANCE_MEDIAN, mark_ema_tau_ns=61.25 * NS, mark_ema2_tau_ns=12.75 * NS,
         liq_fee_rate=0.0052, liq_limit_bankruptcy=False, liq_surplus_to_fund=False,
         liq_price_band=0.083, liq_max_order_notional=7.7e6, partial_mode=PartialMode.FRACTION,
         partial_fraction=0.35, partial_threshold=2.2e4, partial_cooldown_ns=41 * NS + 13,
         max_liqs_per_step=3, latency_ns=8_000_017, takeover=Takeover.NONE, fund_initial=8.9e5,
         fund_capacity=2.25, fund_unwind_interval_ns=23 * NS + 19, fund_unwind_fraction=0.38,
         adl_fund_drawdown=0.44, adl_fund_window_ns=3 * 3600 * NS + 23, backstop_ratio=0.72,
         vault_initial=2.6e6, vault_unwind_interval_ns=17 * NS + 29, vault_unwind_fraction=0.15,
         vault_loss_limit=1.9e6, adl_policy=AdlPolicy.PRO_RATA, adl_ranking=AdlRanking.BINANCE_LEVERAGE_PNL,
         adl_price=AdlPrice.MARK, adl_on_negative_equity=False, adl_short_mark_over_entry=False,
         adl_rank_interval_ns=4 * NS + 31, adl_risk_power=2.3,
         depth_ts=[0, 60 * NS], depth_pct=[[[0.5, 2.0], [0.6, 1.8]], [[0.4, 1.5], [0.7, 2.5]]],
         depth_notional=[[[1.5e6, 4.5e6], [1.2e6, 3.9e6]], [[8.5e5, 2.1e6], [1.1e6, 5.2e6]]],
         max_move=0.31, impact_half_life_ns=9.5 * NS, impact_feedback=0.57, impact_stress_k=0.26,
         series_interval_ns=3 * NS + 37, fund_group=5, vault_group=2),
]
CASES = [EngineParams(**fields) for fields in AWAY_FROM_DEFAULTS] + [
    EngineParams(mm_floors=[0.0], mm_rates=[0.005]),  # the defaults (inf, 0 and flags off)
]


def _same(got, want) -> bool:
    if isinstance(want, np.ndarray):
        return np.array_equal(np.asarray(got), want) and np.asarray(got).dtype == want.dtype
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return got == want


def _engine_params_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(EngineParams)}


@pytest.mark.parametrize("fields", AWAY_FROM_DEFAULTS, ids=["set-a", "set-b"])
def test_the_parameter_sets_are_away_from_defaults_and_distinct(fields):
    """The cases can catch a forgotten or swapped field: every number differs from its default
    and from the other numbers (codes and flags: next test)."""
    defaults = EngineParams(mm_floors=[0.0], mm_rates=[0.005])
    numbers = {name: value for name, value in fields.items()
               if type(value) in (int, float) and not name.startswith(("mm_", "depth_", "observed_"))}
    for name, value in numbers.items():
        assert value != getattr(defaults, name), name
    assert len(set(numbers.values())) == len(numbers), sorted(numbers.values())


def test_each_setting_is_nonzero_in_some_case():
    """A field the set-up forgets stays at the memset's zero: each scalar must be non-zero in
    some case for the comparison to notice."""
    # a collateral asset has no maintenance margin, so the cases far from the defaults cannot be one
    structs = [params_struct(p) for p in CASES[:2]] + [params_struct(COLLATERAL)]
    for which in ("p", "tiers", "adl", "mark", "book", "inst"):
        for field, value in structs[0][which].items():
            if not isinstance(value, np.ndarray):
                assert any(s[which][field] != 0 for s in structs), (which, field)


#: a collateral asset (no maintenance margin; its mark is its price whatever the design's method)
COLLATERAL = EngineParams(mm_floors=[0.0], mm_rates=[0.0], collateral=True, mark_method=MarkMethod.HL_MEDIAN)


def test_a_collateral_asset_is_marked_at_its_price():
    struct = params_struct(COLLATERAL)
    assert struct["inst"]["collateral"] == 1 and struct["mark"]["method"] == MarkMethod.LAST
    with pytest.raises(ValueError, match="collateral"):
        EngineParams(mm_floors=[0.0], mm_rates=[0.01], collateral=True)


@pytest.mark.parametrize("params", CASES, ids=["set-a", "set-b", "defaults"])
def test_params_struct_equals_engine_params(params):
    struct = params_struct(params)
    names = _engine_params_fields()
    for name, value in struct["p"].items():
        assert name in names, f"Params.{name} has no EngineParams field of that name"
        assert _same(value, getattr(params, name)), (name, value, getattr(params, name))
    for (which, field), name in OTHER_STRUCTS.items():
        assert name in names, name
        value, want = struct[which][field], getattr(params, name)
        assert _same(value, want), (which, field, value, want)
    for (which, field), derive in DERIVED.items():
        assert struct[which][field] == derive(params), (which, field)


def test_every_struct_setting_is_mapped():
    """Every field ``params_struct`` reports beside ``Params`` has its EngineParams source."""
    struct = params_struct(CASES[0])
    reported = {(which, field) for which in ("tiers", "adl", "mark", "book", "inst") for field in struct[which]}
    assert set(struct) == {"p", "tiers", "adl", "mark", "book", "inst"}
    assert reported == set(OTHER_STRUCTS) | set(DERIVED)


def test_every_engine_params_field_reaches_the_struct():
    """Each EngineParams field is in ``Params`` under its name, feeds another struct, or is a
    listed exception; nothing is both."""
    in_params = set(params_struct(CASES[0])["p"])
    elsewhere = set(OTHER_STRUCTS.values())
    exceptions = set(NOT_IN_STRUCT)
    assert not (in_params & elsewhere) and not (in_params & exceptions) and not (elsewhere & exceptions)
    missing = _engine_params_fields() - in_params - elsewhere - exceptions
    assert not missing, f"EngineParams fields that reach no struct field: {sorted(missing)}"
    assert exceptions <= _engine_params_fields()


def test_observed_flow_changes_the_tape_it_is_listed_for():
    """The observed flow (an exception above) does reach the run: through the tape."""
    from riskengine import synthetic
    from riskengine.engine import run_raw

    sc = synthetic.crash_scenario(ticks=2_000, accounts=200, seed=4)
    base = dict(AWAY_FROM_DEFAULTS[0], observed_ts=None, observed_side=None, observed_notional=None)
    ts = sc.tape.ts
    flow = dict(observed_ts=[ts[500], ts[900]], observed_side=[-1.0, -1.0], observed_notional=[5e7, 5e7])
    plain, _ = run_raw(sc, EngineParams(**base), "cython")
    observed, _ = run_raw(sc, EngineParams(**{**base, **flow}), "cython")
    assert not np.array_equal(plain.series["tape_price"], observed.series["tape_price"])
