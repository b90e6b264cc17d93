"""Tests of ddpm_lib.schedules: β_t and everything derived from it.

References used here, all independent of the library's code path:
- ᾱ_t = ∏_{s≤t} (1 − β_s) and the posterior quantities, re-derived in numpy (conftest.numpy_schedule);
- the continuous-time definition ᾱ(s) = exp(−∫_0^s b(u) du) of the rate-based schedules, with the
  integral of each rate shape worked out by hand (closed-form antiderivatives, in numpy);
- the β_1 = 1e-4 … β_T = 0.02 schedule of Ho et al. (2020), as printed in the paper.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch

import ddpm_lib
from ddpm_lib import SCHEDULES, Schedule, make_betas

#: The issue's hard requirement: every built-in schedule ends at pure noise.
ALPHA_BAR_T_MAX = 1e-3
#: Largest T checked exhaustively (every T from 1 or 2 up to this).
T_MAX = 1000
EPS64 = np.finfo(np.float64).eps

# Documented constants of the rate-based schedules: b(s) = B_MIN + c·g(s), with c such that
# ∫_0^1 b = B_TOTAL = (0.1 + 20)/2, the integral of a linear rate from 0.1 to 20 (module docstring).
B_MIN, B_TOTAL = 0.1, 10.05
RATE_SCHEDULES = ("constant", "linear", "quadratic", "sigmoid", "tanh")


def _softplus(z):
    return np.logaddexp(0.0, z)


def shape_integral(name: str, s: np.ndarray) -> np.ndarray:
    """G(s) = ∫_0^s g(u) du for each rate shape g, by the antiderivative worked out by hand.

    linear g = u → s²/2; quadratic g = u² → s³/3;
    sigmoid g = (σ(12u−6) − σ(−6)) / (σ(6) − σ(−6)), and ∫σ(12u−6) du = softplus(12u−6)/12;
    tanh g = tanh(3u)/tanh(3), and ∫tanh(3u) du = log cosh(3u)/3.
    """
    if name == "linear":
        return s**2 / 2
    if name == "quadratic":
        return s**3 / 3
    if name == "sigmoid":
        lo, hi = 1 / (1 + math.exp(6)), 1 / (1 + math.exp(-6))
        return ((_softplus(12 * s - 6) - _softplus(-6.0)) / 12 - lo * s) / (hi - lo)
    if name == "tanh":
        # log cosh(x) = x + log1p(e^{−2x}) − log 2, stable for all x ≥ 0.
        x = 3 * s
        return (x + np.log1p(np.exp(-2 * x)) - math.log(2)) / (3 * math.tanh(3.0))
    raise AssertionError(name)


def integrated_rate(name: str, s: np.ndarray) -> np.ndarray:
    """B(s) = ∫_0^s b(u) du for the documented rates (B(1) = B_TOTAL for all of them)."""
    if name == "constant":
        return B_TOTAL * s
    return B_MIN * s + (B_TOTAL - B_MIN) * shape_integral(name, s) / shape_integral(
        name, np.array(1.0)
    )


@pytest.fixture(scope="module")
def every_T():
    """Every built-in schedule for every T from 1 (2 for cosine) to T_MAX, built once per module.

    Returns {name: {T: (betas of length T+1 as numpy, alpha_bar as numpy, warnings raised)}}.
    """
    out = {}
    for name in SCHEDULES:
        per_T = {}
        for T in range(2 if name == "cosine" else 1, T_MAX + 1):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sched = Schedule.named(name, T)
            per_T[T] = (
                sched.betas.numpy(),
                sched.alpha_bar.numpy(),
                [str(w.message) for w in caught],
            )
        out[name] = per_T
    return out


@pytest.mark.parametrize("name", SCHEDULES)
def test_builtin_schedules_are_valid_for_every_T(every_T, name):
    """For every T: shape T+1, β_0 = 0 and ᾱ_0 = 1, β_t ∈ (0, 1) strictly, ᾱ strictly decreasing,
    ᾱ_T ≤ 1e-3 (pure noise at the end), no warning, and ᾱ = cumprod(1 − β) recomputed in numpy."""
    problems = []
    for T, (b, ab, warned) in every_T[name].items():
        ab_np = np.cumprod(1 - b)
        checks = {
            "length T+1": b.shape == (T + 1,) and ab.shape == (T + 1,),
            "β_0 = 0, ᾱ_0 = 1": b[0] == 0 and ab[0] == 1,
            "β_t in (0, 1)": bool(np.all((b[1:] > 0) & (b[1:] < 1))),
            "ᾱ strictly decreasing": bool(np.all(np.diff(ab) < 0)),
            f"ᾱ_T ≤ {ALPHA_BAR_T_MAX:g}": ab[-1] <= ALPHA_BAR_T_MAX,
            "no warning": not warned,
            # cumprod of T factors: relative rounding ≤ T·eps; allow 10× that.
            "ᾱ = ∏(1−β) (numpy)": bool(
                np.allclose(ab, ab_np, rtol=10 * T * EPS64, atol=0)
            ),
        }
        problems += [
            f"T={T}: {what} fails (ᾱ_T = {ab[-1]:.3g})"
            for what, ok in checks.items()
            if not ok
        ]
    assert not problems, f"{name}: {len(problems)} problems, first ones: {problems[:8]}"


@pytest.mark.parametrize("name", SCHEDULES)
def test_builtin_betas_are_non_decreasing_for_every_T(every_T, name):
    """β_t is non-decreasing in t for every built-in schedule and every T.

    Rate-based: β_t = 1 − exp(−∫_{(t−1)/T}^{t/T} b), and a non-decreasing rate b integrated over
    consecutive intervals of equal length gives non-decreasing integrals. Cosine: log ᾱ_t =
    2 log cos θ_t − const with θ_t linear in t, and log cos is concave, so its decrements grow.
    Rounding allowance: the β_t are differences of numbers of size ≤ B_TOTAL, so ±16 ulp of B_TOTAL.
    """
    tol = 16 * EPS64 * B_TOTAL
    bad = {}
    for T, (b, _, _) in every_T[name].items():
        drops = np.diff(b[1:])
        if np.any(drops < -tol):
            i = int(np.argmin(drops))
            bad[T] = f"β_{i + 1} = {b[i + 1]:.10g} > β_{i + 2} = {b[i + 2]:.10g}"
    assert not bad, (
        f"{name}: β_t decreases somewhere for {len(bad)} values of T, e.g. {dict(list(bad.items())[:5])}"
    )


@pytest.mark.parametrize("name", RATE_SCHEDULES)
@pytest.mark.parametrize("T", [1, 2, 3, 7, 10, 333, 999, 1000])
def test_rate_schedules_discretise_the_continuous_rate_exactly(name, T):
    """ᾱ_t = exp(−B(t/T)) and β_t = 1 − exp(−(B(t/T) − B((t−1)/T))) (eq. 1.4), with B the integral of
    the documented rate computed by hand (closed-form antiderivatives), at T that do and do not
    divide the library's quadrature grid. ᾱ_T = e^{−10.05} for every T.

    Tolerance: the library documents its quadrature of the rate as accurate to ~1e-10; we allow
    1e-8 on B (so on log ᾱ), hence 2e-8 on each β_t (|dβ/dΔB| = e^{−ΔB} ≤ 1).
    """
    tol_B = 1e-8
    s = np.arange(T + 1) / T
    B = integrated_rate(name, s)
    sched = Schedule.named(name, T)
    log_ab = np.log(sched.alpha_bar.numpy())
    err_B = np.abs(log_ab + B)
    assert err_B.max() <= tol_B, (
        f"{name}, T={T}: log ᾱ_t differs from −∫_0^(t/T) b by up to {err_B.max():.3g} (at t={err_B.argmax()})"
    )
    beta_ref = -np.expm1(-np.diff(B))
    err_beta = np.abs(make_betas(name, T).numpy() - beta_ref)
    assert err_beta.max() <= 2 * tol_B, (
        f"{name}, T={T}: β_t off by up to {err_beta.max():.3g} "
        f"(relative {np.max(err_beta / beta_ref):.3g}, at t={err_beta.argmax() + 1})"
    )
    assert abs(math.log(sched.alpha_bar[-1].item()) + B_TOTAL) <= tol_B


@pytest.mark.parametrize("T", [2, 3, 10, 1000])
def test_cosine_schedule_matches_nichol_dhariwal(T):
    """Cosine: ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + 0.008)/1.008 · π/2) for t < T (Nichol & Dhariwal
    2021, eq. 17), computed in numpy; the last β is capped at 0.999 (the formula gives β_T = 1)."""
    sched = Schedule.named("cosine", T)
    t = np.arange(T + 1)
    f = np.cos((t / T + 0.008) / 1.008 * np.pi / 2) ** 2
    ab = sched.alpha_bar.numpy()
    np.testing.assert_allclose(ab[:T], f[:T] / f[0], rtol=10 * T * EPS64 + 1e-13)
    assert sched.betas[T].item() == pytest.approx(0.999, abs=1e-15)
    assert ab[T] == pytest.approx(ab[T - 1] * (1 - 0.999), rel=1e-12)


def test_cosine_needs_two_steps():
    """At T = 1 the single capped step would end at ᾱ_1 = 1e-3·(1 + rounding), not below the
    tolerance: the cosine schedule must refuse T = 1 with a message naming the minimum."""
    with pytest.raises(ValueError, match=r"cosine.*T ≥ 2"):
        make_betas("cosine", 1)
    with pytest.raises(ValueError, match=r"cosine.*T ≥ 2"):
        Schedule.named("cosine", 1)


@pytest.mark.parametrize(
    "name, T",
    [
        (name, T)
        for name in SCHEDULES
        for T in (1, 2, 10, 1000)
        if not (name == "cosine" and T == 1)
    ],
)
def test_derived_arrays_match_numpy_formulas(numpy_schedule, name, T):
    """α, ᾱ, ᾱ_{t−1}, β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t, the posterior mean coefficients
    √ᾱ_{t−1}β_t/(1−ᾱ_t) and √α_t(1−ᾱ_{t−1})/(1−ᾱ_t), and the SNR ᾱ_t/(1−ᾱ_t), all re-derived in numpy
    from β; at t = 1 the limits β̃_1 = 0, coefficients 1 and 0 (the posterior is a point mass at x_0)."""
    sched = Schedule.named(name, T)
    ref = numpy_schedule(sched.betas[1:].numpy())
    rtol = 10 * T * EPS64 + 1e-14
    for attr, want in [
        ("alphas", ref.alphas),
        ("alpha_bar", ref.alpha_bar),
        ("alpha_bar_prev", ref.alpha_bar_prev),
        ("posterior_variance", ref.posterior_variance),
        ("posterior_mean_coef_x0", ref.coef_x0),
        ("posterior_mean_coef_xt", ref.coef_xt),
        ("snr", ref.snr),
    ]:
        got = getattr(sched, attr).numpy()
        assert got.dtype == np.float64 and got.shape == (T + 1,), attr
        np.testing.assert_allclose(
            got[1:], want[1:], rtol=rtol, atol=1e-300, err_msg=attr
        )
    assert sched.posterior_variance[1].item() == pytest.approx(0.0, abs=1e-15)
    assert sched.posterior_mean_coef_x0[1].item() == pytest.approx(1.0, rel=1e-12)
    assert sched.posterior_mean_coef_xt[1].item() == pytest.approx(0.0, abs=1e-15)
    assert math.isinf(sched.snr[0].item())


def test_linear_is_close_to_ho_et_al():
    """At T = 1000 the "linear" schedule is the exact discretisation of the continuous rate
    b(s) = 0.1 + 19.9 s, which Ho et al. (2020) approximate by β_t = linspace(1e-4, 0.02, 1000).

    Expected gap, by hand: at t = T, ΔB = 1e-4 + 9.95·(1 − 0.999²) ≈ 0.01999 and β_T = 1 − e^{−ΔB}
    ≈ 0.019792, so the largest difference is ≈ 2.1e-4 (the exponential's curvature); Σβ differs
    by ≈ ΣΔB²/2 ≈ 0.07 out of 10.05, i.e. < 1%."""
    ho = np.linspace(1e-4, 0.02, 1000)
    ours = make_betas("linear", 1000).numpy()
    assert np.max(np.abs(ours - ho)) < 3e-4
    assert abs(ours.sum() / ho.sum() - 1) < 0.01
    # The same schedule's ᾱ_T: both are pure noise.
    assert np.prod(1 - ho) < ALPHA_BAR_T_MAX and np.prod(1 - ours) < ALPHA_BAR_T_MAX


def _warning_value(record) -> float:
    """The ᾱ_T printed in the library's warning (a number after 'ᾱ_T = ')."""
    msgs = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert msgs, "no UserWarning was raised"
    m = re.search(r"ᾱ_T = ([0-9.eE+-]+)", msgs[0])
    assert m, f"the warning does not state ᾱ_T: {msgs[0]!r}"
    return float(m.group(1))


def test_seed_article_schedule_warns_with_its_alpha_bar_T():
    """The seed article's schedule (T = 100, β = sigmoid(linspace(−6, 6, 100))·(5e-3 − 1e-5) + 1e-5)
    ends at ᾱ_T ≈ 0.78: x_T still carries ~0.88·x_0. It must warn, and state ᾱ_T (3 digits)."""
    betas = 1 / (1 + np.exp(-np.linspace(-6, 6, 100))) * (5e-3 - 1e-5) + 1e-5
    expected = np.prod(1 - betas)
    assert 0.77 < expected < 0.79
    with pytest.warns(UserWarning, match=r"ᾱ_T = 0\.7\d*") as record:
        Schedule(torch.from_numpy(betas))
    assert _warning_value(record) == pytest.approx(expected, rel=5e-3)


def test_short_ho_schedule_warns():
    """Ho et al.'s linear 1e-4..0.02 with only T = 50 steps ends at ∏(1−β_t) ≈ 0.60: must warn."""
    betas = np.linspace(1e-4, 0.02, 50)
    expected = np.prod(1 - betas)
    assert 0.59 < expected < 0.61
    with pytest.warns(UserWarning, match=r"ᾱ_T = 0\.6") as record:
        Schedule(betas)
    assert _warning_value(record) == pytest.approx(expected, rel=5e-3)


def test_noisy_enough_custom_schedule_does_not_warn():
    """Ho et al.'s schedule at T = 1000 ends at ᾱ_T ≈ 4e-5 < 1e-3: no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched = Schedule(np.linspace(1e-4, 0.02, 1000))
    assert sched.T == 1000


def test_unknown_name_lists_the_allowed_names():
    """An unknown schedule name is a ValueError that names it and lists every allowed name."""
    with pytest.raises(ValueError) as info:
        make_betas("cosin", 100)
    msg = str(info.value)
    assert "cosin" in msg
    assert all(name in msg for name in SCHEDULES), msg


@pytest.mark.parametrize("T", [0, -3, 2.5, True, "10", None])
def test_bad_T_is_rejected(T):
    """T must be a positive integer (not a bool, float or string): the message says so."""
    with pytest.raises(ValueError, match=r"T must be an integer ≥ 1"):
        make_betas("linear", T)
    with pytest.raises(ValueError, match=r"T must be an integer ≥ 1"):
        Schedule.named("linear", T)


@pytest.mark.parametrize(
    "betas, what",
    [
        ([0.1, 0.0, 0.2], "0.0"),
        ([0.1, 1.0, 0.2], "1.0"),
        ([0.1, -0.05, 0.2], "-0.05"),
        ([0.1, float("nan"), 0.2], "nan"),
    ],
)
def test_betas_outside_open_unit_interval_are_rejected(betas, what):
    """Every β_t must lie in (0, 1): 0 (no noise, the posterior divides by zero), 1 (all signal
    destroyed), negatives and NaN are refused, and the message shows the offending value."""
    with pytest.raises(ValueError, match=r"open interval \(0, 1\)") as info:
        Schedule(torch.tensor(betas, dtype=torch.float64))
    assert what in str(info.value)


@pytest.mark.parametrize("betas", [np.full((3, 2), 0.1), np.zeros(0), np.float64(0.1)])
def test_betas_must_be_a_1d_sequence(betas):
    """β must be a 1-D sequence of T ≥ 1 values: a 2-D array, an empty one or a scalar is refused
    with a message giving the shape received."""
    with pytest.raises(
        ValueError, match=r"1-D sequence of T ≥ 1 values.*shape"
    ) as info:
        Schedule(betas)
    assert str(tuple(np.shape(betas))) in str(info.value)


def test_schedules_tuple_is_what_make_betas_accepts():
    """ddpm_lib.SCHEDULES lists exactly the names make_betas accepts (each builds at T = 10)."""
    assert set(SCHEDULES) == {
        "constant",
        "linear",
        "quadratic",
        "sigmoid",
        "tanh",
        "cosine",
    }
    for name in SCHEDULES:
        assert make_betas(name, 10).shape == (10,)
    assert ddpm_lib.SCHEDULES is SCHEDULES
