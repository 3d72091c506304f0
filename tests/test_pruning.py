"""Tests for toy.pruning: exact counts, seeding, SSP margin geometry, SSP on the population, class counts, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from toy.gaussians import TwoGaussians
from toy.montecarlo import simulate
from toy.pruning import (
    class_counts,
    random_class_counts,
    random_class_densities,
    random_ssp_ratios,
    ssp_margin,
    ssp_population_margin,
    ssp_population_minima,
    ssp_population_risk,
)

densities = st.floats(0, 1)
positive_densities = st.floats(0.01, 1)


def _labels(seed: int, batch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return TwoGaussians(-1.0, 1.0, 0.5, 1.0, phi0=0.4).sample(n, np.random.default_rng(seed), batch=batch)


def _half_up(fraction: float, total: np.ndarray) -> np.ndarray:
    return np.floor(fraction * total + 0.5).astype(np.int64)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5), n=st.integers(1, 40), d0=densities, d1=densities)
def test_random_class_densities_exact_counts_and_seeded(seed: int, batch: int, n: int, d0: float, d1: float) -> None:
    _, y = _labels(seed, batch, n)
    keep = random_class_densities(y, (d0, d1), np.random.default_rng(seed))
    assert keep.shape == y.shape and keep.dtype == bool
    sizes = class_counts(y, np.ones_like(keep))
    expected = np.stack([_half_up(d0, sizes[:, 0]), _half_up(d1, sizes[:, 1])], axis=-1)
    np.testing.assert_array_equal(class_counts(y, keep), expected)
    np.testing.assert_array_equal(keep, random_class_densities(y, [d0, d1], np.random.default_rng(seed)))


def test_random_class_densities_is_uniform_within_class() -> None:
    y = np.tile(np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 1]), (4000, 1))
    keep = random_class_densities(y, (0.5, 0.3), np.random.default_rng(0))
    rate = keep.mean(axis=0)
    np.testing.assert_allclose(rate[y[0] == 0], 0.5, atol=0.03)
    np.testing.assert_allclose(rate[y[0] == 1], 2 / 6, atol=0.03)  # floor(0.3 * 6 + 0.5) = 2 of 6
    assert not np.array_equal(keep, random_class_densities(y, (0.5, 0.3), np.random.default_rng(1)))


def test_random_class_counts_draws_every_subset_equally_often() -> None:
    # 4 points of class 0 (keep 2) and 3 of class 1 (keep 1): 6 x 3 = 18 equally likely kept sets.
    y = np.tile(np.array([0, 1, 0, 0, 1, 1, 0]), (36000, 1))
    keep = random_class_counts(y, np.tile([2, 1], (36000, 1)), np.random.default_rng(0))
    np.testing.assert_array_equal(class_counts(y, keep), np.tile([2, 1], (36000, 1)))
    _, frequency = np.unique(keep, axis=0, return_counts=True)
    assert frequency.size == 18
    # Each count is Binomial(36000, 1/18): mean 2000, sd 43; 6 sd is far outside chance for 18 of them.
    assert np.all(np.abs(frequency - 2000) < 6 * 43)


@pytest.mark.parametrize("counts", [[[0, 2]], [[4, 0]], [[-1, 0]], [[1, 1, 0]], [1, 1]])
def test_random_class_counts_refuses_impossible_counts(counts: list) -> None:
    y = np.array([[0, 0, 1, 0]])  # class sizes (3, 1)
    assert class_counts(y, random_class_counts(y, [[3, 1]], np.random.default_rng(0))).tolist() == [[3, 1]]
    with pytest.raises(ValueError, match="counts"):
        random_class_counts(y, counts, np.random.default_rng(0))


def test_rounding_is_half_up() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    assert class_counts(y, random_class_densities(y, (0.5, 0.5), np.random.default_rng(0))).tolist() == [2, 4]
    x = np.arange(7.0)
    assert ssp_margin(x, np.zeros(7, dtype=np.int64), 0.5).sum() == 4


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5), n=st.integers(1, 40), density=positive_densities)
def test_ssp_removes_the_points_nearest_their_class_mean(seed: int, batch: int, n: int, density: float) -> None:
    x, y = _labels(seed, batch, n)
    keep = ssp_margin(x, y, density)
    assert keep.shape == x.shape
    np.testing.assert_array_equal(keep.sum(axis=-1), _half_up(density, n))
    for xi, yi, ki in zip(x, y, keep):
        means = [xi[yi == k].mean() if np.any(yi == k) else 0.0 for k in (0, 1)]
        distance = np.abs(xi - np.take(means, yi))
        if ki.any() and (~ki).any():
            # Ties up to rounding are either way: the two points of a 2-point class are equally far from its mean,
            # and this test's mean may differ from the implementation's in the last bit.
            assert distance[ki].min() >= distance[~ki].max() - 1e-12 * (1 + np.abs(xi).max())
    given_means = ssp_margin(x, y, density, means=(-1.0, 1.0))
    distance = np.abs(x - np.where(y == 1, 1.0, -1.0))
    for di, ki in zip(distance, given_means):
        if ki.any() and (~ki).any():
            assert di[ki].min() >= di[~ki].max()


def test_ssp_prunes_the_narrow_class_harder() -> None:
    x, y = TwoGaussians(-1.0, 1.0, 0.5, 1.0).sample(400, np.random.default_rng(0), batch=200)
    counts = class_counts(y, ssp_margin(x, y, 0.5))
    sizes = class_counts(y, np.ones_like(y, dtype=bool))
    kept_fraction = (counts / sizes).mean(axis=0)
    assert kept_fraction[0] < 0.45 < 0.55 < kept_fraction[1]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5), n=st.integers(1, 40), density=positive_densities)
def test_random_ssp_ratios_keeps_ssp_class_counts(seed: int, batch: int, n: int, density: float) -> None:
    x, y = _labels(seed, batch, n)
    keep = random_ssp_ratios(x, y, density, np.random.default_rng(seed))
    np.testing.assert_array_equal(class_counts(y, keep), class_counts(y, ssp_margin(x, y, density)))
    np.testing.assert_array_equal(keep, random_ssp_ratios(x, y, density, np.random.default_rng(seed)))
    with_means = random_ssp_ratios(x, y, density, np.random.default_rng(seed), means=(-1.0, 1.0))
    np.testing.assert_array_equal(class_counts(y, with_means), class_counts(y, ssp_margin(x, y, density, (-1.0, 1.0))))


def test_class_counts_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=(3, 4, 25))
    keep = rng.random(y.shape) < 0.5
    counts = class_counts(y, keep)
    assert counts.shape == (3, 4, 2) and counts.dtype == np.int64
    for idx in np.ndindex(3, 4):
        assert counts[idx].tolist() == [np.sum(keep[idx] & (y[idx] == k)) for k in (0, 1)]


def test_single_class_datasets() -> None:
    x = np.array([[0.0, 1.0, 2.0, 5.0]])
    y = np.ones((1, 4), dtype=np.int64)
    assert ssp_margin(x, y, 0.5).tolist() == [[True, False, False, True]]  # class-1 mean is 2
    assert class_counts(y, random_class_densities(y, (0.2, 0.75), np.random.default_rng(0))).tolist() == [[0, 3]]


@pytest.mark.parametrize("bad", [(0.5,), (0.5, 0.5, 0.5), (-0.1, 0.5), (0.5, 1.5), (np.nan, 0.5)])
def test_bad_class_densities_raise(bad: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="densities"):
        random_class_densities(np.array([0, 1]), bad, np.random.default_rng(0))


def test_bad_inputs_raise() -> None:
    x, y, rng = np.array([0.0, 1.0, 2.0]), np.array([0, 1, 1]), np.random.default_rng(0)
    for density in (0.0, 1.5, np.nan):
        with pytest.raises(ValueError, match="density"):
            ssp_margin(x, y, density)
        with pytest.raises(ValueError, match="density"):
            random_ssp_ratios(x, y, density, rng)
    with pytest.raises(ValueError, match="means"):
        ssp_margin(x, y, 0.5, means=(0.0,))
    with pytest.raises(ValueError, match="y must have shape"):
        ssp_margin(x, y[:2], 0.5)
    with pytest.raises(ValueError, match="binary"):
        random_class_densities(np.array([0, 3]), (0.5, 0.5), rng)
    with pytest.raises(ValueError, match="x must be finite"):
        ssp_margin(np.array([0.0, np.nan]), np.array([0, 1]), 0.5)
    with pytest.raises(ValueError, match="y must have shape"):
        class_counts(y, np.ones(4, dtype=bool))


PAPER = TwoGaussians(-1.0, 1.0, 0.5, 1.0)


@settings(max_examples=40, deadline=None)
@given(density=positive_densities, phi0=st.floats(0.05, 0.95), sigma1=st.floats(0.2, 5.0))
def test_ssp_population_margin_keeps_the_density(density: float, phi0: float, sigma1: float) -> None:
    model = TwoGaussians(-1.0, 1.0, 0.5, sigma1, phi0)
    margin = ssp_population_margin(model, density)
    kept = 2.0 * (phi0 * ndtr(-margin / 0.5) + (1.0 - phi0) * ndtr(-margin / sigma1))
    assert kept == pytest.approx(density, abs=1e-12)
    assert ssp_population_margin(model, 1.0) == 0.0


def test_ssp_population_risk_is_the_large_sample_limit() -> None:
    """On 400,000 points pruned by ssp_margin at the true means, empirical risks match the closed form."""
    x, y = PAPER.sample(400_000, np.random.default_rng(0))
    keep = ssp_margin(x, y, 0.5, means=(PAPER.mu0, PAPER.mu1))
    thresholds = np.array([-2.0, -1.46, -1.0, -0.17, 0.5, 1.46, 2.5])
    empirical = [np.mean((x[keep] > t) != (y[keep] == 1)) for t in thresholds]
    np.testing.assert_allclose(empirical, ssp_population_risk(PAPER, 0.5, thresholds), atol=3e-3)
    np.testing.assert_allclose(ssp_population_risk(PAPER, 1.0, thresholds), PAPER.average_risk(thresholds), atol=1e-15)


def test_ssp_population_minima_at_the_paper_setting() -> None:
    """d = 50 %: t*(1) = -0.170 and the outer hole edges mu0 - M = -1.462 and mu1 + M = +1.462."""
    margin = ssp_population_margin(PAPER, 0.5)
    minima = ssp_population_minima(PAPER, 0.5)
    np.testing.assert_allclose(minima, [PAPER.mu0 - margin, PAPER.t_star(), PAPER.mu1 + margin], atol=1e-6)
    np.testing.assert_allclose(minima, [-1.4618, -0.1700, 1.4618], atol=1e-4)
    np.testing.assert_allclose(ssp_population_risk(PAPER, 0.5, minima), [0.1848, 0.1695, 0.3221], atol=1e-4)
    for t in minima:  # each is a local minimum
        assert ssp_population_risk(PAPER, 0.5, t) <= ssp_population_risk(PAPER, 0.5, [t - 1e-4, t + 1e-4]).min()
    np.testing.assert_allclose(ssp_population_minima(PAPER, 1.0), [PAPER.t_star()], atol=1e-6)


def test_erm_on_ssp_samples_splits_between_the_two_lowest_minima() -> None:
    """At 400 points ERM lands near -1.46 on about a quarter of the datasets; with 10,000 points on none."""
    lowest = ssp_population_minima(PAPER, 0.5)[:2]
    small = simulate(PAPER, "ssp", 0.5, 400, 200, np.random.default_rng(1)).thresholds
    distance = np.abs(small[:, None] - lowest[None])
    assert np.mean(distance.min(axis=1) < 0.3) >= 0.95
    share_left = np.mean(distance.argmin(axis=1) == 0)
    assert 0.1 < share_left < 0.45
    large = simulate(PAPER, "ssp", 0.5, 10_000, 60, np.random.default_rng(2)).thresholds
    assert np.all(np.abs(large - lowest[1]) < 0.2)
