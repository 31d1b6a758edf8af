"""Showing a plan's cost estimate (:mod:`rmxbench.orchestrator.estimate`) and checking it against budgets
and against what was measured (issue 20):

- :func:`render_estimate`: the per-row table and total printed by ``rmxbench run`` / ``--dry-run``;
- :func:`estimate_json`: the same as JSON (``--dry-run --json``);
- :func:`check_budget`: ``--max-usd`` / ``--max-gpu-hours`` / ``--max-cpu-hours``, a one-screen refusal
  naming the biggest rows, before any model is loaded;
- :func:`meter_record`, :func:`node_report`, :func:`row_estimate`: estimate beside measurement, per
  node in ``meter.json`` and the run folder's ``estimates.json``, per row in the board's cost provenance.

Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rmxbench.errors import UserError
from rmxbench.estimate.calibration import measured_seconds, meter_hardware
from rmxbench.orchestrator.estimate import PlanEstimate, fmt_seconds

NOTE = ("Estimates cover the nodes to run (cached nodes cost nothing new) and the engine starts they cause; "
        "'training' = the training stages (the board's cost column); "
        "'(table)' = throughput table, uncalibrated; the rest are scaled by factors the store measured. "
        "Generation is modelled at measured completion lengths, else min(cap, 1,024 tokens); 'upper' = every "
        "completion at its cap. Downloads are not included. How: rmxbench/estimate/ (README, 'Cost estimate').")


def _money(usd: float | None) -> str:
    if usd is None:
        return "—"
    return f"${usd:,.2f}" if usd < 100 else f"${usd:,.0f}"


def _hours(h: float) -> str:
    return f"{h:.3g}" if h >= 0.001 else f"{h:.2g}"


def render_estimate(est: PlanEstimate, console: Any) -> None:
    """Print the per-row estimate table, the total and its basis (module doc)."""
    from rich.markup import escape
    from rich.table import Table

    if not est.rows:
        console.print(f"cost estimate: nothing to run, nothing to pay ({len(est.calibration.samples)} measured "
                      "node(s) in the store calibrate later estimates)")
        return
    t = Table(title=f"cost estimate on {escape(est.hardware_text())}", show_lines=False)
    for col, kw in (("row", {"overflow": "fold"}), ("nodes", {"justify": "right"}), ("time", {"justify": "right"}),
                    (est.unit, {"justify": "right"}), ("USD", {"justify": "right"}),
                    ("training", {"justify": "right"}), ("calibrated", {"justify": "right"}),
                    ("upper", {"justify": "right"}),
                    ("note", {"overflow": "fold", "ratio": 1})):
        t.add_column(col, **kw)
    for r in est.rows:
        cal = sum(n.calibrated for n in r.estimated)
        statuses = [n.status for n in r.missing]
        note = "; ".join(f"{statuses.count(s)} node(s): {s}" for s in sorted(set(statuses)))
        if "size unknown" in statuses:
            note += " (set `params` on the model reference, or --online)"
        train = (_money(r.train_usd) if r.train_usd is not None else f"{_hours(r.train_hours)} {est.unit}") \
            if r.train_seconds else "—"
        t.add_row(escape(r.row_id), str(len(r.nodes)), fmt_seconds(r.seconds) if r.estimated else "—",
                  _hours(r.hours) if r.estimated else "—", _money(r.usd), train, f"{cal}/{len(r.estimated)}",
                  fmt_seconds(r.upper_seconds) if r.estimated else "—", escape(note))
    console.print(t)
    n_nodes = sum(len(r.nodes) for r in est.rows)
    n_est = sum(len(r.estimated) for r in est.rows)
    usd = est.usd(est.seconds)
    console.print(f"estimated total: {fmt_seconds(est.seconds)}, {_hours(est.hours(est.seconds))} {est.unit}"
                  + (f", {_money(usd)}" if usd is not None else "")
                  + f" (upper: {_hours(est.hours(est.upper_seconds))} {est.unit}"
                  + (f", {_money(est.usd(est.upper_seconds))}" if usd is not None else "") + ")"
                  + f"; {n_est} of {n_nodes} nodes to run estimated, "
                  + f"{sum(n.calibrated for r in est.rows for n in r.estimated)} calibrated from "
                  + f"{len(est.calibration.samples)} measured node(s) in the store")
    serial, parallel = est.wall_clock()
    console.print(f"wall-clock: {fmt_seconds(serial)} one node at a time (--executor local); at least "
                  f"{fmt_seconds(parallel)} with --executor ray and enough {'GPUs' if est.gpu else 'workers'} "
                  "(the plan's longest chain of dependent nodes, or the busiest model's nodes, by estimated time)")
    console.print(f"[dim]{escape(NOTE)}[/]")
    for w in est.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")


def estimate_json(est: PlanEstimate) -> dict:
    """The plan and its estimate as JSON: items (with their estimate), rows, total, calibration."""
    from rmxbench.backends.session import starts_line

    plan = est.plan

    def node(e) -> dict:
        return {"status": e.status, "seconds": e.seconds, "upper_seconds": e.upper_seconds,
                "hours": est.hours(e.seconds) if e.seconds is not None else None,
                "usd": est.usd(e.seconds) if e.seconds is not None else None, "calibrated": e.calibrated,
                "factor": e.factor, "variant": e.work.variant if e.work else None, "engine_starts": len(e.starts),
                "basis": e.basis}

    items = []
    for i in plan.items:
        e = est.of(i.node) if i.node is not None else None
        items.append({"row": i.row_id, "kind": i.kind, "stage": i.stage, "label": i.label, "task": i.task,
                      "key": i.key, "status": i.status, "selected": not plan.only or i.row_id in plan.only,
                      "detail": i.detail, "estimate": node(e) if e is not None else None})
    rows = [{"row": r.row_id, "nodes": len(r.nodes), "estimated": len(r.estimated),
             "calibrated": sum(n.calibrated for n in r.estimated), "seconds": r.seconds, "hours": r.hours,
             "usd": r.usd, "upper_seconds": r.upper_seconds, "train_seconds": r.train_seconds,
             "train_hours": r.train_hours, "train_usd": r.train_usd,
             "missing": [{"label": n.node.label, "status": n.status, "basis": n.basis} for n in r.missing]}
            for r in est.rows]
    cal = est.calibration
    return {
        "suite": plan.spec.suite.name, "spec": str(plan.ctx.path), "store": str(plan.store.home),
        "engines": starts_line(plan.engine_starts(), planned=True), "items": items,
        "estimate": {"hardware": est.hw.key if est.hw else plan.spec.pricing.hardware.gpu_type,
                     "hardware_source": est.hw.source if est.hw else None, "count": est.count,
                     "usd_per_hour": est.price, "unit": est.unit, "rows": rows,
                     "total": {"seconds": est.seconds, "hours": est.hours(est.seconds), "usd": est.usd(est.seconds),
                               "upper_seconds": est.upper_seconds, "upper_hours": est.hours(est.upper_seconds),
                               "upper_usd": est.usd(est.upper_seconds)},
                     "wall_clock": dict(zip(("serial_seconds", "parallel_seconds_at_least"), est.wall_clock())),
                     "calibration": {"nodes": len(cal.samples),
                                     "factors": {f"{g}@{hw}": {"factor": f, "nodes": n}
                                                 for (g, hw), (f, n) in sorted(cal.factors.items())},
                                     "start_factors": {f"{hw}{' (first)' if cold else ''}": {"factor": f, "nodes": n}
                                                       for (hw, cold), (f, n) in sorted(cal.start_factors.items())}},
                     "note": NOTE, "warnings": est.warnings},
        "warnings": plan.warnings,
    }


def check_budget(est: PlanEstimate, *, max_usd: float | None = None, max_gpu_hours: float | None = None,
                 max_cpu_hours: float | None = None) -> list[str]:
    """Refuse a plan whose estimate exceeds a budget (before any model is loaded).

    Returns:
        notices to print (e.g. that some nodes have no estimate and are not counted).
    Raises:
        UserError: the estimate exceeds ``max_usd`` (USD), ``max_gpu_hours`` (GPU-hours) or
            ``max_cpu_hours`` (CPU-hours); the message names the biggest rows. Also when ``max_usd`` is
            given but the spec has no GPU price (a CPU-only spec has no USD figure: use ``--max-cpu-hours``),
            rather than passing a budget it cannot check.
    """
    checks = []
    if max_usd is not None:
        if est.hw is not None and not est.hw.gpu:  # a budget that cannot be checked must not pass silently
            raise UserError(f"--max-usd {max_usd:g}: this spec runs on CPUs (pricing.hardware.gpu_type: null), so its "
                            f"estimate is in CPU-hours ({_hours(est.hours(est.seconds))} CPU-h) and has no USD; "
                            "nothing was started",
                            hint="use --max-cpu-hours H, or set pricing.hardware.gpu_type to a priced GPU type")
        if not est.gpu or est.price is None:
            raise UserError("--max-usd: the spec's pricing.hardware.gpu_type has no estimate or no price; "
                            "nothing was started",
                            hint="set pricing.hardware.gpu_type to a priced type in rmxbench's throughput table, "
                                 "or use --max-gpu-hours")
        else:
            checks.append(("USD", est.usd(est.seconds), max_usd, lambda r: r.usd or 0.0))
    if max_gpu_hours is not None:
        checks.append(("GPU-hours", est.hours(est.seconds) if est.gpu else 0.0, max_gpu_hours,
                       lambda r: r.hours if est.gpu else 0.0))
    if max_cpu_hours is not None:
        checks.append(("CPU-hours", 0.0 if est.gpu else est.hours(est.seconds), max_cpu_hours,
                       lambda r: 0.0 if est.gpu else r.hours))
    notices = []
    missing = [n for r in est.rows for n in r.missing]
    if checks and missing:
        notices.append(f"budget check covers {sum(len(r.estimated) for r in est.rows)} of "
                       f"{sum(len(r.nodes) for r in est.rows)} nodes to run; not estimated: "
                       + ", ".join(f"{n.node.row_id} {n.node.label} ({n.status})" for n in missing[:6])
                       + (" …" if len(missing) > 6 else ""))
    for what, total, limit, per_row in checks:
        if total > limit:
            biggest = sorted(est.rows, key=per_row, reverse=True)[:5]
            fmt = _money if what == "USD" else (lambda x: f"{x:.3g}")
            lines = [f"  {r.row_id}: {fmt(per_row(r))} ({fmt_seconds(r.seconds)}, {len(r.nodes)} node{'s' * (len(r.nodes) != 1)})"
                     for r in biggest]
            raise UserError(
                f"the estimated cost of this plan is {fmt(total)}{'' if what == 'USD' else ' ' + what}, over the budget "
                f"--max-{ {'USD': 'usd', 'GPU-hours': 'gpu-hours', 'CPU-hours': 'cpu-hours'}[what]} {limit:g}; "
                f"nothing was started.\nbiggest rows:\n" + "\n".join(lines),
                hint="run fewer rows (--only ROW), lower protocol.limit / recipe sizes, or raise the budget; "
                     "`rmxbench run SPEC --dry-run` shows the estimate per node")
    return notices


# ----------------------------------------------------------------------------- estimate vs measured


def meter_record(est: PlanEstimate | None, node: Any) -> dict | None:
    """The ``estimate`` entry the runner writes into ``node``'s ``meter.json`` (None if not estimated)."""
    if est is None or est.hw is None:
        return None
    e = est.of(node)
    return e.record(est.hw, est.count) if e is not None else None


