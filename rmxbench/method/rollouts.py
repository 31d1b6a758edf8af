"""Base-model rollouts and the mixed-success filter (paper §5.1, §6.1).

:func:`generate_rollouts` samples K completions per pool problem from the frozen base model with
an engine session (:meth:`rmxbench.backends.session.Session.generate`), keeps the generated **token ids** (prompt + completion;
never re-tokenised) and grades every completion with :func:`rmxbench.evaluation.grading.grade` (``task`` =
the pool's name) into a 0/1 reward.

:func:`select_mixed` keeps the problems whose pass rate lies strictly inside
``(min_pass_rate, max_pass_rate)`` (paper §5.1: strictly between 0 and 1), in a seeded order, up
to ``selection.max_problems`` (paper §6.1: 50 problems x 20 rollouts = 1,000 sequences).

The validation split used for the τ sweep is drawn by :mod:`rmxbench.method.pool` (from the pool source,
disjoint from every rolled-out problem); see that module for why.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from rmxbench.spec.sampling import Sampling

#: Artifact file names.
ROLLOUTS_FILE = "rollouts.pt"
SPLIT_FILE = "split.json"


def grade_completion(text: str, gold: str, finish_reason: str, *, task: str) -> dict[str, Any]:
    """Grade one completion: ``{"reward", "extracted", "rule", "timed_out", "malformed"}``.

    ``malformed`` = no extractable answer, or the completion hit the length cap without stopping.
    """
    from rmxbench.evaluation.grading import grade

    g = grade(text, gold, task=task)
    return {"reward": 1.0 if g.correct else 0.0, "extracted": g.extracted, "rule": g.rule,
            "timed_out": bool(g.timed_out), "malformed": g.extracted is None or finish_reason == "length"}


def generate_rollouts(session: Any, problems: Sequence[dict], prompts: Sequence[str], *,
                      sampling: Sampling, task: str, batch_size: int | None = None,
                      progress: Callable[[int], None] | None = None) -> list[dict]:
    """Sample ``sampling.n`` rollouts for each problem and grade them.

    Args:
        session: engine session of the frozen base model (no adapter).
        problems: pool rows (``id``, ``problem``, ``answer``); sample ``j`` of a problem is seeded
            by (``sampling.seed``, its id, ``j``).
        prompts: the exact prompt text per problem (:func:`rmxbench.evaluation.prompts.build_prompt`).
        sampling: K = ``sampling.n`` samples at the rollout decoding (paper §5.1: nonzero temperature).
        task: grading task name (the pool's name).
        batch_size: prompts per batch (HF sessions).
    Returns:
        One dict per problem: ``id``, ``answer``, ``prompt_ids`` (list[int]), ``samples`` (list of
        ``completion_ids``, ``text``, ``finish_reason``, ``reward``, ``extracted``, ``rule``,
        ``timed_out``, ``malformed``), ``pass_rate``.
    """
    outs = session.generate(prompts, sampling, request_ids=[str(r["id"]) for r in problems],
                            batch_size=batch_size, progress=progress)
    result = []
    for row, samples in zip(problems, outs):
        recs = []
        for s in samples:
            recs.append({"completion_ids": s.completion_ids, "text": s.text, "finish_reason": s.finish_reason,
                         **grade_completion(s.text, str(row["answer"]), s.finish_reason, task=task)})
        result.append({"id": row["id"], "answer": str(row["answer"]),
                       "prompt_ids": samples[0].prompt_ids if samples else [],
                       "samples": recs,
                       "pass_rate": sum(r["reward"] for r in recs) / max(len(recs), 1)})
    return result


def select_mixed(rollouts: Sequence[dict], *, min_pass_rate: float, max_pass_rate: float,
                 max_problems: int, seed: int) -> dict[str, Any]:
    """Keep problems with ``min_pass_rate < pass rate < max_pass_rate`` (paper §5.1).

    Mixed problems are taken in a seeded random order, up to ``max_problems``.

    Returns:
        ``{"train_ids": [...], "n_pool", "n_mixed", "n_all_correct", "n_all_wrong",
        "n_sequences", "mean_pass_rate", "pass_rate_histogram"}`` (histogram: pass rate -> count).
    """
    mixed = [r for r in rollouts if min_pass_rate < r["pass_rate"] < max_pass_rate]
    rng = random.Random(seed)
    order = list(mixed)
    rng.shuffle(order)
    keep = order[:max_problems]
    hist: dict[str, int] = {}
    for r in rollouts:
        k = f"{r['pass_rate']:.3f}"
        hist[k] = hist.get(k, 0) + 1
    return {
        "train_ids": [r["id"] for r in keep],
        "n_pool": len(rollouts),
        "n_mixed": len(mixed),
        "n_all_correct": sum(r["pass_rate"] >= 1.0 for r in rollouts),
        "n_all_wrong": sum(r["pass_rate"] <= 0.0 for r in rollouts),
        "n_sequences": sum(len(r["samples"]) for r in keep),
        "mean_pass_rate": sum(r["pass_rate"] for r in rollouts) / max(len(rollouts), 1),
        "malformed_share": (sum(s["malformed"] for r in rollouts for s in r["samples"])
                            / max(sum(len(r["samples"]) for r in rollouts), 1)),
        "pass_rate_histogram": dict(sorted(hist.items())),
        "window": [min_pass_rate, max_pass_rate],
        "seed": seed,
    }
