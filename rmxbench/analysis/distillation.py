"""KL-LoRA distillation of the other model into a LoRA on the base, over a rank x module grid
(paper §4.1-4.2 Eq. 4, Appendix A Table 4, Appendix B "KL-LoRA Distillation").

1. **Teacher rollouts** (:func:`build_teacher`): ``n_problems`` problems drawn at random (seed
   44, App. B) from the pool; the other model (the *teacher*) samples completions at T 0.6,
   top-p 0.95 (App. B) with :func:`~rmxbench.backends.hf_session.hf_generate`.
2. **Top-k cache**: the teacher is teacher-forced on its own rollouts and its top-``k`` logits
   (App. B: 64) at every generated token are stored (``teacher.pt``: per rollout ``prompt_ids``,
   ``completion_ids``, ``topk_idx`` ``[C, k]`` int64, ``topk_logits`` ``[C, k]`` float32).
3. **Student** (:func:`train_variant`): a peft LoRA on the frozen base, trained with
   ``transformers.Trainer`` (AdamW, lr 1e-4, weight decay 1e-2, 10% linear warmup then linear
   decay, 3 epochs, batch 2 x gradient_accumulation_steps 8; App. B) to minimise, averaged over
   generated-token positions only (App. B), the top-k KL of Eq. 4:

       KL_k(t) = Σ_{v ∈ top-k} p̂_T(v) (log p̂_T(v) − log p_S(v)),   p̂_T = softmax over the k teacher logits,

   with the student's ``log p_S`` normalised over the full vocabulary. (The paper's text says
   only "a manually implemented KL divergence over the teacher's top-64 logits"; this choice is
   ≥ 0, and 0 exactly when the student puts the teacher's renormalised top-k mass on those
   tokens.) One adapter per :class:`~rmxbench.spec.analyses.LoraVariant`.
4. **Evaluation**: greedy pass@1 of base, teacher and every student on the test problems (the one
   grader), and ``recovered = (acc_student − acc_base) / (acc_teacher − acc_base)`` (None when the
   gap is 0), plus the train-set KL before and after training and the adapter's share of
   parameters (§4.2: 0.27-0.49%).

``result.json`` ``data``: ``base``, ``teacher`` (accuracy summaries), ``variants`` (list of
``name``, ``rank``, ``alpha``, ``target_modules``, ``trainable_params``, ``param_share``,
``accuracy``, ``stderr``, ``recovered``, ``kl_before``, ``kl_after``, ``steps``, ``loss_history``,
``seconds``), ``teacher_rollouts`` (count, tokens, teacher pass rate on the pool problems).
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from rmxbench.spec.analyses import DistillationConfig, LoraVariant
from rmxbench.analysis.common import (AnalysisResult, Pair, check_same_tokenizer, map_completion_logits,
                                      new_figure, prompts_for, save_figure, score, stop_strings, verdicts,
                                      write_result)

ANALYSIS = "distillation"
TEACHER_FILE = "teacher.pt"


def draw_problems(pool: Sequence[dict], n: int, seed: int) -> list[dict]:
    """``n`` problems drawn uniformly without replacement (all of them if the pool is smaller)."""
    rows = list(pool)
    return random.Random(seed).sample(rows, min(n, len(rows)))


def build_teacher(config: DistillationConfig, pair: Pair, pool: Sequence[dict], *, max_new_tokens: int,
                  out_dir: Path, teacher: tuple | None = None, progress=None) -> dict:
    """Teacher rollouts + their top-k logits, saved as ``out_dir/teacher.pt`` (steps 1-2).

    Returns:
        ``{"rollouts": [...], "summary": {...}}`` (also what is saved). ``summary``: problems,
        rollouts, completion tokens, teacher pass rate (graded with the pool's task).
    """
    import torch

    from rmxbench.backends.hf_session import hf_generate
    from rmxbench.spec.sampling import Sampling

    model, tok = teacher or pair.other.load()
    problems = draw_problems(pool, config.n_problems, config.seed)
    sampling = Sampling.of(n=config.samples_per_problem, temperature=config.temperature, top_p=config.top_p,
                           max_new_tokens=config.max_new_tokens or max_new_tokens, seed=config.seed,
                           stop=stop_strings(pair.prompt_style))
    outs = hf_generate(model, tok, prompts_for(problems, pair.prompt_style, tok), sampling,
                       request_ids=[str(p["id"]) for p in problems], batch_size=16, progress=progress)
    rollouts, texts, golds = [], [], []
    for p, samples in zip(problems, outs):
        for s in samples:
            seq = (s.prompt_ids + s.completion_ids)[:config.max_seq_len]
            if len(seq) > len(s.prompt_ids):
                rollouts.append({"id": p["id"], "prompt_ids": s.prompt_ids,
                                 "completion_ids": seq[len(s.prompt_ids):]})
            texts.append(s.text)
            golds.append(p)
    k = config.top_k_logits

    def topk(logits, _tgt):
        v, i = logits.topk(min(k, logits.shape[-1]), -1)
        return {"topk_logits": v, "topk_idx": i}

    cache = map_completion_logits(model, [r["prompt_ids"] + r["completion_ids"] for r in rollouts],
                                  [len(r["prompt_ids"]) for r in rollouts], topk, pad_id=tok.pad_token_id or 0)
    for r, c in zip(rollouts, cache):
        r.update(c)
    ok = verdicts(texts, golds, config.pool)
    summary = {"problems": len(problems), "rollouts": len(rollouts),
               "completion_tokens": sum(len(r["completion_ids"]) for r in rollouts),
               "teacher_pass_rate": sum(ok) / max(len(ok), 1), "top_k": k}
    res = {"rollouts": rollouts, "summary": summary}
    torch.save(res, Path(out_dir) / TEACHER_FILE)
    return res


def topk_kl(hidden, head, topk_idx, topk_logits, *, chunk_size: int = 256):
    """Top-k KL (module doc, step 3) at ``N`` positions.

    Args:
        hidden: ``[N, D]`` student hidden states at the positions predicting generated tokens.
        head: the student's ``lm_head`` (``[.., D] -> [.., V]``).
        topk_idx, topk_logits: ``[N, k]`` teacher token ids and logits.
    Returns:
        ``[N]`` float32 KL in nats (each chunk activation-checkpointed when grad is enabled).
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    def chunk(h, idx, tl):
        logq = torch.log_softmax(head(h).float(), -1).gather(-1, idx)
        logp = torch.log_softmax(tl.float(), -1)
        return (logp.exp() * (logp - logq)).sum(-1)

    parts = []
    for s in range(0, hidden.shape[0], chunk_size):
        args = (hidden[s:s + chunk_size], topk_idx[s:s + chunk_size], topk_logits[s:s + chunk_size])
        parts.append(checkpoint(chunk, *args, use_reentrant=False) if torch.is_grad_enabled() else chunk(*args))
    return torch.cat(parts) if parts else hidden.new_zeros(0)


def collate(items: Sequence[dict], pad_id: int = 0) -> dict:
    """Right-pad rollouts: ``input_ids``/``attention_mask`` ``[B, T]``, ``sel`` ``[B, T]`` (True at
    positions predicting a generated token), ``topk_idx``/``topk_logits`` ``[B, T, k]``."""
    import torch

    T = max(len(x["prompt_ids"]) + len(x["completion_ids"]) for x in items)
    k = items[0]["topk_idx"].shape[-1]
    B = len(items)
    out = {"input_ids": torch.full((B, T), pad_id, dtype=torch.long), "attention_mask": torch.zeros((B, T), dtype=torch.long),
           "sel": torch.zeros((B, T), dtype=torch.bool), "topk_idx": torch.zeros((B, T, k), dtype=torch.long),
           "topk_logits": torch.zeros((B, T, k), dtype=torch.float32)}
    for b, x in enumerate(items):
        P, C = len(x["prompt_ids"]), len(x["completion_ids"])
        out["input_ids"][b, :P + C] = torch.as_tensor(list(x["prompt_ids"]) + list(x["completion_ids"]))
        out["attention_mask"][b, :P + C] = 1
        out["sel"][b, P - 1:P + C - 1] = True
        out["topk_idx"][b, P - 1:P + C - 1] = x["topk_idx"]
        out["topk_logits"][b, P - 1:P + C - 1] = x["topk_logits"]
    return out


def batch_kl(model: Any, batch: dict) -> Any:
    """Per generated-token top-k KL ``[N]`` of ``model`` (a PeftModel uses its adapter) on a batch."""
    from rmxbench.method.entropy import hidden_states, output_head

    device = next(model.parameters()).device
    b = {k: v.to(device) for k, v in batch.items()}
    h = hidden_states(model, b["input_ids"], b["attention_mask"])
    return topk_kl(h[b["sel"]], output_head(model), b["topk_idx"][b["sel"]], b["topk_logits"][b["sel"]])


def mean_kl(model: Any, rollouts: Sequence[dict], pad_id: int, batch_size: int = 8) -> float:
    """Mean top-k KL over every generated token of ``rollouts`` (no grad), nats."""
    import torch

    tot, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(rollouts), batch_size):
            kl = batch_kl(model, collate(rollouts[s:s + batch_size], pad_id))
            tot, n = tot + float(kl.sum()), n + kl.numel()
    return tot / max(n, 1)


