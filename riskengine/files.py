"""Writing result files so that a reader never sees half of one."""

from __future__ import annotations

import os
import tempfile
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


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Refuse a folder that cannot be written, before any work starts.

    ``path`` need not exist: its nearest existing ancestor must be a folder in which a file can
    be created (tried for real, since a mode bit does not stop root and a read-only mount or
    ``/proc`` is not told by the mode bits).

    Raises
    ------
    ValueError
        ``{what} {path}: not a folder`` or ``{what} {path}: cannot write there (reason)``.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what} {path}: not a folder" if existing == path else
                         f"{what} {path}: {existing} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".riskengine-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    return path
