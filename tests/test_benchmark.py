"""Tests of ddpm_lib.benchmark, the measurements shared by chapter 6 and tools/benchmark.py.

References: the metric floors (fresh data scored as samples must sit at its floor), the bound of
ddpm_lib.losses.nll_bound evaluated directly, and the exact entropy of ddpm_lib.density.
"""

from __future__ import annotations

import math

import torch

from ddpm_lib import (
    MLPDenoiser,
    Schedule,
    entropy,
    evaluate,
    nll_bound,
    sample_data,
    toy_law,
)
from ddpm_lib.benchmark import (
    QUICK,
    SETTINGS,
    ddpm_quality,
    ideal_bound,
    mean_metrics,
    mean_se,
    nll_table,
    schedule_for,
    train_on,
)
from ddpm_lib.density import ideal_eps


def test_settings_reach_noise_and_name_the_schedule():
    """Both settings build a schedule that ends at pure noise (ᾱ_T < 1e-4) with the T they name."""
    for cfg in (SETTINGS, QUICK):
        sched = schedule_for(cfg)
        assert sched.T == cfg["T"] and sched.alpha_bar[-1] < 1e-4


def test_mean_se():
    """Mean and standard error s/√n of a known sample."""
    m, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and abs(se - (5 / 3) ** 0.5 / 2) < 1e-12


def test_mean_metrics_of_fresh_data_sit_at_the_floor_and_a_shift_does_not():
    """Fresh data as 'samples' score like the floor (each metric within a small margin of it, averaged
    over 4 draws); the same data shifted by 0.3 score far above it (SW1 > 3× the floor, C2ST > 0.6)."""
    seeds = iter(range(500, 600))
    fresh = mean_metrics(
        lambda: sample_data("moons", 1000, next(seeds)), "moons", draws=4
    )
    assert abs(fresh["c2st"] - fresh["c2st_floor"]) < 0.04
    assert (
        fresh["sw1"] < 1.6 * fresh["sw1_floor"]
        and fresh["js"] < 1.5 * fresh["js_floor"]
    )
    shifted = mean_metrics(
        lambda: sample_data("moons", 1000, next(seeds)) + 0.3, "moons", draws=4
    )
    assert shifted["sw1"] > 3 * shifted["sw1_floor"] and shifted["c2st"] > 0.6


def test_nll_table_matches_the_bound_and_the_entropy():
    """nll_table reports nll_bound of the model and of the ideal denoiser on the same held-out points
    (recomputed here directly), their difference, and the exact entropy; the model is left in float32."""
    sched = Schedule.named("sigmoid", 10)
    torch.manual_seed(0)
    model = MLPDenoiser(hidden=16, depth=1)
    table = nll_table(model, "moons", sched, n=50, seed=3)
    x0 = sample_data("moons", 50, seed=3).double()
    ours = nll_bound(
        model.double(), x0, sched, generator=torch.Generator().manual_seed(3)
    )
    model.float()
    ideal = nll_bound(
        ideal_eps(toy_law("moons"), sched),
        x0,
        sched,
        generator=torch.Generator().manual_seed(3),
    )
    assert abs(table["nll_bound"][0] - ours.mean().item()) < 1e-4
    assert abs(table["ideal_nll_bound"][0] - ideal.mean().item()) < 1e-9
    assert abs(table["nll_gap_to_ideal"][0] - (ours - ideal).mean().item()) < 1e-4
    assert table["entropy"] == entropy(toy_law("moons"))
    assert next(model.parameters()).dtype == torch.float32
    # An untrained network is far worse than the best possible denoiser.
    assert table["nll_gap_to_ideal"][0] > 10 * table["nll_gap_to_ideal"][1]


def test_ideal_bound_with_no_repeats_is_the_plain_bound():
    """With first=0 the ideal bound is nll_bound of the (float32) ideal denoiser, same draws; with repeats
    the mean moves by no more than the noise, and it lies above the entropy (a bound on −log p)."""
    sched = Schedule.named("sigmoid", 20)
    plain = ideal_bound("s_curve", sched, n=400, first=0)
    x0 = sample_data("s_curve", 400, seed=7).double()
    direct = nll_bound(
        ideal_eps(toy_law("s_curve"), sched, dtype=torch.float32),
        x0,
        sched,
        generator=torch.Generator().manual_seed(3),
    )
    assert torch.allclose(plain, direct, atol=1e-9)
    repeated = ideal_bound("s_curve", sched, n=400, first=5, repeats=10)
    m, se = mean_se(repeated - plain)
    assert abs(m) < 4 * se + 1e-3
    assert mean_se(repeated)[0] > entropy(toy_law("s_curve"))


def test_train_on_uses_the_settings_and_is_reproducible():
    """train_on trains with the steps and batch of the settings it is given, reproducibly."""
    cfg = dict(QUICK, steps=5, batch_size=32)
    a, b = train_on("moons", cfg), train_on("moons", cfg)
    assert (
        a.config["steps"] == 5
        and a.config["batch_size"] == 32
        and torch.equal(a.losses, b.losses)
    )


