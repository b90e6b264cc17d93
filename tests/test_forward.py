"""Tests of ddpm_lib.forward: the noising chain q.

References: the closed form q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I) with ᾱ_t = ∏(1−β_s) computed in
numpy, checked against Monte Carlo runs of the one-step chain (means and covariances within 5
standard errors estimated from the sample itself).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpm_lib import Schedule, q_sample, q_step, q_trajectory

#: A few fixed starting points x_0 (d = 2); each is repeated REPEATS times.
X0_POINTS = torch.tensor(
    [[1.5, -0.5], [0.0, 0.0], [-2.0, 1.0], [3.0, 2.0]], dtype=torch.float64
)
REPEATS = 25_000  # 100k rows in all
T_CHAIN = 100


def _repeated_x0():
    return X0_POINTS.repeat_interleave(REPEATS, dim=0)


def _check_gaussian_groups(x, alpha_bar_t, stats, what):
    """Per starting point: sample mean vs √ᾱ_t x_0 and sample covariance vs (1−ᾱ_t) I."""
    for k, x0 in enumerate(X0_POINTS):
        group = x[k * REPEATS : (k + 1) * REPEATS]
        mean, se_mean = stats.mean_and_se(group)
        stats.assert_close_stat(
            mean,
            se_mean,
            np.sqrt(alpha_bar_t) * x0.numpy(),
            f"{what}, x0={x0.tolist()}: mean",
        )
        cov, se_cov = stats.cov_and_se(group)
        stats.assert_close_stat(
            cov,
            se_cov,
            (1 - alpha_bar_t) * np.eye(2),
            f"{what}, x0={x0.tolist()}: covariance",
        )


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_chain_of_q_steps_matches_closed_form(name, stats, numpy_schedule):
    """t steps of x_t = √(1−β_t) x_{t−1} + √β_t ε (q_step) give the law N(√ᾱ_t x_0, (1−ᾱ_t) I) of
    eq. 2.3, for t = 1, 5, T/2, T: Monte Carlo mean and covariance, 25k chains per x_0."""
    sched = Schedule.named(name, T_CHAIN)
    ab = numpy_schedule(sched.betas[1:]).alpha_bar
    gen = torch.Generator().manual_seed(1)
    x = _repeated_x0()
    check_at = {1, 5, T_CHAIN // 2, T_CHAIN}
    for t in range(1, T_CHAIN + 1):
        x = q_step(x, t, sched, generator=gen)
        if t in check_at:
            _check_gaussian_groups(x, ab[t], stats, f"{name}, t={t}, chain of q_step")


@pytest.mark.parametrize(
    "name, T", [("linear", 100), ("cosine", 100), ("sigmoid", 100), ("linear", 1000)]
)
def test_q_sample_matches_closed_form_in_distribution(name, T, stats, numpy_schedule):
    """q_sample(x_0, t) is distributed as N(√ᾱ_t x_0, (1−ᾱ_t) I), for t = 1, 5, T/2, T."""
    sched = Schedule.named(name, T)
    ab = numpy_schedule(sched.betas[1:]).alpha_bar
    gen = torch.Generator().manual_seed(2)
    x0 = _repeated_x0()
    for t in (1, 5, T // 2, T):
        _check_gaussian_groups(
            q_sample(x0, t, sched, generator=gen),
            ab[t],
            stats,
            f"{name}, t={t}, q_sample",
        )


def test_q_sample_with_given_noise_is_the_closed_form(numpy_schedule):
    """With ε given, q_sample returns exactly √ᾱ_t x_0 + √(1−ᾱ_t) ε (ᾱ in numpy), row by row with a
    different t per row, and t = 0 returns x_0."""
    sched = Schedule.named("linear", 1000)
    ab = numpy_schedule(sched.betas[1:]).alpha_bar
    gen = torch.Generator().manual_seed(3)
    t = torch.arange(0, 1001)
    x0 = torch.randn(1001, 3, generator=gen, dtype=torch.float64)
    eps = torch.randn(1001, 3, generator=gen, dtype=torch.float64)
    want = np.sqrt(ab)[:, None] * x0.numpy() + np.sqrt(1 - ab)[:, None] * eps.numpy()
    np.testing.assert_allclose(
        q_sample(x0, t, sched, noise=eps).numpy(), want, rtol=1e-12, atol=1e-14
    )
    assert torch.equal(q_sample(x0[:5], 0, sched, noise=eps[:5]), x0[:5])


def test_q_step_with_given_noise_is_one_step(numpy_schedule):
    """With ε given, q_step returns exactly √(1−β_t) x_{t−1} + √β_t ε, for a different t per row."""
    sched = Schedule.named("cosine", 50)
    b = numpy_schedule(sched.betas[1:]).betas
    gen = torch.Generator().manual_seed(4)
    t = torch.arange(1, 51)
    x = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    want = (
        np.sqrt(1 - b[1:])[:, None] * x.numpy() + np.sqrt(b[1:])[:, None] * eps.numpy()
    )
    np.testing.assert_allclose(
        q_step(x, t, sched, noise=eps).numpy(), want, rtol=1e-12, atol=1e-14
    )


def test_q_trajectory_shape_start_and_markov_increments(stats, numpy_schedule):
    """q_trajectory returns (T+1, n, d) with entry 0 equal to x_0; each step is one Gaussian step:
    the increment (x_t − √α_t x_{t−1})/√β_t has mean 0, variance 1 and is uncorrelated with x_{t−1};
    and x_t has the closed-form variance ᾱ_t Var(x_0) + 1 − ᾱ_t (x_0 standard normal here: 1)."""
    sched = Schedule.named("linear", 10)
    ref = numpy_schedule(sched.betas[1:])
    gen = torch.Generator().manual_seed(5)
    n = 50_000
    x0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    traj = q_trajectory(x0, sched, generator=gen)
    assert traj.shape == (11, n, 2)
    assert torch.equal(traj[0], x0)
    for t in range(1, 11):
        inc = (
            (traj[t] - np.sqrt(ref.alphas[t]) * traj[t - 1]) / np.sqrt(ref.betas[t])
        ).numpy()
        mean, se = stats.mean_and_se(inc)
        stats.assert_close_stat(mean, se, np.zeros(2), f"t={t}: increment mean")
        joint = np.concatenate([inc, traj[t - 1].numpy()], axis=1)
        cov, se_cov = stats.cov_and_se(joint)
        stats.assert_close_stat(
            np.diag(cov)[:2],
            np.diag(se_cov)[:2],
            np.ones(2),
            f"t={t}: increment variance",
        )
        stats.assert_close_stat(
            np.diag(cov[:2, 2:]),
            np.diag(se_cov[:2, 2:]),
            np.zeros(2),
            f"t={t}: increment correlated with x_(t-1)",
        )
        var_t, se_var = stats.cov_and_se(traj[t].numpy())
        stats.assert_close_stat(
            np.diag(var_t), np.diag(se_var), np.ones(2) * 1.0, f"t={t}: Var x_t"
        )


def test_same_generator_seed_same_draws():
    """q_sample and q_step draw their noise from the generator: same seed, same result."""
    sched = Schedule.named("linear", 100)
    x0 = torch.zeros(7, 2)
    a = q_sample(x0, 50, sched, generator=torch.Generator().manual_seed(9))
    b = q_sample(x0, 50, sched, generator=torch.Generator().manual_seed(9))
    c = q_sample(x0, 50, sched, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float32


# ---------------------------------------------------------------------------
# Errors: each message says what is allowed
# ---------------------------------------------------------------------------

SCHED10 = Schedule.named("linear", 10)


@pytest.mark.parametrize("fn", [q_step, q_sample])
def test_points_must_be_n_by_d(fn):
    """x of shape (n,) is refused: the message asks for shape (n, d)."""
    with pytest.raises(ValueError, match=r"shape \(n, d\).*got shape \(5,\)"):
        fn(torch.zeros(5), 1, SCHED10)


def test_points_must_be_a_tensor():
    """A numpy array instead of a tensor is refused with a TypeError that names the type."""
    with pytest.raises(TypeError, match=r"torch.Tensor.*ndarray"):
        q_sample(np.zeros((5, 2)), 1, SCHED10)


@pytest.mark.parametrize(
    "fn, t, allowed",
    [
        (q_step, 0, "1…10"),
        (q_step, 11, "1…10"),
        (q_sample, 11, "0…10"),
        (q_sample, -1, "0…10"),
    ],
)
def test_steps_out_of_range(fn, t, allowed):
    """q_step needs t in 1…T (there is no step 0); q_sample allows 0…T; the message gives the range."""
    with pytest.raises(ValueError, match=allowed):
        fn(torch.zeros(3, 2), t, SCHED10)
    with pytest.raises(ValueError, match=allowed):
        fn(torch.zeros(3, 2), torch.tensor([1, 2, t]), SCHED10)


@pytest.mark.parametrize("fn", [q_step, q_sample])
def test_steps_must_be_integers(fn):
    """t of float dtype (e.g. 2.0) is refused: steps are integers."""
    with pytest.raises(TypeError, match=r"integer steps.*float"):
        fn(torch.zeros(3, 2), torch.tensor([1.0, 2.0, 3.0]), SCHED10)
    with pytest.raises(TypeError, match=r"integer steps"):
        fn(torch.zeros(3, 2), 2.0, SCHED10)


@pytest.mark.parametrize("fn", [q_step, q_sample])
def test_steps_must_have_one_per_point(fn):
    """t of shape (n+1,) is refused: one step per point, or a single step."""
    with pytest.raises(ValueError, match=r"t must have shape \(n,\) = \(3,\)"):
        fn(torch.zeros(3, 2), torch.tensor([1, 2, 3, 4]), SCHED10)


@pytest.mark.parametrize("fn", [q_step, q_sample])
def test_noise_must_match_x(fn):
    """noise of a different shape from x is refused; the message gives both shapes."""
    with pytest.raises(
        ValueError, match=r"noise must have the same shape as x.*\(3, 2\).*\(3, 1\)"
    ):
        fn(torch.zeros(3, 2), 1, SCHED10, noise=torch.zeros(3, 1))
