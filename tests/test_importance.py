"""Tests of ddpm_lib.importance: L_vlb with importance-sampled steps (Nichol & Dhariwal 2021, §3.3).

References: a plain-Python re-implementation of the history (one collections.deque(maxlen=10) per
step, fed point by point) and of p_t ∝ √(mean of squares); the full bound from nll_bound, which
evaluates every term (tested in test_losses.py); and numpy's multinomial frequencies.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
import torch

from ddpm_lib import MLPDenoiser, Schedule, nll_bound, sample_data
from ddpm_lib.importance import ImportanceSampledVLB


def reference_probabilities(batches, T, history=10, uniform_share=1e-3):
    """p_t after feeding (t, terms) batches, with one deque per step."""
    hist = {t: deque(maxlen=history) for t in range(1, T + 1)}
    for t, terms in batches:
        for ti, li in zip(t.tolist(), terms.tolist()):
            hist[ti].append(li)
    if any(len(h) < history for h in hist.values()):
        return np.full(T, 1.0 / T)
    rms = np.array([math.sqrt(np.mean(np.square(hist[t]))) for t in range(1, T + 1)])
    return (1 - uniform_share) * rms / rms.sum() + uniform_share / T


def test_history_and_probabilities_match_a_plain_python_reference():
    """Feed random batches (with many repeats of some steps, more than `history` in one batch) and
    compare p_t with the deque reference after every batch: uniform during the warm-up, then
    (1 − u)·rms_t/Σ rms + u/T, to 1e-12."""
    T = 12
    loss = ImportanceSampledVLB(Schedule.named("linear", T))
    gen = torch.Generator().manual_seed(0)
    batches = []
    warm = []
    for i in range(30):
        t = torch.randint(1, T + 1, (25,), generator=gen)
        if i % 3 == 0:
            t[:15] = (
                4  # 15 repeats of one step in one batch: only the last 10 must stay
            )
        terms = torch.randn(25, generator=gen, dtype=torch.float64) * t.double()
        loss.record(t, terms)
        batches.append((t, terms))
        np.testing.assert_allclose(
            loss.probabilities()[1:].numpy(),
            reference_probabilities(batches, T),
            rtol=1e-12,
            atol=1e-15,
        )
        assert loss.probabilities()[0] == 0
        warm.append(loss.warmed_up())
    assert not warm[0] and warm[-1]


def test_estimate_is_unbiased_for_the_full_bound(stats):
    """With a fixed (untrained) network, the mean over 300 batches of the importance-sampled estimate,
    warm-up included, equals the mean of nll_bound (every term evaluated) over the same points, within
    5 standard errors: dividing by p_t keeps the estimate unbiased whatever p_t is."""
    torch.manual_seed(0)
    model = MLPDenoiser().double().eval()
    sched = Schedule.named("sigmoid", 20)
    x0 = sample_data("moons", 400, seed=1).double()
    loss = ImportanceSampledVLB(sched)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        draws = np.array(
            [loss(model, x0, sched, generator=gen).item() for _ in range(300)]
        )
        full = np.array(
            [
                nll_bound(
                    model, x0, sched, generator=torch.Generator().manual_seed(3 + i)
                )
                .mean()
                .item()
                for i in range(20)
            ]
        )
    p = loss.probabilities()[1:]
    assert (
        loss.warmed_up() and p.max() > 2 / sched.T
    )  # the test did leave the uniform law
    mean, se = stats.mean_and_se(draws)
    ref, ref_se = stats.mean_and_se(full)
    stats.assert_close_stat(
        mean - ref,
        math.hypot(se, ref_se),
        0.0,
        "importance-sampled estimate − full bound",
    )


def test_steps_are_drawn_from_p_and_the_loss_backpropagates():
    """After the warm-up, the steps of a large batch follow p_t (chi-square-free check: every frequency
    within 5 binomial standard errors), every p_t ≥ u/T, and the returned scalar has a gradient."""
    torch.manual_seed(1)
    model = MLPDenoiser()
    sched = Schedule.named("linear", 10)
    loss = ImportanceSampledVLB(sched)
    x0 = sample_data("moons", 2000, seed=4)
    gen = torch.Generator().manual_seed(5)
    while not loss.warmed_up():
        loss(model, x0[:64], sched, generator=gen)
    p = loss.probabilities()[1:]
    assert torch.all(p >= loss.uniform_share / sched.T) and math.isclose(
        p.sum().item(), 1.0, rel_tol=1e-12
    )
    seen_before = loss.seen.clone()
    out = loss(model, x0, sched, generator=gen)
    freq = (loss.seen - seen_before)[1:].double() / len(x0)
    se = (p * (1 - p) / len(x0)).sqrt()
    assert torch.all((freq - p).abs() <= 5 * se + 1e-12), (freq, p)
    out.backward()
    assert out.ndim == 0 and all(q.grad is not None for q in model.parameters())


def test_rejects_bad_arguments():
    sched = Schedule.named("linear", 10)
    with pytest.raises(ValueError, match="history"):
        ImportanceSampledVLB(sched, history=0)
    with pytest.raises(ValueError, match="uniform_share"):
        ImportanceSampledVLB(sched, uniform_share=0.0)
    with pytest.raises(ValueError, match="T = 10"):
        ImportanceSampledVLB(sched)(
            lambda x, t: x, torch.zeros(4, 2), Schedule.named("linear", 20)
        )
