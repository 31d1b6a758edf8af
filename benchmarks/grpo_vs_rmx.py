"""Wall-clock per stage of the GRPO arm and the ReasonMaxxer arm of a board, per training seed.

For the spec's first base model with both a GRPO row rmxbench trains (``train:``) and a ReasonMaxxer
row, prints every stage's metered wall seconds (``meter.json`` of each node in the store, the same
figures the board's cost cells use), per training seed (issue 19: ``seeds:``; a row without it is one
run with its recipe's seed), the median over seeds, each arm's training total, its total with the
evaluation of its adapters (the arm's whole share of the board's wall-clock) and the ratio
GRPO ÷ ReasonMaxxer of the median training totals, plus each seed's score and each arm's mean and
seed spread (sample standard deviation over seeds). The base row's own stages (its evaluation) come
first, and the last line sums every metered stage of the three rows: the board's wall-clock.

Either runs ``rmxbench run SPEC`` on fresh stores (both arms in ONE run, so the machine's load affects
both alike; ``--repeats N`` runs N times and takes each seed's median over the runs), or reads the
meters of an existing run (``--home DIR``: the store the run used; nothing is run).

    python benchmarks/grpo_vs_rmx.py                                   # specs/tiny.yaml, fresh store
    python benchmarks/grpo_vs_rmx.py --seeds 0,1,2 --threads 2         # both arms trained with 3 seeds
    python benchmarks/grpo_vs_rmx.py --spec specs/smollm2_cpu.yaml --home ~/.cache/rmxbench   # read a run
    python benchmarks/grpo_vs_rmx.py --spec specs/smollm2_board.yaml --home STORE --data-dir ../shared/benchmarks

``--seeds`` runs a copy of the spec with ``seeds:`` set on both trained rows (written next to the spec
for the run, so relative paths still resolve, and removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _base(spec) -> str:
    """Id of the base model whose GRPO and ReasonMaxxer rows :func:`_arms` returns."""
    grpo_id, _ = _arms(spec)
    return next(m.id for m in spec.models if any(b.id == grpo_id for b in m.rl_baselines))


def _arms(spec) -> tuple[str, str]:
    """(GRPO row id, ReasonMaxxer row id) of the spec's first base model that has both."""
    for m in spec.models:
        grpo = [b.id for b in m.rl_baselines if getattr(b, "train", None) is not None]
        if grpo and m.reasonmaxxer:
            return grpo[0], m.reasonmaxxer[0].id
    raise SystemExit("the spec has no base model with both a `train:` RL row and a ReasonMaxxer row")


def _spec_with_seeds(spec_path: Path, seeds: list[int] | None) -> Path:
    """The spec file to run: ``spec_path``, or a copy with ``seeds:`` on both trained rows."""
    if seeds is None:
        return spec_path
    import yaml

    from rmxbench.spec.check import load_spec

    grpo_id, rmx_id = _arms(load_spec(spec_path))
    data = yaml.safe_load(spec_path.read_text())
    for m in data["models"]:
        for row in [*m.get("rl_baselines", []), *m.get("reasonmaxxer", [])]:
            if row["id"] in (grpo_id, rmx_id):
                row["seeds"] = seeds
    fd, tmp = tempfile.mkstemp(prefix=f".bench-{spec_path.stem}-", suffix=".yaml", dir=spec_path.parent)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    return Path(tmp)


