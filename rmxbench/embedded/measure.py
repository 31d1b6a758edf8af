"""Measurements of the embedded tiny model on tinymath: sampled/greedy pass@1 and token entropy.

Used by ``scripts/make_tiny.py`` (printed and written into the model card) and by
``tests/test_embedded.py``. Grading here is integer-exact on the last complete ``\\boxed{}``
(the tinymath answers are non-negative integers), independent of :mod:`rmxbench.evaluation.grading`.

Entropy is the paper's Eq. 2 token entropy H_t = -sum_v p(v|x_<t) log p(v|x_<t) in nats, computed
teacher-forced on the model's own sampled completions; the *plan token* is the completion token
right after ``" Plan:"`` — the decision point of tinymath (paper §5.2).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from .tinymath import prompt_text

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def boxed_answer(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` in ``text``, stripped, or None."""
    found = _BOXED.findall(text)
    return found[-1].strip() if found else None


def is_correct(text: str, gold: str) -> bool:
    """Integer-exact check of the last ``\\boxed{}`` against ``gold`` (an integer string)."""
    got = boxed_answer(text)
    if got is None:
        return False
    try:
        return int(got) == int(gold)
    except ValueError:
        return False


@dataclass
class Rollouts:
    """Sampled completions for a list of problems.

    Attributes:
        prompt_ids: per problem, prompt token ids (list[int], length P_i).
        completion_ids: per problem, K lists of completion token ids (EOS included when emitted,
            padding stripped).
        texts: per problem, K decoded completions (special tokens skipped).
        has_eos: per problem, K flags: the completion ended with EOS within the token cap.
        correct: per problem, K integer-exact verdicts.
    """

    prompt_ids: list[list[int]] = field(default_factory=list)
    completion_ids: list[list[list[int]]] = field(default_factory=list)
    texts: list[list[str]] = field(default_factory=list)
    has_eos: list[list[bool]] = field(default_factory=list)
    correct: list[list[bool]] = field(default_factory=list)


@torch.no_grad()
def sample(model, tokenizer, rows: list[dict], *, k: int, do_sample: bool = True, temperature: float = 1.0,
           max_new_tokens: int = 64, batch_size: int = 256, seed: int = 0) -> Rollouts:
    """Generate ``k`` completions per row (``rows`` need ``problem`` and ``answer``).

    Sampling is pure temperature sampling (top_p=1.0, top_k=0, passed explicitly so the saved
    generation_config cannot change it); ``do_sample=False`` gives greedy decoding (use ``k=1``).
    """
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out = Rollouts()
    flat = [(i, prompt_text(r["problem"])) for i, r in enumerate(rows) for _ in range(k)]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    texts_flat: list[tuple[list[int], list[int], str, bool]] = []
    try:
        for start in range(0, len(flat), batch_size):
            chunk = [p for _, p in flat[start:start + batch_size]]
            enc = tokenizer(chunk, return_tensors="pt", padding=True)
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            kwargs = dict(do_sample=True, temperature=temperature, top_p=1.0, top_k=0) if do_sample else \
                dict(do_sample=False, temperature=None, top_p=None, top_k=None)
            seqs = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=eos,
                                  **kwargs)
            width = enc["input_ids"].shape[1]
            for j in range(seqs.shape[0]):
                p_ids = enc["input_ids"][j][enc["attention_mask"][j].bool()].tolist()
                c = seqs[j, width:].tolist()
                ended = eos in c
                c = c[: c.index(eos) + 1] if ended else c
                texts_flat.append((p_ids, c, tokenizer.decode(c, skip_special_tokens=True), ended))
    finally:
        tokenizer.padding_side = old_side
    for i, r in enumerate(rows):
        block = texts_flat[i * k:(i + 1) * k]
        out.prompt_ids.append(block[0][0])
        out.completion_ids.append([b[1] for b in block])
        out.texts.append([b[2] for b in block])
        out.has_eos.append([b[3] for b in block])
        out.correct.append([is_correct(b[2], r["answer"]) for b in block])
    return out


