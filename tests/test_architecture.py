"""Architecture rules (issue 8), checked on the source so a violation fails CI:

- no module under ``rmxbench/`` over 600 lines;
- stage modules, the method and the identity/graph/table/executor modules import nothing from the
  planner or the runner (a stage depends on its inputs, never on the orchestrator);
- the runner names no stage (it reads the table: issue 16);
- every stage of the table has a module with ``declare`` and ``build``;
- ``Protocol.metric`` is the only place deciding pass@1 vs avg@k (no other module reads
  ``avg_at_k.tasks``);
- nothing outside ``rmxbench/backends/`` branches on a backend's name (issue 15: one backend
  interface; the HF and vLLM implementations are chosen in ``backends/session.py`` only).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rmxbench"
MAX_LINES = 600


def _modules():
    return sorted(p for p in PKG.rglob("*.py") if "embedded/tiny" not in str(p))


def _imports(path: Path) -> set[str]:
    out = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module)
        elif isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
    return out


def test_no_module_over_600_lines():
    long = {str(p.relative_to(PKG)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("folder", ["stages", "method", "evaluation", "backends", "spec"])
def test_stages_and_method_do_not_import_planner_or_runner(folder):
    bad = {}
    for p in (PKG / folder).rglob("*.py"):
        hit = {m for m in _imports(p) if m in ("rmxbench.pipeline.planner", "rmxbench.pipeline.runner")}
        if hit:
            bad[str(p.relative_to(PKG))] = hit
    for name in ("identity", "graph", "stages", "rows", "store", "metering", "executor", "ray_executor"):
        p = PKG / "pipeline" / f"{name}.py"
        hit = {m for m in _imports(p) if m in ("rmxbench.pipeline.planner", "rmxbench.pipeline.runner")}
        if hit:
            bad[str(p.relative_to(PKG))] = hit
    assert not bad, f"stage-side modules importing the orchestrator: {bad}"


def test_the_runner_names_no_stage():
    """No stage name appears as a string constant in the runner or the executors (they read the
    stage table: ``board``, ``training``, ``figures``, ``resources`` and the modules' hooks)."""
    from rmxbench.pipeline.stages import STAGES

    for name in ("runner", "executor", "ray_executor"):
        tree = ast.parse((PKG / "pipeline" / f"{name}.py").read_text(encoding="utf-8"))
        named = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in STAGES}
        assert not named, f"pipeline/{name}.py names stages {named}"


def test_every_stage_module_declares_and_builds():
    from rmxbench.pipeline.stages import STAGES

    for st in STAGES.values():
        mod = importlib.import_module(st.module)
        assert callable(getattr(mod, "declare", None)) and callable(getattr(mod, "build", None)), st.name
        assert all(a in STAGES for a in st.after), st.name


def test_metric_rule_has_one_home():
    import re

    rule = re.compile(r"\bin\s+[\w.]*avg_at_k\.tasks")  # "task in protocol.avg_at_k.tasks"
    users = [str(p.relative_to(PKG)) for p in _modules() if rule.search(p.read_text(encoding="utf-8"))]
    assert users == ["spec/schema.py"], users


BACKEND_NAMES = {"hf", "vllm"}


def _names_backend(node: ast.AST) -> bool:
    """A constant backend name, or a tuple/list/set of constants containing one."""
    if isinstance(node, ast.Constant):
        return node.value in BACKEND_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(isinstance(e, ast.Constant) and e.value in BACKEND_NAMES for e in node.elts)
    return False


def _backend_branches(tree: ast.AST) -> list[int]:
    """Lines of ``x == "vllm"``, ``x != "hf"``, ``x in ("hf", "vllm")``, ``case "vllm":`` and dicts
    keyed by backend names."""
    out = []
    for n in ast.walk(tree):
        if ((isinstance(n, ast.Compare) and any(_names_backend(x) for x in [n.left, *n.comparators]))
                or (isinstance(n, ast.MatchValue) and _names_backend(n.value))
                or (isinstance(n, ast.Dict) and sum(_names_backend(k) for k in n.keys if k is not None) >= 2)):
            out.append(n.lineno)
    return out


def test_no_backend_name_branch_outside_backends():
    """Only rmxbench/backends/ may branch on a backend's name."""
    bad = [f"{p.relative_to(PKG)}:{line}" for p in _modules() if p.relative_to(PKG).parts[0] != "backends"
           for line in _backend_branches(ast.parse(p.read_text(encoding="utf-8")))]
    assert not bad, f"branches on a backend name outside rmxbench/backends/: {bad}"


def test_the_backend_rule_catches_a_branch():
    """The check above is not vacuous: it flags each form it names, and not a plain string."""
    for src in ('if b == "vllm": pass', 'x = b in ("hf", "vllm")', 'match b:\n case "hf": pass',
                'd = {"hf": 1, "vllm": 2}'):
        assert _backend_branches(ast.parse(src)), src
    assert not _backend_branches(ast.parse('name = "vllm"'))
