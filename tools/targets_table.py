#!/usr/bin/env python3
"""What the network should output: the five targets of chapter 8 on each data set.

    python tools/targets_table.py                  # three data sets, the book's settings
    python tools/targets_table.py --steps 700 --lr 0.01   # chapter 8's shorter training
    python tools/targets_table.py --quick          # a smoke run with tiny settings

For each data set and each target (ε, x_0, v, score, velocity) it trains the book's
network with the benchmark's settings and seeds (:func:`ddpm_lib.targets.train_target`;
target ε is chapter 6's network), then reports, on the same held-out draws of
(x_0, t, ε): the best achievable loss of the target (the ideal denoiser) and the network's
held-out loss with their standard errors, the network's ε-loss (every network on one
scale), sample quality of ancestral sampling (JS / floor and C2ST, as chapter 6) and the
variational bound in nats beside the ideal denoiser's and the exact entropy (chapter 5).
Everything is seeded; the results also go to a JSON file (``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch

from ddpm_lib.benchmark import (
    QUICK,
    SETTINGS,
    ddpm_quality,
    nll_table,
    schedule_for,
)
from ddpm_lib.data import DATASETS, sample_data
from ddpm_lib.density import ideal_eps, toy_law
from ddpm_lib.targets import (
    TARGETS,
    AsEps,
    draws_per_step,
    point_losses,
    stratified_mean_se,
    train_target,
)


def one_data_set(name, cfg, steps, per_step, nll_points):
    """Every target's row for data set ``name`` (a dict per target)."""
    sched = schedule_for(cfg)
    x0 = sample_data(name, per_step * sched.T, seed=11).double()
    t, eps = draws_per_step(x0, sched, torch.Generator().manual_seed(12))
    floor = point_losses(ideal_eps(toy_law(name), sched), x0, t, eps, sched)
    rows = {}
    for target in TARGETS:
        run = train_target(name, target, cfg, steps)
        model = AsEps(run.model, target)
        ours = point_losses(copy.deepcopy(model).double(), x0, t, eps, sched)
        samples = []
        try:
            quality, _ = ddpm_quality(model, name, cfg, keep=samples)
        except ValueError:  # a sampler that left some points non-finite
            quality = {"js": math.nan, "js_floor": 1.0, "c2st": math.nan}
            quality["c2st_floor"] = math.nan
        bad = sum(int((~torch.isfinite(x)).any(1).sum()) for x in samples)
        nll = nll_table(model, name, sched, nll_points)
        rows[target] = {
            "seconds": run.seconds,
            "floor": stratified_mean_se(floor[target], sched.T),
            "loss": stratified_mean_se(ours[target], sched.T),
            "excess": stratified_mean_se(ours[target] - floor[target], sched.T),
            "eps_loss": stratified_mean_se(ours["eps"], sched.T),
            "js_ratio": quality["js"] / quality["js_floor"],
            "c2st": quality["c2st"],
            "c2st_floor": quality["c2st_floor"],
            "non_finite": bad,
            "nll": nll["nll_bound"],
            "ideal_nll": nll["ideal_nll_bound"],
            "entropy": nll["entropy"],
        }
        print(f"  {name} {target}: {run.seconds:.0f} s", flush=True)
    return rows


def table(name, rows) -> str:
    """The rows of one data set as printed text."""
    head = (
        f"{name:<9}{'floor':>17}{'held-out loss':>17}{'excess (paired)':>19}"
        f"{'ε-loss':>9}{'JS/floor':>9}{'C2ST':>7}{'NLL bound':>17}"
    )
    lines = [head]
    for k, r in rows.items():
        lines.append(
            f"{k:<9}{r['floor'][0]:10.4f} ± {r['floor'][1]:.4f}"
            f"{r['loss'][0]:10.4f} ± {r['loss'][1]:.4f}"
            f"{r['excess'][0]:11.4f} ± {r['excess'][1]:.4f}{r['eps_loss'][0]:9.4f}"
            f"{r['js_ratio']:9.2f}{r['c2st']:7.3f}"
            f"{r['nll'][0]:10.3f} ± {r['nll'][1]:.3f}"
            + (f"  ({r['non_finite']} non-finite samples)" if r["non_finite"] else "")
        )
    r = next(iter(rows.values()))
    lines.append(
        f"ideal denoiser's bound {r['ideal_nll'][0]:.3f} ± {r['ideal_nll'][1]:.3f} "
        f"nats, entropy {r['entropy']:.3f} nats, C2ST floor {r['c2st_floor']:.3f}"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings")
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--lr", type=float, default=None, help="first learning rate")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--per-step", type=int, default=400, help="draws per step")
    parser.add_argument("--nll-points", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("targets_table.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = QUICK if args.quick else SETTINGS
    if args.lr is not None:
        cfg = dict(cfg, lr=args.lr)
    steps = args.steps or cfg["steps"]
    nll_points = args.nll_points or cfg["nll_points"]
    start, results, texts = time.perf_counter(), {}, []
    for name in args.datasets:
        results[name] = one_data_set(name, cfg, steps, args.per_step, nll_points)
        texts.append(table(name, results[name]))
        print(texts[-1], flush=True)
    print(
        f"\n{steps} training steps per network; {time.perf_counter() - start:.0f} s\n"
    )
    print("\n\n".join(texts))
    args.out.write_text(
        json.dumps({"steps": steps, "lr": cfg["lr"], "results": results}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
