"""Every number of a config is finite and within the documented range of its kind
(:mod:`riskengine.ranges`, the Ranges table of docs/config.md):

- every numeric field of the config and venue-design models has a kind and both bounds;
- every shipped config (backtests/*.toml, the embedded default) lies within the ranges (the TOML
  examples of the docs are validated likewise by tests/test_docs.py);
- infinite, NaN and absurd values (leverage ``inf`` and ``1e9`` among them) are refused by
  ``riskengine validate`` with one line naming the file and the key.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from _cli import one_error_line, run_cli, write

from riskengine import backtest, cli, config, ranges, venues
from riskengine.venue import VenueDesign

ROOT = Path(__file__).resolve().parents[1]


def _numbers(node: dict, defs: dict, path: str = "") -> list[tuple[str, dict]]:
    """Every number or integer node of a JSON schema with its key path (references, unions,
    list items and tuple items followed)."""
    if "$ref" in node:
        return _numbers(defs[node["$ref"].rsplit("/", 1)[1]], defs, path)
    found = [(path, node)] if node.get("type") in ("number", "integer") else []
    for alt in node.get("anyOf", []) + node.get("oneOf", []):
        found += _numbers(alt, defs, path)
    for k, item in enumerate(node.get("prefixItems", [])):
        found += _numbers(item, defs, f"{path}[{k}]")
    if isinstance(node.get("items"), dict):
        found += _numbers(node["items"], defs, f"{path}[i]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _numbers(node["additionalProperties"], defs, f"{path}.*")
    for name, prop in node.get("properties", {}).items():
        found += _numbers(prop, defs, f"{path}.{name}" if path else name)
    return found


@pytest.mark.parametrize("schema", [config.json_schema(), VenueDesign.model_json_schema()],
                         ids=["config", "venue design"])
def test_every_numeric_field_has_a_kind_and_both_bounds(schema):
    found = _numbers(schema, schema.get("$defs", {}))
    assert len(found) > 20  # the walk reached the nested tables
    kinds = {k.name for k in ranges.KINDS}
    for path, node in found:
        assert node.get(ranges.SCHEMA_KEY) in kinds, f"{path}: no kind of riskengine.ranges"
        assert {"minimum", "exclusiveMinimum"} & set(node), f"{path}: no lower bound"
        assert {"maximum", "exclusiveMaximum"} & set(node), f"{path}: no upper bound"


SHIPPED = sorted((ROOT / "backtests").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_configs_lie_within_the_ranges(path):
    _within(config.load(path))


def test_the_embedded_default_lies_within_the_ranges():
    _within(config.load_default())


def _within(loaded: config.LoadedConfig) -> None:
    """The models (ranges included) accept the config, its designs and each scenario's changes."""
    assert loaded.config.venues
    for design in backtest.build_designs(loaded):
        assert math.isfinite(design.fund.initial) and design.fund.initial <= ranges.MAX_MONEY
    for spec in loaded.config.all_scenarios():
        if spec.population:
            config.PopulationSpec.model_validate({**loaded.config.population.model_dump(exclude_unset=True),
                                                  **spec.population})
        backtest.liquidity_spec(loaded, spec, spec.name)
    for value in loaded.config.population.leverage.values:
        assert 1 <= value <= ranges.MAX_LEVERAGE


BASE = """
[scenario]
name = "syn"
synthetic = { ticks = 2_000 }

[population]
accounts = 500

[[venues]]
preset = "binance-usdm"
"""


def _config(*changes: tuple[str, str]) -> str:
    """BASE with lines put under a table header (added when BASE lacks it)."""
    text = BASE
    for table, line in changes:
        header = f"[{table}]\n"
        text = text.replace(header, header + line + "\n", 1) if header in text else text + f"\n{header}{line}\n"
    return text


