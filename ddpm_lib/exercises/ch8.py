"""The checks of chapter 8's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import torch

from ..schedules import Schedule
from . import alpha_bar, close, exercise, first_mistake, right, wrong


def _v_cases():
    """(schedule, x_0, ε, t, a guess of v that is not the true v) for a few schedules."""
    g = torch.Generator().manual_seed(801)
    for name, T, d in (("sigmoid", 100, 2), ("cosine", 50, 3), ("linear", 1000, 2)):
        sched = Schedule.named(name, T)
        n = 40
        x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
        eps = torch.randn(n, d, generator=g, dtype=torch.float64)
        t = torch.randint(1, T + 1, (n,), generator=g)
        guess = torch.randn(n, d, generator=g, dtype=torch.float64)
        yield sched, x0, eps, t, guess


@exercise("ex-ch8-v-to-eps")
def v_to_eps(answer):
    """answer(v, x, t, sched): the guess of ε implied by a guess v of v at x = x_t, steps t.

    Reference: with a = √ᾱ_t and s = √(1 − ᾱ_t) (ᾱ recomputed from β_t), the true v
    = a ε − s x_0 must give back the ε that made x_t = a x_0 + s ε; any other guess
    v̂ gives s x_t + a v̂ (substitute x_0 = (x_t − s ε)/a into v, and a² + s² = 1).
    """
    for sched, x0, eps, t, guess in _v_cases():
        ab = alpha_bar(sched)[t][:, None]
        a, s = ab.sqrt(), (1 - ab).sqrt()
        x = a * x0 + s * eps
        v_true = a * eps - s * x0
        for v, expected, what in (
            (v_true, eps, "the true v"),
            (guess, s * x + a * guess, "a guess of v"),
        ):
            got = torch.as_tensor(answer(v, x, t, sched), dtype=torch.float64)
            if close(got, expected, rtol=1e-6, atol=1e-9):
                continue
            if got.shape != expected.shape:
                return wrong(
                    f"for x of shape {tuple(x.shape)} you return shape "
                    f"{tuple(got.shape)}; return one noise vector per point."
                )
            al = (1 - sched.betas[t].double())[:, None]
            hint = first_mistake(
                got,
                {
                    "The two coefficients are swapped: which of √ᾱ_t and √(1−ᾱ_t) "
                    "multiplies x_t?": a * x + s * v,
                    "A sign is off: write v with x_0 replaced by (x_t − √(1−ᾱ_t) ε)/"
                    "√ᾱ_t and collect the terms in ε.": s * x - a * v,
                    "You treated x_t as if it were x_0: substitute x_0 = "
                    "(x_t − √(1−ᾱ_t) ε)/√ᾱ_t into v before solving for ε.": (v + s * x)
                    / a,
                    "Use ᾱ_t, the product over steps 1…t, not the one step's α_t.": (
                        1 - al
                    ).sqrt()
                    * x
                    + al.sqrt() * v,
                    "Square roots are missing: the coefficients are √ᾱ_t and "
                    "√(1−ᾱ_t).": (1 - ab) * x + ab * v,
                },
                rtol=1e-6,
                atol=1e-9,
            )
            return wrong(
                f"for the {sched.name} schedule (T = {sched.T}) and {what}, your ε is "
                f"off by up to {(got - expected).abs().max().item():.3g}. "
                + (
                    hint
                    or "Write v with x_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t and use "
                    "ᾱ_t + (1 − ᾱ_t) = 1."
                )
            )
    return right("ε̂ = √(1−ᾱ_t) x_t + √ᾱ_t v̂: a rotation back, with no division.")


@exercise("ex-ch8-weight")
def weight_x0_to_velocity(answer):
    """answer(snr): the factor from the squared error of x̂_0 to that of the velocity.

    Reference: for random x_0, ε and a random guess of x_0 at each SNR, the velocity
    guess ε̂ − x̂_0 with ε̂ = (x_t − a x̂_0)/s (a² = SNR/(1+SNR), s² = 1/(1+SNR)); the
    ratio of the two squared errors, computed point by point.
    """
    g = torch.Generator().manual_seed(802)
    snr = torch.logspace(-4, 4, 17, dtype=torch.float64)
    a, s = (snr / (1 + snr)).sqrt()[:, None], (1 / (1 + snr)).sqrt()[:, None]
    x0 = torch.randn(17, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(17, 2, generator=g, dtype=torch.float64)
    x = a * x0 + s * eps
    x0_hat = x0 + torch.randn(17, 2, generator=g, dtype=torch.float64)
    u_hat = (x - a * x0_hat) / s - x0_hat
    ratio = ((eps - x0 - u_hat) ** 2).sum(1) / ((x0 - x0_hat) ** 2).sum(1)
    got = torch.as_tensor(answer(snr.clone()), dtype=torch.float64)
    if close(got, ratio, rtol=1e-6):
        return right(
            "(1 + √SNR)²: an error of x̂_0 at small noise weighs far more in the "
            "velocity loss than in the x_0 loss."
        )
    if got.shape != ratio.shape:
        return wrong(
            f"for snr of shape {tuple(snr.shape)} you return shape {tuple(got.shape)}; "
            "return one factor per SNR."
        )
    root = snr.sqrt()
    hint = first_mistake(
        got,
        {
            "That is the velocity's weight against ε's loss; divide by x_0's weight "
            "against ε's.": (1 + 1 / root) ** 2,
            "That is x_0's weight against ε's loss, not the factor from x_0 to the "
            "velocity.": 1 / snr,
            "The other way round: the factor multiplies the x_0 error to give the "
            "velocity error.": 1 / (1 + root) ** 2,
            "The square of a sum is not the sum of the squares.": 1 + snr,
            "A square root is missing: a/σ̄ = √SNR.": (1 + snr) ** 2,
        },
        rtol=1e-6,
    )
    worst = ((got - ratio).abs() / ratio).max().item()
    return wrong(
        f"your factor is off by up to a relative {worst:.3g} (SNR from 1e-4 to 1e4). "
        + (
            hint
            or "Write the velocity guess ε̂ − x̂_0 with ε̂ from x_t and x̂_0, and see "
            "how it moves when x̂_0 moves."
        )
    )
