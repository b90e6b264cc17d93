"""The book's schedules and models driven by Hugging Face diffusers' schedulers (chapter 11).

diffusers (``pip install diffusers``) is imported inside the functions, so that
``import ddpm_lib`` stays light. Its schedulers and the book differ in conventions, not in
mathematics; to take the same steps, these settings must match (chapter 11 shows what each
mismatch costs):

- Time indexing. The book's steps are t = 1, …, T with ᾱ_0 = 1 the data; diffusers counts
  k = 0, …, T − 1 with ``alphas_cumprod[k]`` = ᾱ_{k+1}. So diffusers' timestep k is the
  book's t = k + 1, and the book's network is called with k + 1 (:func:`hf_sample`).
- β: ``trained_betas`` = β_1 … β_T of the book's :class:`~ddpm_lib.schedules.Schedule`.
- ``prediction_type="epsilon"``: the network predicts the noise ε.
- ``clip_sample=False``: diffusers clips x̂_0 to [−1, 1] by default (images in [−1, 1]);
  the book never clips, and its standardised data exceed 1.
- DDPM ``variance_type``: "fixed_large" is σ_t² = β_t (the book's "beta"), "fixed_small"
  is β̃_t (the book's "beta_tilde"); diffusers' default is "fixed_small".
- DDIM ``timestep_spacing="trailing"``: steps T, T − T/S, …, T/S in the book's t (the
  book's :func:`~ddpm_lib.sampling.ddim_timesteps`), so the chain starts at pure noise.
  diffusers' default "leading" takes 0, T/S, … (k), i.e. starts at t = T − T/S + 1.
  (diffusers steps from k to k − T//S, not to the next listed timestep, so S must divide
  T for the steps to agree; :func:`hf_sample` refuses a DDIM scheduler with another S.)
- DDIM ``set_alpha_to_one=True``: the last step goes to ᾱ = 1, the data (the book's t = 0);
  False would stop at ᾱ_1, one step short.
- Precision: diffusers keeps its tables (β, ᾱ) in float32 whatever it is given;
  ``float64=True`` replaces them by the book's float64 values, after which every step runs
  in the dtype of x (DDPM and DDIM). DPM-Solver computes its steps in float32 whatever
  the dtype of x (its σ from a float32 cumulative product of the α), and returns x's dtype.
"""

from __future__ import annotations

import warnings

import torch

from ._checks import check_generator, check_points, is_count
from .models import check_model_schedule
from .schedules import check_schedule

#: The book's reverse variance → diffusers' DDPM ``variance_type``.
VARIANCE_TYPES = {"beta": "fixed_large", "beta_tilde": "fixed_small"}


def _common(sched) -> dict:
    """The settings every diffusers scheduler needs to follow a book schedule."""
    check_schedule(sched)
    return dict(
        num_train_timesteps=sched.T,
        trained_betas=sched.betas[1:].tolist(),
        prediction_type="epsilon",
    )


def _float64_tables(scheduler, sched):
    """Replace diffusers' float32 β, α, ᾱ by the book's float64 values (ᾱ_1 … ᾱ_T)."""
    scheduler.betas = sched.betas[1:].clone()
    scheduler.alphas = 1 - scheduler.betas
    scheduler.alphas_cumprod = sched.alpha_bar[1:].clone()
    one = torch.tensor(1.0, dtype=torch.float64)
    if hasattr(scheduler, "one"):
        scheduler.one = one
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = (
            one if scheduler.config.set_alpha_to_one else scheduler.alphas_cumprod[0]
        )
    return scheduler


def ddpm_scheduler(sched, variance: str = "beta", float64: bool = True):
    """A ``diffusers.DDPMScheduler`` that takes the book's ancestral steps (chapter 4, eq. 4.6).

    ``variance``: "beta" (σ_t² = β_t, "fixed_large") or "beta_tilde" (β̃_t, "fixed_small").
    """
    from diffusers import DDPMScheduler

    if variance not in VARIANCE_TYPES:
        raise ValueError(
            f"variance must be one of {', '.join(VARIANCE_TYPES)}, got {variance!r}"
        )
    s = DDPMScheduler(
        **_common(sched),
        variance_type=VARIANCE_TYPES[variance],
        clip_sample=False,
        timestep_spacing="trailing",
    )
    return _float64_tables(s, sched) if float64 else s


