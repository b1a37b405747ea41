"""What a risk analyst reads: units on every money, time and count column, plain fixed-point
numbers, progress on long runs, help without markup, and README figures that a run checks."""

from __future__ import annotations

import argparse
import html
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskengine import ConstantDepth, bench, metrics, run, synthetic
from riskengine.cli import build_parser
from riskengine.data.catalog import FILE_TYPES, SOURCES
from riskengine.data.schema import quote_currency
from riskengine.engine import run_raw
from riskengine.reference import PROGRESS_STEPS

from _cli import run_cli, run_in_terminal, write


# ------------------------------------------------------------------------------- warnings
def test_the_suite_fails_on_any_warning(pytestconfig: pytest.Config):
    """A warning fails the test that raised it (pyproject.toml), so the suite's summary stays
    free of them: fix the cause, or ignore one narrowly there with the reason."""
    assert pytestconfig.getini("filterwarnings")[:1] == ["error"]


# ---------------------------------------------------------------------------------- units
#: the result columns that hold money (an independent list: a new money column must say so)
MONEY = {"liquidated_notional", "bad_debt", "fund_start", "fund_min", "fund_end", "fund_paid_out",
         "fees_collected", "vault_pnl", "adl_notional", "adl_haircut", "adl_deficit_covered", "adl_overshoot",
         "socialized_loss", "funding_paid", "vault_start", "vault_loss_limit", "vault_min", "vault_adl_notional"}
TRX_USDT = "2025-10-10/spot-trades/binance_trades_2025-10-10_TRXUSDT.csv.gz"
TRX_PERP = "2025-10-10/binance-coinm-perp-trades/binance-delivery_trades_2025-10-10_TRXUSD_PERP.csv.gz"
#: numbers written with an exponent (2.42682e+08)
EXPONENT = re.compile(r"\d[eE][+-]?\d")


def test_every_column_says_its_unit():
    units = {c.name: c.unit for c in metrics.COLUMNS}
    assert {name for name, unit in units.items() if unit == "quote"} == MONEY
    for c in metrics.COLUMNS:
        if c.name in MONEY:
            assert "quote currency: USD, USDT or USDC" in c.meaning, c.name
        if c.name.endswith("_s") and not c.name.endswith("_per_s"):
            assert c.unit == "s" and c.meaning.endswith("in seconds"), c.name
    table = run(synthetic.crash_scenario(ticks=2_000, accounts=300, seed=3), synthetic.binance_style()).table
    for name in table.columns:  # every number has a unit; only names and labels are text
        numeric = pd.api.types.is_numeric_dtype(table[name])
        assert (metrics.unit_of(name) != "text") == numeric, name
        assert metrics.UNITS[metrics.unit_of(name)][0] in metrics._BY_NAME[name].meaning
    assert table["currency"].tolist() == [metrics.UNKNOWN_CURRENCY]  # a synthetic tape names none


def test_the_quote_currency_comes_from_the_symbol():
    assert quote_currency("BTCUSDT") == quote_currency("BTC-USDT-SWAP") == "USDT"
    assert quote_currency("ATOMUSD_PERP") == quote_currency("AAVE-USD") == quote_currency("BTCUSD_251226") == "USD"
    assert quote_currency("ETH-USDC") == quote_currency("BTC", "hyperliquid") == "USDC"
    assert quote_currency("BTC") is None and quote_currency("USD") is None and quote_currency(None) is None


def _config(folder: Path, shared_data: Path, tapes: dict[str, str]) -> Path:
    scenarios = "".join(
        f'[[scenarios]]\nname = "{name}"\ntape = {{ source = "tardis", path = "{shared_data / path}" }}\n'
        f"window = {{ start = 2025-10-10T20:00:00Z, end = 2025-10-10T22:00:00Z }}\n\n"
        for name, path in tapes.items())
    return write(folder, scenarios + '[population]\naccounts = 2_000\nopen_interest_usd = 5e6\n\n'
                 '[liquidity]\ndepth_per_pct = 1e6\n\n[[venues]]\npreset = "binance-usdm"\n', "replay.toml")


@pytest.fixture(scope="module")
def usdt_run(shared_data, tmp_path_factory):
    """``riskengine run`` of the TRXUSDT spot tape: its terminal table and its output folder."""
    folder = tmp_path_factory.mktemp("usdt")
    proc = run_cli("run", str(_config(folder, shared_data, {"trx-spot": TRX_USDT})), "--out", str(folder / "out"))
    assert proc.returncode == 0, proc.stderr
    return proc, folder / "out"


