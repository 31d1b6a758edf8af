"""Stage ``tau_curve``: test accuracy of every τ adapter of ReasonMaxxer sweeps (paper §6.3, Fig. 4).

Method: :mod:`rmxbench.analysis.tau_curve`; nodes, keys and inputs: :mod:`rmxbench.stages.analyses`.
"""

from __future__ import annotations

from rmxbench.stages.analyses import build, work  # noqa: F401  (the stage's build and work)
from rmxbench.stages.analyses import declare_for


def declare(plan, row, graph) -> None:
    declare_for("tau_curve", plan, row, graph)
