"""Property-based tests (Hypothesis): invariants that hold for *any* valid input.

Schedules (β_t in (0, 1), ᾱ_t decreasing, ᾱ_T ≤ 1e-3 for the built-ins, β̃_t ≤ β_t), the closed
form against the chain's moments, DDIM's steps, finite samplers for any step count and η ≥ 0,
symmetric and bounded metrics, and the documented error for invalid counts. Few examples each,
no deadline: the whole file runs in seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddpm_lib import (
    SCHEDULES,
    MLPDenoiser,
    Schedule,
    c2st,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    histogram_js,
    sliced_wasserstein,
)
from ddpm_lib.reverse import VARIANCES
from ddpm_lib.schedules import NOISE_TOLERANCE

FAST = settings(max_examples=15, deadline=None, derandomize=True)
names = st.sampled_from(SCHEDULES)


@FAST
@given(name=names, T=st.integers(2, 2000))
def test_builtin_schedules(name, T):
    s = Schedule.named(name, T)
    b = s.betas[1:]
    assert torch.all((b > 0) & (b < 1))
    assert torch.all(s.alpha_bar[1:] < s.alpha_bar[:-1])
    assert s.alpha_bar[-1] <= NOISE_TOLERANCE
    assert torch.all(s.posterior_variance <= s.betas)


@FAST
@given(betas=st.lists(st.floats(1e-4, 0.999), min_size=1, max_size=50))
def test_any_betas_give_a_decreasing_alpha_bar_and_posterior_variance_below_beta(betas):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # short schedules may not reach noise: that is a warning, not an error
        s = Schedule(betas)
    assert torch.all(s.alpha_bar[1:] < s.alpha_bar[:-1])
    assert torch.all(s.posterior_variance <= s.betas * (1 + 1e-12))
    assert torch.all(s.posterior_variance >= 0)


@FAST
@given(name=names, T=st.integers(2, 300), m0=st.floats(-5, 5), v0=st.floats(1e-3, 10))
def test_closed_form_equals_the_chain_moments(name, T, m0, v0):
    """Mean and variance of x_t step by step (m ← √α m, v ← α v + β) equal √ᾱ_t m_0 and ᾱ_t v_0 + 1 − ᾱ_t."""
    s = Schedule.named(name, T)
    m, v = m0, v0
    for t in range(1, T + 1):
        a = s.alphas[t].item()
        m, v = math.sqrt(a) * m, a * v + s.betas[t].item()
        ab = s.alpha_bar[t].item()
        assert math.isclose(m, math.sqrt(ab) * m0, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(v, ab * v0 + 1 - ab, rel_tol=1e-9)


@FAST
@given(T=st.integers(1, 1000), data=st.data())
def test_ddim_steps_count_and_order(T, data):
    steps = data.draw(st.integers(1, T))
    s = Schedule(torch.full((T,), 0.999))
    taus = ddim_timesteps(s, steps)
    assert len(taus) == steps and taus[0] == T and taus[-1] >= 1
    assert all(a > b for a, b in zip(taus, taus[1:]))


_LINEAR = torch.tensor([[0.9, -0.2], [0.3, 1.1]])


def _linear_eps(x, t):
    return torch.tanh(
        x @ _LINEAR.to(x.dtype)
    )  # a bounded, x-dependent stand-in for a network


@settings(max_examples=10, deadline=None, derandomize=True)
@given(
    name=names,
    T=st.integers(2, 40),
    eta=st.floats(0, 1),
    variance=st.sampled_from(VARIANCES[:2]),
    data=st.data(),
)
def test_samplers_are_finite_for_any_step_count_and_eta(name, T, eta, variance, data):
    s = Schedule.named(name, T)
    steps = data.draw(st.integers(1, T))
    gen = torch.Generator().manual_seed(0)
    assert torch.isfinite(
        ddim_sample(_linear_eps, s, 50, steps, eta=eta, generator=gen)
    ).all()
    assert torch.isfinite(
        ddpm_sample(_linear_eps, s, 50, variance=variance, generator=gen)
    ).all()


points = st.integers(0, 10_000).map(
    lambda seed: np.random.default_rng(seed).standard_normal((60, 2))
)


@FAST
@given(a=points, b=points, shift=st.floats(-3, 3))
def test_metrics_are_symmetric_and_bounded(a, b, shift):
    b = b + shift
    sw = sliced_wasserstein(a, b, n_projections=20)
    assert sw >= 0 and math.isclose(
        sw, sliced_wasserstein(b, a, n_projections=20), rel_tol=1e-12
    )
    js = histogram_js(a, b, bins=10)
    assert 0 <= js <= math.log(2) + 1e-12 and math.isclose(
        js, histogram_js(b, a, bins=10), rel_tol=1e-9, abs_tol=1e-15
    )
    assert 0 <= c2st(a, b, k=5) <= 1
    assert sliced_wasserstein(a, a, n_projections=5) == 0 and histogram_js(a, a) == 0


bad_counts = st.one_of(
    st.integers(-5, 0), st.floats(0.5, 5), st.none(), st.text(max_size=2), st.booleans()
)


@FAST
@given(bad=bad_counts)
def test_invalid_counts_raise_the_documented_error(bad):
    """Every count argument refuses non-integers and integers < 1 with ValueError naming it."""
    with pytest.raises(ValueError, match="n .*must be an integer ≥ 1"):
        ddpm_sample(_linear_eps, Schedule.named("linear", 3), bad)
    with pytest.raises(ValueError, match="hidden must be an integer ≥ 1"):
        MLPDenoiser(hidden=bad)
    with pytest.raises(ValueError, match="T must be an integer ≥ 1"):
        Schedule.named("linear", bad)
    with pytest.raises(ValueError, match="n_projections must be an integer ≥ 1"):
        sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 2)), n_projections=bad)
