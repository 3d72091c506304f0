"""Scorers: hand-computed values on scripted epochs, GraNd against an autograd loop, and the whole registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from deep.data.base import Split
from deep.models import build_model
from deep.scores import SCORERS
from deep.scores.base import ScoreContext
from deep.scores.dynamic_uncertainty import WindowedUncertainty
from deep.scores.el2n import el2n
from deep.scores.grand import gradient_norms, layerwise_rules
from deep.scores.outputs import epoch_logits
from deep.scores.ssp import prototype_distances
from deep.train import TrainConfig, train


@dataclass
class FakeState:
    """The part of deep.train.EpochState that recorders use."""

    epoch: int
    model: nn.Module | None
    predict: Callable[[torch.Tensor], torch.Tensor]
    prepare: Callable[[torch.Tensor], torch.Tensor]


def context(y: list[int], epochs: int, num_classes: int = 2, seed: int = 0, **params: object) -> ScoreContext:
    """A context over len(y) dummy samples with labels `y`."""
    labels = torch.tensor(y)
    return ScoreContext(
        Split(torch.zeros(len(y), 1), labels), epochs, num_classes, None, torch.device("cpu"), seed, dict(params)
    )


def drive(recorder: object, per_epoch_logits: list[torch.Tensor]) -> np.ndarray:
    """Call `recorder` once per epoch with states whose predict returns the scripted logits; its result."""
    for epoch, logits in enumerate(per_epoch_logits, start=1):
        recorder(FakeState(epoch, None, lambda x, out=logits: out.clone(), lambda x: x))
    return recorder.result()


def two_class_logits(p_true: list[float], y: list[int]) -> torch.Tensor:
    """Two-class logits whose softmax gives probability `p_true[i]` to the label `y[i]`."""
    margin = torch.tensor([math.log(p / (1 - p)) for p in p_true], dtype=torch.float64)
    logits = torch.zeros(len(y), 2, dtype=torch.float64)
    logits[torch.arange(len(y)), torch.tensor(y)] = margin
    return logits


def test_el2n_hand_computed_at_the_final_epoch_only() -> None:
    y = [0, 1, 1]
    final = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [-50.0, 50.0]])
    early = torch.randn(3, 2)
    scores = drive(SCORERS["el2n"].make(context(y, epochs=2)), [early, final])
    # [.5, .5] vs e0 -> sqrt(.5); [.75, .25] vs e1 -> .75 sqrt(2); a confident correct sample -> ~0
    np.testing.assert_allclose(scores, [math.sqrt(0.5), 0.75 * math.sqrt(2.0), 0.0], atol=1e-12)


def test_forgetting_counts_transitions_and_ranks_never_learned_highest() -> None:
    correct = np.array([[1, 0, 1, 0], [0, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1]], dtype=bool)
    y = [0, 1, 0, 1, 0]
    logits = [two_class_logits([0.9 if c else 0.1 for c in correct[:, k]], y) for k in range(4)]
    scores = drive(SCORERS["forgetting"].make(context(y, epochs=4)), logits)
    np.testing.assert_array_equal(scores, [2, 0, 5, 1, 1])


def test_dynamic_uncertainty_hand_computed() -> None:
    p = [[0.5, 0.7, 0.6, 0.6], [0.2, 0.2, 0.2, 0.2]]
    y = [0, 1]
    logits = [two_class_logits([row[k] for row in p], y) for k in range(4)]
    scores = drive(SCORERS["dynamic_uncertainty"].make(context(y, epochs=4, window=2)), logits)
    # windows of 2: std = |difference| / 2 -> (0.1, 0.05, 0) -> mean 0.05; a constant probability -> 0
    np.testing.assert_allclose(scores, [0.05, 0.0], atol=1e-12)


def test_dynamic_uncertainty_window_capped_at_query_length() -> None:
    logits = [two_class_logits([p], [0]) for p in (0.2, 0.5, 0.8)]
    scores = drive(SCORERS["dynamic_uncertainty"].make(context([0], epochs=3)), logits)  # default window 10 -> 3
    np.testing.assert_allclose(scores, [np.std([0.2, 0.5, 0.8])], atol=1e-12)


@pytest.mark.parametrize("params, epochs", [({"window": 1}, 5), ({"window": 2.5}, 5), ({"window": True}, 5), ({}, 1)])
def test_dynamic_uncertainty_rejects_degenerate_windows(params: dict, epochs: int) -> None:
    with pytest.raises(ValueError, match="window|epochs"):
        SCORERS["dynamic_uncertainty"].make(context([0], epochs=epochs, **params))


@settings(max_examples=25, deadline=None)
@given(
    probs=arrays(np.float64, st.tuples(st.integers(2, 7), st.integers(1, 4)), elements=st.floats(0.01, 0.99)),
    window=st.integers(2, 9),
)
def test_dynamic_uncertainty_matches_the_definition(probs: np.ndarray, window: int) -> None:
    epochs, n = probs.shape
    y = [0] * n
    recorder = WindowedUncertainty(context(y, epochs=epochs, window=window))
    scores = drive(recorder, [two_class_logits(list(row), y) for row in probs])
    j = min(window, epochs)
    expected = np.mean([probs[k - j + 1 : k + 1].std(axis=0) for k in range(j - 1, epochs)], axis=0)
    np.testing.assert_allclose(scores, expected, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(logits=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)), elements=st.floats(-20, 20)))
def test_el2n_matches_numpy_and_is_bounded(logits: np.ndarray) -> None:
    y = np.arange(len(logits)) % logits.shape[1]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = np.linalg.norm(probs - np.eye(logits.shape[1])[y], axis=1)
    scores = el2n(torch.from_numpy(logits), torch.from_numpy(y))
    np.testing.assert_allclose(scores, expected, atol=1e-12)
    assert np.all(scores <= math.sqrt(2) + 1e-12)


def loop_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Reference: one autograd backward per sample, model in eval mode."""
    model.eval()
    norms = []
    for xi, yi in zip(x, y):
        model.zero_grad()
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        norms.append(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())).item())
    return np.array(norms)


