"""Model loading: one place that turns a spec's :class:`~rmxbench.spec.schema.ModelRef` into weights.

The default for users is the Hugging Face hub (``repo`` + pinned ``revision``); tests and
offline runs use local paths (``path``, optionally with ``gguf_file``). ``trust_remote_code``
is only ever true when the spec sets it for that model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rmxbench.errors import UserError
from rmxbench.spec.context import PACKAGE_PREFIX
from rmxbench.spec.schema import ModelRef

def resolve_path(path: str, spec_dir: str | Path | None = None) -> Path:
    """A spec ``path`` resolved by :func:`rmxbench.spec.context.resolve_spec_path` (``package:``,
    spec-relative, absolute), as an absolute path.

    Raises:
        UserError: if the resolved directory or file does not exist.
    """
    from rmxbench.pipeline.identity import resolve_model_path

    return resolve_model_path(path, spec_dir)


def hf_kwargs(ref: ModelRef, *, dtype: str = "auto", trust_remote_code: bool = False,
              spec_dir: str | Path | None = None) -> dict[str, Any]:
    """Return the ``from_pretrained`` keyword arguments for ``ref``.

    Keys: ``pretrained_model_name_or_path`` (hub id or absolute local dir), ``revision`` (hub
    only), ``gguf_file`` (if set), ``dtype`` (a string: ``auto``/``float32``/``bfloat16``/
    ``float16``), ``trust_remote_code``. GGUF weights are dequantised by transformers and must
    be loaded in a float dtype, so ``auto`` becomes ``float32`` for GGUF.
    """
    kw: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
    if ref.repo is not None:
        kw["pretrained_model_name_or_path"] = ref.repo
        kw["revision"] = ref.revision
    else:
        kw["pretrained_model_name_or_path"] = str(resolve_path(ref.path, spec_dir))
    if ref.gguf_file:
        kw["gguf_file"] = ref.gguf_file
        if dtype == "auto":
            dtype = "float32"
    kw["dtype"] = dtype
    return kw


def tokenizer_kwargs(ref: ModelRef, *, trust_remote_code: bool = False,
                     spec_dir: str | Path | None = None) -> dict[str, Any]:
    """``AutoTokenizer.from_pretrained`` kwargs for ``ref`` (honours ``ref.tokenizer``)."""
    kw = hf_kwargs(ref, trust_remote_code=trust_remote_code, spec_dir=spec_dir)
    kw.pop("dtype")
    if ref.tokenizer:
        tok = ref.tokenizer
        if tok.startswith(PACKAGE_PREFIX) or Path(tok).expanduser().exists():
            kw = {"pretrained_model_name_or_path": str(resolve_path(tok, spec_dir)),
                  "trust_remote_code": kw["trust_remote_code"]}
        else:
            kw = {"pretrained_model_name_or_path": tok, "trust_remote_code": kw["trust_remote_code"]}
    return kw


def load_model(ref: ModelRef, *, dtype: str = "auto", trust_remote_code: bool = False,
               spec_dir: str | Path | None = None, device: str | None = None):
    """Load ``(model, tokenizer)`` with transformers; the model is in eval mode.

    The tokenizer gets a pad token (EOS if it has none) and ``padding_side="left"`` (for batched
    generation). ``device`` defaults to CUDA when available, else CPU.

    Raises:
        UserError: the local path does not exist, or the hub cannot be reached for a hub ref.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = hf_kwargs(ref, dtype=dtype, trust_remote_code=trust_remote_code, spec_dir=spec_dir)
    name = kw.pop("pretrained_model_name_or_path")
    dt = kw.pop("dtype")
    torch_dtype = "auto" if dt == "auto" else getattr(torch, dt)
    try:
        tok = AutoTokenizer.from_pretrained(**tokenizer_kwargs(ref, trust_remote_code=trust_remote_code,
                                                               spec_dir=spec_dir))
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, **kw)
    except OSError as exc:
        raise UserError(f"could not load model {name!r}: {str(exc).splitlines()[0]}",
                        hint="hub models need network access; offline, point `model.path` at a local copy") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.eval()
    return model, tok
