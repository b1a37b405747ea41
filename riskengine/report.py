"""``report.html``: one self-contained HTML page per run — the comparison table and the plots.

Everything is inline (CSS, and the plots as SVG drawn by matplotlib without pyplot, so no GUI
backend and no global state), nothing is fetched from the network, and there is no script.
Long series are downsampled per bucket to their minimum and maximum, so wicks survive and
the file stays small. The same result gives the same bytes.

>>> from riskengine import backtest, config, report
>>> loaded = config.parse({"scenario": {"name": "demo", "synthetic": {"ticks": 2_000}},
...                        "population": {"accounts": 500}, "venues": [{"preset": "hyperliquid"}]})
>>> page = report.render(backtest.run_config(loaded), title="demo")
>>> page.startswith("<!doctype html>") and "http://" not in page and "https://" not in page
True
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
from collections.abc import Callable, Sequence

import matplotlib
import matplotlib.colors
import matplotlib.lines
import matplotlib.patches
import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from riskengine import __version__, metrics, observed
from riskengine.codes import EventKind
from riskengine.engine import Result

#: result-table columns shown in the report's comparison table (all are under "All columns")
KEY_COLUMNS = (
    "scenario", "design", "liquidations", "liquidated_notional", "partial_liquidations",
    "backstop_liquidations", "bad_debt", "fund_min", "fund_end", "vault_pnl", "vault_min", "adl_fills", "adl_notional",
    "adl_overshoot", "sim_drawdown", "amplification",
)
#: the per-design bars: column and panel title
BAR_METRICS = (
    ("liquidated_notional", "liquidated notional"),
    ("adl_notional", "ADL notional"),
    ("bad_debt", "bad debt"),
    ("fund_paid_out", "insurance fund paid out"),
    ("vault_pnl", "backstop vault PnL"),
    ("amplification", "amplification"),
)
#: per-instrument table of a scenario with several instruments (``results_by_instrument``)
INSTRUMENT_TABLE_COLUMNS = (
    "symbol", "design", "positions", "liquidations", "liquidated_notional", "accounts_liquidated",
    "backstop_liquidations", "adl_notional", "bad_debt", "fund_paid_out", "tape_drawdown", "sim_drawdown",
    "first_liquidation_s",
)
#: per-instrument bars: column and panel title
INSTRUMENT_BAR_METRICS = (
    ("liquidated_notional", "liquidated notional"),
    ("adl_notional", "ADL notional"),
    ("bad_debt", "bad debt"),
)
#: columns shown as percentages
PERCENT_COLUMNS = ("tape_drawdown", "sim_drawdown", "liquidation_volume_share", "adl_max_haircut_share")
#: most points drawn per line; longer series are downsampled to bucket minima and maxima
MAX_POINTS = 600

_DESCRIPTIONS = {c.name: c.meaning for c in metrics.COLUMNS} | {
    c.name: "; ".join(filter(None, (f"observed: {c.description}", metrics.UNITS[metrics.unit_of(c.name)][0])))
    for c in observed.COLUMNS}
#: the per-instrument table's column meanings (its bad_debt is the instrument's part)
_INSTRUMENT_DESCRIPTIONS = _DESCRIPTIONS | {c.name: c.meaning for c in metrics.INSTRUMENT_COLUMNS}
_TAPE_COLOUR = "#9a9a9a"
#: fill of the observed figures' bars (hatched)
OBSERVED_COLOUR = "#3b3b3b"
_WIDTH_IN = 11.0  # figure width in inches; the page scales the SVG to its column


# ------------------------------------------------------------------------------- numbers
def compact(value: float, thousands_from: float = 1e5) -> str:
    """A short readable number: ``242.7M``, ``88.89k``, ``1,234``, ``0.1723``; ``–`` for NaN,
    ``0`` for float noise below 1e-6. ``k`` is used from ``thousands_from`` on."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    v = float(value)
    a = abs(v)
    if a < 1e-6:
        return "0"
    for limit, scale, suffix in ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"), (thousands_from, 1e3, "k")):
        if a >= limit:
            return f"{v / scale:.4g}{suffix}"
    if a >= 1000 or v.is_integer():
        return f"{v:,.0f}"
    return f"{v:.4g}"


