"""Command line: ``riskengine run [CONFIG ...]`` (backtests from TOML configs; none: the embedded
default comparison), ``riskengine sweep CONFIG`` (a config's parameter grid, on one machine or a
Dask cluster), ``riskengine validate CONFIG``, ``riskengine schema``,
``riskengine bench [--quick] [--json FILE] [--only NAME,...]`` (the standard throughput workloads) and
``riskengine data import|fetch|list`` (the local Parquet tick catalog).
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_loading(signum: int, frame) -> None:
    """Ctrl-C while the ``riskengine`` command loads, before :func:`main` takes Ctrl-C over:
    nothing is written yet, so it ends here, as a Ctrl-C at any later moment does (an
    exception would not do: a library being imported may turn it into an ImportError)."""
    sys.stderr.write("riskengine: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


# the command (python -m riskengine.cli, or the riskengine script) takes Ctrl-C over before its
# imports, which take a while; a program importing this module keeps its own
_PROGRAM = (getattr(sys, "argv", None) or [""])[0].replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".exe")
if __name__ == "__main__" or _PROGRAM == "riskengine":
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored (a background job)
        signal.signal(signal.SIGINT, _interrupted_while_loading)

import argparse  # noqa: E402 - after the Ctrl-C handling above
import contextlib  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402

from riskengine import progress  # noqa: E402

#: result columns shown in the terminal (all columns are in the Python result)
TERMINAL_COLUMNS = (
    "design", "liquidations", "liquidated_notional", "partial_liquidations",
    "backstop_liquidations", "bad_debt", "fund_start", "fund_min", "fund_end", "vault_pnl",
    "adl_fills", "adl_notional", "tape_drawdown", "sim_drawdown", "amplification",
    "elapsed_s",
)
#: the shorter set shown one line per run, when a config has many scenarios x designs
TERMINAL_COLUMNS_COMPACT = (
    "liquidations", "liquidated_notional", "bad_debt", "fund_paid_out", "adl_fills", "adl_notional",
    "tape_drawdown", "sim_drawdown",
)


#: ``riskengine --help``: what the tool does (plain text: help shows it as written)
DESCRIPTION = ("Replay crash tapes through the risk engines of perpetual-futures venues (margin, liquidation, "
               "insurance fund, backstop vault, auto-deleveraging) and compare how each design amplifies or damps "
               "a liquidation cascade. Every command is described in docs/cli/<command>.md.")

CATALOG_ENV = "RISKENGINE_CATALOG"
DEFAULT_CATALOG = "riskengine-catalog"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"riskengine: error: {message}\n")


def _whole(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def _readable(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The table as read in the terminal: every cell written by :func:`riskengine.metrics.format_value`
    (as in ``results.md``), every column headed with its unit (money in ``currency``)."""
    from riskengine import metrics

    return pd.DataFrame({metrics.heading(c, currency): [metrics.format_value(c, v) for v in table[c]]
                         for c in table.columns})


