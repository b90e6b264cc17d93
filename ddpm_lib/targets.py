"""What the network outputs: ε, x̂_0, v, the score or the flow-matching velocity (chapter 8).

The network of chapter 4 returns d numbers for x_t and t; a *target* is how those numbers
are read. With a = √ᾱ_t, σ̄ = √(1 − ᾱ_t) and x_t = a x_0 + σ̄ ε (eq. 2.3), the five
targets and their value for the pair (x_0, ε) are

    "eps"       ε                                     (Ho et al. 2020)
    "x0"        x_0
    "v"         v = a ε − σ̄ x_0                       (Salimans & Ho 2022)
    "score"     −ε/σ̄ = ∇ log q(x_t | x_0)            (Song & Ermon 2019)
    "velocity"  ε − x_0                               (Lipman et al. 2023, Liu et al. 2023)

The last is the velocity of the linear path y_τ = (1 − τ) x_0 + τ ε, which is x_t divided
by a + σ̄ at τ = σ̄/(a + σ̄) (eq. 8.6). Given x_t, each is an affine function of ε, so
a prediction of one is a prediction of every other (:func:`eps_from`,
:func:`from_eps`), and the squared error of target k is λ_k(t) times that of ε
(:func:`loss_weight`, eq. 8.4; Kingma & Gao 2023):

    λ_eps = 1,  λ_x0 = 1/SNR,  λ_v = 1 + 1/SNR,  λ_score = 1 + SNR,
    λ_velocity = (1 + SNR^{−1/2})².

Each ``loss_<target>`` is a training loss for :func:`ddpm_lib.train.train`, defined at
module level so that the training cache recognises it; :class:`AsEps` turns a network
trained on any target into an ε-predictor that every sampler of the book accepts.
Points are (n, d), steps t are integer tensors (n,) in 1…T; arithmetic runs in the
dtype and on the device of x.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_like, check_points, check_steps, randn_like
from .forward import q_sample
from .losses import _check_model, sample_t
from .models import check_model_schedule
from .reverse import split_output
from .schedules import Schedule, check_schedule

#: The five targets, in the order the chapter shows them.
TARGETS = ("eps", "x0", "v", "score", "velocity")


def check_target(target) -> str:
    """Require one of :data:`TARGETS`; return it."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    return target


def _coefs(t, sched: Schedule, like: torch.Tensor):
    """(a, σ̄) = (√ᾱ_t, √(1 − ᾱ_t)) as (n, 1) columns in like's dtype and device."""
    check_schedule(sched)
    t = sched.check_t(check_steps(t, like))
    ab = sched.at("alpha_bar", t, like)
    return ab.sqrt(), (1 - ab).sqrt()


def target_value(
    target: str, x0: torch.Tensor, eps: torch.Tensor, t, sched: Schedule
) -> torch.Tensor:
    """The value of ``target`` for data x0 and noise eps at step t (the table above).   (eq. 8.1)"""
    check_target(target)
    check_points(x0, "x0")
    check_like(eps, x0, "eps", "x0")
    a, sig = _coefs(t, sched, x0)
    return {
        "eps": lambda: eps,
        "x0": lambda: x0,
        "v": lambda: a * eps - sig * x0,
        "score": lambda: -eps / sig,
        "velocity": lambda: eps - x0,
    }[target]()


def from_eps(target: str, eps: torch.Tensor, x: torch.Tensor, t, sched: Schedule):
    """The prediction of ``target`` implied by a prediction ε̂ at x = x_t.   (eq. 8.2)

    x̂_0 = (x − σ̄ ε̂)/a, v̂ = a ε̂ − σ̄ x̂_0 = (ε̂ − σ̄ x)/a, ŝ = −ε̂/σ̄,
    û = ε̂ − x̂_0 = ((a + σ̄) ε̂ − x)/a.
    """
    check_target(target)
    check_points(x, "x")
    check_like(eps, x, "eps")
    a, sig = _coefs(t, sched, x)
    return {
        "eps": lambda: eps,
        "x0": lambda: (x - sig * eps) / a,
        "v": lambda: (eps - sig * x) / a,
        "score": lambda: -eps / sig,
        "velocity": lambda: ((a + sig) * eps - x) / a,
    }[target]()


def eps_from(target: str, out: torch.Tensor, x: torch.Tensor, t, sched: Schedule):
    """The prediction ε̂ implied by a prediction ``out`` of ``target`` at x = x_t.   (eq. 8.3)

    The inverse of :func:`from_eps`: ε̂ = (x − a x̂_0)/σ̄ = σ̄ x + a v̂ = −σ̄ ŝ
    = (x + a û)/(a + σ̄).
    """
    check_target(target)
    check_points(x, "x")
    check_like(out, x, "out")
    a, sig = _coefs(t, sched, x)
    return {
        "eps": lambda: out,
        "x0": lambda: (x - a * out) / sig,
        "v": lambda: sig * x + a * out,
        "score": lambda: -sig * out,
        "velocity": lambda: (x + a * out) / (a + sig),
    }[target]()


