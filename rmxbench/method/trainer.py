"""ReasonMaxxer training internals (paper §5, App. B): the per-τ training set, the LoRA training
loop, and scoring on the validation split. The pipeline stages that call them are in
:mod:`rmxbench.stages` (``train``, ``validation``, ``rollouts``); this module knows nothing of
the store, the planner or the runner.

Training (App. B): LoRA (peft) on the frozen base, AdamW (betas, ε from the recipe), linear warmup
then linear decay to zero (``transformers.get_linear_schedule_with_warmup``), micro-batches with
``gradient_accumulation_steps``, gradient-norm clipping, driven by :mod:`accelerate` (so multi-GPU
uses accelerate's engine). The base distribution for the KL anchor is the same weights with the
adapter disabled (:func:`rmxbench.method.loss.model_loss`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

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

    from rmxbench.method.entropy import decision_mask
    from rmxbench.method.loss import advantages

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
        recipe: :class:`~rmxbench.spec.recipe.ReasonMaxxerRecipe`.
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

    from rmxbench.method.loss import model_loss

    opt_cfg, lcfg = recipe.optim, recipe.lora
    torch.manual_seed(recipe.seed)
    peft_model = get_peft_model(model, LoraConfig(
        r=lcfg.rank, lora_alpha=lcfg.alpha, lora_dropout=lcfg.dropout, target_modules=list(lcfg.target_modules),
        bias="none", task_type="CAUSAL_LM", init_lora_weights=True))
    device = next(model.parameters()).device
    acc = Accelerator(gradient_accumulation_steps=opt_cfg.gradient_accumulation_steps, cpu=device.type == "cpu")
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opt_cfg.learning_rate, betas=(opt_cfg.adam_beta1, opt_cfg.adam_beta2),
                                  eps=opt_cfg.adam_epsilon, weight_decay=opt_cfg.weight_decay)
    g = torch.Generator().manual_seed(recipe.seed)
    loader = DataLoader(items, batch_size=opt_cfg.batch_size, shuffle=True, generator=g,
                        collate_fn=lambda b: collate(b, pad_id))
    micro_total = math.ceil(opt_cfg.epochs * len(loader))
    updates = max(1, math.ceil(micro_total / opt_cfg.gradient_accumulation_steps))
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


def score_on_validation(session: Any, config: Any, validation_rows: list[dict], *, adapter_dir: Path | None,
                        on_batch: Callable[[int], None] | None = None, n_examples: int = 4,
                        task: str | None = None) -> dict:
    """Score the base (``adapter_dir=None``) or an adapter on the validation split (paper §6.1 τ
    selection), on the base model's engine session (the adapter is served per request).

    Args:
        session: the base model's engine session (:class:`rmxbench.backends.session.Session`).
        config: a :class:`rmxbench.stages.common.MethodConfig`.
        task: the grading task (default: the pool's); also used to score held-out test problems.

    Decoding: :meth:`~rmxbench.spec.recipe.ReasonMaxxerRecipe.validation_sampling` (the record
    the node's key holds) with the prompt style's stop strings.

    Returns:
        ``accuracy`` (mean reward over all samples = sampled pass@1), ``stderr`` (standard error
        over problems: sample s.d. of per-problem accuracies / sqrt(#problems)),
        ``malformed_share`` (no extractable answer or length cap), ``n_problems``, ``n_samples``,
        ``per_problem`` (id -> accuracy), ``examples`` (a few completions, to see collapse),
        ``sampling`` (the record), ``completion_tokens`` (tokens generated, for the cost meter).
    """
    from rmxbench.evaluation.prompts import STOP_SEQUENCES, build_prompt
    from rmxbench.method.rollouts import grade_completion

    base, recipe = config.base, config.recipe
    prompts = [build_prompt(r["problem"], base.prompt_style, session.tokenizer) for r in validation_rows]
    sampling = recipe.validation_sampling().stopped_at(STOP_SEQUENCES.get(base.prompt_style, []))
    outs = session.generate(prompts, sampling, adapter=adapter_dir, request_ids=[str(r["id"]) for r in validation_rows],
                            batch_size=recipe.rollouts.batch_size, progress=on_batch)
    rewards, malformed, examples, per_problem = [], [], [], {}
    completion_tokens = sum(len(s.completion_ids) for samples in outs for s in samples)
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
            "per_problem": per_problem, "sampling": sampling.key(), "completion_tokens": completion_tokens}
