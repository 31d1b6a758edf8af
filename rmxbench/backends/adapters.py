"""Adapter pre-flight: a PEFT adapter is compared with the base model's modules and with what the
serving backend can do BEFORE anything is scored with it.

Why (issue 18, item 5; PEFT PR #2118, vLLM #9280, LlamaFactory #9545): PEFT loads an adapter's
tensors with ``strict=False`` and vLLM matches them by their last name component, so an adapter
whose tensor names carry another prefix (saved from another model class), that was trained for
another architecture or size, or whose file is incomplete, is served as the plain base model (or
half of the adapter) without an error, and its completions are recorded under the adapter's hash.
Other adapters change the *base* weights when loaded (PiSSA/OLoRA/CorDA/LoftQ initialisations,
``bias: all``), which a session that serves the base and several adapters of one model cannot undo.
And vLLM refuses features transformers + PEFT serve (``modules_to_save``, DoRA, LoRA on embedding
layers for most architectures) with its own message, after the engine has started.

:func:`preflight` reads ``adapter_config.json`` and the tensor *names and shapes* from the weights
file's header and checks, for every backend:

1. the config is a PEFT LoRA config (``peft_type: LORA``, positive ``r``/``rank_pattern``,
   ``target_modules`` present) that does not rewrite the base weights;
2. every tensor has PEFT's saved layout (``base_model.model.<module>.lora_A.weight`` ...) and names a
   module of the base model (:class:`BaseModules`: ``named_modules`` of the loaded model, or of a
   meta-device skeleton built from the model's config for vLLM); a common prefix difference is named;
3. ``target_modules`` selects exactly the modules the tensors hold (PEFT's own matcher,
   ``peft.tuners.tuners_utils.check_target_module_exists``): tensors it does not select would be
   dropped, selected modules without tensors mean an incomplete file;
4. shapes: ``lora_A`` is ``[r_m, in]`` and ``lora_B`` ``[out, r_m]`` of the base module, ``r_m`` is the
   rank ``r``/``rank_pattern`` gives that module (PEFT's ``get_pattern_key``), full copies
   (``modules_to_save``) have the base module's shape (a resized vocabulary is named);
5. every value is finite (one pass over the data: a file with an intact header and garbage data,
   or a diverged training, would otherwise be scored as "no answer" under the adapter's hash);

then what the serving backend can do (:class:`Rules`: module kinds LoRA may target, whether
``modules_to_save`` is served, the engine's LoRA rank, and the serving library's own verdict on the
config, e.g. vLLM's ``PEFTHelper.validate_legal``). Every refusal is a
:class:`~rmxbench.errors.UserError` naming the file, what is wrong and what would work.

:func:`load_peft` / :func:`unload_peft` are the one way rmxbench puts a PEFT adapter on a torch
model and takes it off again (the HF session, the analyses): pre-flight first, and unloading that
restores the base modules ``modules_to_save`` replaced (PEFT's ``unload()`` keeps the adapter's
copies in place: the base would silently change).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rmxbench.errors import UserError

CONFIG_FILE = "adapter_config.json"
#: Weight files PEFT's ``save_pretrained`` writes (safetensors by default), in the order PEFT reads them.
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
#: Prefix of every tensor name PEFT saves (the ``PeftModel`` → ``LoraModel`` → base model path).
PEFT_PREFIX = "base_model.model."
#: ``init_lora_weights`` values whose adapters change the base weights when PEFT loads them.
BASE_REWRITING_INITS = ("pissa", "olora", "corda", "loftq")
#: Module kinds PEFT's LoRA can target (``kind`` of :class:`Module`).
LORA_KINDS = frozenset({"linear", "embedding", "conv1d"})
CONVERT_HINT = ("convert it into a plain LoRA adapter with PEFT (`save_pretrained(..., "
                "path_initial_model_for_weight_conversion=...)`), or merge it into the base "
                "(`merge_and_unload()` + `save_pretrained`) and evaluate the merged folder as a model")


@dataclass(frozen=True)
class Module:
    """One module of the base model: ``kind`` (``linear``/``embedding``/``conv1d``/``other``) and its
    ``weight`` shape (Linear ``[out, in]``, transformers Conv1D ``[in, out]``, Embedding ``[num, dim]``)."""

    kind: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        s = self.shape
        if self.kind == "linear" and len(s) == 2:
            return f"Linear(in={s[1]}, out={s[0]})"
        if self.kind == "conv1d" and len(s) == 2:
            return f"Conv1D(in={s[0]}, out={s[1]})"
        if self.kind == "embedding" and len(s) == 2:
            return f"Embedding({s[0]}, {s[1]})"
        return f"{self.kind} {list(s)}"

    def lora_shapes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """``(lora_A shape, lora_B shape)`` PEFT gives this module at ``rank`` (None: not LoRA-able)."""
        s = self.shape
        if len(s) != 2 or self.kind not in LORA_KINDS:
            return None
        out, inp = (s[1], s[0]) if self.kind in ("conv1d", "embedding") else (s[0], s[1])
        return (rank, inp), (out, rank)


@dataclass(frozen=True)
class BaseModules:
    """The base model's module names an adapter's tensors are matched against.

    Attributes:
        modules: module name (as in ``named_modules()``, e.g. ``model.layers.0.self_attn.q_proj``)
            -> :class:`Module`, for every module with a ``weight``.
        architecture: e.g. ``Qwen2ForCausalLM`` (for messages).
        output: name of the output embedding (``lm_head``), or None.
        tied: input and output embeddings share one weight (``tie_word_embeddings``).
    """

    modules: dict[str, Module]
    architecture: str
    output: str | None = None
    tied: bool = False

    @classmethod
    def of_model(cls, model: Any) -> "BaseModules":
        """The modules of a transformers model (loaded, or a meta-device skeleton: only names and
        shapes are read). A ``PeftModel`` is read through its base model."""
        import torch

        try:
            from transformers.pytorch_utils import Conv1D
        except ImportError:  # pragma: no cover
            Conv1D = ()  # type: ignore[assignment]
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        mods, output = {}, None
        for name, m in model.named_modules():
            w = getattr(m, "weight", None)
            if not isinstance(w, torch.Tensor):
                continue
            kind = ("linear" if isinstance(m, torch.nn.Linear) else "embedding" if isinstance(m, torch.nn.Embedding)
                    else "conv1d" if Conv1D and isinstance(m, Conv1D) else "other")
            mods[name] = Module(kind, tuple(int(x) for x in w.shape))
            if m is out_emb:
                output = name
        cfg = getattr(model, "config", None)
        arch = (getattr(cfg, "architectures", None) or [type(model).__name__])[0]
        tied = bool(getattr(cfg, "tie_word_embeddings", False))
        if cfg is not None and hasattr(cfg, "get_text_config"):
            tied = tied or bool(getattr(cfg.get_text_config(), "tie_word_embeddings", False))
        return cls(mods, arch, output, tied)

    @classmethod
    def of_config(cls, config: Any, *, trust_remote_code: bool = False) -> "BaseModules":
        """The modules of the causal LM a transformers ``config`` describes, from a meta-device
        skeleton (``accelerate.init_empty_weights``: no weights allocated or read; measured by
        ``benchmarks/bench_preflight.py``)."""
        from accelerate import init_empty_weights
        from transformers import AutoModelForCausalLM

        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
        return cls.of_model(model)


@dataclass(frozen=True)
class Rules:
    """What one serving backend can do with an adapter.

    Attributes:
        backend: its name, for messages (``hf``/``vllm``).
        lora_kinds: module kinds LoRA may target.
        lora_on_output: LoRA on the output embedding (``lm_head``) is served.
        extra_modules: module name suffixes served whatever their kind (vLLM: the model class's
            ``embedding_modules``).
        modules_to_save: full module copies (``modules_to_save``) are served.
        trainable_tokens: ``trainable_token_indices`` (PEFT's TrainableTokens) are served.
        max_rank: the engine's LoRA rank (None: any).
        refuse: the serving library's own verdict on the config: a reason, or None.
        instead: what would serve an adapter this backend refuses (a hint).
        rank_hint: how to raise ``max_rank``.
    """

    backend: str
    lora_kinds: frozenset[str] = LORA_KINDS
    lora_on_output: bool = True
    extra_modules: frozenset[str] = frozenset()
    modules_to_save: bool = True
    trainable_tokens: bool = True
    max_rank: int | None = None
    refuse: Callable[[dict], str | None] | None = field(default=None, compare=False)
    instead: str = ""
    rank_hint: str = ""

    def serves_lora_on(self, name: str, module: Module, base: BaseModules) -> bool:
        if name.rsplit(".", 1)[-1] in self.extra_modules:
            return True
        if name == base.output and not self.lora_on_output:
            return False
        return module.kind in self.lora_kinds


#: transformers + PEFT (the HF session and the analyses): every LoRA PEFT loads.
HF_RULES = Rules("hf")


@dataclass(frozen=True)
class AdapterInfo:
    """A pre-flown adapter.

    Attributes:
        path: the adapter folder (resolved).
        config: ``adapter_config.json``.
        weights: the weights file read.
        rank: the largest LoRA rank of its tensors (what an engine must hold).
        modules: base modules carrying LoRA, sorted.
        modules_to_save: base modules the adapter replaces by full copies, sorted.
    """

    path: Path
    config: dict
    weights: Path
    rank: int
    modules: tuple[str, ...]
    modules_to_save: tuple[str, ...]


def read_config(adapter_dir: str | Path) -> dict:
    """``adapter_config.json`` of ``adapter_dir`` as a dict: a PEFT LoRA config (``peft_type: LORA``)
    whose ``r`` and every ``rank_pattern`` value are positive integers.

    Raises:
        UserError: no such file, not JSON, not an object, not LoRA, or bad ``r``/``rank_pattern``.
    """
    f = Path(adapter_dir) / CONFIG_FILE
    if not f.is_file():
        raise UserError(f"{adapter_dir}: no {CONFIG_FILE}: not a PEFT adapter folder",
                        hint="pass the folder PEFT's `save_pretrained` wrote (it holds adapter_config.json "
                             "and adapter_model.safetensors)")
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{f}: not readable JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{f}: must hold a JSON object, got {type(cfg).__name__}")
    ptype = cfg.get("peft_type")
    if ptype != "LORA":
        raise UserError(f"{f}: peft_type {ptype!r}: rmxbench serves LoRA adapters (peft_type 'LORA') only",
                        hint="merge the adapter into its base with PEFT (`merge_and_unload()` + `save_pretrained`) "
                             "and evaluate the merged folder as a model")
    ranks = [cfg.get("r"), *(cfg.get("rank_pattern") or {}).values()]
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in ranks):
        raise UserError(f"{f}: `r` and `rank_pattern` values must be positive integers, got "
                        f"r={cfg.get('r')!r}, rank_pattern={cfg.get('rank_pattern') or {}}")
    return cfg


def tensor_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of an adapter weights file, read from the safetensors header (no
    tensor data is read); a ``.bin`` file (older PEFT) is loaded with ``weights_only``.

    Raises:
        UserError: an empty, truncated or corrupt file.
    """
    try:
        if weights.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as f:
                return {k: tuple(int(x) for x in f.get_slice(k).get_shape()) for k in f.keys()}
        import torch

        sd = torch.load(str(weights), map_location="cpu", weights_only=True)  # adapters are small
        return {k: tuple(v.shape) for k, v in sd.items()}
    except Exception as exc:  # safetensors_rust.SafetensorError, pickle/zip errors: a damaged file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{weights}: not a readable adapter weights file ({type(exc).__name__}: {first}); "
                        f"{weights.stat().st_size if weights.exists() else 0} bytes",
                        hint="the file is empty, truncated or corrupt: copy it again, or re-save the adapter "
                             "with PEFT's `save_pretrained`") from None


