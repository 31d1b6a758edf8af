"""The leaderboard: Table-3 layout, bold, averages, paper/diff formatting, CIs, paired tests,
escaping, self-containment and determinism of the Markdown + HTML output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rmxbench.board import chart as CH
from rmxbench.board import reference as REF
from rmxbench.board import render as B
from rmxbench.board import runfolder as RF
from rmxbench.spec.recipe import ReasonMaxxerRecipe
from rmxbench.results import RowCost, TaskRecord
from rmxbench.spec.schema import (
    AvgAtK, BaseModelSpec, Cost, ModelRef, Pricing, Protocol, ReasonMaxxerRow, Reported,
    RLBaseline, Spec, Suite,
)

EVIL = "Evil<script>alert(1)</script> & Co"
SHARED = Path(__file__).parents[1] / ".." / "shared"
TASKS = ["gsm8k", "math500", "aime24"]
K = 4


def make_spec() -> Spec:
    ref = lambda m: Reported(family="fam-a", model=m)  # noqa: E731
    return Spec(
        suite=Suite(name="unit-board", description="Synthetic board <b>test</b> & more"),
        protocol=Protocol(tasks=TASKS, avg_at_k=AvgAtK(k=K, tasks=["aime24"]), backend="hf"),
        pricing=Pricing(date="2026-04-28", source="test prices", usd_per_hour={"H100-80G": 2.49}),
        recipes={"paper": ReasonMaxxerRecipe()},
        models=[
            BaseModelSpec(
                id="base-a", display_name=EVIL, family="fam-a", prompt_style="qwen_raw",
                model=ModelRef(path="/models/base-a"), reported=ref("Base A"),
                rl_baselines=[
                    RLBaseline(
                        id="rl-a", display_name="+ GRPO-Zoo", algorithm="GRPO",
                        source="https://example.org/rl-a", model=ModelRef(repo="org/rl-a", revision="a" * 40),
                        cost=Cost(usd=200, gpu_type="H100-80G", basis="estimated", source="paper App. D"),
                        reported=ref("Base A + GRPO-Zoo"),
                    ),
                    RLBaseline(
                        id="rl-gone", display_name="+ Closed-RL", algorithm="PPO", source="a paper",
                        unavailable="weights never released",
                        cost=Cost(usd=1200, basis="reported", source="their paper"),
                        reported=ref("Base A + Closed-RL"),
                    ),
                    RLBaseline(
                        id="rl-same", display_name="+ Twin", algorithm="GRPO", source="test",
                        model=ModelRef(path="/models/twin"),
                    ),
                ],
                reasonmaxxer=[ReasonMaxxerRow(id="rmx-a", recipe="paper", reported=ref("Base A + ReasonMaxxer"))],
            ),
            BaseModelSpec(
                id="base-b", display_name="Base B", family="fam-b", prompt_style="qwen_raw",
                model=ModelRef(path="/models/base-b"),
                reasonmaxxer=[ReasonMaxxerRow(id="rmx-b", recipe="paper", display_name="+ RMX small")],
            ),
        ],
    )


def make_reference() -> dict:
    cols = [*TASKS, "avg"]

    def row(model, role, scores, **kw):
        return {"model": model, "role": role, "scores": scores, **kw}

    return {
        "columns": cols,
        "families": {
            "fam-a": [
                row("Base A", "base", [0.41, 0.30, 0.10, 0.27]),
                row("Base A + GRPO-Zoo", "rl_baseline", [0.62, 0.496, 0.20, 0.44], cost_usd=200, cost_basis="estimated"),
                row("Base A + Closed-RL", "rl_baseline", [0.65, 0.52, 0.22, 0.463], cost_usd=1200, cost_basis="reported"),
                row("Base A + ReasonMaxxer", "reasonmaxxer", [0.69, 0.502, 0.25, 0.481], cost_usd=4, cost_basis="measured"),
            ]
        },
    }


def pass1(row_id: str, task: str, n: int, n_correct: int, **prov) -> TaskRecord:
    """A pass@1 record whose first ``n_correct`` problems (of ``n``) are correct."""
    pp = {f"{task}-{i:04d}": [i < n_correct] for i in range(n)}
    return TaskRecord(row_id=row_id, task=task, metric="pass@1", score=n_correct / n, n_problems=n, k=1,
                      per_problem=pp, provenance={"grader_version": "g1", "lm_eval_version": "0.4.13", **prov})


def avgk(row_id: str, task: str, n: int, per_problem_correct: list[int]) -> TaskRecord:
    """An avg@K record: problem i has ``per_problem_correct[i]`` correct samples of K."""
    pp = {f"{task}-{i:04d}": [j < per_problem_correct[i] for j in range(K)] for i in range(n)}
    score = sum(per_problem_correct) / (n * K)
    return TaskRecord(row_id=row_id, task=task, metric=f"avg@{K}", score=score, n_problems=n, k=K,
                      per_problem=pp, provenance={"seed": 1234})


# Constructed verdicts (inputs): base < RL < RMX on gsm8k, RL best on math500, RMX best on aime24.
N_GSM, N_MATH, N_AIME = 200, 100, 30
CORRECT = {
    "base-a": {"gsm8k": 80, "math500": 30, "aime24": [1 if i < 12 else 0 for i in range(N_AIME)]},
    "rl-a": {"gsm8k": 120, "math500": 50, "aime24": [2 if i < 12 else 0 for i in range(N_AIME)]},
    "rmx-a": {"gsm8k": 140, "math500": 45, "aime24": [3 if i < 12 else 1 for i in range(N_AIME)]},
}


def make_records() -> list[TaskRecord]:
    recs = []
    for rid, c in CORRECT.items():
        extra = {"hardware": "</script><script>alert(2)</script>"} if rid == "rmx-a" else {}
        recs.append(pass1(rid, "gsm8k", N_GSM, c["gsm8k"], **extra))
        recs.append(pass1(rid, "math500", N_MATH, c["math500"]))
        recs.append(avgk(rid, "aime24", N_AIME, c["aime24"]))
    # rl-same: exactly the ReasonMaxxer row's verdicts (identical rows -> p = 1).
    for r in [r for r in recs if r.row_id == "rmx-a"]:
        recs.append(TaskRecord(**{**r.to_json(), "row_id": "rl-same"}))
    # fam-b: the ReasonMaxxer row has only gsm8k (incomplete row), its base everything.
    recs.append(pass1("base-b", "gsm8k", 50, 20))
    recs.append(pass1("rmx-b", "gsm8k", 50, 25))
    return recs


def make_costs() -> dict[str, RowCost]:
    return {
        "rmx-a": RowCost(usd=4.12, gpu_hours=2.18, gpu_type="H100-80G", basis="measured", source="meter.json",
                         stage_seconds={"rollouts": 3000.0, "train": 4848.0}),
        "rmx-b": RowCost(cpu_hours=0.0123, basis="measured", source="meter.json (CPU)"),
    }


NOTES = {"rmx-b": "too few mixed-success problems (3 of 150)"}


@pytest.fixture(scope="module")
def built():
    return B.build_board(make_spec(), make_records(), make_costs(), NOTES, make_reference())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    md, html = B.render(make_spec(), make_records(), make_costs(), NOTES, make_reference(), out)
    return Path(md).read_text(encoding="utf-8"), Path(html).read_text(encoding="utf-8"), out


def md_table(md: str, after: str) -> list[list[str]]:
    """Rows (split cells) of the first pipe table following the heading ``after``."""
    lines = md[md.index(after):].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]])
    return rows


def row_named(rows, prefix):
    hits = [r for r in rows if r[0].startswith(prefix)]
    assert len(hits) == 1, (prefix, [r[0] for r in rows])
    return hits[0]


# --------------------------------------------------------------------------- Markdown


def test_markdown_layout_groups_rows_columns(rendered):
    md, _, _ = rendered
    rows = md_table(md, "## Results")
    header = rows[0]
    assert header == ["Model", "GSM8K pass@1", "MATH-500 pass@1", f"AIME24 avg@{K}", "Avg", "Cost"]
    names = [r[0] for r in rows[2:]]
    escaped = "Evil&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"
    assert names == [
        "**fam-a**", escaped, "↪ + GRPO-Zoo", "↪ + Closed-RL \\[paper only\\] (note 1)", "↪ + Twin",
        "↪ + ReasonMaxxer", "**fam-b**", "Base B", "↪ + RMX small (note 2)",
    ]
    assert "<script>" not in md


def test_markdown_bold_best_per_block(rendered):
    md, _, _ = rendered
    rows = md_table(md, "## Results")
    rmx, rl, base = row_named(rows, "↪ + ReasonMaxxer"), row_named(rows, "↪ + GRPO-Zoo"), rows[3]
    twin = row_named(rows, "↪ + Twin")
    # gsm8k: RMX 0.700 (tied with its identical twin) beats RL 0.600 and base 0.400.
    assert rmx[1].startswith("**0.700**") and twin[1].startswith("**0.700**")
    assert rl[1].startswith("0.600") and base[1].startswith("0.400")
    # math500: RL 0.500 is best.
    assert rl[2].startswith("**0.500**") and rmx[2].startswith("0.450")
    # aime24 avg@4: RMX (12*3 + 18*1)/(30*4) = 0.450.
    assert rmx[3].startswith("**0.450**") and not rl[3].startswith("**")
    # fam-b: base-b 0.400 vs rmx-b 0.500 on gsm8k — its own block.
    assert row_named(rows, "↪ + RMX small")[1].startswith("**0.500**")
    assert row_named(rows, "Base B")[1].startswith("0.400")


def test_markdown_average_and_incomplete(rendered, built):
    md, _, _ = rendered
    rows = md_table(md, "## Results")
    scores = {r.task: r.score for r in make_records() if r.row_id == "rmx-a"}
    expected = sum(scores.values()) / 3
    rmx = row_named(rows, "↪ + ReasonMaxxer")
    assert rmx[4].startswith(f"**{expected:.3f}**")
    rmx_row = next(r for r in built.rows() if r.row_id == "rmx-a")
    assert rmx_row.avg.score == pytest.approx(expected)
    assert rmx_row.avg.ci[0] <= expected <= rmx_row.avg.ci[1]
    small = row_named(rows, "↪ + RMX small")
    assert "incomplete: 1/3 tasks" in small[4]
    assert not small[4].startswith("**")  # incomplete rows are never bold on Avg


def test_markdown_reported_and_diff(rendered):
    md, _, _ = rendered
    rows = md_table(md, "## Results")
    rmx = row_named(rows, "↪ + ReasonMaxxer")
    assert rmx[1].endswith("(paper 0.690, +0.010)")
    assert rmx[2].endswith("(paper 0.502, -0.052)")
    rl = row_named(rows, "↪ + GRPO-Zoo")
    assert rl[2].endswith("(paper 0.496, +0.004)")
    gone = row_named(rows, "↪ + Closed-RL")
    assert gone[1:4] == ["— (paper 0.650)", "— (paper 0.520)", "— (paper 0.220)"]
    assert gone[4] == "— (paper 0.463)"
    # Rows without a reference pointer show reproduced numbers only.
    assert "paper" not in row_named(rows, "↪ + Twin")[1]


def test_markdown_costs_and_notes(rendered):
    md, _, _ = rendered
    rows = md_table(md, "## Results")
    # estimated -> italic; "$" escaped so GitHub does not read "$...$" as math
    assert row_named(rows, "↪ + GRPO-Zoo")[5] == "*\\$200* (estimated)"
    assert row_named(rows, "↪ + Closed-RL")[5] == "\\$1,200 (reported)"
    assert row_named(rows, "↪ + ReasonMaxxer")[5] == "\\$4.12 (measured) (paper \\$4, measured)"
    assert row_named(rows, "↪ + RMX small")[5] == "0.0123 CPU-h (measured)"
    assert rows[3][5] == "—"  # base rows have no training cost
    notes = md[md.index("### Notes"):]
    esc = "Evil&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"
    assert f"1. {esc} ↪ + Closed-RL (`rl-gone`): no public checkpoint: weights never released" in notes
    assert "2. Base B ↪ + RMX small (`rmx-b`): too few mixed-success problems (3 of 150)" in notes


def test_cell_ci_brackets_point_and_shrinks_with_more_problems(built):
    for row in built.rows():
        for cell in row.cells.values():
            if cell.score is not None:
                assert cell.ci is not None and cell.ci[0] <= cell.score <= cell.ci[1], (row.row_id, cell.task)
    spec = make_spec()
    small = B.build_board(spec, [pass1("base-a", "gsm8k", 40, 20)], {}, {}, None)
    large = B.build_board(spec, [pass1("base-a", "gsm8k", 1000, 500)], {}, {}, None)
    ci_s = next(small.rows()).cells["gsm8k"].ci
    ci_l = next(large.rows()).cells["gsm8k"].ci
    assert ci_l[1] - ci_l[0] < 0.4 * (ci_s[1] - ci_s[0])


def test_paired_significance_table(rendered, built):
    md, _, _ = rendered
    comps = {(c.rmx.row_id, c.other.row_id): c for c in built.comparisons}
    assert set(comps) == {("rmx-a", "base-a"), ("rmx-a", "rl-a"), ("rmx-a", "rl-same"), ("rmx-b", "base-b")}
    vs_base = comps[("rmx-a", "base-a")]
    assert vs_base.per_task["gsm8k"].delta == pytest.approx(0.30)
    assert vs_base.per_task["gsm8k"].test == "mcnemar-exact"
    assert vs_base.per_task["gsm8k"].p < 1e-6
    assert vs_base.per_task["aime24"].test == "paired-bootstrap"
    assert vs_base.avg.p < 0.01 and vs_base.avg.ci[0] > 0
    same = comps[("rmx-a", "rl-same")]
    for t in TASKS:
        assert same.per_task[t].p == 1.0 and same.per_task[t].delta == 0.0
    assert same.avg.p == 1.0
    # The rendered table: one row per comparison, with Δ, CI and p.
    rows = md_table(md, "## Paired comparisons")
    assert rows[0] == ["Row", "vs", "GSM8K pass@1", "MATH-500 pass@1", f"AIME24 avg@{K}", "Avg"]
    line = next(r for r in rows if r[1].endswith("(base)") and r[0].endswith("+ ReasonMaxxer"))
    assert line[2].startswith("+0.300 [") and line[2].endswith("p<0.001")
    twin = next(r for r in rows if r[1] == "↪ + Twin")
    assert twin[2] == "+0.000 [+0.000, +0.000] p=1.000"


# --------------------------------------------------------------------------- HTML


def test_html_is_escaped_and_self_contained(rendered):
    _, html, _ = rendered
    assert "<script>alert" not in html
    assert "alert(1)</script>" not in html
    assert "</script><script>alert(2)" not in html  # provenance JSON cannot close the script
    assert "Evil&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(2)" in html
    assert "Synthetic board &lt;b&gt;test&lt;/b&gt; &amp; more" in html
    # No external resource loads (the spec's source URL must not become one).
    assert not re.search(r"""(?:src|href|action|data)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert html.count("<script") == 2  # the JSON blob and the inline sorter
    # The embedded provenance JSON parses and holds per-cell provenance.
    blob = re.search(r'<script type="application/json" id="rmx-prov">(.*?)</script>', html, re.S).group(1)
    prov = dict((k, dict(v)) for k, v in json.loads(blob).items())
    cell = prov["rmx-a/gsm8k"]
    assert cell["hardware"] == "</script><script>alert(2)</script>"
    assert cell["n problems"] == str(N_GSM) and cell["grader_version"] == "g1"
    assert cell["lm_eval_version"] == "0.4.13"
    assert cell["95% CI"].startswith("[") and cell["paper"] == "0.690"
    assert prov["rl-a/gsm8k"]["model ref"] == "org/rl-a@" + "a" * 40


