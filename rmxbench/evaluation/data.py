"""Benchmark and training-pool data: hub datasets by default, a local data dir on request.

Every loader returns rows with at least ``id`` (str), ``problem`` (str) and ``answer`` (str,
the final gold answer), the format of ``shared/benchmarks/*.jsonl``. The data dir is chosen by
(first wins) the explicit argument / ``--data-dir`` flag, the ``RMXBENCH_DATA_DIR`` environment
variable, the spec's ``protocol.data_dir``; with none set, the public hub datasets are used.
The embedded synthetic benchmark (``tinymath``, ``embedded_train``) always comes from the package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rmxbench.errors import UserError

DATA_DIR_ENV = "RMXBENCH_DATA_DIR"


def resolve_data_dir(explicit: str | Path | None = None, spec_value: str | None = None) -> Path | None:
    """Pick the data dir: ``explicit`` > ``$RMXBENCH_DATA_DIR`` > ``spec_value`` > None (hub).

    Raises:
        UserError: the chosen directory does not exist.
    """
    for value, origin in ((explicit, "--data-dir"), (os.environ.get(DATA_DIR_ENV), f"${DATA_DIR_ENV}"),
                          (spec_value, "protocol.data_dir")):
        if value:
            p = Path(value).expanduser()
            if not p.is_dir():
                raise UserError(f"data dir {str(value)!r} (from {origin}) is not a directory")
            return p.resolve()
    return None


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSONL file; each line one JSON object.

    Raises:
        UserError: missing file or a line that is not a JSON object (names file and line).
    """
    if not path.is_file():
        raise UserError(f"benchmark file {path} not found")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not {"id", "problem", "answer"} <= row.keys():
                raise UserError(f"{path}:{i}: each line needs fields id, problem, answer")
            rows.append(row)
    return rows


def load_benchmark(name: str, *, data_dir: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Load benchmark or pool ``name`` (the first ``limit`` rows if given).

    Args:
        name: a name in :data:`rmxbench.evaluation.benchmarks.DATASETS`.
        data_dir: folder of JSONL files (shared/benchmarks format); None = hub datasets.
        limit: keep the first N rows (source order).

    Raises:
        UserError: unknown name, missing file, malformed rows, or hub unreachable.
    """
    from rmxbench.evaluation.benchmarks import DATASETS

    ds = DATASETS.get(name)
    if ds is None:
        raise UserError(f"unknown benchmark {name!r}; known: {sorted(DATASETS)}")
    if ds.derived_from:
        from rmxbench.evaluation.derived import DERIVATIONS

        rows = DERIVATIONS[ds.derive](*(load_benchmark(n, data_dir=data_dir) for n in ds.derived_from))
    elif ds.embedded:
        rows = read_jsonl(ds.embedded_path())
    elif data_dir is not None:
        rows = read_jsonl(Path(data_dir) / ds.file)
    else:
        from rmxbench.evaluation.hub_data import load_hub_benchmark

        rows = load_hub_benchmark(name)
    return rows[:limit] if limit else rows
