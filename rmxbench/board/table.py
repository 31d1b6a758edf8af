"""The board as rows of fully formatted, format-neutral cells (issue 17; the HELM ``Cell`` idea).

:func:`build_table` decides every cell once: its displayed value, CI, the paper's value and the
difference reproduced − paper, bold/italic marks, sort key, provenance and tooltip text, the row
labels with their tags and note marks, the column headers, the notes, legends and captions.
:mod:`rmxbench.board.markdown` and :mod:`rmxbench.board.html` only lay these strings out (and
escape them for their format); neither formats a number nor decides what a cell shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmxbench.board import statistics as stats
from rmxbench.board import text as T
from rmxbench.board.chart import CAPTION as CHART_CAPTION, TITLE as CHART_TITLE
from rmxbench.board.model import Board, Row, Score
from rmxbench.pricing import cost_text, fmt_usd

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Cell:
    """One formatted cell of a row (a task column, Avg, Cost) or of a paired comparison.

    Attributes:
        kind: ``"score"`` (task or Avg column), ``"cost"`` or ``"paired"`` (Δ of a comparison).
        display_value: the value as shown: ``0.700``, ``$4.12``, ``0.0123 CPU-h``, ``+0.300``;
            ``—`` for a cell with nothing to show; ``""`` for a cost cell showing only the paper's cost.
        value: the number behind ``display_value`` (score, USD, Δ) or None.
        bold: best reproduced value of its column in the comparison block.
        italic: an estimated figure (paper App. D convention).
        ci: the 95% CI, ``[0.630, 0.765]`` (``""`` if none).
        spread: a row trained with several seeds (``seeds:``): the seeds' min–max, ``2 seeds: 0.690–0.710``
            (:func:`text.fmt_spread`); ``""`` otherwise.
        note: a qualifier shown after the value: ``incomplete: 1/3 tasks`` (Avg), the cost's
            basis (``measured``), the p-value (``p<0.001``, paired cells).
        paper: the paper's value (``0.690``, ``$4``) or ``""``.
        paper_italic: the paper's figure is an estimate.
        paper_note: reproduced − paper (``+0.010``, score cells) or the paper figure's basis (cost).
        paper_only: no reproduced value; the paper's value stands in for it.
        sort_key: ``0.700000`` for sorting the column (``""`` sorts last).
        key: provenance key (``rmx-a/gsm8k``); ``""`` = no details panel.
        title: details-panel title (``Base A + ReasonMaxxer / GSM8K``).
        provenance: ordered ``(key, value)`` pairs: where the value comes from.
        description: tooltip text (``""``: a placeholder with nothing behind it, e.g. a paired
            cell of a task the two rows do not share).
    """

    kind: str
    display_value: str
    value: float | None = None
    bold: bool = False
    italic: bool = False
    ci: str = ""
    spread: str = ""
    note: str = ""
    paper: str = ""
    paper_italic: bool = False
    paper_note: str = ""
    paper_only: bool = False
    sort_key: str = ""
    key: str = ""
    title: str = ""
    provenance: Pairs = ()
    description: str = ""


@dataclass(frozen=True)
class NameCell:
    """The Model column of a row: ``label`` (``↪ + GRPO-Zoo``), ``base`` (the base model's name shown
    before a derived row's label, ``""`` for base rows), ``tag`` (``paper only`` / ``no result`` /
    ``no checkpoint`` for rows without reproduced results, else ``""``), ``note`` (the row's note,
    ``""`` if none), ``note_mark`` (``note 2``: the mark on the row, its number in the notes list)
    and ``note_title`` (the row as named in that list), ``sort_key`` (the row title) and
    ``description`` (tooltip: the row id)."""

    label: str
    base: str
    tag: str
    note: str
    note_mark: str
    note_title: str
    sort_key: str
    description: str


@dataclass(frozen=True)
class Line:
    """One board row: ``cells`` are the task columns, then Avg, then Cost."""

    row_id: str
    kind: str
    name: NameCell
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class PairedLine:
    """One paired comparison: the row compared, the row it is compared with, Δ cells (tasks, Avg)."""

    row: str
    vs: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class FigureItem:
    """A stage figure shown with the board: ``caption``, ``file`` (next to the board), ``png`` bytes."""

    caption: str
    file: str
    png: bytes


@dataclass(frozen=True)
class Table:
    """Everything the renderers show, as formatted strings (see module doc). ``groups``: family ->
    its rows in spec order (base, RL baselines, ReasonMaxxer rows); ``notes``: the rows with a note,
    in the order of their marks; ``legend``: ``(style, text)`` segments (:data:`text.LEGEND`)."""

    heading: str
    suite: str
    description: str
    meta: Pairs
    columns: tuple[str, ...]
    groups: dict[str, tuple[Line, ...]]
    notes: tuple[Line, ...]
    cost_ratios: tuple[str, ...]
    figures: tuple[FigureItem, ...]
    paired_title: str
    paired_columns: tuple[str, ...]
    paired: tuple[PairedLine, ...]
    paired_legend: str
    no_paired: str
    warnings: tuple[str, ...]
    legend: Pairs
    chart_title: str
    chart_caption: str
    analyses_title: str


def build_table(board: Board, seed_chart: bytes | None = None) -> Table:
    """The formatted table of ``board`` (no I/O); ``seed_chart``: PNG of the per-seed scores
    (:func:`rmxbench.board.chart.render_seed_chart`), shown first among the figures."""
    view = board.view
    task_heads = [f"{view.task_labels[t]} {view.metrics[t]}" for t in view.tasks]
    groups: dict[str, tuple[Line, ...]] = {}
    notes: list[Line] = []
    for fam, blocks in board.families.items():
        lines = []
        for r in (r for b in blocks for r in b.rows):
            line = Line(r.row_id, r.kind, _name_cell(r, f"note {len(notes) + 1}" if r.note else ""),
                        _row_cells(board, r))
            lines.append(line)
            if r.note:
                notes.append(line)
        groups[fam] = tuple(lines)
    paired = tuple(
        PairedLine(
            c.rmx.view.title,
            c.other.display_name + " (base)" if c.other.kind == "base" else c.other.view.label,
            tuple(_paired_cell(c.per_task.get(t)) for t in view.tasks) + (_paired_cell(c.avg),),
        )
        for c in board.comparisons
    )
    seeded = any(c.rmx.view.seeds or c.other.view.seeds for c in board.comparisons)
    figures = tuple(FigureItem(T.figure_caption(f), T.figure_file(view.suite, f), f.png) for f in board.figures)
    if seed_chart is not None:
        figures = (FigureItem(T.SEED_FIGURE_CAPTION, f"{view.suite}.seeds.png", seed_chart), *figures)
    return Table(
        heading=f"rmxbench leaderboard: {view.suite}", suite=view.suite, description=view.description,
        meta=view.meta, columns=("Model", *task_heads, "Avg", "Cost"), groups=groups, notes=tuple(notes),
        cost_ratios=tuple(T.cost_ratio_text(r) for r in board.cost_ratios),
        figures=figures,
        paired_title=T.PAIRED_TITLE, paired_columns=("Row", "vs", *task_heads, "Avg"), paired=paired,
        paired_legend=T.PAIRED_LEGEND.format(n=board.n_resamples) + (T.PAIRED_SEED_LEGEND if seeded else ""),
        no_paired=T.NO_PAIRED, warnings=tuple(board.warnings),
        legend=tuple((st, tx.format(n=board.n_resamples)) for st, tx in T.LEGEND + (T.SEED_LEGEND if board.has_seeds
                                                                                      else ())),
        chart_title=CHART_TITLE, chart_caption=CHART_CAPTION, analyses_title=T.ANALYSES_TITLE,
    )


def _name_cell(r: Row, note_mark: str) -> NameCell:
    return NameCell(
        label=r.view.label, base="" if r.kind == "base" else r.base_name,
        tag="" if r.reproduced else T.missing_tag(r), note=r.note or "", note_mark=note_mark,
        note_title=f"{r.base_name} {r.view.label}", sort_key=r.view.title, description=r.row_id,
    )


def _row_cells(board: Board, r: Row) -> tuple[Cell, ...]:
    view = board.view
    n = len(view.tasks)
    cells = []
    for t in view.tasks:
        s = r.cells[t]
        cells.append(_score_cell(s, s.diff, "", f"{r.view.title} / {view.task_labels[t]}", f"{r.row_id}/{t}",
                                 T.provenance(view, r, s), T.fmt_spread(s.spread, len(r.view.seeds))))
    incomplete = f"incomplete: {r.avg_tasks}/{n} tasks" if r.avg.score is not None and not r.complete else ""
    cells.append(_score_cell(r.avg, r.avg.diff if r.complete else None, incomplete, f"{r.view.title} / Avg",
                             f"{r.row_id}/avg", T.avg_provenance(r, n), T.fmt_spread(r.avg.spread, len(r.view.seeds))))
    cells.append(_cost_cell(r, f"{r.view.title} / Cost"))
    return tuple(cells)


def _score_cell(s: Score, diff: float | None, note: str, title: str, key: str, items: list, spread: str = "") -> Cell:
    """A task or Avg cell: score, CI, seed spread, note, the paper's value and ``diff`` (None = not shown)."""
    sort = s.score if s.score is not None else s.reported
    return Cell(
        kind="score", display_value=T.fmt_score(s.score), value=s.score, bold=s.best, ci=T.fmt_ci(s.ci),
        spread=spread, note=note, paper="" if s.reported is None else T.fmt_score(s.reported),
        paper_note="" if diff is None else T.fmt_diff(diff), paper_only=s.score is None and s.reported is not None,
        sort_key=T.fmt_sort(sort), key=key, title=title, provenance=tuple(items), description=T.tooltip(items),
    )


