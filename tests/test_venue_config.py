"""The preset / config layer: ``riskengine.venues`` and :class:`riskengine.venue.VenueDesign`
built from mappings.

Bad input gives one ``ValueError`` line naming the key path (``adl.policy``) and what was
expected, with the nearest valid name for a typo; presets pick dated margin tables and say
in ``notes`` what they could not find.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re

import numpy as np
import pytest

from _cli import raised_line as _error
from riskengine import EngineParams, Population, Scenario, Tape, run, venues
from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, MarkMethod
from riskengine.venue import Adl, Backstop, Fund, Liquidation, Margin, Mark, VenueDesign
from riskengine.venues import _tables

NS = 1_000_000_000
PRESETS = ["binance-usdm", "bitmex", "bybit", "drift", "dydx-v4", "hyperliquid", "okx"]
VALID_PRESETS = ", ".join(PRESETS)
COMPONENTS = {"margin": Margin, "mark": Mark, "liquidation": Liquidation, "fund": Fund,
              "backstop": Backstop, "adl": Adl}
BASE = VenueDesign(name="probe")

# Binance BTCUSDT brackets of 2021-03-18 [DOC S7] and 2025-08-19 (brackets 1-4) [3P S6, S9]
BTC_2021_FLOORS = (0.0, 50e3, 250e3, 1e6, 10e6, 20e6, 50e6, 100e6, 200e6, 300e6)
BTC_2021_RATES = (0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50)
#: maintenance amounts published with the 2021 table
BTC_2021_CUMS = (0.0, 50.0, 1_300.0, 16_300.0, 266_300.0, 1_266_300.0, 2_516_300.0, 5_016_300.0,
                 25_016_300.0, 100_016_300.0)
BTC_2025_FLOORS = (0.0, 300e3, 800e3, 3e6)
BTC_2025_RATES = (0.004, 0.005, 0.0065, 0.01)
# the complete BTCUSDT table in force on 2025-10-10 (freqtrade's capture of 2025-08-21)
BTC_2025_08_21_FLOORS = (0.0, 300e3, 800e3, 3e6, 12e6, 70e6, 100e6, 230e6, 480e6, 600e6, 800e6, 1.2e9)
BTC_2025_08_21_RATES = (0.004, 0.005, 0.0065, 0.01, 0.02, 0.025, 0.05, 0.1, 0.125, 0.15, 0.25, 0.5)


def _nested(path: str, value) -> dict:
    """``"adl.policy", x`` -> ``{"adl": {"policy": x}}``."""
    out = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


# ----------------------------------------------------------------------------- preset names


class TestPresetNames:
    def test_names(self):
        assert venues.names() == PRESETS

    @pytest.mark.parametrize("typo, nearest", [
        ("hyperliqud", "hyperliquid"),
        ("binanse-usdm", "binance-usdm"),
        ("binance", "binance-usdm"),
        ("dydx", "dydx-v4"),
        ("bybitt", "bybit"),
        ("OKX", None),  # names are case-sensitive; nothing close enough to suggest
        ("ftx", None),
    ])
    def test_unknown_preset_lists_the_presets_and_suggests_the_nearest(self, typo, nearest):
        hint = f" (did you mean {nearest!r}?)" if nearest else ""
        expected = f"unknown venue preset {typo!r}{hint}; valid presets: {VALID_PRESETS}"
        assert _error(venues.preset, typo) == expected
        # a config table says where it is
        assert _error(venues.build, {"preset": typo}) == "venue: " + expected
        assert _error(venues.build, {"preset": typo}, where="venues[2]") == "venues[2]: " + expected

    def test_unknown_preset_option(self):
        msg = _error(venues.preset, "bybit", max_leverage=10)
        assert msg.startswith("preset 'bybit': ") and "'max_leverage'" in msg, msg
        msg = _error(venues.build, {"preset": "binance-usdm", "max_leverage": 10})
        assert msg.startswith("venue: preset 'binance-usdm': ") and "'max_leverage'" in msg, msg

    @pytest.mark.parametrize("key", ["symbol", "date", "max_leverage"])
    def test_preset_options_need_a_preset(self, key):
        msg = _error(venues.build, {"name": "x", key: "BTC"})
        assert msg.startswith("venue: ") and key in msg and "'preset'" in msg, msg


# ----------------------------------------------------------------------------- unknown keys


class TestUnknownKeys:
    @pytest.mark.parametrize("path, nearest", [
        ("adl.polcy", "policy"),
        ("adl.rankng", "ranking"),
        ("liquidation.latency", "latency_s"),
        ("liquidation.partial_fractoin", "partial_fraction"),
        ("fund.intial", "initial"),
        ("margin.rate", "rates"),
        ("backstop.ratoi", "ratio"),
        ("mark.methd", "method"),
    ])
    def test_unknown_component_key_suggests_the_nearest(self, path, nearest):
        expected = f"{path}: unknown key (did you mean {nearest!r}?)"
        assert _error(BASE.with_overrides, _nested(path, 1)) == f"venue design 'probe': {expected}"
        assert _error(VenueDesign.from_dict, {"name": "probe", **_nested(path, 1)}) == f"venue design: {expected}"
        # on a preset, through a config table
        assert (_error(venues.build, {"preset": "hyperliquid", **_nested(path, 1)})
                == f"venue design 'hyperliquid': {expected}")

    def test_the_suggestion_is_a_key_of_that_component(self):
        for name, model in COMPONENTS.items():
            for key in model.model_fields:
                typo = key[:-1] + ("x" if key[-1] != "x" else "y")
                msg = _error(BASE.with_overrides, {name: {typo: 1}})
                assert msg == f"venue design 'probe': {name}.{typo}: unknown key (did you mean {key!r}?)", msg

    @pytest.mark.parametrize("key, nearest", [
        ("liquidaton", "liquidation"),
        ("margn", "margin"),
        ("bakstop", "backstop"),
        ("nmae", "name"),
        ("zzz", None),
        ("latency_s", None),  # a flat field of the old API
        ("insurance_fund", None),
    ])
    def test_unknown_top_level_key(self, key, nearest):
        hint = f" (did you mean {nearest!r}?)" if nearest else ""
        assert _error(BASE.with_overrides, {key: 1}) == f"venue design 'probe': {key}: unknown key{hint}"
        assert _error(venues.build, {"name": "x", key: 1}) == f"venue: {key}: unknown key{hint}"

    def test_the_message_names_the_renamed_design(self):
        msg = _error(BASE.with_overrides, {"name": "variant", "adl": {"polcy": "pro-rata"}})
        assert msg == "venue design 'variant': adl.polcy: unknown key (did you mean 'policy'?)"

    def test_further_problems_are_counted(self):
        msg = _error(BASE.with_overrides, {"adl": {"polcy": "pro-rata", "pricee": "mark"}})
        assert msg == "venue design 'probe': adl.polcy: unknown key (did you mean 'policy'?) [and 1 more problem]"
        msg = _error(BASE.with_overrides, {"adl": {"polcy": 1}, "fund": {"initial": -1.0, "intial": 1}})
        assert msg.startswith("venue design 'probe': ") and msg.endswith(" [and 2 more problems]"), msg


# ----------------------------------------------------------------------------- wrong types


class TestWrongTypes:
    @pytest.mark.parametrize("path, value, text", [
        ("fund.initial", "lots", "Input should be a valid number, unable to parse string as a number (got 'lots')"),
        ("liquidation.latency_s", "soon", "Input should be a valid number, unable to parse string as a number (got 'soon')"),
        ("backstop.ratio", "two thirds", "Input should be a valid number, unable to parse string as a number (got 'two thirds')"),
        ("margin.rates[0]", "a", "Input should be a valid number, unable to parse string as a number (got 'a')"),
        ("fund.takeover", [True], "Input should be a valid boolean (got [True])"),
        ("liquidation.surplus_to_fund", [1], "Input should be a valid boolean (got [1])"),
        ("adl.on_negative_equity", [], "Input should be a valid boolean (got [])"),
        ("liquidation.max_per_step", 2.5, "Input should be a valid integer, got a number with a fractional part (got 2.5)"),
        ("margin.floors", "abc", "Input should be a valid tuple (got 'abc')"),
        ("mark", 5, "Input should be a valid dictionary or instance of Mark (got 5)"),
        ("margin", None, "Input should be a valid dictionary or instance of Margin (got None)"),
        ("name", "", "String should have at least 1 character (got '')"),
    ])
    def test_wrong_type(self, path, value, text):
        change = _nested(path, value)
        if path == "margin.rates[0]":
            change = {"margin": {"rates": [value]}}
        design = "''" if path == "name" else "'probe'"
        assert _error(BASE.with_overrides, change) == f"venue design {design}: {path}: {text}"

    def test_unknown_names_list_the_valid_ones(self):
        msg = _error(BASE.with_overrides, {"adl": {"policy": "pro_rata"}})
        assert msg == ("venue design 'probe': adl.policy: Input should be 'none', 'queue', 'pro-rata', "
                       "'pro-rata-equity', 'pro-rata-pnl', 'levered-pro-rata', 'risk-aware', 'water-filling' "
                       "or 'socialize' (got 'pro_rata')")
        msg = _error(BASE.with_overrides, {"liquidation": {"partial": "half"}})
        assert msg == ("venue design 'probe': liquidation.partial: Input should be 'none', 'fraction' or "
                       "'tier-step' (got 'half')")

    def test_missing_name(self):
        assert _error(VenueDesign.from_dict, {"adl": {"policy": "queue"}}) == "venue design: name: Field required"
        assert _error(venues.build, {"adl": {"policy": "queue"}}, where="venues[0]") == "venues[0]: name: Field required"

    def test_non_numeric_max_leverage_names_the_key(self):
        msg = _error(venues.build, {"preset": "hyperliquid", "max_leverage": "ten"})
        assert "max_leverage" in msg, msg


# ----------------------------------------------------------------------------- impossible values


IMPOSSIBLE = [
    pytest.param({"margin": {"floors": [0, 10, 5], "rates": [0.01, 0.02, 0.03]}}, "margin.floors",
                 "tier floors must increase (floors[2] = 5.0 <= floors[1] = 10.0)", id="floors-decrease"),
    pytest.param({"margin": {"floors": [0, 10, 10], "rates": [0.01, 0.02, 0.03]}}, "margin.floors",
                 "tier floors must increase (floors[2] = 10.0 <= floors[1] = 10.0)", id="floors-repeat"),
    pytest.param({"margin": {"floors": [1], "rates": [0.01]}}, "margin.floors",
                 "the first floor must be 0 (got 1.0)", id="first-floor-not-0"),
    pytest.param({"margin": {"floors": [], "rates": []}}, "margin.floors",
                 "expected at least one tier", id="no-tiers"),
    pytest.param({"margin": {"rates": [0]}}, "margin.rates[0]",
                 "Input should be greater than 0 (got 0)", id="rate-0"),
    pytest.param({"margin": {"rates": [1.0]}}, "margin.rates[0]",
                 "Input should be less than 1 (got 1.0)", id="rate-1"),
    pytest.param({"margin": {"rates": [-0.01]}}, "margin.rates[0]",
                 "Input should be greater than 0 (got -0.01)", id="rate-negative"),
    pytest.param({"margin": {"floors": [0, 10], "rates": [0.01, 1.5]}}, "margin.rates[1]",
                 "Input should be less than 1 (got 1.5)", id="rate-above-1"),
    pytest.param({"margin": {"rates": [math.nan]}}, "margin.rates[0]",
                 "Input should be a finite number (got nan)", id="rate-nan"),
    pytest.param({"margin": {"floors": [0, math.inf], "rates": [0.01, 0.02]}}, "margin.floors[1]",
                 "Input should be a finite number (got inf)", id="floor-inf"),
    pytest.param({"margin": {"floors": [0, 1e16], "rates": [0.01, 0.02]}}, "margin.floors[1]",
                 "Input should be less than or equal to 1000000000000000 (got 1e+16)", id="floor-past-1e15"),
    pytest.param({"margin": {"floors": [0, 10], "rates": [0.02, 0.01]}}, "margin.rates",
                 "rates must not decrease (rates[1] = 0.01 < rates[0] = 0.02)", id="rates-decrease"),
    pytest.param({"margin": {"floors": [0, 10], "rates": [0.01]}}, "margin",
                 "floors and rates must have the same length (2 vs 1)", id="length-mismatch"),
    pytest.param({"margin": {"floors": [0], "rates": [0.01, 0.02]}}, "margin",
                 "floors and rates must have the same length (1 vs 2)", id="length-mismatch-rates"),
    pytest.param({"backstop": {"ratio": 1.5}}, "backstop.ratio",
                 "Input should be less than or equal to 1 (got 1.5)", id="backstop-ratio"),
    pytest.param({"backstop": {"ratio": -0.1}}, "backstop.ratio",
                 "Input should be greater than or equal to 0 (got -0.1)", id="backstop-ratio-negative"),
    pytest.param({"liquidation": {"partial_fraction": 1.5}}, "liquidation.partial_fraction",
                 "Input should be less than or equal to 1 (got 1.5)", id="partial-fraction"),
    pytest.param({"liquidation": {"partial_fraction": 0}}, "liquidation.partial_fraction",
                 "Input should be greater than 0 (got 0)", id="partial-fraction-0"),
    pytest.param({"liquidation": {"price_band": 0}}, "liquidation.price_band",
                 "Input should be greater than 0 (got 0)", id="price-band-0"),
    pytest.param({"liquidation": {"price_band": 1.5}}, "liquidation.price_band",
                 "Input should be less than or equal to 1 (got 1.5)", id="price-band-above-1"),
    pytest.param({"adl": {"fund_drawdown": 1.5}}, "adl.fund_drawdown",
                 "Input should be less than or equal to 1 (got 1.5)", id="fund-drawdown"),
    pytest.param({"adl": {"fund_drawdown": 0}}, "adl.fund_drawdown",
                 "Input should be greater than 0 (got 0)", id="fund-drawdown-0"),
    pytest.param({"liquidation": {"latency_s": -1}}, "liquidation.latency_s",
                 "Input should be greater than or equal to 0 (got -1)", id="latency-negative"),
    pytest.param({"liquidation": {"latency_s": math.nan}}, "liquidation.latency_s",
                 "Input should be a finite number (got nan)", id="latency-nan"),
    pytest.param({"liquidation": {"fee": 1.0}}, "liquidation.fee",
                 "Input should be less than 1 (got 1.0)", id="fee-1"),
    pytest.param({"fund": {"unwind_fraction": 0}}, "fund.unwind_fraction",
                 "Input should be greater than 0 (got 0)", id="fund-unwind-fraction"),
    pytest.param({"fund": {"capacity": 0}}, "fund.capacity",
                 "Input should be greater than 0 (got 0)", id="fund-capacity-0"),
    pytest.param({"mark": {"ema_s": 0}}, "mark.ema_s",
                 "Input should be greater than 0 (got 0)", id="ema-0"),
    pytest.param({"adl": {"rank_interval_s": -1.0}}, "adl.rank_interval_s",
                 "Input should be greater than or equal to 0 (got -1.0)", id="rank-interval-negative"),
    pytest.param({"backstop": {"loss_limit": math.inf}}, "backstop.loss_limit",
                 "Input should be a finite number (got inf)", id="loss-limit-inf"),
    pytest.param({"backstop": {"loss_limit_share": -0.5}}, "backstop.loss_limit_share",
                 "Input should be greater than or equal to 0 (got -0.5)", id="loss-limit-share-negative"),
    pytest.param({"backstop": {"loss_limit_share": 1e9}}, "backstop.loss_limit_share",
                 "Input should be less than or equal to 100 (got 1000000000.0)", id="loss-limit-share-absurd"),
    pytest.param({"backstop": {"loss_limit_share": math.nan}}, "backstop.loss_limit_share",
                 "Input should be a finite number (got nan)", id="loss-limit-share-nan"),
]


class TestImpossibleValues:
    @pytest.mark.parametrize("change, path, text", IMPOSSIBLE)
    def test_impossible_value(self, change, path, text):
        # the same key path and text from each entry point, each with its own prefix
        for prefix, call, arg in [
            ("venue design 'probe': ", BASE.with_overrides, change),
            ("venue design: ", VenueDesign.from_dict, {"name": "probe", **change}),
            ("venue design 'bybit': ", venues.build, {"preset": "bybit", **change}),
        ]:
            msg = _error(call, arg)
            assert msg.startswith(prefix + path + ": " + text), msg

    @pytest.mark.parametrize("change, path, text", IMPOSSIBLE)
    def test_component_constructor_rejects_it_too(self, change, path, text):
        (component, values), = change.items()
        core = re.sub(r" \(got [^()]*\)$", "", text)  # "(got x)" is added by the one-line formatter
        with pytest.raises(ValueError, match=re.escape(core)):
            COMPONENTS[component](**values)

    def test_boundaries_are_accepted(self):
        design = BASE.with_overrides({
            "backstop": {"ratio": 1.0}, "liquidation": {"partial_fraction": 1.0, "price_band": 1.0, "latency_s": 0.0},
            "adl": {"fund_drawdown": 1.0, "rank_interval_s": 0.0},
            "margin": {"floors": [0, 10], "rates": [0.01, 0.01]},  # equal rates do not decrease
        })
        p = design.engine_params()
        assert isinstance(p, EngineParams)
        assert p.backstop_ratio == 1.0 and p.liq_price_band == 1.0 and p.adl_fund_drawdown == 1.0
        assert p.mm_rates.tolist() == [0.01, 0.01]

    def test_none_means_off(self):
        design = BASE.with_overrides({"liquidation": {"price_band": None}, "fund": {"capacity": None},
                                      "adl": {"fund_drawdown": None}})
        p = design.engine_params()
        assert p.liq_price_band == math.inf and p.fund_capacity == math.inf
        assert p.adl_fund_drawdown == math.inf

    def test_vault_loss_threshold_is_a_share_of_its_balance_unless_an_amount_is_given(self):
        # default: the vault never loses more than it holds; an amount overrides the share
        cases = [({"vault_balance": 2e6}, 2e6), ({"vault_balance": 2e6, "loss_limit_share": 0.25}, 5e5),
                 ({"vault_balance": 0.0}, 0.0), ({"vault_balance": 2e6, "loss_limit_share": 3.0}, 6e6),
                 ({"vault_balance": 2e6, "loss_limit_share": 0.25, "loss_limit": 7e4}, 7e4),
                 ({"vault_balance": 0.0, "loss_limit": 1e5}, 1e5)]
        for backstop, threshold in cases:
            design = BASE.with_overrides({"backstop": backstop})
            assert design.backstop.loss_threshold == threshold
            assert design.engine_params().vault_loss_limit == threshold


# ----------------------------------------------------------------------------- symbols and dates


class TestSymbolsAndDates:
    def test_unknown_binance_symbol_lists_the_known_ones(self):
        known = ", ".join(_tables.symbols("binance-usdm"))
        assert "BTCUSDT" in known and "ETHUSDT" in known and "AAVEUSDT" in known
        assert (_error(venues.preset, "binance-usdm", symbol="XRP")
                == f"binance-usdm: no margin table for symbol 'XRP'; known: {known}")
        assert (_error(venues.preset, "binance-usdm", symbol="btcusdt")
                == f"binance-usdm: no margin table for symbol 'btcusdt'; known: {known}")

    def test_unknown_hyperliquid_symbol_lists_the_known_ones(self):
        known = ", ".join(_tables.symbols("hyperliquid"))
        assert (_error(venues.preset, "hyperliquid", symbol="NOSUCHCOIN")
                == f"hyperliquid: no margin table for symbol 'NOSUCHCOIN'; known: {known}")

    def test_malformed_date(self):
        assert (_error(venues.preset, "binance-usdm", date="10/10/2025")
                == "binance-usdm: date '10/10/2025' is not an ISO date (YYYY-MM-DD)")

    def test_date_before_the_first_table(self):
        design = venues.preset("binance-usdm", date="2020-01-01")
        assert design.margin.floors == BTC_2021_FLOORS
        assert design.margin.rates == BTC_2021_RATES
        assert "effective 2021-03-18" in design.margin.source
        assert ("no binance-usdm BTCUSDT table known on 2020-01-01; using the earliest, effective 2021-03-18"
                in design.notes)
        assert design.margin.caveat.startswith("out of date: ")
        assert design.margin.margin_source.startswith("binance-usdm BTCUSDT 2021-03-18 [out of date: ")
        hl = venues.preset("hyperliquid", symbol="SOL", date="2025-10-10")
        first = _tables._load("hyperliquid")["SOL"][0]
        assert first.effective > dt.date(2025, 10, 10)  # no 2025 SOL table is known
        assert hl.margin.floors == first.floors
        assert (f"no hyperliquid SOL table known on 2025-10-10; using the earliest, effective {first.effective}"
                in hl.notes)

    @pytest.mark.parametrize("date", ["2024-01-01", "2021-03-18", "2024-05-29", dt.date(2024, 1, 1)])
    def test_btcusdt_2021_table(self, date):
        design = venues.preset("binance-usdm", symbol="BTCUSDT", date=date)
        assert design.margin.floors == BTC_2021_FLOORS
        assert design.margin.rates == BTC_2021_RATES
        assert "effective 2021-03-18" in design.notes
        assert "earliest" not in design.notes and "gap" not in design.notes  # complete table, in force
        assert design.margin.margin_source == "binance-usdm BTCUSDT 2021-03-18"
        p = design.engine_params()
        np.testing.assert_allclose(p.mm_cums, BTC_2021_CUMS, rtol=0, atol=1e-6)

    @pytest.mark.parametrize("date", ["2025-08-19", "2025-08-20T21:15:00Z", dt.date(2025, 8, 20)])
    def test_btcusdt_incomplete_table_notes_its_gap(self, date):
        design = venues.preset("binance-usdm", symbol="BTCUSDT", date=date)
        assert design.margin.floors == BTC_2025_FLOORS
        assert design.margin.rates == BTC_2025_RATES
        assert "effective 2025-08-19" in design.notes
        assert "brackets 1-4 of 12 only" in design.notes
        assert "gap: brackets 5-12 (notional above 12,000,000 USDT) are not in these captures" in design.notes
        assert design.margin.margin_source == "binance-usdm BTCUSDT 2025-08-19 (incomplete)"
        assert "earliest" not in design.notes

    @pytest.mark.parametrize("date", ["2025-10-10", "2025-10-10T21:15:00Z", dt.date(2025, 10, 10), None])
    def test_btcusdt_table_in_force_on_2025_10_10(self, date):
        design = venues.preset("binance-usdm", symbol="BTCUSDT", date=date)
        assert design.margin.floors == BTC_2025_08_21_FLOORS
        assert design.margin.rates == BTC_2025_08_21_RATES
        assert design.margin.margin_source == "binance-usdm BTCUSDT 2025-08-21"
        assert "freqtrade" in design.notes and "gap" not in design.notes
        # the maintenance amounts of the capture follow from the continuity recursion
        cums = design.engine_params().mm_cums
        np.testing.assert_allclose(cums, (0, 300, 1500, 12_000, 132_000, 482_000, 2_982_000, 14_482_000,
                                          26_482_000, 41_482_000, 121_482_000, 421_482_000), rtol=0, atol=1e-6)

    def test_build_passes_symbol_and_date(self):
        design = venues.build({"preset": "binance-usdm", "symbol": "BTCUSDT", "date": "2024-01-01"})
        assert design.margin.floors == BTC_2021_FLOORS
        assert design == venues.preset("binance-usdm", symbol="BTCUSDT", date="2024-01-01")


# ----------------------------------------------------------------------------- overrides


class TestOverrides:
    def test_nested_keys_are_merged(self):
        hl = venues.preset("hyperliquid")
        variant = hl.with_overrides({"adl": {"policy": "pro-rata"}})
        assert variant.adl.policy == "pro-rata"
        # the other ADL keys and the other components are kept
        assert variant.adl.model_dump(exclude={"policy"}) == hl.adl.model_dump(exclude={"policy"})
        assert variant.adl.ranking == "hl-index" and variant.adl.price == "previous-mark"
        assert variant.adl.on_negative_equity is True
        for name in ("margin", "mark", "liquidation", "fund", "backstop"):
            assert getattr(variant, name) == getattr(hl, name), name
        assert (variant.name, variant.preset, variant.notes) == (hl.name, hl.preset, hl.notes)
        assert hl.adl.policy == "queue"  # the original is unchanged

    def test_several_components_and_the_name(self):
        hl = venues.preset("hyperliquid")
        variant = hl.with_overrides({"name": "hl-variant", "backstop": {"vault_balance": 1e6},
                                     "liquidation": {"cooldown_s": 0.0, "latency_s": 0.5}})
        assert variant.name == "hl-variant"
        assert variant.backstop.vault_balance == 1e6 and variant.backstop.ratio == pytest.approx(2 / 3)
        assert variant.liquidation.cooldown_s == 0.0 and variant.liquidation.latency_s == 0.5
        assert variant.liquidation.partial == "fraction" and variant.liquidation.partial_fraction == 0.2
        assert variant.liquidation.partial_threshold == 100_000.0

    def test_overrides_compose(self):
        a = BASE.with_overrides({"fund": {"initial": 1e6}}).with_overrides({"fund": {"takeover": True}})
        assert a.fund.initial == 1e6 and a.fund.takeover is True
        assert a == BASE.with_overrides({"fund": {"initial": 1e6, "takeover": True}})

    def test_none_turns_an_option_off(self):
        binance = venues.preset("binance-usdm")
        assert binance.liquidation.price_band == 0.05
        variant = binance.with_overrides({"liquidation": {"price_band": None}})
        assert variant.liquidation.price_band is None
        assert variant.liquidation.fee == binance.liquidation.fee and variant.liquidation.limit == "bankruptcy"
        assert variant.engine_params().liq_price_band == math.inf

    def test_a_component_instance_replaces_the_component(self):
        margin = Margin(floors=(0.0, 10.0), rates=(0.01, 0.02))
        assert BASE.with_overrides({"margin": margin}).margin == margin

    def test_tier_lists_are_replaced_not_merged(self):
        binance = venues.preset("binance-usdm")
        variant = binance.with_overrides({"margin": {"floors": [0, 1e6], "rates": [0.01, 0.02]}})
        assert variant.margin.floors == (0.0, 1e6) and variant.margin.rates == (0.01, 0.02)
        assert variant.margin.source == binance.margin.source  # the unchanged key is kept
        # but the preset table's label no longer names it
        assert variant.margin.margin_source == "given in the design"
        # a table of a different length must change both lists
        msg = _error(binance.with_overrides, {"margin": {"floors": [0, 1e6]}})
        assert msg == (f"venue design 'binance-usdm': margin: floors and rates must have the same length "
                       f"(2 vs {len(binance.margin.rates)})")

    def test_overrides_do_not_touch_the_callers_mapping(self):
        overrides = {"adl": {"policy": "pro-rata"}, "fund": {"initial": 1.0}}
        before = copy.deepcopy(overrides)
        BASE.with_overrides(overrides)
        assert overrides == before

    def test_round_trip(self):
        for name in venues.names():
            design = venues.preset(name, symbol=_a_symbol(name))
            assert VenueDesign.from_dict(design.model_dump()) == design
            assert VenueDesign.model_validate_json(design.model_dump_json()) == design


class TestBuild:
    def test_preset_symbol_and_overrides(self):
        spec = {"preset": "hyperliquid", "symbol": "ETH", "name": "hl-eth-pro-rata",
                "adl": {"policy": "pro-rata"}, "backstop": {"vault_balance": 2e6}}
        before = copy.deepcopy(spec)
        design = venues.build(spec)
        assert spec == before
        assert design.name == "hl-eth-pro-rata" and design.preset == "hyperliquid"
        # ETH table: 25x to 100M, then 15x; maintenance = half the initial margin
        assert design.margin.floors == (0.0, 100e6)
        assert design.margin.rates == pytest.approx((1 / 50, 1 / 30))
        assert design.adl.policy == "pro-rata" and design.adl.ranking == "hl-index"
        assert design.backstop.vault_balance == 2e6 and design.backstop.ratio == pytest.approx(2 / 3)
        base = venues.preset("hyperliquid", symbol="ETH")
        assert design == base.with_overrides({"name": "hl-eth-pro-rata", "adl": {"policy": "pro-rata"},
                                              "backstop": {"vault_balance": 2e6}})

    def test_binance_symbol_date_and_fund(self):
        design = venues.build({"preset": "binance-usdm", "symbol": "BTCUSDT", "date": "2024-01-01",
                               "name": "bin-2024", "fund": {"initial": 1e6}})
        assert design.name == "bin-2024" and design.margin.floors == BTC_2021_FLOORS
        assert design.fund.initial == 1e6 and design.fund.takeover is True and design.fund.capacity == 1.0

    def test_preset_only(self):
        assert venues.build({"preset": "bitmex"}) == venues.preset("bitmex")

    def test_without_a_preset(self):
        design = venues.build({"name": "plain", "adl": {"policy": "none"}})
        assert design == VenueDesign(name="plain", adl=Adl(policy="none"))
        assert design.preset == ""

    def test_max_leverage(self):
        design = venues.build({"preset": "hyperliquid", "max_leverage": 10, "name": "hype"})
        assert design.name == "hype" and design.margin.floors == (0.0,) and design.margin.rates == (0.05,)


# ----------------------------------------------------------------------------- presets


def _tape_with_stream() -> Scenario:
    ts = np.arange(50, dtype=np.int64) * NS + 1_700_000_000 * NS
    px = np.linspace(100.0, 80.0, 50)
    tape = Tape.from_arrays(ts, px, np.ones(50), px * 1.001)
    pop = Population.from_arrays(np.array([1_000.0, 5.0, 200.0]), np.array([1.0, 1.0, -2.0]),
                                 np.array([100.0, 100.0, 100.0]), np.array([0, 0, 1], dtype=np.int8))
    return Scenario("tiny", tape, pop)


def _a_symbol(name: str) -> str:
    """The preset's default symbol when it has a table, else its first symbol with one."""
    default = venues._MODULES[name].DEFAULT_SYMBOL
    known = _tables.symbols(name)
    return default if default in known else known[0]