def _with_running_statistics(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    model.train()
    with torch.no_grad():
        model(torch.randn(16, *shape) * 2 + 1)  # non-trivial BatchNorm running statistics
    return model


def _inplace_cnn(channels: int, groups: int) -> nn.Module:
    """In-place ReLU after BatchNorm (the torchvision habit), then a strided conv (grouped: no closed form)."""
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, 3, stride=2, groups=groups), nn.Flatten(), nn.LazyLinear(3),
    )


@pytest.mark.parametrize(
    "name, shape, kwargs",
    [("mlp", (6,), {"hidden": (8,)}), ("cnn", (3, 6, 6), {"widths": (4, 8)}), ("resnet18", (3, 8, 8), {})],
)
def test_grand_equals_a_per_sample_autograd_loop(name: str, shape: tuple[int, ...], kwargs: dict) -> None:
    torch.manual_seed(0)
    model = _with_running_statistics(build_model(name, 3, shape, **kwargs), shape)
    assert layerwise_rules(model) is not None  # every registry model takes the layer-by-layer path
    x, y = torch.randn(5, *shape), torch.tensor([0, 1, 2, 1, 0])
    batched = gradient_norms(model, x, y, lambda b: b, chunk=2)  # chunks of 2, 2, 1
    assert model.training  # the caller's mode is restored
    np.testing.assert_allclose(batched, loop_gradient_norms(model, x, y), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("groups", [1, 2])
def test_grand_layerwise_and_vmap_paths_agree_with_the_loop(groups: int) -> None:
    torch.manual_seed(0)
    shape = (2, 7, 7)
    model = _with_running_statistics(_inplace_cnn(shape[0], groups), shape)
    assert (layerwise_rules(model) is None) == (groups == 2)  # the grouped conv sends the model to torch.func
    x, y = torch.randn(5, *shape), torch.tensor([0, 1, 2, 1, 0])
    np.testing.assert_allclose(
        gradient_norms(model, x, y, lambda b: b, chunk=3), loop_gradient_norms(model, x, y), rtol=1e-4, atol=1e-6
    )


class Identity(nn.Module):
    """A model whose features are its inputs."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The input itself."""
        return x


def test_ssp_distances_to_normalised_class_means() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 5.0], [2.0, 0.0], [3.0, 0.0], [0.0, -1.0]])
    y = [0, 0, 1, 1, 2]
    ctx = context(y, epochs=1, num_classes=4)  # class 3 is empty
    ctx = replace(ctx, train=Split(features, ctx.train.y))
    recorder = SCORERS["ssp"].make(ctx)
    recorder(FakeState(1, Identity(), lambda x: x, lambda x: x))
    # class 0: unit vectors e0, e1 -> mean (.5, .5), distance sqrt(.5); class 1: both e0 -> 0; singleton -> 0
    np.testing.assert_allclose(recorder.result(), [math.sqrt(0.5), math.sqrt(0.5), 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(
        prototype_distances(features * 7, ctx.train.y, 4), recorder.result(), atol=1e-12
    )  # invariant to the feature scale


def test_random_is_seeded_uniform_and_needs_no_training() -> None:
    assert SCORERS["random"].epoch_fraction == 0
    first = SCORERS["random"].make(context([0] * 50, epochs=0, seed=3)).result()
    again = SCORERS["random"].make(context([0] * 50, epochs=0, seed=3)).result()
    other = SCORERS["random"].make(context([0] * 50, epochs=0, seed=4)).result()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (50,) and np.all((first >= 0) & (first < 1))


def test_final_epoch_scorer_without_the_final_epoch_is_an_error() -> None:
    recorder = SCORERS["el2n"].make(context([0, 1], epochs=3))
    with pytest.raises(RuntimeError, match="final query epoch 3"):
        drive(recorder, [torch.zeros(2, 2)] * 2)


def test_recorders_share_one_forward_pass_per_epoch() -> None:
    ctx = context([0, 1, 1], epochs=2)
    recorders = [SCORERS[name].make(ctx) for name in ("el2n", "forgetting", "dynamic_uncertainty")]
    calls = []

    def predict(x: torch.Tensor) -> torch.Tensor:
        calls.append(x)
        return torch.zeros(len(x), 2)

    for epoch in (1, 2):
        state = FakeState(epoch, None, predict, lambda x: x)
        for recorder in recorders:
            recorder(state)
        assert epoch_logits(state, ctx.train.x) is epoch_logits(state, ctx.train.x)
    assert len(calls) == 2  # one per epoch, although three recorders read the logits each epoch


def test_every_registered_scorer_on_a_real_tiny_training() -> None:
    torch.manual_seed(0)
    n, classes, epochs = 48, 3, 3
    y = torch.arange(n) % classes
    data = Split(torch.randn(n, 5) + y[:, None].float(), y)
    ctx = ScoreContext(data, epochs, classes, None, torch.device("cpu"), 7, {})
    recorders = {name: scorer.make(ctx) for name, scorer in SCORERS.items()}
    assert all(scorer.min_epochs <= epochs for scorer in SCORERS.values())
    model = build_model("mlp", classes, (5,), hidden=(16,))
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.1, augment=False)
    train(model, data, cfg, seed=0, device="cpu", callbacks=list(recorders.values()), progress=False)
    for name, recorder in recorders.items():
        scores = recorder.result()
        assert scores.shape == (n,), name
        assert np.all(np.isfinite(scores)), name
        assert np.all(scores >= 0), name
