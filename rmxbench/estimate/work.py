"""What one node does, declared by its stage before anything runs: :class:`Work`.

A stage module may define ``work(config) -> Work`` next to ``declare``/``build`` (torch-free, offline;
``config`` is the node's ``Node.config``). The estimator (:mod:`rmxbench.orchestrator.estimate`) prices it
with :mod:`rmxbench.estimate.cost_model`; a stage without ``work`` gets a clearly labelled "no
estimate". Every count is an upper bound the stage knows from its config:

- :class:`Generation`: prompts × samples completions, each up to ``max_new_tokens``. How long
  completions really are is the estimator's business (the store's measured mean, else an assumption).
- :class:`Sequences`: prompt + completion sequences passed through the model (teacher-forced
  scoring, training), e.g. at most ``selection.max_problems`` × K rollouts; the share a run really
  selects is again learned from the store.

A build may return the counts it really did (``{"completion_tokens": …, "prompt_tokens": …,
"scored_tokens": …, "trained_tokens": …}``): the runner puts them into the node's ``meter.json``, and
calibration learns completion lengths and selected shares from them.

Also here: :func:`task_problems`, the problem count and mean prompt length of a benchmark for a
stage's ``work`` (local files are counted; hub datasets use the registry's expected size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Characters per token of English BPE text (OpenAI's tokenizer guidance: "one token ≈ 4 characters").
CHARS_PER_TOKEN = 4.0
#: Tokens a prompt template adds around the problem text (instructions, role markers), an assumption.
TEMPLATE_TOKENS = 40.0
#: Mean prompt tokens of a benchmark whose rows cannot be read offline (hub data not cached), an assumption.
DEFAULT_PROMPT_TOKENS = 120.0


@dataclass(frozen=True)
class Generation:
    """Sampled or greedy generation: ``prompts`` × ``samples`` completions.

    Attributes:
        prompts: distinct prompts.
        samples: completions per prompt (K, k of avg@k, G of GRPO).
        prompt_tokens: mean prompt length, tokens.
        max_new_tokens: cap per completion, tokens.
        batch: rows per forward batch where the build fixes it (HF backend), else None (the engine schedules).
    """

    prompts: int
    samples: int = 1
    prompt_tokens: float = DEFAULT_PROMPT_TOKENS
    max_new_tokens: int = 1024
    batch: int | None = None

    @property
    def completions(self) -> int:
        return self.prompts * self.samples


@dataclass(frozen=True)
class Sequences:
    """Sequences of prompt + completion passed through the model (teacher-forced or trained).

    Attributes:
        count: sequences (an upper bound: e.g. max_problems × K).
        prompt_tokens: mean prompt length, tokens.
        max_new_tokens: cap of the completions they carry (their real length is learned).
        max_len: truncation of prompt + completion (``optim.max_seq_len``), tokens; None = none.
        passes: how often each sequence is processed (epochs).
        origin: the variant whose completions these are (``rollouts``): its measured mean completion
            length applies.
    """

    count: int
    prompt_tokens: float
    max_new_tokens: int
    max_len: int | None = None
    passes: float = 1.0
    origin: str = "rollouts"


@dataclass(frozen=True)
class Work:
    """The work of one node (see module doc).

    Attributes:
        variant: calibration group (``rollouts``, ``eval:adapter``, ``grpo:full``); the part before
            ``:`` is the fallback group.
        model: the :class:`~rmxbench.spec.schema.ModelRef` whose size prices the work (None: no model).
        dtype: spec dtype of that model (``auto``/``bfloat16``/``float32`` …).
        generations: generation passes.
        scored: teacher-forced forward passes (entropy; a reference model's log-probs).
        trained: sequences trained (forward + backward).
        full_finetune: all weights trained (else a LoRA adapter: no weight gradients of the base).
        model_loads: weights the build loads itself outside the engine pool (GRPO: policy + reference).
        engine_starts: generation engines the build starts itself (TRL's vLLM colocate engine).
        backend: the generation backend of these generations (None: the node's engine's).
        fixed_seconds: bookkeeping seconds (reading files, grading) or a build's set-up outside its work loop.
        note: a caveat shown with the estimate.
    """

    variant: str
    model: Any = None
    dtype: str = "auto"
    generations: tuple[Generation, ...] = ()
    scored: tuple[Sequences, ...] = ()
    trained: tuple[Sequences, ...] = ()
    full_finetune: bool = False
    model_loads: int = 0
    engine_starts: int = 0
    backend: str | None = None
    fixed_seconds: float = 0.0
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        """The fallback calibration group (``eval`` for ``eval:adapter``)."""
        return self.variant.split(":", 1)[0]

    @property
    def uses_model(self) -> bool:
        return bool(self.generations or self.scored or self.trained or self.model_loads or self.engine_starts)

    def to_json(self) -> dict:
        """JSON-able record (the model reference as its dump), stored in ``meter.json`` for calibration."""
        d = asdict(self)
        d["model"] = self.model.model_dump(mode="json") if hasattr(self.model, "model_dump") else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Work":
        """Inverse of :meth:`to_json` (the model reference stays a dict: calibration needs no model)."""
        return cls(variant=d["variant"], model=d.get("model"), dtype=d.get("dtype", "auto"),
                   generations=tuple(Generation(**g) for g in d.get("generations", ())),
                   scored=tuple(Sequences(**s) for s in d.get("scored", ())),
                   trained=tuple(Sequences(**s) for s in d.get("trained", ())),
                   full_finetune=bool(d.get("full_finetune")), model_loads=int(d.get("model_loads", 0)),
                   engine_starts=int(d.get("engine_starts", 0)), backend=d.get("backend"),
                   fixed_seconds=float(d.get("fixed_seconds", 0.0)), note=d.get("note", ""),
                   extra=dict(d.get("extra") or {}))


@lru_cache(maxsize=256)
def _stats(name: str, data_dir: str | None) -> tuple[int, float]:
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.spec.benchmarks import benchmark

    ds = benchmark(name)
    local = ds.embedded is not None or (data_dir is not None and (
        ds.file is None or (Path(data_dir) / ds.file).is_file()))
    if local:
        rows = load_benchmark(name, data_dir=data_dir)
        chars = sum(len(str(r.get("problem", ""))) for r in rows) / max(len(rows), 1)
        return len(rows), chars / CHARS_PER_TOKEN + TEMPLATE_TOKENS
    hub = ds.hub
    return (hub.expected if hub is not None else 0), DEFAULT_PROMPT_TOKENS


def task_problems(name: str, data_dir: str | Path | None, limit: int | None = None) -> tuple[int, float]:
    """``(problems, mean prompt tokens)`` of benchmark or pool ``name`` (first ``limit`` rows).

    Local data (a data dir, the embedded files, derived benchmarks of local files) is read and counted
    (prompt tokens ≈ characters / :data:`CHARS_PER_TOKEN` + :data:`TEMPLATE_TOKENS`); hub data uses the
    registry's expected row count (:data:`rmxbench.evaluation.hub_data.SOURCES`) and
    :data:`DEFAULT_PROMPT_TOKENS`. Nothing is downloaded.
    """
    n, p = _stats(name, str(data_dir) if data_dir is not None else None)
    if limit:
        return (min(n, limit) if n else limit), p
    return n, p
