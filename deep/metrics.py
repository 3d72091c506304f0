"""Per-class and per-group accuracy and the robustness summaries built from them.

Class accuracy is per-class recall: the fraction of the samples of class k predicted as k.
A class (or group) absent from `y_true` (`group`) has no recall: its entry is NaN and it is left
out of the worst value, the max - min gap and the standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[int]


def _to_numpy(values: ArrayLike) -> np.ndarray:
    """`values` as a numpy array (torch tensors are moved to the CPU first)."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _as_labels(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as a 1-D int64 numpy array."""
    array = _to_numpy(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _check_range(values: np.ndarray, upper: int, name: str, upper_name: str) -> None:
    """Raise unless every value lies in [0, upper)."""
    if values.size and (values.min() < 0 or values.max() >= upper):
        raise ValueError(f"{name} must lie in [0, {upper_name}={upper}), got [{values.min()}, {values.max()}]")


def _nan_summary(values: np.ndarray) -> tuple[float, float, float]:
    """Minimum, max - min gap and population std of the non-NaN entries (all NaN when there are none)."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return float("nan"), float("nan"), float("nan")
    return float(present.min()), float(present.max() - present.min()), float(present.std())


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """K x K counts: row = true class, column = predicted class (scikit-learn's layout)."""
    true = _as_labels(y_true, "y_true")
    pred = _as_labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} entries but y_pred has {pred.size}")
    _check_range(true, num_classes, "y_true", "num_classes")
    _check_range(pred, num_classes, "y_pred", "num_classes")
    return np.bincount(true * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_recall(confusion: np.ndarray) -> np.ndarray:
    """Recall of every class from a confusion matrix; NaN for classes with no true samples."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)


def _group_metrics(
    correct: np.ndarray, group: ArrayLike, num_groups: int | None, train_group_counts: ArrayLike | None
) -> dict:
    """Group accuracies, the worst one and (given training counts) the training-proportion-weighted mean."""
    groups = _as_labels(group, "group")
    if groups.shape != correct.shape:
        raise ValueError(f"group has {groups.size} entries but y_true has {correct.size}")
    if num_groups is None:
        num_groups = int(groups.max()) + 1 if groups.size else 0
    _check_range(groups, num_groups, "group", "num_groups")
    size = np.bincount(groups, minlength=num_groups)
    hits = np.bincount(groups, weights=correct, minlength=num_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(size > 0, hits / np.maximum(size, 1), np.nan)
    worst, _, _ = _nan_summary(accuracy)
    out = {"group_accuracy": accuracy.tolist(), "worst_group_accuracy": worst}
    if train_group_counts is not None:
        counts = _to_numpy(train_group_counts).astype(np.float64)
        if counts.shape != (num_groups,) or (counts < 0).any():
            raise ValueError(f"train_group_counts must hold {num_groups} non-negative counts, got {counts.tolist()}")
        # Groups absent from the evaluated data have no accuracy: the weights are renormalised over the rest.
        present = ~np.isnan(accuracy) & (counts > 0)
        total = counts[present].sum()
        out["weighted_group_accuracy"] = (
            float((counts[present] * accuracy[present]).sum() / total) if total > 0 else float("nan")
        )
    return out


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    num_classes: int,
    group: ArrayLike | None = None,
    num_groups: int | None = None,
    train_group_counts: ArrayLike | None = None,
) -> dict:
    """Accuracy, per-class recall and its robustness summaries, plus group accuracies when `group` is given.

    Keys: accuracy, worst_class_accuracy, class_accuracy (list, NaN for absent classes), max_min_gap,
    class_accuracy_std (population std, ddof=0), confusion (list of lists). With `group`: group_accuracy
    (list, NaN for absent groups), worst_group_accuracy and, when `train_group_counts` is given,
    weighted_group_accuracy (group accuracies weighted by the training group proportions; num_groups
    defaults to max(group) + 1). Values are plain Python floats and lists, ready for JSON.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    total = int(confusion.sum())
    if total == 0:
        raise ValueError("y_true is empty: metrics need at least one sample")
    recall = per_class_recall(confusion)
    worst, gap, std = _nan_summary(recall)
    out = {
        "accuracy": float(np.trace(confusion) / total),
        "worst_class_accuracy": worst,
        "class_accuracy": recall.tolist(),
        "max_min_gap": gap,
        "class_accuracy_std": std,
        "confusion": confusion.tolist(),
    }
    if group is not None:
        correct = (_as_labels(y_true, "y_true") == _as_labels(y_pred, "y_pred")).astype(np.float64)
        out.update(_group_metrics(correct, group, num_groups, train_group_counts))
    elif num_groups is not None or train_group_counts is not None:
        raise ValueError("num_groups and train_group_counts need group: pass the group id of every sample")
    return out
