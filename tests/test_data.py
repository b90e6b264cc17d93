"""Tests of ddpm_lib.data: the toy 2D data sets and the Gaussian mixture with exact density and score.

References: sample moments with standard errors from the sample; the binomial variance of a count
(i.i.d. check); scipy's normal log-densities; central finite differences; a Riemann sum; Pearson's χ².
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps
from scipy.special import logsumexp

from ddpm_lib import DATASETS, GaussianMixture, sample_data

#: The data sets are standardised with constants estimated once from this many points.
STANDARDISATION_N = 1_000_000


@pytest.mark.parametrize("name", DATASETS)
def test_sample_data_shape_dtype_and_seeding(name):
    """(n, 2) float32; the same seed gives the same points, another seed other points."""
    a, b, c = (
        sample_data(name, 500, seed=1),
        sample_data(name, 500, seed=1),
        sample_data(name, 500, seed=2),
    )
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert sample_data(name, 1, seed=0).shape == (1, 2)


@pytest.mark.parametrize("name", DATASETS)
def test_sample_data_is_standardised(name, stats):
    """Each coordinate has mean 0 and variance 1 (200k points). The standardising constants are
    themselves estimates from 10⁶ points, so their error adds to the sample's: the standard errors
    are inflated by √(1 + n/10⁶)."""
    n = 200_000
    x = sample_data(name, n, seed=3).double().numpy()
    inflate = math.sqrt(1 + n / STANDARDISATION_N)
    mean, se = stats.mean_and_se(x)
    stats.assert_close_stat(mean, inflate * se, np.zeros(2), f"{name}: mean")
    cov, se_cov = stats.cov_and_se(x)
    stats.assert_close_stat(
        np.diag(cov), inflate * np.diag(se_cov), np.ones(2), f"{name}: variance"
    )


def test_moons_points_are_iid():
    """The moons are i.i.d. draws (scikit-learn's make_moons puts them at evenly spaced angles).

    For i.i.d. points, the number N_c of points below a fixed threshold c in a draw of n points is
    Binomial(n, p): over R independent draws its variance is n p (1 − p). Points at evenly spaced
    angles make N_c nearly fixed (ratio ≈ 0.05), and evenly spaced angles with a random choice of moon
    still cut it to ≈ 0.65. We check the ratio var(N_c)/(n p̂ (1 − p̂)) for thresholds at the 10%, 25%,
    75% and 90% quantiles of each coordinate, each within 5 standard errors of 1 (the standard error
    of a sample variance, √((m₄ − s⁴)/R), from the R counts). Also: two draws are not the same points
    reordered."""
    R, n = 1000, 1000
    xs = np.stack([sample_data("moons", n, seed=1000 + r).numpy() for r in range(R)])
    ratios = {}
    for coord in (0, 1):
        for q in (0.1, 0.25, 0.75, 0.9):
            c = np.quantile(xs[:, :, coord], q)
            counts = (xs[:, :, coord] < c).sum(1).astype(float)
            p = counts.mean() / n
            dev = counts - counts.mean()
            var, se_var = (
                np.mean(dev**2),
                math.sqrt((np.mean(dev**4) - np.mean(dev**2) ** 2) / R),
            )
            ratio, se = var / (n * p * (1 - p)), se_var / (n * p * (1 - p))
            ratios[(coord, q)] = round(ratio, 3)
            assert abs(ratio - 1) <= 5 * se, (
                f"coordinate {coord}, quantile {q}: variance ratio {ratio:.3f} ± {se:.3f}"
            )
    assert not np.allclose(np.sort(xs[0, :, 0]), np.sort(xs[1, :, 0]))


def test_unknown_data_set_and_bad_n():
    """An unknown name lists the valid ones; n must be an integer ≥ 1."""
    with pytest.raises(ValueError) as info:
        sample_data("spiral", 10, seed=0)
    assert "spiral" in str(info.value) and all(
        name in str(info.value) for name in DATASETS
    )
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"n must be an integer ≥ 1"):
            sample_data("moons", n, seed=0)


# ---------------------------------------------------------------------------
# Gaussian mixture
# ---------------------------------------------------------------------------

MEANS = [[-1.0, 0.0], [1.0, 1.0], [0.5, -1.5]]
STDS = [0.3, 0.5, 0.2]
WEIGHTS = [2.0, 5.0, 3.0]  # normalised by the class to 0.2, 0.5, 0.3


def _mixture():
    return GaussianMixture(MEANS, STDS, WEIGHTS)


def _mixture_moments(means, stds, weights):
    """Mean Σ w_k m_k and covariance Σ w_k (diag(s_k²) + m_k m_kᵀ) − mean meanᵀ of a mixture whose
    component k has standard deviations s_k (a scalar, isotropic, or one per coordinate)."""
    means, w = np.asarray(means, float), np.asarray(weights, float)
    K, d = means.shape
    stds = np.broadcast_to(np.asarray(stds, float).reshape(K, -1), (K, d))
    w = w / w.sum()
    mean = w @ means
    second = sum(
        wk * (np.diag(sk**2) + np.outer(mk, mk)) for wk, sk, mk in zip(w, stds, means)
    )
    return mean, second - np.outer(mean, mean)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("diagonal", [False, True])
def test_mixture_log_prob_matches_scipy(d, diagonal):
    """log p(x) = log Σ_k w_k N(x; m_k, diag(s_k²)), computed here with scipy's normal log-densities,
    for isotropic (stds of shape (K,)) and diagonal (stds of shape (K, d)) components."""
    rng = np.random.default_rng(40)
    means, w = rng.normal(size=(4, d)) * 2, np.array([1.0, 2.0, 3.0, 4.0])
    stds = (
        rng.uniform(0.2, 2.0, size=(4, d))
        if diagonal
        else np.array([0.3, 1.0, 0.5, 2.0])
    )
    gm = GaussianMixture(means, stds, w)
    x = rng.normal(size=(300, d)) * 3
    sd = stds if diagonal else stds[:, None]
    comp = np.stack(
        [
            np.log(wk / w.sum()) + sps.norm.logpdf(x, mk, sk).sum(1)
            for mk, sk, wk in zip(means, sd, w)
        ],
        1,
    )
    np.testing.assert_allclose(
        gm.log_prob(torch.from_numpy(x)).numpy(), logsumexp(comp, axis=1), rtol=1e-12
    )


@pytest.mark.parametrize("diagonal", [False, True])
def test_mixture_score_is_the_gradient_of_log_prob(diagonal):
    """score(x) = ∇ log p(x): central differences (log p(x + h e_i) − log p(x − h e_i))/(2h) in float64.
    Tolerance: the truncation error O(h²) is estimated from the difference between steps h and 2h
    (Richardson: err(h) ≈ |D(2h) − D(h)|/3; we allow 10× |D(2h) − D(h)|), plus the rounding error
    ≈ eps·|log p|/h."""
    gm = (
        GaussianMixture(MEANS, [[0.3, 0.6], [0.5, 0.25], [0.2, 0.4]], WEIGHTS)
        if diagonal
        else _mixture()
    )
    rng = np.random.default_rng(41)
    x = torch.from_numpy(rng.normal(size=(300, 2)) * 1.5)
    h = 1e-4

    def central(step):
        cols = []
        for i in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[i] = step
            cols.append((gm.log_prob(x + e) - gm.log_prob(x - e)) / (2 * step))
        return torch.stack(cols, 1).numpy()

    fd_h, fd_2h = central(h), central(2 * h)
    score = gm.score(x)
    assert score.dtype == torch.float64 and score.shape == (300, 2)
    rounding = (
        10
        * np.finfo(np.float64).eps
        * (np.abs(gm.log_prob(x).numpy()[:, None]) + 1)
        / h
    )
    tol = 10 * np.abs(fd_2h - fd_h) + rounding
    err = np.abs(score.numpy() - fd_h)
    assert np.all(err <= tol), (
        f"max |score − finite difference| = {err.max():.3g} (allowed {tol.ravel()[err.argmax()]:.3g})"
    )


def test_mixture_score_far_away_is_finite():
    """Far from every component (|x| = 50) the responsibilities underflow in a naive formula; the
    score is finite and points back to the mixture (⟨score, x⟩ < 0)."""
    gm = _mixture()
    x = torch.tensor([[50.0, 0.0], [-50.0, 50.0], [0.0, -60.0]], dtype=torch.float64)
    s = gm.score(x)
    assert torch.isfinite(s).all() and torch.isfinite(gm.log_prob(x)).all()
    assert torch.all((s * x).sum(1) < 0)


def test_mixture_density_integrates_to_one():
    """∫ p = 1: a Riemann sum of exp(log p) on a 0.02-spaced grid over [−6, 6]². For a Gaussian of
    std ≥ 0.2 the uniform-grid sum is spectrally accurate (error ~ exp(−2π²s²/h²)), and the mass
    outside the window is < 1e-12: any error above 1e-9 is the density's."""
    gm = _mixture()
    h = 0.02
    g = np.arange(-6, 6 + h / 2, h)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))
    total = gm.log_prob(pts).exp().sum().item() * h * h
    assert total == pytest.approx(1.0, abs=1e-9)


