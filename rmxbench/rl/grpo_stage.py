"""Stage ``grpo``: train an RL-baseline row declared with ``train: {algorithm: grpo, recipe: …}``
from its base model with ``trl.GRPOTrainer`` (DeepSeekMath §4.1; :func:`rmxbench.rl.grpo_trainer.train_grpo`).

One node per ``train:`` row. It ``provides`` ``"checkpoint"`` (full fine-tuning: a complete model
folder) or ``"adapter"`` (``lora`` in the recipe: a PEFT dir on the base), so the ``eval`` stage
evaluates the trained weights exactly like a public RL checkpoint, keyed by this node's key (known
at ``--dry-run``).

Key parts: the base model's identity and dtype, the row's prompt (the one it is evaluated with:
:meth:`rmxbench.spec.schema.RLBaseline.eval_prompt_settings`) and chat-template flag, the whole
RL recipe, the pool source's data identity and the evaluation sets' (the pool is decontaminated
against them), the generation backend, the grader and TRL versions.

Build: pool selection (:func:`rmxbench.method.pool.select_pool`: the same seeded draw and
contamination guard as ReasonMaxxer's pool stage, no validation split), then training inside
:func:`rmxbench.pipeline.metering.metered`. TRL's checkpoints go to the
build's work folder ``<home>/work/grpo/<key>/`` (:attr:`rmxbench.pipeline.graph.BuildEnv.work_dir`:
outside the store's temp folder, so a killed run keeps them and the rerun, on any machine that
shares the store, resumes from the last one); it is removed once the artifact is complete, and
the store publishes the artifact atomically.

Generation: TRL's vLLM colocate mode where the protocol's backend (``auto`` resolved) is vLLM and
TRL can drive it here (:func:`rmxbench.backends.select.trl_vllm_support`: the CUDA build within
TRL's supported range); otherwise transformers ``generate``, and with ``backend: vllm`` a one-line
notice says why (``grpo_metadata.json`` ``generation``, printed by the runner, shown in the row's
provenance). The generation backend that runs is part of the key; it is decided once, when the
plan is made, and the build (possibly on another machine) follows that decision.

Artifact: the model or adapter files, ``grpo_log.json`` (reward, loss, KL, entropy, completion
length, clipped ratio, zero-variance groups, grad norm per step; the health verdict),
``reward_curve.png``, ``grpo_metadata.json``, ``pool.json``, ``meter.json``.

Warn: :func:`warn` returns the run's health reasons (:mod:`rmxbench.rl.grpo_health`: all completions
clipped, reward 0 or zero reward variance at every step, ungradable completions, divergence), which
the runner puts in the row's board note; the row itself is still evaluated.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmxbench.backends.select import trl_generation
from rmxbench.evaluation.data import data_identity
from rmxbench.evaluation.grading import GRADER_VERSION
from rmxbench.evaluation.prompts import prompt_identity
from rmxbench.pipeline.graph import Graph, Node
from rmxbench.pipeline.identity import library_version
from rmxbench.pipeline.rows import seeded_label, seeded_recipe

#: Pool report file inside the artifact.
POOL_FILE = "pool.json"
#: Seconds of a GRPO node outside its training loop besides loading weights (TRL/accelerate imports, pool
#: selection, trainer set-up, checkpoint and model saving, the reward curve): an assumption of the cost
#: estimate until the store has measured it (``meter.json``: ``work_seconds`` = the loop, the rest = set-up).
SETUP_SECONDS = 10.0


@dataclass
class GRPOConfig:
    """Config of a ``grpo`` node. ``generation``: :func:`rmxbench.backends.select.trl_generation`
    of the protocol's backend, decided when the plan is made (``(use_vllm, backend, notice)``)."""

    spec: Any
    base: Any
    row_id: str
    recipe: Any
    settings: Any
    spec_dir: Path
    data_dir: Path | None
    generation: tuple = (False, "hf", None)


