"""Peak throughput of the accelerators a spec may declare (``pricing.hardware.gpu_type``): dense BF16
tensor TFLOPS, memory and memory bandwidth, each from the vendor's datasheet.

The estimate divides a node's FLOPs by ``bf16_tflops`` × a utilisation factor and its decode memory
traffic by ``bandwidth_gbs`` × a backend efficiency (:mod:`rmxbench.estimate.cost_model`). Datasheets
quote tensor throughput "with sparsity" (2:4 structured sparsity doubles it); the table holds the
dense figure, half of that.

Sources (NVIDIA datasheets, BF16 tensor core, "with sparsity" figure in brackets):

- H100 SXM5 / PCIe / NVL: NVIDIA H100 Tensor Core GPU datasheet — BF16 1,979 / 1,513 / 1,671
  TFLOPS with sparsity; 80 GB HBM3 3.35 TB/s (SXM), 80 GB HBM2e 2.0 TB/s (PCIe), 94 GB 3.9 TB/s (NVL).
- H200 SXM: NVIDIA H200 datasheet — BF16 1,979 TFLOPS with sparsity; 141 GB HBM3e, 4.8 TB/s.
- A100 80GB SXM / PCIe, 40GB: NVIDIA A100 datasheet — BF16 312 TFLOPS dense (624 sparse);
  2,039 / 1,935 GB/s (80 GB), 1,555 GB/s (40 GB PCIe).
- L40S: NVIDIA L40S datasheet — BF16 733 TFLOPS with sparsity; 48 GB GDDR6, 864 GB/s.
- A40: NVIDIA A40 datasheet — BF16 299.4 TFLOPS with sparsity; 48 GB GDDR6, 696 GB/s.
- L4: NVIDIA L4 datasheet — BF16 242 TFLOPS with sparsity; 24 GB GDDR6, 300 GB/s.
- A10: NVIDIA A10 datasheet — BF16 250 TFLOPS with sparsity; 24 GB GDDR6, 600 GB/s.
- RTX PRO 6000 Blackwell (Server/Workstation Edition): NVIDIA RTX PRO 6000 Blackwell datasheet —
  4,000 "AI TOPS" (FP4 with sparsity), 96 GB GDDR7 at 1,792 GB/s. The datasheet gives no BF16
  figure; dense BF16 is derived as 4,000 / 2 (sparsity) / 2 (FP4 → FP8) / 2 (FP8 → BF16) ≈ 500 TFLOPS.

A CPU-only spec (``gpu_type: null``) is estimated on a nominal CPU (:data:`CPU`): a few tens of
GFLOP/s and GB/s per thread. Those numbers are not a measurement of this machine; small models on a
CPU are dominated by per-step overheads, so an uncalibrated CPU estimate can be off by 10-100×.
Calibration from the store's meters (:mod:`rmxbench.orchestrator.estimate`) is what makes CPU estimates
meaningful.

Torch-free; the name rule is :func:`rmxbench.pricing.gpu_type_candidates` (the pricing keys' rule).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from rmxbench.pricing import gpu_type_candidates


@dataclass(frozen=True)
class Accelerator:
    """One accelerator type (or the nominal CPU).

    Attributes:
        key: canonical name (``H100-SXM``, ``RTX-Pro-6000``, ``CPU``).
        bf16_tflops: dense BF16 tensor throughput, TFLOP/s (fp32 on the CPU).
        memory_gb: device memory, GB (None for the CPU: the weights are in host RAM).
        bandwidth_gbs: memory bandwidth, GB/s.
        source: where the figures come from (module doc).
        gpu: False for the nominal CPU.
    """

    key: str
    bf16_tflops: float
    memory_gb: float | None
    bandwidth_gbs: float
    source: str
    gpu: bool = True


_H100 = "NVIDIA H100 Tensor Core GPU datasheet"
#: Every accelerator the estimate knows, by canonical key.
GPUS: dict[str, Accelerator] = {a.key: a for a in (
    Accelerator("H100-SXM", 989.5, 80, 3350, f"{_H100}: SXM5, BF16 1,979 TFLOPS with sparsity, HBM3 3.35 TB/s"),
    Accelerator("H100-PCIe", 756.5, 80, 2000, f"{_H100}: PCIe, BF16 1,513 TFLOPS with sparsity, HBM2e 2.0 TB/s"),
    Accelerator("H100-NVL", 835.5, 94, 3900, f"{_H100}: NVL, BF16 1,671 TFLOPS with sparsity, 3.9 TB/s"),
    Accelerator("H200", 989.5, 141, 4800, "NVIDIA H200 datasheet: BF16 1,979 TFLOPS with sparsity, HBM3e 4.8 TB/s"),
    Accelerator("A100-SXM", 312, 80, 2039, "NVIDIA A100 datasheet: BF16 312 TFLOPS dense, 80 GB SXM 2,039 GB/s"),
    Accelerator("A100-PCIe", 312, 80, 1935, "NVIDIA A100 datasheet: BF16 312 TFLOPS dense, 80 GB PCIe 1,935 GB/s"),
    Accelerator("A100-40G", 312, 40, 1555, "NVIDIA A100 datasheet: BF16 312 TFLOPS dense, 40 GB PCIe 1,555 GB/s"),
    Accelerator("L40S", 366.5, 48, 864, "NVIDIA L40S datasheet: BF16 733 TFLOPS with sparsity, GDDR6 864 GB/s"),
    Accelerator("A40", 149.7, 48, 696, "NVIDIA A40 datasheet: BF16 299.4 TFLOPS with sparsity, GDDR6 696 GB/s"),
    Accelerator("L4", 121, 24, 300, "NVIDIA L4 datasheet: BF16 242 TFLOPS with sparsity, GDDR6 300 GB/s"),
    Accelerator("A10", 125, 24, 600, "NVIDIA A10 datasheet: BF16 250 TFLOPS with sparsity, GDDR6 600 GB/s"),
    Accelerator("RTX-Pro-6000", 500, 96, 1792,
                "NVIDIA RTX PRO 6000 Blackwell datasheet: 4,000 AI TOPS FP4 with sparsity -> ~500 dense BF16 "
                "TFLOPS (÷2 sparsity, ÷2 FP4->FP8, ÷2 FP8->BF16; derived), 96 GB GDDR7 1,792 GB/s"),
)}

#: Spellings of ``gpu_type`` / device names that name one of :data:`GPUS` without its exact key. A bare
#: ``H100``/``H100-80G`` (RunPod's "H100 80GB", the paper's $2.49 instance) is taken as the PCIe card, the
#: slower of the two, so the estimate errs towards more hours; likewise ``A100``/``A100-80G``.
ALIASES: dict[str, str] = {
    "H100": "H100-PCIe", "H100-80G": "H100-PCIe", "H100-94G": "H100-NVL", "H200-141G": "H200",
    "A100": "A100-PCIe", "A100-80G": "A100-PCIe", "A100-40G": "A100-40G", "L40S-48G": "L40S",
    "A40-48G": "A40", "L4-24G": "L4", "A10-24G": "A10", "A10G": "A10", "RTX-Pro-6000-96G": "RTX-Pro-6000",
    "GH200": "H200",
}

#: Nominal per-thread CPU throughput (fp32 FLOP/s: one AVX2 FMA core at ~3 GHz sustains a few tens of
#: GFLOP/s in PyTorch GEMMs) and memory bandwidth per thread; not a measurement (module doc).
CPU_GFLOPS_PER_THREAD = 30.0
CPU_GBS_PER_THREAD = 8.0
CPU_SOURCE = ("nominal CPU: 30 GFLOP/s fp32 and 8 GB/s per thread (not measured; calibration from the store "
              "replaces it)")


def _norm(s: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", s.upper())


def cpu(threads: int | None = None) -> Accelerator:
    """The nominal CPU with ``threads`` threads (default: ``RMXBENCH_THREADS``, else the core count)."""
    if threads is None:
        env = os.environ.get("RMXBENCH_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    return Accelerator("CPU", CPU_GFLOPS_PER_THREAD * threads / 1000, None,
                       min(CPU_GBS_PER_THREAD * threads, 64.0), f"{CPU_SOURCE}; {threads} thread(s)", gpu=False)


def lookup(name: str | None) -> Accelerator | None:
    """The accelerator a ``pricing.hardware.gpu_type`` key or a CUDA device name denotes.

    ``None`` (a CPU-only spec) gives the nominal CPU (:func:`cpu`). Keys compare ignoring case and
    separators; aliases (:data:`ALIASES`) and :func:`rmxbench.pricing.gpu_type_candidates` of a
    device name (``NVIDIA H100 80GB HBM3`` -> ``H100-80G``) are tried in turn.

    Returns:
        the :class:`Accelerator`, or None when the name is not in the table.
    """
    if name is None:
        return cpu()
    by_norm = {_norm(k): a for k, a in GPUS.items()}
    by_norm.update({_norm(k): GPUS[v] for k, v in ALIASES.items()})
    for cand in [name, *gpu_type_candidates(name)]:
        hit = by_norm.get(_norm(cand))
        if hit is not None:
            return hit
    return None


def known_names() -> list[str]:
    """Every accepted key and alias (for error messages)."""
    return sorted({*GPUS, *ALIASES})
