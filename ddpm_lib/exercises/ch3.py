"""The checks of chapter 3's exercises (see :mod:`ddpm_lib.exercises`)."""

from __future__ import annotations

import math

import torch

from ..data import GaussianMixture
from . import as_float, close, exercise, first_mistake, right, wrong

#: (h, δ²) pairs with 0 < h < 4δ²: small and large steps, h above 2δ² (φ < 0).
_AR1_CASES = [(0.5, 0.3), (0.01, 1.0), (0.7, 0.7), (3.0, 1.0), (0.2, 2.5)]


@exercise("ex-ch3-ar1")
def ar1_stationary(variance, correlation):
    """variance(h, delta_sq) and correlation(h, delta_sq): the stationary variance V
    of the Langevin chain with step h on N(0, δ²), and the correlation between x_j and
    x_{j+1} in the stationary state, for 0 < h < 4δ².

    Reference: the fixed point of Var x_{j+1} = φ² Var x_j + h with φ = 1 − h/(2δ²),
    solved here as h / (1 − φ²); the lag-one correlation is Cov(x_j, x_{j+1}) / V = φ.
    """
    for h, s2 in _AR1_CASES:
        phi = 1 - h / (2 * s2)
        reference = h / (1 - phi**2)
        got = as_float(variance(h, s2))
        if close(got, reference, rtol=1e-6):
            continue
        hint = first_mistake(
            got,
            {
                "That is δ², the target: a finite step overshoots it.": s2,
                "That is a standard deviation; the question asks for the variance.": (
                    math.sqrt(reference)
                ),
                "The drift scales x_j by φ, so its variance by φ², not φ.": (
                    h / (1 - phi)
                ),
                "That is the first-order expansion in h; solve the fixed-point "
                "equation exactly.": s2 * (1 + h / (4 * s2)),
                "The drift is (h/2) times the score −x/δ²: you dropped the ½.": h
                / (1 - (1 - h / s2) ** 2),
                "The noise √h z_j adds variance h, not √h.": (
                    math.sqrt(h) / (1 - phi**2)
                ),
            },
        )
        return wrong(
            f"with h = {h} and δ² = {s2} your stationary variance is {got:.6g}. "
            + (
                hint
                or "Take variances on both sides of the update and solve V = …V + …"
            )
        )
    for h, s2 in _AR1_CASES:
        phi = 1 - h / (2 * s2)
        got = as_float(correlation(h, s2))
        if close(got, phi, rtol=1e-6, atol=1e-12):
            continue
        hint = first_mistake(
            got,
            {
                "That is the covariance φV; divide by the variance V.": (
                    phi * h / (1 - phi**2)
                ),
                "That is φ², the correlation two steps apart.": phi**2,
                "A correlation keeps its sign: for h > 2δ² the drift overshoots "
                "and φ is negative.": abs(phi),
                "The drift is (h/2) times the score −x/δ²; you dropped the ½.": (
                    1 - h / s2
                ),
            },
            rtol=1e-6,
            atol=1e-12,
        )
        return wrong(
            f"with h = {h} and δ² = {s2} your correlation is {got:.6g}. "
            + (hint or "Write Cov(x_j, x_{j+1}) with the update and divide by V.")
        )
    return right("V = δ²/(1 − h/(4δ²)) and the lag-one correlation is φ = 1 − h/(2δ²).")


def _mixtures():
    """Mixtures with isotropic and diagonal components, in 2 and 3 dimensions."""
    yield GaussianMixture(
        [[-1.5, -0.6], [0.0, 0.9], [1.5, -0.6]], [0.55] * 3, [0.5, 0.3, 0.2]
    )
    yield GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], [0.4, 0.4], [0.8, 0.2])
    yield GaussianMixture(
        [[0.5, -1.0], [-1.0, 1.0]], [[0.3, 1.2], [0.8, 0.5]], [0.4, 0.6]
    )
    yield GaussianMixture(
        [[0.0, 0.0, 0.0], [1.0, -1.0, 2.0]], [[1.0, 0.5, 0.7], [0.3, 0.3, 0.3]]
    )


def _density_and_gradient(law: GaussianMixture, x: torch.Tensor):
    """p(x), shape (n, 1), and ∇p(x) = Σ_k w_k N(x; m_k, diag δ_k²) (m_k − x)/δ_k²,
    shape (n, d), written out in float64."""
    var = law.stds**2  # (K, d)
    diff = x[:, None, :] - law.means  # (n, K, d)
    log_n = -0.5 * (diff**2 / var + torch.log(2 * math.pi * var)).sum(-1)  # (n, K)
    dens = law.weights * log_n.exp()  # (n, K): w_k N(x; m_k, diag δ_k²)
    return dens.sum(1, keepdim=True), (dens[..., None] * (-diff / var)).sum(1)


@exercise("ex-ch3-fixed-points")
def grad_density(answer):
    """answer(law, x): ∇_x p(x), shape (n, d), the gradient of the density (not of its
    logarithm) of a ``dl.GaussianMixture`` law at points x of shape (n, d).

    Reference: the gradient of Σ_k w_k N(x; m_k, diag δ_k²), differentiated term by
    term and written out here, not through the library's score.
    """
    for k, law in enumerate(_mixtures()):
        d = law.means.shape[1]
        g = torch.Generator().manual_seed(30 + k)
        x = 1.5 * torch.randn(200, d, generator=g, dtype=torch.float64)
        got = torch.as_tensor(answer(law, x), dtype=torch.float64)
        dens, reference = _density_and_gradient(law, x)
        scale = reference.abs().max().item()
        if close(got, reference, rtol=1e-6, atol=1e-9 * scale):
            continue
        if got.shape != reference.shape:
            return wrong(
                f"for x of shape {tuple(x.shape)} you return shape {tuple(got.shape)}; "
                "return one gradient per point, the shape of x."
            )
        score = reference / dens
        hint = first_mistake(
            got,
            {
                "That is the score ∇ log p; the update of the seed article uses ∇p = "
                "p ∇ log p.": score,
                "The gradient of p points uphill, towards the modes: check its "
                "sign.": -reference,
                "That is ∇ log p divided by p; multiply by p instead.": score / dens,
                "That is log p times the score; multiply by p itself.": (
                    dens.log() * score
                ),
            },
            rtol=1e-6,
            atol=1e-9 * scale,
        )
        return wrong(
            f"on mixture {k + 1} of the check ({len(law.weights)} components in "
            f"{d} dimensions), your gradient differs from ∇p. "
            + (
                hint
                or "Differentiate the mixture density term by term, or relate ∇p to the score the "
                "law already provides."
            )
        )
    return right(
        "∇p = p ∇ log p: it vanishes wherever p is tiny, so far from the data the "
        "∇p update hardly moves."
    )