def loss_weight(target: str, snr: torch.Tensor) -> torch.Tensor:
    """λ_k(SNR): the squared error of ``target`` is λ_k times that of ε at the same x_t.   (eq. 8.4)

    From eq. 8.2 each error is ε's times a number: 1/√SNR for x̂_0, 1/a for v̂, 1/σ̄ for the
    score, (a + σ̄)/a for the velocity; with a² = SNR/(1 + SNR), σ̄² = 1/(1 + SNR):
    λ = 1, 1/SNR, 1 + 1/SNR, 1 + SNR, (1 + SNR^{−1/2})² (Kingma & Gao 2023).
    The weight that turns the loss of target j into that of k is λ_k/λ_j.
    """
    check_target(target)
    snr = torch.as_tensor(snr)
    if not snr.dtype.is_floating_point:
        snr = snr.double()
    return {
        "eps": lambda: torch.ones_like(snr),
        "x0": lambda: 1 / snr,
        "v": lambda: 1 + 1 / snr,
        "score": lambda: 1 + snr,
        "velocity": lambda: (1 + snr.rsqrt()) ** 2,
    }[target]()


def flow_time(sched: Schedule, t=None) -> torch.Tensor:
    """τ_t = σ̄_t/(√ᾱ_t + σ̄_t): the time of the linear path with the SNR of step t.   (eq. 8.6)

    The linear path y_τ = (1 − τ) x_0 + τ ε has SNR (1 − τ)²/τ²; equal to ᾱ_t/(1 − ᾱ_t)
    when (1 − τ)/τ = √ᾱ_t/σ̄_t. ``t`` None: every step 0…T (float64, shape (T + 1,)).
    """
    check_schedule(sched)
    ab = (
        sched.alpha_bar
        if t is None
        else sched.alpha_bar[sched.check_t(t, allow_zero=True)]
    )
    a, sig = ab.sqrt(), (1 - ab).sqrt()
    return sig / (a + sig)


def flow_point(x: torch.Tensor, t, sched: Schedule) -> torch.Tensor:
    """y = x_t/(√ᾱ_t + σ̄_t): the point of the linear path at τ_t for x_t.   (eq. 8.6)

    x_t = a x_0 + σ̄ ε, so x_t/(a + σ̄) = (1 − τ_t) x_0 + τ_t ε.
    """
    check_points(x, "x")
    a, sig = _coefs(t, sched, x)
    return x / (a + sig)


def target_loss(
    model, x0: torch.Tensor, sched: Schedule, target: str, generator=None
) -> torch.Tensor:
    """E_{t, x_0, ε} ‖target − f_θ(x_t, t)‖², the output read as ``target``.   (eq. 8.5)

    One t ~ Uniform{1…T} and one ε per point, drawn in the order of
    :func:`ddpm_lib.losses.l_simple`, so that target "eps" is L_simple with the same
    numbers. Returns a scalar.
    """
    check_points(x0, "x0")
    _check_model(model)
    check_target(target)
    t = sample_t(x0.shape[0], sched, generator, x0.device)
    eps = randn_like(x0, generator)
    out, _ = split_output(model(q_sample(x0, t, sched, noise=eps), t), x0.shape[1])
    return ((target_value(target, x0, eps, t, sched) - out) ** 2).sum(dim=1).mean()


def loss_eps(model, x0, sched, generator=None):
    """:func:`target_loss` with target ε: L_simple (eq. 5.8)."""
    return target_loss(model, x0, sched, "eps", generator)


def loss_x0(model, x0, sched, generator=None):
    """:func:`target_loss` with target x_0."""
    return target_loss(model, x0, sched, "x0", generator)


def loss_v(model, x0, sched, generator=None):
    """:func:`target_loss` with target v = √ᾱ_t ε − √(1 − ᾱ_t) x_0."""
    return target_loss(model, x0, sched, "v", generator)


def loss_score(model, x0, sched, generator=None):
    """:func:`target_loss` with target −ε/√(1 − ᾱ_t): denoising score matching."""
    return target_loss(model, x0, sched, "score", generator)


def loss_velocity(model, x0, sched, generator=None):
    """:func:`target_loss` with target ε − x_0: flow matching on the book's noise levels."""
    return target_loss(model, x0, sched, "velocity", generator)


