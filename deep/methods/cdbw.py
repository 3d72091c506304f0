"""CDB-W (Sinha et al. 2022): class-difficulty-based loss weights from the previous epoch's validation recall.

Epoch 1 uses unit weights; after every epoch, class k's weight becomes 1 - r_k with r_k its validation recall
in that epoch. A class without validation samples (recall NaN) keeps weight 1; if every class is recalled
perfectly there is no difficulty to weight by, and the weights return to 1. The batch loss is the weighted
mean sum_i w_{y_i} l_i / sum_i w_{y_i} (torch's weighted cross-entropy), 0 for a batch of weight-0 classes only.
"""

from __future__ import annotations

import numpy as np
import torch

from deep.methods.base import Method, MethodInput, Plan, every_row, weighted_loss
from deep.train import EpochState


def difficulty_weights(recalls: np.ndarray) -> np.ndarray:
    """1 - recall per class; NaN recalls give 1, and all-zero weights fall back to all ones."""
    recalls = np.asarray(recalls, dtype=np.float64)
    weights = np.where(np.isnan(recalls), 1.0, 1.0 - recalls)
    return weights if weights.sum() > 0 else np.ones_like(weights)


def prepare(data: MethodInput) -> Plan:
    """All kept rows; a callback resets the class weights from each epoch's validation recalls."""
    weights = torch.ones(data.num_classes) if data.resume is None else data.resume["weights"].clone()
    weights = weights.to(data.device)

    def update(state: EpochState) -> None:
        if state.val_metrics is None:
            raise ValueError("cdbw needs a validation split: its class weights come from validation recall")
        weights.copy_(torch.as_tensor(difficulty_weights(state.val_metrics["class_accuracy"])))

    return Plan(
        every_row(data),
        loss_fn=weighted_loss(lambda y, idx: weights[y], data.cfg.label_smoothing),
        callbacks=[update],
        summary=lambda: {"class_weights": weights.tolist()},
        state={"weights": weights},
    )


METHOD = Method("CDB-W: class weights 1 - validation recall of the previous epoch", prepare)
