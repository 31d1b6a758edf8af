"""THE backend interface: one engine session per model, shared by every node that needs that model.

A :class:`Session` loads a model's weights once and serves everything the stages need from it:

- :meth:`Session.generate`: sampled or greedy generation, ``n`` samples per prompt, each sample
  seeded by (seed, request id, sample index) (:func:`rmxbench.spec.sampling.sample_seed`), with an
  optional per-request LoRA adapter (vLLM ``LoRARequest`` with a unique id per adapter; PEFT
  adapters loaded/switched/unloaded on HF);
- :meth:`Session.lm`: an lm-eval ``LM`` on this session (:mod:`rmxbench.backends.lm`), so one
  engine evaluates every task and every adapter of its model;
- :meth:`Session.torch_model` (HF sessions): the base weights for teacher-forced log-probs and
  entropy (paper Eq. 2), training (a LoRA is added and removed again) and the analyses.

Two implementations, selected by :attr:`EngineSpec.backend` only here (:func:`open_session`):
:class:`rmxbench.backends.hf_session.HFSession` (transformers) and
:class:`rmxbench.backends.vllm_session.VLLMSession` (vLLM, CUDA or CPU build). Nothing outside
``rmxbench/backends/`` branches on a backend's name (``tests/test_architecture.py``).

**Sessions are shared across nodes** through a :class:`SessionPool` (one per process; the runner,
``rmxbench eval`` and ``rmxbench analyze`` own one). A node declares the :class:`EngineSpec` it
needs (``Node.engine``); the runner orders independent nodes so that nodes of one engine run
together, asks the pool for the node's session (started once, then reused) and tells the pool
which engines the remaining nodes still need (:meth:`SessionPool.retain`), which closes the rest.

**Residency policy** (:meth:`SessionPool.get`): on a machine with a GPU, only the session in use
is awake: every other resident session is put to sleep first (vLLM sleep mode level 1: weights
to host RAM, KV cache dropped; HF weights moved to the CPU), or closed where it cannot sleep (vLLM
builds without sleep mode), so training gets the GPU memory an engine held. Without a GPU,
sessions stay resident in host RAM until no remaining node needs them. The base model, its
ReasonMaxxer adapters (validation of every τ, evaluation) and a GRPO LoRA adapter are ONE model
with different adapters: one session. A full fine-tuned checkpoint is a different model.

This module imports neither torch nor vLLM (the planner counts planned engine starts with
:func:`count_engine_starts` at ``--dry-run``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from rmxbench.errors import UserError
from rmxbench.spec.sampling import Sampling

#: Called after each finished batch with the number of prompts it completed.
ProgressFn = Callable[[int], None]


@dataclass
class Sample:
    """One generated completion.

    Attributes:
        prompt_ids: token ids of the prompt (no padding), length P.
        completion_ids: generated token ids (no padding), length C; ends with EOS when the model
            stopped on its own, or with the token that completed a stop string.
        text: decoded completion text (special tokens skipped), cut before the first stop string.
        finish_reason: ``"stop"`` (EOS or a stop string) or ``"length"`` (hit ``max_new_tokens``).
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    finish_reason: str


