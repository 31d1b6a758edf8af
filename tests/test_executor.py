"""The executor seam (issue 16): a plan's nodes become portable build requests (stage, key, config,
input keys, resources from the stage table, model affinity) that survive pickling into another
process; :func:`build_node` (the one function every executor calls) meters where and when a node
ran; the table, not the runner, says which nodes give the board a cell or a section."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from rmxbench.orchestrator.executor import BuildRequest, build_node, request_of, resolve_inputs
from rmxbench.pipeline.graph import Node
from rmxbench.orchestrator.planner import build_plan
from rmxbench.pipeline.stages import STAGES
from rmxbench.pipeline.store import ArtifactStore
from rmxbench.spec.check import load_spec
from rmxbench.spec.context import SpecContext

REPO = Path(__file__).resolve().parents[1]


def _tiny_plan(tmp_path: Path, *, backend: str = "hf", tp: int = 1):
    path = REPO / "specs" / "tiny.yaml"
    spec = load_spec(path)
    p = spec.protocol
    spec = spec.model_copy(update={"protocol": p.model_copy(update={
        "backend": backend, "vllm": p.vllm.model_copy(update={"tensor_parallel_size": tp})})})
    return build_plan(SpecContext.of(spec, path, home=tmp_path))


def test_requests_are_portable_and_carry_input_keys(tmp_path):
    plan = _tiny_plan(tmp_path)
    for node in plan.graph.nodes:
        req = request_of(node, STAGES[node.stage])
        back = pickle.loads(pickle.dumps(req))  # what a worker process receives
        assert isinstance(back, BuildRequest) and back.key == node.key and back.module == STAGES[node.stage].module
        assert back.inputs == {r: (n.stage, n.key) for r, n in node.inputs.items()}
        assert not any(isinstance(v, Node) for v in vars(back).values())


def test_resources_and_affinity_come_from_the_table_and_the_engine(tmp_path):
    """vLLM with tensor-parallel size 2: generating nodes need 2 GPUs, torch-weights nodes
    (entropy, training) 1 and run with their model; pool/selection/pick need none; GRPO loads its
    own model on 1 GPU; the GRPO checkpoint's evaluation is a model of its own."""
    plan = _tiny_plan(tmp_path, backend="vllm", tp=2)
    reqs = {f"{n.row_id} {n.label}": request_of(n, STAGES[n.stage]) for n in plan.graph.nodes}
    gpus = {k: r.gpus for k, r in reqs.items()}
    assert gpus["tiny eval tinymath"] == gpus["tiny-rmx rollouts"] == gpus["tiny-rmx validation[tau=0.3]"] == 2
    assert gpus["tiny-rmx entropy"] == gpus["tiny-rmx train[tau=0.6]"] == 1 and gpus["tiny-grpo grpo"] == 1
    assert gpus["tiny-rmx pool"] == gpus["tiny-rmx selection"] == gpus["tiny-rmx pick"] == 0
    tiny = reqs["tiny eval tinymath"].affinity
    assert tiny and all(reqs[f"tiny-rmx {x}"].affinity == tiny for x in ("rollouts", "entropy", "train[tau=0.3]",
                                                                          "validation[base]", "eval tinymath"))
    assert reqs["tiny-rmx pool"].affinity is None and reqs["tiny-grpo grpo"].affinity is None
    assert reqs["tiny-grpo eval tinymath"].affinity == f"node:{reqs['tiny-grpo grpo'].key}"


def test_the_table_says_what_the_board_gets():
    assert {n for n, s in STAGES.items() if s.board == "record"} == {"eval"}
    assert {n for n, s in STAGES.items() if s.board == "section"} == {"reranking", "interventions", "distillation",
                                                                       "tau_curve"}
    assert callable(STAGES["eval"].load().record)


def test_build_node_meters_where_and_when_a_node_ran(tmp_path):
    """The pool stage through build_node with a worker record: the meter has its start/end time,
    host, pid and worker; a worker without GPUs is metered as a CPU node without asking torch."""
    import sys

    plan = _tiny_plan(tmp_path)
    store = ArtifactStore(tmp_path / "store")
    node = plan.graph.one("tiny-rmx", "pool")
    req = request_of(node, STAGES["pool"])
    had_torch = "torch" in sys.modules
    worker = {"executor": "test", "node_id": "n1", "gpu_ids": [], "cuda_visible_devices": ""}
    out = build_node(req, resolve_inputs(req, store), None, store, worker=worker)
    assert out.built and out.path == store.get("pool", node.key) and out.error is None
    m = json.loads((out.path / "meter.json").read_text())
    assert m["worker"] == worker and m["device"] == "cpu" and m["accelerators"] == 0
    assert m["started_at"] <= m["finished_at"] and m["pid"] > 0 and m["host"]
    assert had_torch or "torch" not in sys.modules  # metering a GPU-free node imported no torch
    again = build_node(req, {}, None, store)  # stored: not built again
    assert not again.built and again.path == out.path


