"""The checks of chapter 6's exercises accept a right answer and reject the usual wrong ones."""

from __future__ import annotations

import pytest
import torch

from ddpm_lib.data import GaussianMixture
from ddpm_lib.density import ideal_eps
from ddpm_lib.exercises import check


# ex-ch6-gaussian: gaussian_eps(x, t, sched, m, delta) -> (n, d)
def _eps(x, ab, m, var, cov=None, centre=None):
    cov = (1 - ab).sqrt() if cov is None else cov
    centre = ab.sqrt() * m if centre is None else centre
    return cov * (x - centre) / var


def gauss_right(x, t, sched, m, delta):
    ab = sched.alpha_bar[t]
    return _eps(x, ab, m, ab * delta**2 + 1 - ab)


def gauss_library(x, t, sched, m, delta):
    """The library's ideal denoiser of a one-component mixture: right too."""
    law = GaussianMixture(m[None], torch.tensor([delta], dtype=torch.float64))
    return ideal_eps(law, sched)(x, torch.full((len(x),), t))


def _wrong(fn):
    def answer(x, t, sched, m, delta):
        ab = sched.alpha_bar[t]
        return fn(x, ab, m, delta, sched.alphas[t])

    return answer


GAUSS_WRONG = {
    "sign": _wrong(lambda x, ab, m, d, a: -_eps(x, ab, m, ab * d**2 + 1 - ab)),
    "score's negative": _wrong(
        lambda x, ab, m, d, a: _eps(x, ab, m, ab * d**2 + 1 - ab, cov=1.0)
    ),
    "mean of x_t": _wrong(
        lambda x, ab, m, d, a: _eps(x, ab, m, ab * d**2 + 1 - ab, centre=m)
    ),
    "scaled by ᾱ_t": _wrong(lambda x, ab, m, d, a: _eps(x, ab, m, d**2 + 1 - ab)),
    "needs δ²": _wrong(lambda x, ab, m, d, a: _eps(x, ab, m, ab * d + 1 - ab)),
    "standard deviation": _wrong(
        lambda x, ab, m, d, a: _eps(x, ab, m, (ab * d**2 + 1 - ab).sqrt())
    ),
    "running product": _wrong(lambda x, ab, m, d, a: _eps(x, a, m, a * d**2 + 1 - a)),
    "shape of x": _wrong(lambda x, ab, m, d, a: _eps(x, ab, m, ab * d**2 + 1 - ab)[0]),
}


@pytest.mark.parametrize("answer", [gauss_right, gauss_library])
def test_gaussian_right(answer):
    verdict = check("ex-ch6-gaussian", answer)
    assert verdict, verdict


@pytest.mark.parametrize("word", GAUSS_WRONG)
def test_gaussian_wrong(word):
    verdict = check("ex-ch6-gaussian", GAUSS_WRONG[word])
    assert not verdict and word in verdict.message, verdict


# ex-ch6-memorise: memorising_eps(train_pts, sched) -> eps(x, t)
def _memorise(var=lambda ab: 1 - ab, scale=True, out="eps", one_step=False, flat=False):
    def memorising_eps(train_pts, sched):
        def eps(x, t):
            steps = torch.full_like(t, int(t[0])) if one_step else t
            ab = sched.alpha_bar[steps].to(x)[:, None]
            c = ab.sqrt()[:, None] if scale else 1.0
            dist2 = ((x[:, None] - c * train_pts) ** 2).sum(-1)
            w = torch.softmax(-dist2 / (2 * var(ab)), dim=1)
            if flat:
                w = torch.full_like(w, 1 / w.shape[1])
            x0_hat = w @ train_pts
            if out == "x0":
                return x0_hat
            noise = x - ab.sqrt() * x0_hat
            return noise / (1 - ab) if out == "var" else noise / (1 - ab).sqrt()

        return eps

    return memorising_eps


def memorise_right(train_pts, sched):
    """The book's way: a mixture of tiny Gaussians, one per training point."""
    law = GaussianMixture(train_pts, torch.full_like(train_pts, 1e-7))
    return ideal_eps(law, sched)


MEMORISE_WRONG = {
    "guess of x_0": _memorise(out="x0"),
    "sign": lambda p, s: lambda x, t: -_memorise()(p, s)(x, t),
    "not 1": _memorise(var=lambda ab: torch.ones_like(ab)),
    "not to be square-rooted": _memorise(var=lambda ab: (1 - ab).sqrt()),
    "not at x_k": _memorise(scale=False),
    "must depend on x": _memorise(flat=True),
    "not by its variance": _memorise(out="var"),
    "its own step": _memorise(one_step=True),
    "a function eps(x, t)": lambda p, s: _memorise()(p, s)(
        p, torch.ones(len(p), dtype=torch.long)
    ),
}


@pytest.mark.parametrize("answer", [_memorise(), memorise_right])
def test_memorise_right(answer):
    verdict = check("ex-ch6-memorise", answer)
    assert verdict, verdict


@pytest.mark.parametrize("word", MEMORISE_WRONG)
def test_memorise_wrong(word):
    verdict = check("ex-ch6-memorise", MEMORISE_WRONG[word])
    assert not verdict and word in verdict.message, verdict


@pytest.mark.parametrize("label", ["ex-ch6-gaussian", "ex-ch6-memorise"])
def test_placeholder(label):
    verdict = check(label, ...)
    assert not verdict and "`...`" in verdict.message
