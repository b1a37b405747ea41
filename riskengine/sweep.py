"""Parameter sweeps: a config's ``[sweep]`` grid expanded into runs, fanned out over an
executor (serial, local processes or a Dask cluster), each finished run landing in
partitioned Parquet, then one combined table and a ranking of the designs.

>>> from riskengine import config, sweep
>>> loaded = config.parse({"scenario": {"name": "demo", "synthetic": {"ticks": 2_000}},
...                        "population": {"accounts": 500}, "venues": [{"preset": "hyperliquid"}],
...                        "sweep": {"grid": {"population.seed": [1, 2]}}})
>>> [run.values for run in sweep.expand(loaded)]
[{'population.seed': 1}, {'population.seed': 2}]

A run is the base config with one point of the grid set, validated like any config; its
identity is :func:`run_hash`, a hash of the resolved run (every scenario, population,
liquidity and venue design with its defaults filled in, files as absolute paths), so
``--resume`` knows a finished run whatever the order of the grid.

Output folder::

    OUT/sweep.json                        the config file and the identity of its config and grid (Manifest)
    OUT/plan.parquet                      the runs: run hash + grid values
    OUT/runs/run=<hash>/part-0.parquet    result rows of each finished run (one per scenario x design)
    OUT/failures/run=<hash>/part-0.parquet  each failed run: hash, grid values, the error line
    OUT/results.parquet|csv|md            every row of every finished run, sorted by run, scenario, design
    OUT/failures.parquet                  every failure
    OUT/ranking.csv|md                    the design variants ranked by ``rank_by``

Every file is written to a temporary name and renamed into place, so a partition is either
complete or absent. A worker process keeps each tape it built (and the last populations and
liquidity models) for the next runs (:class:`WorkerCache`); runs are handed out grouped by
their tapes, so a tape is built once per worker while its runs last.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskengine import backtest, metrics, progress as live
from riskengine.files import check_output_folder, write_atomic
from riskengine.metrics import TIMING_COLUMNS
from riskengine.config import KeyPath, LoadedConfig, SweepSpec, canonical_json, parse, parse_key
from riskengine.venue import VenueDesign

#: bump when the hashed form of a run changes, so --resume does not reuse rows of another meaning
HASH_FORMAT = 2
#: executors of ``riskengine sweep --executor``
EXECUTORS = ("serial", "processes", "dask")
#: seconds to wait for a Dask scheduler given with --scheduler
CONNECT_TIMEOUT_S = 5.0
#: sort order of every combined table
ROW_ORDER = ["run", "scenario", "design"]
PART = "part-0.parquet"
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Run:
    """One point of the grid.

    Attributes
    ----------
    hash : str
        :func:`run_hash` of ``loaded``.
    values : dict
        Grid key -> the value this run sets.
    cells : dict
        Grid key -> the value as stored in the result columns (:func:`grid_cells`).
    loaded : LoadedConfig
        The validated run config.
    """

    hash: str
    values: dict[str, Any]
    cells: dict[str, Any]
    loaded: LoadedConfig

    def describe(self) -> str:
        """``key=value, ...``: the run's grid values."""
        return ", ".join(f"{k}={_show(v)}" for k, v in self.values.items())


def _show(value: Any) -> str:
    return value if isinstance(value, str) else canonical_json(value)


def _set(data: dict, parts: KeyPath, value: Any) -> None:
    """Set ``value`` at key path ``parts`` of a config mapping, creating the tables on the way."""
    node: Any = data
    for part in parts[:-1]:
        if isinstance(part, int):
            node = node[part]
        else:
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


