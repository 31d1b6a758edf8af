"""Generation backends for rollouts and validation (paper §5.1: K samples per problem at nonzero
temperature from the frozen base model).

Two implementations of one small interface, :class:`Generator`:

- :class:`HFGenerator` — transformers ``generate`` (CPU or GPU), batched, seeded. Every decoding
  knob (``do_sample``, ``temperature``, ``top_p``, ``top_k``, ``max_new_tokens``, EOS/PAD ids) is
  passed explicitly in a fresh :class:`transformers.GenerationConfig`, so neither library
  defaults nor the model's own ``generation_config.json`` change the sampling.
- :class:`VLLMGenerator` — a thin layer over vLLM's public offline API (``LLM``,
  ``SamplingParams(n=K, ...)``, ``LoRARequest``). vLLM is an optional GPU extra; it is imported
  lazily and a missing install is a :class:`~rmxbench.errors.UserError`.

Both return, for every prompt, ``n`` :class:`Sample` objects that keep the *token ids* the model
produced (prompt ids + completion ids). Training uses these ids directly — text is never
decoded and re-encoded for training (that can change the token sequence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from rmxbench.errors import UserError

#: Called after each finished batch with the number of prompts it completed.
ProgressFn = Callable[[int], None]


@dataclass
class Sample:
    """One generated completion.

    Attributes:
        prompt_ids: token ids of the prompt (no padding), length P.
        completion_ids: generated token ids (no padding), length C; ends with EOS when the model
            stopped on its own (``finish_reason == "stop"``).
        text: decoded completion text (special tokens skipped) — for grading only.
        finish_reason: ``"stop"`` (EOS or a stop string) or ``"length"`` (hit ``max_new_tokens``).
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    finish_reason: str


