"""Token interventions: the base decodes greedily in lockstep with the other model, and at chosen
positions the other model's token is substituted (paper §3.2-3.3, Fig. 2).

Both models keep their own KV cache and see the same prefix at every step (the prefix that was
actually emitted). At completion step t the base's argmax ``b_t``, the other's argmax ``o_t`` and
the base's entropy ``H_t`` (nats) are computed, and the emitted token is:

- ``base`` — ``b_t`` everywhere (zero substitutions: the base's own greedy output);
- ``other`` — ``o_t`` everywhere (the other model's own greedy output; the reference line);
- ``oracle`` (§3.2) — ``o_t`` wherever ``o_t ≠ b_t``, else ``b_t``. The emitted sequence is then
  the other model's greedy output token for token, reached by touching only the divergent tokens;
- ``entropy τ`` (§3.3) — ``o_t`` wherever ``H_t > τ`` (no knowledge of where the models disagree);
- ``random`` (§3.2 control) — at as many positions as the oracle substituted *for that problem*,
  drawn uniformly from the positions of the base's own greedy completion, a uniformly drawn
  alternative from the base's top-``random_top_k`` (§3.2: top-20) other than ``b_t``. Seeded per
  problem, so results do not depend on batching.

Each condition reports greedy pass@1 (graded by :func:`rmxbench.evaluation.grading.grade`), the fraction of
completion tokens *substituted* (emitted token ≠ ``b_t``) and, for gated conditions, the fraction
*touched* (positions where the rule fired, whether or not the token changed; §3.3's
"touching only 1.2-8.3% of tokens").

``result.json`` ``data``: ``conditions`` (list of ``name``, ``kind``, ``tau``, ``accuracy``,
``stderr``, ``n``, ``substituted_frac``, ``touched_frac``, ``tokens``), ``oracle_matches_other``
(share of problems whose oracle completion equals the other's token for token), ``per_problem``
(condition -> id -> verdict).
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rmxbench.spec.analyses import InterventionConfig
from rmxbench.analysis.common import (AnalysisResult, Pair, accuracy_summary, check_same_tokenizer, new_figure,
                                      prompts_for, save_figure, stop_strings, verdicts, write_result)

ANALYSIS = "interventions"
KINDS = ("base", "other", "oracle", "entropy", "random")


@dataclass
class Decoded:
    """One lockstep completion: ids (truncated like the HF session's (:func:`~rmxbench.backends.hf_session.hf_generate`)),
    text, finish reason, and per completion token whether it was substituted / touched."""

    completion_ids: list[int]
    text: str
    finish_reason: str
    substituted: list[bool]
    touched: list[bool]


def _eos_ids(tok: Any, model: Any) -> set[int]:
    ids = {int(tok.eos_token_id)} if tok.eos_token_id is not None else set()
    cfg = getattr(getattr(model, "config", None), "eos_token_id", None)
    ids.update([cfg] if isinstance(cfg, int) else list(cfg or []))
    return ids


class _Stepper:
    """Incremental greedy forward of one model over a left-padded batch, with its own KV cache."""

    def __init__(self, model: Any, ids, mask):
        self.model, self.mask, self.past = model, mask, None
        self.pos = (mask.cumsum(-1) - 1).clamp(min=0)
        self.logits = self._forward(ids, self.pos)

    def _forward(self, ids, pos):
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=pos, past_key_values=self.past,
                         use_cache=True, logits_to_keep=1)
        self.past = out.past_key_values
        return out.logits[:, -1].float()

    def step(self, next_ids):
        import torch

        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], 1)
        self.pos = self.pos[:, -1:] + 1
        self.logits = self._forward(next_ids[:, None], self.pos)


def lockstep_decode(base: Any, other: Any, tok: Any, prompts: Sequence[str], *, kind: str, style: str,
                    max_new_tokens: int, tau: float | None = None, random_plan: Sequence[dict] | None = None,
                    random_top_k: int = 20, batch_size: int = 16, progress=None) -> list[Decoded]:
    """Greedy decoding of ``base`` with substitutions from ``other`` (see the module doc).

    Args:
        base, other: causal LMs on one device sharing ``tok``'s vocabulary (``other`` unused for
            ``base``/``random``; ``base`` unused for ``other``).
        prompts: prompt texts; stop strings of ``style`` end a completion as in generation.
        kind: one of :data:`KINDS`.
        tau: entropy threshold in nats (``entropy`` only).
        random_plan: per prompt ``{position: alternative index in 1..random_top_k-1}`` (``random`` only).
    Returns:
        one :class:`Decoded` per prompt.
    """
    import torch

    from rmxbench.backends.generation import truncate_at_stop
    from rmxbench.backends.tokenization import batch_prompt_ids

    if kind not in KINDS:
        raise ValueError(f"unknown intervention {kind!r}; known: {KINDS}")
    stops = stop_strings(style)
    eos = _eos_ids(tok, base)
    pad = tok.pad_token_id if tok.pad_token_id is not None else min(eos)
    tok.padding_side = "left"
    use_base, use_other = kind != "other", kind in ("other", "oracle", "entropy")
    device = next(base.parameters()).device
    out: list[Decoded] = []
    for s in range(0, len(prompts), batch_size):
        enc = tok.pad({"input_ids": batch_prompt_ids(tok, list(prompts[s:s + batch_size]))}, padding=True,
                      return_tensors="pt")  # the tokenization contract, as in hf_generate
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        B = ids.shape[0]
        with torch.no_grad():
            mb = _Stepper(base, ids, mask) if use_base else None
            mo = _Stepper(other, ids, mask) if use_other else None
            gen = torch.zeros((B, 0), dtype=torch.long, device=device)
            sub = torch.zeros((B, 0), dtype=torch.bool, device=device)
            tch = torch.zeros((B, 0), dtype=torch.bool, device=device)
            done = torch.zeros(B, dtype=torch.bool, device=device)
            for t in range(max_new_tokens):
                o_arg = mo.logits.argmax(-1) if mo else None
                if mb is None:
                    b_arg, touched = o_arg, torch.zeros_like(done)
                else:
                    b_arg = mb.logits.argmax(-1)
                    if kind == "base":
                        touched = torch.zeros_like(done)
                    elif kind == "oracle":
                        touched = o_arg != b_arg
                    elif kind == "entropy":
                        logp = torch.log_softmax(mb.logits, -1)
                        touched = -(logp.exp() * logp).sum(-1) > tau
                    else:  # random
                        touched = torch.tensor([t in random_plan[s + r] for r in range(B)], device=device)
                nxt = b_arg.clone()
                if kind == "random":
                    top = mb.logits.topk(random_top_k, -1).indices if bool(touched.any()) else None
                    for r in torch.nonzero(touched).flatten().tolist():
                        nxt[r] = top[r, random_plan[s + r][t]]
                elif kind != "base":
                    nxt = torch.where(touched, o_arg, b_arg) if mb is not None else o_arg
                nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
                gen = torch.cat([gen, nxt[:, None]], 1)
                sub = torch.cat([sub, (nxt != b_arg)[:, None] & ~done[:, None]], 1)
                tch = torch.cat([tch, touched[:, None] & ~done[:, None]], 1)
                done |= torch.tensor([int(x) in eos for x in nxt.tolist()], device=device)
                if stops:
                    tails = tok.batch_decode(gen[:, -16:], skip_special_tokens=True)
                    done |= torch.tensor([any(x in tl for x in stops) for tl in tails], device=device)
                if bool(done.all()) or t == max_new_tokens - 1:
                    break
                for m in (mb, mo):
                    if m is not None:
                        m.step(nxt)
        for r in range(B):
            c_ids, reason = truncate_at_stop(gen[r].tolist(), eos, pad, tok, stops)
            n = len(c_ids)
            out.append(Decoded(c_ids, tok.decode(c_ids, skip_special_tokens=True), reason,
                               sub[r, :n].tolist(), tch[r, :n].tolist()))
        if progress is not None:
            progress(B)
    return out


def random_plan(counts: Sequence[int], lengths: Sequence[int], *, top_k: int, seed: int) -> list[dict]:
    """Per problem ``{position: alternative index}``: ``counts[i]`` distinct positions in
    ``range(lengths[i])`` and for each an index in ``1..top_k-1`` of the base's top-k (never its
    argmax), seeded with ``seed`` and the problem's index."""
    plans = []
    for i, (k, n) in enumerate(zip(counts, lengths)):
        rng = _random.Random(seed * 1_000_003 + i)
        pos = rng.sample(range(n), min(k, n)) if n else []
        plans.append({p: rng.randrange(1, top_k) for p in sorted(pos)})
    return plans


