"""Stubs for riskengine._engine (cext/riskengine/_engine.pyx)."""

from typing import Any

import numpy as np

from riskengine.params import EngineParams

def run_engine(
    tape_ts: np.ndarray,  # const int64_t[::1]
    tape_price: np.ndarray,  # const float64_t[::1]
    stream: np.ndarray,  # const float64_t[::1], length T or 0
    collateral: np.ndarray,  # const float64_t[::1]
    size: np.ndarray,  # const float64_t[::1]
    entry: np.ndarray,  # const float64_t[::1]
    params: EngineParams,
    max_events: int = 0,  # event-log row budget (0: none); one more raises MemoryError
    funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,  # (ts, instrument, rate) payments
    phases: bool = False,  # also return phase_ns: ns per phase of the run (PHASES)
) -> dict[str, Any]: ...
def run_portfolio(
    ts: np.ndarray,  # const int64_t[::1], the merged tape
    inst: np.ndarray,  # const int32_t[::1]
    price: np.ndarray,  # const float64_t[::1]
    stream: np.ndarray,  # const float64_t[::1], length T or 0
    owner: np.ndarray,  # const int64_t[::1], per margin account
    collateral: np.ndarray,  # const float64_t[::1]
    start: np.ndarray,  # const int64_t[::1], CSR offsets (M + 1)
    instrument: np.ndarray,  # const int32_t[::1], per position
    size: np.ndarray,  # const float64_t[::1]
    entry: np.ndarray,  # const float64_t[::1]
    params: list[EngineParams],  # one per instrument
    max_events: int = 0,
    index_stats: bool = False,
    funding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    phases: bool = False,
) -> dict[str, Any]: ...
PHASES: tuple[str, ...]  # the phases phase_ns times: init, index, loop, results, free
def params_struct(params: EngineParams) -> dict[str, Any]: ...  # the struct as _engine_init fills it
def shared_tolerances() -> dict[str, float]: ...  # riskengine.tolerances as compiled in
