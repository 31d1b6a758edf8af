"""rmxbench's lm-eval tasks (YAML + ``utils.py``); the repository's ``tasks/`` links here.

Use with plain lm-eval: ``lm_eval --include_path tasks --tasks rmx_gsm8k ...`` (see README.md in
this folder). :data:`TASKS_DIR` is what :mod:`rmxbench.evaluation.lmeval` passes to ``TaskManager``.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent

