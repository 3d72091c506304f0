"""ssp: distance of each sample to its class prototype in the feature space of the query model at the end of training.

A supervised variant of self-supervised prototypes (Sorscher et al. 2022): the prototypes are the class
means of the query model's penultimate features (`model.embed`, eval mode, normalised input), and farther
samples are harder. Features are L2-normalised first, so that the distance measures direction (cosine-like)
and is not dominated by the feature norm; the class mean itself is not re-normalised.
"""

from __future__ import annotations

import numpy as np
import torch

from deep.scores.base import QueryModel, Scorer


def prototype_distances(features: torch.Tensor, y: torch.Tensor, num_classes: int) -> np.ndarray:
    """‖u_i − mean_{j: y_j = y_i} u_j‖₂ with u = features / ‖features‖₂, as float64 (N,)."""
    u = torch.nn.functional.normalize(features.double(), dim=1)
    labels = y.long()
    sums = torch.zeros(num_classes, u.shape[1], dtype=u.dtype).index_add_(0, labels, u)
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).to(u.dtype)
    means = sums / counts[:, None]
    return torch.linalg.vector_norm(u - means[labels], dim=1).numpy()


def score(query: QueryModel) -> np.ndarray:
    """Prototype distances of the trained query model on the full training split."""
    return prototype_distances(query.features, query.train.y, query.num_classes)


SCORER = Scorer(score=score, epoch_fraction=0.1, min_epochs=1, needs_features=True)
