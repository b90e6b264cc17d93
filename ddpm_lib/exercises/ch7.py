"""The checks of chapter 7's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import torch

from ..schedules import Schedule
from ..solvers import time_grid
from . import alpha_bar, as_float, close, exercise, first_mistake, right, wrong


def _gauss_eps(x, ab, m, delta):
    """ε* of data N(m, δ² I) at x_t with signal share ᾱ (chapter 6's exercise)."""
    return math.sqrt(1 - ab) * (x - math.sqrt(ab) * m) / (ab * delta**2 + 1 - ab)


def _flow_rk4(cases, steps: int = 500):
    """The probability-flow ODE dx̄/dζ = ε*(x, ζ) integrated by RK4 for every case at once.

    cases: (x (n, d), ᾱ_t, ᾱ_u, m (d,), δ); returns the points at step u, one per case.
    x̄ = x/√ᾱ and ζ = √((1 − ᾱ)/ᾱ), so ᾱ = 1/(1 + ζ²). The integration variable is
    w = asinh(ζ/δ), dζ/dw = √(δ² + ζ²): even steps in w are fine where ζ is small and
    coarse where it is large, as the velocity is. The cases are stacked row by row, the
    coordinates padded with zeros (which the flow of a zero mean leaves at zero).
    """
    D = max(x.shape[1] for x, *_ in cases)

    def stack(values):
        return torch.cat(values).to(torch.float64)

    def pad(v):
        return torch.nn.functional.pad(v, (0, D - v.shape[-1]))

    x = stack([pad(x) for x, *_ in cases])
    m = stack([pad(m).expand(len(x_), D) for x_, _, _, m, _ in cases])
    per_row = (
        lambda f: stack(  # noqa: E731
            [
                torch.full((len(c[0]), 1), float(f(*c[1:])), dtype=torch.float64)
                for c in cases
            ]
        )
    )
    delta = per_row(lambda ab_t, ab_u, m_, d: d)
    w_t = per_row(lambda ab_t, ab_u, m_, d: math.asinh(math.sqrt(1 / ab_t - 1) / d))
    w_u = per_row(lambda ab_t, ab_u, m_, d: math.asinh(math.sqrt(1 / ab_u - 1) / d))
    ab_t = per_row(lambda ab_t, ab_u, m_, d: ab_t)
    ab_u = per_row(lambda ab_t, ab_u, m_, d: ab_u)
    h = (w_u - w_t) / steps

    def velocity(w, xbar):
        zeta = delta * torch.sinh(w)
        ab = 1 / (1 + zeta**2)
        x_ = ab.sqrt() * xbar
        eps = (1 - ab).sqrt() * (x_ - ab.sqrt() * m) / (ab * delta**2 + 1 - ab)
        return eps * (delta**2 + zeta**2).sqrt()

    xbar, w = x / ab_t.sqrt(), w_t
    for _ in range(steps):
        k1 = velocity(w, xbar)
        k2 = velocity(w + h / 2, xbar + h / 2 * k1)
        k3 = velocity(w + h / 2, xbar + h / 2 * k2)
        k4 = velocity(w + h, xbar + h * k3)
        xbar, w = xbar + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), w + h
    out = (ab_u.sqrt() * xbar).split([len(c[0]) for c in cases])
    return [o[:, : c[0].shape[1]] for o, c in zip(out, cases)]


def _flow_cases():
    """(schedule, t, u, m, δ): from pure noise to the data, and shorter stretches."""
    g = torch.Generator().manual_seed(701)
    laws = (
        (torch.tensor([0.5, -0.3], dtype=torch.float64), 0.4),
        (torch.randn(3, generator=g, dtype=torch.float64), 2.5),
        (torch.zeros(2, dtype=torch.float64), 1.0),
    )
    for name, T, pairs in (
        ("sigmoid", 100, ((60, 25), (100, 0), (1, 0), (100, 99), (30, 0))),
        ("cosine", 50, ((50, 0), (30, 10))),
        ("linear", 1000, ((1000, 0), (500, 499))),
    ):
        sched = Schedule.named(name, T)
        for t, u in pairs:
            for m, delta in laws:
                yield sched, t, u, m, delta


