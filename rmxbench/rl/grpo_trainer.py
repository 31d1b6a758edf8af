"""The GRPO stage: trains an RL baseline with ``trl.GRPOTrainer`` (DeepSeekMath §4.1, Shao et al. 2024).

Configuration: :mod:`rmxbench.spec.grpo_recipe`. The build function :func:`train_grpo` is a function
of (recipe, base model, pool rows, prompt style, grading task, work dir) → files in ``out_dir``:

- the trained weights: a full ``save_pretrained`` model dir (``config.json``,
  ``model.safetensors``, tokenizer files), or a PEFT adapter dir (``adapter_config.json``,
  ``adapter_model.safetensors``) when the recipe has ``lora``;
- ``grpo_log.json``: per optimiser step ``step``, ``reward`` (mean 0/1 grader reward over the
  step's completions), ``reward_std``, ``loss``, ``kl`` (nats, only with β > 0), ``entropy``
  (nats), ``completion_length`` (tokens), ``clipped_ratio`` (share of completions that hit
  ``max_completion_length``), ``frac_reward_zero_std`` (share of groups whose G rewards are equal),
  ``reward_error_frac`` (share of completions whose grading raised), ``grad_norm``,
  ``learning_rate``, ``step_time`` (seconds); plus the run's totals (``steps``,
  ``resumed_from_step``, ``skipped_checkpoints``, ``train_seconds``), the ``health`` verdict
  (:mod:`rmxbench.rl.grpo_health`), the first reward errors and TRL's arguments;
- ``reward_curve.png``: mean reward vs step, ±1 standard error (matplotlib);
- ``grpo_metadata.json``: what was trained (kind ``full``/``lora``, recipe, versions, health).

**Reward = the grader.** :class:`GraderReward` wraps :func:`rmxbench.evaluation.grading.grade` with the
task's policy, after cutting the completion at the prompt style's stop strings (what evaluation's
generation does), so a completion earns 1 during training exactly when evaluation would count it
correct. No second parser. It takes TRL's plain-text and conversational completions alike, and an
item whose grading raises scores 0 and is counted instead of failing the step.

**Prompts = the tokenization contract.** TRL encodes text prompts with special tokens on;
:func:`trl_prompts` hands it texts whose ids equal :func:`rmxbench.backends.tokenization.prompt_ids`
(BOS exactly once, also for chat templates that write BOS text).

**Resumable.** TRL writes ``checkpoint-<step>/`` folders (weights, optimiser, scheduler, RNG
state, ``trainer_state.json`` last) into ``work_dir`` every ``recipe.save_steps`` steps; a rerun
after ``kill -9`` resumes from the newest *complete* one (:func:`last_checkpoint`: every file
:func:`checkpoint_missing` asks for, so a resumed run ends with the weights of an uninterrupted
one), not from step 0; newer incomplete ones are skipped with a notice. ``out_dir`` should be a
store temp dir, so the final artifact appears atomically only at the end; ``work_dir`` lives
outside it and is removed by the caller once the artifact is published.

Generation: transformers ``generate`` (HF backend), or TRL's vLLM colocate mode
(``use_vllm=True``) where the spec's backend is vLLM.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmxbench.backends.select import library_versions
from rmxbench.results import atomic_write_json

#: Artifact file names.
LOG_FILE = "grpo_log.json"
CURVE_FILE = "reward_curve.png"
METADATA_FILE = "grpo_metadata.json"
#: TRL's per-step log keys → rmxbench's names in ``grpo_log.json``.
_LOG_KEYS = {"reward": "reward", "reward_std": "reward_std", "loss": "loss", "kl": "kl", "entropy": "entropy",
             "completions/mean_length": "completion_length", "learning_rate": "learning_rate",
             "step_time": "step_time", "frac_reward_zero_std": "frac_reward_zero_std",
             "completions/clipped_ratio": "clipped_ratio", "grad_norm": "grad_norm",
             "reward_error_frac": "reward_error_frac"}
_CKPT = re.compile(r"^checkpoint-(\d+)$")


#: Reward-error examples kept in ``grpo_log.json`` (the count covers every error).
MAX_ERROR_EXAMPLES = 5

log = logging.getLogger("rmxbench.rl")


def _content_text(content: Any) -> str:
    """Text of a chat message's ``content``: a string, or a list of parts whose ``text`` parts count."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text":
                out.append(str(part.get("text") or ""))
        return "".join(out)
    raise TypeError(f"message content must be text or a list of parts, got {type(content).__name__}")


