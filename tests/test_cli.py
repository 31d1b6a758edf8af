"""The ``rmxbench`` command line: help lists every command, the light paths (``--help``,
``validate``, ``import rmxbench.spec.schema``) never import torch and stay fast, a command whose module
is missing (or whose dependency is missing) prints a clear message instead of a traceback, and a
bug prints a short "internal error" with exit code 2.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rmxbench import cli
from rmxbench.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
RMXBENCH = Path(sys.executable).parent / "rmxbench"


def _py(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_every_command():
    if not RMXBENCH.exists():
        pytest.skip(f"console script not installed at {RMXBENCH}")
    proc = subprocess.run([str(RMXBENCH), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name in ("validate", "run", "board", "eval", "train"):
        assert name in proc.stdout
    assert "ReasonMaxxer" in proc.stdout
    assert list(COMMANDS) == ["validate", "run", "board", "eval", "train", "analyze"]


def test_no_arguments_prints_help(capsys):
    assert main([]) == 0
    assert "validate" in capsys.readouterr().out


def test_version(capsys):
    from rmxbench import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_usage_errors_exit_1_not_argparse_2(capsys):
    """A mistyped command, flag value or missing argument is a user error: exit code 1."""
    assert main(["runn"]) == 1
    assert "invalid choice: 'runn'" in capsys.readouterr().err
    assert main(["run", "specs/tiny.yaml", "--force", "trian"]) == 1
    assert "invalid choice: 'trian'" in capsys.readouterr().err
    assert main(["validate"]) == 1


def test_spec_import_is_light_and_torch_free():
    """`import rmxbench.spec.schema` in a fresh interpreter loads none of the heavy libraries (what
    made it slow; its wall time is measured by benchmarks/bench_import.py, not asserted here)."""
    heavy = ("torch", "transformers", "lm_eval", "vllm", "peft", "trl", "datasets", "ray", "matplotlib", "scipy")
    proc = _py("import sys, rmxbench.spec.schema; print(sorted(m for m in %r if m in sys.modules))" % (heavy,))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_help_and_validate_do_not_import_torch():
    proc = _py(
        """
        import sys
        from rmxbench.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        try:
            main(["validate", "--help"])
        except SystemExit:
            pass
        rc = main(["validate", "-q", "tests/bad_specs/k_zero.yaml"])
        print("RESULT", rc, "torch" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "RESULT 1 False" in proc.stdout


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "validate"])
def test_every_command_has_help_or_says_not_available(name):
    """`rmxbench NAME --help` works, or (while its module is not written yet) says so plainly."""
    if not RMXBENCH.exists():
        pytest.skip(f"console script not installed at {RMXBENCH}")
    proc = subprocess.run([str(RMXBENCH), name, "--help"], capture_output=True, text=True, timeout=300)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    if (ROOT / "rmxbench" / "commands" / f"{name}.py").exists():
        assert proc.returncode == 0, text
        assert f"rmxbench {name}" in text
    else:
        assert proc.returncode == 1
        assert "not available yet" in text


def test_missing_command_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "frobnicate", "a command nobody wrote")
    assert main(["frobnicate"]) == 1
    err = capsys.readouterr().err
    assert "`rmxbench frobnicate` is not available yet" in err
    assert "rmxbench/commands/frobnicate.py is missing" in err
    assert "Traceback" not in err


def test_missing_dependency_names_the_package(monkeypatch, tmp_path, capsys):
    import rmxbench.commands

    (tmp_path / "needsdep.py").write_text("import vllm_not_installed_pkg\n")
    monkeypatch.setattr(rmxbench.commands, "__path__", [*rmxbench.commands.__path__, str(tmp_path)])
    monkeypatch.setitem(cli.COMMANDS, "needsdep", "needs a package that is not installed")
    monkeypatch.delitem(sys.modules, "rmxbench.commands.needsdep", raising=False)
    assert main(["needsdep"]) == 1
    err = capsys.readouterr().err
    assert "needs the Python package 'vllm_not_installed_pkg'" in err
    assert "Traceback" not in err


