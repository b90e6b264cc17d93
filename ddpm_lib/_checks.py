"""Input checks shared by the modules: clear errors on bad shapes and counts."""

import numbers

import torch


def is_count(n, minimum: int = 1) -> bool:
    """True for an integer (Python or numpy, not bool) ≥ ``minimum``."""
    return isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= minimum


def check_points(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Require a float tensor of points, shape (n, d)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, d), got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) (one row per point), got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_like(y: torch.Tensor, x: torch.Tensor, name: str, ref: str = "x") -> None:
    """Require ``y`` to have the same shape as ``x``."""
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"{name} must have the same shape as {ref}, {tuple(x.shape)}; got {tuple(y.shape)}")


def check_steps(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Require t of shape (n,) (one step per point) or a single step, broadcast to (n,)."""
    t = torch.as_tensor(t)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.ndim != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"t must have shape (n,) = ({x.shape[0]},) or be a single step, got shape {tuple(t.shape)}")
    return t
