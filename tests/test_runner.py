"""Runner: cost of a ReasonMaxxer row from its stages' meter.json (cached ones too), and
end to end on the embedded tiny model: a first run builds the board, a second run recomputes
nothing (< 10 s), and a run SIGKILLed at three different stages resumes to the same board."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rmxbench.orchestrator.planner import build_plan
from rmxbench.orchestrator.runner import Runner
from rmxbench.pipeline.store import DONE_MARKER, ArtifactStore
from rmxbench.spec.context import SpecContext
from conftest import mini_spec

REPO = Path(__file__).resolve().parents[1]

MINI = mini_spec()


PRICING = {"date": "2026-04-28", "source": "RunPod", "usd_per_hour": {"RTX-Pro-6000": 1.89},
           "hardware": {"gpu_type": "RTX-Pro-6000", "count": 1}}


def _write_spec(path: Path, spec: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec))
    return path


def test_row_cost_sums_all_training_stage_meters(tmp_path):
    """Cost = Σ meter seconds of every training-stage node of the row, priced per GPU-hour."""
    spec = dict(MINI, pricing=PRICING)
    spec_path = _write_spec(tmp_path / "s" / "spec.yaml", spec)
    store = ArtifactStore(tmp_path / "home")
    plan = build_plan(SpecContext.load(spec_path, home=store.home), store=store)
    secs = {"pool": 1.0, "rollouts": 1800.0, "selection": 2.0, "entropy": 300.0,
            "train[tau=0.5]": 600.0, "train[tau=1]": 620.0, "validation[base]": 100.0,
            "validation[tau=0.5]": 110.0, "validation[tau=1]": 111.0, "pick": 1.0}
    for node in plan.graph.find("tiny-rmx"):
        if node.stage == "eval":
            continue
        def fn(tmp, sec=secs[node.label], label=node.label):
            (tmp / "meter.json").write_text(json.dumps({"stage": label, "seconds": sec, "device": "cuda",
                                                        "accelerators": 2,
                                                        "accelerator_name": "NVIDIA RTX PRO 6000 Blackwell Server Edition"}))
        store.build(node.stage, node.key, fn)
    costs = Runner(plan, console=None).costs()
    gpu_h = sum(secs.values()) * 2 / 3600
    assert costs["tiny-rmx"].gpu_hours == pytest.approx(gpu_h)
    assert costs["tiny-rmx"].usd == pytest.approx(gpu_h * 1.89)
    assert costs["tiny-rmx"].basis == "measured" and set(costs["tiny-rmx"].stage_seconds) == set(secs)
    assert costs["tiny-rl"].usd == 5 and costs["tiny-rl"].basis == "estimated"
    assert "tiny" not in costs  # a base row has no training cost


# ----------------------------------------------------------------------------- end to end

def _tiny_ok() -> bool:
    return (REPO / "rmxbench" / "embedded" / "tiny" / "config.json").is_file()


def _rmx(home: Path, spec_path: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, RMXBENCH_HOME=str(home), COLUMNS="160")
    return subprocess.Popen([sys.executable, "-m", "rmxbench.cli", "run", str(spec_path), "--out", str(out), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **popen)


def _normalise(md: str) -> str:
    """Board Markdown minus the measured wall-clock cost figures (timings differ run to run)."""
    md = re.sub(r"[\d.,]+ (CPU|GPU)-h", r"# \1-h", md)
    return re.sub(r"\$[\d.,]+ \(measured\)", "$# (measured)", md)


def _no_partial(home: Path) -> None:
    """Every published artifact folder is complete (partial builds live only in .tmp-* folders)."""
    for stage in home.iterdir():
        if stage.is_dir() and stage.name != "runs":
            for d in stage.iterdir():
                if d.is_dir() and not d.name.startswith(".tmp-"):
                    assert (d / DONE_MARKER).is_file(), f"partial artifact visible: {d}"


def _check_dry_run_keys_and_adapter_hash(tmp_path, spec_path, home, out, results):
    """(1) The plan on an EMPTY store (what ``--dry-run`` prints) lists every key the real run
    then built, the ReasonMaxxer row's eval included, and nothing else. (2) The adapter hash on
    the board equals the one recorded with the eval's content key and the pick stage's own, all
    computed by :func:`rmxbench.pipeline.identity.adapter_identity`."""
    from rmxbench.pipeline.identity import adapter_identity

    empty = ArtifactStore(tmp_path / "empty")
    plan0 = build_plan(SpecContext.load(spec_path, home=empty.home), store=empty)
    assert all(i.status in ("run", "reported") for i in plan0.items)
    planned = {(i.stage, i.key) for i in plan0.items if i.key}
    assert ("eval", next(i.key for i in plan0.items if i.row_id == "tiny-rmx" and i.stage == "eval")) in planned
    built = {(d.parent.name, d.name) for d in home.glob("*/*")
             if d.is_dir() and d.parent.name != "runs" and not d.name.startswith(".")}
    assert built == planned
    pick = next(i for i in plan0.items if i.stage == "pick")
    ev = next(i for i in plan0.items if i.row_id == "tiny-rmx" and i.stage == "eval")
    prov = next(r for r in results if r["row_id"] == "tiny-rmx")["provenance"]
    key_parts = json.loads((home / "eval" / ev.key / "key_parts.json").read_text())
    meta = json.loads((home / "pick" / pick.key / "rmx_metadata.json").read_text())
    sha = adapter_identity(home / "pick" / pick.key)
    assert key_parts["inputs"] == {"adapter": pick.key} and prov["adapter_key"] == pick.key
    assert prov["adapter_sha256"] == key_parts["adapter_sha256"] == meta["adapter_sha256"] == sha
    assert prov["eval_key"] == ev.key
    assert prov["picked_tau"] == meta["tau"] and 0 < prov["decision_fraction"] < 1
    assert sha in (out / "mini.html").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not _tiny_ok(), reason="embedded tiny model not built (python scripts/make_tiny.py)")
def test_end_to_end_rerun_and_sigkill_resume(tmp_path):
    spec_path = _write_spec(tmp_path / "spec" / "mini.yaml", MINI)
    # 1. Uninterrupted run -> reference board.
    home_a, out_a = tmp_path / "home_a", tmp_path / "lb_a"
    p = _rmx(home_a, spec_path, out_a)
    log = p.communicate(timeout=900)[0]
    assert p.returncode == 0, log[-3000:]
    ref = (out_a / "mini.md").read_text()
    results = [json.loads(x) for x in (home_a / "runs" / "mini" / "results.jsonl").read_text().splitlines()]
    assert {r["row_id"] for r in results} >= {"tiny"}
    notes = json.loads((home_a / "runs" / "mini" / "notes.json").read_text())
    trained = "tiny-rmx" not in notes
    if trained:
        assert {r["row_id"] for r in results} == {"tiny", "tiny-rmx"}
        costs = json.loads((home_a / "runs" / "mini" / "costs.json").read_text())
        assert costs["tiny-rmx"]["cpu_hours"] > 0 and costs["tiny-rmx"]["usd"] is None
        _check_dry_run_keys_and_adapter_hash(tmp_path, spec_path, home_a, out_a, results)
    else:  # recorded on the board, not a crash
        assert "mixed" in notes["tiny-rmx"] and "mixed" in ref

    # 2. Second run: nothing rebuilt, < 10 s, same board.
    t0 = time.perf_counter()
    p = _rmx(home_a, spec_path, out_a)
    log = p.communicate(timeout=120)[0]
    dt = time.perf_counter() - t0
    assert p.returncode == 0, log[-3000:]
    stages = json.loads((home_a / "runs" / "mini" / "stages.json").read_text())
    assert stages["built"] == [] and dt < 10, (stages, dt)
    assert (out_a / "mini.md").read_text() == ref

    # 3. SIGKILL at three stages in turn (eval of the base, rollouts, adapter training); each
    #    restart resumes; the final board equals the reference (up to measured timings).
    home_b, out_b = tmp_path / "home_b", tmp_path / "lb_b"
    kill_at = ["eval", "rollouts", "train"] if trained else ["eval", "rollouts"]
    killed = []
    for stage in kill_at:
        p = _rmx(home_b, spec_path, out_b)
        t0 = time.time()
        while p.poll() is None and time.time() - t0 < 600:
            if list((home_b / stage).glob(".tmp-*")) if (home_b / stage).is_dir() else []:
                time.sleep(0.3)  # let it write a little
                os.killpg(p.pid, signal.SIGKILL)
                killed.append(stage)
                break
            time.sleep(0.05)
        p.wait(timeout=60)
        p.stdout.close()
        _no_partial(home_b)
    assert killed == kill_at
    p = _rmx(home_b, spec_path, out_b)
    log = p.communicate(timeout=900)[0]
    assert p.returncode == 0, log[-3000:]
    _no_partial(home_b)
    # Re-render the reference from its (cached) store, so both boards come from the same board code.
    p = _rmx(home_a, spec_path, out_a)
    assert p.communicate(timeout=120)[0] is not None and p.returncode == 0
    ref = (out_a / "mini.md").read_text()
    assert _normalise((out_b / "mini.md").read_text()) == _normalise(ref)
    assert (home_b / "runs" / "mini" / "results.jsonl").read_text() .count("\n") == len(results)
