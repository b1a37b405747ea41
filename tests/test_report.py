"""``report.html``: rendered for the embedded default and a real replay with observed figures,
opened in a real headless Chromium (Debian's package; see ``tests/_chromium.py``), which must
load it without console errors, exceptions or network requests and show every plot."""

from __future__ import annotations

import html
import io
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from riskengine import backtest, config, metrics, observed, report

from _chromium import Browser, find

ROOT = Path(__file__).resolve().parents[1]
HYPERLIQUID = ROOT / "backtests" / "hyperliquid-2025-10-10.toml"
#: a resource the page would fetch from the web: src/href/xlink:href/url()/@import with http(s)
REMOTE = re.compile(r"""(?:\b(?:src|href|srcset|poster|data)\s*=\s*["']?\s*|url\(\s*["']?|@import\s+["']?)"""
                    r"""(?:https?:)?//""", re.IGNORECASE)
#: what each plot is, per scenario: its data-plot names
PER_SCENARIO = ("prices", "cascade", "balances")
#: and before them, in a scenario of several instruments
PER_INSTRUMENT = ("instruments", "instrument-prices")

PLOTS_JS = """
[...document.querySelectorAll('figure.plot')].map(f => {
  const svg = f.querySelector(':scope > svg');
  const r = svg ? svg.getBoundingClientRect() : null;
  const style = svg ? getComputedStyle(svg) : null;
  return {name: f.dataset.plot, width: r ? r.width : 0, height: r ? r.height : 0,
          x: r ? r.left + scrollX : 0, y: r ? r.top + scrollY : 0,
          shown: !!style && style.display !== 'none' && style.visibility === 'visible',
          paths: svg ? svg.querySelectorAll('path').length : 0,
          long_paths: svg ? [...svg.querySelectorAll('path')]
                              .filter(p => ((p.getAttribute('d') || '').match(/L/g) || []).length > 40).length : 0};
})
"""
TABLE_JS = """
(() => { const t = document.querySelector('#comparison table');
  return [...t.querySelectorAll('tbody tr:not(.group)')].map(tr => [...tr.cells].map(td => td.textContent.trim())); })()
"""
HEADERS_JS = ("[...document.querySelector('#comparison table').querySelectorAll('thead th')]"
              ".map(th => th.title.split(':')[0])")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module: required under CI=true, skipped elsewhere when absent."""
    executable = find()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (required under CI=true; .ci/run installs Debian's package)")
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    with Browser(executable) as b:
        yield b


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _pixels(png: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    counts = {rgb: n for n, rgb in image.getcolors(maxcolors=1 << 24)}
    return image.size, counts


def _expected_plots(result) -> list[str]:
    table = result.table
    names = ["metrics"]
    if any(c.startswith("observed_") for c in table.columns):
        names.append("observed")
    for s in dict.fromkeys(table["scenario"]):
        if int(table.loc[table["scenario"] == s, "instruments"].iloc[0]) > 1:  # several: their figures first
            names += [f"{kind}:{s}" for kind in PER_INSTRUMENT]
        names += [f"{kind}:{s}" for kind in PER_SCENARIO]
    return names


def _check_page(browser: Browser, path: Path, result, extra_js: str = "null") -> tuple[dict, object]:
    """Load ``path`` and check what a reader sees; returns the plots' geometry by name and the
    value of ``extra_js`` in the page."""
    text = path.read_text(encoding="utf-8")
    assert REMOTE.search(text) is None, f"remote resource: {REMOTE.search(text).group(0)!r}"
    assert "<script" not in text.lower() and "<link" not in text.lower()

    page = browser.load(path)
    try:
        assert page.problems() == []
        plots = page.evaluate(PLOTS_JS)
        assert [p["name"] for p in plots] == _expected_plots(result)
        designs = list(dict.fromkeys(result.table["design"]))
        for p in plots:
            assert p["shown"], p
            assert p["width"] >= 600 and p["height"] >= 150, p  # laid out at a readable size
            assert p["paths"] > 0, p
            if p["name"].startswith("prices:"):  # tape and simulated price drawn as lines with many points
                assert p["long_paths"] >= len(designs), p
            png = page.screenshot({"x": p["x"], "y": p["y"], "width": p["width"], "height": p["height"],
                                   "scale": 1})
            (w, h), counts = _pixels(png)
            assert abs(w - p["width"]) <= 1 and abs(h - p["height"]) <= 1
            white = counts.get((255, 255, 255), 0)
            assert 1 - white / (w * h) > 0.02, f"{p['name']}: the plot looks blank"
            assert len(counts) > 20, f"{p['name']}: only {len(counts)} colours"
            if p["name"] in ("metrics", "observed") or p["name"].startswith("instruments:"):  # every design's bars
                for design, colour in report.design_colours(designs).items():
                    assert counts.get(_rgb(colour), 0) > 50, f"{p['name']}: no bars of {design} ({colour})"
            if p["name"] == "observed":
                assert counts.get(_rgb(report.OBSERVED_COLOUR), 0) > 50, "no observed bars"

        rows = page.evaluate(TABLE_JS)
        headers = page.evaluate(HEADERS_JS)
        assert len(rows) == len(result.table)  # one row per scenario x design
        # the key columns the report promises, each once (scenario heads its group of rows)
        assert headers == [c for c in report.KEY_COLUMNS if c in result.table.columns and c != "scenario"]
        for shown, (_, expected) in zip(rows, result.table.iterrows(), strict=True):
            assert shown == [expected[c] if c == "design" else report.cell(c, expected[c]) for c in headers]
        return {p["name"]: p for p in plots}, page.evaluate(extra_js)
    finally:
        page.close()


# ------------------------------------------------------------------------------ unit level
def test_downsample_keeps_wicks_and_order():
    rng = np.random.default_rng(3)
    y = 100 + np.cumsum(rng.normal(0, 0.01, 200_000))
    y[123_457] -= 30  # a one-sample wick
    y[77_001] += 25
    x = np.arange(len(y))
    xs, ys = report.downsample(x, y, 1_000)
    assert len(xs) <= 1_002
    assert np.all(np.diff(xs) > 0)
    assert ys.min() == y.min() and ys.max() == y.max()
    assert 123_457 in xs and 77_001 in xs
    assert xs[0] == 0 and xs[-1] == len(y) - 1
    np.testing.assert_array_equal(ys, y[xs])
    short = np.arange(10.0)
    assert report.downsample(short, short, 1_000)[0] is short


def test_cells_are_readable():
    assert report.cell("liquidated_notional", 242_681_974.3) == "242.7M"
    assert report.cell("liquidations", np.int64(25_979)) == "25,979"
    assert report.cell("bad_debt", 91_711.2) == "91,711"
    assert report.cell("bad_debt", 368_512.0) == "368.5k"
    assert report.cell("fund_paid_out", 2.2e-9) == "0"
    assert report.cell("tape_drawdown", 0.17234) == "17.23%"
    assert report.cell("first_adl_s", 3_749.26) == "3,749.3"
    assert report.cell("amplification", float("nan")) == "–"
    assert report.label("first_adl_delay_s") == "first ADL delay (s)"
    # a rate per second is not a duration
    assert report.cell("ticks_per_s", 60_400_000.0) == "60.4M"
    assert report.label("ticks_per_s") == "ticks per s"


def test_render_small_run_is_offline_and_repeatable():
    loaded = config.parse({"scenario": {"name": "tiny <crash>", "synthetic": {"ticks": 3_000, "seed": 1}},
                           "population": {"accounts": 800, "seed": 2}, "liquidity": {"depth_per_pct": 2e5},
                           "venues": [{"preset": "hyperliquid"}, {"preset": "binance-usdm"}]})
    result = backtest.run_config(loaded)
    first = report.render(result, title="a & b")
    assert first == report.render(result, title="a & b")  # same result, same bytes
    assert "http://" not in first and "https://" not in first
    assert "<h1>a &amp; b</h1>" in first and "tiny &lt;crash&gt;" in first  # text escaped
    assert [html.unescape(n) for n in re.findall(r'data-plot="([^"]+)"', first)] == _expected_plots(result)



def test_report_says_when_a_fund_or_vault_went_below_zero_and_why():
    """A fund or vault below zero is a loss nobody else covered: the report says which, how low
    and why, in a sentence under the comparison table (``metrics.negative_balance_notes``)."""
    loaded = config.parse({"scenario": {"name": "tiny", "synthetic": {"ticks": 3_000, "seed": 1}},
                           "population": {"accounts": 800, "seed": 2}, "liquidity": {"depth_per_pct": 2e5},
                           "venues": [
                               {"preset": "hyperliquid", "name": "vault-0"},
                               {"preset": "hyperliquid", "name": "vault-x3",
                                "backstop": {"vault_balance": 1e4, "loss_limit_share": 3.0}},
                               {"preset": "binance-usdm", "name": "fund-1x", "fund": {"initial": 1e5}},
                               {"preset": "binance-usdm", "name": "fund-unlimited",
                                "fund": {"initial": 1e5, "capacity": None}}]})
    result = backtest.run_config(loaded)
    table = result.table.set_index("design")
    assert table.loc["vault-0", "vault_min"] < 0 and table.loc["vault-x3", "vault_min"] < 0
    assert table.loc["fund-unlimited", "fund_min"] < 0
    assert table.loc["fund-1x", "fund_min"] >= 0 and table.loc["fund-1x", "vault_min"] >= 0
    page = html.unescape(report.render(result))
    notes = re.findall(r'<p class="note">([^<]*below zero[^<]*)</p>', page)
    assert [n.split(" (tiny)")[0] for n in notes] == ["vault-0", "vault-x3", "fund-unlimited"]
    low = f"{table.loc['vault-0', 'vault_min']:,.0f}"
    assert f"backstop vault's equity went below zero (lowest {low}, from a start of 0)" in notes[0]
    assert "the step that took its loss past its threshold (0;" in notes[0]
    assert "its loss threshold, 30,000, is above its balance" in notes[1]
    assert "the insurance fund went below zero" in notes[2] and "inventory it took over" in notes[2]

# ------------------------------------------------------------------------------- in Chromium
def test_default_report_in_chromium(browser, tmp_path):
    result = backtest.run_config(config.load_default())
    out = backtest.write_outputs(result, tmp_path / "out", title="riskengine report: default")
    path = out / "report.html"
    assert sorted(p.name for p in out.iterdir()) == sorted(backtest.OUTPUT_FILES)
    assert path.stat().st_size < 1_000_000  # the README says under 1 MB
    plots, _ = _check_page(browser, path, result)
    assert len(plots) == 1 + len(PER_SCENARIO)


def test_replay_report_shows_observed_beside_simulated(browser, shared_data, tmp_path):
    result = backtest.run_config(config.load(HYPERLIQUID))
    path = tmp_path / "report.html"
    path.write_text(report.render(result, title="hyperliquid", source=str(HYPERLIQUID)), encoding="utf-8")
    plots, rows = _check_page(browser, path, result,
                              "[...document.querySelectorAll('#observed table tbody tr')]"
                              ".map(tr => [...tr.cells].slice(-4).map(td => td.textContent.trim()))")
    assert "observed" in plots and len(plots) == 2 + 3 * len(PER_SCENARIO)
    pairs = [c for c in observed.COLUMNS if c.name in result.table.columns]
    currency = metrics.table_currency(result.table)
    expected = [[report.label(c.simulated, currency), report.cell(c.simulated, row[c.simulated]),
                 report.cell(c.name, row[c.name])] for _, row in result.table.iterrows() for c in pairs]
    assert [r[:3] for r in rows] == expected
    # the sim/obs ratio, worked out here from the table's own figures
    figures = [(float(row[c.simulated]), float(row[c.name])) for _, row in result.table.iterrows() for c in pairs]
    assert all(obs > 0 for _, obs in figures)  # every observed figure here is a positive number
    assert [r[3] for r in rows] == ["–" if math.isnan(sim) else f"{sim / obs:.2f}×" for sim, obs in figures]


def _portfolio_config(modes=("cross", "isolated")):
    """Three synthetic instruments and a generated portfolio (accounts holding up to three, cross
    and isolated), under Hyperliquid with each margin mode of ``modes``."""
    instruments = [{"symbol": sym, "synthetic": {"ticks": 2_000, "start_price": price, "drop": drop, "seed": k}}
                   for k, (sym, price, drop) in enumerate((("BTCUSDT", 121_700.0, 0.15), ("ETHUSDT", 4_300.0, 0.2),
                                                          ("SOLUSDT", 220.0, 0.25)))]
    return config.parse({
        "scenario": {"name": "three <coins>", "instruments": instruments,
                     "portfolio": {"accounts": 1_500, "open_interest_usd": [3e7, 2e7, 1e7], "max_leverage": [40, 25, 20],
                                   "holdings": [0.5, 0.3, 0.2], "cross_share": 0.5, "seed": 4}},
        "liquidity": {"depth_per_pct": 2e6},
        "venues": [{"preset": "hyperliquid", "name": f"hl-{mode}", "margin_mode": mode,
                    "backstop": {"vault_balance": 1e6}} for mode in modes]})


def test_a_portfolio_report_shows_each_instruments_figures(browser, tmp_path):
    result = backtest.run_config(_portfolio_config())
    scenario = result.table["scenario"].iloc[0]
    path = tmp_path / "report.html"
    path.write_text(report.render(result, title="portfolio"), encoding="utf-8")
    anchor = report._anchor(scenario) + "-instruments"
    plots, rows = _check_page(browser, path, result,
                              f"[...document.getElementById('{anchor}').nextElementSibling.nextElementSibling"
                              ".querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(td => td.textContent.trim()))")
    assert f"instruments:{scenario}" in plots and f"instrument-prices:{scenario}" in plots
    # one row per instrument x design: the instruments in the scenario's order, the designs in the
    # comparison's, each cell the by-instrument figure as the report writes it
    by = result.by_instrument
    columns = [c for c in report.INSTRUMENT_TABLE_COLUMNS if c in by.columns]
    expected = [[str(row[c]) if c in ("symbol", "design") else report.cell(c, row[c]) for c in columns]
                for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT") for design in ("hl-cross", "hl-isolated")
                for _, row in by[(by["symbol"] == sym) & (by["design"] == design)].iterrows()]
    assert len(expected) == 6 and rows == expected
    assert by["liquidations"].gt(0).all()  # every bar of the figure is drawn (the colour check above)
    page = path.read_text(encoding="utf-8")
    assert "The first instrument, BTCUSDT: Tape price" in page


def test_a_single_instrument_report_has_no_per_instrument_section():
    loaded = config.parse({"scenario": {"name": "one", "synthetic": {"ticks": 2_000, "seed": 1}},
                           "population": {"accounts": 300, "seed": 2}, "venues": [{"preset": "hyperliquid"}]})
    page = report.render(backtest.run_config(loaded))
    assert "Per instrument" not in page and 'data-plot="instruments:' not in page


def test_harness_reports_console_errors_and_network(browser, tmp_path):
    """The checks above can fail: a page with a console error, an exception and a remote image."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!doctype html><p>x</p><img src="https://example.invalid/x.png">'
                   '<script>console.error("boom"); missing_function();</script>', encoding="utf-8")
    assert REMOTE.search(bad.read_text()) is not None
    page = browser.load(bad)
    problems = page.problems()
    page.close()
    assert any(p == "console.error: boom" for p in problems), problems
    assert any(p.startswith("exception: ReferenceError") for p in problems), problems
    assert any(p == "network request: https://example.invalid/x.png" for p in problems), problems
