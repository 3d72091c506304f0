"""Per-epoch model outputs on the training set, computed once per epoch and shared by every recorder.

Several scorers may record in the same query training; each asks here for the logits (or penultimate
features) of the current epoch, and only the first request runs the forward pass. The cache holds the
outputs of one epoch only, keyed by the identity of the trainer's EpochState (a new object every epoch
of every training) through a weak reference, so a later training can never be served stale outputs and
the cache keeps no model alive. Keying by the state rather than by (id(model), epoch) also makes the
key unique when the same model object is trained twice.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deep.train import PREDICT_BATCH

_cache: dict[str, Any] = {"state": None, "x": None, "outputs": {}}


def _once(state: Any, x: torch.Tensor, kind: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """`compute()` the first time `kind` is asked for on (`state`, `x`); the stored tensor afterwards."""
    ref = _cache["state"]
    if ref is None or ref() is not state or _cache["x"] is not x:
        _cache.update(state=weakref.ref(state), x=x, outputs={})
    outputs = _cache["outputs"]
    if kind not in outputs:
        outputs[kind] = compute()
    return outputs[kind]


def epoch_logits(state: Any, x: torch.Tensor) -> torch.Tensor:
    """Float32 CPU logits (N, K) of this epoch's model on `x` via `state.predict` (eval mode, batched); do not modify."""
    return _once(state, x, "logits", lambda: state.predict(x))


def epoch_features(state: Any, x: torch.Tensor, batch_size: int = PREDICT_BATCH) -> torch.Tensor:
    """Float32 CPU penultimate features (N, F) = `state.model.embed` in eval mode, batched; do not modify."""

    def compute() -> torch.Tensor:
        model = state.model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                out = [model.embed(state.prepare(x[i : i + batch_size])).float().cpu() for i in range(0, len(x), batch_size)]
        finally:
            model.train(was_training)
        return torch.cat(out)

    return _once(state, x, "features", compute)


def true_class_probability(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """softmax(logits)[i, y_i] for every row, as float64 (N,)."""
    probs = torch.softmax(logits.double(), dim=1)
    return probs.gather(1, y.long().view(-1, 1)).squeeze(1).numpy()


def is_correct(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Whether argmax(logits) equals the label, per row (N,) bool."""
    return (logits.argmax(1) == y.long()).numpy()
