"""8×8 handwritten digits in 64 dimensions, and how to score samples of them (chapter 11).

The data are scikit-learn's ``load_digits`` (1797 images of 8×8 pixels with 17 grey
levels 0…16, shipped inside scikit-learn: nothing is downloaded). Each image is a point
x ∈ ℝ⁶⁴, a row of 64 pixels read line by line.

Scaling: as the toy sets of :mod:`ddpm_lib.data`, the digits are standardised by fixed
constants, here ONE shift and ONE scale for all pixels (the mean and standard deviation
of every pixel value of the training digits): x = (p − μ)/s. A per-pixel scale would
divide by zero on the border pixels, which are 0 in almost every image.
:func:`to_pixels` undoes it.

Split: a fixed stratified split, 75 % training digits (the network and the classifier
learn from them) and 25 % held-out digits (never trained on; they give every noise floor).

Scores (each with its floor: the held-out digits scored the same way, :func:`evaluate`):
C2ST against held-out digits (:func:`ddpm_lib.metrics.c2st`, in 64-D), the confidence of
a digit classifier, the agreement of two different classifiers (it needs no label), the
histogram of the classes read, and the distance of each sample to its nearest training
digit (a copy would be at distance 0). Samples drawn for a class (the conditional
network) have a label, so the reader's accuracy on them is measured too (:func:`read_as`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from torch import nn

from ._checks import check_count, check_points, check_steps, is_count
from .guidance import _class_ids, cfg_loss
from .losses import l_simple
from .metrics import _np, c2st
from .models import SinusoidalEmbedding, is_even_count

#: Side of an image in pixels, the dimension d = SIDE², the largest grey level.
SIDE, D, LEVELS = 8, 64, 16
#: Share of the digits held out (stratified by class), and the seed of the split.
HELD_OUT, SPLIT_SEED = 0.25, 0
SPLITS = ("train", "heldout")

#: Chapter 11's network and training: the sigmoid schedule of chapter 1 with T = 100, a
#: conditional ResidualDenoiser (10 classes and the null class) of width 192 with 2
#: blocks, trained by chapter 10's cfg_loss (label dropout): 3000 Adam steps of batch
#: 256 at lr 2e-3.
SETTINGS = dict(
    schedule="sigmoid",
    T=100,
    hidden=192,
    blocks=2,
    classes=10,
    steps=3000,
    batch_size=256,
    lr=2e-3,
    seed=0,
)


class ResidualDenoiser(nn.Module):
    """ε_θ(x_t, t) for d = 64: residual blocks that each see the step t.   (chapter 11)

    The book's :class:`~ddpm_lib.models.MLPDenoiser` reads t once, at its input; in 64
    dimensions, where the denoiser must do very different things at high and low noise,
    this network feeds the embedding of t into every block, as the U-Net of Ho et al.
    2020 does in each residual block.
    Each block: h ← h + W₂ SiLU(W₁ SiLU(LayerNorm(h)) + U e(t)).

    With ``classes`` = C > 0 it is a conditional ε_θ(x_t, t, c) as chapter 10's
    :class:`~ddpm_lib.guidance.ConditionalMLP`: a learned vector per class, and one for
    the null class C ("no label"), is added to the step's embedding before its SiLU:
    e = SiLU(A e_sin(t) + e_c). ``forward(x, t, c)``: c (n,) integers in 0…C, one
    class, or None (the null class; the only choice when C = 0). Trained with
    :func:`ddpm_lib.guidance.cfg_loss` (label dropout), one network gives unconditional
    samples (c = None) and samples of a class, guided by
    :func:`ddpm_lib.guidance.cfg_eps`.
    """

    def __init__(
        self,
        d: int = D,
        hidden: int = 256,
        blocks: int = 2,
        embed_dim: int = 64,
        classes: int = 0,
    ):
        super().__init__()
        check_count(d, "d")
        check_count(hidden, "hidden")
        check_count(blocks, "blocks")
        check_count(classes, "classes", 0)
        if not is_even_count(embed_dim):
            raise ValueError(
                f"embed_dim must be an even integer ≥ 2, got {embed_dim!r}"
            )
        self.d, self.schedule, self.train_config = d, None, {}
        self.kwargs = dict(d=d, hidden=hidden, blocks=blocks, embed_dim=embed_dim)
        self.embed = SinusoidalEmbedding(embed_dim)
        self.time = nn.Sequential(nn.Linear(embed_dim, hidden), nn.SiLU())
        self.inp, self.out = nn.Linear(d, hidden), nn.Linear(hidden, d)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(blocks + 1))
        self.w1 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.u = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.w2 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.classes = classes
        if classes:  # made last: the unconditional layers keep their initial weights
            self.kwargs["classes"] = classes
            self.class_embed = nn.Embedding(classes + 1, hidden)

    @property
    def null(self) -> int:
        """The index of the null class ("no label"), C; only for ``classes`` > 0."""
        if not self.classes:
            raise AttributeError("an unconditional ResidualDenoiser has no null class")
        return self.classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, c=None) -> torch.Tensor:
        check_points(x, "x")
        if x.shape[1] != self.d:
            raise ValueError(f"this model takes d = {self.d}, got {tuple(x.shape)}")
        t = check_steps(t, x)
        if self.schedule is not None:
            t = self.schedule.check_t(t, allow_zero=True)
        e = self.time[0](self.embed(t, x.dtype))
        if self.classes:  # the class's row, or the null row for c = None
            e = e + self.class_embed(
                _class_ids(self.null if c is None else c, x, self.null)
            )
        elif c is not None:
            raise ValueError("c given, but this ResidualDenoiser has classes = 0")
        e = nn.functional.silu(e)
        h = self.inp(x)
        act = nn.functional.silu
        for norm, w1, u, w2 in zip(self.norms, self.w1, self.u, self.w2):
            h = h + w2(act(w1(act(norm(h))) + u(e)))
        return self.out(act(self.norms[-1](h)))


@lru_cache(maxsize=1)
def _split():
    """(pixels, labels) of the training and the held-out digits, as numpy arrays."""
    raw = load_digits()
    p_tr, p_ho, y_tr, y_ho = train_test_split(
        raw.data.astype(np.float64),
        raw.target.astype(np.int64),
        test_size=HELD_OUT,
        stratify=raw.target,
        random_state=SPLIT_SEED,
    )
    return {"train": (p_tr, y_tr), "heldout": (p_ho, y_ho)}


@lru_cache(maxsize=1)
def pixel_scale() -> tuple[float, float]:
    """(μ, s): the mean and standard deviation of all pixel values of the training digits."""
    p = _split()["train"][0]
    return float(p.mean()), float(p.std())


def from_pixels(p) -> torch.Tensor:
    """x = (p − μ)/s: pixels (n, 64) or (n, 8, 8), grey levels 0…16, to points (n, 64), float32."""
    p = torch.as_tensor(np.asarray(p, dtype=np.float64)).reshape(-1, D)
    mu, s = pixel_scale()
    return ((p - mu) / s).float()


def to_pixels(x, clip: bool = True) -> np.ndarray:
    """p = μ + s·x as images (n, 8, 8); ``clip`` keeps the grey levels in [0, 16] (to draw)."""
    x = _np(x, "x")
    if x.shape[1] != D:
        raise ValueError(f"x must have d = {D} coordinates (8×8 pixels), got {x.shape}")
    mu, s = pixel_scale()
    p = mu + s * x
    return (np.clip(p, 0, LEVELS) if clip else p).reshape(-1, SIDE, SIDE)


def load(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The digits of ``split`` ("train" or "heldout"): points (n, 64) float32 and labels (n,)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    p, y = _split()[split]
    return from_pixels(p), torch.from_numpy(y.copy())


def labelled(split: str = "train") -> torch.Tensor:
    """The digits of ``split`` with their classes, (n, 65) float32, the class in the last column.

    The layout of :func:`ddpm_lib.guidance.labelled_data`, which
    :func:`ddpm_lib.guidance.cfg_loss` trains a conditional network on.
    """
    x, y = load(split)
    return torch.cat([x, y[:, None].float()], 1)


@lru_cache(maxsize=1)
def classifiers():
    """Two digit readers fitted on the training digits (standardised as above).

    "reader": multinomial logistic regression, whose class probabilities give the
    confidence; "second": a 5-nearest-neighbour vote, a reader of another kind.
    """
    x, y = load("train")
    x, y = x.double().numpy(), y.numpy()
    reader = LogisticRegression(C=0.1, max_iter=2000).fit(x, y)
    second = KNeighborsClassifier(5).fit(x, y)
    return reader, second


def read_digits(x) -> dict:
    """What the readers make of each image in ``x`` (n, 64).

    Returns a dict of numpy arrays: ``label`` (the reader's class), ``confidence`` (its
    largest class probability), ``agree`` (whether the second reader reads the same class).
    """
    x = _np(x, "x")
    if x.shape[1] != D:
        raise ValueError(f"x must have d = {D} coordinates, got shape {x.shape}")
    reader, second = classifiers()
    prob = reader.predict_proba(x)
    label = reader.classes_[prob.argmax(1)]
    return dict(label=label, confidence=prob.max(1), agree=label == second.predict(x))


def read_as(x, c) -> float:
    """The share of the images ``x`` (n, 64) that the reader reads as class ``c``.

    ``c``: one class 0…9 for every image, or (n,) classes, one per image. For held-out
    digits with their true classes this is the reader's accuracy; for samples drawn
    for class c, the accuracy on samples.
    """
    label = read_digits(x)["label"]
    c = (
        np.broadcast_to(np.asarray(c), label.shape)
        if np.ndim(c) == 0
        else np.asarray(c)
    )
    if c.shape != label.shape or c.dtype.kind not in "iu" or c.min() < 0 or c.max() > 9:
        raise ValueError(
            f"c must be a class 0…9 or {len(label)} of them, one per image, got {c!r}"
        )
    return float((label == c).mean())


def class_histogram(labels) -> np.ndarray:
    """The share of each class 0…9 among ``labels``, shape (10,)."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if labels.size == 0 or labels.min() < 0 or labels.max() > 9:
        raise ValueError("labels must be a non-empty array of classes 0…9")
    return np.bincount(labels, minlength=10) / labels.size