def test_html_structure_sortable_and_subcells(rendered):
    _, html, _ = rendered
    assert html.count('<tbody class="sortable"') == 2  # one per family group
    assert html.count('class="sortable" data-col=') == 6
    assert '<span class="paper">paper 0.690</span> <span class="diff">+0.010</span>' in html
    assert 'data-row="rl-gone"' in html and "paper only" in html
    # The title attribute carries provenance too (hover).
    assert re.search(r'data-prov="rmx-a/gsm8k"[^>]*title="[^"]*grader_version: g1', html)


def test_render_is_deterministic(tmp_path):
    a = B.render(make_spec(), make_records(), make_costs(), NOTES, make_reference(), tmp_path / "a")
    b = B.render(make_spec(), list(reversed(make_records())), make_costs(), NOTES, make_reference(), tmp_path / "b")
    assert [p.name for p in a] == ["unit-board.md", "unit-board.html"]
    for pa, pb in zip(a, b):
        assert Path(pa).read_bytes() == Path(pb).read_bytes()
    assert not list((tmp_path / "a").glob(".*.tmp"))  # atomic writes leave no temp files


def test_unknown_rows_and_tasks_are_reported_not_rendered(tmp_path):
    recs = [pass1("nope", "gsm8k", 10, 5), pass1("base-a", "amc23", 10, 5)]
    board = B.build_board(make_spec(), recs, {}, {"ghost": "x"}, None)
    assert any("'nope'" in w for w in board.warnings)
    assert any("amc23" in w for w in board.warnings)
    assert any("ghost" in w for w in board.warnings)
    assert not any(r.reproduced for r in board.rows())