def _summary(name: str, kind: str, tau: float | None, dec: Sequence[Decoded], ok: Sequence[bool]) -> dict:
    n_tok = sum(len(d.completion_ids) for d in dec)
    return {"name": name, "kind": kind, "tau": tau, **accuracy_summary(ok), "tokens": n_tok,
            "substituted_frac": sum(sum(d.substituted) for d in dec) / max(n_tok, 1),
            "touched_frac": sum(sum(d.touched) for d in dec) / max(n_tok, 1)}


def build(config: InterventionConfig, pair: Pair, problems: Sequence[dict], *, task: str, max_new_tokens: int,
          out_dir: Path, models: tuple | None = None, progress=None) -> AnalysisResult:
    """Run every condition (base, other, oracle, entropy τ for each τ, random) and write
    ``result.json`` + ``accuracy_vs_substituted.png`` into ``out_dir``.

    Args as :func:`rmxbench.analysis.reranking.build`; ``progress`` counts problems per condition.
    Raises:
        UserError: the tokenizers differ.
    """
    (base, btok), (other, otok) = models or (pair.base.load(), pair.other.load())
    check_same_tokenizer(btok, otok, pair)
    mnt = config.max_new_tokens or max_new_tokens
    prompts = prompts_for(problems, pair.prompt_style, btok)
    kw = dict(style=pair.prompt_style, max_new_tokens=mnt, batch_size=config.batch_size, progress=progress)
    runs: dict[str, tuple[str, float | None, list[Decoded]]] = {}
    for kind in ("base", "other", "oracle"):
        runs[kind] = (kind, None, lockstep_decode(base, other, btok, prompts, kind=kind, **kw))
    for tau in config.taus:
        runs[f"entropy τ={tau:g}"] = ("entropy", tau, lockstep_decode(base, other, btok, prompts, kind="entropy",
                                                                       tau=tau, **kw))
    plan = random_plan([sum(d.substituted) for d in runs["oracle"][2]],
                       [len(d.completion_ids) for d in runs["base"][2]], top_k=config.random_top_k, seed=config.seed)
    runs["random"] = ("random", None, lockstep_decode(base, other, btok, prompts, kind="random", random_plan=plan,
                                                      random_top_k=config.random_top_k, **kw))
    conditions, per_problem = [], {}
    for name, (kind, tau, dec) in runs.items():
        ok = verdicts([d.text for d in dec], problems, task)
        conditions.append(_summary(name, kind, tau, dec, ok))
        per_problem[name] = {str(p["id"]): v for p, v in zip(problems, ok)}
    same = [a.completion_ids == b.completion_ids for a, b in zip(runs["oracle"][2], runs["other"][2])]
    data = {"conditions": conditions, "oracle_matches_other": sum(same) / max(len(same), 1),
            "per_problem": per_problem}
    result = AnalysisResult(ANALYSIS, "Token interventions (paper §3.2-3.3, Fig. 2)", pair.describe(), task,
                            len(problems), {**config.model_dump(mode="json"), "max_new_tokens": mnt}, data)
    result.figures = [figure(result, pair.title, out_dir)]
    write_result(result, out_dir)
    return result


