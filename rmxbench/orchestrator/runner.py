"""Execute a :class:`rmxbench.orchestrator.planner.Plan`: build every node of the selected rows (and
the nodes they read) in dependency order, price the rows, write the run folder and render the board.

The runner is the driver: it walks the graph in an order that keeps the nodes of one model
together (:func:`rmxbench.pipeline.graph.schedule`), reuses what the store holds, and hands each
node to build, as a portable :class:`~rmxbench.orchestrator.executor.BuildRequest`, to an executor
(:mod:`rmxbench.orchestrator.executor`) once its inputs exist — never one key twice at once. The
default :class:`~rmxbench.orchestrator.executor.LocalExecutor` builds one node after another in this
process on one engine session per model (a :class:`rmxbench.backends.session.SessionPool`: started
once, closed when no remaining node needs it); ``--executor ray``
(:class:`rmxbench.orchestrator.ray_executor.RayExecutor`) builds independent nodes at once on a Ray
cluster. Every meter records whether its node started or reused an engine.

Every node is built through the artifact store (:mod:`rmxbench.pipeline.store`) under the key the
planner gave it, so a run killed at any point (SIGKILL, Ctrl-C) and restarted resumes at the
first unfinished node and ends with the same board; a run with nothing changed builds nothing.
The runner knows no stage by name: what a node does is its stage module's ``build``; whether a
row stops early is its ``halt``, a row's note its ``warn``, a log line its ``summary``; the
table says which nodes count toward cost (``training``), which give a board cell (``board="record"``:
the module's ``record``) or an analysis section (``board="section"``), and which figures to show.
Runner state is keyed by node key (the same in every process).

Outputs: ``$RMXBENCH_HOME/<stage>/<key>/`` per node (each with ``meter.json``), the run folder
(:mod:`rmxbench.board.runfolder`) and ``<out>/<suite>.md`` / ``.html`` (:func:`rmxbench.board.render.render`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmxbench.errors import UserError
from rmxbench.orchestrator.estimate_report import meter_record, node_report, row_estimate
from rmxbench.orchestrator.executor import BuildOutcome, BuildRequest, Executor, LocalExecutor, request_of
from rmxbench.pipeline.graph import Node, schedule
from rmxbench.pipeline.metering import read_meter
from rmxbench.pricing import published_cost, seed_mean_cost
from rmxbench.orchestrator.planner import Plan, halt_message
from rmxbench.results import RowCost, TaskRecord, seeded_row_key


@dataclass
class RunSummary:
    """What a run did. ``built``: (node label, seconds) built in this run; ``cached``: labels
    found in the store; ``reused``: labels another run sharing the store built while this one
    waited for them; ``failed``: (label, why) of nodes that could not be built (a distributed
    run goes on with the other branches); ``dirs``: node key -> artifact folder (every node that
    exists); ``analyses``: artifact folders of the spec's analyses (board sections)."""

    records: list[TaskRecord]
    costs: dict[str, RowCost]
    notes: dict[str, str]
    built: list[tuple[str, float]] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    dirs: dict[str, Path] = field(default_factory=dict)
    analyses: list[Path] = field(default_factory=list)
    results_path: Path | None = None
    board_md: Path | None = None
    board_html: Path | None = None
    seconds: float = 0.0
    engines: str = ""


def _common_folder(paths: list[str]) -> str:
    """The one file, or the folder (with a trailing ``/``) holding all of ``paths``."""
    if len(set(paths)) == 1:
        return paths[0]
    return os.path.commonpath(paths) + os.sep


def _rel(home: Path, p: Path) -> str:
    try:
        return str(p.resolve().relative_to(home.resolve()))
    except ValueError:
        return str(p)


