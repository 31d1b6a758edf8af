"""Training seeds end to end (issue 19 items 1-2, acceptance): a tiny spec with ``seeds: [0, 1]`` on
both trained rows (ReasonMaxxer and a GRPO ``train:`` row) on the embedded model. The plan holds one
chain of keyed nodes per seed (seed 0 = the recipe's own seed: the same keys as the row without
``seeds:``); the run builds both chains and the board cell shows the mean with the seed spread; a
rerun builds nothing; adding a third seed builds exactly that seed's nodes."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rmxbench.orchestrator.planner import build_plan
from rmxbench.pipeline.rows import unseeded_label
from rmxbench.pipeline.store import ArtifactStore
from rmxbench.spec.context import SpecContext
from conftest import mini_spec

TRAINED = ("tiny-grpo", "tiny-rmx")

# Small enough for CI on 2 cores (~1.5 min for both seeds): 16 test problems, a 24-problem pool x 4
# rollouts and one τ; GRPO: 2 steps of 2 prompts x 4 completions from a 16-problem pool.
SPEC = mini_spec()
SPEC["suite"]["name"] = "seeds"
SPEC["recipes"]["toy"]["taus"] = [0.5]
SPEC["rl_recipes"] = {"g": {
    "pool": {"source": "embedded_train", "size": 16, "balance_levels": False},
    "num_generations": 4, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "beta": 0.0,
    "entropy_coef": 0.0, "learning_rate": 0.0001, "max_completion_length": 48, "max_steps": 2, "save_steps": 2}}
SPEC["models"][0].update(
    rl_baselines=[{"id": "tiny-grpo", "display_name": "+ GRPO", "algorithm": "GRPO", "source": "test",
                   "train": {"algorithm": "grpo", "recipe": "g"}, "seeds": [0, 1]}],
    reasonmaxxer=[{"id": "tiny-rmx", "recipe": "toy", "seeds": [0, 1]}])


def _with_seeds(seeds: list[int] | None) -> dict:
    spec = copy.deepcopy(SPEC)
    m = spec["models"][0]
    for row in (m["rl_baselines"][0], m["reasonmaxxer"][0]):
        if seeds is None:
            row.pop("seeds")
        else:
            row["seeds"] = seeds
    return spec


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def _plan(spec_path: Path, home: Path):
    return build_plan(SpecContext.load(spec_path, home=home), store=ArtifactStore(home))


def _run(spec_path: Path, home: Path, out: Path, *extra: str) -> str:
    import os

    env = dict(os.environ, RMXBENCH_HOME=str(home), COLUMNS="200")
    p = subprocess.run([sys.executable, "-m", "rmxbench.cli", "run", str(spec_path), "--out", str(out), *extra],
                       env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    return p.stdout


def _stages(home: Path) -> dict:
    return json.loads((home / "runs" / "seeds" / "stages.json").read_text())


def _results(home: Path) -> list[dict]:
    return [json.loads(x) for x in (home / "runs" / "seeds" / "results.jsonl").read_text().splitlines()]


def test_plan_has_one_chain_of_keys_per_seed(tmp_path):
    home = tmp_path / "home"
    plan = _plan(_write(tmp_path / "s.yaml", SPEC), home)
    plain = _plan(_write(tmp_path / "plain.yaml", _with_seeds(None)), home)
    plain_keys = {(i.row_id, i.label): i.key for i in plain.items}
    for row in TRAINED:
        chains = {s: [n for n in plan.graph.find(row) if n.seed == s] for s in (0, 1)}
        assert not [n for n in plan.graph.find(row) if n.seed is None]
        assert len(chains[0]) == len(chains[1]) == len(plain.graph.find(row))
        assert all(f"seed={s}" in n.label for s in (0, 1) for n in chains[s])
        # seed 1's chain shares no key with seed 0's: the seed is in every key it changes
        assert not {n.key for n in chains[0]} & {n.key for n in chains[1]}
        # seed 0 is the recipe's own seed: the very keys of the row without `seeds:`
        assert {unseeded_label(n.label): n.key for n in chains[0]} == \
            {label: key for (r, label), key in plain_keys.items() if r == row}
        # each chain reads only its own seed's nodes
        assert all(i.seed == n.seed for n in plan.graph.find(row) for i in n.inputs.values() if i.row_id == row)
    labels = {i.label for i in plan.items if i.row_id == "tiny-rmx"}
    assert {"pool[seed=1]", "train[seed=1,tau=0.5]", "validation[seed=1,base]", "pick[seed=1]",
            "eval tinymath[seed=1]"} <= labels
    assert plan.items[0].key == plain.items[0].key  # the base row is untouched
    code = ("import sys; from rmxbench.cli import main; "
            f"rc = main(['run', {str(tmp_path / 's.yaml')!r}, '--dry-run', '--home', {str(home)!r}]); "
            "assert 'torch' not in sys.modules; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "train[seed=1,tau=0.5]" in r.stdout and "grpo[seed=1]" in r.stdout and r.stdout.count("eval[seed=1]") == 2


def test_two_seeds_run_rerun_builds_nothing_and_a_third_seed_builds_only_itself(tmp_path):
    home, out = tmp_path / "home", tmp_path / "lb"
    spec_path = _write(tmp_path / "seeds.yaml", SPEC)
    _run(spec_path, home, out)
    notes = json.loads((home / "runs" / "seeds" / "notes.json").read_text())
    assert notes == {}, notes  # neither seed's selection halted
    plan = _plan(spec_path, home)
    assert {i.status for i in plan.items} == {"cached"}
    assert {label for label, _ in _stages(home)["built"]} == {f"{i.row_id} {i.label}" for i in plan.items}
    recs = _results(home)
    by = {(r["row_id"], r.get("seed")): r for r in recs}
    assert sorted(by) == [("tiny", None), ("tiny-grpo", 0), ("tiny-grpo", 1), ("tiny-rmx", 0), ("tiny-rmx", 1)]
    # the chains really differ: other pool draws, other adapters
    pools = {n.seed: [json.loads(x)["id"]
                      for x in (plan.store.get("pool", n.key) / "pool.jsonl").read_text().splitlines()]
             for n in plan.graph.find("tiny-rmx", "pool")}
    assert set(pools[0]) != set(pools[1])
    assert by[("tiny-rmx", 0)]["provenance"]["adapter_sha256"] != by[("tiny-rmx", 1)]["provenance"]["adapter_sha256"]
    grpo_pools = [json.loads((plan.store.get("grpo", n.key) / "pool.json").read_text())["ids"]
                  for n in plan.graph.find("tiny-grpo", "grpo")]
    assert grpo_pools[0] != grpo_pools[1]
    # the board: one row per trained row, the mean over seeds and the seed spread beside the CI
    md = (out / "seeds.md").read_text()
    for row, name in (("tiny-rmx", "↪ + ReasonMaxxer"), ("tiny-grpo", "↪ + GRPO")):
        s0, s1 = by[(row, 0)]["score"], by[(row, 1)]["score"]
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {name}"))
        cell = line.split("|")[2]
        want = (rf"\s*(\*\*)?{(s0 + s1) / 2:.3f}(\*\*)? \[\d\.\d{{3}}, \d\.\d{{3}}\] "
                rf"2 seeds: {min(s0, s1):.3f}–{max(s0, s1):.3f}\s*")
        assert re.fullmatch(want, cell), (cell, want)
        assert "(measured, mean per seed)" in line
    costs = json.loads((home / "runs" / "seeds" / "costs.json").read_text())
    for row in TRAINED:
        per = costs[row]["per_seed"]
        assert sorted(per) == ["0", "1"]
        assert costs[row]["cpu_hours"] == pytest.approx((per["0"]["cpu_hours"] + per["1"]["cpu_hours"]) / 2)
    assert (out / "seeds.seeds.png").read_bytes()[:4] == b"\x89PNG" and "seeds.seeds.png" in md
    assert (out / "seeds.tiny-grpo.seed1.reward_curve.png").is_file()
    html = (out / "seeds.html").read_text()
    assert "seed 1 score" in html and "Per-seed scores of the trained rows" in html

    # rerun: nothing is built, the same board
    _run(spec_path, home, out)
    assert _stages(home)["built"] == []
    assert (out / "seeds.md").read_text() == md

    # a third seed: only its nodes are built
    spec_path = _write(tmp_path / "seeds.yaml", _with_seeds([0, 1, 2]))
    plan = _plan(spec_path, home)
    to_run = {f"{i.row_id} {i.label}" for i in plan.items if i.to_run}
    assert to_run == {f"{n.row_id} {n.label}" for n in plan.graph.nodes if n.seed == 2}
    assert len(to_run) == len(plan.graph.find("tiny-rmx")) // 3 + len(plan.graph.find("tiny-grpo")) // 3
    _run(spec_path, home, out)
    built = [label for label, _ in _stages(home)["built"]]
    assert sorted(built) == sorted(to_run)
    md = (out / "seeds.md").read_text()
    assert md.count("3 seeds: ") == 4  # both trained rows: the task cell and Avg
