"""ReasonMaxxer recipe: every hyperparameter of the method, with the paper section it comes from.

Paired with ``rmxbench/method/trainer.py`` (TRL-style ``<algo>_config.py`` /
``<algo>_trainer.py``). Paper: "It's Sparse Policy Selection, Not Capability Learning"
(arXiv 2605.06241), §5 (method), §6.1 (training configuration), Appendix B (implementation
details), §6.3 (ablations). Defaults are the paper's; where the paper's text does not state a
value (its Table 6 is an image that did not survive extraction) the default is marked
"rmxbench default" and says why.

This module must not import torch: specs are validated without touching any model.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from rmxbench.spec.benchmarks import PoolSource
from rmxbench.spec.sampling import Sampling

Objective = Literal["contrastive", "positive_only", "random_positions"]

#: Error type of a boolean given where a number is expected (``rmxbench.spec.check`` words it).
BOOL_FOR_NUMBER = "bool_for_number"


def _arms(tp: Any) -> list[Any]:
    """The alternatives of an annotation (``Optional``/``Union``/``Annotated`` unwrapped)."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for arm in typing.get_args(tp) for a in _arms(arm)]
    return [tp]


def bool_in_number_slot(tp: Any, value: Any) -> tuple | None:
    """Where ``value`` holds a boolean that annotation ``tp`` expects as a number, or None.

    Returns the path inside the value: ``()`` for the value itself, ``(i,)`` for a list item,
    ``(key,)`` for a mapping value (nested the same way). A slot whose annotation also admits
    ``bool`` (or anything) is not a number slot.
    """
    arms = _arms(tp)
    if isinstance(value, bool):
        numeric = any(a in (int, float) for a in arms)
        return () if numeric and not any(a in (bool, Any, object) for a in arms) else None
    for arm in arms:
        origin, args = typing.get_origin(arm), typing.get_args(arm)
        if isinstance(value, list) and origin in (list, tuple, set, frozenset) and args:
            for i, item in enumerate(value):
                if (where := bool_in_number_slot(args[0], item)) is not None:
                    return (i, *where)
            return None
        if isinstance(value, dict) and origin is dict and len(args) == 2:
            for k, item in value.items():
                if (where := bool_in_number_slot(args[1], item)) is not None:
                    return (k, *where)
            return None
    return None