@dataclass(frozen=True)
class EngineSpec:
    """What one session loads: the pool's key (model identity, backend, dtype, context, settings).

    Attributes:
        backend: ``hf`` or ``vllm`` (``auto`` is resolved when the plan is made:
            :func:`rmxbench.backends.select.resolve_backend`).
        model: the weights' identity: a content hash or ``repo@revision`` for spec models, or
            ``node:<key>`` for weights a stage builds (a full GRPO checkpoint).
        ref: how to load them (a :class:`~rmxbench.spec.schema.ModelRef`), or None for weights a
            stage builds (their folder is given to :meth:`SessionPool.get` at build time).
        label: short name for messages and the run summary (e.g. the row or model id).
        dtype: ``auto``/``float32``/``bfloat16``/``float16``.
        trust_remote_code: only True where the spec sets it for this model.
        max_model_len: prompt + completion tokens the engine must hold.
        spec_dir: folder relative ``ref.path`` values resolve against.
        home: the artifact store folder (a GGUF model is converted once into it for vLLM).
        tensor_parallel_size, gpu_memory_utilization: vLLM engine settings (ignored by HF).
        enforce_eager: vLLM's ``enforce_eager`` (None: vLLM's default, compiled).
        max_lora_rank: LoRA rank the engine must serve (vLLM's ``max_lora_rank``; 0 = no LoRA):
            the largest rank of the adapters planned on this model, in vLLM's allowed sizes.
        role: ``engine`` (generates) or ``weights`` (torch weights for teacher-forced passes and
            training beside a vLLM engine of the same model; not part of the key, so on the HF
            backend one session is both). The run summary counts the two apart.
    """

    backend: str
    model: str
    ref: Any = None
    label: str = ""
    dtype: str = "auto"
    trust_remote_code: bool = False
    max_model_len: int = 4096
    spec_dir: str | None = None
    home: str | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    max_lora_rank: int = 0
    enforce_eager: bool | None = None
    role: str = "engine"

    @property
    def key(self) -> str:
        """The pool key: everything that makes two sessions different (not ``label``/``home``)."""
        parts = [self.backend, self.model, self.dtype, str(self.trust_remote_code), str(self.max_model_len)]
        if self.backend == "vllm":
            parts += [f"tp{self.tensor_parallel_size}", f"mem{self.gpu_memory_utilization}", f"lora{self.max_lora_rank}",
                      f"eager{self.enforce_eager}"]
        return "|".join(parts)

    @property
    def accelerators(self) -> int:
        """GPUs one session of this spec uses (vLLM: the tensor-parallel size; HF: 1)."""
        return self.tensor_parallel_size if self.backend == "vllm" else 1

    @classmethod
    def of_weights(cls, ref: Any, *, model: str, label: str = "", dtype: str = "auto",
                   trust_remote_code: bool = False, spec_dir: str | None = None, home: str | None = None,
                   max_model_len: int = 4096) -> "EngineSpec":
        """The torch-weights (HF) session of ``ref``: for teacher-forced passes, training, analyses."""
        return cls(backend="hf", model=model, ref=ref, label=label, dtype=dtype, trust_remote_code=trust_remote_code,
                   max_model_len=max_model_len, spec_dir=spec_dir, home=home, role="weights")

    def for_weights(self) -> "EngineSpec":
        """The HF session of the same weights: teacher-forced passes and training need the torch
        model, which vLLM does not expose (for an ``hf`` spec: itself)."""
        return self if self.backend == "hf" else replace(self, backend="hf", max_lora_rank=0, enforce_eager=None,
                                                         role="weights")

    def with_lora_rank(self, rank: int) -> "EngineSpec":
        """This spec able to serve adapters up to LoRA rank ``rank`` (vLLM's next allowed size)."""
        if self.backend != "vllm" or rank <= self.max_lora_rank:
            return self
        from rmxbench.backends.generation import vllm_lora_size

        return replace(self, max_lora_rank=vllm_lora_size(rank))


class Session(ABC):
    """One loaded model (see module doc). Created by :meth:`SessionPool.get`, never directly.

    Attributes:
        spec: the :class:`EngineSpec` it was started for.
        tokenizer: the model's tokenizer (prompts are encoded with
            :func:`rmxbench.backends.tokenization.prompt_ids`, the tokenization contract).
        name: the backend (``hf``/``vllm``), for provenance.
        version: the generating library's version (transformers or vLLM ``X.Y.Z+cpu``).
        per_sample_seeds: True when each sample depends only on (seed, request id, sample index);
            recorded in the provenance of sampled results.
        start_seconds: wall seconds the start took (weights, compile, warm-up).
    """

    spec: EngineSpec
    tokenizer: Any
    name: str
    version: str | None
    per_sample_seeds: bool = True
    start_seconds: float = 0.0

    @abstractmethod
    def generate(self, prompts: Sequence[str], sampling: Sampling, *, adapter: str | Path | None = None,
                 request_ids: Sequence[str] | None = None, batch_size: int | None = None,
                 progress: ProgressFn | None = None) -> list[list[Sample]]:
        """``sampling.n`` samples of each prompt.

        Args:
            prompts: exact prompt texts (encoded by the tokenization contract).
            sampling: the decoding; ``temperature == 0`` is greedy.
            adapter: a PEFT LoRA adapter folder served for these requests, or None (the base).
            request_ids: one stable id per prompt (the problem id): sample ``j`` of prompt ``i``
                is seeded by ``sample_seed(sampling.seed, request_ids[i], j)``, so it does not
                depend on which other prompts share its batch. Default: the prompt's index.
            batch_size: prompts per forward batch (HF; vLLM schedules its own batches).
            progress: called with the number of prompts finished.
        Returns:
            ``out[i][j]``: sample ``j`` of prompt ``i`` (token ids unpadded).
        Raises:
            UserError: the adapter cannot be served (rank above the engine's, not a LoRA adapter).
        """

    def lm(self, *, sampling: Sampling, adapter: str | Path | None = None, batch_size: int | None = None,
           progress: ProgressFn | None = None) -> Any:
        """An lm-eval ``LM`` generating with this session (:class:`rmxbench.backends.lm.SessionLM`)."""
        from rmxbench.backends.lm import SessionLM

        return SessionLM(self, sampling=sampling, adapter=adapter, batch_size=batch_size, progress=progress)

    def torch_model(self) -> Any:
        """The base ``PreTrainedModel`` (no adapter active), on its device, for teacher-forced passes
        and training. Only HF sessions hold one.

        Raises:
            TypeError: on an engine that does not expose torch weights (ask the pool for
                ``spec.for_weights()``).
        """
        raise TypeError(f"a {self.name} session does not expose torch weights; use spec.for_weights()")

    def sleep(self) -> bool:
        """Free accelerator memory while another session works; False if this engine cannot sleep
        (the pool then closes it). Default: nothing to free."""
        return True

    def wake(self) -> None:
        """Undo :meth:`sleep`."""

    @abstractmethod
    def close(self) -> None:
        """Free the weights and the engine."""


