"""Training throughput of deep.train.train on the CPU against a conventional TensorDataset + DataLoader loop.

Measured in the same run, on the same model, data, batch size, optimiser and per-batch work:
  - our trainer (seeded index permutation over tensors in memory, whole-batch augmentation);
  - a conventional loop: DataLoader(TensorDataset(x, y), batch_size, shuffle=True, num_workers=0), with
    the trainer's own crop/flip and normalisation applied to each batch it yields (num_workers=0 is the
    usual CPU choice: worker processes would compete with torch's compute threads for the same cores);
  - the bare forward/backward/step on batches made beforehand.
Goals (issue 3): the trainer at least 2x the DataLoader loop, and within 1.3x of the bare step, for `mlp`
on digits and for `cnn` on 50,000 random 3x32x32 images (CIFAR-10 protocol: batch 128, crop + flip).
Run from the repository root: `python benchmarks/train_speed.py [--quick]`; exit status 1 if a goal fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import (  # noqa: E402
    SMOKE, Case, Targets, arguments, batch_work, load_average, measure, provenance, random_images, report,
    seeded_model,
)
from deep.data import load_dataset  # noqa: E402
from deep.data.images import channel_stats  # noqa: E402
from deep.data import default_config  # noqa: E402

TARGETS = Targets(loader_speedup=2.0, bare_slowdown=1.3)
DEVICE = torch.device("cpu")
# Random images, cnn batches per epoch, timed epochs per round of each case, rounds: about a minute on 2 idle cores.
SIZES = {
    "full": dict(images=50_000, cnn_batches=5, mlp_epochs=15, cnn_epochs=2, rounds=3),
    "quick": dict(images=2_000, cnn_batches=2, mlp_epochs=2, cnn_epochs=1, rounds=1),
}


def cases(size: dict, seed: int) -> list[Case]:
    """mlp on digits (whole epochs, its CPU protocol) and cnn on random CIFAR-sized images (capped epochs)."""
    digits = load_dataset("digits", seed=seed)
    images = random_images(size["images"], (3, 32, 32), 10, seed)
    return [
        Case("mlp on digits", seeded_model("mlp", 10, digits.input_shape, seed), digits.train,
             default_config("digits", "mlp"), None, None, size["mlp_epochs"]),
        Case(f"cnn on {size['images']} random 3x32x32 images", seeded_model("cnn", 10, (3, 32, 32), seed), images,
             default_config("cifar10", "cnn"), channel_stats(images.x), size["cnn_batches"], size["cnn_epochs"]),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run both cases, print the report; returns 1 if a goal fails."""
    args = arguments(__doc__).parse_args(argv)
    size = SIZES["quick" if args.quick else "full"]
    print(provenance(DEVICE, size["rounds"], {"DataLoader": "TensorDataset, shuffle=True, num_workers=0"}))
    passed = True
    for case in cases(size, args.seed):
        loader = DataLoader(TensorDataset(case.train.x, case.train.y), batch_size=case.cfg.batch_size, shuffle=True)
        speeds = measure(case, DEVICE, args.seed, size["rounds"], loader, batch_work(case, DEVICE, args.seed))
        passed &= report(case, speeds, TARGETS, SMOKE if args.quick else None)
    print(f"\nload average {load_average()} (1, 5, 15 min, after the run)")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