def test_internal_error_is_short_with_exit_2(monkeypatch, tmp_path, capsys):
    import rmxbench.commands

    (tmp_path / "boom.py").write_text(
        "def add_arguments(p):\n    pass\n\n"
        "def run(args):\n    raise RuntimeError('[bold]kaboom[/bold]')\n"
    )
    monkeypatch.setattr(rmxbench.commands, "__path__", [*rmxbench.commands.__path__, str(tmp_path)])
    monkeypatch.setitem(cli.COMMANDS, "boom", "raises")
    monkeypatch.delitem(sys.modules, "rmxbench.commands.boom", raising=False)
    monkeypatch.delenv("RMXBENCH_DEBUG", raising=False)
    assert main(["boom"]) == 2
    err = capsys.readouterr().err
    assert "internal error" in err and "RMXBENCH_DEBUG=1" in err
    assert "RuntimeError: [bold]kaboom[/bold]" in err  # markup printed literally
    assert "Traceback (most recent call last)" not in err
    assert len(err.splitlines()) <= 6


def test_user_error_from_a_command_exits_1(monkeypatch, tmp_path, capsys):
    import rmxbench.commands

    (tmp_path / "usererr.py").write_text(
        "from rmxbench.errors import UserError\n"
        "def add_arguments(p):\n    p.add_argument('--x')\n\n"
        "def run(args):\n    raise UserError(f'bad --x {args.x!r}', hint='use --x 1')\n"
    )
    monkeypatch.setattr(rmxbench.commands, "__path__", [*rmxbench.commands.__path__, str(tmp_path)])
    monkeypatch.setitem(cli.COMMANDS, "usererr", "raises a UserError")
    monkeypatch.delitem(sys.modules, "rmxbench.commands.usererr", raising=False)
    assert main(["usererr", "--x", "7"]) == 1
    err = capsys.readouterr().err
    assert "error: bad --x '7'" in err and "hint: use --x 1" in err


def test_environment_errors_become_user_errors():
    """Missing vLLM, an unreachable hub or a bad folder are the user's to fix, not 'internal errors'
    (the classifier, rmxbench/failures.py, is tested with real library exceptions in test_failures.py)."""
    from rmxbench.failures import classify

    u = classify(ModuleNotFoundError("No module named 'vllm'", name="vllm"))
    assert "'vllm' is not installed" in u.message and "protocol.backend: hf" in u.hint
    u = classify(OSError("We couldn't connect to 'https://huggingface.co' to load the files"))
    assert u.message.startswith("could not reach the Hugging Face hub") and "model.path" in u.hint
    u = classify(NotADirectoryError(20, "Not a directory", "/tmp/afile/eval"))
    assert "/tmp/afile/eval" in u.message
    assert classify(ValueError("a real bug")) is None
    assert classify(ModuleNotFoundError("x")) is None  # no module name: not classifiable


_ADHOC = {  # the commands that take no spec: their arguments up to --out
    "eval": ["--model", "package:embedded/tiny", "--tasks", "tinymath", "--backend", "hf"],
    "analyze": ["--base", "package:embedded/tiny", "--other", "package:embedded/tiny", "--task", "tinymath",
                "--prompt-style", "tiny_story", "--analysis", "reranking"],
}


