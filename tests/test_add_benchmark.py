"""Adding a benchmark is one record and its data file (issue 17 item 3, CONTRIBUTING.md "How to add
a benchmark"): a throwaway benchmark registered with one call works in ``rmxbench validate``,
``rmxbench run`` (board column included), ``rmxbench eval`` and plain ``lm_eval --include_path``
on a task folder generated from its record.

The data are the first rows of the embedded tinymath test split under new ids (its problems suit
the embedded tiny model); the model is the embedded tiny model on the HF backend.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rmxbench.spec.benchmarks import Benchmark, register, unregister

pytestmark = pytest.mark.slow
NAME, LABEL, N = "throwaway", "Throwaway-7", 3


@pytest.fixture()
def bench(tmp_path, monkeypatch):
    """The record (one call) and its JSONL file in a data dir; unregistered afterwards."""
    import torch

    from rmxbench.evaluation.data import load_benchmark

    torch.set_num_threads(2)
    monkeypatch.delenv("RMXBENCH_DATA_DIR", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"id": f"{NAME}/{i:04d}", "problem": r["problem"], "answer": r["answer"]}
            for i, r in enumerate(load_benchmark("tinymath", limit=N))]
    (data / f"{NAME}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    record = register(Benchmark(NAME, LABEL, "tinymath", file=f"{NAME}.jsonl", prompt_style="tiny_story"))
    yield record, data
    unregister(NAME)


def _spec(tmp_path: Path, data: Path, task: str = NAME) -> Path:
    spec = tmp_path / "throwaway.yaml"
    spec.write_text(f"""
suite: {{name: throwaway-suite, description: a benchmark added by one record}}
protocol:
  tasks: [{task}]
  backend: hf
  max_new_tokens: 16
  max_model_len: 256
  batch_size: 8
  data_dir: {data}
pricing: {{date: 2026-04-28, source: test, usd_per_hour: {{H100-80G: 2.49}}}}
models:
  - id: tiny
    display_name: tiny (embedded)
    family: embedded
    model: {{path: "package:embedded/tiny"}}
    dtype: float32
    prompt_style: tiny_story
""", encoding="utf-8")
    return spec


def test_a_registered_benchmark_works_everywhere(bench, tmp_path, capsys):
    from rmxbench.cli import main
    from rmxbench.evaluation.grading import POLICIES, policy_for

    record, data = bench
    assert policy_for(NAME) == POLICIES["tinymath"]

    # validate: the name is a task; a near miss is an error naming it
    spec = _spec(tmp_path, data)
    assert main(["validate", str(spec)]) == 0
    assert "OK" in capsys.readouterr().out
    (tmp_path / "typo").mkdir()
    assert main(["validate", str(_spec(tmp_path / "typo", data, task="throwawy"))]) == 1
    assert "did you mean 'throwaway'" in capsys.readouterr().out

    # run: the eval node is planned, built and shown as a board column
    home, board = tmp_path / "home", tmp_path / "board"
    assert main(["run", str(spec), "--home", str(home), "--out", str(board)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    records = [json.loads(p.read_text()) for p in (home / "eval").glob("*/record.json")]
    assert [(r["task"], r["n_problems"], r["provenance"]["data"]["source"]) for r in records] == [(NAME, N, "data_dir")]
    md = (board / "throwaway-suite.md").read_text(encoding="utf-8")
    html = (board / "throwaway-suite.html").read_text(encoding="utf-8")
    assert LABEL in md.splitlines()[next(i for i, line in enumerate(md.splitlines()) if line.startswith("| Model"))]
    assert LABEL in html
    score = records[0]["score"]
    assert f"{100 * score:.1f}" in md

    # eval: the record's prompt style wins over --prompt-style's default (qwen_raw)
    out = tmp_path / "eval"
    assert main(["eval", "--model", "package:embedded/tiny", "--tasks", NAME, "--limit", "2", "--data-dir", str(data),
                 "--backend", "hf", "--max-new-tokens", "16", "--dtype", "float32", "--out", str(out)]) == 0
    rec = json.loads((out / NAME / "record.json").read_text())
    assert (rec["task"], rec["n_problems"], rec["provenance"]["prompt_style"]) == (NAME, 2, "tiny_story")


def test_plain_lm_eval_on_the_generated_task(bench, tmp_path, monkeypatch, capsys):
    """The task folder generated from the record, run by lm-eval's own command line (in this
    process, where the record is registered)."""
    from lm_eval.__main__ import cli_evaluate

    from rmxbench.embedded import tiny_model_dir
    from rmxbench.lm_tasks import write_task_files

    record, data = bench
    tasks = tmp_path / "tasks"
    written = write_task_files(tasks, [record])
    assert sorted(p.name for p in written) == [f"rmx_{NAME}.yaml", "utils.py"]
    out = tmp_path / "lm_eval"
    monkeypatch.setenv("RMXBENCH_DATA_DIR", str(data))
    monkeypatch.setattr(sys, "argv", [
        "lm_eval", "--include_path", str(tasks), "--tasks", f"rmx_{NAME}", "--model", "hf",
        "--model_args", f"pretrained={tiny_model_dir()}", "--device", "cpu", "--gen_kwargs", "max_gen_toks=16",
        "--output_path", str(out), "--log_samples"])
    cli_evaluate()
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    assert results["results"][f"rmx_{NAME}"]["rmx_graded,graded"] == N
    assert 0.0 <= results["results"][f"rmx_{NAME}"]["pass@1,graded"] <= 1.0
    samples = [json.loads(x) for p in out.rglob(f"samples_rmx_{NAME}_*.jsonl") for x in p.read_text().splitlines()]
    assert len(samples) == N and samples[0]["doc"]["prompt"].startswith("Problem: ")  # the record's tiny_story
