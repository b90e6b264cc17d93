#!/usr/bin/env python
"""Chapter 11's digit scores over several draws of samples, each beside its floor.

    python tools/digits_table.py            # 5 draws of 1000 samples (σ² = β̃), mean ± s.e.
    python tools/digits_table.py --time     # also time one training run without the cache

Trains chapter 11's conditional network with ``ddpm_lib.digits.train_digits`` (served by
the training cache when DDPM_TRAIN_CACHE names a folder that holds the run). Each draw
picks 1000 classes with the training digits' shares and samples them with guidance
weight w = 0, 1, 2 (classifier-free guidance, chapter 10), and 1000 digits of the null
class; the draws differ in their classes, starting noise and C2ST folds.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import ddpm_lib as dl
from ddpm_lib import digits
from ddpm_lib import guidance as gd


def _row(name: str, v) -> str:
    v = np.asarray(v, dtype=float)
    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    per = ", ".join(f"{a:.3f}" for a in v)
    return f"{name:<26}{v.mean():>7.3f} ± {se:.3f}   ({per})"


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
    y_train = digits.load("train")[1]
    out: dict[str, list] = {}
    for k in range(args.draws):
        gen = torch.Generator().manual_seed(1000 + k)
        labels = y_train[torch.randint(0, len(y_train), (args.n,), generator=gen)]
        x_T = torch.randn(args.n, 64, generator=gen)
        runs = {f"w = {w:g}": gd.cfg_eps(model, labels, w) for w in (0.0, 1.0, 2.0)}
        runs["null class"] = model
        for name, eps in runs.items():
            x = dl.ddpm_sample(
                eps,
                sched,
                args.n,
                d=64,
                variance="beta_tilde",
                x_T=x_T,
                generator=torch.Generator().manual_seed(2000 + k),
            )
            m = digits.evaluate(x, seed=k)
            out.setdefault(f"C2ST, {name}", []).append(m["c2st"])
            if name != "null class":
                acc = digits.read_as(x, labels)
                out.setdefault(f"accuracy, {name}", []).append(acc)
            if name == "w = 0":
                for key in ("c2st_floor", "heldout_accuracy", "below_p1", "nn_min"):
                    out.setdefault(key, []).append(m[key])
                out.setdefault("agreement", []).append(m["agreement"])
                out.setdefault("agreement_floor", []).append(m["agreement_floor"])
    print(
        f"{args.draws} draws of {args.n} samples; mean ± standard error over the "
        "draws (each draw)"
    )
    for key, v in out.items():
        print(_row(key, v))


if __name__ == "__main__":
    main()