@pytest.mark.parametrize("command", ["run", "board", "eval", "analyze"])
def test_an_unwritable_out_folder_is_refused_before_any_work(command, tmp_path, capsys, monkeypatch):
    """``--out`` under ``/proc`` (a virtual filesystem: the folder cannot be created, although
    ``os.access`` says the parent is writable) is a one-screen error, exit 1, before anything runs
    (for eval and analyze: before an engine starts, which would otherwise take minutes on a GPU)."""
    monkeypatch.setenv("RMXBENCH_HOME", str(tmp_path / "home"))
    spec = Path(__file__).resolve().parents[1] / "specs" / "tiny.yaml"
    argv = [command, *_ADHOC[command]] if command in _ADHOC else [command, str(spec)]
    assert main([*argv, "--out", "/proc/rmxbench-nope"]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert "--out: cannot write to /proc/rmxbench-nope" in err and "internal error" not in err
    assert "plan for" not in captured.out  # the refusal is the one screen, not a plan and then an error
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").glob("*/*/_complete.json"))
    assert "evaluating" not in captured.out and "engine" not in err  # eval: no task started


def test_eval_refuses_a_file_as_its_out_folder(tmp_path, capsys):
    """A file where ``--out`` should be a folder: one line naming it, exit 1 (was ``File exists``
    after the engine had started)."""
    afile = tmp_path / "results"
    afile.write_text("not a folder")
    assert main(["eval", *_ADHOC["eval"], "--out", str(afile / "run1")]) == 1
    err = capsys.readouterr().err
    assert f"--out: {afile / 'run1'} is not a directory ({afile} is a file)" in err
    assert afile.read_text() == "not a folder"


def test_eval_checks_every_task_file_before_the_engine_starts(tmp_path, capsys):
    """``--tasks tinymath,gsm8k`` with a data folder that lacks gsm8k.jsonl: refused naming the file
    before any task is evaluated (was: tinymath evaluated, then an error without the out folder)."""
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "out"
    assert main(["eval", "--model", "package:embedded/tiny", "--tasks", "tinymath,gsm8k", "--backend", "hf",
                 "--data-dir", str(data), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"benchmark file {data / 'gsm8k.jsonl'} not found (needed for 'gsm8k')" in captured.err, captured.err
    assert "evaluating" not in captured.out and not (out / "tinymath").exists()


@pytest.mark.parametrize("command, flags, message", [
    ("eval", ["--tasks", "tinymath,tinymath"], "argument --tasks: tinymath given more than once"),
    ("eval", ["--tasks", "tinymath,"], "argument --tasks: 'tinymath,': expected comma-separated task names"),
    ("eval", ["--tasks", ""], "argument --tasks: '': expected comma-separated task names"),
    ("eval", ["--tasks", "tinymath", "--max-new-tokens", "-1"], "argument --max-new-tokens: must be 1 or more, got -1"),
    ("eval", ["--tasks", "tinymath", "--max-new-tokens", "0"], "argument --max-new-tokens: must be 1 or more, got 0"),
    ("eval", ["--tasks", "tinymath", "--batch-size", "0"], "argument --batch-size: must be 1 or more, got 0"),
    ("eval", ["--tasks", "tinymath", "--limit", "0"], "argument --limit: must be 1 or more, got 0"),
    ("eval", ["--tasks", "tinymath", "--limit", "99999999999999999999999"],
     "argument --limit: 99999999999999999999999 is too large; at most 9223372036854775807"),
    ("analyze", ["--max-new-tokens", "0"], "argument --max-new-tokens: must be 1 or more, got 0"),
    ("analyze", ["--limit", "-5"], "argument --limit: must be 1 or more, got -5"),
    ("analyze", ["--other-adapter", "/nonexistent/adapter"], "--other-adapter '/nonexistent/adapter' is not a directory"),
])
def test_bad_counts_and_task_lists_are_one_line_errors(command, flags, message, capsys, tmp_path):
    """Counts below 1, repeated or empty task names: exit 1 naming the flag, before any model loads
    (each was an 'internal error' from a pydantic ValidationError, or silently ignored for 0)."""
    base = {"eval": ["eval", "--model", "package:embedded/tiny", "--backend", "hf"],
            "analyze": ["analyze", *_ADHOC["analyze"]]}[command]
    assert main([*base, *flags, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err, err
    assert not (tmp_path / "o").exists()


def test_an_empty_benchmark_file_is_refused_before_the_engine_starts(tmp_path, capsys):
    (tmp_path / "gsm8k.jsonl").write_text("")
    assert main(["eval", "--model", "package:embedded/tiny", "--backend", "hf", "--tasks", "gsm8k",
                 "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    captured = capsys.readouterr()
    assert f"benchmark file {tmp_path / 'gsm8k.jsonl'} has no problems (needed for 'gsm8k')" in captured.err
    assert "internal error" not in captured.err and "evaluating" not in captured.out


def test_ctrl_c_in_eval_says_what_is_kept_and_that_eval_does_not_resume(tmp_path):
    """SIGINT while ``rmxbench eval`` evaluates: exit 130 and a line that is true for eval (its
    finished tasks are in --out; it does not resume), not the stage-store line of ``run``."""
    import os
    import signal
    import time

    out = tmp_path / "o"
    env = dict(os.environ, RMXBENCH_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    p = subprocess.Popen([sys.executable, "-m", "rmxbench.cli", "eval", "--model", "package:embedded/tiny",
                          "--backend", "hf", "--tasks", "tinymath", "--max-new-tokens", "256", "--batch-size", "4",
                          "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        t0 = time.time()
        while time.time() - t0 < 120 and p.poll() is None and \
                "rmxbench eval: tinymath" not in ((out / "eval.log").read_text() if (out / "eval.log").exists() else ""):
            time.sleep(0.2)
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "eval does not resume, a rerun evaluates every task again" in err and "finished stages" not in err, err
