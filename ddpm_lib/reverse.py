"""The reverse process: the posterior q(x_{t−1} | x_t, x_0) and p_θ(x_{t−1} | x_t) (chapter 4)."""

from __future__ import annotations

import torch

from ._checks import check_generator, check_like, check_points, check_steps, randn_like
from .schedules import Schedule, check_schedule

#: Names of the reverse-process variance choices σ_t² (chapter 4, and
#: Nichol & Dhariwal 2021 for "learned").
VARIANCES = ("beta", "beta_tilde", "learned")


def posterior_mean_variance(x0: torch.Tensor, xt: torch.Tensor, t, sched: Schedule):
    """Mean μ̃_t(x_t, x_0) and variance β̃_t of q(x_{t−1} | x_t, x_0).   (eqs. 4.2, 4.3)

        μ̃_t = √ᾱ_{t−1} β_t / (1−ᾱ_t) · x_0 + √α_t (1−ᾱ_{t−1}) / (1−ᾱ_t) · x_t
        β̃_t = (1−ᾱ_{t−1}) / (1−ᾱ_t) · β_t

    Args:
        x0, xt: shape (n, d); t: steps in 1…T, shape (n,) or an int.
    Returns:
        (mean of shape (n, d), variance of shape (n, 1)).
    """
    check_points(xt, "xt")
    check_like(x0, xt, "x0", "xt")
    check_schedule(sched)
    t = sched.check_t(check_steps(t, xt))
    mean = (
        sched.at("posterior_mean_coef_x0", t, xt) * x0
        + sched.at("posterior_mean_coef_xt", t, xt) * xt
    )
    return mean, sched.at("posterior_variance", t, xt)


def predict_x0_from_eps(
    xt: torch.Tensor, t, eps: torch.Tensor, sched: Schedule
) -> torch.Tensor:
    """x̂_0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t: eq. 2.3 solved for x_0.   (eq. 4.4)"""
    check_points(xt, "xt")
    check_like(eps, xt, "eps", "xt")
    check_schedule(sched)
    t = sched.check_t(check_steps(t, xt))
    ab = sched.at("alpha_bar", t, xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def mean_from_eps(
    xt: torch.Tensor, t, eps: torch.Tensor, sched: Schedule
) -> torch.Tensor:
    """μ_θ(x_t, t) = (x_t − β_t / √(1−ᾱ_t) · ε_θ) / √α_t.   (eq. 4.5; Ho et al. 2020, eq. 11)

    Note the *bar* in √(1−ᾱ_t): it is the noise level of x_t, not of one step.
    """
    check_points(xt, "xt")
    check_like(eps, xt, "eps", "xt")
    check_schedule(sched)
    t = sched.check_t(check_steps(t, xt))
    beta = sched.at("betas", t, xt)
    ab = sched.at("alpha_bar", t, xt)
    return (xt - beta / (1 - ab).sqrt() * eps) / sched.at("alphas", t, xt).sqrt()


def check_variance(variance) -> str:
    """Require one of :data:`VARIANCES`."""
    if variance not in VARIANCES:
        raise ValueError(
            f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}"
        )
    return variance


def log_variance(
    t, sched: Schedule, variance: str, nu: torch.Tensor | None = None, like=None
) -> torch.Tensor:
    """log σ_t² of p_θ(x_{t−1} | x_t), shape (n, 1) (or (n, d) for "learned").

    variance:
        "beta":       σ_t² = β_t (the upper end of the learned range; exact for N(0, I)
                      data, and above the best variance for data of variance ≤ 1 per
                      coordinate on average, chapter 9).
        "beta_tilde": σ_t² = β̃_t (the lower end, below the best variance for all data;
                      β̃_1 = 0, so t = 1 gets β̃_2 in the log: sampling never uses it,
                      the last step adds no noise, but the bound's decoder term and the
                      learned range at t = 1 do).
        "learned":    log σ_t² = κ log β_t + (1 − κ) log β̃_t with κ = (ν + 1)/2 from the
                      model's second output ν ∈ [−1, 1] (``nu``); κ is what Nichol &
                      Dhariwal 2021 (eq. 15) write v, a letter the book keeps for
                      chapter 8's v-prediction.
    """
    check_variance(variance)
    check_schedule(sched)
    if like is None:
        like = (
            nu
            if isinstance(nu, torch.Tensor)
            else torch.zeros(
                1,
                dtype=torch.float32,
                device=t.device if isinstance(t, torch.Tensor) else None,
            )
        )
    t = sched.check_t(t).to(like.device)
    log_beta = sched.at("betas", t, like).log()
    log_beta_tilde = sched.at("posterior_variance_clipped", t, like).log()
    if variance == "beta":
        return log_beta
    if variance == "beta_tilde":
        return log_beta_tilde
    if nu is None:
        raise ValueError("variance='learned' needs the model's variance output nu")
    if not isinstance(nu, torch.Tensor):
        raise TypeError(
            f"nu must be a torch.Tensor of values in [−1, 1], got {type(nu).__name__}"
        )
    if nu.numel() and nu.device.type != "meta":
        nu_min, nu_max = nu.aminmax()
        if not (nu_min >= -1 and nu_max <= 1):
            raise ValueError(
                f"nu (the model's variance output) must lie in [−1, 1], got values from "
                f"{nu_min.item():.4g} to {nu_max.item():.4g}"
            )
    kappa = (nu + 1) / 2
    return kappa * log_beta + (1 - kappa) * log_beta_tilde


def split_output(out: torch.Tensor, d: int):
    """Split a model output into (ε, ν): shape (n, d) gives (ε, None); (n, 2d) gives both."""
    if out.shape[-1] == d:
        return out, None
    if out.shape[-1] == 2 * d:
        return out[:, :d], out[:, d:]
    raise ValueError(
        f"model output must have d = {d} or 2d = {2 * d} columns, got {out.shape[-1]}"
    )


def p_step(
    xt: torch.Tensor,
    t: int,
    model_out: torch.Tensor,
    sched: Schedule,
    variance: str = "beta",
    generator=None,
) -> torch.Tensor:
    """One ancestral step x_{t−1} = μ_θ(x_t, t) + σ_t z, z ~ N(0, I).   (eq. 4.6; Ho et al. 2020, Alg. 2)

    At t = 1 the step returns μ_θ alone: x_0 is the model's best guess, and noise
    added there would only blur the samples.

    Args:
        xt: shape (n, d); t: steps in 1…T, shape (n,) or a single int; model_out: ε_θ(x_t, t),
        shape (n, d), or (n, 2d) for variance="learned".
    """
    check_points(xt, "xt")
    check_schedule(sched)
    check_variance(variance)
    check_generator(generator)
    if not isinstance(model_out, torch.Tensor):
        raise TypeError(
            f"model_out must be a torch.Tensor of shape (n, d) or (n, 2d), got {type(model_out).__name__}"
        )
    eps, nu = split_output(model_out, xt.shape[1])
    tt = sched.check_t(check_steps(t, xt))
    mean = mean_from_eps(xt, tt, eps.to(xt.dtype), sched)
    if (
        (t == 1)
        if isinstance(t, int)
        else (tt.device.type != "meta" and bool((tt == 1).all()))
    ):
        return mean
    log_var = log_variance(tt, sched, variance, nu, like=xt)
    z = randn_like(xt, generator)
    return torch.where(tt[:, None] == 1, mean, mean + (0.5 * log_var).exp() * z)
