"""Flags shared by the commands, checked before any work, so a bad ``--out``/``--home`` or count is
the first and only screen a user sees (issue 18, "internal error" for environment failures)."""

from __future__ import annotations

import sys
from pathlib import Path


def check_writable_dir(flag: str, folder: Path) -> None:
    """Create ``folder`` (with its parents) and write and remove a probe file in it, before any work.

    Raises:
        UserError: it cannot be created or written (a file on its path, no permission, a read-only
            or virtual filesystem such as ``/proc``); the message names the flag and the folder.
    """
    import tempfile

    from rmxbench.errors import UserError

    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{flag}: {folder} is not a directory ({probe} is a file)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rmxbench-write-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"{flag}: cannot write to {folder} ({exc.strerror or exc})",
                        hint="choose a folder you can write to") from None


def positive_int(text: str) -> int:
    """argparse ``type`` of a count flag (``--limit``, ``--max-new-tokens``, ``--batch-size``): an
    integer of at least 1, else argparse's one-line usage error naming the flag.

    Raises:
        argparse.ArgumentTypeError: not an integer, or below 1.
    """
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {n}")
    if n > sys.maxsize:
        raise argparse.ArgumentTypeError(f"{text} is too large; at most {sys.maxsize}")
    return n


def task_list(text: str) -> list[str]:
    """argparse ``type`` of ``--tasks``: comma-separated names, each once, at least one (the
    names themselves are checked against the task registry by the command).

    Raises:
        argparse.ArgumentTypeError: an empty name (``tinymath,``), no name, or a name given twice.
    """
    import argparse

    names = [t.strip() for t in text.split(",")]
    if not any(names) or not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated task names, e.g. tinymath,gsm8k")
    dup = sorted({t for t in names if names.count(t) > 1})
    if dup:
        raise argparse.ArgumentTypeError(f"{', '.join(dup)} given more than once")
    return names
