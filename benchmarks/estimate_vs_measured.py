"""How good is the cost estimate? measured ÷ estimated per stage kind, from a store (issue 20).

Every node the runner builds records in its ``meter.json`` the estimate made before it ran
(``estimate``: seconds, calibrated or not, hardware) beside what it measured (wall seconds; CPU
seconds on a CPU). This script reads every such meter of an artifact store and prints, per stage
variant (``rollouts``, ``eval:adapter``, ``grpo:full`` …) and hardware: the nodes, Σ estimated,
Σ measured, their ratio, and the median and range of the per-node ratios — separately for estimates
that were calibrated by earlier meters and those from the throughput table alone.

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


def main(argv: list[str] | None = None) -> int:
    from rmxbench.pipeline.store import default_home

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, default=None, help="artifact store (default: $RMXBENCH_HOME)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    home = a.home or default_home()
    table = rows(home)
    if a.json:
        print(json.dumps(table, indent=1))
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
    print("units: s = wall seconds (GPU), C = process CPU seconds (CPU-only nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
