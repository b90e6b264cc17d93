"""Tests of ddpm_lib.density.ideal_eps, the ideal denoiser: its fast path for mixtures whose components share one covariance, and its general path.

References: an independent numpy/scipy computation by Gaussian conditioning, component by component
(responsibilities from scipy.stats.multivariate_normal, E[ε | x_t, k] in closed form), and
the general formula, which evaluates the full (n, K, d) mixture (itself tested against finite
differences and Monte Carlo in test_density.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps
from scipy.special import softmax

from ddpm_lib import GaussianMixture, Schedule, nll_bound
from ddpm_lib.density import ideal_eps, shared_variance, toy_law


def numpy_ideal_eps(means, var, weights, alpha_bar, x):
    """E[ε | x_t] = Σ_k r_k(x_t) E[ε | x_t, k], by Gaussian conditioning in each component.

    Given component k, x_t = √ᾱ x_0 + √(1−ᾱ) ε with x_0 ~ N(m_k, diag(var)) is Gaussian with mean
    √ᾱ m_k and variance v = ᾱ var + 1 − ᾱ (per coordinate), and Cov(ε, x_t) = √(1−ᾱ), so
    E[ε | x_t, k] = √(1−ᾱ) (x_t − √ᾱ m_k) / v. r_k ∝ w_k N(x_t; √ᾱ m_k, diag(v)).
    """
    v = alpha_bar * var + 1 - alpha_bar
    logs = np.stack(
        [
            sps.multivariate_normal.logpdf(x, math.sqrt(alpha_bar) * m, np.diag(v))
            for m in means
        ],
        1,
    )
    r = softmax(np.log(weights) + logs, axis=1)  # (n, K)
    per_k = (
        math.sqrt(1 - alpha_bar)
        * (x[:, None, :] - math.sqrt(alpha_bar) * means[None])
        / v
    )  # (n, K, d)
    return (r[..., None] * per_k).sum(1)


@pytest.mark.parametrize("step", [1, 3, 10, 25, 50])
def test_matches_gaussian_conditioning_in_numpy(step):
    """A small anisotropic mixture (5 components, shared diagonal covariance, unequal weights):
    ideal_eps (its fast path) equals the numpy/scipy reference to 1e-9 at steps from nearly clean to pure noise,
    on points both near the components and far out (where the responsibilities are extreme)."""
    rng = np.random.default_rng(0)
    means = rng.normal(size=(5, 2)) * 1.5
    var = np.array([0.02, 0.09])
    weights = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    law = GaussianMixture(means, np.sqrt(np.broadcast_to(var, (5, 2))), weights)
    sched = Schedule.named("linear", 50)
    x = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(20, 2)) * 6])
    got = ideal_eps(law, sched)(
        torch.from_numpy(x), torch.full((len(x),), step)
    ).numpy()
    want = numpy_ideal_eps(means, var, weights, sched.alpha_bar[step].item(), x)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["moons", "s_curve", "swiss_roll"])
def test_agrees_with_density_ideal_eps_on_the_toy_laws(name):
    """On every toy law, with a different step per row (t from 1 to T = 100) and float32 input,
    the fast path equals the general formula to float32 precision (float64 to 1e-10) and keeps the dtype."""
    law = toy_law(name)
    sched = Schedule.named("sigmoid", 100)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(400, 2, generator=gen) * 1.5
    t = torch.randint(1, 101, (400,), generator=gen)
    got = ideal_eps(law, sched)(x, t)
    want = general_eps(law, sched, x, t)
    assert got.dtype == torch.float32 and got.shape == (400, 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # In float64 the fast path and the general formula agree to float64 precision.
    torch.testing.assert_close(
        ideal_eps(law, sched)(x.double(), t),
        general_eps(law, sched, x.double(), t),
        rtol=1e-10,
        atol=1e-11,
    )


def general_eps(law, sched, x, t):
    """The general formula, every component evaluated: −√(1−ᾱ_t) ∇log q_t(x) from the noised mixture's score."""
    out = torch.empty_like(x)
    for step in t.unique().tolist():
        rows = t == step
        out[rows] = -(1 - sched.alpha_bar[step]).sqrt().to(x.dtype) * law.noised(
            sched.alpha_bar[step].item()
        ).score(x[rows])
    return out


def test_mixture_without_a_shared_covariance_takes_the_general_path():
    """Components with different covariances: ideal_eps evaluates every component, and equals the
    general formula exactly (it is that formula)."""
    law = GaussianMixture(
        torch.tensor([[0.0, 0.0], [2.0, 1.0]]),
        torch.tensor([0.1, 0.3]),
        torch.tensor([0.3, 0.7]),
    )
    assert shared_variance(law) is None
    sched = Schedule.named("linear", 20)
    x = torch.randn(
        50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(8)
    )
    t = torch.randint(1, 21, (50,), generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(
        ideal_eps(law, sched)(x, t), general_eps(law, sched, x, t), rtol=0, atol=0
    )


def test_bound_equals_the_bound_with_density_ideal_eps():
    """nll_bound with either predictor, the same points and the same generator seed (so the same
    draws of x_t), gives the same bound per point: the fast predictor is a drop-in replacement."""
    law = toy_law("moons")
    sched = Schedule.named("cosine", 30)
    x0 = law.sample(300, generator=torch.Generator().manual_seed(2)).double()
    fast = nll_bound(
        ideal_eps(law, sched), x0, sched, generator=torch.Generator().manual_seed(3)
    )
    slow = nll_bound(
        lambda x, t: general_eps(law, sched, x, t),
        x0,
        sched,
        generator=torch.Generator().manual_seed(3),
    )
    torch.testing.assert_close(fast, slow, rtol=1e-8, atol=1e-8)


def test_accepts_a_single_step_and_rejects_bad_input():
    """A single int step broadcasts to every row; steps outside 1…T and mixtures whose components have
    different covariances are refused with clear errors."""
    law = toy_law("moons")
    sched = Schedule.named("linear", 20)
    eps = ideal_eps(law, sched)
    x = torch.randn(
        10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4)
    )
    torch.testing.assert_close(eps(x, 7), eps(x, torch.full((10,), 7)))
    with pytest.raises(ValueError, match="lie in"):
        eps(x, torch.full((10,), 21))
    with pytest.raises(TypeError, match="law must be a GaussianMixture"):
        ideal_eps("moons", sched)
    with pytest.raises(ValueError, match="d = 2 coordinates"):
        eps(torch.zeros(3, 3, dtype=torch.float64), 1)
    assert torch.allclose(shared_variance(law), law.stds[0] ** 2)


def test_float32_responsibilities_change_eps_by_less_than_1e_4():
    """With dtype=torch.float32 for the (n, K) responsibilities, ε̂ on the moons law differs from the
    float64 result by less than 1e-4 at every step of a T = 100 schedule, including t = 1, where the
    noised components are narrowest and the logits largest."""
    law = toy_law("moons")
    sched = Schedule.named("sigmoid", 100)
    x = law.sample(500, generator=torch.Generator().manual_seed(5)).double() * 1.2
    hi, lo = ideal_eps(law, sched), ideal_eps(law, sched, dtype=torch.float32)
    for step in range(1, 101):
        t = torch.full((500,), step)
        assert (hi(x, t) - lo(x, t)).abs().max() < 1e-4, step
