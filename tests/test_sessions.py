"""Engine sessions (issue 15): one engine per model, shared by every node that needs it.

- one session serves the base and two LoRA adapters with results identical to three separate
  sessions (greedy and seeded sampling, fp32, embedded model; HF and vLLM);
- the pool's residency policy (reuse, retain/close, sleep on a GPU machine, close what cannot sleep);
- the runner's order keeps a model's nodes together, the dry run counts the engines the run will
  start (about one per distinct model for the paper specs), and ``rmxbench eval --tasks a,b,c
  --adapter X`` starts one engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmxbench.backends.select import vllm_usable
from rmxbench.backends.session import EngineSpec, SessionPool, count_engine_starts, engine_of, open_session
from rmxbench.spec.sampling import Sampling
from rmxbench.spec.schema import ModelRef

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelRef(path="package:embedded/tiny")
STOP = ("\nProblem:",)
VLLM = pytest.param("vllm", marks=[pytest.mark.slow, pytest.mark.skipif(
    not vllm_usable()[0], reason=f"vLLM backend not usable here: {vllm_usable()[1]}")])


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Two different random rank-8 LoRA adapters on the tiny model (they change its completions)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rmxbench.embedded import tiny_model_dir

    out = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
        m = get_peft_model(base, LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False))
        d = tmp_path_factory.mktemp(f"adapter{seed}")
        m.save_pretrained(d)
        out.append(d)
    return out


def _problems(n: int):
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.evaluation.prompts import build_prompt

    rows = load_benchmark("tinymath")[:n]
    return [build_prompt(r["problem"], "tiny_story") for r in rows], [r["id"] for r in rows]


@pytest.mark.parametrize("backend", ["hf", VLLM])
def test_one_session_serves_base_and_two_adapters_like_three_separate_runs(backend, adapters, monkeypatch):
    monkeypatch.setenv("RMXBENCH_THREADS", "1")
    prompts, ids = _problems(12)
    decodings = (Sampling.of(n=1, max_new_tokens=40, stop=STOP),
                 Sampling.of(n=2, temperature=1.0, max_new_tokens=40, seed=5, stop=STOP))
    spec = engine_of(TINY, backend=backend, dtype="float32", max_model_len=256).with_lora_rank(8)
    order = [("base", None), ("a1", adapters[0]), ("a2", adapters[1]), ("base", None), ("a1", adapters[0])]
    seq = lambda outs: [[s.completion_ids for s in x] for x in outs]  # noqa: E731

    pool = SessionPool()
    shared: dict[str, list] = {}
    for who, ad in order:  # switch adapters back and forth on one engine
        s = pool.get(spec)
        got = [seq(s.generate(prompts, d, adapter=ad, request_ids=ids, batch_size=6)) for d in decodings]
        assert shared.setdefault(who, got) == got, f"{who} changed after serving another adapter"
    assert len(pool.started()) == 1 and len(pool.events) == len(order)
    pool.close_all()

    for who, ad in order[:3]:  # three separate engines, one model each
        s = open_session(spec)
        alone = [seq(s.generate(prompts, d, adapter=ad, request_ids=ids, batch_size=6)) for d in decodings]
        s.close()
        assert alone == shared[who], f"{who}: shared session differs from a separate one"
    assert shared["a1"] != shared["base"] and shared["a2"] != shared["a1"]  # the adapters were applied


def test_pool_reuses_retains_and_closes():
    pool = SessionPool(accelerator=False)
    a = engine_of(TINY, backend="hf", dtype="float32")
    b = engine_of(TINY, backend="hf", dtype="bfloat16")  # another dtype: another session
    sa = pool.get(a)
    assert pool.get(a) is sa and pool.get(b) is not sa
    assert [e.started for e in pool.events] == [True, False, True]
    pool.retain({b.key})
    assert list(pool.sessions) == [b.key] and sa.model is None  # closed: weights freed
    assert pool.summary() == "engines started: 2 (models: 1)"
    pool.close_all()
    assert not pool.sessions


def test_gpu_policy_sleeps_other_sessions_and_closes_those_that_cannot_sleep():
    """On a machine with a GPU (``accelerator=True``) only the session in use is awake; a session
    used alongside (an analysis' two models) is not put to sleep; an engine without sleep mode is
    closed (and counted again when it restarts)."""
    pool = SessionPool(accelerator=True)
    a = engine_of(TINY, backend="hf", dtype="float32")
    b = engine_of(TINY, backend="hf", dtype="bfloat16")
    sa = pool.get(a)
    pool.get(b)
    assert pool._asleep == {a.key}
    assert pool.get(a) is sa and pool._asleep == {b.key}  # woken, not restarted
    pool.get(b, alongside=[a.key])
    assert pool._asleep == set()

    class NoSleep:
        def __init__(self, spec, weights=None):
            self.spec, self.closed = spec, False

        def sleep(self):
            return False

        def close(self):
            self.closed = True

    p2 = SessionPool(accelerator=True, opener=NoSleep)
    x, y = EngineSpec(backend="vllm", model="x"), EngineSpec(backend="vllm", model="y")
    sx = p2.get(x)
    p2.get(y)
    assert sx.closed and x.key not in p2.sessions
    p2.get(x)
    assert len(p2.started()) == 3


def _plan(spec_file: str, backend: str | None = None, tmp_path: Path | None = None):
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.spec.check import load_spec
    from rmxbench.spec.context import SpecContext

    spec = load_spec(ROOT / "specs" / spec_file)
    if backend:
        spec = spec.model_copy(update={"protocol": spec.protocol.model_copy(update={"backend": backend})})
    return build_plan(SpecContext.of(spec, ROOT / "specs" / spec_file, home=tmp_path))


def test_schedule_keeps_a_models_nodes_together_and_dry_run_counts_engines(tmp_path):
    """Tiny spec on vLLM: every node of the tiny engine (base eval, rollouts, every validation,
    the ReasonMaxxer eval) runs in one block, with only its training (torch weights) inside;
    the GRPO checkpoint is another model. The dry-run count says 2 engines + 1 torch weights."""
    from rmxbench.backends.session import starts_line
    from rmxbench.pipeline.graph import schedule

    plan = _plan("tiny.yaml", "vllm", tmp_path)
    pos = {id(n): (plan.graph.nodes.index(n),) for n in plan.graph.nodes}
    order = schedule(plan.graph.nodes, pos)
    assert len(order) == len(plan.graph.nodes)
    for i, n in enumerate(order):  # inputs first
        assert all(order.index(x) < i for x in n.inputs.values())
    keys = [n.engine.key for n in order if n.engine is not None and n.engine.role == "engine"]
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(runs) == len(set(keys)) == 2  # each engine's nodes contiguous
    line = starts_line(plan.engine_starts(), planned=True)
    assert line == "engines to start: 2 (models: 2); torch weights to load: 1"
    assert starts_line(_plan("tiny.yaml", "hf", tmp_path).engine_starts(), planned=True) == \
        "engines to start: 2 (models: 2)"  # the HF session is engine and weights at once


def test_paper_spec_dry_run_plans_one_engine_per_model(tmp_path):
    """specs/qwen25.yaml: 120 generating nodes (96 eval, 4 rollouts, 20 validation) on 12 models
    start 12 engines, not 120 (+ the 4 ReasonMaxxer bases' torch weights for entropy/training)."""
    plan = _plan("qwen25.yaml", None, tmp_path)
    gen = [n for n in plan.graph.nodes if n.stage in ("eval", "rollouts", "validation")]
    assert len(gen) == 120
    started = plan.engine_starts()
    engines = [e for e in started if e.role == "engine"]
    assert len(engines) == len({n.engine.model for n in gen}) == 12
    assert len(started) - len(engines) == 4


def test_eval_command_starts_one_engine_for_three_tasks(tmp_path, capsys, adapters):
    from rmxbench.cli import main

    fixtures = ROOT / "tests" / "fixtures" / "bench"
    code = main(["eval", "--model", "package:embedded/tiny", "--tasks", "gsm8k,amc23,tinymath", "--limit", "2",
                 "--adapter", str(adapters[0]), "--data-dir", str(fixtures), "--prompt-style", "tiny_story",
                 "--backend", "hf", "--max-new-tokens", "8", "--dtype", "float32", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "engines started: 1 (models: 1)" in " ".join(out.split())
    engines = {json.loads((tmp_path / t / "record.json").read_text())["provenance"]["engine"]
               for t in ("gsm8k", "amc23", "tinymath")}
    assert len(engines) == 1


def test_eval_command_keeps_third_party_output_in_its_log(tmp_path):
    """``rmxbench eval`` as a user runs it: the terminal gets rmxbench's lines and table; lm-eval's
    notices and progress bars go to ``<out>/eval.log``."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, RMXBENCH_THREADS="1", COLUMNS="160", PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "rmxbench.cli", "eval", "--model", "package:embedded/tiny", "--tasks",
                        "tinymath", "--limit", "3", "--backend", "hf", "--dtype", "float32", "--out", str(tmp_path / "ev")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    shown = p.stdout + p.stderr
    assert "tinymath: evaluating (hf" in shown and "engines started: 1 (models: 1)" in shown
    assert "Custom kwargs" not in shown and "it/s" not in shown and "WARNING" not in shown, shown
    log = (tmp_path / "ev" / "eval.log").read_text()
    assert "rmxbench eval: tinymath" in log and "Custom kwargs" in log


def test_count_engine_starts_is_offline():
    """The dry-run count loads nothing (no torch import needed) and skips nodes without an engine."""
    a, b = EngineSpec(backend="vllm", model="m1"), EngineSpec(backend="vllm", model="m2")
    assert [e.key for e in count_engine_starts([None, a, a, b, None, b])] == [a.key, b.key]
