"""Aggregate training throughput of a sweep whose workers share a device (--runs-per-device K), and the GPU-hours
of the paper's CIFAR-100 grid projected from it.

A sweep of `tasks` full-data runs (seeds 0 .. tasks-1, `epochs` epochs each, the CIFAR-100 protocol: batch 128,
crop + flip) on random CIFAR-shaped data (uint8 3x32x32 images, train:test = 5:1 as in CIFAR, so that validation
costs what it costs there; written once as an npz) runs with the processes launcher at each K. Per K, against the
first K measured (the reference, K = 1):
  - steady epochs/s: K / the mean epoch time read from the runs' own histories, each run's first epoch (cuDNN
    autotuning, first calls) left out: the rate a long sweep runs at;
  - wall epochs/s: every epoch over the sweep's wall time, the workers' start-up included.
Goal (issue 14, on a GPU): K = 4 at least 2x the steady epochs/s of K = 1.

Projection: the default grid of `python -m deep sweep --dataset cifar100 --model M` (6 protocols x 9 densities x
3 seeds, the reference query recipe, 160 epochs), in full-data-epoch equivalents as its `--dry-run` totals them
(deep.kinds.full_data_epochs),
    E_total = sum over final runs r of E'_r * d_r  +  sum over query trainings q of E_q
(E'_r the density-scaled epochs of run r and d_r its density; query trainings see all the data; scoring and recall
tasks train nothing), times the seconds of one CIFAR-100 epoch (50,000 images) at the best K. A pruned run validates
on the whole validation set every epoch, which this counts at d_r of its cost: the projection is a slight
underestimate (validation is a forward pass over a tenth as many images as an epoch trains on).
Run from the repository root: `python benchmarks/sweep_throughput.py`; `--device cpu --quick` is a smoke run (CPU
workers, K = 1 and 2, tiny sizes) whose ratio is printed but not judged. Exit status 1 if the goal fails.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import SMOKE, arguments, load_average, provenance, verdict  # noqa: E402
from deep.cli import main as deep_main  # noqa: E402
from deep.data import default_config  # noqa: E402
from deep.launch import LaunchOptions, launch_processes  # noqa: E402
from deep.runs import HISTORY, RunStore  # noqa: E402
from deep.sweep import Setup, plan  # noqa: E402
from deep.tasks import Runtime, Task  # noqa: E402
from deep.train import resolve_device  # noqa: E402

CIFAR_TRAIN_IMAGES = 50_000
GOAL_K, GOAL_SPEEDUP = 4, 2.0
# Train images, classes, epochs per run, runs per sweep (a multiple of every K, so that no worker idles at the end),
# the K measured and the model (VGG-19: the paper's CIFAR-100 grid).
SIZES = {
    "full": dict(images=10_000, classes=100, epochs=3, tasks=8, ks=[1, 2, 4, 8], model="vgg19"),
    "quick": dict(images=512, classes=10, epochs=3, tasks=2, ks=[1, 2], model="cnn"),
}


@dataclass(frozen=True)
class Throughput:
    """One sweep at K runs per device: epochs run, seconds, and the two rates."""

    k: int
    epochs: int
    wall_s: float
    mean_epoch_s: float  # mean over the runs' epochs after their first

    @property
    def steady(self) -> float:
        """Aggregate epochs/s once every worker is training."""
        return self.k / self.mean_epoch_s

    @property
    def wall(self) -> float:
        """Epochs/s over the whole sweep, start-up included."""
        return self.epochs / self.wall_s


def write_images(path: Path, train: int, classes: int, seed: int) -> Path:
    """Random uint8 3x32x32 images, `train` for training and a fifth as many for testing, each part's labels
    shuffled but balanced (so that every class has validation and test rows)."""
    rng = np.random.default_rng(seed)
    sizes = (train, train // 5)
    y = np.concatenate([rng.permutation(np.arange(size) % classes) for size in sizes])
    split = np.repeat([0, 1], sizes)
    np.savez(path, X=rng.integers(0, 256, (len(y), 3, 32, 32), dtype=np.uint8), y=y, split=split)
    return path


def cifar100_setup(data: Path, model: str, epochs: int) -> Setup:
    """The CIFAR-100 protocol for `model` on the npz at `data`, `epochs` long instead of 160, without milestones."""
    # Random labels: a smaller step keeps the loss finite; the speed of a step does not depend on it.
    protocol = replace(default_config("cifar100", model), epochs=epochs, milestones=(), lr=0.01)
    return Setup("npz", model, protocol, data=str(data))


def epoch_seconds(out: Path) -> tuple[int, list[float]]:
    """Epochs trained by the store's final runs, and the seconds of each but every run's first."""
    epochs, seconds = 0, []
    for run in RunStore(out).runs("final"):
        with open(run.file(HISTORY), newline="") as f:
            times = [float(row["seconds"]) for row in csv.DictReader(f)]
        epochs += len(times)
        seconds += times[1:]
    return epochs, seconds


def sweep_throughput(tasks: list[Task], k: int, device: str, out: Path) -> Throughput:
    """Run the sweep with K workers per device into the empty store `out`, and time it."""
    start = time.perf_counter()
    launch_processes(tasks, str(out), Runtime(device=device), LaunchOptions(runs_per_device=k, progress=False))
    wall = time.perf_counter() - start
    epochs, seconds = epoch_seconds(out)
    return Throughput(k, epochs, wall, float(np.mean(seconds)))


def grid_epochs(model: str) -> float:
    """The default CIFAR-100 grid's full-data-epoch equivalents, from `python -m deep sweep --dry-run`."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = deep_main(["sweep", "--dataset", "cifar100", "--model", model, "--dry-run"])
    if status != 0:
        raise RuntimeError(f"sweep --dry-run --dataset cifar100 --model {model} failed: {printed.getvalue()}")
    return float(json.loads(printed.getvalue())["total_full_data_epochs"])


