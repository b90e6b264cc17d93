"""Sample-quality metrics, each with its noise floor (chapter 1 onwards).

A metric alone says little: two independent draws of the *data* already differ.
Every metric here is therefore reported beside its floor, the same metric
between two fresh draws of the data law (:func:`evaluate`).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from ._checks import check_points

#: Histogram window and bins for :func:`histogram_js`, in standardised units.
HIST_RANGE, HIST_BINS = (-3.0, 3.0), 30


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        check_points(x, "samples")
        return x.detach().double().numpy()
    return np.asarray(x, dtype=np.float64)


def c2st(samples, reference, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """Classifier two-sample test: accuracy of a k-NN classifier telling the two sets apart.

    Mean accuracy over ``folds``-fold stratified cross-validation
    (Lopez-Paz & Oquab 2017). 0.5: indistinguishable; 1.0: fully separable.
    Use sets of equal size.
    """
    a, b = _np(samples), _np(reference)
    x = np.concatenate([a, b])
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(k), x, y, cv=cv).mean())


def histogram_js(samples, reference, bins: int = HIST_BINS, lim=HIST_RANGE) -> float:
    """Jensen–Shannon divergence (nats, in [0, ln 2]) between 2D histograms of two point sets.

    ``bins`` × ``bins`` cells over the window ``lim``², plus one cell for every point
    outside it (so a sampler that throws points far away is charged for them).
    Draw ``reference`` large, so that this measures ``samples`` and not the
    reference's own noise. Sensitive to blur, which moves mass off a thin curve
    into its neighbouring cells.
    """
    edges = np.linspace(*lim, bins + 1)

    def hist(x):
        x = _np(x)
        inside = np.histogram2d(*x.T, bins=[edges, edges])[0].ravel()
        return np.append(inside, len(x) - inside.sum()) / len(x)

    p, q = hist(samples), hist(reference)
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def sliced_wasserstein(a, b, n_projections: int = 500, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two equal-size point sets (Rabin et al. 2011).

    The mean, over random unit directions u, of the 1D Wasserstein-1 distance
    between the projections ⟨a, u⟩ and ⟨b, u⟩ (mean |sorted differences|).
    """
    a, b = _np(a), _np(b)
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs two sets of the same shape, got {a.shape} and {b.shape}")
    u = np.random.default_rng(seed).standard_normal((a.shape[1], n_projections))
    u /= np.linalg.norm(u, axis=0)
    pa, pb = np.sort(a @ u, axis=0), np.sort(b @ u, axis=0)
    return float(np.abs(pa - pb).mean())


def evaluate(samples, draw, seed: int = 0, reference_size: int = 100_000) -> dict:
    """Compare ``samples`` (n, d) with fresh data, and report each metric beside its floor.

    ``draw(n, seed)`` must return n fresh i.i.d. points of the data law, e.g.
    ``lambda n, seed: sample_data("moons", n, seed)``. Three independent
    draws are made: a test set of n points (the comparison), a second set of n
    points (the floor: the data against itself) and a large reference for the
    histograms.

    Returns a dict with keys c2st, c2st_floor, js, js_floor, sw1, sw1_floor.
    """
    n = len(samples)
    base = 1_000_003 * (seed + 1)
    test, other = draw(n, base + 1), draw(n, base + 2)
    reference = draw(reference_size, base + 3)
    return {
        "c2st": c2st(samples, test, seed=seed),
        "c2st_floor": c2st(other, test, seed=seed),
        "js": histogram_js(samples, reference),
        "js_floor": histogram_js(other, reference),
        "sw1": sliced_wasserstein(samples, test, seed=seed),
        "sw1_floor": sliced_wasserstein(other, test, seed=seed),
    }


def format_metrics(m: dict) -> str:
    """One line: each metric beside its floor."""
    return (f"C2ST {m['c2st']:.3f} (floor {m['c2st_floor']:.3f}) | "
            f"JS {m['js']:.4f} (floor {m['js_floor']:.4f}) | "
            f"SW1 {m['sw1']:.4f} (floor {m['sw1_floor']:.4f})")