def grid_cells(spec: SweepSpec) -> dict[str, list[Any]]:
    """Each grid key's values as result-table cells, one type per column: booleans, whole
    numbers, numbers (whole numbers mixed with others become floats) or text; anything else
    (tables, lists, mixed kinds) as canonical JSON text."""
    out = {}
    for key, values in spec.grid.items():
        if all(isinstance(v, bool) for v in values) or all(isinstance(v, str) for v in values):
            out[key] = list(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[key] = list(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = [float(v) for v in values]
        else:
            out[key] = [canonical_json(v) for v in values]
    return out


def _where(loaded: LoadedConfig) -> str:
    return str(loaded.path) if loaded.path is not None else "config"


def _run_config(loaded: LoadedConfig, base: dict, values: dict[KeyPath, Any], label: str,
                memo: backtest.Memo | None = None) -> LoadedConfig:
    """The base config with ``values`` set, validated and checked: with ``memo``, every check a
    run makes before its engine starts (:func:`riskengine.backtest.preflight`, as ``riskengine
    validate``), else the quick ones (:func:`riskengine.backtest.check`)."""
    data = copy.deepcopy(base)
    for parts, value in values.items():
        _set(data, parts, value)
    where = f"{_where(loaded)}: sweep.grid {label}"
    run = parse(data, where, loaded.base_dir, loaded.path)
    try:
        if memo is None:
            backtest.check(run)
        else:
            backtest.preflight(run, memo)
    except ValueError as exc:
        message = str(exc)
        prefix = f"{_where(loaded)}: "
        raise ValueError(f"{where}: {message[len(prefix):] if message.startswith(prefix) else message}") from None
    return run


def expand(loaded: LoadedConfig) -> list[Run]:
    """The runs of the config's sweep grid (the cartesian product, in grid order), each
    validated and given every check a run makes before its engine starts
    (:func:`riskengine.backtest.preflight`: tapes read, populations built, designs resolved),
    before anything runs.

    Raises
    ------
    ValueError
        No ``[sweep]`` table; a grid value the config rejects (named by its key and value); a
        combination the config rejects, or that its run would refuse before its engine starts
        (named by its grid values); two grid points that resolve to the same run.
    """
    spec = loaded.config.sweep
    if spec is None:
        raise ValueError(f"{_where(loaded)}: no [sweep] table (add one, e.g. [sweep] grid = "
                         f"{{ \"population.seed\" = [1, 2, 3] }})")
    base = loaded.config.model_dump(exclude_unset=True)
    base.pop("sweep", None)
    keys = list(spec.grid)
    parts = [parse_key(k) for k in keys]
    # each value alone first, so that a bad one is named by its key alone
    for key, path in zip(keys, parts):
        for value in spec.grid[key]:
            _run_config(loaded, base, {path: value}, f"{key}={_show(value)}")
    cells = grid_cells(spec)
    runs: list[Run] = []
    seen: dict[str, Run] = {}
    cache = WorkerCache()  # the checks build each tape once, as a worker does
    for index in itertools.product(*(range(len(spec.grid[k])) for k in keys)):
        values = {k: spec.grid[k][i] for k, i in zip(keys, index)}
        label = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
        run_loaded = _run_config(loaded, base, dict(zip(parts, values.values())), label, cache)
        run = Run(run_hash(run_loaded), values, {k: cells[k][i] for k, i in zip(keys, index)}, run_loaded)
        if run.hash in seen:
            raise ValueError(f"{_where(loaded)}: sweep.grid: {seen[run.hash].describe()} and {run.describe()} "
                             f"resolve to the same run (give each value once)")
        seen[run.hash] = run
        runs.append(run)
    return runs


#: design fields that only a portfolio (several instruments) reads, with the default at which
#: :func:`run_hash` leaves them out: a design that keeps them hashes as before they existed, so the
#: finished runs of a sweep stay finished (``fund.shared`` and ``backstop.shared``: ``"all"``, one
#: insurance fund and one backstop vault for every instrument)
PORTFOLIO_DESIGN_DEFAULTS: dict[tuple[str, ...], object] = {
    ("margin_mode",): "as-held",
    ("liquidation", "cross_order"): "notional",
    ("fund", "shared"): "all",
    ("backstop", "shared"): "all",
}


#: scenario keys that came after the hash's format, with the value at which :func:`run_hash`
#: leaves them out (``[]``: each item of a list): a scenario that does not use them hashes as
#: before they existed (a single-tape scenario has no instruments or portfolio; funding rates
#: and collateral assets, issue 13)
SCENARIO_DEFAULTS: dict[tuple[str, ...], object] = {
    ("instruments",): None,
    ("portfolio",): None,
    ("funding",): None,
    ("collateral",): None,
    ("instruments", "[]", "funding"): None,
    ("portfolio", "collateral"): {},
}

#: funding rules that pay nothing on a scenario without funding rates (``funding.rule``)
RULES_WITHOUT_DATA = ("data", "none")


def _without_defaults(body: dict, defaults: dict[tuple[str, ...], object]) -> dict:
    """``body`` (a model's JSON dump) less each key of ``defaults`` that holds its value there."""
    for *parents, name in defaults:
        holders = [body]
        for key in parents:  # the tables holding the key: through each item of a list at "[]"
            holders = [x for h in holders for x in (h if key == "[]" else [h.get(key)]) if isinstance(x, (dict, list))]
        for holder in holders:
            if isinstance(holder, dict) and name in holder and holder[name] == defaults[(*parents, name)]:
                del holder[name]
    return body


def _hashed_design(design: VenueDesign, funded: bool, collateral: bool = False) -> dict:
    """A design as :func:`run_hash` hashes it: its fields, less each of
    :data:`PORTFOLIO_DESIGN_DEFAULTS` that holds its default, less its ``funding`` when it
    pays nothing (no scenario of the run gives funding rates, ``funded`` False, and its rule
    reads only those), and less its ``collateral`` when no scenario of the run has collateral
    assets (``collateral`` False: it values nothing): such a design hashes as before funding
    and collateral existed."""
    body = design.model_dump(mode="json")
    if not funded and design.funding.rule in RULES_WITHOUT_DATA:
        del body["funding"]
    if not collateral:
        del body["collateral"]
    return _without_defaults(body, PORTFOLIO_DESIGN_DEFAULTS)


def run_hash(loaded: LoadedConfig) -> str:
    """The identity of a run: a hash of its resolved config -- each scenario with its own
    population and liquidity (defaults filled in), each venue design as built from its preset
    and overrides, files as absolute paths -- as canonical JSON. Equal runs, equal hashes,
    however the config was written; ``outputs.dir`` and ``[sweep]`` are left out (they change
    nothing in the result rows)."""
    scenarios = []
    funded = held = False
    for spec in loaded.config.all_scenarios():
        # keys a scenario does not use are left out: its hash is the one it had before they
        # existed (finished runs of a sweep stay finished)
        dump = _without_defaults(spec.model_dump(mode="json", exclude={"population", "liquidity"}), SCENARIO_DEFAULTS)
        funded = funded or spec.funding is not None or any(i.funding is not None for i in spec.instruments or ())
        held = held or spec.collateral is not None
        scenarios.append({"scenario": dump,
                          "population": backtest.population_spec(loaded, spec, "sweep"),
                          "liquidity": backtest.liquidity_spec(loaded, spec, "sweep")})
    body = {"format": HASH_FORMAT, "scenarios": scenarios,
            # each scenario's designs, resolved for it (its underlying's and date's margin tables)
            "designs": [[_hashed_design(d, funded, held) for d in backtest.build_designs(loaded, i)]
                        for i in range(len(scenarios))],
            # the series interval also sets how weighted ADL fills are grouped into event rows
            "series_interval_s": loaded.config.outputs.series_interval_s}
    return hashlib.sha256(canonical_json(loaded.resolved(body)).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- one run
class WorkerCache:
    """A worker process's :data:`riskengine.backtest.Memo`: the last few values of each kind
    (tapes, populations, liquidity models), and how many of each it built."""

    #: values kept per kind (a population grid would otherwise hold every population)
    LIMITS = {"tape": 4, "population": 2, "liquidity": 4}

    def __init__(self) -> None:
        self._store: dict[str, OrderedDict[str, Any]] = {}
        self.loads: Counter[str] = Counter()

    def __call__(self, kind: str, key: str, load: Callable[[], Any]) -> Any:
        store = self._store.setdefault(kind, OrderedDict())
        if key in store:
            store.move_to_end(key)
            return store[key]
        value = load()
        self.loads[kind] += 1
        store[key] = value
        while len(store) > self.LIMITS.get(kind, 2):
            store.popitem(last=False)
        return value


_CACHE: WorkerCache | None = None


def worker_cache() -> WorkerCache:
    """This process's cache (made on first use: one per worker process)."""
    global _CACHE
    if _CACHE is None:
        _CACHE = WorkerCache()
    return _CACHE


@dataclass
class Outcome:
    """What one run gave back.

    Attributes
    ----------
    run : Run
    rows : pandas.DataFrame or None
        Its result rows (None when it failed).
    error : str or None
        The error line of a failed run.
    worker : str
        ``host:pid`` of the process that ran it.
    tape_loads : int
        Tapes that process built for this run (0: every tape came from its cache).
    seconds : float
        Wall time of the run in the worker.
    cpu_seconds : float
        CPU time of the worker process during the run (below ``seconds`` when the worker
        waited for a core).
    """

    run: Run
    rows: pd.DataFrame | None
    error: str | None
    worker: str
    tape_loads: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def _error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(run: Run, cache: WorkerCache | None = None) -> Outcome:
    """Run one grid point in this process, with tapes from ``cache`` (default: this process's
    :func:`worker_cache`); an error becomes the outcome's error line instead of an exception,
    so the sweep goes on."""
    cache = cache if cache is not None else worker_cache()
    before = cache.loads["tape"]
    start, cpu = time.perf_counter(), time.process_time()
    try:
        # the sweep draws its own progress (a worker's stderr may be the same terminal)
        rows, error = labelled(backtest.run_config(run.loaded, memo=cache, show_progress=False).table, run), None
    except Exception as exc:  # noqa: BLE001 - recorded with the run, the sweep goes on
        rows, error = None, _error_line(exc)
    return Outcome(run, rows, error, _worker_name(), cache.loads["tape"] - before, time.perf_counter() - start,
                   time.process_time() - cpu)


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Result rows without the wall-clock columns (:data:`riskengine.metrics.TIMING_COLUMNS`),
    in the canonical order: what every executor must give alike for the same config."""
    return table.drop(columns=list(TIMING_COLUMNS)).sort_values(ROW_ORDER).reset_index(drop=True)


def tape_order(run: Run) -> tuple[str, ...]:
    """The tapes a run replays (:func:`riskengine.backtest.tape_key` per scenario): sorting
    runs by it keeps runs on the same tapes together."""
    return tuple(backtest.tape_key(run.loaded, spec) for spec in run.loaded.config.all_scenarios())


def labelled(table: pd.DataFrame, run: Run) -> pd.DataFrame:
    """A run's result rows with ``run`` (its hash) in front, and after ``design`` the design
    ``variant`` (the name plus the grid values of that design's table) and the grid values."""
    table = table.copy()
    table.insert(0, "run", run.hash)
    names = [d.name for d in backtest.build_designs(run.loaded)]
    variants = {}
    for j, name in enumerate(names):
        own = [(".".join(str(p) for p in parse_key(k)[2:]), v) for k, v in run.values.items()
               if parse_key(k)[:2] == ("venues", j) or k == "venues"]
        variants[name] = name + (" (" + ", ".join(f"{k or 'table'}={_show(v)}" for k, v in own) + ")" if own else "")
    at = table.columns.get_loc("design") + 1
    table.insert(at, "variant", table["design"].map(variants))
    for k, (key, cell) in enumerate(run.cells.items(), 1):
        table.insert(at + k, grid_column(key), [cell] * len(table))
    return table


def grid_column(key: str) -> str:
    """The result column of a grid key: the key itself, or ``grid.<key>`` for the one top-level
    key that is also a result column (``scenario``, swept as a whole table)."""
    return f"grid.{key}" if key in ("scenario", "run", "variant") else key


# ---------------------------------------------------------------------------- executors
def _ignore_sigint() -> None:
    """Worker processes leave Ctrl-C to the sweep, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: environment of worker processes: one thread per math library, since each worker is meant to
#: use one core (an idle BLAS thread spinning beside each worker halves a pool's throughput);
#: Dask's nanny sets the same (``distributed.nanny.pre-spawn-environ``). A value set by the
#: user is kept.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def _worker_start() -> Iterator[None]:
    """Processes started inside this block get :data:`WORKER_ENV` and ignore Ctrl-C from their
    first instruction: an ignored signal stays ignored across fork and exec, and Python then
    installs no KeyboardInterrupt handler. (A terminal's Ctrl-C reaches every process of the
    group; the sweep stops its workers itself, without a traceback from each.)"""
    import threading

    added = {k: v for k, v in WORKER_ENV.items() if k not in os.environ}
    os.environ.update(added)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if main:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        for key in added:
            os.environ.pop(key, None)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _died(run: Run, exc: BaseException) -> Outcome:
    return Outcome(run, None, f"the worker running it failed: {_error_line(exc)}", "")


#: where a local Dask cluster's scheduler serves HTTP (health, metrics): any free local port
LOCAL_HTTP_ADDRESS = "127.0.0.1:0"


def dask_client(scheduler: str | None, workers: int, timeout_s: float | None = None):
    """A ``dask.distributed`` client of the cluster at ``scheduler``, or of a new local
    cluster of ``workers`` single-threaded worker processes on 127.0.0.1; and that cluster
    (None for the user's).

    Raises
    ------
    ValueError
        Dask is not installed; the scheduler cannot be reached within ``timeout_s`` (default
        :data:`CONNECT_TIMEOUT_S`).
    """
    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        import logging

        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--executor dask needs Dask: pip install 'riskengine[dask]'") from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=timeout_s, set_as_default=False), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ValueError(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                             f"({' '.join(str(exc).split())})") from None
    with _worker_start():
        # the scheduler's HTTP server on a free local port: with None it takes 8787, and warns when
        # another cluster on the machine holds that port
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=LOCAL_HTTP_ADDRESS, silence_logs=logging.ERROR)
    try:
        return Client(cluster, set_as_default=False), cluster
    except BaseException:
        cluster.close()
        raise


class Executor:
    """Where runs go: ``serial`` (this process), ``processes`` (a pool of ``workers`` fresh
    local processes) or ``dask`` (the cluster at ``scheduler``, or a local cluster of
    ``workers`` processes on 127.0.0.1). A Dask scheduler is connected to when the executor
    is made, so that an unreachable one is reported before anything is written.

    Use as a context manager; :meth:`map` yields each run's outcome as it finishes.
    """

    def __init__(self, kind: str = "serial", workers: int | None = None, scheduler: str | None = None,
                 connect_timeout_s: float | None = None) -> None:
        if kind not in EXECUTORS:
            raise ValueError(f"--executor: expected one of {', '.join(EXECUTORS)} (got {kind!r})")
        if scheduler is not None and kind != "dask":
            raise ValueError("--scheduler: only with --executor dask")
        if workers is not None and workers < 1:
            raise ValueError(f"--workers: expected a number >= 1 (got {workers})")
        self.kind, self.scheduler = kind, scheduler
        self.workers = 1 if kind == "serial" else workers or default_workers()
        self._client = self._cluster = None
        if kind == "dask":
            self._client, self._cluster = dask_client(scheduler, self.workers, connect_timeout_s)

    def describe(self) -> str:
        if self.kind == "serial":
            return "serial executor"
        if self.scheduler is not None:
            return f"dask executor, scheduler {self.scheduler}"
        return f"{self.kind} executor, {self.workers} workers"

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect from the Dask cluster (and stop a local one)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
        self._client = self._cluster = None

    def map(self, runs: list[Run]) -> Iterator[Outcome]:
        """Run ``runs``, yielding each outcome as it finishes (in finishing order). Closing
        the iterator early stops the work: queued runs are cancelled, busy workers stopped."""
        if not runs:  # every run finished earlier (--resume): a generator too, which closes like the others
            return (outcome for outcome in ())
        if self.kind == "serial":  # a cache of this sweep's own, freed with it
            cache = WorkerCache()
            return (execute(run, cache) for run in runs)
        if self.kind == "processes":
            return self._processes(runs)
        return self._dask(runs)

    def _processes(self, runs: list[Run]) -> Iterator[Outcome]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: fresh interpreters, as on a Dask worker (fork would copy this process's threads)
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_sigint)
        finished = False
        try:
            with _worker_start():  # the pool starts its processes on submit
                futures = {pool.submit(execute, run): run for run in runs}
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (e.g. out of memory)
                    outcome = _died(futures[future], exc)
                yield outcome
            finished = True
        finally:
            if finished:
                pool.shutdown()
            else:  # interrupted: the running runs are abandoned, not waited for
                processes = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                # ProcessPoolExecutor has no public way to stop busy workers before Python 3.14
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.join(5)

    def _dask(self, runs: list[Run]) -> Iterator[Outcome]:
        from dask.distributed import as_completed

        client = self._client
        futures = {}
        finished = False
        try:
            for run in runs:
                key = f"riskengine-run-{run.hash}-{uuid.uuid4().hex[:8]}"
                futures[client.submit(execute, run, key=key, pure=False)] = run
            for future in as_completed(list(futures), loop=client.loop):
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died, or the cluster went away
                    outcome = _died(futures[future], exc)
                yield outcome
            finished = True
        finally:
            if not finished:  # interrupted: nothing more runs for this sweep on the cluster
                with contextlib.suppress(Exception):
                    client.cancel(list(futures), force=True)


# ---------------------------------------------------------------------------- output
def _write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a file of the sweep folder atomically (its partition folder made first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, write)


def _write_parquet(table: pd.DataFrame, path: Path) -> None:
    _write(path, lambda tmp: pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp))


def partition(out: Path, run: Run | str, kind: str = "runs") -> Path:
    """The row file of a run: ``OUT/runs/run=<hash>/part-0.parquet`` (``kind="failures"``: its
    failure record)."""
    return out / kind / f"run={run if isinstance(run, str) else run.hash}" / PART


def record(out: Path, outcome: Outcome) -> None:
    """Write a finished run's rows, or its failure, as its partition."""
    failure = partition(out, outcome.run, "failures")
    if outcome.error is None:
        _write_parquet(outcome.rows, partition(out, outcome.run))
        if failure.exists():  # it failed before and ran now (--resume)
            shutil.rmtree(failure.parent, ignore_errors=True)
    else:
        _write_parquet(failure_rows([outcome]), failure)


def failure_rows(failed: Iterable[Outcome]) -> pd.DataFrame:
    """One row per failed run: ``run``, its grid values, ``error`` and ``worker``."""
    rows = [{"run": o.run.hash, **{grid_column(k): v for k, v in o.run.cells.items()}, "error": o.error,
             "worker": o.worker} for o in failed]
    return pd.DataFrame(rows)


def _read(paths: list[Path]) -> pd.DataFrame:
    frames = [pq.read_table(p).to_pandas() for p in paths]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect(out: Path, runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows and failure records of ``runs`` found under ``out``, sorted by run, scenario
    and design (partitions of runs outside ``runs`` are left out)."""
    done = [r for r in runs if partition(out, r).exists()]
    results = _read([partition(out, r) for r in done])
    # a run that failed once and then finished (a Ctrl-C between writing its rows and removing
    # its old failure can leave both) counts as finished
    finished = {r.hash for r in done}
    failures = _read([p for p in (partition(out, r, "failures") for r in runs if r.hash not in finished)
                      if p.exists()])
    if not results.empty:
        results = results.sort_values(ROW_ORDER, kind="stable").reset_index(drop=True)
    if not failures.empty:
        failures = failures.sort_values("run", kind="stable").reset_index(drop=True)
    return results, failures


def rank(results: pd.DataFrame, spec: SweepSpec) -> pd.DataFrame:
    """The design variants ranked by the mean of ``spec.rank_by`` over their rows (every
    scenario and every grid point that does not change the design), best first; with the
    number of runs and the best and worst value."""
    column = spec.rank_by
    columns = ["rank", "variant", "design", "runs", f"{column}_mean", f"{column}_best", f"{column}_worst"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    ascending = spec.rank_order == "ascending"
    groups = results.groupby("variant", sort=True)
    values = groups[column]
    table = pd.DataFrame({
        "design": groups["design"].first(),
        "runs": groups["run"].nunique(),
        f"{column}_mean": values.mean(),
        f"{column}_best": values.min() if ascending else values.max(),
        f"{column}_worst": values.max() if ascending else values.min(),
    }).reset_index()
    table = table.sort_values([f"{column}_mean", "variant"], ascending=[ascending, True], na_position="last",
                              kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table[columns]


# ---------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    """A finished sweep.

    Attributes
    ----------
    out : Path
        The output folder.
    results : pandas.DataFrame
        Every row of every finished run (this session's and earlier ones').
    failures : pandas.DataFrame
        Every failed run: ``run``, grid values, ``error``, ``worker``.
    ranking : pandas.DataFrame
        :func:`rank` of ``results``.
    runs : list of Run
        The plan.
    outcomes : list of Outcome
        This session's runs, in finishing order.
    skipped : int
        Runs finished earlier (``resume``) and not run again.
    """

    out: Path
    results: pd.DataFrame
    failures: pd.DataFrame
    ranking: pd.DataFrame
    runs: list[Run]
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0


class Interrupted(Exception):
    """The sweep was stopped (Ctrl-C): ``finished`` of ``total`` runs have their rows in ``out``."""

    def __init__(self, finished: int, total: int, out: Path) -> None:
        super().__init__(f"{finished} of {total} runs finished ({out})")
        self.finished, self.total, self.out = finished, total, out


#: the manifest of a sweep folder, and its format
MANIFEST, MANIFEST_FORMAT = "sweep.json", 1


@dataclass(frozen=True)
class Manifest:
    """What a sweep folder holds (``OUT/sweep.json``, written first): the config file it was run
    from and the identity of its config and grid, a hash of every run's hash (:func:`run_hash`:
    the resolved base config with each grid point set). ``--resume`` continues a folder only for
    a config and grid of the same identity, so its partitions are never a mix of two sweeps."""

    config: str
    identity: str
    runs: int

    @classmethod
    def of(cls, loaded: LoadedConfig, runs: list[Run]) -> "Manifest":
        body = canonical_json({"format": HASH_FORMAT, "runs": sorted(r.hash for r in runs)})
        config = str(loaded.path.resolve()) if loaded.path is not None else "embedded default config"
        return cls(config, hashlib.sha256(body.encode()).hexdigest()[:16], len(runs))

    def describe(self) -> str:
        return f"{self.config} (identity {self.identity}, {self.runs} runs)"

    def write(self, out: Path) -> None:
        text = json.dumps({"riskengine_sweep": MANIFEST_FORMAT, **asdict(self)}, indent=2) + "\n"
        _write(out / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    @classmethod
    def read(cls, out: Path) -> "Manifest | None":
        """The folder's manifest, None when it has none.

        Raises
        ------
        ValueError
            A manifest that cannot be read.
        """
        path = out / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(data["config"]), str(data["identity"]), int(data["runs"]))
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}: not a readable sweep manifest ({type(exc).__name__}: {exc}); start "
                             f"afresh with --overwrite, or choose another --out") from None


def check_out(out: Path, resume: bool, overwrite: bool, manifest: Manifest | None = None) -> None:
    """Refuse an existing output folder unless ``resume`` (continue it: only the sweep of the
    same config and grid, ``manifest``) or ``overwrite`` (start afresh), and one that is a file or
    cannot be written (:func:`riskengine.files.check_output_folder`)."""
    check_output_folder(out, into=True)
    if out.exists() and not resume and not overwrite:
        raise ValueError(f"{out}: output folder exists (continue that sweep with --resume, start afresh with "
                         f"--overwrite, or choose another with --out)")
    if not (out.exists() and resume and manifest is not None):
        return
    held = Manifest.read(out)
    if held is None:
        if any(out.iterdir()):
            raise ValueError(f"{out}: holds no {MANIFEST}, so which config and grid its rows belong to is unknown "
                             f"(a sweep folder of an earlier riskengine, or not a sweep folder); start afresh "
                             f"with --overwrite, or choose another --out")
    elif held.identity != manifest.identity:
        changed = " (the config or its grid changed since)" if held.config == manifest.config else ""
        raise ValueError(f"{out}: holds the sweep of {held.describe()}, not of {manifest.describe()}{changed}; "
                         f"resume it with its own config, start afresh with --overwrite, or choose another --out")


def run_sweep(loaded: LoadedConfig, out: str | os.PathLike, executor: str = "serial", workers: int | None = None,
              scheduler: str | None = None, resume: bool = False, overwrite: bool = False,
              progress: Progress = _quiet) -> SweepResult:
    """Run the config's sweep grid into ``out``.

    Parameters
    ----------
    loaded : LoadedConfig
        A config with a ``[sweep]`` table.
    out : path
        The output folder (layout: module docstring). Must not exist unless ``resume`` or
        ``overwrite``.
    executor : {"serial", "processes", "dask"}
        Where runs go: this process; ``workers`` local processes; a Dask cluster (``scheduler``,
        or a local cluster of ``workers`` processes on 127.0.0.1).
    workers : int, optional
        Worker processes (default: the usable cores).
    scheduler : str, optional
        Address of a running Dask scheduler (``executor="dask"`` only).
    resume : bool
        Skip runs whose partition exists (failed runs run again).
    overwrite : bool
        Remove an existing ``out`` first.
    progress : callable
        Gets one line per finished run (runs done / total, failures, elapsed time); on a
        terminal a bar of the runs finished is drawn too (:mod:`riskengine.progress`).

    Raises
    ------
    ValueError
        A bad grid or option, an existing folder, Dask missing, an unreachable scheduler.
    Interrupted
        Ctrl-C: the executor is stopped; every finished run's partition is complete.
    """
    runs = expand(loaded)
    spec = loaded.config.sweep
    out = Path(out)
    manifest = Manifest.of(loaded, runs)
    check_out(out, resume, overwrite, manifest)
    with Executor(executor, workers, scheduler) as pool:  # an unreachable scheduler stops us here
        if out.exists() and not resume:  # overwrite
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        if Manifest.read(out) is None:  # first, so that a folder with rows always says whose they are
            manifest.write(out)
        # runs that share tapes go one after another, so a worker's few cached tapes serve them
        todo = sorted((r for r in runs if not partition(out, r).exists()), key=tape_order)
        progress(f"sweep {loaded.name}: {len(runs)} runs over {', '.join(spec.grid)}; "
                 + (f"{len(runs) - len(todo)} finished earlier, {len(todo)} to run; " if resume else "")
                 + f"{pool.describe()}; writing to {out}")
        start = time.perf_counter()
        done, failed, session = len(runs) - len(todo), 0, []
        try:
            _write_parquet(pd.DataFrame([{"run": r.hash, **{grid_column(k): v for k, v in r.cells.items()}}
                                         for r in runs]), out / "plan.parquet")
            with live.display() as shown, shown.task(f"sweep {loaded.name}", len(runs), "runs") as advance, \
                    contextlib.closing(pool.map(todo)) as stream:
                advance(done)
                for outcome in stream:
                    record(out, outcome)
                    session.append(outcome)
                    done += 1
                    advance(done)
                    failed += outcome.error is not None
                    state = "ok" if outcome.error is None else f"FAILED: {outcome.error}"
                    progress(f"[{done}/{len(runs)}] {failed} failed, {time.perf_counter() - start:.1f} s: "
                             f"run {outcome.run.hash} ({outcome.run.describe()}) {state}")
        except KeyboardInterrupt:
            raise Interrupted(sum(partition(out, r).exists() for r in runs), len(runs), out) from None
    results, failures = collect(out, runs)
    ranking = rank(results, spec)
    _write_parquet(results, out / "results.parquet")
    _write(out / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    _write(out / "results.md", lambda tmp: tmp.write_text(backtest.markdown(results), encoding="utf-8"))
    _write_parquet(failures, out / "failures.parquet")
    _write(out / "ranking.csv", lambda tmp: ranking.to_csv(tmp, index=False))
    _write(out / "ranking.md", lambda tmp: tmp.write_text(backtest.markdown(ranking, metrics.table_currency(results)),
                                                          encoding="utf-8"))
    loads = sum(o.tape_loads for o in session)
    processes = len({o.worker for o in session if o.worker})
    progress(f"sweep {loaded.name}: {len(runs) - len(failures)} of {len(runs)} runs finished, {len(failures)} "
             f"failed; {len(session)} ran now in {time.perf_counter() - start:.1f} s ({loads} tape load(s) in "
             f"{processes} worker process(es))")
    return SweepResult(out, results, failures, ranking, runs, session, len(runs) - len(todo))
