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

from toy.quotas import drop_quotas, strategy_quotas

QUOTA_UNITS = ("class", "group")  # what quotas are taken over: classes, or the dataset's groups
# Paper order: the references first, then each way of using a score, DRoP last.
PROTOCOL_KINDS = ("full", "random", "score", "random+quota", "score+drop", "random+drop")
_COUNTS = {"full": "all", "random": "global", "score": "global", "random+quota": "strategy",
           "score+drop": "drop", "random+drop": "drop"}


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
    def changes_class_proportions(self) -> bool:
        """Whether the protocol chooses class densities itself (everything but `full` and `random`)."""
        return self.kind not in ("full", "random")

    def density(self, density: float) -> float:
        """The density a run of this protocol trains at: 1 for `full`, else `density`."""
        return 1.0 if self.kind == "full" else float(density)


def parse_protocol(name: str, scorers: Collection[str] | None = None) -> Protocol:
    """Parse a protocol name such as `el2n`, `random+el2nq`, `el2n+drop`, `random+drop`, `random` or `full`.

    `scorers` are the scorer names to accept; None accepts any name as a scorer (reading stored runs).
    """
    known = (lambda s: bool(s)) if scorers is None else (lambda s: s in scorers)
    if name in ("full", "random", "random+drop"):
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


def kept_count(density: float, n: int) -> int:
    """round(density * n), halves rounded up: the number of samples every protocol keeps."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return int(np.floor(density * n + 0.5))


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


def select(
    protocol: Protocol,
    density: float,
    units: np.ndarray,
    num_units: int,
    rng: np.random.Generator,
    scores: np.ndarray | None = None,
    recalls: np.ndarray | None = None,
    min_count: int = 0,
) -> np.ndarray:
    """The sorted indices a protocol keeps at `density`, with quotas over `units` (class or group ids)."""
    units = np.asarray(units, dtype=np.int64)
    n = units.size
    if protocol.needs_scores and (scores is None or np.shape(scores) != (n,)):
        raise ValueError(f"protocol {protocol.name!r} needs one score per training sample ({n})")
    if protocol.needs_recalls and (recalls is None or np.shape(recalls) != (num_units,)):
        raise ValueError(f"protocol {protocol.name!r} needs one validation recall per unit ({num_units})")
    if protocol.needs_recalls and np.isnan(recalls).any():
        raise ValueError(f"units {np.flatnonzero(np.isnan(recalls)).tolist()} have no validation samples, so DRoP "
                         "has no recall to allocate by: use a validation split that holds every class or group")
    k = kept_count(density, n)
    # Random choice is a random priority: one mechanism for "random inside" and "top-scored inside".
    random_priority = rng.permutation(n).astype(np.float64)
    priority = random_priority if protocol.inside == "random" else np.asarray(scores, dtype=np.float64)
    if protocol.counts == "all":
        return np.arange(n)
    if protocol.counts == "global":
        return top_k(priority, k)
    sizes = np.bincount(units, minlength=num_units)
    if protocol.counts == "strategy":
        counts = strategy_quotas(units, top_k(np.asarray(scores, dtype=np.float64), k), num_units)
    else:
        counts = drop_quotas(density, sizes, recalls, min_count=min_count)
    return top_within_units(units, np.asarray(counts, dtype=np.int64), priority)
