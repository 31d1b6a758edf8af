"""Evaluation stage: one model (+ optional LoRA adapter) on one benchmark through lm-eval.

Runs :func:`lm_eval.simple_evaluate` on rmxbench's lm-eval task of the benchmark (its config
generated from the benchmark record and the protocol, :func:`lm_task_config`; the same config is
written as YAML to ``rmxbench/lm_tasks/``, linked as ``tasks/``, for plain lm-eval) with the spec's
decoding protocol (paper §6.1, App. C):

- pass@1 tasks (GSM8K, MATH-500, Minerva Math, OlympiadBench, tinymath): one generation per
  problem, greedy unless ``protocol.pass_at_1`` says otherwise;
- avg@k tasks (``protocol.avg_at_k.tasks``, paper: AIME24 and AMC23 with k = 8): k sampled
  generations per problem at the protocol's temperature/top-p, and the score is the mean
  correctness over ALL k samples of every problem (the tasks' keep-all filter makes lm-eval pass
  every sample to the grader; lm-eval's default would keep only the first).

Every completion is graded by :func:`rmxbench.evaluation.grading.grade`. Outputs in ``out_dir``:
``results.json`` (lm-eval's results), ``samples.jsonl`` (one line per completion: prompt,
completion, extracted answer, rule fired, verdict), ``record.json`` (the
:class:`~rmxbench.results.TaskRecord`) and ``meter.json`` (wall seconds, device).

Generation runs on an engine session (:mod:`rmxbench.backends.session`) through an lm-eval
``LM`` instance (:class:`rmxbench.backends.lm.SessionLM`): the caller passes a started session, so
one engine serves every task and every adapter of its model (HF: transformers + PEFT; vLLM: LoRA
requests). Prompts reach the model by rmxbench's tokenization contract
(:mod:`rmxbench.backends.tokenization`), sampled completions are seeded per (seed, problem,
sample), and the decoding is the task's :class:`~rmxbench.spec.sampling.Sampling` from
:meth:`~rmxbench.spec.schema.Protocol.metric`.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import time
from pathlib import Path
from typing import Any

from rmxbench.errors import UserError
from rmxbench.results import TaskRecord, atomic_write_json, atomic_write_text
from rmxbench.spec.benchmarks import benchmark, tasks
from rmxbench.spec.schema import ModelRef, Protocol

def task_name(task: str) -> str:
    """lm-eval task name of rmxbench benchmark ``task`` (``gsm8k`` -> ``rmx_gsm8k``)."""
    return f"rmx_{task}"


def task_sampling(task: str, protocol: Protocol, prompt_style: str):
    """The :class:`~rmxbench.spec.sampling.Sampling` of ``task`` under ``protocol``
    (:meth:`~rmxbench.spec.schema.Protocol.metric`) with the prompt style's stop sequences
    (:data:`rmxbench.evaluation.prompts.STOP_SEQUENCES`)."""
    from rmxbench.evaluation.prompts import STOP_SEQUENCES

    return protocol.metric(task).sampling.stopped_at(STOP_SEQUENCES[prompt_style])


def generation_kwargs(task: str, protocol: Protocol, prompt_style: str) -> dict[str, Any]:
    """lm-eval ``generation_kwargs`` for ``task`` under ``protocol``, written from
    :func:`task_sampling` (all values explicit): ``until`` = the style's stop sequences,
    ``max_gen_toks``, and temperature/top-p/top-k (temperature 0 = greedy, ``do_sample`` false).
    They document the task config; generation itself uses the :class:`Sampling` record."""
    sm = task_sampling(task, protocol, prompt_style)
    kw: dict[str, Any] = {"until": list(sm.stop), "max_gen_toks": sm.max_new_tokens}
    if sm.greedy:
        kw.update(do_sample=False, temperature=0.0)
    else:
        kw.update(do_sample=True, temperature=float(sm.temperature), top_p=float(sm.top_p))
        if sm.top_k:
            kw["top_k"] = int(sm.top_k)
    return kw


#: lm-eval's task version of every rmxbench task (``versions`` in lm-eval's results).
TASK_VERSION = 1.0


def _fixed_config() -> dict[str, Any]:
    """The part of every rmxbench lm-eval task config that neither the benchmark nor the protocol
    decides: the dataset hook, the prompt as context, rmxbench's grader as ``process_results`` and
    the keep-all filter (lm-eval's default ``take_first`` would score only the first of k samples)."""
    from rmxbench.evaluation import lm_hooks

    return {
        "output_type": "generate_until",
        "custom_dataset": lm_hooks.load_docs,
        "test_split": "test",
        "doc_to_text": "prompt",
        "doc_to_target": "answer",
        "num_fewshot": 0,
        "process_results": lm_hooks.process_results,
        "filter_list": [{"name": "graded", "filter": [{"function": "custom", "filter_fn": lm_hooks.truncate_keep_all}]}],
    }


def lm_task_config(task: str, protocol: Protocol, prompt_style: str) -> dict[str, Any]:
    """The whole lm-eval task config of benchmark ``task`` (lm-eval task ``rmx_<task>``), generated
    from its record (:mod:`rmxbench.spec.benchmarks`: the dataset hook's ``benchmark``) and
    :meth:`Protocol.metric` (``repeats`` = k, the metric list: pass@1, or avg@k with pass@k and
    maj@k; the generation kwargs), so k and decoding are stated nowhere else. ``prompt_style`` is
    the default the dataset hook uses when the task metadata names none. rmxbench's evaluation
    passes it to ``TaskManager.load``; ``rmxbench/lm_tasks/`` holds it as YAML for plain lm-eval
    (``python -m rmxbench.lm_tasks`` writes it with the default protocol).

    Raises:
        UserError: ``task`` is not a registered benchmark.
    """
    from rmxbench.evaluation import lm_hooks

    benchmark(task)
    m = protocol.metric(task)
    names = ["pass@1"] if m.k == 1 else [f"avg@{m.k}", f"pass@{m.k}", f"maj@{m.k}"]
    metric_list = [{"metric": n, "aggregation": "mean", "higher_is_better": True} for n in [*names, "score"]]
    metric_list.append({"metric": "rmx_graded", "aggregation": lm_hooks.count_graded, "higher_is_better": True})
    return {"task": task_name(task), "dataset_kwargs": {"benchmark": task}, **_fixed_config(), "repeats": m.k,
            "generation_kwargs": generation_kwargs(task, protocol, prompt_style), "metric_list": metric_list,
            "metadata": {"version": TASK_VERSION, "prompt_style": prompt_style}}


def load_lm_task(task: str, protocol: Protocol, prompt_style: str, *, metadata: dict[str, Any]):
    """``(TaskManager, Task)`` of rmxbench benchmark ``task`` from :func:`lm_task_config`, loaded
    by lm-eval's own task factory. ``metadata`` (``prompt_style``, ``data_dir``) reaches the
    dataset hook."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_defaults=False, metadata=metadata)
    return tm, tm.load([lm_task_config(task, protocol, prompt_style)])["tasks"][task_name(task)]


def tasks_identity() -> str:
    """sha256 (20 hex) of rmxbench's lm-eval task definition, part of every evaluation key: the
    hooks' source (:mod:`rmxbench.evaluation.lm_hooks`: data loading, prompt, filter, scoring), the
    fixed part of the task config (:func:`_fixed_config`) and :data:`TASK_VERSION`. What the
    benchmark, the protocol and the prompt style decide is keyed by their own parts."""
    import hashlib

    from rmxbench.evaluation import lm_hooks
    from rmxbench.pipeline.identity import file_sha256

    def ref(fn: Any) -> str:
        return f"{fn.__module__}.{fn.__qualname__}"

    h = hashlib.sha256(json.dumps({"config": _fixed_config(), "version": TASK_VERSION}, sort_keys=True,
                                  default=ref).encode())
    h.update(file_sha256(lm_hooks.__file__).encode())
    return h.hexdigest()[:20]


def protocol_key(protocol: Protocol, task: str, backend: str) -> dict[str, Any]:
    """The protocol fields that change the score of ``task`` (part of its evaluation key): the
    metric, its :class:`~rmxbench.spec.sampling.Sampling`, the context length, the subset, and the
    generation backend's key parts (:func:`rmxbench.backends.select.generation_key`; ``backend``
    with ``auto`` already resolved, as the run will use it)."""
    from rmxbench.backends.select import generation_key

    m = protocol.metric(task)
    return {"metric": m.name, "sampling": m.sampling.key(), "max_model_len": protocol.max_model_len,
            "limit": protocol.limit.get(task),
            **generation_key(backend, batch_size=protocol.batch_size,
                             tensor_parallel_size=protocol.vllm.tensor_parallel_size,
                             enforce_eager=protocol.vllm.enforce_eager)}


def _model_provenance(model_ref: ModelRef, spec_dir: str | Path | None, adapter_dir: str | Path | None) -> dict:
    """The model (and adapter) identity of an evaluation, by :mod:`rmxbench.pipeline.identity`
    (the same functions, hence the same hashes, as the content keys)."""
    from rmxbench.pipeline.identity import adapter_identity, model_identity, resolve_model_path

    prov: dict[str, Any] = {"model": model_ref.model_dump(mode="json")}
    ident = model_identity(model_ref, spec_dir=Path(spec_dir) if spec_dir is not None else None)
    if model_ref.path is not None:
        prov["model_path_resolved"] = str(resolve_model_path(model_ref.path, spec_dir))
        prov["model_sha256"] = ident["sha256"]
    else:
        prov["model_revision"] = model_ref.revision
        prov["revision_pinned"] = model_ref.pinned
    if adapter_dir is not None:
        prov["adapter_dir"] = str(Path(adapter_dir).resolve())
        prov["adapter_sha256"] = adapter_identity(adapter_dir)
    return prov


def _data_provenance(task: str, data_dir: Path | None) -> dict:
    """Where the task's problems came from, with the identity hash of the file (or hub source)."""
    from rmxbench.evaluation.data import data_identity, embedded_path

    ds = benchmark(task)
    ident = data_identity(task, data_dir)
    if ds.derived_from:
        return {"source": "derived", "derivation": ident["version"],
                "from": [_data_provenance(n, data_dir) for n in ds.derived_from]}
    if ds.embedded:
        return {"source": "embedded", "file": str(embedded_path(ds)), "sha256": ident["sha256"]}
    if data_dir is not None:
        return {"source": "data_dir", "file": str(Path(data_dir) / ds.file), "sha256": ident["sha256"]}
    s = ds.hub
    return {"source": "hub", "dataset": s.dataset, "configs": list(s.configs), "split": s.split}


