"""toy.quotas: DRoP water-filling against Algorithm 1's loop and the official quoter, tempered quotas, exact budgets, corners."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from toy.quotas import (
    ALLOCATIONS,
    EXPONENT_MAX,
    ZeroErrorWarning,
    drop_densities,
    drop_quotas,
    largest_remainder,
    proportional_quotas,
    strategy_quotas,
    uniform_quotas,
)

Problem = tuple[float, np.ndarray, np.ndarray]

ALLOCATORS: dict[str, Callable[[float, np.ndarray, np.ndarray], np.ndarray]] = {
    "drop": lambda d, sizes, recalls: drop_quotas(d, sizes, recalls),
    "drop_min_count": lambda d, sizes, recalls: drop_quotas(d, sizes, recalls, min_count=int(d * sizes.min())),
    "drop_tempered": lambda d, sizes, recalls: drop_quotas(d, sizes, recalls, exponent=0.5),
    "count": lambda d, sizes, recalls: drop_quotas(d, sizes, recalls, allocation="count"),
    "count_min_count": lambda d, sizes, recalls: drop_quotas(
        d, sizes, recalls, min_count=int(d * sizes.min()), allocation="count", exponent=2.0
    ),
    "uniform": lambda d, sizes, recalls: uniform_quotas(d, sizes),
    "proportional": lambda d, sizes, recalls: proportional_quotas(d, sizes),
}

densities_st = st.floats(min_value=0.0, max_value=1.0, exclude_min=True)
exponents_st = st.floats(min_value=0.1, max_value=5.0)
allocations_st = st.sampled_from(ALLOCATIONS)


@st.composite
def problems(draw: st.DrawFn, perfect: bool = True) -> Problem:
    """A density, class sizes (balanced or imbalanced, some possibly empty, not all) and recalls (1.0 if perfect)."""
    k = draw(st.integers(1, 25))
    if draw(st.booleans()):
        sizes = np.full(k, draw(st.integers(1, 1000)))
    else:
        sizes = np.array(draw(st.lists(st.integers(0, 1000), min_size=k, max_size=k)))
        sizes[draw(st.integers(0, k - 1))] += 1
    recall = st.floats(0.0, 0.99)
    if perfect:
        recall = st.one_of(recall, st.just(1.0))
    recalls = np.array(draw(st.lists(recall, min_size=k, max_size=k)))
    return draw(densities_st), sizes, recalls


def budget(density: float, sizes: np.ndarray) -> int:
    """The documented integer budget floor(d N + 0.5)."""
    return math.floor(density * sizes.sum() + 0.5)


def algorithm1(density: float, sizes: np.ndarray, recalls: np.ndarray) -> np.ndarray:
    """Algorithm 1 of paper 003 as written: spread the excess by error, cap at 1, repeat until nothing is left."""
    n = sizes.astype(float)
    errors = 1.0 - recalls
    d = np.zeros(n.size)
    unsaturated = np.ones(n.size, dtype=bool)
    excess = density * n.sum()
    while excess > 1e-12 * n.sum() and (unsaturated & (n > 0)).any():
        z = (n[unsaturated] * errors[unsaturated]).sum() / excess
        step = np.where(unsaturated, errors / z, 0.0)
        d += step
        excess -= (n * step).sum()
        over = unsaturated & (d > 1)
        excess += (n[over] * (d[over] - 1)).sum()
        d[over] = 1.0
        unsaturated &= ~over
    return d


@pytest.mark.filterwarnings("ignore::toy.quotas.ZeroErrorWarning")
@pytest.mark.parametrize("name", list(ALLOCATORS))
@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_exact_sum_never_above_sizes(name: str, problem: Problem) -> None:
    d, sizes, recalls = problem
    counts = ALLOCATORS[name](d, sizes, recalls)
    assert counts.dtype == np.int64
    assert counts.sum() == budget(d, sizes)
    assert np.all((counts >= 0) & (counts <= sizes))


@settings(max_examples=150, deadline=None)
@given(problem=problems(perfect=False))
def test_densities_equal_algorithm1(problem: Problem) -> None:
    d, sizes, recalls = problem
    densities = drop_densities(d, sizes, recalls)
    nonempty = sizes > 0
    np.testing.assert_allclose(densities[nonempty], algorithm1(d, sizes, recalls)[nonempty], rtol=0, atol=1e-9)
    np.testing.assert_allclose((sizes * densities).sum(), d * sizes.sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore::toy.quotas.ZeroErrorWarning")
@settings(max_examples=80, deadline=None)
@given(problem=problems(), seed=st.integers(0, 2**32 - 1))
def test_permuting_classes_permutes_the_output(problem: Problem, seed: int) -> None:
    d, sizes, recalls = problem
    perm = np.random.default_rng(seed).permutation(sizes.size)
    np.testing.assert_allclose(
        drop_densities(d, sizes[perm], recalls[perm]), drop_densities(d, sizes, recalls)[perm], rtol=0, atol=1e-12
    )
    # Quotas are equivariant up to the documented tie-break by class index: at most one unit moves per class.
    moved = drop_quotas(d, sizes[perm], recalls[perm]) - drop_quotas(d, sizes, recalls)[perm]
    assert moved.sum() == 0 and np.abs(moved).max() <= 1


@pytest.mark.filterwarnings("ignore::toy.quotas.ZeroErrorWarning")
@settings(max_examples=80, deadline=None)
@given(problem=problems(), exponent=exponents_st)
def test_higher_error_never_gets_lower_density(problem: Problem, exponent: float) -> None:
    d, sizes, recalls = problem
    nonempty = sizes > 0
    densities = drop_densities(d, sizes, recalls, exponent=exponent)[nonempty]
    order = np.argsort(1.0 - recalls[nonempty], kind="stable")
    assert np.all(np.diff(densities[order]) >= -1e-12)
    assert np.all((densities >= 0) & (densities <= 1))


@pytest.mark.filterwarnings("ignore::toy.quotas.ZeroErrorWarning")
@settings(max_examples=100, deadline=None)
@given(problem=problems(), exponent=exponents_st, allocation=allocations_st)
def test_open_classes_share_one_level_of_error_to_the_exponent(problem: Problem, exponent: float, allocation: str) -> None:
    """Classes below their cap keep q_k = c e_k^beta (q = density, or count by count): ratios (e_i/e_j)^beta."""
    d, sizes, recalls = problem
    assume(d > 1e-6)  # subnormal densities lose the relative precision the ratios are checked to
    scores = (1.0 - recalls) ** exponent
    densities = drop_densities(d, sizes, recalls, exponent=exponent, allocation=allocation)
    kept, cap = (densities, np.ones(sizes.size)) if allocation == "density" else (densities * sizes, sizes * 1.0)
    scored = (scores > 0) & (sizes > 0)
    below = scored & (densities < 1.0 - 1e-9)
    if below.any():
        level = kept[below] / scores[below]
        np.testing.assert_allclose(level, level[0], rtol=1e-9)
        # A class at its cap would have taken more: its cap is below the common level times its score.
        assert np.all(cap[scored & ~below] <= level[0] * scores[scored & ~below] * (1 + 1e-9))


@settings(max_examples=60, deadline=None)
@given(problem=problems(perfect=False), low=exponents_st, high=exponents_st, allocation=allocations_st)
def test_a_larger_exponent_moves_samples_to_the_harder_classes(
    problem: Problem, low: float, high: float, allocation: str
) -> None:
    """Majorisation: the samples kept by the j hardest classes never fall as beta grows, for every j."""
    d, sizes, recalls = problem
    low, high = sorted((low, high))
    hardest_first = np.argsort(recalls, kind="stable")
    kept = [np.cumsum((drop_densities(d, sizes, recalls, exponent=b, allocation=allocation) * sizes)[hardest_first])
            for b in (low, high)]
    assert np.all(kept[1] >= kept[0] - 1e-9 * sizes.sum())


@pytest.mark.parametrize("recalls", [[0.2, 0.9, 0.5], [1.0, 1.0, 1.0], [1.0, 0.0, 0.3]])
def test_density_one_keeps_everything_silently(recalls: list[float]) -> None:
    sizes = [7, 0, 12]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(drop_densities(1.0, sizes, recalls), [1.0, 0.0, 1.0])
        for allocate in ALLOCATORS.values():
            np.testing.assert_array_equal(allocate(1.0, np.array(sizes), np.array(recalls)), sizes)


def test_zero_error_class_is_cut_first_with_a_warning() -> None:
    with pytest.warns(ZeroErrorWarning, match="min_count"):
        np.testing.assert_array_equal(drop_quotas(0.5, [10, 10], [1.0, 0.5]), [0, 10])
    with pytest.warns(ZeroErrorWarning, match="recalls"):
        np.testing.assert_allclose(drop_densities(0.5, [10, 10], [1.0, 0.5]), [0.0, 1.0])
    # Past what the classes with errors hold, zero-error classes share the rest at one density.
    with pytest.warns(ZeroErrorWarning):
        np.testing.assert_allclose(drop_densities(0.8, [10, 30, 20], [1.0, 0.5, 1.0]), [0.6, 1.0, 0.6])


def test_all_errors_zero_is_proportional_with_a_warning() -> None:
    with pytest.warns(ZeroErrorWarning):
        np.testing.assert_allclose(drop_densities(0.3, [10, 40, 0, 50], [1.0] * 4), [0.3, 0.3, 0.0, 0.3])
    with pytest.warns(ZeroErrorWarning):
        np.testing.assert_array_equal(drop_quotas(0.3, [10, 40, 50], [1.0] * 3), proportional_quotas(0.3, [10, 40, 50]))


def test_min_count_silences_the_warning_and_floors_zero_error_classes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(drop_quotas(0.5, [10, 10], [1.0, 0.5], min_count=3), [3, 7])


def test_min_count_floor_binds_and_the_rest_follows_drop() -> None:
    # Without a floor: c = 150 / 101, targets (1.49, 74.26, 74.26); with 20: class 0 at 20, the others share 130.
    np.testing.assert_array_equal(drop_quotas(0.5, [100, 100, 100], [0.99, 0.5, 0.5]), [2, 74, 74])
    np.testing.assert_array_equal(drop_quotas(0.5, [100, 100, 100], [0.99, 0.5, 0.5], min_count=20), [20, 65, 65])
    # A class smaller than min_count is kept whole: 102 = 3 + 2 * 49.5, the tied half unit goes to class 1.
    np.testing.assert_array_equal(drop_quotas(0.5, [3, 100, 100], [0.99, 0.5, 0.5]), [0, 51, 51])
    np.testing.assert_array_equal(drop_quotas(0.5, [3, 100, 100], [0.99, 0.5, 0.5], min_count=20), [3, 50, 49])


@pytest.mark.filterwarnings("ignore::toy.quotas.ZeroErrorWarning")
@settings(max_examples=80, deadline=None)
@given(problem=problems(), min_count=st.integers(0, 300), exponent=exponents_st, allocation=allocations_st)
def test_min_count_is_a_floor(problem: Problem, min_count: int, exponent: float, allocation: str) -> None:
    d, sizes, recalls = problem
    floor = np.minimum(min_count, sizes)
    options = {"exponent": exponent, "allocation": allocation}
    if floor.sum() > budget(d, sizes):
        with pytest.raises(ValueError, match="min_count"):
            drop_quotas(d, sizes, recalls, min_count=min_count, **options)
        return
    counts = drop_quotas(d, sizes, recalls, min_count=min_count, **options)
    assert counts.sum() == budget(d, sizes)
    assert np.all((counts >= floor) & (counts <= sizes))
    plain = drop_quotas(d, sizes, recalls, **options)
    if allocation == "density" and np.all(plain - 1 >= floor):  # the floor cannot bind, so it must change nothing
        np.testing.assert_array_equal(counts, plain)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: drop_quotas(0.0, [10, 10], [0.5, 0.5]), "density"),
        (lambda: drop_quotas(1.5, [10, 10], [0.5, 0.5]), "density"),
        (lambda: drop_quotas(float("nan"), [10, 10], [0.5, 0.5]), "density"),
        (lambda: drop_densities([0.5], [10, 10], [0.5, 0.5]), "density"),
        (lambda: uniform_quotas("half", [10, 10]), "density"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 1.1]), "recalls"),
        (lambda: drop_quotas(0.5, [10, 10], [-0.1, 0.5]), "recalls"),
        (lambda: drop_densities(0.5, [10, 10], [0.5, float("nan")]), "recalls"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 0.5, 0.5]), "recalls"),
        (lambda: drop_quotas(0.5, [10, 10], ["a", "b"]), "recalls"),
        (lambda: drop_quotas(0.5, [10, -1], [0.5, 0.5]), "class_sizes"),
        (lambda: drop_quotas(0.5, [10, 2.5], [0.5, 0.5]), "class_sizes"),
        (lambda: proportional_quotas(0.5, [10, float("nan")]), "class_sizes"),
        (lambda: uniform_quotas(0.5, [[10, 10]]), "class_sizes"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 0.5], min_count=-1), "min_count"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 0.5], min_count=1.5), "min_count"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 0.5], min_count=6), "min_count"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 0.5], exponent=0.0), "exponent"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 0.5], exponent=-1.0), "exponent"),
        (lambda: drop_densities(0.5, [10, 10], [0.5, 0.5], exponent=float("nan")), "exponent"),
        (lambda: drop_densities(0.5, [10, 10], [0.5, 0.5], exponent=float("inf")), "exponent"),
        (lambda: drop_densities(0.5, [10, 10], [0.5, 0.5], exponent="2"), "exponent"),
        (lambda: drop_densities(0.5, [10, 10], [0.5, 0.5], exponent=[1.0, 2.0]), "exponent"),
        (lambda: drop_quotas(0.5, [10, 10], [0.5, 0.5], allocation="counts"), "allocation"),
        (lambda: drop_densities(0.5, [10, 10], [0.5, 0.5], allocation=None), "allocation"),
        (lambda: largest_remainder([0.5, 0.5], [1, 1], 3), "total"),
        (lambda: largest_remainder([0.5, 0.5], [1, 1], -1), "total"),
        (lambda: largest_remainder([1.5, 0.5], [1, 1], 1), "targets"),
        (lambda: largest_remainder([0.2, 0.2], [1, 1], 2), "targets"),
        (lambda: largest_remainder([0.5], [1, 1], 1), "targets"),
        (lambda: strategy_quotas([0, 1, 3], [0, 1], 3), "labels"),
        (lambda: strategy_quotas([0, 1, 2], [0, 3], 3), "keep"),
        (lambda: strategy_quotas([0, 1, 2], [0, 0], 3), "keep"),
        (lambda: strategy_quotas([0, 1, 2], [True, False], 3), "keep"),
        (lambda: strategy_quotas([0, 1, 2], [0.0, 1.0], 3), "keep"),
        (lambda: strategy_quotas([0, 1, 2], [0], -2), "num_classes"),
    ],
)
def test_bad_input_names_the_argument(call: Callable[[], object], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        call()


def test_corners() -> None:
    np.testing.assert_array_equal(drop_quotas(0.3, [10], [0.2]), [3])  # K = 1
    np.testing.assert_array_equal(drop_quotas(0.25, [10], [0.2]), [3])  # d N = 2.5 rounds half up
    np.testing.assert_array_equal(drop_quotas(0.5, [0, 10, 0, 10], [0.1, 0.5, 0.9, 0.5]), [0, 5, 0, 5])
    np.testing.assert_array_equal(drop_quotas(0.01, [10, 10], [0.5, 0.2]), [0, 0])  # budget round(d N) = 0
    np.testing.assert_allclose(drop_densities(0.01, [10, 10], [0.5, 0.0]), [0.2 / 30, 0.4 / 30])
    np.testing.assert_array_equal(drop_quotas(0.5, [0, 0], [0.5, 0.5]), [0, 0])
    assert drop_quotas(0.5, [], []).shape == (0,)
    assert drop_quotas(0.5, np.array([4, 6], dtype=np.int32), (0.5, 0.5)).dtype == np.int64


def test_largest_remainder_ties_go_to_lower_indices_and_respect_sizes() -> None:
    np.testing.assert_array_equal(largest_remainder([0.5, 0.5, 0.5, 0.5], [1, 1, 1, 1], 2), [1, 1, 0, 0])
    np.testing.assert_array_equal(largest_remainder([1.0, 0.5, 0.5], [1, 1, 1], 2), [1, 1, 0])
    np.testing.assert_array_equal(largest_remainder([0.2, 0.7, 0.1], [5, 5, 5], 1), [0, 1, 0])


@settings(max_examples=80, deadline=None)
@given(sizes=st.lists(st.integers(0, 50), min_size=1, max_size=30), d=densities_st, seed=st.integers(0, 2**32 - 1))
def test_largest_remainder_gives_the_units_to_the_largest_fractions(sizes: list[int], d: float, seed: int) -> None:
    n = np.array(sizes)
    total = budget(d, n)
    targets = n * (total / n.sum()) if total else np.zeros(n.size)
    counts = largest_remainder(targets, n, total)
    assert counts.sum() == total
    assert np.all((np.floor(targets) <= counts) & (counts <= np.ceil(targets)) & (counts <= n))
    fractions = targets - np.floor(targets)
    raised = counts > np.floor(targets)
    if raised.any() and (~raised & (np.floor(targets) < n)).any():
        assert fractions[raised].min() >= fractions[~raised & (np.floor(targets) < n)].max()
    perm = np.random.default_rng(seed).permutation(n.size)
    if np.unique(fractions).size == n.size:  # no ties: exactly equivariant
        np.testing.assert_array_equal(largest_remainder(targets[perm], n[perm], total), counts[perm])


def test_uniform_caps_small_classes_and_spreads_the_excess() -> None:
    # 16 = 2 + 3 c gives c = 14/3; the two leftover units go to the lowest tied indices.
    np.testing.assert_array_equal(uniform_quotas(0.5, [2, 10, 10, 10]), [2, 5, 5, 4])
    np.testing.assert_array_equal(uniform_quotas(0.5, [1, 10, 100]), [1, 10, 45])


@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_uniform_counts_differ_by_at_most_one_unless_capped(problem: Problem) -> None:
    d, sizes, _ = problem
    counts = uniform_quotas(d, sizes)
    open_classes = counts < sizes
    if open_classes.any():
        assert counts.max() - counts[open_classes].min() <= 1


@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_proportional_is_within_one_of_the_common_density(problem: Problem) -> None:
    d, sizes, _ = problem
    total = budget(d, sizes)
    assert np.all(np.abs(proportional_quotas(d, sizes) - sizes * total / sizes.sum()) < 1)


def test_strategy_quotas_counts_a_mask_or_indices() -> None:
    labels = np.array([2, 0, 1, 2, 2, 0])
    mask = np.array([True, False, True, True, False, True])
    np.testing.assert_array_equal(strategy_quotas(labels, mask, 4), [1, 1, 2, 0])
    np.testing.assert_array_equal(strategy_quotas(labels, np.flatnonzero(mask), 4), [1, 1, 2, 0])
    np.testing.assert_array_equal(strategy_quotas(list(labels), [], 3), [0, 0, 0])
    assert strategy_quotas(labels, mask, 4).dtype == np.int64


# Computed with toy.quotas before `exponent` and `allocation` existed (commit 1d75d5a): beta = 1 must keep them exactly.
GOLDEN = [
    ((0.3, [10, 40, 50], [0.2, 0.5, 0.9]), [0.7272727272727273, 0.4545454545454545, 0.09090909090909088], [7, 18, 5]),
    (
        (0.7, [7, 300, 12, 0, 55], [0.61, 0.13, 0.97, 0.5, 0.42]),
        [0.3449508429338829, 0.7695057265448157, 0.026534680225683324, 0.0, 0.5130038176965439],
        [3, 231, 0, 0, 28],
    ),
    ((0.6, [5, 100, 20, 40], [0.1, 0.8, 0.3, 0.55]), [1.0, 0.38947368421052625, 1.0, 0.8763157894736843], [5, 39, 20, 35]),
]


@pytest.mark.parametrize(("problem", "densities", "quotas"), GOLDEN)
@pytest.mark.parametrize("exponent", [1.0, 1, np.float64(1.0)])
def test_exponent_one_is_the_paper_bit_for_bit(
    problem: tuple[float, list[int], list[float]], densities: list[float], quotas: list[int], exponent: float
) -> None:
    assert drop_densities(*problem, exponent=exponent).tolist() == densities
    assert drop_quotas(*problem, exponent=exponent).tolist() == quotas


@pytest.mark.filterwarnings("ignore::toy.quotas.ZeroErrorWarning")
@settings(max_examples=60, deadline=None)
@given(problem=problems(), exponent=exponents_st, allocation=allocations_st)
def test_tempering_is_drop_on_tempered_errors(problem: Problem, exponent: float, allocation: str) -> None:
    """One mechanism: exponent beta gives what beta = 1 gives on the errors e_k^beta."""
    d, sizes, recalls = problem
    tempered = 1.0 - (1.0 - recalls) ** exponent
    # 1 - (1 - e^beta) gives back e^beta only to about 1e-16 / e^beta relative precision (e = 0.01, beta = 4: 1e-8).
    np.testing.assert_allclose(
        drop_densities(d, sizes, recalls, exponent=exponent, allocation=allocation),
        drop_densities(d, sizes, tempered, allocation=allocation),
        rtol=1e-6, atol=1e-12,
    )


def official_quoter(select_size: int, class_sizes: list[int], scores: list[float]) -> list[int]:
    """The loop of quoters/drop.py in avysogorets/fair-data-pruning, transcribed here in plain Python for the tests.

    scores are the official class_scores (1 - recall; here raised to the exponent). The inner `for` removes capped
    classes from the list it is iterating over, as the official loop does, so the class after each one is skipped.
    """
    norm = sum(scores)
    quota = [int(select_size * score / norm) for score in scores]
    error = 0
    active = []
    for k in range(len(class_sizes)):
        if class_sizes[k] < quota[k]:
            error += quota[k] - class_sizes[k]
            quota[k] = class_sizes[k]
        else:
            active.append(k)
    done = False
    while error > 0 and not done:
        norm = sum([scores[k] for k in active])
        extra = {k: int(error * scores[k] / norm) for k in active}
        done = True
        for k in active:
            quota[k] += extra[k]
            error -= extra[k]
            if class_sizes[k] < quota[k]:
                done = False
                error += quota[k] - class_sizes[k]
                quota[k] = class_sizes[k]
                active.remove(k)
    return quota


def sampler_counts(quota: list[int], select_size: int) -> list[int]:
    """What the official sampler takes of each class (utils.py): int(class_quota * select_size), the quota being the
    fraction quota_k / select_size that quoters/drop.py returns."""
    return [int(q / select_size * select_size) for q in quota] if select_size else list(quota)


def filled_in_expectation(quota: list[int], class_sizes: list[int], select_size: int) -> np.ndarray:
    """The documented deterministic stand-in for the official random fill: each class gets its expected share."""
    counts, sizes = np.array(sampler_counts(quota, select_size)), np.array(class_sizes)
    missing, pool = select_size - counts.sum(), sizes - counts
    if missing == 0:
        return counts
    return largest_remainder(counts + missing * pool / pool.sum(), sizes, select_size)


OFFICIAL_CASES = [
    # (density, class sizes, recalls): balanced, imbalanced, capped classes, and passes that skip a class.
    (0.5, [100, 100, 100], [0.9, 0.8, 0.5]),
    (0.5, [1000, 100, 10], [0.9, 0.8, 0.5]),
    (0.62, [1, 25, 11, 22], [0.1, 0.6, 0.36, 0.69]),  # skipping a class changes counts: [1, 14, 11, 8], not [1, 12, 11, 10]
    (0.69, [30, 31, 21, 36, 6], [0.92, 0.38, 0.28, 0.8, 0.12]),
    (0.88, [26, 39, 11, 7, 28], [0.21, 0.31, 0.51, 0.38, 0.33]),
    (0.3, [5000, 500, 50, 5], [0.95, 0.9, 0.7, 0.2]),
]


@pytest.mark.parametrize("exponent", [1.0, 0.5, 2.0])
@pytest.mark.parametrize(("density", "sizes", "recalls"), OFFICIAL_CASES)
def test_count_allocation_is_the_official_quoter(density: float, sizes: list[int], recalls: list[float], exponent: float) -> None:
    total = budget(density, np.array(sizes))
    quota = official_quoter(total, sizes, [(1 - r) ** exponent for r in recalls])
    counts = drop_quotas(density, sizes, recalls, exponent=exponent, allocation="count")
    np.testing.assert_array_equal(counts, filled_in_expectation(quota, sizes, total))
    assert np.all(counts >= sampler_counts(quota, total))


def test_official_quoter_skips_the_class_after_a_capped_one() -> None:
    """The hand case above: pass two caps class 1 and skips class 2, which a plain loop would have topped up."""
    assert official_quoter(37, [1, 25, 11, 22], [1 - r for r in (0.1, 0.6, 0.36, 0.69)]) == [1, 14, 11, 8]
    np.testing.assert_array_equal(drop_quotas(0.62, [1, 25, 11, 22], [0.1, 0.6, 0.36, 0.69], allocation="count"),
                                  [1, 15, 11, 10])


@settings(max_examples=100, deadline=None)
@given(problem=problems(perfect=False), exponent=exponents_st)
def test_count_allocation_matches_the_official_quoter_everywhere(problem: Problem, exponent: float) -> None:
    d, sizes, recalls = problem
    total = budget(d, sizes)
    quota = official_quoter(total, sizes.tolist(), ((1.0 - recalls) ** exponent).tolist()) if total else [0] * sizes.size
    np.testing.assert_array_equal(
        drop_quotas(d, sizes, recalls, exponent=exponent, allocation="count"),
        filled_in_expectation(quota, sizes.tolist(), total),
    )


def test_count_fill_is_the_mean_of_the_official_random_fill() -> None:
    """The official code fills the shortfall with uniform draws from every unselected sample; its mean is ours."""
    density, sizes, recalls = 0.3, [5000, 500, 50, 5], [0.95, 0.9, 0.7, 0.2]
    total = budget(density, np.array(sizes))
    quota = np.array(sampler_counts(official_quoter(total, sizes, [1 - r for r in recalls]), total))
    missing = total - quota.sum()
    assert missing >= 2  # the case must leave something to fill
    draws = np.random.default_rng(0).multivariate_hypergeometric(np.array(sizes) - quota, missing, size=20_000)
    ours = drop_quotas(density, sizes, recalls, allocation="count")
    assert np.all(np.abs(quota + draws.mean(axis=0) - ours) < 1.0)


def test_count_and_density_allocations_differ_exactly_on_imbalanced_data() -> None:
    recalls = [0.9, 0.8, 0.5]  # errors in the ratio 1 : 2 : 5
    balanced = [300, 300, 300]
    np.testing.assert_allclose(
        drop_densities(0.4, balanced, recalls, allocation="count"), drop_densities(0.4, balanced, recalls)
    )
    sizes = np.array([1000, 400, 400])  # budget 540
    np.testing.assert_allclose(drop_densities(0.3, sizes, recalls, allocation="count") * sizes, [67.5, 135.0, 337.5])
    np.testing.assert_allclose(drop_densities(0.3, sizes, recalls), np.array([0.1, 0.2, 0.5]) * 540 / 380)
    # In floats the official shares are 67.4999.. and 134.9999..: int() leaves two samples, and class 0, with the
    # largest unselected pool (933 of 1262), expects 1.48 of them.
    np.testing.assert_array_equal(drop_quotas(0.3, sizes, recalls, allocation="count"), [69, 134, 337])


def test_count_corners() -> None:
    # min_count: class 0 falls below its floor, is set at it, and the others share the rest by error.
    np.testing.assert_array_equal(drop_quotas(0.5, [100, 100, 100], [0.99, 0.5, 0.5], allocation="count"), [2, 74, 74])
    np.testing.assert_array_equal(
        drop_quotas(0.5, [100, 100, 100], [0.99, 0.5, 0.5], min_count=20, allocation="count"), [20, 65, 65]
    )
    # Zero-error classes: cut first, with the warning; past what the others hold, they share the rest at equal counts.
    with pytest.warns(ZeroErrorWarning):
        np.testing.assert_array_equal(drop_quotas(0.5, [10, 10], [1.0, 0.5], allocation="count"), [0, 10])
    with pytest.warns(ZeroErrorWarning):
        np.testing.assert_array_equal(drop_quotas(0.8, [10, 30, 20], [1.0, 0.5, 1.0], allocation="count"), [9, 30, 9])
    with pytest.warns(ZeroErrorWarning):
        np.testing.assert_array_equal(drop_quotas(0.3, [10, 40, 50], [1.0] * 3, allocation="count"), [10, 10, 10])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(drop_quotas(1.0, [7, 0, 12], [0.2, 0.9, 1.0], allocation="count"), [7, 0, 12])
    np.testing.assert_array_equal(drop_quotas(0.01, [10, 10], [0.5, 0.2], allocation="count"), [0, 0])
    assert drop_quotas(0.5, [], [], allocation="count").shape == (0,)


# The whole accepted range of beta, with errors as small as a float64 recall allows (1 - (1 - 2**-53) = 2**-53).
full_exponents_st = st.floats(min_value=0.0, max_value=EXPONENT_MAX, exclude_min=True)
tiny_error_recalls_st = st.lists(st.one_of(st.floats(0.0, 0.99), st.just(1 - 2**-53), st.just(1 - 2**-40)),
                                 min_size=2, max_size=12)


@pytest.mark.filterwarnings("error::toy.quotas.ZeroErrorWarning")  # no positive error may fall to the zero-error corner
@settings(max_examples=150, deadline=None)
@given(recalls=tiny_error_recalls_st, betas=st.lists(full_exponents_st, min_size=2, max_size=2),
       d=st.floats(0.01, 0.99), allocation=allocations_st, size=st.integers(1, 500))
def test_class_densities_are_monotone_in_beta_over_the_whole_accepted_range(
        recalls: list[float], betas: list[float], d: float, allocation: str, size: int) -> None:
    """For beta_1 <= beta_2 in (0, EXPONENT_MAX]: the hardest class's density is non-decreasing in beta and the
    easiest class's non-increasing; every class with an error keeps a positive density (no underflow cliff)."""
    recalls = np.array(recalls)
    sizes = np.full(recalls.size, size)
    hardest, easiest = int(np.argmin(recalls)), int(np.argmax(recalls))
    low, high = (drop_densities(d, sizes, recalls, exponent=b, allocation=allocation) for b in sorted(betas))
    for densities in (low, high):
        assert np.all(np.isfinite(densities)) and np.all(densities > 0)
        assert math.isclose(float((densities * sizes).sum()), d * sizes.sum(), rel_tol=1e-9)
    assert high[hardest] >= low[hardest] * (1 - 1e-12)
    assert high[easiest] <= low[easiest] * (1 + 1e-12)


@pytest.mark.parametrize("beta", [EXPONENT_MAX * (1 + 1e-9), 17.0, 1e6])
def test_an_exponent_beyond_the_exact_range_is_refused_with_the_range(beta: float) -> None:
    with pytest.raises(ValueError, match=r"exponent: must be a number in \(0, 16\]"):
        drop_densities(0.5, [10, 10], [0.5, 1 - 2**-53], exponent=beta)