@torch.no_grad()
def completion_entropies(model, tokenizer, rollouts: Rollouts, *, batch_size: int = 256) -> tuple[list[float], list[float]]:
    """Teacher-forced per-token entropy (nats) of ``model`` on the sampled completions.

    Returns:
        ``(plan, other)``: entropies at the plan token (one per completion that starts with
        ``" Plan:"``) and at every other completion token (EOS included).
    """
    marker = tokenizer(" Plan:", add_special_tokens=False)["input_ids"]
    items = [(p, c) for p, cs in zip(rollouts.prompt_ids, rollouts.completion_ids) for c in cs if c]
    plan_h: list[float] = []
    other_h: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        seqs = [p + c for p, c in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for j, s in enumerate(seqs):  # right padding: positions stay 0..L-1
            ids[j, :len(s)] = torch.tensor(s)
            mask[j, :len(s)] = 1
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits, dim=-1)
        ent = -(logp.exp() * logp).sum(-1)  # [B, T] entropy of the next-token distribution, nats
        for j, (p, c) in enumerate(chunk):
            # token c[t] is predicted at position len(p) + t - 1
            h = ent[j, len(p) - 1:len(p) - 1 + len(c)].tolist()
            plan_at = len(marker) if c[:len(marker)] == marker and len(c) > len(marker) else None
            for t, v in enumerate(h):
                (plan_h if t == plan_at else other_h).append(v)
    return plan_h, other_h


def summarize(rows: list[dict], sampled: Rollouts, *, greedy: Rollouts | None = None,
              plan_h: list[float] | None = None, other_h: list[float] | None = None, tau: float = 0.3) -> dict:
    """Aggregate statistics (all floats; pass@1 standard error is over problems)."""
    per_problem = [sum(c) / len(c) for c in sampled.correct]
    n = len(per_problem)
    mean = sum(per_problem) / n
    var = sum((x - mean) ** 2 for x in per_problem) / max(n - 1, 1)
    flat_eos = [e for es in sampled.has_eos for e in es]
    flat_txt = [t for ts in sampled.texts for t in ts]
    malformed = sum((not e) or boxed_answer(t) is None for e, t in zip(flat_eos, flat_txt))
    mixed = sum(0 < x < 1 for x in per_problem)
    stats = {
        "problems": n,
        "k": len(sampled.correct[0]),
        "sampled_pass@1": mean,
        "sampled_pass@1_se": math.sqrt(var / n),
        "mixed_success_share": mixed / n,
        "malformed_share": malformed / len(flat_txt),
        "plan_follow_share": sum(t.startswith(" Plan: follow") for t in flat_txt) / len(flat_txt),
        "mean_completion_tokens": sum(len(c) for cs in sampled.completion_ids for c in cs) / len(flat_txt),
    }
    sub = [x for x, r in zip(per_problem, rows) if r.get("has_subtraction")]
    nosub = [x for x, r in zip(per_problem, rows) if not r.get("has_subtraction")]
    if sub:
        stats["sampled_pass@1_with_subtraction"] = sum(sub) / len(sub)
    if nosub:
        stats["sampled_pass@1_without_subtraction"] = sum(nosub) / len(nosub)
    if greedy is not None:
        stats["greedy_pass@1"] = sum(c[0] for c in greedy.correct) / len(greedy.correct)
    if plan_h is not None and other_h is not None:
        allh = plan_h + other_h
        stats["plan_token_entropy_nats"] = sum(plan_h) / max(len(plan_h), 1)
        stats["other_token_entropy_nats"] = sum(other_h) / max(len(other_h), 1)
        stats["tau"] = tau
        stats["share_tokens_above_tau"] = sum(h > tau for h in allh) / max(len(allh), 1)
        above = sum(h > tau for h in allh)
        stats["plan_share_of_tokens_above_tau"] = sum(h > tau for h in plan_h) / max(above, 1)
    return stats
