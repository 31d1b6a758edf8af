"""The ``rmxbench`` command line.

Subcommands live in ``rmxbench/commands/<name>.py``; each module provides
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). Only the module of the
command actually run is imported, so ``rmxbench validate`` and ``rmxbench --help`` never import
torch.

Errors meant for users are raised as :class:`rmxbench.errors.UserError` and printed as one
screen of text, exit code 1 — never a traceback. ``RMXBENCH_DEBUG=1`` shows tracebacks.
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
}

DESCRIPTION = (
    "rmxbench: does cheap, RL-free ReasonMaxxer (entropy-gated contrastive LoRA) match full RL "
    "(GRPO/PPO checkpoints) on six math benchmarks, and at what cost? Declare models in a spec "
    "file, run it, get a Table-3-style leaderboard."
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with one subparser per command (lazy modules)."""
    parser = argparse.ArgumentParser(
        prog="rmxbench", description=DESCRIPTION, formatter_class=RichHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"rmxbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=RichHelpFormatter)
        p.set_defaults(_command=name)
        # Only the chosen command's module is imported (keeps validate/--help free of torch).
        if len(sys.argv) > 1 and name in sys.argv[1:2]:
            _module(name).add_arguments(p)
    return parser


def _module(name: str):
    return importlib.import_module(f"rmxbench.commands.{name}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rmxbench`` console script; returns the process exit code."""
    from rmxbench.errors import UserError, print_user_error

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:])
    if not getattr(args, "_command", None):
        parser.print_help()
        return 0
    try:
        return int(_module(args._command).run(args) or 0)
    except UserError as exc:
        print_user_error(exc)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished stages are stored; rerun the same command to resume.", file=sys.stderr)
        return 130
    except Exception:  # pragma: no cover - last resort, still one screen
        if os.environ.get("RMXBENCH_DEBUG"):
            raise
        import traceback

        from rich.console import Console

        tb = traceback.format_exc().strip().splitlines()
        Console(stderr=True).print(
            "[bold red]internal error[/] (a bug in rmxbench; rerun with RMXBENCH_DEBUG=1 for the traceback):\n"
            + "\n".join(tb[-3:])
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
