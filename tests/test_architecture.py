"""Architecture rules (issue 17), checked on the source by AST so a violation fails CI.

Every import counts: module-level, inside functions and under ``if TYPE_CHECKING``, absolute and
relative, and ``importlib.import_module("<literal>")``. The unit of the rules is a package or a
top-level module of ``rmxbench/``: the kernel is ``rmxbench/pipeline/``, the orchestrator
``rmxbench/orchestrator/`` (issue 17 item 2).

- Layers (:data:`LAYERS`, lowest first): a unit imports only units of its own layer or of lower
  ones. ``spec/`` imports nothing of rmxbench outside itself but ``errors``; the kernel imports no
  domain module.
- No cycle among the units (inside a layer either).
- No private name (``_x``) imported from another module: import what a module defines, from
  where it is defined, or make it public.
- Each checker is shown to fail on a fake violating module (the ``*_catches_*`` tests).
- The runner and the executors name no stage (issue 16: they read the stage table).
- Kept from issue 8/15: every stage of the table has a module with ``declare`` and ``build``;
  ``Protocol.metric`` is the only place deciding pass@1 vs avg@k; nothing outside
  ``rmxbench/backends/`` branches on a backend's name.

Read the unit graph yourself: ``python tests/test_architecture.py`` prints every unit's imports.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path


PKG = Path(__file__).resolve().parents[1] / "rmxbench"

#: The layers, lowest first; a unit may import its own layer and the layers before it.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("errors", frozenset({"errors"})),  # the one module spec/ may import
    ("spec", frozenset({"spec"})),  # what a spec file declares and the names it may use (benchmark records)
    ("shared records", frozenset({"rmxbench", "results", "pricing", "progress", "threads", "failures", "buildlog"})),
    ("kernel", frozenset({"pipeline"})),  # graph, stage table, rows, identity hashing, store, metering
    ("domain", frozenset({"embedded", "backends", "evaluation", "method", "rl", "analysis", "estimate"})),
    ("outputs", frozenset({"board", "lm_tasks"})),  # the leaderboard; the generated lm-eval task folder
    ("stages", frozenset({"stages"})),
    ("orchestration", frozenset({"orchestrator"})),  # planner, runner, executors
    ("entry points", frozenset({"commands", "cli"})),
)
#: The modules of the kernel package: a new module there is a decision (kernel or orchestrator?).
KERNEL = frozenset({"graph", "stages", "rows", "identity", "store", "metering"})
DOMAIN = dict(LAYERS)["domain"]


def module_name(path: Path, root: Path = PKG) -> str:
    """``rmxbench/spec/check.py`` -> ``rmxbench.spec.check`` (a package: its ``__init__``'s name)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The unit of a module: ``rmxbench.spec.check`` -> ``spec``, ``rmxbench.cli`` -> ``cli``,
    ``rmxbench`` -> ``rmxbench``, ``rmxbench.pipeline.store`` -> ``pipeline`` (the kernel)."""
    parts = module.split(".")
    return "rmxbench" if len(parts) == 1 else parts[1]


def _sources() -> dict[str, str]:
    """Module name -> source of every module of the package (the embedded model's folder aside)."""
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(PKG.rglob("*.py"))
            if "embedded/tiny/" not in p.as_posix()}  # the model folder, not embedded/tinymath.py


def imports(module: str, source: str, known: set[str]) -> list[tuple[str, list[str], int]]:
    """Every rmxbench import of ``module`` (anywhere in the file) as ``(target module, names, line)``.

    ``known``: the package's module names (``from a.b import c`` imports module ``a.b.c`` when it
    exists, else names of ``a.b``). Relative imports are resolved against ``module``.
    """
    package = module if f"{module}.__init__" in known or _is_package(module, known) else module.rpartition(".")[0]
    out = []
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Import):
            out += [(a.name, [], n.lineno) for a in n.names if a.name.split(".")[0] == "rmxbench"]
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (n.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "rmxbench":
                continue
            subs = [a.name for a in n.names if f"{base}.{a.name}" in known]
            names = [a.name for a in n.names if f"{base}.{a.name}" not in known]
            out += [(f"{base}.{s}", [], n.lineno) for s in subs]
            if names or not subs:
                out.append((base, names, n.lineno))
        elif (isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) == "import_module"
              and n.args and isinstance(n.args[0], ast.Constant) and str(n.args[0].value).startswith("rmxbench")):
            out.append((n.args[0].value, [], n.lineno))
    return out


def _is_package(module: str, known: set[str]) -> bool:
    return any(k.startswith(module + ".") for k in known)


