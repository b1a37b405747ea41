"""Shared test configuration.

The benchmark suite in ``tests/benchmarks`` is not part of the normal run; it is collected
only with ``--benchmarks`` (``pytest tests/benchmarks --benchmarks``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCH_DIR = Path(__file__).resolve().parent / "benchmarks"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--benchmarks", action="store_true", default=False,
                     help="collect the benchmark suite in tests/benchmarks")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not config.getoption("--benchmarks") and BENCH_DIR in (collection_path, *collection_path.parents):
        return True
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: required under CI, skipped with a reason elsewhere when absent."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CI") == "true":
        pytest.fail(f"../shared/data is missing at {SHARED_DATA} (required under CI=true)")
    pytest.skip(f"../shared/data not found at {SHARED_DATA}")