def non_finite_tensors(weights: Path) -> list[str]:
    """Names of the tensors of an adapter weights file that hold a NaN or an infinite value (one
    pass over the data: LoRA adapters are small, e.g. ~80 MB for rank 16 on a 32B model). A file
    whose header is intact but whose data is garbage or whose training diverged has such tensors,
    and would otherwise be scored (as "no answer" everywhere) under the adapter's hash.

    Raises:
        UserError: the file cannot be read (as :func:`tensor_shapes`).
    """
    import torch

    try:
        if weights.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as f:
                return [k for k in f.keys() if not bool(torch.isfinite(f.get_tensor(k)).all())]
        sd = torch.load(str(weights), map_location="cpu", weights_only=True)
        return [k for k, v in sd.items() if not bool(torch.isfinite(v).all())]
    except Exception as exc:  # noqa: BLE001 - a damaged file: the same one-screen error as the header's
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{weights}: not a readable adapter weights file ({type(exc).__name__}: {first})",
                        hint="the file is truncated or corrupt: copy it again, or re-save the adapter with "
                             "PEFT's `save_pretrained`") from None


def weights_file(adapter_dir: Path) -> Path:
    """The adapter's weights file (:data:`WEIGHT_FILES`, safetensors first).

    Raises:
        UserError: none of them exists.
    """
    for name in WEIGHT_FILES:
        if (adapter_dir / name).is_file():
            return adapter_dir / name
    raise UserError(f"{adapter_dir}: no adapter weights ({' or '.join(WEIGHT_FILES)})",
                    hint="copy the adapter folder completely (PEFT's `save_pretrained` writes adapter_model.safetensors)")


