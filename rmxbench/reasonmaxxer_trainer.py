"""ReasonMaxxer training: pool → rollouts → selection → entropy → train(τ) × |τ| → validate(τ) → pick
(paper §5, §6.1, Appendix B). Configuration: :mod:`rmxbench.reasonmaxxer_config`.

Entry point: :func:`train_row` (used by ``rmxbench train`` and the runner). Every stage is built
through the :class:`~rmxbench.store.ArtifactStore` under a key of everything that determines it
(model identity, stage config, input keys, data-file hashes, the stage's code version in
:data:`CODE_VERSION`), so a rerun reuses finished stages and an interrupted run resumes. Entropy is
τ-independent (H_t is stored; the gate H_t > τ is applied when the training set is built), so
changing the τ list retrains adapters but reuses rollouts and entropies.

Training (App. B): LoRA (peft) on the frozen base, AdamW (betas, ε from the recipe), linear warmup
then linear decay to zero (``transformers.get_linear_schedule_with_warmup``), micro-batch 1 with
gradient accumulation 8, gradient-norm clipping, driven by :mod:`accelerate` (so multi-GPU uses
accelerate's engine). The base distribution for the KL anchor is the same weights with the
adapter disabled (:func:`rmxbench.loss.model_loss`). One adapter per τ; each is scored on the
validation split (:mod:`rmxbench.pool`) and the best is picked (ties: fewer malformed
completions, then the earlier τ in the recipe's list).

Artifacts: ``adapter/<key>/`` is a standard PEFT adapter dir (``adapter_config.json``,
``adapter_model.safetensors``) plus ``rmx_metadata.json`` (chosen τ, decision fraction, validation
score per τ, seeds, library versions, seconds per stage). Every stage folder has ``meter.json``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from rmxbench.errors import UserError
from rmxbench.metering import metered
from rmxbench.results import atomic_write_json, library_versions

#: Per-stage code versions (part of every key: bump one to invalidate that stage and later ones).
CODE_VERSION = {
    "pool": "pool-1",
    "rollouts": "rollouts-1",
    "selection": "selection-1",
    "entropy": "entropy-1",
    "adapter_tau": "train-1",
    "validation": "validate-1",
    "adapter": "pick-1",
}
#: The runner's / planner's ``--force`` names -> the trainer's store stages.
FORCE_STAGES = {
    "pool": {"pool", "rollouts", "selection", "entropy", "adapter_tau", "validation", "adapter"},
    "rollouts": {"rollouts", "selection", "entropy", "adapter_tau", "validation", "adapter"},
    "selection": {"selection", "entropy", "adapter_tau", "validation", "adapter"},
    "entropy": {"entropy", "adapter_tau", "validation", "adapter"},
    "train": {"adapter_tau", "validation", "adapter"},
    "validate": {"validation", "adapter"},
    "all": {"pool", "rollouts", "selection", "entropy", "adapter_tau", "validation", "adapter"},
}
METADATA_FILE = "rmx_metadata.json"
#: Fewer mixed-success problems than min(this, selection.max_problems) -> status "too_few_mixed".
MIN_MIXED = 5


@dataclass
class TrainResult:
    """Outcome of :func:`train_row`.

    Attributes:
        adapter_dir: the picked PEFT adapter folder (None unless ``status == "ok"``).
        metadata: the contents of ``rmx_metadata.json`` (or what is known on failure).
        stage_dirs: stage label (``pool``, ``rollouts``, ``selection``, ``entropy``,
            ``train[tau=…]``, ``validate[tau=…]``, ``validate[base]``, ``pick``) -> artifact folder.
        status: ``"ok"`` or ``"too_few_mixed"``.
        message: plain-language summary (why it stopped, or what was picked).
    """

    adapter_dir: Path | None
    metadata: dict
    stage_dirs: dict[str, Path] = field(default_factory=dict)
    status: str = "ok"
    message: str = ""


def _grader_version() -> str:
    try:
        from rmxbench.grading import GRADER_VERSION

        return str(GRADER_VERSION)
    except ImportError:  # pragma: no cover - grader not installed yet
        return "unknown"


# ----------------------------------------------------------------------------- progress


@contextmanager
def _progress_ctx(progress: Any | None) -> Iterator[Any]:
    if progress is not None:
        yield progress
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=False) as p:
        yield p


class _Stage:
    """A rich progress task for one stage: ``advance(n)``; ``done()`` marks it complete."""

    def __init__(self, progress: Any, description: str, total: int | None):
        self.p = progress
        self.id = progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        self.p.advance(self.id, n)

    def note(self, description: str) -> None:
        self.p.update(self.id, description=description)

    def done(self, description: str | None = None) -> None:
        t = self.p.tasks[[x.id for x in self.p.tasks].index(self.id)]
        kw = {"completed": t.total if t.total is not None else 1}
        if t.total is None:
            kw["total"] = 1
        if description:
            kw["description"] = description
        self.p.update(self.id, **kw)


# ----------------------------------------------------------------------------- model context


class BaseModelCache:
    """Loads a base model's ``(model, tokenizer)`` once (:func:`rmxbench.modeling.load_model`), only
    when some stage actually needs it. ``get()`` returns the pair."""

    def __init__(self, base: Any, spec_dir: Path | None):
        self.base, self.spec_dir = base, spec_dir
        self._m = None

    def tokenizer(self):
        """The tokenizer alone (no weights loaded): for the vLLM backend, which loads its own model."""
        if self._m is not None:
            return self._m[1]
        from transformers import AutoTokenizer

        from rmxbench.modeling import tokenizer_kwargs

        return AutoTokenizer.from_pretrained(**tokenizer_kwargs(self.base.model, spec_dir=self.spec_dir,
                                                                trust_remote_code=self.base.trust_remote_code))

    def get(self):
        if self._m is None:
            from rmxbench.modeling import load_model

            self._m = load_model(self.base.model, dtype=self.base.dtype,
                                 trust_remote_code=self.base.trust_remote_code, spec_dir=self.spec_dir)
        return self._m


def _set_threads() -> None:
    import os

    import torch

    n = os.environ.get("RMXBENCH_THREADS")
    if n:
        torch.set_num_threads(int(n))


# ----------------------------------------------------------------------------- dataset


def build_training_set(rollouts: list[dict], train_ids: list[str], entropies: dict[str, list], *,
                       tau: float, objective: str, max_seq_len: int, advantage_clip: float,
                       advantage_eps: float, seed: int) -> tuple[list[dict], dict[str, float]]:
    """Training sequences for one τ (paper §5.2-5.3).

    Each item: ``input_ids`` (prompt + completion ids, truncated to ``max_seq_len``),
    ``completion_mask``, ``decision`` (bool, completion tokens with H_t > τ; for
    ``random_positions`` the same number per sequence at seeded random completion positions),
    ``advantage`` (Eq. 5, per problem over its K rollouts, clipped). ``positive_only`` keeps only
    rollouts with A > 0 (§6.3).

    Returns:
        ``(items, stats)`` with stats ``decision_fraction`` (decision tokens / completion tokens),
        ``n_sequences``, ``n_decision``, ``n_completion``.
    """
    import torch

    from rmxbench.entropy import decision_mask
    from rmxbench.loss import advantages

    by_id = {r["id"]: r for r in rollouts}
    rng = torch.Generator().manual_seed(seed)
    items, n_dec, n_comp = [], 0, 0
    for pid in train_ids:
        r = by_id[pid]
        A = advantages(torch.tensor([s["reward"] for s in r["samples"]]), clip=advantage_clip, eps=advantage_eps)
        for j, s in enumerate(r["samples"]):
            if objective == "positive_only" and not A[j] > 0:
                continue
            ids = (list(r["prompt_ids"]) + list(s["completion_ids"]))[:max_seq_len]
            P = len(r["prompt_ids"])
            comp = torch.zeros(len(ids), dtype=torch.bool)
            comp[P:] = True
            H = entropies[pid][j][:len(ids)]
            dec = decision_mask(H, comp, tau)
            if objective == "random_positions":
                k = int(dec.sum())
                pos = torch.nonzero(comp).flatten()
                dec = torch.zeros_like(comp)
                if k and len(pos):
                    dec[pos[torch.randperm(len(pos), generator=rng)[:k]]] = True
            n_dec += int(dec.sum())
            n_comp += int(comp.sum())
            items.append({"input_ids": torch.tensor(ids, dtype=torch.long), "completion_mask": comp,
                          "decision": dec, "advantage": float(A[j])})
    stats = {"decision_fraction": n_dec / max(n_comp, 1), "n_sequences": len(items),
             "n_decision": n_dec, "n_completion": n_comp}
    return items, stats


def collate(items: list[dict], pad_id: int = 0) -> dict:
    """Right-pad a list of training items into ``[B, T]`` tensors (+ ``advantage`` ``[B]``)."""
    import torch

    T = max(len(x["input_ids"]) for x in items)
    B = len(items)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    dec = torch.zeros((B, T), dtype=torch.bool)
    for i, x in enumerate(items):
        n = len(x["input_ids"])
        ids[i, :n] = x["input_ids"]
        mask[i, :n] = 1
        dec[i, :n] = x["decision"]
    return {"input_ids": ids, "attention_mask": mask, "decision": dec,
            "advantage": torch.tensor([x["advantage"] for x in items], dtype=torch.float32)}


# ----------------------------------------------------------------------------- training


def train_adapter(model: Any, items: list[dict], recipe: Any, *, pad_id: int, out_dir: Path,
                  on_step: Callable[[], None] | None = None) -> dict:
    """Train one LoRA adapter with the ReasonMaxxer loss and ``save_pretrained`` it to ``out_dir``.

    Args:
        model: the base ``PreTrainedModel`` (modified in place by peft; call ``.unload()`` on the
            returned model's result to restore — done here before returning).
        items: from :func:`build_training_set`.
        recipe: :class:`~rmxbench.reasonmaxxer_config.ReasonMaxxerRecipe`.
        on_step: called after every micro-batch (progress).
    Returns:
        training log: ``steps`` (optimiser updates), ``micro_steps``, per-update ``history``
        (loss, dec, anchor, decision_kl, floored, lr, grad_norm), ``seconds``.
    """
    import torch
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    from rmxbench.loss import model_loss

    opt_cfg, lcfg = recipe.optim, recipe.lora
    torch.manual_seed(recipe.seed)
    peft_model = get_peft_model(model, LoraConfig(
        r=lcfg.rank, lora_alpha=lcfg.alpha, lora_dropout=lcfg.dropout, target_modules=list(lcfg.target_modules),
        bias="none", task_type="CAUSAL_LM", init_lora_weights=True))
    device = next(model.parameters()).device
    acc = Accelerator(gradient_accumulation_steps=opt_cfg.grad_accum, cpu=device.type == "cpu")
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opt_cfg.learning_rate, betas=(opt_cfg.adam_beta1, opt_cfg.adam_beta2),
                                  eps=opt_cfg.adam_epsilon, weight_decay=opt_cfg.weight_decay)
    g = torch.Generator().manual_seed(recipe.seed)
    loader = DataLoader(items, batch_size=opt_cfg.batch_size, shuffle=True, generator=g,
                        collate_fn=lambda b: collate(b, pad_id))
    micro_total = math.ceil(opt_cfg.epochs * len(loader))
    updates = max(1, math.ceil(micro_total / opt_cfg.grad_accum))
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(opt_cfg.warmup_ratio * updates), updates)
    peft_model, optimizer, loader, scheduler = acc.prepare(peft_model, optimizer, loader, scheduler)
    peft_model.train()
    hist, buf, micro = [], [], 0
    t0 = time.perf_counter()
    unwrapped = acc.unwrap_model(peft_model)
    while micro < micro_total:
        for batch in loader:
            if micro >= micro_total:
                break
            with acc.accumulate(peft_model):
                out = model_loss(unwrapped, batch, anchor_weight=recipe.anchor_weight,
                                 negative_floor=recipe.negative_floor)
                acc.backward(out.loss)
                gn = None
                if acc.sync_gradients:
                    gn = acc.clip_grad_norm_(params, opt_cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            micro += 1
            buf.append(out)
            if acc.sync_gradients or micro == micro_total:
                n = len(buf)
                hist.append({
                    "loss": sum(float(o.loss.detach()) for o in buf) / n,
                    "dec": sum(float(o.dec_loss) for o in buf) / n,
                    "anchor": sum(float(o.anchor_loss) for o in buf) / n,
                    "decision_kl": (sum(float(o.decision_kl) * o.n_decision for o in buf)
                                    / max(sum(o.n_decision for o in buf), 1)),
                    "floored": sum(o.floored for o in buf),
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": float(gn) if gn is not None else None,
                })
                buf = []
            if on_step is not None:
                on_step()
    seconds = time.perf_counter() - t0
    unwrapped = acc.unwrap_model(peft_model)
    unwrapped.save_pretrained(out_dir)
    acc.free_memory()
    unwrapped.unload()  # restore the base model in place (LoRA layers removed, not merged)
    model.eval()
    return {"steps": len(hist), "micro_steps": micro, "history": hist, "seconds": seconds,
            "warmup_steps": math.ceil(opt_cfg.warmup_ratio * updates)}


# ----------------------------------------------------------------------------- validation


def _generator(spec: Any, base: Any, model: Any, tok: Any, recipe: Any, *, spec_dir: Path | None,
               adapter_dir: Path | None, seed: int):
    """The protocol's generation backend for ``base`` (+ ``adapter_dir``); ``seed`` = the decoding's seed."""
    from rmxbench.backends import resolve_backend
    from rmxbench.generation import HFGenerator, VLLMGenerator

    if resolve_backend(spec.protocol.backend) == "vllm":
        from rmxbench.modeling import hf_kwargs

        kw = hf_kwargs(base.model, dtype=base.dtype, trust_remote_code=base.trust_remote_code, spec_dir=spec_dir)
        path = kw["pretrained_model_name_or_path"]
        if base.model.gguf_file:  # vLLM gets the GGUF as a converted folder (cached in the store by content)
            from rmxbench.modeling import gguf_as_folder

            path = str(gguf_as_folder(base.model, spec_dir=spec_dir, trust_remote_code=base.trust_remote_code))
        tok_name = None
        if base.model.tokenizer:
            from rmxbench.modeling import tokenizer_kwargs

            tok_name = tokenizer_kwargs(base.model, spec_dir=spec_dir,
                                        trust_remote_code=base.trust_remote_code)["pretrained_model_name_or_path"]
        return VLLMGenerator(path, revision=kw.get("revision"), tokenizer=tok_name, dtype=base.dtype,
                             seed=seed, adapter_dir=str(adapter_dir) if adapter_dir else None,
                             max_lora_rank=spec.protocol.vllm.max_lora_rank,
                             tensor_parallel_size=spec.protocol.vllm.tensor_parallel_size,
                             gpu_memory_utilization=spec.protocol.vllm.gpu_memory_utilization,
                             max_model_len=spec.protocol.max_model_len,
                             trust_remote_code=base.trust_remote_code)
    return HFGenerator(model, tok, batch_size=recipe.rollouts.batch_size)


def _backend(spec: Any) -> str:
    """``hf``/``vllm``: the protocol's backend with ``auto`` resolved (:func:`rmxbench.backends.resolve_backend`)."""
    from rmxbench.backends import resolve_backend

    return resolve_backend(spec.protocol.backend)


def validate(spec: Any, base: Any, recipe: Any, models: BaseModelCache, validation_rows: list[dict], *,
             adapter_dir: Path | None, spec_dir: Path | None, on_batch: Callable[[int], None] | None = None,
             n_examples: int = 4, task: str | None = None) -> dict:
    """Score the base (``adapter_dir=None``) or an adapter on the validation split.

    Decoding: ``recipe.validation_samples`` samples per problem at
    ``recipe.validation_temperature`` (0 = greedy), rollout ``max_new_tokens``.

    Also used to score held-out test problems (``task`` = the grading task, default the pool's).

    Returns:
        ``accuracy`` (mean reward over all samples = sampled pass@1), ``stderr`` (standard error
        over problems: sample s.d. of per-problem accuracies / sqrt(#problems)),
        ``malformed_share`` (no extractable answer or length cap), ``n_problems``, ``n_samples``,
        ``per_problem`` (id -> accuracy), ``examples`` (a few completions, to see collapse).
    """
    from rmxbench.generation import Decoding
    from rmxbench.prompts import STOP_SEQUENCES, build_prompt
    from rmxbench.rollouts import grade_completion

    model, tok = (None, models.tokenizer()) if _backend(spec) == "vllm" else models.get()
    peft_model = None
    if adapter_dir is not None and model is not None:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
        peft_model.eval()
    try:
        prompts = [build_prompt(r["problem"], base.prompt_style, tok) for r in validation_rows]
        dec = Decoding(n=recipe.validation_samples, temperature=recipe.validation_temperature,
                       top_p=recipe.rollouts.top_p if recipe.validation_temperature > 0 else 1.0,
                       top_k=recipe.rollouts.top_k if recipe.validation_temperature > 0 else 0,
                       max_new_tokens=recipe.rollouts.max_new_tokens, seed=recipe.seed + 1,
                       stop=tuple(STOP_SEQUENCES.get(base.prompt_style, [])))
        gen = _generator(spec, base, peft_model or model, tok, recipe, spec_dir=spec_dir, adapter_dir=adapter_dir,
                         seed=dec.seed)
        outs = gen.generate(prompts, dec, progress=on_batch)
    finally:
        if peft_model is not None:
            peft_model.unload()
    rewards, malformed, examples, per_problem = [], [], [], {}
    for row, samples in zip(validation_rows, outs):
        verdicts = []
        for s in samples:
            g = grade_completion(s.text, str(row["answer"]), s.finish_reason, task=task or recipe.pool.source)
            verdicts.append(g["reward"])
            malformed.append(g["malformed"])
            if len(examples) < n_examples:
                examples.append({"id": row["id"], "completion": s.text, "reward": g["reward"],
                                 "extracted": g["extracted"], "malformed": g["malformed"]})
        rewards += verdicts
        per_problem[row["id"]] = sum(verdicts) / max(len(verdicts), 1)
    n = max(len(rewards), 1)
    acc = sum(rewards) / n
    means = list(per_problem.values())
    m = len(means)
    sd = math.sqrt(sum((x - acc) ** 2 for x in means) / (m - 1)) if m > 1 else 0.0
    return {"accuracy": acc, "stderr": sd / math.sqrt(max(m, 1)), "malformed_share": sum(malformed) / n,
            "n_problems": len(validation_rows), "n_samples": len(rewards), "examples": examples,
            "per_problem": per_problem}


# ----------------------------------------------------------------------------- the row


def _tau_label(tau: float | None) -> str:
    return "base" if tau is None else f"tau={tau:g}"


def train_row(spec: Any, base: Any, row: Any, *, store: Any, spec_dir: str | Path | None,
              data_dir: str | Path | None, force: frozenset[str] | set[str] = frozenset(),
              progress: Any | None = None) -> TrainResult:
    """Run the ReasonMaxxer recipe of ``row`` on ``base`` (paper §5, §6.1, App. B).

    Stages (store stage names in brackets): pool [``pool``] → rollouts [``rollouts``] → selection
    [``selection``] → entropy [``entropy``] → one adapter per τ [``adapter_tau``] → validation per
    τ and of the base [``validation``] → pick [``adapter``].

    Args:
        spec: the :class:`~rmxbench.spec.Spec`.
        base: the :class:`~rmxbench.spec.BaseModelSpec` the row belongs to.
        row: the :class:`~rmxbench.spec.ReasonMaxxerRow`.
        store: :class:`~rmxbench.store.ArtifactStore`.
        spec_dir: the spec file's folder (relative model paths).
        data_dir: benchmark data folder, None = hub datasets.
        force: stage names to rebuild (``pool``, ``rollouts``, ``selection``, ``entropy``,
            ``train``, ``validate``, ``all``); each also rebuilds every later stage.
        progress: a ``rich.progress.Progress`` to add tasks to (else one is created).
    Returns:
        :class:`TrainResult` (``status`` ``"ok"`` or ``"too_few_mixed"``).
    Raises:
        UserError: unknown recipe, unreadable data, contamination with ``refuse``.
    """
    import torch

    from rmxbench.data import load_benchmark
    from rmxbench.planner import HashCache, data_identity, model_identity
    from rmxbench.pool import load_eval_sets, select_pool

    _set_threads()
    if row.recipe not in spec.recipes:
        raise UserError(f"row {row.id!r} uses recipe {row.recipe!r}, not defined in the spec",
                        hint=f"defined recipes: {sorted(spec.recipes)}")
    recipe = spec.recipes[row.recipe]
    spec_dir = Path(spec_dir) if spec_dir is not None else None
    data_dir = Path(data_dir) if data_dir is not None else None
    forced: set[str] = set()
    for f in force:
        forced |= FORCE_STAGES.get(f, set())
    hashes = HashCache(store.home)
    model_id = {**model_identity(base.model, spec_dir=spec_dir, hashes=hashes), "dtype": base.dtype}
    source_id = data_identity(recipe.pool.source, data_dir, hashes)
    eval_ids = {t: data_identity(t, data_dir, hashes) for t in spec.protocol.tasks}
    hashes.save()
    models = BaseModelCache(base, spec_dir)
    stage_dirs: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    grader = _grader_version()

    def build(stage: str, label: str, key: str, fn: Callable[[Path], None]) -> Path:
        def wrapped(tmp: Path) -> None:
            with metered(label, tmp):
                fn(tmp)
        d = store.build(stage, key, wrapped, force=stage in forced)
        stage_dirs[label] = d
        try:
            seconds[label] = json.loads((d / "meter.json").read_text())["seconds"]
        except (OSError, ValueError, KeyError):
            seconds[label] = 0.0
        return d

    with _progress_ctx(progress) as prog:
        # ---------------------------------------------------------------- pool
        pool_key = store.key("pool", code=CODE_VERSION["pool"], config=recipe.pool,
                             validation_problems=recipe.selection.validation_problems, seed=recipe.seed,
                             source=source_id, eval_sets=eval_ids)
        st = _Stage(prog, f"{row.id}: pool ({recipe.pool.source})", None)

        def do_pool(tmp: Path) -> None:
            sel = select_pool(load_benchmark(recipe.pool.source, data_dir=data_dir), size=recipe.pool.size,
                              validation_size=recipe.selection.validation_problems, seed=recipe.seed,
                              balance_levels=recipe.pool.balance_levels, contamination=recipe.pool.contamination,
                              eval_sets=load_eval_sets(spec.protocol.tasks, data_dir=data_dir)
                              if recipe.pool.contamination != "off" else {},
                              source_name=recipe.pool.source)
            (tmp / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sel.pool))
            (tmp / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sel.validation))
            atomic_write_json(tmp / "pool.json", sel.report)

        pool_dir = build("pool", "pool", pool_key, do_pool)
        pool_rows = [json.loads(x) for x in (pool_dir / "pool.jsonl").read_text().splitlines() if x]
        val_rows = [json.loads(x) for x in (pool_dir / "validation.jsonl").read_text().splitlines() if x]
        pool_report = json.loads((pool_dir / "pool.json").read_text())
        st.done(f"{row.id}: pool {len(pool_rows)} problems + {len(val_rows)} validation "
                f"({pool_report['contaminated_dropped']} contaminated dropped)")

        # ---------------------------------------------------------------- rollouts
        rc = recipe.rollouts
        roll_key = store.key("rollouts", code=CODE_VERSION["rollouts"], model=model_id, pool=pool_key, config=rc,
                             seed=recipe.seed, prompt_style=base.prompt_style, chat_template=base.chat_template,
                             backend=_backend(spec), grader=grader, task=recipe.pool.source)
        st = _Stage(prog, f"{row.id}: rollouts ({len(pool_rows)} problems x K={rc.k})", len(pool_rows))

        def do_rollouts(tmp: Path) -> None:
            from rmxbench.generation import Decoding
            from rmxbench.prompts import STOP_SEQUENCES, build_prompt
            from rmxbench.rollouts import generate_rollouts

            model, tok = (None, models.tokenizer()) if _backend(spec) == "vllm" else models.get()
            prompts = [build_prompt(r["problem"], base.prompt_style, tok) for r in pool_rows]
            dec = Decoding(n=rc.k, temperature=rc.temperature, top_p=rc.top_p, top_k=rc.top_k,
                           max_new_tokens=rc.max_new_tokens, seed=recipe.seed,
                           stop=tuple(STOP_SEQUENCES.get(base.prompt_style, [])))
            gen = _generator(spec, base, model, tok, recipe, spec_dir=spec_dir, adapter_dir=None, seed=dec.seed)
            res = generate_rollouts(gen, pool_rows, prompts, decoding=dec, task=recipe.pool.source,
                                    progress=st.advance)
            torch.save(res, tmp / "rollouts.pt")
            atomic_write_json(tmp / "rollouts_summary.json", {
                "n_problems": len(res), "k": rc.k, "decoding": dec.__dict__,
                "mean_pass_rate": sum(r["pass_rate"] for r in res) / max(len(res), 1),
                "examples": [{"id": r["id"], "completion": r["samples"][0]["text"],
                              "reward": r["samples"][0]["reward"]} for r in res[:3] if r["samples"]]})

        roll_dir = build("rollouts", "rollouts", roll_key, do_rollouts)
        rollouts = torch.load(roll_dir / "rollouts.pt", weights_only=False)
        st.done()

        # ---------------------------------------------------------------- selection
        sc = recipe.selection
        sel_key = store.key("selection", code=CODE_VERSION["selection"], rollouts=roll_key, config=sc,
                            seed=recipe.seed, pool=pool_key)
        st = _Stage(prog, f"{row.id}: selection", None)

        def do_selection(tmp: Path) -> None:
            from rmxbench.rollouts import select_mixed

            split = select_mixed(rollouts, min_pass_rate=sc.min_pass_rate, max_pass_rate=sc.max_pass_rate,
                                 max_problems=sc.max_problems, seed=recipe.seed)
            split["validation_ids"] = [r["id"] for r in val_rows]
            split["validation_source"] = ("pool source problems not drawn into the rollout pool "
                                          "(rmxbench.pool), disjoint from training")
            atomic_write_json(tmp / "split.json", split)

        sel_dir = build("selection", "selection", sel_key, do_selection)
        split = json.loads((sel_dir / "split.json").read_text())
        train_ids = split["train_ids"]
        st.done(f"{row.id}: selection {split['n_mixed']}/{split['n_pool']} mixed-success problems, "
                f"{len(train_ids)} kept ({split['n_sequences']} sequences)")
        base_meta: dict[str, Any] = {
            "row": row.id, "base": base.id, "recipe_name": row.recipe, "recipe": recipe.model_dump(mode="json"),
            "model": model_id, "pool": pool_report, "selection": {k: v for k, v in split.items()
                                                                 if k not in ("train_ids", "validation_ids")},
            "seeds": {"recipe": recipe.seed, "rollouts": recipe.seed, "validation": recipe.seed + 1},
            "versions": library_versions(), "grader_version": grader,
        }
        need = min(MIN_MIXED, sc.max_problems)
        if len(train_ids) < need:
            msg = (f"only {split['n_mixed']} of {split['n_pool']} pool problems have mixed success "
                   f"(pass rate strictly between {sc.min_pass_rate} and {sc.max_pass_rate} over K={rc.k} "
                   f"rollouts); at least {need} are needed to train. The base model finds the pool "
                   f"{'too hard' if split['n_all_wrong'] >= split['n_all_correct'] else 'too easy'} "
                   f"({split['n_all_wrong']} all wrong, {split['n_all_correct']} all correct): "
                   "use a larger pool, more rollouts, or another pool source.")
            return TrainResult(None, {**base_meta, "stage_seconds": seconds}, stage_dirs, "too_few_mixed", msg)

        # ---------------------------------------------------------------- entropy
        oc = recipe.optim
        ent_key = store.key("entropy", code=CODE_VERSION["entropy"], model=model_id, rollouts=roll_key,
                            selection=sel_key, max_seq_len=oc.max_seq_len)
        n_seq = split["n_sequences"]
        st = _Stage(prog, f"{row.id}: entropy ({n_seq} sequences)", n_seq)

        def do_entropy(tmp: Path) -> None:
            from rmxbench.entropy import score_sequences

            model, tok = models.get()
            by_id = {r["id"]: r for r in rollouts}
            seqs, owners = [], []
            for pid in train_ids:
                for j, s in enumerate(by_id[pid]["samples"]):
                    seqs.append((list(by_id[pid]["prompt_ids"]) + list(s["completion_ids"]))[:oc.max_seq_len])
                    owners.append((pid, j))
            H = score_sequences(model, seqs, batch_size=max(1, rc.batch_size), progress=st.advance,
                                pad_id=tok.pad_token_id or 0)
            out: dict[str, list] = {pid: [None] * len(by_id[pid]["samples"]) for pid in train_ids}
            for (pid, j), h in zip(owners, H):
                out[pid][j] = h
            torch.save(out, tmp / "entropy.pt")
            comp = torch.cat([h[len(by_id[pid]["prompt_ids"]):] for (pid, _), h in zip(owners, H)])
            qs = [0.5, 0.9, 0.95, 0.98, 0.99]
            atomic_write_json(tmp / "entropy.json", {
                "unit": "nats", "n_sequences": len(seqs), "completion_tokens": int(comp.numel()),
                "completion_quantiles": {str(q): float(torch.quantile(comp, q)) for q in qs} if comp.numel() else {},
                "share_above_tau": {f"{t:g}": float((comp > t).float().mean()) for t in recipe.taus}
                if comp.numel() else {}})

        ent_dir = build("entropy", "entropy", ent_key, do_entropy)
        entropies = torch.load(ent_dir / "entropy.pt", weights_only=False)
        st.done()

        # ---------------------------------------------------------------- train per tau
        table: list[dict] = []
        adapter_keys: dict[float, str] = {}
        for tau in recipe.taus:
            label = _tau_label(tau)
            a_key = store.key("adapter_tau", code=CODE_VERSION["adapter_tau"], model=model_id, rollouts=roll_key,
                              selection=sel_key, entropy=ent_key, tau=tau, objective=recipe.objective,
                              lora=recipe.lora, optim=oc, advantage_clip=recipe.advantage_clip,
                              advantage_eps=recipe.advantage_eps, anchor_weight=recipe.anchor_weight,
                              negative_floor=recipe.negative_floor, seed=recipe.seed)
            adapter_keys[tau] = a_key
            items, dstats = build_training_set(rollouts, train_ids, entropies, tau=tau, objective=recipe.objective,
                                               max_seq_len=oc.max_seq_len, advantage_clip=recipe.advantage_clip,
                                               advantage_eps=recipe.advantage_eps, seed=recipe.seed)
            micro_total = math.ceil(oc.epochs * math.ceil(len(items) / oc.batch_size))
            st = _Stage(prog, f"{row.id}: train {label} ({dstats['decision_fraction']:.1%} decision tokens)",
                        micro_total)

            def do_train(tmp: Path, items=items, dstats=dstats, tau=tau) -> None:
                model, tok = models.get()
                log = train_adapter(model, items, recipe, pad_id=tok.pad_token_id or 0, out_dir=tmp,
                                    on_step=st.advance)
                atomic_write_json(tmp / "train_log.json", {**log, **dstats, "tau": tau})
                atomic_write_json(tmp / METADATA_FILE, {**base_meta, "tau": tau, **dstats,
                                                        "train": {k: v for k, v in log.items() if k != "history"}})

            a_dir = build("adapter_tau", f"train[{label}]", a_key, do_train)
            st.done()
            tlog = json.loads((a_dir / "train_log.json").read_text())
            hist = tlog.get("history") or [{}]
            table.append({"tau": tau, "decision_fraction": dstats["decision_fraction"],
                          "n_sequences": dstats["n_sequences"], "adapter_key": a_key, "adapter_dir": str(a_dir),
                          "final_loss": hist[-1].get("loss"), "final_decision_kl": hist[-1].get("decision_kl"),
                          "floored": sum(h.get("floored", 0) for h in hist)})

        # ---------------------------------------------------------------- validate per tau (+ base)
        val_dec = {"samples": recipe.validation_samples, "temperature": recipe.validation_temperature,
                   "top_p": recipe.rollouts.top_p, "top_k": recipe.rollouts.top_k,
                   "max_new_tokens": recipe.rollouts.max_new_tokens}
        val_results: dict[str, dict] = {}
        val_keys: dict[str, str] = {}
        for tau in [None, *recipe.taus]:
            label = _tau_label(tau)
            v_key = store.key("validation", code=CODE_VERSION["validation"], model=model_id, pool=pool_key,
                              adapter=adapter_keys.get(tau) if tau is not None else None, decoding=val_dec,
                              prompt_style=base.prompt_style, backend=_backend(spec), grader=grader,
                              seed=recipe.seed)
            val_keys[label] = v_key
            st = _Stage(prog, f"{row.id}: validate {label} ({len(val_rows)} problems)", len(val_rows))
            a_dir = stage_dirs.get(f"train[{label}]")

            def do_val(tmp: Path, a_dir=a_dir) -> None:
                res = validate(spec, base, recipe, models, val_rows, adapter_dir=a_dir, spec_dir=spec_dir,
                               on_batch=st.advance)
                atomic_write_json(tmp / "validation.json", res)

            v_dir = build("validation", f"validate[{label}]", v_key, do_val)
            val_results[label] = json.loads((v_dir / "validation.json").read_text())
            r = val_results[label]
            st.done(f"{row.id}: validate {label}: accuracy {r['accuracy']:.3f}, malformed {r['malformed_share']:.1%}")
        for t in table:
            r = val_results[_tau_label(t["tau"])]
            t.update(validation_accuracy=r["accuracy"], validation_stderr=r["stderr"],
                     malformed_share=r["malformed_share"])

        # ---------------------------------------------------------------- pick
        order = {t["tau"]: i for i, t in enumerate(table)}
        best = max(table, key=lambda t: (t["validation_accuracy"], -t["malformed_share"], -order[t["tau"]]))
        pick_key = store.key("adapter", code=CODE_VERSION["adapter"], validations=val_keys,
                             adapters={f"{k:g}": v for k, v in adapter_keys.items()})
        st = _Stage(prog, f"{row.id}: pick", None)
        meta = {**base_meta, "tau": best["tau"], "decision_fraction": best["decision_fraction"],
                "validation_score": best["validation_accuracy"], "taus": table,
                "base_validation": {k: v for k, v in val_results["base"].items() if k != "examples"},
                "validation_examples": {k: v.get("examples", []) for k, v in val_results.items()},
                "validation": {"n_problems": len(val_rows), **val_dec}}

        def do_pick(tmp: Path) -> None:
            src = Path(best["adapter_dir"])
            for f in src.iterdir():
                if f.is_file() and f.name.startswith("adapter_") or f.name == "README.md":
                    shutil.copy2(f, tmp / f.name)
            atomic_write_json(tmp / METADATA_FILE, {**meta, "stage_seconds": dict(seconds)})

        out_dir = build("adapter", "pick", pick_key, do_pick)
        st.done(f"{row.id}: picked {_tau_label(best['tau'])} (validation {best['validation_accuracy']:.3f})")
        meta = json.loads((out_dir / METADATA_FILE).read_text())
        meta["stage_seconds"] = dict(seconds)
        msg = (f"picked τ={best['tau']:g} ({best['decision_fraction']:.1%} decision tokens): validation "
               f"accuracy {best['validation_accuracy']:.3f} vs base {val_results['base']['accuracy']:.3f}")
        return TrainResult(out_dir, meta, stage_dirs, "ok", msg)
