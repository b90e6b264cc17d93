"""The checks of chapter 10's exercises accept a right answer and reject the usual wrong ones."""

from __future__ import annotations

import pytest

from ddpm_lib.exercises import check


# ex-ch10-cfg: cfg(eps_cond, eps_uncond, w) -> (n, d)
def cfg_right(eps_cond, eps_uncond, w):
    return (1 + w) * eps_cond - w * eps_uncond


CFG_WRONG = {
    "scale s = 1 + w": lambda e_c, e_u, w: e_u + w * (e_c - e_u),
    "swapped": lambda e_c, e_u, w: (1 + w) * e_u - w * e_c,
    "sign": lambda e_c, e_u, w: (1 + w) * e_c + w * e_u,
    "add up to 1": lambda e_c, e_u, w: w * e_c - w * e_u,
}


def test_cfg_accepts_the_right_answer():
    assert check("ex-ch10-cfg", cfg_right)


@pytest.mark.parametrize("word", CFG_WRONG)
def test_cfg_rejects_the_usual_mistakes(word):
    verdict = check("ex-ch10-cfg", CFG_WRONG[word])
    assert not verdict and word in verdict.message


def test_cfg_rejects_other_answers():
    assert not check("ex-ch10-cfg", ...)
    assert not check("ex-ch10-cfg", lambda e_c, e_u, w: 2 * e_c)
    verdict = check("ex-ch10-cfg", lambda e_c, e_u, w: e_c.sum())
    assert not verdict and "shape" in verdict.message


# ex-ch10-classifier: classifier_eps(eps, grad_log_post, sched, t, w) -> (n, d)
def _ab(sched, t):
    return sched.alpha_bar[t].double()[:, None]


def classifier_right(eps, grad, sched, t, w):
    return eps - (1 + w) * (1 - _ab(sched, t)).sqrt() * grad


CLASSIFIER_WRONG = {
    "one more unit": lambda e, g, s, t, w: e - w * (1 - _ab(s, t)).sqrt() * g,
    "sign": lambda e, g, s, t, w: e + (1 + w) * (1 - _ab(s, t)).sqrt() * g,
    "not √ᾱ_t": lambda e, g, s, t, w: e - (1 + w) * _ab(s, t).sqrt() * g,
    "not 1 − ᾱ_t": lambda e, g, s, t, w: e - (1 + w) * (1 - _ab(s, t)) * g,
    "needs the factor": lambda e, g, s, t, w: e - (1 + w) * g,
    "not α_t": lambda e, g, s, t, w: (
        e - (1 + w) * s.betas[t].double()[:, None].sqrt() * g
    ),
}


def test_classifier_accepts_the_right_answer():
    assert check("ex-ch10-classifier", classifier_right)


@pytest.mark.parametrize("word", CLASSIFIER_WRONG)
def test_classifier_rejects_the_usual_mistakes(word):
    verdict = check("ex-ch10-classifier", CLASSIFIER_WRONG[word])
    assert not verdict and word in verdict.message


def test_classifier_rejects_other_answers():
    assert not check("ex-ch10-classifier", ...)
    verdict = check("ex-ch10-classifier", lambda e, g, s, t, w: e * 0)
    assert not verdict and "differs" in verdict.message
