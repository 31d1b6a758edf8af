"""Stage ``eval``: one row on one benchmark through lm-eval, every completion graded by the one
grader (paper §6.1, App. C; :func:`rmxbench.evaluation.lmeval.evaluate_task`).

One node per (row, task). A row whose weights come from an earlier stage (a ReasonMaxxer row's
``pick``, or any node that ``provides`` ``"adapter"`` / ``"checkpoint"`` for the row, e.g. a GRPO
training stage) reads it as input ``adapter`` / ``checkpoint``, and its key contains that node's
key (so it is known at ``--dry-run``); other rows are keyed by their model identity.

Artifact: ``results.json`` (lm-eval's), ``samples.jsonl`` (prompt, completion, extracted answer,
rule, verdict), ``record.json`` (:class:`~rmxbench.results.TaskRecord`), ``key_parts.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.evaluation.data import data_identity
from rmxbench.evaluation.grading import GRADER_VERSION
from rmxbench.evaluation.lmeval import tasks_identity
from rmxbench.evaluation.prompts import prompt_identity
from rmxbench.pipeline.identity import library_version
from rmxbench.pipeline.rows import EvalSettings


@dataclass(frozen=True)
class EvalConfig:
    """Config of one evaluation cell."""

    protocol: Any
    settings: EvalSettings
    task: str
    row_id: str
    spec_dir: Path
    data_dir: Path | None
    parts: dict


def weights_source(graph: Graph, row_id: str, seed: int | None = None) -> tuple[str, Node] | None:
    """``(role, node)`` of the last node of ``row_id`` that provides its adapter or checkpoint, in the
    chain of training seed ``seed`` (:attr:`rmxbench.pipeline.graph.Node.seed`). ``seed=None`` on a
    row that declares ``seeds:`` means its first seed's chain (the weights an analysis reads)."""
    found = [n for n in graph.find(row_id) if n.provides in ("adapter", "checkpoint")]
    if found and not any(n.seed == seed for n in found) and seed is None:
        seed = found[0].seed
    found = [n for n in found if n.seed == seed]
    return (found[-1].provides, found[-1]) if found else None


def declare(plan, row, graph: Graph) -> None:
    if row.unavailable:
        return
    for seed in row.seeds:  # a trained row with `seeds:`: every seed's weights on the same test problems
        _declare_chain(plan, row, graph, seed)


def _declare_chain(plan, row, graph: Graph, seed: int | None) -> None:
    """The eval nodes (one per task) of ``row``'s weights of training seed ``seed`` (None: its only chain)."""
    s = row.settings
    src = weights_source(graph, row.id, seed)
    if row.kind == "reasonmaxxer" and src is None:  # pragma: no cover - the pick stage always declares one
        raise ValueError(f"{row.id}: no stage provides the adapter to evaluate")
    from rmxbench.evaluation.lmeval import protocol_key
    from rmxbench.pipeline.rows import seeded_label
    from rmxbench.stages.common import backend_part, engine

    if src is not None and src[0] == "checkpoint":
        eng = engine(plan, None, built_by=src[1].key, dtype=s.dtype, trust_remote_code=s.trust_remote_code,
                     label=seeded_label(row.id, seed))
    else:  # the row's own weights, or its base's with an adapter: one engine with the base row
        eng = engine(plan, s.model, dtype=s.dtype, trust_remote_code=s.trust_remote_code,
                     label=row.id if src is None and row.kind == "rl_baseline" else row.base.id)
    for task in plan.spec.protocol.tasks:
        parts = {
            "model": plan.model_id(s.model) if src is None or src[0] == "adapter" else None,
            "task": task,
            "protocol": protocol_key(plan.spec.protocol, task, backend_part(plan.spec)),
            "prompt": prompt_identity(s.prompt_style),
            "chat_template": s.chat_template,
            "dtype": s.dtype,
            "grader": GRADER_VERSION,
            "data": data_identity(task, plan.ctx.data_dir, plan.hashes),
            "lm_eval": library_version("lm_eval"),
            "tasks": tasks_identity(),
        }
        cfg = EvalConfig(plan.spec.protocol, s, task, row.id, plan.ctx.dir, plan.ctx.data_dir, parts)
        graph.add(Node("eval", row.id, seeded_label(f"eval {task}", seed), cfg, parts=parts, task=task, engine=eng,
                       inputs={src[0]: src[1]} if src else {}, seed=seed))


def work(config: EvalConfig, inputs=None):
    """lm-eval's generation for one task: its problems (the protocol's ``limit``) x k samples up to
    ``max_new_tokens`` (issue 20: the estimate's work declaration). With an adapter input the variant is
    ``eval:adapter`` (a LoRA served per request is slower than the bare weights)."""
    from rmxbench.estimate.work import Generation, Work, task_problems

    p = config.protocol
    sampling = p.metric(config.task).sampling
    n, prompt = task_problems(config.task, config.data_dir, p.limit.get(config.task))
    variant = "eval:adapter" if inputs and "adapter" in inputs else "eval"
    return Work(variant, config.settings.model, config.settings.dtype, generations=(Generation(
        n, sampling.n, prompt, sampling.max_new_tokens, batch=p.batch_size * sampling.n),))


def build(config: EvalConfig, inputs: dict[str, Path], out_dir: Path, env) -> None:
    from rmxbench import progress
    from rmxbench.backends.modeling import local_ref
    from rmxbench.evaluation.lmeval import evaluate_task
    from rmxbench.results import atomic_write_json

    s = config.settings
    model = s.model
    if "checkpoint" in inputs:  # full weights built by an earlier stage
        model = local_ref(inputs["checkpoint"])
    adapter = inputs.get("adapter")
    session = env.session(weights=inputs.get("checkpoint"))
    limit = config.protocol.limit.get(config.task)
    bar = progress.task(f"{config.row_id}: eval {config.task}" + (f" (first {limit})" if limit else ""), None)
    record = evaluate_task(session, config.task, protocol=config.protocol, prompt_style=s.prompt_style,
                           chat_template=s.chat_template, model_ref=model, adapter_dir=adapter,
                           spec_dir=config.spec_dir, data_dir=config.data_dir, out_dir=out_dir,
                           row_id=config.row_id, eval_prompt=s.eval_prompt, progress=bar.advance,
                           on_total=bar.set_total)
    bar.done(f"{config.row_id}: eval {config.task}: {record.metric} {record.score:.3f} ({record.n_problems} problems)")
    if adapter is not None and (adapter / "rmx_metadata.json").is_file():
        import json

        meta = json.loads((adapter / "rmx_metadata.json").read_text())
        record.provenance.update(picked_tau=meta.get("tau"), decision_fraction=meta.get("decision_fraction"))
    if adapter is not None:
        record.provenance["adapter_key"] = adapter.name  # the key of the node that built it
    atomic_write_json(out_dir / "record.json", record.to_json())
    resolved = {"inputs": {r: p.name for r, p in inputs.items()}}
    if adapter is not None:  # the adapter the input key resolved to, by the one identity function
        resolved["adapter_sha256"] = record.provenance["adapter_sha256"]
    atomic_write_json(out_dir / "key_parts.json", {**config.parts, **resolved})


def record(out_dir: Path) -> Any:
    """The board cell of a finished eval node (the table entry's ``board="record"`` hook)."""
    return load_record(out_dir)


def load_record(out_dir: Path) -> Any:
    """The :class:`~rmxbench.results.TaskRecord` of an eval artifact folder."""
    import json

    from rmxbench.results import TaskRecord

    return TaskRecord.from_json(json.loads((Path(out_dir) / "record.json").read_text()))
