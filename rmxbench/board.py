"""The leaderboard: paper Table 3 rebuilt from stored results, as Markdown and one HTML file.

Layout (paper §6.1, Table 3): one group per model family (``base.family``); inside it, for
every base model, the base row, its RL-baseline rows and its ReasonMaxxer rows
(``↪ + SimpleRL-Zoo``, ``↪ + ReasonMaxxer``); one column per task in ``protocol.tasks`` order
with the metric in the header (pass@1, or avg@k for ``protocol.avg_at_k.tasks``), then Avg
(unweighted mean of the task columns the row has; fewer than all tasks is marked) and Cost.

Each reproduced cell shows the score, its 95% percentile-bootstrap CI over problems
(:mod:`rmxbench.stats`) and, when the spec row points at the paper (``reported:``), the
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

Below the main table: "ReasonMaxxer vs base and RL baselines" — for every ReasonMaxxer row
the paired difference Δ to its base and to each RL baseline of the same base model, with a
95% paired-bootstrap CI and a p-value per task and for Avg (McNemar exact for pass@1 cells,
paired bootstrap for avg@k cells and Avg; see :mod:`rmxbench.stats`).

HTML: one self-contained file (inline CSS and JS, no network). Click a column header to sort
the rows *within each family group* (descending, ascending, original order); the group
header rows stay put, and non-base rows carry their base model's name so a sorted row is
still identifiable. Hover a cell for its provenance (``title``), click it for a details
panel (model ref + revision or adapter hash, decoding, seeds, grader and lm-eval versions,
hardware, date, n problems, CI). Every spec-supplied string is escaped (``html.escape``; the
provenance JSON inside ``<script>`` has ``<``, ``>``, ``&`` as ``\\u003c`` …). Output is a
pure function of the inputs (no clock, sorted keys, seeded bootstrap): rendering twice gives
byte-identical files. Bootstrap seeds depend on the task only (:func:`rmxbench.stats.cell_seed`),
so two rows with identical verdicts get identical intervals (common random numbers).

Stored results read by ``rmxbench board`` (written by the runner): see :func:`run_dir`.
"""

from __future__ import annotations

import html
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rmxbench import stats
from rmxbench.metering import published_cost
from rmxbench.results import RowCost, TaskRecord, atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

#: Column labels of the tasks (paper Table 3 headers).
TASK_LABELS = {
    "gsm8k": "GSM8K",
    "math500": "MATH-500",
    "minerva_math": "Minerva",
    "olympiadbench": "OlympiadBench",
    "aime24": "AIME24",
    "amc23": "AMC23",
    "tinymath": "TinyMath",
}

RESULTS_FILE = "results.jsonl"
COSTS_FILE = "costs.json"
NOTES_FILE = "notes.json"

#: Provenance keys shown first (in this order) in tooltips and the details panel; any other
#: keys of ``TaskRecord.provenance`` follow in sorted order.
PROVENANCE_ORDER = (
    "model", "repo", "path", "revision", "model_revision", "revision_pinned", "gguf_file", "model_sha256",
    "adapter", "adapter_hash", "adapter_sha256", "adapter_dir", "prompt_style", "chat_template", "dtype",
    "decoding", "temperature", "top_p", "top_k", "k", "max_new_tokens", "seed", "seeds", "limit", "data",
    "grader_version", "lm_eval_version", "versions", "backend", "backend_version", "hardware", "device", "accelerator_name",
    "date", "wall_seconds",
)


# --------------------------------------------------------------------------- stored results


def run_dir(home: str | Path, suite: str) -> Path:
    """Folder holding one suite's stored run: ``<home>/runs/<suite>/``.

    Files (written by the runner, read by :func:`load_run`):

    * ``results.jsonl`` — one :class:`TaskRecord` JSON per line (a later line for the same
      ``(row_id, task)`` replaces an earlier one);
    * ``costs.json`` — ``{row_id: RowCost JSON}``;
    * ``notes.json`` — ``{row_id: note}`` (e.g. "too few mixed-success problems").
    """
    return Path(home) / "runs" / suite