def train_variant(base_model: Any, rollouts: Sequence[dict], variant: LoraVariant, config: DistillationConfig, *,
                  pad_id: int, out_dir: Path) -> tuple[Any, dict]:
    """Train one LoRA student on the cached teacher top-k (module doc, step 3).

    ``base_model`` gets the LoRA layers in place (peft ``get_peft_model``); the adapter is saved to
    ``out_dir`` (``save_pretrained``). Returns ``(peft_model, log)``; call ``peft_model.unload()``
    to restore the base. ``log``: ``steps``, ``loss_history``, ``trainable_params``,
    ``param_share``, ``seconds``.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback, Trainer, TrainingArguments

    n_base = sum(p.numel() for p in base_model.parameters())
    torch.manual_seed(config.seed)
    model = get_peft_model(base_model, LoraConfig(
        r=variant.rank, lora_alpha=variant.alpha or 2 * variant.rank, lora_dropout=0.0,
        target_modules=list(variant.target_modules), bias="none", task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    class KLTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = batch_kl(model, inputs).mean()
            return (loss, None) if return_outputs else loss

    work = Path(out_dir) / "trainer_work"
    args = TrainingArguments(
        output_dir=str(work), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, num_train_epochs=config.epochs,
        learning_rate=config.learning_rate, weight_decay=config.weight_decay, warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear", logging_steps=1, save_strategy="no", report_to="none", seed=config.seed,
        data_seed=config.seed, use_cpu=not torch.cuda.is_available(), disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=0)
    t0 = time.perf_counter()
    trainer = KLTrainer(model=model, args=args, train_dataset=list(rollouts), data_collator=lambda b: collate(b, pad_id))
    trainer.remove_callback(PrinterCallback)  # the loss history goes into the result instead
    trainer.train()
    model.eval()
    model.save_pretrained(str(out_dir))
    shutil.rmtree(work, ignore_errors=True)
    hist = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return model, {"steps": trainer.state.global_step, "loss_history": hist, "trainable_params": trainable,
                   "param_share": trainable / n_base, "seconds": time.perf_counter() - t0}


def build(config: DistillationConfig, pair: Pair, pool: Sequence[dict], problems: Sequence[dict], *, task: str,
          max_new_tokens: int, out_dir: Path, models: tuple | None = None, progress=None) -> AnalysisResult:
    """Teacher cache, one student per grid variant, evaluation; writes ``result.json``, the
    teacher cache, one adapter folder per variant (``adapter_<i>/``) and ``recovered.png``.

    Args:
        pool: rows of ``config.pool`` (the rollout problems); ``problems``: test rows of ``task``.
        Others as :func:`rmxbench.analysis.reranking.build`.
    Raises:
        UserError: the tokenizers differ.
    """
    (base, btok), (other, otok) = models or (pair.base.load(), pair.other.load())
    check_same_tokenizer(btok, otok, pair)
    out_dir = Path(out_dir)
    teacher = build_teacher(config, pair, pool, max_new_tokens=max_new_tokens, out_dir=out_dir,
                            teacher=(other, otok), progress=progress)
    rollouts, pad = teacher["rollouts"], btok.pad_token_id or 0
    ev = dict(style=pair.prompt_style, task=task, max_new_tokens=max_new_tokens, batch_size=config.eval_batch_size,
              progress=progress)
    acc_base, acc_teacher = score(base, btok, problems, **ev), score(other, otok, problems, **ev)
    kl_before = mean_kl(base, rollouts, pad)
    gap = acc_teacher["accuracy"] - acc_base["accuracy"]
    variants = []
    for i, v in enumerate(config.variants):
        vdir = out_dir / f"adapter_{i}"
        vdir.mkdir()
        student, log = train_variant(base, rollouts, v, config, pad_id=pad, out_dir=vdir)
        try:
            acc = score(student, btok, problems, **ev)
            kl_after = mean_kl(student, rollouts, pad)
        finally:
            student.unload()
            base.eval()
        variants.append({"name": v.name, "rank": v.rank, "alpha": v.alpha or 2 * v.rank,
                         "target_modules": list(v.target_modules), "adapter": vdir.name, **log,
                         "accuracy": acc["accuracy"], "stderr": acc["stderr"], "per_problem": acc["per_problem"],
                         "recovered": (acc["accuracy"] - acc_base["accuracy"]) / gap if gap else None,
                         "kl_before": kl_before, "kl_after": kl_after})
    data = {"base": acc_base, "teacher": acc_teacher, "variants": variants, "teacher_rollouts": teacher["summary"]}
    result = AnalysisResult(ANALYSIS, "KL-LoRA distillation (paper §4, App. A)", pair.describe(), task, len(problems),
                            {**config.model_dump(mode="json"), "max_new_tokens": config.max_new_tokens or max_new_tokens},
                            data)
    result.figures = [figure(result, pair.title, out_dir)]
    write_result(result, out_dir)
    return result


def figure(result: AnalysisResult, title: str, out_dir: Path):
    """Bars: accuracy of base, every student (labelled with its parameter share) and the teacher."""
    d, s = result.data, result.settings
    names = ["base", *[v["name"] for v in d["variants"]], "other (teacher)"]
    accs = [d["base"]["accuracy"], *[v["accuracy"] for v in d["variants"]], d["teacher"]["accuracy"]]
    errs = [d["base"]["stderr"], *[v["stderr"] for v in d["variants"]], d["teacher"]["stderr"]]
    fig, ax = new_figure(1.2 * len(names) + 2, 3.6)
    colors = ["#c8b88a", *["#b22222"] * len(d["variants"]), "#555555"]
    ax.bar(range(len(names)), accs, yerr=errs, color=colors, capsize=3)
    for i, v in enumerate(d["variants"], start=1):
        ax.text(i, 0.02, f"{100 * v['param_share']:.2f}%", ha="center", va="bottom", fontsize=7, color="white")
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylabel(f"greedy pass@1 on {result.task}")
    tr = d["teacher_rollouts"]
    return save_figure(fig, out_dir, "recovered.png",
                       f"KL-LoRA students vs base and teacher: {title}; task {result.task}, n = {result.n}. Students "
                       f"trained on the teacher's top-{s['top_k_logits']} logits over {tr['rollouts']} rollouts of "
                       f"{tr['problems']} {s['pool']} problems (T {s['temperature']:g}, top-p {s['top_p']:g}, seed "
                       f"{s['seed']}), {s['epochs']:g} epochs, batch {s['batch_size']} x {s['gradient_accumulation_steps']}, "
                       f"lr {s['learning_rate']:g}, weight decay {s['weight_decay']:g}. Labels: adapter parameters as "
                       f"a share of the base's. Error bars: binomial s.e.")


def tables(result: AnalysisResult, pair_title: str) -> list[tuple[list[str], list[list[str]]]]:
    """One row per student plus base and teacher: accuracy, recovered share of the gap, KL, size."""
    d = result.data

    def acc(x):
        return f"{x['accuracy']:.3f} ± {x['stderr']:.3f}"

    rows = [["base", acc(d["base"]), "0%", "–", "–", "–"]]
    for v in d["variants"]:
        rec = "–" if v["recovered"] is None else f"{100 * v['recovered']:.0f}%"
        rows.append([v["name"], acc(v), rec, f"{v['kl_before']:.4f} → {v['kl_after']:.4f}",
                     f"{v['trainable_params']:,} ({100 * v['param_share']:.2f}%)", str(v["steps"])])
    rows.append(["other (teacher)", acc(d["teacher"]), "100%", "–", "–", "–"])
    return [(["model", "pass@1", "gap recovered", "train KL before → after (nats)",
              "adapter params", "optimizer steps"], rows)]

