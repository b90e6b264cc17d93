"""diffusers' schedulers, set up by ddpm_lib.hf, take the book's steps (chapter 11).

The reference is ddpm_lib's own samplers, which the other tests check against closed
forms; diffusers is an independent implementation of the same updates. A small random
network stands in for a trained one (the steps do not depend on what it learned), in
float64, with the same starting noise and the same generator for the step noise.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from ddpm_lib import hf  # noqa: E402
from ddpm_lib.models import MLPDenoiser  # noqa: E402
from ddpm_lib.reverse import predict_x0_from_eps  # noqa: E402
from ddpm_lib.sampling import ddim_sample, ddim_timesteps, ddpm_sample  # noqa: E402
from ddpm_lib.schedules import Schedule  # noqa: E402
from ddpm_lib.solvers import sample, time_grid  # noqa: E402

TOL = 1e-5


@pytest.fixture(scope="module")
def setup():
    sched = Schedule.named("sigmoid", 40)
    torch.manual_seed(3)
    model = MLPDenoiser(d=3, hidden=32, depth=2).double().eval()
    model.schedule = sched
    x_T = torch.randn(50, 3, generator=torch.Generator().manual_seed(4)).double()
    return sched, model, x_T


def gen(seed=5):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_ddpm_same_samples_and_steps(setup, variance):
    sched, model, x_T = setup
    book, traj = ddpm_sample(
        model,
        sched,
        50,
        d=3,
        variance=variance,
        generator=gen(),
        return_trajectory=True,
        x_T=x_T,
    )
    s = hf.ddpm_scheduler(sched, variance)
    x, steps = hf.hf_sample(model, sched, s, x_T, generator=gen(), return_steps=True)
    assert x.dtype == torch.float64
    assert (x - book).abs().max() < TOL
    assert [t for t, _, _ in steps] == list(range(sched.T, 0, -1))
    for t, x_prev, x0 in steps:
        assert (x_prev - traj[t - 1]).abs().max() < TOL
        eps = model(traj[t], torch.full((50,), t))
        assert (x0 - predict_x0_from_eps(traj[t], t, eps, sched)).abs().max() < TOL


def test_tables_and_variances(setup):
    sched = setup[0]
    for variance, want in (
        ("beta", sched.betas),
        ("beta_tilde", sched.posterior_variance),
    ):
        s = hf.ddpm_scheduler(sched, variance)
        got = torch.stack([s._get_variance(k) for k in range(1, sched.T)])
        assert torch.allclose(got, want[2:], rtol=1e-12, atol=0)
    s = hf.ddpm_scheduler(sched, float64=False)
    assert s.alphas_cumprod.dtype == torch.float32  # diffusers' own tables
    assert torch.allclose(s.alphas_cumprod.double(), sched.alpha_bar[1:], rtol=1e-5)


@pytest.mark.parametrize("steps", [1, 4, 10, 40])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_same_samples_and_grid(setup, steps, eta):
    sched, model, x_T = setup
    book, traj = ddim_sample(
        model,
        sched,
        50,
        steps,
        eta=eta,
        d=3,
        generator=gen(),
        return_trajectory=True,
        x_T=x_T,
    )
    s = hf.ddim_scheduler(sched)
    x, rec = hf.hf_sample(
        model,
        sched,
        s,
        x_T,
        steps=steps,
        generator=gen(),
        eta=eta,
        return_steps=True,
    )
    assert hf.book_steps(s) == ddim_timesteps(sched, steps)
    assert (x - book).abs().max() < TOL
    for i, (_, x_s, _) in enumerate(rec):
        assert (x_s - traj[steps - 1 - i]).abs().max() < TOL


def test_each_mismatch_changes_the_samples(setup):
    """Each wrong setting moves the samples far beyond the tolerance (it can fail)."""
    sched, model, x_T = setup
    book = ddim_sample(model, sched, 50, 10, d=3, x_T=x_T)
    wrong = {
        "leading": hf.hf_sample(
            model, sched, hf.ddim_scheduler(sched, spacing="leading"), x_T, 10
        ),
        "alpha_one": hf.hf_sample(
            model, sched, hf.ddim_scheduler(sched, set_alpha_to_one=False), x_T, 10
        ),
        "offset": hf.hf_sample(
            model, sched, hf.ddim_scheduler(sched), x_T, 10, t_offset=0
        ),
    }
    for name, x in wrong.items():
        assert (x - book).abs().max() > 100 * TOL, name


def test_dpm_solver_on_the_book_grid(setup):
    """diffusers' DPM-Solver++(2M) on the book's grid is chapter 7's, to float32 rounding."""
    sched, model, x_T = setup
    grid = time_grid(sched, 8, "logsnr")
    book, _ = sample(model, sched, x_T, grid, "dpmpp2m")
    s = hf.dpm_solver_scheduler(sched)  # its defaults: a first-order last step, as ours
    x = hf.hf_sample(model, sched, s, x_T, timesteps=[t - 1 for t in grid[:-1]])
    assert (x - book).abs().max() < 1e-4 * (1 + book.abs().max())


def test_ddim_steps_that_do_not_divide_T_are_refused(setup):
    """diffusers' DDIM steps from k to k − T//S, which is not its listed grid when S does not
    divide T (T = 40, S = 3: steps of 13 from its listed 40, 27, 14): refused, naming steps."""
    sched, model, x_T = setup
    with pytest.raises(ValueError, match="steps must divide T = 40"):
        hf.hf_sample(model, sched, hf.ddim_scheduler(sched), x_T, 3)
    hf.hf_sample(model, sched, hf.ddim_scheduler(sched), x_T, 8)  # 8 divides 40


def test_float32_model_runs_in_float32(setup):
    sched, model, x_T = setup
    m32 = MLPDenoiser(d=3, hidden=32, depth=2).eval()
    m32.load_state_dict(model.state_dict())
    m32.schedule = sched
    x = hf.hf_sample(m32, sched, hf.ddim_scheduler(sched), x_T.float(), 5)
    assert x.dtype == torch.float32


def test_bad_variance(setup):
    with pytest.raises(ValueError, match="variance"):
        hf.ddpm_scheduler(setup[0], "learned")