def load_run(home: str | Path, suite: str) -> tuple[list[TaskRecord], dict[str, RowCost], dict[str, str]]:
    """Read ``records, costs, notes`` of a stored run (missing files -> empty).

    Raises:
        rmxbench.errors.UserError: a file is not valid JSON / not the expected shape
            (names the file and line).
    """
    from rmxbench.errors import UserError

    d = run_dir(home, suite)
    records: list[TaskRecord] = []
    rpath = d / RESULTS_FILE
    if rpath.exists():
        for lineno, line in enumerate(rpath.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(TaskRecord.from_json(json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise UserError(
                    f"{rpath}:{lineno}: not a TaskRecord JSON line ({exc})",
                    hint="the runner writes this file; rerun `rmxbench run SPEC` to rebuild it",
                ) from None

    def _json_obj(path: Path) -> dict:
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UserError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a JSON object {{row_id: ...}}, got {type(data).__name__}")
        return data

    costs = {}
    for rid, c in _json_obj(d / COSTS_FILE).items():
        try:
            costs[rid] = RowCost.from_json(c)
        except TypeError as exc:
            raise UserError(f"{d / COSTS_FILE}: row {rid!r} is not a RowCost ({exc})") from None
    notes = {rid: str(n) for rid, n in _json_obj(d / NOTES_FILE).items()}
    return records, costs, notes


# --------------------------------------------------------------------------- reference numbers


def load_reference(path: str | Path | None) -> dict | None:
    """Load the paper's reported numbers (``paper_table3.yaml`` shape) with ``yaml.safe_load``.

    Shape: ``{"columns": [task..., "avg"], "families": {family: [{"model", "role", "scores":
    [...], "cost_usd"?, "cost_basis"?}, ...]}}``.

    Returns None (and warns) when ``path`` is None or the file does not exist.

    Raises:
        rmxbench.errors.UserError: the file exists but is not YAML of that shape.
    """
    import yaml

    from rmxbench.errors import UserError

    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        warnings.warn(f"reference file {p} not found: the board shows no reported (paper) numbers", stacklevel=2)
        return None
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{p}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list) or not isinstance(
        data.get("families"), dict
    ):
        raise UserError(f"{p}: expected keys `columns` (list) and `families` (mapping), as in paper_table3.yaml")
    cols = data["columns"]
    for fam, rows in data["families"].items():
        if not isinstance(rows, list):
            raise UserError(f"{p}: families.{fam} must be a list of rows")
        for i, r in enumerate(rows):
            if not isinstance(r, dict) or "model" not in r or not isinstance(r.get("scores"), list):
                raise UserError(f"{p}: families.{fam}[{i}] needs `model` and a `scores` list")
            if len(r["scores"]) != len(cols):
                raise UserError(
                    f"{p}: families.{fam}[{i}] ({r['model']}) has {len(r['scores'])} scores for "
                    f"{len(cols)} columns {cols}"
                )
    return data


def lookup_reported(reference: dict | None, reported) -> dict | None:
    """The reference row a spec row's ``reported: {family, model}`` points at.

    Returns ``{"model", "role", "scores": {column: value}, "cost_usd", "cost_basis"}`` (the
    ``scores`` keys are the reference ``columns``, including ``avg``) or None when there is no
    reference, no pointer, or no such row.
    """
    if not isinstance(reference, dict) or reported is None:
        return None
    cols = reference.get("columns")
    fams = reference.get("families")
    if not isinstance(cols, list) or not isinstance(fams, dict):
        return None
    rows = fams.get(reported.family)
    if not isinstance(rows, list):
        return None
    for r in rows:
        if isinstance(r, dict) and r.get("model") == reported.model and isinstance(r.get("scores"), list):
            return {
                "model": r["model"],
                "role": r.get("role"),
                "scores": {c: (None if v is None else float(v)) for c, v in zip(cols, r["scores"])},
                "cost_usd": r.get("cost_usd"),
                "cost_basis": r.get("cost_basis"),
            }
    return None


# --------------------------------------------------------------------------- board model


@dataclass
class Cell:
    """One (row, task) cell. ``score`` is None when the row has no reproduced record."""

    task: str
    score: float | None = None
    ci: tuple[float, float] | None = None
    reported: float | None = None
    record: TaskRecord | None = None
    best: bool = False

    @property
    def diff(self) -> float | None:
        if self.score is None or self.reported is None:
            return None
        return self.score - self.reported


@dataclass
class Row:
    row_id: str
    kind: str  # base | rl_baseline | reasonmaxxer
    display_name: str
    base_id: str
    base_name: str
    family: str
    spec_row: Any
    cells: dict[str, Cell] = field(default_factory=dict)
    avg: Cell = field(default_factory=lambda: Cell(task="avg"))
    avg_tasks: int = 0
    cost: RowCost | None = None
    reported_cost: tuple[float | None, str | None] | None = None
    note: str | None = None
    has_reference: bool = False

    @property
    def reproduced(self) -> bool:
        return any(c.score is not None for c in self.cells.values())

    @property
    def label(self) -> str:
        """Display label: the base's name, or ``↪ <display_name>`` for derived rows."""
        return self.display_name if self.kind == "base" else f"↪ {self.display_name}"

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
    """ReasonMaxxer row vs a base/RL row: per-task and Avg paired results."""

    rmx: Row
    other: Row
    per_task: dict[str, stats.PairedResult | None]
    avg: stats.PairedResult | None


@dataclass
class Board:
    suite: str
    description: str
    tasks: list[str]
    metrics: dict[str, str]
    families: dict[str, list[Block]]
    comparisons: list[Comparison]
    warnings: list[str]
    spec: Any

    def rows(self) -> Iterable[Row]:
        for blocks in self.families.values():
            for b in blocks:
                yield from b.rows


def task_metric(protocol, task: str) -> str:
    """``"avg@k"`` for tasks in ``protocol.avg_at_k.tasks``, else ``"pass@1"``."""
    return f"avg@{protocol.avg_at_k.k}" if task in protocol.avg_at_k.tasks else "pass@1"


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
) -> Board:
    """Assemble the board's rows, cells, CIs, bold marks and paired comparisons (no I/O).

    Records for unknown rows or tasks outside ``protocol.tasks`` are ignored with a warning;
    for a repeated ``(row_id, task)`` the last record wins.
    """
    tasks = list(spec.protocol.tasks)
    metrics = {t: task_metric(spec.protocol, t) for t in tasks}
    warn: list[str] = []
    row_ids = {r.id for _, _, r in spec.rows()}

    by_cell: dict[tuple[str, str], TaskRecord] = {}
    for rec in records:
        if rec.row_id not in row_ids:
            warn.append(f"results for row {rec.row_id!r} ignored: no such row in the spec")
            continue
        if rec.task not in metrics:
            warn.append(f"results for {rec.row_id!r} on task {rec.task!r} ignored: not in protocol.tasks")
            continue
        by_cell[(rec.row_id, rec.task)] = rec

    families: dict[str, list[Block]] = {}
    for base, kind, r in spec.rows():
        if kind == "base":
            families.setdefault(base.family, []).append(Block(base_id=base.id, rows=[]))
        block = families[base.family][-1]
        ref = lookup_reported(reference, r.reported)
        if r.reported is not None and reference is not None and ref is None:
            warn.append(
                f"row {r.id!r}: reference has no row {r.reported.model!r} in family {r.reported.family!r}"
            )
        row = Row(
            row_id=r.id, kind=kind, display_name=r.display_name, base_id=base.id,
            base_name=base.display_name, family=base.family, spec_row=r, has_reference=ref is not None,
        )
        for t in tasks:
            cell = Cell(task=t)
            if ref is not None:
                cell.reported = ref["scores"].get(t)
            rec = by_cell.get((r.id, t))
            if rec is not None:
                cell.record = rec
                cell.score = float(rec.score)
                if rec.metric != metrics[t]:
                    warn.append(f"{r.id} / {t}: record metric {rec.metric!r} differs from protocol {metrics[t]!r}")
                if rec.per_problem:
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
            if all(c.record is not None and c.record.per_problem for c in have):
                strata = []
                for c in have:
                    pm = stats.problem_means(c.record.per_problem)
                    strata.append([pm[k] for k in sorted(pm)])
                row.avg.ci = stats.average_ci(strata, n_resamples=n_resamples, seed=stats.cell_seed("avg"))
        # Cost: stored (measured / runner-filled) first, else the spec's published figure.
        row.cost = costs.get(r.id) or (published_cost(r.cost, spec.pricing) if getattr(r, "cost", None) else None)
        if ref is not None and ref.get("cost_usd") is not None:
            row.reported_cost = (float(ref["cost_usd"]), ref.get("cost_basis"))
        parts = []
        if getattr(r, "unavailable", None):
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
    return Board(
        suite=spec.suite.name, description=spec.suite.description, tasks=tasks, metrics=metrics,
        families=families, comparisons=comparisons, warnings=sorted(set(warn)), spec=spec,
    )


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
            for rmx in (r for r in b.rows if r.kind == "reasonmaxxer" and r.reproduced):
                for other in others:
                    per_task: dict[str, stats.PairedResult | None] = {}
                    pairs = []
                    for t in tasks:
                        a, o = rmx.cells[t].record, other.cells[t].record
                        if a is None or o is None or not a.per_problem or not o.per_problem:
                            per_task[t] = None
                            continue
                        per_task[t] = stats.paired_compare(
                            a.per_problem, o.per_problem, n_resamples=n_resamples,
                            seed=stats.cell_seed("paired", t),
                        )
                        pairs.append((a.per_problem, o.per_problem))
                    avg = stats.paired_compare_average(
                        pairs, n_resamples=n_resamples, seed=stats.cell_seed("paired", "avg")
                    ) if pairs else None
                    out.append(Comparison(rmx=rmx, other=other, per_task=per_task, avg=avg))
    return out


# --------------------------------------------------------------------------- formatting helpers


def fmt_score(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def fmt_diff(x: float) -> str:
    v = round(x, 3) + 0.0  # no "-0.000"
    return f"{v:+.3f}"


def fmt_ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_usd(usd: float) -> str:
    """``$1,200`` (whole dollars from $10 or for whole amounts, as in the paper), ``$4.12``, ``<$0.01``."""
    if 0 < usd < 0.005:
        return "<$0.01"
    return f"${usd:,.0f}" if usd >= 10 or float(usd).is_integer() else f"${usd:,.2f}"


def cost_text(c: RowCost | None) -> str | None:
    """Cost figure without the basis: ``$4.12``, ``0.012 CPU-h``, ``240 H100-80G-h`` or None."""
    if c is None:
        return None
    if c.usd is not None:
        return fmt_usd(c.usd)
    if c.cpu_hours is not None:
        return f"{c.cpu_hours:.3g} CPU-h"
    if c.gpu_hours is not None:
        return f"{c.gpu_hours:.3g} {c.gpu_type or 'GPU'}-h"
    return None


def cost_sort_key(c: RowCost | None) -> float | None:
    """USD for sorting (rows without a USD figure sort last)."""
    return None if c is None or c.usd is None else float(c.usd)


def _md(s: str) -> str:
    """Escape a spec string for a Markdown table cell: HTML-escape, backslash Markdown syntax."""
    s = html.escape(" ".join(str(s).split()), quote=False)
    for ch in "\\`*_[]|#~$":
        s = s.replace(ch, "\\" + ch)
    return s


def _h(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _script_json(obj: Any) -> str:
    """JSON safe to embed in ``<script type="application/json">`` (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _model_ref_text(spec_row) -> str:
    m = getattr(spec_row, "model", None)
    if m is None:
        return "—"
    if m.repo:
        s = f"{m.repo}@{m.revision}"
    else:
        s = str(m.path)
    if m.gguf_file:
        s += f" ({m.gguf_file})"
    return s


def provenance(board: Board, row: Row, cell: Cell) -> list[tuple[str, str]]:
    """Ordered ``(key, value)`` pairs describing where a cell's number comes from."""
    items: list[tuple[str, str]] = [("row", row.row_id), ("task", cell.task), ("metric", board.metrics.get(cell.task, ""))]
    if row.kind == "reasonmaxxer":
        base = next(b for b in board.spec.models if b.id == row.base_id)
        items.append(("base model", _model_ref_text(base)))
        items.append(("recipe", row.spec_row.recipe))
    else:
        items.append(("model ref", _model_ref_text(row.spec_row)))
    rec = cell.record
    if rec is None:
        items.append(("reproduced", "no (paper number only)" if cell.reported is not None else "no"))
    else:
        items.append(("score", f"{rec.score:.4f}"))
        items.append(("95% CI", fmt_ci(cell.ci) or "n/a (no per-problem verdicts)"))
        items.append(("n problems", str(rec.n_problems)))
        items.append(("k", str(rec.k)))
        if rec.timeouts:
            items.append(("grader timeouts", str(rec.timeouts)))
        if rec.malformed:
            items.append(("no extractable answer", str(rec.malformed)))
        for k_, v in sorted(rec.extra.items()):
            items.append((k_, f"{v:.4f}" if isinstance(v, float) else str(v)))
        prov = rec.provenance or {}
        keys = [k_ for k_ in PROVENANCE_ORDER if k_ in prov] + sorted(k_ for k_ in prov if k_ not in PROVENANCE_ORDER)
        for k_ in keys:
            v = prov[k_]
            items.append((k_, v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str, separators=(", ", ": "))))
            if k_ == "versions" and isinstance(v, dict) and "lm-eval" in v and "lm_eval_version" not in prov:
                items.append(("lm-eval version", str(v["lm-eval"])))
    if cell.reported is not None:
        items.append(("paper", f"{cell.reported:.3f}"))
    return items


def _cost_prov(row: Row) -> list[tuple[str, str]]:
    c = row.cost
    items = [("row", row.row_id), ("cost", cost_text(c) or "—")]
    if c is not None:
        items += [("basis", c.basis), ("source", c.source or "—")]
        if c.usd is not None and c.cpu_hours is not None:
            items.append(("CPU-hours", f"{c.cpu_hours:.4g}"))
        if c.gpu_hours is not None:
            items.append(("GPU-hours", f"{c.gpu_hours:.4g} ({c.gpu_type or 'type not stated'})"))
        for st, sec in sorted(c.stage_seconds.items()):
            items.append((f"{st} seconds", f"{sec:.1f}"))
    if row.reported_cost is not None:
        usd, basis = row.reported_cost
        items.append(("paper", f"{fmt_usd(usd)} ({basis or 'basis not given'})"))
    return items


# --------------------------------------------------------------------------- Markdown


def _missing_tag(row: Row) -> str:
    """Marker of a row without reproduced results."""
    if row.has_reference:
        return "paper only"
    return "no checkpoint" if getattr(row.spec_row, "unavailable", None) else "no result"


def _md_cell(cell: Cell) -> str:
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
    txt = None if txt is None else _md(txt)
    parts = []
    if txt is not None:
        parts.append((f"*{txt}*" if c.basis == "estimated" else txt) + f" ({_md(c.basis)})")
    if row.reported_cost is not None:
        usd, basis = row.reported_cost
        same = c is not None and c.usd is not None and abs(c.usd - usd) < 0.5 and c.basis != "measured"
        if not same:
            ptxt = f"*{_md(fmt_usd(usd))}*" if basis == "estimated" else _md(fmt_usd(usd))
            parts.append(f"(paper {ptxt}, {_md(basis or 'basis not given')})")
    return " ".join(parts) or "—"


def _header_labels(board: Board) -> list[str]:
    return [f"{TASK_LABELS.get(t, t)} {board.metrics[t]}" for t in board.tasks]


def render_markdown(board: Board, chart: str | None = None) -> str:
    """The board as GitHub-flavoured Markdown (pipe tables only); ``chart``: PNG file name to link."""
    spec = board.spec
    L: list[str] = [f"# rmxbench leaderboard: {_md(board.suite)}", ""]
    if board.description:
        L += [_md(board.description), ""]
    L += _md_meta(spec)
    L += ["", "## Results", ""]
    heads = ["Model", *_header_labels(board), "Avg", "Cost"]
    L.append("| " + " | ".join(heads) + " |")
    L.append("|" + "|".join([":---"] + ["---:"] * (len(heads) - 1)) + "|")
    note_rows: list[Row] = []
    for fam, blocks in board.families.items():
        L.append(f"| **{_md(fam)}** |" + " |" * (len(heads) - 1))
        for b in blocks:
            for r in b.rows:
                label = _md(r.label)
                if not r.reproduced:
                    label += f" \\[{_missing_tag(r)}\\]"
                if r.note:
                    note_rows.append(r)
                    label += f" (note {len(note_rows)})"
                cells = [_md_cell(r.cells[t]) for t in board.tasks]
                L.append("| " + " | ".join([label, *cells, _md_avg(r, len(board.tasks)), _md_cost(r)]) + " |")
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
            L.append(f"{i}. {_md(r.base_name)} {_md(r.label)} (`{r.row_id}`): {_md(r.note)}")
        L.append("")
    if chart:
        L += [f"![Avg score vs training cost (log scale)]({chart})", ""]
    L += ["## ReasonMaxxer vs base and RL baselines: Δ, 95% CI, p", ""]
    if board.comparisons:
        heads2 = ["ReasonMaxxer row", "vs", *_header_labels(board), "Avg"]
        L.append("| " + " | ".join(heads2) + " |")
        L.append("|" + "|".join([":---", ":---"] + ["---:"] * (len(heads2) - 2)) + "|")
        for c in board.comparisons:
            cells = [_md_paired(c.per_task.get(t)) for t in board.tasks]
            L.append(
                "| " + " | ".join([
                    f"{_md(c.rmx.base_name)} {_md(c.rmx.display_name)}",
                    _md(c.other.label if c.other.kind != "base" else c.other.display_name + " (base)"),
                    *cells, _md_paired(c.avg),
                ]) + " |"
            )
        L += [
            "",
            f"Δ = ReasonMaxxer − other on the problems both rows were scored on; 95% paired percentile "
            f"bootstrap CI ({stats.N_RESAMPLES} resamples over problems, seeded). p (two-sided): McNemar exact "
            "test for pass@1 cells; paired bootstrap test for avg@k cells and for Avg (tasks resampled independently).",
            "",
        ]
    else:
        L += ["No ReasonMaxxer row has reproduced results next to a reproduced base or RL baseline yet.", ""]
    if board.warnings:
        L += ["## Warnings", ""] + [f"- {_md(w)}" for w in board.warnings] + [""]
    return "\n".join(L)


def _md_paired(r: stats.PairedResult | None) -> str:
    if r is None:
        return "—"
    return f"{fmt_diff(r.delta)} [{fmt_diff(r.ci[0])}, {fmt_diff(r.ci[1])}] {fmt_p(r.p)}"


def _meta_items(spec) -> list[tuple[str, str]]:
    p = spec.protocol
    pa = p.pass_at_1
    ak = p.avg_at_k
    items = [
        ("tasks", ", ".join(f"{TASK_LABELS.get(t, t)} ({task_metric(p, t)})" for t in p.tasks)),
        ("pass@1 decoding", f"temperature {pa.temperature}, top-p {pa.top_p}, top-k {pa.top_k}"
                            + (" (greedy)" if pa.temperature == 0 else "")),
    ]
    if any(t in ak.tasks for t in p.tasks):
        items.append((f"avg@{ak.k} decoding", f"{ak.k} samples, temperature {ak.temperature}, top-p {ak.top_p}"))
    items += [
        ("generation", f"max {p.max_new_tokens} new tokens, context {p.max_model_len}, backend {p.backend}, seed {p.seed}"),
    ]
    if p.limit:
        items.append(("subsets", ", ".join(f"{t}: first {n}" for t, n in sorted(p.limit.items()))))
    pr = spec.pricing
    prices = ", ".join(f"{k} ${v}/h" for k, v in sorted(pr.usd_per_hour.items()))
    items.append(("pricing", f"{prices} ({pr.source}, {pr.date.isoformat()})"))
    hw = pr.hardware
    items.append(("hardware", f"{hw.count} × {hw.gpu_type}" if hw.gpu_type else "CPU only (costs in CPU-hours)"))
    return items


def _md_meta(spec) -> list[str]:
    return [f"- **{_md(k)}**: {_md(v)}" for k, v in _meta_items(spec)]


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .5em}
.meta{font-size:.9em;color:#444;margin:.4em 0 1em;padding-left:1.2em}
table{border-collapse:collapse;margin:.3em 0}
th,td{padding:.3em .55em;border-bottom:1px solid #e3e3e3;vertical-align:top}
thead th{position:sticky;top:0;background:#f7f7f7;border-bottom:2px solid #999;text-align:right;white-space:nowrap}
thead th:first-child{text-align:left}
th.sortable{cursor:pointer;user-select:none}th.sortable:hover{background:#ececec}
th.sortable::after{content:" \\2195";color:#aaa}
th[aria-sort=descending]::after{content:" \\2193";color:#333}th[aria-sort=ascending]::after{content:" \\2191";color:#333}
tbody.fam-head th{text-align:left;background:#eef2f7;font-size:1.02em;border-top:2px solid #999}
td.name{text-align:left;white-space:nowrap}
td.name .base{color:#888;font-size:.85em;margin-right:.35em}
td.num,td.cost{text-align:right;cursor:pointer}
tr.rl_baseline{background:#f6f6f6}tr.reasonmaxxer{background:#fdf7e6}
.v{font-variant-numeric:tabular-nums;display:block}
.best .v{font-weight:700}
.ci,.ref,.incomplete,.basis{display:block;font-size:.78em;color:#666;font-variant-numeric:tabular-nums}
.ref .paper,.ref .diff{display:inline}.diff{color:#333}
td.cost .paper,.paper-only .paper{display:block}
.paper-only .paper{color:#555;font-style:italic;font-size:.9em}
.tag{font-size:.75em;background:#eee;border-radius:3px;padding:0 .3em;margin-left:.3em;color:#555}
.note{font-size:.78em;color:#8a5a00;display:block;white-space:normal;max-width:22em}
em.est{font-style:italic}
#details{position:fixed;right:1em;bottom:1em;max-width:34em;max-height:60vh;overflow:auto;background:#fff;
border:1px solid #999;box-shadow:0 2px 8px rgba(0,0,0,.2);padding:.6em .8em;font-size:.85em}
#details dl{display:grid;grid-template-columns:auto 1fr;gap:.15em .8em;margin:.3em 0}
#details dt{color:#666}#details dd{margin:0;word-break:break-all}
#details button{float:right}
td.selected{outline:2px solid #3a7bd5}
.chart img{max-width:100%;height:auto}.chart figcaption{font-size:.8em;color:#666}
.legend,.warn{font-size:.85em;color:#555;max-width:70em}
""".strip()

_JS = r"""
(function(){
"use strict";
var prov=JSON.parse(document.getElementById("rmx-prov").textContent);
function key(td,text){
  if(!td){return null;}
  var s=td.getAttribute("data-sort");
  if(s===null||s===""){return null;}
  if(text){return s;}
  var f=parseFloat(s);return isNaN(f)?null:f;
}
function sortTable(table,col,th){
  var cur=th.getAttribute("aria-sort");
  var next=cur==="descending"?"ascending":(cur==="ascending"?"none":"descending");
  var heads=table.querySelectorAll("thead th");
  for(var i=0;i<heads.length;i++){heads[i].setAttribute("aria-sort","none");}
  th.setAttribute("aria-sort",next);
  var text=th.getAttribute("data-type")==="text";
  var groups=table.querySelectorAll("tbody.sortable");
  for(var g=0;g<groups.length;g++){
    var body=groups[g];
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var ia=+a.getAttribute("data-idx"),ib=+b.getAttribute("data-idx");
      if(next==="none"){return ia-ib;}
      var x=key(a.cells[col],text),y=key(b.cells[col],text);
      if(x===null&&y===null){return ia-ib;}
      if(x===null){return 1;}if(y===null){return -1;}
      var c;
      if(text){c=x<y?-1:(x>y?1:0);}else{c=x-y;}
      if(next==="descending"){c=-c;}
      return c!==0?c:ia-ib;
    });
    for(var r=0;r<rows.length;r++){body.appendChild(rows[r]);}
  }
}
var tables=document.querySelectorAll("table.sortable-table");
Array.prototype.forEach.call(tables,function(table){
  var heads=table.querySelectorAll("thead th.sortable");
  Array.prototype.forEach.call(heads,function(th){
    var col=+th.getAttribute("data-col");
    th.addEventListener("click",function(){sortTable(table,col,th);});
    th.addEventListener("keydown",function(ev){if(ev.key==="Enter"||ev.key===" "){ev.preventDefault();sortTable(table,col,th);}});
  });
});
var panel=document.getElementById("details");
var dl=document.getElementById("details-dl");
var title=document.getElementById("details-title");
var selected=null;
function show(td){
  var key=td.getAttribute("data-prov");var items=prov[key];
  if(!items){return;}
  if(selected){selected.classList.remove("selected");}
  selected=td;td.classList.add("selected");
  while(dl.firstChild){dl.removeChild(dl.firstChild);}
  title.textContent=td.getAttribute("data-label")||key;
  for(var i=0;i<items.length;i++){
    var dt=document.createElement("dt");dt.textContent=items[i][0];
    var dd=document.createElement("dd");dd.textContent=items[i][1];
    dl.appendChild(dt);dl.appendChild(dd);
  }
  panel.hidden=false;
}
document.addEventListener("click",function(ev){
  var td=ev.target.closest?ev.target.closest("td[data-prov]"):null;
  if(td){show(td);}
});
document.getElementById("details-close").addEventListener("click",function(){
  panel.hidden=true;if(selected){selected.classList.remove("selected");selected=null;}
});
})();
""".strip()


def _title(items: list[tuple[str, str]]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in items)


def _html_cell(board: Board, row: Row, cell: Cell, prov_map: dict, label: str) -> str:
    key = f"{row.row_id}/{cell.task}"
    items = provenance(board, row, cell)
    prov_map[key] = items
    cls = ["num"]
    if cell.best:
        cls.append("best")
    sort = cell.score if cell.score is not None else cell.reported
    parts = []
    if cell.score is not None:
        parts.append(f'<span class="v">{cell.score:.3f}</span>')
        if cell.ci is not None:
            parts.append(f'<span class="ci">{fmt_ci(cell.ci)}</span>')
        if cell.reported is not None:
            parts.append(
                f'<span class="ref"><span class="paper">paper {cell.reported:.3f}</span> '
                f'<span class="diff">{fmt_diff(cell.diff)}</span></span>'
            )
    elif cell.reported is not None:
        cls.append("paper-only")
        parts.append(f'<span class="paper">paper {cell.reported:.3f}</span>')
    else:
        parts.append('<span class="v">—</span>')
    return (
        f'<td class="{" ".join(cls)}" data-sort="{"" if sort is None else f"{sort:.6f}"}" '
        f'data-prov="{_h(key)}" data-label="{_h(label)}" title="{_h(_title(items))}">{"".join(parts)}</td>'
    )


def _html_avg(board: Board, row: Row, prov_map: dict, label: str) -> str:
    c = row.avg
    key = f"{row.row_id}/avg"
    items = [("row", row.row_id), ("tasks averaged", f"{row.avg_tasks}/{len(board.tasks)}")]
    if c.score is not None:
        items.append(("avg", f"{c.score:.4f}"))
        items.append(("95% CI", fmt_ci(c.ci) or "n/a"))
        items.append(("CI method", "stratified percentile bootstrap (each task's problems resampled)"))
    if c.reported is not None:
        items.append(("paper", f"{c.reported:.3f}"))
    prov_map[key] = items
    cls = ["num"] + (["best"] if c.best else [])
    parts = []
    if c.score is not None:
        parts.append(f'<span class="v">{c.score:.3f}</span>')
        if c.ci is not None:
            parts.append(f'<span class="ci">{fmt_ci(c.ci)}</span>')
        if not row.complete:
            parts.append(f'<span class="incomplete">incomplete: {row.avg_tasks}/{len(board.tasks)} tasks</span>')
        if c.reported is not None:
            d = f' <span class="diff">{fmt_diff(c.score - c.reported)}</span>' if row.complete else ""
            parts.append(f'<span class="ref"><span class="paper">paper {c.reported:.3f}</span>{d}</span>')
    elif c.reported is not None:
        cls.append("paper-only")
        parts.append(f'<span class="paper">paper {c.reported:.3f}</span>')
    else:
        parts.append('<span class="v">—</span>')
    sort = c.score if c.score is not None else c.reported
    return (
        f'<td class="{" ".join(cls)}" data-sort="{"" if sort is None else f"{sort:.6f}"}" '
        f'data-prov="{_h(key)}" data-label="{_h(label)}" title="{_h(_title(items))}">{"".join(parts)}</td>'
    )


def _html_cost(row: Row, prov_map: dict, label: str) -> str:
    key = f"{row.row_id}/cost"
    items = _cost_prov(row)
    prov_map[key] = items
    c = row.cost
    txt = cost_text(c)
    parts = []
    if txt is not None:
        v = f'<em class="est">{_h(txt)}</em>' if c.basis == "estimated" else _h(txt)
        parts.append(f'<span class="v">{v}</span><span class="basis">{_h(c.basis)}</span>')
    if row.reported_cost is not None:
        usd, basis = row.reported_cost
        same = c is not None and c.usd is not None and abs(c.usd - usd) < 0.5 and c.basis != "measured"
        if not same:
            ptxt = f'<em class="est">{_h(fmt_usd(usd))}</em>' if basis == "estimated" else _h(fmt_usd(usd))
            parts.append(f'<span class="paper">paper {ptxt} ({_h(basis or "basis not given")})</span>')
    if not parts:
        parts.append('<span class="v">—</span>')
    sort = cost_sort_key(c)
    if sort is None and row.reported_cost is not None:
        sort = row.reported_cost[0]
    return (
        f'<td class="cost" data-sort="{"" if sort is None else f"{sort:.6f}"}" data-prov="{_h(key)}" '
        f'data-label="{_h(label)}" title="{_h(_title(items))}">{"".join(parts)}</td>'
    )


def render_html(board: Board, chart_png: bytes | None = None) -> str:
    """The board as one self-contained HTML document (inline CSS/JS, no external resources);
    ``chart_png`` is embedded as a ``data:`` URI."""
    spec = board.spec
    prov_map: dict[str, list[tuple[str, str]]] = {}
    heads = ["Model", *[f"{TASK_LABELS.get(t, t)} {board.metrics[t]}" for t in board.tasks], "Avg", "Cost"]
    H: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rmxbench: {_h(board.suite)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>rmxbench leaderboard: {_h(board.suite)}</h1>",
    ]
    if board.description:
        H.append(f"<p>{_h(board.description)}</p>")
    H.append('<ul class="meta">' + "".join(f"<li><b>{_h(k)}</b>: {_h(v)}</li>" for k, v in _meta_items(spec)) + "</ul>")
    H.append('<table id="board" class="board sortable-table">')
    H.append("<thead><tr>" + "".join(
        f'<th class="sortable" data-col="{i}" data-type="{"text" if i == 0 else "num"}" tabindex="0" '
        f'aria-sort="none" scope="col">{_h(h)}</th>'
        for i, h in enumerate(heads)
    ) + "</tr></thead>")
    ncol = len(heads)
    for fam, blocks in board.families.items():
        H.append(f'<tbody class="fam-head"><tr><th colspan="{ncol}" scope="rowgroup">{_h(fam)}</th></tr></tbody>')
        H.append(f'<tbody class="sortable" data-family="{_h(fam)}">')
        idx = 0
        for b in blocks:
            for r in b.rows:
                label = r.label if r.kind == "base" else f"{r.base_name} {r.display_name}"
                name = ""
                if r.kind != "base":
                    name += f'<span class="base">{_h(r.base_name)}</span>'
                name += _h(r.label)
                if not r.reproduced:
                    name += f'<span class="tag">{_missing_tag(r)}</span>'
                if r.note:
                    name += f'<span class="note">{_h(r.note)}</span>'
                sort_name = f"{r.base_name} {r.display_name}" if r.kind != "base" else r.display_name
                cells = [
                    f'<td class="name" data-sort="{_h(sort_name)}" title="{_h(r.row_id)}">{name}</td>',
                    *[_html_cell(board, r, r.cells[t], prov_map, f"{label} / {TASK_LABELS.get(t, t)}") for t in board.tasks],
                    _html_avg(board, r, prov_map, f"{label} / Avg"),
                    _html_cost(r, prov_map, f"{label} / Cost"),
                ]
                H.append(f'<tr class="{r.kind}" data-idx="{idx}" data-row="{_h(r.row_id)}">' + "".join(cells) + "</tr>")
                idx += 1
        H.append("</tbody>")
    H.append("</table>")
    H.append(
        '<p class="legend">Cells: reproduced score, 95% percentile-bootstrap CI over problems '
        f"({stats.N_RESAMPLES} resamples, seeded), the paper's value and reproduced − paper. "
        "<b>Bold</b>: best reproduced value in the column among a base model's rows. "
        "<i>Italic</i> cost: estimated (as in the paper). Avg: mean of the task columns the row has. "
        "Click a header to sort within each family (descending, ascending, original); "
        "hover or click a cell for its provenance.</p>"
    )
    if chart_png is not None:
        import base64

        H.append(
            '<figure class="chart"><img alt="Avg score vs training cost (log scale)" '
            f'src="data:image/png;base64,{base64.b64encode(chart_png).decode("ascii")}">'
            "<figcaption>Avg vs training cost: filled = reproduced, hollow = paper; "
            "square = RL baseline, star = ReasonMaxxer.</figcaption></figure>"
        )
    H.append("<h2>ReasonMaxxer vs base and RL baselines: Δ, 95% CI, p</h2>")
    if board.comparisons:
        heads2 = ["ReasonMaxxer row", "vs", *[f"{TASK_LABELS.get(t, t)} {board.metrics[t]}" for t in board.tasks], "Avg"]
        H.append('<table id="paired" class="paired"><thead><tr>' + "".join(f'<th scope="col">{_h(h)}</th>' for h in heads2) + "</tr></thead><tbody>")
        for c in board.comparisons:
            tds = [
                f'<td class="name">{_h(c.rmx.base_name)} {_h(c.rmx.display_name)}</td>',
                f'<td class="name">{_h(c.other.display_name + " (base)" if c.other.kind == "base" else c.other.label)}</td>',
            ]
            for t, res in [*[(t, c.per_task.get(t)) for t in board.tasks], ("avg", c.avg)]:
                if res is None:
                    tds.append('<td class="num">—</td>')
                    continue
                tip = (f"Δ {res.delta:+.4f}\n95% CI [{res.ci[0]:+.4f}, {res.ci[1]:+.4f}]\n"
                       f"p {res.p:.4g} ({res.test})\nshared problems {res.n}")
                tds.append(
                    f'<td class="num" title="{_h(tip)}"><span class="v">{fmt_diff(res.delta)}</span>'
                    f'<span class="ci">[{fmt_diff(res.ci[0])}, {fmt_diff(res.ci[1])}]</span>'
                    f'<span class="diff">{fmt_p(res.p)}</span></td>'
                )
            H.append("<tr>" + "".join(tds) + "</tr>")
        H.append("</tbody></table>")
        H.append(
            '<p class="legend">Δ = ReasonMaxxer − other on the problems both rows were scored on; 95% paired '
            "percentile-bootstrap CI. p (two-sided): McNemar exact test for pass@1 cells; paired bootstrap "
            "test for avg@k cells and for Avg (each task's problems resampled independently).</p>"
        )
    else:
        H.append("<p>No ReasonMaxxer row has reproduced results next to a reproduced base or RL baseline yet.</p>")
    if board.warnings:
        H.append("<h2>Warnings</h2><ul class=\"warn\">" + "".join(f"<li>{_h(w)}</li>" for w in board.warnings) + "</ul>")
    H.append(
        '<div id="details" hidden><button type="button" id="details-close" aria-label="close">×</button>'
        '<b id="details-title"></b><dl id="details-dl"></dl></div>'
    )
    H.append(f'<script type="application/json" id="rmx-prov">{_script_json(prov_map)}</script>')
    H.append(f"<script>{_JS}</script>")
    H.append("</body></html>")
    return "\n".join(H) + "\n"


# --------------------------------------------------------------------------- chart


def chart_points(board: Board) -> list[dict]:
    """Points of the Avg-vs-cost chart: one per row and source (reproduced / paper) with a USD cost.

    Reproduced points need a complete reproduced Avg and a USD cost (measured or published);
    paper points need the paper's Avg and cost. Base rows have no training cost and are not drawn.
    """
    pts = []
    for r in board.rows():
        label = f"{r.base_name} {r.display_name}"
        if r.avg.score is not None and r.complete and r.cost is not None and r.cost.usd is not None and r.cost.usd > 0:
            pts.append({"family": r.family, "kind": r.kind, "label": label, "usd": float(r.cost.usd),
                        "avg": r.avg.score, "source": "reproduced"})
        if r.avg.reported is not None and r.reported_cost is not None and r.reported_cost[0] > 0:
            pts.append({"family": r.family, "kind": r.kind, "label": label, "usd": r.reported_cost[0],
                        "avg": r.avg.reported, "source": "paper"})
    return pts


def render_chart(board: Board) -> bytes | None:
    """PNG bytes of Avg score vs training cost (USD, log x), coloured by family; None if no point.

    Filled markers: reproduced Avg at the row's cost; hollow: the paper's Avg and cost. Square:
    RL baseline; star: ReasonMaxxer. Uses matplotlib's object API (no pyplot state) and strips
    the PNG's software metadata so the bytes depend only on the inputs (and matplotlib version).
    """
    pts = chart_points(board)
    if not pts:
        return None
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(8.5, 4.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fams = list(board.families)
    colors = {f: f"C{i % 10}" for i, f in enumerate(fams)}
    for p in pts:
        c = colors[p["family"]]
        marker = "*" if p["kind"] == "reasonmaxxer" else "s"
        size = 140 if marker == "*" else 50
        if p["source"] == "reproduced":
            ax.scatter([p["usd"]], [p["avg"]], marker=marker, s=size, color=c, zorder=3)
        else:
            ax.scatter([p["usd"]], [p["avg"]], marker=marker, s=size, facecolors="none", edgecolors=c, zorder=2)
        ax.annotate(p["label"].replace("$", r"\$"), (p["usd"], p["avg"]), xytext=(4, 3),
                    textcoords="offset points", fontsize=6, color="#444")
    ax.set_xscale("log")
    ax.set_xlabel("training cost (USD, log scale)")
    ax.set_ylabel("Avg score")
    ax.set_title(f"{board.suite}: Avg vs training cost".replace("$", r"\$"), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[f], label=f.replace("$", r"\$"))
               for f in fams if any(p["family"] == f for p in pts)]
    handles += [
        Line2D([], [], marker="s", linestyle="", color="#666", label="RL baseline"),
        Line2D([], [], marker="*", linestyle="", color="#666", markersize=10, label="ReasonMaxxer"),
        Line2D([], [], marker="o", linestyle="", color="#666", label="reproduced"),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="#666", label="paper"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# --------------------------------------------------------------------------- entry point


def render(
    spec,
    records: list[TaskRecord],
    costs: dict[str, RowCost],
    notes: dict[str, str],
    reference: dict | None,
    out_dir: str | Path,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<suite>.md`` and ``<out_dir>/<suite>.html`` atomically.

    Args:
        spec: the validated :class:`rmxbench.spec.Spec`.
        records: one :class:`TaskRecord` per reproduced (row, task); may be empty.
        costs: row id -> :class:`RowCost` (measured rows; RL baselines fall back to the spec's
            published ``cost``).
        notes: row id -> note shown with the row (e.g. "too few mixed-success problems").
        reference: :func:`load_reference` output, or None for no paper numbers.
        out_dir: output folder (created if missing).

    Returns:
        ``(md_path, html_path)``.
    """
    board = build_board(spec, records, costs, notes, reference)
    for w in board.warnings:
        log.warning("%s", w)
    out = Path(out_dir)
    md_path = out / f"{board.suite}.md"
    html_path = out / f"{board.suite}.html"
    png_path = out / f"{board.suite}.png"
    png = render_chart(board)
    if png is not None:
        atomic_write_bytes(png_path, png)
    else:
        png_path.unlink(missing_ok=True)  # never leave a chart of an older run next to this board
    atomic_write_text(md_path, render_markdown(board, chart=png_path.name if png is not None else None))
    atomic_write_text(html_path, render_html(board, chart_png=png))
    return md_path, html_path


__all__ = [
    "render", "build_board", "render_markdown", "render_html", "load_reference", "lookup_reported",
    "run_dir", "load_run", "task_metric", "Board", "Row", "Cell", "Comparison",
]