def test_mean_metrics_standard_errors():
    """The _se keys are the standard errors s/√k of each metric over the k draws (recomputed here from
    evaluate on the same draws); a single draw has no standard error (NaN)."""
    draws = [sample_data("s_curve", 500, 700 + k) for k in range(3)]
    it = iter(draws)
    got = mean_metrics(lambda: next(it), "s_curve", draws=3, seed=40)
    each = [
        evaluate(x, lambda n, s: sample_data("s_curve", n, s), seed=40 + k)
        for k, x in enumerate(draws)
    ]
    for key in ("c2st", "js", "sw1", "sw1_floor"):
        values = torch.tensor([e[key] for e in each], dtype=torch.float64)
        assert abs(got[key] - values.mean().item()) < 1e-12
        assert abs(got[f"{key}_se"] - values.std().item() / 3**0.5) < 1e-12
    one = mean_metrics(lambda: draws[0], "s_curve", draws=1, seed=40)
    assert math.isnan(one["sw1_se"]) and one["sw1"] == each[0]["sw1"]


def test_ddpm_quality_returns_the_first_chain_and_scores_the_ideal_denoiser_at_the_floor():
    """ddpm_quality samples cfg["draws"] times; the chain it returns has T + 1 entries, starts from noise
    (entry T has mean ≈ 0 and variance ≈ 1) and ends at samples that score like data. With the ideal
    denoiser as the model, C2ST is within 0.05 of its floor."""
    cfg = dict(QUICK, n=800, draws=2)
    sched = schedule_for(cfg)
    metrics, chain = ddpm_quality(ideal_eps(toy_law("moons"), sched), "moons", cfg)
    assert chain.shape == (cfg["T"] + 1, 800, 2)
    assert (
        chain[-1].mean(0).abs().max() < 0.15
        and (chain[-1].var(0) - 1).abs().max() < 0.15
    )
    assert abs(metrics["c2st"] - metrics["c2st_floor"]) < 0.05 and "c2st_se" in metrics


# ---------------------------------------------------------------------------
# Chapter 7's rows: the samplers by NFE, the exact NLL, and --samples-dir
# ---------------------------------------------------------------------------


def test_solver_quality_counts_the_calls_and_keeps_every_draw():
    """solver_quality scores ``draws`` draws of the named sampler (kept in ``keep``), reports the
    network calls actually made (Heun: 2S − 1 within the budget) and scores the ideal denoiser
    with many steps near the floor."""
    from ddpm_lib.benchmark import SOLVERS, solver_quality

    cfg = dict(QUICK, T=20, n=300, draws=2)
    sched = schedule_for(cfg)
    ideal = ideal_eps(toy_law("moons"), sched, dtype=torch.float32)
    calls = []

    def model(x, t):
        calls.append(1)
        return ideal(x, t)

    for sampler, budget, used in (("heun", 10, 9), ("dpmpp2m", 10, 10)):
        keep, calls[:] = [], []
        m = solver_quality(model, "moons", sampler, budget, cfg, keep=keep)
        assert m["nfe_used"] == used and len(calls) == 2 * used
        assert len(keep) == 2 and keep[0].shape == (300, 2)
        assert not torch.equal(keep[0], keep[1])  # fresh noise for each draw
    assert set(SOLVERS) == {"heun", "dpmpp2m", "dpmpp2m-logsnr", "dpmpp2m-quadratic"}


def test_flow_nll_table_pairs_the_gap_and_leaves_the_model_in_float32():
    """flow_nll_table: every point inverted with all steps, the ideal gap is a KL (not negative beyond
    noise) and the NLL minus the gap is the data's −log q on the same points."""
    from ddpm_lib.benchmark import flow_nll_table

    sched = Schedule.named("sigmoid", 20)
    torch.manual_seed(0)
    model = MLPDenoiser(hidden=16, depth=1)
    table = flow_nll_table(model, "moons", sched, n=60, steps=None, seed=3)
    neg_log_q = -toy_law("moons").log_prob(sample_data("moons", 60, seed=3).double())
    for who in ("network", "ideal"):
        r = table[who]
        assert r["inverted"] == 60
        assert abs(r["nll"][0] - r["gap"][0] - neg_log_q.mean().item()) < 1e-9
    assert table["ideal"]["gap"][0] > -4 * table["ideal"]["gap"][1]
    assert table["steps"] == 20 and table["entropy"] == entropy(toy_law("moons"))
    assert next(model.parameters()).dtype == torch.float32


def test_write_samples_writes_arrays_and_an_index(tmp_path):
    """tools/benchmark.py --samples-dir: one (draws, n, 2) array per scored set, named
    <data>_<sampler>_<nfe>.npy, and index entries with data set, sampler, NFE and scores."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    path = Path(__file__).resolve().parents[1] / "tools" / "benchmark.py"
    spec = importlib.util.spec_from_file_location("benchmark_tool", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    draws = [torch.randn(7, 2), torch.randn(7, 2)]
    entries = tool.write_samples(
        tmp_path, "s_curve", [("heun", 10, draws, {"js": 0.1, "nfe_used": 9})]
    )
    saved = np.load(tmp_path / "s_curve_heun_10.npy")
    assert saved.shape == (2, 7, 2) and np.allclose(saved[1], draws[1].numpy())
    (entry,) = entries
    assert entry["file"] == "s_curve_heun_10.npy" and entry["dataset"] == "s_curve"
    assert (
        entry["sampler"] == "heun" and entry["nfe"] == 9 and entry["nfe_budget"] == 10
    )
    assert entry["scores"]["js"] == 0.1
