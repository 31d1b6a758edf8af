"""How good is the cost estimate? measured ÷ estimated per stage kind, from a store (issue 20).

Every node the runner builds records in its ``meter.json`` the estimate made before it ran
(``estimate``: seconds, calibrated or not, hardware) beside what it measured (wall seconds; CPU
seconds on a CPU). This script reads every such meter of an artifact store and prints, per stage
variant (``rollouts``, ``eval:adapter``, ``grpo:full`` …) and hardware: the nodes, Σ estimated,
Σ measured, their ratio, and the median and range of the per-node ratios — separately for estimates
that were calibrated by earlier meters and those from the throughput table alone. Then, per row of
each run folder (``runs/<suite>/estimates.json``: the nodes the suite's last run built), Σ estimated,
Σ measured and their ratio.

    python benchmarks/estimate_vs_measured.py                      # $RMXBENCH_HOME
    python benchmarks/estimate_vs_measured.py --home /path/to/store --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rows(home: Path) -> list[dict]:
    """One dict per (variant, hardware, calibrated) with the sums and per-node ratios."""
    from rmxbench.estimate.calibration import measured_seconds, meter_hardware, store_meters
    from rmxbench.pipeline.stages import STAGES

    groups: dict[tuple, list[tuple[float, float]]] = {}
    for _stage, _art, m in store_meters(home, STAGES):
        rec = m.get("estimate")
        hw = meter_hardware(m)
        if not isinstance(rec, dict) or not isinstance(rec.get("seconds"), (int, float)) or hw is None:
            continue
        est, meas = float(rec["seconds"]), measured_seconds(m, hw)
        if est <= 0:
            continue
        key = (rec.get("variant") or _stage, hw.key, "calibrated" if rec.get("calibrated") else "table")
        groups.setdefault(key, []).append((est, meas))
    out = []
    for (variant, hw, basis), pairs in sorted(groups.items()):
        ratios = [m / e for e, m in pairs]
        e, m = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        out.append({"variant": variant, "hardware": hw, "basis": basis, "nodes": len(pairs),
                    "estimated": round(e, 3), "measured": round(m, 3), "measured_over_estimated": round(m / e, 3),
                    "median_ratio": round(statistics.median(ratios), 3),
                    "min_ratio": round(min(ratios), 3), "max_ratio": round(max(ratios), 3),
                    "unit": "CPU-s" if hw == "CPU" else "s"})
    return out


def by_row(home: Path) -> list[dict]:
    """Per (suite, row): the nodes its last run built that recorded an estimate, Σ estimated, Σ measured."""
    from rmxbench.board.runfolder import load_estimates

    out = []
    for f in sorted((home / "runs").glob("*/estimates.json")):
        suite = f.parent.name
        acc: dict[str, list] = {}
        for n in load_estimates(home, suite):
            est, meas = n.get("estimate") or {}, n.get("measured") or {}
            if not n.get("built_now") or not isinstance(est.get("seconds"), (int, float)) or meas.get("value") is None:
                continue
            a = acc.setdefault(n["row"], [0, 0.0, 0.0, 0, meas.get("unit")])
            a[0] += 1
            a[1] += float(est["seconds"])
            a[2] += float(meas["value"])
            a[3] += bool(est.get("calibrated"))
        for row, (k, e, m, cal, unit) in acc.items():
            out.append({"suite": suite, "row": row, "nodes": k, "calibrated": cal, "estimated": round(e, 3),
                        "measured": round(m, 3), "measured_over_estimated": round(m / e, 3) if e > 0 else None,
                        "unit": "CPU-s" if unit == "cpu_seconds" else "s"})
    return out


def main(argv: list[str] | None = None) -> int:
    from rmxbench.spec.context import default_home

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, default=None, help="artifact store (default: $RMXBENCH_HOME)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    home = a.home or default_home()
    table, per_row = rows(home), by_row(home)
    if a.json:
        print(json.dumps({"variants": table, "rows": per_row}, indent=1))
        return 0
    if not table:
        print(f"no node in {home} recorded an estimate (nodes built since issue 20 do)")
        return 0
    print(f"store: {home}")
    print(f"{'variant':<20} {'hardware':<13} {'basis':<10} {'nodes':>5} {'estimated':>10} {'measured':>10} "
          f"{'meas/est':>8} {'median':>7} {'range':>13}")
    for r in table:
        print(f"{r['variant']:<20} {r['hardware']:<13} {r['basis']:<10} {r['nodes']:>5} "
              f"{r['estimated']:>9.1f}{r['unit'][0]} {r['measured']:>9.1f}{r['unit'][0]} {r['measured_over_estimated']:>8.2f} "
              f"{r['median_ratio']:>7.2f} {r['min_ratio']:>6.2f}-{r['max_ratio']:<6.2f}")
    if per_row:
        print("\nper row, nodes built by the suite's last run (runs/<suite>/estimates.json)")
        print(f"{'suite':<14} {'row':<28} {'nodes':>5} {'calib.':>6} {'estimated':>10} {'measured':>10} {'meas/est':>8}")
        for r in per_row:
            ratio = f"{r['measured_over_estimated']:>8.2f}" if r["measured_over_estimated"] is not None else f"{'—':>8}"
            print(f"{r['suite']:<14} {r['row']:<28} {r['nodes']:>5} {r['calibrated']:>6} {r['estimated']:>9.1f}"
                  f"{r['unit'][0]} {r['measured']:>9.1f}{r['unit'][0]} {ratio}")
    print("units: s = wall seconds (GPU), C = process CPU seconds (CPU-only nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
