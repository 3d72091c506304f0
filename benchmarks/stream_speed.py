"""Streaming from an image store on the CPU: batches/s against torchvision's ImageFolder + DataLoader, and the store's
format chosen by measurement.

1. Writes an ImageFolder tree of N JPEGs (default 20,000) of random sizes 64-96 px in 100 classes, preprocesses it
   once into a store (deep.data.store.build_store, one worker per core; resize the shorter side to S = 64 and keep the
   centre square), then times, in interleaved rounds, one epoch of batches of 256 with RandomResizedCrop(56) + flip:
   - stream: deep.batches.Streamed over the store (prefetch thread, positioned reads) + deep.augment.train_view;
   - torchvision: ImageFolder(RandomResizedCrop(56), RandomHorizontalFlip(), PILToTensor()) + DataLoader(shuffle,
     one worker per core, persistent workers), decoding the JPEGs as every epoch of such a loader does.
   Goal (issue 21): stream >= GOAL_RATIO x the torchvision batches/s.
2. The store's format at ImageNet's stored size (256 x 256): FORMAT_IMAGES synthetic images as JPEG bytes (quality
   90) decoded on one CPU thread by PIL and by torchvision.io.decode_jpeg, against reads of a uint8 store in random
   order (one thread), with the bytes per image of each. GPU decoding (decode_jpeg on CUDA) is measured by
   benchmarks/stream_gpu.py in gpu_check.sh.
Every file was just written, so reads come from the page cache: the ratios measure decoding and copying, not a disk.
Run from the repository root: `python benchmarks/stream_speed.py [--images N] [--rounds R] [--quick]`. Exits 1 if the
goal fails.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import cpu_model, load_average  # noqa: E402
from deep._torchvision import import_torchvision  # noqa: E402
from deep.cli import POSITIVE_INT  # noqa: E402
from deep.augment import train_view  # noqa: E402
from deep.batches import Streamed  # noqa: E402
from deep.data.images import ResizeCenterCrop  # noqa: E402
from deep.data.store import StoredImages, build_store  # noqa: E402

GOAL_RATIO = 3.0
STORED, CROP, BATCH = 64, 56, 256
FORMAT_SIDE, FORMAT_IMAGES = 256, 300


def photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth random colour field plus noise: compresses about as a photo does (unlike pure noise)."""
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-24, 25, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_tree(root: Path, images: int, classes: int, seed: int) -> list[str]:
    """root/<class>/<i>.JPEG of random sizes 64-96 px (quality 90)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in tqdm(range(images), desc="writing JPEGs", unit="img"):
        folder = root / f"class_{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}.JPEG"
        photo(rng, *(int(v) for v in rng.integers(64, 97, 2))).save(path, quality=90)
        paths.append(str(path))
    return sorted(paths)


def stream_epoch(images: StoredImages, seed: int) -> int:
    """One epoch of augmented batches through the streaming path; returns the batch count."""
    source = Streamed(images, torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator)
    bounds = [(start, min(start + BATCH, len(images))) for start in range(0, len(images), BATCH)]
    for batch in source.gather(order, bounds):
        train_view(batch, generator, source.crop)
    return len(bounds)


def format_rates(seed: int) -> dict[str, tuple[float, float]]:
    """Images/s on one thread and bytes/image of each candidate format at FORMAT_SIDE px."""
    io_module = import_torchvision().io
    rng = np.random.default_rng(seed)
    pictures = [photo(rng, FORMAT_SIDE, FORMAT_SIDE) for _ in range(FORMAT_IMAGES)]
    encoded = []
    for picture in pictures:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=90)
        encoded.append(buffer.getvalue())
    tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in encoded]
    jpeg_bytes = float(np.mean([len(data) for data in encoded]))
    rates = {}
    start = time.perf_counter()
    for data in encoded:
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    rates["JPEG bytes, PIL decode"] = (FORMAT_IMAGES / (time.perf_counter() - start), jpeg_bytes)
    try:
        start = time.perf_counter()
        for data in tensors:
            io_module.decode_jpeg(data)
        rates["JPEG bytes, torchvision.io.decode_jpeg (CPU)"] = (FORMAT_IMAGES / (time.perf_counter() - start),
                                                                 jpeg_bytes)
    except RuntimeError as error:  # CPU-only torch with a CUDA torchvision wheel: its image extension does not load
        print(f"  torchvision.io.decode_jpeg unavailable here: {str(error)[:60]}...")
    with tempfile.TemporaryDirectory(prefix="stream_format_") as folder:
        path = Path(folder) / "store.npy"
        np.save(path, np.stack([np.asarray(p).transpose(2, 0, 1) for p in pictures]))
        store = StoredImages(path)
        order = np.random.default_rng(seed).permutation(FORMAT_IMAGES)
        start = time.perf_counter()
        for first in range(0, FORMAT_IMAGES, 50):
            store.read(order[first : first + 50])
        rates["uint8 store, positioned reads"] = (FORMAT_IMAGES / (time.perf_counter() - start),
                                                  float(3 * FORMAT_SIDE * FORMAT_SIDE))
    return rates


def main() -> int:
    """Print the machine header, the timings, the ratio and PASS/FAIL, and the format table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000, help="JPEGs to write (default 20000)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best epoch of each is kept")
    parser.add_argument("--seed", type=int, default=0, help="seed of the images and orders (default 0)")
    parser.add_argument("--threads", type=POSITIVE_INT, default=None,
                        help="torch threads of the streaming process (default: one per usable core, as the DataLoader "
                             "has one worker per core; on a machine loaded by other jobs, 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 images, one round, goal not judged")
    args = parser.parse_args()
    images, rounds = (1000, 1) if args.quick else (args.images, args.rounds)
    cores = len(os.sched_getaffinity(0))
    args.threads = cores if args.threads is None else args.threads
    torch.set_num_threads(args.threads)
    torchvision = import_torchvision()
    transforms = torchvision.transforms
    print(f"date           {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"cpu            {cpu_model()}, {cores} cores usable; stream: {args.threads} torch thread(s) + prefetch "
          f"thread; torchvision: {cores} DataLoader workers")
    print(f"load average   {load_average()} (1, 5, 15 min, before the run)")
    print(f"platform       {platform.platform()}")
    print(f"versions       python {platform.python_version()}, torch {torch.__version__}, torchvision "
          f"{torchvision.__version__}, Pillow {PIL.__version__}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory(prefix="stream_speed_") as workdir:
        root = Path(workdir) / "train"
        os.environ["DROP_CACHE"] = str(Path(workdir) / "cache")
        paths = write_tree(root, images, 100, args.seed)
        megabytes = sum(os.path.getsize(p) for p in paths) / 1e6
        start = time.perf_counter()
        store = build_store(paths, (STORED, STORED), ResizeCenterCrop(STORED, STORED, keep_aspect=True),
                            desc="preprocessing", workers=cores)
        preprocess = time.perf_counter() - start
        stored = StoredImages(store, crop=CROP)
        print(f"data           {images} JPEGs 64-96 px, {megabytes:.1f} MB; store {store.stat().st_size / 1e6:.1f} MB "
              f"({3 * STORED * STORED} bytes an image), preprocessed in {preprocess:.1f} s "
              f"({images / preprocess:.0f} img/s, {cores} workers)")
        augment = transforms.Compose([transforms.RandomResizedCrop(CROP), transforms.RandomHorizontalFlip(),
                                      transforms.PILToTensor()])
        loader = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(str(root), transform=augment),
                                             batch_size=BATCH, shuffle=True, num_workers=cores, persistent_workers=True)
        batches = -(-images // BATCH)
        for _ in loader:  # starts the workers and warms the page cache, as the store's first epoch does below
            pass
        stream_epoch(stored, args.seed)
        best = {"stream": float("inf"), "torchvision": float("inf")}
        for round_ in range(rounds):
            start = time.perf_counter()
            stream_epoch(stored, args.seed + round_)
            best["stream"] = min(best["stream"], time.perf_counter() - start)
            start = time.perf_counter()
            for _ in loader:
                pass
            best["torchvision"] = min(best["torchvision"], time.perf_counter() - start)
        del loader
    print(f"batches        {batches} of {BATCH} per epoch, RandomResizedCrop({CROP}) + flip; best of {rounds} rounds")
    for name, seconds in best.items():
        print(f"{name:<14} {seconds:7.2f} s/epoch {batches / seconds:8.2f} batches/s {images / seconds:9.0f} img/s")
    ratio = best["torchvision"] / best["stream"]
    passed = ratio >= GOAL_RATIO
    verdict = "(quick: not judged)" if args.quick else ("PASS" if passed else "FAIL")
    print(f"stream / torchvision {ratio:.1f}x; goal >= {GOAL_RATIO:g}x: {verdict}")
    print(f"format at {FORMAT_SIDE} x {FORMAT_SIDE} px ({FORMAT_IMAGES} images, one CPU thread):")
    rates = format_rates(args.seed)
    reference = rates["uint8 store, positioned reads"][0]
    for name, (rate, size) in rates.items():
        print(f"  {name:<46} {rate:9.0f} img/s  {size / 1e3:7.1f} kB/image  store read / this {reference / rate:6.1f}x")
    return 0 if passed or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
