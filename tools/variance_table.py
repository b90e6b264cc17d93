"""The NLL bound (nats) with learned, fixed and optimal variances, and sample quality (chapter 9).

For each toy data set: train the network with the variance head (chapter 6's settings,
L_hybrid), then at T = 100 and at 20 and 10 strided steps print the bound of the network
with σ_t² = β_t, β̃_t, learned, and its own optimal σ*_t²; of the ideal denoiser with
β_t, β̃_t and the optimal (analytic) σ*_t²; the exact entropy; the paired differences
learned − best fixed in standard errors; and the sample quality (JS / floor, C2ST) with
each variance. Not run by the book (three trainings of 5000 steps, 56–58 s each on one thread
here; the whole run about 4 minutes).

    PYTHONPATH=$PWD python tools/variance_table.py [--quick] [--sets moons ...]
"""

from __future__ import annotations

import argparse
import time

import torch

import ddpm_lib as dl
from ddpm_lib import benchmark, variance


def mean_se(x):
    return benchmark.mean_se(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="*", default=list(dl.DATASETS))
    ap.add_argument("--quick", action="store_true", help="benchmark.QUICK settings")
    ap.add_argument("--draws", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = dict(benchmark.QUICK if args.quick else benchmark.SETTINGS)
    cfg["draws"] = args.draws
    sched = benchmark.schedule_for(cfg)
    for name in args.sets:
        t0 = time.perf_counter()
        res = variance.train_variance(name, cfg)
        print(f"\n== {name}: trained in {res.seconds:.1f} s", flush=True)
        model = res.model
        for steps in (None, 20, 10):
            rows = variance.nll_rows(model, name, sched, steps, n=cfg["nll_points"])
            label = f"T = {sched.T}" if steps is None else f"{steps} strided steps"
            print(f"-- {label}: bound in nats (mean ± se, {cfg['nll_points']} points)")
            for key in (
                "net_beta",
                "net_beta_tilde",
                "net_learned",
                "net_optimal",
                "ideal_beta",
                "ideal_beta_tilde",
                "ideal_optimal",
            ):
                m, s = mean_se(rows[key])
                print(f"   {key:18s} {m:8.4f} ± {s:.4f}")
            print(f"   {'entropy':18s} {benchmark.data_entropy(name):8.4f}")
            fixed = min(("net_beta", "net_beta_tilde"), key=lambda k: rows[k].mean())
            m, s = mean_se(rows["net_learned"] - rows[fixed])
            print(f"   learned − {fixed[4:]}: {m:+.4f} ± {s:.4f} ({m / s:+.1f} se)")
            m, s = mean_se(rows["net_learned"] - rows["net_optimal"])
            print(f"   learned − optimal (network): {m:+.4f} ± {s:.4f}")
            for var in ("beta", "beta_tilde", "learned"):
                q = variance.quality(model, name, sched, var, steps, cfg)
                js = q["js"] / q["js_floor"]
                print(
                    f"   quality {var:10s} JS/floor {js:5.2f}  C2ST {q['c2st']:.3f}"
                    f" (floor {q['c2st_floor']:.3f})",
                    flush=True,
                )
        print(f"   ({time.perf_counter() - t0:.0f} s for {name})")


if __name__ == "__main__":
    main()
