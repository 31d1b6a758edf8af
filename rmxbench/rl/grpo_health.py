"""GRPO health check: is a finished GRPO run degenerate? (issue 18 item 2; TRL #5697, PR #5759)

A GRPO run can finish "successfully" and still have learned nothing: with a completion cap too
short for any answer every completion is clipped and the reward is 0 at every step; when every
group of G completions gets the same reward (all 0 or all 1) the group-normalised advantages
(DeepSeekMath §4.1.2) are all 0 and the policy term has no gradient. TRL logs the evidence per
step (``completions/clipped_ratio``, ``frac_reward_zero_std``, ``reward``, ``grad_norm``) but
nothing reads it. :func:`grpo_health` reads the per-step history rmxbench keeps in
``grpo_log.json`` and returns a verdict with plain-language reasons; the ``grpo`` stage exposes
them through its ``warn(out_dir)`` hook so the board marks the row.

Rules, each over the logged optimiser steps (a healthy run triggers none):

- every completion clipped at every step (``clipped_ratio`` 1.0: TRL counts a completion clipped
  when it reaches the cap without an end-of-sequence token), or at least half of all completions
  clipped over the run: answers past the cap score 0 and the policy trains on unfinished text;
- reward 0 at every step: no completion was ever graded correct, nothing to reinforce;
- otherwise every group with zero reward variance at every step (``frac_reward_zero_std`` 1.0):
  all advantages were 0, no learning signal (e.g. reward 1 everywhere);
- completions whose grading raised (scored 0 by :class:`rmxbench.rl.grpo_trainer.GraderReward`):
  the reward was not the grader for them;
- a non-finite ``loss`` or ``grad_norm`` at any step: training diverged;
- no step logged at all.

Torch-free: the stage's ``warn`` runs it while rendering a board.
"""

from __future__ import annotations

import math
from typing import Any

#: Share of all completions clipped over the run from which clipping is reported as the norm.
CLIPPED_MAJORITY = 0.5
_ONE = 1.0 - 1e-9


def _steps(n: int) -> str:
    return f"all {n} steps" if n > 1 else "the only step"


def grpo_health(history: list[dict[str, Any]], *, max_completion_length: int | None = None,
                completions_per_step: int | None = None) -> dict[str, Any]:
    """Verdict on a GRPO run from its per-step history (``grpo_log.json``'s ``history``).

    Args:
        history: one dict per optimiser step with ``reward`` (mean 0/1 reward), ``clipped_ratio``
            (share of completions that hit the cap), ``frac_reward_zero_std`` (share of groups
            with zero reward variance), ``reward_error_frac`` (share of completions whose grading
            raised), ``loss``, ``grad_norm``; missing keys disable the rules that need them.
        max_completion_length: the completion cap in tokens (worded in the clipping reason).
        completions_per_step: completions per optimiser step (turns error shares into counts).

    Returns:
        ``{"verdict": "ok" | "warn", "reasons": [str, ...], "steps": n}``; ``reasons`` is empty
        exactly when the verdict is ``"ok"``.
    """
    steps = [h for h in history if h.get("reward") is not None]
    n = len(steps)
    reasons: list[str] = []
    if not n:
        return {"verdict": "warn", "reasons": ["no optimiser step was logged"], "steps": 0}
    cap = f"{max_completion_length}-token " if max_completion_length else ""

    clipped = [h.get("clipped_ratio") for h in steps]
    if all(c is not None and c >= _ONE for c in clipped):
        reasons.append(f"every completion hit the {cap}cap without ending at {_steps(n)} (clipped_ratio 1.0): "
                       "answers past the cap scored 0 and the policy trained on unfinished text; raise "
                       "max_completion_length")
    elif all(c is not None for c in clipped) and sum(clipped) / n >= CLIPPED_MAJORITY:
        reasons.append(f"{sum(clipped) / n:.0%} of completions hit the {cap}cap without ending (mean "
                       "clipped_ratio): answers past the cap scored 0; raise max_completion_length")

    if all(h["reward"] == 0 for h in steps):
        reasons.append(f"reward 0 at {_steps(n)}: no completion was graded correct, so GRPO had nothing to reinforce")
    elif all((h.get("frac_reward_zero_std") or 0.0) >= _ONE for h in steps):
        reasons.append(f"every group of completions got the same reward at {_steps(n)} (zero reward variance): "
                       "all advantages were 0, no learning signal")

    errs = [h.get("reward_error_frac") or 0.0 for h in steps]
    if any(e > 0 for e in errs):
        if completions_per_step:
            total = n * completions_per_step
            bad = round(sum(e * completions_per_step for e in errs))
            reasons.append(f"{bad} of {total} completions could not be graded and were scored 0 "
                           "(grpo_log.json: reward_errors)")
        else:
            reasons.append("some completions could not be graded and were scored 0 (grpo_log.json: reward_errors)")

    for key in ("loss", "grad_norm"):
        bad_step = next((h["step"] for h in steps if isinstance(h.get(key), (int, float))
                         and not math.isfinite(h[key])), None)
        if bad_step is not None:
            reasons.append(f"{key} was not finite at step {bad_step}: training diverged")
            break
    return {"verdict": "warn" if reasons else "ok", "reasons": reasons, "steps": n}


def health_note(health: dict[str, Any]) -> str | None:
    """The board note of a verdict (None when healthy)."""
    if health.get("verdict") != "warn":
        return None
    return "GRPO health: " + "; ".join(health.get("reasons") or ["see grpo_log.json"])
