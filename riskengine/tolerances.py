"""Numerical tolerances shared by the Cython engine and the reference engine.

Both engines must take the same branch at every comparison, so every tolerance that decides a
branch is defined here once: the compiled modules (``cext/riskengine/*.pyx``) read these values
into C globals when they are imported, and the reference engine (``riskengine.reference``) uses
them directly. ``tests/test_tolerances.py`` checks that the compiled copies equal these values.
"""
from __future__ import annotations

#: relative size below which an unabsorbed ADL remainder is rounding noise
ADL_REST_TOL = 1e-12
#: an ADL fill stops this far (relative) short of taking the account's equity to exactly zero
ADL_EQUITY_GUARD = 1e-12
#: inventories are sold whole once what would remain is worth less than this (quote units);
#: a partial liquidation must leave at least this notional
DUST_NOTIONAL = 1.0
#: a fillable share of an order below this is rounding (a limit at the price): no fill
FILL_TOL = 1e-12
#: a tier-step partial liquidation aims this far (relative) inside the lower tier
TIER_STEP_MARGIN = 1e-9
#: bisection steps of the water-filling level
WATER_FILLING_STEPS = 60
#: the compiled engine's liquidation index splits a cross account's slack over its positions
#: after holding back this share of its wallet plus gross exposure (at entry and mark) against
#: rounding, so a mark on the safe side of every trigger cannot hide a crossing
SLACK_SPLIT_MARGIN = 1e-9

#: every shared tolerance by name (what the compiled modules report back for the test)
SHARED = {
    "ADL_REST_TOL": ADL_REST_TOL,
    "ADL_EQUITY_GUARD": ADL_EQUITY_GUARD,
    "DUST_NOTIONAL": DUST_NOTIONAL,
    "FILL_TOL": FILL_TOL,
    "TIER_STEP_MARGIN": TIER_STEP_MARGIN,
    "WATER_FILLING_STEPS": WATER_FILLING_STEPS,
    "SLACK_SPLIT_MARGIN": SLACK_SPLIT_MARGIN,
}
