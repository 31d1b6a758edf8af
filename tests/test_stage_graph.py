"""Adding a stage = one module + one table entry: a test registers a small extra stage that
reads nodes of its own row (``pick``) AND of another row (the base row's ``eval``), and checks
that the planner keys it on its inputs, ``--force`` reaches it, and the runner builds it."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from rmxbench.pipeline.graph import Stage
from rmxbench.orchestrator.planner import build_plan
from rmxbench.orchestrator.runner import Runner
from rmxbench.pipeline.stages import STAGES, register, unregister
from rmxbench.pipeline.store import ArtifactStore
from rmxbench.spec.context import SpecContext

SPEC = {
    "suite": {"name": "graph"},
    "protocol": {"tasks": ["tinymath"], "backend": "hf", "max_new_tokens": 16, "max_model_len": 64,
                 "limit": {"tinymath": 4}},
    "pricing": {"date": "2026-04-28", "source": "test", "usd_per_hour": {"H100-80G": 2.49}},
    "recipes": {"toy": {"pool": {"source": "embedded_train", "size": 8}, "taus": [1.0]}},
    "models": [{"id": "tiny", "display_name": "Tiny", "family": "t", "prompt_style": "tiny_story",
                "model": {"path": "package:embedded/tiny"}, "reasonmaxxer": [{"id": "tiny-rmx", "recipe": "toy"}]}],
}

#: The whole extra stage: what a helper adding e.g. an analysis stage writes.
MODULE = '''
"""Extra stage: score difference of a ReasonMaxxer row vs its base, per task."""
import json
from pathlib import Path

from rmxbench.pipeline.graph import Node


def declare(plan, row, graph):
    if row.kind != "reasonmaxxer":
        return
    for task in plan.spec.protocol.tasks:
        graph.add(Node("delta", row.id, f"delta {task}", config={"task": task}, task=task, parts={"task": task},
                       inputs={"base": graph.one(row.base.id, "eval", label=f"eval {task}"),
                               "other": graph.one(row.id, "eval", label=f"eval {task}"),
                               "adapter": graph.one(row.id, "pick")}))


def build(config, inputs, out_dir, env):
    score = {r: json.loads((inputs[r] / "record.json").read_text())["score"] for r in ("base", "other")}
    (Path(out_dir) / "delta.json").write_text(json.dumps({"task": config["task"],
                                                          "delta": score["other"] - score["base"]}))
'''


@pytest.fixture
def extra_stage(tmp_path, monkeypatch):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "rmx_extra_delta.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    register(Stage("delta", "rmx_extra_delta", "delta-1", after=("eval", "pick"), artifact="`delta.json`"))
    yield
    unregister("delta")


def _plan(tmp_path, **kw):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    store = ArtifactStore(tmp_path / "home")
    return build_plan(SpecContext.load(spec_path, home=store.home), store=store, **kw), store


def test_registered_stage_is_planned_keyed_forced_and_built(tmp_path, extra_stage):
    assert list(STAGES)[-1] == "delta"
    plan, store = _plan(tmp_path)
    delta = next(i.node for i in plan.items if i.stage == "delta")
    ev = {n.row_id: n for n in plan.graph.find(stage="eval")}
    assert delta.row_id == "tiny-rmx" and delta.inputs["base"] is ev["tiny"] and delta.inputs["other"] is ev["tiny-rmx"]
    assert delta.inputs["adapter"] is plan.graph.one("tiny-rmx", "pick")
    assert delta.key == store.key("delta", code="delta-1", task="tinymath",
                                  inputs={"base": ev["tiny"].key, "other": ev["tiny-rmx"].key,
                                          "adapter": delta.inputs["adapter"].key})
    # Inputs exist (fake artifacts at their planned keys): the runner builds only the new node.
    for n, score in ((ev["tiny"], 0.25), (ev["tiny-rmx"], 0.75)):
        store.build("eval", n.key, lambda tmp, s=score: (tmp / "record.json").write_text(json.dumps({"score": s})))
    store.build("pick", delta.inputs["adapter"].key, lambda tmp: (tmp / "adapter_config.json").write_text("{}"))
    plan, store = _plan(tmp_path)
    delta = next(i for i in plan.items if i.stage == "delta")
    assert delta.status == "run"
    summary = Runner(plan, console=None).run_nodes([delta.node])
    assert [label for label, _ in summary.built] == ["tiny-rmx delta tinymath"]
    out = store.get("delta", delta.key)
    assert json.loads((out / "delta.json").read_text()) == {"task": "tinymath", "delta": 0.5}
    # --force eval reaches the stage that reads the evals; the base row's eval is forced, not pick.
    s = {(i.row_id, i.label): i.status for i in _plan(tmp_path, force=["eval"])[0].items}
    assert s[("tiny-rmx", "delta tinymath")] == "forced" and s[("tiny", "eval tinymath")] == "forced"
    assert s[("tiny-rmx", "pick")] == "cached"


def test_register_rejects_unknown_dependencies_and_duplicates():
    with pytest.raises(ValueError, match="unknown"):
        register(Stage("x", "m", "x-1", after=("nope",)))
    with pytest.raises(ValueError, match="already"):
        register(Stage("eval", "m", "x-1"))
