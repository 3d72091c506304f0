"""The class-quota allocator shared by theory (`toy`) and practice (`deep`): DRoP, StrategyQ, uniform, proportional.

DRoP (Algorithm 1 of paper 003; MetriQ in paper 002) keeps class k at density proportional to its
validation error e_k = 1 - r_k:

    d_k = min(1, c e_k),   with c chosen so that  sum_k N_k d_k = d N,   N = sum_k N_k.

Algorithm 1 reaches this by a loop (spread the budget in proportion to N_k e_k, cap classes at 1, re-spread
the excess); here the same fixed point is computed directly by water-filling: the kept mass
g(c) = sum_k clip(c w_k, lo_k, N_k) with weights w_k = N_k e_k is piecewise linear and non-decreasing in c, so
ONE sort of its breakpoints, cumulative sums and a binary search give the exact c (O(K log K), no loop over classes).

Tempered quotas (`exponent` = beta > 0, beyond the paper): the class error enters as e_k^beta, so
d_k = min(1, c e_k^beta). beta = 1 is Algorithm 1 (and bit for bit the untempered result); beta < 1 flattens
the allocation towards proportional pruning, beta > 1 sharpens it: two unsaturated classes keep densities in the
ratio (e_i/e_j)^beta. Everything below (water-filling, floors, corners) is the same mechanism on e_k^beta.
The accepted range is 0 < beta <= EXPONENT_MAX = 16, where e^beta is exact in floating point: an error e = 1 - r of
a float64 recall r is 0 or at least 2**-53 (below 1/2 the floats are multiples of 2**-53), so in log space
log2(e^beta) = beta log2(e) >= -53 * 16 = -848, a normal double (>= -1022): no error underflows to the
"zero error" corner, and the water-filling's breakpoints 1/e^beta <= 2**848 stay finite. Outside that range
the allocation would fall off a cliff (a class treated as error-free), so ValueError gives the range. As beta
grows, the hardest class's density is non-decreasing and the easiest's non-increasing (tests/test_quotas.py).

Three allocations (`allocation`), two mechanisms:
- "density" (default): density proportional to error, the paper's Algorithm 1, as above (weights N_k e_k^beta).
- "count" and "official": class COUNTS proportional to error, n_k = min(N_k, c e_k^beta) (weights e_k^beta), as the
  authors' official quoter does (avysogorets/fair-data-pruning, quoters/drop.py). `drop_densities` returns the
  continuous fixed point n_k / N_k of that quoter (the same for both). The integer counts reproduce its arithmetic
  exactly: n_k = int(S e_k / sum_j e_j); classes over their size are capped and their excess E is re-spread over
  the remaining classes as int(E e_k / Z) (Z = the remaining classes' error sum), pass after pass, until a pass
  caps no class; a pass that caps a class skips the class after it (the official `for` loop removes items from
  the list it iterates over), which is reproduced too. The sampler then re-derives each count as int((n_k / S) S)
  in floats, which loses a sample for some (n_k, S) (29 / 100 * 100 = 28.999..). That is NOT Algorithm 1 even on
  balanced data: the skipped classes and the floors move up to hundreds of samples per class (PROTOCOL.md §4b).
  The int() floors leave a shortfall (a few samples per class), which the official selection step (utils.py,
  `get_idxs_from_scores` then `dosample`) fills with samples drawn uniformly at random from everything not yet
  selected, whatever the class. The two variants differ only in that fill (`fill_shortfall`): "official" DRAWS it
  (seeded: a multivariate hypergeometric over the classes' unselected rests; `deep.prune.keep` draws the rows
  themselves), "count" takes its EXPECTATION, class k receiving F (N_k - n_k) / sum_j (N_j - n_j) of the F missing
  samples, rounded by largest remainder, so that its counts are a deterministic function of the recalls.
  `official_selection` gives the counts before the fill. The official budget is int(N (1 - (1 - d)))
  (`kept_total(..., "official")`), a separate setting (`kept_rule`). The official loop divides by zero when the
  classes it spreads over all have zero error; here those corners follow the same limit as the density allocation
  (see below), with equal counts in place of equal densities; a zero count keeps 0 samples (the official sampler
  keeps the whole class there, `idxs[-0:]`, and then crashes).

Integer quotas. The budget is total = floor(d N + 0.5) (round half up of the float product d N, so
d N = 2.5 keeps 3). For the density allocation, the continuous targets are computed for that integer budget
and rounded by `largest_remainder`, the single rounding used by every function here: take floors, then give +1
to the classes with the largest fractional parts (ties to the lower class index, so results are deterministic)
among classes still below their size. Counts therefore never exceed N_k and always sum to total exactly.

Corners (all defined; none loops forever or divides by zero):
- d = 1: every class is kept whole (densities exactly 1, quotas exactly N_k), whatever the recalls.
- Empty classes (N_k = 0): quota 0 and density 0; they do not affect the other classes.
- K = 1: the single class gets the whole budget. K = 0 gives empty arrays.
- Budget total = 0 (tiny d N): every quota is 0; `drop_densities` still returns the continuous densities.
- Some errors zero (r_k = 1): c e_k = 0, so such a class is pruned first, to 0 if the classes with errors can
  absorb the budget. A `ZeroErrorWarning` says so and suggests `min_count`. If the budget exceeds everything
  the classes with errors hold, those are kept whole and the rest is spread over the zero-error classes at a
  common density ("count": a common count): the limit of giving them an equal, vanishing error (Algorithm 1
  itself divides by zero here).
- All errors zero: by the same limit every class gets density d, i.e. proportional pruning ("count": equal
  counts, capped at the class sizes), with the warning (the query model gives no signal to allocate by).
- min_count = m (drop_quotas): a floor, every class keeps at least min(m, N_k); above the floors the counts
  still follow DRoP, n_k = clip(c w_k, min(m, N_k), N_k), so a floor that does not bind changes nothing. For
  "count" (the official quoter has no floor) the classes the official loop leaves below their floor are set at
  the floor and the loop is re-run on the others with what is left of the budget, until none falls below; a
  floor that does not bind changes nothing there either. If the floors alone exceed the budget, ValueError.

Bad input raises ValueError naming the argument: density outside (0, 1] or NaN, recalls outside [0, 1] or NaN,
negative or non-integer class sizes, length mismatch between recalls and class_sizes, negative min_count, an
exponent that is not a finite number > 0, an unknown allocation.
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


EXPONENT_MAX = 16.0  # the largest beta whose e**beta stays a normal double for every error e >= 2**-53
ALLOCATIONS = ("density", "count", "official")
"""How class errors become quotas: densities proportional to error (paper 003), or counts as the official quoter
(its shortfall filled in expectation: "count"; drawn at random as its code does: "official")."""

KEPT_RULES = ("round", "official")
"""How many samples a density keeps of N: floor(d N + 1/2) here, int(N (1 - (1 - d))) in the official scheduler."""


def drop_densities(
    density: float, class_sizes: npt.ArrayLike, recalls: npt.ArrayLike, *, exponent: float = 1.0,
    allocation: str = "density",
) -> FloatArray:
    """DRoP class densities d_k = min(1, c e_k^beta) ("count": min(N_k, c e_k^beta) / N_k) with sum N_k d_k = d N."""
    d = _check_density(density)
    sizes = _check_sizes(class_sizes)
    errors = 1.0 - _check_recalls(recalls, sizes.size)
    by_density = _check_allocation(allocation) == "density"
    floor = np.zeros(sizes.size, dtype=np.int64)
    targets = _drop_targets(d * float(sizes.sum()), sizes, _tempered(errors, exponent), floor, by_density)
    _warn_zero_error(sizes, errors, targets)
    return np.divide(targets, sizes, out=np.zeros(sizes.size), where=sizes > 0)


def drop_quotas(
    density: float, class_sizes: npt.ArrayLike, recalls: npt.ArrayLike, min_count: int = 0, *,
    exponent: float = 1.0, allocation: str = "density", kept_rule: str = "round", seed: int = 0,
) -> IntArray:
    """DRoP integer class counts n_k <= N_k summing to kept_total(d, N, kept_rule), each at least min(min_count, N_k).

    `seed` seeds the official allocation's random fill (the other allocations are deterministic).
    """
    d = _check_density(density)
    sizes = _check_sizes(class_sizes)
    errors = 1.0 - _check_recalls(recalls, sizes.size)
    scores = _tempered(errors, exponent)
    by_density = _check_allocation(allocation) == "density"
    minimum = _check_count(min_count, "min_count")
    floor = np.minimum(minimum, sizes)
    total = kept_total(d, int(sizes.sum()), kept_rule)
    if floor.sum() > total:
        raise ValueError(
            f"min_count: the floors sum to {int(floor.sum())} samples but density {d} keeps only {total}; "
            "lower min_count or raise density"
        )
    if by_density:
        counts = _round_to_total(_drop_targets(float(total), sizes, scores, floor, True), sizes, total)
    else:
        rng = np.random.default_rng(seed) if allocation == "official" else None
        counts = fill_shortfall(_official_selection(total, sizes, scores, floor), sizes, total, rng)
    if minimum == 0:
        _warn_zero_error(sizes, errors, counts)
    return counts


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
    total = kept_count(_check_density(density), sizes.sum())
    zeros = np.zeros(sizes.size, dtype=np.int64)
    return _round_to_total(_water_fill(np.ones(sizes.size), zeros, sizes, float(total)), sizes, total)


def proportional_quotas(density: float, class_sizes: npt.ArrayLike) -> IntArray:
    """The same density for every class; counts sum to floor(d N + 0.5)."""
    sizes = _check_sizes(class_sizes)
    total = kept_count(_check_density(density), sizes.sum())
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


def _drop_targets(
    budget: float, sizes: IntArray, scores: FloatArray, floor: IntArray, by_density: bool
) -> FloatArray:
    """Continuous DRoP counts clip(c w_k, floor_k, N_k) summing to budget, w_k = N_k s_k or s_k (module docstring)."""
    weights = _weights(sizes, scores, by_density)
    has_error = weights > 0
    if budget <= sizes[has_error].sum() + floor[~has_error].sum():
        return _water_fill(weights, floor, sizes, budget)
    # Classes with errors are all full; the rest goes to zero-error classes as if their errors were equal and tiny.
    lower = np.where(has_error, sizes, floor)
    return _water_fill(_weights(sizes, (~has_error).astype(np.float64), by_density), lower, sizes, budget)


def _weights(sizes: IntArray, scores: FloatArray, by_density: bool) -> FloatArray:
    """Water-filling weights: N_k s_k makes densities proportional to the scores s_k, s_k alone makes counts so."""
    return sizes * scores if by_density else scores


def _official_selection(total: int, sizes: IntArray, scores: FloatArray, floor: IntArray) -> IntArray:
    """The counts the official selection takes before its fill: the quoter's (classes it leaves below their floor set
    at it), re-derived as its sampler does, int((n_k / S) S) in floats (29 / 100 * 100 = 28.999.. loses a sample)."""
    at_floor = np.zeros(sizes.size, dtype=bool)
    while True:
        counts = floor.copy()
        free = ~at_floor
        counts[free] = _official_loop(total - int(floor[at_floor].sum()), sizes[free], scores[free])
        low = free & (counts < floor)
        if not low.any():
            break
        at_floor |= low
    if total == 0:
        return counts
    # The quoter hands fractions n_k / S to the sampler, which takes int(fraction * S) samples (utils.py).
    return np.maximum(np.array([int(c / total * total) for c in counts.tolist()], dtype=np.int64), floor)


def _official_loop(total: int, sizes: IntArray, scores: FloatArray) -> IntArray:
    """The official loop on the scores; where it divides by zero, equal scores for the zero-error classes."""
    counts = _quoter_passes(total, sizes, scores)
    if counts is not None:
        return counts
    # The official code divides by zero: it has filled every class with errors and has only zero-error classes left
    # to spread over. This is the limit of equal, vanishing errors (module docstring).
    has_error = scores > 0
    counts = np.where(has_error, sizes, 0)
    rest = total - int(sizes[has_error].sum())
    counts[~has_error] = _quoter_passes(rest, sizes[~has_error], np.ones(int(np.count_nonzero(~has_error))))
    return counts


def _quoter_passes(total: int, sizes: IntArray, scores: FloatArray) -> IntArray | None:
    """quoters/drop.py of the official code: int() shares of total by score, capped at N_k, excess re-spread by passes.

    Python floats and lists on purpose: the same arithmetic in the same order gives the same int() results.
    None where the official code divides by zero (the scores it would spread by sum to 0). What the classes cannot
    hold stays unassigned (only with floors: the official budget never exceeds the classes).
    """
    if total == 0 or sizes.size == 0:
        return np.zeros(sizes.size, dtype=np.int64)
    s, n = scores.tolist(), sizes.tolist()
    z = sum(s)
    if z == 0:
        return None
    counts = [int(total * score / z) for score in s]
    excess = 0
    active = []
    for k in range(len(n)):
        if counts[k] > n[k]:
            excess += counts[k] - n[k]
            counts[k] = n[k]
        else:
            active.append(k)
    capped = True
    while excess > 0 and capped and active:
        z = sum(s[k] for k in active)
        if z == 0:
            return None
        shares = {k: int(excess * s[k] / z) for k in active}
        capped, remaining, skip = False, [], False
        for k in active:
            if skip:  # the official `for` removes the capped class from the list it iterates, so it skips this one
                skip = False
                remaining.append(k)
                continue
            counts[k] += shares[k]
            excess -= shares[k]
            if counts[k] > n[k]:
                capped, skip = True, True
                excess += counts[k] - n[k]
                counts[k] = n[k]
            else:
                remaining.append(k)
        active = remaining
    return np.array(counts, dtype=np.int64)


def kept_total(density: float, n: int, rule: str = "round") -> int:
    """How many of n samples density d keeps: floor(d n + 1/2) ("round"), or int(n (1 - (1 - d))) ("official").

    "official" is the authors' linear scheduler with one pruning iteration from 1 to d, in its order of float
    operations: 4,999 of 50,000 at d = 0.1, because 1 - (1 - 0.1) = 0.09999999999999998.
    """
    if rule not in KEPT_RULES:
        raise ValueError(f"kept_rule: must be one of {KEPT_RULES}, got {rule!r}")
    d, count = _check_density(density), _check_count(n, "n")
    return kept_count(d, count) if rule == "round" else int(count * (1.0 - (1.0 - d)))


def official_selection(
    density: float, class_sizes: npt.ArrayLike, recalls: npt.ArrayLike, min_count: int = 0, *,
    exponent: float = 1.0, kept_rule: str = "official",
) -> tuple[IntArray, int]:
    """The official code's per-class counts before its random fill, and the total the fill completes them to.

    A class with zero quota keeps 0 samples (the official sampler would take `idxs[-0:]`, the whole class, and then
    crash drawing a negative fill; 0 is the evident intent).
    """
    d = _check_density(density)
    sizes = _check_sizes(class_sizes)
    errors = 1.0 - _check_recalls(recalls, sizes.size)
    floor = np.minimum(_check_count(min_count, "min_count"), sizes)
    total = kept_total(d, int(sizes.sum()), kept_rule)
    if floor.sum() > total:
        raise ValueError(f"min_count: the floors sum to {int(floor.sum())} samples but density {d} keeps only {total}; "
                         "lower min_count or raise density")
    counts = _official_selection(total, sizes, _tempered(errors, exponent), floor)
    if min_count == 0:
        _warn_zero_error(sizes, errors, counts)
    return counts, total


def fill_shortfall(counts: IntArray, sizes: IntArray, total: int, rng: np.random.Generator | None) -> IntArray:
    """Complete counts to total with samples from every class's unselected rest, uniformly over samples.

    rng None: the expectation (each class gets its share of the pool, rounded by largest remainder; "count");
    a Generator: one draw, a multivariate hypergeometric ("official", as its `dosample` draws rows).
    """
    pool = sizes - counts
    missing = total - int(counts.sum())
    if missing == 0:
        return counts
    if rng is None:
        return _round_to_total(counts + missing * (pool / pool.sum()), sizes, total)
    return counts + rng.multivariate_hypergeometric(pool, missing).astype(np.int64)


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


def _warn_zero_error(sizes: IntArray, errors: FloatArray, targets: npt.NDArray[np.number]) -> None:
    """Warn when DRoP cuts a non-empty class only because its validation error is zero."""
    cut = (errors == 0) & (sizes > 0) & (targets < sizes)
    if cut.any():
        warnings.warn(
            f"recalls: {int(cut.sum())} non-empty class(es) have recall 1 (zero validation error), e.g. class "
            f"{int(np.flatnonzero(cut)[0])}; DRoP keeps them only after every class with errors is full "
            "(all recalls 1: proportional pruning, or equal counts with allocation='count'). Pass min_count to "
            "drop_quotas to guarantee a floor.",
            ZeroErrorWarning,
            stacklevel=3,
        )


def kept_count(density: npt.ArrayLike, n: npt.ArrayLike) -> int | IntArray:
    """floor(d n + 0.5), the float product rounded half up: how many of n samples a density d keeps, everywhere in
    toy and deep (never above n because d <= 1). Elementwise over arrays (an int64 array), an int for scalars."""
    counts = np.floor(np.asarray(density, dtype=np.float64) * np.asarray(n, dtype=np.float64) + 0.5).astype(np.int64)
    return int(counts) if counts.ndim == 0 else counts


def _check_density(density: float) -> float:
    """Validate the target dataset density: a real number in (0, 1]."""
    try:
        d = float(density) if np.ndim(density) == 0 else np.nan
    except (TypeError, ValueError):
        d = np.nan
    if not 0.0 < d <= 1.0:  # also false for NaN
        raise ValueError(f"density: must be a number in (0, 1], got {density!r}")
    return d


def _check_allocation(allocation: str) -> str:
    """Validate the allocation name: one of ALLOCATIONS."""
    if not isinstance(allocation, str) or allocation not in ALLOCATIONS:
        raise ValueError(f"allocation: must be one of {ALLOCATIONS}, got {allocation!r}")
    return allocation


def _tempered(errors: FloatArray, exponent: float) -> FloatArray:
    """Class scores e_k^beta after validating beta (x**1.0 == x exactly, so beta = 1 changes nothing, bit for bit)."""
    try:
        beta = float(exponent) if np.ndim(exponent) == 0 and not isinstance(exponent, (bool, str)) else np.nan
    except (TypeError, ValueError):
        beta = np.nan
    if not (np.isfinite(beta) and 0.0 < beta <= EXPONENT_MAX):
        raise ValueError(f"exponent: must be a number in (0, {EXPONENT_MAX:g}] (quotas follow error**exponent, exact "
                         f"in floating point only in that range), got {exponent!r}")
    return errors**beta


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