def engine_of(ref: Any, *, backend: str | None = "auto", dtype: str = "auto", trust_remote_code: bool = False,
              max_model_len: int = 4096, spec_dir: str | Path | None = None, home: str | Path | None = None,
              tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85, enforce_eager: bool | None = None,
              adapter: str | Path | None = None, max_lora_rank: int = 64, label: str = "") -> EngineSpec:
    """The :class:`EngineSpec` of a model reference outside a plan (``rmxbench eval``, tests):
    ``backend`` resolved (``auto``: vLLM where usable), the model keyed by its identity
    (:func:`rmxbench.pipeline.identity.model_key`), the LoRA rank of ``adapter`` if given (capped by
    ``max_lora_rank``).

    Raises:
        UserError: a missing local model, an adapter above the cap.
    """
    from rmxbench.backends.select import resolve_backend
    from rmxbench.pipeline.identity import model_identity, model_key

    sd = Path(spec_dir) if spec_dir is not None else None
    spec = EngineSpec(backend=resolve_backend(backend), model=model_key(model_identity(ref, spec_dir=sd)), ref=ref,
                      label=label or str(ref.repo or ref.path), dtype=dtype, trust_remote_code=trust_remote_code,
                      max_model_len=max_model_len, spec_dir=str(sd) if sd else None,
                      home=str(home) if home is not None else None, tensor_parallel_size=tensor_parallel_size,
                      gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager)
    if adapter is not None:
        from rmxbench.backends.generation import engine_lora_rank

        spec = spec.with_lora_rank(engine_lora_rank(adapter, max_lora_rank))
    return spec


def open_session(spec: EngineSpec, weights: str | Path | None = None) -> Session:
    """Start a session for ``spec`` (the only place that picks the implementation by backend name).

    Args:
        weights: the folder of weights a stage built (``spec.ref`` is None), else None.
    Raises:
        UserError: unknown backend, missing weights, vLLM not usable here.
    """
    if spec.backend == "hf":
        from rmxbench.backends.hf_session import HFSession

        return HFSession(spec, weights)
    if spec.backend == "vllm":
        from rmxbench.backends.vllm_session import VLLMSession

        return VLLMSession(spec, weights)
    raise UserError(f"backend {spec.backend!r} is not supported; allowed: hf, vllm")


def accelerator_present() -> bool:
    """True when an NVIDIA GPU is visible (the residency policy's question; torch-free when torch
    is not imported yet)."""
    from rmxbench.backends.select import has_cuda_device

    return has_cuda_device()


@dataclass
class SessionEvent:
    """One :meth:`SessionPool.get`: which engine, whether it was ``started`` (or ``reused``), and
    the start's wall seconds and process CPU seconds."""

    key: str
    label: str
    backend: str
    started: bool
    seconds: float = 0.0
    role: str = "engine"
    cpu_seconds: float = 0.0
    #: the first start in this process (transformers not imported yet): it pays the library imports
    cold: bool = False


