"""rmxbench.board.statistics: bootstrap CIs against analytic cases and scipy, McNemar and paired tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rmxbench.board import statistics as stats


def _ci_width(ci):
    return ci[1] - ci[0]


def test_bernoulli_ci_matches_normal_approximation():
    # n=400, p=0.5: SE = sqrt(.25/400) = 0.025, 95% width ~ 2 * 1.96 * 0.025 = 0.098.
    values = np.array([1.0] * 200 + [0.0] * 200)
    lo, hi = stats.bootstrap_mean_ci(values, n_resamples=4000, seed=7)
    assert lo < 0.5 < hi
    assert _ci_width((lo, hi)) == pytest.approx(2 * 1.96 * 0.025, abs=0.008)
    assert (lo + hi) / 2 == pytest.approx(0.5, abs=0.006)


def test_ci_agrees_with_scipy_percentile_bootstrap():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(3)
    x = (rng.random(300) < 0.3).astype(float)
    ours = stats.bootstrap_mean_ci(x, n_resamples=4000, seed=1)
    ref = bootstrap((x,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(2))
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.01)


def test_ci_shrinks_like_one_over_sqrt_n():
    small = stats.bootstrap_mean_ci([1.0] * 30 + [0.0] * 70, seed=1)
    large = stats.bootstrap_mean_ci([1.0] * 480 + [0.0] * 1120, seed=1)
    # 16x the problems -> about 1/4 the width.
    assert _ci_width(large) / _ci_width(small) == pytest.approx(0.25, abs=0.06)


def test_ci_is_seeded_and_deterministic():
    x = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0] * 10
    assert stats.bootstrap_mean_ci(x, seed=5) == stats.bootstrap_mean_ci(x, seed=5)
    assert stats.cell_seed("row", "gsm8k") == stats.cell_seed("row", "gsm8k")
    assert stats.cell_seed("row", "gsm8k") != stats.cell_seed("row", "math500")


def test_avg_at_k_resamples_problems_not_samples():
    # Every problem solved in exactly 2 of 4 samples: problem means are all 0.5, so resampling
    # problems gives a zero-width interval (resampling the 4*n samples would not).
    per_problem = {f"p{i}": [True, False, True, False] for i in range(40)}
    pm = stats.problem_means(per_problem)
    assert set(pm.values()) == {0.5}
    assert stats.bootstrap_mean_ci(list(pm.values()), seed=0) == (0.5, 0.5)


def test_single_problem_and_empty_inputs():
    assert stats.bootstrap_mean_ci([1.0], seed=0) == (1.0, 1.0)
    with pytest.raises(ValueError):
        stats.bootstrap_mean_ci([], seed=0)
    with pytest.raises(ValueError):
        stats.problem_means({"a": []})


def test_stratified_average_ci_matches_analytic_variance():
    a = [1.0] * 150 + [0.0] * 350  # p=0.3, n=500
    b = [1.0] * 60 + [0.0] * 40  # p=0.6, n=100
    boot = stats.stratified_bootstrap([a, b], n_resamples=4000, seed=11)
    assert boot.mean() == pytest.approx((0.3 + 0.6) / 2, abs=0.005)
    sd = math.sqrt(0.3 * 0.7 / 500 + 0.6 * 0.4 / 100) / 2
    assert boot.std() == pytest.approx(sd, rel=0.08)
    lo, hi = stats.average_ci([a, b], n_resamples=4000, seed=11)
    assert hi - lo == pytest.approx(2 * 1.96 * sd, rel=0.1)


def _mcnemar_reference(n10: int, n01: int) -> float:
    n = n10 + n01
    k = min(n10, n01)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


@pytest.mark.parametrize("n10,n01,n11,n00", [(10, 0, 30, 60), (12, 5, 40, 43), (7, 7, 1, 1), (25, 9, 0, 100)])
def test_mcnemar_exact_against_binomial_formula(n10, n01, n11, n00):
    a = [True] * n10 + [False] * n01 + [True] * n11 + [False] * n00
    b = [False] * n10 + [True] * n01 + [True] * n11 + [False] * n00
    assert stats.mcnemar_exact(a, b) == pytest.approx(_mcnemar_reference(n10, n01), rel=1e-9)
    # Symmetric in the direction of the comparison.
    assert stats.mcnemar_exact(b, a) == pytest.approx(stats.mcnemar_exact(a, b), rel=1e-9)


def test_mcnemar_no_discordant_pairs_and_length_mismatch():
    assert stats.mcnemar_exact([True, False], [True, False]) == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_exact([True], [True, False])


def test_paired_pass1_uses_mcnemar_on_shared_ids():
    # a solves 60 of 100, b solves 30 of them (a subset): 30 discordant pairs all favouring a.
    a = {f"q{i}": [i < 60] for i in range(100)}
    b = {f"q{i}": [i < 30] for i in range(100)}
    b["only-in-b"] = [True]  # not shared: ignored
    r = stats.paired_compare(a, b, seed=3)
    assert r.test == "mcnemar-exact"
    assert r.n == 100
    assert r.delta == pytest.approx(0.30)
    assert r.p == pytest.approx(_mcnemar_reference(30, 0))
    assert r.p < 1e-6
    assert r.ci[0] > 0.15 and r.ci[1] < 0.45 and r.ci[0] < r.delta < r.ci[1]


def test_paired_identical_rows_give_p_one():
    a = {f"q{i}": [i % 3 == 0] for i in range(90)}
    r = stats.paired_compare(a, dict(a), seed=0)
    assert r.delta == 0.0 and r.p == 1.0 and r.ci == (0.0, 0.0)
    k = {f"q{i}": [i % 2 == 0, i % 3 == 0, True, False] for i in range(30)}
    r = stats.paired_compare(k, dict(k), seed=0)
    assert r.test == "paired-bootstrap" and r.p == 1.0


def test_paired_bootstrap_avg_at_k_clear_and_unclear_differences():
    # Clear: a is right on 3 of 4 samples everywhere, b on 1 of 4.
    a = {f"p{i}": [True, True, True, False] for i in range(30)}
    b = {f"p{i}": [True, False, False, False] for i in range(30)}
    r = stats.paired_compare(a, b, seed=1)
    assert r.test == "paired-bootstrap"
    assert r.delta == pytest.approx(0.5)
    assert r.p == pytest.approx(1 / (1 + stats.N_RESAMPLES))  # no resample reaches the null
    # Unclear: per-problem differences +1 on 51 problems and -1 on 49 (Δ=0.02, SE~0.1).
    a2 = {f"p{i}": [i < 51] * 2 for i in range(100)}
    b2 = {f"p{i}": [i >= 51] * 2 for i in range(100)}
    r2 = stats.paired_compare(a2, b2, seed=1)
    assert r2.delta == pytest.approx(0.02)
    assert r2.p > 0.5
    assert r2.ci[0] < 0 < r2.ci[1]


def test_paired_compare_average_over_tasks():
    t1 = ({f"a{i}": [i < 70] for i in range(100)}, {f"a{i}": [i < 40] for i in range(100)})  # +0.30
    t2 = ({f"b{i}": [i < 10] for i in range(50)}, {f"b{i}": [i < 10] for i in range(50)})  # 0
    r = stats.paired_compare_average([t1, t2], seed=2)
    assert r.delta == pytest.approx(0.15)
    assert r.n == 150
    assert r.ci[0] > 0 and r.p < 0.01
    assert stats.paired_compare_average([({"x": [True]}, {"y": [True]})]) is None
    assert stats.paired_compare({"x": [True]}, {"y": [True]}) is None


def test_continuous_scores_use_index_resampling_and_agree_with_scipy():
    from scipy.stats import bootstrap

    x = np.random.default_rng(8).random(250)  # > 64 distinct values: index resampling path
    ours = stats.bootstrap_mean_ci(x, n_resamples=4000, seed=4)
    ref = bootstrap((x,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(5))
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.008)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.008)
