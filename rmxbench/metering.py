"""Metering: wall-clock seconds of every stage × accelerators used -> GPU-hours -> USD.

Each stage that does work writes ``meter.json`` into its artifact folder::

    {"stage": "rollouts", "seconds": 12.3, "device": "cuda" | "cpu",
     "accelerators": 1, "accelerator_name": "NVIDIA H200" | null}

A cached stage costs nothing new, but its recorded seconds still count towards the row's
training cost (the cost of producing the artifact, paper App. D).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rmxbench.results import atomic_write_json

METER_FILE = "meter.json"


def device_info() -> dict:
    """``{"device", "accelerators", "accelerator_name"}`` of this process (CPU if no CUDA)."""
    try:
        import torch

        if torch.cuda.is_available():
            return {"device": "cuda", "accelerators": torch.cuda.device_count(),
                    "accelerator_name": torch.cuda.get_device_name(0)}
    except ImportError:  # pragma: no cover
        pass
    return {"device": "cpu", "accelerators": 0, "accelerator_name": None}


@contextmanager
def metered(stage: str, out_dir: str | Path) -> Iterator[dict]:
    """Time the body and write ``out_dir/meter.json`` (only if the body succeeds).

    Yields the record dict; the body may add keys (e.g. ``"items": 640``).
    """
    rec: dict = {"stage": stage, **device_info()}
    t0 = time.perf_counter()
    yield rec
    rec["seconds"] = time.perf_counter() - t0
    atomic_write_json(Path(out_dir) / METER_FILE, rec)
