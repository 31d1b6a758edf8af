"""User-facing errors: one screen, no traceback.

Raise :class:`UserError` (or a subclass) for anything the user can fix — a bad spec field, a
missing data file, an unknown row id. The CLI prints it with :func:`print_user_error` and exits 1.
"""

from __future__ import annotations

import sys


class UserError(Exception):
    """An error the user can fix. ``str(exc)`` is the full message (may span lines).

    Args:
        message: what is wrong, naming the file/field/value and what is allowed.
        hint: optional next step ("did you mean ...", "pass --data-dir ...").
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def print_user_error(exc: UserError) -> None:
    """Print ``exc`` to stderr with rich markup escaped (spec strings are untrusted)."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, file=sys.stderr)
    console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {escape(exc.hint)}", soft_wrap=True)
