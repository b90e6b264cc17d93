"""The checks of chapter 7's exercises accept a right answer and reject the usual wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from ddpm_lib.data import GaussianMixture
from ddpm_lib.exercises import check
from ddpm_lib.flow_likelihood import mixture_eps
from ddpm_lib.solvers import sample


# ex-ch7-gaussian-flow: gaussian_flow(x, t, u, sched, m, delta) -> (n, d)
def _flow(ratio, rescale=True, centre_first=True):
    """x̄_u − m = ratio(ζ_t², ζ_u², δ) (x̄_t − m), then x_u = √ᾱ_u x̄_u (or x̄_u)."""

    def gaussian_flow(x, t, u, sched, m, delta):
        ab_t, ab_u = sched.alpha_bar[t], sched.alpha_bar[u]
        z_t, z_u = (1 - ab_t) / ab_t, (1 - ab_u) / ab_u
        r = ratio(z_t, z_u, delta, ab_t, ab_u)
        xbar = x / ab_t.sqrt() if centre_first else x
        xbar_u = m + r * (xbar - m)
        return ab_u.sqrt() * xbar_u if rescale else xbar_u

    return gaussian_flow


def _root(z_t, z_u, d, *_):
    return ((d**2 + z_u) / (d**2 + z_t)).sqrt()


def flow_ddim_step(x, t, u, sched, m, delta):
    ab_t, ab_u = sched.alpha_bar[t], sched.alpha_bar[u]
    eps = (1 - ab_t).sqrt() * (x - ab_t.sqrt() * m) / (ab_t * delta**2 + 1 - ab_t)
    x0_hat = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    return ab_u.sqrt() * x0_hat + (1 - ab_u).sqrt() * eps


FLOW_WRONG = {
    "one DDIM (Euler) step": flow_ddim_step,
    "convert back": _flow(_root, rescale=False),
    "square of the flow's factor": _flow(lambda *a: _root(*a) ** 2),
    "not of the variances": lambda x, t, u, s, m, d: (
        s.alpha_bar[u].sqrt() * m + _v(s, u, d) / _v(s, t, d) * (x - _mean(s, t, m))
    ),
    "spread shrinks": lambda x, t, u, s, m, d: (
        s.alpha_bar[u].sqrt() * m
        + (_v(s, t, d) / _v(s, u, d)).sqrt() * (x - _mean(s, t, m))
    ),
    "δ², not δ.": _flow(lambda z_t, z_u, d, *_: ((d + z_u) / (d + z_t)).sqrt()),
    "not σ̄": _flow(
        lambda z_t, z_u, d, ab_t, ab_u: ((d**2 + 1 - ab_u) / (d**2 + 1 - ab_t)).sqrt()
    ),
    "the other way": _flow(lambda *a: 1 / _root(*a)),
    "Rescale before": lambda x, t, u, s, m, d: (
        s.alpha_bar[u].sqrt() * (m + _root(*_zetas(s, t, u), d) * (x - m))
    ),
    "the shape of x": lambda x, t, u, s, m, d: _flow(_root)(x, t, u, s, m, d).sum(1),
}


def _v(s, t, d):
    """The variance of x_t for data N(m, δ² I)."""
    return s.alpha_bar[t] * d**2 + 1 - s.alpha_bar[t]


def _mean(s, t, m):
    return s.alpha_bar[t].sqrt() * m


def _zetas(s, t, u):
    ab_t, ab_u = s.alpha_bar[t], s.alpha_bar[u]
    return (1 - ab_t) / ab_t, (1 - ab_u) / ab_u


def flow_by_variance(x, t, u, sched, m, delta):
    """The same answer written with V = ᾱ δ² + 1 − ᾱ (the chapter's solution)."""
    ab_t, ab_u = sched.alpha_bar[t], sched.alpha_bar[u]
    v_t, v_u = ab_t * delta**2 + 1 - ab_t, ab_u * delta**2 + 1 - ab_u
    return ab_u.sqrt() * m + (v_u / v_t).sqrt() * (x - ab_t.sqrt() * m)


@pytest.mark.parametrize("answer", [_flow(_root), flow_by_variance])
def test_flow_right(answer):
    verdict = check("ex-ch7-gaussian-flow", answer)
    assert verdict, verdict


@pytest.mark.parametrize("word", FLOW_WRONG)
def test_flow_wrong(word):
    verdict = check("ex-ch7-gaussian-flow", FLOW_WRONG[word])
    assert not verdict and word in verdict.message, verdict


# ex-ch7-ddim-scale: ddim_gaussian_scale(sched, grid, delta) -> A
def _scale(factor, steps=slice(None), divide=True, power=1):
    def ddim_gaussian_scale(sched, grid, delta):
        ab = sched.alpha_bar
        zeta = ((1 - ab) / ab).sqrt()
        r = 1.0
        for t, u in list(zip(grid, grid[1:]))[steps]:
            r *= float(factor(zeta[t], zeta[u], delta, ab[t], ab[u]))
        a = r / math.sqrt(ab[grid[0]]) if divide else r
        return a**power

    return ddim_gaussian_scale


def _euler(z_t, z_u, d, *_):
    return (d**2 + z_t * z_u) / (d**2 + z_t**2)


def scale_by_running(sched, grid, delta):
    """The right answer read off the library's own DDIM run on a one-Gaussian mixture."""
    law = GaussianMixture(torch.zeros(1, 2), torch.tensor([delta]))
    basis = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    end = sample(mixture_eps(law, sched), sched, basis, grid)[0]
    return (end[1, 0] - end[0, 0]).item()


def exact_flow_scale(sched, grid, delta):
    ab = sched.alpha_bar[grid[0]]
    return delta / math.sqrt(ab * delta**2 + 1 - ab)


SCALE_WRONG = {
    "exact probability-flow ODE": exact_flow_scale,
    "the map starts from": _scale(_euler, divide=False),
    "need not be T": lambda sched, grid, delta: (
        _scale(_euler, divide=False)(sched, grid, delta)
        / math.sqrt(sched.alpha_bar[-1])
    ),
    "A²": _scale(_euler, power=2),
    "last step": _scale(_euler, steps=slice(None, -1)),
    "start of the step": _scale(
        lambda z_t, z_u, d, *_: (d**2 + z_u**2) / (d**2 + z_t * z_u)
    ),
    "not σ̄": _scale(
        lambda z_t, z_u, d, ab_t, ab_u: (
            (d**2 + ((1 - ab_t) * (1 - ab_u)).sqrt()) / (d**2 + 1 - ab_t)
        )
    ),
}


def test_scale_right():
    for answer in (_scale(_euler), scale_by_running):
        verdict = check("ex-ch7-ddim-scale", answer)
        assert verdict, verdict


@pytest.mark.parametrize("word", SCALE_WRONG)
def test_scale_wrong(word):
    verdict = check("ex-ch7-ddim-scale", SCALE_WRONG[word])
    assert not verdict and word in verdict.message, verdict


@pytest.mark.parametrize("label", ["ex-ch7-gaussian-flow", "ex-ch7-ddim-scale"])
def test_placeholder(label):
    verdict = check(label, ...)
    assert not verdict and "`...`" in verdict.message