def test_a_cluster_without_enough_gpus_on_one_machine_is_refused_before_any_work(tmp_path):
    """A node that needs more GPUs than any machine has would wait forever: the Ray executor
    refuses the run first, naming the node and how to fix it (tensor-parallel size 2 needs 2)."""
    import pytest

    pytest.importorskip("ray", reason="the `ray` extra is not installed (pip install -e '.[ray]')")
    from rmxbench.errors import UserError
    from rmxbench.orchestrator.ray_executor import check_fits

    plan = _tiny_plan(tmp_path, backend="vllm", tp=2)
    reqs = [request_of(n, STAGES[n.stage]) for n in plan.graph.nodes]
    check_fits(reqs, 2, local=True)
    with pytest.raises(UserError, match=r"needs 2 GPU\(s\) on one machine.*largest machine has 1") as e:
        check_fits(reqs, 1, local=False)
    assert "--num-gpus" in e.value.hint
    with pytest.raises(UserError, match="has no GPU") as e:
        check_fits([r for r in reqs if r.stage == "grpo"], 0, local=True)
    assert "--gpus N" in e.value.hint
    check_fits([r for r in reqs if r.gpus == 0 and r.affinity is None], 0, local=True)  # GPU-free nodes fit anywhere


# ------------------------------------------------------------------ build output (issue 18 item 12)

STAGE_SRC = '''
import logging, os, subprocess, sys, warnings, json
from pathlib import Path

def build(config, inputs, out_dir, env):
    os.write(1, b"vllm-like line on fd 1\\n")
    os.write(2, b"tqdm-like bar on fd 2\\n")
    subprocess.run([sys.executable, "-c", "import sys; print('child stdout'); print('child stderr', file=sys.stderr)"],
                   check=True)  # a child inherits the descriptors (vLLM's engine core process)
    warnings.warn("a third-party warning")
    logging.getLogger("rmxbench.test").warning("an rmxbench notice")
    if config.get("publish_theirs"):  # another builder publishes the key meanwhile (a store without locks)
        final = Path(config["publish_theirs"])
        final.mkdir(parents=True)
        (final / "meter.json").write_text(json.dumps({"stage": "x", "seconds": 99.0, "build_id": "theirs"}))
        (final / "_complete.json").write_text("{}")
    if config.get("fail"):
        raise RuntimeError("the build broke")
    (out_dir / "out.txt").write_text("ok")
'''


def _request(tmp_path, monkeypatch, **config):
    (tmp_path / "mods").mkdir(exist_ok=True)
    (tmp_path / "mods" / "rmx_echo_stage.py").write_text(STAGE_SRC)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    return BuildRequest(stage="pool", module="rmx_echo_stage", key="abc123", row_id="r", label="echo",
                        config=config, inputs={})


def test_a_builds_output_goes_to_its_build_log_and_rmxbench_notices_to_the_terminal(tmp_path, monkeypatch, capfd):
    store = ArtifactStore(tmp_path / "store")
    out = build_node(_request(tmp_path, monkeypatch), {}, None, store)
    log = (out.path / "build.log").read_text()
    for line in ("r echo (pool/abc123)", "vllm-like line on fd 1", "tqdm-like bar on fd 2", "child stdout",
                 "child stderr", "UserWarning: a third-party warning", "WARNING rmxbench.test: an rmxbench notice"):
        assert line in log, (line, log)
    seen = capfd.readouterr()
    assert "an rmxbench notice" in seen.err  # the terminal keeps rmxbench's one-line notices
    assert not any(x in seen.out + seen.err for x in ("vllm-like", "tqdm-like", "child std", "third-party")), seen
    os.write(1, b"after the build\n")  # the descriptors are restored
    assert "after the build" in capfd.readouterr().out and "after the build" not in (out.path / "build.log").read_text()


def test_a_failed_builds_log_is_kept_where_the_error_says(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(RuntimeError, match="the build broke") as info:
        build_node(_request(tmp_path, monkeypatch, fail=True), {}, None, store)
    (note,) = info.value.__notes__
    kept = Path(note.split(": ", 1)[1])
    assert note.startswith("build log of r echo: ") and kept.parent == store.home / "logs" / "failed"
    assert "child stderr" in kept.read_text() and store.get("pool", "abc123") is None
    text = kept.read_text()  # the log says why the build stopped: the error and where it was raised
    assert "stopped by RuntimeError:" in text and "RuntimeError: the build broke" in text, text
    assert "rmx_echo_stage.py" in text.split("stopped by RuntimeError:")[1]


def test_an_artifact_another_builder_published_meanwhile_counts_as_reused(tmp_path, monkeypatch):
    """A store whose locks do not reach every client: the other builder publishes first; this
    build ran, but the folder holds the other's artifact and timing (issue 18 item 9)."""
    store = ArtifactStore(tmp_path / "store")
    out = build_node(_request(tmp_path, monkeypatch, publish_theirs=str(store.path("pool", "abc123"))), {}, None, store)
    assert (out.built, out.seconds) == (False, 0.0) and out.path == store.get("pool", "abc123")
    mine = build_node(_request(tmp_path, monkeypatch), {}, None, ArtifactStore(tmp_path / "store2"))
    assert mine.built and mine.seconds > 0
