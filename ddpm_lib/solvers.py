"""Continuous time and the samplers that follow it: DDIM-η, the VP-SDE, the probability-flow
ODE, Heun and DPM-Solver++(2M), on a grid of steps (chapter 7).

Continuous time s ∈ [0, 1] is s = t/T. A rate schedule (chapter 1) has ᾱ(s) = exp(−∫_0^s b),
so the noise rate is b(s) = −d log ᾱ(s)/ds; the forward chain is then a discretisation of
the variance-preserving SDE (Song et al. 2021, "score-based SDEs")

    dx = −½ b(s) x ds + √b(s) dW,                                           (eq. 7.4)

whose reverse-time SDE and probability-flow ODE are, with ∇log q = −ε*/σ̄ and σ̄ = √(1−ᾱ),

    dx = [−½ b x + b ε/σ̄] ds + √b dW̄        (reverse SDE, run from s = 1 down to 0)   (eq. 7.5)
    dx/ds = −½ b (x − ε/σ̄)                    (probability-flow ODE)                    (eq. 7.6)

The samplers step between integer steps t > t' of a grid ``T = t_0 > t_1 > … > t_S = 0``,
so a network trained at integer steps is only ever evaluated there. In the variables
x̄ = x/√ᾱ and ζ = σ̄/√ᾱ = SNR^{−1/2} the probability-flow ODE is dx̄/dζ = ε(x, t)
(eq. 7.7): DDIM with η = 0 is Euler's method on it, Heun's method is its second-order
version (Karras et al. 2022), and DPM-Solver++(2M) integrates it exactly in the
log-SNR with x̂_0 extrapolated linearly from the last two steps (Lu et al. 2022).

Every function takes points x of shape (n, d); the arithmetic runs in x's dtype and on
x's device, the model is called with integer steps t of shape (n,).
"""

from __future__ import annotations

import math

import torch

from ._checks import (
    check_count,
    check_generator,
    check_points,
    check_real,
    randn_like,
)
from .models import check_model_schedule
from .reverse import split_output
from .sampling import ddim_timesteps
from .schedules import _integrated_rate, check_schedule

#: The spacings of :func:`time_grid`.
SPACINGS = ("uniform", "quadratic", "logsnr", "edm")
#: The step rules of :func:`sample`.
RULES = ("ddim", "heun", "dpmpp2m")
#: EDM's exponent for the spacing of the noise levels (Karras et al. 2022, eq. 5; their ρ,
#: while their noise level σ is our ζ).
EDM_RHO = 7.0


# ----------------------------------------------------------------------------------------
# Continuous time
# ----------------------------------------------------------------------------------------


