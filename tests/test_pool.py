"""Training-pool selection and the contamination guard (paper §6.1; rmxbench policy)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rmxbench.errors import UserError
from rmxbench.method.pool import ContaminationIndex, normalise, scan_contamination, select_pool

SHARED = Path(__file__).parents[1] / ".." / "shared" / "benchmarks"

LONG = ("A rectangular garden is twice as long as it is wide and the total length of the fence "
        "around it is 60 meters; what is the area of the garden in square meters")


def _source(n=60):
    rows = [{"id": f"p{i}", "problem": f"Problem number {i}: compute {i} plus {i * 7} and then subtract {i}.",
             "answer": str(i * 7), "level": 1 + i % 5} for i in range(n)]
    rows[3]["problem"] = "What is $2+2$?"  # normalised-text copy of an evaluation problem
    rows[4]["problem"] = "Riddle. " + LONG + " if the fence costs nothing?"  # shares a 13-gram
    return rows


EVAL = {"math500": [{"id": "e0", "problem": "what is 2 + 2 ?", "answer": "4"},
                    {"id": "e1", "problem": LONG + "?", "answer": "200"}]}


def test_normalise_and_index():
    assert normalise("What is $2+2$?") == normalise("what is 2 + 2 ?")
    idx = ContaminationIndex.build(EVAL)
    assert idx.hit("What is $2+2$?") == "math500"
    assert idx.hit("Riddle. " + LONG) == "math500"
    assert idx.hit("A rectangular garden is twice as long as it is wide.") is None  # < 13 shared words


def test_drop_counts_and_keeps_sizes_and_levels():
    src = _source()
    sel = select_pool(src, size=20, validation_size=10, seed=0, eval_sets=EVAL, contamination="drop")
    ids = {r["id"] for r in sel.pool}
    assert len(sel.pool) == 20 and len(sel.validation) == 10
    assert not ids & {r["id"] for r in sel.validation}  # validation disjoint from the pool
    assert "p3" not in ids | {r["id"] for r in sel.validation}
    assert "p4" not in ids | {r["id"] for r in sel.validation}
    assert sel.report["contaminated_dropped"] == 2
    assert sel.report["contaminated_by_task"] == {"math500": 2}
    assert sel.report["levels"] == {str(lv): 4 for lv in range(1, 6)}  # balanced across levels
    again = select_pool(src, size=20, validation_size=10, seed=0, eval_sets=EVAL)
    assert [r["id"] for r in again.pool] == [r["id"] for r in sel.pool]  # seeded
    other = select_pool(src, size=20, validation_size=10, seed=1, eval_sets=EVAL)
    assert [r["id"] for r in other.pool] != [r["id"] for r in sel.pool]


def test_refuse_raises_and_off_keeps():
    src = _source(6)
    with pytest.raises(UserError, match="overlaps the evaluation set 'math500'"):
        select_pool(src, size=5, validation_size=0, seed=0, eval_sets=EVAL, contamination="refuse")
    sel = select_pool(src, size=5, validation_size=1, seed=0, eval_sets=EVAL, contamination="off")
    assert sel.report["contaminated_dropped"] == 0
    assert {r["id"] for r in sel.pool + sel.validation} == {f"p{i}" for i in range(6)}


def test_too_small_source_is_a_user_error():
    with pytest.raises(UserError, match="pool.size"):
        select_pool(_source(5), size=10, validation_size=2, seed=0)


def test_boilerplate_ngrams_are_not_contamination():
    tail = " can be written as m/n where m and n are relatively prime positive integers find m plus n"
    ev = {"aime24": [{"id": f"a{i}", "problem": f"Question {i} about triangles{tail}", "answer": "1"} for i in range(3)]}
    assert ContaminationIndex.build(ev).hit(f"A probability question{tail}") is None


@pytest.mark.skipif(not (SHARED / "math_train.jsonl").is_file(), reason="shared benchmarks not present")
def test_math_train_against_six_test_sets_is_fast():
    from rmxbench.evaluation.data import load_benchmark

    ev = {t: load_benchmark(t, data_dir=SHARED) for t in
          ("gsm8k", "math500", "minerva_math", "olympiadbench", "aime24", "amc23")}
    src = load_benchmark("math_train", data_dir=SHARED)
    t0 = time.perf_counter()
    counts = scan_contamination(src, ev)
    sel = select_pool(src, size=150, validation_size=50, seed=0, eval_sets=ev)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0, elapsed
    assert counts.get("math500", 0) > 0  # MATH-500 problems have near-copies in MATH train
    assert len(sel.pool) == 150 and len(sel.validation) == 50
    idx = ContaminationIndex.build(ev, src)
    assert all(idx.hit(r["problem"]) is None for r in sel.pool)
    assert set(sel.report["levels"]) <= {"1", "2", "3", "4", "5"}
