#!/usr/bin/env python3
"""Sample quality against the number of network evaluations, per data set (chapter 7).

    python tools/nfe_table.py                 # all three data sets, NFE 5, 10, 20, 50
    python tools/nfe_table.py --quick         # a smoke run with tiny settings

For each data set it trains the book's network with the benchmark's settings
(``ddpm_lib.benchmark.train_on``, the same call as chapter 6 and the benchmark, so the
same weights), then runs each sampler of chapter 7 at each NFE (every network call
counted) twice: with the network and with the ideal denoiser of the same data set (the
best any network could do). It prints histogram JS as a multiple of its floor and C2ST,
each the mean over ``--draws`` draws of ``n`` samples, so the sampler's error (what the
ideal denoiser also has) can be told from the network's. Everything is seeded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ddpm_lib.benchmark import QUICK, SETTINGS, mean_metrics, schedule_for, train_on
from ddpm_lib.density import ideal_eps, toy_law
from ddpm_lib.solvers import sample, steps_for_nfe, time_grid

#: (rule, spacing) of each sampler, as in chapter 7.
SAMPLERS = {
    "ddim": ("ddim", "uniform"),
    "heun": ("heun", "uniform"),
    "dpmpp2m": ("dpmpp2m", "uniform"),
    "dpmpp2m-quadratic": ("dpmpp2m", "quadratic"),
}


def quality(model, name, cfg, rule, spacing, nfe, draws, seed):
    """JS / floor and C2ST of one sampler at ``nfe`` calls, mean over ``draws`` draws."""
    sched = schedule_for(cfg)
    grid = time_grid(sched, steps_for_nfe(rule, nfe), spacing)
    gen = torch.Generator().manual_seed(seed)
    calls = []

    def draw():
        x, used = sample(
            model, sched, torch.randn(cfg["n"], 2, generator=gen), grid, rule
        )
        calls.append(used)
        return x.float()

    m = mean_metrics(draw, name, draws)
    return {"js_ratio": m["js"] / m["js_floor"], "c2st": m["c2st"], "nfe": calls[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings")
    parser.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write JSON here")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else SETTINGS
    torch.set_num_threads(1)
    start, rows = time.perf_counter(), []
    for name in ("swiss_roll", "moons", "s_curve"):
        models = {
            "network": train_on(name, cfg).model,
            "ideal": ideal_eps(toy_law(name), schedule_for(cfg), dtype=torch.float32),
        }
        for sampler, (rule, spacing) in SAMPLERS.items():
            for nfe in args.nfe:
                row = {"dataset": name, "sampler": sampler, "nfe": nfe}
                for who, model in models.items():
                    q = quality(model, name, cfg, rule, spacing, nfe, args.draws, 5)
                    row[who] = q
                rows.append(row)
                print(
                    f"{name:<11}{sampler:<19}NFE {nfe:3d} ({row['network']['nfe']:3d} used)"
                    f"  JS/floor network {row['network']['js_ratio']:6.2f}"
                    f"  ideal {row['ideal']['js_ratio']:6.2f}"
                    f"  C2ST network {row['network']['c2st']:.3f}"
                    f"  ideal {row['ideal']['c2st']:.3f}",
                    flush=True,
                )
    seconds = time.perf_counter() - start
    print(f"{seconds:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
