"""``rmxbench board SPEC``: re-render the leaderboard (Markdown + HTML) from stored results.

Reads ``$RMXBENCH_HOME/runs/<suite>/{results.jsonl,costs.json,notes.json}`` (written by
``rmxbench run``; see :mod:`rmxbench.board.runfolder`) and the spec's ``reference`` file (the
paper's reported numbers), and writes ``<out>/<suite>.md`` and ``<out>/<suite>.html``. Runs
nothing, loads no model, imports no torch: a board with no stored results shows the paper's
numbers only.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (specs/*.yaml)")
    p.add_argument("--home", default=None, help="artifact store folder (overrides $RMXBENCH_HOME)")
    p.add_argument("--out", default="leaderboard", help="board folder (default: leaderboard/)")
    p.add_argument("--reference", default=None,
                   help="paper numbers file (paper_table3.yaml shape); default: the spec's `reference`")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from rmxbench.board.reference import load_reference
    from rmxbench.board.render import render
    from rmxbench.board.runfolder import load_analyses, load_figures, load_run, run_dir
    from rmxbench.errors import UserError
    from rmxbench.spec.context import SpecContext

    console = Console(emoji=False)
    spec_path = Path(args.spec)
    if not spec_path.is_file():
        raise UserError(f"spec file {str(spec_path)!r} not found")
    ctx = SpecContext.load(spec_path, home=args.home)
    spec, home = ctx.spec, ctx.home
    records, costs, notes = load_run(home, spec.suite.name)
    analyses = load_analyses(home, spec.suite.name)
    ref_path = Path(args.reference).expanduser() if args.reference is not None else ctx.reference
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference = load_reference(ref_path)
    for w in caught:
        console.print(f"[yellow]warning:[/] {escape(str(w.message))}")

    class _Collect(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    from rmxbench.commands.flags import check_writable_dir

    check_writable_dir("--out", Path(args.out))
    handler = _Collect()
    logger = logging.getLogger("rmxbench.board.render")
    logger.addHandler(handler)
    try:
        md, html = render(spec, records, costs, notes, reference, args.out,
                          figures=load_figures(home, spec.suite.name), analyses=analyses)
    finally:
        logger.removeHandler(handler)
    for m in handler.messages:
        console.print(f"[yellow]warning:[/] {escape(m)}")
    if not records:
        console.print(
            f"[yellow]no stored results in[/] {escape(str(run_dir(home, spec.suite.name)))} "
            "(run `rmxbench run SPEC` first); the board shows reported numbers only"
        )
    console.print(f"{len(records)} result cells; board: {escape(str(md))} and {escape(str(html))}")
    return 0
