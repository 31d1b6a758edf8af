"""The ``grpo`` stage of an RL-baseline row with ``train: {algorithm: grpo, recipe: …}``: its content
key (torch-free, so ``--dry-run`` shows it) and its build through the artifact store.

Key parts (:func:`grpo_key_parts`): the base model's identity and dtype, the prompt style's text
and chat-template flag, the whole RL recipe, the pool source's data hash and the evaluation sets'
(the pool is decontaminated against them), the generation backend, the grader version, the TRL
version and :data:`CODE_VERSION`. The trained model's evaluation is keyed on this key
(:func:`trained_model_identity`), so every key of the row is known before training.

Build (:func:`build_grpo`): pool selection (:func:`rmxbench.pool.select_pool`, the same draw and
contamination guard as ReasonMaxxer, no validation split), then
:func:`rmxbench.rl.grpo_trainer.train_grpo` inside :func:`rmxbench.metering.metered`, into the
store's temp dir (published atomically by :meth:`ArtifactStore.build`). TRL's checkpoints go to
``<home>/work/grpo/<key>/``, which survives a kill (the rerun resumes from it) and is removed once
the artifact is published; ``force`` discards it first.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmxbench.errors import UserError

#: Store stage name of the trained model / adapter.
GRPO_STAGE = "grpo"
#: Bump when the stage's code changes what it trains.
CODE_VERSION = "grpo-1"
#: Pool report file inside the artifact.
POOL_FILE = "pool.json"


def row_recipe(spec: Any, row: Any):
    """The :class:`~rmxbench.rl.grpo_config.GRPORecipe` of a ``train:`` row.

    Raises:
        UserError: the row has no ``train`` block or names an undefined recipe.
    """
    if getattr(row, "train", None) is None:
        raise UserError(f"row {row.id!r} has no `train:` block; only train rows are trained by rmxbench")
    if row.train.recipe not in spec.rl_recipes:
        raise UserError(f"row {row.id!r} trains with RL recipe {row.train.recipe!r}, not defined in the spec",
                        hint=f"defined under rl_recipes: {sorted(spec.rl_recipes) or 'none'}")
    return spec.rl_recipes[row.train.recipe]


def prompt_style_of(base: Any, row: Any) -> str:
    """The row's prompt style (its own, else the base's): used for training *and* evaluation."""
    return row.prompt_style or base.prompt_style


def _trl_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("trl")
    except metadata.PackageNotFoundError:
        return "absent"


def grpo_key_parts(spec: Any, base: Any, row: Any, *, model_id: dict, data_ids: dict[str, dict],
                   pool_id: dict, grader: str, prompt: dict) -> dict[str, Any]:
    """Everything that determines the ``grpo`` artifact of ``row`` (see module doc). Torch-free.

    Args:
        model_id: the base model's identity (hub repo + revision or local file hash).
        data_ids: ``{task: identity}`` of the evaluation sets (the contamination guard reads them).
        pool_id: identity of the pool source's data file.
        grader: the grader version.
        prompt: identity of the prompt style (template text + stop strings).
    """
    recipe = row_recipe(spec, row)
    return {
        "model": model_id,
        "dtype": row.dtype or base.dtype,
        "prompt": prompt,
        "chat_template": base.chat_template if row.chat_template is None else row.chat_template,
        "algorithm": row.train.algorithm,
        "recipe": recipe.model_dump(mode="json"),
        "pool": pool_id,
        "evalsets": data_ids,
        "backend": spec.protocol.backend,
        "grader": grader,
        "trl": _trl_version(),
        "code": CODE_VERSION,
    }


def trained_model_identity(key: str, kind: str) -> dict[str, str]:
    """Identity of a GRPO-trained model for evaluation keys: the ``grpo`` stage's content key.

    ``kind`` is ``"full"`` (the artifact is the whole model) or ``"lora"`` (an adapter on the base).
    """
    return {"trained": f"{GRPO_STAGE}/{key}", "kind": kind}


@dataclass
class GRPOStageResult:
    """Outcome of :func:`build_grpo`.

    Attributes:
        out_dir: the published artifact folder (``<home>/grpo/<key>/``).
        key: its content key.
        kind: ``"full"`` or ``"lora"``.
        metadata: ``grpo_metadata.json``.
    """

    out_dir: Path
    key: str
    kind: str
    metadata: dict


def work_dir(store: Any, key: str) -> Path:
    """Folder of TRL's checkpoints for ``key`` (outside the atomic temp dir, so a kill keeps it)."""
    if not key.isalnum():
        raise ValueError(f"unsafe key {key!r}")
    return store.home / "work" / GRPO_STAGE / key


def build_grpo(spec: Any, base: Any, row: Any, *, store: Any, key: str, spec_dir: Path | None,
               data_dir: Path | None, force: bool = False, progress: Any | None = None) -> GRPOStageResult:
    """Build (or reuse) the ``grpo`` artifact of ``row`` under ``key`` (from :func:`grpo_key_parts`).

    Raises:
        UserError: undefined recipe, unreadable data, a pool too small, contamination with ``refuse``.
    """
    from rmxbench.metering import metered
    from rmxbench.pool import load_eval_sets, select_pool
    from rmxbench.data import load_benchmark
    from rmxbench.rl.grpo_trainer import METADATA_FILE, train_grpo

    recipe = row_recipe(spec, row)
    work = work_dir(store, key)
    if force:
        shutil.rmtree(work, ignore_errors=True)

    def build(tmp: Path) -> None:
        from rmxbench.modeling import load_model

        sel = select_pool(load_benchmark(recipe.pool.source, data_dir=data_dir), size=recipe.pool.size,
                          validation_size=0, seed=recipe.seed, balance_levels=recipe.pool.balance_levels,
                          contamination=recipe.pool.contamination,
                          eval_sets=load_eval_sets(spec.protocol.tasks, data_dir=data_dir)
                          if recipe.pool.contamination != "off" else {}, source_name=recipe.pool.source)
        (tmp / POOL_FILE).write_text(json.dumps({**sel.report, "ids": [r["id"] for r in sel.pool]}, indent=1))
        with metered(GRPO_STAGE, tmp) as rec:
            model, tok = load_model(base.model, dtype=row.dtype or base.dtype,
                                    trust_remote_code=base.trust_remote_code, spec_dir=spec_dir)
            vllm = spec.protocol.vllm
            res = train_grpo(recipe, model, tok, sel.pool, prompt_style=prompt_style_of(base, row),
                             task=recipe.pool.source, out_dir=tmp, work_dir=work,
                             use_vllm=spec.protocol.backend == "vllm",
                             vllm_kwargs={"vllm_gpu_memory_utilization": vllm.gpu_memory_utilization,
                                          "vllm_tensor_parallel_size": vllm.tensor_parallel_size,
                                          "vllm_max_model_length": spec.protocol.max_model_len},
                             label=row.id, progress=progress)
            rec.update(steps=res.steps, resumed_from_step=res.resumed_from_step,
                       prior_seconds=res.train_seconds_before_resume)

    out = store.build(GRPO_STAGE, key, build, force=force)
    shutil.rmtree(work, ignore_errors=True)
    meta = json.loads((out / METADATA_FILE).read_text())
    return GRPOStageResult(out, key, meta["kind"], meta)