class TestPresets:
    @pytest.mark.parametrize("name", PRESETS)
    def test_every_preset_builds_and_resolves(self, name):
        design = venues.preset(name, symbol=_a_symbol(name))
        assert isinstance(design, VenueDesign)
        assert design.name == name and design.preset == name
        assert design.notes  # sources and gaps are stated
        p = design.engine_params()
        assert isinstance(p, EngineParams)
        assert p.mm_floors.tolist() == list(design.margin.floors)
        assert p.mm_rates.tolist() == list(design.margin.rates)
        assert p.mark_method == MarkMethod[design.mark.method.upper().replace("-", "_")]
        assert p.adl_policy == AdlPolicy[design.adl.policy.upper().replace("-", "_")]
        assert p.adl_ranking == AdlRanking[design.adl.ranking.upper().replace("-", "_")]
        assert p.adl_price == AdlPrice[design.adl.price.upper().replace("-", "_")]
        assert venues.build({"preset": name, "symbol": _a_symbol(name)}) == design
        # and the engine runs it
        res = run(_tape_with_stream(), design)
        assert res.table["liquidations"].iloc[0] >= 1

    @pytest.mark.parametrize("name", PRESETS)
    def test_no_preset_runs_on_a_placeholder(self, name):
        """Every symbol of every preset is a stored, dated, cited table (issue 11: bybit, okx,
        bitmex, dydx-v4 and drift ran on one made-up 0.5% tier)."""
        for symbol in _tables.symbols(name):
            design = venues.preset(name, symbol=symbol)
            assert "placeholder" not in design.notes.lower()
            assert design.margin.label.startswith(f"{name} {symbol} 20")
            assert design.margin.source.startswith(f"{name} {symbol} margin table effective 20")

    def test_hyperliquid_max_leverage_gives_a_single_tier(self):
        design = venues.preset("hyperliquid", max_leverage=10)
        assert design.margin.floors == (0.0,)
        assert design.margin.rates == (0.05,)  # half the 10% initial margin
        assert "max leverage 10" in design.margin.source and "max leverage 10" in design.notes
        p = design.engine_params()
        assert p.maintenance_margin(1e6) == pytest.approx(50_000.0)
        # everything else is the hyperliquid rulebook, but the largest market order, which
        # follows the max leverage ($2M in [10, 20) [DOC S32])
        assert design.liquidation.max_order == 2e6
        btc = venues.preset("hyperliquid")
        assert btc.with_overrides({"liquidation": {"max_order": 2e6}}).model_dump(exclude={"margin", "notes"}) == \
            design.model_dump(exclude={"margin", "notes"})

    @pytest.mark.parametrize("value", [0.5, 0, -3, math.inf, math.nan, 1e9, 1000.5])
    def test_hyperliquid_max_leverage_outside_1_to_1000(self, value):
        assert _error(venues.preset, "hyperliquid", max_leverage=value) == \
            f"hyperliquid: max_leverage: expected a finite leverage in [1, 1,000] (got {value!r})"

    def test_hyperliquid_btc_table(self):
        design = venues.preset("hyperliquid")
        assert design.margin.floors == (0.0, 150e6)
        assert design.margin.rates == (0.0125, 0.025)  # 40x then 20x


