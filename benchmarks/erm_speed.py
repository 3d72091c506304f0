"""Speed of exact ERM (toy.erm.fit_threshold) and of a whole Monte Carlo pass, against np.sort on the same array.

Usage: python benchmarks/erm_speed.py [--datasets 10000] [--points 400] [--repeats 5] [--seed 0]
Prints the hardware and versions, the best-of-repeats times, the ratios to np.sort measured in the same
run, a per-stage breakdown of the Monte Carlo pass (sample, prune, fit, evaluate), and PASS/FAIL per goal.
Exit status 1 if a goal fails.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from toy.erm import fit_threshold  # noqa: E402
from toy.figures import PAPER_MODEL  # noqa: E402
from toy.montecarlo import METHODS, evaluate, simulate  # noqa: E402

ERM_GOAL = 4.0
MONTE_CARLO_GOAL = 8.0
METHOD = "drop"
DENSITY = 0.5


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Fastest wall-clock time of `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def monte_carlo_stages(datasets: int, points: int, seed: int, repeats: int) -> dict[str, float]:
    """Best time of each stage of a Monte Carlo pass (sample, prune, fit + closed-form risks), in seconds."""
    rng = np.random.default_rng(seed)
    x, y = PAPER_MODEL.sample(points, rng, batch=datasets)
    keep = METHODS[METHOD](PAPER_MODEL, x, y, DENSITY, rng)
    return {
        "sample": best_time(lambda: PAPER_MODEL.sample(points, rng, batch=datasets), repeats),
        f"prune ({METHOD})": best_time(lambda: METHODS[METHOD](PAPER_MODEL, x, y, DENSITY, rng), repeats),
        "fit + evaluate": best_time(lambda: evaluate(PAPER_MODEL, x, y, keep), repeats),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report; returns 1 if a goal fails."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=10_000, help="number of datasets (rows)")
    parser.add_argument("--points", type=int, default=400, help="points per dataset (columns)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the best is reported")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled data")
    args = parser.parse_args(argv)

    print(f"date      {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"platform  {platform.platform()} ({platform.machine()}, {platform.processor() or 'unknown cpu'})")
    print(f"cpus      {os.cpu_count()}")
    print(f"python    {platform.python_version()}   numpy {np.__version__}")
    print(f"data      {args.datasets} datasets x {args.points} points, best of {args.repeats}")

    rng = np.random.default_rng(args.seed)
    x, y = PAPER_MODEL.sample(args.points, rng, batch=args.datasets)
    sort = best_time(lambda: np.sort(x, axis=-1), args.repeats)
    erm = best_time(lambda: fit_threshold(x, y), args.repeats)
    stages = monte_carlo_stages(args.datasets, args.points, args.seed, args.repeats)
    monte_carlo = best_time(
        lambda: simulate(PAPER_MODEL, METHOD, DENSITY, args.points, args.datasets, rng), args.repeats
    )

    print(f"\nnp.sort(x, axis=-1)      {sort * 1e3:8.1f} ms   (reference)")
    print(f"fit_threshold(x, y)      {erm * 1e3:8.1f} ms")
    print(f"Monte Carlo pass         {monte_carlo * 1e3:8.1f} ms   (simulate, method {METHOD!r}; its stages:)")
    for stage, seconds in stages.items():
        print(f"  {stage:22s} {seconds * 1e3:8.1f} ms   {seconds / sort:5.2f}x sort")
    results = [("fit_threshold / sort", erm / sort, ERM_GOAL), ("Monte Carlo / sort", monte_carlo / sort, MONTE_CARLO_GOAL)]
    print()
    for name, ratio, goal in results:
        print(f"{name:22s} {ratio:6.2f}x  (goal <= {goal:g}x)  {'PASS' if ratio <= goal else 'FAIL'}")
    return 0 if all(ratio <= goal for _, ratio, goal in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
