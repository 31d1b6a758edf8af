"""Execute a :class:`rmxbench.planner.Plan`: train missing adapters, evaluate every cell, price the
rows, write the results and render the board.

Every unit of work goes through the artifact store (:mod:`rmxbench.store`), so a run killed at
any point (SIGKILL, Ctrl-C) and restarted resumes at the first unfinished stage or eval cell and
ends with the same board; a run with nothing changed recomputes nothing.

Outputs:

- ``$RMXBENCH_HOME/eval/<key>/``: one evaluation cell (lm-eval ``results.json``, ``samples.jsonl``,
  ``record.json``, ``meter.json``);
- ``$RMXBENCH_HOME/rowtrain/<key>/train_result.json``: a ReasonMaxxer row's training outcome;
- ``$RMXBENCH_HOME/runs/<suite>/results.jsonl`` (one :class:`TaskRecord` per row × task),
  ``costs.json`` (``row_id -> RowCost``), ``notes.json`` (``row_id -> text``), ``stages.json``
  (per-stage wall seconds);
- ``<out>/<suite>.md`` and ``<out>/<suite>.html`` via :func:`rmxbench.board.render`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmxbench.errors import UserError
from rmxbench.metering import measured_cost, published_cost, read_meter
from rmxbench.planner import (
    EVAL_STAGE,
    ROWTRAIN_STAGE,
    TRAIN_STAGES,
    Plan,
    PlanItem,
    adapter_identity,
    HashCache,
    eval_key_parts,
    model_identity,
    data_identity,
    read_rowtrain,
)
from rmxbench.results import RowCost, TaskRecord, atomic_write_json, atomic_write_text


@dataclass
class RunSummary:
    """What a run did. ``built``: (stage label, seconds) of artifacts built in this run;
    ``cached``: labels found in the store. Paths of the written outputs."""

    records: list[TaskRecord]
    costs: dict[str, RowCost]
    notes: dict[str, str]
    built: list[tuple[str, float]] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    results_path: Path | None = None
    board_md: Path | None = None
    board_html: Path | None = None
    seconds: float = 0.0


def _rel(store, p: Path | str | None) -> str | None:
    if p is None:
        return None
    p = Path(p).resolve()
    try:
        return str(p.relative_to(store.home.resolve()))
    except ValueError:
        return str(p)


def reference_path(spec, spec_dir: Path) -> Path | None:
    """The spec's ``reference`` file (paper reported numbers) resolved against the spec folder."""
    if not spec.reference:
        return None
    p = Path(spec.reference).expanduser()
    return p if p.is_absolute() else spec_dir / p


