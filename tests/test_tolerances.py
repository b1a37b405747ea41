"""The tolerances both engines share are defined once, in :mod:`riskengine.tolerances`: the
compiled modules read them into C globals when they are imported and report what they hold."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from riskengine import _adl, _engine, _liquidity, tolerances

#: the compiled modules that hold shared tolerances
COMPILED = (_engine, _adl, _liquidity)


@pytest.mark.parametrize("module", COMPILED, ids=lambda m: m.__name__)
def test_compiled_tolerances_equal_the_shared_ones(module):
    compiled = module.shared_tolerances()
    assert compiled, f"{module.__name__} reports no shared tolerance"
    for name, value in compiled.items():
        assert name in tolerances.SHARED, f"{module.__name__}.{name} is not in tolerances.SHARED"
        want = tolerances.SHARED[name]
        assert value == want and type(value) is type(want), (module.__name__, name, value, want)


def test_every_shared_tolerance_is_compiled_in_once():
    names = [name for module in COMPILED for name in module.shared_tolerances()]
    assert sorted(names) == sorted(tolerances.SHARED)
    constants = {k: v for k, v in vars(tolerances).items() if k.isupper() and k != "SHARED"}
    assert constants == tolerances.SHARED


def test_compiled_modules_read_the_values_at_import():
    """Changed before the compiled modules are imported, the values they hold change with it:
    no module keeps a copy of its own."""
    changed = {name: value * 3 for name, value in tolerances.SHARED.items()}
    code = f"""
import json
from riskengine import tolerances
for name, value in {changed!r}.items():
    setattr(tolerances, name, value)
from riskengine import _adl, _engine, _liquidity
held = {{}}
for module in (_engine, _adl, _liquidity):
    held.update(module.shared_tolerances())
print(json.dumps(held))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == changed