def ddim_scheduler(
    sched,
    float64: bool = True,
    spacing: str = "trailing",
    set_alpha_to_one: bool = True,
    clip_sample: bool = False,
):
    """A ``diffusers.DDIMScheduler`` that takes the book's DDIM steps (eq. 7.3, Song et al. 2021).

    The defaults are the settings that match the book; the others are there to show
    what a mismatch does (chapter 11).
    """
    from diffusers import DDIMScheduler

    s = DDIMScheduler(
        **_common(sched),
        clip_sample=clip_sample,
        set_alpha_to_one=set_alpha_to_one,
        timestep_spacing=spacing,
        steps_offset=0,
    )
    return _float64_tables(s, sched) if float64 else s


def dpm_solver_scheduler(sched, **settings):
    """A ``diffusers.DPMSolverMultistepScheduler`` (DPM-Solver++, Lu et al. 2022) for the book's schedule.

    Its own defaults otherwise: second order, its "linspace" grid, and, as the book's
    DPM-Solver++(2M) (:func:`ddpm_lib.solvers.sample`), a first-order last step to σ = 0
    (``final_sigmas_type="zero"``); ``settings`` overrides them.
    """
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(
        **(_common(sched) | dict(algorithm_type="dpmsolver++") | settings)
    )


def unipc_scheduler(sched, **settings):
    """A ``diffusers.UniPCMultistepScheduler`` (UniPC, Zhao et al. 2023) for the book's schedule."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(**(_common(sched) | settings))


def book_steps(scheduler) -> list[int]:
    """The scheduler's timesteps in the book's indexing, t = k + 1."""
    return [int(k) + 1 for k in scheduler.timesteps]


def _check_ddim_steps(scheduler, sched, steps, timesteps) -> None:
    """diffusers' DDIM steps from k to k − T//S: with S not dividing T that is not the grid it lists."""
    if type(scheduler).__name__ != "DDIMScheduler" or timesteps is not None:
        return
    S = sched.T if steps is None else steps
    if not is_count(S) or sched.T % S:
        raise ValueError(
            f"steps must divide T = {sched.T} for diffusers' DDIM (it steps from k to "
            f"k − T//steps, not to its next listed timestep), got {steps!r}"
        )


@torch.no_grad()
def hf_sample(
    model,
    sched,
    scheduler,
    x_T: torch.Tensor,
    steps: int | None = None,
    timesteps=None,
    generator=None,
    t_offset: int = 1,
    return_steps: bool = False,
    **step_kwargs,
):
    """Sample the book's ``model`` with a diffusers ``scheduler``, from x_T (n, d).

    ``steps`` (default T) or ``timesteps`` (diffusers' k, descending) go to
    ``scheduler.set_timesteps``. The network is called with the book's t = k + ``t_offset``
    (1 is right; 0 shows the off-by-one mistake). ``step_kwargs`` go to ``scheduler.step``
    (e.g. ``eta`` for DDIM). With ``return_steps``, also a list of (t, x after the step,
    x̂_0 of the step or None) for every step.
    """
    check_model_schedule(model, sched)
    check_points(x_T, "x_T")
    check_generator(generator)
    _check_ddim_steps(scheduler, sched, steps, timesteps)
    with warnings.catch_warnings():
        # DPM-Solver's set_timesteps calls np.array on a tensor, which numpy ≥ 2 warns
        # about (a copy, harmless here); keep that out of the chapters' outputs.
        warnings.filterwarnings("ignore", "__array__", DeprecationWarning)
        if timesteps is not None:
            scheduler.set_timesteps(timesteps=list(timesteps))
        else:
            scheduler.set_timesteps(sched.T if steps is None else steps)
    x, record = x_T * scheduler.init_noise_sigma, []
    n = x.shape[0]
    for k in scheduler.timesteps:
        t = torch.full((n,), int(k) + t_offset, dtype=torch.long, device=x.device)
        eps = model(scheduler.scale_model_input(x, k), t)
        kwargs = dict(step_kwargs)
        if generator is not None:
            kwargs["generator"] = generator
        out = scheduler.step(eps, k, x, **kwargs)
        x = out.prev_sample
        record.append((int(k) + 1, x, getattr(out, "pred_original_sample", None)))
    return (x, record) if return_steps else x
