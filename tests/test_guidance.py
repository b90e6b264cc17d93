"""The guidance module against independent checks: finite differences of the exact
log-densities, Bayes' rule, Monte Carlo with its standard error, and the training loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ddpm_lib as dl
from ddpm_lib import guidance as gd
from ddpm_lib.data import standardisation
from ddpm_lib.density import ideal_eps, toy_law

SCHED = dl.Schedule.named("sigmoid", 100)


@pytest.fixture(scope="module")
def laws():
    return gd.class_laws("moons", 2)


def _points(n=50, seed=0):
    return (
        1.5 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).double()
    )


def _fd_grad(f, x, h=1e-5):
    """Central finite differences of a function (n, d) -> (n,), coordinate by coordinate."""
    out = torch.empty_like(x)
    for i in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, i] = h
        out[:, i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


def test_moons_classes_are_the_two_moons(laws):
    assert laws.classes == 2
    assert torch.allclose(laws.priors, torch.tensor([0.5, 0.5], dtype=torch.float64))
    full = toy_law("moons")
    assert torch.equal(laws.laws[0].means, full.means[:300])
    assert torch.equal(laws.laws[1].means, full.means[300:])
    # in raw units class 0's nodes lie on the upper half circle (cos θ, sin θ) and class
    # 1's on the lower one (1 − cos θ, ½ − sin θ), θ in [0, π], each one moon in full
    mean, std = standardisation("moons")
    raw = [law.means.numpy() * std + mean for law in laws.laws]
    upper, lower = raw[0], raw[1] - np.array([1.0, 0.5])
    assert np.allclose(np.hypot(*upper.T), 1, atol=1e-9) and (upper[:, 1] > 0).all()
    assert np.allclose(np.hypot(*lower.T), 1, atol=1e-9) and (lower[:, 1] < 0).all()
    for moon in (upper, np.stack([-lower[:, 0], -lower[:, 1]], 1)):
        theta = np.arctan2(moon[:, 1], moon[:, 0])
        assert theta.min() < 0.01 and theta.max() > np.pi - 0.01  # from end to end
    # the mixture of the class laws is the full law
    x = _points()
    mix = torch.logsumexp(laws.priors.log() + gd.class_log_densities(laws, x), 1)
    assert torch.allclose(mix, full.log_prob(x), atol=1e-12)


def test_labelled_sample_matches_the_bayes_classifier(laws):
    x, c = gd.labelled_sample(laws, 4000, torch.Generator().manual_seed(1))
    assert x.shape == (4000, 2) and c.dtype == torch.int64
    # the moons hardly overlap: the Bayes classifier recovers almost every label
    assert (gd.bayes_classify(laws, x.double()) == c).double().mean() > 0.999
    # class frequencies: Monte Carlo within 5 standard errors of π_c = ½
    p = c.double().mean().item()
    assert abs(p - 0.5) < 5 * math.sqrt(0.25 / 4000)
    data = gd.labelled_data(laws, 10, seed=3)
    assert data.shape == (10, 3) and set(data[:, 2].tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("ab", [1.0, 0.7, 0.2])
def test_bayes_rule_on_the_score(laws, ab):
    """∇ log p(x_t | c) = ∇ log p(x_t) + ∇ log p(c | x_t), the last by finite differences."""
    x = _points(seed=2) * math.sqrt(ab)
    for c in range(2):
        grad_post = _fd_grad(lambda y: gd.log_posterior(laws, y, ab)[:, c], x)
        law_c = laws.laws[c] if ab == 1.0 else laws.laws[c].noised(ab)
        law = laws.full if ab == 1.0 else laws.full.noised(ab)
        lhs = law_c.score(x)
        scale = lhs.abs().max()
        assert (lhs - law.score(x) - grad_post).abs().max() < 1e-5 * scale


@pytest.mark.parametrize("w", [0.0, 1.0, 3.5])
def test_guided_score_is_the_gradient_of_the_guided_log_density(laws, w):
    ab = 0.5
    x = _points(seed=4) * 0.8
    fd = _fd_grad(lambda y: gd.guided_log_density(laws, y, 1, w, ab), x)
    exact = gd.guided_score(laws, x, 1, w, ab)
    assert (fd - exact).abs().max() < 1e-5 * exact.abs().max()
    # and the class score plus w times the classifier's gradient
    post = _fd_grad(lambda y: gd.log_posterior(laws, y, ab)[:, 1], x)
    alt = laws.laws[1].noised(ab).score(x) + w * post
    assert (alt - exact).abs().max() < 1e-5 * exact.abs().max()


def test_ideal_guided_eps_is_minus_the_scaled_guided_score(laws):
    x = _points(seed=5)
    for t in (1, 30, 80):
        ab = SCHED.alpha_bar[t].item()
        eps = gd.ideal_guided_eps(laws, SCHED, 0, 2.0)(x, t)
        want = -math.sqrt(1 - ab) * gd.guided_score(laws, x, 0, 2.0, ab)
        assert (eps - want).abs().max() < 1e-4 * (1 + want.abs().max())


def test_ideal_guided_eps_at_w_0_is_the_class_denoiser(laws):
    """At w = 0 the guided target is p(x_t | c) itself: ε̃ = −√(1−ᾱ_t) ∇ log p(x_t | c),
    from the class law's own noised score, and the limit of small w."""
    x = _points(seed=7)
    for t in (1, 30, 80):
        ab = SCHED.alpha_bar[t].item()
        eps = gd.ideal_guided_eps(laws, SCHED, 1, 0.0)(x, t).double()
        want = -math.sqrt(1 - ab) * laws.laws[1].noised(ab).score(x.double())
        assert (eps - want).abs().max() < 1e-4 * (1 + want.abs().max())
        near = gd.ideal_guided_eps(laws, SCHED, 1, 1e-9)(x, t).double()
        assert (eps - near).abs().max() < 1e-5 * (1 + want.abs().max())


