"""The image cache on a TinyImageNet-sized folder: the first load (decode and write the cache) against a later one.

Writes an ImageFolder tree of N train and N/10 test 64x64 JPEGs in 200 classes (default N = 50,000; TinyImageNet
has 100,000 + 10,000 of about 2 kB, and these are made about that size) into a temporary folder, then times:
- decode only: deep.data.images.read_images on every file, no cache: what every load of every worker did before;
- cold: load_imagefolder with an empty cache: decode, write the cache, channel statistics;
- warm: load_imagefolder again: stat and hash the file list, map the cache, channel statistics (which read
  every pixel, so the warm time includes touching the whole array), best of --repeats.
Goal (issue 11): the warm load at least GOAL_RATIO times faster than the cold one. Every file was just written,
so all three read from the page cache: the ratio measures decoding, not the disk.
Run from the repository root: `python benchmarks/decode_cache.py [--images N] [--repeats R] [--quick]`.
Exits with status 1 if the goal fails.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from benchmarks._common import cpu_model, load_average  # noqa: E402
from deep.data.imagefolder import load_imagefolder  # noqa: E402
from deep.data.images import read_images  # noqa: E402

GOAL_RATIO = 10.0
SIZE = 64


def write_tree(root: Path, images: int, classes: int, seed: int) -> list[Path]:
    """root/{train,test}/<class>/<i>.JPEG, `images` and images // 10: smooth random colour fields plus noise."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in tqdm(range(images + images // 10), desc="writing JPEGs", unit="img"):
        folder = root / ("train" if i < images else "test") / f"class_{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((SIZE, SIZE), Image.BICUBIC)
        pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-32, 33, (SIZE, SIZE, 3))
        path = folder / f"{i:06d}.JPEG"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=75)
        paths.append(path)
    return paths


def timed(function: object) -> float:
    """Wall-clock seconds of one call of `function`."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> int:
    """Print the machine header, the three timings and their ratios, and PASS/FAIL for the goal."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50_000,
                        help="train JPEGs to write, and a tenth as many test JPEGs (default 50000)")
    parser.add_argument("--classes", type=int, default=200, help="class folders (default 200, as TinyImageNet)")
    parser.add_argument("--repeats", type=int, default=3, help="warm loads timed; the best is kept (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the images (default 0)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 600 images, goal not judged")
    args = parser.parse_args()
    images = 600 if args.quick else args.images

    with tempfile.TemporaryDirectory(prefix="decode_cache_") as workdir:
        root, cache = Path(workdir) / "tree", Path(workdir) / "cache"
        os.environ["DROP_CACHE"] = str(cache)  # an empty cache of its own, removed with the folder
        print(f"date           {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
        print(f"cpu            {cpu_model()}, {os.cpu_count()} cores")
        print(f"load average   {load_average()} (1, 5, 15 min, before the run)")
        print(f"platform       {platform.platform()}")
        print(f"versions       python {platform.python_version()}, numpy {np.__version__}, Pillow {PIL.__version__}")
        print(f"decode threads {min(16, (os.cpu_count() or 1) + 2)} (deep.data.images.read_images)")
        paths = write_tree(root, images, args.classes, args.seed)
        megabytes = sum(path.stat().st_size for path in paths) / 1e6
        print(f"data           {len(paths)} JPEGs {SIZE}x{SIZE} ({images} train, {len(paths) - images} test) in "
              f"{args.classes} classes, {megabytes:.1f} MB; cache {len(paths) * 3 * SIZE * SIZE / 1e6:.1f} MB; "
              f"in {workdir}")

        decode = timed(lambda: read_images(paths, (SIZE, SIZE), desc="decode only"))
        cold = timed(lambda: load_imagefolder(root))
        warm = min(timed(lambda: load_imagefolder(root)) for _ in range(args.repeats))

    count = len(paths)
    print(f"{'decode only (before the cache)':<34} {decode:8.2f} s  {count / decode:9.0f} img/s")
    print(f"{'cold load (decode + write cache)':<34} {cold:8.2f} s  {count / cold:9.0f} img/s")
    print(f"{'warm load (map the cache)':<34} {warm:8.2f} s  {count / warm:9.0f} img/s  (best of {args.repeats})")
    ratio = cold / warm
    passed = ratio >= GOAL_RATIO
    verdict = "(quick: not judged)" if args.quick else ("PASS" if passed else "FAIL")
    print(f"cold / warm {ratio:.1f}x, decode only / warm {decode / warm:.1f}x; goal >= {GOAL_RATIO:g}x: {verdict}")
    return 0 if passed or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