def _lora_config(adapter_dir: Path) -> Any:
    """PEFT's own ``LoraConfig`` of the folder (PEFT validates its fields)."""
    from peft import LoraConfig

    try:
        return LoraConfig.from_pretrained(str(adapter_dir))
    except (TypeError, ValueError, KeyError) as exc:
        raise UserError(f"{adapter_dir / CONFIG_FILE}: PEFT rejects this LoRA config: "
                        f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0]}") from None


def _check_config(adapter_dir: Path, cfg: dict) -> None:
    """Backend-independent config rules (module doc, item 1)."""
    f = adapter_dir / CONFIG_FILE
    if cfg.get("target_parameters"):
        raise UserError(f"{f}: LoRA on parameters (`target_parameters`) is not supported by rmxbench's sessions",
                        hint="merge the adapter into its base and evaluate the merged folder as a model")
    init = cfg.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(BASE_REWRITING_INITS):
        raise UserError(f"{f}: init_lora_weights={init!r}: PEFT rewrites the base weights when it loads this "
                        "adapter, so the base model and every other adapter served with it would be scored on "
                        "changed weights", hint=CONVERT_HINT)
    if cfg.get("bias", "none") != "none":
        raise UserError(f"{f}: bias={cfg['bias']!r}: the adapter overwrites the base model's biases, which "
                        "unloading it does not undo (the base and other adapters would be scored on them)",
                        hint="merge the adapter into its base (`merge_and_unload()` + `save_pretrained`) and "
                             "evaluate the merged folder as a model; adapters trained with `bias: none` load as is")


