"""The checks of chapter 11's exercises (see :mod:`ddpm_lib.exercises`).

No check imports diffusers: the references are written in the book's own indexing.
"""

from __future__ import annotations

import math

import torch

from ..schedules import Schedule
from . import alpha_bar, as_float, close, exercise, first_mistake, right, wrong


def _ddim_to(x, eps, ab_t, ab_s):
    """x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s) ε, x̂_0 = (x − √(1 − ᾱ_t) ε)/√ᾱ_t (η = 0)."""
    x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    return math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps


def _ddim_cases():
    """(alphas_cumprod, k, k_prev) with k_prev = −1 (the data) among them."""
    for name, T, pairs in (
        ("sigmoid", 100, ((99, 89), (9, -1), (50, 0), (0, -1))),
        ("cosine", 20, ((19, 14), (4, -1), (1, 0))),
    ):
        sched = Schedule.named(name, T)
        for k, k_prev in pairs:
            yield sched, k, k_prev


@exercise("ex-ch11-ddim-k")
def ddim_in_diffusers_indexing(answer):
    """answer(x, k, k_prev, eps, alphas_cumprod): one deterministic DDIM step from
    diffusers' timestep k to k_prev (k_prev = −1: the data), where alphas_cumprod[k] =
    ᾱ_{k+1} (T values, float64); returns (n, d).

    Reference: the DDIM update written with the book's ᾱ (ᾱ_0 = 1), recomputed from β.
    """
    g = torch.Generator().manual_seed(1101)
    for sched, k, k_prev in _ddim_cases():
        ab = alpha_bar(sched)  # ᾱ_0 … ᾱ_T, the book's indexing
        table = ab[1:].clone()  # diffusers' alphas_cumprod
        x = torch.randn(5, 3, generator=g, dtype=torch.float64)
        eps = torch.randn(5, 3, generator=g, dtype=torch.float64)
        ref = _ddim_to(x, eps, float(ab[k + 1]), float(ab[k_prev + 1]))
        got = answer(x, k, k_prev, eps, table)
        got = torch.as_tensor(got, dtype=torch.float64)
        if close(got, ref, rtol=1e-9, atol=1e-12):
            continue
        if got.shape != ref.shape:
            return wrong(f"return the points x at k_prev, shape {tuple(x.shape)}.")
        last = float(table[k_prev])  # Python's table[−1] is ᾱ_T
        mistakes = {
            "at k_prev = −1 you read alphas_cumprod[−1], which Python takes as the "
            "LAST entry, ᾱ_T (pure noise); the data's ᾱ is 1 (set_alpha_to_one).": (
                _ddim_to(x, eps, float(ab[k + 1]), last) if k_prev == -1 else None
            ),
            "at k_prev = −1 you stop at alphas_cumprod[0] = ᾱ_1, one step short of "
            "the data (what set_alpha_to_one=False does).": (
                _ddim_to(x, eps, float(ab[k + 1]), float(ab[1]))
            ),
            "your ᾱ are one step off: alphas_cumprod[k] already is ᾱ_{k+1}; do not "
            "shift the index again.": _ddim_to(
                x, eps, float(ab[min(k + 2, sched.T)]), float(ab[k_prev + 2])
            ),
            "you used ᾱ_k for diffusers' k (the book's index): alphas_cumprod[k] is "
            "ᾱ_{k+1}.": _ddim_to(x, eps, float(ab[k]), float(ab[max(k_prev, 0)])),
        }
        hint = first_mistake(
            got, {h: v for h, v in mistakes.items() if v is not None}, 1e-9, 1e-12
        )
        return wrong(
            hint
            or f"from k = {k} to k_prev = {k_prev} your step differs from DDIM's "
            "(η = 0): predict x̂_0 with ᾱ at k, then rebuild x with ᾱ at k_prev and "
            "the same ε."
        )
    return right("one DDIM step in diffusers' indexing, the data at k_prev = −1.")


def _copy_cases():
    """(samples, train, heldout): samples at graded distances from training points, so
    that every other threshold (the usual slips) counts a different share."""
    g = torch.Generator().manual_seed(1102)
    for d, n in ((2, 200), (5, 300)):  # r: up to about the 10th percentile
        train = torch.randn(n, d, generator=g, dtype=torch.float64)
        heldout = torch.randn(n, d, generator=g, dtype=torch.float64)
        u = torch.randn(60, d, generator=g, dtype=torch.float64)
        r = torch.linspace(0, 1, 60, dtype=torch.float64) ** 2 * (
            0.1 if d == 2 else 1.0
        )
        yield train[:60] + r[:, None] * u / u.norm(dim=1, keepdim=True), train, heldout


def _nn(a, b, skip_self=False):
    dist = torch.cdist(a, b)
    if skip_self:
        dist = dist + torch.diag(torch.full((len(a),), math.inf, dtype=a.dtype))
    return dist.min(1).values


def _share(samples, train, heldout, q=0.01, ref="train"):
    p1 = torch.quantile(_nn(heldout, train), q)
    return float((_nn(samples, train) < p1).double().mean())


@exercise("ex-ch11-copies")
def copy_share(answer):
    """answer(samples, train, heldout): the share of samples nearer to their nearest
    training point than the 1st percentile of the held-out points' nearest-training
    distances (all (n, d) float64 tensors); returns one number in [0, 1].

    Reference: brute-force distances (torch.cdist) and torch.quantile.
    """
    for samples, train, heldout in _copy_cases():
        ref = _share(samples, train, heldout)
        got = as_float(answer(samples, train, heldout))
        if close(got, ref, rtol=1e-9, atol=1e-12):
            continue
        p1_self = torch.quantile(_nn(heldout, heldout, skip_self=True), 0.01)
        p1_samples = torch.quantile(_nn(samples, train), 0.01)
        nn_s = _nn(samples, train)
        mistakes = {
            "a share is in [0, 1], not a percentage.": 100 * ref,
            "the percentile is that of the held-out points' distances to the TRAINING "
            "set, not to each other.": float((nn_s < p1_self).double().mean()),
            "the percentile comes from the held-out points (real digits the network "
            "never saw), not from the samples themselves.": float(
                (nn_s < p1_samples).double().mean()
            ),
            "the 1st percentile is the 0.01 quantile, not 0.1.": _share(
                samples, train, heldout, 0.1
            ),
            "measure each sample's distance to the training set, not to the held-out "
            "set.": float(
                (_nn(samples, heldout) < torch.quantile(_nn(heldout, train), 0.01))
                .double()
                .mean()
            ),
        }
        hint = first_mistake(got, mistakes, 1e-9, 1e-12)
        return wrong(
            hint
            or f"your share is {got:.4g}; count the samples whose nearest-training "
            "distance lies below the held-out points' 1st percentile, over all samples."
        )
    return right("the share of samples nearer to the training set than real digits.")
