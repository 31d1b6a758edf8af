"""rmxbench's lm-eval tasks (rmxbench/lm_tasks, linked as tasks/): loading, prompts, the keep-all
filter (avg@k must see all k samples), scoring, hub row mapping, and evaluation's argument building.

No model runs here (see tests/test_evaluation.py for end-to-end runs); lm-eval's real task,
filter and Instance classes are used throughout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rmxbench.errors import UserError
from rmxbench.lm_tasks import TASKS_DIR
from rmxbench.evaluation.prompts import R1_USER, STOP_SEQUENCES, build_prompt, task_prompt, truncate_at_stops

FIXTURES = Path(__file__).parent / "fixtures" / "bench"


def _load(names, **meta):
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False,
                     metadata={"data_dir": str(FIXTURES), **meta})
    return tm, tm.load(list(names))


def test_repo_tasks_dir_is_the_package_dir(repo_root):
    assert (repo_root / "tasks").resolve() == TASKS_DIR
    assert (repo_root / "tasks" / "utils.py").is_file()


def test_task_folder_is_the_generators_output():
    """Every file of rmxbench/lm_tasks (but README and the generator) is generated from the benchmark
    records and the default protocol; regenerate with `python -m rmxbench.lm_tasks`."""
    from rmxbench.lm_tasks import stale_files, task_files

    files = task_files()
    for name, text in files.items():
        assert (TASKS_DIR / name).read_text(encoding="utf-8") == text, f"{name} is stale: run python -m rmxbench.lm_tasks"
    assert not stale_files(), "task files of no benchmark: run python -m rmxbench.lm_tasks"
    on_disk = {p.name for p in TASKS_DIR.iterdir() if p.is_file()}
    assert on_disk == {*files, "README.md", "__init__.py", "__main__.py"}


def test_generated_task_states_no_decoding_of_its_own():
    """k, metrics and decoding of a task file are Protocol.metric's: a protocol with other settings
    gives a config that differs exactly there."""
    import yaml

    from rmxbench.evaluation.lmeval import lm_task_config
    from rmxbench.lm_tasks import task_files
    from rmxbench.spec.schema import Protocol

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    text = task_files()["rmx_aime24.yaml"]
    on_file = yaml.load(text, Loader=Loader)
    p = Protocol()
    assert on_file["repeats"] == p.metric("aime24").k == 8
    assert on_file["generation_kwargs"]["temperature"] == p.avg_at_k.temperature
    assert on_file["custom_dataset"] == "utils.load_docs" and on_file["dataset_kwargs"] == {"benchmark": "aime24"}
    other = lm_task_config("aime24", Protocol(avg_at_k={"k": 3, "temperature": 0.9}), "qwen_raw")
    assert other["repeats"] == 3 and other["generation_kwargs"]["temperature"] == 0.9
    assert [m["metric"] for m in other["metric_list"]] == ["avg@3", "pass@3", "maj@3", "score", "rmx_graded"]


def test_all_tasks_and_group_are_indexed():
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    names = {n for n in tm.all_tasks if n.startswith("rmx_")}
    assert names == {"rmx_gsm8k", "rmx_math500", "rmx_minerva_math", "rmx_olympiadbench", "rmx_aime24",
                     "rmx_amc23", "rmx_tinymath", "rmx_gsm8k_calc", "rmx_paper"}


def test_paper_group_contains_the_six_tasks():
    _, loaded = _load(["rmx_paper"])
    assert set(loaded["tasks"]) == {"rmx_gsm8k", "rmx_math500", "rmx_minerva_math", "rmx_olympiadbench",
                                    "rmx_aime24", "rmx_amc23"}
    assert "rmx_paper" in loaded["groups"]


def test_docs_come_from_the_data_dir_with_default_style():
    _, loaded = _load(["rmx_gsm8k"])
    t = loaded["tasks"]["rmx_gsm8k"]
    docs = list(t.test_docs())
    assert [d["id"] for d in docs] == ["gsm8k/0000", "gsm8k/0001", "gsm8k/0002"]
    assert docs[1]["answer"] == "24" and docs[1]["task"] == "gsm8k"
    assert t.doc_to_text(docs[1]) == build_prompt(docs[1]["problem"], "qwen_raw")
    assert t.doc_to_target(docs[1]) == "24"
    assert t.config.repeats == 1 and t.config.generation_kwargs["do_sample"] is False


@pytest.mark.parametrize("style", ["orz_think", "prime_chat", "simplerl_chatml", "mistral_qa", "r1_chat"])
def test_prompt_style_from_metadata(style):
    _, loaded = _load(["rmx_amc23"], prompt_style=style)
    doc = loaded["tasks"]["rmx_amc23"].test_docs()[0]
    assert doc["prompt"] == task_prompt(doc["problem"], style)
    if style == "r1_chat":  # user message only; lm-eval's apply_chat_template renders it
        assert doc["prompt"] == R1_USER.format(problem=doc["problem"])
    assert doc["problem"] in doc["prompt"]


def test_unknown_style_is_a_user_error():
    with pytest.raises(UserError, match="prompt_style 'chatty'"):
        _load(["rmx_gsm8k"], prompt_style="chatty")


def test_tinymath_uses_the_embedded_test_split_and_tiny_story():
    from rmxbench.evaluation.data import load_benchmark

    _, loaded = _load(["rmx_tinymath"])
    t = loaded["tasks"]["rmx_tinymath"]
    docs = t.test_docs()
    rows = load_benchmark("tinymath")
    assert len(docs) == len(rows) and docs[0]["id"] == rows[0]["id"]
    assert docs[0]["prompt"] == f"Problem: {rows[0]['problem']}\nSolution:"


def test_avg_tasks_sample_eight_times():
    _, loaded = _load(["rmx_aime24", "rmx_amc23"], data_dir=str(FIXTURES))
    t = loaded["tasks"]["rmx_amc23"]
    assert t.config.repeats == 8
    g = t.config.generation_kwargs
    assert g["do_sample"] is True and g["temperature"] == 0.6 and g["top_p"] == 0.95


def _instances(task, completions_per_doc):
    from lm_eval.api.instance import Instance

    insts = []
    for i, (doc, comps) in enumerate(zip(task.test_docs(), completions_per_doc)):
        inst = Instance(request_type="generate_until", doc=doc,
                        arguments=(doc["prompt"], task.config.generation_kwargs), idx=0,
                        metadata=(task.config.task, i, task.config.repeats))
        inst.resps = list(comps)
        insts.append(inst)
    return insts


def test_all_eight_samples_reach_process_results():
    """First sample wrong, other seven right: avg@8 = 7/8, not the first sample's 0."""
    from lm_eval.filters import build_filter_ensemble

    _, loaded = _load(["rmx_amc23"])
    task = loaded["tasks"]["rmx_amc23"]
    wrong, right = "So the answer is \\boxed{49}.", "So the answer is \\boxed{50}."
    comps = [[wrong] + [right] * 7, [wrong] * 8]  # problem 0 gold 50; problem 1 gold 9
    insts = _instances(task, comps)
    for f in task._filters:
        f.apply(insts)
    assert [f.name for f in task._filters] == ["graded"]
    m0 = task.process_results(insts[0].doc, [insts[0].filtered_resps["graded"]])
    m1 = task.process_results(insts[1].doc, [insts[1].filtered_resps["graded"]])
    assert m0["avg@8"] == pytest.approx(7 / 8) and m0["score"] == pytest.approx(7 / 8)
    assert m0["pass@8"] == 1.0 and m0["maj@8"] == 1.0
    assert m0["rmx_graded"]["correct"] == [False] + [True] * 7
    assert m0["rmx_graded"]["extracted"][:2] == ["49", "50"]
    assert m1["avg@8"] == 0.0 and m1["pass@8"] == 0.0 and m1["maj@8"] == 0.0

    # The pitfall this guards against: lm-eval's default filter keeps only sample 0.
    default = build_filter_ensemble("none", [["take_first", None]])
    insts = _instances(task, comps)
    default.apply(insts)
    m_first = task.process_results(insts[0].doc, [insts[0].filtered_resps["none"]])
    assert m_first == {"pass@1": 0.0, "score": 0.0, "rmx_graded": m_first["rmx_graded"]}


