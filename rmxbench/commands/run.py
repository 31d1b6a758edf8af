"""``rmxbench run SPEC``: train missing ReasonMaxxer adapters, evaluate every row, price the rows
and render the board (see :mod:`rmxbench.orchestrator.planner` and :mod:`rmxbench.orchestrator.runner`; the stages are the
table :data:`rmxbench.pipeline.stages.STAGES`).

``--dry-run`` prints the plan (what is cached, what will run, how much can run at once) and its cost
estimate (:mod:`rmxbench.orchestrator.estimate`) without importing torch or touching the network;
``--max-usd`` / ``--max-gpu-hours`` / ``--max-cpu-hours`` refuse a plan whose estimate exceeds the
budget before anything starts. ``--executor ray`` builds independent nodes at once on a
Ray cluster (a local one, or ``--address``; :mod:`rmxbench.orchestrator.ray_executor`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rmxbench.commands.flags import check_writable_dir
from rmxbench.pipeline.stages import STAGES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (specs/*.yaml)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (cached vs to run, content keys) and exit; no torch, no network")
    p.add_argument("--only", action="append", default=[], metavar="ROW_ID",
                   help="run only this row (repeatable); the board still shows every stored result")
    add_context_arguments(p)
    p.add_argument("--out", default="leaderboard", help="board folder (default: leaderboard/)")
    add_executor_arguments(p)
    add_estimate_arguments(p)


def add_context_arguments(p: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--force`` and ``--home``: what :func:`context` and the plan read (``run``, ``train``)."""
    p.add_argument("--data-dir", default=None,
                   help="folder of benchmark JSONL files (shared/benchmarks format); default: "
                        "$RMXBENCH_DATA_DIR, the spec's protocol.data_dir, else hub datasets")
    add_force_argument(p)
    p.add_argument("--home", default=None, help="artifact store folder (overrides $RMXBENCH_HOME)")


