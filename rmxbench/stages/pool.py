"""Stage ``pool``: draw the rollout pool and the validation split from the recipe's pool source,
level-balanced and decontaminated against the evaluation sets (paper §6.1; :mod:`rmxbench.method.pool`).

Artifact: ``pool.jsonl`` (rollout problems), ``validation.jsonl`` (disjoint validation problems),
``pool.json`` (sizes, contamination counts).
"""

from __future__ import annotations

import json
from pathlib import Path

from rmxbench.evaluation.data import data_identity
from rmxbench.pipeline.graph import Graph, Node
from rmxbench.pipeline.rows import seeded_label
from rmxbench.stages.common import MethodConfig, is_method_row, method_config, row_recipe, write_jsonl


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    for seed in row.seeds:  # one chain per training seed (issue 19); (None,) for a row without `seeds:`
        recipe = row_recipe(plan, row, seed)
        graph.add(Node("pool", row.id, seeded_label("pool", seed), method_config(plan, row, seed=seed), seed=seed,
                       parts=dict(config=recipe.pool, validation_problems=recipe.selection.validation_problems,
                                  seed=recipe.seed, source=data_identity(recipe.pool.source, plan.ctx.data_dir, plan.hashes),
                                  eval_sets={t: data_identity(t, plan.ctx.data_dir, plan.hashes) for t in plan.spec.protocol.tasks})))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path, env=None) -> None:
    from rmxbench import progress
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.method.pool import load_eval_sets, select_pool
    from rmxbench.results import atomic_write_json

    recipe, data_dir = config.recipe, config.data_dir
    bar = progress.task(f"{config.row_id}: pool ({recipe.pool.source})")
    sel = select_pool(load_benchmark(recipe.pool.source, data_dir=data_dir), size=recipe.pool.size,
                      validation_size=recipe.selection.validation_problems, seed=recipe.seed,
                      balance_levels=recipe.pool.balance_levels, contamination=recipe.pool.contamination,
                      eval_sets=load_eval_sets(config.spec.protocol.tasks, data_dir=data_dir)
                      if recipe.pool.contamination != "off" else {},
                      source_name=recipe.pool.source)
    write_jsonl(out_dir / "pool.jsonl", sel.pool)
    write_jsonl(out_dir / "validation.jsonl", sel.validation)
    atomic_write_json(out_dir / "pool.json", sel.report)
    bar.done(f"{config.row_id}: pool {len(sel.pool)} problems + {len(sel.validation)} validation "
             f"({json.loads(json.dumps(sel.report))['contaminated_dropped']} contaminated dropped)")


def work(config, inputs=None):
    """No model work: drawing and decontaminating the pool (issue 20: a fixed bookkeeping time, calibrated from the store)."""
    from rmxbench.estimate.work import Work

    return Work("pool", fixed_seconds=2.0)
