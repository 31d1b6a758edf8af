"""rmxbench: a declarative benchmark-and-leaderboard suite for RL-free reasoning post-training.

The package is organised one module per pipeline stage (see ARCHITECTURE.md). Importing
``rmxbench`` or ``rmxbench.spec.schema`` never imports torch, so ``rmxbench validate`` stays fast.
"""

__version__ = "0.1.0"