def test_classifier_guidance_with_the_exact_classifier_is_cfg(laws):
    """ε(x_t) − (1 + w)√(1−ᾱ_t) ∇ log p(c|x_t) = (1 + w) ε(x_t, c) − w ε(x_t), exactly."""
    x, w, t = _points(seed=6), 1.5, 40
    ab = SCHED.alpha_bar[t].item()
    e_all = ideal_eps(laws.full, SCHED)(x, t)
    e_c = ideal_eps(laws.laws[0], SCHED)(x, t)
    grad = _fd_grad(lambda y: gd.log_posterior(laws, y, ab)[:, 0], x)
    cg = gd.classifier_guided_eps(e_all, grad, SCHED, t, 1 + w)
    cfg = gd.cfg_combine(e_c, e_all, w)
    assert (cg - cfg).abs().max() < 1e-5 * cfg.abs().max()


def test_cfg_combine_and_its_checks():
    a, b = torch.ones(3, 2), torch.zeros(3, 2)
    assert torch.equal(gd.cfg_combine(a, b, 0.0), a)
    assert torch.equal(gd.cfg_combine(a, b, 2.0), 3 * a)
    with pytest.raises(ValueError, match="w"):
        gd.cfg_combine(a, b, -1.0)
    with pytest.raises(ValueError, match="eps_cond"):
        gd.cfg_combine(a, torch.zeros(2, 2), 1.0)


def _two_gaussians():
    # two classes that overlap a lot: N((∓½, 0), I), prior ½ each; p(c | x) depends on
    # the first coordinate only
    full = dl.GaussianMixture(
        torch.tensor([[-0.5, 0.0], [0.5, 0.0]], dtype=torch.float64),
        torch.ones(2, 2, dtype=torch.float64),
        torch.tensor([0.5, 0.5], dtype=torch.float64),
    )
    laws = tuple(
        dl.GaussianMixture(full.means[i : i + 1], full.stds[i : i + 1], torch.ones(1))
        for i in range(2)
    )
    return gd.ClassLaws(full, torch.arange(2), laws, full.weights.clone())


def _tilted_mean_posterior(w: float) -> float:
    """E[p(0 | x)] under p(x | 0)^{1+w}/p(x)^w by quadrature (independent of the SIR)."""
    u = torch.linspace(-14, 14, 40_001, dtype=torch.float64)
    dens = torch.exp(-0.5 * (u + 0.5) ** 2)  # p(x_1 | c = 0) up to a constant
    r = torch.sigmoid(-u)  # p(0 | x): log-odds (x_1 − ½)²/2 − (x_1 + ½)²/2 = −x_1
    return ((dens * r ** (w + 1)).sum() / (dens * r**w).sum()).item()


def test_tilted_sample_at_w0_is_the_class_law_and_weights_by_the_posterior():
    laws = _two_gaussians()
    g = torch.Generator().manual_seed(7)
    x0, ess0 = gd.tilted_sample(laws, 0, 0.0, 500, g)
    assert ess0 == pytest.approx(1.0)
    w = 3.0
    xw, ess = gd.tilted_sample(laws, 0, w, 20_000, g)
    assert ess < 0.9
    # E_tilted[p(0 | x)] against quadrature, within 5 standard errors (the SIR's bias
    # with a pool of 20 per draw is far smaller); the weights w ± 1 are far outside
    got = gd.log_posterior(laws, xw.double())[:, 0].exp()
    se = got.std().item() / math.sqrt(len(got))
    assert abs(got.mean().item() - _tilted_mean_posterior(w)) < 5 * se
    for other in (w - 1, w + 1):
        assert abs(_tilted_mean_posterior(other) - _tilted_mean_posterior(w)) > 20 * se


def test_arc_coverage(laws):
    x = laws.laws[0].sample(4000, generator=torch.Generator().manual_seed(8)).double()
    assert gd.arc_coverage(laws, x, 0) == 1.0
    half = x[x[:, 0] > x[:, 0].median()]  # one side of the moon only
    assert gd.arc_coverage(laws, half, 0) <= 0.6