def test_mixture_samples_have_the_mixture_moments(stats):
    """Mean Σ w_k m_k and covariance Σ w_k (s_k² I + m_k m_kᵀ) − mean meanᵀ (200k samples), and the
    generator makes sampling reproducible."""
    gm = _mixture()
    x = gm.sample(200_000, generator=torch.Generator().manual_seed(42))
    assert x.shape == (200_000, 2) and x.dtype == torch.float32
    want_mean, want_cov = _mixture_moments(MEANS, STDS, WEIGHTS)
    mean, se = stats.mean_and_se(x)
    stats.assert_close_stat(mean, se, want_mean, "mixture sample mean")
    cov, se_cov = stats.cov_and_se(x)
    stats.assert_close_stat(cov, se_cov, want_cov, "mixture sample covariance")
    assert torch.equal(
        gm.sample(10, generator=torch.Generator().manual_seed(1)),
        gm.sample(10, generator=torch.Generator().manual_seed(1)),
    )


def _noised_mc(alpha_bar, n, seed):
    """√ᾱ x_0 + √(1−ᾱ) ε with x_0 from the mixture: Monte Carlo draws of q(x_t)."""
    gen = torch.Generator().manual_seed(seed)
    x0 = _mixture().sample(n, generator=gen).double()
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * torch.randn(
        n, 2, generator=gen, dtype=torch.float64
    )