def test_money_is_headed_with_the_tapes_currency(usdt_run):
    proc, out = usdt_run
    terminal = proc.stdout.splitlines()
    markdown = (out / "results.md").read_text().splitlines()
    headings = [c.strip() for c in markdown[0].strip("|").split("|")]
    for name in metrics._BY_NAME:
        unit = {"quote": "USDT", "text": None}.get(metrics.unit_of(name), metrics.UNITS[metrics.unit_of(name)][1])
        assert (name if unit is None else f"{name} ({unit})") in headings, name
    for name in ("liquidated_notional", "bad_debt", "fund_end", "vault_pnl", "adl_notional"):
        assert any(line.startswith(f"{name} (USDT) ") for line in terminal), (name, proc.stdout)
    assert any(line.startswith("liquidations (count) ") for line in terminal)
    assert any(line.startswith("elapsed_s (s) ") for line in terminal)
    assert pd.read_parquet(out / "results.parquet")["currency"].tolist() == ["USDT"]
    assert "liquidated_notional" in pd.read_csv(out / "results.csv").columns  # the names stay as they were


def test_the_report_axes_say_the_currency(usdt_run):
    _, out = usdt_run
    page = html.unescape((out / "report.html").read_text())
    for title in ("liquidated notional (USDT)", "bad debt (USDT)", "insurance fund paid out (USDT)",
                  "backstop vault PnL (USDT)", "amplification (ratio)", "cumulative liquidated notional (USDT)",
                  "cumulative liquidations (count)", "insurance fund (USDT)", "backstop vault equity at mark (USDT)",
                  "open long interest (base units)", "price (USDT)"):
        assert f">{title}<" in page, title  # SVG text, as drawn
    assert ">bad debt (USDT)</th>" in page and ">liquidations (count)</th>" in page  # the comparison table


def test_tapes_in_different_currencies_each_say_theirs(shared_data, tmp_path):
    config_path = _config(tmp_path, shared_data, {"trx-spot": TRX_USDT, "trx-perp": TRX_PERP})
    proc = run_cli("run", str(config_path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line.strip()}
    assert rows["currency"] == ["USDT", "USD"]  # the COIN-M perp is priced in USD
    assert "bad_debt (quote currency)" in proc.stdout
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert table.set_index("scenario")["currency"].to_dict() == {"trx-spot": "USDT", "trx-perp": "USD"}


# -------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("column, value, text", [
    ("liquidated_notional", 2.42682e+08, "242,682,000"),
    ("liquidated_notional", 242_681_974.4, "242,681,974"),
    ("bad_debt", 2.24317e-09, "0"),
    ("fund_paid_out", -1.9e-11, "0"),
    ("bad_debt", 117.6, "117.60"),
    ("vault_pnl", -8_748_587.2, "-8,748,587"),
    ("sim_drawdown", 0.172634, "0.1726"),
    ("amplification", 1.16512, "1.165"),
    ("elapsed_s", 0.0420133, "0.04201"),
    ("first_adl_s", 3_749.26, "3,749"),
    ("adl_max_haircut_share", 3.2e-12, "0"),
    ("ticks_per_s", 6.04e7, "60,400,000"),
    ("liquidations", np.int64(25_979), "25,979"),
    ("first_adl_s", float("nan"), "-"),
    ("design", "binance-usdm", "binance-usdm"),
])
def test_numbers_read_in_fixed_point(column, value, text):
    assert metrics.format_value(column, value) == text


def test_results_md_and_the_terminal_write_the_same_numbers(usdt_run):
    proc, out = usdt_run
    table = pd.read_parquet(out / "results.parquet")
    markdown = (out / "results.md").read_text()
    assert not EXPONENT.search(markdown) and not EXPONENT.search(proc.stdout)
    cells = [c.strip() for c in markdown.splitlines()[2].strip("|").split("|")]
    assert cells == [metrics.format_value(c, v) for c, v in table.iloc[0].items()]
    for line in proc.stdout.splitlines()[1:]:  # heading (unit) value: one design, one value
        heading, value = line.rsplit(None, 1)
        name = heading.split()[0]
        assert value == metrics.format_value(name, table[name].iloc[0]), line


