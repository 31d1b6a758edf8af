"""The transformers engine session (:class:`HFSession`): one ``PreTrainedModel`` serving generation
for the base and any PEFT LoRA adapter, teacher-forced passes and training.

Generation is transformers ``generate`` with every decoding knob passed explicitly in a fresh
``GenerationConfig`` (neither library defaults nor the model's ``generation_config.json`` change
the sampling). Sampled decoding draws each row's next token from that row's own random stream
(:class:`SeededSampler`, seeded by :func:`rmxbench.spec.sampling.sample_seed` of (seed, request id,
sample index)) after transformers' own temperature / top-k / top-p warpers, so a sample does not
depend on the other prompts in its batch (vLLM #51226's failure mode; up to float rounding of
padded batches).

Adapters (PEFT): each adapter is pre-flown once before it is first served
(:func:`rmxbench.backends.adapters.preflight` against the loaded model's modules: an adapter that
does not apply to this base, or would rewrite its weights, is a UserError before anything is
scored); the first adapter wraps the base in a ``PeftModel``; a new adapter replaces the loaded one
(load, switch, delete); the base is served with the adapter disabled; and
:meth:`HFSession.torch_model` unloads every adapter (:func:`~rmxbench.backends.adapters.unload_peft`:
LoRA layers removed, not merged, and base modules that ``modules_to_save`` wrapped restored) before
handing the plain base to a teacher-forced pass or to training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rmxbench.backends.generation import cut_at_stop, truncate_at_stop
from rmxbench.backends.session import EngineSpec, ProgressFn, Sample, Session
from rmxbench.backends.tokenization import batch_prompt_ids
from rmxbench.spec.sampling import Sampling, sample_seed


class SeededSampler:
    """A transformers logits processor that samples each row from its own ``torch.Generator``.

    Args:
        seeds: one seed per batch row (``sample_seed(seed, request id, sample index)``).
        warpers: transformers' ``TemperatureLogitsWarper`` / ``TopKLogitsWarper`` /
            ``TopPLogitsWarper`` for the sampling (applied first, as ``do_sample=True`` would).

    Called as ``processor(input_ids [B, T], scores [B, V]) -> [B, V]``: the returned scores are
    ``-inf`` except at the sampled token of each row, so greedy search (``do_sample=False``) emits
    exactly the sampled tokens. One uniform draw per row and step (inverse-CDF sampling), so row
    ``b``'s tokens depend only on its seed and its own logits.
    """

    def __init__(self, seeds: Sequence[int], warpers: Any):
        import torch

        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.warpers = warpers

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = self.warpers(input_ids, scores.float())
        probs = torch.softmax(scores, dim=-1)
        cdf = probs.cumsum(dim=-1)
        u = torch.cat([1.0 - torch.rand(1, generator=g) for g in self.gens]).to(scores.device)  # (0, 1]
        idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1)).clamp_(max=scores.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, idx, 0.0)
        return out


class HFSession(Session):
    """A transformers model loaded once (see module doc).

    Args:
        spec: the engine spec (``ref`` + dtype + trust_remote_code; ``backend == "hf"``).
        weights: folder of stage-built weights when ``spec.ref`` is None.
    Raises:
        UserError: the model cannot be loaded (missing path, hub unreachable).
    """

    name = "hf"

    def __init__(self, spec: EngineSpec, weights: str | Path | None = None):
        import transformers

        from rmxbench.backends.modeling import load_model, local_ref

        self.spec = spec
        ref = spec.ref if weights is None else local_ref(weights)
        self.model, self.tokenizer = load_model(ref, dtype=spec.dtype, trust_remote_code=spec.trust_remote_code,
                                                spec_dir=spec.spec_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.version = transformers.__version__
        self.device = next(self.model.parameters()).device
        self._peft: Any = None
        self._adapter: str | None = None
        self._n_loaded = 0
        from rmxbench.backends.adapters import BaseModules

        self._modules = BaseModules.of_model(self.model)  # what adapters are pre-flown against
        self._checked: dict[str, Any] = {}  # adapter path -> AdapterInfo

    # ------------------------------------------------------------------ adapters

    def _served(self, adapter: str | Path | None) -> tuple[Any, Any]:
        """``(model to call, context manager)`` serving ``adapter`` (None: the base).

        Raises:
            UserError: the adapter fails its pre-flight (:func:`rmxbench.backends.adapters.preflight`).
        """
        from contextlib import nullcontext

        if adapter is None:
            return (self._peft or self.model), (self._peft.disable_adapter() if self._peft is not None
                                                else nullcontext())
        path = str(Path(adapter).resolve())
        if path != self._adapter:
            from peft import PeftModel

            if path not in self._checked:
                from rmxbench.backends.adapters import HF_RULES, preflight

                self._checked[path] = preflight(path, self._modules, HF_RULES)
            self._n_loaded += 1
            name = f"adapter{self._n_loaded}"
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            else:
                old = self._peft.active_adapter
                self._peft.load_adapter(path, adapter_name=name)
                self._peft.set_adapter(name)
                self._peft.delete_adapter(old)
            self._peft.eval()
            self._adapter = path
        return self._peft, nullcontext()

    def torch_model(self) -> Any:
        """The plain base model (every adapter unloaded), in eval mode."""
        if self._peft is not None:
            from rmxbench.backends.adapters import unload_peft

            self.model = unload_peft(self._peft)
            self._peft, self._adapter = None, None
        self.model.eval()
        return self.model

    # ------------------------------------------------------------------ generation

    def generate(self, prompts: Sequence[str], sampling: Sampling, *, adapter: str | Path | None = None,
                 request_ids: Sequence[str] | None = None, batch_size: int | None = None,
                 progress: ProgressFn | None = None) -> list[list[Sample]]:
        """See :meth:`rmxbench.backends.session.Session.generate`; ``batch_size`` prompts per
        ``generate`` call (each expands to ``n`` rows; default 16)."""
        model, ctx = self._served(adapter)
        with ctx:
            return hf_generate(model, self.tokenizer, prompts, sampling, request_ids=request_ids,
                               batch_size=batch_size, progress=progress)

    # ------------------------------------------------------------------ residency

    def sleep(self) -> bool:
        """Move the weights to the CPU (frees GPU memory; a no-op on a CPU-only machine)."""
        if self.device.type != "cpu":
            self.model.to("cpu")
        return True

    def wake(self) -> None:
        if self.device.type != "cpu":
            self.model.to(self.device)

    def close(self) -> None:
        import gc

        self._peft = None
        self.model = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end a completion: the tokenizer's EOS and the model config's ``eos_token_id``(s)."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    cfg_eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if isinstance(cfg_eos, int):
        ids.add(cfg_eos)
    elif isinstance(cfg_eos, (list, tuple)):
        ids.update(int(x) for x in cfg_eos)
    return ids


def generation_config(model: Any, tokenizer: Any, sampling: Sampling) -> Any:
    """The explicit :class:`transformers.GenerationConfig`: greedy search (sampled decoding is done by
    :class:`SeededSampler`), ``max_new_tokens``, EOS/PAD ids, stop strings; nothing left to the
    model's ``generation_config.json`` or library defaults."""
    from transformers import GenerationConfig

    eos = sorted(eos_ids(model, tokenizer))
    return GenerationConfig(
        do_sample=False, temperature=None, top_p=None, top_k=None, num_beams=1, num_return_sequences=1,
        max_new_tokens=sampling.max_new_tokens, eos_token_id=eos if len(eos) > 1 else (eos[0] if eos else None),
        pad_token_id=tokenizer.pad_token_id, repetition_penalty=None, min_new_tokens=None,
        stop_strings=list(sampling.stop) or None)


