"""ReasonMaxxer ablations on the embedded tiny model (paper §6.3 analogues), on CPU.

Trains one adapter per variant of the `specs/tiny.yaml` recipe at a single τ (the rollouts,
selection and entropies are shared through the artifact store) and scores each on held-out
``tinymath`` test problems with sampled pass@1 (K samples per problem at T = 1, top-p 1, top-k off):

- base (no adapter);
- contrastive (the method, paper Eq. 5-7) with the collapse guard (``negative_floor``) of the tiny recipe;
- positive-only (§6.3: only A > 0 rollouts);
- random positions (control: same number of "decision" tokens per sequence at random completion positions);
- τ = 0 (every completion token is a decision point);
- contrastive without the negative floor (the paper's exact loss; may collapse).

Prints a table: pass@1 ± standard error over problems, malformed share, decision fraction,
train seconds. Usage::

    python benchmarks/embedded_ablation.py [--problems 300] [--k 8] [--tau 0.3] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def variants(recipe, tau: float) -> dict:
    """name -> recipe (pydantic copies of the tiny recipe)."""
    one = {"taus": [tau]}
    return {
        "contrastive": recipe.model_copy(update=one),
        "positive_only": recipe.model_copy(update={**one, "objective": "positive_only"}),
        "random_positions": recipe.model_copy(update={**one, "objective": "random_positions"}),
        "tau=0": recipe.model_copy(update={"taus": [0.0]}),
        "contrastive, no floor": recipe.model_copy(update={**one, "negative_floor": None}),
    }


def run(problems: int = 300, k: int = 8, tau: float = 0.3, home: str | None = None,
        only: list[str] | None = None) -> dict:
    """Train every variant and score it; returns ``{name: score_on_validation() result + train info}``."""
    import torch

    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.method.trainer import score_on_validation
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.orchestrator.runner import train_row
    from rmxbench.pipeline.store import ArtifactStore
    from rmxbench.spec.check import load_spec
    from rmxbench.spec.context import SpecContext
    from rmxbench.spec.schema import ReasonMaxxerRow
    from rmxbench.stages.common import MethodConfig

    torch.set_num_threads(int(os.environ.get("RMXBENCH_THREADS", "1")))
    spec = load_spec(ROOT / "specs" / "tiny.yaml")
    base = spec.models[0]
    recipe = spec.recipes[base.reasonmaxxer[0].recipe]
    vs = variants(recipe, tau)
    if only:
        vs = {n: r for n, r in vs.items() if n in only}
    names = {n: f"v{i}" for i, n in enumerate(vs)}
    base = base.model_copy(update={"reasonmaxxer": [ReasonMaxxerRow(id=f"tiny-{r}", recipe=r) for r in names.values()]})
    spec = spec.model_copy(update={"recipes": {names[n]: r for n, r in vs.items()}, "models": [base]})
    store = ArtifactStore(home or tempfile.mkdtemp(prefix="rmx-ablation-"))
    ctx = SpecContext.of(spec, ROOT / "specs" / "tiny.yaml", home=store.home)
    # skip test[:150]: specs/tiny.yaml's lr/epochs were chosen on those problems
    test_rows = load_benchmark("tinymath")[150:150 + problems]
    eval_recipe = recipe.model_copy(update={"validation_samples": k, "validation_temperature": 1.0})
    config = MethodConfig(spec=spec, base=base, row_id="tiny", recipe_name="eval", recipe=eval_recipe,
                          spec_dir=ROOT / "specs", data_dir=None)
    results = {}
    t0 = time.perf_counter()
    results["base"] = score_on_validation(config, test_rows, adapter_dir=None, task="tinymath")
    results["base"]["eval_seconds"] = time.perf_counter() - t0
    for name, rname in names.items():
        t0 = time.perf_counter()
        res = train_row(build_plan(ctx, store=store, only=[f"tiny-{rname}"]), f"tiny-{rname}")
        train_s = time.perf_counter() - t0
        if res.status != "ok":
            results[name] = {"status": res.status, "message": res.message}
            continue
        t0 = time.perf_counter()
        r = score_on_validation(config, test_rows, adapter_dir=res.adapter_dir, task="tinymath")
        r.update(eval_seconds=time.perf_counter() - t0, train_seconds=train_s, tau=res.metadata["tau"],
                 decision_fraction=res.metadata["decision_fraction"], adapter_dir=str(res.adapter_dir),
                 final_decision_kl=res.metadata["taus"][0].get("final_decision_kl"))
        results[name] = r
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=300, help="tinymath test problems (first N)")
    ap.add_argument("--k", type=int, default=8, help="samples per problem at T=1")
    ap.add_argument("--tau", type=float, default=0.3)
    ap.add_argument("--home", default=None, help="artifact store (default: a fresh temp dir)")
    ap.add_argument("--only", action="append", default=None)
    args = ap.parse_args(argv)
    res = run(args.problems, args.k, args.tau, args.home, args.only)
    print(f"\ntinymath test: first {args.problems} problems x {args.k} samples at T=1 (sampled pass@1 ± s.e. over problems)")
    print(f"{'variant':24s} {'pass@1':>7s} {'± s.e.':>7s} {'malformed':>9s} {'decision':>9s} {'KL@dec':>7s} {'train s':>8s} {'eval s':>7s}")
    for name, r in res.items():
        if "accuracy" not in r:
            print(f"{name:24s} {r['status']}: {r['message']}")
            continue
        df = r.get("decision_fraction")
        kl = r.get("final_decision_kl")
        print(f"{name:24s} {r['accuracy']:7.3f} {r['stderr']:7.3f} {r['malformed_share']:9.1%} "
              f"{'' if df is None else f'{df:.1%}':>9s} {'' if kl is None else f'{kl:.2f}':>7s} "
              f"{r.get('train_seconds', 0):8.1f} {r['eval_seconds']:7.1f}")
    for name, r in res.items():
        if r.get("examples"):
            print(f"  {name}: e.g. {r['examples'][0]['completion']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
