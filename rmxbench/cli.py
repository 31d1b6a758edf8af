"""The ``rmxbench`` command line.

Subcommands live in ``rmxbench/commands/<name>.py``; each module provides
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). Only the module of the
command actually run is imported, so ``rmxbench validate`` and ``rmxbench --help`` never import
torch.

Errors meant for users are raised as :class:`rmxbench.errors.UserError` and printed as one
screen of text, exit code 1 — never a traceback. Failures of the environment or of a third-party
library that are not rmxbench bugs (vLLM refusing an adapter, a checkpoint that cannot be resumed,
no space left, an unreachable hub, ...) are classified into such errors too
(:func:`rmxbench.failures.classify`); anything else is an "internal error", exit code 2.
``RMXBENCH_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rich_argparse import RichHelpFormatter

from rmxbench import __version__

#: name -> one-line help. Order is the order shown in ``--help``.
COMMANDS: dict[str, str] = {
    "validate": "check spec files (schema, cross-references, ids) without touching any model",
    "run": "train missing adapters, evaluate every row, and compile the board for a spec",
    "board": "render the leaderboard (Markdown + HTML) from stored results",
    "eval": "evaluate one model (+ optional LoRA adapter) on rmxbench's lm-eval tasks",
    "train": "run a spec's ReasonMaxxer recipe for one row (rollouts -> ... -> validation pick)",
    "analyze": "the paper's analyses (reranking, interventions, KL-LoRA distillation, τ curve) on an ad-hoc pair",
}

EPILOG = (
    "Quick start: `rmxbench validate specs/*.yaml`, then `rmxbench run specs/tiny.yaml` (CPU, minutes). "
    "`rmxbench COMMAND --help` shows a command's options. Artifacts go to $RMXBENCH_HOME "
    "(default: the user cache dir); RMXBENCH_DEBUG=1 shows tracebacks."
)

DESCRIPTION = (
    "rmxbench: does cheap, RL-free ReasonMaxxer (entropy-gated contrastive LoRA) match full RL "
    "(GRPO/PPO checkpoints) on six math benchmarks, and at what cost? Declare models in a spec "
    "file, run it, get a Table-3-style leaderboard."
)


#: What Ctrl-C leaves, per command (None: the commands that build stored stages and resume).
INTERRUPTED = {
    None: "interrupted: finished stages are stored; rerun the same command to resume.",
    "eval": "interrupted: each task that finished has its folder under --out; eval does not resume, a rerun "
            "evaluates every task again.",
    "analyze": "interrupted: finished analyses are in --out; rerun the same command to compute the rest.",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the top-level parser with one subparser per command.

    Only ``command``'s module is imported (to add its arguments), which keeps ``rmxbench --help``
    and ``rmxbench validate`` free of torch.

    Raises:
        UserError: ``command``'s module is not available (not written yet, or a dependency of it
            is not installed).
    """
    parser = argparse.ArgumentParser(
        prog="rmxbench", description=DESCRIPTION, epilog=EPILOG, formatter_class=RichHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"rmxbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=RichHelpFormatter)
        p.set_defaults(_command=name)
        if name == command:
            _module(name).add_arguments(p)
    return parser


def _module(name: str):
    """Import ``rmxbench.commands.<name>``; a missing module or dependency is a UserError."""
    from rmxbench.errors import UserError

    modname = f"rmxbench.commands.{name}"
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name == modname:
            raise UserError(
                f"`rmxbench {name}` is not available yet in this version of rmxbench "
                f"(rmxbench/commands/{name}.py is missing).",
                hint="see `rmxbench --help` for the commands there are; `rmxbench validate` always works",
            ) from None
        from rmxbench.failures import missing_package_hint

        missing = (exc.name or "").split(".")[0]
        raise UserError(f"`rmxbench {name}` needs the Python package {missing!r}, which is not installed",
                        hint=missing_package_hint(missing)) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rmxbench`` console script; returns the process exit code."""
    from rmxbench.errors import UserError, print_user_error

    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        # RMXBENCH_THREADS caps CPU threads for every stage (before torch is imported).
        from rmxbench.threads import cap_threads

        cap_threads()
        parser = build_parser(command)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: 0 for --help/--version, 2 for a usage error
            return 0 if exc.code in (0, None) else 1
        if not getattr(args, "_command", None):
            parser.print_help()
            return 0
        return int(_module(args._command).run(args) or 0)
    except UserError as exc:
        from rmxbench.failures import classify

        print_user_error(classify(exc) or exc)  # a UserError re-raised by Ray: the worker's own
        _print_notes(exc)
        return 1
    except KeyboardInterrupt as exc:
        print("\n" + INTERRUPTED.get(command, INTERRUPTED[None]), file=sys.stderr)
        _print_notes(exc)
        return 130
    except Exception as exc:  # last resort, still one screen
        if os.environ.get("RMXBENCH_DEBUG"):
            raise
        from rmxbench.failures import classify

        user = classify(exc)  # third-party and environment failures: not rmxbench bugs
        if user is not None:
            print_user_error(user)
            _print_notes(exc)
            return 1
        from rich.console import Console
        from rich.markup import escape

        first = (str(exc).strip().splitlines() or [""])[0]
        Console(emoji=False, stderr=True).print(
            "[bold red]internal error[/] (a bug in rmxbench; rerun with RMXBENCH_DEBUG=1 for the traceback): "
            + escape(f"{type(exc).__name__}: {first}"), soft_wrap=True
        )
        _print_notes(exc)
        return 2


def _print_notes(exc: BaseException) -> None:
    """Print an exception's notes to stderr (a failed node's kept build log:
    :func:`rmxbench.orchestrator.executor.build_node`)."""
    for note in getattr(exc, "__notes__", ()):
        print(note, file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
