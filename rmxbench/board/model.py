"""The board model: rows, score cells (value, CI, reported number, record), comparison blocks and
paired comparisons, built from stored records and a :class:`~rmxbench.board.view.BoardView` (paper
Table 3 layout). Numbers only: their text is :mod:`rmxbench.board.table`."""


from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from rmxbench.board import statistics as stats
from rmxbench.board.reference import lookup_reported
from rmxbench.board.view import BoardView, ViewRow, board_view
from rmxbench.pricing import row_cost
from rmxbench.results import RowCost, TaskRecord, split_seeded_row_key


@dataclass
class Score:
    """The numbers of one (row, task) cell or of a row's Avg. ``score`` is None when the row has no
    reproduced record; ``best``: bold (best of its column in the comparison block).

    A row with ``seeds:`` (issue 19) has no single ``record``: ``seed_records`` holds each training
    seed's record, ``seed_scores`` each seed's score (Avg: each seed's mean over the tasks), ``score``
    their mean and ``spread`` their :class:`~rmxbench.board.statistics.SeedSpread`. ``per_problem`` is
    what the CI and the paired comparisons use: the record's verdicts, or every seed's pooled
    (:func:`~rmxbench.board.statistics.seed_pooled`: a problem's mean is its correctness averaged over
    seeds)."""

    task: str
    score: float | None = None
    ci: tuple[float, float] | None = None
    reported: float | None = None
    record: TaskRecord | None = None
    best: bool = False
    seed_records: dict[int, TaskRecord] = field(default_factory=dict)
    seed_scores: dict[int, float] = field(default_factory=dict)
    spread: stats.SeedSpread | None = None
    per_problem: dict[str, list[bool]] | None = None

    @property
    def diff(self) -> float | None:
        if self.score is None or self.reported is None:
            return None
        return self.score - self.reported


@dataclass
class Row:
    """A board row: its spec view, per-task :class:`Score`, Avg, cost (:func:`rmxbench.pricing.row_cost`),
    the paper's (USD, basis) cost and the note shown with the row (``unavailable`` and run notes)."""

    view: ViewRow
    cells: dict[str, Score] = field(default_factory=dict)
    avg: Score = field(default_factory=lambda: Score(task="avg"))
    avg_tasks: int = 0
    cost: RowCost | None = None
    reported_cost: tuple[float | None, str | None] | None = None
    note: str | None = None
    has_reference: bool = False

    @property
    def reproduced(self) -> bool:
        return any(c.score is not None for c in self.cells.values())

    row_id = property(lambda self: self.view.id)
    kind = property(lambda self: self.view.kind)
    display_name = property(lambda self: self.view.display_name)
    base_name = property(lambda self: self.view.base_name)
    family = property(lambda self: self.view.family)

    @property
    def complete(self) -> bool:
        return self.avg_tasks == len(self.cells)


@dataclass
class Block:
    """A base model with its RL baselines and ReasonMaxxer rows (the bold/comparison unit)."""

    base_id: str
    rows: list[Row]


@dataclass
class Comparison:
    """A trained row vs another row of its block: per-task and Avg paired results.

    ``rmx`` is the row compared (a ReasonMaxxer row vs its base and every RL baseline, or an RL
    row rmxbench trained itself, ``train:``, vs its base); ``other`` the row it is compared with.
    """

    rmx: Row
    other: Row
    per_task: dict[str, stats.PairedResult | None]
    avg: stats.PairedResult | None


@dataclass
class CostRatio:
    """Measured training cost of an RL row trained here ÷ a ReasonMaxxer row of the same base,
    in the unit both have (USD, else GPU-hours, else CPU-hours)."""

    rl: Row
    rmx: Row
    ratio: float
    unit: str
    rl_value: float
    rmx_value: float


@dataclass
class Figure:
    """A stage's figure shown next to the board (e.g. a GRPO row's reward-vs-step curve); ``seed``:
    the training seed whose run made it (a row with ``seeds:``), else None."""

    row: Row
    name: str
    png: bytes
    seed: int | None = None