def unit_edges(sources: dict[str, str]) -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> ``module:line -> target`` for every cross-unit import."""
    known = set(sources)
    edges: dict[tuple[str, str], list[str]] = {}
    for mod, src in sources.items():
        for target, _, line in imports(mod, src, known):
            a, b = unit_of(mod), unit_of(target)
            if a != b:
                edges.setdefault((a, b), []).append(f"{mod}:{line} -> {target}")
    return edges


def layer_violations(sources: dict[str, str]) -> list[str]:
    """Imports of a higher layer (see :data:`LAYERS`); a unit in no layer is one too."""
    rank = {u: i for i, (_, units) in enumerate(LAYERS) for u in units}
    out = [f"{u}: in no layer of LAYERS" for u in sorted({unit_of(m) for m in sources}) if u not in rank]
    for (a, b), where in sorted(unit_edges(sources).items()):
        if a in rank and b in rank and rank[b] > rank[a]:
            out += [f"{w} ({a}, layer {LAYERS[rank[a]][0]!r}, imports {b}, layer {LAYERS[rank[b]][0]!r})"
                    for w in where]
    return out


def cycles(sources: dict[str, str]) -> list[list[str]]:
    """The strongly connected components (more than one unit) of the unit import graph."""
    graph: dict[str, set[str]] = {}
    for a, b in unit_edges(sources):
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_imports(sources: dict[str, str]) -> list[str]:
    """``from other_module import _private`` anywhere in the package."""
    known = set(sources)
    return [f"{mod}:{line} imports {', '.join(p)} from {target}"
            for mod, src in sources.items() for target, names, line in imports(mod, src, known)
            if target != mod and (p := [n for n in names if n.startswith("_") and not n.startswith("__")])]


# ------------------------------------------------------------------------------ the rules


def test_every_unit_is_in_a_layer_and_imports_downwards_only():
    bad = layer_violations(_sources())
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_cycle_among_packages_and_top_level_modules():
    found = cycles(_sources())
    assert not found, f"import cycles among units: {found}"


def test_spec_imports_only_itself_and_errors():
    bad = [w for (a, b), where in unit_edges(_sources()).items() if a == "spec" and b != "errors" for w in where]
    assert not bad, f"spec/ imports from outside itself: {bad}"


def test_kernel_imports_no_domain_module():
    bad = [w for (a, b), where in unit_edges(_sources()).items()
           if a == "pipeline" and (b in DOMAIN or b in {"stages", "board", "lm_tasks"}) for w in where]
    assert not bad, f"the kernel imports the domain: {bad}"


def test_no_private_name_imported_across_modules():
    bad = private_imports(_sources())
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------ the checkers catch violations

FAKE = {
    "rmxbench.errors": "",
    "rmxbench.spec.schema": "def f():\n    from rmxbench.evaluation.grading import grade\n",
    "rmxbench.evaluation.grading": "from ..spec import schema\nfrom .helpers import _hidden\n",
    "rmxbench.evaluation.helpers": "_hidden = 1\n",
    "rmxbench.pipeline.identity": "import importlib\nM = importlib.import_module('rmxbench.evaluation.grading')\n",
}


def test_the_layer_rule_catches_a_lazy_upward_import():
    bad = layer_violations(FAKE)
    assert any(b.startswith("rmxbench.spec.schema:2 -> rmxbench.evaluation.grading (spec") for b in bad), bad
    assert any(b.startswith("rmxbench.pipeline.identity:2 -> rmxbench.evaluation.grading (pipeline")
               for b in bad), bad
    assert not any(b.startswith("rmxbench.evaluation.grading") for b in bad), bad  # downward: allowed
    assert layer_violations({**FAKE, "rmxbench.newpkg.mod": ""})[0] == "newpkg: in no layer of LAYERS"


def test_the_cycle_rule_catches_a_cycle_through_a_relative_import():
    assert cycles(FAKE) == [["evaluation", "spec"]]
    assert cycles({k: v for k, v in FAKE.items() if k != "rmxbench.spec.schema"}) == []


def test_the_private_rule_catches_a_private_import():
    assert private_imports(FAKE) == ["rmxbench.evaluation.grading:2 imports _hidden from rmxbench.evaluation.helpers"]


def test_the_kernel_package_holds_only_kernel_modules():
    """``rmxbench/pipeline/`` is the kernel: a planner, runner or executor belongs in ``orchestrator/``."""
    assert unit_of("rmxbench.pipeline.graph") == "pipeline"
    assert unit_of("rmxbench.orchestrator.runner") == unit_of("rmxbench.orchestrator.ray_executor") == "orchestrator"
    found = {p.stem for p in (PKG / "pipeline").glob("*.py")} - {"__init__"}
    assert found == KERNEL, f"pipeline/ modules outside the kernel's list: {sorted(found - KERNEL)}"


# ------------------------------------------------------------------------------ issue 8 / 15 rules


def test_the_runner_names_no_stage():
    """No stage name appears as a string constant in the runner or the executors (issue 16: they
    read the stage table: ``board``, ``training``, ``figures``, ``resources`` and the modules' hooks)."""
    from rmxbench.pipeline.stages import STAGES

    for name in ("runner", "executor", "ray_executor"):
        tree = ast.parse((PKG / "orchestrator" / f"{name}.py").read_text(encoding="utf-8"))
        named = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in STAGES}
        assert not named, f"orchestrator/{name}.py names stages {named}"


def test_every_stage_module_declares_and_builds():
    from rmxbench.pipeline.stages import STAGES

    for st in STAGES.values():
        mod = importlib.import_module(st.module)
        assert callable(getattr(mod, "declare", None)) and callable(getattr(mod, "build", None)), st.name
        assert all(a in STAGES for a in st.after), st.name


def test_metric_rule_has_one_home():
    import re

    rule = re.compile(r"\bin\s+[\w.]*avg_at_k\.tasks")  # "task in protocol.avg_at_k.tasks"
    users = [m for m, src in _sources().items() if rule.search(src)]
    assert users == ["rmxbench.spec.schema"], users


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
    bad = [f"{m}:{line}" for m, src in _sources().items() if unit_of(m) != "backends"
           for line in _backend_branches(ast.parse(src))]
    assert not bad, f"branches on a backend name outside rmxbench/backends/: {bad}"


def test_the_backend_rule_catches_a_branch():
    """The check above is not vacuous: it flags each form it names, and not a plain string."""
    for src in ('if b == "vllm": pass', 'x = b in ("hf", "vllm")', 'match b:\n case "hf": pass',
                'd = {"hf": 1, "vllm": 2}'):
        assert _backend_branches(ast.parse(src)), src
    assert not _backend_branches(ast.parse('name = "vllm"'))


if __name__ == "__main__":  # the unit graph, as the tests read it
    for (a, b), where in sorted(unit_edges(_sources()).items()):
        print(f"{a} -> {b}: {len(where)}")
