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


def work(config: MethodConfig, inputs=None):
    """The validation split sampled with the base or one τ's adapter (issue 20: the estimate's work)."""
    from rmxbench.estimate.work import Generation, Work, task_problems

    r = config.recipe
    n_pool, prompt = task_problems(r.pool.source, config.data_dir)
    s = r.validation_sampling()
    problems = min(r.selection.validation_problems, max((n_pool or 0) - r.pool.size, 0) or r.selection.validation_problems)
    return Work("validation" if config.tau is None else "validation:adapter", config.base.model, config.base.dtype,
                generations=(Generation(problems, s.n, prompt, s.max_new_tokens, batch=r.rollouts.batch_size * s.n),))


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
    return {"completion_tokens": res.get("completion_tokens", 0)}  # issue 20: meter.json
