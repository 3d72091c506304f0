"""Tests for deep.train on tiny models defined here and synthetic tensors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from torch import nn

from deep.data import DATASETS, default_config
from deep.data.base import Split
from deep.models import MODELS
from deep.runs import HISTORY_FIELDS, PER_UNIT_FIELDS, EpochRecord
from deep.train import (
    EpochState,
    TrainConfig,
    predict,
    scaled_epochs,
    train,
)


class TinyMLP(nn.Module):
    """Flatten -> hidden ReLU layers -> linear head."""

    def __init__(self, d_in: int, k: int, hidden: tuple[int, ...] = (16,)) -> None:
        super().__init__()
        widths = [d_in, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], k)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class TinyCNN(nn.Module):
    """Conv-BN-ReLU -> global average pool -> linear head."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, k)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def blobs(n: int, k: int = 3, d: int = 5, seed: int = 0, spread: float = 4.0) -> Split:
    """k well separated Gaussian classes in d dimensions, with a group id = 2 * y + (row parity)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centers = torch.randn(k, d, generator=torch.Generator().manual_seed(99)) * spread
    return Split(centers[y] + torch.randn(n, d, generator=g), y, 2 * y + torch.arange(n) % 2)


def images(n: int, k: int = 2, seed: int = 0) -> Split:
    """uint8 images (n, 3, 8, 8) whose mean brightness gives the class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = (y.view(-1, 1, 1, 1) * 120 + torch.randint(0, 100, (n, 3, 8, 8), generator=g)).to(torch.uint8)
    return Split(x, y)


FAST = TrainConfig(epochs=3, batch_size=16, lr=0.05, augment=False)


def test_learns_a_separable_problem() -> None:
    torch.manual_seed(0)
    model = TinyMLP(5, 3)
    result = train(model, blobs(240), dataclasses.replace(FAST, epochs=8), seed=0, val=blobs(90, seed=1), progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.95
    assert result.best_val_class_recall is not None and result.best_val_class_recall.shape == (3,)
    best = result.history[result.best_epoch - 1]
    assert best["val_accuracy"] == max(h["val_accuracy"] for h in result.history) == result.best_val_accuracy
    assert result.best == best and result.resumed_from_epochs == []


def test_same_seed_same_weights_and_history_on_cpu() -> None:
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.05, augment=True)

    def run(seed: int) -> tuple[dict, list[dict]]:
        torch.manual_seed(0)
        model = TinyCNN(3, 2)
        result = train(model, images(40), cfg, seed=seed, device="cpu", normalization=((0.5,), (0.25,)),
                       val=images(20, seed=1), progress=False)
        history = [{key: value for key, value in h.items() if key != "seconds"} for h in result.history]
        return model.state_dict(), history

    (weights_a, history_a), (weights_b, history_b), (weights_c, _) = run(3), run(3), run(4)
    assert history_a == history_b
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)
    assert not all(torch.equal(weights_a[name], weights_c[name]) for name in weights_a)


