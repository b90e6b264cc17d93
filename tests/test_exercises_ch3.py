"""The checks of chapter 3's exercises accept a right answer and name the usual mistakes."""

from __future__ import annotations

import math

import pytest

from ddpm_lib.exercises import check


def variance(h, delta_sq):
    return delta_sq / (1 - h / (4 * delta_sq))


def correlation(h, delta_sq):
    return 1 - h / (2 * delta_sq)


def grad_density(law, x):
    return law.log_prob(x).exp()[:, None] * law.score(x)


def test_right_answers_pass():
    assert check("ex-ch3-ar1", variance, correlation)
    assert check("ex-ch3-fixed-points", grad_density)


def test_placeholder_is_not_an_answer():
    assert not check("ex-ch3-ar1", variance, ...)
    assert not check("ex-ch3-ar1", ..., correlation)
    assert not check("ex-ch3-fixed-points", ...)


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda h, s2: s2, "target"),
        (lambda h, s2: math.sqrt(variance(h, s2)), "standard deviation"),
        (lambda h, s2: h / (1 - correlation(h, s2)), "φ²"),
        (lambda h, s2: s2 * (1 + h / (4 * s2)), "first-order"),
        (lambda h, s2: h / (1 - (1 - h / s2) ** 2), "½"),
        (lambda h, s2: math.sqrt(h) / (1 - correlation(h, s2) ** 2), "variance h"),
    ],
)
def test_ar1_variance_mistakes(answer, word):
    verdict = check("ex-ch3-ar1", answer, correlation)
    assert not verdict and word in verdict.message


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda h, s2: correlation(h, s2) * variance(h, s2), "covariance"),
        (lambda h, s2: correlation(h, s2) ** 2, "two steps"),
        (lambda h, s2: abs(correlation(h, s2)), "sign"),
        (lambda h, s2: 1 - h / s2, "½"),
    ],
)
def test_ar1_correlation_mistakes(answer, word):
    verdict = check("ex-ch3-ar1", variance, answer)
    assert not verdict and word in verdict.message


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda law, x: law.score(x), "score"),
        (lambda law, x: -grad_density(law, x), "sign"),
        (lambda law, x: law.score(x) / law.log_prob(x).exp()[:, None], "divided"),
        (lambda law, x: law.log_prob(x)[:, None] * law.score(x), "log p times"),
        (lambda law, x: grad_density(law, x).sum(1), "shape"),
    ],
)
def test_grad_density_mistakes(answer, word):
    verdict = check("ex-ch3-fixed-points", answer)
    assert not verdict and word in verdict.message
