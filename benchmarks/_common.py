"""What the training-speed benchmarks share: provenance header, epoch clock, random images, the three loops timed.

Each benchmark case trains one model on one dataset three ways, in interleaved rounds so that load from
other processes hits them alike: our trainer (deep.train.train), a conventional DataLoader loop (the
script supplies the loader and the per-batch work), and the bare forward/backward/step on batches
made beforehand. All three use the same model code, optimiser, loss, autocast and memory layout; the
only difference is how batches reach the model. Every round runs one warm-up epoch (first-call
overheads, cuDNN autotuning, torch.compile) and then `epochs` timed epochs of `max_batches` batches.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deep.augment import crop_flip
from deep.data.base import Split
from deep.models import build_model
from deep.train import InputPipeline, Normalization, TrainConfig, autocast, train

TRAINER = "deep.train.train"
LOADER = "DataLoader loop"
BARE = "bare step"
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def arguments(description: str) -> argparse.ArgumentParser:
    """A parser with the options every training-speed benchmark takes: --quick and --seed."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one round, goals not judged")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, models and shuffles (default 0)")
    return parser


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (what lscpu shows), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def gpu_driver() -> str:
    """The NVIDIA driver version from nvidia-smi, or 'unknown' where it cannot be asked."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: above 0 while other jobs share the machine."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def provenance(device: torch.device, runs: int | None, extra: dict[str, object] | None = None) -> str:
    """Date, machine, versions, threads, load, (on a GPU) the card and driver and (given `runs`) the rounds per case:
    printed before any timing."""
    lines = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores",
        "load average": f"{load_average()} (1, 5, 15 min, before the run)",
        "platform": platform.platform(),
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}",
        "torch threads": f"{torch.get_num_threads()} (set with OMP_NUM_THREADS)",
        "device": device,
    }
    if device.type == "cuda":
        lines["gpu"] = f"{torch.cuda.get_device_name(device)}, driver {gpu_driver()}, CUDA {torch.version.cuda}"
        lines["cudnn"] = torch.backends.cudnn.version()
    if runs is not None:
        lines["runs"] = f"{runs} per case (rounds of the three ways interleaved; the best round is reported)"
    lines.update(extra or {})
    return "\n".join(f"{key:<14} {value}" for key, value in lines.items())


class EpochClock:
    """Marks epoch ends: CUDA events on a GPU (read back once, at the end), else wall and process CPU time.

    Called with anything (e.g. the trainer's EpochState), it marks: it serves as a trainer callback.
    On a CPU shared with other jobs, this process's CPU time is the steadier measure of its own work.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list = []

    def __call__(self, _: object = None) -> None:
        """Mark the end of an epoch."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append((time.perf_counter(), time.process_time()))

    def seconds(self) -> tuple[float, float | None]:
        """Wall and CPU seconds (None on a GPU) from the first mark to the last: all epochs but the warm-up."""
        if self.cuda:
            torch.cuda.synchronize()
            return self.marks[0].elapsed_time(self.marks[-1]) / 1e3, None
        (wall0, cpu0), (wall1, cpu1) = self.marks[0], self.marks[-1]
        return wall1 - wall0, cpu1 - cpu0


def random_images(n: int, shape: tuple[int, ...], classes: int, seed: int) -> Split:
    """`n` uniformly random uint8 images of `shape` with uniformly random labels: data of a real size, no download."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)
    return Split(x, torch.randint(0, classes, (n,), generator=generator))


def seeded_model(name: str, num_classes: int, input_shape: tuple[int, ...], seed: int) -> Callable[[], nn.Module]:
    """A builder of the registry's model `name`, initialised from `seed` every time: the same weights for each loop."""

    def build() -> nn.Module:
        torch.manual_seed(seed)
        return build_model(name, num_classes, input_shape)

    return build


@dataclass(frozen=True)
class Case:
    """One model on one training split with its config; each round times `epochs` epochs of `max_batches`."""

    name: str
    model: Callable[[], nn.Module]  # a fresh model, built from a fixed seed
    train: Split
    cfg: TrainConfig
    normalization: Normalization | None
    max_batches: int | None  # batches per epoch; None = whole epochs
    epochs: int  # timed epochs per round, after one warm-up epoch

    @property
    def samples_per_epoch(self) -> int:
        """Samples one capped epoch visits (the last partial batch counts with its true size)."""
        batches = len(self.train) if self.max_batches is None else self.max_batches * self.cfg.batch_size
        return min(len(self.train), batches)

    @property
    def augment(self) -> bool:
        """Whether the trainer crops and flips this data (images only)."""
        return self.cfg.augment and self.train.x.dim() == 4


def place(model: nn.Module, device: torch.device) -> nn.Module:
    """The model on `device` as the trainer puts it there (channels_last and cuDNN autotuning on a GPU)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        return model.to(device, memory_format=torch.channels_last)
    return model.to(device)


def sgd(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The trainer's optimiser for `cfg`."""
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )


