"""Shared by the four analysis stages (``reranking``, ``interventions``, ``distillation``,
``tau_curve``): one node per (``analyses:`` entry, analysis, task), keyed by everything that
determines the result (paper §3.1-3.3, §4, §6.3; methods in :mod:`rmxbench.analysis`).

A node belongs to the board row it analyses — the entry's ``other`` row for the pair analyses,
the first ``sweeps`` row for the τ curve — so ``--only ROW`` runs it and ``--dry-run`` lists it
under that row. Its inputs are the nodes that produce that row's weights (a ReasonMaxxer row's
``pick``, or any node that ``provides`` the row's adapter or checkpoint, e.g. a GRPO training
stage; for a row with ``seeds:`` its first seed's) and, for the τ curve, every sweep row's ``pick``: so forcing ``pick`` (or anything before
it) rebuilds the analyses that read it, and every key is known before anything runs.

Artifact: ``result.json`` (:class:`~rmxbench.analysis.common.AnalysisResult`) + PNG figures
(+ distillation: ``teacher.pt`` and ``adapter_<i>/`` per grid cell).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmxbench.pipeline.graph import Graph, Node


@dataclass(frozen=True)
class AnalysisNodeConfig:
    """What one analysis node's ``build`` needs (not keyed by itself: see ``parts``)."""

    name: str
    entry: Any
    task: str
    base: Any
    other: Any | None
    other_kind: str | None
    other_settings: Any | None
    prompt_style: str
    sweep_rows: tuple[str, ...]
    spec_dir: Path
    data_dir: Path | None
    max_new_tokens: int
    parts: dict = field(default_factory=dict)
    #: the HF engine of the `other` weights when they are a model of their own (an RL checkpoint),
    #: None when `other` is the base + an adapter (a private copy: lockstep analyses need both at once)
    other_engine: Any = None


def owner(resolved: Any, name: str) -> str:
    """Row id the node of analysis ``name`` is attached to (see module doc)."""
    if name == "tau_curve":
        return resolved.sweeps[0].id
    return resolved.other.id


def declare_for(name: str, plan: Any, row: Any, graph: Graph) -> None:
    """Add ``name``'s nodes whose owner is ``row`` (one per entry running it, per task)."""
    from rmxbench.spec.analysis_pairs import resolve
    from rmxbench.evaluation.data import data_identity
    from rmxbench.evaluation.grading import GRADER_VERSION
    from rmxbench.evaluation.prompts import prompt_identity
    from rmxbench.pipeline.rows import eval_settings
    from rmxbench.stages.common import engine
    from rmxbench.stages.eval import weights_source

    for entry in getattr(plan.spec, "analyses", None) or []:
        if name not in entry.run:
            continue
        r = resolve(plan.spec, entry)
        if owner(r, name) != row.id:
            continue
        inputs: dict[str, Node] = {}
        other_part = other_engine = None
        settings = eval_settings(r.base, r.other_kind, r.other) if r.other is not None else None
        if r.other is not None and (name != "tau_curve" or r.other_kind == "rl_baseline"):
            src = weights_source(graph, r.other.id)
            if src is not None:
                inputs[f"other_{src[0]}"] = src[1]
            weights = settings.model or r.base.model  # an RL row trained by rmxbench starts from its base
            other_part = {"model": plan.model_id(weights) if src is None or src[0] == "adapter" else None,
                          "dtype": settings.dtype}
            if src is None or src[0] == "checkpoint":
                other_engine = engine(plan, weights, dtype=settings.dtype, trust_remote_code=settings.trust_remote_code,
                                      label=r.other.id, weights_only=True,
                                      built_by=src[1].key if src is not None else None)
        for s in r.sweeps if name == "tau_curve" else ():  # a row with `seeds:`: its first seed's pick
            inputs[f"sweep[{s.id}]"] = weights_source(graph, s.id)[1]
        config = getattr(entry, name)
        for task in entry.tasks:
            parts = {"analysis": name, "task": task, "limit": entry.limit, "data": data_identity(task, plan.ctx.data_dir, plan.hashes),
                     "prompt": prompt_identity(r.prompt_style), "grader": GRADER_VERSION,
                     "base": {**plan.model_id(r.base.model), "dtype": r.base.dtype}, "other": other_part,
                     "config": config, "max_new_tokens": plan.spec.protocol.max_new_tokens}
            if name == "distillation":
                parts["pool"] = data_identity(config.pool, plan.ctx.data_dir, plan.hashes)
            cfg = AnalysisNodeConfig(name, entry, task, r.base, r.other, r.other_kind, settings, r.prompt_style,
                                     tuple(s.id for s in r.sweeps), plan.ctx.dir, plan.ctx.data_dir,
                                     plan.spec.protocol.max_new_tokens, parts, other_engine)
            base_engine = engine(plan, r.base.model, dtype=r.base.dtype, trust_remote_code=r.base.trust_remote_code,
                                 label=r.base.id, weights_only=True)
            graph.add(Node(name, row.id, f"{name} {entry.id} {task}", cfg, parts=parts, inputs=dict(inputs),
                           engine=base_engine))


