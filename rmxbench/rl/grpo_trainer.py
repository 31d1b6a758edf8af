"""The GRPO stage: trains an RL baseline with ``trl.GRPOTrainer`` (DeepSeekMath §4.1, Shao et al. 2024).

Configuration: :mod:`rmxbench.rl.grpo_config`. The build function :func:`train_grpo` is a function
of (recipe, base model, pool rows, prompt style, grading task, work dir) → files in ``out_dir``:

- the trained weights: a full ``save_pretrained`` model dir (``config.json``,
  ``model.safetensors``, tokenizer files), or a PEFT adapter dir (``adapter_config.json``,
  ``adapter_model.safetensors``) when the recipe has ``lora``;
- ``grpo_log.json``: per optimiser step ``step``, ``reward`` (mean 0/1 grader reward over the
  step's completions), ``reward_std``, ``loss``, ``kl`` (nats, only with β > 0), ``entropy``
  (nats), ``completion_length`` (tokens), ``learning_rate``, ``step_time`` (seconds); plus the
  run's totals (``steps``, ``resumed_from_step``, ``train_seconds``) and TRL's arguments;
- ``reward_curve.png``: mean reward vs step, ±1 standard error (matplotlib);
- ``grpo_metadata.json``: what was trained (kind ``full``/``lora``, recipe, versions).

**Reward = the grader.** :func:`make_reward` wraps :func:`rmxbench.evaluation.grading.grade` with the task's
policy, after cutting the completion at the prompt style's stop strings (what evaluation's
generation does), so a completion earns 1 during training exactly when evaluation would count it
correct. No second parser.

**Resumable.** TRL writes ``checkpoint-<step>/`` folders (weights, optimiser, scheduler, RNG
state, ``trainer_state.json`` last) into ``work_dir`` every ``recipe.save_steps`` steps; a rerun
after ``kill -9`` resumes from the newest *complete* one (:func:`last_checkpoint`), not from step
0. ``out_dir`` should be a store temp dir, so the final artifact appears atomically only at the
end; ``work_dir`` lives outside it and is removed by the caller once the artifact is published.

Generation: transformers ``generate`` (HF backend), or TRL's vLLM colocate mode
(``use_vllm=True``) where the spec's backend is vLLM.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rmxbench.results import atomic_write_json, library_versions

#: Artifact file names.
LOG_FILE = "grpo_log.json"
CURVE_FILE = "reward_curve.png"
METADATA_FILE = "grpo_metadata.json"
#: TRL's per-step log keys → rmxbench's names in ``grpo_log.json``.
_LOG_KEYS = {"reward": "reward", "reward_std": "reward_std", "loss": "loss", "kl": "kl", "entropy": "entropy",
             "completions/mean_length": "completion_length", "learning_rate": "learning_rate",
             "step_time": "step_time", "frac_reward_zero_std": "frac_reward_zero_std"}
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def make_reward(task: str, prompt_style: str) -> Callable[..., list[float]]:
    """The GRPO reward: ``r = 1.0`` if :func:`rmxbench.evaluation.grading.grade` marks the completion correct
    for ``task`` (its extraction policy), else ``0.0`` (paper §5: r_i ∈ {0, 1}).

    The completion is first cut at the ``prompt_style``'s stop strings
    (:func:`rmxbench.evaluation.prompts.truncate_at_stops`), as evaluation's generation stops there.

    Returns:
        ``reward(prompts, completions, answer, **kwargs) -> list[float]`` in TRL's reward-function
        signature (``answer``: the dataset column with each prompt's gold answer string).
    """
    from rmxbench.evaluation.prompts import truncate_at_stops
    from rmxbench.method.rollouts import grade_completion

    def reward(prompts: list, completions: list[str], answer: list[str], **_: Any) -> list[float]:
        return [grade_completion(truncate_at_stops(c, prompt_style), str(a), "stop", task=task)["reward"]
                for c, a in zip(completions, answer)]

    reward.__name__ = f"grade_{task}"
    return reward


def last_checkpoint(work_dir: str | Path, *, prune: bool = False) -> Path | None:
    """The newest complete TRL checkpoint in ``work_dir`` (``checkpoint-<step>/`` holding
    ``trainer_state.json``, which the Trainer writes last), or None. With ``prune``, incomplete
    newer ones (a kill while saving) are deleted (only when no trainer is writing there)."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in work_dir.iterdir()
                    if p.is_dir() and (m := _CKPT.match(p.name))), reverse=True)
    for _, p in found:
        if (p / "trainer_state.json").is_file():
            return p
        if prune:
            shutil.rmtree(p, ignore_errors=True)
    return None


