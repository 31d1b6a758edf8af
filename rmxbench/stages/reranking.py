"""Stage ``reranking``: token reranking statistics of an `analyses:` pair (paper §3.1, Table 2).

Method: :mod:`rmxbench.analysis.reranking`; nodes, keys and inputs: :mod:`rmxbench.stages.analyses`.
"""

from __future__ import annotations

from rmxbench.stages.analyses import build, work  # noqa: F401  (the stage's build and work)
from rmxbench.stages.analyses import declare_for


def declare(plan, row, graph) -> None:
    declare_for("reranking", plan, row, graph)
