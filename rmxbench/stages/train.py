"""Stage ``train``: one LoRA adapter per τ with the ReasonMaxxer loss on the decision tokens
(H_t > τ) of the selected rollouts (paper §5.2-5.3, Eq. 5-7, App. B;
:func:`rmxbench.method.trainer.train_adapter`).

Artifact (one per τ): a PEFT adapter dir (``adapter_config.json``, ``adapter_model.safetensors``),
``train_log.json`` (per-update loss, KL, lr, grad norm; decision fraction), ``rmx_metadata.json``.
"""

from __future__ import annotations

from pathlib import Path

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.pipeline.identity import METADATA_FILE
from rmxbench.pipeline.rows import seeded_label
from rmxbench.stages.common import (MethodConfig, base_metadata, is_method_row, method_config,
                                    model_part, read_json, row_engine, row_recipe, tau_label)


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    for seed in row.seeds:
        recipe = row_recipe(plan, row, seed)
        inputs = {s: graph.one(row.id, s, label=seeded_label(s, seed))
                  for s in ("pool", "rollouts", "selection", "entropy")}
        for tau in recipe.taus:
            graph.add(Node("train", row.id, seeded_label(f"train[{tau_label(tau)}]", seed),
                           method_config(plan, row, tau, seed=seed), inputs=inputs, seed=seed,
                           provides="adapter", engine=row_engine(plan, row, weights_only=True), parts=dict(
                               model=model_part(plan, row), tau=tau, objective=recipe.objective, lora=recipe.lora,
                               optim=recipe.optim, advantage_clip=recipe.advantage_clip,
                               advantage_eps=recipe.advantage_eps, anchor_weight=recipe.anchor_weight,
                               negative_floor=recipe.negative_floor, seed=recipe.seed)))


def work(config: MethodConfig, inputs=None):
    """LoRA training over the selected rollouts for ``optim.epochs``, plus the frozen base's forward pass
    for the KL anchor (the adapter disabled; paper Eq. 7) (issue 20: the estimate's work declaration)."""
    from dataclasses import replace

    from rmxbench.estimate.work import Work
    from rmxbench.stages.common import selected_sequences

    seqs = replace(selected_sequences(config), passes=config.recipe.optim.epochs)
    return Work("train", config.base.model, config.base.dtype, trained=(seqs,), scored=(seqs,))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path, env) -> None:
    import math

    from rmxbench import progress
    from rmxbench.method.trainer import build_training_set, train_adapter
    from rmxbench.results import atomic_write_json
    from rmxbench.stages import entropy, rollouts

    recipe, tau, oc = config.recipe, config.tau, config.recipe.optim
    split = read_json(inputs["selection"] / "split.json")
    items, dstats = build_training_set(rollouts.load(inputs["rollouts"]), split["train_ids"],
                                       entropy.load(inputs["entropy"]), tau=tau, objective=recipe.objective,
                                       max_seq_len=oc.max_seq_len, advantage_clip=recipe.advantage_clip,
                                       advantage_eps=recipe.advantage_eps, seed=recipe.seed)
    micro_total = math.ceil(oc.epochs * math.ceil(len(items) / oc.batch_size))
    bar = progress.task(f"{config.row_id}: train {tau_label(tau)} ({dstats['decision_fraction']:.1%} decision "
                        "tokens)", micro_total)
    session = env.session()
    model, tok = session.torch_model(), session.tokenizer
    log = train_adapter(model, items, recipe, pad_id=tok.pad_token_id or 0, out_dir=out_dir, on_step=bar.advance)
    atomic_write_json(out_dir / "train_log.json", {**log, **dstats, "tau": tau})
    atomic_write_json(out_dir / METADATA_FILE, {**base_metadata(config, inputs["pool"], inputs["selection"]),
                                                "tau": tau, **dstats,
                                                "train": {k: v for k, v in log.items() if k != "history"}})
    bar.done()
    tokens = sum(len(it["input_ids"]) for it in items) * oc.epochs  # trained, and scored by the frozen base
    return {"trained_tokens": tokens, "scored_tokens": tokens}  # issue 20: meter.json
