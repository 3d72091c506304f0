"""The class-quota allocator shared by theory (`toy`) and practice (`deep`): DRoP, StrategyQ, uniform, proportional.

DRoP (Algorithm 1 of paper 003; MetriQ in paper 002) keeps class k at density proportional to its
validation error e_k = 1 - r_k:

    d_k = min(1, c e_k),   with c chosen so that  sum_k N_k d_k = d N,   N = sum_k N_k.

Algorithm 1 reaches this by a loop (spread the budget in proportion to N_k e_k, cap classes at 1, re-spread
the excess); here the same fixed point is computed directly by water-filling: the kept mass
g(c) = sum_k clip(c N_k e_k, lo_k, N_k) is piecewise linear and non-decreasing in c, so ONE sort of its
breakpoints, cumulative sums and a binary search give the exact c (O(K log K), no loop over classes).

Integer quotas. The budget is total = floor(d N + 0.5) (round half up of the float product d N, so
d N = 2.5 keeps 3). The continuous targets are computed for that integer budget and rounded by
`largest_remainder`, the single rounding used by every function here: take floors, then give +1 to the
classes with the largest fractional parts (ties to the lower class index, so results are deterministic)
among classes still below their size. Counts therefore never exceed N_k and always sum to total exactly.

Corners (all defined; none loops or divides by zero):
- d = 1: every class is kept whole (densities exactly 1, quotas exactly N_k), whatever the recalls.
- Empty classes (N_k = 0): quota 0 and density 0; they do not affect the other classes.
- K = 1: the single class gets the whole budget. K = 0 gives empty arrays.
- Budget total = 0 (tiny d N): every quota is 0; `drop_densities` still returns the continuous densities.
- Some errors zero (r_k = 1): c e_k = 0, so such a class is pruned first, to 0 if the classes with errors can
  absorb the budget. A `ZeroErrorWarning` says so and suggests `min_count`. If the budget exceeds everything
  the classes with errors hold, those are kept whole and the rest is spread over the zero-error classes at a
  common density: the limit of giving them an equal, vanishing error (Algorithm 1 itself divides by zero here).
- All errors zero: by the same limit every class gets density d, i.e. proportional pruning, with the warning
  (the query model gives no signal to allocate by).
- min_count = m (drop_quotas): a floor, every class keeps at least min(m, N_k); above the floors the counts
  still follow DRoP, n_k = clip(c N_k e_k, min(m, N_k), N_k), so a floor that does not bind changes nothing.
  If the floors alone exceed the budget, ValueError.

Bad input raises ValueError naming the argument: density outside (0, 1] or NaN, recalls outside [0, 1] or NaN,
negative or non-integer class sizes, length mismatch between recalls and class_sizes, negative min_count.
Everything accepts lists or arrays and returns numpy arrays (int64 counts, float64 densities).
"""

from __future__ import annotations

import operator
import warnings

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class ZeroErrorWarning(UserWarning):
    """Some non-empty class has zero validation error, so DRoP prunes it before any other class."""


def drop_densities(density: float, class_sizes: npt.ArrayLike, recalls: npt.ArrayLike) -> FloatArray:
    """DRoP class densities d_k = min(1, c (1 - r_k)) with sum_k N_k d_k = d N (0 for empty classes)."""
    d = _check_density(density)
    sizes = _check_sizes(class_sizes)
    errors = 1.0 - _check_recalls(recalls, sizes.size)
    targets = _drop_targets(d * float(sizes.sum()), sizes, errors, np.zeros(sizes.size, dtype=np.int64))
    _warn_zero_error(sizes, errors, targets)
    return np.divide(targets, sizes, out=np.zeros(sizes.size), where=sizes > 0)


def drop_quotas(
    density: float, class_sizes: npt.ArrayLike, recalls: npt.ArrayLike, min_count: int = 0
) -> IntArray:
    """DRoP integer class counts n_k <= N_k summing to floor(d N + 0.5), each at least min(min_count, N_k)."""
    d = _check_density(density)
    sizes = _check_sizes(class_sizes)
    errors = 1.0 - _check_recalls(recalls, sizes.size)
    minimum = _check_count(min_count, "min_count")
    floor = np.minimum(minimum, sizes)
    total = _budget(d, sizes)
    if floor.sum() > total:
        raise ValueError(
            f"min_count: the floors sum to {int(floor.sum())} samples but density {d} keeps only {total}; "
            "lower min_count or raise density"
        )
    targets = _drop_targets(float(total), sizes, errors, floor)
    if minimum == 0:
        _warn_zero_error(sizes, errors, targets)
    return _round_to_total(targets, sizes, total)


def strategy_quotas(labels: npt.ArrayLike, keep: npt.ArrayLike, num_classes: int) -> IntArray:
    """Class counts of another selection (StrategyQ): keep is a boolean mask over labels or an index array."""
    k = _check_count(num_classes, "num_classes")
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise ValueError(f"labels: expected a 1-D array of integer class ids, got shape {y.shape} dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels: class ids must lie in [0, num_classes={k}), got [{y.min()}, {y.max()}]")
    return np.bincount(y.astype(np.intp)[_check_selection(keep, y.size)], minlength=k).astype(np.int64)


