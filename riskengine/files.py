"""Writing result files so that a reader never sees half of one, into folders checked before any
work starts and held by one writer at a time."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
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


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its nearest ancestor that exists (``.`` for a relative path with none)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_writable_dir(folder: str | os.PathLike, label: str | None = None) -> Path:
    """Refuse, before any work starts, a folder that files cannot be created in: ``folder``
    itself when it exists, else its nearest existing ancestor (where the missing folders would
    be made). The test creates and removes a hidden entry there, since permission bits do not
    tell: root passes ``os.access`` on a read-only mount or under ``/proc``.

    Parameters
    ----------
    folder : path
        The folder that will receive files (it may not exist yet).
    label : str, optional
        What the error line starts with (default: the folder).

    Raises
    ------
    ValueError
        One line: ``label: cannot create files in <where>: <reason>``, or that a file stands
        where a folder is needed.
    """
    folder = Path(folder)
    label = label or str(folder)
    where = _nearest_existing(folder)
    if not where.is_dir():
        raise ValueError(f"{label}: is a file, not a folder" if label == str(where)
                         else f"{label}: {where} is a file, not a folder")
    where = Path(os.path.abspath(where))
    try:
        probe = where / f".riskengine-probe-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise ValueError(f"{label}: cannot create files in {where}: {exc.strerror or exc}") from None
    return folder


def check_output_folder(folder: str | os.PathLike, into: bool = False) -> Path:
    """Refuse, before any work starts, an output folder path that is a file, or whose parent
    (the nearest existing one) does not accept new files (:func:`check_writable_dir`);
    ``into``: the writer also adds files inside the folder when it exists (a resumed sweep).

    Raises
    ------
    ValueError
        One line naming the folder and what is wrong.
    """
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{folder}: is a file, not a folder")
        check_writable_dir(folder.parent if str(folder.parent) else Path("."), str(folder))
        if into and folder.is_dir():
            check_writable_dir(folder)
    except ValueError as exc:
        raise ValueError(f"{exc} (choose another with --out)") from None
    return folder


def _lock_holder(fd: int) -> str:
    text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    return text or "another riskengine process"


@contextlib.contextmanager
def exclusive_lock(path: Path, busy: Callable[[str], str], cannot: Callable[[str], str]) -> Iterator[Path]:
    """Hold the lock file ``path`` while the block runs: an exclusive ``flock`` on it, the file
    naming the holder (pid, host, start time). The kernel drops a ``flock`` when its process
    ends, however it ends, so a crashed or killed holder never leaves it locked; its left-over
    file is taken over by the next one. The file is removed on release. Without ``fcntl`` (not
    POSIX) nothing is locked.

    Raises
    ------
    ValueError
        ``busy(holder)`` when another process holds it; ``cannot(reason)`` when the lock file
        cannot be created.
    """
    try:
        import fcntl
    except ImportError:
        yield path
        return
    fd = -1
    try:
        try:
            while True:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ValueError(busy(_lock_holder(fd))) from None
                # the holder before us removes the file as it lets go: hold the file that is at the path
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_ino == os.fstat(fd).st_ino:
                        break
                os.close(fd)
                fd = -1
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"riskengine pid {os.getpid()} on {socket.gethostname()}, since {started}\n".encode(), 0)
        except OSError as exc:
            raise ValueError(cannot(exc.strerror or str(exc))) from None
        yield path
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` as its one writer while the block runs (:func:`exclusive_lock` on the
    sibling file ``.<name>.lock``); parent folders made for the lock file are removed on release
    when still empty.

    Raises
    ------
    ValueError
        Another process holds the folder (one line naming it), or the lock cannot be created.
    """
    folder = Path(folder)
    parent = folder.parent if str(folder.parent) else Path(".")
    made = [p for p in (parent, *parent.parents) if not p.exists()]
    path = parent / f".{folder.name}.lock"

    def cannot(reason: str) -> str:
        return f"{folder}: cannot create its lock file {path}: {reason} (choose another with --out)"

    try:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(cannot(exc.strerror or str(exc))) from None
        with exclusive_lock(path, lambda holder: f"{folder}: {holder} is writing this folder (wait for it to end, "
                                                 f"or choose another with --out)", cannot):
            yield path
    finally:
        for empty in made:  # deepest first
            with contextlib.suppress(OSError):
                empty.rmdir()
