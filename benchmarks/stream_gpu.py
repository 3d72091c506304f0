"""Streaming ImageNet-sized batches to a GPU: is the loader ever what the GPU waits on?

On a store of N random 256 x 256 images (deep.data.store format, default 4,096 = 805 MB) it times, after a warm-up:
- loader: deep.batches.Streamed + RandomResizedCrop(224) + flip on the device, nothing else (batches of B);
  once with the store in the page cache and once after evicting it (posix_fadvise DONTNEED: reads from the disk);
- bare step: torchvision ResNet-50, bf16 autocast, channels_last, SGD, on one batch resident on the GPU;
- trainer: deep.train.train on the store (the streamed path end to end, the same model and settings).
Goals (issue 21): loader >= 2x the bare step's images/s; trainer's step time <= 1.25x the bare step's.
Also the other store format, JPEG bytes decoded on the GPU: torchvision.io.decode_jpeg(device="cuda") on M JPEGs of
256 x 256 (quality 90), images/s and bytes per image, beside the uint8 store's 196,608 bytes.
`--device cpu --quick` is a smoke run at tiny sizes (goals not judged). Run from the repository root:
`python benchmarks/stream_gpu.py [--device cuda] [--images N] [--batch-size B] [--steps S] [--quick]`.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import provenance  # noqa: E402
from deep._torchvision import import_torchvision  # noqa: E402
from deep.augment import train_view  # noqa: E402
from deep.batches import Streamed  # noqa: E402
from deep.data.base import Split  # noqa: E402
from deep.data.store import StoredImages  # noqa: E402
from deep.models import build_model  # noqa: E402
from deep.train import InputPipeline, TrainConfig, autocast, train  # noqa: E402

LOADER_GOAL, TRAINER_GOAL = 2.0, 1.25
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_store(path: Path, count: int, side: int, seed: int) -> None:
    """A uint8 (count, 3, side, side) .npy of random pixels, written a chunk at a time."""
    rng = np.random.default_rng(seed)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, 3, side, side))
    for start in range(0, count, 256):
        array[start : start + 256] = rng.integers(0, 256, array[start : start + 256].shape, dtype=np.uint8)
    array.flush()
    del array


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache, so that the next reads come from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_rate(images: StoredImages, device: torch.device, batch: int, steps: int) -> float:
    """Images/s of the streaming path with its augmentation, nothing else."""
    source = Streamed(images, device)
    generator = torch.Generator(device=device).manual_seed(0)
    order = torch.randperm(len(images))
    bounds = [(k * batch, (k + 1) * batch) for k in range(steps)]
    sync(device)
    start = time.perf_counter()
    for x in source.gather(order, bounds):
        train_view(x, generator, source.crop)
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def bare_rate(make_model, device: torch.device, batch: int, crop: int, steps: int) -> float:  # noqa: ANN001
    """Images/s of forward, backward and SGD step on one normalised batch held on the device."""
    model = make_model().to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    inputs = InputPipeline((MEAN, STD), device)
    x = inputs(torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8))
    y = torch.randint(0, 1000, (batch,), device=device)
    for timed in (False, True):  # a warm-up round: cuDNN autotuning, allocator
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            with autocast(device):
                loss = F.cross_entropy(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)
        seconds = time.perf_counter() - start
    return steps * batch / seconds


def trainer_rate(make_model, images: StoredImages, device: torch.device, batch: int, steps: int) -> float:  # noqa: ANN001
    """Images/s of deep.train.train streaming from the store (its second epoch of `steps` batches)."""
    split = Split(images, torch.randint(0, 1000, (len(images),)))
    cfg = TrainConfig(2, batch, 0.1, weight_decay=1e-4)
    result = train(make_model(), split, cfg, seed=0, device=device, normalization=(MEAN, STD), progress=False,
                   max_batches=steps)
    return steps * batch / result.history[-1]["seconds"]


def jpeg_rate(device: torch.device, count: int, side: int) -> tuple[float, float] | None:
    """Images/s of batched torchvision.io.decode_jpeg on the device, and mean bytes per JPEG; None if unavailable."""
    rng = np.random.default_rng(0)
    encoded = []
    for _ in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
        pixels = np.clip(np.asarray(coarse, dtype=np.int16) + rng.integers(-24, 25, (side, side, 3)), 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
        encoded.append(torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8))
    decode = import_torchvision().io.decode_jpeg
    try:
        decode(encoded[:8], device=device)  # warm-up (nvJPEG handles)
        sync(device)
        start = time.perf_counter()
        decode(encoded, device=device)
        sync(device)
    except RuntimeError as error:
        print(f"decode_jpeg on {device}: unavailable ({str(error)[:80]})")
        return None
    return count / (time.perf_counter() - start), float(np.mean([len(e) for e in encoded]))


def main() -> int:
    """Print the header, the rates, the two ratios with PASS/FAIL and the JPEG alternative."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--images", type=int, default=4096, help="images in the store (default 4096)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    parser.add_argument("--steps", type=int, default=12, help="batches timed per measurement (default 12)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes and a small model, goals not judged")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.quick:
        count, side, batch, steps, model = 64, 32, 8, 3, "cnn"
    else:
        count, side, batch, steps, model = args.images, 256, args.batch_size, args.steps, "resnet50_imagenet"
    crop = round(side * 224 / 256)
    if count < (steps + 1) * batch:
        raise ValueError(f"--images must be at least (steps + 1) x batch = {(steps + 1) * batch}")
    print(provenance(device, None, {"model": model, "batch": batch, "steps": steps, "store": f"{count} x 3 x {side}^2"}))

    def make_model() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(model, 1000, (3, crop, crop))

    with tempfile.TemporaryDirectory(prefix="stream_gpu_") as folder:
        path = Path(folder) / "store.npy"
        write_store(path, count, side, 0)
        images = StoredImages(path, crop=crop)
        loader_rate(images, device, batch, 2)  # warm-up: threads, pinned buffers, the device's first kernels
        cached = loader_rate(images, device, batch, steps)
        evict(path)
        disk = loader_rate(images, device, batch, steps)
        bare = bare_rate(make_model, device, batch, crop, steps)
        trainer = trainer_rate(make_model, images, device, batch, steps)
    print(f"loader (page cache)     {cached:9.0f} img/s")
    print(f"loader (evicted: disk)  {disk:9.0f} img/s")
    print(f"bare step               {bare:9.0f} img/s")
    print(f"trainer, streamed       {trainer:9.0f} img/s")
    judged = not args.quick and device.type == "cuda"
    results = [("loader / bare step (disk)", disk / bare, disk / bare >= LOADER_GOAL, f">= {LOADER_GOAL:g}"),
               ("trainer step / bare step", bare / trainer, bare / trainer <= TRAINER_GOAL, f"<= {TRAINER_GOAL:g}")]
    for name, ratio, passed, goal in results:
        verdict = ("PASS" if passed else "FAIL") if judged else "(not judged: smoke run)"
        print(f"{name:<28} {ratio:6.2f}x  goal {goal}x: {verdict}")
    jpeg = jpeg_rate(device, 64 if args.quick else 1024, side)
    if jpeg is not None:
        print(f"JPEG bytes, decode_jpeg on {device.type}: {jpeg[0]:9.0f} img/s, {jpeg[1] / 1e3:.1f} kB/image "
              f"(uint8 store: {3 * side * side / 1e3:.1f} kB/image)")
    return 0 if not judged or all(passed for _, _, passed, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
