"""Training checkpoints: written atomically at the end of an epoch, read back with weights_only=True.

A checkpoint holds everything that decides the rest of a training: model, optimiser, LR scheduler, the batch-order,
augmentation and global torch RNG states, the history so far and the caller's own state (`extra`: a method's
weights, a query training's trace). Resuming from it on the CPU therefore ends bit-identical to a training that was
never interrupted. By default one is written at the end of the first epoch that ends 10 minutes or more after the
training started or after the last checkpoint, so short CPU trainings write none; `every` = N writes one every N
epochs instead.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deep.runs import write_atomic

DEFAULT_INTERVAL_S = 600.0


@dataclass
class Checkpointing:
    """Where and when a training writes its checkpoints, and the caller's state to save with them."""

    path: Path
    every: int | None = None  # epochs between checkpoints; None = time-based (`interval_s`)
    interval_s: float = DEFAULT_INTERVAL_S
    extra: Callable[[], dict] = dict  # tensors/lists/numbers of the caller's callbacks, saved with each checkpoint
    _last: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.every is not None and self.every < 1:
            raise ValueError(f"--checkpoint-every must be >= 1 epoch, got {self.every}")

    def due(self, epoch: int) -> bool:
        """Whether a checkpoint is due after `epoch` (1-based)."""
        if self.every is not None:
            return epoch % self.every == 0
        return time.monotonic() - self._last >= self.interval_s

    def save(self, state: dict) -> None:
        """Write `state` plus the caller's extra state, atomically (a kill mid-write leaves the previous one)."""
        buffer = io.BytesIO()
        torch.save({**state, "extra": self.extra()}, buffer)
        write_atomic(self.path, buffer.getvalue())
        self._last = time.monotonic()

    def load(self) -> dict | None:
        """The checkpoint at `path`, or None when there is none or it cannot be read (then it is removed)."""
        if not self.path.is_file():
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is discarded, never trusted
            warnings.warn(f"{self.path} cannot be read ({error}); the training starts again from epoch 0", stacklevel=2)
            self.path.unlink(missing_ok=True)
            return None
