"""Text of board values: number formats, captions, provenance lists and fixed sentences, in one
place so every cell, the chart and the analyses say the same (the cells themselves:
:mod:`rmxbench.board.table`; cost text: :mod:`rmxbench.pricing`)."""


from __future__ import annotations

import html
import json

from rmxbench.board.model import Row, Score
from rmxbench.board.view import BoardView
from rmxbench.pricing import cost_text, fmt_usd
from rmxbench.results import RowCost

#: Provenance keys shown first (in this order) in tooltips and the details panel; any other
#: keys of ``TaskRecord.provenance`` follow in sorted order.
PROVENANCE_ORDER = (
    "model", "repo", "path", "revision", "model_revision", "revision_pinned", "gguf_file", "model_sha256",
    "adapter", "adapter_hash", "adapter_sha256", "adapter_key", "adapter_dir", "picked_tau", "decision_fraction",
    "prompt_style", "eval_prompt", "chat_template", "dtype",
    "decoding", "temperature", "top_p", "top_k", "k", "max_new_tokens", "seed", "seeds", "limit", "data",
    "grader_version", "lm_eval_version", "versions", "backend", "backend_version", "hardware", "device", "accelerator_name",
    "date", "wall_seconds",
)


def fmt_score(x: float | None) -> str:
    """A score or the paper's value at the board's precision: ``0.700``; ``—`` for None."""
    return "—" if x is None else f"{x:.3f}"


def fmt_diff(x: float) -> str:
    """A signed difference at the board's precision: ``+0.010``, ``-0.052`` (never ``-0.000``)."""
    v = round(x, 3) + 0.0  # no "-0.000"
    return f"{v:+.3f}"


