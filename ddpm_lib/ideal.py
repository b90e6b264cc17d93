"""The ideal denoiser of a toy law, fast enough to sweep T (chapter 5).

:func:`ddpm_lib.density.ideal_eps` evaluates every Gaussian of the mixture at every
point, an (n, K, d) array of quadratic forms per step. When all K components
share one diagonal covariance S, as in every :func:`~ddpm_lib.density.toy_law`
(the same blur σ along the whole curve), so do the noised components of q(x_t):
their means are √ᾱ_t m_k and their covariance S_t = ᾱ_t S + (1 − ᾱ_t) I. Then

    log w_k N(x; √ᾱ_t m_k, S_t) = c(x) + log w_k + xᵀ S_t⁻¹ μ_k − ½ μ_kᵀ S_t⁻¹ μ_k,   μ_k = √ᾱ_t m_k,

where c(x) is the same for every k and cancels in the responsibilities r_k(x).
They are a softmax of an *affine* function of x, one (n, d) × (d, K) product, and

    ∇ log q(x_t) = S_t⁻¹ (Σ_k r_k μ_k − x_t),      E[ε | x_t] = −√(1 − ᾱ_t) ∇ log q(x_t).

Same numbers as :func:`~ddpm_lib.density.ideal_eps` (tests check it, and check both
against Gaussian conditioning component by component), at a fraction of the cost:
enough to evaluate the whole bound at T = 1000 in seconds.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_points
from .data import GaussianMixture
from .schedules import Schedule


def shared_variance(law: GaussianMixture) -> torch.Tensor:
    """The diagonal covariance S (shape (d,)) shared by every component; ValueError if they differ."""
    var = law.stds**2
    if not torch.allclose(var, var[:1].expand_as(var), rtol=1e-12, atol=0.0):
        raise ValueError("the components of this mixture do not share one covariance; "
                         "use ddpm_lib.density.ideal_eps instead")
    return var[0]


def ideal_eps_shared(law: GaussianMixture, sched: Schedule, dtype: torch.dtype = torch.float64):
    """E[ε | x_t] for data from ``law``, whose components share one covariance.   (eq. 6.1)

    Returns a callable (x, t) -> ε̂ with x: (n, d) and t: (n,) steps in 1…T (or one
    step), usable wherever a trained model is (samplers, :func:`ddpm_lib.losses.nll_bound`).
    The result has the dtype of x. ``dtype`` is the precision of the (n, K) responsibilities:
    float32 halves the cost, and changes ε̂ by less than 1e-4 on the toy laws (tests check it),
    far below anything a bound in nats can see.
    """
    var0 = shared_variance(law)
    log_w = law.weights.log()
    cache = {}

    def params(step: int):
        if step not in cache:
            ab = sched.alpha_bar[step].item()
            mu = math.sqrt(ab) * law.means            # (K, d): means of the noised components
            var = ab * var0 + (1 - ab)                 # (d,): their shared covariance S_t
            slope = (mu / var).T.contiguous()          # (d, K): x ↦ xᵀ S_t⁻¹ μ_k
            offset = log_w - 0.5 * (mu**2 / var).sum(1)  # (K,)
            cache[step] = (slope.to(dtype), offset.to(dtype), mu.T.contiguous().to(dtype), var, math.sqrt(1 - ab))
        return cache[step]

    def eps(x: torch.Tensor, t) -> torch.Tensor:
        check_points(x, "x")
        t = sched.check_t(torch.as_tensor(t).expand(x.shape[0]))
        out = torch.empty_like(x)
        for step in t.unique().tolist():
            slope, offset, mu_t, var, noise = params(step)
            rows = t == step
            xr = x[rows].double()
            r = torch.softmax(torch.addmm(offset, xr.to(dtype), slope), dim=1)  # (n_rows, K) responsibilities
            mean = (mu_t @ r.T).T.double()                                     # Σ_k r_k μ_k, (n_rows, d)
            out[rows] = (noise * (xr - mean) / var).to(x.dtype)
        return out

    return eps
