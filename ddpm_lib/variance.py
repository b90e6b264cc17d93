"""Learning the reverse variance, and the best variance of each step (chapter 9).

- :func:`hybrid_loss`: L_hybrid = L_simple + λ L_vlb with the stop-gradient on the mean
  (Nichol & Dhariwal 2021, §3.1), for an :class:`~ddpm_lib.models.MLPDenoiser` built with
  ``learn_variance=True``. A module-level function, so that training runs with it are
  cached (:mod:`ddpm_lib.train_cache`).
- :func:`optimal_variance`: the variance of each reverse step that minimises the bound for a
  given mean, from the denoiser's mean squared error; with the ideal denoiser, the
  analytic variance of Bao et al. (2022, "Analytic-DPM").
- :func:`strided`: a run over fewer steps as a schedule of its own, so that the samplers and
  the bound of chapters 4–5 apply to it unchanged.
- :func:`bound_table`: the bound's terms for several variances on the *same* draws of x_t.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_points, randn_like
from .forward import q_sample
from .losses import gaussian_kl, gaussian_nll, prior_kl, sample_t
from .reverse import (
    log_variance,
    mean_from_eps,
    posterior_mean_variance,
    split_output,
)
from .sampling import ddim_timesteps
from .schedules import Schedule, check_schedule

#: λ of L_hybrid (Nichol & Dhariwal 2021, §3.1). With the stop-gradient, only the shared
#: layers feel λ: the variance head is moved by L_vlb alone, and Adam rescales its steps.
VLB_WEIGHT = 0.001


def _step_terms(x0, xt, t, eps_hat, log_var, sched):
    """The term of step t per point (n,): the KL for t ≥ 2, the decoder's −log p for t = 1."""
    mean = mean_from_eps(xt, t, eps_hat, sched)
    true_mean, true_var = posterior_mean_variance(x0, xt, t, sched)
    safe_var = torch.where(t[:, None] > 1, true_var, torch.ones_like(true_var))
    kl = gaussian_kl(true_mean, safe_var.log().expand_as(x0), mean, log_var)
    nll = gaussian_nll(x0, mean, log_var)
    return torch.where(t > 1, kl.sum(1), nll.sum(1))


def hybrid_loss(model, x0: torch.Tensor, sched: Schedule, generator=None):
    """L_hybrid = L_simple + λ L_vlb, λ = :data:`VLB_WEIGHT`.   (eq. 9.3; Nichol & Dhariwal 2021)

    One t ~ Uniform{1…T} and one ε per point of x0 (n, d). ``model`` returns (ε̂, ν), shape
    (n, 2d). L_vlb = T · L_{t−1} (+ L_T, which has no parameters) uses the learned variance
    log σ_t² = κ log β_t + (1 − κ) log β̃_t, κ = (ν + 1)/2, and the mean μ_θ built from a
    *detached* ε̂: the mean learns from L_simple only, the variance from L_vlb only.
    """
    check_points(x0, "x0")
    check_schedule(sched)
    t = sample_t(x0.shape[0], sched, generator, x0.device)
    eps = randn_like(x0, generator)
    xt = q_sample(x0, t, sched, noise=eps)
    eps_hat, nu = split_output(model(xt, t), x0.shape[1])
    if nu is None:
        raise ValueError(
            "model must output (ε̂, ν), shape (n, 2d): build it with learn_variance=True"
        )
    simple = ((eps - eps_hat) ** 2).sum(1).mean()
    log_var = log_variance(t, sched, "learned", nu, like=x0)
    terms = _step_terms(x0, xt, t, eps_hat.detach(), log_var, sched)
    return simple + VLB_WEIGHT * sched.T * terms.mean()


def error_scale(sched: Schedule) -> torch.Tensor:
    """c_t² (1 − ᾱ_t)/ᾱ_t = ᾱ_{t−1} β_t² / ((1 − ᾱ_t) ᾱ_t), float64 of length T + 1 (index 0: 0).

    The factor that turns the error of ε̂ into the error of the mean: with
    c_t = √ᾱ_{t−1} β_t/(1 − ᾱ_t) (chapter 4), μ̃_t(x_t, x_0) − μ_θ = c_t (x_0 − x̂_0) and
    x_0 − x̂_0 = √((1 − ᾱ_t)/ᾱ_t) (ε̂ − ε).   (eq. 9.2)
    """
    check_schedule(sched)
    ab, ab_prev, beta = sched.alpha_bar, sched.alpha_bar_prev, sched.betas
    scale = ab_prev * beta**2 / ((1 - ab) * ab)
    scale[0] = 0.0
    return scale