class Runner:
    """Runs a plan (see module doc). ``console`` is a rich Console; ``out_dir`` the board folder;
    ``executor`` who builds the nodes (default: a :class:`~rmxbench.orchestrator.executor.LocalExecutor`);
    ``estimate`` the plan's cost estimate (:class:`rmxbench.orchestrator.estimate.PlanEstimate`; :meth:`run`
    makes it when None), recorded in each built node's meter beside its measurement."""

    def __init__(self, plan: Plan, *, console: Any, out_dir: str | Path = "leaderboard",
                 executor: Executor | None = None, estimate: Any = None):
        self.plan = plan
        self.estimate = estimate
        self.store = plan.store
        self.console = console
        self.out_dir = Path(out_dir)
        self.executor = executor
        self.summary = RunSummary(records=[], costs={}, notes={})
        self.halted: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.progress = None
        self.plain = False  # True: the console is not a terminal (timestamped lines, issue 18 item 12)
        self._requests: dict[str, BuildRequest] = {}
        self._ordinal: dict[str, int] = {}  # node key -> its number in the plain lines
        self._started: dict[str, float] = {}  # node key -> when it was submitted (perf_counter)
        self._built_keys: set[str] = set()  # keys built in this run (estimates.json: built_now)
        self._failed_logs: list[str] = []  # the kept build logs of failed nodes (executors that report them)
        self._failed_hints: dict[str, str] = {}  # a failure's reason -> its hint (executors that report them)

    # ------------------------------------------------------------------ nodes

    def _resolved(self, node: Node, d: Path, run_it: bool) -> None:
        """Record ``node``'s folder; halt its dependents if its stage says so; note its warning."""
        s, plan = self.summary, self.plan
        s.dirs[node.key] = d
        msg = halt_message(plan.table, node, d)
        if msg:
            msg = msg if node.seed is None else f"seed {node.seed}: {msg}"  # issue 19: which seed's chain stopped
            s.notes[node.row_id] = "; ".join(x for x in (s.notes.get(node.row_id), msg) if x)
            for dep in plan.graph.dependents(node):
                self.halted[dep.key] = msg
            if run_it and self.console is not None:
                self.console.print(f"[bold yellow]{node.row_id}:[/] {msg} — the rest of this row is skipped "
                                   "and the board records it.")
        warn = getattr(plan.table[node.stage].load(), "warn", None)  # optional: a note, the row goes on
        if warn is not None and (note := warn(d)):
            note = note if node.seed is None else f"seed {node.seed}: {note}"  # issue 19
            s.notes[node.row_id] = "; ".join(x for x in (s.notes.get(node.row_id), note) if x)
            if run_it and self.console is not None:
                self.console.print(f"[bold yellow]{node.row_id}:[/] {note}")

    def _finished(self, node: Node, out: BuildOutcome) -> None:
        """Handle an executor's outcome for ``node``: record it, print its summary line, or record
        the failure (its dependents are then skipped)."""
        s, label = self.summary, f"{node.row_id} {node.label}"
        if out.error is not None or out.path is None:
            why = self.failed[node.key] = out.error or "no artifact"
            first = next((lab for lab, w in s.failed if w == why), None)  # a long reason is printed once
            if first is not None:
                shown = f"as {first} (above)"
            else:
                shown = why + (f" (hint: {out.hint})" if out.hint else "")
            if out.log:
                shown += f"; build log: {out.log}"
            s.failed.append((label, why))
            if out.hint:
                self._failed_hints[why] = out.hint
            if out.log:
                self._failed_logs.append(out.log)
            for dep in self.plan.graph.dependents(node):
                self.failed.setdefault(dep.key, f"its input {label} failed")
            if self.plain:
                self._line(node, f"failed: {shown}")
            elif self.console is not None:
                from rich.markup import escape

                self.console.print(f"[bold red]{escape(label)} failed:[/] {escape(shown)}")
            return
        if out.built:
            s.built.append((label, out.seconds))
            self._line(node, f"finished in {time.perf_counter() - self._started.get(node.key, 0.0):.1f} s")
            self._built_keys.add(node.key)
        else:  # another run sharing the store built it while this one waited (issue 18 item 9)
            s.reused.append(label)
            self._line(node, "reused: built meanwhile by another run")
        if self.progress is not None:
            self.progress.advance(self.overall)
        line = getattr(self.plan.table[node.stage].load(), "summary", None)
        if line is not None and self.console is not None and (text := line(out.path)):
            from rich.markup import escape

            self.console.print(f"{escape(seeded_row_key(node.row_id, node.seed))}: {escape(text)}", soft_wrap=self.plain)
        self._resolved(node, out.path, True)

    def run_nodes(self, nodes: list[Node] | None = None, *, raise_failed: bool = True) -> RunSummary:
        """Build the selected rows' nodes (``nodes``: only these and what they read), one model's
        nodes together on its shared engine session.

        Args:
            raise_failed: False leaves failed nodes in ``summary.failed`` for the caller (``run``
                renders the board of what was built first).

        Raises:
            UserError: nodes failed in a distributed run (after the other branches finished; the
                message names them; what was built is stored, a rerun builds only what is missing).
            Whatever a build raises under the local executor.
        """
        from rmxbench import progress as prog
        from rmxbench.threads import cap_threads

        cap_threads()
        plan = self.plan
        selected = {i.row_id for i in plan.selected()}
        order = {r.id: r.index for r in (i.row for i in plan.items)}
        wanted = [n for n in (nodes or plan.graph.nodes) if n.row_id in selected]
        needed: set[str] = set()
        to_build: set[str] = set()

        def need(n: Node) -> None:  # a node to build, and the inputs it needs (a stored node needs none)
            if n.key in needed:
                return
            needed.add(n.key)
            if self.store.get(n.stage, n.key) is None or n.key in plan.forced_keys:
                to_build.add(n.key)
                for i in n.inputs.values():
                    need(i)
        for n in wanted:
            need(n)
        pos = {id(n): (order.get(n.row_id, 1 << 30), i) for i, n in enumerate(plan.graph.nodes)}
        visit = schedule([n for n in plan.graph.nodes if nodes is None or n.key in needed], pos)
        requests: dict[str, BuildRequest] = {}
        for n in visit:
            if n.key in to_build and n.key not in requests:
                requests[n.key] = request_of(n, plan.table[n.stage], force=n.key in plan.forced_keys,
                                             estimate=meter_record(self.estimate, n))
        self._requests = requests
        todo = sum(1 for i in plan.items if i.node is not None and i.node.key in needed and i.to_run)
        executor = self.executor or LocalExecutor(self.store)
        self.progress = prog.new_display(self.console) if self.console is not None else None
        self.plain = isinstance(self.progress, prog.PlainProgress)
        ctx = self.progress if self.progress is not None else _Null()
        try:
            with ctx, prog.use(self.progress) if self.progress is not None else _Null():
                # plain lines number the nodes instead of an overall bar
                self.overall = None if self.progress is None or self.plain else self.progress.add_task("items", total=todo)
                if self.plain:
                    self.progress.line(f"{len(requests)} node(s) to build, {len(needed) - len(requests)} stored")
                executor.start(list(requests.values()))
                if (where := executor.describe()) and self.console is not None:
                    from rich.markup import escape

                    self.console.print(escape(where))
                self._drive(visit, requests, executor)
                if self.progress is not None:
                    self.progress.update(self.overall, description="done")
        except KeyboardInterrupt as exc:  # Ctrl-C: say which nodes stop unfinished (close() drops them)
            if flight := executor.status():
                names = [requests[k].name if k in requests else k[:12] for k in flight]
                exc.add_note(f"stopped {len(names)} unfinished node{'' if len(names) == 1 else 's'}: "
                             + ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else ""))
            raise
        finally:
            executor.close()
        self.summary.engines = executor.summary()
        if self.summary.failed and raise_failed:
            self._raise_failed()
        return self.summary

    def _drive(self, visit: list[Node], requests: dict[str, BuildRequest], executor: Executor) -> None:
        """The driver loop: resolve stored nodes, offer the executor every node whose inputs exist
        (in ``visit`` order; an in-order executor only the first), handle what finished."""
        s, store = self.summary, self.store
        pending = list(visit)
        in_flight: dict[str, Node] = {}
        lines: dict[str, Any] = {}
        while True:
            ready: list[tuple[BuildRequest, dict[str, Path]]] = []
            keep: list[Node] = []
            for i, n in enumerate(pending):
                k = n.key
                if k in self.halted or k in self.failed:
                    continue
                if k in s.dirs:  # another node of this key (an identical cell of another row) was resolved
                    s.cached.append(f"{n.row_id} {n.label}")
                    self._resolved(n, s.dirs[k], False)
                    continue
                if k not in requests:  # stored (or not needed): nothing to build
                    d = store.get(n.stage, k)
                    if d is not None:
                        s.cached.append(f"{n.row_id} {n.label}")
                        self._resolved(n, d, False)
                    continue
                keep.append(n)
                if k in in_flight or not all(x.key in s.dirs for x in n.inputs.values()):
                    continue
                ready.append((requests[k], {r: s.dirs[x.key] for r, x in n.inputs.items()}))
                if executor.in_order:
                    keep.extend(pending[i + 1:])
                    break
            pending = keep
            if ready:
                for k in executor.submit(ready):
                    in_flight[k] = next(n for n in pending if n.key == k)
                    self._ordinal[k], self._started[k] = len(self._ordinal) + 1, time.perf_counter()
                    self._line(in_flight[k], "started")
                    if self.progress is not None and not self.plain:
                        self.progress.update(self.overall, description=f"{in_flight[k].row_id} {in_flight[k].label}")
            if not in_flight:
                if pending:  # ready nodes the executor cannot place (e.g. a cluster that lost its GPUs)
                    raise UserError("nothing is running and these nodes cannot start: "
                                    + ", ".join(f"{n.row_id} {n.label}" for n in pending),
                                    hint="the executor has no room for them (did the cluster lose machines?); "
                                         "finished nodes are stored, rerun when it has")
                break
            for out in executor.wait(timeout=0.5):
                node = in_flight.pop(out.key)
                pending = [x for x in pending if x is not node]
                self._finished(node, out)
                executor.retain([r for k, r in requests.items() if k not in s.dirs and k not in self.failed
                                 and k not in self.halted])
            self._show_status(executor, in_flight, lines)

    def _line(self, node: Node, text: str) -> None:
        """A plain progress line ``<time> [i/N] <row> <label> <text>`` (only when the console is not
        a terminal: a terminal shows the live display)."""
        if self.plain:
            self.progress.line(f"[{self._ordinal.get(node.key, 0)}/{len(self._requests)}] {node.row_id} {node.label} {text}")

    def _show_status(self, executor: Executor, in_flight: dict[str, Node], lines: dict[str, Any]) -> None:
        """Per-node lines of the progress display (executors that build several nodes at once)."""
        if self.progress is None or executor.in_order or self.plain:
            return
        status = executor.status()
        for k in [k for k in lines if k not in in_flight]:
            self.progress.remove_task(lines.pop(k))
        for k, n in in_flight.items():
            text = f"  {n.row_id} {n.label}: {status.get(k, 'submitted')}"
            if k not in lines:
                lines[k] = self.progress.add_task(text, total=None)
            else:
                self.progress.update(lines[k], description=text)

    def _raise_failed(self) -> None:
        s = self.summary
        failed = {lab for lab, _ in s.failed}
        skipped = list(dict.fromkeys(r.name for k, r in self._requests.items()
                                     if k in self.failed and r.name not in failed))
        by_reason: dict[str, list[str]] = {}  # one reason (an install hint, a full disk) is said once
        for lab, why in s.failed:
            by_reason.setdefault(why, []).append(lab)
        hints = self._failed_hints
        one_hint = len(by_reason) == 1 and next(iter(by_reason)) in hints  # then it is the error's hint line

        def reason(why: str) -> str:
            return why if one_hint or why not in hints else f"{why} (hint: {hints[why]})"

        msg = (f"{len(s.failed)} node(s) failed: " + "; ".join(f"{', '.join(labs)} ({reason(why)})"
                                                              for why, labs in by_reason.items())
               + (f". Not built because an input failed: {', '.join(skipped)}" if skipped else "")
               + f". {len(s.built)} node(s) were built in this run and are stored"
               + (f". Build logs of the failed nodes: {_common_folder(self._failed_logs)}" if self._failed_logs else "")
               + (f". The board of what was built: {s.board_md}" if s.board_md else "") + ".")
        then = "then rerun the same command: it builds only what is missing"
        raise UserError(msg, hint=f"{hints[next(iter(by_reason))]}; {then}" if one_hint
                        else f"fix what the failure says (if it was a dead worker, nothing), {then}")

    # ------------------------------------------------------------------ main

    def run(self) -> RunSummary:
        """Build every selected node, then price rows, write the run folder and render the board."""
        t0 = time.perf_counter()
        if self.estimate is None:
            from rmxbench.orchestrator.estimate import estimate_plan

            self.estimate = estimate_plan(self.plan)
        self.run_nodes(raise_failed=False)
        s = self.summary
        for node in self.plan.graph.nodes:  # what the table says each finished node gives the board
            board, d = self.plan.table[node.stage].board, s.dirs.get(node.key)
            if d is None or not board:
                continue
            if board == "record":
                s.records.append(self._record(node, self.plan.table[node.stage].load().record(d)))
            elif board == "section":
                s.analyses.append(d)
        s.costs = self.costs()
        s.seconds = time.perf_counter() - t0
        missing: dict[str, list[str]] = {}  # nodes failed (distributed run): the board says which rows lack cells
        selected, failed = {i.row_id for i in self.plan.selected()}, {lab for lab, _ in s.failed}
        for n in self.plan.graph.nodes:
            if n.key in self.failed and n.row_id in selected:
                what = "failed" if f"{n.row_id} {n.label}" in failed else "not built"
                missing.setdefault(n.row_id, []).append(f"{n.label} {what}")
        for row_id, parts in missing.items():
            note = "incomplete, this run stopped short: " + ", ".join(parts)
            s.notes[row_id] = "; ".join(x for x in (s.notes.get(row_id), note) if x)
        self._write_outputs()
        if s.failed:
            self._raise_failed()
        return s

    def _record(self, node: Node, rec: TaskRecord) -> TaskRecord:
        d = self.summary.dirs[node.key]
        rec.row_id = node.row_id  # an identical cell may be shared by rows of several specs
        rec.seed = node.seed  # issue 19: the training seed of a row with `seeds:` (None otherwise)
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
        recorded before they ran (per seed, like the measurement); else the RL baseline's published cost."""
        plan = self.plan
        out: dict[str, RowCost] = {}
        for item in plan.items:
            if item.row_id in out:
                continue
            meters = {}
            for n in plan.graph.find(item.row_id):
                d = self.summary.dirs.get(n.key) or self.store.get(n.stage, n.key)
                m = read_meter(d) if plan.table[n.stage].training and d is not None else None
                if m is not None:
                    meters.setdefault(n.seed, {})[n.label] = m  # issue 19: per training seed
            if meters:
                out[item.row_id] = seed_mean_cost(meters, plan.spec.pricing)
                out[item.row_id].estimate = row_estimate(meters)
            elif item.kind == "rl_baseline":
                out[item.row_id] = published_cost(item.row.row.cost, plan.spec.pricing)
        return out

    def _write_outputs(self) -> None:
        import warnings

        from rmxbench.board.reference import load_reference
        from rmxbench.board.render import render
        from rmxbench.board.runfolder import write_estimates, write_figures, write_run

        plan, s = self.plan, self.summary
        order = {row.id: n for n, (_, _, row) in enumerate(plan.spec.rows())}
        tasks = list(plan.spec.protocol.tasks)
        s.records.sort(key=lambda r: (order.get(r.row_id, 1 << 30), tasks.index(r.task) if r.task in tasks else 99))
        s.results_path = write_run(self.store.home, plan.spec.suite.name, s.records, s.costs, s.notes,
                                   {"built": s.built, "cached": s.cached, "reused": s.reused,
                                    "run_seconds": round(s.seconds, 3), "engines": s.engines},
                                   s.analyses)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing reference file just means no paper column
            reference = load_reference(plan.ctx.reference)
        figures: dict[str, list[str]] = {}
        for n in plan.graph.nodes:  # stage figures shown next to the board (table: Stage.figures)
            d = s.dirs.get(n.key) or self.store.get(n.stage, n.key)
            for name in plan.table[n.stage].figures if d is not None else ():
                if (d / name).is_file():
                    figures.setdefault(seeded_row_key(n.row_id, n.seed), []).append(str(d / name))  # issue 19
        write_figures(self.store.home, plan.spec.suite.name, figures)
        write_estimates(self.store.home, plan.spec.suite.name, node_report(plan, s.dirs, self._built_keys))
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
    """Build the node that provides a ReasonMaxxer row's adapter (its ``pick``) and every node it
    reads (``rmxbench train``)."""
    import json

    from rmxbench.pipeline.identity import METADATA_FILE

    r = Runner(plan, console=console)
    providers = plan.graph.find(row_id, provides="adapter")
    if not providers:
        raise UserError(f"row {row_id!r} has no stage that provides an adapter (not a ReasonMaxxer row)")
    first_seed = providers[0].seed  # issue 19: a row with `seeds:` trains its first seed's chain
    last = [p for p in providers if p.seed == first_seed][-1]
    nodes = [*plan.graph.ancestors(last), last]
    r.run_nodes(nodes)
    dirs = {n.label: r.summary.dirs[n.key] for n in nodes if n.key in r.summary.dirs}
    if last.key not in r.summary.dirs:
        msg = r.summary.notes.get(row_id, "training did not finish")
        return TrainResult(None, {}, dirs, "halted", msg)
    d = r.summary.dirs[last.key]
    meta = json.loads((d / METADATA_FILE).read_text())
    meta["stage_seconds"] = {label: float(m["seconds"]) for label, x in dirs.items() if (m := read_meter(x))}
    line = getattr(plan.table[last.stage].load(), "summary", None)
    return TrainResult(d, meta, dirs, "ok", line(d) if line is not None else "")


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
    console.print(f"{len(summary.built)} built, {len(summary.cached)} cached"
                  + (f", {len(summary.reused)} reused (built meanwhile by another run)" if summary.reused else "")
                  + f"; run took {summary.seconds:.1f} s"
                  + (f"; {summary.engines}" if summary.engines else ""))
    if summary.results_path:
        console.print(f"results: {escape(str(summary.results_path))}")
    if summary.board_md:
        console.print(f"board: {escape(str(summary.board_md))} and {escape(str(summary.board_html))}")
