"""Tests of ddpm_lib.langevin: Langevin dynamics, annealed Langevin and the score of an ε-model (chapter 3).

References, all derived here and not taken from the library: the stationary law of the discretised
chain on a Gaussian (an AR(1) recursion, solved in closed form); the binomial sampling error of the
weights of a two-mode mixture, whose score is written out in the test; the exact ε-predictor of
Gaussian data (conftest) and the score of the noised Gaussian N(√ᾱ m, ᾱ s² + 1 − ᾱ); the Gaussian
log-density of q(x_t | x_0) differentiated by autograd. Every generator is seeded; Monte Carlo
comparisons allow Z = 5 standard errors estimated from the sample (see conftest).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lib import Schedule
from ddpm_lib.langevin import (
    annealed_langevin,
    annealed_langevin_sample,
    langevin,
    langevin_step,
    score_from_eps,
)


def gaussian_score(m, s):
    """∇ log N(m, diag(s²)) = −(x − m)/s², for x of shape (n, d)."""
    m, s = (
        torch.as_tensor(m, dtype=torch.float64),
        torch.as_tensor(s, dtype=torch.float64),
    )
    return lambda x: -(x - m.to(x.dtype)) / (s**2).to(x.dtype)


def ar1_stationary_variance(eps, s2):
    """Stationary variance of x ← (1 − ε/(2s²)) x + √ε z: v = (1−a)² v + ε with a = ε/(2s²)."""
    a = eps / (2 * s2)
    return eps / (1 - (1 - a) ** 2)


def mixture_score_1d(means, stds, weights):
    """Score of Σ_k w_k N(m_k, s_k²) on the line, written out for the tests: Σ_k r_k(x) (m_k − x)/s_k²."""
    m, s, w = (torch.tensor(v, dtype=torch.float64) for v in (means, stds, weights))

    def score(x):
        logc = (
            w.log() - 0.5 * ((x - m) / s) ** 2 - s.log()
        )  # (n, K) by broadcasting x: (n, 1)
        r = torch.softmax(logc, dim=1)
        return (r * (m - x) / s**2).sum(1, keepdim=True)

    return score


def mixture_eps(sched, means, stds, weights, numpy_schedule):
    """The exact E[ε | x_t] for data Σ_k w_k N(m_k, s_k² I): condition on the component, then average.

    Given component k, (ε, x_t) is Gaussian with E[ε | x_t, k] = √(1−ᾱ)(x_t − √ᾱ m_k)/(ᾱ s_k² + 1 − ᾱ);
    the component's posterior probability is r_k ∝ w_k N(x_t; √ᾱ m_k, (ᾱ s_k² + 1 − ᾱ) I). ᾱ is re-derived
    in numpy from β.
    """
    ab = torch.from_numpy(numpy_schedule(sched.betas[1:]).alpha_bar)
    m, s, w = (torch.tensor(v, dtype=torch.float64) for v in (means, stds, weights))

    def predictor(x, t):
        a = ab[t][:, None, None]  # (n, 1, 1)
        v = a * s[None, :, None] ** 2 + 1 - a  # (n, K, 1)
        diff = x.double()[:, None, :] - a.sqrt() * m[None]  # (n, K, d)
        logr = (
            w.log()[None]
            - 0.5 * (diff**2 / v).sum(-1)
            - 0.5 * x.shape[1] * v[..., 0].log()
        )
        r = torch.softmax(logr, dim=1)[..., None]
        return ((r * (1 - a).sqrt() * diff / v).sum(1)).to(x.dtype)

    return predictor


# ---------------------------------------------------------------------------
# Plain Langevin
# ---------------------------------------------------------------------------


def test_langevin_on_a_gaussian_reaches_its_mean_and_variance(stats):
    """20k chains on N(m, diag(s²)) in 2D, started far away: after enough steps the mean is m and each
    coordinate's variance is the discretised chain's s²/(1 − ε/(4s²)) (within 2% of s² here), with zero
    correlation between the coordinates."""
    m, s, eps = np.array([1.0, -2.0]), np.array([0.5, 1.0]), 0.02
    n, steps = 20_000, 2000  # slowest coordinate contracts by (1 − ε/(2·1))^2000 ≈ 2e-9
    x0 = torch.tensor([[5.0, -5.0]], dtype=torch.float64).repeat(n, 1)
    x = langevin(
        gaussian_score(m, s), x0, eps, steps, generator=torch.Generator().manual_seed(1)
    )
    mean, se = stats.mean_and_se(x)
    stats.assert_close_stat(mean, se, m, "mean")
    cov, se_cov = stats.cov_and_se(x)
    want = np.diag([ar1_stationary_variance(eps, v) for v in s**2])
    stats.assert_close_stat(cov, se_cov, want, "covariance")


@pytest.mark.parametrize("ratio", [0.2, 1.0, 2.0, 3.0, 3.6])
def test_stationary_variance_of_the_discretised_chain_is_the_ar1_formula(ratio, stats):
    """On N(0, s²) the update is the AR(1) recursion x ← (1 − ε/(2s²)) x + √ε z, so the chain's
    stationary variance is ε/(1 − (1 − ε/(2s²))²) = s²/(1 − ε/(4s²)), not s²: checked by Monte Carlo for
    ε/s² from 0.2 to 3.6 (where it is 10 s²). For ε/s² ≥ 1 the inflation is far beyond sampling error,
    so a chain with the wrong drift or noise scale (e.g. ε ∇log p, or √(2ε) z) fails."""
    s2 = 0.49
    eps = ratio * s2
    n = 50_000
    a = eps / (2 * s2)
    steps = (
        max(50, math.ceil(30 / -math.log(abs(1 - a)))) if a != 1 else 5
    )  # |1−a|^steps < e^-30
    x = langevin(
        gaussian_score([0.0], [math.sqrt(s2)]),
        torch.zeros(n, 1, dtype=torch.float64),
        eps,
        steps,
        generator=torch.Generator().manual_seed(int(10 * ratio)),
    )
    var, se = stats.cov_and_se(x)
    want = ar1_stationary_variance(eps, s2)
    assert math.isclose(want, s2 / (1 - eps / (4 * s2)), rel_tol=1e-12)
    stats.assert_close_stat(
        var[0, 0], se[0, 0], want, f"ε/s² = {ratio}: stationary variance"
    )
    stats.assert_close_stat(
        x.mean().item(), x.std().item() / math.sqrt(n), 0.0, f"ε/s² = {ratio}: mean"
    )
    if ratio >= 1:
        assert abs(var[0, 0] - s2) > 5 * stats.Z * se[0, 0]


def test_langevin_diverges_beyond_four_s_squared():
    """For ε > 4s² the AR(1) factor |1 − ε/(2s²)| exceeds 1 and the chain blows up."""
    x = langevin(
        gaussian_score([0.0], [1.0]),
        torch.ones(100, 1, dtype=torch.float64),
        4.4,
        200,
        generator=torch.Generator().manual_seed(2),
    )
    assert x.abs().median() > 1e10


def test_langevin_step_is_the_update_and_the_trajectory_is_consistent():
    """langevin_step is x + (ε/2) s(x) + √ε z with z the generator's next normal draw; the trajectory has
    n_steps + 1 entries, starts at x and ends at the returned points; a seed reproduces a run."""
    x = torch.randn(
        7, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    score = gaussian_score([1.0, 0.0, -1.0], [0.5, 1.0, 2.0])
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=x.dtype)
    got = langevin_step(score, x, 0.3, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(
        got, x + 0.15 * score(x) + math.sqrt(0.3) * z, rtol=0, atol=1e-14
    )

    out, traj = langevin(
        score,
        x,
        0.1,
        25,
        generator=torch.Generator().manual_seed(5),
        return_trajectory=True,
    )
    again = langevin(score, x, 0.1, 25, generator=torch.Generator().manual_seed(5))
    assert traj.shape == (26, 7, 3)
    assert (
        torch.equal(traj[0], x)
        and torch.equal(traj[-1], out)
        and torch.equal(out, again)
    )


# ---------------------------------------------------------------------------
# Annealed Langevin
# ---------------------------------------------------------------------------


def test_annealed_step_sizes_scale_with_sigma_squared(stats):
    """With a zero score each level only adds noise: level i adds N(0, k ε σ_i²/σ_L²) per coordinate
    (ε_i = ε σ_i²/σ_L², k steps). Checked per level from the trajectory; the score is called with the
    level index i, k times per level, in order."""
    sigmas, eps, k, n = [3.0, 2.0, 1.0], 0.01, 4, 100_000
    calls = []

    def zero_score(x, i):
        calls.append(i)
        return torch.zeros_like(x)

    x0 = torch.zeros(n, 1, dtype=torch.float64)
    _, traj = annealed_langevin(
        zero_score,
        x0,
        sigmas,
        eps,
        k,
        generator=torch.Generator().manual_seed(6),
        return_trajectory=True,
    )
    assert traj.shape == (4, n, 1) and torch.equal(traj[0], x0)
    assert calls == [0] * k + [1] * k + [2] * k
    for i, sigma in enumerate(sigmas):
        var, se = stats.cov_and_se(traj[i + 1] - traj[i])
        stats.assert_close_stat(
            var[0, 0],
            se[0, 0],
            k * eps * sigma**2 / sigmas[-1] ** 2,
            f"level {i}: added variance",
        )


def test_annealing_recovers_far_apart_mode_weights_and_plain_langevin_does_not():
    """Modes at ±3 (s = 0.3) with weights 0.8/0.2: Gaussian smoothing p_σ = Σ w N(m, s² + σ²) with σ from 5
    down to 0.3 lets the chains settle while the modes still overlap, so the fraction on the left is 0.8
    within 5 binomial standard errors. Plain Langevin on p from the same start keeps the start's roughly
    even split: more than 10 standard errors off."""
    means, s, w = [-3.0, 3.0], 0.3, [0.8, 0.2]
    sigmas = torch.logspace(math.log10(5.0), math.log10(0.3), 20, dtype=torch.float64)
    level_scores = [
        mixture_score_1d(means, [math.hypot(s, sig)] * 2, w) for sig in sigmas.tolist()
    ]
    n = 4000
    gen = torch.Generator().manual_seed(7)
    x0 = 5.0 * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    eps = 0.1 * sigmas[-1].item() ** 2
    x = annealed_langevin(
        lambda y, i: level_scores[i](y), x0, sigmas, eps, 50, generator=gen
    )
    se = math.sqrt(0.8 * 0.2 / n)
    left = (x < 0).double().mean().item()
    assert abs(left - 0.8) < 5 * se, left
    assert abs(x.abs().mean().item() - 3.0) < 0.05  # and the points sit on the modes

    plain = langevin(mixture_score_1d(means, [s, s], w), x0, eps, 1000, generator=gen)
    left_plain = (plain < 0).double().mean().item()
    assert abs(left_plain - 0.8) > 10 * se, left_plain


def test_annealed_langevin_sample_with_the_exact_mixture_eps_recovers_the_weights(
    numpy_schedule,
):
    """Over the levels t = T…1 of a schedule, with the exact E[ε | x_t] of 2D data 0.8 N((−2, 0), 0.4²) +
    0.2 N((2, 0), 0.4²), annealed Langevin started from N(0, I) puts 0.8 of its points on the left mode
    (5 binomial standard errors), and the points sit on the modes. (Their spread is a little wider than
    the modes' 0.4: at the last levels the steps ε (1−ᾱ_t)/(1−ᾱ_1) are small next to 0.4², and five
    steps per level do not fully contract what the coarser levels left; hence the loose bound.)"""
    sched = Schedule.named("linear", 100)
    eps_model = mixture_eps(
        sched, [[-2.0, 0.0], [2.0, 0.0]], [0.4, 0.4], [0.8, 0.2], numpy_schedule
    )
    n = 4000
    step = 0.5 * (1 - numpy_schedule(sched.betas[1:]).alpha_bar[1])
    x = annealed_langevin_sample(
        eps_model, sched, n, step, 5, generator=torch.Generator().manual_seed(8)
    ).double()
    left = x[:, 0] < 0
    assert abs(left.double().mean().item() - 0.8) < 5 * math.sqrt(0.16 / n)
    centred = torch.where(
        left[:, None], x - torch.tensor([-2.0, 0.0]), x - torch.tensor([2.0, 0.0])
    )
    assert centred.mean(0).abs().max().item() < 0.05
    assert 0.38 < centred.std().item() < 0.48


def test_annealed_langevin_sample_ends_in_the_last_levels_chain_law(
    gaussian_eps, numpy_schedule, stats
):
    """Data N(m, s² I) and the exact ε-model: at the last level t_L the target is q(x_{t_L}) =
    N(√ᾱ m, v I) with v = ᾱ s² + 1 − ᾱ, and its step is ε itself, so after enough steps the samples follow
    the AR(1) stationary law N(√ᾱ m, ε/(1 − (1 − ε/(2v))²) I)."""
    sched = Schedule.named("linear", 100)
    ab = numpy_schedule(sched.betas[1:]).alpha_bar
    m, s, tL = np.array([1.0, -0.5]), 0.5, 20
    v = ab[tL] * s**2 + 1 - ab[tL]
    eps = 0.5 * v
    x = annealed_langevin_sample(
        gaussian_eps(sched, m, s),
        sched,
        40_000,
        eps,
        100,
        timesteps=[100, 50, tL],
        d=2,
        generator=torch.Generator().manual_seed(9),
        x_T=torch.randn(
            40_000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(10)
        ),
    )
    mean, se = stats.mean_and_se(x)
    stats.assert_close_stat(mean, se, np.sqrt(ab[tL]) * m, "mean at the last level")
    cov, se_cov = stats.cov_and_se(x)
    stats.assert_close_stat(
        cov,
        se_cov,
        ar1_stationary_variance(eps, v) * np.eye(2),
        "covariance at the last level",
    )


def test_denoise_is_tweedies_posterior_mean(gaussian_eps, numpy_schedule):
    """With denoise=True the last points are x̂_0 = (x − √(1−ᾱ) ε̂(x, t_L))/√ᾱ at the last level, computed
    here in numpy from the un-denoised chain (the trajectory's last entry)."""
    sched = Schedule.named("cosine", 50)
    ab = numpy_schedule(sched.betas[1:]).alpha_bar
    m, s, tL = np.array([0.3, 0.2]), 0.7, 3
    model = gaussian_eps(sched, m, s)
    out, traj = annealed_langevin_sample(
        model,
        sched,
        500,
        0.01,
        3,
        timesteps=[50, 10, tL],
        generator=torch.Generator().manual_seed(11),
        x_T=torch.randn(
            500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(12)
        ),
        denoise=True,
        return_trajectory=True,
    )
    x = traj[-1].numpy()
    eps_hat = (
        np.sqrt(1 - ab[tL]) * (x - np.sqrt(ab[tL]) * m) / (ab[tL] * s**2 + 1 - ab[tL])
    )
    np.testing.assert_allclose(
        out.numpy(),
        (x - np.sqrt(1 - ab[tL]) * eps_hat) / np.sqrt(ab[tL]),
        rtol=1e-10,
        atol=1e-12,
    )


# ---------------------------------------------------------------------------
# The score of an ε-predictor
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, T", [("linear", 100), ("cosine", 1000), ("sigmoid", 10)]
)
def test_score_from_eps_of_the_exact_predictor_is_the_noised_gaussian_score(
    name, T, gaussian_eps, numpy_schedule
):
    """For data N(m, s² I), −E[ε | x_t]/√(1−ᾱ_t) is the score of q(x_t) = N(√ᾱ_t m, (ᾱ_t s² + 1 − ᾱ_t) I),
    i.e. −(x − √ᾱ_t m)/(ᾱ_t s² + 1 − ᾱ_t), at every t = 1…T (one t per row), also for a model with a
    variance head (whose extra columns must be ignored) and for a single int t."""
    sched = Schedule.named(name, T)
    ab = numpy_schedule(sched.betas[1:]).alpha_bar
    m, s = np.array([0.8, -1.2]), 1.7
    t = torch.arange(1, T + 1).repeat_interleave(3)
    x = 3 * torch.randn(
        len(t), 2, generator=torch.Generator().manual_seed(13), dtype=torch.float64
    )
    a = ab[t.numpy()][:, None]
    want = -(x.numpy() - np.sqrt(a) * m) / (a * s**2 + 1 - a)

    model = gaussian_eps(sched, m, s)
    np.testing.assert_allclose(
        score_from_eps(model, sched)(x, t).numpy(), want, rtol=1e-9, atol=1e-12
    )

    with_head = lambda y, tt: torch.cat([model(y, tt), torch.full_like(y, 0.37)], dim=1)
    np.testing.assert_allclose(
        score_from_eps(with_head, sched)(x, t).numpy(), want, rtol=1e-9, atol=1e-12
    )

    t5 = min(5, T)
    one = score_from_eps(model, sched)(x[:4], t5).numpy()
    np.testing.assert_allclose(
        one,
        -(x[:4].numpy() - np.sqrt(ab[t5]) * m) / (ab[t5] * s**2 + 1 - ab[t5]),
        rtol=1e-9,
    )


