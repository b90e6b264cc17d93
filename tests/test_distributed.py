"""Tests of ddpm_lib.distributed: training on 2 CPU processes (gloo) equals one process.

The reference is the one-process run of ddpm_lib.train with the combined batch, which
the existing tests check independently (reproducibility, the EMA recomputed by hand).
Two processes with one torch thread each: the machine's two cores, not more.

Tolerance: in float64 the two runs differ only in the order in which the gradient's
row sums are added (each process sums its half, then the halves are added), about
1e-16 relative per step; Adam's update is a ratio of gradient moments, so a relative
error stays relative, and over 100 steps it stays near 1e-15. 1e-10 leaves a wide
margin for that growth, while another run (checked below: each process's 32 rows
trained alone as a batch) is more than 1e-3 away.
"""

from __future__ import annotations

import multiprocessing
import os

import pytest
import torch
import torch.distributed as dist

from ddpm_lib import MLPDenoiser, Schedule, l_simple, l_vlb, sample_data, train
from ddpm_lib.distributed import ShardedModel, free_port, shard, train_parallel, world

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with the gloo backend is not available",
)

# fork: the processes start as copies of this one, without importing torch again.
START = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
SCHED = Schedule.named("sigmoid", 50)
DATA = sample_data("moons", 2000, 0).double()
TOL = 1e-10


def _model(learn_variance=False):
    torch.manual_seed(0)
    return MLPDenoiser(hidden=32, depth=2, learn_variance=learn_variance).double()


def _settings(**kw):
    base = dict(steps=100, batch_size=64, lr=5e-3, progress=False, cache=False)
    return {**base, "snapshot_at": (50,), **kw}


def _max_diff(a, b):
    return max(
        (p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters())
    )


@pytest.mark.parametrize("loss_fn, learn_variance", [(l_simple, False), (l_vlb, True)])
def test_two_processes_give_the_model_of_one_process_with_the_combined_batch(
    loss_fn, learn_variance
):
    """Raw weights, EMA, snapshot and losses of 2 processes × 32 rows = 1 process × 64."""
    model, kw = _model(learn_variance), _settings(loss_fn=loss_fn)
    one = train(model, DATA, SCHED, **kw)  # first: the forked processes start warm
    two = train_parallel(2, model, DATA, SCHED, start_method=START, **kw)
    assert two.config["processes"] == 2 and "processes" not in one.config
    assert _max_diff(one.raw_model, two.raw_model) < TOL
    assert _max_diff(one.model, two.model) < TOL
    assert _max_diff(one.snapshots[0][2], two.snapshots[0][2]) < TOL
    assert (one.losses - two.losses).abs().max() < TOL
    # The check can fail: a batch of 32 rows (what each process evaluates) is
    # another run, far outside the tolerance.
    half = train(model, DATA, SCHED, **_settings(loss_fn=loss_fn, batch_size=32))
    assert _max_diff(half.raw_model, two.raw_model) > 1e-3


def test_a_conditional_network_with_label_dropout_trains_the_same_on_two_processes():
    """Chapter 10's loss calls model(x, t, c) and reads model.null: the classes are split
    with the rows, and the result is one process's with the combined batch."""
    from ddpm_lib import guidance as gd

    laws = gd.class_laws("moons", 2)
    data = gd.labelled_data(laws, 1000, seed=0).double()
    torch.manual_seed(0)
    model = gd.ConditionalMLP(hidden=32, depth=2).double()
    kw = _settings(loss_fn=gd.cfg_loss, steps=60, snapshot_at=())
    one = train(model, data, SCHED, **kw)
    two = train_parallel(2, model, data, SCHED, start_method=START, **kw)
    assert _max_diff(one.raw_model, two.raw_model) < TOL
    assert (one.losses - two.losses).abs().max() < TOL


def test_a_batch_that_does_not_split_is_refused():
    """batch_size must be a multiple of the number of processes; the error names both."""
    with pytest.raises(ValueError, match=r"batch_size = 63 .* world size .* = 2"):
        shard(63, 2, 0)
    assert shard(64, 2, 1) == slice(32, 64)
    # In the processes themselves: each refuses before any communication.
    kw = _settings(batch_size=63, steps=2, snapshot_at=())
    with pytest.raises(Exception, match=r"batch_size = 63 must be a multiple"):
        train_parallel(2, _model(), DATA, SCHED, start_method=START, **kw)


def _seed_per_rank(rank, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        train(_model(), DATA, SCHED, **_settings(steps=2, snapshot_at=(), seed=rank))
    finally:
        dist.destroy_process_group()


def test_ranks_with_different_settings_are_refused():
    """Another seed on one rank would draw other batches: refused, naming the settings."""
    with pytest.raises(Exception, match=r"different settings.*'seed', 1"):
        torch.multiprocessing.start_processes(
            _seed_per_rank, args=(free_port(),), nprocs=2, start_method=START
        )


def test_one_process_calls_the_loss_with_the_network_itself():
    """Without a process group nothing changes: W = 1 and the loss sees the model."""
    assert world() == (0, 1)
    seen = []

    def loss(model, x0, sched, generator=None):
        seen.append(type(model))
        return l_simple(model, x0, sched, generator)

    train(_model(), DATA, SCHED, **_settings(steps=2, snapshot_at=(), loss_fn=loss))
    assert seen == [MLPDenoiser, MLPDenoiser]


def _gradient_on_two(rank, port, out):
    """Rank's part: L_simple of the combined batch through ShardedModel, then backward."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        net = ShardedModel(_model(), 64)
        gen = torch.Generator().manual_seed(5)
        l_simple(net, DATA[:64], SCHED, generator=gen).backward()
        if rank == 0:
            torch.save([p.grad for p in net.ddp.module.parameters()], out)
    finally:
        dist.destroy_process_group()


def test_the_gradient_on_two_processes_is_the_gradient_of_the_combined_batch(tmp_path):
    """Each rank back-propagates its 32 rows times W = 2, and DDP averages the ranks: the
    gradient is the one-process gradient of the 64-row loss. The training tests above see
    the gradient only through Adam's updates; this one compares the gradients themselves
    (without the factor W they would be halved)."""
    model = _model()
    l_simple(
        model, DATA[:64], SCHED, generator=torch.Generator().manual_seed(5)
    ).backward()
    out = tmp_path / "grad.pt"
    torch.multiprocessing.start_processes(
        _gradient_on_two, args=(free_port(), out), nprocs=2, start_method=START
    )
    two = torch.load(out)
    for p, g in zip(model.parameters(), two, strict=True):
        assert (p.grad - g).abs().max() <= 1e-12 * p.grad.abs().max()
