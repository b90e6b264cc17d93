"""The checks of the metrics appendix's exercises accept a right answer and catch the
usual wrong ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lib.exercises import check


def phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


@pytest.mark.parametrize(
    "answer",
    [
        lambda D: phi(D / 2),
        lambda D: torch.special.ndtr(torch.tensor(D / 2, dtype=torch.float64)),
        lambda D: 0.5 * (1 + (2 * phi(D / 2) - 1)),  # ½(1 + TV)
    ],
)
def test_best_c2st_right(answer):
    assert check("ex-a1-best-c2st", answer)


@pytest.mark.parametrize(
    "answer, hint",
    [
        (lambda D: 2 * phi(D / 2) - 1, "total variation"),
        (lambda D: phi(D), "a distance D from the threshold"),
        (lambda D: 0.5 * (0.5 + phi(D)), "not at the first one"),
        (lambda D: phi(D / 2 / math.sqrt(2)), "not √2"),
        (lambda D: 1 - phi(D / 2), "error rate"),
        (lambda D: 0.5 * (1 + phi(D / 2)), "not Φ(·)"),
        (lambda D: 0.5, "log-ratio"),
        (..., "replace the `...`"),
    ],
)
def test_best_c2st_wrong(answer, hint):
    v = check("ex-a1-best-c2st", answer)
    assert not v and hint in v.message, v


def js(p, q):
    m = 0.5 * (p + q)
    kl = lambda a: sum(x * math.log(x / y) for x, y in zip(a, m) if x > 0)
    return 0.5 * kl(p) + 0.5 * kl(q)


def js_torch(p, q):
    p, q = torch.as_tensor(p), torch.as_tensor(q)
    m = 0.5 * (p + q)
    return 0.5 * (torch.special.xlogy(p, p / m).nansum()) + 0.5 * (
        torch.special.xlogy(q, q / m).nansum()
    )


def test_js_right():
    assert check("ex-a1-js", js)
    assert check("ex-a1-js", js_torch)


def _nan_at_zeros(p, q):
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))


@pytest.mark.parametrize(
    "answer, hint",
    [
        (lambda p, q: js(p, q) / math.log(2), "bits"),
        (lambda p, q: 2 * js(p, q), "twice"),
        (lambda p, q: math.sqrt(js(p, q)), "JS distance"),
        (lambda p, q: js(p, q) - math.log(2), "not P + Q"),
        (_nan_at_zeros, "NaN"),
        (lambda p, q: 0.1, "mixture ½(P + Q)"),
    ],
)
def test_js_wrong(answer, hint):
    v = check("ex-a1-js", answer)
    assert not v and hint in v.message, v


def test_kl_instead_of_js_is_named():
    def kl_pq(p, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(np.where(p > 0, p * np.log(p / q), 0.0)))

    v = check("ex-a1-js", kl_pq)
    assert not v and "KL(P ‖ Q)" in v.message, v
