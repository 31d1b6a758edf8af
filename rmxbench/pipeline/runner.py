"""Execute a :class:`rmxbench.pipeline.planner.Plan`: build every node of the selected rows (and
the nodes they read) in dependency order, price the rows, write the run folder and render the board.

Nodes run in an order that keeps the nodes of one model together
(:func:`rmxbench.pipeline.graph.schedule`), and share one engine session per model through a
:class:`rmxbench.backends.session.SessionPool` (started once, closed when no remaining node needs
it; every meter records whether its node started or reused an engine).

Every node is built through the artifact store (:mod:`rmxbench.pipeline.store`) under the key the
planner gave it, so a run killed at any point (SIGKILL, Ctrl-C) and restarted resumes at the
first unfinished node and ends with the same board; a run with nothing changed builds nothing.
The runner knows no stage by name: what a node does is its stage module's ``build``; whether a
row stops early is its ``halt``; which nodes count toward cost is the table's ``training`` flag;
board records come from ``eval`` nodes.

Outputs: ``$RMXBENCH_HOME/<stage>/<key>/`` per node (each with ``meter.json``), the run folder
(:mod:`rmxbench.board.runfolder`) and ``<out>/<suite>.md`` / ``.html`` (:func:`rmxbench.board.render.render`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmxbench.pipeline.graph import BuildEnv, Node, schedule
from rmxbench.pipeline.metering import METER_FILE, device_info, read_meter
from rmxbench.pricing import measured_cost, published_cost
from rmxbench.pipeline.estimate_report import meter_record
from rmxbench.pipeline.planner import Plan, halt_message
from rmxbench.results import RowCost, TaskRecord, atomic_write_json


@dataclass
class RunSummary:
    """What a run did. ``built``: (node label, seconds) built in this run; ``cached``: labels
    found in the store; ``dirs``: node -> artifact folder (every node that exists); ``analyses``:
    artifact folders of the spec's analyses (board sections)."""

    records: list[TaskRecord]
    costs: dict[str, RowCost]
    notes: dict[str, str]
    built: list[tuple[str, float]] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    dirs: dict[int, Path] = field(default_factory=dict)
    analyses: list[Path] = field(default_factory=list)
    results_path: Path | None = None
    board_md: Path | None = None
    board_html: Path | None = None
    seconds: float = 0.0
    engines: str = ""


def _rel(home: Path, p: Path) -> str:
    try:
        return str(p.resolve().relative_to(home.resolve()))
    except ValueError:
        return str(p)


