"""``rmxbench train SPEC --model ROW``: run a spec's ReasonMaxxer recipe for one row.

ROW is a ReasonMaxxer row id, or a base-model id meaning that base's first ReasonMaxxer row.
Stages (each cached in the artifact store, shown with a rich progress bar): pool → rollouts →
selection → entropy → train(τ) for every τ → validation(τ) → pick (the stage table's nodes of the
row up to ``pick``, built by the runner). Prints the τ table (decision
fraction, validation accuracy, malformed share) and the chosen adapter's path.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (specs/*.yaml)")
    p.add_argument("--model", required=True, metavar="ROW",
                   help="ReasonMaxxer row id, or a base id (= its first ReasonMaxxer row)")
    from rmxbench.commands.run import add_context_arguments

    add_context_arguments(p)


def find_row(spec, ident: str):
    """``(base, row)`` for a ReasonMaxxer row id or a base id (its first ReasonMaxxer row).

    Raises:
        UserError: unknown id, or a base without ReasonMaxxer rows (lists the allowed ids).
    """
    from rmxbench.errors import UserError

    rm_ids = []
    for base in spec.models:
        for r in base.reasonmaxxer:
            rm_ids.append(r.id)
            if r.id == ident:
                return base, r
    for base in spec.models:
        if base.id == ident:
            if not base.reasonmaxxer:
                raise UserError(f"base model {ident!r} has no ReasonMaxxer rows in the spec",
                                hint=f"ReasonMaxxer rows: {', '.join(rm_ids) or 'none'}")
            return base, base.reasonmaxxer[0]
    raise UserError(f"--model {ident!r} is neither a ReasonMaxxer row nor a base model of the spec",
                    hint=f"ReasonMaxxer rows: {', '.join(rm_ids) or 'none'}; bases: "
                         f"{', '.join(b.id for b in spec.models)}")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from rmxbench.buildlog import terminal, width
    from rmxbench.commands.run import context
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.orchestrator.runner import train_row

    console = Console(emoji=False, file=terminal(), width=width(terminal()))  # not redirected while a node builds (its output goes to build.log)
    ctx = context(args)
    base, row = find_row(ctx.spec, args.model)
    plan = build_plan(ctx, only=[row.id], force=args.force)
    console.print(f"[bold]{escape(row.id)}[/]: recipe {escape(row.recipe)} on {escape(base.id)} "
                  f"(store {escape(str(plan.store.home))})")
    res = train_row(plan, row.id, console=console)
    if res.status != "ok":
        console.print(f"[yellow]{escape(res.status)}[/]: {escape(res.message)}")
        return 1
    meta = res.metadata
    t = Table(title=f"τ sweep for {row.id} (validation: {meta['validation']['n_problems']} problems)")
    for col in ("τ (nats)", "decision tokens", "sequences", "val. accuracy", "± s.e.", "malformed",
                "final KL@decision", "picked"):
        t.add_column(col, justify="right")
    bv = meta["base_validation"]
    t.add_row("base", "—", "—", f"{bv['accuracy']:.3f}", f"{bv['stderr']:.3f}", f"{bv['malformed_share']:.1%}", "—", "")
    for r in meta["taus"]:
        kl = r.get("final_decision_kl")
        t.add_row(f"{r['tau']:g}", f"{r['decision_fraction']:.2%}", str(r["n_sequences"]),
                  f"{r['validation_accuracy']:.3f}", f"{r['validation_stderr']:.3f}", f"{r['malformed_share']:.1%}",
                  "—" if kl is None else f"{kl:.3f}", "✓" if r["tau"] == meta["tau"] else "")
    console.print(t)
    secs = meta.get("stage_seconds", {})
    console.print("seconds per stage: " + escape(", ".join(f"{k} {v:.1f}" for k, v in secs.items())))
    console.print(f"{escape(res.message)}")
    console.print(f"adapter: [bold]{escape(str(res.adapter_dir))}[/]")
    return 0