def is_train_row(row) -> bool:
    """True for RL-baseline rows declared with ``train:``."""
    return row.kind == "rl_baseline" and getattr(row.row, "train", None) is not None


def declare(plan, row, graph: Graph) -> None:
    if not is_train_row(row):
        return
    s = row.settings
    generation = trl_generation(plan.spec.protocol.backend)  # resolved once, at plan time (issue 16)
    for seed in row.seeds:  # one GRPO run per training seed (issue 19): the recipe with `seed` replaced
        recipe = seeded_recipe(plan.spec.rl_recipes[row.row.train.recipe], seed)
        cfg = GRPOConfig(plan.spec, row.base, row.id, recipe, s, plan.ctx.dir, plan.ctx.data_dir, generation)
        graph.add(Node(
            "grpo", row.id, seeded_label("grpo", seed), cfg, provides="adapter" if recipe.lora else "checkpoint",
            seed=seed, parts=dict(
                model={**plan.model_id(row.base.model), "dtype": s.dtype}, prompt=prompt_identity(s.prompt_style),
                chat_template=s.chat_template, algorithm=row.row.train.algorithm, recipe=recipe,
                pool=data_identity(recipe.pool.source, plan.ctx.data_dir, plan.hashes), evalsets={t: data_identity(t, plan.ctx.data_dir, plan.hashes) for t in plan.spec.protocol.tasks},
                backend=generation[1], grader=GRADER_VERSION,
                trl=library_version("trl"))))


def work(config: GRPOConfig, inputs=None):
    """GRPO's work (issue 20: the estimate's declaration): S optimiser steps (``max_steps``, else
    ``epochs`` x pool / prompts per step x μ), each training ``per_device_train_batch_size`` x
    ``gradient_accumulation_steps`` completions that were generated once per μ updates (G per prompt,
    up to ``max_completion_length``); a reference forward pass when β > 0 and an old-policy pass when a
    generation round is reused; the policy (+ reference) loaded by the build itself, and TRL's vLLM
    colocate engine where GRPO generates with vLLM on the declared hardware."""
    import math

    from rmxbench.backends.throughput import planned_trl_backend, profile
    from rmxbench.estimate.work import Generation, Sequences, Work, task_problems

    r, spec = config.recipe, config.spec
    n_pool, prompt = task_problems(r.pool.source, config.data_dir)
    pool = min(r.pool.size, n_pool or r.pool.size)
    per_step = r.per_device_train_batch_size * r.gradient_accumulation_steps  # completions per update
    steps = r.max_steps or math.ceil(r.epochs * pool * r.num_iterations / max(r.prompts_per_step, 1))
    generated = math.ceil(steps * per_step / r.num_iterations)
    gpu = spec.pricing.hardware.gpu_type is not None
    backend = planned_trl_backend(spec.protocol.backend, gpu=gpu)
    variant = "grpo:" + ("lora" if r.lora else "full")
    # the protocol's context bounds every completion (prompt + completion <= max_model_len)
    cap = max(1, min(r.max_completion_length, spec.protocol.max_model_len - int(prompt)))
    gen = Generation(math.ceil(generated / r.num_generations), r.num_generations, prompt, cap, batch=r.generation_batch)
    trained = Sequences(steps * per_step, prompt, cap, origin=variant)
    extra_passes = (1 if r.beta > 0 else 0) + (1 if r.num_iterations > 1 or (r.steps_per_generation or
                                                                             r.gradient_accumulation_steps)
                                               != r.gradient_accumulation_steps else 0)
    scored = (Sequences(generated, prompt, cap, passes=extra_passes, origin=variant),) \
        if extra_passes else ()
    return Work(variant, config.base.model, config.settings.dtype, generations=(gen,), trained=(trained,),
                scored=scored, full_finetune=r.lora is None,
                model_loads=1 + (1 if r.beta > 0 and r.lora is None else 0),
                engine_starts=int(profile(backend).own_engine), backend=backend, fixed_seconds=SETUP_SECONDS,
                note=f"{steps} optimiser steps x {per_step} completions")