@dataclass(frozen=True)
class Decoding:
    """Decoding settings, passed explicitly to the backend.

    ``temperature == 0`` means greedy (``do_sample=False``); ``top_k == 0`` disables top-k;
    ``top_p == 1`` disables nucleus sampling. ``stop`` are extra stop strings (EOS always stops).
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 1024
    seed: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)


class Generator(Protocol):
    """Interface of a generation backend."""

    def generate(self, prompts: Sequence[str], decoding: Decoding, *,
                 progress: ProgressFn | None = None) -> list[list[Sample]]:
        """Return ``decoding.n`` samples for each prompt (outer list in prompt order)."""
        ...


def _truncate_at_stop(ids: list[int], eos_ids: set[int], pad_id: int | None, tokenizer: Any,
                      stop: Sequence[str]) -> tuple[list[int], str]:
    """Cut ``ids`` after the first EOS (kept) and at the end of the first stop string; strip padding.

    Returns ``(ids, finish_reason)``.
    """
    for i, t in enumerate(ids):
        if t in eos_ids:
            return ids[: i + 1], "stop"
    if stop:
        # find the earliest token boundary whose decoded prefix contains a stop string
        def has_stop(n: int) -> bool:
            text = tokenizer.decode(ids[:n], skip_special_tokens=True)
            return any(s in text for s in stop)

        if has_stop(len(ids)):
            lo, hi = 1, len(ids)  # "prefix contains a stop string" is monotone in n: binary search
            while lo < hi:
                mid = (lo + hi) // 2
                if has_stop(mid):
                    hi = mid
                else:
                    lo = mid + 1
            return ids[:lo], "stop"
    if pad_id is not None:
        while ids and ids[-1] == pad_id and pad_id not in eos_ids:
            ids = ids[:-1]
    return ids, "length"


class HFGenerator:
    """Batched, seeded sampling with transformers ``model.generate``.

    Args:
        model: a causal LM (``PreTrainedModel`` or a ``PeftModel``), on its device.
        tokenizer: its tokenizer; padding is set to the left for generation.
        batch_size: prompts per ``generate`` call (each expands to ``n`` rows).

    Seeding: before batch ``b`` the torch RNG is seeded with ``decoding.seed + b``, so a run is
    reproducible for the same batch size, device and library versions.
    """

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = max(1, int(batch_size))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    def _eos_ids(self) -> set[int]:
        ids = set()
        eos = self.tokenizer.eos_token_id
        if eos is not None:
            ids.add(int(eos))
        cfg_eos = getattr(getattr(self.model, "config", None), "eos_token_id", None)
        if isinstance(cfg_eos, int):
            ids.add(cfg_eos)
        elif isinstance(cfg_eos, (list, tuple)):
            ids.update(int(x) for x in cfg_eos)
        return ids

    def generation_config(self, decoding: Decoding):
        """The explicit :class:`transformers.GenerationConfig` used for ``decoding``."""
        from transformers import GenerationConfig

        sample = decoding.temperature > 0
        eos = sorted(self._eos_ids())
        return GenerationConfig(
            do_sample=sample,
            temperature=decoding.temperature if sample else None,
            top_p=decoding.top_p if sample else None,
            top_k=decoding.top_k if sample else None,
            num_beams=1,
            num_return_sequences=decoding.n,
            max_new_tokens=decoding.max_new_tokens,
            eos_token_id=eos if len(eos) > 1 else (eos[0] if eos else None),
            pad_token_id=self.tokenizer.pad_token_id,
            repetition_penalty=None,
            min_new_tokens=None,
            stop_strings=list(decoding.stop) or None,
        )

    def generate(self, prompts: Sequence[str], decoding: Decoding, *,
                 progress: ProgressFn | None = None) -> list[list[Sample]]:
        """Sample ``decoding.n`` completions per prompt.

        Returns:
            ``out[i][j]``: sample ``j`` of prompt ``i``; token ids are unpadded.
        """
        import torch

        tok = self.tokenizer
        device = next(self.model.parameters()).device
        gen_cfg = self.generation_config(decoding)
        eos_ids = self._eos_ids()
        out: list[list[Sample]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for b, start in enumerate(range(0, len(prompts), self.batch_size)):
                chunk = list(prompts[start:start + self.batch_size])
                enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(device) for k, v in enc.items()}
                torch.manual_seed(decoding.seed + b)
                kw: dict[str, Any] = {"generation_config": gen_cfg}
                if decoding.stop:
                    kw["tokenizer"] = tok
                with torch.no_grad():
                    seqs = self.model.generate(**enc, **kw)
                width = enc["input_ids"].shape[1]
                for i in range(len(chunk)):
                    mask = enc["attention_mask"][i].bool()
                    p_ids = enc["input_ids"][i][mask].tolist()
                    row = []
                    for j in range(decoding.n):
                        gen = seqs[i * decoding.n + j, width:].tolist()
                        c_ids, reason = _truncate_at_stop(gen, eos_ids, tok.pad_token_id, tok, decoding.stop)
                        row.append(Sample(p_ids, c_ids, tok.decode(c_ids, skip_special_tokens=True), reason))
                    out.append(row)
                if progress is not None:
                    progress(len(chunk))
        finally:
            if was_training:
                self.model.train()
        return out


class VLLMGenerator:
    """Sampling with vLLM's offline ``LLM`` engine (GPU only).

    Uses only vLLM's public API: ``LLM(model=..., revision=..., dtype=..., seed=...,
    enable_lora=..., max_lora_rank=..., tensor_parallel_size=..., gpu_memory_utilization=...,
    max_model_len=...)``, ``SamplingParams(n=K, temperature, top_p, top_k (-1 = off), max_tokens,
    seed, stop)`` and ``LLM.generate(prompts, sampling_params, lora_request=LoRARequest(name,
    int_id, path))``. Outputs keep ``prompt_token_ids`` and each ``CompletionOutput.token_ids``.

    Raises:
        UserError: vLLM is not installed (``pip install 'rmxbench[vllm]'`` on a CUDA machine).
    """

    def __init__(self, model: str, *, revision: str | None = None, tokenizer: str | None = None,
                 dtype: str = "auto", seed: int = 0, adapter_dir: str | None = None, max_lora_rank: int = 64,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, trust_remote_code: bool = False):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise UserError(
                "the vLLM backend needs the optional `vllm` package, which is not installed",
                hint="install it on a CUDA machine (`pip install 'rmxbench[vllm]'`), or set "
                     "`protocol.backend: hf` in the spec",
            ) from exc
        self.adapter_dir = adapter_dir
        self.llm = LLM(model=model, revision=revision, tokenizer=tokenizer, dtype=dtype, seed=seed,
                       enable_lora=adapter_dir is not None, max_lora_rank=max_lora_rank,
                       tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       trust_remote_code=trust_remote_code)

    def sampling_params(self, decoding: Decoding):
        """The explicit ``vllm.SamplingParams`` for ``decoding``."""
        from vllm import SamplingParams

        sample = decoding.temperature > 0
        return SamplingParams(
            n=decoding.n,
            temperature=decoding.temperature,
            top_p=decoding.top_p if sample else 1.0,
            top_k=decoding.top_k if (sample and decoding.top_k > 0) else -1,
            max_tokens=decoding.max_new_tokens,
            seed=decoding.seed,
            stop=list(decoding.stop) or None,
            skip_special_tokens=True,
        )

    def generate(self, prompts: Sequence[str], decoding: Decoding, *,
                 progress: ProgressFn | None = None) -> list[list[Sample]]:
        """Sample ``decoding.n`` completions per prompt with vLLM (one engine call)."""
        lora = None
        if self.adapter_dir is not None:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("rmx_adapter", 1, str(self.adapter_dir))
        outputs = self.llm.generate(list(prompts), self.sampling_params(decoding), lora_request=lora)
        res = []
        for o in outputs:
            p_ids = list(o.prompt_token_ids)
            res.append([Sample(p_ids, list(c.token_ids), c.text,
                               "length" if c.finish_reason == "length" else "stop") for c in o.outputs])
        if progress is not None:
            progress(len(prompts))
        return res
