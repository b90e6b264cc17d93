"""The book's benchmark: train with the book's settings, then measure (chapter 6, ``tools/benchmark.py``).

One place for the settings and the measurements that chapter 6 shows and that
``tools/benchmark.py`` prints, so that the two cannot drift apart.
Every function is seeded; nothing here asserts a wall-clock time.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .bound import bound_terms
from .data import sample_data
from .density import entropy, ideal_eps, toy_law
from .flow_likelihood import flow_log_likelihood, mixture_eps
from .losses import nll_bound
from .metrics import evaluate
from .models import MLPDenoiser
from .sampling import ddpm_sample
from .schedules import Schedule
from .solvers import sample, steps_for_nfe, time_grid
from .train import TrainResult, train

#: The book's settings: the sigmoid schedule of chapter 1 with T = 100, 5000 Adam steps of
#: batch 512 at learning rate 5e-3 (decaying to 5e-4), each metric the mean over ``draws``
#: draws of ``n`` samples, the bound on ``nll_points`` held-out points.
SETTINGS = dict(
    schedule="sigmoid",
    T=100,
    steps=5000,
    batch_size=512,
    lr=5e-3,
    n=2000,
    draws=5,
    nll_points=2000,
    ddim_steps=(10, 20, 50),
)
#: Tiny settings for a smoke run (``tools/benchmark.py --quick``).
QUICK = dict(
    schedule="sigmoid",
    T=50,
    steps=1500,
    batch_size=256,
    lr=3e-3,
    n=1000,
    draws=2,
    nll_points=200,
    ddim_steps=(5, 10),
)


#: The samplers of chapter 7 that the benchmark scores, by name: (rule, spacing) of
#: :func:`ddpm_lib.solvers.sample` and :func:`ddpm_lib.solvers.time_grid`, each at every NFE of
#: ``SOLVER_NFE`` (every network call counted); and the exact NLL of the deterministic
#: sampler (DDIM, η = 0) at ``FLOW_STEPS`` steps (None: all T) on ``FLOW_POINTS`` held-out points.
SOLVERS = {
    "heun": ("heun", "uniform"),
    "dpmpp2m": ("dpmpp2m", "uniform"),
    "dpmpp2m-logsnr": ("dpmpp2m", "logsnr"),
    "dpmpp2m-quadratic": ("dpmpp2m", "quadratic"),
}
SOLVER_NFE = (10, 20)
FLOW_STEPS = (10, 20, None)
FLOW_POINTS = 500


def mean_se(x) -> tuple[float, float]:
    """The mean of the values ``x`` and its standard error s/√n."""
    x = torch.as_tensor(x, dtype=torch.float64).flatten()
    return x.mean().item(), x.std().item() / math.sqrt(len(x))


def schedule_for(cfg: dict) -> Schedule:
    """The schedule named in ``cfg`` (``schedule`` and ``T``)."""
    return Schedule.named(cfg["schedule"], cfg["T"])


def training_data(name: str, seed: int = 0) -> torch.Tensor:
    """The 20 000 training points of data set ``name`` that :func:`train_on` uses."""
    return sample_data(name, 20_000, seed=seed)


def train_on(
    name: str,
    cfg: dict = SETTINGS,
    seed: int = 0,
    snapshot_at=(),
    progress: bool = False,
) -> TrainResult:
    """Train a fresh :class:`MLPDenoiser` on :func:`training_data` of data set ``name`` with the settings ``cfg``."""
    data = training_data(name, seed)
    torch.manual_seed(seed)  # the initial weights
    return train(
        MLPDenoiser(),
        data,
        schedule_for(cfg),
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        seed=seed,
        progress=progress,
        desc=name,
        snapshot_at=snapshot_at,
    )


def mean_metrics(sampler, name: str, draws: int, seed: int = 100) -> dict:
    """Each metric of :func:`ddpm_lib.metrics.evaluate`, averaged over ``draws`` calls of ``sampler()``.

    ``sampler()`` returns a fresh (n, 2) set of samples; each is compared with fresh data
    (draw k uses test sets seeded by ``seed + k``), and so is the floor. Besides the means
    (keys c2st, c2st_floor, js, …), the result holds their standard errors over the
    draws (keys c2st_se, c2st_floor_se, …; NaN for a single draw).
    """
    draw = lambda n, s: sample_data(name, n, s)
    scores = [evaluate(sampler(), draw, seed=seed + k) for k in range(draws)]
    out = {}
    for key in scores[0]:
        values = torch.tensor([s[key] for s in scores], dtype=torch.float64)
        out[key] = values.mean().item()
        out[f"{key}_se"] = (
            (values.std() / math.sqrt(draws)).item() if draws > 1 else math.nan
        )
    return out


def ddpm_quality(model, name: str, cfg: dict = SETTINGS, seed: int = 0, keep=None):
    """The benchmark's sample quality: :func:`mean_metrics` over ``cfg["draws"]`` DDPM draws of ``cfg["n"]`` samples.

    Seeded as in ``tools/benchmark.py``, so chapter 6 and the benchmark report the same
    numbers. Returns (metrics, the reverse chain of the first draw, shape (T + 1, n, 2)).
    Every draw scored is appended to the list ``keep`` if one is given.
    """
    sched = schedule_for(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    chains = []

    def sampler():
        x, chain = ddpm_sample(
            model, sched, cfg["n"], generator=gen, return_trajectory=True
        )
        if not chains:
            chains.append(chain)
        if keep is not None:
            keep.append(x)
        return x

    return mean_metrics(sampler, name, cfg["draws"]), chains[0]


@lru_cache(maxsize=None)
def data_entropy(name: str) -> float:
    """The exact entropy of data set ``name`` in nats (:func:`ddpm_lib.density.entropy`), computed once."""
    return entropy(toy_law(name))


def nll_table(model, name: str, sched: Schedule, n: int, seed: int = 7) -> dict:
    """The bound (σ_t² = β_t) of ``model`` and of the ideal denoiser on the same ``n`` held-out points, in nats.

    Returns (mean, standard error) pairs for the model, the ideal denoiser and their
    difference (the same draws of x_t for both, so the difference is precise), and the
    exact entropy of the data. The model is evaluated in float64.
    """
    x0 = sample_data(name, n, seed=seed).double()
    model64 = model.double()
    try:
        ours = nll_bound(model64, x0, sched, generator=torch.Generator().manual_seed(3))
    finally:
        model.float()
    ideal = nll_bound(
        ideal_eps(toy_law(name), sched),
        x0,
        sched,
        generator=torch.Generator().manual_seed(3),
    )
    return {
        "nll_bound": mean_se(ours),
        "ideal_nll_bound": mean_se(ideal),
        "nll_gap_to_ideal": mean_se(ours - ideal),
        "entropy": data_entropy(name),
    }


def ideal_bound(
    name: str,
    sched: Schedule,
    n: int,
    variance: str = "beta",
    seed: int = 7,
    first: int = 5,
    repeats: int = 20,
) -> torch.Tensor:
    """The ideal denoiser's bound per point (n,) on ``n`` held-out points, in nats.

    The first ``first`` terms, whose weights are largest, average ``repeats`` draws of x_t
    (:func:`ddpm_lib.bound.bound_terms`); responsibilities in float32 keep T = 1000 cheap.
    """
    x0 = sample_data(name, n, seed=seed).double()
    eps = ideal_eps(toy_law(name), sched, dtype=torch.float32)
    return bound_terms(
        eps,
        x0,
        sched,
        variance,
        generator=torch.Generator().manual_seed(3),
        first=first,
        repeats=repeats,
    ).sum(1)


def solver_quality(
    model,
    name: str,
    sampler: str,
    nfe: int,
    cfg: dict = SETTINGS,
    seed: int = 0,
    keep=None,
) -> dict:
    """:func:`mean_metrics` of the chapter 7 sampler ``sampler`` (a key of :data:`SOLVERS`) at ``nfe`` calls.

    Each draw starts from fresh N(0, I) noise of a generator seeded by ``seed + 3``; the result
    also holds ``nfe_used``, the network calls actually made (Heun's 2S − 1 may be one less
    than ``nfe``). Every draw scored is appended to the list ``keep`` if one is given.
    """
    rule, spacing = SOLVERS[sampler]
    sched = schedule_for(cfg)
    grid = time_grid(sched, steps_for_nfe(rule, nfe), spacing)
    gen = torch.Generator().manual_seed(seed + 3)
    used = []

    def draw():
        x_T = torch.randn(cfg["n"], 2, generator=gen)
        x, calls = sample(model, sched, x_T, grid, rule)
        used.append(calls)
        if keep is not None:
            keep.append(x)
        return x

    out = mean_metrics(draw, name, cfg["draws"])
    out["nfe_used"] = used[0]
    return out


def flow_nll_table(
    model, name: str, sched: Schedule, n: int, steps=None, seed: int = 7
) -> dict:
    """The exact NLL (nats) of the deterministic sampler (DDIM, η = 0) with ``steps`` steps (None: all T).

    For the network (in float64) and the ideal denoiser, on the same ``n`` held-out points as
    :func:`nll_table`: (mean, standard error) of the NLL, of the paired gap log q − log p to
    the data's exact density, and the median gap; ``inverted``, the number of points whose
    steps were undone (Newton residual < 1e-8 and round trip < 1e-6: the means are over those).
    """
    x0 = sample_data(name, n, seed=seed).double()
    log_q = toy_law(name).log_prob(x0)
    grid = time_grid(sched, steps or sched.T)
    out = {"steps": steps or sched.T, "entropy": data_entropy(name)}
    model64 = model.double()
    try:
        for who, eps in (
            ("network", model64),
            ("ideal", mixture_eps(toy_law(name), sched)),
        ):
            r = flow_log_likelihood(eps, sched, x0, grid, iters=30)
            ok = (r["residual"] < 1e-8) & (r["round_trip"] < 1e-6)
            gap = (log_q - r["log_prob"])[ok]
            out[who] = {
                "nll": mean_se(-r["log_prob"][ok]),
                "gap": mean_se(gap),
                "median_gap": gap.median().item(),
                "inverted": int(ok.sum()),
            }
    finally:
        model.float()
    return out
