#!/usr/bin/env python
"""Chapter 11's digit scores over several draws of samples, each beside its floor.

    python tools/digits_table.py            # 5 draws of 1000 samples (σ² = β̃), mean ± s.e.
    python tools/digits_table.py --time     # also time one training run without the cache

Trains chapter 11's network with ``ddpm_lib.digits.train_digits`` (served by the training
cache when DDPM_TRAIN_CACHE names a folder that holds the run).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import ddpm_lib as dl
from ddpm_lib import digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--time", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = digits.SETTINGS
    if args.time:  # the same run, trained (deterministically) instead of loaded
        run = digits.train_digits(cache=False)
        print(f"training without the cache: {run.seconds:.1f} s")
    else:
        run = digits.train_digits()
    model = run.model.eval()
    sched = dl.Schedule.named(cfg["schedule"], cfg["T"])
    keys = ("c2st", "confidence", "agreement", "tv", "nn_median", "nn_min")
    rows = {k: [] for k in keys + tuple(k + "_floor" for k in keys)}
    extra = {"below_p1": [], "nn_p1": [], "heldout_accuracy": []}
    for k in range(args.draws):
        gen = torch.Generator().manual_seed(1000 + k)
        x = dl.ddpm_sample(
            model, sched, args.n, d=64, variance="beta_tilde", generator=gen
        )
        m = digits.evaluate(x, seed=k)
        for key in rows:
            rows[key].append(m[key])
        for key in extra:
            extra[key].append(m[key])
    print(
        f"{args.draws} draws of {args.n} samples; mean ± standard error over the draws"
    )
    print(f"{'score':<12}{'samples':>18}{'floor':>18}")
    for key in keys:
        cells = []
        for name in (key, key + "_floor"):
            v = np.array(rows[name])
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) / math.sqrt(len(v)):.3f}")
        print(f"{key:<12}{cells[0]:>18}{cells[1]:>18}")
    for key, v in extra.items():
        print(
            f"{key:<16} {np.mean(v):.4f} (per draw: {', '.join(f'{a:.3f}' for a in v)})"
        )
    gap = 100 * (np.array(rows["agreement_floor"]) - np.array(rows["agreement"]))
    print(f"agreement gap, points: {', '.join(f'{g:.1f}' for g in gap)}")


if __name__ == "__main__":
    main()
