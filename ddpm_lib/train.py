"""The training loop, with an exponential moving average of the weights (chapter 1 onwards).

Threads: on a 2-core CPU, a small MLP step is dominated by per-operation
overhead, and torch's default of one intra-op thread per core makes each step
*slower* (the threads mostly wait on each other), and far slower still when
another job shares the cores. ``train`` therefore runs with one thread unless
told otherwise; chapter 1 shows the measurement.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ._checks import check_points, is_count
from .losses import l_simple
from .schedules import Schedule


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch intra-op threads, then restore the previous count."""
    if not is_count(n):
        raise ValueError(f"the number of threads must be an integer ≥ 1, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    model: the EMA of the weights, the one to sample with.
    raw_model: the weights after the last optimiser step.
    losses: the training loss at every step, shape (steps,).
    seconds: wall-clock time of the loop.
    threads: the torch thread count it ran with.
    snapshots: (step, seconds so far, copy of the EMA model) after each step asked for
        with ``snapshot_at`` (chapter 6 plots quality against training time with them).
    """

    model: torch.nn.Module
    raw_model: torch.nn.Module
    losses: torch.Tensor
    seconds: float
    threads: int
    config: dict = field(default_factory=dict)
    snapshots: list = field(default_factory=list)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """θ_ema ← decay · θ_ema + (1 − decay) · θ."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - decay)


def train(model: torch.nn.Module, data: torch.Tensor, sched: Schedule, steps: int = 4000, batch_size: int = 256,
          lr: float = 2e-3, ema_decay: float = 0.995, seed: int = 0, loss_fn=l_simple, threads: int = 1,
          progress: bool = True, desc: str = "training", snapshot_at=()) -> TrainResult:
    """Train ``model`` by Adam on ``loss_fn`` over mini-batches of ``data`` (n, d).

    Each step draws a batch with replacement, one t and one ε per point
    (Ho et al. 2020, Alg. 1). The learning rate follows a cosine decay from
    ``lr`` to lr/10. The result's ``model`` is the EMA of the weights: sample
    with it. The same ``seed`` and initial weights give the same result.
    ``snapshot_at``: steps (1 … steps) after which a copy of the EMA model is kept in
    the result's ``snapshots``; copying is not counted in the times.
    """
    check_points(data, "data")
    if not is_count(steps):
        raise ValueError(f"steps must be an integer ≥ 1, got {steps!r}")
    keep = set(snapshot_at)
    if not all(is_count(k) and k <= steps for k in keep):
        raise ValueError(f"snapshot_at must hold integer steps from 1 to steps = {steps}, got {sorted(keep, key=str)!r}")
    if not 0 <= ema_decay < 1:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay!r}")
    gen = torch.Generator().manual_seed(seed)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched_lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.1 + 0.45 * (1 + math.cos(math.pi * i / steps)))
    losses = torch.empty(steps)
    snapshots, paused = [], 0.0
    model.train()
    with torch_threads(threads):
        start = time.perf_counter()
        for i in tqdm(range(steps), desc=desc, disable=not progress, mininterval=0.5):
            batch = data[torch.randint(0, data.shape[0], (batch_size,), generator=gen)]
            loss = loss_fn(model, batch, sched, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched_lr.step()
            ema_update(ema, model, ema_decay)
            losses[i] = loss.detach()
            if i + 1 in keep:
                now = time.perf_counter()
                snapshots.append((i + 1, now - start - paused, copy.deepcopy(ema).eval()))
                paused += time.perf_counter() - now
        seconds = time.perf_counter() - start - paused
    model.eval()
    ema.eval()
    config = dict(steps=steps, batch_size=batch_size, lr=lr, ema_decay=ema_decay, seed=seed)
    return TrainResult(ema, model, losses, seconds, threads, config, snapshots)