@dataclass
class SessionPool:
    """The sessions of one process (see module doc for the residency policy).

    Args:
        accelerator: whether a GPU is visible (default: :func:`accelerator_present`); decides the
            residency policy.
        opener: starts a session (default :func:`open_session`; the planner's dry-run count passes
            a stand-in that loads nothing).
    """

    accelerator: bool | None = None
    opener: Callable[[EngineSpec, Any], Any] = open_session
    sessions: dict[str, Any] = field(default_factory=dict)
    events: list[SessionEvent] = field(default_factory=list)
    _asleep: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.accelerator is None:
            self.accelerator = accelerator_present()

    def get(self, spec: EngineSpec, weights: str | Path | None = None, *, alongside: Sequence[str] = ()) -> Session:
        """The session of ``spec``: reused if resident (woken if asleep), else started.

        On a GPU machine every other resident session is put to sleep (or closed) first, except
        those in ``alongside`` (sessions one build uses together, e.g. an analysis' two models).

        Raises:
            UserError: as :func:`open_session`.
        """
        key = spec.key
        if self.accelerator:
            for k, s in list(self.sessions.items()):
                if k != key and k not in self._asleep and k not in alongside:
                    if s.sleep():
                        self._asleep.add(k)
                    else:
                        self.close(k)
        s = self.sessions.get(key)
        if s is not None:
            if key in self._asleep:
                s.wake()
                self._asleep.discard(key)
            self.events.append(SessionEvent(key, spec.label, spec.backend, False, role=spec.role))
            return s
        import sys

        cold = "transformers" not in sys.modules
        t0, c0 = time.perf_counter(), time.process_time()
        s = self.opener(spec, weights)
        sec = time.perf_counter() - t0
        if hasattr(s, "start_seconds"):
            s.start_seconds = sec
        self.sessions[key] = s
        self.events.append(SessionEvent(key, spec.label, spec.backend, True, sec, spec.role,
                                        cpu_seconds=time.process_time() - c0, cold=cold))
        return s

    def retain(self, keys: set[str]) -> None:
        """Close every session whose key is not in ``keys`` (the engines remaining nodes need)."""
        for k in [k for k in self.sessions if k not in keys]:
            self.close(k)

    def close(self, key: str) -> None:
        """Close one session (no-op if not resident)."""
        s = self.sessions.pop(key, None)
        self._asleep.discard(key)
        if s is not None:
            s.close()

    def close_all(self) -> None:
        """Close every session (end of a run, or an error)."""
        for k in list(self.sessions):
            self.close(k)

    def started(self) -> list[SessionEvent]:
        """The engine starts so far."""
        return [e for e in self.events if e.started]

    def summary(self) -> str:
        """``engines started: N (models: M)`` (+ ``; torch weights loaded: K`` beside vLLM engines),
        for the run summary."""
        return starts_line(self.started())


class _Counted:
    """A session stand-in that loads nothing (dry-run counting)."""

    def __init__(self, spec: EngineSpec, weights: Any = None):
        self.spec = spec

    def sleep(self) -> bool:
        return self.spec.backend == "hf" or _sleep_mode_expected()

    def wake(self) -> None:
        pass

    def close(self) -> None:
        pass


def _sleep_mode_expected() -> bool:
    """Whether vLLM engines can sleep on this machine (vLLM's sleep mode needs CUDA)."""
    return accelerator_present()


def starts_line(started: Sequence[SessionEvent], *, planned: bool = False) -> str:
    """``engines started: N (models: M)``, plus ``; torch weights loaded: K`` when training or
    teacher-forced stages loaded torch weights beside vLLM engines (``planned``: "to start" / "to load")."""
    eng = [e for e in started if e.role == "engine"]
    w = len(started) - len(eng)
    verb, load = ("to start", "to load") if planned else ("started", "loaded")
    return (f"engines {verb}: {len(eng)} (models: {len({e.key.split('|')[1] for e in eng})})"
            + (f"; torch weights {load}: {w}" if w else ""))


def starts_in_order(specs_in_order: Sequence[EngineSpec | None]) -> list[SessionEvent | None]:
    """Like :func:`count_engine_starts`, per entry: the start that entry causes, or None (its engine is
    reused, or it has none). The cost estimate charges each start to the node that causes it."""
    pool = SessionPool(opener=_Counted)
    remaining = [s for s in specs_in_order if s is not None]
    out: list[SessionEvent | None] = []
    i = 0
    for spec in specs_in_order:
        if spec is None:
            out.append(None)
            continue
        n0 = len(pool.events)
        pool.get(spec)
        ev = pool.events[n0]
        out.append(ev if ev.started else None)
        pool.retain({s.key for s in remaining[i:]})
        i += 1
    return out


def count_engine_starts(specs_in_order: Sequence[EngineSpec | None]) -> list[SessionEvent]:
    """The session starts nodes using these engines (in run order) will cause under the pool's
    residency policy on this machine; nothing is loaded. ``None`` entries (nodes without an
    engine) are skipped. :func:`starts_line` words them."""
    pool = SessionPool(opener=_Counted)
    remaining = [s for s in specs_in_order if s is not None]
    for i, spec in enumerate(remaining):
        pool.get(spec)
        pool.retain({s.key for s in remaining[i:]})
    return pool.started()