def optimal_variance(sched: Schedule, mse: torch.Tensor) -> torch.Tensor:
    """σ*_t² = β̃_t + c_t² (1 − ᾱ_t)/ᾱ_t · mse_t, shape (T + 1,) (index 0: 0).   (eq. 9.2)

    ``mse`` (T + 1,): E‖ε − ε̂(x_t, t)‖²/d per step (index 0 ignored). For a mean μ_θ built
    from ε̂, σ*_t² is the variance of p(x_{t−1} | x_t) = N(μ_θ, σ² I) that minimises the
    expected bound term of step t (for t = 1, the decoder's −log p; β̃_1 = 0). With the ideal
    denoiser ε*, E‖ε − ε*‖² = d − E‖ε*‖² and this is Bao et al. (2022), Thm 1, for DDPM.
    """
    check_schedule(sched)
    mse = torch.as_tensor(mse, dtype=torch.float64)
    if mse.shape != (sched.T + 1,):
        raise ValueError(
            f"mse must have shape (T + 1,) = ({sched.T + 1},), got {tuple(mse.shape)}"
        )
    if not bool(torch.isfinite(mse[1:]).all() and (mse[1:] >= 0).all()):
        raise ValueError("mse must hold finite values ≥ 0 (mean squared errors)")
    out = sched.posterior_variance + error_scale(sched) * mse
    out[0] = 0.0
    return out


@torch.no_grad()
def eps_mse(
    model, x0: torch.Tensor, sched: Schedule, generator=None, ideal: bool = False
):
    """E‖ε − ε̂‖²/d per step, with standard errors: two tensors of shape (T + 1,).

    One draw of x_t per point of x0 (n, d) and step. With ``ideal=True`` (``model`` the ideal
    denoiser) it is estimated as 1 − ‖ε*‖²/d instead, Bao et al.'s form, which needs no ε.
    """
    check_points(x0, "x0")
    check_schedule(sched)
    n, d = x0.shape
    mean = torch.zeros(sched.T + 1, dtype=torch.float64)
    se = torch.zeros(sched.T + 1, dtype=torch.float64)
    for step in range(1, sched.T + 1):
        t = torch.full((n,), step, dtype=torch.long, device=x0.device)
        eps = randn_like(x0, generator)
        eps_hat, _ = split_output(model(q_sample(x0, t, sched, noise=eps), t), d)
        if ideal:
            vals = 1 - (eps_hat.double() ** 2).sum(1) / d
        else:
            vals = ((eps.double() - eps_hat.double()) ** 2).sum(1) / d
        mean[step], se[step] = vals.mean(), vals.std() / math.sqrt(n)
    return mean, se


def strided(sched: Schedule, steps: int):
    """The run over ``steps`` evenly spaced steps τ_1 < … < τ_S = T as a schedule of S steps.

    Returns (schedule, taus): the new schedule has ᾱ'_i = ᾱ_{τ_i} (ᾱ'_0 = 1), so
    β'_i = 1 − ᾱ_{τ_i}/ᾱ_{τ_{i−1}} (eq. 9.4), and β̃'_i, the bound and ancestral sampling follow from
    it; taus (S + 1,) int64 maps its step i to the original step τ_i (τ_0 = 0).
    The steps are those of :func:`ddpm_lib.sampling.ddim_timesteps`.
    """
    check_schedule(sched)
    taus = torch.tensor([0, *ddim_timesteps(sched, steps)[::-1]], dtype=torch.long)
    ab = sched.alpha_bar[taus]
    betas = 1 - ab[1:] / ab[:-1]
    return Schedule(betas, name=f"{sched.name}/{steps} strided"), taus


def on_steps(model, taus: torch.Tensor):
    """``model`` called at the original steps: (x, i) ↦ model(x, τ_i), for a strided schedule."""

    def at(x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device)
        return model(x, taus.to(x.device)[t].expand(x.shape[0]))

    return at