def test_majority_vote_picks_the_most_common_answer():
    from rmxbench.evaluation.lm_hooks import scores_from_verdicts

    m = scores_from_verdicts([True, False, False, True, False], ["50", "49", "49", "50", "49"])
    assert m["avg@5"] == pytest.approx(0.4) and m["pass@5"] == 1.0 and m["maj@5"] == 0.0
    m = scores_from_verdicts([False, False], [None, None])
    assert m["maj@2"] == 0.0 and m["avg@2"] == 0.0


@pytest.mark.parametrize("style,text,expected", [
    ("qwen_raw", "x = 2 so \\boxed{2}\n\nProblem: next one", "x = 2 so \\boxed{2}"),
    ("orz_think", "think</think> <answer>\\boxed{3}</answer> User: more", "think</think> <answer>\\boxed{3}"),
    ("tiny_story", " 3+4=7. The answer is \\boxed{7}.\nProblem: Tom has", " 3+4=7. The answer is \\boxed{7}."),
    ("r1_chat", "no stops here \\boxed{1}", "no stops here \\boxed{1}"),
])
def test_filter_truncates_at_the_style_stops(style, text, expected):
    from rmxbench.evaluation.lm_hooks import truncate_keep_all

    assert truncate_at_stops(text, style) == expected
    out = truncate_keep_all([[text, text]], [{"prompt_style": style}])
    assert out == [[expected, expected]]


