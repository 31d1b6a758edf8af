"""Pricing: accelerator-seconds -> GPU-hours -> USD, and the published-cost fallback of RL baselines.

The one place that prices a board row (paper §6.1 "Cost estimation", App. D), shared by the
runner (which prices the rows it metered) and the board (which shows a stored cost, else the
spec's published figure):

- :func:`gpu_type_candidates` / :func:`price_key`: a CUDA device name -> the spec's
  ``pricing.usd_per_hour`` key (one rule), so a stage that ran on a GPU other than
  ``pricing.hardware.gpu_type`` is priced as the GPU it ran on, or, when that GPU has no price,
  carries no USD and a note the board shows;
- :func:`measured_cost`: the ``meter.json`` records (:mod:`rmxbench.pipeline.metering`) of a row's
  training stages -> :class:`~rmxbench.results.RowCost` (GPU-hours × price; CPU-hours without USD).
  A cached stage costs nothing new, but its recorded seconds still count towards the row's
  training cost (the cost of producing the artifact, paper App. D);
- :func:`seed_mean_cost`: the same per training seed of a row with ``seeds:`` (the mean over seeds);
- :func:`published_cost`: an RL baseline's spec ``cost`` (published/estimated figure) -> RowCost;
- :func:`row_cost`: the cost a row shows: the stored (measured) one, else the published figure;
- :func:`cost_text` / :func:`fmt_usd`: how a cost reads (``$4.12``, ``0.0123 CPU-h``).

Torch-free; imports only :mod:`rmxbench.results`, so every layer above the spec may use it.
"""

from __future__ import annotations

import re
from typing import Mapping

from rmxbench.results import RowCost

_VENDOR_RE = re.compile(r"\b(?:NVIDIA|Tesla|GeForce|Quadro)\b", re.IGNORECASE)
_RTX_PRO_RE = re.compile(r"\bRTX\s+PRO\s+(\d{3,5})\b", re.IGNORECASE)
_RTX_RE = re.compile(r"\bRTX\s+(A?\d{3,5})(\s+Ada)?\b", re.IGNORECASE)
_CHIP_RE = re.compile(r"\b([A-Z]{1,2}\d{1,4}[A-Z]?)(?=\b|-)")  # H100, A100, GH200, L40S, A10G, T4
_MEM_RE = re.compile(r"(\d{2,3})\s*GB\b", re.IGNORECASE)
_FORM_RE = re.compile(r"\b(SXM|PCIe|PCI-E|NVL)\d?\b", re.IGNORECASE)


def _norm_key(key: str) -> str:
    """Pricing keys compare case- and separator-insensitively (``RTX-Pro-6000`` = ``rtx pro 6000``)."""
    return re.sub(r"[^A-Z0-9]", "", key.upper())


def gpu_type_candidates(device_name: str) -> list[str]:
    """Pricing keys a CUDA device name may be priced under, most specific first.

    The one mapping rule from a device name (``torch.cuda.get_device_name``, ``nvidia-smi
    --query-gpu=name``) to the spec's ``pricing.usd_per_hour`` keys: the chip (``H100``,
    ``A100``, ``RTX-Pro-6000``) + an explicit form factor (``-SXM``, ``-PCIe``, ``-NVL``),
    then the chip + memory (``-80G``), then the bare chip:

    - ``"NVIDIA H100 80GB HBM3"`` -> ``["H100-80G", "H100"]``
    - ``"NVIDIA A100-SXM4-80GB"`` -> ``["A100-SXM", "A100-80G", "A100"]``
    - ``"NVIDIA H100 PCIe"`` -> ``["H100-PCIe", "H100"]``
    - ``"NVIDIA RTX PRO 6000 Blackwell Server Edition"`` -> ``["RTX-Pro-6000"]``

    Returns:
        the candidate keys (empty when the name has no recognisable chip).
    """
    name = _VENDOR_RE.sub(" ", device_name or "").strip()
    m = _RTX_PRO_RE.search(name)
    if m:
        chip = f"RTX-Pro-{m.group(1)}"
    else:
        m = _RTX_RE.search(name)
        if m:
            chip = f"RTX-{m.group(1).upper()}" + ("-Ada" if m.group(2) else "")
        else:
            m = _CHIP_RE.search(name.upper())
            if not m:
                return []
            chip = m.group(1)
    out = []
    form = _FORM_RE.search(name)
    if form:
        f = form.group(1).upper()
        out.append(f"{chip}-" + {"PCIE": "PCIe", "PCI-E": "PCIe"}.get(f, f))
    mem = _MEM_RE.search(name)
    if mem:
        out.append(f"{chip}-{mem.group(1)}G")
    out.append(chip)
    return out


