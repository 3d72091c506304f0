"""The official reference (avysogorets/fair-data-pruning @ 11e02c0) against transcriptions of its arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_quotas import official_quoter, sampler_counts
from toy.quotas import drop_quotas, fill_shortfall, kept_total, official_selection

CIFAR10_RECALLS = [0.918, 0.964, 0.538, 0.578, 0.968, 0.832, 0.73, 0.518, 0.904, 0.56]


def official_kept(n: int, density: float) -> int:
    """schedulers/linear.py with one iteration from start_frac 1 to final_frac d, in its order of operations."""
    increment = abs(density - 1.0) / 1
    return int(n * (1.0 - (0 + 1) * increment))


def official_counts_before_fill(density: float, sizes: list[int], recalls: list[float]) -> tuple[list[int], int]:
    """The scheduler's budget, the quoter's counts, the sampler's int(fraction * S): the authors' arithmetic."""
    total = official_kept(sum(sizes), density)
    return sampler_counts(official_quoter(total, sizes, [1 - r for r in recalls]), total), total


def test_kept_count_is_the_official_schedulers() -> None:
    assert kept_total(0.1, 50_000, "official") == 4_999 and kept_total(0.1, 50_000) == 5_000
    rng = np.random.default_rng(0)
    for _ in range(2_000):
        n, d = int(rng.integers(1, 200_000)), float(rng.uniform(1e-3, 1.0))
        assert kept_total(d, n, "official") == official_kept(n, d)
    with pytest.raises(ValueError, match="kept_rule"):
        kept_total(0.5, 10, "floor")


def test_the_issues_cifar10_example() -> None:
    """The quoter gives the issue's counts + 7 to draw; its sampler then takes int(1788 / 40000 * 40000) = 1787 of
    class 1 (the float product is 1787.9999999999998), so the official code keeps 1787 there and draws 8."""
    quoter = official_quoter(40_000, [5000] * 10, [1 - r for r in CIFAR10_RECALLS])
    assert quoter == [4074, 1788, 5000, 5000, 1589, 5000, 5000, 5000, 2542, 5000] and 40_000 - sum(quoter) == 7
    counts, total = official_selection(0.8, [5000] * 10, CIFAR10_RECALLS)
    assert total == 40_000
    np.testing.assert_array_equal(counts, [4074, 1787, 5000, 5000, 1589, 5000, 5000, 5000, 2542, 5000])
    assert total - counts.sum() == 8  # drawn at random from every unselected sample
    drawn = drop_quotas(0.8, [5000] * 10, CIFAR10_RECALLS, allocation="official", kept_rule="official", seed=3)
    assert drawn.sum() == 40_000 and np.all(drawn >= counts)
    # Algorithm 1 on the same recalls (the paper's allocation), as the issue gives it, up to its rounding.
    paper = drop_quotas(0.8, [5000] * 10, CIFAR10_RECALLS)
    assert np.abs(paper - [3333, 1463, 5000, 5000, 1301, 5000, 5000, 5000, 3903, 5000]).max() <= 1


@pytest.mark.filterwarnings("ignore::toy.quotas.ZeroErrorWarning")
def test_official_selection_is_the_authors_arithmetic_on_random_cases() -> None:
    """>= 1,000 cases: balanced and imbalanced sizes, recalls of exactly 0 and 1 among them; crashes excluded."""
    rng = np.random.default_rng(22)
    compared = crashed = with_extremes = 0
    while compared < 1_200:
        k = int(rng.integers(1, 12))
        sizes = ([int(rng.integers(1, 600))] * k if rng.random() < 0.4 else rng.integers(0, 800, k).tolist())
        recalls = rng.uniform(0, 1, k)
        extremes = rng.random(k) < 0.2
        recalls[extremes] = rng.choice([0.0, 1.0], int(extremes.sum()))
        density = float(rng.choice([rng.uniform(0.01, 1.0), 0.1, 0.5, 0.8, 0.9]))
        if sum(sizes) == 0:
            continue
        try:
            expected, total = official_counts_before_fill(density, sizes, recalls.tolist())
        except ZeroDivisionError:  # the official loop spreads over zero-error classes only
            crashed += 1
            continue
        counts, ours_total = official_selection(density, sizes, recalls)
        assert ours_total == total
        np.testing.assert_array_equal(counts, expected, err_msg=f"{density=} {sizes=} {recalls.tolist()=}")
        compared += 1
        with_extremes += bool(extremes.any())
    assert with_extremes > 200 and crashed > 0


def test_the_drawn_fill_is_a_uniform_draw_of_the_missing_samples() -> None:
    """Over seeds, each class's drawn fill has the hypergeometric mean and variance of uniform draws of rows."""
    sizes = [400, 300, 200, 100, 400, 300, 200, 100]
    recalls, density = [0.633, 0.918, 0.394, 0.917, 0.503, 0.575, 0.838, 0.566], 0.5
    base, total = official_selection(density, sizes, recalls)
    pool, missing = np.array(sizes) - base, total - base.sum()
    assert missing == 7 and (pool == 0).sum() == 2  # two full classes can receive nothing
    draws = np.array([drop_quotas(density, sizes, recalls, allocation="official", kept_rule="official", seed=s)
                      for s in range(4_000)]) - base
    assert np.all(draws.sum(axis=1) == missing)
    share = pool / pool.sum()
    mean, var = missing * share, missing * share * (1 - share) * (pool.sum() - missing) / (pool.sum() - 1)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - mean), 4 * np.sqrt(var / 4_000) + 1e-12)
    np.testing.assert_allclose(draws.var(axis=0), var, rtol=0.15, atol=1e-9)
    # "count" is the same selection with that draw replaced by its expectation.
    expected = fill_shortfall(base, np.array(sizes), total, None)
    assert np.all(np.abs(expected - (base + mean)) < 1)
    np.testing.assert_array_equal(
        drop_quotas(density, sizes, recalls, allocation="count", kept_rule="official"), expected)


def test_a_zero_quota_keeps_nothing() -> None:
    with pytest.warns(UserWarning, match="recall 1"):
        counts, total = official_selection(0.5, [100, 100], [1.0, 0.5])
    np.testing.assert_array_equal(counts, [0, 100])
    assert total == 100


def epochs_correction(epochs: int, milestones: list[int], full: int, current: int) -> tuple[int, list[int]]:
    """utils.py epochs_correction of the authors' code, transcribed."""
    coefficient = 0.5 + (1 - 0.5) * current / full
    new = int(coefficient * (epochs * full / current))
    return new, [int(m * (new / epochs)) for m in milestones]


def test_the_fraction_schedule_rule_is_the_authors_epochs_correction() -> None:
    from deep.schedule import TrainConfig

    rng = np.random.default_rng(5)
    for _ in range(2_000):
        epochs, full = int(rng.integers(1, 400)), int(rng.integers(1, 60_000))
        current = int(rng.integers(1, full + 1))
        milestones = sorted(set(rng.integers(1, epochs + 1, 3).tolist()))
        scaled = TrainConfig(epochs, 128, 0.1, milestones=tuple(milestones)).scaled_for_rows(current, full)
        new, drops = epochs_correction(epochs, milestones, full, current)
        assert scaled.epochs == new and scaled.milestones == tuple(sorted(set(drops) - {0}))
