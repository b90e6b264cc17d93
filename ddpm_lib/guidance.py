"""Conditional generation and guidance, with the exact laws of labelled toy data (chapter 10).

Labels: the quadrature nodes of :func:`ddpm_lib.density.toy_law` run along the data's
curve, so cutting them into contiguous runs cuts the curve into arcs, and each arc is a
class with an exact law p(x_0 | c) (a mixture of its nodes) of prior π_c (its nodes'
weight). For the moons with two classes the runs are the two moons: nodes 0…299 are
the upper moon and 300…599 the lower one (``density._curve``). Every noised law
p(x_t | c) and p(x_t) is again a mixture, so the posterior p(c | x_t), the class
scores, the ideal conditional denoisers and the guided score of

    p_w(x_t | c) ∝ p(x_t | c)^{1+w} / p(x_t)^w                       (eq. 10.3)

are exact at every step. Classifier-free guidance (Ho & Salimans 2022) combines the
conditional and unconditional ε-predictions as (1 + w) ε(x_t, c) − w ε(x_t);
classifier guidance (Dhariwal & Nichol 2021) adds the gradient of a noise-aware
classifier's log p(c | x_t). One conditional network with a "null" class learns both
ε(x_t, c) and ε(x_t) (label dropout, :func:`cfg_loss`).

Tensors: points x (n, d); steps t (n,) integers or one step; classes c (n,) integers or
one class. Exact quantities are computed in float64 on the CPU and returned in the
dtype and on the device of x.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._checks import (
    check_count,
    check_generator,
    check_points,
    check_real,
    check_steps,
    is_count,
    randn_like,
)
from .data import GaussianMixture
from .density import ideal_eps, toy_law
from .forward import q_sample
from .losses import sample_t
from .models import SinusoidalEmbedding, check_model_schedule, is_even_count
from .schedules import Schedule, check_schedule

#: Probability of replacing a training label by the null class (Ho & Salimans 2022
#: found 0.1 and 0.2 better than 0.5 on ImageNet; 0.1 leaves the conditional task
#: 90 % of the batch).
P_UNCOND = 0.1


@dataclass(frozen=True)
class ClassLaws:
    """Exact class-conditional laws of a labelled toy set (see :func:`class_laws`).

    full: the whole law p(x_0) (a :class:`GaussianMixture`); node_class: (K,) the class
    of each of its nodes; laws: p(x_0 | c) for c = 0 … C−1; priors: (C,) π_c.
    """

    full: GaussianMixture
    node_class: torch.Tensor
    laws: tuple
    priors: torch.Tensor

    @property
    def classes(self) -> int:
        return len(self.laws)


def class_laws(name: str = "moons", classes: int = 2) -> ClassLaws:
    """Cut the nodes of ``toy_law(name)`` into ``classes`` contiguous arcs: class c is arc c.

    For the moons with ``classes=2`` each class is one moon (nodes 0…299 the upper one).
    p(x_0 | c) is the mixture of the arc's nodes with their weights renormalised, and
    π_c the arc's share of the weight, so Σ_c π_c p(x_0 | c) = p(x_0) exactly.
    """
    check_count(classes, "classes")
    full = toy_law(name)
    K = full.means.shape[0]
    if classes > K:
        raise ValueError(f"classes must be at most the {K} nodes, got {classes}")
    node_class = torch.arange(K) * classes // K  # contiguous runs of equal length
    laws, priors = [], []
    for c in range(classes):
        idx = node_class == c
        laws.append(GaussianMixture(full.means[idx], full.stds[idx], full.weights[idx]))
        priors.append(full.weights[idx].sum())
    return ClassLaws(full, node_class, tuple(laws), torch.stack(priors))


def _check_laws(laws) -> None:
    if not isinstance(laws, ClassLaws):
        raise TypeError(
            f"laws must be a ClassLaws (see class_laws), got {type(laws).__name__}"
        )


def _check_class(c, laws: ClassLaws, name: str = "c") -> int:
    if not is_count(c, 0) or c >= laws.classes:
        raise ValueError(f"{name} must be a class in 0…{laws.classes - 1}, got {c!r}")
    return int(c)


def _check_w(w) -> float:
    return check_real(w, "w (the guidance weight)", lo=0.0)


def _law_at(law: GaussianMixture, alpha_bar: float) -> GaussianMixture:
    """The law of √ᾱ x_0 + √(1−ᾱ) ε (ᾱ = 1: the law itself)."""
    check_real(alpha_bar, "alpha_bar", lo=0.0, hi=1.0, lo_open=True)
    return law if alpha_bar == 1.0 else law.noised(alpha_bar)


def labelled_sample(laws: ClassLaws, n: int, generator=None):
    """n exact draws (x, c) of the labelled law: a node k ~ weights, x = m_k + s_k z, c = its class.

    Returns x (n, d) float32 and c (n,) int64.
    """
    _check_laws(laws)
    check_count(n, "n")
    check_generator(generator)
    full = laws.full
    k = torch.multinomial(full.weights, n, replacement=True, generator=generator)
    z = torch.randn((n, full.d), generator=generator, dtype=torch.float64)
    return (full.means[k] + full.stds[k] * z).float(), laws.node_class[k]


def labelled_data(laws: ClassLaws, n: int, seed: int = 0) -> torch.Tensor:
    """Training data for :func:`ddpm_lib.train.train`: (n, d + 1) float32, the class in the last column."""
    if not is_count(seed, 0):
        raise TypeError(f"seed must be an integer ≥ 0, got {seed!r}")
    x, c = labelled_sample(laws, n, torch.Generator().manual_seed(seed))
    return torch.cat([x, c[:, None].float()], 1)


def class_log_densities(
    laws: ClassLaws, x: torch.Tensor, alpha_bar: float = 1.0
) -> torch.Tensor:
    """log p(x_t | c) for every class, shape (n, C), float64 (x_t = x at signal share ᾱ)."""
    _check_laws(laws)
    check_points(x, "x")
    return torch.stack([_law_at(law, alpha_bar).log_prob(x) for law in laws.laws], 1)


def log_posterior(
    laws: ClassLaws, x: torch.Tensor, alpha_bar: float = 1.0
) -> torch.Tensor:
    """The exact classifier log p(c | x_t) = log π_c + log p(x_t | c) − log p(x_t), (n, C).   (eq. 10.1)"""
    _check_laws(laws)
    joint = laws.priors.log() + class_log_densities(laws, x, alpha_bar).cpu()
    return (joint - torch.logsumexp(joint, 1, keepdim=True)).to(x.device)


def bayes_classify(laws: ClassLaws, x: torch.Tensor) -> torch.Tensor:
    """The Bayes classifier at the data level, argmax_c π_c p(x | c), shape (n,) int64."""
    return log_posterior(laws, x).argmax(1)


def guided_log_density(
    laws: ClassLaws, x: torch.Tensor, c: int, w: float, alpha_bar: float = 1.0
) -> torch.Tensor:
    """(1 + w) log p(x_t | c) − w log p(x_t), (n,) float64: log p_w(x_t | c) up to a constant.   (eq. 10.3)"""
    c, w = _check_class(c, laws), _check_w(w)
    log_c = class_log_densities(laws, x, alpha_bar)[:, c]
    log_all = _law_at(laws.full, alpha_bar).log_prob(x)
    return (1 + w) * log_c - w * log_all


def guided_score(
    laws: ClassLaws, x: torch.Tensor, c: int, w: float, alpha_bar: float = 1.0
) -> torch.Tensor:
    """∇ log p_w(x_t | c) = (1 + w) ∇ log p(x_t | c) − w ∇ log p(x_t), exact, shape of x.   (eq. 10.3)

    Equally ∇ log p(x_t | c) + w ∇ log p(c | x_t) (eq. 10.3): the class score pushed
    by w times the classifier's gradient.
    """
    _check_laws(laws)
    c, w = _check_class(c, laws), _check_w(w)
    check_points(x, "x")
    s_c = _law_at(laws.laws[c], alpha_bar).score(x)
    s_all = _law_at(laws.full, alpha_bar).score(x)
    return (1 + w) * s_c - w * s_all


def cfg_combine(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float):
    """Classifier-free guidance: ε̃ = (1 + w) ε(x_t, c) − w ε(x_t).   (eq. 10.4; Ho & Salimans 2022)"""
    w = _check_w(w)
    if eps_cond.shape != eps_uncond.shape:
        raise ValueError(
            f"eps_cond and eps_uncond must have the same shape, got "
            f"{tuple(eps_cond.shape)} and {tuple(eps_uncond.shape)}"
        )
    return (1 + w) * eps_cond - w * eps_uncond


def classifier_guided_eps(
    eps: torch.Tensor, grad_log_post: torch.Tensor, sched: Schedule, t, scale: float
) -> torch.Tensor:
    """Classifier guidance: ε̃ = ε(x_t) − s √(1−ᾱ_t) ∇ log p(c | x_t).   (eq. 10.5; Dhariwal & Nichol 2021)

    With the unconditional ε and s = 1 + w this is the guided score of eq. 10.3,
    the same target as :func:`cfg_combine` with weight w.
    """
    check_schedule(sched)
    scale = check_real(scale, "scale", lo=0.0)
    t = sched.check_t(check_steps(t, eps))
    noise = (1 - sched.at("alpha_bar", t, eps)).sqrt()
    return eps - scale * noise * grad_log_post


def _classes_of(c, n: int, top: int, device) -> torch.Tensor:
    """One class per row: c an integer (every row) or (n,) integers, each in 0…top − 1."""
    if is_count(c, 0):
        if c >= top:
            raise ValueError(f"c must be a class in 0…{top - 1}, got {c!r}")
        return torch.full((n,), int(c), dtype=torch.long, device=device)
    if not isinstance(c, torch.Tensor) or c.dtype.is_floating_point or c.ndim != 1:
        raise TypeError(f"c must be a class (int) or an integer tensor (n,), got {c!r}")
    if len(c) != n:
        raise ValueError(f"c must have one class per point, {n}; got {len(c)}")
    if c.numel() and (c.min() < 0 or c.max() >= top):
        raise ValueError(
            f"c must hold classes in 0…{top - 1}, got {c.unique().tolist()}"
        )
    return c.to(device=device, dtype=torch.long)


def ideal_guided_eps(laws: ClassLaws, sched: Schedule, c, w: float):
    """The exact guided denoiser −√(1−ᾱ_t) ∇ log p_w(x_t | c), as a callable (x, t) -> ε̃.

    It is :func:`cfg_combine` of the ideal denoisers of p(x_0 | c) and p(x_0)
    (:func:`ddpm_lib.density.ideal_eps`), so it is exactly what a perfect network
    would give (at w = 0 the class's ideal denoiser alone, without the unconditional
    one); float32 responsibilities, as chapter 6's samplers use. ``c``: one class
    for every point, or (n,) classes, one per row of the x it will be called with.
    """
    _check_laws(laws)
    w = _check_w(w)
    if is_count(c, 0):
        _check_class(c, laws)
    eps_k = [ideal_eps(law, sched, dtype=torch.float32) for law in laws.laws]
    eps_all = ideal_eps(laws.full, sched, dtype=torch.float32)

    def eps(x, t):
        t = check_steps(t, x)
        cls = _classes_of(c, x.shape[0], laws.classes, x.device)
        e_c = torch.empty_like(x)
        for k in cls.unique().tolist():
            rows = cls == k
            e_c[rows] = eps_k[k](x[rows], t[rows])
        if w == 0:  # (1 + 0) ε(x_t | c) − 0 · ε(x_t): the class's own denoiser
            return e_c
        return cfg_combine(e_c, eps_all(x, t), w)

    return eps


def _setup(module, d, classes, hidden, depth, embed_dim) -> None:
    """The argument checks and bookkeeping shared by :class:`ConditionalMLP` and
    :class:`NoisyClassifier` (as :class:`~ddpm_lib.models.MLPDenoiser` keeps them)."""
    for value, name in ((d, "d"), (classes, "classes"), (hidden, "hidden")):
        check_count(value, name)
    check_count(depth, "depth")
    if not is_even_count(embed_dim):
        raise ValueError(f"embed_dim must be an even integer ≥ 2, got {embed_dim!r}")
    module.d, module.classes = d, classes
    module.kwargs = dict(
        d=d, classes=classes, hidden=hidden, depth=depth, embed_dim=embed_dim
    )
    module.schedule = None
    module.train_config = {}
    module.embed = SinusoidalEmbedding(embed_dim)


def _hidden_layers(width: int, hidden: int, depth: int) -> list:
    """``depth`` layers Linear → SiLU, the first from ``width`` inputs, then ``hidden``."""
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    return layers


class ConditionalMLP(nn.Module):
    """ε_θ(x_t, t, c): chapter 4's MLP with a learned class embedding beside the step's.

    The embedding table has C + 1 rows: row C is the "null" class, which stands for
    "no label" and makes the same network the unconditional ε_θ(x_t, t) (Ho & Salimans
    2022). ``forward(x, t, c)``: c (n,) integers in 0…C, one class, or None (the null).
    """

    def __init__(
        self,
        d: int = 2,
        classes: int = 2,
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 32,
    ):
        super().__init__()
        _setup(self, d, classes, hidden, depth, embed_dim)
        self.class_embed = nn.Embedding(classes + 1, embed_dim)
        self.body = nn.Sequential(*_hidden_layers(d + 2 * embed_dim, hidden, depth))
        self.eps_head = nn.Linear(hidden, d)

    @property
    def null(self) -> int:
        """The index of the null class, C."""
        return self.classes

    def forward(self, x: torch.Tensor, t, c=None) -> torch.Tensor:
        check_points(x, "x")
        if x.shape[1] != self.d:
            raise ValueError(
                f"this model takes points with d = {self.d} coordinates, "
                f"got shape {tuple(x.shape)}"
            )
        t = check_steps(t, x)
        if self.schedule is not None:
            t = self.schedule.check_t(t, allow_zero=True)
        c = _class_ids(self.null if c is None else c, x, self.classes)
        h = torch.cat([x, self.embed(t, x.dtype), self.class_embed(c)], 1)
        return self.eps_head(self.body(h))


def _class_ids(c, x: torch.Tensor, top: int) -> torch.Tensor:
    """c as (n,) int64 on x's device, each in 0…top."""
    c = check_steps(c, x, "c")
    if c.numel() and x.device.type != "meta" and (c.min() < 0 or c.max() > top):
        raise ValueError(f"c must hold classes in 0…{top}, got {c.unique().tolist()}")
    return c.long()