def test_every_style_has_stop_sequences_and_a_prompt():
    for style in STOP_SEQUENCES:
        assert "PROBLEM-TEXT" in task_prompt("PROBLEM-TEXT", style)


# ---------------------------------------------------------------- hub row mapping (fake rows)

def test_hub_mappers_match_the_local_file_format():
    from rmxbench.evaluation.hub_data import map_rows
    from rmxbench.spec.benchmarks import BENCHMARKS

    assert {n for n, b in BENCHMARKS.items() if b.hub is not None} >= {"gsm8k", "math500", "minerva_math", "olympiadbench", "aime24", "amc23",
                            "math_train", "gsm8k_train"}
    g = map_rows("gsm8k", [{"question": "Q?", "answer": "a <<1+1=2>>2\n#### 2,125"}])[0]
    assert g == {"id": "gsm8k/0000", "problem": "Q?", "answer": "2125", "solution": "a <<1+1=2>>2\n#### 2,125"}
    m = map_rows("math500", [{"problem": "P", "solution": "s \\boxed{\\frac12}", "answer": "\\frac12",
                              "subject": "Algebra", "level": 3, "unique_id": "test/algebra/1.json"}])[0]
    assert (m["id"], m["answer"], m["level"]) == ("math500/0000", "\\frac12", 3)
    mm = map_rows("minerva_math", [{"question": "Q", "answer": "1.5"}] * 2)[1]
    assert (mm["id"], mm["problem"], mm["answer"]) == ("minerva_math/0001", "Q", "1.5")
    o = map_rows("olympiadbench", [{"id": 2231, "question": "Q", "final_answer": ["$69$,$84$"],
                                    "solution": ["sol1", "sol2"], "is_multiple_answer": True}])[0]
    assert (o["answer"], o["solution"], o["source_id"], o["error"]) == ("69,84", "sol1", 2231, None)
    a = map_rows("aime24", [{"id": 60, "problem": "P", "solution": "S", "answer": "025", "url": "u"}])[0]
    assert (a["answer"], a["answer_raw"]) == ("25", "025")
    c = map_rows("amc23", [{"id": 0, "question": "P", "answer": 27.0, "url": "u"}])[0]
    assert (c["problem"], c["answer"]) == ("P", "27")
    t = map_rows("math_train", [{"problem": "P", "solution": "so \\boxed{\\frac{1}{2}}.", "level": "Level 2",
                                 "type": "Algebra"}])[0]
    assert t["answer"] == "\\frac{1}{2}"


def test_olympiadbench_tolerance_reaches_the_grader():
    """The one OlympiadBench row with an ``error`` field (0316: "correct to one decimal place",
    answer 4.2, error 1e-1) is graded with that absolute tolerance; rows without one are not."""
    from lm_eval.tasks import TaskManager

    from rmxbench.evaluation import lm_hooks as utils

    shared = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks"
    if not (shared / "olympiadbench.jsonl").is_file():
        pytest.skip("offline benchmark data not found")
    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_dir": str(shared)})
    docs = list(tm.load(["rmx_olympiadbench"])["tasks"]["rmx_olympiadbench"].test_docs())
    with_tol = [d for d in docs if d["tolerance"] is not None]
    assert [(d["id"], d["answer"], d["tolerance"]) for d in with_tol] == [("olympiadbench/0316", "4.2", "1e-1")]
    doc = with_tol[0]
    assert utils.process_results(doc, [[r"\boxed{4.25}"]])["score"] == 1.0
    assert utils.process_results(doc, [[r"\boxed{4.3}"]])["score"] == 1.0  # inclusive
    assert utils.process_results(doc, [[r"\boxed{4.35}"]])["score"] == 0.0
    plain = dict(doc, tolerance=None)
    assert utils.process_results(plain, [[r"\boxed{4.25}"]])["score"] == 0.0


