"""Stage ``distillation``: KL-LoRA distillation of the other row into LoRAs on the base over a rank x module grid (paper §4, App. A).

Method: :mod:`rmxbench.analysis.distillation`; nodes, keys and inputs: :mod:`rmxbench.stages.analyses`.
"""

from __future__ import annotations

from rmxbench.stages.analyses import build, work  # noqa: F401  (the stage's build and work)
from rmxbench.stages.analyses import declare_for


def declare(plan, row, graph) -> None:
    declare_for("distillation", plan, row, graph)