# --------------------------------------------------------------------------- reference + stored runs


def test_load_reference_missing_file_warns(tmp_path):
    with pytest.warns(UserWarning, match="not found"):
        assert REF.load_reference(tmp_path / "absent.yaml") is None
    assert REF.load_reference(None) is None


def test_load_reference_rejects_bad_shape(tmp_path):
    from rmxbench.errors import UserError

    p = tmp_path / "ref.yaml"
    p.write_text("columns: [gsm8k, avg]\nfamilies:\n  f:\n    - {model: M, scores: [0.1]}\n")
    with pytest.raises(UserError, match="1 scores for 2 columns"):
        REF.load_reference(p)


def test_paper_reference_file_lookup():
    path = SHARED / "reference" / "paper_table3.yaml"
    if not path.is_file():
        pytest.skip(f"shared reference file absent: {path}")
    ref = REF.load_reference(path)
    got = REF.lookup_reported(ref, Reported(family="qwen2.5", model="Qwen2.5-1.5B + SimpleRL-Zoo"))
    assert got["scores"]["math500"] == pytest.approx(0.496)
    assert got["scores"]["avg"] == pytest.approx(0.287)
    assert got["cost_usd"] == 200 and got["cost_basis"] == "estimated"
    assert REF.lookup_reported(ref, Reported(family="qwen2.5", model="nope")) is None


