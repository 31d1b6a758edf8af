"""End-to-end evaluation through lm-eval with a real (tiny) model on local JSONL fixtures.

- avg@8: every one of the 8 sampled completions is graded and counted (a problem whose first
  sample is wrong and a later one right scores strictly between 0 and 1; first-sample-only
  scoring would give 0);
- pass@1 outputs (results.json, samples.jsonl, record.json with provenance);
- ``lm_eval --include_path tasks`` (plain lm-eval CLI) and ``rmxbench eval`` (our CLI).

The model is the embedded tiny model (rmxbench/embedded/tiny); its quality does not matter here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rmxbench.spec.schema import AvgAtK, ModelRef, Protocol

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
TINY = ModelRef(path="package:embedded/tiny")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _threads(monkeypatch):
    import torch

    torch.set_num_threads(2)
    monkeypatch.delenv("RMXBENCH_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def hf_session():
    """One HF session of the tiny model for every evaluation of this module (as a run shares it)."""
    from rmxbench.backends.session import engine_of, open_session

    s = open_session(engine_of(TINY, backend="hf", dtype="float32", max_model_len=256))
    yield s
    s.close()


def _evaluate(session, task, *, dtype=None, trust_remote_code=None, **kw):
    """:func:`evaluate_task` on ``session`` (``dtype``/``trust_remote_code`` are the session's)."""
    from rmxbench.evaluation.lmeval import evaluate_task

    return evaluate_task(session, task, model_ref=TINY, **kw)


def _samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def _avg_protocol() -> Protocol:
    return Protocol(tasks=["amc23"], avg_at_k=AvgAtK(k=8, temperature=1.0, top_p=1.0, tasks=["amc23"]),
                    max_new_tokens=24, max_model_len=256, backend="hf", batch_size=8, seed=7)


def test_avg8_counts_all_eight_samples(tmp_path, hf_session):
    """Phase 1 samples 8 completions per problem. Phase 2 reruns with the same seed on a copy of the
    data whose gold answer is one that a later sample (not the first) produced: the problem's
    avg@8 must then be strictly between 0 and 1 while its first sample is wrong."""
    from rmxbench.evaluation.grading import grade

    p = _avg_protocol()
    kw = dict(protocol=p, prompt_style="tiny_story", chat_template=False, dtype="float32",
              trust_remote_code=False, row_id="tiny")
    r1 = _evaluate(hf_session, "amc23", data_dir=FIXTURES, out_dir=tmp_path / "p1", **kw)
    s1 = _samples(tmp_path / "p1")
    assert r1.k == 8 and r1.metric == "avg@8" and len(s1) == 8 * r1.n_problems
    by_id: dict[str, list[dict]] = {}
    for s in s1:
        by_id.setdefault(s["id"], []).append(s)
    assert all([s["sample"] for s in v] == list(range(8)) for v in by_id.values())

    # choose a problem and a gold answer produced by some later sample but not by sample 0
    choice = None
    for pid, ss in by_id.items():
        later = Counter(s["extracted"] for s in ss[1:] if s["extracted"] is not None
                        and not grade(ss[0]["completion"], s["extracted"], task="amc23").correct)
        if later:
            choice = (pid, later.most_common(1)[0][0])
            break
    assert choice is not None, "model produced no varied answers; cannot build the check"
    pid, gold = choice
    ddir = tmp_path / "data"
    ddir.mkdir()
    rows = [json.loads(line) for line in (FIXTURES / "amc23.jsonl").read_text().splitlines()]
    for r in rows:
        if r["id"] == pid:
            r["answer"] = gold
    (ddir / "amc23.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    r2 = _evaluate(hf_session, "amc23", data_dir=ddir, out_dir=tmp_path / "p2", **kw)
    s2 = _samples(tmp_path / "p2")
    assert [s["completion"] for s in s2] == [s["completion"] for s in s1], "sampling not reproducible"
    verdicts = r2.per_problem[pid]
    regraded = [grade(s["completion"], gold, task="amc23").correct for s in s2 if s["id"] == pid]
    assert verdicts == regraded and len(verdicts) == 8
    print(f"\n{pid} gold={gold!r} verdicts={verdicts} extracted={[s['extracted'] for s in s2 if s['id'] == pid]}")
    assert verdicts[0] is False and 0 < sum(verdicts) < 8
    all_v = [v for vs in r2.per_problem.values() for v in vs]
    assert r2.score == pytest.approx(sum(all_v) / len(all_v))
    first_only = sum(vs[0] for vs in r2.per_problem.values()) / r2.n_problems
    print(f"avg@8={r2.score:.4f} first-sample accuracy={first_only:.4f} extra={r2.extra}")
    assert r2.score != pytest.approx(first_only)
    res = json.loads((tmp_path / "p2" / "results.json").read_text())["results"]["rmx_amc23"]
    assert res["avg@8,graded"] == pytest.approx(r2.score)
    assert res["rmx_graded,graded"] == 8 * r2.n_problems
    assert r2.extra["pass@8"] >= r2.score


def test_pass1_outputs_and_provenance(tmp_path, hf_session):
    from rmxbench.evaluation.grading import GRADER_VERSION
    from rmxbench.results import TaskRecord

    p = Protocol(tasks=["gsm8k"], max_new_tokens=16, max_model_len=256, backend="hf", limit={"gsm8k": 2})
    rec = _evaluate(hf_session, "gsm8k", protocol=p, prompt_style="tiny_story", chat_template=False,
                    data_dir=FIXTURES, out_dir=tmp_path, row_id="tiny")
    assert rec.metric == "pass@1" and rec.k == 1 and rec.n_problems == 2
    assert list(rec.per_problem) == ["gsm8k/0000", "gsm8k/0001"]
    s = _samples(tmp_path)
    assert len(s) == 2 and s[0]["prompt"].startswith("Problem: Ana has 12 marbles")
    assert {"prompt", "completion", "extracted", "rule", "correct", "gold"} <= set(s[0])
    assert s[1]["gold"] == "24"
    on_disk = TaskRecord.from_json(json.loads((tmp_path / "record.json").read_text()))
    assert on_disk == rec
    prov = rec.provenance
    assert prov["grader_version"] == GRADER_VERSION and prov["versions"]["lm-eval"]
    assert (prov["prompt_style"], prov["eval_prompt"]) == ("tiny_story", "base")  # which prompt the row used
    assert prov["decoding"]["do_sample"] is False and prov["decoding"]["max_gen_toks"] == 16
    assert prov["data"]["source"] == "data_dir" and len(prov["data"]["sha256"]) == 64
    assert len(prov["model_sha256"]) == 64 and prov["wall_seconds"] > 0
    assert (tmp_path / "meter.json").is_file() and (tmp_path / "results.json").is_file()


def test_plain_lm_eval_cli(repo_root, tmp_path):
    from rmxbench.embedded import tiny_model_dir

    env = {**os.environ, "RMXBENCH_DATA_DIR": str(FIXTURES), "OMP_NUM_THREADS": "2"}
    lm_eval = Path(sys.executable).parent / "lm_eval"
    cmd = [str(lm_eval), "--include_path", "tasks", "--tasks", "rmx_gsm8k", "--model", "hf",
           "--model_args", f"pretrained={tiny_model_dir()}", "--device", "cpu", "--limit", "2",
           "--gen_kwargs", "max_gen_toks=16", "--output_path", str(tmp_path), "--log_samples"]
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rmx_gsm8k" in proc.stdout and "pass@1" in proc.stdout
    results = list(tmp_path.rglob("results_*.json"))
    assert results
    data = json.loads(results[0].read_text())
    assert 0.0 <= data["results"]["rmx_gsm8k"]["pass@1,graded"] <= 1.0
    assert data["results"]["rmx_gsm8k"]["rmx_graded,graded"] == 2


def test_rmxbench_eval_cli(tmp_path, capsys):
    from rmxbench.cli import main

    code = main(["eval", "--model", "package:embedded/tiny", "--tasks", "gsm8k", "--limit", "2",
                 "--data-dir", str(FIXTURES), "--prompt-style", "tiny_story", "--backend", "hf",
                 "--max-new-tokens", "8", "--dtype", "float32", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "pass@1" in out and "gsm8k" in out
    rec = json.loads((tmp_path / "gsm8k" / "record.json").read_text())
    assert rec["n_problems"] == 2 and rec["task"] == "gsm8k"


def test_cli_rejects_bad_task(capsys):
    from rmxbench.cli import main

    code = main(["eval", "--model", "package:embedded/tiny", "--tasks", "gsm9k"])
    assert code == 1
    assert "gsm9k" in capsys.readouterr().err


def test_cli_names_a_missing_local_model_path(tmp_path, capsys):
    """A path-like --model that does not exist is reported as a missing path, not as a bad hub id."""
    from rmxbench.cli import main

    missing = tmp_path / "no-such-model"
    code = main(["eval", "--model", str(missing), "--tasks", "tinymath", "--limit", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no such file or folder" in err and "hub id of the form" not in err


def test_lora_adapter_is_loaded_and_hashed(tmp_path, hf_session):
    """A PEFT LoRA adapter (random, rank 4) is served by the session (PEFT) and hashed by the
    identity function the keys use; it changes the completions (it was applied)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rmxbench.embedded import tiny_model_dir
    from rmxbench.pipeline.identity import adapter_identity

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    ad = tmp_path / "adapter"
    peft_model.save_pretrained(ad)
    p = Protocol(tasks=["gsm8k"], max_new_tokens=4, max_model_len=256, backend="hf", limit={"gsm8k": 2})
    kw = dict(protocol=p, prompt_style="tiny_story", chat_template=False, data_dir=FIXTURES)
    rec = _evaluate(hf_session, "gsm8k", adapter_dir=ad, out_dir=tmp_path / "out", row_id="tiny-rmx", **kw)
    base = _evaluate(hf_session, "gsm8k", out_dir=tmp_path / "base", row_id="tiny", **kw)
    assert rec.provenance["adapter_sha256"] == adapter_identity(ad)  # the same function keys use
    assert rec.provenance["adapter_dir"] == str(ad.resolve())
    assert [x["raw_completion"] for x in _samples(tmp_path / "out")] != [x["raw_completion"] for x in _samples(tmp_path / "base")]