def _cost_cell(r: Row, title: str) -> Cell:
    """Cost: the row's own figure with its basis, and the paper's cost where it says something else."""
    c, txt, paper = r.cost, cost_text(r.cost), T.paper_cost_shown(r)
    sort = T.cost_sort_key(c)
    if sort is None and r.reported_cost is not None:
        sort = r.reported_cost[0]
    items = T.cost_provenance(r)
    return Cell(
        kind="cost", display_value=txt if txt is not None else ("" if paper else "—"),
        value=None if c is None else c.usd, italic=txt is not None and c.basis == "estimated",
        note=(c.basis + (", mean per seed" if c.per_seed else "")) if txt is not None else "",
        paper="" if paper is None else fmt_usd(paper[0]), paper_italic=paper is not None and paper[1] == "estimated",
        paper_note="" if paper is None else (paper[1] or "basis not given"),
        sort_key=T.fmt_sort(sort), key=f"{r.row_id}/cost", title=title, provenance=tuple(items),
        description=T.tooltip(items),
    )


def _paired_cell(res: stats.PairedResult | None) -> Cell:
    """Δ of a paired comparison with its 95% CI and p-value (``—`` when the pair has no shared problems)."""
    if res is None:
        return Cell(kind="paired", display_value="—")
    return Cell(
        kind="paired", display_value=T.fmt_diff(res.delta), value=res.delta,
        ci=f"[{T.fmt_diff(res.ci[0])}, {T.fmt_diff(res.ci[1])}]", note=T.fmt_p(res.p),
        description=(f"Δ {res.delta:+.4f}\n95% CI [{res.ci[0]:+.4f}, {res.ci[1]:+.4f}]\n"
                     f"p {res.p:.4g} ({res.test})\nshared problems {res.n}"),
    )
