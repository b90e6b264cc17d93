"""Tests of ddpm_lib.moments: mean and covariance gaps in standard errors.

References, independent of the module's code path:
- the textbook standard errors for Gaussian data with diagonal covariance diag(σ²):
  SE(x̄_i) = σ_i/√n, SE(Ĉ_ii) = σ_i² √(2/n) (the fourth moment of a Gaussian is 3σ⁴),
  SE(Ĉ_ij) = σ_i σ_j/√n for i ≠ j (the product of two independent centred Gaussians);
- calibration: over many independent repetitions under the null hypothesis, each z-score
  must behave like a standard normal (mean ≈ 0, standard deviation ≈ 1), checked with
  tolerances derived from the number of repetitions;
- power: a shift of known size gives the z-score it should.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lib.moments import mean_cov_se, moment_gap

SIGMA = torch.tensor([0.5, 2.0], dtype=torch.float64)
MU = torch.tensor([1.0, -3.0], dtype=torch.float64)


def _gauss(n, gen):
    return MU + SIGMA * torch.randn(n, 2, generator=gen, dtype=torch.float64)


def test_standard_errors_match_gaussian_textbook_values():
    """With n = 400k Gaussian points, the estimated standard errors are within 1% of the analytic ones."""
    n = 400_000
    x = _gauss(n, torch.Generator().manual_seed(0))
    mean, cov, se_mean, se_cov = mean_cov_se(x)
    s = SIGMA.numpy()
    np.testing.assert_allclose(se_mean.numpy(), s / math.sqrt(n), rtol=0.01)
    np.testing.assert_allclose(
        np.diag(se_cov.numpy()), s**2 * math.sqrt(2 / n), rtol=0.01
    )
    np.testing.assert_allclose(
        se_cov[0, 1].item(), s[0] * s[1] / math.sqrt(n), rtol=0.01
    )
    np.testing.assert_allclose(se_cov[0, 1].item(), se_cov[1, 0].item())
    # and the moments themselves, within 5 of those standard errors
    assert np.all(np.abs(mean.numpy() - MU.numpy()) < 5 * s / math.sqrt(n))
    assert np.all(np.abs(cov.numpy() - np.diag(s**2)) < 5 * se_cov.numpy())


@pytest.mark.parametrize("two_sample", [False, True])
def test_z_scores_are_standard_normal_under_the_null(two_sample):
    """400 repetitions with n = 2000 under the null: every z-score has mean 0 and std 1 up to
    sampling error (SE of the mean of 400 z's is 0.05, of their std about 0.035; allow 4 of each,
    plus 3% for the finite-n bias of the variance z-scores)."""
    gen = torch.Generator().manual_seed(1)
    reps, n = 400, 2000
    zs = []
    for _ in range(reps):
        x = _gauss(n, gen)
        gap = (
            moment_gap(x, _gauss(n, gen))
            if two_sample
            else moment_gap(x, mean=MU, cov=torch.diag(SIGMA**2))
        )
        zs.append(torch.cat([gap.z_mean, gap.z_cov[0, 0:2], gap.z_cov[1, 1:2]]).numpy())
    zs = np.array(zs)  # (reps, 5): mean_1, mean_2, cov_11, cov_12, cov_22
    assert np.all(np.abs(zs.mean(0)) < 4 * 1 / math.sqrt(reps)), zs.mean(0)
    assert np.all(np.abs(zs.std(0) - 1) < 4 * 1 / math.sqrt(2 * reps) + 0.03), zs.std(0)


def test_a_known_shift_gives_the_expected_z():
    """Shifting the first coordinate's mean by 10 standard errors gives z ≈ 10 (±5), the second ≈ 0."""
    n = 10_000
    x = _gauss(n, torch.Generator().manual_seed(2))
    shift = 10 * SIGMA[0].item() / math.sqrt(n)
    gap = moment_gap(
        x,
        mean=MU + torch.tensor([shift, 0.0], dtype=torch.float64),
        cov=torch.diag(SIGMA**2),
    )
    assert -15 < gap.z_mean[0].item() < -5
    assert abs(gap.z_mean[1].item()) < 5
    assert gap.worst >= abs(gap.z_mean[0].item())


def test_scaled_variance_is_detected():
    """A second sample with 10% more standard deviation in coordinate 2 (n = 50k each) is flagged
    on the variance entry: expected z ≈ (1.21 − 1)σ²/(σ²√(2/n)·√(1 + 1.21²)) ≈ 21."""
    gen = torch.Generator().manual_seed(3)
    n = 50_000
    x, y = _gauss(n, gen), _gauss(n, gen)
    y[:, 1] = MU[1] + 1.1 * (y[:, 1] - MU[1])
    gap = moment_gap(x, y)
    expected = -0.21 / (math.sqrt(2 / n) * math.sqrt(1 + 1.21**2))
    assert abs(gap.z_cov[1, 1].item() - expected) < 5
    assert abs(gap.z_cov[0, 0].item()) < 5


def test_bad_arguments():
    """Exactly one reference; matching shapes; at least two points."""
    x = torch.zeros(10, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="either a second sample"):
        moment_gap(x)
    with pytest.raises(ValueError, match="either a second sample"):
        moment_gap(x, x, mean=torch.zeros(2), cov=torch.eye(2))
    with pytest.raises(ValueError, match="either a second sample"):
        moment_gap(x, mean=torch.zeros(2))
    with pytest.raises(ValueError, match="same number of columns"):
        moment_gap(x, torch.zeros(10, 3))
    with pytest.raises(ValueError, match=r"mean must have shape \(2,\)"):
        moment_gap(x, mean=torch.zeros(3), cov=torch.eye(2))
    with pytest.raises(ValueError, match="at least 2 points"):
        mean_cov_se(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        moment_gap(torch.zeros(10), mean=torch.zeros(1), cov=torch.eye(1))