# ----------------------------------------------------------------------------------- help
def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("riskengine",)):
    """Every parser of the command line, with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


#: reStructuredText markup that a terminal shows raw
RST = re.compile(r"``|:(?:func|data|class|meth|mod|attr):`")


def test_every_help_is_plain_and_every_option_is_explained():
    commands = []
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert not RST.search(text), (path, RST.search(text).group(0))
        assert parser.description, path  # says what the command does
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help and action.help != argparse.SUPPRESS, (path, action.dest)
        commands.append(" ".join(path[1:]))
    assert set(commands) == {"", "run", "sweep", "validate", "schema", "bench", "data", "data import",
                             "data fetch", "data list"}


def test_the_installed_command_shows_plain_help():
    proc = run_cli("--help")
    assert proc.returncode == 0 and not RST.search(proc.stdout)
    assert all(command in proc.stdout for command in ("run", "sweep", "validate", "schema", "bench", "data"))


def test_data_import_help_lists_every_format_it_reads():
    proc = run_cli("data", "import", "--help")
    assert proc.returncode == 0
    words = proc.stdout.replace(",", " ").replace(";", " ").replace("(", " ").replace(")", " ").split()
    for extension in (".csv", ".csv.gz", ".zip", ".lz4", ".csv.lz4"):
        assert extension in words, extension
    assert set(FILE_TYPES) == set(SOURCES)  # every source says what it reads
    for source in SOURCES:
        assert f"{source}:" in proc.stdout


# ------------------------------------------------------------------------------- progress
#: a live bar as rich draws it
BAR = "━"


def test_the_reference_engine_reports_its_progress_without_changing_its_run():
    scenario = synthetic.crash_scenario(ticks=4_000, accounts=400, seed=5)
    params = synthetic.binance_style().engine_params(ConstantDepth(3e6), 1.0)
    ticks: list[int] = []
    watched, _ = run_raw(scenario, params, "reference", on_tick=ticks.append)
    quiet, _ = run_raw(scenario, params, "reference")
    for name in watched.events:
        np.testing.assert_array_equal(watched.events[name], quiet.events[name], err_msg=name)
    assert watched.scalars == quiet.scalars
    assert ticks == list(range(0, 4_000, 4_000 // PROGRESS_STEPS))  # 1,000 reports over the tape, in order


def test_the_python_api_shows_the_reference_engine_on_a_terminal():
    script = ("from riskengine import run, synthetic; "
              "run(synthetic.crash_scenario(ticks=20_000, accounts=300, seed=5), synthetic.binance_style(), "
              "engine='reference'); print('ran')")
    code, out, terminal = run_in_terminal(command=[sys.executable, "-c", script])
    assert code == 0 and out == "ran\n", terminal
    assert "synthetic-btc-crash: [1/1] binance-usdm (reference)" in terminal and BAR in terminal
    assert re.search(r"[1-9][\d,]*/20,000 ticks", terminal), terminal  # it moved


def test_run_draws_progress_on_a_terminal_and_plain_lines_elsewhere():
    args = ("run", "--engine", "reference", "--accounts", "300", "--ticks", "3000", "--no-output")
    code, out, terminal = run_in_terminal(*args)
    assert code == 0, terminal
    for k, design in enumerate(("binance-usdm", "hyperliquid", "binance-usdm-last-mark", "hyperliquid-with-fund")):
        assert f"synthetic-btc-crash: [{k + 1}/4] {design} (reference)" in terminal
    assert "/3,000 ticks" in terminal and BAR in terminal
    assert "[1/1] synthetic-btc-crash: 3,000 trades, 300 accounts" in terminal  # the step lines too

    piped = run_cli(*args)  # stderr not a terminal: the step lines only, as plain text
    assert piped.returncode == 0
    lines = piped.stderr.splitlines()
    warned = [line for line in lines if line.startswith("riskengine: warning: ")]  # the incomplete BTC table
    assert [line.split(": margin table ")[0] for line in warned] == [
        f"riskengine: warning: synthetic-btc-crash: design {d!r}" for d in ("hyperliquid", "hyperliquid-with-fund")]
    lines = [line for line in lines if line not in warned]
    assert lines[:2] == ["default: checking", "[1/1] synthetic-btc-crash: loading"]  # the checks before any run
    running = lines.index("default: running")
    assert lines[running:running + 3] == ["default: running", "[1/1] synthetic-btc-crash: loading",
                                             "[1/1] synthetic-btc-crash: 3,000 trades, 300 accounts, depth "
                                             "5,000,000/1%; 4 design(s)"]
    assert "\x1b" not in piped.stderr and BAR not in piped.stderr and "ticks" not in piped.stderr.split("; ")[-1]
    untimed = lambda text: [line for line in text.splitlines() if not line.startswith(("elapsed_s", "ticks_per_s"))]
    assert untimed(out) == untimed(piped.stdout)  # the table on stdout is the same either way


def test_a_sweep_draws_its_runs_on_a_terminal(tmp_path):
    config_path = write(tmp_path, '[scenario]\nname = "s"\nsynthetic = { ticks = 2_000 }\n\n[population]\n'
                                  'accounts = 300\n\n[[venues]]\npreset = "hyperliquid"\n\n[sweep]\n'
                                  'grid = { "population.seed" = [1, 2, 3] }\n', "grid.toml")
    code, _, terminal = run_in_terminal("sweep", str(config_path), "--executor", "serial",
                                        "--out", str(tmp_path / "out"))
    assert code == 0, terminal
    assert "sweep grid" in terminal and "/3 runs" in terminal and BAR in terminal
    assert "[3/3] 0 failed" in terminal


def test_an_import_and_the_bench_show_they_are_working_on_a_terminal(shared_data, tmp_path):
    code, _, terminal = run_in_terminal("data", "import", "--catalog", str(tmp_path / "catalog"),
                                        str(shared_data / TRX_PERP))
    assert code == 0, terminal
    assert f"importing {Path(TRX_PERP).name}" in terminal and "0:00:0" in terminal  # the elapsed time
    code, _, terminal = run_in_terminal("bench", "--quick", "--scale", "0.02")
    assert code == 0, terminal
    # the five default workloads (quiet, crash, portfolio, portfolio-cf, oct10-portfolio), two steps each
    assert "bench (quick): 10 steps, each in a fresh process" in terminal and "0:00:0" in terminal


# ------------------------------------------------------------- figures the docs quote from runs
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "cli"
#: a wall-clock figure in a progress line: it differs from run to run
SECONDS = re.compile(r"\b\d+(?:\.\d+)? s\b")


def _shown(page: str, command: str) -> list[str]:
    """The lines a docs page shows after ``$ command`` in an output block, up to the next
    ``$`` line or the block's end."""
    lines, out, inside = (DOCS / page).read_text(encoding="utf-8").splitlines(), None, False
    for line in lines:
        if line.startswith("```"):
            inside = not inside
            if out is not None and not inside:
                return out
        elif out is not None and line.startswith("$ "):
            return out
        elif out is not None:
            out.append(line)
        elif inside and line == f"$ {command}":
            out = []
    assert out is not None, f"docs/cli/{page}: no output block for $ {command}"
    return out


