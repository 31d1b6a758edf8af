"""The cost estimate (issue 20) without running models: the GPU table, model sizes from local files,
GGUF, the hub cache and the spec's ``params``; the time model's physics; the work each stage
declares; calibration from a store's meters; ``--dry-run --json``; the budget guard refusing before
anything is loaded; "size unknown" / "no estimate" labels; the board's cost provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from rmxbench.estimate import cost_model
from rmxbench.estimate.hardware import lookup
from rmxbench.estimate.model_size import ModelSize, count_from_config, hub_size, local_size, model_size, online_allowed
from rmxbench.estimate.work import Generation, Sequences, Work
from rmxbench.estimate.calibration import Calibration, Sample, sample_of
from rmxbench.orchestrator.estimate import estimate_plan
from rmxbench.orchestrator.planner import build_plan
from rmxbench.spec.context import SpecContext
from rmxbench.spec.schema import ModelRef

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "rmxbench" / "embedded" / "tiny"


def _spec(tmp: Path, update=None, name: str = "spec") -> Path:
    d = yaml.safe_load((REPO / "specs" / "tiny.yaml").read_text())
    if update:
        update(d)
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def _plan(spec: Path, home: Path, **kw):
    return build_plan(SpecContext.load(spec, home=str(home)), **kw)


# ----------------------------------------------------------------------------- hardware and sizes


def test_gpu_table_and_name_rule():
    rtx = lookup("RTX-Pro-6000")
    assert (rtx.bf16_tflops, rtx.bandwidth_gbs, rtx.memory_gb) == (500, 1792, 96)
    assert lookup("H100-SXM").bf16_tflops == pytest.approx(1979 / 2, rel=1e-3)
    assert lookup("H100-80G").key == "H100-PCIe"  # the ambiguous RunPod name: the slower card
    assert lookup("NVIDIA RTX PRO 6000 Blackwell Server Edition").key == "RTX-Pro-6000"
    assert lookup("NVIDIA A100-SXM4-80GB").key == "A100-SXM"
    assert lookup("TPU-v5e") is None
    cpu = lookup(None)
    assert cpu.key == "CPU" and not cpu.gpu and cpu.memory_gb is None


def test_tiny_size_from_safetensors_headers_equals_the_architecture_count():
    size = local_size(TINY, None, home=None, key=None)
    assert size.params == 837_760 and size.dtype_bytes == 4.0  # float32 tensors
    assert (size.layers, size.hidden, size.kv_dim) == (4, 128, 64)
    cfg = json.loads((TINY / "config.json").read_text())
    assert count_from_config(cfg) == size.params  # embeddings tied, q/k/v biases (qwen2)
    assert size.kv_bytes_per_token("float32") == 2 * 4 * 64 * 4


def test_config_only_folder_is_counted(tmp_path):
    cfg = json.loads((TINY / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "tie_word_embeddings": False}))
    size = local_size(tmp_path, None, home=None, key=None)
    assert size.params == 837_760 + 384 * 128 and "counted from the architecture" in size.source


@pytest.mark.slow
def test_gguf_size_is_read_once_then_cached(shared_dir, tmp_path):
    folder = shared_dir / "models" / "smollm2-135m-instruct"
    size = local_size(folder, "SmolLM2-135M-Instruct.Q4_1.gguf", home=tmp_path, key="abc")
    assert size.params == 134_515_008 and (size.layers, size.hidden, size.kv_dim) == (30, 576, 192)
    assert (tmp_path / "model_meta" / "abc.json").is_file()
    again = local_size(Path("/nonexistent"), "x.gguf", home=tmp_path, key="abc")  # from the store's cache
    assert again == size


def test_hub_size_offline_cache_and_hf_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc
    from safetensors.numpy import save_file
    import numpy as np

    monkeypatch.delenv("RMXBENCH_ONLINE", raising=False)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    rev = "a" * 40
    assert hub_size("org/model", rev, home=tmp_path / "home", key="k1") is None  # offline, nothing cached
    # a snapshot of that revision in the local Hugging Face cache: config + safetensors headers
    snap = tmp_path / "hf" / "models--org--model" / "snapshots" / rev
    snap.mkdir(parents=True)
    (snap / "config.json").write_text((TINY / "config.json").read_text())
    save_file({"w": np.zeros((1000, 3), dtype=np.float16), "b": np.zeros((7,), dtype=np.float16)},
              str(snap / "model.safetensors"))
    size = hub_size("org/model", rev, home=tmp_path / "home", key="k1")
    assert size.params == 3007 and size.dtype_bytes == 2.0 and "local Hugging Face cache" in size.source
    # ... and remembered in the store: later dry-runs need neither cache
    assert json.loads((tmp_path / "home" / "model_meta" / "k1.json").read_text())["params"] == 3007
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert hub_size("org/model", rev, home=tmp_path / "home", key="k1").params == 3007


def test_online_lookups_need_the_switch_and_respect_hf_offline(monkeypatch):
    monkeypatch.delenv("RMXBENCH_ONLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert not online_allowed()
    monkeypatch.setenv("RMXBENCH_ONLINE", "1")
    assert online_allowed()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not online_allowed()


def test_spec_params_field(tmp_path):
    ref = ModelRef(repo="Qwen/Qwen2.5-1.5B", revision="main", params=1.54e9)
    size = model_size(ref, spec_dir=tmp_path, home=tmp_path, key="nothing-cached")
    assert size.params == 1.54e9 and "spec field `params" in size.source
    assert size.layers is None and size.kv_bytes_per_token() == 2 * 28 * 1024 * 2  # assumed: 28 layers, 8 KV heads
    for bad in (0, -1, True, 1e14):
        with pytest.raises(ValidationError):
            ModelRef(repo="a/b", revision="main", params=bad)
    assert model_size(ModelRef(repo="a/b", revision="main"), spec_dir=tmp_path, home=tmp_path, key="none") is None


# ----------------------------------------------------------------------------- the time model


SIZE_15B = ModelSize(1.54e9, 2.0, layers=28, hidden=1536, kv_dim=256)


def test_single_sequence_decoding_is_weight_bandwidth_bound():
    """One sequence on an H100 SXM: every token reads the 3.08 GB of bf16 weights, at the vLLM profile's
    50% of 3.35 TB/s: 1.84 ms per token (+ a small KV read)."""
    hw = lookup("H100-SXM")
    _, decode, toks, _ = cost_model.generation_seconds(Generation(1, 1, 100, 1000), 1000, SIZE_15B, hw, backend="vllm")
    assert toks == 1000
    per_token = decode / 1000
    assert 3.08e9 / (3350e9 * 0.5) < per_token < 1.05 * 3.08e9 / (3350e9 * 0.5)


def test_batching_amortises_weights_and_hf_is_slower_than_vllm():
    hw = lookup("RTX-Pro-6000")
    one = cost_model.generation_seconds(Generation(1, 1, 100, 512), 512, SIZE_15B, hw, backend="vllm")[1]
    many = cost_model.generation_seconds(Generation(256, 1, 100, 512), 512, SIZE_15B, hw, backend="vllm")[1]
    assert many < 20 * one  # 256 sequences cost far less than 256 single ones
    hf = cost_model.generation_seconds(Generation(256, 1, 100, 512, batch=16), 512, SIZE_15B, hw, backend="hf")[1]
    assert hf > 5 * many


def test_scoring_and_training_flops():
    hw = lookup("H100-SXM")
    seq = Sequences(10, 100.0, 100, origin="x")
    w = Work("entropy", model=None, scored=(seq,))
    b = cost_model.seconds(w, ModelSize(1e9, 2.0, layers=10, hidden=1000, kv_dim=100), hw, mean_new=lambda v, c: 100.0)
    flops = 10 * 200 * (2e9 + 4 * 10 * 1000 * 100)  # tokens x (2N + attention at the mean context 100)
    assert b.flops == pytest.approx(flops) and b.scored == pytest.approx(flops / (989.5e12 * cost_model.MFU_FORWARD))
    full = cost_model.seconds(Work("t", trained=(seq,), full_finetune=True), SIZE_15B, hw).trained
    lora = cost_model.seconds(Work("t", trained=(seq,)), SIZE_15B, hw).trained
    assert full / lora == pytest.approx(6 / 4 * cost_model.MFU_TRAIN_LORA / cost_model.MFU_TRAIN_FULL)


def test_selected_share_and_upper_bound():
    hw = lookup("H100-SXM")
    w = Work("train", trained=(Sequences(1000, 150.0, 1024, max_len=2048),))
    half = cost_model.seconds(w, SIZE_15B, hw, share=0.5).trained
    assert half == pytest.approx(cost_model.seconds(w, SIZE_15B, hw).trained / 2)
    g = Work("rollouts", generations=(Generation(150, 20, 150, 1024),))
    assert cost_model.seconds(g, SIZE_15B, hw, backend="vllm", mean_new=lambda v, c: float(c)).total > \
        cost_model.seconds(g, SIZE_15B, hw, backend="vllm", mean_new=lambda v, c: 300.0).total


# ----------------------------------------------------------------------------- stages' work


def test_stages_declare_their_work(tmp_path):
    plan = _plan(REPO / "specs" / "tiny.yaml", tmp_path)
    works = {(n.row_id, n.label): plan.table[n.stage].load().work(n.config, n.inputs) for n in plan.graph.nodes}
    ro = works[("tiny-rmx", "rollouts")].generations[0]
    assert (ro.prompts, ro.samples, ro.max_new_tokens, ro.batch) == (96, 8, 64, 96 * 8)
    tr = works[("tiny-rmx", "train[tau=0.3]")]
    assert tr.trained[0].count == 64 * 8 and tr.trained[0].max_len == 256 and not tr.full_finetune
    assert works[("tiny-rmx", "validation[tau=0.3]")].variant == "validation:adapter"
    assert works[("tiny-rmx", "validation[base]")].variant == "validation"
    ev = works[("tiny", "eval tinymath")]
    assert ev.variant == "eval" and ev.generations[0].prompts == 500  # the embedded test split
    assert works[("tiny-rmx", "eval tinymath")].variant == "eval:adapter"
    g = works[("tiny-grpo", "grpo")]
    # 12 steps x 32 completions, generated once each (μ = 1), 8 prompts x G=4 per step
    assert g.variant == "grpo:full" and g.full_finetune and g.trained[0].count == 12 * 32
    assert (g.generations[0].prompts, g.generations[0].samples, g.generations[0].max_new_tokens) == (96, 4, 64)
    assert g.model_loads == 1 and g.engine_starts == 0  # beta 0: no reference model; HF generation on a CPU
    assert not works[("tiny-rmx", "pool")].uses_model


# ----------------------------------------------------------------------------- calibration


def test_calibration_fit_ratios_of_sums():
    s = [Sample("eval", "eval a", "eval", "eval", "CPU", "m", 12.0, 10.0, 5.0, False, starts_measured=4.0,
                starts_modelled=2.0, completions=10, completion_tokens=300.0),
         Sample("eval", "eval b", "eval:adapter", "eval", "CPU", "m", 30.0, 30.0, 10.0, False, completions=10,
                completion_tokens=500.0),
         Sample("pool", "pool", "pool", "pool", "CPU", None, 0.4, 0.4, 0.0, True),
         Sample("pool", "pool", "pool", "pool", "CPU", None, 0.6, 0.6, 0.0, True)]
    cal = Calibration(samples=s).fit()
    assert cal.factor("eval", "CPU") == (2.0, 1, "eval")
    assert cal.factor("eval:adapter", "CPU") == (3.0, 1, "eval:adapter")
    assert cal.factor("eval:other", "CPU") == (40 / 15, 2, "eval:*")  # falls back to the group
    assert cal.factor("eval", "H100-SXM") is None
    assert cal.start_factors[("CPU", False)] == (2.0, 1)
    assert cal.fixed[("pool", "CPU")] == (0.5, 2)
    assert cal.mean_new("m")("eval", 64) == 30.0 and cal.mean_new("m")("eval", 20) == 20.0
    assert cal.mean_new("other")("eval", 4096) == cost_model.DEFAULT_COMPLETION_TOKENS


def test_sample_uses_cpu_time_and_takes_engine_starts_out():
    size = ModelSize(1e6, 4.0, layers=4, hidden=128, kv_dim=64)
    work = Work("eval", generations=(Generation(100, 1, 50, 64, batch=64),), dtype="float32")
    meter = {"device": "cpu", "seconds": 99.0, "node_seconds": 120.0, "node_cpu_seconds": 30.0,
             "engines": [{"key": "hf|model:x|float32|False|256", "backend": "hf", "started": True,
                          "seconds": 20.0, "cpu_seconds": 6.0, "cold": True}], "completion_tokens": 4000}
    s = sample_of("eval", meter, work, size, "model:x")
    assert s.hw == "CPU" and s.measured == 30.0 and s.starts_measured == 6.0 and s.cold_start
    # a cold start is modelled with the library imports: the backend's import seconds on top
    assert s.starts_modelled == pytest.approx(cost_model.load_seconds(size, backend="hf", gpu=False, dtype="float32")
                                              + 8.0)
    assert s.measured_compute == pytest.approx(24.0)
    assert s.completion_tokens == 4000 and s.completions == 100


def test_recorded_meters_calibrate_the_next_estimate(tmp_path):
    """A store holding one finished eval node whose meter recorded its work: the next plan's eval node
    of the same variant and hardware is scaled by measured ÷ modelled of that node."""
    spec = _spec(tmp_path, lambda d: d["models"][0].update(rl_baselines=[], reasonmaxxer=[]))
    home = tmp_path / "home"
    plan = _plan(spec, home)
    (node,) = [n for n in plan.graph.nodes if n.stage == "eval"]
    before = estimate_plan(plan).of(node)
    assert before.status == "estimated" and not before.calibrated
    rec = before.record(lookup(None), 1)
    modelled = before.breakdown.compute
    art = home / "eval" / ("f" * 20)
    art.mkdir(parents=True)
    (art / "_complete.json").write_text("{}")
    (art / "meter.json").write_text(json.dumps({"stage": "eval tinymath", "device": "cpu", "seconds": 1.0,
                                                "node_cpu_seconds": 7 * modelled, "estimate": rec}))
    plan2 = _plan(spec, home)
    after = estimate_plan(plan2).of(next(n for n in plan2.graph.nodes if n.stage == "eval"))
    assert after.calibrated and after.factor == pytest.approx(7.0, rel=1e-6)
    assert after.breakdown.compute == pytest.approx(modelled)
    assert after.seconds == pytest.approx(7 * modelled + after.start_seconds)  # + its (uncalibrated) engine start
    assert after.start_seconds > 0 and len(after.starts) == 1 and after.starts[0].cold  # the run's first start


# ----------------------------------------------------------------------------- CLI: dry-run, budgets


def _cli(args: list[str], home: Path, tmp: Path, *, check_torch: bool = True) -> subprocess.CompletedProcess:
    code = ("import sys; from rmxbench.cli import main; "
            f"rc = main({args!r}); "
            + ("assert 'torch' not in sys.modules, 'imported torch'; " if check_torch else "")
            + "sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(tmp), "PYTHONPATH": str(REPO),
                               "RMXBENCH_HOME": str(home), "RMXBENCH_THREADS": "1", "HF_HUB_OFFLINE": "1"})


def test_dry_run_json_has_an_estimate_per_row_and_imports_no_torch(tmp_path):
    r = _cli(["run", str(REPO / "specs" / "tiny.yaml"), "--dry-run", "--json"], tmp_path / "home", tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    est = out["estimate"]
    assert est["unit"] == "CPU-h" and est["hardware"] == "CPU" and est["total"]["usd"] is None
    assert {x["row"] for x in est["rows"]} == {"tiny", "tiny-grpo", "tiny-rmx"}
    assert all(x["seconds"] > 0 and x["estimated"] == x["nodes"] for x in est["rows"])
    rollouts = next(i for i in out["items"] if i["label"] == "rollouts")
    assert rollouts["estimate"]["status"] == "estimated" and rollouts["key"]
    assert sum(x["seconds"] for x in est["rows"]) == pytest.approx(est["total"]["seconds"])
    assert not (tmp_path / "home" / "eval").exists()  # nothing built


def _gpu_tiny(tmp: Path) -> Path:
    return _spec(tmp, lambda d: d["pricing"].update(hardware={"gpu_type": "RTX-Pro-6000", "count": 1}), "gputiny")


def test_max_usd_refuses_before_loading_anything(tmp_path):
    home = tmp_path / "home"
    r = _cli(["run", str(_gpu_tiny(tmp_path)), "--max-usd", "0.0000001"], home, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr
    assert "over the budget --max-usd" in err and "nothing was started" in err and "tiny-rmx" in err
    assert err.index("tiny-grpo") < err.index("tiny-rmx")  # biggest row first (GRPO: 12 steps of full fine-tuning)
    assert not any((home / s).exists() for s in ("eval", "rollouts", "grpo", "pool"))
    r = _cli(["run", str(_gpu_tiny(tmp_path)), "--dry-run", "--max-gpu-hours", "1e-9"], home, tmp_path)
    assert r.returncode == 1 and "--max-gpu-hours" in r.stderr
    r = _cli(["run", str(REPO / "specs" / "tiny.yaml"), "--max-cpu-hours", "1e-9"], home, tmp_path)
    assert r.returncode == 1 and "CPU-hours" in r.stderr
    # the refusal is the whole output (one screen), also under --dry-run
    assert r.stdout == "" and len(r.stderr.splitlines()) < 25, r.stdout + r.stderr
    # a CPU-only spec has no USD figure: --max-usd cannot be checked, so it refuses instead of passing
    r = _cli(["run", str(REPO / "specs" / "tiny.yaml"), "--dry-run", "--max-usd", "0.0000001"], home, tmp_path)
    assert r.returncode == 1 and "--max-cpu-hours" in r.stderr and "no USD" in r.stderr and r.stdout == ""
    assert not any((home / s).exists() for s in ("eval", "rollouts", "grpo", "pool"))


@pytest.mark.slow
def test_max_usd_lets_an_in_budget_plan_run(tmp_path):
    home = tmp_path / "home"
    r = _cli(["run", str(_gpu_tiny(tmp_path)), "--max-usd", "100", "--only", "tiny", "--out", str(tmp_path / "lb")],
             home, tmp_path, check_torch=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (tmp_path / "lb" / "tiny.md").is_file()
    nodes = json.loads((home / "runs" / "tiny" / "estimates.json").read_text())
    (ev,) = [n for n in nodes if n["built_now"]]
    assert ev["estimate"]["hardware"] == "RTX-Pro-6000" and ev["measured"]["device"] == "cpu"


def test_unknown_sizes_and_stages_without_work_are_labelled(tmp_path, monkeypatch):
    def upd(d):
        d["models"][0]["rl_baselines"] = [{"id": "tiny-ckpt", "display_name": "+ ckpt", "algorithm": "GRPO",
                                          "source": "x", "model": {"repo": "org/ckpt", "revision": "main"}}]
        d["models"].append({"id": "hub", "display_name": "Hub", "family": "h", "prompt_style": "tiny_story",
                            "model": {"repo": "org/base", "revision": "main"}})
    plan = _plan(_spec(tmp_path, upd), tmp_path / "home", only=("tiny-ckpt", "hub"))
    est = estimate_plan(plan)
    (hub,) = [n for r in est.rows if r.row_id == "hub" for n in r.nodes]
    assert hub.status == "size unknown" and "set `params`" in hub.basis and hub.seconds is None
    (ck,) = [n for r in est.rows if r.row_id == "tiny-ckpt" for n in r.nodes]
    assert ck.status == "estimated" and "the base model's size" in ck.basis  # an RL checkpoint of the tiny base
    an_plan = _plan(REPO / "specs" / "tiny_analyses.yaml", tmp_path / "home2")
    an = estimate_plan(an_plan)
    by_stage = {n.node.stage: n for r in an.rows for n in r.nodes}
    assert all(by_stage[s].status == "estimated" for s in ("reranking", "interventions", "distillation", "tau_curve"))
    # tau_curve decodes the test problems once per swept τ adapter (+ the base, + the RL reference)
    tc = by_stage["tau_curve"]
    sweeps = sum(len(n.config.recipe.taus) for role, n in tc.node.inputs.items() if role.startswith("sweep["))
    assert sweeps >= 2 and tc.work.generations[0].prompts == 200 * (1 + sweeps + 1)
    import rmxbench.stages.reranking as rr

    monkeypatch.delattr(rr, "work")  # a stage that declares no work
    labels = {n.status for r in estimate_plan(an_plan).rows for n in r.nodes if n.node.stage == "reranking"}
    assert labels == {"no estimate"}


def test_board_cost_provenance_shows_estimate_and_measurement():
    from rmxbench.board.text import estimate_provenance
    from rmxbench.orchestrator.estimate_report import row_estimate

    meters = {None: {"rollouts": {"device": "cpu", "seconds": 9.0, "node_cpu_seconds": 6.0,
                                  "estimate": {"seconds": 4.0, "calibrated": True, "hardware": "CPU"}},
                     "pool": {"device": "cpu", "seconds": 1.0}}}
    e = row_estimate(meters)
    assert e == {"estimated_seconds": 4.0, "measured_seconds": 6.0, "unit": "cpu_seconds", "hardware": "CPU",
                 "nodes": 1, "of_nodes": 2, "calibrated": 1, "seeds": None, "measured_over_estimated": 1.5}
    items = dict(estimate_provenance(e))
    assert items["measured ÷ estimated"] == "1.50×" and "1 of 2 training nodes" in items["estimated before the run"]
    # a row with training seeds (issue 19) is priced as the mean per seed: so is its estimate
    seeded = {0: meters[None], 1: {"rollouts[seed=1]": {"device": "cpu", "seconds": 5.0, "node_cpu_seconds": 2.0,
                                                        "estimate": {"seconds": 4.0, "hardware": "CPU"}}}}
    e = row_estimate(seeded)
    assert (e["estimated_seconds"], e["measured_seconds"], e["nodes"], e["of_nodes"], e["seeds"]) == (4.0, 4.0, 2, 3, 2)
    assert e["measured_over_estimated"] == 1.0
    assert "of 2 training seeds; mean per seed" in dict(estimate_provenance(e))["estimated before the run"]


def test_a_build_that_times_its_loop_calibrates_loop_and_set_up_apart():
    """GRPO records its training loop's seconds: the factor compares only the loop with the modelled
    compute, the rest is set-up (imports, loading, saving), so a 3-step run predicts a 6-step one."""
    size = ModelSize(1e6, 4.0, layers=4, hidden=128, kv_dim=64)
    gen = Generation(24, 4, 50, 64, batch=32)
    w3 = Work("grpo:full", generations=(gen,), trained=(Sequences(96, 50.0, 64, origin="grpo:full"),),
              full_finetune=True, model_loads=1, fixed_seconds=10.0)
    meter = {"device": "cpu", "seconds": 13.0, "node_cpu_seconds": 12.0, "work_cpu_seconds": 2.0}
    s = sample_of("grpo", meter, w3, size, "model:x")
    assert s.measured_compute == 2.0 and s.overhead == 10.0
    cal = Calibration(samples=[s]).fit()
    assert cal.setup("grpo:full", "CPU") == (10.0, 1)
    f = cal.factor("grpo:full", "CPU")[0]
    w6 = Work("grpo:full", generations=(Generation(48, 4, 50, 64, batch=32),),
              trained=(Sequences(192, 50.0, 64, origin="grpo:full"),), full_finetune=True, model_loads=1)
    b6 = cost_model.seconds(w6, size, lookup(None))
    assert f * b6.compute == pytest.approx(4.0, rel=1e-6)  # twice the steps: twice the loop, same set-up


def test_a_seeded_row_costs_one_chain_per_seed_and_the_wall_clock_follows_the_critical_path(tmp_path):
    """Training seeds (issue 19): ``seeds: [0, 1, 2]`` on the GRPO and ReasonMaxxer rows gives three chains
    of nodes, each estimated like the unseeded chain (seed 0 = the recipe's own: the same keys), so the
    rows' training estimates triple. The executor changes no node's estimate; the least wall-clock with
    parallel workers is the heaviest chain of dependent nodes (or the busiest model's nodes)."""
    def seeded(d):
        d["models"][0]["rl_baselines"][0]["seeds"] = [0, 1, 2]
        d["models"][0]["reasonmaxxer"][0]["seeds"] = [0, 1, 2]

    plain = estimate_plan(_plan(_spec(tmp_path, name="plain"), tmp_path / "h1"))
    three = estimate_plan(_plan(_spec(tmp_path, seeded, name="seeded"), tmp_path / "h2"))
    p_rows, s_rows = {r.row_id: r for r in plain.rows}, {r.row_id: r for r in three.rows}
    for row in ("tiny-grpo", "tiny-rmx"):
        assert len(s_rows[row].nodes) == 3 * len(p_rows[row].nodes)
        assert all(n.status == "estimated" for n in s_rows[row].nodes)
        seeds = {n.node.seed for n in s_rows[row].nodes}
        assert seeds == {0, 1, 2}
        # each seed's chain is priced like the row without seeds (engine starts aside: charged once per model)
        def work(r):
            return sum(n.seconds - n.start_seconds for n in r.nodes)
        assert work(s_rows[row]) == pytest.approx(3 * work(p_rows[row]), rel=1e-6)
    assert s_rows["tiny"].seconds == pytest.approx(p_rows["tiny"].seconds, rel=1e-6)  # no seeds: unchanged
    serial, parallel = three.wall_clock()
    assert serial == pytest.approx(three.seconds)
    # the heaviest chain of dependent nodes, walked here in graph order (a node's inputs come before it)
    finish: dict[str, float] = {}
    for n in three.plan.graph.nodes:
        if n.key in three.nodes:
            finish[n.key] = three.nodes[n.key].seconds + max((finish.get(i.key, 0.0) for i in n.inputs.values()),
                                                             default=0.0)
    by_model: dict = {}  # nodes of one model run one after another in its worker
    for e in three.nodes.values():
        if e.node.engine is not None:
            by_model[e.node.engine.model] = by_model.get(e.node.engine.model, 0.0) + e.seconds
    assert parallel == pytest.approx(max(max(finish.values()), max(by_model.values())), rel=1e-9)
    assert max(finish.values()) < parallel < serial  # here the base model's nodes bound the run
