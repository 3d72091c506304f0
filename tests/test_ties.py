"""Ties in every top-k: random from the run's seed under `paper`, the highest index under `official`."""

from __future__ import annotations

import numpy as np
import pytest

from deep.prune import keep

SORTED = np.repeat(np.arange(10), 50)  # class-sorted labels, as TinyImageNet or Waterbirds files are stored


@pytest.mark.parametrize("density", [0.05, 0.1, 0.33, 0.5, 0.77, 0.9])
def test_constant_scores_keep_what_random_pruning_keeps(density: float) -> None:
    """Exact check: with all scores equal, S keeps the very rows `random` keeps with the same seed (the tie-break is
    random's own permutation), so its class counts equal random pruning's (a fortiori within one sample)."""
    scores = np.zeros(SORTED.size)
    for seed in range(3):
        top = keep(SORTED, density, "s", scores=scores, seed=seed)
        np.testing.assert_array_equal(top, keep(SORTED, density, "random", seed=seed))
        counts = np.bincount(SORTED[top], minlength=10)
        assert counts.max() - counts.min() < 0.5 * top.size / 10 + 10  # no class starved by its place in the file


def test_ties_inside_units_are_random_too() -> None:
    scores, recalls = np.zeros(SORTED.size), np.linspace(0.5, 0.95, 10)
    inside = keep(SORTED, 0.4, "s+drop", scores=scores, recalls=recalls, seed=4)
    np.testing.assert_array_equal(inside, keep(SORTED, 0.4, "random+drop", recalls=recalls, seed=4))
    first_half = np.array([np.isin(np.flatnonzero(SORTED == k)[:25], inside).sum() for k in range(10)])
    kept = np.bincount(SORTED[inside], minlength=10)
    assert np.all(first_half < kept) and np.all(first_half > 0)  # neither end of a class block is preferred


def last_k_of_stable_sort(scores: list[float], k: int) -> list[int]:
    """diversifiers/auto.py of the authors' code: indices sorted ascending by score (stable), the last k kept."""
    return sorted(sorted(range(len(scores)), key=lambda i: scores[i])[-k:]) if k else []


def test_official_ties_keep_the_highest_index_as_the_authors_sort() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        labels = np.sort(rng.integers(0, 4, 300))
        scores = rng.integers(0, 5, 300).astype(float)  # Forgetting-like integer scores: blocks of ties
        density = float(rng.uniform(0.05, 0.95))
        kept = keep(labels, density, "s", scores=scores, ties="highest", kept_rule="official")
        np.testing.assert_array_equal(kept, last_k_of_stable_sort(scores.tolist(), int(300 * (1 - (1 - density)))))
        recalls = rng.uniform(0.2, 0.9, 4)
        counts = np.bincount(labels[keep(labels, density, "random+drop", recalls=recalls, reference="official")],
                             minlength=4)
        inside = keep(labels, density, "s+drop", scores=scores, recalls=recalls, allocation="count", ties="highest")
        for k in range(4):
            rows = np.flatnonzero(labels == k)
            chosen = rows[last_k_of_stable_sort(scores[rows].tolist(), int(np.isin(rows, inside).sum()))]
            np.testing.assert_array_equal(np.intersect1d(inside, rows), chosen)
        assert counts.sum() == int(300 * (1 - (1 - density)))


def test_random_ties_differ_from_positional_ones_on_class_sorted_data() -> None:
    scores = np.repeat([1.0, 0.0], [100, 400])  # the cut falls inside the block of zeros (classes 2..9)
    paper = np.bincount(SORTED[keep(SORTED, 0.5, "s", scores=scores, seed=0)], minlength=10)
    official = np.bincount(SORTED[keep(SORTED, 0.5, "s", scores=scores, reference="official")], minlength=10)
    np.testing.assert_array_equal(official, [50, 50, 0, 0, 0, 0, 0, 50, 50, 50])  # the last rows win, whole classes
    assert np.all(paper[:2] == 50) and np.all(paper[2:] > 10)
