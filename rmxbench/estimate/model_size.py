"""How big a model is, without loading it: parameter count, bytes per parameter and the architecture
numbers the time model needs (layers, hidden size, key/value width).

Sources, first found wins (:func:`model_size`):

1. **local weights** (``path:``, ``package:``, a GGUF file): the safetensors headers (tensor shapes,
   summed by :func:`huggingface_hub.get_local_safetensors_metadata`, nothing loaded), else the GGUF
   metadata and tensor table (the ``gguf`` package's ``GGUFReader``), else ``config.json`` alone
   (parameters counted from the architecture: embeddings, attention, MLP, norms);
2. **hub models**: the store's cache ``<home>/model_meta/<key>.json`` (written by an earlier online
   look-up), else the local Hugging Face cache (a snapshot of that revision already downloaded), else
   — only when online look-ups are allowed (``--online`` / ``RMXBENCH_ONLINE=1``, never with
   ``HF_HUB_OFFLINE=1``) — the hub's safetensors metadata and ``config.json``, then cached in the store
   so later dry-runs are offline;
3. the spec's ``params`` field on the model reference (:class:`rmxbench.spec.schema.ModelRef`);
4. otherwise the size is unknown and the estimate says so instead of guessing.

When only the parameter count is known (a spec ``params``), the architecture is assumed
(:func:`assumed_architecture`): grouped-query attention with 8 KV heads × 128 (the layout of
Llama-3, Mistral-7B, Qwen3 and Qwen2.5-32B), 28 / 48 / 64 layers below 10B / 20B / above, and the
hidden size that gives the parameter count (N ≈ 12 · layers · hidden², Kaplan et al. 2020 §2.1). For
models with fewer KV heads (Qwen2.5-1.5B/7B: 2/4) that overstates the KV cache, so the estimate errs
towards more hours; the estimate's basis says the architecture was assumed.

Torch-free. ``huggingface_hub`` and ``gguf`` are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rmxbench.errors import UserError

#: Bytes per parameter of a dtype name (spec ``dtype`` or a safetensors dtype).
DTYPE_BYTES = {"float32": 4.0, "F32": 4.0, "float16": 2.0, "F16": 2.0, "bfloat16": 2.0, "BF16": 2.0,
               "F8_E4M3": 1.0, "F8_E5M2": 1.0, "I8": 1.0, "U8": 1.0}
#: KV width (KV heads × head dim) assumed when only the parameter count is known (module doc).
ASSUMED_KV_DIM = 1024
#: Environment switch for hub metadata look-ups (the ``--online`` flag sets it).
ONLINE_ENV = "RMXBENCH_ONLINE"
META_DIR = "model_meta"


@dataclass(frozen=True)
class ModelSize:
    """The size of one model's weights.

    Attributes:
        params: parameters (embeddings counted once when tied).
        dtype_bytes: bytes per parameter as stored (safetensors dtype; GGUF: 2, its dequantised bf16 size).
        layers, hidden, kv_dim (KV heads × head dim), vocab: architecture, None when unknown.
        source: where the numbers come from (shown in the estimate's basis).
    """

    params: float
    dtype_bytes: float = 2.0
    layers: int | None = None
    hidden: int | None = None
    kv_dim: int | None = None
    vocab: int | None = None
    source: str = ""

    def weight_bytes(self, dtype: str = "auto") -> float:
        """Bytes of the weights in memory under spec dtype ``dtype`` (``auto``: as stored)."""
        return self.params * DTYPE_BYTES.get(dtype, self.dtype_bytes)

    @property
    def arch_known(self) -> bool:
        return bool(self.layers and self.hidden and self.kv_dim)

    def kv_bytes_per_token(self, dtype: str = "auto") -> float:
        """KV-cache bytes one token occupies (K and V of every layer; the assumed architecture when unknown)."""
        b = DTYPE_BYTES.get(dtype, self.dtype_bytes)
        layers, _, kv = (self.layers, self.hidden, self.kv_dim) if self.arch_known else assumed_architecture(self.params)
        return 2.0 * layers * kv * b

    def attention_flops_per_token(self, context: float) -> float:
        """Attention score and value FLOPs of one token attending to ``context`` tokens (forward):
        4 × layers × hidden × context (QKᵀ and AV)."""
        layers, hidden, _ = (self.layers, self.hidden, self.kv_dim) if self.arch_known else assumed_architecture(self.params)
        return 4.0 * layers * hidden * context

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ModelSize":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def assumed_architecture(params: float) -> tuple[int, int, int]:
    """``(layers, hidden, kv_dim)`` assumed for a model known only by its parameter count (module doc)."""
    layers = 28 if params < 10e9 else (48 if params < 20e9 else 64)
    hidden = int(round((params / (12.0 * layers)) ** 0.5 / 64.0)) * 64 or 64
    return layers, hidden, ASSUMED_KV_DIM


def count_from_config(cfg: dict) -> float | None:
    """Parameters of a decoder-only transformer from its ``config.json`` (Llama/Qwen/Mistral layout:
    embeddings V×H (+ an untied head), per layer Q/K/V/O projections with biases where the family has
    them, a gated MLP 3×H×I, two norms; a final norm). None when a needed field is missing."""
    try:
        h, n_layers, v = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]), int(cfg["vocab_size"])
        inter = int(cfg.get("intermediate_size") or 4 * h)
        heads = int(cfg["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        return None
    head_dim = int(cfg.get("head_dim") or h // heads)
    kv = int(cfg.get("num_key_value_heads") or heads) * head_dim
    q = heads * head_dim
    bias = (q + 2 * kv) if cfg.get("model_type") in ("qwen2",) or cfg.get("attention_bias") else 0
    per_layer = h * q + 2 * h * kv + q * h + bias + 3 * h * inter + 2 * h
    head = 0 if cfg.get("tie_word_embeddings", False) else v * h
    return float(v * h + head + n_layers * per_layer + h)


def _arch(cfg: dict) -> dict[str, Any]:
    try:
        h, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        head_dim = int(cfg.get("head_dim") or h // heads)
        return {"layers": int(cfg["num_hidden_layers"]), "hidden": h,
                "kv_dim": int(cfg.get("num_key_value_heads") or heads) * head_dim, "vocab": int(cfg.get("vocab_size") or 0) or None}
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return {}


def _from_folder(folder: Path) -> ModelSize | None:
    """Size of a transformers model folder: safetensors headers (+ config.json architecture), else config.json."""
    cfg = {}
    if (folder / "config.json").is_file():
        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cfg = {}
    arch = _arch(cfg)
    if (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file():
        from huggingface_hub import get_local_safetensors_metadata

        try:
            meta = get_local_safetensors_metadata(folder)
        except Exception as exc:  # noqa: BLE001 - a malformed header is the user's file
            raise UserError(f"{folder}: cannot read the safetensors headers ({exc})") from None
        counts = meta.parameter_count
        total = float(sum(counts.values()))
        top = max(counts, key=counts.get) if counts else "BF16"
        return ModelSize(total, DTYPE_BYTES.get(top, 2.0), **arch,
                         source=f"safetensors headers of {folder.name}/ ({total / 1e9:.3g}B parameters)")
    n = count_from_config(cfg) if cfg else None
    if n:
        return ModelSize(n, DTYPE_BYTES.get(str(cfg.get("torch_dtype") or cfg.get("dtype")), 2.0), **arch,
                         source=f"config.json of {folder.name}/ (parameters counted from the architecture)")
    return None


def _from_gguf(path: Path) -> ModelSize:
    """Size of a GGUF file: its tensor table (element counts) and ``<arch>.*`` metadata."""
    try:
        import gguf
    except ImportError:
        raise UserError("reading a GGUF model's size needs the Python package 'gguf'",
                        hint="pip install gguf (rmxbench depends on it)") from None
    r = gguf.GGUFReader(str(path))

    def field(name: str) -> Any:
        f = r.fields.get(name)
        if f is None:
            return None
        try:
            return f.contents()
        except Exception:  # noqa: BLE001 - older gguf without contents()
            return None

    arch = field("general.architecture") or "llama"
    total = float(sum(int(t.n_elements) for t in r.tensors))
    heads, kv_heads = field(f"{arch}.attention.head_count"), field(f"{arch}.attention.head_count_kv")
    hidden, layers = field(f"{arch}.embedding_length"), field(f"{arch}.block_count")
    kv_dim = int(kv_heads or heads) * (int(hidden) // int(heads)) if hidden and heads else None
    return ModelSize(total, 2.0, layers=int(layers) if layers else None, hidden=int(hidden) if hidden else None,
                     kv_dim=kv_dim, vocab=field(f"{arch}.vocab_size"),
                     source=f"GGUF metadata of {path.name} ({total / 1e9:.3g}B parameters)")


def online_allowed() -> bool:
    """Hub look-ups only with ``RMXBENCH_ONLINE=1`` and never with ``HF_HUB_OFFLINE`` set."""
    return os.environ.get(ONLINE_ENV, "") not in ("", "0") and os.environ.get("HF_HUB_OFFLINE", "") in ("", "0")


def cache_path(home: Path, key: str) -> Path:
    """The store's cache file of one model's size (``<home>/model_meta/<key>.json``)."""
    return Path(home) / META_DIR / f"{key}.json"


def read_cached(home: Path | None, key: str) -> ModelSize | None:
    if home is None:
        return None
    p = cache_path(home, key)
    try:
        return ModelSize.from_json(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_cached(home: Path | None, key: str, size: ModelSize) -> None:
    """Remember a size in the store (best effort: a read-only store just means no memory)."""
    if home is None:
        return
    from rmxbench.results import atomic_write_json

    try:
        atomic_write_json(cache_path(home, key), size.to_json())
    except OSError:  # pragma: no cover - read-only home
        pass


def _hub_cached_snapshot(repo: str, revision: str) -> Path | None:
    """The local Hugging Face cache's snapshot folder of ``repo@revision`` if its config.json is there."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    hit = try_to_load_from_cache(repo, "config.json", revision=revision)
    return Path(hit).parent if isinstance(hit, str) else None


def hub_size(repo: str, revision: str, *, home: Path | None, key: str) -> ModelSize | None:
    """Size of a hub model (module doc, source 2). Online only when :func:`online_allowed`.

    Raises:
        UserError: an online look-up failed (names the repo and the error).
    """
    hit = read_cached(home, key)
    if hit is not None:
        return hit
    snap = _hub_cached_snapshot(repo, revision)
    if snap is not None:
        size = _from_folder(snap)
        if size is not None:
            size = ModelSize(**{**size.to_json(), "source": f"local Hugging Face cache of {repo}@{revision[:12]}"})
            write_cached(home, key, size)
            return size
    if not online_allowed():
        return None
    from huggingface_hub import get_safetensors_metadata, hf_hub_download

    try:
        meta = get_safetensors_metadata(repo, revision=revision)
        cfg = json.loads(Path(hf_hub_download(repo, "config.json", revision=revision)).read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - network, auth, missing files: one clear line
        raise UserError(f"could not read the size of {repo}@{revision} from the hub: {str(exc).splitlines()[0]}",
                        hint="run without --online (the estimate then says 'size unknown'), or set `params` "
                             "on the model reference in the spec") from None
    counts = meta.parameter_count
    top = max(counts, key=counts.get) if counts else "BF16"
    size = ModelSize(float(sum(counts.values())), DTYPE_BYTES.get(top, 2.0), **_arch(cfg),
                     source=f"hub metadata of {repo}@{revision[:12]} (cached in the store)")
    write_cached(home, key, size)
    return size


def local_size(path: Path, gguf_file: str | None, *, home: Path | None, key: str | None) -> ModelSize | None:
    """Size of local weights (module doc, source 1); a GGUF's result is cached under ``key`` (reading
    its metadata takes seconds)."""
    if gguf_file or path.suffix == ".gguf":
        if key is not None and (hit := read_cached(home, key)) is not None:
            return hit
        size = _from_gguf(path / gguf_file if gguf_file and path.is_dir() else path)
        if key is not None:
            write_cached(home, key, size)
        return size
    return _from_folder(path) if path.is_dir() else None


def model_size(ref: Any, *, spec_dir: Path | None, home: Path | None, key: str | None = None) -> ModelSize | None:
    """The size of the weights ``ref`` names (:class:`rmxbench.spec.schema.ModelRef`), or None (unknown).

    Args:
        ref: the model reference (``repo``+``revision``, or ``path`` [+ ``gguf_file``]; ``params``).
        spec_dir: folder relative paths resolve against.
        home: the artifact store (cache of hub and GGUF look-ups).
        key: the model's identity key (:func:`rmxbench.pipeline.identity.model_key`) naming the cache entry.
    Raises:
        UserError: unreadable weights files, or a failed online look-up.
    """
    size = None
    if ref.path is not None:
        from rmxbench.pipeline.identity import resolve_model_path

        size = local_size(resolve_model_path(ref.path, spec_dir), ref.gguf_file, home=home, key=key)
    elif ref.repo is not None and key is not None:
        size = hub_size(ref.repo, ref.revision, home=home, key=key)
    params = getattr(ref, "params", None)
    if size is None and params:
        size = ModelSize(float(params), 2.0, source=f"spec field `params: {params:g}` (architecture assumed)")
    return size