def _split(name: str) -> tuple[str, str] | None:
    """``(module, part)`` of a PEFT-saved tensor name without :data:`PEFT_PREFIX`; part is one of
    ``A``/``B`` (LoRA), ``eA``/``eB`` (embedding LoRA), ``Bbias`` (``lora_bias``), ``mag`` (DoRA),
    ``tokens`` (TrainableTokens), ``base`` (a saved base embedding), ``weight``/``bias`` (a full copy)."""
    for suffix, part in ((".lora_A.weight", "A"), (".lora_B.weight", "B"), (".lora_B.bias", "Bbias"),
                         (".lora_embedding_A", "eA"), (".lora_embedding_B", "eB"), (".lora_magnitude_vector", "mag"),
                         (".token_adapter.trainable_tokens_delta", "tokens"), (".base_layer.weight", "base"),
                         (".weight", "weight"), (".bias", "bias")):
        if name.endswith(suffix):
            module = name[: -len(suffix)]
            if part in ("weight", "bias", "base") and ".lora_" in module:  # e.g. `.lora_A.default.weight`
                return None
            return module, part
    return None


def _prefix_hint(missing: list[str], base: BaseModules) -> str:
    """A hint naming the prefix that separates the adapter's module names from the base's."""
    names = base.modules
    for m in missing:
        parts = m.split(".")
        for k in range(1, len(parts)):
            if ".".join(parts[k:]) in names:
                extra = ".".join(parts[:k]) + "."
                return (f"its module names carry the prefix `{extra}` that the base model's lack (adapter "
                        f"`{m}`, base `{'.'.join(parts[k:])}`): it was saved from another model class. Re-save it "
                        f"from this base model, or rename its tensors (drop `{extra}` after `{PEFT_PREFIX}`)")
        for b in names:
            if b.endswith("." + m):
                extra = b[: -len(m)]
                return (f"the base model's module names carry the prefix `{extra}` that the adapter's lack (adapter "
                        f"`{m}`, base `{b}`): it was saved from another model class. Re-save it from this base "
                        f"model, or rename its tensors (insert `{extra}` after `{PEFT_PREFIX}`)")
    example = next((n for n in names if n.endswith(("q_proj", "c_attn", "query_key_value", "qkv_proj"))),
                   next(iter(names), "?"))
    return (f"it was trained for another architecture; evaluate it on the model it was trained on "
            f"(this base's modules look like `{example}`)")


