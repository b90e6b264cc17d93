"""The digits data, their scaling, the residual denoiser and the digit scores (chapter 11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ddpm_lib import digits
from ddpm_lib.losses import l_simple
from ddpm_lib.schedules import Schedule
from ddpm_lib.train import train


def test_split_sizes_disjoint_and_stratified():
    x_tr, y_tr = digits.load("train")
    x_ho, y_ho = digits.load("heldout")
    raw = load_digits()
    assert x_tr.shape[1] == x_ho.shape[1] == 64
    assert len(x_tr) + len(x_ho) == len(raw.data)
    assert len(x_ho) == pytest.approx(digits.HELD_OUT * len(raw.data), abs=1)
    # every class keeps its share in both parts (stratified), to one image
    for k in range(10):
        share = (raw.target == k).mean()
        for y in (y_tr, y_ho):
            assert abs((y == k).double().mean().item() - share) <= 1.5 / len(y)
    # the two parts together are the data set, each image once (as multisets of rows)
    both = np.concatenate([digits.to_pixels(x, clip=False) for x in (x_tr, x_ho)])
    got = np.sort(np.round(both.reshape(-1, 64)).astype(int).view("i8," * 63 + "i8"), 0)
    want = np.sort(raw.data.astype(int).view("i8," * 63 + "i8"), 0)
    assert (got == want).all()


def test_scaling_round_trip_and_standardised():
    x, _ = digits.load("train")
    assert abs(x.double().mean().item()) < 1e-6
    assert abs(x.double().std(unbiased=False).item() - 1) < 1e-5
    p = load_digits().data[:10]
    back = digits.to_pixels(digits.from_pixels(p), clip=False).reshape(10, 64)
    assert np.allclose(back, p, atol=1e-5)
    # clipping keeps the grey levels in [0, 16]
    img = digits.to_pixels(torch.full((2, 64), 10.0))
    assert img.shape == (2, 8, 8) and img.max() == digits.LEVELS


def test_bad_inputs():
    with pytest.raises(ValueError, match="split"):
        digits.load("test")
    with pytest.raises(ValueError, match="d = 64"):
        digits.to_pixels(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="labels"):
        digits.class_histogram([0, 11])


def test_nearest_train_distance_is_brute_force():
    x_tr = digits.load("train")[0].double()
    q = torch.randn(30, 64, generator=torch.Generator().manual_seed(0)).double()
    q[:5] = x_tr[[3, 10, 100, 500, 1000]]  # exact copies: distance 0
    brute = torch.cdist(q, x_tr).min(1).values.numpy()
    got = digits.nearest_train_distance(q)
    assert np.allclose(got, brute, atol=1e-6)  # cdist itself rounds to ~1e-7
    assert (got[:5] == 0).all()  # a copy is at distance 0 exactly


def test_histogram_and_total_variation():
    h = digits.class_histogram([0, 0, 1, 9])
    assert h.shape == (10,) and h.sum() == pytest.approx(1) and h[0] == 0.5
    assert digits.total_variation(h, h) == 0
    one_hot = np.eye(10)
    assert digits.total_variation(one_hot[0], one_hot[1]) == 1


def test_evaluate_flags_copies_and_noise():
    """Copies of training digits are caught; noise is told apart; real digits score as the floor."""
    x_tr = digits.load("train")[0]
    copies = digits.evaluate(x_tr[:450])
    assert copies["nn_min"] == 0 and copies["below_p1"] == 1.0
    # the floor: real digits the reader was not fitted on read as well as training digits
    assert copies["heldout_accuracy"] > 0.9
    noise = digits.evaluate(
        torch.randn(450, 64, generator=torch.Generator().manual_seed(1))
    )
    assert noise["c2st"] > 0.85 and noise["c2st_floor"] < 0.6
    assert noise["below_p1"] == 0
    held = digits.evaluate(digits.load("heldout")[0])
    for k in ("confidence", "agreement", "nn_median", "tv", "classes"):
        assert held[k] == held[k + "_floor"]  # the same digits, scored the same way


def test_residual_denoiser_shapes_time_and_training():
    torch.manual_seed(0)
    net = digits.ResidualDenoiser(hidden=32, blocks=2)
    x = torch.randn(7, 64)
    out1, out2 = net(x, torch.full((7,), 3)), net(x, torch.full((7,), 40))
    assert out1.shape == (7, 64) and not torch.allclose(out1, out2)
    with pytest.raises(ValueError, match="d = 64"):
        net(torch.randn(7, 2), torch.ones(7, dtype=torch.long))
    with pytest.raises(ValueError, match="hidden"):
        digits.ResidualDenoiser(hidden=0)
    # the book's training loop trains it (the loss falls) and attaches the schedule
    sched = Schedule.named("sigmoid", 20)
    data = digits.load("train")[0]
    res = train(net, data, sched, steps=150, batch_size=64, progress=False, cache=False)
    assert res.model.schedule.same_as(sched)
    g = torch.Generator().manual_seed(2)
    before = l_simple(net, data[:500], sched, generator=g).item()
    g = torch.Generator().manual_seed(2)
    after = l_simple(res.raw_model, data[:500], sched, generator=g).item()
    assert after < 0.8 * before


def test_train_digits_is_the_chapters_call():
    """Same settings, same weights: the chapter and train_digits share a training run."""
    cfg = dict(digits.SETTINGS, hidden=16, steps=20, T=10)
    a = digits.train_digits(cfg, cache=False)
    torch.manual_seed(cfg["seed"])
    net = digits.ResidualDenoiser(hidden=cfg["hidden"], blocks=cfg["blocks"])
    b = train(
        net,
        digits.load("train")[0],
        Schedule.named(cfg["schedule"], cfg["T"]),
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        seed=cfg["seed"],
        progress=False,
        cache=False,
    )
    assert a.model.schedule.same_as(Schedule.named("sigmoid", 10))
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
