"""L_vlb with importance-sampled steps (Nichol & Dhariwal 2021, §3.3; chapter 5).

The one-sample estimate of the bound, L_T + T·L_{t−1} with t uniform
(:func:`ddpm_lib.losses.l_vlb`), is unbiased but very noisy: a few steps near
t = 1 have terms far larger than the rest. Drawing t from p_t instead and
dividing by p_t keeps the estimate unbiased for any p_t > 0,

    E_{t ~ p}[L_{t−1} / p_t] = Σ_t L_{t−1},

and its variance is smallest for p_t ∝ √E[L_{t−1}²]. Nichol & Dhariwal estimate
E[L_{t−1}²] from the last 10 values of each term seen in training, draw t
uniformly until every step has 10 values, and mix a little of the uniform law
into p_t so that no step is ever left out.
"""

from __future__ import annotations

import torch

from ._checks import check_points, check_real
from .losses import prior_kl, vlb_term
from .reverse import check_variance
from .schedules import Schedule, check_schedule


class ImportanceSampledVLB:
    """A ``loss_fn`` for :func:`ddpm_lib.train.train`: L_T + L_{t−1}/p_t with t ~ p_t ∝ √E[L_{t−1}²].

    Args:
        sched: the schedule (fixes T).
        history: how many recent values of each term estimate E[L_{t−1}²] (10 in the paper).
        uniform_share: weight of the uniform law mixed into p_t (1e-3 in the paper's code).
        variance: σ_t² of p_θ, as in :func:`ddpm_lib.losses.vlb_term`.

    The object keeps the history between calls, so use one instance per training run.
    """

    def __init__(
        self,
        sched: Schedule,
        history: int = 10,
        uniform_share: float = 1e-3,
        variance: str = "beta",
    ):
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be an integer ≥ 1, got {history!r}")
        check_schedule(sched)
        check_real(uniform_share, "uniform_share", lo=0.0, hi=1.0, lo_open=True)
        check_variance(variance)
        self.T, self.history, self.uniform_share, self.variance = (
            sched.T,
            history,
            uniform_share,
            variance,
        )
        self.values = torch.zeros(
            sched.T + 1, history, dtype=torch.float64
        )  # ring buffer per step
        self.seen = torch.zeros(
            sched.T + 1, dtype=torch.long
        )  # values ever recorded per step

    def warmed_up(self) -> bool:
        """True once every step t = 1…T has ``history`` recorded values."""
        return bool((self.seen[1:] >= self.history).all())

    def probabilities(self) -> torch.Tensor:
        """p_t for t = 0…T, shape (T + 1,), float64 (p_0 = 0): uniform during the warm-up."""
        p = torch.zeros(self.T + 1, dtype=torch.float64)
        if not self.warmed_up():
            p[1:] = 1.0 / self.T
            return p
        rms = self.values[1:].pow(2).mean(1).sqrt()
        p[1:] = (1 - self.uniform_share) * rms / rms.sum() + self.uniform_share / self.T
        return p

    def record(self, t: torch.Tensor, terms: torch.Tensor) -> None:
        """Add the terms L_{t−1} of one batch to the history, in batch order (the latest ``history`` per step win)."""
        order = torch.argsort(t, stable=True)
        ts, vals = t[order], terms.detach().double()[order]
        counts = torch.bincount(ts, minlength=self.T + 1)
        rank = (
            torch.arange(len(ts)) - (torch.cumsum(counts, 0) - counts)[ts]
        )  # position among equal t
        keep = rank >= counts[ts] - self.history  # only the last `history` fit
        slot = (self.seen[ts] + rank) % self.history
        self.values[ts[keep], slot[keep]] = vals[keep]
        self.seen += counts

    def __call__(
        self, model, x0: torch.Tensor, sched: Schedule, generator=None
    ) -> torch.Tensor:
        """The estimate (L_T + L_{t−1}/p_t) averaged over the batch x0 (n, d), one t ~ p per point; a scalar."""
        check_points(x0, "x0")
        if sched.T != self.T:
            raise ValueError(
                f"this loss was built for T = {self.T}, got a schedule with T = {sched.T}"
            )
        p = self.probabilities()
        t = (
            torch.multinomial(p[1:], x0.shape[0], replacement=True, generator=generator)
            + 1
        )
        terms = vlb_term(model, x0, t.to(x0.device), sched, self.variance, generator)
        self.record(t, terms.cpu())
        return (
            prior_kl(x0, sched)
            + terms / p[t].to(dtype=terms.dtype, device=terms.device)
        ).mean()
