"""The checks of chapter 1's exercises accept a right answer and name the usual mistakes."""

from __future__ import annotations

import math

import pytest
import torch

from ddpm_lib.exercises import check

F64 = torch.float64


def explode_cov(cov0, sched, t):
    return cov0 + sched.betas[1 : t + 1].sum() * torch.eye(len(cov0), dtype=F64)


def steps_needed(beta, target):
    return math.ceil(math.log(target) / math.log(1 - beta))


def prior_term(x0, sched):
    ab = sched.alpha_bar[-1]
    d = x0.shape[1]
    return 0.5 * (ab * (x0**2).sum(1) - d * ab - d * torch.log(1 - ab))


def test_right_answers_pass():
    assert check("ex-ch1-explode", explode_cov)
    assert check("ex-ch1-constant", steps_needed)
    assert check("ex-ch1-short", prior_term)


def test_placeholder_is_not_an_answer():
    for label in ("ex-ch1-explode", "ex-ch1-constant", "ex-ch1-short"):
        verdict = check(label, ...)
        assert not verdict and "`...`" in verdict.message


def _eye(cov0):
    return torch.eye(len(cov0), dtype=F64)


@pytest.mark.parametrize(
    "answer, word",
    [
        (  # the scaled chain of the chapter
            lambda c, s, t: s.alpha_bar[t] * c + (1 - s.alpha_bar[t]) * _eye(c),
            "scaling",
        ),
        (lambda c, s, t: c + s.betas[1 : t + 1].sqrt().sum() * _eye(c), "variances"),
        (lambda c, s, t: s.betas[1 : t + 1].sum() * _eye(c), "covariance is still"),
        (lambda c, s, t: c + s.betas[1:t].sum() * _eye(c), "off by one"),
        (lambda c, s, t: c + s.betas.sum() * _eye(c), "not all T"),
        (lambda c, s, t: c * (1 + s.betas[1 : t + 1].sum()), "identity"),
        (lambda c, s, t: torch.diag(explode_cov(c, s, t)), "shape"),
    ],
)
def test_explode_mistakes(answer, word):
    verdict = check("ex-ch1-explode", answer)
    assert not verdict and word in verdict.message


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda b, y: math.log(y) / math.log(1 - b), "round up"),
        (lambda b, y: math.floor(math.log(y) / math.log(1 - b)), "Rounded down"),
        (lambda b, y: steps_needed(b, y) + 1, "too many"),
        (lambda b, y: math.ceil(-math.log(y) / b), "approximation"),
        (lambda b, y: math.ceil(math.log(y) / math.log(b)), "1 − β"),
        # a strict inequality misses the case where (1 − β)^T equals the target
        (lambda b, y: math.floor(math.log(y) / math.log(1 - b)) + 1, "too many"),
    ],
)
def test_constant_mistakes(answer, word):
    verdict = check("ex-ch1-constant", answer)
    assert not verdict and word in verdict.message


def _kl(ab, x0):
    d = x0.shape[1]
    return 0.5 * (ab * (x0**2).sum(1) - d * ab - d * torch.log(1 - ab))


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda x0, s: prior_term(x0, s).mean(), "average"),
        (
            lambda x0, s: (
                0.5
                * (
                    s.alpha_bar[-1].sqrt() * (x0**2).sum(1)
                    - 2 * s.alpha_bar[-1]
                    - 2 * torch.log(1 - s.alpha_bar[-1])
                )
                if x0.shape[1] == 2
                else prior_term(x0, s)
            ),
            "square all",
        ),
        (
            lambda x0, s: (
                0.5
                * (
                    s.alpha_bar[-1] * (x0**2).sum(1)
                    - s.alpha_bar[-1]
                    - torch.log(1 - s.alpha_bar[-1])
                )
            ),
            "multiply those terms by d",
        ),
        (
            lambda x0, s: (
                0.5
                * (
                    s.alpha_bar[-1] * (x0**2).sum(1)
                    - x0.shape[1] * s.alpha_bar[-1]
                    + x0.shape[1] * torch.log(1 - s.alpha_bar[-1])
                )
            ),
            "sign",
        ),
        (lambda x0, s: 2 * prior_term(x0, s), "½"),
        (lambda x0, s: _kl(s.alphas[-1], x0), "α_T"),
        (lambda x0, s: _kl(s.alpha_bar[-2], x0), "off by one"),
    ],
)
def test_short_mistakes(answer, word):
    verdict = check("ex-ch1-short", answer)
    assert not verdict and word in verdict.message


def test_an_error_in_the_answer_is_reported():
    verdict = check("ex-ch1-short", lambda x0, s: x0.nonexistent)
    assert not verdict and "AttributeError" in verdict.message
