"""The plain-Python reference engine (see ``_engine``; split into modules next)."""

from riskengine.reference._engine import *  # noqa: F401,F403
from riskengine.reference._engine import (  # noqa: F401
    PROGRESS_STEPS, Book, adl_score, counterfactual_tape, run_reference, walk_depth,
)
