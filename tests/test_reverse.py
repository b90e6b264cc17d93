"""Tests of ddpm_lib.reverse: the posterior q(x_{t−1} | x_t, x_0) and the reverse step p_θ.

References: Bayes' rule for a product of Gaussians, worked out in numpy in the test; a Monte Carlo
regression of x_{t−1} on x_t simulated in numpy from the forward chain; and eq. 2.3 solved by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lib import (
    Schedule,
    log_variance,
    mean_from_eps,
    p_step,
    posterior_mean_variance,
    predict_x0_from_eps,
)

EPS64 = np.finfo(np.float64).eps


def bayes_posterior(ref, x0, xt, t):
    """q(x_{t−1} | x_t, x_0) by Bayes' rule, per coordinate, for t ≥ 2 (numpy arrays; t of shape (n,)).

    Prior (eq. 2.3 at t−1):   x_{t−1} | x_0 ~ N(√ᾱ_{t−1} x_0, 1 − ᾱ_{t−1}).
    Likelihood (eq. 1.1):     x_t | x_{t−1} ~ N(√α_t x_{t−1}, β_t), i.e. in x_{t−1} a Gaussian factor
                              with precision α_t/β_t and precision-weighted mean √α_t x_t/β_t.
    Product of Gaussians:     precision = 1/(1−ᾱ_{t−1}) + α_t/β_t,
                              mean = var · (√ᾱ_{t−1} x_0/(1−ᾱ_{t−1}) + √α_t x_t/β_t).
    """
    abp, a, b = (
        ref.alpha_bar_prev[t][:, None],
        ref.alphas[t][:, None],
        ref.betas[t][:, None],
    )
    precision = 1 / (1 - abp) + a / b
    var = 1 / precision
    mean = var * (np.sqrt(abp) * x0 / (1 - abp) + np.sqrt(a) * xt / b)
    return mean, var


@pytest.mark.parametrize(
    "name, T", [("linear", 1000), ("cosine", 1000), ("sigmoid", 10), ("linear", 2)]
)
def test_posterior_matches_bayes_rule_at_every_step(name, T, numpy_schedule):
    """posterior_mean_variance gives the Bayes posterior (mean and variance) at every t = 2…T, with a
    different t per row, for arbitrary x_0 and x_t (float64)."""
    sched = Schedule.named(name, T)
    ref = numpy_schedule(sched.betas[1:])
    gen = torch.Generator().manual_seed(10)
    t = torch.arange(2, T + 1)
    x0 = 2 * torch.randn(len(t), 3, generator=gen, dtype=torch.float64)
    xt = 2 * torch.randn(len(t), 3, generator=gen, dtype=torch.float64)
    mean, var = posterior_mean_variance(x0, xt, t, sched)
    want_mean, want_var = bayes_posterior(ref, x0.numpy(), xt.numpy(), t.numpy())
    assert mean.shape == (len(t), 3) and var.shape == (len(t), 1)
    np.testing.assert_allclose(var.numpy(), want_var, rtol=1e-10)
    np.testing.assert_allclose(mean.numpy(), want_mean, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_posterior_at_t1_is_a_point_mass_at_x0(name):
    """At t = 1 the prior on x_0 is N(x_0, 0): the posterior is the point mass at x_0 (mean x_0,
    variance 0), whatever x_1 is."""
    sched = Schedule.named(name, 100)
    gen = torch.Generator().manual_seed(11)
    x0 = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    x1 = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    mean, var = posterior_mean_variance(x0, x1, 1, sched)
    np.testing.assert_allclose(mean.numpy(), x0.numpy(), rtol=1e-12, atol=1e-14)
    assert torch.all(var == 0)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("t", [2, 10, 500, 1000])
def test_posterior_matches_monte_carlo_regression(name, t, stats, numpy_schedule):
    """Simulate (x_{t−1}, x_t) from the forward chain given x_0 (in numpy), regress x_{t−1} on x_t by
    least squares: the slope, the intercept and the residual variance are the posterior's
    coefficient of x_t, its x_0 term, and β̃_t (Gaussian ⇒ E[x_{t−1}|x_t] is exactly linear)."""
    T, n = 1000, 200_000
    sched = Schedule.named(name, T)
    ref = numpy_schedule(sched.betas[1:])
    rng = np.random.default_rng(12 + t)
    x0 = np.array([1.5, -0.7])
    x_prev = np.sqrt(ref.alpha_bar[t - 1]) * x0 + np.sqrt(
        1 - ref.alpha_bar[t - 1]
    ) * rng.standard_normal((n, 2))
    x_t = np.sqrt(ref.alphas[t]) * x_prev + np.sqrt(ref.betas[t]) * rng.standard_normal(
        (n, 2)
    )

    # The library's posterior as an affine function of x_t: intercept at x_t = 0, slope from x_t = 1.
    x0_row = torch.tensor(x0)[None]
    at0, var = posterior_mean_variance(
        x0_row, torch.zeros(1, 2, dtype=torch.float64), t, sched
    )
    at1, _ = posterior_mean_variance(
        x0_row, torch.ones(1, 2, dtype=torch.float64), t, sched
    )
    lib_intercept, lib_slope, lib_var = (
        at0.numpy()[0],
        (at1 - at0).numpy()[0],
        var.item(),
    )

    for k in range(2):
        xk, yk = x_t[:, k], x_prev[:, k]
        vx = xk.var()
        slope = np.mean((xk - xk.mean()) * (yk - yk.mean())) / vx
        intercept = yk.mean() - slope * xk.mean()
        resid = yk - intercept - slope * xk
        rvar = resid.var()
        se_slope = math.sqrt(rvar / (n * vx))
        se_intercept = math.sqrt(rvar * (1 / n + xk.mean() ** 2 / (n * vx)))
        se_rvar = np.std(resid**2) / math.sqrt(n)
        stats.assert_close_stat(
            slope, se_slope, lib_slope[k], f"{name} t={t} coord {k}: slope"
        )
        stats.assert_close_stat(
            intercept,
            se_intercept,
            lib_intercept[k],
            f"{name} t={t} coord {k}: intercept",
        )
        stats.assert_close_stat(
            rvar, se_rvar, lib_var, f"{name} t={t} coord {k}: residual variance"
        )


def _true_noise_setup(sched, n_per_t=4, seed=13):
    """x_0, ε and x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε computed here (numpy ᾱ), for every t = 1…T."""
    from_t = np.repeat(np.arange(1, sched.T + 1), n_per_t)
    ab = np.cumprod(1 - sched.betas.numpy())
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((len(from_t), 2)) * 1.5
    eps = rng.standard_normal((len(from_t), 2))
    xt = np.sqrt(ab[from_t])[:, None] * x0 + np.sqrt(1 - ab[from_t])[:, None] * eps
    return torch.from_numpy(from_t), x0, eps, xt, ab


@pytest.mark.parametrize("name", ["linear", "cosine", "tanh"])
def test_mean_from_eps_with_true_noise_is_the_posterior_mean(name, numpy_schedule):
    """μ_θ(x_t) = (x_t − β_t/√(1−ᾱ_t) ε)/√α_t (eq. 4.5) equals the Bayes posterior mean μ̃_t(x_t, x_0)
    when ε is the noise that made x_t from x_0 (eq. 4.2 with x_0 = (x_t − √(1−ᾱ_t)ε)/√ᾱ_t), for t = 1…T.
    (At t = 1 the posterior mean is x_0 itself.)"""
    sched = Schedule.named(name, 1000)
    ref = numpy_schedule(sched.betas[1:])
    t, x0, eps, xt, _ = _true_noise_setup(sched)
    got = mean_from_eps(torch.from_numpy(xt), t, torch.from_numpy(eps), sched).numpy()
    tn = t.numpy()
    want = np.empty_like(x0)
    first = tn == 1
    want[first] = x0[first]
    want[~first] = bayes_posterior(ref, x0[~first], xt[~first], tn[~first])[0]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_misprinted_mean_is_not_the_posterior_mean(name, numpy_schedule):
    """Regression guard against the seed article's misprint μ = (x_t − β_t/√(1−α_t) ε)/√α_t (no bar):
    written out here, it misses the posterior mean by √β_t (1 − √(β_t/(1−ᾱ_t))) |ε|/√α_t, which is
    large for t ≥ 2, while mean_from_eps agrees with Bayes to rounding; mean_from_eps must not be
    the misprint."""
    sched = Schedule.named(name, 1000)
    ref = numpy_schedule(sched.betas[1:])
    t, x0, eps, xt, _ = _true_noise_setup(sched)
    tn = t.numpy()
    keep = tn >= 2
    tn, x0, eps, xt = tn[keep], x0[keep], eps[keep], xt[keep]
    b, a = ref.betas[tn][:, None], ref.alphas[tn][:, None]
    misprint = (xt - b / np.sqrt(1 - a) * eps) / np.sqrt(a)
    truth = bayes_posterior(ref, x0, xt, tn)[0]
    ours = mean_from_eps(
        torch.from_numpy(xt), torch.from_numpy(tn), torch.from_numpy(eps), sched
    ).numpy()
    rms_misprint = np.sqrt(np.mean((misprint - truth) ** 2))
    rms_ours = np.sqrt(np.mean((ours - truth) ** 2))
    assert rms_misprint > 0.01, rms_misprint
    assert rms_ours < 1e-6 * rms_misprint, (rms_ours, rms_misprint)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_predict_x0_from_eps_inverts_the_forward_jump(name):
    """x̂_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t recovers x_0 exactly from x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, for every t.
    Rounding allowance: dividing by √ᾱ_t amplifies the rounding of x_t (≈ eps·|x_t|) by 1/√ᾱ_t."""
    sched = Schedule.named(name, 1000)
    t, x0, eps, xt, ab = _true_noise_setup(sched)
    got = predict_x0_from_eps(
        torch.from_numpy(xt), t, torch.from_numpy(eps), sched
    ).numpy()
    tol = 16 * EPS64 * (np.abs(xt) + np.abs(eps) + 1) / np.sqrt(ab[t.numpy()])[:, None]
    err = np.abs(got - x0)
    assert np.all(err <= tol), (
        f"max error {err.max():.3g} (allowed there {tol.ravel()[err.argmax()]:.3g})"
    )


@pytest.mark.parametrize("variance", ["beta", "beta_tilde", "learned"])
def test_p_step_at_t1_returns_the_mean_without_noise(variance, numpy_schedule):
    """The last step (t = 1) returns μ_θ(x_1, 1) = (x_1 − β_1/√(1−ᾱ_1) ε̂)/√α_1 exactly, with no noise:
    two different generators give the same output; with the true ε it is x_0 itself."""
    sched = Schedule.named("linear", 100)
    ref = numpy_schedule(sched.betas[1:])
    rng = np.random.default_rng(14)
    x0 = rng.standard_normal((1000, 2))
    eps = rng.standard_normal((1000, 2))
    x1 = np.sqrt(ref.alpha_bar[1]) * x0 + np.sqrt(1 - ref.alpha_bar[1]) * eps
    out = torch.from_numpy(eps)
    if variance == "learned":
        out = torch.cat([out, torch.zeros(1000, 2, dtype=torch.float64)], dim=1)
    a = p_step(
        torch.from_numpy(x1),
        1,
        out,
        sched,
        variance,
        generator=torch.Generator().manual_seed(1),
    )
    b = p_step(
        torch.from_numpy(x1),
        1,
        out,
        sched,
        variance,
        generator=torch.Generator().manual_seed(2),
    )
    assert torch.equal(a, b)
    want = (x1 - ref.betas[1] / np.sqrt(1 - ref.alpha_bar[1]) * eps) / np.sqrt(
        ref.alphas[1]
    )
    np.testing.assert_allclose(a.numpy(), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.numpy(), x0, atol=1e-9)


def _variance_cases(ref, t):
    """(variance name, v for 'learned' or None, expected σ_t²) for one step t ≥ 2, all from numpy."""
    beta, beta_tilde = ref.betas[t], ref.posterior_variance[t]
    return [
        ("beta", None, beta),
        ("beta_tilde", None, beta_tilde),
        ("learned", 1.0, beta),
        ("learned", -1.0, beta_tilde),
        ("learned", 0.0, math.sqrt(beta * beta_tilde)),
    ]  # w = ½: geometric mean


@pytest.mark.parametrize("t", [2, 50, 100])
def test_p_step_noise_has_the_chosen_variance(t, stats, numpy_schedule):
    """For t ≥ 2, x_{t−1} = μ_θ + σ_t z: with ε̂ = 0 the output's mean is x_t/√α_t and its variance is
    σ_t² = β_t ("beta"), β̃_t ("beta_tilde"), or for "learned" exp(w log β_t + (1−w) log β̃_t) with
    w = (v+1)/2 (β_t at v = 1, β̃_t at v = −1). Monte Carlo over 200k points."""
    sched = Schedule.named("linear", 100)
    ref = numpy_schedule(sched.betas[1:])
    n = 200_000
    xt = torch.full((n, 2), 0.7, dtype=torch.float64)
    for k, (variance, v, want_var) in enumerate(_variance_cases(ref, t)):
        out = torch.zeros(n, 2, dtype=torch.float64)
        if v is not None:
            out = torch.cat([out, torch.full((n, 2), v, dtype=torch.float64)], dim=1)
        x = p_step(
            xt,
            t,
            out,
            sched,
            variance,
            generator=torch.Generator().manual_seed(100 * t + k),
        )
        resid = x.numpy() - 0.7 / np.sqrt(ref.alphas[t])
        mean, se = stats.mean_and_se(resid)
        stats.assert_close_stat(mean, se, np.zeros(2), f"t={t}, {variance} v={v}: mean")
        cov, se_cov = stats.cov_and_se(resid)
        stats.assert_close_stat(
            cov, se_cov, want_var * np.eye(2), f"t={t}, {variance} v={v}: covariance"
        )


@pytest.mark.parametrize("T", [1, 2, 100])
def test_log_variance_values(T, numpy_schedule):
    """log σ_t²: "beta" is log β_t; "beta_tilde" is log β̃_t with β̃_1 = 0 clipped to β̃_2 (β_1 when
    T = 1); "learned" with v = 1 is log β_t, with v = −1 the clipped log β̃_t, and w = (v+1)/2
    interpolates the logs linearly. Shapes: (n, 1), or (n, d) for "learned"."""
    sched = Schedule.named("linear", T)
    ref = numpy_schedule(sched.betas[1:])
    t = torch.arange(1, T + 1)
    like = torch.zeros(1, dtype=torch.float64)
    clipped = ref.posterior_variance.copy()
    clipped[1] = ref.posterior_variance[2] if T > 1 else ref.betas[1]
    log_b, log_bt = np.log(ref.betas[1:]), np.log(clipped[1:])
    lb = log_variance(t, sched, "beta", like=like)
    lbt = log_variance(t, sched, "beta_tilde", like=like)
    assert lb.shape == (T, 1) and lbt.shape == (T, 1)
    np.testing.assert_allclose(lb.numpy()[:, 0], log_b, rtol=1e-12)
    np.testing.assert_allclose(lbt.numpy()[:, 0], log_bt, rtol=1e-12)
    for v, w in [(1.0, 1.0), (-1.0, 0.0), (0.5, 0.75)]:
        got = log_variance(
            t, sched, "learned", torch.full((T, 3), v, dtype=torch.float64), like=like
        )
        assert got.shape == (T, 3)
        np.testing.assert_allclose(
            got.numpy(),
            np.repeat((w * log_b + (1 - w) * log_bt)[:, None], 3, 1),
            rtol=1e-12,
        )


def test_unknown_variance_name_is_rejected():
    """An unknown variance name is a ValueError listing the allowed ones, in log_variance and p_step."""
    sched = Schedule.named("linear", 10)
    for call in (
        lambda: log_variance(torch.tensor([2]), sched, "fixed"),
        lambda: p_step(
            torch.zeros(3, 2), 2, torch.zeros(3, 2), sched, variance="fixed"
        ),
    ):
        with pytest.raises(
            ValueError,
            match=r"variance must be one of beta, beta_tilde, learned, got 'fixed'",
        ):
            call()


def test_learned_variance_needs_nu():
    """variance="learned" with a model output of d columns (no v) says the v output is needed."""
    sched = Schedule.named("linear", 10)
    with pytest.raises(ValueError, match=r"learned.*variance output nu"):
        p_step(torch.zeros(3, 2), 5, torch.zeros(3, 2), sched, variance="learned")


@pytest.mark.parametrize("cols", [1, 3, 5])
def test_model_output_with_wrong_number_of_columns(cols):
    """p_step needs a model output of d (ε̂) or 2d (ε̂, ν) columns; the message gives both and what it got."""
    sched = Schedule.named("linear", 10)
    with pytest.raises(ValueError, match=rf"d = 2 or 2d = 4 columns, got {cols}"):
        p_step(torch.zeros(3, 2), 5, torch.zeros(3, cols), sched)


def test_shape_errors_in_posterior_helpers():
    """x_0 and x_t must have the same shape; ε must match x_t; the messages give both shapes."""
    sched = Schedule.named("linear", 10)
    with pytest.raises(ValueError, match=r"x0 must have the same shape as xt"):
        posterior_mean_variance(torch.zeros(3, 2), torch.zeros(4, 2), 2, sched)
    for fn in (mean_from_eps, predict_x0_from_eps):
        with pytest.raises(ValueError, match=r"eps must have the same shape as xt"):
            fn(torch.zeros(3, 2), 2, torch.zeros(3, 1), sched)
        with pytest.raises(ValueError, match=r"t must lie in 1…10"):
            fn(torch.zeros(3, 2), 0, torch.zeros(3, 2), sched)
