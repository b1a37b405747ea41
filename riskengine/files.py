"""Writing result files so that a reader never sees half of one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write`` on a temporary sibling of ``path``, then rename it into place: ``path``
    is either the whole new file or left as it was (the temporary file is removed on failure).
    A folder written whole goes through :func:`riskengine.backtest.write_outputs` instead."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