def test_score_from_eps_with_the_true_noise_is_the_conditional_score():
    """Given the noise ε that made x_t from x_0, −ε/√(1−ᾱ_t) is ∇_{x_t} log q(x_t | x_0) with
    q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I), differentiated by autograd."""
    sched = Schedule.named("linear", 100)
    gen = torch.Generator().manual_seed(14)
    t = torch.arange(1, 101)
    x0 = torch.randn(100, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(100, 2, generator=gen, dtype=torch.float64)
    ab = torch.cumprod(1 - sched.betas[1:].clone(), 0)[t - 1][:, None]
    xt = (ab.sqrt() * x0 + (1 - ab).sqrt() * eps).requires_grad_(True)
    log_q = (
        torch.distributions.Normal(ab.sqrt() * x0, (1 - ab).sqrt()).log_prob(xt).sum()
    )
    (grad,) = torch.autograd.grad(log_q, xt)
    got = score_from_eps(lambda y, tt: eps, sched)(xt.detach(), t)
    torch.testing.assert_close(got, grad, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def _id_score(x):
    return -x


@pytest.mark.parametrize(
    "step_size", [0, 0.0, -0.1, float("nan"), float("inf"), True, "0.1"]
)
def test_bad_step_size_raises(step_size):
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="step_size"):
        langevin(_id_score, x, step_size, 3)
    with pytest.raises(ValueError, match="step_size"):
        annealed_langevin(lambda y, i: -y, x, [1.0], step_size, 3)


@pytest.mark.parametrize("n_steps", [0, -1, 1.5, True, None])
def test_bad_step_count_raises(n_steps):
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="n_steps"):
        langevin(_id_score, x, 0.1, n_steps)
    with pytest.raises(ValueError, match="n_steps_per_level"):
        annealed_langevin(lambda y, i: -y, x, [1.0], 0.1, n_steps)


