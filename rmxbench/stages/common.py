"""Shared by the ReasonMaxxer method stages: their config object and small readers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmxbench.pipeline.rows import PlanContext, RowView, seeded_recipe

@dataclass(frozen=True)
class MethodConfig:
    """Config of a method stage node: the spec, the row's base model and recipe, resolved paths,
    and the τ of a per-τ node (None for the base-model validation)."""

    spec: Any
    base: Any
    row_id: str
    recipe_name: str
    recipe: Any
    spec_dir: Path
    data_dir: Path | None
    tau: float | None = None
    #: ``hf``/``vllm``: the protocol's backend with ``auto`` resolved when the plan is made (the
    #: value in the keys; a build on another machine follows it, never resolves it again)
    backend: str = ""


def backend_part(spec: Any) -> str:
    """The generation backend a method stage runs and is keyed by: ``spec.protocol.backend`` with
    ``auto`` resolved by :func:`rmxbench.backends.select.resolve_backend` (torch-free)."""
    from rmxbench.backends.select import resolve_backend

    return resolve_backend(spec.protocol.backend)


def engine(plan: PlanContext, ref: Any, *, dtype: str, trust_remote_code: bool, label: str,
           built_by: str | None = None, weights_only: bool = False) -> Any:
    """The :class:`~rmxbench.backends.session.EngineSpec` of weights ``ref`` under the spec's protocol.

    Args:
        ref: the weights' :class:`~rmxbench.spec.schema.ModelRef` (ignored when ``built_by``).
        built_by: the key of the node that builds the weights (a full GRPO checkpoint): the engine
            is identified by it and loads the folder that node publishes.
        weights_only: the HF session of the weights (teacher-forced passes, training).
    The engine's LoRA rank is the largest adapter rank planned on these weights (every
    ReasonMaxxer and LoRA-GRPO row on a base with this model), so one engine serves all of them.
    """
    from rmxbench.backends.session import EngineSpec
    from rmxbench.pipeline.store import canonical_json

    memo = plan.memo.setdefault("engines", {})
    mkey = (canonical_json(ref) if built_by is None else built_by, dtype, trust_remote_code, weights_only)
    if mkey in memo:
        return memo[mkey]
    p = plan.spec.protocol
    if built_by is not None:
        ident, ref, rank = f"node:{built_by}", None, 0
    else:
        from rmxbench.pipeline.identity import model_key

        ident = model_key(plan.model_id(ref))
        rank = min(_planned_lora_rank(plan, ref), p.vllm.max_lora_rank)
    spec = EngineSpec(backend=backend_part(plan.spec), model=ident, ref=ref, label=label, dtype=dtype,
                      trust_remote_code=trust_remote_code, max_model_len=p.max_model_len, spec_dir=str(plan.ctx.dir),
                      home=str(plan.ctx.home), tensor_parallel_size=p.vllm.tensor_parallel_size,
                      gpu_memory_utilization=p.vllm.gpu_memory_utilization,
                      enforce_eager=p.vllm.enforce_eager).with_lora_rank(rank)
    memo[mkey] = spec.for_weights() if weights_only else spec
    return memo[mkey]


def _planned_lora_rank(plan: PlanContext, ref: Any) -> int:
    """The largest LoRA rank of the adapters the spec trains on weights ``ref`` (0: none)."""
    ranks = [0]
    for m in plan.spec.models:
        if m.model != ref:
            continue
        ranks += [plan.spec.recipes[r.recipe].lora.rank for r in m.reasonmaxxer if r.recipe in plan.spec.recipes]
        for b in m.rl_baselines:
            rec = plan.spec.rl_recipes.get(b.train.recipe) if b.train is not None else None
            if rec is not None and rec.lora is not None:
                ranks.append(rec.lora.rank)
    return max(ranks)


def row_engine(plan: PlanContext, row: RowView, *, weights_only: bool = False) -> Any:
    """The engine of a ReasonMaxxer row's base model (rollouts, validation; ``weights_only``: entropy,
    training), shared with the base row's evaluation."""
    b = row.base
    return engine(plan, b.model, dtype=b.dtype, trust_remote_code=b.trust_remote_code, label=b.id,
                  weights_only=weights_only)


def row_recipe(plan: PlanContext, row: RowView, seed: int | None = None) -> Any:
    """The ReasonMaxxer recipe of ``row``'s chain of training seed ``seed`` (:func:`seeded_recipe`)."""
    return seeded_recipe(plan.spec.recipes[row.row.recipe], seed)


def method_config(plan: PlanContext, row: RowView, tau: float | None = None, seed: int | None = None) -> MethodConfig:
    """The :class:`MethodConfig` of a ReasonMaxxer ``row`` (of its chain of training seed ``seed``:
    ``config.recipe.seed`` is that seed)."""
    return MethodConfig(spec=plan.spec, base=row.base, row_id=row.id, recipe_name=row.row.recipe,
                        recipe=row_recipe(plan, row, seed), spec_dir=plan.ctx.dir,
                        data_dir=plan.ctx.data_dir, tau=tau, backend=backend_part(plan.spec))


def model_part(plan: PlanContext, row: RowView) -> dict[str, Any]:
    """Key part identifying the base weights the method stages run on (identity + dtype)."""
    return {**plan.model_id(row.base.model), "dtype": row.base.dtype}


def is_method_row(row: RowView) -> bool:
    """True for ReasonMaxxer rows (the rows the method stages apply to)."""
    return row.kind == "reasonmaxxer"


def tau_label(tau: float | None) -> str:
    """``tau=0.3`` (or ``base`` for the base-model validation)."""
    return "base" if tau is None else f"tau={tau:g}"


def selected_sequences(config: MethodConfig) -> Any:
    """The rollout sequences the entropy and train stages process, as work (issue 20): at most
    min(pool, ``selection.max_problems``) problems x K (the store learns the share really selected),
    of the pool's mean prompt length plus completions up to the rollouts' cap, cut at ``max_seq_len``."""
    from rmxbench.estimate.work import Sequences, task_problems

    r = config.recipe
    n_pool, prompt = task_problems(r.pool.source, config.data_dir)
    problems = min(r.pool.size, n_pool or r.pool.size, r.selection.max_problems)
    return Sequences(problems * r.rollouts.k, prompt, r.rollouts.max_new_tokens, max_len=r.optim.max_seq_len,
                     origin="rollouts")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))


def base_metadata(config: MethodConfig, pool_dir: Path, selection_dir: Path) -> dict[str, Any]:
    """The part of ``rmx_metadata.json`` every adapter shares: row, recipe, pool report, selection
    statistics, seeds, library versions, grader version."""
    from rmxbench.evaluation.grading import GRADER_VERSION
    from rmxbench.pipeline.identity import model_identity
    from rmxbench.backends.select import library_versions

    split = read_json(selection_dir / "split.json")
    recipe = config.recipe
    return {
        "row": config.row_id, "base": config.base.id, "recipe_name": config.recipe_name,
        "recipe": recipe.model_dump(mode="json"),
        "model": {**model_identity(config.base.model, spec_dir=config.spec_dir), "dtype": config.base.dtype},
        "pool": read_json(pool_dir / "pool.json"),
        "selection": {k: v for k, v in split.items() if k not in ("train_ids", "validation_ids")},
        "seeds": {"recipe": recipe.seed, "rollouts": recipe.seed, "validation": recipe.seed + 1},
        "sampling": {"rollouts": recipe.rollout_sampling().key(), "validation": recipe.validation_sampling().key()},
        "versions": library_versions(), "grader_version": GRADER_VERSION,
    }
