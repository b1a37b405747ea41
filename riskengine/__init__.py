"""riskengine: replay crash tapes through perpetual-futures risk engines and compare designs."""

from riskengine import calculators, venues
from riskengine.engine import Result, run
from riskengine.liquidity import ConstantDepth, DepthCurve, ObservedFlow
from riskengine.params import EngineParams
from riskengine.scenario import Population, Scenario, Tape
from riskengine.venue import VenueDesign

__all__ = [
    "calculators",
    "venues",
    "ConstantDepth",
    "DepthCurve",
    "ObservedFlow",
    "EngineParams",
    "Population",
    "Result",
    "Scenario",
    "Tape",
    "VenueDesign",
    "run",
]
__version__ = "0.1.0"
