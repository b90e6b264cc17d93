"""The rate-based schedules are the exact discretisation of their noise rate (eq. 1.4), for any T.

Reference: the rate b(s) = 0.1 + c·g(s) written out here from its definition, integrated with
Simpson's rule on a fine grid, and c fixed by ∫_0^1 b = 10.05.
"""

import math

import numpy as np
import pytest

import ddpm_lib as dl

SHAPES = {
    "linear": lambda s: s,
    "quadratic": lambda s: s**2,
    "sigmoid": lambda s: (
        (1 / (1 + np.exp(-(12 * s - 6))) - 1 / (1 + math.exp(6)))
        / (1 / (1 + math.exp(-6)) - 1 / (1 + math.exp(6)))
    ),
    "tanh": lambda s: np.tanh(3 * s) / math.tanh(3),
}


def _simpson(f, a, b, n=2000):
    x = np.linspace(a, b, 2 * n + 1)
    y = f(x)
    return (
        (b - a) / (6 * n) * (y[0] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum() + y[-1])
    )


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("T", [7, 1000, 1024, 3000])
def test_alpha_bar_is_exp_of_minus_the_integrated_rate(name, T):
    g = SHAPES[name]
    c = (10.05 - 0.1) / _simpson(g, 0.0, 1.0)
    rate = lambda s: 0.1 + c * g(s)
    sched = dl.Schedule.named(name, T)
    for t in sorted({1, 2, T // 3, T // 2, T - 1, T} - {0}):
        expected = math.exp(-_simpson(rate, 0.0, t / T))
        assert math.isclose(sched.alpha_bar[t].item(), expected, rel_tol=1e-9), (
            t,
            sched.alpha_bar[t].item(),
            expected,
        )


def test_constant_schedule_has_equal_steps():
    sched = dl.Schedule.named("constant", 50)
    assert np.allclose(sched.betas[1:].numpy(), 1 - math.exp(-10.05 / 50), rtol=1e-12)
