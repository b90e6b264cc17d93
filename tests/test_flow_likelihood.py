"""Tests of ddpm_lib.flow_likelihood: the exact density of a deterministic sampler.

Reference: Gaussian data x_0 ~ N(m, δ² I) with the exact ε-predictor (conftest.gaussian_eps).
It is affine in x_t, so each DDIM step is x_s = A x_t + C with scalars A, C, and the whole
sampler maps x_T ~ N(0, I) to N(C_total, A_total² I): its density is known in closed form by
a scalar recursion written here from the DDIM update (Song et al. 2021, eq. 12), not from
the library.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lib import Schedule, sample_data
from ddpm_lib.density import ideal_eps, toy_law
from ddpm_lib.flow_likelihood import (
    batched_jacobian,
    flow_log_likelihood,
    invert_step,
    mixture_eps,
)
from ddpm_lib.models import MLPDenoiser
from ddpm_lib.solvers import time_grid

M = np.array([1.5, -0.5])
DELTA = 0.3


def ddim_affine_law(ref, grid, m, delta):
    """(A, C of shape (d,)) with x_0 = A x_T + C for DDIM (η = 0) and the exact ε̂ of N(m, δ²)."""
    A, C = 1.0, np.zeros_like(m)
    for t, s in zip(grid, grid[1:]):
        ab_t, ab_s = ref.alpha_bar[t], ref.alpha_bar[s]
        v = ab_t * delta**2 + 1 - ab_t
        # ε̂ = k (x − √ᾱ_t m), k = √(1−ᾱ_t)/v;  x_s = √(ᾱ_s/ᾱ_t) x + (√(1−ᾱ_s) − √(ᾱ_s(1−ᾱ_t)/ᾱ_t)) ε̂
        k = math.sqrt(1 - ab_t) / v
        c = math.sqrt(1 - ab_s) - math.sqrt(ab_s * (1 - ab_t) / ab_t)
        a = math.sqrt(ab_s / ab_t) + c * k
        A, C = a * A, a * C - c * k * math.sqrt(ab_t) * m
    return A, C


@pytest.mark.parametrize("steps", [3, 10, 100])
def test_ddim_density_is_the_closed_form_on_gaussian_data(
    gaussian_eps, numpy_schedule, steps
):
    sched = Schedule.named("sigmoid", 100)
    grid = time_grid(sched, steps)
    model = gaussian_eps(sched, M, DELTA)
    x0 = torch.randn(
        50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    x0 = torch.from_numpy(M) + 0.5 * x0
    out = flow_log_likelihood(model, sched, x0, grid)
    A, C = ddim_affine_law(numpy_schedule(sched.betas[1:].numpy()), grid, M, DELTA)
    z = (x0.numpy() - C) / A
    exact = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) - 2 * math.log(abs(A))
    assert np.allclose(out["log_prob"].numpy(), exact, atol=1e-8)
    assert out["residual"].max() < 1e-8 and out["round_trip"].max() < 1e-8
    assert out["det_positive"].all()  # each step scales by a positive factor


def test_heun_density_tends_to_the_exact_flows(gaussian_eps):
    """With fine steps the sampler is the exact flow, which maps N(0, I) to an exact Gaussian."""
    sched = Schedule.named("sigmoid", 1024)
    model = gaussian_eps(sched, M, DELTA)
    x0 = torch.from_numpy(M) + 0.3 * torch.randn(
        20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    ab_T = sched.alpha_bar[-1].item()
    # Exact flow (tests/test_solvers.py): x_0 = m + δ (x_T/√ᾱ_T − m)/√(δ² + ρ_T²) = A x_T + C.
    A = DELTA / math.sqrt(ab_T) / math.sqrt(DELTA**2 + (1 - ab_T) / ab_T)
    C = M - A * math.sqrt(ab_T) * M
    z = (x0.numpy() - C) / A
    exact = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) - 2 * math.log(A)
    errs = []
    for steps in (32, 64):
        out = flow_log_likelihood(
            model, sched, x0, time_grid(sched, steps, "edm"), "heun"
        )
        assert out["round_trip"].max() < 1e-7
        errs.append(np.abs(out["log_prob"].numpy() - exact).max())
    # second order: the error falls about fourfold as the steps halve
    assert errs[1] < errs[0] / 3 and errs[1] < 0.1, errs


def test_mixture_eps_is_the_ideal_denoiser():
    sched = Schedule.named("sigmoid", 100)
    law = toy_law("moons")
    x = torch.randn(
        40, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    t = torch.arange(40) % 100 + 1  # every point its own step
    assert torch.allclose(
        mixture_eps(law, sched)(x, t), ideal_eps(law, sched)(x, t), atol=1e-12
    )


def test_batched_jacobian_matches_finite_differences():
    torch.manual_seed(0)
    net = MLPDenoiser().double()
    x = torch.randn(
        30, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    t = torch.full((30,), 17)
    f = lambda z: net(z, t)
    _, J = batched_jacobian(f, x)
    h = 1e-6
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = h
        with torch.no_grad():
            column = (f(x + e) - f(x - e)) / (2 * h)
        assert torch.allclose(J[:, :, j], column, atol=1e-7)


def test_invert_step_solves_a_sharp_map():
    """Damped Newton converges where a full Newton step would overshoot (x ↦ tanh(5x))."""
    f = lambda x: torch.tanh(5 * x) + 0.01 * x
    x_true = torch.tensor([[0.9, -0.7], [0.05, 2.0]], dtype=torch.float64)
    x, J, res = invert_step(f, f(x_true), torch.zeros_like(x_true), iters=100)
    assert res.max() < 1e-9 and torch.allclose(x, x_true, atol=1e-8)
    assert torch.allclose(
        torch.diagonal(J, dim1=1, dim2=2), 5 / torch.cosh(5 * x) ** 2 + 0.01
    )


def test_round_trip_with_the_ideal_denoiser_at_ten_steps():
    sched = Schedule.named("sigmoid", 100)
    law = toy_law("moons")
    x0 = sample_data("moons", 100, seed=4).double()
    out = flow_log_likelihood(mixture_eps(law, sched), sched, x0, time_grid(sched, 10))
    assert out["residual"].max() < 1e-8 and out["round_trip"].max() < 1e-7
    assert torch.isfinite(out["log_prob"]).all() and out["det_positive"].all()


def test_det_positive_reports_a_fold():
    """A model whose step reflects x (det J < 0) is reported, not hidden by |det J|."""
    sched = Schedule.named("sigmoid", 20)

    def flip(x, t):
        # ε_1 = 3 x_1/σ̄, ε_2 = 0: the DDIM step x_0 = (x − σ̄ ε)/√ᾱ reverses x_1 only
        return (
            torch.stack([3.0 * x[:, 0], 0 * x[:, 1]], 1)
            / (1 - sched.alpha_bar[t[0]]).sqrt()
        )

    x0 = torch.randn(
        5, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    out = flow_log_likelihood(flip, sched, x0, [20, 0])
    assert out["round_trip"].max() < 1e-8 and not out["det_positive"].any()


def test_flow_log_likelihood_checks_its_arguments(gaussian_eps):
    sched = Schedule.named("sigmoid", 20)
    model = gaussian_eps(sched, M, DELTA)
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="rule"):
        flow_log_likelihood(model, sched, x0, [20, 0], rule="dpmpp2m")
    with pytest.raises(ValueError, match="x0"):
        flow_log_likelihood(model, sched, x0 * math.nan, [20, 0])
    with pytest.raises(ValueError, match="tol"):
        flow_log_likelihood(model, sched, x0, [20, 0], tol=0.0)
    with pytest.raises(TypeError, match="law"):
        mixture_eps("moons", sched)
