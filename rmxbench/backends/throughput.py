"""How fast each generation backend is, for the cost estimate (:mod:`rmxbench.estimate.cost_model`):
the one place outside the sessions that knows a backend by name.

Decoding many sequences at once is memory-bound: every step reads the weights once for the whole
batch and each sequence's KV cache (Pope et al. 2022, "Efficiently Scaling Transformer Inference",
§2-3; the roofline model of Williams et al. 2009). A backend's ``decode_efficiency`` is the share of
the memory-bandwidth roofline its batched decoding reaches:

- vLLM (continuous batching, paged KV cache, CUDA graphs; Kwon et al. 2023, SOSP, "Efficient Memory
  Management for Large Language Model Serving with PagedAttention") sustains a large share; rmxbench
  assumes 0.5 (a 7B model then decodes one sequence at ~110 tokens/s on an H100 SXM, the order of
  published single-stream figures).
- transformers ``generate`` reads memory about as well, but runs static padded batches until their
  longest completion stops and launches every kernel from Python: ``step_overhead_per_layer`` adds
  0.4 ms per layer and decode step (eager PyTorch, no CUDA graphs). The vLLM authors report up to 24x
  vLLM's throughput over HF Transformers (vLLM blog, 2023-06-20, "vLLM: Easy, Fast, and Cheap LLM
  Serving with PagedAttention"); the two effects give factors of that order at long caps.

Concurrency: vLLM's ``LLM`` schedules up to ``max_num_seqs`` sequences at a time — 1,024 on GPUs with
>= 70 GiB (except A100) and 256 elsewhere, vLLM 0.32 ``EngineArgs._set_default_max_num_seqs_and_batched_tokens_args``
— within its KV-cache memory; transformers runs the batch the stage gives it.

Engine start: a fixed part (library imports at the first start of a process, process set-up, profiling,
KV-cache allocation, CUDA graph capture; plus
torch.compile unless ``enforce_eager``, measured on the CPU build at 36 s vs 0.6 s eager for the
embedded model, ``specs/tiny.yaml``) and loading the weights at :data:`LOAD_GBS`. These are rmxbench
assumptions; calibration from the store's meters (engine start seconds are metered) replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Weights loaded per second at an engine start or model load (safetensors from a local disk or the
#: page cache), GB/s; an assumption.
LOAD_GBS = 2.0


@dataclass(frozen=True)
class BackendProfile:
    """Throughput facts of one generation backend (module doc).

    Attributes:
        name: ``hf`` or ``vllm``.
        decode_efficiency: share of the memory-bandwidth roofline reached in batched decoding.
        continuous_batching: sequences join and leave the running batch (vLLM); else static batches.
        shared_prefix: a prompt's samples share its prefill (vLLM prefix caching); else each row prefills.
        start_seconds: fixed engine-start seconds on a GPU (weights loading comes on top).
        compile_seconds: extra start seconds for torch.compile / CUDA graphs (0 when eager).
        own_engine: generating with it beside a training model starts an engine of its own (TRL's vLLM
            colocate mode); transformers generates with the training model itself.
        import_seconds: extra seconds of the first start in a process (importing torch, transformers and
            the backend's own library).
        step_overhead_per_layer: seconds each decode step costs per layer beyond its memory traffic
            (Python and kernel launches; 0 with CUDA graphs).
    """

    name: str
    decode_efficiency: float
    continuous_batching: bool
    shared_prefix: bool
    start_seconds: float
    compile_seconds: float
    own_engine: bool = False
    import_seconds: float = 8.0
    step_overhead_per_layer: float = 0.0

    def max_sequences(self, memory_gb: float | None, accelerator_key: str = "") -> int | None:
        """Sequences decoded at once by the engine's own scheduler (None: the stage's batch decides)."""
        if not self.continuous_batching:
            return None
        if memory_gb is not None and memory_gb >= 70 * 1.073741824 and not accelerator_key.upper().startswith("A100"):
            return 1024
        return 256

    def start(self, *, eager: bool | None, gpu: bool, cold: bool = False) -> float:
        """Fixed seconds of one engine start (weights loading excluded); ``cold``: the process's first."""
        compile_s = 0.0 if eager else self.compile_seconds
        return (self.start_seconds if gpu else self.start_seconds / 2) + compile_s + (self.import_seconds if cold else 0.0)


_PROFILES = {
    "vllm": BackendProfile("vllm", 0.5, True, True, start_seconds=20.0, compile_seconds=40.0, own_engine=True,
                           import_seconds=15.0),
    "hf": BackendProfile("hf", 0.5, False, False, start_seconds=5.0, compile_seconds=0.0,
                         step_overhead_per_layer=0.4e-3),
}


def profile(backend: str | None) -> BackendProfile:
    """The :class:`BackendProfile` of ``backend`` (``hf``/``vllm``; None or unknown: transformers, the slower)."""
    return _PROFILES.get(backend or "hf", _PROFILES["hf"])


def planned_trl_backend(protocol_backend: str | None, *, gpu: bool) -> str:
    """The generation backend GRPO (TRL) will use on the declared hardware: on a GPU, vLLM colocate when
    the protocol asks for vLLM (the ``vllm`` extra installs a build TRL supports); without a GPU, what
    :func:`rmxbench.backends.select.trl_generation` finds on this machine."""
    from rmxbench.backends.select import resolve_backend, trl_generation

    if gpu:
        return "vllm" if protocol_backend in ("vllm", "auto", None) else resolve_backend(protocol_backend)
    return trl_generation(protocol_backend)[1]
