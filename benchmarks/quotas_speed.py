"""Speed of toy.quotas on many classes against one np.sort of as many floats, measured in the same run.

Goal: drop_quotas runs within 10x of np.sort on K floats (default K = 100,000); the other cases are for
information (min_count > 0 sorts up to 2K breakpoints; exponent != 1 adds one power per class; allocation="count"
runs the official quoter's passes in plain Python, on purpose, to reproduce its float arithmetic).
Run from the repository root: `python benchmarks/quotas_speed.py [--classes K] [--repeats R] [--seed S]`.
Exits with status 1 if drop_quotas misses the goal.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from toy.quotas import drop_quotas, uniform_quotas  # noqa: E402

GOAL_RATIO = 10.0
DENSITY = 0.3
REFERENCE = "np.sort (reference)"
GOAL_CASE = "drop_quotas"


def best_times(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """The fastest of `repeats` wall-clock timings of each function, in seconds.

    Rounds interleave the functions so that load from other processes hits the reference and the cases alike.
    """
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> int:
    """Print the machine header, the timings and their ratios to np.sort, and PASS/FAIL for the goal."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=100_000, help="number of classes K (default 100000)")
    parser.add_argument("--repeats", type=int, default=15, help="timings per case; the best is kept (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random sizes and recalls (default 0)")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    sizes = rng.integers(0, 1000, size=args.classes)
    recalls = rng.uniform(0.0, 1.0, size=args.classes)
    floats = rng.random(args.classes)
    cases: dict[str, Callable[[], object]] = {
        GOAL_CASE: lambda: drop_quotas(DENSITY, sizes, recalls),
        "drop_quotas(min_count=100)": lambda: drop_quotas(DENSITY, sizes, recalls, min_count=100),
        "drop_quotas(exponent=0.5)": lambda: drop_quotas(DENSITY, sizes, recalls, exponent=0.5),
        'drop_quotas(allocation="count")': lambda: drop_quotas(DENSITY, sizes, recalls, allocation="count"),
        "uniform_quotas": lambda: uniform_quotas(DENSITY, sizes),
    }

    print(f"machine: {platform.platform()} ({platform.machine()}), {os.cpu_count()} CPUs")
    now = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {now}")
    print(f"K = {args.classes} classes, density {DENSITY}, best of {args.repeats}, goal: <= {GOAL_RATIO:g}x np.sort")
    times = best_times({REFERENCE: lambda: np.sort(floats)} | cases, args.repeats)
    reference = times.pop(REFERENCE)
    print(f"{REFERENCE:<32} {reference * 1e3:8.3f} ms")
    for name, seconds in times.items():
        ratio = seconds / reference
        verdict = ("PASS" if ratio <= GOAL_RATIO else "FAIL") if name == GOAL_CASE else "(info)"
        print(f"{name:<32} {seconds * 1e3:8.3f} ms  ratio {ratio:5.2f}  {verdict}")
    passed = times[GOAL_CASE] / reference <= GOAL_RATIO
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
