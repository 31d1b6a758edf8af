"""Uncertainty for the board: bootstrap confidence intervals and paired significance tests.

Every number on the board is a mean of per-problem correctness. These functions turn the
per-problem verdicts stored in :class:`rmxbench.results.TaskRecord` (``per_problem``:
problem id -> list of k booleans) into

* a 95% **percentile bootstrap** confidence interval of a cell's score (resampling problems
  with replacement; for avg@k each problem contributes the mean of its k verdicts, so the k
  samples of one problem are never split — the problem is the unit of resampling);
* a **stratified** bootstrap interval for a row's average over tasks (each task's problems
  are resampled independently, the statistic is the mean of the task means — the board's Avg);
* **paired** comparisons of two rows on the problems both were scored on (shared problem
  ids): the difference Δ = mean(a) − mean(b) with a paired percentile-bootstrap CI, and a
  two-sided p-value:

  - pass@1 cells (k = 1 for both rows): **McNemar's exact test** — a two-sided binomial
    test of the discordant pairs (a right & b wrong vs. a wrong & b right) at 1/2
    (:func:`scipy.stats.binomtest`);
  - avg@k cells and the average over tasks: a **paired bootstrap test** — the bootstrap
    distribution of Δ* is re-centred on the null (Δ* − Δ) and
    ``p = (1 + #{|Δ* − Δ| ≥ |Δ|}) / (1 + B)`` (Efron & Tibshirani 1993, §16.4; the +1
    keeps p > 0 with finitely many resamples). Δ = 0 exactly gives p = 1.

Rows trained with several training seeds (``seeds:`` in the spec, issue 19): the cell is the mean over
seeds, :func:`seed_spread` gives the seeds' lowest and highest score (and their s.d.), and
:func:`seed_pooled` pools each problem's verdicts over the seeds, so that a problem's mean is its
correctness averaged over seeds (and samples). The CIs and paired comparisons above then run
unchanged on those seed-averaged values: the problem stays the unit of resampling, and a
comparison with such a row always uses the paired bootstrap test (the averages are not 0/1, so
McNemar's test does not apply).

All resampling is seeded (``numpy.random.default_rng``), so the same inputs give the same
intervals and p-values byte for byte. Not in the paper (Table 3 reports point estimates
only); added so a reproduced cell can be judged against its sampling noise.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

#: Bootstrap resamples used by the board.
N_RESAMPLES = 2000
#: Two-sided confidence level of every interval on the board.
CONFIDENCE = 0.95
#: Base seed; each cell derives its own seed from this and its name (see :func:`cell_seed`).
BASE_SEED = 20260428

PerProblem = Mapping[str, Sequence[bool]]


def cell_seed(*parts: str, base: int = BASE_SEED) -> int:
    """A deterministic seed for one cell/comparison: ``base`` xor crc32 of the joined parts.

    Independent of the order cells are computed in and of Python's hash randomisation.
    """
    return (base ^ zlib.crc32("\x1f".join(parts).encode("utf-8"))) & 0xFFFFFFFF


def problem_means(per_problem: PerProblem) -> dict[str, float]:
    """Problem id -> mean correctness over its k samples (pass@1: 0.0 or 1.0).

    Raises:
        ValueError: a problem has no verdicts.
    """
    out = {}
    for pid, verdicts in per_problem.items():
        if len(verdicts) == 0:
            raise ValueError(f"problem {pid!r} has no verdicts")
        out[pid] = sum(1.0 for v in verdicts if v) / len(verdicts)
    return out


def _percentile_interval(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


#: Up to this many distinct values, resampling draws value counts from a multinomial instead of
#: indices (see :func:`_boot_means`).
_MULTINOMIAL_MAX_DISTINCT = 64


def _boot_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` resamples (with replacement) of ``values``; shape (B,).

    Per-problem scores take few distinct values (pass@1: {0, 1}; avg@k: multiples of 1/k;
    paired differences of those). Drawing n problems with replacement is then the same in
    distribution as drawing the *counts* of each distinct value from
    Multinomial(n, observed frequencies), which costs O(B × distinct) instead of O(B × n).
    Other inputs resample indices directly.
    """
    n = values.shape[0]
    uniq, counts = np.unique(values, return_counts=True)
    if uniq.size <= _MULTINOMIAL_MAX_DISTINCT:
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return draws @ uniq / n
    idx = rng.integers(0, n, size=(n_resamples, n))
    return values[idx].mean(axis=1)


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BASE_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (one value per problem).

    Args:
        values: shape (n,) per-problem scores in [0, 1] (pass@1 verdict or avg@k mean).
        n_resamples: bootstrap resamples B.
        confidence: two-sided level, e.g. 0.95.
        seed: numpy Generator seed.

    Returns:
        ``(low, high)``. With one problem the interval is the point itself.

    Raises:
        ValueError: ``values`` is empty.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("cannot bootstrap an empty sample")
    boot = _boot_means(v, n_resamples, np.random.default_rng(seed))
    return _percentile_interval(boot, confidence)


