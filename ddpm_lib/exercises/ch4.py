"""The checks of chapter 4's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import torch

from ..schedules import SCHEDULES, Schedule
from . import alpha_bar, as_float, close, exercise, first_mistake, right, wrong


def _schedules():
    for name in SCHEDULES:
        for T in (100, 1000, 37):
            yield name, T, Schedule.named(name, T)


@exercise("ex-ch4-smaller")
def variance_ratio_and_first_step(ratio, first_step):
    """ratio(sched): β̃_t / β_t for t = 2 … T, shape (T − 1,) (entry 0 is t = 2);
    first_step(sched, frac): the first step t ≥ 2 with β̃_t ≥ frac · β_t.

    Reference: β̃_t / β_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t), with ᾱ_t recomputed as the
    running product of 1 − β_t.
    """
    for name, T, sched in _schedules():
        ab = alpha_bar(sched)
        reference = (1 - ab[1:-1]) / (1 - ab[2:])
        got = torch.as_tensor(ratio(sched), dtype=torch.float64)
        if close(got, reference, rtol=1e-6):
            continue
        if got.shape != reference.shape:
            hint = (
                "start at t = 2 (β̃_1 = 0): "
                if got.shape == (T,) or got.shape == (T + 1,)
                else ""
            )
            return wrong(
                f"for the {name} schedule with T = {T} you return shape "
                f"{tuple(got.shape)}; {hint}return β̃_t / β_t for t = 2 … T, shape "
                f"({T - 1},)."
            )
        betas = sched.betas.double()
        mistakes = {
            "That is β_t / β̃_t, the ratio upside down.": 1 / reference,
            "You used α_t = 1 − β_t where the formula has ᾱ_t: 1 − α_t is only "
            "β_t.": betas[1:-1] / betas[2:],
            "An index off by one: entry 0 is t = 2, the ratio "
            "(1 − ᾱ_1) / (1 − ᾱ_2).": torch.cat(
                [torch.zeros(1, dtype=torch.float64), (1 - ab[1:-2]) / (1 - ab[2:-1])]
            ),
            "That is the ratio of standard deviations; the question is about "
            "variances.": reference.sqrt(),
        }
        hint = first_mistake(got, mistakes, rtol=1e-6)
        return wrong(
            f"for the {name} schedule with T = {T}, your ratio differs from the "
            "reference. " + (hint or "Divide the formula for β̃_t by β_t and simplify.")
        )
    for name, T, sched in _schedules():
        ab = alpha_bar(sched)
        r = (1 - ab[1:-1]) / (1 - ab[2:])
        for frac in (0.99, 0.9, 0.5):
            reference = 2 + int((r >= frac).nonzero()[0])
            got = first_step(sched, frac)
            if isinstance(got, torch.Tensor):
                got = got.item()
            if got == reference:
                continue
            mistakes = {
                "An index off by one: entry 0 of the ratio is t = 2, so add 2 to "
                "the position.": reference - 2,
                "One step early: that is the last step below the threshold (or "
                "entry 0 of the ratio read as t = 1; it is t = 2).": reference - 1,
                "One step too late: the step found already reaches the "
                "threshold.": reference + 1,
            }
            hint = next((h for h, v in mistakes.items() if got == v), None)
            return wrong(
                f"for the {name} schedule with T = {T} and frac = {frac} you give "
                f"{got!r}. "
                + (hint or "Find the smallest t ≥ 2 with the ratio ≥ frac.")
            )
    return right(
        "β̃_t / β_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) lies in (0, 1) and reaches 1 only as "
        "the signal disappears."
    )


@exercise("ex-ch4-last")
def x0_posterior_variance(answer):
    """answer(delta_sq, t, sched): the variance per coordinate of q(x_0 | x_t) for
    Gaussian data x_0 ~ N(m, δ² I) (delta_sq = δ²), at a step t in 1 … T.

    Reference: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε observes x_0 through Gaussian noise, so
    the precisions add: 1 / (1/δ² + ᾱ_t / (1 − ᾱ_t)), with ᾱ_t recomputed from β.
    """
    for name, T in (("sigmoid", 100), ("linear", 1000), ("cosine", 37)):
        sched = Schedule.named(name, T)
        ab = alpha_bar(sched)
        # t = 2 first: at t = 1, β_t and 1 − ᾱ_t coincide and so would two mistakes
        for t in dict.fromkeys((2, T // 2, T, 1)):
            for delta_sq in (0.01, 1e-4, 0.5, 2.0):
                a = float(ab[t])
                reference = 1 / (1 / delta_sq + a / (1 - a))
                got = as_float(answer(delta_sq, t, sched))
                if close(got, reference, rtol=1e-6):
                    continue
                alpha = 1 - float(sched.betas[t])
                a_prev = float(ab[t - 1])
                mistakes = {
                    "That is β_t, the variance of one forward step; here x_0 is "
                    "unknown and x_t carries the noise of all t steps.": float(
                        sched.betas[t]
                    ),
                    "That is β̃_t, the variance of q(x_{t−1} | x_t, x_0), where x_0 "
                    "is known; here x_0 is what is unknown.": (1 - a_prev)
                    / (1 - a)
                    * float(sched.betas[t]),
                    "That is the noise variance 1 − ᾱ_t alone; the data's own "
                    "spread δ² limits what x_t can tell.": 1 - a,
                    "x_t sees x_0 scaled by √ᾱ_t, and that scaling changes how "
                    "much x_t tells about x_0.": 1 / (1 / delta_sq + 1 / (1 - a)),
                    "Precisions add, not variances: knowing x_t makes x_0 less "
                    "uncertain, never more.": delta_sq + (1 - a) / a,
                    "That is a standard deviation; the question asks for the "
                    "variance.": math.sqrt(reference),
                    "You used α_t = 1 − β_t of one step; x_t has the noise of all t "
                    "steps, ᾱ_t.": 1 / (1 / delta_sq + alpha / (1 - alpha)),
                    "An index off by one: sched.alpha_bar[t] is ᾱ_t.": (
                        1 / (1 / delta_sq + a_prev / (1 - a_prev))
                        if a_prev < 1
                        else None
                    ),
                }
                mistakes = {h: v for h, v in mistakes.items() if v is not None}
                hint = first_mistake(got, mistakes, rtol=1e-6)
                return wrong(
                    f"for the {name} schedule with T = {T}, t = {t} and δ² = "
                    f"{delta_sq} you give {got:.6g}. "
                    + (
                        hint
                        or "Treat x_t as a noisy observation of x_0 and combine it "
                        "with what the data law says about x_0."
                    )
                )
    return right(
        "Var(x_0 | x_t) = 1 / (1/δ² + ᾱ_t/(1 − ᾱ_t)); at t = 1 it is "
        "β_1 / (1 − β_1 + β_1/δ²): close to β_1 once δ² ≫ β_1, and below it for δ < 1."
    )


@exercise("ex-ch4-x0hat")
def mean_via_x0hat(answer):
    """answer(xt, t, eps, sched): the posterior mean μ̃_t(x_t, x̂_0) of
    q(x_{t−1} | x_t, x_0) with x_0 replaced by the guess x̂_0 = (x_t − √(1 − ᾱ_t) ε)
    / √ᾱ_t, shape (n, d), for xt and eps of shape (n, d) (float64) and t an integer
    step in 1 … T or a tensor of steps, shape (n,), one per point.

    Reference: the mean in the noise form, (x_t − β_t / √(1 − ᾱ_t) · ε) / √α_t,
    computed from β_t (ᾱ_t recomputed), not through the library.
    """
    for name, T in (("sigmoid", 100), ("cosine", 1000), ("linear", 37)):
        sched = Schedule.named(name, T)
        ab = alpha_bar(sched)
        g = torch.Generator().manual_seed(T)
        xt = 1.3 * torch.randn(64, 2, generator=g, dtype=torch.float64)
        eps = torch.randn(64, 2, generator=g, dtype=torch.float64)
        for t in sorted({1, 2, T // 2, T}):
            b, a, a_prev = float(sched.betas[t]), float(ab[t]), float(ab[t - 1])
            got = torch.as_tensor(answer(xt, t, eps, sched), dtype=torch.float64)
            reference = (xt - b / math.sqrt(1 - a) * eps) / math.sqrt(1 - b)
            if close(got, reference, rtol=1e-6, atol=1e-9):
                continue
            if got.shape != reference.shape:
                return wrong(
                    f"for xt of shape {tuple(xt.shape)} you return shape "
                    f"{tuple(got.shape)}; return one mean per point, the shape of xt."
                )
            x0_hat = (xt - math.sqrt(1 - a) * eps) / math.sqrt(a)

            def post(x0, ab_prev=a_prev, ab_t=a, beta=b):
                return (
                    math.sqrt(ab_prev) * beta / (1 - ab_t) * x0
                    + math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t) * xt
                )

            alpha = 1 - b
            mistakes = {
                "That is x̂_0 itself; the step goes on to the posterior mean "
                "μ̃_t(x_t, x̂_0).": x0_hat,
                "In x̂_0 you used α_t where ᾱ_t belongs: x_t holds the noise "
                "of all t steps.": post(
                    (xt - math.sqrt(1 - alpha) * eps) / math.sqrt(alpha)
                ),
                "In x̂_0, divide by √ᾱ_t, not ᾱ_t.": post(
                    (xt - math.sqrt(1 - a) * eps) / a
                ),
                "In x̂_0 the noise is scaled by √(1 − ᾱ_t), not 1 − ᾱ_t.": post(
                    (xt - (1 - a) * eps) / math.sqrt(a)
                ),
                "An index off by one in the posterior mean: where it has ᾱ_{t−1} "
                "you used ᾱ_t.": post(x0_hat, ab_prev=a),
                "That is the misprinted mean, with √β_t ε; the bar on ᾱ_t matters.": (
                    xt - math.sqrt(b) * eps
                )
                / math.sqrt(alpha),
            }
            hint = first_mistake(got, mistakes, rtol=1e-6, atol=1e-9)
            return wrong(
                f"for the {name} schedule with T = {T} at t = {t}, your mean differs "
                "from the reference. "
                + (
                    hint
                    or "Compute x̂_0 from x_t and ε, then put it into the posterior "
                    "mean in place of x_0."
                )
            )
        # one step per point: t a tensor of shape (n,)
        t_vec = torch.randint(1, T + 1, (xt.shape[0],), generator=g)
        b, a = sched.betas.double()[t_vec, None], ab[t_vec, None]
        reference = (xt - b / (1 - a).sqrt() * eps) / (1 - b).sqrt()
        try:
            got = answer(xt, t_vec, eps, sched)
            got = torch.as_tensor(got, dtype=torch.float64)
        except RuntimeError as err:  # e.g. shapes (n,) and (n, d) that do not broadcast
            got = err
        if isinstance(got, Exception) or not close(got, reference, 1e-6, 1e-9):
            failed = (
                f"raises {got}" if isinstance(got, Exception) else "gives another mean"
            )
            return wrong(
                f"right for one step t, but with t a tensor of steps, one per point "
                f"(shape ({xt.shape[0]},)), the {name} schedule {failed}: "
                "each point must use its own step (index the schedule's arrays with t "
                "and give them a trailing dimension to multiply rows of xt)."
            )
    return right(
        "μ̃_t(x_t, x̂_0) = μ_θ(x_t, t): each step guesses the clean point, then takes "
        "the exact posterior step toward it."
    )
