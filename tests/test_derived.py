"""Derived benchmark ``gsm8k_calc`` (rmxbench/evaluation/derived.py): built at load time from
GSM8K rows, registered like any benchmark, graded with GSM8K's policy."""

from __future__ import annotations

from rmxbench.evaluation.derived import calc_problems


def test_calc_problems_keep_exact_single_operations_once():
    rows = [{"id": "g/0", "solution": "half: <<48/2=24>>24, total <<48+24=72>>72, three <<16-3-4=9>>9\n#### 72"},
            {"id": "g/1", "solution": "rounded <<10/3=3.33>>3.33, again <<48/2=24>>24, <<0.2*50=10>>10, <<x*2=4>>"},
            {"id": "g/2", "solution": None}]
    got = calc_problems(rows)
    assert [(r["id"], r["problem"], r["answer"]) for r in got] == [
        ("g/0#0", "What is 48 / 2?", "24"), ("g/0#1", "What is 48 + 24?", "72"), ("g/1#2", "What is 0.2 * 50?", "10")]


def test_gsm8k_calc_is_a_registered_benchmark(shared_dir):
    from rmxbench.evaluation.data import data_identity, load_benchmark
    from rmxbench.evaluation.grading import grade, policy_for
    from rmxbench.spec.benchmarks import BENCHMARKS, pools, tasks

    data = shared_dir / "benchmarks"
    test, pool = load_benchmark("gsm8k_calc", data_dir=data), load_benchmark("gsm8k_calc_train", data_dir=data)
    assert (len(test), len(pool)) == (862, 7358)
    assert not {r["expression"] for r in test} & {r["expression"] for r in pool}  # held out by construction
    assert pool[0] == {"id": "gsm8k_train/0000#0", "problem": "What is 48 / 2?", "answer": "24",
                       "source_id": "gsm8k_train/0000", "expression": "48/2"}
    assert "gsm8k_calc" in tasks() and "gsm8k_calc_train" in pools()
    assert BENCHMARKS["gsm8k_calc"].derived_from == ("gsm8k", "gsm8k_train")
    ident = data_identity("gsm8k_calc", data)
    assert ident["version"] == "gsm8k_calc-2"
    assert ident["from"] == [data_identity("gsm8k", data), data_identity("gsm8k_train", data)]
    assert policy_for("gsm8k_calc") == policy_for("gsm8k")
    assert grade("9 * 2 = 18. The final answer is 18.", "18", task="gsm8k_calc").correct
