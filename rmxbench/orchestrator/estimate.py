"""The cost estimate of a plan (issue 20): every node that will run, priced before any model is loaded.

For each node to run (cached nodes cost nothing new), its stage's ``work(config, inputs)``
(:class:`rmxbench.estimate.work.Work`) is priced by the time model
(:func:`rmxbench.estimate.cost_model.seconds`) for its model's size
(:func:`rmxbench.estimate.model_size.model_size`) on the spec's declared hardware
(``pricing.hardware``: :func:`rmxbench.estimate.hardware.lookup`, × ``count``), plus the engine starts
it causes in the runner's order (:func:`rmxbench.backends.session.starts_in_order`). Calibration
(:mod:`rmxbench.estimate.calibration`) from the store's finished nodes scales the compute and start
parts per (stage variant, hardware) and supplies measured completion lengths and selected shares;
each node says whether it is calibrated or uses the throughput table.

Seconds become GPU-hours (× ``count``: every declared accelerator is held, and billed, for the whole
node) and USD at the spec's price of ``gpu_type``; the compute itself runs on the devices the node uses
(a vLLM engine's ``tensor_parallel_size``, else one), so a ``count`` above that shows up as idle hours. A
CPU-only spec (``gpu_type: null``) is estimated in CPU-hours (process CPU time), without USD.

Shown by ``rmxbench run --dry-run`` (a column per node, a table per row, a total; ``--json``), guarded
by ``--max-usd`` / ``--max-gpu-hours`` / ``--max-cpu-hours`` (:func:`check_budget`), and recorded per
node in ``meter.json`` (``estimate``) by the runner, so the run folder and the board show estimate
beside measurement (:func:`row_estimate`, :func:`node_report`).

Torch-free and offline (hub size look-ups only with ``--online``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmxbench.errors import UserError
from rmxbench.estimate import cost_model
from rmxbench.estimate.hardware import Accelerator, known_names, lookup
from rmxbench.estimate.model_size import ModelSize, model_size
from rmxbench.estimate.work import Work
from rmxbench.estimate.calibration import Calibration, recorded_sample, sample_of, store_meters


@dataclass
class NodeEstimate:
    """The estimate of one node to run.

    Attributes:
        status: ``estimated``, ``no estimate`` (its stage declares no work), ``size unknown``,
            ``hardware unknown``.
        seconds: calibrated seconds on the declared hardware (CPU seconds on a CPU), None if not estimated.
        upper_seconds: the same with every completion at its cap and every declared sequence selected.
        calibrated: the compute part is scaled by a factor measured in the store (else the table's).
        starts: engine starts this node causes.
        basis: how the figure was made (one line).
    """

    node: Any
    status: str
    work: Work | None = None
    size: ModelSize | None = None
    model_key: str | None = None
    backend: str | None = None
    seconds: float | None = None
    upper_seconds: float | None = None
    breakdown: cost_model.Breakdown | None = None
    calibrated: bool = False
    factor: float = 1.0
    starts: list = field(default_factory=list)
    start_seconds: float = 0.0
    basis: str = ""

    def record(self, hw: Accelerator, count: int) -> dict:
        """What the runner stores in the node's ``meter.json`` (``estimate``) for later calibration and reports."""
        return {"status": self.status, "seconds": self.seconds, "upper_seconds": self.upper_seconds,
                "calibrated": self.calibrated, "factor": self.factor, "variant": self.work.variant if self.work else None,
                "work": self.work.to_json() if self.work else None, "size": self.size.to_json() if self.size else None,
                "model_key": self.model_key, "backend": self.backend, "hardware": hw.key, "accelerators": count,
                "unit": "seconds" if hw.gpu else "cpu_seconds", "starts": len(self.starts),
                "breakdown": self.breakdown.to_json() if self.breakdown else None, "basis": self.basis}


@dataclass
class RowEstimate:
    """The nodes to run of one row, summed (``seconds`` over the estimated ones)."""

    row_id: str
    nodes: list[NodeEstimate]
    seconds: float = 0.0
    upper_seconds: float = 0.0
    hours: float = 0.0
    usd: float | None = None
    #: the part in training stages (``Stage.training``: what the board's cost cell measures)
    train_seconds: float = 0.0
    train_hours: float = 0.0
    train_usd: float | None = None

    @property
    def estimated(self) -> list[NodeEstimate]:
        return [n for n in self.nodes if n.seconds is not None]

    @property
    def missing(self) -> list[NodeEstimate]:
        return [n for n in self.nodes if n.seconds is None]


@dataclass
class PlanEstimate:
    """The estimate of a plan (module doc). ``hw`` is None when ``gpu_type`` is not in the table."""

    plan: Any
    hw: Accelerator | None
    count: int
    price: float | None
    #: node key -> estimate (a key shared by nodes of several rows is built once: counted in its first row)
    nodes: dict[str, NodeEstimate]
    rows: list[RowEstimate]
    calibration: Calibration
    warnings: list[str] = field(default_factory=list)

    @property
    def gpu(self) -> bool:
        return self.hw is not None and self.hw.gpu

    @property
    def unit(self) -> str:
        """``GPU-h`` or ``CPU-h``."""
        return "GPU-h" if self.gpu or self.hw is None else "CPU-h"

    def hours(self, seconds: float) -> float:
        """Accelerator-hours (× count) of ``seconds`` on the declared hardware; CPU-hours on a CPU."""
        return seconds * (self.count if self.gpu else 1) / 3600

    def usd(self, seconds: float) -> float | None:
        return self.hours(seconds) * self.price if self.gpu and self.price is not None else None

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.rows)

    @property
    def upper_seconds(self) -> float:
        return sum(r.upper_seconds for r in self.rows)

    def of(self, node: Any) -> NodeEstimate | None:
        """The estimate of ``node`` (by its key), or None when it will not run."""
        return self.nodes.get(node.key)

    def wall_clock(self) -> tuple[float, float]:
        """``(one at a time, least with parallel workers)`` in estimated seconds. The first is the sum
        (``--executor local`` builds one node after another). The second bounds ``--executor ray`` with
        enough GPUs from below: the plan's critical path weighted by the estimates
        (:func:`rmxbench.pipeline.graph.chain_depths`, the chains :meth:`Plan.parallelism` counts), or the
        busiest model's nodes if more (they run one after another in that model's worker). Nodes
        without an estimate count 0. The GPU-hours and USD do not depend on the executor: every node
        holds its GPUs for its own time."""
        from collections import Counter

        from rmxbench.pipeline.graph import chain_depths

        todo = [e.node for e in self.nodes.values()]
        secs = {e.node.key: e.seconds or 0.0 for e in self.nodes.values()}
        depth = chain_depths(todo, weight=lambda n: secs[n.key])
        per_model: Counter = Counter()
        for n in todo:
            if n.engine is not None:
                per_model[n.engine.model] += secs[n.key]
        return self.seconds, max(max(depth.values(), default=0.0), max(per_model.values(), default=0.0))

    def cell(self, item: Any) -> str:
        """The plan table's estimate cell of a plan item (``""`` for items that will not run)."""
        e = self.of(item.node) if item.node is not None and item.to_run else None
        if e is None:
            return ""
        if e.seconds is None:
            return e.status
        return fmt_seconds(e.seconds) + ("" if e.calibrated else " (table)")

    def hardware_text(self) -> str:
        if self.hw is None:
            return f"{self.plan.spec.pricing.hardware.gpu_type} (not in the throughput table)"
        if not self.hw.gpu:
            return "CPU (process CPU time; no USD)"
        price = f" at ${self.price:g}/GPU-h" if self.price is not None else ""
        return f"{self.count} x {self.hw.key}{price}"


