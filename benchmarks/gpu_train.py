"""GPU training throughput of deep.train.train against a torchvision-style DataLoader loop, and a timed query stage.

Measured in the same run, for each model (CIFAR-style ResNet-18 and VGG-16), on the same data (random uint8
3x32x32 images, CIFAR-10-sized) and settings (CIFAR-10 protocol: batch 128, crop + flip; channels_last, bf16
autocast, optional torch.compile), timed with CUDA events:
  - our trainer: data resident on the GPU as uint8, normalisation and crop/flip on whole batches there;
  - a conventional torchvision-style loop: DataLoader(shuffle=True, num_workers=2, pin_memory=True) over a
    Dataset that converts, crops (padding 4), flips and normalises one sample at a time, as torchvision's
    RandomCrop + RandomHorizontalFlip + ToTensor + Normalize do (num_workers=2 as in the common CIFAR scripts);
  - the bare forward/backward/step on batches made beforehand, on the GPU.
Then the query stage of the paper's protocol: 5 EL2N inits at 10% of a 160-epoch VGG-16 schedule on
CIFAR-10-sized data (deep.query.train_query_model per init, validation every epoch and the trace included, then
the EL2N scores of each query model).
Goals (issues 5 and 14, on an H100/H200): for ResNet-18, the trainer at least 3x the DataLoader loop and within
1.25x of the bare step (VGG-16's ratios are printed for information); the query stage under 2 minutes (with
--query-inits N, under N/5 of that).
Run from the repository root: `python benchmarks/gpu_train.py [--compile]`; `--max-batches`, `--rounds` and
`--query-inits` shorten it (benchmarks/gpu_check.sh does); `--device cpu --quick` is a smoke run at tiny sizes
that checks the script, not the goals. Exit status 1 if a goal fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import (  # noqa: E402
    SMOKE, Case, Targets, arguments, load_average, measure, provenance, random_images, report, seeded_model, verdict,
)
from deep.augment import default_padding  # noqa: E402
from deep.data import default_config  # noqa: E402
from deep.data.base import Dataset, Split  # noqa: E402
from deep.data.images import channel_stats  # noqa: E402
from deep.models import build_model  # noqa: E402
from deep.query import train_query_model  # noqa: E402
from deep.scores import SCORERS, QueryModel, Trace  # noqa: E402
from deep.sweep import Setup  # noqa: E402
from deep.train import Normalization, resolve_device  # noqa: E402

TARGETS = Targets(loader_speedup=3.0, bare_slowdown=1.25)
GOAL_MODEL = "resnet18"  # the model the goals are set for; the others are measured alike, for information
QUERY_GOAL_SECONDS, QUERY_GOAL_INITS = 120.0, 5
CLASSES = 10
# images, image side, batch (None = the protocol's), batches per epoch (None = whole), timed epochs, rounds,
# query (train images, test images, inits, schedule epochs).
SIZES = {
    "full": dict(images=50_000, side=32, batch=None, max_batches=None, epochs=2, rounds=3,
                 query=(50_000, 10_000, 5, 160)),
    "quick": dict(images=64, side=32, batch=8, max_batches=2, epochs=1, rounds=1, query=(64, 32, 2, 10)),
}


class PerSampleImages(torch.utils.data.Dataset):
    """uint8 images made model inputs one at a time, as torchvision's per-sample transforms would.

    RandomCrop(H, padding=H // 8) + RandomHorizontalFlip() on the uint8 image, then ToTensor (/ 255)
    and Normalize(mean, std).
    """

    def __init__(self, split: Split, normalization: Normalization, augment: bool) -> None:
        self.x, self.y, self.augment = split.x, split.y, augment
        self.mean = torch.tensor(normalization[0]).view(-1, 1, 1)
        self.std = torch.tensor(normalization[1]).view(-1, 1, 1)
        self.pad = default_padding(split.x.shape[2])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.x[i]
        if self.augment:
            _, height, width = image.shape
            top, left = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
            image = F.pad(image, (self.pad,) * 4)[:, top : top + height, left : left + width]
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
        return (image.float().div_(255) - self.mean) / self.std, self.y[i]


def conventional_loader(case: Case, workers: int, device: torch.device) -> DataLoader:
    """The torchvision-style DataLoader over `case.train`: shuffled, `workers` processes, pinned memory on a GPU."""
    dataset = PerSampleImages(case.train, case.normalization, case.augment)
    return DataLoader(dataset, batch_size=case.cfg.batch_size, shuffle=True, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0)


def to_device(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The conventional loop's per-batch work: copy the ready batch to the device, channels_last on a GPU."""
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    return lambda xb: xb.to(device, non_blocking=True).contiguous(memory_format=layout)


def query_seconds(
    sizes: tuple[int, int, int, int], device: torch.device, compile_model: bool, seed: int
) -> tuple[float, int]:
    """Wall-clock seconds of an uncached EL2N query stage of VGG-16 on random CIFAR-sized data, and its epochs."""
    n_train, n_test, inits, schedule = sizes
    train_split = random_images(n_train, (3, 32, 32), CLASSES, seed)
    val, test = (random_images(n_test // 2, (3, 32, 32), CLASSES, seed + k) for k in (1, 2))
    mean, std = channel_stats(train_split.x)
    dataset = Dataset("random", train_split, val, test, [str(k) for k in range(CLASSES)], mean=mean, std=std)
    protocol = replace(default_config("cifar10", "vgg16"), epochs=schedule, compile=compile_model)
    setup = Setup("cifar10", "vgg16", protocol)
    epochs = setup.epochs_for("el2n")
    cfg = setup.query_config(epochs)
    start = time.perf_counter()
    for init in range(inits):
        model, outcome = train_query_model(dataset, lambda: build_model("vgg16", CLASSES, (3, 32, 32)),
                                           dataset.normalization, cfg, seed + init, device)
        trace = Trace(outcome.arrays["trace_prob"], outcome.arrays["trace_correct"])
        query = QueryModel(dataset.train, CLASSES, dataset.normalization, device, seed + init, epochs, {}, trace,
                           lambda model=model: model)
        SCORERS["el2n"].score(query)
    return time.perf_counter() - start, epochs


def throughput(model: str, size: dict, device: torch.device, args: argparse.Namespace) -> bool:
    """Time the three loops for one model and print them; True when its goals are met (or not judged)."""
    shape = (3, size["side"], size["side"])
    images = random_images(size["images"], shape, CLASSES, args.seed)
    protocol = default_config("cifar10", model)
    cfg = replace(protocol, batch_size=size["batch"] or protocol.batch_size, compile=args.compile)
    case = Case(f"{model} on {size['images']} random 3x{size['side']}x{size['side']} images",
                seeded_model(model, CLASSES, shape, args.seed), images, cfg,
                channel_stats(images.x), size["max_batches"], size["epochs"])
    loader = conventional_loader(case, args.workers, device)
    speeds = measure(case, device, args.seed, size["rounds"], loader, to_device(device))
    unjudged = SMOKE if args.quick else None if model == GOAL_MODEL else f"no goal for {model}"
    return report(case, speeds, TARGETS, unjudged)


def main(argv: list[str] | None = None) -> int:
    """Run the throughput comparisons and the query stage, print the report; returns 1 if a goal fails."""
    parser = arguments(__doc__)
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model in all three loops")
    parser.add_argument("--models", nargs="+", default=[GOAL_MODEL, "vgg16"],
                        help=f"registry models to time (default: {GOAL_MODEL} vgg16; the goals are {GOAL_MODEL}'s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes of the reference DataLoader (default 2, as in common CIFAR scripts)")
    parser.add_argument("--max-batches", type=int, default=None, help="batches per timed epoch (default: the size's)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the three loops (default: the size's)")
    parser.add_argument("--query-inits", type=int, default=None,
                        help=f"EL2N inits of the query stage (default: the size's, {QUERY_GOAL_INITS} at full size)")
    parser.add_argument("--skip-query", action="store_true", help="time the training loops only")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if device.type != "cuda" and not args.quick:
        raise ValueError(f"the full sizes need a GPU and device is {device}: add --quick for a smoke run on the CPU")
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    size = SIZES["quick" if args.quick else "full"]
    size = {**size, **{k: v for k, v in (("max_batches", args.max_batches), ("rounds", args.rounds)) if v}}
    n_train, n_test, inits, schedule = size["query"]
    inits = args.query_inits or inits
    print(provenance(device, size["rounds"], {
        "settings": f"bf16 autocast and channels_last on a GPU, torch.compile {'on' if args.compile else 'off'}",
        "DataLoader": f"per-sample crop/flip/normalise Dataset, num_workers={args.workers}, pin_memory on a GPU",
    }))
    passed = all([throughput(model, size, device, args) for model in args.models])
    if not args.skip_query:
        seconds, epochs = query_seconds((n_train, n_test, inits, schedule), device, args.compile, args.seed)
        # Inits train one after another, each alike: N inits get N/5 of the 5-init goal.
        goal = QUERY_GOAL_SECONDS * inits / QUERY_GOAL_INITS
        ok = seconds < goal
        print(f"\nquery stage: {inits} EL2N inits x {epochs} of {schedule} epochs of vgg16 on {n_train} images: "
              f"{seconds:.1f} s  (goal < {goal:g} s: {QUERY_GOAL_SECONDS:g} s for {QUERY_GOAL_INITS} inits)  "
              f"{verdict(ok, SMOKE if args.quick else None)}")
        passed &= ok or args.quick
    print(f"\nload average {load_average()} (1, 5, 15 min, after the run)")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
