"""The checks of chapter 2's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import torch

from ..schedules import SCHEDULES, Schedule
from . import alpha_bar, as_float, close, exercise, first_mistake, right, wrong


@exercise("ex-ch2-ve")
def ve_std(answer):
    """answer(sigma_bar, t): the standard deviation of each coordinate of q(x_t | x_0) for the
    variance-exploding chain with noise levels sigma_bar (σ̄_0 = 0 < σ̄_1 < … < σ̄_T)."""
    sigma_bar = torch.cat(
        [
            torch.zeros(1, dtype=torch.float64),
            torch.logspace(-2, 1, 100, dtype=torch.float64),
        ]
    )
    increments = torch.cat(
        [torch.zeros(1), (sigma_bar[1:] ** 2 - sigma_bar[:-1] ** 2).sqrt()]
    )
    for t in (1, 10, 50, 100):
        got = as_float(answer(sigma_bar, t))
        reference = math.sqrt(
            float((increments[: t + 1] ** 2).sum())
        )  # independent steps add variances
        if close(got, reference, rtol=1e-6):
            continue
        hint = first_mistake(
            got,
            {
                "That is the variance σ̄_t²; the question asks for the standard deviation.": reference
                ** 2,
                "The standard deviations of the steps do not add; their variances do.": float(
                    increments[: t + 1].sum()
                ),
                "One step short: count which steps x_t has received.": float(
                    sigma_bar[t - 1]
                ),
            },
        )
        return wrong(
            f"at t = {t} you give {got:.6g}. "
            + (hint or "Add the variances of the steps 1 … t.")
        )
    return right(
        "q(x_t | x_0) = N(x_0, σ̄_t² I): the mean never moves and the variances telescope."
    )


@exercise("ex-ch2-snr1")
def first_step_snr_below_1(answer):
    """answer(sched): the first step t with SNR(t) = ᾱ_t / (1 − ᾱ_t) ≤ 1, i.e. ᾱ_t ≤ 1/2."""
    for name in SCHEDULES:
        for T in (100, 1000, 37):
            sched = Schedule.named(name, T)
            ab = alpha_bar(sched)
            reference = int((ab <= 0.5).nonzero()[0])
            got = answer(sched)
            if isinstance(got, torch.Tensor):
                got = got.item()
            if got == reference:
                continue
            alphas = torch.cat(
                [torch.ones(1, dtype=torch.float64), 1 - sched.betas[1:].double()]
            )
            below = (alphas <= 0.5).nonzero()
            mistakes = {
                "You used α_t = 1 − β_t; the SNR is ᾱ_t / (1 − ᾱ_t), with the running product ᾱ_t.": (
                    int(below[0]) if len(below) else None
                ),
                "That is the last step with SNR above 1 (or a position in alpha_bar[1:] read as t: "
                "index t of sched.alpha_bar is ᾱ_t); the question asks for the first step at or below it.": reference
                - 1,
                "An index off by one: sched.alpha_bar[t] is ᾱ_t, indexed by t itself (0 … T).": reference
                + 1,
                "Give the step t (an integer), not the fraction t/T.": reference / T,
            }
            hint = next(
                (h for h, v in mistakes.items() if v is not None and got == v), None
            )
            return wrong(
                f"for the {name} schedule with T = {T} you give {got!r}. "
                + (hint or "Find the smallest t with ᾱ_t ≤ 1/2.")
            )
    return right(
        "the crossing sits at the same fraction t/T for every T, as the schedules are set in continuous time."
    )


@exercise("ex-ch2-gauss")
def gaussian_marginal_std(answer):
    """answer(alpha_bar, delta): the standard deviation of each coordinate of q(x_t) for data
    x_0 ~ N(m, δ² I) (the marginal over x_0)."""
    for ab, delta in [(0.9, 0.3), (0.5, 2.0), (0.01, 0.3), (0.7, 1.0)]:
        got = as_float(answer(ab, delta))
        reference = math.sqrt(ab * delta**2 + 1 - ab)
        if close(got, reference, rtol=1e-6):
            continue
        hint = first_mistake(
            got,
            {
                "That is the variance; take its square root.": ab * delta**2 + 1 - ab,
                "x_0 enters x_t scaled by √ᾱ_t, so its variance δ² is scaled by ᾱ_t.": math.sqrt(
                    delta**2 + 1 - ab
                ),
                "The two independent parts add their variances, not their standard deviations.": math.sqrt(
                    ab
                )
                * delta
                + math.sqrt(1 - ab),
            },
        )
        return wrong(
            f"with ᾱ_t = {ab} and δ = {delta} you give {got:.6g}. "
            + (
                hint
                or "Write x_t = √ᾱ_t (m + δ z) + √(1 − ᾱ_t) ε and add the variances."
            )
        )
    return right(
        "q(x_t) = N(√ᾱ_t m, (ᾱ_t δ² + 1 − ᾱ_t) I); with δ = 1 and m = 0 it stays N(0, I)."
    )