def _command(sub, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose one-line help is also the description its own --help shows."""
    return sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="riskengine", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND",
                                help="what to do (each command has its own --help)")
    run = _command(sub, "run", "run backtest configs (no CONFIG: the embedded default comparison)")
    run.add_argument("configs", nargs="*", metavar="CONFIG", help="TOML backtest configs (see backtests/)")
    run.add_argument("--out", default=None, metavar="DIR",
                     help="output folder (default results/<config>-<time>; with several configs, one "
                          "sub-folder per config)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    run.add_argument("--no-output", action="store_true", help="print the table only, write no files")
    run.add_argument("--accounts", type=_whole(1), default=None, help="embedded default only: accounts")
    run.add_argument("--ticks", type=_whole(2), default=None, help="embedded default only: tape ticks")
    run.add_argument("--seed", type=int, default=None, help="embedded default only: random seed")
    run.add_argument("--depth", type=_positive_float, default=None,
                     help="embedded default only: book depth within 1%% of the price, quote notional")
    run.add_argument("--engine", choices=("cython", "reference"), default="cython",
                     help="the compiled engine (default), or the plain-Python reference engine: the same "
                          "results, 1,000-3,000x slower (for checking)")
    sweep = _command(sub, "sweep", "run a config's [sweep] grid (serial, local processes or Dask)")
    sweep.add_argument("config", metavar="CONFIG", help="TOML backtest config with a [sweep] table")
    sweep.add_argument("--executor", choices=("serial", "processes", "dask"), default="processes",
                       help="where runs go (default processes)")
    sweep.add_argument("--workers", type=_whole(1), default=None,
                       help="worker processes (processes, local Dask cluster; default: the cores)")
    sweep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    sweep.add_argument("--out", default=None, metavar="DIR", help="output folder (default results/<config>-sweep)")
    sweep.add_argument("--resume", action="store_true", help="continue the sweep in --out: skip finished runs")
    sweep.add_argument("--overwrite", action="store_true", help="remove an existing output folder first")
    validate = _command(sub, "validate", "check configs without running them")
    validate.add_argument("configs", nargs="+", metavar="CONFIG", help="TOML backtest configs")
    _command(sub, "schema", "print the JSON schema of config files (for editors)")
    bench = _command(sub, "bench", "measure the engine on the standard throughput workloads")
    bench.add_argument("--quick", action="store_true",
                       help="reduced sizes (a tenth of the ticks and accounts; under a minute)")
    bench.add_argument("--json", default=None, metavar="FILE", help="also write the figures to FILE (JSON)")
    bench.add_argument("--scale", type=_positive_float, default=1.0, metavar="FACTOR",
                       help="multiply every size by FACTOR, for smoke runs (the bars apply at 1)")
    bench.add_argument("--only", default=None, metavar="NAME[,NAME...]",
                       help="run only these workloads: quiet, crash, portfolio, portfolio-cf, oct10-portfolio "
                            "(the default set), and adl-pro-rata, adl-pro-rata-equity, adl-pro-rata-pnl, "
                            "adl-levered-pro-rata, adl-socialize, adl-risk-aware, adl-water-filling, each weighted "
                            "ADL policy against the queue (adl: all seven), which run only when named: together "
                            "they take several minutes")

    data = _command(sub, "data", "the local Parquet tick catalog: import, fetch and list market data")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser, metavar="ACTION",
                                     help="what to do with the catalog (each has its own --help)")
    imp = _command(data_sub, "import", "import tick files into the catalog")
    from riskengine.data.catalog import FILE_TYPES, SOURCES

    imp.add_argument("paths", nargs="+", metavar="FILE",
                     help="files to import; by --source: " + "; ".join(f"{s}: {t}" for s, t in FILE_TYPES.items()))

    imp.add_argument("--source", choices=tuple(SOURCES), default="tardis", help="file format (default tardis)")
    imp.add_argument("--kind", default=None,
                     help="what the files hold (" + "; ".join(f"{s}: {', '.join(k)}" for s, k in SOURCES.items())
                          + "; default: from the archive folder or file name)")
    imp.add_argument("--catalog", default=None, help=f"catalog folder (default ${CATALOG_ENV} or {DEFAULT_CATALOG})")
    imp.add_argument("--sort", action="store_true", help="sort rows that are out of time order, and report how many")
    imp.add_argument("--dedupe", action="store_true", help="drop rows equal to the row before them, and report how many")
    imp.add_argument("--replace", action="store_true",
                     help="each partition (source, kind, symbol, day) the files touch holds just their rows "
                          "(default: merge, by trade id where rows have one)")
    fetch = _command(data_sub, "fetch", "download Binance Vision daily files and import them")
    fetch.add_argument("market", choices=("binance-um", "binance-cm"), help="USD-M or COIN-M futures")
    fetch.add_argument("kind", help="aggTrades, trades, bookDepth, metrics, klines, markPriceKlines, "
                                    "indexPriceKlines, premiumIndexKlines (klines: the 1m files) or fundingRate (monthly files: "
                                    "the months holding the dates)")
    fetch.add_argument("symbol", help="e.g. BTCUSDT or BTCUSD_PERP")
    fetch.add_argument("dates", help="YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
    fetch.add_argument("--base-url", default=None,
                       help="archive root (default $RISKENGINE_BINANCE_VISION_URL or https://data.binance.vision)")
    fetch.add_argument("--cache", default=None, help="download folder (default <catalog>/.downloads)")
    fetch.add_argument("--catalog", default=None, help=f"catalog folder (default ${CATALOG_ENV} or {DEFAULT_CATALOG})")
    lst = _command(data_sub, "list", "list what the catalog holds")
    lst.add_argument("--catalog", default=None, help=f"catalog folder (default ${CATALOG_ENV} or {DEFAULT_CATALOG})")
    return parser


def _default_config(args: argparse.Namespace):
    """The embedded default, with the command line's changes."""
    from riskengine import config

    loaded = config.load_default()
    data = loaded.config.model_dump(exclude_none=True)
    if args.ticks is not None:
        data["scenario"]["synthetic"]["ticks"] = args.ticks
    if args.seed is not None:
        data["scenario"]["synthetic"]["seed"] = args.seed
        data["population"]["seed"] = args.seed + 1
    if args.accounts is not None:
        data["population"]["accounts"] = args.accounts
    if args.depth is not None:
        data["liquidity"]["depth_per_pct"] = args.depth
    return config.parse(data, "embedded default config", loaded.base_dir, loaded.path)


def _show(table: pd.DataFrame) -> str:
    """The terminal view: designs as columns for a few runs, one line per run otherwise."""
    from riskengine import metrics

    currency = metrics.table_currency(table)
    several = ["currency"] if "currency" in table and table["currency"].nunique() > 1 else []  # else in the headings
    if any(c.startswith("observed_") for c in table.columns):  # simulated | observed, per scenario
        from riskengine.observed import COLUMNS

        pairs = [name for c in COLUMNS if c.name in table.columns for name in (c.simulated, c.name)]
        shown = _readable(table[["scenario", "design", *several, *pairs]], currency).set_index(["scenario", "design"]).T
    elif len(table) <= 6:
        shown = _readable(table[[*several, *TERMINAL_COLUMNS]], currency).set_index("design").T
    else:
        shown = _readable(table[["scenario", "design", *several, *TERMINAL_COLUMNS_COMPACT]], currency).set_index(
            ["scenario", "design"])
    return shown.to_string()


def _run(args: argparse.Namespace, held: contextlib.ExitStack) -> int:
    """``riskengine run``; ``held`` keeps each output folder's lock until the command ends."""
    from riskengine import backtest, config, files

    err = sys.stderr
    if args.configs and any(v is not None for v in (args.accounts, args.ticks, args.seed, args.depth)):
        raise ValueError("--accounts, --ticks, --seed and --depth change the embedded default only; "
                         "change a config file's [population] or [scenario] instead")
    loaded_all = [config.load(p) for p in args.configs] if args.configs else [_default_config(args)]
    for loaded in loaded_all:  # every config is checked before anything runs
        backtest.check(loaded)
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"  # the pid: one folder per run, even in one second
    outs = [None if args.no_output else _out_dir(args, loaded, len(loaded_all), stamp) for loaded in loaded_all]
    for k, out in enumerate(outs):  # refuse before running anything; then each folder has one writer
        if out is not None:
            if out in outs[:k]:
                raise ValueError(f"{out}: two configs named {loaded_all[k].name!r} would write this folder")
            held.enter_context(files.output_lock(backtest.check_out(out, args.overwrite)))
    memo = backtest.KeepAll()  # every config passes all its checks before any runs or writes
    for loaded in loaded_all:
        print(f"{loaded.name}: checking", file=err, flush=True)
        backtest.preflight(loaded, memo, args.engine, progress=lambda line: print(line, file=err, flush=True))
    for loaded, out in zip(loaded_all, outs):
        start = time.perf_counter()
        if loaded.config.sweep is not None:
            print(f"{loaded.name}: runs the base config; its [sweep] grid runs with: riskengine sweep "
                  f"{loaded.path}", file=err)
        print(f"{loaded.name}: running", file=err, flush=True)
        with progress.display() as shown:  # live on a terminal; the step lines either way
            result = backtest.run_config(loaded, progress=shown.line, engine=args.engine, memo=memo,
                                         warn=lambda line: shown.line(f"riskengine: warning: {line}"))
        print(_show(result.table))
        if out is not None:
            with progress.display() as shown, shown.task(f"{loaded.name}: writing {out}"):
                written = backtest.write_outputs(result, out, overwrite=args.overwrite,
                                                 title=f"riskengine report: {loaded.name}",
                                                 source=str(loaded.path) if args.configs else "embedded default config",
                                                 progress=shown.line)
            print(f"wrote {', '.join(backtest.OUTPUT_FILES)} to {written}", file=err)
        print(f"{loaded.name}: done in {time.perf_counter() - start:.1f} s", file=err)
    return 0


def _out_dir(args: argparse.Namespace, loaded, count: int, stamp: str):
    """Where a config's outputs go: --out (a sub-folder per config when there are several),
    else the config's ``outputs.dir``, else ``results/<config>-<time>-<pid>``."""
    from pathlib import Path

    if args.out is not None:
        return Path(args.out) if count == 1 else Path(args.out) / loaded.name
    if loaded.config.outputs.dir is not None:
        return loaded.resolve(loaded.config.outputs.dir)
    return Path("results") / f"{loaded.name}-{stamp}"


def _validate(args: argparse.Namespace) -> int:
    from riskengine import backtest, config, sweep

    for path in args.configs:
        loaded = config.load(path)
        lines = backtest.preflight(loaded)  # every check `run` makes before its engine starts
        if loaded.config.sweep is not None:  # every run of the grid, checked alike
            runs = sweep.expand(loaded)
            lines.append(f"sweep: {len(runs)} runs over {', '.join(loaded.config.sweep.grid)}")
        print(f"{path}: ok")
        for line in lines:
            print(f"  {line}")
    return 0


def _sweep(args: argparse.Namespace, held: contextlib.ExitStack) -> int:
    """``riskengine sweep``; ``held`` keeps the output folder's lock until the command ends."""
    from pathlib import Path

    from riskengine import config, files, metrics, sweep

    if args.resume and args.overwrite:
        raise ValueError("--resume continues a sweep, --overwrite starts afresh: give one")
    loaded = config.load(args.config)
    out = Path(args.out) if args.out is not None else Path("results") / f"{loaded.name}-sweep"
    sweep.check_out(out, args.resume, args.overwrite)  # before the lock, which makes missing parents
    held.enter_context(files.output_lock(out))  # one sweep at a time writes a folder (--resume after a crash too)
    try:
        result = sweep.run_sweep(loaded, out, executor=args.executor, workers=args.workers,
                                 scheduler=args.scheduler, resume=args.resume, overwrite=args.overwrite,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    except sweep.Interrupted as stop:
        print(f"riskengine: interrupted: {stop.finished} of {stop.total} runs finished, their rows are in "
              f"{stop.out}; continue with: riskengine sweep {args.config} --resume --out {stop.out}",
              file=sys.stderr)
        return 130
    spec = loaded.config.sweep
    print(f"designs ranked by {spec.rank_by} ({'lower' if spec.rank_order == 'ascending' else 'higher'} is better; "
          f"mean over runs and scenarios):")
    ranking = _readable(result.ranking, metrics.table_currency(result.results)).set_index("rank")
    print(ranking.to_string() if not result.ranking.empty else "  (no finished run)")
    if not result.failures.empty:
        first = result.failures.iloc[0]
        print(f"{len(result.failures)} run(s) failed (see failures.parquet); the first: run {first['run']}: "
              f"{first['error']}")
    for line in metrics.margin_source_warnings(result.results):  # as `run` warns (validate says what is missing)
        print(f"riskengine: warning: {line}", file=sys.stderr)
    print(f"wrote results.parquet, results.csv, results.md, ranking.csv, ranking.md and runs/ to {result.out}",
          file=sys.stderr)
    if not result.failures.empty:  # the finished runs' rows are written; the sweep is not complete
        print(f"riskengine: {len(result.failures)} of {len(result.runs)} runs failed; see "
              f"{result.out / 'failures.parquet'}", file=sys.stderr)
        return 1
    return 0


def _bench(args: argparse.Namespace) -> int:
    from riskengine import bench

    if args.json is not None:  # refuse before minutes of measuring
        bench.check_json_path(args.json)
    mode = "quick" if args.quick else "full"
    specs = [s.scaled(args.scale) for s in bench.select(args.only, quick=args.quick)]
    try:
        steps = f"bench ({mode}): {2 * len(specs)} steps, each in a fresh process"
        with progress.display() as shown, shown.task(steps):
            report = bench.run(specs, bench.ROUNDS[mode], mode=mode, scale=args.scale, progress=shown.line)
    except bench.BenchError as exc:
        print(f"riskengine: error: bench: {exc}", file=sys.stderr)
        return 1
    print(bench.format_report(report))
    if args.json is not None:
        print(f"wrote {bench.write_json(report, args.json)}", file=sys.stderr)
    return 0


def _catalog(args: argparse.Namespace):
    from riskengine.data import Catalog

    return Catalog(args.catalog or os.environ.get(CATALOG_ENV) or DEFAULT_CATALOG)


def _data(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    if args.data_command == "import":
        start = time.perf_counter()
        what = os.path.basename(args.paths[0]) if len(args.paths) == 1 else f"{len(args.paths)} files"
        with progress.display() as shown, shown.task(f"importing {what}"):
            reports = catalog.import_files(args.paths, source=args.source, kind=args.kind, sort=args.sort,
                                           dedupe=args.dedupe, replace=args.replace, progress=shown.line)
        for report in reports:
            print(report.describe())
        print(f"imported {sum(r.rows for r in reports):,} rows ({sum(r.added for r in reports):,} new) in "
              f"{time.perf_counter() - start:.1f} s into {catalog.root}", file=sys.stderr)
        return 0
    if args.data_command == "fetch":
        from riskengine.data.fetch import DEFAULT_BASE_URL, Fetcher

        base = args.base_url or os.environ.get("RISKENGINE_BINANCE_VISION_URL") or DEFAULT_BASE_URL
        fetcher = Fetcher(catalog, args.cache or catalog.root / ".downloads", base)
        with progress.display() as shown, shown.task(f"fetching {args.kind} {args.symbol} {args.dates}"):
            report = fetcher.fetch(args.market, args.kind, args.symbol, args.dates)
        print(f"downloaded {len(report.downloaded)} file(s), skipped {len(report.skipped)} already in the "
              f"catalog, imported {report.imported_rows:,} rows")
        return 0
    rows = catalog.list()
    if not rows:
        print(f"catalog {catalog.root} is empty")
        return 0
    table = pd.DataFrame(rows)[["source", "kind", "symbol", "date", "rows", "first", "last", "bytes"]]
    print(table.to_string(index=False))
    old = int((table.value_counts(["source", "kind", "symbol", "date"]) > 1).sum())
    if old:  # written before one file per partition: a line per file, which reading merges
        print(f"note: {old} partition(s) hold several files (written by an older riskengine; listed per file): "
              f"reading merges them, an import into one rewrites it as one file", file=sys.stderr)
    return 0


#: set by a Ctrl-C of the ``riskengine`` process (:func:`_interrupt`)
_ctrl_c = False


def _interrupt(signum: int, frame) -> None:
    """Ctrl-C of the ``riskengine`` process: stop the command (KeyboardInterrupt), and remember
    it, since code being imported may turn the KeyboardInterrupt into another error."""
    global _ctrl_c
    _ctrl_c = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``riskengine`` command; ``argv`` (default: this process's arguments)
    without the program name.

    Called without ``argv`` it is the process's command, and owns its Ctrl-C: any Ctrl-C ends
    it with ``riskengine: interrupted`` and exit code 130, or is ignored once the command has
    ended (its exit code stands). A Ctrl-C while this module loads ends alike
    (:func:`_interrupted_while_loading`; ``import riskengine`` itself loads nothing until used).
    """
    own_process = False
    try:
        own_process = argv is None and signal.getsignal(signal.SIGINT) in (signal.default_int_handler,
                                                                           _interrupted_while_loading)
        if own_process:
            signal.signal(signal.SIGINT, _interrupt)
        try:
            with contextlib.ExitStack() as held:
                return _dispatch(build_parser().parse_args(argv), held)
        finally:
            if own_process:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
    except Exception:
        if not (own_process and _ctrl_c):
            raise
    except KeyboardInterrupt:
        pass
    print("riskengine: interrupted", file=sys.stderr)
    return 130


def _dispatch(args: argparse.Namespace, held: contextlib.ExitStack) -> int:
    try:
        if args.command == "run":
            return _run(args, held)
        if args.command == "data":
            return _data(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "sweep":
            return _sweep(args, held)
        if args.command == "bench":
            return _bench(args)
        if args.command == "schema":
            import json

            from riskengine.config import json_schema

            print(json.dumps(json_schema(), indent=2))
            return 0
    except ValueError as exc:
        print(f"riskengine: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # a run too large for this machine (riskengine.engine.RunTooLarge)
        print(f"riskengine: error: out of memory: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
