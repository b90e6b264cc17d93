"""The exact toy laws, their entropy and the ideal denoiser (ddpm_lib.density), against
independent references: the data generators, Monte Carlo, finite differences and closed forms."""

import math

import pytest
import torch

import ddpm_lib as dl
from ddpm_lib.density import NODES, density_grid, entropy, ideal_eps, toy_law


@pytest.mark.parametrize("name", dl.DATASETS)
def test_toy_law_matches_the_generator(name):
    """Draws from the mixture and from sample_data have the same moments and pass a C2ST."""
    law = toy_law(name)
    a = law.sample(200_000, generator=torch.Generator().manual_seed(0)).double()
    b = dl.sample_data(name, 200_000, seed=1).double()
    se = math.sqrt(2 / 200_000)
    assert (a.mean(0) - b.mean(0)).abs().max() < 5 * se
    assert (torch.cov(a.T) - torch.cov(b.T)).abs().max() < 5 * math.sqrt(2) * se * 2
    assert dl.c2st(a[:3000], b[:3000]) < 0.55


@pytest.mark.parametrize("name", dl.DATASETS)
def test_density_integrates_to_one_and_quadrature_has_converged(name):
    """∫ p = 1 on a fine grid, and four times as many nodes changes log p by < 1e-3 on data."""
    law = toy_law(name)
    grid, h = density_grid(law, per_sigma=2)
    total = law.log_prob(grid).exp().sum().item() * h * h
    assert abs(total - 1) < 1e-6
    x = dl.sample_data(name, 3000, seed=2).double()
    finer = toy_law(name, nodes=4 * NODES[name])
    assert (law.log_prob(x) - finer.log_prob(x)).abs().mean() < 1e-3


def test_entropy_of_a_gaussian_is_exact():
    """A single component: H = ½ Σ_d log(2πe s_d²)."""
    g = dl.GaussianMixture([[0.3, -1.0]], [[0.2, 0.5]])
    exact = 0.5 * (
        math.log(2 * math.pi * math.e * 0.04) + math.log(2 * math.pi * math.e * 0.25)
    )
    assert abs(entropy(g) - exact) < 1e-6


@pytest.mark.parametrize("name", dl.DATASETS)
def test_entropy_matches_monte_carlo_and_has_converged(name):
    """Grid quadrature agrees with a finer grid and with −mean log p(x) on real data."""
    law = toy_law(name)
    h = entropy(law)
    assert abs(h - entropy(law, per_sigma=5)) < 1e-6
    x = dl.sample_data(name, 40_000, seed=3).double()
    lp = law.log_prob(x)
    se = lp.std().item() / math.sqrt(len(lp))
    assert abs(h - (-lp.mean().item())) < 4 * se


def test_noised_score_matches_finite_differences():
    """∇ log q(x_t) from the mixture equals central differences of log q(x_t)."""
    q = toy_law("moons").noised(0.7)
    x = torch.randn(
        50, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    h = 1e-5
    fd = torch.stack(
        [
            (q.log_prob(x + h * e) - q.log_prob(x - h * e)) / (2 * h)
            for e in torch.eye(2, dtype=torch.float64)
        ],
        1,
    )
    assert torch.allclose(q.score(x), fd, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("step", [20, 50, 90])
def test_ideal_eps_is_the_posterior_mean_of_the_noise(step):
    """E[ε | x_t] by self-normalised importance sampling over fresh data equals ideal_eps.

    For data x_0^i and a fixed x_t, ε_i = (x_t − √ᾱ x_0^i)/√(1−ᾱ), weighted by
    q(x_t | x_0^i) = N(x_t; √ᾱ x_0^i, (1−ᾱ) I).
    """
    sched = dl.Schedule.named("linear", 100)
    ab = sched.alpha_bar[step].item()
    x0 = dl.sample_data("moons", 400_000, seed=5).double()
    xt = dl.q_sample(
        dl.sample_data("moons", 5, seed=6).double(),
        step,
        sched,
        generator=torch.Generator().manual_seed(7),
    )
    eps_hat = ideal_eps(toy_law("moons"), sched)(xt, torch.full((5,), step))
    for i in range(5):
        eps = (xt[i] - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        logw = -0.5 * (eps**2).sum(1)
        w = torch.softmax(logw, 0)
        mc = (w[:, None] * eps).sum(0)
        ess = 1 / (w**2).sum()
        # Standard error of a weighted mean with effective sample size ess.
        se = torch.sqrt((w[:, None] * (eps - mc) ** 2).sum(0) / ess)
        assert ess > 1000
        assert ((eps_hat[i] - mc).abs() < 5 * se + 1e-3).all()


def test_ideal_eps_has_the_lowest_l_simple():
    """The ideal predictor's L_simple at fixed t is below that of a shrunk copy of itself."""
    sched = dl.Schedule.named("linear", 100)
    law = toy_law("s_curve")
    ideal = ideal_eps(law, sched)
    x0 = dl.sample_data("s_curve", 20_000, seed=8).double()
    t = torch.full((len(x0),), 30)
    eps = torch.randn(
        x0.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64
    )
    xt = dl.q_sample(x0, t, sched, noise=eps)
    best = ((eps - ideal(xt, t)) ** 2).sum(1).mean()
    worse = ((eps - 0.9 * ideal(xt, t)) ** 2).sum(1).mean()
    assert best < worse


def test_toy_law_rejects_unknown_names():
    with pytest.raises(
        ValueError,
        match="unknown data set 'spiral'; choose one of swiss_roll, moons, s_curve",
    ):
        toy_law("spiral")
