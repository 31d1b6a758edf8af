"""Hooks of rmxbench's lm-eval tasks: data loading, prompts, the keep-all filter and scoring.

The task config :func:`rmxbench.evaluation.lmeval.lm_task_config` passes these functions to
lm-eval; the generated task folder ``rmxbench/lm_tasks/`` (plain ``lm_eval --include_path``) names
them with ``!function utils.<name>`` (its ``utils.py`` imports them from here). All scoring goes
through :func:`rmxbench.evaluation.grading.grade` (policy in GRADING.md), never lm-eval's own
exact match.

Run-time settings come from lm-eval's task metadata (``--metadata '{...}'`` on the command line,
``TaskManager(metadata=...)`` in Python) or, for the data dir, the environment:

- ``prompt_style``: one of :data:`rmxbench.evaluation.prompts.STOP_SEQUENCES` (default: the task's,
  the style its benchmark record fixes, e.g. ``tiny_story`` for ``rmx_tinymath``, else
  :data:`DEFAULT_STYLE`). ``r1_chat`` needs ``--apply_chat_template``.
- ``data_dir``: folder of benchmark JSONL files (``shared/benchmarks`` format); else
  ``$RMXBENCH_DATA_DIR``; else the public hub datasets (:mod:`rmxbench.evaluation.hub_data`).

Why a custom filter: lm-eval's default filter for ``generate_until`` tasks is ``take_first``,
which silently keeps only the first of ``repeats`` samples, so "avg@8" would be pass@1 of sample 0.
Every rmxbench task installs :func:`truncate_keep_all` instead, so :func:`process_results`
receives all k completions of a problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Prompt style of a task whose benchmark fixes none and whose metadata names none (paper App. C, Qwen).
DEFAULT_STYLE = "qwen_raw"


def load_docs(benchmark: str, prompt_style: str | None = None, data_dir: str | None = None,
              **_ignored: Any):
    """lm-eval ``custom_dataset`` hook: the benchmark's rows as a ``DatasetDict`` with split ``test``.

    Called by lm-eval as ``custom_dataset(**metadata, **dataset_kwargs)``; lm-eval's metadata also
    carries the model arguments (``pretrained=...``), which are ignored here.

    Each doc has string fields ``id``, ``problem``, ``answer`` (gold), ``task`` (benchmark name),
    ``prompt_style`` and ``prompt`` (the exact context text, :func:`rmxbench.evaluation.prompts.task_prompt`),
    and ``tolerance``: the row's own absolute numeric tolerance (OlympiadBench ``error``) as a
    string, or ``None``.

    Raises:
        rmxbench.errors.UserError: unknown benchmark/style, missing data file, hub unreachable.
    """
    import datasets

    from rmxbench.errors import UserError
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.evaluation.prompts import STOP_SEQUENCES, task_prompt
    from rmxbench.spec.context import resolve_data_dir

    style = prompt_style or DEFAULT_STYLE
    if style not in STOP_SEQUENCES:
        raise UserError(f"prompt_style {style!r} (task metadata) is not a known style; "
                        f"allowed: {sorted(STOP_SEQUENCES)}")
    ddir = resolve_data_dir(data_dir)
    rows = load_benchmark(benchmark, data_dir=ddir)
    docs = [{"id": str(r["id"]), "problem": str(r["problem"]), "answer": str(r["answer"]),
             "task": benchmark, "prompt_style": style, "prompt": task_prompt(str(r["problem"]), style),
             "tolerance": None if r.get("error") is None else str(r["error"])}
            for r in rows]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def truncate_keep_all(resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
    """lm-eval filter (``function: custom``): keep ALL samples of each problem, each cut at its
    style's stop sequences.

    ``resps`` is one list per problem with the k = ``repeats`` completions (in sample order);
    the result has the same shape. Cutting at the style's stops makes the graded text identical
    to generation with exactly those stops, whatever ``until`` the run used.
    """
    from rmxbench.evaluation.prompts import truncate_at_stops

    return [[truncate_at_stops(r, d.get("prompt_style", DEFAULT_STYLE)) for r in rs]
            for rs, d in zip(resps, docs)]


def grade_samples(completions: list[str], gold: str, task: str | None,
                  tolerance: str | None = None) -> dict[str, Any]:
    """Grade each completion; return ``{correct, extracted, rule, timed_out}`` lists (sample order).

    ``tolerance``: the problem's absolute numeric tolerance (OlympiadBench ``error``), if any.
    """
    from rmxbench.evaluation.grading import grade

    out: dict[str, list] = {"correct": [], "extracted": [], "rule": [], "timed_out": []}
    for c in completions:
        g = grade(c, gold, task=task, tolerance=tolerance)
        out["correct"].append(bool(g.correct))
        out["extracted"].append(g.extracted)
        out["rule"].append(g.rule)
        out["timed_out"].append(bool(g.timed_out))
    return out


def scores_from_verdicts(correct: list[bool], extracted: list[str | None]) -> dict[str, float]:
    """Metrics of one problem from its k verdicts (paper §6.1).

    k = 1: ``pass@1``. k > 1: ``avg@k`` = mean correctness over all k samples, ``pass@k`` = any
    correct, ``maj@k`` = correctness of the majority extracted answer
    (:func:`rmxbench.evaluation.grading.majority_answer`; no extractable answer in any sample = 0).
    ``score`` repeats the headline metric (pass@1 or avg@k) so a group can average tasks.
    """
    k = len(correct)
    if k == 0:
        raise ValueError("no completions to score")
    mean = sum(correct) / k
    if k == 1:
        return {"pass@1": float(correct[0]), "score": float(correct[0])}
    from rmxbench.evaluation.grading import majority_answer

    maj = majority_answer(list(extracted))
    maj_ok = 0.0
    if maj is not None:
        for c, e in zip(correct, extracted):
            if e == maj:
                maj_ok = float(c)
                break
    return {f"avg@{k}": mean, f"pass@{k}": float(any(correct)), f"maj@{k}": maj_ok, "score": mean}


def process_results(doc: dict, results: list) -> dict[str, Any]:
    """lm-eval ``process_results``: grade every sample of ``doc`` with rmxbench's grader.

    ``results`` is ``[filtered]`` where ``filtered`` is the list of k completions from
    :func:`truncate_keep_all` (a bare string is accepted as k = 1). Returns the metrics of
    :func:`scores_from_verdicts` plus ``rmx_graded``: the per-sample details (completions,
    extracted answers, rules fired, verdicts), which lm-eval writes into the sample log and
    aggregates with :func:`count_graded`.
    """
    filtered = results[0] if len(results) == 1 else [r if isinstance(r, str) else r[0] for r in results]
    completions = [filtered] if isinstance(filtered, str) else list(filtered)
    g = grade_samples(completions, doc["answer"], doc.get("task"), doc.get("tolerance"))
    metrics: dict[str, Any] = scores_from_verdicts(g["correct"], g["extracted"])
    metrics["rmx_graded"] = {"id": doc["id"], "completions": completions, **g}
    return metrics


def count_graded(items: list[dict]) -> int:
    """Aggregation of ``rmx_graded``: the number of graded completions (problems × k)."""
    return int(sum(len(it["correct"]) for it in items))
