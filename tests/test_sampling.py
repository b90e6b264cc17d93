"""Tests of ddpm_lib.sampling: ancestral DDPM and DDIM, end to end, without training.

The test bed is Gaussian data x_0 ~ N(m, s² I), where everything is known in closed form:

    q(x_t) = N(√ᾱ_t m, (ᾱ_t s² + 1 − ᾱ_t) I),
    E[ε | x_t] = √(1−ᾱ_t) (x_t − √ᾱ_t m) / (ᾱ_t s² + 1 − ᾱ_t)     (conftest.gaussian_eps)

and, since this optimal predictor is affine in x_t, every sampler step is x_s = A x_t + C + σ z with
scalars A, C, σ. Starting from x_T ~ N(0, I), the law of the sampler's output is therefore *exactly*
Gaussian, with a mean and a variance that a scalar recursion gives (ddpm_law, ddim_law below,
derived from the papers' formulas, not from the library). That exact law is the reference; how far
it is from N(m, s²) is the sampler's discretisation error, measured here too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lib import SCHEDULES, Schedule, ddim_sample, ddim_timesteps, ddpm_sample

M = np.array([1.5, -0.5])
S = 0.3


def ddpm_law(ref, m, s, variance):
    """Exact mean (d,) and variance of ddpm_sample's output for N(m, s²) data and the optimal ε̂.

    With v_t = ᾱ_t s² + 1 − ᾱ_t, ε̂ = √(1−ᾱ_t)(x_t − √ᾱ_t m)/v_t and μ_θ = (x_t − β_t/√(1−ᾱ_t) ε̂)/√α_t
    (Ho et al. 2020, eq. 11), the step is x_{t−1} = A_t x_t + C_t + σ_t z with
        A_t = (1 − β_t/v_t)/√α_t,   C_t = β_t √ᾱ_t m/(v_t √α_t),
    σ_t² = β_t or β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t) β_t, and σ_1 = 0. So mean ← A mean + C, var ← A² var + σ².
    """
    mean, var = np.zeros_like(m, dtype=float), 1.0
    for t in range(ref.T, 0, -1):
        ab, b, a = ref.alpha_bar[t], ref.betas[t], ref.alphas[t]
        v = ab * s**2 + 1 - ab
        A = (1 - b / v) / math.sqrt(a)
        C = b * math.sqrt(ab) * m / (v * math.sqrt(a))
        sigma2 = (
            0.0
            if t == 1
            else (
                b if variance == "beta" else (1 - ref.alpha_bar[t - 1]) / (1 - ab) * b
            )
        )
        mean, var = A * mean + C, A * A * var + sigma2
    return mean, var


def numpy_taus(T, steps):
    """Evenly spaced kept steps T = τ_S > … > τ_1 (then 0), rounded: the DDIM sub-sequence."""
    return [int(v) for v in np.round(np.linspace(T, 0, steps + 1)[:-1])]


def ddim_law(ref, m, s, steps, eta):
    """Exact mean and variance of ddim_sample's output (η ≤ 1) for N(m, s²) data and the optimal ε̂.

    Song et al. (2021, eq. 12), from t to the previous kept step s (ᾱ_0 = 1 at the end):
        x̂_0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t,   σ² = η² (1−ᾱ_s)/(1−ᾱ_t) (1 − ᾱ_t/ᾱ_s),
        x_s = √ᾱ_s x̂_0 + √(1−ᾱ_s−σ²) ε̂ + σ z.
    With ε̂ = c (x_t − √ᾱ_t m), c = √(1−ᾱ_t)/v_t, this is x_s = A x_t + C + σ z with
        A = √ᾱ_s (1 − √(1−ᾱ_t) c)/√ᾱ_t + √(1−ᾱ_s−σ²) c,
        C = (√ᾱ_s √(1−ᾱ_t) − √(1−ᾱ_s−σ²) √ᾱ_t) c m.
    """
    taus = numpy_taus(ref.T, steps) + [0]
    mean, var = np.zeros_like(m, dtype=float), 1.0
    for t, s_ in zip(taus[:-1], taus[1:]):
        ab_t, ab_s = ref.alpha_bar[t], ref.alpha_bar[s_]
        v = ab_t * s**2 + 1 - ab_t
        c = math.sqrt(1 - ab_t) / v
        sig2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
        d = math.sqrt(max(1 - ab_s - sig2, 0.0))
        A = math.sqrt(ab_s) * (1 - math.sqrt(1 - ab_t) * c) / math.sqrt(ab_t) + d * c
        C = (math.sqrt(ab_s) * math.sqrt(1 - ab_t) - d * math.sqrt(ab_t)) * c * m
        mean, var = A * mean + C, A * A * var + sig2
    return mean, var


def _check_law(x, mean, var, stats, what):
    """Sample mean and covariance of x (n, d) against N(mean, var I), within 5 standard errors."""
    mu, se = stats.mean_and_se(x)
    stats.assert_close_stat(mu, se, mean, f"{what}: mean")
    cov, se_cov = stats.cov_and_se(x)
    stats.assert_close_stat(cov, se_cov, var * np.eye(len(mean)), f"{what}: covariance")


# ---------------------------------------------------------------------------
# DDPM
# ---------------------------------------------------------------------------


def test_ddpm_reproduces_gaussian_data(gaussian_eps, numpy_schedule, stats):
    """T = 1000 linear, σ_t² = β_t, the optimal ε̂: 40000 samples have mean m and variance s² within
    sampling error, and match the sampler's exact law. The exact law (ddpm_law) shows the finite-T
    bias is small here: < 1% of s² in the variance (≈ +0.6%), < 1e-4 in the mean."""
    sched = Schedule.named("linear", 1000)
    ref = numpy_schedule(sched.betas[1:])
    law_mean, law_var = ddpm_law(ref, M, S, "beta")
    assert abs(law_var / S**2 - 1) < 0.01 and np.max(np.abs(law_mean - M)) < 1e-4
    x = ddpm_sample(
        gaussian_eps(sched, M, S),
        sched,
        40_000,
        variance="beta",
        generator=torch.Generator().manual_seed(20),
    )
    assert x.shape == (40_000, 2) and torch.isfinite(x).all()
    _check_law(x, M, S**2, stats, "DDPM β, T=1000 vs N(m, s²)")
    _check_law(x, law_mean, law_var, stats, "DDPM β, T=1000 vs its exact law")


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_ddpm_matches_its_exact_law_at_T100(
    variance, gaussian_eps, numpy_schedule, stats
):
    """At T = 100 the discretisation bias is large and depends on σ_t² (exact law: variance +5% of s²
    with β_t, −18% with β̃_t, which under-disperses data spread wider than a point): the samples
    follow the exact law, and are measurably not N(m, s²) for β̃_t."""
    sched = Schedule.named("linear", 100)
    ref = numpy_schedule(sched.betas[1:])
    law_mean, law_var = ddpm_law(ref, M, S, variance)
    x = ddpm_sample(
        gaussian_eps(sched, M, S),
        sched,
        40_000,
        variance=variance,
        generator=torch.Generator().manual_seed(21),
    )
    _check_law(x, law_mean, law_var, stats, f"DDPM {variance}, T=100 vs its exact law")
    if variance == "beta_tilde":
        cov, se = stats.cov_and_se(x)
        assert np.all(np.diag(cov) < S**2 - stats.Z * np.diag(se)), (
            "β̃ at T=100 should under-disperse"
        )


def test_ddpm_beta_tilde_bias_at_T1000_is_small_but_real(numpy_schedule):
    """Documented by the exact law (no sampling): at T = 1000, σ_t² = β̃_t gives output variance
    ≈ 0.975 s² (−2.5%), β_t gives ≈ 1.006 s²; the two bracket s², β_t is closer."""
    ref = numpy_schedule(Schedule.named("linear", 1000).betas[1:])
    _, v_beta = ddpm_law(ref, M, S, "beta")
    _, v_tilde = ddpm_law(ref, M, S, "beta_tilde")
    assert v_tilde < S**2 < v_beta
    assert 0.96 < v_tilde / S**2 < 0.99 and abs(v_beta / S**2 - 1) < abs(
        v_tilde / S**2 - 1
    )


def test_ddpm_trajectory_and_seed():
    """return_trajectory gives (T+1, n, d) with entry T = x_T and entry 0 = the samples; the same
    generator seed gives the same samples."""
    sched = Schedule.named("linear", 20)
    model = lambda x, t: 0.1 * x  # noqa: E731
    x_T = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    x, traj = ddpm_sample(
        model,
        sched,
        5,
        d=3,
        x_T=x_T,
        return_trajectory=True,
        generator=torch.Generator().manual_seed(1),
    )
    assert traj.shape == (21, 5, 3)
    assert torch.equal(traj[20], x_T) and torch.equal(traj[0], x)
    y = ddpm_sample(
        model, sched, 5, d=3, x_T=x_T, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(x, y)


# ---------------------------------------------------------------------------
# DDIM
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ddim_eta1_all_steps_is_ddpm_beta_tilde_pointwise(name, dtype, gaussian_eps):
    """With η = 1 and steps = T, DDIM's σ² = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t = β̃_t and its mean equals μ̃_t(x_t, x̂_0)
    = μ_θ: it is ancestral DDPM with σ_t² = β̃_t. Both draw one z per step for t ≥ 2 and none at t = 1,
    so from the same x_T and generator seed they agree pointwise (whole trajectories).
    Rounding allowance: T steps, each with relative rounding ≈ eps of the dtype: T·eps·(1 + max|x|)."""
    T, n = 1000, 500
    sched = Schedule.named(name, T)
    model = gaussian_eps(sched, M, S)
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(22)).to(dtype)
    a, ta = ddpm_sample(
        model,
        sched,
        n,
        variance="beta_tilde",
        x_T=x_T,
        return_trajectory=True,
        generator=torch.Generator().manual_seed(23),
    )
    b, tb = ddim_sample(
        model,
        sched,
        n,
        steps=T,
        eta=1.0,
        x_T=x_T,
        return_trajectory=True,
        generator=torch.Generator().manual_seed(23),
    )
    assert ta.shape == tb.shape == (T + 1, n, 2)
    atol = T * torch.finfo(dtype).eps * (1 + ta.abs().max().item())
    err = (ta - tb).abs().max().item()
    assert err <= atol, f"max |DDPM − DDIM(η=1)| = {err:.3g} > {atol:.3g}"
    assert torch.equal(a, ta[0]) and torch.equal(b, tb[0])


def test_ddim_eta1_all_steps_has_the_ddpm_beta_tilde_law(
    gaussian_eps, numpy_schedule, stats
):
    """In distribution too: DDIM η = 1, steps = T = 1000 follows the exact law of DDPM with β̃_t
    (variance ≈ 0.975 s²)."""
    sched = Schedule.named("linear", 1000)
    ref = numpy_schedule(sched.betas[1:])
    law_mean, law_var = ddpm_law(ref, M, S, "beta_tilde")
    x = ddim_sample(
        gaussian_eps(sched, M, S),
        sched,
        20_000,
        steps=1000,
        eta=1.0,
        generator=torch.Generator().manual_seed(24),
    )
    _check_law(x, law_mean, law_var, stats, "DDIM η=1, steps=T vs DDPM β̃ law")


@pytest.mark.parametrize("steps", [10, 50])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_matches_its_exact_law(steps, eta, gaussian_eps, numpy_schedule, stats):
    """DDIM on a sub-sequence of steps follows the exact law of eq. 12 (ddim_law) for η = 0, ½, 1.
    (η = 0 slightly shrinks the variance at few steps: by Cauchy–Schwarz each deterministic step
    maps variance v_t to at most v_s.)"""
    sched = Schedule.named("linear", 1000)
    ref = numpy_schedule(sched.betas[1:])
    law_mean, law_var = ddim_law(ref, M, S, steps, eta)
    x = ddim_sample(
        gaussian_eps(sched, M, S),
        sched,
        20_000,
        steps=steps,
        eta=eta,
        generator=torch.Generator().manual_seed(25 + steps),
    )
    _check_law(
        x, law_mean, law_var, stats, f"DDIM steps={steps} η={eta} vs its exact law"
    )


def test_ddim_eta0_is_deterministic_and_eta_half_is_not(gaussian_eps):
    """η = 0: the output is a function of x_T alone (different generator seeds, identical outputs);
    η = ½ adds noise at each step (different seeds, different outputs)."""
    sched = Schedule.named("linear", 100)
    model = gaussian_eps(sched, M, S)
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(26))
    run = lambda eta, seed: ddim_sample(
        model,
        sched,
        200,
        steps=25,
        eta=eta,
        x_T=x_T,  # noqa: E731
        generator=torch.Generator().manual_seed(seed),
    )
    assert torch.equal(run(0.0, 1), run(0.0, 2))
    assert not torch.allclose(run(0.5, 1), run(0.5, 2), atol=1e-3)


def _standard_normal_eps(sched):
    """The optimal ε̂ for N(0, I) data, E[ε | x_t] = √(1−ᾱ_t) x_t: one multiply, a cheap predictor."""
    root = torch.from_numpy(np.sqrt(1 - np.cumprod(1 - sched.betas.numpy()))).float()
    return lambda x, t: root[t][:, None] * x


ETAS = (0.0, 0.25, 0.5, 1.0)


@pytest.mark.parametrize("name", SCHEDULES)
def test_ddim_is_finite_for_every_step_count(name):
    """ddim_sample returns finite values for every steps = 1…T at T = 100, and for steps ∈ {1, 2, 3, 7, 50}
    at T = 1000, with η ∈ {0, ¼, ½, 1}. Where NaN could come from: √(1 − ᾱ_s − σ²), whose argument is
    exactly 0 in exact arithmetic at η = 1 and s = 0 (so rounding could make it negative); and 1/√ᾱ_t in x̂_0 when ᾱ_T is tiny (cosine: ᾱ_T ≈ 2e-9 at T = 1000).

    Cost: a DDIM step costs ≈ 0.3 ms of per-call overhead here, so the full product (every steps value
    × every η) would take ≈ 45 s for the six schedules. Instead η rotates over the four values along
    the steps sweep at T = 100 (every steps value is run, each η on 25 of them), and all four η are
    run at T = 1000 for the subsample. (steps = T = 1000 with η = 1 is run, finite, by
    test_ddim_eta1_all_steps_is_ddpm_beta_tilde_pointwise for the linear and cosine schedules.)"""
    scheds = {T: Schedule.named(name, T) for T in (100, 1000)}
    models = {T: _standard_normal_eps(s) for T, s in scheds.items()}
    cases = [(100, steps, ETAS[steps % 4]) for steps in range(1, 101)]
    cases += [(1000, steps, eta) for steps in (1, 2, 3, 7, 50) for eta in ETAS]
    gen = torch.Generator().manual_seed(27)
    bad = []
    for T, steps, eta in cases:
        x = ddim_sample(models[T], scheds[T], 2, steps=steps, eta=eta, generator=gen)
        if not torch.isfinite(x).all():
            bad.append((T, steps, eta))
    assert not bad, f"{name}: non-finite DDIM output for (T, steps, η) in {bad[:10]}"


@pytest.mark.parametrize("T", [1, 2, 3, 7, 100, 1000])
def test_ddim_timesteps_are_evenly_spaced_distinct_and_start_at_T(T):
    """ddim_timesteps(steps) is `steps` distinct integers, strictly decreasing, starting at T and
    ending at ≥ 1; the gaps (including the last one down to 0) are ⌊T/steps⌋ or ⌈T/steps⌉."""
    sched = Schedule.named("linear", T)
    for steps in range(1, T + 1):
        taus = ddim_timesteps(sched, steps)
        assert len(taus) == steps and all(isinstance(v, int) for v in taus)
        assert taus[0] == T and taus[-1] >= 1
        gaps = np.diff(np.array(taus + [0]))
        assert np.all(gaps < 0), (T, steps, taus)
        assert set((-gaps).tolist()) <= {T // steps, -(-T // steps)}, (T, steps, taus)
    assert ddim_timesteps(sched, T) == list(range(T, 0, -1))


def test_ddim_trajectory_shapes():
    """return_trajectory gives (steps+1, n, d) with entry `steps` = x_T and entry 0 = the samples."""
    sched = Schedule.named("linear", 100)
    x_T = torch.randn(4, 2, generator=torch.Generator().manual_seed(28))
    x, traj = ddim_sample(
        lambda x, t: 0.1 * x, sched, 4, steps=7, x_T=x_T, return_trajectory=True
    )
    assert traj.shape == (8, 4, 2)
    assert torch.equal(traj[7], x_T) and torch.equal(traj[0], x)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

SCHED = Schedule.named("linear", 100)
ZERO = lambda x, t: torch.zeros_like(x)  # noqa: E731


@pytest.mark.parametrize("steps", [0, 101, -1, 2.0, True])
def test_bad_steps(steps):
    """steps must be an integer from 1 to T: the message gives T."""
    with pytest.raises(ValueError, match=r"steps must be an integer from 1 to T = 100"):
        ddim_sample(ZERO, SCHED, 4, steps=steps)
    with pytest.raises(ValueError, match=r"steps must be an integer from 1 to T = 100"):
        ddim_timesteps(SCHED, steps)


@pytest.mark.parametrize("eta", [-0.1, float("nan"), 1.5])
def test_bad_eta(eta):
    """0 ≤ η ≤ 1 (NaN too is refused)."""
    with pytest.raises(ValueError, match=r"eta must be a finite number in \[0, 1\]"):
        ddim_sample(ZERO, SCHED, 4, steps=10, eta=eta)


@pytest.mark.parametrize("n", [0, -5, 2.0, True])
def test_bad_n(n):
    """n must be an integer ≥ 1, in both samplers."""
    with pytest.raises(
        ValueError, match=r"n \(the number of samples\) must be an integer ≥ 1"
    ):
        ddpm_sample(ZERO, SCHED, n)
    with pytest.raises(
        ValueError, match=r"n \(the number of samples\) must be an integer ≥ 1"
    ):
        ddim_sample(ZERO, SCHED, n, steps=10)


def test_bad_x_T_shape():
    """x_T must have shape (n, d); the message gives the expected and the received shapes."""
    for call in (
        lambda: ddpm_sample(ZERO, SCHED, 4, x_T=torch.zeros(3, 2)),
        lambda: ddim_sample(ZERO, SCHED, 4, steps=10, x_T=torch.zeros(4, 3)),
    ):
        with pytest.raises(
            ValueError, match=r"x_T must have shape \(n, d\) = \(4, 2\)"
        ):
            call()


def test_bad_variance_name_in_ddpm_sample():
    """An unknown variance is refused before sampling, with the allowed names."""
    with pytest.raises(
        ValueError,
        match=r"variance must be one of beta, beta_tilde, learned, got 'tilde'",
    ):
        ddpm_sample(ZERO, SCHED, 4, variance="tilde")
