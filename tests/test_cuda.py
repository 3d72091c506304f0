"""The CUDA-only paths, run where a GPU is (`pytest -m cuda`; skipped elsewhere): crop/flip on the GPU generator,
the trainer's channels_last layout, bf16 autocast, torch.compile and checkpoint resume on the GPU, GraNd's batched
norms against a per-sample loop on the GPU, and a sweep whose GPU numbers match its CPU numbers, in this process and
with two workers sharing the GPU."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deep.augment import crop_flip
from deep.checkpoint import Checkpointing
from deep.cli import main
from deep.data import load_dataset
from deep.models import build_model
from deep.runs import RunStore
from deep.scores.grand import gradient_norms, layerwise_rules
from deep.train import InputPipeline, TrainConfig, TrainResult, train
from tests.test_augment import _candidates, _images
from tests.test_scores import _inplace_cnn, _with_running_statistics, loop_gradient_norms

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA = torch.device("cuda")
# debug_images (3 easy classes of 3x8x8 uint8 images) with augmentation: on the CPU, 3 epochs reach 86-100 %
# best validation accuracy over 5 seeds; 6 epochs and 80 % leave room for bf16.
IMAGES = TrainConfig(epochs=6, batch_size=32, lr=0.05, augment=True)
# bf16 autocast rounds activations to 8 mantissa bits, so over 30-45 epochs a GPU training drifts from its CPU twin
# as far as another init would. On the CPU, 10 inits of the mlp on the same digits data spread with a std of 0.3
# (full) and 0.6 (random at d = 0.5) accuracy points, so the difference of two trainings has a std under 0.9
# points: 3 points (8 of the 270 test digits) is 3.4 of those stds, while a broken GPU path loses far more.
ACCURACY_POINTS = 3.0
SWEEP = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "--densities", "0.5", "--seeds", "1",
         "--no-progress"]


def test_crop_flip_on_the_gpu_generator_gives_seeded_padded_crops() -> None:
    x = _images(64, 3, 8, 8).to(CUDA)
    out = crop_flip(x, torch.Generator(device=CUDA).manual_seed(0))
    assert out.device.type == "cuda"
    assert torch.equal(out, crop_flip(x, torch.Generator(device=CUDA).manual_seed(0)))
    flips = []
    for image, result in zip(x.cpu(), out.cpu()):
        matches = [i for i, c in enumerate(_candidates(image, 1)) if torch.equal(result, c)]
        assert matches, "a GPU output is not a crop of the padded image"
        flips.append(matches[0] >= 9)  # the second half of the candidates are the flipped crops
    assert 0 < sum(flips) < len(flips)


def test_translate_on_the_gpu_generator_shifts_within_its_range() -> None:
    """CIFAR's RandomAffine-style shift (translate 0.15 on 32 px: -5 .. 5 pixels), drawn on the GPU."""
    x = torch.zeros(500, 1, 32, 32, dtype=torch.uint8, device=CUDA)
    x[:, :, 16, 16] = 255  # one bright pixel: where it lands is the shift
    out = crop_flip(x, torch.Generator(device=CUDA).manual_seed(0), translate=0.15, flip=False)
    assert torch.equal(out, crop_flip(x, torch.Generator(device=CUDA).manual_seed(0), translate=0.15, flip=False))
    shifts = (out[:, 0] == 255).nonzero()[:, 1:].cpu() - 16
    assert len(shifts) == len(x) and int(shifts.abs().max()) == 5 and len(shifts.unique()) == 11


def _train_images(cfg: TrainConfig, **kwargs: object) -> tuple[nn.Module, TrainResult]:
    """The registry's cnn trained on debug_images on the GPU."""
    data = load_dataset("debug_images")
    torch.manual_seed(0)
    model = build_model("cnn", data.num_classes, data.input_shape)
    result = train(model, data.train, cfg, seed=0, device=CUDA, normalization=data.normalization, val=data.val,
                   progress=False, **kwargs)
    return model, result


def _assert_learned(result: TrainResult) -> None:
    losses = [record["train_loss"] for record in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] / 3
    assert result.best_val_accuracy >= 0.8


def test_trainer_on_the_gpu_runs_channels_last_under_bf16_with_gpu_augmentation() -> None:
    seen: list[tuple[bool, torch.dtype]] = []

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if module.training:
            seen.append((args[0].is_contiguous(memory_format=torch.channels_last), output.dtype))

    data = load_dataset("debug_images")
    torch.manual_seed(0)
    model = build_model("cnn", data.num_classes, data.input_shape)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_hook(record)
    result = train(model, data.train, IMAGES, seed=0, device=CUDA, normalization=data.normalization, val=data.val,
                   progress=False)
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert seen and set(seen) == {(True, torch.bfloat16)}  # every training step: channels_last in, bf16 out
    _assert_learned(result)


def test_compiled_training_on_the_gpu_learns() -> None:
    _, result = _train_images(replace(IMAGES, compile=True))
    _assert_learned(result)


