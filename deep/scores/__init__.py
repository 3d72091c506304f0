"""Scorer registry: name -> Scorer (its score function of a finished query training, and the training it needs).

Adding a scorer = one module in this package defining `SCORER = Scorer(score=..., epoch_fraction=...)` and
one line below, or, from another package, one entry point in the group `drop_pruning.scorers` (deep.plugins).
"""

from __future__ import annotations

from deep.plugins import add_plugins
from deep.scores import dynamic_uncertainty, el2n, forgetting, grand, random, ssp
from deep.scores.base import QueryModel, Scorer, Trace

SCORERS: dict[str, Scorer] = {
    "random": random.SCORER,
    "el2n": el2n.SCORER,
    "grand": grand.SCORER,
    "forgetting": forgetting.SCORER,
    "dynamic_uncertainty": dynamic_uncertainty.SCORER,
    "ssp": ssp.SCORER,
}
add_plugins("scorers", SCORERS)

__all__ = ["SCORERS", "QueryModel", "Scorer", "Trace"]