def log_alpha_bar_continuous(sched, s: torch.Tensor) -> torch.Tensor:
    """log ᾱ(s) of a built-in schedule at continuous times s ∈ [0, 1] (float64).   (eq. 1.4)

    Rate schedules: −∫_0^s b; "cosine": log f(s)/f(0). A custom schedule has no
    continuous time and is refused.
    """
    check_schedule(sched)
    s = torch.as_tensor(s, dtype=torch.float64)
    if sched.name == "cosine":
        from .schedules import COSINE_S

        f = lambda u: torch.cos((u + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
        return torch.log(f(s) / f(torch.zeros((), dtype=torch.float64)))
    if sched.name not in ("constant", "linear", "quadratic", "sigmoid", "tanh"):
        raise ValueError(
            f"sched must be a built-in schedule with a continuous time, got {sched!r}"
        )
    return -_integrated_rate(sched.name, s)


def noise_rate(sched, s) -> torch.Tensor:
    """b(s) = −d log ᾱ(s)/ds at continuous times s (float64), by automatic differentiation.

    For a rate schedule this is its rate b(s) (notation.md); differentiating log ᾱ rather
    than typing each b keeps one source of truth for the schedules.
    """
    s = torch.as_tensor(s, dtype=torch.float64).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(log_alpha_bar_continuous(sched, s).sum(), s)
    return -grad


def _coef(sched, t, like: torch.Tensor):
    """(√ᾱ_t, σ̄_t = √(1−ᾱ_t)) at integer step t as 0-d tensors in like's dtype and device."""
    ab = sched.alpha_bar[t].to(dtype=like.dtype, device=like.device)
    return ab.sqrt(), (1 - ab).sqrt()


def sde_coefficients(x: torch.Tensor, s: float, sched):
    """The VP-SDE's drift −½ b(s) x and diffusion √b(s) at time s.   (eq. 7.4)"""
    check_points(x)
    s = check_real(s, "s", 0.0, 1.0)
    b = noise_rate(sched, s).to(dtype=x.dtype, device=x.device)
    return -0.5 * b * x, b.sqrt()


def reverse_sde_drift(
    x: torch.Tensor, t: int, eps: torch.Tensor, sched
) -> torch.Tensor:
    """The reverse-time SDE's drift −½ b x + b ε/σ̄ at step t (s = t/T), in ds.   (eq. 7.5)"""
    b = noise_rate(sched, t / sched.T).to(dtype=x.dtype, device=x.device)
    _, sig = _coef(sched, t, x)
    return -0.5 * b * x + b * eps / sig


def pf_ode_drift(x: torch.Tensor, t: int, eps: torch.Tensor, sched) -> torch.Tensor:
    """The probability-flow ODE's velocity dx/ds = −½ b (x − ε/σ̄) at step t (s = t/T).   (eq. 7.6)"""
    b = noise_rate(sched, t / sched.T).to(dtype=x.dtype, device=x.device)
    _, sig = _coef(sched, t, x)
    return -0.5 * b * (x - eps / sig)


def forward_sde(x0: torch.Tensor, sched, steps: int, generator=None) -> torch.Tensor:
    """Euler–Maruyama on the VP-SDE from s = 0 to 1 in ``steps`` equal steps.   (eq. 7.4)

    Returns the path, shape (steps + 1, n, d), entry k at s = k/steps.
    """
    check_points(x0, "x0")
    steps = check_count(steps, "steps")
    check_generator(generator)
    h = 1.0 / steps
    x, path = x0, [x0]
    for k in range(steps):
        drift, g = sde_coefficients(x, k * h, sched)
        x = x + drift * h + g * math.sqrt(h) * randn_like(x, generator)
        path.append(x)
    return torch.stack(path)


# ----------------------------------------------------------------------------------------
# Grids of steps
# ----------------------------------------------------------------------------------------


def time_grid(sched, steps: int, spacing: str = "uniform") -> list[int]:
    """Integer steps T = t_0 > t_1 > … > t_S = 0 for a sampler with S = ``steps`` steps.

    spacing:
        "uniform": t_k evenly spaced in t (as :func:`ddpm_lib.sampling.ddim_timesteps`).
        "quadratic": t_k = T (1 − k/S)², evenly spaced in √t: small steps near the data
                   (Song et al. 2021, DDIM, used such a grid on CIFAR-10).
        "logsnr":  t_0 … t_{S−1} evenly spaced in log SNR from step T to step 1 (Lu et al. 2022).
        "edm":     ζ = SNR^{−1/2} of t_0 … t_{S−1} evenly spaced in ζ^{1/7} from step T to
                   step 1 (Karras et al. 2022, eq. 5): small steps where the noise is small.
    The last step always goes to t = 0, the data. Each level is rounded to the nearest step
    (in log SNR); where rounding would repeat a step, the steps are pushed apart.
    """
    check_schedule(sched)
    uniform = ddim_timesteps(sched, steps) + [0]  # (also checks steps)
    if spacing not in SPACINGS:
        raise ValueError(
            f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}"
        )
    T = sched.T
    if spacing == "uniform" or steps == 1:
        return uniform
    if spacing == "quadratic":
        u = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        t = (T * u**2).round().long().tolist()
        for k in range(steps - 1, 0, -1):  # strictly decreasing, from the end
            t[k] = max(t[k], t[k + 1] + 1)
        return t
    log_snr = sched.snr[1:].log()  # steps 1…T, decreasing
    u = torch.linspace(
        0, 1, steps, dtype=torch.float64
    )  # S levels from step T to step 1
    if spacing == "logsnr":
        target = log_snr[-1] + u * (log_snr[0] - log_snr[-1])
    else:
        r_hi, r_lo = (-0.5 * log_snr[-1]).exp(), (-0.5 * log_snr[0]).exp()
        root = r_hi ** (1 / EDM_RHO) + u * (
            r_lo ** (1 / EDM_RHO) - r_hi ** (1 / EDM_RHO)
        )  # ζ^{1/7}, evenly spaced
        target = -2 * (root**EDM_RHO).log()
    t = (log_snr[None, :] - target[:, None]).abs().argmin(1) + 1  # nearest step
    t = t.tolist() + [0]
    for k in range(steps - 1, 0, -1):  # strictly decreasing, from the end
        t[k] = max(t[k], t[k + 1] + 1)
    for k in range(1, steps):  # and from the start (t_0 = T stays)
        t[k] = min(t[k], t[k - 1] - 1)
    return t


# ----------------------------------------------------------------------------------------
# One step of each rule
# ----------------------------------------------------------------------------------------


def ddim_sigma2(sched, t: int, s: int, eta: float) -> torch.Tensor:
    """σ_t²(η) = η² (1−ᾱ_s)/(1−ᾱ_t) (1 − ᾱ_t/ᾱ_s) of the step t → s < t.   (eq. 7.3; Song et al. 2021, eq. 16)

    η must lie in [0, 1]: then σ_t² ≤ 1 − ᾱ_s, which the family of eq. 7.2 needs to keep
    the marginals q(x_s | x_0); η > 1 is refused rather than silently leaving the family.
    """
    eta = check_real(eta, "eta", 0.0, 1.0)
    ab_t, ab_s = sched.alpha_bar[t], sched.alpha_bar[s]
    return eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)


