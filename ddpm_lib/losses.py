"""Training losses: L_simple and the terms of the variational bound (chapter 5).

All terms are in nats and summed over the d coordinates of a point.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_count, check_generator, check_points, check_steps, randn_like
from .forward import q_sample
from .reverse import (
    check_variance,
    log_variance,
    mean_from_eps,
    posterior_mean_variance,
    split_output,
)
from .schedules import Schedule, check_schedule


def _check_model(model) -> None:
    if not callable(model):
        raise TypeError(
            f"model must be callable as model(x, t) -> ε̂, got {type(model).__name__}"
        )


def sample_t(n: int, sched: Schedule, generator=None, device=None) -> torch.Tensor:
    """Steps t ~ Uniform{1, …, T}, shape (n,), drawn on the generator's device and moved to ``device``."""
    check_count(n, "n")
    check_schedule(sched)
    check_generator(generator)
    t = torch.randint(
        1,
        sched.T + 1,
        (n,),
        generator=generator,
        device=generator.device if generator is not None else device,
    )
    return t if device is None else t.to(device)


def l_simple(model, x0: torch.Tensor, sched: Schedule, generator=None) -> torch.Tensor:
    """L_simple = E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖².   (eq. 5.8; Ho et al. 2020, eq. 14)

    A Monte Carlo estimate over the batch x0 (n, d): one t and one ε per point.
    Returns a scalar (it is minimised; there is no minus sign).
    """
    check_points(x0, "x0")
    _check_model(model)
    t = sample_t(x0.shape[0], sched, generator, x0.device)
    eps = randn_like(x0, generator)
    eps_hat, _ = split_output(model(q_sample(x0, t, sched, noise=eps), t), x0.shape[1])
    return ((eps - eps_hat) ** 2).sum(dim=1).mean()


def gaussian_kl(mean1, log_var1, mean2, log_var2) -> torch.Tensor:
    """KL(N(mean1, e^{log_var1}) ‖ N(mean2, e^{log_var2})) per coordinate (broadcasts).   (eq. 5.5)

    KL = ½ [log σ₂² − log σ₁² + (σ₁² + (μ₁ − μ₂)²) / σ₂² − 1]
    """
    return 0.5 * (
        log_var2
        - log_var1
        + (log_var1.exp() + (mean1 - mean2) ** 2) / log_var2.exp()
        - 1
    )


def gaussian_nll(x, mean, log_var) -> torch.Tensor:
    """−log N(x; mean, e^{log_var}) per coordinate (broadcasts)."""
    return 0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 / log_var.exp())


def prior_kl(x0: torch.Tensor, sched: Schedule) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) ‖ N(0, I)), shape (n,). Small only if ᾱ_T ≈ 0.   (eq. 5.4)"""
    check_points(x0, "x0")
    check_schedule(sched)
    ab = sched.alpha_bar[-1].to(x0.dtype).to(x0.device)
    mean = ab.sqrt() * x0
    log_var = torch.log1p(-ab).expand_as(x0)
    return gaussian_kl(mean, log_var, torch.zeros_like(x0), torch.zeros_like(x0)).sum(
        dim=1
    )


def vlb_term(
    model,
    x0: torch.Tensor,
    t: torch.Tensor,
    sched: Schedule,
    variance: str = "beta",
    generator=None,
) -> torch.Tensor:
    """One term of the bound per point, shape (n,).   (eq. 5.4)

    For t ≥ 2: L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)), with x_t ~ q(x_t | x_0).
    For t = 1: L_0 = −log p_θ(x_0 | x_1), a continuous Gaussian decoder
    N(x_0; μ_θ(x_1, 1), σ_1²) (2D data are continuous, so the 8-bit discretised
    decoder of image DDPMs does not apply). With variance="beta_tilde", σ_1² uses
    the clipped β̃_2, as in :func:`ddpm_lib.reverse.log_variance`.
    """
    check_points(x0, "x0")
    _check_model(model)
    check_schedule(sched)
    check_variance(variance)
    t = sched.check_t(check_steps(t, x0))
    xt = q_sample(x0, t, sched, generator=generator)
    eps_hat, nu = split_output(model(xt, t), x0.shape[1])
    mean = mean_from_eps(xt, t, eps_hat, sched)
    log_var = log_variance(t, sched, variance, nu, like=x0).expand_as(x0)
    true_mean, true_var = posterior_mean_variance(x0, xt, t, sched)
    safe_var = torch.where(t[:, None] > 1, true_var, torch.ones_like(true_var))
    kl = gaussian_kl(true_mean, safe_var.log().expand_as(x0), mean, log_var).sum(dim=1)
    nll = gaussian_nll(x0, mean, log_var).sum(dim=1)
    return torch.where(t > 1, kl, nll)


@torch.no_grad()
def nll_bound(
    model, x0: torch.Tensor, sched: Schedule, variance: str = "beta", generator=None
) -> torch.Tensor:
    """The variational bound on −log p_θ(x_0) in nats, per point, shape (n,).   (eq. 5.3)

        L = L_T + Σ_{t=2}^{T} L_{t−1} + L_0  ≥  −log p_θ(x_0)

    Every term is evaluated (no sampling over t); each uses one draw of x_t.
    """
    check_points(x0, "x0")
    _check_model(model)
    check_variance(variance)
    total = prior_kl(x0, sched)
    for step in range(1, sched.T + 1):
        t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
        total = total + vlb_term(model, x0, t, sched, variance, generator)
    return total


def vlb_weights(sched: Schedule, variance: str = "beta") -> torch.Tensor:
    """λ_t with L_{t−1} = λ_t ‖ε − ε_θ‖² + C_t for fixed σ_t², shape (T + 1,).   (eq. 5.7; Ho et al. 2020, eq. 12)

        λ_t = β_t² / (2 σ_t² α_t (1 − ᾱ_t))    for t ≥ 2,

    and C_t = (d/2)(log(σ_t²/β̃_t) + β̃_t/σ_t² − 1) does not depend on θ (0 when σ_t² = β̃_t).

    L_simple sets every λ_t to 1. Entry 0 is unused (0) and entry 1, the decoder
    term, is not a KL: it gets the same formula with σ_1² as the decoder variance.
    """
    check_schedule(sched)
    t = torch.arange(1, sched.T + 1)
    var = (
        log_variance(t, sched, variance, like=torch.zeros(1, dtype=torch.float64))
        .exp()
        .squeeze(-1)
    )
    lam = sched.betas[1:] ** 2 / (
        2 * var * sched.alphas[1:] * (1 - sched.alpha_bar[1:])
    )
    return torch.cat([torch.zeros(1, dtype=torch.float64), lam])


def l_vlb(
    model, x0: torch.Tensor, sched: Schedule, generator=None, variance: str = "beta"
) -> torch.Tensor:
    """A one-sample estimate of the whole bound, L_T + T · L_{t−1} with t ~ Uniform{1…T}.   (eq. 5.3)

    Unbiased for E[L_T + Σ_t L_{t−1}] (per point, nats); train with it in place of
    :func:`l_simple` to minimise the bound itself. Returns a scalar.
    """
    check_points(x0, "x0")
    _check_model(model)
    t = sample_t(x0.shape[0], sched, generator, x0.device)
    terms = vlb_term(model, x0, t, sched, variance, generator)
    return (prior_kl(x0, sched) + sched.T * terms).mean()
