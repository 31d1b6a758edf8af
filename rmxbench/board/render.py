"""The leaderboard: paper Table 3 rebuilt from stored results, as Markdown and one HTML file.

Layout (paper §6.1, Table 3): one group per model family (``base.family``); inside it, for
every base model, the base row, its RL-baseline rows and its ReasonMaxxer rows
(``↪ + SimpleRL-Zoo``, ``↪ + ReasonMaxxer``); one column per task in ``protocol.tasks`` order
with the metric in the header (pass@1, or avg@k for ``protocol.avg_at_k.tasks``), then Avg
(unweighted mean of the task columns the row has; fewer than all tasks is marked) and Cost.

Each reproduced cell shows the score, its 95% percentile-bootstrap CI over problems
(:mod:`rmxbench.board.statistics`) and, when the spec row points at the paper (``reported:``), the
paper's number and the difference reproduced − paper. Rows without reproduced data (an RL
baseline with no public checkpoint, a row not run yet) show the paper's numbers only, marked.

**Bold** marks the best reproduced value per column within each *comparison block* — a base
model with its RL baselines and ReasonMaxxer rows (what the paper bolds; a family such as
``qwen2.5`` holds several base sizes, and bolding across sizes would always pick the largest).
Values are compared at the displayed precision (3 decimals), so ties are all bold; a column
needs at least two reproduced rows in the block to bold anything. Avg is bolded only among
rows that have every task.

Cost: USD when known (measured rows priced with the spec's ``pricing``; RL baselines from the
spec's published ``cost``), CPU-hours for a CPU-only measured run (no USD price), with the
basis; estimated figures in *italics*, as in the paper.

Below the main table: the cost ratio of each RL row trained here (``train:``) to its base's
ReasonMaxxer row (both measured), stage figures (a GRPO row's reward curve), then "Paired
comparisons" — for every ReasonMaxxer row the paired difference Δ to its base and to each RL
baseline of the same base model, and for every RL row trained here Δ to its base, with a
95% paired-bootstrap CI and a p-value per task and for Avg (McNemar exact for pass@1 cells,
paired bootstrap for avg@k cells and Avg; see :mod:`rmxbench.board.statistics`).

HTML: one self-contained file (inline CSS and JS, no network). Click a column header to sort
the rows *within each family group* (descending, ascending, original order); the group
header rows stay put, and non-base rows carry their base model's name so a sorted row is
still identifiable. Hover a cell for its provenance (``title``), click it for a details
panel (model ref + revision or adapter hash, decoding, seeds, grader and lm-eval versions,
hardware, date, n problems, CI). Every spec-supplied string is escaped (``html.escape``; the
provenance JSON inside ``<script>`` has ``<``, ``>``, ``&`` as ``\\u003c`` …). Output is a
pure function of the inputs (no clock, sorted keys, seeded bootstrap): rendering twice gives
byte-identical files. Bootstrap seeds depend on the task only (:func:`rmxbench.board.statistics.cell_seed`),
so two rows with identical verdicts get identical intervals (common random numbers).

Layers (issue 17): :func:`rmxbench.board.view.board_view` reads the spec once; :func:`build_board`
computes the numbers (:mod:`rmxbench.board.model`); :func:`rmxbench.board.table.build_table` formats
every cell once (value, CI, paper value and difference, bold/italic, sort key, provenance);
:mod:`rmxbench.board.markdown` and :mod:`rmxbench.board.html` only lay those strings out. Costs:
:func:`rmxbench.pricing.row_cost` (the stored cost, else the spec's published figure).

Stored results read by ``rmxbench board`` (written by the runner): :mod:`rmxbench.board.runfolder`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from rmxbench.results import RowCost, TaskRecord, atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

from rmxbench.board.chart import render_chart, render_seed_chart
from rmxbench.board.html import render_html
from rmxbench.board.markdown import render_markdown
from rmxbench.board.model import Board, Comparison, Row, Score, build_board
from rmxbench.board.table import Cell, Table, build_table


# --------------------------------------------------------------------------- entry point


def render(
    spec,
    records: list[TaskRecord],
    costs: dict[str, RowCost],
    notes: dict[str, str],
    reference: dict | None,
    out_dir: str | Path,
    figures: dict[str, list[str | Path]] | None = None,
    *,
    analyses: Sequence[Path] = (),
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<suite>.md`` and ``<out_dir>/<suite>.html`` atomically.

    Args:
        spec: the validated :class:`rmxbench.spec.schema.Spec`.
        records: one :class:`TaskRecord` per reproduced (row, task); may be empty.
        costs: row id -> :class:`RowCost` (measured rows; RL baselines fall back to the spec's
            published ``cost``).
        notes: row id -> note shown with the row (e.g. "too few mixed-success problems").
        reference: :func:`load_reference` output, or None for no paper numbers.
        out_dir: output folder (created if missing).
        figures: row id -> PNG files made by its stages (e.g. a GRPO row's ``reward_curve.png``);
            each is copied next to the board as ``<suite>.<row id>.<name>`` and embedded in the
            HTML. Missing files are skipped with a warning.
        analyses: artifact folders of the spec's analyses (:mod:`rmxbench.analysis`): one section
            each, their figures copied to ``<out_dir>/<suite>-analyses/`` (linked from the
            Markdown, embedded in the HTML).

    Returns:
        ``(md_path, html_path)``.
    """
    figs: dict[str, list[tuple[str, bytes]]] = {}
    for rid, paths in (figures or {}).items():
        for p in map(Path, paths):
            try:
                figs.setdefault(rid, []).append((p.name, p.read_bytes()))
            except OSError:
                log.warning("figure %s of row %s is missing (store cleaned?); rerun to rebuild it", p, rid)
    board = build_board(spec, records, costs, notes, reference, figures=figs)
    for w in board.warnings:
        log.warning("%s", w)
    out = Path(out_dir)
    md_path = out / f"{board.view.suite}.md"
    html_path = out / f"{board.view.suite}.html"
    png_path = out / f"{board.view.suite}.png"
    png = render_chart(board)
    if png is not None:
        atomic_write_bytes(png_path, png)
    else:
        png_path.unlink(missing_ok=True)  # never leave a chart of an older run next to this board
    table = build_table(board, seed_chart=render_seed_chart(board))  # issue 19: per-seed scores, if any row has seeds
    for f in table.figures:
        atomic_write_bytes(out / f.file, f.png)
    sections = ("", "")
    if analyses:
        from rmxbench.board.analyses import publish_sections

        sections = publish_sections(analyses, out / f"{board.view.suite}-analyses", f"{board.view.suite}-analyses/")
    atomic_write_text(md_path, render_markdown(table, chart=png_path.name if png is not None else None,
                                               sections=sections[0]))
    atomic_write_text(html_path, render_html(table, chart_png=png, sections=sections[1]))
    return md_path, html_path


__all__ = [
    "render", "build_board", "build_table", "render_markdown", "render_html", "Board", "Row", "Score", "Comparison",
    "Table", "Cell",
]
