"""Shared set-up for the unit tests of ddpm_lib.

Threads
-------
``torch.set_num_threads(1)`` is called at import, before any test runs. The
machine this book is built on has 2 CPU cores shared with other work. The tensors
in these tests are small (a few thousand rows, a small MLP), so each torch
operation is dominated by per-call overhead: with the default of one intra-op
thread per core the threads mostly wait on each other, which makes these tests
15-20x slower, and when the suite runs beside a notebook kernel (which also
wants both cores) the two oversubscribe the CPU. One thread is both faster and
polite.

Statistical tolerances
----------------------
Every Monte Carlo comparison in this suite uses a tolerance of ``Z`` standard
errors, where the standard error is computed *from the sample itself* (never a
hand-picked number). Every generator is seeded, so the suite is deterministic;
Z = 5 makes a false alarm from an unlucky seed a < 1e-6 event per comparison.

Helpers shared by several test files are exposed as fixtures (``stats``,
``gaussian_eps``, ``numpy_schedule``) rather than imported, as pytest recommends.
"""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault(
    "DDPM_PROGRESS", "0"
)  # no progress bars in test logs (see ddpm_lib._checks)

#: Number of standard errors allowed in every Monte Carlo comparison.
Z = 5.0


@pytest.fixture(autouse=True)
def _no_train_cache(monkeypatch):
    """Every test trains for real: the cache of finished runs (ddpm_lib.train_cache), which
    ``make test`` turns on for the chapters, would let a second identical run in a test
    (e.g. a reproducibility check) be loaded instead of repeated. tests/test_train_cache.py
    turns it on where it is the subject."""
    monkeypatch.delenv("DDPM_TRAIN_CACHE", raising=False)


def pytest_report_header(config):
    """Show which ddpm_lib is under test (useful when a scratch copy is put first on PYTHONPATH)."""
    import ddpm_lib

    return f"ddpm_lib under test: {ddpm_lib.__file__}; torch threads: {torch.get_num_threads()}"


# ---------------------------------------------------------------------------
# Statistics helpers
# ---------------------------------------------------------------------------


def _as_np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().double().numpy()
    return np.asarray(x, dtype=np.float64)


def mean_and_se(x, axis=0):
    """Sample mean along ``axis`` and its standard error s/√n (s from the sample)."""
    x = _as_np(x)
    n = x.shape[axis]
    return x.mean(axis), x.std(axis, ddof=1) / math.sqrt(n)


def cov_and_se(x):
    """Sample covariance of rows x (n, d) and the standard error of each entry.

    Entry (i, j) is the mean of z_ij = (x_i − x̄_i)(x_j − x̄_j); its standard error is
    std(z_ij)/√n, which for i = j is the usual √((m₄ − s⁴)/n) of a sample variance.
    """
    x = _as_np(x)
    c = x - x.mean(0)
    z = c[:, :, None] * c[:, None, :]
    n = x.shape[0]
    return z.mean(0), z.std(0, ddof=1) / math.sqrt(n)


def assert_close_stat(estimate, se, expected, what: str, z: float = Z):
    """Assert |estimate − expected| ≤ z·se elementwise, with a readable message."""
    estimate, se, expected = _as_np(estimate), _as_np(se), _as_np(expected)
    err = np.abs(estimate - expected)
    bad = err > z * se
    assert not np.any(bad), (
        f"{what}: estimate {estimate[bad] if estimate.ndim else estimate} differs from "
        f"{expected[bad] if expected.ndim else expected} by {err[bad] if err.ndim else err}, "
        f"more than {z} standard errors ({(z * se)[bad] if se.ndim else z * se})"
    )


@pytest.fixture(scope="session")
def stats():
    """Statistics helpers: mean_and_se, cov_and_se, assert_close_stat, and Z."""
    return SimpleNamespace(
        mean_and_se=mean_and_se,
        cov_and_se=cov_and_se,
        assert_close_stat=assert_close_stat,
        Z=Z,
    )


# ---------------------------------------------------------------------------
# Independent re-derivation of a schedule, in numpy
# ---------------------------------------------------------------------------


def numpy_schedule(betas_1_to_T) -> SimpleNamespace:
    """ᾱ, α, β̃ and the posterior coefficients re-derived in numpy from β_1..β_T.

    Arrays have length T + 1 and are indexed by the paper's t (index 0: β_0 = 0, ᾱ_0 = 1),
    like ddpm_lib.Schedule; entries at t = 0 of the posterior quantities are NaN (undefined).
    """
    b = np.concatenate([[0.0], _as_np(betas_1_to_T)])
    a = 1.0 - b
    ab = np.cumprod(a)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        post_var = (1 - ab_prev) / (1 - ab) * b
        coef_x0 = np.sqrt(ab_prev) * b / (1 - ab)
        coef_xt = np.sqrt(a) * (1 - ab_prev) / (1 - ab)
        snr = ab / (1 - ab)
    post_var[0] = coef_x0[0] = coef_xt[0] = np.nan
    return SimpleNamespace(
        T=len(b) - 1,
        betas=b,
        alphas=a,
        alpha_bar=ab,
        alpha_bar_prev=ab_prev,
        posterior_variance=post_var,
        coef_x0=coef_x0,
        coef_xt=coef_xt,
        snr=snr,
    )


@pytest.fixture(name="numpy_schedule", scope="session")
def numpy_schedule_fixture():
    """The function :func:`numpy_schedule` (an independent numpy re-derivation of a schedule)."""
    return numpy_schedule


# ---------------------------------------------------------------------------
# The exact ε-predictor for Gaussian data
# ---------------------------------------------------------------------------


def gaussian_eps(sched, m, s):
    """The optimal ε-predictor E[ε | x_t] for data x_0 ~ N(m, s² I).

    With x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε, the pair (ε, x_t) is jointly Gaussian per coordinate:
    E[x_t] = √ᾱ_t m, Var x_t = ᾱ_t s² + 1 − ᾱ_t, Cov(ε, x_t) = √(1−ᾱ_t). Gaussian conditioning gives

        E[ε | x_t] = √(1−ᾱ_t) (x_t − √ᾱ_t m) / (ᾱ_t s² + 1 − ᾱ_t),
        Var[ε | x_t] = 1 − (1−ᾱ_t) / (ᾱ_t s² + 1 − ᾱ_t).

    ᾱ_t is re-derived in numpy from the schedule's β (not read from the library). The
    predictor computes in the dtype of x, like a network would.
    """
    ab = torch.from_numpy(numpy_schedule(sched.betas[1:]).alpha_bar)
    m = torch.as_tensor(m, dtype=torch.float64)

    def predictor(x, t):
        a = ab[t].to(x.dtype)[:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * m.to(x.dtype)) / (a * s**2 + 1 - a)

    return predictor


@pytest.fixture(name="gaussian_eps", scope="session")
def gaussian_eps_fixture():
    """The factory :func:`gaussian_eps` (sched, m, s) -> exact ε-predictor for N(m, s² I) data."""
    return gaussian_eps