def cell(column: str, value) -> str:
    """One table cell's text for a column of the result table."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if math.isnan(value):
        return "–"
    if column in PERCENT_COLUMNS:
        return f"{value * 100:.2f}%"
    if _is_seconds(column):
        return f"{value:,.1f}"
    return compact(value)


_WORDS = {"adl": "ADL", "pnl": "PnL", "sim": "sim."}


def _is_seconds(column: str) -> bool:
    """A duration in seconds (``first_adl_delay_s``), not a rate (``ticks_per_s``)."""
    return column.endswith("_s") and not column.endswith("_per_s")


def label(column: str, currency: str = metrics.UNKNOWN_CURRENCY) -> str:
    """A column name as words with its unit (:func:`riskengine.metrics.unit_label`):
    ``first_adl_delay_s`` -> ``first ADL delay (s)``, ``bad_debt`` -> ``bad debt (USDT)`` with
    ``currency`` USDT, ``tape_drawdown`` -> ``tape drawdown (%)`` (shown as a percentage),
    ``ticks_per_s`` -> ``ticks per s`` (the name says its unit)."""
    words = column.split("_")
    if _is_seconds(column):
        words = words[:-1]
    if column in PERCENT_COLUMNS:
        unit = "%"
    else:
        unit = None if column.endswith("_per_s") else metrics.unit_label(column, currency)
    text = " ".join(_WORDS.get(w, w) for w in words)
    return f"{text} ({unit})" if unit else text


def _axis_formatter(percent: bool = False) -> FuncFormatter:
    if percent:
        return FuncFormatter(lambda v, _: f"{v * 100:.0f}%")
    return FuncFormatter(lambda v, _: compact(v, thousands_from=1e3))


# ------------------------------------------------------------------------------ series
def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points of a line: in each of ``max_points / 2`` equal-count
    buckets, the points where ``y`` is lowest and highest (in time order), plus the ends.

    Unlike taking every n-th point, this keeps one-tick wicks and jumps visible.
    """
    n = len(y)
    if n <= max_points:
        return x, y
    buckets = max(max_points // 2, 1)
    k = -(-n // buckets)
    buckets = -(-n // k)
    values = np.asarray(y, dtype=np.float64)
    low = np.full(buckets * k, np.inf)
    high = np.full(buckets * k, -np.inf)
    finite = np.isfinite(values)
    low[:n] = np.where(finite, values, np.inf)
    high[:n] = np.where(finite, values, -np.inf)
    base = np.arange(buckets) * k
    keep = np.concatenate([[0, n - 1], base + low.reshape(buckets, k).argmin(axis=1),
                           base + high.reshape(buckets, k).argmax(axis=1)])
    keep = np.unique(np.minimum(keep, n - 1))
    return x[keep], y[keep]


def design_colours(designs: Sequence[str]) -> dict[str, str]:
    """Each design's colour (``#rrggbb``, matplotlib's tab10 in order), the same in every plot
    and table of a report."""
    palette = matplotlib.colormaps["tab10"].colors
    return {d: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, d in enumerate(designs)}


def _instrument_prices(result: Result) -> dict[str, pd.DataFrame]:
    """Each scenario of several instruments: its instruments' tape prices as sampled in its first
    design's run (the tape is the same in every run), one frame with columns ``time``,
    ``instrument`` and ``tape_price``."""
    frame = result.series.to_pandas()
    if "instrument" not in frame.columns:
        return {}
    out = {}
    for scenario, part in frame.groupby("scenario", sort=False):
        if part["instrument"].nunique() < 2:
            continue
        part = part[part["design"] == part["design"].iloc[0]]
        out[scenario] = pd.DataFrame({"time": pd.to_datetime(part["ts"], unit="ns"),
                                      "instrument": part["instrument"].astype(int), "tape_price": part["tape_price"]})
    return out


def _collateral_frames(result: Result, scenario: str, by_instrument: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The value of each collateral asset the accounts hold in a scenario, per design: its series
    rows' mark (the asset's price as the design values it, index x ratio) x long open interest
    (the amount held), keyed by symbol (empty without collateral assets)."""
    rows = by_instrument[(by_instrument["scenario"] == scenario)
                         & by_instrument["margin_source"].str.startswith(metrics.COLLATERAL_SOURCE)] \
        if {"scenario", "margin_source"} <= set(by_instrument.columns) else by_instrument.iloc[:0]
    if rows.empty:
        return {}
    series = result.series.to_pandas()
    series = series[series["scenario"] == scenario]
    out = {}
    for instrument, symbol in dict(zip(rows["instrument"], rows["symbol"])).items():
        part = series[(series["instrument"] == instrument) & series["mark"].notna()]  # NaN before its first print
        out[symbol] = pd.DataFrame({"design": part["design"], "time": pd.to_datetime(part["ts"], unit="ns"),
                                    "value": part["mark"] * part["long_oi"]})
    return out


def _funding_frame(result: Result, scenario: str) -> pd.DataFrame | None:
    """Cumulative funding the population paid over time, per design (FUNDING event rows: each
    row's ``amount`` is what an instrument's modelled positions paid the rest of the market);
    None when the scenario's runs paid none."""
    events = result.events
    if "kind" not in events.column_names or events.num_rows == 0:
        return None
    ev = events.to_pandas()
    ev = ev[(ev["scenario"] == scenario) & (ev["kind"] == int(EventKind.FUNDING))]
    if ev.empty:
        return None
    ev = ev.sort_values("ts", kind="stable")
    return pd.DataFrame({"design": ev["design"], "time": pd.to_datetime(ev["ts"], unit="ns"),
                         "paid": ev.groupby("design")["amount"].cumsum()})


def _per_design_figure(frame: pd.DataFrame, column: str, designs: Sequence[str], colours: dict, title: str,
                       max_points: int, ax=None) -> Figure | None:
    """One panel: ``column`` of ``frame`` over time, a line per design."""
    fig = None
    if ax is None:
        fig, axes = _figure(1, 1, 3.0)
        ax = axes[0]
    for design in designs:
        part = frame[frame["design"] == design]
        if not part.empty:
            _line(ax, part, column, max_points, color=colours[design], linewidth=1.3, label=design)
    _style(ax, title, time_axis=True)
    if len(designs) > 1:
        ax.legend(fontsize=8, loc="best", frameon=False)
    return fig


def _collateral_figure(values: dict[str, pd.DataFrame], designs: Sequence[str], colours: dict, currency: str,
                       max_points: int) -> Figure:
    """A panel per collateral asset: the value of the holdings over time, per design."""
    fig, axes = _figure(1, len(values), 3.0)
    for ax, (symbol, frame) in zip(axes, values.items()):
        _per_design_figure(frame, "value", designs, colours, f"{symbol} held, valued at index x ratio ({currency})",
                           max_points, ax=ax)
    return fig


def _frames(result: Result) -> dict[tuple[str, str], pd.DataFrame]:
    """Each run's series as a frame (time as UTC datetime64), keyed by (scenario, design). A run
    of several instruments samples a row per instrument: its first instrument's rows are drawn
    (the fund, the vault and the cumulative counts are the run's on every row; each instrument's
    own figures are in ``results_by_instrument.parquet``)."""
    frame = result.series.to_pandas()
    if "instrument" in frame.columns:
        frame = frame[frame["instrument"].fillna(0) == 0]
    frame["time"] = pd.to_datetime(frame["ts"], unit="ns")
    return {key: part for key, part in frame.groupby(["scenario", "design"], sort=False)}


# ------------------------------------------------------------------------------- figures
_DECIMALS = re.compile(r"(\.\d\d)\d+")


def _svg(fig: Figure, salt: str) -> str:
    """The figure as inline SVG: text kept as text (small), clip-path ids salted per figure
    (several SVGs share one page), no date (same result, same bytes), no XML prologue."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # inline SVG in HTML needs no namespaces; the metadata block and comment only name matplotlib
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=3)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.DOTALL)
    # path coordinates to 0.01 pt (matplotlib writes 6 decimals): a third of the bytes
    return re.sub(r' d="[^"]*"', lambda m: _DECIMALS.sub(r"\1", m.group(0)), text)


def _figure(rows: int, cols: int, height_per_row: float, sharex: bool = False) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(_WIDTH_IN, height_per_row * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=sharex, squeeze=False)).ravel()
    return fig, axes


def _style(ax, title: str, percent: bool = False, time_axis: bool = False) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if time_axis:
        locator = AutoDateLocator(minticks=4, maxticks=8, tz=dt.timezone.utc)  # times are UTC, whatever the rc
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=dt.timezone.utc))
        ax.yaxis.set_major_formatter(_axis_formatter(percent))
    else:
        ax.xaxis.set_major_formatter(_axis_formatter(percent))


def _line(ax, frame: pd.DataFrame, column: str, max_points: int, **style) -> None:
    """One series as steps: a value holds until the next sample (the tape may pause for
    minutes; a sloped line would invent prices and liquidations inside the pause)."""
    x, y = downsample(frame["time"].to_numpy(), frame[column].to_numpy(), max_points)
    ax.plot(x, y, drawstyle="steps-post", **style)


def _all_zero(frames: Sequence[pd.DataFrame], column: str) -> bool:
    return all(not np.any(f[column].to_numpy()) for f in frames)


def _price_figure(frames: dict, scenario: str, designs: Sequence[str], colours: dict, max_points: int,
                  currency: str = metrics.UNKNOWN_CURRENCY) -> Figure:
    cols = 1 if len(designs) == 1 else 2
    rows = -(-len(designs) // cols)
    fig, axes = _figure(rows, cols, 3.0 if cols == 2 else 3.4, sharex=True)
    for ax in axes[len(designs):]:
        ax.set_visible(False)
    for ax in axes[len(designs) - cols:len(designs)]:  # the lowest panel of each column keeps its times
        ax.tick_params(labelbottom=True)
    for ax, design in zip(axes, designs):
        frame = frames[(scenario, design)]
        _line(ax, frame, "tape_price", max_points, color=_TAPE_COLOUR, linewidth=1.6, label="tape")
        _line(ax, frame, "mark", max_points, color="#222222", linewidth=0.8, linestyle=(0, (3, 2)), label="mark")
        _line(ax, frame, "sim_price", max_points, color=colours[design], linewidth=1.0, label="simulated")
        _style(ax, design, time_axis=True)
        ax.set_ylabel(f"price ({currency})", fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))
        ax.legend(fontsize=8, loc="best", frameon=False)
    return fig


def _time_panels(frames: dict, scenario: str, designs: Sequence[str], colours: dict, max_points: int,
                 panels: Sequence[tuple[str, str]]) -> Figure:
    fig, axes = _figure(1, len(panels), 3.2, sharex=True)
    for ax, (column, title) in zip(axes, panels):
        for design in designs:
            _line(ax, frames[(scenario, design)], column, max_points, color=colours[design], linewidth=1.3,
                  label=design)
        _style(ax, title, time_axis=True)
        if _all_zero([frames[(scenario, d)] for d in designs], column):  # say so, not a ±0.04 axis
            ax.set_ylim(-1, 1)
            ax.set_yticks([0])
            ax.text(0.5, 0.6, "zero throughout", transform=ax.transAxes, ha="center", color="#666666", fontsize=9)
    if len(designs) > 1:
        fig.legend(handles=[matplotlib.lines.Line2D([], [], color=colours[d], label=d) for d in designs],
                   loc="outside upper center", ncols=min(len(designs), 6), fontsize=8, frameon=False)
    return fig


def _bars(ax, table: pd.DataFrame, column: str, colours: dict, scenarios: Sequence[str],
          designs: Sequence[str], observed_column: str | None = None) -> None:
    """Horizontal bars: one group per scenario (one bar per design, and the observed figure
    first when given), the value written at each bar's end; a panel where every value is 0
    says so once instead."""
    per_group = len(designs) + (observed_column is not None)
    height = 0.8 / per_group
    labels, ticks = [], []
    bars: list[tuple[float, str, float, str, str | None]] = []  # y, name, value, colour, hatch
    for g, scenario in enumerate(scenarios):
        rows = table[table["scenario"] == scenario].set_index("design")
        group: list[tuple[str, float, str, str | None]] = []
        if observed_column is not None:
            group.append(("observed", float(rows[observed_column].iloc[0]), OBSERVED_COLOUR, "//"))
        group += [(d, float(rows.loc[d, column]), colours[d], None) for d in designs if d in rows.index]
        for b, (name, value, colour, hatch) in enumerate(group):
            y = g + (b - (per_group - 1) / 2) * height
            bars.append((y, name, value, colour, hatch))
            if len(scenarios) == 1:
                labels.append(name)
                ticks.append(y)
        if len(scenarios) > 1:
            labels.append(scenario)
            ticks.append(g)
    shown = [0.0 if math.isnan(v) or abs(v) < 1e-6 else v for _, _, v, _, _ in bars]
    all_zero = not any(shown)
    for (y, _, value, colour, hatch), x in zip(bars, shown):
        ax.barh(y, x, height=height * 0.9, color=colour, hatch=hatch, edgecolor="white" if hatch else None,
                linewidth=0)
        if not all_zero:
            ax.annotate(compact(value) if not math.isnan(value) else "n/a", (x, y),
                        xytext=(-3 if x < 0 else 3, 0), textcoords="offset points", va="center",
                        ha="right" if x < 0 else "left", fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.invert_yaxis()
    if all_zero:
        ax.set_xlim(-1, 1)
        ax.set_xticks([0])
        ax.text(0.5, 0.5, "0 in every run" if not any(math.isnan(v) for _, _, v, _, _ in bars) else "0 or n/a",
                transform=ax.transAxes, ha="center", va="center", color="#666666", fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "none"})
        return
    # room for the value labels on both sides of zero
    low, high = min(shown + [0.0]), max(shown + [0.0])
    span = high - low
    ax.set_xlim(low - 0.35 * span if low < 0 else 0, high + 0.3 * span if high > 0 else 0.05 * span)
    ax.axvline(0, color="#888888", linewidth=0.6)


def _bar_figure(table: pd.DataFrame, scenarios: Sequence[str], designs: Sequence[str], colours: dict,
                metrics_: Sequence[tuple[str, str]], observed_pairs: dict | None = None) -> Figure:
    cols = 3 if len(metrics_) > 4 and len(scenarios) == 1 else 2  # scenario names need the width
    rows = -(-len(metrics_) // cols)
    group = len(designs) + (observed_pairs is not None)
    height = max(2.4, 0.55 + 0.17 * group * len(scenarios) + 0.15 * len(scenarios))
    fig, axes = _figure(rows, cols, height)
    for ax in axes[len(metrics_):]:
        ax.set_visible(False)
    currency = metrics.table_currency(table)
    for ax, (column, title) in zip(axes, metrics_):
        _bars(ax, table, column, colours, scenarios, designs,
              None if observed_pairs is None else observed_pairs[column])
        _style(ax, _with_unit(title, column, currency), percent=column in PERCENT_COLUMNS)
        if column == "amplification":  # 1: the design moved the price exactly as the tape did
            ax.axvline(1.0, color="#444444", linewidth=0.8, linestyle=(0, (3, 2)))
    handles = [matplotlib.patches.Patch(color=colours[d], label=d) for d in designs]
    if observed_pairs is not None:
        handles.insert(0, matplotlib.patches.Patch(facecolor=OBSERVED_COLOUR, hatch="//", edgecolor="white",
                                                   label="observed"))
    if len(scenarios) > 1 or observed_pairs is not None:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8,
                   frameon=False)
    return fig


def _instrument_bar_figure(rows: pd.DataFrame, symbols: Sequence[str], designs: Sequence[str],
                           colours: dict) -> Figure:
    """One scenario's per-instrument figures (:data:`INSTRUMENT_BAR_METRICS`): a panel per
    figure, a group of bars per instrument (one bar per design)."""
    by_symbol = rows.assign(scenario=rows["symbol"])  # _bars groups by its scenario column
    metrics_ = [(c, t) for c, t in INSTRUMENT_BAR_METRICS if c in rows.columns]
    fig, axes = _figure(1, len(metrics_), max(2.6, 0.7 + 0.13 * len(designs) * len(symbols) + 0.12 * len(symbols)))
    currency = metrics.table_currency(rows)
    for ax, (column, title) in zip(axes, metrics_):
        _bars(ax, by_symbol, column, colours, symbols, designs)
        _style(ax, _with_unit(title, column, currency))
    fig.legend(handles=[matplotlib.patches.Patch(color=colours[d], label=d) for d in designs],
               loc="outside lower center", ncols=min(len(designs), 6), fontsize=8, frameon=False)
    return fig


def _instrument_price_figure(frame: pd.DataFrame, symbols: Sequence[str], max_points: int) -> Figure:
    """Each instrument's tape price relative to its first sampled price (one line each), so
    instruments of any price level share one axis."""
    fig, axes = _figure(1, 1, 3.6)
    ax = axes[0]
    tab20 = matplotlib.colormaps["tab20"].colors
    palette = tab20[0::2] + tab20[1::2]  # the ten strong colours before their light twins
    for k, symbol in enumerate(symbols):
        part = frame[(frame["instrument"] == k) & frame["tape_price"].notna()]  # NaN before its first trade
        if part.empty:
            continue
        price = part["tape_price"].to_numpy(dtype=np.float64)
        x, y = downsample(part["time"].to_numpy(), price / price[0] - 1.0, max_points)
        ax.plot(x, y, drawstyle="steps-post", color=palette[k % len(palette)], linewidth=1.0, label=symbol)
    _style(ax, "tape price against its first sample (%)", percent=True, time_axis=True)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.3g}%"))  # ticks at 2.5% steps too
    fig.legend(loc="outside lower center", fontsize=7, frameon=False, ncols=min(len(symbols), 8))  # off the lines
    return fig


# ---------------------------------------------------------------------------------- HTML
_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d1d1f; background: #fff; margin: 0 auto; padding: 1.2rem 1.4rem 3rem; max-width: 1240px; }
h1 { font-size: 1.55rem; margin: 0 0 .2rem; }
h2 { font-size: 1.2rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
p.meta, p.note, figcaption { color: #555; font-size: .88rem; }
nav { font-size: .88rem; margin: .6rem 0 0; }
nav a { margin-right: .9rem; }
a { color: #1f5fa8; text-decoration: none; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .76rem; font-variant-numeric: tabular-nums; margin: .3rem 0; }
th, td { padding: .28rem .38rem; border-bottom: 1px solid #ececec; white-space: nowrap; }
th { background: #f6f6f8; text-align: right; vertical-align: bottom; font-weight: 600; white-space: normal;
     min-width: 3rem; max-width: 5.4rem; }
th.text, td.text { text-align: left; }
td.design { min-width: 9rem; }
tr.group td { background: #fafafa; font-weight: 600; padding-top: .5rem; }
td { text-align: right; }
tbody tr:hover { background: #f3f7fc; }
.swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .35rem;
          vertical-align: -.05rem; }
figure.plot { margin: .8rem 0 1.2rem; }
figure.plot svg { display: block; width: 100%; height: auto; }
details { margin: .5rem 0; }
summary { cursor: pointer; color: #1f5fa8; font-size: .88rem; }
dl.columns { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; font-size: .82rem; }
dl.columns dt { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
dl.columns dd { margin: 0; color: #444; }
.over { color: #b3261e; font-weight: 600; }
.under { color: #1f5fa8; font-weight: 600; }
footer { margin-top: 3rem; color: #888; font-size: .8rem; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _anchor(name: str) -> str:
    return "scenario-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def _with_unit(title: str, column: str, currency: str) -> str:
    """A plot title with the unit of the column it draws: ``bad debt (USDT)``."""
    unit = "%" if column in PERCENT_COLUMNS else metrics.unit_label(column, currency)
    return f"{title} ({unit})" if unit and not title.endswith(f"({unit})") else title


def _table(table: pd.DataFrame, columns: Sequence[str], colours: dict, by_scenario: bool = False,
           descriptions: dict[str, str] = _DESCRIPTIONS) -> str:
    """An HTML table of ``columns``, one row per run; ``by_scenario``: the scenario as a heading
    row above its runs instead of a column (narrower); ``descriptions``: the headers' meanings."""
    if by_scenario:
        columns = [c for c in columns if c != "scenario"]
    text = {c for c in columns if not pd.api.types.is_numeric_dtype(table[c])}  # left-aligned
    currency = metrics.table_currency(table)
    head = "".join(
        f'<th class="{"text" if c in text else "num"}" title="{_e(c)}: '
        f'{_e(descriptions.get(c, c))}">{_e(label(c, currency))}</th>' for c in columns)
    body = []
    current = None
    for scenario, row in zip(table["scenario"], table[list(columns)].itertuples(index=False)):
        if by_scenario and scenario != current:
            current = scenario
            body.append(f'<tr class="group"><td class="text" colspan="{len(columns)}">'
                        f'<a href="#{_anchor(scenario)}">{_e(scenario)}</a></td></tr>')
        cells = []
        for c, v in zip(columns, row):
            if c == "design":
                cells.append(f'<td class="text design"><span class="swatch" style="background:{colours[v]}">'
                             f"</span>{_e(v)}</td>")
            elif c == "scenario":
                cells.append(f'<td class="text"><a href="#{_anchor(v)}">{_e(v)}</a></td>')
            elif c in text:
                cells.append(f'<td class="text">{_e(v)}</td>')
            else:
                full = f"{v:,.6f}".rstrip("0").rstrip(".") if isinstance(v, float) and not math.isnan(v) else v
                cells.append(f'<td title="{_e(full)}">{_e(cell(c, v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            f"</tbody></table></div>")


def _observed_table(table: pd.DataFrame, pairs: Sequence[observed.ObservedColumn], colours: dict) -> str:
    head = ('<th class="text">scenario</th><th class="text">design</th><th class="text">figure</th>'
            '<th>simulated</th><th>observed</th><th title="simulated / observed">sim / obs</th>')
    body = []
    currency = metrics.table_currency(table)
    for row in table.itertuples(index=False):
        r = row._asdict()
        for k, pair in enumerate(pairs):
            sim, obs = r[pair.simulated], r[pair.name]
            ratio = sim / obs if obs and not (math.isnan(sim) or math.isnan(obs)) else math.nan
            tone = "" if math.isnan(ratio) else (' class="over"' if ratio > 1.5 else
                                                 ' class="under"' if ratio < 1 / 1.5 else "")
            lead = (f'<td class="text" rowspan="{len(pairs)}"><a href="#{_anchor(r["scenario"])}">'
                    f'{_e(r["scenario"])}</a></td><td class="text" rowspan="{len(pairs)}">'
                    f'<span class="swatch" style="background:{colours[r["design"]]}"></span>{_e(r["design"])}</td>'
                    if k == 0 else "")
            body.append(f'<tr>{lead}<td class="text" title="{_e(pair.simulated)}: '
                        f'{_e(_DESCRIPTIONS[pair.simulated])}">{_e(label(pair.simulated, currency))}</td>'
                        f"<td>{_e(cell(pair.simulated, sim))}</td><td>{_e(cell(pair.name, obs))}</td>"
                        f'<td{tone}>{"–" if math.isnan(ratio) else f"{ratio:.2f}×"}</td></tr>')
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            f"</tbody></table></div>")


def _plot(name: str, svg: str, caption: str) -> str:
    return f'<figure class="plot" data-plot="{_e(name)}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'


def _columns_reference(columns: Sequence[str]) -> str:
    items = "".join(f"<dt>{_e(c)}</dt><dd>{_e(_DESCRIPTIONS.get(c, ''))}</dd>" for c in columns)
    return f'<dl class="columns">{items}</dl>'


def _margin_note(table: pd.DataFrame) -> str:
    """A note naming each run whose margin table is assumed, out of date or incomplete (empty when none)."""
    if metrics.MARGIN_SOURCE not in table.columns:
        return ""
    items = [f"<li>{_e(r.scenario)} · {_e(r.design)}: {_e(r.margin_source)}</li>"
             for r in table.itertuples(index=False)
             if metrics.margin_caveat(r.margin_source) or "(incomplete)" in r.margin_source]
    if not items:
        return ""
    return ('<p class="note" id="margin-caveats"><strong>Margin tables not the venue\'s on the replay date</strong> '
            "(assumed or out of date), or incomplete (column <code>margin_source</code>; the run's warnings say what "
            "is missing):</p><ul class=\"note\">"
            + "".join(items) + "</ul>")


def _instrument_section(scenario: str, rows: pd.DataFrame, symbols: Sequence[str], designs: Sequence[str],
                        colours: dict, plot: Callable[[str, Figure, str], str], prices: pd.DataFrame | None,
                        max_points: int) -> str:
    """A scenario of several instruments: its per-instrument table (``results_by_instrument``), a
    panel of bars per figure with a group per instrument, and each instrument's tape price."""
    order = {sym: k for k, sym in enumerate(symbols)}
    rank = {d: k for k, d in enumerate(designs)}
    rows = rows[rows["design"].isin(designs)]
    rows = rows.iloc[np.lexsort((rows["design"].map(rank).to_numpy(), rows["symbol"].map(order).to_numpy()))]
    columns = [c for c in INSTRUMENT_TABLE_COLUMNS if c in rows.columns]
    out = [f'<h3 id="{_anchor(scenario)}-instruments">Per instrument</h3>'
           '<p class="note">One row per instrument × design (<code>results_by_instrument.parquet</code>): each '
           "instrument's part of the run; counts and money sum over the instruments to the comparison's row. "
           "Hover a header for its meaning.</p>",
           _table(rows, columns, colours, descriptions=_INSTRUMENT_DESCRIPTIONS),
           plot(f"instruments:{scenario}", _instrument_bar_figure(rows, symbols, designs, colours),
                "Per instrument and design: where the liquidations, the auto-deleveraging and the bad debt "
                "happened.")]
    if prices is not None:
        out.append(plot(f"instrument-prices:{scenario}", _instrument_price_figure(prices, symbols, max_points),
                        "Each instrument's tape price relative to its first sample in the window."))
    return "".join(out)


def render(result: Result, title: str = "riskengine report", *, source: str | None = None,
           max_points: int = MAX_POINTS, progress: Callable[[str], None] | None = None) -> str:
    """The report of a run as one self-contained HTML page.

    Parameters
    ----------
    result : Result
        What :func:`riskengine.backtest.run_config` (or :func:`riskengine.run`) returned.
    title : str
        Page title and heading.
    source : str, optional
        Where the run came from (e.g. the config file), shown under the heading.
    max_points : int
        Most points per plotted line (:func:`downsample`).
    progress : callable, optional
        Called with a line per scenario before it is drawn.

    Returns
    -------
    str
        The HTML document: no script, no external resource; the plots are inline SVG.
    """
    table = result.table
    scenarios = list(dict.fromkeys(table["scenario"]))
    designs = list(dict.fromkeys(table["design"]))
    colours = design_colours(designs)
    frames = _frames(result)
    instrument_prices = _instrument_prices(result)
    by_instrument = result.by_instrument
    figures = 0

    def plot(name: str, fig: Figure, caption: str) -> str:
        nonlocal figures
        figures += 1
        return _plot(name, _svg(fig, f"riskengine-{figures}"), caption)

    parts = [f"<header><h1>{_e(title)}</h1>"]
    runs = f"{len(scenarios)} scenario(s) × {len(designs)} design(s)"
    engines = ", ".join(dict.fromkeys(table["engine"])) if "engine" in table else ""
    parts.append(f'<p class="meta">{_e(runs)}{f" · {_e(source)}" if source else ""}'
                 f'{f" · engine {_e(engines)}" if engines else ""} · riskengine {_e(__version__)}</p>')
    has_observed = [c for c in observed.COLUMNS if c.name in table.columns]
    links = ['<a href="#comparison">comparison</a>', '<a href="#metrics">key metrics</a>']
    if has_observed:
        links.append('<a href="#observed">observed vs simulated</a>')
    links += [f'<a href="#{_anchor(s)}">{_e(s)}</a>' for s in scenarios]
    parts.append(f"<nav>{''.join(links)}</nav></header>")

    key = [c for c in KEY_COLUMNS if c in table.columns]
    parts.append('<section id="comparison"><h2>Comparison</h2>'
                 '<p class="note">One row per scenario × design. Hover a header for its meaning, a cell '
                 "for its full value; every column is in <code>results.csv</code>.</p>")
    parts.append(_table(table, key, colours, by_scenario=True))
    if {"fund_min", "vault_min"} <= set(table.columns):
        parts += [f'<p class="note">{_e(n)}</p>' for n in metrics.negative_balance_notes(table)]
    parts.append(_margin_note(table))
    parts.append("<details><summary>All columns</summary>" + _table(table, list(table.columns), colours)
                 + "</details><details><summary>What the columns mean</summary>"
                 + _columns_reference(list(table.columns)) + "</details></section>")

    bar_metrics = [(c, t) for c, t in BAR_METRICS if c in table.columns]
    parts.append('<section id="metrics"><h2>Key metrics by design</h2>')
    parts.append(plot("metrics", _bar_figure(table, scenarios, designs, colours, bar_metrics),
                      "Per design" + (" and scenario" if len(scenarios) > 1 else "")
                      + ": amplification is the simulated drawdown over the tape's; above 1 means the "
                        "design's liquidations pushed the simulated price further than the tape fell."))
    parts.append("</section>")

    if has_observed:
        pairs = {c.simulated: c.name for c in has_observed}
        panels = [(c.simulated, label(c.simulated, metrics.table_currency(table))) for c in has_observed]
        parts.append('<section id="observed"><h2>Observed vs simulated</h2>'
                     '<p class="note">What the venue really printed beside the simulation. Observed counts '
                     "are fills, simulated counts are engine events, so counts compare loosely and notionals "
                     "closely (<code>riskengine/observed.py</code>). sim / obs above 1.5× is "
                     '<span class="over">red</span>, below 0.67× <span class="under">blue</span>.</p>')
        parts.append(plot("observed", _bar_figure(table, scenarios, designs, colours, panels, pairs),
                          "Observed (hatched) and simulated figures per scenario."))
        parts.append(_observed_table(table, has_observed, colours) + "</section>")

    for i, s in enumerate(scenarios):
        if progress is not None:
            progress(f"report.html: [{i + 1}/{len(scenarios)}] {s}")
        run_designs = [d for d in designs if (s, d) in frames]
        rows = table[table["scenario"] == s]
        currency = metrics.table_currency(rows)
        first = rows.iloc[0]
        start = frames[(s, run_designs[0])]["time"].iloc[0] if run_designs else None
        end = frames[(s, run_designs[0])]["time"].iloc[-1] if run_designs else None
        own = by_instrument[by_instrument["scenario"] == s] if "scenario" in by_instrument else by_instrument.iloc[:0]
        symbols = list(dict.fromkeys(own.sort_values("instrument", kind="stable")["symbol"]))
        several = len(symbols) > 1
        facts = [f"{len(symbols)} instruments" if several else "",
                 f"{int(first['ticks']):,} ticks" if "ticks" in rows else "",
                 f"{int(first['accounts']):,} accounts" if "accounts" in rows else "",
                 f"{start:%Y-%m-%d %H:%M:%S} – {end:%H:%M:%S} UTC" if start is not None else "",
                 f"tape drawdown {cell('tape_drawdown', float(first['tape_drawdown']))}"
                 if "tape_drawdown" in rows else ""]
        parts.append(f'<section id="{_anchor(s)}"><h2>Scenario: {_e(s)}</h2>'
                     f'<p class="meta">{_e(" · ".join(f for f in facts if f))}</p>')
        if not run_designs:
            parts.append('<p class="note">No series recorded.</p></section>')
            continue
        if several:
            parts.append(_instrument_section(s, own, symbols, run_designs, colours, plot,
                                             instrument_prices.get(s), max_points))
        parts.append(plot(f"prices:{s}", _price_figure(frames, s, run_designs, colours, max_points, currency),
                          (f"The first instrument, {symbols[0]}: " if several else "")
                          + "Tape price (grey), simulated price (the tape moved by the impact of the simulated "
                            "liquidations; drawn on top) and mark price (dashed; hidden where it equals the "
                            "simulated price), per design."))
        parts.append(plot(f"cascade:{s}", _time_panels(
            frames, s, run_designs, colours, max_points,
            [("cum_liquidated_notional", f"cumulative liquidated notional ({currency})"),
             ("cum_adl_notional", f"cumulative ADL notional ({currency})"),
             ("cum_liquidations", "cumulative liquidations (count)")]),
            "Liquidations include ADL'd orders; ADL notional is the opposite side closed by "
            "auto-deleveraging."))
        parts.append(plot(f"balances:{s}", _time_panels(
            frames, s, run_designs, colours, max_points,
            [("fund", f"insurance fund ({currency})"), ("vault_equity", f"backstop vault equity at mark ({currency})"),
             ("long_oi", "open long interest (base units)")]),
            "Insurance-fund balance, backstop-vault equity and the population's open long size."))
        held = _collateral_frames(result, s, by_instrument)
        if held:
            parts.append(plot(f"collateral:{s}", _collateral_figure(held, run_designs, colours, currency, max_points),
                              "Collateral assets the accounts hold, valued as each design values them (the asset's "
                              "index x its collateral ratio, times the amount held); holdings fall when accounts "
                              "left with holdings only sell them (COLLATERAL_EXCHANGE)."))
        paid = _funding_frame(result, s)
        if paid is not None:
            parts.append(plot(f"funding:{s}", _per_design_figure(
                paid, "paid", run_designs, colours, f"cumulative net funding paid by the population ({currency})",
                max_points), "Net funding the population's positions paid the rest of the market so far (the "
                             "sum of FUNDING rows' amounts; negative: received; funding_paid is the gross that "
                             "changed hands)."))
        parts.append("</section>")

    parts.append(f"<footer>Generated by riskengine {_e(__version__)}. Self-contained: no scripts, no network "
                 "resources.</footer>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
