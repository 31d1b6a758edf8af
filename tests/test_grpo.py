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
    from rmxbench.pipeline.planner import build_plan
    from rmxbench.pipeline.runner import Runner
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
    score = {n.row_id: load_record(summary.dirs[id(n)]).score for n in evals}
    assert score["tiny-grpo"] - score["tiny"] >= 0.15, score
    d = store.get("grpo", grpo.key)
    log = json.loads((d / LOG_FILE).read_text())
    assert [h["step"] for h in log["history"]] == list(range(1, 13)) and log["resumed_from_step"] == 0
    assert all(0.0 <= h["reward"] <= 1.0 for h in log["history"])
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
