"""Stage ``pick``: choose the τ whose adapter scores best on the validation split (ties: fewer
malformed completions, then the earlier τ of the recipe's list; paper §6.1) and publish it.

Artifact: the picked PEFT adapter dir plus ``rmx_metadata.json`` (picked τ, the fraction of
completion tokens it selects as decision tokens, validation score per τ and of the base, seeds,
library versions, seconds per stage, the adapter's identity hash). This node ``provides`` the
row's adapter: the ``eval`` stage reads it, keyed by this node's key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rmxbench.pipeline.graph import Graph, Node
from rmxbench.pipeline.identity import METADATA_FILE
from rmxbench.pipeline.rows import seeded_label, unseeded_label
from rmxbench.stages.common import (MethodConfig, base_metadata, is_method_row, method_config,
                                    read_json, read_jsonl, tau_label)


def declare(plan, row, graph: Graph) -> None:
    if not is_method_row(row):
        return
    recipe = plan.spec.recipes[row.row.recipe]
    for seed in row.seeds:  # the chain's nodes, under their labels in a row without `seeds:` (same roles)
        inputs = {unseeded_label(n.label): n
                  for s in ("pool", "rollouts", "selection", "entropy", "train", "validation")
                  for n in graph.find(row.id, s) if n.seed == seed}
        graph.add(Node("pick", row.id, seeded_label("pick", seed), method_config(plan, row, seed=seed), inputs=inputs,
                       provides="adapter", parts=dict(taus=list(recipe.taus)), seed=seed))


def build(config: MethodConfig, inputs: dict[str, Path], out_dir: Path, env=None) -> None:
    from rmxbench import progress
    from rmxbench.pipeline.identity import adapter_identity
    from rmxbench.pipeline.metering import read_meter
    from rmxbench.results import atomic_write_json

    recipe = config.recipe
    bar = progress.task(f"{config.row_id}: pick")
    val = {label: read_json(inputs[f"validation[{label}]"] / "validation.json")
           for label in ["base", *(tau_label(t) for t in recipe.taus)]}
    table = []
    for tau in recipe.taus:
        a_dir = inputs[f"train[{tau_label(tau)}]"]
        tlog = read_json(a_dir / "train_log.json")
        hist = tlog.get("history") or [{}]
        r = val[tau_label(tau)]
        table.append({"tau": tau, "decision_fraction": tlog["decision_fraction"], "n_sequences": tlog["n_sequences"],
                      "adapter_key": a_dir.name, "adapter_dir": str(a_dir),
                      "final_loss": hist[-1].get("loss"), "final_decision_kl": hist[-1].get("decision_kl"),
                      "floored": sum(h.get("floored", 0) for h in hist),
                      "validation_accuracy": r["accuracy"], "validation_stderr": r["stderr"],
                      "malformed_share": r["malformed_share"]})
    order = {t["tau"]: i for i, t in enumerate(table)}
    best = max(table, key=lambda t: (t["validation_accuracy"], -t["malformed_share"], -order[t["tau"]]))
    src = Path(best["adapter_dir"])
    for f in src.iterdir():
        if f.is_file() and f.name.startswith("adapter_") or f.name == "README.md":
            shutil.copy2(f, out_dir / f.name)
    seconds = {label: float(m["seconds"]) for label, d in inputs.items() if (m := read_meter(d)) is not None}
    n_val = len(read_jsonl(inputs["pool"] / "validation.jsonl"))
    meta = {**base_metadata(config, inputs["pool"], inputs["selection"]),
            "tau": best["tau"], "decision_fraction": best["decision_fraction"],
            "validation_score": best["validation_accuracy"], "taus": table,
            "base_validation": {k: v for k, v in val["base"].items() if k != "examples"},
            "validation_examples": {k: v.get("examples", []) for k, v in val.items()},
            "validation": {"n_problems": n_val, "sampling": recipe.validation_sampling().key()},
            "adapter_sha256": adapter_identity(out_dir),
            "stage_seconds": seconds}
    atomic_write_json(out_dir / METADATA_FILE, meta)
    bar.done(f"{config.row_id}: picked {tau_label(best['tau'])} (validation {best['validation_accuracy']:.3f})")


def summary(out_dir: Path) -> str:
    """One line for the run log: picked τ, its decision-token fraction, validation vs base."""
    m = read_json(Path(out_dir) / METADATA_FILE)
    return (f"picked τ={m['tau']:g} ({m['decision_fraction']:.1%} decision tokens): validation accuracy "
            f"{m['validation_score']:.3f} vs base {m['base_validation']['accuracy']:.3f}")


def work(config, inputs=None):
    """No model work: copying the picked adapter (issue 20: a fixed bookkeeping time, calibrated from the store)."""
    from rmxbench.estimate.work import Work

    return Work("pick", fixed_seconds=0.5)
