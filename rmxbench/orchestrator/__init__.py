"""The orchestrator (issue 17 item 2): what plans a spec and drives its builds, above the stages.

- :mod:`~rmxbench.orchestrator.planner`: spec -> :class:`~rmxbench.orchestrator.planner.Plan`
  (the rows' nodes from the stage table, their content keys, what is cached; ``--dry-run``).
- :mod:`~rmxbench.orchestrator.runner`: the driver; resolves stored nodes, hands the others to an
  executor once their inputs exist, writes the board.
- :mod:`~rmxbench.orchestrator.executor`: ``BuildRequest`` / ``build_node`` (THE function that
  builds a node, on any executor), ``LocalExecutor``.
- :mod:`~rmxbench.orchestrator.ray_executor`: ``RayExecutor`` (``--executor ray``; the ``ray`` extra).

The kernel it builds on (graph, stage table, rows, identity hashing, store, metering) is
:mod:`rmxbench.pipeline`, which imports no domain module and nothing from here.
"""
