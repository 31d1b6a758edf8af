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

    def __reduce__(self):
        """Pickle with the hint and every attribute (subclasses too, e.g. SpecError's problems), so
        an error raised in another process (a Ray worker) reaches the user whole."""
        return _rebuild, (type(self), self.message, dict(self.__dict__))


def _rebuild(cls: type, message: str, state: dict) -> UserError:
    """Unpickle a :class:`UserError` (or subclass) without calling its ``__init__``."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


def print_user_error(exc: UserError) -> None:
    """Print ``exc`` to stderr with rich markup escaped (spec strings are untrusted)."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(emoji=False, stderr=True, file=sys.stderr)
    console.print(f"[bold red]error:[/] {escape(getattr(exc, 'message', None) or first_line(exc))}", soft_wrap=True)
    hint = getattr(exc, "hint", None)
    if hint:
        console.print(f"[yellow]hint:[/] {escape(hint)}", soft_wrap=True)


def exception_chain(exc: BaseException, limit: int = 8) -> list[BaseException]:
    """``exc`` and the exceptions it was explicitly raised from, outermost first: ``__cause__``
    (``raise ... from``) and Ray's ``RayTaskError.cause`` (a failure inside a Ray worker); each once,
    at most ``limit``. ``__context__`` is not followed: an exception a library caught and handled
    on its way says nothing about why it failed."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(out) < limit:
        e = todo.pop(0)
        if e is None or any(e is x for x in out):
            continue
        out.append(e)
        cause = getattr(e, "cause", None)
        todo += [cause if isinstance(cause, BaseException) else None, e.__cause__]
    return out


def raised_in(exc: BaseException, package: str) -> bool:
    """True if a frame of ``exc``'s traceback runs code of module ``package`` or one of its
    submodules (e.g. ``"vllm.lora"``): which library raised it, without importing that library."""
    tb = exc.__traceback__
    while tb is not None:
        mod = str(tb.tb_frame.f_globals.get("__name__", ""))
        if mod == package or mod.startswith(package + "."):
            return True
        tb = tb.tb_next
    return False


def first_line(exc: BaseException, limit: int = 400) -> str:
    """The first non-empty line of ``str(exc)`` (else the type's name), at most ``limit`` characters."""
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    text = lines[0].strip() if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