def uniform_quotas(density: float, class_sizes: npt.ArrayLike) -> IntArray:
    """The same count per class, capped at N_k with the excess spread over the others; sums to floor(d N + 0.5)."""
    sizes = _check_sizes(class_sizes)
    total = _budget(_check_density(density), sizes)
    zeros = np.zeros(sizes.size, dtype=np.int64)
    return _round_to_total(_water_fill(np.ones(sizes.size), zeros, sizes, float(total)), sizes, total)


def proportional_quotas(density: float, class_sizes: npt.ArrayLike) -> IntArray:
    """The same density for every class; counts sum to floor(d N + 0.5)."""
    sizes = _check_sizes(class_sizes)
    total = _budget(_check_density(density), sizes)
    share = total / sizes.sum() if total else 0.0
    return _round_to_total(sizes * share, sizes, total)


def largest_remainder(targets: npt.ArrayLike, class_sizes: npt.ArrayLike, total: int) -> IntArray:
    """Round targets (0 <= t_k <= N_k, summing to total) to integers <= N_k that sum to total exactly."""
    sizes = _check_sizes(class_sizes)
    try:
        t = np.asarray(targets, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"targets: expected numbers, got {targets!r}") from error
    if t.shape != sizes.shape:
        raise ValueError(f"targets: got shape {t.shape} for {sizes.size} classes (class_sizes); pass one per class")
    if not np.all((t >= 0) & (t <= sizes)):
        raise ValueError("targets: every target must lie in [0, class_sizes[k]] (and not be NaN)")
    n = _check_count(total, "total")
    if n > sizes.sum():
        raise ValueError(f"total: {n} exceeds the {int(sizes.sum())} samples in class_sizes")
    # Off by less than 1/2, the floors cannot overshoot total and the fractions can make up the rest.
    if abs(t.sum() - n) > min(0.5, 1e-9 * max(int(sizes.sum()), 1)):
        raise ValueError(f"targets: they sum to {t.sum()!r}, not to total={n}; rescale them to sum to total")
    return _round_to_total(t, sizes, n)


def _round_to_total(targets: FloatArray, sizes: IntArray, total: int) -> IntArray:
    """Largest-remainder rounding without input checks (targets in [0, sizes], summing to total within 1/2)."""
    counts = np.floor(targets).astype(np.int64)
    missing = total - int(counts.sum())
    if missing == 0:
        return counts
    # Classes already at their size cannot take +1; -1 ranks them below every real fraction (>= 0).
    key = np.where(counts < sizes, targets - counts, -1.0)
    # Selection, not a sort: the missing-th largest key, then ties at it to the lowest class indices.
    cut = np.partition(key, key.size - missing)[key.size - missing]
    above = key > cut
    tied = np.flatnonzero(key == cut)[: missing - int(np.count_nonzero(above))]
    counts[above] += 1
    counts[tied] += 1
    return counts


def _drop_targets(budget: float, sizes: IntArray, errors: FloatArray, floor: IntArray) -> FloatArray:
    """Continuous DRoP counts clip(c N_k e_k, floor_k, N_k) summing to budget (see the module docstring)."""
    weights = sizes * errors
    has_error = weights > 0
    if budget <= sizes[has_error].sum() + floor[~has_error].sum():
        return _water_fill(weights, floor, sizes, budget)
    # Classes with errors are all full; the rest goes to zero-error classes as if their errors were equal and tiny.
    lower = np.where(has_error, sizes, floor)
    return _water_fill(np.where(has_error, 0, sizes).astype(np.float64), lower, sizes, budget)


def _water_fill(weights: FloatArray, lower: IntArray, upper: IntArray, budget: float) -> FloatArray:
    """Targets clip(c w_k, lower_k, upper_k) summing to budget, with the level c found after one sort.

    g(c) = L + sum_k w_k (min(c, b_k) - min(c, a_k)), a_k = lower_k / w_k, b_k = upper_k / w_k, L = sum lower, is
    piecewise linear between the sorted breakpoints; classes with w_k = 0 stay at lower_k. Budgets outside
    [L, g(inf)] return the nearest end (all at lower, all full).
    """
    moving = weights > 0
    if budget <= lower.sum():
        return lower.astype(np.float64)
    if budget >= upper[moving].sum() + lower[~moving].sum():
        return np.where(moving, upper, lower).astype(np.float64)
    w = weights[moving]
    # A breakpoint a_k = 0 adds nothing for c >= 0, so only positive floors contribute one.
    raised = lower[moving] > 0
    w_low = w[raised]
    points = np.concatenate((upper[moving] / w, lower[moving][raised] / w_low))
    slopes = np.concatenate((w, -w_low))  # the change of g's slope at each breakpoint, negated
    masses = np.concatenate((upper[moving], -lower[moving][raised])).astype(np.float64)  # slope * point, exactly
    order = np.argsort(points)
    points, slopes, masses = points[order], slopes[order], masses[order]
    # Left of breakpoint j the slope is the sum of slopes[j:], and g = L + masses[:j].sum() + c * slopes[j:].sum().
    slope_right = np.cumsum(slopes[::-1])[::-1]  # summed from the end: no cancellation when all slopes are > 0
    mass_left = np.concatenate(([0.0], np.cumsum(masses[:-1])))
    base = budget - lower.sum()
    j = int(np.searchsorted(mass_left + points * slope_right, base))
    if j == points.size:  # rounding put the budget past the last breakpoint, where g is flat and full
        return np.where(moving, upper, lower).astype(np.float64)
    level = (base - mass_left[j]) / slope_right[j]
    return np.clip(level * weights, lower, upper)  # w_k = 0 lands on lower_k


