"""Command line: ``riskengine run`` (the built-in synthetic crash comparison) and
``riskengine data import|fetch|list`` (the local Parquet tick catalog).

Config files, sweeps, benchmarks and data commands build on this entry point.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

#: result columns shown in the terminal (all columns are in the Python result)
TERMINAL_COLUMNS = (
    "design", "liquidations", "liquidated_notional", "partial_liquidations",
    "backstop_liquidations", "bad_debt", "fund_start", "fund_min", "fund_end", "vault_pnl",
    "adl_fills", "adl_notional", "tape_drawdown", "sim_drawdown", "amplification",
    "elapsed_s",
)


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


def _fmt(value) -> str:
    """Readable cell: thousands separators for large numbers, 4 significant digits otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value:
            return "-"
        if abs(value) >= 1000 or float(value).is_integer():
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="riskengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run the built-in synthetic crash through the demo designs")
    run.add_argument("--accounts", type=_whole(1), default=100_000, help="accounts (default 100,000)")
    run.add_argument("--ticks", type=_whole(2), default=200_000, help="tape ticks (default 200,000)")
    run.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    run.add_argument("--depth", type=_positive_float, default=5e6,
                     help="book depth within 1%% of the price, quote notional (default 5e6)")
    run.add_argument("--engine", choices=("cython", "reference"), default="cython")

    data = sub.add_parser("data", help="the local Parquet tick catalog")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    imp = data_sub.add_parser("import", help="import tick files into the catalog")
    imp.add_argument("paths", nargs="+", help="files to import (.csv or .csv.gz)")
    from riskengine.data.catalog import SOURCES

    imp.add_argument("--source", choices=tuple(SOURCES), default="tardis", help="file format (default tardis)")
    imp.add_argument("--kind", default=None,
                     help="what the files hold (" + "; ".join(f"{s}: {', '.join(k)}" for s, k in SOURCES.items())
                          + "; default: from the archive folder or file name)")
    imp.add_argument("--catalog", default=None, help=f"catalog folder (default ${CATALOG_ENV} or {DEFAULT_CATALOG})")
    imp.add_argument("--sort", action="store_true", help="sort rows that are out of time order, and report how many")
    imp.add_argument("--dedupe", action="store_true", help="drop rows equal to the row before them, and report how many")
    fetch = data_sub.add_parser("fetch", help="download Binance Vision daily files and import them")
    fetch.add_argument("market", choices=("binance-um", "binance-cm"), help="USD-M or COIN-M futures")
    fetch.add_argument("kind", help="aggTrades, trades, bookDepth, metrics, klines, markPriceKlines, "
                                    "indexPriceKlines or premiumIndexKlines (klines: the 1m files)")
    fetch.add_argument("symbol", help="e.g. BTCUSDT or BTCUSD_PERP")
    fetch.add_argument("dates", help="YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
    fetch.add_argument("--base-url", default=None,
                       help="archive root (default $RISKENGINE_BINANCE_VISION_URL or https://data.binance.vision)")
    fetch.add_argument("--cache", default=None, help="download folder (default <catalog>/.downloads)")
    fetch.add_argument("--catalog", default=None, help=f"catalog folder (default ${CATALOG_ENV} or {DEFAULT_CATALOG})")
    lst = data_sub.add_parser("list", help="what the catalog holds")
    lst.add_argument("--catalog", default=None, help=f"catalog folder (default ${CATALOG_ENV} or {DEFAULT_CATALOG})")
    return parser


def _run(args: argparse.Namespace) -> int:
    from riskengine import ConstantDepth, run, synthetic

    err = sys.stderr
    start = time.perf_counter()
    print(f"building synthetic crash: {args.ticks:,} ticks, {args.accounts:,} accounts, seed {args.seed}", file=err)
    scenario = synthetic.crash_scenario(ticks=args.ticks, accounts=args.accounts, seed=args.seed)
    designs = [synthetic.binance_style(), synthetic.hyperliquid_style()]
    rows = []
    for k, design in enumerate(designs, 1):
        print(f"[{k}/{len(designs)}] {design.name} ...", file=err, end=" ", flush=True)
        result = run(scenario, design, ConstantDepth(args.depth), engine=args.engine)
        rows.append(result.table)
        print(f"{result.table['elapsed_s'].iloc[0]:.2f} s", file=err)
    table = pd.concat(rows, ignore_index=True)
    shown = table[list(TERMINAL_COLUMNS)].set_index("design").T
    print(shown.map(_fmt).to_string())
    print(f"done in {time.perf_counter() - start:.1f} s", file=err)
    return 0


def _catalog(args: argparse.Namespace):
    import os

    from riskengine.data import Catalog

    return Catalog(args.catalog or os.environ.get(CATALOG_ENV) or DEFAULT_CATALOG)


def _data(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    if args.data_command == "import":
        total = 0
        start = time.perf_counter()
        for k, path in enumerate(args.paths, 1):
            print(f"[{k}/{len(args.paths)}] {path} ...", file=sys.stderr, flush=True)
            report = catalog.import_file(path, source=args.source, kind=args.kind, sort=args.sort,
                                         dedupe=args.dedupe)
            total += report.rows
            print(report.describe())
        seconds = time.perf_counter() - start
        print(f"imported {total:,} rows in {seconds:.1f} s into {catalog.root}", file=sys.stderr)
        return 0
    if args.data_command == "fetch":
        import os

        from riskengine.data.fetch import DEFAULT_BASE_URL, Fetcher

        base = args.base_url or os.environ.get("RISKENGINE_BINANCE_VISION_URL") or DEFAULT_BASE_URL
        fetcher = Fetcher(catalog, args.cache or catalog.root / ".downloads", base)
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
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``riskengine`` command."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "data":
            return _data(args)
    except ValueError as exc:
        print(f"riskengine: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("riskengine: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