def test_hub_mapper_names_a_missing_field():
    from rmxbench.evaluation.hub_data import map_rows

    with pytest.raises(UserError, match="final_answer"):
        map_rows("olympiadbench", [{"question": "Q"}])


def test_hub_source_ids_are_the_documented_ones():
    from rmxbench.evaluation.hub_data import MAPPERS
    from rmxbench.spec.benchmarks import BENCHMARKS

    hub = {n: b.hub for n, b in BENCHMARKS.items() if b.hub is not None}
    assert hub["gsm8k"].dataset == "openai/gsm8k" and hub["gsm8k"].configs == ("main",)
    assert hub["math500"].dataset == "HuggingFaceH4/MATH-500"
    assert hub["olympiadbench"].configs == ("OE_TO_maths_en_COMP",)
    assert hub["aime24"].dataset == "HuggingFaceH4/aime_2024"
    assert {s.mapper for s in hub.values()} <= set(MAPPERS)


# ---------------------------------------------------------------- evaluation argument building

def test_generation_kwargs_follow_the_protocol():
    from rmxbench.evaluation.lmeval import generation_kwargs
    from rmxbench.spec.schema import Protocol

    p = Protocol(max_new_tokens=123)
    g = generation_kwargs("gsm8k", p, "qwen_raw")
    assert g == {"until": STOP_SEQUENCES["qwen_raw"], "max_gen_toks": 123, "do_sample": False, "temperature": 0.0}
    a = generation_kwargs("aime24", p, "orz_think")
    assert a == {"until": STOP_SEQUENCES["orz_think"], "max_gen_toks": 123, "do_sample": True,
                 "temperature": 0.6, "top_p": 0.95}
    assert p.metric("aime24").k == 8 and p.metric("math500").k == 1
    assert p.metric("aime24").name == "avg@8" and p.metric("math500").name == "pass@1"


def test_engine_spec_of_a_model_and_its_adapter(tmp_path):
    """``rmxbench eval``'s engine: the backend resolved, the model keyed by its identity, the vLLM
    LoRA size from the adapter's largest rank (``rank_pattern`` included) within the protocol's cap."""
    import json

    from rmxbench.backends.session import engine_of
    from rmxbench.spec.schema import ModelRef

    ad = tmp_path / "adapter"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "rank_pattern": {"q_proj": 24}}))
    hub = ModelRef(repo="Qwen/Qwen2.5-1.5B", revision="8faed761d45a263340a0528343f099c05c9a4323")
    e = engine_of(hub, backend="vllm", dtype="bfloat16", adapter=ad)
    assert e.backend == "vllm" and e.max_lora_rank == 32  # holds rank 24, the smallest size vLLM accepts
    assert e.model == engine_of(hub, backend="hf").model and e.key != engine_of(hub, backend="hf").key
    assert engine_of(hub, backend="hf", adapter=ad).max_lora_rank == 0  # PEFT needs no engine-level cap
    with pytest.raises(UserError, match="max_lora_rank"):
        engine_of(hub, backend="vllm", adapter=ad, max_lora_rank=16)
    with pytest.raises(UserError, match="adapter_config.json"):
        engine_of(hub, backend="vllm", adapter=tmp_path)


@pytest.mark.parametrize("task,k,expected", [("amc23", 4, {"avg@4", "pass@4", "maj@4"}),
                                             ("math500", 3, {"avg@3", "pass@3", "maj@3"}),
                                             ("aime24", 1, {"pass@1"})])
def test_protocol_metric_decides_repeats_and_metrics(task, k, expected):
    from rmxbench.evaluation.lmeval import load_lm_task
    from rmxbench.spec.schema import Protocol

    p = Protocol(tasks=[task], avg_at_k={"k": k, "tasks": [task] if k > 1 else []})
    _, t = load_lm_task(task, p, "qwen_raw", metadata={"data_dir": str(FIXTURES)})
    assert t.config.repeats == k
    assert set(t._aggregation_list) == expected | {"score", "rmx_graded"}
    docs = t.test_docs()
    m = t.process_results(docs[0], [["\\boxed{0}"] * k])
    assert set(m) == expected | {"score", "rmx_graded"}