def _cells(line: str) -> list[str]:
    """A table line as its heading (``name (unit)``) and its cells."""
    m = re.match(r"(\S+(?: \([^)]*\))?)\s*(.*)", line.strip())
    return [m.group(1), *m.group(2).split()] if m else []


def _same_lines(shown: list[str], actual: list[str], compare=lambda a, b: a == b) -> bool:
    """Whether ``actual`` is what the docs show, a shown ``...`` line standing for any lines."""
    if not shown:
        return not actual
    if shown[0].strip() == "...":
        return any(_same_lines(shown[1:], actual[k:], compare) for k in range(len(actual) + 1))
    return bool(actual) and compare(shown[0], actual[0]) and _same_lines(shown[1:], actual[1:], compare)


def _same_table(shown: list[str], actual: list[str]) -> None:
    timed = ("elapsed_s", "ticks_per_s")
    shown = [line for line in shown if not line.startswith(timed)]
    actual = [line for line in actual if not line.startswith(timed)]
    assert _same_lines(shown, actual, lambda a, b: _cells(a) == _cells(b)), "\n".join(["actual:", *actual])


@pytest.mark.parametrize("config_path, shown_lines", [
    (None, 16),  # the embedded default: the whole table
    ("backtests/hyperliquid-2025-10-10.toml", None),  # excerpts
    ("backtests/coinm-alts-2025-10-10.toml", None),
    ("backtests/portfolio-2025-10-10.toml", None),
    ("backtests/collateral-depeg.toml", None),
])
def test_run_page_tables_are_a_run(config_path, shown_lines, request):
    if config_path is not None:
        request.getfixturevalue("shared_data")
    command = "riskengine run --out results/default" if config_path is None else \
        f"riskengine run {config_path} --no-output"
    shown = _shown("run.md", command)
    proc = run_cli("run", *([config_path] if config_path else []), "--no-output", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    if config_path is None:
        shown = [line for line in shown if not line.startswith(("default:", "[1/1]", "report.html", "wrote"))]
        assert len([line for line in shown if not line.startswith("riskengine: warning:")]) == shown_lines
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("riskengine: warning:")]  # shown too
    _same_table(shown, warnings + proc.stdout.splitlines() + (["..."] if shown[-1] == "..." else []))


