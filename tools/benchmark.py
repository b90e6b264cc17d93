#!/usr/bin/env python3
"""Train on every toy data set with the book's settings and report one table (issue: chapter 6).

    python tools/benchmark.py            # the full benchmark
    python tools/benchmark.py --quick    # a smoke run, well under a minute

For each data set it reports: training steps, wall seconds and the torch thread count;
C2ST, histogram JS and sliced W1, each the mean over several draws of samples against
fresh data, beside the same metric between two fresh draws of the data (the floor);
the NLL bound in nats on held-out data, beside the bound of the ideal denoiser at the
same settings and the exact entropy of the data; and sampling times of DDPM and DDIM.
Everything is seeded. The table is printed and written as JSON (``--out``).
No wall-clock time is asserted anywhere: times are measurements, not tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import ddpm_lib as dl
from ddpm_lib.benchmark import (
    QUICK,
    SETTINGS,
    ddpm_quality,
    mean_metrics,
    nll_table,
    schedule_for,
    train_on,
)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_one(name: str, cfg: dict, seed: int = 0) -> dict:
    sched = schedule_for(cfg)
    result = train_on(name, cfg, seed=seed)
    metrics, _ = ddpm_quality(result.model, name, cfg, seed=seed)
    gen = torch.Generator().manual_seed(seed + 2)
    ddim = {}
    for steps in cfg["ddim_steps"]:
        ddim[steps] = mean_metrics(
            lambda: dl.ddim_sample(result.model, sched, cfg["n"], steps, generator=gen),
            name,
            cfg["draws"],
        )
    timing = {}
    with dl.torch_threads(1):
        _, timing[f"ddpm_{sched.T}"] = _timed(
            lambda: dl.ddpm_sample(result.model, sched, cfg["n"], generator=gen)
        )
        for steps in cfg["ddim_steps"]:
            _, timing[f"ddim_{steps}"] = _timed(
                lambda: dl.ddim_sample(
                    result.model, sched, cfg["n"], steps, generator=gen
                )
            )
    return {
        "dataset": name,
        "steps": cfg["steps"],
        "train_seconds": result.seconds,
        "threads": result.threads,
        **metrics,
        **nll_table(result.model, name, sched, cfg["nll_points"], seed=seed + 7),
        "ddim_metrics": {str(k): v for k, v in ddim.items()},
        "sampling_seconds": timing,
    }


def print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"schedule {cfg['schedule']}, T = {cfg['T']}, {cfg['steps']} steps of batch {cfg['batch_size']}, "
        f"metrics: mean of {cfg['draws']} draws of {cfg['n']} samples"
    )
    head = (
        f"{'data':<11}{'train s':>8}{'thr':>4}{'C2ST':>7}{'floor':>7}{'JS':>8}{'floor':>8}{'SW1':>8}{'floor':>8}"
        f"{'NLL':>8}{'ideal':>8}{'gap':>7}{'H':>7}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['dataset']:<11}{r['train_seconds']:8.1f}{r['threads']:4d}{r['c2st']:7.3f}{r['c2st_floor']:7.3f}"
            f"{r['js']:8.4f}{r['js_floor']:8.4f}{r['sw1']:8.4f}{r['sw1_floor']:8.4f}"
            f"{r['nll_bound'][0]:8.3f}{r['ideal_nll_bound'][0]:8.3f}{r['nll_gap_to_ideal'][0]:7.3f}{r['entropy']:7.3f}"
        )
    print("DDIM (η = 0) at a few step counts, C2ST / JS / SW1 (DDPM uses all T steps):")
    for r in rows:
        print(
            f"  {r['dataset']:<11}"
            + "  ".join(
                f"{k} steps {m['c2st']:.3f} / {m['js']:.4f} / {m['sw1']:.4f}"
                for k, m in r["ddim_metrics"].items()
            )
        )
    print("sampling seconds for", cfg["n"], "samples:")
    for r in rows:
        print(
            f"  {r['dataset']:<11}"
            + "  ".join(f"{k} {v:.2f}" for k, v in r["sampling_seconds"].items())
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run with tiny settings (under a minute)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmark_results/benchmark.json"),
        help="where to write JSON",
    )
    parser.add_argument(
        "--datasets", nargs="+", default=list(dl.DATASETS), choices=list(dl.DATASETS)
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else SETTINGS
    torch.set_num_threads(1)
    rows = [run_one(name, cfg) for name in args.datasets]
    print_table(rows, cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "settings": cfg,
                "quick": args.quick,
                "python": platform.python_version(),
                "torch": torch.__version__,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
