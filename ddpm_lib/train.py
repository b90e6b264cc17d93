"""The training loop, with an exponential moving average of the weights (chapter 1 onwards).

Threads: a small MLP step is dominated by per-operation overhead. Chapter 1 measures
it: on an idle 2-core machine, 2 torch threads were about 30 % faster per step than 1
(1.25 vs 1.80 ms), but 2.65× slower when another job shared the cores, because the
threads then wait on each other. ``train`` therefore runs with one thread unless told
otherwise: the book's tests run two processes at once.

Safety: ``train`` trains a *copy* of the model it is given, so the caller's model is
never changed. It stops at the first non-finite loss or weight with
:class:`TrainingDiverged`, which names the step and the likely cause and keeps the
last finite weights in its ``result``.

Several processes: under ``torch.distributed`` (e.g. started by ``torchrun``), every
process calls ``train`` with the same arguments, and each evaluates the network on
its share of every batch (:mod:`ddpm_lib.distributed`, chapter 11); the result equals
one process's with the same batch size, to rounding.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from . import distributed, train_cache
from ._checks import (
    check_count,
    check_points,
    check_real,
    is_count,
    model_place,
    progress_bar,
)
from .losses import l_simple
from .models import check_model_schedule
from .schedules import Schedule, check_schedule


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch intra-op threads, then restore the previous count."""
    if not is_count(n):
        raise ValueError(
            f"threads (the number of torch threads) must be an integer ≥ 1, got {n!r}"
        )
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    model: the EMA of the weights, the one to sample with (see :func:`ema_decay_at`).
    raw_model: the weights after the last optimiser step (a trained copy of the model passed in).
    losses: the training loss at every step, shape (steps,).
    seconds: wall-clock time of the loop.
    threads: the torch thread count it ran with.
    config: the settings, the schedule (name, T) and the model size (parameter count).
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


class TrainingDiverged(FloatingPointError):
    """Raised by :func:`train` at the first non-finite loss or weight.

    ``step`` is the step (1 … steps) that failed; ``result`` is a :class:`TrainResult`
    with the last finite weights (raw and EMA) and the losses up to the step before.
    """

    def __init__(self, message: str, step: int, result: TrainResult):
        super().__init__(message)
        self.step, self.result = step, result


