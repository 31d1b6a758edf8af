"""Benchmark and training-pool data, and what identifies it: hub datasets by default, a local data
dir on request, as each benchmark's record says (:mod:`rmxbench.spec.benchmarks`).

Every loader returns rows with at least ``id`` (str), ``problem`` (str) and ``answer`` (str,
the final gold answer), the format of ``shared/benchmarks/*.jsonl``. The data dir is chosen once
(:func:`rmxbench.spec.context.resolve_data_dir`: ``--data-dir``, ``$RMXBENCH_DATA_DIR``, the
spec's ``protocol.data_dir``); with none, the public hub datasets are used. An embedded benchmark
(``tinymath``, ``embedded_train``) always comes from the package. :func:`data_identity` states
what identifies a benchmark's rows in content keys and provenance (the kernel only hashes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rmxbench.errors import UserError
from rmxbench.spec.benchmarks import Benchmark, benchmark


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSONL file; each line one JSON object.

    Raises:
        UserError: missing file or a line that is not a JSON object (names file and line).
    """
    if not path.is_file():
        raise UserError(f"benchmark file {path} {'is not a file' if path.exists() else 'not found'}")
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


def embedded_path(record: Benchmark) -> Path:
    """The packaged JSONL file of an embedded benchmark (``rmxbench/embedded/tinymath/<split>.jsonl``).

    Raises:
        ValueError: the benchmark is not embedded.
    """
    if record.embedded is None:
        raise ValueError(f"{record.name} is not an embedded benchmark")
    from rmxbench.embedded import tinymath_path

    return tinymath_path(record.embedded)


def load_benchmark(name: str, *, data_dir: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Load benchmark or pool ``name`` (the first ``limit`` rows if given).

    Args:
        name: a name in :data:`rmxbench.spec.benchmarks.BENCHMARKS`.
        data_dir: folder of JSONL files (shared/benchmarks format); None = hub datasets.
        limit: keep the first N rows (source order).

    Raises:
        UserError: unknown name, missing file, malformed rows, or hub unreachable.
    """
    ds = benchmark(name)
    if ds.derived_from:
        from rmxbench.evaluation.derived import DERIVATIONS

        rows = DERIVATIONS[ds.derive](*(load_benchmark(n, data_dir=data_dir) for n in ds.derived_from))
    elif ds.embedded:
        rows = read_jsonl(embedded_path(ds))
    elif data_dir is not None:
        rows = read_jsonl(Path(data_dir) / ds.file)
        if not rows:
            raise UserError(f"benchmark file {Path(data_dir) / ds.file} has no problems (needed for {name!r})",
                            hint="each line: a JSON object with id, problem, answer (see shared/benchmarks)")
    else:
        from rmxbench.evaluation.hub_data import load_hub_benchmark

        rows = load_hub_benchmark(name)
    return rows[:limit] if limit else rows


def data_identity(name: str, data_dir: Path | None, hashes: Any = None) -> dict[str, Any]:
    """What identifies benchmark/pool ``name``'s rows (a part of content keys and provenance): its
    JSONL file's sha256 (data dir or embedded), its hub source (dataset id, configs, split), or for
    a derived benchmark the derivation's version and its sources' identities.

    Args:
        hashes: the :class:`rmxbench.pipeline.identity.HashCache` to hash files through (default:
            the in-memory one).

    Raises:
        UserError: unknown name, or the data dir lacks the file (names it and the flag to fix it).
    """
    from rmxbench.pipeline.identity import HashCache

    hashes = hashes or HashCache.for_home(None)
    ds = benchmark(name)
    if ds.derived_from:
        from rmxbench.evaluation.derived import VERSIONS

        return {"derived": name, "version": VERSIONS[ds.derive],
                "from": [data_identity(n, data_dir, hashes) for n in ds.derived_from]}
    if ds.embedded:
        return {"embedded": name, "sha256": hashes.sha256(embedded_path(ds))}
    if data_dir is not None:
        f = Path(data_dir) / ds.file
        if not f.is_file():
            raise UserError(f"benchmark file {f} not found (needed for {name!r})",
                            hint="pass --data-dir pointing at a folder with the shared/benchmarks files, "
                                 "or omit it to use the hub datasets")
        return {"file": ds.file, "sha256": hashes.sha256(f)}
    ident: dict[str, Any] = {"hub": name}
    if ds.hub is not None:
        ident["source"] = [ds.hub.dataset, list(ds.hub.configs), ds.hub.split]
    return ident
