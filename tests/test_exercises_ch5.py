"""The checks of chapter 5's exercises accept a right answer and reject the usual wrong ones."""

from __future__ import annotations

import pytest
import torch

from ddpm_lib.exercises import CHECKS, check
from ddpm_lib.losses import prior_kl


# ex-ch5-kl: kl_diag(m_a, delta_a, m_b, delta_b) -> (n,)
def _kl(m_a, d_a, m_b, d_b, log_term=None, minus=1.0, half=0.5, bias=True):
    log_term = torch.log(d_b**2 / d_a**2) if log_term is None else log_term
    sq = (m_a - m_b) ** 2 if bias else 0.0
    return half * (log_term - minus + (d_a**2 + sq) / d_b**2)


def kl_right(m_a, d_a, m_b, d_b):
    return _kl(m_a, d_a, m_b, d_b).sum(-1)


KL_WRONG = {
    "other direction": lambda m_a, d_a, m_b, d_b: kl_right(m_b, d_b, m_a, d_a),
    "standard deviations": lambda m_a, d_a, m_b, d_b: (
        0.5 * (torch.log(d_b / d_a) - 1 + (d_a + (m_a - m_b) ** 2) / d_b)
    ).sum(-1),
    "2 log": lambda m_a, d_a, m_b, d_b: _kl(
        m_a, d_a, m_b, d_b, log_term=torch.log(d_b / d_a)
    ).sum(-1),
    "−1": lambda m_a, d_a, m_b, d_b: _kl(m_a, d_a, m_b, d_b, minus=0.0).sum(-1),
    "½": lambda m_a, d_a, m_b, d_b: _kl(m_a, d_a, m_b, d_b, half=1.0).sum(-1),
    "distance of the means": lambda m_a, d_a, m_b, d_b: _kl(
        m_a, d_a, m_b, d_b, bias=False
    ).sum(-1),
    "do not average": lambda m_a, d_a, m_b, d_b: _kl(m_a, d_a, m_b, d_b).mean(-1),
    "one number per pair": lambda m_a, d_a, m_b, d_b: _kl(m_a, d_a, m_b, d_b),
}


def test_kl_right():
    verdict = check("ex-ch5-kl", kl_right)
    assert verdict, verdict


@pytest.mark.parametrize("word", KL_WRONG)
def test_kl_wrong(word):
    verdict = check("ex-ch5-kl", KL_WRONG[word])
    assert not verdict and word in verdict.message, verdict


# ex-ch5-lambda: vlb_lambda(sched, t, sigma2) -> λ_t
def lam_right(sched, t, sigma2):
    return sched.betas[t] ** 2 / (
        2 * sigma2 * sched.alphas[t] * (1 - sched.alpha_bar[t])
    )


def _lam(s, t, sigma2, b=None, a=None, ab=None):
    b = s.betas[t] if b is None else b
    a = s.alphas[t] if a is None else a
    ab = s.alpha_bar[t] if ab is None else ab
    return b**2 / (2 * sigma2 * a * (1 - ab))


LAMBDA_WRONG = {
    "running product": lambda s, t, v: _lam(s, t, v, ab=s.alphas[t]),
    "a 2 is missing": lambda s, t, v: 2 * lam_right(s, t, v),
    "leaves α_t": lambda s, t, v: _lam(s, t, v, a=1.0),
    "β_t², not β_t": lambda s, t, v: lam_right(s, t, v) / s.betas[t],
    "square the coefficient": lambda s, t, v: (
        s.betas[t] / (2 * v * s.alphas[t].sqrt() * (1 - s.alpha_bar[t]).sqrt())
    ),
    "not the running": lambda s, t, v: _lam(s, t, v, a=s.alpha_bar[t]),
    "do not square it": lambda s, t, v: lam_right(s, t, v) / v,
    "off by one": lambda s, t, v: lam_right(s, t - 1, v),
}


def test_lambda_right():
    verdict = check("ex-ch5-lambda", lam_right)
    assert verdict, verdict


@pytest.mark.parametrize("word", LAMBDA_WRONG)
def test_lambda_wrong(word):
    verdict = check("ex-ch5-lambda", LAMBDA_WRONG[word])
    assert not verdict and word in verdict.message, verdict


# ex-ch5-prior: prior_term(x0, sched) -> (n,)
def _prior(x0, mean_scale, var, reverse=False):
    mean = mean_scale * x0
    if reverse:
        return 0.5 * (torch.log(var) - 1 + (1 + mean**2) / var).sum(1)
    return 0.5 * (-torch.log(var) - 1 + var + mean**2).sum(1)


def prior_right(x0, sched):
    ab = sched.alpha_bar[-1]
    d = x0.shape[1]
    return 0.5 * (ab * (x0**2).sum(1) - d * ab - d * torch.log1p(-ab))


def _ab(s):
    return s.alpha_bar[-1]


PRIOR_WRONG = {
    "not ᾱ_T x_0": lambda x, s: _prior(x, _ab(s), 1 - _ab(s)),
    "not √(1 − ᾱ_T)": lambda x, s: _prior(x, _ab(s).sqrt(), (1 - _ab(s)).sqrt()),
    "do not square it": lambda x, s: _prior(x, _ab(s).sqrt(), (1 - _ab(s)) ** 2),
    "other direction": lambda x, s: _prior(x, _ab(s).sqrt(), 1 - _ab(s), True),
    "last step": lambda x, s: _prior(x, s.alphas[-1].sqrt(), 1 - s.alphas[-1]),
    "off by one": lambda x, s: _prior(x, s.alpha_bar[-2].sqrt(), 1 - s.alpha_bar[-2]),
    "not average": lambda x, s: prior_right(x, s) / x.shape[1],
    "summed over the coordinates": lambda x, s: (
        0.5 * (_ab(s) * x**2 - _ab(s) - torch.log1p(-_ab(s)))
    ),
}


def test_prior_right():
    for answer in (prior_right, prior_kl):  # the library's prior_kl is right too
        verdict = check("ex-ch5-prior", answer)
        assert verdict, verdict


@pytest.mark.parametrize("word", PRIOR_WRONG)
def test_prior_wrong(word):
    # the check is chapter 1's (its hints are tested in test_exercises_ch1.py)
    verdict = check("ex-ch5-prior", PRIOR_WRONG[word])
    assert not verdict, verdict


def test_prior_is_chapter_1s_check():
    assert CHECKS["ex-ch5-prior"] is CHECKS["ex-ch1-short"]


@pytest.mark.parametrize("label", ["ex-ch5-kl", "ex-ch5-lambda", "ex-ch5-prior"])
def test_placeholder(label):
    verdict = check(label, ...)
    assert not verdict and "`...`" in verdict.message
