"""One entry point for the four analyses, used by the analysis stages and ``rmxbench analyze``.

:func:`build_analysis` dispatches on the analysis name to the module's ``build`` with the inputs
that analysis needs (the board renders finished results: :mod:`rmxbench.board.analyses`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rmxbench.spec.analyses import ANALYSES
from rmxbench.analysis.common import AnalysisResult, ModelHandle, Pair


def build_analysis(name: str, config: Any, *, base: ModelHandle, other: ModelHandle | None, prompt_style: str,
                   problems: Sequence[dict], task: str, max_new_tokens: int, out_dir: Path,
                   pool: Sequence[dict] | None = None, sweeps: dict | None = None,
                   progress=None) -> AnalysisResult:
    """Run analysis ``name`` and write its ``result.json`` + figures into ``out_dir``.

    Args:
        name: one of :data:`~rmxbench.spec.analyses.ANALYSES`.
        config: that analysis' config (:mod:`rmxbench.spec.analyses`).
        base, other: the models (``other`` optional only for ``tau_curve``, where it is the
            reference line).
        pool: distillation's rollout problems; ``sweeps``: the τ curve's label -> τ points.
    Raises:
        ValueError: unknown analysis or a missing input (a caller bug; specs are checked first).
        UserError: models cannot be loaded or do not share a tokenizer.
    """
    from rmxbench.analysis import distillation, interventions, reranking, tau_curve

    kw = dict(task=task, max_new_tokens=max_new_tokens, out_dir=out_dir, progress=progress)
    if name == "tau_curve":
        if not sweeps:
            raise ValueError("tau_curve needs sweeps")
        return tau_curve.build(config, base, sweeps, problems, prompt_style=prompt_style, reference=other,
                               row_title=f"{base.label}: {', '.join(sweeps)}", **kw)
    if other is None:
        raise ValueError(f"{name} needs the other model")
    pair = Pair(base, other, prompt_style)
    if name == "distillation":
        if pool is None:
            raise ValueError("distillation needs the pool")
        return distillation.build(config, pair, pool, problems, **kw)
    mod = {"reranking": reranking, "interventions": interventions}.get(name)
    if mod is None:
        raise ValueError(f"unknown analysis {name!r}; known: {ANALYSES}")
    return mod.build(config, pair, problems, **kw)


def expected_items(name: str, config: Any, *, n: int, sweep_points: int = 0, reference: bool = False) -> int:
    """Problems :func:`build_analysis` reports to its ``progress`` callback in total (for a bar with
    an ETA): ``n`` test problems per decoding pass, plus the distillation teacher's rollout problems."""
    if name == "reranking":
        return 2 * n  # the other's generation + the base's teacher-forced pass
    if name == "interventions":
        return (4 + len(config.taus)) * n  # base, other, oracle, random + one per τ
    if name == "distillation":
        return config.n_problems + (2 + len(config.variants)) * n
    return (1 + sweep_points + int(reference)) * n  # tau_curve
