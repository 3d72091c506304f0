"""el2n: ‖softmax(f(x)) − onehot(y)‖₂ of the query model at the end of a short ("early epoch") query training."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deep.scores.base import ScoreContext, Scorer
from deep.scores.final import AtFinalEpoch
from deep.scores.outputs import epoch_logits


def el2n(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Error L2 norm per row: ‖softmax(logits) − onehot(y)‖₂ as float64 (N,)."""
    probs = torch.softmax(logits.double(), dim=1)
    onehot = torch.nn.functional.one_hot(y.long(), probs.shape[1]).double()
    return torch.linalg.vector_norm(probs - onehot, dim=1).numpy()


def _score(state: Any, context: ScoreContext) -> np.ndarray:
    """EL2N of this epoch's model on the full training split."""
    return el2n(epoch_logits(state, context.train.x), context.train.y)


def make(context: ScoreContext) -> AtFinalEpoch:
    """An EL2N recorder for one query model."""
    return AtFinalEpoch(context, _score, "el2n")


SCORER = Scorer(
    make=make, epoch_fraction=0.1, min_epochs=1,
    description="EL2N: L2 distance of softmax output to the one-hot label, early in training (Paul et al. 2021)",
)
