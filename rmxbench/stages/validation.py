"""Stage ``validation``: score the base model and each τ's adapter on the validation split
(sampled pass@1, malformed share; paper §6.1 τ selection; :func:`rmxbench.method.trainer.score_on_validation`).

Artifact (one per τ, plus ``validation[base]``): ``validation.json`` (accuracy, stderr,
malformed share, per-problem accuracy, example completions).
"""

from __future__ import annotations

from pathlib import Path

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.evaluation.grading import GRADER_VERSION
from rmxbench.pipeline.rows import seeded_label
from rmxbench.stages.common import (MethodConfig, backend_part, is_method_row, method_config, model_part, read_jsonl,
                                    row_engine, row_recipe, tau_label)


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    for seed in row.seeds:
        recipe = row_recipe(plan, row, seed)
        for tau in [None, *recipe.taus]:
            inputs = {"pool": graph.one(row.id, "pool", label=seeded_label("pool", seed))}
            if tau is not None:
                inputs["adapter"] = graph.one(row.id, "train", label=seeded_label(f"train[{tau_label(tau)}]", seed))
            graph.add(Node("validation", row.id, seeded_label(f"validation[{tau_label(tau)}]", seed),
                           method_config(plan, row, tau, seed=seed), inputs=inputs, engine=row_engine(plan, row),
                           seed=seed, parts=dict(
                               model=model_part(plan, row), sampling=recipe.validation_sampling().key(),
                               batch_size=recipe.rollouts.batch_size, prompt_style=row.base.prompt_style,
                               backend=backend_part(plan.spec), grader=GRADER_VERSION)))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path, env) -> None:
    from rmxbench import progress
    from rmxbench.method.trainer import score_on_validation
    from rmxbench.results import atomic_write_json

    rows = read_jsonl(inputs["pool"] / "validation.jsonl")
    label = tau_label(config.tau)
    bar = progress.task(f"{config.row_id}: validation {label} ({len(rows)} problems)", len(rows))
    res = score_on_validation(env.session(), config, rows, adapter_dir=inputs.get("adapter"), on_batch=bar.advance)
    atomic_write_json(out_dir / "validation.json", res)
    bar.done(f"{config.row_id}: validation {label}: accuracy {res['accuracy']:.3f}, "
             f"malformed {res['malformed_share']:.1%}")
