"""ddpm_lib under bad input, faults and other devices: no lost model, no silent wrong answer.

One section per kind of fault: (1) data loss in ``train``, (2) the EMA on short runs, (3) a
model that knows its schedule, (4) unchecked arguments with wrong results, (5) metrics on bad
input, (6) crashes (depth 0, half precision, mixed dtypes), (7) devices, (8) errors that name
the argument. References: the caller's own weights (unchanged), the raw weights' held-out loss
(the EMA must match it), exact values (c2st(A, A) = 0.5) and the error messages themselves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ddpm_lib as dl
from ddpm_lib import (
    GaussianMixture,
    MLPDenoiser,
    Schedule,
    c2st,
    ddim_sample,
    ddpm_sample,
    histogram_js,
    l_simple,
    log_variance,
    q_sample,
    sample_data,
    sliced_wasserstein,
    train,
    vlb_term,
)
from ddpm_lib.models import load_model, save_model
from ddpm_lib.train import TrainingDiverged

SCHED = Schedule.named("linear", 20)
DATA = sample_data("moons", 400, seed=0)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _finite(model):
    return all(torch.isfinite(p).all() for p in model.parameters())


# (1) data loss ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [1e6, math.inf])
def test_train_never_overwrites_the_callers_model_and_stops_on_divergence(lr):
    """A learning rate that blows up (or an infinite one, refused up front) leaves the caller's model
    exactly as it was; a blow-up stops with TrainingDiverged naming the step, and the exception keeps
    finite weights."""
    torch.manual_seed(0)
    model = MLPDenoiser()
    before = _params(model)
    if math.isinf(lr):
        with pytest.raises(ValueError, match=r"lr must be a finite number"):
            train(model, DATA, SCHED, steps=5, lr=lr, progress=False)
    else:
        with pytest.raises(
            TrainingDiverged, match=r"stopped at step \d+ of 50.*learning rate"
        ) as info:
            train(model, DATA, SCHED, steps=50, lr=lr, progress=False)
        res = info.value.result
        assert _finite(res.raw_model) and _finite(res.model)
        assert (
            len(res.losses) == info.value.step - 1 and torch.isfinite(res.losses).all()
        )
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_train_trains_a_copy():
    """The result's raw model is a trained copy; the caller's model keeps its weights."""
    torch.manual_seed(0)
    model = MLPDenoiser()
    before = _params(model)
    res = train(model, DATA, SCHED, steps=3, progress=False)
    assert res.raw_model is not model and all(
        torch.equal(p, q) for p, q in zip(before, model.parameters())
    )
    assert not all(
        torch.equal(p, q) for p, q in zip(before, res.raw_model.parameters())
    )


def test_train_refuses_non_finite_data_and_stops_on_a_nan_loss():
    """A NaN in the data is refused before any step (the error names data and counts the rows); a loss
    function returning NaN stops at step 1 naming the loss function, with the initial weights kept."""
    bad = DATA.clone()
    bad[7, 1] = math.nan
    bad[9, 0] = math.inf
    with pytest.raises(ValueError, match=r"data must be finite, got 2 of 400 rows"):
        train(MLPDenoiser(), bad, SCHED, steps=5, progress=False)
    torch.manual_seed(0)
    model = MLPDenoiser()
    with pytest.raises(TrainingDiverged, match=r"step 1 of 5.*loss function") as info:
        train(
            model,
            DATA,
            SCHED,
            steps=5,
            progress=False,
            loss_fn=lambda m, x, s, generator: l_simple(m, x, s, generator) * math.nan,
        )
    assert info.value.step == 1
    assert all(
        torch.equal(p, q)
        for p, q in zip(model.parameters(), info.value.result.raw_model.parameters())
    )


# (2) the EMA on a short run ------------------------------------------------------------------------


def test_ema_is_as_good_as_the_raw_weights_after_300_steps():
    """After 300 steps the EMA model's held-out L_simple (the same 4000 points and noise draws for both)
    is within 1 % of the raw weights'. With a fixed decay 0.995 from the random start, 22 % of the
    average would still be the initial weights and the loss would be far higher."""
    sched = Schedule.named("sigmoid", 100)
    torch.manual_seed(0)
    res = train(
        MLPDenoiser(),
        sample_data("moons", 5000, seed=0),
        sched,
        steps=300,
        batch_size=128,
        lr=5e-3,
        progress=False,
    )
    held = sample_data("moons", 4000, seed=99)
    with torch.no_grad():
        ema = l_simple(
            res.model, held, sched, generator=torch.Generator().manual_seed(1)
        ).item()
        raw = l_simple(
            res.raw_model, held, sched, generator=torch.Generator().manual_seed(1)
        ).item()
    assert ema <= 1.01 * raw, (ema, raw)


# (3) a model that knows its schedule ------------------------------------------------------------------


def test_model_carries_its_schedule_and_samplers_refuse_another():
    """The trained model carries its schedule; sampling it with another T or another β is refused, with
    the right one it runs; the config records schedule, T and model size. Closures and plain modules
    are accepted with any schedule."""
    sched = Schedule.named("linear", 10)
    res = train(MLPDenoiser(), DATA, sched, steps=2, progress=False)
    assert res.model.schedule.same_as(sched) and res.raw_model.schedule is sched
    assert res.config["schedule"] == "linear" and res.config["T"] == 10
    assert res.config["parameters"] == sum(p.numel() for p in res.model.parameters())
    for other in (Schedule.named("linear", 100), Schedule.named("cosine", 10)):
        with pytest.raises(ValueError, match=r"trained with Schedule\('linear', T=10"):
            ddpm_sample(res.model, other, 5)
        with pytest.raises(ValueError, match=r"trained with"):
            ddim_sample(res.model, other, 5, steps=5)
    assert ddpm_sample(res.model, sched, 5).shape == (5, 2)
    assert ddpm_sample(
        lambda x, t: torch.zeros_like(x), Schedule.named("cosine", 30), 5
    ).shape == (5, 2)


def test_model_refuses_float_negative_and_out_of_range_t():
    """Float steps are a TypeError; negative steps, and steps beyond the trained T, a ValueError."""
    model = MLPDenoiser()
    x = torch.zeros(3, 2)
    with pytest.raises(TypeError, match="integer steps"):
        model(x, torch.tensor([0.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match="≥ 0"):
        model(x, torch.tensor([-1, 1, 2]))
    model.schedule = SCHED
    with pytest.raises(ValueError, match=r"t must lie in 0…20"):
        model(x, torch.tensor([1, 2, 10_000]))


def test_save_and_load_round_trip_with_weights_only(tmp_path):
    """save_model/load_model: same outputs, same schedule and settings, the file loads with weights_only."""
    res = train(
        MLPDenoiser(hidden=16, learn_variance=True),
        DATA,
        SCHED,
        steps=3,
        progress=False,
        snapshot_at=(2,),
    )
    path = tmp_path / "model.pt"
    save_model(res.model, path)
    blob = torch.load(path, weights_only=True)
    assert blob["kwargs"]["hidden"] == 16
    back = load_model(path)
    x, t = torch.randn(6, 2), torch.arange(1, 7)
    assert torch.equal(back(x, t), res.model(x, t))
    assert back.schedule.same_as(SCHED) and back.schedule.name == "linear"
    assert back.train_config["T"] == 20 and back.train_config["steps"] == 3


# (4) unchecked arguments that gave wrong results ------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: ddim_sample(
                lambda x, t: torch.zeros_like(x), SCHED, 4, 5, eta=math.inf
            ),
            ValueError,
            r"eta must be a finite",
        ),
        (
            lambda: train(
                MLPDenoiser(), DATA, SCHED, steps=2, batch_size=0, progress=False
            ),
            ValueError,
            r"batch_size must be an integer ≥ 1, got 0",
        ),
        (
            lambda: train(MLPDenoiser(), DATA, SCHED, steps=2, lr=0, progress=False),
            ValueError,
            r"lr must be a finite number in \(0",
        ),
        (
            lambda: MLPDenoiser(hidden=0),
            ValueError,
            r"hidden must be an integer ≥ 1, got 0",
        ),
        (
            lambda: MLPDenoiser(embed_dim=0),
            ValueError,
            r"embed_dim must be an even integer ≥ 2, got 0",
        ),
        (
            lambda: GaussianMixture([[0.0, 0.0]], [math.nan]),
            ValueError,
            r"stds must be finite",
        ),
        (
            lambda: GaussianMixture([[0.0, 0.0]], [1.0]).noised(1.5),
            ValueError,
            r"alpha_bar must be a finite number in \[0, 1\], got 1.5",
        ),
        (
            lambda: log_variance(
                torch.tensor([3]), SCHED, "learned", torch.full((1, 2), 1.5)
            ),
            ValueError,
            r"nu .* must lie in \[−1, 1\]",
        ),
    ],
)
def test_arguments_that_used_to_give_wrong_results_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


# (5) metrics on bad input ------------------------------------------------------------------------------


def _normal(n, seed):
    return np.random.default_rng(seed).standard_normal((n, 2))


@pytest.mark.parametrize("metric", [histogram_js, sliced_wasserstein, c2st])
def test_metrics_refuse_nan_inf_and_empty_input(metric):
    a, b = _normal(200, 0), _normal(200, 1)
    for value in (math.nan, math.inf):
        bad = a.copy()
        bad[3, 0] = value
        with pytest.raises(ValueError, match=r"must be finite, got 1 of 200 points"):
            metric(bad, b)
    with pytest.raises(ValueError, match=r"shape \(n, d\) with n, d ≥ 1"):
        metric(np.zeros((0, 2)), b)


def test_metric_settings_are_checked():
    a, b = _normal(50, 0), _normal(50, 1)
    with pytest.raises(ValueError, match=r"bins must be an integer ≥ 1, got 0"):
        histogram_js(a, b, bins=0)
    with pytest.raises(
        ValueError, match=r"n_projections must be an integer ≥ 1, got 0"
    ):
        sliced_wasserstein(a, b, n_projections=0)
    with pytest.raises(ValueError, match=r"at least max\(k, folds\) = 10 points"):
        c2st(a[:5], b[:5])


def test_c2st_of_a_set_against_itself_is_one_half():
    """Identical points are never classified by their own copy: c2st(A, A) = 0.5 exactly (it was 0.337)."""
    a = _normal(1000, 2)
    assert c2st(a, a) == 0.5
    assert c2st(torch.from_numpy(a).float(), torch.from_numpy(a).float()) == 0.5


def test_c2st_of_unequal_sizes_from_one_law_is_near_one_half():
    """100 points against 1000 of the same law: the larger set is subsampled, so the answer is chance
    (it was 0.905, the share of the majority class). The standard error of an accuracy on 200 points
    is about 0.035; 5 of them is 0.18."""
    vals = [c2st(_normal(100, s), _normal(1000, 100 + s), seed=s) for s in range(5)]
    assert abs(np.mean(vals) - 0.5) < 5 * 0.5 / math.sqrt(200 * 5), vals


# (6) crashes -----------------------------------------------------------------------------------------------


def test_depth_zero_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"depth must be an integer ≥ 1, got 0"):
        MLPDenoiser(depth=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_model_runs_in_its_own_dtype(dtype):
    """The time embedding computes its angles in float32 (float64 for a float64 model) and returns the
    model's dtype: a half-precision model runs, and agrees with float32 to its own precision."""
    torch.manual_seed(0)
    model = MLPDenoiser()
    x, t = torch.randn(50, 2), torch.randint(1, 1000, (50,))
    want = model(x, t)
    got = model.to(dtype)(x.to(dtype), t)
    assert got.dtype == dtype and torch.isfinite(got).all()
    tol = {torch.float16: 2e-2, torch.bfloat16: 1e-1, torch.float64: 1e-5}[dtype]
    assert (got.float() - want).abs().max() < tol


