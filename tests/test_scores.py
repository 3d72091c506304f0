"""Scorers: hand-computed values on scripted models and traces, GraNd against an autograd loop, the whole registry."""

from __future__ import annotations

import math

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
from deep.query import TraceRecorder
from deep.scores import SCORERS, QueryModel, Trace
from deep.scores.dynamic_uncertainty import windowed_uncertainty
from deep.scores.el2n import el2n
from deep.scores.forgetting import forgetting_events
from deep.scores.grand import gradient_norms, layerwise_rules
from deep.scores.ssp import prototype_distances
from deep.train import TrainConfig, train


class Table(nn.Module):
    """A model whose input is a row number (N, 1) and whose logits for that row are given."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", logits.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The stored logits of the rows x."""
        return self.table[x[:, 0].long()]


def query(
    y: list[int], *, logits: torch.Tensor | None = None, prob: np.ndarray | None = None,
    correct: np.ndarray | None = None, num_classes: int = 2, seed: int = 0, x: torch.Tensor | None = None,
    model: nn.Module | None = None, **options: object,
) -> QueryModel:
    """A finished query training over len(y) samples: scripted final logits (via a lookup model) and trace."""
    n = len(y)
    inputs = torch.arange(n, dtype=torch.float32)[:, None] if x is None else x
    if model is None:
        model = Table(torch.zeros(n, num_classes) if logits is None else logits)
    epochs = 0 if prob is None and correct is None else len(prob if prob is not None else correct)
    trace = Trace(
        np.zeros((epochs, n), np.float32) if prob is None else np.asarray(prob, np.float32),
        np.zeros((epochs, n), bool) if correct is None else np.asarray(correct, bool),
    )
    return QueryModel(Split(inputs, torch.tensor(y)), num_classes, None, torch.device("cpu"), seed, epochs,
                      dict(options), trace, lambda: model)


def test_el2n_hand_computed_from_the_trained_model() -> None:
    final = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [-50.0, 50.0]])
    scores = SCORERS["el2n"].score(query([0, 1, 1], logits=final))
    # [.5, .5] vs e0 -> sqrt(.5); [.75, .25] vs e1 -> .75 sqrt(2); a confident correct sample -> ~0
    np.testing.assert_allclose(scores, [math.sqrt(0.5), 0.75 * math.sqrt(2.0), 0.0], atol=1e-6)


def test_forgetting_counts_transitions_and_ranks_never_learned_as_asked() -> None:
    correct = np.array([[1, 0, 1, 0], [0, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1]], dtype=bool)
    first = SCORERS["forgetting"].score(query([0, 1, 0, 1, 0], correct=correct.T, never_learned="first"))
    np.testing.assert_array_equal(first, [2, 0, 5, 1, 1])  # trace rows are epochs; never learned -> E + 1
    last = SCORERS["forgetting"].score(query([0, 1, 0, 1, 0], correct=correct.T, never_learned="last"))
    np.testing.assert_array_equal(last, [2, 0, 0, 1, 1])  # the reference code: no event, so score 0
    with pytest.raises(ValueError, match="never_learned must be one of last, first"):
        SCORERS["forgetting"].score(query([0], correct=np.ones((2, 1), bool), never_learned="middle"))


def test_dynamic_uncertainty_hand_computed() -> None:
    p = np.array([[0.5, 0.7, 0.6, 0.6], [0.2, 0.2, 0.2, 0.2]])
    scores = SCORERS["dynamic_uncertainty"].score(query([0, 1], prob=p.T, window=2))
    # windows of 2: std = |difference| / 2 -> (0.1, 0.05, 0) -> mean 0.05; a constant probability -> 0
    np.testing.assert_allclose(scores, [0.05, 0.0], atol=1e-7)


def test_dynamic_uncertainty_window_capped_at_query_length() -> None:
    prob = np.array([[0.2], [0.5], [0.8]])
    scores = SCORERS["dynamic_uncertainty"].score(query([0], prob=prob, window=10))  # default window 10 -> 3
    np.testing.assert_allclose(scores, [np.std([0.2, 0.5, 0.8])], atol=1e-7)


@pytest.mark.parametrize("window", [1, 0])
def test_dynamic_uncertainty_rejects_degenerate_windows(window: int) -> None:
    with pytest.raises(ValueError, match="window"):
        SCORERS["dynamic_uncertainty"].score(query([0], prob=np.full((5, 1), 0.5), window=window))


