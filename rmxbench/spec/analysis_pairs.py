"""A spec's ``analyses:`` entries resolved against its rows: cross-reference checks and pairs.

:func:`check_entries` lists every problem of the ``analyses:`` section (unknown base or row ids,
a row of another base, an analysis that needs ``other`` without one, a τ curve without
ReasonMaxxer rows, unknown tasks or prompt styles, an RL row without weights) as
``(location, message, allowed)`` (location: a key path such as ``("analyses", 0, "other")``) —
``rmxbench validate`` turns them into its one-screen errors, with the line of each key.
:func:`resolve` turns a valid entry into the rows it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rmxbench.spec.analyses import PAIR_ANALYSES, AnalysisEntry


@dataclass(frozen=True)
class ResolvedEntry:
    """An entry with its rows: ``base`` (BaseModelSpec), ``other`` (row or None), ``other_kind``
    (``rl_baseline`` / ``reasonmaxxer`` / None), ``sweeps`` (ReasonMaxxer rows of the τ curve),
    ``prompt_style`` (the one both models see)."""

    entry: AnalysisEntry
    base: Any
    other: Any | None
    other_kind: str | None
    sweeps: tuple
    prompt_style: str


def _rows_of(base: Any) -> dict[str, tuple[str, Any]]:
    return {**{r.id: ("rl_baseline", r) for r in base.rl_baselines},
            **{r.id: ("reasonmaxxer", r) for r in base.reasonmaxxer}}


def check_entries(spec: Any, entries: list[AnalysisEntry], *, tasks: tuple[str, ...], styles: tuple[str, ...]
                  ) -> list[tuple[tuple, str, str]]:
    """Problems of ``entries`` as ``(location, message, allowed values)``; empty when valid.

    Args:
        spec: the :class:`~rmxbench.spec.Spec` (its ``models`` and rows).
        tasks: known task names (the benchmark registry); ``styles``: known prompt styles.
    """
    out: list[tuple[tuple, str, str]] = []
    bases = {m.id: m for m in spec.models}
    seen: set[str] = set()
    for i, e in enumerate(entries):
        at = ("analyses", i)
        if e.id in seen:
            out.append((at + ("id",), f"duplicate analysis id {e.id!r}", "unique ids"))
        seen.add(e.id)
        base = bases.get(e.base)
        if base is None:
            out.append((at + ("base",), f"{e.base!r} is not a base model id of this spec", ", ".join(bases)))
            continue
        rows = _rows_of(base)
        if e.other is not None and e.other not in rows:
            out.append((at + ("other",), f"{e.other!r} is not an RL-baseline or ReasonMaxxer row of base {e.base!r}",
                        ", ".join(rows) or "(the base has no rows)"))
        elif e.other is not None and rows[e.other][0] == "rl_baseline" and rows[e.other][1].model is None \
                and getattr(rows[e.other][1], "train", None) is None:
            out.append((at + ("other",), f"RL row {e.other!r} has no weights to analyse (`unavailable`)",
                        "a row with `model:` (or a trained RL row)"))
        needs = [a for a in e.run if a in PAIR_ANALYSES]
        if needs and e.other is None:
            out.append((at + ("other",), f"{', '.join(needs)} compare the base with another model: set `other`",
                        ", ".join(rows) or "(the base has no rows)"))
        rmx = {k for k, (kind, _) in rows.items() if kind == "reasonmaxxer"}
        for j, s in enumerate(e.sweeps):
            if s not in rmx:
                out.append((at + ("sweeps", j), f"{s!r} is not a ReasonMaxxer row of base {e.base!r}",
                            ", ".join(sorted(rmx)) or "(the base has no ReasonMaxxer rows)"))
        if e.sweeps and "tau_curve" not in e.run:
            out.append((at + ("sweeps",), "`sweeps` is only used by the τ curve; add `tau_curve` to `run`",
                        "tau_curve in run"))
        if "tau_curve" in e.run and not e.sweeps and e.other not in rmx:
            out.append((at + ("sweeps",), "the τ curve needs ReasonMaxxer rows: list them in `sweeps` (or make "
                        "`other` a ReasonMaxxer row)", ", ".join(sorted(rmx)) or "(none)"))
        for j, t in enumerate(e.tasks):
            if t not in tasks:
                out.append((at + ("tasks", j), f"unknown task {t!r}", ", ".join(tasks)))
        if e.prompt_style is not None and e.prompt_style not in styles:
            out.append((at + ("prompt_style",), f"unknown prompt style {e.prompt_style!r}", ", ".join(styles)))
    return out


def resolve(spec: Any, entry: AnalysisEntry) -> ResolvedEntry:
    """The rows ``entry`` names (call after :func:`check_entries` found no problem).

    Raises:
        KeyError: an id does not resolve (the entry was not checked).
    """
    base = next(m for m in spec.models if m.id == entry.base)
    rows = _rows_of(base)
    kind, other = rows[entry.other] if entry.other is not None else (None, None)
    sweep_ids = entry.sweeps or ([entry.other] if kind == "reasonmaxxer" else [])
    if entry.prompt_style is not None:
        style = entry.prompt_style
    elif kind == "rl_baseline":
        style = other.eval_prompt_settings(base)[0]  # the base's (paper App. C) unless `eval_prompt: trained`
    else:
        style = base.prompt_style
    return ResolvedEntry(entry, base, other, kind, tuple(rows[s][1] for s in sweep_ids), style)
