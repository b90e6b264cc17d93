"""Tests of ddpm_lib.solvers: continuous time, DDIM-η, the SDE/ODE and the higher-order samplers.

References are independent of the code under test: the rates b(s) typed from notation.md,
the posterior of chapter 4 (ddpm_lib.reverse), the DDIM sampler of ddpm_lib.sampling, and,
for Gaussian data x_0 ~ N(m, δ² I), the exact solution of the probability-flow ODE: with
x̄ = x/√ᾱ and ζ = √((1−ᾱ)/ᾱ) the ODE is dx̄/dζ = ζ (x̄ − m)/(δ² + ζ²), so x̄ − m grows
like √(δ² + ζ²), and x_0 = m + δ (x_T/√ᾱ_T − m)/√(δ² + ζ_T²).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lib import Schedule, ddim_sample, ddim_timesteps, posterior_mean_variance
from ddpm_lib.reverse import mean_from_eps
from ddpm_lib.solvers import (
    SPACINGS,
    ddim_mean_variance,
    ddim_sigma2,
    forward_sde,
    noise_rate,
    pf_ode_drift,
    pf_ode_euler,
    reverse_sde_drift,
    sample,
    steps_for_nfe,
    time_grid,
)

M = torch.tensor([1.5, -0.5], dtype=torch.float64)
DELTA = 0.3


@pytest.mark.parametrize(
    "name, rate",
    [
        ("constant", lambda s: 10.05 + 0 * s),
        ("linear", lambda s: 0.1 + 19.9 * s),
        ("quadratic", lambda s: 0.1 + 29.85 * s**2),
        (
            "tanh",
            lambda s: 0.1 + 29.85 / math.log(math.cosh(3.0)) * torch.tanh(3 * s),
        ),
        (
            "cosine",
            lambda s: math.pi / 1.008 * torch.tan((s + 0.008) / 1.008 * math.pi / 2),
        ),
    ],
)
def test_noise_rate_is_the_typed_rate(name, rate):
    s = torch.linspace(0, 0.95, 20, dtype=torch.float64)
    got = noise_rate(Schedule.named(name, 100), s)
    assert torch.allclose(got, rate(s), rtol=1e-10, atol=1e-10)


def test_noise_rate_of_the_sigmoid_integrates_to_the_total():
    s = torch.linspace(0, 1, 20001, dtype=torch.float64)
    b = noise_rate(Schedule.named("sigmoid", 100), s)
    integral = ((b[1:] + b[:-1]) / 2).sum().item() / 20000  # trapezoid
    assert abs(integral - 10.05) < 1e-6 and abs(b[0].item() - 0.1) < 1e-12


def test_custom_schedule_has_no_continuous_time():
    with pytest.raises(ValueError, match="sched"):
        noise_rate(Schedule(torch.full((10,), 0.6)), 0.5)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_time_grid_is_strictly_decreasing_from_T_to_0(spacing):
    sched = Schedule.named("sigmoid", 30)
    for steps in range(1, 31):
        g = time_grid(sched, steps, spacing)
        assert len(g) == steps + 1 and g[0] == 30 and g[-1] == 0
        assert all(a > b for a, b in zip(g, g[1:]))


def test_uniform_grid_is_ddims():
    sched = Schedule.named("linear", 100)
    for steps in (1, 7, 10, 100):
        assert time_grid(sched, steps) == ddim_timesteps(sched, steps) + [0]


def test_quadratic_grid_is_even_in_the_root_of_t():
    sched = Schedule.named("sigmoid", 100)
    assert time_grid(sched, 10, "quadratic") == [
        100,
        81,
        64,
        49,
        36,
        25,
        16,
        9,
        4,
        1,
        0,
    ]


def test_logsnr_grid_is_even_in_log_snr():
    sched = Schedule.named("sigmoid", 1000)
    g = time_grid(sched, 10, "logsnr")[:-1]
    gaps = np.diff(sched.snr[g].log().numpy())
    assert np.ptp(gaps) < 0.05 * abs(gaps.mean())


def test_time_grid_checks_its_arguments():
    sched = Schedule.named("sigmoid", 20)
    with pytest.raises(ValueError, match="steps"):
        time_grid(sched, 21)
    with pytest.raises(ValueError, match="spacing"):
        time_grid(sched, 5, "cubic")


def test_ddim_eta_one_is_the_posterior_of_chapter_4():
    sched = Schedule.named("sigmoid", 50)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    for t in (2, 17, 50):
        mean, var = ddim_mean_variance(x, t, t - 1, eps, sched, eta=1.0)
        ab = sched.alpha_bar[t]
        x0_hat = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        post_mean, post_var = posterior_mean_variance(x0_hat, x, t, sched)
        assert torch.allclose(mean, post_mean, atol=1e-12)
        assert torch.allclose(var, post_var[0, 0], rtol=1e-12)
        # ... and the same mean as μ_θ of Ho et al. (eq. 4.5)
        assert torch.allclose(mean, mean_from_eps(x, t, eps, sched), atol=1e-12)


def test_ddim_refuses_eta_outside_zero_one():
    """η > 1 would make σ² > 1 − ᾱ_u and leave the family that keeps the marginals."""
    sched = Schedule.named("sigmoid", 50)
    x = torch.zeros(3, 2, dtype=torch.float64)
    for eta in (-0.1, 1.5, math.inf):
        with pytest.raises(ValueError, match="eta"):
            ddim_sigma2(sched, 20, 10, eta)
        with pytest.raises(ValueError, match="eta"):
            ddim_mean_variance(x, 20, 10, x, sched, eta)
    assert ddim_sigma2(sched, 20, 0, 1.0) <= 1 + 1e-12  # σ² ≤ 1 − ᾱ_0 = 1 at η = 1


def test_ddim_rule_is_ddim_sample(gaussian_eps):
    sched = Schedule.named("sigmoid", 100)
    model = gaussian_eps(sched, M, DELTA)
    x_T = torch.randn(
        64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    for steps in (5, 10, 100):
        ours, calls = sample(model, sched, x_T, time_grid(sched, steps))
        theirs = ddim_sample(model, sched, 64, steps, x_T=x_T)
        assert calls == steps and torch.allclose(ours, theirs, atol=1e-12)


def exact_flow(sched, x_T, t=0):
    """The exact probability-flow map of N(m, δ²) data from x_T to step t (module docstring)."""
    zeta2 = lambda ab: (1 - ab) / ab
    ab_T, ab_t = sched.alpha_bar[-1], sched.alpha_bar[t]
    scale = ((DELTA**2 + zeta2(ab_t)) / (DELTA**2 + zeta2(ab_T))).sqrt()
    return ab_t.sqrt() * (M + scale * (x_T / ab_T.sqrt() - M))


@pytest.mark.parametrize(
    "rule, spacing, order",
    [
        ("ddim", "uniform", 1),
        ("heun", "edm", 2),
        ("dpmpp2m", "logsnr", 2),
        ("dpmpp2m", "uniform", 1),
    ],
)
def test_convergence_order_on_gaussian_data(gaussian_eps, rule, spacing, order):
    """The error at the last step before t = 0 halves (order 1) or quarters (order 2).

    The step to t = 0 itself is first order for every rule (no network at t = 0). On a
    grid uniform in t, near s = 0 the log-SNR and ζ change by O(1) between t_1 and t_2
    however small the steps, which makes DPM-Solver++(2M) first order there; on its own
    grid, uniform in log SNR, it is second order, and so is Heun on EDM's grid.
    """
    sched = Schedule.named("sigmoid", 1024)
    model = gaussian_eps(sched, M, DELTA)
    x_T = torch.randn(
        16, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    errs = []
    for steps in (16, 32, 64, 128):
        grid = time_grid(sched, steps, spacing)
        _, _, path = sample(model, sched, x_T, grid, rule, return_trajectory=True)
        errs.append((path[-2] - exact_flow(sched, x_T, grid[-2])).abs().max().item())
    rates = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert abs(rates[-1] - order) < 0.25, (errs, rates)


def test_pf_ode_euler_in_s_is_first_order_and_meets_ddim(gaussian_eps):
    sched = Schedule.named("sigmoid", 1024)
    model = gaussian_eps(sched, M, DELTA)
    x_T = torch.randn(
        16, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    exact = exact_flow(sched, x_T)
    errs, gaps = [], []
    for steps in (64, 128, 256, 512):
        grid = time_grid(sched, steps)
        x_euler = pf_ode_euler(model, sched, x_T, grid)
        x_ddim, _ = sample(model, sched, x_T, grid)
        errs.append((x_euler - exact).abs().max().item())
        gaps.append((x_euler - x_ddim).abs().max().item())
    for e in (errs, gaps):
        assert abs(math.log2(e[-2] / e[-1]) - 1) < 0.25, e


def test_one_step_of_ddim_and_ddpm_match_the_ode_and_sde_to_second_order(gaussian_eps):
    """Per step, DDIM − Euler(ODE) and DDPM − Euler–Maruyama(SDE) shrink like h²."""
    x = torch.randn(
        8, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    ode, sde_mean, sde_var = [], [], []
    for T in (200, 400, 800, 1600):
        sched = Schedule.named("sigmoid", T)
        t = T // 2
        eps = gaussian_eps(sched, M, DELTA)(x, torch.full((8,), t))
        h = 1 / T
        ddim, _ = ddim_mean_variance(x, t, t - 1, eps, sched)
        ode.append((ddim - (x - h * pf_ode_drift(x, t, eps, sched))).abs().max().item())
        em_mean = x - h * reverse_sde_drift(x, t, eps, sched)
        ddpm = mean_from_eps(x, t, eps, sched)
        sde_mean.append((ddpm - em_mean).abs().max().item())
        b = noise_rate(sched, t / T).item()
        sde_var.append(abs(sched.betas[t].item() - b * h))
    for e in (ode, sde_mean, sde_var):
        assert all(abs(math.log2(a / b) - 2) < 0.2 for a, b in zip(e, e[1:])), e


def test_forward_sde_has_the_marginals_of_q(stats):
    sched = Schedule.named("sigmoid", 100)
    x0 = M.expand(4000, 2).clone()
    path = forward_sde(x0, sched, 400, generator=torch.Generator().manual_seed(5))
    for k in (100, 200, 400):
        ab = math.exp(-float(_integrated(sched, k / 400)))
        x = path[k]
        mean, se = stats.mean_and_se(x)
        # Euler–Maruyama's bias is O(h) ≈ 1e-3 here, far below the Monte Carlo error.
        stats.assert_close_stat(mean, se, (math.sqrt(ab) * M).numpy(), "mean")
        cov, cse = stats.cov_and_se(x)
        stats.assert_close_stat(cov, cse, (1 - ab) * np.eye(2), "covariance")


def _integrated(sched, s):
    from ddpm_lib.solvers import log_alpha_bar_continuous

    return -log_alpha_bar_continuous(sched, torch.tensor(s, dtype=torch.float64))


def test_sample_counts_every_network_call(gaussian_eps):
    sched = Schedule.named("sigmoid", 100)
    inner = gaussian_eps(sched, M, DELTA)
    calls = []

    def model(x, t):
        calls.append(1)
        return inner(x, t)

    x_T = torch.zeros(3, 2, dtype=torch.float64)
    for rule, steps, expected in (
        ("ddim", 10, 10),
        ("heun", 5, 9),
        ("dpmpp2m", 10, 10),
    ):
        calls.clear()
        _, n = sample(model, sched, x_T, time_grid(sched, steps), rule)
        assert n == len(calls) == expected
        assert steps_for_nfe(rule, 10) == steps


def test_sample_follows_the_dtype_of_x_T(gaussian_eps):
    sched = Schedule.named("sigmoid", 20)
    model = gaussian_eps(sched, M, DELTA)
    for rule in ("ddim", "heun", "dpmpp2m"):
        out, _ = sample(model, sched, torch.zeros(3, 2), time_grid(sched, 4), rule)
        assert out.dtype == torch.float32


def test_sample_checks_its_arguments(gaussian_eps):
    sched = Schedule.named("sigmoid", 20)
    model = gaussian_eps(sched, M, DELTA)
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="rule"):
        sample(model, sched, x, [20, 0], "euler")
    with pytest.raises(ValueError, match="grid"):
        sample(model, sched, x, [20, 10, 10, 0])
    with pytest.raises(ValueError, match="grid"):
        sample(model, sched, x, [20, 5])
    with pytest.raises(ValueError, match="eta"):
        sample(model, sched, x, [20, 0], "heun", eta=0.5)
    with pytest.raises(ValueError, match="eta"):
        sample(model, sched, x, [20, 0], eta=-1.0)
    with pytest.raises(TypeError, match="x_T"):
        sample(model, sched, [[0.0, 0.0]], [20, 0])
    with pytest.raises(ValueError, match="nfe"):
        steps_for_nfe("heun", 0)