def test_float64_points_with_a_float32_model_name_both_dtypes():
    with pytest.raises(
        TypeError, match=r"x is torch.float64 .* weights are torch.float32"
    ):
        MLPDenoiser()(torch.zeros(3, 2, dtype=torch.float64), 1)


# (7) devices ------------------------------------------------------------------------------------------------

META = torch.device("meta")


def test_every_step_follows_the_device_of_its_input_meta():
    """With the meta device standing in for a second device, every function returns its result on
    the device of its input or model: noise, steps and schedule tables are made there, not on the CPU."""
    sched = Schedule.named("linear", 5)
    x = torch.empty(4, 2, device=META)
    model = MLPDenoiser().to(META)
    assert q_sample(x, 3, sched).device == META
    assert dl.q_step(x, 3, sched).device == META
    assert dl.p_step(x, 3, torch.empty(4, 2, device=META), sched).device == META
    assert dl.posterior_mean_variance(x, x, 2, sched)[0].device == META
    assert (
        log_variance(torch.tensor([2, 3], device=META), sched, "beta_tilde").device
        == META
    )
    assert l_simple(model, x, sched).device == META
    assert vlb_term(model, x, 2, sched).device == META
    assert dl.prior_kl(x, sched).device == META
    assert ddpm_sample(model, sched, 4).device == META
    assert ddim_sample(model, sched, 4, steps=3, eta=0.5).device == META
    assert dl.langevin_step(lambda y: y, x, 0.1).device == META


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine (torch.cuda.is_available() is False)",
)
def test_everything_runs_on_cuda():
    """On a GPU: training, both samplers, the bound and the metrics (which copy to the CPU)."""
    cuda = torch.device("cuda")
    sched = Schedule.named("linear", 20)
    res = train(MLPDenoiser().to(cuda), DATA, sched, steps=20, progress=False)
    gen = torch.Generator().manual_seed(0)
    x = ddpm_sample(res.model, sched, 100, generator=gen)
    y = ddim_sample(res.model, sched, 100, steps=5, generator=gen)
    assert (
        x.device.type == "cuda" and y.device.type == "cuda" and torch.isfinite(x).all()
    )
    assert dl.nll_bound(res.model, DATA[:50].to(cuda), sched).device.type == "cuda"
    assert (
        0 <= c2st(x, y) <= 1
        and sliced_wasserstein(x, y) >= 0
        and histogram_js(x, y) >= 0
    )