def total_variation(p, q) -> float:
    """½ Σ |p_k − q_k| between two histograms: the largest difference in probability of any set of classes."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


@lru_cache(maxsize=1)
def _train_index():
    # A ball tree measures each distance as ‖x − y‖ itself: the brute-force route expands
    # ‖x‖² − 2x·y + ‖y‖², whose rounding puts an exact copy at ~1e-7 instead of 0.
    train = load("train")[0].double().numpy()
    return NearestNeighbors(n_neighbors=1, algorithm="ball_tree").fit(train)


def nearest_train_distance(x) -> np.ndarray:
    """Euclidean distance (standardised units) from each row of ``x`` (n, 64) to its nearest training digit."""
    x = _np(x, "x")
    if x.shape[1] != D:
        raise ValueError(f"x must have d = {D} coordinates, got shape {x.shape}")
    return _train_index().kneighbors(x)[0][:, 0]


def _scores(x, ref_hist, held, seed) -> dict:
    """Every score of one set of images (see :func:`evaluate`)."""
    r = read_digits(x)
    nn = nearest_train_distance(x)
    return dict(
        c2st=c2st(x, held, seed=seed),
        confidence=float(r["confidence"].mean()),
        agreement=float(r["agree"].mean()),
        classes=int((class_histogram(r["label"]) > 0).sum()),
        tv=total_variation(class_histogram(r["label"]), ref_hist),
        nn_median=float(np.median(nn)),
        nn_min=float(nn.min()),
        nn=nn,
    )


def evaluate(samples, seed: int = 0) -> dict:
    """Score ``samples`` (n, 64) and, the same way, real digits: each score beside its floor.

    The samples are compared with the held-out digits H. The floor is a set of real digits
    R that the network never saw scored against H in the same way: R is the held-out
    digits themselves where a score does not compare with H (confidence, agreement,
    classes, histogram, nearest-neighbour distances), and for the C2ST, whose two sets
    must be disjoint, n training digits drawn at random (seeded by ``seed``). The C2ST uses
    min(n, |H|) points of each set. The class histogram is compared (total variation,
    ``tv``) with the class shares of the training digits.

    Returns a dict: for each score k of c2st, confidence, agreement, classes (how many of
    the ten classes the reader finds), tv, nn_median (median distance to the nearest
    training digit), nn_min, the value ``k`` and its floor ``k_floor``; also
    ``heldout_accuracy`` (the reader's accuracy on H, which has labels), ``nn_p1`` (the
    1st percentile of H's nearest-training distances) and ``below_p1`` (the share of
    samples nearer to a training digit than that).
    """
    samples = _np(samples, "samples")
    if samples.shape[1] != D:
        raise ValueError(f"samples must have d = {D} coordinates, got {samples.shape}")
    if not is_count(seed, 0):
        raise TypeError(f"seed must be an integer ≥ 0, got {seed!r}")
    check_count(len(samples), "the number of samples", 10)
    held, held_y = (t.double().numpy() for t in load("heldout"))
    train_x, train_y = (t.double().numpy() for t in load("train"))
    ref_hist = class_histogram(train_y)
    m = min(len(samples), len(held))
    pick = np.random.default_rng(seed).choice(len(train_x), m, replace=False)
    s = _scores(samples, ref_hist, held, seed)
    f = _scores(held, ref_hist, held, seed)
    f["c2st"] = c2st(train_x[pick], held, seed=seed)
    out = {k: s[k] for k in s if k != "nn"}
    out |= {f"{k}_floor": f[k] for k in f if k != "nn"}
    p1 = float(np.percentile(f["nn"], 1))
    out |= dict(
        heldout_accuracy=float((read_digits(held)["label"] == held_y).mean()),
        nn_p1=p1,
        below_p1=float((s["nn"] < p1).mean()),
        n=len(samples),
        n_heldout=len(held),
    )
    return out


def train_digits(cfg: dict = SETTINGS, cache: bool = True, progress: bool = False):
    """Chapter 11's run: a fresh :class:`ResidualDenoiser` trained on the training digits.

    With ``cfg["classes"]`` > 0 the network is conditional and learns from the labelled
    digits (:func:`labelled`) by :func:`ddpm_lib.guidance.cfg_loss` (label dropout);
    otherwise by L_simple on the images alone.

    The same call as the chapter's (same initial weights, data and settings), so that
    the two share the training cache (:mod:`ddpm_lib.train_cache`); ``cache=False``
    always trains (to time it).
    """
    from .schedules import Schedule
    from .train import train

    classes = cfg.get("classes", 0)
    torch.manual_seed(cfg["seed"])  # the initial weights
    net = ResidualDenoiser(hidden=cfg["hidden"], blocks=cfg["blocks"], classes=classes)
    return train(
        net,
        labelled("train") if classes else load("train")[0],
        Schedule.named(cfg["schedule"], cfg["T"]),
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        ema_decay=cfg.get("ema_decay", 0.995),
        seed=cfg["seed"],
        loss_fn=cfg_loss if classes else l_simple,
        progress=progress,
        cache=cache,
    )


def format_metrics(m: dict) -> str:
    """A table: each score of :func:`evaluate` beside its floor.

    If ``m`` also holds ``accuracy`` (the reader's accuracy on samples drawn for a
    class, :func:`read_as`), a last row sets it beside the held-out accuracy.
    """
    rows = [
        ("C2ST vs held-out (0.5 best)", "c2st", "{:.3f}"),
        ("reader's confidence", "confidence", "{:.3f}"),
        ("two readers agree", "agreement", "{:.3f}"),
        ("classes found (of 10)", "classes", "{:d}"),
        ("class histogram TV", "tv", "{:.3f}"),
        ("median NN distance", "nn_median", "{:.2f}"),
        ("smallest NN distance", "nn_min", "{:.2f}"),
    ]
    lines = [f"{'score':<30}{'samples':>9}{'floor':>9}"]
    for name, k, fmt in rows:
        lines.append(f"{name:<30}{fmt.format(m[k]):>9}{fmt.format(m[k + '_floor']):>9}")
    if "accuracy" in m:  # samples drawn for a class: the share read as that class
        lines.append(
            f"{'reader accuracy':<30}{m['accuracy']:>9.3f}{m['heldout_accuracy']:>9.3f}"
        )
    return "\n".join(lines)