def warpers(sampling: Sampling) -> Any:
    """transformers' own temperature → top-k → top-p warpers for ``sampling`` (the order
    ``do_sample=True`` applies them in)."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    w = LogitsProcessorList([TemperatureLogitsWarper(sampling.temperature)])
    if sampling.top_k:
        w.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        w.append(TopPLogitsWarper(sampling.top_p))
    return w


def hf_generate(model: Any, tokenizer: Any, prompts: Sequence[str], sampling: Sampling, *,
                request_ids: Sequence[str] | None = None, batch_size: int | None = None,
                progress: ProgressFn | None = None) -> list[list[Sample]]:
    """``sampling.n`` samples of each prompt with transformers ``generate`` on ``model`` (a
    ``PreTrainedModel`` or ``PeftModel``, its active adapter applied): what :class:`HFSession` and
    the analyses' own models (a student being distilled) generate with.

    Prompts are left-padded batches of :func:`rmxbench.backends.tokenization.prompt_ids`;
    ``batch_size`` prompts per call (default 16), each expanded to ``n`` rows. Sampled rows draw
    from their own seeded streams (:class:`SeededSampler`, seeds from ``request_ids``).

    Returns:
        ``out[i][j]``: sample ``j`` of prompt ``i``; token ids unpadded.
    """
    import torch
    from transformers import LogitsProcessorList

    tok = tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    ids_of = list(request_ids) if request_ids is not None else [str(i) for i in range(len(prompts))]
    bs = max(1, int(batch_size or 16))
    gen_cfg = generation_config(model, tok, sampling)
    stop_ids = eos_ids(model, tok)
    warp = None if sampling.greedy else warpers(sampling)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[list[Sample]] = []
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), bs):
                chunk = list(prompts[start:start + bs])
                p_ids = batch_prompt_ids(tok, chunk)
                rows = [ids for ids in p_ids for _ in range(sampling.n)]
                enc = tok.pad({"input_ids": rows}, padding=True, return_tensors="pt")
                enc = {k: v.to(device) for k, v in enc.items()}
                kw: dict[str, Any] = {"generation_config": gen_cfg}
                if warp is not None:
                    seeds = [sample_seed(sampling.seed, ids_of[start + i], j)
                             for i in range(len(chunk)) for j in range(sampling.n)]
                    kw["logits_processor"] = LogitsProcessorList([SeededSampler(seeds, warp)])
                if sampling.stop:
                    kw["tokenizer"] = tok
                seqs = model.generate(**enc, **kw)
                width = enc["input_ids"].shape[1]
                for i in range(len(chunk)):
                    row = []
                    for j in range(sampling.n):
                        gen = seqs[i * sampling.n + j, width:].tolist()
                        c_ids, reason = truncate_at_stop(gen, stop_ids, tok.pad_token_id, tok, sampling.stop)
                        text = cut_at_stop(tok.decode(c_ids, skip_special_tokens=True), sampling.stop)
                        row.append(Sample(list(p_ids[i]), c_ids, text, reason))
                    out.append(row)
                if progress is not None:
                    progress(len(chunk))
    finally:
        if was_training:
            model.train()
    return out