def test_seeded_sampling_does_not_depend_on_where_the_generator_lives():
    """Noise is drawn on the generator's device and moved, so a CPU generator gives the same samples
    for a closure as before and leaves the global RNG alone."""
    state = torch.get_rng_state()
    a = ddpm_sample(
        lambda x, t: torch.zeros_like(x),
        SCHED,
        7,
        generator=torch.Generator().manual_seed(3),
    )
    b = ddpm_sample(
        lambda x, t: torch.zeros_like(x),
        SCHED,
        7,
        generator=torch.Generator().manual_seed(3),
    )
    assert torch.equal(a, b) and torch.equal(state, torch.get_rng_state())


# (8) errors that name the argument ----------------------------------------------------------------------------

ZERO = lambda x, t: torch.zeros_like(x)  # noqa: E731


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: train(
                MLPDenoiser(), DATA, SCHED, steps=2, seed=None, progress=False
            ),
            TypeError,
            r"seed must be an integer ≥ 0, got None",
        ),
        (
            lambda: train(MLPDenoiser(), DATA[:0], SCHED, steps=2, progress=False),
            ValueError,
            r"data must hold at least one point",
        ),
        (
            lambda: ddpm_sample(ZERO, SCHED, 4, generator=42),
            TypeError,
            r"generator must be a torch.Generator or None, got int 42",
        ),
        (
            lambda: ddpm_sample(ZERO, 100, 4),
            TypeError,
            r"sched must be a ddpm_lib Schedule.*got int 100",
        ),
        (
            lambda: train(
                MLPDenoiser(), DATA, SCHED, steps=10, snapshot_at=5, progress=False
            ),
            TypeError,
            r"snapshot_at must be a collection of steps",
        ),
        (
            lambda: c2st(np.zeros(50), np.zeros(50)),
            ValueError,
            r"samples must have shape \(n, d\)",
        ),
        (
            lambda: Schedule(["a"]),
            TypeError,
            r"betas must be a 1-D sequence of numbers",
        ),
        (
            lambda: q_sample(DATA, "5", SCHED),
            TypeError,
            r"t must be integer steps .* got str '5'",
        ),
        (lambda: q_sample(DATA, 2.0, SCHED), TypeError, r"t must be integer steps"),
        (
            lambda: sample_data("moons", 10, seed=None),
            TypeError,
            r"seed must be an integer ≥ 0",
        ),
        (
            lambda: dl.l_simple(MLPDenoiser(), DATA, SCHED, generator=7),
            TypeError,
            r"generator must be a torch.Generator",
        ),
        (
            lambda: ddim_sample(ZERO, SCHED, 4, steps=0),
            ValueError,
            r"steps must be an integer from 1 to T = 20, got 0",
        ),
        (
            lambda: ddpm_sample(ZERO, SCHED, 0),
            ValueError,
            r"n \(the number of samples\) must be an integer ≥ 1, got 0",
        ),
        (
            lambda: ddpm_sample(ZERO, SCHED, 4, variance="big"),
            ValueError,
            r"variance must be one of beta, beta_tilde, learned, got 'big'",
        ),
        (lambda: ddpm_sample("model", SCHED, 4), TypeError, r"model must be callable"),
        (
            lambda: histogram_js(np.zeros((5, 2)), np.zeros((5, 3))),
            ValueError,
            r"same number of coordinates d, got 2 and 3",
        ),
        (
            lambda: dl.sample_data("moons", 0, 1),
            ValueError,
            r"n must be an integer ≥ 1, got 0",
        ),
    ],
)
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_vlb_term_accepts_an_int_step_like_every_other_function():
    """vlb_term(..., t=5, ...) used to fail with an IndexError; an int step is broadcast to every row."""
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    x0 = DATA[:8].double()
    a = vlb_term(ZERO, x0, 5, SCHED, generator=gen())
    b = vlb_term(ZERO, x0, torch.full((8,), 5), SCHED, generator=gen())
    assert a.shape == (8,) and torch.equal(a, b)


def test_progress_switch(monkeypatch):
    """DDPM_PROGRESS=0 turns every progress bar off; otherwise the progress= argument decides."""
    from ddpm_lib._checks import show_progress

    monkeypatch.setenv("DDPM_PROGRESS", "0")
    assert show_progress(True) is False
    monkeypatch.setenv("DDPM_PROGRESS", "1")
    assert show_progress(True) is True and show_progress(False) is False
    monkeypatch.delenv("DDPM_PROGRESS")
    assert show_progress(True) is True


def test_progress_bar_follows_the_switch(monkeypatch):
    """The chapters' own loops: dl.progress_bar draws nothing under DDPM_PROGRESS=0."""
    import ddpm_lib as dl

    monkeypatch.setenv("DDPM_PROGRESS", "0")
    bar = dl.progress_bar(range(3), desc="x")
    assert bar.disable and list(bar) == [0, 1, 2]
    monkeypatch.setenv("DDPM_PROGRESS", "1")
    assert not dl.progress_bar(range(3), desc="x").disable
    assert dl.progress_bar(range(3), desc="x", progress=False).disable
