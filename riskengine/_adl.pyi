"""Stubs for riskengine._adl (cext/riskengine/_adl.pyx)."""

from collections.abc import Sequence

import numpy as np

def py_adl_queue(
    side: float,
    mark: float,
    sizes: Sequence[float],  # const float64_t[::1]
    entries: Sequence[float],  # const float64_t[::1]
    collaterals: Sequence[float],  # const float64_t[::1]
    ranking: int,
    floors: Sequence[float] = ...,
    rates: Sequence[float] = ...,
    short_mark_over_entry: bool = ...,
) -> tuple[np.ndarray, np.ndarray]: ...  # int64[:], float64[:]
def shared_tolerances() -> dict[str, int]: ...  # riskengine.tolerances as compiled in
