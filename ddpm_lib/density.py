"""Exact densities of the toy data laws, their entropy and the ideal denoiser (chapters 4 to 6).

Each toy law is a curve blurred by Gaussian noise: a point is c(u) + σ n with u
uniform on [0, 1] and n ~ N(0, I). Its density is the continuous mixture
p(x) = ∫_0^1 N(x; c(u), σ² I) du, which the midpoint rule turns into a mixture
of K Gaussians at the nodes u_j = (j + ½)/K. With nodes spaced far below σ
along the curve, the quadrature error is negligible (tests check it against
Monte Carlo). Everything is then exact and cheap: q(x_t) is the same mixture
noised (:meth:`GaussianMixture.noised`), and so is the best possible noise
predictor E[ε | x_t] = −√(1−ᾱ_t) ∇ log q(x_t).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ._checks import check_points, check_steps
from .data import DATASETS, NOISE, GaussianMixture, standardisation
from .schedules import Schedule, check_schedule

#: Quadrature nodes per data set, spaced about σ/5 along the curve (see :func:`toy_law`).
NODES = {"swiss_roll": 1000, "moons": 2 * 300, "s_curve": 600}


def _curve(name: str, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes c(u_j) of the raw (unstandardised) curve and their weights."""
    u = (np.arange(K) + 0.5) / K
    if name == "swiss_roll":  # scikit-learn: t = 1.5π(1 + 2u), (t cos t, t sin t)
        t = 1.5 * math.pi * (1 + 2 * u)
        pts = np.stack([t * np.cos(t), t * np.sin(t)], 1)
    elif name == "s_curve":  # scikit-learn: t = 3π(u − ½), (sin t, sign(t)(cos t − 1))
        t = 3 * math.pi * (u - 0.5)
        pts = np.stack([np.sin(t), np.sign(t) * (np.cos(t) - 1)], 1)
    elif (
        name == "moons"
    ):  # two half circles, each with probability ½ (see data._raw_moons)
        theta = math.pi * (np.arange(K // 2) + 0.5) / (K // 2)
        upper = np.stack([np.cos(theta), np.sin(theta)], 1)
        lower = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], 1)
        pts = np.concatenate([upper, lower])
    else:
        raise ValueError(
            f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}"
        )
    return pts, np.full(len(pts), 1.0 / len(pts))


@lru_cache(maxsize=None)
def toy_law(name: str, nodes: int | None = None) -> GaussianMixture:
    """The exact law of ``sample_data(name, ...)`` (standardised) as a Gaussian mixture along its curve.

    Node spacing h along the curve, in raw units: Swiss roll ≈ 0.09 (σ = 0.5), moons
    ≈ 0.010 (σ = 0.05), S-curve ≈ 0.016 (σ = 0.1). For a Gaussian kernel the midpoint
    rule's error away from the curve's ends decays like exp(−2π²σ²/h²), so h ≈ σ/5
    is already exact to double precision there; near the two ends it is O(h²/σ²).
    """
    K = nodes or NODES.get(name, 0)
    pts, w = _curve(name, K)
    mean, std = standardisation(name)
    means = (pts - mean) / std
    stds = np.broadcast_to(NOISE[name] / std, means.shape)
    return GaussianMixture(
        torch.from_numpy(means),
        torch.from_numpy(np.ascontiguousarray(stds)),
        torch.from_numpy(w),
    )


def density_grid(law: GaussianMixture, per_sigma: int = 3, margin: float = 8.0):
    """A square 2D grid covering every component out to ``margin`` standard deviations.

    Spacing h = (smallest std)/``per_sigma``. Returns (points of shape (m, 2), h).
    """
    if law.d != 2:
        raise ValueError(f"the grid is 2D; this mixture has d = {law.d}")
    h = law.stds.min().item() / per_sigma
    lo = (law.means - margin * law.stds).min(0).values
    hi = (law.means + margin * law.stds).max(0).values
    axes = [
        torch.arange(lo[i].item(), hi[i].item() + h, h, dtype=torch.float64)
        for i in range(2)
    ]
    return torch.cartesian_prod(*axes), h


def entropy(law: GaussianMixture, per_sigma: int = 3, margin: float = 8.0) -> float:
    """Differential entropy H = −∫ p log p of a 2D mixture, in nats, by quadrature.   (eq. 5.10)

    A Riemann sum on :func:`density_grid`. p is smooth on the scale of its smallest
    standard deviation and vanishes at the grid's edges, so the sum converges
    exponentially fast: at 3 points per σ it agrees with 5 to ~1e-12 nats on the toy
    laws (tests check this, and compare with Monte Carlo).
    """
    grid, h = density_grid(law, per_sigma, margin)
    logp = law.log_prob(grid)
    return float(-(logp.exp() * logp).sum() * h * h)


