"""Settings of the paper's four analyses, each field with the paper section it comes from.

Paper: "It's Sparse Policy Selection, Not Capability Learning" (arXiv 2605.06241):

- :class:`RerankingConfig` — §3.1, Table 2, Fig. 1 (token-level divergence, Eq. 3).
- :class:`InterventionConfig` — §3.2-3.3, Fig. 2 (oracle / random / entropy-gated substitution).
- :class:`DistillationConfig` — §4, Appendix A (Table 4) and Appendix B "KL-LoRA Distillation".
- :class:`TauCurveConfig` — §6.3, Fig. 4 (sensitivity to τ, positive-only ablation).

Defaults are the paper's settings; a value the paper's text does not state is marked
"rmxbench default" with the reason. Like :mod:`rmxbench.spec.recipe`, this module must
not import torch: specs are validated without touching a model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rmxbench.spec.benchmarks import PoolSource
from rmxbench.spec.recipe import StrictModel as _Strict  # unknown keys, inf and nan are errors


class _Decode(_Strict):
    """Fields every analysis shares (greedy decoding of the test problems)."""

    max_new_tokens: int | None = Field(
        None, ge=1,
        description="Completion length cap in tokens; null = the spec protocol's `max_new_tokens` "
        "(paper §3: deterministic decoding, T = 0, with the evaluation protocol).")
    batch_size: int = Field(16, ge=1, description="Prompts per batch (rmxbench default; memory only).")


class RerankingConfig(_Decode):
    """Token-level divergence of the other model from the base (paper §3.1, Eq. 3, Table 2).

    The other model decodes greedily (T = 0, §3); the base is teacher-forced on those tokens. A
    completion token is *divergent* when the base's argmax differs from the other model's token;
    a divergent token is *reranked* when the other's token is in the base's top-``top_k``
    (Eq. 3: top-5) and *shifted* otherwise.
    """

    top_k: int = Field(5, ge=1, description="Top-k of the base that separates reranked from shifted (Eq. 3: 5).")
    chunk_size: int = Field(256, ge=1, description="Positions per lm_head chunk (memory only; rmxbench default).")


class InterventionConfig(_Decode):
    """Lockstep decoding with substitutions at chosen positions (paper §3.2-3.3, Fig. 2)."""

    taus: list[float] = Field(
        default_factory=lambda: [1.2],
        min_length=1,
        description="Entropy thresholds τ in nats of the entropy-gated condition: substitute the other "
        "model's token wherever the base's H_t > τ (§3.3: τ = 1.2).")
    random_top_k: int = Field(
        20, ge=2,
        description="Random substitution draws an alternative to the base's argmax uniformly from its "
        "top-k (§3.2: top-20).")
    seed: int = Field(0, ge=0, lt=2**32, description="Seed of the random condition's positions and tokens.")

    @field_validator("taus")
    @classmethod
    def _taus(cls, v: list[float]) -> list[float]:
        if any(t < 0 for t in v) or len(set(v)) != len(v):
            raise ValueError(f"τ values must be distinct and >= 0 nats, got {v}")
        return v


class LoraVariant(_Strict):
    """One cell of the rank x module grid (paper App. A, Table 4; App. B Table 5)."""

    rank: int = Field(ge=1, description="LoRA rank r (§4.2: 32; App. A: 8).")
    alpha: int | None = Field(
        None, ge=1, description="LoRA alpha; null = 2·rank (rmxbench default: Table 5 is not in the paper's text).")
    target_modules: list[str] = Field(
        min_length=1, description="Modules adapted: [q_proj, k_proj, v_proj, o_proj] (W_QKVO, §4.2) or [o_proj] (W_O, App. A).")

    @property
    def name(self) -> str:
        """Short label, e.g. ``QKVO r32`` (q/k/v/o projections) or ``o_proj r8``."""
        short = {"q_proj": "Q", "k_proj": "K", "v_proj": "V", "o_proj": "O"}
        mods = ("".join(short[m] for m in self.target_modules)
                if all(m in short for m in self.target_modules) else "+".join(self.target_modules))
        return f"{mods} r{self.rank}"


def _paper_grid() -> list[LoraVariant]:
    qkvo = ["q_proj", "k_proj", "v_proj", "o_proj"]
    return [LoraVariant(rank=32, target_modules=qkvo), LoraVariant(rank=8, target_modules=qkvo),
            LoraVariant(rank=8, target_modules=["o_proj"]), LoraVariant(rank=1, target_modules=["o_proj"])]


class DistillationConfig(_Strict):
    """KL-LoRA distillation of the other model into a LoRA on the base (paper §4.1, App. A, App. B)."""

    pool: PoolSource = Field(  # the ReasonMaxxer pool names
        "math_train",
        description="Problems the teacher rolls out on (§4.1: '100 randomly chosen problems'; source not "
        "stated, rmxbench default: the MATH train split, as for ReasonMaxxer's pool, §6.1).")
    n_problems: int = Field(100, ge=1, description="Problems drawn at random from the pool (§4.1: 100).")
    samples_per_problem: int = Field(
        1, ge=1, description="Teacher rollouts per problem (not stated in the paper; rmxbench default 1).")
    temperature: float = Field(0.6, gt=0.0, description="Teacher sampling temperature (App. B: 0.6).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Teacher nucleus top-p (App. B: 0.95).")
    seed: int = Field(44, ge=0, lt=2**32, description="Seed of problem draw and teacher sampling (App. B: 44).")
    max_new_tokens: int | None = Field(
        None, ge=1, description="Teacher rollout length cap; null = the protocol's `max_new_tokens` (rmxbench default).")
    top_k_logits: int = Field(64, ge=1, description="Teacher logits cached per position (App. B: top-64).")
    epochs: float = Field(3.0, gt=0.0, description="Training epochs (App. B: 3).")
    batch_size: int = Field(2, ge=1, description="Sequences per micro-batch (App. B: 2).")
    gradient_accumulation_steps: int = Field(8, ge=1, description="Gradient accumulation (App. B: 8).")
    learning_rate: float = Field(1e-4, gt=0.0, description="AdamW learning rate (App. B: 1e-4).")
    weight_decay: float = Field(1e-2, ge=0.0, description="AdamW weight decay (App. B: 1e-2).")
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Linear warmup share of steps (App. B: 10%), then linear decay (rmxbench default).")
    max_seq_len: int = Field(2048, ge=8, description="Prompt+completion tokens kept per sequence (rmxbench default).")
    variants: list[LoraVariant] = Field(
        default_factory=_paper_grid, min_length=1,
        description="Rank x module grid (§4.2: QKVO r32; App. A Table 4: QKVO r8, O r8; rmxbench adds O r1).")
    eval_batch_size: int = Field(16, ge=1, description="Prompts per greedy evaluation batch (memory only).")


class TauCurveConfig(_Decode):
    """Test accuracy of every τ adapter of a ReasonMaxxer sweep (paper §6.3, Fig. 4).

    The adapters come from the row's trainer (one per τ, ``adapter_tau/<key>/``); the
    positive-only ablation (§6.3, recipe ``objective: positive_only``) is an optional second
    sweep drawn as a second line.
    """


#: The four analyses, in the order a run performs and a board shows them.
ANALYSES = ("reranking", "interventions", "distillation", "tau_curve")
AnalysisName = Literal["reranking", "interventions", "distillation", "tau_curve"]
#: Analyses that compare a (base, other) pair (the τ curve needs only ReasonMaxxer rows).
PAIR_ANALYSES = ("reranking", "interventions", "distillation")
_SAFE_ID = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class AnalysisEntry(_Strict):
    """One entry of a spec's ``analyses:`` list: a (base, other) pair and the analyses to run on it.

    Example::

        analyses:
          - id: tiny-vs-rmx
            base: tiny                 # a base model id of this spec
            other: tiny-rmx            # one of its RL-baseline or ReasonMaxxer row ids
            run: [reranking, interventions, distillation, tau_curve]
            tasks: [tinymath]
            limit: 200                 # first 200 problems of each task
            sweeps: [tiny-rmx, tiny-rmx-pos]   # τ curve: ReasonMaxxer rows whose τ adapters are scored
            interventions: {taus: [0.3, 0.6]}
            distillation: {pool: embedded_train}
    """

    id: str = Field(pattern=_SAFE_ID, description="Entry id; names the board section and artifact folders "
                    "(a-z 0-9 . _ -, at most 64 characters).")
    base: str = Field(description="Id of a base model declared under `models:`.")
    other: str | None = Field(
        None, description="Id of one of that base's `rl_baselines` or `reasonmaxxer` rows: the model compared with "
        "the base (paper §3-4: the RL-trained teacher). Required by reranking, interventions and distillation; "
        "for the τ curve it is drawn as a reference line.")
    run: list[AnalysisName] = Field(min_length=1, description=f"Analyses to run: any of {list(ANALYSES)}.")
    tasks: list[str] = Field(
        min_length=1, description="Test tasks the analyses decode (paper §3: MATH-500; §4: MATH-500 and GSM8K; "
        "§6.3: MATH-500 and GSM8K). Any task of the benchmark registry.")
    limit: int | None = Field(
        None, ge=1, description="First N problems of each task (null = all). Paper: the whole test set.")
    prompt_style: str | None = Field(
        None, description="Prompt style both models see (paper §3: 'the same set of prompts'); null = the prompt "
        "the `other` row is evaluated with (the base's, paper App. C, unless an RL row sets `eval_prompt: trained`).")
    sweeps: list[str] = Field(
        default_factory=list,
        description="τ curve only: ReasonMaxxer row ids of this base whose every τ adapter is scored, one line "
        "each (§6.3; add a row with `objective: positive_only` for the ablation line). Empty = `other` if it is "
        "a ReasonMaxxer row.")
    reranking: RerankingConfig = Field(default_factory=RerankingConfig)
    interventions: InterventionConfig = Field(default_factory=InterventionConfig)
    distillation: DistillationConfig = Field(default_factory=DistillationConfig)
    tau_curve: TauCurveConfig = Field(default_factory=TauCurveConfig)

    @field_validator("run")
    @classmethod
    def _unique_run(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"`run` lists an analysis twice: {v}")
        return v

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"`tasks` lists a task twice: {v}")
        return v
