"""Wall time of the imports a user waits for before any work starts: ``rmxbench.spec.schema``
(``validate``, ``run --dry-run``) and the CLI's ``--help``, each in a fresh interpreter.

    python benchmarks/bench_import.py            # best and median of 7 runs each

Target (issue 6): importing the spec schema well under 1 s, so validating a spec feels instant.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "import rmxbench.spec.schema": [sys.executable, "-c", "import rmxbench.spec.schema"],
    "rmxbench --help": [sys.executable, "-m", "rmxbench.cli", "--help"],
    "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
}


def main(runs: int = 7) -> None:
    for name, cmd in CASES.items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        print(f"{name:<38} best {min(times):.3f} s   median {statistics.median(times):.3f} s   ({runs} runs)")


if __name__ == "__main__":
    main()
