"""Metering: wall-clock seconds and accelerators used by every stage (``meter.json``).

Each stage that does work writes ``meter.json`` into its artifact folder::

    {"stage": "rollouts", "seconds": 12.3, "cpu_seconds": 11.9, "device": "cuda" | "cpu",
     "accelerators": 1, "accelerator_name": "NVIDIA H200" | null,
     "accelerator_names": ["NVIDIA H200"], "devices_basis": "allocated" | "declared" | "visible",
     "cuda_visible_devices": "2,3" | null}

``cpu_seconds`` is the process's CPU time over the same span. The runner adds ``node_seconds`` /
``node_cpu_seconds`` (the whole build, engine starts included), the token counts a build returns
(``completion_tokens``, ``scored_tokens``, ``trained_tokens``) and ``estimate`` (the cost estimate made
before the node ran: :mod:`rmxbench.orchestrator.estimate`).
``accelerators`` counts only the devices the stage used (see :func:`metered`); indices are the
process's own (``CUDA_VISIBLE_DEVICES`` renumbers them, torch honours it). Turning these records
into GPU-hours and USD (device name -> pricing key, the published-cost fallback of RL baselines)
is :mod:`rmxbench.pricing`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rmxbench.results import atomic_write_json

METER_FILE = "meter.json"


def device_info() -> dict:
    """``{"device", "accelerators", "accelerator_name", "accelerator_names", "cuda_visible_devices"}``
    of this process: every device it can see (``CUDA_VISIBLE_DEVICES`` applied); CPU if no CUDA.
    :func:`metered` narrows this to the devices a stage used."""
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return {"device": "cuda", "accelerators": len(names), "accelerator_name": names[0],
                    "accelerator_names": names, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    except ImportError:  # pragma: no cover
        pass
    return {"device": "cpu", "accelerators": 0, "accelerator_name": None}


def _allocations() -> list[int]:
    """Cumulative CUDA allocation count per visible device of this process (0 before CUDA init)."""
    import torch

    return [int(torch.cuda.memory_stats(i).get("allocation.all.allocated", 0))
            for i in range(torch.cuda.device_count())]


@contextmanager
def metered(stage: str, out_dir: str | Path) -> Iterator[dict]:
    """Time the body and write ``out_dir/meter.json`` (only if the body succeeds).

    Yields the record dict; the body may add keys (e.g. ``"items": 640``). Which devices the
    stage used: ``rec["devices"] = n`` set by the body (e.g. a vLLM engine with
    ``tensor_parallel_size × data_parallel_size`` = n in worker processes) means the first n
    visible devices (``devices_basis="declared"``); else the devices this process allocated
    memory on during the body (``"allocated"``); else every visible device (``"visible"``).
    A body that resumed the work of a killed earlier attempt sets ``prior_seconds`` (that attempt's
    measured seconds up to the resumed checkpoint); they are added to ``seconds``, the cost of
    producing the artifact.
    """
    rec: dict = {"stage": stage, **device_info()}
    cuda = rec["device"] == "cuda"
    before = _allocations() if cuda else []
    t0, c0 = time.perf_counter(), time.process_time()
    yield rec
    rec["seconds"] = time.perf_counter() - t0 + float(rec.get("prior_seconds") or 0.0)
    rec["cpu_seconds"] = time.process_time() - c0  # this process's CPU time (the cost estimate's CPU unit)
    declared = rec.pop("devices", None)
    if cuda:
        names = rec["accelerator_names"]
        after = _allocations()
        if isinstance(declared, int) and declared >= 1:
            used, basis = list(range(min(declared, len(names)))), "declared"
        else:
            used = [i for i, (a, b) in enumerate(zip(before, after)) if b > a]
            basis = "allocated" if used else "visible"
            used = used or list(range(len(names)))
        rec.update(accelerators=len(used), accelerator_names=[names[i] for i in used],
                   accelerator_name=names[used[0]], devices_basis=basis)
    atomic_write_json(Path(out_dir) / METER_FILE, rec)


def read_meter(stage_dir: str | Path) -> dict | None:
    """The ``meter.json`` record of a stage folder, or None if the folder has none (or it is unreadable)."""
    import json

    p = Path(stage_dir) / METER_FILE
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("seconds"), (int, float)):
        return None
    return rec