def stratified_bootstrap(
    strata: Sequence[Sequence[float] | np.ndarray],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = BASE_SEED,
) -> np.ndarray:
    """Bootstrap distribution of the mean of stratum means, shape (B,).

    Each stratum (a task's per-problem scores) is resampled independently; the statistic is
    ``mean_t mean(stratum_t)`` — the board's unweighted average over tasks.

    Raises:
        ValueError: no strata, or an empty stratum.
    """
    if not strata:
        raise ValueError("no strata to bootstrap")
    rng = np.random.default_rng(seed)
    total = np.zeros(n_resamples)
    for s in strata:
        v = np.asarray(s, dtype=float)
        if v.size == 0:
            raise ValueError("cannot bootstrap an empty stratum")
        total += _boot_means(v, n_resamples, rng)
    return total / len(strata)


def average_ci(
    strata: Sequence[Sequence[float] | np.ndarray],
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BASE_SEED,
) -> tuple[float, float]:
    """Percentile CI of the average over tasks (see :func:`stratified_bootstrap`)."""
    return _percentile_interval(stratified_bootstrap(strata, n_resamples=n_resamples, seed=seed), confidence)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value for paired binary outcomes (same problems, same order).

    ``n01`` = a wrong & b right, ``n10`` = a right & b wrong; p = two-sided binomial test of
    ``n10`` successes in ``n10 + n01`` trials at 1/2. No discordant pairs -> p = 1.

    Raises:
        ValueError: ``a`` and ``b`` differ in length.
    """
    from scipy.stats import binomtest

    a_ = np.asarray(a, dtype=bool)
    b_ = np.asarray(b, dtype=bool)
    if a_.shape != b_.shape:
        raise ValueError(f"paired samples differ in length: {a_.shape} vs {b_.shape}")
    n10 = int(np.sum(a_ & ~b_))
    n01 = int(np.sum(~a_ & b_))
    if n10 + n01 == 0:
        return 1.0
    return float(binomtest(n10, n10 + n01, 0.5, alternative="two-sided").pvalue)


def bootstrap_p_value(boot: np.ndarray, observed: float) -> float:
    """Two-sided paired-bootstrap p-value of H0: Δ = 0 from the bootstrap distribution of Δ*.

    ``p = (1 + #{|Δ* − Δ| ≥ |Δ|}) / (1 + B)``; ``observed == 0`` gives 1.
    """
    if observed == 0.0:
        return 1.0
    # Small tolerance so floating-point noise in the centred distribution does not decide ties.
    extreme = np.abs(boot - observed) >= abs(observed) - 1e-12
    return float((1 + int(np.sum(extreme))) / (1 + boot.shape[0]))


@dataclass(frozen=True)
class PairedResult:
    """Comparison of row A against row B on shared problems.

    Attributes:
        delta: mean(A) − mean(B) over shared problems (average over tasks for an Avg result).
        ci: 95% paired percentile-bootstrap CI of ``delta``.
        p: two-sided p-value (``test`` says which test).
        test: ``"mcnemar-exact"`` or ``"paired-bootstrap"``.
        n: shared problems (summed over tasks for an Avg result).
    """

    delta: float
    ci: tuple[float, float]
    p: float
    test: str
    n: int


def shared_ids(a: PerProblem, b: PerProblem) -> list[str]:
    """Problem ids scored in both, sorted (the order is irrelevant to results but fixed)."""
    return sorted(set(a) & set(b))


def paired_compare(
    a: PerProblem,
    b: PerProblem,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BASE_SEED,
) -> PairedResult | None:
    """Compare two rows' per-problem verdicts on one task (module doc: which test when).

    Returns None when the rows share no problem ids.
    """
    ids = shared_ids(a, b)
    if not ids:
        return None
    ma, mb = problem_means({i: a[i] for i in ids}), problem_means({i: b[i] for i in ids})
    d = np.array([ma[i] - mb[i] for i in ids])
    delta = float(d.mean())
    boot = _boot_means(d, n_resamples, np.random.default_rng(seed))
    ci = _percentile_interval(boot, confidence)
    binary = all(len(a[i]) == 1 and len(b[i]) == 1 for i in ids)
    if binary:
        p = mcnemar_exact([bool(a[i][0]) for i in ids], [bool(b[i][0]) for i in ids])
        test = "mcnemar-exact"
    else:
        p = bootstrap_p_value(boot, delta)
        test = "paired-bootstrap"
    return PairedResult(delta=delta, ci=ci, p=p, test=test, n=len(ids))


def paired_compare_average(
    pairs: Sequence[tuple[PerProblem, PerProblem]],
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BASE_SEED,
) -> PairedResult | None:
    """Paired comparison of the average over tasks: one ``(a, b)`` per-problem pair per task.

    Δ = mean over tasks of the per-task mean difference on shared problems; each task's
    difference vector is resampled independently (stratified, paired within a problem);
    p from the paired bootstrap test. Tasks with no shared problems are skipped; returns
    None when none remain.
    """
    diffs = []
    for a, b in pairs:
        ids = shared_ids(a, b)
        if not ids:
            continue
        ma, mb = problem_means({i: a[i] for i in ids}), problem_means({i: b[i] for i in ids})
        diffs.append(np.array([ma[i] - mb[i] for i in ids]))
    if not diffs:
        return None
    delta = float(np.mean([d.mean() for d in diffs]))
    boot = stratified_bootstrap(diffs, n_resamples=n_resamples, seed=seed)
    return PairedResult(
        delta=delta,
        ci=_percentile_interval(boot, confidence),
        p=bootstrap_p_value(boot, delta),
        test="paired-bootstrap",
        n=int(sum(d.size for d in diffs)),
    )


# --------------------------------------------------------------------------- training seeds (issue 19)


def seed_pooled(per_seed: Sequence[PerProblem]) -> dict[str, list[bool]]:
    """Per-problem verdicts of one row and task over several training seeds, pooled.

    Args:
        per_seed: one ``per_problem`` mapping (problem id -> k verdicts) per training seed.

    Returns:
        problem id -> the verdicts of every seed, seed after seed (``S·k`` of them), for the problems
        every seed was scored on (sorted ids). With the same k for every seed, the
        :func:`problem_means` of the result are the per-problem correctness averaged over seeds,
        ``mean_s mean_j v[s, p, j]``; their mean over problems is the mean of the seeds' scores.

    Raises:
        ValueError: no seeds, or a problem scored with a different number of samples by two seeds
            (the pooled mean would weight those seeds unequally).
    """
    if not per_seed:
        raise ValueError("no seeds to pool")
    ids = sorted(set.intersection(*(set(pp) for pp in per_seed)))
    out: dict[str, list[bool]] = {}
    for i in ids:
        ks = {len(pp[i]) for pp in per_seed}
        if len(ks) > 1:
            raise ValueError(f"problem {i!r} has {sorted(ks)} verdicts under different seeds; every seed "
                             "must score a problem with the same number of samples")
        out[i] = [bool(v) for pp in per_seed for v in pp[i]]
    return out


@dataclass(frozen=True)
class SeedSpread:
    """How a row's score varies with its training seed.

    Attributes:
        n: seeds with a score.
        mean: mean of the seeds' scores (the board's value).
        low, high: the lowest and highest seed's score (the board shows ``low–high``).
        sd: sample standard deviation of the seeds' scores (``ddof=1``; None for one seed).
    """

    n: int
    mean: float
    low: float
    high: float
    sd: float | None


def seed_spread(scores: Sequence[float]) -> SeedSpread:
    """:class:`SeedSpread` of per-seed ``scores`` (one per training seed).

    Raises:
        ValueError: no scores.
    """
    v = np.asarray(scores, dtype=float)
    if v.size == 0:
        raise ValueError("no seed scores")
    return SeedSpread(n=int(v.size), mean=float(v.mean()), low=float(v.min()), high=float(v.max()),
                      sd=float(v.std(ddof=1)) if v.size > 1 else None)
