"""What a scorer is: a per-epoch recorder over query training that ends in one score per sample."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from deep.data.base import Split


@dataclass
class ScoreContext:
    """What a recorder may use: the full training split, the query length and how to run the model."""

    train: Split
    epochs: int  # length of this query training; recorders that score "at the end" act at this epoch
    num_classes: int
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None
    device: torch.device
    seed: int
    params: dict  # scorer options from the command line, e.g. {"window": 10}


class Recorder(Protocol):
    """Called after every query epoch; `result` gives this query model's scores (higher = harder = kept first)."""

    def __call__(self, state: object) -> None: ...

    def result(self) -> np.ndarray: ...


@dataclass(frozen=True)
class Scorer:
    """A registry entry: how to build the recorder, and what query training it needs."""

    make: Callable[[ScoreContext], Recorder]
    epoch_fraction: float  # default query length as a fraction of the final schedule (0 = no training)
    min_epochs: int = 0  # fewer query epochs than this is an error (training-dynamics scorers need >= 2)
    description: str = ""