class Runner:
    """Runs a plan (see module doc). ``console`` is a rich Console; ``out_dir`` the board folder."""

    def __init__(self, plan: Plan, *, console: Any, out_dir: str | Path = "leaderboard", estimate: Any = None):
        self.plan = plan
        #: the plan's cost estimate (:class:`rmxbench.pipeline.estimate.PlanEstimate`); made in :meth:`run` if None
        self.estimate = estimate
        self.store = plan.store
        self.console = console
        self.out_dir = Path(out_dir)
        self.summary = RunSummary(records=[], costs={}, notes={})
        self.halted: dict[int, str] = {}

    # ------------------------------------------------------------------ nodes

    def _build(self, node: Node, force: bool) -> Path:
        """Build one node with its stage's ``build`` into a temp folder the store publishes; its
        meter records the node's wall seconds and the engine sessions it started or reused."""
        import json
        from dataclasses import asdict

        from rmxbench.results import atomic_write_json

        mod = self.plan.table[node.stage].load()
        inputs = {role: self.summary.dirs[id(n)] for role, n in node.inputs.items()}
        env = BuildEnv(self.pool, node.engine)

        def fn(tmp: Path) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            counts = mod.build(node.config, inputs, tmp, env)
            meter = read_meter(tmp)
            if meter is None:  # a build may meter itself (with item counts)
                meter = {"stage": node.label, "seconds": time.perf_counter() - t0, **device_info()}
            if env.used:
                meter["engines"] = [asdict(e) for e in env.used]
            # the whole build (engine starts included) and its process CPU time; the counts a build returns
            # and the estimate made before it ran (issue 20: estimate vs measurement, calibration)
            meter.update(node_seconds=time.perf_counter() - t0, node_cpu_seconds=time.process_time() - c0)
            meter.update({k: v for k, v in (counts or {}).items() if isinstance(v, (int, float))})
            if (rec := meter_record(self.estimate, node)) is not None:
                meter["estimate"] = rec
            atomic_write_json(tmp / METER_FILE, json.loads(json.dumps(meter, default=str)))

        return self.store.build(node.stage, node.key, fn, force=force,
                                meta={"row_id": node.row_id, "label": node.label, "task": node.task})

    def _visit(self, node: Node, run_it: bool) -> None:
        """Reuse or build ``node``; record its folder; halt its dependents if it says so."""
        s, plan = self.summary, self.plan
        label = f"{node.row_id} {node.label}"
        if id(node) in self.halted:
            return
        d = self.store.get(node.stage, node.key)
        forced = id(node) in plan.forced_nodes and id(node) not in self._rebuilt
        if run_it and (d is None or forced):
            if self.progress is not None:
                self.progress.update(self.overall, description=label)
            d = self._build(node, forced)
            self._rebuilt.add(id(node))
            m = read_meter(d)
            s.built.append((label, float(m["seconds"]) if m else 0.0))
            if self.progress is not None:
                self.progress.advance(self.overall)
            line = getattr(plan.table[node.stage].load(), "summary", None)
            if line is not None and self.console is not None and (text := line(d)):
                from rich.markup import escape

                self.console.print(f"{escape(node.row_id)}: {escape(text)}")
        elif d is not None:
            s.cached.append(label)
        if d is None:
            return
        s.dirs[id(node)] = d
        msg = halt_message(plan.table, node, d)
        if msg:
            s.notes[node.row_id] = msg
            for dep in plan.graph.dependents(node):
                self.halted[id(dep)] = msg
            if run_it and self.console is not None:
                self.console.print(f"[bold yellow]{node.row_id}:[/] {msg} — the rest of this row is skipped "
                                   "and the board records it.")
        warn = getattr(plan.table[node.stage].load(), "warn", None)  # optional: a note, the row goes on
        if warn is not None and (note := warn(d)):
            s.notes[node.row_id] = "; ".join(x for x in (s.notes.get(node.row_id), note) if x)
            if run_it and self.console is not None:
                self.console.print(f"[bold yellow]{node.row_id}:[/] {note}")

    def run_nodes(self, nodes: list[Node] | None = None) -> RunSummary:
        """Build the selected rows' nodes (``nodes``: only these and what they read), one model's
        nodes together on its shared engine session."""
        from rmxbench import progress as prog
        from rmxbench.backends.session import SessionPool
        from rmxbench.threads import cap_threads

        cap_threads()
        plan = self.plan
        selected = {i.row_id for i in plan.selected()}
        order = {r.id: r.index for r in (i.row for i in plan.items)}
        wanted = [n for n in (nodes or plan.graph.nodes) if n.row_id in selected]
        needed: set[int] = set()
        to_build: set[int] = set()

        def need(n: Node) -> None:  # a node to build, and the inputs it needs (a stored node needs none)
            if id(n) in needed:
                return
            needed.add(id(n))
            if self.store.get(n.stage, n.key) is None or id(n) in plan.forced_nodes:
                to_build.add(id(n))
                for i in n.inputs.values():
                    need(i)
        for n in wanted:
            need(n)
        pos = {id(n): (order.get(n.row_id, 1 << 30), i) for i, n in enumerate(plan.graph.nodes)}
        visit = schedule([n for n in plan.graph.nodes if nodes is None or id(n) in needed], pos)
        self._rebuilt: set[int] = set()
        todo = sum(1 for i in plan.items if i.node is not None and id(i.node) in needed and i.to_run)
        self.progress = prog.new_progress(self.console) if self.console is not None else None
        self.pool = SessionPool()
        ctx = self.progress if self.progress is not None else _Null()
        try:
            with ctx, prog.use(self.progress) if self.progress is not None else _Null():
                self.overall = self.progress.add_task("items", total=todo) if self.progress is not None else None
                for i, node in enumerate(visit):
                    self._visit(node, id(node) in needed)
                    self.pool.retain({n.engine_key for n in visit[i + 1:] if id(n) in to_build and n.engine_key})
                if self.progress is not None:
                    self.progress.update(self.overall, description="done")
        finally:
            self.pool.close_all()
        self.summary.engines = self.pool.summary()
        return self.summary

    # ------------------------------------------------------------------ main

    def run(self) -> RunSummary:
        """Build every selected node, then price rows, write the run folder and render the board."""
        t0 = time.perf_counter()
        if self.estimate is None:
            from rmxbench.pipeline.estimate import estimate_plan

            self.estimate = estimate_plan(self.plan)
        self.run_nodes()
        s = self.summary
        from rmxbench.stages.eval import load_record

        from rmxbench.analysis.analysis_config import ANALYSES

        for node in self.plan.graph.nodes:
            if node.stage == "eval" and id(node) in s.dirs:
                s.records.append(self._record(node, load_record(s.dirs[id(node)])))
            elif node.stage in ANALYSES and id(node) in s.dirs:
                s.analyses.append(s.dirs[id(node)])
        s.costs = self.costs()
        s.seconds = time.perf_counter() - t0
        self._write_outputs()
        return s

    def _record(self, node: Node, rec: TaskRecord) -> TaskRecord:
        d = self.summary.dirs[id(node)]
        rec.row_id = node.row_id  # an identical cell may be shared by rows of several specs
        prov = dict(rec.provenance or {})
        prov.update(eval_key=node.key, artifact=_rel(self.store.home, d),
                    row_kind=next(i.kind for i in self.plan.items if i.row_id == node.row_id))
        m = read_meter(d)
        if m is not None:
            prov.setdefault("wall_seconds", round(float(m["seconds"]), 3))
            prov.setdefault("device", m.get("device"))
            prov.setdefault("accelerator_name", m.get("accelerator_name"))
        rec.provenance = prov
        return rec

    def costs(self) -> dict[str, RowCost]:
        """RowCost per priced row: measured from the meters of the row's training-stage nodes
        (cached ones included: the cost of producing its artifacts), with the estimate those nodes
        recorded before they ran; else the RL baseline's published cost."""
        from rmxbench.pipeline.estimate_report import row_estimate

        plan = self.plan
        out: dict[str, RowCost] = {}
        for item in plan.items:
            if item.row_id in out:
                continue
            meters = {}
            for n in plan.graph.find(item.row_id):
                d = self.summary.dirs.get(id(n)) or self.store.get(n.stage, n.key)
                m = read_meter(d) if plan.table[n.stage].training and d is not None else None
                if m is not None:
                    meters[n.label] = m
            if meters:
                out[item.row_id] = measured_cost(meters, plan.spec.pricing)
                out[item.row_id].estimate = row_estimate(meters)
            elif item.kind == "rl_baseline":
                out[item.row_id] = published_cost(item.row.row.cost, plan.spec.pricing)
        return out

    def _write_outputs(self) -> None:
        import warnings

        from rmxbench.board.reference import load_reference
        from rmxbench.board.render import render
        from rmxbench.board.runfolder import write_estimates, write_figures, write_run
        from rmxbench.pipeline.estimate_report import node_report

        plan, s = self.plan, self.summary
        order = {row.id: n for n, (_, _, row) in enumerate(plan.spec.rows())}
        tasks = list(plan.spec.protocol.tasks)
        s.records.sort(key=lambda r: (order.get(r.row_id, 1 << 30), tasks.index(r.task) if r.task in tasks else 99))
        s.results_path = write_run(self.store.home, plan.spec.suite.name, s.records, s.costs, s.notes,
                                   {"built": s.built, "cached": s.cached, "run_seconds": round(s.seconds, 3),
                                    "engines": s.engines},
                                   s.analyses)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing reference file just means no paper column
            reference = load_reference(plan.ctx.reference)
        figures: dict[str, list[str]] = {}
        for n in plan.graph.nodes:  # stage figures shown next to the board (table: Stage.figures)
            d = s.dirs.get(id(n)) or self.store.get(n.stage, n.key)
            for name in plan.table[n.stage].figures if d is not None else ():
                if (d / name).is_file():
                    figures.setdefault(n.row_id, []).append(str(d / name))
        write_figures(self.store.home, plan.spec.suite.name, figures)
        built = {id(n) for n in plan.graph.nodes if id(n) in self._rebuilt}
        write_estimates(self.store.home, plan.spec.suite.name, node_report(plan, s.dirs, built))
        md, html = render(plan.spec, s.records, s.costs, s.notes, reference, self.out_dir, figures=figures,
                          analyses=s.analyses)
        s.board_md, s.board_html = Path(md), Path(html)


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@dataclass
class TrainResult:
    """Outcome of :func:`train_row`: the picked adapter folder (None when the row halted), its
    ``rmx_metadata.json``, node label -> artifact folder, ``status`` ``"ok"`` or ``"halted"``, and a
    plain-language message."""

    adapter_dir: Path | None
    metadata: dict
    stage_dirs: dict[str, Path]
    status: str
    message: str


