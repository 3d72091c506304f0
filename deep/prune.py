"""Pruning protocols (paper 002): how scores and quotas become the indices a final model trains on.

Protocol names, with S any scorer in `deep.scores.SCORERS` (higher score = harder = kept first):
  full          keep everything (density 1)
  random        uniform random subset
  S             the globally top-scored samples, no quotas
  random+Sq     S's class counts, random inside each class
  S+drop        DRoP's class counts (from validation recalls), top-scored inside each class
  random+drop   DRoP's class counts, random inside each class (the paper's method)
All class counts come from `toy.quotas`; the "unit" of a quota is a class or, with groups, a group.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deep.seeds import ROLES
from toy.quotas import ALLOCATIONS, drop_quotas, kept_count, strategy_quotas

FULL = "full"  # the protocol that keeps everything (density 1): the reference the others are compared with
QUOTA_UNITS = ("class", "group")  # what quotas are taken over: classes, or the dataset's groups
# Paper order: the references first, then each way of using a score, DRoP last.
PROTOCOL_KINDS = (FULL, "random", "score", "random+quota", "score+drop", "random+drop", "subset")
# Where DRoP's validation recalls come from (see deep.sweep.Setup.recall_recipe); the first is the default.
RECALL_SOURCES = ("scorer", "separate")
_COUNTS = {FULL: "all", "random": "global", "score": "global", "random+quota": "strategy",
           "score+drop": "drop", "random+drop": "drop", "subset": "given"}


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol name: its kind (one of PROTOCOL_KINDS) and the scorer it uses, if any."""

    name: str
    kind: str
    scorer: str | None  # scores used for counts or ranking; None when none are needed

    @property
    def counts(self) -> str:
        """Where the counts come from: "all" (keep everything), "global" (no quotas), "strategy" or "drop"."""
        return _COUNTS[self.kind]

    @property
    def inside(self) -> str:
        """How samples are chosen inside each unit (or globally): "score" or "random"."""
        return "score" if self.kind in ("score", "score+drop") else "random"

    @property
    def needs_scores(self) -> bool:
        """Whether the protocol needs a scorer's scores."""
        return self.scorer is not None

    @property
    def needs_recalls(self) -> bool:
        """Whether the protocol needs DRoP's validation recalls."""
        return self.counts == "drop"

    @property
    def uses_quotas(self) -> bool:
        """Whether counts are allocated per unit (class or group), so that the quota unit matters."""
        return self.counts in ("strategy", "drop")

    @property
    def is_full(self) -> bool:
        """Whether the protocol keeps everything (`full`, run at density 1 only)."""
        return self.kind == FULL

    @property
    def changes_class_proportions(self) -> bool:
        """Whether the protocol chooses class densities itself (everything but `full` and `random`)."""
        return not self.is_full and self.kind != "random"

    def density(self, density: float) -> float:
        """The density a run of this protocol trains at: 1 for `full`, else `density`."""
        return 1.0 if self.is_full else float(density)


@dataclass(frozen=True)
class Quotas:
    """DRoP's settings: how validation recalls become per-unit counts (`keep`'s arguments of that name). The defaults
    are the paper's Algorithm 1 on the raw recalls, wherever a default is taken (keep, deep.sweep.Setup, the CLI)."""

    allocation: str = "density"  # "density": density proportional to error (Algorithm 1); "count": the authors' code
    exponent: float = 1.0  # density (or count) proportional to error ** exponent
    recall_prior: float = 0.0  # Beta pseudo-count smoothing the recalls (see smoothed_recalls); 0 = raw recalls
    min_count: int = 0  # every unit keeps at least this many samples (or all it has)


# Densities equal to this many decimals are one density (0.3 from a CLI, 0.30000000000000004 from a range):
# a difference of 1e-6 is under one sample below a million samples.
DENSITY_DECIMALS = 6


def density_key(density: float) -> float:
    """A density as runs are named, grouped and shown by it: rounded to DENSITY_DECIMALS."""
    return round(float(density), DENSITY_DECIMALS)


