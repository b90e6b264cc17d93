"""The exact likelihood of a deterministic sampler, by change of variables (chapter 7).

A deterministic sampler is a chain of invertible maps x_T = y_0 → y_1 → … → y_S = x_0,
one per step of its grid, starting from p(x_T) = N(0, I). Its density at a point x_0 is

    log p(x_0) = log N(x_T; 0, I) − Σ_k log |det ∂y_{k+1}/∂y_k|,                (eq. 7.8)

with x_T found by undoing the steps one at a time, from x_0 back to x_T. Each step is
undone by Newton's method on y_{k+1} = step(y_k), whose 2×2 Jacobian autograd gives
exactly, damped where a full step would overshoot; the Jacobian at the solution is the one
in eq. 7.8. Running the sampler forward from the recovered x_T must give back x_0: the
round-trip residual. A round trip shows that a preimage was found, not that it is unique:
eq. 7.8 is the density where the sampler is a bijection, and the sign of every step's
det J is returned as well (a negative one would show a fold).

The model must be differentiable in x (a network, or :func:`mixture_eps`; the ideal
denoiser of :func:`ddpm_lib.density.ideal_eps` detaches x and is not) and must treat the
points of a batch independently, so that d backward passes give every point's Jacobian.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_count, check_points, check_real, check_steps
from .data import GaussianMixture
from .density import shared_variance
from .models import check_model_schedule
from .schedules import check_schedule
from .solvers import _coef, _eps, ddim_mean_variance, heun_step, sample

#: The rules whose steps are maps of x_t alone (DPM-Solver++(2M) also uses the last step).
INVERTIBLE_RULES = ("ddim", "heun")


def mixture_eps(law: GaussianMixture, sched):
    """E[ε | x_t] for data from ``law``, differentiable in x (float64).   (eq. 6.1)

    The same function as :func:`ddpm_lib.density.ideal_eps` (its fast path, for mixtures
    whose components share one diagonal covariance S), written with torch operations only
    so that autograd can give its Jacobian: with μ_k = √ᾱ_t m_k and S_t = ᾱ_t S + 1 − ᾱ_t,
    r = softmax_k(log w_k + xᵀS_t⁻¹μ_k − ½ μ_kᵀS_t⁻¹μ_k) and ε* = σ̄_t (x − Σ_k r_k μ_k)/S_t.
    """
    if not isinstance(law, GaussianMixture):
        raise TypeError(f"law must be a GaussianMixture, got {type(law).__name__}")
    check_schedule(sched)
    var0 = shared_variance(law)
    if var0 is None:
        raise ValueError("law's components must share one diagonal covariance")
    log_w = law.weights.log()

    def at_step(x: torch.Tensor, step: int) -> torch.Tensor:
        ab = sched.alpha_bar[step].item()
        mu = (math.sqrt(ab) * law.means).to(x)  # (K, d)
        var = (ab * var0 + (1 - ab)).to(x)  # (d,)
        logits = (x / var) @ mu.T + (log_w.to(x) - 0.5 * (mu**2 / var).sum(1))
        mean = torch.softmax(logits, dim=1) @ mu
        return math.sqrt(1 - ab) * (x - mean) / var

    def eps(x: torch.Tensor, t) -> torch.Tensor:
        check_points(x, "x")
        t = sched.check_t(check_steps(t, x))
        steps = t.unique().tolist()
        if len(steps) == 1:
            return at_step(x, steps[0])
        out = torch.zeros_like(x)
        for step in steps:
            rows = t == step
            out = out.index_put((rows,), at_step(x[rows], step))
        return out

    return eps


def batched_jacobian(f, x: torch.Tensor):
    """(f(x), J) with J[i] = ∂f(x_i)/∂x_i of shape (n, d, d), for f acting on each row alone.

    d backward passes, one per output coordinate: the gradient of Σ_i f(x_i)_j with
    respect to x is row j of every point's Jacobian at once.
    """
    d = x.shape[1]
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
        rows = [
            torch.autograd.grad(y[:, j].sum(), x, retain_graph=j < d - 1)[0]
            for j in range(d)
        ]
    return y.detach(), torch.stack(rows, 1)


def step_map(model, sched, rule: str, t: int, s: int):
    """The deterministic step x_t ↦ x_s of ``rule`` ("ddim" with η = 0, or "heun") as a function of x_t."""
    if rule == "ddim":
        return lambda x: ddim_mean_variance(x, t, s, _eps(model, x, t), sched)[0]
    if rule == "heun":
        return lambda x: heun_step(model, x, t, s, sched)[0]
    raise ValueError(f"rule must be one of {', '.join(INVERTIBLE_RULES)}, got {rule!r}")


def invert_step(
    f, y: torch.Tensor, x: torch.Tensor, iters: int = 50, tol: float = 1e-10
):
    """Solve f(x) = y for x by damped Newton's method from the guess ``x``, per point.

    A full Newton step can overshoot where the map bends sharply (the last steps of a
    coarse sampler, which pull points onto the data's curve); each point's step is then
    halved until its residual |f(x) − y| decreases (backtracking). Stops when every point's
    residual is below tol·(1 + |y|).
    Returns (x, the Jacobian ∂f/∂x at x of shape (n, d, d), the residual per point (n,)).
    """
    scale = 1 + y.norm(dim=1)
    x = x.detach().clone()
    fx, J = batched_jacobian(f, x)
    J = J.clone()
    res = (fx - y).norm(dim=1)
    for _ in range(iters):
        # Only the points not yet solved are iterated: f acts on each row alone.
        todo = (res > tol * scale).nonzero().squeeze(1)
        if todo.numel() == 0:
            break
        xa, ya, ra = x[todo], y[todo], res[todo]
        delta = torch.linalg.solve(J[todo], (fx[todo] - ya).unsqueeze(-1)).squeeze(-1)
        step = torch.ones_like(ra)
        for _ in range(30):
            trial = (xa - step[:, None] * delta).detach()
            with torch.no_grad():
                trial_res = (f(trial) - ya).norm(dim=1)
            worse = ~(trial_res < ra)
            if not bool(worse.any()):
                break
            step = torch.where(worse, step / 2, step)
        fa, Ja = batched_jacobian(f, trial)
        x[todo], fx[todo], J[todo] = trial, fa, Ja
        res[todo] = (fa - ya).norm(dim=1)
    return x, J, res


def flow_log_likelihood(
    model,
    sched,
    x0: torch.Tensor,
    grid: list[int],
    rule: str = "ddim",
    iters: int = 50,
    tol: float = 1e-10,
) -> dict:
    """The exact log-density (nats) of the points ``x0`` under a deterministic sampler.   (eq. 7.8)

    ``grid`` is the sampler's T = t_0 > … > t_S = 0 (:func:`ddpm_lib.solvers.time_grid`),
    ``rule`` "ddim" (η = 0) or "heun". Work in float64 (x0 and the model's weights).

    Returns a dict with
        log_prob (n,): log p(x_0) of eq. 7.8;
        x_T (n, d): the starting points the steps were undone to;
        residual (n,): the largest Newton residual |step(y_k) − y_{k+1}| over the steps;
        round_trip (n,): |sampler(x_T) − x_0|, the sampler run forward from x_T;
        det_positive (n,): whether det ∂y_{k+1}/∂y_k > 0 at every step (no fold there).
    """
    check_model_schedule(model, sched)
    check_points(x0, "x0", finite=True)
    if rule not in INVERTIBLE_RULES:
        raise ValueError(
            f"rule must be one of {', '.join(INVERTIBLE_RULES)}, got {rule!r}"
        )
    iters = check_count(iters, "iters")
    tol = check_real(tol, "tol", 0.0, lo_open=True)
    n, d = x0.shape
    y = x0
    log_det = torch.zeros(n, dtype=x0.dtype, device=x0.device)
    # Whether every step's det J > 0 at the point: a round trip shows that a preimage
    # was found, not that it is the only one; a sign change would show a fold.
    positive = torch.ones(n, dtype=torch.bool, device=x0.device)
    worst = torch.zeros(n, dtype=x0.dtype, device=x0.device)
    for t, s in reversed(list(zip(grid, grid[1:]))):
        a_t, sig_t = _coef(sched, t, y)
        a_s, sig_s = _coef(sched, s, y)
        # First guess: one Euler step of dx̄/dζ = ε back from s to t, with ε taken at y.
        with torch.no_grad():
            guess = a_t * (y / a_s - (sig_s / a_s - sig_t / a_t) * _eps(model, y, t))
        x, J, res = invert_step(
            step_map(model, sched, rule, t, s), y, guess, iters, tol
        )
        sign, logabsdet = torch.linalg.slogdet(J)
        log_det = log_det + logabsdet
        positive = positive & (sign > 0)
        worst = torch.maximum(worst, res)
        y = x
    log_pT = -0.5 * (y**2).sum(1) - 0.5 * d * math.log(2 * math.pi)
    back, _ = sample(model, sched, y, grid, rule)
    return {
        "log_prob": log_pT - log_det,
        "x_T": y,
        "residual": worst,
        "round_trip": (back - x0).norm(dim=1),
        "det_positive": positive,
    }
