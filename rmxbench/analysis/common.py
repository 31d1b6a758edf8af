"""What the four analyses share: the (base, other) pair, loading, greedy scoring, result files.

- :class:`ModelHandle` names a model the way a spec row does (a :class:`~rmxbench.spec.ModelRef`,
  optionally plus a PEFT adapter folder, e.g. a ReasonMaxxer row = its base + its adapter) and
  loads it with :func:`rmxbench.backends.modeling.load_model` (+ :func:`rmxbench.backends.adapters.load_peft`:
  the adapter pre-flight, then ``peft.PeftModel.from_pretrained``).
- :class:`Pair` is (base, other, prompt style): both models see the *same* prompt text (paper §3:
  "the same set of prompts") and must share a tokenizer (teacher forcing and lockstep decoding
  compare token ids).
- :func:`greedy_samples` / :func:`score` decode greedily with
  :func:`~rmxbench.backends.hf_session.hf_generate` and grade with :func:`rmxbench.evaluation.grading.grade`, the one
  grader, so accuracies match the board's greedy pass@1 protocol (same prompt, stops, grader).
- :func:`write_result` writes ``result.json`` atomically; figures are matplotlib PNGs
  (:func:`save_figure`), each with a caption stating pair, task, n and settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from rmxbench.errors import UserError
from rmxbench.results import atomic_write_json

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class ModelHandle:
    """A model to load: weights (``ref``) plus an optional PEFT adapter folder.

    Attributes:
        label: display name (a spec row's display name or id), shown in captions.
        ref: :class:`~rmxbench.spec.ModelRef` (hub repo + revision or local path).
        adapter_dir: PEFT adapter folder applied on top of ``ref`` (None = plain weights).
        dtype: ``auto`` / ``float32`` / ``bfloat16`` / ``float16``.
        trust_remote_code: only ever True when the spec sets it.
        spec_dir: folder that relative ``ref.path`` values are resolved against.
    """

    label: str
    ref: Any
    adapter_dir: Path | None = None
    dtype: str = "auto"
    trust_remote_code: bool = False
    spec_dir: Path | None = None
    #: an engine session holding these weights (:class:`rmxbench.backends.session.Session`); when
    #: set, :meth:`load` takes its torch model instead of loading the weights again
    session: Any = field(default=None, compare=False, repr=False)

    def load(self):
        """``(model, tokenizer)`` in eval mode; with an adapter, a ``PeftModel`` (adapter active).
        With a ``session`` (and no adapter), the session's own model: loaded once, shared.

        Raises:
            UserError: weights or adapter folder missing/unloadable.
        """
        from rmxbench.backends.modeling import load_model

        if self.session is not None and self.adapter_dir is None:
            return self.session.torch_model(), self.session.tokenizer
        model, tok = load_model(self.ref, dtype=self.dtype, trust_remote_code=self.trust_remote_code,
                                spec_dir=self.spec_dir)
        if self.adapter_dir is not None:
            from rmxbench.backends.adapters import load_peft

            if not (Path(self.adapter_dir) / "adapter_config.json").is_file():
                raise UserError(f"{self.label}: {self.adapter_dir} is not a PEFT adapter folder "
                                "(no adapter_config.json)")
            model = load_peft(model, self.adapter_dir)  # pre-flown against the loaded model's modules
        return model, tok

    def describe(self) -> dict:
        """JSON-able description (for result files and captions)."""
        ref = self.ref.model_dump(mode="json", exclude_none=True) if hasattr(self.ref, "model_dump") else str(self.ref)
        return {"label": self.label, "model": ref, "adapter": str(self.adapter_dir) if self.adapter_dir else None,
                "dtype": self.dtype}


@dataclass(frozen=True)
class Pair:
    """The (base, other) pair of an analysis; ``prompt_style`` is the base's (paper §3, App. C)."""

    base: ModelHandle
    other: ModelHandle
    prompt_style: str

    def describe(self) -> dict:
        return {"base": self.base.describe(), "other": self.other.describe(), "prompt_style": self.prompt_style}

    @property
    def title(self) -> str:
        return f"{self.base.label} vs {self.other.label}"


def check_same_tokenizer(tok_a: Any, tok_b: Any, pair: Pair) -> None:
    """Raise :class:`UserError` unless the two vocabularies agree: every token of the smaller one
    has the same id in the larger (an RL checkpoint may add special tokens to its base's)."""
    va, vb = tok_a.get_vocab(), tok_b.get_vocab()
    small, large = (va, vb) if len(va) <= len(vb) else (vb, va)
    bad = [t for t, i in small.items() if large.get(t) != i]
    if bad:
        raise UserError(f"analysis pair {pair.title!r}: the two models use different tokenizers "
                        f"({len(bad)} tokens differ, e.g. {bad[0]!r})",
                        hint="token-level analyses (paper §3) compare token ids; pair models of one family")


def prompts_for(problems: Sequence[dict], style: str, tokenizer: Any) -> list[str]:
    """The exact prompt texts (:func:`rmxbench.evaluation.prompts.build_prompt`) of ``problems``."""
    from rmxbench.evaluation.prompts import build_prompt

    return [build_prompt(str(p["problem"]), style, tokenizer) for p in problems]


def stop_strings(style: str) -> tuple[str, ...]:
    """The stop sequences of a prompt style (:data:`rmxbench.evaluation.prompts.STOP_SEQUENCES`)."""
    from rmxbench.evaluation.prompts import STOP_SEQUENCES

    return tuple(STOP_SEQUENCES.get(style, []))


def greedy_samples(model: Any, tok: Any, prompts: Sequence[str], *, style: str, max_new_tokens: int,
                   batch_size: int, progress: Callable[[int], None] | None = None) -> list:
    """Greedy (T = 0) completions, one :class:`~rmxbench.backends.generation.Sample` per prompt."""
    from rmxbench.backends.hf_session import hf_generate
    from rmxbench.spec.sampling import Sampling

    sampling = Sampling.of(n=1, temperature=0.0, max_new_tokens=max_new_tokens, stop=stop_strings(style))
    return [s[0] for s in hf_generate(model, tok, prompts, sampling, batch_size=batch_size, progress=progress)]


def verdicts(texts: Sequence[str], problems: Sequence[dict], task: str) -> list[bool]:
    """Correctness of each completion text by :func:`rmxbench.evaluation.grading.grade` (the one grader)."""
    from rmxbench.evaluation.grading import grade

    return [bool(grade(t, str(p["answer"]), task=task).correct) for t, p in zip(texts, problems)]


def accuracy_summary(correct: Sequence[bool]) -> dict:
    """``{"accuracy", "stderr", "n"}``: mean of 0/1 verdicts and its binomial standard error."""
    n = len(correct)
    acc = sum(correct) / n if n else 0.0
    return {"accuracy": acc, "stderr": math.sqrt(acc * (1 - acc) / n) if n else 0.0, "n": n}


def score(model: Any, tok: Any, problems: Sequence[dict], *, style: str, task: str, max_new_tokens: int,
          batch_size: int, progress: Callable[[int], None] | None = None) -> dict:
    """Greedy pass@1 of ``model`` on ``problems``: :func:`accuracy_summary` + ``per_problem`` verdicts."""
    samples = greedy_samples(model, tok, prompts_for(problems, style, tok), style=style,
                             max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    ok = verdicts([s.text for s in samples], problems, task)
    return {**accuracy_summary(ok), "per_problem": {str(p["id"]): v for p, v in zip(problems, ok)}}


def map_completion_logits(model: Any, sequences: Sequence[Sequence[int]], starts: Sequence[int],
                          fn: Callable[[Any, Any], dict], *, chunk_size: int = 256, batch_size: int = 16,
                          pad_id: int = 0, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Teacher-force ``model`` on ``sequences`` and apply ``fn`` to the logits of completion tokens.

    The body runs once per length-sorted, right-padded batch and returns hidden states only
    (:func:`rmxbench.method.entropy.hidden_states`); ``lm_head`` is applied to the positions that
    predict completion tokens, ``chunk_size`` rows at a time, so at most a ``[chunk_size, V]``
    float32 block of logits exists (as in :mod:`rmxbench.method.entropy`).

    Args:
        model: causal LM (a PeftModel uses its active adapter).
        sequences: prompt + completion ids per sequence (unpadded).
        starts: index of the first completion token of each sequence (its prompt length, ≥ 1).
        fn: ``fn(logits [c, V] float32, targets [c] long) -> {name: tensor [c, ...]}``; targets are
            the completion tokens the logits predict.
    Returns:
        per sequence ``{name: tensor [C, ...]}`` on CPU (C = its completion length), under no_grad.
    """
    import torch

    from rmxbench.method.entropy import hidden_states, output_head, padded_batches

    device = next(model.parameters()).device
    head = output_head(model)
    out: list[dict | None] = [None] * len(sequences)
    with torch.no_grad():
        for idx, ids, mask in padded_batches(sequences, batch_size=batch_size, pad_id=pad_id):
            ids, mask = ids.to(device), mask.to(device)
            h = hidden_states(model, ids, mask)
            # completion token t is predicted from position t-1: gather those rows only
            rows = torch.cat([torch.full((len(sequences[i]) - starts[i],), r) for r, i in enumerate(idx)]).to(device)
            cols = torch.cat([torch.arange(starts[i] - 1, len(sequences[i]) - 1) for i in idx]).to(device)
            hs, tgt = h[rows, cols], ids[rows, cols + 1]
            parts = [fn(head(hs[c:c + chunk_size]).float(), tgt[c:c + chunk_size])
                     for c in range(0, hs.shape[0], chunk_size)]
            merged = {k: torch.cat([p[k] for p in parts]).cpu() for k in parts[0]} if parts else {}
            off = 0
            for i in idx:
                n = len(sequences[i]) - starts[i]
                out[i] = {k: v[off:off + n] for k, v in merged.items()}
                off += n
            if progress is not None:
                progress(len(idx))
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------- result files


@dataclass
class Figure:
    """A PNG written next to ``result.json``: ``file`` (name), ``caption`` (pair, task, n, settings)."""

    file: str
    caption: str


@dataclass
class AnalysisResult:
    """What every analysis writes to ``result.json``.

    Attributes:
        analysis: ``reranking`` / ``interventions`` / ``distillation`` / ``tau_curve``.
        pair: :meth:`Pair.describe` (or the row for ``tau_curve``).
        task: grading task of the test problems.
        n: problems analysed.
        settings: the config (``model_dump``) plus resolved values (e.g. ``max_new_tokens``).
        data: the analysis' numbers (layout documented in its module).
        figures: :class:`Figure` list.
    """

    analysis: str
    title: str
    pair: dict
    task: str
    n: int
    settings: dict
    data: dict
    figures: list[Figure] = field(default_factory=list)

    def to_json(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "AnalysisResult":
        return cls(**{**d, "figures": [Figure(**f) for f in d.get("figures", [])]})


def write_result(result: AnalysisResult, out_dir: Path) -> Path:
    """Write ``out_dir/result.json`` atomically; returns its path."""
    p = Path(out_dir) / RESULT_FILE
    atomic_write_json(p, result.to_json())
    return p


def read_result(out_dir: Path) -> AnalysisResult:
    """Read ``out_dir/result.json``."""
    import json

    return AnalysisResult.from_json(json.loads((Path(out_dir) / RESULT_FILE).read_text(encoding="utf-8")))


def new_figure(width: float = 6.0, height: float = 3.6):
    """A matplotlib ``(fig, ax)`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=110)


def save_figure(fig: Any, out_dir: Path, name: str, caption: str) -> Figure:
    """Save ``fig`` as ``out_dir/name`` (PNG, atomically: temp file + rename) and close it."""
    import os

    import matplotlib.pyplot as plt

    final = Path(out_dir) / name
    tmp = final.with_name(f".{name}.tmp")
    fig.tight_layout()
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, final)
    return Figure(name, caption)
