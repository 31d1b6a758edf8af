"""Cost estimates before a run (issue 20): what a node will do (:mod:`rmxbench.estimate.work`), how big
its model is (:mod:`rmxbench.estimate.model_size`), how fast the declared hardware is
(:mod:`rmxbench.estimate.hardware`) and the time model that turns the three into seconds
(:mod:`rmxbench.estimate.cost_model`). The plan-level part (every node of a plan, calibration by the
store's meters, rows, totals, the budget guard) is :mod:`rmxbench.orchestrator.estimate`.

Torch-free and offline: a stage's ``work(config)`` and everything here run at ``--dry-run``.
"""
