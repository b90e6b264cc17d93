"""The checks of chapter 4's exercises accept a right answer and name the usual mistakes."""

from __future__ import annotations

import time

import pytest
import torch

import ddpm_lib as dl
from ddpm_lib.exercises import check


def ratio(sched):
    return sched.posterior_variance[2:] / sched.betas[2:]


def first_step(sched, frac):
    return 2 + int((ratio(sched) >= frac).nonzero()[0])


def x0_posterior_variance(delta_sq, t, sched):
    ab = sched.alpha_bar[t]
    return 1 / (1 / delta_sq + ab / (1 - ab))


def mean_via_x0hat(xt, t, eps, sched):
    ab = sched.alpha_bar[t]
    ab = ab[:, None] if ab.ndim else ab  # one step per point, or one for all
    x0_hat = (xt - (1 - ab).sqrt() * eps) / ab.sqrt()
    return dl.posterior_mean_variance(x0_hat, xt, t, sched)[0]


def mean_for_one_step_only(xt, t, eps, sched):
    ab = sched.alpha_bar[t]
    x0_hat = (xt - (1 - ab).sqrt() * eps) / ab.sqrt()
    return dl.posterior_mean_variance(x0_hat, xt, t, sched)[0]


def test_x0hat_needs_a_step_per_point():
    verdict = check("ex-ch4-x0hat", mean_for_one_step_only)
    assert not verdict and "one per point" in verdict.message, verdict


def test_right_answers_pass():
    assert check("ex-ch4-smaller", ratio, first_step)
    assert check("ex-ch4-last", x0_posterior_variance)
    assert check("ex-ch4-x0hat", mean_via_x0hat)


def test_placeholder_is_not_an_answer():
    assert not check("ex-ch4-smaller", ratio, ...)
    assert not check("ex-ch4-last", ...)
    assert not check("ex-ch4-x0hat", ...)


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda s: 1 / ratio(s), "upside down"),
        (lambda s: s.betas[1:-1] / s.betas[2:], "α_t"),
        (lambda s: ratio(s).sqrt(), "standard deviations"),
        (lambda s: s.posterior_variance[1:] / s.betas[1:], "start at t = 2"),
        (
            lambda s: torch.cat([torch.zeros(1, dtype=torch.float64), ratio(s)[:-1]]),
            "off by one",
        ),
    ],
)
def test_ratio_mistakes(answer, word):
    verdict = check("ex-ch4-smaller", answer, first_step)
    assert not verdict and word in verdict.message


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda s, f: int((ratio(s) >= f).nonzero()[0]), "add 2"),
        (lambda s, f: 1 + int((ratio(s) >= f).nonzero()[0]), "One step early"),
        (lambda s, f: first_step(s, f) + 1, "too late"),
    ],
)
def test_first_step_mistakes(answer, word):
    verdict = check("ex-ch4-smaller", ratio, answer)
    assert not verdict and word in verdict.message


def _bayes(delta_sq, ab):
    return 1 / (1 / delta_sq + ab / (1 - ab))


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda d2, t, s: s.posterior_variance[t], "β̃_t"),
        (lambda d2, t, s: 1 - s.alpha_bar[t], "noise variance"),
        (lambda d2, t, s: 1 / (1 / d2 + 1 / (1 - s.alpha_bar[t])), "scaling"),
        (lambda d2, t, s: d2 + (1 - s.alpha_bar[t]) / s.alpha_bar[t], "Precisions"),
        (lambda d2, t, s: x0_posterior_variance(d2, t, s).sqrt(), "standard dev"),
        (lambda d2, t, s: _bayes(d2, s.alphas[t]), "α_t"),
        (
            lambda d2, t, s: (
                _bayes(d2, s.alpha_bar[t - 1]) if t > 1 else _bayes(d2, s.alpha_bar[t])
            ),
            "off by one",
        ),
    ],
)
def test_last_step_mistakes(answer, word):
    verdict = check("ex-ch4-last", answer)
    assert not verdict and word in verdict.message


def _post(x0, xt, t, s, prev=None):
    abp = s.alpha_bar[t - 1] if prev is None else prev
    ab, b = s.alpha_bar[t], s.betas[t]
    return abp.sqrt() * b / (1 - ab) * x0 + (1 - b).sqrt() * (1 - abp) / (1 - ab) * xt


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda xt, t, e, s: dl.predict_x0_from_eps(xt, t, e, s), "x̂_0 itself"),
        (
            lambda xt, t, e, s: _post(
                (xt - s.betas[t].sqrt() * e) / s.alphas[t].sqrt(), xt, t, s
            ),
            "α_t",
        ),
        (
            lambda xt, t, e, s: _post(
                (xt - (1 - s.alpha_bar[t]).sqrt() * e) / s.alpha_bar[t], xt, t, s
            ),
            "√ᾱ_t, not ᾱ_t",
        ),
        (
            lambda xt, t, e, s: _post(
                (xt - (1 - s.alpha_bar[t]) * e) / s.alpha_bar[t].sqrt(), xt, t, s
            ),
            "√(1 − ᾱ_t)",
        ),
        (
            lambda xt, t, e, s: _post(
                dl.predict_x0_from_eps(xt, t, e, s), xt, t, s, prev=s.alpha_bar[t]
            ),
            "off by one",
        ),
        (
            lambda xt, t, e, s: (xt - s.betas[t].sqrt() * e) / s.alphas[t].sqrt(),
            "misprint",
        ),
        (lambda xt, t, e, s: mean_via_x0hat(xt, t, e, s)[:, 0], "shape"),
    ],
)
def test_x0hat_mistakes(answer, word):
    verdict = check("ex-ch4-x0hat", answer)
    assert not verdict and word in verdict.message


def test_checks_are_quick():
    for args in [
        ("ex-ch4-smaller", ratio, first_step),
        ("ex-ch4-last", x0_posterior_variance),
        ("ex-ch4-x0hat", mean_via_x0hat),
    ]:
        start = time.perf_counter()
        assert check(*args)
        assert time.perf_counter() - start < 2
