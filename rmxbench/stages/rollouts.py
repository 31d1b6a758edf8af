"""Stage ``rollouts``: K sampled completions of the base model per pool problem, graded, with
their token ids (paper §5.1; :func:`rmxbench.method.rollouts.generate_rollouts`).

Artifact: ``rollouts.pt`` (per problem: prompt ids, K samples with completion ids, text, reward),
``rollouts_summary.json`` (decoding, mean pass rate, examples).
"""

from __future__ import annotations

from pathlib import Path

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.evaluation.grading import GRADER_VERSION
from rmxbench.pipeline.rows import seeded_label
from rmxbench.stages.common import (MethodConfig, backend_part, is_method_row, method_config, model_part, read_jsonl,
                                    row_engine, row_recipe)


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    for seed in row.seeds:
        recipe = row_recipe(plan, row, seed)
        graph.add(Node("rollouts", row.id, seeded_label("rollouts", seed), method_config(plan, row, seed=seed),
                       inputs={"pool": graph.one(row.id, "pool", label=seeded_label("pool", seed))},
                       engine=row_engine(plan, row), seed=seed,
                       parts=dict(model=model_part(plan, row), sampling=recipe.rollout_sampling().key(),
                                  batch_size=recipe.rollouts.batch_size,
                                  prompt_style=row.base.prompt_style, chat_template=row.base.chat_template,
                                  backend=backend_part(plan.spec), grader=GRADER_VERSION,
                                  task=recipe.pool.source)))


def work(config: MethodConfig, inputs=None):
    """K sampled completions of each pool problem (issue 20: the estimate's work declaration)."""
    from rmxbench.estimate.work import Generation, Work, task_problems

    r = config.recipe
    n_pool, prompt = task_problems(r.pool.source, config.data_dir)
    rc = r.rollouts
    return Work("rollouts", config.base.model, config.base.dtype, generations=(Generation(
        min(r.pool.size, n_pool or r.pool.size), rc.k, prompt, rc.max_new_tokens, batch=rc.batch_size * rc.k),))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path, env) -> None:
    import torch

    from rmxbench import progress
    from rmxbench.evaluation.prompts import STOP_SEQUENCES, build_prompt
    from rmxbench.method.rollouts import generate_rollouts
    from rmxbench.results import atomic_write_json

    recipe, base, rc = config.recipe, config.base, config.recipe.rollouts
    pool_rows = read_jsonl(inputs["pool"] / "pool.jsonl")
    bar = progress.task(f"{config.row_id}: rollouts ({len(pool_rows)} problems x K={rc.k})", len(pool_rows))
    session = env.session()
    prompts = [build_prompt(r["problem"], base.prompt_style, session.tokenizer) for r in pool_rows]
    sampling = recipe.rollout_sampling().stopped_at(STOP_SEQUENCES.get(base.prompt_style, []))
    res = generate_rollouts(session, pool_rows, prompts, sampling=sampling, task=recipe.pool.source,
                            batch_size=rc.batch_size, progress=bar.advance)
    torch.save(res, out_dir / "rollouts.pt")
    atomic_write_json(out_dir / "rollouts_summary.json", {
        "n_problems": len(res), "k": rc.k, "sampling": sampling.key(), "backend": session.name,
        "per_sample_seeds": session.per_sample_seeds,
        "mean_pass_rate": sum(r["pass_rate"] for r in res) / max(len(res), 1),
        "examples": [{"id": r["id"], "completion": r["samples"][0]["text"],
                      "reward": r["samples"][0]["reward"]} for r in res[:3] if r["samples"]]})
    bar.done()
    return {"prompt_tokens": sum(len(r["prompt_ids"]) for r in res),  # the counts done (issue 20: meter.json)
            "completion_tokens": sum(len(s["completion_ids"]) for r in res for s in r["samples"])}


def load(out_dir: Path) -> list[dict]:
    """The rollouts of a ``rollouts`` artifact folder."""
    import torch

    return torch.load(Path(out_dir) / "rollouts.pt", weights_only=False)