@dataclass
class Board:
    """Rows grouped by family and comparison block, paired comparisons, cost ratios, figures and the
    warnings raised while building (records for unknown rows or tasks, metric mismatches)."""

    view: BoardView
    families: dict[str, list[Block]]
    comparisons: list[Comparison]
    warnings: list[str]
    n_resamples: int = stats.N_RESAMPLES
    cost_ratios: list[CostRatio] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def rows(self) -> Iterable[Row]:
        for blocks in self.families.values():
            for b in blocks:
                yield from b.rows

    @property
    def has_seeds(self) -> bool:
        """True when a row of the spec declares training ``seeds:`` (the board then explains them)."""
        return any(r.seeds for r in self.view.rows)


def _rounded(x: float) -> float:
    return round(x + 0.0, 3)


def build_board(
    spec,
    records: list[TaskRecord],
    costs: dict[str, RowCost],
    notes: dict[str, str],
    reference: dict | None,
    *,
    n_resamples: int = stats.N_RESAMPLES,
    figures: dict[str, list[tuple[str, bytes]]] | None = None,
) -> Board:
    """Assemble the board's rows, cells, CIs, bold marks and paired comparisons (no I/O).

    ``spec``: the validated Spec; the board reads it only through :func:`board_view`.
    ``figures``: row id -> ``[(file name, PNG bytes)]`` of stage figures shown with the board.

    Records for unknown rows or tasks outside ``protocol.tasks`` are ignored with a warning;
    for a repeated ``(row_id, task)`` the last record wins.
    """
    view = board_view(spec)
    tasks, metrics = list(view.tasks), view.metrics
    warn: list[str] = []
    row_ids = {r.id for r in view.rows}

    by_cell: dict[tuple[str, str], TaskRecord] = {}
    by_seed: dict[tuple[str, str], dict[int, TaskRecord]] = {}  # rows with `seeds:`: one record per seed
    seeds_of = {r.id: r.seeds for r in view.rows}
    for rec in records:
        if rec.row_id not in row_ids:
            warn.append(f"results for row {rec.row_id!r} ignored: no such row in the spec")
            continue
        if rec.task not in metrics:
            warn.append(f"results for {rec.row_id!r} on task {rec.task!r} ignored: not in protocol.tasks")
            continue
        declared = seeds_of[rec.row_id]
        if rec.seed is not None or declared:
            if rec.seed not in declared:
                warn.append(f"results for {rec.row_id!r} on task {rec.task!r} with training seed {rec.seed} ignored: "
                            + (f"the row's seeds are {list(declared)}" if declared else "the row declares no seeds"))
                continue
            by_seed.setdefault((rec.row_id, rec.task), {})[rec.seed] = rec
            continue
        by_cell[(rec.row_id, rec.task)] = rec

    families: dict[str, list[Block]] = {}
    for r in view.rows:
        if r.kind == "base":
            families.setdefault(r.family, []).append(Block(base_id=r.id, rows=[]))
        block = families[r.family][-1]
        ref = lookup_reported(reference, r.reported)
        if r.reported is not None and reference is not None and ref is None:
            warn.append(
                f"row {r.id!r}: reference has no row {r.reported.model!r} in family {r.reported.family!r}"
            )
        row = Row(view=r, has_reference=ref is not None)
        for t in tasks:
            cell = Score(task=t)
            if ref is not None:
                cell.reported = ref["scores"].get(t)
            rec = by_cell.get((r.id, t))
            if by_seed.get((r.id, t)):
                _seed_cell(cell, by_seed[(r.id, t)], f"{r.id} / {t}", metrics[t], n_resamples, warn)
            if rec is not None:
                cell.record = rec
                cell.score = float(rec.score)
                if rec.metric != metrics[t]:
                    warn.append(f"{r.id} / {t}: record metric {rec.metric!r} differs from protocol {metrics[t]!r}")
                if rec.per_problem:
                    cell.per_problem = rec.per_problem
                    pm = stats.problem_means(rec.per_problem)
                    vals = [pm[k] for k in sorted(pm)]
                    cell.ci = stats.bootstrap_mean_ci(
                        vals, n_resamples=n_resamples, seed=stats.cell_seed(t)
                    )
                    if abs(sum(vals) / len(vals) - cell.score) > 1e-6:
                        warn.append(
                            f"{r.id} / {t}: stored score {cell.score:.4f} differs from the mean of its "
                            f"per-problem verdicts {sum(vals) / len(vals):.4f}"
                        )
            row.cells[t] = cell
        # Avg over the task columns the row has.
        have = [c for c in row.cells.values() if c.score is not None]
        row.avg_tasks = len(have)
        if ref is not None:
            row.avg.reported = ref["scores"].get("avg")
        if have:
            row.avg.score = sum(c.score for c in have) / len(have)
            if all(c.per_problem for c in have):
                strata = []
                for c in have:
                    pm = stats.problem_means(c.per_problem)
                    strata.append([pm[k] for k in sorted(pm)])
                row.avg.ci = stats.average_ci(strata, n_resamples=n_resamples, seed=stats.cell_seed("avg"))
            common = [s for s in r.seeds if all(s in c.seed_scores for c in have)]  # seeds scored on every task
            if common:
                row.avg.seed_scores = {s: sum(c.seed_scores[s] for c in have) / len(have) for s in common}
                row.avg.spread = stats.seed_spread(list(row.avg.seed_scores.values()))
        # Cost: stored (measured / runner-filled) first, else the spec's published figure.
        row.cost = row_cost(costs.get(r.id), r.cost, view.pricing)
        if ref is not None and ref.get("cost_usd") is not None:
            row.reported_cost = (float(ref["cost_usd"]), ref.get("cost_basis"))
        parts = []
        if r.unavailable:
            parts.append(f"no public checkpoint: {r.unavailable}")
        if notes.get(r.id):
            parts.append(notes[r.id])
        row.note = "; ".join(parts) or None
        block.rows.append(row)

    for blocks in families.values():
        for b in blocks:
            _mark_best(b, tasks)

    comparisons = _comparisons(families, tasks, n_resamples)
    for rid in sorted(set(notes) - row_ids):
        warn.append(f"note for row {rid!r} ignored: no such row in the spec")
    by_id = {r.row_id: r for bl in families.values() for b in bl for r in b.rows}
    figs = [Figure(by_id[rid], name, png, seed) for key, items in (figures or {}).items()
            for rid, seed in [split_seeded_row_key(key)] if rid in by_id for name, png in items]
    return Board(
        view=view, families=families, comparisons=comparisons, warnings=sorted(set(warn)), n_resamples=n_resamples,
        cost_ratios=_cost_ratios(families), figures=figs,
    )


