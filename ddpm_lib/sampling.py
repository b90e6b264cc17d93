"""Samplers: ancestral DDPM (chapter 4) and DDIM (Song et al. 2021), which chapter 6 uses and chapter 7 derives.

``model`` is any callable ``model(x, t) -> ε̂`` with x: (n, d) and t: (n,) integer
steps; a trained :class:`~ddpm_lib.models.MLPDenoiser`, or an exact ε-predictor such as
:func:`ddpm_lib.density.ideal_eps`. A model that carries the schedule it was trained with
(``model.schedule``) is refused with any other schedule.

Device and dtype: the chain runs on the device and in the dtype of ``x_T`` if given,
else of the model's weights (CPU, float32 for a closure without weights).
"""

from __future__ import annotations

import torch

from ._checks import check_count, check_generator, check_real, model_place, randn_like
from .models import check_model_schedule
from .reverse import check_variance, p_step, predict_x0_from_eps, split_output
from .schedules import Schedule


def _start(model, n, d: int, generator, x_T) -> torch.Tensor:
    n = check_count(n, "n (the number of samples)")
    check_count(d, "d")
    check_generator(generator)
    if x_T is None:
        device, dtype = model_place(model)
        return randn_like(torch.empty((n, d), device=device, dtype=dtype), generator)
    if not isinstance(x_T, torch.Tensor) or not x_T.dtype.is_floating_point:
        raise TypeError(
            f"x_T must be a floating-point torch.Tensor of shape (n, d), got {type(x_T).__name__}"
        )
    if tuple(x_T.shape) != (n, d):
        raise ValueError(
            f"x_T must have shape (n, d) = ({n}, {d}), got {tuple(x_T.shape)}"
        )
    return x_T


@torch.no_grad()
def ddpm_sample(
    model,
    sched: Schedule,
    n: int,
    d: int = 2,
    variance: str = "beta",
    generator=None,
    return_trajectory: bool = False,
    x_T: torch.Tensor | None = None,
):
    """Ancestral sampling: x_T ~ N(0, I), then x_{t−1} ~ p_θ(x_{t−1} | x_t) for t = T, …, 1.   (Ho et al. 2020, Alg. 2)

    Returns:
        x_0 of shape (n, d); with ``return_trajectory``, also a (T + 1, n, d) tensor
        whose entry t is x_t (entry T is the starting noise, entry 0 the samples).
    ``x_T`` (n, d) replaces the starting noise, to run several samplers from the same start.
    """
    check_model_schedule(model, sched)
    check_variance(variance)
    x = _start(model, n, d, generator, x_T)
    traj = [x]
    for t in range(sched.T, 0, -1):
        x = p_step(
            x,
            t,
            model(x, torch.full((n,), t, dtype=torch.long, device=x.device)),
            sched,
            variance,
            generator,
        )
        traj.append(x)
    if return_trajectory:
        return x, torch.stack(traj[::-1])
    return x


def ddim_timesteps(sched: Schedule, steps: int) -> list[int]:
    """``steps`` evenly spaced steps T = τ_S > … > τ_1 ≥ 1 (then the chain ends at t = 0)."""
    if not isinstance(sched, Schedule):
        raise TypeError(
            f"sched must be a ddpm_lib Schedule, got {type(sched).__name__} {sched!r}"
        )
    if (
        not isinstance(steps, int)
        or isinstance(steps, bool)
        or not 1 <= steps <= sched.T
    ):
        raise ValueError(
            f"steps must be an integer from 1 to T = {sched.T}, got {steps!r}"
        )
    taus = (
        torch.linspace(sched.T, 0, steps + 1, dtype=torch.float64)[:-1].round().long()
    )
    return taus.tolist()


@torch.no_grad()
def ddim_sample(
    model,
    sched: Schedule,
    n: int,
    steps: int,
    eta: float = 0.0,
    d: int = 2,
    generator=None,
    return_trajectory: bool = False,
    x_T: torch.Tensor | None = None,
):
    """DDIM sampling over ``steps`` of the T steps (Song et al. 2021, eq. 12).

    From step t to the previous kept step s (ᾱ_s > ᾱ_t; s = 0 at the end, ᾱ_0 = 1):

        x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t
        σ² = η² (1−ᾱ_s)/(1−ᾱ_t) · (1 − ᾱ_t/ᾱ_s)
        x_s = √ᾱ_s x̂_0 + √(1−ᾱ_s−σ²) ε̂ + σ z

    η = 0 is deterministic given x_T; η = 1 with steps = T is ancestral DDPM with σ_t² = β̃_t.
    0 ≤ η ≤ 1: beyond 1, σ² could exceed 1−ᾱ_s and the step would leave the family with the
    marginals q(x_s | x_0) (chapter 7), so η > 1 is refused. Returns and ``x_T`` as in
    :func:`ddpm_sample` (the trajectory has steps + 1 entries).
    """
    check_model_schedule(model, sched)
    eta = check_real(eta, "eta", lo=0.0, hi=1.0)
    taus = ddim_timesteps(sched, steps)
    x = _start(model, n, d, generator, x_T)
    traj = [x]
    for i, t in enumerate(taus):
        s = taus[i + 1] if i + 1 < len(taus) else 0
        tt = torch.full((n,), t, dtype=torch.long, device=x.device)
        eps, _ = split_output(model(x, tt), d)
        x0_hat = predict_x0_from_eps(x, tt, eps.to(x.dtype), sched)
        ab_t, ab_s = sched.alpha_bar[t], sched.alpha_bar[s]
        var = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
        # In exact arithmetic 1−ᾱ_s−σ² ≥ 0 (equality at η = 1, s = 0); rounding can make it
        # a tiny negative number whose square root is NaN, so clamp it at zero.
        dir_coef = (1 - ab_s - var).clamp(min=0).sqrt()
        x = ab_s.sqrt().to(x.dtype) * x0_hat + dir_coef.to(x.dtype) * eps.to(x.dtype)
        if var > 0:
            x = x + var.sqrt().to(x.dtype) * randn_like(x, generator)
        traj.append(x)
    if return_trajectory:
        return x, torch.stack(traj[::-1])
    return x