def ema_decay_at(i: int, decay: float) -> float:
    """The EMA decay used after step i + 1 (i = 0, 1, …): min(decay, (1 + i)/(10 + i)).

    The warm-up lets the average forget the random initial weights: with a fixed decay
    0.995, after 300 steps 0.995³⁰⁰ = 22 % of the average would still be the initial
    weights. Measured on the three toy sets (sigmoid schedule, T = 100, batch 512, lr 5e-3):
    after 300 steps the warm-up EMA has the raw weights' held-out L_simple (within 0.1 %;
    the fixed decay was 27 % worse), and after 5000 steps it is the fixed-decay EMA
    (the warm-up is long forgotten), whose held-out loss is at or below the raw weights'.
    A bias-corrected average (Adam-style, from zero) was measured too and was no better.
    """
    return min(decay, (1 + i) / (10 + i))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """θ_ema ← decay · θ_ema + (1 − decay) · θ."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - decay)


def _finite(params) -> bool:
    return bool(
        torch.isfinite(torch.stack([p.detach().abs().amax() for p in params])).all()
    )


def _check_train_args(
    model,
    data,
    sched,
    steps,
    batch_size,
    lr,
    ema_decay,
    seed,
    loss_fn,
    threads,
    snapshot_at,
):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_points(data, "data", finite=True)
    check_schedule(sched)
    check_count(steps, "steps")
    check_count(batch_size, "batch_size")
    check_real(lr, "lr", lo=0.0, lo_open=True)
    check_real(ema_decay, "ema_decay", lo=0.0, hi=1.0, hi_open=True)
    if not is_count(seed, 0):
        raise TypeError(f"seed must be an integer ≥ 0, got {seed!r}")
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be callable as loss_fn(model, x0, sched, generator=...), got {loss_fn!r}"
        )
    check_count(threads, "threads")
    if isinstance(snapshot_at, (str, bytes)) or not hasattr(snapshot_at, "__iter__"):
        raise TypeError(
            f"snapshot_at must be a collection of steps, e.g. (100, 1000), got {snapshot_at!r}"
        )
    keep = set(snapshot_at)
    if not all(is_count(k) and k <= steps for k in keep):
        raise ValueError(
            f"snapshot_at must hold integer steps from 1 to steps = {steps}, got {sorted(keep, key=str)!r}"
        )
    if getattr(model, "schedule", None) is not None:
        check_model_schedule(model, sched)
    return keep


def train(
    model: torch.nn.Module,
    data: torch.Tensor,
    sched: Schedule,
    steps: int = 4000,
    batch_size: int = 256,
    lr: float = 2e-3,
    ema_decay: float = 0.995,
    seed: int = 0,
    loss_fn=l_simple,
    threads: int = 1,
    progress: bool = True,
    desc: str = "training",
    snapshot_at=(),
    cache: bool = True,
) -> TrainResult:
    """Train a copy of ``model`` by Adam on ``loss_fn`` over mini-batches of ``data`` (n, d).

    Each step draws a batch with replacement, one t and one ε per point
    (Ho et al. 2020, Alg. 1). The learning rate follows a cosine decay from
    ``lr`` to lr/10. The result's ``model`` is the EMA of the weights with a
    warmed-up decay (:func:`ema_decay_at`): sample with it. The same ``seed`` and
    initial weights give the same result. ``model`` itself is not changed; the trained
    copies carry ``sched`` (``.schedule``) and the settings (``.train_config``).
    The batches are moved to the device and dtype of the model's weights.
    ``snapshot_at``: steps (1 … steps) after which a copy of the EMA model is kept in
    the result's ``snapshots``; copying is not counted in the times.
    ``progress``: show a progress bar (unless ``DDPM_PROGRESS=0``, see :mod:`ddpm_lib._checks`).
    ``cache``: when the environment variable ``DDPM_TRAIN_CACHE`` names a folder, a run
    with exactly the same inputs that finished before is loaded from it instead of
    repeated (:mod:`ddpm_lib.train_cache`); False always trains (e.g. to time training).

    Under ``torch.distributed`` with W > 1 processes (:mod:`ddpm_lib.distributed`), each
    process must call ``train`` with the same arguments; ``batch_size`` is the combined
    batch (a multiple of W), each process evaluates batch_size / W of its rows, and
    every process returns the same result: that of one process, to rounding. Only
    rank 0 shows progress; the cache is not used (its runs are single-process ones).

    Raises :class:`TrainingDiverged` at the first non-finite loss or weight.
    """
    keep = _check_train_args(
        model,
        data,
        sched,
        steps,
        batch_size,
        lr,
        ema_decay,
        seed,
        loss_fn,
        threads,
        snapshot_at,
    )
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be True or False, got {cache!r}")
    rank, world_size = distributed.world()
    if world_size > 1:
        agreed = dict(steps=steps, batch_size=batch_size, lr=lr, seed=seed)
        agreed.update(ema_decay=ema_decay, snapshot_at=sorted(keep))
        agreed.update(loss_fn=getattr(loss_fn, "__qualname__", type(loss_fn).__name__))
        distributed.check_ranks(model, data, sched, agreed)
        progress = progress and rank == 0
    key = None
    if (
        cache
        and world_size == 1
        and train_cache.cache_dir()
        and train_cache.cacheable(model, data, loss_fn)
    ):
        settings = dict(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            ema_decay=ema_decay,
            seed=seed,
            threads=threads,
        )
        key = train_cache.run_key(model, data, sched, settings, loss_fn)
        stored = train_cache.load(key, model, sched, keep)
        if stored is not None:
            return _result(*stored)
    # A run that goes into the cache also keeps the EMA weights every SNAPSHOT_EVERY
    # steps, so that a later identical run that asks for snapshots there is served too.
    record = keep if key is None else keep | train_cache.regular_steps(steps)
    result = _train(
        model,
        data,
        sched,
        steps,
        batch_size,
        lr,
        ema_decay,
        seed,
        loss_fn,
        threads,
        progress,
        desc,
        record,
    )
    if key is not None:
        train_cache.store(key, result)
        result.snapshots = [s for s in result.snapshots if s[0] in keep]
    return result


def _train(
    model,
    data,
    sched,
    steps,
    batch_size,
    lr,
    ema_decay,
    seed,
    loss_fn,
    threads,
    progress,
    desc,
    keep,
) -> TrainResult:
    """The loop of :func:`train`, on checked arguments (``keep``: the snapshot steps)."""
    device, dtype = model_place(model)
    gen = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(model)
    model.schedule = sched
    ema = copy.deepcopy(model).requires_grad_(False)
    params = [p for p in model.parameters()]
    # What the loss function calls: the network, or on W > 1 processes the network
    # on this process's rows of the combined batch (see ddpm_lib.distributed).
    world_size = distributed.world()[1]
    net = model if world_size == 1 else distributed.ShardedModel(model, batch_size)
    backup = [p.detach().clone() for p in params]
    # foreach: one update over all tensors at once; the same numbers as the default
    # loop over tensors (bitwise), in less time per step on a CPU.
    opt = torch.optim.Adam(params, lr=lr, foreach=True)
    sched_lr = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.1 + 0.45 * (1 + math.cos(math.pi * i / steps))
    )
    losses = torch.empty(steps)
    snapshots, paused = [], 0.0
    config = dict(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        ema_decay=ema_decay,
        ema_warmup="min(decay, (1+i)/(10+i))",
        seed=seed,
        schedule=sched.name,
        T=sched.T,
        parameters=sum(p.numel() for p in params),
        model=dict(getattr(model, "kwargs", {})) or type(model).__name__,
        loss_fn=getattr(loss_fn, "__name__", repr(loss_fn)),
    )
    if world_size > 1:
        config["processes"] = world_size
    model.train()
    with torch_threads(threads):
        start = time.perf_counter()
        for i in progress_bar(range(steps), desc, progress, mininterval=0.5):
            batch = data[
                torch.randint(0, data.shape[0], (batch_size,), generator=gen)
            ].to(device=device, dtype=dtype)
            loss = loss_fn(net, batch, sched, generator=gen)
            if not torch.isfinite(loss):
                cause = (
                    "the loss function returned a non-finite value"
                    if i == 0
                    else "the weights diverged (is the learning rate too large?) or the loss function "
                    "returned a non-finite value"
                )
                _fail(
                    i,
                    f"loss = {loss.item()}",
                    cause,
                    model,
                    ema,
                    losses,
                    config,
                    snapshots,
                    start,
                    paused,
                    threads,
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch._foreach_copy_(backup, [p.detach() for p in params])
            opt.step()
            if not _finite(params):
                with torch.no_grad():
                    torch._foreach_copy_([p.detach() for p in params], backup)
                _fail(
                    i,
                    "the weights after the update",
                    f"the learning rate (lr = {lr}) is too large, or the "
                    "gradient is not finite",
                    model,
                    ema,
                    losses,
                    config,
                    snapshots,
                    start,
                    paused,
                    threads,
                )
            sched_lr.step()
            ema_update(ema, model, ema_decay_at(i, ema_decay))
            losses[i] = loss.detach()
            if i + 1 in keep:
                now = time.perf_counter()
                snapshots.append(
                    (i + 1, now - start - paused, copy.deepcopy(ema).eval())
                )
                paused += time.perf_counter() - now
        seconds = time.perf_counter() - start - paused
    return _result(model, ema, losses, seconds, threads, config, snapshots)


def _result(model, ema, losses, seconds, threads, config, snapshots) -> TrainResult:
    for m in (model, ema):
        m.eval()
        m.train_config = dict(config)
    return TrainResult(ema, model, losses, seconds, threads, config, snapshots)


def _fail(
    i, what, cause, model, ema, losses, config, snapshots, start, paused, threads
):
    config = dict(config, stopped_at=i + 1)
    result = _result(
        model,
        ema,
        losses[:i].clone(),
        time.perf_counter() - start - paused,
        threads,
        config,
        snapshots,
    )
    raise TrainingDiverged(
        f"training stopped at step {i + 1} of {config['steps']}: {what} is not finite. Likely cause: {cause}. "
        f"The data were checked to be finite. The last finite weights are in the exception's .result "
        f"(raw_model and the EMA model), with the losses of the {i} steps before.",
        i + 1,
        result,
    )
