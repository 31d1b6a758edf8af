"""Training-pool selection (paper §6.1: "a pool of 150 math problems balanced across difficulty
levels") with a contamination guard against every evaluation set of the spec's protocol.

:func:`select_pool` draws, with a seeded RNG, ``N`` training-pool problems plus a disjoint
validation split of ``V`` problems from the same source:

- ``math_train`` (Hendrycks MATH train): balanced across difficulty levels 1-5 (round-robin over
  levels in a seeded order; a level that runs out is skipped); rows without a level go last.
- ``gsm8k_train`` and ``embedded_train``: no levels, a seeded random sample.

Validation split (rmxbench choice, documented): the paper uses "a fixed 50-problem validation
split" (§6.1) without saying where it comes from. rmxbench takes it from the *same source* as the
pool, from problems **not** drawn into the N-problem rollout pool, with the same level balance
and the same contamination guard. So it is disjoint from every training problem, follows the
training distribution, and is not biased by the mixed-success filter (which would leave mostly
all-correct/all-wrong problems if validation were taken from the rolled-out pool's leftovers).

Contamination guard: a source problem is contaminated if its normalised text equals an
evaluation problem's, or if they share a word 13-gram (the GPT-3 / "13-gram overlap" test;
13-grams found in 3+ distinct problems are boilerplate and ignored, see :data:`BOILERPLATE_DF`).
Both checks are set look-ups over hashed n-grams, so MATH train (7,500) x six test sets runs in
about a second. ``contamination="drop"`` skips contaminated problems (counted in ``pool.json``),
``"refuse"`` raises :class:`~rmxbench.errors.UserError` if any drawn problem is contaminated,
``"off"`` skips the check.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rmxbench.errors import UserError

NGRAM = 13
_WORD = re.compile(r"[a-z0-9]+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, drop ``$``, ``\\left``/``\\right`` and punctuation spacing; collapse whitespace."""
    t = text.lower().replace("$", "").replace("\\left", "").replace("\\right", "")
    t = re.sub(r"[^\w\s]", " ", t)
    return _SPACE.sub(" ", t).strip()


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric words of ``text`` (the 13-gram unit)."""
    return _WORD.findall(text.lower())


def ngrams(text: str, n: int = NGRAM) -> set[int]:
    """Hashes of the word ``n``-grams of ``text`` (empty if it has fewer than ``n`` words)."""
    w = words(text)
    return {hash(tuple(w[i:i + n])) for i in range(len(w) - n + 1)}


#: A 13-gram found in this many distinct problems (evaluation sets + training source together)
#: is boilerplate ("... where m and n are relatively prime positive integers. Find m+n"), not
#: evidence of a copied problem, and is ignored. A copied problem gives a count of 2.
BOILERPLATE_DF = 3


@dataclass
class ContaminationIndex:
    """Normalised texts and 13-gram hashes of every evaluation problem, with their task names.

    13-grams shared by :data:`BOILERPLATE_DF` or more distinct problems (evaluation sets plus
    ``source_rows`` if given) are dropped from the index as boilerplate; normalised-text
    equality is always checked.
    """

    texts: dict[str, str] = field(default_factory=dict)
    grams: dict[int, str] = field(default_factory=dict)
    boilerplate: int = 0

    @classmethod
    def build(cls, eval_sets: dict[str, list[dict]],
              source_rows: Iterable[dict] | None = None) -> "ContaminationIndex":
        """Index ``{task: rows}`` (rows with a ``problem`` field)."""
        idx = cls()
        df: dict[int, int] = {}
        for task, rows in eval_sets.items():
            for r in rows:
                idx.texts.setdefault(normalise(r["problem"]), task)
                for g in ngrams(r["problem"]):
                    idx.grams.setdefault(g, task)
                    df[g] = df.get(g, 0) + 1
        for r in source_rows or ():
            for g in ngrams(r["problem"]):
                if g in df:
                    df[g] += 1
        for g, n in df.items():
            if n >= BOILERPLATE_DF:
                del idx.grams[g]
                idx.boilerplate += 1
        return idx

    def hit(self, problem: str) -> str | None:
        """The evaluation task ``problem`` overlaps with (text equality or a shared 13-gram), or None."""
        t = self.texts.get(normalise(problem))
        if t is not None:
            return t
        for g in ngrams(problem):
            t = self.grams.get(g)
            if t is not None:
                return t
        return None


def _balanced_order(rows: list[dict], rng: random.Random, balance_levels: bool) -> list[dict]:
    """Seeded order of ``rows``: round-robin over ``level`` values if present and requested."""
    rows = list(rows)
    rng.shuffle(rows)
    levels = sorted({r.get("level") for r in rows if r.get("level") is not None})
    if not balance_levels or not levels:
        return rows
    by_level = {lv: [r for r in rows if r.get("level") == lv] for lv in levels}
    rest = [r for r in rows if r.get("level") is None]
    out = []
    while any(by_level.values()):
        for lv in levels:
            if by_level[lv]:
                out.append(by_level[lv].pop())
    return out + rest


@dataclass
class PoolSelection:
    """Result of :func:`select_pool`.

    Attributes:
        pool: the N problems rolled out (rows of the source, in draw order).
        validation: the V validation problems (disjoint from ``pool``).
        report: counts for ``pool.json`` (source size, contaminated per task, dropped, levels).
    """

    pool: list[dict]
    validation: list[dict]
    report: dict


def select_pool(source_rows: list[dict], *, size: int, validation_size: int, seed: int,
                balance_levels: bool = True, contamination: str = "drop",
                eval_sets: dict[str, list[dict]] | None = None, source_name: str = "") -> PoolSelection:
    """Draw the rollout pool and the validation split from ``source_rows``.

    Args:
        source_rows: the training-pool source (rows with ``id``, ``problem``, ``answer``,
            optional ``level``).
        size: N problems to roll out (paper §6.1: 150).
        validation_size: V validation problems (paper §6.1: 50), disjoint from the pool; 0 for
            stages without a validation split (GRPO).
        seed: RNG seed for the draw.
        balance_levels: round-robin over MATH levels (ignored without levels).
        contamination: ``drop`` | ``refuse`` | ``off`` (see module doc).
        eval_sets: ``{task: rows}`` of the spec's evaluation sets.

    Raises:
        UserError: ``refuse`` and a drawn problem overlaps an evaluation set; or the source has
            fewer than ``size`` usable problems (``size + 1`` if ``validation_size > 0``).
    """
    eval_sets = eval_sets or {}
    idx = ContaminationIndex.build(eval_sets, source_rows) if contamination != "off" and eval_sets else None
    order = _balanced_order(source_rows, random.Random(seed), balance_levels)
    hit_of = {r["id"]: idx.hit(r["problem"]) for r in source_rows} if idx is not None else {}
    dropped = [r["id"] for r in order if hit_of.get(r["id"])]
    hits: dict[str, int] = {}
    for pid in dropped:
        hits[hit_of[pid]] = hits.get(hit_of[pid], 0) + 1
    need = size + validation_size
    if contamination == "refuse":
        for r in order[:need]:
            if hit_of.get(r["id"]):
                raise UserError(
                    f"training-pool problem {r['id']!r} of {source_name or 'the pool'} overlaps the "
                    f"evaluation set {hit_of[r['id']]!r} (same normalised text or a shared {NGRAM}-gram)",
                    hint="set `pool.contamination: drop` in the recipe to skip such problems (they are counted)",
                )
    picked = [r for r in order if not hit_of.get(r["id"])][:need]
    if len(picked) < size or (validation_size and len(picked) == size):
        raise UserError(
            f"training pool {source_name!r} has only {len(picked)} usable problems; the recipe needs "
            f"pool.size={size} plus validation problems",
            hint="lower `pool.size` / `selection.validation_problems` in the recipe",
        )
    pool, validation = picked[:size], picked[size:]
    levels: dict[str, int] = {}
    for r in pool:
        key = str(r.get("level"))
        levels[key] = levels.get(key, 0) + 1
    report = {
        "source": source_name,
        "source_size": len(source_rows),
        "pool_size": len(pool),
        "validation_size": len(validation),
        "validation_requested": validation_size,
        "contamination_mode": contamination,
        "eval_sets": {t: len(rows) for t, rows in eval_sets.items()},
        "contaminated_dropped": len(dropped),  # contaminated problems of the source, never drawn
        "contaminated_by_task": hits,
        "contaminated_ids": dropped[:200],
        "boilerplate_ngrams_ignored": idx.boilerplate if idx is not None else 0,
        "levels": levels,
        "seed": seed,
    }
    return PoolSelection(pool, validation, report)


def scan_contamination(source_rows: Iterable[dict], eval_sets: dict[str, list[dict]]) -> dict[str, int]:
    """Count source problems overlapping each evaluation set (for reports/benchmarks)."""
    source_rows = list(source_rows)
    idx = ContaminationIndex.build(eval_sets, source_rows)
    counts: dict[str, int] = {}
    for r in source_rows:
        t = idx.hit(r["problem"])
        if t is not None:
            counts[t] = counts.get(t, 0) + 1
    return counts


def load_eval_sets(tasks: Iterable[str], *, data_dir: str | Path | None) -> dict[str, list[dict]]:
    """``{task: rows}`` for the spec's evaluation tasks via :func:`rmxbench.evaluation.data.load_benchmark`."""
    from rmxbench.evaluation.data import load_benchmark

    return {t: load_benchmark(t, data_dir=data_dir) for t in tasks}
