"""The README's main job, timed: the default sweep (MNIST-1D, mlp, 6 protocols x 9 densities x 3 seeds) as a user
runs it, in a fresh store, then the tempered-DRoP add-on (`--quota-exponent 0.5` for the two DRoP protocols) and
the report.

Reference measured in the same run: one full-data training epoch of the same model on the same data, in one
thread. The grid's work is `sweep --dry-run`'s total in full-data epochs, so total x epoch / workers is the wall
time of a perfectly parallel sweep that only trains; the ratio of the real wall time to it is the overhead
(data loading, validation, scoring, process start-up, waiting on inputs). Also printed: the training seconds of
the query and of the final tasks, from their metrics.json.
Goal (issues 12 and 14): the default grid in <= 5 minutes wall on the 2-core CPU machine.
Run from the repository root: `python benchmarks/main_job.py` (`--quick`: two densities, one seed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import arguments, provenance, verdict  # noqa: E402
from deep.data import default_config, load_dataset  # noqa: E402
from deep.models import build_model  # noqa: E402
from deep.train import train  # noqa: E402

GOAL_SECONDS = 300.0
ROOT = Path(__file__).resolve().parents[1]


def deep(*args: str, cwd: Path) -> tuple[float, str]:
    """Run `python -m deep ...` as the README does (default launcher); its wall seconds and standard output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("DROP_LAUNCHER", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "deep", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True)
    return time.perf_counter() - start, done.stdout


def epoch_seconds(data_root: Path) -> float:
    """One full-data training epoch of the main job's model, one thread, best of 3."""
    torch.set_num_threads(1)
    dataset = load_dataset("mnist1d", data_root)
    cfg = default_config("mnist1d", "mlp")
    times = []
    for _ in range(3):
        model = build_model("mlp", dataset.num_classes, dataset.input_shape)
        start = time.perf_counter()
        train(model, dataset.train, cfg.truncated(1), seed=0, normalization=dataset.normalization, val=dataset.val,
              progress=False)
        times.append(time.perf_counter() - start)
    return min(times)


def training_seconds(store: Path, kind: str) -> float:
    """Sum of `train_seconds` over the finished tasks of one kind."""
    return sum(json.loads(p.read_text()).get("train_seconds", 0.0) for p in (store / kind).glob("*/metrics.json"))


def main(argv: list[str] | None = None) -> int:
    """Time the main job; exit 1 if the default grid takes more than the goal."""
    args = arguments(__doc__).parse_args(argv)
    grid = ["--densities", "0.3", "0.6", "--seeds", "1"] if args.quick else []
    print(provenance(torch.device("cpu"), 1, {"job": "python -m deep sweep " + " ".join(grid) + " (mnist1d, mlp)"}))
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        plan = json.loads(deep("sweep", "--dry-run", *grid, cwd=cwd)[1])  # reads no data: the plan only
        sweep, summary = deep("sweep", "--out", "runs", "--no-progress", *grid, cwd=cwd)
        query, final = training_seconds(cwd / "runs", "query"), training_seconds(cwd / "runs", "final")
        tempered, _ = deep("sweep", "--out", "runs", "--no-progress", "--protocols", "random+drop", "el2n+drop",
                           "--quota-exponent", "0.5", *grid, cwd=cwd)
        report, _ = deep("report", "runs", "--out", "report", cwd=cwd)
        epoch = epoch_seconds(cwd / "data" / "mnist1d")
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ideal = plan["total_full_data_epochs"] * epoch / workers
    ok = sweep <= GOAL_SECONDS
    print(f"\ndefault grid: {plan['counts']}, {plan['total_full_data_epochs']:g} full-data epochs")
    print(f"  one full-data epoch (1 thread)          {epoch:8.2f} s")
    print(f"  perfectly parallel training on {workers} cores {ideal:8.1f} s")
    print(f"  sweep wall                              {sweep:8.1f} s  = {sweep / ideal:.2f}x that  "
          f"(goal <= {GOAL_SECONDS:g} s)  {verdict(ok, 'smoke run: not judged' if args.quick else None)}")
    print(f"  of which training: query tasks {query:.1f} s, final runs {final:.1f} s (summed over workers)")
    print(f"tempered DRoP add-on (beta = 0.5)          {tempered:8.1f} s wall")
    print(f"report                                     {report:8.1f} s wall")
    print(f"main job in all                            {sweep + tempered + report:8.1f} s wall")
    print(f"\nthe sweep's summary:\n{summary}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
