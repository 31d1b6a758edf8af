"""Markdown renderer of the board."""


from __future__ import annotations

import warnings

from rmxbench.board import statistics as stats


#: Column labels of the tasks (paper Table 3 headers), from the benchmark registry.
from rmxbench.evaluation.benchmarks import LABELS as TASK_LABELS  # noqa: E402

from rmxbench.board.model import Board, Row, Score
from rmxbench.board.text import (NO_PAIRED, PAIRED_LEGEND, PAIRED_TITLE, md_escape, paper_cost_shown, _missing_tag, cost_ratio_text,
                                 cost_text, figure_caption, figure_file, fmt_ci, fmt_diff, fmt_p, fmt_usd)


# --------------------------------------------------------------------------- Markdown


def _md_cell(cell: Score) -> str:
    if cell.score is None:
        return "—" if cell.reported is None else f"— (paper {cell.reported:.3f})"
    s = f"**{cell.score:.3f}**" if cell.best else f"{cell.score:.3f}"
    if cell.ci is not None:
        s += f" {fmt_ci(cell.ci)}"
    if cell.reported is not None:
        s += f" (paper {cell.reported:.3f}, {fmt_diff(cell.diff)})"
    return s


def _md_avg(row: Row, n_tasks: int) -> str:
    c = row.avg
    if c.score is None:
        return "—" if c.reported is None else f"— (paper {c.reported:.3f})"
    s = f"**{c.score:.3f}**" if c.best else f"{c.score:.3f}"
    if c.ci is not None:
        s += f" {fmt_ci(c.ci)}"
    if not row.complete:
        s += f" (incomplete: {row.avg_tasks}/{n_tasks} tasks)"
        if c.reported is not None:
            s += f" (paper {c.reported:.3f})"
    elif c.reported is not None:
        s += f" (paper {c.reported:.3f}, {fmt_diff(c.score - c.reported)})"
    return s


def _md_cost(row: Row) -> str:
    """Cost cell; ``$`` is backslash-escaped (GitHub would read ``$...$`` as math)."""
    c = row.cost
    txt = cost_text(c)
    txt = None if txt is None else md_escape(txt)
    parts = []
    if txt is not None:
        parts.append((f"*{txt}*" if c.basis == "estimated" else txt) + f" ({md_escape(c.basis)})")
    if (paper := paper_cost_shown(row)) is not None:
        usd, basis = paper
        ptxt = f"*{md_escape(fmt_usd(usd))}*" if basis == "estimated" else md_escape(fmt_usd(usd))
        parts.append(f"(paper {ptxt}, {md_escape(basis or 'basis not given')})")
    return " ".join(parts) or "—"


def _header_labels(board: Board) -> list[str]:
    return [f"{TASK_LABELS.get(t, t)} {board.view.metrics[t]}" for t in board.view.tasks]


def render_markdown(board: Board, chart: str | None = None, sections: str = "") -> str:
    """The board as GitHub-flavoured Markdown (pipe tables only); ``chart``: PNG file name to link;
    ``sections``: Markdown of the spec's analyses (already escaped), shown under their own heading."""
    L: list[str] = [f"# rmxbench leaderboard: {md_escape(board.view.suite)}", ""]
    if board.view.description:
        L += [md_escape(board.view.description), ""]
    L += _md_meta(board.view.meta)
    L += ["", "## Results", ""]
    heads = ["Model", *_header_labels(board), "Avg", "Cost"]
    L.append("| " + " | ".join(heads) + " |")
    L.append("|" + "|".join([":---"] + ["---:"] * (len(heads) - 1)) + "|")
    note_rows: list[Row] = []
    for fam, blocks in board.families.items():
        L.append(f"| **{md_escape(fam)}** |" + " |" * (len(heads) - 1))
        for b in blocks:
            for r in b.rows:
                label = md_escape(r.view.label)
                if not r.reproduced:
                    label += f" \\[{_missing_tag(r)}\\]"
                if r.note:
                    note_rows.append(r)
                    label += f" (note {len(note_rows)})"
                cells = [_md_cell(r.cells[t]) for t in board.view.tasks]
                L.append("| " + " | ".join([label, *cells, _md_avg(r, len(board.view.tasks)), _md_cost(r)]) + " |")
    L.append("")
    L += [
        "Cells: reproduced score [95% percentile-bootstrap CI over problems] (paper value, reproduced − paper). "
        f"**Bold**: best reproduced value in the column among a base model's rows. "
        "\\[paper only\\] / \\[no result\\] / \\[no checkpoint\\]: no reproduced result (the paper's numbers "
        "where the row points at them). "
        "Avg: mean of the task columns the row has. Cost: training cost; *italic* = estimated (as in the paper).",
        "",
    ]
    if note_rows:
        L += ["### Notes", ""]
        for i, r in enumerate(note_rows, 1):
            L.append(f"{i}. {md_escape(r.base_name)} {md_escape(r.view.label)} (`{r.row_id}`): {md_escape(r.note)}")
        L.append("")
    if chart:
        L += [f"![Avg score vs training cost (log scale)]({chart})", ""]
    if board.cost_ratios:
        L += [f"- {md_escape(cost_ratio_text(r))}" for r in board.cost_ratios] + [""]
    for f in board.figures:
        L += [f"![{md_escape(figure_caption(f))}]({figure_file(board.view.suite, f)})", ""]
    L += [f"## {PAIRED_TITLE}", ""]
    if board.comparisons:
        heads2 = ["Row", "vs", *_header_labels(board), "Avg"]
        L.append("| " + " | ".join(heads2) + " |")
        L.append("|" + "|".join([":---", ":---"] + ["---:"] * (len(heads2) - 2)) + "|")
        for c in board.comparisons:
            cells = [_md_paired(c.per_task.get(t)) for t in board.view.tasks]
            L.append(
                "| " + " | ".join([
                    f"{md_escape(c.rmx.base_name)} {md_escape(c.rmx.display_name)}",
                    md_escape(c.other.view.label if c.other.kind != "base" else c.other.display_name + " (base)"),
                    *cells, _md_paired(c.avg),
                ]) + " |"
            )
        L += ["", PAIRED_LEGEND.format(n=stats.N_RESAMPLES), ""]
    else:
        L += [NO_PAIRED, ""]
    if sections:
        L += ["## Analyses (paper §3, §4, §6.3)", "", sections, ""]
    if board.warnings:
        L += ["## Warnings", ""] + [f"- {md_escape(w)}" for w in board.warnings] + [""]
    return "\n".join(L)


def _md_paired(r: stats.PairedResult | None) -> str:
    if r is None:
        return "—"
    return f"{fmt_diff(r.delta)} [{fmt_diff(r.ci[0])}, {fmt_diff(r.ci[1])}] {fmt_p(r.p)}"


def _md_meta(meta) -> list[str]:
    return [f"- **{md_escape(k)}**: {md_escape(v)}" for k, v in meta]