def shared_variance(law: GaussianMixture) -> torch.Tensor | None:
    """The diagonal covariance S (shape (d,)) shared by every component of ``law``, or None if they differ."""
    var = law.stds**2
    if not torch.allclose(var, var[:1].expand_as(var), rtol=1e-12, atol=0.0):
        return None
    return var[0]


def ideal_eps(
    law: GaussianMixture, sched: Schedule, dtype: torch.dtype = torch.float64
):
    """The best possible noise predictor for data from ``law``: E[ε | x_t] = −√(1−ᾱ_t) ∇log q(x_t).   (eq. 6.1)

    Returns a callable (x, t) -> ε̂ with x: (n, d) and t: (n,) steps in 1…T (or one step),
    usable wherever a trained model is (samplers, :func:`ddpm_lib.losses.nll_bound`). The
    result has the dtype and device of x.

    Fast path (chapters 5 and 6): when all K components share one diagonal covariance S,
    as in every :func:`toy_law`, so do the noised components of q(x_t): their means are
    μ_k = √ᾱ_t m_k and their covariance S_t = ᾱ_t S + (1 − ᾱ_t) I. Then

        log w_k N(x; μ_k, S_t) = c(x) + log w_k + xᵀ S_t⁻¹ μ_k − ½ μ_kᵀ S_t⁻¹ μ_k,

    where c(x) is the same for every k and cancels in the responsibilities r_k(x): they are a
    softmax of an *affine* function of x, one (n, d) × (d, K) product, and

        ∇ log q(x_t) = S_t⁻¹ (Σ_k r_k μ_k − x_t).

    ``dtype`` is the precision of those (n, K) responsibilities: float32 halves the cost and
    changes ε̂ by less than 1e-4 on the toy laws, far below anything a bound in nats can see.
    Otherwise (components with different covariances) every Gaussian is evaluated at every
    point (:meth:`GaussianMixture.score` of the noised mixture), in float64.
    """
    if not isinstance(law, GaussianMixture):
        raise TypeError(
            f"law must be a GaussianMixture (e.g. toy_law('moons')), got {type(law).__name__}"
        )
    check_schedule(sched)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    var0 = shared_variance(law)
    step_eps = (
        _general_step(law, sched)
        if var0 is None
        else _shared_step(law, sched, var0, dtype)
    )

    def eps(x: torch.Tensor, t) -> torch.Tensor:
        check_points(x, "x")
        if x.shape[1] != law.d:
            raise ValueError(
                f"x must have d = {law.d} coordinates (the law's), got shape {tuple(x.shape)}"
            )
        t = sched.check_t(check_steps(t, x))
        out = torch.empty_like(x)
        for step in t.unique().tolist():
            rows = t == step
            out[rows] = step_eps(x[rows], step).to(device=x.device, dtype=x.dtype)
        return out

    return eps


def _shared_step(
    law: GaussianMixture, sched: Schedule, var0: torch.Tensor, dtype: torch.dtype
):
    """ε̂ at one step by the affine softmax (the fast path of :func:`ideal_eps`)."""
    log_w = law.weights.log()
    cache = {}

    def params(step: int):
        if step not in cache:
            ab = sched.alpha_bar[step].item()
            mu = math.sqrt(ab) * law.means  # (K, d): means of the noised components
            var = ab * var0 + (1 - ab)  # (d,): their shared covariance S_t
            slope = (mu / var).T.contiguous()  # (d, K): x ↦ xᵀ S_t⁻¹ μ_k
            offset = log_w - 0.5 * (mu**2 / var).sum(1)  # (K,)
            cache[step] = (
                slope.to(dtype),
                offset.to(dtype),
                mu.T.contiguous().to(dtype),
                var,
                math.sqrt(1 - ab),
            )
        return cache[step]

    def step_eps(x: torch.Tensor, step: int) -> torch.Tensor:
        slope, offset, mu_t, var, noise = params(step)
        xr = x.detach().cpu().double()
        r = torch.softmax(
            torch.addmm(offset, xr.to(dtype), slope), dim=1
        )  # (n_rows, K) responsibilities
        mean = (mu_t @ r.T).T.double()  # Σ_k r_k μ_k, (n_rows, d)
        return noise * (xr - mean) / var

    return step_eps


def _general_step(law: GaussianMixture, sched: Schedule):
    """ε̂ at one step from the score of the noised mixture, every component evaluated."""
    noised = {}

    def step_eps(x: torch.Tensor, step: int) -> torch.Tensor:
        if step not in noised:
            noised[step] = law.noised(sched.alpha_bar[step].item())
        xr = x.detach().cpu()
        return -(1 - sched.alpha_bar[step]).sqrt().to(xr.dtype) * noised[step].score(xr)

    return step_eps