def _write_run(home: Path, suite: str):
    d = RF.run_dir(home, suite)
    d.mkdir(parents=True)
    recs = make_records()
    (d / RF.RESULTS_FILE).write_text("".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in recs))
    (d / RF.COSTS_FILE).write_text(json.dumps({k: v.to_json() for k, v in make_costs().items()}))
    (d / RF.NOTES_FILE).write_text(json.dumps(NOTES))
    return recs


def test_load_run_round_trip_and_errors(tmp_path):
    from rmxbench.errors import UserError

    recs = _write_run(tmp_path, "unit-board")
    got, costs, notes = RF.load_run(tmp_path, "unit-board")
    assert [r.to_json() for r in got] == [r.to_json() for r in recs]
    assert costs["rmx-a"].usd == 4.12 and notes == NOTES
    assert RF.load_run(tmp_path, "other-suite") == ([], {}, {})
    with (RF.run_dir(tmp_path, "unit-board") / RF.RESULTS_FILE).open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(UserError, match=r"results\.jsonl:%d" % (len(recs) + 1)):
        RF.load_run(tmp_path, "unit-board")


SPEC_YAML = """
suite: {name: cli-board, description: "CLI test"}
protocol: {tasks: [gsm8k, math500, aime24], avg_at_k: {k: 4, tasks: [aime24]}, backend: hf}
pricing: {date: 2026-04-28, source: test, usd_per_hour: {H100-80G: 2.49}}
reference: ref.yaml
recipes: {paper: {}}
models:
  - id: base-a
    display_name: "Evil<script>alert(1)</script> & Co"
    family: fam-a
    prompt_style: qwen_raw
    model: {path: /models/base-a}
    reported: {family: fam-a, model: Base A}
    rl_baselines:
      - {id: rl-a, display_name: + GRPO-Zoo, algorithm: GRPO, source: test, model: {path: /m/rl},
         reported: {family: fam-a, model: Base A + GRPO-Zoo}}
    reasonmaxxer:
      - {id: rmx-a, recipe: paper, reported: {family: fam-a, model: Base A + ReasonMaxxer}}
"""


