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


def local_ref(folder: str | Path) -> ModelRef:
    """A :class:`ModelRef` of a local model folder (weights a stage built, e.g. a GRPO checkpoint)."""
    return ModelRef(path=str(Path(folder).resolve()))


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


#: Bump when :func:`gguf_as_folder` changes what it writes (the store key includes it).
GGUF_CONVERSION_VERSION = 1


def gguf_as_folder(ref: ModelRef, *, spec_dir: str | Path | None = None, store: Any | None = None,
                   trust_remote_code: bool = False) -> Path:
    """A local GGUF model as a transformers folder (safetensors + config + tokenizer) that vLLM loads.

    transformers dequantises the GGUF weights to float32 (as the HF backend does on every load);
    the folder is built once and cached in the artifact store under stage ``gguf_hf`` keyed by
    the model's :func:`~rmxbench.pipeline.identity.model_identity` (the GGUF file's sha256: content,
    not path, hashed through the store home's hash cache), so every later vLLM run reuses it. The GGUF
    quantizer that transformers attaches on load is detached before saving (it refuses to
    serialise a "quantized" model, although the weights are plain floats by then).

    Args:
        ref: a model reference with ``path`` and ``gguf_file``.
        store: the :class:`~rmxbench.pipeline.store.ArtifactStore` (default: ``$RMXBENCH_HOME``).
    Returns:
        The folder (``config.json``, ``model.safetensors``, tokenizer files).
    Raises:
        UserError: ``ref`` is not a local GGUF file, or the file is missing.
    """
    from rmxbench.pipeline.identity import HashCache, model_identity
    from rmxbench.pipeline.store import ArtifactStore

    if ref.gguf_file is None or ref.path is None:
        raise UserError("only a local GGUF model (`model.path` + `model.gguf_file`) can be converted to a folder",
                        hint="for a hub GGUF repo, download the file and point `model.path` at its folder")
    src = resolve_path(ref.path, spec_dir)
    gguf = src / ref.gguf_file
    if not gguf.is_file():
        raise UserError(f"GGUF file {str(gguf)!r} does not exist", hint="fix `model.gguf_file` in the spec")
    store = store if store is not None else ArtifactStore()
    ident = model_identity(ref, spec_dir=Path(spec_dir) if spec_dir is not None else None,
                           hashes=HashCache.for_home(store.home))
    key = store.key("gguf_hf", gguf_sha256=ident["sha256"], code=GGUF_CONVERSION_VERSION)

    def convert(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw = {"gguf_file": ref.gguf_file, "trust_remote_code": trust_remote_code}
        model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32, **kw)
        model.hf_quantizer = None  # weights are dequantised floats; transformers still refuses to save otherwise
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(str(src), **kw).save_pretrained(tmp)

    return store.build("gguf_hf", key, convert, meta={"gguf": str(gguf)})
