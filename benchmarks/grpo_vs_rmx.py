"""Wall-clock per stage of the GRPO baseline and of ReasonMaxxer on the embedded model.

Runs ``rmxbench run specs/tiny.yaml`` on a fresh artifact store (both arms in ONE run, so the
machine's load affects both alike), then prints, for the spec's GRPO row (``train:``) and its
ReasonMaxxer row, every training stage's metered wall seconds (``meter.json``, the same figures
the board's cost cells sum), the totals and the ratio GRPO ÷ ReasonMaxxer, plus each row's
greedy pass@1. ``--repeats N`` repeats the whole run on fresh stores and reports the median.

    python benchmarks/grpo_vs_rmx.py                       # specs/tiny.yaml, 1 repeat
    python benchmarks/grpo_vs_rmx.py --repeats 3 --threads 2
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


def _rows(spec_path: Path) -> tuple[str, str]:
    """(GRPO row id, ReasonMaxxer row id) of the spec's first base model that has both."""
    sys.path.insert(0, str(REPO))
    from rmxbench.spec.check import load_spec  # noqa: E402

    spec = load_spec(spec_path)
    for m in spec.models:
        grpo = [b.id for b in m.rl_baselines if getattr(b, "train", None) is not None]
        if grpo and m.reasonmaxxer:
            return grpo[0], m.reasonmaxxer[0].id
    raise SystemExit(f"{spec_path}: no base model with both a `train:` RL row and a ReasonMaxxer row")


def _run_once(spec_path: Path, threads: int) -> tuple[dict, dict, float]:
    with tempfile.TemporaryDirectory(prefix="rmx-bench-") as tmp:
        home, out = Path(tmp) / "home", Path(tmp) / "board"
        env = {**os.environ, "RMXBENCH_HOME": str(home), "RMXBENCH_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "rmxbench.cli", "run", str(spec_path), "--out", str(out)],
                           env=env, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"rmxbench run failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        run = home / "runs"
        suite = next(run.iterdir())
        costs = json.loads((suite / "costs.json").read_text())
        scores: dict = {}
        for line in (suite / "results.jsonl").read_text().splitlines():
            rec = json.loads(line)
            scores[rec["row_id"]] = rec.get("score")
        return costs, scores, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(REPO / "specs" / "tiny.yaml"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("RMXBENCH_THREADS", "1")))
    args = ap.parse_args()
    spec_path = Path(args.spec).resolve()
    grpo_id, rmx_id = _rows(spec_path)
    per: dict[str, dict[str, list[float]]] = {grpo_id: {}, rmx_id: {}}
    walls, scores = [], {}
    for i in range(args.repeats):
        costs, scores, wall = _run_once(spec_path, args.threads)
        walls.append(wall)
        for rid in per:
            for label, sec in (costs.get(rid, {}).get("stage_seconds") or {}).items():
                per[rid].setdefault(label, []).append(float(sec))
        print(f"run {i + 1}/{args.repeats}: whole spec {wall:.1f} s wall", flush=True)
    print(f"\nspec {spec_path.name}, RMXBENCH_THREADS={args.threads}, median of {args.repeats} fresh run(s)")
    totals = {}
    for rid, stages in per.items():
        print(f"\n{rid} (greedy pass@1 {scores.get(rid)})")
        tot = 0.0
        for label, secs in stages.items():
            med = statistics.median(secs)
            tot += med
            print(f"  {label:<28} {med:8.2f} s")
        totals[rid] = tot
        print(f"  {'total':<28} {tot:8.2f} s")
    if totals.get(rmx_id):
        print(f"\nGRPO ÷ ReasonMaxxer training wall-clock: {totals[grpo_id] / totals[rmx_id]:.2f}")
    print(f"whole spec (both arms + base + evals): {statistics.median(walls):.1f} s")


if __name__ == "__main__":
    main()