def parse_protocol(name: str, scorers: Collection[str] | None = None) -> Protocol:
    """Parse a protocol name such as `el2n`, `random+el2nq`, `el2n+drop`, `random+drop`, `random` or `full`.

    `scorers` are the scorer names to accept; None accepts any name as a scorer (reading stored runs).
    """
    known = (lambda s: bool(s)) if scorers is None else (lambda s: s in scorers)
    if name in (FULL, "random", "random+drop", "subset"):  # subset: rows a user gave (train --kept)
        return Protocol(name, name, None)
    if name.endswith("+drop") and known(name[: -len("+drop")]):
        return Protocol(name, "score+drop", name[: -len("+drop")])
    if name.startswith("random+") and name.endswith("q") and known(name[len("random+") : -1]):
        return Protocol(name, "random+quota", name[len("random+") : -1])
    if "+" not in name and known(name):
        return Protocol(name, "score", name)
    listed = sorted(scorers or ())
    s = next((n for n in listed if n != "random"), "el2n")
    raise ValueError(
        f"unknown protocol {name!r}: use full, random, random+drop, or for a scorer S in {listed} "
        f"one of S, random+Sq, S+drop (e.g. {s}, random+{s}q, {s}+drop)"
    )


def smoothed_recalls(recalls: np.ndarray, val_sizes: np.ndarray, prior: float) -> np.ndarray:
    """Posterior-mean recall under a Beta(prior, prior) prior: (r n + prior) / (n + 2 prior) per unit.

    A validation recall measured on n samples is a noisy estimate; on small validation sets (27 per class on
    digits) a class with no observed error would get recall 1, hence zero DRoP density and no training data.
    prior = 0 returns the raw recalls (the paper's Algorithm 1 on them exactly); prior = 1 is Laplace's rule.
    """
    if not (np.isfinite(prior) and prior >= 0):
        raise ValueError(f"the recall prior must be a finite number >= 0 (a pseudo-count), got {prior}")
    recalls, n = np.asarray(recalls, dtype=np.float64), np.asarray(val_sizes, dtype=np.float64)
    if prior == 0:
        return recalls
    return (recalls * n + prior) / (n + 2 * prior)


