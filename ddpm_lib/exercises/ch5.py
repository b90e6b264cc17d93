"""The checks of chapter 5's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import torch

from ..schedules import Schedule
from . import alpha_bar, as_float, ch1, close, exercise, first_mistake, right, wrong


def _gaussian_pairs():
    """Pairs of diagonal Gaussians (m_a, δ_a, m_b, δ_b), each (n, d), d = 2 and 3, seeded.

    The last row of each batch has p = q, where the divergence is 0.
    """
    g = torch.Generator().manual_seed(501)
    for n, d in ((6, 2), (4, 3)):
        m_a, m_b = (torch.randn(n, d, generator=g, dtype=torch.float64) for _ in "ab")
        d_a, d_b = (
            (0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)).exp()
            for _ in "ab"
        )
        m_b[-1], d_b[-1] = m_a[-1], d_a[-1]
        yield m_a, d_a, m_b, d_b


def _kl_formula(m_a, d_a, m_b, d_b, log_ratio=None, minus=1.0, half=0.5, bias=True):
    """The divergence summed over coordinates, with switches for the usual slips."""
    log_ratio = torch.log(d_b**2 / d_a**2) if log_ratio is None else log_ratio
    sq = (m_a - m_b) ** 2 if bias else 0.0
    return (half * (log_ratio - minus + (d_a**2 + sq) / d_b**2)).sum(-1)


@exercise("ex-ch5-kl")
def kl_diag(answer):
    """answer(m_a, delta_a, m_b, delta_b): KL(N(m_a, diag δ_a²) ‖ N(m_b, diag δ_b²)) in nats,
    for means and standard deviations of shape (n, d); returns shape (n,).

    Reference: torch.distributions' divergence of two MultivariateNormal laws (Cholesky
    factors, traces and log-determinants; no per-coordinate formula).
    """
    for m_a, d_a, m_b, d_b in _gaussian_pairs():
        n, d = m_a.shape
        got = torch.as_tensor(answer(m_a, d_a, m_b, d_b), dtype=torch.float64)
        reference = torch.distributions.kl_divergence(
            torch.distributions.MultivariateNormal(m_a, torch.diag_embed(d_a**2)),
            torch.distributions.MultivariateNormal(m_b, torch.diag_embed(d_b**2)),
        )
        if close(got, reference, rtol=1e-6, atol=1e-10):
            continue
        if got.shape == (n, d):
            return wrong(
                f"for n = {n} pairs in d = {d} dimensions you return shape (n, d) = "
                f"{tuple(got.shape)}: one number per pair is asked. The coordinates "
                "are independent; how do their divergences combine?"
            )
        if got.shape != reference.shape:
            return wrong(
                f"for n = {n} pairs you return shape {tuple(got.shape)}; return one "
                f"divergence per pair, shape ({n},)."
            )
        hint = first_mistake(
            got,
            {
                "That is KL(q ‖ p), the other direction: the expectation is taken "
                "under p = N(m_a, δ_a²), and the divergence is not symmetric.": (
                    _kl_formula(m_b, d_b, m_a, d_a)
                ),
                "delta_a and delta_b are standard deviations; the formula needs the "
                "variances δ².": _kl_formula(
                    m_a, d_a.sqrt(), m_b, d_b.sqrt(), log_ratio=torch.log(d_b / d_a)
                ),
                "The log term: log(δ_b²/δ_a²) = 2 log(δ_b/δ_a).": _kl_formula(
                    m_a, d_a, m_b, d_b, log_ratio=torch.log(d_b / d_a)
                ),
                "Under p, E(x − m_a)²/δ_a² = 1, which gives a −1 per coordinate; "
                "it is missing.": _kl_formula(m_a, d_a, m_b, d_b, minus=0.0),
                "The factor ½ in front is missing.": _kl_formula(
                    m_a, d_a, m_b, d_b, half=1.0
                ),
                "Under p, E(x − m_b)² = δ_a² + (m_a − m_b)²: the squared distance of "
                "the means is missing.": _kl_formula(m_a, d_a, m_b, d_b, bias=False),
                "Independent coordinates add their divergences: sum over the d "
                "coordinates, do not average.": reference / d,
            },
            rtol=1e-6,
            atol=1e-10,
        )
        worst = int((got - reference).abs().argmax())
        return wrong(
            f"for pair {worst} in d = {d} dimensions you give {got[worst].item():.6g}. "
            + (
                hint
                or "Write log p(x) − log q(x) for one coordinate, take its "
                "expectation under p, then combine the coordinates."
            )
        )
    return right(
        "KL = ½ Σ [log(δ_b²/δ_a²) − 1 + (δ_a² + (m_a − m_b)²)/δ_b²], zero only when "
        "the two laws are equal."
    )


def _lambda_cases():
    """(schedule, t, σ_t²) for several schedules, T, steps and reverse variances."""
    for name, T in (("cosine", 50), ("sigmoid", 100), ("linear", 1000), ("tanh", 37)):
        sched = Schedule.named(name, T)
        ab = alpha_bar(sched)
        for t in sorted({2, 3, T // 2, T}):
            beta = 1 - ab[t] / ab[t - 1]
            beta_tilde = (1 - ab[t - 1]) / (1 - ab[t]) * beta
            for sigma2 in (0.05, float(beta), float(beta_tilde)):
                yield sched, t, sigma2


@exercise("ex-ch5-lambda")
def vlb_lambda(answer):
    """answer(sched, t, sigma2): the weight λ_t of eq. (eq-ch5-lambda) for 2 ≤ t ≤ T when
    the reverse step has the fixed variance σ_t² = sigma2 (a float); one number.

    Reference: the coefficient of ε in μ̃_t = c_t x_0 + c'_t x_t once x_0 is written with
    x_t and ε, from c_t recomputed from β_t; then λ_t = (coefficient)² / (2σ_t²).
    """
    for sched, t, sigma2 in _lambda_cases():
        got = as_float(answer(sched, t, sigma2))
        ab = alpha_bar(sched)
        a_t = float(ab[t] / ab[t - 1])
        b_t = 1 - a_t
        c_x0 = math.sqrt(ab[t - 1]) * b_t / (1 - ab[t])  # c_t
        # x_0 = (x_t − √(1 − ᾱ_t) ε)/√ᾱ_t: the ε of μ̃_t comes only through c_t x_0.
        coef_eps = -c_x0 * math.sqrt(1 - ab[t]) / math.sqrt(ab[t])
        reference = coef_eps**2 / (2 * sigma2)
        if close(got, reference, rtol=1e-6):
            continue
        abt, abp = float(ab[t]), float(ab[t - 1])
        a_p = float(ab[t - 1] / ab[t - 2])
        hint = first_mistake(
            got,
            {
                "The noise in x_t has variance 1 − ᾱ_t, with the running product "
                "ᾱ_t; 1 − α_t is the variance of one step only.": b_t**2
                / (2 * sigma2 * a_t * (1 - a_t)),
                "The divergence of two Gaussians with the same variance σ² is "
                "‖μ₁ − μ₂‖²/(2σ²): a 2 is missing.": b_t**2
                / (sigma2 * a_t * (1 - abt)),
                "The mean μ_θ divides by √α_t; squared, that leaves α_t in the "
                "denominator.": b_t**2 / (2 * sigma2 * (1 - abt)),
                "Square the whole coefficient of ε: β_t², not β_t.": b_t
                / (2 * sigma2 * a_t * (1 - abt)),
                "‖c (ε_θ − ε)‖² = c² ‖ε_θ − ε‖²: square the coefficient, "
                "√α_t √(1 − ᾱ_t) included.": b_t
                / (2 * sigma2 * math.sqrt(a_t) * math.sqrt(1 - abt)),
                "The 1/√α_t of μ_θ is α_t of the step t alone, not the running "
                "product ᾱ_t.": b_t**2 / (2 * sigma2 * abt * (1 - abt)),
                "sigma2 is already the variance σ_t²; do not square it again.": b_t**2
                / (2 * sigma2**2 * a_t * (1 - abt)),
                "An index off by one: β_t, α_t and ᾱ_t all belong to the step t "
                "(sched.betas[t] is β_t).": (1 - a_p) ** 2
                / (2 * sigma2 * a_p * (1 - abp)),
            },
        )
        return wrong(
            f"for the {sched.name} schedule with T = {sched.T}, t = {t} and σ_t² = "
            f"{sigma2:.4g} you give {got:.6g}. "
            + (
                hint
                or "Write μ̃_t − μ_θ as a multiple of ε_θ − ε and divide its squared "
                "norm by 2σ_t²."
            )
        )
    return right(
        "λ_t = β_t² / (2σ_t² α_t (1 − ᾱ_t)); L_simple replaces it by 1 at every step."
    )


# L_T is the function of chapter 1's exercise "The price of a short chain": one check
# serves both exercises.
exercise("ex-ch5-prior")(ch1.prior_term)
