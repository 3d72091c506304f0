"""What resuming costs: the size of a training checkpoint and the time to write it, per model.

A checkpoint (deep.checkpoint) holds the model, optimiser (SGD momentum buffers), LR scheduler, RNG states and
history; it is written atomically (temporary file, fsync, rename). Measured after one training epoch on random
CIFAR-sized data, the write timed over several rounds (best of them), beside the time of one training step as the
reference measured in the same run. Run from the repository root: `python benchmarks/checkpoint_cost.py`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import arguments, provenance, random_images  # noqa: E402
from deep.checkpoint import Checkpointing  # noqa: E402
from deep.models import build_model  # noqa: E402
from deep.schedule import TrainConfig  # noqa: E402
from deep.train import train  # noqa: E402

MODELS = ("cnn", "resnet18", "vgg16")


def measure(name: str, rounds: int, seed: int) -> tuple[int, float, float]:
    """(bytes, best write seconds, seconds per training step) of `name`'s checkpoint after one short epoch."""
    data = random_images(256, (3, 32, 32), 10, seed)
    torch.manual_seed(seed)
    model = build_model(name, 10, (3, 32, 32))
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.05, augment=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.pt"
        checkpoint = Checkpointing(path, every=1)
        start = time.perf_counter()
        train(model, data, cfg, seed=seed, device="cpu", progress=False, checkpoint=checkpoint)
        step = (time.perf_counter() - start) / (2 * 4)
        state = torch.load(path, weights_only=True)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            checkpoint.save({k: v for k, v in state.items() if k != "extra"})
            times.append(time.perf_counter() - start)
        return path.stat().st_size, min(times), step


def main(argv: list[str] | None = None) -> int:
    """Print checkpoint size and write time per model, with one training step as the reference."""
    parser = arguments(__doc__)
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else 5
    print(provenance(torch.device("cpu"), rounds, {"data": "256 random 3x32x32 images, batch 64, 10 classes"}))
    print(f"\n{'model':10} {'checkpoint':>12} {'write':>10} {'one step':>10} {'write / step':>13}")
    for name in MODELS[:1] if args.quick else MODELS:
        size, write, step = measure(name, rounds, args.seed)
        print(f"{name:10} {size / 2**20:9.1f} MiB {write * 1e3:7.1f} ms {step * 1e3:7.1f} ms {write / step:12.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