def completion_text(completion: Any) -> str:
    """The text of one completion in any shape TRL 1.16's ``GRPOTrainer`` passes to a reward function.

    ``_generate_and_score_completions`` passes a ``str`` per completion for plain-text prompts and,
    for conversational prompts, the assistant turn(s) as a list of message dicts
    (``[{"role": "assistant", "content": "..."}]``; tool calling adds ``tool`` turns; ``content``
    may be a list of ``{"type": "text", "text": ...}`` parts). The text is the assistant
    messages' text, newline-joined (TRL #4939, #6533: a grader given the list raised
    ``AttributeError: 'list' object has no attribute 'find'``).

    Raises:
        TypeError: any other shape.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)) and all(isinstance(m, dict) for m in completion):
        return "\n".join(_content_text(m.get("content")) for m in completion
                         if m.get("role", "assistant") == "assistant")
    raise TypeError(f"a completion must be text or a list of chat messages, got {type(completion).__name__}")


class GraderReward:
    """The GRPO reward: ``r = 1.0`` if :func:`rmxbench.evaluation.grading.grade` marks the completion
    correct for ``task`` (its extraction policy), else ``0.0`` (paper §5: r_i ∈ {0, 1}).

    Called the way TRL 1.16 calls a reward function: ``reward(prompts=, completions=,
    completion_ids=, answer=, trainer_state=, log_metric=, …) -> list[float]`` with one reward per
    completion; ``answer`` is the dataset column with each prompt's gold answer. Robust by
    construction: it accepts plain-text and conversational completions (:func:`completion_text`),
    cuts each at the prompt style's stop strings (:func:`rmxbench.evaluation.prompts.truncate_at_stops`,
    as evaluation's generation stops there), and an item whose grading raises (an empty or missing
    gold, an unreadable completion) scores 0, is logged (the first :data:`MAX_ERROR_EXAMPLES`) and
    counted, never failing the whole call. Each call reports the share of such items to TRL as the
    metric ``reward_error_frac`` (``grpo_log.json`` keeps it per step).

    Attributes:
        graded: completions scored so far (this process). errors: of them, how many raised.
        examples: the first errors (``index``, ``error``, ``gold``, ``completion``).
    """

    def __init__(self, task: str, prompt_style: str):
        self.task, self.prompt_style = task, prompt_style
        self.__name__ = f"grade_{task}"  # TRL's metric name: rewards/grade_<task>/mean
        self.graded = 0
        self.errors = 0
        self.examples: list[dict] = []

    def _one(self, completion: Any, gold: Any) -> float:
        from rmxbench.evaluation.prompts import truncate_at_stops
        from rmxbench.method.rollouts import grade_completion

        if gold is None:
            raise ValueError("no gold answer for this completion (the dataset's `answer` column)")
        text = truncate_at_stops(completion_text(completion), self.prompt_style)
        return float(grade_completion(text, str(gold), "stop", task=self.task)["reward"])

    def __call__(self, prompts: Any = None, completions: Any = (), answer: Any = None, log_metric: Any = None,
                 **_: Any) -> list[float]:
        completions = list(completions or [])
        golds = list(answer) if answer is not None else []
        rewards, errors = [], 0
        for i, c in enumerate(completions):
            try:
                rewards.append(self._one(c, golds[i] if i < len(golds) else None))
            except Exception as exc:  # one bad item scores 0; the call goes on
                rewards.append(0.0)
                errors += 1
                self.errors += 1
                if len(self.examples) < MAX_ERROR_EXAMPLES:
                    gold = golds[i] if i < len(golds) else None
                    self.examples.append({"index": i, "error": f"{type(exc).__name__}: {exc}", "gold": repr(gold)[:80],
                                          "completion": repr(c)[:160]})
                    log.warning("GRPO reward: completion %d could not be graded (%s: %s); scored 0", i,
                                type(exc).__name__, exc)
        self.graded += len(completions)
        if log_metric is not None and completions:
            log_metric("reward_error_frac", errors / len(completions))
        return rewards


def make_reward(task: str, prompt_style: str) -> GraderReward:
    """The GRPO reward function for ``task`` and ``prompt_style`` (:class:`GraderReward`)."""
    return GraderReward(task, prompt_style)


def checkpoint_missing(ckpt: str | Path) -> list[str]:
    """What TRL checkpoint ``ckpt`` lacks to resume exactly; ``[]`` = resumable (TRL #3247).

    transformers' ``Trainer`` resumes from whatever a checkpoint holds and silently skips the rest
    (``_load_optimizer_and_scheduler`` without ``optimizer.pt`` keeps a fresh optimiser,
    ``_load_rng_state`` without ``rng_state.pth`` keeps the current RNG), so the result would
    differ from an uninterrupted run. Needed: the weights (full model or PEFT adapter),
    ``optimizer.pt``, ``scheduler.pt``, ``rng_state*.pth`` and ``trainer_state.json``, each non-empty.
    """
    from peft.utils import SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME as ADAPTER_BIN
    from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME, TRAINER_STATE_NAME
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

    ckpt = Path(ckpt)

    def ok(p: Path) -> bool:
        return p.is_file() and p.stat().st_size > 0

    missing = []
    weights = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME,
               SAFETENSORS_WEIGHTS_NAME, ADAPTER_BIN)
    if not any(ok(ckpt / w) for w in weights):
        missing.append(f"weights ({SAFE_WEIGHTS_NAME} or {SAFETENSORS_WEIGHTS_NAME})")
    missing += [n for n in (OPTIMIZER_NAME, SCHEDULER_NAME) if not ok(ckpt / n)]
    if not any(ok(p) for p in ckpt.glob("rng_state*.pth")):
        missing.append("rng_state.pth")
    if not ok(ckpt / TRAINER_STATE_NAME):
        missing.append(TRAINER_STATE_NAME)
    return missing


def scan_checkpoints(work_dir: str | Path) -> tuple[Path | None, list[tuple[Path, list[str]]]]:
    """The newest resumable TRL checkpoint in ``work_dir`` (:func:`checkpoint_missing` is empty)
    and the newer, incomplete ones passed over (each with what it lacks), newest first."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return None, []
    found = sorted(((int(m.group(1)), p) for p in work_dir.iterdir()
                    if p.is_dir() and (m := _CKPT.match(p.name))), reverse=True)
    skipped = []
    for _, p in found:
        missing = checkpoint_missing(p)
        if not missing:
            return p, skipped
        skipped.append((p, missing))
    return None, skipped


def last_checkpoint(work_dir: str | Path, *, prune: bool = False) -> Path | None:
    """The newest complete TRL checkpoint in ``work_dir`` (``checkpoint-<step>/`` with everything
    :func:`checkpoint_missing` asks for), or None. With ``prune``, the incomplete newer ones (a kill
    while saving, a deleted optimiser file) are deleted, with a notice (only when no trainer is
    writing there)."""
    ckpt, skipped = scan_checkpoints(work_dir)
    if prune:
        for p, missing in skipped:
            log.warning("GRPO resume: %s is incomplete (missing %s): %s", p.name, ", ".join(missing),
                        f"resuming from {ckpt.name} instead" if ckpt is not None else "starting from step 0")
            shutil.rmtree(p, ignore_errors=True)
    return ckpt


def trl_prompts(tokenizer: Any, texts: list[str]) -> list[str]:
    """Prompt texts to hand TRL 1.16 so that its token ids equal :func:`rmxbench.backends.tokenization.prompt_ids`.

    ``GRPOTrainer._tokenize_prompts`` encodes a plain-text prompt with the tokenizer's special
    tokens on (``processing_class(text=prompts)``), so a tokenizer that adds BOS puts a second one
    before a chat template's own BOS *text* (issue 18 item 6). The contract is BOS exactly once:
    the leading BOS text is removed where the tokenizer adds BOS itself. Every prompt is then
    checked against the contract with TRL's own call.

    Returns:
        one text per prompt (unchanged for tokenizers that add no BOS).

    Raises:
        UserError: the tokenizer adds other special tokens, so TRL's ids would still differ.
    """
    from rmxbench.backends.tokenization import adds_bos, batch_prompt_ids
    from rmxbench.errors import UserError

    bos_text = getattr(tokenizer, "bos_token", None) if adds_bos(tokenizer) else None
    out = [t[len(bos_text):] if bos_text and t.startswith(bos_text) else t for t in texts]
    want = batch_prompt_ids(tokenizer, texts)
    got = tokenizer(text=out)["input_ids"]  # what GRPOTrainer._tokenize_prompts does with text prompts
    for i, (w, g) in enumerate(zip(want, got)):
        if list(g) != w:
            raise UserError(f"TRL would feed GRPO prompt {i} as token ids {list(g)[:8]}…, not the "
                            f"evaluation's {w[:8]}… (the tokenizer adds special tokens other than one BOS)",
                            hint="use a tokenizer whose special tokens are at most a leading BOS")
    return out


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
        train_cpu_seconds: process CPU seconds of ``trainer.train`` in this process.
    """

    out_dir: Path
    kind: str
    steps: int
    resumed_from_step: int
    train_seconds: float
    seconds_before_resume: float
    log: dict
    #: process CPU seconds of ``trainer.train`` in this process (the cost estimate's work part, issue 20)
    train_cpu_seconds: float = 0.0


def _progress_callback(label: str):
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        """A :func:`rmxbench.progress.task` bar over optimiser steps, showing the running reward."""

        bar = None

        def on_train_begin(self, args, state, control, **kw):
            from rmxbench import progress

            self.bar = progress.task(f"{label}: GRPO", state.max_steps)
            self.bar.update(completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.bar is not None and logs and "reward" in logs:
                self.bar.update(completed=state.global_step,
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


def make_trainer(recipe: Any, model: Any, tokenizer: Any, pool_rows: list[dict], *, prompt_style: str, task: str,
                 work_dir: str | Path, use_vllm: bool = False, vllm_kwargs: dict | None = None,
                 label: str = "grpo") -> tuple[Any, GraderReward]:
    """The ``trl.GRPOTrainer`` :func:`train_grpo` runs, and its reward (arguments as there).

    The dataset's ``prompt`` column is :func:`trl_prompts` of the style's prompt text (TRL's ids =
    the tokenization contract's), with ``answer`` (gold) and ``id`` columns.

    Raises:
        ValueError: empty pool. UserError: see :func:`trl_prompts`.
    """
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from rmxbench.evaluation.prompts import build_prompt

    if not pool_rows:
        raise ValueError("GRPO needs at least one training problem")
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
    prompts = trl_prompts(tokenizer, [build_prompt(r["problem"], prompt_style, tokenizer) for r in pool_rows])
    dataset = Dataset.from_list([{"prompt": p, "answer": str(r["answer"]), "id": str(r["id"])}
                                 for p, r in zip(prompts, pool_rows)])
    peft_config = None
    if recipe.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(r=recipe.lora.rank, lora_alpha=recipe.lora.alpha, lora_dropout=recipe.lora.dropout,
                                 target_modules=list(recipe.lora.target_modules), bias="none", task_type="CAUSAL_LM")
    if not isinstance(model, str):
        _unmark_dequantized_gguf(model)
    reward = make_reward(task, prompt_style)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config, callbacks=[_progress_callback(label)])
    trainer.remove_callback(PrinterCallback)  # per-step dicts on stdout; the progress bar shows the reward
    return trainer, reward


def train_grpo(recipe: Any, model: Any, tokenizer: Any, pool_rows: list[dict], *, prompt_style: str, task: str,
               out_dir: str | Path, work_dir: str | Path, use_vllm: bool = False, vllm_kwargs: dict | None = None,
               label: str = "grpo") -> GRPOResult:
    """Train ``model`` with GRPO on ``pool_rows`` and write the artifact into ``out_dir``.

    Args:
        recipe: :class:`~rmxbench.spec.grpo_recipe.GRPORecipe`.
        model: a loaded ``transformers`` causal LM (modified in place; full fine-tuning trains it,
            LoRA wraps it with peft), or a model id/path string TRL loads itself.
        tokenizer: the model's tokenizer (prompts of chat styles are rendered through it).
        pool_rows: training problems (``id``, ``problem``, ``answer``), from :mod:`rmxbench.method.pool`.
        prompt_style: the row's prompt style (:func:`rmxbench.evaluation.prompts.build_prompt`).
        task: grading task of the pool (:data:`rmxbench.evaluation.grading.POLICIES` key), e.g. ``embedded_train``.
        out_dir: existing empty folder for the artifact (a store temp dir).
        work_dir: folder for TRL's checkpoints; reused to resume after a kill (from the newest
            complete checkpoint, :func:`last_checkpoint`; incomplete newer ones are skipped with a notice).
        use_vllm: generate with TRL's vLLM colocate mode instead of transformers ``generate``.
        vllm_kwargs: extra ``GRPOConfig`` ``vllm_*`` arguments (e.g. ``vllm_gpu_memory_utilization``).
        label: progress-bar and figure label (the row id).

    Returns:
        :class:`GRPOResult`; ``log["health"]`` is :func:`rmxbench.rl.grpo_health.grpo_health` of the run
        (a ``warn`` verdict is also logged).

    Raises:
        ValueError: empty pool. UserError: see :func:`trl_prompts`.
    """
    from rmxbench.rl.grpo_health import grpo_health, health_note

    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    trainer, reward = make_trainer(recipe, model, tokenizer, pool_rows, prompt_style=prompt_style, task=task,
                                   work_dir=work_dir, use_vllm=use_vllm, vllm_kwargs=vllm_kwargs, label=label)
    skipped = [{"checkpoint": p.name, "missing": m} for p, m in scan_checkpoints(work_dir)[1]]
    ckpt = last_checkpoint(work_dir, prune=True)
    resumed = 0
    prior_seconds = 0.0
    if ckpt is not None:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        resumed = int(state.get("global_step", 0))
        prior_seconds = sum(float(h.get("step_time", 0.0)) for h in state.get("log_history", []))
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt is not None else None)
    seconds = time.perf_counter() - t0 + prior_seconds
    cpu_seconds = time.process_time() - c0

    history = []
    for h in trainer.state.log_history:
        if "reward" in h:
            history.append({"step": int(h["step"]), **{v: h.get(k) for k, v in _LOG_KEYS.items() if k in h}})
    kind = "lora" if recipe.lora is not None else "full"
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    per_step = recipe.prompts_per_step * recipe.num_generations
    health = grpo_health(history, max_completion_length=recipe.max_completion_length, completions_per_step=per_step)
    if health["verdict"] != "ok":
        log.warning("%s: %s", label, health_note(health))
    log_data = {"unit": {"reward": "mean 0/1 grader reward per completion", "kl": "nats", "entropy": "nats",
                         "step_time": "seconds", "completion_length": "tokens", "grad_norm": "L2 norm before clipping",
                         "clipped_ratio": "share of completions that hit max_completion_length",
                         "frac_reward_zero_std": "share of groups whose G rewards are all equal",
                         "reward_error_frac": "share of completions whose grading raised (scored 0)"},
                "steps": int(trainer.state.global_step), "resumed_from_step": resumed, "train_seconds": seconds,
                "skipped_checkpoints": skipped, "prompts_per_step": recipe.prompts_per_step,
                "num_generations": recipe.num_generations, "task": task, "prompt_style": prompt_style,
                "n_pool": len(pool_rows), "trl_args": {k: v for k, v in recipe.trl_kwargs().items()},
                "use_vllm": use_vllm, "health": health,
                "reward_errors": {"count_this_process": reward.errors, "graded_this_process": reward.graded,
                                  "examples": reward.examples},
                "history": history}
    atomic_write_json(out_dir / LOG_FILE, log_data)
    plot_reward_curve(history, out_dir / CURVE_FILE, f"{label}: GRPO reward vs step, sampled at T={recipe.temperature:g} "
                      f"({task}, {recipe.prompts_per_step} prompts × {recipe.num_generations} per step)", per_step)
    atomic_write_json(out_dir / METADATA_FILE, {
        "kind": kind, "recipe": recipe.model_dump(mode="json"), "steps": log_data["steps"],
        "resumed_from_step": resumed, "train_seconds": seconds, "versions": library_versions(),
        "final_reward": history[-1]["reward"] if history else None, "health": health})
    return GRPOResult(out_dir, kind, log_data["steps"], resumed, seconds, prior_seconds, log_data, cpu_seconds)
