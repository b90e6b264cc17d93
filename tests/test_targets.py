"""ddpm_lib.targets against independent checks: closed forms, the noised mixture's score,
DDIM, Monte Carlo within its standard error."""

from __future__ import annotations

import math

import pytest
import torch

from ddpm_lib.benchmark import QUICK, train_on
from ddpm_lib.data import GaussianMixture
from ddpm_lib.density import ideal_eps, toy_law
from ddpm_lib.forward import q_sample
from ddpm_lib.losses import l_simple
from ddpm_lib.models import MLPDenoiser
from ddpm_lib.sampling import ddpm_sample
from ddpm_lib.schedules import Schedule
from ddpm_lib.solvers import ddim_mean_variance, sample, time_grid
from ddpm_lib.targets import (
    TARGETS,
    AsEps,
    draws_per_step,
    eps_from,
    flow_point,
    flow_time,
    from_eps,
    loss_eps,
    loss_weight,
    point_losses,
    stratified_mean_se,
    target_loss,
    target_value,
    train_target,
)

Z = 4.5


@pytest.fixture(scope="module")
def sched():
    return Schedule.named("sigmoid", 100)


def _draws(sched, n=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.7 + 0.2
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = torch.randint(1, sched.T + 1, (n,), generator=g)
    return x0, eps, t, q_sample(x0, t, sched, noise=eps)


@pytest.mark.parametrize("target", TARGETS)
def test_true_noise_gives_true_target(sched, target):
    x0, eps, t, x = _draws(sched)
    assert torch.allclose(
        from_eps(target, eps, x, t, sched),
        target_value(target, x0, eps, t, sched),
        rtol=1e-9,
        atol=1e-9,
    )
    # and back: the true target gives the true noise
    out = target_value(target, x0, eps, t, sched)
    assert torch.allclose(eps_from(target, out, x, t, sched), eps, atol=1e-9)


@pytest.mark.parametrize("target", TARGETS)
def test_errors_scale_by_the_snr_weight(sched, target):
    x0, eps, t, x = _draws(sched, seed=1)
    eps_hat = eps + 0.3 * torch.randn(eps.shape, dtype=torch.float64)
    err_target = (
        (
            target_value(target, x0, eps, t, sched)
            - from_eps(target, eps_hat, x, t, sched)
        )
        ** 2
    ).sum(1)
    err_eps = ((eps - eps_hat) ** 2).sum(1)
    w = loss_weight(target, sched.snr[t])
    assert torch.allclose(err_target, w * err_eps, rtol=1e-8)


def test_weights_in_closed_form():
    snr = torch.tensor([1e-3, 0.25, 1.0, 4.0, 1e3], dtype=torch.float64)
    ab = snr / (1 + snr)
    a, s = ab.sqrt(), (1 - ab).sqrt()
    assert torch.allclose(loss_weight("x0", snr), s**2 / a**2)
    assert torch.allclose(loss_weight("v", snr), 1 / a**2)
    assert torch.allclose(loss_weight("score", snr), 1 / s**2)
    assert torch.allclose(loss_weight("velocity", snr), ((a + s) / a) ** 2)
    assert torch.equal(loss_weight("eps", snr), torch.ones_like(snr))


def test_score_is_the_noised_mixture_score(sched):
    law = toy_law("moons")
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(2)).double()
    for step in (1, 20, 70, 100):
        t = torch.full((300,), step)
        score = from_eps("score", ideal_eps(law, sched)(x, t), x, t, sched)
        exact = law.noised(sched.alpha_bar[step].item()).score(x)
        assert torch.allclose(score, exact, rtol=1e-6, atol=1e-8)


def test_x0_of_gaussian_data_is_the_posterior_mean(sched):
    m, delta = torch.tensor([0.5, -0.3], dtype=torch.float64), 0.4
    law = GaussianMixture(m[None], torch.full((1, 2), delta, dtype=torch.float64))
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(3)).double()
    for step in (1, 50, 100):
        ab = sched.alpha_bar[step]
        t = torch.full((200,), step)
        x0_hat = from_eps("x0", ideal_eps(law, sched)(x, t), x, t, sched)
        closed = m + ab.sqrt() * delta**2 * (x - ab.sqrt() * m) / (
            ab * delta**2 + 1 - ab
        )
        assert torch.allclose(x0_hat, closed, atol=1e-10)


