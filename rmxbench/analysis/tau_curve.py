"""The τ curve: test accuracy of every adapter of a ReasonMaxxer τ sweep (paper §6.3, Fig. 4).

The trainer (the `train` stage (:mod:`rmxbench.stages.train`)) trains one adapter per τ of the recipe
(``adapter_tau/<key>/``) and keeps only the one that scores best on the validation split; this
analysis scores *all* of them on the test problems (greedy pass@1, the one grader), next to the
fraction of completion tokens each τ gated as decision points (§5.2, the "%" under Fig. 4's
axis). A second sweep — the positive-only ablation (§6.3, recipe ``objective: positive_only``) —
is drawn as an extra line; the base and an optional reference model (the RL row) as horizontal
lines.

A sweep is read from a picked adapter folder's ``rmx_metadata.json`` (:func:`sweep_from_adapter`:
its ``taus`` table lists every τ's adapter folder, decision fraction and validation accuracy).

``result.json`` ``data``: ``base`` (accuracy summary), ``reference`` (accuracy summary or None),
``sweeps`` (list, in the given order, of ``label`` and ``points``: ``tau``, ``decision_fraction``,
``validation_accuracy``, ``accuracy``, ``stderr``, ``picked``, ``per_problem``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rmxbench.spec.analyses import TauCurveConfig
from rmxbench.analysis.common import AnalysisResult, ModelHandle, new_figure, save_figure, score, write_result
from rmxbench.errors import UserError

ANALYSIS = "tau_curve"


@dataclass(frozen=True)
class TauPoint:
    """One adapter of a sweep: its τ (nats), folder, decision fraction, validation accuracy, picked?"""

    tau: float
    adapter_dir: Path
    decision_fraction: float
    validation_accuracy: float | None = None
    picked: bool = False


def sweep_from_adapter(adapter_dir: Path) -> list[TauPoint]:
    """Every τ adapter of the sweep that produced the picked adapter ``adapter_dir``.

    Raises:
        UserError: no readable ``rmx_metadata.json`` with a ``taus`` table, or a τ folder is gone.
    """
    from rmxbench.pipeline.identity import METADATA_FILE

    p = Path(adapter_dir) / METADATA_FILE
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
        table = meta["taus"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{p}: not a ReasonMaxxer adapter with a τ table ({exc})",
                        hint="train the row first (`rmxbench train SPEC --model ROW`)") from exc
    points = []
    for t in table:
        d = Path(t["adapter_dir"])
        if not (d / "adapter_config.json").is_file():
            raise UserError(f"τ={t['tau']:g} adapter folder {d} is missing (listed in {p})",
                            hint="retrain the row with `rmxbench train SPEC --model ROW --force train`")
        points.append(TauPoint(float(t["tau"]), d, float(t["decision_fraction"]), t.get("validation_accuracy"),
                               float(t["tau"]) == float(meta.get("tau", float("nan")))))
    return sorted(points, key=lambda x: x.tau)


def sweep_label(adapter_dir: Path) -> str:
    """``<row id> (<objective>)`` of a picked adapter (from its ``rmx_metadata.json``), else its folder name."""
    from rmxbench.pipeline.identity import METADATA_FILE

    try:
        meta = json.loads((Path(adapter_dir) / METADATA_FILE).read_text(encoding="utf-8"))
        return f"{meta['row']} ({meta['recipe']['objective']})"
    except (OSError, ValueError, KeyError, TypeError):
        return Path(adapter_dir).name


def build(config: TauCurveConfig, base: ModelHandle, sweeps: dict[str, Sequence[TauPoint]], problems: Sequence[dict],
          *, task: str, prompt_style: str, max_new_tokens: int, out_dir: Path, reference: ModelHandle | None = None,
          row_title: str = "", progress=None) -> AnalysisResult:
    """Score the base, the optional reference and every τ adapter of every sweep; write
    ``result.json`` and ``tau_curve.png`` into ``out_dir``.

    Args:
        sweeps: label (e.g. ``contrastive``, ``positive_only``) -> τ points (:func:`sweep_from_adapter`).
        reference: e.g. the RL row the method is compared with (drawn as a dashed line).
        progress: ``advance(n)`` per problem scored.
    """
    from peft import PeftModel

    if not sweeps or not any(sweeps.values()):
        raise UserError("τ curve: no τ adapters to evaluate")
    mnt = config.max_new_tokens or max_new_tokens
    ev = dict(style=prompt_style, task=task, max_new_tokens=mnt, batch_size=config.batch_size, progress=progress)
    model, tok = base.load()
    data: dict = {"base": score(model, tok, problems, **ev), "reference": None, "sweeps": []}
    for label, points in sweeps.items():
        rows = []
        for pt in points:
            pm = PeftModel.from_pretrained(model, str(pt.adapter_dir))
            pm.eval()
            try:
                acc = score(pm, tok, problems, **ev)
            finally:
                model = pm.unload()
            rows.append({"tau": pt.tau, "decision_fraction": pt.decision_fraction,
                         "validation_accuracy": pt.validation_accuracy, "picked": pt.picked, **acc})
        data["sweeps"].append({"label": label, "points": rows})
    if reference is not None:
        rm, rt = reference.load()
        data["reference"] = {"label": reference.label, **score(rm, rt, problems, **ev)}
    pair = {"base": base.describe(), "other": reference.describe() if reference else None, "prompt_style": prompt_style}
    result = AnalysisResult(ANALYSIS, "ReasonMaxxer τ curve (paper §6.3, Fig. 4)", pair, task, len(problems),
                            {**config.model_dump(mode="json"), "max_new_tokens": mnt}, data)
    result.figures = [figure(result, row_title or base.label, out_dir)]
    write_result(result, out_dir)
    return result


def figure(result: AnalysisResult, title: str, out_dir: Path):
    """Accuracy vs τ per sweep; each point labelled with its decision-token fraction."""
    d = result.data
    fig, ax = new_figure(6.0, 3.8)
    ax.axhline(d["base"]["accuracy"], ls=":", color="#999", lw=1, label=f"base ({d['base']['accuracy']:.3f})")
    if d["reference"]:
        ax.axhline(d["reference"]["accuracy"], ls="--", color="#555", lw=1,
                   label=f"{d['reference']['label']} ({d['reference']['accuracy']:.3f})")
    colors = ("#b22222", "#1f4e9c", "#2e8b57", "#c8a060", "#6a3d9a", "#777777")
    for k, (sweep, color) in enumerate(zip(d["sweeps"], colors)):
        label, rows = sweep["label"], sweep["points"]
        xs, ys = [r["tau"] for r in rows], [r["accuracy"] for r in rows]
        ax.errorbar(xs, ys, yerr=[r["stderr"] for r in rows], fmt="o-", color=color, capsize=3, label=label)
        for r in rows:
            ax.annotate(f"{100 * r['decision_fraction']:.1f}%" + ("*" if r["picked"] else ""), (r["tau"], r["accuracy"]),
                        fontsize=7, xytext=(0, -12 if k % 2 == 0 else 7), textcoords="offset points", ha="center",
                        color=color)
    ax.set_xlabel("entropy threshold τ (nats)")
    ax.set_ylabel(f"greedy pass@1 on {result.task}")
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, out_dir, "tau_curve.png",
                       f"Test accuracy of every τ adapter: {title}; task {result.task}, n = {result.n}, greedy "
                       f"(max {result.settings['max_new_tokens']} tokens). Point labels: share of completion tokens "
                       "gated as decision points (H_t > τ) in training; * = the τ picked on the validation split. "
                       "Error bars: binomial s.e.")


def tables(result: AnalysisResult, pair_title: str) -> list[tuple[list[str], list[list[str]]]]:
    """One row per (sweep, τ), plus base and reference."""
    d = result.data
    rows = [["base", "–", "–", "–", f"{d['base']['accuracy']:.3f} ± {d['base']['stderr']:.3f}"]]
    for sweep in d["sweeps"]:
        label = sweep["label"]
        for r in sweep["points"]:
            va = "–" if r["validation_accuracy"] is None else f"{r['validation_accuracy']:.3f}"
            rows.append([label + (" (picked)" if r["picked"] else ""), f"{r['tau']:g}",
                         f"{100 * r['decision_fraction']:.2f}%", va, f"{r['accuracy']:.3f} ± {r['stderr']:.3f}"])
    if d["reference"]:
        ref = d["reference"]
        rows.append([ref["label"], "–", "–", "–", f"{ref['accuracy']:.3f} ± {ref['stderr']:.3f}"])
    return [(["adapter", "τ (nats)", "decision tokens", "validation accuracy", "test pass@1"], rows)]