@torch.no_grad()
def bound_table(
    model, x0: torch.Tensor, sched: Schedule, variances: dict, generator=None
) -> dict:
    """The bound's terms per point for several variances on the same draws: name → (n, T + 1).

    ``variances``: name → "beta", "beta_tilde", "learned" (the model's ν) or a tensor (T + 1,)
    of σ_t². Column 0 is L_T, column t the term of step t (as
    :func:`ddpm_lib.bound.bound_terms`); one draw of x_t per point and step, shared by every
    variance, so differences between rows are paired.   (eqs. 5.3, 5.4)
    """
    check_points(x0, "x0")
    check_schedule(sched)
    if not isinstance(variances, dict) or not variances:
        raise ValueError("variances must be a non-empty dict name → variance")
    cols = {k: [prior_kl(x0, sched).double()] for k in variances}
    for step in range(1, sched.T + 1):
        t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
        xt = q_sample(x0, t, sched, generator=generator)
        eps_hat, nu = split_output(model(xt, t), x0.shape[1])
        for name, var in variances.items():
            if isinstance(var, str):
                log_var = log_variance(t, sched, var, nu, like=x0).expand_as(x0)
            else:
                sigma2 = torch.as_tensor(var, dtype=x0.dtype, device=x0.device)
                log_var = sigma2[step].log().expand_as(x0)
            terms = _step_terms(x0, xt, t, eps_hat.to(x0.dtype), log_var, sched)
            cols[name].append(terms.double())
    return {k: torch.stack(c, 1) for k, c in cols.items()}


def train_variance(name: str, cfg: dict | None = None, seed: int = 0):
    """:func:`ddpm_lib.benchmark.train_on` with the variance head and :func:`hybrid_loss`.

    The same data, schedule, steps, batch and learning rate as chapter 6's networks; only
    the second output and the loss differ. Returns a :class:`~ddpm_lib.train.TrainResult`.
    """
    from . import benchmark
    from .models import MLPDenoiser
    from .train import train

    cfg = benchmark.SETTINGS if cfg is None else cfg
    data = benchmark.training_data(name, seed)
    torch.manual_seed(seed)  # the initial weights
    return train(
        MLPDenoiser(learn_variance=True),
        data,
        benchmark.schedule_for(cfg),
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        seed=seed,
        loss_fn=hybrid_loss,
        progress=False,
        desc=name,
    )


def nll_rows(model, name: str, sched: Schedule, steps=None, n: int = 2000, seed=7):
    """Per-point bounds (n,) in nats of ``model`` and of the ideal denoiser, every variance.

    On ``n`` held-out points of data set ``name`` (seed ``seed``), over all T steps or
    ``steps`` strided ones, one shared draw of x_t per point and step (paired rows):
    keys net_beta, net_beta_tilde, net_learned, net_optimal (σ*_t² from the network's own
    error, :func:`optimal_variance`), ideal_beta, ideal_beta_tilde, ideal_optimal; and
    sigma2_net, sigma2_ideal, the optimal variances (T' + 1,), with mse_net, mse_ideal. The
    errors are estimated on other held-out points (seed + 4), so the bound is not fitted
    on the points it is measured on. The model runs in float64.
    """
    from .data import sample_data
    from .density import ideal_eps, toy_law

    run, taus = strided(sched, steps or sched.T)
    law = toy_law(name)
    x0 = sample_data(name, n, seed=seed).double()
    xm = sample_data(name, n, seed=seed + 4).double()
    net = on_steps(model.double(), taus)
    ideal = ideal_eps(law, run, dtype=torch.float32)
    out = {}
    try:
        for who, eps in (("net", net), ("ideal", ideal)):
            mse, _ = eps_mse(eps, xm, run, torch.Generator().manual_seed(5))
            sigma2 = optimal_variance(run, mse)
            out[f"mse_{who}"], out[f"sigma2_{who}"] = mse, sigma2
            names = ["beta", "beta_tilde", "learned"][: 3 if who == "net" else 2]
            variances = {k: k for k in names} | {"optimal": sigma2}
            gen = torch.Generator().manual_seed(3)
            table = bound_table(eps, x0, run, variances, gen)
            out |= {f"{who}_{k}": v.sum(1) for k, v in table.items()}
    finally:
        model.float()
    return out


def quality(model, name: str, sched: Schedule, variance: str, steps=None, cfg=None):
    """Sample quality (:func:`ddpm_lib.benchmark.mean_metrics`) of ancestral sampling.

    Over all T steps or ``steps`` strided ones, with σ_t² = ``variance`` ("beta",
    "beta_tilde", "learned"); ``cfg["draws"]`` draws of ``cfg["n"]`` samples, seeded.
    """
    from . import benchmark
    from .sampling import ddpm_sample

    cfg = benchmark.SETTINGS if cfg is None else cfg
    run, taus = strided(sched, steps or sched.T)
    net = on_steps(model, taus)
    gen = torch.Generator().manual_seed(1)

    def draw():
        return ddpm_sample(net, run, cfg["n"], variance=variance, generator=gen)

    return benchmark.mean_metrics(draw, name, cfg["draws"])