def train_row(plan: Plan, row_id: str, *, console: Any = None) -> TrainResult:
    """Build a ReasonMaxxer row's nodes up to and including ``pick`` (``rmxbench train``)."""
    import json

    r = Runner(plan, console=console)
    nodes = [n for n in plan.graph.find(row_id) if n.stage != "eval"]
    r.run_nodes(nodes)
    dirs = {n.label: r.summary.dirs[id(n)] for n in nodes if id(n) in r.summary.dirs}
    if "pick" not in dirs:
        msg = r.summary.notes.get(row_id, "training did not finish")
        return TrainResult(None, {}, dirs, "halted", msg)
    meta = json.loads((dirs["pick"] / "rmx_metadata.json").read_text())
    meta["stage_seconds"] = {label: float(m["seconds"]) for label, d in dirs.items() if (m := read_meter(d))}
    line = plan.table["pick"].load().summary
    return TrainResult(dirs["pick"], meta, dirs, "ok", line(dirs["pick"]))


def print_summary(summary: RunSummary, console: Any) -> None:
    """Print the board Markdown and the per-node wall times of this run."""
    from rich.markdown import Markdown
    from rich.markup import escape
    from rich.table import Table

    if summary.board_md is not None and summary.board_md.is_file():
        console.print(Markdown(summary.board_md.read_text(encoding="utf-8")))
    t = Table(title="stages built in this run (wall seconds)")
    t.add_column("stage")
    t.add_column("seconds", justify="right")
    for label, sec in summary.built:
        t.add_row(escape(label), f"{sec:.1f}")
    console.print(t)
    console.print(f"{len(summary.built)} built, {len(summary.cached)} cached; run took {summary.seconds:.1f} s"
                  + (f"; {summary.engines}" if summary.engines else ""))
    if summary.results_path:
        console.print(f"results: {escape(str(summary.results_path))}")
    if summary.board_md:
        console.print(f"board: {escape(str(summary.board_md))} and {escape(str(summary.board_html))}")