def measure_all(tasks: list[Task], ks: list[int], device: str, root: Path) -> list[Throughput]:
    """Every K's sweep, each row printed as soon as it is measured: a run stopped at a time limit keeps those."""
    print(f"\n{'K':>3} {'epochs':>7} {'wall s':>8} {'epoch s':>8} {'steady ep/s':>12} {'wall ep/s':>10} "
          f"{'steady / K=' + str(ks[0]):>14} {'wall / K=' + str(ks[0]):>12}")
    results: list[Throughput] = []
    for k in ks:
        results.append(r := sweep_throughput(tasks, k, device, root / f"runs_k{k}"))
        print(f"{r.k:>3} {r.epochs:>7} {r.wall_s:>8.1f} {r.mean_epoch_s:>8.3f} {r.steady:>12.3f} {r.wall:>10.3f} "
              f"{r.steady / results[0].steady:>13.2f}x {r.wall / results[0].wall:>11.2f}x", flush=True)
    return results


def judge(results: list[Throughput], unjudged: str | None) -> bool:
    """Print K = GOAL_K against K = 1 (when both were measured); False when the goal is judged and missed."""
    reference, goal = results[0], next((r for r in results if r.k == GOAL_K), None)
    if goal is None or reference.k != 1:
        return True
    ratio = goal.steady / reference.steady
    print(f"\nK = {GOAL_K} / K = 1, steady: {ratio:.2f}x  goal >= {GOAL_SPEEDUP:g}x  "
          f"{verdict(ratio >= GOAL_SPEEDUP, unjudged)}")
    return ratio >= GOAL_SPEEDUP or bool(unjudged)


def main(argv: list[str] | None = None) -> int:
    """Measure every K, print the ratios and the projection; returns 1 if the goal fails."""
    parser = arguments(__doc__)
    parser.add_argument("--device", default=None, help="torch device of the workers (default: cuda when available)")
    parser.add_argument("--runs-per-device", type=int, nargs="+", default=None, metavar="K",
                        help="the K to measure, the first being the reference (default: 1 2 4 8; --quick: 1 2)")
    parser.add_argument("--model", default=None, help="registry model (default: vgg19, the grid's; --quick: cnn)")
    for name, meaning in (("images", "training images"), ("epochs", "epochs per run"), ("tasks", "runs per sweep")):
        parser.add_argument(f"--{name}", type=int, default=None, help=f"{meaning} (default: the size's)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the numbers to FILE as JSON")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if device.type != "cuda" and not args.quick:
        raise ValueError(f"the full sizes need a GPU and device is {device}: add --quick for a smoke run on the CPU")
    size = SIZES["quick" if args.quick else "full"]
    size = {**size, **{k: getattr(args, k) for k in ("images", "epochs", "tasks") if getattr(args, k)}}
    ks, model = args.runs_per_device or size["ks"], args.model or size["model"]
    total = grid_epochs(model)
    print(provenance(device, None, {
        "sweep": f"{size['tasks']} runs of {size['epochs']} epochs, {model}, {size['images']} random 3x32x32 train "
                 f"images in {size['classes']} classes; K = {' '.join(map(str, ks))} runs per device",
    }))
    with tempfile.TemporaryDirectory() as tmp:
        data = write_images(Path(tmp) / "images.npz", size["images"], size["classes"], args.seed)
        tasks = plan(cifar100_setup(data, model, size["epochs"]), ["full"], [], list(range(size["tasks"])))
        results = measure_all(tasks, ks, str(device), Path(tmp))
    passed = judge(results, SMOKE if args.quick else None if device.type == "cuda" else "goal set for a GPU")
    best = max(results, key=lambda r: r.steady)
    cifar_epoch_s = CIFAR_TRAIN_IMAGES / size["images"] / best.steady
    hours = total * cifar_epoch_s / 3600
    print(f"\nCIFAR-100 grid, {model}: {total:.0f} full-data-epoch equivalents (sweep --dry-run: E' d over final runs, "
          f"E over query trainings) x {cifar_epoch_s:.2f} s per 50,000-image epoch at K = {best.k} = {hours:.1f} "
          f"{'GPU' if device.type == 'cuda' else 'CPU'}-hours on one such device")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": str(device), "model": model, "size": size, "results": [asdict(r) for r in results],
            "grid_epochs": total, "cifar_epoch_seconds": cifar_epoch_s, "projected_device_hours": hours,
        }, indent=2))
    print(f"\nload average {load_average()} (1, 5, 15 min, after the run)")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