#: The training loss of each target.
LOSSES = {
    "eps": loss_eps,
    "x0": loss_x0,
    "v": loss_v,
    "score": loss_score,
    "velocity": loss_velocity,
}


class AsEps(nn.Module):
    """A network trained on ``target``, read as an ε-predictor: (x, t) ↦ ε̂ by eq. 8.3.

    It carries the network's schedule (``.schedule``), so the samplers of chapters 4–7
    refuse another one, and its weights (``.double()``, ``.to(...)`` move them). Also
    accepts a plain callable (e.g. the ideal predictor of a target) with ``sched``.
    """

    def __init__(self, model, target: str, sched: Schedule | None = None):
        super().__init__()
        _check_model(model)
        self.target = check_target(target)
        self.net = model
        self.schedule = getattr(model, "schedule", None) if sched is None else sched
        if self.schedule is None:
            raise ValueError(
                "sched is needed: the model carries no schedule (model.schedule)"
            )
        check_model_schedule(model, self.schedule)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        out, _ = split_output(self.net(x, t), x.shape[1])
        return eps_from(self.target, out.to(x.dtype), x, t, self.schedule)


# ----------------------------------------------------------------------------------------
# Floors and achieved losses, on the same draws
# ----------------------------------------------------------------------------------------


def draws_per_step(x0: torch.Tensor, sched: Schedule, generator=None):
    """Steps and noise for data x0 (T·m, d): the rows m(t − 1) … mt − 1 get step t.

    Returns (t, ε), with t ordered 1, …, 1, 2, …, T: a Monte Carlo sample of the losses'
    expectation over t ~ Uniform{1…T}, stratified by step, so that the losses of each
    step are also available (``.view(T, m)``). Every row has its own x_0 and ε, so the
    strata are independent (:func:`stratified_mean_se`).
    """
    check_points(x0, "x0")
    check_schedule(sched)
    if x0.shape[0] % sched.T:
        raise ValueError(
            f"x0 must have a multiple of T = {sched.T} rows, got {x0.shape[0]}"
        )
    m = x0.shape[0] // sched.T
    t = torch.arange(1, sched.T + 1, device=x0.device).repeat_interleave(m)
    return t, randn_like(x0, generator)


@torch.no_grad()
def point_losses(eps_model, x0, t, eps, sched: Schedule) -> dict:
    """Each target's squared error ‖target − prediction‖² per row, shape (n,) per target.

    ``eps_model``(x, t) → ε̂ (an ε-network, :class:`AsEps`, or the ideal denoiser);
    its prediction of each target follows from ε̂ by eq. 8.2, and x_t = a x_0 + σ̄ ε.
    With the ideal denoiser these are the best achievable losses (eq. 8.7).
    """
    x = q_sample(x0, t, sched, noise=eps)
    e = eps_model(x, t).to(x.dtype)
    return {
        k: (
            (target_value(k, x0, eps, t, sched) - from_eps(k, e, x, t, sched)) ** 2
        ).sum(1)
        for k in TARGETS
    }


def stratified_mean_se(values: torch.Tensor, T: int) -> tuple[float, float]:
    """Mean and standard error of per-row values ordered by step (T strata of m rows).

    The mean over steps of each step's mean; its variance is Σ_t s_t²/m / T².
    """
    v = values.double().view(T, -1)
    m = v.shape[1]
    return v.mean().item(), (v.var(dim=1).sum() / m).sqrt().item() / T


def train_target(name: str, target: str, cfg: dict | None = None, steps=None, seed=0):
    """Train a fresh :class:`~ddpm_lib.models.MLPDenoiser` on data set ``name``, its output read as ``target``.

    The settings, data and seeds of :func:`ddpm_lib.benchmark.train_on` (``cfg``: the
    book's ``SETTINGS`` by default; ``steps`` overrides ``cfg["steps"]``). Target "eps"
    trains with :func:`ddpm_lib.losses.l_simple` itself, so with the book's settings it
    is chapter 6's network (the same run). Returns the :class:`~ddpm_lib.train.TrainResult`.
    """
    from .benchmark import SETTINGS, schedule_for, training_data
    from .losses import l_simple
    from .models import MLPDenoiser
    from .train import train

    check_target(target)
    cfg = SETTINGS if cfg is None else cfg
    data = training_data(name, seed)
    torch.manual_seed(seed)  # the initial weights, as train_on
    return train(
        MLPDenoiser(),
        data,
        schedule_for(cfg),
        steps=cfg["steps"] if steps is None else steps,
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        seed=seed,
        loss_fn=l_simple if target == "eps" else LOSSES[target],
        progress=False,
        desc=f"{name}, {target}",
    )