def _trained_on(cfg: dict) -> str:
    b = cfg.get("base_model_name_or_path")
    return f" (adapter_config.json: trained on {b!r})" if b else ""


def preflight(adapter_dir: str | Path, base: BaseModules | None, rules: Rules = HF_RULES) -> AdapterInfo:
    """Check that ``adapter_dir`` applies to ``base`` as it claims, that its tensors hold finite
    values and that ``rules``' backend serves it (see module doc), reading the config, the weights
    file's header and, once, its values.

    Args:
        adapter_dir: a PEFT LoRA adapter folder.
        base: the base model's modules (None: unknown, e.g. a skeleton could not be built; only the
            config and the tensor layout are checked).
        rules: the serving backend (:data:`HF_RULES`, or the vLLM session's).
    Returns:
        :class:`AdapterInfo` (``rank``: the largest LoRA rank of its tensors).
    Raises:
        UserError: what is wrong, naming the file, and what would work.
    """
    d = Path(adapter_dir).resolve()
    cfg = read_config(d)
    _check_config(d, cfg)
    wfile = weights_file(d)
    shapes = tensor_shapes(wfile)
    if not shapes:
        raise UserError(f"{wfile}: holds no tensors", hint="re-save the adapter with PEFT's `save_pretrained`")
    bad = [k for k in shapes if not k.startswith(PEFT_PREFIX) or _split(k[len(PEFT_PREFIX):]) is None]
    if bad:
        raise UserError(f"{wfile}: {len(bad)} of {len(shapes)} tensor names are not in the layout PEFT's "
                        f"`save_pretrained` writes (`{PEFT_PREFIX}<module>.lora_A.weight`, ...), e.g. `{bad[0]}`; "
                        "PEFT would skip them", hint="save the adapter with PEFT's `save_pretrained` (a raw "
                        "`state_dict()` keeps adapter names such as `.default.` in the keys)")
    lcfg = _lora_config(d)
    mts = [str(m) for m in (cfg.get("modules_to_save") or [])]
    parsed = [(k, *_split(k[len(PEFT_PREFIX):])) for k in shapes]  # type: ignore[misc]
    lora: dict[str, dict[str, tuple[int, ...]]] = {}
    saved: dict[str, dict[str, tuple[int, ...]]] = {}
    tokens = []
    for key, module, part in parsed:
        if part in ("weight", "bias"):
            if not any(module == m or module.endswith("." + m) for m in mts):
                raise UserError(f"{wfile}: tensor `{key}` is a full module weight, but `modules_to_save` "
                                f"({mts or 'none'}) does not name `{module}`", hint="re-save the adapter with "
                                "PEFT's `save_pretrained`, or add the module to `modules_to_save`")
            saved.setdefault(module, {})[part] = shapes[key]
        elif part == "tokens":
            tokens.append(module)
        else:
            lora.setdefault(module, {})[part] = shapes[key]
    if lcfg.target_modules is None:
        leaves = sorted({m.rsplit(".", 1)[-1] for m in lora})
        raise UserError(f"{d / CONFIG_FILE}: no `target_modules`: which modules the LoRA applies to is undefined",
                        hint=f"add `\"target_modules\": {json.dumps(leaves)}` (the modules its tensors hold)")
    if base is not None:
        _check_modules(d, wfile, cfg, lcfg, base, lora, saved, tokens)
    broken = non_finite_tensors(wfile)
    if broken:
        raise UserError(f"{wfile}: {len(broken)} of {len(shapes)} tensors hold NaN or infinite values, e.g. "
                        f"`{broken[0]}`", hint="the file is damaged (copy it again) or the training diverged "
                        "(retrain it; a ReasonMaxxer adapter's train_log.json shows its loss)")
    rank = max([s["A"][0] if "A" in s else s["eA"][0] for s in lora.values() if "A" in s or "eA" in s] or [0])
    info = AdapterInfo(d, cfg, wfile, rank, tuple(sorted(lora)), tuple(sorted(saved)))
    _check_rules(info, base, rules, tokens)
    return info


