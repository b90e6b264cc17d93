"""The checks of chapter 8's exercises accept a right answer and reject the usual wrong ones."""

from __future__ import annotations

import pytest

from ddpm_lib.exercises import check


def _coefs(sched, t, x):
    ab = sched.alpha_bar[t][:, None].to(x.dtype)
    return ab.sqrt(), (1 - ab).sqrt(), ab


# ex-ch8-v-to-eps: eps_from_v(v, x, t, sched) -> (n, d)
def eps_from_v(v, x, t, sched):
    a, s, _ = _coefs(sched, t, x)
    return s * x + a * v


def _swapped(v, x, t, sched):
    a, s, _ = _coefs(sched, t, x)
    return a * x + s * v


def _sign(v, x, t, sched):
    a, s, _ = _coefs(sched, t, x)
    return s * x - a * v


def _x_for_x0(v, x, t, sched):
    a, s, _ = _coefs(sched, t, x)
    return (v + s * x) / a


def _one_step_alpha(v, x, t, sched):
    al = (1 - sched.betas[t])[:, None].to(x.dtype)
    return (1 - al).sqrt() * x + al.sqrt() * v


def _no_roots(v, x, t, sched):
    _, _, ab = _coefs(sched, t, x)
    return (1 - ab) * x + ab * v


def test_v_to_eps_right():
    assert check("ex-ch8-v-to-eps", eps_from_v)


@pytest.mark.parametrize(
    "answer, word",
    [
        (_swapped, "swapped"),
        (_sign, "sign"),
        (_x_for_x0, "x_0"),
        (_one_step_alpha, "α_t"),
        (_no_roots, "Square roots"),
        (lambda v, x, t, sched: eps_from_v(v, x, t, sched)[:, :1], "shape"),
    ],
)
def test_v_to_eps_wrong(answer, word):
    verdict = check("ex-ch8-v-to-eps", answer)
    assert not verdict and word in verdict.message, verdict.message


def test_v_to_eps_placeholder():
    assert not check("ex-ch8-v-to-eps", ...)


# ex-ch8-weight: weight_x0_to_velocity(snr) -> tensor like snr
def weight_x0_to_velocity(snr):
    return (1 + snr.sqrt()) ** 2


def test_weight_right():
    assert check("ex-ch8-weight", weight_x0_to_velocity)


@pytest.mark.parametrize(
    "answer, word",
    [
        (lambda snr: (1 + 1 / snr.sqrt()) ** 2, "velocity's weight against ε"),
        (lambda snr: 1 / snr, "x_0's weight"),
        (lambda snr: 1 / (1 + snr.sqrt()) ** 2, "other way"),
        (lambda snr: 1 + snr, "square of a sum"),
        (lambda snr: (1 + snr) ** 2, "square root"),
        (lambda snr: weight_x0_to_velocity(snr)[:3], "shape"),
        (lambda snr: 2 * weight_x0_to_velocity(snr), "relative"),
    ],
)
def test_weight_wrong(answer, word):
    verdict = check("ex-ch8-weight", answer)
    assert not verdict and word in verdict.message, verdict.message


def test_weight_placeholder():
    assert not check("ex-ch8-weight", ...)
