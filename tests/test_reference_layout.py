"""The reference engine mirrors the compiled engine module by module and shares its tolerances.

``riskengine/reference/`` holds one plain-Python twin per compiled module in ``cext/riskengine/``
(``_engine.py`` beside ``_engine.pyx``, ...); a compiled module without a twin is named as such in
the package docstring's module map. The tolerances that decide a branch come from
``riskengine.tolerances`` in both engines: a reference module that defined its own copy could
drift from the compiled one without any parity test noticing until a rare branch is hit.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

import riskengine.reference
from riskengine import tolerances

ROOT = Path(__file__).resolve().parents[1]
CEXT = ROOT / "cext" / "riskengine"
REFERENCE = ROOT / "riskengine" / "reference"

COMPILED = sorted(p.stem for p in CEXT.glob("_*.pyx"))
TWINS = sorted(p.stem for p in REFERENCE.glob("_*.py") if p.stem != "__init__")
#: module-level numbers of the reference that are not tolerances: ln 2 (the impact half-life's
#: decay, also a constant of ``_liquidity.pyx``) and how often a run reports its progress
NOT_TOLERANCES = {"LN2", "PROGRESS_STEPS"}


def _module_map() -> tuple[set[str], set[str]]:
    """The twins and the compiled modules without one, as the package docstring names them."""
    doc = riskengine.reference.__doc__
    modules = doc[doc.index("\nModules\n"):]
    twins = set(re.findall(r"^\* ``(_\w+)\.py`` — ``\1\.pyx``", modules, flags=re.M))
    no_twin = modules[modules.index("No twin:"):]
    return twins, set(re.findall(r"``(_\w+)\.pyx``", no_twin))


def test_every_compiled_module_has_a_twin_or_is_named_without_one():
    twins, no_twin = _module_map()
    assert set(TWINS) == twins, "the module map names exactly the reference modules"
    assert not twins & no_twin
    assert twins | no_twin == set(COMPILED), "every compiled module is in the module map"
    for stem in TWINS:
        assert (CEXT / f"{stem}.pyx").is_file(), f"riskengine/reference/{stem}.py mirrors no compiled module"


@pytest.mark.parametrize("stem", TWINS)
def test_each_twin_names_the_compiled_module_it_mirrors(stem):
    module = importlib.import_module(f"riskengine.reference.{stem}")
    assert f"cext/riskengine/{stem}.pyx" in module.__doc__


def _module_numbers(tree: ast.Module) -> dict[str, object]:
    """Module-level names bound to a number (``X = 1e-12``, ``X: float = 1.0``, ``X = -1``)."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        try:
            number = ast.literal_eval(value)
        except ValueError:
            continue
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            out.update({t.id: number for t in targets if isinstance(t, ast.Name)})
    return out


@pytest.mark.parametrize("stem", TWINS + ["__init__"])
def test_reference_modules_define_no_tolerance_of_their_own(stem):
    tree = ast.parse((REFERENCE / f"{stem}.py").read_text())
    own = set(_module_numbers(tree)) - NOT_TOLERANCES
    assert not own, (f"riskengine/reference/{stem}.py defines {sorted(own)}: a tolerance both engines "
                     "use belongs in riskengine/tolerances.py")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            shared = {alias.name for alias in node.names} & set(tolerances.SHARED)
            assert not shared or node.module == "riskengine.tolerances", (stem, node.module, shared)


@pytest.mark.parametrize("stem", TWINS)
def test_the_tolerances_a_twin_uses_are_the_shared_ones(stem):
    module = importlib.import_module(f"riskengine.reference.{stem}")
    for name, value in tolerances.SHARED.items():
        if hasattr(module, name):
            assert getattr(module, name) is value, (stem, name)


def test_every_subpackage_is_installed():
    """A non-editable install ships only the packages pyproject.toml lists."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "riskengine").rglob("__init__.py")}
    assert listed == on_disk