def test_training_resumes_on_the_gpu_from_a_checkpoint(tmp_path: Path) -> None:
    """The CUDA RNG and the GPU augmentation generator are saved and restored; the epochs after go on alike."""
    _, uninterrupted = _train_images(IMAGES)
    stopped = Checkpointing(tmp_path / "stopped.pt", every=1)
    _train_images(replace(IMAGES, epochs=3), checkpoint=stopped)
    _, resumed = _train_images(IMAGES, resume=stopped.load())
    assert resumed.resumed_from_epochs == [2]
    assert len(resumed.history) == IMAGES.epochs
    first, second = ([r["train_loss"] for r in result.history] for result in (uninterrupted, resumed))
    # On the GPU a resumed training is close to, not bit-identical with, the uninterrupted one (cuDNN's kernels).
    np.testing.assert_allclose(second, first, rtol=0.05, atol=0.01)


@pytest.fixture
def float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TF32: cuDNN's default convolutions round to 10 mantissa bits, differently in the two ways compared."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert torch.get_float32_matmul_precision() == "highest"  # matrix products: full float32 unless asked


@pytest.mark.parametrize("name, shape, kwargs, rtol", [
    ("mlp", (6,), {"hidden": (8,)}, 1e-4),
    ("cnn", (3, 6, 6), {"widths": (4, 8)}, 1e-4),
    # 11 million squared gradient entries summed in float32 in two orders: a looser bound.
    ("resnet18", (3, 32, 32), {}, 1e-3),
])
def test_grand_batched_norms_equal_a_per_sample_loop_on_the_gpu(
    name: str, shape: tuple[int, ...], kwargs: dict, rtol: float, float32: None
) -> None:
    torch.manual_seed(0)
    model = _with_running_statistics(build_model(name, 3, shape, **kwargs), shape)
    assert layerwise_rules(model) is not None
    _assert_gradient_norms_match(model, shape, rtol)


@pytest.mark.parametrize("groups", [1, 2])  # grouped convolution: the torch.func (vmap) path
def test_grand_layerwise_and_vmap_paths_match_the_loop_on_the_gpu(groups: int, float32: None) -> None:
    torch.manual_seed(0)
    shape = (2, 7, 7)
    model = _with_running_statistics(_inplace_cnn(shape[0], groups), shape)
    assert (layerwise_rules(model) is None) == (groups == 2)
    _assert_gradient_norms_match(model, shape, 1e-4)


def _assert_gradient_norms_match(model: nn.Module, shape: tuple[int, ...], rtol: float) -> None:
    """Batched GraNd on the GPU (channels_last inputs, as the scorer prepares them) against one backward per sample."""
    layout = torch.channels_last if len(shape) == 3 else torch.contiguous_format
    model = model.to(CUDA, memory_format=layout)
    x, y = torch.randn(6, *shape), torch.tensor([0, 1, 2, 1, 0, 2])
    prepare = InputPipeline(None, CUDA)
    batched = gradient_norms(model, x, y, prepare, chunk=4)  # chunks of 4 and 2
    np.testing.assert_allclose(batched, loop_gradient_norms(model, prepare(x), y.to(CUDA)), rtol=rtol, atol=1e-6)


@pytest.fixture(scope="module")
def cpu_and_gpu_sweeps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`full` and `random` at d = 0.5 on digits with the mlp, run in this process on the CPU and on the GPU."""
    outs = {}
    for device in ("cpu", "cuda"):
        outs[device] = tmp_path_factory.mktemp(device)
        assert main([*SWEEP, "--device", device, "--launcher", "local", "--out", str(outs[device])]) == 0
    return outs


def _finals(out: Path) -> dict[str, tuple[np.ndarray, float]]:
    """Each final run's kept indices and test accuracy, by task name."""
    return {run.key: (run.array("kept"), run.metrics["accuracy"]) for run in RunStore(out).runs("final")}


def _assert_same_kept_and_close_accuracy(out: Path, reference: Path) -> None:
    runs, expected = _finals(out), _finals(reference)
    assert sorted(runs) == sorted(expected) and len(runs) == 2
    for key, (kept, accuracy) in expected.items():
        np.testing.assert_array_equal(runs[key][0], kept)  # pruning is numpy, seeded: identical everywhere
        assert abs(runs[key][1] - accuracy) * 100 <= ACCURACY_POINTS


def test_gpu_sweep_matches_the_cpu_sweep(cpu_and_gpu_sweeps: dict[str, Path]) -> None:
    _assert_same_kept_and_close_accuracy(cpu_and_gpu_sweeps["cuda"], cpu_and_gpu_sweeps["cpu"])


def test_two_workers_sharing_the_gpu_match_the_sweep_in_this_process(
    tmp_path: Path, cpu_and_gpu_sweeps: dict[str, Path], worker_trainings
) -> None:
    out = tmp_path / "runs"
    assert main([*SWEEP, "--device", "cuda", "--launcher", "processes", "--runs-per-device", "2",
                 "--out", str(out)]) == 0
    _assert_same_kept_and_close_accuracy(out, cpu_and_gpu_sweeps["cuda"])
    assert worker_trainings() == Counter(final=2)