def ddim_mean_variance(
    x: torch.Tensor, t: int, s: int, eps: torch.Tensor, sched, eta: float = 0.0
):
    """Mean and variance of the DDIM-η step from x_t to x_s (s < t).   (eq. 7.2)

        x̂_0 = (x_t − σ̄_t ε) / √ᾱ_t
        mean = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ_t²(η)) ε,   variance σ_t²(η)

    With s = t − 1 and η = 1 this is the posterior q(x_{t−1} | x_t, x̂_0) of chapter 4.
    """
    a_t, sig_t = _coef(sched, t, x)
    a_s, _ = _coef(sched, s, x)
    var = ddim_sigma2(sched, t, s, eta).to(dtype=x.dtype, device=x.device)
    x0_hat = (x - sig_t * eps) / a_t
    # 1 − ᾱ_s − σ² ≥ 0 for η ≤ 1; rounding at η = 1, s = 0 can make it −1e-17.
    direction = (1 - a_s**2 - var).clamp(min=0).sqrt()
    return a_s * x0_hat + direction * eps, var


def ddim_step(x, t: int, s: int, eps, sched, eta: float = 0.0, generator=None):
    """One DDIM-η step x_t → x_s: the mean of :func:`ddim_mean_variance` plus σ_t(η) z."""
    mean, var = ddim_mean_variance(x, t, s, eps, sched, eta)
    if var > 0:
        mean = mean + var.sqrt() * randn_like(x, generator)
    return mean


def _eps(model, x: torch.Tensor, t: int) -> torch.Tensor:
    out = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
    eps, _ = split_output(out, x.shape[1])
    return eps.to(x.dtype)


def heun_step(model, x: torch.Tensor, t: int, s: int, sched, eps=None):
    """One Heun step x_t → x_s on dx̄/dζ = ε (x̄ = x/√ᾱ, ζ = σ̄/√ᾱ).   (eq. 7.9; Karras et al. 2022, Alg. 1)

    The Euler (= DDIM) predictor x̄' = x̄_t + (ζ_s − ζ_t) ε_t, then the trapezoid
    x̄_s = x̄_t + (ζ_s − ζ_t)(ε_t + ε_s')/2 with ε_s' = ε(√ᾱ_s x̄', s). At s = 0 (ζ = 0,
    where no network is trained) the Euler step alone. Returns (x_s, network calls).
    ``eps`` = ε(x_t, t) if already known.
    """
    a_t, sig_t = _coef(sched, t, x)
    a_s, sig_s = _coef(sched, s, x)
    eps_t = _eps(model, x, t) if eps is None else eps
    calls = int(eps is None)
    dr = sig_s / a_s - sig_t / a_t
    xbar = x / a_t + dr * eps_t
    if s == 0:
        return a_s * xbar, calls
    eps_s = _eps(model, a_s * xbar, s)
    return a_s * (x / a_t + dr * 0.5 * (eps_t + eps_s)), calls + 1


def dpmpp2m_step(x, t: int, s: int, x0_hat, sched, prev=None):
    """One DPM-Solver++(2M) step x_t → x_s.   (eq. 7.10; Lu et al. 2022, Alg. 2)

    With ξ = ½ log(SNR_s/SNR_t) (``h`` in the code, as in the paper), the exact solution of
    the ODE for a constant x̂_0 is x_s = (σ̄_s/σ̄_t) x_t + √ᾱ_s (1 − e^{−ξ}) D. First order:
    D = x̂_0(x_t). Second order, with ``prev`` = (x̂_0 at the previous step, its ξ'):
    D = (1 + ξ/(2ξ')) x̂_0 − ξ/(2ξ') x̂_0,prev. The last step, to s = 0 (infinite SNR), is
    first order: x_0 = x̂_0. Second order needs steps small in log SNR: on a grid
    uniform in t, log SNR changes by O(1) between the last steps however many there are, so use
    the "logsnr" grid of :func:`time_grid` (tests/test_solvers.py measures both).
    """
    a_t, sig_t = _coef(sched, t, x)
    if s == 0:
        return x0_hat, math.inf
    a_s, sig_s = _coef(sched, s, x)
    h = (torch.log(a_s / sig_s) - torch.log(a_t / sig_t)).item()
    D = x0_hat
    if prev is not None:
        x0_prev, h_prev = prev
        r = h_prev / h
        D = (1 + 0.5 / r) * x0_hat - (0.5 / r) * x0_prev
    return sig_s / sig_t * x + a_s * (-math.expm1(-h)) * D, h


