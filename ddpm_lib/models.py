"""The denoising network ε_θ(x_t, t) (chapter 4)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_points, check_steps


class SinusoidalEmbedding(nn.Module):
    """Embed integer steps t as [sin(t ω_k), cos(t ω_k)], ω_k = 10000^{−k/(D/2)}.

    The transformer position code used by Ho et al. (2020, appendix B): nearby
    steps get similar vectors, and the network sees t at every scale.
    Input t: shape (n,); output: shape (n, dim).
    """

    def __init__(self, dim: int = 32, max_period: float = 10_000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"embedding dim must be even, got {dim}")
        freqs = torch.exp(-math.log(max_period) * torch.arange(dim // 2) / (dim // 2))
        self.register_buffer("freqs", freqs)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class MLPDenoiser(nn.Module):
    """A small MLP ε_θ(x_t, t) for 2D data.

    x_t (n, d) and the embedding of t (n, embed_dim) are concatenated and passed
    through ``depth`` hidden layers of width ``hidden`` with SiLU activations.

    With ``learn_variance=False`` the output is ε̂, shape (n, d). With
    ``learn_variance=True`` it is (n, 2d): ε̂ and a second head v ∈ [−1, 1] that
    interpolates log σ_t² between log β̃_t and log β_t (Nichol & Dhariwal 2021;
    see :func:`ddpm_lib.reverse.log_variance`): the "two outputs, mean and variance".
    """

    def __init__(self, d: int = 2, hidden: int = 128, depth: int = 3, embed_dim: int = 32,
                 learn_variance: bool = False):
        super().__init__()
        self.d, self.learn_variance = d, learn_variance
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
            raise ValueError(f"this model takes points with d = {self.d} coordinates, got shape {tuple(x.shape)}")
        t = check_steps(t, x)
        h = self.body(torch.cat([x, self.embed(t)], dim=1))
        eps = self.eps_head(h)
        if self.var_head is None:
            return eps
        return torch.cat([eps, torch.tanh(self.var_head(h))], dim=1)
