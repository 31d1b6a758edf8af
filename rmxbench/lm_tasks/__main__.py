"""``python -m rmxbench.lm_tasks``: regenerate rmxbench's lm-eval task folder from the benchmark records."""

from rmxbench.lm_tasks import TASKS_DIR, write_task_files

for path in write_task_files():
    print(path.relative_to(TASKS_DIR.parent.parent))