def _measured(meter: dict) -> tuple[float | None, str]:
    hw = meter_hardware(meter)
    if hw is None:
        return None, "seconds"
    return measured_seconds(meter, hw), ("seconds" if hw.gpu else "cpu_seconds")


def node_report(plan: Any, dirs: dict[str, Path], built: set[str]) -> list[dict]:
    """Estimate beside measurement for every node with an artifact (the run folder's ``estimates.json``).

    Args:
        dirs: node key -> artifact folder (the runner's :attr:`RunSummary.dirs`); others are looked up in the store.
        built: keys of the nodes built in this run (``built_now``).
    """
    from rmxbench.pipeline.metering import read_meter

    out = []
    for n in plan.graph.nodes:
        d = dirs.get(n.key) or plan.store.get(n.stage, n.key)
        m = read_meter(d) if d is not None else None
        if m is None:
            continue
        rec = m.get("estimate") if isinstance(m.get("estimate"), dict) else None
        meas, unit = _measured(m)
        est_s = rec.get("seconds") if rec else None
        out.append({"row": n.row_id, "label": n.label, "stage": n.stage, "key": n.key, "built_now": n.key in built, "seed": n.seed,
                    "variant": rec.get("variant") if rec else None,
                    "estimate": {k: rec.get(k) for k in ("seconds", "upper_seconds", "calibrated", "factor", "hardware",
                                                         "unit", "basis", "status")} if rec else None,
                    "measured": {"value": meas, "unit": unit, "seconds": m.get("seconds"),
                                 "node_seconds": m.get("node_seconds"), "node_cpu_seconds": m.get("node_cpu_seconds"),
                                 "device": m.get("device"), "accelerator": m.get("accelerator_name"),
                                 **{k: m[k] for k in ("completion_tokens", "scored_tokens", "trained_tokens") if k in m}},
                    "measured_over_estimated": (meas / est_s) if meas is not None and est_s else None})
    return out


