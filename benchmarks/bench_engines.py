"""Whole-spec wall-clock per generation backend, interleaved: does one engine per model pay off?

Runs ``rmxbench run SPEC`` on a fresh artifact store once with ``protocol.backend: hf`` and once
with ``vllm`` (a temporary copy of the spec with only the backend changed), alternating
A B A B … for ``--repeats`` rounds so the machine's load drifts over both alike. Prints, per
backend, the median wall-clock, the engines the run started (its summary line), the greedy
pass@1 of each row, the ratio vLLM ÷ HF per round and its median, and whether the rows' greedy
verdicts agree between the backends (sampled rows may differ: their RNGs differ by backend).

    python benchmarks/bench_engines.py                        # specs/tiny.yaml, 1 round
    python benchmarks/bench_engines.py --repeats 3 --threads 1
    python benchmarks/bench_engines.py --spec specs/smollm2_cpu.yaml --data-dir ../shared/benchmarks
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

import yaml

REPO = Path(__file__).resolve().parents[1]


def _spec_with_backend(spec: Path, backend: str, folder: Path) -> Path:
    """A copy of ``spec`` next to it (relative paths keep working) with ``protocol.backend`` set."""
    data = yaml.safe_load(spec.read_text())
    data.setdefault("protocol", {})["backend"] = backend
    out = spec.parent / f".bench-{backend}-{folder.name}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _run(spec: Path, threads: int, data_dir: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="rmx-bench-engines-") as tmp:
        home, out = Path(tmp) / "home", Path(tmp) / "board"
        env = {**os.environ, "RMXBENCH_HOME": str(home), "RMXBENCH_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO),
               "COLUMNS": "200"}
        cmd = [sys.executable, "-m", "rmxbench.cli", "run", str(spec), "--out", str(out)]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"rmxbench run failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        m = re.search(r"engines started: [^\n]*", p.stdout)
        suite = next((home / "runs").iterdir())
        rows: dict[str, dict] = {}
        for line in (suite / "results.jsonl").read_text().splitlines():
            rec = json.loads(line)
            rows[f"{rec['row_id']} {rec['task']}"] = {"score": rec["score"], "per_problem": rec["per_problem"]}
        return {"wall": wall, "engines": " ".join(m.group(0).split()) if m else "?", "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(REPO / "specs" / "tiny.yaml"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("RMXBENCH_THREADS", "1")))
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    spec = Path(args.spec).resolve()
    res: dict[str, list[dict]] = {"hf": [], "vllm": []}
    with tempfile.TemporaryDirectory(prefix="rmx-bench-specs-") as tmp:
        specs = {b: _spec_with_backend(spec, b, Path(tmp)) for b in res}
        try:
            for i in range(args.repeats):
                for b in res:
                    r = _run(specs[b], args.threads, args.data_dir)
                    res[b].append(r)
                    print(f"round {i + 1}/{args.repeats} {b:>4}: {r['wall']:7.1f} s wall; {r['engines']}", flush=True)
        finally:
            for p in specs.values():
                p.unlink(missing_ok=True)
    print(f"\n{spec.name}, RMXBENCH_THREADS={args.threads}, {args.repeats} interleaved round(s)")
    for b, runs in res.items():
        print(f"  {b:>4}: median {statistics.median(r['wall'] for r in runs):7.1f} s; {runs[-1]['engines']}")
    ratios = [v["wall"] / h["wall"] for h, v in zip(res["hf"], res["vllm"])]
    print(f"  vllm ÷ hf wall-clock per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
          f"median {statistics.median(ratios):.2f}")
    h, v = res["hf"][-1]["rows"], res["vllm"][-1]["rows"]
    for cell in h:
        if cell not in v:
            continue
        ph, pv = h[cell]["per_problem"], v[cell]["per_problem"]
        agree = sum(ph[k] == pv.get(k) for k in ph)
        print(f"  {cell}: hf {h[cell]['score']:.3f} vs vllm {v[cell]['score']:.3f}; verdicts agree on {agree}/{len(ph)}")


if __name__ == "__main__":
    main()