class StrictModel(BaseModel):
    """Base of every spec-schema model (recipes here, the rest in :mod:`rmxbench.spec`).

    Unknown keys are errors (``extra="forbid"``), values are immutable, no float field
    anywhere in the schema accepts ``inf``/``-inf``/``nan`` (``allow_inf_nan=False``: YAML's
    ``.inf``/``.nan`` would otherwise pass every ``ge``/``le`` bound check or poison the loss),
    and no int/float field (scalar, list item or mapping value) accepts a boolean: YAML reads
    ``yes``/``no``/``on``/``off``/``true``/``false`` as booleans, and pydantic would otherwise turn
    ``max_steps: yes`` into ``max_steps: 1`` (error type :data:`BOOL_FOR_NUMBER`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, (bool, list, dict)) and info.field_name in cls.model_fields:
            where = bool_in_number_slot(cls.model_fields[info.field_name].annotation, value)
            if where is not None:
                raise PydanticCustomError(
                    BOOL_FOR_NUMBER, "must be a number, not a boolean (YAML reads yes/no/on/off/true/false as "
                    "booleans)", {"where": list(where)})
        return value


_Strict = StrictModel


class PoolConfig(_Strict):
    """Training-pool selection (paper §6.1: "a pool of 150 math problems balanced across
    difficulty levels")."""

    source: PoolSource = Field(
        "math_train",
        description="Training pool: `math_train` (Hendrycks MATH train, 7,500 problems; paper "
        "§6.1), `gsm8k_train` (GSM8K train, 7,473) or `embedded_train` (the embedded synthetic "
        "benchmark's pool split). Read from the hub by default or from the data dir.",
    )
    size: int = Field(
        150, ge=1, description="Number of pool problems N sampled before rollouts (paper §6.1: 150)."
    )
    balance_levels: bool = Field(
        True,
        description="Sample equally across MATH difficulty levels 1-5 (paper §6.1: 'balanced "
        "across difficulty levels'). Ignored for pools without levels.",
    )
    contamination: Literal["drop", "refuse", "off"] = Field(
        "drop",
        description="What to do with pool problems that also appear in an evaluation set "
        "(normalised text or 13-gram overlap): drop them and report the count, refuse to run, "
        "or skip the check. rmxbench default.",
    )


class RolloutConfig(_Strict):
    """Base-model rollouts used as offline training data (paper §5.1, §6.1)."""

    k: int = Field(20, ge=1, description="Rollouts K sampled per pool problem (paper §6.1: 20).")
    temperature: float = Field(
        1.0,
        ge=0.0,
        description="Sampling temperature for rollouts (paper §5.1: 'nonzero temperature'; "
        "value not stated, rmxbench default 1.0 = the base policy itself).",
    )
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus top-p for rollouts (rmxbench default 1.0).")
    top_k: int = Field(0, ge=0, description="Top-k for rollouts; 0 disables (rmxbench default).")
    max_new_tokens: int = Field(
        1024, ge=1, description="Completion length cap in tokens for rollouts (rmxbench default)."
    )
    batch_size: int = Field(16, ge=1, description="Prompts per generation batch (HF backend).")


class SelectionConfig(_Strict):
    """Mixed-success filter (paper §5.1): keep problems whose pass rate lies in the window."""

    min_pass_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Exclusive lower bound of the pass-rate window (paper §5.1: 0)."
    )
    max_pass_rate: float = Field(
        1.0, ge=0.0, le=1.0, description="Exclusive upper bound of the pass-rate window (paper §5.1: 1)."
    )
    max_problems: int = Field(
        50, ge=1, description="Mixed-success problems kept for training (paper §6.1: 50 -> 1,000 sequences)."
    )
    validation_problems: int = Field(
        50,
        ge=1,
        description="Size of the fixed validation split used for the τ sweep and the final "
        "checkpoint pick (paper §6.1: 50). Disjoint from the training problems.",
    )

    @model_validator(mode="after")
    def _window(self) -> "SelectionConfig":
        if self.min_pass_rate >= self.max_pass_rate:
            raise ValueError(
                f"pass-rate window is empty: min_pass_rate={self.min_pass_rate} must be < "
                f"max_pass_rate={self.max_pass_rate} (both in [0, 1])"
            )
        return self


class LoraRecipe(_Strict):
    """LoRA adapter (paper §5.3 and §6.1: rank-32 adapter on all attention projections)."""

    rank: int = Field(32, ge=1, description="LoRA rank r (paper §6.1: 32).")
    alpha: int = Field(64, ge=1, description="LoRA alpha (rmxbench default 2·r; not stated in the paper text).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout (rmxbench default 0).")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="Modules that get adapters (paper §4/§6.1: W_Q, W_K, W_V, W_O).",
    )


class OptimConfig(_Strict):
    """Optimiser and schedule (paper Appendix B)."""

    learning_rate: float = Field(
        1e-4,
        gt=0.0,
        description="Peak AdamW learning rate (value in the paper's Table 6 is not in its text; "
        "rmxbench default 1e-4, the paper's KL-LoRA rate, Appendix B).",
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay (rmxbench default 0).")
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0, description="AdamW beta1 (App. B: default 0.9).")
    adam_beta2: float = Field(0.999, ge=0.0, lt=1.0, description="AdamW beta2 (App. B: default 0.999).")
    adam_epsilon: float = Field(1e-8, gt=0.0, description="AdamW epsilon (App. B: 1e-8).")
    warmup_ratio: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Fraction of optimiser steps spent in linear warmup, then linear decay to "
        "zero (App. B; ratio not in the text, rmxbench default 0.1 as in the KL-LoRA setup).",
    )
    epochs: float = Field(1.0, gt=0.0, description="Passes over the training sequences (App. B: 1).")
    batch_size: int = Field(1, ge=1, description="Sequences per micro-batch (App. B: 1).")
    gradient_accumulation_steps: int = Field(8, ge=1, description="Gradient-accumulation steps (App. B: 8).")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient-norm clip (rmxbench default 1.0).")
    max_seq_len: int = Field(
        2048, ge=8, description="Prompt+completion tokens kept per training sequence ('truncated sequence', App. B)."
    )


