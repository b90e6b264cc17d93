"""Tests of ddpm_lib.variance (chapter 9) against closed forms on Gaussian data."""

import math

import pytest
import torch

import ddpm_lib as dl
from ddpm_lib import variance as V
from ddpm_lib.bound import bound_terms
from ddpm_lib.losses import l_simple, sample_t, vlb_term

torch.set_num_threads(1)


def gauss_eps(s2, sched):
    """ε* for data N(0, s² I): √(1−ᾱ) x / (ᾱ s² + 1 − ᾱ)."""

    def eps(x, t):
        ab = sched.alpha_bar.to(x.dtype)[torch.as_tensor(t).expand(len(x))][:, None]
        return (1 - ab).sqrt() * x / (ab * s2 + 1 - ab)

    return eps


def gauss_step_variance(s2, ab_s, ab_t):
    """Var(x_s | x_t) for data N(0, s²): the jointly Gaussian pair, independently."""
    v_s = ab_s * s2 + 1 - ab_s
    a, b = ab_t / ab_s, 1 - ab_t / ab_s  # x_t = √a x_s + √b n
    return v_s * b / (a * v_s + b)


@pytest.mark.parametrize("steps", [None, 7])
@pytest.mark.parametrize("s2", [0.3, 1.0, 2.5])
def test_optimal_variance_is_the_gaussian_conditional_variance(s2, steps):
    sched = dl.Schedule.named("sigmoid", 40)
    run, taus = V.strided(sched, steps or sched.T)
    ab = run.alpha_bar
    mse = ab * s2 / (ab * s2 + 1 - ab)  # 1 − E ε*²  for N(0, s²) data
    got = V.optimal_variance(run, mse)[1:]
    ab_full = sched.alpha_bar
    want = torch.tensor(
        [
            gauss_step_variance(s2, ab_full[taus[i - 1]], ab_full[taus[i]])
            for i in range(1, run.T + 1)
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-14)


def test_unit_gaussian_data_make_beta_optimal():
    # the classic case: for N(0, I) data the optimal σ_t² is β_t (mse = ᾱ_t)
    sched = dl.Schedule.named("linear", 50)
    got = V.optimal_variance(sched, sched.alpha_bar.clone())
    torch.testing.assert_close(got[1:], sched.betas[1:], rtol=1e-10, atol=0)


def test_eps_mse_matches_closed_form_within_standard_errors():
    sched = dl.Schedule.named("sigmoid", 20)
    s2 = 0.5
    x0 = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)) * s2**0.5
    eps = gauss_eps(s2, sched)
    ab = sched.alpha_bar
    want = ab * s2 / (ab * s2 + 1 - ab)
    for ideal in (False, True):
        m, se = V.eps_mse(
            eps, x0.double(), sched, torch.Generator().manual_seed(1), ideal
        )
        z = (m[1:] - want[1:]) / se[1:]
        assert z.abs().max() < 5, (ideal, z)


def test_bound_table_matches_the_library_bound_and_is_paired():
    sched = dl.Schedule.named("sigmoid", 15)
    x0 = dl.sample_data("moons", 300, seed=0).double()
    torch.manual_seed(0)
    model = dl.MLPDenoiser(learn_variance=True).double()
    table = V.bound_table(
        model,
        x0,
        sched,
        {"beta": "beta", "learned": "learned", "as_tensor": sched.betas.clone()},
        torch.Generator().manual_seed(3),
    )
    for name in ("beta", "learned"):
        ref = bound_terms(model, x0, sched, name, torch.Generator().manual_seed(3))
        torch.testing.assert_close(table[name], ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(table["as_tensor"], table["beta"], rtol=1e-12, atol=0)


def test_optimal_variance_lowers_the_ideal_bound_on_gaussian_data():
    sched = dl.Schedule.named("sigmoid", 30)
    s2 = 2.0
    gen = torch.Generator().manual_seed(0)
    x0 = (torch.randn(3000, 2, generator=gen) * s2**0.5).double()
    ab = sched.alpha_bar
    best = V.optimal_variance(sched, ab * s2 / (ab * s2 + 1 - ab))
    table = V.bound_table(
        gauss_eps(s2, sched),
        x0,
        sched,
        {"beta": "beta", "beta_tilde": "beta_tilde", "best": best},
        torch.Generator().manual_seed(3),
    )
    for name in ("beta", "beta_tilde"):
        diff = table["best"][:, 1:].sum(1) - table[name][:, 1:].sum(1)
        assert diff.mean() < -4 * diff.std() / math.sqrt(len(diff)), name


def test_strided_schedule_keeps_alpha_bar_on_its_steps():
    sched = dl.Schedule.named("sigmoid", 100)
    run, taus = V.strided(sched, 20)
    assert run.T == 20 and taus[0] == 0 and taus[-1] == 100
    torch.testing.assert_close(run.alpha_bar, sched.alpha_bar[taus], rtol=1e-12, atol=0)
    same, taus_all = V.strided(sched, 100)
    assert same.same_as(sched) and taus_all.tolist() == list(range(101))
    seen = []
    V.on_steps(lambda x, t: seen.append(t.tolist()) or x, taus)(torch.zeros(3, 2), 4)
    assert seen == [[taus[4].item()] * 3]


def test_hybrid_loss_is_simple_plus_weighted_vlb_with_stopped_mean():
    sched = dl.Schedule.named("sigmoid", 25)
    x0 = dl.sample_data("moons", 256, seed=0)
    torch.manual_seed(0)
    model = dl.MLPDenoiser(learn_variance=True)
    loss = V.hybrid_loss(model, x0, sched, torch.Generator().manual_seed(4))
    simple = l_simple(model, x0, sched, torch.Generator().manual_seed(4))
    gen = torch.Generator().manual_seed(4)
    t = sample_t(len(x0), sched, gen)
    vlb = vlb_term(model, x0, t, sched, "learned", gen).mean()
    want = simple + V.VLB_WEIGHT * sched.T * vlb
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
    # the stop-gradient: the ε-head's gradient is L_simple's alone, the v-head's is L_vlb's
    g_hyb = torch.autograd.grad(loss, [model.eps_head.weight, model.var_head.weight])
    g_simple = torch.autograd.grad(simple, [model.eps_head.weight])[0]
    torch.testing.assert_close(g_hyb[0], g_simple, rtol=1e-5, atol=1e-7)
    assert g_hyb[1].abs().max() > 0


def test_arguments_are_named():
    sched = dl.Schedule.named("sigmoid", 10)
    with pytest.raises(ValueError, match="mse"):
        V.optimal_variance(sched, torch.ones(5))
    with pytest.raises(ValueError, match="mse"):
        V.optimal_variance(sched, -torch.ones(11))
    with pytest.raises(ValueError, match="learn_variance"):
        V.hybrid_loss(dl.MLPDenoiser(), torch.zeros(4, 2), sched)
    with pytest.raises(ValueError, match="variances"):
        V.bound_table(dl.MLPDenoiser(), torch.zeros(4, 2), sched, {})