def fmt_ci(ci: tuple[float, float] | None) -> str:
    """A 95% CI: ``[0.630, 0.765]``; ``""`` for None."""
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def fmt_p(p: float) -> str:
    """A two-sided p-value: ``p<0.001`` or ``p=0.042``."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_sort(x: float | None) -> str:
    """A column sort key: ``0.700000``; ``""`` (sorts last) for None."""
    return "" if x is None else f"{x:.6f}"


def tooltip(items) -> str:
    """Tooltip text of a cell: one ``key: value`` line per provenance pair."""
    return "\n".join(f"{k}: {v}" for k, v in items)


def cost_ratio_text(r) -> str:
    """``+ GRPO ÷ + ReasonMaxxer training cost: 0.33× (0.00314 ÷ 0.00959 CPU-h, both measured)``
    for a :class:`rmxbench.board.model.CostRatio`."""
    return (f"{r.rl.display_name} ÷ {r.rmx.display_name} training cost ({r.rl.base_name}): {r.ratio:.3g}× "
            f"({r.rl_value:.3g} ÷ {r.rmx_value:.3g} {r.unit}, both measured by rmxbench on the same machine)")


def figure_caption(f) -> str:
    """Caption of a board figure (:class:`rmxbench.board.model.Figure`)."""
    what = "reward (grader, 0/1) vs optimiser step" if f.name == "reward_curve.png" else f.name
    seed = "" if f.seed is None else f" (training seed {f.seed})"
    return f"{f.row.base_name} {f.row.display_name}{seed}: {what}"


def figure_file(suite: str, f) -> str:
    """File name of a board figure next to the board: ``<suite>.<row id>.<name>`` (a training seed's:
    ``<suite>.<row id>.seed<seed>.<name>``)."""
    seed = "" if f.seed is None else f"seed{f.seed}."
    return f"{suite}.{f.row.row_id}.{seed}{f.name}"


PAIRED_LEGEND = ("Δ = row − other on the problems both rows were scored on (ReasonMaxxer rows vs their base "
                 "and every RL baseline; RL rows trained by rmxbench vs their base); 95% paired percentile "
                 "bootstrap CI ({n} resamples over problems, seeded). p (two-sided): McNemar exact test for "
                 "pass@1 cells; paired bootstrap test for avg@k cells and for Avg (tasks resampled independently).")
PAIRED_TITLE = "Paired comparisons: Δ, 95% CI, p"
ANALYSES_TITLE = "Analyses (paper §3, §4, §6.3)"

#: The results table's legend as ``(style, text)`` segments, style ``""`` (plain), ``"b"`` (bold),
#: ``"i"`` (italic) or ``"tag"`` (a row tag as shown on the board); ``{n}``: bootstrap resamples.
LEGEND = (
    ("", "Cells: reproduced score, 95% percentile-bootstrap CI over problems ({n} resamples, seeded), "
         "the paper's value and reproduced − paper. "),
    ("b", "Bold"), ("", ": best reproduced value in the column among a base model's rows. "),
    ("tag", "paper only"), ("", " / "), ("tag", "no result"), ("", " / "), ("tag", "no checkpoint"),
    ("", ": no reproduced result (the paper's numbers where the row points at them). "
         "Avg: mean of the task columns the row has. Cost: training cost; "),
    ("i", "italic"), ("", " = estimated (as in the paper)."),
)
NO_PAIRED = "No trained row has reproduced results next to a reproduced base or RL baseline yet."

#: Legend segments added when a row declares training ``seeds:`` (issue 19).
SEED_LEGEND = (
    ("", " Rows trained with several training seeds (seeds: in the spec): the value is the mean over seeds; "
         "S seeds: lo–hi gives the lowest and highest seed's score (min–max over seeds: with the usual 2–5 seeds "
         "an s.d. says little; a cell's details list each seed's score and the s.d.), m/S seeds when only m of "
         "the S declared seeds have a result; the CI is over problems, of each problem's correctness averaged "
         "over seeds; the cost is the mean per seed (one training run), and the cost ratio uses it."),
)
#: Sentence added to the paired legend when a compared row declares training ``seeds:``.
PAIRED_SEED_LEGEND = (" Rows with training seeds: Δ on each problem's correctness averaged over the row's seeds "
                      "(and samples), tested with the paired bootstrap test (the averages are not 0/1, so not McNemar).")
#: Title (alt text) and caption of the per-seed figure.
SEED_FIGURE_TITLE = "Per-seed scores of the trained rows"
SEED_FIGURE_CAPTION = ("Per-seed scores of the trained rows, per task column and Avg: one dot per training seed "
                       "(labelled with the seed), bar = mean over seeds (the board's value).")


def fmt_spread(spread, declared: int) -> str:
    """The seed spread of a cell (:class:`rmxbench.board.statistics.SeedSpread`): ``2 seeds: 0.690–0.710``,
    ``2/3 seeds: …`` when fewer than the ``declared`` seeds have a score; ``""`` for None."""
    if spread is None:
        return ""
    n = f"{spread.n}/{declared}" if spread.n < declared else str(spread.n)
    return f"{n} seed{'s' if declared != 1 else ''}: {spread.low:.3f}–{spread.high:.3f}"


def _spread_items(c: Score, declared: tuple[int, ...]) -> list[tuple[str, str]]:
    """Provenance pairs of a seeded cell's spread: seeds, min–max, s.d., each seed's score."""
    sp = c.spread
    items = [("training seeds", ", ".join(map(str, c.seed_scores))
              + ("" if len(c.seed_scores) == len(declared) else f" (declared: {', '.join(map(str, declared))})")),
             ("seed spread", f"min {sp.low:.4f}, max {sp.high:.4f}"
              + (f", s.d. {sp.sd:.4f}" if sp.sd is not None else ""))]
    items += [(f"seed {s} score", f"{v:.4f}") for s, v in c.seed_scores.items()]
    return items


def cost_sort_key(c: RowCost | None) -> float | None:
    """USD for sorting (rows without a USD figure sort last)."""
    return None if c is None or c.usd is None else float(c.usd)


def paper_cost_shown(row: Row) -> tuple[float, str | None] | None:
    """The paper's (USD, basis) to show beside a row's own cost, or None: absent, or the same
    published figure (within 0.5 USD) that the row's cost already states."""
    if row.reported_cost is None:
        return None
    c, (usd, basis) = row.cost, row.reported_cost
    same = c is not None and c.usd is not None and abs(c.usd - usd) < 0.5 and c.basis != "measured"
    return None if same else (usd, basis)


def md_escape(s: object) -> str:
    """Escape a spec string for Markdown (table cells, section text): HTML-escape, backslash
    Markdown syntax."""
    s = html.escape(" ".join(str(s).split()), quote=False)
    for ch in "\\`*_[]|#~$":
        s = s.replace(ch, "\\" + ch)
    return s


def provenance(view: BoardView, row: Row, cell: Score) -> list[tuple[str, str]]:
    """Ordered ``(key, value)`` pairs describing where a cell's number comes from."""
    items: list[tuple[str, str]] = [("row", row.row_id), ("task", cell.task), ("metric", view.metrics.get(cell.task, ""))]
    items += row.view.model_items
    if cell.seed_records:
        return items + _seed_provenance(row, cell)
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


def _prov_text(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str, separators=(", ", ": "))


