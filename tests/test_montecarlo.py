"""Monte Carlo over many datasets: closed-form agreement, kept counts of every pruning method, result statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toy.gaussians import TwoGaussians
from toy.montecarlo import METHODS, MonteCarloResult, evaluate, prune, simulate
from toy.pruning import class_counts, ssp_margin
from toy.quotas import drop_quotas

PAPER = TwoGaussians(mu0=-1.0, mu1=1.0, sigma0=0.5, sigma1=1.0, phi0=0.5)


def _budget(density: float, n: int) -> int:
    """Points kept from n at density d: floor(d n + 0.5), the rounding of toy.pruning and toy.quotas."""
    return int(np.floor(density * n + 0.5))


def test_no_pruning_matches_closed_form_risks_at_t_star() -> None:
    # ERM's bias shrinks with n; at 20,000 points it is well inside the Monte Carlo error of 100 datasets.
    result = simulate(PAPER, "none", 1.0, n=20_000, batch=100, rng=np.random.default_rng(0))
    expected = np.array(PAPER.class_risks(PAPER.t_star()))
    assert np.all(np.abs(result.mean_risks - expected) < 4 * result.stderr_risks)
    assert abs(result.mean_threshold - PAPER.t_star()) < 4 * result.stderr_threshold
    # The test has power: the worst-class optimum t_hat is far outside those bounds.
    assert np.all(np.abs(result.mean_risks - np.array(PAPER.class_risks(PAPER.t_hat()))) > 10 * result.stderr_risks)


def test_exact_drop_moves_erm_to_the_worst_class_optimum() -> None:
    rng = np.random.default_rng(1)
    random = simulate(PAPER, "random", 0.5, n=4000, batch=40, rng=rng)
    optimal = simulate(PAPER, "random_optimal", 0.5, n=4000, batch=40, rng=rng)
    assert abs(optimal.mean_threshold - PAPER.t_hat()) < abs(random.mean_threshold - PAPER.t_hat())
    assert abs(optimal.mean_threshold - PAPER.t_hat()) < 4 * optimal.stderr_threshold + 0.02
    assert optimal.mean_risks.max() < random.mean_risks.max()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_keeps_the_density_and_only_real_points(method: str) -> None:
    rng = np.random.default_rng(2)
    x, y = PAPER.sample(50, rng, batch=30)
    keep = prune(PAPER, method, 0.3, x, y, rng)
    assert keep.shape == x.shape and keep.dtype == bool
    kept = keep.sum(axis=-1)
    expected = 50 if method == "none" else _budget(0.3, 50)
    assert np.all(kept == expected)
    result = evaluate(PAPER, x, y, keep)
    np.testing.assert_array_equal(result.kept_counts, class_counts(y, keep))
    assert result.thresholds.shape == (30,) and result.risks.shape == (30, 2)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_same_seed_same_kept_points(method: str) -> None:
    x, y = PAPER.sample(40, np.random.default_rng(3), batch=5)
    first = prune(PAPER, method, 0.6, x, y, np.random.default_rng(4))
    second = prune(PAPER, method, 0.6, x, y, np.random.default_rng(4))
    np.testing.assert_array_equal(first, second)


def test_random_ssp_ratios_keeps_ssp_class_counts() -> None:
    rng = np.random.default_rng(5)
    x, y = PAPER.sample(60, rng, batch=20)
    keep = prune(PAPER, "random_ssp_ratios", 0.5, x, y, rng)
    np.testing.assert_array_equal(class_counts(y, keep), class_counts(y, ssp_margin(x, y, 0.5)))


@settings(max_examples=40, deadline=None)
@given(
    density=st.floats(0.05, 1.0),
    sigma0=st.floats(0.1, 3.0),
    sigma1=st.floats(0.1, 3.0),
    phi0=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_optimal_counts_have_ratio_sigma0_over_sigma1(
    density: float, sigma0: float, sigma1: float, phi0: float, seed: int
) -> None:
    model = TwoGaussians(mu0=0.0, mu1=1.0, sigma0=sigma0, sigma1=sigma1, phi0=phi0)
    rng = np.random.default_rng(seed)
    x, y = model.sample(80, rng, batch=6)
    kept = class_counts(y, prune(model, "random_optimal", density, x, y, rng))
    sizes = class_counts(y, np.ones(y.shape, dtype=bool))
    total = np.floor(density * 80 + 0.5)
    assert np.all(kept.sum(axis=-1) == total) and np.all(kept <= sizes)
    # Unsaturated datasets split the budget sigma0 : sigma1, up to the rounding of one point.
    target0 = total * sigma0 / (sigma0 + sigma1)
    free = (target0 < sizes[:, 0] - 1) & (total - target0 < sizes[:, 1] - 1)
    assert np.all(np.abs(kept[free, 0] - target0) <= 1.0)


def test_drop_counts_follow_the_allocator_with_bayes_errors() -> None:
    rng = np.random.default_rng(6)
    x, y = PAPER.sample(100, rng, batch=25)
    kept = class_counts(y, prune(PAPER, "drop", 0.5, x, y, rng))
    for counts, labels in zip(kept, y, strict=True):
        sizes = np.bincount(labels, minlength=2)
        errors = np.array(PAPER.class_risks(PAPER.t_star(sizes[0] / sizes[1])))
        np.testing.assert_array_equal(counts, drop_quotas(0.5, sizes, 1.0 - errors))
    # Class 0 is the easy class here: DRoP keeps less of it.
    assert kept[:, 0].sum() < kept[:, 1].sum()


def test_drop_handles_datasets_missing_a_class() -> None:
    x = np.array([[-1.0, -0.5, 0.0, 0.5], [0.0, 1.0, 2.0, 3.0]])
    y = np.array([[0, 0, 0, 0], [1, 1, 1, 1]])
    for method in ("drop", "random_optimal"):
        kept = class_counts(y, prune(PAPER, method, 0.5, x, y, np.random.default_rng(7)))
        np.testing.assert_array_equal(kept, [[2, 0], [0, 2]])


def test_result_statistics() -> None:
    thresholds = np.array([0.0, 1.0, 2.0, 3.0])
    risks = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])
    result = MonteCarloResult(thresholds=thresholds, risks=risks, kept_counts=np.ones((4, 2), dtype=np.int64))
    assert result.batch == 4 and result.mean_threshold == 1.5
    np.testing.assert_allclose(result.mean_risks, [0.4, 0.5])
    np.testing.assert_allclose(result.std_risks, risks.std(axis=0, ddof=1))
    np.testing.assert_allclose(result.stderr_risks, risks.std(axis=0, ddof=1) / 2.0)
    assert result.stderr_threshold == pytest.approx(thresholds.std(ddof=1) / 2.0)
    single = MonteCarloResult(thresholds=thresholds[:1], risks=risks[:1], kept_counts=np.ones((1, 2), dtype=np.int64))
    assert np.isnan(single.std_threshold) and np.all(np.isnan(single.stderr_risks))


def test_simulate_shapes_and_closed_form_risks() -> None:
    result = simulate(PAPER, "ssp", 0.5, n=30, batch=7, rng=np.random.default_rng(8))
    assert result.thresholds.shape == (7,) and result.risks.shape == (7, 2) and result.kept_counts.shape == (7, 2)
    np.testing.assert_allclose(result.risks, np.stack(PAPER.class_risks(result.thresholds), axis=-1))
    assert np.all(result.kept_counts.sum(axis=-1) == 15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "magic"}, "method"),
        ({"density": 0.0}, "density"),
        ({"density": 1.5}, "density"),
        ({"n": 0}, "n"),
        ({"batch": 0}, "batch"),
    ],
)
def test_simulate_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    arguments = {"method": "random", "density": 0.5, "n": 10, "batch": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate(PAPER, rng=np.random.default_rng(9), **arguments)
