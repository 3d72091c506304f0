"""Pruning protocols: parsing, exact counts, quotas from toy.quotas, seeding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.prune import (
    keep,
    parse_protocol,
    recalls_from_predictions,
    smoothed_recalls,
    top_k,
    top_within_units,
)
from toy.quotas import drop_quotas, kept_count, strategy_quotas

SCORERS = frozenset({"random", "el2n", "forgetting"})
PROTOCOLS = ["full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop", "forgetting+drop"]


def _problem(seed: int, n: int = 300, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    units = rng.choice(k, size=n, p=rng.dirichlet(np.ones(k)) * 0.5 + 0.5 / k)
    scores = rng.normal(size=n) + units  # class-dependent scores, so S starves some classes
    recalls = rng.uniform(0.3, 0.99, size=k)
    return units, scores, recalls


def test_parse_names() -> None:
    assert parse_protocol("el2n", SCORERS).counts == "global"
    assert parse_protocol("my_score+drop").scorer == "my_score"  # any-scorer mode, for stored runs
    assert parse_protocol("random+el2nq", SCORERS).scorer == "el2n"
    p = parse_protocol("el2n+drop", SCORERS)
    assert (p.counts, p.scorer, p.inside) == ("drop", "el2n", "score")
    p = parse_protocol("random+drop", SCORERS)
    assert (p.counts, p.scorer, p.inside, p.needs_recalls) == ("drop", None, "random", True)
    for bad in ["el2nq", "random+foo", "foo+drop", "drop", ""]:
        with pytest.raises(ValueError, match="unknown protocol"):
            parse_protocol(bad, SCORERS)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.01, 1.0), protocol=st.sampled_from(PROTOCOLS))
def test_every_protocol_keeps_round_dn(seed: int, density: float, protocol: str) -> None:
    units, scores, recalls = _problem(seed)
    kept = keep(units, density, protocol, scores=scores, recalls=recalls, seed=seed)
    expected = units.size if protocol == "full" else kept_count(density, units.size)
    assert kept.size == expected
    assert np.all(np.diff(kept) > 0)  # sorted, no duplicates


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.05, 0.95), prior=st.sampled_from([0.0, 1.0, 3.5]))
def test_class_counts_are_the_quotas(seed: int, density: float, prior: float) -> None:
    units, scores, recalls = _problem(seed)
    sizes = np.bincount(units, minlength=5)
    val_sizes = np.full(5, 20)
    used = smoothed_recalls(recalls, val_sizes, prior)
    for name in ["random+drop", "el2n+drop"]:
        kept = keep(units, density, name, scores=scores, recalls=recalls, recall_prior=prior, val_sizes=val_sizes,
                    seed=seed)
        np.testing.assert_array_equal(np.bincount(units[kept], minlength=5), drop_quotas(density, sizes, used))
    top = keep(units, density, "el2n", scores=scores, seed=seed)
    kept = keep(units, density, "random+el2nq", scores=scores, seed=seed)
    np.testing.assert_array_equal(np.bincount(units[kept], minlength=5), strategy_quotas(units, top, 5))


def test_score_protocols_keep_the_hardest() -> None:
    units, scores, recalls = _problem(1)
    kept = keep(units, 0.3, "el2n", scores=scores)
    dropped = np.setdiff1d(np.arange(units.size), kept)
    assert scores[kept].min() >= scores[dropped].max()
    kept = keep(units, 0.3, "el2n+drop", scores=scores, recalls=recalls)
    for u in range(5):
        inside, outside = kept[units[kept] == u], np.setdiff1d(np.flatnonzero(units == u), kept)
        if inside.size and outside.size:
            assert scores[inside].min() >= scores[outside].max()


def test_same_seed_same_indices() -> None:
    units, scores, recalls = _problem(2)
    a = keep(units, 0.4, "random+drop", recalls=recalls, seed=7)
    b = keep(units, 0.4, "random+drop", recalls=recalls, seed=7)
    c = keep(units, 0.4, "random+drop", recalls=recalls, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_any_score_name_and_groups() -> None:
    units, scores, recalls = _problem(4)
    np.testing.assert_array_equal(keep(units, 0.3, "my_score", scores=scores), keep(units, 0.3, "el2n", scores=scores))
    groups = (units + np.arange(units.size)) % 3
    kept = keep(units, 0.5, "random+drop", groups=groups, recalls=[0.5, 0.9, 0.7])
    np.testing.assert_array_equal(np.bincount(groups[kept], minlength=3),
                                  drop_quotas(0.5, np.bincount(groups, minlength=3), [0.5, 0.9, 0.7]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"density": 0.0}, "density"), ({"density": -0.1}, "density"), ({"density": 1.5}, "density"),
        ({"density": float("nan")}, "density"), ({"protocol": "el2n"}, "needs scores"),
        ({"protocol": "el2n", "scores": np.zeros(5)}, "scores"), ({"protocol": "random+drop"}, "needs recalls"),
        ({"protocol": "el2n", "scores": np.r_[np.nan, np.zeros(299)]}, "finite"),
        ({"protocol": "random+drop", "recalls": [0.5, np.nan, 0.5, 0.5, 0.5]}, "no validation samples"),
        ({"protocol": "random+drop", "recalls": [0.5, 1.5, 0.5, 0.5, 0.5]}, r"\[0, 1\]"),
        ({"protocol": "random+drop", "recalls": [0.5, 0.5]}, "one recall per class"),
        ({"protocol": "random+drop", "recalls": [0.5] * 5, "recall_prior": 1.0}, "val_sizes"),
        ({"groups": np.zeros(7, int)}, "groups has 7"), ({"labels": [0.5, 1.0]}, "labels"),
        ({"labels": [[0, 1]]}, "labels"), ({"labels": [-1, 0]}, "labels"), ({"allocation": "nope"}, "allocation"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs: dict, message: str) -> None:
    units, _, _ = _problem(3)
    args = {"labels": units, "density": 0.5, "protocol": "random", **kwargs}
    with pytest.raises(ValueError, match=message):
        keep(args.pop("labels"), args.pop("density"), args.pop("protocol"), **args)


def test_recalls_from_predictions() -> None:
    recalls = recalls_from_predictions([0, 0, 1, 1, 1, 3], [0, 1, 1, 1, 0, 3], 4)
    np.testing.assert_allclose(recalls, [0.5, 2 / 3, np.nan, 1.0])
    with pytest.raises(ValueError, match="num_classes"):
        recalls_from_predictions([0, 5], [0, 0], 4)
    with pytest.raises(ValueError, match="y_pred has 1"):
        recalls_from_predictions([0, 1], [0], 4)


def test_importing_the_numpy_api_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, deep.prune; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_helpers_tie_break_by_index() -> None:
    np.testing.assert_array_equal(top_k(np.array([1.0, 2.0, 2.0, 0.0]), 2), [1, 2])
    units = np.array([0, 0, 0, 1, 1])
    kept = top_within_units(units, np.array([2, 1]), np.array([5.0, 5.0, 1.0, 0.0, 3.0]))
    np.testing.assert_array_equal(kept, [0, 1, 4])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 500), st.floats(0, 1)), min_size=1, max_size=8),
    st.floats(0.01, 10),
)
def test_smoothed_recalls_are_a_shrunk_interior_order_preserving_estimate(units: list, prior: float) -> None:
    sizes = np.array([n for n, _ in units], dtype=float)
    correct = np.floor(np.array([f for _, f in units]) * sizes)  # a realisable number of correct answers
    raw = correct / sizes
    smoothed = smoothed_recalls(raw, sizes, prior)
    np.testing.assert_allclose(smoothed, (correct + prior) / (sizes + 2 * prior))
    assert np.all((smoothed > 0) & (smoothed < 1))  # no unit is ever certain: every one keeps a positive quota
    assert np.all(np.abs(smoothed - 0.5) <= np.abs(raw - 0.5) + 1e-12)  # pulled towards 1/2, never past it
    np.testing.assert_array_equal(smoothed_recalls(raw, sizes, 0.0), raw)
    same_size = sizes == sizes[0]
    # Among units measured on equally many samples, a higher raw recall stays at least as high.
    order = np.argsort(raw[same_size], kind="stable")
    assert np.all(np.diff(smoothed[same_size][order]) >= -1e-12)


@pytest.mark.parametrize("prior", [-1.0, float("nan"), float("inf")])
def test_smoothed_recalls_refuse_a_bad_prior(prior: float) -> None:
    with pytest.raises(ValueError, match="prior"):
        smoothed_recalls(np.array([0.5]), np.array([10]), prior)
