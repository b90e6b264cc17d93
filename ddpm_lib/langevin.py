"""Langevin dynamics: sampling with a score ∇_x log p(x) (chapter 3).

``score`` is any callable returning ∇_x log p at a batch of points, shape (n, d).
The exact score of a :class:`~ddpm_lib.data.GaussianMixture` (``gm.score``) and a
trained ε-network turned into a score by :func:`score_from_eps` both qualify.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

from ._checks import (
    check_generator,
    check_like,
    check_points,
    check_steps,
    model_place,
    randn_like,
)
from .reverse import predict_x0_from_eps, split_output
from .schedules import Schedule, check_schedule


def _check_step_size(step_size) -> float:
    if (
        isinstance(step_size, bool)
        or not isinstance(step_size, Real)
        or not math.isfinite(step_size)
        or step_size <= 0
    ):
        raise ValueError(
            f"step_size (ε) must be a finite number > 0, got {step_size!r}"
        )
    return float(step_size)


def _check_count(k, name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"{name} must be an integer ≥ 1, got {k!r}")
    return int(k)


def _check_sigmas(sigmas) -> torch.Tensor:
    s = torch.as_tensor(sigmas, dtype=torch.float64)
    if s.ndim != 1 or s.numel() < 1:
        raise ValueError(
            f"sigmas must be a 1-D sequence of L ≥ 1 noise levels, got shape {tuple(s.shape)}"
        )
    if not torch.all(torch.isfinite(s) & (s > 0)):
        raise ValueError(
            f"every noise level σ_i must be finite and > 0, got {s.tolist()[:5]}…"
        )
    if torch.any(s[1:] > s[:-1]):
        raise ValueError(
            "sigmas must be in decreasing order σ_1 ≥ σ_2 ≥ … ≥ σ_L (anneal from coarse to fine)"
        )
    return s


def langevin_step(
    score, x: torch.Tensor, step_size: float, generator=None
) -> torch.Tensor:
    """One step of the unadjusted Langevin algorithm.   (eq. 3.3; Welling & Teh 2011)

        x ← x + (ε/2) ∇_x log p(x) + √ε z,      z ~ N(0, I)

    Args:
        score: callable, x (n, d) -> ∇_x log p(x), shape (n, d).
        x: current points, shape (n, d).
        step_size: ε > 0.
    Returns:
        the new points, shape (n, d), in the dtype of x.
    """
    check_points(x, "x")
    eps = _check_step_size(step_size)
    g = score(x)
    check_like(g, x, "score(x)")
    z = randn_like(x, check_generator(generator))
    return x + 0.5 * eps * g.to(x.dtype) + math.sqrt(eps) * z


def langevin(
    score,
    x: torch.Tensor,
    step_size: float,
    n_steps: int,
    generator=None,
    return_trajectory: bool = False,
):
    """Run ``n_steps`` Langevin steps from x, one independent chain per row.   (eq. 3.3)

    For small ε and many steps the rows are (approximately) draws from p. For a
    finite ε the chain has its own stationary law, wider than p: on N(0, s²) the
    update is the AR(1) recursion x ← (1 − ε/(2s²)) x + √ε z, whose stationary
    variance is s² / (1 − ε/(4s²)), and which diverges for ε ≥ 4s² (eq. 3.7).

    Args:
        score: callable, x (n, d) -> ∇_x log p(x), shape (n, d).
        x: starting points, shape (n, d).
        step_size: ε > 0; n_steps: integer ≥ 1.
    Returns:
        the final points, shape (n, d); with ``return_trajectory``, also a tensor of shape
        (n_steps + 1, n, d) whose entry k is the chain after k steps (entry 0 is x).
    """
    check_points(x, "x")
    eps = _check_step_size(step_size)
    _check_count(n_steps, "n_steps")
    traj = [x]
    for _ in range(n_steps):
        x = langevin_step(score, x, eps, generator)
        if return_trajectory:
            traj.append(x)
    if return_trajectory:
        return x, torch.stack(traj)
    return x


def annealed_langevin(
    score,
    x: torch.Tensor,
    sigmas,
    step_size: float,
    n_steps_per_level: int,
    generator=None,
    return_trajectory: bool = False,
):
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1).   (eq. 3.9)

    For the noise levels σ_1 ≥ … ≥ σ_L, run ``n_steps_per_level`` Langevin steps on
    the smoothed density p_{σ_i}, with score ``score(x, i)`` (i = 0, …, L−1 indexes
    ``sigmas``) and step

        ε_i = ε · σ_i² / σ_L²,

    each level starting where the previous one stopped. ε is the step of the last,
    finest level; coarse levels take larger steps, which keeps ε_i/σ_i² fixed.

    Args:
        score: callable (x (n, d), i: int) -> ∇_x log p_{σ_i}(x), shape (n, d).
        x: starting points, shape (n, d) (e.g. draws of the coarsest p_{σ_1}).
        sigmas: the L noise levels, decreasing; step_size: ε > 0; n_steps_per_level ≥ 1.
    Returns:
        the final points, shape (n, d); with ``return_trajectory``, also a tensor of shape
        (L + 1, n, d) whose entry 0 is x and entry i + 1 the points after level i.
    """
    check_points(x, "x")
    s = _check_sigmas(sigmas)
    eps = _check_step_size(step_size)
    _check_count(n_steps_per_level, "n_steps_per_level")
    traj = [x]
    for i in range(len(s)):
        eps_i = eps * float((s[i] / s[-1]) ** 2)
        x = langevin(lambda y, i=i: score(y, i), x, eps_i, n_steps_per_level, generator)
        traj.append(x)
    if return_trajectory:
        return x, torch.stack(traj)
    return x