def _check_modules(d: Path, wfile: Path, cfg: dict, lcfg: Any, base: BaseModules,
                   lora: dict[str, dict], saved: dict[str, dict], tokens: list[str]) -> None:
    """Module names, target selection and shapes against the base (module doc, items 2-4)."""
    from peft.tuners.tuners_utils import check_target_module_exists
    from peft.utils.other import get_pattern_key

    names = base.modules
    named = {*lora, *saved, *tokens}
    missing = sorted(m for m in named if m not in names)
    if missing:
        raise UserError(f"{d}: {len(missing)} of the {len(named)} modules its tensors name are not in "
                        f"the base model ({base.architecture}), e.g. `{missing[0]}`{_trained_on(cfg)}; PEFT and vLLM "
                        "would skip them and score the base model's completions under the adapter's hash",
                        hint=_prefix_hint(missing, base))
    if lcfg.target_modules == "all-linear":
        selected = {n for n, m in names.items() if m.kind == "linear" and n != base.output}
    else:
        selected = {n for n, m in names.items() if m.kind in LORA_KINDS and bool(check_target_module_exists(lcfg, n))}
    unselected = sorted(set(lora) - selected)
    if unselected:
        raise UserError(f"{d}: it holds LoRA tensors for {len(unselected)} modules that its `target_modules` "
                        f"({cfg.get('target_modules')}) does not select, e.g. `{unselected[0]}`; PEFT would drop them",
                        hint="fix `target_modules` in adapter_config.json to name the modules the tensors hold")
    absent = sorted(selected - set(lora) - set(saved))
    if absent:
        raise UserError(f"{d}: `target_modules` ({cfg.get('target_modules')}) selects {len(absent)} modules of the base "
                        f"({base.architecture}) that have no LoRA tensors in {wfile.name}, e.g. `{absent[0]}`: the "
                        f"file is incomplete or the adapter was trained for another model{_trained_on(cfg)}",
                        hint="copy the adapter again, or evaluate it on the model it was trained on")
    for module, parts in sorted(lora.items()):
        base_mod = names[module]
        pattern = get_pattern_key(list((cfg.get("rank_pattern") or {}).keys()), module)
        want_r = (cfg.get("rank_pattern") or {}).get(pattern, cfg["r"])
        exp = base_mod.lora_shapes(want_r)
        a, b = ("eA", "eB") if base_mod.kind == "embedding" else ("A", "B")
        if exp is None or a not in parts or b not in parts:
            raise UserError(f"{d}: module `{module}` ({base_mod.describe()}) needs both LoRA tensors "
                            f"(`{a}`/`{b}`), found {sorted(parts)}", hint="re-save the adapter with PEFT's `save_pretrained`")
        for part, want, r_axis in ((a, exp[0], 0), (b, exp[1], 1)):
            got = parts[part]
            if got == want:
                continue
            rank_only = len(got) == 2 and got[1 - r_axis] == want[1 - r_axis]  # only the rank differs
            given = "`r`" + (f" via rank_pattern[{pattern!r}]" if pattern in (cfg.get("rank_pattern") or {}) else "")
            raise UserError(f"{d}: tensor `{PEFT_PREFIX}{module}` ({part}) has shape {list(got)}, but the base module is "
                            f"{base_mod.describe()}, which at rank {want_r} takes {list(want)}"
                            + (f"; adapter_config.json gives this module rank {want_r} ({given}), its tensors rank "
                               f"{got[r_axis]}" if rank_only else _trained_on(cfg)),
                            hint=("make `r`/`rank_pattern` in adapter_config.json match the tensors' ranks" if rank_only
                                  else "the adapter was trained on another model (or another size of this "
                                  "architecture); evaluate it on that model"))
        if "base" in parts and tuple(parts["base"]) != base_mod.shape:
            raise UserError(f"{d}: its copy of the base `{module}` weights has shape {list(parts['base'])}, the "
                            f"base model's is {list(base_mod.shape)} (a resized vocabulary){_trained_on(cfg)}",
                            hint="evaluate it on the model it was trained on (with the tokenizer it was trained with)")
    for module, parts in sorted(saved.items()):
        want = names[module].shape
        if parts.get("weight") is None or tuple(parts["weight"]) != want:
            got = parts.get("weight")
            raise UserError(f"{d}: its full copy of `{module}` (`modules_to_save`) has weight shape "
                            f"{list(got) if got else 'none'}, the base module's is {list(want)}"
                            + (" (a resized vocabulary)" if names[module].kind == "embedding" or module == base.output
                               else "") + _trained_on(cfg),
                            hint="evaluate it on the model it was trained on (with the tokenizer it was trained with)")


