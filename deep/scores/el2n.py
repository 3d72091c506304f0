"""el2n: ‖softmax(f(x)) − onehot(y)‖₂ of the query model at the end of a short ("early epoch") query training."""

from __future__ import annotations

import numpy as np
import torch

from deep.scores.base import QueryModel, Scorer


def el2n(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Error L2 norm per row: ‖softmax(logits) − onehot(y)‖₂ as float64 (N,)."""
    probs = torch.softmax(logits.double(), dim=1)
    onehot = torch.nn.functional.one_hot(y.long(), probs.shape[1]).double()
    return torch.linalg.vector_norm(probs - onehot, dim=1).numpy()


def score(query: QueryModel) -> np.ndarray:
    """EL2N of the trained query model on the full training split."""
    return el2n(query.logits, query.train.y)


SCORER = Scorer(score=score, epoch_fraction=0.1, min_epochs=1, inits=5)
