"""Group-balanced subsampling (SUBG, Idrissi et al. 2022): every group cut to the size of the smallest one.

Groups are the dataset's groups, or its classes when it has none. The cut happens inside the kept set, to
its smallest non-empty group (a group pruned away entirely cannot set the size); rows are drawn at random.
"""

from __future__ import annotations

import numpy as np

from deep.methods.base import Method, MethodInput, Plan
from deep.prune import top_within_units


def balanced_rows(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted rows keeping a random min_g n_g rows of every non-empty group g."""
    sizes = np.bincount(groups)
    smallest = sizes[sizes > 0].min()
    return top_within_units(groups, np.minimum(sizes, smallest), rng.permutation(groups.size).astype(np.float64))


def prepare(data: MethodInput) -> Plan:
    """The balanced subset of the kept rows, trained with plain cross-entropy."""
    groups = data.groups.numpy()
    rows = balanced_rows(groups, np.random.default_rng(data.seed))
    counts = np.bincount(groups[rows], minlength=data.num_groups)
    return Plan(rows, summary=lambda: {"group_counts_trained": counts.tolist()})


METHOD = Method("group-balanced subsampling: every group (class without groups) cut to the smallest", prepare)