@dataclass
class GRPOResult:
    """Outcome of :func:`train_grpo`.

    Attributes:
        out_dir: the artifact folder (model or adapter + logs).
        kind: ``"full"`` (complete model dir) or ``"lora"`` (PEFT adapter dir).
        steps: optimiser steps trained in total.
        resumed_from_step: the checkpoint step this process resumed from (0 = fresh start).
        train_seconds: wall seconds of training, this process plus ``seconds_before_resume``.
        seconds_before_resume: the step times (seconds) TRL recorded up to the resumed checkpoint
            (0 for a fresh start): the killed run's share of the cost.
        log: the contents of ``grpo_log.json``.
    """

    out_dir: Path
    kind: str
    steps: int
    resumed_from_step: int
    train_seconds: float
    seconds_before_resume: float
    log: dict


def _progress_callback(label: str):
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        """A :func:`rmxbench.progress.task` bar over optimiser steps, showing the running reward."""

        bar = None

        def on_train_begin(self, args, state, control, **kw):
            from rmxbench import progress

            self.bar = progress.task(f"{label}: GRPO", state.max_steps)
            self.bar.p.update(self.bar.id, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.bar is not None and logs and "reward" in logs:
                self.bar.p.update(self.bar.id, completed=state.global_step,
                                  description=f"{label}: GRPO step {state.global_step}, reward {logs['reward']:.3f}")

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.done()

    return _Progress()


def _unmark_dequantized_gguf(model: Any) -> None:
    """Let ``transformers.Trainer`` train a model whose GGUF weights were dequantised at load time.

    transformers' GGUF loader (the legacy path for architectures without packed GGUF kernels, e.g.
    SmolLM2/Llama in 5.19) turns every weight into a plain float tensor but leaves the model marked
    as GGUF-quantized, and ``Trainer`` refuses to train GGUF-quantized models. When every parameter
    is a floating-point tensor the mark is dropped; packed (still quantized) weights keep it.
    """
    import torch

    q = getattr(model, "hf_quantizer", None)
    if q is None or str(getattr(q.quantization_config, "quant_method", "")).lower().split(".")[-1] != "gguf":
        return
    if getattr(q, "packed_modules", None) or not all(torch.is_floating_point(p) for p in model.parameters()):
        return
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def plot_reward_curve(history: list[dict], path: Path, title: str, completions_per_step: int) -> None:
    """Write a reward-vs-step PNG: mean grader reward per optimiser step with a ±1 standard-error
    band (s.d. over the step's ``completions_per_step`` completions / √n)."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [h for h in history if h.get("reward") is not None]
    steps = [h["step"] for h in pts]
    mean = [h["reward"] for h in pts]
    se = [(h.get("reward_std") or 0.0) / math.sqrt(max(completions_per_step, 1)) for h in pts]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    ax.plot(steps, mean, color="#1f6feb", lw=1.5, marker="o", ms=3, label="mean reward")
    ax.fill_between(steps, [m - e for m, e in zip(mean, se)], [m + e for m, e in zip(mean, se)],
                    color="#1f6feb", alpha=0.15, lw=0, label="±1 s.e.")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("reward (grader, 0/1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def train_grpo(recipe: Any, model: Any, tokenizer: Any, pool_rows: list[dict], *, prompt_style: str, task: str,
               out_dir: str | Path, work_dir: str | Path, use_vllm: bool = False, vllm_kwargs: dict | None = None,
               label: str = "grpo") -> GRPOResult:
    """Train ``model`` with GRPO on ``pool_rows`` and write the artifact into ``out_dir``.

    Args:
        recipe: :class:`~rmxbench.rl.grpo_config.GRPORecipe`.
        model: a loaded ``transformers`` causal LM (modified in place; full fine-tuning trains it,
            LoRA wraps it with peft), or a model id/path string TRL loads itself.
        tokenizer: the model's tokenizer (prompts of chat styles are rendered through it).
        pool_rows: training problems (``id``, ``problem``, ``answer``), from :mod:`rmxbench.method.pool`.
        prompt_style: the row's prompt style (:func:`rmxbench.evaluation.prompts.build_prompt`).
        task: grading task of the pool (:data:`rmxbench.evaluation.grading.POLICIES` key), e.g. ``embedded_train``.
        out_dir: existing empty folder for the artifact (a store temp dir).
        work_dir: folder for TRL's checkpoints; reused to resume after a kill.
        use_vllm: generate with TRL's vLLM colocate mode instead of transformers ``generate``.
        vllm_kwargs: extra ``GRPOConfig`` ``vllm_*`` arguments (e.g. ``vllm_gpu_memory_utilization``).
        label: progress-bar and figure label (the row id).

    Returns:
        :class:`GRPOResult`.

    Raises:
        ValueError: empty pool.
    """
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from rmxbench.evaluation.prompts import build_prompt

    if not pool_rows:
        raise ValueError("GRPO needs at least one training problem")
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    on_gpu = torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=str(work_dir),
        **recipe.trl_kwargs(),
        bf16=on_gpu and torch.cuda.is_bf16_supported(),  # TRL 1.16 defaults bf16 on; CPU runs float32
        gradient_checkpointing=False,  # TRL 1.16 defaults it on; needless for the sizes rmxbench trains on CPU
        use_cpu=not on_gpu,
        use_vllm=use_vllm,
        vllm_mode="colocate",
        **(vllm_kwargs or {}),
        save_strategy="steps",
        save_only_model=False,  # optimiser + RNG state: a resumed run continues the same trajectory
        logging_steps=1,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        data_seed=recipe.seed,
    )
    dataset = Dataset.from_list([{"prompt": build_prompt(r["problem"], prompt_style, tokenizer),
                                  "answer": str(r["answer"]), "id": str(r["id"])} for r in pool_rows])
    peft_config = None
    if recipe.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(r=recipe.lora.rank, lora_alpha=recipe.lora.alpha, lora_dropout=recipe.lora.dropout,
                                 target_modules=list(recipe.lora.target_modules), bias="none", task_type="CAUSAL_LM")
    if not isinstance(model, str):
        _unmark_dequantized_gguf(model)
    trainer = GRPOTrainer(model=model, reward_funcs=make_reward(task, prompt_style), args=args,
                          train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config,
                          callbacks=[_progress_callback(label)])
    trainer.remove_callback(PrinterCallback)  # per-step dicts on stdout; the progress bar shows the reward
    ckpt = last_checkpoint(work_dir, prune=True)
    resumed = 0
    prior_seconds = 0.0
    if ckpt is not None:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        resumed = int(state.get("global_step", 0))
        prior_seconds = sum(float(h.get("step_time", 0.0)) for h in state.get("log_history", []))
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt is not None else None)
    seconds = time.perf_counter() - t0 + prior_seconds

    history = []
    for h in trainer.state.log_history:
        if "reward" in h:
            history.append({"step": int(h["step"]), **{v: h.get(k) for k, v in _LOG_KEYS.items() if k in h}})
    kind = "lora" if peft_config is not None else "full"
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    log = {"unit": {"reward": "mean 0/1 grader reward per completion", "kl": "nats", "entropy": "nats",
                    "step_time": "seconds", "completion_length": "tokens"},
           "steps": int(trainer.state.global_step), "resumed_from_step": resumed, "train_seconds": seconds,
           "prompts_per_step": recipe.prompts_per_step, "num_generations": recipe.num_generations,
           "task": task, "prompt_style": prompt_style, "n_pool": len(pool_rows),
           "trl_args": {k: v for k, v in recipe.trl_kwargs().items()}, "use_vllm": use_vllm, "history": history}
    atomic_write_json(out_dir / LOG_FILE, log)
    plot_reward_curve(history, out_dir / CURVE_FILE, f"{label}: GRPO reward vs step, sampled at T={recipe.temperature:g} "
                      f"({task}, {recipe.prompts_per_step} prompts × {recipe.num_generations} per step)",
                      recipe.prompts_per_step * recipe.num_generations)
    atomic_write_json(out_dir / METADATA_FILE, {
        "kind": kind, "recipe": recipe.model_dump(mode="json"), "steps": log["steps"],
        "resumed_from_step": resumed, "train_seconds": seconds, "versions": library_versions(),
        "final_reward": history[-1]["reward"] if history else None})
    return GRPOResult(out_dir, kind, log["steps"], resumed, seconds, prior_seconds, log)