def _seed_provenance(row: Row, cell: Score) -> list[tuple[str, str]]:
    """The rest of a seeded cell's provenance: the mean, the spread, each seed's score, the CI, then
    every record's provenance (a value shared by every seed once, else one line per seed)."""
    recs = cell.seed_records
    first = next(iter(recs.values()))
    items = [("score", f"{cell.score:.4f} (mean over {len(recs)} training seeds)"),
             *_spread_items(cell, row.view.seeds),
             ("95% CI", fmt_ci(cell.ci) or "n/a (no per-problem verdicts)"),
             ("CI method", "percentile bootstrap over problems of each problem's correctness averaged over seeds"),
             ("n problems", str(len(cell.per_problem) if cell.per_problem else first.n_problems)),
             ("k", str(first.k))]
    for label, get in (("grader timeouts", lambda r: r.timeouts), ("no extractable answer", lambda r: r.malformed)):
        if any(get(r) for r in recs.values()):
            items += [(f"{label} (seed {s})", str(get(r))) for s, r in recs.items()]
    provs = {s: r.provenance or {} for s, r in recs.items()}
    keys = sorted({k_ for p in provs.values() for k_ in p})
    keys = [k_ for k_ in PROVENANCE_ORDER if k_ in keys] + [k_ for k_ in keys if k_ not in PROVENANCE_ORDER]
    for k_ in keys:
        vals = {s: _prov_text(p[k_]) if k_ in p else "—" for s, p in provs.items()}
        if len(set(vals.values())) == 1:
            items.append((k_, next(iter(vals.values()))))
        else:
            items += [(f"{k_} (seed {s})", v) for s, v in vals.items()]
    if cell.reported is not None:
        items.append(("paper", f"{cell.reported:.3f}"))
    return items


def avg_provenance(row: Row, n_tasks: int) -> list[tuple[str, str]]:
    """Ordered ``(key, value)`` pairs describing a row's Avg: tasks averaged, value, CI and its method."""
    c = row.avg
    items = [("row", row.row_id), ("tasks averaged", f"{row.avg_tasks}/{n_tasks}")]
    if c.score is not None:
        items.append(("avg", f"{c.score:.4f}"))
        items.append(("95% CI", fmt_ci(c.ci) or "n/a"))
        items.append(("CI method", "stratified percentile bootstrap (each task's problems resampled)"))
    if c.spread is not None:
        items += _spread_items(c, row.view.seeds)
    if c.reported is not None:
        items.append(("paper", f"{c.reported:.3f}"))
    return items


def cost_provenance(row: Row) -> list[tuple[str, str]]:
    """Ordered ``(key, value)`` pairs describing a row's cost: figure, basis, source, hours, stage seconds."""
    c = row.cost
    items = [("row", row.row_id), ("cost", cost_text(c) or "—")]
    if c is not None:
        items += [("basis", c.basis), ("source", c.source or "—")]
        if c.usd is not None and c.cpu_hours is not None:
            items.append(("CPU-hours", f"{c.cpu_hours:.4g}"))
        if c.gpu_hours is not None:
            items.append(("GPU-hours", f"{c.gpu_hours:.4g} ({c.gpu_type or 'type not stated'})"))
        if c.per_seed:  # issue 19: the figures above are the mean per training seed
            items.append(("per seed", f"mean over {len(c.per_seed)} training seeds (one training run each)"))
            items += [(f"seed {s} cost", cost_text(RowCost(usd=v.get("usd"), gpu_hours=v.get("gpu_hours"),
                                                           cpu_hours=v.get("cpu_hours"), gpu_type=c.gpu_type)) or "—")
                      for s, v in c.per_seed.items()]
        for st, sec in sorted(c.stage_seconds.items()):
            items.append((f"{st} seconds", f"{sec:.1f}"))
        if c.note:
            items.append(("note", c.note))
        items += estimate_provenance(c.estimate)
    if row.reported_cost is not None:
        usd, basis = row.reported_cost
        items.append(("paper", f"{fmt_usd(usd)} ({basis or 'basis not given'})"))
    return items


def estimate_provenance(e: dict | None) -> list[tuple[str, str]]:
    """The cost estimate made before the row's nodes ran, beside what they measured (issue 20)."""
    if not e or not e.get("estimated_seconds"):
        return []
    unit = "CPU-s" if e.get("unit") == "cpu_seconds" else "s"
    per = f"{e['nodes']} of {e['of_nodes']} training nodes" if e.get("of_nodes") else f"{e['nodes']} nodes"
    if e.get("seeds"):
        per += f" of {e['seeds']} training seeds; mean per seed"
    items = [("estimated before the run", f"{e['estimated_seconds']:.4g} {unit} on {e.get('hardware') or '?'} "
                                          f"({per}; {e.get('calibrated', 0)} calibrated from the store)"),
             ("measured", f"{e['measured_seconds']:.4g} {unit}")]
    if e.get("measured_over_estimated") is not None:
        items.append(("measured ÷ estimated", f"{e['measured_over_estimated']:.2f}×"))
    return items


def missing_tag(row: Row) -> str:
    """Marker of a row without reproduced results: ``paper only``, ``no checkpoint`` or ``no result``."""
    if row.has_reference:
        return "paper only"
    return "no checkpoint" if row.view.unavailable else "no result"