def test_cli_board_renders_from_stored_run(tmp_path, capsys):
    import yaml

    from rmxbench.cli import main

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC_YAML)
    (tmp_path / "ref.yaml").write_text(yaml.safe_dump(make_reference()))
    home = tmp_path / "home"
    _write_run(home, "cli-board")
    out = tmp_path / "lb"
    assert main(["board", str(spec_path), "--home", str(home), "--out", str(out)]) == 0
    md = (out / "cli-board.md").read_text()
    assert "(paper 0.690, +0.010)" in md  # reference resolved relative to the spec file
    # Results for rows not in this spec are ignored with a warning, not rendered.
    assert "rl-same" not in md.split("## Warnings")[0]
    assert (out / "cli-board.html").is_file()
    # Missing reference file: warning, board without paper numbers.
    (tmp_path / "ref.yaml").unlink()
    assert main(["board", str(spec_path), "--home", str(home), "--out", str(out)]) == 0
    out_text = " ".join(capsys.readouterr().out.split())  # rich wraps long paths
    assert "ref.yaml not found" in out_text
    assert "paper 0." not in (out / "cli-board.md").read_text()


def test_identical_verdicts_get_identical_intervals(built):
    rows = {r.row_id: r for r in built.rows()}
    for t in TASKS:
        assert rows["rl-same"].cells[t].ci == rows["rmx-a"].cells[t].ci
    assert rows["rl-same"].avg.ci == rows["rmx-a"].avg.ci


