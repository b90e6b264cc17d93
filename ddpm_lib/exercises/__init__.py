"""Exercises that check themselves (every chapter's exercises; the student edition, ``make student``).

After an exercise, one line says whether an answer is right and, if not, why::

    dl.exercises.check("ex-ch2-snr1", first_step_snr_below_1)

It returns a :class:`Verdict` (true when right) that shows as one line in a notebook:
right, or not yet with what was wrong and a hint on the usual mistakes (α for ᾱ, a
missing square root, the sign of the score). It never shows the solution. The label is
the exercise's ``:label:`` in the chapter.

Each chapter's checks are in a module of this package (``ch1``, ``ch2``, …), registered
with :func:`exercise`. A check compares the answer with an independent reference (a
closed form, the ideal denoiser, Monte Carlo with its own standard error), never with
the chapter's solution code, and recognises the usual wrong answers by computing them.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

#: label → check function (answers...) → Verdict; filled by the chapter modules.
CHECKS: dict[str, Callable[..., Verdict]] = {}


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`: ``ok`` (also its truth value) and a message."""

    label: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        mark = "✓ right" if self.ok else "✗ not yet"
        return f"{mark} ({self.label}): {self.message}"

    def __repr__(self) -> str:
        return str(self)


def right(message: str = "matches the reference.") -> tuple[bool, str]:
    """What a check returns for a right answer."""
    return True, message


def wrong(message: str) -> tuple[bool, str]:
    """What a check returns for a wrong answer: say what is off and give a hint, never the solution."""
    return False, message


def exercise(label: str):
    """Register the decorated function as the check of exercise ``label``.

    The function takes the student's answer(s) and returns :func:`right` or :func:`wrong`.
    """

    def register(fn):
        if label in CHECKS:
            raise ValueError(f"exercise {label!r} has two checks")
        CHECKS[label] = fn
        return fn

    return register


class AnswerForm(TypeError):
    """The answer returned something of the wrong form (e.g. a vector for one number)."""


def _on_copies(answer):
    """``answer`` (if callable) called on copies of its tensor and array arguments, so
    that an answer that changes its inputs in place cannot change what the check
    compares it with."""
    if not callable(answer):
        return answer

    def copy(a):
        if isinstance(a, torch.Tensor):
            return a.clone()
        return a.copy() if isinstance(a, np.ndarray) else a

    def called(*args, **kwargs):
        out = answer(*map(copy, args), **{k: copy(v) for k, v in kwargs.items()})
        if getattr(out, "dtype", None) in (torch.float32, np.float32):
            called.gave_float32 = True
        return out

    called.gave_float32 = False
    return called


def check(label: str, *answers) -> Verdict:
    """Check the answer(s) to exercise ``label`` (its ``:label:`` in the chapter).

    Returns a :class:`Verdict`, true when the answer is right. An answer still ``...``
    (the student edition's placeholder) is not yet an answer; an answer that raises when
    the check calls it is wrong, with the error in the message. A function given as an
    answer is called on copies of its inputs.
    """
    if label not in CHECKS:
        known = ", ".join(sorted(CHECKS))
        raise ValueError(f"no exercise labelled {label!r}; the exercises are: {known}")
    if any(a is Ellipsis for a in answers):
        return Verdict(label, False, "replace the `...` with your answer first.")
    wanted = list(inspect.signature(CHECKS[label]).parameters)
    if len(answers) != len(wanted):
        return Verdict(
            label,
            False,
            f"this exercise takes {len(wanted)} answer(s), "
            f"check({label!r}, {', '.join(wanted)}); you gave {len(answers)}.",
        )
    answers = [_on_copies(a) for a in answers]
    try:
        ok, message = CHECKS[label](*answers)
    except AnswerForm as err:
        ok, message = False, str(err)
    except Exception as err:  # the student's code failed inside the check
        ok, message = False, f"calling your answer raised {type(err).__name__}: {err}"
    if not ok and any(getattr(a, "gave_float32", False) for a in answers):
        message += (
            " (Your answer came back in float32, whose rounding alone can exceed the "
            "check's tolerance: compute in float64; `torch.tensor` of Python numbers "
            "is float32 unless given dtype=torch.float64.)"
        )
    return Verdict(label, bool(ok), message)


def as_float(x) -> float:
    """A Python float from a number, a 0-d tensor or array or a 1-element one.

    Raises :class:`AnswerForm` for anything else (reported to the student as such).
    """
    if isinstance(x, (torch.Tensor, np.ndarray)):
        size = x.size if isinstance(x, np.ndarray) else x.numel()
        if size != 1:
            shape = tuple(x.shape)
            raise AnswerForm(f"give one number; your answer returned shape {shape}.")
        return float(x.item())
    if isinstance(x, numbers.Real):
        return float(x)
    raise AnswerForm(f"give one number; your answer returned {type(x).__name__}.")


def alpha_bar(sched) -> torch.Tensor:
    """ᾱ_0 … ᾱ_T as the running product of 1 − β_t in float64, recomputed from β rather
    than read from the schedule (the checks' references are independent of it)."""
    alphas = 1 - sched.betas[1:].double()
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(alphas, 0)])


def close(a, b, rtol: float = 1e-6, atol: float = 0.0) -> bool:
    """|a − b| ≤ atol + rtol·|b| elementwise (numbers or tensors of the same shape), all finite."""
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        return False
    return bool(
        torch.isfinite(a).all() and ((a - b).abs() <= atol + rtol * b.abs()).all()
    )


def first_mistake(answer, mistakes: dict, rtol: float = 1e-6, atol: float = 0.0):
    """The hint of the first known wrong answer that ``answer`` matches, or None.

    ``mistakes``: hint → the value that mistake gives (computed by the check).
    """
    for hint, value in mistakes.items():
        if close(answer, value, rtol, atol):
            return hint
    return None


# register the checks of every chapter
from . import a1, ch1, ch2, ch3, ch4, ch5, ch6, ch7, ch8, ch9, ch10, ch11  # noqa: E402,F401
