"""Train the book's ε-network on several processes with torch.distributed (chapter 11).

Two CPU processes on this machine (gloo backend):

    torchrun --standalone --nproc-per-node 2 tools/train_distributed.py \\
        --data moons --steps 1000 --out model.pt

Every process loads the same data, seeds the same initial weights and calls
``ddpm_lib.train`` with the same settings; each evaluates the network on
batch_size / W rows of every batch and DistributedDataParallel averages the
gradients (see ``ddpm_lib.distributed``). Rank 0 prints and writes ``--out``
(read it with ``ddpm_lib.load_model``). ``--compare`` then trains the same run in
one process (rank 0 alone, after leaving the group) and prints the largest weight
difference. Without torchrun (``python tools/train_distributed.py ...``) it is an
ordinary one-process run.

On GPUs the same command uses NCCL, one GPU per process (``--nproc-per-node`` = the
number of GPUs). On several machines, start the same command on each, naming one
machine's address as the meeting point:

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29500 --rdzv-id run1 tools/train_distributed.py ...
"""

from __future__ import annotations

import argparse
import time

import torch

from ddpm_lib import MLPDenoiser, distributed, save_model, train
from ddpm_lib.benchmark import SETTINGS, schedule_for, training_data
from ddpm_lib.data import DATASETS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="moons", choices=DATASETS)
    p.add_argument("--steps", type=int, default=SETTINGS["steps"])
    p.add_argument(
        "--batch-size",
        type=int,
        default=SETTINGS["batch_size"],
        help="the combined batch over all processes",
    )
    p.add_argument("--lr", type=float, default=SETTINGS["lr"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--out", default=None, help="where rank 0 saves the EMA model")
    p.add_argument(
        "--compare",
        action="store_true",
        help="then train in one process and print the weight difference",
    )
    return p.parse_args(argv)


def fresh_model(args, device):
    torch.manual_seed(args.seed)  # the same initial weights in every process
    return MLPDenoiser().to(device=device, dtype=getattr(torch, args.dtype))


def run(args, device):
    data = training_data(args.data, args.seed)
    return train(
        fresh_model(args, device),
        data,
        schedule_for(SETTINGS),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        desc=args.data,
        cache=False,
    )


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = distributed.setup()
    rank, world_size = distributed.world()
    start = time.perf_counter()
    result = run(args, device)
    wall = time.perf_counter() - start
    distributed.cleanup()
    if rank != 0:
        return
    print(
        f"{world_size} process(es), batch {args.batch_size} "
        f"({args.batch_size // world_size} rows each), {args.steps} steps on {device}: "
        f"training loop {result.seconds:.2f} s (train() {wall:.2f} s), "
        f"final loss {result.losses[-50:].mean():.4f}"
    )
    if args.out:
        save_model(result.model, args.out)
        print(f"EMA model saved to {args.out}")
    if args.compare:
        one = run(args, device)
        diff = max(
            (a - b).abs().max().item()
            for m1, m2 in ((one.raw_model, result.raw_model), (one.model, result.model))
            for a, b in zip(m1.parameters(), m2.parameters())
        )
        print(
            f"1 process, batch {args.batch_size}: training loop {one.seconds:.2f} s; "
            f"largest weight difference to the {world_size}-process run: {diff:.3g}"
        )


if __name__ == "__main__":
    main()