@pytest.mark.parametrize("change, key, expected", [
    (("population", "leverage = { values = [inf], weights = [1] }"), "population.leverage.values[0]",
     "Input should be a finite number (got inf)"),
    (("population", "leverage = { values = [1e9], weights = [1] }"), "population.leverage.values[0]",
     "Input should be less than or equal to 1000 (got 1000000000.0)"),
    (("population", "leverage = { values = [5, nan], weights = [0.5, 0.5] }"), "population.leverage.values[1]",
     "Input should be a finite number (got nan)"),
    (("population", "open_interest_usd = inf"), "population.open_interest_usd", "Input should be a finite number"),
    (("population", "long_share = nan"), "population.long_share", "Input should be a finite number (got nan)"),
    (("population", "seed = -1"), "population.seed", "Input should be greater than or equal to 0 (got -1)"),
    (("population", "entry_lookback_s = 1e12"), "population.entry_lookback_s",
     "Input should be less than or equal to 31536000"),
    (("liquidity", "depth_per_pct = 1e16"), "liquidity.depth_per_pct",
     "Input should be less than or equal to 1000000000000000 (got 1e+16)"),
    (("liquidity", "stress_k = inf"), "liquidity.stress_k", "Input should be a finite number (got inf)"),
    (("outputs", "series_interval_s = nan"), "outputs.series_interval_s", "Input should be a finite number (got nan)"),
])
def test_out_of_range_config_values_are_one_line(tmp_path, capsys, change, key, expected):
    path = write(tmp_path, _config(change), "bad.toml")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"riskengine: error: {path}: {key}: {expected}" + err[len(f"riskengine: error: {path}: {key}: "
                                                                           f"{expected}"):]
    assert err.count("\n") == 1


@pytest.mark.parametrize("venue, key, expected", [
    ('fund = { initial = nan }', "venue design 'binance-usdm': fund.initial", "Input should be a finite number (got nan)"),
    ('fund = { initial = 1e300 }', "venue design 'binance-usdm': fund.initial",
     "Input should be less than or equal to 1000000000000000 (got 1e+300)"),
    ('backstop = { vault_balance = inf }', "venue design 'binance-usdm': backstop.vault_balance",
     "Input should be a finite number (got inf)"),
    ('fund = { capacity = inf }', "venue design 'binance-usdm': fund.capacity",
     "Input should be a finite number (got inf)"),
    ('mark = { ema_s = 1e10 }', "venue design 'binance-usdm': mark.ema_s", "Input should be less than or equal to"),
    ('adl = { risk_power = 1e3 }', "venue design 'binance-usdm': adl.risk_power",
     "Input should be less than or equal to 10 (got 1000.0)"),
    ('margin = { floors = [0, inf], rates = [0.01, 0.02] }', "venue design 'binance-usdm': margin.floors[1]",
     "Input should be a finite number (got inf)"),
])
def test_out_of_range_design_values_are_one_line(tmp_path, capsys, venue, key, expected):
    path = write(tmp_path, BASE + venue + "\n", "bad.toml")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"riskengine: error: {path}: venues[0]: {key}: {expected}"), err
    assert err.count("\n") == 1


@pytest.mark.parametrize("value", ["inf", "1e9", "nan", "0.5"])
def test_preset_max_leverage_out_of_range_is_one_line(tmp_path, value):
    path = write(tmp_path, BASE.replace('preset = "binance-usdm"', f'preset = "hyperliquid"\nmax_leverage = {value}'),
                 "bad.toml")
    line = one_error_line(run_cli("validate", str(path)), progress_first=False)
    shown = repr(float(value))
    assert line == (f"riskengine: error: {path}: venues[0]: hyperliquid: max_leverage: expected a finite leverage "
                    f"in [1, 1,000] (got {shown})")


def test_a_scenario_change_out_of_range_names_the_scenario(tmp_path, capsys):
    path = write(tmp_path, BASE.replace('synthetic = { ticks = 2_000 }',
                                        'synthetic = { ticks = 2_000 }\npopulation = { long_share = inf }'), "bad.toml")
    assert cli.main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == (f"riskengine: error: {path}: scenario.population.long_share: Input should be "
                                       f"a finite number (got inf)\n")


def test_a_sweep_value_out_of_range_names_the_grid_point(tmp_path, capsys):
    path = write(tmp_path, BASE + '\n[sweep]\ngrid = { "venues[0].fund.initial" = [1e6, inf] }\n', "bad.toml")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"riskengine: error: {path}: sweep.grid venues[0].fund.initial=Infinity: venues[0]: venue design "
                   f"'binance-usdm': fund.initial: Input should be a finite number (got inf)\n")


def test_the_kinds_are_documented():
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for kind in ranges.KINDS:
        assert f"| {kind.name} | {kind.bounds} |" in text
    assert "[leverage](#ranges): >= 1, <= 1000.0" in text  # a key's allowed cell names its kind
    assert venues.preset("hyperliquid", max_leverage=ranges.MAX_LEVERAGE).margin.rates == (0.0005,)
