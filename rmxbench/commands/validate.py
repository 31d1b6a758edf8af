"""``rmxbench validate FILE...``: check spec files without touching any model or the network.

Prints one OK line per good file (with row counts) and, for a bad file, each problem as
``file:line: field: message`` with what was given, what is allowed and a hint. Exit code 1 if
any file has an error; warnings (unpinned hub revisions, missing reference file) keep exit 0.
Never imports torch.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.console import Console
from rich.markup import escape

from rmxbench.spec.check import CheckResult, check_spec_file
from rmxbench.spec.problems import MAX_SHOWN, Problem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="spec files, e.g. specs/*.yaml")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print warnings")
    parser.add_argument("--all", action="store_true", help=f"show every problem (default: first {MAX_SHOWN} per file)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")


def _summary(result: CheckResult) -> str:
    spec = result.spec
    assert spec is not None
    kinds = {"base": 0, "rl_baseline": 0, "reasonmaxxer": 0}
    for _, kind, _ in spec.rows():
        kinds[kind] += 1
    n = sum(kinds.values())
    return (
        f"{n} rows ({kinds['base']} base, {kinds['rl_baseline']} RL, {kinds['reasonmaxxer']} ReasonMaxxer), "
        f"{len(spec.protocol.tasks)} task{'s' if len(spec.protocol.tasks) != 1 else ''}"
    )


def _print_problem(console: Console, p: Problem, prev: Problem | None = None) -> None:
    color = "red" if p.severity == "error" else "yellow"
    field = f"[bold]{escape(p.field)}[/]: " if p.field else ""
    console.print(f"  [{color}]{p.severity}[/] {escape(p.where())}: {field}{escape(p.message)}", highlight=False)
    detail = p.detail(prev)
    if detail:
        console.print(f"      {escape(detail)}", highlight=False)
    if p.hint:
        console.print(f"      [cyan]hint:[/] {escape(p.hint)}", highlight=False)


def run(args: argparse.Namespace) -> int:
    console = Console(emoji=False, highlight=False, soft_wrap=True)  # no hard line breaks inside paths
    failed = 0
    for f in args.files:
        result = check_spec_file(f)
        if args.json:
            print(json.dumps({
                "file": f, "ok": result.ok,
                "errors": [asdict(p) for p in result.errors],
                "warnings": [asdict(p) for p in result.warnings],
            }))
            failed += not result.ok
            continue
        if result.ok:
            w = len(result.warnings)
            console.print(f"[bold green]OK[/]   {escape(f)}: {escape(_summary(result))}"
                          + (f" [yellow]({w} warning{'s' if w != 1 else ''})[/]" if w else ""))
            if not args.quiet and result.warnings:
                shown = result.warnings if args.all else result.warnings[:MAX_SHOWN]
                for p in shown:  # one line each; the hints (shared by most warnings) once after
                    console.print(f"  [yellow]warning[/] {escape(p.where())}: {escape(p.field)}: "
                                  f"{escape(p.message)}", highlight=False)
                if len(result.warnings) > len(shown):
                    console.print(f"  … {len(result.warnings) - len(shown)} more warning(s) (--all shows them)")
                for hint in dict.fromkeys(p.hint for p in shown if p.hint):
                    console.print(f"  [cyan]hint:[/] {escape(hint)}", highlight=False)
            continue
        failed += 1
        n = len(result.errors)
        console.print(f"[bold red]FAIL[/] {escape(f)}: {n} error{'s' if n != 1 else ''}")
        shown = result.errors if args.all else result.errors[:MAX_SHOWN]
        for i, p in enumerate(shown):
            _print_problem(console, p, shown[i - 1] if i else None)
        if len(result.errors) > len(shown):
            console.print(f"      … {len(result.errors) - len(shown)} more error(s); fix these first or pass --all")
    if failed and len(args.files) > 1 and not args.json:
        console.print(f"[bold red]{failed} of {len(args.files)} spec files have errors[/]")
    return 1 if failed else 0
