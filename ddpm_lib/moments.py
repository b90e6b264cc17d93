"""First and second moments compared in standard errors (chapter 2).

Chapter 2 checks the closed form q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I) (eq. 2.3)
against the chain of eq. 2.1 by comparing means and covariances of point clouds.
"Equal" there means "within sampling error", so each gap is expressed in standard
errors estimated from the samples themselves, never against a hand-picked tolerance.

For a sample x of n rows, the standard error of the mean x̄_i is s_i/√n, and that
of the covariance entry Ĉ_ij is std(z_ij)/√n with z_ij = (x_i − x̄_i)(x_j − x̄_j):
Ĉ_ij is the mean of the z_ij, and for i = j this is the usual √((m₄ − s⁴)/n) of a
sample variance, valid for any law with a fourth moment (not only Gaussians).
The gap between two independent samples has the two standard errors added in quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import check_points


@dataclass
class MomentGap:
    """Gaps in moments, in standard errors (``z``) and in the data's units (``se`` gives the scale).

    z_mean: (d,) gap of each mean coordinate divided by its standard error.
    z_cov: (d, d) gap of each covariance entry divided by its standard error.
    se_mean, se_cov: the standard errors used, shapes (d,) and (d, d).
    """

    z_mean: torch.Tensor
    z_cov: torch.Tensor
    se_mean: torch.Tensor
    se_cov: torch.Tensor

    @property
    def worst(self) -> float:
        """The largest |z| over every mean coordinate and covariance entry."""
        return max(self.z_mean.abs().max().item(), self.z_cov.abs().max().item())


def mean_cov_se(x: torch.Tensor):
    """Sample mean (d,), covariance (d, d) (divisor n) and their standard errors, of x: (n, d), in float64."""
    check_points(x, "x")
    n = x.shape[0]
    if n < 2:
        raise ValueError(
            f"need at least 2 points to estimate a standard error, got {n}"
        )
    x = x.detach().double()
    mean = x.mean(0)
    c = x - mean
    z = (
        c[:, :, None] * c[:, None, :]
    )  # (n, d, d): the terms whose mean is the covariance
    cov = z.mean(0)
    se_mean = x.std(0) / math.sqrt(n)
    se_cov = z.std(0) / math.sqrt(n)
    return mean, cov, se_mean, se_cov


def moment_gap(
    x: torch.Tensor, y: torch.Tensor | None = None, *, mean=None, cov=None
) -> MomentGap:
    """How far the mean and covariance of x (n, d) are from a reference, in standard errors.   (chapter 2)

    The reference is either an independent second sample ``y`` (m, d), or a known
    ``mean`` (d,) and ``cov`` (d, d) (both needed). Under the hypothesis that the two
    agree, every entry of ``z_mean`` and ``z_cov`` is approximately standard normal
    for large n, so |z| beyond 4 or 5 is a real difference, not sampling noise.

    If x and y are *not* independent (e.g. the same x_0 pushed through two noisy
    maps) and positively correlated, the quadrature sum overstates the error, so
    the test errs on the side of passing; use independent samples for a sharp test.
    """
    if (y is None) == (mean is None or cov is None):
        raise ValueError(
            "give either a second sample y, or both mean= and cov= (and not both)"
        )
    mx, cx, sx, scx = mean_cov_se(x)
    d = x.shape[1]
    if y is not None:
        check_points(y, "y")
        if y.shape[1] != d:
            raise ValueError(
                f"x and y must have the same number of columns, got {d} and {y.shape[1]}"
            )
        my, cy, sy, scy = mean_cov_se(y)
        se_mean, se_cov = torch.sqrt(sx**2 + sy**2), torch.sqrt(scx**2 + scy**2)
        dm, dc = mx - my, cx - cy
    else:
        mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        if mean.shape != (d,) or cov.shape != (d, d):
            raise ValueError(
                f"mean must have shape ({d},) and cov ({d}, {d}), got {tuple(mean.shape)} and {tuple(cov.shape)}"
            )
        se_mean, se_cov = sx, scx
        dm, dc = mx - mean, cx - cov
    return MomentGap(dm / se_mean, dc / se_cov, se_mean, se_cov)