def score_from_eps(model, sched: Schedule):
    """Turn an ε-predictor into a score: s_θ(x_t, t) = −ε_θ(x_t, t) / √(1−ᾱ_t).   (eqs. 3.10–3.12)

    The score of q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I) at x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε is
    −ε/√(1−ᾱ_t); averaging over x_0 given x_t, the score of the marginal q(x_t) is
    −E[ε | x_t]/√(1−ᾱ_t), and E[ε | x_t] is what a network trained on L_simple estimates.

    Args:
        model: callable (x (n, d), t (n,)) -> ε̂ of shape (n, d), or (n, 2d) with a variance
            head (the extra columns are ignored).
    Returns:
        a callable score(x, t): x of shape (n, d), t in 1…T (an int or shape (n,)),
        returning shape (n, d). It runs the model without gradients.
    """

    check_schedule(sched)
    if not callable(model):
        raise TypeError(
            f"model must be callable as model(x, t) -> ε̂, got {type(model).__name__}"
        )

    def score(x: torch.Tensor, t) -> torch.Tensor:
        check_points(x, "x")
        tt = sched.check_t(check_steps(t, x))
        with torch.no_grad():
            eps, _ = split_output(model(x, tt), x.shape[1])
        return -eps / (1 - sched.at("alpha_bar", tt, x)).sqrt()

    return score


def _check_timesteps(sched: Schedule, timesteps) -> list[int]:
    if timesteps is None:
        return list(range(sched.T, 0, -1))
    ts = [int(t) for t in timesteps]
    if not ts or any(t != u for t, u in zip(ts, timesteps)):
        raise ValueError(
            f"timesteps must be a non-empty sequence of integer steps, got {timesteps!r}"
        )
    if min(ts) < 1 or max(ts) > sched.T:
        raise ValueError(
            f"timesteps must lie in 1…{sched.T} for this schedule, got {min(ts)} to {max(ts)}"
        )
    if any(b >= a for a, b in zip(ts, ts[1:])):
        raise ValueError("timesteps must be strictly decreasing (from noisy to clean)")
    return ts


@torch.no_grad()
def annealed_langevin_sample(
    model,
    sched: Schedule,
    n: int,
    step_size: float,
    n_steps_per_level: int,
    timesteps=None,
    d: int = 2,
    generator=None,
    x_T: torch.Tensor | None = None,
    denoise: bool = False,
    return_trajectory: bool = False,
):
    """Annealed Langevin over a schedule's noise levels, with a trained ε-model.   (eqs. 3.9, 3.12)

    Level t targets the marginal q(x_t), whose score is −ε_θ(x, t)/√(1−ᾱ_t)
    (:func:`score_from_eps`); its noise level is σ_t = √(1−ᾱ_t), so the step at
    level t is ε · (1−ᾱ_t)/(1−ᾱ_{t_L}) (:func:`annealed_langevin`). The levels are
    ``timesteps`` (strictly decreasing, default T, T−1, …, 1), and the chain starts
    from x_T ~ N(0, I) ≈ q(x_T).

    With ``denoise``, the last level is followed by one noise-free step to the
    posterior mean x̂_0 = (x − √(1−ᾱ_t) ε_θ(x, t)) / √ᾱ_t at the last level t (Tweedie's
    formula), which removes the last level's noise instead of leaving it in the samples.

    Returns:
        samples of shape (n, d); with ``return_trajectory``, also the (L + 1, n, d)
        trajectory of :func:`annealed_langevin` (entry 0 the start).
    """
    _check_count(n, "n (the number of samples)")
    _check_count(d, "d")
    check_schedule(sched)
    check_generator(generator)
    ts = _check_timesteps(sched, timesteps)
    if x_T is None:
        device, dtype = model_place(model)
        x_T = randn_like(torch.empty((n, d), device=device, dtype=dtype), generator)
    elif tuple(x_T.shape) != (n, d):
        raise ValueError(
            f"x_T must have shape (n, d) = ({n}, {d}), got {tuple(x_T.shape)}"
        )
    score = score_from_eps(model, sched)
    sigmas = (1 - sched.alpha_bar[ts]).sqrt()
    x, traj = annealed_langevin(
        lambda y, i: score(y, ts[i]),
        x_T,
        sigmas,
        step_size,
        n_steps_per_level,
        generator,
        return_trajectory=True,
    )
    if denoise:
        tt = torch.full((n,), ts[-1], dtype=torch.long, device=x.device)
        eps, _ = split_output(model(x, tt), d)
        x = predict_x0_from_eps(x, tt, eps, sched)
    if return_trajectory:
        return x, traj
    return x
