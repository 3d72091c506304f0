"""Tests for deep.metrics: against scikit-learn on random predictions, and hand-made group cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from deep.metrics import classification_metrics


@st.composite
def predictions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Random labels and predictions over K classes (some classes may be absent from the labels)."""
    k = draw(st.integers(1, 6))
    n = draw(st.integers(1, 50))
    labels = st.lists(st.integers(0, k - 1), min_size=n, max_size=n)
    return np.array(draw(labels)), np.array(draw(labels)), k


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@settings(max_examples=60, deadline=None)
@given(predictions())
def test_matches_sklearn(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, k = case
    m = classification_metrics(y_true, y_pred, k)
    labels = list(range(k))
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(m["confusion"], confusion_matrix(y_true, y_pred, labels=labels))
    expected = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
    np.testing.assert_allclose(m["class_accuracy"], expected, equal_nan=True)
    present = expected[~np.isnan(expected)]
    assert m["worst_class_accuracy"] == pytest.approx(present.min())
    assert m["max_min_gap"] == pytest.approx(present.max() - present.min())
    assert m["class_accuracy_std"] == pytest.approx(present.std())


@settings(max_examples=20, deadline=None)
@given(predictions())
def test_torch_and_numpy_inputs_agree(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, k = case
    from_torch = classification_metrics(torch.from_numpy(y_true), torch.from_numpy(y_pred), k)
    assert json.dumps(from_torch) == json.dumps(classification_metrics(y_true, y_pred, k))


def test_absent_class_is_nan_and_left_out_of_summaries() -> None:
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], num_classes=3)
    assert m["class_accuracy"][:2] == [0.5, 1.0]
    assert math.isnan(m["class_accuracy"][2])
    assert m["worst_class_accuracy"] == 0.5
    assert m["max_min_gap"] == 0.5
    assert m["class_accuracy_std"] == pytest.approx(0.25)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]


def test_groups_by_hand() -> None:
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [0, 0, 1, 1, 0, 0]
    group = [0, 0, 1, 2, 3, 3]
    m = classification_metrics(y_true, y_pred, 2, group=group, train_group_counts=[70, 10, 10, 10])
    assert m["group_accuracy"] == [1.0, 0.0, 1.0, 0.0]
    assert m["worst_group_accuracy"] == 0.0
    assert m["weighted_group_accuracy"] == pytest.approx(0.7 * 1 + 0.1 * 0 + 0.1 * 1 + 0.1 * 0)
    assert m["accuracy"] == pytest.approx(3 / 6)


def test_absent_group_is_nan_and_weights_renormalised() -> None:
    m = classification_metrics([0, 1, 1], [0, 1, 0], 2, group=[0, 2, 2], num_groups=3, train_group_counts=[3, 5, 1])
    assert m["group_accuracy"][0] == 1.0 and m["group_accuracy"][2] == 0.5
    assert math.isnan(m["group_accuracy"][1])
    assert m["worst_group_accuracy"] == 0.5
    assert m["weighted_group_accuracy"] == pytest.approx((3 * 1.0 + 1 * 0.5) / 4)


def test_weighted_group_accuracy_only_with_training_counts() -> None:
    m = classification_metrics([0, 1], [0, 1], 2, group=[0, 1])
    assert "weighted_group_accuracy" not in m
    assert m["group_accuracy"] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_true": [0, 1], "y_pred": [0], "num_classes": 2}, "entries"),
        ({"y_true": [0, 2], "y_pred": [0, 1], "num_classes": 2}, "y_true must lie"),
        ({"y_true": [0, 1], "y_pred": [0, -1], "num_classes": 2}, "y_pred must lie"),
        ({"y_true": [], "y_pred": [], "num_classes": 2}, "empty"),
        ({"y_true": [0.5], "y_pred": [0], "num_classes": 2}, "integer"),
        ({"y_true": [0], "y_pred": [0], "num_classes": 1, "num_groups": 2}, "need group"),
        ({"y_true": [0], "y_pred": [0], "num_classes": 1, "group": [3], "num_groups": 2}, "group must lie"),
        ({"y_true": [0], "y_pred": [0], "num_classes": 1, "group": [0], "train_group_counts": [1, 2]}, "train_group_counts"),
    ],
)
def test_user_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        classification_metrics(**kwargs)
