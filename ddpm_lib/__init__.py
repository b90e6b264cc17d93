"""ddpm_lib: the code shared by the chapters of *Diffusion, Step by Step*.

One module per idea, named after it:

- :mod:`ddpm_lib.schedules`  β_t and everything derived from it (chapter 1)
- :mod:`ddpm_lib.forward`    the noising chain q (chapters 1–2)
- :mod:`ddpm_lib.moments`    means and covariances compared in standard errors (chapter 2)
- :mod:`ddpm_lib.langevin`   Langevin and annealed Langevin sampling (chapter 3)
- :mod:`ddpm_lib.reverse`    the posterior and p_θ (chapter 4)
- :mod:`ddpm_lib.models`     the ε-network, saved and loaded with its schedule (chapter 4)
- :mod:`ddpm_lib.losses`     L_simple and the variational bound (chapter 5)
- :mod:`ddpm_lib.sampling`   DDPM and DDIM samplers (chapters 4 and 6)
- :mod:`ddpm_lib.solvers`    continuous time, DDIM-η, SDE/ODE, Heun, DPM-Solver++(2M) (chapter 7)
- :mod:`ddpm_lib.flow_likelihood` the exact likelihood of a deterministic sampler (chapter 7)
- :mod:`ddpm_lib.targets`    what the network outputs: ε, x̂_0, v, score, velocity (chapter 8)
- :mod:`ddpm_lib.data`       toy 2D data and a Gaussian mixture
- :mod:`ddpm_lib.density`    the exact law of each toy data set, its entropy, the ideal denoiser (chapters 4–6)
- :mod:`ddpm_lib.bound`      the variational bound term by term (chapter 5)
- :mod:`ddpm_lib.importance` L_vlb with importance-sampled steps (chapter 5)
- :mod:`ddpm_lib.train`      the training loop with EMA; it trains a copy and stops on a non-finite loss
- :mod:`ddpm_lib.train_cache` finished training runs kept on disk when DDPM_TRAIN_CACHE is set
- :mod:`ddpm_lib.variance`   learning σ_t², the optimal variance, strided bounds (chapter 9)
- :mod:`ddpm_lib.distributed` the same training on several processes (torch.distributed, chapter 11)
- :mod:`ddpm_lib.metrics`    C2ST, histogram JS and sliced W1, with noise floors
- :mod:`ddpm_lib.plotting`   the book's figure style
- :mod:`ddpm_lib.frames`     kernel-free frame players for the static book (chapters 1, 2, 4)
- :mod:`ddpm_lib.glued`      numbers in the prose, shown in the book and in JupyterLab
- :mod:`ddpm_lib.animation`  reverse-chain animations that play offline (chapter 4)
- :mod:`ddpm_lib.guidance`   conditional laws, classifier and classifier-free guidance (chapter 10)
- :mod:`ddpm_lib.benchmark`  the book's settings and measurements (chapter 6, tools/benchmark.py)
- :mod:`ddpm_lib.digits`     8×8 digits in 64-D, a residual denoiser, scores beside held-out floors (chapter 11)
- :mod:`ddpm_lib.hf`         diffusers' schedulers set up to take the book's steps (chapter 11; imports diffusers lazily)
- :mod:`ddpm_lib.exercises`  exercises that check themselves: ``dl.exercises.check(label, answer)``

Every public function checks its arguments and raises TypeError/ValueError naming the
argument; tensors may live on any device (CPU by default). ``DDPM_PROGRESS=0`` turns off
every progress bar, the chapters' own (:func:`progress_bar`) included
(see :mod:`ddpm_lib._checks`).
"""

from . import digits, distributed, exercises, guidance, hf, variance
from ._checks import progress_bar
from .data import DATASETS, GaussianMixture, sample_data
from .density import entropy, ideal_eps, toy_law
from .flow_likelihood import flow_log_likelihood, mixture_eps
from .forward import q_sample, q_step, q_trajectory
from .frames import figure_frames, frame_player
from .langevin import (
    annealed_langevin,
    annealed_langevin_sample,
    langevin,
    langevin_step,
    score_from_eps,
)
from .losses import (
    gaussian_kl,
    gaussian_nll,
    l_simple,
    l_vlb,
    nll_bound,
    prior_kl,
    vlb_term,
    vlb_weights,
)
from .metrics import c2st, evaluate, format_metrics, histogram_js, sliced_wasserstein
from .models import MLPDenoiser, SinusoidalEmbedding, load_model, save_model
from .moments import moment_gap
from .reverse import (
    log_variance,
    mean_from_eps,
    p_step,
    posterior_mean_variance,
    predict_x0_from_eps,
)
from .sampling import ddim_sample, ddim_timesteps, ddpm_sample
from .schedules import SCHEDULES, Schedule, make_betas
from .solvers import noise_rate, pf_ode_euler, reverse_sde_sample, sample, time_grid
from .targets import AsEps, eps_from, from_eps, loss_weight
from .train import TrainingDiverged, TrainResult, torch_threads, train

__version__ = "0.1.0"
