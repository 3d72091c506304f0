"""--dataset imagenet and streamed images: ILSVRC-2012 layouts the tests write, the resumable store, streamed batches."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from deep.augment import train_view
from deep.batches import Resident, Streamed
from deep.data import load_dataset
from deep.data import store as store_module
from deep.data.imagenet import crop_size
from deep.data.store import CHUNK, StoredImages, build_store, streamed
from deep.models import build_model
from deep.query import TraceRecorder
from deep.schedule import TrainConfig
from deep.train import train

WNIDS = ["n01443537", "n01440764", "n01484850"]  # not sorted: class k is the k-th in sorted order
COLOURS = {"n01440764": (200, 40, 40), "n01443537": (40, 200, 40), "n01484850": (40, 40, 200)}


def _image(path: Path, wnid: str, rng: np.random.Generator) -> None:
    """A JPEG of a random size in the class's colour, with noise."""
    width, height = (int(v) for v in rng.integers(12, 40, 2))
    pixels = np.clip(np.array(COLOURS[wnid]) + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def write_imagenet(root: Path, layout: str = "folders", train: int = 8, val: int = 4, seed: int = 0) -> Path:
    """ROOT/train/<wnid>/*.JPEG and val/ in class folders, or flat with LOC_val_solution.csv or the devkit's files."""
    rng = np.random.default_rng(seed)
    for wnid in WNIDS:
        (root / "train" / wnid).mkdir(parents=True)
        for i in range(train):
            _image(root / "train" / wnid / f"{wnid}_{i}.JPEG", wnid, rng)
    (root / "val").mkdir()
    truth = [wnid for wnid in WNIDS for _ in range(val)]
    for number, wnid in enumerate(truth, 1):
        name = f"ILSVRC2012_val_{number:08d}.JPEG"
        folder = root / "val" / (wnid if layout == "folders" else "")
        folder.mkdir(exist_ok=True)
        _image(folder / name, wnid, rng)
    if layout == "csv":
        with (root / "LOC_val_solution.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["ImageId", "PredictionString"])
            for number, wnid in enumerate(truth, 1):
                writer.writerow([f"ILSVRC2012_val_{number:08d}", f"{wnid} 1 2 30 40 {wnid} 3 4 20 20"])
    if layout == "devkit":
        data = root / "ILSVRC2012_devkit_t12" / "data"
        data.mkdir(parents=True)
        ids = {wnid: 10 + k for k, wnid in enumerate(WNIDS)}  # ILSVRC2012_IDs in no particular order
        (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{ids[w]}\n" for w in truth))
        synsets = np.array([(ids[w], w, "words", "gloss", 0) for w in WNIDS],
                           dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"),
                                  ("num_children", "O")])
        savemat(data / "meta.mat", {"synsets": synsets})
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DROP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("layout", ["folders", "csv", "devkit"])
def test_every_validation_layout_gives_the_same_labels(tmp_path: Path, cache: Path, layout: str) -> None:
    data = load_dataset("imagenet", write_imagenet(tmp_path / layout, layout), options={"image_size": 16})
    assert data.classes == sorted(WNIDS) and data.train.x.shape == (24, 3, 14, 14)
    assert data.train.ids[0] == "train/n01440764/n01440764_0.JPEG"
    assert len(data.val) == len(data.test) == 6  # the official validation set halved per class, as CIFAR's test set
    for split in (data.train, data.val, data.test):
        pixels = split.x.load().float().mean((2, 3))
        colours = torch.tensor([COLOURS[data.classes[k]] for k in split.y], dtype=torch.float32)
        assert (pixels - colours).abs().max() < 25  # each image's colour is its label's
    assert isinstance(data.train.x, StoredImages) and data.train.x.crop == 14


def test_partial_and_mislabelled_trees_are_errors(tmp_path: Path, cache: Path) -> None:
    root = write_imagenet(tmp_path / "a", "csv", train=2, val=2)
    (root / "train" / "n09999999").mkdir()
    with pytest.raises(ValueError, match="n09999999 holds no images"):
        load_dataset("imagenet", root)
    (root / "train" / "n09999999").rmdir()
    (root / "train" / "cats").mkdir()
    with pytest.raises(ValueError, match="WordNet id.*cats"):
        load_dataset("imagenet", root)
    (root / "train" / "cats").rmdir()
    (root / "val" / "ILSVRC2012_val_00000003.JPEG").unlink()
    with pytest.raises(FileNotFoundError, match="1 validation images.*missing.*ILSVRC2012_val_00000003"):
        load_dataset("imagenet", root)
    (root / "LOC_val_solution.csv").unlink()
    with pytest.raises(FileNotFoundError, match="LOC_val_solution.csv"):
        load_dataset("imagenet", root)
    other = write_imagenet(tmp_path / "b", "folders", train=2, val=2)
    (other / "val" / "n07777777").mkdir()
    with pytest.raises(ValueError, match="train/ lacks: n07777777"):
        load_dataset("imagenet", other)


def test_a_corrupt_jpeg_is_an_error_naming_the_file(tmp_path: Path, cache: Path) -> None:
    root = write_imagenet(tmp_path / "tree", train=2, val=2)
    bad = root / "train" / "n01484850" / "n01484850_1.JPEG"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated file
    with pytest.raises(ValueError, match="n01484850_1.JPEG"):
        load_dataset("imagenet", root, options={"image_size": 16})


def test_preprocessing_resumes_after_a_failure(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(2 * CHUNK + 5)]
    for i, path in enumerate(paths):
        Image.new("RGB", (4, 4), (i % 256, 7, 9)).save(path)
    decoded: list[str] = []
    failed: list[bool] = []
    real = store_module.decode

    def failing(path, transform=None):  # noqa: ANN001, ANN202 - the decode signature
        decoded.append(str(path))
        if len(decoded) == CHUNK + 3 and not failed:  # the first chunk is done, the second is not
            failed.append(True)
            raise RuntimeError("killed")
        return real(path, transform)

    monkeypatch.setattr(store_module, "decode", failing)
    with pytest.raises(RuntimeError, match="killed"):
        build_store(paths, (4, 4), workers=0)
    decoded.clear()
    target = build_store(paths, (4, 4), workers=0)
    assert len(decoded) == len(paths) - CHUNK  # the finished chunk was not decoded again
    assert not list(cache.glob("*.partial.npy")) and not list(cache.glob("*.done.npy"))
    images = np.load(target)
    assert images[:, 0, 0, 0].tolist() == [i % 256 for i in range(len(paths))]


def test_preprocessing_resumes_after_sigkill_of_its_workers(tmp_path: Path, cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(3 * CHUNK)]
    for i, path in enumerate(paths):
        Image.new("RGB", (4, 4), (i % 256, 1, 2)).save(path)
    listing = tmp_path / "paths.txt"
    listing.write_text("\n".join(map(str, paths)))
    # A build whose worker kills its whole process group after the second chunk: nothing gets to clean up.
    script = textwrap.dedent(f"""
        import os, signal
        from deep.data import store
        import glob, time
        import numpy as np
        real = store._decode_chunk
        def chunk(task):
            if task[2] == 2 * store.CHUNK:
                for _ in range(400):  # until the parent has recorded the first two chunks
                    found = glob.glob(os.path.join(os.environ["DROP_CACHE"], "*.done.npy"))
                    if found and np.load(found[0])[:2].all():
                        break
                    time.sleep(0.05)
                os.killpg(0, signal.SIGKILL)
            return real(task)
        store._decode_chunk = chunk
        store.build_store(open({str(listing)!r}).read().split(), (4, 4), workers=1)
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, start_new_session=True)
    assert result.returncode == -9
    done = np.load(next(cache.glob("*.done.npy")))
    assert done.tolist() == [True, True, False]
    decoded: list[str] = []
    real = store_module.decode
    monkeypatch.setattr(store_module, "decode", lambda path, transform=None: decoded.append(path) or real(path, transform))
    target = build_store([str(p) for p in paths], (4, 4), workers=0)
    assert decoded == [str(p) for p in paths[2 * CHUNK:]]  # only the chunk that was not finished
    assert np.load(target)[:, 0, 0, 0].tolist() == [i % 256 for i in range(len(paths))]


def test_streamed_batches_equal_resident_batches_with_the_same_seed(tmp_path: Path, cache: Path) -> None:
    data = load_dataset("imagenet", write_imagenet(tmp_path / "tree"), options={"image_size": 24})
    stored = data.train.x
    resident = Resident(stored.load(), stored.crop)
    streamed = Streamed(stored, torch.device("cpu"), prefetch=2, readers=3)
    order = torch.randperm(len(stored), generator=torch.Generator().manual_seed(1))
    bounds = [(0, 7), (7, 16), (16, 24)]
    pairs = []
    for source in (resident, streamed):
        generator = torch.Generator().manual_seed(5)
        pairs.append([train_view(b, generator, source.crop) for b in source.gather(order, bounds)])
    for a, b in zip(*pairs):
        assert a.shape == (len(a), 3, 21, 21) and torch.equal(a, b)
    evaluated = [torch.cat(list(source.ordered(10))) for source in (resident, streamed)]
    assert torch.equal(evaluated[0], stored.load()[:, :, 1:22, 1:22]) and torch.equal(evaluated[1], evaluated[0])


def _fit(root: Path, stream: bool) -> tuple[list[float], list[float], tuple]:
    with streamed(stream):
        data = load_dataset("imagefolder", root, options={"image_size": 16})
    assert isinstance(data.train.x, StoredImages) == stream
    torch.manual_seed(0)
    model = build_model("cnn", data.num_classes, data.input_shape)
    result = train(model, data.train, TrainConfig(2, 8, 0.05), seed=3, device="cpu", normalization=data.normalization,
                   val=data.val, progress=False)
    return [r["train_loss"] for r in result.history], [p.sum().item() for p in model.parameters()], data.normalization


def test_imagefolder_streamed_trains_exactly_as_in_memory(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "folder"
    write_imagenet(root, "folders")
    (root / "val").rename(root / "test")
    assert _fit(root, True) == _fit(root, False)


def test_imagenet_trains_end_to_end_through_the_stream(tmp_path: Path, cache: Path) -> None:
    from deep.cli import main

    root = write_imagenet(tmp_path / "tree", "devkit")
    code = main(["train", "--dataset", "imagenet", "--data", str(root), "--image-size", "24", "--model", "cnn",
                 "--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--milestones", "--device", "cpu",
                 "--out", str(tmp_path / "runs"), "--no-progress"])
    assert code == 0
    metrics = json.loads(next((tmp_path / "runs").rglob("metrics.json")).read_text())
    assert metrics["accuracy"] > 0.5 and metrics["num_train"] == 24  # three colours: chance is 1/3


RSS_SCRIPT = """
import sys
import torch
from torch import nn
from deep.data.base import Split
from deep.data.store import StoredImages
from deep.schedule import TrainConfig
from deep.train import train

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

class Corner(nn.Module):  # a model that costs nothing: the memory measured is the data path's
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
    def forward(self, x):
        return self.fc(x[:, :, 0, 0])

images = StoredImages(sys.argv[1])
split = Split(images, torch.arange(len(images)) % 2)
seen = []
train(Corner(), split, TrainConfig(1, 4, 0.1), seed=0, device="cpu", progress=False,
      on_batch=[lambda *_: seen.append(rss())])
print(seen[0], max(seen))  # after the first step (its one-off allocations), and the peak of the epoch
"""


def test_resident_memory_stays_below_a_cap_smaller_than_the_store(tmp_path: Path) -> None:
    # ImageNet's stored size, 192 KiB an image: a 135 MiB store. The cap: the process after its first step plus a
    # quarter of the store. The heap keeps a step's batch-sized temporaries for reuse (deep.batches.reuse_heap): with
    # batches of 4 the process settled 13 MiB above its first step in one epoch, 21 MiB over three.
    count, shape = 720, (3, 256, 256)
    margin = 32 * 2**20
    path = tmp_path / "store.npy"
    with path.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "|u1", "fortran_order": False, "shape": (count, *shape)})
        file.truncate(file.tell() + count * int(np.prod(shape)))  # sparse: reads as zeros, costs no disk time
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(path)], env=env, capture_output=True, text=True,
                            check=True)
    before, peak = (int(v) for v in result.stdout.split()[-2:])
    assert path.stat().st_size > 4 * margin
    assert peak < before + margin, f"resident memory grew from {before / 2**20:.0f} to {peak / 2**20:.0f} MiB"


def test_traces_of_streamed_data_are_written_to_disk_and_resume(tmp_path: Path) -> None:
    n, cpu = 10, torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    held = TraceRecorder(n, cpu)
    disk = TraceRecorder(n, cpu, folder=tmp_path, epochs=3)
    for epoch in range(3):
        logits = torch.randn(n, 3, generator=generator)
        for recorder in (held, disk):
            recorder.on_batch(logits[:6], y[:6], torch.arange(6))
            recorder.on_batch(logits[6:], y[6:], torch.arange(6, n))
            recorder.on_epoch(None)
        if epoch == 0:  # a resumed training: a new recorder from the checkpointed state
            disk = TraceRecorder(n, cpu, resume=disk.state_dict(), folder=tmp_path, epochs=3)
    expected, got = held.trace(), disk.trace()
    assert isinstance(got.prob, np.memmap) and (tmp_path / "trace_prob.partial.npy").is_file()
    assert np.array_equal(expected.prob, got.prob) and np.array_equal(expected.correct, got.correct)


def write_imagenet64(root: Path, per_batch: int = 6, val: int = 8) -> Path:
    """The official npz files: ten train batches in a subfolder (as unzipped) and val_data.npz, labels 1-based."""
    rng = np.random.default_rng(0)
    (root / "Imagenet64_train_part1_npz").mkdir(parents=True)
    for i in range(1, 11):
        labels = [1 + (i + j) % 2 for j in range(per_batch)]  # two classes, labels 1 and 2
        data = np.stack([np.full((3, 64, 64), 10 * label, np.uint8).reshape(-1) for label in labels])
        np.savez(root / "Imagenet64_train_part1_npz" / f"train_data_batch_{i}.npz", data=data, labels=labels,
                 mean=data.mean(0))
    labels = [1 + j % 2 for j in range(val)]
    data = rng.integers(0, 256, (val, 3 * 64 * 64), dtype=np.uint8)
    data[:, :64] = 99  # the first row of the red plane
    np.savez(root / "val_data.npz", data=data, labels=labels)
    return root


def test_imagenet64_reads_the_official_npz_batches(tmp_path: Path) -> None:
    data = load_dataset("imagenet64", write_imagenet64(tmp_path / "i64"))
    assert data.train.x.shape == (60, 3, 64, 64) and data.classes == ["1", "2"]
    assert data.train.y[:3].tolist() == [1, 0, 1]  # batch 1: labels 2, 1, 2 become 1, 0, 1
    assert torch.equal(data.train.x[:, 0, 10, 10], data.train.y.to(torch.uint8) * 10 + 10)
    assert (data.test.x[:, 0, 0, :] == 99).all() and len(data.val) + len(data.test) == 8
    (tmp_path / "i64" / "val_data.npz").unlink()
    with pytest.raises(FileNotFoundError, match="val_data.npz"):
        load_dataset("imagenet64", tmp_path / "i64")