class ReasonMaxxerRecipe(_Strict):
    """A named, reusable ReasonMaxxer recipe (paper §5, §6.1, Appendix B).

    Every default equals the paper's setting; `specs/tiny.yaml` overrides them for CPU.
    """

    description: str = Field("", description="Free text shown on the board's provenance.")
    objective: Objective = Field(
        "contrastive",
        description="`contrastive` (paper Eq. 6, both signs of A), `positive_only` (§6.3 "
        "ablation: only A > 0 rollouts), or `random_positions` (control: the same number of "
        "decision tokens per sequence at random completion positions).",
    )
    pool: PoolConfig = Field(default_factory=PoolConfig)
    rollouts: RolloutConfig = Field(default_factory=RolloutConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    taus: list[float] = Field(
        default_factory=lambda: [1.2, 1.4, 1.6, 1.8],
        min_length=1,
        description="Entropy thresholds τ in nats swept, one adapter each (App. D: {1.2, 1.4, "
        "1.6, 1.8}). Decision points are completion tokens with H_t > τ (§5.2).",
    )
    advantage_clip: float = Field(
        2.5, gt=0.0, description="Per-rollout advantages clipped to [-c, c] (App. B: 2.5)."
    )
    advantage_eps: float = Field(
        1e-6, gt=0.0, description="ε in A_i = (r_i - mean r) / (std r + ε) (Eq. 5; rmxbench default 1e-6)."
    )
    anchor_weight: float = Field(
        0.2, ge=0.0, description="λ in L = L_dec + λ·L_anchor (App. B: 0.2)."
    )
    negative_floor: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="Collapse guard (rmxbench, not in the paper): drop a negative-advantage "
        "decision term once p_θ(x_t) falls below this probability. null = off (faithful to the "
        "paper).",
    )
    lora: LoraRecipe = Field(default_factory=LoraRecipe)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    validation_samples: int = Field(
        1, ge=1, description="Samples per validation problem when scoring each τ (1 = greedy pass@1)."
    )
    validation_temperature: float = Field(
        0.0, ge=0.0, description="Decoding temperature on the validation split (0 = greedy)."
    )
    seed: int = Field(0, ge=0, lt=2**32, description="Seed for pool sampling, rollouts, LoRA init and data order.")

    def rollout_sampling(self) -> Sampling:
        """The rollouts' :class:`~rmxbench.spec.sampling.Sampling` (paper §5.1: K samples per pool
        problem at nonzero temperature), seeded with the recipe's seed. Stop strings are the
        prompt style's (added by the stage)."""
        r = self.rollouts
        return Sampling.of(n=r.k, temperature=r.temperature, top_p=r.top_p, top_k=r.top_k,
                           max_new_tokens=r.max_new_tokens, seed=self.seed)

    def validation_sampling(self) -> Sampling:
        """The validation split's :class:`~rmxbench.spec.sampling.Sampling` (τ selection, §6.1):
        ``validation_samples`` per problem at ``validation_temperature`` (0 = greedy; otherwise the
        rollouts' top-p/top-k), the rollouts' token cap, seed ``seed + 1``."""
        r = self.rollouts
        return Sampling.of(n=self.validation_samples, temperature=self.validation_temperature, top_p=r.top_p,
                           top_k=r.top_k, max_new_tokens=r.max_new_tokens, seed=self.seed + 1)

    @field_validator("taus")
    @classmethod
    def _taus(cls, v: list[float]) -> list[float]:
        bad = [t for t in v if t < 0]
        if bad:
            raise ValueError(f"entropy thresholds must be >= 0 nats, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError(f"τ list has duplicates: {v}")
        return v
