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
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer ≥ 1, got {n!r}")
    mean, std = standardisation(name)
    raw = _RAW[name](n, np.random.default_rng(seed))
    return torch.from_numpy((raw - mean) / std).float()


class GaussianMixture:
    """A mixture Σ_k w_k N(m_k, s_k² I) in d dimensions with exact log-density and score.

    Args:
        means: (K, d); stds: (K,); weights: (K,), positive, normalised here.
    The score ∇_x log p(x) is exact, which makes the mixture the test bed of
    the Langevin chapter (chapter 3).
    """

    def __init__(self, means, stds, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        self.stds = torch.as_tensor(stds, dtype=torch.float64)
        K = self.means.shape[0]
        w = torch.ones(K, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if self.means.ndim != 2 or self.stds.shape != (K,) or w.shape != (K,):
            raise ValueError("means must be (K, d), stds and weights (K,)")
        if torch.any(self.stds <= 0) or torch.any(w <= 0):
            raise ValueError("stds and weights must be positive")
        self.weights = w / w.sum()

    @property
    def d(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator=None) -> torch.Tensor:
        """n exact samples, shape (n, d), float32."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn((n, self.d), generator=generator, dtype=torch.float64)
        return (self.means[k] + self.stds[k, None] * z).float()

    def _log_components(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)  # (n, K)
        var = self.stds**2
        return self.weights.log() - 0.5 * sq / var - 0.5 * self.d * torch.log(2 * math.pi * var)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), shape (n,)."""
        return torch.logsumexp(self._log_components(x), dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """∇_x log p(x) = Σ_k r_k(x) (m_k − x)/s_k², with responsibilities r_k; shape (n, d)."""
        r = torch.softmax(self._log_components(x), dim=1)  # (n, K)
        diff = (self.means[None] - x.double()[:, None, :]) / (self.stds**2)[None, :, None]
        return (r[..., None] * diff).sum(1).to(x.dtype)

    def noised(self, alpha_bar: float) -> "GaussianMixture":
        """The law of √ᾱ x_0 + √(1−ᾱ) ε for x_0 from this mixture: q(x_t) (chapters 2 and 3)."""
        ab = float(alpha_bar)
        return GaussianMixture(math.sqrt(ab) * self.means, torch.sqrt(ab * self.stds**2 + 1 - ab), self.weights)