def add_estimate_arguments(p: argparse.ArgumentParser) -> None:
    """The cost estimate's options (issue 20): ``--json``, ``--online`` and the budget guards."""
    p.add_argument("--json", action="store_true",
                   help="with --dry-run: print the plan and its cost estimate as JSON instead of tables")
    p.add_argument("--online", action="store_true",
                   help="let the estimate read hub models' sizes from the Hugging Face hub (cached in the store; "
                        "default: offline, from local files, the store's cache or the spec's `params`)")
    p.add_argument("--max-usd", type=float, default=None, metavar="USD",
                   help="refuse to start (exit 1) when the estimated cost of what would run exceeds USD")
    p.add_argument("--max-gpu-hours", type=float, default=None, metavar="H",
                   help="refuse to start (exit 1) when the estimated GPU-hours of what would run exceed H")
    p.add_argument("--max-cpu-hours", type=float, default=None, metavar="H",
                   help="refuse to start (exit 1) when the estimated CPU-hours (CPU-only specs) exceed H")


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--address``, ``--gpus``, ``--cpus``, ``--retries``."""
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: one node at a time in this process (default); ray: independent nodes at once "
                        "on a Ray cluster (needs the `ray` extra)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --executor ray: join this running Ray cluster (host:port, or auto); default: start "
                        "a local Ray for the run")
    p.add_argument("--gpus", type=int, default=None, metavar="N",
                   help="with --executor ray and no --address: the local Ray's GPUs (default: the machine's); on a "
                        "machine without GPUs, N logical GPUs rehearse a cluster run")
    p.add_argument("--cpus", type=int, default=None, metavar="N",
                   help="with --executor ray and no --address: the local Ray's CPUs (default: the machine's)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="with --executor ray: run a node again up to N times when its worker dies (default 2)")


def add_force_argument(p: argparse.ArgumentParser) -> None:
    """``--force STAGE`` (repeatable): the stage names of the table, or ``all``."""
    p.add_argument("--force", action="append", default=[], metavar="STAGE", choices=[*STAGES, "all"],
                   help=f"rebuild STAGE and every node that reads it ({'|'.join(STAGES)}|all); repeatable")


def context(args: argparse.Namespace):
    """The :class:`~rmxbench.spec.context.SpecContext` of ``args.spec`` / ``--data-dir`` / ``--home``;
    ``--home`` is also exported as ``$RMXBENCH_HOME`` so every stage uses the same store."""
    from rmxbench.spec.context import HOME_ENV
    from rmxbench.spec.context import SpecContext

    ctx = SpecContext.load(Path(args.spec), data_dir=args.data_dir, home=args.home)
    if args.home:
        os.environ[HOME_ENV] = str(ctx.home)
    return ctx


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from rmxbench.buildlog import terminal, width
    from rmxbench.errors import UserError
    from rmxbench.orchestrator.estimate import estimate_plan
    from rmxbench.orchestrator.estimate_report import check_budget, estimate_json, render_estimate
    from rmxbench.orchestrator.planner import build_plan, render_plan

    if getattr(args, "json", False) and not args.dry_run:
        raise UserError("--json prints the plan of --dry-run; add --dry-run")
    console = Console(emoji=False, file=terminal(), width=width(terminal()))  # not redirected while a node builds (its output goes to build.log)
    check_executor_arguments(args)
    if args.executor == "ray" and args.address is not None and not args.dry_run:
        from rmxbench.orchestrator.executor import check_reachable

        check_reachable(args.address)  # a dead address fails now, not after the plan
    ctx = context(args)
    if not args.dry_run:  # the output folders are checked before the plan and hours of work, not after
        for flag, folder in (("--home / $RMXBENCH_HOME", Path(ctx.home)), ("--out", Path(args.out))):
            check_writable_dir(flag, folder)
    plan = build_plan(ctx, only=args.only, force=args.force)
    if not args.dry_run and args.executor != "ray":  # engines start in this process: their backend must run here
        from rmxbench.backends.select import check_usable

        check_usable(n.engine for n in plan.run_order())
    est = estimate_plan(plan, online=getattr(args, "online", False))
    # a plan over budget is refused before anything is printed or started: the refusal is the one screen
    notices = check_budget(est, max_usd=getattr(args, "max_usd", None),
                           max_gpu_hours=getattr(args, "max_gpu_hours", None),
                           max_cpu_hours=getattr(args, "max_cpu_hours", None))
    if getattr(args, "json", False):
        import json

        print(json.dumps(estimate_json(est), indent=1, default=str))
    else:
        render_plan(plan, console, estimate_cell=est.cell)
        render_estimate(est, console)
    for notice in notices:
        console.print(f"[yellow]note:[/] {notice}")
    if args.dry_run:
        return 0

    from rmxbench.orchestrator.runner import Runner, print_summary

    summary = Runner(plan, console=console, out_dir=args.out, executor=make_executor(args, plan.store),
                     estimate=est).run()
    print_summary(summary, console)
    return 0


def check_executor_arguments(args: argparse.Namespace) -> None:
    """Raise UserError for Ray options given without ``--executor ray``, or that cannot work together
    (:func:`rmxbench.orchestrator.executor.check_ray_arguments`): before any work, ``--dry-run`` too."""
    from rmxbench.errors import UserError
    from rmxbench.orchestrator.executor import check_ray_arguments

    if args.executor != "ray":
        given = [f"--{n}" for n in ("address", "gpus", "cpus") if getattr(args, n) is not None]
        if args.retries != 2:
            given.append("--retries")
        if given:
            raise UserError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to --executor ray",
                            hint="add --executor ray")
    check_ray_arguments(address=args.address, gpus=args.gpus, cpus=args.cpus, retries=args.retries)


def make_executor(args: argparse.Namespace, store):
    """The executor of ``--executor`` (None: the runner's default, local)."""
    if args.executor != "ray":
        return None
    from rmxbench.orchestrator.ray_executor import RayExecutor

    return RayExecutor(store, address=args.address, gpus=args.gpus, cpus=args.cpus, retries=args.retries)
