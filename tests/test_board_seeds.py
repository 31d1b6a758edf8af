"""Training seeds on the board (issue 19 item 2): hand-computable seed statistics (pooling, spread,
paired test on seed-averaged correctness), and a board with seeded rows: mean ± seed spread beside
the problem-level CI, each seed's score in the provenance, the cost per seed and its ratio, the
per-seed figure, and records that do not match a row's seeds ignored with a warning."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from rmxbench.board import render as B
from rmxbench.board import statistics as stats
from rmxbench.board.chart import seed_points
from rmxbench.board.table import build_table
from rmxbench.pricing import seed_mean_cost
from rmxbench.results import RowCost, TaskRecord, seeded_row_key, split_seeded_row_key
from rmxbench.spec.recipe import ReasonMaxxerRecipe
from rmxbench.spec.schema import (BaseModelSpec, ModelRef, Pricing, Protocol, ReasonMaxxerRow, RLBaseline, Spec,
                                  Suite)
from rmxbench.spec.grpo_recipe import GRPORecipe, TrainSpec

T, F = True, False


# --------------------------------------------------------------------------- statistics (by hand)


def test_seed_pooled_is_the_seed_averaged_per_problem_correctness():
    s0 = {"a": [T], "b": [F], "c": [T], "only0": [T]}
    s1 = {"a": [T], "b": [T], "c": [F]}
    pooled = stats.seed_pooled([s0, s1])
    assert pooled == {"a": [T, T], "b": [F, T], "c": [T, F]}  # problems every seed has, seed after seed
    assert stats.problem_means(pooled) == {"a": 1.0, "b": 0.5, "c": 0.5}
    # avg@k: a problem's mean over seeds and samples (k = 2 per seed)
    assert stats.problem_means(stats.seed_pooled([{"p": [T, F]}, {"p": [T, T]}])) == {"p": 0.75}
    with pytest.raises(ValueError, match="same number of samples"):
        stats.seed_pooled([{"p": [T]}, {"p": [T, F]}])
    with pytest.raises(ValueError, match="no seeds"):
        stats.seed_pooled([])


def test_seed_spread_min_max_and_sd():
    sp = stats.seed_spread([0.5, 1.0])
    assert (sp.n, sp.mean, sp.low, sp.high) == (2, 0.75, 0.5, 1.0)
    assert sp.sd == pytest.approx(math.sqrt(0.125))  # ((0.25² + 0.25²) / 1) ** 0.5
    one = stats.seed_spread([0.6])
    assert (one.n, one.low, one.high, one.sd) == (1, 0.6, 0.6, None)
    with pytest.raises(ValueError):
        stats.seed_spread([])


def test_paired_comparison_on_seed_averaged_correctness_uses_the_paired_bootstrap():
    # seed 0 right on p0, p1; seed 1 right on p0, p2 -> averaged [1, .5, .5, 0]; the base gets none right
    rmx = stats.seed_pooled([{"p0": [T], "p1": [T], "p2": [F], "p3": [F]},
                             {"p0": [T], "p1": [F], "p2": [T], "p3": [F]}])
    base = {f"p{i}": [F] for i in range(4)}
    res = stats.paired_compare(rmx, base, n_resamples=500, seed=1)
    assert res.delta == pytest.approx(0.5) and res.n == 4 and res.test == "paired-bootstrap"
    d = [1.0, 0.5, 0.5, 0.0]  # the differences the test resamples
    assert stats.bootstrap_mean_ci(d, n_resamples=500, seed=1) == res.ci
    # one seed alone is binary again: McNemar exact (2 discordant pairs, both for rmx: p = 0.5)
    one = stats.paired_compare(stats.seed_pooled([{"p0": [T], "p1": [T], "p2": [F], "p3": [F]}]), base)
    assert one.test == "mcnemar-exact" and one.p == pytest.approx(0.5)


def test_seeded_row_keys_round_trip():
    assert seeded_row_key("tiny-grpo", None) == "tiny-grpo" and split_seeded_row_key("tiny-grpo") == ("tiny-grpo", None)
    assert seeded_row_key("tiny-grpo", 7) == "tiny-grpo[seed=7]"
    assert split_seeded_row_key("tiny-grpo[seed=7]") == ("tiny-grpo", 7)


def test_seed_mean_cost_is_the_mean_per_seed():
    pricing = Pricing(date="2026-04-28", source="t", usd_per_hour={"H100-80G": 2.0})
    cpu = {"device": "cpu"}
    # a row without seeds: exactly measured_cost
    plain = seed_mean_cost({None: {"pool": {"seconds": 36.0, **cpu}}}, pricing)
    assert plain.cpu_hours == pytest.approx(0.01) and plain.per_seed == {} and "per_seed" not in plain.to_json()
    c = seed_mean_cost({0: {"pool[seed=0]": {"seconds": 36.0, **cpu}},
                        1: {"pool[seed=1]": {"seconds": 72.0, **cpu}, "entropy[seed=1]": {"seconds": 36.0, **cpu}}},
                       pricing)
    assert c.cpu_hours == pytest.approx((0.01 + 0.03) / 2) and c.usd is None and c.basis == "measured"
    assert c.per_seed == {"0": {"usd": None, "gpu_hours": None, "cpu_hours": pytest.approx(0.01)},
                          "1": {"usd": None, "gpu_hours": None, "cpu_hours": pytest.approx(0.03)}}
    assert set(c.stage_seconds) == {"pool[seed=0]", "pool[seed=1]", "entropy[seed=1]"}
    assert c.source.startswith("mean per training seed over 2 seeds (0, 1)")
    gpu = {"device": "cuda", "accelerators": 1, "accelerator_names": ["NVIDIA H100 80GB HBM3"]}
    g = seed_mean_cost({0: {"grpo[seed=0]": {"seconds": 3600.0, **gpu}},
                        3: {"grpo[seed=3]": {"seconds": 7200.0, **gpu}}}, pricing)
    assert (g.gpu_hours, g.usd) == (pytest.approx(1.5), pytest.approx(3.0))  # (2 + 4 USD) / 2


# --------------------------------------------------------------------------- the board


N = 20
RMX_SEEDS = (0, 1, 2)
GRPO_SEEDS = (0, 5)


def _spec(rmx_seeds=RMX_SEEDS, grpo_seeds=GRPO_SEEDS) -> Spec:
    return Spec(
        suite=Suite(name="seeded"), protocol=Protocol(tasks=["gsm8k", "math500"], backend="hf"),
        pricing=Pricing(date="2026-04-28", source="t", usd_per_hour={"H100-80G": 2.49}),
        recipes={"r": ReasonMaxxerRecipe()}, rl_recipes={"g": GRPORecipe()},
        models=[BaseModelSpec(
            id="base", display_name="Base", family="f", prompt_style="qwen_raw", model=ModelRef(path="/m"),
            rl_baselines=[RLBaseline(id="grpo", display_name="+ GRPO", algorithm="GRPO", source="t",
                                     train=TrainSpec(algorithm="grpo", recipe="g"),
                                     seeds=list(grpo_seeds) if grpo_seeds else None)],
            reasonmaxxer=[ReasonMaxxerRow(id="rmx", recipe="r", seeds=list(rmx_seeds) if rmx_seeds else None)])])


def _rec(row, task, correct: list[int], seed=None, **prov) -> TaskRecord:
    """A pass@1 record on N problems, problems ``correct`` right."""
    pp = {f"{task}-{i:02d}": [i in correct] for i in range(N)}
    return TaskRecord(row_id=row, task=task, metric="pass@1", score=len(correct) / N, n_problems=N, k=1,
                      per_problem=pp, seed=seed, provenance={"grader_version": "g1", **prov})


#: problems each row gets right, per (task, seed)
RIGHT = {
    ("rmx", "gsm8k", 0): range(0, 12), ("rmx", "gsm8k", 1): range(2, 16), ("rmx", "gsm8k", 2): range(0, 13),
    ("rmx", "math500", 0): range(0, 6), ("rmx", "math500", 1): range(0, 8), ("rmx", "math500", 2): range(1, 8),
    ("grpo", "gsm8k", 0): range(0, 10), ("grpo", "gsm8k", 5): range(0, 18),
    ("grpo", "math500", 0): range(0, 5), ("grpo", "math500", 5): range(0, 9),
}


def _records(drop=()) -> list[TaskRecord]:
    recs = [_rec("base", "gsm8k", list(range(8))), _rec("base", "math500", list(range(4)))]
    for (row, task, seed), right in RIGHT.items():
        if (row, task, seed) not in drop:
            recs.append(_rec(row, task, list(right), seed=seed, adapter_sha256=f"sha-{row}-{seed}",
                             backend="hf"))
    return recs


def _costs() -> dict[str, RowCost]:
    cpu = {"device": "cpu"}
    pricing = _spec().pricing
    return {"rmx": seed_mean_cost({s: {f"pool[seed={s}]": {"seconds": 36.0 * (s + 1), **cpu}} for s in RMX_SEEDS},
                                  pricing),
            "grpo": seed_mean_cost({s: {f"grpo[seed={s}]": {"seconds": 360.0, **cpu}} for s in GRPO_SEEDS}, pricing)}


@pytest.fixture(scope="module")
def board():
    return B.build_board(_spec(), _records(), _costs(), {}, None, n_resamples=400)


def _lines(table):
    return {ln.row_id: ln for lines in table.groups.values() for ln in lines}


def test_seeded_cell_is_the_mean_over_seeds_with_spread_and_seed_averaged_ci(board):
    cell = next(r for r in board.rows() if r.row_id == "rmx").cells["gsm8k"]
    assert cell.record is None and sorted(cell.seed_records) == [0, 1, 2]
    assert cell.seed_scores == {0: 0.6, 1: 0.7, 2: 0.65}
    assert cell.score == pytest.approx(0.65) and (cell.spread.low, cell.spread.high) == (0.6, 0.7)
    pooled = stats.seed_pooled([_rec("rmx", "gsm8k", list(RIGHT["rmx", "gsm8k", s])).per_problem for s in RIGHT_SEEDS])
    pm = stats.problem_means(pooled)
    assert sum(pm.values()) / N == pytest.approx(0.65)  # the mean of the seed-averaged correctness = mean over seeds
    assert cell.ci == stats.bootstrap_mean_ci([pm[k] for k in sorted(pm)], n_resamples=400,
                                              seed=stats.cell_seed("gsm8k"))
    avg = next(r for r in board.rows() if r.row_id == "rmx").avg
    # each seed's Avg over the two tasks: seed 0 (0.6+0.3)/2, seed 1 (0.7+0.4)/2, seed 2 (0.65+0.35)/2
    assert avg.seed_scores == {0: pytest.approx(0.45), 1: pytest.approx(0.55), 2: pytest.approx(0.5)}
    assert avg.score == pytest.approx(0.5) and avg.ci is not None


RIGHT_SEEDS = RMX_SEEDS


def test_table_cells_show_mean_spread_provenance_and_cost_per_seed(board):
    table = build_table(board)
    rmx, grpo, base = (_lines(table)[k] for k in ("rmx", "grpo", "base"))
    gsm = rmx.cells[0]
    assert (gsm.display_value, gsm.spread) == ("0.650", "3 seeds: 0.600–0.700")
    assert re.fullmatch(r"\[0\.\d{3}, 0\.\d{3}\]", gsm.ci)
    prov = dict(gsm.provenance)
    assert prov["seed 0 score"] == "0.6000" and prov["seed 1 score"] == "0.7000" and prov["seed 2 score"] == "0.6500"
    assert prov["training seeds"] == "0, 1, 2" and prov["score"] == "0.6500 (mean over 3 training seeds)"
    assert prov["seed spread"].startswith("min 0.6000, max 0.7000, s.d. 0.0500")
    assert prov["backend"] == "hf" and prov["adapter_sha256 (seed 2)"] == "sha-rmx-2"  # shared once, differing per seed
    assert grpo.cells[0].spread == "2 seeds: 0.500–0.900" and grpo.cells[0].display_value == "0.700"
    assert rmx.cells[2].spread == "3 seeds: 0.450–0.550"  # Avg
    assert base.cells[0].spread == "" and "seed 0 score" not in dict(base.cells[0].provenance)
    # cost: mean per seed (rmx: 36, 72, 108 s -> 72 s = 0.02 CPU-h; grpo 360 s = 0.1 CPU-h), ratio of the means
    cost = rmx.cells[3]
    assert (cost.display_value, cost.note) == ("0.02 CPU-h", "measured, mean per seed")
    assert dict(cost.provenance)["seed 2 cost"] == "0.03 CPU-h"
    assert table.cost_ratios and table.cost_ratios[0].startswith("+ GRPO ÷ + ReasonMaxxer training cost (Base): 5×")
    assert any("min–max over seeds" in tx for _, tx in table.legend)
    assert "paired bootstrap test (the averages are not 0/1" in table.paired_legend


def test_a_cost_ratio_naming_a_plus_row_is_one_bullet_in_the_markdown(board):
    """Rows are named "+ GRPO" (the paper's style): the cost-ratio bullet starting with that name
    must stay one bullet of text, not a bullet holding a nested list (CommonMark via markdown-it,
    the parser rich renders the terminal board with)."""
    from markdown_it import MarkdownIt

    from rmxbench.board.markdown import render_markdown

    md = render_markdown(build_table(board))
    tokens = MarkdownIt().parse(md)
    items = [t for i, t in enumerate(tokens) if t.type == "inline" and tokens[i - 2].type == "list_item_open"]
    ratio = next(t.content for t in items if "training cost (Base)" in t.content)
    assert ratio.startswith("\\+ GRPO ÷ + ReasonMaxxer training cost (Base): 5×"), ratio
    html = MarkdownIt().render(md)
    assert "<li>+ GRPO ÷ + ReasonMaxxer training cost (Base): 5×" in html, html
    depth = max_depth = 0
    for t in tokens:
        depth += {"bullet_list_open": 1, "bullet_list_close": -1}.get(t.type, 0)
        max_depth = max(max_depth, depth)
    assert max_depth == 1, md


def test_paired_comparisons_use_seed_averaged_correctness(board):
    rmx_base = next(c for c in board.comparisons if c.rmx.row_id == "rmx" and c.other.row_id == "base")
    res = rmx_base.per_task["gsm8k"]
    assert res.test == "paired-bootstrap" and res.delta == pytest.approx(0.65 - 0.4) and res.n == N
    grpo_base = next(c for c in board.comparisons if c.rmx.row_id == "grpo" and c.other.row_id == "base")
    assert grpo_base.per_task["math500"].delta == pytest.approx(0.35 - 0.2)
    # ReasonMaxxer vs GRPO: both seeded, both averaged over their own seeds
    rmx_grpo = next(c for c in board.comparisons if c.rmx.row_id == "rmx" and c.other.row_id == "grpo")
    assert rmx_grpo.per_task["gsm8k"].delta == pytest.approx(0.65 - 0.7)
    assert rmx_grpo.avg.test == "paired-bootstrap"


def test_missing_seed_and_stray_records(tmp_path):
    recs = _records(drop={("rmx", "math500", 2)})
    recs += [_rec("rmx", "gsm8k", [0], seed=9), _rec("base", "gsm8k", [0], seed=1), _rec("grpo", "gsm8k", [0])]
    board = B.build_board(_spec(), recs, _costs(), {}, None, n_resamples=200)
    lines = _lines(build_table(board))
    assert lines["rmx"].cells[1].spread == "2/3 seeds: 0.300–0.400"  # seed 2 has no math500 result
    assert lines["rmx"].cells[2].spread == "2/3 seeds: 0.450–0.550"  # Avg over the seeds with every task
    assert lines["rmx"].cells[0].display_value == "0.650"  # seed 9 is not one of the row's seeds
    w = " | ".join(board.warnings)
    assert "'rmx' on task 'gsm8k' with training seed 9 ignored: the row's seeds are [0, 1, 2]" in w
    assert "'base' on task 'gsm8k' with training seed 1 ignored: the row declares no seeds" in w
    assert "'grpo' on task 'gsm8k' with training seed None ignored" in w


def test_rows_without_seeds_render_exactly_as_before(tmp_path):
    """A spec without `seeds:` gets no spread, no seed legend, no per-seed figure (the old bytes:
    tests/test_board*.py check those boards)."""
    recs = [r for r in _records() if r.row_id == "base"]
    recs += [_rec("rmx", "gsm8k", list(range(10))), _rec("grpo", "gsm8k", list(range(9)))]
    board = B.build_board(_spec(None, None), recs, {}, {}, None, n_resamples=200)
    table = build_table(board)
    assert not board.has_seeds and seed_points(board) == []
    assert all(c.spread == "" for ln in _lines(table).values() for c in ln.cells)
    assert not any("seeds" in tx for _, tx in table.legend) and "seeds" not in table.paired_legend
    md, html = B.render(_spec(None, None), recs, {}, {}, None, tmp_path)
    text = md.read_text()
    assert not (tmp_path / "seeded.seeds.png").exists() and "seeds:" not in text and "Per-seed" not in text


def test_per_seed_figure_written_and_embedded(tmp_path, board):
    pts = seed_points(board)
    assert {(p["row"], p["column"], p["seed"]) for p in pts} >= {("rmx", "gsm8k", 2), ("grpo", "avg", 5)}
    assert next(p for p in pts if (p["row"], p["column"], p["seed"]) == ("grpo", "gsm8k", 5))["score"] == 0.9
    curve = tmp_path / "reward_curve.png"
    curve.write_bytes(b"\x89PNG fake curve")
    md, html = B.render(_spec(), _records(), _costs(), {}, None, tmp_path / "out",
                        figures={"grpo[seed=5]": [curve]})
    md, html = md.read_text(), html.read_text()
    png = tmp_path / "out" / "seeded.seeds.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(seeded.seeds.png)" in md and "data:image/png;base64," in html and "Per-seed scores" in html
    # a seed's stage figure: its own file and caption
    assert (tmp_path / "out" / "seeded.grpo.seed5.reward_curve.png").read_bytes() == b"\x89PNG fake curve"
    assert "Base + GRPO (training seed 5): reward" in md
    # markdown cell: value, CI, spread
    row = next(ln for ln in md.splitlines() if ln.startswith("| ↪ + ReasonMaxxer"))
    assert re.search(r"\| 0\.650 \[0\.\d{3}, 0\.\d{3}\] 3 seeds: 0\.600–0\.700 \|", row), row
    assert '<span class="ci spread">3 seeds: 0.600–0.700</span>' in html


def test_render_with_seeds_is_deterministic(tmp_path):
    a = B.render(_spec(), _records(), _costs(), {}, None, tmp_path / "a")
    b = B.render(_spec(), _records(), _costs(), {}, None, tmp_path / "b")
    for x, y in zip(a, b):
        assert Path(x).read_bytes() == Path(y).read_bytes()
    assert (tmp_path / "a" / "seeded.seeds.png").read_bytes() == (tmp_path / "b" / "seeded.seeds.png").read_bytes()
