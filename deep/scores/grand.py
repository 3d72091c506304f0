"""grand: per-sample norm of the cross-entropy gradient w.r.t. all model parameters, at the end of a short query.

Computed with torch.func (functional_call + vmap(grad)) over chunks of samples, never a per-sample loop.
The model is put in eval mode while scoring, so BatchNorm normalises with its running statistics: each
sample's gradient then depends on that sample alone (in training mode batch statistics would couple the
samples of a chunk and the "per-sample" gradient would depend on the chunking).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from deep.scores.base import ScoreContext, Scorer
from deep.scores.final import AtFinalEpoch

GRADIENT_BYTES = 1 << 30  # per-sample gradients materialised at once (float32): bounds the chunk size
MAX_CHUNK = 256


def chunk_size(model: nn.Module, budget_bytes: int = GRADIENT_BYTES) -> int:
    """Samples per vmap chunk so that their float32 per-sample gradients fit in `budget_bytes` (1 to MAX_CHUNK)."""
    num_params = sum(p.numel() for p in model.parameters())
    return max(1, min(MAX_CHUNK, budget_bytes // max(1, 4 * num_params)))


def gradient_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    chunk: int | None = None,
) -> np.ndarray:
    """‖∇_θ CE(model(x_i), y_i)‖₂ over all parameters θ, per row of raw `x` (model in eval mode), float64 (N,).

    `prepare` turns a raw batch into normalised model input on the model's device.
    """
    chunk = chunk or chunk_size(model)
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def sample_loss(params: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (params, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits.float(), yi.unsqueeze(0))

    def sample_norm(xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        grads = grad(sample_loss)(params, xi, yi)
        return torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))

    norms = vmap(sample_norm)
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(x), chunk):
            xb = prepare(x[start : start + chunk])
            yb = y[start : start + chunk].to(xb.device)
            out.append(norms(xb, yb).detach().double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def _score(state: Any, context: ScoreContext) -> np.ndarray:
    """GraNd of this epoch's model on the full training split."""
    return gradient_norms(state.model, context.train.x, context.train.y, state.prepare)


def make(context: ScoreContext) -> AtFinalEpoch:
    """A GraNd recorder for one query model."""
    return AtFinalEpoch(context, _score, "grand")


SCORER = Scorer(
    make=make, epoch_fraction=0.1, min_epochs=1,
    description="GraNd: per-sample gradient norm of the loss, early in training (Paul et al. 2021)",
)
