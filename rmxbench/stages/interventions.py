"""Stage ``interventions``: lockstep token interventions on an `analyses:` pair: oracle, random, entropy-gated (paper §3.2-3.3, Fig. 2).

Method: :mod:`rmxbench.analysis.interventions`; nodes, keys and inputs: :mod:`rmxbench.stages.analyses`.
"""

from __future__ import annotations

from rmxbench.stages.analyses import build, work  # noqa: F401  (the stage's build and work)
from rmxbench.stages.analyses import declare_for


def declare(plan, row, graph) -> None:
    declare_for("interventions", plan, row, graph)
