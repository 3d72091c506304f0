"""Scorer registry: name -> Scorer (how to build its per-epoch recorder and what query training it needs).

Adding a scorer = one module in this package defining `SCORER = Scorer(make=..., epoch_fraction=...)` and
one line below.
"""

from __future__ import annotations

from deep.scores import dynamic_uncertainty, el2n, forgetting, grand, random, ssp
from deep.scores.base import Recorder, ScoreContext, Scorer

SCORERS: dict[str, Scorer] = {
    "random": random.SCORER,
    "el2n": el2n.SCORER,
    "grand": grand.SCORER,
    "forgetting": forgetting.SCORER,
    "dynamic_uncertainty": dynamic_uncertainty.SCORER,
    "ssp": ssp.SCORER,
}

__all__ = ["SCORERS", "Recorder", "ScoreContext", "Scorer"]