def test_conditional_network_and_losses_train(laws, tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_TRAIN_CACHE", str(tmp_path))
    data = gd.labelled_data(laws, 2000, seed=0)
    torch.manual_seed(0)
    model = gd.ConditionalMLP(hidden=32, depth=2, embed_dim=8)
    run = dl.train(
        model,
        data,
        SCHED,
        steps=200,
        batch_size=128,
        lr=3e-3,
        loss_fn=gd.cfg_loss,
        progress=False,
    )
    assert run.losses[-20:].mean() < run.losses[:20].mean()
    # cached: the same run is loaded, not retrained
    again = dl.train(
        model,
        data,
        SCHED,
        steps=200,
        batch_size=128,
        lr=3e-3,
        loss_fn=gd.cfg_loss,
        progress=False,
    )
    assert torch.equal(again.losses, run.losses)
    assert list(tmp_path.glob("*.pt"))
    m = run.model
    x = torch.randn(7, 2)
    assert m(x, 5, 0).shape == (7, 2) and m(x, 5).shape == (7, 2)
    assert torch.equal(m(x, 5), m(x, 5, torch.full((7,), m.null)))
    with pytest.raises(ValueError, match="c must"):
        m(x, 5, 3)
    eps = gd.cfg_eps(m, 1, 2.0)
    want = 3 * m(x, torch.full((7,), 5), 1) - 2 * m(x, torch.full((7,), 5))
    assert torch.allclose(eps(x, 5), want, atol=1e-6)
    # w = 0 is the conditional network alone, and the limit of small w
    eps0 = gd.cfg_eps(m, 1, 0.0)(x, 5)
    assert torch.allclose(eps0, m(x, torch.full((7,), 5), 1), atol=1e-6)
    assert torch.allclose(eps0, gd.cfg_eps(m, 1, 1e-9)(x, 5), atol=1e-6)
    other = dl.Schedule.named("linear", 100)
    with pytest.raises(ValueError, match="trained with"):
        dl.ddpm_sample(eps, other, 5)
    clf = gd.NoisyClassifier(hidden=16, depth=1, embed_dim=4)
    crun = dl.train(
        clf,
        data,
        SCHED,
        steps=200,
        batch_size=128,
        lr=3e-3,
        loss_fn=gd.classifier_loss,
        progress=False,
    )
    assert crun.losses[-20:].mean() < math.log(2)  # better than guessing
    g = gd.classifier_grad(crun.model, x, torch.full((7,), 5), 0)
    fd = _fd_grad(
        lambda y: torch.log_softmax(crun.model(y.float(), 5), 1)[:, 0].double(),
        x.double(),
        h=1e-2,
    )
    assert torch.allclose(g.double(), fd, atol=1e-3)
    guided = gd.classifier_guided(m, crun.model, 0, 2.0)
    assert guided(x, 5).shape == (7, 2)


def test_argument_checks(laws):
    with pytest.raises(TypeError, match="laws"):
        gd.log_posterior("moons", _points())
    with pytest.raises(ValueError, match="c must"):
        gd.guided_score(laws, _points(), 2, 1.0)
    with pytest.raises(ValueError, match="w"):
        gd.guided_score(laws, _points(), 0, -0.5)
    with pytest.raises(ValueError, match="batch"):
        gd.cfg_loss(gd.ConditionalMLP(), torch.zeros(4, 2), SCHED)
    with pytest.raises(ValueError, match="classes"):
        gd.class_laws("moons", 0)


def test_meta_device_shapes():
    m = gd.ConditionalMLP().to("meta")
    x = torch.empty(5, 2, device="meta")
    assert m(x, torch.ones(5, dtype=torch.long, device="meta"), 1).shape == (5, 2)
    clf = gd.NoisyClassifier().to("meta")
    assert clf(x, torch.ones(5, dtype=torch.long, device="meta")).shape == (5, 2)


def test_a_class_per_row_is_each_class_on_its_rows(laws):
    x = _points(n=12, seed=9).float()
    labels = torch.tensor([0, 1] * 6)
    both = gd.ideal_guided_eps(laws, SCHED, labels, 2.0)(x, 30)
    for c in (0, 1):
        one = gd.ideal_guided_eps(laws, SCHED, c, 2.0)(x[labels == c], 30)
        assert torch.allclose(both[labels == c], one)
    torch.manual_seed(0)
    m = gd.ConditionalMLP(hidden=16, depth=1, embed_dim=4)
    both = gd.cfg_eps(m, labels, 1.0)(x, 7)
    for c in (0, 1):
        one = gd.cfg_eps(m, c, 1.0)(x[labels == c], 7)
        assert torch.allclose(both[labels == c], one, atol=1e-6)
    with pytest.raises(ValueError, match="one class per point"):
        gd.cfg_eps(m, labels[:5], 1.0)(x, 7)