def _check_rules(info: AdapterInfo, base: BaseModules | None, rules: Rules, tokens: list[str]) -> None:
    """What the serving backend can do (module doc, last paragraph)."""
    who = f"the {rules.backend} backend"
    if tokens and not rules.trainable_tokens:
        raise UserError(f"{info.path}: {who} does not serve `trainable_token_indices` (PEFT TrainableTokens on "
                        f"{tokens[0]})", hint=rules.instead)
    if info.modules_to_save and not rules.modules_to_save:
        raise UserError(f"{info.path}: {who} does not serve `modules_to_save` (full copies of "
                        f"{', '.join(info.modules_to_save)})", hint=rules.instead)
    if base is not None:
        bad = [m for m in info.modules if not rules.serves_lora_on(m, base.modules[m], base)]
        if bad:
            raise UserError(f"{info.path}: {who} does not serve LoRA on `{bad[0]}` ({base.modules[bad[0]].describe()}"
                            f"{', the output head' if bad[0] == base.output else ''}) of {base.architecture}"
                            + (f" ({len(bad)} such modules)" if len(bad) > 1 else ""), hint=rules.instead)
    if rules.max_rank is not None and info.rank > rules.max_rank:
        raise UserError(f"{info.path}: LoRA rank {info.rank} is above this engine's LoRA rank {rules.max_rank}",
                        hint=rules.rank_hint or rules.instead)
    if rules.refuse is not None:
        why = rules.refuse(info.config)
        if why:
            raise UserError(f"{info.path}: {who} refuses this adapter: {why}", hint=rules.instead)


def load_peft(model: Any, adapter_dir: str | Path, *, adapter_name: str = "default",
              base: BaseModules | None = None) -> Any:
    """``PeftModel`` of ``model`` with ``adapter_dir`` loaded (after :func:`preflight` with
    :data:`HF_RULES`), in eval mode. ``base``: ``model``'s modules if already known.

    Raises:
        UserError: the pre-flight's.
    """
    from peft import PeftModel

    preflight(adapter_dir, base or BaseModules.of_model(model), HF_RULES)
    pm = PeftModel.from_pretrained(model, str(Path(adapter_dir).resolve()), adapter_name=adapter_name)
    pm.eval()
    return pm


def unload_peft(peft_model: Any) -> Any:
    """The plain base model of ``peft_model`` with every adapter removed (not merged), including the
    base modules ``modules_to_save`` wrapped: PEFT's ``unload()`` puts the active adapter's copies in
    their place, so its adapters are deleted first and the original modules come back."""
    for name in list(peft_model.peft_config):
        peft_model.delete_adapter(name)
    return peft_model.unload()