@exercise("ex-ch7-gaussian-flow")
def gaussian_flow(answer):
    """answer(x, t, u, sched, m, delta): where the probability-flow ODE carries the points
    x (n, d) at step t when it runs down to step u < t (u = 0: the data), for data
    N(m, δ² I) and the exact ε*; m has shape (d,), δ = delta a float; returns (n, d).

    Reference: the ODE dx̄/dζ = ε* integrated numerically (RK4, 500 steps in
    asinh(ζ/δ)), with ᾱ_t recomputed from β_t.
    """
    g = torch.Generator().manual_seed(702)
    cases = []
    for sched, t, u, m, delta in _flow_cases():
        x = torch.randn(6, m.numel(), generator=g, dtype=torch.float64)
        ab = alpha_bar(sched)
        cases.append((sched, t, u, m, delta, x, float(ab[t]), float(ab[u])))
    references = _flow_rk4(
        [(x, a_t, a_u, m, d) for _, _, _, m, d, x, a_t, a_u in cases]
    )
    for (sched, t, u, m, delta, x, ab_t, ab_u), reference in zip(cases, references):
        got = torch.as_tensor(answer(x, t, u, sched, m, delta), dtype=torch.float64)
        if close(got, reference, rtol=1e-6, atol=1e-9):
            continue
        if got.shape != reference.shape:
            return wrong(
                f"for x of shape {tuple(x.shape)} you return shape {tuple(got.shape)}; "
                "return the points at step u, the shape of x."
            )
        z_t2, z_u2 = (1 - ab_t) / ab_t, (1 - ab_u) / ab_u  # ζ²
        xbar = x / math.sqrt(ab_t)
        eps = _gauss_eps(x, ab_t, m, delta)
        x0_hat = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)

        def through(ratio, rescale=True):
            # x̄_u − m = ratio (x̄_t − m), then back to x_u = √ᾱ_u x̄_u
            xbar_u = m + ratio * (xbar - m)
            return math.sqrt(ab_u) * xbar_u if rescale else xbar_u

        root = math.sqrt((delta**2 + z_u2) / (delta**2 + z_t2))
        # the variances of x_t and x_u under the data law, for the slips written in x
        v_t, v_u = ab_t * delta**2 + 1 - ab_t, ab_u * delta**2 + 1 - ab_u
        hint = first_mistake(
            got,
            {
                "That is one DDIM (Euler) step from t to u; the ODE's solution is "
                "what many small steps tend to.": math.sqrt(ab_u) * x0_hat
                + math.sqrt(1 - ab_u) * eps,
                "That is x̄_u = x_u/√ᾱ_u; convert back to x_u.": through(
                    root, rescale=False
                ),
                "You have the square of the flow's factor (which is also the mean of "
                "x_u given x_t: where the stochastic sampler goes on average, not "
                "where the flow carries the point).": through(root**2),
                "A square root is missing: the factor of x − √ᾱ m is the ratio of "
                "the standard deviations, not of the variances.": math.sqrt(ab_u) * m
                + v_u / v_t * (x - math.sqrt(ab_t) * m),
                "The direction: from t down to u < t the spread shrinks towards the "
                "data's; you ran the flow the other way.": math.sqrt(ab_u) * m
                + math.sqrt(v_t / v_u) * (x - math.sqrt(ab_t) * m),
                "delta is a standard deviation; where the data's variance enters, "
                "it is δ², not δ.": through(math.sqrt((delta + z_u2) / (delta + z_t2))),
                "The time of the ODE is ζ = σ̄/√ᾱ, not σ̄: ζ² = (1 − ᾱ)/ᾱ.": through(
                    math.sqrt((delta**2 + 1 - ab_u) / (delta**2 + 1 - ab_t))
                ),
                "The direction: from t down to u < t the deviation from m shrinks "
                "(ζ_u < ζ_t); you ran the flow the other way.": through(1 / root),
                "Rescale before subtracting the mean: x̄_t = x_t/√ᾱ_t, and it is "
                "x̄ − m that scales.": math.sqrt(ab_u) * (m + root * (x - m)),
            },
            rtol=1e-6,
            atol=1e-9,
        )
        return wrong(
            f"for the {sched.name} schedule (T = {sched.T}) from t = {t} to u = {u}, "
            f"with δ = {delta}, your points are off by up to "
            f"{(got - reference).abs().max().item():.3g}. "
            + (
                hint
                or "Write ε* in the variables x̄ and ζ: the ODE becomes one for x̄ − m "
                "alone, and it separates. Then convert back to x."
            )
        )
    return right(
        "x_u = √ᾱ_u m + √(V_u/V_t) (x_t − √ᾱ_t m) with V = ᾱ δ² + 1 − ᾱ: the flow keeps "
        "each point's standardised coordinate."
    )


def _ddim_scale_reference(sched, grid, delta, m=0.3):
    """The scale A of DDIM's map x_T ↦ A x_T + a for data N(m, δ²), read off a run.

    DDIM (σ_t = 0) is run in float64 from x_T = 0 and x_T = 1 with the exact ε*; the
    map is affine, so A is the difference of the two end points.
    """
    ab = alpha_bar(sched)
    x = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for t, u in zip(grid, grid[1:]):
        ab_t, ab_u = float(ab[t]), float(ab[u])
        eps = _gauss_eps(x, ab_t, m, delta)
        x0_hat = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        x = math.sqrt(ab_u) * x0_hat + math.sqrt(1 - ab_u) * eps
    return float(x[1] - x[0])


