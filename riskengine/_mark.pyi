"""Stubs for riskengine._mark (cext/riskengine/_mark.pyx)."""

from collections.abc import Sequence

def py_ema(samples: Sequence[float], weights: Sequence[float], tau: float) -> list[float]: ...