def test_floor_of_gaussian_data_is_the_posterior_variance(sched):
    """The x_0 floor is the posterior variance d δ² σ̄²/(ᾱ δ² + σ̄²), averaged over t."""
    m, delta = torch.tensor([0.5, -0.3], dtype=torch.float64), 0.4
    law = GaussianMixture(m[None], torch.full((1, 2), delta, dtype=torch.float64))
    g = torch.Generator().manual_seed(4)
    x0 = law.sample(200 * sched.T, generator=g).double()
    t, eps = draws_per_step(x0, sched, g)
    floor = point_losses(ideal_eps(law, sched), x0, t, eps, sched)
    ab = sched.alpha_bar[1:]
    post_var = 2 * delta**2 * (1 - ab) / (ab * delta**2 + 1 - ab)
    mean, se = stratified_mean_se(floor["x0"], sched.T)
    assert abs(mean - post_var.mean().item()) < Z * se
    # ε's floor: d ᾱ δ²/(ᾱ δ² + σ̄²)
    mean, se = stratified_mean_se(floor["eps"], sched.T)
    exact = (2 * ab * delta**2 / (ab * delta**2 + 1 - ab)).mean().item()
    assert abs(mean - exact) < Z * se


def test_stratified_se_is_the_spread_of_the_mean():
    g = torch.Generator().manual_seed(5)
    scale = torch.arange(1, 11, dtype=torch.float64)[:, None]
    means = []
    for _ in range(400):
        v = (torch.randn(10, 30, generator=g, dtype=torch.float64) * scale).flatten()
        means.append(stratified_mean_se(v, 10))
    spread = torch.tensor([m for m, _ in means]).std().item()
    typical = torch.tensor([s for _, s in means]).mean().item()
    assert abs(typical / spread - 1) < 0.15


def test_flow_time_and_point(sched):
    x0, eps, t, x = _draws(sched, seed=6)
    tau = flow_time(sched, t)[:, None]
    assert torch.allclose(flow_point(x, t, sched), (1 - tau) * x0 + tau * eps)
    # the linear path's SNR (1 − τ)²/τ² is the schedule's
    tau_all = flow_time(sched)[1:]
    assert torch.allclose((1 - tau_all) ** 2 / tau_all**2, sched.snr[1:], rtol=1e-9)
    assert flow_time(sched, 0).item() == 0.0


def test_euler_on_the_linear_path_is_ddim(sched):
    """y' = y + (τ_u − τ_t) û in the flow's coordinates is DDIM's step (η = 0)."""
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(7)).double()
    eps_model = ideal_eps(toy_law("moons"), sched)
    for t_, u_ in ((100, 90), (50, 49), (10, 0)):
        t = torch.full((100,), t_)
        e = eps_model(x, t)
        y = flow_point(x, t, sched) + (
            flow_time(sched, u_) - flow_time(sched, t_)
        ) * from_eps("velocity", e, x, t, sched)
        ab_u = sched.alpha_bar[u_]
        x_u = y * (ab_u.sqrt() + (1 - ab_u).sqrt())
        ddim, _ = ddim_mean_variance(x, t_, u_, e, sched)
        assert torch.allclose(x_u, ddim, atol=1e-10)


def test_loss_eps_is_l_simple(sched):
    torch.manual_seed(0)
    net = MLPDenoiser()
    x0 = torch.randn(64, 2)
    a = loss_eps(net, x0, sched, generator=torch.Generator().manual_seed(8))
    b = l_simple(net, x0, sched, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)


