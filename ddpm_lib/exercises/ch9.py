"""The checks of chapter 9's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import torch

from ..schedules import Schedule
from . import alpha_bar, as_float, close, exercise, first_mistake, right, wrong


def _cases():
    """(schedule, t): several schedules and steps, the first step included."""
    for name, T in (("sigmoid", 100), ("linear", 50), ("cosine", 20)):
        sched = Schedule.named(name, T)
        for t in (1, 2, 3, T // 2, T):
            yield sched, t


def _step_terms(sched, t):
    """β_t, ᾱ_t, ᾱ_{t−1}, α_t recomputed from β (independent of the schedule's tables)."""
    ab = alpha_bar(sched)
    beta = float(sched.betas[t])
    return beta, float(ab[t]), float(ab[t - 1]), 1 - beta


@exercise("ex-ch9-analytic")
def check_analytic(answer):
    """analytic_variance(sched, t, eps_sq) -> σ*_t², with eps_sq = E‖ε*‖²/d at step t."""
    for sched, t in _cases():
        beta, ab, ab_prev, alpha = _step_terms(sched, t)
        for s2 in (0.05, 0.5, 2.0):  # data N(0, s² I)
            eps_sq = (1 - ab) / (ab * s2 + 1 - ab)
            # the reference: Var(x_{t−1} | x_t) of the jointly Gaussian pair
            v_prev = ab_prev * s2 + 1 - ab_prev
            reference = v_prev * beta / (alpha * v_prev + beta)
            got = as_float(answer(sched, t, eps_sq))
            if close(got, reference, rtol=1e-6):
                continue
            bt = (1 - ab_prev) / (1 - ab) * beta
            c2 = ab_prev * beta**2 / (1 - ab) ** 2
            hint = first_mistake(
                got,
                {
                    "The spread of the true step given x_0, β̃_t, is missing: the best "
                    "variance is β̃_t plus the error of the mean.": c2
                    * (1 - ab)
                    / ab
                    * (1 - eps_sq),
                    "You used E‖ε*‖²/d where the error E‖ε − ε*‖²/d belongs; they add "
                    "up to 1.": bt + c2 * (1 - ab) / ab * eps_sq,
                    "The factor (1 − ᾱ_t)/ᾱ_t that turns the error of ε into the error "
                    "of x̂_0 is missing.": bt + c2 * (1 - eps_sq),
                    "The factor that turns the error of ε into the error of x̂_0 is "
                    "(1 − ᾱ_t)/ᾱ_t, the noise over the signal of x_t, not its "
                    "inverse.": bt + c2 * ab / (1 - ab) * (1 - eps_sq),
                    "c_t is squared: the mean's error is c_t (x_0 − x̂_0), and a "
                    "variance takes its square.": bt
                    + math.sqrt(c2) * (1 - ab) / ab * (1 - eps_sq),
                    "That is a fixed variance, β_t, the same for every data law; the "
                    "best one depends on E‖ε*‖².": beta,
                    "That is a fixed variance, β̃_t, the same for every data law; the "
                    "best one depends on E‖ε*‖².": bt,
                },
                rtol=1e-6,
            )
            return wrong(
                f"for the {sched.name} schedule (T = {sched.T}) at t = {t}, data "
                f"N(0, {s2} I), you return {got:.6g}. "
                + (
                    hint
                    or "Minimise the expected KL of step t over σ²: it is the spread "
                    "of the true step plus the mean's squared error per coordinate."
                )
            )
    return right(
        "σ*_t² = β̃_t + c_t² (1 − ᾱ_t)/ᾱ_t (1 − E‖ε*‖²/d): for Gaussian data, exactly "
        "the variance of x_{t−1} given x_t."
    )


@exercise("ex-ch9-range")
def check_range(answer):
    """learned_log_variance(sched, t, nu) -> log σ_t², shape of nu (n, d)."""
    g = torch.Generator().manual_seed(9)
    for sched, t in _cases():
        beta, ab, ab_prev, _ = _step_terms(sched, t)
        if t == 1:  # β̃_1 = 0: the library's β̃_2 in its place
            beta2, ab2, _, _ = _step_terms(sched, 2)
            bt = (1 - ab) / (1 - ab2) * beta2
        else:
            bt = (1 - ab_prev) / (1 - ab) * beta
        nu = torch.rand(7, 2, generator=g, dtype=torch.float64) * 2 - 1
        nu[0] = torch.tensor([-1.0, 1.0], dtype=torch.float64)
        kappa = (nu + 1) / 2
        reference = kappa * math.log(beta) + (1 - kappa) * math.log(bt)
        got = torch.as_tensor(answer(sched, t, nu.clone()), dtype=torch.float64)
        if close(got, reference, rtol=1e-9, atol=1e-12):
            continue
        if got.shape != reference.shape:
            return wrong(
                f"for nu of shape {tuple(nu.shape)} you return shape {tuple(got.shape)}; "
                "return one log-variance per entry of nu."
            )
        if not bool(torch.isfinite(got).all()):
            return wrong(
                f"at t = {t} your log-variance is not finite: β̃_1 = 0 has no "
                "logarithm. Use β̃_2 in its place at t = 1, as the statement says."
            )
        hint = first_mistake(
            got,
            {
                "nu is in [−1, 1] but the weight κ must be in [0, 1]: map nu to κ "
                "first.": nu * math.log(beta) + (1 - nu) * math.log(bt),
                "The ends are swapped: nu = 1 is the larger variance, β_t.": kappa
                * math.log(bt)
                + (1 - kappa) * math.log(beta),
                "You interpolate the variances; the range interpolates their "
                "logarithms.": torch.log(kappa * beta + (1 - kappa) * bt),
                "Return the logarithm of the variance, not the variance.": torch.exp(
                    reference
                ),
            },
            rtol=1e-9,
            atol=1e-12,
        )
        return wrong(
            f"for the {sched.name} schedule (T = {sched.T}) at t = {t}, your values "
            f"are off by up to {(got - reference).abs().max().item():.3g}. "
            + (
                hint
                or "Check β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t with the bars, and β̃_2 "
                "at t = 1."
            )
        )
    return right(
        "log σ² = κ log β_t + (1 − κ) log β̃_t with κ = (nu + 1)/2, β̃_2 at t = 1."
    )
