"""The board's view of a spec: everything the board reads from a :class:`~rmxbench.spec.schema.Spec`,
built once by :func:`board_view` (issue 17). The board model, the formatted table and the renderers
read this view, never the Spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rmxbench.spec.benchmarks import BENCHMARKS


@dataclass(frozen=True)
class ViewRow:
    """One row of the board as the spec declares it (paper Table 3 row).

    Attributes:
        id: the spec row id.
        kind: ``base`` | ``rl_baseline`` | ``reasonmaxxer``.
        display_name: the row's name on the board (``+ SimpleRL-Zoo``; a base row: the model name).
        base_id, base_name, family: the row's base model and its family (the board's group).
        model_items: what the row evaluates, as provenance pairs: ``("model ref", "org/m@rev")``,
            or for a ReasonMaxxer row ``("base model", …), ("recipe", name)``.
        reported: the spec's pointer into the paper's numbers (:class:`Reported`) or None.
        cost: the spec's published cost (:class:`rmxbench.spec.schema.Cost`) or None.
        unavailable: why an RL baseline has no public checkpoint, or None.
        trained: an RL-baseline row rmxbench trains itself (``train:`` in the spec).
        seeds: the training seeds a trained row declares (``seeds:``, issue 19; one record per seed
            and task, averaged on the board); ``()`` for a row without them.
    """

    id: str
    kind: str
    display_name: str
    base_id: str
    base_name: str
    family: str
    model_items: tuple[tuple[str, str], ...]
    reported: Any = None
    cost: Any = None
    unavailable: str | None = None
    trained: bool = False
    seeds: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """Name in the Model column: the base's name, or ``↪ <display_name>`` for derived rows."""
        return self.display_name if self.kind == "base" else f"↪ {self.display_name}"

    @property
    def title(self) -> str:
        """Name that identifies the row on its own: ``<base name> <display_name>`` (a base row: its name)."""
        return self.display_name if self.kind == "base" else f"{self.base_name} {self.display_name}"


@dataclass(frozen=True)
class BoardView:
    """What the board needs from the spec.

    Attributes:
        suite, description: ``suite.name`` / ``suite.description``.
        tasks: ``protocol.tasks`` in order (the task columns).
        metrics: task -> metric name (``pass@1`` / ``avg@k``), from :meth:`Protocol.metric`.
        task_labels: task -> column label (the benchmark records, paper Table 3 headers).
        rows: every row in spec order (base, its RL baselines, its ReasonMaxxer rows).
        pricing: the spec's :class:`rmxbench.spec.schema.Pricing` (the published-cost fallback).
        meta: ``(key, text)`` lines describing the protocol, pricing and hardware.
    """

    suite: str
    description: str
    tasks: tuple[str, ...]
    metrics: dict[str, str]
    task_labels: dict[str, str]
    rows: tuple[ViewRow, ...]
    pricing: Any
    meta: tuple[tuple[str, str], ...]


def board_view(spec) -> BoardView:
    """The :class:`BoardView` of a validated spec (no I/O)."""
    tasks = tuple(spec.protocol.tasks)
    metrics = {t: spec.protocol.metric(t).name for t in tasks}
    labels = {t: BENCHMARKS[t].label if t in BENCHMARKS else t for t in tasks}
    rows = []
    for base, kind, r in spec.rows():
        if kind == "reasonmaxxer":
            items = (("base model", _model_ref_text(base)), ("recipe", r.recipe))
        else:
            items = (("model ref", _model_ref_text(r)),)
        rows.append(ViewRow(
            id=r.id, kind=kind, display_name=r.display_name, base_id=base.id, base_name=base.display_name,
            family=base.family, model_items=items, reported=r.reported, cost=getattr(r, "cost", None),
            unavailable=getattr(r, "unavailable", None), trained=getattr(r, "train", None) is not None,
            seeds=tuple(getattr(r, "seeds", None) or ()) if kind != "base" else (),
        ))
    return BoardView(
        suite=spec.suite.name, description=spec.suite.description, tasks=tasks, metrics=metrics,
        task_labels=labels, rows=tuple(rows), pricing=spec.pricing, meta=_meta_items(spec.protocol, spec.pricing,
                                                                                       labels, metrics),
    )


def _model_ref_text(spec_row) -> str:
    m = getattr(spec_row, "model", None)
    if m is None:
        return "—"
    s = f"{m.repo}@{m.revision}" if m.repo else str(m.path)
    if m.gguf_file:
        s += f" ({m.gguf_file})"
    return s


def _meta_items(p, pr, labels: dict[str, str], metrics: dict[str, str]) -> tuple[tuple[str, str], ...]:
    pa = p.pass_at_1
    items = [
        ("tasks", ", ".join(f"{labels[t]} ({metrics[t]})" for t in p.tasks)),
        ("pass@1 decoding", f"temperature {pa.temperature}, top-p {pa.top_p}, top-k {pa.top_k}"
                            + (" (greedy)" if pa.temperature == 0 else "")),
    ]
    sampled = [p.metric(t) for t in p.tasks if metrics[t] != "pass@1"]  # avg@k columns (Protocol.metric)
    if sampled:
        m = sampled[0]
        items.append((f"{m.name} decoding", f"{m.k} samples, temperature {m.sampling.temperature}, top-p {m.sampling.top_p}"))
    items.append(("generation", f"max {p.max_new_tokens} new tokens, context {p.max_model_len}, "
                                f"backend {p.backend}, seed {p.seed}"))
    if p.limit:
        items.append(("subsets", ", ".join(f"{t}: first {n}" for t, n in sorted(p.limit.items()))))
    prices = ", ".join(f"{k} ${v}/h" for k, v in sorted(pr.usd_per_hour.items()))
    items.append(("pricing", f"{prices} ({pr.source}, {pr.date.isoformat()})"))
    hw = pr.hardware
    items.append(("hardware", f"{hw.count} × {hw.gpu_type}" if hw.gpu_type else "CPU only (costs in CPU-hours)"))
    return tuple(items)