def recalls_from_predictions(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, num_classes: int) -> np.ndarray:
    """Per-class recall (fraction of class k predicted as k), NaN for a class without samples; float64 (K,)."""
    truth = _labels(y_true, "y_true")
    predicted = _labels(y_pred, "y_pred")
    if truth.shape != predicted.shape:
        raise ValueError(f"y_pred has {predicted.size} entries but y_true has {truth.size}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if truth.size and max(truth.max(), predicted.max()) >= num_classes:
        raise ValueError(f"y_true and y_pred must hold class ids below num_classes={num_classes}")
    sizes = np.bincount(truth, minlength=num_classes)
    hits = np.bincount(truth[truth == predicted], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, hits / np.maximum(sizes, 1), np.nan)


def top_k(priority: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest priorities, ties broken by lower index; sorted ascending."""
    order = np.lexsort((np.arange(priority.size), -priority))
    return np.sort(order[:k])


def top_within_units(units: np.ndarray, counts: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Keep the `counts[u]` highest-priority samples of every unit u; sorted indices."""
    order = np.lexsort((np.arange(units.size), -priority, units))  # by unit, then priority desc, then index
    sorted_units = units[order]
    starts = np.searchsorted(sorted_units, np.arange(counts.size))
    rank = np.arange(units.size) - starts[sorted_units]
    return np.sort(order[rank < counts[sorted_units]])


def _labels(values: npt.ArrayLike, name: str) -> np.ndarray:
    """A 1-D array of non-negative integer ids, or ValueError naming the argument."""
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise ValueError(f"{name}: expected a 1-D array of integer ids, got shape {array.shape} dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name}: ids must be >= 0, got {array.min()}")
    return array.astype(np.int64)


def _per_unit(values: npt.ArrayLike | None, name: str, num_units: int | None) -> np.ndarray | None:
    """A float vector with one entry per unit (None passes), or ValueError naming the argument."""
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or (num_units is not None and array.size != num_units):
        raise ValueError(f"{name}: expected one value per class or group ({num_units}), got shape {array.shape}")
    return array


def keep(
    labels: npt.ArrayLike,
    density: float,
    protocol: str,
    *,
    scores: npt.ArrayLike | None = None,
    recalls: npt.ArrayLike | None = None,
    groups: npt.ArrayLike | None = None,
    allocation: str = Quotas.allocation,
    min_count: int = Quotas.min_count,
    recall_prior: float = Quotas.recall_prior,
    val_sizes: npt.ArrayLike | None = None,
    seed: int = 0,
    exponent: float = Quotas.exponent,
) -> np.ndarray:
    """The sorted row indices that `protocol` keeps of a training set with these labels, at `density`.

    Protocols: `full`, `random`, `random+drop`, and for an external score named S: `S` (top-scored), `random+Sq`
    (S's per-unit counts, random inside), `S+drop` (DRoP's counts, top-scored inside); higher score = kept first.
    Units are classes, or the ids in `groups` when given; `recalls` has one validation recall per unit (DRoP).
    `recall_prior` > 0 smooths them with the unit's validation size `val_sizes` (see smoothed_recalls). DRoP's
    counts come from toy.quotas.drop_quotas with `allocation` ("density": density ∝ error^exponent, the paper's
    Algorithm 1 at exponent 1; "count": counts ∝ error^exponent, the authors' code); the same arguments and seed
    always give the same indices. Numpy only.
    """
    y = _labels(labels, "labels")
    n = y.size
    if n == 0:
        raise ValueError("labels: no training rows")
    if not (isinstance(density, (int, float, np.floating)) and 0.0 < float(density) <= 1.0):
        raise ValueError(f"density must lie in (0, 1], got {density!r}")
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    parsed = parse_protocol(protocol)
    if parsed.kind == "subset":
        raise ValueError("protocol 'subset' keeps rows you give: index your data with them directly")
    units = y if groups is None else _labels(groups, "groups")
    if units.size != n:
        raise ValueError(f"groups has {units.size} entries but labels has {n}")
    priority_scores = _per_unit(scores, "scores", n)
    if parsed.needs_scores and priority_scores is None:
        raise ValueError(f"protocol {protocol!r} needs scores: one per training row ({n})")
    if priority_scores is not None and not np.isfinite(priority_scores).all():
        raise ValueError("scores: every score must be finite (NaN or infinite scores cannot be ranked)")
    unit_recalls = _per_unit(recalls, "recalls", None)
    num_units = int(units.max()) + 1 if unit_recalls is None else unit_recalls.size
    if units.max() >= num_units:
        raise ValueError(f"recalls has {num_units} entries but {'groups' if groups is not None else 'labels'} "
                         f"hold ids up to {units.max()}: give one recall per class or group")
    if parsed.needs_recalls:
        unit_recalls = _drop_recalls(unit_recalls, num_units, recall_prior, val_sizes, protocol)
    rng = np.random.default_rng((int(seed), ROLES["prune"], int(round(float(density) * 1e6))))
    if parsed.is_full:
        return np.arange(n)
    k = kept_count(float(density), n)
    # Random choice is a random priority: one mechanism for "random inside" and "top-scored inside".
    priority = rng.permutation(n).astype(np.float64) if parsed.inside == "random" else priority_scores
    if parsed.counts == "global":
        return top_k(priority, k)
    if parsed.counts == "strategy":
        counts = strategy_quotas(units, top_k(priority_scores, k), num_units)
    else:
        counts = drop_quotas(float(density), np.bincount(units, minlength=num_units), unit_recalls, min_count=min_count,
                             exponent=exponent, allocation=allocation)
    return top_within_units(units, np.asarray(counts, dtype=np.int64), priority)


def _drop_recalls(
    recalls: np.ndarray | None, num_units: int, prior: float, val_sizes: npt.ArrayLike | None, protocol: str
) -> np.ndarray:
    """The recalls DRoP allocates by: validated, and smoothed when `prior` > 0."""
    if recalls is None:
        raise ValueError(f"protocol {protocol!r} needs recalls: one validation recall per class or group")
    if np.isnan(recalls).any():
        raise ValueError(f"recalls: units {np.flatnonzero(np.isnan(recalls)).tolist()} have no validation samples, "
                         "so DRoP has no recall to allocate by: use a validation split that holds every class or group")
    if ((recalls < 0) | (recalls > 1)).any():
        raise ValueError("recalls: every recall must lie in [0, 1]")
    if prior == 0:
        return recalls
    sizes = _per_unit(val_sizes, "val_sizes", num_units)
    if sizes is None:
        raise ValueError("recall_prior > 0 needs val_sizes: the number of validation samples of each class or group")
    return smoothed_recalls(recalls, sizes, prior)
