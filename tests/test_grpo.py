"""GRPO baselines rmxbench trains itself (rmxbench/rl): the reward is the grader, the recipe maps
onto TRL's GRPOConfig, specs/tiny.yaml's GRPO row beats the base by >= 0.15 on held-out tinymath
(the board's metric), and a run SIGKILLed during GRPO resumes from its last checkpoint to the same
reward trajectory and board. All on the embedded 0.84M model (about 1 s per GRPO step)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from rmxbench.evaluation.grading import grade
from rmxbench.spec.recipe import PoolConfig
from rmxbench.spec.grpo_recipe import GRPORecipe

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
    with pytest.raises(ValueError, match="must divide the generation batch 8 .*use 2, 4 or 8 for `num_generations`"):
        GRPORecipe(num_generations=3, per_device_train_batch_size=8, gradient_accumulation_steps=1)


def test_recipe_rules_mirror_trl_grpoconfig():
    """Issue 18 item 3: a recipe validates iff TRL 1.16's GRPOConfig accepts it, except the
    round/step misalignment TRL runs silently (TRL PR #3493), which rmxbench rejects: over a grid of
    batch sizes, accumulation, steps_per_generation, num_iterations and G."""
    import itertools

    from pydantic import ValidationError
    from trl import GRPOConfig

    seen = {"both_ok": 0, "trl_rejects": 0, "misaligned": 0}
    for pdb, gas, spg, mu, g in itertools.product((1, 2, 3, 4, 6), (1, 2, 3, 4), (None, 1, 2, 3, 4, 6),
                                                  (1, 2), (2, 3, 4)):
        kw = dict(num_generations=g, per_device_train_batch_size=pdb, gradient_accumulation_steps=gas,
                  steps_per_generation=spg, num_iterations=mu)
        try:
            GRPOConfig(output_dir="unused", bf16=False, use_cpu=True, report_to=[], **kw)
            trl_ok = True
        except ValueError:
            trl_ok = False
        try:
            GRPORecipe(**kw)
            ours = True
        except ValidationError:
            ours = False
        s = spg or gas
        aligned = s % gas == 0 if mu > 1 else (gas % s == 0 or s % gas == 0)
        assert ours == (trl_ok and aligned), kw
        seen["both_ok" if ours else "trl_rejects" if not trl_ok else "misaligned"] += 1
    assert min(seen.values()) >= 20, seen
    # the example: TRL accepts it, rmxbench does not
    GRPOConfig(output_dir="unused", bf16=False, use_cpu=True, report_to=[], per_device_train_batch_size=8,
               num_generations=4, steps_per_generation=2, gradient_accumulation_steps=3)
    with pytest.raises(ValidationError, match="off-policy.*divisor of 3 \\(1 or 3\\) or a multiple \\(6, 9, …\\)"):
        GRPORecipe(per_device_train_batch_size=8, num_generations=4, steps_per_generation=2, gradient_accumulation_steps=3)
    with pytest.raises(ValidationError, match="lm_head"):
        GRPORecipe(lora={"rank": 4, "target_modules": ["q_proj", "lm_head"]})


def test_tiny_spec_grpo_row_beats_the_base_on_held_out_tinymath(tmp_path):
    """Acceptance: specs/tiny.yaml's GRPO row, trained by the grpo stage and scored by the eval
    stage (lm-eval, greedy pass@1 on the whole 500-problem held-out tinymath test: the board's
    metric), beats the base row by >= 0.15. Also checks the artifact (full model, reward log,
    curve, meter) and that the reward log covers every step."""
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.orchestrator.runner import Runner
    from rmxbench.pipeline.store import ArtifactStore
    from rmxbench.rl.grpo_trainer import CURVE_FILE, LOG_FILE
    from rmxbench.spec.context import SpecContext

    os.environ.setdefault("RMXBENCH_THREADS", "1")
    store = ArtifactStore(tmp_path / "store")
    plan = build_plan(SpecContext.load(REPO / "specs" / "tiny.yaml", home=store.home), store=store,
                      only=["tiny", "tiny-grpo"])
    evals = [n for n in plan.graph.nodes if n.stage == "eval" and n.row_id in ("tiny", "tiny-grpo")]
    grpo = plan.graph.one("tiny-grpo", "grpo")
    assert evals[1].inputs == {"checkpoint": grpo}  # the eval of the trained row is keyed on the grpo node
    from rmxbench.stages.eval import load_record

    summary = Runner(plan, console=None).run_nodes(evals)
    score = {n.row_id: load_record(summary.dirs[n.key]).score for n in evals}
    assert score["tiny-grpo"] - score["tiny"] >= 0.15, score
    d = store.get("grpo", grpo.key)
    log = json.loads((d / LOG_FILE).read_text())
    assert [h["step"] for h in log["history"]] == list(range(1, 13)) and log["resumed_from_step"] == 0
    assert all(0.0 <= h["reward"] <= 1.0 for h in log["history"])
    # issue 18 item 2: a healthy run records clipping and grad norms, and is not marked on the board
    assert all(h["clipped_ratio"] < 0.5 and h["grad_norm"] >= 0 for h in log["history"])
    assert log["health"]["verdict"] == "ok" and "tiny-grpo" not in summary.notes
    assert (d / CURVE_FILE).stat().st_size > 1000 and (d / "model.safetensors").is_file()
    assert json.loads((d / "meter.json").read_text())["seconds"] > 0
    assert not (store.home / "work" / "grpo" / grpo.key).exists()


MINI_GRPO = """
suite: {name: mini-grpo}
protocol:
  tasks: [tinymath]
  pass_at_1: {temperature: 0.0}
  avg_at_k: {k: 2, tasks: []}
  max_new_tokens: 64
  max_model_len: 256
  backend: hf
  batch_size: 100
  limit: {tinymath: 100}
pricing: {date: 2026-04-28, source: test, usd_per_hour: {H100-80G: 2.49}}
rl_recipes:
  g:
    pool: {source: embedded_train, size: 48, balance_levels: false}
    num_generations: 4
    per_device_train_batch_size: 32
    gradient_accumulation_steps: 1
    beta: 0.0
    entropy_coef: 0.0
    learning_rate: 0.0001
    max_completion_length: 48
    max_steps: 6
    save_steps: 2
    seed: 3
models:
  - id: tiny
    display_name: tiny
    family: embedded
    model: {path: "package:embedded/tiny"}
    dtype: float32
    prompt_style: tiny_story
    rl_baselines:
      - {id: tiny-grpo, display_name: + GRPO, algorithm: GRPO, source: test, train: {algorithm: grpo, recipe: g}}
"""


def _grpo_log(home: Path) -> dict:
    (d,) = [p for p in (home / "grpo").iterdir() if not p.name.startswith(".")]
    return json.loads((d / "grpo_log.json").read_text()) | {"meter": json.loads((d / "meter.json").read_text())}


def test_sigkill_during_grpo_resumes_from_checkpoint_to_the_same_board(tmp_path):
    """kill -9 while the grpo stage trains; the rerun resumes from TRL's last complete checkpoint
    (not step 0) and ends with the same reward trajectory and the same board as an uninterrupted
    run, except the measured-time cells."""
    from test_runner import _normalise, _rmx

    from rmxbench.rl.grpo_trainer import last_checkpoint

    spec = tmp_path / "mini-grpo.yaml"
    spec.write_text(MINI_GRPO)
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    p = _rmx(home_a, spec, tmp_path / "lb_a")
    assert p.communicate(timeout=600)[0] is not None and p.returncode == 0
    p = _rmx(home_b, spec, tmp_path / "lb_b")
    deadline, ck = time.time() + 400, None
    while time.time() < deadline and p.poll() is None:  # kill once a checkpoint is complete, before the end
        ck = next((c for w in (home_b / "work" / "grpo").glob("*") if (c := last_checkpoint(w))), None) \
            if (home_b / "work" / "grpo").is_dir() else None
        if ck is not None:
            break
        time.sleep(0.05)
    assert p.poll() is None, "training ended before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    p.stdout.close()
    killed_at = int(last_checkpoint(ck.parent).name.split("-")[1])
    assert 2 <= killed_at < 6 and not list((home_b / "grpo").glob("[!.]*"))  # nothing published
    p = _rmx(home_b, spec, tmp_path / "lb_b")
    log = p.communicate(timeout=600)[0]
    assert p.returncode == 0, log[-3000:]
    a, b = _grpo_log(home_a), _grpo_log(home_b)
    assert b["resumed_from_step"] == b["meter"]["resumed_from_step"] == killed_at and a["resumed_from_step"] == 0
    assert b["steps"] == a["steps"] == 6
    assert [h["reward"] for h in b["history"]] == [h["reward"] for h in a["history"]]
    assert not (home_b / "work" / "grpo" / ck.parent.name).exists()  # checkpoints removed once published
    board_a, board_b = ((tmp_path / d / "mini-grpo.md").read_text() for d in ("lb_a", "lb_b"))
    assert "+ GRPO" in board_a and "(measured)" in board_a and "reward_curve.png" in board_a
    assert _normalise(board_b) == _normalise(board_a)


def test_board_shows_trained_rl_row_paired_test_cost_ratio_and_reward_curve(tmp_path):
    """A `train:` RL row gets a paired test vs its base, the measured cost ratio to the
    ReasonMaxxer row, and its reward curve next to the board (Markdown link, HTML embedded)."""
    from test_board import pass1

    from rmxbench.board.render import build_board, render
    from rmxbench.results import RowCost
    from rmxbench.spec.check import load_spec

    spec = load_spec(REPO / "specs" / "tiny.yaml")
    records = [pass1("tiny", "tinymath", 100, 30), pass1("tiny-grpo", "tinymath", 100, 90),
               pass1("tiny-rmx", "tinymath", 100, 80)]
    costs = {"tiny-grpo": RowCost(cpu_hours=0.003, basis="measured", source="m"),
             "tiny-rmx": RowCost(cpu_hours=0.012, basis="measured", source="m")}
    png = tmp_path / "reward_curve.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n fake")
    board = build_board(spec, records, costs, {}, None)
    pairs = {(c.rmx.row_id, c.other.row_id): c for c in board.comparisons}
    assert set(pairs) == {("tiny-rmx", "tiny"), ("tiny-rmx", "tiny-grpo"), ("tiny-grpo", "tiny")}
    assert pairs[("tiny-grpo", "tiny")].per_task["tinymath"].delta == pytest.approx(0.60)
    (ratio,) = board.cost_ratios
    assert (ratio.rl.row_id, ratio.rmx.row_id, ratio.unit) == ("tiny-grpo", "tiny-rmx", "CPU-h")
    assert ratio.ratio == pytest.approx(0.25)
    md, html = render(spec, records, costs, {}, None, tmp_path / "lb", figures={"tiny-grpo": [png]})
    md_text, html_text = md.read_text(), html.read_text()
    assert "0.25× (0.003 ÷ 0.012 CPU-h" in md_text and "0.25×" in html_text
    assert "(tiny.tiny-grpo.reward_curve.png)" in md_text
    assert (tmp_path / "lb" / "tiny.tiny-grpo.reward_curve.png").read_bytes() == png.read_bytes()
    assert "data:image/png;base64," in html_text and "reward (grader, 0/1) vs optimiser step" in html_text


# --------------------------------------------------------------------------- issue 18: hardening


def test_reward_through_trls_own_reward_call(tmp_path):
    """Issue 18 item 1 as TRL reproduces it: GRPOTrainer._calculate_rewards (TRL 1.16's call, with its
    dataset columns, trainer_state and log_metric) on chat-style completions, one with an empty gold:
    the old reward raised AttributeError ('list' object has no attribute 'find') / ValueError for the
    whole batch; now the good item scores 1, the bad one 0, and the error share reaches TRL's metrics."""
    from rmxbench.rl.grpo_trainer import make_trainer

    rows = [{"id": "a", "problem": "Tom has 3.", "answer": "10"}, {"id": "b", "problem": "Ann has 2.", "answer": ""}]
    trainer, reward = make_trainer(_recipe(num_generations=2, per_device_train_batch_size=2), *_tiny(), rows,
                                   prompt_style="tiny_story", task="tinymath", work_dir=tmp_path)
    inputs = [{"prompt": [{"role": "user", "content": r["problem"]}], "answer": r["answer"], "id": r["id"]} for r in rows]
    chat = [[{"role": "assistant", "content": "3+4=7, 7+3=10. The answer is \\boxed{10}."}]] * 2
    got = trainer._calculate_rewards(inputs, [i["prompt"] for i in inputs], chat, [[1], [1]])
    assert got[:, 0].tolist() == [1.0, 0.0] and reward.errors == 1
    assert trainer._pending_metrics["reward_error_frac"] == [0.5]


def test_reward_takes_trl_plain_and_chat_completions_and_scores_ungradable_items_zero():
    """Issue 18 item 1 (TRL #4939, #6533): the reward accepts every completion shape TRL 1.16 passes
    (text; a list of message dicts; content as text parts; tool turns) and grades the same text;
    an item whose grading raises (empty or missing gold, an unreadable completion) scores 0, is
    counted and reported to TRL's log_metric, and never fails the call."""
    from rmxbench.rl.grpo_trainer import completion_text, make_reward

    ok = "Plan: follow the story. 3+4=7, 7+3=10. The answer is \\boxed{10}."
    shapes = [ok, [{"role": "assistant", "content": ok}], {"role": "assistant", "content": ok},
              [{"role": "assistant", "content": [{"type": "text", "text": ok[:20]}, {"type": "text", "text": ok[20:]}]}],
              [{"role": "assistant", "content": "Let me call a tool."}, {"role": "tool", "content": "\\boxed{13}"},
               {"role": "assistant", "content": ok}]]
    assert [completion_text(c).endswith("\\boxed{10}.") for c in shapes] == [True] * 5
    assert "\\boxed{13}" not in completion_text(shapes[-1])  # a tool's output is not the model's answer
    metrics: list[tuple[str, float]] = []
    reward = make_reward("tinymath", "tiny_story")
    got = reward(prompts=["p"] * 5, completions=shapes, answer=["10"] * 5, completion_ids=[[1]] * 5,
                 trainer_state=None, log_extra=lambda *a: None, log_metric=lambda k, v: metrics.append((k, v)))
    assert got == [1.0] * 5 and metrics == [("reward_error_frac", 0.0)] and reward.errors == 0
    wrong = [{"role": "assistant", "content": ok.replace("{10}", "{11}")}]
    bad = [ok, ok, 42, [{"role": "assistant", "content": ok}], wrong, ok]
    golds = ["10", "", "10", None, "10"]  # the 6th completion has no gold at all
    got = reward(prompts=["p"] * 6, completions=bad, answer=golds, log_metric=lambda k, v: metrics.append((k, v)))
    assert got == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert reward.errors == 4 and reward.graded == 11 and metrics[-1] == ("reward_error_frac", pytest.approx(4 / 6))
    assert [e["index"] for e in reward.examples] == [1, 2, 3, 5]
    assert "gold answer is empty" in reward.examples[0]["error"] and "TypeError" in reward.examples[1]["error"]
    assert reward(prompts=["p"], completions=[ok]) == [0.0]  # no `answer` column: scored 0, not an exception


def test_grpo_health_verdicts():
    """Issue 18 item 2: the health rules on synthetic step histories (each rule and its neighbours);
    a healthy history is not marked."""
    from rmxbench.rl.grpo_health import grpo_health, health_note

    def steps(n=3, **kw):
        base = dict(reward=0.5, clipped_ratio=0.0, frac_reward_zero_std=0.25, loss=0.01, grad_norm=0.2,
                    reward_error_frac=0.0)
        return [{"step": i + 1, **base, **kw} for i in range(n)]

    healthy = grpo_health(steps(), max_completion_length=64, completions_per_step=16)
    assert healthy == {"verdict": "ok", "reasons": [], "steps": 3} and health_note(healthy) is None
    h = grpo_health(steps(reward=0.0, clipped_ratio=1.0, frac_reward_zero_std=1.0), max_completion_length=4)
    assert h["verdict"] == "warn" and len(h["reasons"]) == 2
    assert "every completion hit the 4-token cap without ending at all 3 steps" in h["reasons"][0]
    assert "reward 0 at all 3 steps" in h["reasons"][1]
    assert health_note(h).startswith("GRPO health: every completion")
    (r,) = grpo_health(steps(reward=1.0, frac_reward_zero_std=1.0))["reasons"]
    assert "same reward at all 3 steps" in r  # all correct: zero variance, no signal either
    (r,) = grpo_health(steps(clipped_ratio=0.6))["reasons"]
    assert r.startswith("60% of completions hit the cap without ending")
    assert grpo_health(steps(clipped_ratio=0.4))["verdict"] == "ok"
    mixed = steps() + steps(1, reward=0.0, frac_reward_zero_std=1.0, clipped_ratio=1.0)
    assert grpo_health(mixed)["verdict"] == "ok"  # one bad step is not a degenerate run
    (r,) = grpo_health(steps(reward_error_frac=0.25), completions_per_step=16)["reasons"]
    assert r.startswith("12 of 48 completions could not be graded")
    (r,) = grpo_health(steps()[:2] + [{**steps()[2], "grad_norm": float("nan")}])["reasons"]
    assert r == "grad_norm was not finite at step 3: training diverged"
    assert grpo_health([])["reasons"] == ["no optimiser step was logged"]


def test_degenerate_grpo_run_is_marked_on_the_board_and_warned_by_validate(tmp_path):
    """Issue 18 item 2 (TRL #5697): `max_completion_length: 4` clips every completion and gives reward
    0 at every step; grpo_log.json records clipped_ratio, grad_norm and the zero-std share per step,
    the stage's warn() reason reaches the row's board note through the runner, and validate warns."""
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.orchestrator.runner import Runner
    from rmxbench.pipeline.store import ArtifactStore
    from rmxbench.spec.check import check_spec_file
    from rmxbench.spec.context import SpecContext

    spec = tmp_path / "degenerate.yaml"
    spec.write_text(MINI_GRPO.replace("max_completion_length: 48", "max_completion_length: 4")
                    .replace("max_steps: 6", "max_steps: 2"))
    (w,) = check_spec_file(spec).warnings
    assert (w.line, w.field) == (22, "rl_recipes.g.max_completion_length") and "clipping likely" in w.message
    store = ArtifactStore(tmp_path / "home")
    plan = build_plan(SpecContext.load(spec, home=store.home), store=store, only=["tiny-grpo"])
    node = plan.graph.one("tiny-grpo", "grpo")
    summary = Runner(plan, console=None).run_nodes([node])
    log = json.loads((store.get("grpo", node.key) / "grpo_log.json").read_text())
    assert [(h["clipped_ratio"], h["reward"], h["frac_reward_zero_std"]) for h in log["history"]] == [(1.0, 0.0, 1.0)] * 2
    assert all(h["grad_norm"] == 0.0 and h["completion_length"] == 4.0 for h in log["history"])
    assert log["health"]["verdict"] == "warn"
    note = summary.notes["tiny-grpo"]
    assert note.startswith("GRPO health: every completion hit the 4-token cap without ending at all 2 steps "
                           "(clipped_ratio 1.0)")
    assert "reward 0 at all 2 steps" in note


def _tiny(path=None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = path or REPO / "rmxbench" / "embedded" / "tiny"
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return AutoModelForCausalLM.from_pretrained(path), tok


def test_checkpoint_completeness_rule(tmp_path):
    """Issue 18 item 4: each file TRL needs to resume exactly (weights or PEFT adapter, optimizer,
    scheduler, RNG state, trainer state) is required and must be non-empty; the newest complete
    checkpoint wins, newer incomplete ones are reported and (with prune) removed."""
    from rmxbench.rl.grpo_trainer import checkpoint_missing, last_checkpoint, scan_checkpoints

    full = ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"]

    def ckpt(step, files, empty=()):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        for f in files:
            (d / f).write_bytes(b"" if f in empty else b"x")
        return d

    assert checkpoint_missing(ckpt(1, full)) == []
    assert checkpoint_missing(ckpt(2, ["adapter_model.safetensors", *full[1:]])) == []  # LoRA
    assert checkpoint_missing(ckpt(3, [*full[:3], "rng_state_0.pth", full[4]])) == []  # one process of several
    assert checkpoint_missing(ckpt(4, full[1:])) == ["weights (model.safetensors or adapter_model.safetensors)"]
    assert checkpoint_missing(ckpt(5, [f for f in full if f != "scheduler.pt"])) == ["scheduler.pt"]
    assert checkpoint_missing(ckpt(6, [f for f in full if f != "rng_state.pth"])) == ["rng_state.pth"]
    assert checkpoint_missing(ckpt(7, full, empty=("trainer_state.json",))) == ["trainer_state.json"]
    assert checkpoint_missing(ckpt(10, full[:1], empty=("model.safetensors",))) == [
        "weights (model.safetensors or adapter_model.safetensors)", "optimizer.pt", "scheduler.pt", "rng_state.pth",
        "trainer_state.json"]
    best, skipped = scan_checkpoints(tmp_path)
    assert best.name == "checkpoint-3" and [p.name for p, _ in skipped] == [f"checkpoint-{i}" for i in (10, 7, 6, 5, 4)]
    assert last_checkpoint(tmp_path, prune=True).name == "checkpoint-3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]


def test_resume_skips_an_incomplete_checkpoint_to_the_uninterrupted_weights(tmp_path):
    """Issue 18 item 4 (TRL #3247): a checkpoint without optimizer.pt is not resumable. A real tiny
    GRPO run (4 steps, a checkpoint per step) loses its last checkpoint (killed) and the previous
    one's optimizer.pt; the rerun skips checkpoint-3 with a notice, resumes from checkpoint-2 and
    ends with exactly the uninterrupted run's weights. Resuming from checkpoint-3 (a fresh
    optimiser, what happened before) ends elsewhere."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.rl.grpo_trainer import checkpoint_missing, last_checkpoint, make_trainer, train_grpo

    torch.set_num_threads(1)
    rows = load_benchmark("embedded_train")[:16]
    recipe = _recipe(per_device_train_batch_size=16, max_completion_length=48, max_steps=4, save_steps=1)
    work = tmp_path / "work"
    kw = dict(prompt_style="tiny_story", task="embedded_train", work_dir=work)
    (tmp_path / "a").mkdir()
    a = train_grpo(recipe, *_tiny(), rows, out_dir=tmp_path / "a", **kw)
    assert a.log["health"]["verdict"] == "ok" and a.resumed_from_step == 0  # a healthy run is not marked
    assert all(h["clipped_ratio"] < 0.5 for h in a.log["history"]), a.log["history"]
    assert any(h["grad_norm"] > 0 for h in a.log["history"]), a.log["history"]
    assert checkpoint_missing(work / "checkpoint-3") == []
    shutil.rmtree(work / "checkpoint-4")
    (work / "checkpoint-3" / "optimizer.pt").unlink()
    assert checkpoint_missing(work / "checkpoint-3") == ["optimizer.pt"]
    assert last_checkpoint(work).name == "checkpoint-2"
    shutil.copytree(work / "checkpoint-3", tmp_path / "ck3")  # for the control below
    (tmp_path / "b").mkdir()
    b = train_grpo(recipe, *_tiny(), rows, out_dir=tmp_path / "b", **kw)
    assert b.resumed_from_step == 2
    assert b.log["skipped_checkpoints"] == [{"checkpoint": "checkpoint-3", "missing": ["optimizer.pt"]}]
    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [h["reward"] for h in b.log["history"]] == [h["reward"] for h in a.log["history"]]
    # control: resuming from the checkpoint without optimizer.pt trains step 4 with a fresh optimiser
    trainer, _ = make_trainer(recipe, *_tiny(), rows, prompt_style="tiny_story", task="embedded_train",
                              work_dir=tmp_path / "work-c")
    trainer.train(resume_from_checkpoint=str(tmp_path / "ck3"))
    wc = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items() if k in wa}
    assert trainer.state.global_step == 4 and any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_trl_tokenizes_grpo_prompts_by_the_contract(tmp_path):
    """Issue 18 item 6: with a BOS-adding tokenizer whose chat template writes the BOS text (like
    Llama/Mistral/R1-Distill), TRL 1.16 encoded the rendered r1_chat prompt with a second BOS. The
    GRPO dataset's prompts now give TRL's own tokenization (GRPOTrainer._tokenize_prompts) exactly
    :func:`prompt_ids`, for every prompt style, with the BOS tokenizer and a plain one (the
    tokenizers of tests/test_tokenization.py); a tokenizer adding other special tokens is refused."""
    from test_tokenization import PROBLEM, STYLES, _build
    from tokenizers import processors

    from rmxbench.backends.tokenization import prompt_ids
    from rmxbench.errors import UserError
    from rmxbench.evaluation.prompts import build_prompt
    from rmxbench.rl.grpo_trainer import make_trainer, trl_prompts

    rows = [{"id": "p0", "problem": PROBLEM, "answer": "5"}]
    for kind in ("bos", "plain"):
        model, tok = _tiny(_build(kind, tmp_path / kind))
        trainer, _ = make_trainer(_recipe(num_generations=2, per_device_train_batch_size=2), model, tok, rows,
                                  prompt_style="r1_chat", task="tinymath", work_dir=tmp_path / f"w-{kind}")
        chat = build_prompt(PROBLEM, "r1_chat", tok)
        (ids,) = trainer._tokenize_prompts([trainer.train_dataset[0]["prompt"]])[0]
        assert list(ids) == prompt_ids(tok, chat)
        texts = [build_prompt(PROBLEM, s, tok) for s in STYLES]
        got = trainer._tokenize_prompts(trl_prompts(tok, texts))[0]
        assert [list(g) for g in got] == [prompt_ids(tok, t) for t in texts]
        raw = trainer._tokenize_prompts([chat])[0][0]  # what TRL got before: the rendered text as is
        if kind == "bos":
            assert [g[0] for g in got] == [tok.bos_token_id] * len(STYLES)
            assert all(list(g).count(tok.bos_token_id) == 1 for g in got)
            assert list(raw[:2]) == [tok.bos_token_id] * 2  # the double BOS this fixes
        else:
            assert tok.bos_token_id not in [i for g in got for i in g] and list(raw) == list(ids)
    tok._tokenizer.post_processor = processors.TemplateProcessing(  # the plain tokenizer, now appending EOS
        single=f"$A {tok.eos_token}", special_tokens=[(tok.eos_token, tok.eos_token_id)])
    with pytest.raises(UserError, match="special tokens other than one BOS"):
        trl_prompts(tok, texts)