class TestMarginFromMaxLeverage:
    def test_rates_are_half_the_initial_margin(self):
        m = Margin.from_max_leverage((0, 150e6), (40, 20), source="table 56")
        assert m.floors == (0.0, 150e6)
        assert m.rates == (0.0125, 0.025)
        assert m.source == "table 56"
        assert Margin.from_max_leverage([0], [1]).rates == (0.5,)

    def test_the_table_is_validated(self):
        # leverage rising with notional = rates falling
        with pytest.raises(ValueError, match=re.escape("rates must not decrease (rates[1] = 0.025 < rates[0] = 0.05)")):
            Margin.from_max_leverage((0, 1e6), (10, 20))
        with pytest.raises(ValueError, match=re.escape("max_leverage[0]: expected a finite leverage in [1, 1,000] (got 0.5)")):
            Margin.from_max_leverage((0,), (0.5,))
        with pytest.raises(ValueError, match=re.escape("max_leverage[1]: expected a finite leverage in [1, 1,000] (got inf)")):
            Margin.from_max_leverage((0, 1e6), (10, math.inf))
        with pytest.raises(ValueError, match=re.escape("floors and rates must have the same length (2 vs 1)")):
            Margin.from_max_leverage((0, 1e6), (10,))

    def test_zero_leverage_is_a_value_error(self):
        with pytest.raises(ValueError, match=r"max_leverage\[0\]: expected a finite leverage in \[1, 1,000\] \(got 0\)"):
            Margin.from_max_leverage((0,), (0,))


