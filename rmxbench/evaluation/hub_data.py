"""Public Hugging Face hub sources of the benchmarks (the default data source for users).

Each benchmark's record (:mod:`rmxbench.spec.benchmarks`, ``hub``) names one public hub dataset (id,
configs, split) and a row mapper of :data:`MAPPERS` that turns
the dataset's own fields into rmxbench's row format ``{id, problem, answer, solution}`` — the
same format and the same answer normalisation as ``shared/benchmarks/*.jsonl`` (see
``PROVENANCE.md`` there), so a run on the hub and a run on a local data dir grade the same
strings. Loading needs network access; the mappers are pure functions and are unit-tested on
rows shaped like each dataset's (``tests/test_tasks.py``).

Sources. Field names checked against the dataset cards (``dataset_info`` in README.md) for
``HuggingFaceH4/aime_2024`` and ``math-ai/minervamath``; ``math-ai/amc23`` has one ``test``
parquet file (field names not shown on its card: the mapper accepts ``question`` or ``problem``
and a float or string ``answer``); the others are the standard, widely used copies (lighteval
uses ``Hothan/OlympiadBench``):

- ``gsm8k``/``gsm8k_train``: ``openai/gsm8k`` config ``main``, splits ``test`` (1319) /
  ``train`` (7473); fields ``question``, ``answer`` (solution text ending in ``#### N``).
- ``math500``: ``HuggingFaceH4/MATH-500`` split ``test`` (500); fields ``problem``, ``solution``,
  ``answer``, ``subject``, ``level``, ``unique_id`` (the PRM800K split of Lightman et al.).
- ``minerva_math``: ``math-ai/minervamath`` split ``test`` (272); fields ``question``, ``answer``.
- ``olympiadbench``: ``Hothan/OlympiadBench`` config ``OE_TO_maths_en_COMP`` split ``train``
  (675 English text-only open-ended maths problems); fields ``id``, ``question``,
  ``final_answer`` (list of ``$...$`` strings), ``solution`` (list).
- ``aime24``: ``HuggingFaceH4/aime_2024`` split ``train`` (30); fields ``id``, ``problem``,
  ``solution``, ``answer``, ``url``, ``year``.
- ``amc23``: ``math-ai/amc23`` split ``test`` (40); fields ``id``, ``question``, ``answer``
  (a float such as ``27.0``), ``url``.
- ``math_train``: ``EleutherAI/hendrycks_math`` (one config per subject) split ``train``
  (7500 in total); fields ``problem``, ``level``, ``type``, ``solution``; the answer is the
  last ``\\boxed{}`` of the solution, as for the local file.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from rmxbench.errors import UserError
from rmxbench.spec.benchmarks import benchmark

Row = dict[str, Any]


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text`` with balanced braces, or None."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    i = text.find("{", idx)
    if i < 0:
        m = re.match(r"\\boxed (\S+)", text[idx:])
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def _int_string(value: Any) -> str:
    """``27.0`` / ``"027"`` / ``27`` -> ``"27"``; anything non-integral is returned as text."""
    s = str(value).strip()
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if f == int(f) else s


def _gsm8k(name: str, i: int, r: Row) -> Row:
    sol = r["answer"]
    ans = sol.split("####")[-1].strip().replace(",", "")
    return {"id": f"{name}/{i:04d}", "problem": r["question"], "answer": ans, "solution": sol}


def _math500(name: str, i: int, r: Row) -> Row:
    return {"id": f"{name}/{i:04d}", "problem": r["problem"], "answer": str(r["answer"]),
            "solution": r.get("solution"), "level": r.get("level"), "subject": r.get("subject"),
            "unique_id": r.get("unique_id")}


def _minerva(name: str, i: int, r: Row) -> Row:
    return {"id": f"{name}/{i:04d}", "problem": r.get("problem") or r["question"],
            "answer": str(r["answer"]), "solution": r.get("solution")}


def _olympiad(name: str, i: int, r: Row) -> Row:
    fa = r["final_answer"]
    first = fa[0] if isinstance(fa, (list, tuple)) else fa
    sols = r.get("solution")
    return {"id": f"{name}/{i:04d}", "problem": r["question"], "answer": str(first).replace("$", "").strip(),
            "solution": sols[0] if isinstance(sols, (list, tuple)) and sols else sols,
            "source_id": r.get("id"), "is_multiple_answer": r.get("is_multiple_answer"),
            "error": r.get("error")}


def _aime(name: str, i: int, r: Row) -> Row:
    return {"id": f"{name}/{i:04d}", "problem": r["problem"], "answer": _int_string(r["answer"]),
            "answer_raw": str(r["answer"]), "solution": r.get("solution"), "url": r.get("url"),
            "source_id": r.get("id")}


def _amc(name: str, i: int, r: Row) -> Row:
    return {"id": f"{name}/{i:04d}", "problem": r.get("problem") or r["question"],
            "answer": _int_string(r["answer"]), "answer_raw": str(r["answer"]), "solution": None,
            "url": r.get("url"), "source_id": r.get("id")}


def _math_train(name: str, i: int, r: Row) -> Row:
    return {"id": f"{name}/{i:04d}", "problem": r["problem"], "answer": last_boxed(r["solution"]) or "",
            "solution": r["solution"], "level_raw": r.get("level"), "subject": r.get("type")}


#: mapper name (a record's ``hub.mapper``, :class:`rmxbench.spec.benchmarks.HubSource`) -> row mapper
#: ``(benchmark name, row index, hub row) -> rmxbench row``.
MAPPERS: dict[str, Callable[[str, int, Row], Row]] = {
    "gsm8k": _gsm8k, "math500": _math500, "minerva_math": _minerva, "olympiadbench": _olympiad,
    "aime24": _aime, "amc23": _amc, "math_train": _math_train,
}


def _source(name: str):
    """The hub source of benchmark ``name`` (:attr:`rmxbench.spec.benchmarks.Benchmark.hub`).

    Raises:
        UserError: unknown benchmark, or one without a hub source.
    """
    src = benchmark(name).hub
    if src is None:
        raise UserError(f"no hub source for benchmark {name!r}",
                        hint="pass --data-dir (or set RMXBENCH_DATA_DIR) with its JSONL file")
    return src


def map_rows(name: str, rows: Iterable[Row]) -> list[Row]:
    """Map raw hub rows of benchmark ``name`` to rmxbench rows (ids ``<name>/NNNN`` in source order).

    Raises:
        UserError: unknown name, or a row lacking a field the mapper needs (names the field).
    """
    src = _source(name)
    mapper = MAPPERS[src.mapper]
    out = []
    for i, r in enumerate(rows):
        try:
            out.append(mapper(name, i, dict(r)))
        except (KeyError, IndexError, TypeError) as exc:
            raise UserError(f"hub dataset {src.dataset} row {i}: missing or malformed field {exc}",
                            hint="the dataset may have changed; pass --data-dir with local JSONL files") from None
    return out


def load_hub_benchmark(name: str) -> list[Row]:
    """Download benchmark ``name`` from the Hugging Face hub and return rmxbench rows.

    Uses :func:`datasets.load_dataset` (cached under ``HF_HOME``); the hub revision is the
    dataset's default branch.

    Raises:
        UserError: unknown name, or the hub is unreachable (hint: use ``--data-dir``).
    """
    src = _source(name)
    import datasets

    raw: list[Row] = []
    try:
        for cfg in src.configs:
            raw.extend(datasets.load_dataset(src.dataset, cfg, split=src.split))
    except Exception as exc:  # network, auth, renamed dataset: all user-fixable
        raise UserError(
            f"could not load hub dataset {src.dataset} ({name}): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="offline? pass --data-dir DIR (or set RMXBENCH_DATA_DIR) with the benchmark JSONL files",
        ) from exc
    return map_rows(name, raw)
