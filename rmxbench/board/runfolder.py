"""The run folder of a suite, ``<home>/runs/<suite>/``: written by the runner, read by the board.

Files:

* ``results.jsonl`` — one :class:`~rmxbench.results.TaskRecord` JSON per line (a later line for
  the same ``(row_id, task, seed)`` replaces an earlier one; ``seed``: a training seed of a row with
  ``seeds:``, absent otherwise);
* ``costs.json`` — ``{row_id: RowCost JSON}``;
* ``notes.json`` — ``{row_id: note}`` (e.g. "too few mixed-success problems");
* ``stages.json`` — what the last run built and found cached (labels, wall seconds);
* ``analyses.json`` — the artifact folders of the spec's analyses (paper §3, §4, §6.3), in order.
* ``figures.json`` — ``{row_id: [PNG path in the store]}``: stage figures shown with the board (a
  training seed's figures under ``<row_id>[seed=<s>]``, :func:`rmxbench.results.seeded_row_key`).
* ``estimates.json`` — per node with an artifact: the cost estimate made before it ran beside what it
  measured (:func:`rmxbench.orchestrator.estimate_report.node_report`; issue 20).
"""

from __future__ import annotations

import json
from pathlib import Path

from rmxbench.results import RowCost, TaskRecord, atomic_write_json, atomic_write_text

RESULTS_FILE = "results.jsonl"
COSTS_FILE = "costs.json"
NOTES_FILE = "notes.json"
STAGES_FILE = "stages.json"
ANALYSES_FILE = "analyses.json"
FIGURES_FILE = "figures.json"
ESTIMATES_FILE = "estimates.json"


def write_run(home: str | Path, suite: str, records: list[TaskRecord], costs: dict[str, RowCost],
              notes: dict[str, str], stages: dict, analyses: list[Path] = ()) -> Path:
    """Write a run's files (atomically, each) and return the results file."""
    d = run_dir(home, suite)
    lines = [json.dumps(r.to_json(), sort_keys=True, default=str) for r in records]
    atomic_write_text(d / RESULTS_FILE, "".join(x + "\n" for x in lines))
    atomic_write_json(d / COSTS_FILE, {k: v.to_json() for k, v in sorted(costs.items())})
    atomic_write_json(d / NOTES_FILE, dict(sorted(notes.items())))
    atomic_write_json(d / STAGES_FILE, stages)
    atomic_write_json(d / ANALYSES_FILE, [str(p) for p in analyses])
    return d / RESULTS_FILE


def run_dir(home: str | Path, suite: str) -> Path:
    """Folder holding one suite's stored run: ``<home>/runs/<suite>/`` (see module doc)."""
    return Path(home) / "runs" / suite


def load_run(home: str | Path, suite: str) -> tuple[list[TaskRecord], dict[str, RowCost], dict[str, str]]:
    """Read ``records, costs, notes`` of a stored run (missing files -> empty).

    Raises:
        rmxbench.errors.UserError: a file is not valid JSON / not the expected shape
            (names the file and line).
    """
    from rmxbench.errors import UserError

    d = run_dir(home, suite)
    records: list[TaskRecord] = []
    rpath = d / RESULTS_FILE
    if rpath.exists():
        for lineno, line in enumerate(rpath.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(TaskRecord.from_json(json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise UserError(
                    f"{rpath}:{lineno}: not a TaskRecord JSON line ({exc})",
                    hint="the runner writes this file; rerun `rmxbench run SPEC` to rebuild it",
                ) from None

    def _json_obj(path: Path) -> dict:
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UserError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a JSON object {{row_id: ...}}, got {type(data).__name__}")
        return data

    costs = {}
    for rid, c in _json_obj(d / COSTS_FILE).items():
        try:
            costs[rid] = RowCost.from_json(c)
        except TypeError as exc:
            raise UserError(f"{d / COSTS_FILE}: row {rid!r} is not a RowCost ({exc})") from None
    notes = {rid: str(n) for rid, n in _json_obj(d / NOTES_FILE).items()}
    return records, costs, notes


def load_analyses(home: str | Path, suite: str) -> list[Path]:
    """Analysis artifact folders of a stored run that still exist (missing file -> empty list)."""
    p = run_dir(home, suite) / ANALYSES_FILE
    try:
        folders = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(f) for f in folders if isinstance(f, str) and (Path(f) / "result.json").is_file()]


def write_figures(home: str | Path, suite: str, figures: dict[str, list[str]]) -> None:
    """Record the stage figures of the run (``figures.json``, see module doc)."""
    atomic_write_json(run_dir(home, suite) / FIGURES_FILE, dict(sorted(figures.items())))


def load_figures(home: str | Path, suite: str) -> dict[str, list[str]]:
    """``{row_id: [PNG path]}`` of the stored run ({} if none or unreadable)."""
    try:
        data = json.loads((run_dir(home, suite) / FIGURES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): [str(p) for p in v] for k, v in data.items() if isinstance(v, list)} if isinstance(data, dict) else {}


def write_estimates(home: str | Path, suite: str, nodes: list[dict]) -> None:
    """Record estimate vs measurement per node of the run (``estimates.json``, see module doc)."""
    atomic_write_json(run_dir(home, suite) / ESTIMATES_FILE, nodes)


def load_estimates(home: str | Path, suite: str) -> list[dict]:
    """The nodes of ``estimates.json`` ([] if none or unreadable)."""
    try:
        data = json.loads((run_dir(home, suite) / ESTIMATES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
