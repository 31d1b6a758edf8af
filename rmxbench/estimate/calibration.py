"""Calibration of the cost estimate by what the store has measured (issue 20).

Every finished node's ``meter.json`` (:mod:`rmxbench.pipeline.metering`) holds its measured seconds,
device, engine starts and — when the build reported them — the tokens it generated, scored and
trained; nodes built since issue 20 also hold the estimate made before they ran (``estimate``: the
node's :class:`~rmxbench.estimate.work.Work`, model size and hardware). From these, per
(calibration group, hardware):

- **time factor** = Σ measured ÷ Σ modelled seconds of the compute part (engine starts and a build's own
  model loads taken out), modelled with the counts the node really did — so the factor measures the
  hardware and software, not how long completions happened to be;
- **start factor** = Σ measured ÷ Σ modelled engine-start seconds, apart for a process's first start
  (``cold``: it pays the library imports) and later ones;
- **fixed seconds** = the mean measured seconds of nodes without model work (pool, selection, pick);
- **set-up seconds** = the mean measured seconds outside the work loop, for builds that record their
  loop's own time (``work_seconds`` / ``work_cpu_seconds``: GRPO's ``trainer.train``, an eval's
  generation); then only the loop is compared with the modelled compute, so a 3-step run predicts a
  300-step one;

and per (group, model):

- **mean completion length** of generation nodes (completion tokens ÷ completions);
- **selected share** of sequence work (scored or trained tokens ÷ the declared upper bound).

Groups are the work's ``variant`` (``eval:adapter``), falling back to every variant of its prefix
(``eval:*``: ``eval`` and ``eval:adapter`` together). The
measured quantity is wall seconds on GPUs and process CPU seconds on a CPU (``node_cpu_seconds``:
what a node costs the machine, unaffected by other users of shared cores; on an otherwise idle machine
with ``RMXBENCH_THREADS=1`` it equals wall time). CPU calibration is specific to the machine that
measured: a store is usually one machine's.

Torch-free; reads JSON files only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from rmxbench.estimate import cost_model
from rmxbench.estimate.hardware import Accelerator, lookup
from rmxbench.estimate.model_size import ModelSize
from rmxbench.estimate.work import Work


def meter_hardware(meter: dict) -> Accelerator | None:
    """The accelerator a meter ran on (``cpu`` → the nominal CPU; CUDA → the table entry of its device)."""
    if meter.get("device") != "cuda":
        return lookup(None)
    return lookup(str(meter.get("accelerator_name") or ""))


def measured_seconds(meter: dict, hw: Accelerator) -> float:
    """The node's measured seconds in the estimate's unit: CPU seconds on a CPU, else wall seconds (the
    whole build when the runner recorded it, else the meter's ``seconds``)."""
    if not hw.gpu:
        for k in ("node_cpu_seconds", "cpu_seconds"):
            if isinstance(meter.get(k), (int, float)):
                return float(meter[k])
    return float(meter.get("node_seconds") or meter.get("seconds") or 0.0)


def measured_starts(meter: dict, hw: Accelerator) -> list[tuple[dict, float]]:
    """``(engine event, seconds)`` of the engine starts a node caused (CPU seconds on a CPU when recorded)."""
    out = []
    for e in meter.get("engines") or []:
        if isinstance(e, dict) and e.get("started"):
            sec = e.get("cpu_seconds") if not hw.gpu and isinstance(e.get("cpu_seconds"), (int, float)) else e.get("seconds")
            out.append((e, float(sec or 0.0)))
    return out


def groups(variant: str) -> tuple[str, str]:
    """``(variant, "<prefix>:*")``: the calibration keys of a variant, most specific first."""
    return variant, variant.split(":", 1)[0] + ":*"


def eager_of(engine_key: str) -> bool | None:
    """The ``enforce_eager`` part of an engine key (``…|eagerTrue``), None when absent."""
    for part in engine_key.split("|"):
        if part.startswith("eager"):
            return {"eagerTrue": True, "eagerFalse": False}.get(part)
    return None


@dataclass
class Sample:
    """One finished node as calibration data."""

    stage: str
    label: str
    variant: str
    group: str
    hw: str
    model_key: str | None
    measured: float
    measured_compute: float
    modelled_compute: float
    fixed: bool
    starts_measured: float = 0.0
    starts_modelled: float = 0.0
    cold_start: bool = False
    overhead: float | None = None  # measured outside the work loop (builds that record it)
    completions: float = 0.0
    completion_tokens: float | None = None
    declared_seq_tokens: float = 0.0
    seq_tokens: float | None = None
    estimate: float | None = None  # what was estimated before it ran (its meter's record), if any

    @property
    def ratio(self) -> float | None:
        """measured ÷ estimated-before-the-run, when the node recorded an estimate."""
        return self.measured / self.estimate if self.estimate else None


@dataclass
class Calibration:
    """Factors learned from the store (module doc); ``samples`` are the nodes they come from."""

    samples: list[Sample] = field(default_factory=list)
    factors: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    start_factors: dict[tuple[str, bool], tuple[float, int]] = field(default_factory=dict)
    fixed: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    overhead: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    completion: dict[tuple[str, str], float] = field(default_factory=dict)
    share: dict[tuple[str, str], float] = field(default_factory=dict)

    def factor(self, variant: str, hw: str) -> tuple[float, int, str] | None:
        """``(factor, nodes, group)`` for ``variant`` on ``hw`` (the variant, else its prefix), or None."""
        for g in groups(variant):
            if (g, hw) in self.factors:
                f, n = self.factors[(g, hw)]
                return f, n, g
        return None

    def setup(self, variant: str, hw: str) -> tuple[float, int] | None:
        """Mean measured set-up seconds (outside the work loop) of ``variant`` on ``hw``, or None."""
        for g in groups(variant):
            if (g, hw) in self.overhead:
                return self.overhead[(g, hw)]
        return None

    def mean_new(self, model_key: str | None) -> Callable[[str, int], float]:
        """``(variant, cap) -> mean completion tokens``: measured for this model, else the default."""
        def fn(variant: str, cap: int) -> float:
            for g in groups(variant):
                if (g, model_key) in self.completion:
                    return min(float(cap), self.completion[(g, model_key)])
            return float(min(cap, cost_model.DEFAULT_COMPLETION_TOKENS))
        return fn

    def selected_share(self, variant: str, model_key: str | None) -> float | None:
        for g in groups(variant):
            if (g, model_key) in self.share:
                return self.share[(g, model_key)]
        return None

    def fit(self) -> "Calibration":
        """Compute the factors from ``samples`` (ratios of sums: big nodes weigh more)."""
        num: dict[tuple[str, str], list[float]] = {}
        for s in self.samples:
            if s.fixed:
                for g in groups(s.variant):
                    num.setdefault(("fixed", g, s.hw), []).append(s.measured)
                continue
            if s.overhead is not None:
                for g in groups(s.variant):
                    num.setdefault(("o", g, s.hw), []).append(s.overhead)
            if s.modelled_compute > 0:
                for g in groups(s.variant):
                    acc = num.setdefault(("f", g, s.hw), [0.0, 0.0, 0])
                    acc[0] += s.measured_compute
                    acc[1] += s.modelled_compute
                    acc[2] += 1
            if s.starts_modelled > 0:
                acc = num.setdefault(("s", (s.hw, s.cold_start)), [0.0, 0.0, 0])
                acc[0] += s.starts_measured
                acc[1] += s.starts_modelled
                acc[2] += 1
            if s.completion_tokens and s.completions:
                for g in groups(s.variant):
                    acc = num.setdefault(("c", g, s.model_key), [0.0, 0.0])
                    acc[0] += s.completion_tokens
                    acc[1] += s.completions
            if s.seq_tokens and s.declared_seq_tokens:
                for g in groups(s.variant):
                    acc = num.setdefault(("y", g, s.model_key), [0.0, 0.0])
                    acc[0] += s.seq_tokens
                    acc[1] += s.declared_seq_tokens
        for k, v in num.items():
            if k[0] == "fixed":
                self.fixed[(k[1], k[2])] = (sum(v) / len(v), len(v))
            elif k[0] == "o":
                self.overhead[(k[1], k[2])] = (sum(v) / len(v), len(v))
            elif k[0] == "f" and v[1] > 0:
                self.factors[(k[1], k[2])] = (v[0] / v[1], v[2])
            elif k[0] == "s" and v[1] > 0:
                self.start_factors[k[1]] = (v[0] / v[1], v[2])
            elif k[0] == "c" and v[1] > 0:
                self.completion[(k[1], k[2])] = v[0] / v[1]
            elif k[0] == "y" and v[1] > 0:
                self.share[(k[1], k[2])] = min(1.0, v[0] / v[1])
        return self


def sample_of(stage: str, meter: dict, work: Work, size: ModelSize | None, model_key: str | None,
              *, backend: str | None = None, mean_new: Callable[[str, int], float] | None = None) -> Sample | None:
    """One calibration sample from a finished node's meter and its work (None when unusable)."""
    hw = meter_hardware(meter)
    if hw is None:
        return None
    measured = measured_seconds(meter, hw)
    rec = meter.get("estimate") if isinstance(meter.get("estimate"), dict) else {}
    est = rec.get("seconds") if isinstance(rec.get("seconds"), (int, float)) else None
    label = str(meter.get("stage") or stage)
    if not work.uses_model:
        return Sample(stage, label, work.variant, work.group, hw.key, None, measured, measured, 0.0, True, estimate=est)
    if size is None:
        return None
    starts = measured_starts(meter, hw)
    s_meas = sum(sec for _, sec in starts)
    s_model = sum(cost_model.load_seconds(size, backend=e.get("backend"), gpu=hw.gpu, eager=eager_of(str(e.get("key", ""))),
                                          dtype=work.dtype, cold=bool(e.get("cold"))) for e, _ in starts)
    counts = {k: meter[k] for k in ("completion_tokens", "scored_tokens", "trained_tokens")
              if isinstance(meter.get(k), (int, float)) and meter[k] > 0}
    b = cost_model.seconds(work, size, hw, count=max(1, int(meter.get("accelerators") or 1)), backend=backend,
                           mean_new=mean_new, actual=counts)
    declared = cost_model.seconds(work, size, hw, backend=backend, mean_new=mean_new)
    loop = meter.get("work_seconds" if hw.gpu else "work_cpu_seconds")
    overhead = None
    if isinstance(loop, (int, float)) and 0 < loop <= measured:  # the build timed its work loop itself
        comp, overhead = float(loop), max(measured - s_meas - float(loop), 0.0)
    else:
        comp = max(measured - s_meas - b.loads - b.fixed, 0.1 * measured)
    seq = (counts.get("trained_tokens") or 0.0) + (counts.get("scored_tokens") or 0.0)
    return Sample(stage, label, work.variant, work.group, hw.key, model_key, measured, comp, b.compute, False,
                  starts_measured=s_meas, starts_modelled=s_model, overhead=overhead,
                  cold_start=any(bool(e.get("cold")) for e, _ in starts),
                  completions=float(sum(g.completions for g in work.generations)),
                  completion_tokens=counts.get("completion_tokens"),
                  declared_seq_tokens=declared.processed_tokens if seq else 0.0, seq_tokens=seq, estimate=est)


def store_meters(home: Path, stages: Iterable[str]) -> Iterable[tuple[str, Path, dict]]:
    """``(stage, artifact folder, meter)`` of every finished node of ``stages`` in the store."""
    from rmxbench.pipeline.metering import read_meter
    from rmxbench.pipeline.store import DONE_MARKER

    for st in stages:
        d = Path(home) / st
        if not d.is_dir():
            continue
        for art in sorted(d.iterdir()):
            if art.name.startswith(".") or not (art / DONE_MARKER).is_file():
                continue
            m = read_meter(art)
            if m is not None:
                yield st, art, m


def recorded_sample(stage: str, meter: dict) -> Sample | None:
    """The sample of a node whose meter holds the estimate record (its work and model size)."""
    rec = meter.get("estimate")
    if not isinstance(rec, dict) or not isinstance(rec.get("work"), dict):
        return None
    try:
        work = Work.from_json(rec["work"])
        size = ModelSize.from_json(rec["size"]) if isinstance(rec.get("size"), dict) else None
    except (KeyError, TypeError, ValueError):
        return None
    return sample_of(stage, meter, work, size, rec.get("model_key"), backend=rec.get("backend"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
