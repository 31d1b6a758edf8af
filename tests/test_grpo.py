"""GRPO baselines rmxbench trains itself (rmxbench/rl): the reward is the grader, a short GRPO run
on the embedded model raises held-out greedy pass@1, and a SIGKILLed run resumes from its last
checkpoint to the same trajectory. All on the embedded 0.84M model (about 1 s per step)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rmxbench.evaluation.grading import grade
from rmxbench.spec.recipe import PoolConfig
from rmxbench.rl.grpo_config import GRPORecipe

REPO = Path(__file__).resolve().parents[1]


def _recipe(**kw) -> GRPORecipe:
    """The tiny CPU recipe of specs/tiny.yaml's GRPO row, sized down by ``kw``."""
    base = dict(pool=PoolConfig(source="embedded_train", size=96, balance_levels=False),
                num_generations=4, per_device_train_batch_size=32, gradient_accumulation_steps=1,
                beta=0.0, entropy_coef=0.0, learning_rate=1e-4, max_completion_length=64,
                max_steps=12, save_steps=4, seed=0)
    base.update(kw)
    return GRPORecipe(**base)


def test_reward_is_the_grader():
    from rmxbench.rl.grpo_trainer import make_reward

    reward = make_reward("tinymath", "tiny_story")
    cases = [("Plan: follow the story. 3+4=7, 7+3=10. The answer is \\boxed{10}.", "10"),
             ("Plan: add all numbers. 3+4+3=10. The answer is \\boxed{10}.", "13"),
             ("Plan: follow the story. 3+4=7", "7"),  # no answer statement: tinymath has no last-number rule
             ("The answer is \\boxed{13}.\nProblem: Tom has 2. The answer is \\boxed{2}.", "13"),
             ("The answer is \\boxed{2}.\nProblem: Tom has 13. The answer is \\boxed{13}.", "13")]
    got = reward(prompts=["p"] * len(cases), completions=[c for c, _ in cases], answer=[a for _, a in cases])
    # evaluation grades the completion cut at the style's stop string "\nProblem:"
    want = [1.0 if grade(c.split("\nProblem:")[0], a, task="tinymath").correct else 0.0 for c, a in cases]
    assert got == want == [1.0, 0.0, 0.0, 1.0, 0.0]


def test_recipe_maps_to_trl_grpoconfig():
    from trl import GRPOConfig

    r = _recipe(warmup_ratio=0.1, lora=None)
    args = GRPOConfig(output_dir="unused", bf16=False, gradient_checkpointing=False, use_cpu=True,
                      report_to=[], **r.trl_kwargs())
    assert (args.num_generations, args.per_device_train_batch_size, args.beta, args.loss_type) == (4, 32, 0.0, "dapo")
    assert args.generation_batch_size == 32 and r.prompts_per_step == 8
    assert str(args.lr_scheduler_type.value) == "constant_with_warmup" and args.get_warmup_steps(12) == 2
    with pytest.raises(ValueError, match="multiple of num_generations"):
        GRPORecipe(num_generations=3, per_device_train_batch_size=8, gradient_accumulation_steps=1)


def _greedy_pass1(model, tok, rows) -> float:
    from rmxbench.backends.generation import Decoding, HFGenerator
    from rmxbench.evaluation.prompts import STOP_SEQUENCES, build_prompt

    outs = HFGenerator(model, tok, batch_size=len(rows)).generate(
        [build_prompt(r["problem"], "tiny_story") for r in rows],
        Decoding(n=1, temperature=0.0, max_new_tokens=64, stop=tuple(STOP_SEQUENCES["tiny_story"])))
    return sum(grade(o[0].text, r["answer"], task="tinymath").correct for o, r in zip(outs, rows)) / len(rows)


def test_grpo_raises_held_out_greedy_pass1(tmp_path):
    import torch

    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.backends.modeling import load_model
    from rmxbench.rl.grpo_trainer import CURVE_FILE, LOG_FILE, train_grpo
    from rmxbench.spec.schema import ModelRef

    torch.set_num_threads(1)
    model, tok = load_model(ModelRef(path="package:embedded/tiny"), dtype="float32", device="cpu")
    test = load_benchmark("tinymath", limit=100)
    before = _greedy_pass1(model, tok, test)
    out = tmp_path / "out"
    out.mkdir()
    res = train_grpo(_recipe(), model, tok, load_benchmark("embedded_train")[:96], prompt_style="tiny_story",
                     task="embedded_train", out_dir=out, work_dir=tmp_path / "work")
    model.eval()
    after = _greedy_pass1(model, tok, test)
    assert res.steps == 12 and res.kind == "full" and res.resumed_from_step == 0
    assert after - before >= 0.15, (before, after)
    log = json.loads((out / LOG_FILE).read_text())
    assert [h["step"] for h in log["history"]] == list(range(1, 13))
    assert all(0.0 <= h["reward"] <= 1.0 for h in log["history"])
    assert (out / CURVE_FILE).stat().st_size > 1000 and (out / "model.safetensors").is_file()
    # the saved artifact is the trained model: reloading it gives the same held-out score
    reloaded, rtok = load_model(ModelRef(path=str(out)), dtype="float32", device="cpu")
    assert _greedy_pass1(reloaded, rtok, test) == after


_CHILD = """
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from rmxbench.evaluation.data import load_benchmark
from rmxbench.backends.modeling import load_model
from rmxbench.spec.recipe import PoolConfig
from rmxbench.rl.grpo_config import GRPORecipe
from rmxbench.rl.grpo_trainer import train_grpo
from rmxbench.spec.schema import ModelRef
out, work = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
r = GRPORecipe(pool=PoolConfig(source="embedded_train", size=64, balance_levels=False), num_generations=8,
               per_device_train_batch_size=32, gradient_accumulation_steps=1, beta=0.0, entropy_coef=0.0,
               learning_rate=1e-4, max_completion_length=48, max_steps=6, save_steps=2, seed=3)
m, t = load_model(ModelRef(path="package:embedded/tiny"), dtype="float32", device="cpu")
res = train_grpo(r, m, t, load_benchmark("embedded_train")[:64], prompt_style="tiny_story", task="embedded_train",
                 out_dir=out, work_dir=work)
print("RESULT", json.dumps({"resumed": res.resumed_from_step, "steps": res.steps,
                            "rewards": [h["reward"] for h in res.log["history"]]}))
"""


def _child(out: Path, work: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(out), str(work)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _result(p: subprocess.Popen) -> dict:
    text, _ = p.communicate(timeout=300)
    assert p.returncode == 0, text[-3000:]
    return json.loads(text.split("RESULT ", 1)[1].splitlines()[0])


def test_sigkill_mid_training_resumes_from_last_checkpoint(tmp_path):
    from rmxbench.rl.grpo_trainer import last_checkpoint

    work = tmp_path / "work"
    p = _child(tmp_path / "out1", work)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill once a checkpoint is complete, before the end
        ck = last_checkpoint(work) if work.is_dir() else None
        if ck is not None and int(ck.name.split("-")[1]) >= 2:
            break
        assert p.poll() is None, "training ended before it could be killed: " + p.stdout.read()[-2000:]
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    killed_at = int(last_checkpoint(work).name.split("-")[1])
    assert 2 <= killed_at < 6
    resumed = _result(_child(tmp_path / "out2", work))
    assert resumed["resumed"] == killed_at and resumed["steps"] == 6
    fresh = _result(_child(tmp_path / "out3", tmp_path / "work-fresh"))
    assert fresh["resumed"] == 0
    assert resumed["rewards"] == fresh["rewards"]  # same trajectory as an uninterrupted run
