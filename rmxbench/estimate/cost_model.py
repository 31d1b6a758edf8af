"""The time model: a node's :class:`~rmxbench.estimate.work.Work` on a model of a given
:class:`~rmxbench.estimate.model_size.ModelSize` and an :class:`~rmxbench.estimate.hardware.Accelerator`
→ seconds, split into parts (:class:`Breakdown`).

FLOPs per token (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1): ≈ 2N for a
forward pass (generated, prefilled or teacher-forced token), ≈ 6N for a trained token with every weight
trained (forward 2N + backward 4N); a LoRA adapter needs no weight gradients of the frozen base, so
≈ 4N (forward + activation gradients). Attention adds 4 × layers × hidden × context per forward token.
Compute time = FLOPs / (peak × MFU), with the model-FLOPs-utilisation defaults below (MFU as defined
by Chowdhery et al. 2022, "PaLM", App. B; they reach 46% in large-scale training — single-GPU
fine-tuning at small batch reaches less).

Decoding is memory-bound (Pope et al. 2022): one decode step of B sequences reads the weights once and
each sequence's KV cache, so a token costs max(compute, (weights / B + context × KV bytes per token) /
(bandwidth × backend efficiency)), plus the backend's per-step launch overhead (transformers). B is the
engine's concurrency (vLLM: up to ``max_num_seqs`` within
its KV-cache memory; :mod:`rmxbench.backends.throughput`) or the stage's batch (transformers: static
batches that run until the longest completion stops, taken as the cap). This is much closer to batch
decoding than FLOPs alone: a 1.5B model decoding 256 sequences of ~1,000 tokens context on an H100 is
bound by the KV cache it reads, not by its 3 GFLOPs per token.

Completion lengths: generation is modelled at the mean completion length, which the estimator takes
from the store's meters (:mod:`rmxbench.orchestrator.estimate`) or, uncalibrated, as
min(cap, :data:`DEFAULT_COMPLETION_TOKENS`) — of the order of the mean response lengths reported for
zero-RL math training of 0.5B-32B base models (SimpleRL-Zoo, Zeng et al. 2025). :func:`seconds` with
``mean_new`` = the caps gives the upper bound (every completion at its cap).

Torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from rmxbench.backends.throughput import LOAD_GBS, profile
from rmxbench.estimate.hardware import Accelerator
from rmxbench.estimate.model_size import ModelSize, assumed_architecture
from rmxbench.estimate.work import Generation, Sequences, Work

#: Model-FLOPs utilisation of forward passes over known tokens (prefill, teacher-forced scoring).
MFU_FORWARD = 0.35
#: ... of decode steps when they are compute-bound (large batches of a small model).
MFU_DECODE = 0.35
#: ... of training: all weights (full fine-tuning) / a LoRA adapter (small batches, adapter overheads).
MFU_TRAIN_FULL = 0.35
MFU_TRAIN_LORA = 0.25
#: FLOPs per trained token in units of N (parameters): full fine-tuning 6N, LoRA 4N (module doc).
TRAIN_FLOPS_FULL = 6.0
TRAIN_FLOPS_LORA = 4.0
#: Mean completion length assumed before the store has measured one (module doc), tokens.
DEFAULT_COMPLETION_TOKENS = 1024
#: vLLM's ``gpu_memory_utilization`` default (the share of device memory for weights + KV cache).
GPU_MEMORY_UTILIZATION = 0.85


@dataclass
class Breakdown:
    """Seconds of one node by part, and its token and FLOP counts.

    Attributes:
        prefill, decode: generation (prompt processing; generated tokens).
        scored: teacher-forced forward passes.
        trained: forward + backward of trained tokens.
        loads: model loads and engine starts the build does itself (``Work.model_loads``/``engine_starts``).
        fixed: bookkeeping or set-up seconds (``Work.fixed_seconds``).
        generated_tokens, processed_tokens: tokens generated; tokens passed through the model otherwise.
        flops: floating-point operations of the compute parts.
    """

    prefill: float = 0.0
    decode: float = 0.0
    scored: float = 0.0
    trained: float = 0.0
    loads: float = 0.0
    fixed: float = 0.0
    generated_tokens: float = 0.0
    processed_tokens: float = 0.0
    flops: float = 0.0

    @property
    def compute(self) -> float:
        """Seconds that scale with the work (what calibration factors scale)."""
        return self.prefill + self.decode + self.scored + self.trained

    @property
    def total(self) -> float:
        return self.compute + self.loads + self.fixed

    def to_json(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _peak(hw: Accelerator, count: int, dtype: str) -> float:
    """FLOP/s of ``count`` devices (fp32 on a GPU runs at half the BF16 tensor rate: TF32)."""
    f = hw.bf16_tflops * 1e12 * max(count, 1)
    return f / 2 if hw.gpu and dtype == "float32" else f


def generation_seconds(g: Generation, mean_new: float, size: ModelSize, hw: Accelerator, *, count: int = 1,
                       backend: str | None = None, dtype: str = "auto",
                       memory_utilization: float = GPU_MEMORY_UTILIZATION) -> tuple[float, float, float, float]:
    """``(prefill s, decode s, generated tokens, FLOPs)`` of one :class:`Generation` (module doc).

    Args:
        mean_new: mean completion length (tokens) of a continuously batched engine; a static-batch
            backend decodes every batch for ``g.max_new_tokens`` steps.
    """
    prof = profile(backend)
    n = g.completions
    if n <= 0:
        return 0.0, 0.0, 0.0, 0.0
    mean_new = max(1.0, min(float(mean_new), float(g.max_new_tokens)))
    W, kv, N = size.weight_bytes(dtype), size.kv_bytes_per_token(dtype), size.params
    peak = _peak(hw, count, dtype)
    bw = hw.bandwidth_gbs * 1e9 * max(count, 1) * prof.decode_efficiency
    # prefill: each prompt once with a shared prefix (vLLM), else every row
    pre_tokens = (g.prompts if prof.shared_prefix else n) * g.prompt_tokens
    pre_flops = pre_tokens * (2 * N + size.attention_flops_per_token(g.prompt_tokens / 2))
    prefill = pre_flops / (peak * MFU_FORWARD)
    if prof.continuous_batching:
        steps_len, ctx_full = mean_new, g.prompt_tokens + mean_new
        B = float(min(n, prof.max_sequences(hw.memory_gb, hw.key) or n))
    else:  # static batches: every batch decodes until its longest completion, taken as the cap
        steps_len, ctx_full = float(g.max_new_tokens), g.prompt_tokens + g.max_new_tokens
        B = float(min(n, g.batch or n))
    if hw.memory_gb is not None:  # KV-cache memory bounds the sequences resident at once
        free = hw.memory_gb * 1e9 * max(count, 1) * memory_utilization - W
        B = max(1.0, min(B, max(free, 0.05 * hw.memory_gb * 1e9) / (kv * ctx_full)))
    ctx_avg = g.prompt_tokens + steps_len / 2
    t_mem = (W / B + ctx_avg * kv) / bw
    flops_tok = 2 * N + size.attention_flops_per_token(ctx_avg)
    t_cmp = flops_tok / (peak * MFU_DECODE)
    decoded = n * steps_len  # token slots decoded (static batches include padded rows)
    layers = size.layers if size.arch_known else assumed_architecture(size.params)[0]
    decode = decoded * max(t_mem, t_cmp) + (decoded / B) * prof.step_overhead_per_layer * layers
    return prefill, decode, n * mean_new, pre_flops + decoded * flops_tok


def sequence_tokens(s: Sequences, mean_new: float, share: float = 1.0) -> float:
    """Tokens of :class:`Sequences` × passes: count × ``share`` × min(prompt + mean completion, max_len)."""
    length = s.prompt_tokens + min(float(mean_new), float(s.max_new_tokens))
    if s.max_len is not None:
        length = min(length, float(s.max_len))
    return s.count * share * length * s.passes


def _seq_flops(s: Sequences, tokens: float, size: ModelSize, per_token_n: float) -> float:
    ctx = (s.prompt_tokens + s.max_new_tokens) / 2 if s.max_len is None else min(s.max_len, s.prompt_tokens + s.max_new_tokens) / 2
    return tokens * (per_token_n * size.params + (per_token_n / 2) * size.attention_flops_per_token(ctx))


def load_seconds(size: ModelSize, *, backend: str | None, gpu: bool, eager: bool | None = True,
                 dtype: str = "auto", cold: bool = False) -> float:
    """Seconds of one engine start / model load: the backend's fixed part (+ its library imports when it
    is the process's first, ``cold``) + the weights at LOAD_GBS."""
    return profile(backend).start(eager=eager, gpu=gpu, cold=cold) + size.weight_bytes(dtype) / (LOAD_GBS * 1e9)


