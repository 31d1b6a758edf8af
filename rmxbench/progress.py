"""Progress of long stages: a rich progress bar with counts and ETA, shared by every stage.

The runner (or a command) opens one ``rich.progress.Progress`` and activates it with
:func:`use`; a stage's ``build`` calls :func:`task` to add its own bar and advances it. Outside
:func:`use` a stage still works: :func:`task` then returns a bar of a fresh progress display.
A build in a worker process of a distributed run (:mod:`rmxbench.orchestrator.ray_executor`) runs under
``use(SILENT)``: its bars show nothing (the driver's display shows each node's status).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

_CURRENT: ContextVar[Any] = ContextVar("rmxbench_progress", default=None)


def new_progress(console: Any = None) -> Any:
    """A rich Progress with spinner, description, bar, n/total, elapsed and ETA columns."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                    transient=False)


@contextmanager
def use(progress: Any) -> Iterator[Any]:
    """Make ``progress`` (a started rich Progress) the one stages add their bars to."""
    token = _CURRENT.set(progress)
    try:
        yield progress
    finally:
        _CURRENT.reset(token)


class Bar:
    """One stage's bar: :meth:`advance` by n items, :meth:`done` marks it complete."""

    def __init__(self, progress: Any, description: str, total: int | None):
        self.p = progress
        self.id = progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        self.p.advance(self.id, n)

    def set_total(self, total: int) -> None:
        """Set the number of items once it is known (the ETA needs it)."""
        self.p.update(self.id, total=total)

    def update(self, **fields: Any) -> None:
        """Set fields of the bar (``completed=``, ``description=``; rich's ``Progress.update``)."""
        self.p.update(self.id, **fields)

    def done(self, description: str | None = None) -> None:
        t = next(x for x in self.p.tasks if x.id == self.id)
        kw: dict[str, Any] = {"completed": t.total if t.total is not None else 1}
        if t.total is None:
            kw["total"] = 1
        if description:
            kw["description"] = description
        self.p.update(self.id, **kw)


class _Silent:
    """A progress display that shows nothing (see module doc)."""


#: Pass to :func:`use` to make every :func:`task` bar a no-op.
SILENT = _Silent()


class _SilentBar:
    """A :class:`Bar` that shows nothing."""

    def advance(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass

    def update(self, **fields: Any) -> None:
        pass

    def done(self, description: str | None = None) -> None:
        pass


def task(description: str, total: int | None = None) -> Bar:
    """A bar on the active progress display (see module doc)."""
    p = _CURRENT.get()
    if p is SILENT:
        return _SilentBar()  # type: ignore[return-value]
    if p is None:
        p = new_progress()
        p.start()
        _CURRENT.set(p)
    return Bar(p, description, total)
