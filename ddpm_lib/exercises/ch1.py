"""The checks of chapter 1's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch

from ..schedules import Schedule, make_betas
from . import close, exercise, first_mistake, right, wrong


def _whole(x):
    """A whole number (a Python, numpy or one-element tensor number) as an int; other
    numbers as a float; anything else as it is."""
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        x = x.item()
    elif isinstance(x, np.ndarray) and x.size == 1:
        x = x.item()
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return int(x) if float(x).is_integer() else float(x)
    return x


def _betas(sched: Schedule) -> torch.Tensor:
    """β_1 … β_T in float64 (index i − 1 is β_i)."""
    return sched.betas[1:].double()


def _alpha_bar_T(sched: Schedule) -> float:
    """ᾱ_T as the product of 1 − β_t, recomputed in float64 (not read from the schedule)."""
    return float(torch.prod(1 - _betas(sched)))


def _covariances():
    """A few data covariances (2 × 2 and 3 × 3) for the variance-exploding check."""
    yield torch.tensor([[1.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    yield torch.tensor([[2.0, -0.3], [-0.3, 0.5]], dtype=torch.float64)
    a = torch.tensor(
        [[1.0, 0.2, 0.0], [0.2, 0.7, -0.1], [0.0, -0.1, 0.4]], dtype=torch.float64
    )
    yield a @ a.T


@exercise("ex-ch1-explode")
def explode_cov(answer):
    """answer(cov0, sched, t): Cov(x_t), shape (d, d), for the chain
    x_t = x_{t−1} + √β_t ε_t (no scaling) started from data of covariance cov0 (d, d),
    for t = 0 … T.

    Reference: independent steps add their variances, Cov(x_t) = cov0 + (β_1 + … + β_t) I.
    """
    for name, T in (("sigmoid", 100), ("linear", 1000), ("cosine", 37)):
        sched = Schedule.named(name, T)
        betas = _betas(sched)
        for cov0 in _covariances():
            eye = torch.eye(len(cov0), dtype=torch.float64)
            for t in sorted({0, 1, T // 2, T}):
                got = torch.as_tensor(answer(cov0, sched, t), dtype=torch.float64)
                reference = cov0 + betas[:t].sum() * eye
                if close(got, reference, rtol=1e-6, atol=1e-12):
                    continue
                if got.shape != reference.shape:
                    return wrong(
                        f"for a {len(cov0)}-dimensional cov0 you return shape "
                        f"{tuple(got.shape)}; return the whole covariance matrix, "
                        f"shape {tuple(reference.shape)}."
                    )
                ab = float(torch.prod(1 - betas[:t]))
                mistakes = {
                    "That is the chain of the chapter, with the √(1 − β_t) scaling; "
                    "here nothing shrinks the data.": ab * cov0 + (1 - ab) * eye,
                    "The standard deviations √β_t do not add; the variances β_t do.": (
                        cov0 + betas[:t].sqrt().sum() * eye
                    ),
                    "The data's own covariance is still there: the noise is added "
                    "to x_0, it does not replace it.": betas[:t].sum() * eye,
                    "An index off by one: x_t has received the noise of steps 1 … t, "
                    "β_t included.": cov0 + betas[: max(t - 1, 0)].sum() * eye,
                    "x_t has received only the steps 1 … t, not all T of them.": (
                        cov0 + betas.sum() * eye
                    ),
                    "The noise adds to every coordinate independently: add a "
                    "multiple of the identity, not of cov0.": (
                        cov0 * (1 + betas[:t].sum())
                    ),
                }
                hint = first_mistake(got, mistakes, rtol=1e-6, atol=1e-12)
                return wrong(
                    f"for the {name} schedule with T = {T}, t = {t}, your covariance "
                    "differs from the reference. "
                    + (
                        hint
                        or "Write x_t as x_0 plus the sum of t independent noises and "
                        "add their covariances."
                    )
                )
    return right(
        "Cov(x_t) = Cov(x_0) + (β_1 + … + β_t) I: the data never fade, they are "
        "drowned."
    )


@exercise("ex-ch1-constant")
def steps_needed(answer):
    """answer(beta, target): the smallest integer T with (1 − β)^T ≤ target, for a
    constant β in (0, 1) and a target in (0, 1).

    Reference: a search over T in exact steps (no logarithms), in float64.
    """
    cases = [
        (0.02, 1e-3),
        (5e-3, 1e-3),
        (0.1, 0.5),
        (0.5, 0.25),  # (1 − β)^2 is exactly the target: T = 2 reaches it
        (0.3, 1e-6),
        (1e-4, 0.9),
    ]
    for beta, target in cases:
        got = _whole(answer(beta, target))
        reference, value = 0, 1.0
        while value > target:
            reference += 1
            value = (1 - beta) ** reference
        if isinstance(got, int) and got == reference:
            continue
        x = math.log(target) / math.log(1 - beta)
        mistakes = {
            "Give a whole number of steps: round up.": x,
            "Rounded down: with one step fewer, ᾱ_T is still above the target.": (
                reference - 1
            ),
            "One step too many: (1 − β)^(T − 1) already reaches the target.": (
                reference + 1
            ),
            "That uses e^(−βT) for (1 − β)^T, an approximation; the exact "
            "product needs log(1 − β), not −β.": math.ceil(-math.log(target) / beta),
            "The product is of α = 1 − β, not of β.": math.ceil(
                math.log(target) / math.log(beta)
            ),
        }
        hint = next((h for h, v in mistakes.items() if got == v), None)
        return wrong(
            f"for β = {beta} and target {target} you give {got!r}. "
            + (hint or "Solve (1 − β)^T ≤ target for the smallest whole T.")
        )
    return right("T = ⌈log(target) / log(1 − β)⌉: a small constant β needs many steps.")


def _points(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn(n, d, generator=g, dtype=torch.float64)


@exercise("ex-ch1-short")
def prior_term(answer):
    """answer(x0, sched): L_T = KL(q(x_T | x_0) ‖ N(0, I)) in nats for each row of
    x0, shape (n,), for data x0 of shape (n, d).

    Reference: the KL divergence of two Gaussians with diagonal covariances,
    Σ_i ½ (v_i + m_i² − 1 − log v_i), with mean m = √ᾱ_T x_0 and variance
    v = 1 − ᾱ_T, ᾱ_T recomputed from the β values.
    """
    cases = [
        ("Ho et al.'s range with T = 50", torch.linspace(1e-4, 0.02, 50)),
        ("Ho et al.'s range with T = 200", torch.linspace(1e-4, 0.02, 200)),
        ("a constant β = 0.05 with T = 20", torch.full((20,), 0.05)),
        ("the linear schedule with T = 1000", make_betas("linear", 1000)),
    ]
    for k, (label, betas) in enumerate(cases):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # most of these stop short of noise
            sched = Schedule(betas)
        ab = _alpha_bar_T(sched)
        for d in (2, 3):
            x0 = _points(50, d, seed=10 * k + d)
            got = torch.as_tensor(answer(x0, sched), dtype=torch.float64)
            sq = (x0**2).sum(1)
            m2 = ab * sq
            reference = 0.5 * (d * (1 - ab) + m2 - d - d * math.log(1 - ab))
            if close(got, reference, rtol=1e-6, atol=1e-12):
                continue
            if got.shape != reference.shape:
                if got.numel() == 1 and close(got.reshape(()), reference.mean()):
                    return wrong(
                        "you return the average over the points; return L_T for each "
                        f"point, shape ({len(x0)},)."
                    )
                return wrong(
                    f"for x0 of shape {tuple(x0.shape)} you return shape "
                    f"{tuple(got.shape)}; return one number per point, shape "
                    f"({len(x0)},)."
                )
            a_T = 1 - float(sched.betas[-1])
            ab_prev = float(torch.prod(1 - _betas(sched)[:-1]))

            def kl(a, s2=sq, dim=d):
                return 0.5 * (a * s2 - dim * a - dim * math.log(1 - a))

            mistakes = {
                "The mean of q(x_T | x_0) is √ᾱ_T x_0: square all of it, the "
                "factor √ᾱ_T included.": 0.5
                * (math.sqrt(ab) * sq - d * ab - d * math.log(1 - ab)),
                "Each of the d coordinates contributes −ᾱ_T − log(1 − ᾱ_T): "
                "multiply those terms by d.": 0.5 * (m2 - ab - math.log(1 - ab)),
                "The log term has the wrong sign: KL ≥ 0, and −log(1 − ᾱ_T) > 0.": 0.5
                * (m2 - d * ab + d * math.log(1 - ab)),
                "A missing factor ½.": 2 * reference,
                "You used α_T = 1 − β_T of the last step; the noise level of x_T is "
                "ᾱ_T, the product of all the α_t.": kl(a_T),
                "An index off by one: ᾱ_T is the product up to t = T, the last entry "
                "of sched.alpha_bar.": kl(ab_prev),
            }
            hint = first_mistake(got, mistakes, rtol=1e-6, atol=1e-12)
            return wrong(
                f"for {label}, {d}-dimensional points, your L_T differs from the "
                "reference. "
                + (
                    hint
                    or "Use the KL divergence between N(√ᾱ_T x_0, (1 − ᾱ_T) I) and "
                    "N(0, I), coordinate by coordinate."
                )
            )
    return right(
        "L_T = ½(ᾱ_T ‖x_0‖² − d ᾱ_T − d log(1 − ᾱ_T)): it vanishes only as ᾱ_T → 0."
    )