def seconds(work: Work, size: ModelSize | None, hw: Accelerator, *, count: int = 1, backend: str | None = None,
            mean_new: Callable[[str, int], float] | None = None, share: float = 1.0,
            memory_utilization: float = GPU_MEMORY_UTILIZATION, actual: dict | None = None) -> Breakdown:
    """The uncalibrated seconds of ``work`` (module doc).

    Args:
        size: the model's size (None only for work without a model).
        backend: generation backend of the node's engine (``work.backend`` wins).
        mean_new: ``(variant or origin, cap) -> mean completion tokens``; default min(cap, 1,024).
        share: the share of declared sequences really processed (selection), default 1 (upper bound).
        actual: counts a finished node recorded (``completion_tokens``, ``scored_tokens``,
            ``trained_tokens``): they replace the modelled ones (calibration compares like with like).
    Raises:
        ValueError: model work without a size.
    """
    mean_new = mean_new or (lambda variant, cap: float(min(cap, DEFAULT_COMPLETION_TOKENS)))
    b = Breakdown(fixed=work.fixed_seconds)
    if not work.uses_model:
        return b
    if size is None:
        raise ValueError(f"{work.variant}: model work needs the model's size")
    actual = actual or {}
    be = work.backend or backend
    peak = _peak(hw, count, work.dtype)
    gens = work.generations
    declared = sum(g.completions for g in gens)
    for g in gens:
        m = mean_new(work.variant, g.max_new_tokens)
        if actual.get("completion_tokens") and declared:
            m = float(actual["completion_tokens"]) / declared
        p, d, tok, fl = generation_seconds(g, m, size, hw, count=count, backend=be, dtype=work.dtype,
                                           memory_utilization=memory_utilization)
        b.prefill, b.decode = b.prefill + p, b.decode + d
        b.generated_tokens += tok
        b.flops += fl
    for attr, per_n, mfu, key in (
            ("scored", 2.0, MFU_FORWARD, "scored_tokens"),
            ("trained", TRAIN_FLOPS_FULL if work.full_finetune else TRAIN_FLOPS_LORA,
             MFU_TRAIN_FULL if work.full_finetune else MFU_TRAIN_LORA, "trained_tokens")):
        seqs: tuple[Sequences, ...] = getattr(work, attr)
        toks = [sequence_tokens(s, mean_new(s.origin, s.max_new_tokens), share) for s in seqs]
        if actual.get(key) and sum(toks) > 0:  # scale to what the node really processed
            toks = [t * float(actual[key]) / sum(toks) for t in toks]
        fl = sum(_seq_flops(s, t, size, per_n) for s, t in zip(seqs, toks))
        setattr(b, attr, fl / (peak * mfu))
        b.processed_tokens += sum(toks)
        b.flops += fl
    b.loads = (work.model_loads * load_seconds(size, backend=None, gpu=hw.gpu, dtype=work.dtype)
               + work.engine_starts * load_seconds(size, backend=be, gpu=hw.gpu, eager=False, dtype=work.dtype))
    return b
