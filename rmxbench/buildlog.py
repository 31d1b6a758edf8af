"""Where output goes during a node's build: third-party output to the node's ``build.log``, the
terminal kept for rmxbench (issue 18 item 12).

vLLM, TRL, transformers, lm-eval, datasets, accelerate, PEFT, Ray and torch write log records,
``warnings``, tqdm bars and plain prints to the process's stdout/stderr — and vLLM's engine core
may run in a child process that writes to the file descriptors it inherited. :func:`capture`
therefore redirects at the descriptor level: while a node builds, descriptors 1 and 2 of this
process (``os.dup2``) point at ``<temp folder>/build.log``, which the store publishes with the
artifact (atomically). Python-level streams are flushed (and C stdio with ``fflush``) before and
after, so nothing written before the build lands in its log or the other way round. A child
process started during a build keeps the descriptors it inherited: a vLLM engine-core process
started by one node writes its later lines into that node's log.

The terminal stays rmxbench's: :func:`terminal` is a stream on a duplicate of the original
stdout descriptor, made before any redirection (the commands' rich console writes there, so the
progress display is not redirected), and log records of rmxbench's own loggers (``rmxbench.*``,
warning and above: one-line notices such as GRPO's health verdict) are shown on the terminal's
stderr as well as written to the log.

Standard library only (the shared-records layer); imports none of the libraries it captures.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

#: The file every node's folder gets: what third-party libraries printed while it was built.
BUILD_LOG = "build.log"

#: The libraries whose output a build log holds (documentation and tests; the capture itself is
#: by descriptor, so it also holds what any other library or child process writes).
THIRD_PARTY = ("vllm", "transformers", "trl", "lm_eval", "datasets", "accelerate", "peft", "ray", "torch")

_TERMINALS: dict[int, IO[str]] = {}
_DEPTH = 0


def terminal(fd: int = 1) -> IO[str]:
    """A text stream to what descriptor ``fd`` (1: stdout, 2: stderr) was when first asked for,
    unaffected by :func:`capture` (rmxbench's console writes here).

    When ``sys.stdout``/``sys.stderr`` is not the descriptor itself (a test's captured stream, a
    notebook), that stream is returned: it is not redirected by :func:`capture` either.
    """
    stream = sys.stdout if fd == 1 else sys.stderr
    try:
        if stream is None or stream.fileno() != fd:
            raise ValueError
    except (ValueError, OSError, AttributeError, io.UnsupportedOperation):
        return stream if stream is not None else open(os.devnull, "w")
    if fd not in _TERMINALS:
        _TERMINALS[fd] = open(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8",
                              errors="replace")
    if _DEPTH == 0:  # keep the two streams' order: whatever sys.stdout buffered comes first
        _flush()
    return _TERMINALS[fd]


#: Columns of rmxbench's tables when its output is a file or pipe and ``$COLUMNS`` is unset (rich's
#: default, 80, cuts the plan's and the estimate's columns in a redirected run or a SLURM log).
REDIRECTED_COLUMNS = 160


def width(stream: IO[str]) -> int | None:
    """The width for a rich Console writing to ``stream``: None (rich measures it) on a terminal or
    when ``$COLUMNS`` is set, else :data:`REDIRECTED_COLUMNS`."""
    try:
        tty = stream.isatty()
    except (ValueError, OSError, AttributeError):
        tty = False
    return None if tty or os.environ.get("COLUMNS") else REDIRECTED_COLUMNS


def _flush() -> None:
    """Flush Python's standard streams and C stdio (a library's printf before a redirection)."""
    for s in (sys.stdout, sys.stderr):
        try:
            if s is not None:
                s.flush()
        except (ValueError, OSError):
            pass
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no libc symbols (e.g. some embedded Pythons)
        pass


class _OwnRecords(logging.Handler):
    """rmxbench's own warnings during a build: to the terminal's stderr (one line) and the log."""

    def __init__(self, log: IO[str]):
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage()
            terminal(2).write(f"{line}\n")
            terminal(2).flush()
            self.log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {record.levelname} {record.name}: {line}\n")
            self.log.flush()
        except Exception:  # noqa: BLE001 - logging must never break a build
            self.handleError(record)


@contextmanager
def capture(log_path: str | Path, *, header: str = "") -> Iterator[Path]:
    """Send everything written to descriptors 1 and 2 while the body runs to ``log_path``
    (appended; ``header`` first, with a timestamp). Nested use keeps the outer log. An exception
    that stops the body is written to the log (type and traceback) before it propagates.

    Yields:
        ``log_path``.
    """
    global _DEPTH
    log_path = Path(log_path)
    if _DEPTH:
        yield log_path
        return
    terminal(1), terminal(2)  # the terminal's duplicates exist before any redirection
    _flush()
    fh = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
    if header:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {header}\n")
        fh.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    own = _OwnRecords(fh)
    shown = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        fh.write(warnings.formatwarning(message, category, filename, lineno, line))
        fh.flush()

    warnings.showwarning = showwarning  # to the log whatever sys.stderr is (a notebook's, a test's)
    ours = logging.getLogger("rmxbench")
    ours.addHandler(own)  # with a handler on the way, Python's last-resort stderr handler is not used
    _DEPTH += 1
    try:
        for fd in (1, 2):
            os.dup2(fh.fileno(), fd)
        yield log_path
    except BaseException as exc:  # the log says why the work stopped (a kept failed-node log has it)
        import traceback

        _flush()
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} stopped by {type(exc).__name__}:\n"
                 + "".join(traceback.format_exception(exc)))
        fh.flush()
        raise
    finally:
        _flush()
        for fd, d in saved.items():
            os.dup2(d, fd)
            os.close(d)
        _DEPTH -= 1
        ours.removeHandler(own)
        warnings.showwarning = shown
        fh.close()
