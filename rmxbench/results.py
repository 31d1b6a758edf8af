"""Result records: one per (row, task), carrying its own provenance (HELM-style cells).

A :class:`TaskRecord` holds the score, the per-problem verdicts (for bootstrap confidence
intervals and paired tests on the board) and everything needed to say where the number came
from. Records are JSON files written atomically by the evaluation stage.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TaskRecord:
    """Score of one row on one task.

    Attributes:
        row_id: board row id (spec id of the base, RL baseline or ReasonMaxxer row).
        task: task name (``rmxbench.spec.schema.TASKS``).
        metric: ``"pass@1"`` or ``"avg@k"`` with k filled in (e.g. ``"avg@8"``).
        score: mean correctness in [0, 1] (avg@k = mean over all k samples of every problem).
        n_problems: problems scored.
        k: samples per problem (1 for pass@1).
        per_problem: problem id -> list of k verdicts (bools), in sample order.
        extra: other metrics, e.g. ``{"pass@8": 0.3, "maj@8": 0.2}``.
        timeouts: grader checks that hit the time bound (counted as incorrect).
        malformed: completions with no extractable answer.
        provenance: model ref + revision or adapter hash, decoding, seeds, grader version,
            lm-eval version, hardware, date, wall seconds.
        seed: the training seed of the weights evaluated, for a trained row that declares
            ``seeds:`` (one record per seed and task; the board averages them); None otherwise
            (and then left out of the JSON, so records of rows without seeds read as before).
    """

    row_id: str
    task: str
    metric: str
    score: float
    n_problems: int
    k: int
    per_problem: dict[str, list[bool]]
    extra: dict[str, float] = field(default_factory=dict)
    timeouts: int = 0
    malformed: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["seed"] is None:
            del out["seed"]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TaskRecord":
        return cls(**data)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder + fsync + ``os.replace``.

    A reader never sees a partial file; a crash leaves either the old file or none.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> None:
    """:func:`atomic_write_text` of ``json.dumps(data, indent=1, sort_keys=True)``."""
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


@dataclass
class RowCost:
    """Training cost of one board row.

    For rows rmxbench trains it is measured from the training stages' meters (ReasonMaxxer:
    rollouts + entropy + τ sweep training + validation + pick, paper App. D; an RL row with
    ``train:``: its ``grpo`` stage); for published RL baselines it is the figure from the spec.

    Attributes:
        usd: cost in USD, or None (CPU-only run, or not published).
        gpu_hours: accelerator-hours (seconds × accelerators / 3600), or None.
        cpu_hours: CPU wall-hours for CPU-only runs, or None.
        gpu_type: accelerator the hours refer to.
        basis: measured | reported | estimated | derived | unspecified.
        source: where the figure comes from.
        stage_seconds: wall seconds per stage (measured rows only).
        note: what the board must say about the figure, e.g. that the stages ran on a GPU other
            than ``pricing.hardware.gpu_type`` (and how it was priced, or that it has no price);
            "" when there is nothing to say.
        estimate: the cost estimate its nodes recorded before they ran, beside the measurement
            (:func:`rmxbench.orchestrator.estimate_report.row_estimate`: ``estimated_seconds``,
            ``measured_seconds``, ``unit``, ``nodes``, ``calibrated``, ``measured_over_estimated``), or None.
        per_seed: for a trained row with ``seeds:`` (issue 19): training seed (as text) -> that
            seed's ``{"usd", "gpu_hours", "cpu_hours"}``; the figures above are then the mean per
            seed (:func:`rmxbench.pricing.seed_mean_cost`). Empty otherwise (and left out of the JSON).
    """

    usd: float | None = None
    gpu_hours: float | None = None
    cpu_hours: float | None = None
    gpu_type: str | None = None
    basis: str = "unspecified"
    source: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    note: str = ""
    estimate: dict[str, Any] | None = None
    per_seed: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if not out["per_seed"]:
            del out["per_seed"]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RowCost":
        return cls(**data)


def seeded_row_key(row_id: str, seed: int | None) -> str:
    """The key of one training seed's output of a row where a mapping is keyed by row id (the run
    folder's ``figures.json``): ``row_id`` (``seed=None``) or ``<row_id>[seed=<seed>]``. Row ids
    never contain ``[`` (spec ids: ``a-z 0-9 . _ -``). Inverse: :func:`split_seeded_row_key`."""
    return row_id if seed is None else f"{row_id}[seed={int(seed)}]"


def split_seeded_row_key(key: str) -> tuple[str, int | None]:
    """``(row_id, seed)`` of a :func:`seeded_row_key` (``seed`` None for a plain row id)."""
    if key.endswith("]") and "[seed=" in key:
        row_id, _, rest = key.partition("[seed=")
        if rest[:-1].isdigit():
            return row_id, int(rest[:-1])
    return key, None