def _warn_zero_error(sizes: IntArray, errors: FloatArray, targets: FloatArray) -> None:
    """Warn when DRoP cuts a non-empty class only because its validation error is zero."""
    cut = (errors == 0) & (sizes > 0) & (targets < sizes)
    if cut.any():
        warnings.warn(
            f"recalls: {int(cut.sum())} non-empty class(es) have recall 1 (zero validation error), e.g. class "
            f"{int(np.flatnonzero(cut)[0])}; DRoP keeps them only after every class with errors is full "
            "(all recalls 1 means proportional pruning). Pass min_count to drop_quotas to guarantee a floor.",
            ZeroErrorWarning,
            stacklevel=3,
        )


def _budget(density: float, sizes: IntArray) -> int:
    """The integer budget floor(d N + 0.5); never above N because d <= 1."""
    return int(np.floor(density * float(sizes.sum()) + 0.5))


def _check_density(density: float) -> float:
    """Validate the target dataset density: a real number in (0, 1]."""
    try:
        d = float(density) if np.ndim(density) == 0 else np.nan
    except (TypeError, ValueError):
        d = np.nan
    if not 0.0 < d <= 1.0:  # also false for NaN
        raise ValueError(f"density: must be a number in (0, 1], got {density!r}")
    return d


def _check_sizes(class_sizes: npt.ArrayLike) -> IntArray:
    """Validate per-class sample counts: a 1-D array of non-negative integers (integral floats allowed)."""
    sizes = np.asarray(class_sizes)
    if sizes.ndim != 1 or (sizes.size and sizes.dtype.kind not in "iuf"):
        raise ValueError(
            f"class_sizes: expected a 1-D sequence of per-class sample counts, got shape {sizes.shape} "
            f"dtype {sizes.dtype}"
        )
    if sizes.dtype.kind == "f" and not np.all(np.isfinite(sizes) & (sizes == np.round(sizes))):
        raise ValueError("class_sizes: every class size must be a whole number of samples")
    if np.any(sizes < 0):
        raise ValueError("class_sizes: class sizes must be >= 0")
    return sizes.astype(np.int64)


def _check_recalls(recalls: npt.ArrayLike, num_classes: int) -> FloatArray:
    """Validate validation recalls: one number in [0, 1] per class."""
    try:
        r = np.asarray(recalls, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"recalls: expected numbers in [0, 1], got {recalls!r}") from error
    if r.shape != (num_classes,):
        raise ValueError(
            f"recalls: got shape {r.shape} for {num_classes} classes (class_sizes); pass one recall per class"
        )
    if not np.all((r >= 0.0) & (r <= 1.0)):
        raise ValueError("recalls: every recall must lie in [0, 1] (and not be NaN)")
    return r


def _check_count(value: int, name: str) -> int:
    """Validate a non-negative integer argument, naming it in the error."""
    try:
        n = operator.index(value)
    except TypeError as error:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}") from error
    if n < 0:
        raise ValueError(f"{name}: must be >= 0, got {n}")
    return n


def _check_selection(keep: npt.ArrayLike, n: int) -> npt.NDArray[np.intp] | npt.NDArray[np.bool_]:
    """Validate a selection over n samples: a boolean mask of length n or distinct indices in [0, n)."""
    k = np.asarray(keep)
    if k.ndim == 1 and k.dtype == np.bool_ and k.size == n:
        return k
    if k.ndim == 1 and (k.size == 0 or k.dtype.kind in "iu"):
        idx = k.astype(np.intp)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"keep: indices must lie in [0, {n}) (len(labels))")
        if idx.size and np.bincount(idx, minlength=n).max() > 1:
            raise ValueError("keep: indices must be distinct (a selection keeps each sample at most once)")
        return idx
    raise ValueError(
        f"keep: expected a boolean mask of length {n} or a 1-D integer index array, got shape {k.shape} dtype {k.dtype}"
    )