def _seed_cell(cell: Score, recs: dict[int, TaskRecord], where: str, metric: str, n_resamples: int,
               warn: list[str]) -> None:
    """Fill ``cell`` of a row with ``seeds:`` from its per-seed records (issue 19): the mean over seeds,
    their spread, and the CI of the seed-averaged per-problem correctness (problems resampled)."""
    order = sorted(recs)
    cell.seed_records = {s: recs[s] for s in order}
    cell.seed_scores = {s: float(recs[s].score) for s in order}
    cell.spread = stats.seed_spread(list(cell.seed_scores.values()))
    cell.score = cell.spread.mean
    for s in order:
        rec = recs[s]
        if rec.metric != metric:
            warn.append(f"{where} seed {s}: record metric {rec.metric!r} differs from protocol {metric!r}")
        if rec.per_problem:
            pm = stats.problem_means(rec.per_problem)
            if abs(sum(pm.values()) / len(pm) - rec.score) > 1e-6:
                warn.append(f"{where} seed {s}: stored score {rec.score:.4f} differs from the mean of its "
                            f"per-problem verdicts {sum(pm.values()) / len(pm):.4f}")
    if not all(recs[s].per_problem for s in order):
        return
    try:
        pooled = stats.seed_pooled([recs[s].per_problem for s in order])
    except ValueError as exc:
        warn.append(f"{where}: no CI or paired test over seeds ({exc})")
        return
    if any(len(recs[s].per_problem) != len(pooled) for s in order):
        warn.append(f"{where}: the seeds were scored on different problems; the CI and paired tests use the "
                    f"{len(pooled)} problems every seed has")
    if pooled:
        cell.per_problem = pooled
        pm = stats.problem_means(pooled)
        cell.ci = stats.bootstrap_mean_ci([pm[k] for k in sorted(pm)], n_resamples=n_resamples,
                                          seed=stats.cell_seed(cell.task))


