"""The weights of the bound and the one-sample L_vlb estimate (ddpm_lib.losses)."""

import math

import torch

import ddpm_lib as dl
from ddpm_lib.losses import l_vlb, nll_bound, vlb_term, vlb_weights


def _eps_from(x0, xt, t, sched):
    ab = sched.alpha_bar[t][:, None]
    return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()


def test_vlb_term_is_a_weighted_mse_plus_a_constant():
    """For t ≥ 2, L_{t−1} = λ_t ‖ε − ε_θ‖² + (d/2)(log(σ²/β̃) + β̃/σ² − 1), λ_t = β_t²/(2σ²α_t(1−ᾱ_t))."""
    sched = dl.Schedule.named("cosine", 50)
    model = lambda x, t: 0.4 * x - 0.1  # any ε_θ will do
    x0 = dl.sample_data("moons", 200, seed=0).double()
    for variance in ("beta", "beta_tilde"):
        lam = vlb_weights(sched, variance)
        for step in (2, 10, 49, 50):
            t = torch.full((200,), step)
            term = vlb_term(
                model,
                x0,
                t,
                sched,
                variance,
                generator=torch.Generator().manual_seed(1),
            )
            xt = dl.q_sample(x0, t, sched, generator=torch.Generator().manual_seed(1))
            eps = _eps_from(x0, xt, t, sched)
            b, bt = sched.betas[step].item(), sched.posterior_variance[step].item()
            var = b if variance == "beta" else bt
            const = math.log(var / bt) + bt / var - 1  # d/2 · (…) with d = 2
            expected = (
                b**2 / (2 * var * (1 - b) * (1 - sched.alpha_bar[step].item()))
            ) * ((eps - model(xt, t)) ** 2).sum(1) + const
            assert torch.allclose(term, expected, rtol=1e-8, atol=1e-10)
            assert math.isclose(
                lam[step].item(),
                b**2 / (2 * var * (1 - b) * (1 - sched.alpha_bar[step].item())),
                rel_tol=1e-12,
            )


def test_l_vlb_is_an_unbiased_estimate_of_the_bound():
    """The mean of many one-sample estimates L_T + T·L_{t−1} matches the full sum over t."""
    sched = dl.Schedule.named("linear", 20)
    model = lambda x, t: 0.5 * x
    x0 = dl.sample_data("s_curve", 4000, seed=2).double()
    per_point = nll_bound(model, x0, sched, generator=torch.Generator().manual_seed(3))
    full, se_full = (
        per_point.mean().item(),
        per_point.std().item() / math.sqrt(len(per_point)),
    )
    gen = torch.Generator().manual_seed(4)
    draws = torch.tensor(
        [l_vlb(model, x0, sched, generator=gen).item() for _ in range(200)]
    )
    se_draws = draws.std().item() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - full) < 5 * math.hypot(se_full, se_draws)
