"""Training on several processes: data parallelism with torch.distributed (chapter 11).

W processes (ranks 0 … W−1, started by ``torchrun`` or :func:`train_parallel`) hold
the same model, data and settings and call :func:`ddpm_lib.train.train` together.
At every step each one draws the randomness of the whole combined batch of B rows
(batch indices, t, ε) from the same seeded generator, so all draw the same numbers,
and evaluates the network on its own B/W rows only: rank r takes rows
r·B/W … (r+1)·B/W − 1. With ℓ_i the loss of row i and R_r the rows of rank r,

    ∇ (1/B) Σ_{i=1}^{B} ℓ_i  =  (1/W) Σ_r g_r,   g_r = ∇ (W/B) Σ_{i ∈ R_r} ℓ_i,   (eq. 11.1)

the gradient of the combined batch's mean is the mean over ranks of the gradient of
each shard's mean. DistributedDataParallel (DDP) averages the ranks' gradients, so
every rank receives the gradient of one process with the combined batch and takes
the same Adam step; the EMA and the snapshots follow. Only the sums are split
differently, so the weights agree with one process to rounding (float64: ~1e-16
relative per step), not bitwise.

How the loss functions stay unchanged: the loss is called on the whole combined
batch (its t and ε are drawn for all B rows, as in one process), but with
:class:`ShardedModel` as the model: it runs the network on the rank's rows and fills
the other rows with the outputs of the other ranks (an all-gather, without
gradient), so every rank computes the combined loss, the same number bitwise, and
stops at the same step if it is not finite. Only the rank's own rows carry a
gradient, multiplied by W: that is g_r of (eq. 11.1).

Backends: gloo on the CPU, NCCL on GPUs (process ``LOCAL_RANK`` uses
``cuda:LOCAL_RANK``); :func:`setup` picks them. A model with batch statistics
(batch norm) would see only its shard and not be equivalent; the book's models have none.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ._checks import check_count
from .train_cache import _tensor_bytes


def world() -> tuple[int, int]:
    """(rank, world size W) of this process: (0, 1) unless a process group is running."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(batch_size: int, world_size: int, rank: int) -> slice:
    """The rows of the combined batch that process ``rank`` of ``world_size`` evaluates."""
    if batch_size % world_size:
        raise ValueError(
            f"batch_size = {batch_size} must be a multiple of the world size (the number "
            f"of processes) = {world_size}: each process takes batch_size / {world_size} "
            f"rows of the combined batch; use e.g. batch_size = "
            f"{max(world_size, batch_size - batch_size % world_size)}"
        )
    n = batch_size // world_size
    return slice(rank * n, (rank + 1) * n)


def setup() -> torch.device:
    """Join the process group that ``torchrun`` describes and return this process's device.

    torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. With CUDA:
    backend NCCL and device ``cuda:LOCAL_RANK`` (one GPU per process); else gloo and the
    CPU. Without torchrun (no WORLD_SIZE) no group is started: one process, W = 1.
    """
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if "WORLD_SIZE" in os.environ and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return device


def cleanup() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_ranks(model, data, sched, settings: dict) -> None:
    """Refuse to train unless ``settings["batch_size"]`` splits into W equal shards and
    every rank holds the same initial weights, data, schedule and settings.

    Different data or seeds would make each rank draw different batches, and the
    result would not be that of one process.
    """
    rank, world_size = world()
    shard(settings["batch_size"], world_size, rank)
    h = hashlib.sha256(_tensor_bytes(data) + _tensor_bytes(sched.betas))
    for name, t in model.state_dict().items():
        h.update(name.encode() + _tensor_bytes(t))
    mine = (h.hexdigest(), repr(sorted(settings.items())))
    everyone = [None] * world_size
    dist.all_gather_object(everyone, mine)
    if any(e[0] != mine[0] for e in everyone):
        raise ValueError(
            "the ranks hold different data, schedules or initial weights "
            "(seed torch before building the model, e.g. torch.manual_seed(0))"
        )
    if any(e[1] != mine[1] for e in everyone):
        raise ValueError(
            f"the ranks were given different settings: {[e[1] for e in everyone]}"
        )


class _ScaleGrad(torch.autograd.Function):
    """y = x; ∂/∂x = factor · ∂/∂y."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


class ShardedModel(torch.nn.Module):
    """The network as the loss function sees it on one rank (see the module docstring).

    ``model(x, t, *more)`` with x (B, d) and t (B,) of the combined batch runs the
    DDP-wrapped network on this rank's rows only and returns the outputs of all B rows:
    the other ranks' rows gathered without gradient, its own with the gradient times W.
    Further per-row arguments (tensors of B rows, e.g. chapter 10's classes) are split
    the same way. Other attributes (e.g. ``classes``, ``null``) are the network's.
    """

    def __init__(self, module: torch.nn.Module, batch_size: int):
        super().__init__()
        self.rank, self.world_size = world()
        self.batch_size = batch_size
        self.rows = shard(batch_size, self.world_size, self.rank)
        device = next(module.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        self.ddp = DistributedDataParallel(module, device_ids=ids)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.ddp.module, name)

    def forward(self, x: torch.Tensor, t: torch.Tensor, *more) -> torch.Tensor:
        if x.shape[0] != self.batch_size:
            raise ValueError(
                f"under data parallelism the loss function must call the model on the "
                f"whole combined batch of batch_size = {self.batch_size} rows, got "
                f"{x.shape[0]}"
            )
        t = t if t.dim() == 0 else t[self.rows]
        more = [self._rows_of(a) for a in more]
        own = self.ddp(x[self.rows], t, *more)
        parts = [torch.empty_like(own) for _ in range(self.world_size)]
        dist.all_gather(parts, own.detach().contiguous())
        parts[self.rank] = _ScaleGrad.apply(own, float(self.world_size))
        return torch.cat(parts)

    def _rows_of(self, a):
        """This rank's rows of a per-row argument; anything else as it is."""
        per_row = (
            isinstance(a, torch.Tensor) and a.dim() and a.shape[0] == self.batch_size
        )
        return a[self.rows] if per_row else a


def free_port() -> int:
    """A TCP port that is free on this machine now (for MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, out, args, kwargs):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(kwargs.get("threads", 1))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        from .train import train

        result = train(*args, **kwargs)
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


def train_parallel(world_size: int, *args, start_method: str = "spawn", **kwargs):
    """Run :func:`ddpm_lib.train.train` (same arguments) on ``world_size`` CPU processes.

    Starts the processes with ``torch.multiprocessing`` (gloo backend, one torch thread
    each unless ``threads`` says otherwise) and returns rank 0's TrainResult (every
    rank's weights are the same). The launch (starting the processes) is not in the
    result's ``seconds``. ``start_method``: "spawn" (any system; each process starts
    Python and imports torch and ddpm_lib again, seconds) or "fork" (Linux, macOS; the
    processes start as copies of this one, at once; safe on the CPU with one thread).
    In a script, call it under ``if __name__ == "__main__":`` (spawned processes import
    the script again).
    """
    check_count(world_size, "world_size")
    if start_method not in ("spawn", "fork"):
        raise ValueError(
            f"start_method must be 'spawn' or 'fork', got {start_method!r}"
        )
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.pt"
        torch.multiprocessing.start_processes(
            _worker,
            args=(world_size, free_port(), out, args, kwargs),
            nprocs=world_size,
            start_method=start_method,
        )
        return torch.load(out, weights_only=False)
