"""The digits data, their scaling, the residual denoiser and the digit scores (chapter 11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ddpm_lib import digits
from ddpm_lib import guidance as gd
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
    net = digits.ResidualDenoiser(
        hidden=cfg["hidden"], blocks=cfg["blocks"], classes=cfg["classes"]
    )
    b = train(
        net,
        digits.labelled("train"),
        Schedule.named(cfg["schedule"], cfg["T"]),
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        seed=cfg["seed"],
        loss_fn=gd.cfg_loss,
        progress=False,
        cache=False,
    )
    assert a.model.schedule.same_as(Schedule.named("sigmoid", 10))
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_conditional_denoiser_classes_null_and_initial_weights():
    """classes > 0 adds a class row (and a null row) to the step's embedding, nothing else."""
    torch.manual_seed(0)
    plain = digits.ResidualDenoiser(hidden=32, blocks=2)
    torch.manual_seed(0)
    cond = digits.ResidualDenoiser(hidden=32, blocks=2, classes=10)
    # the unconditional layers are made first, so they start from the same weights
    for (na, pa), (nb, pb) in zip(plain.named_parameters(), cond.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    assert cond.null == 10 and cond.class_embed.num_embeddings == 11
    x, t = torch.randn(6, 64), torch.full((6,), 30)
    # a zero class vector makes the conditional network the plain one
    with torch.no_grad():
        cond.class_embed.weight[4].zero_()
    assert torch.allclose(cond(x, t, 4), plain(x, t), atol=1e-6)
    # None is the null class; different classes give different outputs
    assert torch.equal(cond(x, t), cond(x, t, cond.null))
    assert not torch.allclose(cond(x, t, 3), cond(x, t, 5))
    per_row = cond(x, t, torch.tensor([0, 1, 2, 3, 4, 5]))
    assert torch.allclose(per_row[2], cond(x[2:3], t[2:3], 2)[0], atol=1e-6)
    with pytest.raises(ValueError, match="c must hold classes"):
        cond(x, t, 11)
    with pytest.raises(ValueError, match="classes = 0"):
        plain(x, t, 3)
    with pytest.raises(AttributeError, match="null"):
        plain.null
    with pytest.raises(ValueError, match="classes"):
        digits.ResidualDenoiser(classes=-1)


def test_conditional_denoiser_on_the_meta_device():
    net = digits.ResidualDenoiser(hidden=16, blocks=1, classes=10).to("meta")
    x = torch.empty(5, 64, device="meta")
    out = net(x, torch.full((5,), 7, device="meta"), torch.zeros(5, dtype=torch.long))
    assert out.device.type == "meta" and out.shape == (5, 64)
    eps = gd.cfg_eps(net, 3, 2.0)
    assert eps(x, torch.full((5,), 7, device="meta")).shape == (5, 64)


def test_cfg_eps_guides_the_digits_network():
    """cfg_eps on it is (1 + w) ε(x, t, c) − w ε(x, t, null), computed by hand."""
    torch.manual_seed(1)
    net = digits.ResidualDenoiser(hidden=32, blocks=1, classes=10).eval()
    x, t = torch.randn(8, 64), torch.full((8,), 50)
    c = torch.arange(8) % 10
    with torch.no_grad():
        want = 3.0 * net(x, t, c) - 2.0 * net(x, t, None)
        assert torch.allclose(gd.cfg_eps(net, c, 2.0)(x, t), want, atol=1e-5)
        assert torch.allclose(gd.cfg_eps(net, 7, 0.0)(x, t), net(x, t, 7), atol=1e-6)
    with pytest.raises(TypeError, match="conditional"):
        gd.cfg_eps(digits.ResidualDenoiser(hidden=8, blocks=1), 3, 1.0)


def test_labelled_digits_train_with_label_dropout():
    data = digits.labelled("train")
    x, y = digits.load("train")
    assert data.shape == (len(x), 65)
    assert torch.equal(data[:, :64], x) and torch.equal(data[:, 64].long(), y)
    cfg = dict(digits.SETTINGS, hidden=32, blocks=1, steps=150, T=20, classes=10)
    res = digits.train_digits(cfg, cache=False)
    assert res.model.train_config["loss_fn"] == "cfg_loss"
    sched = Schedule.named("sigmoid", 20)
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(cfg["seed"])
    fresh = digits.ResidualDenoiser(hidden=32, blocks=1, classes=10)
    before = gd.cfg_loss(fresh, data[:600], sched, generator=g).item()
    g = torch.Generator().manual_seed(3)
    after = gd.cfg_loss(res.raw_model, data[:600], sched, generator=g).item()
    assert after < 0.8 * before


def test_read_as_is_the_readers_accuracy():
    x_ho, y_ho = digits.load("heldout")
    reader = digits.classifiers()[0]
    want = reader.score(x_ho.double().numpy(), y_ho.numpy())
    assert digits.read_as(x_ho, y_ho.numpy()) == pytest.approx(want, abs=1e-12)
    zeros = x_ho[y_ho == 0]
    assert digits.read_as(zeros, 0) == pytest.approx(
        (reader.predict(zeros.double().numpy()) == 0).mean(), abs=1e-12
    )
    with pytest.raises(ValueError, match="c must be"):
        digits.read_as(x_ho, 10)
    with pytest.raises(ValueError, match="c must be"):
        digits.read_as(x_ho, y_ho.numpy()[:5])


def test_format_metrics_adds_the_accuracy_row_only_when_measured():
    m = digits.evaluate(digits.load("heldout")[0][:200])
    assert "reader accuracy" not in digits.format_metrics(m)
    m["accuracy"] = 0.25
    last = digits.format_metrics(m).splitlines()[-1]
    assert last.startswith("reader accuracy") and "0.250" in last
    assert f"{m['heldout_accuracy']:.3f}" in last
