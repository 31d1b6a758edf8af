"""Whole-spec wall-clock per executor, interleaved: the local executor vs Ray with logical GPUs.

Runs ``rmxbench run SPEC`` on a fresh artifact store once with the default local executor and
once with ``--executor ray --gpus G --cpus C`` (a local Ray started and stopped by the run),
alternating A B A B … for ``--repeats`` rounds so the machine's load drifts over both alike.
Prints per executor the median wall-clock (the whole process: Ray's start-up included), the sum
of the nodes' metered seconds (the work), the seconds during which at least two nodes were
building at once (from the meters' start and end times), the ratio Ray ÷ local per round and its
median, whether the boards agree (cost cells aside), and the plan's parallelism (the ``--dry-run``
line: nodes, longest chain, widest level, model workers).

    python benchmarks/bench_executors.py                         # specs/tiny.yaml, 1 round, 2 logical GPUs
    python benchmarks/bench_executors.py --repeats 3 --gpus 2 --cpus 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _board(md: str) -> str:
    md = re.sub(r"[\d.,]+ (CPU|GPU)-h", r"# \1-h", md)
    md = re.sub(r"\$[\d.,]+ \(measured\)", "$# (measured)", md)
    md = re.sub(r"[\d.,]+× \(", "#× (", md)
    return re.sub(r"\(([\d.,]+) ÷ ", "(# ÷ ", md)


def _overlap_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least two of ``spans`` (start, end) were running."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    out, running, last = 0.0, 0, None
    for t, d in events:
        if running >= 2 and last is not None:
            out += t - last
        running += d
        last = t
    return out


def _run(spec: Path, threads: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="rmx-bench-executors-") as tmp:
        home, out = Path(tmp) / "home", Path(tmp) / "board"
        env = {**os.environ, "RMXBENCH_HOME": str(home), "RMXBENCH_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO),
               "COLUMNS": "250"}
        cmd = [sys.executable, "-m", "rmxbench.cli", "run", str(spec), "--out", str(out), *extra]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"rmxbench run failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        meters = [json.loads(f.read_text()) for f in home.glob("*/*/meter.json")]
        spans = [(m["started_at"], m["finished_at"]) for m in meters if "started_at" in m]
        par = re.search(r"parallelism: [^\n]*", p.stdout)
        board = next(out.glob("*.md")).read_text()
        return {"wall": wall, "work": sum(float(m["seconds"]) for m in meters), "overlap": _overlap_seconds(spans),
                "board": _board(board), "parallelism": par.group(0) if par else "?"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(REPO / "specs" / "tiny.yaml"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--gpus", type=int, default=2, help="logical GPUs of the local Ray")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("RMXBENCH_THREADS", "1")))
    args = ap.parse_args()
    spec = Path(args.spec).resolve()
    arms = {"local": [], "ray": ["--executor", "ray", "--gpus", str(args.gpus), "--cpus", str(args.cpus)]}
    res: dict[str, list[dict]] = {a: [] for a in arms}
    for i in range(args.repeats):
        for a, extra in arms.items():
            r = _run(spec, args.threads, extra)
            res[a].append(r)
            print(f"round {i + 1}/{args.repeats} {a:>5}: {r['wall']:7.1f} s wall, {r['work']:7.1f} s of node work, "
                  f"{r['overlap']:6.1f} s with >= 2 nodes building", flush=True)
    print(f"\n{spec.name}, RMXBENCH_THREADS={args.threads}, ray: {args.gpus} logical GPUs + {args.cpus} CPUs, "
          f"{args.repeats} interleaved round(s); {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"  plan: {res['local'][-1]['parallelism']}")
    for a, runs in res.items():
        print(f"  {a:>5}: median wall {statistics.median(r['wall'] for r in runs):7.1f} s; median node work "
              f"{statistics.median(r['work'] for r in runs):7.1f} s; median overlap "
              f"{statistics.median(r['overlap'] for r in runs):6.1f} s")
    ratios = [r["wall"] / l["wall"] for l, r in zip(res["local"], res["ray"])]
    print(f"  ray ÷ local wall-clock per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
          f"median {statistics.median(ratios):.2f}")
    same = all(r["board"] == res["local"][0]["board"] for runs in res.values() for r in runs)
    print(f"  boards identical (cost cells aside): {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
