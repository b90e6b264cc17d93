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
import math
import platform
import time
from pathlib import Path

import torch

import ddpm_lib as dl
from ddpm_lib.density import entropy, ideal_eps, toy_law

FULL = dict(schedule="sigmoid", T=100, steps=8000, batch_size=512, lr=3e-3, n=2000, draws=5, nll_points=2000,
            ddim_steps=(10, 20, 50))
QUICK = dict(schedule="sigmoid", T=50, steps=1500, batch_size=256, lr=3e-3, n=1000, draws=2, nll_points=200,
             ddim_steps=(5, 10))


def _mean_se(x: torch.Tensor) -> tuple[float, float]:
    return float(x.mean()), float(x.std() / math.sqrt(len(x)))


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_one(name: str, cfg: dict, seed: int = 0) -> dict:
    sched = dl.Schedule.named(cfg["schedule"], cfg["T"])
    data = dl.sample_data(name, 20_000, seed=seed)
    torch.manual_seed(seed)
    result = dl.train(dl.MLPDenoiser(), data, sched, steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                      seed=seed, progress=False)
    draw = lambda n, s: dl.sample_data(name, n, s)
    gen = torch.Generator().manual_seed(seed + 1)
    scores = []
    for k in range(cfg["draws"]):
        samples = dl.ddpm_sample(result.model, sched, cfg["n"], generator=gen)
        scores.append(dl.evaluate(samples, draw, seed=100 + k))
    metrics = {key: sum(s[key] for s in scores) / len(scores) for key in scores[0]}

    held_out = dl.sample_data(name, cfg["nll_points"], seed=seed + 7).double()
    model64 = result.model.double()
    model_nll = dl.nll_bound(model64, held_out, sched, generator=torch.Generator().manual_seed(3))
    result.model.float()
    ideal_nll = dl.nll_bound(ideal_eps(toy_law(name), sched), held_out, sched, generator=torch.Generator().manual_seed(3))

    timing = {}
    with dl.torch_threads(1):
        _, timing[f"ddpm_{sched.T}"] = _timed(lambda: dl.ddpm_sample(result.model, sched, cfg["n"], generator=gen))
        for steps in cfg["ddim_steps"]:
            _, timing[f"ddim_{steps}"] = _timed(lambda: dl.ddim_sample(result.model, sched, cfg["n"], steps, generator=gen))
    return {
        "dataset": name, "steps": cfg["steps"], "train_seconds": result.seconds, "threads": result.threads,
        **metrics,
        "nll_bound": _mean_se(model_nll), "ideal_nll_bound": _mean_se(ideal_nll),
        "nll_gap_to_ideal": _mean_se(model_nll - ideal_nll), "entropy": entropy(toy_law(name)),
        "sampling_seconds": timing,
    }


def print_table(rows: list[dict], cfg: dict) -> None:
    print(f"schedule {cfg['schedule']}, T = {cfg['T']}, {cfg['steps']} steps of batch {cfg['batch_size']}, "
          f"metrics: mean of {cfg['draws']} draws of {cfg['n']} samples")
    head = f"{'data':<11}{'train s':>8}{'thr':>4}{'C2ST':>7}{'floor':>7}{'JS':>8}{'floor':>8}{'SW1':>8}{'floor':>8}" \
           f"{'NLL':>8}{'ideal':>8}{'gap':>7}{'H':>7}"
    print(head)
    for r in rows:
        print(f"{r['dataset']:<11}{r['train_seconds']:8.1f}{r['threads']:4d}{r['c2st']:7.3f}{r['c2st_floor']:7.3f}"
              f"{r['js']:8.4f}{r['js_floor']:8.4f}{r['sw1']:8.4f}{r['sw1_floor']:8.4f}"
              f"{r['nll_bound'][0]:8.3f}{r['ideal_nll_bound'][0]:8.3f}{r['nll_gap_to_ideal'][0]:7.3f}{r['entropy']:7.3f}")
    print("sampling seconds for", cfg["n"], "samples:")
    for r in rows:
        print(f"  {r['dataset']:<11}" + "  ".join(f"{k} {v:.2f}" for k, v in r["sampling_seconds"].items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with tiny settings (under a minute)")
    parser.add_argument("--out", type=Path, default=Path("benchmark_results/benchmark.json"), help="where to write JSON")
    parser.add_argument("--datasets", nargs="+", default=list(dl.DATASETS), choices=list(dl.DATASETS))
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    torch.set_num_threads(1)
    rows = [run_one(name, cfg) for name in args.datasets]
    print_table(rows, cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": cfg, "quick": args.quick, "python": platform.python_version(),
                                    "torch": torch.__version__, "results": rows}, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
