"""Stage ``entropy``: per-token entropy H_t (nats) of the base model on every selected rollout,
teacher-forced (paper Eq. 2; :func:`rmxbench.method.entropy.score_sequences`). τ-independent: the
gate H_t > τ is applied when a τ's training set is built, so a new τ list reuses this artifact.

Artifact: ``entropy.pt`` (problem id -> per-sample H_t tensors), ``entropy.json`` (quantiles).
"""

from __future__ import annotations

from pathlib import Path

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.pipeline.rows import seeded_label
from rmxbench.stages.common import MethodConfig, is_method_row, method_config, model_part, read_json, row_engine


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    recipe = plan.spec.recipes[row.row.recipe]
    for seed in row.seeds:
        graph.add(Node("entropy", row.id, seeded_label("entropy", seed), method_config(plan, row, seed=seed),
                       inputs={s: graph.one(row.id, s, label=seeded_label(s, seed)) for s in ("rollouts", "selection")},
                       engine=row_engine(plan, row, weights_only=True), seed=seed,
                       parts=dict(model=model_part(plan, row), max_seq_len=recipe.optim.max_seq_len)))


def work(config: MethodConfig, inputs=None):
    """One teacher-forced pass over the selected rollouts (issue 20: the estimate's work declaration)."""
    from rmxbench.estimate.work import Work
    from rmxbench.stages.common import selected_sequences

    return Work("entropy", config.base.model, config.base.dtype, scored=(selected_sequences(config),))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path, env) -> None:
    import torch

    from rmxbench import progress
    from rmxbench.method.entropy import score_sequences
    from rmxbench.results import atomic_write_json
    from rmxbench.stages.rollouts import load

    recipe = config.recipe
    split = read_json(inputs["selection"] / "split.json")
    train_ids = split["train_ids"]
    bar = progress.task(f"{config.row_id}: entropy ({split['n_sequences']} sequences)", split["n_sequences"])
    session = env.session()
    model, tok = session.torch_model(), session.tokenizer
    by_id = {r["id"]: r for r in load(inputs["rollouts"])}
    seqs, owners = [], []
    for pid in train_ids:
        for j, s in enumerate(by_id[pid]["samples"]):
            seqs.append((list(by_id[pid]["prompt_ids"]) + list(s["completion_ids"]))[:recipe.optim.max_seq_len])
            owners.append((pid, j))
    H = score_sequences(model, seqs, batch_size=max(1, recipe.rollouts.batch_size), progress=bar.advance,
                        pad_id=tok.pad_token_id or 0)
    out: dict[str, list] = {pid: [None] * len(by_id[pid]["samples"]) for pid in train_ids}
    for (pid, j), h in zip(owners, H):
        out[pid][j] = h
    torch.save(out, out_dir / "entropy.pt")
    comp = torch.cat([h[len(by_id[pid]["prompt_ids"]):] for (pid, _), h in zip(owners, H)])
    qs = [0.5, 0.9, 0.95, 0.98, 0.99]
    atomic_write_json(out_dir / "entropy.json", {
        "unit": "nats", "n_sequences": len(seqs), "completion_tokens": int(comp.numel()),
        "completion_quantiles": {str(q): float(torch.quantile(comp, q)) for q in qs} if comp.numel() else {},
        "share_above_tau": {f"{t:g}": float((comp > t).float().mean()) for t in recipe.taus}
        if comp.numel() else {}})
    bar.done()
    return {"scored_tokens": sum(len(s) for s in seqs)}  # the tokens scored (issue 20: meter.json)


def load(out_dir: Path) -> dict[str, list]:
    """The entropies of an ``entropy`` artifact folder (problem id -> per-sample H_t tensors)."""
    import torch

    return torch.load(Path(out_dir) / "entropy.pt", weights_only=False)
