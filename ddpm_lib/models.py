"""The denoising network ε_θ(x_t, t), and saving it with its schedule (chapter 4).

A model trained by :func:`ddpm_lib.train.train` carries the schedule it was trained
with (``model.schedule``) and the training settings (``model.train_config``); the
samplers refuse a different schedule. :func:`save_model` and :func:`load_model` store
and restore all of it in one file of tensors and plain data, which loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_count, check_points, check_steps
from .schedules import Schedule, check_schedule


class SinusoidalEmbedding(nn.Module):
    """Embed integer steps t as [sin(t ω_k), cos(t ω_k)], ω_k = 10000^{−k/(D/2)}.

    The transformer position code used by Ho et al. (2020, appendix B): nearby
    steps get similar vectors, and the network sees t at every scale.
    Input t: shape (n,); output: shape (n, dim), in ``dtype`` (default float32).
    The angles t ω_k are computed in float32 (float64 if ``dtype`` is float64) on t's
    device, whatever the output dtype: in float16 an angle near 1000 would be off by ~0.5 rad.
    """

    def __init__(self, dim: int = 32, max_period: float = 10_000.0):
        super().__init__()
        if not is_even_count(dim):
            raise ValueError(
                f"dim (the embedding size) must be an even integer ≥ 2, got {dim!r}"
            )
        self.dim, self.max_period = int(dim), float(max_period)

    def forward(
        self, t: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        work = torch.float64 if dtype == torch.float64 else torch.float32
        half = self.dim // 2
        freqs = torch.exp(
            -math.log(self.max_period) * torch.arange(half, device=t.device) / half
        ).to(work)
        angles = t.to(work)[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1).to(dtype)


def is_even_count(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 2 and n % 2 == 0


class MLPDenoiser(nn.Module):
    """A small MLP ε_θ(x_t, t) for 2D data.

    x_t (n, d) and the embedding of t (n, embed_dim) are concatenated and passed
    through ``depth`` hidden layers of width ``hidden`` with SiLU activations.

    With ``learn_variance=False`` the output is ε̂, shape (n, d). With
    ``learn_variance=True`` it is (n, 2d): ε̂ and a second head ν ∈ [−1, 1] that
    interpolates log σ_t² between log β̃_t and log β_t (Nichol & Dhariwal 2021;
    see :func:`ddpm_lib.reverse.log_variance`): the "two outputs, mean and variance".

    ``schedule`` (a :class:`~ddpm_lib.schedules.Schedule`, or None until trained) is the
    schedule the weights were trained with; when set, t must lie in 0…T. The model runs
    in the dtype and on the device of its weights (``model.to(...)``); x must match them.
    """

    def __init__(
        self,
        d: int = 2,
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 32,
        learn_variance: bool = False,
    ):
        super().__init__()
        check_count(d, "d")
        check_count(hidden, "hidden")
        check_count(depth, "depth")
        if not is_even_count(embed_dim):
            raise ValueError(
                f"embed_dim must be an even integer ≥ 2, got {embed_dim!r}"
            )
        if not isinstance(learn_variance, bool):
            raise TypeError(
                f"learn_variance must be True or False, got {learn_variance!r}"
            )
        self.d, self.learn_variance = d, learn_variance
        self.kwargs = dict(
            d=d,
            hidden=hidden,
            depth=depth,
            embed_dim=embed_dim,
            learn_variance=learn_variance,
        )
        self.schedule: Schedule | None = None
        self.train_config: dict = {}
        self.embed = SinusoidalEmbedding(embed_dim)
        layers, width = [], d + embed_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.eps_head = nn.Linear(hidden, d)
        self.var_head = nn.Linear(hidden, d) if learn_variance else None

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_points(x, "x")
        if x.shape[1] != self.d:
            raise ValueError(
                f"this model takes points with d = {self.d} coordinates, got shape {tuple(x.shape)}"
            )
        w = self.eps_head.weight
        if x.dtype != w.dtype or x.device != w.device:
            raise TypeError(
                f"x is {x.dtype} on {x.device} but the model's weights are {w.dtype} on {w.device}; "
                f"move one to the other (x.to(...) or model.to(...))"
            )
        t = check_steps(t, x)
        if self.schedule is not None:
            t = self.schedule.check_t(t, allow_zero=True)
        elif t.numel() and t.device.type != "meta" and t.min() < 0:
            raise ValueError(f"t must hold steps ≥ 0, got {t.min().item()}")
        h = self.body(torch.cat([x, self.embed(t, x.dtype)], dim=1))
        eps = self.eps_head(h)
        if self.var_head is None:
            return eps
        return torch.cat([eps, torch.tanh(self.var_head(h))], dim=1)


def check_model_schedule(model, sched: Schedule) -> None:
    """Refuse to run ``model`` with a schedule other than the one it was trained with.

    Models without a ``schedule`` attribute (plain modules, closures such as the ideal
    denoiser) are accepted with any schedule.
    """
    check_schedule(sched)
    if not callable(model):
        raise TypeError(
            f"model must be callable as model(x, t) -> ε̂, got {type(model).__name__}"
        )
    trained = getattr(model, "schedule", None)
    if isinstance(trained, Schedule) and not trained.same_as(sched):
        raise ValueError(
            f"this model was trained with {trained!r}, not with sched = {sched!r}; sample with "
            f"the schedule it was trained with (model.schedule)"
        )


def save_model(model: MLPDenoiser, path) -> None:
    """Save an :class:`MLPDenoiser` with its architecture, schedule and training settings in one file.

    Only tensors and plain Python data are stored, so :func:`load_model` can read the
    file with ``torch.load(weights_only=True)``.
    """
    if not isinstance(model, MLPDenoiser):
        raise TypeError(f"model must be an MLPDenoiser, got {type(model).__name__}")
    sched = model.schedule
    torch.save(
        {
            "format": "ddpm_lib.MLPDenoiser/1",
            "kwargs": dict(model.kwargs),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "schedule": None
            if sched is None
            else {"name": sched.name, "betas": sched.betas[1:].clone()},
            "train_config": _plain(model.train_config),
        },
        path,
    )


def load_model(path, map_location="cpu") -> MLPDenoiser:
    """Load a model saved by :func:`save_model` (with ``weights_only=True``), in eval mode."""
    blob = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "ddpm_lib.MLPDenoiser/1":
        raise ValueError(
            f"{path!r} is not a file written by ddpm_lib.models.save_model"
        )
    model = MLPDenoiser(**blob["kwargs"])
    model.load_state_dict(blob["state_dict"])
    if blob["schedule"] is not None:
        model.schedule = Schedule(
            blob["schedule"]["betas"], name=blob["schedule"]["name"]
        )
    model.train_config = dict(blob["train_config"])
    return model.to(map_location).eval()


def _plain(value):
    """``value`` with tuples turned into lists and anything but numbers, strings, None, tensors,
    lists and dicts turned into its repr, so that weights_only loading accepts it."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    return repr(value)
