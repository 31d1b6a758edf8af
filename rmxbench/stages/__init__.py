"""One module per pipeline stage. Each defines ``declare(plan, row, graph)`` (its nodes and key
parts, torch-free) and ``build(config, inputs, out_dir)`` (its artifact); the table that lists
them is :mod:`rmxbench.pipeline.stages`. See CONTRIBUTING.md, "How to add a stage"."""