# ----------------------------------------------------------------------------- schema


class TestSchema:
    def test_json_schema_has_the_components(self):
        schema = VenueDesign.model_json_schema()
        json.dumps(schema)  # serialisable
        assert set(schema["$defs"]) >= {"Margin", "Mark", "Liquidation", "Fund", "Backstop", "Adl"}
        props = schema["properties"]
        for name, model in COMPONENTS.items():
            assert props[name]["$ref"] == f"#/$defs/{model.__name__}", name
            definition = schema["$defs"][model.__name__]
            assert set(definition["properties"]) == set(model.model_fields), name
            assert definition["additionalProperties"] is False, name  # unknown keys are rejected
        assert schema["additionalProperties"] is False
        assert schema["required"] == ["name"]

    def test_json_schema_lists_choices_and_bounds(self):
        defs = VenueDesign.model_json_schema()["$defs"]
        assert defs["Adl"]["properties"]["policy"]["enum"] == [
            "none", "queue", "pro-rata", "pro-rata-equity", "pro-rata-pnl", "levered-pro-rata",
            "risk-aware", "water-filling", "socialize"]
        assert defs["Mark"]["properties"]["method"]["enum"] == [
            "last", "ema", "stream", "index-ema-basis", "binance-median", "hl-median"]
        ratio = defs["Backstop"]["properties"]["ratio"]
        assert ratio["minimum"] == 0 and ratio["maximum"] == 1
        assert defs["Liquidation"]["properties"]["latency_s"]["minimum"] == 0
        assert "description" in defs["Margin"]["properties"]["floors"]
