"""The paper's analyses (rmxbench/analysis) on the embedded tiny model: exactness properties.

The non-trivial "other" model is a ReasonMaxxer adapter trained by the real trainer on a reduced
tiny recipe (one τ, a 64-problem pool; ~15 s): it steers the plan token, so it diverges from the
base at a few high-entropy tokens, as the paper's RL models do.

- reranking of a model against itself: 0 divergent tokens; against the adapter: > 0, all of
  them reranked (rank ≥ 2), at higher base entropy than agreeing tokens;
- interventions: zero substitutions reproduce the base's greedy output token for token, the
  oracle reproduces the other's (both as decoded by :class:`HFGenerator`), and the oracle
  substitutes exactly the reranking analysis' divergent tokens; random substitution touches
  the oracle's count per problem and never emits the base's argmax there;
- distillation of a model into itself: top-k KL ≈ 0 before and after, verdicts unchanged;
- τ curve: each τ adapter's accuracy equals an independent scoring of that adapter;
- renderers escape spec strings and embed the figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "rmxbench" / "embedded" / "tiny"
N = 24  # test problems
MNT = 48  # completions are ~36 tokens

pytestmark = pytest.mark.skipif(not (TINY / "model.safetensors").is_file(),
                                reason="embedded tiny model (rmxbench/embedded/tiny) not present")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from rmxbench.analysis.common import ModelHandle, Pair
    from rmxbench.evaluation.data import load_benchmark
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.orchestrator.runner import train_row
    from rmxbench.pipeline.store import ArtifactStore
    from rmxbench.spec.check import load_spec
    from rmxbench.spec.context import SpecContext
    from rmxbench.spec.schema import ModelRef, ReasonMaxxerRow

    torch.set_num_threads(1)
    os.environ.setdefault("RMXBENCH_THREADS", "1")
    spec = load_spec(ROOT / "specs" / "tiny.yaml")
    base_spec = spec.models[0]
    recipe = spec.recipes[base_spec.reasonmaxxer[0].recipe]
    recipe = recipe.model_copy(update={"taus": [0.3, 0.6], "pool": recipe.pool.model_copy(update={"size": 64}),
                                       "selection": recipe.selection.model_copy(update={"validation_problems": 16})})
    base_spec = base_spec.model_copy(update={"reasonmaxxer": [ReasonMaxxerRow(id="tiny-r", recipe="r")],
                                             "rl_baselines": []})  # no GRPO training in these tests
    spec = spec.model_copy(update={"recipes": {"r": recipe}, "models": [base_spec]})
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    ctx = SpecContext.of(spec, ROOT / "specs" / "tiny.yaml", home=store.home)
    import io

    from rich.console import Console

    res = train_row(build_plan(ctx, store=store, only=["tiny-r"]), "tiny-r", console=Console(file=io.StringIO()))
    assert res.status == "ok", res.message
    ref = ModelRef(path="package:embedded/tiny")
    base = ModelHandle("tiny <b>", ref, dtype="float32")
    other = ModelHandle("tiny-rmx", ref, adapter_dir=res.adapter_dir, dtype="float32")
    copy = ModelHandle("tiny copy", ref, dtype="float32")
    loaded = {"base": base.load(), "other": other.load()}
    return {"pair": Pair(base, other, "tiny_story"), "self": Pair(base, copy, "tiny_story"), "loaded": loaded,
            "problems": load_benchmark("tinymath", limit=N), "adapter": res.adapter_dir,
            "pool": load_benchmark("embedded_train", limit=200), "spec": spec, "store": store}


@pytest.fixture(scope="module")
def reranked(setup, tmp_path_factory):
    from rmxbench.analysis import reranking
    from rmxbench.spec.analyses import RerankingConfig

    out = tmp_path_factory.mktemp("rerank")
    m = setup["loaded"]
    return out, reranking.build(RerankingConfig(), setup["pair"], setup["problems"], task="tinymath",
                                max_new_tokens=MNT, out_dir=out, models=(m["base"], m["other"]))


@pytest.fixture(scope="module")
def intervened(setup, tmp_path_factory):
    from rmxbench.analysis import interventions
    from rmxbench.spec.analyses import InterventionConfig

    out = tmp_path_factory.mktemp("interv")
    m = setup["loaded"]
    return out, interventions.build(InterventionConfig(taus=[0.3, 50.0]), setup["pair"], setup["problems"],
                                    task="tinymath", max_new_tokens=MNT, out_dir=out,
                                    models=(m["base"], m["other"]))


def test_reranking_self_has_no_divergence(setup, tmp_path):
    from rmxbench.analysis import reranking
    from rmxbench.spec.analyses import RerankingConfig

    m = setup["loaded"]["base"]
    r = reranking.build(RerankingConfig(), setup["self"], setup["problems"], task="tinymath", max_new_tokens=MNT,
                        out_dir=tmp_path, models=(m, m))
    t = r.data["table2"]
    assert t["tokens"] > 20 * N and t["divergent"] == 0 and t["reranked_frac"] == 0 and t["shifted_frac"] == 0
    assert t["mean_rank_divergent"] is None and sum(r.data["rank_buckets"].values()) == 0


def test_reranking_against_adapter(reranked):
    out, r = reranked
    t = r.data["table2"]
    assert 0 < t["divergent"] < 0.2 * t["tokens"]  # sparse, but present
    assert t["divergent_frac"] == pytest.approx(t["reranked_frac"] + t["shifted_frac"])
    assert r.data["rank_buckets"]["1"] == 0  # divergent = base argmax differs: never rank 1 (no ties here)
    assert sum(r.data["rank_buckets"].values()) == t["divergent"]
    assert t["entropy_divergent"] > 5 * t["entropy_agreeing"]  # decision points (paper §3.1)
    saved = json.loads((out / "result.json").read_text())
    assert saved["data"]["table2"] == t
    assert {f["file"] for f in saved["figures"]} == {"rank_histogram.png", "entropy_distributions.png"}
    assert all((out / f["file"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in saved["figures"])


def test_interventions_exactness(setup, reranked, intervened):
    from rmxbench.analysis.common import greedy_samples, prompts_for
    from rmxbench.analysis.interventions import lockstep_decode

    (bm, tok), (om, _) = setup["loaded"]["base"], setup["loaded"]["other"]
    prompts = prompts_for(setup["problems"], "tiny_story", tok)
    hf_base = greedy_samples(bm, tok, prompts, style="tiny_story", max_new_tokens=MNT, batch_size=8)
    hf_other = greedy_samples(om, tok, prompts, style="tiny_story", max_new_tokens=MNT, batch_size=8)
    kw = dict(style="tiny_story", max_new_tokens=MNT, batch_size=5)  # other batching than HFGenerator's
    zero = lockstep_decode(bm, om, tok, prompts, kind="base", **kw)
    oracle = lockstep_decode(bm, om, tok, prompts, kind="oracle", **kw)
    assert [d.completion_ids for d in zero] == [s.completion_ids for s in hf_base]
    assert [d.completion_ids for d in oracle] == [s.completion_ids for s in hf_other]
    assert [d.completion_ids for d in oracle] != [d.completion_ids for d in zero]  # the pair differs
    assert sum(map(sum, (d.substituted for d in zero))) == 0
    # the oracle substitutes exactly the divergent tokens of the reranking analysis
    _, rr = reranked
    assert [sum(d.substituted) for d in oracle] == rr.data["divergent_per_completion"]
    _, r = intervened
    c = {x["name"]: x for x in r.data["conditions"]}
    assert r.data["oracle_matches_other"] == 1.0
    assert c["oracle"]["accuracy"] == c["other"]["accuracy"]
    assert c["oracle"]["substituted_frac"] == pytest.approx(rr.data["table2"]["divergent_frac"])
    assert c["entropy τ=50"]["substituted_frac"] == 0 and c["entropy τ=50"]["accuracy"] == c["base"]["accuracy"]
    assert c["entropy τ=0.3"]["touched_frac"] > 0


def test_random_substitution_plan(setup, intervened):
    from rmxbench.analysis.common import prompts_for
    from rmxbench.analysis.interventions import lockstep_decode, random_plan

    (bm, tok), (om, _) = setup["loaded"]["base"], setup["loaded"]["other"]
    prompts = prompts_for(setup["problems"], "tiny_story", tok)[:6]
    kw = dict(style="tiny_story", max_new_tokens=MNT, batch_size=3)
    base = lockstep_decode(bm, om, tok, prompts, kind="base", **kw)
    plan = random_plan([2] * 6, [len(d.completion_ids) for d in base], top_k=20, seed=1)
    assert plan == random_plan([2] * 6, [len(d.completion_ids) for d in base], top_k=20, seed=1)
    rnd = lockstep_decode(bm, om, tok, prompts, kind="random", random_plan=plan, random_top_k=20, **kw)
    for d, p in zip(rnd, plan):
        first = min(p)  # the first planned position is always reached: the prefix equals the base's
        assert d.touched[first] and d.substituted[first]
        assert d.substituted == [t and s for t, s in zip(d.touched, d.substituted)]  # never the argmax
        assert sum(d.touched) <= 2
    _, r = intervened
    c = {x["name"]: x for x in r.data["conditions"]}
    assert c["random"]["substituted_frac"] > 0


def test_self_distillation_is_a_fixed_point(setup, tmp_path):
    from rmxbench.analysis import distillation
    from rmxbench.spec.analyses import DistillationConfig, LoraVariant

    m = setup["loaded"]["base"]
    cfg = DistillationConfig(pool="embedded_train", n_problems=16, max_new_tokens=MNT, epochs=1, batch_size=4,
                             gradient_accumulation_steps=1, learning_rate=1e-3,
                             variants=[LoraVariant(rank=2, target_modules=["o_proj"])])
    r = distillation.build(cfg, setup["self"], setup["pool"], setup["problems"][:12], task="tinymath",
                           max_new_tokens=MNT, out_dir=tmp_path, models=(m, m))
    v = r.data["variants"][0]
    assert v["kl_before"] < 1e-3 and v["kl_after"] < 1e-3  # top-64 of a 384-token vocabulary: ~all mass
    assert v["steps"] == 4 and len(v["loss_history"]) == 4
    assert v["per_problem"] == r.data["base"]["per_problem"] == r.data["teacher"]["per_problem"]
    assert v["recovered"] is None  # no gap to recover
    assert (tmp_path / "adapter_0" / "adapter_config.json").is_file()
    assert r.data["teacher_rollouts"]["rollouts"] == 16
    # the base came back unchanged (LoRA unloaded)
    assert not any("lora" in n for n, _ in m[0].named_parameters())


def test_topk_kl_matches_full_kl_when_k_is_vocab():
    import torch

    from rmxbench.analysis.distillation import topk_kl

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 12, bias=False)
    h, t = torch.randn(5, 8), torch.randn(5, 12)
    idx = torch.arange(12).expand(5, 12)
    got = topk_kl(h, head, idx, t)
    p, q = torch.log_softmax(t, -1), torch.log_softmax(head(h), -1)
    assert torch.allclose(got, (p.exp() * (p - q)).sum(-1), atol=1e-6)
    assert (got > 0).all()


def test_tau_curve_scores_each_adapter(setup, tmp_path):
    from peft import PeftModel

    from rmxbench.analysis import tau_curve
    from rmxbench.spec.analyses import TauCurveConfig
    from rmxbench.analysis.common import score
    from rmxbench.errors import UserError

    sweep = tau_curve.sweep_from_adapter(setup["adapter"])
    assert [p.tau for p in sweep] == [0.3, 0.6] and sum(p.picked for p in sweep) == 1
    probs = setup["problems"][:12]
    r = tau_curve.build(TauCurveConfig(max_new_tokens=MNT), setup["pair"].base, {"contrastive": sweep}, probs,
                        task="tinymath", prompt_style="tiny_story", max_new_tokens=MNT, out_dir=tmp_path)
    bm, tok = setup["pair"].base.load()
    pm = PeftModel.from_pretrained(bm, str(sweep[1].adapter_dir))
    indep = score(pm, tok, probs, style="tiny_story", task="tinymath", max_new_tokens=MNT, batch_size=4)
    got = r.data["sweeps"][0]
    assert got["label"] == "contrastive" and len(got["points"]) == 2
    assert got["points"][1]["per_problem"] == indep["per_problem"]
    assert got["points"][1]["decision_fraction"] == sweep[1].decision_fraction
    assert tau_curve.sweep_label(setup["adapter"]) == "tiny-r (contrastive)"
    with pytest.raises(UserError, match="τ table"):
        tau_curve.sweep_from_adapter(tmp_path)


def test_render_escapes_and_embeds(reranked, intervened):
    from rmxbench.board.analyses import render_html, render_markdown

    for out, r in (reranked, intervened):
        md = render_markdown(r, figure_prefix="x/")
        page = render_html(r, out)
        assert "tiny &lt;b&gt;" in md and "<b>" not in md  # label "tiny <b>" is inert
        assert "tiny &lt;b&gt;" in page and "<b>" not in page
        assert page.count("data:image/png;base64,") == len(r.figures) >= 1
        assert all(f"(x/{f.file})" in md for f in r.figures)
    assert "| pair | tokens | base argmax agrees | divergent |" in render_markdown(reranked[1])


def test_configs_reject_unknown_fields():
    from pydantic import ValidationError

    from rmxbench.spec.analyses import DistillationConfig, InterventionConfig

    with pytest.raises(ValidationError):
        DistillationConfig(lr=1e-3)
    with pytest.raises(ValidationError):
        InterventionConfig(taus=[1.2, 1.2])
    d = DistillationConfig()
    assert (d.temperature, d.top_p, d.n_problems, d.top_k_logits, d.epochs, d.batch_size,
            d.gradient_accumulation_steps, d.learning_rate, d.weight_decay) == (0.6, 0.95, 100, 64, 3, 2, 8, 1e-4, 1e-2)


def test_analyses_section_cross_references():
    from rmxbench.spec.analyses import AnalysisEntry
    from rmxbench.spec.analysis_pairs import check_entries, resolve
    from rmxbench.evaluation.prompts import TEMPLATES
    from rmxbench.spec.benchmarks import tasks
    from rmxbench.spec.check import load_spec
    from rmxbench.spec.problems import field_path

    spec = load_spec(ROOT / "specs" / "tiny.yaml")
    kw = dict(tasks=tasks(), styles=tuple(TEMPLATES))
    good = AnalysisEntry(id="a", base="tiny", other="tiny-rmx", run=["reranking", "tau_curve"], tasks=["tinymath"])
    assert check_entries(spec, [good], **kw) == []
    r = resolve(spec, good)
    assert r.other_kind == "reasonmaxxer" and [s.id for s in r.sweeps] == ["tiny-rmx"] and r.prompt_style == "tiny_story"
    bad = [AnalysisEntry(id="a", base="tiny", other="nope", run=["reranking"], tasks=["gsm9k"]),
           AnalysisEntry(id="a", base="tiny", run=["interventions"], tasks=["tinymath"], sweeps=["tiny"]),
           AnalysisEntry(id="b", base="huge", run=["tau_curve"], tasks=["tinymath"])]
    probs = check_entries(spec, bad, **kw)
    fields = [field_path(p[0]) for p in probs]
    assert fields == ["analyses[0].other", "analyses[0].tasks[0]", "analyses[1].id", "analyses[1].other",
                      "analyses[1].sweeps[0]", "analyses[1].sweeps", "analyses[2].base"]
    assert "tiny-rmx" in probs[0][2] and "tinymath" in probs[1][2]


def test_validate_reports_analyses_errors_with_lines(tmp_path, capsys):
    from rmxbench.cli import main

    text = (ROOT / "specs" / "tiny_analyses.yaml").read_text()
    assert main(["validate", "-q", str(ROOT / "specs" / "tiny_analyses.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("    other: tiny-rmx\n", "    other: tiny-rmxx\n"))
    line = next(i for i, x in enumerate(bad.read_text().splitlines(), 1) if x == "    other: tiny-rmxx")
    capsys.readouterr()
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().out
    assert f"bad.yaml:{line}: analyses[0].other" in err and "did you mean 'tiny-rmx'?" in err


def test_analyze_command(setup, tmp_path, capsys):
    from rmxbench.cli import main

    out = tmp_path / "out"
    argv = ["analyze", "--base", "package:embedded/tiny", "--other-adapter", str(setup["adapter"]), "--task",
            "tinymath", "--prompt-style", "tiny_story", "--limit", "6", "--max-new-tokens", str(MNT), "--dtype",
            "float32", "--analysis", "reranking", "--out", str(out)]
    assert main(argv) == 0
    res = json.loads((out / "reranking-tinymath" / "result.json").read_text())
    assert res["n"] == 6 and res["data"]["table2"]["tokens"] > 0
    assert "rank_histogram.png" in (out / "analyses.md").read_text()
    assert "data:image/png;base64," in (out / "analyses.html").read_text()
    assert not list(out.glob(".tmp-*"))
    assert "rmxbench analyze: loading package:embedded/tiny" in (out / "analyze.log").read_text()  # loaders' output
    mtime = (out / "reranking-tinymath" / "result.json").stat().st_mtime
    assert main(argv) == 0 and (out / "reranking-tinymath" / "result.json").stat().st_mtime == mtime  # resumed
    # the same --out with other settings is refused, not answered with the old pair's result
    capsys.readouterr()
    other = [x if x != "6" else "5" for x in argv]
    assert main(other) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{out / 'reranking-tinymath'} holds a reranking result computed with other settings (limit: 6 then, 5 now)" \
        in err and "--force recomputes it" in err, err
    assert json.loads((out / "reranking-tinymath" / "result.json").read_text())["n"] == 6
    assert json.loads((out / "reranking-tinymath" / "request.json").read_text())["limit"] == 6
    log_size = (out / "analyze.log").stat().st_size
    assert main(argv) == 0 and (out / "analyze.log").stat().st_size == log_size  # done already: no model loaded
    # an adapter folder whose files changed at the same path is another adapter
    import shutil

    ad, out2 = tmp_path / "ad", tmp_path / "out2"
    shutil.copytree(setup["adapter"], ad)
    argv2 = [x if x != str(setup["adapter"]) else str(ad) for x in argv]
    argv2[argv2.index(str(out))] = str(out2)
    assert main(argv2) == 0
    with (ad / "adapter_config.json").open("a") as fh:
        fh.write("\n")
    capsys.readouterr()
    assert main(argv2) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "holds a reranking result computed with other settings (other_adapter: " in err, err
    bad = tmp_path / "bad.yaml"
    bad.write_text("reranking: {top_kk: 3}\n")
    capsys.readouterr()
    assert main([*argv, "--config", str(bad)]) == 1
    assert "reranking.top_kk" in capsys.readouterr().err
    assert main(argv[:3] + ["--task", "tinymath", "--prompt-style", "tiny_story", "--out", str(out)]) == 1
    assert "give --other" in capsys.readouterr().err


def test_analyze_knows_models_by_content_not_by_how_they_are_named(tmp_path, monkeypatch):
    """``--other ./m`` from two folders holding different weights: two requests (a rerun there must
    not report the first model's result as the second's); the same files under another name: one."""
    import argparse
    import shutil

    from rmxbench.commands.analyze import _request
    from rmxbench.embedded import __file__ as embedded_init

    tiny = Path(embedded_init).parent / "tiny"
    for d in ("A", "B", "C"):
        shutil.copytree(tiny, tmp_path / d / "m")
    cfg = (tmp_path / "B" / "m" / "config.json")
    cfg.write_text(cfg.read_text().replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05'))

    def request(folder: str) -> dict:
        monkeypatch.chdir(tmp_path / folder)
        args = argparse.Namespace(base="package:embedded/tiny", base_revision=None, other="./m", other_revision=None,
                                  other_adapter=None, sweep=[], task="tinymath", limit=4, prompt_style="tiny_story",
                                  max_new_tokens=16, dtype="auto")
        return _request(args, None)

    a, b, c = request("A"), request("B"), request("C")
    assert a["other"] != b["other"] and a["other"].startswith("model:")
    assert a == c and a["other"] == a["base"]  # the same bytes are the same model, whatever the path
    assert a["data"]["embedded"] == "tinymath" and len(a["data"]["sha256"]) == 64


def test_analyses_run_as_stages_and_show_on_the_board(setup, tmp_path):
    """An `analyses:` entry becomes cached stage nodes (listed by --dry-run, keyed by the row's pick),
    and its sections appear on the board, also when re-rendered by `rmxbench board`."""
    import io

    from rich.console import Console

    from rmxbench.spec.analyses import AnalysisEntry
    from rmxbench.cli import main
    from rmxbench.orchestrator.planner import build_plan
    from rmxbench.orchestrator.runner import Runner
    from rmxbench.spec.context import SpecContext

    entry = AnalysisEntry(id="tiny-vs-r", base="tiny", other="tiny-r", run=["reranking", "tau_curve"],
                          tasks=["tinymath"], limit=8, reranking={"max_new_tokens": MNT},
                          tau_curve={"max_new_tokens": MNT})
    spec = setup["spec"].model_copy(update={"analyses": [entry]})
    ctx = SpecContext.of(spec, ROOT / "specs" / "tiny.yaml", home=setup["store"].home)
    plan = build_plan(ctx, store=setup["store"])
    items = {i.label: i for i in plan.items if i.stage in ("reranking", "tau_curve")}
    assert set(items) == {"reranking tiny-vs-r tinymath", "tau_curve tiny-vs-r tinymath"}
    pick = plan.graph.one("tiny-r", "pick")
    assert all(pick in i.node.inputs.values() for i in items.values())
    assert all(i.status == "run" and i.row_id == "tiny-r" for i in items.values())
    forced = build_plan(ctx, store=setup["store"], force=["pick"])
    assert all(i.status in ("run", "forced") for i in forced.items if i.stage in ("reranking", "tau_curve"))
    out = tmp_path / "board"
    Runner(plan, console=Console(file=io.StringIO()), out_dir=out).run()
    md = (out / "tiny.md").read_text()
    assert "## Analyses (paper §3, §4, §6.3)" in md and "### Token reranking" in md and "τ curve" in md
    linked = [x.split("](")[1].rstrip(")") for x in md.splitlines() if x.startswith("![")]
    assert len(linked) == 3 and all((out / p).is_file() for p in linked)
    html = (out / "tiny.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    again = build_plan(ctx, store=setup["store"])
    assert all(i.status == "cached" for i in again.items if i.stage in ("reranking", "tau_curve"))
    (out / "tiny.md").unlink()
    spec_file = tmp_path / "spec.yaml"
    import yaml

    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False))
    assert main(["board", str(spec_file), "--home", str(setup["store"].home), "--out", str(out)]) == 0
    assert "### Token reranking" in (out / "tiny.md").read_text()
