"""Liquidity models configured from Python (kernels in ``cext/riskengine/_liquidity.pyx``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

NS = 1_000_000_000


@dataclass(frozen=True)
class ConstantDepth:
    """A book with the same depth profile on both sides at every moment.

    Cumulative depth grows linearly with the distance from the price,
    ``D(delta) = depth_per_pct * delta / 1%`` (reference §5, "linear cumulative depth"), so a
    market order of notional ``X`` moves the price by ``1% * X / depth_per_pct`` and fills half
    that far away on average. A wall of unlimited depth stands ``max_move`` from the tape
    price: what reaches it fills there, so simulated prices stay within
    ``tape x (1 +/- max_move)``.

    Parameters
    ----------
    depth_per_pct : float
        Quote notional resting within 1% of the price on each side. ``inf`` = no slippage and
        no impact (plain replay).
    max_move : float
        Relative distance of the wall from the tape price, in (0, 1).
    half_life_s : float
        Half-life of the transient impact, seconds.
    feedback : float
        Share of each order's price move that persists as transient impact on later prices
        (0 = fills slip but the tape is never moved; 1 = full cascade feedback).
    """

    depth_per_pct: float = math.inf
    max_move: float = 0.5
    half_life_s: float = 30.0
    feedback: float = 1.0

    def engine_fields(self) -> dict:
        """The :class:`riskengine.params.EngineParams` fields this model sets."""
        return {
            "depth_per_pct": float(self.depth_per_pct),
            "max_move": float(self.max_move),
            "impact_half_life_ns": float(self.half_life_s) * NS,
            "impact_feedback": float(self.feedback),
        }