def evaluate_task(session: Any, task: str, *, protocol: Protocol, prompt_style: str, chat_template: bool,
                  model_ref: ModelRef, adapter_dir: str | Path | None = None, spec_dir: str | Path | None = None,
                  data_dir: str | Path | None = None, out_dir: str | Path, row_id: str, eval_prompt: str = "base",
                  progress: Any = None, on_total: Any = None) -> TaskRecord:
    """Evaluate the model of ``session`` (+ ``adapter_dir``) on benchmark ``task``; write outputs into ``out_dir``.

    Args:
        session: a started engine session (:meth:`rmxbench.backends.session.SessionPool.get`); the
            same session evaluates every task and adapter of its model.
        task: a test benchmark (:func:`rmxbench.spec.benchmarks.tasks`).
        protocol: decoding and subset settings (``protocol.limit[task]`` = first N problems).
        prompt_style: one of the styles in :mod:`rmxbench.evaluation.prompts` (paper App. C).
        chat_template: apply the tokenizer's chat template (forced on for ``r1_chat``).
        model_ref: the weights the session holds (hub repo + revision, or local path), for provenance.
        adapter_dir: PEFT LoRA adapter directory, or None.
        spec_dir: folder of the spec file (relative model paths resolve against it).
        data_dir: the benchmark JSONL folder, resolved once by the caller
            (:func:`rmxbench.spec.context.resolve_data_dir`); None = public hub datasets (an
            embedded benchmark always reads its packaged file).
        out_dir: output folder (created).
        row_id: board row id stored in the record.
        eval_prompt: which prompt this row uses, recorded in the provenance for the board:
            ``base`` (the family's base prompt, paper App. C) or ``trained`` (an RL checkpoint's
            own training prompt, ``RLBaseline.eval_prompt``).
        progress: called with the number of problems finished; ``on_total`` with the number of
            problems to evaluate, once known.

    Returns:
        The :class:`TaskRecord`: score = pass@1 (k = 1) or avg@k = mean correctness over all k
        samples of every problem; ``extra`` holds pass@k and maj@k; ``per_problem`` maps problem
        id -> k verdicts in sample order.

    Raises:
        UserError: unknown task/style, missing data/adapter.
    """
    from rmxbench.evaluation.prompts import CHAT_STYLES, STOP_SEQUENCES

    if task not in tasks():
        raise UserError(f"unknown task {task!r}; allowed: {', '.join(tasks())}")
    if prompt_style not in STOP_SEQUENCES:
        raise UserError(f"unknown prompt style {prompt_style!r}; allowed: {', '.join(sorted(STOP_SEQUENCES))}")
    if adapter_dir is not None and not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise UserError(f"adapter dir {str(adapter_dir)!r} has no adapter_config.json (not a PEFT adapter)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ddir = Path(data_dir) if data_dir is not None else None
    metric = protocol.metric(task)
    k = metric.k
    sampling = task_sampling(task, protocol, prompt_style)
    gen = generation_kwargs(task, protocol, prompt_style)
    apply_chat = bool(chat_template or prompt_style in CHAT_STYLES)
    limit = protocol.limit.get(task)
    import lm_eval

    meta: dict[str, Any] = {"prompt_style": prompt_style}
    if ddir is not None:
        meta["data_dir"] = str(ddir)
    name = task_name(task)
    tm, task_obj = load_lm_task(task, protocol, prompt_style, metadata=meta)
    lm = session.lm(sampling=sampling, adapter=adapter_dir, batch_size=protocol.batch_size, progress=progress)
    if on_total is not None:
        n_docs = len(task_obj.eval_docs)
        on_total(min(n_docs, limit) if limit else n_docs)

    from rmxbench.pipeline.metering import metered

    with metered("eval", out_dir) as meter:
        meter["devices"] = session.spec.accelerators  # an engine's workers may allocate in other processes
        t0 = time.perf_counter()
        res = lm_eval.simple_evaluate(
            model=lm, tasks=[task_obj], task_manager=tm, limit=limit, log_samples=True,
            apply_chat_template=apply_chat, random_seed=protocol.seed, numpy_random_seed=protocol.seed,
            torch_random_seed=protocol.seed, fewshot_random_seed=protocol.seed, bootstrap_iters=0,
        )
        wall = time.perf_counter() - t0
        meter["items"] = sum(len(ex["rmx_graded"]["correct"]) for ex in (res or {}).get("samples", {}).get(name, []))
        meter["prompt_tokens"] = getattr(lm, "prompt_tokens", 0)  # the counts done (issue 20: cost calibration)
        meter["completion_tokens"] = getattr(lm, "completion_tokens", 0)
        meter["work_seconds"] = getattr(lm, "generate_seconds", 0.0)  # generation alone (the rest: lm-eval, grading)
        meter["work_cpu_seconds"] = getattr(lm, "generate_cpu_seconds", 0.0)
    if res is None:  # non-zero rank in a distributed run
        raise UserError("lm-eval returned no results on this process (non-zero rank)")
    samples = res.pop("samples")[name]
    atomic_write_json(out_dir / "results.json", res)

    lines, per_problem, extra_acc = [], {}, {"pass": [], "maj": []}
    timeouts = malformed = 0
    from rmxbench.evaluation.lm_hooks import scores_from_verdicts

    for ex in sorted(samples, key=lambda e: e["doc_id"]):
        d = ex["rmx_graded"]
        doc = ex["doc"]
        prompt = ex["arguments"][0][0] if ex["arguments"] else doc["prompt"]
        raw = ex["resps"][0] if ex["resps"] else []
        if len(d["correct"]) != k:
            raise RuntimeError(f"{name}: problem {d['id']} has {len(d['correct'])} graded samples, expected {k}")
        per_problem[d["id"]] = list(d["correct"])
        m = scores_from_verdicts(d["correct"], d["extracted"])
        if k > 1:
            extra_acc["pass"].append(m[f"pass@{k}"])
            extra_acc["maj"].append(m[f"maj@{k}"])
        for j in range(k):
            timeouts += int(d["timed_out"][j])
            malformed += int(d["extracted"][j] is None)
            lines.append(json.dumps({
                "id": d["id"], "task": task, "sample": j, "prompt": prompt,
                "completion": d["completions"][j], "raw_completion": raw[j] if j < len(raw) else None,
                "gold": doc["answer"], "extracted": d["extracted"][j], "rule": d["rule"][j],
                "correct": d["correct"][j], "timed_out": d["timed_out"][j]}, ensure_ascii=False))
    atomic_write_text(out_dir / "samples.jsonl", "\n".join(lines) + ("\n" if lines else ""))

    n = len(per_problem)
    all_v = [v for vs in per_problem.values() for v in vs]
    score = sum(all_v) / len(all_v) if all_v else 0.0
    lm_score = res["results"][name].get("score,graded")
    if lm_score is not None and abs(lm_score - score) > 1e-9:
        raise RuntimeError(f"{name}: lm-eval score {lm_score} != per-sample mean {score}")
    extra = {}
    if k > 1 and n:
        extra = {f"pass@{k}": sum(extra_acc["pass"]) / n, f"maj@{k}": sum(extra_acc["maj"]) / n}

    from rmxbench.backends.select import library_versions
    from rmxbench.evaluation.grading import GRADER_VERSION
    from rmxbench.pipeline.metering import device_info

    prov = {
        **_model_provenance(model_ref, spec_dir, adapter_dir),
        "engine": session.spec.key,
        "row_id": row_id, "task": task, "lm_eval_task": name,
        "backend": session.name, "backend_version": session.version, "dtype": session.spec.dtype,
        "trust_remote_code": session.spec.trust_remote_code,
        "prompt_style": prompt_style, "eval_prompt": eval_prompt, "chat_template": apply_chat,
        "decoding": {"k": k, **gen, "max_model_len": protocol.max_model_len, "batch_size": protocol.batch_size},
        "seeds": {"seed": protocol.seed, "per_sample": session.per_sample_seeds},
        "sampling": sampling.key(),
        "limit": limit, "data": _data_provenance(task, ddir),
        "grader_version": GRADER_VERSION, "versions": library_versions(),
        "hardware": {**device_info(), "platform": platform.platform(), "processor": platform.processor() or None},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": wall,
    }
    rec = TaskRecord(row_id=row_id, task=task, metric=metric.name, score=score,
                     n_problems=n, k=k, per_problem=per_problem, extra=extra, timeouts=timeouts,
                     malformed=malformed, provenance=prov)
    atomic_write_json(out_dir / "record.json", rec.to_json())
    return rec