class Runner:
    """Runs a plan (see module doc). ``console`` is a rich Console; ``out_dir`` the board folder."""

    def __init__(self, plan: Plan, *, console, out_dir: str | Path = "leaderboard"):
        self.plan = plan
        self.store = plan.store
        self.console = console
        self.out_dir = Path(out_dir)
        self.summary = RunSummary(records=[], costs={}, notes={})
        self.hashes = HashCache(self.store.home)
        self._train: dict[str, Any] = {}  # row_id -> rowtrain record

    # ------------------------------------------------------------------ training

    def _train_row(self, item: PlanItem, progress) -> dict:
        """Run ``train_row`` for a ReasonMaxxer row (cached stages are reused) and store its record."""
        from rmxbench.reasonmaxxer_trainer import train_row

        plan = self.plan
        force = frozenset(plan.force & TRAIN_STAGES)
        t0 = time.perf_counter()
        res = train_row(plan.spec, item.base, item.row, store=self.store, spec_dir=plan.spec_dir,
                        data_dir=plan.data_dir, force=force, progress=progress)
        rec = {
            "status": res.status,
            "message": res.message,
            "adapter_dir": _rel(self.store, res.adapter_dir),
            "stage_dirs": {k: _rel(self.store, v) for k, v in (res.stage_dirs or {}).items()},  # pipeline order
            "metadata": res.metadata,
        }
        old = read_rowtrain(self.store, item.key)
        text = json.dumps(rec, indent=1, default=str)  # insertion order: stages in pipeline order
        if old is None or json.dumps(old, indent=1, default=str) != text:
            self.store.build(ROWTRAIN_STAGE, item.key,
                             lambda tmp: atomic_write_text(tmp / "train_result.json", text + "\n"),
                             force=True, meta={"row_id": item.row_id})
        dt = time.perf_counter() - t0
        for label, rel in rec["stage_dirs"].items():
            m = read_meter(self.store.home / rel) if rel else None
            # A stage built in this run has a meter younger than the run start.
            if m is not None and rel and (self.store.home / rel / "meter.json").stat().st_mtime >= self._t_start:
                self.summary.built.append((f"{item.row_id} {label}", float(m["seconds"])))
            else:
                self.summary.cached.append(f"{item.row_id} {label}")
        if res.status == "ok":
            self.console.print(f"{item.row_id}: training done in {dt:.1f} s — {res.message}")
        return json.loads(text)

    # ------------------------------------------------------------------ evaluation

    def _eval_key(self, item: PlanItem, rec: dict | None) -> str | None:
        """Key of an eval item; ReasonMaxxer cells get theirs once the adapter exists."""
        if item.key is not None and item.status != "after-train":
            return item.key
        if rec is None or rec.get("status") != "ok" or not rec.get("adapter_dir"):
            return None
        plan = self.plan
        adapter_id = adapter_identity(self.store.home / rec["adapter_dir"], self.hashes)
        model_id = model_identity(item.settings.model, spec_dir=plan.spec_dir, hashes=self.hashes)
        data_id = data_identity(item.task, plan.data_dir, self.hashes)
        parts = eval_key_parts(item.settings, item.task, protocol=plan.spec.protocol, model_id=model_id,
                               adapter_id=adapter_id, data_id=data_id)
        item.parts = parts
        return self.store.key(EVAL_STAGE, **parts)

    def _run_eval(self, item: PlanItem, key: str, rec: dict | None, force: bool) -> Path:
        from rmxbench.evaluation import evaluate_task

        plan = self.plan
        s = item.settings
        adapter_dir = self.store.home / rec["adapter_dir"] if item.kind == "reasonmaxxer" else None

        def build(tmp: Path) -> None:
            t0 = time.perf_counter()
            record = evaluate_task(s.model, item.task, protocol=plan.spec.protocol, prompt_style=s.prompt_style,
                                   chat_template=s.chat_template, dtype=s.dtype,
                                   trust_remote_code=s.trust_remote_code, adapter_dir=adapter_dir,
                                   spec_dir=plan.spec_dir, data_dir=plan.data_dir, out_dir=tmp,
                                   row_id=item.row_id, eval_prompt=s.eval_prompt)
            if read_meter(tmp) is None:  # evaluate_task meters itself; meter here if it did not
                from rmxbench.metering import device_info

                atomic_write_json(tmp / "meter.json", {"stage": "eval", "seconds": time.perf_counter() - t0,
                                                       **device_info()})
            if not (tmp / "record.json").is_file():
                atomic_write_json(tmp / "record.json", record.to_json())
            atomic_write_json(tmp / "key_parts.json", item.parts)

        return self.store.build(EVAL_STAGE, key, build, force=force,
                                meta={"row_id": item.row_id, "task": item.task})

    def _load_record(self, item: PlanItem, d: Path, key: str) -> TaskRecord:
        data = json.loads((d / "record.json").read_text())
        rec = TaskRecord.from_json(data)
        rec.row_id = item.row_id  # an identical cell may be shared by rows of several specs
        prov = dict(rec.provenance or {})
        prov.update(eval_key=key, artifact=_rel(self.store, d), row_kind=item.kind)
        m = read_meter(d)
        if m is not None:
            prov.setdefault("wall_seconds", round(float(m["seconds"]), 3))
            prov.setdefault("device", m.get("device"))
            prov.setdefault("accelerator_name", m.get("accelerator_name"))
        rec.provenance = prov
        return rec

    # ------------------------------------------------------------------ main loop

    def run(self) -> RunSummary:
        """Run every selected item, then price rows, write results and render the board."""
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        plan = self.plan
        self._t_start = time.time() - 1.0
        t0 = time.perf_counter()
        selected = set(i.row_id for i in plan.selected())
        todo = [i for i in plan.selected() if i.to_run]
        progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=self.console, transient=False)
        with progress:
            overall = progress.add_task("items", total=len(todo))
            for item in plan.items:
                if item.stage == "reported":
                    continue
                run_it = item.row_id in selected
                if item.stage == "train":
                    if run_it and item.to_run:
                        progress.update(overall, description=f"{item.row_id}: train (rollouts → pick)")
                        rec = self._train_row(item, progress)
                        progress.advance(overall)
                    else:
                        rec = read_rowtrain(self.store, item.key)
                        if rec is not None:
                            for label in rec.get("stage_dirs", {}):
                                self.summary.cached.append(f"{item.row_id} {label}")
                    self._train[item.row_id] = rec
                    if rec is not None and rec.get("status") != "ok":
                        msg = rec.get("message") or "too few mixed-success problems; row not trained"
                        self.summary.notes[item.row_id] = msg
                        if run_it:
                            self.console.print(f"[bold yellow]{item.row_id}:[/] {msg} — evaluation of this "
                                               "row is skipped and the board records it.")
                    continue
                # eval cell
                rec = self._train.get(item.row_id)
                if item.kind == "reasonmaxxer" and (rec is None or rec.get("status") != "ok"):
                    if run_it and item.to_run:
                        progress.advance(overall)
                    continue
                key = self._eval_key(item, rec)
                if key is None:
                    continue
                label = f"{item.row_id} eval {item.task}"
                d = self.store.get(EVAL_STAGE, key)
                force = "eval" in plan.force and run_it
                if run_it and (d is None or force):
                    progress.update(overall, description=f"{item.row_id}: eval {item.task}")
                    d = self._run_eval(item, key, rec, force)
                    m = read_meter(d)
                    self.summary.built.append((label, float(m["seconds"]) if m else 0.0))
                    if item.to_run:
                        progress.advance(overall)
                elif d is not None:
                    self.summary.cached.append(label)
                    if run_it and item.to_run:
                        progress.advance(overall)
                if d is not None:
                    self.summary.records.append(self._load_record(item, d, key))
            progress.update(overall, description="done")
        self.summary.costs = self.costs()
        self.hashes.save()
        self.summary.seconds = time.perf_counter() - t0
        self._write_outputs()
        return self.summary

    # ------------------------------------------------------------------ cost + outputs

    def costs(self) -> dict[str, RowCost]:
        """RowCost per priced row: measured for trained ReasonMaxxer rows (sum of their training
        stages' meter.json seconds, cached stages included), published for RL baselines."""
        plan = self.plan
        out: dict[str, RowCost] = {}
        for base, kind, row in plan.spec.rows():
            if kind == "rl_baseline":
                out[row.id] = published_cost(row.cost, plan.spec.pricing)
            elif kind == "reasonmaxxer":
                rec = self._train.get(row.id)
                if rec is None:
                    continue
                meters = {}
                for label, rel in rec.get("stage_dirs", {}).items():
                    m = read_meter(self.store.home / rel) if rel else None
                    if m is not None:
                        meters[label] = m
                if meters:
                    out[row.id] = measured_cost(meters, plan.spec.pricing)
        return out

    def _write_outputs(self) -> None:
        plan = self.plan
        s = self.summary
        order = {row.id: n for n, (_, _, row) in enumerate(plan.spec.rows())}
        tasks = list(plan.spec.protocol.tasks)
        s.records.sort(key=lambda r: (order.get(r.row_id, 1 << 30), tasks.index(r.task) if r.task in tasks else 99))
        run_dir = self.store.home / "runs" / plan.spec.suite.name
        lines = [json.dumps(r.to_json(), sort_keys=True, default=str) for r in s.records]
        atomic_write_text(run_dir / "results.jsonl", "".join(x + "\n" for x in lines))
        atomic_write_json(run_dir / "costs.json", {k: v.to_json() for k, v in sorted(s.costs.items())})
        atomic_write_json(run_dir / "notes.json", dict(sorted(s.notes.items())))
        atomic_write_json(run_dir / "stages.json", {"built": s.built, "cached": s.cached,
                                                     "run_seconds": round(s.seconds, 3)})
        s.results_path = run_dir / "results.jsonl"
        try:
            from rmxbench.board import load_reference, render
        except ImportError:
            self.console.print("[yellow]board module not available yet; results are in[/] " + str(run_dir))
            return
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing reference file just means no paper column
            reference = load_reference(reference_path(plan.spec, plan.spec_dir))
        md, html = render(plan.spec, s.records, s.costs, s.notes, reference, self.out_dir)
        s.board_md, s.board_html = Path(md), Path(html)


def print_summary(summary: RunSummary, console) -> None:
    """Print the board Markdown and the per-stage wall times of this run."""
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
    console.print(f"{len(summary.built)} built, {len(summary.cached)} cached; run took {summary.seconds:.1f} s")
    if summary.results_path:
        console.print(f"results: {escape(str(summary.results_path))}")
    if summary.board_md:
        console.print(f"board: {escape(str(summary.board_md))} and {escape(str(summary.board_html))}")
