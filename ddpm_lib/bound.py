"""The variational bound term by term (chapter 5).

:func:`ddpm_lib.losses.nll_bound` returns the bound L_T + Σ_t L_{t−1} per point.
To see *where* along the chain a model loses its nats, :func:`bound_terms` keeps
the terms apart. It can also spend more draws of x_t on the first few steps:
their weights λ_t are the largest (eq. 5.7), so they carry most of the Monte
Carlo noise of the bound, and averaging several draws there shrinks the
standard error at a small cost without changing the mean.
"""

from __future__ import annotations

import torch

from ._checks import check_points
from .losses import prior_kl, vlb_term
from .schedules import Schedule


@torch.no_grad()
def bound_terms(
    model,
    x0: torch.Tensor,
    sched: Schedule,
    variance: str = "beta",
    generator=None,
    first: int = 0,
    repeats: int = 1,
) -> torch.Tensor:
    """The terms of the bound per point, shape (n, T + 1), float64.   (eqs. 5.3, 5.4)

    Column 0 is L_T; column t (1 ≤ t ≤ T) is the term of step t, i.e. L_0 for t = 1 and
    L_{t−1} for t ≥ 2, each from one draw of x_t ~ q(x_t | x_0), except that the steps
    t ≤ ``first`` average ``repeats`` independent draws. The row sums are unbiased
    estimates of the bound; with ``first=0`` they equal :func:`ddpm_lib.losses.nll_bound` (up to
    the rounding of its running sum) for the same generator state: the same draws, in the same order.
    """
    check_points(x0, "x0")
    for name, value, low in (("first", first, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    cols = [prior_kl(x0, sched).double()]
    for step in range(1, sched.T + 1):
        t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
        k = repeats if step <= first else 1
        total = vlb_term(model, x0, t, sched, variance, generator).double()
        for _ in range(k - 1):
            total = total + vlb_term(model, x0, t, sched, variance, generator).double()
        cols.append(total / k)
    return torch.stack(cols, 1)