def price_key(device_name: str, usd_per_hour: Mapping[str, float]) -> str | None:
    """The ``usd_per_hour`` key (the spec's own spelling) that prices ``device_name``, or None.

    Candidates from :func:`gpu_type_candidates` are tried in order, matched ignoring case and
    separators.
    """
    by_norm = {_norm_key(k): k for k in usd_per_hour}
    for cand in gpu_type_candidates(device_name):
        if _norm_key(cand) in by_norm:
            return by_norm[_norm_key(cand)]
    return None


def _stage_gpus(rec: dict) -> list[str]:
    """Device names of a CUDA stage record (one per accelerator used; [] for old records)."""
    names = rec.get("accelerator_names")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    return [str(rec["accelerator_name"])] if rec.get("accelerator_name") else []


def measured_cost(meters: dict[str, dict], pricing) -> RowCost:
    """Training cost of a ReasonMaxxer row from its stages' meter records (paper §6.1, App. D).

    Args:
        meters: stage label -> ``meter.json`` record (``seconds``, ``device``, ``accelerators``,
            ``accelerator_names``), one per training-stage artifact (pool, rollouts, selection,
            entropy, train(τ) for every τ, validate(τ), pick), cached ones included: the cost of a
            row is the cost of producing its artifacts, whenever they were produced.
        pricing: the spec's :class:`rmxbench.spec.schema.Pricing`.

    Returns:
        :class:`RowCost` with ``basis="measured"``. For stages run on CUDA:
        ``gpu_hours = Σ seconds × accelerators / 3600``. Each stage is priced as the GPU it ran on
        (:func:`price_key` of its device name) when that GPU is priced, else as
        ``pricing.hardware.gpu_type`` when the record names no device (older records);
        ``usd = Σ hours × price`` (USD). When a stage ran on a GPU other than
        ``hardware.gpu_type``, ``note`` says so; when it ran on a GPU with no price, ``usd`` is
        None and ``note`` names the GPU to add to ``pricing.usd_per_hour``. Stages run on CPU add
        to ``cpu_hours = Σ seconds / 3600`` and carry no USD. ``stage_seconds`` holds the wall
        seconds per stage label.
    """
    configured = pricing.hardware.gpu_type
    stage_seconds: dict[str, float] = {}
    cpu_s = 0.0
    gpu_s_by_key: dict[str | None, float] = {}  # pricing key (None = no price) -> accelerator-seconds
    names: set[str] = set()
    unpriced: set[str] = set()
    for label, rec in sorted(meters.items()):
        sec = float(rec.get("seconds") or 0.0)
        stage_seconds[label] = round(sec, 3)
        if rec.get("device") != "cuda":
            cpu_s += sec
            continue
        n = max(1, int(rec.get("accelerators") or 1))
        gpus = _stage_gpus(rec)
        names.update(gpus)
        for i in range(n):
            gpu = gpus[i] if i < len(gpus) else (gpus[-1] if gpus else None)
            key = price_key(gpu, pricing.usd_per_hour) if gpu else configured
            if gpu and key is None:
                unpriced.add(f"{gpu} ({(gpu_type_candidates(gpu) or ['unknown'])[0]})")
            gpu_s_by_key[key] = gpu_s_by_key.get(key, 0.0) + sec
    gpu_s = sum(gpu_s_by_key.values())
    gpu_hours = gpu_s / 3600 if gpu_s > 0 else None
    cpu_hours = cpu_s / 3600 if cpu_s > 0 or gpu_hours is None else None
    usd = None
    parts, notes = [], []
    keys = sorted(k for k in gpu_s_by_key if k is not None)
    if gpu_hours is not None:
        parts.append(f"measured {gpu_hours:.4f} GPU-h on {', '.join(sorted(names)) or 'CUDA'}")
        if None in gpu_s_by_key:
            if unpriced:
                notes.append(f"ran on {', '.join(sorted(unpriced))}, which has no price in pricing.usd_per_hour "
                             f"(priced: {', '.join(sorted(pricing.usd_per_hour))}): no USD; add its price to the spec")
            else:
                notes.append("no price: pricing.hardware.gpu_type is not set")
        else:
            usd = sum(gpu_s_by_key[k] / 3600 * pricing.usd_per_hour[k] for k in keys)
            parts.append("priced as " + ", ".join(f"{k} at ${pricing.usd_per_hour[k]:g}/GPU-h" for k in keys)
                         + f" ({pricing.source}, {pricing.date})")
        other = [k for k in keys if k != configured]
        if other and names:
            notes.append(f"ran on {', '.join(sorted(names))}, not the configured "
                         f"pricing.hardware.gpu_type {configured or 'null'}: priced as {', '.join(other)}")
    if cpu_hours is not None:
        parts.append(f"measured {cpu_hours:.4f} CPU-h (CPU-only stages: no USD)")
    parts.append("training stages: " + " + ".join(meters))  # what was measured, in the row's stage order (App. D)
    gpu_type = None
    if gpu_hours is not None:
        detected = sorted({(gpu_type_candidates(g) or [g])[0] for g in names})
        gpu_type = "+".join(keys) if keys and None not in gpu_s_by_key else ("+".join(detected) or configured)
    note = "; ".join(notes)
    return RowCost(usd=usd, gpu_hours=gpu_hours, cpu_hours=cpu_hours, gpu_type=gpu_type,
                   basis="measured", source="; ".join(parts + notes), stage_seconds=stage_seconds, note=note)


