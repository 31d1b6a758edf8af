"""Planner: nodes and content keys of a fixture spec (every key known before anything runs),
cached vs to-run after a fake build, halting, ``--only`` filtering, ``--force`` closure, and a dry
run that imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rmxbench.errors import UserError
from rmxbench.spec.check import load_spec
from rmxbench.pipeline.graph import force_closure
from rmxbench.orchestrator.planner import build_plan
from rmxbench.pipeline.stages import STAGES
from rmxbench.pipeline.store import ArtifactStore
from rmxbench.spec.context import SpecContext

REPO = Path(__file__).resolve().parents[1]

SPEC = {
    "suite": {"name": "fixture"},
    "protocol": {"tasks": ["tinymath", "gsm8k"], "backend": "hf", "max_new_tokens": 32,
                 "avg_at_k": {"k": 2, "tasks": ["gsm8k"]}, "limit": {"tinymath": 5, "gsm8k": 3}},
    "pricing": {"date": "2026-04-28", "source": "test", "usd_per_hour": {"H100-80G": 2.49}},
    "recipes": {"toy": {"pool": {"source": "embedded_train", "size": 8}, "taus": [1.0, 2.0]}},
    "models": [{
        "id": "base-a", "display_name": "Base A", "family": "fam", "prompt_style": "tiny_story",
        "model": {"path": "model_a"},
        "rl_baselines": [
            {"id": "base-a-rl", "display_name": "+ RL", "algorithm": "GRPO", "source": "x",
             "model": {"repo": "org/rl-model", "revision": "main"}, "trained_prompt_style": "qwen_raw", "eval_prompt": "trained",
             "cost": {"usd": 200, "basis": "estimated", "source": "paper"}},
            {"id": "base-a-gone", "display_name": "+ Gone", "algorithm": "PPO", "source": "y",
             "unavailable": "no public checkpoint"},
        ],
        "reasonmaxxer": [{"id": "base-a-rmx", "recipe": "toy"}],
    }],
}


@pytest.fixture
def fixture(tmp_path):
    d = tmp_path / "specdir"
    (d / "model_a").mkdir(parents=True)
    (d / "model_a" / "config.json").write_text('{"a": 1}')
    (d / "model_a" / "README.md").write_text("ignored by the model hash")
    data = tmp_path / "data"
    data.mkdir()
    (data / "gsm8k.jsonl").write_text("".join(
        json.dumps({"id": f"gsm8k/{i}", "problem": f"{i}+1?", "answer": str(i + 1)}) + "\n" for i in range(4)))
    spec_path = d / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    store = ArtifactStore(tmp_path / "home")
    return spec_path, data, store


def _plan(spec_path, data, store, **kw):
    return build_plan(SpecContext.load(spec_path, data_dir=data, home=store.home), store=store, **kw)


RMX = [("base-a-rmx", s, None, "run") for s in ("pool", "rollouts", "selection", "entropy", "train", "train",
                                                 "validation", "validation", "validation", "pick")]


def _summary(plan):
    return [(i.row_id, i.stage, i.task, i.status) for i in plan.items]


def test_plan_items_and_statuses(fixture):
    spec_path, data, store = fixture
    plan = _plan(spec_path, data, store)
    assert _summary(plan) == [
        ("base-a", "eval", "tinymath", "run"), ("base-a", "eval", "gsm8k", "run"),
        ("base-a-rl", "eval", "tinymath", "run"), ("base-a-rl", "eval", "gsm8k", "run"),
        ("base-a-gone", "reported", None, "reported"),
        *RMX, ("base-a-rmx", "eval", "tinymath", "run"), ("base-a-rmx", "eval", "gsm8k", "run"),
    ]
    keys = [i.key for i in plan.items if i.key]
    assert len(set(keys)) == len(keys) == 16  # every key is known before anything runs
    assert any("not pinned" in w and "base-a-rl" in w for w in plan.warnings)
    by = {(i.row_id, i.task): i for i in plan.items if i.stage == "eval"}
    # RL row with eval_prompt: trained: its own prompt style; base: the base's style. avg@k fields only for gsm8k.
    assert by[("base-a-rl", "gsm8k")].node.parts["prompt"]["style"] == "qwen_raw"
    assert by[("base-a", "gsm8k")].node.parts["protocol"]["metric"] == "avg@2"
    assert by[("base-a", "tinymath")].node.parts["protocol"]["metric"] == "pass@1"
    assert by[("base-a", "gsm8k")].node.parts["protocol"]["limit"] == 3


def test_fake_build_makes_items_cached_and_keys_are_stable(fixture):
    spec_path, data, store = fixture
    plan = _plan(spec_path, data, store)
    item = next(i for i in plan.items if i.row_id == "base-a" and i.task == "gsm8k")
    store.build("eval", item.key, lambda tmp: (tmp / "record.json").write_text("{}"))
    plan2 = _plan(spec_path, data, store)
    st = {(i.row_id, i.task): i.status for i in plan2.items if i.stage == "eval"}
    assert st[("base-a", "gsm8k")] == "cached" and st[("base-a", "tinymath")] == "run"
    assert [i.key for i in plan.items] == [i.key for i in plan2.items]
    # Forcing eval turns the cached cell into "forced".
    plan3 = _plan(spec_path, data, store, force=["eval"])
    st3 = {(i.row_id, i.task): i.status for i in plan3.items if i.stage == "eval"}
    assert st3[("base-a", "gsm8k")] == "forced"


def test_rmx_eval_is_keyed_by_the_pick_node(fixture):
    spec_path, data, store = fixture
    plan = _plan(spec_path, data, store)
    pick = next(i.node for i in plan.items if i.stage == "pick")
    ev = next(i.node for i in plan.items if i.row_id == "base-a-rmx" and i.task == "gsm8k")
    assert ev.inputs == {"adapter": pick} and ev.parts["model"] == plan.items[0].node.parts["model"]
    base_ev = next(i.node for i in plan.items if i.row_id == "base-a" and i.task == "gsm8k")
    assert ev.key != base_ev.key
    # Forcing a training stage forces that node and every node that reads it (evals of the row
    # included), never the base row's cells.
    store.build("eval", ev.key, lambda tmp: None)
    store.build("eval", base_ev.key, lambda tmp: None)
    s3 = {(i.row_id, i.label): i.status for i in _plan(spec_path, data, store, force=["entropy"]).items}
    assert s3[("base-a-rmx", "entropy")] == "run" and s3[("base-a-rmx", "pick")] == "run"
    assert s3[("base-a-rmx", "rollouts")] == "run"  # not forced, just not built yet
    assert s3[("base-a-rmx", "eval gsm8k")] == "forced" and s3[("base-a", "eval gsm8k")] == "cached"


def test_selection_halt_skips_the_rest_of_the_row(fixture):
    spec_path, data, store = fixture
    sel = next(i for i in _plan(spec_path, data, store).items if i.stage == "selection")
    store.build("selection", sel.key, lambda tmp: (tmp / "split.json").write_text(json.dumps({
        "train_ids": [], "halt": "only 1 mixed-success problem"})))
    s = {(i.row_id, i.label): (i.status, i.detail) for i in _plan(spec_path, data, store).items}
    assert s[("base-a-rmx", "selection")] == ("cached", "only 1 mixed-success problem")
    assert s[("base-a-rmx", "entropy")] == ("halted", "only 1 mixed-success problem")
    assert s[("base-a-rmx", "eval gsm8k")][0] == "halted"
    assert s[("base-a", "eval gsm8k")][0] == "run"


def test_keys_change_with_what_matters(fixture, tmp_path):
    spec_path, data, store = fixture
    k0 = {(i.row_id, i.task): i.key for i in _plan(spec_path, data, store).items}
    # Data file change -> only that task's keys change.
    with (data / "gsm8k.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "gsm8k/9", "problem": "x", "answer": "1"}) + "\n")
    k1 = {(i.row_id, i.task): i.key for i in _plan(spec_path, data, store).items}
    assert k1[("base-a", "gsm8k")] != k0[("base-a", "gsm8k")]
    assert k1[("base-a", "tinymath")] == k0[("base-a", "tinymath")]
    # Model weights change -> base keys change, hub RL row keys do not; README does not count.
    (spec_path.parent / "model_a" / "README.md").write_text("changed")
    assert {(i.row_id, i.task): i.key for i in _plan(spec_path, data, store).items} == k1
    (spec_path.parent / "model_a" / "config.json").write_text('{"a": 2}')
    k2 = {(i.row_id, i.task): i.key for i in _plan(spec_path, data, store).items}
    assert k2[("base-a", "tinymath")] != k1[("base-a", "tinymath")]
    assert k2[("base-a-rl", "tinymath")] == k1[("base-a-rl", "tinymath")]
    # Changing a tau: rollouts and entropy keep their keys, the new tau's adapter, the pick and
    # the row's evals get new ones; the base row's cells do not change.
    before = {(i.row_id, i.label): i.key for i in _plan(spec_path, data, store).items}
    spec = yaml.safe_load(spec_path.read_text())
    spec["recipes"]["toy"]["taus"] = [1.0, 3.0]
    spec_path.write_text(yaml.safe_dump(spec))
    after = {(i.row_id, i.label): i.key for i in _plan(spec_path, data, store).items}
    for label in ("pool", "rollouts", "selection", "entropy", "train[tau=1]", "validation[base]"):
        assert after[("base-a-rmx", label)] == before[("base-a-rmx", label)], label
    assert ("base-a-rmx", "train[tau=3]") in after and ("base-a-rmx", "train[tau=2]") not in after
    assert after[("base-a-rmx", "pick")] != before[("base-a-rmx", "pick")]
    assert after[("base-a-rmx", "eval gsm8k")] != before[("base-a-rmx", "eval gsm8k")]
    assert after[("base-a", "eval tinymath")] == before[("base-a", "eval tinymath")]


def test_only_filter_and_unknown_id(fixture):
    spec_path, data, store = fixture
    plan = _plan(spec_path, data, store, only=["base-a-rl"])
    assert {i.row_id for i in plan.selected()} == {"base-a-rl"}
    assert len(plan.items) == 17  # the plan still lists every row
    with pytest.raises(UserError, match="no such row"):
        _plan(spec_path, data, store, only=["nope"])


def test_force_closure():
    analyses = {"reranking", "interventions", "distillation", "tau_curve"}  # they read the picked adapter
    assert force_closure(STAGES, ["entropy"]) == {"entropy", "train", "validation", "pick", "eval", *analyses}
    assert force_closure(STAGES, ["eval"]) == {"eval"}
    assert force_closure(STAGES, ["all"]) == set(STAGES)
    with pytest.raises(UserError, match="allowed"):
        force_closure(STAGES, ["bogus"])


def test_missing_data_file_is_a_user_error(fixture, tmp_path):
    spec_path, _, store = fixture
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="gsm8k.jsonl"):
        _plan(spec_path, empty, store)


def test_spec_data_dir_relative_to_spec(fixture, monkeypatch):
    spec_path, data, _ = fixture
    monkeypatch.delenv("RMXBENCH_DATA_DIR", raising=False)
    spec = load_spec(spec_path)
    spec = spec.model_copy(update={"protocol": spec.protocol.model_copy(update={"data_dir": "../data"})})
    assert SpecContext.of(spec, spec_path).data_dir == data.resolve()


def test_dry_run_cli_imports_no_torch(fixture, tmp_path):
    spec_path, data, store = fixture
    code = ("import sys; from rmxbench.cli import main; "
            f"rc = main(['run', {str(spec_path)!r}, '--dry-run', '--data-dir', {str(data)!r}, "
            f"'--home', {str(store.home)!r}, '--only', 'base-a']); "
            "assert 'torch' not in sys.modules, 'dry run imported torch'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "base-a-rmx" in r.stdout and "validation[tau=2]" in r.stdout and "not selected" in r.stdout
    assert "not pinned" in r.stdout


@pytest.mark.skipif(not (REPO / "specs" / "qwen25.yaml").is_file(), reason="specs/qwen25.yaml not present")
def test_dry_run_qwen25_full_plan_offline(tmp_path):
    code = ("import sys; from rmxbench.cli import main; "
            f"rc = main(['run', {str(REPO / 'specs' / 'qwen25.yaml')!r}, '--dry-run', '--home', {str(tmp_path)!r}]); "
            "assert 'torch' not in sys.modules; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                            "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    spec = load_spec(REPO / "specs" / "qwen25.yaml")
    for _, _, row in spec.rows():
        assert row.id in r.stdout


def test_parallelism_of_the_tiny_spec(tmp_path):
    """specs/tiny.yaml: 14 nodes; the longest chain is the ReasonMaxxer row's pool → rollouts →
    selection → entropy → train → validation → pick → eval (8); at most 3 nodes share a depth
    (the base eval, GRPO and the pool; then the GRPO eval, rollouts and validation[base]); 2 model
    workers (the tiny model, the GRPO checkpoint), the tiny model's with 9 nodes."""
    plan = build_plan(SpecContext.load(REPO / "specs" / "tiny.yaml", home=tmp_path))
    assert plan.parallelism() == (14, 8, 3, 2, 9)


def test_dry_run_with_ray_flags_imports_neither_torch_nor_ray(fixture, tmp_path):
    spec_path, data, store = fixture
    code = ("import sys; from rmxbench.cli import main; "
            f"rc = main(['run', {str(spec_path)!r}, '--dry-run', '--data-dir', {str(data)!r}, "
            f"'--home', {str(store.home)!r}, '--executor', 'ray', '--gpus', '2']); "
            "assert 'torch' not in sys.modules and 'ray' not in sys.modules; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"COLUMNS": "250", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "parallelism: " in r.stdout and "longest chain 8 nodes" in r.stdout


@pytest.mark.parametrize("flags", [["--address", "auto"], ["--gpus", "2"], ["--retries", "0"]])
def test_ray_flags_need_the_ray_executor(fixture, flags, capsys):
    from rmxbench.cli import main

    spec_path, data, store = fixture
    assert main(["run", str(spec_path), "--data-dir", str(data), "--home", str(store.home), *flags]) == 1
    err = capsys.readouterr().err
    assert f"{flags[0]} applies only to --executor ray" in " ".join(err.split())
