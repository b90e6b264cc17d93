"""The forward (noising) process q (chapters 1 and 2)."""

from __future__ import annotations

import torch

from ._checks import check_generator, check_like, check_points, check_steps, randn_like
from .schedules import Schedule, check_schedule


def _noise(x: torch.Tensor, noise, generator) -> torch.Tensor:
    if noise is None:
        return randn_like(x, check_generator(generator))
    check_like(noise, x, "noise")
    return noise.to(device=x.device, dtype=x.dtype)


def q_step(
    x_prev: torch.Tensor, t, sched: Schedule, noise=None, generator=None
) -> torch.Tensor:
    """One step of the chain, x_t ~ q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I).   (eq. 1.1)

    Args:
        x_prev: x_{t−1}, shape (n, d).
        t: steps in 1…T, shape (n,) or a single int.
        noise: optional ε ~ N(0, I) of shape (n, d); drawn from ``generator`` if None.
    Returns:
        x_t, shape (n, d).
    """
    check_points(x_prev, "x_prev")
    check_schedule(sched)
    t = sched.check_t(check_steps(t, x_prev))
    eps = _noise(x_prev, noise, generator)
    return (
        sched.at("alphas", t, x_prev).sqrt() * x_prev
        + sched.at("betas", t, x_prev).sqrt() * eps
    )


def q_sample(
    x0: torch.Tensor, t, sched: Schedule, noise=None, generator=None
) -> torch.Tensor:
    """Jump straight to step t: x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, i.e. q(x_t | x_0).   (eq. 2.3)

    Args:
        x0: data, shape (n, d).
        t: steps in 0…T, shape (n,) or a single int (t = 0 returns x0).
        noise: optional ε, shape (n, d).
    Returns:
        x_t, shape (n, d).
    """
    check_points(x0, "x0")
    check_schedule(sched)
    t = sched.check_t(check_steps(t, x0), allow_zero=True)
    eps = _noise(x0, noise, generator)
    ab = sched.at("alpha_bar", t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_trajectory(x0: torch.Tensor, sched: Schedule, generator=None) -> torch.Tensor:
    """Run the whole chain x_0 → x_1 → … → x_T with :func:`q_step`.   (eq. 1.2)

    Returns:
        tensor of shape (T + 1, n, d); entry t is x_t (entry 0 is x0).
    """
    check_points(x0, "x0")
    check_schedule(sched)
    check_generator(generator)
    xs = [x0]
    for t in range(1, sched.T + 1):
        xs.append(q_step(xs[-1], t, sched, generator=generator))
    return torch.stack(xs)