def row_estimate(meters: dict[int | None, dict[str, dict]]) -> dict | None:
    """Estimate vs measurement of a row's training nodes (the board's cost provenance), from the
    estimates their meters recorded before they ran; None when none recorded one.

    Args:
        meters: training seed (None for a row without ``seeds:``) -> node label -> meter, as the runner
            prices the row (:func:`rmxbench.pricing.seed_mean_cost`). Seconds are the mean per seed, like
            the row's cost; the ratio is that of the sums (every seed's nodes).
    """
    est = meas = 0.0
    n = cal = 0
    unit, hw = None, None
    seeds = max(len(meters), 1)
    for m in (m for per_seed in meters.values() for m in per_seed.values()):
        rec = m.get("estimate")
        if not isinstance(rec, dict) or not isinstance(rec.get("seconds"), (int, float)):
            continue
        v, u = _measured(m)
        if v is None:
            continue
        est += float(rec["seconds"])
        meas += v
        n += 1
        cal += bool(rec.get("calibrated"))
        unit, hw = u, rec.get("hardware")
    if n == 0:
        return None
    return {"estimated_seconds": round(est / seeds, 3), "measured_seconds": round(meas / seeds, 3), "unit": unit,
            "hardware": hw, "nodes": n, "of_nodes": sum(len(x) for x in meters.values()), "calibrated": cal,
            "seeds": len(meters) if any(k is not None for k in meters) else None,
            "measured_over_estimated": round(meas / est, 3) if est > 0 else None}