@pytest.mark.parametrize(
    "sigmas",
    [[], [1.0, 0.0], [1.0, -0.5], [0.5, 1.0], [[1.0, 0.5]], [1.0, float("nan")]],
)
def test_bad_sigmas_raise(sigmas):
    with pytest.raises(ValueError, match="sigma|noise level"):
        annealed_langevin(lambda y, i: -y, torch.zeros(4, 2), sigmas, 0.1, 2)


def test_bad_points_and_scores_raise():
    with pytest.raises(ValueError, match="shape"):
        langevin(_id_score, torch.zeros(5), 0.1, 2)  # not (n, d)
    with pytest.raises(ValueError, match="score"):
        langevin(
            lambda y: y[:, :1], torch.zeros(5, 2), 0.1, 2
        )  # score of the wrong shape


def test_bad_schedule_arguments_raise():
    sched = Schedule.named("linear", 10)
    zero = lambda x, t: torch.zeros_like(x)
    for ts in ([11, 5], [5, 0], [3, 5], [5, 5, 1], [], [4.5, 2]):
        with pytest.raises(ValueError, match="timesteps"):
            annealed_langevin_sample(zero, sched, 8, 0.1, 1, timesteps=ts)
    with pytest.raises(ValueError, match="x_T"):
        annealed_langevin_sample(zero, sched, 8, 0.1, 1, x_T=torch.zeros(7, 2))
    with pytest.raises(ValueError, match="n "):
        annealed_langevin_sample(zero, sched, 0, 0.1, 1)
    with pytest.raises(ValueError, match="t must lie"):
        score_from_eps(zero, sched)(
            torch.zeros(3, 2), 0
        )  # σ_0 = 0: no score at the data