def test_chart_png_written_and_embedded(tmp_path, built):
    pts = CH.chart_points(built)
    # rl-a: reproduced Avg at its published $200 and the paper's point; rl-gone: paper only
    # ($1,200, 0.463); rmx-a: measured $4.12 and paper $4. rmx-b has no USD cost (CPU-hours).
    got = sorted((p["label"].split(" ")[-1], p["source"], p["usd"]) for p in pts)
    assert got == sorted([
        ("GRPO-Zoo", "reproduced", 200.0), ("GRPO-Zoo", "paper", 200.0), ("Closed-RL", "paper", 1200.0),
        ("ReasonMaxxer", "reproduced", 4.12), ("ReasonMaxxer", "paper", 4.0),
    ])
    md, html = B.render(make_spec(), make_records(), make_costs(), NOTES, make_reference(), tmp_path)
    png = (tmp_path / "unit-board.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import base64

    assert base64.b64encode(png).decode() in Path(html).read_text()
    assert "![Avg score vs training cost (log scale)](unit-board.png)" in Path(md).read_text()
    # Nothing to plot (only base rows reproduced, no reference): no chart, a stale one is removed.
    B.render(make_spec(), [r for r in make_records() if r.row_id.startswith("base")], {}, {}, None, tmp_path)
    assert not (tmp_path / "unit-board.png").exists()
    assert "data:image/png" not in Path(html).read_text()
