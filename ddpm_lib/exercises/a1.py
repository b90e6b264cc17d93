"""The checks of the exercises of the appendix on metrics (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import numpy as np

from . import as_float, close, exercise, first_mistake, right, wrong


def _phi(z: float) -> float:
    """The standard normal distribution function Φ(z)."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


@exercise("ex-a1-best-c2st")
def best_c2st(answer):
    """answer(D): the accuracy of the best classifier between N(0, I) and N(μ, I) with
    ‖μ‖ = D and equal numbers of points from each; reference Φ(D/2) = ½(1 + TV)."""
    for D in (0.0, 0.3, 1.0, 2.5, 6.0):
        got = as_float(answer(D))
        reference = _phi(D / 2)
        if close(got, reference, rtol=1e-6, atol=1e-9):
            continue
        hint = first_mistake(
            got,
            {
                "That is the total variation distance TV; the accuracy is ½(1 + TV).": 2
                * reference
                - 1,
                "Φ(D) puts each mean a distance D from the threshold; with the "
                "threshold halfway between them, each is D/2 away.": _phi(D),
                "The best rule puts its threshold halfway between the two means, not at the "
                "first one.": 0.5 * (0.5 + _phi(D)),
                "A point's projection on μ/D has standard deviation 1 under both laws, not √2.": _phi(
                    D / 2 / math.sqrt(2)
                ),
                "That is the error rate; the accuracy is one minus it.": 1 - reference,
                "The accuracy is ½(1 + TV), with TV itself 2Φ(·) − 1, not Φ(·).": 0.5
                * (1 + reference),
            },
            atol=1e-9,
        )
        return wrong(
            f"for D = {D} you give {got:.6g}. "
            + (
                hint
                or "Compare the two densities at a point: their log-ratio is linear in the "
                "projection on μ/D."
            )
        )
    return right(
        "Φ(D/2): at D = 0 a coin, and close to 1 once the two laws barely overlap."
    )


def _test_pairs():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(12))
    q = rng.dirichlet(np.ones(12))
    p_zero, q_zero = p.copy(), q.copy()
    p_zero[:4], q_zero[6:9] = 0.0, 0.0  # empty cells, on one side or the other
    p_zero, q_zero = p_zero / p_zero.sum(), q_zero / q_zero.sum()
    one_hot = np.eye(12)
    return [
        (p, q),
        (p_zero, q_zero),
        (p, p.copy()),  # equal: 0
        (one_hot[0], one_hot[5]),  # no cell in common: log 2
    ]


def _js(p, q):
    m = 0.5 * (p + q)

    def kl(a):
        keep = a > 0
        return float(np.sum(a[keep] * np.log(a[keep] / m[keep])))

    return 0.5 * kl(p) + 0.5 * kl(q)


@exercise("ex-a1-js")
def js_nats(answer):
    """answer(p, q): the Jensen–Shannon divergence in nats between two probability vectors
    (numpy arrays of the same length, possibly with zeros); reference eq. (A1.js)."""
    for p, q in _test_pairs():
        got = as_float(answer(p.copy(), q.copy()))
        reference = _js(p, q)
        if close(got, reference, rtol=1e-6, atol=1e-12):
            continue
        if math.isnan(got):
            return wrong(
                "your answer is NaN: an empty cell (P_i = 0) contributes nothing, "
                "0 · log 0 counts as 0."
            )
        m = 0.5 * (p + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_pq = float(np.sum(np.where(p > 0, p * np.log(p / q), 0.0)))
            half_sum = float(
                np.sum(np.where(p > 0, p * np.log(p / (2 * m)), 0.0))
                + np.sum(np.where(q > 0, q * np.log(q / (2 * m)), 0.0))
            )
        hint = first_mistake(
            got,
            {
                "That is in bits (log base 2); the book uses the natural logarithm, nats.": reference
                / math.log(2),
                "That is twice the JS divergence: each KL term is weighted ½.": 2
                * reference,
                "That is the JS distance, the square root of the divergence.": math.sqrt(
                    reference
                ),
                "The mixture is ½(P + Q), not P + Q.": 0.5 * half_sum,
                "That is KL(P ‖ Q), which is not symmetric and is infinite where Q_i = 0 < P_i; "
                "JS compares each with the mixture ½(P + Q).": kl_pq,
            },
            atol=1e-12,
        )
        return wrong(
            f"for one of the test pairs you give {got:.6g}. "
            + (hint or "Compare each of P and Q with their mixture ½(P + Q).")
        )
    return right("0 for equal histograms, log 2 for histograms with no cell in common.")
