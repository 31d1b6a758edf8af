"""Token-level reranking statistics of an (base, other) pair (paper §3.1, Eq. 3, Table 2, Fig. 1).

The other model (an RL checkpoint, or a ReasonMaxxer adapter) decodes every test problem greedily
(T = 0, §3); the base is teacher-forced on prompt + those completion tokens in one batched
forward. At every completion token ``x_t`` (the other model's greedy choice, i.e. its argmax):

- *agreeing* (paper: unshifted): the base's argmax equals ``x_t``;
- *divergent*: it does not. A divergent token is *reranked* when ``x_t`` is in the base's
  top-``k`` (Eq. 3: k = 5) and *shifted* otherwise;
- its *rank* under the base is ``1 + #{v : logit_base(v) > logit_base(x_t)}`` (1 = the base's
  argmax; a divergent token has rank ≥ 2 except under exact ties), bucketed 1 / 2 / 3-5 / > 5;
- the base's entropy ``H_t`` (nats, :mod:`rmxbench.method.entropy`'s definition) at divergent vs
  agreeing tokens, and their ratio (Table 2: reranked positions have 5-12x the base entropy of
  unchanged ones).

The paper's §3.1 text rolls out the base and asks the teacher at each prefix; the issue this
module implements rolls out the other model and asks the base. On the other's greedy trajectory
the divergent tokens are exactly the tokens the oracle intervention substitutes (§3.2: "the
fraction of tokens touched by the oracle equals the rerank percentages"), which is why this
trajectory is used.

Cost: one greedy generation of the other model + one teacher-forced base forward (the lm_head is
applied to completion positions only, ``chunk_size`` at a time, as in :mod:`rmxbench.method.entropy`);
``benchmarks/bench_reranking.py`` measures the overhead.

``result.json`` ``data`` layout: ``table2`` (one row: tokens, divergent/reranked/shifted
fractions, mean rank, mean entropies, ratio), ``rank_buckets`` (bucket -> count),
``other_accuracy``, ``completions_with_divergence``, ``entropy_hist`` (bin edges + counts per
class), ``seconds`` (generation, teacher_forced, statistics).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from rmxbench.spec.analyses import RerankingConfig
from rmxbench.analysis.common import (AnalysisResult, Pair, check_same_tokenizer, greedy_samples,
                                      map_completion_logits, new_figure, prompts_for, save_figure, verdicts,
                                      write_result)

ANALYSIS = "reranking"
BUCKETS = ("1", "2", "3-5", ">5")


def teacher_forced_stats(model: Any, sequences: Sequence[Sequence[int]], starts: Sequence[int], *,
                         chunk_size: int = 256, batch_size: int = 16, pad_id: int = 0,
                         progress=None) -> list[dict]:
    """Base statistics at every completion token of teacher-forced ``sequences``.

    Args:
        model: the scoring model (for a PeftModel the active adapter is used).
        sequences: prompt + completion token ids per sequence (unpadded).
        starts: index of the first completion token in each sequence (the prompt length).
        chunk_size: completion positions sent through ``lm_head`` at once.
    Returns:
        per sequence ``{"argmax", "rank", "entropy"}``: tensors ``[C]`` (C = completion length)
        — the model's argmax, the rank of the actual token (1 = argmax; strictly larger logits
        + 1), and the entropy in nats of ``p(· | x_<t)`` for completion token t.
    """
    import torch

    def stats(logits, tgt):
        logp = torch.log_softmax(logits, -1)
        return {"argmax": logits.argmax(-1), "rank": (logits > logits.gather(-1, tgt[:, None])).sum(-1) + 1,
                "entropy": -(logp.exp() * logp).sum(-1)}

    return map_completion_logits(model, sequences, starts, stats, chunk_size=chunk_size, batch_size=batch_size,
                                 pad_id=pad_id, progress=progress)


def divergence_stats(stats: Sequence[dict], completions: Sequence[Sequence[int]], *, top_k: int) -> dict:
    """Table-2 numbers from :func:`teacher_forced_stats` on the other model's completions.

    Returns:
        ``table2`` (``tokens``, ``divergent``, ``divergent_frac``, ``reranked_frac``,
        ``shifted_frac``, ``mean_rank_divergent`` (None without divergent tokens),
        ``entropy_divergent``, ``entropy_agreeing`` (mean nats, None if empty), ``entropy_ratio``),
        ``rank_buckets``, ``completions_with_divergence``, ``entropy_hist``.
    """
    import torch

    if not stats:
        raise ValueError("no completions to analyse")
    tokens = torch.cat([torch.as_tensor(list(c), dtype=torch.long) for c in completions])
    argmax = torch.cat([s["argmax"] for s in stats])
    rank = torch.cat([s["rank"] for s in stats])
    ent = torch.cat([s["entropy"] for s in stats]).float()
    div = argmax != tokens
    n, nd = int(tokens.numel()), int(div.sum())
    reranked = div & (rank <= top_k)
    shifted = div & (rank > top_k)
    r = rank[div]
    buckets = {"1": int((r == 1).sum()), "2": int((r == 2).sum()), "3-5": int(((r >= 3) & (r <= 5)).sum()),
               ">5": int((r > 5).sum())}
    hd = float(ent[div].mean()) if nd else None
    ha = float(ent[~div].mean()) if nd < n else None
    edges = torch.linspace(0, max(float(ent.max()) if n else 1.0, 1e-3), 31)
    hist = {"edges": edges.tolist(),
            "divergent": torch.histogram(ent[div], bins=edges).hist.int().tolist() if nd else [0] * 30,
            "agreeing": torch.histogram(ent[~div], bins=edges).hist.int().tolist() if nd < n else [0] * 30}
    per_seq = [int((s["argmax"] != torch.as_tensor(list(c), dtype=torch.long)).sum())
               for s, c in zip(stats, completions)]
    return {
        "table2": {"tokens": n, "divergent": nd, "divergent_frac": nd / max(n, 1),
                   "reranked_frac": int(reranked.sum()) / max(n, 1), "shifted_frac": int(shifted.sum()) / max(n, 1),
                   "mean_rank_divergent": float(r.float().mean()) if nd else None,
                   "entropy_divergent": hd, "entropy_agreeing": ha,
                   "entropy_ratio": hd / ha if hd is not None and ha else None, "top_k": top_k},
        "rank_buckets": buckets,
        "completions_with_divergence": sum(x > 0 for x in per_seq) / max(len(per_seq), 1),
        "divergent_per_completion": per_seq,
        "entropy_hist": hist,
    }


def build(config: RerankingConfig, pair: Pair, problems: Sequence[dict], *, task: str, max_new_tokens: int,
          out_dir: Path, models: tuple | None = None, progress=None) -> AnalysisResult:
    """Run the reranking analysis and write ``result.json`` + figures into ``out_dir``.

    Args:
        config: :class:`RerankingConfig`.
        pair: the (base, other) pair.
        problems: test rows (``id``, ``problem``, ``answer``).
        task: grading task name.
        max_new_tokens: completion cap (``config.max_new_tokens`` or the protocol's).
        out_dir: an existing folder (the store's temp folder: atomic publication is the store's).
        models: optional already loaded ``((base, tok), (other, tok))``.
        progress: optional ``advance(n)`` callback (counts problems, twice: generate + score).
    Returns:
        the :class:`~rmxbench.analysis.common.AnalysisResult` written.
    Raises:
        UserError: the two models' tokenizers differ; models cannot be loaded.
    """
    (base, btok), (other, otok) = models or (pair.base.load(), pair.other.load())
    check_same_tokenizer(btok, otok, pair)
    mnt = config.max_new_tokens or max_new_tokens
    prompts = prompts_for(problems, pair.prompt_style, otok)
    t0 = time.perf_counter()
    samples = greedy_samples(other, otok, prompts, style=pair.prompt_style, max_new_tokens=mnt,
                             batch_size=config.batch_size, progress=progress)
    t1 = time.perf_counter()
    stats = teacher_forced_stats(base, [s.prompt_ids + s.completion_ids for s in samples],
                                 [len(s.prompt_ids) for s in samples], chunk_size=config.chunk_size,
                                 batch_size=config.batch_size, pad_id=btok.pad_token_id or 0, progress=progress)
    t2 = time.perf_counter()
    data = divergence_stats(stats, [s.completion_ids for s in samples], top_k=config.top_k)
    ok = verdicts([s.text for s in samples], problems, task)
    data["other_accuracy"] = sum(ok) / max(len(ok), 1)
    data["seconds"] = {"generation": t1 - t0, "teacher_forced": t2 - t1, "statistics": time.perf_counter() - t2}
    result = AnalysisResult(ANALYSIS, "Token reranking (paper §3.1, Table 2)", pair.describe(), task, len(problems),
                            {**config.model_dump(mode="json"), "max_new_tokens": mnt}, data)
    result.figures = figures(result, pair.title, out_dir)
    write_result(result, out_dir)
    return result


def figures(result: AnalysisResult, title: str, out_dir: Path) -> list:
    """Rank histogram and entropy distributions (PNG) for ``result``."""
    d, t2 = result.data, result.data["table2"]
    setting = (f"{title}; task {result.task}, n = {result.n} problems, {t2['tokens']} completion tokens of the "
               f"other model's greedy decoding (max {result.settings['max_new_tokens']} tokens)")
    fig, ax = new_figure(5.0, 3.2)
    counts = [d["rank_buckets"][b] for b in BUCKETS]
    ax.bar(BUCKETS, counts, color="#b22222")
    for i, c in enumerate(counts):
        ax.text(i, c, f"{c}", ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("rank of the other model's token under the base")
    ax.set_ylabel("divergent tokens")
    f1 = save_figure(fig, out_dir, "rank_histogram.png",
                     f"Rank under the base of the other model's token at the {t2['divergent']} divergent tokens "
                     f"(base argmax ≠ other's token; rank > {t2['top_k']} = shifted). {setting}.")
    fig, ax = new_figure(5.6, 3.2)
    h = d["entropy_hist"]
    edges = h["edges"]
    width = edges[1] - edges[0]
    for key, color in (("agreeing", "#c8b88a"), ("divergent", "#b22222")):
        tot = max(sum(h[key]), 1)
        ax.bar(edges[:-1], [c / tot for c in h[key]], width=width, align="edge", alpha=0.6, color=color,
               label=f"{key} ({sum(h[key])})")
    ax.set_yscale("log")
    ax.set_xlabel("base entropy H_t (nats)")
    ax.set_ylabel("share of tokens")
    ax.legend(fontsize=8)
    ratio = t2["entropy_ratio"]
    f2 = save_figure(fig, out_dir, "entropy_distributions.png",
                     "Base entropy at divergent vs agreeing tokens"
                     + (f" (mean ratio {ratio:.1f}x)" if ratio is not None else "") + f". {setting}.")
    return [f1, f2]


def tables(result: AnalysisResult, pair_title: str) -> list[tuple[list[str], list[list[str]]]]:
    """Table-2 layout: one row per pair (header, rows) for the board renderers."""
    t = result.data["table2"]

    def pct(x):
        return "–" if x is None else f"{100 * x:.2f}%"

    def num(x, f="{:.3f}"):
        return "–" if x is None else f.format(x)

    header = ["pair", "tokens", "base argmax agrees", "divergent", f"reranked (top-{t['top_k']})", "shifted",
              "mean rank", "H divergent (nats)", "H agreeing (nats)", "entropy ratio", "other's accuracy"]
    row = [pair_title, str(t["tokens"]), pct(1 - t["divergent_frac"]), pct(t["divergent_frac"]),
           pct(t["reranked_frac"]), pct(t["shifted_frac"]),
           num(t["mean_rank_divergent"], "{:.2f}"), num(t["entropy_divergent"]), num(t["entropy_agreeing"]),
           num(t["entropy_ratio"], "{:.1f}x"), f"{result.data['other_accuracy']:.3f}"]
    buckets = result.data["rank_buckets"]
    nd = max(t["divergent"], 1)
    return [(header, [row]),
            (["rank of the other's token", *BUCKETS], [["divergent tokens", *(f"{buckets[b]} ({100 * buckets[b] / nd:.0f}%)"
                                                                               for b in BUCKETS)]])]
