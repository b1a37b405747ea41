"""riskengine: replay crash tapes through perpetual-futures risk engines and compare designs.

The names below load on first use, so that ``import riskengine`` is instant: the
``riskengine`` command installs its Ctrl-C handling before anything heavy (numpy, pandas,
the engine) is imported (:func:`riskengine.cli.main`).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (type checkers know the name)
if TYPE_CHECKING:
    from riskengine import calculators, venues
    from riskengine.engine import Result, run
    from riskengine.liquidity import ConstantDepth, DepthCurve, ObservedFlow
    from riskengine.params import EngineParams
    from riskengine.portfolio import Instrument, Portfolio, PortfolioScenario
    from riskengine.scenario import Population, Scenario, Tape
    from riskengine.venue import VenueDesign

#: each public name and the module that defines it (a submodule: the module itself)
_EXPORTS = {
    "calculators": "riskengine.calculators",
    "venues": "riskengine.venues",
    "ConstantDepth": "riskengine.liquidity",
    "DepthCurve": "riskengine.liquidity",
    "ObservedFlow": "riskengine.liquidity",
    "EngineParams": "riskengine.params",
    "Instrument": "riskengine.portfolio",
    "Portfolio": "riskengine.portfolio",
    "PortfolioScenario": "riskengine.portfolio",
    "Population": "riskengine.scenario",
    "Result": "riskengine.engine",
    "Scenario": "riskengine.scenario",
    "Tape": "riskengine.scenario",
    "VenueDesign": "riskengine.venue",
    "run": "riskengine.engine",
}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'riskengine' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__ == f"riskengine.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
