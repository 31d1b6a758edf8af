"""GRPO recipe: every hyperparameter of the RL baselines rmxbench trains itself, each mapped to
TRL's ``GRPOConfig`` and cited.

Paired with ``rmxbench/rl/grpo_trainer.py`` (TRL-style config / trainer pair; the config lives in the spec
package because a spec file declares it, like the ReasonMaxxer recipe in ``rmxbench/spec/recipe.py``).
Sources:

- **GRPO** — Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
  Language Models" (arXiv 2402.03300), §4.1 (Eq. 3: clipped surrogate with ε, KL penalty β
  against a reference policy, group-normalised advantages over G samples per question; μ
  policy updates per sample batch).
- **SimpleRL-Zoo** — Zeng et al. 2025, hkust-nlp/simpleRL-reason (the GRPO baselines of the
  paper's Table 3). README, "For models between 0.5B and 14B": ``--rollout_n 8
  --kl_loss_coef 0.0001 --entropy_coeffient 0.001 --max_response_length 8192
  --train_batch_size 1024``; ``train_grpo_math_tune_ray.sh`` defaults: ``LEARNING_RATE=5e-7``,
  ``PPO_MINI_BATCH_SIZE=256``, ``CLIP_RATIO=0.2``, ``TEMPERATURE=1.0``, ``TOTAL_EPOCHS=20``,
  ``KL_LOSS_TYPE=low_var_kl`` (the k3 estimator TRL uses).
- **TRL 1.16** ``trl.GRPOConfig`` — the field names on the right of each mapping below. Where a
  default is neither in the paper nor SimpleRL-Zoo it is marked "rmxbench default" with why.

Mapping (recipe field → ``GRPOConfig`` argument):

==============================  ====================================================
``num_generations``             ``num_generations`` (G)
``per_device_train_batch_size`` ``per_device_train_batch_size`` (completions, not prompts)
``gradient_accumulation_steps`` ``gradient_accumulation_steps``
``steps_per_generation``        ``steps_per_generation``
``beta``                        ``beta`` (KL β; 0 loads no reference model)
``epsilon`` / ``epsilon_high``  ``epsilon`` / ``epsilon_high``
``loss_type``                   ``loss_type``
``scale_rewards``               ``scale_rewards``
``num_iterations``              ``num_iterations`` (μ)
``entropy_coef``                ``entropy_coef``
``learning_rate`` …             ``learning_rate``, ``lr_scheduler_type``, ``warmup_steps`` (ratio),
                                ``weight_decay``, ``max_grad_norm``
``max_completion_length``       ``max_completion_length`` (TRL 1.16 has no ``max_prompt_length``)
``temperature``/``top_p``/``top_k`` same names
``max_steps`` / ``epochs``      ``max_steps`` / ``num_train_epochs``
``save_steps``                  ``save_steps`` (checkpoints for resume after a kill)
``seed``                        ``seed``
``lora``                        ``peft_config=peft.LoraConfig(r, lora_alpha, target_modules, …)``
==============================  ====================================================

Always set by the trainer, not the recipe: ``bf16=False`` and ``gradient_checkpointing=False``
on CPU (TRL 1.16 defaults both to True), ``use_vllm`` from the spec's ``protocol.backend``.

Validation (:meth:`GRPORecipe._trl_rules`): TRL 1.16's own rules are spec errors that name the
valid values (``num_generations`` divides the generation batch, ``GRPOConfig.__post_init__``; no
LoRA on ``lm_head``, ``GRPOTrainer.__init__``), and so is the alignment TRL leaves unchecked: a
generation round must start on an optimiser-step boundary (TRL PR #3493).

This module must not import torch: specs are validated without touching any model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rmxbench.spec.recipe import LoraRecipe, PoolConfig, StrictModel

#: The RL algorithms a ``train:`` row may name (TRL trainers rmxbench drives).
Algorithm = Literal["grpo"]
#: TRL 1.16 loss aggregations that need no extra parameters (``GRPOConfig.loss_type``).
LossType = Literal["grpo", "dr_grpo", "dapo", "bnpo"]


def _alternatives(values: list[int], most: int = 10) -> str:
    """``[2, 4, 8]`` -> ``"2, 4 or 8"`` (at most ``most`` values, then an ellipsis)."""
    shown = [str(v) for v in values[:most]]
    if len(values) > most:
        return ", ".join(shown) + ", …"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class GRPORecipe(StrictModel):
    """A named, reusable GRPO recipe (DeepSeekMath §4.1; defaults: SimpleRL-Zoo for 0.5B-14B models).

    Effective batch per optimiser step = ``per_device_train_batch_size ×
    gradient_accumulation_steps`` completions = that / ``num_generations`` prompts
    (:attr:`prompts_per_step`). ``specs/tiny.yaml`` overrides the defaults for CPU.
    """

    description: str = Field("", description="Free text shown on the board's provenance.")
    pool: PoolConfig = Field(
        default_factory=lambda: PoolConfig(source="math_train", size=4096, balance_levels=True),
        description="Training prompts: the same pool selection and contamination guard as ReasonMaxxer "
        "(rmxbench.pool). rmxbench default: 4,096 MATH-train problems, level-balanced (SimpleRL-Zoo "
        "trains on its 8,523-problem MATH level 3-5 set `simplelr_math_35`, which rmxbench does not ship).",
    )
    num_generations: int = Field(
        8, ge=2, description="Completions G sampled per prompt (GRPOConfig.num_generations; SimpleRL-Zoo "
        "--rollout_n 8; DeepSeekMath §4.1 uses 64). At least 2: the advantage is relative to the group."
    )
    per_device_train_batch_size: int = Field(
        64, ge=1, description="Completions per micro-batch (GRPOConfig.per_device_train_batch_size). "
        "rmxbench default 64 = 8 prompts × G=8, a memory knob."
    )
    gradient_accumulation_steps: int = Field(
        32, ge=1, description="Micro-batches per optimiser step (GRPOConfig.gradient_accumulation_steps). "
        "Default 32: 64 × 32 = 2,048 completions = 256 prompts per update, SimpleRL-Zoo's "
        "PPO_MINI_BATCH_SIZE=256."
    )
    steps_per_generation: int | None = Field(
        None, ge=1, description="Micro-batches served from one generation round "
        "(GRPOConfig.steps_per_generation); null = gradient_accumulation_steps (one round per update, "
        "TRL default). SimpleRL-Zoo generates 1,024 prompts and takes 4 updates of 256 from them: "
        "set 4 × gradient_accumulation_steps to match."
    )
    beta: float = Field(
        1e-4, ge=0.0, description="KL coefficient β against the base model (GRPOConfig.beta; DeepSeekMath "
        "Eq. 3; SimpleRL-Zoo --kl_loss_coef 1e-4 for 0.5B-14B models, low_var_kl = TRL's k3 estimator). "
        "0 drops the reference model (faster, less memory)."
    )
    epsilon: float = Field(0.2, gt=0.0, description="Clip ε of the surrogate ratio (GRPOConfig.epsilon; "
                           "DeepSeekMath Eq. 3; SimpleRL-Zoo CLIP_RATIO=0.2).")
    epsilon_high: float | None = Field(
        None, gt=0.0, description="Upper clip bound (GRPOConfig.epsilon_high); null = ε (symmetric, "
        "DeepSeekMath/SimpleRL-Zoo). DAPO uses 0.28."
    )
    loss_type: LossType = Field(
        "dapo", description="Token-loss aggregation (GRPOConfig.loss_type). `grpo` = DeepSeekMath Eq. 3 "
        "(mean per sequence, then over the group); `dapo` (TRL 1.16 default) = mean over all completion "
        "tokens of the accumulated batch, the token-mean SimpleRL-Zoo's verl trainer uses; `dr_grpo`, `bnpo`."
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Advantage normalisation (GRPOConfig.scale_rewards): `group` = (r - mean)/std "
        "over the G completions of a prompt (DeepSeekMath §4.1.2, SimpleRL-Zoo); `none` = Dr. GRPO."
    )
    num_iterations: int = Field(
        1, ge=1, description="Policy updates μ per generated batch (GRPOConfig.num_iterations; "
        "DeepSeekMath §4.1 / SimpleRL-Zoo ppo_epochs: 1)."
    )
    entropy_coef: float = Field(
        1e-3, ge=0.0, description="Entropy bonus weight (GRPOConfig.entropy_coef; SimpleRL-Zoo "
        "--entropy_coeffient 0.001). 0 = plain GRPO (DeepSeekMath)."
    )
    learning_rate: float = Field(5e-7, gt=0.0, description="AdamW learning rate (SimpleRL-Zoo "
                                 "LEARNING_RATE=5e-7 for full fine-tuning).")
    lr_scheduler_type: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="Schedule after warmup (GRPOConfig.lr_scheduler_type; SimpleRL-Zoo/verl: "
        "constant). `constant` with warmup uses TRL's `constant_with_warmup`."
    )
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of steps in linear warmup "
                                "(GRPOConfig.warmup_steps as a ratio < 1, transformers 5; SimpleRL-Zoo/verl default 0).")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay (GRPOConfig.weight_decay; "
                                "rmxbench default 0 = TRL's; not stated by SimpleRL-Zoo's script).")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient-norm clip (GRPOConfig.max_grad_norm; "
                                 "verl and TRL default 1.0).")
    max_completion_length: int = Field(
        8192, ge=1, description="Completion cap in tokens during training (GRPOConfig.max_completion_length; "
        "SimpleRL-Zoo --max_response_length 8192). TRL 1.16 has no prompt-length cap."
    )
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature of the rollouts "
                               "(GRPOConfig.temperature; SimpleRL-Zoo TEMPERATURE=1.0).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus top-p (GRPOConfig.top_p; SimpleRL-Zoo 1.0).")
    top_k: int = Field(0, ge=0, description="Top-k, 0 = off (GRPOConfig.top_k; TRL default).")
    max_steps: int | None = Field(
        None, ge=1, description="Optimiser steps (GRPOConfig.max_steps); null = train `epochs` passes "
        "over the pool instead."
    )
    epochs: float = Field(20.0, gt=0.0, description="Passes over the pool when max_steps is null "
                          "(GRPOConfig.num_train_epochs; SimpleRL-Zoo TOTAL_EPOCHS=20).")
    save_steps: int = Field(
        20, ge=1, description="Checkpoint every N optimiser steps (GRPOConfig.save_steps; SimpleRL-Zoo "
        "--save_freq 20 in its script). A killed run resumes from the last checkpoint."
    )
    lora: LoraRecipe | None = Field(
        None, description="LoRA adapter instead of full fine-tuning (peft.LoraConfig via GRPOTrainer's "
        "peft_config). null = full fine-tuning (SimpleRL-Zoo)."
    )
    seed: int = Field(0, ge=0, lt=2**32, description="Seed for pool sampling, data order, sampling and init "
                      "(GRPOConfig.seed).")

    @property
    def prompts_per_step(self) -> int:
        """Distinct prompts per optimiser step (completions per step / G)."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps // self.num_generations

    @property
    def generation_batch(self) -> int:
        """Completions sampled per generation round on one process: ``per_device_train_batch_size ×
        (steps_per_generation or gradient_accumulation_steps)`` (TRL 1.16 ``GRPOConfig.generation_batch_size``)."""
        return self.per_device_train_batch_size * (self.steps_per_generation or self.gradient_accumulation_steps)

    @model_validator(mode="after")
    def _trl_rules(self) -> "GRPORecipe":
        """TRL 1.16's own rules (``GRPOConfig.__post_init__``, ``GRPOTrainer.__init__``) and the
        round/step alignment it does not check, each as a spec error naming the valid values.

        ``_refine`` in :mod:`rmxbench.spec.check` points each message at the LAST back-quoted
        field of it that the YAML sets, so every message ends with the field to change.
        """
        gas, spg, mu = self.gradient_accumulation_steps, self.steps_per_generation, self.num_iterations
        per = "`steps_per_generation`" if spg is not None else "`gradient_accumulation_steps`"
        gen = self.generation_batch
        if gen % self.num_generations:  # GRPOConfig.__post_init__: generation_batch_size % num_generations
            ok = [g for g in range(2, gen + 1) if gen % g == 0]
            raise ValueError(
                f"num_generations={self.num_generations} must divide the generation batch {gen} "
                f"(completions per round = `per_device_train_batch_size`={self.per_device_train_batch_size} × "
                f"{per}={spg or gas}; TRL's GRPOConfig rejects it: every prompt needs its whole group in one "
                "round): " + (f"use {_alternatives(ok)} for `num_generations`" if ok else
                                     "the batch holds fewer than 2 completions; raise `per_device_train_batch_size`"))
        if spg is not None and spg != gas:
            # GRPOTrainer._prepare_inputs regenerates every spg × μ micro-batches and the optimiser
            # steps every gas: rounds must start on optimiser-step boundaries (TRL PR #3493), and with
            # μ > 1 each pass over a round must span whole steps (else the μ passes share one update).
            aligned = spg % gas == 0 if mu > 1 else (gas % spg == 0 or spg % gas == 0)
            if not aligned:
                multiples = f"{2 * gas}, {3 * gas}, …"
                if mu > 1:
                    raise ValueError(
                        f"num_iterations={mu} reuses each generation round, but steps_per_generation={spg} is not a "
                        f"multiple of gradient_accumulation_steps={gas}: the {mu} passes over a round would fall inside "
                        f"the same optimiser step (the same completions counted {mu}× in one update) or straddle "
                        f"steps: use a multiple of {gas} ({gas}, {multiples}) for `steps_per_generation`, or leave it null")
                divisors = [d for d in range(1, gas + 1) if gas % d == 0]
                raise ValueError(
                    f"steps_per_generation={spg} does not line up with gradient_accumulation_steps={gas}: a "
                    f"generation round of {spg} micro-batches ends inside an optimiser step, so the next step "
                    "trains on completions sampled before the previous update (off-policy; TRL 1.16 runs it "
                    f"silently, TRL PR #3493): use a divisor of {gas} ({_alternatives(divisors)}) or a multiple "
                    f"({multiples}) for `steps_per_generation`, or leave it null")
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ValueError(f"epsilon_high={self.epsilon_high} must be >= epsilon={self.epsilon}: "
                             f"use null or a value >= {self.epsilon} for `epsilon_high`")
        if self.lora is not None and "lm_head" in self.lora.target_modules:  # GRPOTrainer.__init__ raises
            raise ValueError(
                "TRL's GRPOTrainer rejects a LoRA adapter on lm_head (it computes log-probabilities from "
                "lm_head.weight directly, so the adapter would never train): remove lm_head from "
                "`lora.target_modules`")
        return self

    def trl_kwargs(self) -> dict:
        """The ``trl.GRPOConfig`` keyword arguments this recipe sets (see the module's mapping table).

        Excludes run-specific arguments (``output_dir``, ``use_vllm``, precision, logging), which
        :func:`rmxbench.rl.grpo_trainer.train_grpo` adds.
        """
        sched = self.lr_scheduler_type
        if sched == "constant" and self.warmup_ratio > 0:
            sched = "constant_with_warmup"
        kw = {
            "num_generations": self.num_generations,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "steps_per_generation": self.steps_per_generation,
            "beta": self.beta,
            "epsilon": self.epsilon,
            "epsilon_high": self.epsilon_high,
            "loss_type": self.loss_type,
            "scale_rewards": self.scale_rewards,
            "num_iterations": self.num_iterations,
            "entropy_coef": self.entropy_coef,
            "learning_rate": self.learning_rate,
            "lr_scheduler_type": sched,
            "warmup_steps": self.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the steps
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "max_completion_length": self.max_completion_length,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_steps": self.max_steps if self.max_steps is not None else -1,
            "num_train_epochs": self.epochs,
            "save_steps": self.save_steps,
            "seed": self.seed,
        }
        return kw


class TrainSpec(StrictModel):
    """``train:`` block of an RL-baseline row: rmxbench trains the baseline itself."""

    algorithm: Algorithm = Field(description="RL algorithm; `grpo` = TRL's GRPOTrainer (DeepSeekMath §4.1).")
    recipe: str = Field(description="Name of a recipe in the spec's top-level `rl_recipes` mapping.")