@pytest.mark.parametrize("given, message", [
    ({"window": "x"}, "window must be an integer"), ({"window": 1}, "window must be at least 2"),
    ({"size": 3}, "no option 'size'"),
])
def test_scorer_options_are_checked(given: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SCORERS["dynamic_uncertainty"].resolve("dynamic_uncertainty", given)
    assert SCORERS["dynamic_uncertainty"].resolve("dynamic_uncertainty", {"window": "5"}) == {"window": 5}


@settings(max_examples=25, deadline=None)
@given(
    probs=arrays(np.float64, st.tuples(st.integers(2, 7), st.integers(1, 4)), elements=st.floats(0.01, 0.99)),
    window=st.integers(2, 9),
)
def test_dynamic_uncertainty_matches_the_definition(probs: np.ndarray, window: int) -> None:
    epochs, n = probs.shape
    j = min(window, epochs)
    expected = np.mean([probs[k - j + 1 : k + 1].std(axis=0) for k in range(j - 1, epochs)], axis=0)
    np.testing.assert_allclose(windowed_uncertainty(probs, j), expected, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(correct=arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 5))))
def test_forgetting_matches_a_loop_over_epochs(correct: np.ndarray) -> None:
    expected = []
    for column in correct.T:
        previous, events = False, 0
        for now in column:
            events += int(previous and not now)
            previous = now
        expected.append(events if column.any() else len(column) + 1)
    np.testing.assert_array_equal(forgetting_events(correct, "first"), expected)


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
    scores = SCORERS["ssp"].score(query(y, x=features, model=Identity(), num_classes=4))  # class 3 is empty
    # class 0: unit vectors e0, e1 -> mean (.5, .5), distance sqrt(.5); class 1: both e0 -> 0; singleton -> 0
    np.testing.assert_allclose(scores, [math.sqrt(0.5), math.sqrt(0.5), 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(prototype_distances(features * 7, torch.tensor(y), 4), scores, atol=1e-12)  # scale-free


def test_random_is_seeded_uniform_and_needs_no_training() -> None:
    assert SCORERS["random"].epoch_fraction == 0
    first = SCORERS["random"].score(query([0] * 50, seed=3))
    again = SCORERS["random"].score(query([0] * 50, seed=3))
    other = SCORERS["random"].score(query([0] * 50, seed=4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (50,) and np.all((first >= 0) & (first < 1))


def test_trace_recorder_sees_every_training_step() -> None:
    torch.manual_seed(0)
    n, classes = 40, 2
    y = torch.arange(n) % classes
    data = Split(torch.randn(n, 3) + 2 * y[:, None].float(), y)
    recorder = TraceRecorder(n, torch.device("cpu"))
    steps: list[tuple[torch.Tensor, torch.Tensor]] = []
    model = build_model("mlp", classes, (3,), hidden=(8,))
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.1, augment=False)
    train(model, data, cfg, seed=0, device="cpu", callbacks=[recorder.on_epoch],
          on_batch=[recorder.on_batch, lambda logits, yb, idx: steps.append((logits, idx))], progress=False)
    trace = recorder.trace()
    assert trace.prob.shape == trace.correct.shape == (3, n) and np.isfinite(trace.prob).all()
    logits, idx = steps[-1]  # the last step of the last epoch: its rows hold exactly that step's outputs
    np.testing.assert_allclose(trace.prob[2, idx.numpy()], torch.softmax(logits, 1)[torch.arange(len(idx)), y[idx]].numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(trace.correct[2, idx.numpy()], (logits.argmax(1) == y[idx]).numpy())


def test_every_registered_scorer_on_a_real_tiny_training() -> None:
    torch.manual_seed(0)
    n, classes, epochs = 48, 3, 3
    y = torch.arange(n) % classes
    data = Split(torch.randn(n, 5) + y[:, None].float(), y)
    assert all(scorer.min_epochs <= epochs for scorer in SCORERS.values())
    model = build_model("mlp", classes, (5,), hidden=(16,))
    recorder = TraceRecorder(n, torch.device("cpu"))
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.1, augment=False)
    train(model, data, cfg, seed=0, device="cpu", callbacks=[recorder.on_epoch], on_batch=[recorder.on_batch],
          progress=False)
    for name, scorer in SCORERS.items():
        qm = QueryModel(data, classes, None, torch.device("cpu"), 7, epochs, scorer.resolve(name, {}),
                        recorder.trace(), lambda: model)
        scores = scorer.score(qm)
        assert scores.shape == (n,), name
        # Only finiteness is required: pruning ranks scores (deep.prune.top_k), so their sign carries no meaning.
        assert np.all(np.isfinite(scores)), name

