"""Tests for toy.erm.fit_threshold: exact (weighted) 0-1 ERM, tie rule, batching, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toy.erm import fit_threshold
from toy.gaussians import TwoGaussians


def _error(x: np.ndarray, y: np.ndarray, w: np.ndarray, t: float) -> float:
    return float(np.sum(w * ((x > t) != (y == 1))))


def brute_force_threshold(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Evaluate every plateau of the error (bounded by distinct x of positive weight); midpoint of the lowest best."""
    cuts = np.unique(x[w > 0])
    bounds = np.concatenate([[-np.inf], cuts, [np.inf]])
    # Plateau i is [bounds[i], bounds[i+1]); its left end is a threshold inside it.
    errors = [_error(x, y, w, t) for t in bounds[:-1]]
    i = int(np.argmin(errors))
    if i == 0:
        return -np.inf
    return 0.5 * bounds[i] + 0.5 * bounds[i + 1]


@st.composite
def small_datasets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    n = draw(st.integers(0, 12))
    # Quarter-integer x in a small range forces ties, within and across classes; sums stay exact.
    x = np.array(draw(st.lists(st.integers(-6, 6), min_size=n, max_size=n)), dtype=float) / 4
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
    kind = draw(st.sampled_from(["none", "mask", "float"]))
    if kind == "none":
        return x, y, None
    if kind == "mask":
        return x, y, np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return x, y, np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=n, max_size=n)))


@settings(max_examples=400, deadline=None)
@given(data=small_datasets())
def test_matches_brute_force(data: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> None:
    x, y, w = data
    weights = np.ones_like(x) if w is None else w.astype(float)
    t = fit_threshold(x, y, w)
    assert t.shape == ()
    assert float(t) == brute_force_threshold(x, y, weights)


@settings(max_examples=50, deadline=None)
@given(batch=st.integers(1, 6), n=st.integers(1, 15), seed=st.integers(0, 2**32 - 1))
def test_batch_equals_per_dataset_and_mask_equals_subset(batch: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(2, batch, n)) / 2
    y = rng.integers(0, 2, size=x.shape)
    keep = rng.random(x.shape) < 0.6
    t = fit_threshold(x, y, keep)
    assert t.shape == (2, batch)
    for idx in np.ndindex(2, batch):
        subset = fit_threshold(x[idx][keep[idx]], y[idx][keep[idx]])
        assert t[idx] == subset
        assert fit_threshold(x, y)[idx] == fit_threshold(x[idx], y[idx])


def test_integer_weight_equals_repeated_points() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=30)
    y = rng.integers(0, 2, size=30)
    w = rng.integers(0, 4, size=30)
    assert fit_threshold(x, y, w) == fit_threshold(np.repeat(x, w), np.repeat(y, w))


@pytest.mark.parametrize(
    ("x", "y", "w", "expected"),
    [
        ([0.0, 1.0, 3.0, 4.0], [0, 0, 1, 1], None, 2.0),  # separable: midpoint of the gap
        ([0.0, 1.0, 3.0], [1, 1, 1], None, -np.inf),  # one class: unbounded plateaus
        ([0.0, 1.0, 3.0], [0, 0, 0], None, np.inf),
        ([0.0, 1.0], [0, 1], [0, 0], -np.inf),  # nothing of positive weight
        ([2.0, 2.0, 2.0], [0, 1, 1], None, -np.inf),  # equal x cannot be split: predict the majority
        ([2.0, 2.0, 2.0, 2.0], [0, 0, 1, 1], None, -np.inf),  # a tie between plateaus: the lowest wins
        ([0.0, 5.0, 1.0], [0, 1, 0], [1, 0, 1], np.inf),  # the weight-0 point at 5 bounds no plateau
        ([0.0, 2.0, 9.0, 4.0], [0, 1, 0, 1], [1, 1, 0, 1], 1.0),
    ],
)
def test_documented_cases(x: list[float], y: list[int], w: list[int] | None, expected: float) -> None:
    assert fit_threshold(np.array(x), np.array(y), None if w is None else np.array(w)) == expected


def test_converges_to_t_star() -> None:
    model = TwoGaussians(-1.0, 1.0, 0.5, 1.0)
    x, y = model.sample(4000, np.random.default_rng(0), batch=100)
    t = fit_threshold(x, y)
    assert t.shape == (100,) and np.all(np.isfinite(t))
    assert t.mean() == pytest.approx(model.t_star(), abs=0.05)


def test_empty_datasets_and_bool_labels() -> None:
    assert fit_threshold(np.zeros((3, 0)), np.zeros((3, 0), dtype=np.int64)).tolist() == [-np.inf] * 3
    assert fit_threshold(np.array([0.0, 1.0]), np.array([False, True])) == 0.5


@pytest.mark.parametrize(
    ("x", "y", "w", "match"),
    [
        ([0.0, 1.0], [0, 1, 1], None, "y must have shape"),
        ([0.0, 1.0], [0, 2], None, "y must hold binary"),
        ([0.0, np.nan], [0, 1], None, "x must be finite"),
        ([0.0, np.inf], [0, 1], None, "x must be finite"),
        ([0.0, 1.0], [0, 1], [1.0, -1.0], "weight must be finite"),
        ([0.0, 1.0], [0, 1], [1.0], "weight must have shape"),
        (1.0, 1, None, "x must have at least one axis"),
    ],
)
def test_bad_inputs_raise(x: object, y: object, w: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_threshold(x, y, w)  # type: ignore[arg-type]
