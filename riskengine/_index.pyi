"""Stubs for riskengine._index (cext/riskengine/_index.pyx)."""

from collections.abc import Sequence

import numpy as np

def py_heap_order(keys: Sequence[float]) -> np.ndarray: ...  # int64[:]