def step_epochs(
    net: nn.Module, case: Case, device: torch.device, batches: Batches, prepare: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[float, float | None]:
    """Forward/backward/step as the trainer does it, 1 + case.epochs passes over `batches`; seconds after the first.

    `batches` is iterated afresh every epoch (a DataLoader reshuffles), capped at case.max_batches, and
    `prepare` does the per-batch work on each input batch. No per-step loss.item(), as in the trainer:
    a host sync per step would slow the reference down for a reason that has nothing to do with its
    data path.
    """
    optimizer = sgd(net, case.cfg)
    clock = EpochClock(device)
    net.train()
    for _ in range(1 + case.epochs):
        for xb, yb in itertools.islice(batches, case.max_batches):
            with autocast(device):
                logits = net(prepare(xb))
            yb = yb.to(device, non_blocking=True)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=case.cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        clock()
    return clock.seconds()


def trainer_seconds(model: nn.Module, case: Case, device: torch.device, seed: int) -> tuple[float, float | None]:
    """Our trainer for 1 + case.epochs capped epochs; seconds of the epochs after the first."""
    clock = EpochClock(device)
    cfg = replace(case.cfg, epochs=1 + case.epochs, milestones=())
    train(model, case.train, cfg, seed=seed, device=device, normalization=case.normalization,
          callbacks=[clock], progress=False, max_batches=case.max_batches)
    return clock.seconds()


def batch_work(case: Case, device: torch.device, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the trainer does to each raw batch: shift + flip (images, when cfg.augment), then normalise on `device`."""
    inputs = InputPipeline(case.normalization, device)
    if not case.augment:
        return inputs
    generator = torch.Generator(device=device).manual_seed(seed)
    padding, translate = case.cfg.crop_padding, case.cfg.translate
    return lambda xb: inputs(crop_flip(xb.to(device, non_blocking=True), generator, padding, translate=translate))


def premade_batches(case: Case, device: torch.device, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One capped epoch of batches made beforehand: shuffled, augmented and normalised, on the device."""
    order = torch.randperm(len(case.train), generator=torch.Generator().manual_seed(seed))[: case.samples_per_epoch]
    work = batch_work(case, device, seed)
    x, y = case.train.x.to(device), case.train.y.to(device)
    return [(work(x[idx.to(device)]), y[idx.to(device)]) for idx in order.split(case.cfg.batch_size)]


Speeds = dict[str, tuple[float, float | None]]  # way -> (samples per wall second, per CPU second or None)


def measure(
    case: Case, device: torch.device, seed: int, repeats: int,
    loader: Batches, prepare: Callable[[torch.Tensor], torch.Tensor],
) -> Speeds:
    """Best samples/s of our trainer, the DataLoader loop (`loader`, `prepare`) and the bare step over `repeats` rounds.

    Each way trains its own copy of the same model (built from the same seed); with cfg.compile the
    reference loops compile theirs, as the trainer does. Wall and CPU speeds are each the best round's.
    """
    models = {name: place(case.model(), device) for name in (TRAINER, LOADER, BARE)}
    nets = {name: torch.compile(model) if case.cfg.compile else model for name, model in models.items()}
    premade = premade_batches(case, device, seed)
    runs: dict[str, Callable[[], tuple[float, float | None]]] = {
        TRAINER: lambda: trainer_seconds(models[TRAINER], case, device, seed),
        LOADER: lambda: step_epochs(nets[LOADER], case, device, loader, prepare),
        BARE: lambda: step_epochs(nets[BARE], case, device, premade, lambda xb: xb),
    }
    samples = case.samples_per_epoch * case.epochs
    best: dict[str, list[float]] = {name: [0.0, 0.0] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            for i, seconds in enumerate(run()):
                if seconds is not None:
                    best[name][i] = max(best[name][i], samples / seconds)
    return {name: (wall, cpu or None) for name, (wall, cpu) in best.items()}


@dataclass(frozen=True)
class Targets:
    """Goals from an issue: trainer >= `loader_speedup` x the DataLoader loop, bare step <= `bare_slowdown` x it."""

    loader_speedup: float
    bare_slowdown: float


SMOKE = "smoke run: not judged"


def verdict(ok: bool, unjudged: str | None = None) -> str:
    """PASS or FAIL, or, when the result is not judged, why not (e.g. SMOKE)."""
    return f"({unjudged})" if unjudged else ("PASS" if ok else "FAIL")


def report(case: Case, speeds: Speeds, targets: Targets, unjudged: str | None = None) -> bool:
    """Print samples/s and the two ratios; True when both goals are met on wall-clock speed (or when `unjudged`
    says why they are not judged).

    On a CPU the ratios per CPU second of this process are printed beside them, for information.
    """
    print(f"\n{case.name}: batch {case.cfg.batch_size}, {case.samples_per_epoch} samples x {case.epochs} timed epochs")
    cpu = all(c is not None for _, c in speeds.values())
    print(f"  {'samples/s':<36} {'wall':>8}" + (f" {'CPU':>8}" if cpu else ""))
    for name, (wall, cpu_speed) in speeds.items():
        print(f"  {name:<36} {wall:8.0f}" + (f" {cpu_speed:8.0f}" if cpu else ""))
    clocks = (0, 1) if cpu else (0,)
    passed = True
    for (top, bottom), goal, bound in (
        ((TRAINER, LOADER), f">= {targets.loader_speedup:g}x", lambda r: r >= targets.loader_speedup),
        ((BARE, TRAINER), f"<= {targets.bare_slowdown:g}x", lambda r: r <= targets.bare_slowdown),
    ):
        ratios = [speeds[top][c] / speeds[bottom][c] for c in clocks]
        passed &= bound(ratios[0])
        shown = " ".join(f"{r:7.2f}x" for r in ratios)
        print(f"  {top + ' / ' + bottom:<36} {shown}  goal {goal:<8} {verdict(bound(ratios[0]), unjudged)}")
    return bool(unjudged) or passed
