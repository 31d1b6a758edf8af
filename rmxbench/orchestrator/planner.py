"""The run plan: every node of the stage graph of a spec, with its content key and status.

For each stage of :data:`rmxbench.pipeline.stages.STAGES` (in table order) and each board row,
the stage module's ``declare`` adds its nodes (:mod:`rmxbench.pipeline.graph`): for a
ReasonMaxxer row pool → rollouts → selection → entropy → train(τ) × |τ| → validation(τ, base) →
pick → eval per task; for a base or RL-baseline row eval per task; an RL baseline with
``unavailable`` set gets one ``reported`` item (its reported numbers are shown). Every key is
known here, before anything runs, so ``rmxbench run --dry-run`` lists them all and the runner
builds exactly these keys.

Statuses: ``cached`` (in the store), ``run`` (to build), ``forced`` (in the store, rebuilt by
``--force``), ``halted`` (an upstream artifact says the row cannot go on, e.g. too few
mixed-success problems; the detail says why), ``reported``.

Building the plan never imports torch or touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from rmxbench.errors import UserError
from rmxbench.pipeline.graph import Graph, Node, Stage, critical_path, force_closure, schedule
from rmxbench.pipeline.identity import HashCache
from rmxbench.pipeline.rows import PlanContext, RowView, seeded_label
from rmxbench.pipeline.store import ArtifactStore
from rmxbench.spec.context import SpecContext


@dataclass
class PlanItem:
    """One line of the plan: a node (or the ``reported`` line of an unavailable RL baseline)."""

    row: RowView
    stage: str
    label: str
    task: str | None
    key: str | None
    status: str
    node: Node | None = None
    detail: str = ""

    @property
    def row_id(self) -> str:
        return self.row.id

    @property
    def kind(self) -> str:
        return self.row.kind

    @property
    def to_run(self) -> bool:
        return self.status in {"run", "forced"}


@dataclass
class Plan:
    """The plan of a spec (see module doc); ``items`` in board order, ``graph`` the nodes;
    ``forced_keys``: keys of the nodes ``--force`` rebuilds; ``halted``: node key -> why it cannot run."""

    ctx: SpecContext
    store: ArtifactStore
    table: dict[str, Stage]
    graph: Graph
    items: list[PlanItem]
    force: frozenset[str]
    forced_keys: set[str]
    halted: dict[str, str]
    only: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)

    @property
    def spec(self):
        return self.ctx.spec

    def selected(self) -> list[PlanItem]:
        """Items of the rows selected by ``--only`` (all rows when none given)."""
        return [i for i in self.items if not self.only or i.row_id in self.only]

    def to_build(self) -> list[Node]:
        """The selected nodes the run will build (status ``run``/``forced``), in graph order."""
        return [i.node for i in self.selected() if i.node is not None and i.to_run]

    def parallelism(self) -> tuple[int, int, int, int, int]:
        """How much of the run can go at once: ``(nodes to build, longest chain, widest level,
        models, busiest model)`` (:func:`rmxbench.pipeline.graph.critical_path`; models = the
        model workers a distributed run starts; nodes of one model run one after another in its
        worker, so the busiest model's node count bounds the run too)."""
        from collections import Counter

        nodes = self.to_build()
        total, chain, width = critical_path(nodes)
        per_model = Counter(n.engine.model for n in nodes if n.engine is not None)
        return total, chain, width, len(per_model), max(per_model.values(), default=0)

    def engine_starts(self) -> list:
        """The engine sessions the run will start (:class:`rmxbench.backends.session.SessionEvent`):
        the engines of the selected nodes to run, in the runner's order, under the session pool's
        residency policy (:func:`rmxbench.backends.session.count_engine_starts`; nothing is loaded)."""
        from rmxbench.backends.session import count_engine_starts

        return count_engine_starts([n.engine for n in self.run_order()])

    def run_order(self) -> list[Node]:
        """The selected nodes to run, in the runner's order (:func:`rmxbench.pipeline.graph.schedule`)."""
        run = [i.node for i in self.selected() if i.node is not None and i.to_run]
        order = {r.id: r.index for r in (i.row for i in self.items)}
        pos = {id(n): (order.get(n.row_id, 1 << 30), k) for k, n in enumerate(self.graph.nodes)}
        return schedule(run, pos)


def build_graph(pctx: PlanContext, table: dict[str, Stage]) -> Graph:
    """Every node of the spec: each stage's ``declare`` over every row, stage by stage."""
    graph = Graph(table, ArtifactStore.key)
    rows = pctx.rows()
    for st in list(table.values()):
        mod = st.load()
        for row in rows:
            mod.declare(pctx, row, graph)
    return graph


def halt_message(table: dict[str, Stage], node: Node, artifact) -> str | None:
    """The stage's ``halt(artifact)`` message (stages that cannot stop a row have none)."""
    fn = getattr(table[node.stage].load(), "halt", None)
    return fn(artifact) if fn is not None else None


def build_plan(ctx: SpecContext, *, store: ArtifactStore | None = None, only: Iterable[str] = (),
               force: Iterable[str] = (), table: dict[str, Stage] | None = None) -> Plan:
    """Build the plan of ``ctx.spec`` (see module doc). Pure bookkeeping: no torch, no network.

    Args:
        ctx: the spec context (spec, resolved paths, home).
        store: the artifact store (default: ``ArtifactStore(ctx.home)``).
        only: row ids to run (``--only``); empty = all rows. The plan still lists every row.
        force: ``--force`` stage names: those nodes and every node that reads them are rebuilt.
        table: the stage table (default :data:`rmxbench.pipeline.stages.STAGES`).

    Raises:
        UserError: an ``--only`` id that is not a row of the spec; an unknown ``--force`` stage;
            missing local model/data files.
    """
    from rmxbench.pipeline.stages import STAGES

    table = STAGES if table is None else table
    store = store or ArtifactStore(ctx.home)
    forced = force_closure(table, force)
    named = set(table) if "all" in force else set(force)
    only = tuple(dict.fromkeys(only))
    pctx = PlanContext(ctx, HashCache.for_home(store.home))
    ids = [r.id for r in pctx.rows()]
    unknown = [o for o in only if o not in ids]
    if unknown:
        raise UserError(f"--only {', '.join(map(repr, unknown))}: no such row in {ctx.path}",
                        hint="row ids: " + ", ".join(ids))
    graph = build_graph(pctx, table)
    forced_keys: set[str] = set()
    halted: dict[str, str] = {}
    for n in graph.nodes:
        if n.stage in named:
            forced_keys |= {n.key, *(d.key for d in graph.dependents(n))}
    items: list[PlanItem] = []
    warnings: list[str] = []
    for row in pctx.rows():
        if row.unavailable:
            items.append(PlanItem(row, "reported", "reported", None, None, "reported",
                                  detail=f"no checkpoint ({row.unavailable}); reported numbers only"))
            continue
        s = row.settings
        if not s.model.pinned:
            warnings.append(f"{row.id}: hub revision {s.model.revision!r} of {s.model.repo} is "
                            "not pinned to a commit sha; results may change when the repo changes")
        for n in graph.find(row.id):
            d = store.get(n.stage, n.key)
            if n.key in halted:
                status, detail = "halted", halted[n.key]
            elif n.key in forced_keys:
                status, detail = ("forced" if d is not None else "run"), ""
            else:
                status, detail = ("cached" if d is not None else "run"), ""
            if status == "cached" and (msg := halt_message(table, n, d)):
                detail = msg
                for dep in graph.dependents(n):
                    halted[dep.key] = msg
            items.append(PlanItem(row, n.stage, n.label, n.task, n.key, status, n, detail))
    pctx.hashes.save()
    return Plan(ctx=ctx, store=store, table=table, graph=graph, items=items, force=forced,
                forced_keys=forced_keys, halted=halted, only=only, warnings=list(dict.fromkeys(warnings)))


# ----------------------------------------------------------------------------- display

_STYLE = {"cached": "green", "run": "yellow", "forced": "magenta", "reported": "cyan", "halted": "red"}


def render_plan(plan: Plan, console: Any, estimate_cell: Any = None) -> None:
    """Print the plan as a rich table (row, stage, task, key, status, note) plus pinning warnings;
    ``estimate_cell(item) -> str`` adds an estimate column (:meth:`rmxbench.orchestrator.estimate.PlanEstimate.cell`)."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"plan for {plan.spec.suite.name} ({plan.ctx.path})", show_lines=False)
    for col, kw in (("row", {"overflow": "fold"}), ("stage", {}), ("task", {}), ("key", {"no_wrap": True}),
                    ("status", {"no_wrap": True}), *((("estimate", {"no_wrap": True}),) if estimate_cell else ()),
                    ("note", {"overflow": "fold", "ratio": 1})):
        t.add_column(col, **kw)
    sel = set(i.row_id for i in plan.selected())
    prev = None
    for it in plan.items:
        status = it.status if it.row_id in sel else f"{it.status} (not selected)"
        style = _STYLE.get(it.status, "") if it.row_id in sel else "dim"
        name = "" if it.row_id == prev else (it.row_id if it.kind == "base" else "  " + it.row_id)
        prev = it.row_id
        stage = it.label if it.stage != "eval" else seeded_label("eval", it.node.seed if it.node else None)  # issue 19
        t.add_row(escape(name), escape(stage), it.task or "", (it.key or "—")[:12],
                  f"[{style}]{status}[/]" if style else status,
                  *((escape(estimate_cell(it)),) if estimate_cell else ()), escape(it.detail))
    console.print(t)
    sel_items = plan.selected()
    n_run = sum(i.to_run for i in sel_items)
    n_cached = sum(i.status == "cached" for i in sel_items)
    from rmxbench.backends.session import starts_line

    console.print(f"{len(sel_items)} items: [green]{n_cached} cached[/], [yellow]{n_run} to run[/]"
                  + "; " + starts_line(plan.engine_starts(), planned=True)
                  + (f", forced stages: {', '.join(s for s in plan.table if s in plan.force)}" if plan.force else "")
                  + f"; store: {escape(str(plan.store.home))}"
                  + f"; data: {escape(str(plan.ctx.data_dir)) if plan.ctx.data_dir else 'hub datasets'}")
    total, chain, width, models, busiest = plan.parallelism()
    if total:
        console.print(f"parallelism: {_counted(total, 'node')} to build; longest chain {_counted(chain, 'node')} "
                      f"(the fewest sequential builds any executor needs); widest level {_counted(width, 'node')}; "
                      f"{_counted(models, 'model worker')}, the busiest with {_counted(busiest, 'node')}")
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")


def _counted(n: int, noun: str) -> str:
    """``1 node``, ``2 nodes``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
