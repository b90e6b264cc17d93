"""Noise schedules: β_t and everything derived from it (chapter 1).

Indexing follows Ho et al. (2020): steps are t = 1, …, T. Every per-step array
in :class:`Schedule` has length T + 1 and is indexed by the paper's t, so that
``sched.alpha_bar[t]`` *is* ᾱ_t. Index 0 describes the data x_0 itself:
β_0 = 0 and ᾱ_0 = 1.

Built-in schedules (but "cosine") are defined in continuous time s = t/T ∈ [0, 1]
by a noise rate b(s) ≥ 0 whose integral over [0, 1] is the same for all of them,
and discretised exactly:

    ᾱ(s) = exp(−∫_0^s b(u) du),      β_t = 1 − ᾱ(t/T) / ᾱ((t−1)/T).      (eq. 1.4)

This keeps every β_t in (0, 1) for any T and makes ᾱ_T the same for every T,
so a schedule chosen for T = 1000 still ends at pure noise for T = 10.
For large T, β_t ≈ b(t/T)/T: the "linear" schedule, b from 0.1 to 20, is within
2.1e-4 of the β_1 = 1e-4 … β_T = 0.02 schedule of Ho et al. (2020) at T = 1000.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from ._checks import is_count

#: ᾱ_T above this means the chain does not reach N(0, I) (chapter 1).
NOISE_TOLERANCE = 1e-3

#: Noise rate at s = 0, and the integrated rate ∫_0^1 b(s) ds shared by every rate-based
#: schedule: (0.1 + 20)/2, the value of a linear rate from 0.1 to 20. So ᾱ_T = e^{−10.05}
#: ≈ 4.3e-5 for all of them, at every T; they differ only in *where* they spend the noise.
B_MIN, B_TOTAL = 0.1, 10.05

#: Offset of the cosine schedule (Nichol & Dhariwal 2021, eq. 17).
COSINE_S = 0.008

#: Largest β_t of the cosine schedule: the formula gives β_T = 1 exactly,
#: which would make the last step destroy *all* information in one go and
#: divide by zero in the posterior; Nichol & Dhariwal cap it at 0.999.
COSINE_MAX_BETA = 0.999


def _shape_integral(name: str, s: torch.Tensor) -> torch.Tensor:
    """G(s) = ∫_0^s g(u) du for the rate shape g of each schedule (g(0) = 0, g(1) = 1)."""
    if name == "constant":
        return (
            s  # g ≡ 1: the rate is constant (B_MIN is then folded into it, see below)
        )
    if name == "linear":
        return s**2 / 2
    if name == "quadratic":
        return s**3 / 3
    if name == "sigmoid":
        # g(s) = (σ(12s − 6) − σ(−6)) / (σ(6) − σ(−6)), a logistic ramp; ∫σ(12u − 6) du = softplus(12u − 6)/12.
        lo, hi = 1 / (1 + math.exp(6.0)), 1 / (1 + math.exp(-6.0))
        ramp = (
            torch.nn.functional.softplus(12 * s - 6) - math.log1p(math.exp(-6.0))
        ) / 12
        return (ramp - lo * s) / (hi - lo)
    # tanh: g(s) = tanh(3s)/tanh(3), a fast rise that saturates; ∫tanh(3u) du = log cosh(3u)/3.
    return torch.log(torch.cosh(3 * s)) / (3 * math.tanh(3.0))


def _integrated_rate(name: str, s: torch.Tensor) -> torch.Tensor:
    """B(s) = ∫_0^s b(u) du with b(u) = B_MIN + c·g(u), and c set so that B(1) = B_TOTAL."""
    if name == "constant":
        return B_TOTAL * s
    G = _shape_integral(name, s)
    return B_MIN * s + (B_TOTAL - B_MIN) * G / _shape_integral(
        name, torch.ones(1, dtype=torch.float64)
    )


SCHEDULES = ("constant", "linear", "quadratic", "sigmoid", "tanh", "cosine")


def make_betas(name: str, T: int) -> torch.Tensor:
    """β_1, …, β_T of a built-in schedule, shape (T,), float64.

    ``name`` is one of :data:`SCHEDULES`. All but "cosine" use the continuous
    rates above (eq. 1.4); "cosine" is ᾱ_t = f(t)/f(0) with
    f(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008 (Nichol & Dhariwal 2021).
    """
    if name not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}"
        )
    _check_T(T)
    T = int(T)
    if name == "cosine" and T < 2:
        # One capped step would end at ᾱ_1 = 1 − 0.999, a hair above the 1e-3 tolerance.
        raise ValueError("the cosine schedule needs T ≥ 2")
    s = torch.arange(T + 1, dtype=torch.float64) / T
    if name == "cosine":
        f = torch.cos((s + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
        log_alpha_bar = torch.log(f / f[0])
        betas = 1 - torch.exp(log_alpha_bar[1:] - log_alpha_bar[:-1])
        return betas.clamp(max=COSINE_MAX_BETA)
    B = _integrated_rate(name, s)
    # 1 − exp(−ΔB) via expm1 keeps full precision for the tiny early β_t.
    return -torch.expm1(-(B[1:] - B[:-1]))


def _check_T(T) -> None:
    if not is_count(T):
        raise ValueError(
            f"T must be an integer ≥ 1 (the number of diffusion steps), got {T!r}"
        )


@dataclass
class Schedule:
    """Everything derived from β_1, …, β_T (Ho et al. 2020, §2 and eq. 7).

    Build one with ``Schedule.named("linear", T=100)`` or from your own
    β values with ``Schedule(betas)``. All arrays are float64 of length T + 1,
    indexed by the paper's t (index 0 describes x_0: β_0 = 0, ᾱ_0 = 1).

    Attributes:
        betas: β_t.                                                (eq. 1.1)
        alphas: α_t = 1 − β_t.
        alpha_bar: ᾱ_t = ∏_{s ≤ t} α_s.                            (eq. 2.3)
        alpha_bar_prev: ᾱ_{t−1} (index 0 repeats ᾱ_0 = 1).
        posterior_variance: β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t; β̃_1 = 0. (eq. 4.3)
        posterior_mean_coef_x0: √ᾱ_{t−1} β_t / (1 − ᾱ_t).         (eq. 4.2)
        posterior_mean_coef_xt: √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).   (eq. 4.2)
        snr: ᾱ_t / (1 − ᾱ_t), infinite at t = 0.
    """

    betas_1_to_T: torch.Tensor
    name: str = "custom"
    T: int = field(init=False)

    def __post_init__(self):
        try:
            b = (
                torch.as_tensor(self.betas_1_to_T, dtype=torch.float64)
                .detach()
                .cpu()
                .clone()
            )
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"betas must be a 1-D sequence of numbers β_1, …, β_T, got {self.betas_1_to_T!r}"
            ) from None
        if not isinstance(self.name, str):
            raise TypeError(
                f"name must be a string, got {type(self.name).__name__} {self.name!r}"
            )
        self._tables = {}
        if b.ndim != 1 or b.numel() < 1:
            raise ValueError(
                f"betas must be a 1-D sequence of T ≥ 1 values, got shape {tuple(b.shape)}"
            )
        if not torch.all((b > 0) & (b < 1)):
            bad = b[~((b > 0) & (b < 1))]
            raise ValueError(
                f"every β_t must lie in the open interval (0, 1); got {bad[:5].tolist()}"
            )
        self.T = b.numel()
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), b])
        self.alphas = 1 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, 0)
        self.alpha_bar_prev = torch.cat(
            [torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]]
        )
        one_minus = 1 - self.alpha_bar
        safe = torch.where(one_minus > 0, one_minus, torch.ones_like(one_minus))
        self.posterior_variance = torch.where(
            one_minus > 0, (1 - self.alpha_bar_prev) / safe * self.betas, 0.0
        )
        self.posterior_mean_coef_x0 = torch.where(
            one_minus > 0, self.alpha_bar_prev.sqrt() * self.betas / safe, 1.0
        )
        self.posterior_mean_coef_xt = torch.where(
            one_minus > 0, self.alphas.sqrt() * (1 - self.alpha_bar_prev) / safe, 0.0
        )
        self.snr = self.alpha_bar / one_minus
        # β̃_t with β̃_1 = 0 (no logarithm) clipped to β̃_2 (or β_1 when T = 1): see reverse.log_variance.
        self.posterior_variance_clipped = self.posterior_variance.clone()
        self.posterior_variance_clipped[1] = (
            self.posterior_variance[2] if self.T > 1 else self.betas[1]
        )
        if self.alpha_bar[-1] > NOISE_TOLERANCE:
            warnings.warn(
                f"this schedule ends at ᾱ_T = {self.alpha_bar[-1].item():.3g} > {NOISE_TOLERANCE:g}: x_T still "
                f"carries {math.sqrt(self.alpha_bar[-1].item()):.2f}·x_0, so it is not N(0, I) and sampling "
                "from N(0, I) will distort the samples (chapter 1)",
                stacklevel=3,  # the user's line, not the dataclass's generated __init__
            )

    @classmethod
    def named(cls, name: str, T: int) -> "Schedule":
        """A built-in schedule (see :func:`make_betas`)."""
        return cls(make_betas(name, T), name=name)

    def check_t(self, t: torch.Tensor, *, allow_zero: bool = False) -> torch.Tensor:
        """Validate integer steps t (an int or shape (n,)) and return them as int64 (same device)."""
        if isinstance(t, (str, bytes, bool, float)) or t is None:
            raise TypeError(
                f"t must be integer steps (an int or an integer tensor), got {type(t).__name__} {t!r}"
            )
        t = torch.as_tensor(t)
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise TypeError(f"t must hold integer steps, got dtype {t.dtype}")
        lo = 0 if allow_zero else 1
        if t.numel() and t.device.type != "meta":
            t_min, t_max = t.aminmax()
            if t_min < lo or t_max > self.T:
                raise ValueError(
                    f"t must lie in {lo}…{self.T} for this schedule, "
                    f"got values from {t_min.item()} to {t_max.item()}"
                )
        return t.long()

    def table(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The per-step array ``name`` (e.g. "alpha_bar") in the dtype and on the device of ``like``, cached."""
        key = (name, like.dtype, like.device)
        if key not in self._tables:
            self._tables[key] = getattr(self, name).to(dtype=like.dtype).to(like.device)
        return self._tables[key]

    def at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``getattr(self, name)[t]`` shaped (n, 1) in the dtype and on the device of ``like``, for broadcasting over x: (n, d)."""
        return self.table(name, like)[t.to(like.device)].unsqueeze(-1)

    def same_as(self, other: "Schedule") -> bool:
        """True if ``other`` has the same T and the same β_t (to 1e-12)."""
        return (
            isinstance(other, Schedule)
            and other.T == self.T
            and torch.allclose(other.betas, self.betas, rtol=1e-12, atol=0.0)
        )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_tables"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"Schedule({self.name!r}, T={self.T}, ᾱ_T={self.alpha_bar[-1].item():.2e})"
        )


def check_schedule(sched, name: str = "sched") -> "Schedule":
    """Require a :class:`Schedule` (e.g. ``Schedule.named("linear", T=100)``)."""
    if not isinstance(sched, Schedule):
        raise TypeError(
            f"{name} must be a ddpm_lib Schedule, e.g. Schedule.named('linear', T=100); "
            f"got {type(sched).__name__} {sched!r}"
        )
    return sched
