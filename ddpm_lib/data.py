"""Toy 2D data (all chapters) and a Gaussian mixture with an exact score (chapter 3).

Every data set is *standardised*: shifted and scaled by fixed constants (the
mean and standard deviation of its law, estimated once from 10⁶ points) so
that each coordinate has mean 0 and variance 1. One schedule and one set of
metric settings then serve all three.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import make_s_curve, make_swiss_roll

from ._checks import check_count, check_generator, check_real, is_count

#: Noise added by each generator, in the units of the raw (unstandardised) data.
NOISE = {"swiss_roll": 0.5, "moons": 0.05, "s_curve": 0.1}
DATASETS = tuple(NOISE)


def _raw_swiss_roll(n: int, rng: np.random.Generator) -> np.ndarray:
    """scikit-learn's Swiss roll, projected on its (x, z) plane: the 2D spiral."""
    x, _ = make_swiss_roll(n, noise=NOISE["swiss_roll"], random_state=_sk_seed(rng))
    return x[:, [0, 2]]


def _raw_s_curve(n: int, rng: np.random.Generator) -> np.ndarray:
    """scikit-learn's S-curve, projected on its (x, z) plane: the 2D "S"."""
    x, _ = make_s_curve(n, noise=NOISE["s_curve"], random_state=_sk_seed(rng))
    return x[:, [0, 2]]


def _raw_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    """The law of scikit-learn's ``make_moons``, with i.i.d. points.

    ``make_moons`` places its points at evenly spaced angles, so two of its draws
    are more alike than two independent samples, and a metric's noise floor
    measured with it would be too low. Here each point picks a moon with
    probability ½ and an angle θ ~ U(0, π): (cos θ, sin θ) for the upper moon,
    (1 − cos θ, ½ − sin θ) for the lower one, plus N(0, 0.05²) noise.
    """
    theta = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(theta), 1 - np.cos(theta))
    y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
    return np.stack([x, y], 1) + NOISE["moons"] * rng.standard_normal((n, 2))


_RAW = {"swiss_roll": _raw_swiss_roll, "moons": _raw_moons, "s_curve": _raw_s_curve}


def _sk_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


@lru_cache(maxsize=None)
def standardisation(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the raw law ``name``, from 10⁶ points with a fixed seed."""
    raw = _RAW[name](1_000_000, np.random.default_rng(12345))
    return raw.mean(0), raw.std(0)


def sample_data(name: str, n: int, seed: int) -> torch.Tensor:
    """n standardised points of a toy data set, shape (n, 2), float32.

    name: "swiss_roll", "moons" or "s_curve". The same seed gives the same points.
    """
    if name not in _RAW:
        raise ValueError(
            f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}"
        )
    if not is_count(n):
        raise ValueError(f"n must be an integer ≥ 1, got {n!r}")
    if not is_count(seed, 0):
        raise TypeError(f"seed must be an integer ≥ 0, got {seed!r}")
    mean, std = standardisation(name)
    raw = _RAW[name](n, np.random.default_rng(seed))
    return torch.from_numpy((raw - mean) / std).float()


class GaussianMixture:
    """A mixture Σ_k w_k N(m_k, diag(s_k²)) in d dimensions with exact log-density and score.

    Args:
        means: (K, d); stds: (K,) for isotropic components or (K, d) for diagonal ones;
        weights: (K,), positive, normalised here (equal if None).
    The score ∇_x log p(x) is exact, which makes the mixture the test bed of
    the Langevin chapter (chapter 3); a fine mixture along a curve is the exact
    law of each toy data set (:mod:`ddpm_lib.density`).
    """

    def __init__(self, means, stds, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        if self.means.ndim != 2:
            raise ValueError(
                f"means must have shape (K, d), got {tuple(self.means.shape)}"
            )
        K, d = self.means.shape
        stds = torch.as_tensor(stds, dtype=torch.float64)
        w = (
            torch.ones(K, dtype=torch.float64)
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float64)
        )
        if stds.shape not in ((K,), (K, d)) or w.shape != (K,):
            raise ValueError(
                f"with means of shape (K, d) = ({K}, {d}), stds must be (K,) or (K, d) and weights (K,); "
                f"got {tuple(stds.shape)} and {tuple(w.shape)}"
            )
        if not torch.all(torch.isfinite(self.means)):
            raise ValueError("means must be finite, got NaN or inf")
        if not torch.all(torch.isfinite(stds) & (stds > 0)):
            raise ValueError(
                f"stds must be finite and positive (> 0), got {stds.flatten()[:5].tolist()}…"
            )
        if not torch.all(torch.isfinite(w) & (w > 0)):
            raise ValueError(
                f"weights must be finite and positive (> 0), got {w[:5].tolist()}…"
            )
        self.stds = stds[:, None].expand(K, d).clone() if stds.ndim == 1 else stds
        self.weights = w / w.sum()

    @property
    def d(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator=None) -> torch.Tensor:
        """n exact samples, shape (n, d), float32."""
        check_count(n, "n")
        check_generator(generator)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn((n, self.d), generator=generator, dtype=torch.float64)
        return (self.means[k] + self.stds[k] * z).float()

    def _log_components(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; m_k, diag(s_k²)), shape (n, K).

        The squared distance Σ_d (x_d − m_kd)²/s_kd² is expanded into three matrix
        products, which is much faster than forming the (n, K, d) differences.
        """
        x = x.to(
            device="cpu", dtype=torch.float64
        )  # no detach: log_prob stays differentiable (chapter 3)
        inv_var = self.stds**-2  # (K, d)
        sq = (
            (x**2) @ inv_var.T
            - 2 * x @ (self.means * inv_var).T
            + (self.means**2 * inv_var).sum(1)
        )
        return (
            self.weights.log()
            - 0.5 * sq.clamp(min=0)
            - 0.5 * torch.log(2 * math.pi / inv_var).sum(-1)
        )

    def _chunks(self, x: torch.Tensor):
        # Bound the (n, K) intermediates to about 2**22 numbers.
        return torch.split(x, max(1, 2**22 // self.means.shape[0]))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), shape (n,), float64, on the device of x."""
        return torch.cat(
            [torch.logsumexp(self._log_components(c), dim=1) for c in self._chunks(x)]
        ).to(x.device)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """∇_x log p(x) = Σ_k r_k(x) (m_k − x)/s_k², with responsibilities r_k; shape (n, d), dtype of x."""
        out = []
        for c in self._chunks(x):
            r = torch.softmax(self._log_components(c), dim=1)  # (n, K)
            diff = (self.means[None] - c.double()[:, None, :]) / (self.stds**2)[None]
            out.append((r[..., None] * diff).sum(1))
        return torch.cat(out).to(device=x.device, dtype=x.dtype)

    def noised(self, alpha_bar: float) -> "GaussianMixture":
        """The law of √ᾱ x_0 + √(1−ᾱ) ε for x_0 from this mixture: q(x_t) (chapters 2 and 3)."""
        ab = check_real(alpha_bar, "alpha_bar", lo=0.0, hi=1.0)
        return GaussianMixture(
            math.sqrt(ab) * self.means,
            torch.sqrt(ab * self.stds**2 + 1 - ab),
            self.weights,
        )
