"""Live progress on stderr for everything that can take more than a moment: a backtest (tapes
loading, each design replaying, the reference engine tick by tick), a sweep (runs finished),
an import (files), a benchmark (steps).

A live display (rich: a bar or a spinner with the elapsed time) is drawn only when stderr is a
terminal, or when asked (``show=True``); it is cleared when the work is done. The step lines
(:meth:`Display.line`) are printed either way, to stderr, exactly as text: above the live display
on a terminal, as plain lines otherwise, so logs and scripts that read stderr see the same
lines (and a command's one error line stays its last).

>>> with display(show=False) as shown:
...     with shown.task("replaying", total=3, unit="ticks") as advance:
...         for done in range(1, 4):
...             advance(done)
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator

#: what a task's callback takes: the units of work done so far
Advance = Callable[[int], None]
_ACTIVE: contextvars.ContextVar["Display | None"] = contextvars.ContextVar("riskengine_progress", default=None)


def wanted(show: bool | None = None) -> bool:
    """Whether to draw a live display: ``show`` when given, else whether stderr is a terminal."""
    if show is not None:
        return show
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _nothing(done: int) -> None:
    pass


class Display:
    """The live display of one command or call (or none: ``live`` is None)."""

    def __init__(self, live=None) -> None:
        self._live = live

    @property
    def live(self) -> bool:
        """Whether a live display is drawn."""
        return self._live is not None

    def line(self, text: str) -> None:
        """A step line on stderr (above the live display, if any)."""
        if self._live is None:
            print(text, file=sys.stderr, flush=True)
        else:
            self._live.console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None, unit: str = "") -> Iterator[Advance]:
        """A task shown while the block runs: a bar of ``total`` ``unit`` (its callback takes
        how many are done), or a spinner with the elapsed time when the total is unknown."""
        if self._live is None:
            yield _nothing
            return
        task = self._live.add_task(description, total=total, unit=unit)
        try:
            yield lambda done: self._live.update(task, completed=done)
        finally:
            self._live.remove_task(task)


def _progress():
    """A rich progress display on stderr: spinner, what, bar, done/total and unit, times."""
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, ProgressColumn, SpinnerColumn, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class Count(ProgressColumn):
        def render(self, task) -> Text:
            if task.total is None:
                return Text("")
            return Text(f"{task.completed:,.0f}/{task.total:,.0f} {task.fields.get('unit', '')}".rstrip())

    return Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), Count(),
                    TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True, redirect_stdout=False, redirect_stderr=True)


@contextlib.contextmanager
def display(show: bool | None = None) -> Iterator[Display]:
    """The live display for a block (:func:`wanted` decides whether one is drawn); inside
    another display's block, that one (tasks of nested calls join it)."""
    active = _ACTIVE.get()
    if active is not None:
        yield active
        return
    with contextlib.ExitStack() as stack:
        shown = Display(stack.enter_context(_progress()) if wanted(show) else None)
        token = _ACTIVE.set(shown)
        try:
            yield shown
        finally:
            _ACTIVE.reset(token)
