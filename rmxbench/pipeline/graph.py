"""The stage graph: stage declarations (:class:`Stage`), their instances (:class:`Node`) and the
graph of one spec (:class:`Graph`).

A **stage** is a row of the table in :mod:`rmxbench.pipeline.stages`: a name (its store folder
and ``--force`` value), the module that implements it, a code version and the stages it reads.
A stage module defines two functions (and optionally a third):

- ``declare(plan: PlanContext, row: RowView, graph: Graph) -> None``: add this stage's nodes for
  ``row`` (zero, one, or one per τ / task) with :meth:`Graph.add`, naming their inputs (nodes
  already in the graph: of this row or of other rows) and their key parts. Torch-free and
  offline: only configuration and identities (:mod:`rmxbench.pipeline.identity`).
- ``build(config, inputs: dict[str, Path], out_dir: Path, env: BuildEnv) -> None``: produce the
  artifact of one node into ``out_dir`` (a temp folder the store renames into place) from
  ``config`` (what ``declare`` gave the node), its input artifact folders (role -> folder) and
  ``env`` (:class:`BuildEnv`: the engine session of the node's model, shared with every other
  node of that model).
- ``halt(out_dir: Path) -> str | None`` (optional): a plain-language reason why the stages after
  this node cannot run (e.g. too few mixed-success problems), or None.
- ``warn(out_dir: Path) -> str | None`` (optional): a note for a finished, usable but suspect
  artifact (shown with the row on the board); ``summary(out_dir) -> str | None`` (optional): one
  line for the run log; ``record(out_dir)`` (stages whose table entry has ``board="record"``): the
  board cell (:class:`rmxbench.results.TaskRecord`) of a finished artifact.

What a node needs to run (GPUs, CPUs) is the table entry's :class:`Resources`; the GPUs of a node
that uses an engine are its engine's accelerators (vLLM: the tensor-parallel size), and nodes
of one model share one engine, so an executor runs them where that engine lives
(:mod:`rmxbench.orchestrator.executor`).

A node's content key is ``store.key(stage, code=<code version>, **parts, inputs={role: key})``:
everything that determines it, including the keys of its inputs, so every key of a plan is known
before anything runs (``rmxbench run --dry-run``) and nothing is re-keyed at run time.

This module imports nothing heavy and nothing from the planner or runner.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

from rmxbench.errors import UserError


#: ``Resources.gpus`` value meaning "the accelerators of the node's engine" (0 without an engine).
ENGINE = "engine"


@dataclass(frozen=True)
class Resources:
    """What one node of a stage needs to run (read by the executors, :mod:`rmxbench.orchestrator.executor`).

    Attributes:
        gpus: GPUs the node holds while it runs: an int, or :data:`ENGINE` = the accelerators of
            the node's engine (:attr:`rmxbench.backends.session.EngineSpec.accelerators`: vLLM's
            tensor-parallel size, 1 for transformers; 0 for a node without an engine). Nodes that
            use an engine run in their model's worker, which holds that many GPUs for as long as
            the model has work (the engine starts once there).
        cpus: CPU cores a node that holds no GPU reserves while it runs (a Ray task's
            ``num_cpus``); a model's worker reserves GPUs only.
    """

    gpus: int | str = 0
    cpus: float = 1.0

    def gpus_of(self, engine: Any) -> int:
        """The GPUs of a node with ``engine`` (an EngineSpec or None)."""
        if self.gpus == ENGINE:
            return int(engine.accelerators) if engine is not None else 0
        return int(self.gpus)


@dataclass(frozen=True)
class Stage:
    """One entry of the stage table.

    Attributes:
        name: store folder (``$RMXBENCH_HOME/<name>/<key>/``) and ``--force`` value.
        module: dotted path of the module with ``declare``/``build`` (imported lazily).
        code: code version, part of every key (bump it to invalidate this stage and its dependents).
        after: names of the stages whose artifacts this stage reads (``--force`` closure, docs).
        artifact: what the artifact folder holds (ARCHITECTURE.md's table).
        training: True when its wall time counts toward a row's measured training cost.
        figures: file names in the artifact shown next to the board (e.g. ``reward_curve.png``).
        board: what a finished node gives the board: ``"record"`` (a results cell, read with the
            module's ``record(out_dir)``), ``"section"`` (an analysis section: the artifact folder),
            or ``""`` (nothing).
        resources: what one node needs to run (:class:`Resources`).
    """

    name: str
    module: str
    code: str
    after: tuple[str, ...] = ()
    artifact: str = ""
    training: bool = False
    figures: tuple[str, ...] = ()
    board: str = ""
    resources: Resources = Resources()

    def load(self) -> ModuleType:
        """The stage module (must define ``declare`` and ``build``)."""
        return importlib.import_module(self.module)


@dataclass(eq=False)
class Node:
    """One artifact to build: a stage applied to one row (and one τ or task).

    Attributes:
        stage: stage name.
        row_id: the board row it belongs to.
        label: display label, unique within the row (``train[tau=0.3]``, ``eval tinymath``).
        config: passed to the stage's ``build`` (any object; not part of the key by itself).
        parts: key parts (JSON-able; everything in ``config`` that changes the artifact).
        inputs: role -> upstream node; the build receives role -> artifact folder.
        task: the benchmark of an evaluation cell (None otherwise).
        provides: what the artifact is for later stages (``"adapter"``, ``"checkpoint"``) or None.
        engine: the engine session the build uses (a :class:`rmxbench.backends.session.EngineSpec`:
            its ``key`` groups nodes of one model so they share one engine), or None.
        key: the content key (set by :meth:`Graph.add`).
        seed: the training seed of the chain the node belongs to, for a trained row that declares
            ``seeds:`` (one chain of nodes per seed, :attr:`rmxbench.pipeline.rows.RowView.seeds`);
            None for every other node. Not a key part by itself: the seed reaches the key through
            the parts it changes (the recipe's ``seed``) and the inputs.
    """

    stage: str
    row_id: str
    label: str
    config: Any = None
    parts: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, "Node"] = field(default_factory=dict)
    task: str | None = None
    provides: str | None = None
    engine: Any = None
    key: str = ""
    seed: int | None = None

    @property
    def engine_key(self) -> str | None:
        """The key of the engine the node uses (None: it loads no model)."""
        return None if self.engine is None else self.engine.key


@dataclass
class BuildEnv:
    """What a build gets besides its config and inputs: the engine sessions of this process.

    Attributes:
        sessions: the process's session pool (:class:`rmxbench.backends.session.SessionPool`), or
            None where no model may be loaded.
        engine: the node's :attr:`Node.engine`.
        used: the pool events of this build (engine started or reused), for its meter.
        work_dir: a folder of the store for work that must survive a killed build (e.g. GRPO's
            resumable checkpoints): ``<home>/work/<stage>/<key>/``, the same on every machine
            that shares the store; the build removes it once its artifact is complete.
    """

    sessions: Any = None
    engine: Any = None
    used: list = field(default_factory=list)
    work_dir: Path | None = None

    def session(self, engine: Any = None, *, weights: Path | None = None) -> Any:
        """The session of ``engine`` (default: the node's): started, or reused from an earlier node.

        Args:
            weights: folder of stage-built weights (an engine whose spec has no ``ref``).
        Raises:
            RuntimeError: no session pool or no engine (a stage that declared none).
        """
        spec = engine if engine is not None else self.engine
        if self.sessions is None or spec is None:
            raise RuntimeError("this build has no engine session (declare Node.engine and run it through a runner)")
        n0 = len(self.sessions.events)
        s = self.sessions.get(spec, weights, alongside=[e.key for e in self.used])
        self.used.extend(self.sessions.events[n0:])
        return s


class Graph:
    """The nodes of one plan, each keyed on add. ``table``: the stage table (name -> Stage)."""

    def __init__(self, table: dict[str, Stage], key_fn: Callable[..., str]):
        self.table = table
        self._key = key_fn
        self.nodes: list[Node] = []

    def add(self, node: Node) -> Node:
        """Key ``node`` (see module doc) and add it; returns it.

        Raises:
            ValueError: unknown stage, an input not in the graph, or a duplicate (row, label).
        """
        st = self.table.get(node.stage)
        if st is None:
            raise ValueError(f"node of unknown stage {node.stage!r}; stages: {', '.join(self.table)}")
        for role, n in node.inputs.items():
            if not n.key or n not in self.nodes:
                raise ValueError(f"{node.row_id} {node.label}: input {role!r} is not a node of the graph")
        if self.find(node.row_id, label=node.label):
            raise ValueError(f"duplicate node {node.row_id} {node.label}")
        node.key = self._key(node.stage, code=st.code, **node.parts,
                             inputs={role: n.key for role, n in node.inputs.items()})
        self.nodes.append(node)
        return node

    def find(self, row_id: str | None = None, stage: str | None = None, *, label: str | None = None,
             provides: str | None = None) -> list[Node]:
        """Nodes matching every given filter, in the order they were added."""
        return [n for n in self.nodes if (row_id is None or n.row_id == row_id) and (stage is None or n.stage == stage)
                and (label is None or n.label == label) and (provides is None or n.provides == provides)]

    def one(self, row_id: str, stage: str, *, label: str | None = None) -> Node | None:
        """The single node of ``row_id``'s ``stage`` (with ``label``), or None."""
        found = self.find(row_id, stage, label=label)
        return found[-1] if found else None

    def dependents(self, node: Node) -> list[Node]:
        """Every node that reads ``node`` directly or transitively (in graph order)."""
        hit: set[int] = {id(node)}
        out = []
        for n in self.nodes:
            if any(id(i) in hit for i in n.inputs.values()):
                hit.add(id(n))
                out.append(n)
        return out

    def ancestors(self, node: Node) -> list[Node]:
        """Every node ``node`` reads, directly or transitively (in graph order)."""
        seen: dict[int, Node] = {}

        def walk(n: Node) -> None:
            for i in n.inputs.values():
                if id(i) not in seen:
                    seen[id(i)] = i
                    walk(i)
        walk(node)
        return [n for n in self.nodes if id(n) in seen]

    def ordered(self, row_order: dict[str, int]) -> list[Node]:
        """Nodes in an execution order: inputs first, otherwise by row (board order), then as added."""
        pos = {id(n): i for i, n in enumerate(self.nodes)}
        done: set[int] = set()
        out: list[Node] = []

        def visit(n: Node) -> None:
            if id(n) in done:
                return
            done.add(id(n))
            for i in sorted(n.inputs.values(), key=lambda x: (row_order.get(x.row_id, 1 << 30), pos[id(x)])):
                visit(i)
            out.append(n)
        for n in sorted(self.nodes, key=lambda x: (row_order.get(x.row_id, 1 << 30), pos[id(x)])):
            visit(n)
        return out


def schedule(nodes: list[Node], position: dict[int, int]) -> list[Node]:
    """An execution order of ``nodes`` (inputs first) that keeps the nodes of one engine together.

    Engines are taken in order of their first node (``position``: id(node) -> board position);
    for each, every remaining node of that engine runs, each preceded by the nodes it reads that
    have not run yet (of any engine: e.g. the training between a model's rollouts and its
    adapters' evaluation). Nodes without an engine run when first needed or in board order. So a
    model's base evaluation, rollouts, every τ's validation and its adapters' evaluations share one
    engine, started once.

    Inputs outside ``nodes`` are taken as available.
    """
    todo = {id(n) for n in nodes}
    ordered = sorted(nodes, key=lambda n: position.get(id(n), 1 << 30))
    out: list[Node] = []

    def run(n: Node) -> None:
        if id(n) not in todo:
            return
        todo.discard(id(n))
        for i in sorted(n.inputs.values(), key=lambda x: position.get(id(x), 1 << 30)):
            run(i)
        out.append(n)

    for first in ordered:
        if id(first) not in todo:
            continue
        key = first.engine_key
        if key is None:
            run(first)
            continue
        for n in ordered:
            if n.engine_key == key:
                run(n)
    return out


def critical_path(nodes: list[Node]) -> tuple[int, int, int]:
    """How much of ``nodes`` can run at once: ``(total, longest chain, widest level)``.

    The longest chain counts the nodes of the longest input-to-output path among ``nodes``
    (inputs outside ``nodes`` count as available): no executor can finish in fewer sequential
    node builds. The widest level is the largest number of nodes at the same depth (depth = the
    longest chain ending at the node): how many could run at once if every node took equally long.
    """
    depth = chain_depths(nodes)
    levels: dict[int, int] = {}
    for n in nodes:
        k = int(depth[id(n)])
        levels[k] = levels.get(k, 0) + 1
    return len(nodes), max(levels, default=0), max(levels.values(), default=0)


def chain_depths(nodes: list[Node], weight: Callable[[Node], float] | None = None) -> dict[int, float]:
    """``id(node) ->`` the weight of the heaviest input-to-output chain among ``nodes`` ending at it
    (inputs outside ``nodes`` count as available). ``weight``: a node's own weight (default 1: the
    chain's node count, :func:`critical_path`; the cost estimate passes estimated seconds, so the
    maximum is the least wall-clock of any executor with enough workers)."""
    inside = {id(n) for n in nodes}
    depth: dict[int, float] = {}

    def d(n: Node) -> float:
        if id(n) not in depth:
            own = 1 if weight is None else weight(n)
            depth[id(n)] = own + max((d(i) for i in n.inputs.values() if id(i) in inside), default=0)
        return depth[id(n)]
    for n in nodes:
        d(n)
    return depth


def force_closure(table: dict[str, Stage], names: Iterable[str]) -> frozenset[str]:
    """Stages to rebuild for ``--force`` values: each named stage and every stage that reads it,
    transitively (``all``: every stage). Example: ``{"entropy"}`` -> entropy, train, validation,
    pick, eval.

    Raises:
        UserError: an unknown stage name (the message lists the allowed values).
    """
    out: set[str] = set()
    for s in names:
        if s == "all":
            return frozenset(table)
        if s not in table:
            raise UserError(f"--force {s!r} is not a stage; allowed: {', '.join(table)}, all")
        out.add(s)
    changed = True
    while changed:
        changed = False
        for st in table.values():
            if st.name not in out and out & set(st.after):
                out.add(st.name)
                changed = True
    return frozenset(out)


def iter_inputs(inputs: dict[str, Path], prefix: str) -> Iterator[tuple[str, Path]]:
    """``(role, folder)`` of the inputs whose role starts with ``prefix`` (e.g. ``"train["``)."""
    return ((r, p) for r, p in inputs.items() if r.startswith(prefix))
