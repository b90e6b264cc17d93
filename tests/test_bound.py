"""Tests of ddpm_lib.bound.bound_terms: the variational bound term by term.

References: ddpm_lib.losses.nll_bound and vlb_term (tested against closed forms in test_losses.py), and
prior_kl; the effect of repeated draws is checked by Monte Carlo over points.
"""

from __future__ import annotations

import math

import pytest
import torch

from ddpm_lib import MLPDenoiser, Schedule, nll_bound, prior_kl, sample_data, vlb_term
from ddpm_lib.bound import bound_terms


def test_columns_sum_to_nll_bound_with_the_same_draws():
    """With first=0 and the same generator seed, the columns are L_T, then vlb_term at t = 1..T drawn in
    order, and the row sums equal nll_bound (float32 network and data: to float32 rounding)."""
    torch.manual_seed(0)
    model = MLPDenoiser().eval()
    sched = Schedule.named("sigmoid", 20)
    x0 = sample_data("moons", 300, seed=1)
    terms = bound_terms(model, x0, sched, generator=torch.Generator().manual_seed(2))
    assert terms.shape == (300, 21) and terms.dtype == torch.float64
    torch.testing.assert_close(terms[:, 0], prior_kl(x0, sched).double())
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for t in (1, 2, 3):  # the first draws, in the same order as nll_bound's loop
            torch.testing.assert_close(
                terms[:, t],
                vlb_term(model, x0, torch.full((300,), t), sched, "beta", gen).double(),
            )
    full = nll_bound(
        model, x0, sched, generator=torch.Generator().manual_seed(2)
    ).double()
    torch.testing.assert_close(terms.sum(1), full, rtol=0, atol=1e-4)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_repeats_keep_the_mean_and_cut_the_noise(variance, stats):
    """Averaging 16 draws for the first 3 steps: every column keeps its mean (within 5 standard errors of
    the single-draw column, over 4000 points of the S-curve with an arbitrary linear ε-predictor), the
    later columns are untouched in law, and the standard deviation of the t = 1 column falls by more
    than half (it would fall by 4 if x_0 did not vary)."""
    sched = Schedule.named("linear", 10)
    model = lambda x, t: 0.3 * x + 0.1  # noqa: E731
    x0 = sample_data("s_curve", 4000, seed=3).double()
    one = bound_terms(
        model, x0, sched, variance, generator=torch.Generator().manual_seed(4)
    )
    many = bound_terms(
        model,
        x0,
        sched,
        variance,
        generator=torch.Generator().manual_seed(5),
        first=3,
        repeats=16,
    )
    torch.testing.assert_close(many[:, 0], one[:, 0])  # L_T is exact, not sampled
    for t in range(1, 11):
        diff, se = stats.mean_and_se(many[:, t] - one[:, t])
        stats.assert_close_stat(diff, se, 0.0, f"column {t}")
    assert many[:, 1].std() < 0.5 * one[:, 1].std()


def test_rejects_bad_arguments():
    sched = Schedule.named("linear", 5)
    x0 = torch.zeros(4, 2)
    model = lambda x, t: x  # noqa: E731
    with pytest.raises(ValueError, match="first"):
        bound_terms(model, x0, sched, first=-1)
    with pytest.raises(ValueError, match="repeats"):
        bound_terms(model, x0, sched, repeats=0)
    with pytest.raises(ValueError, match="repeats"):
        bound_terms(model, x0, sched, repeats=2.0)
    assert math.isfinite(bound_terms(model, x0, sched).sum().item())
