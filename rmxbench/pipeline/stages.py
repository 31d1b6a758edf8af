"""THE stage table: every stage of rmxbench, in pipeline order. It drives the planner (which
nodes exist and their keys), ``--force`` (a stage and everything after it), ``--dry-run`` and
the runner. ARCHITECTURE.md's map is this table.

Adding a stage = one module (``declare`` + ``build``, see :mod:`rmxbench.pipeline.graph`) + one
entry here (or :func:`register` from a plugin or a test). CONTRIBUTING.md, "How to add a stage".
"""

from __future__ import annotations

from rmxbench.pipeline.graph import ENGINE, Resources, Stage

#: A node that loads no model: one CPU core, no GPU (pool, selection, pick).
CPU = Resources(gpus=0, cpus=1)
#: A node on its model's engine: the engine's GPUs (vLLM: tensor-parallel size; HF: 1), in the
#: model's worker (rollouts, entropy, training, validation, evaluation, analyses).
ON_ENGINE = Resources(gpus=ENGINE)

#: name -> Stage, in pipeline order (a stage's ``declare`` may use nodes of every earlier stage).
STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("pool", "rmxbench.stages.pool", "pool-2", (),
          "`pool.jsonl`, `validation.jsonl`, `pool.json` (contamination counts)", training=True,
          resources=CPU),
    Stage("rollouts", "rmxbench.stages.rollouts", "rollouts-2", ("pool",),
          "`rollouts.pt` (token ids, rewards), `rollouts_summary.json`", training=True,
          resources=ON_ENGINE),
    Stage("selection", "rmxbench.stages.selection", "selection-2", ("rollouts", "pool"),
          "`split.json` (mixed-success train ids; `halt` when too few)", training=True,
          resources=CPU),
    Stage("entropy", "rmxbench.stages.entropy", "entropy-2", ("rollouts", "selection"),
          "`entropy.pt` (per-token H_t in nats), `entropy.json`", training=True,
          resources=ON_ENGINE),
    Stage("train", "rmxbench.stages.train", "train-2", ("pool", "rollouts", "selection", "entropy"),
          "PEFT adapter dir + `train_log.json` + `rmx_metadata.json`, one per τ", training=True,
          resources=ON_ENGINE),
    Stage("validation", "rmxbench.stages.validation", "validation-2", ("pool", "train"),
          "`validation.json` (accuracy, malformed share), per τ and for the base", training=True,
          resources=ON_ENGINE),
    Stage("pick", "rmxbench.stages.pick", "pick-2", ("train", "validation"),
          "picked PEFT adapter dir + `rmx_metadata.json` (τ, decision fraction, per-τ table)", training=True,
          resources=CPU),
    Stage("grpo", "rmxbench.rl.grpo_stage", "grpo-2", (),
          "model folder or PEFT adapter dir (`train:` RL rows) + `grpo_log.json` (reward, clipping, health per step), "
          "`reward_curve.png`, `pool.json`", training=True, figures=("reward_curve.png",),
          # loads its own model (TRL; vLLM colocated on the same GPU where TRL can drive it)
          resources=Resources(gpus=1)),
    Stage("eval", "rmxbench.stages.eval", "eval-2", ("pick", "grpo"),
          "`results.json` (lm-eval), `samples.jsonl`, `record.json`, `key_parts.json`, one per (row, task)",
          board="record", resources=ON_ENGINE),
    # the paper's analyses (rmxbench/analysis/), one node per (`analyses:` entry, task)
    Stage("reranking", "rmxbench.stages.reranking", "reranking-1", ("pick", "grpo"),
          "`result.json` (Table-2 numbers), `rank_histogram.png`, `entropy_distributions.png`",
          board="section", resources=ON_ENGINE),
    Stage("interventions", "rmxbench.stages.interventions", "interventions-1", ("pick", "grpo"),
          "`result.json` (accuracy and substituted share per condition), `accuracy_vs_substituted.png`",
          board="section", resources=ON_ENGINE),
    Stage("distillation", "rmxbench.stages.distillation", "distillation-1", ("pick", "grpo"),
          "`result.json` (per grid cell: accuracy, share of the gap, KL), `teacher.pt`, `adapter_<i>/`, `recovered.png`",
          board="section", resources=ON_ENGINE),
    Stage("tau_curve", "rmxbench.stages.tau_curve", "tau-curve-1", ("pick", "grpo"),
          "`result.json` (test accuracy per τ adapter and sweep), `tau_curve.png`",
          board="section", resources=ON_ENGINE),
)}


def register(stage: Stage, *, before: str | None = None) -> None:
    """Add ``stage`` to the table (at the end, or just before stage ``before``).

    Raises:
        ValueError: a stage of that name exists, or ``before``/an ``after`` name is unknown.
    """
    if stage.name in STAGES:
        raise ValueError(f"stage {stage.name!r} already registered")
    unknown = [a for a in stage.after if a not in STAGES]
    if unknown or (before is not None and before not in STAGES):
        raise ValueError(f"unknown stage(s) {unknown or [before]}; stages: {', '.join(STAGES)}")
    items = list(STAGES.items())
    at = len(items) if before is None else [n for n, _ in items].index(before)
    items.insert(at, (stage.name, stage))
    STAGES.clear()
    STAGES.update(items)


def unregister(name: str) -> None:
    """Remove stage ``name`` (tests that registered one)."""
    STAGES.pop(name, None)
