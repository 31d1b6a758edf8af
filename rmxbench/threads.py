"""The one thread cap: ``RMXBENCH_THREADS`` limits CPU threads for every stage.

:func:`cap_threads` is called by the CLI before torch is imported (it sets ``OMP_NUM_THREADS`` /
``MKL_NUM_THREADS``, which torch reads at import) and by the runner before any stage builds (it
also calls ``torch.set_num_threads`` when torch is already imported), so library callers that
never go through the CLI get the same cap. Shared CPUs slow down badly when oversubscribed.
"""

from __future__ import annotations

import os
import sys

THREADS_ENV = "RMXBENCH_THREADS"


def cap_threads() -> int | None:
    """Apply ``$RMXBENCH_THREADS`` (a positive integer) to OpenMP/MKL and torch; returns it or None.

    Raises:
        UserError: the variable is set but is not a positive integer.
    """
    value = os.environ.get(THREADS_ENV)
    if not value:
        return None
    try:
        n = int(value)
        if n < 1:
            raise ValueError
    except ValueError:
        from rmxbench.errors import UserError

        raise UserError(f"${THREADS_ENV}={value!r} is not a positive integer") from None
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