def build(config: AnalysisNodeConfig, inputs: dict[str, Path], out_dir: Path, env) -> None:
    """Run the analysis of one node into ``out_dir`` (:func:`rmxbench.analysis.api.build_analysis`)."""
    from rmxbench import progress
    from rmxbench.analysis.api import build_analysis, expected_items
    from rmxbench.analysis.common import ModelHandle
    from rmxbench.analysis.tau_curve import sweep_from_adapter, sweep_label
    from rmxbench.evaluation.data import load_benchmark

    b = config.base
    base = ModelHandle(b.display_name, b.model, dtype=b.dtype, trust_remote_code=b.trust_remote_code,
                       spec_dir=config.spec_dir, session=env.session())
    other = None
    if config.other is not None and (config.name != "tau_curve" or config.other_kind == "rl_baseline"):
        # the τ curve draws `other` as its reference line only when it is an RL row (a ReasonMaxxer
        # `other` is one of the sweeps already)
        s = config.other_settings
        ref = s.model or b.model  # an RL row trained by rmxbench starts from its base
        if "other_checkpoint" in inputs:
            ref = ref.model_copy(update={"repo": None, "revision": None, "path": str(inputs["other_checkpoint"]),
                                         "gguf_file": None})
        label = f"{b.display_name} {config.other.display_name}"  # row display names read "+ …"
        shared = (env.session(config.other_engine, weights=inputs.get("other_checkpoint"))
                  if config.other_engine is not None else None)
        other = ModelHandle(label, ref, adapter_dir=inputs.get("other_adapter"), dtype=s.dtype,
                            trust_remote_code=s.trust_remote_code, spec_dir=config.spec_dir, session=shared)
    e = config.entry
    problems = load_benchmark(config.task, data_dir=config.data_dir, limit=e.limit)
    sweeps = None
    if config.name == "tau_curve":
        sweeps = {}
        for rid in config.sweep_rows:
            d = inputs[f"sweep[{rid}]"]
            sweeps[sweep_label(d)] = sweep_from_adapter(d)
    pool = load_benchmark(e.distillation.pool, data_dir=config.data_dir) if config.name == "distillation" else None
    total = expected_items(config.name, getattr(e, config.name), n=len(problems), reference=other is not None,
                           sweep_points=sum(len(v) for v in (sweeps or {}).values()))
    bar = progress.task(f"{e.id}: {config.name} on {config.task}", total)
    build_analysis(config.name, getattr(e, config.name), base=base, other=other, prompt_style=config.prompt_style,
                   problems=problems, task=config.task, max_new_tokens=config.max_new_tokens, out_dir=out_dir,
                   pool=pool, sweeps=sweeps, progress=bar.advance)
    bar.done()


def work(config: AnalysisNodeConfig, inputs=None):
    """What one analysis node does, for the cost estimate (issue 20), as its decoding passes over the
    ``limit`` test problems (:func:`rmxbench.analysis.api.expected_items`), on the base model's size (the
    other model of a pair is a fine-tuned copy of it) and the HF weights session (greedy, ``batch_size``):

    - reranking: the other's greedy generation + the base's teacher-forced pass;
    - interventions: base and other greedy, then oracle, random and one gated condition per τ, each
      decoding both models in lockstep;
    - distillation: the other's rollouts on ``n_problems`` x ``samples_per_problem`` (+ its top-k logits
      pass), a LoRA per grid variant for ``epochs``, and a greedy evaluation of base, other and each variant;
    - tau_curve: a greedy evaluation per swept τ adapter (+ the base, + an RL reference).
    """
    from rmxbench.estimate.work import Generation, Sequences, Work, task_problems

    c = getattr(config.entry, config.name)
    mnt = getattr(c, "max_new_tokens", None) or config.max_new_tokens
    n, prompt = task_problems(config.task, config.data_dir, config.entry.limit)
    bs = getattr(c, "batch_size", 16)
    model, dtype = config.base.model, config.base.dtype

    def greedy(passes: int) -> Generation:
        return Generation(n * passes, 1, prompt, mnt, batch=bs)

    if config.name == "reranking":
        return Work("reranking", model, dtype, generations=(greedy(1),), scored=(Sequences(n, prompt, mnt, origin="reranking"),))
    if config.name == "interventions":
        return Work("interventions", model, dtype, generations=(greedy(2 + 2 * (2 + len(c.taus))),))
    if config.name == "distillation":
        pn, pprompt = task_problems(c.pool, config.data_dir)
        m = min(c.n_problems, pn or c.n_problems) * c.samples_per_problem
        dmnt = c.max_new_tokens or mnt
        seqs = Sequences(m, pprompt, dmnt, max_len=c.max_seq_len, passes=c.epochs, origin="distillation")
        return Work("distillation", model, dtype,
                    generations=(Generation(m // c.samples_per_problem, c.samples_per_problem, pprompt, dmnt, batch=bs),
                                 Generation(n * (2 + len(c.variants)), 1, prompt, mnt, batch=c.eval_batch_size)),
                    scored=(Sequences(m, pprompt, dmnt, max_len=c.max_seq_len, origin="distillation"),)
                    + (seqs,) * len(c.variants), trained=(seqs,) * len(c.variants))
    sweeps = 0
    for role, node in (inputs or {}).items():
        if role.startswith("sweep[") and getattr(node, "config", None) is not None:
            sweeps += len(node.config.recipe.taus)
    return Work("tau_curve", model, dtype, generations=(greedy(1 + sweeps + int(config.other is not None)),))