def test_data_page_imports_are_a_run(shared_data, tmp_path):
    """The import and list outputs of docs/cli/data.md, from the folder it describes (one with
    ``../shared/data`` beside it, no catalog yet)."""
    (tmp_path / "shared").symlink_to(shared_data.parent)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RISKENGINE_CATALOG"}
    page = (DOCS / "data.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\$ (riskengine data (?:import|list).*)$", page, flags=re.M)
    commands = commands[:3]  # the real output block (the error examples come later)
    assert [c.split()[2] for c in commands] == ["import", "import", "list"], commands
    for command in commands:
        proc = run_cli(*shlex.split(command)[1:], cwd=work, env=env)
        assert proc.returncode == 0, proc.stderr
        shown = _shown("data.md", command)
        if command.endswith("list"):
            assert [line.split() for line in shown] == [line.split() for line in proc.stdout.splitlines()]
        else:  # stdout and stderr, as a terminal interleaves them; times aside
            actual = proc.stdout.splitlines() + proc.stderr.splitlines()
            assert sorted(SECONDS.sub("t", line) for line in shown) == \
                sorted(SECONDS.sub("t", line) for line in actual), "\n".join(actual)


def test_validate_page_is_a_run(shared_data):
    shown = _shown("validate.md", "riskengine validate backtests/*.toml")
    configs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "backtests").glob("*.toml"))
    proc = run_cli("validate", *configs, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert _same_lines(shown, proc.stdout.splitlines()), proc.stdout


def test_sweep_page_ranking_is_a_run(tmp_path):
    """The ranking of docs/cli/sweep.md's example (every executor gives the same rows: serial here)."""
    shown = _shown("sweep.md", "riskengine sweep backtests/sweep-adl-policies.toml --workers 2")
    proc = run_cli("sweep", "backtests/sweep-adl-policies.toml", "--executor", "serial", "--out",
                   str(tmp_path / "out"), cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr
    ranked = next(k for k, line in enumerate(shown) if line.startswith("designs ranked by"))
    actual = proc.stdout.splitlines()
    assert shown[ranked] == actual[0]
    assert [line.split() for line in shown[ranked + 1:]] == [line.split() for line in actual[1:]], proc.stdout
    progress_lines = [SECONDS.sub("t", line) for line in proc.stderr.splitlines()]
    for line in shown[1:ranked]:  # the runs, by their hashes and grid values
        if line != "..." and not line.startswith("sweep "):
            assert SECONDS.sub("t", line) in progress_lines, line


def test_bench_page_counts_are_the_engines():
    """The liquidations in docs/cli/bench.md's example are the seeded workloads' own counts."""
    text = (DOCS / "bench.md").read_text(encoding="utf-8")
    rows = {tuple(line.split()[:3]): line.split()[3] for line in text.splitlines()
            if re.match(r"(quiet|crash|portfolio|portfolio-cf)\s+[\d,]+\s+[\d,]+\s+[\d,]+\s", line)}
    assert len(rows) == 8, rows  # each workload at the full and at the reference's size
    for (name, ticks, accounts), liquidations in rows.items():
        n_ticks, n_accounts = (int(x.replace(",", "")) for x in (ticks, accounts))
        work = bench.BUILDERS[name](n_ticks, n_accounts)
        raw, _ = work.run("cython")
        assert f"{bench.engine_liquidations(raw):,}" == liquidations, (name, ticks, accounts)
        del work, raw