def is_trained_rl(row: Row) -> bool:
    """An RL-baseline row rmxbench trained itself (``train:`` in the spec)."""
    return row.kind == "rl_baseline" and row.view.trained


def _cost_ratios(families: dict[str, list[Block]]) -> list[CostRatio]:
    out = []
    for blocks in families.values():
        for b in blocks:
            for rl in (r for r in b.rows if is_trained_rl(r) and r.cost is not None):
                for rmx in (r for r in b.rows if r.kind == "reasonmaxxer" and r.cost is not None):
                    if rl.cost.basis != "measured" or rmx.cost.basis != "measured":
                        continue
                    for attr, unit in (("usd", "USD"), ("gpu_hours", "GPU-h"), ("cpu_hours", "CPU-h")):
                        a, m = getattr(rl.cost, attr), getattr(rmx.cost, attr)
                        if a is not None and m:
                            out.append(CostRatio(rl, rmx, a / m, unit, a, m))
                            break
    return out


def _mark_best(block: Block, tasks: list[str]) -> None:
    for t in tasks:
        cells = [r.cells[t] for r in block.rows if r.cells[t].score is not None]
        if len(cells) < 2:
            continue
        top = max(_rounded(c.score) for c in cells)
        for c in cells:
            c.best = _rounded(c.score) == top
    complete = [r for r in block.rows if r.avg.score is not None and r.complete]
    if len(complete) >= 2:
        top = max(_rounded(r.avg.score) for r in complete)
        for r in complete:
            r.avg.best = _rounded(r.avg.score) == top


def _comparisons(families: dict[str, list[Block]], tasks: list[str], n_resamples: int) -> list[Comparison]:
    out = []
    for blocks in families.values():
        for b in blocks:
            others = [r for r in b.rows if r.kind in ("base", "rl_baseline") and r.reproduced]
            bases = [r for r in others if r.kind == "base"]
            subjects = [(r, others) for r in b.rows if r.kind == "reasonmaxxer" and r.reproduced]
            subjects += [(r, bases) for r in b.rows if is_trained_rl(r) and r.reproduced]
            for rmx, against in subjects:
                for other in against:
                    per_task: dict[str, stats.PairedResult | None] = {}
                    pairs = []
                    for t in tasks:  # rows with `seeds:`: per-problem correctness averaged over seeds
                        a, o = rmx.cells[t].per_problem, other.cells[t].per_problem
                        if not a or not o:
                            per_task[t] = None
                            continue
                        per_task[t] = stats.paired_compare(
                            a, o, n_resamples=n_resamples, seed=stats.cell_seed("paired", t),
                        )
                        pairs.append((a, o))
                    avg = stats.paired_compare_average(
                        pairs, n_resamples=n_resamples, seed=stats.cell_seed("paired", "avg")
                    ) if pairs else None
                    out.append(Comparison(rmx=rmx, other=other, per_task=per_task, avg=avg))
    return out
