"""Input checks shared by the modules, and the progress-bar switch.

Every public function of ddpm_lib checks its arguments where they come in and raises
``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, wrong value) with a
message that names the argument, what it got and what is allowed. The checks are cheap:
type tests and, for data, one pass to find non-finite values; a sampler's loop adds no
pass over its points.

Progress bars: every progress bar in ddpm_lib asks :func:`show_progress`. Setting the
environment variable ``DDPM_PROGRESS=0`` turns all of them off (the tests and the book's
build do this); otherwise each function's own ``progress=`` argument decides (default True).
"""

import math
import numbers
import os

import torch


def show_progress(progress: bool) -> bool:
    """Whether to draw a progress bar: False if ``DDPM_PROGRESS=0`` is set, else ``progress``."""
    if os.environ.get("DDPM_PROGRESS", "").strip() == "0":
        return False
    return bool(progress)


def progress_bar(iterable, desc: str = "", progress: bool = True, **kwargs):
    """``tqdm.auto.tqdm(iterable)``, drawn only if :func:`show_progress` says so.

    The chapters' own loops use it too, so that ``DDPM_PROGRESS=0`` also keeps their
    bars (notebook widgets) out of the built book. Extra keyword arguments go to tqdm.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=not show_progress(progress), **kwargs)


def is_count(n, minimum: int = 1) -> bool:
    """True for an integer (Python or numpy, not bool) ≥ ``minimum``."""
    return isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= minimum


def check_count(n, name: str, minimum: int = 1) -> int:
    """Require an integer ≥ ``minimum``; return it as an int."""
    if not is_count(n, minimum):
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {n!r}")
    return int(n)


def check_real(
    v,
    name: str,
    lo: float = -math.inf,
    hi: float = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """Require a finite real number in the interval from ``lo`` to ``hi``; return it as a float.

    Tensors with one element are accepted (``float(v)``).
    """
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")
    v = float(v)
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if not math.isfinite(v) or below or above:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {v!r}")
    return v


def check_generator(generator, name: str = "generator"):
    """Require None or a ``torch.Generator`` (a seed is not one: use ``torch.Generator().manual_seed(s)``)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{name} must be a torch.Generator or None, got {type(generator).__name__} {generator!r}; "
            f"for a seed s use torch.Generator().manual_seed(s)"
        )
    return generator


def check_points(
    x: torch.Tensor, name: str = "x", finite: bool = False
) -> torch.Tensor:
    """Require a float tensor of points, shape (n, d) with n, d ≥ 1 (and, with ``finite``, no NaN or inf)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (n, d), got {type(x).__name__}"
        )
    if x.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, d) (one row per point), got shape {tuple(x.shape)}"
        )
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            f"{name} must hold at least one point of at least one coordinate, got shape {tuple(x.shape)}"
        )
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if finite and x.device.type != "meta":
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        if bad:
            raise ValueError(
                f"{name} must be finite, got {bad} of {x.shape[0]} rows with NaN or inf"
            )
    return x


def check_like(y: torch.Tensor, x: torch.Tensor, name: str, ref: str = "x") -> None:
    """Require ``y`` to be a tensor with the same shape as ``x``."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape {tuple(x.shape)}, got {type(y).__name__}"
        )
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(
            f"{name} must have the same shape as {ref}, {tuple(x.shape)}; got {tuple(y.shape)}"
        )


def check_steps(t, x: torch.Tensor, name: str = "t") -> torch.Tensor:
    """Require integer steps t of shape (n,) (one per point) or a single step; return (n,) on x's device."""
    if isinstance(t, (str, bytes, bool, float)) or t is None:
        raise TypeError(
            f"{name} must be integer steps (an int or an integer tensor of shape (n,)), "
            f"got {type(t).__name__} {t!r}"
        )
    t = torch.as_tensor(t, device=x.device)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer steps, got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.ndim != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name} must have shape (n,) = ({x.shape[0]},) or be a single step, "
            f"got shape {tuple(t.shape)}"
        )
    return t


def randn_like(x: torch.Tensor, generator=None) -> torch.Tensor:
    """N(0, I) noise with the shape, dtype and device of ``x``.

    Drawn on the generator's device and then moved, so a seeded CPU generator gives the
    same numbers whatever the device of ``x``.
    """
    if generator is None:
        return torch.randn(x.shape, dtype=x.dtype, device=x.device)
    return torch.randn(
        x.shape, generator=generator, dtype=x.dtype, device=generator.device
    ).to(x.device)


def model_place(model, default_dtype=torch.float32):
    """(device, dtype) of a model's first floating-point parameter; CPU and ``default_dtype`` for closures."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.dtype.is_floating_point:
                return p.device, p.dtype
    return torch.device("cpu"), default_dtype
