"""Tests of ddpm_lib.metrics: C2ST, histogram JS, sliced Wasserstein and evaluate().

References: known values (JS = 0 for equal histograms, ln 2 for disjoint ones; C2ST = ½ for one law),
scipy's Jensen–Shannon distance and 1D Wasserstein distance, and E|⟨a, u⟩| = 2|a|/π over uniform
directions u in the plane.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from ddpm_lib import c2st, evaluate, format_metrics, histogram_js, sliced_wasserstein


def _normal(n, seed, shift=(0.0, 0.0)):
    return np.random.default_rng(seed).standard_normal((n, 2)) + np.asarray(shift)


# ---------------------------------------------------------------------------
# C2ST
# ---------------------------------------------------------------------------


def test_c2st_is_one_half_for_the_same_law():
    """Two independent draws of N(0, I) (2000 points each) cannot be told apart: accuracy ≈ ½
    (within 0.05; the standard error of a 4000-point accuracy is ≈ 0.008)."""
    assert abs(c2st(_normal(2000, 50), _normal(2000, 51)) - 0.5) <= 0.05
    assert (
        abs(
            c2st(
                torch.from_numpy(_normal(2000, 52)).float(),
                torch.from_numpy(_normal(2000, 53)),
            )
            - 0.5
        )
        <= 0.05
    )


def test_c2st_is_near_one_for_separated_laws():
    """N(0, I) against N((6, 0), I): the Bayes classifier errs with probability Φ(−3) ≈ 0.001, and
    k-NN gets > 0.95."""
    assert c2st(_normal(2000, 54), _normal(2000, 55, shift=(6.0, 0.0))) > 0.95


def test_group_folds_keep_groups_whole_and_classes_even():
    """Every group lands in one fold, and each fold holds each class within the largest
    group's size of an equal share; the same seed gives the same folds."""
    from ddpm_lib.metrics import group_folds

    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 2, n)
    groups = rng.integers(0, 1800, n)  # sizes 1 to ~8, some with both classes
    groups = np.unique(groups, return_inverse=True)[1]
    folds = group_folds(y, groups, 5, seed=3)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1
    largest = np.bincount(groups).max()
    for c in (0, 1):
        per_fold = np.bincount(folds[y == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= largest, per_fold
    assert np.array_equal(folds, group_folds(y, groups, 5, seed=3))
    assert not np.array_equal(folds, group_folds(y, groups, 5, seed=4))


def test_c2st_with_repeated_points_is_one_half_on_average():
    """Two draws with replacement from one pool of 2000 points (many points repeated, within
    each draw and across the two) come from the same law: by symmetry the accuracy is ½ on
    average. 16 seeds, within 4 standard errors of their mean (measured from their spread:
    repeated points make one value noisier than 0.008)."""
    vals = []
    for s in range(16):
        rng = np.random.default_rng(s)
        pool = rng.normal(size=(2000, 2))
        a, b = (pool[rng.integers(0, 2000, 2000)] for _ in range(2))
        vals.append(c2st(a, b, seed=s))
    se = np.std(vals, ddof=1) / np.sqrt(len(vals))
    assert abs(np.mean(vals) - 0.5) < 4 * se, vals


# ---------------------------------------------------------------------------
# Histogram JS
# ---------------------------------------------------------------------------


def _hist(x, bins=30, lo=-3.0, hi=3.0):
    """2D histogram on a bins×bins grid over [lo, hi)², by integer division, plus one cell
    counting every point outside the window; normalised by the number of points."""
    idx = np.floor((x - lo) / (hi - lo) * bins).astype(int)
    ok = np.all((idx >= 0) & (idx < bins), axis=1)
    counts = np.zeros((bins, bins))
    np.add.at(counts, (idx[ok, 0], idx[ok, 1]), 1)
    return np.append(counts.ravel(), (~ok).sum()) / len(x)


def test_histogram_js_extremes():
    """JS(p, p) = 0 exactly; for histograms with disjoint supports JS = ln 2 (its maximum, in nats)."""
    a = _normal(5000, 56)
    assert histogram_js(a, a) == 0.0
    left = np.random.default_rng(57).uniform(-2.5, -0.5, size=(3000, 2))
    right = np.random.default_rng(58).uniform(0.5, 2.5, size=(3000, 2))
    assert histogram_js(left, right) == pytest.approx(math.log(2), rel=1e-12)


def test_histogram_js_matches_scipy_and_is_symmetric():
    """For two arbitrary point sets, histogram_js equals the square of scipy's Jensen–Shannon distance
    (natural log) between the 30×30 histograms on [−3, 3]² built here by integer binning; and
    JS(a, b) = JS(b, a)."""
    a, b = _normal(5000, 59), _normal(8000, 60, shift=(0.5, -0.3)) * 1.2
    want = jensenshannon(_hist(a), _hist(b)) ** 2
    assert histogram_js(a, b) == pytest.approx(want, rel=1e-9)
    assert histogram_js(a, b) == pytest.approx(histogram_js(b, a), rel=1e-12)
    assert histogram_js(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        want, rel=1e-9
    )


# ---------------------------------------------------------------------------
# Sliced Wasserstein
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_projections", [500, 20_000])
def test_sliced_wasserstein_of_a_shift(n_projections):
    """Shifting a set by a vector a shifts every projection by ⟨a, u⟩ and keeps its order, so the 1D
    W1 along u is |⟨a, u⟩| = |a| |cos θ|. Over uniform directions E|cos θ| = (1/2π)∫|cos θ| dθ = 2/π,
    hence SW1 = 2|a|/π. The estimate averages P random directions: its standard error is
    |a| √(½ − 4/π²)/√P (Var|cos θ| = E cos²θ − (2/π)² = ½ − 4/π²); we allow 5 of them."""
    a = np.array([1.2, -0.7])
    x = _normal(
        200, 61
    )  # the result does not depend on the set: each projection is shifted exactly
    got = sliced_wasserstein(x, x + a, n_projections=n_projections, seed=3)
    norm = np.linalg.norm(a)
    se = norm * math.sqrt(0.5 - 4 / math.pi**2) / math.sqrt(n_projections)
    assert abs(got - 2 * norm / math.pi) <= 5 * se, (got, 2 * norm / math.pi, se)


def test_sliced_wasserstein_in_1d_is_wasserstein_1():
    """In one dimension every unit direction is ±1, so SW1 is the W1 distance: scipy's
    wasserstein_distance between the two samples."""
    rng = np.random.default_rng(62)
    a, b = rng.standard_normal((1000, 1)), rng.exponential(size=(1000, 1))
    assert sliced_wasserstein(a, b, n_projections=7) == pytest.approx(
        wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-12
    )


def test_sliced_wasserstein_basic_properties():
    """SW1(a, a) = 0, SW1 is symmetric, and sets of different shapes are refused with both shapes."""
    a, b = _normal(500, 63), _normal(500, 64)
    assert sliced_wasserstein(a, a) == 0.0
    assert sliced_wasserstein(a, b) == pytest.approx(
        sliced_wasserstein(b, a), rel=1e-12
    )
    with pytest.raises(ValueError, match=r"same shape.*\(500, 2\).*\(400, 2\)"):
        sliced_wasserstein(a, b[:400])


# ---------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------


class _Draws:
    """A data law N(0, I) in 2D whose draw(n, seed) records every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, n, seed):
        self.calls.append((n, seed))
        return torch.from_numpy(
            np.random.default_rng(seed).standard_normal((n, 2))
        ).float()


def test_evaluate_reports_metrics_beside_fresh_floors():
    """evaluate returns the six keys; the floors come from fresh, independent draws (three calls with
    three different seeds: a test set and a second set of n points, a larger reference). For samples
    from the data law the floors and the metrics are alike (C2ST ≈ ½); for a shifted law the metrics
    are far above their floors."""
    n = 2000
    draws = _Draws()
    good = torch.from_numpy(_normal(n, 65)).float()
    m = evaluate(good, draws, seed=0, reference_size=20_000)
    assert set(m) == {"c2st", "c2st_floor", "js", "js_floor", "sw1", "sw1_floor"}
    sizes, seeds = zip(*draws.calls)
    assert sorted(sizes) == [n, n, 20_000] and len(set(seeds)) == 3
    assert abs(m["c2st_floor"] - 0.5) <= 0.05 and abs(m["c2st"] - 0.5) <= 0.05
    assert all(m[k] >= 0 for k in m)

    bad = torch.from_numpy(_normal(n, 66, shift=(1.0, 0.0))).float()
    m_bad = evaluate(bad, _Draws(), seed=0, reference_size=20_000)
    # Bayes accuracy between N(0, 1) and N(1, 1) is Φ(½) ≈ 0.69.
    assert m_bad["c2st"] > m_bad["c2st_floor"] + 0.1
    assert m_bad["js"] > m_bad["js_floor"]
    # The shift by (1, 0) alone gives SW1 = 2/π ≈ 0.64 (see test_sliced_wasserstein_of_a_shift).
    assert m_bad["sw1"] > 0.5 > m_bad["sw1_floor"]
    line = format_metrics(m)
    assert "C2ST" in line and "floor" in line and f"{m['c2st']:.3f}" in line


def test_evaluate_seeds_give_different_floors():
    """Different evaluate seeds draw different test sets (the floor is a random quantity)."""
    draws = _Draws()
    evaluate(torch.zeros(100, 2), draws, seed=0, reference_size=1000)
    evaluate(torch.zeros(100, 2), draws, seed=1, reference_size=1000)
    assert len({seed for _, seed in draws.calls}) == 6


def test_histogram_js_charges_points_outside_the_window():
    """Samples that put half their points far outside the window score worse than their in-window half."""
    rng = np.random.default_rng(61)
    ref = rng.standard_normal((20000, 2))
    half = rng.standard_normal((1000, 2))
    far = np.concatenate([half, np.full((1000, 2), 10.0)])
    assert histogram_js(far, ref) > histogram_js(half, ref) + 0.1
    assert np.isfinite(histogram_js(np.full((100, 2), 10.0), ref))