def seed_mean_cost(meters_by_seed: Mapping[int | None, dict[str, dict]], pricing) -> RowCost:
    """Training cost of a row per training seed: the mean over seeds of :func:`measured_cost` (issue 19).

    Args:
        meters_by_seed: training seed -> that seed's chain's ``{stage label: meter.json record}``;
            ``{None: meters}`` for a row without ``seeds:`` (then exactly :func:`measured_cost`).
        pricing: the spec's :class:`rmxbench.spec.schema.Pricing`.

    Returns:
        :class:`RowCost` whose ``usd`` / ``gpu_hours`` / ``cpu_hours`` are the mean over seeds of each
        seed's figure (None when a seed has none), what one training run of the row costs; the
        cost ratio of the board divides these means. ``per_seed`` holds each seed's own figures,
        ``stage_seconds`` every seed's stage labels (``train[seed=1,tau=0.3]``).
    """
    if list(meters_by_seed) == [None]:
        return measured_cost(meters_by_seed[None], pricing)
    seeds = sorted(meters_by_seed, key=lambda x: (x is None, x or 0))
    costs = {s: measured_cost(meters_by_seed[s], pricing) for s in seeds}

    def mean(attr: str) -> float | None:
        vals = [getattr(c, attr) for c in costs.values()]
        return None if any(v is None for v in vals) else sum(vals) / len(vals)

    first = costs[seeds[0]]
    names = ", ".join(str(s) for s in seeds)
    notes = list(dict.fromkeys(c.note for c in costs.values() if c.note))
    return RowCost(
        usd=mean("usd"), gpu_hours=mean("gpu_hours"), cpu_hours=mean("cpu_hours"),
        gpu_type="+".join(dict.fromkeys(c.gpu_type for c in costs.values() if c.gpu_type)) or None,
        basis="measured",
        source=f"mean per training seed over {len(seeds)} seeds ({names}); seed {seeds[0]}: {first.source}",
        stage_seconds={k: v for c in costs.values() for k, v in c.stage_seconds.items()},
        note="; ".join(notes),
        per_seed={str(s): {"usd": c.usd, "gpu_hours": c.gpu_hours, "cpu_hours": c.cpu_hours} for s, c in costs.items()})


def published_cost(cost, pricing) -> RowCost:
    """RowCost of an RL baseline from its spec ``cost`` (published/estimated figure, App. D).

    The figure passes through unchanged with its ``basis`` and ``source``. If only
    ``gpu_hours`` and a priced ``gpu_type`` are given, USD is derived as hours × the spec's price
    and the source says so. ``cost=None`` gives ``basis="unspecified"`` with no figures.
    """
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


def row_cost(stored: RowCost | None, published, pricing) -> RowCost | None:
    """The cost a board row shows: ``stored`` (measured by the runner, or the runner's published
    figure) when there is one, else :func:`published_cost` of the spec row's ``cost``
    (:class:`rmxbench.spec.schema.Cost`, or None for rows without one: base rows, ReasonMaxxer rows
    not run yet), else None."""
    if stored is not None:
        return stored
    return published_cost(published, pricing) if published is not None else None


def fmt_usd(usd: float) -> str:
    """``$1,200`` (whole dollars from $10 or for whole amounts, as in the paper), ``$4.12``, ``<$0.01``."""
    if 0 < usd < 0.005:
        return "<$0.01"
    return f"${usd:,.0f}" if usd >= 10 or float(usd).is_integer() else f"${usd:,.2f}"


def cost_text(c: RowCost | None) -> str | None:
    """Cost figure without the basis: ``$4.12``, ``0.012 CPU-h``, ``240 H100-80G-h`` or None."""
    if c is None:
        return None
    if c.usd is not None:
        return fmt_usd(c.usd)
    if c.cpu_hours is not None:
        return f"{c.cpu_hours:.3g} CPU-h"
    if c.gpu_hours is not None:
        return f"{c.gpu_hours:.3g} {c.gpu_type or 'GPU'}-h"
    return None