def test_global_rng_untouched() -> None:
    model = TinyMLP(5, 3)  # initialising it draws from the global RNG; training must not
    torch.manual_seed(123)
    state = torch.get_rng_state()
    train(model, blobs(20), FAST, seed=0, progress=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_callbacks_every_epoch_see_the_model_and_its_validation() -> None:
    data, val = blobs(60), blobs(30, seed=1)
    seen: list[int] = []

    def callback(state: EpochState) -> None:
        seen.append(state.epoch)
        logits = predict(state.model, val.x, normalization=None)
        accuracy = float((logits.argmax(1) == val.y).float().mean())
        assert state.val_metrics is not None and state.val_metrics["accuracy"] == pytest.approx(accuracy)
        assert state.history[-1]["epoch"] == state.epoch

    train(TinyMLP(5, 3), data, dataclasses.replace(FAST, epochs=4), seed=0, val=val, callbacks=[callback], progress=False)
    assert seen == [1, 2, 3, 4]


def test_label_smoothing_is_applied() -> None:
    data = blobs(30)
    cfg = TrainConfig(epochs=1, batch_size=30, lr=1e-12, augment=False, label_smoothing=0.3)
    torch.manual_seed(0)
    model = TinyMLP(5, 3)
    expected = F.cross_entropy(model(data.x), data.y, label_smoothing=0.3).item()
    assert train(model, data, cfg, seed=0, progress=False).history[0]["train_loss"] == pytest.approx(expected, rel=1e-5)


def test_history_records_are_the_epoch_records_of_the_store() -> None:
    """One definition of an epoch's record (deep.runs.EpochRecord): what the trainer keeps is what history.csv holds."""
    history = train(TinyMLP(5, 3), blobs(30), FAST, seed=0, val=blobs(20, seed=1), progress=False).history
    assert [list(record) for record in history] == [[f.name for f in dataclasses.fields(EpochRecord)]] * FAST.epochs
    assert set(HISTORY_FIELDS) | set(PER_UNIT_FIELDS) == set(history[0])


def test_a_callback_changes_the_loss_of_the_next_epoch() -> None:
    """CDB-W's hook: a callback updates the state a loss_fn reads (class weights), used from the next epoch on."""
    data = blobs(30)
    # One full batch and a negligible LR: the reported loss is the loss of the initial weights.
    cfg = TrainConfig(epochs=2, batch_size=30, lr=1e-12, weight_decay=0.0, momentum=0.0, augment=False)
    weights = torch.ones(3)
    expected: list[float] = []

    def weighted(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=weights)

    def cdbw(state: EpochState) -> None:
        weights.copy_(torch.tensor([0.2, 1.0, 0.0]))
        expected.append(F.cross_entropy(predict(state.model, data.x, normalization=None), data.y, weight=weights).item())

    history = train(TinyMLP(5, 3), data, cfg, seed=0, callbacks=[cdbw], loss_fn=weighted, progress=False).history
    assert history[1]["train_loss"] == pytest.approx(expected[0], rel=1e-5)
    assert history[0]["train_loss"] != pytest.approx(history[1]["train_loss"], rel=1e-3)


def test_loss_fn_replaces_the_loss_and_sees_every_index_once() -> None:
    data = blobs(50)
    calls: list[torch.Tensor] = []

    def push_class_zero(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        assert torch.equal(y, data.y[idx])
        calls.append(idx.clone())
        return -logits[:, 0].mean() + logits[:, 1:].mean()

    model = TinyMLP(5, 3)
    train(model, data, dataclasses.replace(FAST, epochs=2), seed=0, loss_fn=push_class_zero, progress=False)
    per_epoch = len(calls) // 2
    for epoch in range(2):
        seen = torch.cat(calls[epoch * per_epoch : (epoch + 1) * per_epoch])
        assert torch.equal(seen.sort().values, torch.arange(50))
    assert bool((predict(model, data.x, normalization=None).argmax(1) == 0).all())


def test_last_batch_kept_single_row_merged_and_max_batches() -> None:
    def sizes(n: int, batch: int, **kwargs: object) -> list[int]:
        seen: list[int] = []

        def record(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            seen.append(len(idx))
            return F.cross_entropy(logits, y)

        cfg = TrainConfig(epochs=1, batch_size=batch, lr=0.01, augment=False)
        train(TinyMLP(5, 3), blobs(n), cfg, seed=0, loss_fn=record, progress=False, **kwargs)
        return seen

    assert sizes(10, 4) == [4, 4, 2]
    assert sizes(9, 4) == [4, 5]
    assert sizes(3, 8) == [3]
    assert sizes(10, 4, max_batches=2) == [4, 4]


def test_milestones_drop_the_lr() -> None:
    cfg = TrainConfig(epochs=5, batch_size=16, lr=0.1, milestones=(2, 4), gamma=0.5, augment=False)
    history = train(TinyMLP(5, 3), blobs(20), cfg, seed=0, progress=False).history
    assert [h["lr"] for h in history] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


@settings(max_examples=50, deadline=None)
@given(
    epochs=st.integers(1, 400),
    fractions=st.lists(st.floats(0.01, 0.99), max_size=3),
    density=st.floats(0.01, 1.0),
)
def test_scaled_for_density(epochs: int, fractions: list[float], density: float) -> None:
    milestones = tuple(sorted({max(1, int(f * epochs)) for f in fractions}))
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=0.1, milestones=milestones)
    scaled = cfg.scaled_for_density(density)
    assert scaled.epochs == int((0.5 + 0.5 * density) * epochs / density) >= epochs
    # The reference rule, in its order of operations: int(m * (E' / E)), which can differ by one from int(m * E' / E).
    assert scaled.milestones == tuple(int(m * (scaled.epochs / epochs)) for m in milestones)
    assert dataclasses.replace(scaled, epochs=epochs, milestones=milestones) == cfg


@settings(max_examples=50, deadline=None)
@given(epochs=st.integers(1, 400), fractions=st.lists(st.floats(0.01, 0.99), max_size=3), short=st.integers(0, 400))
def test_compressed_and_truncated_schedules(epochs: int, fractions: list[float], short: int) -> None:
    milestones = tuple(sorted({max(1, int(f * epochs)) for f in fractions}))
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=0.1, milestones=milestones)
    squeezed = cfg.compressed(short)
    assert squeezed.epochs == short and all(0 < m <= short for m in squeezed.milestones)
    assert set(squeezed.milestones) == {int(m * (short / epochs)) for m in milestones} - {0}
    cut = cfg.truncated(short)
    assert cut.epochs == short and cut.milestones == tuple(m for m in milestones if m < short)


def test_scaled_for_density_reference_numbers() -> None:
    cfg = default_config("cifar10", "vgg16")
    assert cfg.scaled_for_density(1.0) == cfg
    half = cfg.scaled_for_density(0.5)
    assert (half.epochs, half.milestones) == (240, (120, 180))
    assert cfg.compressed(16).milestones == (8, 12)  # the reference code's 16-epoch query of a 160-epoch schedule
    assert scaled_epochs(200, 0.1) == 1100
    with pytest.raises(ValueError, match="density"):
        cfg.scaled_for_density(0.0)


def test_default_configs() -> None:
    vgg = default_config("cifar100", "vgg19")
    assert (vgg.lr, vgg.momentum, vgg.batch_size, vgg.epochs, vgg.milestones, vgg.gamma, vgg.weight_decay) == (
        0.1, 0.9, 128, 160, (80, 120), 0.2, 5e-4,
    )
    tiny = default_config("tinyimagenet", "resnet18")
    assert (tiny.lr, tiny.batch_size, tiny.epochs, tiny.milestones) == (0.2, 256, 200, (100, 150))
    assert (tiny.weight_decay, tiny.crop_padding, tiny.translate) == (1e-4, 4, None)  # the reference code's
    cifar10 = default_config("cifar10", "vgg16")
    assert (cifar10.weight_decay, cifar10.translate, cifar10.crop_padding) == (1e-4, 0.15, None)
    assert default_config("waterbirds", "resnet50_imagenet").milestones == ()
    lenet = default_config("mnist", "lenet300100")
    assert (lenet.lr, lenet.weight_decay, lenet.batch_size, lenet.epochs, lenet.milestones) == (
        0.1, 5e-4, 128, 160, (40, 80, 120))
    assert all(isinstance(entry.defaults.schedule(entry.defaults.model), TrainConfig) for entry in DATASETS.values())
    assert all(entry.defaults.model in MODELS for entry in DATASETS.values())
    with pytest.raises(ValueError, match="unknown dataset"):
        default_config("nope", "mlp")


def test_digits_default_reaches_95_percent() -> None:
    """The CPU-sized default: sklearn digits (pixels / 16, 70/30 split) with a 256-256 MLP."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x_t = torch.from_numpy((x[order] / 16.0).astype(np.float32))
    y_t = torch.from_numpy(y[order].astype(np.int64))
    cut = int(0.7 * len(y))
    torch.manual_seed(0)
    model = TinyMLP(64, 10, hidden=(256, 256))
    train(model, Split(x_t[:cut], y_t[:cut]), default_config("digits", "mlp"), seed=0, progress=False)
    accuracy = (predict(model, x_t[cut:], normalization=None).argmax(1) == y_t[cut:]).float().mean()
    assert float(accuracy) >= 0.95


def test_images_normalised_per_batch() -> None:
    data = images(6)
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.1)
    seen: list[torch.Tensor] = []

    class Spy(TinyCNN):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.detach().clone())
            return super().forward(x)

    model = Spy(3, 2)
    cfg = TrainConfig(epochs=1, batch_size=6, lr=0.01, augment=False)
    train(model, data, cfg, seed=0, normalization=(mean, std), progress=False)
    batch = seen[0]
    manual = (data.x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    # Rows come in shuffled order: compare as sorted sets of rows.
    assert torch.allclose(batch.flatten(1).sort(0).values, manual.flatten(1).sort(0).values, atol=1e-5)
    model.eval()
    assert torch.allclose(predict(model, data.x, normalization=(mean, std)), model(manual), atol=1e-5)


def test_predict_uses_eval_mode_and_restores_training() -> None:
    model = TinyCNN(3, 2)
    model.train()
    x = images(8).x
    logits = predict(model, x, normalization=None, batch_size=3)
    assert model.training
    model.eval()
    with torch.no_grad():
        assert torch.allclose(logits, model(x.float() / 255), atol=1e-6)


def test_val_groups_and_no_val() -> None:
    with_val = train(TinyMLP(5, 3), blobs(30), FAST, seed=0, val=blobs(30, seed=1), progress=False)
    assert len(with_val.history[0]["val_group_accuracy"]) == 6
    without = train(TinyMLP(5, 3), blobs(30), FAST, seed=0, progress=False)
    assert without.best_epoch is None and without.best_val_class_recall is None
    assert without.history[-1]["val_accuracy"] is None and without.history[-1]["epoch"] == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": -1}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"milestones": (5, 5)}, "milestones"),
        ({"milestones": (0,)}, "milestones"),
        ({"nesterov": True, "momentum": 0.0}, "nesterov"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
    ],
)
def test_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(FAST, **kwargs)


def test_user_errors() -> None:
    data = blobs(10)
    with pytest.raises(ValueError, match="normalization"):
        train(TinyMLP(5, 3), data, FAST, seed=0, normalization=((0.0,), (0.0,)), progress=False)
    with pytest.raises(ValueError, match="empty"):
        train(TinyMLP(5, 3), data.subset(torch.arange(0)), FAST, seed=0, progress=False)
