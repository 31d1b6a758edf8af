"""Issue 20's acceptance check, for real on this CPU: one calibration run of the tiny spec into a fresh
store, then a changed spec (twice the rollouts K, another τ grid, a larger eval ``limit``, twice the
GRPO steps) is estimated per row at ``--dry-run``, run, and every row's estimate must be within a
factor of 2 of what the run measured.

The unit is CPU time (process CPU seconds, ``node_cpu_seconds`` in each ``meter.json``): what a node
costs the machine, which other users of the shared cores do not change (their load changes wall time
two-fold here). Both runs happen in this test, one after the other, in fresh processes (each pays its
library imports once, as a user's run does). The sizes are cut from ``specs/tiny.yaml`` so the test
fits CI (pool 48, up to 32 mixed problems, GRPO 4 -> 8 steps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _spec(tmp: Path, name: str, *, k: int, taus: list[float], limit: int, grpo_steps: int) -> Path:
    d = yaml.safe_load((REPO / "specs" / "tiny.yaml").read_text())
    d["protocol"]["limit"] = {"tinymath": limit}
    r = d["recipes"]["tiny-cpu"]
    r["pool"]["size"] = 48
    r["rollouts"].update(k=k, batch_size=48)
    r["selection"].update(max_problems=32, validation_problems=24)
    r["taus"] = taus
    g = d["rl_recipes"]["tiny-grpo"]
    g["pool"]["size"] = 48
    g.update(max_steps=grpo_steps, save_steps=grpo_steps)
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def _rmx(args: list[str], home: Path, tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RMXBENCH_HOME": str(home), "RMXBENCH_THREADS": "1", "COLUMNS": "200",
           "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rmxbench.cli", *args], capture_output=True, text=True,
                          timeout=1500, env=env, cwd=tmp)


@pytest.mark.slow
def test_calibrated_estimate_within_2x_per_row(tmp_path):
    home = tmp_path / "home"
    base = _spec(tmp_path, "calib", k=8, taus=[0.3, 0.6], limit=100, grpo_steps=4)
    r = _rmx(["run", str(base), "--out", str(tmp_path / "lb")], home, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    changed = _spec(tmp_path, "changed", k=16, taus=[0.2, 0.5, 0.8], limit=200, grpo_steps=8)
    dry = _rmx(["run", str(changed), "--dry-run", "--json"], home, tmp_path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    plan = json.loads(dry.stdout)
    rows = {r["row"]: r for r in plan["estimate"]["rows"]}
    assert set(rows) == {"tiny", "tiny-grpo", "tiny-rmx"}, rows.keys()
    # every node to run is estimated and calibrated by the first run's meters (same stage variants)
    to_run = [i for i in plan["items"] if i["status"] == "run"]
    assert to_run and all(i["estimate"]["status"] == "estimated" for i in to_run)
    assert all(i["estimate"]["calibrated"] for i in to_run), [i["label"] for i in to_run if not i["estimate"]["calibrated"]]
    assert plan["estimate"]["unit"] == "CPU-h" and plan["estimate"]["total"]["usd"] is None

    r = _rmx(["run", str(changed), "--out", str(tmp_path / "lb")], home, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    nodes = json.loads((home / "runs" / "tiny" / "estimates.json").read_text())
    built = [n for n in nodes if n["built_now"]]
    assert sorted((n["row"], n["label"]) for n in built) == sorted((i["row"], i["label"]) for i in to_run)
    report = []
    for row_id, est in rows.items():
        mine = [n for n in built if n["row"] == row_id]
        measured = sum(n["measured"]["value"] for n in mine)
        recorded = sum(n["estimate"]["seconds"] for n in mine)  # the estimate each meter recorded before it ran
        assert recorded == pytest.approx(est["seconds"], rel=1e-6)  # = what --dry-run printed
        wall = sum(n["measured"]["node_seconds"] for n in mine)
        report.append(f"{row_id}: estimated {est['seconds']:.1f} CPU-s, measured {measured:.1f} CPU-s "
                      f"(ratio {measured / est['seconds']:.2f}; wall {wall:.1f} s)")
        assert 0.5 <= measured / est["seconds"] <= 2.0, "\n".join(report)
    print("\n".join(report))
    # the board's cost cells carry estimate and measurement (costs.json -> cost provenance)
    costs = json.loads((home / "runs" / "tiny" / "costs.json").read_text())
    e = costs["tiny-rmx"]["estimate"]
    assert e["nodes"] >= 1 and e["unit"] == "cpu_seconds" and e["measured_over_estimated"] > 0