def summary(out_dir: Path) -> str | None:
    """The generation notice of a finished ``grpo`` node (printed once by the runner), or None."""
    meta = Path(out_dir) / "grpo_metadata.json"
    if not meta.is_file():
        return None
    return (json.loads(meta.read_text()).get("generation") or {}).get("notice")


def build(config: GRPOConfig, inputs: dict[str, Path], out_dir: Path, env) -> None:
    from rmxbench.backends.modeling import load_model
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.method.pool import load_eval_sets, select_pool
    from rmxbench.pipeline.metering import metered
    from rmxbench.rl.grpo_trainer import train_grpo

    recipe, spec, s = config.recipe, config.spec, config.settings
    use_vllm, backend, notice = config.generation
    work_dir = env.work_dir
    with metered("grpo", out_dir) as rec:
        sel = select_pool(load_benchmark(recipe.pool.source, data_dir=config.data_dir), size=recipe.pool.size,
                          validation_size=0, seed=recipe.seed, balance_levels=recipe.pool.balance_levels,
                          contamination=recipe.pool.contamination,
                          eval_sets=load_eval_sets(spec.protocol.tasks, data_dir=config.data_dir)
                          if recipe.pool.contamination != "off" else {}, source_name=recipe.pool.source)
        (out_dir / POOL_FILE).write_text(json.dumps({**sel.report, "ids": [r["id"] for r in sel.pool]}, indent=1))
        model, tok = load_model(config.base.model, dtype=s.dtype, trust_remote_code=s.trust_remote_code,
                                spec_dir=config.spec_dir)
        vllm = spec.protocol.vllm
        res = train_grpo(recipe, model, tok, sel.pool, prompt_style=s.prompt_style, task=recipe.pool.source,
                         out_dir=out_dir, work_dir=work_dir, use_vllm=use_vllm,
                         vllm_kwargs={"vllm_gpu_memory_utilization": vllm.gpu_memory_utilization,
                                      "vllm_tensor_parallel_size": vllm.tensor_parallel_size,
                                      "vllm_max_model_length": spec.protocol.max_model_len},
                         label=config.row_id)
        rec.update(steps=res.steps, resumed_from_step=res.resumed_from_step,
                   prior_seconds=res.seconds_before_resume)
        # the training loop's own seconds (the rest is set-up: imports, loading, saving) and the completions
        # generated (each trained on μ times) x their logged mean length (issue 20: meter.json, calibration)
        rec.update(work_seconds=res.train_seconds - res.seconds_before_resume, work_cpu_seconds=res.train_cpu_seconds)
        per_gen = recipe.per_device_train_batch_size * recipe.gradient_accumulation_steps / recipe.num_iterations
        rec["completion_tokens"] = round(sum(float(h.get("completion_length") or 0.0) * per_gen
                                             for h in res.log.get("history", [])))
    meta_file = out_dir / "grpo_metadata.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta["generation"] = {"backend": backend, "notice": notice}
    from rmxbench.results import atomic_write_json

    atomic_write_json(meta_file, meta)
    # the artifact is complete: the checkpoints are no longer needed (a kill before the store
    # publishes it only costs a retrain)
    shutil.rmtree(work_dir, ignore_errors=True)


def warn(out_dir: Path) -> str | None:
    """A plain-language note when the finished GRPO run in ``out_dir`` is degenerate (its
    ``grpo_log.json`` health verdict, :func:`rmxbench.rl.grpo_health.grpo_health`), else None."""
    from rmxbench.rl.grpo_health import grpo_health, health_note
    from rmxbench.rl.grpo_trainer import LOG_FILE

    path = Path(out_dir) / LOG_FILE
    if not path.is_file():
        return None
    log = json.loads(path.read_text())
    health = log.get("health") or grpo_health(log.get("history", []))
    return health_note(health)
