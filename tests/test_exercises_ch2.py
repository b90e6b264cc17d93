"""The checks of chapter 2's exercises accept a right answer and catch the usual wrong ones."""

from __future__ import annotations

import math

import pytest

from ddpm_lib.exercises import check


def _verdict(label, answer, hint_word=None):
    v = check(label, answer)
    if hint_word is None:
        assert v, v
    else:
        assert not v and hint_word in v.message, v
    return v


def test_ve_std():
    _verdict("ex-ch2-ve", lambda sigma_bar, t: sigma_bar[t])
    _verdict("ex-ch2-ve", lambda sigma_bar, t: sigma_bar[t] ** 2, "variance")
    _verdict(  # the standard deviations of the steps, added up
        "ex-ch2-ve",
        lambda sb, t: sum(
            math.sqrt(sb[k] ** 2 - sb[k - 1] ** 2) for k in range(1, t + 1)
        ),
        "their variances do",
    )
    _verdict("ex-ch2-ve", lambda sigma_bar, t: sigma_bar[t - 1], "One step short")
    _verdict("ex-ch2-ve", lambda sigma_bar, t: 1.0, "Add the variances")


def _first(mask):
    hits = mask.nonzero()
    return int(hits[0]) if len(hits) else None


def test_first_step_snr_below_1():
    right = lambda sched: _first(sched.alpha_bar <= 0.5)
    _verdict("ex-ch2-snr1", right)
    _verdict("ex-ch2-snr1", lambda s: right(s) - 1, "last step with SNR above 1")
    _verdict("ex-ch2-snr1", lambda s: right(s) + 1, "off by one")
    _verdict("ex-ch2-snr1", lambda s: right(s) / s.T, "not the fraction")
    # with α_t in place of ᾱ_t (the linear schedule's β_t stay below 1/2: never)
    v = _verdict("ex-ch2-snr1", lambda s: _first(s.alphas <= 0.5), "")
    assert "smallest t" in v.message or "running product" in v.message


@pytest.mark.parametrize(
    "answer, hint",
    [
        (lambda ab, d: ab * d**2 + 1 - ab, "square root"),
        (lambda ab, d: math.sqrt(d**2 + 1 - ab), "scaled by ᾱ_t"),
        (lambda ab, d: math.sqrt(ab) * d + math.sqrt(1 - ab), "not their standard"),
        (lambda ab, d: math.sqrt(ab * d**2 + 1), "add the variances"),
    ],
)
def test_gaussian_marginal_std(answer, hint):
    _verdict("ex-ch2-gauss", lambda ab, d: math.sqrt(ab * d**2 + 1 - ab))
    _verdict("ex-ch2-gauss", answer, hint)
