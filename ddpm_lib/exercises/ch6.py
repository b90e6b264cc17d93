"""The checks of chapter 6's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import torch

from ..schedules import Schedule
from . import alpha_bar, close, exercise, first_mistake, right, wrong


def _gaussian_cases():
    """(schedule, t, m, δ): several schedules, T, steps, means, widths and dimensions."""
    g = torch.Generator().manual_seed(601)
    for name, T in (("sigmoid", 100), ("cosine", 50), ("linear", 1000)):
        sched = Schedule.named(name, T)
        for m, delta in (
            (torch.tensor([0.5, -1.0], dtype=torch.float64), 0.7),
            (torch.randn(3, generator=g, dtype=torch.float64), 2.5),
            (torch.zeros(2, dtype=torch.float64), 1.0),
        ):
            for t in sorted({1, 2, T // 4, T // 2, T}):
                yield sched, t, m, delta


@exercise("ex-ch6-gaussian")
def gaussian_eps(answer):
    """answer(x, t, sched, m, delta): the ideal noise prediction ε*(x_t, t) = E[ε | x_t] at
    the points x (n, d), step t (an integer, 1 ≤ t ≤ T), for data N(m, δ² I) with m of
    shape (d,) and δ = delta a float; returns shape (n, d).

    Reference: ε and x_t are jointly Gaussian, so E[ε | x_t] = Cov(ε, x_t) Var(x_t)⁻¹
    (x_t − E x_t), with Cov(ε, x_t) = √(1 − ᾱ_t) I and ᾱ_t recomputed from β_t.
    """
    g = torch.Generator().manual_seed(602)
    for sched, t, m, delta in _gaussian_cases():
        d = m.numel()
        x = 2 * torch.randn(7, d, generator=g, dtype=torch.float64)
        got = torch.as_tensor(answer(x, t, sched, m, delta), dtype=torch.float64)
        ab = float(alpha_bar(sched)[t])
        mean_xt = math.sqrt(ab) * m  # E x_t
        var_xt = ab * delta**2 + 1 - ab  # Var x_t per coordinate
        cov = math.sqrt(1 - ab)  # Cov(ε, x_t) per coordinate
        reference = cov / var_xt * (x - mean_xt)
        if close(got, reference, rtol=1e-6, atol=1e-12):
            continue
        if got.shape != reference.shape:
            return wrong(
                f"for x of shape {tuple(x.shape)} you return shape {tuple(got.shape)}; "
                "return one prediction per point, the shape of x."
            )
        a_t = float(alpha_bar(sched)[t] / alpha_bar(sched)[t - 1])
        hint = first_mistake(
            got,
            {
                "The sign: ε* = −√(1 − ᾱ_t) ∇log q(x_t), and the score points back "
                "towards the mean.": -reference,
                "That is −∇log q(x_t), the score's negative; the noise prediction is "
                "√(1 − ᾱ_t) times it.": (x - mean_xt) / var_xt,
                "The mean of x_t is √ᾱ_t m: the data's mean shrinks with the "
                "signal.": cov / var_xt * (x - m),
                "x_0 enters x_t as √ᾱ_t x_0, so its variance δ² is scaled by ᾱ_t "
                "in the variance of x_t.": cov / (delta**2 + 1 - ab) * (x - mean_xt),
                "delta is a standard deviation; the variance of x_t needs δ².": cov
                / (ab * delta + 1 - ab)
                * (x - mean_xt),
                "Divide by the variance of x_t, not by its standard deviation.": cov
                / math.sqrt(var_xt)
                * (x - mean_xt),
                "ᾱ_t is the running product of the α_t, not α_t of step t alone.": (
                    math.sqrt(1 - a_t)
                    / (a_t * delta**2 + 1 - a_t)
                    * (x - math.sqrt(a_t) * m)
                ),
            },
            rtol=1e-6,
            atol=1e-12,
        )
        return wrong(
            f"for the {sched.name} schedule (T = {sched.T}) at t = {t}, with m = "
            f"{m.numpy().round(3).tolist()} and δ = {delta}, your prediction is off by "
            f"up to {(got - reference).abs().max().item():.3g}. "
            + (
                hint
                or "Write the law q(x_t) of chapter 2's exercise, take its score and "
                "multiply by −√(1 − ᾱ_t)."
            )
        )
    return right(
        "ε* = √(1 − ᾱ_t)(x_t − √ᾱ_t m)/(ᾱ_t δ² + 1 − ᾱ_t), affine in x_t; for N(0, I) "
        "data it is √(1 − ᾱ_t) x_t."
    )


def _log_q(x, t_rows, points, ab):
    """log q(x_t) of the training set's forward marginal, one step per row, up to a constant.

    q(x_t) = (1/K) Σ_k N(x_t; √ᾱ_t x_k, (1 − ᾱ_t) I), by torch.distributions.
    """
    abt = ab[t_rows][:, None, None]  # (n, 1, 1)
    laws = torch.distributions.Normal(abt.sqrt() * points[None], (1 - abt).sqrt())
    return torch.logsumexp(laws.log_prob(x[:, None, :]).sum(-1), dim=1)


def _memorise_cases():
    """(training points, schedule, steps per row): one step for all rows, then mixed steps."""
    g = torch.Generator().manual_seed(603)
    for name, T, K, d in (("sigmoid", 100, 6, 2), ("cosine", 50, 4, 3)):
        sched = Schedule.named(name, T)
        points = torch.randn(K, d, generator=g, dtype=torch.float64)
        for t in sorted({1, 2, T // 5, T // 2, T}):
            yield points, sched, torch.full((9,), t)
    sched = Schedule.named("linear", 1000)
    points = torch.randn(5, 2, generator=g, dtype=torch.float64)
    yield points, sched, torch.randint(1, 1001, (9,), generator=g)


@exercise("ex-ch6-memorise")
def memorising_eps(answer):
    """answer(train_pts, sched): the ideal denoiser of the training set train_pts (K, d),
    as a function eps(x, t) of points x (n, d) and integer steps t (n,) that returns
    E[ε | x_t] (n, d) when x_0 is drawn uniformly from the K training points.

    Reference: −√(1 − ᾱ_t) ∇log q(x_t) with q(x_t) the mixture of the K Gaussians
    N(√ᾱ_t x_k, (1 − ᾱ_t) I), its gradient by automatic differentiation.
    """
    g = torch.Generator().manual_seed(604)
    for points, sched, t_rows in _memorise_cases():
        ab = alpha_bar(sched)
        abt = ab[t_rows][:, None]
        # points around the noised training points, so the weights are neither flat
        # nor all on one point
        k = torch.randint(0, len(points), (len(t_rows),), generator=g)
        x = abt.sqrt() * points[k] + (1 - abt).sqrt() * torch.randn(
            len(t_rows), points.shape[1], generator=g, dtype=torch.float64
        )
        model = answer(points, sched)
        if not callable(model):
            return wrong(
                f"memorising_eps(train_pts, sched) returned a {type(model).__name__}; "
                "return a function eps(x, t) that a sampler can call."
            )
        got = torch.as_tensor(model(x.clone(), t_rows.clone()), dtype=torch.float64)
        xg = x.clone().requires_grad_(True)
        (score,) = torch.autograd.grad(_log_q(xg, t_rows, points, ab).sum(), xg)
        reference = -(1 - abt).sqrt() * score
        if close(got, reference, rtol=1e-6, atol=1e-9):
            continue
        if got.shape != reference.shape:
            return wrong(
                f"for x of shape {tuple(x.shape)} your eps(x, t) returns shape "
                f"{tuple(got.shape)}; return one prediction per point, the shape of x."
            )

        def posterior_mean(var, scale=True):
            # Σ_k w_k x_k with w_k ∝ exp(−‖x − c x_k‖²/(2 var)), c = √ᾱ_t or 1
            c = abt.sqrt()[:, :, None] if scale else 1.0
            dist2 = ((x[:, None, :] - c * points[None]) ** 2).sum(-1)
            return torch.softmax(-dist2 / (2 * var), dim=1) @ points

        def eps_from(x0_hat):
            return (x - abt.sqrt() * x0_hat) / (1 - abt).sqrt()

        mean = posterior_mean(1 - abt)
        t0 = t_rows[0]
        mistakes = {
            "That is the guess of x_0 (a weighted mean of the training points); "
            "the denoiser predicts the noise ε.": mean,
            "The sign: ε = (x_t − √ᾱ_t x̂_0)/√(1 − ᾱ_t), and the score points "
            "towards the training points.": -reference,
            "The weights: x_t given x_k has variance 1 − ᾱ_t per coordinate, "
            "not 1.": eps_from(posterior_mean(torch.ones_like(abt))),
            "The weights: 1 − ᾱ_t is a variance; it is not to be square-rooted in "
            "the exponent.": eps_from(posterior_mean((1 - abt).sqrt())),
            "The weights: given x_k, x_t is centred at √ᾱ_t x_k, not at x_k.": eps_from(
                posterior_mean(1 - abt, scale=False)
            ),
            "The weights must depend on x: a noisy point says which training "
            "point it came from.": eps_from(points.mean(0).expand_as(x)),
            "Divide by √(1 − ᾱ_t), the standard deviation of the noise, not by its "
            "variance.": (x - abt.sqrt() * mean) / (1 - abt),
            "Every row has its own step: t is a tensor of n steps, not one.": (
                -(1 - ab[t0]).sqrt()
                * torch.autograd.grad(
                    _log_q(xg, torch.full_like(t_rows, t0), points, ab).sum(), xg
                )[0]
            ),
        }
        hint = first_mistake(got, mistakes, rtol=1e-6, atol=1e-9)
        steps = sorted(set(t_rows.tolist()))
        where = f"t = {steps[0]}" if len(steps) == 1 else "steps that differ by row"
        return wrong(
            f"for {len(points)} training points in d = {points.shape[1]} with the "
            f"{sched.name} schedule (T = {sched.T}) at {where}, your prediction is "
            f"off by up to {(got - reference).abs().max().item():.3g}. "
            + (
                hint
                or "Weigh each training point by how likely it makes x_t, form the "
                "guess x̂_0, and turn it into a noise prediction."
            )
        )
    return right(
        "ε* = (x_t − √ᾱ_t Σ_k w_k x_k)/√(1 − ᾱ_t), the weights a softmax of "
        "−‖x_t − √ᾱ_t x_k‖²/(2(1 − ᾱ_t)): as t → 0 it snaps to the nearest "
        "training point."
    )
