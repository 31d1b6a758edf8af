"""Output folders of the commands: checked before any work, so a bad ``--out``/``--home`` is the
first and only screen a user sees (issue 18, "internal error" for environment failures)."""

from __future__ import annotations

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
