#!/usr/bin/env python3
"""Train on every toy data set with the book's settings and report one table (issue: chapter 6).

    python tools/benchmark.py            # the full benchmark
    python tools/benchmark.py --quick    # a smoke run with tiny settings (about a minute)

For each data set it reports: training steps, wall seconds and the torch thread count;
C2ST, histogram JS and sliced W1, each the mean over several draws of samples against
fresh data, beside the same metric between two fresh draws of the data (the floor);
the NLL bound in nats on held-out data, beside the bound of the ideal denoiser at the
same settings and the exact entropy of the data; and sampling times of DDPM and DDIM.
Chapter 7's samplers (Heun, DPM-Solver++(2M) on two grids of steps) are scored the same way
at 10 and 20 network evaluations (every call counted), and the exact NLL of the
deterministic sampler (DDIM, η = 0) is given at 10, 20 and all T steps, for the network and
the ideal denoiser, paired with the data's exact density on the same held-out points.
Everything is seeded. The table is printed and written as JSON (``--out``).

    python tools/benchmark.py --samples-dir DIR

also writes every set of samples it scores as ``DIR/<data>_<sampler>_<nfe>.npy``, shape
(draws, n, 2), in the library's standardised coordinates, and ``DIR/index.json`` listing
each file with its data set, sampler, NFE and the scores the benchmark gave it.
No wall-clock time is asserted anywhere: times are measurements, not tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import ddpm_lib as dl
from ddpm_lib.benchmark import (
    FLOW_POINTS,
    FLOW_STEPS,
    QUICK,
    SETTINGS,
    SOLVER_NFE,
    SOLVERS,
    ddpm_quality,
    flow_nll_table,
    mean_metrics,
    nll_table,
    schedule_for,
    solver_quality,
    train_on,
)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_one(name: str, cfg: dict, seed: int = 0, scored=None) -> dict:
    """Train and measure on data set ``name``; append (sampler, nfe, draws, metrics) to ``scored``."""
    sched = schedule_for(cfg)
    result = train_on(name, cfg, seed=seed)
    keep = []
    metrics, _ = ddpm_quality(result.model, name, cfg, seed=seed, keep=keep)
    sets = [("ddpm", sched.T, keep, metrics)]
    gen = torch.Generator().manual_seed(seed + 2)
    ddim = {}
    for steps in cfg["ddim_steps"]:
        keep = []

        def draw():
            keep.append(
                dl.ddim_sample(result.model, sched, cfg["n"], steps, generator=gen)
            )
            return keep[-1]

        ddim[steps] = mean_metrics(draw, name, cfg["draws"])
        sets.append(("ddim", steps, keep, ddim[steps]))
    solvers = {}
    for sampler in SOLVERS:
        for nfe in SOLVER_NFE:
            keep = []
            m = solver_quality(result.model, name, sampler, nfe, cfg, seed, keep=keep)
            solvers[f"{sampler}_{nfe}"] = m
            sets.append((sampler, nfe, keep, m))
    n_flow = min(FLOW_POINTS, cfg["nll_points"])  # 500 points; the quick run's 200
    flow = {
        str(steps or sched.T): flow_nll_table(
            result.model, name, sched, n_flow, steps, seed=seed + 7
        )
        for steps in FLOW_STEPS
    }
    if scored is not None:
        scored.extend(sets)
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
        "solver_metrics": solvers,
        "flow_nll": flow,
        "sampling_seconds": timing,
    }


def write_samples(directory: Path, name: str, scored: list) -> list[dict]:
    """Write each (sampler, nfe, draws, metrics) as ``<name>_<sampler>_<nfe>.npy``; return index entries."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for sampler, nfe, draws, metrics in scored:
        path = directory / f"{name}_{sampler}_{nfe}.npy"
        np.save(path, torch.stack([x.detach().float().cpu() for x in draws]).numpy())
        entries.append(
            {
                "file": path.name,
                "dataset": name,
                "sampler": sampler,
                "nfe": int(metrics.get("nfe_used", nfe)),
                "nfe_budget": int(nfe),
                "shape": [len(draws), *draws[0].shape],
                "coordinates": "standardised (ddpm_lib.data)",
                "scores": {
                    k: v for k, v in metrics.items() if isinstance(v, (int, float))
                },
            }
        )
    return entries


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
    print(
        "chapter 7's samplers: JS / its floor (C2ST) at each NFE, every network call counted:"
    )
    for r in rows:
        print(
            f"  {r['dataset']:<11}"
            + "  ".join(
                f"{k} {m['js'] / m['js_floor']:.2f}× ({m['c2st']:.3f})"
                for k, m in r["solver_metrics"].items()
            )
        )
        print(
            f"  {'':<11}"
            + "  ".join(
                f"ddim_{k} {m['js'] / m['js_floor']:.2f}× ({m['c2st']:.3f})"
                for k, m in r["ddim_metrics"].items()
            )
        )
    print(
        "exact NLL of DDIM (η = 0) by change of variables: NLL, and log q − log p paired on the "
        "same held-out points (median; points inverted), network | ideal denoiser:"
    )
    for r in rows:
        for steps, f in r["flow_nll"].items():
            net, ide = f["network"], f["ideal"]
            print(
                f"  {r['dataset']:<11}{steps:>4} steps  "
                f"{net['nll'][0]:.3f}, gap {net['gap'][0]:.3f} ± {net['gap'][1]:.3f} "
                f"(median {net['median_gap']:.3f}; {net['inverted']} inverted) | "
                f"{ide['nll'][0]:.3f}, gap {ide['gap'][0]:.3f} ± {ide['gap'][1]:.3f} "
                f"(median {ide['median_gap']:.3f}; {ide['inverted']} inverted)   "
                f"H {f['entropy']:.3f}, bound {r['nll_bound'][0]:.3f}"
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
        help="a smoke run with tiny settings (about a minute)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmark_results/benchmark.json"),
        help="where to write JSON",
    )
    parser.add_argument(
        "--samples-dir",
        type=Path,
        default=None,
        help="write every set of scored samples as DIR/<data>_<sampler>_<nfe>.npy, "
        "with DIR/index.json",
    )
    parser.add_argument(
        "--datasets", nargs="+", default=list(dl.DATASETS), choices=list(dl.DATASETS)
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else SETTINGS
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows, files = [], []
    for name in args.datasets:
        scored = []
        rows.append(run_one(name, cfg, scored=scored))
        if args.samples_dir is not None:
            files += write_samples(args.samples_dir, name, scored)
    print_table(rows, cfg)
    print(f"benchmark ran in {time.perf_counter() - start:.0f} s")
    if args.samples_dir is not None:
        (args.samples_dir / "index.json").write_text(
            json.dumps({"settings": cfg, "files": files}, indent=2)
        )
        print(f"{len(files)} sample files and index.json written to {args.samples_dir}")
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
