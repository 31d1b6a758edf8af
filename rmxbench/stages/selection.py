"""Stage ``selection``: keep the mixed-success problems of the rollouts (pass rate strictly
between the recipe's bounds; paper §5.1; :func:`rmxbench.method.rollouts.select_mixed`).

Artifact: ``split.json`` (train ids, validation ids, counts). When fewer than
min(:data:`MIN_MIXED`, ``selection.max_problems``) problems are mixed, ``split.json`` carries a
``halt`` message and the row's later stages do not run (the board shows the message).
"""

from __future__ import annotations

from pathlib import Path

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.pipeline.rows import seeded_label
from rmxbench.stages.common import MethodConfig, is_method_row, method_config, read_json, read_jsonl, row_recipe

#: Fewer mixed-success problems than min(this, selection.max_problems) halts the row.
MIN_MIXED = 5


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    for seed in row.seeds:
        recipe = row_recipe(plan, row, seed)
        graph.add(Node("selection", row.id, seeded_label("selection", seed), method_config(plan, row, seed=seed),
                       inputs={s: graph.one(row.id, s, label=seeded_label(s, seed)) for s in ("rollouts", "pool")},
                       parts=dict(config=recipe.selection, seed=recipe.seed, min_mixed=MIN_MIXED), seed=seed))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path, env=None) -> None:
    from rmxbench import progress
    from rmxbench.method.rollouts import select_mixed
    from rmxbench.results import atomic_write_json
    from rmxbench.stages.rollouts import load

    sc, rc = config.recipe.selection, config.recipe.rollouts
    bar = progress.task(f"{config.row_id}: selection")
    split = select_mixed(load(inputs["rollouts"]), min_pass_rate=sc.min_pass_rate, max_pass_rate=sc.max_pass_rate,
                         max_problems=sc.max_problems, seed=config.recipe.seed)
    split["validation_ids"] = [r["id"] for r in read_jsonl(inputs["pool"] / "validation.jsonl")]
    split["validation_source"] = ("pool source problems not drawn into the rollout pool "
                                  "(rmxbench.method.pool), disjoint from training")
    need = min(MIN_MIXED, sc.max_problems)
    if len(split["train_ids"]) < need:
        split["halt"] = (
            f"only {split['n_mixed']} of {split['n_pool']} pool problems have mixed success "
            f"(pass rate strictly between {sc.min_pass_rate} and {sc.max_pass_rate} over K={rc.k} "
            f"rollouts); at least {need} are needed to train. The base model finds the pool "
            f"{'too hard' if split['n_all_wrong'] >= split['n_all_correct'] else 'too easy'} "
            f"({split['n_all_wrong']} all wrong, {split['n_all_correct']} all correct): "
            "use a larger pool, more rollouts, or another pool source.")
    atomic_write_json(out_dir / "split.json", split)
    bar.done(f"{config.row_id}: selection {split['n_mixed']}/{split['n_pool']} mixed-success problems, "
             f"{len(split['train_ids'])} kept ({split['n_sequences']} sequences)")


def halt(out_dir: Path) -> str | None:
    """The too-few-mixed message of a selection artifact, or None."""
    return read_json(Path(out_dir) / "split.json").get("halt")


def work(config, inputs=None):
    """No model work: reading the rollouts' rewards (issue 20: a fixed bookkeeping time, calibrated from the store)."""
    from rmxbench.estimate.work import Work

    return Work("selection", fixed_seconds=0.5)