@pytest.mark.parametrize("alpha_bar", [0.9, 0.5, 0.05])
def test_noised_mixture_moments(alpha_bar, stats):
    """noised(ᾱ) is the law of √ᾱ x_0 + √(1−ᾱ) ε: its moments (from its own parameters) equal the closed
    form √ᾱ·mean and ᾱ·Cov + (1−ᾱ) I, and match Monte Carlo draws (200k); its weights are unchanged."""
    noised = _mixture().noised(alpha_bar)
    got_mean, got_cov = _mixture_moments(
        noised.means.numpy(), noised.stds.numpy(), noised.weights.numpy()
    )
    mean0, cov0 = _mixture_moments(MEANS, STDS, WEIGHTS)
    np.testing.assert_allclose(
        got_mean, math.sqrt(alpha_bar) * mean0, rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        got_cov, alpha_bar * cov0 + (1 - alpha_bar) * np.eye(2), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        noised.weights.numpy(), np.array(WEIGHTS) / sum(WEIGHTS), rtol=1e-14
    )
    x = _noised_mc(alpha_bar, 200_000, seed=43)
    mean, se = stats.mean_and_se(x)
    stats.assert_close_stat(mean, se, got_mean, f"ᾱ={alpha_bar}: mean")
    cov, se_cov = stats.cov_and_se(x)
    stats.assert_close_stat(cov, se_cov, got_cov, f"ᾱ={alpha_bar}: covariance")


@pytest.mark.parametrize("alpha_bar", [0.9, 0.3])
def test_noised_mixture_density_matches_histogram(alpha_bar):
    """noised(ᾱ).log_prob is the density of √ᾱ x_0 + √(1−ᾱ) ε: on a 20×20 grid of bins over [−3, 3]²
    (plus one bin for everything outside), the Monte Carlo counts of 200k draws agree with n·∫_bin p
    (integrated on a 10×10 sub-grid of midpoints) by Pearson's χ² test: χ² ≤ df + 5√(2 df)."""
    n, bins, sub = 200_000, 20, 10
    x = _noised_mc(alpha_bar, n, seed=44).numpy()
    edges = np.linspace(-3, 3, bins + 1)
    counts = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])[0].ravel()
    width = edges[1] - edges[0]
    mids = edges[0] + (np.arange(bins * sub) + 0.5) * width / sub
    xx, yy = np.meshgrid(mids, mids, indexing="ij")
    dens = (
        _mixture()
        .noised(alpha_bar)
        .log_prob(torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1)))
        .exp()
    )
    cell = dens.numpy().reshape(bins, sub, bins, sub).sum((1, 3)) * (width / sub) ** 2
    expected = n * cell.ravel()
    observed = np.append(counts, n - counts.sum())
    expected = np.append(expected, n - expected.sum())
    keep = expected >= 5
    chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    df = keep.sum() - 1
    assert chi2 <= df + 5 * math.sqrt(2 * df), (
        f"χ² = {chi2:.1f} with {df} degrees of freedom"
    )


def test_mixture_bad_parameters():
    """Shapes must agree ((K, d) means, (K,) or (K, d) stds, (K,) weights) and stds/weights must be
    positive; the messages say what is allowed and what was received."""
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\), got \(2,\)"):
        GaussianMixture([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(
        ValueError, match=r"stds must be \(K,\) or \(K, d\).*got \(1,\)"
    ):
        GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [1.0])
    with pytest.raises(ValueError, match=r"weights \(K,\).*got \(2,\) and \(3,\)"):
        GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [1.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"positive"):
        GaussianMixture([[0.0, 0.0]], [0.0])
    with pytest.raises(ValueError, match=r"positive"):
        GaussianMixture([[0.0, 0.0]], [1.0], [-1.0])
