"""The debug switch: RISKENGINE_DEBUG=1 rebuilds the extensions with bounds checks, line
tracing and -O0 -g, and that build still matches the reference engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np
import riskengine._engine as eng
assert eng.__file__.startswith({build!r}), eng.__file__
from riskengine import synthetic
from riskengine.engine import run_raw
from riskengine.invariants import violations
from _scenarios import assert_same_run
sc = synthetic.crash_scenario(ticks=3_000, accounts=300, seed=5)
for design in (synthetic.binance_style(), synthetic.hyperliquid_style()):
    from riskengine import ConstantDepth
    p = design.engine_params(ConstantDepth(2e4), 1.0)
    cy, _ = run_raw(sc, p, "cython")
    ref, _ = run_raw(sc, p, "reference")
    assert_same_run(cy, ref)
    assert violations(cy, sc.population, p) == []
    assert len(cy.events["ts"]) > 0
print("debug build ok")
"""


@pytest.mark.slow
def test_debug_build_matches_reference(tmp_path):
    build = tmp_path / "debug"
    build.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, build / name)
    shutil.copytree(ROOT / "cext", build / "cext")
    shutil.copytree(ROOT / "riskengine", build / "riskengine",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = {**os.environ, "RISKENGINE_DEBUG": "1"}
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"],
                          cwd=build, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    generated = (build / "build" / "cython-debug").rglob("_engine.c")
    source = next(generated).read_text()
    assert "CYTHON_TRACE" in source and "__Pyx_TraceLine" in source  # line tracing compiled in
    check = CHECK.format(tests=str(ROOT / "tests"), build=str(build))
    run = subprocess.run([sys.executable, "-c", check], cwd=build, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "PYTHONPATH": str(build)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "debug build ok" in run.stdout