def fmt_seconds(s: float) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h``, ``5.1 d``."""
    if s < 90:
        return f"{s:.0f} s" if s >= 1 else f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h" if s < 3 * 86400 else f"{s / 86400:.1f} d"


# ----------------------------------------------------------------------------- sizes and calibration


class _Sizes:
    """Model sizes and identity keys of one plan (each model measured once)."""

    def __init__(self, plan: Any):
        from rmxbench.pipeline.identity import HashCache

        self.plan, self.cache = plan, {}
        self.hashes = HashCache.for_home(plan.store.home)

    def of(self, ref: Any) -> tuple[ModelSize | None, str | None]:
        from rmxbench.pipeline.identity import model_identity, model_key

        if ref is None:
            return None, None
        k = ref.model_dump_json()
        if k not in self.cache:
            mk = model_key(model_identity(ref, spec_dir=self.plan.ctx.dir, hashes=self.hashes))
            size = model_size(ref, spec_dir=self.plan.ctx.dir, home=self.plan.store.home, key=mk.split(":", 1)[-1])
            self.cache[k] = (size, mk)
        return self.cache[k]

    def of_node(self, node: Any, work: Work) -> tuple[ModelSize | None, str | None, str]:
        """Size and model key of a node's work; an RL checkpoint of unknown size takes its base's."""
        size, mk = self.of(work.model)
        if size is None and work.model is not None:
            row = next((i.row for i in self.plan.items if i.row_id == node.row_id), None)
            if row is not None and row.kind != "base" and row.base.model != work.model:
                bsize, _ = self.of(row.base.model)
                if bsize is not None:
                    return bsize, mk, f"{bsize.source}; the base model's size (this checkpoint's is unknown)"
        return size, mk, size.source if size is not None else ""


def _work_of(plan: Any, node: Any) -> Work | None:
    fn = getattr(plan.table[node.stage].load(), "work", None)
    return fn(node.config, node.inputs) if fn is not None else None


def calibrate(plan: Any, sizes: _Sizes) -> Calibration:
    """The calibration from the plan's store: every meter with an estimate record, plus the plan's cached
    nodes (their work declared now). Two passes: completion lengths first, then the rest."""
    raws: list[tuple] = []
    seen: set[Path] = set()
    for stage, art, meter in store_meters(plan.store.home, plan.table):
        if isinstance(meter.get("estimate"), dict) and isinstance(meter["estimate"].get("work"), dict):
            raws.append(("recorded", stage, meter, None))
            seen.add(art.resolve())
    for node in plan.graph.nodes:
        d = plan.store.get(node.stage, node.key)
        if d is None or d.resolve() in seen:
            continue
        from rmxbench.pipeline.metering import read_meter

        meter = read_meter(d)
        work = _work_of(plan, node) if meter is not None else None
        if work is None:
            continue
        try:
            size, mk, _ = sizes.of_node(node, work)
        except UserError:
            continue
        seen.add(d.resolve())
        raws.append(("plan", node.stage, meter, (work, size, mk, work.backend or getattr(node.engine, "backend", None))))
    cal = Calibration()
    for _ in range(2):
        samples = []
        for kind, stage, meter, extra in raws:
            if kind == "recorded":
                s = recorded_sample(stage, meter)
                if s is not None and s.model_key is not None and not s.fixed and cal.completion:
                    rec = meter["estimate"]
                    s = sample_of(stage, meter, Work.from_json(rec["work"]), ModelSize.from_json(rec["size"]),
                                  s.model_key, backend=rec.get("backend"), mean_new=cal.mean_new(s.model_key))
            else:
                work, size, mk, be = extra
                s = sample_of(stage, meter, work, size, mk, backend=be, mean_new=cal.mean_new(mk))
            if s is not None:
                samples.append(s)
        cal = Calibration(samples=samples).fit()
    return cal


# ----------------------------------------------------------------------------- the estimate


def estimate_node(node: Any, work: Work | None, *, sizes: _Sizes, hw: Accelerator | None, count: int,
                  cal: Calibration, starts: list, memory_utilization: float) -> NodeEstimate:
    """The estimate of one node to run (module doc)."""
    if work is None:
        return NodeEstimate(node, "no estimate", basis=f"stage {node.stage!r} declares no work (no `work` function)")
    if hw is None:
        return NodeEstimate(node, "hardware unknown", work=work)
    size, mk, size_src = sizes.of_node(node, work) if work.uses_model else (None, None, "")
    if work.uses_model and size is None:
        ref = work.model
        where = f"{ref.repo}@{ref.revision}" if getattr(ref, "repo", None) else str(getattr(ref, "path", ref))
        return NodeEstimate(node, "size unknown", work=work, model_key=mk,
                            basis=f"size of {where} unknown offline: set `params` on its model reference, or "
                                  "rerun with --online once (the hub's metadata is then cached in the store)")
    backend = work.backend or getattr(node.engine, "backend", None)
    share = cal.selected_share(work.variant, mk)
    mean_new = cal.mean_new(mk)
    # devices that compute: the engine's (vLLM tensor parallel), else one; all `count` are billed
    used = max(1, min(count, int(getattr(node.engine, "accelerators", 1) or 1))) if hw.gpu else 1
    b = cost_model.seconds(work, size, hw, count=used, backend=backend, mean_new=mean_new, share=share or 1.0,
                           memory_utilization=memory_utilization)
    ub = cost_model.seconds(work, size, hw, count=used, backend=backend, mean_new=lambda v, cap: float(cap),
                            memory_utilization=memory_utilization)
    f = cal.factor(work.variant, hw.key)
    cold = any(getattr(ev, "cold", False) for ev in starts)
    sf = cal.start_factors.get((hw.key, cold))
    start_model = sum(cost_model.load_seconds(size, backend=ev.backend, gpu=hw.gpu, eager=getattr(
        node.engine, "enforce_eager", None), dtype=work.dtype, cold=cold) for ev in starts) if size is not None else 0.0
    s_mult = sf[0] if sf else 1.0
    setup = cal.setup(work.variant, hw.key) if work.uses_model else None
    if setup is not None:  # measured set-up outside the work loop (its own model loads included)
        other = setup[0]
    else:
        fixed = b.fixed
        if not work.uses_model and (hit := cal.fixed.get((work.variant, hw.key))):
            fixed = hit[0]
        other = s_mult * b.loads + fixed
    factor = f[0] if f else 1.0
    secs = factor * b.compute + other + s_mult * start_model
    upper = factor * ub.compute + other + s_mult * start_model
    calibrated = bool(f) or (not work.uses_model and (work.variant, hw.key) in cal.fixed)
    parts = []
    if work.uses_model:
        parts.append(f"{size_src}; {backend or 'hf'} on {hw.key}")
        parts.append(f"x{factor:.3g} from {f[1]} measured {f[2]} node(s)" if f else "throughput table (uncalibrated)")
        if share is not None:
            parts.append(f"selected share {share:.2f} measured")
    else:
        parts.append("bookkeeping: mean of measured nodes" if calibrated else "bookkeeping: assumed seconds")
    if setup is not None:
        parts.append(f"set-up {setup[0]:.3g} s measured on {setup[1]} node(s)")
    if starts:
        parts.append(f"{len(starts)} {'first ' if cold else ''}engine start(s)" + (f" x{s_mult:.3g} measured" if sf else ""))
    if work.note:
        parts.append(work.note)
    return NodeEstimate(node, "estimated", work=work, size=size, model_key=mk, backend=backend, seconds=secs,
                        upper_seconds=upper, breakdown=b, calibrated=calibrated, factor=factor, starts=list(starts),
                        start_seconds=start_model, basis="; ".join(parts))


def estimate_plan(plan: Any, *, online: bool = False) -> PlanEstimate:
    """The estimate of every selected node ``plan`` will run (module doc). Never loads a model.

    Args:
        online: allow hub look-ups of model sizes (``--online``; cached in the store afterwards).
    Raises:
        UserError: unreadable local weights, or a failed online look-up.
    """
    import os

    from rmxbench.backends.session import starts_in_order
    from rmxbench.estimate.model_size import ONLINE_ENV

    if online:
        os.environ[ONLINE_ENV] = "1"
    spec = plan.spec
    gt = spec.pricing.hardware.gpu_type
    hw = lookup(gt)
    count = spec.pricing.hardware.count if gt is not None else 1
    price = spec.pricing.usd_per_hour.get(gt) if gt is not None else None
    warnings = []
    if hw is None:
        warnings.append(f"pricing.hardware.gpu_type {gt!r} is not in rmxbench's throughput table "
                        f"(rmxbench/estimate/hardware.py; known: {', '.join(known_names())}): no estimate")
    sizes = _Sizes(plan)
    cal = calibrate(plan, sizes)
    order, seen = [], set()
    for n in plan.run_order():  # a key shared by several rows' nodes is built once (the runner's rule)
        if n.key not in seen:
            seen.add(n.key)
            order.append(n)
    started = dict(zip((n.key for n in order), starts_in_order([n.engine for n in order])))
    mem_util = spec.protocol.vllm.gpu_memory_utilization
    nodes: dict[str, NodeEstimate] = {}
    cold = True  # the run's first engine start pays the library imports, unless a build loaded a model before
    for n in order:
        ev, work = started.get(n.key), _work_of(plan, n)
        if ev is not None:
            ev.cold, cold = cold, False
        elif work is not None and work.model_loads:
            cold = False
        nodes[n.key] = estimate_node(n, work, sizes=sizes, hw=hw, count=count, cal=cal,
                                     starts=[ev] if ev is not None else [], memory_utilization=mem_util)
    est = PlanEstimate(plan, hw, count, price, nodes, [], cal, warnings)
    by_row: dict[str, list[NodeEstimate]] = {}
    for n in order:
        by_row.setdefault(n.row_id, []).append(nodes[n.key])
    position = {id(i.node): k for k, i in enumerate(plan.items) if i.node is not None}
    for item in plan.items:
        if item.row_id in by_row and all(r.row_id != item.row_id for r in est.rows):
            r = RowEstimate(item.row_id, sorted(by_row[item.row_id], key=lambda e: position.get(id(e.node), 0)))
            r.seconds = sum(e.seconds for e in r.estimated)
            r.upper_seconds = sum(e.upper_seconds for e in r.estimated)
            r.hours, r.usd = est.hours(r.seconds), est.usd(r.seconds) if r.estimated else None
            r.train_seconds = sum(e.seconds for e in r.estimated if plan.table[e.node.stage].training)
            r.train_hours = est.hours(r.train_seconds)
            r.train_usd = est.usd(r.train_seconds) if r.train_seconds else None
            est.rows.append(r)
    return est