def _split_batch(batch: torch.Tensor, model) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_0, c) from a batch of :func:`labelled_data`: the points and the last column."""
    check_points(batch, "batch")
    if batch.shape[1] != model.d + 1:
        raise ValueError(
            f"batch must have d + 1 = {model.d + 1} columns (the class last), "
            f"got shape {tuple(batch.shape)}"
        )
    return batch[:, :-1], batch[:, -1].round().long()


def cfg_loss(model, batch: torch.Tensor, sched: Schedule, generator=None):
    """L_simple of a :class:`ConditionalMLP` with label dropout.   (eq. 10.7; Ho & Salimans 2022)

    batch: (n, d + 1), the class in the last column (:func:`labelled_data`). Each
    label is replaced by the null class with probability :data:`P_UNCOND`, drawn from
    ``generator``, so one network learns ε(x_t, c) and ε(x_t):
    E ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t, c̃)‖².
    """
    x0, c = _split_batch(batch, model)
    drop = torch.rand(len(c), generator=generator).to(c.device) < P_UNCOND
    c = torch.where(drop, torch.full_like(c, model.null), c)
    t = sample_t(len(x0), sched, generator, x0.device)
    eps = randn_like(x0, generator)
    eps_hat = model(q_sample(x0, t, sched, noise=eps), t, c)
    return ((eps - eps_hat) ** 2).sum(1).mean()


class NoisyClassifier(nn.Module):
    """A noise-aware classifier: logits of p_φ(c | x_t) for every class, shape (n, C).

    A small MLP on x_t and the step's embedding (Dhariwal & Nichol 2021 train theirs on
    noised images in the same way); ``forward(x, t)``.
    """

    def __init__(
        self,
        d: int = 2,
        classes: int = 2,
        hidden: int = 64,
        depth: int = 2,
        embed_dim: int = 16,
    ):
        super().__init__()
        _setup(self, d, classes, hidden, depth, embed_dim)
        layers = _hidden_layers(d + embed_dim, hidden, depth)
        self.body = nn.Sequential(*layers, nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        check_points(x, "x")
        if x.shape[1] != self.d:
            raise ValueError(
                f"this classifier takes points with d = {self.d} coordinates, "
                f"got shape {tuple(x.shape)}"
            )
        t = check_steps(t, x)
        if self.schedule is not None:
            t = self.schedule.check_t(t, allow_zero=True)
        return self.body(torch.cat([x, self.embed(t, x.dtype)], 1))


def classifier_loss(model, batch: torch.Tensor, sched: Schedule, generator=None):
    """Cross-entropy −log p_φ(c | x_t) at x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, t ~ U{1…T}.

    batch: (n, d + 1) as in :func:`cfg_loss`. Its minimum over all classifiers is the
    mean entropy of the exact p(c | x_t), which the chapter compares it with.
    """
    x0, c = _split_batch(batch, model)
    t = sample_t(len(x0), sched, generator, x0.device)
    logits = model(q_sample(x0, t, sched, noise=randn_like(x0, generator)), t)
    return nn.functional.cross_entropy(logits, c)


def classifier_grad(classifier, x: torch.Tensor, t, c) -> torch.Tensor:
    """∇_x log p_φ(c | x_t) of a :class:`NoisyClassifier`, by automatic differentiation, shape of x."""
    check_points(x, "x")
    c = _class_ids(c, x, classifier.classes - 1)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logp = torch.log_softmax(classifier(xg, t), 1)
        (grad,) = torch.autograd.grad(logp.gather(1, c[:, None]).sum(), xg)
    return grad


def cfg_eps(model: ConditionalMLP, c, w: float):
    """The network's classifier-free guided ε̃ as a callable (x, t) -> ε̃.   (eq. 10.4)

    ``c``: one class for every point, or (n,) classes, one per row of x. One call of the
    network on the batch stacked twice, with the classes and with the null class (at
    w = 0, where ε̃ is the conditional ε, only with the classes). The
    callable carries the model's ``schedule``, so the samplers refuse another one.
    ``model``: a :class:`ConditionalMLP`, or another conditional network with its
    ``classes`` C ≥ 1 and ``null`` = C, called as model(x, t, c) (chapter 11's digits).
    """
    if not (is_count(getattr(model, "classes", None)) and model.null == model.classes):
        raise TypeError(
            "model must be a conditional network with classes ≥ 1 and a null class "
            f"(a ConditionalMLP), got {type(model).__name__}"
        )
    w = _check_w(w)
    if is_count(c, 0):
        _classes_of(c, 1, model.classes, "cpu")

    def eps(x, t):
        n = x.shape[0]
        t = check_steps(t, x)
        cls = _classes_of(c, n, model.classes, x.device)
        if w == 0:  # (1 + 0) ε(x_t, c) − 0 · ε(x_t): the conditional network alone
            return model(x, t, cls)
        null = torch.full((n,), model.null, device=x.device)
        out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cls, null]))
        return cfg_combine(out[:n], out[n:], w)

    eps.schedule = model.schedule
    return eps


def classifier_guided(model: ConditionalMLP, classifier, c: int, scale: float):
    """Classifier guidance of the network's unconditional ε by ``classifier``, as (x, t) -> ε̃.   (eq. 10.5)"""
    if not isinstance(model, ConditionalMLP):
        raise TypeError(f"model must be a ConditionalMLP, got {type(model).__name__}")
    if not isinstance(classifier, NoisyClassifier):
        raise TypeError(
            f"classifier must be a NoisyClassifier, got {type(classifier).__name__}"
        )
    sched = model.schedule
    if sched is None:
        raise ValueError("model has no schedule: train it first")
    check_model_schedule(classifier, sched)
    scale = check_real(scale, "scale", lo=0.0)

    def eps(x, t):
        e = model(x, t)  # the null class: ε(x_t)
        return classifier_guided_eps(
            e, classifier_grad(classifier, x, t, c), sched, t, scale
        )

    eps.schedule = sched
    return eps


def tilted_sample(
    laws: ClassLaws, c: int, w: float, n: int, generator=None, pool: int = 20
):
    """n draws of the tilted data law p(x_0 | c)^{1+w} / p(x_0)^w, by sampling-importance-resampling.

    p(x_0 | c)^{1+w} / p(x_0)^w = p(x_0 | c) (p(c | x_0)/π_c)^w, so ``pool`` × n exact
    draws of p(x_0 | c) are weighted by p(c | x_0)^w (self-normalised) and n of them
    resampled with replacement. Returns (points (n, d) float32, the effective sample
    size of the weights as a share of the pool, in (0, 1]).
    """
    _check_laws(laws)
    c, w = _check_class(c, laws), _check_w(w)
    check_count(n, "n")
    check_count(pool, "pool")
    check_generator(generator)
    x = laws.laws[c].sample(pool * n, generator=generator)
    logw = w * log_posterior(laws, x.double())[:, c]
    p = torch.softmax(logw, 0)
    ess = 1.0 / (p**2).sum().item() / len(p)
    k = torch.multinomial(p, n, replacement=True, generator=generator)
    return x[k], ess


def arc_shares(laws: ClassLaws, x: torch.Tensor, c: int, arcs: int = 20):
    """Where along class c's curve the points x lie: (arcs,) share of x per arc ÷ its expected share.

    The curve of class c is cut into ``arcs`` arcs of equal numbers of nodes; each point
    goes to the arc of its most responsible node of p(x_0 | c). An exact sample of
    p(x_0 | c) gives 1 on every arc up to Monte Carlo noise.
    """
    _check_laws(laws)
    c = _check_class(c, laws)
    check_points(x, "x")
    check_count(arcs, "arcs")
    law = laws.laws[c]
    K = law.means.shape[0]
    if arcs > K:
        raise ValueError(f"arcs must be at most the class's {K} nodes, got {arcs}")
    node = torch.argmax(law._log_components(x), 1).cpu()
    share = torch.bincount(node * arcs // K, minlength=arcs).double() / len(x)
    expected = torch.zeros(arcs, dtype=torch.float64).index_add_(
        0, torch.arange(K) * arcs // K, law.weights
    )
    return share / expected


def arc_coverage(laws: ClassLaws, x: torch.Tensor, c: int, arcs: int = 20) -> float:
    """Share of the ``arcs`` arcs of class c's curve holding at least half their expected share of x.

    1 when the samples cover the class, smaller when they collapse onto part of it (a
    measure of diversity; see :func:`arc_shares`).
    """
    return float((arc_shares(laws, x, c, arcs) >= 0.5).double().mean())


def mean_entropy(log_post: torch.Tensor) -> float:
    """Mean entropy −Σ_c p log p (nats) of rows of log-probabilities (n, C)."""
    return float(-(log_post.exp() * log_post).sum(1).mean())


__all__ = [
    "P_UNCOND",
    "ClassLaws",
    "ConditionalMLP",
    "NoisyClassifier",
    "arc_coverage",
    "arc_shares",
    "bayes_classify",
    "cfg_combine",
    "cfg_eps",
    "cfg_loss",
    "class_laws",
    "class_log_densities",
    "classifier_grad",
    "classifier_guided",
    "classifier_guided_eps",
    "classifier_loss",
    "guided_log_density",
    "guided_score",
    "ideal_guided_eps",
    "labelled_data",
    "labelled_sample",
    "log_posterior",
    "mean_entropy",
    "tilted_sample",
]