@pytest.mark.parametrize("target", TARGETS)
def test_target_loss_of_the_ideal_predictor_is_the_floor(sched, target):
    """A model that outputs the ideal prediction of the target has the floor's loss."""
    law = toy_law("moons")
    eps_star = ideal_eps(law, sched)

    def ideal_target(x, t):
        return from_eps(target, eps_star(x, t), x, t, sched)

    x0 = law.sample(20_000, generator=torch.Generator().manual_seed(9)).double()
    g = torch.Generator().manual_seed(10)
    vals = torch.stack(
        [target_loss(ideal_target, x0[i::10], sched, target, g) for i in range(10)]
    )
    x0s = law.sample(300 * sched.T, generator=torch.Generator().manual_seed(14))
    t, eps = draws_per_step(x0s.double(), sched, torch.Generator().manual_seed(11))
    mean, se = stratified_mean_se(
        point_losses(eps_star, x0s.double(), t, eps, sched)[target], sched.T
    )
    spread = vals.std().item() / math.sqrt(10)
    assert abs(vals.mean().item() - mean) < Z * math.hypot(spread, se)


def test_as_eps_runs_the_samplers(sched):
    law = toy_law("moons")
    eps_star = ideal_eps(law, sched)
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(12)).double()
    ref = sample(eps_star, sched, x_T, time_grid(sched, 10))[0]
    for target in TARGETS:
        as_target = lambda x, t, k=target: from_eps(k, eps_star(x, t), x, t, sched)  # noqa: E731
        wrapped = AsEps(as_target, target, sched)
        out = sample(wrapped, sched, x_T, time_grid(sched, 10))[0]
        assert torch.allclose(out, ref, atol=1e-8)
        g = torch.Generator().manual_seed(13)
        a = ddpm_sample(wrapped, sched, 50, x_T=x_T, generator=g)
        b = ddpm_sample(
            eps_star, sched, 50, x_T=x_T, generator=torch.Generator().manual_seed(13)
        )
        assert torch.allclose(a, b, atol=1e-8)


def test_as_eps_follows_the_network(sched):
    torch.manual_seed(0)
    net = MLPDenoiser()
    net.schedule = sched
    wrapped = AsEps(net, "v")
    assert wrapped.schedule is sched
    wrapped.double()
    assert net.eps_head.weight.dtype == torch.float64
    x = torch.randn(5, 2, dtype=torch.float64)
    assert wrapped(x, torch.full((5,), 3)).dtype == torch.float64
    with pytest.raises(ValueError, match="trained with"):
        sample(wrapped, Schedule.named("linear", 100), x, [100, 0])
    with pytest.raises(ValueError, match="sched is needed"):
        AsEps(MLPDenoiser(), "v")


def test_meta_device(sched):
    x = torch.empty(4, 2, device="meta")
    t = torch.ones(4, dtype=torch.long, device="meta")
    for target in TARGETS:
        assert eps_from(target, x, x, t, sched).device.type == "meta"
        assert from_eps(target, x, x, t, sched).device.type == "meta"


def test_argument_checks(sched):
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="target"):
        from_eps("noise", x, x, 1, sched)
    with pytest.raises(ValueError, match="target"):
        loss_weight("flow", torch.ones(1))
    with pytest.raises(ValueError, match="eps"):
        from_eps("v", torch.zeros(3, 3), x, 1, sched)
    with pytest.raises(TypeError, match="t must"):
        eps_from("v", x, x, 1.5, sched)
    with pytest.raises(ValueError, match="t must lie"):
        eps_from("v", x, x, 101, sched)


def test_train_target_eps_is_train_on():
    cfg = dict(QUICK, steps=20)
    a = train_target("moons", "eps", cfg)
    b = train_on("moons", cfg)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    c = train_target("moons", "velocity", cfg)
    assert c.config["loss_fn"] == "loss_velocity"


def test_as_eps_runs_the_exact_likelihood(sched):
    """flow_log_likelihood differentiates through AsEps: the same density as ε* itself."""
    from ddpm_lib.flow_likelihood import flow_log_likelihood, mixture_eps

    law = toy_law("moons")
    exact = mixture_eps(law, sched)
    grid = time_grid(sched, 10)
    x0 = law.sample(20, generator=torch.Generator().manual_seed(15)).double()
    ref = flow_log_likelihood(exact, sched, x0, grid)["log_prob"]
    for target in ("x0", "velocity"):
        as_target = lambda x, t, k=target: from_eps(k, exact(x, t), x, t, sched)  # noqa: E731
        out = flow_log_likelihood(AsEps(as_target, target, sched), sched, x0, grid)
        assert torch.allclose(out["log_prob"], ref, atol=1e-8)
