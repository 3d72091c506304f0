"""Model outputs on a whole split, batched in eval mode: what scorers compute their scores from."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deep.batches import batches
from deep.models.features import feature_extractor
from deep.train import PREDICT_BATCH


def model_features(
    model: nn.Module, x: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor], batch_size: int = PREDICT_BATCH
) -> torch.Tensor:
    """Float32 CPU penultimate features (N, F) of `model` (deep.models.feature_extractor) in eval mode, batched."""
    embed = feature_extractor(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            # In their evaluation view, read a batch at a time where x is an image store (deep.batches).
            out = [embed(prepare(xb)).float().cpu() for xb in batches(x, torch.device("cpu")).ordered(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)