def _scale_cases():
    """(schedule, grid, δ): grids of 1 to T steps, three spacings, several schedules."""
    for name, T in (("sigmoid", 100), ("cosine", 50), ("linear", 1000)):
        sched = Schedule.named(name, T)
        grids = [time_grid(sched, S) for S in (5, 1, 2, 10)]
        grids += [time_grid(sched, 10, "quadratic"), time_grid(sched, 7, "logsnr")]
        grids += [list(range(T, -1, -1)), list(range(T // 2, -1, -3)) + [0]]
        for grid in grids:
            for delta in (0.4, 1.0, 2.5):
                yield sched, grid, delta


@exercise("ex-ch7-ddim-scale")
def ddim_gaussian_scale(answer):
    """answer(sched, grid, delta): the number A such that DDIM (η = 0) on the grid of steps
    grid (t_0 > t_1 > … > t_S = 0) with the exact ε* of data N(m, δ² I) maps x_{t_0} to
    A x_{t_0} + a; a positive float (it does not depend on m).

    Reference: DDIM run from two starting points with the closed-form ε*, in float64.
    """
    for sched, grid, delta in _scale_cases():
        got = as_float(answer(sched, list(grid), delta))
        reference = _ddim_scale_reference(sched, grid, delta)
        if close(got, reference, rtol=1e-6):
            continue
        ab = alpha_bar(sched)
        zeta = ((1 - ab) / ab).sqrt()
        sig = (1 - ab).sqrt()
        ab0 = float(ab[grid[0]])
        steps = list(zip(grid, grid[1:]))

        def product(factor, pairs=steps):
            out = 1.0
            for t, u in pairs:
                out *= float(factor(t, u))
            return out

        euler = product(
            lambda t, u: (delta**2 + zeta[t] * zeta[u]) / (delta**2 + zeta[t] ** 2)
        )
        hint = first_mistake(
            got,
            {
                "That is the exact probability-flow ODE's scale (the previous "
                "exercise); DDIM's Euler steps do not follow the ODE exactly.": delta
                / math.sqrt(ab0 * delta**2 + 1 - ab0),
                "That is the factor of x̄ − m, with x̄ = x/√ᾱ; the map starts from "
                "x_{t_0} = √ᾱ_{t_0} x̄_{t_0}.": euler,
                "The grid starts at t_0, which need not be T: x̄_{t_0} = "
                "x_{t_0}/√ᾱ_{t_0}.": euler / math.sqrt(float(ab[-1])),
                "That is A², the scale of the variance; A scales the points.": (
                    euler / math.sqrt(ab0)
                )
                ** 2,
                "The last step, from t_{S−1} to 0, counts too.": product(
                    lambda t, u: (
                        (delta**2 + zeta[t] * zeta[u]) / (delta**2 + zeta[t] ** 2)
                    ),
                    steps[:-1],
                )
                / math.sqrt(ab0),
                "An Euler step takes ε* at the start of the step, ζ_t, not at its "
                "end.": product(
                    lambda t, u: (
                        (delta**2 + zeta[u] ** 2) / (delta**2 + zeta[t] * zeta[u])
                    )
                )
                / math.sqrt(ab0),
                "The time of DDIM's ODE is ζ = σ̄/√ᾱ, not σ̄.": product(
                    lambda t, u: (delta**2 + sig[t] * sig[u]) / (delta**2 + sig[t] ** 2)
                )
                / math.sqrt(ab0),
            },
        )
        return wrong(
            f"for the {sched.name} schedule (T = {sched.T}), δ = {delta} and the "
            f"{len(grid) - 1}-step grid {_short(grid)} you give {got:.6g}. "
            + (
                hint
                or "Write one DDIM step as an Euler step of dx̄/dζ = ε* with the "
                "affine ε* of Gaussian data, and multiply the steps' factors."
            )
        )
    return right(
        "each step multiplies x̄ − m by (δ² + ζ_t ζ_u)/(δ² + ζ_t²); the product tends "
        "to the ODE's, √ᾱ_{t_0}^{−1} δ/√(δ² + ζ_{t_0}²), as the steps shrink."
    )


def _short(grid) -> str:
    """A grid for a message: in full if short, else its ends."""
    if len(grid) <= 12:
        return str(list(grid))
    return f"[{grid[0]}, {grid[1]}, {grid[2]}, …, {grid[-2]}, {grid[-1]}]"