def figure(result: AnalysisResult, title: str, out_dir: Path):
    """Accuracy vs fraction of completion tokens substituted, one marker per condition."""
    conds = {c["name"]: c for c in result.data["conditions"]}
    fig, ax = new_figure(6.0, 3.8)
    ax.axhline(conds["other"]["accuracy"], ls="--", color="#555", lw=1, label=f"other ({conds['other']['accuracy']:.3f})")
    ax.axhline(conds["base"]["accuracy"], ls=":", color="#999", lw=1, label=f"base ({conds['base']['accuracy']:.3f})")
    ent = [c for c in result.data["conditions"] if c["kind"] == "entropy"]
    ax.plot([c["substituted_frac"] * 100 for c in ent], [c["accuracy"] for c in ent], "o-", color="#1f4e9c",
            label="entropy-gated")
    for c in ent:
        ax.annotate(f"τ={c['tau']:g}", (c["substituted_frac"] * 100, c["accuracy"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    for name, color, marker in (("oracle", "#b22222", "s"), ("random", "#c8a060", "^")):
        c = conds[name]
        ax.errorbar([c["substituted_frac"] * 100], [c["accuracy"]], yerr=[c["stderr"]], fmt=marker, color=color,
                    label=name, capsize=3)
    ax.set_xlabel("completion tokens substituted (%)")
    ax.set_ylabel(f"greedy pass@1 on {result.task}")
    ax.legend(fontsize=7, loc="best")
    taus = ", ".join(f"{t:g}" for t in result.settings["taus"])
    return save_figure(fig, out_dir, "accuracy_vs_substituted.png",
                       f"Accuracy vs share of tokens substituted: {title}; task {result.task}, n = {result.n}, "
                       f"greedy (max {result.settings['max_new_tokens']} tokens); oracle = the other's token where "
                       f"the models disagree, entropy-gated at τ ∈ {{{taus}}} nats, random = an alternative from the "
                       f"base's top-{result.settings['random_top_k']} at as many random positions as the oracle "
                       f"(seed {result.settings['seed']}). Error bars: binomial s.e.")


def tables(result: AnalysisResult, pair_title: str) -> list[tuple[list[str], list[list[str]]]]:
    """One row per condition: accuracy ± s.e., substituted and touched shares."""
    rows = [[c["name"], f"{c['accuracy']:.3f} ± {c['stderr']:.3f}", f"{100 * c['substituted_frac']:.2f}%",
             f"{100 * c['touched_frac']:.2f}%" if c["kind"] in ("entropy", "oracle", "random") else "–",
             str(c["tokens"])] for c in result.data["conditions"]]
    return [(["condition", "pass@1", "tokens substituted", "tokens touched", "completion tokens"],
             rows)]
