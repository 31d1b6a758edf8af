"""Progress of long stages: a rich progress bar with counts and ETA, shared by every stage.

The runner (or a command) opens one ``rich.progress.Progress`` and activates it with
:func:`use`; a stage's ``build`` calls :func:`task` to add its own bar and advances it. Outside
:func:`use` a stage still works: :func:`task` then returns a bar of a fresh progress display.
When the console is not a terminal (a batch job, ``nohup``, CI), :func:`new_display` gives a
:class:`PlainProgress` instead: timestamped lines, at most one per bar every
``RMXBENCH_PROGRESS_SECONDS`` (default 30) seconds.
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

    # stdout/stderr are not redirected through the display: a build's output goes to its log at the
    # descriptor level (rmxbench.buildlog), which a redirection through rich would bypass
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                    transient=False, redirect_stdout=False, redirect_stderr=False)


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


def now() -> str:
    """Local wall-clock time as the plain progress lines print it (``2026-12-03 19:50:01``)."""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S")


def plain_interval() -> float:
    """Seconds between two items-done lines of one bar (``RMXBENCH_PROGRESS_SECONDS``, default 30).

    Raises:
        UserError: the variable is not a number of seconds >= 0.
    """
    import math
    import os

    from rmxbench.errors import UserError

    text = os.environ.get("RMXBENCH_PROGRESS_SECONDS", "30")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise UserError(f"RMXBENCH_PROGRESS_SECONDS={text!r}: allowed is a number of seconds, 0 or more",
                        hint="e.g. RMXBENCH_PROGRESS_SECONDS=60 (at most one items-done line a minute per stage)")
    return value


class PlainProgress:
    """Progress for output that is not a terminal (a batch job, ``nohup``, CI), where rich's live
    display renders nothing until the end: timestamped lines instead (issue 18 item 12).

    Same calls as the rich ``Progress`` the stages' :class:`Bar` uses (``add_task``, ``advance``,
    ``update``, ``remove_task``, ``tasks``, context manager). A bar prints ``<time> <description>:
    <done>/<total> items, ETA <s> s`` at most every :func:`plain_interval` seconds (and nothing
    for a bar without items); the runner prints the node started/finished lines (:meth:`line`).
    """

    def __init__(self, console: Any, interval: float | None = None):
        import time

        self.console = console
        self.interval = plain_interval() if interval is None else interval
        self._clock = time.monotonic
        self._tasks: dict[int, dict[str, Any]] = {}
        self._next = 0

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def line(self, text: str) -> None:
        """Print ``<time> text`` (plain text: no markup, no wrapping)."""
        self.console.print(f"{now()} {text}", markup=False, highlight=False, soft_wrap=True)
        try:
            self.console.file.flush()
        except (AttributeError, ValueError, OSError):
            pass

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        i, self._next = self._next, self._next + 1
        t0 = self._clock()
        self._tasks[i] = {"id": i, "description": description, "total": total, "completed": fields.get("completed", 0),
                          "t0": t0, "printed": t0}
        return i

    @property
    def tasks(self) -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(**t) for t in self._tasks.values()]

    def advance(self, task_id: int | None, advance: float = 1) -> None:
        if task_id in self._tasks:
            self._tasks[task_id]["completed"] += advance
            self._maybe_print(self._tasks[task_id])

    def update(self, task_id: int | None, **fields: Any) -> None:
        t = self._tasks.get(task_id)  # type: ignore[arg-type]
        if t is None:
            return
        if "advance" in fields:
            t["completed"] += fields.pop("advance")
        t.update({k: v for k, v in fields.items() if k in ("description", "total", "completed")})
        self._maybe_print(t)

    def remove_task(self, task_id: int) -> None:
        self._tasks.pop(task_id, None)

    def _maybe_print(self, t: dict[str, Any]) -> None:
        total, done = t["total"], t["completed"]
        now_s = self._clock()
        if not total or done >= total or now_s - t["printed"] < self.interval:
            return
        t["printed"] = now_s
        eta = (now_s - t["t0"]) / done * (total - done) if done > 0 else None
        self.line(f"{t['description']}: {done:g}/{total:g} items"
                  + (f", ETA {eta:.0f} s" if eta is not None else ""))


def new_display(console: Any) -> Any:
    """The progress display for ``console``: rich's live bars on a terminal, else
    :class:`PlainProgress` (timestamped lines a log file can hold)."""
    return new_progress(console) if console.is_terminal else PlainProgress(console)
