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
from typing import TYPE_CHECKING, Iterator

from rmxbench.results import atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from rmxbench.results import RowCost

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

    Yields the record dict; the body may add keys (e.g. ``"items": 640``). A body that resumed
    work of a killed earlier attempt sets ``prior_seconds`` (that attempt's measured seconds up to
    the resumed checkpoint); they are added to ``seconds``, the cost of producing the artifact.
    """
    rec: dict = {"stage": stage, **device_info()}
    t0 = time.perf_counter()
    yield rec
    rec["seconds"] = time.perf_counter() - t0 + float(rec.get("prior_seconds") or 0.0)
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


def measured_cost(meters: dict[str, dict], pricing) -> "RowCost":
    """Training cost of a ReasonMaxxer row from its stages' meter records (paper §6.1, App. D).

    Args:
        meters: stage label -> ``meter.json`` record (``seconds``, ``device``, ``accelerators``,
            ``accelerator_name``), one per training-stage artifact (pool, rollouts, selection,
            entropy, train(τ) for every τ, validate(τ), pick), cached ones included: the cost of a
            row is the cost of producing its artifacts, whenever they were produced.
        pricing: the spec's :class:`rmxbench.spec.Pricing`.

    Returns:
        :class:`RowCost` with ``basis="measured"``. For stages run on CUDA:
        ``gpu_hours = Σ seconds × accelerators / 3600`` and, when ``pricing.hardware.gpu_type``
        is set, ``usd = gpu_hours × pricing.usd_per_hour[gpu_type]`` (USD). Stages run on CPU
        add to ``cpu_hours = Σ seconds / 3600`` and carry no USD (a CPU run has no GPU price).
        ``stage_seconds`` holds the wall seconds per stage label.
    """
    from rmxbench.results import RowCost

    stage_seconds: dict[str, float] = {}
    gpu_s = 0.0
    cpu_s = 0.0
    names: set[str] = set()
    for label, rec in sorted(meters.items()):
        sec = float(rec.get("seconds") or 0.0)
        stage_seconds[label] = round(sec, 3)
        if rec.get("device") == "cuda":
            gpu_s += sec * max(1, int(rec.get("accelerators") or 1))
            if rec.get("accelerator_name"):
                names.add(str(rec["accelerator_name"]))
        else:
            cpu_s += sec
    gpu_type = pricing.hardware.gpu_type
    gpu_hours = gpu_s / 3600 if gpu_s > 0 else None
    cpu_hours = cpu_s / 3600 if cpu_s > 0 or gpu_hours is None else None
    usd = None
    parts = []
    if gpu_hours is not None:
        on = ", ".join(sorted(names)) or "CUDA"
        parts.append(f"measured {gpu_hours:.4f} GPU-h on {on}")
        if gpu_type is not None:
            price = pricing.usd_per_hour[gpu_type]
            usd = gpu_hours * price
            parts.append(f"priced as {gpu_type} at ${price:g}/GPU-h ({pricing.source}, {pricing.date})")
        else:
            parts.append("no price: pricing.hardware.gpu_type is not set")
    if cpu_hours is not None:
        parts.append(f"measured {cpu_hours:.4f} CPU-h (CPU-only stages: no USD)")
    parts.append("rollouts + entropy + τ sweep training + validation + pick (paper App. D)")
    return RowCost(usd=usd, gpu_hours=gpu_hours, cpu_hours=cpu_hours,
                   gpu_type=gpu_type if gpu_hours is not None else None,
                   basis="measured", source="; ".join(parts), stage_seconds=stage_seconds)


def published_cost(cost, pricing) -> "RowCost":
    """RowCost of an RL baseline from its spec ``cost`` (published/estimated figure, App. D).

    The figure passes through unchanged with its ``basis`` and ``source``. If only
    ``gpu_hours`` and a priced ``gpu_type`` are given, USD is derived as hours × the spec's price
    and the source says so. ``cost=None`` gives ``basis="unspecified"`` with no figures.
    """
    from rmxbench.results import RowCost

    if cost is None:
        return RowCost(basis="unspecified", source="no published cost in the spec")
    usd = cost.usd
    source = cost.source
    if usd is None and cost.gpu_hours is not None and cost.gpu_type in pricing.usd_per_hour:
        price = pricing.usd_per_hour[cost.gpu_type]
        usd = cost.gpu_hours * price
        source = f"{source}; USD = {cost.gpu_hours:g} GPU-h × ${price:g}/h ({cost.gpu_type}, {pricing.date})"
    return RowCost(usd=usd, gpu_hours=cost.gpu_hours, cpu_hours=None, gpu_type=cost.gpu_type,
                   basis=cost.basis, source=source)
