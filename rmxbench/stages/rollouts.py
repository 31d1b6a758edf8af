"""Stage ``rollouts``: K sampled completions of the base model per pool problem, graded, with
their token ids (paper §5.1; :func:`rmxbench.method.rollouts.generate_rollouts`).

Artifact: ``rollouts.pt`` (per problem: prompt ids, K samples with completion ids, text, reward),
``rollouts_summary.json`` (decoding, mean pass rate, examples).
"""

from __future__ import annotations

from pathlib import Path

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.pipeline.identity import grader_version
from rmxbench.stages.common import MethodConfig, backend_part, is_method_row, method_config, model_part, read_jsonl


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    recipe = plan.spec.recipes[row.row.recipe]
    graph.add(Node("rollouts", row.id, "rollouts", method_config(plan, row),
                   inputs={"pool": graph.one(row.id, "pool")},
                   parts=dict(model=model_part(plan, row), config=recipe.rollouts, seed=recipe.seed,
                              prompt_style=row.base.prompt_style, chat_template=row.base.chat_template,
                              backend=backend_part(plan.spec), grader=grader_version(),
                              task=recipe.pool.source)))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path) -> None:
    import torch

    from rmxbench import progress
    from rmxbench.backends.generation import Decoding
    from rmxbench.evaluation.prompts import STOP_SEQUENCES, build_prompt
    from rmxbench.method.models import model_for_generation
    from rmxbench.method.rollouts import generate_rollouts
    from rmxbench.method.trainer import generator
    from rmxbench.results import atomic_write_json

    recipe, base, rc = config.recipe, config.base, config.recipe.rollouts
    pool_rows = read_jsonl(inputs["pool"] / "pool.jsonl")
    bar = progress.task(f"{config.row_id}: rollouts ({len(pool_rows)} problems x K={rc.k})", len(pool_rows))
    model, tok = model_for_generation(base, config.spec_dir, config.backend)
    prompts = [build_prompt(r["problem"], base.prompt_style, tok) for r in pool_rows]
    dec = Decoding(n=rc.k, temperature=rc.temperature, top_p=rc.top_p, top_k=rc.top_k,
                   max_new_tokens=rc.max_new_tokens, seed=recipe.seed,
                   stop=tuple(STOP_SEQUENCES.get(base.prompt_style, [])))
    gen = generator(config, model, tok, adapter_dir=None, seed=dec.seed)
    res = generate_rollouts(gen, pool_rows, prompts, decoding=dec, task=recipe.pool.source, progress=bar.advance)
    torch.save(res, out_dir / "rollouts.pt")
    atomic_write_json(out_dir / "rollouts_summary.json", {
        "n_problems": len(res), "k": rc.k, "decoding": dec.__dict__,
        "mean_pass_rate": sum(r["pass_rate"] for r in res) / max(len(res), 1),
        "examples": [{"id": r["id"], "completion": r["samples"][0]["text"],
                      "reward": r["samples"][0]["reward"]} for r in res[:3] if r["samples"]]})
    bar.done()


def load(out_dir: Path) -> list[dict]:
    """The rollouts of a ``rollouts`` artifact folder."""
    import torch

    return torch.load(Path(out_dir) / "rollouts.pt", weights_only=False)
