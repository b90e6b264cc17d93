"""The checks of chapter 9's exercises accept a right answer and reject the usual wrong ones."""

from __future__ import annotations

import pytest
import torch

from ddpm_lib import log_variance
from ddpm_lib.exercises import check
from ddpm_lib.variance import optimal_variance


# ex-ch9-analytic: analytic_variance(sched, t, eps_sq) -> σ*_t²
def _analytic(with_bt=True, err=lambda e: 1 - e, scale=lambda ab: (1 - ab) / ab, p=2):
    def analytic_variance(sched, t, eps_sq):
        ab, ab_prev, beta = sched.alpha_bar[t], sched.alpha_bar[t - 1], sched.betas[t]
        bt = (1 - ab_prev) / (1 - ab) * beta if with_bt else 0.0
        c = ab_prev.sqrt() * beta / (1 - ab)
        return float(bt + c**p * scale(ab) * err(eps_sq))

    return analytic_variance


def analytic_by_library(sched, t, eps_sq):
    mse = torch.full((sched.T + 1,), 1 - eps_sq, dtype=torch.float64)
    return optimal_variance(sched, mse)[t].item()


ANALYTIC_WRONG = {
    "β̃_t, is missing": _analytic(with_bt=False),
    "they add up to 1": _analytic(err=lambda e: e),
    "is missing.": _analytic(scale=lambda ab: 1.0),
    "not its inverse": _analytic(scale=lambda ab: ab / (1 - ab)),
    "c_t is squared": _analytic(p=1),
    "β_t, the same": lambda sched, t, e: sched.betas[t].item(),
    "β̃_t, the same": lambda sched, t, e: sched.posterior_variance[t].item(),
}


@pytest.mark.parametrize("answer", [_analytic(), analytic_by_library])
def test_analytic_right(answer):
    verdict = check("ex-ch9-analytic", answer)
    assert verdict, verdict


@pytest.mark.parametrize("word", ANALYTIC_WRONG)
def test_analytic_wrong(word):
    verdict = check("ex-ch9-analytic", ANALYTIC_WRONG[word])
    assert not verdict and word in verdict.message, verdict


# ex-ch9-range: learned_log_variance(sched, t, nu) -> log σ²
def _range(kappa=lambda nu: (nu + 1) / 2, swap=False, linear=False, clip=True):
    def learned_log_variance(sched, t, nu):
        beta = sched.betas[t]
        bt = (
            sched.posterior_variance_clipped[t] if clip else sched.posterior_variance[t]
        )
        hi, lo = (bt, beta) if swap else (beta, bt)
        k = kappa(nu)
        if linear:
            return torch.log(k * hi + (1 - k) * lo)
        return k * hi.log() + (1 - k) * lo.log()

    return learned_log_variance


def range_by_library(sched, t, nu):
    return log_variance(torch.full((len(nu),), t), sched, "learned", nu)


RANGE_WRONG = {
    "map nu to κ": _range(kappa=lambda nu: nu),
    "swapped": _range(swap=True),
    "their logarithms": _range(linear=True),
    "not finite": _range(clip=False),
    "not the variance": lambda s, t, nu: _range()(s, t, nu).exp(),
    "shape": lambda s, t, nu: _range()(s, t, nu).mean(),
}


@pytest.mark.parametrize("answer", [_range(), range_by_library])
def test_range_right(answer):
    verdict = check("ex-ch9-range", answer)
    assert verdict, verdict


@pytest.mark.parametrize("word", RANGE_WRONG)
def test_range_wrong(word):
    verdict = check("ex-ch9-range", RANGE_WRONG[word])
    assert not verdict and word in verdict.message, verdict


@pytest.mark.parametrize("label", ["ex-ch9-analytic", "ex-ch9-range"])
def test_placeholder(label):
    verdict = check(label, ...)
    assert not verdict and "`...`" in verdict.message