# ----------------------------------------------------------------------------------------
# One loop, three rules
# ----------------------------------------------------------------------------------------


def steps_for_nfe(rule: str, nfe: int) -> int:
    """The number of steps S whose network calls fit in ``nfe`` (every call counts).

    DDIM and DPM-Solver++(2M): one call per step, S = NFE. Heun: two per step but one at
    the last step (to t = 0), so 2S − 1 calls: S = ⌊(NFE + 1)/2⌋.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    nfe = check_count(nfe, "nfe")
    return (nfe + 1) // 2 if rule == "heun" else nfe


@torch.no_grad()
def sample(
    model,
    sched,
    x_T: torch.Tensor,
    grid: list[int],
    rule: str = "ddim",
    eta: float = 0.0,
    generator=None,
    return_trajectory: bool = False,
):
    """Run ``rule`` from x_T along ``grid`` (T = t_0 > … > t_S = 0); return x_0 and the calls.

    rule: "ddim" (with ``eta``; η = 0 deterministic), "heun", "dpmpp2m".
    Returns (x_0 of shape (n, d), the number of network calls); with
    ``return_trajectory``, also the (S + 1, n, d) points at the grid's steps, from t_0 down.
    """
    check_model_schedule(model, sched)
    check_points(x_T, "x_T")
    check_generator(generator)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    eta = check_real(eta, "eta", 0.0, 1.0)
    if rule != "ddim" and eta != 0:
        raise ValueError(
            f"eta applies to rule 'ddim' only, got eta = {eta} with {rule!r}"
        )
    grid = [int(t) for t in grid]
    if (
        len(grid) < 2
        or grid[0] > sched.T
        or grid[-1] != 0
        or any(a <= b for a, b in zip(grid, grid[1:]))
    ):
        raise ValueError(
            f"grid must decrease strictly from at most T = {sched.T} to 0, got {grid!r}"
        )
    x, calls, prev, path = x_T, 0, None, [x_T]
    for t, s in zip(grid, grid[1:]):
        if rule == "heun":
            x, c = heun_step(model, x, t, s, sched)
            calls += c
        else:
            eps = _eps(model, x, t)
            calls += 1
            if rule == "ddim":
                x = ddim_step(x, t, s, eps, sched, eta, generator)
            else:
                a_t, sig_t = _coef(sched, t, x)
                x0_hat = (x - sig_t * eps) / a_t
                x, h = dpmpp2m_step(x, t, s, x0_hat, sched, prev)
                prev = (x0_hat, h)
        path.append(x)
    if return_trajectory:
        return x, calls, torch.stack(path)
    return x, calls


@torch.no_grad()
def reverse_sde_sample(model, sched, x_T: torch.Tensor, generator=None) -> torch.Tensor:
    """Euler–Maruyama on the reverse SDE over every step t = T, …, 1 (ds = 1/T).   (eq. 7.5)

    Time runs backward, so a step of ds = −1/T: x_{t−1} = x_t − drift·(1/T) + √(b/T) z with
    b = b(t/T) and the drift of eq. 7.5 at step t; no noise is added at the last step, t = 1.
    """
    check_model_schedule(model, sched)
    check_points(x_T, "x_T")
    x, h = x_T, 1.0 / sched.T
    for t in range(sched.T, 0, -1):
        drift = reverse_sde_drift(x, t, _eps(model, x, t), sched)
        x = x - drift * h
        if t > 1:
            b = noise_rate(sched, t / sched.T).item()
            x = x + math.sqrt(b * h) * randn_like(x, generator)
    return x


@torch.no_grad()
def pf_ode_euler(model, sched, x_T: torch.Tensor, grid: list[int]) -> torch.Tensor:
    """Euler's method in s on the probability-flow ODE along ``grid`` (ending at 0).   (eq. 7.6)

    The last step, to s = 0, uses the velocity at its start like every other step.
    """
    check_model_schedule(model, sched)
    check_points(x_T, "x_T")
    x = x_T
    for t, s in zip(grid, grid[1:]):
        x = x + pf_ode_drift(x, t, _eps(model, x, t), sched) * ((s - t) / sched.T)
    return x