def _run(spec_path: Path, home: Path, threads: int, data_dir: Path | None = None) -> float:
    """``rmxbench run`` on store ``home`` (benchmark files from ``data_dir`` if given); returns the
    whole run's wall seconds."""
    env = {**os.environ, "RMXBENCH_HOME": str(home), "RMXBENCH_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    data = ["--data-dir", str(data_dir)] if data_dir else []
    p = subprocess.run([sys.executable, "-m", "rmxbench.cli", "run", str(spec_path), *data, "--out", str(home / "board")],
                       env=env, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"rmxbench run failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0


def read_arms(spec_path: Path, home: Path, data_dir: Path | None = None) -> dict:
    """Meters and scores of the base row and both arms in the store ``home``, from the plan of
    ``spec_path`` with benchmark files from ``data_dir`` (the run's ``--data-dir``: a derived
    benchmark's pool and eval keys depend on the files it is built from).

    Returns ``{row_id: {"kind", "seeds", "stages": {stage label: {seed: seconds}}, "training": set of
    training-stage labels, "scores": {seed: {task: score}}}}`` (stage labels without the seed, e.g.
    ``train[tau=0.3]``). Nodes not in the store are left out (and reported as missing).
    """
    from rmxbench.pipeline.metering import read_meter
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.pipeline.rows import unseeded_label
    from rmxbench.pipeline.store import ArtifactStore
    from rmxbench.spec.context import SpecContext

    ctx = SpecContext.load(spec_path, home=home, data_dir=data_dir)
    plan = build_plan(ctx, store=ArtifactStore(home))
    out: dict = {}
    for kind, rid in zip(("base", "GRPO", "ReasonMaxxer"), (_base(ctx.spec), *_arms(ctx.spec))):
        arm = out[rid] = {"kind": kind, "seeds": [], "stages": {}, "training": set(), "missing": [],
                          "incomplete": set(), "scores": {}}
        for n in plan.graph.find(rid):
            if n.seed not in arm["seeds"]:
                arm["seeds"].append(n.seed)
            d = plan.store.get(n.stage, n.key)
            m = read_meter(d) if d is not None else None
            if m is None:
                arm["missing"].append(n.label)
                arm["incomplete"].add(n.seed)
                continue
            label = unseeded_label(n.label)
            arm["stages"].setdefault(label, {})[n.seed] = float(m["seconds"])
            if plan.table[n.stage].training:
                arm["training"].add(label)
    results = home / "runs" / ctx.spec.suite.name / "results.jsonl"
    for line in results.read_text().splitlines() if results.is_file() else ():
        rec = json.loads(line)
        if rec["row_id"] in out:
            out[rec["row_id"]]["scores"].setdefault(rec.get("seed"), {})[rec["task"]] = rec["score"]
    return out


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:8.2f}"


def report(runs: list[dict]) -> None:
    """Print each arm's stages per seed (median over ``runs``), the median over seeds and the ratio."""
    totals: dict[str, float] = {}
    if not any(arm["stages"] for r in runs for arm in r.values()):
        raise SystemExit("no metered node of either arm in this store: run `rmxbench run SPEC` on it first "
                         "(or leave out --home to run the spec on a fresh store)")
    board_total = 0.0
    for rid, arm in runs[0].items():
        seeds = arm["seeds"]
        names = ["seed " + ("recipe" if s is None else str(s)) for s in seeds]
        print(f"\n{rid} ({arm['kind']}), wall seconds per stage" + (f", {len(seeds)} training seeds" if seeds != [None] else ""))
        print(f"  {'stage':<28}" + "".join(f"{n:>12}" for n in names) + f"{'median':>12}")

        def cell(label: str, seed) -> float | None:
            vals = [r[rid]["stages"].get(label, {}).get(seed) for r in runs]
            vals = [v for v in vals if v is not None]
            return statistics.median(vals) if vals else None

        per_seed_total = {s: 0.0 for s in seeds}
        per_seed_all = {s: 0.0 for s in seeds}
        for label in arm["stages"]:
            row = [cell(label, s) for s in seeds]
            have = [v for v in row if v is not None]
            tag = "" if label in arm["training"] else "  (evaluation, not training cost)"
            print(f"  {label:<28}" + "".join(f"{_fmt(v):>12}" for v in row)
                  + f"{_fmt(statistics.median(have) if have else None):>12}{tag}")
            for s, v in zip(seeds, row):
                per_seed_all[s] += v or 0.0
                if label in arm["training"]:
                    per_seed_total[s] += v or 0.0
        board_total += sum(per_seed_all.values())
        # a seed with a node not built yet has no total (— below), and the medians leave it out
        done = [s for s in seeds if not any(s in r[rid]["incomplete"] for r in runs)]
        if arm["kind"] != "base":
            med = statistics.median(per_seed_total[s] for s in done) if done else None
            totals[rid] = med
            print(f"  {'training total':<28}" + "".join(f"{_fmt(per_seed_total[s] if s in done else None):>12}" for s in seeds)
                  + f"{_fmt(med):>12}")
        print(f"  {'total with evaluation':<28}" + "".join(f"{_fmt(per_seed_all[s] if s in done else None):>12}" for s in seeds)
              + f"{_fmt(statistics.median(per_seed_all[s] for s in done) if done else None):>12}"
              + (f"   all seeds: {sum(per_seed_all.values()):.1f} s" if len(done) == len(seeds) > 1 else ""))
        scores = arm["scores"]
        if scores:
            tasks = sorted({t for v in scores.values() for t in v})
            for t in tasks:
                vals = [scores[s][t] for s in seeds if t in scores.get(s, {})]
                spread = (f"   mean {statistics.mean(vals):.4f}, seed sd {statistics.stdev(vals):.4f} "
                          f"(min {min(vals):.4f}, max {max(vals):.4f}, {len(vals)} seeds)" if len(vals) > 1 else "")
                print(f"  {'score ' + t:<28}" + "".join(f"{scores.get(s, {}).get(t, float('nan')):>12.4f}" for s in seeds)
                      + spread)
        if arm["missing"]:
            print(f"  not in the store (not built yet, or halted): {', '.join(arm['missing'])}")
    _, grpo_id, rmx_id = list(runs[0])
    if totals.get(rmx_id) and totals.get(grpo_id) is not None:
        print(f"\nGRPO ÷ ReasonMaxxer training wall-clock (median over seeds): "
              f"{totals[grpo_id]:.2f} s ÷ {totals[rmx_id]:.2f} s = {totals[grpo_id] / totals[rmx_id]:.2f}")
    partial = any(arm["missing"] for r in runs for arm in r.values())
    print(f"board wall-clock, every metered stage of the three rows: {board_total:.1f} s ({board_total / 3600:.2f} h)"
          + (" so far (some nodes are not built yet)" if partial else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(REPO / "specs" / "tiny.yaml"))
    ap.add_argument("--home", default=None, help="read the meters of an existing run's store (runs nothing)")
    ap.add_argument("--data-dir", default=None, help="the run's --data-dir (benchmark JSONL files), if it had one")
    ap.add_argument("--seeds", default=None, help="comma-separated training seeds for both trained rows, e.g. 0,1,2")
    ap.add_argument("--repeats", type=int, default=1, help="fresh runs (median per seed over them)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("RMXBENCH_THREADS", "1")))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else None
    spec_path = _spec_with_seeds(Path(args.spec).resolve(), seeds)
    try:
        if args.home:
            home = Path(args.home).expanduser().resolve()
            print(f"spec {Path(args.spec).name}, store {home} (existing run)")
            report([read_arms(spec_path, home, data_dir)])
            return
        runs, walls = [], []
        for i in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="rmx-bench-") as tmp:
                walls.append(_run(spec_path, Path(tmp), args.threads, data_dir))
                runs.append(read_arms(spec_path, Path(tmp), data_dir))
            print(f"run {i + 1}/{args.repeats}: whole spec {walls[-1]:.1f} s wall", flush=True)
        print(f"\nspec {Path(args.spec).name}, RMXBENCH_THREADS={args.threads}, median of {args.repeats} fresh run(s)")
        report(runs)
        print(f"whole spec (both arms + base + evals): {statistics.median(walls):.1f} s")
    finally:
        if spec_path != Path(args.spec).resolve():
            spec_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
