"""Base models of the method stages, loaded once per process and only when a stage needs them.

Rollouts, entropy, training and validation of one row all use the same frozen base weights;
:func:`base_model` loads them on first use (:func:`rmxbench.backends.modeling.load_model`) and keeps
them for the next stage (training adds LoRA layers and removes them again, so the cached model is
always the plain base). :func:`release` frees them (the runner calls it after each row).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_CACHE: dict[str, tuple[Any, Any]] = {}


def _key(base: Any, spec_dir: Path | None) -> str:
    return f"{base.model.model_dump_json()}|{base.dtype}|{base.trust_remote_code}|{spec_dir}"


def base_model(base: Any, spec_dir: Path | None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a :class:`~rmxbench.spec.schema.BaseModelSpec` (cached)."""
    k = _key(base, spec_dir)
    if k not in _CACHE:
        from rmxbench.backends.modeling import load_model

        _CACHE.clear()  # one base model in memory at a time
        _CACHE[k] = load_model(base.model, dtype=base.dtype, trust_remote_code=base.trust_remote_code,
                               spec_dir=spec_dir)
    return _CACHE[k]


def base_tokenizer(base: Any, spec_dir: Path | None) -> Any:
    """The tokenizer alone (no weights loaded unless already cached): for the vLLM backend."""
    k = _key(base, spec_dir)
    if k in _CACHE:
        return _CACHE[k][1]
    from transformers import AutoTokenizer

    from rmxbench.backends.modeling import tokenizer_kwargs

    return AutoTokenizer.from_pretrained(**tokenizer_kwargs(base.model, spec_dir=spec_dir,
                                                            trust_remote_code=base.trust_remote_code))


def model_for_generation(base: Any, spec_dir: Path | None, backend: str) -> tuple[Any, Any]:
    """``(model or None, tokenizer)``: vLLM loads its own weights, HF uses the cached base."""
    return (None, base_tokenizer(base, spec_dir)) if backend == "vllm" else base_model(base, spec_dir)


def release() -> None:
    """Drop the cached base model."""
    _CACHE.clear()
